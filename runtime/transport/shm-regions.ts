/**
 * The collective regions of thread ranks (`--threads`): for each of the first
 * DATA_SLOTS communicators, every rank owns one region of the mesh's shared
 * buffer. A collective call moves data by *publishing* into the caller's own
 * region (one copy in) and letting the readers copy out of it (one copy each):
 * no message, no frame, no matching.
 *
 * A region has two halves, each holding one *piece* at a time: a 64-byte
 * header (encoding, element type, flags, the value's total length) and up to
 * `room` bytes of the value; a larger value goes as several pieces. Piece k of
 * the call with ticket t goes to half (t + k) mod 2, so back-to-back calls and
 * the pieces of one large value alternate halves: a writer fills one while the
 * readers still copy out of the other. Words of every (slot, rank) coordinate
 * them (shm-mesh.ts Word):
 *  - PUB_T, PUB_K (a half's): which call (its ticket) and which piece (2k, or
 *    2k + 1 for a piece's second phase) the half holds now; a reader waits for
 *    PUB_T = t and PUB_K ≥ 2k + phase.
 *  - ACK, OWED (a half's): readers add one to ACK when done with a piece; OWED
 *    counts the readers of everything the writer published there. Before the
 *    writer overwrites the half it waits until ACK reaches OWED (the gate); the
 *    reader whose ack completes it wakes the writer.
 *  - WANT, WANT_ACK: set while a rank waits for pieces (acks), so that writers
 *    and readers wake only the ranks that wait (a spurious wake-up of a parked
 *    rank costs a futex round trip and a turn of its event loop).
 * Every wait fails with ERR_PEER_LOST when the rank it waits on has ended.
 */
import { TsmpiError } from '../errors.js';
import { DATA_SLOTS, HALF_WORDS, Word, type ShmMesh } from './shm-mesh.js';

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

/** The half of a region that piece `k` of the call with ticket `t` uses. */
export function halfOf(t: number, k: number): number {
  return (t + k) & 1;
}

export class ShmRegions {
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
    this.room = (d.regionBytes >> 1) - PIECE_HEAD;
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

  /** @internal A word of `rank` in `slot`; the half's own words (PUB_T…OWED) of `half`. */
  word(slot: number, rank: number, w: number, half = 0): number {
    return this.host.mesh.word(slot, rank, w >= Word.PUB_T ? w + half * HALF_WORDS : w);
  }

