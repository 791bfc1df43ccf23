/**
 * Every wait in the runtime goes through here: one registry of what each rank is
 * blocked in (for timeout and deadlock reports), and the reference count that
 * keeps the process alive while something is pending.
 */
import type { BlockedOp } from './wire/control.js';

interface Entry {
  op: string;
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
  track<T>(op: string, comm: number, promise: Promise<T>): Promise<T> {
    const entry: Entry = { op, comm, since: performance.now() };
    this.entries.add(entry);
    if (!this.alive) {
      this.alive = true;
      this.keepAlive(true);
    }
    const done = () => {
      this.entries.delete(entry);
      if (this.entries.size === 0) this.release();
    };
    promise.then(done, done);
    return promise;
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
    return [...this.entries].map((e) => ({ op: e.op, comm: e.comm, seconds: Math.round((now - e.since) / 100) / 10 }));
  }
}
