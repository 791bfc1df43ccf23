// Pure tests of the frame layer: whole frames, single bytes, random splits,
// and a table of malformed input (STYLE.md lessons 3 and 8).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FrameDecoder,
  FrameFlag,
  FrameType,
  HEADER_SIZE,
  MAGIC,
  WIRE_VERSION,
  decodeHeader,
  encodeFrame,
  encodeHeader,
  type FrameHeader,
} from '../runtime/wire/frame.js';
import { TsmpiError } from '../runtime/errors.js';
import { throwsCode } from './expect-code.js';

type Head = Omit<FrameHeader, 'length'>;
interface Got {
  header: FrameHeader;
  payload: Buffer;
}

const MAX = 1 << 20;

function head(over: Partial<Head> = {}): Head {
  return { type: FrameType.DATA, flags: 0, enc: 1, elem: 1, ctx: 3, src: 1, tag: 7, seq: 0, ...over };
}

/** A decoder that records frames, copying each payload (views may alias chunks). */
function collector(options: { maxPayload?: number; ownBufferThreshold?: number } = {}) {
  const got: Got[] = [];
  const raw: Buffer[] = [];
  const d = new FrameDecoder(
    (header, payload) => {
      raw.push(payload);
      got.push({ header, payload: Buffer.from(payload) });
    },
    { maxPayload: options.maxPayload ?? MAX, ...(options.ownBufferThreshold !== undefined ? { ownBufferThreshold: options.ownBufferThreshold } : {}) },
  );
  return { d, got, raw };
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}


function expectFrames(got: Got[], want: { h: Head; p: Buffer }[]): void {
  expect(got).toHaveLength(want.length);
  want.forEach((w, i) => {
    expect(got[i]!.header).toEqual({ ...w.h, length: w.p.length });
    expect(got[i]!.payload.equals(w.p)).toBe(true);
  });
}

