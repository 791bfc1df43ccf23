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
  private releasing = false;
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
   * Let the process end once nothing is pending. Deferred by a turn of the event
   * loop: a program that waits again at once (a ping-pong) never toggles.
   */
  private release(): void {
    if (this.releasing) return;
    this.releasing = true;
    setImmediate(() => {
      this.releasing = false;
      if (this.entries.size === 0 && this.alive) {
        this.alive = false;
        this.keepAlive(false);
      }
    });
  }

  get size(): number {
    return this.entries.size;
  }

  snapshot(): BlockedOp[] {
    const now = performance.now();
    return [...this.entries].map((e) => ({ op: e.op, comm: e.comm, seconds: Math.round((now - e.since) / 100) / 10 }));
  }
}
