// `--via slurm` end to end against a real Slurm cluster on this machine
// (test/beds/slurm.ts: munged, slurmctld, slurmd n1 and n2 with their own
// hostnames): tsmpirun runs inside `salloc`, as a user runs it, starts one agent
// per node through srun, and the agents call back. After every case no process
// of the job is left (found by a marker in tsmpirun's environment, which srun
// passes to its tasks and they to the ranks).
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expandHostlist, expandTasksPerNode } from '../launcher/hostlist/slurm.js';
import { marked, noneLeft } from './beds/leftovers.js';
import { startSlurmBed, type SlurmBed } from './beds/slurm.js';
import { fixture, pidsOf, run, tsmpirun, tsmpirunJs, until, type RunResult } from './harness.js';

let bed: SlurmBed;
let base: string;
let work: string;
let caseMark = '';

beforeAll(async () => {
  bed = await startSlurmBed(['n1', 'n2'], { cpus: 4 });
  base = mkdtempSync(join(tmpdir(), 'slurm-run-test-'));
  work = join(base, 'work');
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'data.txt'), 'staged-by-slurm\n');
}, 40_000);

afterEach(async () => {
  await noneLeft([`TSMPI_CASE=${caseMark}`], 10_000);
});

afterAll(async () => {
  await bed?.close();
  if (base) rmSync(base, { recursive: true, force: true });
});

interface Opts {
  onStart?: (c: ChildProcess) => void;
  onStdout?: (t: string) => void;
}

/** `salloc SALLOC… tsmpirun ARGS…`; the allocation's task counts and the launcher's pid are printed first. */
function inAllocation(salloc: string[], args: string[], o: Opts = {}): Promise<RunResult> {
  caseMark = randomBytes(6).toString('hex');
  const p = run('salloc', [...salloc, 'sh', '-c', 'echo "launcher $$ tpn $SLURM_TASKS_PER_NODE nodes $SLURM_JOB_NODELIST"; exec "$0" "$@"', process.execPath, tsmpirunJs, ...args], {
    timeoutMs: 40_000,
    cwd: work,
    env: { ...bed.env, TMPDIR: mkdtempSync(join(base, 'tmp-')), TSMPI_CASE: caseMark },
    ...(o.onStart ? { onStart: o.onStart } : {}),
    ...(o.onStdout ? { onStdout: (t: string) => o.onStdout!(t) } : {}),
  });
  p.catch(() => {});
  return p;
}

function allocation(stdout: string): { launcher: number; tpn: number[]; nodes: string[] } {
  const m = /^launcher (\d+) tpn (\S+) nodes (\S+)$/m.exec(stdout);
  if (!m) throw new Error(`no allocation line in:\n${stdout}`);
  return { launcher: Number(m[1]), tpn: expandTasksPerNode(m[2]!), nodes: expandHostlist(m[3]!) };
}

async function blocking(): Promise<{ done: Promise<RunResult>; launcher: number; jobId: string; out: () => string }> {
  let out = '';
  let err = '';
  const done = inAllocation(['-N2', '-n4'], [fixture('remote-block.ts')], {
    onStdout: (t) => (out += t),
    onStart: (c) => c.stderr!.on('data', (d: Buffer) => (err += d)),
  });
  await until(() => pidsOf(out).filter(Boolean).length === 4, 25_000, `4 pids; stdout so far:\n${out}`);
  const jobId = /Granted job allocation (\d+)/.exec(err)?.[1] ?? '';
  return { done, launcher: allocation(out).launcher, jobId, out: () => out };
}

