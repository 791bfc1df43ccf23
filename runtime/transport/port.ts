/**
 * A link over a worker_threads MessagePort: the control channel between the
 * launcher and its thread ranks (`--threads`). Unlike a socket, a port delivers
 * every message its peer posted before the peer's thread ended, and only then
 * closes; a write to an ended peer is dropped without touching what is unread.
 * (A Unix socket written to after its peer closed fails with EPIPE, and Node
 * then discards the bytes still waiting to be read: a rank's last stats.)
 */
import type { MessagePort } from 'node:worker_threads';
import type { Link, Listener } from './transport.js';

/** The address of a launcher reached through a port handed over at thread start. */
export const PORT_ADDRESS = 'port:launcher';
/** The workerData key under which a thread rank finds that port. */
export const CONTROL_PORT_WORKER_DATA = 'tsmpiControl';

export class PortLink implements Link {
  private closed = false;
  private readonly closeCbs: ((err?: Error) => void)[] = [];

  constructor(private readonly port: MessagePort) {
    port.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      for (const cb of this.closeCbs.splice(0)) cb();
    });
  }

  write(chunk: Uint8Array, done?: (err?: Error | null) => void): boolean {
    // A copy of just this view: cloning a pooled Buffer would send its whole slab.
    if (!this.closed) this.port.postMessage(chunk.slice());
    if (done) queueMicrotask(() => done(null));
    return true;
  }

  writeMany(chunks: Uint8Array[], done?: (err?: Error | null) => void): boolean {
    for (const c of chunks) this.write(c);
    if (done) queueMicrotask(() => done(null));
    return true;
  }

  onData(cb: (chunk: Buffer) => void): void {
    this.port.on('message', (m: unknown) => {
      if (m instanceof Uint8Array) cb(Buffer.from(m.buffer, m.byteOffset, m.byteLength));
    });
  }

  onClose(cb: (err?: Error) => void): void {
    this.closeCbs.push(cb);
  }

  onDrain(_cb: () => void): void {}
  pause(): void {}
  resume(): void {}

  ref(on: boolean): void {
    if (on) this.port.ref();
    else this.port.unref();
  }

  close(): void {
    this.port.close();
  }

  destroy(): void {
    this.port.close();
  }
}

/** The launcher's side: every port handed to a thread rank becomes one accepted link. */
export class PortListener implements Listener {
  readonly address = PORT_ADDRESS;
  private handler: ((link: Link) => void) | null = null;
  private early: Link[] = [];

  accept(port: MessagePort): void {
    const link = new PortLink(port);
    if (this.handler) this.handler(link);
    else this.early.push(link);
  }

  onLink(cb: (link: Link) => void): void {
    this.handler = cb;
    for (const l of this.early.splice(0)) cb(l);
  }

  close(): void {}
}
