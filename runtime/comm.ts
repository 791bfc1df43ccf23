/**
 * Comm: a communicator (MPI_Comm). Thin: it validates arguments, translates ranks,
 * and hands off to the engine, the fabric and the collective algorithms.
 */
import { ANY_SOURCE, ANY_TAG, PROC_NULL, TAG_UB } from './constants.js';
import { TsmpiError } from './errors.js';
import { Request } from './request.js';
import type { Received, Status } from './status.js';
import { decodeValue, encodeValue, type Encoded } from './wire/codec.js';
import { FrameFlag } from './wire/frame.js';
import type { Message } from './engine.js';
import type { World } from './world.js';
import type { Entry } from './pending.js';
import * as coll from './collectives/collectives.js';
import { SUM, toOp, type OpLike } from './op.js';
import { UNDEFINED } from './constants.js';
import { bytesOf, land, refusal, type BufferLike } from './buffers.js';

export interface SendrecvOptions {
  sendTag?: number;
  source?: number;
  recvTag?: number;
}

/** @internal what a communicator is made of */
export interface CommCore {
  world: World;
  /** communicator rank → world rank */
  group: readonly number[];
  /** world rank → communicator rank */
  rankOf: ReadonlyMap<number, number>;
  /** context id of point-to-point traffic; collectives use ctx + 1 */
  ctx: number;
  rank: number;
  /** sequence number of the next collective call (its tag) */
  seq: number;
}

export class Comm {
  readonly rank: number;
  readonly size: number;
  /** @internal */
  readonly core: CommCore;

  /** @internal */
  constructor(core: CommCore) {
    this.core = core;
    this.rank = core.rank;
    this.size = core.group.length;
  }

  /** A small number naming this communicator in reports. */
  get id(): number {
    return this.core.ctx >>> 1;
  }

  // ---- point to point -------------------------------------------------

  /** Send `data` to `dest`; resolves once `data` may be reused (buffered mode). */
  send(data: unknown, dest: number, tag = 0): Promise<void> {
    return this.startSend(data, dest, tag, false, 'send');
  }

  /** Synchronous send: resolves once the receiver has matched the message. */
  ssend(data: unknown, dest: number, tag = 0): Promise<void> {
    return this.startSend(data, dest, tag, true, 'ssend');
  }

  isend(data: unknown, dest: number, tag = 0): Request<undefined> {
    return request(this.startSend(data, dest, tag, false, 'isend').then(() => undefined));
  }

  issend(data: unknown, dest: number, tag = 0): Request<undefined> {
    return request(this.startSend(data, dest, tag, true, 'issend').then(() => undefined));
  }

  /** Receive the next matching message's data. */
  recv<T = any>(source: number = ANY_SOURCE, tag: number = ANY_TAG): Promise<T> {
    return this.receive(source, tag, decode, undefined) as Promise<T>;
  }

  /** Receive with the envelope: `{ data, source, tag }`. */
  recvWithStatus<T = any>(source: number = ANY_SOURCE, tag: number = ANY_TAG): Promise<Received<T>> {
    return this.receive(source, tag, (m) => ({ data: decode(m) as T, source: this.core.rankOf.get(m.src)!, tag: m.tag }), { data: undefined as T, source: PROC_NULL, tag: ANY_TAG });
  }

  irecv<T = any>(source: number = ANY_SOURCE, tag: number = ANY_TAG): Request<T> {
    return request(this.recv<T>(source, tag));
  }

  /** Send to `dest` and receive (from `source`, default any) at once; resolves to the received data. */
  async sendrecv<T = any>(data: unknown, dest: number, options: SendrecvOptions = {}): Promise<T> {
    const { sendTag = 0, source = ANY_SOURCE, recvTag = ANY_TAG } = options ?? {};
    // Everything that can be refused is checked before the receive is posted,
    // so a refused call never leaves a receive behind to swallow a later message.
    this.checkSource(source);
    this.checkRecvTag(recvTag);
    const e = this.prepareSend(data, dest, sendTag);
    const r = this.recv<T>(source, recvTag);
    r.catch(() => {});
    await this.postSend(e, dest, sendTag, false, 'sendrecv');
    return r;
  }

  /** Wait until a matching message is available, without receiving it. */
  probe(source: number = ANY_SOURCE, tag: number = ANY_TAG): Promise<Status> {
    try {
      this.checkSource(source);
      this.checkRecvTag(tag);
    } catch (e) {
      return Promise.reject(e);
    }
    if (source === PROC_NULL) return Promise.resolve({ source: PROC_NULL, tag: ANY_TAG, bytes: 0 });
    const w = this.core.world;
    const p = w.engine.wait(this.core.ctx, this.worldSource(source), tag, this.core.group, true);
    return w.pending.track(`probe(source=${fmt(source)}, tag=${fmt(tag)})`, this.id, p).then((m) => this.status(m));
  }

