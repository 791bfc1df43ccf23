/**
 * Columns as transferable values: a slice of a frame's column (or of a list of
 * results) ⇄ typed arrays. Pure, no danfojs.
 *
 * Lossless for everything a danfojs frame holds: numbers (NaN, -0, ±Infinity)
 * travel as a Float64Array, booleans as bytes, strings as one joined string with
 * lengths, and `null` / `undefined` in any of these as a mask beside the data
 * (0 = a value, 1 = null, 2 = undefined). Rows of numbers of one width (a
 * function returning `[x, y]`) travel as one Float64Array. Anything else (dates,
 * objects, mixed columns) falls back to a plain array, which the transport clones
 * with the structured-clone algorithm.
 *
 * A slice is classified on its own: one column may travel as numbers in one chunk
 * and as a plain array in the next.
 */

export type Packed =
  | { k: 'f64'; n: number; data: Float64Array; miss: Uint8Array | null }
  | { k: 'bool'; n: number; data: Uint8Array; miss: Uint8Array | null }
  | { k: 'str'; n: number; text: string; lens: Uint32Array; miss: Uint8Array | null }
  | { k: 'f64rows'; n: number; width: number; data: Float64Array }
  | { k: 'any'; n: number; values: unknown[] };

const VALUE = 0;
const NULL = 1;
const UNDEF = 2;

/** danfojs's notion of a missing value (`utils.isEmpty`): null, undefined, NaN. */
export function isMissing(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === 'number' && v !== v);
}

/** Pack `src[lo..hi)`. */
export function packSlice(src: ArrayLike<unknown>, lo = 0, hi = src.length): Packed {
  return pack(hi - lo, (i) => src[lo + i]);
}

/** Pack column `j` of `rows[lo..hi)` (row-major data, as `df.values`). */
export function packRowColumn(rows: ArrayLike<ArrayLike<unknown>>, j: number, lo: number, hi: number): Packed {
  return pack(hi - lo, (i) => rows[lo + i]![j]);
}

/**
 * Pack columns `0..width` of `rows[lo..hi)` at once. A slice of numbers only
 * (the common case) is read in one pass over the rows; anything else column by
 * column.
 */
export function packRows(rows: ArrayLike<ArrayLike<unknown>>, width: number, lo: number, hi: number): Packed[] {
  const n = hi - lo;
  const data = Array.from({ length: width }, () => new Float64Array(n));
  let numeric = true;
  outer: for (let i = 0; i < n; i++) {
    const row = rows[lo + i]!;
    if (row.length !== width) {
      numeric = false;
      break;
    }
    for (let j = 0; j < width; j++) {
      const v = row[j];
      if (typeof v !== 'number') {
        numeric = false;
        break outer;
      }
      data[j]![i] = v;
    }
  }
  if (numeric) return data.map((d) => ({ k: 'f64', n, data: d, miss: null }));
  return Array.from({ length: width }, (_, j) => packRowColumn(rows, j, lo, hi));
}

function pack(n: number, get: (i: number) => unknown): Packed {
  let first: unknown;
  for (let i = 0; i < n; i++) {
    const v = get(i);
    if (v !== null && v !== undefined) {
      first = v;
      break;
    }
  }
  switch (typeof first) {
    case 'number':
    case 'undefined':
      return packNumbers(n, get) ?? packAny(n, get);
    case 'boolean':
      return packBooleans(n, get) ?? packAny(n, get);
    case 'string':
      return packStrings(n, get) ?? packAny(n, get);
    default:
      if (Array.isArray(first)) return packNumberRows(n, get) ?? packAny(n, get);
      return packAny(n, get);
  }
}

function packNumbers(n: number, get: (i: number) => unknown): Packed | null {
  const data = new Float64Array(n);
  let miss: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    const v = get(i);
    if (typeof v === 'number') data[i] = v;
    else if (v === null || v === undefined) {
      miss ??= new Uint8Array(n);
      miss[i] = v === null ? NULL : UNDEF;
      data[i] = NaN;
    } else return null;
  }
  return { k: 'f64', n, data, miss };
}

