// The value codec as it was before identity tracking (commit 7f672a0, compiled
// from runtime/wire/codec.ts as it stood), kept for bench/codec.mjs's "old"
// column only: the README's 0.3 µs / 2 µs fast-path figures were measured on it.
// A module of its own, as the built codec is, so both are called alike.
import { serialize, deserialize } from "node:v8";
import { TsmpiError } from '../dist/runtime/errors.js';
const Encoding = {
  V8: 0,
  RAW: 1,
  /** plain data only: strings, finite numbers, booleans, null, plain objects and dense arrays of them */
  JSON: 2,
  /** one float64 (any number, NaN and -0 included) */
  F64: 4,
  /** undefined, null, false or true: one byte */
  CONST: 5,
  /** collectives only: a large typed array follows in RAW segments (JSON header) */
  SEGMENTED: 6
};
const CONSTANTS = [void 0, null, false, true];
function jsonSafe(v, depth) {
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v) && !Object.is(v, -0);
    case "object": {
      if (v === null) return true;
      if (depth > 24) return false;
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) return false;
        const n = v.length;
        for (let i = 0; i < n; i++) if (!(i in v) || !jsonSafe(v[i], depth + 1)) return false;
        return n === 0 || Object.keys(v).length === n;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      if (typeof v.toJSON === "function") return false;
      for (const k in v) {
        if (!Object.hasOwn(v, k) || !jsonSafe(v[k], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}
const VIEW_TYPES = [
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
  BigUint64Array
];
const ELEM_BUFFER = 12;
const ELEM_ARRAYBUFFER = 13;
const ELEM_DATAVIEW = 14;
const MAX_ELEM = 14;
function elemOf(value) {
  if (Buffer.isBuffer(value)) return ELEM_BUFFER;
  if (value instanceof DataView) return ELEM_DATAVIEW;
  const ctor = value.constructor;
  for (let i = 1; i < VIEW_TYPES.length; i++) if (VIEW_TYPES[i] === ctor) return i;
  return 0;
}
function encodeValue(value) {
  if (typeof value === "number") {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(value, 0);
    return { enc: Encoding.F64, elem: 0, parts: [b], length: 8, aliased: false };
  }
  const c = CONSTANTS.indexOf(value);
  if (c >= 0) return { enc: Encoding.CONST, elem: 0, parts: [Buffer.from([c])], length: 1, aliased: false };
  if (jsonSafe(value, 0)) {
    const b = Buffer.from(JSON.stringify(value), "utf8");
    return { enc: Encoding.JSON, elem: 0, parts: [b], length: b.length, aliased: false };
  }
  if (typeof value === "object" && value !== null) {
    if (ArrayBuffer.isView(value)) {
      const elem = elemOf(value);
      if (elem !== 0) {
        const bytes2 = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
        return { enc: Encoding.RAW, elem, parts: [bytes2], length: bytes2.byteLength, aliased: true };
      }
    } else if (value instanceof ArrayBuffer) {
      return { enc: Encoding.RAW, elem: ELEM_ARRAYBUFFER, parts: [new Uint8Array(value)], length: value.byteLength, aliased: true };
    }
  }
  let bytes;
  try {
    bytes = serialize(value);
  } catch (e) {
    throw new TsmpiError("ERR_SERIALIZE", `cannot send this value: ${describeUnclonable(value)}`, { cause: e });
  }
  return { enc: Encoding.V8, elem: 0, parts: [bytes], length: bytes.length, aliased: false };
}
function flatten(e) {
  const out = Buffer.allocUnsafeSlow(e.length);
  let off = 0;
  for (const p of e.parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
function decodeValue(enc, elem, payload) {
  if (enc === Encoding.RAW) {
    if (elem === 1 && payload.byteLength <= 64) {
      const out = new Uint8Array(payload.byteLength);
      out.set(payload);
      return out;
    }
    return decodeRaw(elem, ownBytes(payload));
  }
  if (enc === Encoding.V8) {
    try {
      return deserialize(ownBytes(payload));
    } catch (e) {
      throw new TsmpiError("ERR_PROTOCOL", "a message payload could not be deserialized", { cause: e });
    }
  }
  if (enc === Encoding.JSON) return decodeJson(payload);
  if (enc === Encoding.F64) {
    if (payload.length !== 8) throw new TsmpiError("ERR_PROTOCOL", `a number payload has ${payload.length} bytes, not 8`);
    return payload.readDoubleLE(0);
  }
  if (enc === Encoding.CONST) {
    if (payload.length !== 1 || payload[0] > 3) throw new TsmpiError("ERR_PROTOCOL", "a malformed constant payload");
    return CONSTANTS[payload[0]];
  }
  throw new TsmpiError("ERR_PROTOCOL", `unknown payload encoding ${enc}`);
}
function ownBytes(payload) {
  if (payload.byteLength === 0) return Buffer.allocUnsafeSlow(0);
  if (payload.byteOffset === 0 && payload.buffer.byteLength === payload.byteLength) return payload;
  const copy = Buffer.allocUnsafeSlow(payload.byteLength);
  copy.set(payload);
  return copy;
}
function decodeRaw(elem, bytes) {
  const ab = bytes.buffer;
  switch (elem) {
    case ELEM_BUFFER:
      return bytes;
    case ELEM_ARRAYBUFFER:
      return ab;
    case ELEM_DATAVIEW:
      return new DataView(ab, 0, bytes.byteLength);
  }
  const ctor = VIEW_TYPES[elem];
  if (!ctor) throw new TsmpiError("ERR_PROTOCOL", `unknown typed array code ${elem}`);
  if (bytes.byteLength % ctor.BYTES_PER_ELEMENT !== 0) {
    throw new TsmpiError("ERR_PROTOCOL", `${bytes.byteLength} bytes is not a whole number of ${ctor.name} elements`);
  }
  return new ctor(ab, 0, bytes.byteLength / ctor.BYTES_PER_ELEMENT);
}
function encodeJson(value) {
  return Buffer.from(JSON.stringify(value), "utf8");
}
function decodeJson(payload) {
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8"));
  } catch (e) {
    throw new TsmpiError("ERR_PROTOCOL", "a control payload is not valid JSON", { cause: e });
  }
}
function describeUnclonable(value) {
  const seen = /* @__PURE__ */ new Set();
  const found = locate(value, "value", seen);
  return found ?? `value (${kindOf(value)}) cannot be cloned`;
}
function clonable(v) {
  try {
    serialize(v);
    return true;
  } catch {
    return false;
  }
}
function kindOf(v) {
  if (typeof v === "function") return "a function";
  if (typeof v === "symbol") return "a symbol";
  if (v instanceof WeakMap || v instanceof WeakSet) return `a ${v.constructor.name}`;
  if (v instanceof Promise) return "a Promise";
  if (typeof v === "object" && v !== null) return `an object of class ${v.constructor?.name ?? "null-prototype"}`;
  return typeof v;
}
function locate(v, path, seen) {
  if (typeof v === "function" || typeof v === "symbol") return `${path} is ${kindOf(v)}`;
  if (typeof v !== "object" || v === null) return null;
  if (seen.has(v)) return null;
  seen.add(v);
  if (clonable(v)) return null;
  const children = [];
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
      children.push([/^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`, v[k]]);
    }
  }
  for (const [p, x] of children) {
    const r = locate(x, p, seen);
    if (r) return r;
  }
  return `${path} is ${kindOf(v)}, which cannot be cloned`;
}
export {
  Encoding,
  MAX_ELEM,
  decodeJson,
  decodeValue,
  describeUnclonable,
  encodeJson,
  encodeValue,
  flatten
};
