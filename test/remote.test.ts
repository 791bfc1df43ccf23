// Remote hosts end to end: real tsmpid daemons on 127.0.0.2, 127.0.0.3, … (port
// 0, a temp workdir each), real tsmpirun jobs spread over them, and raw clients
// that speak the daemon's protocol the way no honest launcher would. Nothing
// here talks to an address outside 127.0.0.0/8.
import { type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readIdentity, type Identity } from '../launcher/keys/keys.js';
import { RUNTIME_PLACEHOLDER, SCRIPT_FILE } from '../launcher/job/placeholders.js';
import { encodeJson, Encoding } from '../runtime/wire/codec.js';
import { encodeHeader, FrameType } from '../runtime/wire/frame.js';
import { keygen, rawTcp, RawClient, startDaemon, stopDaemons, tsmpidJs, writeHostfile, type TestDaemon } from './daemons.js';
import { layMetaApp, metaOf, STAGED_CONF } from './import-meta.js';
import { alive, fixture, run, sleep, tsmpirun, until, type RunResult, gone, pidsOf } from './harness.js';

const JOB_MS = 30_000;

let base: string; // everything this file writes, removed in afterAll
let work: string; // tsmpirun's cwd: the files staged with --files live here
let keyDir: string;
let id: Identity;
let knownHosts: string;
let A: TestDaemon;
let B: TestDaemon;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'remote-test-'));
  work = join(base, 'work');
  mkdirSync(join(work, 'sub'), { recursive: true });
  writeFileSync(join(work, 'data.txt'), 'staged-data-42\n');
  writeFileSync(join(work, 'sub', 'info.txt'), 'nested-info-7\n');
  keyDir = join(base, 'keys');
  await keygen(keyDir);
  id = readIdentity(join(keyDir, 'id'));
  knownHosts = join(keyDir, 'known_hosts');
  [A, B] = await Promise.all([
    startDaemon({ host: '127.0.0.2', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
    startDaemon({ host: '127.0.0.3', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 }),
  ]);
  stoppedHost = stopHostMidJob();
  stoppedHost.catch(() => {}); // reported by its test
});

/**
 * A job with ranks on a daemon that then stops (SIGSTOP: no FIN, no answer);
 * the launcher must find it through its heartbeat. Run alongside other tests.
 */
async function stopHostMidJob(): Promise<{ r: RunResult; ms: number; pids: number[]; E: TestDaemon }> {
  const E = await startDaemon({ host: '127.0.0.6', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 });
  let out = '';
  const done = job(['localhost slots=1', E.line(2)], 3, fixture('remote-block.ts'), { onStdout: (t) => (out += t) });
  await until(() => pidsOf(out).filter(Boolean).length === 3, 15_000, `3 pids; stdout so far:\n${out}`);
  const pids = pidsOf(out);
  const t0 = Date.now();
  E.child.kill('SIGSTOP');
  try {
    const r = await done;
    return { r, ms: Date.now() - t0, pids, E };
  } finally {
    E.child.kill('SIGCONT');
  }
}
let stoppedHost: ReturnType<typeof stopHostMidJob>;

// A daemon that died on its own is a bug in it: say so with its last words.
afterEach(() => {
  for (const d of [A, B]) {
    if (d && !d.running) throw new Error(`tsmpid on ${d.host} died (${JSON.stringify(d.exited)}); its stderr:\n${d.stderr.slice(-4000)}`);
  }
});

afterAll(async () => {
  await stoppedHost?.catch(() => {}); // it ends by itself within ~15 s
  await stopDaemons();
  if (base) rmSync(base, { recursive: true, force: true });
});

interface JobOptions {
  identity?: string;
  knownHosts?: string;
  files?: string[];
  extra?: string[];
  /** tsmpirun's cwd (default: work) */
  cwd?: string;
  onStart?: (c: ChildProcess) => void;
  onStdout?: (t: string) => void;
}

/** tsmpirun over `lines` (a hostfile), in `work`, with a private TMPDIR. */
function job(lines: string[], n: number, script: string, o: JobOptions = {}): Promise<RunResult> {
  const tmp = mkdtempSync(join(base, 'tmp-'));
  const args = ['--hostfile', writeHostfile(base, lines), '-n', String(n), '--identity', o.identity ?? join(keyDir, 'id'), '--known-hosts', o.knownHosts ?? knownHosts];
  if (o.files) args.push('--files', o.files.join(','));
  args.push(...(o.extra ?? []), script);
  return tsmpirun(args, {
    timeoutMs: JOB_MS,
    cwd: o.cwd ?? work,
    env: { TMPDIR: tmp },
    ...(o.onStart ? { onStart: o.onStart } : {}),
    ...(o.onStdout ? { onStdout: (t: string) => o.onStdout!(t) } : {}),
  });
}

/** The daemon removes a job's folder when the job ends (just after tsmpirun may have exited). */
async function noJobsLeft(...ds: TestDaemon[]): Promise<void> {
  for (const d of ds) await until(() => d.jobs().length === 0, 5000, `${d.host}'s jobs/ to be empty, has ${d.jobs().join(', ')}`);
}

/** A small good job on this machine plus `d`: the daemon still serves. */
async function goodJob(d: TestDaemon): Promise<void> {
  expect(d.running, `tsmpid on ${d.host} is running\n${d.stderr}`).toBe(true);
  const r = await job(['localhost slots=1', d.line(2)], 3, fixture('remote-hello.ts'));
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout.match(/^hello from \d\/3 sum 6$/gm)?.length, r.stdout).toBe(3);
  await noJobsLeft(d);
}

/** Open fds of a daemon settle back to (about) where they were. */
async function fdsSettle(d: TestDaemon, before: number, what: string): Promise<void> {
  let now = d.fds();
  const end = Date.now() + 5000;
  while (now > before + 2 && Date.now() < end) {
    await sleep(50);
    now = d.fds();
  }
  expect(now, `${what}: tsmpid on ${d.host} holds ${now} fds, had ${before}`).toBeLessThanOrEqual(before + 2);
}

