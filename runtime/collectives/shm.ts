/**
 * Collectives among thread ranks of one process (`--threads`), through the
 * shared regions of runtime/transport/shm-regions.ts instead of messages: each
 * rank publishes its part into its own region once, and readers copy it out
 * (or reduce straight from it). The results, the rank order of reductions and
 * the failure rules are those of the message algorithms in collectives.ts: a
 * rank that cannot contribute publishes an error token in place of its data,
 * every rank that reads it rejects with its code once its own part is done.
 *
 * Ranks in `c.members` are world ranks, indexed by communicator rank.
 */
import { TsmpiError, errorFromWire } from '../errors.js';
import type { Op } from '../op.js';
import { Encoding, decodeValue, type Encoded } from '../wire/codec.js';
import { packBundle, unpackBundle } from '../wire/bundle.js';
import { PIECE_ERROR, type Piece, type RegionCall } from '../transport/shm-regions.js';
import { CollError, checked, combine, decodeItem, encodeOr, flatItem, unwrap, type Maybe } from './values.js';
import type { Round } from './round.js';

/** Typed arrays at least this large reduce in segments (each rank one slice), not whole at every rank. */
const SEGMENTED_MIN_BYTES = 64 * 1024;

type Typed = Exclude<NodeJS.TypedArray, DataView>;

// ---- moving one value -----------------------------------------------------

/** The views of `parts` covering bytes [off, off + len). */
function sliceParts(parts: readonly Uint8Array[], off: number, len: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  for (const p of parts) {
    const end = pos + p.byteLength;
    if (end > off && pos < off + len) out.push(p.subarray(Math.max(0, off - pos), Math.min(p.byteLength, off + len - pos)));
    pos = end;
    if (pos >= off + len) break;
  }
  return out;
}

function errorToken(e: CollError): Buffer {
  return Buffer.from(JSON.stringify({ code: e.err.code, message: e.err.message.slice(0, 16_000) }));
}

/**
 * Publish pieces `from…to−1` of a value (or its error token) for `readers`
 * readers; the waiting among `wake` are woken (once all of `publishers` have
 * published piece 0, when they are given).
 */
async function publish(c: RegionCall, v: Maybe<Encoded>, readers: number, wake: readonly number[], publishers: readonly number[] | null = null, from = 0, to = Infinity): Promise<void> {
  if (v instanceof CollError) {
    const b = errorToken(v);
    if (from === 0) await c.put(0, { enc: Encoding.JSON, elem: 0, flags: PIECE_ERROR, total: b.length, length: b.length }, [b], readers, wake, publishers);
    return;
  }
  const total = v.length;
  const room = c.room;
  const pieces = Math.max(1, Math.ceil(total / room));
  for (let k = from; k < Math.min(pieces, to); k++) {
    const off = k * room;
    const length = Math.min(room, total - off);
    await c.put(k, { enc: v.enc, elem: v.elem, flags: 0, total, length }, pieces === 1 ? v.parts : sliceParts(v.parts, off, length), readers, wake, k === 0 ? publishers : null);
  }
}

function tokenOf(c: RegionCall, p: Piece): CollError {
  const { code, message } = JSON.parse(c.bytes(p).toString('utf8')) as { code: string; message: string };
  return new CollError(errorFromWire(code, message));
}

/** Read every piece of `rank`'s value into `out` at 0 (acking each); piece 0 is `p0`. */
async function readPieces(c: RegionCall, rank: number, p0: Piece, out: Uint8Array | null): Promise<void> {
  let p = p0;
  let off = 0;
  for (let k = 0; ; k++) {
    if (out) out.set(c.bytes(p), off);
    off += p.length;
    c.ack(rank, k);
    if (off >= p0.total) return;
    p = await c.piece(rank, k + 1);
  }
}

/** `rank`'s value, as its encoding and its bytes (owned). */
async function receiveBytes(c: RegionCall, rank: number): Promise<Maybe<{ enc: number; elem: number; payload: Buffer }>> {
  const p0 = await c.piece(rank, 0);
  if (p0.flags & PIECE_ERROR) {
    const t = tokenOf(c, p0);
    c.ack(rank, 0);
    return t;
  }
  const payload = Buffer.allocUnsafeSlow(p0.total);
  await readPieces(c, rank, p0, payload);
  return { enc: p0.enc, elem: p0.elem, payload };
}

