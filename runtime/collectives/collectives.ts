/**
 * Collective algorithms over point-to-point messages on a communicator's hidden
 * collective context. Every call takes the next sequence number of its
 * communicator as its tag, so calls match in the order each rank starts them and
 * several may be in flight at once.
 *
 * Failures never hang the other ranks: a rank that cannot contribute (a value that
 * cannot be sent, a misfit for the op, a bad scatter/alltoall length) sends an
 * error token where its data would go; every rank that the token reaches
 * rejects with the carried code once its own part of the algorithm is done.
 *
 * Ranks here are communicator ranks.
 */
import { TsmpiError } from '../errors.js';
import type { Message } from '../engine.js';
import type { Op } from '../op.js';
import { decodeValue, encodeValue, Encoding, type Encoded } from '../wire/codec.js';
import { CollError, checked, combine, decodeItem, encodeOr, flatItem, unwrap, type Maybe } from './values.js';
import * as shm from './shm.js';
import * as hier from './hier.js';
import { packBundle } from '../wire/bundle.js';
import { FrameFlag } from '../wire/frame.js';
import { Round, itemsOf, valueOf } from './round.js';

export { CollError };
export { Round, round, valueOf } from './round.js';

/** Typed arrays at least this large take the bandwidth-optimal allreduce. */
const RING_MIN_BYTES = 64 * 1024;

// ---- algorithms ---------------------------------------------------------

/** The message algorithms, for the steps between meshes of the hierarchical ones. */
const FLAT: hier.Flat = {
  bcast: (r, data, root, into, poison) => flatBcastTo(r, data, root, into, poison),
  reduce: (r, data, op, root, poison) => flatReduce(r, data, op, root, poison),
  allreduce: (r, data, op, poison) => flatAllreduce(r, data, op, poison),
  barrier: (r) => flatBarrier(r),
};

/**
 * Thread ranks of one process: shared counters (each rank marks its arrival; the
 * last wakes the others). Otherwise a dissemination barrier: ⌈log2 p⌉ rounds,
 * p·⌈log2 p⌉ messages; on a crowded host, a binomial gather then bcast: 2⌈log2 p⌉
 * rounds but only 2(p−1) messages.
 */
export async function barrier(r: Round): Promise<void> {
  const shared = r.shmBarrier();
  if (shared) return shared;
  const h = hier.hierarchy(r);
  if (h) return hier.barrier(r, h, FLAT);
  return flatBarrier(r);
}

async function flatBarrier(r: Round): Promise<void> {
  const { rank, size: p } = r;
  const token = encodeValue(null);
  if (r.crowded) {
    await treeGather(r, 0, token);
    await treeBcast(r, 0, rank === 0 ? token : null);
    return;
  }
  for (let k = 1; k < p; k <<= 1) {
    r.send((rank + k) % p, token);
    await r.recv((rank - k + p) % p);
  }
  await r.finish();
}

/**
 * Binomial-tree broadcast of an encoded payload from `root`; inner nodes forward
 * the bytes they received without decoding them. Returns the message received
 * (null at the root).
 */
async function treeBcast(r: Round, root: number, payload: Maybe<Encoded> | null): Promise<Message | null> {
  const { rank, size: p } = r;
  const vr = (rank - root + p) % p;
  let mask = 1;
  let got: Message | null = null;
  while (mask < p) {
    if (vr & mask) {
      got = await r.recv((vr - mask + root) % p);
      break;
    }
    mask <<= 1;
  }
  for (mask >>= 1; mask > 0; mask >>= 1) {
    if (vr + mask < p) {
      const child = (vr + mask + root) % p;
      if (got) r.forward(child, got);
      else r.send(child, payload!);
    }
  }
  await r.finish();
  return got;
}

/** Segment size of pipelined broadcasts, and the size from which they pipeline. */
const SEGMENT = 1 << 20;
const SEGMENTED_MIN = 2 * SEGMENT;

/** A rank's parent and children in the binomial tree rooted at `root` (children largest subtree first). */
function binomial(r: Round, root: number): { parent: number; children: number[] } {
  const { rank, size: p } = r;
  const vr = (rank - root + p) % p;
  let mask = 1;
  let parent = -1;
  while (mask < p) {
    if (vr & mask) {
      parent = (vr - mask + root) % p;
      break;
    }
    mask <<= 1;
  }
  const children: number[] = [];
  for (mask >>= 1; mask > 0; mask >>= 1) if (vr + mask < p) children.push((vr + mask + root) % p);
  return { parent, children };
}

