/** Pool options, each checked with a message that names it (piscina's way). */
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { TsmpiError } from '../runtime/errors.js';
import { DEFAULT_KEY_DIR } from '../launcher/keys/keys.js';
import { isLocalHost, parseHostfile, parseHostList, slotsOf, type HostSpec } from '../launcher/hostlist/hosts.js';
import { join } from 'node:path';
import { splitCommand } from '../launcher/cli/args.js';
import type { Via } from './hosts.js';

export interface PoolOptions {
  /** local workers (default: the machine's cores; 0 for none) */
  workers?: number;
  /** as tsmpirun --host: 'localhost:2,hostB:4' */
  hosts?: string;
  /** as tsmpirun --hostfile */
  hostfile?: string;
  identity?: string;
  knownHosts?: string;
  via?: Via;
  sshCommand?: string;
  /** shipped once to every remote host's job folder (a task's cwd there) */
  files?: string[];
  /** times a task runs again on another worker when its worker or host was lost */
  retries?: number;
  /** ms per task run */
  taskTimeout?: number;
  /** one progress bar on stderr */
  progress?: boolean;
  /** a folder: results kept by task and arguments */
  cache?: string;
  /** [host:]port: the live web page */
  monitor?: string | number;
  /** local workers as processes (default: crash isolation, own pid) or as worker_threads (faster messages, start) */
  workerType?: WorkerType;
  /** MB of old-space heap per thread worker (default: what a process gets); a task over it loses its thread only */
  heapLimitMb?: number;
}

export type WorkerType = 'process' | 'thread';

export interface Settings {
  local: number;
  remote: { spec: HostSpec; count: number }[];
  identity: string;
  knownHosts: string;
  via: Via;
  /** split into words */
  sshCommand: string[] | null;
  files: string[];
  retries: number;
  taskTimeout: number | null;
  progress: boolean;
  cache: string | null;
  monitor: string | null;
  workerType: WorkerType;
  heapLimitMb: number | null;
}

const KNOWN = new Set(['workers', 'hosts', 'hostfile', 'identity', 'knownHosts', 'via', 'sshCommand', 'files', 'retries', 'taskTimeout', 'progress', 'cache', 'monitor', 'workerType', 'heapLimitMb']);

const bad = (name: string, want: string, got: unknown): TsmpiError =>
  new TsmpiError('ERR_ARG', `Pool: options.${name} must be ${want}, got ${typeof got === 'string' ? JSON.stringify(got) : got === null ? 'null' : Array.isArray(got) ? 'an array' : typeof got === 'object' ? 'an object' : String(got)}`);

function int(o: Record<string, unknown>, name: string, min: number): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(name, `an integer >= ${min}`, v);
  return v;
}

function str(o: Record<string, unknown>, name: string): string | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw bad(name, 'a non-empty string', v);
  return v;
}

/** `given`: the pool has workers of its own already (Pool.fromComm). */
export function readOptions(opts: unknown, given = false): Settings {
  if (opts === undefined) opts = {};
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new TsmpiError('ERR_ARG', `Pool: options must be an object, got ${opts === null ? 'null' : typeof opts}`);
  const o = opts as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new TsmpiError('ERR_ARG', `Pool: unknown option ${JSON.stringify(k)} (known: ${[...KNOWN].join(', ')})`);
  const workers = int(o, 'workers', 0);
  const hostsText = str(o, 'hosts');
  const hostfile = str(o, 'hostfile');
  if (hostsText !== undefined && hostfile !== undefined) throw new TsmpiError('ERR_ARG', 'Pool: give options.hosts or options.hostfile, not both');
  let hosts: HostSpec[] = [];
  if (hostsText !== undefined) hosts = parseHostList(hostsText);
  if (hostfile !== undefined) {
    let text: string;
    try {
      text = readFileSync(hostfile, 'utf8');
    } catch (e) {
      throw new TsmpiError('ERR_ARG', `Pool: options.hostfile: cannot read ${hostfile}: ${(e as Error).message}`);
    }
    hosts = parseHostfile(text, hostfile);
  }
  const via = o.via === undefined ? 'tsmpid' : o.via;
  if (via !== 'tsmpid' && via !== 'ssh') throw bad('via', "'tsmpid' or 'ssh'", via);
  const sshText = str(o, 'sshCommand') ?? null;
  const sshCommand = sshText === null ? null : splitCommand(sshText);
  if (sshCommand !== null && sshCommand.length === 0) throw bad('sshCommand', 'a command', sshText);
  if (sshCommand !== null && via !== 'ssh') throw new TsmpiError('ERR_ARG', "Pool: options.sshCommand needs via: 'ssh'");
  const files = o.files === undefined ? [] : o.files;
  if (!Array.isArray(files) || files.some((f) => typeof f !== 'string' || f === '')) throw bad('files', 'an array of file paths', files);
  for (const f of files as string[]) {
    try {
      readFileSync(f, { flag: 'r' }).length;
    } catch (e) {
      throw new TsmpiError('ERR_ARG', `Pool: options.files: cannot read ${f}: ${(e as Error).message}`);
    }
  }
  const retries = int(o, 'retries', 0) ?? 0;
  const taskTimeout = o.taskTimeout === undefined ? null : o.taskTimeout;
  if (taskTimeout !== null && (typeof taskTimeout !== 'number' || !Number.isFinite(taskTimeout) || taskTimeout <= 0)) throw bad('taskTimeout', 'a positive number of milliseconds', taskTimeout);
  if (o.progress !== undefined && typeof o.progress !== 'boolean') throw bad('progress', 'a boolean', o.progress);
  const cache = str(o, 'cache') ?? null;
  const monitor = o.monitor === undefined ? null : String(o.monitor);
  if (o.monitor !== undefined && (typeof o.monitor !== 'string' && typeof o.monitor !== 'number' || !/^(?:[^:]+:)?\d+$/.test(monitor!))) throw bad('monitor', "'[host:]port'", o.monitor);
  const workerType = o.workerType === undefined ? 'process' : o.workerType;
  if (workerType !== 'process' && workerType !== 'thread') throw bad('workerType', "'process' or 'thread'", workerType);
  const heapLimitMb = int(o, 'heapLimitMb', 16) ?? null;
  if (heapLimitMb !== null && workerType !== 'thread') throw new TsmpiError('ERR_ARG', "Pool: options.heapLimitMb needs workerType: 'thread'");

  // Hosts: 'localhost' entries add local workers; the others are remote.
  let local = workers;
  const remote: Settings['remote'] = [];
  for (const h of hosts) {
    if (isLocalHost(h.name)) local = (local ?? 0) + (h.slots ?? availableParallelism());
    else remote.push({ spec: h, count: slotsOf(h) });
  }
  if (local === undefined) local = hosts.length > 0 ? 0 : availableParallelism();
  if (local === 0 && remote.length === 0 && !given) throw new TsmpiError('ERR_ARG', 'Pool: options.workers is 0 and no hosts are given: the pool would have no worker');
  return {
    local,
    remote,
    identity: str(o, 'identity') ?? join(DEFAULT_KEY_DIR, 'id'),
    knownHosts: str(o, 'knownHosts') ?? join(DEFAULT_KEY_DIR, 'known_hosts'),
    via,
    sshCommand,
    files: files as string[],
    retries,
    taskTimeout: taskTimeout as number | null,
    progress: o.progress === true,
    cache,
    monitor,
    workerType,
    heapLimitMb,
  };
}