  /** @internal Write a piece header and data into one half of this rank's region. */
  writePiece(slot: number, half: number, p: Omit<Piece, 'offset'>, data: Uint8Array[] | null): void {
    const mesh = this.host.mesh;
    const base = mesh.regionOffset(slot, this.host.self, half);
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

  /** @internal The piece one half of `rank`'s region holds now. */
  readPiece(slot: number, rank: number, half: number): Piece {
    const base = this.host.mesh.regionOffset(slot, rank, half);
    const h = base >> 2;
    return { enc: this.i32[h]!, elem: this.i32[h + 1]!, flags: this.i32[h + 2]!, length: this.i32[h + 3]!, total: this.f64[(base >> 3) + 2]!, offset: base + PIECE_HEAD };
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

  /** Wait until every reader of what `half` of this rank's region held is done with it (before overwriting it). */
  gate(half: number): Promise<void> | null {
    const rg = this.regions;
    const c = this.mesh.control;
    const ack = rg.word(this.slot, this.self, Word.ACK, half);
    const owed = rg.word(this.slot, this.self, Word.OWED, half);
    const need = Atomics.load(c, owed);
    if (need === 0) return null;
    // Every ack of what it owes is in: nobody reads the half now, so both counts restart.
    const settle = () => {
      Atomics.sub(c, ack, need);
      Atomics.store(c, owed, 0);
    };
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
      settle();
      return null;
    }
    return p.then(settle);
  }

  /**
   * Say that this region now holds piece `k` (phase 0 or 1; its header and data
   * already written), for `readers` readers, and wake those of `wake` that
   * wait. With `publishers` (the ranks that all publish piece k, whose readers
   * wait for all of them): wake only once all of them did, so that each waiter
   * is woken once, not once a publisher.
   */
  announce(k: number, phase: number, readers: number, wake: readonly number[], publishers: readonly number[] | null = null): void {
    const c = this.mesh.control;
    const rg = this.regions;
    const h = halfOf(this.ticket, k);
    Atomics.add(c, rg.word(this.slot, this.self, Word.OWED, h), readers);
    Atomics.store(c, rg.word(this.slot, this.self, Word.PUB_K, h), 2 * k + phase);
    Atomics.store(c, rg.word(this.slot, this.self, Word.PUB_T, h), this.ticket);
    // Two members that announce at once both see each other's store (sequentially
    // consistent atomics), so at least one of them sees all and wakes.
    if (!publishers || this.all(k, phase, publishers)) rg.wakeWaiting(this.slot, wake);
  }

  /** The region of every rank of `ranks` holds piece `k` (phase `phase`) of this call. */
  all(k: number, phase: number, ranks: readonly number[]): boolean {
    for (const m of ranks) if (!this.ready(m, k, phase)) return false;
    return true;
  }

  /** Wait until every rank of `ranks` has published piece `k` (phase `phase`) of this call (one wake-up, from the last of them). */
  allReady(k: number, phase = 0, ranks: readonly number[] = this.members): Promise<void> | null {
    return this.regions.wait(
      this.slot,
      'piece',
      () => this.all(k, phase, ranks),
      () => {
        const gone = ranks.find((m) => !this.ready(m, k, phase) && !this.mesh.alive(m));
        return gone === undefined ? null : `rank ${gone} ended before it gave its part of a collective`;
      },
    );
  }

  /** Write piece `k` (after its half's gate) and announce it. The region stays this call's until `end()`. */
  async put(k: number, p: Omit<Piece, 'offset'>, data: Uint8Array[] | null, readers: number, wake: readonly number[], publishers: readonly number[] | null = null): Promise<void> {
    if (!this.held) {
      this.held = true;
      const turn = this.regions.acquire(this.slot);
      if (turn) await turn;
    }
    const h = halfOf(this.ticket, k);
    const g = this.gate(h);
    if (g) await g;
    this.regions.writePiece(this.slot, h, p, data);
    this.announce(k, 0, readers, wake, publishers);
  }

  /** Piece `k` (phase `phase`) of this call is in `rank`'s region. */
  ready(rank: number, k: number, phase = 0): boolean {
    const c = this.mesh.control;
    const rg = this.regions;
    const h = halfOf(this.ticket, k);
    return Atomics.load(c, rg.word(this.slot, rank, Word.PUB_T, h)) === this.ticket && Atomics.load(c, rg.word(this.slot, rank, Word.PUB_K, h)) >= 2 * k + phase;
  }

  /** Wait for piece `k` (phase `phase`) of this call in `rank`'s region; then its header. */
  async piece(rank: number, k: number, phase = 0): Promise<Piece> {
    const w = this.regions.wait(
      this.slot,
      'piece',
      () => this.ready(rank, k, phase),
      () => (this.mesh.alive(rank) ? null : `rank ${rank} ended before it gave its part of a collective`),
    );
    if (w) await w;
    return this.head(rank, k);
  }

  /** The header of piece `k` in `rank`'s region, known to be there (after `allReady`). */
  head(rank: number, k: number): Piece {
    return this.regions.readPiece(this.slot, rank, halfOf(this.ticket, k));
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

  /** Done reading piece `k` in `rank`'s region; the ack that completes what the writer waits for wakes it. */
  ack(rank: number, k: number): void {
    const rg = this.regions;
    const c = this.mesh.control;
    const h = halfOf(this.ticket, k);
    const n = Atomics.add(c, rg.word(this.slot, rank, Word.ACK, h), 1) + 1;
    if (n >= Atomics.load(c, rg.word(this.slot, rank, Word.OWED, h))) rg.wakeWaiting(this.slot, [rank], 'ack');
  }
}
