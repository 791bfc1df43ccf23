/**
 * The rank side of the control channel to the launcher (or a host daemon):
 * JSON control messages in CONTROL frames over one local link.
 */
import { TsmpiError } from './errors.js';
import { FrameDecoder, FrameType, encodeFrame } from './wire/frame.js';
import { Encoding, decodeJson, encodeJson } from './wire/codec.js';
import { parseLauncherMessage, type LauncherToRank, type RankToLauncher } from './wire/control.js';
import type { Link, Transport } from './transport/transport.js';
import { feedFrames } from './transport/feed.js';

export const CONTROL_MAX_PAYLOAD = 64 * 1024 * 1024;

export function encodeControl(msg: unknown): Buffer {
  return encodeFrame({ type: FrameType.CONTROL, flags: 0, enc: Encoding.JSON, elem: 0, ctx: 0, src: -1, tag: 0, seq: 0 }, encodeJson(msg));
}

/** Feed bytes, get parsed JSON control payloads. */
export function controlDecoder(onMessage: (value: unknown) => void): FrameDecoder {
  return new FrameDecoder(
    (h, payload) => {
      if (h.type !== FrameType.CONTROL) throw new TsmpiError('ERR_PROTOCOL', `frame type ${h.type} on a control link`);
      onMessage(decodeJson(payload));
    },
    { maxPayload: CONTROL_MAX_PAYLOAD },
  );
}

export class ControlClient {
  private readonly handlers: ((m: LauncherToRank) => void)[] = [];
  private closeHandler: (err?: Error) => void = () => {};

  private constructor(private readonly link: Link) {
    const decoder = controlDecoder((v) => {
      const m = parseLauncherMessage(v);
      for (const h of this.handlers) h(m);
    });
    feedFrames(link, decoder);
    link.onClose((err) => this.closeHandler(err));
  }

  static async connect(transport: Transport, address: string, timeoutMs: number): Promise<ControlClient> {
    return ControlClient.over(await transport.connect(address, timeoutMs));
  }

  /** Over a link already open (a thread rank's port to the launcher). */
  static over(link: Link): ControlClient {
    link.ref(false);
    return new ControlClient(link);
  }

  send(msg: RankToLauncher, done?: (err?: Error | null) => void): void {
    this.link.write(encodeControl(msg), done);
  }

  onMessage(h: (m: LauncherToRank) => void): void {
    this.handlers.push(h);
  }

  onClose(h: (err?: Error) => void): void {
    this.closeHandler = h;
  }

  /** Keep the process alive (while some wait is pending) or not. */
  ref(on: boolean): void {
    this.link.ref(on);
  }
}
