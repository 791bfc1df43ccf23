// Real tsmpid daemons for tests: each on its own loopback address
// (127.0.0.2, 127.0.0.3, …) with port 0 and a temp workdir of its own, its
// port and host-key fingerprint read from what it prints. Plus a raw protocol
// client, for tests that speak to a daemon the way no honest launcher would.
//
// Nothing here ever talks to an address outside 127.0.0.0/8.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { FramedConn } from '../launcher/link/framed.js';
import { signChallenge, type Identity } from '../launcher/keys/keys.js';
import { CHUNK, deriveFileKey, sealChunk, stagingKeyPair } from '../launcher/staging/staging.js';
import { tlsChannelBinding } from '../launcher/keys/x509.js';
import type { DaemonToLauncher } from '../runtime/wire/control.js';
import type { FrameHeader } from '../runtime/wire/frame.js';
import { expect } from 'vitest';
import { root, tsmpirun, until } from './harness.js';

export const tsmpidJs = join(root, 'dist', 'launcher', 'tsmpid.js');

/** `tsmpirun keygen --out DIR`: the launcher key (DIR/id, DIR/id.pub) tests give their daemons. */
export async function keygen(dir: string): Promise<void> {
  const kg = await tsmpirun(['keygen', '--out', dir], { timeoutMs: 10_000 });
  expect(kg.code, kg.stderr).toBe(0);
}

/** Only loopback: a test that would reach anything else is a bug. */
export function assertLoopback(host: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) throw new Error(`tests only talk to 127.0.0.0/8, not ${host}`);
}

export interface DaemonOptions {
  host: string;
  authorizedKeys: string;
  slots?: number;
  /** more tsmpid options, e.g. ['--handshake-timeout', '1'] */
  extra?: string[];
  /** reuse the folder of an earlier daemon (its host key) */
  reuse?: TestDaemon;
}

export class TestDaemon {
  stdout = '';
  stderr = '';
  port = 0;
  fingerprint = '';
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exitWaiters: (() => void)[] = [];

  constructor(
    readonly host: string,
    /** the temp folder this daemon owns (its workdir is inside) */
    readonly base: string,
    readonly workdir: string,
    readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (c: Buffer) => (this.stdout += c));
    child.stderr!.on('data', (c: Buffer) => (this.stderr += c));
    child.on('exit', (code, signal) => {
      this.exited = { code, signal };
      for (const w of this.exitWaiters.splice(0)) w();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exited === null;
  }

  /** The job folders left under workdir/jobs. */
  jobs(): string[] {
    return readdirSync(join(this.workdir, 'jobs'));
  }

  /** A hostfile line for this daemon. */
  line(slots: number): string {
    return `${this.host} slots=${slots} port=${this.port}`;
  }

  /** Open file descriptors of the daemon process (Linux), to spot leaked sessions. */
  fds(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length;
  }

  /** Pids of this daemon's live child processes (its ranks), from /proc (Linux). */
  children(): number[] {
    const out: number[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(fields[1]) === this.pid && fields[0] !== 'Z') out.push(Number(name));
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }

  /** Resolves once the process has exited (or after `ms`, then rejects). */
  waitExit(ms: number): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`tsmpid on ${this.host} did not exit within ${ms} ms`)), ms);
      this.exitWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM', ms = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGCONT'); // a test may have stopped it
    this.child.kill(signal);
    try {
      await this.waitExit(ms);
    } catch {
      this.child.kill('SIGKILL');
      await this.waitExit(2000).catch(() => {});
    }
  }
}

const started: TestDaemon[] = [];

/** Start a tsmpid on `host`:0; resolves once it printed its port and fingerprint. */
export async function startDaemon(o: DaemonOptions): Promise<TestDaemon> {
  assertLoopback(o.host);
  const base = o.reuse?.base ?? mkdtempSync(join(tmpdir(), 'tsmpid-test-'));
  const workdir = join(base, 'work');
  const args = [tsmpidJs, '--listen', `${o.host}:0`, '--authorized-keys', o.authorizedKeys, '--workdir', workdir, '--slots', String(o.slots ?? 2), ...(o.extra ?? [])];
  const child = spawn(process.execPath, args, { cwd: base, stdio: ['ignore', 'pipe', 'pipe'] });
  const d = new TestDaemon(o.host, base, workdir, child);
  started.push(d);
  await until(() => /host key fingerprint/.test(d.stdout) || !d.running, 10_000, `tsmpid on ${o.host} to start; stderr:\n${d.stderr}`);
  const m = /listening on (\S+):(\d+)\n/.exec(d.stdout);
  const f = /host key fingerprint (sha256:[0-9a-f]{64})/.exec(d.stdout);
  if (!d.running || !m || !f) throw new Error(`tsmpid on ${o.host} did not start:\nstdout:\n${d.stdout}\nstderr:\n${d.stderr}`);
  if (m[1] !== o.host) throw new Error(`tsmpid listens on ${m[1]}, not ${o.host}`);
  d.port = Number(m[2]);
  d.fingerprint = f[1]!;
  return d;
}

