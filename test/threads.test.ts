// `tsmpirun --threads`: ranks as worker threads of one process, messages through
// shared memory. The whole suite also runs in this mode (`npm run test:threads`);
// here are the guarantees that only a thread rank can break, and the suites
// run explicitly with --threads so `npm test` covers the mode too.
import { describe, expect, it } from 'vitest';
import { ShmRing, RING_HEADER_BYTES } from '../dist/runtime/transport/shm-ring.js';
import { fixture, tsmpirun } from './harness.js';

const lines = (s: string) => s.trim().split('\n').filter(Boolean);

describe('thread ranks', () => {
  it('are threads of one process, each with its own argv and environment', async () => {
    const r = await tsmpirun(['--threads', '-n', '3', '-x', 'TSMPI_T_A=exported', fixture('threads-probe.ts'), 'who', 'a b', '']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const who = lines(r.stdout).map((l) => JSON.parse(l) as { rank: number; pid: number; threadId: number; argv: string[]; a: string });
    who.sort((x, y) => x.rank - y.rank);
    expect(who.map((w) => w.rank)).toEqual([0, 1, 2]);
    expect(new Set(who.map((w) => w.pid)).size).toBe(1);
    expect(new Set(who.map((w) => w.threadId)).size).toBe(3);
    expect(who.every((w) => w.threadId > 0)).toBe(true);
    for (const w of who) expect(w.argv).toEqual(['a b', '']);
    expect(who.map((w) => w.a)).toEqual(['exported', 'changed by rank 1', 'exported']);
  });

  it('a rank that runs out of heap ends as a failed rank, and the job ends with its report', async () => {
    const r = await tsmpirun(['--threads', '-n', '3', fixture('threads-probe.ts'), 'oom'], { env: { TSMPI_THREAD_HEAP_MB: '64' }, timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/tsmpirun: rank 1 on localhost \(pid \d+\) exited with code \d+/);
    expect(r.stderr).toContain('rank 1 ran out of memory (its heap limit is 64 MB');
    expect(r.stderr).toContain('ended 2 other ranks');
  });

  it('a barrier (on shared counters) whose member ended fails with ERR_PEER_LOST instead of hanging', async () => {
    const r = await tsmpirun(['--threads', '-n', '3', fixture('threads-probe.ts'), 'barrier-lost']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout).sort()).toEqual(['rank 0: ERR_PEER_LOST', 'rank 2: ERR_PEER_LOST']);
  });

  it('--report has a line a rank', async () => {
    const r = await tsmpirun(['--threads', '--report', '-n', '2', fixture('threads-probe.ts'), 'who']);
    expect(r.code).toBe(0);
    for (const rank of [0, 1]) expect(r.stderr).toMatch(new RegExp(`^${rank}\\s+localhost\\s.*\\s0$`, 'm'));
  });

  it("a rank's last control messages arrive even while the launcher writes to it as it ends", async () => {
    // Every rank ends at about the same time, and each end makes the launcher tell
    // the others 'gone': over a socket, that write hit a closed peer (EPIPE) and
    // lost the peer's unread stats now and then.
    for (let i = 0; i < 6; i++) {
      const r = await tsmpirun(['--threads', '--report', '-n', '4', fixture('threads-probe.ts'), 'who']);
      expect(r.code).toBe(0);
      const rows = r.stderr.split('\n').filter((l) => /^\d+\s+localhost\s/.test(l));
      expect(rows).toHaveLength(4);
      for (const row of rows) expect(row).not.toContain('?');
    }
  });

  it('--threads with --processes, or a bad TSMPI_LOCAL_MODE, is a usage error (exit 2)', async () => {
    const both = await tsmpirun(['--threads', '--processes', '-n', '1', fixture('threads-probe.ts'), 'who']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give --threads or --processes, not both');
    const bad = await tsmpirun(['-n', '1', fixture('threads-probe.ts'), 'who'], { env: { TSMPI_LOCAL_MODE: 'fibers' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("TSMPI_LOCAL_MODE must be 'threads' or 'processes'");
  });

  it('TSMPI_LOCAL_MODE=threads makes threads the default; --processes overrides it', async () => {
    const pids = async (args: string[]) => {
      const r = await tsmpirun([...args, '-n', '2', fixture('threads-probe.ts'), 'who'], { env: { TSMPI_LOCAL_MODE: 'threads' } });
      expect(r.code).toBe(0);
      return new Set(lines(r.stdout).map((l) => (JSON.parse(l) as { pid: number }).pid)).size;
    };
    expect(await pids([])).toBe(1);
    expect(await pids(['--processes'])).toBe(2);
  });

  for (const n of [2, 8]) {
    it(`the point-to-point suite passes with --threads at ${n} ranks`, async () => {
      const p = await tsmpirun(['--threads', '-n', String(n), fixture('p2p-suite.ts')], { timeoutMs: 120_000 });
      expect(p.stderr).toBe('');
      expect(p.code).toBe(0);
      expect(lines(p.stdout).filter((l) => /: 16 cases passed$/.test(l))).toHaveLength(n);
    });
    it(`the collective suite passes with --threads at ${n} ranks`, async () => {
      const c = await tsmpirun(['--threads', '-n', String(n), fixture('coll-suite.ts')], { timeoutMs: 120_000 });
      expect(c.stderr).toBe('');
      expect(c.code).toBe(0);
      expect(lines(c.stdout).filter((l) => /: 30 collective case groups passed$/.test(l))).toHaveLength(n);
    });
  }
});

describe('collectives in shared memory (thread ranks)', () => {
  it('values of several pieces, the segmented allreduce, calls in flight, comms past the shared slots: as the serial loop', async () => {
    const r = await tsmpirun(['--threads', '-n', '3', fixture('shm-coll.ts')], { timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout).filter((l) => /: 18 shared-memory collective groups passed$/.test(l))).toHaveLength(3);
  });

  it('a reader that ended makes the writer fail with ERR_PEER_LOST instead of hanging', async () => {
    const r = await tsmpirun(['--threads', '-n', '3', fixture('shm-coll.ts'), 'lose']);
    expect(r.code).toBe(0);
    expect(lines(r.stdout).sort()).toEqual(['rank 0: ERR_PEER_LOST', 'rank 2: ERR_PEER_LOST']);
  });
});

describe('the shared-memory ring (single producer, single consumer)', () => {
  it('carries random-sized writes across the wrap-around point in order, never more than its capacity', () => {
    const cap = 1024;
    const sab = new SharedArrayBuffer(RING_HEADER_BYTES + cap);
    const ring = new ShmRing(sab, 0, cap);
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    let next = 0; // next byte value written
    let want = 0; // next byte value expected
    let pending: Uint8Array | null = null;
    let wrong = 0;
    let over = 0;
    const take = (got: Buffer | null) => {
      if (got) for (const b of got) if (b !== (want++ & 0xff)) wrong++;
    };
    for (let step = 0; step < 5_000; step++) {
      if (!pending) pending = Uint8Array.from({ length: 1 + rnd(700) }, () => next++ & 0xff);
      const n = ring.write(pending);
      if (ring.used() > cap) over++;
      pending = n === pending.length ? null : pending.subarray(n);
      take(ring.read(1 + rnd(900)));
    }
    for (let got = ring.read(); got; got = ring.read()) take(got);
    expect(wrong, 'bytes out of order or changed').toBe(0);
    expect(over, 'times the ring held more than its capacity').toBe(0);
    expect(want).toBe(next - (pending?.length ?? 0));
    expect(next).toBeGreaterThan(100 * cap);
    expect(() => new ShmRing(sab, 0, 1000)).toThrow(RangeError);
  });

  it('writes at most `max` bytes a call, hands one view up to the wrap point, and frees only what the reader took', () => {
    const cap = 64;
    const ring = new ShmRing(new SharedArrayBuffer(RING_HEADER_BYTES + cap), 0, cap);
    const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
    expect(ring.write(bytes.subarray(0, 40), 16)).toBe(16);
    expect(ring.write(bytes.subarray(16, 40))).toBe(24);
    expect(ring.used()).toBe(40);
    // The reader takes 10 of the 40 offered: the other 30 are offered again.
    let seen: number[] = [];
    expect(ring.readInPlace((v) => ((seen = [...v]), 10))).toBe(10);
    expect(seen).toEqual([...bytes.subarray(0, 40)]);
    expect(ring.used()).toBe(30);
    expect(ring.readInPlace((v) => ((seen = [...v]), 0))).toBe(0);
    expect(ring.used()).toBe(30);
    expect(ring.readInPlace((v) => void (seen = [...v]))).toBe(30);
    expect(seen).toEqual([...bytes.subarray(10, 40)]);
    // Across the wrap point (head at 40): 34 bytes, read as 24 up to the end, then 10.
    expect(ring.write(bytes.subarray(40, 74))).toBe(34);
    expect(ring.free()).toBe(cap - 34);
    expect(ring.contiguous()).toBe(24);
    const got: number[] = [];
    while (ring.contiguous() > 0) ring.readInPlace((v) => void got.push(...v), 7);
    expect(got).toEqual([...bytes.subarray(40, 74)]);
    // A reader that throws still frees what it was offered (the link ends on a protocol error).
    ring.write(bytes.subarray(0, 5));
    expect(() => ring.readInPlace(() => {
      throw new Error('bad frame');
    })).toThrow('bad frame');
    expect(ring.used()).toBe(0);
  });
});
