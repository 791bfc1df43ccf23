/**
 * The dataframe plugin's task on a tsmpi/pool worker (local or on a remote
 * host): run the user's function over one chunk of plain columns, the way
 * danfojs would call it, and pack the results. A pool worker imports this
 * module once (a module task, compiled once per pool and shipped with its local
 * imports); the user's function is compiled once per worker and call.
 *
 * No danfojs here unless the work is groups (the function is given a
 * DataFrame): rows, columns, cells and values never load it (it costs ~1 s).
 *
 * An error thrown by the function is returned, not thrown: the report keeps
 * the item (row, column, value or group) it happened at, which the root turns
 * into the error the call rejects with.
 */
// From 'tsmpi', not a relative path: the bundled task must reach the worker's
// own runtime (where the pool sends partial results), not a copy of it.
import { reportPartial } from 'tsmpi';
import { encodeValue } from '../../runtime/wire/codec.js';
import { compileFunction, loadDanfo } from './compile.js';
import { runChunk, type CallSpec, type Chunk, type ChunkResult, type Kind } from './kernel.js';
import type { FailureReport } from './messages.js';
import type { Packed } from './columns.js';
import { reportOf, unsendable } from './remote-error.js';
import { isFileRef, putFile, takeFile, type FileRef } from './handoff.js';

/** What every chunk of one call carries besides its data. */
export interface ChunkCall {
  kind: Kind;
  source: string;
  ctx: unknown;
  hasCtx: boolean;
  /** send `{ done }` partial results about every 100 ms */
  progress: boolean;
  /** a folder on this machine: the result goes into a file there (handoff.ts), not into the answer */
  resultDir: string | null;
}

export type ChunkOutcome =
  /** `ms`: the worker's time on the chunk (unpack, run, pack); `pid`: who ran it */
  | { ok: true; out: ChunkResult | FileRef; ms: number; pid: number }
  | { ok: false; report: FailureReport; pid: number };

/** How often a chunk reports how far it got. */
const PROGRESS_EVERY_MS = 100;

/** Compiled functions by source: a worker keeps the last few calls' functions. */
const compiled = new Map<string, Promise<CallSpec['fn']>>();
const KEEP = 8;

function compiledFor(source: string): Promise<CallSpec['fn']> {
  let f = compiled.get(source);
  if (!f) {
    f = (async () => compileFunction(source))();
    f.catch(() => {});
    if (compiled.size >= KEEP) compiled.delete(compiled.keys().next().value!);
    compiled.set(source, f);
  }
  return f;
}

/** The task: one chunk of a parallelApply / applyMap / map / groupApply call. */
let results = 0;

/** The task: one chunk of a parallelApply / applyMap / map / groupApply call (or the file that holds it). */
export async function runDataframeChunk(call: ChunkCall, data: Chunk | FileRef): Promise<ChunkOutcome> {
  const began = performance.now();
  const pid = process.pid;
  const chunk = isFileRef(data) ? (takeFile(data) as Chunk) : data;
  let spec: CallSpec;
  try {
    spec = { kind: call.kind, fn: await compiledFor(call.source), ctx: call.ctx, hasCtx: call.hasCtx };
    if (call.kind === 'groups') {
      const dfd = await loadDanfo();
      spec.makeFrame = (data) => new dfd.DataFrame(data);
    }
  } catch (e) {
    return { ok: false, report: { ...reportOf(e), compile: true }, pid };
  }
  if (call.progress) {
    let last = began;
    spec.tick = (done) => {
      const now = performance.now();
      if (now - last < PROGRESS_EVERY_MS) return;
      last = now;
      reportPartial({ done });
    };
  }
  let out: Packed[];
  try {
    out = runChunk(spec, chunk);
  } catch (e) {
    return { ok: false, report: reportOf(e), pid };
  }
  // Results that are not typed columns may hold what cannot travel: find the
  // item now, while its position is known.
  if (out.some((p) => p.k === 'any')) {
    try {
      encodeValue(out);
    } catch {
      return { ok: false, report: reportOf(firstUnsendable(out, chunk.start)), pid };
    }
  }
  let result: ChunkResult | FileRef = out;
  if (call.resultDir) {
    try {
      result = putFile(`${call.resultDir}/r-${pid}-${results++}`, out);
    } catch {
      // no room for the file: the result travels in the answer
    }
  }
  return { ok: true, out: result, ms: performance.now() - began, pid };
}

/** Find the result that cannot be sent, to name its row or group. */
function firstUnsendable(out: Packed[], start: number): unknown {
  for (const p of out) {
    if (p.k !== 'any') continue;
    for (let i = 0; i < p.values.length; i++) {
      try {
        encodeValue(p.values[i]);
      } catch {
        return unsendable(p.values[i], start + i);
      }
    }
  }
  return new Error('the results cannot be sent back');
}
