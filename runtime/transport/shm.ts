/**
 * Transport between the thread ranks of one process, over the rings of a
 * ShmMesh: `shm:MESHID:RANK` addresses. A link is a byte stream like a socket
 * (the fabric's framing runs on it unchanged), but a write is a copy into shared
 * memory and a wake-up is a doorbell. One poller a rank reads every ring meant for
 * it: after something arrived it looks again on the next turn; when nothing did,
 * it spins for a few µs (only if the machine has a core per rank) and then parks
 * on its doorbell with Atomics.waitAsync, which does not keep the event loop alive.
 */
import { TsmpiError } from '../errors.js';
import { COLL_SLOTS, ShmMesh, type ShmMeshData } from './shm-mesh.js';
import type { ShmRing } from './shm-ring.js';
import { ShmRegions } from './shm-regions.js';
import type { Link, Listener, Transport } from './transport.js';

/** A write queue this long makes write() return false (the caller may wait for drain). */
const HIGH_WATER = 8 * 1024 * 1024;
/**
 * Large writes and reads move through a ring in pieces of this size (~6 µs of copying), each
 * published (head or tail) as soon as it is copied: the reader copies one piece
 * out while the writer copies the next in, on another core.
 */
export const PIECE = 64 * 1024;

type Done = ((err?: Error | null) => void) | undefined;

class ShmLink implements Link {
  readonly volatileChunks = true;
  private readonly queue: { bytes: Uint8Array; off: number; done: Done }[] = [];
  queued = 0;
  paused = false;
  closed = false;
  private dataCb: ((chunk: Buffer) => number | void) | null = null;
  private closeCbs: ((err?: Error) => void)[] = [];
  private drainCbs: (() => void)[] = [];

  constructor(
    private readonly poller: Poller,
    readonly peer: number,
    private readonly out: ShmRing,
    readonly inRing: ShmRing,
  ) {}

  write(chunk: Uint8Array, done?: (err?: Error | null) => void): boolean {
    if (this.closed) {
      const err = new TsmpiError('ERR_PEER_LOST', `the shared-memory link to rank ${this.peer} is closed`);
      if (done) queueMicrotask(() => done(err));
      return false;
    }
    this.queue.push({ bytes: chunk, off: 0, done });
    this.queued += chunk.byteLength;
    this.flush();
    return this.queued < HIGH_WATER;
  }

  writeMany(chunks: Uint8Array[], done?: (err?: Error | null) => void): boolean {
    let ok = true;
    for (let i = 0; i < chunks.length; i++) ok = this.write(chunks[i]!, i === chunks.length - 1 ? done : undefined) && ok;
    return ok;
  }

  /**
   * Copy `chunk` into the ring now, whole, if nothing is queued before it and it
   * fits; false (and nothing written) otherwise. The caller may reuse `chunk` at once.
   */
  writeNow(chunk: Uint8Array): boolean {
    if (this.closed || this.queue.length || this.out.free() < chunk.byteLength) return false;
    this.out.write(chunk);
    this.poller.wake(this.peer);
    return true;
  }

  /** Move queued bytes into the ring; true when some moved. */
  flush(): boolean {
    let moved = false;
    const q = this.queue;
    while (q.length) {
      const w = q[0]!;
      const n = this.out.write(w.off === 0 ? w.bytes : w.bytes.subarray(w.off), PIECE);
      if (n > 0) {
        moved = true;
        // The reader may start on this piece while we copy the next.
        this.poller.wake(this.peer);
      }
      w.off += n;
      this.queued -= n;
      if (w.off < w.bytes.byteLength) {
        if (n > 0) continue;
        // Full: ask the reader to wake us, then look once more (it may have read meanwhile).
        this.out.setWriterWaiting(true);
        if (this.out.free() > 0) continue;
        break;
      }
      q.shift();
      w.done?.(null);
    }
    this.poller.backlog(this, q.length > 0);
    if (moved && q.length === 0 && this.drainCbs.length) for (const cb of this.drainCbs) cb();
    return moved;
  }

  /** Read what waits for us (at most one ring's worth); true when something arrived. */
  pump(): boolean {
    // Nobody reads yet (the fabric is not built): the bytes wait in the ring.
    if (this.paused || this.closed || !this.dataCb) return false;
    // The frame decoder copies out of the views (straight into a receive buffer when one waits).
    const cb = this.dataCb;
    const ring = this.inRing;
    let got = false;
    for (let budget = ring.capacity; budget > 0 && !this.paused && !this.closed; ) {
      const offered = Math.min(PIECE, budget, ring.contiguous());
      if (offered === 0) break;
      const n = ring.readInPlace(cb, offered);
      got = true;
      budget -= n;
      // Room for a writer that waits: it may copy its next piece while we copy this one out.
      if (n > 0 && ring.takeWriterWaiting()) this.poller.wake(this.peer);
      // The reader kept a frame back for now (see FrameDecoder's hold): look again next turn.
      if (n < offered) break;
    }
    return got;
  }

