// tsmpi/pool seen from outside: real scripts (tsx, as users run TypeScript)
// that end in every way a script can leave no worker behind; a cache that
// survives a crashed run; the progress bar; Pool.fromComm under tsmpirun.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fixture, gone, run, until, tsmpirun } from './harness.js';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const script = fixture('pool-script.ts');

function lines(stdout: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const l of stdout.split('\n')) if (l.startsWith('{')) Object.assign(out, JSON.parse(l));
  return out;
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

const allGone = (pids: number[]) => until(() => pids.every(gone), 3000, `workers ${pids.join(', ')} to end`);

describe('a script using the pool', () => {
  it('that ends without close() exits and leaves no worker', async () => {
    const r = await run(process.execPath, ['--import', tsx, script, 'exit'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lines(r.stdout);
    expect(out.squares).toEqual([1, 4, 9, 16]);
    expect((out.pids as number[]).length).toBe(2);
    await allGone(out.pids as number[]);
  });

  it('that dies of an uncaught error leaves no worker', async () => {
    const r = await run(process.execPath, ['--import', tsx, script, 'throw'], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the script fails after using the pool');
    await allGone(lines(r.stdout).pids as number[]);
  });

  it.each(['SIGTERM', 'SIGKILL'] as const)('killed by %s while tasks run (one busy, one asleep) leaves no worker', async (signal) => {
    let pids: number[] = [];
    const r = await run(process.execPath, ['--import', tsx, script, 'linger'], {
      timeoutMs: 30_000,
      onStdout: (text, child) => {
        const out = lines(text);
        if (out.pids) pids = out.pids as number[];
        if (out.lingering) setTimeout(() => child.kill(signal), 300);
      },
    });
    expect(r.signal).toBe(signal);
    expect(pids.length).toBe(2);
    await allGone(pids);
    // its folder: removed on the way out, or (SIGKILL) by the next pool or tsmpirun
    const folders = () => readdirSync(tmpdir()).filter((n) => n.startsWith('tsmpi-') && readFileSafe(join(tmpdir(), n, 'launcher.pid')) === String(r.child.pid));
    if (signal === 'SIGKILL') await run(process.execPath, ['--import', tsx, script, 'exit'], { timeoutMs: 30_000 });
    await until(() => folders().length === 0, 5000, 'the pool folder of the killed script to be removed');
  });

  it('with a cache: a run killed half way resumes; only the rest is computed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pool-cache-'));
    try {
      const cache = join(dir, 'cache');
      const counter = join(dir, 'runs');
      writeFileSync(counter, '');
      const ran = () => readFileSync(counter, 'utf8').split('\n').filter(Boolean).map(Number);
      const stored = () => (existsSync(cache) ? readdirSync(cache).filter((f) => f.endsWith('.result')).length : 0);
      // First run: SIGKILL once 3 results are stored (each item takes 150 ms).
      let poll: NodeJS.Timeout | undefined;
      const r1 = await run(process.execPath, ['--import', tsx, script, 'cache', cache, counter], {
        timeoutMs: 30_000,
        onStart: (child) => {
          poll = setInterval(() => {
            if (stored() >= 3) {
              clearInterval(poll);
              child.kill('SIGKILL');
            }
          }, 5);
        },
      });
      clearInterval(poll);
      expect(r1.signal).toBe('SIGKILL');
      const kept = stored();
      expect(kept).toBeGreaterThanOrEqual(3);
      expect(kept).toBeLessThan(10);
      // Its workers end by themselves within 250 ms (one may start an item meanwhile): wait for quiet.
      let last = -1;
      let stableSince = Date.now();
      await until(() => {
        const n = ran().length;
        if (n !== last) {
          last = n;
          stableSince = Date.now();
        }
        return Date.now() - stableSince > 700;
      }, 10_000, 'the killed run\'s workers to stop');
      const before = ran().length;
      // Second run: every item's result, but only the items without a stored result run.
      const r2 = await run(process.execPath, ['--import', tsx, script, 'cache', cache, counter], { timeoutMs: 30_000 });
      expect(r2.code, r2.stderr).toBe(0);
      expect(lines(r2.stdout).out).toEqual(Array.from({ length: 10 }, (_, i) => i * i));
      expect(ran().length - before).toBe(10 - kept);
      expect(stored()).toBe(10);
      // a third run computes nothing
      const r3 = await run(process.execPath, ['--import', tsx, script, 'cache', cache, counter], { timeoutMs: 30_000 });
      expect(r3.code, r3.stderr).toBe(0);
      expect(ran().length).toBe(before + 10 - kept);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('progress: one bar on stderr for a map and a task that reports its own progress', async () => {
    const r = await run(process.execPath, ['--import', tsx, script, 'progress'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(lines(r.stdout).sum).toBe((500 * 501) / 2);
    const bars = r.stderr.split('\n').filter((l) => l.startsWith('progress:'));
    expect(bars.length).toBeGreaterThanOrEqual(1);
    // 500 map items, 1 task, and that task's own 10 units
    expect(bars.at(-1)).toMatch(/100% 511\/511/);
  });
});

describe('Pool.fromComm', () => {
  it("under tsmpirun -n 3: the root's pool runs tasks on ranks 1 and 2; they resolve null once it closes", async () => {
    // --processes: the checks tell ranks apart by their pids (thread ranks share one).
    const r = await tsmpirun(['--processes', '-n', '3', fixture('pool-comm.ts')], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lines(r.stdout);
    expect(out.squares).toEqual(Array.from({ length: 20 }, (_, i) => i * i));
    expect((out.ranPids as number[]).sort()).toEqual((out.workerPids as number[]).sort());
    expect(out.rootPid).not.toBe(undefined);
    expect(out.ranPids).not.toContain(out.rootPid);
    expect(out.partial).toEqual({ from: 'a rank' });
    expect(out.error).toEqual({ name: 'TypeError', message: 'rank task failed' });
    expect(r.stdout).toContain('rank 1 served, got null');
    expect(r.stdout).toContain('rank 2 served, got null');
  });
});
