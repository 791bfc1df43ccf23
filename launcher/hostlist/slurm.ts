/**
 * Hosts from a Slurm allocation: `SLURM_JOB_NODELIST` (a Slurm hostlist such as
 * `node[01-03,07],gpu-a,rack[1-2]-n[1-2]`) with the slots of each node from
 * `SLURM_TASKS_PER_NODE` (`2(x3),1`), or, when that is unset,
 * `SLURM_JOB_CPUS_PER_NODE` (same format). Every node is reached through its
 * tsmpid on the default port.
 */
import { TsmpiError } from '../../runtime/errors.js';
import { DEFAULT_PORT, type HostSpec } from './hosts.js';

/** Refuse lists that would expand past this many names (a typo like `n[0-99999999]`). */
const MAX_HOSTS = 100_000;

function bad(variable: string, text: string, why: string): TsmpiError {
  return new TsmpiError('ERR_ARG', `${variable}=${JSON.stringify(text)}: ${why}`);
}

/** Split at commas outside brackets. */
function topLevelItems(text: string, variable: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '[') {
      if (depth++ > 0) throw bad(variable, text, 'nested brackets');
    } else if (c === ']') {
      if (--depth < 0) throw bad(variable, text, 'a "]" without its "["');
    } else if (c === ',' && depth === 0) {
      items.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw bad(variable, text, 'a "[" without its "]"');
  items.push(text.slice(start));
  return items.map((s) => s.trim());
}

/** The values of one bracket, `01-03,07` → ['01','02','03','07'] (zero padding kept from the lower bound). */
function expandRanges(body: string, variable: string, text: string): string[] {
  const out: string[] = [];
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw bad(variable, text, `cannot read the range ${JSON.stringify(part)}`);
    const width = m[1]!.length;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw bad(variable, text, `the range ${part} runs backwards`);
    if (hi - lo + 1 + out.length > MAX_HOSTS) throw bad(variable, text, `expands to more than ${MAX_HOSTS} names`);
    for (let v = lo; v <= hi; v++) out.push(String(v).padStart(width, '0'));
  }
  return out;
}

/** Expand a Slurm hostlist expression into host names, in Slurm's order. */
export function expandHostlist(text: string, variable = 'SLURM_JOB_NODELIST'): string[] {
  const names: string[] = [];
  for (const item of topLevelItems(text, variable)) {
    if (item === '') throw bad(variable, text, 'an empty host name');
    if (/\s/.test(item)) throw bad(variable, text, `a host name with a space: ${JSON.stringify(item)}`);
    // literal text and bracket groups; the leftmost group varies slowest
    let partial: string[] = [''];
    for (const piece of item.split(/(\[[^\]]*\])/)) {
      if (piece === '') continue;
      const values = piece.startsWith('[') ? expandRanges(piece.slice(1, -1), variable, text) : [piece];
      if (partial.length * values.length + names.length > MAX_HOSTS) throw bad(variable, text, `expands to more than ${MAX_HOSTS} names`);
      partial = partial.flatMap((p) => values.map((v) => p + v));
    }
    names.push(...partial);
  }
  return names;
}

/** Expand `2(x3),1` → [2, 2, 2, 1]. */
export function expandTasksPerNode(text: string, variable = 'SLURM_TASKS_PER_NODE'): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:\(x(\d+)\))?$/.exec(part.trim());
    if (!m) throw bad(variable, text, `cannot read ${JSON.stringify(part)}`);
    const count = Number(m[1]);
    const times = m[2] === undefined ? 1 : Number(m[2]);
    if (times < 1 || times + out.length > MAX_HOSTS) throw bad(variable, text, `bad repeat count in ${JSON.stringify(part)}`);
    for (let i = 0; i < times; i++) out.push(count);
  }
  return out;
}

/**
 * The hosts of the Slurm job this process runs in, or null outside Slurm (no
 * SLURM_JOB_NODELIST). A node given 0 tasks is left out.
 */
export function slurmHosts(env: NodeJS.ProcessEnv): HostSpec[] | null {
  const nodelist = env.SLURM_JOB_NODELIST?.trim();
  if (!nodelist) return null;
  const names = expandHostlist(nodelist);
  const slotsVar = env.SLURM_TASKS_PER_NODE?.trim() ? 'SLURM_TASKS_PER_NODE' : env.SLURM_JOB_CPUS_PER_NODE?.trim() ? 'SLURM_JOB_CPUS_PER_NODE' : null;
  let slots: (number | null)[] = names.map(() => null);
  if (slotsVar !== null) {
    const counts = expandTasksPerNode(env[slotsVar]!.trim(), slotsVar);
    if (counts.length !== names.length) {
      throw new TsmpiError('ERR_ARG', `${slotsVar}=${JSON.stringify(env[slotsVar])} gives ${counts.length} nodes, SLURM_JOB_NODELIST names ${names.length}`);
    }
    slots = counts;
  }
  const hosts: HostSpec[] = [];
  names.forEach((name, i) => {
    if (slots[i] === 0) return;
    hosts.push({ name, slots: slots[i] ?? null, maxSlots: null, port: DEFAULT_PORT });
  });
  if (hosts.length === 0) throw new TsmpiError('ERR_ARG', 'the Slurm allocation gives no node any task');
  return hosts;
}