  onData(cb: (chunk: Buffer) => number | void): void {
    this.dataCb = cb;
    this.poller.kick();
  }
  onClose(cb: (err?: Error) => void): void {
    this.closeCbs.push(cb);
  }
  onDrain(cb: () => void): void {
    this.drainCbs.push(cb);
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.poller.kick();
  }
  ref(): void {}
  close(): void {
    // Our end stays readable until the peer ends: nothing to release.
  }
  destroy(err?: Error): void {
    this.end(err);
  }

  /** The link is over (the peer ended, or a protocol error): fail what is queued, tell the owner once. */
  end(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    const lost = new TsmpiError('ERR_PEER_LOST', `rank ${this.peer} ended before it read this`);
    for (const w of this.queue.splice(0)) w.done?.(lost);
    this.queued = 0;
    this.poller.backlog(this, false);
    for (const cb of this.closeCbs.splice(0)) cb(err);
  }
}

/** One rank's reader of every ring meant for it. */
class Poller {
  /** incoming data links (peer → us), made when the peer's first bytes arrive */
  readonly accepted = new Map<number, ShmLink>();
  /** our links to peers (their acks come back on the ack ring) */
  readonly outgoing = new Map<number, ShmLink>();
  private readonly waiting = new Set<ShmLink>();
  /** shared-memory waits (barriers): looked at whenever the doorbell rings; true once settled */
  private readonly conditions = new Set<() => boolean>();
  private keepAlive: NodeJS.Timeout | null = null;
  private scheduled = false;
  private parked = false;
  onAccept: ((link: ShmLink) => void) | null = null;
  private readonly early: ShmLink[] = [];
  private readonly peers: number[];

  constructor(
    readonly mesh: ShmMesh,
    readonly self: number,
    private readonly spinUs: number,
  ) {
    this.peers = mesh.d.ranks.filter((r) => r !== self);
    this.kick();
  }

  wake(rank: number): void {
    this.mesh.wake(rank);
  }

  /** Look at the rings again soon (a parked poller is woken through its own doorbell). */
  kick(): void {
    if (this.parked) return this.mesh.wake(this.self);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  /** A link has bytes it could not write yet: keep the process alive until they are out. */
  backlog(link: ShmLink, on: boolean): void {
    if (on) this.waiting.add(link);
    else this.waiting.delete(link);
    if (this.waiting.size && !this.keepAlive) this.keepAlive = setInterval(() => {}, 1 << 30);
    else if (!this.waiting.size && this.keepAlive) {
      clearInterval(this.keepAlive);
      this.keepAlive = null;
    }
  }

  private drain(): boolean {
    let got = false;
    for (const p of this.peers) {
      const gone = !this.mesh.alive(p);
      let a = this.accepted.get(p);
      if (!a) {
        const ring = this.dataRing(p);
        if (ring.used() > 0) {
          a = new ShmLink(this, p, this.mesh.ring(p, this.self, 'ack'), ring);
          this.accepted.set(p, a);
          if (this.onAccept) this.onAccept(a);
          else this.early.push(a);
        }
      }
      if (a && a.pump()) got = true;
      const o = this.outgoing.get(p);
      if (o && o.pump()) got = true;
      if (gone) {
        // It wrote nothing after it ended: once its rings are read, its links are over.
        if (a && !a.closed && a.inRing.used() === 0) a.end();
        if (o && !o.closed && o.inRing.used() === 0) o.end();
      }
    }
    for (const l of this.waiting) if (l.flush()) got = true;
    for (const settled of this.conditions) {
      if (settled()) {
        this.conditions.delete(settled);
        got = true;
      }
    }
    return got;
  }

  /** Look at `settled` after every wake-up until it returns true. */
  until(settled: () => boolean): void {
    this.conditions.add(settled);
    this.kick();
  }

  private readonly rings = new Map<number, ShmRing>();
  /** The ring a peer writes to us on (looked at before its link exists). */
  private dataRing(peer: number): ShmRing {
    let r = this.rings.get(peer);
    if (!r) this.rings.set(peer, (r = this.mesh.ring(peer, this.self, 'data')));
    return r;
  }

  listen(cb: (link: ShmLink) => void): void {
    this.onAccept = cb;
    for (const l of this.early.splice(0)) cb(l);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    if (this.parked) return;
    let seen = this.mesh.bell(this.self);
    if (this.drain()) return this.kick();
    if (this.spinUs > 0) {
      const until = performance.now() + this.spinUs / 1000;
      while (performance.now() < until) {
        const now = this.mesh.bell(this.self);
        if (now !== seen) {
          seen = now;
          if (this.drain()) return this.kick();
        }
      }
    }
    const p = this.mesh.park(this.self, seen);
    if (!p) return this.kick();
    this.parked = true;
    void p.then(this.woken);
  };

  /** The doorbell rang while parked: look at once (no second event-loop turn). */
  private readonly woken = (): void => {
    this.parked = false;
    if (!this.scheduled) this.run();
  };
}

class ShmListener implements Listener {
  constructor(
    readonly address: string,
    private readonly poller: Poller,
  ) {}
  onLink(cb: (link: Link) => void): void {
    this.poller.listen(cb);
  }
  close(): void {}
}

/** The shared-memory transport of one thread rank. */
export class ShmTransport implements Transport {
  readonly mesh: ShmMesh;
  private readonly poller: Poller;
  readonly self: number;

