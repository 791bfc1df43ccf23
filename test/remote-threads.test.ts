// `--threads` across hosts: the launcher's ranks and each tsmpid host's ranks run
// as worker threads (on a daemon host, of one per-job process whose cwd is the
// job folder), shared memory within a host, TLS between hosts. Real daemons on
// 127.0.0.61–.63, real sshd hosts on .64 and .65 (test/beds/sshd.ts); nothing
// here talks to an address outside 127.0.0.0/8.
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { marked, noneLeft } from './beds/leftovers.js';
import { startSshBed, type SshBed } from './beds/sshd.js';
import { keygen, RawClient, startDaemon, stopDaemons, writeHostfile, type TestDaemon } from './daemons.js';
import { readIdentity } from '../launcher/keys/keys.js';
import { SCRIPT_FILE } from '../launcher/job/placeholders.js';
import { fixture, gone, pidsOf, tsmpirun, until, type RunResult } from './harness.js';
import { layMetaApp, metaOf, STAGED_CONF } from './import-meta.js';

const JOB_MS = 60_000;

let base: string;
let work: string;
let keyDir: string;
let A: TestDaemon;
let B: TestDaemon;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'remote-threads-test-'));
  work = join(base, 'work');
  mkdirSync(work, { recursive: true });
  keyDir = join(base, 'keys');
  await keygen(keyDir);
  [A, B] = await Promise.all([
    startDaemon({ host: '127.0.0.61', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
    startDaemon({ host: '127.0.0.62', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
  ]);
});

afterEach(() => {
  for (const d of [A, B]) {
    if (d && !d.running) throw new Error(`tsmpid on ${d.host} died (${JSON.stringify(d.exited)}); its stderr:\n${d.stderr.slice(-4000)}`);
  }
});

afterAll(async () => {
  await stopDaemons();
  if (base) rmSync(base, { recursive: true, force: true });
});

interface JobOptions {
  extra?: string[];
  files?: string[];
  cwd?: string;
  onStart?: (c: ChildProcess) => void;
  onStdout?: (t: string) => void;
}

/** `tsmpirun --threads` over localhost (1 rank) and A, B (2 each): 5 ranks. */
function job(script: string, args: string[] = [], o: JobOptions = {}): Promise<RunResult> {
  const tmp = mkdtempSync(join(base, 'tmp-'));
  const hostfile = writeHostfile(base, ['localhost slots=1', A.line(2), B.line(2)]);
  const cli = ['--threads', '--hostfile', hostfile, '-n', '5', '--identity', join(keyDir, 'id'), '--known-hosts', join(keyDir, 'known_hosts')];
  if (o.files) cli.push('--files', o.files.join(','));
  cli.push(...(o.extra ?? []), script, ...args);
  return tsmpirun(cli, {
    timeoutMs: JOB_MS,
    cwd: o.cwd ?? work,
    env: { TMPDIR: tmp },
    ...(o.onStart ? { onStart: o.onStart } : {}),
    ...(o.onStdout ? { onStdout: o.onStdout } : {}),
  });
}

/** Every daemon removed its job folders, and has no child process left. */
async function nothingLeft(): Promise<void> {
  for (const d of [A, B]) {
    await until(() => d.jobs().length === 0 && d.children().length === 0, 5000, `${d.host}: no job folder (has ${d.jobs().join(', ')}) and no child process (has ${d.children().join(', ')})`);
  }
}

const lines = (s: string) => s.trim().split('\n').filter(Boolean);

describe('--threads on every host', () => {
  it('ranks on a daemon host are threads of one process there, each with its own argv and -x environment', async () => {
    const r = await job(fixture('threads-probe.ts'), ['who', 'a b', ''], { extra: ['-x', 'TSMPI_T_A=exported', '--report'] });
    expect(r.code, r.stderr).toBe(0);
    const who = lines(r.stdout)
      .map((l) => JSON.parse(l) as { rank: number; pid: number; threadId: number; argv: string[]; a: string })
      .sort((x, y) => x.rank - y.rank);
    expect(who.map((w) => w.rank)).toEqual([0, 1, 2, 3, 4]);
    const pid = (rank: number) => who[rank]!.pid;
    // ranks 1, 2 on A; 3, 4 on B: one process a host, a thread a rank
    expect(pid(1)).toBe(pid(2));
    expect(pid(3)).toBe(pid(4));
    expect(new Set([pid(0), pid(1), pid(3)]).size).toBe(3);
    for (const w of who) expect(w.threadId).toBeGreaterThan(0);
    expect(who[1]!.threadId).not.toBe(who[2]!.threadId);
    expect(who[3]!.threadId).not.toBe(who[4]!.threadId);
    for (const w of who) expect(w.argv).toEqual(['a b', '']);
    expect(who.map((w) => w.a)).toEqual(['exported', 'changed by rank 1', 'exported', 'exported', 'exported']);
    // --report: a complete line for every rank, the remote thread ranks' stats included
    const rows = r.stderr.split('\n').filter((l) => /^\d+\s+(localhost|127\.0\.0\.6[12])\s/.test(l));
    expect(rows, r.stderr).toHaveLength(5);
    for (const row of rows) expect(row).not.toContain('?');
    await nothingLeft();
  });

  it.each([['coll-suite.ts', 'collective case groups passed'], ['p2p-suite.ts', 'cases passed']])('%s passes with thread ranks on three hosts', async (name, text) => {
    const r = await job(fixture(name));
    expect(r.code, r.stderr).toBe(0);
    const counts = [0, 1, 2, 3, 4].map((rank) => new RegExp(`^rank ${rank}/5: (\\d+) ${text}$`, 'm').exec(r.stdout)?.[1]);
    expect(counts.every((c) => c !== undefined && Number(c) > 10), r.stdout).toBe(true);
    expect(new Set(counts).size, 'every rank ran every case').toBe(1);
    await nothingLeft();
  });

  it("a daemon host's thread ranks are a shared-memory mesh of their own: collectives there send no message from a rank that does not represent it", async () => {
    const r = await job(fixture('hier-traffic.ts'), [], { extra: ['--report'] });
    expect(r.code, r.stderr).toBe(0);
    const sent = (rank: number) => Number(new RegExp(`^${rank} +\\S+ +[\\d.]+ +[\\d.]+ +[\\d.]+ +(\\d+) `, 'm').exec(r.stderr)?.[1]);
    // meshes: {0} here, {1, 2} on A, {3, 4} on B; bcast's root 4 and reduce's root 1
    // stand for their meshes, rank 3 is B's first: only rank 2 never represents one
    expect(sent(2), r.stderr).toBe(0);
    for (const rank of [0, 1, 3, 4]) expect(sent(rank), r.stderr).toBeGreaterThan(0);
    await nothingLeft();
  });

  it('relays a flood of output from remote thread ranks whole and in order', async () => {
    const r = await job(fixture('remote-flood.ts'), [], { extra: ['--tag-output'] });
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const pad = 'x'.repeat(100);
    for (const [text, letter] of [[r.stdout, 'r'], [r.stderr, 'e']] as const) {
      const all = text.split('\n');
      for (let rank = 0; rank < 5; rank++) {
        const mine = all.filter((l) => l.startsWith(`[${rank}] ${letter}`));
        expect(mine.length, `rank ${rank}'s ${letter === 'r' ? 'stdout' : 'stderr'} lines`).toBe(4000);
        const wrong = mine.findIndex((l, i) => l !== `[${rank}] ${letter}${rank} ${i} ${pad}`);
        expect(wrong, `rank ${rank}: first line out of order`).toBe(-1);
      }
    }
    await nothingLeft();
  });

  it('output held back while the launcher does not read (SIGSTOP) still arrives whole after the ranks ended', async () => {
    let child: ChildProcess | null = null;
    let seen = 0;
    const count = 20_000;
    const done = job(fixture('remote-flood.ts'), [String(count)], { extra: ['--tag-output'], onStart: (c) => (child = c), onStdout: (t) => (seen += t.length) });
    await until(() => seen > 0, 20_000, 'the first output');
    child!.kill('SIGSTOP');
    // meanwhile the remote ranks write everything and end, their output held at the thread
    await new Promise((r) => setTimeout(r, 4000));
    child!.kill('SIGCONT');
    const r = await done;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    for (const [text, letter] of [[r.stdout, 'r'], [r.stderr, 'e']] as const) {
      const all = text.split('\n');
      for (let rank = 0; rank < 5; rank++) {
        expect(all.filter((l) => l.startsWith(`[${rank}] ${letter}${rank} `)).length, `rank ${rank}'s ${letter} lines`).toBe(count);
      }
    }
    await nothingLeft();
  });

  it("a remote thread rank's crash reaches the launcher with its stack and exit code; the other ranks are ended", async () => {
    const r = await job(fixture('launcher-fail.ts'), ['throw', '3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rank 3 on 127\.0\.0\.62 \(pid \d+\) exited with code 1/);
    expect(r.stderr).toMatch(/launcher-fail\.ts:\d+/);
    const exit = await job(fixture('launcher-fail.ts'), ['exit', '4', '7']);
    expect(exit.code, exit.stderr).toBe(7);
    expect(exit.stderr).toMatch(/rank 4 on 127\.0\.0\.62 \(pid \d+\) exited with code 7/);
    await nothingLeft();
  });

  it('a remote thread rank that runs out of heap (a limit -x gave that host) ends as a failed rank', async () => {
    const r = await job(fixture('threads-probe.ts'), ['oom'], { extra: ['-x', 'TSMPI_THREAD_HEAP_MB=64'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/tsmpirun: rank 1 on 127\.0\.0\.61 \(pid \d+\) exited with code \d+/);
    expect(r.stderr).toContain('rank 1 ran out of memory (its heap limit is 64 MB');
    expect(r.stderr).toContain('ended 4 other ranks');
    await nothingLeft();
  });

  it("a remote thread rank's import.meta, argv[1] and cwd name its job folder, and files read through them are the staged copies", async () => {
    const cwd = mkdtempSync(join(base, 'meta-'));
    const app = layMetaApp(cwd);
    const r = await job(app.script, [], { files: app.files, cwd });
    expect(r.code, r.stderr).toBe(0);
    const seen = metaOf(r.stdout);
    expect(seen.map((s) => s.rank)).toEqual([0, 1, 2, 3, 4]);
    for (const [rank, d] of [[1, A], [2, A], [3, B], [4, B]] as const) {
      const s = seen[rank]!;
      expect(s.cwd.startsWith(join(d.workdir, 'jobs', 'job-')), `rank ${rank} cwd ${s.cwd}`).toBe(true);
      const file = join(s.cwd, 'app', 'meta.ts');
      expect(s).toMatchObject({
        filename: file,
        dirname: join(s.cwd, 'app'),
        url: pathToFileURL(file).href,
        argv1: file,
        helper: { filename: join(s.cwd, 'app', 'lib', 'helper.ts') },
        viaUrl: STAGED_CONF,
        viaDirname: STAGED_CONF,
        viaCwd: STAGED_CONF,
        requireOk: true,
      });
    }
    expect(seen[1]!.cwd).toBe(seen[2]!.cwd);
    await nothingLeft();
  });

  it('tsmpirun killed mid-job: each daemon ends its per-job process and removes the folder', async () => {
    let out = '';
    let child: ChildProcess | null = null;
    const done = job(fixture('remote-block.ts'), [], { onStdout: (t) => (out += t), onStart: (c) => (child = c) });
    await until(() => pidsOf(out).filter(Boolean).length === 5, 20_000, `5 pids; stdout so far:\n${out}`);
    const pids = pidsOf(out);
    expect(pids[1]).toBe(pids[2]);
    expect(A.children()).toEqual([pids[1]]);
    expect(B.children()).toEqual([pids[3]]);
    child!.kill('SIGKILL');
    const r = await done;
    expect(r.signal).toBe('SIGKILL');
    await until(() => pids.slice(1).every(gone), 5000, `processes ${pids.join(', ')} to be gone`);
    await nothingLeft();
  });

  it('SIGTERM to tsmpirun ends the thread ranks on every host', async () => {
    let out = '';
    let child: ChildProcess | null = null;
    const done = job(fixture('remote-block.ts'), [], { onStdout: (t) => (out += t), onStart: (c) => (child = c) });
    await until(() => pidsOf(out).filter(Boolean).length === 5, 20_000, `5 pids; stdout so far:\n${out}`);
    const pids = pidsOf(out);
    child!.kill('SIGTERM');
    const r = await done;
    expect(r.code).toBe(143);
    await until(() => pids.slice(1).every(gone), 5000, `processes ${pids.join(', ')} to be gone`);
    await nothingLeft();
  });

  it("a job message whose mode is neither 'threads' nor 'processes' is refused (ERR_PROTOCOL), and nothing starts", async () => {
    const c = await RawClient.connect(A.host, A.port);
    await c.authenticate(readIdentity(join(keyDir, 'id')));
    const files = [{ name: SCRIPT_FILE, size: 1, sha256: '0'.repeat(64) }];
    c.conn.sendControl({ t: 'job', size: 1, ranks: [0], secret: 'x'.repeat(48), hostId: `${A.host}:1`, env: {}, args: [], script: 's.ts', files, tlsKey: 'k', tlsCert: 'c', mode: 'fibers' });
    const refused = await c.refusal();
    expect(refused.code).toBe('ERR_PROTOCOL');
    expect(refused.message).toContain("mode must be 'threads' or 'processes'");
    await nothingLeft();
  });

  it('a daemon killed mid-job: the host is lost (ERR_PEER_LOST), and its per-job process ends by itself', async () => {
    const D = await startDaemon({ host: '127.0.0.63', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 });
    let out = '';
    const tmp = mkdtempSync(join(base, 'tmp-'));
    const hostfile = writeHostfile(base, ['localhost slots=1', D.line(2)]);
    const done = tsmpirun(['--threads', '--hostfile', hostfile, '-n', '3', '--identity', join(keyDir, 'id'), '--known-hosts', join(keyDir, 'known_hosts'), fixture('remote-block.ts')], {
      timeoutMs: JOB_MS,
      cwd: work,
      env: { TMPDIR: tmp },
      onStdout: (t) => (out += t),
    });
    await until(() => pidsOf(out).filter(Boolean).length === 3, 20_000, `3 pids; stdout so far:\n${out}`);
    const pids = pidsOf(out);
    expect(D.children()).toEqual([pids[1]]);
    D.child.kill('SIGKILL');
    const r = await done;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_PEER_LOST|host 127\.0\.0\.63 was lost/);
    expect(r.stderr).toMatch(/ranks lost: 1, 2/);
    await until(() => gone(pids[1]!), 5000, `the per-job process ${pids[1]} to be gone`);
  });
});

describe('--threads --via ssh', () => {
  let bed: SshBed;
  let mark = '';
  beforeAll(async () => {
    bed = await startSshBed([
      ['thrA', '127.0.0.64'],
      ['thrB', '127.0.0.65'],
    ]);
  }, 30_000);
  afterEach(async () => {
    await noneLeft([`TSMPI_CASE=${mark}`, `TSMPI_BED_MARK=${bed.mark}`], 8000);
  });
  afterAll(async () => {
    await bed?.close();
  });

  function sshJob(script: string, args: string[], o: { extra?: string[]; onStdout?: (t: string) => void } = {}): Promise<RunResult> {
    mark = randomBytes(6).toString('hex');
    return tsmpirun(['--threads', '--via', 'ssh', '--ssh-command', `ssh -F ${bed.config}`, '--host', 'localhost:1,thrA:2,thrB:2', '-n', '5', ...(o.extra ?? []), script, ...args], {
      timeoutMs: JOB_MS,
      cwd: work,
      env: { TMPDIR: mkdtempSync(join(base, 'tmp-')), TSMPI_CASE: mark },
      ...(o.onStdout ? { onStdout: o.onStdout } : {}),
    });
  }

  it('the agent on an ssh host runs its ranks as threads of one process in the job folder, with -x and argv', async () => {
    const r = await sshJob(fixture('threads-probe.ts'), ['who', 'x y'], { extra: ['-x', 'TSMPI_T_A=exported'] });
    expect(r.code, r.stderr).toBe(0);
    const who = lines(r.stdout)
      .map((l) => JSON.parse(l) as { rank: number; pid: number; threadId: number; argv: string[]; a: string })
      .sort((x, y) => x.rank - y.rank);
    expect(who.map((w) => w.rank)).toEqual([0, 1, 2, 3, 4]);
    expect(who[1]!.pid).toBe(who[2]!.pid);
    expect(who[3]!.pid).toBe(who[4]!.pid);
    expect(who[1]!.threadId).not.toBe(who[2]!.threadId);
    for (const w of who) expect(w.argv).toEqual(['x y']);
    expect(who.map((w) => w.a)).toEqual(['exported', 'changed by rank 1', 'exported', 'exported', 'exported']);
  });

  it("killing the agent on an ssh host is that host lost (ERR_PEER_LOST); its per-job process ends with it", async () => {
    let out = '';
    const done = sshJob(fixture('remote-block.ts'), [], { onStdout: (t) => (out += t) });
    await until(() => pidsOf(out).filter(Boolean).length === 5, 20_000, `5 pids; stdout so far:\n${out}`);
    const pids = pidsOf(out);
    expect(pids[3]).toBe(pids[4]);
    // the per-job process of thrB: its cwd is the job folder inside that agent's folder
    expect(readlinkSync(`/proc/${pids[3]}/cwd`)).toMatch(/\/tsmpi-agent-[^/]+\/job-[^/]+$/);
    const agents = marked([`TSMPI_BED_MARK=${bed.mark}`]).filter((p) => p.cmd.includes('agent-main.js'));
    const onB = agents.filter((p) => readFileSync(`/proc/${p.pid}/environ`, 'latin1').includes(' 127.0.0.65 '));
    expect(onB.length, JSON.stringify(agents)).toBe(1);
    process.kill(onB[0]!.pid, 'SIGKILL');
    const r = await done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_PEER_LOST: host thrB was lost/);
    expect(r.stderr).toMatch(/ranks lost: 3, 4/);
    await until(() => gone(pids[3]!), 5000, `thrB's per-job process ${pids[3]} to be gone`);
  });
});
