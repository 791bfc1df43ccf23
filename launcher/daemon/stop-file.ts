/**
 * Stopping a daemon without a signal. Windows has no SIGTERM a program can
 * catch (a signal from outside ends node.exe at once, as TerminateProcess
 * does), so tsmpid also stops cleanly, on every platform, when a file named
 * `tsmpid.stop` appears in its workdir: only who can write that folder can
 * stop it. `tsmpid --stop --workdir DIR` writes it and waits for the daemon's
 * `tsmpid.pid` to go away. Whatever way a daemon ends, the next one to start
 * on the workdir sweeps the job folders it left.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsmpiError } from '../../runtime/errors.js';

export const STOP_FILE = 'tsmpid.stop';
export const PID_FILE = 'tsmpid.pid';
const POLL_MS = 200;

/** Mark the workdir as served by this process; returns a function that unmarks it. */
export function writePidFile(workdir: string): () => void {
  const file = join(workdir, PID_FILE);
  // a stop request left from before this daemon is not meant for it
  rmSync(join(workdir, STOP_FILE), { force: true });
  writeFileSync(file, `${process.pid}\n`);
  return () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
}

/** Call `onStop` once a stop file appears in `workdir` (checked every 200 ms; never keeps the process alive). */
export function watchStopFile(workdir: string, onStop: () => void): () => void {
  const file = join(workdir, STOP_FILE);
  const timer = setInterval(() => {
    if (!existsSync(file)) return;
    clearInterval(timer);
    rmSync(file, { force: true });
    onStop();
  }, POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Ask the daemon serving `workdir` to stop, and wait until it has (its pid
 * file is gone). ERR_ARG when no daemon serves it, ERR_TIMEOUT when it does
 * not stop within `timeoutMs`.
 */
export async function requestStop(workdir: string, timeoutMs = 15_000): Promise<void> {
  const pidFile = join(workdir, PID_FILE);
  if (!existsSync(pidFile)) throw new TsmpiError('ERR_ARG', `no tsmpid serves ${workdir} (no ${PID_FILE} there)`);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!alive(pid)) {
    rmSync(pidFile, { force: true });
    throw new TsmpiError('ERR_ARG', `no tsmpid serves ${workdir}: the one that wrote ${PID_FILE} (pid ${pid}) is gone; its job folders are swept when the next one starts`);
  }
  writeFileSync(join(workdir, STOP_FILE), `${process.pid}\n`);
  const end = Date.now() + timeoutMs;
  while (existsSync(pidFile)) {
    if (Date.now() > end) throw new TsmpiError('ERR_TIMEOUT', `the tsmpid serving ${workdir} did not stop within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
