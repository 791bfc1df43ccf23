/**
 * The collective regions of thread ranks (`--threads`): for each of the first
 * DATA_SLOTS communicators, every rank owns one region of the mesh's shared
 * buffer. A collective call moves data by *publishing* into the caller's own
 * region (one copy in) and letting the readers copy out of it (one copy each):
 * no message, no frame, no matching.
 *
 * A region holds one *piece* at a time: a 64-byte header (encoding, element
 * type, flags, the value's total length) and up to `room` bytes of it; a value
 * larger than `room` goes as several pieces in turn. Four words of every
 * (slot, rank) coordinate it (shm-mesh.ts Word):
 *  - PUB_T, PUB_K: which call (its ticket) and which piece the region holds now;
 *    a reader of piece k of call t waits for PUB_T = t and PUB_K ≥ k.
 *  - ACK: readers add one when they are done with a piece. A writer owes itself
 *    the readers of every piece it published, and before it overwrites its
 *    region it waits until ACK covers them (the gate).
 *  - WANT: set while a rank waits on someone's words, so that writers and
 *    readers wake only the ranks that wait (a spurious wake-up of a parked rank
 *    costs a futex round trip and a turn of its event loop).
 * Every wait fails with ERR_PEER_LOST when the rank it waits on has ended.
 */
import { TsmpiError } from '../errors.js';
import { DATA_SLOTS, Word, type ShmMesh } from './shm-mesh.js';

/** Bytes before a piece's data in a region (keeps the data 64-byte aligned). */
export const PIECE_HEAD = 64;
/** Header flag: the piece carries an error token (JSON `{ code, message }`) instead of data. */
export const PIECE_ERROR = 1;

/** What the region of one rank holds. */
export interface Piece {
  enc: number;
  elem: number;
  flags: number;
  /** the whole value's length in bytes */
  total: number;
  /** where this piece's data starts in the shared buffer, and its length */
  offset: number;
  length: number;
}

/** What a thread rank needs from its transport to run collectives in shared memory. */
export interface RegionHost {
  readonly mesh: ShmMesh;
  readonly self: number;
  /** Look at `settled` after every wake-up until it returns true. */
  until(settled: () => boolean): void;
}

export class ShmRegions {
  /** per slot: acks this rank's region still owes it (readers of pieces it published) */
  private readonly owed = new Int32Array(DATA_SLOTS);
  /** per slot and kind (pieces, acks): waits in progress (its WANT word stays set while any is) */
  private readonly waits = [new Int32Array(DATA_SLOTS), new Int32Array(DATA_SLOTS)];
  /** per slot: a call holds this rank's region; calls waiting for it, in the order they asked */
  private readonly busy = new Uint8Array(DATA_SLOTS);
  private readonly queued: (() => void)[][] = Array.from({ length: DATA_SLOTS }, () => []);
  readonly room: number;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;

  constructor(readonly host: RegionHost) {
    const d = host.mesh.d;
    this.room = d.regionBytes - PIECE_HEAD;
    this.i32 = new Int32Array(d.sab);
    this.f64 = new Float64Array(d.sab);
  }

  /** One call's use of the regions; null when a member is not a thread rank here or the communicator has no data slot. */
  call(slot: number, ticket: number, members: readonly number[]): RegionCall | null {
    const mesh = this.host.mesh;
    if (slot >= DATA_SLOTS || members.length < 2 || !members.every((m) => mesh.has(m))) return null;
    return new RegionCall(this, slot, ticket, members);
  }

  /**
   * @internal Hold this rank's region of `slot` for one call (null: it was free
   * and is now held). Calls that are in flight together on one communicator take
   * it in the order they started, which is the same order on every rank.
   */
  acquire(slot: number): Promise<void> | null {
    if (!this.busy[slot]) {
      this.busy[slot] = 1;
      return null;
    }
    return new Promise<void>((resolve) => this.queued[slot]!.push(resolve));
  }

  /** @internal */
  release(slot: number): void {
    const next = this.queued[slot]!.shift();
    if (next) next();
    else this.busy[slot] = 0;
  }

  /** @internal */
  word(slot: number, rank: number, w: number): number {
    return this.host.mesh.word(slot, rank, w);
  }

