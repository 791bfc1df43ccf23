// tsmpi/pool on this machine: real worker processes, the serial loop as the
// oracle, every error path of the contract.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, asCompleted, task, type Future } from '../dist/pool/index.js';
import { fixture, gone, sleep, until } from './harness.js';
import { code, fromText, range } from './pool-helpers.js';

let pool: InstanceType<typeof Pool>;
let base: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'pool-test-'));
  pool = new Pool({ workers: 2 });
});

afterAll(async () => {
  await pool?.terminate();
  if (base) rmSync(base, { recursive: true, force: true });
});



describe('results', () => {
  it('map, imap and imapUnordered equal the serial loop (100,000 trivial items, auto batches)', async () => {
    const items = range(100_000);
    const f = (x: number) => (x * x) % 7919;
    const oracle = items.map((x) => f(x));
    expect(await pool.map(f, items)).toEqual(oracle);
    const inOrder: number[] = [];
    for await (const v of pool.imap(f, items)) inOrder.push(v);
    expect(inOrder).toEqual(oracle);
    const any: number[] = [];
    for await (const v of pool.imapUnordered(f, items)) any.push(v);
    expect(any.sort((a, b) => a - b)).toEqual([...oracle].sort((a, b) => a - b));
  });

  it('map passes context as the second argument; fixed chunksize; empty input', async () => {
    const items = range(50);
    expect(await pool.map((x: number, ctx: { k: number }) => x * ctx.k, items, { context: { k: 3 }, chunksize: 7 })).toEqual(items.map((x) => x * 3));
    expect(await pool.map((x: number) => x, [])).toEqual([]);
  });

  it('values travel as structuredClone gives them (Map, typed arrays, shared objects, bigint, Date)', async () => {
    const shared = { s: 1 };
    const value = { m: new Map([[1, 'a']]), t: new Float32Array([1.5, 2.5]), a: shared, b: shared, n: 12n, d: new Date(5) };
    const back = await pool.submit((v: typeof value) => v, value);
    expect(back).toEqual(structuredClone(value));
    expect(back.a).toBe(back.b);
    expect(back.t).toBeInstanceOf(Float32Array);
  });

  it('async functions; a Future is awaitable, knows its state and host', async () => {
    const f = pool.submit(async (x: number) => {
      await new Promise((r) => setTimeout(r, 50));
      return x + 1;
    }, 41);
    expect(['queued', 'running']).toContain(f.state);
    expect(typeof f.id).toBe('number');
    expect(await f).toBe(42);
    expect(f.state).toBe('done');
    expect(f.host).toBe('localhost');
  });

  it('asCompleted yields the futures themselves, in the order they settle', async () => {
    const fs = [300, 20, 150].map((ms) =>
      pool.submit(async (t: number) => {
        await new Promise((r) => setTimeout(r, t));
        return t;
      }, ms),
    );
    const order: number[] = [];
    for await (const done of asCompleted(fs)) {
      expect(fs).toContain(done);
      order.push(await done);
    }
    expect(order[0]).toBe(20);
    expect(order.sort((a, b) => a - b)).toEqual([20, 150, 300]);
  });

  it('reportPartial inside a task reaches onPartial, in order', async () => {
    const seen: unknown[] = [];
    const f = pool.submit(fromText<(n: number) => Promise<string>>(`async (n) => {
      for (let i = 0; i < n; i++) await reportPartial({ i });
      return 'ok';
    }`), 4);
    f.onPartial((v) => seen.push(v));
    expect(await f).toBe('ok');
    expect(seen).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }]);
  });

  it('module tasks: compiled once with their local imports and packages; partial results', async () => {
    const steps = task<[number], number>(new URL('./fixtures/pool-tasks.ts', import.meta.url), 'steps');
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
    const search = task<[number, number], { best: number; steps: number }>(fixture('pool-tasks.ts'), 'search');
    const partials: unknown[] = [];
    const f = pool.submit(search, 1, 1000);
    f.onPartial((p) => partials.push(p));
    expect(await f).toEqual({ best: 871, steps: 178 });
    expect(partials.at(-1)).toEqual({ best: 871, steps: 178 });
  });

  it('exec runs a program without a shell: code, stdout, stderr, env', async () => {
    const r = await pool.exec([process.execPath, '-e', 'process.stdout.write(process.env.POOL_X + " $HOME"); process.stderr.write("e"); process.exit(3)'], { env: { POOL_X: 'x1' } });
    expect(r).toEqual({ code: 3, signal: null, stdout: 'x1 $HOME', stderr: 'e' });
  });
});

