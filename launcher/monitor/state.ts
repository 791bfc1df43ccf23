/**
 * What the monitor knows: the MonitorFeed a job or pool writes into, kept as
 * aggregated state (a tile a rank or worker, counts of tasks, the last partial
 * results and output lines). The page gets `view(0)` once and then `view(rev)`
 * a few times a second: only what changed since, never one event per message.
 */
import type { BlockedOp, RankTraffic } from '../../runtime/wire/control.js';
import type { MonitorEnd, MonitorFeed, RankUpdate, TaskFailure, TaskPhase, WorkerUpdate } from './feed.js';
import { OutputTail, type OutputLine } from './tail.js';

export type MonitorKind = 'job' | 'pool';

export interface RankTile {
  rank: number;
  host: string;
  pid: number;
  phase: 'starting' | 'running' | 'exited';
  /** e.g. `recv(source=1, tag=7) on comm 0 for 4.9 s`; null: not blocked (or not sampled) */
  blocked: string | null;
  traffic: RankTraffic | null;
  code: number | null;
  signal: string | null;
  killed: boolean;
}

export interface WorkerTile {
  id: string;
  host: string;
  pid: number;
  phase: 'starting' | 'idle' | 'busy' | 'lost';
  task: number | null;
}

export interface PartialView {
  from: string;
  time: number;
  /** the value as JSON, cut at PARTIAL_CHARS */
  json: string;
}

export interface View {
  kind: MonitorKind;
  title: string;
  /** ms since the epoch */
  started: number;
  now: number;
  rev: number;
  ranks?: RankTile[];
  workers?: WorkerTile[];
  progress?: { done: number; total: number; rate: number; eta: number | null } | null;
  partials?: PartialView[];
  lines?: OutputLine[];
  chart?: { label: string; everyMs: number; points: number[] };
  tasks?: { counts: Record<TaskPhase, number>; rates: { done: number; failed: number } };
  failures?: TaskFailure[];
  end?: MonitorEnd;
}

const PARTIALS_KEPT = 20;
const PARTIAL_CHARS = 2000;
const FAILURES_KEPT = 20;
const CHART_POINTS = 120;
/** lines sent in one update at most */
const LINES_PER_VIEW = 2000;
/** task rates are over this window */
const RATE_WINDOW_MS = 5000;

export function describeBlocked(ops: BlockedOp[]): string | null {
  if (ops.length === 0) return null;
  return ops.map((o) => `${o.op} on comm ${o.comm} for ${o.seconds.toFixed(1)} s`).join('; ');
}

export class MonitorState implements MonitorFeed {
  private rev = 0;
  private readonly ranks = new Map<number, RankTile & { rev: number; last: string }>();
  private readonly workers = new Map<string, WorkerTile & { rev: number }>();
  private readonly sources = new Map<string, { done: number; total: number }>();
  private progressRev = 0;
  private progressStart = 0;
  private partials: PartialView[] = [];
  private partialsRev = 0;
  private readonly tail = new OutputTail(() => ++this.rev);
  private readonly live = new Map<number, TaskPhase>();
  private readonly counts: Record<TaskPhase, number> = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
  private tasksRev = 0;
  private failures: TaskFailure[] = [];
  private failuresRev = 0;
  private ended: MonitorEnd | null = null;
  private endedAt: number | null = null;
  private endRev = 0;
  private readonly points: number[] = [];
  private chartRev = 0;
  private lastCount: { at: number; n: number } | null = null;
  private readonly history: { at: number; done: number; failed: number }[] = [];
  private rates = { done: 0, failed: 0 };
  private isWatched = false;
  private readonly watchers = new Set<(w: boolean) => void>();
  readonly started = Date.now();

  constructor(
    readonly kind: MonitorKind,
    readonly title: string,
    /** the interval of `tick()`, for the chart's time axis */
    readonly tickMs = 250,
  ) {}

  // ---- MonitorFeed

  get watched(): boolean {
    return this.isWatched;
  }

  onWatch(cb: (watched: boolean) => void): () => void {
    this.watchers.add(cb);
    return () => this.watchers.delete(cb);
  }

  /** The server says whether a browser is attached. */
  setWatched(on: boolean): void {
    if (on === this.isWatched) return;
    this.isWatched = on;
    for (const cb of this.watchers) cb(on);
  }

  rank(rank: number, u: RankUpdate): void {
    let t = this.ranks.get(rank);
    if (!t) {
      t = { rank, host: '', pid: 0, phase: 'starting', blocked: null, traffic: null, code: null, signal: null, killed: false, rev: 0, last: '' };
      this.ranks.set(rank, t);
    }
    if (u.host !== undefined) t.host = u.host;
    if (u.pid !== undefined) t.pid = u.pid;
    // an exited rank stays exited (a late sample reply must not revive it)
    if (u.phase !== undefined && t.phase !== 'exited') t.phase = u.phase;
    if (u.blocked !== undefined) t.blocked = t.phase === 'exited' ? null : describeBlocked(u.blocked);
    if (u.phase === 'exited') t.blocked = null;
    if (u.traffic !== undefined) t.traffic = u.traffic;
    if (u.code !== undefined) t.code = u.code;
    if (u.signal !== undefined) t.signal = u.signal;
    if (u.killed !== undefined) t.killed = u.killed;
    // a sample that changes nothing is not sent again
    const now = JSON.stringify([t.host, t.pid, t.phase, t.blocked, t.traffic, t.code, t.signal, t.killed]);
    if (now !== t.last) {
      t.last = now;
      t.rev = ++this.rev;
    }
  }

