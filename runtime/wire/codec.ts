/**
 * Value encoding: what a message's payload bytes mean. Pure.
 *
 * - RAW: a typed array, Buffer, DataView or ArrayBuffer travels as its own bytes
 *   (no per-element work, no copy on the sending side); `elem` names its type.
 * - V8: anything else `structuredClone` accepts, through V8's serializer, with
 *   typed arrays kept as views of their (shared) ArrayBuffers as
 *   `structuredClone` keeps them.
 * - JSON: plain data reached by one path each (a tree), and control messages.
 *
 * Identity: what arrives is what `structuredClone` gives, so an object reached
 * twice (a cycle, or two fields holding one object) arrives as one object reached
 * twice. The V8 serializer keeps that itself; JSON cannot, so only trees take it.
 */
import { deserializeV8, serializeV8 } from './v8-clone.js';
import { TsmpiError } from '../errors.js';

/**
 * Payload encodings. V8 is the general case; the others are faster paths for
 * values whose structured clone they reproduce exactly (first measured here: a
 * v8 serialize + deserialize round trip cost about 5 µs for a number and 11 µs
 * for `{a: 1, b: 'x'}`, the fast paths 0.3 µs and 2 µs; now measured by
 * `npm run bench -- --only codec`, beside the codec as it was and node:v8).
 */
export const Encoding = {
  V8: 0,
  RAW: 1,
  /** plain data only: strings, finite numbers, booleans, null, plain objects and dense arrays of them, each object reached once */
  JSON: 2,
  /** one float64 (any number, NaN and -0 included) */
  F64: 4,
  /** undefined, null, false or true: one byte */
  CONST: 5,
  /** collectives only: a large typed array follows in RAW segments (JSON header) */
  SEGMENTED: 6,
} as const;

const CONSTANTS = [undefined, null, false, true] as const;

/** Values with more objects than this track the ones seen in a Set instead of a list. */
const SEEN_LIST_MAX = 16;

/**
 * The objects a `jsonSafe` walk has met, to find one reached twice. Made only
 * when the walk meets a second object, so one flat object costs nothing more.
 */
class Seen {
  private list: object[];
  private set: Set<object> | null = null;
  constructor(first: object) {
    this.list = [first];
  }
  /** Record `o`; false when it was met before. */
  add(o: object): boolean {
    const set = this.set;
    if (set !== null) {
      // one hash lookup, not has() then add()
      const n = set.size;
      return set.add(o).size !== n;
    }
    const list = this.list;
    if (list.includes(o)) return false;
    if (list.length < SEEN_LIST_MAX) list.push(o);
    else (this.set = new Set(list)).add(o);
    return true;
  }
}

/** The walk's state: the value's root object and, once there is a second, the `Seen` record. */
interface Walk {
  root: object;
  seen: Seen | null;
}

/**
 * Can JSON carry this value with exactly its structured-clone meaning? Only
 * plain objects (no toJSON, no undefined members), dense arrays without extra
 * keys, strings, booleans, null and finite non-negative-zero numbers, up to a
 * modest depth, and every object reached by one path only: JSON would send an
 * object reached twice (shared or cyclic) twice, so such values take the v8 path.
 * (Also used by tsmpi/pool to put such messages into JSON control messages as they are.)
 */
export function jsonSafe(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return primitiveJsonSafe(v);
  // A getter in the value may send a value itself: only the outer walk uses the scratch state.
  if (walking) return objectJsonSafe(v, 0, { root: v, seen: null });
  walking = true;
  scratch.root = v;
  try {
    return objectJsonSafe(v, 0, scratch);
  } finally {
    walking = false;
    scratch.root = scratch; // keep no user object alive
    scratch.seen = null;
  }
}

/** The outer walk's state, reused: a flat object costs no allocation. */
const scratch: Walk = { root: {}, seen: null };
let walking = false;

function primitiveJsonSafe(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0);
    case 'object':
      return v === null;
    default:
      return false;
  }
}

function memberJsonSafe(v: unknown, depth: number, w: Walk): boolean {
  if (typeof v !== 'object' || v === null) return primitiveJsonSafe(v);
  if (w.seen === null) {
    if (v === w.root) return false;
    w.seen = new Seen(w.root);
  }
  return w.seen.add(v) && objectJsonSafe(v, depth, w);
}

