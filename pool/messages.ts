/**
 * What a pool and its workers say to each other. Over a rank host's control
 * channel a message travels as one codec-encoded value (runtime/wire/codec.ts:
 * everything structuredClone takes, typed arrays as raw bytes), base64 in a
 * `{ t: 'pool' }` control message; over a communicator (Pool.fromComm) as the
 * value itself.
 */
import { decodeValue, encodeValue, flatten, jsonSafe } from '../runtime/wire/codec.js';
import type { ErrorReport } from '../runtime/fn/remote-error.js';

/** A function a worker keeps, by id: source text, or an export of a compiled module. */
export type FnDef =
  | { kind: 'source'; source: string }
  /** `url`: where the compiled module is, when the worker can read it; else `code`, written beside the worker */
  | { kind: 'module'; url: string | null; code: string | null; name: string; export: string };

export interface StagedBytes {
  name: string;
  data: Uint8Array;
}

export type ToWorker =
  | { t: 'def'; fn: number; def: FnDef }
  /** one call: fn(...args) */
  | { t: 'run'; task: number; fn: number; args: unknown[] }
  /** a map batch: fn(item, ctx) for each item; the values come back as one array */
  | { t: 'batch'; task: number; fn: number; items: unknown[]; ctx: unknown; hasCtx: boolean }
  | { t: 'exec'; task: number; argv: string[]; env: Record<string, string>; files: StagedBytes[] }
  /** no more work: exit */
  | { t: 'bye' };

export interface FailReport extends ErrorReport {
  /** a batch: the item that failed (its position in the batch) */
  at?: number;
  /** the value cannot be sent back (ERR_SERIALIZE) */
  unsendable?: boolean;
}

export type FromWorker =
  | { t: 'ready'; pid: number; host: string; cwd: string }
  /** `ms`: time spent running */
  | { t: 'ok'; task: number; value: unknown; ms: number }
  | { t: 'fail'; task: number; report: FailReport }
  | { t: 'partial'; task: number; value: unknown }
  | { t: 'progress'; task: number; done: number; total: number }
  /** after bye (Pool.fromComm: the rank stops serving) */
  | { t: 'gone' };

/** The `pool` control message carrying `m`: as JSON itself when JSON carries it exactly, else packed. */
export function toControl(m: ToWorker | FromWorker): { t: 'pool'; b: string; j?: unknown } {
  return jsonSafe(m) ? { t: 'pool', b: '', j: m } : { t: 'pool', b: pack(m) };
}

export function fromControl(c: { b: string; j?: unknown }): unknown {
  return c.b === '' ? c.j : unpack(c.b);
}

/** A value → text for a control message (throws ERR_SERIALIZE naming the part that cannot travel). */
export function pack(value: unknown): string {
  const e = encodeValue(value);
  return `${e.enc}.${e.elem}.${flatten(e).toString('base64')}`;
}

export function unpack(text: string): unknown {
  const a = text.indexOf('.');
  const b = text.indexOf('.', a + 1);
  return decodeValue(Number(text.slice(0, a)), Number(text.slice(a + 1, b)), Buffer.from(text.slice(b + 1), 'base64'));
}
