#!/usr/bin/env node
// tsmpi benchmark harness. See bench/README.md.
//
//   node bench/run.js [--with-anchors] [--quick] [--pin auto|same|cross|none] [--only p2p,coll,remote,codec,launch,monitor,pool]
//
// Prints seven markdown tables on stdout (progress goes to stderr): point to
// point, collectives (n = 2, 4, 8), remote hosts (tsmpid daemons on loopback
// addresses), the value codec's fast paths, start-up over ssh and Slurm, --monitor's
// cost, the task pool against Python's and Node's pools (bench/pool-section.mjs). Every child process runs in its own process group and is killed
// (the whole group) when it outlives its time bound, so nothing hangs.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, openSync, closeSync, writeSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attachMonitor } from './monitor-client.mjs';
import { poolSection, poolTable } from './pool-section.mjs';
import { killGroup, startBenchDaemon } from './tsmpid.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const TSMPIRUN = join(ROOT, 'dist', 'launcher', 'tsmpirun.js');
const PY = '/usr/bin/python3'; // Debian's python3-mpi4py is built for this one, not a pyenv python
const CHILD_TIMEOUT_MS = 120_000;
const KiB = 1024;
const MiB = 1024 * 1024;

// ---------------------------------------------------------------- options
const USAGE = 'usage: node bench/run.js [--with-anchors] [--quick] [--pin auto|same|cross|none] [--only p2p,coll,remote,codec,launch,monitor,pool]\n';
const SECTIONS = ['p2p', 'coll', 'remote', 'codec', 'launch', 'monitor', 'pool'];
const argv = process.argv.slice(2);
let withAnchors = false;
let quick = false;
let pinMode = 'auto';
let only = new Set(SECTIONS);
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
  } else if (a === '--only' || a.startsWith('--only=')) {
    const list = (a === '--only' ? argv[++i] ?? '' : a.slice(7)).split(',').filter(Boolean);
    if (list.length === 0 || list.some((x) => !SECTIONS.includes(x))) {
      process.stderr.write(`bench: bad --only ${list.join(',')}\n${USAGE}`);
      process.exit(2);
    }
    only = new Set(list);
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
      coll: { ns: [2, 4, 8], rounds: 1, warm: { small: 20, large: 1 }, reps: { small: 30, large: 3 } },
      remote: { stageBytes: 256 * MiB, stageRuns: 1, rounds: 1 },
      codec: { rounds: 2, reps: 5, ms: 10 },
      launchRuns: 3,
    }
  : {
      rounds: 3,
      pingpong: { sizes: SIZES, iters: perSize(2000, 300, 40, 6), warm: perSize(4000, 400, 30, 3), reps: 5 },
      stream: { bytes: 16 * MiB, count: 24, reps: 5 },
      helloRuns: 5,
      coll: { ns: [2, 4, 8], rounds: 2, warm: { small: 50, large: 2 }, reps: { small: 150, large: 8 } },
      remote: { stageBytes: 1024 * MiB, stageRuns: 3, rounds: 2 },
      codec: { rounds: 6, reps: 7, ms: 20 },
      launchRuns: 7,
    };
// Collectives: n = 8 ranks on this 2-core machine is oversubscribed. Neither side
// is pinned: Node ranks get no taskset, mpirun gets --bind-to none, and the
// kernel places everything. (Pinning 8 ranks onto 2 CPUs would force a placement
// on one side that the other side's binding policy does not make.)
const COLL_OPS = ['barrier', 'bcast_obj', 'bcast_8mib', 'scatter_obj', 'gather_obj', 'reduce_int', 'allreduce_int', 'reduce_1m', 'allreduce_1m'];

// ---------------------------------------------------------------- children
const live = new Set();
const log = (s) => process.stderr.write(`bench: ${s}\n`);


