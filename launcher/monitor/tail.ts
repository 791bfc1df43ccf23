/**
 * The last lines of every rank's output, for the page's output panel: a ring
 * per rank, each line numbered (`seq`) so a page is sent only lines it lacks.
 */
import { LineForwarder } from '../job/output.js';

export interface OutputLine {
  seq: number;
  rank: number;
  stream: 1 | 2;
  text: string;
}

/** lines kept per rank */
export const TAIL_LINES = 200;
/** longer lines are cut */
const LINE_CHARS = 2000;

export class OutputTail {
  private readonly rings = new Map<number, OutputLine[]>();
  private readonly splitters = new Map<string, LineForwarder>();

  /** `next()` numbers each line (it shares the monitor's revision counter). */
  constructor(private readonly next: () => number) {}

  push(rank: number, stream: 1 | 2, chunk: Uint8Array): void {
    const key = `${rank}:${stream}`;
    let s = this.splitters.get(key);
    if (!s) {
      s = new LineForwarder((body) => this.add(rank, stream, body), '');
      this.splitters.set(key, s);
    }
    s.push(chunk);
  }

  /** The end of the stream: a last line without a newline is kept too. */
  flush(rank: number): void {
    for (const stream of [1, 2] as const) this.splitters.get(`${rank}:${stream}`)?.flush();
  }

  private add(rank: number, stream: 1 | 2, body: string): void {
    let ring = this.rings.get(rank);
    if (!ring) this.rings.set(rank, (ring = []));
    const lines = body.split('\n');
    if (lines.at(-1) === '') lines.pop();
    for (const l of lines.slice(-TAIL_LINES)) {
      ring.push({ seq: this.next(), rank, stream, text: l.length > LINE_CHARS ? l.slice(0, LINE_CHARS) + '…' : l });
    }
    if (ring.length > TAIL_LINES) ring.splice(0, ring.length - TAIL_LINES);
  }

  /** Lines numbered after `since`, oldest first, at most `max` (the newest). */
  since(since: number, max: number): OutputLine[] {
    const out: OutputLine[] = [];
    for (const ring of this.rings.values()) {
      for (let i = ring.length - 1; i >= 0 && ring[i]!.seq > since; i--) out.push(ring[i]!);
    }
    out.sort((a, b) => a.seq - b.seq);
    return out.length > max ? out.slice(-max) : out;
  }
}
