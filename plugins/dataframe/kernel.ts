/**
 * The work itself: run the user's function over one chunk of plain values, the
 * way danfojs would call it, and pack the results. Used by pool workers and by
 * collective-mode ranks alike. No danfojs here: a group's DataFrame is built by
 * a constructor the caller passes in (only group work needs one).
 */
import { isMissing, packSlice, reader, toArray, type Packed } from './columns.js';

/**
 * - `rows`: df.apply axis 1: one item per row; `fn(row without missing values, ctx)`
 * - `cols`: df.apply axis 0: one item per column; `fn(column without missing values, ctx)`
 * - `cells`: df.applyMap: every value of the chunk's rows; `fn(value, ctx)`
 * - `values`: series.map: `fn(value, position)`, or `fn(value, ctx, position)` with a context
 * - `groups`: groupby(by).apply: one item per group; `fn(group DataFrame, ctx)`
 */
export type Kind = 'rows' | 'cols' | 'cells' | 'values' | 'groups';

export interface Chunk {
  /** position of the chunk's first item in the whole call */
  start: number;
  /** items in the chunk */
  n: number;
  /**
   * rows, cells: one per frame column, the chunk's rows; cols: one per item (a
   * whole column); values: one; groups: one per frame column, the rows of the
   * chunk's groups back to back
   */
  cols: Packed[];
  /** groups: rows in each group */
  sizes?: number[];
  /** groups: the frame's column names */
  names?: string[];
}

/** rows, cols, values, groups: one Packed of `n` results; cells: one per column. */
export type ChunkResult = Packed[];

/** `fn` threw (or returned something that cannot travel) at item `at`. */
export class ItemError {
  constructor(
    readonly at: number,
    readonly error: unknown,
    /** cells: the column of the value */
    readonly column?: number,
    /** the error came from sending the result, not from calling fn */
    readonly inResult = false,
  ) {}
}

export interface CallSpec {
  kind: Kind;
  fn: (...args: unknown[]) => unknown;
  ctx: unknown;
  hasCtx: boolean;
  /** groups: builds a DataFrame from `{ column: values }`, as danfojs's groupby does */
  makeFrame?: (data: Record<string, unknown[]>) => unknown;
  /** called every 5–20 ms or so (and after a slow item) with the items done so far in this chunk */
  tick?: (done: number) => void;
}

/**
 * Calls `tick` every few milliseconds whatever an item costs: the stride (items
 * between clock reads) doubles while items are cheap and halves when they are not.
 */
class Ticker {
  private countdown = 1;
  private stride = 1;
  private last = performance.now();
  constructor(private readonly tick: ((done: number) => void) | undefined) {}

  step(done: number): void {
    if (--this.countdown > 0 || !this.tick) return;
    const now = performance.now();
    const dt = now - this.last;
    this.last = now;
    if (dt < 5) this.stride = Math.min(this.stride * 2, 1 << 16);
    else if (dt > 20) this.stride = Math.max(1, this.stride >> 1);
    this.countdown = this.stride;
    this.tick(done);
  }
}

/** Run a chunk; throws ItemError at the first item whose call throws. */
export function runChunk(spec: CallSpec, chunk: Chunk): ChunkResult {
  switch (spec.kind) {
    case 'rows':
      return [packSlice(rows(spec, chunk))];
    case 'cols':
      return [packSlice(columns(spec, chunk))];
    case 'cells':
      return cells(spec, chunk).map((c) => packSlice(c));
    case 'values':
      return [packSlice(values(spec, chunk))];
    case 'groups':
      return [{ k: 'any', n: chunk.n, values: groups(spec, chunk) }];
  }
}

function rows(spec: CallSpec, chunk: Chunk): unknown[] {
  const { fn, ctx } = spec;
  const ticker = new Ticker(spec.tick);
  const cols = chunk.cols.map(reader);
  const width = cols.length;
  const n = chunk.n;
  const out: unknown[] = new Array(n);
  let i = 0;
  try {
    for (; i < n; i++) {
      const row: unknown[] = [];
      for (let j = 0; j < width; j++) {
        const v = cols[j]![i];
        if (!(v === null || v === undefined || (typeof v === 'number' && v !== v))) row.push(v);
      }
      out[i] = fn(row, ctx);
      ticker.step(i + 1);
    }
  } catch (e) {
    throw new ItemError(chunk.start + i, e);
  }
  return out;
}

