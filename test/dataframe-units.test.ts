// Pure parts of tsmpi/dataframe: the column codec, function source checks
// (free variables, esbuild's keep-names helpers), the progress bar.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { transformSync } from 'esbuild';
import { packRows, packSlice, reader, toArray, type Packed } from '../dist/plugins/dataframe/columns.js';
import { functionSource } from '../dist/plugins/dataframe/fn-source.js';
import { compileFunction } from '../dist/plugins/dataframe/compile.js';
import { freeVariables } from '../dist/plugins/dataframe/scope.js';
import { ProgressBar } from '../dist/plugins/dataframe/progress.js';
import { evenBounds } from '../dist/plugins/dataframe/operations.js';
import { decodeValue, encodeValue, flatten } from '../dist/runtime/wire/codec.js';
import { parse } from 'acorn';

/** Through the wire codec, as a pool message travels. */
function wire(p: Packed): Packed {
  const e = encodeValue(p);
  return decodeValue(e.enc, e.elem, flatten(e)) as Packed;
}

describe('columns: lossless for what danfojs frames hold', () => {
  const value = fc.oneof(
    fc.double(),
    fc.constantFrom(NaN, -0, Infinity, -Infinity, null, undefined, 0),
    fc.integer(),
    fc.boolean(),
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.array(fc.double(), { maxLength: 3 }),
    fc.date({ noInvalidDate: true }),
  );
  const column = fc.oneof(fc.array(value, { maxLength: 40 }), fc.array(fc.oneof(fc.double(), fc.constantFrom(null, undefined)), { maxLength: 40 }), fc.array(fc.oneof(fc.string(), fc.constant(null)), { maxLength: 40 }), fc.array(fc.oneof(fc.boolean(), fc.constant(undefined)), { maxLength: 40 }));

  it('toArray(pack(x)) is x, through the wire too', () => {
    fc.assert(
      fc.property(column, (xs) => {
        expect(toArray(wire(packSlice(xs)))).toStrictEqual(xs);
        expect(Array.from(reader(wire(packSlice(xs))))).toStrictEqual(xs);
      }),
      { numRuns: 300 },
    );
  });

  it('picks typed arrays where it can', () => {
    expect(packSlice([1, NaN, -0, null, undefined]).k).toBe('f64');
    expect(packSlice([true, false, null]).k).toBe('bool');
    expect(packSlice(['a', null, 'é✓\ud800']).k).toBe('str');
    expect(packSlice([[1, 2], [3, 4]]).k).toBe('f64rows');
    expect(packSlice([[1, 2], [3]]).k).toBe('any');
    expect(packSlice([1, 'a']).k).toBe('any');
    // eslint-disable-next-line no-sparse-arrays
    expect(toArray(packSlice([[1, , 3]]))).toStrictEqual([[1, , 3]]);
  });

  it('packRows (one pass over row-major data) equals column by column', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(value, fc.double(), value), { maxLength: 30 }), fc.nat(5), (rows, skip) => {
        const lo = Math.min(skip, rows.length);
        const packed = packRows(rows, 3, lo, rows.length);
        for (let j = 0; j < 3; j++) expect(toArray(packed[j]!)).toStrictEqual(rows.slice(lo).map((r) => r[j]));
      }),
      { numRuns: 200 },
    );
  });

  it('evenBounds splits into about equal ranges', () => {
    expect(evenBounds(0, 4)).toStrictEqual([0]);
    expect(evenBounds(1, 4)).toStrictEqual([0, 1]);
    expect(evenBounds(10, 3)).toStrictEqual([0, 3, 7, 10]);
  });
});

