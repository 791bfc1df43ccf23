/**
 * The tsmpi frame: a fixed 32-byte little-endian header and a payload.
 * Pure: bytes in, frames out. No sockets here.
 *
 *  off size field
 *   0   1   magic 0x54 ('T')
 *   1   1   wire version
 *   2   1   frame type (FrameType)
 *   3   1   flags (FrameFlag bits)
 *   4   1   payload encoding (see codec.ts)
 *   5   1   element type of a raw typed array payload
 *   6   2   reserved, zero
 *   8   4   context id (communicator traffic class), u32
 *  12   4   source rank (world), i32
 *  16   4   tag, i32
 *  20   4   sequence number (ssend acknowledgement id), u32
 *  24   8   payload length in bytes, u64 (must be < 2^53)
 */
import { TsmpiError } from '../errors.js';

export const MAGIC = 0x54;
export const WIRE_VERSION = 1;
export const HEADER_SIZE = 32;

export const FrameType = {
  /** first frame on a rank-to-rank link: who is speaking (JSON payload) */
  HELLO: 1,
  /** a point-to-point message */
  DATA: 2,
  /** a synchronous send was matched; `seq` names it */
  ACK: 3,
  /** a control message between launcher, daemon and ranks (JSON payload) */
  CONTROL: 4,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];
const MAX_TYPE = 4;

export const FrameFlag = {
  /** the sender waits for an ACK once the message is matched (ssend) */
  SYNC: 1,
  /** the payload is an error `{ code, message }` instead of user data */
  ERROR: 2,
} as const;

export interface FrameHeader {
  type: number;
  flags: number;
  enc: number;
  elem: number;
  ctx: number;
  src: number;
  tag: number;
  seq: number;
  length: number;
}

/** Write a header into `target` at `offset` (default: a fresh buffer). */
export function encodeHeader(h: FrameHeader, target: Buffer = Buffer.allocUnsafe(HEADER_SIZE), offset = 0): Buffer {
  target[offset] = MAGIC;
  target[offset + 1] = WIRE_VERSION;
  target[offset + 2] = h.type;
  target[offset + 3] = h.flags;
  target[offset + 4] = h.enc;
  target[offset + 5] = h.elem;
  target[offset + 6] = 0;
  target[offset + 7] = 0;
  target.writeUInt32LE(h.ctx >>> 0, offset + 8);
  target.writeInt32LE(h.src | 0, offset + 12);
  target.writeInt32LE(h.tag | 0, offset + 16);
  target.writeUInt32LE(h.seq >>> 0, offset + 20);
  const lo = h.length % 0x100000000;
  target.writeUInt32LE(lo, offset + 24);
  target.writeUInt32LE((h.length - lo) / 0x100000000, offset + 28);
  return target;
}

/** A whole frame as one buffer: header followed by the payload (tests, control plane). */
export function encodeFrame(h: Omit<FrameHeader, 'length'>, payload: Uint8Array = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.byteLength);
  encodeHeader({ ...h, length: payload.byteLength }, out, 0);
  out.set(payload, HEADER_SIZE);
  return out;
}

const EMPTY = new Uint8Array(0);

/** Parse and validate a header; throws ERR_PROTOCOL on anything malformed. */
export function decodeHeader(buf: Uint8Array, offset: number, maxPayload: number): FrameHeader {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b[offset] !== MAGIC) throw protocol(`bad magic byte 0x${b[offset]!.toString(16)}`);
  if (b[offset + 1] !== WIRE_VERSION) {
    throw protocol(`wire version ${b[offset + 1]} is not supported (this side speaks ${WIRE_VERSION})`);
  }
  const type = b[offset + 2]!;
  if (type < 1 || type > MAX_TYPE) throw protocol(`unknown frame type ${type}`);
  if (b[offset + 6] !== 0 || b[offset + 7] !== 0) throw protocol('reserved header bytes are not zero');
  const lo = b.readUInt32LE(offset + 24);
  const hi = b.readUInt32LE(offset + 28);
  if (hi >= 0x200000) throw protocol('payload length does not fit in 53 bits');
  const length = hi * 0x100000000 + lo;
  if (length > maxPayload) throw protocol(`payload of ${length} bytes exceeds the limit of ${maxPayload}`);
  return {
    type,
    flags: b[offset + 3]!,
    enc: b[offset + 4]!,
    elem: b[offset + 5]!,
    ctx: b.readUInt32LE(offset + 8),
    src: b.readInt32LE(offset + 12),
    tag: b.readInt32LE(offset + 16),
    seq: b.readUInt32LE(offset + 20),
    length,
  };
}

function protocol(message: string): TsmpiError {
  return new TsmpiError('ERR_PROTOCOL', `malformed frame: ${message}`);
}

