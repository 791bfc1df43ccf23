/**
 * One progress bar for the whole job: the sum of every rank's reportProgress,
 * with rate and ETA. Redrawn in place (at most 10 times a second) when stderr is
 * a terminal; otherwise a plain line every few seconds when something changed.
 * Ranks that never report add nothing; a job that never reports draws nothing.
 */
import { formatDuration } from '../../runtime/format.js';
export interface ProgressOptions {
  tty: boolean;
  write(text: string): void;
  /** plain-line interval when not a terminal */
  lineEveryMs?: number;
  width?: number;
  now?: () => number;
}

export { formatDuration };

export class ProgressBar {
  private readonly ranks = new Map<number, { done: number; total: number }>();
  private readonly start: number;
  private lastDraw = -Infinity;
  private drawn = '';
  private lastLine = '';
  private timer: NodeJS.Timeout | null = null;
  private finished = false;
  private readonly now: () => number;

  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? (() => performance.now());
    this.start = this.now();
  }

  get active(): boolean {
    return this.ranks.size > 0;
  }

  update(rank: number, done: number, total: number): void {
    if (this.finished) return;
    this.ranks.set(rank, { done: Math.min(done, total), total });
    this.schedule();
  }

  totals(): { done: number; total: number } {
    let done = 0;
    let total = 0;
    for (const r of this.ranks.values()) {
      done += r.done;
      total += r.total;
    }
    return { done, total };
  }

  /** The status text, e.g. `[#####.....] 50% 500/1000 120/s ETA 4s`. */
  text(): string {
    const { done, total } = this.totals();
    const frac = total > 0 ? done / total : 0;
    const elapsed = (this.now() - this.start) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    const width = this.o.width ?? 30;
    const fill = Math.round(frac * width);
    const bar = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`;
    const rateText = rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
    return `${bar} ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${total} ${rateText}/s ETA ${done >= total ? '0s' : formatDuration(eta)}`;
  }

  private schedule(): void {
    const every = this.o.tty ? 100 : (this.o.lineEveryMs ?? 2000);
    const wait = this.lastDraw + every - this.now();
    if (wait <= 0) this.draw();
    else this.timer ??= setTimeout(() => {
      this.timer = null;
      this.draw();
    }, wait).unref();
  }

  private draw(): void {
    this.lastDraw = this.now();
    const text = this.text();
    if (this.o.tty) {
      this.drawn = text;
      this.o.write(`\r\x1b[K${text}`);
    } else if (text !== this.lastLine) {
      this.lastLine = text;
      this.o.write(`progress: ${text}\n`);
    }
  }

  /** Before other output goes to the terminal: take the bar off its line. */
  clear(): void {
    if (this.o.tty && this.drawn) this.o.write('\r\x1b[K');
  }

  /** After other output: put the bar back. */
  restore(): void {
    if (this.o.tty && this.drawn) this.o.write(this.drawn);
  }

  /** The job ended: draw the final state once, and end the line. */
  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.active || this.finished) return;
    this.finished = true;
    this.draw();
    if (this.o.tty) this.o.write('\n');
    this.drawn = '';
  }
}
