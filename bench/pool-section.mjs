// The pool section of bench/run.js (--only pool): runs bench/pool.mjs (tsmpi/pool,
// the serial loop, piscina, workerpool; then tsmpi/pool over two loopback tsmpid
// hosts) and bench/pool_anchors.py (multiprocessing.Pool, ProcessPoolExecutor,
// joblib), and builds the table: every cell beside its anchor, as a ratio.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killGroup, startBenchDaemon } from './tsmpid.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const TSMPIRUN = join(ROOT, 'dist', 'launcher', 'tsmpirun.js');
/** Two tsmpid hosts on loopback (the pool's address block: 127.0.0.51–.59). */
export const POOL_HOSTS = ['127.0.0.56', '127.0.0.57'];

const parse = (stdout) => {
  const m = /^BENCH (.*)$/m.exec(stdout);
  return m ? JSON.parse(m[1]) : null;
};

/** Start a tsmpid on `host` (own process group); resolves { child, port }. */
const startDaemon = (host, keys, workdir) => startBenchDaemon({ host, authorizedKeys: join(keys, 'id.pub'), workdir, slots: 1 });

const kill = killGroup;

/**
 * Run the section. `run(cmd, args, opts)` is run.js's bounded child runner.
 * Resolves { node, py, notes, errors }.
 */
