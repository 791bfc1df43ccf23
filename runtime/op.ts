/**
 * Reduction operations (MPI_Op). The predefined ops work on numbers, bigints,
 * booleans (logical ops) and element-wise on typed arrays and (nested) arrays of
 * numbers; MAXLOC/MINLOC on `[value, index]` pairs. Any `(a, b) => c` function is
 * an op too: assumed associative, not commutative, so it is applied as the left
 * fold in rank order. Values an op does not fit reject with ERR_OP.
 */
import { TsmpiError } from './errors.js';

type Typed = Exclude<NodeJS.TypedArray, DataView> | Buffer;
type Kernel = (a: Typed, b: Typed, out: Typed, n: number) => Typed;

/** How a predefined op combines two scalars, as JavaScript source and as a function. */
interface ScalarRule {
  /** expression over `x` and `y` for generated typed-array kernels (null: no kernel) */
  expr: string | null;
  num?: (x: number, y: number) => number;
  big?: (x: bigint, y: bigint) => bigint;
  bool?: (x: boolean, y: boolean) => boolean;
  /** integer typed arrays only (bitwise ops) */
  integersOnly?: boolean;
}

export class Op {
  /** @internal */
  constructor(
    readonly name: string,
    /** commutative ops may be combined in any order */
    readonly commutative: boolean,
    private readonly combineFn: (a: unknown, b: unknown, into: 'a' | 'b' | null) => unknown,
    /** @internal element-wise over typed arrays (eligible for chunked, in-place algorithms) */
    readonly elementwise: boolean,
    private readonly fitsFn: (v: unknown) => boolean = () => true,
  ) {}

  /** @internal ERR_OP when one rank's own value cannot be combined by this op. */
  check(v: unknown): void {
    if (!this.fitsFn(v)) throw new TsmpiError('ERR_OP', `${this.name} does not apply to ${typeName(v)}`);
  }

