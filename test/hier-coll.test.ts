// Hierarchical collectives: a --threads job whose world spans this host's
// shared-memory mesh and a real tsmpid host (127.0.0.71) whose ranks are thread
// ranks of another process there (a second mesh). Collectives run in shared memory inside the mesh and by messages
// between its representative and the remote ranks; the results are checked
// against the serial loop (shm-coll.ts) and the whole collective suite.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keygen, startDaemon, stopDaemons, writeHostfile, type TestDaemon } from './daemons.js';
import { fixture, tsmpirun } from './harness.js';

let base: string;
let keyDir: string;
let D: TestDaemon;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'hier-test-'));
  keyDir = join(base, 'keys');
  await keygen(keyDir);
  D = await startDaemon({ host: '127.0.0.71', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 });
});

afterAll(async () => {
  await stopDaemons();
  rmSync(base, { recursive: true, force: true });
});

function job(lines: string[], n: number, args: string[]) {
  const hostfile = writeHostfile(base, lines);
  return tsmpirun(['--threads', '--hostfile', hostfile, '-n', String(n), '--identity', join(keyDir, 'id'), '--known-hosts', join(keyDir, 'known_hosts'), ...args], {
    timeoutMs: 120_000,
    env: { TMPDIR: mkdtempSync(join(base, 'tmp-')) },
  });
}

const passed = (out: string, text: RegExp) => out.split('\n').filter((l) => text.test(l)).length;

describe('collectives across a shared-memory mesh and another host', () => {
  it('the collective suite passes with 3 thread ranks here and 2 ranks on a tsmpid host', async () => {
    const r = await job(['localhost slots=3', D.line(2)], 5, [fixture('coll-suite.ts')]);
    expect(r.code, r.stderr).toBe(0);
    expect(passed(r.stdout, /^rank \d\/5: 30 collective case groups passed$/)).toBe(5);
  });

  it('inside the mesh they go through shared memory: a rank that is not its representative sends no message', async () => {
    const r = await job(['localhost slots=3', D.line(2)], 5, ['--report', fixture('hier-traffic.ts')]);
    expect(r.code, r.stderr).toBe(0);
    const sent = (rank: number) => Number(new RegExp(`^${rank} +\\S+ +[\\d.]+ +[\\d.]+ +[\\d.]+ +(\\d+) `, 'm').exec(r.stderr)?.[1]);
    // rank 0 represents the mesh (ranks 0–2); ranks 3 and 4 are the mesh on 127.0.0.71 (4 is bcast's root)
    expect(sent(1)).toBe(0);
    expect(sent(2)).toBe(0);
    for (const rank of [0, 3, 4]) expect(sent(rank)).toBeGreaterThan(0);
  });

  it('large values, function ops and calls in flight match the serial loop', async () => {
    const r = await job(['localhost slots=2', D.line(1)], 3, ['--timeout', '60', fixture('shm-coll.ts')]);
    expect(r.code, r.stderr).toBe(0);
    expect(passed(r.stdout, /^rank \d\/3: 18 shared-memory collective groups passed$/)).toBe(3);
  });
});
