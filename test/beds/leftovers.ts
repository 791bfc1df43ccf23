// Processes of a test case, found wherever they ended up (a rank orphaned by a
// killed agent is re-parented to init): every process whose environment holds
// one of the case's marker values. Zombies (state Z) are skipped: this
// machine's init reaps them only about once a second.
import { readdirSync, readFileSync } from 'node:fs';

export interface Found {
  pid: number;
  cmd: string;
}

export function marked(values: string[]): Found[] {
  const found: Found[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const env = readFileSync(`/proc/${name}/environ`, 'latin1');
      if (!values.some((v) => env.includes(v))) continue;
      found.push({ pid: Number(name), cmd: readFileSync(`/proc/${name}/cmdline`, 'latin1').replaceAll('\0', ' ').trim() });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Wait (bounded) until no process carries any of `values`; fail naming those left. */
export async function noneLeft(values: string[], ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const left = marked(values);
    if (left.length === 0) return;
    if (Date.now() > end) throw new Error(`processes left behind after ${ms} ms:\n${left.map((f) => `  ${f.pid} ${f.cmd}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