// Scratch space (the remote section's 1 GiB file, daemon workdirs): removed at exit.
let scratch = null;
function cleanUp() {
  for (const c of live) killGroup(c);
  if (scratch) {
    try {
      rmSync(scratch, { recursive: true, force: true });
    } catch {}
    scratch = null;
  }
}
let stopping = false; // after SIGINT/SIGTERM: start nothing new
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: ending every child process group`);
    // SIGTERM first, so tsmpirun and tsmpid end their ranks (local and remote)
    // themselves; then SIGKILL whatever is left of every group.
    for (const c of live) killGroup(c, 'SIGTERM');
    setTimeout(() => {
      cleanUp();
      process.exit(130);
    }, 1500);
  });
}
process.on('exit', cleanUp);

/** Run a command with a time bound; resolves { code, signal, stdout, stderr, ms, timedOut }. */
function run(cmd, args, { timeoutMs = CHILD_TIMEOUT_MS, env = {}, cwd = ROOT, onStderr = null } = {}) {
  return new Promise((resolve) => {
    if (stopping) return resolve({ code: null, signal: 'SIGTERM', stdout: '', stderr: 'the bench is stopping', ms: 0, timedOut: false });
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
      onStderr?.(stderr);
    });
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
    if (o.kind === 'codec') add(`codec:${o.impl}:${o.value}`, o.samples);
    else if (o.kind === 'coll') {
      add(`coll:${o.impl}:${o.op}:${o.n}`, o.samples);
      add(`collroot:${o.impl}:${o.op}:${o.n}`, o.root);
    } else add(o.kind === 'pingpong' ? `${who}:pingpong:${o.size}` : `${who}:stream`, o.samples);
    n++;
  }
  return n;
}

/** `local`: 'processes' (results under `tsmpi`) or 'threads' (under `threads`); MODE stream-into adds `-into`. */
async function benchTsmpi(mode, params, local = 'processes') {
  const prefix = (local === 'threads' ? 'threads' : 'tsmpi') + (mode === 'stream-into' ? '-into' : '');
  const r = await run(process.execPath, [TSMPIRUN, `--${local}`, '-n', '2', join(BENCH, 'tsmpi-rank.mjs'), mode, JSON.stringify(params)]);
  if (r.code !== 0 || parseBench(r.stdout, prefix) === 0) errors.push(describeFailure(`tsmpi --${local} ${mode}`, r));
}
async function benchFloor(mode, params) {
  const r = await run(process.execPath, [join(BENCH, 'floor.mjs'), 'main', mode, JSON.stringify(params)]);
  if (r.code !== 0 || parseBench(r.stdout, 'floor') === 0) errors.push(describeFailure(`floor ${mode}`, r));
}
async function benchMpi4py(mode, params) {
  const r = await run('mpirun', [...mpirunFlags(2), '-n', '2', PY, join(BENCH, 'mpi4py_bench.py'), mode, JSON.stringify(params)], { env: MPI_ENV });
  if (r.code !== 0 || parseBench(r.stdout, 'mpi4py') === 0) errors.push(describeFailure(`mpi4py ${mode}`, r));
}

async function helloTsmpi(record, local = 'processes') {
  const r = await run(process.execPath, [TSMPIRUN, `--${local}`, '-n', '8', 'examples/hello.ts']);
  const hellos = (r.stdout.match(/^Hello from rank \d+ of 8/gm) ?? []).length;
  if (r.code !== 0 || hellos !== 8) errors.push(describeFailure(`tsmpirun --${local} -n 8 examples/hello.ts (${hellos}/8 hellos)`, r));
  else if (record) add(local === 'threads' ? 'threads:hello' : 'tsmpi:hello', [r.ms]);
}
async function helloMpirun(record) {
  const r = await run('mpirun', ['--oversubscribe', '-n', '8', PY, '-c', 'from mpi4py import MPI; MPI.COMM_WORLD.Barrier()'], { env: MPI_ENV });
  if (r.code !== 0) errors.push(describeFailure('mpirun -n 8 Barrier', r));
  else if (record) add('mpirun:hello', [r.ms]);
}

// ---------------------------------------------------------------- collectives
function collParams() {
  return { ops: COLL_OPS, warm: CFG.coll.warm, reps: CFG.coll.reps, pin: 'none' };
}
async function collTsmpi(n, local = 'processes') {
  const impl = local === 'threads' ? 'threads' : 'tsmpi';
  const r = await run(process.execPath, [TSMPIRUN, `--${local}`, '-n', String(n), join(BENCH, 'coll-rank.mjs'), JSON.stringify({ ...collParams(), impl })]);
  if (r.code !== 0 || parseBench(r.stdout, impl) !== COLL_OPS.length) errors.push(describeFailure(`tsmpi --${local} collectives -n ${n}`, r));
}
async function collMpi4py(n) {
  const r = await run('mpirun', ['--bind-to', 'none', ...mpirunFlags(n), '-n', String(n), PY, join(BENCH, 'mpi4py_coll.py'), JSON.stringify(collParams())], { env: MPI_ENV });
  if (r.code !== 0 || parseBench(r.stdout, 'mpi4py') !== COLL_OPS.length) errors.push(describeFailure(`mpi4py collectives -n ${n}`, r));
}

// ---------------------------------------------------------------- the value codec (one process per implementation)
const CODEC_IMPLS = ['new', 'old', 'v8'];
const CODEC_VALUES = ['number', 'small', 'records', 'shared'];
async function benchCodec(impl) {
  const r = await run(process.execPath, [join(BENCH, 'codec.mjs'), impl, JSON.stringify({ reps: CFG.codec.reps, ms: CFG.codec.ms })]);
  if (r.code !== 0 || parseBench(r.stdout, impl) !== CODEC_VALUES.length) errors.push(describeFailure(`codec ${impl}`, r));
}

// ---------------------------------------------------------------- remote hosts (tsmpid on loopback)
const REMOTE_HOST = '127.0.0.2'; // only ever 127.0.0.0/8
const remote = { ok: false, dir: '', keys: '', port: 0, daemon: null, file: '', cert: '', key: '' };

/** Start a tsmpid on REMOTE_HOST (own process group, in `live`); resolves its port. */
function startDaemon(workdir) {
  if (stopping) return Promise.reject(new Error('the bench is stopping'));
  return startBenchDaemon({ host: REMOTE_HOST, authorizedKeys: join(remote.keys, 'id.pub'), workdir, slots: 2, onSpawn: (c) => live.add(c), onExit: (c) => live.delete(c) });
}
async function stopDaemon(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  killGroup(child, 'SIGTERM');
  const t = setTimeout(() => killGroup(child), 3000);
  await gone;
  clearTimeout(t);
  killGroup(child); // its ranks, if any were left
  live.delete(child);
}

function writeRandomFile(file, bytes) {
  // Random bytes, so that nothing on the way can compress them.
  const fd = openSync(file, 'w');
  const buf = Buffer.allocUnsafe(16 * MiB);
  try {
    for (let left = bytes; left > 0; left -= buf.length) {
      randomFillSync(buf);
      writeSync(fd, buf, 0, Math.min(left, buf.length));
    }
  } finally {
    closeSync(fd);
  }
}

async function setUpRemote() {
  scratch = mkdtempSync(join(tmpdir(), 'tsmpi-bench-'));
  remote.dir = scratch;
  remote.keys = join(scratch, 'keys');
  const kg = await run(process.execPath, [TSMPIRUN, 'keygen', '--out', remote.keys], { timeoutMs: 30_000 });
  if (kg.code !== 0) {
    errors.push(describeFailure('tsmpirun keygen', kg));
    return false;
  }
  try {
    const { child, port } = await startDaemon(join(scratch, 'tsmpid'));
    remote.daemon = child;
    remote.port = port;
  } catch (e) {
    errors.push(`tsmpid on ${REMOTE_HOST}: ${e.message}`);
    return false;
  }
  log(`tsmpid listening on ${REMOTE_HOST}:${remote.port} (workdir ${join(scratch, 'tsmpid')})`);
  writeFileSync(join(scratch, 'hosts-remote'), `# staging: every rank on the daemon\n${REMOTE_HOST} slots=2 port=${remote.port}\n`);
  writeFileSync(join(scratch, 'hosts-pair'), `# rank 0 here (a local child), rank 1 through the daemon\nlocalhost slots=1\n${REMOTE_HOST} slots=1 port=${remote.port}\n`);
  remote.ok = true;
  return true;
}

