/**
 * The V8 payload: V8's value serializer with structured-clone semantics for
 * typed arrays. Pure.
 *
 * `node:v8`'s `serialize` copies every typed array's own bytes out of its
 * ArrayBuffer, so two views of one buffer (or a view and its buffer) arrive
 * over two different buffers, unlike `structuredClone`. Here a typed array or
 * DataView is written as (type, byteOffset, byteLength) followed by its
 * ArrayBuffer as an ordinary V8 value, so V8's own object-identity table makes
 * one buffer reached twice arrive as one buffer, as `structuredClone` gives.
 *
 * Two views keep the `node:v8` behaviour, their own bytes only: a Node Buffer
 * (it arrives as a Buffer, not the Uint8Array `structuredClone` makes, and its
 * pooled neighbours never travel), and a view of a SharedArrayBuffer (memory
 * cannot be shared with another process).
 *
 * Host-object tags: 64 + type index for this format; below 64, `node:v8`'s own
 * format (one index, a u32 length, the bytes), still read so that values from a
 * peer that used `node:v8`'s serializer decode.
 */
import { Deserializer, Serializer } from 'node:v8';

type AnyView = ArrayBufferView & { readonly length?: number };
type ViewCtor = { new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): AnyView; BYTES_PER_ELEMENT?: number };

/** `node:v8`'s host-object type indexes (10: Buffer); the same numbering here. */
const VIEWS: ViewCtor[] = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  DataView,
  Buffer as unknown as ViewCtor,
  BigInt64Array,
  BigUint64Array,
];
const BUFFER = 10;
/** tags from here on: this module's format */
const OWN = 64;

/** type name (as `Object.prototype.toString` says it, so subclasses and other realms count) → index */
const INDEX = new Map(VIEWS.map((c, i) => [c.name, i] as const).filter(([, i]) => i !== BUFFER));

function indexOf(view: AnyView): number {
  if (Buffer.isBuffer(view)) return BUFFER;
  return INDEX.get(Object.prototype.toString.call(view).slice(8, -1)) ?? -1;
}

class CloneSerializer extends Serializer {
  constructor() {
    super();
    // in node:v8 but not in @types/node
    (this as unknown as { _setTreatArrayBufferViewsAsHostObjects(on: boolean): void })._setTreatArrayBufferViewsAsHostObjects(true);
  }

  _writeHostObject(view: AnyView): void {
    const i = indexOf(view);
    if (i < 0) throw new (this as unknown as { _getDataCloneError: ErrorConstructor })._getDataCloneError(`${Object.prototype.toString.call(view)} cannot be cloned`);
    this.writeUint32(OWN + i);
    if (i === BUFFER || !(view.buffer instanceof ArrayBuffer)) {
      // only the view's own bytes
      this.writeDouble(-1);
      this.writeDouble(view.byteLength);
      this.writeRawBytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      return;
    }
    // the offset and length first: the buffer must be the last thing written here
    this.writeDouble(view.byteOffset);
    this.writeDouble(view.byteLength);
    this.writeValue(view.buffer);
  }
}

class CloneDeserializer extends Deserializer {
  _readHostObject(): AnyView {
    const tag = this.readUint32();
    const own = tag >= OWN;
    const ctor = VIEWS[own ? tag - OWN : tag];
    if (!ctor) throw new Error(`unknown typed array type ${tag}`);
    const offset = own ? this.readDouble() : -1;
    const byteLength = own ? this.readDouble() : this.readUint32();
    const per = ctor.BYTES_PER_ELEMENT ?? 1;
    if (!Number.isSafeInteger(byteLength) || byteLength < 0 || byteLength % per !== 0) throw new Error(`bad typed array length ${byteLength}`);
    if (offset === -1) {
      const bytes = Buffer.allocUnsafeSlow(byteLength);
      bytes.set(this.readRawBytes(byteLength));
      return ctor === VIEWS[BUFFER] ? bytes : new ctor(bytes.buffer, 0, byteLength / per);
    }
    const buffer: unknown = this.readValue();
    if (!(buffer instanceof ArrayBuffer)) throw new Error('a typed array without its ArrayBuffer');
    // a DataView's third argument is bytes, a typed array's elements
    return new ctor(buffer, offset, byteLength / per);
  }
}

/** Serialize any structured-clonable value (throws DataCloneError otherwise). */
export function serializeV8(value: unknown): Buffer {
  const s = new CloneSerializer();
  s.writeHeader();
  s.writeValue(value);
  return s.releaseBuffer();
}

/** Deserialize a `serializeV8` payload (throws on malformed bytes). */
export function deserializeV8(bytes: Buffer): unknown {
  const d = new CloneDeserializer(bytes);
  d.readHeader();
  return d.readValue();
}
