/**
 * Where standalone dataframe calls run: a tsmpi/pool `Pool`, the plugin's own
 * (local workers, started on first use, reused by later calls, ended by
 * `closePool()` or when the process ends, as every Pool's workers are) or one
 * the user passes as the `pool` option (local or remote hosts).
 *
 * A call is a stream of chunk tasks (chunk-task.ts): packed lazily, a few
 * ahead of the workers (two per worker, so none waits for its next one), their
 * results gathered in chunk order. The first failure rejects the call at once;
 * the chunks not started are dropped, and on the plugin's own pool the ones
 * still running are cancelled (their workers are ended and replaced).
 */
import { availableParallelism } from 'node:os';
import { TsmpiError } from '../../runtime/errors.js';
import type { Pool } from '../../pool/pool.js';
import type { Future } from '../../pool/future.js';
import { task, type ModuleTask } from '../../pool/task.js';
import type { ChunkCall, ChunkOutcome } from './chunk-task.js';
import type { Chunk, ChunkResult, Kind } from './kernel.js';
import type { FailureReport } from './messages.js';
import { Handoff, isFileRef, putFile, takeFile, type FileRef } from './handoff.js';

export interface PoolCall {
  kind: Kind;
  source: string;
  ctx: unknown;
  hasCtx: boolean;
  /** chunks in flight at once (asked again as workers come up) */
  window: () => number;
  /** number of chunks; `encode(i)` builds chunk i when it is sent */
  chunks: number;
  encode(i: number): Chunk;
  /** items done so far, as it changes (only when set) */
  progress?: (done: number) => void;
  /** a chunk's result came in; `ms`: the worker's time on it */
  onChunk?: (chunk: number, ms: number) => void;
  /** end the workers of chunks still running when the call fails (the plugin's own pool) */
  cancelRunning: boolean;
  /** chunks and results as files on this machine (the plugin's own pool: every worker is local) */
  handoff: Handoff | null;
}

/** `fn` failed in a worker. */
export class WorkerFailure extends Error {
  constructor(
    readonly report: FailureReport,
    readonly pid: number,
  ) {
    super(report.message);
  }
}

/** What the plugin needs of a pool (a user's Pool, from whichever copy of tsmpi/pool). */
export interface PoolLike {
  submit(fn: ModuleTask, ...args: unknown[]): Future<unknown>;
  readonly workers: { pid: number; host: string }[];
}

export function isPoolLike(p: unknown): p is PoolLike {
  const o = p as Partial<PoolLike> | null;
  return typeof o === 'object' && o !== null && typeof o.submit === 'function' && typeof (o as { map?: unknown }).map === 'function';
}

/** pool/pool.ts SUBMIT_PIPELINED (not imported: collective-mode ranks never load the pool). */
const SUBMIT_PIPELINED = Symbol.for('tsmpi.pool.submitPipelined');

/** The chunk task, beside this module (.js when built, .ts when run from source). */
const CHUNK_TASK = task(new URL(import.meta.url.endsWith('.ts') ? './chunk-task.ts' : './chunk-task.js', import.meta.url), 'runDataframeChunk');