function remoteArgs(hostfile, n) {
  return [TSMPIRUN, '--hostfile', join(remote.dir, hostfile), '-n', String(n), '--identity', join(remote.keys, 'id'), '--known-hosts', join(remote.keys, 'known_hosts')];
}

/** One staging job; records the time from spawning tsmpirun to the remote rank's first statement. */
async function stageJob(withFile, record) {
  const name = withFile ? 'stage.bin' : '-';
  const args = [...remoteArgs('hosts-remote', 1), ...(withFile ? ['--files', remote.file] : []), join(BENCH, 'stage-check.mjs'), name, String(CFG.remote.stageBytes)];
  const t0 = performance.timeOrigin + performance.now();
  const r = await run(process.execPath, args, { timeoutMs: 180_000 });
  const m = /^BENCH (.*)$/m.exec(r.stdout);
  if (r.code !== 0 || !m) {
    errors.push(describeFailure(`staging job ${withFile ? 'with' : 'without'} --files`, r));
    return;
  }
  const started = JSON.parse(m[1]).t - t0;
  log(`staging job ${withFile ? 'with' : 'without'} --files: rank started after ${started.toFixed(0)} ms (job wall ${r.ms.toFixed(0)} ms)`);
  if (record) add(withFile ? 'stage:with' : 'stage:without', [started]);
}
async function cpAnchor() {
  const dst = join(remote.dir, 'cp.bin');
  const r = await run('cp', [remote.file, dst], { timeoutMs: 180_000 });
  try {
    unlinkSync(dst);
  } catch {}
  if (r.code !== 0) errors.push(describeFailure('cp anchor', r));
  else add('stage:cp', [CFG.remote.stageBytes / 1e6 / (r.ms / 1e3)]);
}
async function tlsAnchor() {
  if (!remote.cert) return;
  const dst = join(remote.dir, 'tls.bin');
  const r = await run(process.execPath, [join(BENCH, 'tls-copy.mjs'), remote.file, dst, remote.cert, remote.key, REMOTE_HOST], { timeoutMs: 180_000 });
  try {
    unlinkSync(dst);
  } catch {}
  const m = /^BENCH (.*)$/m.exec(r.stdout);
  if (r.code !== 0 || !m) errors.push(describeFailure('TLS copy anchor', r));
  else {
    const o = JSON.parse(m[1]);
    remote.cipher = o.cipher;
    add('stage:tls', [o.bytes / 1e6 / (o.ms / 1e3)]);
  }
}

async function benchStaging() {
  remote.file = join(remote.dir, 'stage.bin');
  log(`staging: writing ${sizeName(CFG.remote.stageBytes)} of random bytes to ${remote.file}`);
  writeRandomFile(remote.file, CFG.remote.stageBytes);
  if (which('openssl')) {
    const cert = join(remote.dir, 'cert.pem');
    const key = join(remote.dir, 'key.pem');
    const o = await run('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=tsmpi-bench', '-days', '1'], { timeoutMs: 30_000 });
    if (o.code === 0) Object.assign(remote, { cert, key });
    else errors.push(describeFailure('openssl req (TLS copy anchor)', o));
  } else notes.push('openssl not found: the TLS copy anchor is n/a');
  log('staging: warm-up job (records the host key)');
  await stageJob(false, false);
  for (let i = 1; i <= CFG.remote.stageRuns; i++) {
    log(`staging run ${i}/${CFG.remote.stageRuns}`);
    await stageJob(false, true);
    await stageJob(true, true);
    await cpAnchor();
    await tlsAnchor();
  }
}

async function benchRemotePair(mode, params) {
  const r = await run(process.execPath, [...remoteArgs('hosts-pair', 2), join(BENCH, 'tsmpi-rank.mjs'), mode, JSON.stringify(params)]);
  if (r.code !== 0 || parseBench(r.stdout, 'remote') === 0) errors.push(describeFailure(`tsmpi ${mode} across hosts`, r));
}
async function benchLocalPair(mode, params) {
  const r = await run(process.execPath, [TSMPIRUN, '-n', '2', join(BENCH, 'tsmpi-rank.mjs'), mode, JSON.stringify(params)]);
  if (r.code !== 0 || parseBench(r.stdout, 'local') === 0) errors.push(describeFailure(`tsmpi ${mode} (local, beside the remote pair)`, r));
}
/** Both ranks on the daemon host: with --threads the daemon runs them as threads of one per-job process. */
async function benchDaemonPair(local, params) {
  const r = await run(process.execPath, [...remoteArgs('hosts-remote', 2), `--${local}`, join(BENCH, 'tsmpi-rank.mjs'), 'pingpong', JSON.stringify(params)]);
  if (r.code !== 0 || parseBench(r.stdout, `daemon-${local}`) === 0) errors.push(describeFailure(`tsmpi --${local} pingpong, both ranks on the daemon host`, r));
}
const REMOTE_SIZES = [8, MiB];
function remotePairParams(mode) {
  const params = { ...CFG[mode], pin: PIN[mode] };
  if (mode === 'pingpong') params.sizes = REMOTE_SIZES;
  return params;
}