function objectJsonSafe(v: object, depth: number, w: Walk): boolean {
  if (depth > 24) return false;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return false;
    const n = v.length;
    for (let i = 0; i < n; i++) if (!(i in v) || !memberJsonSafe(v[i], depth + 1, w)) return false;
    // no keys besides the indexes (JSON would drop them), an empty array included
    return Object.keys(v).length === n;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const k in v) {
    if (!Object.hasOwn(v, k) || !memberJsonSafe((v as Record<string, unknown>)[k], depth + 1, w)) return false;
  }
  return true;
}

type ViewCtor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView; BYTES_PER_ELEMENT: number };

/** Element type codes of RAW payloads. Index = code. */
const VIEW_TYPES: (ViewCtor | null)[] = [
  null,
  Uint8Array,
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];
const ELEM_BUFFER = 12;
const ELEM_ARRAYBUFFER = 13;
const ELEM_DATAVIEW = 14;
export const MAX_ELEM = 14;

export interface Encoded {
  enc: number;
  elem: number;
  /** payload pieces, sent back to back; RAW pieces view the caller's memory */
  parts: Uint8Array[];
  length: number;
  /** true when `parts` alias the caller's memory (send must finish before the caller may reuse it) */
  aliased: boolean;
}

function elemOf(value: object): number {
  if (Buffer.isBuffer(value)) return ELEM_BUFFER;
  if (value instanceof DataView) return ELEM_DATAVIEW;
  const ctor = value.constructor;
  for (let i = 1; i < VIEW_TYPES.length; i++) if (VIEW_TYPES[i] === ctor) return i;
  return 0;
}

/** Encode a value for the wire; throws ERR_SERIALIZE naming where the value cannot be cloned. */
export function encodeValue(value: unknown): Encoded {
  if (typeof value === 'number') {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(value, 0);
    return { enc: Encoding.F64, elem: 0, parts: [b], length: 8, aliased: false };
  }
  const c = CONSTANTS.indexOf(value as never);
  if (c >= 0) return { enc: Encoding.CONST, elem: 0, parts: [Buffer.from([c])], length: 1, aliased: false };
  if (jsonSafe(value)) {
    const b = Buffer.from(JSON.stringify(value), 'utf8');
    return { enc: Encoding.JSON, elem: 0, parts: [b], length: b.length, aliased: false };
  }
  if (typeof value === 'object' && value !== null) {
    if (ArrayBuffer.isView(value)) {
      const elem = elemOf(value);
      if (elem !== 0) {
        const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
        return { enc: Encoding.RAW, elem, parts: [bytes], length: bytes.byteLength, aliased: true };
      }
    } else if (value instanceof ArrayBuffer) {
      return { enc: Encoding.RAW, elem: ELEM_ARRAYBUFFER, parts: [new Uint8Array(value)], length: value.byteLength, aliased: true };
    }
  }
  let bytes: Buffer;
  try {
    bytes = serializeV8(value);
  } catch (e) {
    throw new TsmpiError('ERR_SERIALIZE', `cannot send this value: ${describeUnclonable(value)}`, { cause: e });
  }
  return { enc: Encoding.V8, elem: 0, parts: [bytes], length: bytes.length, aliased: false };
}

