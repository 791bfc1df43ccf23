// The codec's clone property through real ranks (test/fixtures/clone-ranks.ts):
// values drawn from one fast-check seed on every rank, sent, and compared on the
// receiving rank with structuredClone of its own copy, identity included.
import { describe, expect, it } from 'vitest';
import { fixture, tsmpirun } from './harness.js';

describe('values arrive as structuredClone gives them, through real ranks', () => {
  it('tsmpirun -n 2: send/recv, isend/irecv, sendrecv', async () => {
    const r = await tsmpirun(['-n', '2', fixture('clone-ranks.ts'), 'p2p'], { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = /^clone ok p2p (\d+) values, (\d+) with an object reached twice$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(180);
    expect(Number(m![2])).toBeGreaterThan(20);
  });

  it('tsmpirun -n 3: bcast from every root, scatter, gather, allgather, alltoall, reduce, allreduce, scan and exscan with a function op', async () => {
    const r = await tsmpirun(['-n', '3', fixture('clone-ranks.ts'), 'coll'], { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^clone ok coll \d+ values, \d+ with an object reached twice$/m);
  });
});
