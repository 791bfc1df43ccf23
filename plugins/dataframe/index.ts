/**
 * tsmpi/dataframe: Pandaral·lel for danfojs. Each function returns exactly what
 * the serial danfojs call returns (values, index, columns, dtypes), computed by
 * several processes:
 *
 * - standalone (no `comm`): chunk tasks on a tsmpi/pool Pool: the plugin's own
 *   (local workers, started on first use and reused; `closePool()` ends it, so
 *   does the process's exit), or the user's, given as the `pool` option (local
 *   or remote hosts);
 * - collective (`comm` given): every rank of `comm` calls, the `root` passes the
 *   frame and gets the result.
 *
 * The function travels as source text: it may read its arguments, globals and
 * the `context` option (its second argument), not variables of the script.
 */
import type { DataFrame, Series } from 'danfojs-node';
import { TsmpiError } from '../../runtime/errors.js';
import { runCollective } from './collective.js';
import { functionSource } from './fn-source.js';
import { planApply, planApplyMap, planGroupApply, planMap, isFrame, isSeries, type FrameLike, type Plan, type SeriesLike } from './operations.js';
import { checkOptions, type Checked, type CollectiveOptions, type ParallelOptions, type StandaloneOptions } from './options.js';
import { closeStandalonePool, defaultWorkers, handoffFor, runOnPool, standalonePids, standalonePool, WorkerFailure } from './dispatch.js';
import { ProgressBar } from './progress.js';
import { reviveError } from './remote-error.js';
import { quietTensorflow } from './compile.js';
import { createRequire } from 'node:module';

export type { CollectiveOptions, ParallelOptions, StandaloneOptions } from './options.js';
export type { RemoteErrorFields } from './remote-error.js';

/** A row as danfojs gives it to `apply` (axis 1): the row's values, missing ones removed. */
export type Row = (number | string | boolean)[];

/**
 * `df.apply(fn, { axis })`, in parallel. Axis 1 (the default, as in danfojs)
 * calls `fn(row, context)` for each row, axis 0 `fn(column, context)` for each
 * column, with missing values removed (as danfojs does). A Series when `fn`
 * returns single values, a DataFrame when it returns arrays.
 */
export function parallelApply<C = undefined>(df: DataFrame, fn: (values: any, context: C) => unknown, opts?: StandaloneOptions<C>): Promise<DataFrame | Series>;
export function parallelApply<C = undefined>(
  df: DataFrame | undefined,
  fn: (values: any, context: C) => unknown,
  opts: CollectiveOptions<C>,
): Promise<DataFrame | Series | undefined>;
export async function parallelApply<C>(df: DataFrame | undefined, fn: (values: any, context: C) => unknown, opts: ParallelOptions<C> = {}): Promise<unknown> {
  const o = checkOptions('parallelApply', opts, true);
  return run(o, 'parallelApply', df, fn, (d) => planApply(frame('parallelApply', d), o.axis));
}

/** `df.applyMap(fn)`, in parallel: `fn(value, context)` for every value. */
export function parallelApplyMap<C = undefined>(df: DataFrame, fn: (value: any, context: C) => unknown, opts?: StandaloneOptions<C>): Promise<DataFrame>;
export function parallelApplyMap<C = undefined>(df: DataFrame | undefined, fn: (value: any, context: C) => unknown, opts: CollectiveOptions<C>): Promise<DataFrame | undefined>;
export async function parallelApplyMap<C>(df: DataFrame | undefined, fn: (value: any, context: C) => unknown, opts: ParallelOptions<C> = {}): Promise<unknown> {
  const o = checkOptions('parallelApplyMap', opts, false);
  return run(o, 'parallelApplyMap', df, fn, (d) => planApplyMap(frame('parallelApplyMap', d)), '(value, ctx) => … ctx.NAME');
}

/** A function for parallelMap: `(value, position)`, or `(value, context, position)` with a context. */
export type MapFunction<C> = ((value: any, i: number) => unknown) | ((value: any, context: C, i: number) => unknown);

/**
 * `series.map(fn)`, in parallel: `fn(value, position)` as danfojs calls it, or
 * `fn(value, context, position)` when a `context` is given.
 */
export function parallelMap<C = undefined>(series: Series, fn: MapFunction<C>, opts?: StandaloneOptions<C>): Promise<Series>;
export function parallelMap<C = undefined>(series: Series | undefined, fn: MapFunction<C>, opts: CollectiveOptions<C>): Promise<Series | undefined>;
export async function parallelMap<C>(series: Series | undefined, fn: MapFunction<C>, opts: ParallelOptions<C> = {}): Promise<unknown> {
  const o = checkOptions('parallelMap', opts, false);
  if (!o.comm && isSeries(series) && typeof fn === 'object' && fn !== null) {
    // A lookup table, not a function: danfojs maps it serially; nothing to gain.
    return series.map(fn as never);
  }
  return run(o, 'parallelMap', series, fn, (s) => planMap(seriesOf(s)), '(value, ctx, i) => … ctx.NAME');
}

/**
 * `df.groupby(by).apply(fn)`, in parallel: `fn(group, context)` for every
 * group, where `group` is a danfojs DataFrame (so the workers load danfojs).
 */