/**
 * Binomial-tree broadcast. A large typed array is pipelined: the root sends a
 * header, then 1 MiB segments, and every rank passes each segment on as soon as
 * it arrives, so the tree's levels work at once instead of one after another.
 */
export function bcast(r: Round, data: unknown, root: number): Promise<unknown> {
  return bcastTo(r, data, root, null);
}

/** bcast whose data lands in the caller's buffer on every rank but the root. */
export async function bcastInto(r: Round, buf: ArrayBufferView, into: Uint8Array, root: number): Promise<void> {
  await bcastTo(r, buf, root, into);
}

function tooLarge(into: Uint8Array, bytes: number): TsmpiError {
  return new TsmpiError('ERR_ARG', `bcastInto: the root sent ${bytes} bytes, more than the ${into.byteLength} of this rank's buffer`);
}

/** `into`: non-root ranks copy the bytes there instead of decoding a value. */
async function bcastTo(r: Round, data: unknown, root: number, into: Uint8Array | null): Promise<unknown> {
  const c = r.regions();
  if (c) return shm.run(c, () => shm.bcast(r, c, data, root, into));
  const h = hier.hierarchy(r);
  if (h) return hier.bcast(r, h, data, root, into, FLAT);
  return flatBcastTo(r, data, root, into, null);
}

/** `poison`: the root sends this failure instead of its data. */
async function flatBcastTo(r: Round, data: unknown, root: number, into: Uint8Array | null, poison: CollError | null): Promise<unknown> {
  const { parent, children } = binomial(r, root);
  if (r.rank === root) {
    const e = poison ?? encodeOr(data);
    if (!(e instanceof CollError) && e.enc === Encoding.RAW && e.length >= SEGMENTED_MIN && children.length > 0) {
      const bytes = e.parts[0]!;
      const segs = Math.ceil(e.length / SEGMENT);
      const head = Buffer.from(JSON.stringify({ elem: e.elem, length: e.length, segs }));
      for (const c of children) r.send(c, { enc: Encoding.SEGMENTED, elem: 0, parts: [head], length: head.length, aliased: false });
      for (let s = 0; s < segs; s++) {
        const part = bytes.subarray(s * SEGMENT, Math.min((s + 1) * SEGMENT, e.length));
        for (const c of children) r.send(c, { enc: Encoding.RAW, elem: 1, parts: [part], length: part.byteLength, aliased: true });
      }
    } else for (const c of children) r.send(c, e);
    await r.finish();
    unwrap(e);
    return data;
  }
  const m = await r.recv(parent);
  for (const c of children) r.forward(c, m);
  if (m.enc !== Encoding.SEGMENTED || m.flags & FrameFlag.ERROR) {
    await r.finish();
    if (!into || m.flags & FrameFlag.ERROR) return unwrap(valueOf(m));
    if (m.enc !== Encoding.RAW) throw new TsmpiError('ERR_ARG', 'bcastInto: the root sent a value that is not a typed array or buffer');
    if (m.payload.length > into.byteLength) throw tooLarge(into, m.payload.length);
    into.set(m.payload);
    return undefined;
  }
  const { elem, length, segs } = JSON.parse(m.payload.toString('utf8')) as { elem: number; length: number; segs: number };
  const fits = !into || length <= into.byteLength;
  const out = into && fits ? into : Buffer.allocUnsafeSlow(length);
  let off = 0;
  for (let s = 0; s < segs; s++) {
    const seg = await r.recv(parent);
    for (const c of children) r.forward(c, seg);
    if (off + seg.payload.length > length) throw new TsmpiError('ERR_PROTOCOL', 'a pipelined broadcast sent more bytes than announced');
    out.set(seg.payload, off);
    off += seg.payload.length;
  }
  await r.finish();
  if (off !== length) throw new TsmpiError('ERR_PROTOCOL', 'a pipelined broadcast sent fewer bytes than announced');
  if (into) {
    if (!fits) throw tooLarge(into, length);
    return undefined;
  }
  return decodeValue(Encoding.RAW, elem, out as Buffer);
}

