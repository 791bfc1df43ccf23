/**
 * A framed connection between launcher and agent (a TLS socket to tsmpid or
 * back from a Slurm node, or an ssh client's stdin/stdout): CONTROL frames carry typed
 * JSON messages, DATA frames carry bytes (staged file chunks one way, rank
 * output the other). The parser is the pure wire decoder; this only glues it to
 * a socket and stops at the first protocol error.
 */
import type { Duplex } from 'node:stream';
import { TsmpiError } from '../../runtime/errors.js';
import { decodeJson, encodeJson, Encoding } from '../../runtime/wire/codec.js';
import { encodeHeader, FrameDecoder, FrameType, type FrameHeader } from '../../runtime/wire/frame.js';

export interface FramedHandlers {
  control(value: unknown): void;
  data(h: FrameHeader, payload: Buffer): void;
  /** once; `err` is set when the connection failed or broke the protocol */
  close(err?: Error): void;
}

export class FramedConn {
  private closed = false;
  private error: Error | undefined;
  /** most control payload accepted (tightened before authentication) */
  maxControl: number;
  private readonly decoder: FrameDecoder;

  constructor(
    readonly socket: Duplex,
    maxPayload: number,
    maxControl: number,
    private readonly h: FramedHandlers,
  ) {
    this.maxControl = maxControl;
    const decoder = (this.decoder = new FrameDecoder(
      (hdr, payload) => {
        if (hdr.type === FrameType.CONTROL) {
          if (payload.length > this.maxControl) throw new TsmpiError('ERR_PROTOCOL', `a control message of ${payload.length} bytes exceeds ${this.maxControl}`);
          this.h.control(decodeJson(payload));
        } else if (hdr.type === FrameType.DATA) this.h.data(hdr, payload);
        else throw new TsmpiError('ERR_PROTOCOL', `frame type ${hdr.type} is not used between launcher and daemon`);
      },
      { maxPayload },
    ));
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      try {
        decoder.push(chunk);
      } catch (e) {
        this.fail(e as Error);
      }
    });
    socket.on('error', (e) => {
      this.error ??= e;
    });
    socket.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.h.close(this.error);
    });
  }

  /** Set the limits for what follows: any frame, and control messages. */
  limit(maxPayload: number, maxControl: number): void {
    this.decoder.maxPayload = maxPayload;
    this.maxControl = maxControl;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  sendControl(msg: object, done?: (err?: Error | null) => void): boolean {
    if (this.closed || this.socket.destroyed) return false;
    const payload = encodeJson(msg);
    const header = encodeHeader({ type: FrameType.CONTROL, flags: 0, enc: Encoding.JSON, elem: 0, ctx: 0, src: -1, tag: 0, seq: 0, length: payload.length });
    this.socket.cork();
    this.socket.write(header);
    const ok = this.socket.write(payload, done);
    this.socket.uncork();
    return ok;
  }

  sendData(fields: { ctx?: number; src?: number; tag?: number; seq?: number }, payload: Uint8Array, done?: (err?: Error | null) => void): boolean {
    if (this.closed || this.socket.destroyed) return false;
    const header = encodeHeader({ type: FrameType.DATA, flags: 0, enc: Encoding.V8, elem: 0, ctx: fields.ctx ?? 0, src: fields.src ?? 0, tag: fields.tag ?? 0, seq: fields.seq ?? 0, length: payload.byteLength });
    this.socket.cork();
    this.socket.write(header);
    const ok = this.socket.write(payload, done);
    this.socket.uncork();
    return ok;
  }

  /** Stop at a protocol error: say why (best effort), then drop the connection. */
  fail(err: Error): void {
    if (this.closed) return;
    this.error = err;
    const code = err instanceof TsmpiError ? err.code : 'ERR_PROTOCOL';
    this.sendControl({ t: 'refused', code, message: err.message });
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 200).unref();
  }

  end(): void {
    this.socket.end();
  }
}
