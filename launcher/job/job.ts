/**
 * A job: compile the script once, start its ranks, be their rendezvous (hand out
 * addresses) and supervisor (forward output, watch exits, tear everything down
 * on the first failure, a timeout, abort or a signal).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { hostname, constants as osConstants, tmpdir } from 'node:os';
import { basename, isAbsolute, join, normalize, sep } from 'node:path';
import { isTsmpiError } from '../../runtime/errors.js';
import type { RankToLauncher } from '../../runtime/wire/control.js';
import { compileScript, CompileError } from './compile.js';
import { SCRIPT_FILE } from './placeholders.js';
import { rankBundle } from '../os/paths.js';
import { isLocalHost, type Placement } from '../hostlist/hosts.js';
import { LocalHost } from '../hosts/local-host.js';
import { ThreadHost } from '../hosts/thread-host.js';
import type { LocalMode } from '../cli/args.js';
import { LineForwarder } from './output.js';
import { describeRank, summaryTable, type RankState } from './job-report.js';
import { sweepStaleJobFolders } from './job-folder.js';
export { sweepStaleJobFolders };
import { ProgressBar } from './progress.js';
import { hasUserSignals, teardownSignal } from '../os/platform.js';
import type { HostEvents, RankHost } from '../hosts/rank-host.js';
import type { Monitor, MonitorAddress } from '../monitor/index.js';
import type { AgentHost, AgentJobSpec, StagedSource } from '../hosts/agent-host.js';
import type { SshOptions } from '../hosts/ssh-host.js';

/** How ranks on other hosts are started (`--via`). */
export type Via = 'tsmpid' | 'ssh' | 'slurm';

/** SIGTERM first; ranks still alive this long after are killed. */
const KILL_GRACE_MS = 1000;
/** How long a timeout report waits for ranks to say what they are blocked in. */
const DUMP_WAIT_MS = 1000;

export interface JobSpec {
  script: string;
  args: string[];
  /** which ranks run on which host */
  placement: Placement[];
  env: Record<string, string>;
  tagOutput: boolean;
  timeout: number | null;
  results: string | null;
  /** files staged beside the script on remote hosts */
  files: string[];
  /** the launcher's key and pinned host keys (remote hosts only) */
  identityFile: string;
  knownHostsFile: string;
  /** also write each rank's output to DIR/rank.N.out|err */
  outputDir?: string | null;
  /** with outputDir: not to the terminal */
  quiet?: boolean;
  /** print a per-rank summary at the end */
  report?: boolean;
  /** end a job whose ranks are all blocked with nothing in flight for this many seconds */
  detectDeadlock?: number | null;
  /** how ranks on this machine run (default: processes) */
  localMode?: LocalMode;
  /** --oversubscribe was given (remote hosts then accept more ranks than slots) */
  oversubscribe?: boolean;
  /** --monitor: serve the live page there */
  monitor?: MonitorAddress | null;
  /** how other hosts are reached (default tsmpid) */
  via?: Via;
  /** with via 'ssh': the ssh command, node and package folder there */
  ssh?: SshOptions;
}


type Ending =
  | { kind: 'failure'; rank: number }
  | { kind: 'abort'; rank: number; code: number }
  | { kind: 'timeout' }
  | { kind: 'deadlock' }
  | { kind: 'signal'; signal: NodeJS.Signals }
  | { kind: 'host'; host: string; reason: string; ranks: number[] }
  | { kind: 'setup'; error: Error; quiet?: boolean };

function safeWrite(stream: NodeJS.WriteStream, text: string): void {
  try {
    stream.write(text);
  } catch {
    // a closed stdout (e.g. piped into `head`) must not take the launcher down
  }
}

export function signalCode(signal: NodeJS.Signals | null): number {
  const n = signal ? (osConstants.signals as Record<string, number>)[signal] : undefined;
  return 128 + (n ?? 1);
}

