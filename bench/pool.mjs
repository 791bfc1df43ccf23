#!/usr/bin/env node
// The Node half of the pool benchmark (bench/run.js --only pool): tsmpi/pool,
// the serial loop, piscina and workerpool, 2 workers each, warm pools, medians.
// The Python anchors are bench/pool_anchors.py. Prints one `BENCH {json}` line.
//
//   node bench/pool.mjs [--quick] [--hostfile FILE --identity FILE --known-hosts FILE]
//
// With a hostfile (two tsmpid hosts on loopback, one worker each) the map and
// the CPU-bound tasks also run on a Pool of those hosts.
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cpu, triv } from './pool-tasks.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const { Pool } = await import(pathToFileURL(join(ROOT, 'dist', 'pool', 'index.js')).href);
const { Piscina } = await import('piscina');
const workerpool = (await import('workerpool')).default;

const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : null;
};
const quick = argv.includes('--quick');
const hostfile = opt('--hostfile');
const WORKERS = 2;
const N_TRIVIAL = 100_000;
const N_CPU = 40;
const CPU_MS = 50;
const REPS = quick ? { map: 3, slowMap: 1, cpu: 2, rtt: 500, start: 3 } : { map: 9, slowMap: 3, cpu: 4, rtt: 3000, start: 7 };

const log = (s) => process.stderr.write(`bench pool: ${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const out = {};
const record = (key, samples) => {
  out[key] = median(samples);
  log(`${key}: median ${out[key].toFixed(3)} of ${samples.length}: [${samples.slice(0, 12).map((v) => v.toFixed(2)).join(', ')}${samples.length > 12 ? ', …' : ''}]`);
};
async function time(fn) {
  const t = performance.now();
  const v = await fn();
  return { ms: performance.now() - t, v };
}
function check(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${what}: wrong result`);
}

const items = Array.from({ length: N_TRIVIAL }, (_, i) => i);
const want = items.map(triv);

// Calibrate the CPU-bound task: n steps ≈ CPU_MS ms here (grow until a run
// takes 100 ms, then the best of 3 runs).
const runMs = (n) => {
  const t = performance.now();
  cpu(n);
  return performance.now() - t;
};
let steps = 1 << 16;
while (runMs(steps) < 100) steps *= 2;
steps = Math.round((steps * CPU_MS) / Math.min(runMs(steps), runMs(steps), runMs(steps)));
const cpuItems = Array.from({ length: N_CPU }, () => steps);
const cpuWant = cpuItems.map(cpu);
log(`cpu task: ${steps} steps ≈ ${CPU_MS} ms`);
out.cpuSteps = steps;

// ---------------------------------------------------------------- serial loop
{
  const map = [];
  for (let r = 0; r < REPS.map; r++) {
    map.push(
      (
        await time(() => {
          const o = new Array(items.length);
          for (let i = 0; i < items.length; i++) o[i] = triv(items[i]);
          return o;
        })
      ).ms,
    );
  }
  record('serial:map', map);
  const c = [];
  for (let r = 0; r < REPS.cpu; r++) c.push((await time(() => cpuItems.map(cpu))).ms);
  record('serial:cpu', c);
}

// ---------------------------------------------------------------- tsmpi/pool
async function tsmpiRuns(pool, prefix, { rtt = true } = {}) {
  // warm: workers up, the functions defined there
  check('tsmpi map', await pool.map(triv, items), want);
  await pool.map(cpu, [1000, 1000]);
  const m = [];
  for (let r = 0; r < REPS.map; r++) {
    const { ms, v } = await time(() => pool.map(triv, items));
    check('tsmpi map', v, want);
    m.push(ms);
  }
  record(`${prefix}:map`, m);
  const c = [];
  for (let r = 0; r < REPS.cpu; r++) {
    const { ms, v } = await time(() => pool.map(cpu, cpuItems));
    check('tsmpi cpu', v, cpuWant);
    c.push(ms);
  }
  record(`${prefix}:cpu`, c);
  if (rtt) {
    const one = (x) => x + 1;
    for (let i = 0; i < 200; i++) await pool.submit(one, i);
    const us = [];
    for (let i = 0; i < REPS.rtt; i++) {
      const t = performance.now();
      await pool.submit(one, i);
      us.push((performance.now() - t) * 1000);
    }
    record(`${prefix}:rtt`, us);
  }
}
// process workers (the default) and thread workers (workerType: 'thread')
for (const [prefix, extra] of [['tsmpi', {}], ['thread', { workerType: 'thread' }]]) {
  log(`tsmpi/pool, local ${prefix === 'tsmpi' ? 'processes' : 'threads'}`);
  const pool = new Pool({ workers: WORKERS, ...extra });
  try {
    await tsmpiRuns(pool, prefix);
  } finally {
    await pool.close();
  }
  const s = [];
  for (let r = 0; r < REPS.start; r++) {
    const t = performance.now();
    const p = new Pool({ workers: WORKERS, ...extra });
    await p.submit(triv, 1);
    s.push(performance.now() - t);
    await p.close();
  }
  record(`${prefix}:start`, s);
}
if (hostfile) {
  log('tsmpi/pool, two tsmpid hosts');
  const pool = new Pool({ workers: 0, hostfile, identity: opt('--identity'), knownHosts: opt('--known-hosts') });
  try {
    await tsmpiRuns(pool, 'remote', { rtt: true });
    out.remoteHosts = [...new Set(pool.workers.map((w) => w.host))].sort();
  } finally {
    await pool.close();
  }
}

