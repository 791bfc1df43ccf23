/**
 * The pool's engine: a queue of units (a call, a map batch, a program), the
 * workers (channels), and the rules between them. A worker runs one unit at a
 * time; map batches are pipelined two deep so a worker never waits for its
 * next batch. A lost worker fails exactly the unit it was running (or runs it
 * again elsewhere, `retries` times); units queued behind it go back to the
 * queue. Lost local workers are replaced.
 */
import { TsmpiError } from '../runtime/errors.js';
import { reviveReport } from '../runtime/fn/remote-error.js';
import type { Channel } from './channel.js';
import type { FailReport, FnDef, FromWorker, ToWorker } from './messages.js';
import type { PoolObserver } from './observer.js';

export type FutureState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** A function the workers keep, defined once per worker. */
export interface FnHandle {
  id: number;
  /** what the local workers get, and what remote ones get */
  local: FnDef;
  remote: FnDef;
  /** for messages */
  name: string;
}

export interface Unit {
  id: number;
  kind: 'run' | 'batch' | 'exec';
  fn: FnHandle | null;
  /** the message, without fn definitions */
  msg: ToWorker;
  /** items (a batch) */
  size: number;
  state: FutureState;
  attempts: number;
  channel: Slot | null;
  host: string | null;
  timer: NodeJS.Timeout | null;
  /** settle once: value or error */
  settle(err: Error | null, value: unknown, ms: number): void;
  onPartial?(value: unknown): void;
  onProgress?(done: number, total: number): void;
  /** label for errors, e.g. `task #3 (score)` */
  label: string;
  /** may be sent to a busy worker, behind its running unit, as map batches are (tsmpi/dataframe's chunks) */
  pipelined?: boolean;
}

const pipelines = (u: Unit) => u.kind === 'batch' || u.pipelined === true;

/** Supplies units lazily (a map's batches). */
export interface Feeder {
  /** the next unit, or null (none now) */
  take(): Unit | null;
  readonly exhausted: boolean;
}

interface Slot {
  /** for the live view */
  key: string;
  ch: Channel;
  ready: boolean;
  dead: boolean;
  pid: number;
  defined: Set<number>;
  inflight: Unit[];
}

export interface EngineOptions {
  retries: number;
  taskTimeout: number | null;
  /** a new local worker (replacement or first start); null when the pool has none */
  spawnLocal: (() => Promise<Channel>) | null;
  /** called when nothing is left to run (close waits on it) */
  onIdle(): void;
  /** a worker was lost (after the engine dealt with its tasks); `ours`: the pool ended it */
  onLost?(ch: Channel, ours: boolean): void;
}

let slotKeys = 0;

/** Consecutive local workers dying before they were ready: stop replacing. */
const MAX_START_FAILURES = 3;

export class Engine {
  private readonly slots: Slot[] = [];
  private readonly queue: Unit[] = [];
  private readonly feeders: Feeder[] = [];
  private starting = 0;
  private startFailures = 0;
  /** no worker will ever come: why */
  private noWorkers: string | null = null;
  private stopped = false;
  private pumping = false;
  /** whether the workers keep this process alive: while there is work */
  private refd = true;

  /** the live view, once it is up (the `monitor` option) */
  observer: PoolObserver | null = null;

  constructor(private readonly o: EngineOptions) {}

  /** Live workers (ready or starting). */
  get workerCount(): number {
    return this.slots.filter((s) => !s.dead).length + this.starting;
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.feeders.length === 0 && this.slots.every((s) => s.inflight.length === 0);
  }

  /** Live workers' process ids, and their hosts. */
  workers(): { pid: number; host: string }[] {
    return this.slots.filter((s) => !s.dead && s.ready).map((s) => ({ pid: s.pid, host: s.ch.host }));
  }

  /** Workers that are being started elsewhere (a remote host): counted as coming until they are added. */
  expect(starting: Promise<Channel[]>, what: string): Promise<void> {
    this.starting++;
    return starting.then(
      (chs) => {
        this.starting--;
        for (const c of chs) this.add(c);
        this.pump();
      },
      (e: Error) => {
        this.starting--;
        this.checkStarved(`${what}: ${e.message}`);
        this.pump();
        throw e;
      },
    );
  }

