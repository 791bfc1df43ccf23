/**
 * The matching engine: MPI's posted-receive and unexpected-message queues.
 *
 * Messages are matched by (context, source, tag) with wildcards, in arrival
 * order; receives in posting order. Arrival order per source is the link's
 * order, so messages between one pair with one tag never overtake each other.
 * Ranks here are world ranks; communicators translate.
 */
import { ANY_SOURCE, ANY_TAG } from './constants.js';
import { TsmpiError } from './errors.js';
import type { QueuedMessage } from './wire/control.js';

/** Where a message came from, for flow control (pause a link whose sender runs ahead). */
export interface FlowSource {
  unexpectedBytes: number;
  pause(): void;
  resume(): void;
}

export interface Message {
  ctx: number;
  src: number;
  tag: number;
  flags: number;
  enc: number;
  elem: number;
  payload: Buffer;
  /** run once when a receive takes the message (acknowledges an ssend) */
  onMatched: (() => void) | null;
  from: FlowSource | null;
}

interface Waiter {
  ctx: number;
  src: number;
  tag: number;
  /** world ranks that could send on this context (for ANY_SOURCE and lost peers) */
  members: readonly number[];
  probe: boolean;
  /** a receive into a caller's buffer (recvInto) */
  into: IntoBuffer | null;
  resolve(m: Message): void;
  reject(e: TsmpiError): void;
}

/** A receive into a caller's buffer: a message it refuses (too large) stays queued and the receive fails. */
export interface IntoBuffer {
  bytes: Uint8Array;
  refuse(m: Message): TsmpiError | null;
}

/** A receive promised a message whose bytes are still arriving, straight into its buffer. */
export interface Reservation {
  readonly waiter: Waiter;
  /** the message's payload: a view of the receive buffer */
  readonly target: Buffer;
}

interface Queues {
  unexpected: Message[];
  waiters: Waiter[];
}

/** Unexpected bytes from one sender before its link is paused. */
export const FLOW_LIMIT = 64 * 1024 * 1024;

function matches(w: { src: number; tag: number }, m: { src: number; tag: number }): boolean {
  return (w.src === ANY_SOURCE || w.src === m.src) && (w.tag === ANY_TAG || w.tag === m.tag);
}

export class Engine {
  private readonly queues = new Map<number, Queues>();
  private readonly gone = new Map<number, string>();
  private readonly paused = new Set<FlowSource>();

  constructor(readonly self: number) {}

  private q(ctx: number): Queues {
    let q = this.queues.get(ctx);
    if (!q) {
      q = { unexpected: [], waiters: [] };
      this.queues.set(ctx, q);
    }
    return q;
  }

