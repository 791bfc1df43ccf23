/**
 * One progress bar for a whole call, on stderr: done/total, rate and ETA.
 * Coalesced: redrawn in place at most 10 times a second on a terminal; when
 * stderr is not a terminal, a plain line at most every 2 seconds and one at the
 * end.
 */
import { formatDuration } from '../../runtime/format.js';

export interface BarOptions {
  /** e.g. `parallelApply` */
  label: string;
  total: number;
  /** `rows`, `columns`, `values`, `groups` */
  unit: string;
  tty?: boolean;
  write?: (text: string) => void;
  now?: () => number;
}

export { formatDuration };

function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

export class ProgressBar {
  private done = 0;
  private readonly start: number;
  private lastDraw = -Infinity;
  private lastLine = '';
  private timer: NodeJS.Timeout | null = null;
  private finished = false;
  private readonly tty: boolean;
  private readonly write: (text: string) => void;
  private readonly now: () => number;

  constructor(private readonly o: BarOptions) {
    this.tty = o.tty ?? !!process.stderr.isTTY;
    this.write = o.write ?? ((t) => void process.stderr.write(t));
    this.now = o.now ?? (() => performance.now());
    this.start = this.now();
    this.draw();
  }

  /** `done` items so far (monotonic). */
  update(done: number): void {
    if (this.finished || done <= this.done) return;
    this.done = Math.min(done, this.o.total);
    const every = this.tty ? 100 : 2000;
    const wait = this.lastDraw + every - this.now();
    if (wait <= 0) this.draw();
    else
      this.timer ??= setTimeout(() => {
        this.timer = null;
        if (!this.finished) this.draw();
      }, wait).unref();
  }

  /** `[#####.....]  50% 500/1000 rows 120k/s ETA 4s` */
  text(): string {
    const { total, label, unit } = this.o;
    const done = this.done;
    const frac = total > 0 ? done / total : 1;
    const elapsed = (this.now() - this.start) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = done >= total ? 0 : rate > 0 ? (total - done) / rate : Infinity;
    const width = 30;
    const fill = Math.round(frac * width);
    const bar = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`;
    return `${label} ${bar} ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${total} ${unit} ${formatCount(rate)}/s ETA ${formatDuration(eta)}`;
  }

  private draw(): void {
    this.lastDraw = this.now();
    const text = this.text();
    if (this.tty) this.write(`\r\x1b[K${text}`);
    else if (text !== this.lastLine) {
      this.lastLine = text;
      this.write(`${text}\n`);
    }
  }

  /** Draw the final state once and end the line (the call ended, well or not). */
  finish(): void {
    if (this.finished) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.draw();
    this.finished = true;
    if (this.tty) this.write('\n');
  }
}