  /** A worker came up (or is coming): start using it once it says ready. */
  add(ch: Channel): void {
    if (this.stopped) {
      ch.kill();
      return;
    }
    const slot: Slot = { key: `w${++slotKeys}`, ch, ready: false, dead: false, pid: 0, defined: new Set(), inflight: [] };
    this.observer?.worker(slot.key, { host: ch.host, phase: 'starting' });
    this.slots.push(slot);
    ch.ref(this.refd);
    ch.onMessage = (m) => this.onMessage(slot, m);
    ch.onLost = (why, ours) => this.onLost(slot, why, ours);
  }

  /** Start a local worker through `spawnLocal`. */
  spawn(): void {
    const make = this.o.spawnLocal;
    if (!make || this.stopped) return;
    this.starting++;
    make().then(
      (ch) => {
        this.starting--;
        if (this.stopped) ch.kill();
        else this.add(ch);
      },
      (e: Error) => {
        this.starting--;
        this.startFailed(`a local worker could not start: ${e.message}`);
      },
    );
  }

  enqueue(u: Unit, front = false): void {
    if (this.stopped) {
      u.settle(new TsmpiError('ERR_CANCELLED', `${u.label} was cancelled: the pool was terminated`), undefined, 0);
      return;
    }
    if (front) this.queue.unshift(u);
    else this.queue.push(u);
    this.observer?.task(u.id, 'queued');
    this.setRef(true);
    this.pump();
  }

  addFeeder(f: Feeder): void {
    this.feeders.push(f);
    this.setRef(true);
    this.pump();
  }

  removeFeeder(f: Feeder): void {
    const i = this.feeders.indexOf(f);
    if (i >= 0) this.feeders.splice(i, 1);
    this.checkIdle();
  }

