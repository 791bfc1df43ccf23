// tsmpi/dataframe on a user's tsmpi/pool Pool (the `pool` option): a local
// Pool, and a Pool whose workers run on real tsmpid daemons (127.0.0.55 and
// .58, TLS, keys, pinned host keys). Every function against its serial danfojs
// oracle; errors keep their name, message, remote stack and row or group; a
// worker that dies mid-call is ERR_PEER_LOST; row work never loads danfojs in
// a worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as dfd from 'danfojs-node';
import * as F from './fixtures/df-frames.js';
import { Pool } from '../dist/pool/index.js';
import { closePool, parallelApply, parallelApplyMap, parallelGroupApply, parallelMap, poolPids } from '../dist/plugins/dataframe/index.js';
import { keygen, startDaemon, stopDaemons, writeHostfile, type TestDaemon } from './daemons.js';
import { until } from './harness.js';

async function same(parallel: () => unknown, serial: () => unknown): Promise<void> {
  const [p, s] = [await F.outcome(parallel), await F.outcome(serial)];
  expect(s.ok, JSON.stringify(s).slice(0, 300)).toBe(true);
  expect(p).toStrictEqual(s);
}

/** Every function of the plugin on `pool`, against serial danfojs. */
async function allEqualSerial(pool: Pool, df: dfd.DataFrame): Promise<void> {
  await same(() => parallelApply(df, F.rowScore, { pool }), () => df.apply(F.rowScore));
  const nums = F.makeNumbers(2000);
  const pair = (row: number[]) => [row[0]! * 2, row[1]! + row[2]!, row[3]!, row[0]! - 1];
  await same(() => parallelApply(nums, pair, { pool }), () => nums.apply(pair as never));
  await same(() => parallelApply(df, F.colCount, { pool, axis: 0 }), () => df.apply(F.colCount, { axis: 0 }));
  await same(() => parallelApplyMap(df, F.cellTag, { pool }), () => df.applyMap(F.cellTag));
  const s = df.column('s') as dfd.Series;
  await same(() => parallelMap(s, F.valueAt, { pool }), () => s.map(F.valueAt as never));
  await same(
    () => parallelApply(df, (row: unknown[], ctx: { k: number }) => row.length * ctx.k, { pool, context: { k: 3 } }),
    () => df.apply((row: unknown[]) => row.length * 3),
  );
  await same(() => parallelGroupApply(df, ['g'], F.groupSums, { pool }), () => df.groupby(['g']).apply(F.groupSums));
}

/** An error in fn: name, message, remote stack, row; the pool stays usable. */
async function errorsKeepTheirRow(pool: Pool, df: dfd.DataFrame, hosts: string[]): Promise<void> {
  const err = await parallelApply(
    df,
    function checkRow(row: unknown[]) {
      if (row.includes('s7')) throw new RangeError(`bad row ${row.length}`);
      return 1;
    },
    { pool },
  ).catch((e) => e);
  const at = err.position;
  expect((df.column('s') as dfd.Series).values[at]).toBe('s7');
  expect(err).toBeInstanceOf(RangeError);
  expect(err.message).toMatch(/^bad row \d$/);
  expect(err.where).toBe(`row ${at} (index ${at})`);
  expect(err.remoteStack).toContain('checkRow');
  expect(err.stack).toContain('[tsmpi/dataframe] parallelApply: the function threw at row');
  expect(typeof err.pid).toBe('number');
  const g = await parallelGroupApply(
    df,
    ['g'],
    (grp: dfd.DataFrame) => {
      if (grp.column('g').values[0] === 'k3') throw new TypeError('group k3');
      return grp;
    },
    { pool },
  ).catch((e) => e);
  expect(g).toBeInstanceOf(TypeError);
  expect(g.where).toBe('group "k3"');
  expect(g.remoteStack).toContain('group k3');
  // The pool is still there, for dataframe calls and for its own tasks.
  await same(() => parallelApply(df, F.rowLength, { pool }), () => df.apply(F.rowLength));
  const fs = [1, 2, 3, 4].map((x) => pool.submit((v: number) => v * 10, x));
  expect(await Promise.all(fs)).toStrictEqual([10, 20, 30, 40]);
  for (const f of fs) expect(hosts).toContain(f.host);
}

/** Whether danfojs (tfjs) is loaded in the process running the task. */
const danfoLoaded = () => typeof (globalThis as { _tfGlobals?: unknown })._tfGlobals !== 'undefined';

