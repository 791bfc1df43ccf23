/**
 * A non-blocking operation in flight (MPI_Request). Awaitable; `wait()` gives the
 * received data (`undefined` for a send); `test()` looks without waiting.
 */
export class Request<T = unknown> implements PromiseLike<T> {
  private state: 0 | 1 | 2 = 0;
  private value: T | undefined;
  private error: unknown;
  private readonly promise: Promise<T>;

  /** @internal */
  constructor(promise: Promise<T>) {
    this.promise = promise;
    promise.then(
      (v) => {
        this.state = 1;
        this.value = v;
      },
      (e) => {
        this.state = 2;
        this.error = e;
      },
    );
  }

  /** Wait for completion: the received data, or `undefined` for a send. */
  wait(): Promise<T> {
    return this.promise;
  }

  /** Complete? Never waits. A failed request throws its error here. */
  test(): { done: boolean; value: T | undefined } {
    if (this.state === 2) throw this.error;
    return { done: this.state === 1, value: this.value };
  }

  then<A = T, B = never>(onfulfilled?: ((value: T) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.promise.then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.promise.catch(onrejected);
  }

  /** Wait for every request; resolves to their values in order (MPI_Waitall). */
  static waitAll<T>(requests: Iterable<Request<T> | PromiseLike<T>>): Promise<T[]> {
    return Promise.all(requests);
  }

  /** Wait for the first to complete: its index and value (MPI_Waitany). */
  static waitAny<T>(requests: readonly (Request<T> | PromiseLike<T>)[]): Promise<{ index: number; value: T }> {
    return Promise.race(requests.map((r, index) => Promise.resolve(r).then((value) => ({ index, value }))));
  }
}