// ---------------------------------------------------------------- --monitor's cost
// The same ping-pong and collectives without --monitor, with it and no page
// attached, and with a page's event stream attached (monitor-client.mjs reads
// and parses every update), interleaved round by round.
const MONITOR_VARIANTS = ['off', 'idle', 'attached'];
const MONITOR_SIZES = [8, 64 * KiB];
const MONITOR_OPS = ['barrier', 'allreduce_int', 'bcast_obj'];
const MONITOR_N = 4;
async function monitorRun(variant, script, args, what) {
  const extra = variant === 'off' ? [] : ['--monitor', '127.0.0.1:0'];
  let client = null;
  const onStderr = (text) => {
    const m = variant === 'attached' && !client && /monitor at (http:\/\/\S+)/.exec(text);
    if (m) client = attachMonitor(m[1]);
  };
  const r = await run(process.execPath, [TSMPIRUN, ...extra, ...args.slice(0, 2), join(BENCH, script), ...args.slice(2)], { onStderr });
  client?.close();
  if (variant === 'attached' && !(client?.events > 1)) errors.push(`${what} with a page attached: the page got ${client?.events ?? 0} updates`);
  let n = 0;
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('BENCH ')) continue;
    const o = JSON.parse(line.slice(6));
    add(o.kind === 'coll' ? `mon-${variant}:coll:${o.op}` : `mon-${variant}:pingpong:${o.size}`, o.samples);
    n++;
  }
  if (r.code !== 0 || n === 0) errors.push(describeFailure(`${what} (${variant})`, r));
}
async function benchMonitor() {
  const pp = { ...CFG.pingpong, sizes: MONITOR_SIZES, pin: PIN.pingpong };
  const coll = { ...collParams(), ops: MONITOR_OPS };
  for (let round = 1; round <= CFG.rounds; round++) {
    for (const v of MONITOR_VARIANTS) {
      log(`monitor round ${round}/${CFG.rounds}: ping-pong, ${v}`);
      await monitorRun(v, 'tsmpi-rank.mjs', ['-n', '2', 'pingpong', JSON.stringify(pp)], 'ping-pong');
      log(`monitor round ${round}/${CFG.rounds}: collectives n=${MONITOR_N}, ${v}`);
      await monitorRun(v, 'coll-rank.mjs', ['-n', String(MONITOR_N), JSON.stringify(coll)], `collectives n=${MONITOR_N}`);
    }
  }
}
function monitorTable() {
  const rows = [
    '| with `--monitor` | without (µs) | no page attached (µs) | ratio | page attached (µs) | ratio | target (attached) |',
    '|---|---|---|---|---|---|---|',
  ];
  const row = (label, key) => {
    const [off, idle, att] = MONITOR_VARIANTS.map((v) => med(`mon-${v}:${key}`));
    rows.push(`| ${label} | ${num(off)} | ${num(idle)} | ${ratio(idle, off)} | ${num(att)} | ${ratio(att, off)} | ${target(att, off, '≤', 1.05, 'without')} |`);
  };
  for (const size of MONITOR_SIZES) row(`ping-pong ½ RTT ${sizeName(size)}`, `pingpong:${size}`);
  for (const op of MONITOR_OPS) row(`${op}, n=${MONITOR_N} (per call, max over ranks)`, `coll:${op}`);
  return rows.join('\n');
}

