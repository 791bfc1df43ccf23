// The contract (CONTRACT.md) seen from outside: user scripts, as users write
// them, checked against the promises the implementation once broke.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, run, tsmpirun } from './harness.js';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const script = (name: string) => fixture(`contract/${name}`);
const result = (stdout: string): unknown => {
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no RESULT line in:\n${stdout}`);
  return JSON.parse(line.slice('RESULT '.length));
};

describe('contract: task pool', () => {
  it('init() inside a pool task (function or module) is the singleton world, not a hang', async () => {
    const r = await run(process.execPath, ['--import', tsx, script('pool-alone.ts'), 'task-init'], { timeoutMs: 40_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(result(r.stdout)).toEqual({ inline: [0, 1, 3], mod: [101, 0, 1, 1] });
  }, 45_000);

  it('Pool.fromComm in a singleton world resolves a pool with local workers', async () => {
    const r = await run(process.execPath, ['--import', tsx, script('pool-alone.ts'), 'from-comm'], { timeoutMs: 40_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(result(r.stdout)).toEqual({ r: [2, 4, 6], elsewhere: true, host: 'localhost' });
  }, 45_000);

  for (const [mode, end] of [['--processes', 'close'], ['--threads', 'close'], ['--processes', 'terminate']]) {
    it(`Pool.fromComm (${mode}, ${end}) runs a first module task on the other ranks, every rank ends, no file left in the working folder`, async () => {
      const cwd = mkdtempSync(join(tmpdir(), 'tsmpi-contract-cwd-'));
      try {
        const r = await tsmpirun([mode, '-n', '4', '--timeout', '30', script('from-comm-module.ts'), end], { cwd, timeoutMs: 40_000 });
        expect(r.code, r.stderr).toBe(0);
        expect(result(r.stdout)).toEqual([101, 102, 103, 104]);
        expect(readdirSync(cwd)).toEqual([]);
      } finally {
        rmSync(cwd, { recursive: true, force: true });
      }
    }, 45_000);
  }
});

describe('contract: runtime', () => {
  it('a script run without tsmpirun gets a singleton world where every call works and bad arguments reject at once', async () => {
    const r = await run(process.execPath, ['--import', tsx, script('singleton-world.ts')], { timeoutMs: 40_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(result(r.stdout)).toEqual([]);
  }, 45_000);

  it('--threads and --processes give the same results, as the contract says', async () => {
    const outs: Record<string, unknown>[][] = [];
    for (const mode of ['--threads', '--processes']) {
      const r = await tsmpirun([mode, '-n', '3', '--timeout', '30', script('world-sweep.ts')], { timeoutMs: 40_000 });
      expect(r.code, r.stderr).toBe(0);
      const ranks = r.stdout.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)) as Record<string, unknown>);
      outs.push(ranks.sort((a, b) => (a.rank as number) - (b.rank as number)));
    }
    expect(outs[0]).toEqual(outs[1]);
    const [r0, r1, r2] = outs[0];
    for (const x of outs[0]) {
      expect(x.fold).toBe('((01)2)');
      expect(x.maxlocTie).toEqual([7, 0]);
      expect(x.minlocTie).toEqual([1, 0]);
      expect(x.replace).toBe(20);
      expect(x.noop).toBe(0);
      expect(x.sumbig).toBe('6n');
      expect(x.typed).toEqual(['Int16Array', '3', '3']);
      expect(x.bxorf).toBe('ERR_OP');
      expect(x.ident).toEqual([true, true, true, true, 'g', 't', true, true, true, true]);
      expect(x.dup).toEqual([3, 6]);
    }
    expect([r0.scanFold, r1.scanFold, r2.scanFold]).toEqual(['0', '01', '012']);
    expect(r1.foldReduce).toEqual([0, 1, 2]);
    expect([r1.probe, r1.sync, r1.order]).toEqual([[0, 4], 'sync', true]);
    expect(r0.recvInto).toEqual({ source: 1, tag: 10, bytes: 12 });
  }, 60_000);
});

describe('contract: typings', () => {
  it("a strict user .ts file importing 'tsmpi', 'tsmpi/pool' and 'tsmpi/dataframe' type-checks against the package's .d.ts", async () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const r = await run(process.execPath, [tsc, '-p', script('typed/tsconfig.json')], { timeoutMs: 60_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  }, 65_000);
});

