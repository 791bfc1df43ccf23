/**
 * Ranks on another machine, through its tsmpid: TLS with the host's key pinned
 * (first contact records it, a changed key is refused), the launcher's identity
 * proven by signing the daemon's fresh challenge bound to this TLS session, the
 * job's files sealed end to end, then the daemon's relay of control messages,
 * output and exits. Heartbeats find a host that died or was cut off.
 */
import { createHash } from 'node:crypto';
import * as tls from 'node:tls';
import { TsmpiError } from '../../runtime/errors.js';
import { CONTROL_VERSION, parseDaemonMessage, type DaemonToLauncher, type LauncherToRank, type StagedFile } from '../../runtime/wire/control.js';
import type { FrameHeader } from '../../runtime/wire/frame.js';
import { FramedConn } from '../link/framed.js';
import type { HostSpec } from '../hostlist/hosts.js';
import { signChallenge, type Identity, type KnownHosts } from '../keys/keys.js';
import type { HostEvents, RankHost } from './rank-host.js';
import { CHUNK, deriveFileKey, sealFile, stagingKeyPair } from '../staging/staging.js';
import { peerFingerprint, tlsChannelBinding, type TlsIdentity } from '../keys/x509.js';

const HEARTBEAT_MS = 2000;
/** Bytes of sealed file data queued on the connection before staging waits. */
const STAGING_IN_FLIGHT = 8 * 1024 * 1024;

function drained(socket: import('node:net').Socket): Promise<void> {
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
/** No word from a host for this long and it is considered lost. */
export const HOST_SILENCE_MS = 10_000;

export interface StagedSource extends StagedFile {
  /** where the file is on this machine */
  path: string;
}

export interface RemoteHostSpec {
  host: HostSpec;
  ranks: number[];
  size: number;
  secret: string;
  identity: Identity;
  knownHosts: KnownHosts;
  knownHostsFile: string;
  /** first the compiled script, then the user's --files */
  files: StagedSource[];
  script: string;
  args: string[];
  env: Record<string, string>;
  hostId: string;
  credential: TlsIdentity;
  /** more ranks than the host's slots allowed (--oversubscribe) */
  oversubscribe: boolean;
  connectTimeoutMs: number;
  note(line: string): void;
}

export class RemoteHost implements RankHost {
  readonly name: string;
  readonly ranks: readonly number[];
  private conn: FramedConn | null = null;
  private fileKey: Buffer | null = null;
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
  /** the cores (slots) the daemon offers, from its challenge */
  slots = 1;

  constructor(private readonly s: RemoteHostSpec) {
    this.name = s.host.name;
    this.ranks = s.ranks;
  }

  private get where(): string {
    return `${this.s.host.name}:${this.s.host.port}`;
  }

  /** Connect, check the host key, authenticate. */
  async connect(): Promise<void> {
    const { name: host, port } = this.s.host;
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const sock = tls.connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3', servername: undefined as unknown as string });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new TsmpiError('ERR_TIMEOUT', `${this.where}: no TLS handshake within ${this.s.connectTimeoutMs} ms`));
      }, this.s.connectTimeoutMs);
      sock.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(sock);
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(new TsmpiError('ERR_PEER_LOST', `cannot reach tsmpid on ${this.where}: ${e.message}`, { cause: e }));
      });
    });
    socket.setNoDelay(true);
    const fp = peerFingerprint(socket);
    const verdict = fp ? this.s.knownHosts.check(host, port, fp) : 'changed';
    if (verdict === 'changed') {
      socket.destroy();
      throw new TsmpiError(
        'ERR_AUTH',
        `the host key of ${this.where} is not the one recorded in ${this.s.knownHostsFile} (now ${fp}); refusing to connect. If the host was really reinstalled, remove its line from that file.`,
      );
    }
    if (verdict === 'new') {
      this.s.knownHosts.record(host, port, fp!);
      this.s.note(`recorded the host key of ${this.where} (${fp}) in ${this.s.knownHostsFile}`);
    }
    this.localAddress = (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    this.conn = new FramedConn(socket, CHUNK + 1024, 64 * 1024 * 1024, {
      control: (v) => this.onControl(parseDaemonMessage(v)),
      data: (h, p) => this.onData(h, p),
      close: (err) => this.onClose(err),
    });
    const challenge = await this.next('challenge');
    if (challenge.t !== 'challenge') throw new TsmpiError('ERR_PROTOCOL', `${this.where}: expected a challenge`);
    if (challenge.v !== CONTROL_VERSION) throw new TsmpiError('ERR_PROTOCOL', `${this.where} speaks protocol ${challenge.v}, this launcher ${CONTROL_VERSION}`);
    this.slots = challenge.slots;
    const nonce = Buffer.from(challenge.nonce, 'base64');
    const staging = stagingKeyPair();
    this.fileKey = deriveFileKey(staging.secretKey, Buffer.from(challenge.staging, 'base64'), nonce);
    const sig = signChallenge(this.s.identity.secretKey, nonce, tlsChannelBinding(socket));
    this.conn.sendControl({
      t: 'auth',
      key: Buffer.from(this.s.identity.publicKey).toString('base64'),
      sig: Buffer.from(sig).toString('base64'),
      staging: Buffer.from(staging.publicKey).toString('base64'),
    });
    await this.next('welcome');
  }

  /** Wait for the daemon's next message of a kind; `refused` and loss reject. */
  private next(kind: DaemonToLauncher['t']): Promise<DaemonToLauncher> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new TsmpiError('ERR_TIMEOUT', `${this.where}: no '${kind}' within ${this.s.connectTimeoutMs} ms`)), this.s.connectTimeoutMs);
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
    const s = this.s;
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
    if (this.waiter && (m.t !== 'rank' && m.t !== 'exit' && m.t !== 'pong')) {
      this.waiter(m);
      return;
    }
    switch (m.t) {
      case 'rank':
        if (this.s.ranks.includes(m.rank)) this.ev?.message(m.rank, m.m);
        break;
      case 'exit':
        if (!this.live.delete(m.rank)) break;
        this.ev?.exit(m.rank, m.code, (m.signal as NodeJS.Signals | null) ?? null);
        this.ev?.closed(m.rank);
        break;
      case 'refused':
        this.s.note(`${this.where}: ${m.code}: ${m.message}`);
        break;
      default:
        break;
    }
  }

  private onData(h: FrameHeader, payload: Buffer): void {
    this.lastHeard = Date.now();
    if (this.live.has(h.src) && (h.tag === 1 || h.tag === 2)) this.ev?.output(h.src, h.tag, payload);
  }

  private onClose(err?: Error): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const why = err ? err.message : 'the daemon closed the connection';
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

  ref(on: boolean): void {
    const sock = this.conn?.socket;
    if (on) sock?.ref();
    else sock?.unref();
  }

  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.conn?.end();
    const sock = this.conn?.socket;
    if (sock) setTimeout(() => sock.destroy(), 500).unref();
  }
}
