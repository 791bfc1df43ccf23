// The standalone pool's processes, seen from outside: a real script (run with
// tsx, as users run TypeScript) uses the pool and ends in every way a script
// can; no worker is left behind.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { alive, fixture, run, until } from './harness.js';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const script = fixture('df-standalone.ts');

function lines(stdout: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const l of stdout.split('\n')) if (l.startsWith('{')) Object.assign(out, JSON.parse(l));
  return out;
}

const gone = (pids: number[]) => until(() => pids.every((p) => !alive(p)), 3000, `workers ${pids.join(', ')} to end`);

describe('standalone pool processes', () => {
  it('a tsx script (keep-names helpers in its functions) gets serial results; closePool ends the workers; no tfjs banner', async () => {
    const r = await run(process.execPath, ['--import', tsx, script, 'close'], { timeoutMs: 90_000 });
    expect(r.stderr).not.toContain('Hi, looks like you are running TensorFlow.js');
    expect(r.code, r.stderr).toBe(0);
    const out = lines(r.stdout);
    expect(out).toMatchObject({ keepNames: true, same: true, groups: 7 });
    expect((out.pids as number[]).length).toBe(2);
    await gone(out.pids as number[]);
  });

  it('a script that ends without closePool leaves no worker', async () => {
    const r = await run(process.execPath, ['--import', tsx, script, 'exit'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    await gone(lines(r.stdout).pids as number[]);
  });

  it('an uncaught error in the script leaves no worker', async () => {
    const r = await run(process.execPath, ['--import', tsx, script, 'throw'], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the script fails after using the pool');
    await gone(lines(r.stdout).pids as number[]);
  });

  it.each(['SIGINT', 'SIGTERM', 'SIGKILL'] as const)('%s to the script during a call leaves no worker', async (signal) => {
    let pids: number[] = [];
    const r = await run(process.execPath, ['--import', tsx, script, 'linger'], {
      timeoutMs: 60_000,
      onStdout: (text, child) => {
        const out = lines(text);
        if (out.pids) pids = out.pids as number[];
        if (out.lingering) setTimeout(() => child.kill(signal), 300);
      },
    });
    expect(r.signal).toBe(signal);
    expect(pids.length).toBe(2);
    await gone(pids);
  });
});