describe('errors', () => {
  it('a task that throws: same name and message, the remote stack, at once; the pool stays usable', async () => {
    const slow = pool.submit(async () => {
      await new Promise((r) => setTimeout(r, 3000));
      return 1;
    });
    const t0 = Date.now();
    const err = await pool
      .submit(function failing(x: number) {
        if (x > 0) throw new TypeError(`bad ${x}`);
        return x;
      }, 5)
      .then(
        () => null,
        (e: Error) => e,
      );
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(err).toBeInstanceOf(TypeError);
    expect(err!.name).toBe('TypeError');
    expect(err!.message).toBe('bad 5');
    expect(err!.stack).toContain('failing');
    expect(err!.stack).toContain('tsmpi-pool-task.js');
    expect(await pool.submit((x: number) => x * 2, 4)).toBe(8);
    expect(await slow).toBe(1);
  });

  it('a map whose item throws rejects with that error and the item; a module task keeps its error class', async () => {
    const e = await pool.map((x: number) => {
      if (x === 37) throw new RangeError('item 37');
      return x;
    }, range(100)).catch((x: Error) => x);
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message).toBe('item 37');
    expect((e as { item?: number }).item).toBe(37);
    const m = await pool.submit(task(fixture('pool-tasks.ts'), 'fails'), 'why').catch((x: Error) => x);
    expect(m).toBeInstanceOf(RangeError);
    expect((m as Error).message).toBe('module task failed: why');
    expect((m as Error).stack).toContain('pool-tasks.ts');
  });

  it('a free variable is ERR_ARG naming it', async () => {
    const secret = 7;
    const f = pool.submit((x: number) => x + secret, 1);
    const e = await f.then(() => null, (x: Error & { code: string }) => x);
    expect(e!.code).toBe('ERR_ARG');
    expect(e!.message).toContain('`secret`');
    expect(f.state).toBe('failed');
    await expect(pool.map((x: number) => x + secret, [1])).rejects.toMatchObject({ code: 'ERR_ARG' });
  });

  it('imap and imapUnordered throw the first error when the loop reaches it', async () => {
    const bad = (x: number) => {
      if (x === 5) throw new Error('five');
      return x;
    };
    const seen: number[] = [];
    const e = await (async () => {
      for await (const v of pool.imap(bad, range(10), { chunksize: 1 })) seen.push(v);
    })().catch((x: Error) => x);
    expect((e as Error).message).toBe('five');
    expect(seen.every((v, i) => v === i)).toBe(true);
    const u = await (async () => {
      for await (const _ of pool.imapUnordered(bad, range(10))) void _;
    })().catch((x: Error) => x);
    expect((u as Error).message).toBe('five');
  });

  it('unserializable arguments and results are ERR_SERIALIZE', async () => {
    expect(await code(pool.submit((f: unknown) => 1, () => 1))).toBe('ERR_SERIALIZE');
    const named = await pool.submit((o: unknown) => o, { jobs: [1, { run: () => 0 }] }).catch((x: Error) => x);
    expect((named as Error).message).toContain('jobs[1].run is a function');
    expect(await code(pool.submit(() => ({ f: () => 1 })))).toBe('ERR_SERIALIZE');
    expect(await code(pool.map((x: number) => (x === 3 ? Symbol('s') : x), range(5)))).toBe('ERR_SERIALIZE');
    expect(await pool.submit(() => 'still fine')).toBe('still fine');
  });

  it('exec of a missing program is ERR_ARG naming it', async () => {
    const e = await pool.exec(['no-such-program-tsmpi-test', '-x']).then(() => null, (x: Error & { code: string }) => x);
    expect(e!.code).toBe('ERR_ARG');
    expect(e!.message).toContain('no-such-program-tsmpi-test');
    await expect(pool.exec([])).rejects.toMatchObject({ code: 'ERR_ARG' });
  });

  it('a worker killed by SIGKILL mid-task: ERR_PEER_LOST for exactly its task; the pool replaces it', async () => {
    const before = pool.workers.map((w) => w.pid);
    const victim = pool.submit(fromText<() => Promise<void>>(`async () => {
      await reportPartial(process.pid);
      await new Promise((r) => setTimeout(r, 10000));
    }`));
    let pid = 0;
    victim.onPartial((p) => (pid = p as number));
    const others = range(6).map((i) =>
      pool.submit(async (x: number) => {
        await new Promise((r) => setTimeout(r, 100));
        return x;
      }, i),
    );
    await until(() => pid > 0, 10_000, 'the victim to report its pid');
    process.kill(pid, 'SIGKILL');
    const e = await victim.then(() => null, (x: Error & { code: string }) => x);
    expect(e!.code).toBe('ERR_PEER_LOST');
    expect(e!.message).toContain(String(pid));
    expect(victim.state).toBe('failed');
    expect(await Promise.all(others)).toEqual(range(6));
    await until(() => pool.workers.length === 2, 10_000, 'a replacement worker');
    expect(pool.workers.map((w) => w.pid)).not.toContain(pid);
    expect(before.length).toBeGreaterThan(0);
    // process.exit in a task is the same loss
    expect(await code(pool.submit(() => process.exit(9)))).toBe('ERR_PEER_LOST');
    expect(await pool.submit(() => 'replaced')).toBe('replaced');
  });

  it('cancel: a queued task is dropped, a running one ends its worker; cancel() answers at once', async () => {
    const p = new Pool({ workers: 1 });
    try {
      const running = p.submit(async () => {
        await new Promise((r) => setTimeout(r, 10_000));
      });
      const queued = p.submit(() => 'never');
      await until(() => running.state === 'running', 10_000, 'the first task to run');
      expect(queued.state).toBe('queued');
      expect(queued.cancel()).toBe(true);
      expect(queued.state).toBe('cancelled');
      expect(await code(queued)).toBe('ERR_CANCELLED');
      const pid = p.workers[0]!.pid;
      const answer = running.cancel();
      expect(answer).toBe(true);
      expect(await code(running)).toBe('ERR_CANCELLED');
      expect(running.state).toBe('cancelled');
      await until(() => gone(pid), 5000, 'the cancelled worker to end');
      const done = p.submit(() => 3);
      expect(await done).toBe(3);
      expect(done.cancel()).toBe(false);
    } finally {
      await p.terminate();
    }
  });

  it('taskTimeout: ERR_TIMEOUT, the worker replaced, the next task runs', async () => {
    const p = new Pool({ workers: 1, taskTimeout: 300 });
    try {
      expect(await p.submit(() => 'quick')).toBe('quick');
      const pid = p.workers[0]!.pid;
      const t0 = Date.now();
      expect(
        await code(
          p.submit(() => {
            const end = Date.now() + 20_000;
            while (Date.now() < end);
          }),
        ),
      ).toBe('ERR_TIMEOUT');
      expect(Date.now() - t0).toBeLessThan(5000);
      await until(() => gone(pid), 5000, 'the timed-out worker to end');
      expect(await p.submit(() => 'after')).toBe('after');
    } finally {
      await p.terminate();
    }
  });

  it('retries: a task whose worker dies runs again on another worker', async () => {
    const p = new Pool({ workers: 2, retries: 1 });
    const marker = join(base, 'retry-marker');
    try {
      // The first run dies; the second (another worker, the marker exists) succeeds.
      const r = await p.submit(async (file: string) => {
        const fs = process.getBuiltinModule('node:fs');
        if (!fs.existsSync(file)) {
          fs.writeFileSync(file, String(process.pid));
          process.kill(process.pid, 'SIGKILL');
        }
        return Number(fs.readFileSync(file, 'utf8')) !== process.pid;
      }, marker);
      expect(r).toBe(true);
      // with no retry left, a loss is ERR_PEER_LOST
      const e = await p.submit(() => process.kill(process.pid, 'SIGKILL')).then(() => null, (x: Error & { code: string }) => x);
      expect(e!.code).toBe('ERR_PEER_LOST');
      expect(e!.message).toContain('after 1 retry');
    } finally {
      await p.terminate();
    }
  });

  it('after close: ERR_ARG; close and terminate are idempotent; terminate cancels what is unfinished', async () => {
    const p = new Pool({ workers: 1 });
    const long = p.submit(async () => {
      await new Promise((r) => setTimeout(r, 10_000));
    });
    const queued = p.submit(() => 1);
    await until(() => long.state === 'running', 10_000, 'the task to run');
    const pids = p.workers.map((w) => w.pid);
    await Promise.all([p.terminate(), p.terminate()]);
    expect(await code(long)).toBe('ERR_CANCELLED');
    expect(await code(queued)).toBe('ERR_CANCELLED');
    await p.close();
    expect(await code(p.submit(() => 1))).toBe('ERR_ARG');
    expect(await code(p.map((x: number) => x, [1]))).toBe('ERR_ARG');
    expect(await code(p.exec(['true']))).toBe('ERR_ARG');
    await until(() => pids.every(gone), 5000, 'workers to end');

    const q = new Pool({ workers: 1 });
    const f = q.submit(async () => {
      await new Promise((r) => setTimeout(r, 200));
      return 'finished before close resolved';
    });
    await Promise.all([q.close(), q.close()]);
    expect(f.state).toBe('done');
    expect(await f).toBe('finished before close resolved');
  });
});

