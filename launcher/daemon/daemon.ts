/**
 * tsmpid's engine: a TLS server that runs ranks for authorized launchers.
 *
 * One connection is one job: the daemon proves its host key (TLS, pinned by the
 * launcher), challenges the launcher to sign a fresh nonce bound to this TLS
 * session with an authorized key, receives the job's files (encrypted end to end
 * with a key agreed by X25519, verified before use, kept inside the job folder),
 * starts the ranks there and relays their control messages and output. When the
 * connection ends, for any reason, the job's ranks are ended and its folder is
 * removed. Everything a peer can send is bounded: frame sizes, handshake and
 * idle time, connections, staged bytes. A bad peer loses its connection; the
 * daemon keeps serving everyone else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tls from 'node:tls';
import { TsmpiError } from '../../runtime/errors.js';
import { socketTransport } from '../../runtime/transport/socket.js';
import type { Listener } from '../../runtime/transport/transport.js';
import { CONTROL_VERSION, parseToDaemon, type LauncherToDaemon, type RankToLauncher } from '../../runtime/wire/control.js';
import type { FrameHeader } from '../../runtime/wire/frame.js';
import { ENV } from '../../runtime/world.js';
import { ControlServer } from '../link/control-server.js';
import { FramedConn } from '../link/framed.js';
import { parseAuthorizedKeys, verifyChallenge } from '../keys/keys.js';
import { restrictToOwner } from '../os/owner-only.js';
import { dataframeEntry, distDir, rankMain, runtimeEntry } from '../os/paths.js';
import { CHUNK, deriveFileKey, FileReceiver, safeJobPath, stagingKeyPair } from '../staging/staging.js';
import { loadOrCreateTlsIdentity, tlsChannelBinding, type TlsIdentity } from '../keys/x509.js';

import { DATAFRAME_PLACEHOLDER, PACKAGE_PLACEHOLDER_PATTERN, RUNTIME_PLACEHOLDER, SCRIPT_FILE } from '../job/placeholders.js';

/**
 * Where this install's copy of a package tsmpi depends on lives, as a file URL
 * (a remote job imports it from here). Unknown packages are left for the import
 * to fail with Node's own clear message.
 */
function ownPackageUrl(spec: string): string {
  try {
    return pathToFileURL(createRequire(join(distDir, '..', 'package.json')).resolve(spec)).href;
  } catch {
    return spec;
  }
}

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
const KILL_GRACE_MS = 1000;

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

interface RankProc {
  rank: number;
  child: ChildProcess;
  done: boolean;
}

type State = 'challenge' | 'authed' | 'staging' | 'running' | 'ending';

class Session {
  private state: State = 'challenge';
  private readonly conn: FramedConn;
  private readonly nonce = randomBytes(32);
  private readonly staging = stagingKeyPair();
  private fileKey: Buffer | null = null;
  private job: Extract<LauncherToDaemon, { t: 'job' }> | null = null;
  private dir: string | null = null;
  private receivers: FileReceiver[] = [];
  private filesDone = 0;
  private ranks: RankProc[] = [];
  private control: ControlServer | null = null;
  private controlListener: Listener | null = null;
  private handshakeTimer: NodeJS.Timeout;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly peer: string;
  private ended: Promise<void> | null = null;
  /** rank output streams paused until the connection drains */
  private readonly held = new Set<NodeJS.ReadableStream>();

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
    if (this.state === 'ending') return;
    this.touch();
    const m = parseToDaemon(v);
    switch (m.t) {
      case 'auth':
        return this.onAuth(m);
      case 'job':
        return this.onJob(m);
      case 'digest':
        return this.onDigest(m);
      case 'start':
        this.onStart().catch((e: unknown) => this.refuse(e instanceof TsmpiError ? e : new TsmpiError('ERR_ARG', `cannot start the job: ${(e as Error).message}`, { cause: e })));
        return;
      case 'ctl':
        if (this.state !== 'running') throw new TsmpiError('ERR_PROTOCOL', 'ctl before the job started');
        this.control?.send(m.rank, m.m);
        return;
      case 'kill':
        if (this.state === 'challenge') throw new TsmpiError('ERR_PROTOCOL', 'kill before authentication');
        this.killRanks(m.signal === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM');
        return;
      case 'ping':
        this.conn.sendControl({ t: 'pong' });
        return;
    }
  }