export interface DecoderOptions {
  /** Largest payload accepted, in bytes; a larger announced length is ERR_PROTOCOL. */
  maxPayload: number;
  /** Payloads at least this large always get their own allocation (aligned, offset 0). */
  ownBufferThreshold?: number;
  /** Chunks are valid only during `push` (views of shared memory): small payloads are copied too. */
  volatileInput?: boolean;
  /**
   * Where a payload that is assembled (not a view) should land: a buffer of exactly
   * `header.length` bytes (a caller's receive buffer), or null for a fresh one.
   */
  payloadFor?: (header: FrameHeader) => Buffer | null;
  /**
   * Asked of a frame whose whole header sits in the chunk: true leaves the
   * frame unread (`push` returns the bytes taken before it), to be offered again
   * later. A shared-memory link uses it to give a receive one turn to be posted
   * before a large message's bytes need a buffer.
   */
  hold?: (header: FrameHeader) => boolean;
}

/**
 * Incremental frame parser. Feed it chunks in any split; it calls `onFrame` once
 * per complete frame, in order. A payload that sits inside one chunk and is small
 * is handed out as a view of that chunk; anything else is assembled into a buffer
 * of its own (offset 0, so typed arrays can view it without a copy).
 * After a protocol error every later `push` throws the same error.
 */
export class FrameDecoder {
  /** Largest payload accepted; may change between frames (a daemon raises it after authentication). */
  maxPayload: number;
  private readonly ownThreshold: number;
  private readonly volatileInput: boolean;
  private readonly payloadFor: ((header: FrameHeader) => Buffer | null) | null;
  private readonly hold: ((header: FrameHeader) => boolean) | null;
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerFill = 0;
  private current: FrameHeader | null = null;
  private payload: Buffer | null = null;
  private payloadFill = 0;
  private failure: TsmpiError | null = null;

  constructor(
    private readonly onFrame: (header: FrameHeader, payload: Buffer) => void,
    options: DecoderOptions,
  ) {
    this.maxPayload = options.maxPayload;
    this.ownThreshold = options.ownBufferThreshold ?? 64 * 1024;
    this.volatileInput = options.volatileInput ?? false;
    this.payloadFor = options.payloadFor ?? null;
    this.hold = options.hold ?? null;
  }

  /** True when no partial frame is buffered (a clean place for the stream to end). */
  get idle(): boolean {
    return this.headerFill === 0 && this.current === null;
  }

  /** Feed bytes; returns how many were taken (all of them, unless `hold` kept a frame back). */
  push(chunk: Buffer): number {
    if (this.failure) throw this.failure;
    try {
      return this.consume(chunk);
    } catch (e) {
      this.failure = e instanceof TsmpiError ? e : new TsmpiError('ERR_PROTOCOL', String(e), { cause: e });
      throw this.failure;
    }
  }

  private consume(chunk: Buffer): number {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.current === null) {
        if (this.headerFill === 0 && end - pos >= HEADER_SIZE) {
          const h = decodeHeader(chunk, pos, this.maxPayload);
          if (this.hold?.(h)) return pos;
          this.current = h;
          pos += HEADER_SIZE;
        } else {
          const n = Math.min(HEADER_SIZE - this.headerFill, end - pos);
          chunk.copy(this.header, this.headerFill, pos, pos + n);
          this.headerFill += n;
          pos += n;
          if (this.headerFill < HEADER_SIZE) return pos;
          this.headerFill = 0;
          this.current = decodeHeader(this.header, 0, this.maxPayload);
        }
        const len = this.current.length;
        if (len === 0) {
          this.emit(EMPTY_BUFFER);
          continue;
        }
        if (this.payload === null && len < this.ownThreshold && end - pos >= len) {
          const view = chunk.subarray(pos, pos + len);
          pos += len;
          this.emit(this.volatileInput ? copyOut(view) : view);
          continue;
        }
        this.payload = this.payloadFor?.(this.current) ?? allocPayload(len);
        this.payloadFill = 0;
      }
      const payload = this.payload!;
      const n = Math.min(payload.length - this.payloadFill, end - pos);
      chunk.copy(payload, this.payloadFill, pos, pos + n);
      this.payloadFill += n;
      pos += n;
      if (this.payloadFill === payload.length) {
        this.payload = null;
        this.emit(payload);
      }
    }
    return end;
  }

  private emit(payload: Buffer): void {
    const h = this.current!;
    this.current = null;
    this.onFrame(h, payload);
  }
}

const EMPTY_BUFFER = Buffer.alloc(0);

function copyOut(view: Buffer): Buffer {
  const b = Buffer.allocUnsafe(view.length);
  b.set(view);
  return b;
}

function allocPayload(len: number): Buffer {
  try {
    return Buffer.allocUnsafeSlow(len);
  } catch (e) {
    throw new TsmpiError('ERR_PROTOCOL', `cannot allocate ${len} bytes for an incoming message`, { cause: e });
  }
}
