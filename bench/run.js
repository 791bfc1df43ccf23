#!/usr/bin/env node
// tsmpi benchmark harness. See bench/README.md.
//
//   node bench/run.js [--with-anchors] [--quick] [--pin auto|same|cross|none]
//
// Prints one markdown table on stdout (progress goes to stderr). Every child
// process runs in its own process group and is killed (the whole group) when it
// outlives its time bound, so nothing hangs.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const TSMPIRUN = join(ROOT, 'dist', 'launcher', 'tsmpirun.js');
const PY = '/usr/bin/python3'; // Debian's python3-mpi4py is built for this one, not a pyenv python
const CHILD_TIMEOUT_MS = 120_000;
const KiB = 1024;
const MiB = 1024 * 1024;

// ---------------------------------------------------------------- options
const USAGE = 'usage: node bench/run.js [--with-anchors] [--quick] [--pin auto|same|cross|none]\n';
const argv = process.argv.slice(2);
let withAnchors = false;
let quick = false;
let pinMode = 'auto';
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '-h' || a === '--help') {
    process.stdout.write(USAGE);
    process.exit(0);
  } else if (a === '--with-anchors') withAnchors = true;
  else if (a === '--quick') quick = true;
  else if (a === '--pin' || a.startsWith('--pin=')) {
    pinMode = a === '--pin' ? argv[++i] : a.slice(6);
    if (!['auto', 'same', 'cross', 'none'].includes(pinMode)) {
      process.stderr.write(`bench: bad --pin ${pinMode}\n${USAGE}`);
      process.exit(2);
    }
  } else {
    process.stderr.write(`bench: unknown option ${a}\n${USAGE}`);
    process.exit(2);
  }
}
// Where the two Node ranks (tsmpi and floor alike) run. On this kind of VM a
// wake-up across cores costs ~25 µs, and an unpinned pair flips between
// sharing a core (~12 µs half RTT) and not (~40 µs) from run to run, which
// makes any ratio a coin toss. 'auto': ping-pong with both ranks on CPU 0
// (isolates the software cost per message), streaming with rank r on CPU r
// (sender and receiver copy in parallel, like mpirun's default --bind-to core).
const PIN = {
  pingpong: pinMode === 'auto' ? 'same' : pinMode,
  stream: pinMode === 'auto' ? 'cross' : pinMode,
};

const SIZES = [0, 8, KiB, 64 * KiB, MiB, 16 * MiB];
const perSize = (small, k64, m1, m16) => ({ 0: small, 8: small, [KiB]: small, [64 * KiB]: k64, [MiB]: m1, [16 * MiB]: m16 });
const CFG = quick
  ? {
      rounds: 1,
      pingpong: { sizes: SIZES, iters: perSize(300, 60, 8, 2), warm: perSize(1000, 100, 6, 1), reps: 3 },
      stream: { bytes: 16 * MiB, count: 4, reps: 2 },
      helloRuns: 2,
    }
  : {
      rounds: 3,
      pingpong: { sizes: SIZES, iters: perSize(2000, 300, 40, 6), warm: perSize(4000, 400, 30, 3), reps: 5 },
      stream: { bytes: 16 * MiB, count: 24, reps: 5 },
      helloRuns: 5,
    };

// ---------------------------------------------------------------- children
const live = new Set();
const log = (s) => process.stderr.write(`bench: ${s}\n`);

function killGroup(child, signal = 'SIGKILL') {
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {}
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of live) killGroup(c);
    process.exit(130);
  });
}
process.on('exit', () => {
  for (const c of live) killGroup(c);
});

/** Run a command with a time bound; resolves { code, signal, stdout, stderr, ms, timedOut }. */
function run(cmd, args, { timeoutMs = CHILD_TIMEOUT_MS, env = {}, cwd = ROOT } = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child), 2000).unref();
    }, timeoutMs);
    child.once('error', (e) => {
      stderr += String(e);
    });
    child.once('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      live.delete(child);
      killGroup(child); // anything the child left behind in its group
      resolve({ code, signal, stdout, stderr, ms, timedOut });
    });
  });
}