describe('a job over localhost and two tsmpid hosts', () => {
  it('runs collectives and point-to-point across hosts, reads staged files, tags output, cleans up', async () => {
    const results = join(mkdtempSync(join(base, 'results-')), 'results.jsonl');
    const r = await job(['localhost slots=1', A.line(2), B.line(2)], 5, fixture('remote-job.ts'), {
      files: ['data.txt', 'sub/info.txt'],
      extra: ['--tag-output', '--results', results],
    });
    expect(r.code, r.stderr).toBe(0);
    // partial results come back from every host, named by rank and host
    const partials = readFileSync(results, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rank: number; host: string; value: unknown });
    expect(partials.map((p) => [p.rank, p.host, p.value]).sort()).toEqual(
      [0, 1, 2, 3, 4].map((rank) => [rank, ['localhost', '127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3'][rank], { rank, data: 'staged-data-42' }]),
    );
    for (let rank = 0; rank < 5; rank++) {
      const mine = r.stdout.split('\n').filter((l) => l.startsWith(`[${rank}] line `));
      expect(mine, `rank ${rank}'s lines, in order`).toEqual(Array.from({ length: 20 }, (_, i) => `[${rank}] line ${i} of rank ${rank}`));
      expect(r.stdout).toMatch(new RegExp(`^\\[${rank}\\] rank ${rank} pid \\d+ cwd \\S+ data=staged-data-42 info=nested-info-7$`, 'm'));
      expect(r.stderr).toMatch(new RegExp(`^\\[${rank}\\] to stderr from rank ${rank}$`, 'm'));
    }
    // no untagged line
    expect(r.stdout.split('\n').filter((l) => l && !/^\[\d\] /.test(l))).toEqual([]);
    // local rank in tsmpirun's cwd; remote ranks in a job folder under their daemon's workdir
    const cwds = JSON.parse(/cwds (.*)$/m.exec(r.stdout)![1]!) as { rank: number; cwd: string }[];
    expect(cwds[0]!.cwd).toBe(work);
    for (const rank of [1, 2]) expect(cwds[rank]!.cwd.startsWith(join(A.workdir, 'jobs') + '/'), cwds[rank]!.cwd).toBe(true);
    for (const rank of [3, 4]) expect(cwds[rank]!.cwd.startsWith(join(B.workdir, 'jobs') + '/'), cwds[rank]!.cwd).toBe(true);
    expect(cwds[1]!.cwd).toBe(cwds[2]!.cwd);
    await noJobsLeft(A, B);
    // the first contact recorded both host keys, as the daemons printed them
    const pinned = readFileSync(knownHosts, 'utf8');
    expect(pinned).toContain(`127.0.0.2:${A.port} ${A.fingerprint}`);
    expect(pinned).toContain(`127.0.0.3:${B.port} ${B.fingerprint}`);
    expect(statSync(knownHosts).mode & 0o777).toBe(0o600);
  });

  it.each([['coll-suite.ts', 'collective case groups passed'], ['p2p-suite.ts', 'cases passed']])('%s passes with ranks on three hosts', async (name, text) => {
    const r = await job(['localhost slots=1', A.line(2), B.line(2)], 5, fixture(name));
    expect(r.code, r.stderr).toBe(0);
    const counts = [0, 1, 2, 3, 4].map((rank) => new RegExp(`^rank ${rank}/5: (\\d+) ${text}$`, 'm').exec(r.stdout)?.[1]);
    expect(counts.every((c) => c !== undefined && Number(c) > 10), r.stdout).toBe(true);
    expect(new Set(counts).size, 'every rank ran every case').toBe(1);
    await noJobsLeft(A, B);
  });

  it("a remote rank's import.meta, argv[1] and cwd name its job folder, and files read through them are the staged copies", async () => {
    const cwd = mkdtempSync(join(base, 'meta-'));
    const app = layMetaApp(cwd);
    const r = await job(['localhost slots=1', A.line(2), B.line(1)], 4, app.script, { files: app.files, cwd });
    expect(r.code, r.stderr).toBe(0);
    const seen = metaOf(r.stdout);
    expect(seen.map((s) => s.rank)).toEqual([0, 1, 2, 3]);
    // the local rank names its real files, and sees the launcher's copy it rewrote
    expect(seen[0]).toMatchObject({
      filename: join(cwd, 'app', 'meta.ts'),
      dirname: join(cwd, 'app'),
      urlPath: join(cwd, 'app', 'meta.ts'),
      url: pathToFileURL(join(cwd, 'app', 'meta.ts')).href,
      argv1: join(cwd, 'app', 'meta.ts'),
      cwd,
      helper: { dirname: join(cwd, 'app', 'lib'), filename: join(cwd, 'app', 'lib', 'helper.ts') },
      viaUrl: 'changed on the launcher',
      requireOk: true,
    });
    expect(readFileSync(app.conf, 'utf8').trim()).toBe('changed on the launcher');
    for (const [rank, d] of [[1, A], [2, A], [3, B]] as const) {
      const s = seen[rank]!;
      // inside this daemon's workdir, never the launcher's folder
      expect(s.cwd.startsWith(join(d.workdir, 'jobs', 'job-')), `rank ${rank} cwd ${s.cwd}`).toBe(true);
      const file = join(s.cwd, 'app', 'meta.ts');
      expect(s).toMatchObject({
        filename: file,
        dirname: join(s.cwd, 'app'),
        urlPath: file,
        url: pathToFileURL(file).href,
        argv1: file,
        helper: { dirname: join(s.cwd, 'app', 'lib'), filename: join(s.cwd, 'app', 'lib', 'helper.ts'), url: pathToFileURL(join(s.cwd, 'app', 'lib', 'helper.ts')).href },
        viaUrl: STAGED_CONF,
        viaDirname: STAGED_CONF,
        viaCwd: STAGED_CONF,
        requireOk: true,
      });
      expect(JSON.stringify(s)).not.toContain(cwd);
    }
    await noJobsLeft(A, B);
  });

  it('relays a flood of output from remote ranks whole and in order', async () => {
    // seven ranks on one host, both streams: more held-back streams than a socket's default listener limit
    const r = await job(['localhost slots=1', A.line(7), B.line(1)], 9, fixture('remote-flood.ts'), { extra: ['--tag-output', '--oversubscribe'] });
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const pad = 'x'.repeat(100);
    for (const [text, letter] of [[r.stdout, 'r'], [r.stderr, 'e']] as const) {
      const lines = text.split('\n');
      for (let rank = 0; rank < 9; rank++) {
        const mine = lines.filter((l) => l.startsWith(`[${rank}] ${letter}`));
        expect(mine.length, `rank ${rank}'s ${letter === 'r' ? 'stdout' : 'stderr'} lines`).toBe(4000);
        mine.forEach((l, i) => {
          const want = `[${rank}] ${letter}${rank} ${i} ${pad}`;
          if (l !== want) expect(l, `rank ${rank} line ${i}`).toBe(want);
        });
      }
    }
    await noJobsLeft(A, B);
    // holding ranks back must not pile up listeners
    expect(A.stderr + B.stderr).not.toMatch(/MaxListenersExceeded|Warning/);
  });

  it("a remote script imports tsmpi's own dependencies (danfojs-node, tweetnacl) from the host's install", async () => {
    const r = await job(['localhost slots=1', A.line(1)], 2, fixture('remote-deps.ts'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('0:32:3x1 1:32:3x1');
    await noJobsLeft(A);
  });

  it("a host's --slots are a limit unless the launcher says --oversubscribe", async () => {
    const refused = await job(['localhost slots=1', A.line(3)], 4, fixture('remote-hello.ts'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/offers 2 slots and the job asks for 3 ranks here; run with --oversubscribe/);
    const allowed = await job(['localhost slots=1', A.line(3)], 4, fixture('remote-hello.ts'), { extra: ['--oversubscribe'] });
    expect(allowed.code, allowed.stderr).toBe(0);
    await noJobsLeft(A);
  });

  it('runs collectives when a remote host holds more ranks than it has cores', async () => {
    // Every rank must pick the same collective algorithms, wherever it runs
    // and however crowded its own host is.
    const crowd = Math.min(availableParallelism() + 1, 9);
    const n = crowd + 2;
    const r = await job(['localhost slots=1', A.line(crowd), B.line(1)], n, fixture('remote-hello.ts'), { extra: ['--oversubscribe'] });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(new RegExp(`^hello from \\d+/${n} sum ${(n * (n + 1)) / 2}$`, 'gm'))?.length, r.stdout).toBe(n);
    await noJobsLeft(A, B);
  });

  it('abort() on a remote rank ends every rank with its code', async () => {
    const script = join(work, 'abort-remote.ts');
    writeFileSync(script, `import { init } from 'tsmpi';\nconst c = await init();\nconsole.log('pid', c.rank, process.pid);\nif (c.rank === 3) { await new Promise((r) => setTimeout(r, 300)); await c.abort(7); }\nawait c.recv(0, 1);\n`);
    const r = await job(['localhost slots=1', A.line(2), B.line(2)], 5, script);
    expect(r.code, r.stderr).toBe(7);
    expect(r.stderr).toMatch(/rank 3 on 127\.0\.0\.3 called abort\(7\)/);
    const pids = pidsOf(r.stdout);
    expect(pids.filter(Boolean).length).toBe(5);
    await until(() => pids.every(gone), 5000, 'every rank to be gone');
    await noJobsLeft(A, B);
  });

  it('--timeout says what each remote rank waits on, and exits 124', async () => {
    const r = await job(['localhost slots=1', A.line(2)], 3, fixture('remote-block.ts'), { extra: ['--timeout', '2'] });
    expect(r.code, r.stderr).toBe(124);
    for (const [rank, host] of [[0, 'localhost'], [1, '127.0.0.2'], [2, '127.0.0.2']] as const) {
      expect(r.stderr).toMatch(new RegExp(`rank ${rank} \\(${host.replaceAll('.', '\\.')}\\): recv`));
    }
    await noJobsLeft(A);
  });

  it('reports a failing remote rank with its host, and ends the others', async () => {
    const script = join(work, 'fail-remote.ts');
    writeFileSync(script, `import { init } from 'tsmpi';\nconst c = await init();\nif (c.rank === 2) throw new Error('remote boom');\nawait c.recv(0, 1);\n`);
    const r = await job(['localhost slots=1', A.line(2)], 3, script);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/rank 2 on 127\.0\.0\.2 .*exited with code 1/);
    expect(r.stderr).toContain('remote boom');
    // the stack names the script where it is on the launcher (source map), not the bundle
    expect(r.stderr).toContain(`${script}:3:`);
    expect(r.stderr).not.toContain(SCRIPT_FILE);
    await noJobsLeft(A);
  });
});