  /** the collective regions of this rank's communicators (runtime/collectives/shm.ts) */
  readonly regions: ShmRegions;

  constructor(d: ShmMeshData) {
    this.mesh = new ShmMesh(d);
    this.self = d.self;
    this.poller = new Poller(this.mesh, d.self, d.spinUs);
    this.regions = new ShmRegions({ mesh: this.mesh, self: this.self, until: (s) => this.poller.until(s) });
  }

  get id(): string {
    return this.mesh.d.id;
  }

  get address(): string {
    return `shm:${this.id}:${this.self}`;
  }

  listen(address: string): Promise<Listener> {
    if (address !== this.address) return Promise.reject(new TsmpiError('ERR_ARG', `this rank listens on ${this.address}, not ${address}`));
    return Promise.resolve(new ShmListener(address, this.poller));
  }

  /**
   * A barrier on shared counters when every member is a thread of this process
   * (null otherwise: the caller uses messages). `slot` names the communicator,
   * `seq` the call; the last rank to arrive wakes the others.
   */
  barrier(slot: number, seq: number, members: readonly number[]): Promise<void> | null {
    const mesh = this.mesh;
    if (slot >= COLL_SLOTS || members.length < 2 || !members.every((m) => mesh.has(m))) return null;
    const ticket = (seq + 1) | 0;
    mesh.arrive(slot, this.self, ticket);
    const others = members.filter((m) => m !== this.self);
    const everyone = () => others.every((m) => mesh.arrived(slot, m, ticket));
    if (everyone()) {
      for (const m of others) mesh.wake(m);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.poller.until(() => {
        if (everyone()) {
          resolve();
          return true;
        }
        const gone = others.find((m) => !mesh.alive(m) && !mesh.arrived(slot, m, ticket));
        if (gone === undefined) return false;
        reject(new TsmpiError('ERR_PEER_LOST', `barrier: rank ${gone} ended before it reached the barrier`));
        return true;
      });
    });
  }

  connect(address: string): Promise<Link> {
    const m = /^shm:(.+):(\d+)$/.exec(address);
    const peer = m ? Number(m[2]) : -1;
    if (!m || m[1] !== this.id || !this.mesh.has(peer) || peer === this.self) {
      return Promise.reject(new TsmpiError('ERR_PEER_LOST', `${address} is not a rank of this process`));
    }
    if (!this.mesh.alive(peer)) return Promise.reject(new TsmpiError('ERR_PEER_LOST', `rank ${peer} has ended`));
    let link = this.poller.outgoing.get(peer);
    if (!link) {
      link = new ShmLink(this.poller, peer, this.mesh.ring(this.self, peer, 'data'), this.mesh.ring(this.self, peer, 'ack'));
      this.poller.outgoing.set(peer, link);
    }
    return Promise.resolve(link);
  }
}

/** `shm:` addresses to the shared-memory transport, the rest to `other`. */
export function withShm(shm: ShmTransport, other: Transport): Transport {
  return {
    listen: (a) => (a.startsWith('shm:') ? shm.listen(a) : other.listen(a)),
    connect: (a, t) => (a.startsWith('shm:') ? shm.connect(a) : other.connect(a, t)),
  };
}