export async function scatter(r: Round, values: unknown, root: number): Promise<unknown> {
  const c = r.regions();
  if (c) return shm.run(c, () => shm.scatter(r, c, values, root));
  const { rank, size: p } = r;
  const vr = (rank - root + p) % p;
  // items[i] is the value for relative rank vr + i
  let items: Maybe<Encoded[]>;
  let mask = 1;
  if (vr === 0) {
    if (!Array.isArray(values) || values.length !== p) {
      items = new CollError(new TsmpiError('ERR_ARG', `scatter: the root must pass an array of ${p} values (one per rank), got ${Array.isArray(values) ? `${values.length} values` : typeof values}`));
    } else {
      const enc: Encoded[] = [];
      let failed: CollError | null = null;
      for (let i = 0; i < p; i++) {
        const e = encodeOr(values[(i + root) % p]);
        if (e instanceof CollError) failed ??= e;
        else enc.push(e);
      }
      items = failed ?? enc;
    }
    while (mask < p) mask <<= 1;
  } else {
    while (mask < p) {
      if (vr & mask) {
        items = itemsOf(await r.recv((vr - mask + root) % p));
        break;
      }
      mask <<= 1;
    }
  }
  for (mask >>= 1; mask > 0; mask >>= 1) {
    if (vr + mask < p) {
      const child = (vr + mask + root) % p;
      r.send(child, items! instanceof CollError ? items : packBundle(items!.slice(mask, Math.min(2 * mask, p - vr))));
    }
  }
  await r.finish();
  const mine = unwrap(items!);
  if (vr === 0) return decodeItem(flatItem(mine[0]!));
  return decodeItem(mine[0]!);
}


/**
 * Binomial-tree gather of encoded items toward `root`; resolves at the root to
 * the items in relative-rank order, elsewhere to null.
 */
async function treeGather(r: Round, root: number, mine: Maybe<Encoded>): Promise<Maybe<Encoded[]> | null> {
  const { rank, size: p } = r;
  const vr = (rank - root + p) % p;
  let acc: Maybe<Encoded[]> = mine instanceof CollError ? mine : [mine];
  let mask = 1;
  while (mask < p) {
    if (vr & mask) {
      r.send((vr - mask + root) % p, acc instanceof CollError ? acc : packBundle(acc));
      await r.finish();
      return null;
    }
    if (vr + mask < p) {
      const got = itemsOf(await r.recv((vr + mask + root) % p));
      if (!(acc instanceof CollError)) acc = got instanceof CollError ? got : acc.concat(got);
    }
    mask <<= 1;
  }
  await r.finish();
  return acc;
}

export async function gather(r: Round, data: unknown, root: number): Promise<unknown[] | undefined> {
  const c = r.regions();
  if (c) return shm.run(c, () => shm.gather(r, c, data, root));
  const mine = encodeOr(data);
  const items = await treeGather(r, root, mine);
  unwrap(mine);
  if (items === null) return undefined;
  const list = unwrap(items);
  const p = r.size;
  const out = new Array<unknown>(p);
  for (let i = 0; i < p; i++) out[(i + root) % p] = decodeItem(i === 0 ? flatItem(list[0]!) : list[i]!);
  return out;
}

export async function allgather(r: Round, data: unknown): Promise<unknown[]> {
  const c = r.regions();
  if (c) return shm.run(c, () => shm.allgather(r, c, data));
  const mine = encodeOr(data);
  const items = await treeGather(r, 0, mine);
  let list: Encoded[];
  if (r.rank === 0) {
    const bundle = items instanceof CollError ? items : packBundle(items!.map((it, i) => (i === 0 ? flatItem(it) : it)));
    await treeBcast(r, 0, bundle);
    list = unwrap(items!);
    list[0] = flatItem(list[0]!);
  } else {
    list = unwrap(itemsOf((await treeBcast(r, 0, null))!));
  }
  unwrap(mine);
  return list.map(decodeItem);
}

/** Pairwise exchange: in step s, send to rank+s and receive from rank−s. */
export async function alltoall(r: Round, values: unknown): Promise<unknown[]> {
  const { rank, size: p } = r;
  let bad: CollError | null = null;
  if (!Array.isArray(values) || values.length !== p) {
    bad = new CollError(new TsmpiError('ERR_ARG', `alltoall: every rank must pass an array of ${p} values, rank ${rank} passed ${Array.isArray(values) ? values.length : typeof values}`));
  }
  const out = new Array<unknown>(p);
  let failure: CollError | null = bad;
  for (let s = 1; s < p; s++) {
    const dest = (rank + s) % p;
    const e = bad ?? encodeOr((values as unknown[])[dest]);
    if (e instanceof CollError) failure ??= e;
    r.send(dest, e);
  }
  if (!bad) {
    const e = encodeOr((values as unknown[])[rank]);
    if (e instanceof CollError) failure ??= e;
    else out[rank] = decodeItem(flatItem(e));
  }
  for (let s = 1; s < p; s++) {
    const src = (rank - s + p) % p;
    const v = await r.recvValue(src);
    if (v instanceof CollError) failure ??= v;
    else out[src] = v;
  }
  await r.finish();
  if (failure) throw failure.err;
  return out;
}



