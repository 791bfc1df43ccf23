/**
 * Transport over Node's `net`: Unix domain sockets, Windows named pipes and TCP.
 */
import * as net from 'node:net';
import type * as Tls from 'node:tls';
import { TsmpiError } from '../errors.js';
import type { Link, Listener, Transport } from './transport.js';

/** TLS and pinning are loaded only by jobs that span hosts (they cost every rank start-up time). */
let tlsParts: Promise<{ tls: typeof Tls; peerPin: (s: Tls.TLSSocket) => string | null }> | null = null;
function loadTls() {
  tlsParts ??= Promise.all([import('node:tls'), import('./pin.js')]).then(([tls, pin]) => ({ tls, peerPin: pin.peerPin }));
  return tlsParts;
}

/** A job's TLS credential: every rank holds it and accepts only peers that hold it too. */
export interface TlsCredential {
  key: string;
  cert: string;
  /** the pin of `cert` ('sha256:…') */
  pin: string;
}

export function parseAddress(address: string): { path: string } | { host: string; port: number } {
  if (address.startsWith('unix:')) return { path: address.slice(5) };
  if (address.startsWith('pipe:')) return { path: address.slice(5) };
  if (address.startsWith('tcp:') || address.startsWith('tls:')) {
    const rest = address.slice(4);
    const i = rest.lastIndexOf(':');
    const host = rest.slice(0, i).replace(/^\[(.*)\]$/, '$1');
    const port = Number(rest.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new TsmpiError('ERR_ARG', `bad TCP address ${JSON.stringify(address)}`);
    }
    return { host, port };
  }
  throw new TsmpiError('ERR_ARG', `unknown address scheme in ${JSON.stringify(address)}`);
}

export class SocketLink implements Link {
  constructor(readonly socket: net.Socket) {
    socket.setNoDelay?.(true);
  }
  write(chunk: Uint8Array, done?: (err?: Error | null) => void): boolean {
    return this.socket.write(chunk, done);
  }
  writeMany(chunks: Uint8Array[], done?: (err?: Error | null) => void): boolean {
    const s = this.socket;
    s.cork();
    const last = chunks.length - 1;
    let ok = true;
    for (let i = 0; i < last; i++) ok = s.write(chunks[i]!) && ok;
    ok = s.write(chunks[last]!, done) && ok;
    s.uncork();
    return ok;
  }
  onData(cb: (chunk: Buffer) => void): void {
    this.socket.on('data', cb);
  }
  onClose(cb: (err?: Error) => void): void {
    let error: Error | undefined;
    this.socket.on('error', (e) => {
      error = e;
    });
    this.socket.on('close', () => cb(error));
  }
  onDrain(cb: () => void): void {
    this.socket.on('drain', cb);
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
  ref(on: boolean): void {
    if (on) this.socket.ref();
    else this.socket.unref();
  }
  close(): void {
    this.socket.end();
  }
  destroy(err?: Error): void {
    this.socket.destroy(err);
  }
}

class SocketListener implements Listener {
  private closed = false;
  /** Connections that arrive before anyone asked for them wait here (their data stays unread). */
  private early: net.Socket[] | null = [];
  private handler: ((link: Link) => void) | null = null;

  constructor(
    readonly address: string,
    private readonly server: net.Server,
    secure: TlsCredential | null,
    peerPin: ((s: Tls.TLSSocket) => string | null) | null,
  ) {
    server.on(secure ? 'secureConnection' : 'connection', (s: net.Socket) => {
      // Only holders of the job credential get past a TLS handshake.
      if (secure && peerPin!(s as Tls.TLSSocket) !== secure.pin) {
        s.destroy();
        return;
      }
      if (this.handler) this.handler(new SocketLink(s));
      else this.early!.push(s);
    });
  }
  onLink(cb: (link: Link) => void): void {
    this.handler = cb;
    const early = this.early ?? [];
    this.early = null;
    for (const s of early) cb(new SocketLink(s));
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
  }
}

/**
 * Unix sockets, named pipes and TCP; with a credential, also `tls:` addresses
 * (TLS 1.3, both sides present the job certificate and check the other's pin).
 */
export function makeSocketTransport(credential: TlsCredential | null = null): Transport {
  return {
    listen: (address) => listen(address, credential),
    connect: (address, timeoutMs) => connect(address, timeoutMs, credential),
  };
}

export const socketTransport: Transport = makeSocketTransport(null);

function needCredential(address: string, credential: TlsCredential | null): TlsCredential {
  if (!credential) throw new TsmpiError('ERR_ARG', `${address} needs the job's TLS credential, which this process does not have`);
  return credential;
}

async function listen(address: string, credential: TlsCredential | null): Promise<Listener> {
  const where = parseAddress(address);
  const secure = address.startsWith('tls:');
  const c = secure ? needCredential(address, credential) : null;
  const t = c ? await loadTls() : null;
  return new Promise((resolve, reject) => {
    let server: net.Server;
    if (c && t) {
      server = t.tls.createServer({ key: c.key, cert: c.cert, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3', noDelay: true });
      server.on('tlsClientError', () => {});
    } else {
      server = net.createServer({ noDelay: true });
    }
    server.once('error', (e) => reject(new TsmpiError('ERR_ARG', `cannot listen on ${address}: ${e.message}`, { cause: e })));
    const ready = () => {
      server.unref();
      let actual = address;
      const a = server.address();
      if (a && typeof a === 'object') actual = `${secure ? 'tls' : 'tcp'}:${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
      resolve(new SocketListener(actual, server, c, t?.peerPin ?? null));
    };
    if ('path' in where) server.listen(where.path, ready);
    else server.listen(where.port, where.host, ready);
  });
}

async function connect(address: string, timeoutMs: number, credential: TlsCredential | null): Promise<Link> {
  const where = parseAddress(address);
  const secure = address.startsWith('tls:');
  const t = secure ? await loadTls() : null;
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    if (t && 'host' in where) {
      const c = needCredential(address, credential);
      const peerPin = t.peerPin;
      const s = t.tls.connect({ host: where.host, port: where.port, key: c.key, cert: c.cert, rejectUnauthorized: false, minVersion: 'TLSv1.3', servername: undefined as unknown as string });
      socket = s;
      s.once('secureConnect', () => {
        if (peerPin(s) !== c.pin) {
          s.destroy(new Error(`the peer at ${address} does not hold this job's credential`));
          return;
        }
        s.emit('tsmpi:ready');
      });
    } else {
      socket = 'path' in where ? net.connect(where.path) : net.connect(where.port, where.host);
      socket.once('connect', () => socket.emit('tsmpi:ready'));
    }
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TsmpiError('ERR_TIMEOUT', `connecting to ${address} took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('tsmpi:ready', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new SocketLink(socket));
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(new TsmpiError('ERR_PEER_LOST', `cannot connect to ${address}: ${e.message}`, { cause: e }));
    });
  });
}