export class Job {
  private readonly ranks: RankState[];
  private readonly secret = randomBytes(24).toString('hex');
  private dir = '';
  private hosts: RankHost[] = [];
  private tableSent = false;
  private ending: Ending | null = null;
  /** the first rank seen failing, before end() (deferred by a turn) ran */
  private firstFailure: number | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private timeoutTimer: NodeJS.Timeout | null = null;
  private resultsFd: number | null = null;
  private finish!: (code: number) => void;
  /** --monitor's page, and what the end looked like for it */
  private monitor: Monitor | null = null;
  private endNote: { message: string; rank: number | null; stack: string | null } | null = null;

  constructor(private readonly spec: JobSpec) {
    const hostOf: string[] = [];
    for (const p of spec.placement) for (const r of p.ranks) hostOf[r] = p.host.name;
    this.ranks = hostOf.map((host, rank) => {
      const prefix = spec.tagOutput ? `[${rank}] ` : '';
      return {
        rank,
        host,
        where: null,
        address: null,
        exited: false,
        closed: false,
        code: null,
        signal: null,
        killed: false,
        stack: null,
        blocked: null,
        out: new LineForwarder((t) => this.print(process.stdout, t), prefix),
        err: new LineForwarder((t) => this.print(process.stderr, t), prefix),
        stats: null,
        counters: null,
        startedAt: 0,
        endedAt: 0,
        files: null,
      };
    });
  }

  get size(): number {
    return this.ranks.length;
  }

