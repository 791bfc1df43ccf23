/** A job's private folder on the launcher's machine, and the folders killed launchers left. */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Remove job folders of launchers that no longer run (killed with SIGKILL).
 * Only folders this user owns, named tsmpi-*, holding a launcher.pid whose
 * process is gone.
 */
export function sweepStaleJobFolders(dir: string, keep: string): void {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith('tsmpi-'));
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (path === keep) continue;
    try {
      const st = statSync(path);
      if (!st.isDirectory() || (typeof process.getuid === 'function' && st.uid !== process.getuid())) continue;
      const pid = Number(readFileSync(join(path, 'launcher.pid'), 'utf8'));
      if (!Number.isInteger(pid) || pid <= 0 || processAlive(pid)) continue;
      rmSync(path, { recursive: true, force: true });
    } catch {
      // not a job folder, or not ours to judge
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
