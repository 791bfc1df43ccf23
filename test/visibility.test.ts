// Seeing a running job: partial results, progress, what each rank is blocked in.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { example, fixture, run, sleep, tsmpirun, tsmpirunJs } from './harness.js';
import { tempDirs } from './expect-code.js';

const tmp = tempDirs('tsmpi-vis');

function readResults(file: string): { rank: number; host: string; time: number; value: { rank: number; i: number; last?: boolean } }[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('partial results', () => {
  it('many ranks at a high rate: every result arrives, in order per rank, as JSON lines', async () => {
    const file = join(tmp(), 'results.jsonl');
    const r = await tsmpirun(['-n', '4', '--results', file, fixture('partials.ts'), '500']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = readResults(file);
    expect(rows).toHaveLength(4 * 501);
    for (let rank = 0; rank < 4; rank++) {
      const mine = rows.filter((x) => x.rank === rank);
      expect(mine.map((x) => x.value.i)).toEqual(Array.from({ length: 501 }, (_, i) => i));
      expect(mine.every((x) => x.host === 'localhost' && x.value.rank === rank && typeof x.time === 'number')).toBe(true);
    }
  });

  it('the --results file is complete even when a rank crashes afterwards', async () => {
    const file = join(tmp(), 'results.jsonl');
    const r = await tsmpirun(['-n', '3', '--results', file, fixture('partials.ts'), '200', 'crash']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('crash after reporting');
    const rows = readResults(file);
    const last = rows.filter((x) => x.value.last);
    expect(last.map((x) => x.rank).sort()).toEqual([0, 1, 2]);
    expect(rows.filter((x) => x.rank === 2)).toHaveLength(201);
  });

  it('--results - streams JSON lines on stdout; by default each is a tagged line', async () => {
    const a = await tsmpirun(['-n', '2', '--results', '-', fixture('partials.ts'), '3']);
    expect(a.code).toBe(0);
    const lines = a.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(8);
    const b = await tsmpirun(['-n', '2', fixture('partials.ts'), '3']);
    expect(b.code).toBe(0);
    expect(b.stdout).toContain('[partial 1] {"rank":1,"i":0}');
    expect(b.stdout.trim().split('\n')).toHaveLength(8);
  });
});

describe('progress', () => {
  it('without a terminal: plain progress lines on stderr ending at 100%', async () => {
    const r = await tsmpirun(['-n', '2', fixture('slow-progress.ts')]);
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(1);
    for (const l of lines) expect(l).toMatch(/^progress: \[[#.]{30}\] +\d+% \d+\/\d+ [\d.]+\/s ETA \S+$/);
    expect(lines.at(-1)).toContain('100% 20/20');
    expect(r.stdout).toContain('rank 0 halfway');
  });

  it('in a terminal: one bar redrawn in place, output lines kept whole', async () => {
    // `script` gives tsmpirun a pseudo-terminal.
    const cmd = `${process.execPath} ${tsmpirunJs} -n 2 ${fixture('slow-progress.ts')}`;
    const r = await run('script', ['-qec', cmd, '/dev/null'], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('\r\x1b[K[');
    expect(r.stdout).toContain('100% 20/20');
    expect(r.stdout).toMatch(/rank 1 halfway\r?\n/);
    expect(r.stdout).not.toContain('progress: ');
  });

  it('a job that reports nothing draws nothing', async () => {
    const r = await tsmpirun(['-n', '2', example('hello.ts')]);
    expect(r.stderr).toBe('');
  });
});

describe('what each rank is blocked in', () => {
  it('SIGUSR1 prints every rank\'s operation and the job goes on', async () => {
    const dir = tmp();
    const flag = join(dir, 'go');
    let reported = false;
    let started = 0;
    const job = tsmpirun(['-n', '2', fixture('blocked.ts'), flag], {
      // each rank prints its pid once it is up; then it blocks at once
      onStdout: (text, child) => {
        started += (text.match(/^pid /gm) ?? []).length;
        if (started !== 2) return;
        started++;
        void (async () => {
          await sleep(500);
          child.kill('SIGUSR1');
          await sleep(1500);
          reported = true;
          writeFileSync(flag, '');
        })();
      },
    });
    const r = await job;
    expect(reported).toBe(true);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('tsmpirun: SIGUSR1: what every rank is doing');
    expect(r.stderr).toMatch(/rank 1 \(localhost\): recv\(source=0, tag=3\) on comm 0 for [\d.]+ s/);
  });

  it('--detect-deadlock ends a deadlocked job with 124, naming the operations', async () => {
    const r = await tsmpirun(['-n', '3', '--detect-deadlock', '1', fixture('blocked.ts')]);
    expect(r.code).toBe(124);
    expect(r.stderr).toContain('deadlock: every running rank is blocked and no message is in flight');
    expect(r.stderr).toMatch(/rank 0 \(localhost\): recv\(source=1, tag=7\)/);
    expect(r.stderr).toMatch(/rank 1 \(localhost\): recv\(source=0, tag=3\)/);
    expect(r.stderr).toMatch(/rank 2 \(localhost\): barrier\(\) on comm 0/);
  });

  it('--detect-deadlock leaves a busy job alone', async () => {
    const r = await tsmpirun(['-n', '2', '--detect-deadlock', '0.5', fixture('slow-progress.ts')]);
    expect(r.code).toBe(0);
  });
});

describe('output files and the report', () => {
  it('--output-filename writes rank.N.out and .err; --quiet keeps the terminal clean', async () => {
    const dir = join(tmp(), 'out');
    const r = await tsmpirun(['-n', '3', '--output-filename', dir, '--quiet', example('hello.ts')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(readdirSync(dir).sort()).toEqual(['rank.0.err', 'rank.0.out', 'rank.1.err', 'rank.1.out', 'rank.2.err', 'rank.2.out']);
    expect(readFileSync(join(dir, 'rank.2.out'), 'utf8')).toMatch(/^Hello from rank 2 of 3/);
    const both = await tsmpirun(['-n', '2', '--output-filename', dir, example('hello.ts')]);
    expect(both.stdout).toContain('Hello from rank 1 of 2');
    expect(readFileSync(join(dir, 'rank.1.out'), 'utf8')).toContain('Hello from rank 1 of 2');
  });

  it('--report prints a line a rank with host, times, memory, traffic and exit', async () => {
    const r = await tsmpirun(['-n', '3', '--report', example('ring.ts')]);
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe('tsmpirun: report');
    expect(lines[1]).toMatch(/^rank +host +wall s +cpu s +peak MiB +msgs sent +MiB sent +msgs recv +MiB recv +exit$/);
    for (let i = 0; i < 3; i++) expect(lines[2 + i]).toMatch(new RegExp(`^${i} +localhost +[\\d.]+ +[\\d.]+ +[\\d.]+ +1 +[\\d.]+ +1 +[\\d.]+ +0$`));
  });

  it('examples/monte-carlo-pi streams estimates and ends near pi', async () => {
    const file = join(tmp(), 'pi.jsonl');
    const r = await tsmpirun(['-n', '2', '--results', file, example('monte-carlo-pi.ts'), '200000']);
    expect(r.code).toBe(0);
    expect(Math.abs(Number(/pi ≈ ([\d.]+)/.exec(r.stdout)?.[1]) - Math.PI)).toBeLessThan(0.02);
    const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows).toHaveLength(40);
  });
});
