// A tsmpid for the benchmarks: started in its own process group on a loopback
// address, resolved once it says where it listens. Shared by bench/run.js and
// bench/pool-section.mjs.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const TSMPID = join(ROOT, 'dist', 'launcher', 'tsmpid.js');

/** Kill a child and its process group (it was started detached). */
export function killGroup(child, signal = 'SIGKILL') {
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {}
  }
}

/**
 * Start `tsmpid --listen HOST:0`; resolves `{ child, port }`. `child.daemonLog()`
 * is the tail of its stderr. `onSpawn` is called with the child at once,
 * `onExit` once the daemon process ends.
 */
export function startBenchDaemon({ host, authorizedKeys, workdir, slots, onSpawn = () => {}, onExit = () => {} }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSMPID, '--listen', `${host}:0`, '--authorized-keys', authorizedKeys, '--workdir', workdir, '--slots', String(slots)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    onSpawn(child);
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      killGroup(child);
      reject(new Error(`tsmpid on ${host} did not say where it listens within 15 s: ${err.trim().slice(-300)}`));
    }, 15_000);
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      const m = /tsmpid: listening on (\S+):(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[2]) });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d) => {
      err += d;
      if (err.length > 100_000) err = err.slice(-50_000);
    });
    child.once('exit', (code, sig) => {
      onExit(child);
      clearTimeout(timer);
      reject(new Error(`tsmpid on ${host} exited (${sig ?? code}): ${err.trim().slice(-300)}`));
    });
    child.daemonLog = () => err;
  });
}
