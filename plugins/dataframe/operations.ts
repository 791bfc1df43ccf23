/**
 * The four operations, each as a plan: what the items are, how a range of them
 * becomes a chunk of plain columns, and how the results become exactly what the
 * serial danfojs call returns. Runs at the root only; it never imports danfojs:
 * results are built with the classes of the frame the caller passed in, by the
 * same constructor calls danfojs 1.2.0 makes in `apply`, `applyMap`, `map` and
 * `groupby().apply` (or by replaying the serial call over the results).
 */
import { TsmpiError } from '../../runtime/errors.js';
import { copyInto, packRows, packSlice, reader, toArray, type Packed } from './columns.js';
import type { Chunk, ChunkResult, GroupResult, Kind } from './kernel.js';

/** The parts of a danfojs DataFrame this module reads. */
export interface FrameLike {
  readonly ndim: number;
  readonly values: unknown[][];
  readonly index: unknown[];
  readonly columns: string[];
  readonly dtypes: string[];
  readonly config: object;
  readonly getColumnData: unknown[][];
  readonly ctypes: object;
  groupby(by: string[]): GroupbyLike;
}

/** The parts of a danfojs Series this module reads. */
export interface SeriesLike {
  readonly ndim: number;
  readonly values: unknown[];
  readonly index: unknown[];
  map(fn: (value: unknown, i: number) => unknown): unknown;
}

/** danfojs's Groupby internals used to rebuild the serial result. */
interface GroupbyLike {
  colDict: Record<string, Record<string, unknown[]>>;
  keyToValue: Record<string, unknown[]>;
  columnName: string[];
  colKeyDict(colDict: Record<string, unknown>): string[];
  concatGroups(colDict: Record<string, unknown>): unknown;
}

type Ctor = new (data: unknown, options?: Record<string, unknown>) => unknown;

export type Mode = 'pool' | 'ranks';

export interface Located {
  where: string;
  position: number;
  label?: unknown;
  column?: string;
}

export interface Plan {
  what: string;
  kind: Kind;
  /** progress unit */
  unit: string;
  /** items: rows, columns, values or groups */
  total: number;
  /**
   * Chunk boundaries (item positions, first 0, last `total`): for a pool of
   * `parts` workers (several chunks each), or for `parts` ranks (one each).
   */
  bounds(parts: number, mode: Mode): number[];
  encode(lo: number, hi: number): Chunk;
  /** results of every chunk, in order → the serial call's result */
  finish(outs: ChunkResult[], bounds: number[]): unknown;
  /** where item `at` is, for error messages */
  locate(at: number, column?: number): Located;
}

export function isFrame(v: unknown): v is FrameLike {
  const f = v as Partial<FrameLike> | null;
  return typeof f === 'object' && f !== null && f.ndim === 2 && Array.isArray(f.values) && typeof f.groupby === 'function';
}

export function isSeries(v: unknown): v is SeriesLike {
  const s = v as Partial<SeriesLike> | null;
  return typeof s === 'object' && s !== null && s.ndim === 1 && Array.isArray(s.values) && typeof s.map === 'function';
}

/** Cells per chunk the pool aims at (2 MiB of numbers). */
const CELLS_PER_CHUNK = 256 * 1024;

/** `parts` ranges of about equal size. */
export function evenBounds(total: number, parts: number): number[] {
  const p = Math.max(1, Math.min(parts, total));
  const b = [0];
  for (let k = 1; k <= p; k++) b.push(Math.round((total * k) / p));
  return total === 0 ? [0] : b;
}

/** Ranges of items whose weights add up to about the same. */
function weightedBounds(weights: readonly number[], parts: number): number[] {
  const n = weights.length;
  if (n === 0) return [0];
  const p = Math.max(1, Math.min(parts, n));
  const raw = weights.reduce((a, b) => a + b, 0);
  // All empty: count items instead.
  const w = raw > 0 ? (i: number) => weights[i]! : () => 1;
  const sum = raw > 0 ? raw : n;
  const b = [0];
  let acc = 0;
  for (let i = 0; i < n && b.length < p; i++) {
    acc += w(i);
    if (acc >= (sum * b.length) / p && i + 1 < n) b.push(i + 1);
  }
  b.push(n);
  return b;
}

