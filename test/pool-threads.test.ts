// tsmpi/pool with workerType: 'thread': the same contract as process workers
// (results against the serial loop, errors, partial results, timeout, cancel,
// lost workers, heap limit, init, module tasks, exec, cache, close), each
// worker a worker_thread of this process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, task } from '../dist/pool/index.js';
import { fixture, until } from './harness.js';
import { code, fromText, range } from './pool-helpers.js';

let pool: InstanceType<typeof Pool>;
let base: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'pool-threads-'));
  pool = new Pool({ workers: 2, workerType: 'thread' });
});

afterAll(async () => {
  await pool?.terminate();
  if (base) rmSync(base, { recursive: true, force: true });
});

const spin = () => {
  const end = Date.now() + 20_000;
  while (Date.now() < end);
};

describe('thread workers: results', () => {
  it('map, imap, imapUnordered and submit equal the serial loop; values as structuredClone gives them', async () => {
    const items = range(20_000);
    const f = (x: number) => (x * x) % 7919;
    const oracle = items.map((x) => f(x));
    expect(await pool.map(f, items)).toEqual(oracle);
    const inOrder: number[] = [];
    for await (const v of pool.imap(f, items, { chunksize: 500 })) inOrder.push(v);
    expect(inOrder).toEqual(oracle);
    const any: number[] = [];
    for await (const v of pool.imapUnordered(f, items)) any.push(v);
    expect(any.sort((a, b) => a - b)).toEqual([...oracle].sort((a, b) => a - b));
    expect(await pool.map((x: number, ctx: { k: number }) => x * ctx.k, range(50), { context: { k: 3 }, chunksize: 7 })).toEqual(range(50).map((x) => x * 3));
    const shared = { s: 1 };
    const value = { m: new Map([[1, 'a']]), t: new Float32Array([1.5, 2.5]), a: shared, b: shared, n: 12n, d: new Date(5) };
    const back = await pool.submit((v: typeof value) => v, value);
    expect(back).toEqual(structuredClone(value));
    expect(back.a).toBe(back.b);
    expect(back.t).toBeInstanceOf(Float32Array);
    // workers start on first use: the second may still be starting when a fast map is done
    await until(() => pool.workers.length === 2, 10_000, 'both thread workers up');
    expect(pool.workers.length).toBe(2);
  });

  it('reportPartial and reportProgress inside a task; init() is the singleton world', async () => {
    const seen: unknown[] = [];
    const f = pool.submit(fromText<(n: number) => Promise<string>>(`async (n) => {
      for (let i = 0; i < n; i++) { await reportPartial({ i }); reportProgress(i + 1, n); }
      return 'ok';
    }`), 4);
    f.onPartial((v) => seen.push(v));
    expect(await f).toBe('ok');
    expect(seen).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }]);
    const w = await pool.submit(fromText<() => Promise<number[]>>(`async () => {
      const { init } = await import('tsmpi');
      const comm = await init();
      return [comm.rank, comm.size];
    }`));
    expect(w).toEqual([0, 1]);
  });

  it('module tasks (compiled with their imports), exec runs a child process', async () => {
    const steps = task<[number], number>(fixture('pool-tasks.ts'), 'steps');
    const items = range(200).map((i) => i + 1);
    const collatz = (n: number) => {
      let s = 0;
      while (n !== 1) {
        n = n % 2 === 0 ? n / 2 : 3 * n + 1;
        s++;
      }
      return s;
    };
    expect(await pool.map(steps, items)).toEqual(items.map(collatz));
    const r = await pool.exec([process.execPath, '-e', 'process.stdout.write(String(process.pid !== process.ppid) + process.env.POOL_X); process.exit(3)'], { env: { POOL_X: 'x1' } });
    expect(r).toEqual({ code: 3, signal: null, stdout: 'truex1', stderr: '' });
  });
});

