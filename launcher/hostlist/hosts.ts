/**
 * Hosts and slots: `--host h1[:slots],h2`, Open MPI hostfiles
 * (`name slots=N [max_slots=M] [port=P]`, `#` comments), and placing ranks.
 */
import { availableParallelism } from 'node:os';
import { TsmpiError } from '../../runtime/errors.js';

export const DEFAULT_PORT = 7470;

export interface HostSpec {
  name: string;
  /** slots given, or null when not said (localhost: the cores; remote: 1) */
  slots: number | null;
  maxSlots: number | null;
  port: number;
}

export function isLocalHost(name: string): boolean {
  return name === 'localhost';
}

function positiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new TsmpiError('ERR_ARG', `${what} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

/** Parse `--host a:2,b,c:4`. A host named twice adds its slots. */
export function parseHostList(text: string): HostSpec[] {
  const hosts: HostSpec[] = [];
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(.*))?$/.exec(item);
    if (!m) throw new TsmpiError('ERR_ARG', `--host: cannot read ${JSON.stringify(item)}`);
    const name = m[1]!.replace(/^\[(.*)\]$/, '$1');
    const slots = m[2] === undefined ? null : positiveInt(m[2], `--host ${name}: slots`);
    addHost(hosts, { name, slots, maxSlots: null, port: DEFAULT_PORT });
  }
  if (hosts.length === 0) throw new TsmpiError('ERR_ARG', '--host names no host');
  return hosts;
}

/** Parse an Open MPI hostfile. */
export function parseHostfile(text: string, file = 'hostfile'): HostSpec[] {
  const hosts: HostSpec[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const [name, ...fields] = line.split(/\s+/);
    if (name!.includes('=')) throw new TsmpiError('ERR_ARG', `${file}:${i + 1}: a line must start with a host name, got ${JSON.stringify(name)}`);
    const spec: HostSpec = { name: name!, slots: null, maxSlots: null, port: DEFAULT_PORT };
    for (const f of fields) {
      const m = /^([a-z_-]+)=(.*)$/.exec(f);
      if (!m) throw new TsmpiError('ERR_ARG', `${file}:${i + 1}: cannot read ${JSON.stringify(f)}`);
      const [, key, value] = m;
      const where = `${file}:${i + 1}: ${key}`;
      if (key === 'slots') spec.slots = positiveInt(value!, where);
      else if (key === 'max_slots' || key === 'max-slots') spec.maxSlots = positiveInt(value!, where);
      else if (key === 'port') {
        const p = positiveInt(value!, where);
        if (p > 65535) throw new TsmpiError('ERR_ARG', `${where} must be at most 65535`);
        spec.port = p;
      } else throw new TsmpiError('ERR_ARG', `${file}:${i + 1}: unknown field ${JSON.stringify(key)}`);
    }
    if (spec.maxSlots !== null && spec.slots !== null && spec.maxSlots < spec.slots) {
      throw new TsmpiError('ERR_ARG', `${file}:${i + 1}: max_slots is below slots`);
    }
    addHost(hosts, spec);
  });
  if (hosts.length === 0) throw new TsmpiError('ERR_ARG', `${file} names no host`);
  return hosts;
}

function addHost(hosts: HostSpec[], spec: HostSpec): void {
  const same = hosts.find((h) => h.name === spec.name && h.port === spec.port);
  if (!same) {
    hosts.push(spec);
    return;
  }
  same.slots = (same.slots ?? 1) + (spec.slots ?? 1);
  // a limit holds only where every line named one
  same.maxSlots = same.maxSlots !== null && spec.maxSlots !== null ? same.maxSlots + spec.maxSlots : null;
}

/** The slots of a host; when not given, its default (localhost: the cores; remote: 1), at most max_slots. */
export function slotsOf(h: HostSpec): number {
  if (h.slots !== null) return h.slots;
  const fallback = isLocalHost(h.name) ? availableParallelism() : 1;
  return h.maxSlots === null ? fallback : Math.min(fallback, h.maxSlots);
}

/**
 * May `h` take more ranks than its slots? `flag` is --oversubscribe (true),
 * --no-oversubscribe (false) or neither (null): this machine may by default, a
 * remote host only with --oversubscribe.
 */
export function mayOversubscribe(h: HostSpec, flag: boolean | null): boolean {
  return isLocalHost(h.name) ? flag !== false : flag === true;
}

export interface Placement {
  host: HostSpec;
  ranks: number[];
}

/**
 * Fill hosts in order, slot by slot. With oversubscription allowed, ranks past
 * the total slots go round the hosts again (up to max_slots where given).
 */
export function placeRanks(hosts: HostSpec[], n: number, canOverflow: (h: HostSpec) => boolean): Placement[] {
  const placed: Placement[] = hosts.map((host) => ({ host, ranks: [] }));
  let rank = 0;
  for (const p of placed) {
    const slots = slotsOf(p.host);
    while (p.ranks.length < slots && rank < n) p.ranks.push(rank++);
  }
  if (rank < n) {
    const total = hosts.reduce((s, h) => s + slotsOf(h), 0);
    const room = (p: Placement) => canOverflow(p.host) && (p.host.maxSlots === null || p.ranks.length < p.host.maxSlots);
    if (!placed.some(room)) {
      throw new TsmpiError('ERR_ARG', `${n} ranks need more than the ${total} slots available; add hosts or slots, or allow --oversubscribe`);
    }
    while (rank < n) {
      const before = rank;
      for (const p of placed) if (rank < n && room(p)) p.ranks.push(rank++);
      if (rank === before) throw new TsmpiError('ERR_ARG', `${n} ranks exceed the slots and max_slots of the hosts (${total} slots)`);
    }
  }
  return placed.filter((p) => p.ranks.length > 0);
}