  /** A matching message's status if one is available now, else `undefined`. Never waits. */
  iprobe(source: number = ANY_SOURCE, tag: number = ANY_TAG): Status | undefined {
    this.checkSource(source);
    this.checkRecvTag(tag);
    if (source === PROC_NULL) return { source: PROC_NULL, tag: ANY_TAG, bytes: 0 };
    const m = this.core.world.engine.tryProbe(this.core.ctx, this.worldSource(source), tag);
    return m ? this.status(m) : undefined;
  }

  // ---- the buffer tier ------------------------------------------------

  /**
   * Receive into `buf` (a typed array, Buffer or DataView the caller owns and may
   * reuse): `{ source, tag, bytes }`. A message larger than `buf`, or one that is
   * not raw bytes, rejects with ERR_ARG and stays queued for a later receive.
   */
  recvInto(buf: BufferLike, source: number = ANY_SOURCE, tag: number = ANY_TAG): Promise<Status> {
    let into: Uint8Array;
    try {
      into = bytesOf('recvInto', 'buf', buf);
      this.checkSource(source);
      this.checkRecvTag(tag);
    } catch (e) {
      return Promise.reject(e);
    }
    if (source === PROC_NULL) return Promise.resolve({ source: PROC_NULL, tag: ANY_TAG, bytes: 0 });
    const w = this.core.world;
    const refuse = (m: Message) => refusal('recvInto', into, m, this.core.rankOf.get(m.src)!);
    const p = w.engine.wait(this.core.ctx, this.worldSource(source), tag, this.core.group, false, { bytes: into, refuse });
    return w.pending.track(`recvInto(source=${fmt(source)}, tag=${fmt(tag)}, bytes=${into.byteLength})`, this.id, p).then((m) => {
      if (m.flags & FrameFlag.ERROR) decode(m);
      return { source: this.core.rankOf.get(m.src)!, tag: m.tag, bytes: land(into, m.payload) };
    });
  }

