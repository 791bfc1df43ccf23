/**
 * The buffer tier (mpi4py's Recv/Bcast/Allreduce on buffers): data lands in a
 * typed array the caller owns. Checks and copies; the Comm methods are thin.
 */
import { TsmpiError } from './errors.js';
import type { Message } from './engine.js';
import { Encoding } from './wire/codec.js';
import { FrameFlag } from './wire/frame.js';

/** What a caller may pass: any typed array, Buffer or DataView. */
export type BufferLike = ArrayBufferView;

/** The bytes of `buf`, or ERR_ARG naming the call when it is not a buffer. */
export function bytesOf(call: string, name: string, buf: unknown): Uint8Array {
  if (!ArrayBuffer.isView(buf)) {
    throw new TsmpiError('ERR_ARG', `${call}: ${name} must be a typed array, Buffer or DataView, got ${buf === null ? 'null' : typeof buf}`);
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Why a message cannot land in `into` (it then stays queued for a later
 * receive), or null. Only raw bytes (typed arrays, Buffers, ArrayBuffers) go
 * into a buffer; an error token is taken and thrown by the caller.
 */
export function refusal(call: string, into: Uint8Array, m: Message, from: number): TsmpiError | null {
  if (m.flags & FrameFlag.ERROR) return null;
  if (m.enc !== Encoding.RAW) {
    return new TsmpiError('ERR_ARG', `${call}: the message from rank ${from} (tag ${m.tag}) is not a typed array or buffer; receive it with recv()`);
  }
  if (m.payload.length > into.byteLength) {
    return new TsmpiError('ERR_ARG', `${call}: the message from rank ${from} (tag ${m.tag}) has ${m.payload.length} bytes, more than the ${into.byteLength} of the buffer; it stays queued`);
  }
  return null;
}

/** Copy a message's bytes into the caller's buffer (unless they arrived there already); returns the count. */
export function land(into: Uint8Array, payload: Uint8Array): number {
  if (payload.buffer !== into.buffer || payload.byteOffset !== into.byteOffset) into.set(payload, 0);
  return payload.byteLength;
}