/** Stop every daemon started here and remove their folders (afterAll). */
export async function stopDaemons(): Promise<void> {
  const all = started.splice(0);
  await Promise.all(all.map((d) => d.kill('SIGTERM')));
  await Promise.all(all.map(async (d) => {
    await d.kill('SIGTERM');
    rmSync(d.base, { recursive: true, force: true });
  }));
}

export function writeHostfile(dir: string, lines: string[]): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `hostfile-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

// ---- a raw client ---------------------------------------------------------

export interface Closed {
  /** why our side saw the connection end (an error, or undefined for a clean end) */
  err: Error | undefined;
}

/**
 * A TLS connection to a daemon with the launcher's framing, recording every
 * message the daemon sends. It knows the protocol's steps but sends whatever
 * a test asks.
 */
export class RawClient {
  readonly messages: DaemonToLauncher[] = [];
  readonly data: { h: FrameHeader; payload: Buffer }[] = [];
  readonly closed: Promise<Closed>;
  isClosed = false;
  fileKey: Buffer | null = null;
  readonly conn: FramedConn;

  private constructor(readonly socket: tls.TLSSocket) {
    let done!: (c: Closed) => void;
    this.closed = new Promise((r) => (done = r));
    this.conn = new FramedConn(socket, CHUNK + 1024, 64 * 1024 * 1024, {
      control: (v) => this.messages.push(v as DaemonToLauncher),
      data: (h, payload) => this.data.push({ h, payload: Buffer.from(payload) }),
      close: (err) => {
        this.isClosed = true;
        done({ err });
      },
    });
  }

  static connect(host: string, port: number, ms = 5000): Promise<RawClient> {
    assertLoopback(host);
    return new Promise((resolve, reject) => {
      const sock = tls.connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`no TLS handshake with ${host}:${port} within ${ms} ms`));
      }, ms);
      sock.once('secureConnect', () => {
        clearTimeout(t);
        resolve(new RawClient(sock));
      });
      sock.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  /** The next message of kind `t` (looking at those already received too). */
  async next<T extends DaemonToLauncher['t']>(t: T, ms = 5000): Promise<Extract<DaemonToLauncher, { t: T }>> {
    let found: DaemonToLauncher | undefined;
    await until(() => (found = this.messages.find((m) => m.t === t)) !== undefined || this.isClosed, ms, `'${t}' from the daemon; got ${JSON.stringify(this.messages.map((m) => m.t))}`);
    found ??= this.messages.find((m) => m.t === t);
    if (!found) throw new Error(`the connection closed without '${t}'; got ${JSON.stringify(this.messages)}`);
    return found as Extract<DaemonToLauncher, { t: T }>;
  }

  /** The `refused` the daemon sent, after it closed the connection. */
  async refusal(ms = 5000): Promise<{ code: string; message: string }> {
    await this.waitClosed(ms);
    const r = this.messages.find((m) => m.t === 'refused') as { code: string; message: string } | undefined;
    if (!r) throw new Error(`the daemon closed without 'refused'; got ${JSON.stringify(this.messages)}`);
    return r;
  }

  async waitClosed(ms = 5000): Promise<Closed> {
    let t: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          t = setTimeout(() => reject(new Error(`the daemon did not close the connection within ${ms} ms; got ${JSON.stringify(this.messages.map((m) => m.t))}`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(t);
    }
  }

  /** Answer the challenge as an honest launcher with `id`; resolves on welcome. */
  async authenticate(id: Identity): Promise<void> {
    const ch = await this.next('challenge');
    const nonce = Buffer.from(ch.nonce, 'base64');
    const staging = stagingKeyPair();
    this.fileKey = deriveFileKey(staging.secretKey, Buffer.from(ch.staging, 'base64'), nonce);
    const sig = signChallenge(id.secretKey, nonce, tlsChannelBinding(this.socket));
    this.conn.sendControl({
      t: 'auth',
      key: Buffer.from(id.publicKey).toString('base64'),
      sig: Buffer.from(sig).toString('base64'),
      staging: Buffer.from(staging.publicKey).toString('base64'),
    });
    await this.next('welcome');
  }

  /** A sealed chunk of file `fileIndex` (optionally with one byte flipped after sealing). */
  sendChunk(fileIndex: number, chunkIndex: number, last: boolean, plain: Uint8Array, flip = -1): void {
    const sealed = sealChunk(this.fileKey!, fileIndex, chunkIndex, last, plain);
    if (flip >= 0) sealed[flip % sealed.length]! ^= 0x01;
    this.conn.sendData({ ctx: fileIndex, seq: chunkIndex, tag: last ? 1 : 0 }, sealed);
  }

  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A plain TCP connection (no TLS) that sends `bytes`: resolves with what came back once the daemon closed it. */
export function rawTcp(host: string, port: number, bytes: Buffer, ms = 5000): Promise<Buffer> {
  assertLoopback(host);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.connect({ host, port });
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the daemon did not close a garbage TCP connection within ${ms} ms`));
    }, ms);
    let connected = false;
    let error: Error | null = null;
    sock.on('connect', () => {
      connected = true;
      sock.write(bytes);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e) => (error = e));
    sock.on('close', () => {
      clearTimeout(t);
      if (connected) resolve(Buffer.concat(chunks));
      else reject(error ?? new Error(`cannot connect to ${host}:${port}`));
    });
  });
}
