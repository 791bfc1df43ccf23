/**
 * What the root and its pool workers say to each other, and how it travels: one
 * tsmpi wire frame per message (runtime/wire/frame.ts), its payload a value
 * encoded by the runtime's codec (runtime/wire/codec.ts), over a pipe.
 */
import type { Socket } from 'node:net';
import { totalmem } from 'node:os';
import { FrameDecoder, FrameType, HEADER_SIZE, encodeHeader } from '../../runtime/wire/frame.js';
import { decodeValue, encodeValue } from '../../runtime/wire/codec.js';
import type { Chunk, ChunkResult, Kind } from './kernel.js';

/** How an error thrown by `fn` travels back. */
export interface FailureReport {
  /** the item (row, column, value or group) position in the whole call; -1: none */
  at: number;
  /** applyMap: the column of the value */
  column?: number;
  name: string;
  message: string;
  stack: string;
  /** the call itself worked, but its result cannot be sent */
  inResult?: boolean;
  /** the function failed to compile in the worker */
  compile?: boolean;
}

export type ToWorker =
  | { t: 'call'; call: number; kind: Kind; source: string; ctx: unknown; hasCtx: boolean; progress: boolean }
  | { t: 'chunk'; call: number; chunk: number; data: Chunk };

export type FromWorker =
  | { t: 'ready'; pid: number }
  | { t: 'result'; call: number; chunk: number; out: ChunkResult; /** ms spent on the chunk: unpack, run, pack */ ms: number }
  | { t: 'fail'; call: number; chunk: number; report: FailureReport }
  /** items of `chunk` done so far */
  | { t: 'progress'; call: number; chunk: number; done: number };

const MAX_PAYLOAD = Math.max(totalmem(), 1 << 30);

/** Write one message; throws ERR_SERIALIZE (before writing anything) when it cannot be encoded. */
export function writeMessage(sock: Socket, msg: ToWorker | FromWorker): void {
  const e = encodeValue(msg);
  const header = encodeHeader({ type: FrameType.DATA, flags: 0, enc: e.enc, elem: e.elem, ctx: 0, src: 0, tag: 0, seq: 0, length: e.length }, Buffer.allocUnsafe(HEADER_SIZE));
  sock.cork();
  sock.write(header);
  for (const p of e.parts) sock.write(p);
  sock.uncork();
}

/** Read messages from `sock`, one call per whole frame. */
export function readMessages<T>(sock: Socket, onMessage: (m: T) => void, onError: (e: Error) => void): void {
  const decoder = new FrameDecoder((h, payload) => onMessage(decodeValue(h.enc, h.elem, payload) as T), { maxPayload: MAX_PAYLOAD });
  sock.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (e) {
      onError(e as Error);
    }
  });
}
