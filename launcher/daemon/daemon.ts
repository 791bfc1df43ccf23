/**
 * tsmpid's engine: a TLS server that runs ranks for authorized launchers.
 *
 * One connection is one job: the daemon proves its host key (TLS, pinned by the
 * launcher), challenges the launcher to sign a fresh nonce bound to this TLS
 * session with an authorized key and agrees a file key with it (X25519); from
 * then on the connection is the job's agent's (launcher/agent/agent.ts: staged
 * files, ranks, relay). When the connection ends, for any reason, the job's
 * ranks are ended and its folder is removed. Everything a peer can send is bounded: frame sizes, handshake and
 * idle time, connections, staged bytes. A bad peer loses its connection; the
 * daemon keeps serving everyone else.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import * as tls from 'node:tls';
import { TsmpiError } from '../../runtime/errors.js';
import { CONTROL_VERSION, parseToDaemon, type LauncherToDaemon } from '../../runtime/wire/control.js';
import type { FrameHeader } from '../../runtime/wire/frame.js';
import { Agent } from '../agent/agent.js';
import { FramedConn } from '../link/framed.js';
import { parseAuthorizedKeys, verifyChallenge } from '../keys/keys.js';
import { restrictToOwner } from '../os/owner-only.js';
import { CHUNK, deriveFileKey, stagingKeyPair } from '../staging/staging.js';
import { loadOrCreateTlsIdentity, tlsChannelBinding, type TlsIdentity } from '../keys/x509.js';

export interface DaemonOptions {
  host: string;
  port: number;
  authorizedKeys: string;
  workdir: string;
  slots?: number;
  /** TLS handshake plus launcher authentication must finish within this */
  handshakeTimeoutMs?: number;
  /** a connection that sends nothing for this long is dropped */
  idleTimeoutMs?: number;
  maxConnections?: number;
  /** bytes a job may stage in all */
  maxJobBytes?: number;
  /** most ranks one job may start here */
  maxRanks?: number;
  log?: (line: string) => void;
}

export interface DaemonInfo {
  host: string;
  port: number;
  fingerprint: string;
}

const UNAUTH_CONTROL = 64 * 1024;
const AUTH_CONTROL = 16 * 1024 * 1024;

export class Daemon {
  private server: tls.Server | null = null;
  private readonly sessions = new Set<Session>();
  readonly identity: TlsIdentity;
  readonly o: Required<DaemonOptions>;