function describeFailure(what, r) {
  const why = r.timedOut ? `timed out after ${CHILD_TIMEOUT_MS / 1000} s` : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  const lines = r.stderr.trim().split('\n').map((l) => l.trim()).filter(Boolean);
  const first = lines.find((l) => /error|exited|failed|cannot/i.test(l) && !l.startsWith('at '));
  const tail = [...new Set([first, ...lines.slice(-2)].filter(Boolean))].join(' | ').slice(0, 600);
  return `${what}: ${why}${tail ? ` — ${tail}` : ''}`;
}

// ---------------------------------------------------------------- anchors (mpi4py on Open MPI)
const MPI_ENV = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_btl_base_warn_component_unused: '0' };
const notes = [];
const errors = [];

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const f = join(dir, cmd);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {}
  }
  return null;
}

function pyHasMpi4py() {
  if (!existsSync(PY)) return false;
  const r = spawnSync(PY, ['-c', 'import mpi4py, numpy'], { timeout: 30_000 });
  return r.status === 0;
}

async function setUpAnchors() {
  let ok = which('mpirun') && pyHasMpi4py();
  if (!ok && withAnchors) {
    if (process.getuid?.() !== 0) {
      notes.push('--with-anchors: not root, cannot apt-get install the anchors');
    } else {
      log('installing openmpi-bin python3-mpi4py python3-numpy (apt-get)…');
      const env = { DEBIAN_FRONTEND: 'noninteractive' };
      const u = await run('apt-get', ['update', '-q'], { timeoutMs: 300_000, env });
      if (u.code !== 0) errors.push(describeFailure('apt-get update', u));
      const i = await run('apt-get', ['install', '-y', '-q', 'openmpi-bin', 'python3-mpi4py', 'python3-numpy'], { timeoutMs: 600_000, env });
      if (i.code !== 0) errors.push(describeFailure('apt-get install', i));
      ok = which('mpirun') && pyHasMpi4py();
    }
  }
  if (!ok) {
    notes.push(`mpi4py anchors unavailable (need \`mpirun\` and ${PY} with mpi4py + numpy${withAnchors ? '' : '; pass --with-anchors to install them'}): their cells are n/a`);
    return false;
  }
  const smoke = await run('mpirun', [...mpirunFlags(2), '-n', '2', PY, '-c', 'from mpi4py import MPI; MPI.COMM_WORLD.Barrier()'], { env: MPI_ENV, timeoutMs: 60_000 });
  if (smoke.code !== 0) {
    errors.push(describeFailure('mpirun smoke test', smoke));
    notes.push('mpirun is installed but could not run 2 ranks: anchor cells are n/a');
    return false;
  }
  const v = spawnSync(PY, ['-c', 'import mpi4py; from mpi4py import MPI; print(mpi4py.__version__, MPI.Get_library_version().split(",")[0])'], { encoding: 'utf8', timeout: 30_000 });
  anchorVersion = v.status === 0 ? v.stdout.trim() : 'mpi4py';
  return true;
}
let anchorVersion = '';

function mpirunFlags(n) {
  return n > availableParallelism() ? ['--oversubscribe'] : [];
}

// ---------------------------------------------------------------- results
const results = new Map(); // key -> samples[]
function add(key, samples) {
  if (!results.has(key)) results.set(key, []);
  results.get(key).push(...samples);
}
function parseBench(stdout, prefix) {
  let n = 0;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('BENCH ')) continue;
    const o = JSON.parse(line.slice(6));
    const who = o.path ?? prefix;
    add(o.kind === 'pingpong' ? `${who}:pingpong:${o.size}` : `${who}:stream`, o.samples);
    n++;
  }
  return n;
}

