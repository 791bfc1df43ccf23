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
