/**
 * One collective call: its tag (the communicator's next sequence number) on the
 * hidden collective context, its sends, and what it may use of the members'
 * shared memory (thread ranks). Ranks here are communicator ranks.
 */
import { TAG_UB } from '../constants.js';
import { TsmpiError, errorFromWire } from '../errors.js';
import type { CommCore } from '../comm.js';
import type { Message } from '../engine.js';
import { decodeValue, encodeValue, type Encoded } from '../wire/codec.js';
import { BUNDLE_ENCODING, unpackBundle } from '../wire/bundle.js';
import { FrameFlag } from '../wire/frame.js';
import type { RegionCall } from '../transport/shm-regions.js';
import { DATA_SLOTS } from '../transport/shm-mesh.js';
import { CollError, asTsmpi, type Maybe } from './values.js';

function fromMessage(m: Message): Encoded {
  return { enc: m.enc, elem: m.elem, parts: [m.payload], length: m.payload.length, aliased: true };
}

/** One collective call's traffic: a tag of its own on the collective context. */
export class Round {
  private readonly ctx: number;
  readonly rank: number;
  readonly size: number;
  /**
   * More ranks than cores on this host: every message costs a process wake-up,
   * so algorithms with fewer messages beat ones with fewer rounds.
   */
  readonly crowded: boolean;
  private readonly sends: Promise<void>[] = [];

  constructor(
    private readonly core: CommCore,
    readonly tag: number,
  ) {
    this.ctx = core.ctx + 1;
    this.rank = core.rank;
    this.size = core.group.length;
    this.crowded = core.world.crowded && this.size > 2;
  }

  /** Send an encoded value (or an error token); waited for by `finish()`. */
  send(dest: number, v: Maybe<Encoded>): void {
    const fabric = this.core.world.fabric;
    const to = this.core.group[dest]!;
    const p =
      v instanceof CollError
        ? fabric.send(to, this.ctx, this.tag, encodeValue({ code: v.err.code, message: v.err.message }), false, FrameFlag.ERROR)
        : fabric.send(to, this.ctx, this.tag, v, false);
    p.catch(() => {});
    this.sends.push(p);
  }

  /** Forward a received message as it is. */
  forward(dest: number, m: Message): void {
    if (m.flags & FrameFlag.ERROR) {
      const p = this.core.world.fabric.send(this.core.group[dest]!, this.ctx, this.tag, fromMessage(m), false, FrameFlag.ERROR);
      p.catch(() => {});
      this.sends.push(p);
    } else this.send(dest, fromMessage(m));
  }

  recv(src: number): Promise<Message> {
    return this.core.world.engine.wait(this.ctx, this.core.group[src]!, this.tag, this.core.group, false);
  }

  async recvValue(src: number): Promise<Maybe<unknown>> {
    return valueOf(await this.recv(src));
  }

  /** This call's use of the members' shared regions, when every member is a thread rank of this process; else null. */
  regions(): RegionCall | null {
    return this.regionsOf(this.core.group);
  }

  /** The same for some of the members (world ranks), all thread ranks of this process. */
  regionsOf(members: readonly number[]): RegionCall | null {
    return this.core.world.shm?.regions.call(this.core.ctx >>> 1, (this.tag + 1) | 0, members) ?? null;
  }

  /**
   * The shared-memory mesh of each member (by communicator rank); null for
   * process ranks. Null when no member may use shared regions: the job has no
   * thread ranks, or the communicator is past the slots that have regions
   * (every rank decides alike).
   */
  meshes(): (string | null)[] | null {
    const f = this.core.world.fabric;
    if (!f.anyMesh || this.core.ctx >>> 1 >= DATA_SLOTS) return null;
    return this.core.group.map((w) => f.meshOf(w));
  }

  /** This call among some members only (communicator ranks, in order; this rank among them): same tag, same context. */
  among(ranks: readonly number[]): Round {
    const core = this.core;
    return new Round({ ...core, group: ranks.map((i) => core.group[i]!), rank: ranks.indexOf(core.rank) }, this.tag);
  }

  /** A barrier on shared counters, when every member is a thread rank of this process; else null. */
  shmBarrier(): Promise<void> | null {
    const shm = this.core.world.shm;
    return shm ? shm.barrier(this.core.ctx >>> 1, this.tag, this.core.group) : null;
  }

  /** Wait for every send of this call (so user memory may be reused). */
  async finish(): Promise<void> {
    await Promise.all(this.sends);
  }
}

/** The value a message carries, or the error it carries. */
export function valueOf(m: Message): Maybe<unknown> {
  if (m.flags & FrameFlag.ERROR) {
    const { code, message } = decodeValue(m.enc, m.elem, m.payload) as { code: string; message: string };
    return new CollError(errorFromWire(code, message));
  }
  try {
    return decodeValue(m.enc, m.elem, m.payload);
  } catch (e) {
    return new CollError(asTsmpi(e));
  }
}

export function itemsOf(m: Message): Maybe<Encoded[]> {
  const v = m.flags & FrameFlag.ERROR ? valueOf(m) : null;
  if (v instanceof CollError) return v;
  if (m.enc !== BUNDLE_ENCODING) return new CollError(new TsmpiError('ERR_PROTOCOL', 'a collective expected a bundle'));
  return unpackBundle(m.payload);
}


/** Start a collective round on `core`, taking the next sequence number. */
export function round(core: CommCore & { seq: number }): Round {
  const tag = core.seq;
  core.seq = (core.seq + 1) & TAG_UB;
  return new Round(core, tag);
}