function sendValue(r: Round, dest: number, v: Maybe<unknown>): void {
  r.send(dest, v instanceof CollError ? v : encodeOr(v));
}

/**
 * Binomial-tree reduction. Commutative ops reduce toward the root directly;
 * others reduce in rank order toward rank 0, which passes the result on.
 */
export async function reduce(r: Round, data: unknown, op: Op, root: number): Promise<unknown> {
  const c = r.regions();
  if (c) return shm.run(c, () => shm.reduce(r, c, data, op, root));
  const h = hier.hierarchy(r);
  if (h) return hier.reduce(r, h, data, op, root, FLAT);
  return flatReduce(r, data, op, root, null);
}

/** `poison`: this rank contributes that failure instead of its data. */
async function flatReduce(r: Round, data: unknown, op: Op, root: number, poison: CollError | null): Promise<unknown> {
  const own = poison ?? checked(op, data);
  const acc = await reduceTree(r, own, op, root);
  await r.finish();
  unwrap(own);
  return r.rank === root ? unwrap(acc) : undefined;
}

/** The reduction tree; the result (or the error that replaced it) at `root`. */
async function reduceTree(r: Round, own: Maybe<unknown>, op: Op, root: number): Promise<Maybe<unknown>> {
  const { rank, size: p } = r;
  const base = op.commutative ? root : 0;
  const vr = (rank - base + p) % p;
  let acc: Maybe<unknown> = own;
  let owned = false;
  let mask = 1;
  while (mask < p) {
    if (vr & mask) {
      sendValue(r, (vr - mask + base) % p, acc);
      break;
    }
    if (vr + mask < p) {
      const child = await r.recvValue((vr + mask + base) % p);
      acc = combine(op, acc, child, owned ? 'a' : 'b');
      owned = true;
    }
    mask <<= 1;
  }
  if (base !== root) {
    if (rank === base) sendValue(r, root, acc);
    if (rank === root) acc = await r.recvValue(base);
  }
  return acc;
}

/** `into`: where a typed-array result may go (allreduceInto's recvBuf); the result is returned either way. */
export async function allreduce(r: Round, data: unknown, op: Op, into: TypedLike | null = null): Promise<unknown> {
  const c = r.regions();
  if (c) return shm.run(c, () => shm.allreduce(r, c, data, op, into));
  const h = hier.hierarchy(r);
  if (h) return hier.allreduce(r, h, data, op, FLAT);
  return flatAllreduce(r, data, op, null);
}

/** `poison`: this rank contributes that failure instead of its data. */
async function flatAllreduce(r: Round, data: unknown, op: Op, poison: CollError | null): Promise<unknown> {
  const own = poison ?? checked(op, data);
  if (
    op.elementwise &&
    r.size > 2 &&
    ArrayBuffer.isView(data) &&
    !(data instanceof DataView) &&
    data.byteLength >= RING_MIN_BYTES &&
    !(own instanceof CollError)
  ) {
    return ringAllreduce(r, data as unknown as TypedLike, op);
  }
  let result: Maybe<unknown>;
  if (r.crowded) {
    // Fewer messages: reduce to rank 0 in rank order, then a binomial bcast.
    const acc = await reduceTree(r, own, op, 0);
    if (r.rank === 0) {
      await treeBcast(r, 0, acc instanceof CollError ? acc : encodeOr(acc));
      result = acc;
    } else result = valueOf((await treeBcast(r, 0, null))!);
  } else result = await recursiveDoubling(r, own, op);
  await r.finish();
  unwrap(own);
  return unwrap(result);
}

/**
 * Recursive doubling (MPICH's scheme for any size): ranks past the largest power
 * of two first fold into a partner. Each pair combines lower ranks first, so
 * every rank computes the same bits and non-commutative ops stay in rank order.
 */
