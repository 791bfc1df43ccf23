/**
 * The launcher's end of a link to a job's agent on another host, however that
 * link was made (tsmpid over TLS, an ssh channel, a Slurm node calling back):
 * send the job, stage its files as sealed chunks, then take the agent's relay
 * of control messages, output and exits. Heartbeats find an agent that died or
 * was cut off; a link that ends while ranks run is the host lost.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { TsmpiError } from '../../runtime/errors.js';
import { parseDaemonMessage, type DaemonToLauncher, type LauncherToRank, type StagedFile } from '../../runtime/wire/control.js';
import type { FrameHeader } from '../../runtime/wire/frame.js';
import { FramedConn } from '../link/framed.js';
import type { TlsIdentity } from '../keys/x509.js';
import { CHUNK, sealFile } from '../staging/staging.js';
import type { HostEvents, RankHost } from './rank-host.js';

const HEARTBEAT_MS = 2000;
/** No word from a host for this long and it is considered lost. */
export const HOST_SILENCE_MS = 10_000;
/** Bytes of sealed file data queued on the link before staging waits. */
const STAGING_IN_FLIGHT = 8 * 1024 * 1024;

function drained(socket: Duplex): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/**
 * The lines of a far side's stderr (ssh's, srun's, the shell's, node's) that
 * say what went wrong, else its last lines: for an error message.
 */
export function whatItSaid(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const telling = lines.filter((l) => /error|denied|not found|no such|refused|failed|cannot|unable/i.test(l) && !/^srun: error: .*Exited with exit code/.test(l));
  return (telling.length ? telling.slice(0, 2) : lines.slice(-2)).join(' | ');
}

export interface StagedSource extends StagedFile {
  /** where the file is on this machine */
  path: string;
}

/** What every agent is told about the job, whatever way it was reached. */
export interface AgentJobSpec {
  ranks: number[];
  size: number;
  secret: string;
  /** first the compiled script, then the user's --files */
  files: StagedSource[];
  script: string;
  args: string[];
  env: Record<string, string>;
  hostId: string;
  credential: TlsIdentity;
  /** more ranks than the host's slots allowed (--oversubscribe) */
  oversubscribe: boolean;
  /** 'threads': the host runs its ranks as worker threads of one per-job process (--threads; default processes) */
  mode?: 'threads' | 'processes';
  /** bound on each step of reaching the host (connect, hello, started) */
  connectTimeoutMs: number;
  note(line: string): void;
}

export abstract class AgentHost implements RankHost {
  abstract readonly name: string;
  readonly ranks: readonly number[];
  protected conn: FramedConn | null = null;
  protected fileKey: Buffer | null = null;
  private readonly pids = new Map<number, number>();
  private readonly live = new Set<number>();
  private waiter: ((m: DaemonToLauncher) => void) | null = null;
  private failWait: ((e: Error) => void) | null = null;
  private ev: HostEvents | null = null;
  private lastHeard = Date.now();
  private heartbeat: NodeJS.Timeout | null = null;
  private lostReported = false;
  private started = false;
  /** the address this machine has on the way to the host (local ranks listen there) */
  localAddress = '127.0.0.1';
  /** the cores (slots) the agent offers */
  slots = 1;

  constructor(protected readonly job: AgentJobSpec) {
    this.ranks = job.ranks;
  }

  /** Reach the host and its agent (before `start`). */
  abstract connect(): Promise<void>;

  /** The host as error messages name it. */
  protected abstract get where(): string;

  /** Why the link ended, when the way it was made knows better (ssh's stderr). */
  protected lostReason(why: string): string {
    return why;
  }

  /** Speak the framed protocol over `socket`. */
  protected link(socket: Duplex): FramedConn {
    this.conn = new FramedConn(socket, CHUNK + 1024, 64 * 1024 * 1024, {
      control: (v) => this.onControl(parseDaemonMessage(v)),
      data: (h, p) => this.onData(h, p),
      close: (err) => this.onClose(err),
    });
    return this.conn;
  }

  /** Wait for the agent's next message of a kind; `refused` and loss reject. */
  protected next(kind: DaemonToLauncher['t']): Promise<DaemonToLauncher> {
    return new Promise((resolve, reject) => {
      if (!this.conn || this.conn.isClosed) {
        reject(new TsmpiError('ERR_PEER_LOST', `${this.where}: ${this.lostReason('the link closed')}`));
        return;
      }
      const timer = setTimeout(() => {
        this.waiter = this.failWait = null;
        reject(new TsmpiError('ERR_TIMEOUT', `${this.where}: no '${kind}' within ${this.job.connectTimeoutMs} ms`));
      }, this.job.connectTimeoutMs);
      this.waiter = (m) => {
        clearTimeout(timer);
        this.waiter = this.failWait = null;
        if (m.t === 'refused') reject(new TsmpiError(m.code === 'ERR_AUTH' ? 'ERR_AUTH' : 'ERR_PROTOCOL', `${this.where} refused (${m.code}): ${m.message}`));
        else if (m.t !== kind) reject(new TsmpiError('ERR_PROTOCOL', `${this.where}: expected '${kind}', got '${m.t}'`));
        else resolve(m);
      };
      this.failWait = (e) => {
        clearTimeout(timer);
        this.waiter = this.failWait = null;
        reject(e);
      };
    });
  }

