import { describe, expect, it } from 'vitest';
import { fixture, run, root, tsmpirun } from './harness.js';
import { join } from 'node:path';

describe('point-to-point suite (ported from mpi4py test_p2p_obj)', () => {
  for (const n of [1, 2, 3, 5]) {
    it(`passes at world size ${n}`, async () => {
      const r = await tsmpirun(['-n', String(n), fixture('p2p-suite.ts')]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n').sort();
      expect(lines).toHaveLength(n);
      for (const l of lines) expect(l).toMatch(/: 16 cases passed$/);
    });
  }

  it('passes as a plain script under tsx (singleton world)', async () => {
    const r = await run(process.execPath, [join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), fixture('p2p-suite.ts')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('rank 0/1: 16 cases passed');
  });
});
