// One small harness for tests that run real jobs: spawn tsmpirun (or any node
// command) as a real process, with a hard time bound, and collect everything.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const tsmpirunJs = join(root, 'dist', 'launcher', 'tsmpirun.js');
export const fixture = (name: string) => join(root, 'test', 'fixtures', name);
export const example = (name: string) => join(root, 'examples', name);

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** the child, for tests that signal it while it runs */
  child: ChildProcess;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
  /** called once the process started */
  onStart?: (child: ChildProcess) => void;
  /** called with each stdout chunk as it arrives */
  onStdout?: (text: string, child: ChildProcess) => void;
}

/** Run a command; kill it (and fail) if it outlives `timeoutMs`. */
export function run(cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  const t0 = performance.now();
  const child = spawn(cmd, args, {
    cwd: o.cwd ?? root,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c;
    o.onStdout?.(c.toString(), child);
  });
  child.stderr!.on('data', (c: Buffer) => (stderr += c));
  o.onStart?.(child);
  const limit = o.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${limit} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, limit);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, child });
    });
  });
}

/** Run `tsmpirun ARGS…` with this checkout's build. */
export function tsmpirun(args: string[], o: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [tsmpirunJs, ...args], o);
}

/** Is a process with this pid still alive? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Wait until `cond()` holds, or fail after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A process has ended: no such pid, or a zombie not reaped yet (PID 1 here reaps lazily). */
export function gone(pid: number): boolean {
  if (!alive(pid)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return !alive(pid);
  }
}

/** The `pid RANK PID` lines fixtures print (tagged or not), in rank order. */
export function pidsOf(stdout: string): number[] {
  const pids: number[] = [];
  for (const m of stdout.matchAll(/^(?:\[\d+\] )?pid (\d+) (\d+)$/gm)) pids[Number(m[1])] = Number(m[2]);
  return pids;
}
