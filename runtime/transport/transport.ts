/**
 * The one interface between the rank-side core and sockets. The core never
 * imports `net` or `tls`; it sees links (ordered, reliable byte streams) and
 * listeners, named by address strings:
 *   unix:/path/to.sock    a Unix domain socket
 *   pipe:\\.\pipe\name    a Windows named pipe
 *   tcp:host:port         TCP (loopback or cross-host)
 */
export interface Link {
  /** Chunks given to `onData` are valid only during the callback (views of shared memory). */
  readonly volatileChunks?: boolean;
  /** Queue bytes; `done` runs once they left this process (or failed). Returns false under backpressure. */
  write(chunk: Uint8Array, done?: (err?: Error | null) => void): boolean;
  /**
   * Optional: copy `chunk` out now, whole, ahead of nothing queued, or return
   * false having written nothing (then `write` it). The caller may reuse `chunk` at once.
   */
  writeNow?(chunk: Uint8Array): boolean;
  /** Several chunks as one write, in order. */
  writeMany(chunks: Uint8Array[], done?: (err?: Error | null) => void): boolean;
  /**
   * `cb` may return how many bytes of `chunk` it took: a link with
   * `volatileChunks` offers the rest again later (other links ignore it).
   */
  onData(cb: (chunk: Buffer) => number | void): void;
  /** Runs once, after the last data: `err` is undefined for a clean end of stream. */
  onClose(cb: (err?: Error) => void): void;
  /** Runs when a write that returned false has drained. */
  onDrain(cb: () => void): void;
  pause(): void;
  resume(): void;
  /** Whether the link keeps the process alive. */
  ref(on: boolean): void;
  close(): void;
  destroy(err?: Error): void;
}

export interface Listener {
  readonly address: string;
  /** Hand every accepted link to `cb`; links accepted before this call wait, unread, until it. */
  onLink(cb: (link: Link) => void): void;
  close(): void;
}

export interface Transport {
  listen(address: string): Promise<Listener>;
  connect(address: string, timeoutMs: number): Promise<Link>;
}
