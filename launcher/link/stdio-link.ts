/**
 * One duplex stream over a pair of pipes (an ssh client's stdin and stdout, or
 * an agent's own stdin and stdout), so the framed protocol runs over an SSH
 * channel as over a socket. The end of the readable side is the end of the
 * link ('close'); ending the link ends the writable side (EOF to the peer).
 */
import { Duplex } from 'node:stream';

/**
 * What an agent on stdout writes before its first frame: a remote shell's
 * startup files may print to the same stdout first (a banner, a `.bashrc`
 * echo), and the launcher skips all of that up to this mark.
 */
export const AGENT_MARK = Buffer.from('\ntsmpi-agent-v1\n');
/** Bytes of such noise tolerated before the mark. */
const MAX_NOISE = 64 * 1024;

/** Shown when a peer printed something else than the mark first. */
function noiseText(b: Buffer): string {
  const t = b.toString('utf8').replace(/[^\x20-\x7e\n]/g, '?').trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}

/**
 * `skipToMark`: drop what comes before AGENT_MARK (the launcher's side of an
 * ssh channel); the link fails when the mark does not come within 64 KiB.
 */
export function stdioLink(readable: NodeJS.ReadableStream, writable: NodeJS.WritableStream, o: { skipToMark?: boolean } = {}): Duplex {
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
  let before: Buffer | null = o.skipToMark ? Buffer.alloc(0) : null;
  readable.on('data', (c: Buffer) => {
    if (before) {
      before = Buffer.concat([before, c]);
      const at = before.indexOf(AGENT_MARK);
      if (at < 0) {
        if (before.length > MAX_NOISE) link.destroy(new Error(`the far side printed ${before.length} bytes and no agent started: ${noiseText(before)}`));
        return;
      }
      c = before.subarray(at + AGENT_MARK.length);
      before = null;
      if (c.length === 0) return;
    }
    if (!link.push(c)) readable.pause();
  });
  // Everything read is delivered before the link closes.
  let eof = false;
  const ended = () => {
    if (eof || link.destroyed) return;
    eof = true;
    // everything before the mark is what the far side said instead of starting
    if (before && before.length > 0) link.destroy(new Error(`the far side printed, and no agent started: ${noiseText(before)}`));
    else link.push(null);
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
