// The pool's examples, run as a user runs them: with tsx, under tsmpirun, and
// against two real tsmpid daemons (127.0.0.57, .58) with keys in the user's
// default place (~/.tsmpi, here a temporary HOME).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { keygen, startDaemon, stopDaemons, writeHostfile } from './daemons.js';
import { example, run, tsmpirun } from './harness.js';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const dirs: string[] = [];

afterAll(async () => {
  await stopDaemons();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('pool examples', () => {
  it('pool-map: the same as the serial loop, with a progress bar (tsx and tsmpirun -n 1)', async () => {
    const r = await run(process.execPath, ['--import', tsx, example('pool-map.ts'), '3000'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('3000 inputs: the longest chain starts at 2919 (216 steps); same as the serial loop: true');
    expect(r.stderr).toMatch(/progress: \[#+\] 100% 3000\/3000/);
    const t = await tsmpirun(['-n', '1', example('pool-map.ts'), '500'], { timeoutMs: 30_000 });
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('same as the serial loop: true');
  });

  it('pool-mpi: Pool.fromComm under tsmpirun -n 3', async () => {
    const r = await tsmpirun(['-n', '3', example('pool-mpi.ts')], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const pi = Number(/pi is about ([\d.]+) from 16 tasks on 2 worker ranks/.exec(r.stdout)?.[1]);
    expect(Math.abs(pi - Math.PI)).toBeLessThan(0.01);
    expect(r.stdout).toContain('rank 1: pool closed');
    expect(r.stdout).toContain('rank 2: pool closed');
  });

  it('pool-remote: locally, then on two tsmpid hosts with a hostfile, files and partial results', async () => {
    const local = await run(process.execPath, ['--import', tsx, example('pool-remote.ts')], { timeoutMs: 30_000 });
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/total 5050; \d+ partial results; wc says: 101 data.csv/);

    const home = mkdtempSync(join(tmpdir(), 'pool-example-home-'));
    dirs.push(home);
    await keygen(join(home, '.tsmpi'));
    const ds = await Promise.all(['127.0.0.57', '127.0.0.58'].map((host) => startDaemon({ host, authorizedKeys: join(home, '.tsmpi', 'id.pub'), slots: 2 })));
    const hostfile = writeHostfile(home, ds.map((d) => d.line(2)));
    const r = await run(process.execPath, ['--import', tsx, example('pool-remote.ts'), hostfile], { timeoutMs: 30_000, env: { HOME: home } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/total 5050; \d+ partial results; wc says: 101 data.csv/);
    expect(r.stdout).toMatch(/on 127\.0\.0\.5[78]\)/);
    expect(r.stdout).not.toContain('on localhost');
  });
});
