/**
 * Standalone mode: a pool of local worker processes, started on first use,
 * reused by later calls (one call at a time), and ended by `closePool()`, at
 * exit, on SIGINT/SIGTERM, or when the script dies of an uncaught error. A
 * worker whose root goes away (even by SIGKILL) notices and exits.
 *
 * Chunks are handed out as workers free up (two in flight per worker, so none
 * waits for the next). The first failure rejects the call at once; the workers
 * still busy with that call are ended (their chunks cancelled) and replaced on
 * the next call.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TsmpiError } from '../../runtime/errors.js';
import type { Chunk, ChunkResult, Kind } from './kernel.js';
import { readMessages, writeMessage, type FailureReport, type FromWorker } from './messages.js';

/** How long a new worker may take to say it is ready. */
export const WORKER_START_TIMEOUT_MS = 30_000;
/** Chunks in flight per worker. */
const DEPTH = 2;

export interface PoolCall {
  kind: Kind;
  source: string;
  ctx: unknown;
  hasCtx: boolean;
  /** how many workers to use */
  workers: number;
  /** number of chunks; `encode(i)` builds chunk i when it is sent */
  chunks: number;
  encode(i: number): Chunk;
  /** items done so far, as it changes (only when set) */
  progress?: (done: number) => void;
  /** a chunk's result came in; `ms`: the worker's time on it */
  onChunk?: (chunk: number, ms: number) => void;
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

interface Worker {
  child: ChildProcess;
  sock: Socket;
  pid: number;
  ready: boolean;
  dead: boolean;
  /** the call whose function this worker holds */
  call: number;
  /** chunks sent and not answered */
  inflight: Set<number>;
  onMessage: (m: FromWorker) => void;
  onExit: (why: string) => void;
}

let nextCall = 1;

export class Pool {
  private workers: Worker[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** Live worker processes' ids (tests look for leftovers). */
  get pids(): number[] {
    return this.workers.filter((w) => !w.dead).map((w) => w.pid);
  }

  /** Run a call: results per chunk, in chunk order. Calls run one at a time. */
  run(call: PoolCall): Promise<ChunkResult[]> {
    const p = this.tail.then(() => this.runNow(call));
    this.tail = p.catch(() => {});
    return p;
  }

  private runNow(call: PoolCall): Promise<ChunkResult[]> {
    if (this.closed) return Promise.reject(new TsmpiError('ERR_ARG', 'tsmpi/dataframe: the worker pool is closed'));
    if (call.chunks === 0) return Promise.resolve([]);
    const id = nextCall++;
    const used = this.ensure(Math.min(call.workers, call.chunks));
    const results: ChunkResult[] = new Array(call.chunks);
    const chunkDone = new Float64Array(call.chunks);
    const sizes = new Float64Array(call.chunks);
    let doneItems = 0;
    let answered = 0;
    let next = 0;
    let settled = false;

    return new Promise<ChunkResult[]>((resolve, reject) => {
      const finish = (err: Error | null) => {
        if (settled) return;
        settled = true;
        for (const w of used) {
          w.onMessage = () => {};
          w.onExit = () => {};
          if (err && w.inflight.size > 0) this.retire(w);
          w.inflight.clear();
          if (!w.dead) w.sock.unref();
        }
        if (err) reject(err);
        else resolve(results);
      };

      // One chunk to each worker with room per turn of the event loop, so the
      // pipes carry one chunk while the next is being packed.
      let again = false;
      const pump = () => {
        if (settled || again) return;
        for (const w of used) {
          if (next >= call.chunks) break;
          if (w.dead || w.inflight.size >= DEPTH) continue;
          const i = next++;
          let data: Chunk;
          try {
            data = call.encode(i);
          } catch (e) {
            finish(e as Error);
            return;
          }
          sizes[i] = data.n;
          try {
            if (w.call !== id) {
              writeMessage(w.sock, { t: 'call', call: id, kind: call.kind, source: call.source, ctx: call.ctx, hasCtx: call.hasCtx, progress: !!call.progress });
              w.call = id;
            }
            writeMessage(w.sock, { t: 'chunk', call: id, chunk: i, data });
          } catch (e) {
            finish(e as Error);
            return;
          }
          w.inflight.add(i);
        }
        if (next < call.chunks && used.some((w) => !w.dead && w.inflight.size < DEPTH)) {
          again = true;
          setImmediate(() => {
            again = false;
            pump();
          });
        }
      };

      for (const w of used) {
        w.sock.ref();
        w.onMessage = (m) => {
          if (settled || m.t === 'ready' || m.call !== id) return;
          if (m.t === 'progress') {
            const delta = m.done - chunkDone[m.chunk]!;
            if (delta > 0) {
              chunkDone[m.chunk] = m.done;
              doneItems += delta;
              call.progress?.(doneItems);
            }
            return;
          }
          w.inflight.delete(m.chunk);
          if (m.t === 'fail') {
            finish(new WorkerFailure(m.report, w.pid));
            return;
          }
          results[m.chunk] = m.out;
          call.onChunk?.(m.chunk, m.ms);
          doneItems += sizes[m.chunk]! - chunkDone[m.chunk]!;
          chunkDone[m.chunk] = sizes[m.chunk]!;
          call.progress?.(doneItems);
          if (++answered === call.chunks) finish(null);
          else pump();
        };
        w.onExit = (why) => {
          // Its chunks are lost, or no worker is left for the chunks not sent yet.
          if (w.inflight.size > 0 || used.every((x) => x.dead)) {
            finish(new TsmpiError('ERR_PEER_LOST', `tsmpi/dataframe: worker process ${w.pid} ${why} while running the call`));
          }
        };
      }
      pump();
    });
  }

  /** The first `n` workers, started as needed. */
  private ensure(n: number): Worker[] {
    this.workers = this.workers.filter((w) => !w.dead);
    while (this.workers.length < n) this.workers.push(this.start());
    installExitHooks(this);
    return this.workers.slice(0, n);
  }

  private start(): Worker {
    const { command, args } = workerCommand();
    const child = spawn(command, args, {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      env: process.env,
      windowsHide: true,
    });
    const sock = child.stdio[3] as Socket;
    const w: Worker = {
      child,
      sock,
      pid: child.pid ?? -1,
      ready: false,
      dead: false,
      call: 0,
      inflight: new Set(),
      onMessage: () => {},
      onExit: () => {},
    };
    const timer = setTimeout(() => {
      if (!w.ready) {
        w.onExit(`did not start within ${WORKER_START_TIMEOUT_MS / 1000} s`);
        this.retire(w);
      }
    }, WORKER_START_TIMEOUT_MS);
    timer.unref();
    readMessages<FromWorker>(
      sock,
      (m) => {
        if (m.t === 'ready') {
          w.ready = true;
          clearTimeout(timer);
        }
        w.onMessage(m);
      },
      (e) => {
        w.onExit(`sent a malformed message (${e.message})`);
        this.retire(w);
      },
    );
    sock.on('error', () => {});
    child.on('error', (e) => {
      clearTimeout(timer);
      w.dead = true;
      w.onExit(`could not start (${e.message})`);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      w.dead = true;
      w.onExit(signal ? `was ended by ${signal}` : `exited with code ${code}`);
    });
    child.unref();
    sock.unref();
    return w;
  }

  /** End a worker now (a cancelled chunk, a broken pipe). */
  private retire(w: Worker): void {
    w.dead = true;
    try {
      w.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  /** End every worker now, synchronously (exit hooks). */
  killAll(): void {
    for (const w of this.workers) this.retire(w);
    this.workers = [];
  }

  /** Close the pipes and wait for the workers to exit (SIGKILL after `graceMs`). */
  async close(graceMs = 2000): Promise<void> {
    this.closed = true;
    const ws = this.workers;
    this.workers = [];
    await Promise.all(
      ws.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
            w.child.once('exit', () => resolve());
            const t = setTimeout(() => this.retire(w), graceMs);
            w.child.once('exit', () => clearTimeout(t));
            w.sock.end();
          }),
      ),
    );
  }
}

/** How to start a worker: the built worker.js beside this module, or worker.ts through tsx. */
function workerCommand(): { command: string; args: string[] } {
  const js = fileURLToPath(new URL('./worker.js', import.meta.url));
  if (existsSync(js)) return { command: process.execPath, args: [js] };
  const ts = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const tsx = createRequire(import.meta.url).resolve('tsx');
  return { command: process.execPath, args: ['--import', pathToFileURL(tsx).href, ts] };
}

// Exit hooks: one set for the process, for whichever pool is current.
let hooked: Pool | null = null;
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const onExit = () => hooked?.killAll();
const onSignal = (signal: NodeJS.Signals) => {
  hooked?.killAll();
  // Alone with this signal: do what Node would have done without us.
  if (process.listenerCount(signal) === 1) {
    removeExitHooks();
    process.kill(process.pid, signal);
  }
};

function installExitHooks(pool: Pool): void {
  if (hooked === pool) return;
  removeExitHooks();
  hooked = pool;
  process.on('exit', onExit);
  for (const s of signals) process.on(s, onSignal);
}

export function removeExitHooks(): void {
  if (!hooked) return;
  hooked = null;
  process.removeListener('exit', onExit);
  for (const s of signals) process.removeListener(s, onSignal);
}