function columns(spec: CallSpec, chunk: Chunk): unknown[] {
  const out: unknown[] = new Array(chunk.n);
  for (let k = 0; k < chunk.n; k++) {
    const col = toArray(chunk.cols[k]!).filter((v) => !isMissing(v));
    try {
      out[k] = spec.fn(col, spec.ctx);
    } catch (e) {
      throw new ItemError(chunk.start + k, e);
    }
    spec.tick?.(k + 1);
  }
  return out;
}

function cells(spec: CallSpec, chunk: Chunk): unknown[][] {
  const { fn, ctx } = spec;
  const ticker = new Ticker(spec.tick);
  const cols = chunk.cols.map(reader);
  const n = chunk.n;
  const out = cols.map(() => new Array<unknown>(n));
  let i = 0;
  let j = 0;
  try {
    // Row by row, as danfojs does: a function with side effects sees the same order.
    for (; i < n; i++) {
      for (j = 0; j < cols.length; j++) out[j]![i] = fn(cols[j]![i], ctx);
      ticker.step(i + 1);
    }
  } catch (e) {
    throw new ItemError(chunk.start + i, e, j);
  }
  return out;
}

function values(spec: CallSpec, chunk: Chunk): unknown[] {
  const { fn, ctx, hasCtx } = spec;
  const ticker = new Ticker(spec.tick);
  const col = reader(chunk.cols[0]!);
  const n = chunk.n;
  const out: unknown[] = new Array(n);
  let i = 0;
  try {
    if (hasCtx) {
      for (; i < n; i++) {
        out[i] = fn(col[i], ctx, chunk.start + i);
        ticker.step(i + 1);
      }
    } else {
      for (; i < n; i++) {
        out[i] = fn(col[i], chunk.start + i);
        ticker.step(i + 1);
      }
    }
  } catch (e) {
    throw new ItemError(chunk.start + i, e);
  }
  return out;
}

/**
 * What a group's result looks like on the wire: danfojs objects as their parts
 * (rebuilt at the root with the root's own classes), anything else as itself.
 */
export type GroupResult =
  | { t: 'frame'; data: unknown[]; index: unknown[]; columns: string[]; dtypes: string[]; config: Record<string, unknown> }
  | { t: 'series'; data: unknown[]; index: unknown[]; columns: string[]; dtypes: string[]; config: Record<string, unknown> }
  | { t: 'value'; value: unknown };

function groups(spec: CallSpec, chunk: Chunk): GroupResult[] {
  const { fn, ctx, makeFrame } = spec;
  if (!makeFrame) throw new Error('internal: group work without a DataFrame constructor');
  const names = chunk.names ?? [];
  const cols = chunk.cols.map(toArray);
  const sizes = chunk.sizes ?? [];
  const out: GroupResult[] = new Array(chunk.n);
  let off = 0;
  for (let k = 0; k < chunk.n; k++) {
    const size = sizes[k]!;
    const data: Record<string, unknown[]> = {};
    for (let j = 0; j < names.length; j++) data[names[j]!] = cols[j]!.slice(off, off + size);
    off += size;
    try {
      out[k] = describeGroupResult(fn(makeFrame(data), ctx));
    } catch (e) {
      throw new ItemError(chunk.start + k, e);
    }
    spec.tick?.(k + 1);
  }
  return out;
}

interface FrameParts {
  values: unknown[];
  index: unknown[];
  columns: string[];
  dtypes: string[];
  config: object;
  $isSeries?: boolean;
}

function isNdFrame(v: unknown): v is FrameParts {
  if (typeof v !== 'object' || v === null) return false;
  const f = v as Partial<FrameParts>;
  return Array.isArray(f.values) && Array.isArray(f.index) && Array.isArray(f.columns) && Array.isArray(f.dtypes) && typeof f.$isSeries === 'boolean';
}

export function describeGroupResult(r: unknown): GroupResult {
  if (isNdFrame(r)) {
    return {
      t: r.$isSeries ? 'series' : 'frame',
      data: r.values,
      index: r.index,
      columns: r.columns,
      dtypes: r.dtypes,
      config: { ...(r.config as Record<string, unknown>) },
    };
  }
  return { t: 'value', value: r };
}