export async function poolSection({ run, withAnchors, quick, log, PY }) {
  const notes = [];
  const errors = [];
  // joblib: Debian's python3-joblib, as the other anchors come from Debian.
  const hasJoblib = () => spawnSync(PY, ['-c', 'import joblib'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
  if (!hasJoblib() && withAnchors) {
    if (process.getuid?.() !== 0) notes.push('--with-anchors: not root, cannot apt-get install python3-joblib');
    else {
      log('installing python3-joblib (apt-get)…');
      const env = { DEBIAN_FRONTEND: 'noninteractive' };
      await run('apt-get', ['update', '-q'], { timeoutMs: 300_000, env });
      const i = await run('apt-get', ['install', '-y', '-q', 'python3-joblib'], { timeoutMs: 600_000, env });
      if (i.code !== 0) errors.push(`apt-get install python3-joblib: exit ${i.code}`);
    }
  }
  if (!hasJoblib()) notes.push(`joblib anchors unavailable (${PY} has no joblib${withAnchors ? '' : '; pass --with-anchors to install python3-joblib'}): their cells are n/a`);

  const scratch = mkdtempSync(join(tmpdir(), 'tsmpi-bench-pool-'));
  const daemons = [];
  const onExit = () => daemons.forEach((d) => kill(d.child));
  process.on('exit', onExit);
  let node = null;
  let py = null;
  try {
    // Two tsmpid hosts on loopback, one slot each: the remote rows.
    const keys = join(scratch, 'keys');
    let hostArgs = [];
    const kg = await run(process.execPath, [TSMPIRUN, 'keygen', '--out', keys], { timeoutMs: 30_000 });
    if (kg.code !== 0) errors.push(`tsmpirun keygen: exit ${kg.code}: ${kg.stderr.trim().slice(-300)}`);
    else {
      try {
        for (const h of POOL_HOSTS) daemons.push({ host: h, ...(await startDaemon(h, keys, join(scratch, `tsmpid-${h}`))) });
        const hostfile = join(scratch, 'hosts');
        writeFileSync(hostfile, daemons.map((d) => `${d.host} slots=1 port=${d.port}`).join('\n') + '\n');
        hostArgs = ['--hostfile', hostfile, '--identity', join(keys, 'id'), '--known-hosts', join(keys, 'known_hosts')];
      } catch (e) {
        errors.push(e.message);
      }
    }
    log('pool: node side (tsmpi/pool, serial loop, piscina, workerpool)');
    const n = await run(process.execPath, [join(BENCH, 'pool.mjs'), ...(quick ? ['--quick'] : []), ...hostArgs], { timeoutMs: 900_000 });
    node = parse(n.stdout);
    if (n.code !== 0 || !node) errors.push(`bench/pool.mjs: exit ${n.code}: ${n.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    process.stderr.write(n.stderr);
    log('pool: python anchors (multiprocessing.Pool, ProcessPoolExecutor, joblib)');
    const p = await run(PY, [join(BENCH, 'pool_anchors.py'), JSON.stringify({ quick })], { timeoutMs: 900_000 });
    py = parse(p.stdout);
    if (p.code !== 0 || !py) errors.push(`bench/pool_anchors.py: exit ${p.code}: ${p.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    process.stderr.write(p.stderr);
  } finally {
    for (const d of daemons) kill(d.child, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    onExit();
    process.removeListener('exit', onExit);
    rmSync(scratch, { recursive: true, force: true });
  }
  return { node: node ?? {}, py: py ?? {}, notes, errors };
}

const f = (x, d = 1) => (x === undefined || x === null || !Number.isFinite(x) ? 'n/a' : x >= 100 ? x.toFixed(0) : x.toFixed(d));
const r = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(a / b < 0.1 ? 3 : 2)}×` : 'n/a');
const met = (ok) => (ok === null ? '' : ok ? ' ✓' : ' ✗ missed');
const check = (a, b, pred) => (Number.isFinite(a) && Number.isFinite(b) ? pred(a / b) : null);

/** The pool table (markdown): each tsmpi/pool cell for process workers (the default) and thread workers. */
export function poolTable({ node: n, py: p }) {
  const rows = [];
  rows.push('| measurement (2 workers, warm pools, medians) | tsmpi/pool processes | tsmpi/pool threads | anchor | anchor value | processes / anchor | threads / anchor | target |');
  rows.push('|---|---:|---:|---|---:|---:|---:|---|');
  const both = (ok) => (ok[0] === null && ok[1] === null ? '' : ` (processes${met(ok[0])}, threads${met(ok[1])})`);
  // one row per anchor: `k` the measurement's key, `lead` its first cells or blank, `target`/`pred` optional
  const row = (k, lead, label, a, target = '', pred = null) => {
    const pv = n[`tsmpi:${k}`];
    const tv = n[`thread:${k}`];
    const cells = lead ? `${lead} | ${f(pv)} | ${f(tv)}` : '| |';
    const ok = pred ? [check(pv, a, pred), check(tv, a, pred)] : [null, null];
    rows.push(`| ${cells} | ${label} | ${f(a)} | ${r(pv, a)} | ${r(tv, a)} | ${target}${both(ok)} |`);
  };
  row('map', '100,000 trivial tasks, `map` (ms)', 'Node serial loop', n['serial:map']);
  row('map', '', '`multiprocessing.Pool.map`', p['mp:map'], '≤ 1.5×', (x) => x <= 1.5);
  row('map', '', '`ProcessPoolExecutor.map(chunksize=1000)`', p['ppe:map']);
  row('map', '', 'joblib `Parallel(n_jobs=2)`', p['joblib:map'], '≤ 0.1×', (x) => x <= 0.1);
  row('map', '', 'piscina, one `run` per item', n['piscina:map'], '≤ 0.02×', (x) => x <= 0.02);
  row('map', '', 'workerpool, one `exec` per item', n['workerpool:map']);
  const sp = (serial, t) => (Number.isFinite(serial) && Number.isFinite(t) ? serial / t : NaN);
  const map = n['tsmpi:map'];
  const cpu = sp(n['serial:cpu'], n['tsmpi:cpu']);
  const tcpu = sp(n['serial:cpu'], n['thread:cpu']);
  const spOk = (x) => (Number.isFinite(x) ? x >= 1.9 : null);
  rows.push(`| 40 CPU-bound tasks of ~50 ms: speed-up over the serial loop | ${f(cpu, 2)}× | ${f(tcpu, 2)}× | Node serial loop (ms) | ${f(n['serial:cpu'])} | ${f(cpu, 2)}× | ${f(tcpu, 2)}× | ≥ 1.9×${both([spOk(cpu), spOk(tcpu)])} |`);
  for (const [label, v] of [
    ['`multiprocessing.Pool.map` speed-up (over Python\'s loop)', sp(p['py:serial:cpu'], p['mp:cpu'])],
    ['`ProcessPoolExecutor.map` speed-up', sp(p['py:serial:cpu'], p['ppe:cpu'])],
    ['joblib speed-up', sp(p['py:serial:cpu'], p['joblib:cpu'])],
    ['piscina speed-up', sp(n['serial:cpu'], n['piscina:cpu'])],
    ['workerpool speed-up', sp(n['serial:cpu'], n['workerpool:cpu'])],
  ])
    rows.push(`| | | | ${label} | ${f(v, 2)}× | | | |`);
  const rtt = n['tsmpi:rtt'];
  const fastest = Math.min(n['piscina:rtt'] ?? Infinity, n['workerpool:rtt'] ?? Infinity);
  row('rtt', 'one tiny task round trip, submit → await (µs)', 'piscina', n['piscina:rtt']);
  row('rtt', '', 'workerpool', n['workerpool:rtt']);
  row('rtt', '', 'the faster of piscina and workerpool', fastest, '≤ 1.0×', (x) => x <= 1.0);
  row('rtt', '', '`ProcessPoolExecutor.submit().result()`', p['ppe:rtt']);
  row('rtt', '', '`multiprocessing.Pool.apply`', p['mp:rtt']);
  row('start', 'pool start to first result (ms)', 'piscina', n['piscina:start'], '≤ 1.0×', (x) => x <= 1.0);
  row('start', '', 'workerpool', n['workerpool:start']);
  row('start', '', '`multiprocessing.Pool` (fork)', p['mp:start']);
  row('start', '', '`ProcessPoolExecutor`', p['ppe:start']);
  const hosts = (n.remoteHosts ?? []).join(' + ') || 'n/a';
  rows.push(`| two tsmpid hosts (${hosts}, 1 worker each): 100,000 trivial tasks, \`map\` (ms) | ${f(n['remote:map'])} | | the same on 2 local process workers | ${f(map)} | ${r(n['remote:map'], map)} | | report |`);
  const rc = sp(n['serial:cpu'], n['remote:cpu']);
  rows.push(`| two tsmpid hosts: 40 CPU-bound tasks, speed-up over the serial loop | ${f(rc, 2)}× | | 2 local process workers | ${f(cpu, 2)}× | | | report |`);
  rows.push(`| two tsmpid hosts: one tiny task round trip (µs) | ${f(n['remote:rtt'])} | | 2 local process workers | ${f(rtt)} | ${r(n['remote:rtt'], rtt)} | | report |`);
  return rows.join('\n');
}
