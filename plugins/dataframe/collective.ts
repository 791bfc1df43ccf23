/**
 * Collective mode: every rank of `comm` calls; the root passes the frame and
 * gets the result, the others pass `undefined` and get `undefined`.
 *
 *   1. bcast: the root's plan (function source, context, kind) or its error, so
 *      a bad argument rejects on every rank and nothing hangs;
 *   2. scatter: one chunk of plain columns per rank (groups balanced by rows);
 *   3. every rank runs its chunk (the root too);
 *   4. gather: the results, or the first error, back at the root.
 *
 * With `progress`, each rank reports to the launcher, whose one bar sums them;
 * outside a tsmpirun job the root draws its own.
 */
import type { Comm } from '../../runtime/comm.js';
import { TsmpiError } from '../../runtime/errors.js';
import { compileFunction, loadDanfo } from './compile.js';
import { runChunk, type CallSpec, type Chunk, type ChunkResult, type Kind } from './kernel.js';
import type { FailureReport } from './messages.js';
import type { Plan } from './operations.js';
import { ProgressBar } from './progress.js';
import { reportOf, reviveError } from './remote-error.js';

export interface CollectiveCall {
  comm: Comm;
  root: number;
  progress: boolean;
  hasCtx: boolean;
  ctx: unknown;
  /** at the root: builds the plan and the function's source; throws on bad arguments */
  prepare: () => { plan: Plan; source: string; makeFrame?: (data: Record<string, unknown[]>) => unknown };
}

type Header = { ok: true; what: string; kind: Kind; source: string; hasCtx: boolean; ctx: unknown } | { ok: false; code: string; message: string };

type Outcome = { ok: true; out: ChunkResult } | { ok: false; report: FailureReport };

export async function runCollective(c: CollectiveCall): Promise<unknown> {
  const { comm, root } = c;
  const isRoot = comm.rank === root;
  let prepared: ReturnType<CollectiveCall['prepare']> | null = null;
  let failure: unknown = null;
  let header: Header | undefined;
  if (isRoot) {
    try {
      prepared = c.prepare();
      header = { ok: true, what: prepared.plan.what, kind: prepared.plan.kind, source: prepared.source, hasCtx: c.hasCtx, ctx: c.ctx };
    } catch (e) {
      failure = e;
      const code = e instanceof TsmpiError ? e.code : 'ERR_ARG';
      header = { ok: false, code, message: (e as Error).message ?? String(e) };
    }
  }
  const h = (await comm.bcast(header, root)) as Header;
  if (!h.ok) {
    if (isRoot) throw failure;
    throw new TsmpiError(h.code as TsmpiError['code'], `on the root (rank ${root}): ${h.message}`);
  }

  let chunks: Chunk[] | undefined;
  let bounds: number[] = [];
  if (isRoot) {
    const plan = prepared!.plan;
    bounds = plan.bounds(comm.size, 'ranks');
    chunks = [];
    for (let r = 0; r < comm.size; r++) {
      const lo = bounds[Math.min(r, bounds.length - 1)]!;
      const hi = r + 1 < bounds.length ? bounds[r + 1]! : lo;
      chunks.push(plan.encode(lo, hi));
    }
  }
  const mine = (await comm.scatter(chunks, root)) as Chunk;

  const spec: CallSpec = { kind: h.kind, fn: () => undefined, ctx: h.ctx, hasCtx: h.hasCtx };
  let outcome: Outcome;
  let bar: ProgressBar | null = null;
  try {
    spec.fn = compileFunction(h.source);
    if (h.kind === 'groups') {
      if (isRoot && prepared!.makeFrame) spec.makeFrame = prepared!.makeFrame;
      else {
        const dfd = await loadDanfo();
        spec.makeFrame = (data) => new dfd.DataFrame(data);
      }
    }
    if (c.progress) {
      const underLauncher = !!process.env.TSMPI_CONTROL;
      if (underLauncher) {
        const { reportProgress } = await import('../../runtime/world.js');
        spec.tick = (done) => reportProgress(done, mine.n);
        reportProgress(0, mine.n);
      } else if (isRoot) {
        bar = new ProgressBar({ label: h.what, total: mine.n, unit: prepared!.plan.unit });
        spec.tick = (done) => bar!.update(done);
      }
    }
    outcome = { ok: true, out: runChunk(spec, mine) };
    if (c.progress && process.env.TSMPI_CONTROL) {
      const { reportProgress } = await import('../../runtime/world.js');
      reportProgress(mine.n, mine.n);
    }
  } catch (e) {
    outcome = { ok: false, report: reportOf(e) };
  } finally {
    bar?.update(mine.n);
    bar?.finish();
  }

  const all = (await comm.gather(outcome, root)) as Outcome[] | undefined;
  if (!isRoot) return undefined;
  const plan = prepared!.plan;
  let worst: { report: FailureReport; rank: number } | null = null;
  all!.forEach((o, rank) => {
    if (!o.ok && (!worst || o.report.at < worst.report.at)) worst = { report: o.report, rank };
  });
  if (worst) {
    const { report, rank } = worst as { report: FailureReport; rank: number };
    const where = report.at >= 0 ? plan.locate(report.at, report.column) : { where: 'its start', position: -1 };
    throw reviveError(report, plan.what, { ...where, where: `${where.where} on rank ${rank}` });
  }
  const outs: ChunkResult[] = [];
  const used: number[] = [0];
  for (let r = 0; r < comm.size; r++) {
    if (r + 1 < bounds.length) {
      outs.push((all![r] as { ok: true; out: ChunkResult }).out);
      used.push(bounds[r + 1]!);
    }
  }
  return plan.finish(outs, used);
}
