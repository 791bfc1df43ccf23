/**
 * The shared memory of the ranks of one process (`tsmpirun --threads`): one
 * SharedArrayBuffer holding, for every ordered pair of local ranks (a, b), a
 * data ring a→b and an ack ring b→a (the two directions of a's link to b), and
 * for every rank a doorbell, a sleeping flag and an alive flag. Made by the
 * launcher, handed to every worker at start; the layout is a pure function of
 * (ranks, ring sizes), so both sides compute the same offsets.
 */
import { RING_HEADER_BYTES, ShmRing } from './shm-ring.js';

/** The workerData key under which a thread rank finds its mesh. */
export const SHM_WORKER_DATA = 'tsmpiShm';

/** All data rings together stay under this (the OS commits pages only when touched). */
const MESH_BUDGET = 64 * 1024 * 1024;
/** All collective regions together stay under this (untouched pages cost nothing). */
const REGION_BUDGET = 128 * 1024 * 1024;
const REGION_MIN = 128 * 1024;
const REGION_MAX = 8 * 1024 * 1024;
const DATA_MIN = 64 * 1024;
const DATA_MAX = 4 * 1024 * 1024;
const ACK_RING = 4 * 1024;

/** What a worker is given: plain values and the SharedArrayBuffer (structured-cloned by reference). */
export interface ShmMeshData {
  id: string;
  sab: SharedArrayBuffer;
  /** world ranks of this process, in order */
  ranks: number[];
  dataBytes: number;
  ackBytes: number;
  /** bytes of one collective region (one a rank for each of the first DATA_SLOTS communicators; two halves) */
  regionBytes: number;
  /** busy-wait this long before parking (0 when ranks outnumber cores) */
  spinUs: number;
  self: number;
}

/** Flags a rank: index in the Int32 control block. */
const BELL = 0;
const SLEEPING = 1;
const ALIVE = 2;
const PER_RANK = 4;
/** Communicators (by id, ctx / 2) whose barriers can run on shared counters; later ones use messages. */
export const COLL_SLOTS = 64;
/** Communicators whose collectives move data through shared regions (one region a rank each). */
export const DATA_SLOTS = 8;

/** Words of one (communicator slot, rank): see ShmMesh.word. */
export const Word = {
  /** the ticket of the last barrier this rank entered */
  ARRIVE: 0,
  /** 1 while this rank waits for others' pieces of this slot (wake it after a PUB change) */
  WANT: 1,
  /** 1 while this rank waits for readers' acks of its region (wake it after its last ack) */
  WANT_ACK: 2,
  /** then, for each half of the rank's region (HALF_WORDS apart): */
  /** the ticket of the collective call whose piece is in this half… */
  PUB_T: 3,
  /** …and which one (2·piece + phase: a call may publish several pieces, some twice) */
  PUB_K: 4,
  /** readers that finished with this half since the rank last reset the count */
  ACK: 5,
  /** the acks the rank waits for before it may overwrite this half */
  OWED: 6,
} as const;
export const HALF_WORDS = 4;
const SLOT_WORDS = 3 + 2 * HALF_WORDS;

/** Int32 words before the regions: every rank's flags, then SLOT_WORDS a (slot, rank). */
function controlWords(n: number): number {
  return n * PER_RANK + COLL_SLOTS * n * SLOT_WORDS;
}

function pow2Floor(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}

export class ShmMesh {
  readonly control: Int32Array;
  private readonly index = new Map<number, number>();
  private readonly ringBase: number;
  private readonly regionBase: number;

  constructor(readonly d: Omit<ShmMeshData, 'self'>) {
    d.ranks.forEach((r, i) => this.index.set(r, i));
    const n = d.ranks.length;
    this.control = new Int32Array(d.sab, 0, controlWords(n));
    this.regionBase = align(controlWords(n) * 4);
    this.ringBase = this.regionBase + DATA_SLOTS * n * d.regionBytes;
  }

  static create(ranks: readonly number[], spinUs: number): ShmMesh {
    const n = ranks.length;
    const pairs = Math.max(1, n * (n - 1));
    const dataBytes = pow2Floor(Math.min(DATA_MAX, Math.max(DATA_MIN, MESH_BUDGET / pairs)));
    const regionBytes = pow2Floor(Math.min(REGION_MAX, Math.max(REGION_MIN, REGION_BUDGET / (DATA_SLOTS * Math.max(1, n)))));
    const ringBase = align(controlWords(n) * 4) + DATA_SLOTS * n * regionBytes;
    const bytes = ringBase + pairs * (RING_HEADER_BYTES * 2 + dataBytes + ACK_RING);
    const sab = new SharedArrayBuffer(bytes);
    const id = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    const m = new ShmMesh({ id, sab, ranks: [...ranks], dataBytes, ackBytes: ACK_RING, regionBytes, spinUs });
    for (let i = 0; i < n; i++) Atomics.store(m.control, i * PER_RANK + ALIVE, 1);
    return m;
  }

