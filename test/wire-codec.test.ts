// Pure tests of value encoding: round trips of random values compared with
// structuredClone, identity structure included (fixtures/identity.ts), the RAW
// typed-array path (no copy out, owned memory in), and ERR_SERIALIZE / ERR_PROTOCOL.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { serialize } from 'node:v8';
import {
  Encoding,
  MAX_ELEM,
  decodeJson,
  decodeValue,
  describeUnclonable,
  encodeJson,
  encodeValue,
  flatten,
  type Encoded,
} from '../runtime/wire/codec.js';
import { FrameDecoder, FrameType, encodeFrame } from '../runtime/wire/frame.js';
import { TsmpiError } from '../runtime/errors.js';
import { sameValue } from './fixtures/check.js';
import { cloneDifference } from './fixtures/identity.js';
import { build, plans } from './fixtures/clone-values.js';
import { throwsCode } from './expect-code.js';

function roundTrip(v: unknown): unknown {
  const e = encodeValue(v);
  return decodeValue(e.enc, e.elem, flatten(e));
}


/** Copy `bytes` into a bigger buffer at `offset` and return the view of them. */
function embed(bytes: Uint8Array, offset: number, after = 13): Buffer {
  const big = Buffer.alloc(offset + bytes.byteLength + after, 0xa5);
  big.set(bytes, offset);
  return big.subarray(offset, offset + bytes.byteLength);
}

const TYPED: { new (n: number): ArrayBufferView & { length: number } }[] = [
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

const elemOf = (v: unknown): number => encodeValue(v).elem;

/**
 * structuredClone(v), or a failed precondition when structuredClone itself
 * refuses v (V8 cannot read back an Error whose `cause` leads back to that
 * Error: such values are outside what the contract promises).
 */
function oracle(v: unknown): unknown {
  try {
    return structuredClone(v);
  } catch {
    fc.pre(false);
  }
}

/** Whether some object is reached twice in `v` (shared or cyclic). */
function hasSharedObject(v: unknown, seen = new Set<object>()): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (seen.has(v)) return true;
  seen.add(v);
  return Object.values(v).some((x) => hasSharedObject(x, seen));
}

