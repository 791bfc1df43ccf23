/**
 * The handle of one submitted task: awaitable (a PromiseLike), with its state,
 * the host it ran on, cancel() (answers at once) and onPartial().
 */
import type { FutureState } from './engine.js';

export interface FutureCore {
  readonly id: number;
  readonly state: FutureState;
  readonly host: string | null;
  cancel(): boolean;
}

export class Future<T = unknown> implements PromiseLike<T> {
  /** @internal */
  readonly promise: Promise<T>;
  private readonly partialHandlers: ((value: unknown) => void)[] = [];
  private readonly partials: unknown[] = [];

  /** @internal */
  constructor(
    private readonly core: FutureCore,
    promise: Promise<T>,
  ) {
    this.promise = promise;
    // A future nobody awaits must not end the process with an unhandled rejection.
    promise.catch(() => {});
  }

  get id(): number {
    return this.core.id;
  }

  get state(): FutureState {
    return this.core.state;
  }

  /** Where it ran (the host's name), once running; null before. */
  get host(): string | null {
    return this.core.host;
  }

  /** True if it will not complete: a queued task is dropped, a running one's worker is ended (and replaced). */
  cancel(): boolean {
    return this.core.cancel();
  }

  /** Call `cb` with every reportPartial(value) the task makes (and those it made already). */
  onPartial(cb: (value: unknown) => void): this {
    this.partialHandlers.push(cb);
    for (const v of this.partials) cb(v);
    return this;
  }

  /** @internal */
  partial(value: unknown): void {
    this.partials.push(value);
    for (const h of this.partialHandlers) h(value);
  }

  then<R1 = T, R2 = never>(onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null, onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null): Promise<R1 | R2> {
    return this.promise.then(onFulfilled, onRejected);
  }

  catch<R = never>(onRejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.promise.catch(onRejected);
  }

  finally(f?: (() => void) | null): Promise<T> {
    return this.promise.finally(f);
  }
}

/**
 * The futures in the order they settle. The loop variable is the settled
 * Future itself (await it for its value or its error), never its value.
 */
export function asCompleted<T>(futures: Iterable<Future<T>>): AsyncIterable<Future<T>> {
  const list = [...futures];
  return {
    [Symbol.asyncIterator](): AsyncIterator<Future<T>> {
      const settled: Future<T>[] = [];
      let wake: (() => void) | null = null;
      for (const f of list) {
        const done = () => {
          settled.push(f);
          wake?.();
        };
        f.promise.then(done, done);
      }
      let given = 0;
      return {
        async next(): Promise<IteratorResult<Future<T>>> {
          if (given >= list.length) return { done: true, value: undefined };
          while (settled.length === 0) await new Promise<void>((r) => (wake = r));
          wake = null;
          given++;
          // Wrapped in an object: a Future is a thenable and must not be unwrapped.
          return { done: false, value: settled.shift()! };
        },
      };
    },
  };
}