/** `rank`'s value, decoded (a copy: nothing refers to shared memory). */
async function receiveValue(c: RegionCall, rank: number): Promise<Maybe<unknown>> {
  const p0 = await c.piece(rank, 0);
  if (p0.flags & PIECE_ERROR || p0.length === p0.total) {
    let v: Maybe<unknown>;
    try {
      v = p0.flags & PIECE_ERROR ? tokenOf(c, p0) : decodeValue(p0.enc, p0.elem, c.bytes(p0));
    } catch (e) {
      v = new CollError(e instanceof TsmpiError ? e : new TsmpiError('ERR_PROTOCOL', String(e)));
    }
    c.ack(rank, 0);
    return v;
  }
  const b = await receiveBytes(c, rank);
  return b instanceof CollError ? b : decodeValue(b.enc, b.elem, b.payload);
}

/** `rank`'s raw bytes straight into `into`; an error (after reading it all) when they are not raw or do not fit. */
async function receiveInto(c: RegionCall, rank: number, into: Uint8Array, call: string): Promise<Maybe<void>> {
  const p0 = await c.piece(rank, 0);
  if (p0.flags & PIECE_ERROR) {
    const t = tokenOf(c, p0);
    c.ack(rank, 0);
    return t;
  }
  if (p0.enc !== Encoding.RAW) {
    await readPieces(c, rank, p0, null);
    return new CollError(new TsmpiError('ERR_ARG', `${call}: the root sent a value that is not a typed array or buffer`));
  }
  if (p0.total > into.byteLength) {
    await readPieces(c, rank, p0, null);
    return new CollError(new TsmpiError('ERR_ARG', `${call}: the root sent ${p0.total} bytes, more than the ${into.byteLength} of this rank's buffer`));
  }
  await readPieces(c, rank, p0, into);
}

/** Run `publishing` beside the reads, and surface its failure after them. */
async function alongside<T>(publishing: Promise<void>, reads: () => Promise<T>): Promise<T> {
  let failed: unknown = null;
  const p = publishing.catch((e) => {
    failed = e ?? new Error('publish failed');
  });
  const out = await reads();
  await p;
  if (failed) throw failed;
  return out;
}

// ---- the collectives ----------------------------------------------------------

/** Run one collective on the regions; the caller's region is free for the next call once it ends, however it ends. */
export function run<T>(c: RegionCall, call: () => Promise<T>): Promise<T> {
  let p: Promise<T>;
  try {
    p = call();
  } catch (e) {
    c.end();
    return Promise.reject(e);
  }
  return p.finally(() => c.end());
}

/** `into`: non-root ranks land the root's bytes there instead of decoding a value. `poison`: the root sends that failure instead. */
export async function bcast(r: Round, c: RegionCall, data: unknown, root: number, into: Uint8Array | null, poison: CollError | null = null): Promise<unknown> {
  if (r.rank === root) {
    const e = poison ?? encodeOr(data);
    await publish(c, e, r.size - 1, c.members);
    unwrap(e);
    return data;
  }
  if (into) {
    unwrap(await receiveInto(c, c.members[root]!, into, 'bcastInto'));
    return undefined;
  }
  return unwrap(await receiveValue(c, c.members[root]!));
}

/** Left fold in rank order; `own` (the caller's value, never modified) sits at this rank's place. */
async function foldAll(r: Round, c: RegionCall, own: Maybe<unknown>, op: Op): Promise<Maybe<unknown>> {
  let acc: Maybe<unknown> = undefined;
  let accOwned = false;
  for (let i = 0; i < r.size; i++) {
    const mine = i === r.rank;
    const v = mine ? own : await receiveValue(c, c.members[i]!);
    if (i === 0) {
      acc = v;
      accOwned = !mine;
      continue;
    }
    acc = combine(op, acc, v, accOwned ? 'a' : mine ? null : 'b');
    accOwned = true;
  }
  return acc;
}

