// tsmpi/dataframe in standalone mode (a local worker pool), like Pandaral·lel's
// suite: every function against its serial danfojs oracle, for frames of 0, 1,
// 1,000 and 200,000 rows, axis 0 and 1, progress on and off, named and arrow
// functions, numbers, strings, booleans and missing values. Then errors, and the
// pool's processes.
import { afterAll, describe, expect, it, vi } from 'vitest';
import * as dfd from 'danfojs-node';
import * as F from './fixtures/df-frames.js';
import { alive, until } from './harness.js';
import { closePool, parallelApply, parallelApplyMap, parallelGroupApply, parallelMap, poolPids } from '../dist/plugins/dataframe/index.js';

const SIZES = [0, 1, 1000, 200_000];
const frames = new Map<number, dfd.DataFrame>();
const frameOf = (n: number) => {
  let f = frames.get(n);
  if (!f) frames.set(n, (f = F.makeFrame(n)));
  return f;
};
const seriesOf = (n: number) => (n === 0 ? new dfd.Series([]) : (frameOf(n).column('s') as dfd.Series));

/**
 * Parallel and serial give the same result; with `serialThrows`, the same error
 * (where danfojs itself throws).
 */
async function same(parallel: () => unknown, serial: () => unknown, serialThrows = false): Promise<void> {
  const [p, s] = [await F.outcome(parallel), await F.outcome(serial)];
  expect(s.ok, JSON.stringify(s).slice(0, 300)).toBe(!serialThrows);
  expect(p).toStrictEqual(s);
}

/** Run with stderr captured; the progress bar's text. */
async function withStderr<T>(run: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  try {
    return { value: await run(), stderr };
  } finally {
    spy.mockRestore();
  }
}

afterAll(async () => {
  await closePool();
});

describe.each(SIZES)('a frame of %i rows equals serial danfojs', (n) => {
  it('parallelApply, axis 1 (the default): named, arrow, strings, booleans', async () => {
    const df = frameOf(n);
    await same(() => parallelApply(df, F.rowScore), () => df.apply(F.rowScore));
    await same(() => parallelApply(df, F.rowLength, { axis: 1 }), () => df.apply(F.rowLength, { axis: 1 }));
    await same(() => parallelApply(df, F.rowFirstText), () => df.apply(F.rowFirstText));
    await same(() => parallelApply(df, F.rowHasTrue, { workers: 3 }), () => df.apply(F.rowHasTrue));
  });

  it('parallelApply, axis 0', async () => {
    const df = frameOf(n);
    await same(() => parallelApply(df, F.colCount, { axis: 0 }), () => df.apply(F.colCount, { axis: 0 }));
    await same(() => parallelApply(df, F.colNumbers, { axis: 0 }), () => df.apply(F.colNumbers, { axis: 0 }));
  });

  it('parallelApply returning arrays gives a DataFrame', async () => {
    const df = F.makeNumbers(n);
    const pair = (row: number[]) => [row[0]! * 2, row[1]! + row[2]!, row[3]!, row[0]! - 1];
    await same(() => parallelApply(df, pair), () => df.apply(pair));
    // A width other than the frame's: danfojs throws, and so do we, the same way.
    await same(() => parallelApply(df, F.rowPair), () => df.apply(F.rowPair), n > 0);
  });

  it('parallelApplyMap', async () => {
    const df = frameOf(n);
    await same(() => parallelApplyMap(df, F.cellTag), () => df.applyMap(F.cellTag));
    await same(() => parallelApplyMap(df, F.cellDouble), () => df.applyMap(F.cellDouble));
  });

  it('parallelMap', async () => {
    const s = seriesOf(n);
    await same(() => parallelMap(s, F.valueAt), () => s.map(F.valueAt));
    await same(() => parallelMap(s, F.valueUpper), () => s.map(F.valueUpper));
    const numbers = n === 0 ? new dfd.Series([]) : (frameOf(n).column('x') as dfd.Series);
    await same(() => parallelMap(numbers, (v: number) => (v === null ? -1 : v / 2)), () => numbers.map((v: number) => (v === null ? -1 : v / 2)));
  });

  it('parallelGroupApply', async () => {
    const df = frameOf(n);
    // danfojs cannot concatenate zero groups: it throws, and so do we.
    await same(() => parallelGroupApply(df, ['g'], F.groupHead), () => df.groupby(['g']).apply(F.groupHead), n === 0);
    if (n <= 1000) {
      await same(() => parallelGroupApply(df, ['g', 'b'], F.groupSelf), () => df.groupby(['g', 'b']).apply(F.groupSelf), n === 0);
      await same(() => parallelGroupApply(df, 'g', F.groupSums), () => df.groupby(['g']).apply(F.groupSums), n === 0);
    }
  });

  it('with a progress bar: one coalesced bar on stderr, same result', async () => {
    const df = frameOf(n);
    const { value, stderr } = await withStderr(() => F.outcome(() => parallelApply(df, F.rowLength, { progress: true })));
    expect(value).toStrictEqual(await F.outcome(() => df.apply(F.rowLength)));
    const lines = stderr.split(/[\r\n]/).filter((l) => l.includes('parallelApply ['));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(4);
    expect(lines.at(-1)).toMatch(new RegExp(`100% ${n}/${n} rows .*/s ETA 0s`));
  });
});

