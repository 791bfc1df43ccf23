/**
 * The far side of a job on one host, whoever started it (tsmpid after it
 * authenticated a launcher, `ssh HOST node agent-main.js`, or `srun`): it
 * receives the job's files (sealed chunks, verified, kept inside the job
 * folder), starts the ranks there (processes, or with `mode: 'threads'` worker
 * threads of one per-job process: thread-job.ts), relays their control
 * messages, output and exits over its framed link to the launcher, and when the
 * link ends, for any reason, ends the ranks and removes the folder.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TsmpiError } from '../../runtime/errors.js';
import { socketTransport } from '../../runtime/transport/socket.js';
import type { Listener } from '../../runtime/transport/transport.js';
import type { LauncherToDaemon, RankToLauncher } from '../../runtime/wire/control.js';
import type { FrameHeader } from '../../runtime/wire/frame.js';
import { ENV } from '../../runtime/world.js';
import { ControlServer } from '../link/control-server.js';
import type { FramedConn } from '../link/framed.js';
import { dataframeEntry, distDir, rankMain, runtimeEntry } from '../os/paths.js';
import { FileReceiver, safeJobPath } from '../staging/staging.js';
import { SCRIPT_FILE } from '../job/placeholders.js';
import { fillPlaceholders } from '../job/own-install.js';
import { ThreadJob } from './thread-job.js';

export interface AgentOptions {
  /** job folders are made in here */
  jobsDir: string;
  /** cores offered; a job with more ranks needs `oversubscribe` (null: no limit) */
  slots: number | null;
  /** bytes a job may stage in all */
  maxJobBytes: number;
  /** most ranks one job may start here */
  maxRanks: number;
  /** the address ranks listen on for ranks of other hosts (TLS) */
  listenHost: string;
  /** names the launcher in log lines */
  peer: string;
  log(line: string): void;
}

interface RankProc {
  rank: number;
  pid: number;
  done: boolean;
  kill(signal: NodeJS.Signals): void;
}

type State = 'ready' | 'staging' | 'running' | 'ending';

const KILL_GRACE_MS = 1000;
/** Largest piece of rank output in one frame (a pipe's read size; the launcher's frame limit is ~1 MiB). */
const OUTPUT_PIECE = 64 * 1024;

export class Agent {
  private state: State = 'ready';
  private job: Extract<LauncherToDaemon, { t: 'job' }> | null = null;
  private dir: string | null = null;
  private receivers: FileReceiver[] = [];
  private filesDone = 0;
  private ranks: RankProc[] = [];
  private control: ControlServer | null = null;
  private controlListener: Listener | null = null;
  private ended: Promise<void> | null = null;
  /** how to resume rank output paused until the link drains */
  private readonly held: (() => void)[] = [];
  /** `--threads`: the per-job process that runs this host's ranks */
  private threads: ThreadJob | null = null;

  constructor(
    private readonly conn: FramedConn,
    /** the key staged chunks are sealed with */
    private readonly fileKey: Buffer,
    private readonly o: AgentOptions,
  ) {}

  get ending(): boolean {
    return this.state === 'ending';
  }