  constructor(options: DaemonOptions) {
    this.o = {
      slots: availableParallelism(),
      handshakeTimeoutMs: 10_000,
      idleTimeoutMs: 60_000,
      maxConnections: 64,
      maxJobBytes: 64 * 2 ** 30,
      maxRanks: 1024,
      log: (line) => process.stderr.write(`tsmpid: ${line}\n`),
      ...options,
    };
    // Ranks run inside job folders: every path they are given must be absolute.
    this.o.workdir = resolve(this.o.workdir);
    mkdirSync(this.o.workdir, { recursive: true, mode: 0o700 });
    mkdirSync(join(this.o.workdir, 'jobs'), { recursive: true, mode: 0o700 });
    // No mode bits on Windows: an ACL keeps the workdir (and the job folders in it) to this user.
    restrictToOwner(this.o.workdir, 'dir');
    // Folders of jobs a daemon that was killed could not end (their ranks end
    // when its control link goes): swept now. Windows may hold a folder a
    // moment longer than its last process.
    for (const name of readdirSync(join(this.o.workdir, 'jobs'))) {
      if (!name.startsWith('job-')) continue;
      try {
        rmSync(join(this.o.workdir, 'jobs', name), { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
        this.o.log(`removed the folder ${name} a stopped daemon left`);
      } catch (e) {
        this.o.log(`cannot remove the folder ${name} a stopped daemon left: ${(e as Error).message}`);
      }
    }
    this.identity = loadOrCreateTlsIdentity(this.o.workdir, `tsmpid ${hostname()}`);
    const owner = restrictToOwner(join(this.o.workdir, 'host.key'), 'file');
    if (owner) this.o.log(`the workdir and host.key are restricted to ${owner} (icacls)`);
    // Keys are read now so a bad file fails at start; they are read again per connection.
    this.authorizedKeys();
  }

  authorizedKeys(): Uint8Array[] {
    let text: string;
    try {
      text = readFileSync(this.o.authorizedKeys, 'utf8');
    } catch (e) {
      throw new TsmpiError('ERR_ARG', `cannot read --authorized-keys ${this.o.authorizedKeys}: ${(e as Error).message}`, { cause: e });
    }
    return parseAuthorizedKeys(text, this.o.authorizedKeys);
  }

  start(): Promise<DaemonInfo> {
    const server = tls.createServer({
      key: this.identity.key,
      cert: this.identity.cert,
      minVersion: 'TLSv1.3',
      handshakeTimeout: this.o.handshakeTimeoutMs,
    });
    server.maxConnections = this.o.maxConnections;
    server.on('secureConnection', (socket) => {
      const s = new Session(this, socket);
      this.sessions.add(s);
      socket.on('close', () => this.sessions.delete(s));
    });
    server.on('tlsClientError', (err, socket) => {
      this.o.log(`TLS handshake with ${socket.remoteAddress ?? '?'} failed: ${err.message}`);
      // Node reports a handshake timeout here but leaves the socket open: a
      // peer that never speaks would hold a connection slot for ever.
      socket.destroy();
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (e) => reject(new TsmpiError('ERR_ARG', `cannot listen on ${this.o.host}:${this.o.port}: ${e.message}`, { cause: e })));
      server.listen(this.o.port, this.o.host, () => {
        const a = server.address() as { address: string; port: number };
        resolve({ host: a.address, port: a.port, fingerprint: this.identity.fingerprint });
      });
    });
  }

  /** Stop accepting; end every job (their ranks and folders). */
  async close(): Promise<void> {
    this.server?.close();
    await Promise.all([...this.sessions].map((s) => s.shutdown('the daemon is stopping')));
    // a launcher that does not read its last messages must not hold up the exit
    setTimeout(() => {
      for (const s of this.sessions) s.drop();
    }, 1000).unref();
  }
}

type State = 'challenge' | 'authed';

/** One launcher's connection: authentication here, then the job is the agent's. */
class Session {
  private state: State = 'challenge';
  private readonly conn: FramedConn;
  private readonly nonce = randomBytes(32);
  private readonly staging = stagingKeyPair();
  private agent: Agent | null = null;
  private handshakeTimer: NodeJS.Timeout;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly peer: string;
  private ended: Promise<void> | null = null;

  constructor(
    private readonly d: Daemon,
    private readonly socket: tls.TLSSocket,
  ) {
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    // Before authentication nothing larger than a small control message is read.
    this.conn = new FramedConn(socket, UNAUTH_CONTROL, UNAUTH_CONTROL, {
      control: (v) => this.onControl(v),
      data: (h, p) => this.onData(h, p),
      close: (err) => {
        if (err) d.o.log(`${this.peer}: ${err instanceof TsmpiError ? err.code + ': ' : ''}${err.message}`);
        void this.shutdown(err ? `connection failed: ${err.message}` : 'the launcher closed the connection');
      },
    });
    this.handshakeTimer = setTimeout(() => this.refuse(new TsmpiError('ERR_TIMEOUT', 'no authentication within the handshake timeout')), d.o.handshakeTimeoutMs);
    this.touch();
    this.conn.sendControl({
      t: 'challenge',
      v: CONTROL_VERSION,
      nonce: this.nonce.toString('base64'),
      host: hostname(),
      platform: process.platform,
      slots: d.o.slots,
      staging: Buffer.from(this.staging.publicKey).toString('base64'),
    });
  }

  /** Any traffic from the launcher keeps the connection; silence drops it. */
  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.refuse(new TsmpiError('ERR_TIMEOUT', `nothing heard from the launcher for ${this.d.o.idleTimeoutMs} ms`)), this.d.o.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private refuse(err: TsmpiError): void {
    this.d.o.log(`${this.peer}: ${err.code}: ${err.message}`);
    this.conn.fail(err);
    void this.shutdown(err.message);
  }