  /** @internal Write a piece header and data into this rank's region. */
  writePiece(slot: number, p: Omit<Piece, 'offset'>, data: Uint8Array[] | null): void {
    const mesh = this.host.mesh;
    const base = mesh.regionOffset(slot, this.host.self);
    const h = base >> 2;
    this.i32[h] = p.enc;
    this.i32[h + 1] = p.elem;
    this.i32[h + 2] = p.flags;
    this.i32[h + 3] = p.length;
    this.f64[(base >> 3) + 2] = p.total;
    if (data) {
      const out = new Uint8Array(mesh.d.sab, base + PIECE_HEAD, p.length);
      let off = 0;
      for (const d of data) {
        out.set(d, off);
        off += d.byteLength;
      }
    }
  }

  /** @internal The piece `rank`'s region holds now. */
  readPiece(slot: number, rank: number): Piece {
    const base = this.host.mesh.regionOffset(slot, rank);
    const h = base >> 2;
    return { enc: this.i32[h]!, elem: this.i32[h + 1]!, flags: this.i32[h + 2]!, length: this.i32[h + 3]!, total: this.f64[(base >> 3) + 2]!, offset: base + PIECE_HEAD };
  }

  /** @internal */
  owe(slot: number, n: number): void {
    this.owed[slot]! += n;
  }

  /** @internal How many acks the gate waits for; taken once they are in. */
  owedOf(slot: number): number {
    return this.owed[slot]!;
  }

  /** @internal */
  settle(slot: number): void {
    const c = this.host.mesh.control;
    Atomics.sub(c, this.word(slot, this.host.self, Word.ACK), this.owed[slot]!);
    this.owed[slot] = 0;
  }

  /**
   * Resolve once `settled()` holds (null when it already does); reject with
   * ERR_PEER_LOST once `lost()` names a rank that ended instead.
   */
  wait(slot: number, kind: 'piece' | 'ack', settled: () => boolean, lost: () => string | null): Promise<void> | null {
    if (settled()) return null;
    const c = this.host.mesh.control;
    const want = this.word(slot, this.host.self, kind === 'piece' ? Word.WANT : Word.WANT_ACK);
    const waits = this.waits[kind === 'piece' ? 0 : 1]!;
    if (waits[slot]!++ === 0) Atomics.store(c, want, 1);
    const done = () => {
      if (--waits[slot]! === 0) Atomics.store(c, want, 0);
    };
    // WANT is set before the second look: a writer that changed a word after
    // it sees WANT, or the second look sees the change.
    if (settled()) {
      done();
      return null;
    }
    return new Promise<void>((resolve, reject) => {
      this.host.until(() => {
        if (settled()) {
          done();
          resolve();
          return true;
        }
        const why = lost();
        if (why === null) return false;
        done();
        reject(new TsmpiError('ERR_PEER_LOST', why));
        return true;
      });
    });
  }

  /** Wake the ranks among `ranks` that wait for pieces (or acks) of `slot`. */
  wakeWaiting(slot: number, ranks: readonly number[], kind: 'piece' | 'ack' = 'piece'): void {
    const mesh = this.host.mesh;
    const c = mesh.control;
    const w = kind === 'piece' ? Word.WANT : Word.WANT_ACK;
    for (const r of ranks) if (r !== this.host.self && Atomics.load(c, this.word(slot, r, w)) === 1) mesh.wake(r);
  }
}

/** One collective call: publish into this rank's region, read others'. Ranks are world ranks. */
export class RegionCall {
  private readonly mesh: ShmMesh;
  private readonly self: number;
  readonly sab: SharedArrayBuffer;
  private held = false;

  constructor(
    private readonly regions: ShmRegions,
    readonly slot: number,
    readonly ticket: number,
    readonly members: readonly number[],
  ) {
    this.mesh = regions.host.mesh;
    this.self = regions.host.self;
    this.sab = this.mesh.d.sab;
  }

  get room(): number {
    return this.regions.room;
  }

