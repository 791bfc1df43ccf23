// tsmpirun end to end: real launcher, real rank processes, real signals.
// Every job runs with TMPDIR set to a folder of its own, so a test can check
// that the job's folder (tsmpi-* under os.tmpdir()) is gone afterwards even
// while other test files run jobs at the same time.
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, gone, pidsOf, tsmpirun, until, type RunResult } from './harness.js';

const JOB_MS = 20_000;
const cores = availableParallelism();

const tmps: string[] = [];
function tempDir(prefix = 'launcher-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmps.push(d);
  return d;
}
afterEach(() => {
  for (const d of tmps.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Job folders left in `dir` (the job's os.tmpdir()). */
function jobFolders(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('tsmpi-'));
}

interface Started {
  done: Promise<RunResult>;
  child: () => ChildProcess;
  stdout: () => string;
  /** resolves with the ranks' pids once all `n` printed theirs */
  pids: (n: number) => Promise<number[]>;
  tmp: string;
}

/** Start tsmpirun with a private TMPDIR; the caller decides when to signal it. */
function start(args: string[], env: Record<string, string> = {}): Started {
  const tmp = tempDir();
  let child: ChildProcess | null = null;
  let out = '';
  const done = tsmpirun(args, {
    timeoutMs: JOB_MS,
    env: { TMPDIR: tmp, ...env },
    onStart: (c) => (child = c),
    onStdout: (t) => (out += t),
  });
  return {
    done,
    child: () => child!,
    stdout: () => out,
    pids: async (n) => {
      await until(() => pidsOf(out).filter(Boolean).length === n, 15_000, `${n} ranks to print their pids; stdout so far:\n${out}`);
      return pidsOf(out);
    },
    tmp,
  };
}

/** Run a job to its end with a private TMPDIR and check it left no job folder. */
async function job(args: string[], env: Record<string, string> = {}): Promise<RunResult & { end: number }> {
  const s = start(args, env);
  const r = await s.done;
  const end = Date.now();
  expect(jobFolders(s.tmp), 'the job folder is removed').toEqual([]);
  return { ...r, end };
}

/** The launcher's failure reports (`tsmpirun: rank N on HOST …`). */
function failureReports(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /^tsmpirun: rank \d+ on /.test(l));
}

interface Echo {
  rank: number;
  size: number;
  argv: string[];
  script: string;
  env: Record<string, string | null>;
  pid: number;
}
function echoes(stdout: string): Echo[] {
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Echo)
    .sort((a, b) => a.rank - b.rank);
}

describe('tsmpirun: a job that succeeds', () => {
  it('runs every rank, passes script arguments verbatim, and exits 0', async () => {
    const args = ['a b', '', '-n', '9', '--tag-output', '--', 'ünï'];
    // --processes: the last check is that each rank is a process of its own (threads share one).
    const r = await job(['--processes', '-n', '3', fixture('launcher-echo.ts'), ...args]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const e = echoes(r.stdout);
    expect(e.map((x) => [x.rank, x.size])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
    for (const x of e) {
      expect(x.argv).toEqual(args);
      expect(x.script).toBe(fixture('launcher-echo.ts'));
    }
    expect(new Set(e.map((x) => x.pid)).size).toBe(3);
  });

  it('exports -x NAME (from its own environment) and -x NAME=VALUE to every rank', async () => {
    const r = await job(['-x', 'TSMPI_T_A', '-x', 'TSMPI_T_B=over=ridden', '-x', 'TSMPI_T_C=', '-n', '2', fixture('launcher-echo.ts')], {
      TSMPI_T_A: 'from the launcher',
      TSMPI_T_B: 'launcher value',
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const e = echoes(r.stdout);
    expect(e).toHaveLength(2);
    for (const x of e) expect(x.env).toEqual({ TSMPI_T_A: 'from the launcher', TSMPI_T_B: 'over=ridden', TSMPI_T_C: '' });
  });

  it('starts one rank per slot by default, and oversubscribes this machine unless told not to', async () => {
    const byDefault = await job([fixture('launcher-echo.ts')]);
    expect(byDefault.code).toBe(0);
    expect(echoes(byDefault.stdout).map((x) => x.size)).toEqual(new Array(cores).fill(cores));

    const over = await job(['-n', String(cores + 1), fixture('launcher-echo.ts')]);
    expect(over.stderr).toBe('');
    expect(over.code).toBe(0);
    expect(echoes(over.stdout)).toHaveLength(cores + 1);

    const oneSlot = await job(['--host', 'localhost:1', '-n', '2', fixture('launcher-echo.ts')]);
    expect(oneSlot.code).toBe(0);
    expect(echoes(oneSlot.stdout)).toHaveLength(2);
  });

  it('takes its slots from a hostfile', async () => {
    const dir = tempDir();
    const hf = join(dir, 'hosts');
    writeFileSync(hf, '# this machine only\nlocalhost slots=3 # three ranks\n');
    const r = await job(['--hostfile', hf, fixture('launcher-echo.ts')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(echoes(r.stdout).map((x) => x.rank)).toEqual([0, 1, 2]);
  });

  it('--tag-output prefixes every line of stdout and stderr with [rank], lines never mixed', async () => {
    const lines = 300;
    const r = await job(['--tag-output', '-n', '3', fixture('launcher-lines.ts'), String(lines), 'tail']);
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n');
    expect(out.pop()).toBe('');
    expect(out).toHaveLength(3 * (lines + 1));
    const seen = [0, 0, 0];
    for (const l of out) {
      const m = /^\[(\d)\] rank (\d) (?:line (\d+) (x+)|tail)$/.exec(l);
      expect(m, `a whole, tagged line: ${JSON.stringify(l.slice(0, 80))}`).not.toBeNull();
      const rank = Number(m![1]);
      expect(Number(m![2])).toBe(rank);
      if (m![3] !== undefined) {
        expect(Number(m![3])).toBe(seen[rank]); // in order
        expect(m![4]!.length).toBe(100 + rank * 37);
        seen[rank]!++;
      }
    }
    expect(seen).toEqual([lines, lines, lines]);
    const err = r.stderr.split('\n').filter(Boolean).sort();
    expect(err).toEqual(['[0] rank 0 err one', '[0] rank 0 err two', '[1] rank 1 err one', '[1] rank 1 err two', '[2] rank 2 err one', '[2] rank 2 err two']);
  });

  it('without --tag-output forwards whole lines, untouched', async () => {
    const r = await job(['-n', '3', fixture('launcher-lines.ts'), '100']);
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n');
    expect(out.pop()).toBe('');
    expect(out).toHaveLength(300);
    for (const l of out) expect(l).toMatch(/^rank (\d) line \d+ x+$/);
  });
});

describe('tsmpirun: a job that fails', () => {
  it('a rank that throws ends the job: exit 1, one report with rank, host, code and the .ts stack, others ended', async () => {
    const s = start(['-n', '3', fixture('launcher-fail.ts'), 'throw', '1']);
    const r = await s.done;
    const end = Date.now();
    const pids = pidsOf(r.stdout);
    expect(r.code).toBe(1);
    const reports = failureReports(r.stderr);
    expect(reports, r.stderr).toHaveLength(1);
    expect(reports[0]).toBe(`tsmpirun: rank 1 on localhost (pid ${pids[1]}) exited with code 1`);
    expect(r.stderr).toContain('Error: boom from rank 1');
    expect(r.stderr.split('boom from rank 1')).toHaveLength(2); // the stack once, not twice
    expect(r.stderr).toMatch(new RegExp(`${fixture('launcher-fail.ts').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+`));
    expect(r.stderr).toContain('ended 2 other ranks');
    // rank 2 ignores SIGTERM: it needs the launcher's SIGKILL, still well within 2 s
    const failedAt = Number(/failing at (\d+)/.exec(r.stdout)![1]);
    expect(end - failedAt).toBeLessThan(2000);
    expect(pids.filter(Boolean)).toHaveLength(3);
    for (const pid of pids) expect(gone(pid), `rank pid ${pid} is gone`).toBe(true);
    expect(jobFolders(s.tmp)).toEqual([]);
  });

  it('an unhandled rejection is a failure too, with its stack', async () => {
    const r = await job(['-n', '2', fixture('launcher-fail.ts'), 'reject', '0']);
    expect(r.code).toBe(1);
    expect(failureReports(r.stderr)).toEqual([`tsmpirun: rank 0 on localhost (pid ${pidsOf(r.stdout)[0]}) exited with code 1`]);
    expect(r.stderr).toContain('RangeError: rejected on rank 0');
    expect(r.stderr).toContain(`${fixture('launcher-fail.ts')}:`);
  });

  it("a rank's process.exit(3) is the job's exit code", async () => {
    const r = await job(['-n', '3', fixture('launcher-fail.ts'), 'exit', '1', '3']);
    expect(r.code).toBe(3);
    const pids = pidsOf(r.stdout);
    expect(failureReports(r.stderr)).toEqual([`tsmpirun: rank 1 on localhost (pid ${pids[1]}) exited with code 3`]);
    for (const pid of pids) expect(gone(pid)).toBe(true);
  });

  it('a single-rank job that exits 3 exits 3 (every time)', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await job(['-n', '1', fixture('launcher-fail.ts'), 'exit', '0', '3']);
      expect(r.code).toBe(3);
      expect(failureReports(r.stderr)).toEqual([`tsmpirun: rank 0 on localhost (pid ${pidsOf(r.stdout)[0]}) exited with code 3`]);
    }
  });

  it('a rank killed by a signal: the report names the signal, exit code 128 + 9', async () => {
    // Only a process can be killed by a signal alone (a thread rank signalling its process ends the job).
    const r = await job(['--processes', '-n', '3', fixture('launcher-fail.ts'), 'signal', '2']);
    expect(r.code).toBe(137);
    const pids = pidsOf(r.stdout);
    expect(failureReports(r.stderr)).toEqual([`tsmpirun: rank 2 on localhost (pid ${pids[2]}) was killed by signal SIGKILL`]);
    for (const pid of pids) expect(gone(pid)).toBe(true);
  });

  it.skipIf(process.platform !== 'linux')('when two ranks fail together, the lowest rank is reported and its code wins', async () => {
    // Freeze the launcher, let ranks 2 and then 1 exit (codes 6 and 5), thaw it:
    // it learns of both failures at once, whatever the order they happened in.
    // --processes: the test signals each rank's own process.
    const s = start(['--processes', '-n', '3', fixture('launcher-idle.ts'), 'exit-on-usr2', '5', '6']);
    const pids = await s.pids(3);
    const launcher = s.child().pid!;
    process.kill(launcher, 'SIGSTOP');
    try {
      process.kill(pids[2]!, 'SIGUSR2');
      await until(() => gone(pids[2]!), 5000, 'rank 2 to exit');
      process.kill(pids[1]!, 'SIGUSR2');
      await until(() => gone(pids[1]!), 5000, 'rank 1 to exit');
    } finally {
      process.kill(launcher, 'SIGCONT');
    }
    const r = await s.done;
    expect(r.code).toBe(5);
    expect(failureReports(r.stderr)).toEqual([`tsmpirun: rank 1 on localhost (pid ${pids[1]}) exited with code 5`]);
    expect(gone(pids[0]!)).toBe(true);
    expect(jobFolders(s.tmp)).toEqual([]);
  });

  it('comm.abort(7) ends every rank and tsmpirun exits 7', async () => {
    const r = await job(['-n', '3', fixture('launcher-fail.ts'), 'abort', '1', '7']);
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('rank 1 on localhost called abort(7)');
    expect(failureReports(r.stderr)).toHaveLength(1);
    const pids = pidsOf(r.stdout);
    expect(pids.filter(Boolean)).toHaveLength(3);
    for (const pid of pids) expect(gone(pid)).toBe(true);
  });

  it('--timeout ends a deadlocked job with 124 and says what each rank waits on', async () => {
    // 3 s: every rank reaches its wait well before, even on a loaded machine
    const r = await job(['--timeout', '3', '-n', '4', fixture('launcher-deadlock.ts'), 'spin']);
    expect(r.code).toBe(124);
    expect(r.ms).toBeGreaterThan(3000);
    expect(r.stderr).toContain('ran longer than --timeout 3 s');
    expect(r.stderr).toMatch(/rank 0 \(localhost\): recv\(source=1, tag=7\) on comm 0 for \d/);
    expect(r.stderr).toMatch(/rank 1 \(localhost\): recv\(source=0, tag=3\) on comm 0 for \d/);
    expect(r.stderr).toMatch(/rank 2 \(localhost\): running, did not answer/);
    expect(r.stderr).toMatch(/rank 3 \(localhost\): finished, exit 0/);
    const pids = pidsOf(r.stdout);
    expect(pids.filter(Boolean)).toHaveLength(4);
    for (const pid of pids) expect(gone(pid)).toBe(true);
  });

  it('a rank that ends early (exit 0) makes a receive from it fail with ERR_PEER_LOST, not hang', async () => {
    const r = await job(['-n', '3', fixture('launcher-peer-lost.ts')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['first hello', 'from 1: ERR_PEER_LOST', 'from 2: ERR_PEER_LOST', '']);
  });
});

describe('tsmpirun: signals', () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} to tsmpirun ends every rank (even ones ignoring SIGTERM) and exits ${code}`, async () => {
      const s = start(['-n', '3', fixture('launcher-idle.ts'), 'ignore-term']);
      const pids = await s.pids(3);
      s.child().kill(signal);
      const r = await s.done;
      expect(r.code).toBe(code);
      expect(r.stderr).toContain(`received ${signal}; every rank was ended`);
      for (const pid of pids) expect(gone(pid), `rank pid ${pid} is gone`).toBe(true);
      expect(jobFolders(s.tmp)).toEqual([]);
    });
  }

  it('SIGINT while the script compiles: nothing starts, exit 130, the job folder is removed', async () => {
    // A script big enough that compiling it takes a while (~0.5 s here).
    const dir = tempDir();
    const marker = join(dir, 'ran');
    const body = Array.from({ length: 300_000 }, (_, i) => `  t += ${i} * 2;`).join('\n');
    writeFileSync(
      join(dir, 'big.ts'),
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran');\nexport function never(): number {\n  let t = 0;\n${body}\n  return t;\n}\n`,
    );
    const s = start(['-n', '2', join(dir, 'big.ts')]);
    await until(() => jobFolders(s.tmp).length > 0, 10_000, 'the job folder to appear');
    s.child().kill('SIGINT');
    const r = await s.done;
    expect(r.signal).toBeNull();
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('received SIGINT');
    expect(existsSync(marker), 'no rank ran').toBe(false);
    expect(jobFolders(s.tmp)).toEqual([]);
  });

  it('ranks of a tsmpirun killed with SIGKILL end by themselves', async () => {
    const s = start(['-n', '3', fixture('launcher-idle.ts')]);
    const pids = await s.pids(3);
    s.child().kill('SIGKILL');
    const r = await s.done;
    expect(r.signal).toBe('SIGKILL');
    await until(() => pids.every(gone), 5000, `ranks ${pids.join(', ')} to end after their launcher`);
  });
});

describe('tsmpirun: scripts', () => {
  it('a compile error is reported clearly, exit 1, and no rank starts', async () => {
    const dir = tempDir();
    const marker = join(dir, 'ran');
    writeFileSync(join(dir, 'side.ts'), `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\n`);
    writeFileSync(join(dir, 'broken.ts'), `import './side.ts';\nconst x = ;\n`);
    const r = await job(['-n', '2', join(dir, 'broken.ts')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`tsmpirun: cannot compile ${join(dir, 'broken.ts')}`);
    expect(r.stderr).toContain('broken.ts:2:');
    expect(r.stderr).not.toMatch(/rank \d/);
    expect(existsSync(marker), 'no rank ran the script').toBe(false);
  });

  it('an import that cannot be resolved is a compile error naming it', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'job.ts'), `import { nope } from './missing.ts';\nconsole.log(nope);\n`);
    const r = await job([join(dir, 'job.ts')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot compile');
    expect(r.stderr).toContain('./missing.ts');
  });

  it("a script outside the repo, under a package.json that says commonjs, imports 'tsmpi' and uses top-level await", async () => {
    const dir = tempDir('tsmpi-outside-');
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'outside', type: 'commonjs' }));
    writeFileSync(join(dir, 'lib', 'twice.ts'), 'export const twice = (n: number): number => 2 * n;\n');
    writeFileSync(
      join(dir, 'job.ts'),
      [
        "import { init, TsmpiError } from 'tsmpi';",
        "import { twice } from './lib/twice.ts';",
        'const comm = await init();',
        'await new Promise((r) => setTimeout(r, 10));',
        'const got: number = comm.rank === 0 ? await comm.recv(1, 5) : (await comm.send(twice(21), 0, 5), -1);',
        "if (comm.rank === 0) console.log(`rank 0 got ${got}; ${typeof TsmpiError}; ${import.meta.url.endsWith('/job.ts')}`);",
        '',
      ].join('\n'),
    );
    const r = await job(['-n', '2', join(dir, 'job.ts')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('rank 0 got 42; function; true\n');
  });

  it('a .js script works too', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'job.js'), "import { init } from 'tsmpi';\nconst comm = await init();\nconsole.log(`js ${comm.rank}/${comm.size}`);\n");
    const r = await job(['-n', '2', join(dir, 'job.js')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').sort()).toEqual(['', 'js 0/2', 'js 1/2']);
  });
});

