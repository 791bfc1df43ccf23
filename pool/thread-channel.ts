/**
 * A local worker as a worker_thread (workerType: 'thread'): messages go as
 * structured-clone values over the thread's port, with no encoding. Its own
 * heap limit (resourceLimits) makes an out-of-memory task end that thread
 * only; a task calling process.exit ends its thread only.
 */
import { getHeapStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { TsmpiError } from '../runtime/errors.js';
import { describeUnclonable } from '../runtime/wire/codec.js';
import type { Channel } from './channel.js';
import type { FromWorker, ToWorker } from './messages.js';

const ENTRY = new URL('./thread-main.js', import.meta.url);

/** Each thread's old-space limit: what a process worker would get by default. */
const heapMb = () => Math.max(64, Math.floor(getHeapStatistics().heap_size_limit / 2 ** 20));

class ThreadChannel implements Channel {
  readonly host = 'localhost';
  readonly local = true;
  onMessage: (m: FromWorker) => void = () => {};
  onLost: (why: string, ours: boolean) => void = () => {};
  private gone = false;
  private error: Error | null = null;
  private readonly w: Worker;

  constructor(heapLimitMb: number | null) {
    // execArgv: none of the script's own (--input-type, loaders), as a process worker starts
    this.w = new Worker(ENTRY, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: heapLimitMb ?? heapMb() } });
    this.w.on('message', (m: FromWorker) => {
      if (!this.gone) this.onMessage(m);
    });
    this.w.on('error', (e) => (this.error = e));
    this.w.on('exit', (code) => {
      const e = this.error as (Error & { code?: string }) | null;
      if (e?.code === 'ERR_WORKER_OUT_OF_MEMORY') this.lost(`ran out of heap (${e.message})`);
      else if (e) this.lost(`ended with an uncaught ${e.name}: ${e.message}`);
      else this.lost(`exited with code ${code}`);
    });
  }

  send(m: ToWorker): void {
    if (this.gone) return;
    try {
      this.w.postMessage(m);
    } catch (e) {
      throw new TsmpiError('ERR_SERIALIZE', `cannot send this value: ${describeUnclonable(m)}`, { cause: e });
    }
  }

  ref(on: boolean): void {
    if (on) this.w.ref();
    else this.w.unref();
  }

  kill(): void {
    if (this.gone) return;
    void this.w.terminate();
    this.lost('was ended by the pool', true);
  }

  private lost(why: string, ours = false): void {
    if (this.gone) return;
    this.gone = true;
    this.onLost(why, ours);
  }
}

/** One local thread worker; it says ready over its port. */
export function startThreadWorker(heapLimitMb: number | null): Promise<Channel> {
  return Promise.resolve(new ThreadChannel(heapLimitMb));
}
