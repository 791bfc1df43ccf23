/**
 * Collectives of a communicator that spans hosts, some of whose members are
 * thread ranks sharing memory (`--threads` with ranks on several hosts, or
 * thread ranks here and process ranks elsewhere): within each mesh through the
 * shared regions, between meshes by messages among one representative a mesh
 * (hierarchical, as Open MPI's han does). The grouping comes from every
 * member's contact, so every rank sees the same one. It is used only when each
 * mesh is a contiguous run of communicator ranks (ranks fill hosts in order),
 * so reductions keep rank order; otherwise, and when no mesh has two members,
 * the flat message algorithms run.
 *
 * Failures: a representative that fails between meshes passes the error down
 * to its mesh in place of the result, so every rank rejects; every rank takes
 * part in every step it is in, even after its own part failed.
 */
import type { Op } from '../op.js';
import * as shm from './shm.js';
import type { Round } from './round.js';
import { CollError, asTsmpi } from './values.js';
import { TsmpiError } from '../errors.js';
import type { RegionCall } from '../transport/shm-regions.js';

/** Members (communicator ranks) grouped by mesh, in rank order; this rank's group and its shared regions. */
export interface Hierarchy {
  groups: number[][];
  /** index of this rank's group */
  mine: number;
  /** this call within this rank's group */
  sub: Round;
  /** the shared regions of this rank's group (null when it has one member) */
  local: RegionCall | null;
}

/** The message algorithms the steps between meshes run, each with an optional failure in place of this rank's part. */
export interface Flat {
  bcast(r: Round, data: unknown, root: number, into: Uint8Array | null, poison: CollError | null): Promise<unknown>;
  reduce(r: Round, data: unknown, op: Op, root: number, poison: CollError | null): Promise<unknown>;
  allreduce(r: Round, data: unknown, op: Op, poison: CollError | null): Promise<unknown>;
  barrier(r: Round): Promise<void>;
}

export function hierarchy(r: Round): Hierarchy | null {
  const meshes = r.meshes();
  if (!meshes) return null;
  const groups: number[][] = [];
  const seen = new Set<string>();
  let last: string | null = null;
  for (let i = 0; i < meshes.length; i++) {
    const m = meshes[i]!;
    if (m !== null && m === last) {
      groups[groups.length - 1]!.push(i);
      continue;
    }
    if (m !== null && seen.has(m)) return null; // a mesh met again after another one
    if (m !== null) seen.add(m);
    groups.push([i]);
    last = m;
  }
  if (groups.length < 2 || groups.every((g) => g.length < 2)) return null;
  const mine = groups.findIndex((g) => g.includes(r.rank));
  const sub = r.among(groups[mine]!);
  let local: RegionCall | null = null;
  if (sub.size > 1) {
    local = sub.regions();
    if (!local) throw new TsmpiError('ERR_PROTOCOL', `rank ${r.rank}'s mesh has no shared regions for this communicator`);
  }
  return { groups, mine, sub, local };
}

/** The rank that stands for each group between meshes: `root` in its own group, else the group's first. */
function reps(h: Hierarchy, root: number): number[] {
  return h.groups.map((g) => (g.includes(root) ? root : g[0]!));
}

function failed(e: unknown): CollError {
  return e instanceof CollError ? e : new CollError(asTsmpi(e));
}

/** Run `step`; a failure becomes a value to pass on. */
async function attempt<T>(step: () => Promise<T>): Promise<T | CollError> {
  try {
    return await step();
  } catch (e) {
    return failed(e);
  }
}

/** The representative of this rank's group hands `value` (or `poison`) down to it; returns what this rank ends with. */
async function down(h: Hierarchy, rep: number, value: unknown, poison: CollError | null, into: Uint8Array | null): Promise<unknown> {
  const g = h.groups[h.mine]!;
  const me = h.sub.rank;
  const from = g.indexOf(rep);
  const got = await shm.run(h.local!, () => shm.bcast(h.sub, h.local!, value, from, me === from ? null : into, me === from ? poison : null));
  if (me === from && poison) throw poison.err;
  return got;
}

export async function bcast(r: Round, h: Hierarchy, data: unknown, root: number, into: Uint8Array | null, flat: Flat): Promise<unknown> {
  const rep = reps(h, root);
  const myRep = rep[h.mine]!;
  let value: unknown = data;
  let poison: CollError | null = null;
  if (r.rank === myRep && rep.length > 1) {
    const got = await attempt(() => flat.bcast(r.among(rep), data, rep.indexOf(root), r.rank === root ? null : into, null));
    if (got instanceof CollError) poison = got;
    // bcastInto: the bytes are in `into` now; they go on from there.
    else value = r.rank !== root && into ? into : got;
  }
  if (!h.local) {
    if (poison) throw poison.err;
    return value;
  }
  const out = await down(h, myRep, value, poison, into);
  return r.rank === myRep ? value : out;
}

/** Reduce within each mesh to its representative (rank order), then among representatives; `all`: back to everyone. */
async function reduceTwice(r: Round, h: Hierarchy, data: unknown, op: Op, root: number | null, flat: Flat): Promise<unknown> {
  const rep = reps(h, root ?? -1);
  const g = h.groups[h.mine]!;
  const myRep = rep[h.mine]!;
  let partial: unknown = data;
  let own: CollError | null = null;
  if (h.local) {
    const got = await attempt(() => shm.run(h.local!, () => shm.reduce(h.sub, h.local!, data, op, g.indexOf(myRep))));
    if (got instanceof CollError) own = got;
    else partial = got;
  }
  let result: unknown;
  let poison: CollError | null = null;
  if (r.rank === myRep) {
    const among = r.among(rep);
    const got = await attempt(() => (root === null ? flat.allreduce(among, partial, op, own) : flat.reduce(among, partial, op, rep.indexOf(root), own)));
    if (got instanceof CollError) poison = got;
    else result = got;
    own = null;
  }
  if (root !== null) {
    if (own) throw own.err;
    if (poison) throw poison.err;
    return r.rank === root ? result : undefined;
  }
  if (!h.local) {
    if (poison) throw poison.err;
    return result;
  }
  const out = await attempt(() => down(h, myRep, result, poison, null));
  if (own) throw own.err;
  if (out instanceof CollError) throw out.err;
  return out;
}

export function reduce(r: Round, h: Hierarchy, data: unknown, op: Op, root: number, flat: Flat): Promise<unknown> {
  return reduceTwice(r, h, data, op, root, flat);
}

export function allreduce(r: Round, h: Hierarchy, data: unknown, op: Op, flat: Flat): Promise<unknown> {
  return reduceTwice(r, h, data, op, null, flat);
}

/** Everyone of the mesh arrives; the representatives meet by messages; each releases its mesh. */
export async function barrier(r: Round, h: Hierarchy, flat: Flat): Promise<void> {
  const rep = reps(h, -1);
  const myRep = rep[h.mine]!;
  if (h.local) {
    const arrived = h.sub.shmBarrier();
    if (arrived) await arrived;
  }
  let poison: CollError | null = null;
  if (r.rank === myRep) {
    const got = await attempt(() => flat.barrier(r.among(rep)));
    if (got instanceof CollError) poison = got;
  }
  if (h.local) await down(h, myRep, null, poison, null);
  else if (poison) throw poison.err;
}