describe('tsmpirun inside a Slurm allocation (--via slurm, the default there)', () => {
  it('places ranks as SLURM_TASKS_PER_NODE says, one agent a node: files staged, -x there, cwd and import.meta in the job folder, partial results', async () => {
    const results = join(base, 'slurm.jsonl');
    const r = await inAllocation(['-N2', '-n4'], ['--files', 'data.txt', '-x', 'TSMPI_X=exported', '--results', results, fixture('where.ts')]);
    expect(r.code, r.stderr).toBe(0);
    const a = allocation(r.stdout);
    expect(a.nodes).toEqual(['n1', 'n2']);
    expect(a.tpn.reduce((x, y) => x + y, 0)).toBe(4);
    const want = a.nodes.flatMap((n, i) => Array<string>(a.tpn[i]!).fill(n));
    const where = [...r.stdout.matchAll(/^where (\d) (.*)$/gm)].map((m) => ({ rank: Number(m[1]), ...(JSON.parse(m[2]!) as Record<string, unknown>) })).sort((x, y) => x.rank - y.rank);
    expect(where.map((w) => w.host)).toEqual(want);
    for (const w of where) {
      expect(w.sum).toBe(6);
      expect(w.data).toBe('staged-by-slurm');
      expect(w.x).toBe('exported');
      expect(w.cwd).toMatch(/\/tsmpi-agent-[^/]+\/job-[^/]+$/);
      expect(w.url, 'import.meta.url names the script in the job folder there').toContain(String(w.cwd));
    }
    const partials = readFileSync(results, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rank: number; host: string; value: { host: string } });
    expect(partials.map((p) => p.rank).sort()).toEqual([0, 1, 2, 3]);
    for (const p of partials) expect(p.value.host).toBe(p.host);
  });

  it('passes the collective suite across two nodes', async () => {
    const r = await inAllocation(['-N2', '-n4'], [fixture('coll-suite.ts')]);
    expect(r.code, r.stderr).toBe(0);
    const counts = [0, 1, 2, 3].map((rank) => new RegExp(`^rank ${rank}/4: (\\d+) collective case groups passed$`, 'm').exec(r.stdout)?.[1]);
    expect(counts.every((c) => c !== undefined && Number(c) > 10), r.stdout).toBe(true);
  });

  it('a crashing rank ends the job with its code, naming rank and node', async () => {
    const r = await inAllocation(['-N2', '-n4'], [fixture('launcher-fail.ts'), 'exit', '3', '7']);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/rank 3 on n2 \(pid \d+\) exited with code 7/);
  });

  it('--timeout: 124, saying what each rank waits on', async () => {
    const r = await inAllocation(['-N2', '-n4'], ['--timeout', '3', fixture('remote-block.ts')]);
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/rank 3 \(n2\): recv\(source=0, tag=77\)/);
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s to tsmpirun ends every rank on every node', async (sig, code) => {
    const { done, launcher } = await blocking();
    process.kill(launcher, sig);
    const r = await done;
    expect(r.code).toBe(code);
  });

  it('tsmpirun killed with SIGKILL: its agents lose their link and leave nothing', async () => {
    const { done, launcher } = await blocking();
    process.kill(launcher, 'SIGKILL');
    await done;
    await noneLeft([`TSMPI_CASE=${caseMark}`], 8000);
  });

  it('scancel ends the job on every node', async () => {
    const { done, jobId } = await blocking();
    expect(jobId).toMatch(/^\d+$/);
    const c = bed.cmd('/usr/bin/scancel', [jobId]);
    expect(c.code, c.stderr).toBe(0);
    const r = await done;
    expect(r.code).not.toBe(0);
  });

  it("a node's agent killed (the node lost): ERR_PEER_LOST naming it, the rest ended", async () => {
    const { done } = await blocking();
    const agents = marked([`TSMPI_CASE=${caseMark}`]).filter((p) => p.cmd.includes('agent-main.js'));
    const onN2 = agents.filter((p) => readFileSync(`/proc/${p.pid}/environ`, 'latin1').includes('SLURMD_NODENAME=n2\0'));
    expect(onN2.length, JSON.stringify(agents)).toBe(1);
    process.kill(onN2[0]!.pid, 'SIGKILL');
    const r = await done;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_PEER_LOST: host n2 was lost/);
  });

  it('agents that cannot start (no tsmpi at --remote-prefix): srun ends, the start fails at once naming the node and what srun said', async () => {
    const t0 = Date.now();
    const r = await inAllocation(['-N2', '-n2'], ['--remote-prefix', '/nonexistent/tsmpi', fixture('remote-hello.ts')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_PEER_LOST: n[12] \(slurm\): srun exited with code \d+; srun said: .*Cannot find module '\/nonexistent\/tsmpi\/dist\/launcher\/agent\/agent-main\.js'/);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('--via slurm outside an allocation is a clear ERR_ARG (exit 2)', async () => {
    caseMark = randomBytes(6).toString('hex');
    const env: Record<string, string> = { TSMPI_CASE: caseMark };
    for (const k of Object.keys(process.env)) if (k.startsWith('SLURM_')) env[k] = '';
    const r = await tsmpirun(['--via', 'slurm', fixture('remote-hello.ts')], { env, timeoutMs: 15_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--via slurm runs inside a Slurm allocation/);
  });

  it("our hostlist parser agrees with `scontrol show hostnames`", () => {
    for (const text of ['node[01-03,07],gpu-a,rack[1-2]-n[1-2]', 'n[8-11]', 'n[098-101]', 'a,b.example.org,c', 'cn[5]', 'a[1-2],b[3-4]', 'n[1-3,5-6]', 'node001']) {
      const s = bed.cmd('/usr/bin/scontrol', ['show', 'hostnames', text]);
      expect(s.code, s.stderr).toBe(0);
      expect(expandHostlist(text), text).toEqual(s.stdout.trim().split('\n'));
    }
  });
});