  private onControl(v: unknown): void {
    // The job is over here, but the launcher may not have read that yet (it
    // still sends 'gone' notices, pings): nothing it says matters any more.
    if (this.ended || this.agent?.ending) return;
    this.touch();
    const m = parseToDaemon(v);
    if (this.state === 'challenge') {
      if (m.t === 'auth') return this.onAuth(m);
      if (m.t === 'ping') {
        this.conn.sendControl({ t: 'pong' });
        return;
      }
      if (m.t === 'kill') throw new TsmpiError('ERR_PROTOCOL', 'kill before authentication');
      if (m.t === 'ctl') throw new TsmpiError('ERR_PROTOCOL', 'ctl before the job started');
      if (m.t === 'job') throw new TsmpiError('ERR_PROTOCOL', 'job before authentication, or twice');
      if (m.t === 'start') throw new TsmpiError('ERR_PROTOCOL', 'start before every file arrived');
      if (m.t === 'open') throw new TsmpiError('ERR_PROTOCOL', 'open is for agents started by ssh or srun, not tsmpid');
      throw new TsmpiError('ERR_PROTOCOL', 'a digest outside staging');
    }
    this.agent!.onControl(m);
  }

  private onData(h: FrameHeader, payload: Buffer): void {
    if (this.ended || this.agent?.ending) return;
    this.touch();
    if (!this.agent) throw new TsmpiError('ERR_PROTOCOL', 'file data outside staging');
    this.agent.onData(h, payload);
  }

  private onAuth(m: Extract<LauncherToDaemon, { t: 'auth' }>): void {
    const key = Buffer.from(m.key, 'base64');
    const sig = Buffer.from(m.sig, 'base64');
    let keys: Uint8Array[];
    try {
      keys = this.d.authorizedKeys();
    } catch (e) {
      this.d.o.log((e as Error).message);
      keys = [];
    }
    if (!verifyChallenge(keys, key, sig, this.nonce, tlsChannelBinding(this.socket))) {
      throw new TsmpiError('ERR_AUTH', 'this launcher key is not authorized here (or its signature is wrong)');
    }
    const fileKey = deriveFileKey(this.staging.secretKey, Buffer.from(m.staging, 'base64'), this.nonce);
    clearTimeout(this.handshakeTimer);
    this.state = 'authed';
    this.conn.limit(Math.max(CHUNK + 1024, AUTH_CONTROL), AUTH_CONTROL);
    this.d.o.log(`${this.peer}: authenticated`);
    let listenHost = this.socket.localAddress ?? '127.0.0.1';
    if (listenHost.startsWith('::ffff:')) listenHost = listenHost.slice(7);
    this.agent = new Agent(this.conn, fileKey, {
      jobsDir: join(this.d.o.workdir, 'jobs'),
      slots: this.d.o.slots,
      maxJobBytes: this.d.o.maxJobBytes,
      maxRanks: this.d.o.maxRanks,
      listenHost,
      peer: this.peer,
      log: this.d.o.log,
    });
    this.conn.sendControl({ t: 'welcome' });
  }

  /** Close the connection now, whatever is still unsent. */
  drop(): void {
    this.socket.destroy();
  }

  /** End the job (the agent's ranks and folder), close the connection. */
  shutdown(reason: string): Promise<void> {
    this.ended ??= (async () => {
      clearTimeout(this.handshakeTimer);
      if (this.idleTimer) clearTimeout(this.idleTimer);
      if (this.agent) {
        await this.agent.shutdown(reason);
        return;
      }
      this.conn.end();
      if (this.socket.destroyed) return;
      const cut = setTimeout(() => this.socket.destroy(), 30_000).unref();
      this.socket.once('finish', () => {
        clearTimeout(cut);
        setTimeout(() => this.socket.destroy(), 1000).unref();
      });
    })();
    return this.ended;
  }
}
