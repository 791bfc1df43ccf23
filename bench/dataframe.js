#!/usr/bin/env node
// tsmpi/dataframe benchmark: parallelApply vs serial danfojs df.apply, and vs
// pandas df.apply(axis=1) serially and over a 2-process multiprocessing.Pool,
// on the same data: 1M rows × 4 float64 columns, a row function with real work
// (Math.sqrt(a*a + b*b + k) + Math.sin(c + k) * d over k = 0..7).
//
//   node bench/dataframe.js [--rows N] [--runs R] [--workers W] [--with-anchors] [--no-pandas] [--user-pool | --thread-pool]
//
// --user-pool: parallelApply gets `pool: new Pool({ workers: W })` (tsmpi/pool; the
// chunks travel in the task's arguments) instead of using the plugin's own pool.
// --thread-pool: the same with `workerType: 'thread'` (worker threads of this
// process; the chunks are structured-cloned to them).
//
// End to end, from an existing danfojs DataFrame to the result Series, conversion
// included. Prints markdown tables on stdout: timings, where the time goes, the
// machine's load. Progress goes to stderr. --with-anchors installs Debian's
// python3-pandas when /usr/bin/python3 lacks pandas (root, apt-get).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const PY = '/usr/bin/python3';
const USAGE = 'usage: node bench/dataframe.js [--rows N] [--runs R] [--workers W] [--with-anchors] [--no-pandas] [--user-pool | --thread-pool]\n';

const argv = process.argv.slice(2);
let rows = 1_000_000;
let runs = 5;
let workers = 2;
let withAnchors = false;
let pandas = true;
let userPool = false;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const num = () => {
    const v = Number(argv[++i]);
    if (!Number.isInteger(v) || v < 1) fail(`bad value for ${a}`);
    return v;
  };
  if (a === '--rows') rows = num();
  else if (a === '--runs') runs = num();
  else if (a === '--workers') workers = num();
  else if (a === '--with-anchors') withAnchors = true;
  else if (a === '--no-pandas') pandas = false;
  else if (a === '--user-pool') userPool = true;
  else if (a === '--thread-pool') userPool = 'thread';
  else if (a === '-h' || a === '--help') {
    process.stdout.write(USAGE);
    process.exit(0);
  } else fail(`unknown option ${a}`);
}

function fail(msg) {
  process.stderr.write(`bench/dataframe: ${msg}\n${USAGE}`);
  process.exit(2);
}
const log = (msg) => process.stderr.write(`[dataframe] ${msg}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const sec = (ms) => (ms / 1000).toFixed(2);

const entry = join(ROOT, 'dist', 'plugins', 'dataframe', 'index.js');
if (!existsSync(entry)) fail('dist/ is missing: run `npm run build` first');
const load0 = loadavg()[0];

// ------------------------------------------------------------------ data
log(`${rows} rows × 4 float64 columns`);
const cols = { a: new Float64Array(rows), b: new Float64Array(rows), c: new Float64Array(rows), d: new Float64Array(rows) };
let seed = 12345;
for (let i = 0; i < rows; i++) {
  for (const c of 'abcd') {
    seed = (seed * 16807) % 2147483647;
    cols[c][i] = (seed / 2147483647) * 10;
  }
}

// The row function, the same in pandas (bench/dataframe_pandas.py).
function rowFn(row) {
  const [a, b, c, d] = row;
  let s = 0;
  for (let k = 0; k < 8; k++) s += Math.sqrt(a * a + b * b + k) + Math.sin(c + k) * d;
  return s;
}

const dfd = await import('danfojs-node');
const { parallelApply, closePool, lastTimings } = await import(pathToFileURL(entry).href);
const poolOptions = userPool === 'thread' ? { workers, workerType: 'thread' } : { workers };
const pool = userPool ? new (await import(pathToFileURL(join(ROOT, 'dist', 'pool', 'index.js')).href)).Pool(poolOptions) : null;
let t = performance.now();
// danfojs wants plain arrays (a Float64Array column is misread).
const df = new dfd.DataFrame({ a: Array.from(cols.a), b: Array.from(cols.b), c: Array.from(cols.c), d: Array.from(cols.d) });
const buildMs = performance.now() - t;
log(`new DataFrame: ${buildMs.toFixed(0)} ms (not part of any timing below)`);

// ------------------------------------------------------------------ JS
const serialMs = [];
const parallelMs = [];
const parts = [];
let serial;
let parallel;
let coldMs = NaN;
// Alternate serial and parallel runs so that both see the same machine.
for (let r = 0; r <= runs; r++) {
  t = performance.now();
  serial = df.apply(rowFn, { axis: 1 });
  const s = performance.now() - t;
  t = performance.now();
  parallel = await parallelApply(df, rowFn, pool ? { workers, pool } : { workers });
  const p = performance.now() - t;
  if (r === 0) {
    coldMs = p;
    log(`first calls: serial ${s.toFixed(0)} ms, parallel ${p.toFixed(0)} ms (pool start included)`);
  } else {
    serialMs.push(s);
    parallelMs.push(p);
    parts.push(lastTimings());
    log(`run ${r}: serial ${s.toFixed(0)} ms, parallel ${p.toFixed(0)} ms`);
  }
}
await closePool();
await pool?.close();
const same =
  JSON.stringify(parallel.values) === JSON.stringify(serial.values) &&
  JSON.stringify(parallel.index) === JSON.stringify(serial.index) &&
  JSON.stringify(parallel.dtypes) === JSON.stringify(serial.dtypes);
if (!same) log('ERROR: parallelApply and df.apply differ');
const checksum = serial.values.reduce((a, b) => a + b, 0);

// Where serial danfojs spends its time: the same steps apply() takes.
const serialParts = [];
for (let r = 0; r < Math.min(runs, 3); r++) {
  let t0 = performance.now();
  const rowsOut = df.$getDataByAxisWithMissingValuesRemoved(1);
  const t1 = performance.now();
  const res = rowsOut.map((row) => rowFn(row));
  const t2 = performance.now();
  new dfd.Series(res, { index: [...df.index] });
  const t3 = performance.now();
  serialParts.push({ rows: t1 - t0, fn: t2 - t1, series: t3 - t2 });
}

// ------------------------------------------------------------------ pandas
let py = null;
let pyNote = '';
if (pandas) {
  const hasPandas = () => spawnSync(PY, ['-c', 'import pandas'], { stdio: 'ignore' }).status === 0;
  if (!existsSync(PY)) pyNote = `${PY} not found`;
  else if (!hasPandas() && withAnchors) {
    log('installing python3-pandas (apt-get)');
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', timeout: 300_000 });
    spawnSync('apt-get', ['install', '-y', '-qq', 'python3-pandas'], { stdio: 'ignore', timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (!pyNote && !hasPandas()) pyNote = 'pandas not installed (run with --with-anchors)';
  if (!pyNote) {
    const dir = mkdtempSync(join(tmpdir(), 'tsmpi-df-bench-'));
    try {
      const file = join(dir, 'data.f64');
      const bytes = Buffer.alloc(rows * 8 * 4);
      ['a', 'b', 'c', 'd'].forEach((c, k) => Buffer.from(cols[c].buffer).copy(bytes, k * rows * 8));
      writeFileSync(file, bytes);
      const pyRuns = Math.max(1, Math.min(runs, 3));
      log(`pandas: ${pyRuns} serial runs, then Pool(${workers}) runs`);
      const r = spawnSync(PY, [join(BENCH, 'dataframe_pandas.py'), file, String(rows), String(pyRuns), String(workers)], {
        encoding: 'utf8',
        timeout: 1_200_000,
        maxBuffer: 1 << 20,
      });
      if (r.status === 0) py = JSON.parse(r.stdout);
      else pyNote = `pandas run failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
} else pyNote = 'skipped (--no-pandas)';

