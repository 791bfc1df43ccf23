/**
 * The one interface through which a job (launcher/job/job.ts) or a pool tells
 * the monitor what happens. Every call is cheap and O(1) (it only records
 * state); sampling that costs the ranks anything (`sample` control messages)
 * happens only while `watched` is true, that is while a browser is attached.
 */
import type { BlockedOp, RankTraffic } from '../../runtime/wire/control.js';

export type RankPhase = 'starting' | 'running' | 'exited';

export interface RankUpdate {
  host?: string;
  pid?: number;
  phase?: RankPhase;
  /** what the rank is blocked in now (empty: not blocked in tsmpi), from its last sample */
  blocked?: BlockedOp[];
  traffic?: RankTraffic;
  code?: number | null;
  signal?: string | null;
  /** ended by the launcher during teardown (not a failure of its own) */
  killed?: boolean;
  stack?: string | null;
}

export type WorkerPhase = 'starting' | 'idle' | 'busy' | 'lost';

export interface WorkerUpdate {
  host?: string;
  pid?: number;
  phase?: WorkerPhase;
  /** the task it runs (busy) */
  task?: number | null;
}

export type TaskPhase = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface TaskFailure {
  /** e.g. `task 17` */
  from: string;
  host?: string;
  name: string;
  message: string;
  /** the remote stack */
  stack: string;
}

export interface MonitorEnd {
  /** the exit status (tsmpirun's), or 0 for a pool that closed */
  code: number;
  /** one line, as printed on stderr */
  message: string;
  /** the failing rank, if one failed */
  rank?: number | null;
  stack?: string | null;
}

export interface MonitorFeed {
  /** a browser is attached: sources may sample (and only then) */
  readonly watched: boolean;
  /** called whenever `watched` changes; returns a function that stops the calls */
  onWatch(cb: (watched: boolean) => void): () => void;

  // ---- a job's ranks
  rank(rank: number, u: RankUpdate): void;
  output(rank: number, stream: 1 | 2, chunk: Uint8Array): void;
  /** the rank's output is complete (a last line without a newline is kept) */
  outputEnded(rank: number): void;

  // ---- both
  /** reportProgress of one source (a rank, a task, a map): the page sums them */
  progress(key: string, done: number, total: number): void;
  /** reportPartial: `from` is e.g. `rank 2` or `task 17` */
  partial(from: string, value: unknown, time: number): void;

  // ---- a pool's workers and tasks
  worker(id: string, u: WorkerUpdate): void;
  /** a task entered `phase` (a task first seen in a final phase is only counted) */
  task(id: number, phase: TaskPhase): void;
  failure(f: TaskFailure): void;

  /** the job or pool ended; the page shows it until the process exits */
  end(e: MonitorEnd): void;
}