describe('options', () => {
  it.each([
    [{ workers: -1 }, 'workers'],
    [{ workers: 1.5 }, 'workers'],
    [{ retries: 'x' }, 'retries'],
    [{ taskTimeout: 0 }, 'taskTimeout'],
    [{ progress: 'yes' }, 'progress'],
    [{ via: 'rsh' }, 'via'],
    [{ files: 'a.txt' }, 'files'],
    [{ files: ['/no/such/file'] }, 'files'],
    [{ hostfile: '/no/such/hostfile' }, 'hostfile'],
    [{ cache: '' }, 'cache'],
    [{ monitor: 'nope' }, 'monitor'],
    [{ workers: 0 }, 'workers'],
    [{ bogus: 1 }, 'bogus'],
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

  it("sshCommand needs via: 'ssh'", () => {
    expect(() => new Pool({ workers: 0, hosts: '127.0.0.51:1', sshCommand: 'ssh -F x' })).toThrow(/sshCommand/);
  });

  it('map options: chunksize and items are checked', async () => {
    expect(await code(pool.map((x: number) => x, [1], { chunksize: 0 }))).toBe('ERR_ARG');
    expect(await code(pool.map((x: number) => x, 5 as never))).toBe('ERR_ARG');
    expect(await code(pool.submit(42 as never))).toBe('ERR_ARG');
    expect(() => task('', 'x')).toThrow(/moduleUrl/);
  });
});

describe('cache', () => {
  it('a second call with the same task and arguments is not run again; throwing tasks are not stored', async () => {
    const dir = join(base, 'cache1');
    const counter = join(base, 'count1');
    writeFileSync(counter, '');
    const p = new Pool({ workers: 1, cache: dir });
    try {
      const f = async (x: number, file: string) => {
        process.getBuiltinModule('node:fs').appendFileSync(file, `${x}\n`);
        return x * 10;
      };
      expect(await p.submit(f, 1, counter)).toBe(10);
      expect(await p.submit(f, 1, counter)).toBe(10);
      expect(await p.submit(f, 2, counter)).toBe(20);
      const g = (x: number) => {
        if (x < 0) throw new Error('negative');
        return x;
      };
      expect(await code(p.submit(g, -1))).toBe('no code: Error: negative');
      expect(await code(p.submit(g, -1))).toBe('no code: Error: negative');
      const { readFileSync } = await import('node:fs');
      expect(readFileSync(counter, 'utf8')).toBe('1\n2\n');
      // map items hit the same per-item entries
      const items = [1, 2, 3];
      const runs = join(base, 'count1m');
      writeFileSync(runs, '');
      const h = async (x: number, ctx: { file: string }) => {
        process.getBuiltinModule('node:fs').appendFileSync(ctx.file, `${x}\n`);
        return x + 0.5;
      };
      expect(await p.map(h, items, { context: { file: runs } })).toEqual([1.5, 2.5, 3.5]);
      expect(await p.map(h, [...items, 4], { context: { file: runs } })).toEqual([1.5, 2.5, 3.5, 4.5]);
      expect(readFileSync(runs, 'utf8')).toBe('1\n2\n3\n4\n');
    } finally {
      await p.close();
    }
  });
});

// keep the Future type used (documentation of the API surface)
export type _F = Future<number>;
void sleep;
