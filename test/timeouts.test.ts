// Every wait has a bound: the named timeouts fire against a peer that never answers.
import { describe, expect, it } from 'vitest';
import { fixture, tsmpirun } from './harness.js';

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
