/**
 * Ranks on this machine as worker threads of the launcher's process (`--threads`).
 * Each worker runs rank-main with its own environment, argv, module instances and
 * heap limit; its stdout/stderr are streams here, like a child's pipes. The ranks
 * join through the same control socket as child processes do; between them,
 * messages go through shared memory (runtime/transport/shm.ts): the rings are
 * made here and handed to every worker at start.
 */
import { availableParallelism, totalmem } from 'node:os';
import { MessageChannel, Worker } from 'node:worker_threads';
import { CONTROL_PORT_WORKER_DATA, PortListener } from '../../runtime/transport/port.js';
import type { Listener } from '../../runtime/transport/transport.js';
import { ShmMesh, SHM_WORKER_DATA } from '../../runtime/transport/shm-mesh.js';
import { rankMain } from '../os/paths.js';
import { LocalHost, type LocalHostSpec, type RankChild } from './local-host.js';

/** `TSMPI_THREAD_HEAP_MB`: the heap limit of every thread rank (default: a share of the machine's memory). */
export const THREAD_HEAP_ENV = 'TSMPI_THREAD_HEAP_MB';
/** `TSMPI_SHM_SPIN_US`: how long an idle rank busy-waits before it parks (default 10 µs with a core per rank, else 0). */
export const SPIN_ENV = 'TSMPI_SHM_SPIN_US';
/** After a worker exits, how long its output streams may take to end. */
const OUTPUT_GRACE_MS = 2000;

export function threadHeapMb(ranks: number, env: NodeJS.ProcessEnv = process.env): number {
  const forced = Number(env[THREAD_HEAP_ENV]);
  if (Number.isInteger(forced) && forced >= 16) return forced;
  const share = Math.floor(((totalmem() / (1 << 20)) * 0.75) / Math.max(1, ranks));
  return Math.min(4096, Math.max(512, share));
}

function spinUs(ranks: number, env: NodeJS.ProcessEnv = process.env): number {
  const forced = Number(env[SPIN_ENV]);
  if (env[SPIN_ENV] !== undefined && Number.isFinite(forced) && forced >= 0) return forced;
  // Spinning while ranks outnumber cores starves the rank that would answer.
  return ranks <= availableParallelism() ? 10 : 0;
}

export class ThreadHost extends LocalHost {
  private readonly mesh: ShmMesh;
  private readonly heapMb: number;
  /** Control links are MessagePorts: they deliver a rank's last messages even as its thread ends. */
  private readonly ports = new PortListener();

  constructor(spec: LocalHostSpec) {
    super(spec);
    // the job's -x variables count too (on another host they are not in process.env)
    const env = { ...process.env, ...spec.env };
    this.mesh = ShmMesh.create(spec.ranks, spinUs(spec.ranks.length, env));
    this.heapMb = threadHeapMb(spec.ranks.length, env);
  }

  protected override controlListener(): Promise<Listener> {
    return Promise.resolve(this.ports);
  }

  protected override startRank(rank: number, env: NodeJS.ProcessEnv, argv: string[]): RankChild {
    const { port1, port2 } = new MessageChannel();
    this.ports.accept(port1);
    const w = new Worker(this.s.rankMain ?? rankMain, {
      argv,
      env,
      execArgv: [],
      stdin: rank === 0,
      stdout: true,
      stderr: true,
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
      workerData: { [SHM_WORKER_DATA]: this.mesh.forRank(rank), [CONTROL_PORT_WORKER_DATA]: port2 },
      transferList: [port2],
      name: `tsmpi rank ${rank}`,
    });
    return workerChild(w, rank, this.heapMb);
  }

  protected override ended(rank: number): void {
    this.mesh.markGone(rank);
  }
}

function workerChild(w: Worker, rank: number, heapMb: number): RankChild {
  let killedBy: NodeJS.Signals | null = null;
  let exited = false;
  let online = false;
  // Uncaught errors are reported by rank-main itself; what reaches here is what
  // it could not catch: no heap left, or a worker that never started.
  let lastError: (Error & { code?: string }) | null = null;
  const errorCbs: ((e: Error) => void)[] = [];
  const exitCbs: ((code: number | null, signal: NodeJS.Signals | null, why?: string) => void)[] = [];
  const closeCbs: (() => void)[] = [];
  w.on('online', () => (online = true));
  w.on('error', (e: Error & { code?: string }) => {
    lastError = e;
    if (!online) for (const cb of errorCbs) cb(e);
  });
  if (rank === 0 && w.stdin) {
    w.stdin.on('error', () => {});
    process.stdin.pipe(w.stdin);
  }
  let streams = 0;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const cb of closeCbs) cb();
  };
  const streamEnded = () => {
    if (++streams === 2 && exited) close();
  };
  w.stdout.on('end', streamEnded);
  w.stderr.on('end', streamEnded);
  w.on('exit', (code) => {
    exited = true;
    if (rank === 0 && w.stdin) {
      process.stdin.unpipe(w.stdin);
      process.stdin.pause();
    }
    const e = lastError;
    let why: string | undefined;
    if (e && online) {
      why =
        e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `rank ${rank} ran out of memory (its heap limit is ${heapMb} MB; TSMPI_THREAD_HEAP_MB sets it)\n${e.stack ?? e.message}`
          : (e.stack ?? `${e.name}: ${e.message}`);
    }
    const c = why && code === 0 ? 1 : code;
    for (const cb of exitCbs) cb(killedBy ? null : c, killedBy, why);
    if (streams === 2) close();
    else setTimeout(close, OUTPUT_GRACE_MS).unref();
  });
  return {
    pid: process.pid,
    stdout: w.stdout,
    stderr: w.stderr,
    onError: (cb) => errorCbs.push(cb),
    onExit: (cb) => exitCbs.push(cb),
    onClose: (cb) => closeCbs.push(cb),
    kill: (signal) => {
      if (exited) return;
      killedBy ??= signal;
      void w.terminate();
    },
    ref: (on) => (on ? w.ref() : w.unref()),
  };
}
