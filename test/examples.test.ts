// Every example is runnable, and run here.
import { describe, expect, it } from 'vitest';
import { example, tsmpirun } from './harness.js';

describe('examples', () => {
  it('hello: eight greetings', async () => {
    const r = await tsmpirun(['-n', '8', example('hello.ts')]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').sort();
    expect(lines).toHaveLength(8);
    for (let i = 0; i < 8; i++) expect(r.stdout).toContain(`Hello from rank ${i} of 8`);
  });

  it('ring: the token comes back with the sum of ranks', async () => {
    const r = await tsmpirun(['-n', '5', example('ring.ts')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('token came back after 4 hops with sum 10 (expected 10)');
  });

  it('pingpong: a line per size', async () => {
    const r = await tsmpirun(['-n', '2', example('pingpong.ts'), '50']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(4);
    expect(r.stdout).toMatch(/^\s+8 B\s+[\d.]+ µs/m);
  });

  it('cpi: pi to within 1e-10', async () => {
    const r = await tsmpirun(['-n', '3', example('cpi.ts'), '1000000']);
    expect(r.code).toBe(0);
    const pi = Number(/pi is approximately ([\d.]+)/.exec(r.stdout)?.[1]);
    expect(Math.abs(pi - Math.PI)).toBeLessThan(1e-10);
  });

  it('grid: row and column sums from split communicators', async () => {
    const r = await tsmpirun(['-n', '6', example('grid.ts')]);
    expect(r.code).toBe(0);
    // 3 columns: row 0 = ranks 0..2 (values 0+10+20), row 1 = ranks 3..5 (30+40+50)
    expect(r.stdout).toContain('rank 0 at (0, 0): row 0 sums to 30 over 3 ranks, column 0 to 30 over 2');
    expect(r.stdout).toContain('rank 5 at (1, 2): row 1 sums to 120 over 3 ranks, column 2 to 70 over 2');
  });
});

describe('examples/remote', () => {
  it('runs locally too: the total over data.csv', async () => {
    const r = await tsmpirun(['-n', '3', example('remote/job.ts')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('total 5050 over 100 rows; ranks: 0@localhost 1@localhost 2@localhost');
  });
});
