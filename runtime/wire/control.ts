/**
 * Control messages between the launcher (or a host daemon) and ranks: typed,
 * versioned, JSON in CONTROL frames. A peer that speaks another version gets a
 * clear ERR_PROTOCOL instead of undefined behaviour.
 */
import { TsmpiError } from '../errors.js';

/** 2: `sample` / `sampled` (the live counters of `--monitor`). */
export const CONTROL_VERSION = 3;

/** One operation a rank is blocked in, for timeout and deadlock reports. */
export interface BlockedOp {
  op: string;
  comm: number;
  seconds: number;
}

/** A message that arrived and was not matched yet. */
export interface QueuedMessage {
  comm: number;
  /** collective traffic (tag = the collective's sequence number) */
  collective?: boolean;
  source: number;
  tag: number;
  bytes: number;
}

export type RankToLauncher =
  | { t: 'hello'; v: number; rank: number; pid: number; secret: string }
  | { t: 'listening'; address: string }
  /** `code`: the TsmpiError code of the uncaught error, when it is one */
  | { t: 'failed'; stack: string; code?: string }
  | { t: 'abort'; code: number }
  | { t: 'partial'; value: unknown; time: number }
  | { t: 'progress'; done: number; total: number }
  /** reply to `dump`; `sent`/`received` count messages, for deadlock detection */
  | { t: 'blocked'; ops: BlockedOp[]; queued: QueuedMessage[]; sent?: number; received?: number }
  /** sent as the rank ends, for --report */
  | { t: 'stats'; stats: RankStats }
  /** reply to `sample` (--monitor, only while a browser watches): what it is blocked in, its traffic so far */
  | { t: 'sampled'; ops: BlockedOp[]; traffic: RankTraffic }
  /** a task-pool worker's message to its pool (tsmpi/pool): a codec-encoded value, base64; or '' and the value itself in `j` when JSON carries it exactly */
  | { t: 'pool'; b: string; j?: unknown };

/** A rank's traffic so far (every message, collectives included). */
export interface RankTraffic {
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
}

/** What a rank did, for `tsmpirun --report`. */
export interface RankStats {
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  maxRssKiB: number;
}

export type LauncherToRank =
  /** `crowded`: some host runs more ranks than it has cores (every rank picks the same algorithms) */
  | { t: 'table'; addresses: (string | null)[]; crowded?: boolean }
  | { t: 'gone'; rank: number }
  | { t: 'dump' }
  /** --monitor: say what you are blocked in and your counters (answered with `sampled`) */
  | { t: 'sample' }
  /** the script is ready: import it (ranks start while the launcher compiles) */
  | { t: 'run' }
  | { t: 'refused'; code: string; message: string }
  /** the task pool's message to one of its workers (tsmpi/pool): as from a worker */
  | { t: 'pool'; b: string; j?: unknown };

const RANK_FIELDS: Record<RankToLauncher['t'], Record<string, string>> = {
  hello: { v: 'number', rank: 'number', pid: 'number', secret: 'string' },
  listening: { address: 'string' },
  failed: { stack: 'string' },
  abort: { code: 'number' },
  partial: { time: 'number' },
  progress: { done: 'number', total: 'number' },
  blocked: { ops: 'array', queued: 'array' },
  stats: { stats: 'object' },
  sampled: { ops: 'array', traffic: 'object' },
  pool: { b: 'string' },
};

const LAUNCHER_FIELDS: Record<LauncherToRank['t'], Record<string, string>> = {
  table: { addresses: 'array' },
  gone: { rank: 'number' },
  dump: {},
  sample: {},
  run: {},
  refused: { code: 'string', message: 'string' },
  pool: { b: 'string' },
};

function check<T>(value: unknown, table: Record<string, Record<string, string>>, who: string): T {
  if (typeof value !== 'object' || value === null) throw bad(`${who} message is not an object`);
  const t = (value as { t?: unknown }).t;
  if (typeof t !== 'string' || !Object.hasOwn(table, t)) throw bad(`${who} message of unknown type ${JSON.stringify(t)}`);
  for (const [field, type] of Object.entries(table[t]!)) {
    const got = (value as Record<string, unknown>)[field];
    const ok = type === 'array' ? Array.isArray(got) : typeof got === type && got !== null;
    if (!ok) throw bad(`${who} message '${t}' lacks the ${type} field '${field}'`);
  }
  return value as T;
}

function bad(message: string): TsmpiError {
  return new TsmpiError('ERR_PROTOCOL', message);
}

export function parseRankMessage(value: unknown): RankToLauncher {
  return check<RankToLauncher>(value, RANK_FIELDS, 'rank');
}

export function parseLauncherMessage(value: unknown): LauncherToRank {
  return check<LauncherToRank>(value, LAUNCHER_FIELDS, 'launcher');
}

// ---- launcher ↔ host daemon (tsmpid), over TLS -------------------------------

/** A file the launcher stages into a remote job folder. */
export interface StagedFile {
  name: string;
  size: number;
  sha256: string;
}