/** Chunks for a pool of `workers`: enough to balance, small enough to stream. */
function poolChunks(items: number, cellsPerItem: number, workers: number): number {
  const byCells = Math.ceil((items * Math.max(1, cellsPerItem)) / CELLS_PER_CHUNK);
  return Math.min(items, Math.max(workers * 4, byCells));
}

function label(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function seriesClass(df: FrameLike): Ctor {
  // danfojs's own Series class, from the same copy of danfojs as the frame.
  return (df.ctypes as { constructor: Ctor }).constructor;
}

function frameClass(df: FrameLike): Ctor {
  return (df as unknown as { constructor: Ctor }).constructor;
}

/** danfojs `utils.is1DArray`: does `apply` return a Series (else a DataFrame)? */
function is1DArray(arr: unknown[]): boolean {
  const f = arr[0];
  return typeof f === 'number' || typeof f === 'string' || typeof f === 'boolean' || f === null;
}

function isDefaultIndex(index: unknown[]): boolean {
  for (let i = 0; i < index.length; i++) if (index[i] !== i) return false;
  return true;
}

function gather(outs: ChunkResult[], bounds: number[], total: number): unknown[] {
  const result: unknown[] = new Array(total);
  outs.forEach((o, k) => copyInto(o[0]!, result, bounds[k]!));
  return result;
}

/** df.apply(fn, { axis }) */
export function planApply(df: FrameLike, axis: 0 | 1): Plan {
  const what = 'parallelApply';
  if (axis === 1) {
    const rows = df.values;
    const width = Math.max(df.columns.length, rows.length > 0 ? rows[0]!.length : 0);
    return {
      what,
      kind: 'rows',
      unit: 'rows',
      total: rows.length,
      bounds: (parts, mode) => evenBounds(rows.length, mode === 'pool' ? poolChunks(rows.length, width, parts) : parts),
      encode: (lo, hi) => ({ start: lo, n: hi - lo, cols: packRows(rows, width, lo, hi) }),
      finish: (outs, bounds) => applyResult(df, gather(outs, bounds, rows.length), 1),
      locate: (at) => ({ where: `row ${at} (index ${label(df.index[at])})`, position: at, label: df.index[at] }),
    };
  }
  const cols = df.getColumnData;
  return {
    what,
    kind: 'cols',
    unit: 'columns',
    total: cols.length,
    bounds: (parts, mode) => evenBounds(cols.length, mode === 'pool' ? cols.length : parts),
    encode: (lo, hi) => ({ start: lo, n: hi - lo, cols: cols.slice(lo, hi).map((c) => packSlice(c)) }),
    finish: (outs, bounds) => applyResult(df, gather(outs, bounds, cols.length), 0),
    locate: (at) => ({ where: `column ${label(df.columns[at])}`, position: at, label: df.columns[at] }),
  };
}

/** What danfojs's DataFrame.apply builds from the list of results. */
function applyResult(df: FrameLike, result: unknown[], axis: 0 | 1): unknown {
  const labels = axis === 0 ? df.columns : df.index;
  if (is1DArray(result)) {
    const Series = seriesClass(df);
    // Without an index danfojs generates 0..n-1: the same index, without the
    // uniqueness check over a copy of a default one.
    if (axis === 1 && isDefaultIndex(labels)) return new Series(result, {});
    return new Series(result, { index: [...labels] });
  }
  const DataFrame = frameClass(df);
  return new DataFrame(result, {
    index: [...labels],
    columns: [...df.columns],
    dtypes: [...df.dtypes],
    config: { ...df.config },
  });
}

/** df.applyMap(fn) */
export function planApplyMap(df: FrameLike): Plan {
  const rows = df.values;
  const width = Math.max(df.columns.length, rows.length > 0 ? rows[0]!.length : 0);
  return {
    what: 'parallelApplyMap',
    kind: 'cells',
    unit: 'rows',
    total: rows.length,
    bounds: (parts, mode) => evenBounds(rows.length, mode === 'pool' ? poolChunks(rows.length, width, parts) : parts),
    encode: (lo, hi) => ({ start: lo, n: hi - lo, cols: packRows(rows, width, lo, hi) }),
    finish: (outs, bounds) => {
      const newData: unknown[][] = new Array(rows.length);
      outs.forEach((o, k) => {
        const cols = o.map(reader);
        const at = bounds[k]!;
        const n = bounds[k + 1]! - at;
        for (let i = 0; i < n; i++) {
          const len = rows[at + i]!.length;
          const row: unknown[] = new Array(len);
          for (let j = 0; j < len; j++) row[j] = cols[j]![i];
          newData[at + i] = row;
        }
      });
      const DataFrame = frameClass(df);
      return new DataFrame(newData, {
        index: [...df.index],
        columns: [...df.columns],
        dtypes: [...df.dtypes],
        config: { ...df.config },
      });
    },
    locate: (at, column) => ({
      where: `row ${at} (index ${label(df.index[at])})${column !== undefined ? `, column ${label(df.columns[column])}` : ''}`,
      position: at,
      label: df.index[at],
      ...(column !== undefined ? { column: df.columns[column] } : {}),
    }),
  };
}

/** series.map(fn) */
export function planMap(series: SeriesLike): Plan {
  const values = series.values;
  return {
    what: 'parallelMap',
    kind: 'values',
    unit: 'values',
    total: values.length,
    bounds: (parts, mode) => evenBounds(values.length, mode === 'pool' ? poolChunks(values.length, 1, parts) : parts),
    encode: (lo, hi) => ({ start: lo, n: hi - lo, cols: [packSlice(values, lo, hi)] }),
    finish: (outs, bounds) => {
      const data = gather(outs, bounds, values.length);
      // Replay the serial call over the results: same copy, same dtype inference.
      return series.map((_v, i) => data[i]);
    },
    locate: (at) => ({ where: `value ${at} (index ${label(series.index[at])})`, position: at, label: series.index[at] }),
  };
}

/** df.groupby(by).apply(fn) */
export function planGroupApply(df: FrameLike, by: string[]): Plan {
  for (const c of by) {
    if (!df.columns.includes(c)) throw new TsmpiError('ERR_ARG', `parallelGroupApply: there is no column ${label(c)} to group by (columns: ${df.columns.map(label).join(', ')})`);
  }
  const g = df.groupby(by);
  const keys = g.colKeyDict(g.colDict);
  const names = [...g.columnName];
  const sizes = keys.map((k) => {
    const first = names.length > 0 ? g.colDict[k]![names[0]!] : undefined;
    return first ? first.length : 0;
  });
  return {
    what: 'parallelGroupApply',
    kind: 'groups',
    unit: 'groups',
    total: keys.length,
    bounds: (parts, mode) => {
      if (mode === 'ranks') return weightedBounds(sizes, parts);
      const rows = sizes.reduce((a, b) => a + b, 0);
      return weightedBounds(sizes, Math.min(keys.length, Math.max(parts * 4, Math.ceil((rows * names.length) / CELLS_PER_CHUNK))));
    },
    encode: (lo, hi) => {
      const cols: Packed[] = names.map((name) => {
        const all: unknown[] = [];
        for (let k = lo; k < hi; k++) {
          const part = g.colDict[keys[k]!]![name]!;
          for (let i = 0; i < part.length; i++) all.push(part[i]);
        }
        return packSlice(all);
      });
      return { start: lo, n: hi - lo, cols, sizes: sizes.slice(lo, hi), names };
    },
    finish: (outs) => {
      const DataFrame = frameClass(df);
      const Series = seriesClass(df);
      const colDict: Record<string, unknown> = {};
      let k = 0;
      for (const o of outs) {
        for (const r of toArray(o[0]!) as GroupResult[]) colDict[keys[k++]!] = revive(r, DataFrame, Series);
      }
      return g.concatGroups(colDict);
    },
    locate: (at) => ({ where: `group ${label(keys[at])}`, position: at, label: g.keyToValue[keys[at]!] ?? keys[at] }),
  };
}

function revive(r: GroupResult, DataFrame: Ctor, Series: Ctor): unknown {
  if (r.t === 'value') return r.value;
  const options = { index: r.index, columns: r.columns, dtypes: r.dtypes, config: r.config };
  return r.t === 'frame' ? new DataFrame(r.data, options) : new Series(r.data, options);
}