async function recursiveDoubling(r: Round, own: Maybe<unknown>, op: Op): Promise<Maybe<unknown>> {
  const { rank, size: p } = r;
  let pof2 = 1;
  while (pof2 * 2 <= p) pof2 *= 2;
  const rem = p - pof2;
  let acc: Maybe<unknown> = own;
  let newrank: number;
  if (rank < 2 * rem) {
    if (rank % 2 === 0) {
      sendValue(r, rank + 1, acc);
      newrank = -1;
    } else {
      acc = combine(op, await r.recvValue(rank - 1), acc, 'a');
      newrank = rank >> 1;
    }
  } else newrank = rank - rem;
  if (newrank >= 0) {
    for (let mask = 1; mask < pof2; mask <<= 1) {
      const nd = newrank ^ mask;
      const dst = nd < rem ? nd * 2 + 1 : nd + rem;
      sendValue(r, dst, acc);
      const theirs = await r.recvValue(dst);
      // `theirs` is fresh and never in flight: the result goes there.
      acc = dst < rank ? combine(op, theirs, acc, 'a') : combine(op, acc, theirs, 'b');
    }
  }
  if (rank < 2 * rem) {
    if (rank % 2 === 1) sendValue(r, rank - 1, acc);
    else acc = await r.recvValue(rank + 1);
  }
  return acc;
}

type TypedLike = Exclude<NodeJS.TypedArray, DataView>;

function copyTyped(a: TypedLike): TypedLike {
  if (Buffer.isBuffer(a)) return Buffer.from(a);
  const out = new (a.constructor as new (n: number) => TypedLike)(a.length);
  (out as Uint8Array).set(a as Uint8Array);
  return out;
}

/**
 * Ring allreduce for large element-wise reductions: a reduce-scatter then an
 * allgather, 2(p−1) steps moving 2(p−1)/p of the array per rank. Each block is
 * reduced once, so every rank ends with the same bits.
 */
async function ringAllreduce(r: Round, data: TypedLike, op: Op): Promise<unknown> {
  const { rank, size: p } = r;
  const n = data.length;
  const acc = copyTyped(data);
  const lo = (b: number) => Math.floor((b * n) / p);
  const block = (b: number) => acc.subarray(lo(b), lo(b + 1)) as TypedLike;
  const next = (rank + 1) % p;
  const prev = (rank - 1 + p) % p;
  let failure: CollError | null = null;
  for (let s = 0; s < p - 1; s++) {
    const sb = (rank - s + p) % p;
    const rb = (rank - s - 1 + p) % p;
    r.send(next, failure ?? encodeValue(block(sb)));
    const got = await r.recvValue(prev);
    if (got instanceof CollError) failure ??= got;
    if (failure) continue;
    // Block rb is not among the blocks sent so far in this phase: reduce into it.
    const res = combine(op, got, block(rb), 'b');
    if (res instanceof CollError) failure = res;
  }
  // The allgather overwrites blocks the reduce-scatter sent: let those sends finish.
  await r.finish();
  for (let s = 0; s < p - 1; s++) {
    const sb = (rank - s + 1 + p) % p;
    const rb = (rank - s + p) % p;
    r.send(next, failure ?? encodeValue(block(sb)));
    const got = await r.recvValue(prev);
    if (got instanceof CollError) failure ??= got;
    if (failure) continue;
    (block(rb) as Uint8Array).set(got as Uint8Array);
  }
  await r.finish();
  if (failure) throw failure.err;
  return acc;
}

/** Inclusive (or exclusive) prefix reduction by recursive doubling, in rank order. */
export async function scan(r: Round, data: unknown, op: Op, exclusive: boolean): Promise<unknown> {
  const { rank, size: p } = r;
  const own = checked(op, data);
  let partial: Maybe<unknown> = own;
  let result: Maybe<unknown> | undefined = exclusive ? undefined : own;
  for (let k = 1; k < p; k <<= 1) {
    if (rank + k < p) sendValue(r, rank + k, partial);
    if (rank - k >= 0) {
      const t = await r.recvValue(rank - k);
      const newPartial = combine(op, t, partial, null);
      result = result === undefined ? t : combine(op, t, result, 'a');
      partial = newPartial;
      // `partial` may still be in flight to rank + k: it was replaced, not mutated.
    }
  }
  await r.finish();
  unwrap(own);
  return result === undefined ? undefined : unwrap(result);
}