describe('authentication and host keys', () => {
  it('refuses a launcher whose key is not authorized, and keeps serving', async () => {
    const other = join(base, 'other-keys');
    const kg = await tsmpirun(['keygen', '--out', other], { timeoutMs: 10_000 });
    expect(kg.code).toBe(0);
    const r = await job(['localhost slots=1', A.line(2)], 3, fixture('remote-hello.ts'), { identity: join(other, 'id'), knownHosts: join(other, 'known_hosts') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not authorized/);
    expect(r.stderr).toContain('ERR_AUTH');
    expect(r.stdout).not.toContain('hello from');
    expect(A.stderr).toMatch(/ERR_AUTH/);
    expect(A.jobs()).toEqual([]);
    await goodJob(A);
  });

  it('refuses a host whose key is not the pinned one, naming the known_hosts file', async () => {
    const dir = mkdtempSync(join(base, 'kh-'));
    const file = join(dir, 'known_hosts');
    const wrong = `127.0.0.2:${A.port} sha256:${'0'.repeat(64)}\n`;
    writeFileSync(file, wrong, { mode: 0o600 });
    const authenticated = () => A.stderr.match(/: authenticated$/gm)?.length ?? 0;
    const authBefore = authenticated();
    const r = await job(['localhost slots=1', A.line(2)], 3, fixture('remote-hello.ts'), { knownHosts: file });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain(A.fingerprint);
    expect(r.stdout).not.toContain('hello from');
    expect(readFileSync(file, 'utf8')).toBe(wrong);
    expect(A.jobs()).toEqual([]);
    // it hung up before proving who it is to a host it does not trust
    expect(authenticated()).toBe(authBefore);
  });

  it('records a host at first contact, then knows it', async () => {
    const dir = join(mkdtempSync(join(base, 'kh-')), 'fresh');
    const file = join(dir, 'known_hosts');
    const first = await job(['localhost slots=1', B.line(2)], 3, fixture('remote-hello.ts'), { knownHosts: file });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`recorded the host key of 127.0.0.3:${B.port}`);
    expect(readFileSync(file, 'utf8')).toBe(`127.0.0.3:${B.port} ${B.fingerprint}\n`);
    const second = await job(['localhost slots=1', B.line(2)], 3, fixture('remote-hello.ts'), { knownHosts: file });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toContain('recorded');
    expect(readFileSync(file, 'utf8')).toBe(`127.0.0.3:${B.port} ${B.fingerprint}\n`);
    await noJobsLeft(B);
  });
});