/** Run a call: results per chunk, in chunk order. */
export function runOnPool(pool: PoolLike, call: PoolCall): Promise<ChunkResult[]> {
  if (call.chunks === 0) return Promise.resolve([]);
  const { handoff } = call;
  const header: ChunkCall = { kind: call.kind, source: call.source, ctx: call.ctx, hasCtx: call.hasCtx, progress: !!call.progress, resultDir: handoff?.dir ?? null };
  const results: ChunkResult[] = new Array(call.chunks);
  const chunkDone = new Float64Array(call.chunks);
  const sizes = new Float64Array(call.chunks);
  const live = new Map<number, Future<unknown>>();
  const files = new Map<number, FileRef>();
  let doneItems = 0;
  let answered = 0;
  let next = 0;
  let settled = false;

  // Two chunks in flight per worker (the pool's pipelined submit; a Pool
  // without it gets them one at a time).
  const submit = ((pool as unknown as Record<symbol, PoolLike['submit']>)[SUBMIT_PIPELINED] ?? pool.submit) as PoolLike['submit'];
  return new Promise<ChunkResult[]>((resolve, reject) => {
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      if (err) {
        for (const [i, f] of live) {
          const queued = f.state === 'queued';
          if (queued || call.cancelRunning) {
            f.cancel();
            // Its worker will not read it now (dropped, or ended).
            if (files.has(i)) handoff!.drop(files.get(i)!);
          }
        }
        live.clear();
        reject(err);
      } else resolve(results);
    };
    const advance = (i: number, done: number) => {
      const delta = done - chunkDone[i]!;
      if (delta <= 0) return;
      chunkDone[i] = done;
      doneItems += delta;
      call.progress?.(doneItems);
    };
    const fill = () => {
      while (!settled && next < call.chunks && live.size < Math.max(1, call.window())) {
        const i = next++;
        let data: Chunk;
        try {
          data = call.encode(i);
        } catch (e) {
          finish(e as Error);
          return;
        }
        sizes[i] = data.n;
        let arg: Chunk | FileRef = data;
        if (handoff) {
          try {
            files.set(i, (arg = putFile(handoff.name('c'), data)));
          } catch {
            // No room in /dev/shm (a small tmpfs): this chunk travels in the message.
          }
        }
        const f = submit.call(pool, CHUNK_TASK, header, arg);
        live.set(i, f);
        if (call.progress) f.onPartial((v) => advance(i, Math.min(sizes[i]!, Number((v as { done?: number })?.done) || 0)));
        f.then(
          (value) => {
            const o = value as ChunkOutcome;
            if (settled) {
              // a result that came in after the call failed: nobody reads its file
              if (o.ok && isFileRef(o.out)) handoff?.drop(o.out);
              return;
            }
            live.delete(i);
            if (!o.ok) {
              finish(new WorkerFailure(o.report, o.pid));
              return;
            }
            try {
              results[i] = isFileRef(o.out) ? (takeFile(o.out) as ChunkResult) : o.out;
            } catch (e) {
              finish(e as Error);
              return;
            }
            call.onChunk?.(i, o.ms);
            advance(i, sizes[i]!);
            if (++answered === call.chunks) finish(null);
            else fill();
          },
          (err: unknown) => {
            if (settled) return;
            const e = err as Error;
            live.delete(i);
            const code = e instanceof TsmpiError ? e.code : null;
            finish(code === 'ERR_PEER_LOST' || code === 'ERR_CANCELLED' || code === 'ERR_TIMEOUT' ? new TsmpiError(code, `tsmpi/dataframe: ${e.message}`, { cause: e }) : e);
          },
        );
      }
    };
    fill();
  });
}

/** The plugin's own pool: local workers, as many as the largest `workers` asked so far. */
let own: { pool: Pool; size: number; handoff: Handoff } | null = null;

/** The hand-off folder of the plugin's own pool, when `pool` is it. */
export function handoffFor(pool: PoolLike): Handoff | null {
  return own && own.pool === pool ? own.handoff : null;
}

export async function standalonePool(workers: number): Promise<Pool> {
  if (own && own.size >= workers) return own.pool;
  // Loaded on first use: collective-mode ranks never need it.
  const { Pool } = await import('../../pool/pool.js');
  if (own && own.size >= workers) return own.pool;
  // A bigger pool: the old one finishes what it runs, then ends.
  if (own) {
    const old = own;
    void old.pool.close().finally(() => old.handoff.close());
  }
  const pool = new Pool({ workers });
  own = { pool, size: workers, handoff: new Handoff() };
  await allStarted(pool, workers);
  return pool;
}

/** How long the plugin's own pool waits for its workers to start before its first call. */
export const WORKER_START_TIMEOUT_MS = 30_000;

/**
 * Start the pool's workers (a pool starts them on first use) and wait until
 * all are up, so that the first call spreads over all of them (and they all
 * count as the pool's processes). A worker that cannot start is reported by the
 * call that needs it; this only stops waiting.
 */
async function allStarted(pool: Pool, n: number): Promise<void> {
  pool.submit(() => 0).then(
    () => {},
    () => {},
  );
  const until = performance.now() + WORKER_START_TIMEOUT_MS;
  while (pool.workers.length < n && performance.now() < until && own?.pool === pool) await new Promise((r) => setTimeout(r, 2));
}

/** End the plugin's own pool (a later call starts a new one). */
export async function closeStandalonePool(): Promise<void> {
  const p = own;
  own = null;
  if (p) {
    await p.pool.close();
    p.handoff.close();
  }
}

/** The plugin's own pool's worker process ids. */
export function standalonePids(): number[] {
  return own?.pool.workers.map((w) => w.pid) ?? [];
}

/** Workers a call on `pool` spreads over when it does not say: its live workers, or at least this machine's cores. */
export function defaultWorkers(pool: PoolLike | null): number {
  return Math.max(1, pool?.workers.length ?? 0, availableParallelism());
}
