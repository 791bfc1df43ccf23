/**
 * Control messages between the launcher (or a host daemon) and ranks: typed,
 * versioned, JSON in CONTROL frames. A peer that speaks another version gets a
 * clear ERR_PROTOCOL instead of undefined behaviour.
 */
import { TsmpiError } from '../errors.js';

export const CONTROL_VERSION = 1;

/** One operation a rank is blocked in, for timeout and deadlock reports. */
export interface BlockedOp {
  op: string;
  comm: number;
  seconds: number;
}

/** A message that arrived and was not matched yet. */
export interface QueuedMessage {
  comm: number;
  source: number;
  tag: number;
  bytes: number;
}

export type RankToLauncher =
  | { t: 'hello'; v: number; rank: number; pid: number; secret: string }
  | { t: 'listening'; address: string }
  | { t: 'failed'; stack: string }
  | { t: 'abort'; code: number }
  | { t: 'partial'; value: unknown; time: number }
  | { t: 'progress'; done: number; total: number }
  | { t: 'blocked'; ops: BlockedOp[]; queued: QueuedMessage[] };

export type LauncherToRank =
  | { t: 'table'; addresses: (string | null)[] }
  | { t: 'gone'; rank: number }
  | { t: 'dump' }
  | { t: 'refused'; code: string; message: string };

const RANK_FIELDS: Record<RankToLauncher['t'], Record<string, string>> = {
  hello: { v: 'number', rank: 'number', pid: 'number', secret: 'string' },
  listening: { address: 'string' },
  failed: { stack: 'string' },
  abort: { code: 'number' },
  partial: { time: 'number' },
  progress: { done: 'number', total: 'number' },
  blocked: { ops: 'array', queued: 'array' },
};

const LAUNCHER_FIELDS: Record<LauncherToRank['t'], Record<string, string>> = {
  table: { addresses: 'array' },
  gone: { rank: 'number' },
  dump: {},
  refused: { code: 'string', message: 'string' },
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
