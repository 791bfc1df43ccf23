// The fast paths of point-to-point (thread ranks: a small send copied into the
// ring at once, large messages in pieces, a large raw message waiting a turn for
// its recvInto) at their edges, and the same cases over sockets: both modes
// keep every guarantee (test/fixtures/p2p-paths.ts).
import { describe, expect, it } from 'vitest';
import { fixture, tsmpirun } from './harness.js';

describe('point to point at the edges of the fast paths', () => {
  for (const mode of ['--threads', '--processes']) {
    it(`${mode}: ring-sized and small-path-sized messages, wrap-around, interleaving, refused recvInto, probes, a peer that ends`, async () => {
      const r = await tsmpirun([mode, '-n', '2', fixture('p2p-paths.ts')], { timeoutMs: 60_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n').sort()).toEqual(['rank 0: 6 cases passed', 'rank 1: 5 cases passed']);
    });
  }
});