export function parallelGroupApply<C = undefined>(df: DataFrame, by: string | string[], fn: (group: DataFrame, context: C) => unknown, opts?: StandaloneOptions<C>): Promise<DataFrame>;
export function parallelGroupApply<C = undefined>(
  df: DataFrame | undefined,
  by: string | string[],
  fn: (group: DataFrame, context: C) => unknown,
  opts: CollectiveOptions<C>,
): Promise<DataFrame | undefined>;
export async function parallelGroupApply<C>(
  df: DataFrame | undefined,
  by: string | string[],
  fn: (group: DataFrame, context: C) => unknown,
  opts: ParallelOptions<C> = {},
): Promise<unknown> {
  const o = checkOptions('parallelGroupApply', opts, false);
  const cols = typeof by === 'string' ? [by] : by;
  return run(o, 'parallelGroupApply', df, fn, (d) => {
    if (!Array.isArray(cols) || cols.length === 0 || !cols.every((c) => typeof c === 'string')) {
      throw new TsmpiError('ERR_ARG', 'parallelGroupApply: `by` must be a column name or a non-empty array of them');
    }
    return planGroupApply(frame('parallelGroupApply', d), cols);
  }, '(group, ctx) => … ctx.NAME');
}

/** End the standalone pool's worker processes (a later call starts a new pool). */
export function closePool(): Promise<void> {
  return closeStandalonePool();
}

/** @internal the standalone pool's worker pids (for tests) */
export function poolPids(): number[] {
  return standalonePids();
}

function frame(what: string, df: unknown): FrameLike {
  if (!isFrame(df)) throw new TsmpiError('ERR_ARG', `${what}: the first argument must be a danfojs DataFrame`);
  return df;
}

function seriesOf(s: unknown): SeriesLike {
  if (!isSeries(s)) throw new TsmpiError('ERR_ARG', 'parallelMap: the first argument must be a danfojs Series');
  return s;
}

async function run(o: Checked, what: string, data: unknown, fn: unknown, makePlan: (data: unknown) => Plan, hint?: string): Promise<unknown> {
  if (o.comm) {
    return runCollective({
      comm: o.comm,
      root: o.root,
      progress: o.progress,
      hasCtx: o.hasCtx,
      ctx: o.ctx,
      prepare: () => {
        const { source } = functionSource(fn, what, hint);
        const plan = makePlan(data);
        const Frame = (data as { constructor: new (d: unknown) => unknown }).constructor;
        return { plan, source, ...(plan.kind === 'groups' ? { makeFrame: (d: Record<string, unknown[]>) => new Frame(d) } : {}) };
      },
    });
  }
  const t0 = performance.now();
  const { source } = functionSource(fn, what, hint);
  const plan = makePlan(data);
  quietLoadedTensorflow();
  return runStandalone(plan, source, o, t0);
}

/** Where the last standalone call's time went (ms): for benchmarks. */
export interface Timings {
  /** plan: read the frame's shape, group it (groupby) */
  plan: number;
  /** packing chunks into typed columns, at the root */
  pack: number;
  /** from the first chunk sent to the last result in */
  workers: number;
  /** the workers' own time on their chunks, added up */
  compute: number;
  /** building the danfojs result from the results */
  build: number;
  total: number;
  chunks: number;
}
let timings: Timings | null = null;

/** @internal where the last standalone call's time went */
export function lastTimings(): Timings | null {
  return timings;
}

async function runStandalone(plan: Plan, source: string, o: Checked, t0: number): Promise<unknown> {
  const workers = o.workers ?? defaultWorkers(o.pool);
  const pool = o.pool ?? (await standalonePool(workers));
  const t1 = performance.now();
  let pack = 0;
  let compute = 0;
  const bounds = plan.bounds(workers, 'pool');
  const chunks = bounds.length - 1;
  const bar = o.progress ? new ProgressBar({ label: plan.what, total: plan.total, unit: plan.unit }) : null;
  let outs;
  try {
    outs = await runOnPool(pool, {
      kind: plan.kind,
      source,
      ctx: o.ctx,
      hasCtx: o.hasCtx,
      // Two chunks per worker: none waits for its next one.
      window: () => 2 * (o.workers ?? Math.max(workers, o.pool?.workers.length ?? 0)),
      cancelRunning: !o.pool,
      handoff: handoffFor(pool),
      chunks,
      encode: (i) => {
        const t = performance.now();
        const c = plan.encode(bounds[i]!, bounds[i + 1]!);
        pack += performance.now() - t;
        return c;
      },
      onChunk: (_i, ms) => (compute += ms),
      ...(bar ? { progress: (done: number) => bar.update(done) } : {}),
    });
  } catch (e) {
    bar?.finish();
    if (e instanceof WorkerFailure) {
      const r = e.report;
      const where = r.at >= 0 ? plan.locate(r.at, r.column) : { where: 'its start', position: -1 };
      throw reviveError(r, plan.what, { ...where, pid: e.pid });
    }
    throw e;
  }
  bar?.finish();
  const t2 = performance.now();
  const result = plan.finish(outs, bounds);
  const t3 = performance.now();
  timings = { plan: t1 - t0, pack, workers: t2 - t1, compute, build: t3 - t2, total: t3 - t0, chunks };
  return result;
}

/**
 * The tfjs banner ("Hi, looks like you are running TensorFlow.js in Node.js…")
 * is advice for another install; quiet it in this process when danfojs-node is
 * already loaded here (never load it just for that).
 */
let quieted = false;
function quietLoadedTensorflow(): void {
  if (quieted) return;
  try {
    const require = createRequire(import.meta.url);
    const loaded = require.cache[require.resolve('danfojs-node')];
    if (loaded) {
      quieted = true;
      quietTensorflow((loaded.exports as { tensorflow?: unknown }).tensorflow);
    }
  } catch {
    // danfojs-node is not resolvable from here: nothing to quiet
  }
}