// ---------------------------------------------------------------- formatting
function median(xs) {
  if (!xs || xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const med = (key) => median(results.get(key));
const best = (key) => (results.get(key)?.length ? Math.min(...results.get(key)) : null);
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

function codecTable() {
  const us = (x) => (x === null || !Number.isFinite(x) ? 'n/a' : x < 1 ? x.toFixed(3) : num(x));
  const names = {
    number: 'a number (F64)',
    small: "`{a: 1, b: 'x'}` (JSON)",
    records: '100 records `{id, name, score, tags: [2]}` (JSON)',
    shared: '`{a: o, b: o}`, o shared (JSON before, V8 now)',
  };
  const rows = [
    '| encode + decode round trip (µs) | tsmpi now | tsmpi before the identity fix | now / before | node:v8 serialize + deserialize | now / v8 | target |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const v of CODEC_VALUES) {
    // the fastest batch: on a shared machine, the one least disturbed by other work
    const [a, b, c] = CODEC_IMPLS.map((i) => best(`codec:${i}:${v}`));
    const t = v === 'number' || v === 'small' ? target(a, b, '≤', 1.1, 'before') : '';
    rows.push(`| ${names[v]} | ${us(a)} | ${us(b)} | ${ratio(a, b)} | ${us(c)} | ${ratio(a, c)} | ${t} |`);
  }
  return rows.join('\n');
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

const COLL_ROWS = [
  ['barrier', 'barrier', 'small'],
  ['bcast_obj', "bcast {a:1,b:'x'}", 'small'],
  ['bcast_8mib', 'bcast 8 MiB Float64Array', 'large'],
  ['scatter_obj', 'scatter n small objects', 'small'],
  ['gather_obj', 'gather n small objects', 'small'],
  ['reduce_int', 'reduce int SUM', 'small'],
  ['allreduce_int', 'allreduce int SUM', 'small'],
  ['reduce_1m', 'reduce 1M Float64Array SUM', null],
  ['allreduce_1m', 'allreduce 1M Float64Array SUM', 'large'],
];
function collTable(anchors) {
  const ns = CFG.coll.ns;
  const rows = [];
  rows.push(`| collective (µs per call, max over ranks) | ${ns.map((n) => `n=${n} tsmpi | n=${n} mpi4py | n=${n} ratio`).join(' | ')} | target (n=${ns.at(-1)}) |`);
  rows.push(`|---|${ns.map(() => '---:|---:|---:').join('|')}|---|`);
  for (const [op, label, kind] of COLL_ROWS) {
    const cells = [];
    let last = [null, null];
    for (const n of ns) {
      const t = med(`coll:tsmpi:${op}:${n}`);
      const m = anchors ? med(`coll:mpi4py:${op}:${n}`) : null;
      cells.push(num(t), num(m), ratio(t, m));
      last = [t, m];
    }
    const what = kind === 'large' ? 'mpi4py buffer' : 'mpi4py';
    const tgt = kind === 'small' ? target(...last, '≤', 3, what) : kind === 'large' ? target(...last, '≤', 1.5, what) : '';
    rows.push(`| ${label}${kind !== 'small' ? ' (buffer)' : ''} | ${cells.join(' | ')} | ${tgt} |`);
  }
  return rows.join('\n');
}

/** Both local modes beside mpi4py, with issue 12's targets for thread mode. */
function modesTable(anchors, p2p, coll) {
  const rows = [];
  rows.push('| measurement | --processes | --threads | mpi4py | processes/mpi4py | threads/mpi4py | target (threads) |');
  rows.push('|---|---:|---:|---:|---:|---:|---|');
  const row = (label, pk, tk, mk, op, limit, what) => {
    const p = med(pk);
    const t = med(tk);
    const m = anchors ? med(mk) : null;
    rows.push(`| ${label} | ${num(p)} | ${num(t)} | ${num(m)} | ${ratio(p, m)} | ${ratio(t, m)} | ${limit ? target(t, m, op, limit, what) : ''} |`);
  };
  if (p2p) {
    row('ping-pong ½ RTT 8 B, n=2 (µs)', 'tsmpi:pingpong:8', 'threads:pingpong:8', 'pickle:pingpong:8', '≤', 1.0, 'mpi4py send/recv');
    row('streaming 16 MiB, `recv` fresh arrays (MB/s)', 'tsmpi:stream', 'threads:stream', 'buffer:stream', '≥', 0.3, 'mpi4py buffer');
    row('streaming 16 MiB, `recvInto` one reused array (MB/s)', 'tsmpi-into:stream', 'threads-into:stream', 'buffer:stream', '≥', 0.8, 'mpi4py buffer');
    row('hello, 8 ranks, whole command (ms)', 'tsmpi:hello', 'threads:hello', 'mpirun:hello', '≤', 0.5, '`mpirun -n 8`');
  }
  if (coll) {
    const ns = CFG.coll.ns;
    const big = ns.at(-1);
    for (const [op, label, limit, n] of [
      ['barrier', 'barrier', 3, big],
      ['bcast_obj', 'small bcast', 3, big],
      ['allreduce_int', 'allreduce of a number', 3, big],
      ['allreduce_1m', 'Allreduce 1M float64 (buffer)', 1.5, big],
      ['bcast_8mib', 'Bcast 8 MiB (buffer)', 1.5, big],
      ['barrier', 'barrier', 1.5, 2],
      ['allreduce_int', 'allreduce of a number', 1.5, 2],
    ]) {
      if (!ns.includes(n)) continue;
      row(`${label}, n=${n} (µs)`, `coll:tsmpi:${op}:${n}`, `coll:threads:${op}:${n}`, `coll:mpi4py:${op}:${n}`, '≤', limit, 'mpi4py');
    }
  }
  return rows.join('\n');
}

function remoteTable() {
  const rows = [];
  rows.push('| measurement | tsmpi | anchor | tsmpi/anchor | target |');
  rows.push('|---|---:|---:|---:|---|');
  const bytes = CFG.remote.stageBytes;
  const w = med('stage:with');
  const wo = med('stage:without');
  const stage = w !== null && wo !== null && w > wo ? bytes / 1e6 / ((w - wo) / 1e3) : null;
  const cp = med('stage:cp');
  const tls = med('stage:tls');
  const stageTarget = stage === null ? '≥ 300 MB/s: n/a' : `≥ 300 MB/s: ${stage >= 300 ? '✅ PASS' : '❌ FAIL'}`;
  rows.push(`| staging ${sizeName(bytes)} to a loopback tsmpid, encrypted + verified (MB/s) vs raw \`cp\` | ${num(stage)} | ${num(cp)} | ${ratio(stage, cp)} | ${stageTarget} |`);
  rows.push(`| … vs a plain TLS socket copy to disk (MB/s) | ${num(stage)} | ${num(tls)} | ${ratio(stage, tls)} | |`);
  rows.push(`| … job start to remote rank running: with --files / without (ms) | ${num(w)} | ${num(wo)} | ${ratio(w, wo)} | |`);
  for (const size of REMOTE_SIZES) {
    const r = med(`remote:pingpong:${size}`);
    const l = med(`local:pingpong:${size}`);
    rows.push(`| ping-pong ½ RTT ${sizeName(size)} across hosts (TLS) vs local (UDS) (µs) | ${num(r)} | ${num(l)} | ${ratio(r, l)} | |`);
  }
  for (const size of REMOTE_SIZES) {
    const t = med(`daemon-threads:pingpong:${size}`);
    const p = med(`daemon-processes:pingpong:${size}`);
    rows.push(`| ping-pong ½ RTT ${sizeName(size)}, both ranks on the tsmpid host: --threads (shared memory) vs --processes (UDS) (µs) | ${num(t)} | ${num(p)} | ${ratio(t, p)} | |`);
  }
  {
    const r = med('remote:stream');
    const l = med('local:stream');
    rows.push(`| streaming 16 MiB Float64Array across hosts (TLS) vs local (UDS) (MB/s) | ${num(r)} | ${num(l)} | ${ratio(r, l)} | |`);
  }
  return rows.join('\n');
}

// ---------------------------------------------------------------- launch (ssh, Slurm)
// Start-up of -n 8 over two ssh hosts and over two Slurm nodes, tsmpirun vs
// Open MPI's own launch (mpirun --host through the same ssh config; mpirun
// inside the same salloc, which Open MPI starts through srun). The hosts are
// the test suite's beds (bench/launch-beds.ts): real sshd, real Slurm.
const TSX_LOADER = join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');
let beds = null;

function startBeds() {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TSX_LOADER, join(BENCH, 'launch-beds.ts')], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    live.add(child);
    let out = '';
    let err = '';
    const timer = setTimeout(() => done(null, 'the beds did not come up within 60 s'), 60_000);
    let settled = false;
    const done = (info, why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!info) {
        errors.push(`launch beds: ${why}${err ? ` — ${err.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
        killGroup(child);
        live.delete(child);
      }
      resolve(info ? { ...info, child } : null);
    };
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      const m = /^BEDS (.*)$/m.exec(out);
      if (m) done(JSON.parse(m[1]), null);
    });
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    child.once('close', () => done(null, 'exited early'));
  });
}