describe('the pool option with a local Pool', () => {
  const df = F.makeFrame(3000);
  let pool: Pool;
  beforeAll(() => {
    pool = new Pool({ workers: 2 });
  });
  afterAll(async () => {
    await pool?.terminate();
    await closePool();
  });

  it('every function equals serial danfojs, on the pool’s workers (the plugin starts no pool of its own)', async () => {
    await allEqualSerial(pool, df);
    expect(poolPids()).toStrictEqual([]);
    expect(pool.workers.length).toBe(2);
  });

  it('an error in fn keeps its name, message, remote stack and row or group; the pool stays usable', async () => {
    await errorsKeepTheirRow(pool, df, ['localhost']);
  });

  it('row work never loads danfojs in a worker; group work does', async () => {
    const one = new Pool({ workers: 1 });
    try {
      await parallelApply(df, F.rowScore, { pool: one });
      await parallelApplyMap(df, F.cellDouble, { pool: one });
      await parallelMap(df.column('s') as dfd.Series, F.valueUpper, { pool: one });
      expect(await one.submit(danfoLoaded)).toBe(false);
      await parallelGroupApply(df, ['g'], F.groupHead, { pool: one });
      expect(await one.submit(danfoLoaded)).toBe(true);
    } finally {
      await one.close();
    }
  });

  it('a worker that dies mid-call is ERR_PEER_LOST; the pool replaces it and keeps working', async () => {
    const nums = F.makeNumbers(5000);
    const err = await parallelApply(
      nums,
      (row: number[]) => {
        if (row[0]! > 9.99) process.exit(3);
        return 1;
      },
      { pool },
    ).catch((e) => e);
    expect(err.code).toBe('ERR_PEER_LOST');
    expect(err.message).toContain('exited with code 3');
    await same(() => parallelApply(nums, F.rowLength, { pool }), () => nums.apply(F.rowLength));
  });

  it('bad pool options are ERR_ARG', async () => {
    for (const bad of [{}, null, 3, { submit: () => 1 }]) {
      const e = await parallelApply(df, F.rowLength, { pool: bad as never }).catch((x) => x);
      expect(e.code, JSON.stringify(bad)).toBe('ERR_ARG');
      expect(e.message).toContain('`pool`');
    }
    const fakeComm = { size: 1, rank: 0, scatter() {}, gather() {} };
    const e = await parallelApply(df, F.rowLength, { pool, comm: fakeComm } as never).catch((x) => x);
    expect(e.code).toBe('ERR_ARG');
  });
});

describe('the pool option with a Pool on tsmpid hosts', () => {
  const df = F.makeFrame(1000);
  let base: string;
  let keys: { identity: string; knownHosts: string };
  let A: TestDaemon;
  let B: TestDaemon;
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'df-pool-remote-'));
    const keyDir = join(base, 'keys');
    await keygen(keyDir);
    keys = { identity: join(keyDir, 'id'), knownHosts: join(keyDir, 'known_hosts') };
    [A, B] = await Promise.all([
      startDaemon({ host: '127.0.0.55', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
      startDaemon({ host: '127.0.0.58', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
    ]);
  });
  afterAll(async () => {
    await stopDaemons();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('every function equals serial danfojs, on the hosts; an error in fn keeps its name, message, remote stack and row or group', async () => {
    const pool = new Pool({ workers: 0, hostfile: writeHostfile(base, [A.line(1), B.line(1)]), ...keys });
    try {
      await allEqualSerial(pool, df);
      const hosts = new Set(pool.workers.map((w) => w.host));
      expect([...hosts].sort()).toStrictEqual(['127.0.0.55', '127.0.0.58']);
      await errorsKeepTheirRow(pool, df, ['127.0.0.55', '127.0.0.58']);
    } finally {
      await pool.close();
    }
    await until(() => A.children().length === 0 && B.children().length === 0, 5000, 'the remote workers to end');
  });

  it('a remote worker that dies mid-call is ERR_PEER_LOST', async () => {
    const pool = new Pool({ workers: 0, hostfile: writeHostfile(base, [B.line(2)]), ...keys });
    try {
      const nums = F.makeNumbers(5000);
      const err = await parallelApply(
        nums,
        (row: number[]) => {
          if (row[0]! > 9.99) process.exit(3);
          return 1;
        },
        { pool },
      ).catch((e) => e);
      expect(err.code).toBe('ERR_PEER_LOST');
      expect(err.message).toContain('127.0.0.58');
    } finally {
      await pool.terminate();
    }
    await until(() => B.children().length === 0, 5000, 'the remote workers to end');
  });
});
