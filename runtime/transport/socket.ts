/**
 * Transport over Node's `net`: Unix domain sockets, Windows named pipes and TCP.
 */
import * as net from 'node:net';
import { TsmpiError } from '../errors.js';
import type { Link, Listener, Transport } from './transport.js';

export function parseAddress(address: string): { path: string } | { host: string; port: number } {
  if (address.startsWith('unix:')) return { path: address.slice(5) };
  if (address.startsWith('pipe:')) return { path: address.slice(5) };
  if (address.startsWith('tcp:')) {
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
  /** Connections that arrive before anyone asked for them wait here (their data stays unread). */
  private early: net.Socket[] | null = [];
  private handler: ((link: Link) => void) | null = null;

  constructor(
    readonly address: string,
    private readonly server: net.Server,
  ) {
    server.on('connection', (s) => {
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
    this.server.close();
  }
}

export const socketTransport: Transport = {
  listen(address: string): Promise<Listener> {
    const where = parseAddress(address);
    return new Promise((resolve, reject) => {
      const server = net.createServer({ noDelay: true });
      server.once('error', (e) => reject(new TsmpiError('ERR_ARG', `cannot listen on ${address}: ${e.message}`, { cause: e })));
      const ready = () => {
        server.unref();
        let actual = address;
        const a = server.address();
        if (a && typeof a === 'object') actual = `tcp:${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
        resolve(new SocketListener(actual, server));
      };
      if ('path' in where) server.listen(where.path, ready);
      else server.listen(where.port, where.host, ready);
    });
  },

  connect(address: string, timeoutMs: number): Promise<Link> {
    const where = parseAddress(address);
    return new Promise((resolve, reject) => {
      const socket = 'path' in where ? net.connect(where.path) : net.connect(where.port, where.host);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TsmpiError('ERR_TIMEOUT', `connecting to ${address} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new SocketLink(socket));
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new TsmpiError('ERR_PEER_LOST', `cannot connect to ${address}: ${e.message}`, { cause: e }));
      });
    });
  },
};