describe('free variables', () => {
  const free = (src: string) => [...freeVariables(parse(`(${src})`, { ecmaVersion: 'latest' }) as never).keys()].sort();
  it.each([
    ['(row) => row.length + k', ['k']],
    ['function f(a, b = c) { return a + b; }', ['c']],
    ['function f(a) { var x = 1; { let y = 2; x += y; } return x + y; }', ['y']],
    ['(r) => { const { a, b: [c, ...d] = e, ...f } = r; return a + c + d + f; }', ['e']],
    ['function fact(n) { return n < 2 ? 1 : n * fact(n - 1); }', []],
    ['(r) => { const g = function h(n) { return n ? h(n - 1) : 0; }; return g(r) + x; }', ['x']],
    ['(r) => { try { r(); } catch ({ message }) { return message + q; } }', ['q']],
    ['(r) => { for (const [k, v] of Object.entries(r)) out[k] = v; }', ['Object', 'out']],
    ['(r) => { for (let i = 0; i < r.length; i++) total += i; }', ['total']],
    ['(r) => { x = r; }', ['x']],
    ['(r) => { class A extends B { m() { return A; } static s = z; } return new A(); }', ['B', 'z']],
    ['(r) => ({ a: r.b, [k]: 1, c, d() { return this.e; } })', ['c', 'k']],
    ['(r) => { lbl: for (;;) { break lbl; } switch (r) { case 1: let w = 2; return w; default: return v; } }', ['v']],
    ['function f() { return arguments.length + hoisted(); function hoisted() { return 1; } }', []],
    ['function f(r) { return typeof r?.[key] === "string" && new.target === undefined; }', ['key', 'undefined']],
  ])('%s', (src, expected) => {
    expect(free(src)).toStrictEqual(expected);
  });
});

describe('function source', () => {
  it('strips esbuild keep-names helpers and still runs', () => {
    const src = `
      export function outer(row: number[]) {
        function sq(v: number) { return v * v; }
        const half = (v: number) => v / 2;
        const obj = { f: function () { return 1; } };
        return row.map((v) => half(sq(v))).reduce((a, b) => a + b, 0) + obj.f();
      }`;
    const js = transformSync(src, { loader: 'ts', keepNames: true, format: 'cjs' }).code;
    expect(js).toContain('__name(');
    const mod = { exports: {} as Record<string, unknown> };
    const __name = (f: unknown) => f;
    new Function('module', 'exports', '__name', js)(mod, mod.exports, __name);
    const outer = mod.exports.outer as (row: number[]) => number;
    const { source } = functionSource(outer, 'test');
    expect(source).not.toContain('__name');
    expect(compileFunction(source)([2, 4])).toBe(outer([2, 4]));
  });

  it('methods become expressions; names in messages', () => {
    const o = {
      score(row: number[]) {
        return row.length;
      },
    };
    expect(compileFunction(functionSource(o.score, 't').source)([1, 2])).toBe(2);
    const outside = 1;
    expect(() => functionSource(function named() { return outside; }, 'parallelApply')).toThrow(/parallelApply: named uses `outside`/);
  });
});

describe('progress bar', () => {
  it('shows done/total, rate and ETA; coalesces redraws; ends the line', () => {
    let now = 0;
    const out: string[] = [];
    const bar = new ProgressBar({ label: 'parallelApply', total: 1000, unit: 'rows', tty: true, write: (t) => out.push(t), now: () => now });
    now = 1000;
    bar.update(250);
    expect(out.at(-1)).toBe('\r\x1b[KparallelApply [########......................]  25% 250/1000 rows 250/s ETA 3s');
    const before = out.length;
    bar.update(260);
    bar.update(270);
    expect(out.length).toBe(before); // within 100 ms: no redraw now
    now = 2000;
    bar.finish();
    expect(out.at(-2)).toContain('27% 270/1000');
    expect(out.at(-1)).toBe('\n');
  });

  it('plain lines when stderr is not a terminal', () => {
    let now = 0;
    const out: string[] = [];
    const bar = new ProgressBar({ label: 'parallelMap', total: 10, unit: 'values', tty: false, write: (t) => out.push(t), now: () => now });
    now = 500;
    bar.update(5);
    now = 1000;
    bar.update(10);
    bar.finish();
    expect(out).toStrictEqual([
      'parallelMap [..............................]   0% 0/10 values 0.0/s ETA ?\n',
      'parallelMap [##############################] 100% 10/10 values 10.0/s ETA 0s\n',
    ]);
  });
});
