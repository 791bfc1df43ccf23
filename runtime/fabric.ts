/**
 * The mesh between ranks: one outgoing link per peer, made on first send, and the
 * incoming links peers make to us. Frames in, messages to the engine; messages
 * out, frames to links. Knows nothing of communicators.
 */
import { TsmpiError } from './errors.js';
import type { Engine, FlowSource, Message, Reservation } from './engine.js';
import { encodeHeader, FrameDecoder, FrameFlag, FrameType, HEADER_SIZE, type FrameHeader } from './wire/frame.js';
import { encodeJson, decodeJson, Encoding, flatten, type Encoded } from './wire/codec.js';
import type { Link, Listener, Transport } from './transport/transport.js';
import { pickAddress } from './transport/contact.js';
import { feedFrames } from './transport/feed.js';

/** Messages up to this size are copied into the frame buffer and sent in one write. */
const SMALL = 16 * 1024;
/** Large payloads are handed to the socket in slices of at most this size. */
const SLICE = 256 * 1024 * 1024;
/** Raw messages this large wait a turn for a receive buffer on shared memory (see `hold`). */
const HOLD_MIN = 64 * 1024;
/** How long to wait for a peer's connection to close after the launcher says it is gone. */
const GONE_GRACE_MS = 300;

export interface FabricOptions {
  self: number;
  /** every rank's contact (see transport/contact.ts), null for a rank that never joined */
  contacts: (string | null)[];
  /** the host this rank runs on, to choose local sockets for peers on it */
  hostId: string;
  /** this rank's shared-memory mesh id (thread ranks), preferred for peers in it */
  meshId?: string | null;
  secret: string;
  transport: Transport;
  listeners: Listener[];
  engine: Engine;
  maxPayload: number;
  connectTimeoutMs: number;
}

interface Ack {
  resolve(): void;
  reject(e: Error): void;
}

class OutLink {
  link: Link | null = null;
  lost: TsmpiError | null = null;
  readonly backlog: (() => void)[] = [];
  readonly acks = new Map<number, Ack>();
}

class InLink implements FlowSource {
  rank = -1;
  unexpectedBytes = 0;
  /** a recvInto whose message is arriving straight into its buffer */
  reserved: Reservation | null = null;
  /** the frame at the head of the link was kept back once (see `hold`) */
  held = false;
  constructor(readonly link: Link) {}
  pause(): void {
    this.link.pause();
  }
  resume(): void {
    this.link.resume();
  }
}

export class Fabric {
  private readonly out = new Map<number, OutLink>();
  private readonly incoming = new Map<number, Set<InLink>>();
  private seq = 0;
  readonly size: number;
  /** traffic counters (every message, collectives included) */
  messagesSent = 0;
  bytesSent = 0;
  messagesReceived = 0;
  bytesReceived = 0;

  constructor(private readonly o: FabricOptions) {
    this.size = o.contacts.length;
    for (const l of o.listeners) l.onLink((link) => this.accept(link));
  }

  get self(): number {
    return this.o.self;
  }

  /** Send an encoded value; resolves once the bytes left user memory (or, with `sync`, once matched). */
  send(dest: number, ctx: number, tag: number, e: Encoded, sync: boolean, extraFlags = 0): Promise<void> {
    const flags = (sync ? FrameFlag.SYNC : 0) | extraFlags;
    this.messagesSent++;
    this.bytesSent += e.length;
    if (dest === this.o.self) return this.sendSelf(ctx, tag, e, flags, sync);
    const why = this.o.engine.isGone(dest);
    if (why !== undefined) return Promise.reject(new TsmpiError('ERR_PEER_LOST', `cannot send to rank ${dest}: it is gone (${why})`));
    const out = this.outLink(dest);
    return new Promise<void>((resolve, reject) => {
      const go = () => this.write(out, dest, ctx, tag, e, flags, sync, resolve, reject);
      if (out.lost) reject(out.lost);
      else if (out.link) go();
      else out.backlog.push(go);
    });
  }

  /**
   * A buffered send done at once, or false (nothing sent: use `send`). Only when
   * the link to `dest` is up and copies synchronously (shared memory) and the
   * whole frame fits in it now: header and payload are encoded into one scratch
   * buffer and copied into the ring, no promise, no allocation for the frame.
   */
  trySend(dest: number, ctx: number, tag: number, e: Encoded): boolean {
    if (e.length > SMALL || dest === this.o.self || this.o.engine.isGone(dest) !== undefined) return false;
    const link = this.out.get(dest)?.link;
    if (!link?.writeNow || this.out.get(dest)!.lost) return false;
    const buf = this.scratch;
    encodeHeader({ type: FrameType.DATA, flags: 0, enc: e.enc, elem: e.elem, ctx, src: this.o.self, tag, seq: 0, length: e.length }, buf, 0);
    let off = HEADER_SIZE;
    for (const p of e.parts) {
      buf.set(p, off);
      off += p.byteLength;
    }
    if (!link.writeNow(buf.subarray(0, off))) return false;
    this.messagesSent++;
    this.bytesSent += e.length;
    return true;
  }