  private onAuth(m: Extract<LauncherToDaemon, { t: 'auth' }>): void {
    if (this.state !== 'challenge') throw new TsmpiError('ERR_PROTOCOL', 'auth sent twice');
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
    this.fileKey = deriveFileKey(this.staging.secretKey, Buffer.from(m.staging, 'base64'), this.nonce);
    clearTimeout(this.handshakeTimer);
    this.state = 'authed';
    this.conn.limit(Math.max(CHUNK + 1024, AUTH_CONTROL), AUTH_CONTROL);
    this.d.o.log(`${this.peer}: authenticated`);
    this.conn.sendControl({ t: 'welcome' });
  }

  private onJob(m: Extract<LauncherToDaemon, { t: 'job' }>): void {
    if (this.state !== 'authed') throw new TsmpiError('ERR_PROTOCOL', 'job before authentication, or twice');
    if (m.ranks.length === 0 || m.ranks.length > this.d.o.maxRanks) throw new TsmpiError('ERR_ARG', `a job may start 1..${this.d.o.maxRanks} ranks here, not ${m.ranks.length}`);
    // Slots are a limit on a host unless the user asked to oversubscribe.
    if (m.ranks.length > this.d.o.slots && m.oversubscribe !== true) {
      throw new TsmpiError('ERR_ARG', `this host offers ${this.d.o.slots} slots and the job asks for ${m.ranks.length} ranks here; run with --oversubscribe to allow it`);
    }
    if (m.files.length === 0 || m.files[0]!.name !== SCRIPT_FILE) throw new TsmpiError('ERR_PROTOCOL', `the first staged file must be ${SCRIPT_FILE}`);
    const total = m.files.reduce((s, f) => s + f.size, 0);
    if (total > this.d.o.maxJobBytes) throw new TsmpiError('ERR_ARG', `the job stages ${total} bytes, more than the ${this.d.o.maxJobBytes} allowed here`);
    this.dir = mkdtempSync(join(this.d.o.workdir, 'jobs', 'job-'));
    const seen = new Set<string>();
    for (const f of m.files) {
      const path = safeJobPath(this.dir, f.name);
      if (seen.has(path)) throw new TsmpiError('ERR_PROTOCOL', `the file ${JSON.stringify(f.name)} is staged twice`);
      seen.add(path);
    }
    // An empty digest comes after the file's data (the launcher hashes while it seals).
    this.receivers = m.files.map((f, i) => new FileReceiver(this.dir!, this.fileKey!, i, f.name, f.size, f.sha256 === '' ? null : f.sha256));
    this.job = m;
    this.state = 'staging';
  }