// ---------------------------------------------------------------- piscina
{
  log('piscina');
  const filename = pathToFileURL(join(BENCH, 'pool-piscina.mjs')).href;
  const opts = { filename, minThreads: WORKERS, maxThreads: WORKERS, idleTimeout: 60_000 };
  let pool = new Piscina(opts);
  check('piscina', await Promise.all(items.slice(0, 1000).map((x) => pool.run({ kind: 't', x }))), want.slice(0, 1000));
  const m = [];
  for (let r = 0; r < REPS.slowMap; r++) {
    const { ms, v } = await time(() => Promise.all(items.map((x) => pool.run({ kind: 't', x }))));
    check('piscina map', v, want);
    m.push(ms);
  }
  record('piscina:map', m);
  const c = [];
  for (let r = 0; r < REPS.cpu; r++) c.push((await time(() => Promise.all(cpuItems.map((x) => pool.run({ kind: 'cpu', x }))))).ms);
  record('piscina:cpu', c);
  for (let i = 0; i < 200; i++) await pool.run({ kind: 't', x: i });
  const us = [];
  for (let i = 0; i < REPS.rtt; i++) {
    const t = performance.now();
    await pool.run({ kind: 't', x: i });
    us.push((performance.now() - t) * 1000);
  }
  record('piscina:rtt', us);
  await pool.destroy();
  const s = [];
  for (let r = 0; r < REPS.start; r++) {
    const t = performance.now();
    pool = new Piscina(opts);
    await pool.run({ kind: 't', x: 1 });
    s.push(performance.now() - t);
    await pool.destroy();
  }
  record('piscina:start', s);
}

// ---------------------------------------------------------------- workerpool
{
  log('workerpool');
  const file = join(BENCH, 'pool-workerpool.cjs');
  const opts = { minWorkers: WORKERS, maxWorkers: WORKERS };
  let pool = workerpool.pool(file, opts);
  check('workerpool', await Promise.all(items.slice(0, 1000).map((x) => pool.exec('triv', [x]))), want.slice(0, 1000));
  const m = [];
  for (let r = 0; r < REPS.slowMap; r++) {
    const { ms, v } = await time(() => Promise.all(items.map((x) => pool.exec('triv', [x]))));
    check('workerpool map', v, want);
    m.push(ms);
  }
  record('workerpool:map', m);
  const c = [];
  for (let r = 0; r < REPS.cpu; r++) c.push((await time(() => Promise.all(cpuItems.map((x) => pool.exec('cpu', [x]))))).ms);
  record('workerpool:cpu', c);
  for (let i = 0; i < 200; i++) await pool.exec('triv', [i]);
  const us = [];
  for (let i = 0; i < REPS.rtt; i++) {
    const t = performance.now();
    await pool.exec('triv', [i]);
    us.push((performance.now() - t) * 1000);
  }
  record('workerpool:rtt', us);
  await pool.terminate();
  const s = [];
  for (let r = 0; r < REPS.start; r++) {
    const t = performance.now();
    pool = workerpool.pool(file, opts);
    await pool.exec('triv', [1]);
    s.push(performance.now() - t);
    await pool.terminate();
  }
  record('workerpool:start', s);
}

out.cores = availableParallelism();
process.stdout.write(`BENCH ${JSON.stringify(out)}\n`);
