// tsmpi/pool on remote hosts: real tsmpid daemons on 127.0.0.51–.59 (TLS,
// keys, pinned host keys, encrypted staging, each with its own workdir, never
// the launcher's folder), module tasks shipped with their imports, programs,
// files, partial results, and hosts that die mid-map.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Pool, task } from '../dist/pool/index.js';
import { keygen, startDaemon, stopDaemons, writeHostfile, type TestDaemon } from './daemons.js';
import { fixture, root, until } from './harness.js';
import { range } from './pool-helpers.js';

let base: string;
let keyDir: string;
let dataFile: string;
let A: TestDaemon;
let B: TestDaemon;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'pool-remote-'));
  keyDir = join(base, 'keys');
  await keygen(keyDir);
  dataFile = join(base, 'pool-data.txt');
  writeFileSync(dataFile, 'staged-for-the-pool-17\n');
  [A, B] = await Promise.all([
    startDaemon({ host: '127.0.0.51', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
    startDaemon({ host: '127.0.0.52', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
  ]);
});

afterAll(async () => {
  await stopDaemons();
  if (base) rmSync(base, { recursive: true, force: true });
});

const keys = () => ({ identity: join(keyDir, 'id'), knownHosts: join(keyDir, 'known_hosts') });
const hostfile = (...ds: [TestDaemon, number][]) => writeHostfile(base, ds.map(([d, n]) => d.line(n)));

describe('remote hosts through tsmpid', () => {
  it('a module task with local imports and a package runs in the host’s own job folder, with the staged files', async () => {
    const pool = new Pool({ workers: 0, hostfile: hostfile([A, 1]), files: [dataFile], ...keys() });
    try {
      const f = pool.submit(task(fixture('pool-tasks.ts'), 'whereAmI'));
      const w = await f;
      expect(f.host).toBe('127.0.0.51');
      const jobs = pathToFileURL(join(A.workdir, 'jobs')).href;
      // import.meta names the files where they are on that host, not on the launcher
      expect(w.self.startsWith(jobs)).toBe(true);
      expect(w.self.endsWith('/pool-tasks.ts')).toBe(true);
      expect(w.lib.startsWith(jobs)).toBe(true);
      expect(w.lib.endsWith('/pool-lib.ts')).toBe(true);
      expect(w.self).not.toContain(root);
      expect(w.cwd.startsWith(join(A.workdir, 'jobs'))).toBe(true);
      expect(w.data).toBe('staged-for-the-pool-17');
      expect(w.ast).toBe('Program');
      // partial results come back from the host
      const partials: unknown[] = [];
      const s = pool.submit(task(fixture('pool-tasks.ts'), 'search'), 1, 100);
      s.onPartial((p) => partials.push(p));
      expect(await s).toEqual({ best: 97, steps: 118 });
      expect(partials.at(-1)).toEqual({ best: 97, steps: 118 });
      // an error keeps its class, message and remote stack
      const e = await pool.submit(task(fixture('pool-tasks.ts'), 'fails'), 'far').catch((x: Error) => x);
      expect(e).toBeInstanceOf(RangeError);
      expect((e as Error).message).toBe('module task failed: far');
      expect((e as Error).stack).toContain('pool-tasks.ts');
      expect((e as Error).stack).toContain('127.0.0.51');
    } finally {
      await pool.close();
    }
    await until(() => A.children().length === 0, 5000, 'the remote workers to end');
    await until(() => A.jobs().length === 0, 5000, 'the job folder to be removed');
  });

  it('map over two hosts equals the serial loop; programs run there, with their files', async () => {
    const pool = new Pool({ workers: 0, hostfile: hostfile([A, 2], [B, 2]), files: [dataFile], ...keys() });
    try {
      const items = range(2000);
      expect(await pool.map((x: number, c: { k: number }) => x * c.k + 1, items, { context: { k: 3 } })).toEqual(items.map((x) => x * 3 + 1));
      const hosts = new Set<string>();
      const fs = range(8).map((i) =>
        pool.submit(async (x: number) => {
          await new Promise((r) => setTimeout(r, 100));
          return x;
        }, i),
      );
      expect(await Promise.all(fs)).toEqual(range(8));
      for (const f of fs) hosts.add(f.host!);
      expect([...hosts].sort()).toEqual(['127.0.0.51', '127.0.0.52']);
      const cat = await pool.exec(['cat', 'pool-data.txt']);
      expect(cat).toMatchObject({ code: 0, stdout: 'staged-for-the-pool-17\n' });
      const extra = join(base, 'extra.txt');
      writeFileSync(extra, 'shipped with the program\n');
      const r = await pool.exec([process.execPath, '-e', 'process.stdout.write(require("fs").readFileSync("extra.txt", "utf8") + process.cwd())'], { files: [extra] });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('shipped with the program');
      expect(r.stdout).toMatch(/\/jobs\//);
      expect(await pool.exec(['no-such-program-on-the-host']).catch((e: { code: string; message: string }) => [e.code, e.message.includes('no-such-program-on-the-host')])).toEqual(['ERR_ARG', true]);
    } finally {
      await pool.close();
    }
  });

  it('cancel of a running remote task: ERR_CANCELLED; the host gets new workers and the other tasks still finish', async () => {
    const pool = new Pool({ workers: 0, hostfile: hostfile([A, 2]), ...keys() });
    try {
      const long = pool.submit(async () => {
        await new Promise((r) => setTimeout(r, 20_000));
      });
      const other = pool.submit(async () => {
        await new Promise((r) => setTimeout(r, 300));
        return 'other';
      });
      await until(() => long.state === 'running' && other.state === 'running', 15_000, 'both tasks to run');
      const before = A.children();
      expect(long.cancel()).toBe(true);
      expect(long.state).toBe('cancelled');
      await expect(long).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
      // the other task went back to the queue and ran on the new workers
      expect(await other).toBe('other');
      expect(await pool.submit(() => 'after')).toBe('after');
      for (const pid of before) expect(A.children()).not.toContain(pid);
    } finally {
      await pool.close();
    }
    await until(() => A.children().length === 0, 5000, 'the remote workers to end');
  });

  it('a host that cannot be reached: ERR_PEER_LOST for what waits, nothing hangs', async () => {
    const file = writeHostfile(base, ['127.0.0.59 slots=1 port=1']);
    const pool = new Pool({ workers: 0, hostfile: file, ...keys() });
    const e = await pool.submit(() => 1).catch((x: { code: string; message: string }) => x);
    expect((e as { code: string }).code).toBe('ERR_PEER_LOST');
    expect((e as { message: string }).message).toContain('127.0.0.59');
    await pool.close();
  });
});

describe('a daemon killed mid-map', () => {
  async function killMidMap(retries: number): Promise<{ result: unknown; dead: TestDaemon; other: TestDaemon }> {
    const [C, D] = await Promise.all([
      startDaemon({ host: retries ? '127.0.0.53' : '127.0.0.55', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
      startDaemon({ host: retries ? '127.0.0.54' : '127.0.0.56', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
    ]);
    const marks = join(base, `marks-${retries}`);
    writeFileSync(marks, '');
    const pool = new Pool({ workers: 0, hostfile: hostfile([C, 2], [D, 2]), retries, ...keys() });
    try {
      const p = pool.map(
        async (x: number, c: { marks: string }) => {
          process.getBuiltinModule('node:fs').appendFileSync(c.marks, `${x}\n`);
          await new Promise((r) => setTimeout(r, 150));
          return x * 2;
        },
        range(24),
        { context: { marks } },
      );
      const result = p.then(
        (v) => v,
        (e: unknown) => e,
      );
      await until(() => readFileSync(marks, 'utf8').split('\n').filter(Boolean).length >= 6, 15_000, 'the map to be under way');
      const children = C.children();
      expect(children.length).toBe(2);
      await C.kill('SIGKILL');
      const r = await result;
      // the dead host's workers do not outlive it
      for (const pid of children) await until(() => !readFileSyncSafe(`/proc/${pid}/stat`) || readFileSyncSafe(`/proc/${pid}/stat`).includes(') Z'), 5000, `worker ${pid} to end`);
      return { result: r, dead: C, other: D };
    } finally {
      await pool.terminate();
    }
  }

  it('without retries: the map rejects with ERR_PEER_LOST naming the host', async () => {
    const { result, dead } = await killMidMap(0);
    expect((result as { code?: string }).code).toBe('ERR_PEER_LOST');
    expect((result as Error).message).toContain(dead.host);
  });

  it('with retries: the lost batches run again on the other host; the map completes', async () => {
    const { result, other } = await killMidMap(1);
    expect(result).toEqual(range(24).map((x) => x * 2));
    await until(() => other.children().length === 0, 5000, 'the other host’s workers to end');
  });
});

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