export async function reduce(r: Round, c: RegionCall, data: unknown, op: Op, root: number): Promise<unknown> {
  const own = checked(op, data);
  const senders = c.members.filter((_, i) => i !== root);
  if (r.rank !== root) {
    await publish(c, own instanceof CollError ? own : encodeOr(own), 1, [c.members[root]!], senders);
    unwrap(own);
    return undefined;
  }
  const w = c.allReady(0, 0, senders);
  if (w) await w;
  const acc = await foldAll(r, c, own, op);
  unwrap(own);
  return unwrap(acc);
}

function numericTyped(v: unknown): v is Typed {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/**
 * Every rank publishes; every rank folds all values in rank order (the same
 * bits everywhere). Large element-wise reductions of typed arrays go in
 * segments instead: each rank reduces one slice of every piece from all
 * regions, writes it back, and copies the others' slices.
 * `into`: where a typed-array result goes (allreduceInto's recvBuf).
 */
export async function allreduce(r: Round, c: RegionCall, data: unknown, op: Op, into: Typed | null): Promise<unknown> {
  const own = checked(op, data);
  const e: Maybe<Encoded> = own instanceof CollError ? own : encodeOr(own);
  const others = c.members;
  await publish(c, e, r.size - 1, others, others, 0, 1);
  const w = c.allReady(0);
  if (w) await w;
  // Everyone's first piece says whether the segmented path fits every rank.
  const heads: Piece[] = [];
  for (let i = 0; i < r.size; i++) heads.push(c.head(others[i]!, 0));
  const mine = e instanceof CollError ? null : e;
  const alike =
    op.elementwise &&
    mine !== null &&
    numericTyped(own) &&
    mine.enc === Encoding.RAW &&
    heads.every((h, i) => i === r.rank || (h.flags === 0 && h.enc === Encoding.RAW && h.elem === mine.elem && h.total === mine.length));
  if (alike && mine.length >= SEGMENTED_MIN_BYTES) return segmentedAllreduce(r, c, own, mine, op, into);
  if (alike && into && mine.length <= c.room) return foldInto(r, c, own, op, heads, into);
  const acc = await alongside(publish(c, e, r.size - 1, others, null, 1), () => foldAll(r, c, own, op));
  unwrap(own);
  return unwrap(acc);
}

/** A small element-wise allreduceInto: the rank-order fold straight from the regions into `into` (no allocation). */
function foldInto(r: Round, c: RegionCall, own: Typed, op: Op, heads: Piece[], into: Typed): Typed {
  // Every part is read from its region, this rank's too: `into` may be `own` (in place).
  const view = (i: number) => viewLike(own, c.sab, heads[i]!.offset, own.length);
  into.set(view(0) as never);
  let failure: CollError | null = null;
  for (let i = 1; i < r.size && !failure; i++) {
    const res = combine(op, into, view(i), 'a');
    if (res instanceof CollError) failure = res;
  }
  for (let i = 0; i < r.size; i++) if (i !== r.rank) c.ack(c.members[i]!, 0);
  if (failure) throw failure.err;
  return into;
}

function viewLike(like: Typed, sab: SharedArrayBuffer, byteOffset: number, length: number): Typed {
  if (Buffer.isBuffer(like)) return Buffer.from(sab, byteOffset, length);
  return new (like.constructor as new (b: ArrayBufferLike, o: number, n: number) => Typed)(sab, byteOffset, length);
}

async function segmentedAllreduce(r: Round, c: RegionCall, own: Typed, e: Encoded, op: Op, into: Typed | null): Promise<unknown> {
  const p = r.size;
  const me = r.rank;
  const members = c.members;
  const bpe = own.BYTES_PER_ELEMENT;
  const n = own.length;
  const per = c.room / bpe;
  const pieces = Math.max(1, Math.ceil(n / per));
  const result: Typed = into ?? (Buffer.isBuffer(own) ? Buffer.allocUnsafeSlow(n) : new (own.constructor as new (n: number) => Typed)(n));
  const sab = c.sab;
  let failure: CollError | null = null;
  for (let k = 0; k < pieces; k++) {
    const lo = k * per;
    const len = Math.min(per, n - lo);
    const seg = (j: number) => [Math.floor((j * len) / p), Math.floor(((j + 1) * len) / p)] as const;
    // Piece 0 is out already (it carried the header everyone decided on).
    if (k > 0) {
      await c.put(k, { enc: e.enc, elem: e.elem, flags: 0, total: e.length, length: len * bpe }, sliceParts(e.parts, lo * bpe, len * bpe), p - 1, members, members);
      const w = c.allReady(k);
      if (w) await w;
    }
    const heads: Piece[] = [];
    for (let i = 0; i < p; i++) heads.push(c.head(members[i]!, k));
    // My slice: the fold, in rank order, of every rank's slice.
    const [a, b] = seg(me);
    const out = result.subarray(lo + a, lo + b) as Typed;
    if (!failure) {
      out.set(viewLike(own, sab, heads[0]!.offset + a * bpe, b - a) as never);
      for (let i = 1; i < p && !failure; i++) {
        const res = combine(op, out, viewLike(own, sab, heads[i]!.offset + a * bpe, b - a), 'a');
        if (res instanceof CollError) failure = res;
      }
    }
    for (let i = 0; i < p; i++) if (i !== me) c.ack(members[i]!, k);
    // Back into my region where my slice was (nobody else reads that slice of it), for the others to copy.
    viewLike(own, sab, heads[me]!.offset + a * bpe, b - a).set(out as never);
    c.announce(k, 1, p - 1, members, members);
    const w = c.allReady(k, 1);
    if (w) await w;
    for (let i = 0; i < p; i++) {
      if (i === me) continue;
      const h = c.head(members[i]!, k);
      const [x, y] = seg(i);
      if (!failure) (result.subarray(lo + x, lo + y) as Typed).set(viewLike(own, sab, h.offset + x * bpe, y - x) as never);
      c.ack(members[i]!, k);
    }
  }
  if (failure) throw failure.err;
  return result;
}

export async function gather(r: Round, c: RegionCall, data: unknown, root: number): Promise<unknown[] | undefined> {
  const e = encodeOr(data);
  const senders = c.members.filter((_, i) => i !== root);
  if (r.rank !== root) {
    await publish(c, e, 1, [c.members[root]!], senders);
    unwrap(e);
    return undefined;
  }
  const w = c.allReady(0, 0, senders);
  if (w) await w;
  const out = new Array<unknown>(r.size);
  let failure: CollError | null = e instanceof CollError ? e : null;
  for (let i = 0; i < r.size; i++) {
    const v = i === root ? (e instanceof CollError ? e : decodeItem(flatItem(e))) : await receiveValue(c, c.members[i]!);
    if (v instanceof CollError) failure ??= v;
    else out[i] = v;
  }
  if (failure) throw failure.err;
  return out;
}

export async function allgather(r: Round, c: RegionCall, data: unknown): Promise<unknown[]> {
  const e = encodeOr(data);
  const out = new Array<unknown>(r.size);
  let failure: CollError | null = e instanceof CollError ? e : null;
  await alongside(publish(c, e, r.size - 1, c.members, c.members), async () => {
    const w = c.allReady(0);
    if (w) await w;
    for (let i = 0; i < r.size; i++) {
      const v = i === r.rank ? (e instanceof CollError ? e : decodeItem(flatItem(e))) : await receiveValue(c, c.members[i]!);
      if (v instanceof CollError) failure ??= v;
      else out[i] = v;
    }
  });
  if (failure) throw (failure as CollError).err;
  return out;
}

/** The root publishes every rank's item in one bundle; each rank takes its own. */
export async function scatter(r: Round, c: RegionCall, values: unknown, root: number): Promise<unknown> {
  const p = r.size;
  if (r.rank === root) {
    let items: Maybe<Encoded[]>;
    if (!Array.isArray(values) || values.length !== p) {
      items = new CollError(new TsmpiError('ERR_ARG', `scatter: the root must pass an array of ${p} values (one per rank), got ${Array.isArray(values) ? `${values.length} values` : typeof values}`));
    } else {
      const enc: Encoded[] = [];
      let failed: CollError | null = null;
      for (const v of values) {
        const x = encodeOr(v);
        if (x instanceof CollError) failed ??= x;
        else enc.push(x);
      }
      items = failed ?? enc;
    }
    await publish(c, items instanceof CollError ? items : packBundle(items), p - 1, c.members);
    return decodeItem(flatItem(unwrap(items)[root]!));
  }
  const b = unwrap(await receiveBytes(c, c.members[root]!));
  const items = unpackBundle(b.payload);
  return decodeItem(items[r.rank]!);
}
