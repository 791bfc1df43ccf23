/**
 * One duplex stream over a pair of pipes (an ssh client's stdin and stdout, or
 * an agent's own stdin and stdout), so the framed protocol runs over an SSH
 * channel as over a socket. The end of the readable side is the end of the
 * link ('close'); ending the link ends the writable side (EOF to the peer).
 */
import { Duplex } from 'node:stream';

export function stdioLink(readable: NodeJS.ReadableStream, writable: NodeJS.WritableStream): Duplex {
  const link = new Duplex({
    read() {
      readable.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      writable.write(chunk, (err) => cb(err ?? null));
    },
    final(cb) {
      writable.end(() => cb());
    },
    destroy(err, cb) {
      readable.removeAllListeners('data');
      (writable as NodeJS.WritableStream & { destroy?: () => void }).destroy?.();
      cb(err);
    },
  });
  readable.on('data', (c: Buffer) => {
    if (!link.push(c)) readable.pause();
  });
  // Everything read is delivered before the link closes.
  let eof = false;
  const ended = () => {
    if (eof || link.destroyed) return;
    eof = true;
    link.push(null);
  };
  link.once('end', () => link.destroy());
  readable.on('end', ended);
  readable.on('close', () => {
    ended();
    // a consumer that is not reading must still see the link close
    setTimeout(() => link.destroy(), 1000).unref();
  });
  readable.on('error', (e: Error) => link.destroy(e));
  writable.on('error', (e: Error) => link.destroy(e));
  return link;
}