describe('tsmpirun: usage', () => {
  it.each([
    [['--bogus', 'x.ts'], 'unknown option "--bogus"'],
    [['-n', '0', 'x.ts'], '-n must be a positive integer'],
    [['-n'], '-n needs a value'],
    [[], 'no SCRIPT given'],
    [['--timeout', 'soon', 'x.ts'], '--timeout must be a positive number'],
    [['-x', '1BAD', 'x.ts'], 'not a valid environment variable name'],
    [['--host', 'a', '--hostfile', 'b', 'x.ts'], '--host or --hostfile'],
  ])('%j exits 2 with the reason and the usage', async (args, fragment) => {
    const r = await job(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`tsmpirun: `);
    expect(r.stderr).toContain(fragment);
    expect(r.stderr).toContain('usage: tsmpirun [options] SCRIPT');
  });

  it('a missing script, a missing hostfile or a bad host list exits 2 naming it', async () => {
    const script = fixture('launcher-echo.ts');
    const missing = await job(['-n', '2', '/no/such/job.ts']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('/no/such/job.ts');
    const hf = await job(['--hostfile', '/no/such/hostfile', script]);
    expect(hf.code).toBe(2);
    expect(hf.stderr).toContain('cannot read --hostfile /no/such/hostfile');
    const hosts = await job(['--host', 'localhost:0', script]);
    expect(hosts.code).toBe(2);
    expect(hosts.stderr).toContain('slots must be a positive integer');
  });

  it('--no-oversubscribe refuses more ranks than cores, exit 2, before starting anything', async () => {
    const r = await job(['--no-oversubscribe', '-n', String(cores + 1), fixture('launcher-echo.ts')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${cores + 1} ranks need more than the ${cores} slots available`);
  });

  it('--help and --version exit 0 on stdout', async () => {
    const help = await job(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: tsmpirun [options] SCRIPT');
    const version = await job(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^tsmpirun \(tsmpi\) \d+\.\d+\.\d+/);
  });
});
