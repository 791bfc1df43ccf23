// Every wait has a bound: the named timeouts fire against a peer that never answers.
import { describe, expect, it } from 'vitest';
import { fixture, tsmpirun } from './harness.js';
import { tempDirs } from './expect-code.js';

const tempDir = tempDirs('sweep');

describe('bounded waits', () => {
  it('init() gives up with ERR_TIMEOUT when a rank never joins (TSMPI_INIT_TIMEOUT)', async () => {
    const r = await tsmpirun(['-n', '2', '-x', 'TSMPI_INIT_TIMEOUT=1', fixture('late-init.ts')]);
    expect(r.code).toBe(0);
    const m = /ERR_TIMEOUT after ([\d.]+) s/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(0.9);
    expect(Number(m![1])).toBeLessThan(2.9);
  });
});

describe('leftovers', () => {
  it('the next launcher removes the job folder of one killed with SIGKILL', async () => {
    const { mkdirSync, writeFileSync, existsSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { sweepStaleJobFolders } = await import('../launcher/job/job-folder.js');
    const base = tempDir();
    const dead = join(base, 'tsmpi-dead');
    const alive = join(base, 'tsmpi-alive');
    const other = join(base, 'tsmpi-nopid');
    for (const d of [dead, alive, other]) mkdirSync(d);
    writeFileSync(join(dead, 'launcher.pid'), '999999999');
    writeFileSync(join(alive, 'launcher.pid'), String(process.pid));
    sweepStaleJobFolders(base, join(base, 'tsmpi-mine'));
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(alive)).toBe(true);
    expect(existsSync(other)).toBe(true);
  });
});