describe('context, function forms, options', () => {
  const df = F.makeFrame(500);

  it('context values reach the function as its second argument', async () => {
    const limit = 3;
    const p = await parallelApply(df, (row: unknown[], ctx: { limit: number; label: string }) => `${ctx.label}${Math.min(row.length, ctx.limit)}`, {
      context: { limit, label: 'n=' },
    });
    expect(F.snapshot(p)).toStrictEqual(F.snapshot(df.apply((row: unknown[]) => `n=${Math.min(row.length, limit)}`)));
    const s = df.column('i') as dfd.Series;
    const m = await parallelMap(s, (v: number, ctx: { k: number }, i: number) => v * ctx.k + i, { context: { k: 10 } });
    expect(F.snapshot(m)).toStrictEqual(F.snapshot(s.map((v: number, i: number) => v * 10 + i)));
  });

  it('a context object reached twice reaches the workers as one object reached twice (as structuredClone gives)', async () => {
    const shared = { k: 2 };
    const context = { a: shared, b: shared, list: [shared, { back: shared }] };
    const s = df.column('i') as dfd.Series;
    const m = await parallelMap(
      s,
      (v: number, c: typeof context) => (c.a === c.b && c.list[0] === c.a && c.list[1]!.back === c.a && c.a !== c.list[1] ? v * c.a.k : -1),
      { context },
    );
    expect(F.snapshot(m)).toStrictEqual(F.snapshot(s.map((v: number) => v * 2)));
  });

  it('a function with inner functions, destructuring, closures over its own names', async () => {
    function score(row: unknown[]) {
      const nums = row.filter((v): v is number => typeof v === 'number');
      function sq(v: number) {
        return v * v;
      }
      const total = nums.reduce((a, v) => a + sq(v), 0);
      const [first = 0] = nums;
      return Math.sqrt(total) + first;
    }
    await same(() => parallelApply(df, score), () => df.apply(score));
    const methods = {
      width(row: unknown[]) {
        return row.length;
      },
    };
    await same(() => parallelApply(df, methods.width), () => df.apply(methods.width));
  });

  it('a labelled index, a low-memory frame, mixed-type columns, dates', async () => {
    const labelled = new dfd.DataFrame(
      { v: [1.5, 2, null, 4], w: ['a', 'b', 'c', 'd'] },
      { index: ['r1', 'r2', 'r3', 'r4'] },
    );
    const low = new dfd.DataFrame({ v: [1, 2, 3], w: [true, false, true] }, { config: { lowMemoryMode: true } });
    const mixed = new dfd.DataFrame([[1, 'a', new Date(0)], ['b', 2, new Date(1e12)], [true, null, new Date(5)]], { columns: ['p', 'q', 'r'] });
    for (const d of [labelled, low, mixed]) {
      await same(() => parallelApply(d, F.rowLength), () => d.apply(F.rowLength));
      await same(() => parallelApply(d, F.colCount, { axis: 0 }), () => d.apply(F.colCount, { axis: 0 }));
      await same(() => parallelApplyMap(d, F.cellTag), () => d.applyMap(F.cellTag));
    }
    const dates = (row: unknown[]) => row.filter((v) => v instanceof Date).map((v) => (v as Date).getTime())[0] ?? -1;
    await same(() => parallelApply(mixed, dates), () => mixed.apply(dates));
    const s = new dfd.Series([3, 1, 2], { index: ['x', 'y', 'z'] });
    await same(() => parallelMap(s, F.valueAt), () => s.map(F.valueAt));
  });

  it('a lookup table in parallelMap is mapped as danfojs maps it', async () => {
    const s = new dfd.Series(['a', 'b', 'c', 'a']);
    await same(() => parallelMap(s, { a: 'A', b: 'B' } as never), () => s.map({ a: 'A', b: 'B' }));
  });

  it('a free variable is ERR_ARG naming it and pointing to context', async () => {
    const threshold = 10;
    const err = await parallelApply(df, (row: unknown[]) => row.length > threshold).catch((e) => e);
    expect(err.code).toBe('ERR_ARG');
    expect(err.message).toContain('`threshold`');
    expect(err.message).toContain('context');
    const helper = (v: number) => v + 1;
    const err2 = await parallelMap(df.column('i') as dfd.Series, (v: number) => helper(v)).catch((e) => e);
    expect(err2.code).toBe('ERR_ARG');
    expect(err2.message).toContain('`helper`');
  });

  it('async, bound, native functions and classes are ERR_ARG', async () => {
    for (const fn of [async (r: unknown[]) => r.length, ((r: unknown[]) => r.length).bind(null), Math.max, class X {}]) {
      const err = await parallelApply(df, fn as never).catch((e) => e);
      expect(err.code).toBe('ERR_ARG');
    }
  });

  it('bad options and arguments are ERR_ARG, at once', async () => {
    const bad: [unknown, object][] = [
      [df, { axis: 2 }],
      [df, { workers: 0 }],
      [df, { workers: 1.5 }],
      [df, { progress: 'yes' }],
      [df, { context: { f: () => 1 } }],
      [df, { root: 1 }],
      [df, { nope: 1 }],
      [{ values: [] }, {}],
    ];
    for (const [frame, opts] of bad) {
      const err = await parallelApply(frame as dfd.DataFrame, F.rowLength, opts).catch((e) => e);
      expect(err.code, JSON.stringify(opts)).toBe('ERR_ARG');
    }
    expect((await parallelApplyMap(df, F.cellTag, { axis: 0 } as never).catch((e) => e)).code).toBe('ERR_ARG');
    expect((await parallelMap(df as never, F.valueAt).catch((e) => e)).code).toBe('ERR_ARG');
    expect((await parallelGroupApply(df, ['nope'], F.groupSelf).catch((e) => e)).code).toBe('ERR_ARG');
  });
});