describe('thread workers: errors', () => {
  it('a throw keeps name, message and the remote stack; a map item names its index; ERR_SERIALIZE both ways', async () => {
    const err = await pool
      .submit(function failing(x: number) {
        if (x > 0) throw new TypeError(`bad ${x}`);
        return x;
      }, 5)
      .then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(err!.message).toBe('bad 5');
    expect(err!.stack).toContain('failing');
    expect(err!.stack).toContain('tsmpi-pool-task.js');
    const e = await pool.map((x: number) => {
      if (x === 37) throw new RangeError('item 37');
      return x;
    }, range(100)).catch((x: Error) => x);
    expect(e).toBeInstanceOf(RangeError);
    expect((e as { item?: number }).item).toBe(37);
    const named = await pool.submit((o: unknown) => o, { jobs: [1, { run: () => 0 }] }).catch((x: Error & { code: string }) => x);
    expect((named as { code: string }).code).toBe('ERR_SERIALIZE');
    expect((named as Error).message).toContain('jobs[1].run is a function');
    expect(await code(pool.submit(() => ({ f: () => 1 })))).toBe('ERR_SERIALIZE');
    expect(await code(pool.map((x: number) => (x === 3 ? Symbol('s') : x), range(5)))).toBe('ERR_SERIALIZE');
    expect(await pool.submit(() => 'still fine')).toBe('still fine');
  });

  it('process.exit in a task: ERR_PEER_LOST for exactly its task, the thread replaced, the script alive', async () => {
    const others = range(6).map((i) =>
      pool.submit(async (x: number) => {
        await new Promise((r) => setTimeout(r, 100));
        return x;
      }, i),
    );
    const victim = pool.submit(() => process.exit(9));
    const e = await victim.then(() => null, (x: Error & { code: string }) => x);
    expect(e!.code).toBe('ERR_PEER_LOST');
    expect(e!.message).toContain('exited with code 9');
    expect(await Promise.all(others)).toEqual(range(6));
    await until(() => pool.workers.length === 2, 10_000, 'a replacement worker');
    expect(await pool.submit(() => 'replaced')).toBe('replaced');
  });

  it('retries: a task whose thread exits runs again on another thread; with none left, ERR_PEER_LOST', async () => {
    const p = new Pool({ workers: 2, retries: 1, workerType: 'thread' });
    const marker = join(base, 'retry-marker');
    try {
      const r = await p.submit((file: string) => {
        const fs = process.getBuiltinModule('node:fs');
        const { threadId } = process.getBuiltinModule('node:worker_threads');
        if (!fs.existsSync(file)) {
          fs.writeFileSync(file, String(threadId));
          process.exit(1);
        }
        return Number(fs.readFileSync(file, 'utf8')) !== threadId;
      }, marker);
      expect(r).toBe(true);
      const e = await p.submit(() => process.exit(1)).then(() => null, (x: Error & { code: string }) => x);
      expect(e!.code).toBe('ERR_PEER_LOST');
      expect(e!.message).toContain('after 1 retry');
    } finally {
      await p.terminate();
    }
  });

  it('a task over the heap limit loses its thread only: ERR_PEER_LOST, the others finish, the pool goes on', async () => {
    const p = new Pool({ workers: 2, workerType: 'thread', heapLimitMb: 48 });
    try {
      const others = range(4).map((i) =>
        p.submit(async (x: number) => {
          await new Promise((r) => setTimeout(r, 200));
          return x * 2;
        }, i),
      );
      const hog = p.submit(() => {
        const keep: number[][] = [];
        for (;;) keep.push(new Array(100_000).fill(1.5));
      });
      const e = await hog.then(() => null, (x: Error & { code: string }) => x);
      expect(e!.code).toBe('ERR_PEER_LOST');
      expect(e!.message).toContain('heap');
      expect(await Promise.all(others)).toEqual([0, 2, 4, 6]);
      expect(await p.submit(() => 'after')).toBe('after');
    } finally {
      await p.terminate();
    }
  });

  it('taskTimeout ends a busy thread (ERR_TIMEOUT) and replaces it; cancel of a running task too', async () => {
    const p = new Pool({ workers: 1, taskTimeout: 300, workerType: 'thread' });
    try {
      expect(await p.submit(() => 'quick')).toBe('quick');
      expect(await code(p.submit(spin))).toBe('ERR_TIMEOUT');
      expect(await p.submit(() => 'after')).toBe('after');
    } finally {
      await p.terminate();
    }
    const q = new Pool({ workers: 1, workerType: 'thread' });
    try {
      const running = q.submit(spin);
      const queued = q.submit(() => 'never');
      await until(() => running.state === 'running', 10_000, 'the first task to run');
      expect(queued.cancel()).toBe(true);
      expect(await code(queued)).toBe('ERR_CANCELLED');
      expect(running.cancel()).toBe(true);
      expect(await code(running)).toBe('ERR_CANCELLED');
      expect(await q.submit(() => 3)).toBe(3);
    } finally {
      await q.terminate();
    }
  });
});

describe('thread workers: options, cache, close', () => {
  it.each([
    [{ workerType: 'fiber' }, 'workerType'],
    [{ workerType: 1 }, 'workerType'],
    [{ workerType: 'thread', heapLimitMb: 1 }, 'heapLimitMb'],
    [{ heapLimitMb: 64 }, 'heapLimitMb'],
  ])('%j is ERR_ARG naming %s', (opts, name) => {
    let err: (Error & { code?: string }) | null = null;
    try {
      new Pool(opts as never);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('ERR_ARG');
    expect(err?.message).toContain(name);
  });

  it('cache: the same task and arguments are not run again', async () => {
    const dir = join(base, 'cache1');
    const counter = join(base, 'count1');
    writeFileSync(counter, '');
    const p = new Pool({ workers: 1, cache: dir, workerType: 'thread' });
    try {
      const f = async (x: number, file: string) => {
        process.getBuiltinModule('node:fs').appendFileSync(file, `${x}\n`);
        return x * 10;
      };
      expect(await p.submit(f, 1, counter)).toBe(10);
      expect(await p.submit(f, 1, counter)).toBe(10);
      expect(await p.submit(f, 2, counter)).toBe(20);
      expect(readFileSync(counter, 'utf8')).toBe('1\n2\n');
    } finally {
      await p.close();
    }
  });

  it('close waits for running tasks, terminate cancels; after close ERR_ARG', async () => {
    const q = new Pool({ workers: 1, workerType: 'thread' });
    const f = q.submit(async () => {
      await new Promise((r) => setTimeout(r, 200));
      return 'finished before close resolved';
    });
    await Promise.all([q.close(), q.close()]);
    expect(await f).toBe('finished before close resolved');
    expect(await code(q.submit(() => 1))).toBe('ERR_ARG');
    const p = new Pool({ workers: 1, workerType: 'thread' });
    const long = p.submit(spin);
    await until(() => long.state === 'running', 10_000, 'the task to run');
    await p.terminate();
    expect(await code(long)).toBe('ERR_CANCELLED');
  });

  it('a script that ends without close() exits (idle threads do not keep it alive)', () => {
    const url = new URL('../dist/pool/index.js', import.meta.url).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const { Pool } = await import(${JSON.stringify(url)});
      const pool = new Pool({ workers: 2, workerType: 'thread' });
      console.log(JSON.stringify(await pool.map((x) => x + 1, [1, 2, 3])));`], { encoding: 'utf8', timeout: 15_000 });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('[2,3,4]');
  });
});
