// `--via ssh` end to end against real OpenSSH: one sshd a "host" on
// 127.0.0.21–.23 (own hostname, host key, key-only login; test/beds/sshd.ts),
// real ssh clients started by tsmpirun, the shared agent on each host. The far
// side is tested as it sees itself: ssh carries none of the launcher's
// environment and starts in $HOME, so -x variables, staged files and paths must
// get there by the job itself. After every case no process of the job is left
// on any host (found by environment markers, wherever they were re-parented).
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { marked, noneLeft } from './beds/leftovers.js';
import { startSshBed, type SshBed } from './beds/sshd.js';
import { fixture, pidsOf, tsmpirun, until, type RunResult } from './harness.js';

let bed: SshBed;
let base: string;
let work: string;
/** this case's marker, in tsmpirun's environment (its local ranks and ssh clients inherit it) */
let caseMark = '';

beforeAll(async () => {
  bed = await startSshBed(
    [
      ['hostA', '127.0.0.21'],
      ['hostB', '127.0.0.22'],
      ['hostR', '127.0.0.23'],
    ],
    { refuse: ['hostR'] },
  );
  base = mkdtempSync(join(tmpdir(), 'ssh-test-'));
  work = join(base, 'work');
  mkdirSync(join(work, 'sub'), { recursive: true });
  writeFileSync(join(work, 'data.txt'), 'staged-over-ssh\n');
  writeFileSync(join(work, 'sub', 'info.txt'), 'nested-info-7\n');
}, 30_000);

afterEach(async () => {
  // nothing of the job on any host: agents, ranks, ssh clients
  await noneLeft([`TSMPI_CASE=${caseMark}`, `TSMPI_BED_MARK=${bed.mark}`], 8000);
  for (const h of bed.hosts) expect(h.sshd.exitCode, `sshd of ${h.name} is running`).toBeNull();
});

afterAll(async () => {
  await bed?.close();
  if (base) rmSync(base, { recursive: true, force: true });
});

interface Opts {
  extra?: string[];
  env?: Record<string, string>;
  onStart?: (c: ChildProcess) => void;
  onStdout?: (t: string) => void;
}

function sshJob(hosts: string, n: number, script: string, args: string[] = [], o: Opts = {}): Promise<RunResult> {
  caseMark = randomBytes(6).toString('hex');
  return tsmpirun(['--via', 'ssh', '--ssh-command', `ssh -F ${bed.config}`, '--host', hosts, '-n', String(n), ...(o.extra ?? []), script, ...args], {
    timeoutMs: 40_000,
    cwd: work,
    env: { TMPDIR: mkdtempSync(join(base, 'tmp-')), TSMPI_CASE: caseMark, ...o.env },
    ...(o.onStart ? { onStart: o.onStart } : {}),
    ...(o.onStdout ? { onStdout: (t: string) => o.onStdout!(t) } : {}),
  });
}

/** Start a blocking job over localhost:1,hostA:2,hostB:1; resolves once all 4 ranks printed their pids. */
async function blockingJob(extra: string[] = []): Promise<{ done: Promise<RunResult>; child: ChildProcess; pids: number[] }> {
  let out = '';
  let child: ChildProcess | null = null;
  const done = sshJob('localhost:1,hostA:2,hostB:1', 4, fixture('remote-block.ts'), [], { extra, onStdout: (t) => (out += t), onStart: (c) => (child = c) });
  done.catch(() => {});
  await until(() => pidsOf(out).filter(Boolean).length === 4, 20_000, `4 pids; stdout so far:\n${out}`);
  return { done, child: child!, pids: pidsOf(out) };
}