describe('errors thrown by the function', () => {
  const df = F.makeFrame(2000);

  it('reject with the error type, message, remote stack and row; the pool stays usable', async () => {
    const err = await parallelApply(df, function checkRow(row: unknown[]) {
      if (row.includes('s7')) throw new RangeError(`bad row ${row.length}`);
      return 1;
    }).catch((e) => e);
    // The first failure to arrive wins (fail fast): any row holding 's7'.
    const at = err.position;
    expect((df.column('s') as dfd.Series).values[at]).toBe('s7');
    expect(err).toBeInstanceOf(RangeError);
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(/^bad row \d$/);
    expect(err.label).toBe(df.index[at]);
    expect(err.where).toBe(`row ${at} (index ${at})`);
    expect(err.remoteStack).toContain('checkRow');
    expect(err.stack).toContain('[tsmpi/dataframe] parallelApply: the function threw at row');
    await same(() => parallelApply(df, F.rowLength), () => df.apply(F.rowLength));
  });

  it('custom error names, non-Error throws, unsendable results', async () => {
    const e1 = await parallelApply(df, () => {
      const e = new Error('not valid');
      e.name = 'ValidationError';
      throw e;
    }).catch((e) => e);
    expect(e1.name).toBe('ValidationError');
    expect(e1.message).toBe('not valid');
    const e2 = await parallelApply(df, () => {
      throw 42;
    }).catch((e) => e);
    expect(e2.message).toContain('42');
    const e3 = await parallelApply(df, () => () => 1).catch((e) => e);
    expect(e3.code).toBe('ERR_SERIALIZE');
    expect(e3.message).toContain('function');
  });

  it('applyMap names the column, groupApply the group, map the value', async () => {
    const e1 = await parallelApplyMap(df, (v: unknown) => {
      if (v === true) throw new TypeError('no booleans');
      return v;
    }).catch((e) => e);
    expect(e1).toBeInstanceOf(TypeError);
    expect(e1.column).toBe('b');
    const e2 = await parallelGroupApply(df, ['g'], (g: dfd.DataFrame) => {
      if (g.column('g').values[0] === 'k3') throw new Error('group k3');
      return g;
    }).catch((e) => e);
    expect(e2.message).toBe('group k3');
    expect(e2.where).toBe('group "k3"');
    expect(e2.label).toStrictEqual(['k3']);
    const e3 = await parallelMap(df.column('i') as dfd.Series, (v: number, i: number) => {
      if (i === 1234) throw new Error(`value ${v}`);
      return v;
    }).catch((e) => e);
    expect(e3.position).toBe(1234);
  });

  it('a worker that dies mid-call is ERR_PEER_LOST; the pool recovers', async () => {
    const nums = F.makeNumbers(5000);
    const err = await parallelApply(nums, (row: number[]) => {
      if (row[0]! > 9.99) process.exit(3);
      return 1;
    }).catch((e) => e);
    expect(err.code).toBe('ERR_PEER_LOST');
    expect(err.message).toContain('exited with code 3');
    await same(() => parallelApply(nums, F.rowLength), () => nums.apply(F.rowLength));
  });

  it('fails fast: the other chunks are cancelled, the busy workers replaced', async () => {
    const big = F.makeNumbers(200_000);
    await closePool();
    await parallelApply(big, F.rowLength);
    const before = poolPids();
    const t0 = performance.now();
    // Serially this would take 200,000 × 0.5 ms = 100 s.
    const err = await parallelApply(big, (row: number[]) => {
      const end = performance.now() + 0.5;
      while (performance.now() < end);
      if (row[0]! > 9.99) throw new Error('stop');
      return 1;
    }).catch((e) => e);
    expect(err.message).toBe('stop');
    expect(performance.now() - t0).toBeLessThan(20_000);
    await until(() => before.every((pid) => !alive(pid)), 5000, 'the busy workers to end');
    await same(() => parallelApply(big, F.rowLength), () => big.apply(F.rowLength));
  });
});

describe('the pool', () => {
  it('is reused across calls and closed by closePool()', async () => {
    const df = F.makeFrame(100);
    await parallelApply(df, F.rowLength);
    const pids = poolPids();
    expect(pids.length).toBeGreaterThan(0);
    await parallelApplyMap(df, F.cellTag);
    expect(poolPids()).toStrictEqual(pids);
    await closePool();
    expect(poolPids()).toStrictEqual([]);
    await until(() => pids.every((pid) => !alive(pid)), 5000, 'the workers to exit');
    // A later call starts a new pool.
    await same(() => parallelApply(df, F.rowLength), () => df.apply(F.rowLength));
    expect(poolPids().some((p) => pids.includes(p))).toBe(false);
  });
});