function packBooleans(n: number, get: (i: number) => unknown): Packed | null {
  const data = new Uint8Array(n);
  let miss: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    const v = get(i);
    if (v === true) data[i] = 1;
    else if (v === false) data[i] = 0;
    else if (v === null || v === undefined) {
      miss ??= new Uint8Array(n);
      miss[i] = v === null ? NULL : UNDEF;
    } else return null;
  }
  return { k: 'bool', n, data, miss };
}

function packStrings(n: number, get: (i: number) => unknown): Packed | null {
  const lens = new Uint32Array(n);
  const parts: string[] = new Array(n);
  let miss: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    const v = get(i);
    if (typeof v === 'string') {
      parts[i] = v;
      lens[i] = v.length;
    } else if (v === null || v === undefined) {
      miss ??= new Uint8Array(n);
      miss[i] = v === null ? NULL : UNDEF;
      parts[i] = '';
    } else return null;
  }
  return { k: 'str', n, text: parts.join(''), lens, miss };
}

function packNumberRows(n: number, get: (i: number) => unknown): Packed | null {
  const r0 = get(0);
  if (!Array.isArray(r0)) return null;
  const width = r0.length;
  const data = new Float64Array(n * width);
  for (let i = 0; i < n; i++) {
    const r = get(i);
    if (!Array.isArray(r) || r.length !== width) return null;
    const o = i * width;
    for (let j = 0; j < width; j++) {
      // `j in r` rejects holes, which read as undefined but are not values
      const v: unknown = r[j];
      if (typeof v !== 'number' || !(j in r)) return null;
      data[o + j] = v;
    }
  }
  return { k: 'f64rows', n, width, data };
}

function packAny(n: number, get: (i: number) => unknown): Packed {
  const values: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) values[i] = get(i);
  return { k: 'any', n, values };
}

/**
 * The values for reading by position. A column of numbers without missing
 * values stays a Float64Array (its elements read as the same numbers); anything
 * else becomes a plain array.
 */
export function reader(p: Packed): ArrayLike<unknown> {
  if (p.k === 'f64' && p.miss === null) return p.data;
  return toArray(p);
}

/** The values as a plain array, exactly as they were packed. */
export function toArray(p: Packed): unknown[] {
  const n = p.n;
  const out: unknown[] = new Array(n);
  switch (p.k) {
    case 'f64': {
      const { data, miss } = p;
      for (let i = 0; i < n; i++) out[i] = miss === null || miss[i] === VALUE ? data[i] : missing(miss[i]!);
      return out;
    }
    case 'bool': {
      const { data, miss } = p;
      for (let i = 0; i < n; i++) out[i] = miss === null || miss[i] === VALUE ? data[i] === 1 : missing(miss[i]!);
      return out;
    }
    case 'str': {
      const { text, lens, miss } = p;
      let off = 0;
      for (let i = 0; i < n; i++) {
        const len = lens[i]!;
        out[i] = miss === null || miss[i] === VALUE ? text.slice(off, off + len) : missing(miss[i]!);
        off += len;
      }
      return out;
    }
    case 'f64rows': {
      const { data, width } = p;
      for (let i = 0; i < n; i++) {
        const row: number[] = new Array(width);
        const o = i * width;
        for (let j = 0; j < width; j++) row[j] = data[o + j]!;
        out[i] = row;
      }
      return out;
    }
    case 'any':
      return p.values;
  }
}

/** Copy the values into `target` from position `at` on. */
export function copyInto(p: Packed, target: unknown[], at: number): void {
  if (p.k === 'f64' && p.miss === null) {
    const d = p.data;
    for (let i = 0; i < p.n; i++) target[at + i] = d[i];
    return;
  }
  const a = toArray(p);
  for (let i = 0; i < a.length; i++) target[at + i] = a[i];
}

function missing(code: number): null | undefined {
  return code === NULL ? null : undefined;
}
