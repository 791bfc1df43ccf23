/**
 * Every wait in the runtime goes through here: one registry of what each rank is
 * blocked in (for timeout and deadlock reports), and the reference count that
 * keeps the process alive while something is pending.
 */
import type { BlockedOp } from './wire/control.js';

/** What a wait is, or how to say it (built only when a report asks: the hot path makes no string). */
export type OpDesc = string | (() => string);

export interface Entry {
  op: OpDesc;
  comm: number;
  since: number;
}

export class PendingRegistry {
  private readonly entries = new Set<Entry>();
  private alive = false;
  private releaseTimer: NodeJS.Timeout | null = null;
  /** Called with true when the first wait starts and false some time after the last one ended. */
  keepAlive: (on: boolean) => void = () => {};

  /** Register a wait until `promise` settles. */
  track<T>(op: OpDesc, comm: number, promise: Promise<T>): Promise<T> {
    const entry = this.begin(op, comm);
    const done = () => this.end(entry);
    promise.then(done, done);
    return promise;
  }

  /** Register a wait by hand; `end` it exactly once when it settles. */
  begin(op: OpDesc, comm: number): Entry {
    const entry: Entry = { op, comm, since: performance.now() };
    this.entries.add(entry);
    if (!this.alive) {
      this.alive = true;
      this.keepAlive(true);
    }
    return entry;
  }

  end(entry: Entry): void {
    this.entries.delete(entry);
    if (this.entries.size === 0) this.release();
  }

  /**
   * Let the process end once nothing has been pending for a moment. Checked at
   * most every 50 ms: a program that waits again at once (a ping-pong) pays
   * nothing per operation, and a finished program exits within 50 ms.
   */
  private release(): void {
    if (this.releaseTimer) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = null;
      if (this.entries.size === 0 && this.alive) {
        this.alive = false;
        this.keepAlive(false);
      }
    }, 50);
    this.releaseTimer.unref();
  }

  get size(): number {
    return this.entries.size;
  }

  snapshot(): BlockedOp[] {
    const now = performance.now();
    return [...this.entries].map((e) => ({ op: typeof e.op === 'string' ? e.op : e.op(), comm: e.comm, seconds: Math.round((now - e.since) / 100) / 10 }));
  }
}