  async start(ev: HostEvents): Promise<void> {
    this.ev = ev;
    const conn = this.conn!;
    const s = this.job;
    conn.sendControl({
      t: 'job',
      size: s.size,
      ranks: s.ranks,
      secret: s.secret,
      hostId: s.hostId,
      env: s.env,
      args: s.args,
      script: s.script,
      files: s.files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
      tlsKey: s.credential.key,
      tlsCert: s.credential.cert,
      oversubscribe: s.oversubscribe,
      mode: s.mode ?? 'processes',
    });
    for (const [i, f] of s.files.entries()) {
      // Hashed while sealed (one read of the file); the digest follows the data.
      const hash = f.sha256 === '' ? createHash('sha256') : undefined;
      for await (const c of sealFile(f.path, this.fileKey!, i, hash)) {
        if (conn.isClosed) throw new TsmpiError('ERR_PEER_LOST', `${this.where} closed the connection while files were staged`);
        conn.sendData({ ctx: i, seq: c.chunkIndex, tag: c.last ? 1 : 0 }, c.sealed);
        // Keep several chunks in flight (sealing here, opening and writing there
        // overlap), but a bounded number: wait while too much is queued.
        if (conn.socket.writableLength > STAGING_IN_FLIGHT) await drained(conn.socket);
      }
      if (hash) conn.sendControl({ t: 'digest', file: i, sha256: hash.digest('hex') });
    }
    conn.sendControl({ t: 'start' });
    const started = await this.next('started');
    if (started.t !== 'started') throw new TsmpiError('ERR_PROTOCOL', 'expected started');
    started.pids.forEach((pid, i) => this.pids.set(s.ranks[i]!, Number(pid)));
    for (const r of s.ranks) this.live.add(r);
    this.started = true;
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > HOST_SILENCE_MS) {
        this.conn?.socket.destroy(new Error(`no answer for ${HOST_SILENCE_MS / 1000} s`));
        return;
      }
      this.conn?.sendControl({ t: 'ping' });
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private onControl(m: DaemonToLauncher): void {
    this.lastHeard = Date.now();
    if (this.waiter && m.t !== 'rank' && m.t !== 'exit' && m.t !== 'pong') {
      this.waiter(m);
      return;
    }
    switch (m.t) {
      case 'rank':
        if (this.job.ranks.includes(m.rank)) this.ev?.message(m.rank, m.m);
        break;
      case 'exit':
        if (!this.live.delete(m.rank)) break;
        this.ev?.exit(m.rank, m.code, (m.signal as NodeJS.Signals | null) ?? null);
        this.ev?.closed(m.rank);
        break;
      case 'refused':
        this.job.note(`${this.where}: ${m.code}: ${m.message}`);
        break;
      default:
        break;
    }
  }

  private onData(h: FrameHeader, payload: Buffer): void {
    this.lastHeard = Date.now();
    if (this.live.has(h.src) && (h.tag === 1 || h.tag === 2)) this.ev?.output(h.src, h.tag, payload);
  }

  /** The link ended: a rank still running is lost with its host. */
  protected onClose(err?: Error): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const why = this.lostReason(err ? err.message : 'the agent closed the connection');
    this.failWait?.(new TsmpiError('ERR_PEER_LOST', `${this.where}: ${why}`));
    if (this.started && this.live.size > 0 && !this.lostReported) {
      this.lostReported = true;
      this.ev?.lost(`${this.where}: ${why}`);
    }
  }

  /** Ranks the host lost without an exit report. */
  liveRanks(): number[] {
    return [...this.live];
  }

  send(rank: number, m: LauncherToRank): boolean {
    return this.conn?.sendControl({ t: 'ctl', rank, m }) ?? false;
  }

  connected(rank: number): boolean {
    return this.live.has(rank) && !!this.conn && !this.conn.isClosed;
  }

  pid(rank: number): number {
    return this.pids.get(rank) ?? 0;
  }

  kill(signal: NodeJS.Signals): void {
    this.conn?.sendControl({ t: 'kill', signal });
  }

  /** Whether the link keeps this process alive (a task pool lets go while idle). */
  ref(on: boolean): void {
    const sock = this.conn?.socket as { ref?(): void; unref?(): void } | undefined;
    if (on) sock?.ref?.();
    else sock?.unref?.();
  }

  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.conn?.end();
    const sock = this.conn?.socket;
    if (sock) setTimeout(() => sock.destroy(), 500).unref();
  }
}