describe('tsmpirun --via ssh', () => {
  it('runs over localhost and two ssh hosts: files staged, -x there, cwd and import.meta in the job folder, partial results, output', async () => {
    const results = join(base, 'where.jsonl');
    const r = await sshJob('localhost:1,hostA:2,hostB:2', 5, fixture('where.ts'), [], {
      extra: ['--files', 'data.txt,sub/info.txt', '-x', 'TSMPI_X=exported', '--results', results],
      // in the launcher's environment but not exported: must not reach the ranks over ssh
      env: { TSMPI_LEAK: 'leaked', TSMPI_X: 'wrong' },
    });
    expect(r.code, r.stderr).toBe(0);
    const where = [...r.stdout.matchAll(/^where (\d) (.*)$/gm)].map((m) => ({ rank: Number(m[1]), ...(JSON.parse(m[2]!) as Record<string, unknown>) }));
    expect(where.map((w) => w.rank).sort()).toEqual([0, 1, 2, 3, 4]);
    const byRank = where.sort((a, b) => a.rank - b.rank);
    expect(byRank.map((w) => w.host)).toEqual([expect.any(String), 'hostA', 'hostA', 'hostB', 'hostB']);
    for (const w of byRank) {
      expect(w.sum).toBe(10);
      expect(w.data).toBe('staged-over-ssh');
      expect(w.x).toBe('exported');
    }
    expect(byRank[0]!.cwd).toBe(work);
    for (const w of byRank.slice(1)) {
      expect(w.leak, `rank ${w.rank} saw the launcher's environment`).toBeNull();
      // the job folder on that host, not the launcher's cwd nor ssh's $HOME
      expect(w.cwd).toMatch(/\/tsmpi-agent-[^/]+\/job-[^/]+$/);
      expect(w.url, 'import.meta.url names the script in the job folder there').toContain(String(w.cwd));
    }
    const partials = readFileSync(results, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rank: number; host: string; value: { host: string } });
    expect(partials.map((p) => p.rank).sort()).toEqual([0, 1, 2, 3, 4]);
    for (const p of partials.filter((x) => x.rank > 0)) expect(p.value.host).toBe(p.host);
  });

  it('passes the collective suite with ranks on three hosts', async () => {
    const r = await sshJob('localhost:1,hostA:2,hostB:2', 5, fixture('coll-suite.ts'));
    expect(r.code, r.stderr).toBe(0);
    const counts = [0, 1, 2, 3, 4].map((rank) => new RegExp(`^rank ${rank}/5: (\\d+) collective case groups passed$`, 'm').exec(r.stdout)?.[1]);
    expect(counts.every((c) => c !== undefined && Number(c) > 10), r.stdout).toBe(true);
    expect(new Set(counts).size).toBe(1);
  });

  it('a rank crashing on an ssh host ends the job with its code, naming rank and host (a hostfile with user@host names)', async () => {
    const hostfile = join(base, 'ssh-hosts');
    writeFileSync(hostfile, 'localhost slots=1\nroot@hostA slots=2\nroot@hostB slots=1 # user@host, as ssh takes it\n');
    caseMark = randomBytes(6).toString('hex');
    const r = await tsmpirun(['--via', 'ssh', '--ssh-command', `ssh -F ${bed.config}`, '--hostfile', hostfile, fixture('launcher-fail.ts'), 'exit', '3', '7'], {
      timeoutMs: 40_000,
      cwd: work,
      env: { TMPDIR: mkdtempSync(join(base, 'tmp-')), TSMPI_CASE: caseMark },
    });
    expect(r.code, r.stderr).toBe(7);
    expect(r.stderr).toMatch(/rank 3 on root@hostB \(pid \d+\) exited with code 7/);
  });

  it('--timeout ends a job blocked across hosts with 124 and says what each rank waits on', async () => {
    const r = await sshJob('localhost:1,hostA:2,hostB:1', 4, fixture('remote-block.ts'), [], { extra: ['--timeout', '3'] });
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/--timeout 3/);
    // answered from the ssh host itself, through its agent
    expect(r.stderr).toMatch(/rank 3 \(hostB\): recv\(source=0, tag=77\)/);
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s to tsmpirun ends every rank on every host', async (sig, code) => {
    const { done, child } = await blockingJob();
    child.kill(sig);
    const r = await done;
    expect(r.code).toBe(code);
  });

  it('tsmpirun killed with SIGKILL: the agents see EOF and leave nothing on any host', async () => {
    const { done, child } = await blockingJob();
    const t0 = Date.now();
    child.kill('SIGKILL');
    const r = await done;
    expect(r.signal).toBe('SIGKILL');
    await noneLeft([`TSMPI_CASE=${caseMark}`, `TSMPI_BED_MARK=${bed.mark}`], 8000);
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  it("killing a host's ssh client is that host lost (ERR_PEER_LOST naming it)", async () => {
    const { done } = await blockingJob();
    const ssh = marked([`TSMPI_CASE=${caseMark}`]).filter((p) => p.cmd.startsWith('ssh ') && / hostA /.test(p.cmd));
    expect(ssh.length, JSON.stringify(marked([`TSMPI_CASE=${caseMark}`]))).toBe(1);
    process.kill(ssh[0]!.pid, 'SIGKILL');
    const r = await done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_PEER_LOST: host hostA was lost/);
    expect(r.stderr).toMatch(/ranks lost: 1, 2/);
  });

  it('killing the agent on a host is that host lost; its ranks end too; the next agent removes its folder', async () => {
    const { done, pids } = await blockingJob();
    // rank 3 runs on hostB in a job folder inside that agent's own folder
    const agentDir = dirname(readlinkSync(`/proc/${pids[3]}/cwd`));
    expect(agentDir).toMatch(/\/tsmpi-agent-[^/]+$/);
    const agents = marked([`TSMPI_BED_MARK=${bed.mark}`]).filter((p) => p.cmd.includes('agent-main.js'));
    const onB = agents.filter((p) => readFileSync(`/proc/${p.pid}/environ`, 'latin1').includes('SSH_CONNECTION=127.0.0.1 ') && readFileSync(`/proc/${p.pid}/environ`, 'latin1').includes(' 127.0.0.22 '));
    expect(onB.length, JSON.stringify(agents)).toBe(1);
    process.kill(onB[0]!.pid, 'SIGKILL');
    const r = await done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_PEER_LOST: host hostB was lost/);
    expect(r.stderr).toMatch(/ranks lost: 3/);
    // a killed agent cannot clean up: its folder stays until the next agent on that machine sweeps it
    await noneLeft([`TSMPI_CASE=${caseMark}`, `TSMPI_BED_MARK=${bed.mark}`], 8000);
    expect(existsSync(agentDir)).toBe(true);
    const again = await sshJob('hostB:1', 1, fixture('remote-hello.ts'));
    expect(again.code, again.stderr).toBe(0);
    expect(existsSync(agentDir), `${agentDir} was swept`).toBe(false);
  });

  it('a host whose sshd refuses the key: a clear error at once, no hang, nothing started', async () => {
    const t0 = Date.now();
    const r = await sshJob('localhost:1,hostR:1', 2, fixture('remote-hello.ts'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_AUTH: cannot start the agent on hostR \(ssh\).*Permission denied/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it("skips what the far side prints before the agent starts (a shell's startup files), and says so when no agent starts", async () => {
    const noisy = `sh -c 'echo Welcome to this host; printf "motd\\n\\0\\1"; exec ssh "$@"' sh -F ${bed.config}`;
    caseMark = randomBytes(6).toString('hex');
    const ok = await tsmpirun(['--via', 'ssh', '--ssh-command', noisy, '--host', 'localhost:1,hostA:2', '-n', '3', fixture('remote-hello.ts')], {
      timeoutMs: 40_000,
      cwd: work,
      env: { TMPDIR: mkdtempSync(join(base, 'tmp-')), TSMPI_CASE: caseMark },
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.match(/^hello from \d\/3 sum 6$/gm)?.length, ok.stdout).toBe(3);
    expect(ok.stdout).not.toContain('Welcome');
    await noneLeft([`TSMPI_CASE=${caseMark}`, `TSMPI_BED_MARK=${bed.mark}`], 8000);
    // `echo` as the remote node: the far side prints and exits, no agent ever speaks
    const bad = await sshJob('hostA:1', 1, fixture('remote-hello.ts'), [], { extra: ['--remote-node', 'echo'] });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ERR_PEER_LOST: cannot start the agent on hostA \(ssh\).*the far side printed, and no agent started: .*agent-main\.js --stdio/);
  });

  it('a --remote-prefix with no tsmpi there: a clear error naming the host', async () => {
    const r = await sshJob('hostA:1', 1, fixture('remote-hello.ts'), [], { extra: ['--remote-prefix', '/nonexistent/tsmpi'] });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_PEER_LOST: cannot start the agent on hostA \(ssh\).*Cannot find module '\/nonexistent\/tsmpi\/dist\/launcher\/agent\/agent-main\.js'/);
  });
});
