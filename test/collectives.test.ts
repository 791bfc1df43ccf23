import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, root, run, tsmpirun } from './harness.js';

describe('collective suite (after mpi4py test_cco_obj) on world, dup and split halves', () => {
  for (const n of [1, 2, 3, 8]) {
    it(`passes at world size ${n}`, async () => {
      const r = await tsmpirun(['-n', String(n), fixture('coll-suite.ts')], { timeoutMs: 120_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(n);
      for (const l of lines) expect(l).toMatch(/: 30 collective case groups passed$/);
    });
  }

  for (const [n, crowded] of [
    [3, '0'],
    [8, '0'],
  ] as const) {
    it(`passes at world size ${n} with TSMPI_CROWDED=${crowded} (the other algorithm family)`, async () => {
      const r = await tsmpirun(['-n', String(n), '-x', `TSMPI_CROWDED=${crowded}`, fixture('coll-suite.ts')], { timeoutMs: 120_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(n);
    });
  }

  it('passes as a plain script (singleton world)', async () => {
    const r = await run(process.execPath, [join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), fixture('coll-suite.ts')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('rank 0/1: 30 collective case groups passed');
  });
});