/** One contiguous copy of an encoded value (self-sends, tests). */
export function flatten(e: Encoded): Buffer {
  const out = Buffer.allocUnsafeSlow(e.length);
  let off = 0;
  for (const p of e.parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/**
 * Decode a payload. A payload that does not own its memory exactly (a view into a
 * larger network chunk) is copied first, so the value never exposes other bytes.
 */
export function decodeValue(enc: number, elem: number, payload: Buffer): unknown {
  if (enc === Encoding.RAW) {
    // Tiny byte arrays live on V8's heap: far cheaper than a buffer of their own.
    if (elem === 1 && payload.byteLength <= 64) {
      const out = new Uint8Array(payload.byteLength);
      out.set(payload);
      return out;
    }
    return decodeRaw(elem, ownBytes(payload));
  }
  if (enc === Encoding.V8) {
    try {
      return deserializeV8(ownBytes(payload));
    } catch (e) {
      throw new TsmpiError('ERR_PROTOCOL', 'a message payload could not be deserialized', { cause: e });
    }
  }
  if (enc === Encoding.JSON) return decodeJson(payload);
  if (enc === Encoding.F64) {
    if (payload.length !== 8) throw new TsmpiError('ERR_PROTOCOL', `a number payload has ${payload.length} bytes, not 8`);
    return payload.readDoubleLE(0);
  }
  if (enc === Encoding.CONST) {
    if (payload.length !== 1 || payload[0]! > 3) throw new TsmpiError('ERR_PROTOCOL', 'a malformed constant payload');
    return CONSTANTS[payload[0]!];
  }
  throw new TsmpiError('ERR_PROTOCOL', `unknown payload encoding ${enc}`);
}

function ownBytes(payload: Buffer): Buffer {
  // Every empty payload may be one shared buffer: give each value its own.
  if (payload.byteLength === 0) return Buffer.allocUnsafeSlow(0);
  if (payload.byteOffset === 0 && payload.buffer.byteLength === payload.byteLength) return payload;
  const copy = Buffer.allocUnsafeSlow(payload.byteLength);
  copy.set(payload);
  return copy;
}

function decodeRaw(elem: number, bytes: Buffer): unknown {
  const ab = bytes.buffer as ArrayBuffer;
  switch (elem) {
    case ELEM_BUFFER:
      return bytes;
    case ELEM_ARRAYBUFFER:
      return ab;
    case ELEM_DATAVIEW:
      return new DataView(ab, 0, bytes.byteLength);
  }
  const ctor = VIEW_TYPES[elem];
  if (!ctor) throw new TsmpiError('ERR_PROTOCOL', `unknown typed array code ${elem}`);
  if (bytes.byteLength % ctor.BYTES_PER_ELEMENT !== 0) {
    throw new TsmpiError('ERR_PROTOCOL', `${bytes.byteLength} bytes is not a whole number of ${ctor.name} elements`);
  }
  return new ctor(ab, 0, bytes.byteLength / ctor.BYTES_PER_ELEMENT);
}

export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function decodeJson(payload: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch (e) {
    throw new TsmpiError('ERR_PROTOCOL', 'a control payload is not valid JSON', { cause: e });
  }
}

/**
 * Find the first place inside `value` that cannot be cloned and say what it is,
 * e.g. `value.jobs[2].run is a function`. Only runs after serialization failed.
 */
export function describeUnclonable(value: unknown): string {
  const seen = new Set<unknown>();
  const found = locate(value, 'value', seen);
  return found ?? `value (${kindOf(value)}) cannot be cloned`;
}

function clonable(v: unknown): boolean {
  try {
    serializeV8(v);
    return true;
  } catch {
    return false;
  }
}

function kindOf(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  if (v instanceof WeakMap || v instanceof WeakSet) return `a ${v.constructor.name}`;
  if (v instanceof Promise) return 'a Promise';
  if (typeof v === 'object' && v !== null) return `an object of class ${v.constructor?.name ?? 'null-prototype'}`;
  return typeof v;
}

function locate(v: unknown, path: string, seen: Set<unknown>): string | null {
  if (typeof v === 'function' || typeof v === 'symbol') return `${path} is ${kindOf(v)}`;
  if (typeof v !== 'object' || v === null) return null;
  if (seen.has(v)) return null;
  seen.add(v);
  if (clonable(v)) return null;
  const children: [string, unknown][] = [];
  if (v instanceof Map) {
    let i = 0;
    for (const [k, x] of v) {
      children.push([`${path}.<Map key #${i}>`, k], [`${path}.get(#${i})`, x]);
      i++;
    }
  } else if (v instanceof Set) {
    let i = 0;
    for (const x of v) children.push([`${path}.<Set item #${i++}>`, x]);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => children.push([`${path}[${i}]`, x]));
  } else {
    for (const k of Object.keys(v)) {
      children.push([/^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`, (v as Record<string, unknown>)[k]]);
    }
  }
  for (const [p, x] of children) {
    const r = locate(x, p, seen);
    if (r) return r;
  }
  return `${path} is ${kindOf(v)}, which cannot be cloned`;
}