describe('decode(encode(v)) is what structuredClone(v) gives, identity included', () => {
  const same = (got: unknown, want: unknown) => cloneDifference(got, want, { rootViewByContents: true });

  it('random values of every clonable kind, with shared references and cycles (property)', () => {
    fc.assert(
      fc.property(plans({ invalidDates: true }), (plan) => {
        const v = build(plan);
        const want = oracle(v);
        expect(same(roundTrip(v), want)).toBeNull();
      }),
      { numRuns: 600 },
    );
  });

  it('random plain data: JSON exactly when no object is reached twice, and identity either way (property)', () => {
    let json = 0;
    let shared = 0;
    fc.assert(
      fc.property(plans({ plainOnly: true, maxDepth: 5 }), (plan) => {
        const v = build(plan);
        const e = encodeValue(v);
        if (typeof v === 'object' && v !== null) {
          const twice = hasSharedObject(v);
          expect(e.enc).toBe(twice ? Encoding.V8 : Encoding.JSON);
          if (twice) shared++;
          else json++;
        }
        expect(same(decodeValue(e.enc, e.elem, flatten(e)), structuredClone(v))).toBeNull();
      }),
      { numRuns: 600 },
    );
    // the generator really makes both kinds
    expect(shared).toBeGreaterThan(50);
    expect(json).toBeGreaterThan(50);
  });

  it("fast-check's own anything() values (property)", () => {
    const value = fc.anything({
      withBigInt: true,
      withMap: true,
      withSet: true,
      withDate: true,
      withTypedArray: true,
      withSparseArray: true,
      withNullPrototype: true,
      withObjectString: false,
      withBoxedValues: true,
    });
    fc.assert(
      fc.property(value, (v) => {
        expect(same(roundTrip(v), structuredClone(v))).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('the issue\'s case: { a: o, b: o } arrives with b === a, through every encoding of o', () => {
    const buf = new ArrayBuffer(8);
    for (const o of [{ x: 1 }, [1, 2], new Map([[1, 2]]), new Date(5), new Float64Array(buf), buf, new Error('e')]) {
      const got = roundTrip({ a: o, b: o, list: [o] }) as { a: unknown; b: unknown; list: unknown[] };
      expect(got.a).toBe(got.b);
      expect(got.list[0]).toBe(got.a);
    }
  });

  it('typed arrays and DataViews nested in a value keep their shared ArrayBuffer, offsets and lengths', () => {
    const buf = new ArrayBuffer(32);
    new Uint8Array(buf).forEach((_, i, u) => (u[i] = i));
    const v = { buf, a: new Uint8Array(buf, 3, 5), b: new Float64Array(buf, 8, 2), c: new DataView(buf, 1, 30), d: new BigInt64Array(buf, 24, 1) };
    const got = roundTrip(v) as typeof v;
    expect(same(got, structuredClone(v))).toBeNull();
    expect(got.a.buffer).toBe(got.buf);
    expect(got.b.buffer).toBe(got.buf);
    expect(got.c.buffer).toBe(got.buf);
    expect(got.d.buffer).toBe(got.buf);
    expect([got.a.byteOffset, got.b.byteOffset, got.c.byteOffset, got.c.byteLength]).toEqual([3, 8, 1, 30]);
  });

  it('nested Buffers arrive as Buffers owning exactly their bytes (not structuredClone\'s Uint8Array over the whole pool)', () => {
    const b = Buffer.from('hello');
    expect(b.buffer.byteLength).toBeGreaterThan(b.length); // a slice of Node's pool
    const got = roundTrip({ a: b, b, n: [Buffer.from([1, 2])] }) as { a: Buffer; b: Buffer; n: Buffer[] };
    expect(Buffer.isBuffer(got.a)).toBe(true);
    expect(got.b).toBe(got.a);
    expect(got.a.toString()).toBe('hello');
    expect(got.a.buffer.byteLength).toBe(5);
    expect([...got.n[0]!]).toEqual([1, 2]);
  });

  it('a view of a SharedArrayBuffer nested in a value arrives as a copy of its bytes', () => {
    const sab = new SharedArrayBuffer(16);
    const v = new Int32Array(sab, 4, 2);
    v.set([7, -8]);
    const got = (roundTrip({ v }) as { v: Int32Array }).v;
    expect(got).toBeInstanceOf(Int32Array);
    expect([...got]).toEqual([7, -8]);
    expect(got.buffer).toBeInstanceOf(ArrayBuffer);
  });

  it('reads payloads of node:v8 serialize (an older peer), typed arrays into memory of their own', () => {
    const v = { a: new Float64Array([1.5, -0]), b: Buffer.from('x'), s: new Set([1]) };
    const got = decodeValue(Encoding.V8, 0, serialize(v)) as typeof v;
    expect(got.a).toBeInstanceOf(Float64Array);
    expect(Object.is(got.a[1], -0)).toBe(true);
    expect(got.a.buffer.byteLength).toBe(16);
    expect(Buffer.isBuffer(got.b) && got.b.toString()).toBe('x');
    expect(got.s.has(1)).toBe(true);
  });
});

describe('the identity comparison itself', () => {
  it('tells two copies from one shared object, and a cycle from a copy', () => {
    const o = { x: 1 };
    expect(cloneDifference({ a: o, b: o }, structuredClone({ a: o, b: o }))).toBeNull();
    expect(cloneDifference({ a: { x: 1 }, b: { x: 1 } }, structuredClone({ a: o, b: o }))).toContain('["b"]');
    expect(cloneDifference(structuredClone({ a: o, b: o }), { a: { x: 1 }, b: { x: 1 } })).not.toBeNull();
    const c: Record<string, unknown> = {};
    c.self = c;
    expect(cloneDifference(structuredClone(c), { self: { self: {} } })).not.toBeNull();
    // what the old JSON fast path did to a shared value
    const v = { a: o, b: [o] };
    expect(cloneDifference(JSON.parse(JSON.stringify(v)), structuredClone(v))).not.toBeNull();
  });

  it('tells types, prototypes, -0, NaN, bigint, holes, key order and buffer sharing apart', () => {
    const buf = new ArrayBuffer(8);
    const pairs: [unknown, unknown][] = [
      [0, -0],
      [NaN, 'NaN'],
      [1n, 1],
      [[1, , 3], [1, undefined, 3]],
      [{ a: 1, b: 2 }, { b: 2, a: 1 }],
      [Object.create(null), {}],
      [new TypeError('m'), new Error('m')],
      [new Uint8Array(2), new Int8Array(2)],
      [Buffer.alloc(2), new Uint8Array(2)],
      [{ a: new Uint8Array(buf), b: new Uint8Array(buf) }, { a: new Uint8Array(8), b: new Uint8Array(8) }],
      [{ d: new Uint8Array(buf, 1) }, { d: new Uint8Array(buf, 2) }],
      [new Map([[{}, 1]]), new Map([['{}', 1]])],
      [new Date(1), new Date(2)],
      [new Date(NaN), new Date(0)],
      [/a/g, /a/i],
      [Object(1), 1],
    ];
    pairs.forEach(([a, b], i) => expect(cloneDifference(a, b), `pair #${i}`).not.toBeNull());
    expect(cloneDifference(new Date(NaN), new Date(NaN))).toBeNull();
  });

  it('compares a root typed array by contents only when asked (the RAW path)', () => {
    const whole = new Uint8Array([9, 1, 2, 9]);
    const view = whole.subarray(1, 3);
    expect(cloneDifference(new Uint8Array([1, 2]), structuredClone(view))).not.toBeNull();
    expect(cloneDifference(new Uint8Array([1, 2]), structuredClone(view), { rootViewByContents: true })).toBeNull();
    expect(cloneDifference(new Uint8Array([1, 3]), view, { rootViewByContents: true })).not.toBeNull();
  });
});

describe('the RAW path', () => {
  it('encodes typed arrays, Buffers, DataViews and ArrayBuffers as RAW; numbers, constants and plain data on fast paths; everything else as V8', () => {
    for (const C of TYPED) expect(encodeValue(new C(2)).enc).toBe(Encoding.RAW);
    for (const v of [Buffer.alloc(2), new DataView(new ArrayBuffer(2)), new ArrayBuffer(2)]) expect(encodeValue(v).enc).toBe(Encoding.RAW);
    const expectations: [unknown, number][] = [
      [1, Encoding.F64],
      [-0, Encoding.F64],
      [NaN, Encoding.F64],
      [null, Encoding.CONST],
      [undefined, Encoding.CONST],
      [true, Encoding.CONST],
      ['x', Encoding.JSON],
      [{ a: 1, b: ['x', null, { c: true }] }, Encoding.JSON],
      [[new Uint8Array(1)], Encoding.V8],
      [{ a: new Float64Array(1) }, Encoding.V8],
      [{ a: undefined }, Encoding.V8],
      [{ a: -0 }, Encoding.V8],
      [[1, , 3], Encoding.V8],
      [Object.assign([1, 2], { extra: 1 }), Encoding.V8],
      [Object.assign([], { extra: 1 }), Encoding.V8],
      [new Date(0), Encoding.V8],
      [{ n: 10n }, Encoding.V8],
      [{ x: Infinity }, Encoding.V8],
      [(() => {
        const o = { x: 1 };
        return { a: o, b: o };
      })(), Encoding.V8],
      [(() => {
        const o: unknown[] = [];
        return [o, [o]];
      })(), Encoding.V8],
      [(() => {
        const o: Record<string, unknown> = {};
        o.self = o;
        return o;
      })(), Encoding.V8],
      [{ a: { x: 1 }, b: { x: 1 } }, Encoding.JSON],
      [Array.from({ length: 40 }, (_, i) => ({ i })), Encoding.JSON],
    ];
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    expectations.push([deep, Encoding.V8]);
    for (const [v, enc] of expectations) {
      const e = encodeValue(v);
      expect(e.enc, `encoding of ${String(v)}`).toBe(enc);
      expect(e.elem).toBe(0);
      expect(e.aliased).toBe(false);
      const back = decodeValue(e.enc, e.elem, flatten(e));
      expect(Object.is(back, v) || cloneDifference(back, structuredClone(v)) === null, `round trip of ${String(v)}`).toBe(true);
    }
    const codes = [...TYPED.map((C) => elemOf(new C(0))), elemOf(Buffer.alloc(0)), elemOf(new ArrayBuffer(0)), elemOf(new DataView(new ArrayBuffer(0)))];
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) {
      expect(c).toBeGreaterThan(0);
      expect(c).toBeLessThanOrEqual(MAX_ELEM);
    }
  });

  it('does not copy on encode: parts alias exactly the caller bytes', () => {
    const backing = new ArrayBuffer(64);
    const views: ArrayBufferView[] = [
      new Float64Array(backing, 8, 3),
      new Int16Array(backing, 2, 5),
      new Uint8Array(backing, 1, 7),
      Buffer.from(backing, 5, 9),
      new DataView(backing, 3, 11),
    ];
    for (const v of views) {
      const e: Encoded = encodeValue(v);
      expect(e.enc).toBe(Encoding.RAW);
      expect(e.aliased).toBe(true);
      expect(e.parts).toHaveLength(1);
      const p = e.parts[0]!;
      expect(p.buffer).toBe(backing);
      expect(p.byteOffset).toBe(v.byteOffset);
      expect(p.byteLength).toBe(v.byteLength);
      expect(e.length).toBe(v.byteLength);
      // the caller's later writes show through: it is the same memory
      new Uint8Array(backing, v.byteOffset, 1)[0] = 0x42;
      expect(p[0]).toBe(0x42);
    }
    const whole = new ArrayBuffer(16);
    const e = encodeValue(whole);
    expect(e.parts[0]!.buffer).toBe(whole);
    expect(e.length).toBe(16);
    expect(e.aliased).toBe(true);
  });

  it('flatten copies: the flat buffer does not alias the caller', () => {
    const a = new Float64Array([1, 2, 3]);
    const flat = flatten(encodeValue(a));
    a[0] = 99;
    expect(new Float64Array(flat.buffer, flat.byteOffset, 3)[0]).toBe(1);
  });

  it('decodes into memory owned exactly by the value, even from a view into a bigger buffer', () => {
    for (const C of TYPED) {
      const src = new C(5);
      new Uint8Array(src.buffer).forEach((_, i, u) => (u[i] = i * 17 + 3));
      const flat = flatten(encodeValue(src));
      for (const offset of [0, 1, 3, 8, 100]) {
        const payload = embed(flat, offset);
        const got = decodeValue(Encoding.RAW, elemOf(src), payload) as ArrayBufferView;
        expect(Object.getPrototypeOf(got)).toBe(C.prototype);
        expect(got.byteOffset).toBe(0);
        expect(got.buffer.byteLength).toBe(got.byteLength);
        expect(sameValue(got, src)).toBe(true);
        // not a view of the payload: writing the payload does not change the value
        payload.fill(0);
        expect(sameValue(got, src)).toBe(true);
      }
    }
  });

  it('decodes Buffer, DataView and ArrayBuffer owning exactly their bytes', () => {
    const payload = embed(Buffer.from([1, 2, 3, 4, 5]), 3);
    const b = decodeValue(Encoding.RAW, elemOf(Buffer.alloc(0)), payload) as Buffer;
    expect(Buffer.isBuffer(b)).toBe(true);
    expect(b.byteOffset).toBe(0);
    expect(b.buffer.byteLength).toBe(5);
    const dv = decodeValue(Encoding.RAW, elemOf(new DataView(new ArrayBuffer(0))), payload) as DataView;
    expect(dv).toBeInstanceOf(DataView);
    expect(dv.byteOffset).toBe(0);
    expect(dv.buffer.byteLength).toBe(5);
    expect(dv.getUint8(4)).toBe(5);
    const ab = decodeValue(Encoding.RAW, elemOf(new ArrayBuffer(0)), payload) as ArrayBuffer;
    expect(ab.byteLength).toBe(5);
    expect([...new Uint8Array(ab)]).toEqual([1, 2, 3, 4, 5]);
  });

  it('does not copy a payload that already owns its memory exactly (large receives are zero-copy)', () => {
    const owned = Buffer.allocUnsafeSlow(16);
    owned.fill(1);
    const got = decodeValue(Encoding.RAW, elemOf(new Float64Array(0)), owned) as Float64Array;
    expect(got.buffer).toBe(owned.buffer);
    expect(got.length).toBe(2);
  });

  it('decodes misaligned payload views correctly', () => {
    const src = new Float64Array([Math.PI, -0, NaN, 1e308]);
    const flat = flatten(encodeValue(src));
    for (const offset of [1, 2, 3, 5, 7]) {
      const payload = embed(flat, offset);
      expect(payload.byteOffset % 8).not.toBe(0);
      const got = decodeValue(Encoding.RAW, elemOf(src), payload) as Float64Array;
      expect(got).toBeInstanceOf(Float64Array);
      expect(Object.is(got[1], -0)).toBe(true);
      expect(sameValue(got, src)).toBe(true);
    }
    const big = new BigInt64Array([-(2n ** 63n), 5n]);
    const got = decodeValue(Encoding.RAW, elemOf(big), embed(flatten(encodeValue(big)), 3)) as BigInt64Array;
    expect([...got]).toEqual([-(2n ** 63n), 5n]);
  });

  it('decodes a payload that the frame decoder handed out as a view of a network chunk', () => {
    const src = new Int32Array([1, -2, 3]);
    const e = encodeValue(src);
    const h = { type: FrameType.DATA, flags: 0, enc: e.enc, elem: e.elem, ctx: 0, src: 0, seq: 0 };
    // a first frame puts the payload at an odd offset inside the chunk
    const chunk = Buffer.concat([encodeFrame({ ...h, tag: 1 }, Buffer.from([9])), encodeFrame({ ...h, tag: 2 }, flatten(e))]);
    const out: unknown[] = [];
    new FrameDecoder((fh, p) => fh.tag === 2 && out.push(decodeValue(fh.enc, fh.elem, p)), { maxPayload: 1024 }).push(chunk);
    const got = out[0] as Int32Array;
    expect(got.buffer).not.toBe(chunk.buffer);
    expect(got.buffer.byteLength).toBe(12);
    expect([...got]).toEqual([1, -2, 3]);
  });

  it('gives every empty message a value of its own', () => {
    // zero-length frames all arrive as the same shared empty Buffer; the values must not be shared
    const payloads: Buffer[] = [];
    const d = new FrameDecoder((_h, p) => payloads.push(p), { maxPayload: 1024 });
    const h = { type: FrameType.DATA, flags: 0, enc: Encoding.RAW, elem: 0, ctx: 0, src: 0, tag: 0, seq: 0 };
    for (let i = 0; i < 4; i++) d.push(encodeFrame(h));
    for (const probe of [new ArrayBuffer(0), Buffer.alloc(0), new Float64Array(0), new DataView(new ArrayBuffer(0))]) {
      const elem = elemOf(probe);
      const a = decodeValue(Encoding.RAW, elem, payloads[0]!) as ArrayBuffer | ArrayBufferView;
      const b = decodeValue(Encoding.RAW, elem, payloads[1]!) as ArrayBuffer | ArrayBufferView;
      expect(a).not.toBe(b);
      const bufA = a instanceof ArrayBuffer ? a : a.buffer;
      const bufB = b instanceof ArrayBuffer ? b : b.buffer;
      expect(bufA).not.toBe(bufB);
      // a receiver that transfers (detaches) its empty buffer must not break later receives
      structuredClone(bufA, { transfer: [bufA as ArrayBuffer] });
      expect(() => decodeValue(Encoding.RAW, elemOf(new Float64Array(0)), payloads[2]!)).not.toThrow();
    }
  });

  it('round-trips any typed array placed anywhere (property)', () => {
    const arb = fc.oneof(
      fc.uint8Array(),
      fc.int8Array(),
      fc.uint8ClampedArray(),
      fc.int16Array(),
      fc.uint16Array(),
      fc.int32Array(),
      fc.uint32Array(),
      fc.float32Array(),
      fc.float64Array(),
      fc.bigInt64Array(),
      fc.bigUint64Array(),
    );
    fc.assert(
      fc.property(arb, fc.nat(17), (a, offset) => {
        const e = encodeValue(a);
        expect(e.enc).toBe(Encoding.RAW);
        const got = decodeValue(e.enc, e.elem, embed(flatten(e), offset)) as ArrayBufferView;
        expect(got.buffer.byteLength).toBe(a.byteLength);
        expect(sameValue(got, a)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('ERR_SERIALIZE names where the value cannot be cloned', () => {
  const fn = (): number => 1;
  const cases: [string, unknown, string][] = [
    ['a top-level function', fn, 'value is a function'],
    ['a top-level symbol', Symbol('s'), 'value is a symbol'],
    ['a function deep in arrays and objects', { a: [0, 1, { f: fn }] }, 'value.a[2].f is a function'],
    ['a symbol in an object', { ok: 1, s: Symbol('x') }, 'value.s is a symbol'],
    ['a WeakMap', { w: new WeakMap() }, 'value.w is a WeakMap'],
    ['a WeakSet', [new WeakSet()], 'value[0] is a WeakSet'],
    ['a Promise', { list: [1, Promise.resolve(2)] }, 'value.list[1] is a Promise'],
    ['a Map value', new Map<unknown, unknown>([['k', 1], ['j', { run: fn }]]), 'value.get(#1).run is a function'],
    ['a Map key', new Map<unknown, unknown>([[fn, 1]]), 'value.<Map key #0> is a function'],
    ['a Set item', { s: new Set([1, fn]) }, 'value.s.<Set item #1> is a function'],
    ['a key that is not an identifier', { 'a-b': { 'c d': fn } }, 'value["a-b"]["c d"] is a function'],
    ['a function in a cyclic object', (() => {
      const o: Record<string, unknown> = {};
      o.self = o;
      o.inner = { back: o, f: fn };
      return o;
    })(), 'value.inner.f is a function'],
    ['a class instance holding a function', { job: new (class Job { run = fn; })() }, 'value.job.run is a function'],
  ];
  for (const [name, value, path] of cases) {
    it(name, () => {
      const e = throwsCode(() => encodeValue(value), 'ERR_SERIALIZE');
      expect(e.message).toContain(path);
      expect(e.cause).toBeDefined();
      expect(describeUnclonable(value)).toContain(path);
    });
  }
});

describe('ERR_PROTOCOL on bad payloads', () => {
  it('garbage V8 bytes', () => {
    const good = serialize({ a: 1, b: 'two' });
    const bad = [Buffer.from([1, 2, 3]), Buffer.alloc(0), Buffer.from([0xff]), Buffer.from([0xff, 0x0f, 0x99, 0x99]), good.subarray(0, good.length - 2)];
    for (const b of bad) {
      const e = throwsCode(() => decodeValue(Encoding.V8, 0, b), 'ERR_PROTOCOL');
      expect(e.cause).toBeDefined();
    }
  });

  it('random bytes never escape as anything but ERR_PROTOCOL (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (junk) => {
        try {
          decodeValue(Encoding.V8, 0, Buffer.from(junk));
        } catch (e) {
          expect(e).toBeInstanceOf(TsmpiError);
          expect((e as TsmpiError).code).toBe('ERR_PROTOCOL');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a RAW length that is not a whole number of elements', () => {
    const bad: [ArrayBufferView, number][] = [
      [new Int16Array(0), 3],
      [new Uint16Array(0), 1],
      [new Int32Array(0), 6],
      [new Uint32Array(0), 5],
      [new Float32Array(0), 7],
      [new Float64Array(0), 12],
      [new BigInt64Array(0), 4],
      [new BigUint64Array(0), 9],
    ];
    for (const [probe, n] of bad) throwsCode(() => decodeValue(Encoding.RAW, elemOf(probe), Buffer.alloc(n)), 'ERR_PROTOCOL');
  });

  it('an unknown RAW element type', () => {
    for (const elem of [0, MAX_ELEM + 1, 255]) throwsCode(() => decodeValue(Encoding.RAW, elem, Buffer.alloc(8)), 'ERR_PROTOCOL');
  });

  it('an unknown encoding', () => {
    for (const enc of [3, 7, 255, -1]) throwsCode(() => decodeValue(enc, 0, Buffer.alloc(4)), 'ERR_PROTOCOL');
  });

  it('JSON: round trip, views, and bad JSON', () => {
    const v = { t: 'hello', n: [1, 2], s: 'ü' };
    expect(decodeValue(Encoding.JSON, 0, encodeJson(v))).toEqual(v);
    expect(decodeJson(embed(encodeJson(v), 5))).toEqual(v);
    for (const b of ['{', '', 'undefined', '\u0000']) throwsCode(() => decodeJson(Buffer.from(b)), 'ERR_PROTOCOL');
  });
});