  /** Wait until every reader of what this region held is done with it (before overwriting it). */
  gate(): Promise<void> | null {
    const rg = this.regions;
    const need = rg.owedOf(this.slot);
    if (need === 0) return null;
    const c = this.mesh.control;
    const ack = rg.word(this.slot, this.self, Word.ACK);
    const p = rg.wait(
      this.slot,
      'ack',
      () => Atomics.load(c, ack) >= need,
      () => {
        const gone = this.members.find((m) => m !== this.self && !this.mesh.alive(m));
        return gone === undefined ? null : `rank ${gone} ended before it read this rank's part of a collective`;
      },
    );
    if (!p) {
      rg.settle(this.slot);
      return null;
    }
    return p.then(() => rg.settle(this.slot));
  }

  /**
   * Say that this region now holds piece `k` (its header and data already
   * written), for `readers` readers, and wake those of `wake` that wait. With
   * `publishers` (the ranks that all publish piece k, whose readers wait for all
   * of them): wake only once all of them did, so that each waiter is woken
   * once, not once a publisher.
   */
  announce(k: number, readers: number, wake: readonly number[], publishers: readonly number[] | null = null): void {
    const c = this.mesh.control;
    const rg = this.regions;
    rg.owe(this.slot, readers);
    Atomics.store(c, rg.word(this.slot, this.self, Word.PUB_K), k);
    Atomics.store(c, rg.word(this.slot, this.self, Word.PUB_T), this.ticket);
    // Two members that announce at once both see each other's store (sequentially
    // consistent atomics), so at least one of them sees all and wakes.
    if (!publishers || this.all(k, publishers)) rg.wakeWaiting(this.slot, wake);
  }

  /** The region of every rank of `ranks` holds piece `k` of this call (or a later one). */
  all(k: number, ranks: readonly number[]): boolean {
    for (const m of ranks) if (!this.ready(m, k)) return false;
    return true;
  }

  /** Wait until every rank of `ranks` has published piece `k` of this call (one wake-up, from the last of them). */
  allReady(k: number, ranks: readonly number[] = this.members): Promise<void> | null {
    return this.regions.wait(
      this.slot,
      'piece',
      () => this.all(k, ranks),
      () => {
        const gone = ranks.find((m) => !this.ready(m, k) && !this.mesh.alive(m));
        return gone === undefined ? null : `rank ${gone} ended before it gave its part of a collective`;
      },
    );
  }

  /** Write piece `k` (after the gate) and announce it. The region stays this call's until `end()`. */
  async put(k: number, p: Omit<Piece, 'offset'>, data: Uint8Array[] | null, readers: number, wake: readonly number[], publishers: readonly number[] | null = null): Promise<void> {
    if (!this.held) {
      this.held = true;
      const turn = this.regions.acquire(this.slot);
      if (turn) await turn;
    }
    const g = this.gate();
    if (g) await g;
    this.regions.writePiece(this.slot, p, data);
    this.announce(k, readers, wake, publishers);
  }

  /** Piece `k` (or a later one) of this call is in `rank`'s region: its header; null while it is not. */
  ready(rank: number, k: number): boolean {
    const c = this.mesh.control;
    const rg = this.regions;
    return Atomics.load(c, rg.word(this.slot, rank, Word.PUB_T)) === this.ticket && Atomics.load(c, rg.word(this.slot, rank, Word.PUB_K)) >= k;
  }

  /** Wait for piece `k` of this call in `rank`'s region; then its header. */
  async piece(rank: number, k: number): Promise<Piece> {
    const w = this.regions.wait(
      this.slot,
      'piece',
      () => this.ready(rank, k),
      () => (this.mesh.alive(rank) ? null : `rank ${rank} ended before it gave its part of a collective`),
    );
    if (w) await w;
    return this.regions.readPiece(this.slot, rank);
  }

  /** The bytes of a piece, as a view of shared memory (valid until `ack`). */
  bytes(p: Piece, from = 0, to = p.length): Buffer {
    return Buffer.from(this.sab, p.offset + from, to - from);
  }

  /** The call is over: a later call may write this rank's region. */
  end(): void {
    if (!this.held) return;
    this.held = false;
    this.regions.release(this.slot);
  }

  /** Done reading `rank`'s region for now. */
  ack(rank: number): void {
    const rg = this.regions;
    Atomics.add(this.mesh.control, rg.word(this.slot, rank, Word.ACK), 1);
    rg.wakeWaiting(this.slot, [rank], 'ack');
  }
}