  forRank(self: number): ShmMeshData {
    return { ...this.d, self };
  }

  has(rank: number): boolean {
    return this.index.has(rank);
  }

  private slot(rank: number): number {
    const i = this.index.get(rank);
    if (i === undefined) throw new RangeError(`rank ${rank} is not in this mesh`);
    return i * PER_RANK;
  }

  /** The ring carrying a's link to b: its data (a→b) or its acks (b→a). */
  ring(a: number, b: number, kind: 'data' | 'ack'): ShmRing {
    const n = this.d.ranks.length;
    const ia = this.index.get(a)!;
    const ib = this.index.get(b)!;
    const pair = ia * (n - 1) + (ib < ia ? ib : ib - 1);
    const pairBytes = RING_HEADER_BYTES * 2 + this.d.dataBytes + this.d.ackBytes;
    const base = this.ringBase + pair * pairBytes;
    return kind === 'data'
      ? new ShmRing(this.d.sab, base, this.d.dataBytes)
      : new ShmRing(this.d.sab, base + RING_HEADER_BYTES + this.d.dataBytes, this.d.ackBytes);
  }

  bell(rank: number): number {
    return Atomics.load(this.control, this.slot(rank) + BELL);
  }

  /** Wake `rank`'s poller (something arrived for it, or room appeared). */
  wake(rank: number): void {
    const s = this.slot(rank);
    Atomics.add(this.control, s + BELL, 1);
    if (Atomics.load(this.control, s + SLEEPING) === 1) Atomics.notify(this.control, s + BELL);
  }

  /** Park `self` until its doorbell moves from `seen`; null when it already moved. */
  park(self: number, seen: number): Promise<unknown> | null {
    const s = this.slot(self);
    Atomics.store(this.control, s + SLEEPING, 1);
    if (Atomics.load(this.control, s + BELL) !== seen) {
      Atomics.store(this.control, s + SLEEPING, 0);
      return null;
    }
    const w = waitAsync(this.control, s + BELL, seen);
    if (!w.async) {
      Atomics.store(this.control, s + SLEEPING, 0);
      return null;
    }
    return w.value.then(() => Atomics.store(this.control, s + SLEEPING, 0));
  }

  /** `rank` entered the barrier whose ticket is `ticket` on communicator slot `slot`. */
  arrive(slot: number, rank: number, ticket: number): void {
    Atomics.store(this.control, this.word(slot, rank, Word.ARRIVE), ticket);
  }

  /** Has `rank` entered the barrier with `ticket` (or a later one) on `slot`? Tickets wrap. */
  arrived(slot: number, rank: number, ticket: number): boolean {
    return ((Atomics.load(this.control, this.word(slot, rank, Word.ARRIVE)) - ticket) | 0) >= 0;
  }

  /** The index in `control` of one of `rank`'s words of communicator slot `slot`. */
  word(slot: number, rank: number, w: number): number {
    const n = this.d.ranks.length;
    return n * PER_RANK + (slot * n + this.index.get(rank)!) * SLOT_WORDS + w;
  }

  /** One half of `rank`'s collective region of communicator slot `slot` (slot < DATA_SLOTS): its byte offset in the buffer. */
  regionOffset(slot: number, rank: number, half: number): number {
    return this.regionBase + (slot * this.d.ranks.length + this.index.get(rank)!) * this.d.regionBytes + half * (this.d.regionBytes >> 1);
  }

  alive(rank: number): boolean {
    return Atomics.load(this.control, this.slot(rank) + ALIVE) === 1;
  }

  /** The launcher saw `rank` end: every peer learns it at its next look. */
  markGone(rank: number): void {
    if (!this.has(rank)) return;
    Atomics.store(this.control, this.slot(rank) + ALIVE, 0);
    for (const r of this.d.ranks) if (r !== rank) this.wake(r);
  }
}

/** Atomics.waitAsync (V8 has it since Node 16; TypeScript's ES2023 lib does not declare it). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<unknown> | string } }).waitAsync as (
  a: Int32Array,
  i: number,
  v: number,
) => { async: false; value: string } | { async: true; value: Promise<unknown> };

function align(n: number): number {
  return Math.ceil(n / 64) * 64;
}