  /** A message arrived (from a link, or a self-send). */
  deliver(m: Message): void {
    const q = this.q(m.ctx);
    const ws = q.waiters;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      if (!matches(w, m)) continue;
      if (w.probe) {
        ws.splice(i--, 1);
        w.resolve(m);
        continue;
      }
      const refused = w.into?.refuse(m);
      if (refused) {
        ws.splice(i--, 1);
        w.reject(refused);
        continue;
      }
      ws.splice(i, 1);
      this.take(m, false);
      w.resolve(m);
      return;
    }
    q.unexpected.push(m);
    const from = m.from;
    if (from) {
      from.unexpectedBytes += m.payload.length;
      if (from.unexpectedBytes > FLOW_LIMIT && !this.paused.has(from)) {
        this.paused.add(from);
        from.pause();
      }
    }
  }

  private take(m: Message, queued: boolean): void {
    const from = m.from;
    if (queued && from) {
      from.unexpectedBytes -= m.payload.length;
      if (from.unexpectedBytes < FLOW_LIMIT / 2 && this.paused.delete(from)) from.resume();
    }
    const cb = m.onMatched;
    if (cb) {
      m.onMatched = null;
      cb();
    }
  }

  private find(ctx: number, src: number, tag: number): number {
    const q = this.queues.get(ctx);
    if (!q) return -1;
    const u = q.unexpected;
    for (let i = 0; i < u.length; i++) if (matches({ src, tag }, u[i]!)) return i;
    return -1;
  }

  /**
   * A raw message of `length` bytes from `src` has begun to arrive. If the receive
   * it will match is a recvInto with room (and no probe is waiting to see it
   * first), that receive is taken off the queue now and the bytes can land in its
   * buffer; `complete` delivers it there. Messages from one link arrive in order,
   * so the receive it gets is the one `deliver` would have picked.
   */
  reserve(ctx: number, src: number, tag: number, length: number): Reservation | null {
    const q = this.queues.get(ctx);
    if (!q || q.unexpected.length) return null;
    const ws = q.waiters;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      if (!matches(w, { src, tag })) continue;
      if (w.probe || !w.into || w.into.bytes.byteLength < length) return null;
      ws.splice(i, 1);
      const b = w.into.bytes;
      return { waiter: w, target: Buffer.from(b.buffer, b.byteOffset, length) };
    }
    return null;
  }

  /** Does a receive or probe wait that a message (ctx, src, tag) would match? */
  waiting(ctx: number, src: number, tag: number): boolean {
    const q = this.queues.get(ctx);
    if (!q) return false;
    const m = { src, tag };
    for (const w of q.waiters) if (matches(w, m)) return true;
    return false;
  }

  /** The reserved message is complete: its receive gets it. */
  complete(r: Reservation, m: Message): void {
    this.take(m, false);
    r.waiter.resolve(m);
  }

  /** The reserved message will never complete (its link failed). */
  abandon(r: Reservation, err: TsmpiError): void {
    r.waiter.reject(err);
  }

  /** Take a matching queued message now, or null. */
  tryRecv(ctx: number, src: number, tag: number): Message | null {
    const i = this.find(ctx, src, tag);
    if (i < 0) return null;
    const m = this.q(ctx).unexpected.splice(i, 1)[0]!;
    this.take(m, true);
    return m;
  }

  /** Look at a matching queued message without taking it, or null. */
  tryProbe(ctx: number, src: number, tag: number): Message | null {
    const i = this.find(ctx, src, tag);
    return i < 0 ? null : this.q(ctx).unexpected[i]!;
  }

  /**
   * Wait for a matching message (or only look at it, for `probe`).
   * Rejects with ERR_PEER_LOST when no member that could send it is left.
   */
  wait(
    ctx: number,
    src: number,
    tag: number,
    members: readonly number[],
    probe: boolean,
    into: IntoBuffer | null = null,
  ): Promise<Message> {
    let m: Message | null;
    if (probe) m = this.tryProbe(ctx, src, tag);
    else if (into) {
      m = this.tryProbe(ctx, src, tag);
      const refused = m && into.refuse(m);
      if (refused) return Promise.reject(refused);
      if (m) m = this.tryRecv(ctx, src, tag);
    } else m = this.tryRecv(ctx, src, tag);
    if (m) return Promise.resolve(m);
    const lost = this.lostReason(src, members);
    if (lost) return Promise.reject(lost);
    return new Promise<Message>((resolve, reject) => this.enqueue({ ctx, src, tag, members, probe, into, resolve, reject }));
  }

  /**
   * A receive without a promise of its own (the caller makes the one it returns):
   * a matching queued message is taken and returned at once; otherwise the
   * receive is posted and `resolve` gets its message later (null returned), or
   * `reject` gets ERR_PEER_LOST (now, or when no sender is left).
   */
  post(ctx: number, src: number, tag: number, members: readonly number[], resolve: (m: Message) => void, reject: (e: TsmpiError) => void): Message | null {
    const m = this.tryRecv(ctx, src, tag);
    if (m) return m;
    const lost = this.lostReason(src, members);
    if (lost) reject(lost);
    else this.enqueue({ ctx, src, tag, members, probe: false, into: null, resolve, reject });
    return null;
  }

  private enqueue(w: Waiter): void {
    this.q(w.ctx).waiters.push(w);
    // The message we wait for may sit behind a paused link.
    if (this.paused.size) {
      for (const f of this.paused) f.resume();
      this.paused.clear();
    }
  }

  private lostReason(src: number, members: readonly number[]): TsmpiError | null {
    if (src !== ANY_SOURCE) {
      const why = this.gone.get(src);
      return why === undefined ? null : new TsmpiError('ERR_PEER_LOST', `rank ${src} is gone (${why}); nothing more can arrive from it`);
    }
    if (members.length < 2) return null;
    for (const r of members) if (r !== this.self && !this.gone.has(r)) return null;
    return new TsmpiError('ERR_PEER_LOST', 'every other rank is gone; nothing more can arrive from any source');
  }

  /** A peer can send nothing more: fail every wait that only it could satisfy. */
  peerGone(rank: number, why: string): void {
    if (this.gone.has(rank)) return;
    this.gone.set(rank, why);
    for (const q of this.queues.values()) {
      const keep: Waiter[] = [];
      for (const w of q.waiters) {
        if (w.src !== rank && w.src !== ANY_SOURCE) {
          keep.push(w);
          continue;
        }
        const err = this.lostReason(w.src, w.members);
        if (err) w.reject(err);
        else keep.push(w);
      }
      q.waiters = keep;
    }
  }

  isGone(rank: number): string | undefined {
    return this.gone.get(rank);
  }

  /** Fail every wait at once (abort, launcher lost). */
  failAll(err: TsmpiError): void {
    for (const q of this.queues.values()) {
      const ws = q.waiters;
      q.waiters = [];
      for (const w of ws) w.reject(err);
    }
  }

  /** Unmatched messages; `comm` here is the context id (see World for the report form). */
  queued(): QueuedMessage[] {
    const out: QueuedMessage[] = [];
    for (const q of this.queues.values()) {
      for (const m of q.unexpected) out.push({ comm: m.ctx, source: m.src, tag: m.tag, bytes: m.payload.length });
    }
    return out;
  }
}
