/**
 * A single-producer / single-consumer byte ring in a SharedArrayBuffer. Pure
 * memory: no waiting, no callbacks (shm.ts does those). Positions are free-running
 * 32-bit counters; the capacity is a power of two.
 */

/** Header: head (bytes written), tail (bytes read), writer-waiting flag; one cache line. */
export const RING_HEADER_BYTES = 64;
const HEAD = 0;
const TAIL = 1;
const WRITER_WAITING = 2;

export class ShmRing {
  private readonly h: Int32Array;
  private readonly data: Uint8Array;
  private readonly mask: number;

  constructor(sab: SharedArrayBuffer, offset: number, readonly capacity: number) {
    if (capacity & (capacity - 1) || capacity > 2 ** 30) throw new RangeError(`ring capacity ${capacity} is not a power of two ≤ 2^30`);
    this.h = new Int32Array(sab, offset, RING_HEADER_BYTES / 4);
    this.data = new Uint8Array(sab, offset + RING_HEADER_BYTES, capacity);
    this.mask = capacity - 1;
  }

  /** Bytes waiting to be read. */
  used(): number {
    return (Atomics.load(this.h, HEAD) - Atomics.load(this.h, TAIL)) >>> 0;
  }

  /** Bytes the next readInPlace can hand over in one view (waiting bytes up to the wrap point). */
  contiguous(): number {
    const tail = Atomics.load(this.h, TAIL) >>> 0;
    return Math.min(this.capacity - (tail & this.mask), ((Atomics.load(this.h, HEAD) >>> 0) - tail) >>> 0);
  }

  /** Bytes free for the producer. */
  free(): number {
    return this.capacity - this.used();
  }

  /**
   * Copy as much of `src` as fits, at most `max` bytes; returns the bytes
   * written. Producer only. A small `max` lets the consumer start on the first
   * piece while the producer copies the next (both copies run in parallel).
   */
  write(src: Uint8Array, max = Infinity): number {
    const head = Atomics.load(this.h, HEAD) >>> 0;
    const free = this.capacity - ((head - (Atomics.load(this.h, TAIL) >>> 0)) >>> 0);
    const n = Math.min(free, src.byteLength, max);
    if (n === 0) return 0;
    const at = head & this.mask;
    const first = Math.min(n, this.capacity - at);
    this.data.set(first === src.byteLength ? src : src.subarray(0, first), at);
    if (n > first) this.data.set(src.subarray(first, n), 0);
    Atomics.store(this.h, HEAD, (head + n) | 0);
    return n;
  }

  /** Copy up to `max` waiting bytes into a new Buffer (null when empty). Consumer only. */
  read(max = Infinity): Buffer | null {
    const tail = Atomics.load(this.h, TAIL) >>> 0;
    const n = Math.min(max, ((Atomics.load(this.h, HEAD) >>> 0) - tail) >>> 0);
    if (n === 0) return null;
    const out = Buffer.allocUnsafe(n);
    const at = tail & this.mask;
    const first = Math.min(n, this.capacity - at);
    out.set(this.data.subarray(at, at + first), 0);
    if (n > first) out.set(this.data.subarray(0, n - first), first);
    Atomics.store(this.h, TAIL, (tail + n) | 0);
    return out;
  }

  /**
   * Hand up to `max` waiting bytes to `cb` as one view of the ring (up to the
   * wrap point), then free what it took: all of them, or the count it returns
   * (the rest stays to be read again). The view is valid only during `cb`.
   * Returns the bytes freed (0 when empty). Consumer only.
   */
  readInPlace(cb: (view: Buffer) => number | void, max = Infinity): number {
    const tail = Atomics.load(this.h, TAIL) >>> 0;
    const at = tail & this.mask;
    const n = Math.min(max, this.capacity - at, ((Atomics.load(this.h, HEAD) >>> 0) - tail) >>> 0);
    if (n === 0) return 0;
    const d = this.data;
    let took = n;
    try {
      const r = cb(Buffer.from(d.buffer, d.byteOffset + at, n));
      if (typeof r === 'number' && r < n) took = r;
    } finally {
      Atomics.store(this.h, TAIL, (tail + took) | 0);
    }
    return took;
  }

  /** The producer has bytes it could not write: the consumer should wake it after reading. */
  setWriterWaiting(on: boolean): void {
    Atomics.store(this.h, WRITER_WAITING, on ? 1 : 0);
  }

  /** Consumer: did the producer ask to be woken? Clears the flag. */
  takeWriterWaiting(): boolean {
    return Atomics.exchange(this.h, WRITER_WAITING, 0) === 1;
  }
}