export type DaemonToLauncher =
  | { t: 'challenge'; v: number; nonce: string; host: string; platform: string; slots: number; staging: string }
  | { t: 'welcome' }
  | { t: 'refused'; code: string; message: string }
  | { t: 'started'; pids: number[]; listenHost: string }
  | { t: 'rank'; rank: number; m: RankToLauncher }
  | { t: 'exit'; rank: number; code: number | null; signal: string | null }
  | { t: 'pong' }
  /**
   * An agent started by ssh or srun says hello (it has no challenge: ssh
   * authenticated the launcher, a Slurm node proves the job's token).
   * `listenHost`: where its ranks listen; `peerHost`: the launcher's address as
   * this host sees it (ssh), or ''; `node`: the Slurm node name; `token`: the
   * job's call-back token (Slurm only, over TLS to the pinned launcher).
   */
  | { t: 'agent'; v: number; host: string; platform: string; slots: number; listenHost: string; peerHost: string; node?: string; token?: string };

export type LauncherToDaemon =
  | { t: 'auth'; key: string; sig: string; staging: string }
  | {
      t: 'job';
      size: number;
      ranks: number[];
      secret: string;
      hostId: string;
      env: Record<string, string>;
      args: string[];
      script: string;
      files: StagedFile[];
      tlsKey: string;
      tlsCert: string;
      /** the user allowed more ranks than the host's slots (--oversubscribe) */
      oversubscribe?: boolean;
      /** how the host starts its ranks (v3): worker threads of one per-job process, or processes (absent: processes) */
      mode?: 'threads' | 'processes';
    }
  /** a staged file's SHA-256, after its last chunk, when `job` left it empty */
  | { t: 'digest'; file: number; sha256: string }
  | { t: 'start' }
  | { t: 'ctl'; rank: number; m: LauncherToRank }
  | { t: 'kill'; signal: string }
  | { t: 'ping' }
  /** to an agent after its hello: the key staged chunks are sealed with */
  | { t: 'open'; fileKey: string };

const DAEMON_FIELDS: Record<DaemonToLauncher['t'], Record<string, string>> = {
  challenge: { v: 'number', nonce: 'string', host: 'string', platform: 'string', slots: 'number', staging: 'string' },
  welcome: {},
  refused: { code: 'string', message: 'string' },
  started: { pids: 'array', listenHost: 'string' },
  rank: { rank: 'number', m: 'object' },
  exit: { rank: 'number' },
  pong: {},
  agent: { v: 'number', host: 'string', platform: 'string', slots: 'number', listenHost: 'string', peerHost: 'string' },
};

const TO_DAEMON_FIELDS: Record<LauncherToDaemon['t'], Record<string, string>> = {
  auth: { key: 'string', sig: 'string', staging: 'string' },
  job: {
    size: 'number',
    ranks: 'array',
    secret: 'string',
    hostId: 'string',
    env: 'object',
    args: 'array',
    script: 'string',
    files: 'array',
    tlsKey: 'string',
    tlsCert: 'string',
  },
  digest: { file: 'number', sha256: 'string' },
  start: {},
  ctl: { rank: 'number', m: 'object' },
  kill: { signal: 'string' },
  ping: {},
  open: { fileKey: 'string' },
};

export function parseDaemonMessage(value: unknown): DaemonToLauncher {
  const m = check<DaemonToLauncher>(value, DAEMON_FIELDS, 'daemon');
  if (m.t === 'rank') parseRankMessage(m.m);
  return m;
}

export function parseToDaemon(value: unknown): LauncherToDaemon {
  const m = check<LauncherToDaemon>(value, TO_DAEMON_FIELDS, 'launcher');
  if (m.t === 'ctl') parseLauncherMessage(m.m);
  if (m.t === 'job') {
    const ints = (xs: unknown[]) => xs.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
    if (!ints(m.ranks) || !Number.isSafeInteger(m.size) || m.size < 1 || m.ranks.some((r) => r >= m.size)) throw bad('job: bad ranks or size');
    if (!m.args.every((a) => typeof a === 'string')) throw bad('job: args must be strings');
    if (Object.values(m.env).some((v) => typeof v !== 'string')) throw bad('job: env values must be strings');
    if (m.mode !== undefined && m.mode !== 'threads' && m.mode !== 'processes') throw bad("job: mode must be 'threads' or 'processes'");
    for (const f of m.files) {
      if (typeof f !== 'object' || f === null || typeof f.name !== 'string' || !Number.isSafeInteger(f.size) || f.size < 0 || typeof f.sha256 !== 'string') {
        throw bad('job: a file entry needs name, size and sha256');
      }
    }
  }
  return m;
}

/**
 * Between an agent and the per-job process that runs a host's ranks as worker
 * threads (launcher/agent/thread-job*.ts), over a Node IPC channel (structured
 * clone). Both ends are the same install: the agent starts the other.
 */
export type AgentToThreadJob =
  | {
      t: 'job';
      ranks: number[];
      size: number;
      secret: string;
      /** the job folder (also the process's cwd) and its private .tsmpi folder */
      dir: string;
      own: string;
      compiled: string;
      script: string;
      args: string[];
      env: Record<string, string>;
      host: string;
      hostId: string;
      listenTls: string;
      /** each rank's local listen address, in `ranks` order */
      listen: string[];
    }
  | { t: 'ctl'; rank: number; m: LauncherToRank }
  | { t: 'kill'; signal: string }
  /** the link to the launcher is congested: pause / resume the ranks' output */
  | { t: 'hold'; on: boolean };

export type ThreadJobToAgent =
  | { t: 'rank'; rank: number; m: RankToLauncher }
  | { t: 'out'; rank: number; stream: 1 | 2; data: Uint8Array }
  /** the rank ended and its output and control messages are all sent */
  | { t: 'exit'; rank: number; code: number | null; signal: string | null };
