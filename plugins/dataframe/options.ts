/**
 * The options of every dataframe call, checked once, with messages that name
 * the option.
 */
import { serialize } from 'node:v8';
import type { Comm } from '../../runtime/comm.js';
import { TsmpiError } from '../../runtime/errors.js';
import { describeUnclonable } from '../../runtime/wire/codec.js';
import type { Pool } from '../../pool/pool.js';
import { isPoolLike, type PoolLike } from './dispatch.js';

/** Options of every call; `comm` selects collective mode. */
export interface ParallelOptions<C = unknown> {
  /** `df.apply` only: 1 = rows (danfojs's default), 0 = columns */
  axis?: 0 | 1;
  /** standalone mode: worker processes (default: the machine's cores; with `pool`: its workers) */
  workers?: number;
  /** standalone mode: a tsmpi/pool Pool (local or remote hosts) whose workers compute the chunks */
  pool?: Pool;
  /** draw a progress bar on stderr (in a tsmpirun job: the launcher's bar) */
  progress?: boolean;
  /** plain values the function reads from its second argument */
  context?: C;
  /** collective mode: every rank of `comm` calls; the frame is spread over all of them */
  comm?: Comm;
  /** collective mode: the rank that passes the frame and gets the result (default 0) */
  root?: number;
}

/** Standalone mode: a local worker pool. */
export type StandaloneOptions<C = unknown> = Omit<ParallelOptions<C>, 'comm' | 'root'> & { comm?: undefined; root?: undefined };

/** Collective mode: every rank of `comm` calls; the result comes back on `root`, `undefined` elsewhere. */
export type CollectiveOptions<C = unknown> = Omit<ParallelOptions<C>, 'comm' | 'workers' | 'pool'> & { comm: Comm; workers?: undefined; pool?: undefined };

export interface Checked {
  axis: 0 | 1;
  /** workers asked for; null: the pool's (or the machine's cores) */
  workers: number | null;
  /** the user's pool; null: the plugin's own */
  pool: PoolLike | null;
  progress: boolean;
  hasCtx: boolean;
  ctx: unknown;
  comm: Comm | null;
  root: number;
}

const KNOWN = new Set(['axis', 'workers', 'pool', 'progress', 'context', 'comm', 'root']);

export function checkOptions(what: string, opts: unknown, allowAxis: boolean): Checked {
  if (opts === undefined || opts === null) opts = {};
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new TsmpiError('ERR_ARG', `${what}: options must be an object, got ${typeof opts}`);
  const o = opts as ParallelOptions & Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) throw new TsmpiError('ERR_ARG', `${what}: unknown option \`${k}\` (known: ${[...KNOWN].join(', ')})`);
  }
  let axis: 0 | 1 = 1;
  if (o.axis !== undefined) {
    if (!allowAxis) throw new TsmpiError('ERR_ARG', `${what}: the \`axis\` option only applies to parallelApply`);
    if (o.axis !== 0 && o.axis !== 1) throw new TsmpiError('ERR_ARG', `${what}: \`axis\` must be 0 or 1, got ${String(o.axis)}`);
    axis = o.axis;
  }
  let workers: number | null = null;
  if (o.workers !== undefined) {
    if (!Number.isInteger(o.workers) || (o.workers as number) < 1 || (o.workers as number) > 1024) {
      throw new TsmpiError('ERR_ARG', `${what}: \`workers\` must be an integer from 1 to 1024, got ${String(o.workers)}`);
    }
    workers = o.workers as number;
  }
  if (o.progress !== undefined && typeof o.progress !== 'boolean') {
    throw new TsmpiError('ERR_ARG', `${what}: \`progress\` must be true or false, got ${String(o.progress)}`);
  }
  const hasCtx = o.context !== undefined;
  if (hasCtx) {
    try {
      serialize(o.context);
    } catch (e) {
      throw new TsmpiError('ERR_ARG', `${what}: \`context\` must hold plain values that can be copied to other processes: ${describeUnclonable(o.context).replace(/^value/, 'context')}`, { cause: e });
    }
  }
  let comm: Comm | null = null;
  if (o.comm !== undefined) {
    const c = o.comm as Partial<Comm> | null;
    if (!c || typeof c.scatter !== 'function' || typeof c.gather !== 'function' || typeof c.size !== 'number') {
      throw new TsmpiError('ERR_ARG', `${what}: \`comm\` must be a communicator (from init(), split() or dup())`);
    }
    comm = o.comm;
    if (o.workers !== undefined) throw new TsmpiError('ERR_ARG', `${what}: \`workers\` applies to standalone mode; with \`comm\` every rank of it works`);
    if (o.pool !== undefined) throw new TsmpiError('ERR_ARG', `${what}: \`pool\` applies to standalone mode; with \`comm\` every rank of it works`);
  }
  let pool: PoolLike | null = null;
  if (o.pool !== undefined) {
    if (!isPoolLike(o.pool)) throw new TsmpiError('ERR_ARG', `${what}: \`pool\` must be a Pool from tsmpi/pool (new Pool(...)), got ${o.pool === null ? 'null' : typeof o.pool}`);
    pool = o.pool;
  }
  let root = 0;
  if (o.root !== undefined) {
    if (!comm) throw new TsmpiError('ERR_ARG', `${what}: \`root\` applies to collective mode: pass \`comm\` too`);
    if (!Number.isInteger(o.root) || (o.root as number) < 0 || (o.root as number) >= comm.size) {
      throw new TsmpiError('ERR_ROOT', `${what}: root ${String(o.root)} is not a rank of a communicator of size ${comm.size}`);
    }
    root = o.root as number;
  }
  return { axis, workers, pool, progress: o.progress === true, hasCtx, ctx: o.context, comm, root };
}