// ------------------------------------------------------------------ tables
const sMed = median(serialMs);
const vs = (ms) => `${(sMed / ms).toFixed(2)}×`;
const out = [];
out.push(`### parallelApply: ${rows.toLocaleString('en-US')} rows × 4 float64 columns, row function with an 8-step loop`);
out.push('');
out.push(`| what | time (s) | speed-up vs serial danfojs |`);
out.push(`|---|---:|---:|`);
out.push(`| danfojs \`df.apply(fn, { axis: 1 })\`, serial | ${sec(sMed)} | 1.00× |`);
out.push(`| tsmpi \`parallelApply\`${pool ? ` on a user's \`Pool\` of ${userPool === 'thread' ? 'worker threads' : 'worker processes'} (chunks in the task arguments)` : ''}, ${workers} workers, pool started | ${sec(median(parallelMs))} | ${vs(median(parallelMs))} |`);
out.push(`| tsmpi \`parallelApply\`, ${workers} workers, first call (pool start included) | ${sec(coldMs)} | ${vs(coldMs)} |`);
if (py) {
  const ps = median(py.serial) * 1000;
  const pp = median(py.pool) * 1000;
  out.push(`| pandas ${py.pandas} \`df.apply(fn, axis=1)\`, serial | ${sec(ps)} | ${vs(ps)} |`);
  out.push(`| pandas + \`multiprocessing.Pool(${workers})\`, pool started | ${sec(pp)} | ${vs(pp)} |`);
  out.push(`| pandas + \`multiprocessing.Pool(${workers})\`, pool start included | ${sec(py.pool_cold * 1000)} | ${vs(py.pool_cold * 1000)} |`);
} else out.push(`| pandas | n/a | ${pyNote} |`);
out.push('');
out.push(`Medians of ${runs} runs (serial and parallel alternate; the first call of each is left out and shown apart).`);
out.push(`Results: parallelApply ${same ? 'equals' : 'DIFFERS FROM'} df.apply (values, index, dtypes); checksum ${checksum.toFixed(6)}${py ? `, pandas ${py.checksum.toFixed(6)}` : ''}.`);
out.push('');
const pm = (k) => median(parts.map((p) => p[k]));
const sm = (k) => median(serialParts.map((p) => p[k]));
out.push('### Where the time goes (ms, medians)');
out.push('');
out.push('| step | serial danfojs | tsmpi parallelApply |');
out.push('|---|---:|---:|');
out.push(`| rows: frame → row arrays, missing values removed | ${sm('rows').toFixed(0)} | in the workers |`);
out.push(`| pack the frame's columns into typed arrays (root) | — | ${pm('pack').toFixed(0)} |`);
out.push(`| call fn on every row | ${sm('fn').toFixed(0)} | in the workers |`);
out.push(`| workers: unpack, build rows, call fn, pack results (their time, added up) | — | ${pm('compute').toFixed(0)} |`);
out.push(`| from the first chunk sent to the last result in (wall) | — | ${pm('workers').toFixed(0)} |`);
out.push(`| build the result Series | ${sm('series').toFixed(0)} | ${pm('build').toFixed(0)} |`);
out.push(`| total | ${sMed.toFixed(0)} | ${median(parallelMs).toFixed(0)} |`);
out.push('');
out.push(`Machine: ${availableParallelism()} cores; 1-minute load average ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end${loadavg()[0] > availableParallelism() / 2 || load0 > availableParallelism() / 2 ? ' (busy: numbers are noisy)' : ''}.`);
process.stdout.write(out.join('\n') + '\n');
process.exit(same ? 0 : 1);