  /**
   * `a op b` (a from lower ranks). `into` says which operand the caller owns and
   * allows a typed-array result to overwrite; null means allocate.
   */
  combine(a: unknown, b: unknown, into: 'a' | 'b' | null = null): unknown {
    try {
      return this.combineFn(a, b, into);
    } catch (e) {
      if (e instanceof TsmpiError) throw e;
      throw new TsmpiError('ERR_OP', `${this.name} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
  }

  toString(): string {
    return this.name;
  }
}

const kernels = new Map<string, Kernel>();
function kernel(name: string, expr: string, ctor: string): Kernel {
  const key = `${name}:${ctor}`;
  let k = kernels.get(key);
  if (!k) {
    // One generated function per (op, element type) keeps each loop monomorphic.
    k = new Function('a', 'b', 'out', 'n', `for (let i = 0; i < n; i++) { const x = a[i], y = b[i]; out[i] = ${expr}; } return out;`) as Kernel;
    kernels.set(key, k);
  }
  return k;
}

const INTEGER_ARRAYS = new Set(['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'Buffer']);

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `a ${(v as object).constructor?.name ?? 'object'}`;
  return `a ${typeof v}`;
}

function misfit(op: string, a: unknown, b: unknown): TsmpiError {
  return new TsmpiError('ERR_OP', `${op} does not apply to ${typeName(a)} and ${typeName(b)}`);
}

function isTyped(v: unknown): v is Typed {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

function ctorName(v: Typed): string {
  return Buffer.isBuffer(v) ? 'Buffer' : v.constructor.name;
}

function allocLike(a: Typed): Typed {
  return Buffer.isBuffer(a) ? Buffer.alloc(a.length) : new (a.constructor as new (n: number) => Typed)(a.length);
}

/** Does one rank's value fit the rule (checked before any traffic, so a misfit is caught everywhere)? */
function fitsRule(rule: ScalarRule, v: unknown): boolean {
  if (typeof v === 'number') return !!rule.num && (!rule.integersOnly || Number.isInteger(v));
  if (typeof v === 'bigint') return !!rule.big;
  if (typeof v === 'boolean') return !!rule.bool;
  if (isTyped(v)) {
    if (rule.expr === null || (rule.integersOnly && !INTEGER_ARRAYS.has(ctorName(v)))) return false;
    return v instanceof BigInt64Array || v instanceof BigUint64Array ? !!rule.big : !!rule.num;
  }
  if (Array.isArray(v)) return v.every((x) => fitsRule(rule, x));
  return false;
}

function scalarOp(name: string, rule: ScalarRule): (a: unknown, b: unknown, into: 'a' | 'b' | null) => unknown {
  const combine = (a: unknown, b: unknown, into: 'a' | 'b' | null): unknown => {
    if (typeof a === 'number' && typeof b === 'number' && rule.num) {
      if (rule.integersOnly && (!Number.isInteger(a) || !Number.isInteger(b))) throw misfit(name, a, b);
      return rule.num(a, b);
    }
    if (typeof a === 'bigint' && typeof b === 'bigint' && rule.big) return rule.big(a, b);
    if (typeof a === 'boolean' && typeof b === 'boolean' && rule.bool) return rule.bool(a, b);
    if (isTyped(a) && isTyped(b)) {
      const ca = ctorName(a);
      if (ca !== ctorName(b) || a.length !== b.length || rule.expr === null) {
        throw new TsmpiError('ERR_OP', `${name} needs typed arrays of one type and length (got ${ca}(${a.length}) and ${ctorName(b)}(${b.length}))`);
      }
      if (rule.integersOnly && !INTEGER_ARRAYS.has(ca)) throw misfit(name, a, b);
      const big = a instanceof BigInt64Array || a instanceof BigUint64Array;
      if (big ? !rule.big : !rule.num) throw misfit(name, a, b);
      const out = into === 'a' ? a : into === 'b' ? b : allocLike(a);
      return kernel(name, big ? rule.expr.replaceAll('$1', '1n').replaceAll('$0', '0n') : rule.expr.replaceAll('$1', '1').replaceAll('$0', '0'), ca)(a, b, out, a.length);
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      if (a.length !== b.length) throw new TsmpiError('ERR_OP', `${name} needs arrays of one length (got ${a.length} and ${b.length})`);
      const out = into === 'a' ? a : into === 'b' ? b : new Array(a.length);
      for (let i = 0; i < a.length; i++) out[i] = combine(a[i], b[i], into);
      return out;
    }
    throw misfit(name, a, b);
  };
  return combine;
}

function predefined(name: string, rule: ScalarRule): Op {
  return new Op(name, true, scalarOp(name, rule), rule.expr !== null, (v) => fitsRule(rule, v));
}

const toBool = (x: number) => x !== 0;

function bitwise(name: string, expr: string, f: (x: bigint, y: bigint) => bigint): Op {
  return predefined(name, {
    expr,
    integersOnly: true,
    big: f,
    // Safe integers beyond 32 bits go through BigInt so no bit is lost.
    num: (x, y) => Number(f(BigInt(x), BigInt(y))),
  });
}

export const SUM = predefined('SUM', { expr: 'x + y', num: (x, y) => x + y, big: (x, y) => x + y });
export const PROD = predefined('PROD', { expr: 'x * y', num: (x, y) => x * y, big: (x, y) => x * y });
export const MAX = predefined('MAX', { expr: '(x > y || x !== x) ? x : y', num: (x, y) => (x > y || Number.isNaN(x) ? x : y), big: (x, y) => (x > y ? x : y) });
export const MIN = predefined('MIN', { expr: '(x < y || x !== x) ? x : y', num: (x, y) => (x < y || Number.isNaN(x) ? x : y), big: (x, y) => (x < y ? x : y) });
export const LAND = predefined('LAND', {
  expr: '(x != $0 && y != $0) ? $1 : $0',
  num: (x, y) => (toBool(x) && toBool(y) ? 1 : 0),
  big: (x, y) => (x !== 0n && y !== 0n ? 1n : 0n),
  bool: (x, y) => x && y,
});
export const LOR = predefined('LOR', {
  expr: '(x != $0 || y != $0) ? $1 : $0',
  num: (x, y) => (toBool(x) || toBool(y) ? 1 : 0),
  big: (x, y) => (x !== 0n || y !== 0n ? 1n : 0n),
  bool: (x, y) => x || y,
});
export const LXOR = predefined('LXOR', {
  expr: '((x != $0) !== (y != $0)) ? $1 : $0',
  num: (x, y) => (toBool(x) !== toBool(y) ? 1 : 0),
  big: (x, y) => ((x !== 0n) !== (y !== 0n) ? 1n : 0n),
  bool: (x, y) => x !== y,
});
export const BAND = bitwise('BAND', 'x & y', (x, y) => x & y);
export const BOR = bitwise('BOR', 'x | y', (x, y) => x | y);
export const BXOR = bitwise('BXOR', 'x ^ y', (x, y) => x ^ y);

function pair(name: string, v: unknown): [number | bigint | string, number] {
  if (!Array.isArray(v) || v.length !== 2 || !['number', 'bigint', 'string'].includes(typeof v[0]) || typeof v[1] !== 'number') {
    throw new TsmpiError('ERR_OP', `${name} needs [value, index] pairs, got ${typeName(v)}`);
  }
  return v as [number, number];
}

function loc(name: string, better: (x: any, y: any) => boolean): Op {
  return new Op(
    name,
    true,
    (a, b) => {
      const [va, ia] = pair(name, a);
      const [vb, ib] = pair(name, b);
      if (better(va, vb)) return [va, ia];
      if (better(vb, va)) return [vb, ib];
      return ia <= ib ? [va, ia] : [vb, ib];
    },
    false,
    (v) => {
      try {
        pair(name, v);
        return true;
      } catch {
        return false;
      }
    },
  );
}

export const MAXLOC = loc('MAXLOC', (x, y) => x > y);
export const MINLOC = loc('MINLOC', (x, y) => x < y);
export const REPLACE = new Op('REPLACE', false, (_a, b) => b, false);
export const NO_OP = new Op('NO_OP', false, (a) => a, false);

export type OpLike = Op | ((a: any, b: any) => unknown);

/** An Op for a predefined op or a user function; anything else is ERR_OP. */
export function toOp(op: unknown): Op {
  if (op instanceof Op) return op;
  if (typeof op === 'function') {
    const f = op as (a: unknown, b: unknown) => unknown;
    const name = f.name ? `function ${f.name}` : 'a function op';
    return new Op(name, false, (a, b) => f(a, b), false);
  }
  throw new TsmpiError('ERR_OP', `${typeName(op)} is not an op: use SUM, PROD, … or a function (a, b) => c`);
}