  private onData(h: FrameHeader, payload: Buffer): void {
    if (this.state === 'ending') return;
    this.touch();
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
    const text = readFileSync(scriptPath, 'utf8')
      .replaceAll(RUNTIME_PLACEHOLDER, pathToFileURL(runtimeEntry).href)
      .replaceAll(DATAFRAME_PLACEHOLDER, pathToFileURL(dataframeEntry).href)
      .replace(PACKAGE_PLACEHOLDER_PATTERN, (_, spec: string) => ownPackageUrl(spec));
    writeFileSync(scriptPath, text);
    const local = (name: string) =>
      process.platform === 'win32' ? `pipe:\\\\.\\pipe\\tsmpid-${dir.split(/[\\/]/).pop()}-${name}` : `unix:${join(own, `${name}.sock`)}`;
    this.controlListener = await socketTransport.listen(local('control'));
    if (this.ended) {
      // the launcher left while we were getting ready: start nothing
      this.controlListener.close();
      return;
    }
    this.control = new ControlServer(this.controlListener, job.size, job.secret, {
      message: (rank, msg) => this.relay(rank, msg),
      refused: (why) => this.d.o.log(`${this.peer}: a rank's control link was refused: ${why}`),
      // The files are in place before any rank starts.
      joined: (rank) => this.control?.send(rank, { t: 'run' }),
    });
    let listenHost = this.socket.localAddress ?? '127.0.0.1';
    if (listenHost.startsWith('::ffff:')) listenHost = listenHost.slice(7);
    const tlsHost = listenHost.includes(':') ? `[${listenHost}]` : listenHost;
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
          [ENV.host]: job.hostId.replace(/:\d+$/, ''),
          [ENV.hostId]: job.hostId,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        windowsHide: true,
      });
      const p: RankProc = { rank, child, done: false };
      this.ranks.push(p);
      child.stdout!.on('data', (c: Buffer) => this.output(rank, 1, c, child));
      child.stderr!.on('data', (c: Buffer) => this.output(rank, 2, c, child));
      child.on('error', () => {});
      child.on('close', (code, signal) => {
        // Relay the rank's last control messages (partial results, stats) before its exit.
        this.control!.whenDrained(rank, () => {
          p.done = true;
          this.conn.sendControl({ t: 'exit', rank, code, signal });
          if (this.ranks.every((x) => x.done)) void this.shutdown('every rank ended');
        });
      });
    }
    this.d.o.log(`${this.peer}: started ranks ${job.ranks.join(', ')} in ${dir}`);
    this.conn.sendControl({ t: 'started', pids: this.ranks.map((r) => r.child.pid ?? 0), listenHost });
  }

  private relay(rank: number, msg: RankToLauncher): void {
    this.conn.sendControl({ t: 'rank', rank, m: msg });
  }

  private output(rank: number, stream: 1 | 2, chunk: Buffer, child: ChildProcess): void {
    if (!this.conn.sendData({ src: rank, tag: stream }, chunk)) {
      // The launcher reads slower than the rank writes: hold the rank's output.
      const s = stream === 1 ? child.stdout! : child.stderr!;
      s.pause();
      // one 'drain' listener for every held stream (one each would pile up)
      if (this.held.size === 0) {
        this.socket.once('drain', () => {
          for (const h of this.held) h.resume();
          this.held.clear();
        });
      }
      this.held.add(s);
    }
  }

  private killRanks(signal: NodeJS.Signals): void {
    for (const r of this.ranks) {
      if (r.done) continue;
      try {
        r.child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  /** Close the connection now, whatever is still unsent. */
  drop(): void {
    this.socket.destroy();
  }

  /** End the job: ranks ended (SIGTERM, then SIGKILL), folder removed, connection closed. */
  shutdown(reason: string): Promise<void> {
    this.ended ??= (async () => {
      const wasRunning = this.state === 'running';
      this.state = 'ending';
      clearTimeout(this.handshakeTimer);
      if (this.idleTimer) clearTimeout(this.idleTimer);
      if (this.ranks.some((r) => !r.done)) {
        this.d.o.log(`${this.peer}: ending the job's ranks: ${reason}`);
        this.killRanks('SIGTERM');
        const deadline = Date.now() + KILL_GRACE_MS;
        while (this.ranks.some((r) => !r.done) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        this.killRanks('SIGKILL');
        while (this.ranks.some((r) => !r.done)) await new Promise((r) => setTimeout(r, 20));
      }
      for (const r of this.receivers) r.abort();
      this.controlListener?.close();
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
      if (wasRunning) this.d.o.log(`${this.peer}: job ended (${reason}); folder removed`);
      this.conn.end();
      if (this.socket.destroyed) return;
      // The launcher closes its end once it read everything (the last output,
      // the exits); a slow reader still gets it all, a peer that never reads
      // or never closes is cut off.
      const cut = setTimeout(() => this.socket.destroy(), 30_000).unref();
      this.socket.once('finish', () => {
        clearTimeout(cut);
        setTimeout(() => this.socket.destroy(), 1000).unref();
      });
    })();
    return this.ended;
  }
}