/** Every file under `dir` (relative paths), for "nothing was written" checks. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) walk(join(d, e.name), r);
    }
  };
  walk(dir, '');
  return out.sort();
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function jobMessage(files: { name: string; size: number; sha256: string }[], extra: Record<string, unknown> = {}): object {
  return {
    t: 'job',
    size: 1,
    ranks: [0],
    secret: 'x'.repeat(48),
    hostId: '127.0.0.2:1',
    env: {},
    args: [],
    script: 'evil.ts',
    files,
    tlsKey: 'k',
    tlsCert: 'c',
    ...extra,
  };
}

describe('a launcher that breaks the staging rules', () => {
  const script = Buffer.from('console.log("never runs");\n');
  const scriptEntry = { name: SCRIPT_FILE, size: script.length, sha256: sha(script) };

  it.each(['../evil', '/etc/x', 'a/../../b', 'C:\\x', '..', 'sub/../../../../tmp/evil', 'a\\..\\..\\b', 'x/\u0000y', 'CON'])(
    'refuses the file name %j with ERR_PROTOCOL and writes nothing outside the job folder',
    async (name) => {
      const before = tree(A.base);
      const c = await RawClient.connect(A.host, A.port);
      await c.authenticate(id);
      const payload = Buffer.from('evil\n');
      c.conn.sendControl(jobMessage([scriptEntry, { name, size: payload.length, sha256: sha(payload) }]));
      // an honest launcher would now send the chunks: send them anyway
      c.sendChunk(0, 0, true, script);
      c.sendChunk(1, 0, true, payload);
      const refused = await c.refusal();
      expect(refused.code).toBe('ERR_PROTOCOL');
      expect(existsSync(join(A.workdir, 'jobs', 'evil'))).toBe(false);
      expect(existsSync(join(A.workdir, 'evil'))).toBe(false);
      expect(existsSync(join(A.workdir, 'b'))).toBe(false);
      expect(existsSync('/tmp/evil')).toBe(false);
      await noJobsLeft(A);
      expect(tree(A.base)).toEqual(before);
      expect(A.running).toBe(true);
    },
  );

  it('refuses a staged chunk with a flipped byte (ERR_AUTH) and leaves no file', async () => {
    const c = await RawClient.connect(A.host, A.port);
    await c.authenticate(id);
    const data = randomBytes(5000);
    c.conn.sendControl(jobMessage([scriptEntry, { name: 'data.bin', size: data.length, sha256: sha(data) }]));
    c.sendChunk(0, 0, true, script);
    await until(() => A.jobs().length === 1 && readdirSync(join(A.workdir, 'jobs', A.jobs()[0]!)).includes(SCRIPT_FILE), 5000, 'the good file to land');
    c.sendChunk(1, 0, true, data, 1234);
    const refused = await c.refusal();
    expect(refused.code).toBe('ERR_AUTH');
    await noJobsLeft(A);
  });

  it('refuses a file whose content does not match its declared SHA-256', async () => {
    const c = await RawClient.connect(A.host, A.port);
    await c.authenticate(id);
    const data = randomBytes(100);
    c.conn.sendControl(jobMessage([scriptEntry, { name: 'data.bin', size: data.length, sha256: sha(Buffer.from('other')) }]));
    c.sendChunk(0, 0, true, script);
    c.sendChunk(1, 0, true, data);
    expect((await c.refusal()).code).toBe('ERR_AUTH');
    await noJobsLeft(A);
  });

  it('refuses start before every file arrived, and a file sent twice', async () => {
    const c1 = await RawClient.connect(A.host, A.port);
    await c1.authenticate(id);
    c1.conn.sendControl(jobMessage([scriptEntry, { name: 'x', size: 3, sha256: sha(Buffer.from('abc')) }]));
    c1.sendChunk(0, 0, true, script);
    c1.conn.sendControl({ t: 'start' });
    expect((await c1.refusal()).code).toBe('ERR_PROTOCOL');
    const c2 = await RawClient.connect(A.host, A.port);
    await c2.authenticate(id);
    c2.conn.sendControl(jobMessage([scriptEntry, { name: 'x', size: 3, sha256: sha(Buffer.from('abc')) }, { name: 'x', size: 3, sha256: sha(Buffer.from('abc')) }]));
    expect((await c2.refusal()).code).toBe('ERR_PROTOCOL');
    await noJobsLeft(A);
  });

  it('leaks nothing when a job declares many files and one is malformed', async () => {
    const before = A.fds();
    for (let round = 0; round < 5; round++) {
      const c = await RawClient.connect(A.host, A.port);
      await c.authenticate(id);
      const files = [scriptEntry];
      for (let i = 0; i < 100; i++) files.push({ name: `f${i}`, size: 1, sha256: sha(Buffer.from('a')) });
      files.push({ name: 'bad', size: 1, sha256: 'not hex' });
      c.conn.sendControl(jobMessage(files));
      const r = await c.refusal();
      expect(r.code).toBe('ERR_PROTOCOL');
    }
    await noJobsLeft(A);
    await fdsSettle(A, before, 'after jobs with a malformed file entry');
  });

  it('runs a job for a raw client; word from the launcher after the last exit is no error', async () => {
    const hello = Buffer.from(`console.log('raw hello from ' + process.env.TSMPI_RANK);\n`);
    const c = await RawClient.connect(A.host, A.port);
    await c.authenticate(id);
    c.conn.sendControl(jobMessage([{ name: SCRIPT_FILE, size: hello.length, sha256: sha(hello) }], { size: 2, ranks: [0, 1] }));
    c.sendChunk(0, 0, true, hello);
    c.conn.sendControl({ t: 'start' });
    const started = await c.next('started');
    expect(started.pids.length).toBe(2);
    await until(() => c.messages.filter((m) => m.t === 'exit').length === 2, 10_000, `two exits; got ${JSON.stringify(c.messages)}`);
    expect(c.messages.filter((m) => m.t === 'exit').map((m) => (m as { code: number }).code)).toEqual([0, 0]);
    const out = Buffer.concat(c.data.filter((d) => d.h.tag === 1).map((d) => d.payload)).toString();
    expect(out).toContain('raw hello from');
    // a launcher that has not read the exits yet still tells ranks about each other
    c.conn.sendControl({ t: 'ctl', rank: 1, m: { t: 'gone', rank: 0 } });
    c.conn.sendControl({ t: 'ping' });
    await c.waitClosed(5000);
    expect(c.messages.filter((m) => m.t === 'refused')).toEqual([]);
    await noJobsLeft(A);
  });

  it('ends the job cleanly when the launcher hangs up right after start', async () => {
    const before = A.fds();
    // a real script: it would wait for ever for a message from itself
    const real = Buffer.from(`import { init } from '${RUNTIME_PLACEHOLDER}';\nconst c = await init();\nawait c.recv(0, 5);\n`);
    for (const [delay, how] of [[0, 'end'], [0, 'end'], [0, 'end'], [1, 'end'], [5, 'destroy'], [20, 'destroy'], [50, 'destroy']] as const) {
      const c = await RawClient.connect(A.host, A.port);
      await c.authenticate(id);
      c.conn.sendControl(jobMessage([{ name: SCRIPT_FILE, size: real.length, sha256: sha(real) }]));
      c.sendChunk(0, 0, true, real);
      c.conn.sendControl({ t: 'start' });
      if (delay) await sleep(delay);
      // end() flushes what was written first; destroy() drops anything unsent
      if (how === 'end') c.socket.end();
      else c.destroy();
    }
    await until(() => A.children().length === 0, 5000, `tsmpid's ranks to end, left: ${A.children().join(', ')}`);
    await noJobsLeft(A);
    await fdsSettle(A, before, 'after launchers that hung up at start');
  });

  it('still runs a good job after all of that', async () => {
    await goodJob(A);
  });
});

describe('garbage, floods and silence', () => {
  let C: TestDaemon; // short handshake and idle timeouts

  beforeAll(async () => {
    C = await startDaemon({ host: '127.0.0.5', authorizedKeys: join(keyDir, 'id.pub'), slots: 2, extra: ['--handshake-timeout', '1', '--idle-timeout', '2'] });
  });

  const header = (type: number, length: number, over: Partial<{ ctx: number; tag: number; seq: number }> = {}) =>
    encodeHeader({ type, flags: 0, enc: Encoding.JSON, elem: 0, ctx: over.ctx ?? 0, src: -1, tag: over.tag ?? 0, seq: over.seq ?? 0, length });

  it('closes a plain TCP connection that sends garbage', async () => {
    const before = A.fds();
    // each resolves only once the daemon closed the connection
    await rawTcp(A.host, A.port, randomBytes(4096));
    await rawTcp(A.host, A.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(A.running).toBe(true);
    await fdsSettle(A, before, 'after TCP garbage');
  });

  it('refuses random bytes after TLS with ERR_PROTOCOL', async () => {
    const c = await RawClient.connect(A.host, A.port);
    await c.next('challenge');
    const junk = randomBytes(300);
    junk[0] = 0x99; // never the frame magic
    c.write(junk);
    // more garbage after the first error changes nothing: one refusal, then the end
    c.write(randomBytes(100));
    setTimeout(() => c.write(randomBytes(100)), 5);
    expect((await c.refusal()).code).toBe('ERR_PROTOCOL');
    expect(c.messages.filter((m) => m.t === 'refused').length).toBe(1);
  });

  it('refuses a frame header that announces a huge payload, before any of it arrives', async () => {
    for (const length of [2 ** 40, 2 ** 31, 64 * 2 ** 20]) {
      const c = await RawClient.connect(A.host, A.port);
      c.write(header(FrameType.CONTROL, length));
      const r = await c.refusal();
      expect(r.code).toBe('ERR_PROTOCOL');
      expect(r.message).toMatch(/exceeds/);
    }
    // after authentication too
    const c = await RawClient.connect(A.host, A.port);
    await c.authenticate(id);
    c.write(header(FrameType.DATA, 2 ** 40));
    expect((await c.refusal()).code).toBe('ERR_PROTOCOL');
  });

  it('refuses a control message over the pre-authentication limit', async () => {
    const c = await RawClient.connect(A.host, A.port);
    await c.next('challenge');
    const payload = encodeJson({ t: 'auth', key: 'A'.repeat(100 * 1024), sig: '', staging: '' });
    c.write(Buffer.concat([header(FrameType.CONTROL, payload.length), payload]));
    const r = await c.refusal();
    expect(r.code).toBe('ERR_PROTOCOL');
    expect(r.message).toMatch(/exceeds/);
  });

  it('refuses other pre-authentication traffic', async () => {
    const msgs: Buffer[] = [
      Buffer.concat([header(FrameType.DATA, 4), Buffer.from('abcd')]),
      Buffer.concat([header(FrameType.HELLO, 2), Buffer.from('{}')]),
      (() => {
        const p = encodeJson(jobMessage([]));
        return Buffer.concat([header(FrameType.CONTROL, p.length), p]);
      })(),
      (() => {
        const p = Buffer.from('{"t":"auth",');
        return Buffer.concat([header(FrameType.CONTROL, p.length), p]);
      })(),
      (() => {
        const p = encodeJson({ t: 'start' });
        return Buffer.concat([header(FrameType.CONTROL, p.length), p]);
      })(),
      (() => {
        const p = encodeJson({ t: 'auth', key: Buffer.from(id.publicKey).toString('base64'), sig: Buffer.alloc(64).toString('base64'), staging: Buffer.alloc(32, 1).toString('base64') });
        return Buffer.concat([header(FrameType.CONTROL, p.length), p]);
      })(),
    ];
    const codes: string[] = [];
    for (const m of msgs) {
      const c = await RawClient.connect(A.host, A.port);
      await c.next('challenge');
      c.write(m);
      codes.push((await c.refusal()).code);
    }
    expect(codes).toEqual(['ERR_PROTOCOL', 'ERR_PROTOCOL', 'ERR_PROTOCOL', 'ERR_PROTOCOL', 'ERR_PROTOCOL', 'ERR_AUTH']);
  });

  it('survives a fuzz of random frames and bytes after TLS, before and after authentication', async () => {
    const before = A.fds();
    const anyJson = fc.oneof(
      fc.record({
        t: fc.constantFrom('auth', 'job', 'start', 'ctl', 'kill', 'ping', 'welcome', 'refused', '__proto__', 'constructor'),
        key: fc.oneof(fc.string(), fc.base64String()),
        sig: fc.base64String(),
        staging: fc.oneof(fc.base64String(), fc.constant(Buffer.alloc(32).toString('base64'))),
        rank: fc.integer({ min: -2, max: 3 }),
        m: fc.oneof(fc.constant({ t: 'table', addresses: [] }), fc.constant({ t: 'dump' }), fc.object()),
        signal: fc.constantFrom('SIGKILL', 'SIGTERM', 'SIGSTOP', ''),
      }),
      fc.record({
        t: fc.constant('job'),
        size: fc.integer({ min: -1, max: 4 }),
        ranks: fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 3 }),
        secret: fc.string(),
        hostId: fc.string(),
        env: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())),
        args: fc.array(fc.string(), { maxLength: 3 }),
        script: fc.string(),
        files: fc.array(
          fc.record({
            name: fc.oneof(fc.constantFrom(SCRIPT_FILE, '../x', 'a/b', '/etc/passwd', 'ok.txt', ''), fc.string()),
            size: fc.oneof(fc.integer({ min: -1, max: 2 * 2 ** 20 }), fc.constant(2 ** 60)),
            sha256: fc.oneof(fc.constant('0'.repeat(64)), fc.string()),
          }),
          { maxLength: 4 },
        ),
        tlsKey: fc.string(),
        tlsCert: fc.string(),
      }),
      fc.jsonValue(),
    );
    const frame = fc
      .record({
        type: fc.integer({ min: 0, max: 6 }),
        flags: fc.integer({ min: 0, max: 255 }),
        enc: fc.integer({ min: 0, max: 255 }),
        ctx: fc.integer({ min: 0, max: 4 }),
        src: fc.integer({ min: -2, max: 4 }),
        tag: fc.integer({ min: -1, max: 2 }),
        seq: fc.integer({ min: 0, max: 3 }),
        payload: fc.oneof(fc.uint8Array({ maxLength: 256 }), anyJson.map((v) => encodeJson(v ?? null))),
        lie: fc.oneof(fc.constant(0), fc.integer({ min: -8, max: 8 })),
      })
      .map((f) => {
        const h = encodeHeader({ ...f, elem: 0, length: Math.max(0, f.payload.length + f.lie) });
        return Buffer.concat([h, f.payload]);
      });
    const chunk = fc.oneof({ weight: 5, arbitrary: frame }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b)) });
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(chunk, { minLength: 1, maxLength: 6 }), async (authed, chunks) => {
        runs++;
        const c = await RawClient.connect(A.host, A.port);
        try {
          if (authed) await c.authenticate(id);
          else await c.next('challenge');
          for (const b of chunks) c.write(b);
          // give the daemon a moment to answer, then hang up: it must clean up either way
          await sleep(5);
          c.socket.end();
          await c.waitClosed(5000);
          return A.running;
        } finally {
          c.destroy();
        }
      }),
      { numRuns: 50, interruptAfterTimeLimit: 10_000 },
    );
    expect(runs).toBeGreaterThan(10);
    expect(A.running).toBe(true);
    await noJobsLeft(A);
    await fdsSettle(A, before, 'after the fuzz');
    await goodJob(A);
  });

  it('closes a TLS connection that says nothing after --handshake-timeout, and an idle one after --idle-timeout', async () => {
    const silent = async () => {
      const t0 = Date.now();
      const c = await RawClient.connect(C.host, C.port);
      await c.next('challenge');
      const r = await c.refusal(5000);
      return { r, ms: Date.now() - t0 };
    };
    const idle = async () => {
      const c = await RawClient.connect(C.host, C.port);
      await c.authenticate(id);
      const t0 = Date.now();
      const r = await c.refusal(6000);
      return { r, ms: Date.now() - t0 };
    };
    // no TLS at all: the TLS handshake timeout ends it
    const before = C.fds();
    const t0 = Date.now();
    const tcp = Promise.all(Array.from({ length: 10 }, () => rawTcp(C.host, C.port, Buffer.alloc(0), 5000))).then(() => Date.now() - t0);
    const [ss, i, tcpMs] = await Promise.all([Promise.all(Array.from({ length: 10 }, silent)), idle(), tcp]);
    for (const s of ss) {
      expect(s.r.code).toBe('ERR_TIMEOUT');
      expect(s.ms).toBeGreaterThanOrEqual(800);
      expect(s.ms).toBeLessThan(4000);
    }
    expect(i.r.code).toBe('ERR_TIMEOUT');
    expect(i.ms).toBeGreaterThanOrEqual(1800);
    expect(i.ms).toBeLessThan(5000);
    expect(tcpMs).toBeLessThan(4000);
    expect(C.running).toBe(true);
    await fdsSettle(C, before, 'after silent connections');
  });

  it('handles 40 connections at once, and cleans up after every one', async () => {
    const before = A.fds();
    const conns = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const c = await RawClient.connect(A.host, A.port, 10_000);
        if (i % 2 === 0) await c.authenticate(id);
        else await c.next('challenge', 10_000);
        return c;
      }),
    );
    expect(new Set(conns.map((c) => c.messages[0]!.t === 'challenge' && c.messages[0]!.nonce)).size).toBe(40);
    // half hang up politely, half just vanish
    conns.forEach((c, i) => (i % 4 < 2 ? c.socket.end() : c.destroy()));
    await Promise.all(conns.map((c) => c.waitClosed(8000)));
    expect(A.running).toBe(true);
    await fdsSettle(A, before, 'after 40 connections');
    await goodJob(A);
  });
});

describe('losing a host, losing the launcher', () => {
  it('a daemon killed mid-job: tsmpirun names the host and lost ranks, ends the rest, exits non-zero', async () => {
    const D = await startDaemon({ host: '127.0.0.4', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 });
    let out = '';
    let child: ChildProcess | null = null;
    const done = job(['localhost slots=1', D.line(2)], 3, fixture('remote-block.ts'), { onStdout: (t) => (out += t), onStart: (c) => (child = c) });
    await until(() => pidsOf(out).filter(Boolean).length === 3, 15_000, `3 pids; stdout so far:\n${out}`);
    const pids = pidsOf(out);
    expect(alive(pids[0]!) && alive(pids[1]!) && alive(pids[2]!)).toBe(true);
    const t0 = Date.now();
    D.child.kill('SIGKILL');
    const r = await done;
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/host 127\.0\.0\.4 was lost/);
    expect(r.stderr).toMatch(/ranks lost: 1, 2/);
    expect(child).not.toBeNull();
    // the local rank was ended; the remote ones end on their own once their daemon is gone
    await until(() => pids.every(gone), 5000, `ranks ${pids.join(', ')} to be gone`);
  });

  it('a daemon that stops answering (SIGSTOP) is found by the heartbeat; once it runs again it cleans up', async () => {
    // started in beforeAll: the heartbeat needs ~10 s of silence, other tests run meanwhile
    const { r, ms, pids, E } = await stoppedHost;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/host 127\.0\.0\.6 was lost/);
    expect(r.stderr).toMatch(/ranks lost: 1, 2/);
    expect(ms).toBeLessThan(16_000);
    expect(gone(pids[0]!)).toBe(true);
    // awake again, the daemon sees its launcher gone: ranks ended, folder removed
    await until(() => gone(pids[1]!) && gone(pids[2]!), 5000, 'the remote ranks to be ended');
    await noJobsLeft(E);
  });

  it('SIGTERM to tsmpirun ends every rank, local and remote', async () => {
    let out = '';
    let child: ChildProcess | null = null;
    const done = job(['localhost slots=1', A.line(2), B.line(1)], 4, fixture('remote-block.ts'), { onStdout: (t) => (out += t), onStart: (c) => (child = c) });
    await until(() => pidsOf(out).filter(Boolean).length === 4, 15_000, `4 pids; stdout so far:\n${out}`);
    const pids = pidsOf(out);
    child!.kill('SIGTERM');
    const r = await done;
    expect(r.code).toBe(143);
    expect(r.stderr).toMatch(/SIGTERM/);
    await until(() => pids.every(gone), 5000, `ranks ${pids.join(', ')} to be gone`);
    await noJobsLeft(A, B);
  });

  it('tsmpirun killed mid-job: the daemon ends the job\'s ranks and removes its folder, and keeps serving', async () => {
    let out = '';
    let child: ChildProcess | null = null;
    const done = job(['localhost slots=1', A.line(2)], 3, fixture('remote-block.ts'), { onStdout: (t) => (out += t), onStart: (c) => (child = c) });
    await until(() => pidsOf(out).filter(Boolean).length === 3, 15_000, `3 pids; stdout so far:\n${out}`);
    const pids = pidsOf(out);
    expect(A.jobs().length).toBe(1);
    child!.kill('SIGKILL');
    const r = await done;
    expect(r.signal).toBe('SIGKILL');
    await until(() => pids.every(gone), 5000, `ranks ${pids.join(', ')} to be gone`);
    await noJobsLeft(A);
    await goodJob(A);
  });
});

describe('tsmpid itself', () => {
  it('refuses bad options with exit 2 and a message that names them', async () => {
    const pub = join(keyDir, 'id.pub');
    const dir = mkdtempSync(join(base, 'cli-'));
    const w = join(dir, 'w');
    const bad = join(dir, 'bad.pub');
    writeFileSync(bad, `# a comment\n${readFileSync(pub, 'utf8')}ssh-rsa AAAA nope\n`);
    const cases: [string[], RegExp][] = [
      [['--workdir', w], /--authorized-keys FILE is required/],
      [['--authorized-keys', pub], /--workdir DIR is required/],
      [['--authorized-keys', pub, '--workdir', w, '--listen', 'nonsense'], /--listen needs HOST:PORT/],
      [['--authorized-keys', pub, '--workdir', w, '--listen', '127.0.0.8:70000'], /--listen needs HOST:PORT/],
      [['--authorized-keys', pub, '--workdir', w, '--slots', '0'], /--slots needs a positive number/],
      [['--authorized-keys', pub, '--workdir', w, '--handshake-timeout', 'soon'], /--handshake-timeout needs a positive number/],
      [['--authorized-keys', bad, '--workdir', w, '--listen', '127.0.0.8:0'], new RegExp(`${bad.replaceAll('.', '\\.')}:3`)],
      [['--authorized-keys', join(dir, 'missing.pub'), '--workdir', w, '--listen', '127.0.0.8:0'], /cannot read --authorized-keys/],
      [['--bogus'], /unknown option "--bogus"/],
    ];
    // each its own workdir: they run at once
    const results = await Promise.all(cases.map(([args], i) => run(process.execPath, [tsmpidJs, ...args.map((a) => (a === w ? `${w}${i}` : a))], { timeoutMs: 10_000 })));
    results.forEach((r, i) => {
      expect(r.code, `tsmpid ${cases[i]![0].join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
    });
    const help = await run(process.execPath, [tsmpidJs, '--help'], { timeoutMs: 10_000 });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--authorized-keys');
  });

  it('SIGTERM ends its jobs (ranks, folders) and exits 0; restarted, it keeps its host key', async () => {
    const F = await startDaemon({ host: '127.0.0.7', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 });
    let out = '';
    const done = job(['localhost slots=1', F.line(2)], 3, fixture('remote-block.ts'), { onStdout: (t) => (out += t) });
    await until(() => pidsOf(out).filter(Boolean).length === 3, 15_000, `3 pids; stdout so far:\n${out}`);
    const pids = pidsOf(out);
    expect(F.jobs().length).toBe(1);
    F.child.kill('SIGTERM');
    await F.waitExit(5000);
    expect(F.exited).toEqual({ code: 0, signal: null });
    expect(F.jobs()).toEqual([]);
    const r = await done;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('127.0.0.7');
    await until(() => pids.every(gone), 5000, `ranks ${pids.join(', ')} to be gone`);
    const again = await startDaemon({ host: '127.0.0.7', authorizedKeys: join(keyDir, 'id.pub'), slots: 2, reuse: F });
    expect(again.fingerprint).toBe(F.fingerprint);
    await goodJob(again);
  });

  it('tsmpid --stop ends the daemon serving a workdir cleanly (the way that works on Windows too), and says when none does', async () => {
    const G = await startDaemon({ host: '127.0.0.5', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 });
    let out = '';
    const done = job(['localhost slots=1', G.line(2)], 3, fixture('remote-block.ts'), { onStdout: (t) => (out += t) });
    await until(() => pidsOf(out).filter(Boolean).length === 3, 15_000, `3 pids; stdout so far:\n${out}`);
    const pids = pidsOf(out);
    const stop = await run(process.execPath, [tsmpidJs, '--stop', '--workdir', G.workdir], { timeoutMs: 20_000 });
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toContain('stopped');
    // it had ended its job before it said so
    expect(G.jobs()).toEqual([]);
    await G.waitExit(5000);
    expect(G.exited).toEqual({ code: 0, signal: null });
    expect(G.stderr).toMatch(/tsmpid\.stop appeared: ending every job/);
    const r = await done;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('127.0.0.5');
    await until(() => pids.every(gone), 5000, `ranks ${pids.join(', ')} to be gone`);
    const again = await run(process.execPath, [tsmpidJs, '--stop', '--workdir', G.workdir], { timeoutMs: 10_000 });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no tsmpid serves/);
  });
});

describe('tsmpirun keygen', () => {
  it('writes id (mode 600) and id.pub, and refuses to overwrite', async () => {
    const dir = join(mkdtempSync(join(base, 'kg-')), 'new');
    const r = await tsmpirun(['keygen', '--out', dir], { timeoutMs: 10_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(join(dir, 'id')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'id.pub'), 'utf8')).toMatch(/^tsmpi-ed25519 [A-Za-z0-9+/]{43}= \S+\n$/);
    const idText = readFileSync(join(dir, 'id'), 'utf8');
    const pubText = readFileSync(join(dir, 'id.pub'), 'utf8');
    expect(readIdentity(join(dir, 'id')).publicKey).toEqual(new Uint8Array(Buffer.from(pubText.split(' ')[1]!, 'base64')));
    const again = await tsmpirun(['keygen', '--out', dir], { timeoutMs: 10_000 });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/exists/);
    expect(readFileSync(join(dir, 'id'), 'utf8')).toBe(idText);
    expect(readFileSync(join(dir, 'id.pub'), 'utf8')).toBe(pubText);
  });
});
