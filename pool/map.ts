/**
 * One map over a pool: items handed out in batches as workers free up. With
 * `chunksize: 'auto'` the batch size adapts as joblib's does: it starts at 1
 * and doubles until a batch's time is known, then aims at BATCH_TARGET_MS per
 * batch, never so large that some worker would sit idle at the end.
 */
import { TsmpiError } from '../runtime/errors.js';
import type { Feeder, FnHandle, Unit } from './engine.js';

/** How long one batch should take on a worker, once the time per item is known. */
export const BATCH_TARGET_MS = 40;

export interface MapSpec {
  fn: FnHandle;
  items: unknown[];
  /** the positions still to compute (the others came from the cache) */
  todo: number[];
  ctx: unknown;
  hasCtx: boolean;
  chunksize: number | 'auto';
  workers: () => number;
  newId: () => number;
  /** a batch came back */
  onValues(positions: number[], values: unknown[]): void;
  onError(err: Error): void;
}

export class MapRun implements Feeder {
  private pos = 0;
  private failed = false;
  private guess = 1;
  /** ms per item, once measured */
  private perItem: number | null = null;

  constructor(private readonly s: MapSpec) {}

  get exhausted(): boolean {
    return this.failed || this.pos >= this.s.todo.length;
  }

  stop(): void {
    this.failed = true;
  }

  private size(): number {
    if (typeof this.s.chunksize === 'number') return this.s.chunksize;
    const left = this.s.todo.length - this.pos;
    const balance = Math.max(1, Math.ceil(left / (2 * Math.max(1, this.s.workers()))));
    if (this.perItem === null) {
      const n = this.guess;
      this.guess *= 2;
      return Math.min(n, balance);
    }
    return Math.max(1, Math.min(balance, Math.round(BATCH_TARGET_MS / Math.max(this.perItem, 1e-6))));
  }

  take(): Unit | null {
    if (this.exhausted) return null;
    const n = Math.min(this.size(), this.s.todo.length - this.pos);
    const positions = this.s.todo.slice(this.pos, this.pos + n);
    this.pos += n;
    const items = positions.map((p) => this.s.items[p]);
    const id = this.s.newId();
    const first = positions[0]!;
    const u: Unit = {
      id,
      kind: 'batch',
      fn: this.s.fn,
      msg: { t: 'batch', task: id, fn: this.s.fn.id, items, ctx: this.s.ctx, hasCtx: this.s.hasCtx },
      size: n,
      state: 'queued',
      attempts: 0,
      channel: null,
      host: null,
      timer: null,
      label: n === 1 ? `map item ${first} (${this.s.fn.name})` : `map items ${first}… (${n} items, ${this.s.fn.name})`,
      settle: (err, value, ms) => {
        if (this.failed) return;
        if (err) {
          const at = (err as { batchIndex?: number }).batchIndex;
          if (at !== undefined) {
            Object.defineProperty(err, 'item', { value: positions[at], configurable: true, writable: true });
            err.stack = `${err.stack}\n    [tsmpi/pool] the failing item: map item ${positions[at]}`;
          }
          this.failed = true;
          this.s.onError(err);
          return;
        }
        const values = value as unknown[];
        if (!Array.isArray(values) || values.length !== n) {
          this.failed = true;
          this.s.onError(new TsmpiError('ERR_PROTOCOL', `${u.label}: a worker answered with ${Array.isArray(values) ? values.length : 'no'} values`));
          return;
        }
        const per = ms / n;
        this.perItem = this.perItem === null ? per : 0.5 * this.perItem + 0.5 * per;
        this.s.onValues(positions, values);
      },
    };
    return u;
  }
}
