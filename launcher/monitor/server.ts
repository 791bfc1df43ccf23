/**
 * The monitor's HTTP server (node:http only): the page and its assets, and one
 * Server-Sent Events stream a browser that pushes the state a few times a
 * second. Every request passes guard.ts first; nothing is ever logged with the
 * token in it. The tick timer runs only while a page is attached.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { TsmpiError } from '../../runtime/errors.js';
import type { MonitorAddress } from './address.js';
import { allowedHosts, judge, newToken } from './guard.js';
import type { MonitorState } from './state.js';
import { CLIENT_JS } from './assets/client.js';
import { PAGE_HTML } from './assets/page.js';
import { STYLE_CSS } from './assets/style.js';

/** at most this many pages at once */
const MAX_STREAMS = 16;
/** an SSE comment this often keeps proxies and the browser from timing out */
const HEARTBEAT_MS = 15_000;

const SECURITY_HEADERS = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'Cross-Origin-Resource-Policy': 'same-origin',
};

interface Stream {
  res: ServerResponse;
  /** its last write did not drain: it gets a whole view once it does */
  stale: boolean;
}

export class MonitorServer {
  readonly token = newToken();
  private readonly streams = new Set<Stream>();
  private readonly sockets = new Set<Socket>();
  private allowed = new Set<string>();
  private sentRev = 0;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private port = 0;
  private closed = false;

  private constructor(
    private readonly server: Server,
    private readonly state: MonitorState,
    private readonly address: MonitorAddress,
  ) {}

  static async start(address: MonitorAddress, state: MonitorState): Promise<MonitorServer> {
    const server = createServer();
    const m = new MonitorServer(server, state, address);
    server.on('request', (req, res) => m.serve(req, res));
    server.on('connection', (s) => {
      // an attached page never keeps the process alive either
      s.unref();
      m.sockets.add(s);
      s.on('close', () => m.sockets.delete(s));
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new TsmpiError('ERR_ARG', `--monitor: cannot listen on ${address.host}:${address.port}: ${e.code ?? e.message}`, { cause: e })),
      );
      server.listen(address.port, address.host, () => resolve());
    });
    m.port = (server.address() as AddressInfo).port;
    m.allowed = allowedHosts(address.host, m.port);
    // the monitor never keeps the launcher alive
    server.unref();
    return m;
  }

  /** The page's address, with the token: print it once, log it nowhere else. */
  get url(): string {
    const h = this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host;
    return `http://${h}:${this.port}/?token=${this.token}`;
  }

  get listeningPort(): number {
    return this.port;
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    let path = '/';
    let token: string | null = null;
    try {
      const u = new URL(req.url ?? '/', 'http://monitor');
      path = u.pathname;
      token = u.searchParams.get('token');
    } catch {
      // a malformed target: no token, refused below
    }
    const h = req.headers;
    const verdict = judge(
      { method: req.method, host: h.host, origin: h.origin, fetchSite: h['sec-fetch-site'] as string | undefined, token },
      this.allowed,
      this.token,
    );
    if (!verdict.ok) {
      const extra: Record<string, string> = verdict.status === 405 ? { Allow: 'GET' } : {};
      res.writeHead(verdict.status, { ...SECURITY_HEADERS, ...extra, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(verdict.reason + '\n');
      return;
    }
    switch (path) {
      case '/':
        return this.asset(res, 'text/html; charset=utf-8', PAGE_HTML.replaceAll('__TOKEN__', encodeURIComponent(this.token)));
      case '/app.js':
        return this.asset(res, 'text/javascript; charset=utf-8', CLIENT_JS);
      case '/app.css':
        return this.asset(res, 'text/css; charset=utf-8', STYLE_CSS);
      case '/events':
        return this.openStream(res);
      default:
        res.writeHead(404, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('not found\n');
    }
  }

  private asset(res: ServerResponse, type: string, body: string): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  private openStream(res: ServerResponse): void {
    if (this.streams.size >= MAX_STREAMS || this.closed) {
      res.writeHead(503, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(this.closed ? 'the monitor is closing\n' : `at most ${MAX_STREAMS} pages at once\n`);
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    res.socket?.setNoDelay(true);
    const s: Stream = { res, stale: false };
    this.streams.add(s);
    res.on('close', () => {
      this.streams.delete(s);
      if (this.streams.size === 0) this.idle();
    });
    this.state.tick();
    this.write(s, 'retry: 1000\n');
    this.sendWhole(s);
    if (this.streams.size === 1) this.active();
  }

  private active(): void {
    this.state.setWatched(true);
    this.timer = setInterval(() => this.push(), this.state.tickMs);
    this.heartbeat = setInterval(() => {
      for (const s of this.streams) this.write(s, ': keep-alive\n\n');
    }, HEARTBEAT_MS);
    this.timer.unref();
    this.heartbeat.unref();
  }

  private idle(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.timer = this.heartbeat = null;
    this.state.setWatched(false);
  }

  private sendWhole(s: Stream): void {
    const v = this.state.view(0);
    this.write(s, `event: view\ndata: ${JSON.stringify(v)}\n\n`);
  }

  private write(s: Stream, text: string): void {
    if (s.stale) return;
    if (!s.res.write(text)) {
      // a slow page: skip updates until it drains, then send it everything anew
      s.stale = true;
      s.res.once('drain', () => {
        s.stale = false;
        this.sendWhole(s);
      });
    }
  }

  /** One update for every page: what changed since the last one. */
  push(): void {
    this.state.tick();
    if (!this.state.changedSince(this.sentRev) && this.sentRev !== 0) return;
    const v = this.state.view(this.sentRev);
    this.sentRev = v.rev;
    const text = `event: view\ndata: ${JSON.stringify(v)}\n\n`;
    for (const s of this.streams) this.write(s, text);
  }

  /** Send the last state to every page, end the streams, stop listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.push();
    for (const s of this.streams) s.res.end();
    this.idle();
    await new Promise<void>((resolve) => {
      // Not unref'd: the page's sockets may be unref'd, and the launcher's last
      // `await` must not be left without anything keeping the process alive (exit 13).
      const t = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 500);
      this.server.close(() => {
        clearTimeout(t);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }
}