async function stopBeds() {
  if (!beds) return;
  const child = beds.child;
  await new Promise((resolve) => {
    child.once('close', resolve);
    child.stdin.end();
    setTimeout(() => killGroup(child), 8000).unref();
  });
  live.delete(child);
  beds = null;
}

const HELLO_PY = 'from mpi4py import MPI; MPI.COMM_WORLD.Barrier()';
const countHellos = (r) => (r.stdout.match(/^Hello from rank \d+ of 8/gm) ?? []).length;

async function launchOnce(kind, record) {
  const ssh = `ssh -F ${beds.sshConfig}`;
  const [a, b] = beds.sshHosts;
  const slurmEnv = beds.slurmEnv;
  let r;
  let ok;
  if (kind === 'tsmpi:ssh') {
    r = await run(process.execPath, [TSMPIRUN, '--via', 'ssh', '--ssh-command', ssh, '--host', `${a[0]}:4,${b[0]}:4`, '-n', '8', 'examples/hello.ts']);
    ok = r.code === 0 && countHellos(r) === 8;
  } else if (kind === 'mpirun:ssh') {
    r = await run('mpirun', ['--mca', 'plm_rsh_agent', ssh, '--host', `${a[1]}:4,${b[1]}:4`, '-n', '8', PY, '-c', HELLO_PY], { env: MPI_ENV });
    ok = r.code === 0;
  } else if (kind === 'tsmpi:slurm') {
    r = await run('salloc', ['-N2', '-n8', process.execPath, TSMPIRUN, 'examples/hello.ts'], { env: slurmEnv });
    ok = r.code === 0 && countHellos(r) === 8;
  } else {
    r = await run('salloc', ['-N2', '-n8', 'mpirun', PY, '-c', HELLO_PY], { env: { ...slurmEnv, ...MPI_ENV } });
    ok = r.code === 0;
  }
  if (!ok) errors.push(describeFailure(`launch ${kind}`, r));
  else if (record) add(`launch:${kind}`, [r.ms]);
}

async function benchLaunch(anchors) {
  beds = await startBeds();
  if (!beds) return;
  try {
    const kinds = anchors ? ['tsmpi:ssh', 'mpirun:ssh', 'tsmpi:slurm', 'mpirun:slurm'] : ['tsmpi:ssh', 'tsmpi:slurm'];
    log('launch: warm-up');
    for (const k of kinds) await launchOnce(k, false);
    for (let i = 1; i <= CFG.launchRuns; i++) {
      log(`launch run ${i}/${CFG.launchRuns}`);
      for (const k of kinds) await launchOnce(k, true);
    }
  } finally {
    await stopBeds();
  }
}