  /** A message of the job (everything after authentication). */
  onControl(m: LauncherToDaemon): void {
    if (this.state === 'ending') return;
    switch (m.t) {
      case 'auth':
        throw new TsmpiError('ERR_PROTOCOL', 'auth sent twice');
      case 'open':
        throw new TsmpiError('ERR_PROTOCOL', 'open sent twice, or to tsmpid');
      case 'job':
        return this.onJob(m);
      case 'digest':
        return this.onDigest(m);
      case 'start':
        this.onStart().catch((e: unknown) => this.refuse(e instanceof TsmpiError ? e : new TsmpiError('ERR_ARG', `cannot start the job: ${(e as Error).message}`, { cause: e })));
        return;
      case 'ctl':
        if (this.state !== 'running') throw new TsmpiError('ERR_PROTOCOL', 'ctl before the job started');
        if (this.threads) this.threads.send(m.rank, m.m);
        else this.control?.send(m.rank, m.m);
        return;
      case 'kill':
        this.killRanks(m.signal === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM');
        return;
      case 'ping':
        this.conn.sendControl({ t: 'pong' });
        return;
    }
  }

  /** Stop at an error: tell the launcher, end the job. */
  refuse(err: TsmpiError): void {
    this.o.log(`${this.o.peer}: ${err.code}: ${err.message}`);
    this.conn.fail(err);
    void this.shutdown(err.message);
  }

  private onJob(m: Extract<LauncherToDaemon, { t: 'job' }>): void {
    if (this.state !== 'ready') throw new TsmpiError('ERR_PROTOCOL', 'job before authentication, or twice');
    if (m.ranks.length === 0 || m.ranks.length > this.o.maxRanks) throw new TsmpiError('ERR_ARG', `a job may start 1..${this.o.maxRanks} ranks here, not ${m.ranks.length}`);
    // Slots are a limit on a host unless the user asked to oversubscribe.
    if (this.o.slots !== null && m.ranks.length > this.o.slots && m.oversubscribe !== true) {
      throw new TsmpiError('ERR_ARG', `this host offers ${this.o.slots} slots and the job asks for ${m.ranks.length} ranks here; run with --oversubscribe to allow it`);
    }
    if (m.files.length === 0 || m.files[0]!.name !== SCRIPT_FILE) throw new TsmpiError('ERR_PROTOCOL', `the first staged file must be ${SCRIPT_FILE}`);
    const total = m.files.reduce((s, f) => s + f.size, 0);
    if (total > this.o.maxJobBytes) throw new TsmpiError('ERR_ARG', `the job stages ${total} bytes, more than the ${this.o.maxJobBytes} allowed here`);
    this.dir = mkdtempSync(join(this.o.jobsDir, 'job-'));
    const seen = new Set<string>();
    for (const f of m.files) {
      const path = safeJobPath(this.dir, f.name);
      if (seen.has(path)) throw new TsmpiError('ERR_PROTOCOL', `the file ${JSON.stringify(f.name)} is staged twice`);
      seen.add(path);
    }
    // An empty digest comes after the file's data (the launcher hashes while it seals).
    this.receivers = m.files.map((f, i) => new FileReceiver(this.dir!, this.fileKey, i, f.name, f.size, f.sha256 === '' ? null : f.sha256));
    this.job = m;
    this.state = 'staging';
  }

  onData(h: FrameHeader, payload: Buffer): void {
    if (this.state === 'ending') return;
    if (this.state !== 'staging') throw new TsmpiError('ERR_PROTOCOL', 'file data outside staging');
    const r = this.receivers[h.ctx];
    if (!r) throw new TsmpiError('ERR_PROTOCOL', `file data for unknown file #${h.ctx}`);
    const last = h.tag === 1;
    r.push(h.seq, last, payload);
    if (last && r.hasDigest) {
      r.finish();
      this.filesDone++;
    }
  }

  private onDigest(m: Extract<LauncherToDaemon, { t: 'digest' }>): void {
    if (this.state !== 'staging') throw new TsmpiError('ERR_PROTOCOL', 'a digest outside staging');
    const r = this.receivers[m.file];
    if (!r || r.hasDigest) throw new TsmpiError('ERR_PROTOCOL', `a digest for file #${m.file}, which has one or does not exist`);
    r.finish(m.sha256);
    this.filesDone++;
  }

  private async onStart(): Promise<void> {
    if (this.state !== 'staging' || this.filesDone !== this.receivers.length) throw new TsmpiError('ERR_PROTOCOL', 'start before every file arrived');
    const job = this.job!;
    const dir = this.dir!;
    this.state = 'running';
    const own = join(dir, '.tsmpi');
    mkdirSync(own, { mode: 0o700 });
    writeFileSync(join(own, 'job.key'), job.tlsKey, { mode: 0o600 });
    writeFileSync(join(own, 'job.crt'), job.tlsCert, { mode: 0o600 });
    // Point the script at this host's own tsmpi install.
    const scriptPath = join(dir, SCRIPT_FILE);
    const text = fillPlaceholders(readFileSync(scriptPath, 'utf8'));
    writeFileSync(scriptPath, text);
    const local = (name: string) =>
      process.platform === 'win32' ? `pipe:\\\\.\\pipe\\tsmpid-${dir.split(/[\\/]/).pop()}-${name}` : `unix:${join(own, `${name}.sock`)}`;
    const listenHost = this.o.listenHost;
    const tlsHost = listenHost.includes(':') ? `[${listenHost}]` : listenHost;
    const host = job.hostId.replace(/:\d+$/, '');
    if (job.mode === 'threads') {
      this.threads = new ThreadJob(
        {
          t: 'job',
          ranks: job.ranks,
          size: job.size,
          secret: job.secret,
          dir,
          own,
          compiled: scriptPath,
          script: job.script,
          args: job.args,
          env: job.env,
          host,
          hostId: job.hostId,
          listenTls: `tls:${tlsHost}:0`,
          listen: job.ranks.map((r) => local(`r${r}`)),
        },
        {
          message: (rank, msg) => this.relay(rank, msg),
          output: (rank, stream, chunk) =>
            void this.output(rank, stream, chunk, () => {
              this.threads!.hold(true);
              return () => this.threads!.hold(false);
            }),
          exit: (rank, code, signal) => this.rankEnded(rank, code, signal),
        },
      );
      const t = this.threads;
      for (const rank of job.ranks) this.ranks.push({ rank, pid: t.pid, done: false, kill: (sig) => t.kill(sig) });
      this.o.log(`${this.o.peer}: started ranks ${job.ranks.join(', ')} as threads of pid ${t.pid} in ${dir}`);
      this.conn.sendControl({ t: 'started', pids: this.ranks.map((r) => r.pid), listenHost });
      return;
    }
    this.controlListener = await socketTransport.listen(local('control'));
    if (this.ended) {
      // the launcher left while we were getting ready: start nothing
      this.controlListener.close();
      return;
    }
    this.control = new ControlServer(this.controlListener, job.size, job.secret, {
      message: (rank, msg) => this.relay(rank, msg),
      refused: (why) => this.o.log(`${this.o.peer}: a rank's control link was refused: ${why}`),
      // The files are in place before any rank starts.
      joined: (rank) => this.control?.send(rank, { t: 'run' }),
    });
    for (const rank of job.ranks) {
      const child = spawn(process.execPath, [rankMain, scriptPath, job.script, ...job.args], {
        cwd: dir,
        env: {
          ...process.env,
          ...job.env,
          [ENV.control]: this.controlListener.address,
          [ENV.rank]: String(rank),
          [ENV.size]: String(job.size),
          [ENV.secret]: job.secret,
          [ENV.listen]: local(`r${rank}`),
          [ENV.listenTls]: `tls:${tlsHost}:0`,
          [ENV.tlsDir]: own,
          [ENV.host]: host,
          [ENV.hostId]: job.hostId,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        windowsHide: true,
      });
      this.ranks.push({ rank, pid: child.pid ?? 0, done: false, kill: (sig) => child.kill(sig) });
      const pause = (s: NodeJS.ReadableStream) => () => {
        s.pause();
        return () => s.resume();
      };
      child.stdout!.on('data', (c: Buffer) => this.output(rank, 1, c, pause(child.stdout!)));
      child.stderr!.on('data', (c: Buffer) => this.output(rank, 2, c, pause(child.stderr!)));
      child.on('error', () => {});
      child.on('close', (code, signal) => {
        // Relay the rank's last control messages (partial results, stats) before its exit.
        this.control!.whenDrained(rank, () => this.rankEnded(rank, code, signal));
      });
    }
    this.o.log(`${this.o.peer}: started ranks ${job.ranks.join(', ')} in ${dir}`);
    this.conn.sendControl({ t: 'started', pids: this.ranks.map((r) => r.pid), listenHost });
  }

  /** A rank ended and everything it said is relayed: report its exit. */
  private rankEnded(rank: number, code: number | null, signal: string | null): void {
    const p = this.ranks.find((r) => r.rank === rank);
    if (!p || p.done) return;
    p.done = true;
    this.conn.sendControl({ t: 'exit', rank, code, signal });
    if (this.ranks.every((x) => x.done)) void this.shutdown('every rank ended');
  }

  private relay(rank: number, msg: RankToLauncher): void {
    this.conn.sendControl({ t: 'rank', rank, m: msg });
  }

  /** `hold`: pause where this output comes from; it returns how to resume. */
  private output(rank: number, stream: 1 | 2, chunk: Buffer, hold: () => () => void): boolean {
    // A thread's output comes in chunks as large as its writes: frame it in pipe-sized pieces.
    let flowing = true;
    for (let at = 0; at < chunk.length; at += OUTPUT_PIECE) {
      flowing = this.conn.sendData({ src: rank, tag: stream }, chunk.subarray(at, at + OUTPUT_PIECE)) && flowing;
    }
    if (flowing) return true;
    // The launcher reads slower than the rank writes: hold the rank's output.
    // one 'drain' listener for every held stream (one each would pile up)
    if (this.held.length === 0) {
      this.conn.socket.once('drain', () => {
        for (const resume of this.held.splice(0)) resume();
      });
    }
    this.held.push(hold());
    return false;
  }

  private killRanks(signal: NodeJS.Signals): void {
    for (const r of this.ranks) {
      if (r.done) continue;
      try {
        r.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  /** End the job: ranks ended (SIGTERM, then SIGKILL), folder removed, link closed. */
  shutdown(reason: string): Promise<void> {
    this.ended ??= (async () => {
      const wasRunning = this.state === 'running';
      this.state = 'ending';
      if (this.ranks.some((r) => !r.done)) {
        this.o.log(`${this.o.peer}: ending the job's ranks: ${reason}`);
        this.killRanks('SIGTERM');
        const deadline = Date.now() + KILL_GRACE_MS;
        while (this.ranks.some((r) => !r.done) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        this.killRanks('SIGKILL');
        while (this.ranks.some((r) => !r.done)) await new Promise((r) => setTimeout(r, 20));
      }
      if (this.threads) {
        // Its ranks reported their exits; the process itself ends just after (or is made to).
        const t = this.threads;
        const late = setTimeout(() => t.kill('SIGKILL'), KILL_GRACE_MS);
        await t.closed;
        clearTimeout(late);
      }
      for (const r of this.receivers) r.abort();
      this.controlListener?.close();
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
      if (wasRunning) this.o.log(`${this.o.peer}: job ended (${reason}); folder removed`);
      const link = this.conn.socket;
      this.conn.end();
      if (link.destroyed) return;
      // The launcher closes its end once it read everything (the last output,
      // the exits); a slow reader still gets it all, a peer that never reads
      // or never closes is cut off.
      const cut = setTimeout(() => link.destroy(), 30_000).unref();
      link.once('finish', () => {
        clearTimeout(cut);
        setTimeout(() => link.destroy(), 1000).unref();
      });
    })();
    return this.ended;
  }
}