  /** Kick the scheduler (a feeder has more). */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpNow();
    } finally {
      this.pumping = false;
    }
    if (this.noWorkers) this.failWaiting(this.noWorkers);
    this.checkIdle();
  }

  private pumpNow(): void {
    for (;;) {
      const free = this.slots.filter((s) => s.ready && !s.dead && s.inflight.length === 0);
      if (free.length === 0) break;
      let sent = false;
      for (const slot of free) {
        const u = this.next();
        if (!u) return this.pipeline();
        this.sendTo(slot, u);
        sent = true;
      }
      if (!sent) break;
    }
    this.pipeline();
  }

  /** Second map batches onto workers busy with a first one. */
  private pipeline(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.dead || slot.inflight.length !== 1 || !pipelines(slot.inflight[0]!)) continue;
      if (this.queue.length > 0 && !pipelines(this.queue[0]!)) return;
      const u = this.queue.length > 0 ? this.queue.shift()! : this.fromFeeders();
      if (!u) return;
      this.sendTo(slot, u);
    }
  }

  private next(): Unit | null {
    return this.queue.shift() ?? this.fromFeeders();
  }

  private fromFeeders(): Unit | null {
    for (let i = 0; i < this.feeders.length; i++) {
      const f = this.feeders[i]!;
      const u = f.take();
      if (u) return u;
      if (f.exhausted) {
        this.feeders.splice(i, 1);
        i--;
      }
    }
    return null;
  }

  private sendTo(slot: Slot, u: Unit): void {
    const remote = !slot.ch.local;
    try {
      if (u.fn && !slot.defined.has(u.fn.id)) {
        slot.ch.send({ t: 'def', fn: u.fn.id, def: remote ? u.fn.remote : u.fn.local });
        slot.defined.add(u.fn.id);
      }
      slot.ch.send(u.msg);
    } catch (e) {
      const err =
        e instanceof TsmpiError && e.code === 'ERR_SERIALIZE'
          ? new TsmpiError('ERR_SERIALIZE', `${u.label}: its arguments cannot be sent to a worker: ${e.message.replace(/^cannot send this value: /, '')}`, { cause: e })
          : (e as Error);
      this.finish(u, err, undefined, 0);
      return;
    }
    u.state = 'running';
    u.channel = slot;
    u.host = slot.ch.host;
    slot.inflight.push(u);
    this.observer?.task(u.id, 'running');
    if (slot.inflight.length === 1) this.observer?.worker(slot.key, { phase: 'busy', task: u.id });
    if (slot.inflight.length === 1) this.startTimer(slot);
  }

  private startTimer(slot: Slot): void {
    const u = slot.inflight[0];
    if (!u || this.o.taskTimeout === null || u.timer) return;
    const ms = this.o.taskTimeout * u.size;
    u.timer = setTimeout(() => {
      if (u.channel !== slot || u.state !== 'running') return;
      this.stopRunning(u, new TsmpiError('ERR_TIMEOUT', `${u.label} ran longer than taskTimeout (${ms} ms) on ${slot.ch.host}; its worker was ended${slot.ch.local ? ' and replaced' : ''}`));
    }, ms);
  }

  /** Settle a unit that is not on a worker any more. */
  private finish(u: Unit, err: Error | null, value: unknown, ms: number): void {
    if (u.timer) clearTimeout(u.timer);
    u.timer = null;
    u.channel = null;
    u.state = err ? (err instanceof TsmpiError && err.code === 'ERR_CANCELLED' ? 'cancelled' : 'failed') : 'done';
    const o = this.observer;
    if (o) {
      o.task(u.id, u.state);
      if (err && u.state === 'failed') o.failure({ from: u.label, host: u.host ?? undefined, name: err.name, message: err.message, stack: err.stack ?? '' });
    }
    u.settle(err, value, ms);
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    if (slot.dead) return;
    switch (m.t) {
      case 'ready':
        slot.ready = true;
        slot.pid = m.pid;
        this.observer?.worker(slot.key, { pid: m.pid, phase: 'idle' });
        this.startFailures = 0;
        this.pump();
        return;
      case 'partial':
      case 'progress': {
        const u = slot.inflight.find((x) => x.id === m.task);
        if (!u) return;
        if (m.t === 'partial') {
          this.observer?.partial(u.label, m.value, Date.now() / 1000);
          u.onPartial?.(m.value);
        } else {
          this.observer?.progress(u.label, m.done, m.total);
          u.onProgress?.(m.done, m.total);
        }
        return;
      }
      case 'ok':
      case 'fail': {
        const i = slot.inflight.findIndex((x) => x.id === m.task);
        if (i < 0) return;
        const [u] = slot.inflight.splice(i, 1);
        if (m.t === 'ok') this.finish(u!, null, m.value, m.ms);
        else this.finish(u!, this.revive(u!, slot, m.report), undefined, 0);
        const head = slot.inflight[0];
        this.observer?.worker(slot.key, head ? { phase: 'busy', task: head.id } : { phase: 'idle', task: null });
        this.startTimer(slot);
        this.pump();
        return;
      }
    }
  }

  private revive(u: Unit, slot: Slot, r: FailReport): Error {
    const at = r.at !== undefined ? ` at item ${r.at} of its batch` : '';
    const e = reviveReport(r, `    [tsmpi/pool] ${u.label} threw${at} on ${slot.ch.host} (worker pid ${slot.pid})`);
    Object.defineProperty(e, 'host', { value: slot.ch.host, configurable: true, writable: true });
    if (r.at !== undefined) Object.defineProperty(e, 'batchIndex', { value: r.at, configurable: true, writable: true });
    return e;
  }

  private onLost(slot: Slot, why: string, ours: boolean): void {
    if (slot.dead) return;
    slot.dead = true;
    this.observer?.worker(slot.key, { phase: 'lost', task: null });
    const wasReady = slot.ready;
    const units = slot.inflight.splice(0);
    const head = units.shift();
    // Units behind the running one never started: back to the queue, in order.
    for (const u of units.reverse()) this.requeue(u);
    if (head) {
      if (ours) this.requeue(head);
      else if (head.attempts < this.o.retries) {
        head.attempts++;
        this.requeue(head);
      } else {
        const tries = head.attempts > 0 ? ` (after ${head.attempts} retr${head.attempts === 1 ? 'y' : 'ies'})` : '';
        this.finish(head, new TsmpiError('ERR_PEER_LOST', `${head.label}: its worker on ${slot.ch.host} (pid ${slot.pid}) ${why} while running it${tries}`), undefined, 0);
      }
    }
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    if (slot.ch.local && !this.stopped) {
      if (!wasReady && !ours) this.startFailed(`a local worker ${why} before it was ready`);
      else this.spawn();
    }
    this.o.onLost?.(slot.ch, ours);
    this.checkStarved(`every worker was lost (the last ${why})`);
    this.pump();
  }

  private requeue(u: Unit): void {
    if (u.timer) clearTimeout(u.timer);
    u.timer = null;
    u.channel = null;
    u.host = null;
    u.state = 'queued';
    this.queue.unshift(u);
  }

  private startFailed(why: string): void {
    if (++this.startFailures < MAX_START_FAILURES) {
      this.spawn();
      return;
    }
    this.checkStarved(`${why} (${this.startFailures} times in a row)`);
  }

  private checkStarved(why: string): void {
    const live = this.slots.some((s) => !s.dead) || this.starting > 0;
    if (live || this.stopped) return;
    if (this.o.spawnLocal && this.startFailures < MAX_START_FAILURES) return;
    this.noWorkers = why;
    this.failWaiting(why);
  }

  private failWaiting(why: string): void {
    const err = (u: Unit) => new TsmpiError('ERR_PEER_LOST', `${u.label} cannot run: no worker is left (${why})`);
    for (const u of this.queue.splice(0)) this.finish(u, err(u), undefined, 0);
    for (const f of this.feeders.splice(0)) for (let u = f.take(); u; u = f.take()) this.finish(u, err(u), undefined, 0);
  }

  private checkIdle(): void {
    const idle = this.idle;
    this.setRef(!idle);
    if (idle) this.o.onIdle();
  }

  /** Idle workers must not keep a script from ending (its exit hook ends them). */
  private setRef(on: boolean): void {
    if (on === this.refd) return;
    this.refd = on;
    for (const s of this.slots) if (!s.dead) s.ch.ref(on);
  }

  /** Cancel a unit: a queued one is dropped, a running one's worker ended. False when it already settled. */
  cancel(u: Unit): boolean {
    if (u.state === 'queued') {
      const i = this.queue.indexOf(u);
      if (i >= 0) this.queue.splice(i, 1);
      this.finish(u, new TsmpiError('ERR_CANCELLED', `${u.label} was cancelled`), undefined, 0);
      this.checkIdle();
      return true;
    }
    if (u.state === 'running') {
      this.stopRunning(u, new TsmpiError('ERR_CANCELLED', `${u.label} was cancelled while running`));
      return true;
    }
    return false;
  }

  /** Take a running unit off its worker (settled with `err`) and end that worker. */
  private stopRunning(u: Unit, err: Error): void {
    const slot = u.channel!;
    const i = slot.inflight.indexOf(u);
    if (i >= 0) slot.inflight.splice(i, 1);
    this.finish(u, err, undefined, 0);
    slot.ch.kill();
  }

  /** Say bye to every worker (close). */
  bye(): Channel[] {
    this.stopped = true;
    const chs: Channel[] = [];
    for (const s of this.slots) {
      if (s.dead) continue;
      try {
        s.ch.send({ t: 'bye' });
      } catch {
        // gone
      }
      chs.push(s.ch);
    }
    return chs;
  }

  /** End everything now: every unit not settled is cancelled. */
  terminate(): void {
    this.stopped = true;
    const err = (u: Unit) => new TsmpiError('ERR_CANCELLED', `${u.label} was cancelled: the pool was terminated`);
    for (const u of this.queue.splice(0)) this.finish(u, err(u), undefined, 0);
    for (const f of this.feeders.splice(0)) for (let u = f.take(); u; u = f.take()) this.finish(u, err(u), undefined, 0);
    // A copy: a channel may report its loss at once (a Pool.fromComm rank), which takes its slot out.
    for (const s of [...this.slots]) {
      for (const u of s.inflight.splice(0)) this.finish(u, err(u), undefined, 0);
      if (!s.dead) s.ch.kill();
    }
  }

  /** Kill every worker's process now, synchronously (process exit). */
  killAll(): void {
    this.stopped = true;
    for (const s of [...this.slots]) if (!s.dead) s.ch.kill();
  }
}