async function benchTsmpi(mode, params) {
  const r = await run(process.execPath, [TSMPIRUN, '-n', '2', join(BENCH, 'tsmpi-rank.mjs'), mode, JSON.stringify(params)]);
  if (r.code !== 0 || parseBench(r.stdout, 'tsmpi') === 0) errors.push(describeFailure(`tsmpi ${mode}`, r));
}
async function benchFloor(mode, params) {
  const r = await run(process.execPath, [join(BENCH, 'floor.mjs'), 'main', mode, JSON.stringify(params)]);
  if (r.code !== 0 || parseBench(r.stdout, 'floor') === 0) errors.push(describeFailure(`floor ${mode}`, r));
}
async function benchMpi4py(mode, params) {
  const r = await run('mpirun', [...mpirunFlags(2), '-n', '2', PY, join(BENCH, 'mpi4py_bench.py'), mode, JSON.stringify(params)], { env: MPI_ENV });
  if (r.code !== 0 || parseBench(r.stdout, 'mpi4py') === 0) errors.push(describeFailure(`mpi4py ${mode}`, r));
}

async function helloTsmpi(record) {
  const r = await run(process.execPath, [TSMPIRUN, '-n', '8', 'examples/hello.ts']);
  const hellos = (r.stdout.match(/^Hello from rank \d+ of 8/gm) ?? []).length;
  if (r.code !== 0 || hellos !== 8) errors.push(describeFailure(`tsmpirun -n 8 examples/hello.ts (${hellos}/8 hellos)`, r));
  else if (record) add('tsmpi:hello', [r.ms]);
}
async function helloMpirun(record) {
  const r = await run('mpirun', ['--oversubscribe', '-n', '8', PY, '-c', 'from mpi4py import MPI; MPI.COMM_WORLD.Barrier()'], { env: MPI_ENV });
  if (r.code !== 0) errors.push(describeFailure('mpirun -n 8 Barrier', r));
  else if (record) add('mpirun:hello', [r.ms]);
}