  output(rank: number, stream: 1 | 2, chunk: Uint8Array): void {
    this.tail.push(rank, stream, chunk);
  }

  outputEnded(rank: number): void {
    this.tail.flush(rank);
  }

  progress(key: string, done: number, total: number): void {
    if (this.sources.size === 0) this.progressStart = Date.now();
    this.sources.set(key, { done: Math.min(done, total), total });
    this.progressRev = ++this.rev;
  }

  partial(from: string, value: unknown, time: number): void {
    let json: string;
    try {
      json = JSON.stringify(value) ?? 'undefined';
    } catch {
      json = String(value);
    }
    if (json.length > PARTIAL_CHARS) json = json.slice(0, PARTIAL_CHARS) + '…';
    this.partials.push({ from, time, json });
    if (this.partials.length > PARTIALS_KEPT) this.partials.shift();
    this.partialsRev = ++this.rev;
  }

  worker(id: string, u: WorkerUpdate): void {
    let w = this.workers.get(id);
    if (!w) {
      w = { id, host: '', pid: 0, phase: 'starting', task: null, rev: 0 };
      this.workers.set(id, w);
    }
    if (u.host !== undefined) w.host = u.host;
    if (u.pid !== undefined) w.pid = u.pid;
    if (u.phase !== undefined) w.phase = u.phase;
    if (u.task !== undefined) w.task = u.task;
    w.rev = ++this.rev;
  }

  task(id: number, phase: TaskPhase): void {
    const before = this.live.get(id);
    if (before !== undefined) this.counts[before]--;
    this.counts[phase]++;
    if (phase === 'queued' || phase === 'running') this.live.set(id, phase);
    else this.live.delete(id);
    this.tasksRev = ++this.rev;
  }

  failure(f: TaskFailure): void {
    this.failures.push(f);
    if (this.failures.length > FAILURES_KEPT) this.failures.shift();
    this.failuresRev = ++this.rev;
  }

  end(e: MonitorEnd): void {
    if (this.ended) return;
    this.ended = e;
    this.endedAt = Date.now();
    this.endRev = ++this.rev;
  }

  // ---- for the server

  get hasEnded(): boolean {
    return this.ended !== null;
  }

  /** A few times a second while watched: the chart's next point and the rates. */
  tick(now = Date.now()): void {
    const n = this.kind === 'job' ? this.messagesSent() : this.counts.done + this.counts.failed;
    if (this.lastCount) {
      const dt = (now - this.lastCount.at) / 1000;
      this.points.push(dt > 0 ? Math.max(0, n - this.lastCount.n) / dt : 0);
      if (this.points.length > CHART_POINTS) this.points.shift();
      this.chartRev = ++this.rev;
    }
    this.lastCount = { at: now, n };
    if (this.kind === 'pool') {
      this.history.push({ at: now, done: this.counts.done, failed: this.counts.failed });
      while (this.history.length > 1 && now - this.history[0]!.at > RATE_WINDOW_MS) this.history.shift();
      const h0 = this.history[0]!;
      const dt = (now - h0.at) / 1000;
      const rates = dt > 0 ? { done: (this.counts.done - h0.done) / dt, failed: (this.counts.failed - h0.failed) / dt } : { done: 0, failed: 0 };
      if (rates.done !== this.rates.done || rates.failed !== this.rates.failed) {
        this.rates = rates;
        this.tasksRev = ++this.rev;
      }
    }
  }

  private messagesSent(): number {
    let n = 0;
    for (const t of this.ranks.values()) n += t.traffic?.messagesSent ?? 0;
    return n;
  }

  private progressView(now: number): View['progress'] {
    if (this.sources.size === 0) return null;
    let done = 0;
    let total = 0;
    for (const s of this.sources.values()) {
      done += s.done;
      total += s.total;
    }
    const elapsed = ((this.endedAt ?? now) - this.progressStart) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = done >= total ? 0 : rate > 0 ? (total - done) / rate : null;
    return { done, total, rate, eta };
  }

  /** What changed after revision `since` (0: everything). */
  view(since: number, now = Date.now()): View {
    const v: View = { kind: this.kind, title: this.title, started: this.started, now, rev: this.rev };
    const ranks = [...this.ranks.values()].filter((t) => t.rev > since);
    if (ranks.length) v.ranks = ranks.map(({ rev: _r, last: _l, ...tile }) => tile);
    const workers = [...this.workers.values()].filter((w) => w.rev > since);
    if (workers.length) v.workers = workers.map(({ rev: _r, ...tile }) => tile);
    // rate and ETA move with time: sent at every update while a bar exists
    if (this.progressRev > since || (this.sources.size && !this.ended)) v.progress = this.progressView(now);
    if (this.partialsRev > since) v.partials = this.partials;
    const lines = this.tail.since(since, LINES_PER_VIEW);
    if (lines.length) v.lines = lines;
    if (this.chartRev > since) v.chart = { label: this.kind === 'job' ? 'messages/s' : 'tasks/s', everyMs: this.tickMs, points: this.points };
    if (this.tasksRev > since) v.tasks = { counts: { ...this.counts }, rates: this.rates };
    if (this.failuresRev > since) v.failures = this.failures;
    if (this.ended && this.endRev > since) v.end = this.ended;
    return v;
  }

  /** True when `view(since)` would carry something besides the clock. */
  changedSince(since: number): boolean {
    return this.rev > since || (this.sources.size > 0 && !this.ended);
  }
}