  private readonly scratch = Buffer.allocUnsafeSlow(HEADER_SIZE + SMALL);

  private sendSelf(ctx: number, tag: number, e: Encoded, flags: number, sync: boolean): Promise<void> {
    const m: Message = { ctx, src: this.o.self, tag, flags, enc: e.enc, elem: e.elem, payload: flatten(e), onMatched: null, from: null };
    this.messagesReceived++;
    this.bytesReceived += e.length;
    if (!sync) {
      this.o.engine.deliver(m);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      m.onMatched = resolve;
      this.o.engine.deliver(m);
    });
  }

  private write(out: OutLink, dest: number, ctx: number, tag: number, e: Encoded, flags: number, sync: boolean, resolve: () => void, reject: (e: Error) => void): void {
    if (out.lost) return reject(out.lost);
    const link = out.link!;
    const seq = sync ? (this.seq = (this.seq + 1) >>> 0) : 0;
    const h: FrameHeader = { type: FrameType.DATA, flags, enc: e.enc, elem: e.elem, ctx, src: this.o.self, tag, seq, length: e.length };
    const done = (err?: Error | null) => {
      if (err) {
        if (sync) out.acks.delete(seq);
        reject(new TsmpiError('ERR_PEER_LOST', `sending to rank ${dest} failed: ${err.message}`, { cause: err }));
      } else if (!sync) resolve();
    };
    if (sync) out.acks.set(seq, { resolve, reject });
    if (e.length <= SMALL) {
      const buf = Buffer.allocUnsafe(HEADER_SIZE + e.length);
      encodeHeader(h, buf, 0);
      let off = HEADER_SIZE;
      for (const p of e.parts) {
        buf.set(p, off);
        off += p.byteLength;
      }
      link.write(buf, done);
      return;
    }
    const chunks: Uint8Array[] = [encodeHeader(h)];
    for (const p of e.parts) {
      for (let off = 0; off < p.byteLength; off += SLICE) chunks.push(p.subarray(off, Math.min(off + SLICE, p.byteLength)));
    }
    link.writeMany(chunks, done);
  }

  private outLink(dest: number): OutLink {
    let out = this.out.get(dest);
    if (out) return out;
    out = new OutLink();
    this.out.set(dest, out);
    const o = out;
    const contact = this.o.contacts[dest];
    const fail = (err: TsmpiError) => {
      if (o.lost) return;
      o.lost = err;
      for (const a of o.acks.values()) a.reject(err);
      o.acks.clear();
      const backlog = o.backlog.splice(0);
      for (const go of backlog) go();
    };
    let address: string;
    try {
      if (!contact) throw new TsmpiError('ERR_PEER_LOST', `rank ${dest} never joined the job`);
      address = pickAddress(contact, this.o.hostId, this.o.meshId ?? null);
    } catch (e) {
      fail(e as TsmpiError);
      this.o.engine.peerGone(dest, (e as Error).message);
      return out;
    }
    this.o.transport.connect(address, this.o.connectTimeoutMs).then(
      (link) => {
        link.ref(false);
        o.link = link;
        const decoder = new FrameDecoder((h) => {
          if (h.type !== FrameType.ACK) throw new TsmpiError('ERR_PROTOCOL', `rank ${dest} sent frame type ${h.type} on an outgoing link`);
          const a = o.acks.get(h.seq);
          if (a) {
            o.acks.delete(h.seq);
            a.resolve();
          }
        }, { maxPayload: 0 });
        feedFrames(link, decoder);
        link.onClose((err) => {
          fail(new TsmpiError('ERR_PEER_LOST', `the link to rank ${dest} closed${err ? `: ${err.message}` : ''}`, { cause: err }));
        });
        link.write(encodeHelloFrame(this.o.self, this.o.secret));
        const backlog = o.backlog.splice(0);
        for (const go of backlog) go();
      },
      (err: TsmpiError) => {
        fail(new TsmpiError('ERR_PEER_LOST', `cannot reach rank ${dest}: ${err.message}`, { cause: err }));
        this.o.engine.peerGone(dest, 'its address does not answer');
      },
    );
    return out;
  }

  private accept(link: Link): void {
    link.ref(false);
    const inl = new InLink(link);
    const decoder = new FrameDecoder(
      (h, payload) => {
        if (inl.rank < 0) {
          inl.rank = this.checkHello(h, payload);
          let set = this.incoming.get(inl.rank);
          if (!set) this.incoming.set(inl.rank, (set = new Set()));
          set.add(inl);
          return;
        }
        if (h.type !== FrameType.DATA) throw new TsmpiError('ERR_PROTOCOL', `unexpected frame type ${h.type} from rank ${inl.rank}`);
        if (h.src !== inl.rank) throw new TsmpiError('ERR_PROTOCOL', `rank ${inl.rank} sent a frame claiming source ${h.src}`);
        const reserved = inl.reserved;
        inl.reserved = null;
        const m: Message = { ctx: h.ctx, src: inl.rank, tag: h.tag, flags: h.flags, enc: h.enc, elem: h.elem, payload, onMatched: null, from: reserved ? null : inl };
        this.messagesReceived++;
        this.bytesReceived += payload.length;
        if (h.flags & FrameFlag.SYNC) {
          const seq = h.seq;
          m.onMatched = () => {
            const ack = encodeHeader({ type: FrameType.ACK, flags: 0, enc: 0, elem: 0, ctx: h.ctx, src: this.o.self, tag: h.tag, seq, length: 0 });
            link.write(ack);
          };
        }
        if (reserved) this.o.engine.complete(reserved, m);
        else this.o.engine.deliver(m);
      },
      {
        maxPayload: this.o.maxPayload,
        volatileInput: link.volatileChunks === true,
        // A large raw message no receive waits for yet waits one turn in shared
        // memory (a loop's next recvInto is posted in it), then takes a buffer of its own.
        hold:
          link.volatileChunks === true
            ? (h) => {
                if (inl.held || inl.rank < 0 || h.type !== FrameType.DATA || h.enc !== Encoding.RAW || h.length < HOLD_MIN || this.o.engine.waiting(h.ctx, inl.rank, h.tag)) {
                  inl.held = false;
                  return false;
                }
                return (inl.held = true);
              }
            : undefined,
        // A raw message a recvInto waits for lands in its buffer, not in one of its own.
        payloadFor: (h) => {
          if (inl.rank < 0 || h.type !== FrameType.DATA || h.enc !== Encoding.RAW || h.flags & FrameFlag.ERROR || h.src !== inl.rank) return null;
          inl.reserved = this.o.engine.reserve(h.ctx, inl.rank, h.tag, h.length);
          return inl.reserved?.target ?? null;
        },
      },
    );
    feedFrames(link, decoder);
    link.onClose((err) => {
      if (inl.reserved) {
        this.o.engine.abandon(inl.reserved, new TsmpiError('ERR_PEER_LOST', `rank ${inl.rank} ended in the middle of a message to this rank`));
        inl.reserved = null;
      }
      if (inl.rank < 0) return;
      this.incoming.get(inl.rank)?.delete(inl);
      const why = err ? `its link failed: ${err.message}` : 'its process ended';
      this.o.engine.peerGone(inl.rank, why);
    });
  }

  private checkHello(h: FrameHeader, payload: Buffer): number {
    if (h.type !== FrameType.HELLO) throw new TsmpiError('ERR_PROTOCOL', 'a peer link must start with HELLO');
    const hello = decodeJson(payload) as { rank?: unknown; secret?: unknown };
    const rank = hello.rank;
    if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 0 || rank >= this.size) {
      throw new TsmpiError('ERR_PROTOCOL', `HELLO names no valid rank`);
    }
    if (typeof hello.secret !== 'string' || !sameSecret(hello.secret, this.o.secret)) {
      throw new TsmpiError('ERR_AUTH', `a peer claiming rank ${rank} does not know this job's secret`);
    }
    return rank;
  }

  /** The launcher reports that a rank's process ended. */
  /** The shared-memory mesh `rank` belongs to (thread ranks of one process), from its contact; null for a process rank. */
  meshOf(rank: number): string | null {
    return this.meshes()[rank] ?? null;
  }

  /** Whether any rank of the job is a thread rank (then collectives may go through shared memory). */
  get anyMesh(): boolean {
    return this.meshes().some((m) => m !== null);
  }

  private meshList: (string | null)[] | null = null;
  private meshes(): (string | null)[] {
    this.meshList ??= this.o.contacts.map((contact) => {
      const m = contact ? / shm:([^ ]+):\d+(?= |$)/.exec(contact) : null;
      return m ? m[1]! : null;
    });
    return this.meshList;
  }

  launcherSaysGone(rank: number): void {
    if (rank === this.o.self) return;
    setTimeout(() => {
      const set = this.incoming.get(rank);
      if (!set || set.size === 0) this.o.engine.peerGone(rank, 'its process ended');
    }, GONE_GRACE_MS).unref();
  }

  close(): void {
    for (const o of this.out.values()) o.link?.close();
    for (const l of this.o.listeners) l.close();
  }
}

export function encodeHelloFrame(rank: number, secret: string): Buffer {
  const payload = encodeJson({ rank, secret });
  const buf = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  encodeHeader({ type: FrameType.HELLO, flags: 0, enc: 2, elem: 0, ctx: 0, src: rank, tag: 0, seq: 0, length: payload.length }, buf, 0);
  payload.copy(buf, HEADER_SIZE);
  return buf;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  if (x.length !== y.length) return false;
  // Constant time in the content (no early exit), without loading node:crypto.
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}