  /** The root's `buf` lands in every rank's `buf` (same size everywhere, as MPI_Bcast). */
  bcastInto(buf: BufferLike, root = 0): Promise<void> {
    let into: Uint8Array;
    try {
      into = bytesOf('bcastInto', 'buf', buf);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.collective(`bcastInto(root=${root}, bytes=${into.byteLength})`, (r) => coll.bcastInto(r, buf, into, root), root);
  }

  /**
   * Element-wise reduction of every rank's `sendBuf` into `recvBuf` (typed arrays
   * of one type and length; they may be the same array).
   */
  allreduceInto(sendBuf: BufferLike, recvBuf: BufferLike, op: OpLike = SUM): Promise<void> {
    try {
      const a = bytesOf('allreduceInto', 'sendBuf', sendBuf);
      const b = bytesOf('allreduceInto', 'recvBuf', recvBuf);
      if (sendBuf.constructor !== recvBuf.constructor || a.byteLength !== b.byteLength) {
        throw new TsmpiError('ERR_ARG', `allreduceInto: sendBuf and recvBuf must be of one type and length (got ${sendBuf.constructor.name}(${a.byteLength} bytes) and ${recvBuf.constructor.name}(${b.byteLength} bytes))`);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.withOp(op, (o) =>
      this.collective(`allreduceInto(op=${o.name}, bytes=${recvBuf.byteLength})`, async (r) => {
        const result = (await coll.allreduce(r, sendBuf, o, recvBuf instanceof DataView ? null : (recvBuf as never))) as ArrayBufferView;
        if (result !== recvBuf) land(bytesOf('allreduceInto', 'recvBuf', recvBuf), bytesOf('allreduceInto', 'result', result));
      }),
    );
  }

  // ---- collectives ---------------------------------------------------

  /** Wait until every rank of the communicator has called barrier. */
  barrier(): Promise<void> {
    return this.collective('barrier()', (r) => coll.barrier(r));
  }

  /** `data` from `root`, on every rank. */
  bcast<T = any>(data?: T, root = 0): Promise<T> {
    return this.collective(`bcast(root=${root})`, (r) => coll.bcast(r, data, root) as Promise<T>, root);
  }

  /** Rank i gets `values[i]` of the root's array (others pass `undefined`). */
  scatter<T = any>(values: readonly T[] | undefined, root = 0): Promise<T> {
    return this.collective(`scatter(root=${root})`, (r) => coll.scatter(r, values, root) as Promise<T>, root);
  }

  /** Every rank's `data`, as an array in rank order at `root`; `undefined` elsewhere. */
  gather<T = any>(data: T, root = 0): Promise<T[] | undefined> {
    return this.collective(`gather(root=${root})`, (r) => coll.gather(r, data, root) as Promise<T[] | undefined>, root);
  }

  /** Every rank's `data`, as an array in rank order, on every rank. */
  allgather<T = any>(data: T): Promise<T[]> {
    return this.collective('allgather()', (r) => coll.allgather(r, data) as Promise<T[]>);
  }

  /** Rank i sends `values[j]` to rank j and gets back what each rank sent it, in rank order. */
  alltoall<T = any>(values: readonly T[]): Promise<T[]> {
    return this.collective('alltoall()', (r) => coll.alltoall(r, values) as Promise<T[]>);
  }

  /** The reduction of every rank's `data` at `root`; `undefined` elsewhere. */
  reduce<T = any>(data: T, op: OpLike = SUM, root = 0): Promise<T | undefined> {
    return this.withOp(op, (o) => this.collective(`reduce(op=${o.name}, root=${root})`, (r) => coll.reduce(r, data, o, root) as Promise<T | undefined>, root));
  }

  /** The reduction of every rank's `data`, on every rank. */
  allreduce<T = any>(data: T, op: OpLike = SUM): Promise<T> {
    return this.withOp(op, (o) => this.collective(`allreduce(op=${o.name})`, (r) => coll.allreduce(r, data, o) as Promise<T>));
  }

  /** Inclusive prefix reduction: rank i gets data₀ op … op dataᵢ. */
  scan<T = any>(data: T, op: OpLike = SUM): Promise<T> {
    return this.withOp(op, (o) => this.collective(`scan(op=${o.name})`, (r) => coll.scan(r, data, o, false) as Promise<T>));
  }

  /** Exclusive prefix reduction: rank i gets data₀ op … op dataᵢ₋₁; `undefined` on rank 0. */
  exscan<T = any>(data: T, op: OpLike = SUM): Promise<T | undefined> {
    return this.withOp(op, (o) => this.collective(`exscan(op=${o.name})`, (r) => coll.scan(r, data, o, true) as Promise<T | undefined>));
  }

  // ---- communicators --------------------------------------------------

  /**
   * Split into disjoint communicators, one per `color`; ranks in each are ordered
   * by `key`, then by rank here. Color `UNDEFINED` gives `null`.
   */
  async split(color: number, key: number = this.rank): Promise<Comm | null> {
    if (color !== UNDEFINED && (!Number.isInteger(color) || color < 0)) {
      throw new TsmpiError('ERR_ARG', `split: color must be a non-negative integer or UNDEFINED, got ${String(color)}`);
    }
    if (!Number.isInteger(key)) throw new TsmpiError('ERR_ARG', `split: key must be an integer, got ${String(key)}`);
    const w = this.core.world;
    const all = await this.collective(`split(color=${color}, key=${key})`, (r) => coll.allgather(r, [color, key, w.nextCtx]) as Promise<[number, number, number][]>);
    const ctx = Math.max(...all.map((x) => x[2]));
    w.nextCtx = Math.max(w.nextCtx, ctx + 2);
    if (color === UNDEFINED) return null;
    const members = all
      .map(([c, k], r) => ({ c, k, r }))
      .filter((m) => m.c === color)
      .sort((a, b) => a.k - b.k || a.r - b.r)
      .map((m) => this.core.group[m.r]!);
    return Comm.fromGroup(w, members, ctx);
  }

  /** A communicator with the same ranks whose traffic never mixes with this one's. */
  async dup(): Promise<Comm> {
    const w = this.core.world;
    const ctx = await this.collective('dup()', (r) => coll.allreduce(r, w.nextCtx, toOp((a: number, b: number) => Math.max(a, b))) as Promise<number>);
    w.nextCtx = Math.max(w.nextCtx, ctx + 2);
    return Comm.fromGroup(w, this.core.group, ctx);
  }

  /** @internal */
  static fromGroup(world: World, group: readonly number[], ctx: number): Comm {
    const rankOf = new Map(group.map((wr, i) => [wr, i]));
    return new Comm({ world, group, rankOf, ctx, rank: rankOf.get(world.rank)!, seq: 0 });
  }

  private withOp<T>(op: OpLike, run: (o: ReturnType<typeof toOp>) => Promise<T>): Promise<T> {
    let o;
    try {
      o = toOp(op);
    } catch (e) {
      return Promise.reject(e);
    }
    return run(o);
  }

  private collective<T>(desc: string, run: (r: coll.Round) => Promise<T>, root?: number): Promise<T> {
    if (root !== undefined && (!Number.isInteger(root) || root < 0 || root >= this.size)) {
      return Promise.reject(new TsmpiError('ERR_ROOT', `${desc}: root ${String(root)} is not a rank of this communicator (size ${this.size})`));
    }
    const r = coll.round(this.core);
    return this.core.world.pending.track(desc, this.id, run(r));
  }

  /** End every rank of the job; `tsmpirun` exits with `code`. */
  abort(code = 1): Promise<never> {
    return this.core.world.abort(code);
  }

  // ---- internals ------------------------------------------------------

  private status(m: Message): Status {
    return { source: this.core.rankOf.get(m.src)!, tag: m.tag, bytes: m.payload.length };
  }

  private worldSource(source: number): number {
    return source === ANY_SOURCE ? ANY_SOURCE : this.core.group[source]!;
  }

  private startSend(data: unknown, dest: number, tag: number, sync: boolean, op: string): Promise<void> {
    let e: Encoded | null;
    try {
      e = this.prepareSend(data, dest, tag);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.postSend(e, dest, tag, sync, op);
  }

  /** Validate a send and encode its data; null for PROC_NULL. Throws what is refused. */
  private prepareSend(data: unknown, dest: number, tag: number): Encoded | null {
    this.checkDest(dest);
    this.checkSendTag(tag);
    return dest === PROC_NULL ? null : encodeValue(data);
  }

  private postSend(e: Encoded | null, dest: number, tag: number, sync: boolean, op: string): Promise<void> {
    if (e === null) return Promise.resolve();
    const w = this.core.world;
    const to = this.core.group[dest]!;
    // A small buffered send to a thread rank is copied into shared memory now: done.
    if (!sync && w.fabric.trySend(to, this.core.ctx, tag, e)) return Promise.resolve();
    const p = w.fabric.send(to, this.core.ctx, tag, e, sync);
    return w.pending.track(() => `${op}(dest=${dest}, tag=${tag}, bytes=${e.length})`, this.id, p);
  }

  /**
   * Receive the next matching message and resolve to `take(message)` (`none` for
   * PROC_NULL). One promise a receive: the engine calls back into it directly,
   * and a message already queued is taken without waiting.
   */
  private receive<R>(source: number, tag: number, take: (m: Message) => R, none: R): Promise<R> {
    try {
      this.checkSource(source);
      this.checkRecvTag(tag);
    } catch (e) {
      return Promise.reject(e);
    }
    if (source === PROC_NULL) return Promise.resolve(none);
    const w = this.core.world;
    const pending = w.pending;
    return new Promise<R>((resolve, reject) => {
      let entry: Entry | null = null;
      let failed = false;
      const m = w.engine.post(
        this.core.ctx,
        this.worldSource(source),
        tag,
        this.core.group,
        (m) => {
          pending.end(entry!);
          try {
            resolve(take(m));
          } catch (e) {
            reject(e);
          }
        },
        (e) => {
          if (entry) pending.end(entry);
          else failed = true;
          reject(e);
        },
      );
      if (m) resolve(take(m));
      else if (!failed) entry = pending.begin(() => `recv(source=${fmt(source)}, tag=${fmt(tag)})`, this.id);
    });
  }

  private checkDest(dest: number): void {
    if (dest === PROC_NULL) return;
    if (!Number.isInteger(dest) || dest < 0 || dest >= this.size) {
      throw new TsmpiError('ERR_RANK', `destination ${String(dest)} is not a rank of this communicator (size ${this.size}) nor PROC_NULL`);
    }
  }

  private checkSource(source: number): void {
    if (source === PROC_NULL || source === ANY_SOURCE) return;
    if (!Number.isInteger(source) || source < 0 || source >= this.size) {
      throw new TsmpiError('ERR_RANK', `source ${String(source)} is not a rank of this communicator (size ${this.size}), ANY_SOURCE nor PROC_NULL`);
    }
  }

  private checkSendTag(tag: number): void {
    if (!Number.isInteger(tag) || tag < 0 || tag > TAG_UB) {
      throw new TsmpiError('ERR_TAG', `send tag ${String(tag)} is not an integer in 0..${TAG_UB}`);
    }
  }

  private checkRecvTag(tag: number): void {
    if (tag === ANY_TAG) return;
    if (!Number.isInteger(tag) || tag < 0 || tag > TAG_UB) {
      throw new TsmpiError('ERR_TAG', `receive tag ${String(tag)} is not an integer in 0..${TAG_UB} nor ANY_TAG`);
    }
  }
}

function fmt(v: number): string {
  return v === ANY_SOURCE ? 'ANY' : String(v);
}

/** Decode a message's data; an ERROR frame becomes the error it carries. */
export function decode(m: Message): unknown {
  const v = decodeValue(m.enc, m.elem, m.payload);
  if (m.flags & FrameFlag.ERROR) {
    const { code, message } = v as { code: string; message: string };
    const err = new TsmpiError(code as TsmpiError['code'], message);
    throw err;
  }
  return v;
}

function request<T>(p: Promise<T>): Request<T> {
  // A request the caller only tests must not crash the process as an unhandled rejection.
  p.catch(() => {});
  return new Request(p);
}
