// Optional CPU profiling of a rank (NODE_OPTIONS cannot carry --cpu-prof):
//   BENCH_PROFILE=/tmp/prof node dist/launcher/tsmpirun.js -n 2 -x BENCH_PROFILE bench/tsmpi-rank.mjs pingpong '{…}'
// writes /tmp/prof/<label>-rank<r>.cpuprofile (open in Chrome DevTools), and
//   node bench/profile-summary.mjs FILE.cpuprofile   prints the top self-time functions.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export async function profiled(label, rank, fn) {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return fn();
  const s = new Session();
  s.connect();
  const post = (m, p) => new Promise((res, rej) => s.post(m, p ?? {}, (e, r) => (e ? rej(e) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 50 });
  await post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await post('Profiler.stop');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${label}-rank${rank}.cpuprofile`), JSON.stringify(profile));
    s.disconnect();
  }
}