// ---------------------------------------------------------------- formatting
function median(xs) {
  if (!xs || xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const med = (key) => median(results.get(key));
function num(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a';
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}
function ratio(a, b) {
  if (a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
  return `${(a / b).toFixed(2)}×`;
}
function target(a, b, op, limit, what) {
  const label = `${op} ${limit}× ${what}`;
  if (a === null || b === null || b === 0) return `${label}: n/a`;
  const r = a / b;
  const ok = op === '≤' ? r <= limit : r >= limit;
  return `${label}: ${ok ? '✅ PASS' : '❌ FAIL'}`;
}
function sizeName(b) {
  if (b >= MiB) return `${b / MiB} MiB`;
  if (b >= KiB) return `${b / KiB} KiB`;
  return `${b} B`;
}

function table(anchors) {
  const na = (x) => (anchors ? x : null);
  const rows = [];
  rows.push('| measurement | tsmpi | floor (node UDS) | mpi4py | mpi4py buffer | tsmpi/floor | tsmpi/mpi4py | tsmpi/mpi4py buffer | target |');
  rows.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const size of SIZES) {
    const t = med(`tsmpi:pingpong:${size}`);
    const f = med(`floor:pingpong:${size}`);
    const p = na(med(`pickle:pingpong:${size}`));
    const b = na(med(`buffer:pingpong:${size}`));
    const tgt = size === 8 ? target(t, f, '≤', 1.25, 'floor') : '';
    rows.push(`| ping-pong ½ RTT ${sizeName(size)} (µs) | ${num(t)} | ${num(f)} | ${num(p)} | ${num(b)} | ${ratio(t, f)} | ${ratio(t, p)} | ${ratio(t, b)} | ${tgt} |`);
  }
  {
    const t = med('tsmpi:stream');
    const f = med('floor:stream');
    const b = na(med('buffer:stream'));
    rows.push(`| streaming 16 MiB Float64Array (MB/s) | ${num(t)} | ${num(f)} | — | ${num(b)} | ${ratio(t, f)} | — | ${ratio(t, b)} | ${target(t, f, '≥', 0.9, 'floor')} |`);
  }
  {
    const t = med('tsmpi:hello');
    const m = na(med('mpirun:hello'));
    rows.push(`| hello, 8 ranks, wall (ms) | ${num(t)} | — | ${num(m)} | — | — | ${ratio(t, m)} | — | ${target(t, m, '≤', 0.8, 'mpirun')} |`);
  }
  return rows.join('\n');
}

// ---------------------------------------------------------------- main
async function main() {
  if (!existsSync(TSMPIRUN)) {
    process.stderr.write(`bench: ${TSMPIRUN} is missing: run \`npm run build\` first (or \`npm run bench\`)\n`);
    process.exit(1);
  }
  const t0 = Date.now();
  const loadBefore = loadavg()[0];
  if ((PIN.pingpong !== 'none' || PIN.stream !== 'none') && !which('taskset')) {
    notes.push('taskset not found: Node ranks ran unpinned');
  }
  const anchors = await setUpAnchors();
  log(`anchors: ${anchors ? anchorVersion : 'n/a'}; mode: ${quick ? 'quick' : 'full'}`);

  // Implementations are interleaved round by round so that drift of this noisy
  // machine spreads over all of them; medians are over every repetition.
  for (const mode of ['pingpong', 'stream']) {
    const params = { ...CFG[mode], pin: PIN[mode] };
    for (let round = 1; round <= CFG.rounds; round++) {
      log(`${mode} round ${round}/${CFG.rounds}: tsmpi`);
      await benchTsmpi(mode, params);
      log(`${mode} round ${round}/${CFG.rounds}: floor`);
      await benchFloor(mode, params);
      if (anchors) {
        log(`${mode} round ${round}/${CFG.rounds}: mpi4py`);
        await benchMpi4py(mode, params);
      }
    }
  }
  log('hello: warm-up');
  await helloTsmpi(false);
  if (anchors) await helloMpirun(false);
  for (let i = 1; i <= CFG.helloRuns; i++) {
    log(`hello run ${i}/${CFG.helloRuns}`);
    await helloTsmpi(true);
    if (anchors) await helloMpirun(true);
  }

  for (const [k, v] of results) log(`${k}: median ${num(median(v))} of [${v.map(num).join(', ')}]`);

  const cores = availableParallelism();
  const lines = [];
  lines.push(`tsmpi benchmark — ${new Date().toISOString()}, node ${process.version}, ${cores} cores, ${quick ? 'quick' : 'full'} run, anchors: ${anchors ? anchorVersion : 'n/a'}, Node ranks pinned: ping-pong ${PIN.pingpong}, streaming ${PIN.stream}`);
  lines.push('');
  lines.push(table(anchors));
  lines.push('');
  lines.push('mpi4py = pickle path (comm.send/recv of bytes); for the hello row, `mpirun --oversubscribe -n 8 python3 -c "…Barrier()"`. mpi4py buffer = Send/Recv of numpy arrays. Medians of repetitions; MB = 10^6 bytes.');
  // This run itself keeps about 2 processes runnable; much more means someone else was busy too.
  const loadAfter = loadavg()[0];
  if (loadBefore > 0.5 || loadAfter > 3) {
    notes.push(`the machine looked busy (1-min load average ${loadBefore.toFixed(2)} at the start, ${loadAfter.toFixed(2)} at the end): other work on these ${cores} cores skews every column`);
  }
  for (const n of notes) lines.push(`note: ${n}`);
  for (const e of errors) lines.push(`error: ${e}`);
  lines.push(`(total ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  process.stdout.write(lines.join('\n') + '\n');
  process.exitCode = errors.length ? 1 : 0;
}

await main();