function launchTable() {
  const rows = ['| start-up, -n 8, wall (ms) | tsmpi | anchor: Open MPI | tsmpi / anchor |', '|---|---|---|---|'];
  const s = med('launch:tsmpi:ssh');
  const ms = med('launch:mpirun:ssh');
  rows.push(`| 2 ssh hosts × 4: \`tsmpirun --via ssh --host\` vs \`mpirun --host\` (same ssh config) | ${num(s)} | ${num(ms)} | ${ratio(s, ms)} |`);
  const u = med('launch:tsmpi:slurm');
  const mu = med('launch:mpirun:slurm');
  rows.push(`| 2 Slurm nodes × 4: \`salloc -N2 -n8 tsmpirun\` vs \`salloc -N2 -n8 mpirun\` | ${num(u)} | ${num(mu)} | ${ratio(u, mu)} |`);
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
  // mpi4py anchors: only the sections that compare with it.
  const anchors = only.has('p2p') || only.has('coll') || only.has('remote') || only.has('launch') ? await setUpAnchors() : false;
  log(`anchors: ${anchors ? anchorVersion : 'n/a'}; mode: ${quick ? 'quick' : 'full'}; sections: ${[...only].join(', ')}`);

  // Implementations are interleaved round by round so that drift of this noisy
  // machine spreads over all of them; medians are over every repetition.
  for (const mode of only.has('p2p') ? ['pingpong', 'stream'] : []) {
    const params = { ...CFG[mode], pin: PIN[mode] };
    for (let round = 1; round <= CFG.rounds; round++) {
      log(`${mode} round ${round}/${CFG.rounds}: tsmpi`);
      await benchTsmpi(mode, params);
      log(`${mode} round ${round}/${CFG.rounds}: tsmpi --threads`);
      await benchTsmpi(mode, params, 'threads');
      if (mode === 'stream') {
        log(`stream into a reused array (recvInto) round ${round}/${CFG.rounds}: tsmpi, tsmpi --threads`);
        await benchTsmpi('stream-into', params);
        await benchTsmpi('stream-into', params, 'threads');
      }
      log(`${mode} round ${round}/${CFG.rounds}: floor`);
      await benchFloor(mode, params);
      if (anchors) {
        log(`${mode} round ${round}/${CFG.rounds}: mpi4py`);
        await benchMpi4py(mode, params);
      }
    }
  }
  if (only.has('p2p')) {
    log('hello: warm-up');
    await helloTsmpi(false);
    await helloTsmpi(false, 'threads');
    if (anchors) await helloMpirun(false);
    for (let i = 1; i <= CFG.helloRuns; i++) {
      log(`hello run ${i}/${CFG.helloRuns}`);
      await helloTsmpi(true);
      await helloTsmpi(true, 'threads');
      if (anchors) await helloMpirun(true);
    }
  }
  const tP2p = Date.now();
  const loadP2p = loadavg()[0];

  if (only.has('coll')) {
    for (let round = 1; round <= CFG.coll.rounds; round++) {
      for (const n of CFG.coll.ns) {
        log(`collectives round ${round}/${CFG.coll.rounds}, n=${n}: tsmpi`);
        await collTsmpi(n);
        log(`collectives round ${round}/${CFG.coll.rounds}, n=${n}: tsmpi --threads`);
        await collTsmpi(n, 'threads');
        if (anchors) {
          log(`collectives round ${round}/${CFG.coll.rounds}, n=${n}: mpi4py`);
          await collMpi4py(n);
        }
      }
    }
  }
  const tColl = Date.now();
  const loadColl = loadavg()[0];

  if (only.has('remote') && (await setUpRemote())) {
    try {
      await benchStaging();
      for (const mode of ['pingpong', 'stream']) {
        for (let round = 1; round <= CFG.remote.rounds; round++) {
          log(`${mode} across hosts, round ${round}/${CFG.remote.rounds}: remote pair`);
          await benchRemotePair(mode, remotePairParams(mode));
          log(`${mode} across hosts, round ${round}/${CFG.remote.rounds}: local pair`);
          await benchLocalPair(mode, remotePairParams(mode));
        }
      }
      for (let round = 1; round <= CFG.remote.rounds; round++) {
        for (const local of ['processes', 'threads']) {
          log(`pingpong on the daemon host, round ${round}/${CFG.remote.rounds}: --${local}`);
          await benchDaemonPair(local, remotePairParams('pingpong'));
        }
      }
    } finally {
      await stopDaemon(remote.daemon);
      const left = remote.daemon?.daemonLog?.() ?? '';
      if (/error|refus/i.test(left)) log(`tsmpid stderr: ${left.trim().split('\n').slice(-5).join(' | ')}`);
      rmSync(scratch, { recursive: true, force: true });
      scratch = null;
    }
  }
  const tRemote = Date.now();

  if (only.has('codec')) {
    for (let round = 1; round <= CFG.codec.rounds; round++) {
      for (const impl of round % 2 ? CODEC_IMPLS : [...CODEC_IMPLS].reverse()) {
        log(`codec round ${round}/${CFG.codec.rounds}: ${impl}`);
        await benchCodec(impl);
      }
    }
  }
  const tCodec = Date.now();

  if (only.has('launch')) await benchLaunch(anchors);
  const tLaunch = Date.now();
  if (only.has('monitor')) await benchMonitor();
  const tMonitor = Date.now();

  let pool = null;
  if (only.has('pool') && !stopping) {
    pool = await poolSection({ run, withAnchors, quick, log, PY });
    notes.push(...pool.notes);
    errors.push(...pool.errors);
  }
  const tPool = Date.now();

  for (const [k, v] of results) log(`${k}: median ${num(median(v))} of [${v.map(num).join(', ')}]`);

  const cores = availableParallelism();
  const lines = [];
  lines.push(`tsmpi benchmark — ${new Date().toISOString()}, node ${process.version}, ${cores} cores, ${quick ? 'quick' : 'full'} run, anchors: ${anchors ? anchorVersion : 'n/a'}, Node ranks pinned: ping-pong ${PIN.pingpong}, streaming ${PIN.stream}`);
  if (only.has('p2p')) {
    lines.push('');
    lines.push(table(anchors));
    lines.push('');
    lines.push('mpi4py = pickle path (comm.send/recv of bytes); for the hello row, `mpirun --oversubscribe -n 8 python3 -c "…Barrier()"`. mpi4py buffer = Send/Recv of numpy arrays. Medians of repetitions; MB = 10^6 bytes.');
  }
  if (only.has('coll')) {
    lines.push('');
    lines.push(collTable(anchors));
    lines.push('');
    lines.push(
      `Collectives: every rank awaits a barrier before each call and times its own call; a cell is the median over ${CFG.coll.rounds}×${CFG.coll.reps.small} calls (large: ${CFG.coll.rounds}×${CFG.coll.reps.large}, after ${CFG.coll.warm.small}/${CFG.coll.warm.large} warm-up calls per run) of the slowest rank's time, the same for both. mpi4py: pickle path for objects and ints (bcast/scatter/gather/reduce/allreduce), buffer path for "(buffer)" rows (Bcast/Reduce/Allreduce of numpy float64). Unpinned on both sides (no taskset; \`mpirun --bind-to none${CFG.coll.ns.some((n) => n > cores) ? ' --oversubscribe' : ''}\`); n > ${cores} is oversubscribed.`,
    );
  }
  if (only.has('p2p') || only.has('coll')) {
    lines.push('');
    lines.push(modesTable(anchors, only.has('p2p'), only.has('coll')));
    lines.push('');
    lines.push('Local modes: `tsmpirun --processes` (ranks are processes, Unix sockets between them) and `--threads` (worker threads of one process, shared-memory rings between them), measured in the same run as mpi4py. Thread ranks run unpinned (taskset cannot pin a worker thread from inside it).');
  }
  if (only.has('remote')) {
    lines.push('');
    lines.push(remoteTable());
    lines.push('');
    lines.push(
      `Remote hosts: one \`tsmpid\` on ${REMOTE_HOST} (loopback), real TLS + launcher keys. Staging: median time from spawning \`tsmpirun --files\` to the remote rank's first statement (file present, size checked), minus the same without --files, over ${CFG.remote.stageRuns} runs; anchors: \`cp\` of the same file on this disk, and one TLS 1.3 connection (${remote.cipher ?? 'Node default cipher'}) into a file, medians. Ping-pong/streaming: rank 0 local, rank 1 started by the daemon, TLS between them; "anchor" = the same two runs with both ranks local (Unix socket), interleaved, same pinning (ping-pong ${PIN.pingpong}, streaming ${PIN.stream}).`,
    );
  }
  if (only.has('codec')) {
    lines.push('');
    lines.push(codecTable());
    lines.push('');
    lines.push(
      `Codec: \`bench/codec.mjs\`, one process per implementation, started alternately for ${CFG.codec.rounds} rounds; each times batches of about ${CFG.codec.ms} ms of \`decodeValue(encodeValue(v))\` after 0.3 s of warm-up. "before" is the codec as it was before identity tracking (\`bench/codec-before.mjs\`, where the README's 0.3 µs / 2 µs came from). Each cell: the fastest of ${CFG.codec.rounds}×${CFG.codec.reps} batches (the one least disturbed by other work on the machine).`,
    );
  }
  if (only.has('launch')) {
    lines.push('');
    lines.push(launchTable());
    lines.push('');
    lines.push(
      `Launch: wall time from spawning the launcher to its exit, median of ${CFG.launchRuns} runs after one warm-up each, interleaved. tsmpi runs examples/hello.ts (compile, agents, 8 ranks, one line each); Open MPI runs \`${PY} -c "…Barrier()"\` on 8 ranks. ssh: two real sshd (test/beds/sshd.ts) on 127.0.0.21–.22, the same client config for both (\`mpirun --mca plm_rsh_agent "ssh -F …"\`). Slurm: two slurmd nodes (test/beds/slurm.ts), 4 CPUs each, both inside their own \`salloc -N2 -n8\` (its cost is in both columns).`,
    );
  }
  if (only.has('monitor')) {
    lines.push('');
    lines.push(monitorTable());
    lines.push('');
    lines.push(
      `--monitor: the same tsmpi runs (ping-pong pinned ${PIN.pingpong}, collectives unpinned) without --monitor (the anchor), with \`--monitor 127.0.0.1:0\` and no page, and with a page's event stream attached (bench/monitor-client.mjs reads and parses every update; the launcher then asks every rank for a sample 4 times a second), interleaved over ${CFG.rounds} round${CFG.rounds === 1 ? '' : 's'}; medians.`,
    );
  }
  if (pool) {
    lines.push('');
    lines.push(poolTable(pool));
    lines.push('');
    lines.push(
      `Pool: \`bench/pool.mjs\` (tsmpi/pool, the serial loop, piscina, workerpool; one process) and \`bench/pool_anchors.py\` (${PY}: multiprocessing.Pool with fork, ProcessPoolExecutor, joblib's loky), one after the other. 2 workers everywhere, pools warmed before timing; trivial task \`x * 2\`, CPU-bound task a loop calibrated to ~50 ms in each language; piscina and workerpool get one \`run\`/\`exec\` per item. Remote rows: one tsmpid per host on loopback, TLS, one worker each, the pool's process as launcher. Medians of repetitions.`,
    );
  }
  lines.push('');
  lines.push(`time per section: point to point ${((tP2p - t0) / 1000).toFixed(0)} s, collectives ${((tColl - tP2p) / 1000).toFixed(0)} s, remote ${((tRemote - tColl) / 1000).toFixed(0)} s, codec ${((tCodec - tRemote) / 1000).toFixed(0)} s, launch ${((tLaunch - tCodec) / 1000).toFixed(0)} s, monitor ${((tMonitor - tLaunch) / 1000).toFixed(0)} s, pool ${((tPool - tMonitor) / 1000).toFixed(0)} s`);
  const loadAfter = loadavg()[0];
  lines.push(`1-min load average: ${loadBefore.toFixed(2)} at the start, ${loadP2p.toFixed(2)} after point to point, ${loadColl.toFixed(2)} after collectives, ${loadAfter.toFixed(2)} at the end`);
  // The point-to-point part keeps about 2 processes runnable; much more means someone
  // else was busy too. (The collectives run up to 8 ranks, and Open MPI's ranks spin
  // while they wait, so the load after them says nothing about other users.)
  if (loadBefore > 0.5 || (only.has('p2p') && loadP2p > 3)) {
    notes.push(`the machine looked busy (1-min load average ${loadBefore.toFixed(2)} at the start${only.has('p2p') ? `, ${loadP2p.toFixed(2)} after point to point` : ''}): other work on these ${cores} cores skews every column`);
  }
  for (const n of notes) lines.push(`note: ${n}`);
  for (const e of errors) lines.push(`error: ${e}`);
  lines.push(`(total ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  process.stdout.write(lines.join('\n') + '\n');
  process.exitCode = errors.length ? 1 : 0;
}

await main();