  /** Run the job to its end; resolves to tsmpirun's exit status. */
  async run(): Promise<number> {
    // Listen for signals before the job folder exists: one at any later point
    // (while compiling, say) must still remove it.
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.ending?.kind === 'signal') this.killAll('SIGKILL');
      else this.end({ kind: 'signal', signal });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    // SIGUSR1: say what every rank is doing, and go on.
    const onUsr1 = () => void this.report('SIGUSR1: what every rank is doing');
    if (hasUserSignals()) process.on('SIGUSR1', onUsr1);
    this.dir = mkdtempSync(join(tmpdir(), 'tsmpi-'));
    writeFileSync(join(this.dir, 'launcher.pid'), String(process.pid));
    // A launcher killed with SIGKILL cannot clean up: the next one does.
    setImmediate(() => sweepStaleJobFolders(tmpdir(), this.dir));
    let code: number | null = null;
    let stopSampling = () => {};
    try {
      const done = new Promise<number>((resolve) => (this.finish = resolve));
      if (this.spec.monitor) stopSampling = await this.startMonitor(this.spec.monitor);
      code = (await this.launch()) ?? (await done);
      return code;
    } finally {
      stopSampling();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      process.off('SIGUSR1', onUsr1);
      if (this.deadlockTimer) clearInterval(this.deadlockTimer);
      this.progress.finish();
      for (const r of this.ranks) {
        if (r.files) {
          closeSync(r.files[0]);
          closeSync(r.files[1]);
        }
      }
      if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
      if (this.killTimer) clearTimeout(this.killTimer);
      for (const h of this.hosts) h.close();
      if (this.resultsFd !== null) closeSync(this.resultsFd);
      rmSync(this.dir, { recursive: true, force: true });
      if (this.monitor) {
        const n = this.endNote;
        this.monitor.feed.end({ code: code ?? 1, message: n?.message ?? (code === 0 ? 'every rank exited with code 0' : `tsmpirun: exit status ${code ?? 1}`), rank: n?.rank ?? null, stack: n?.stack ?? null });
        await this.monitor.close();
      }
    }
  }

  /** --monitor: serve the page; ask ranks for samples only while it is watched. */
  private async startMonitor(where: MonitorAddress): Promise<() => void> {
    const [{ startMonitor }, { sampleWhileWatched }] = await Promise.all([import('../monitor/index.js'), import('../monitor/sampler.js')]);
    const m = (this.monitor = await startMonitor(where, {
      kind: 'job',
      title: `${basename(this.spec.script)} — ${this.size} rank${this.size === 1 ? '' : 's'}`,
      announce: (url) => this.print(process.stderr, `tsmpirun: monitor at ${url}\n`),
    }));
    for (const r of this.ranks) m.feed.rank(r.rank, { host: r.host, phase: 'starting' });
    return sampleWhileWatched(m.feed, () => {
      for (const r of this.ranks) if (!r.exited && r.address !== null) r.where?.send(r.rank, { t: 'sample' });
    });
  }

  /** Compile, reach the hosts, start every rank. Resolves to an exit code when the job ends before it runs. */
  private async launch(): Promise<number | null> {
    const spec = this.spec;
    const local = spec.placement.find((p) => isLocalHost(p.host.name));
    const remote = spec.placement.filter((p) => !isLocalHost(p.host.name));
    const compiled = join(this.dir, 'script.mjs');
    const remoteCompiled = join(this.dir, 'remote.mjs');
    // Local ranks start while the script compiles; they import it once told to.
    const compiling = Promise.all([
      // With the rank bundle, the script's `tsmpi` is the module its rank-main already loaded.
      local ? compileScript(spec.script, compiled, rankBundle ? 'rank' : 'local') : null,
      remote.length ? compileScript(spec.script, remoteCompiled, 'remote', stagedName(spec.script)) : null,
    ]);
    compiling.catch(() => {});
    const compileFailed = async (): Promise<number | null> => {
      try {
        await compiling;
        return null;
      } catch (e) {
        if (!(e instanceof CompileError)) throw e;
        safeWrite(process.stderr, `tsmpirun: ${e.message}\n`);
        this.end({ kind: 'setup', error: e, quiet: true });
        return 1;
      }
    };
    if (spec.results && spec.results !== '-') this.resultsFd = openSync(spec.results, 'a');
    const events: HostEvents = {
      message: (rank, m) => this.onMessage(rank, m),
      output: (rank, stream, chunk) => {
        const r = this.ranks[rank]!;
        this.monitor?.feed.output(rank, stream, chunk);
        if (r.files) writeSync(r.files[stream - 1]!, chunk);
        if (!spec.quiet || !r.files) (stream === 1 ? r.out : r.err).push(chunk);
      },
      exit: (rank, code, signal) => this.onExit(this.ranks[rank]!, code, signal),
      closed: (rank) => this.onClose(this.ranks[rank]!),
      lost: () => {},
    };
    let listenTls: string | null = null;
    let tlsDir: string | null = null;
    const remotes: AgentHost[] = [];
    if (remote.length) {
      const [{ fileDigest }, { createTlsIdentity }] = await Promise.all([import('../staging/staging.js'), import('../keys/x509.js')]);
      // Every byte between hosts is encrypted: ranks get a job credential of their own.
      const credential = createTlsIdentity('tsmpi job');
      tlsDir = join(this.dir, 'tls');
      mkdirSync(tlsDir, { mode: 0o700 });
      writeFileSync(join(tlsDir, 'job.key'), credential.key, { mode: 0o600 });
      writeFileSync(join(tlsDir, 'job.crt'), credential.cert, { mode: 0o600 });
      const via = spec.via ?? 'tsmpid';
      const makeHost = await this.hostMaker(via);
      const failed = await compileFailed();
      if (failed !== null) return failed;
      const files: StagedSource[] = [{ path: remoteCompiled, name: SCRIPT_FILE, ...(await fileDigest(remoteCompiled)) }];
      // Large files are hashed while they are sealed; their digests follow their data.
      for (const f of spec.files) files.push({ path: f, name: stagedName(f), size: statSync(f).size, sha256: '' });
      for (const p of remote) {
        remotes.push(
          makeHost(p, {
            ranks: p.ranks,
            size: this.size,
            secret: this.secret,
            files,
            // where the script sits in the job folder, beside the --files as they sit here
            script: stagedName(spec.script),
            args: spec.args,
            env: spec.env,
            hostId: via === 'tsmpid' ? `${p.host.name}:${p.host.port}` : `${p.host.name}:${via === 'ssh' ? 22 : 0}`,
            credential,
            oversubscribe: spec.oversubscribe === true,
            mode: spec.localMode ?? 'processes',
            connectTimeoutMs: via === 'tsmpid' ? 10_000 : 30_000,
            note: (line) => safeWrite(process.stderr, `tsmpirun: ${line}\n`),
          }),
        );
      }
      this.hosts.push(...remotes);
      try {
        await Promise.all(remotes.map((h) => h.connect()));
      } catch (e) {
        // the code says which: ERR_AUTH (a key refused), ERR_PEER_LOST (unreachable, gone), ERR_TIMEOUT
        const code = isTsmpiError(e) ? `${e.code}: ` : '';
        safeWrite(process.stderr, `tsmpirun: ${code}${(e as Error).message}\n`);
        return 1;
      }
      listenTls = `tls:${remotes[0]!.localAddress.includes(':') ? `[${remotes[0]!.localAddress}]` : remotes[0]!.localAddress}:0`;
    }
    if (this.ending) return this.exitCode();
    let localHost: LocalHost | null = null;
    if (local) {
      const Host = spec.localMode === 'threads' ? ThreadHost : LocalHost;
      const h = (localHost = new Host({
        name: local.host.name,
        ranks: local.ranks,
        size: this.size,
        secret: this.secret,
        dir: this.dir,
        compiled,
        rankMain: rankBundle?.main,
        script: spec.script,
        args: spec.args,
        env: spec.env,
        hostId: `launcher:${hostname()}`,
        listenTls,
        tlsDir,
      }));
      this.hosts.push(h);
    }
    for (const h of this.hosts) for (const r of h.ranks) this.ranks[r]!.where = h;
    if (spec.timeout !== null) this.timeoutTimer = setTimeout(() => void this.onTimeout(), spec.timeout * 1000);
    if (spec.detectDeadlock) {
      this.deadlockTimer = setInterval(() => void this.checkDeadlock(), Math.max(250, (spec.detectDeadlock * 1000) / 2));
      this.deadlockTimer.unref();
    }
    if (spec.outputDir) {
      mkdirSync(spec.outputDir, { recursive: true });
      for (const r of this.ranks) {
        r.files = [openSync(join(spec.outputDir, `rank.${r.rank}.out`), 'w'), openSync(join(spec.outputDir, `rank.${r.rank}.err`), 'w')];
      }
    }
    const t0 = Date.now();
    for (const r of this.ranks) r.startedAt = t0;
    const starting = this.hosts.map((h) =>
      h.start({ ...events, lost: (reason) => this.onHostLost(h, reason) }).catch((e: Error) => {
        // A host that cannot start its ranks ends the job.
        this.onHostLost(h, e.message);
      }),
    );
    const failed = await compileFailed();
    if (failed !== null) {
      await Promise.all(starting);
      return null;
    }
    localHost?.go();
    await Promise.all(starting);
    return null;
  }

  /** The one place a way of reaching hosts (`--via`) becomes a RankHost. */
  private async hostMaker(via: Via): Promise<(p: Placement, job: AgentJobSpec) => AgentHost> {
    const spec = this.spec;
    if (via === 'ssh') {
      const { SshHost, DEFAULT_SSH } = await import('../hosts/ssh-host.js');
      return (p, job) => new SshHost({ ...job, host: p.host, ssh: spec.ssh ?? DEFAULT_SSH });
    }
    if (via === 'slurm') {
      const { SlurmStep } = await import('../hosts/slurm-host.js');
      const step = new SlurmStep({ nodes: spec.placement.map((p) => p.host.name), remoteNode: spec.ssh?.remoteNode ?? process.execPath, remotePrefix: spec.ssh?.remotePrefix ?? null });
      return (p, job) => step.host(p.host.name, job);
    }
    const [{ RemoteHost }, { KnownHosts, readIdentity }] = await Promise.all([import('../hosts/tsmpid-host.js'), import('../keys/keys.js')]);
    const identity = readIdentity(spec.identityFile);
    const knownHosts = new KnownHosts(spec.knownHostsFile);
    return (p, job) => new RemoteHost({ ...job, host: p.host, identity, knownHosts, knownHostsFile: spec.knownHostsFile });
  }

  private onHostLost(h: RankHost, reason: string): void {
    const lost = h.ranks.filter((r) => !this.ranks[r]!.exited);
    for (const r of lost) {
      const st = this.ranks[r]!;
      st.stack ??= `host ${h.name} was lost: ${reason}`;
    }
    if (!this.ending) this.end({ kind: 'host', host: h.name, reason, ranks: lost });
    for (const r of lost) {
      this.onExit(this.ranks[r]!, null, 'SIGKILL');
      this.onClose(this.ranks[r]!);
    }
  }

  private onMessage(rank: number, m: RankToLauncher): void {
    const r = this.ranks[rank]!;
    switch (m.t) {
      case 'listening':
        r.address = m.address;
        this.monitor?.feed.rank(rank, { phase: 'running', pid: r.where?.pid(rank) ?? 0 });
        this.maybeSendTable();
        break;
      case 'failed':
        r.stack = m.stack;
        r.failCode = typeof m.code === 'string' ? m.code : null;
        break;
      case 'abort':
        this.end({ kind: 'abort', rank, code: m.code });
        break;
      case 'partial':
        this.onPartial(r, m.value, m.time);
        this.monitor?.feed.partial(`rank ${rank}`, m.value, m.time);
        break;
      case 'progress':
        this.progress.update(rank, m.done, m.total);
        this.monitor?.feed.progress(`rank ${rank}`, m.done, m.total);
        break;
      case 'stats': {
        r.stats = m.stats;
        const s = m.stats;
        this.monitor?.feed.rank(rank, { traffic: { messagesSent: s.messagesSent, bytesSent: s.bytesSent, messagesReceived: s.messagesReceived, bytesReceived: s.bytesReceived } });
        break;
      }
      case 'sampled':
        this.monitor?.feed.rank(rank, { blocked: m.ops, traffic: m.traffic });
        break;
      case 'blocked':
        r.blocked = { ops: m.ops, queued: m.queued };
        if (typeof m.sent === 'number' && typeof m.received === 'number') r.counters = { sent: m.sent, received: m.received };
        break;
      case 'hello':
        break;
    }
  }

  private onPartial(r: RankState, value: unknown, time: number): void {
    const line = JSON.stringify({ rank: r.rank, host: r.host, time, value }) + '\n';
    if (this.resultsFd !== null) writeSync(this.resultsFd, line);
    else if (this.spec.results === '-') safeWrite(process.stdout, line);
    else safeWrite(process.stdout, `[partial ${r.rank}] ${JSON.stringify(value)}\n`);
  }

  /** Once every rank listens (or ended without joining), give everyone the address table. */
  private maybeSendTable(): void {
    if (this.tableSent) return;
    if (!this.ranks.every((r) => r.address !== null || r.exited)) return;
    this.tableSent = true;
    const addresses = this.ranks.map((r) => (r.exited ? null : r.address));
    // One decision for the whole job: a crowded host slows every collective.
    const crowded = this.hosts.some((h) => h.ranks.length > h.slots);
    for (const r of this.ranks) if (!r.exited) r.where?.send(r.rank, { t: 'table', addresses, crowded });
  }

  private onExit(r: RankState, code: number | null, signal: NodeJS.Signals | null): void {
    if (r.exited) return;
    r.exited = true;
    r.endedAt = Date.now();
    r.code = code;
    r.signal = signal;
    this.monitor?.feed.rank(r.rank, { phase: 'exited', code, signal, killed: r.killed, pid: r.where?.pid(r.rank) ?? 0 });
    const failed = signal !== null || (code ?? 0) !== 0;
    // Not at once: exits that arrive together (one SIGCHLD, or an abort message
    // read in the same turn) are all recorded first, so none of those ranks is
    // counted as ended by us, and the lowest of them is reported.
    if (failed && !this.ending && this.firstFailure === null) {
      this.firstFailure = r.rank;
      setImmediate(() => this.end({ kind: 'failure', rank: r.rank }));
    }
    for (const o of this.ranks) if (!o.exited) o.where?.send(o.rank, { t: 'gone', rank: r.rank });
    this.maybeSendTable();
  }

  private onClose(r: RankState): void {
    if (r.closed) return;
    r.closed = true;
    r.out.flush();
    r.err.flush();
    this.monitor?.feed.outputEnded(r.rank);
    if (!this.ranks.every((x) => x.closed)) return;
    // the last rank may close before the deferred end() of a failure ran
    if (this.firstFailure !== null) this.end({ kind: 'failure', rank: this.firstFailure });
    this.progress.finish();
    if (this.spec.report) this.print(process.stderr, summaryTable(this.ranks));
    this.finish(this.exitCode());
  }

  /** Begin the end of the job (first cause wins); every live rank is ended. */
  private end(why: Ending): void {
    if (this.ending) return;
    this.ending = why;
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    this.killAll(teardownSignal('polite'));
    this.killTimer = setTimeout(() => this.killAll(teardownSignal('force')), KILL_GRACE_MS);
    this.killTimer.unref();
  }

  private killAll(signal: NodeJS.Signals): void {
    for (const r of this.ranks) if (!r.exited && r.where) r.killed = true;
    for (const h of this.hosts) h.kill(signal);
  }

  /** Ask every live rank what it is blocked in; wait a moment for the answers. */
  private async collectDumps(): Promise<void> {
    const live = this.ranks.filter((r) => !r.exited);
    for (const r of live) {
      r.blocked = null;
      r.where?.send(r.rank, { t: 'dump' });
    }
    const deadline = Date.now() + DUMP_WAIT_MS;
    while (Date.now() < deadline && live.some((r) => !r.exited && r.blocked === null && r.where?.connected(r.rank))) {
      await new Promise((res) => setTimeout(res, 20));
    }
  }

  /** Print what every rank is blocked in, under a heading. */
  private async report(heading: string): Promise<void> {
    await this.collectDumps();
    const lines = [`tsmpirun: ${heading}`];
    for (const r of this.ranks) lines.push(...describeRank(r));
    this.print(process.stderr, lines.join('\n') + '\n');
  }

  private async onTimeout(): Promise<void> {
    if (this.ending) return;
    await this.report(`the job ran longer than --timeout ${this.spec.timeout} s; ending it`);
    this.end({ kind: 'timeout' });
  }

  private deadlockTimer: NodeJS.Timeout | null = null;
  /** the quiet state seen last: message totals, and since when */
  private quiet: { sent: number; received: number; since: number } | null = null;

  /**
   * Every rank that is still running blocked in tsmpi, every message sent
   * received, and nothing changed for the whole window: nobody can move.
   */
  private async checkDeadlock(): Promise<void> {
    if (this.ending || this.checking) return;
    this.checking = true;
    try {
      await this.collectDumps();
      const live = this.ranks.filter((r) => !r.exited);
      let sent = 0;
      let received = 0;
      for (const r of this.ranks) {
        const c = r.exited ? (r.stats ? { sent: r.stats.messagesSent, received: r.stats.messagesReceived } : null) : r.counters;
        if (c) {
          sent += c.sent;
          received += c.received;
        }
      }
      const allBlocked = live.length > 0 && live.every((r) => r.blocked !== null && r.blocked.ops.length > 0);
      if (!allBlocked || sent !== received) {
        this.quiet = null;
        return;
      }
      const now = Date.now();
      if (!this.quiet || this.quiet.sent !== sent || this.quiet.received !== received) {
        this.quiet = { sent, received, since: now };
        return;
      }
      if (now - this.quiet.since >= this.spec.detectDeadlock! * 1000 && !this.ending) {
        const lines = [`tsmpirun: deadlock: every running rank is blocked and no message is in flight (for ${((now - this.quiet.since) / 1000).toFixed(1)} s); ending the job`];
        for (const r of this.ranks) lines.push(...describeRank(r));
        this.print(process.stderr, lines.join('\n') + '\n');
        this.end({ kind: 'deadlock' });
      }
    } finally {
      this.checking = false;
    }
  }
  private checking = false;

  /** Write to the terminal around the progress bar. */
  private print(stream: NodeJS.WriteStream, text: string): void {
    this.progress.clear();
    safeWrite(stream, text);
    this.progress.restore();
  }

  private readonly progress = new ProgressBar({ tty: !!process.stderr.isTTY, write: (t) => safeWrite(process.stderr, t) });



  /** The job's last words on stderr; the monitor shows them too. */
  private say(text: string, rank: number | null = null, stack: string | null = null): void {
    this.endNote = { message: text.trim(), rank, stack };
    safeWrite(process.stderr, text);
  }

  private exitCode(): number {
    const e = this.ending;
    if (e === null) return 0;
    switch (e.kind) {
      case 'timeout':
      case 'deadlock':
        this.endNote = { message: e.kind === 'timeout' ? `tsmpirun: the job ran longer than --timeout ${this.spec.timeout} s` : 'tsmpirun: deadlock: every running rank was blocked', rank: null, stack: null };
        return 124;
      case 'abort':
        this.say(`tsmpirun: rank ${e.rank} on ${this.ranks[e.rank]!.host} called abort(${e.code}); every rank was ended\n`, e.rank);
        return e.code;
      case 'signal':
        this.say(`tsmpirun: received ${e.signal}; every rank was ended\n`);
        return signalCode(e.signal);
      case 'host':
        this.say(`tsmpirun: ERR_PEER_LOST: host ${e.host} was lost (${e.reason}); ranks lost: ${e.ranks.join(', ') || 'none'}; every other rank was ended\n`);
        return 1;
      case 'setup':
        if (!e.quiet) this.say(`tsmpirun: ${e.error.message}\n`);
        else this.endNote = { message: `tsmpirun: ${e.error.message}`, rank: null, stack: null };
        return 1;
      case 'failure': {
        // The lowest rank that failed on its own (not one we ended).
        // A rank that died of ERR_PEER_LOST because another rank ended is a
        // consequence (with shared-memory peers it can end before we end it):
        // the cause is reported, unless every failure is such a consequence.
        const failed = this.ranks.filter((r) => !r.killed && (r.signal !== null || (r.code ?? 0) !== 0));
        const causes = failed.filter((r) => r.failCode !== 'ERR_PEER_LOST');
        const r = causes[0] ?? failed[0] ?? this.ranks[e.rank]!;
        const how = r.signal ? `was killed by signal ${r.signal}` : `exited with code ${r.code}`;
        const others = this.ranks.filter((x) => x.killed).length;
        const stack = r.stack ? '\n' + r.stack.replace(/^/gm, '  ') : '';
        safeWrite(process.stderr, `tsmpirun: rank ${r.rank} on ${r.host} (pid ${r.where?.pid(r.rank) ?? 0}) ${how}${stack}\n` + (others ? `tsmpirun: ended ${others} other rank${others === 1 ? '' : 's'}\n` : ''));
        this.endNote = { message: `tsmpirun: rank ${r.rank} on ${r.host} (pid ${r.where?.pid(r.rank) ?? 0}) ${how}` + (others ? `; ended ${others} other rank${others === 1 ? '' : 's'}` : ''), rank: r.rank, stack: r.stack };
        return r.signal ? signalCode(r.signal) : (r.code ?? 1);
      }
    }
  }
}



/** The name a --files entry gets in a remote job folder: its relative path, or its base name. */
export function stagedName(file: string): string {
  const n = normalize(file);
  if (isAbsolute(n) || n.split(sep).includes('..')) return basename(n);
  return n.split(sep).join('/');
}

