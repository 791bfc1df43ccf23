// tsmpi/dataframe in collective mode under tsmpirun, and both dataframe examples.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { example, fixture, run, tsmpirun } from './harness.js';

type Line = Record<string, any>;
const parse = (stdout: string): Line[] =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

const CASES_PER_SIZE = 9;

describe('collective mode under tsmpirun -n 3', () => {
  it.each([
    [0, [0, 1, 1000, 200_000]],
    [2, [0, 1, 1000]],
  ])('root %i: every function equals serial danfojs; errors reach the root; bad arguments reject everywhere', async (root, sizes) => {
    const r = await tsmpirun(['-n', '3', fixture('df-collective.ts'), String(root), sizes.join(',')], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = parse(r.stdout);
    const cases = lines.filter((l) => 'case' in l);
    expect(cases).toHaveLength(CASES_PER_SIZE * sizes.length);
    for (const c of cases) expect(c, JSON.stringify(c)).toMatchObject({ same: true });
    // Only the group call on an empty frame fails, in danfojs too.
    expect(cases.filter((c) => !c.ok).map((c) => c.case)).toStrictEqual(['groupApply 0']);

    // fn threw on row 1500 of 3000, in rank 1's share: the root rejects with it.
    const errors = lines.filter((l) => 'error' in l);
    expect(errors).toHaveLength(3);
    for (const e of errors) {
      if (e.rank === root) {
        expect(e.error).toMatchObject({ name: 'RangeError', message: 'bad value 1500', position: 1500, where: 'row 1500 (index 1500) on rank 1' });
        expect(e.error.stack).toContain('[tsmpi/dataframe] parallelApply: the function threw at row 1500');
      } else expect(e.error).toBeNull();
    }
    // A function with a free variable: ERR_ARG on every rank, and the job goes on.
    expect(lines.filter((l) => l.badFn === 'ERR_ARG').map((l) => l.rank).sort()).toStrictEqual([0, 1, 2]);
    expect(lines.filter((l) => l.done)).toHaveLength(3);
    // progress: true drives the launcher's one bar.
    expect(r.stderr).toMatch(/progress: .*100%/);
  });
});

describe('dataframe examples', () => {
  it('parallel-apply.ts (standalone pool): same result as df.apply', async () => {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const r = await run(process.execPath, ['--import', tsx, example('parallel-apply.ts'), '20000'], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('parallelApply over 20000 rows: same result as df.apply: true');
    expect(r.stdout).toContain('most expensive row per region: 4 rows');
    expect(r.stderr).toMatch(/parallelApply \[#+\] 100% 20000\/20000 rows/);
  });

  it('parallel-apply-mpi.ts (collective mode, tsmpirun -n 3): same result as df.apply', async () => {
    const r = await tsmpirun(['-n', '3', example('parallel-apply-mpi.ts'), '30000'], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/30000 rows over 3 ranks in \d+ ms: same result as df.apply: true/);
  });
});