describe('encodeHeader / decodeHeader', () => {
  it('writes the documented layout', () => {
    const b = encodeHeader({ ...head({ flags: FrameFlag.SYNC, enc: 2, elem: 9, ctx: 0x01020304, src: 5, tag: 6, seq: 8 }), length: 0x0102030405 });
    expect(b.length).toBe(HEADER_SIZE);
    expect(b[0]).toBe(MAGIC);
    expect(b[1]).toBe(WIRE_VERSION);
    expect(b[2]).toBe(FrameType.DATA);
    expect(b[3]).toBe(FrameFlag.SYNC);
    expect(b[4]).toBe(2);
    expect(b[5]).toBe(9);
    expect(b[6]).toBe(0);
    expect(b[7]).toBe(0);
    expect(b.readUInt32LE(8)).toBe(0x01020304);
    expect(b.readInt32LE(12)).toBe(5);
    expect(b.readInt32LE(16)).toBe(6);
    expect(b.readUInt32LE(20)).toBe(8);
    expect(b.readUInt32LE(24)).toBe(0x02030405);
    expect(b.readUInt32LE(28)).toBe(0x01);
  });

  const extremes: [string, FrameHeader][] = [
    ['all zero', { type: 1, flags: 0, enc: 0, elem: 0, ctx: 0, src: 0, tag: 0, seq: 0, length: 0 }],
    ['ctx 2^32-1, seq 2^32-1', { type: 4, flags: 255, enc: 255, elem: 255, ctx: 2 ** 32 - 1, src: 0, tag: 0, seq: 2 ** 32 - 1, length: 1 }],
    ['negative src and tag', { type: 2, flags: 3, enc: 1, elem: 14, ctx: 1, src: -1, tag: -1, seq: 1, length: 2 }],
    ['i32 extremes', { type: 3, flags: 0, enc: 0, elem: 0, ctx: 7, src: -(2 ** 31), tag: 2 ** 31 - 1, seq: 0, length: 3 }],
    ['length 2^40', { type: 2, flags: 0, enc: 1, elem: 1, ctx: 0, src: 0, tag: 0, seq: 0, length: 2 ** 40 }],
    ['length 2^32 exactly', { type: 2, flags: 0, enc: 1, elem: 1, ctx: 0, src: 0, tag: 0, seq: 0, length: 2 ** 32 }],
    ['length 2^32-1', { type: 2, flags: 0, enc: 1, elem: 1, ctx: 0, src: 0, tag: 0, seq: 0, length: 2 ** 32 - 1 }],
    ['length 2^53-1', { type: 2, flags: 0, enc: 1, elem: 1, ctx: 0, src: 0, tag: 0, seq: 0, length: Number.MAX_SAFE_INTEGER }],
  ];
  for (const [name, h] of extremes) {
    it(`round-trips ${name}`, () => {
      const b = encodeHeader(h);
      expect(decodeHeader(b, 0, Number.MAX_SAFE_INTEGER)).toEqual(h);
    });
  }

  it('round-trips any valid header (property)', () => {
    const header = fc.record({
      type: fc.integer({ min: 1, max: 4 }),
      flags: fc.integer({ min: 0, max: 255 }),
      enc: fc.integer({ min: 0, max: 255 }),
      elem: fc.integer({ min: 0, max: 255 }),
      ctx: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      src: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      tag: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      seq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      length: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    });
    fc.assert(
      fc.property(header, fc.nat(40), (h, offset) => {
        const target = Buffer.alloc(offset + HEADER_SIZE + 5, 0xee);
        encodeHeader(h, target, offset);
        expect(decodeHeader(target, offset, Number.MAX_SAFE_INTEGER)).toEqual(h);
        // nothing outside the header was touched
        expect(target.subarray(0, offset).every((x) => x === 0xee)).toBe(true);
        expect(target.subarray(offset + HEADER_SIZE).every((x) => x === 0xee)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes from a plain Uint8Array view at an offset', () => {
    const h: FrameHeader = { ...head(), length: 12 };
    const backing = new Uint8Array(100);
    backing.set(encodeHeader(h), 37);
    const view = new Uint8Array(backing.buffer, 5, 90);
    expect(decodeHeader(view, 32, MAX)).toEqual(h);
  });

  it('encodeFrame puts the payload right after the header', () => {
    const p = bytes(10);
    const f = encodeFrame(head(), p);
    expect(f.length).toBe(HEADER_SIZE + 10);
    expect(decodeHeader(f, 0, MAX).length).toBe(10);
    expect(f.subarray(HEADER_SIZE).equals(p)).toBe(true);
    expect(encodeFrame(head()).length).toBe(HEADER_SIZE);
  });
});

describe('FrameDecoder', () => {
  const frames = [
    { h: head({ tag: 1 }), p: bytes(5, 1) },
    { h: head({ type: FrameType.ACK, seq: 99, src: -1 }), p: Buffer.alloc(0) },
    { h: head({ type: FrameType.CONTROL, enc: 2, elem: 0, ctx: 2 ** 32 - 1 }), p: bytes(200, 2) },
    { h: head({ tag: 2, flags: FrameFlag.SYNC | FrameFlag.ERROR }), p: bytes(1, 3) },
    { h: head({ type: FrameType.HELLO }), p: Buffer.alloc(0) },
  ];
  const stream = Buffer.concat(frames.map((f) => encodeFrame(f.h, f.p)));

  it('decodes whole frames, one push each', () => {
    const { d, got } = collector();
    for (const f of frames) {
      d.push(encodeFrame(f.h, f.p));
      expect(d.idle).toBe(true);
    }
    expectFrames(got, frames);
  });

  it('decodes several frames in one chunk', () => {
    const { d, got } = collector();
    d.push(stream);
    expectFrames(got, frames);
    expect(d.idle).toBe(true);
  });

  it('decodes the same stream fed one byte at a time', () => {
    const { d, got } = collector();
    for (let i = 0; i < stream.length; i++) {
      d.push(stream.subarray(i, i + 1));
    }
    expectFrames(got, frames);
    expect(d.idle).toBe(true);
  });

  it('emits a frame exactly when its last byte arrives, and is idle only between frames', () => {
    const { d, got } = collector();
    const f = encodeFrame(head(), bytes(10));
    for (let i = 0; i < f.length - 1; i++) {
      d.push(f.subarray(i, i + 1));
      expect(got).toHaveLength(0);
      expect(d.idle).toBe(false);
    }
    d.push(f.subarray(f.length - 1));
    expect(got).toHaveLength(1);
    expect(d.idle).toBe(true);
  });

  it('handles empty chunks', () => {
    const { d, got } = collector();
    d.push(Buffer.alloc(0));
    d.push(stream.subarray(0, 10));
    d.push(Buffer.alloc(0));
    d.push(stream.subarray(10));
    d.push(Buffer.alloc(0));
    expectFrames(got, frames);
  });

  it('decodes any frames split at any points in order (property)', () => {
    const frameArb = fc.record({
      type: fc.integer({ min: 1, max: 4 }),
      flags: fc.integer({ min: 0, max: 3 }),
      enc: fc.integer({ min: 0, max: 2 }),
      elem: fc.integer({ min: 0, max: 14 }),
      ctx: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      src: fc.integer({ min: -2, max: 1000 }),
      tag: fc.integer({ min: -1, max: 2 ** 31 - 1 }),
      seq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      payload: fc.oneof(fc.uint8Array({ maxLength: 0 }), fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 100, maxLength: 600 })),
    });
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.constantFrom(16, 128, 1 << 16),
        (fs, cutSeeds, threshold) => {
          const want = fs.map(({ payload, ...h }) => ({ h, p: Buffer.from(payload) }));
          const all = Buffer.concat(want.map((w) => encodeFrame(w.h, w.p)));
          const cuts = [...new Set(cutSeeds.map((c) => (all.length ? c % (all.length + 1) : 0)))].sort((a, b) => a - b);
          const { d, got } = collector({ ownBufferThreshold: threshold });
          let prev = 0;
          for (const c of [...cuts, all.length]) {
            // copy each chunk so the decoder cannot rely on neighbouring bytes
            d.push(Buffer.from(all.subarray(prev, c)));
            prev = c;
          }
          expectFrames(got, want);
          expect(d.idle).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('assembles a payload that crosses chunk boundaries into a buffer of its own', () => {
    const p = bytes(100);
    const f = encodeFrame(head(), p);
    const { d, got, raw } = collector();
    d.push(f.subarray(0, 40)); // header + 8 payload bytes
    d.push(f.subarray(40, 90));
    expect(got).toHaveLength(0);
    d.push(f.subarray(90));
    expectFrames(got, [{ h: head(), p }]);
    expect(raw[0]!.byteOffset).toBe(0);
    expect(raw[0]!.buffer.byteLength).toBe(100);
  });

  it('hands a small payload inside one chunk out as a view of it', () => {
    const p = bytes(16);
    const chunk = Buffer.concat([encodeFrame(head(), p), encodeFrame(head(), p)]);
    const { d, raw } = collector();
    d.push(chunk);
    expect(raw).toHaveLength(2);
    expect(raw[1]!.buffer).toBe(chunk.buffer);
    expect(raw[1]!.equals(p)).toBe(true);
  });

  it('gives a large payload its own buffer (byteOffset 0) even when it sits in one chunk', () => {
    const p = bytes(70_000);
    const chunk = Buffer.concat([Buffer.from(encodeFrame(head(), bytes(3))), encodeFrame(head(), p)]);
    const { d, got, raw } = collector();
    d.push(chunk);
    expectFrames(got, [{ h: head(), p: bytes(3) }, { h: head(), p }]);
    const big = raw[1]!;
    expect(big.buffer).not.toBe(chunk.buffer);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(p.length);
    // so a Float64Array can view it without a copy
    expect(new Float64Array(big.buffer, 0, p.length / 8).length).toBe(8750);
  });

  it('honours ownBufferThreshold', () => {
    const { d, raw } = collector({ ownBufferThreshold: 8 });
    const chunk = Buffer.concat([encodeFrame(head(), bytes(7)), encodeFrame(head(), bytes(8))]);
    d.push(chunk);
    expect(raw[0]!.buffer).toBe(chunk.buffer);
    expect(raw[1]!.buffer).not.toBe(chunk.buffer);
    expect(raw[1]!.byteOffset).toBe(0);
  });

  it('delivers zero-length payloads, alone and between others', () => {
    const want = [
      { h: head({ tag: 1 }), p: Buffer.alloc(0) },
      { h: head({ tag: 2 }), p: Buffer.alloc(0) },
      { h: head({ tag: 3 }), p: bytes(3) },
      { h: head({ tag: 4 }), p: Buffer.alloc(0) },
    ];
    const { d, got, raw } = collector();
    d.push(Buffer.concat(want.map((w) => encodeFrame(w.h, w.p))));
    expectFrames(got, want);
    expect(raw[0]!.length).toBe(0);
    expect(d.idle).toBe(true);
  });

  it('accepts a payload of exactly maxPayload bytes', () => {
    const { d, got } = collector({ maxPayload: 10 });
    d.push(encodeFrame(head(), bytes(10)));
    expect(got).toHaveLength(1);
  });

  describe('malformed input gives ERR_PROTOCOL', () => {
    const good = (): Buffer => encodeFrame(head(), bytes(4));
    const table: [string, (b: Buffer) => void][] = [
      ['bad magic', (b) => (b[0] = 0x55)],
      ['zero magic', (b) => (b[0] = 0)],
      ['wrong version (0)', (b) => (b[1] = 0)],
      ['wrong version (next)', (b) => (b[1] = WIRE_VERSION + 1)],
      ['unknown type 0', (b) => (b[2] = 0)],
      ['unknown type 5', (b) => (b[2] = 5)],
      ['unknown type 255', (b) => (b[2] = 255)],
      ['reserved byte 6 non-zero', (b) => (b[6] = 1)],
      ['reserved byte 7 non-zero', (b) => (b[7] = 0x80)],
      ['length over maxPayload', (b) => b.writeUInt32LE(1025, 24)],
      ['length over maxPayload (high word)', (b) => b.writeUInt32LE(1, 28)],
      ['length 2^53', (b) => (b.writeUInt32LE(0, 24), b.writeUInt32LE(0x200000, 28))],
      ['length 2^64-1', (b) => (b.writeUInt32LE(0xffffffff, 24), b.writeUInt32LE(0xffffffff, 28))],
    ];
    for (const [name, spoil] of table) {
      it(`${name}: decodeHeader`, () => {
        const b = good();
        spoil(b);
        throwsCode(() => decodeHeader(b, 0, 1024), 'ERR_PROTOCOL');
      });
      it(`${name}: whole frame, then byte by byte`, () => {
        const b = good();
        spoil(b);
        const whole = collector({ maxPayload: 1024 });
        throwsCode(() => whole.d.push(b), 'ERR_PROTOCOL');
        expect(whole.got).toHaveLength(0);

        // one byte at a time: the error surfaces on the 32nd header byte, not before
        const single = collector({ maxPayload: 1024 });
        for (let i = 0; i < HEADER_SIZE - 1; i++) single.d.push(b.subarray(i, i + 1));
        throwsCode(() => single.d.push(b.subarray(HEADER_SIZE - 1, HEADER_SIZE)), 'ERR_PROTOCOL');
      });
      it(`${name}: after good frames in the same chunk`, () => {
        const b = good();
        spoil(b);
        const { d, got } = collector({ maxPayload: 1024 });
        throwsCode(() => d.push(Buffer.concat([good(), good(), b])), 'ERR_PROTOCOL');
        expect(got).toHaveLength(2);
      });
    }

    it('length ≥ 2^53 is refused even with an unlimited maxPayload', () => {
      const b = good();
      b.writeUInt32LE(0x200000, 28);
      throwsCode(() => decodeHeader(b, 0, Infinity), 'ERR_PROTOCOL');
    });

    it('every later push keeps throwing the same error, even with good input', () => {
      const b = good();
      b[0] = 0;
      const { d, got } = collector();
      const first = throwsCode(() => d.push(b), 'ERR_PROTOCOL');
      for (const again of [good(), Buffer.alloc(0), good().subarray(0, 1)]) {
        const e = throwsCode(() => d.push(again), 'ERR_PROTOCOL');
        expect(e).toBe(first);
      }
      expect(got).toHaveLength(0);
    });

    it('garbage of any kind never yields a frame that was not sent (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: HEADER_SIZE, maxLength: 200 }), (junk) => {
          const { d, got } = collector({ maxPayload: 64 });
          try {
            d.push(Buffer.from(junk));
          } catch (e) {
            expect(e).toBeInstanceOf(TsmpiError);
            expect((e as TsmpiError).code).toBe('ERR_PROTOCOL');
            return;
          }
          // accepted: the first header must be a valid one
          expect(junk[0]).toBe(MAGIC);
          expect(junk[1]).toBe(WIRE_VERSION);
          for (const g of got) expect(g.header.length).toBeLessThanOrEqual(64);
        }),
        { numRuns: 300 },
      );
    });
  });
});

describe('FrameDecoder options for shared memory and receive buffers', () => {
  it('volatileInput: no payload aliases a chunk, so the chunk may be overwritten after push', () => {
    const frames = [encodeFrame(head({ tag: 1 }), Buffer.from('small one')), encodeFrame(head({ tag: 2 }), Buffer.alloc(100_000, 9))];
    const chunk = Buffer.concat(frames);
    const out: Buffer[] = [];
    const d = new FrameDecoder((_h, p) => out.push(p), { maxPayload: MAX, volatileInput: true });
    d.push(chunk);
    chunk.fill(0); // the ring reuses its memory
    expect(out.map((p) => p.length)).toEqual([9, 100_000]);
    expect(out[0]!.toString()).toBe('small one');
    expect(out[1]!.every((b) => b === 9)).toBe(true);
  });

  it('payloadFor: an assembled payload lands in the buffer it gives, split or whole; null means a fresh one', () => {
    const target = new Uint8Array(200_000);
    const payload = Buffer.alloc(150_000);
    for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
    const asked: number[] = [];
    const out: Buffer[] = [];
    const d = new FrameDecoder((_h, p) => out.push(p), {
      maxPayload: MAX,
      payloadFor: (h) => {
        asked.push(h.tag);
        return h.tag === 5 ? Buffer.from(target.buffer, 0, h.length) : null;
      },
    });
    const stream = Buffer.concat([encodeFrame(head({ tag: 5 }), payload), encodeFrame(head({ tag: 6 }), payload)]);
    for (let off = 0; off < stream.length; off += 7_001) d.push(stream.subarray(off, off + 7_001));
    expect(asked).toEqual([5, 6]);
    expect(out[0]!.buffer).toBe(target.buffer);
    expect(Buffer.compare(Buffer.from(target.subarray(0, payload.length)), payload)).toBe(0);
    expect(out[1]!.buffer).not.toBe(target.buffer);
    expect(Buffer.compare(out[1]!, payload)).toBe(0);
  });
});
