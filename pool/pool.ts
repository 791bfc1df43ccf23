/**
 * `Pool`: the thin public class over the engine. It checks arguments, turns
 * tasks into handles (source text or compiled modules), consults the cache,
 * draws the progress bar, and starts workers on first use: local ones (one
 * process each), remote ones through their hosts' tsmpid.
 */
import { readFileSync, rmSync } from 'node:fs';
import { basename } from 'node:path';
import { TsmpiError } from '../runtime/errors.js';
import { ProgressBar } from '../launcher/job/progress.js';
import { openMonitor } from '../launcher/monitor/index.js';
import { ResultCache } from './cache.js';
import type { Channel } from './channel.js';
import { Engine, type FnHandle, type Unit } from './engine.js';
import { Future } from './future.js';
import { PoolDir, startLocalWorker, startRemoteWorkers } from './hosts.js';
import { startThreadWorker } from './thread-channel.js';
import { MapRun } from './map.js';
import { readOptions, type PoolOptions, type Settings } from './options.js';
import { isModuleTask, TaskRegistry, type ModuleTask, type Resolved } from './task.js';

export type { PoolOptions };

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** files copied into the worker's folder before the program starts */
  files?: string[];
  env?: Record<string, string>;
}

export interface MapOptions {
  /** plain values the function reads as its second argument */
  context?: unknown;
  /** items per batch, or 'auto' (default): fast tasks are batched */
  chunksize?: number | 'auto';
}

type AnyFn = (...args: never[]) => unknown;
type Awaited2<T> = T extends PromiseLike<infer U> ? U : T;
type TaskLike = AnyFn | ModuleTask;
type ResultOf<F> = F extends ModuleTask<unknown[], infer R> ? Awaited2<R> : F extends (...a: never[]) => infer R ? Awaited2<R> : unknown;

/** Pools alive in this process: their workers are ended however the process exits. */
const live = new Set<Pool>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const p of live) p.killNow();
  };
  process.on('exit', killAll);
  // A signal that would end the script ends its workers first (and removes the
  // pool's folder); alone with it, the signal then does what it would have done.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const on = () => {
      killAll();
      if (process.listenerCount(signal) === 1) {
        process.off(signal, on);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, on);
  }
}

/**
 * @internal `pool[SUBMIT_PIPELINED](fn, ...args)`: `submit`, but the task may be
 * sent to a busy worker behind its running task (two in flight per worker, as
 * map's batches), so a stream of tasks keeps every worker busy. tsmpi/dataframe
 * uses it for a frame's chunks. `Symbol.for`: the same key in every copy.
 */
export const SUBMIT_PIPELINED = Symbol.for('tsmpi.pool.submitPipelined');

export interface PoolCore {
  /** channels the pool starts with (Pool.fromComm: the other ranks) */
  channels?: Channel[];
  /** called once every worker has been told to end */
  onClosed?: () => Promise<void> | void;
}

export class Pool {
  readonly #s: Settings;
  readonly #core: PoolCore;
  #engine: Engine | null = null;
  #dir: PoolDir | null = null;
  #tasks: TaskRegistry;
  #cache: ResultCache | null;
  #bar: ProgressBar | null = null;
  #barDone = 0;
  #barTotal = 0;
  #closed = false;
  #closing: Promise<void> | null = null;
  #idleWaiters: (() => void)[] = [];
  #nextId = 1;
  #remoteStarting: Promise<unknown> | null = null;
  #monitor: Promise<{ close(): Promise<void> } | null> | null = null;

  constructor(opts?: PoolOptions, core: PoolCore = {}) {
    this.#s = readOptions(opts, core.channels !== undefined);
    this.#core = core;
    this.#cache = this.#s.cache ? new ResultCache(this.#s.cache) : null;
    this.#tasks = new TaskRegistry(
      () => this.#folder().path,
      () => this.#s.remote.length > 0 || (core.channels?.some((c) => !c.local) ?? false),
      () => this.#s.local > 0,
    );
  }

  /** In a tsmpirun job: on `root`, a pool whose workers are the other ranks; elsewhere serves tasks, then null. */
  static async fromComm(comm: import('../runtime/comm.js').Comm, opts: { root?: number } = {}): Promise<Pool | null> {
    const { fromComm } = await import('./from-comm.js');
    // A world of one (a script run without tsmpirun) has no other ranks: its
    // pool gets local workers instead, as mpi4py's MPIPoolExecutor spawns them.
    return fromComm(comm, opts, (channels, onClosed) => (channels.length === 0 ? new Pool() : new Pool({ workers: 0 }, { channels, onClosed })));
  }

  /** Live workers' process ids and hosts (tests look for leftovers). */
  get workers(): { pid: number; host: string }[] {
    return this.#engine?.workers() ?? [];
  }

  #folder(): PoolDir {
    this.#dir ??= new PoolDir();
    return this.#dir;
  }

  /** Workers start on first use. */
  #start(): Engine {
    if (this.#engine) return this.#engine;
    const s = this.#s;
    const local = s.local > 0;
    const engine = new Engine({
      retries: s.retries,
      taskTimeout: s.taskTimeout,
      spawnLocal: !local ? null : s.workerType === 'thread' ? () => startThreadWorker(s.heapLimitMb) : () => startLocalWorker(this.#folder()),
      onIdle: () => {
        for (const w of this.#idleWaiters.splice(0)) w();
      },
      onLost: (ch, ours) => this.#remoteLost(ch, ours),
    });
    this.#engine = engine;
    live.add(this);
    hookExit();
    if (s.monitor !== null) this.#monitor = startMonitor(s.monitor, engine);
    for (const ch of this.#core.channels ?? []) engine.add(ch);
    for (let i = 0; i < s.local; i++) engine.spawn();
    if (s.remote.length > 0) {
      const failures: string[] = [];
      this.#remoteStarting = Promise.all(
        s.remote.map((r) =>
          this.#startHost(engine, r).catch((e: Error) => {
            failures.push(`${r.spec.name}: ${e.message}`);
            process.stderr.write(`tsmpi/pool: host ${r.spec.name} could not start workers: ${e.message}\n`);
          }),
        ),
      );
    }
    return engine;
  }

  /** Each remote host's workers: one job there. */
  readonly #groups = new Map<Channel, { r: Settings['remote'][number]; left: number; ours: boolean }>();

  #startHost(engine: Engine, r: Settings['remote'][number]): Promise<void> {
    const s = this.#s;
    const settings = { via: s.via, identityFile: s.identity, knownHostsFile: s.knownHosts, sshCommand: s.sshCommand, files: s.files, note: (l: string) => process.stderr.write(`tsmpi/pool: ${l}\n`) };
    const starting = startRemoteWorkers(r.spec, r.count, settings, this.#folder()).then((chs) => {
      const g = { r, left: chs.length, ours: false };
      for (const c of chs) this.#groups.set(c, g);
      return chs;
    });
    return engine.expect(starting, `no remote host could start workers (${r.spec.name})`);
  }

  /**
   * A remote worker is gone. When the pool ended a host's workers itself (a
   * cancelled or timed-out task: a daemon ends a job's ranks together), that
   * host gets a new job with as many workers; a host that was lost stays out.
   */
  #remoteLost(ch: Channel, ours: boolean): void {
    const g = this.#groups.get(ch);
    if (!g) return;
    this.#groups.delete(ch);
    g.ours ||= ours;
    if (--g.left > 0 || !g.ours || this.#closed || !this.#engine) return;
    this.#startHost(this.#engine, g.r).catch((e: Error) => process.stderr.write(`tsmpi/pool: host ${g.r.spec.name} could not start workers again: ${e.message}\n`));
  }

  #checkOpen(what: string): TsmpiError | null {
    return this.#closed ? new TsmpiError('ERR_ARG', `pool.${what}: the pool is closed`) : null;
  }

  #resolve(fn: unknown, what: string): Resolved | Promise<Resolved> {
    if (isModuleTask(fn)) return this.#tasks.fromModule(fn, what);
    if (typeof fn !== 'function') throw new TsmpiError('ERR_ARG', `pool.${what}: the task must be a function or task(moduleUrl, exportName), got ${fn === null ? 'null' : typeof fn}`);
    return this.#tasks.fromFunction(fn, `pool.${what}`);
  }

  /** A task's own reportProgress(done, total): added to the bar as its own source (as tsmpirun sums ranks). */
  #taskProgress(id: number, done: number, total: number): void {
    if (!this.#s.progress) return;
    this.#bar ??= new ProgressBar({ tty: !!process.stderr.isTTY, write: (t) => process.stderr.write(t) });
    this.#bar.update(id, done, total);
  }

  #progress(doneDelta: number, totalDelta: number): void {
    this.#barDone += doneDelta;
    this.#barTotal += totalDelta;
    // the monitor's bar, with or without the one on stderr
    this.#engine?.observer?.progress('pool', this.#barDone, this.#barTotal);
    if (!this.#s.progress) return;
    this.#bar ??= new ProgressBar({ tty: !!process.stderr.isTTY, write: (t) => process.stderr.write(t) });
    this.#bar.update(0, this.#barDone, this.#barTotal);
  }

  #pipelineNext = false;

  /** @internal see SUBMIT_PIPELINED */
  [SUBMIT_PIPELINED](fn: TaskLike, ...args: unknown[]): Future<unknown> {
    this.#pipelineNext = true;
    try {
      return this.submit(fn, ...(args as never[]));
    } finally {
      this.#pipelineNext = false;
    }
  }

  /** Run `fn(...args)` on a worker. */
  submit<F extends TaskLike>(fn: F, ...args: F extends ModuleTask<infer A> ? A : F extends (...a: infer A) => unknown ? A : unknown[]): Future<ResultOf<F>> {
    const id = this.#nextId++;
    const pipelined = this.#pipelineNext;
    let state: Unit['state'] = 'queued';
    let unit: Unit | null = null;
    let cancelled = false;
    let resolveF!: (v: ResultOf<F>) => void;
    let rejectF!: (e: unknown) => void;
    const promise = new Promise<ResultOf<F>>((res, rej) => {
      resolveF = res;
      rejectF = rej;
    });
    const core = {
      id,
      get state() {
        return unit ? unit.state : state;
      },
      get host() {
        return unit?.host ?? null;
      },
      cancel: (): boolean => {
        if (unit) return this.#engine!.cancel(unit);
        if (state !== 'queued') return false;
        cancelled = true;
        state = 'cancelled';
        rejectF(new TsmpiError('ERR_CANCELLED', `task #${id} was cancelled`));
        return true;
      },
    };
    const future = new Future<ResultOf<F>>(core, promise);
    const fail = (e: unknown) => {
      state = 'failed';
      rejectF(e);
    };
    const closed = this.#checkOpen('submit');
    if (closed) {
      fail(closed);
      return future;
    }
    let resolved: Resolved | Promise<Resolved>;
    try {
      resolved = this.#resolve(fn, 'submit');
    } catch (e) {
      fail(e);
      return future;
    }
    this.#progress(0, 1);
    const go = (r: Resolved) => {
      if (cancelled) return;
      let cacheKey: string | null = null;
      if (this.#cache) {
        try {
          cacheKey = this.#cache.key(r.key, args);
        } catch (e) {
          fail(new TsmpiError('ERR_SERIALIZE', `task #${id}: its arguments cannot be sent to a worker: ${(e as Error).message}`, { cause: e }));
          return;
        }
        const hit = this.#cache.get(cacheKey);
        if (hit.hit) {
          state = 'done';
          this.#progress(1, 0);
          resolveF(hit.value as ResultOf<F>);
          return;
        }
      }
      unit = this.#callUnit(id, r.handle, args, (err, value) => {
        this.#progress(1, 0);
        if (err) rejectF(err);
        else {
          if (cacheKey) this.#cache!.put(cacheKey, value);
          resolveF(value as ResultOf<F>);
        }
      });
      unit.onPartial = (v) => future.partial(v);
      unit.onProgress = (d, t) => this.#taskProgress(id, d, t);
      if (pipelined) unit.pipelined = true;
      this.#start().enqueue(unit);
    };
    if (resolved instanceof Promise) {
      this.#pending++;
      resolved.then(go, fail).finally(() => {
        this.#pending--;
        this.#maybeIdle();
      });
    } else go(resolved);
    return future;
  }

  #pending = 0;

  #callUnit(id: number, fn: FnHandle, args: unknown[], done: (err: Error | null, value: unknown) => void): Unit {
    return {
      id,
      kind: 'run',
      fn,
      msg: { t: 'run', task: id, fn: fn.id, args },
      size: 1,
      state: 'queued',
      attempts: 0,
      channel: null,
      host: null,
      timer: null,
      label: `task #${id} (${fn.name})`,
      settle: (err, value) => done(err, value),
    };
  }

  /** Run a program on a worker's host: no shell; argv[0] looked up there. */
  exec(argv: string[], opts: ExecOptions = {}): Future<ExecResult> {
    const id = this.#nextId++;
    let unit: Unit | null = null;
    let early: Error | null = this.#checkOpen('exec');
    if (!early && (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string') || argv[0] === '')) {
      early = new TsmpiError('ERR_ARG', 'pool.exec(argv): argv must be a non-empty array of strings, the program first');
    }
    const env = opts.env ?? {};
    if (!early && (typeof env !== 'object' || Object.values(env).some((v) => typeof v !== 'string'))) early = new TsmpiError('ERR_ARG', 'pool.exec: options.env must map names to strings');
    let files: { name: string; data: Uint8Array }[] = [];
    if (!early) {
      try {
        files = (opts.files ?? []).map((f) => ({ name: basename(f), data: readFileSync(f) }));
      } catch (e) {
        early = new TsmpiError('ERR_ARG', `pool.exec: options.files: ${(e as Error).message}`);
      }
    }
    let resolveF!: (v: ExecResult) => void;
    let rejectF!: (e: unknown) => void;
    const promise = new Promise<ExecResult>((res, rej) => {
      resolveF = res;
      rejectF = rej;
    });
    const core = {
      id,
      get state() {
        return unit ? unit.state : ('failed' as const);
      },
      get host() {
        return unit?.host ?? null;
      },
      cancel: (): boolean => (unit ? this.#engine!.cancel(unit) : false),
    };
    const future = new Future<ExecResult>(core, promise);
    if (early) {
      rejectF(early);
      return future;
    }
    unit = {
      id,
      kind: 'exec',
      fn: null,
      msg: { t: 'exec', task: id, argv, env, files },
      size: 1,
      state: 'queued',
      attempts: 0,
      channel: null,
      host: null,
      timer: null,
      label: `program #${id} (${argv[0]})`,
      settle: (err, value) => {
        this.#progress(1, 0);
        if (err) rejectF(err);
        else resolveF(value as ExecResult);
      },
    };
    this.#progress(0, 1);
    this.#start().enqueue(unit);
    return future;
  }

  /** fn(item, context) for every item, results in input order. */
  map<F extends TaskLike>(fn: F, items: Iterable<unknown>, opts?: MapOptions): Promise<ResultOf<F>[]> {
    return new Promise<ResultOf<F>[]>((resolve, reject) => {
      let out: unknown[] = [];
      this.#mapRun(fn, items, opts, 'map', {
        start: (n) => (out = new Array(n)),
        values: (pos, vals) => pos.forEach((p, i) => (out[p] = vals[i])),
        done: () => resolve(out as ResultOf<F>[]),
        error: reject,
      });
    });
  }

  /** As map, as an async iterable in input order (values come as soon as their turn is ready). */
  imap<F extends TaskLike>(fn: F, items: Iterable<unknown>, opts?: MapOptions): AsyncIterable<ResultOf<F>> {
    return this.#stream(fn, items, opts, 'imap', true);
  }

  /** As map, as an async iterable in the order results finish. */
  imapUnordered<F extends TaskLike>(fn: F, items: Iterable<unknown>, opts?: MapOptions): AsyncIterable<ResultOf<F>> {
    return this.#stream(fn, items, opts, 'imapUnordered', false);
  }

  #stream<F extends TaskLike>(fn: F, items: Iterable<unknown>, opts: MapOptions | undefined, what: string, ordered: boolean): AsyncIterable<ResultOf<F>> {
    const ready: unknown[] = [];
    const have: boolean[] = [];
    const byPos: unknown[] = [];
    let next = 0;
    let total = -1;
    let given = 0;
    let error: unknown = null;
    let wake: (() => void) | null = null;
    const poke = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    this.#mapRun(fn, items, opts, what, {
      start: (n) => (total = n),
      values: (pos, vals) => {
        pos.forEach((p, i) => {
          if (ordered) {
            byPos[p] = vals[i];
            have[p] = true;
          } else ready.push(vals[i]);
        });
        if (ordered) {
          while (have[next]) {
            ready.push(byPos[next]);
            byPos[next] = undefined;
            next++;
          }
        }
        poke();
      },
      done: poke,
      error: (e) => {
        error = e;
        poke();
      },
    });
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<ResultOf<F>>> => {
          for (;;) {
            if (ready.length > 0) {
              given++;
              return { done: false, value: ready.shift() as ResultOf<F> };
            }
            if (error) throw error;
            if (total >= 0 && given >= total) return { done: true, value: undefined };
            await new Promise<void>((r) => (wake = r));
          }
        },
      }),
    };
  }

  #mapRun(
    fn: unknown,
    itemsIn: Iterable<unknown>,
    opts: MapOptions | undefined,
    what: string,
    cb: { start(n: number): void; values(pos: number[], vals: unknown[]): void; done(): void; error(e: unknown): void },
  ): void {
    const closed = this.#checkOpen(what);
    if (closed) return cb.error(closed);
    if (itemsIn === null || typeof (itemsIn as Iterable<unknown>)?.[Symbol.iterator] !== 'function') {
      return cb.error(new TsmpiError('ERR_ARG', `pool.${what}(fn, items): items must be iterable`));
    }
    const o = opts ?? {};
    if (typeof o !== 'object') return cb.error(new TsmpiError('ERR_ARG', `pool.${what}: options must be an object`));
    const chunksize = o.chunksize ?? 'auto';
    if (chunksize !== 'auto' && !(typeof chunksize === 'number' && Number.isSafeInteger(chunksize) && chunksize >= 1)) {
      return cb.error(new TsmpiError('ERR_ARG', `pool.${what}: options.chunksize must be a positive integer or 'auto', got ${String(chunksize)}`));
    }
    const hasCtx = 'context' in o && o.context !== undefined;
    if (hasCtx) {
      try {
        structuredClone(o.context);
      } catch (e) {
        return cb.error(new TsmpiError('ERR_SERIALIZE', `pool.${what}: options.context cannot be sent to a worker: ${(e as Error).message}`, { cause: e }));
      }
    }
    const items = [...itemsIn];
    let resolved: Resolved | Promise<Resolved>;
    try {
      resolved = this.#resolve(fn, what);
    } catch (e) {
      return cb.error(e);
    }
    cb.start(items.length);
    const go = (r: Resolved) => {
      const cache = this.#cache;
      const keys: string[] = [];
      const todo: number[] = [];
      try {
        for (let i = 0; i < items.length; i++) {
          if (!cache) {
            todo.push(i);
            continue;
          }
          const k = cache.key(r.key, hasCtx ? [items[i], o.context] : [items[i]]);
          keys[i] = k;
          const hit = cache.get(k);
          if (hit.hit) cb.values([i], [hit.value]);
          else todo.push(i);
        }
      } catch (e) {
        return cb.error(new TsmpiError('ERR_SERIALIZE', `pool.${what}: an item cannot be sent to a worker: ${(e as Error).message}`, { cause: e }));
      }
      this.#progress(items.length - todo.length, items.length);
      if (todo.length === 0) return cb.done();
      const engine = this.#start();
      let left = todo.length;
      const run: MapRun = new MapRun({
        fn: r.handle,
        items,
        todo,
        ctx: hasCtx ? o.context : undefined,
        hasCtx,
        chunksize,
        workers: () => Math.max(1, engine.workerCount),
        newId: () => this.#nextId++,
        onValues: (pos, vals) => {
          if (cache) pos.forEach((p, i) => cache.put(keys[p]!, vals[i]));
          this.#progress(pos.length, 0);
          cb.values(pos, vals);
          left -= pos.length;
          if (left === 0) {
            engine.removeFeeder(run);
            cb.done();
          }
        },
        onError: (e) => {
          run.stop();
          engine.removeFeeder(run);
          cb.error(e);
        },
      });
      engine.addFeeder(run);
    };
    if (resolved instanceof Promise) {
      this.#pending++;
      resolved.then(go, cb.error).finally(() => {
        this.#pending--;
        this.#maybeIdle();
      });
    } else go(resolved);
  }

  #maybeIdle(): void {
    if (this.#pending === 0 && (!this.#engine || this.#engine.idle)) for (const w of this.#idleWaiters.splice(0)) w();
  }

  /** Wait for every submitted task, then end every worker. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      await new Promise<void>((resolve) => {
        this.#idleWaiters.push(resolve);
        this.#maybeIdle();
      });
      await this.#remoteStarting?.catch(() => {});
      await new Promise<void>((resolve) => {
        this.#idleWaiters.push(resolve);
        this.#maybeIdle();
      });
      await this.#shutdown(false);
    })();
    return this.#closing;
  }

  /** End every worker now; every unfinished future rejects with ERR_CANCELLED. Idempotent. */
  terminate(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#shutdown(true);
    return this.#closing;
  }

  async #shutdown(now: boolean): Promise<void> {
    const engine = this.#engine;
    if (engine) {
      if (now) engine.terminate();
      else {
        const chs = engine.bye();
        // Workers exit on bye; any still there after the grace period is killed.
        await waitGone(chs, 2000);
      }
    }
    await this.#core.onClosed?.();
    engine?.observer?.end({ code: 0, message: now ? 'the pool was terminated' : 'the pool closed' });
    await (await this.#monitor?.catch(() => null))?.close();
    this.#bar?.finish();
    this.#removeDir();
    live.delete(this);
  }

  #removeDir(): void {
    if (this.#dir) rmSync(this.#dir.path, { recursive: true, force: true });
  }

  /** @internal process exit: kill every worker, remove the folder (synchronous). */
  killNow(): void {
    this.#engine?.killAll();
    try {
      this.#removeDir();
    } catch {
      // best effort at exit
    }
  }
}

/**
 * The live page (`monitor`, launcher/monitor): its feed is the engine's
 * observer from the start, so no worker or task is missed while it starts
 * listening. A monitor that cannot listen is a note on stderr; the pool runs on.
 */
async function startMonitor(where: string, engine: Engine): Promise<{ close(): Promise<void> } | null> {
  const script = process.argv[1] ? basename(process.argv[1]) : 'a script';
  const m = openMonitor(where, { kind: 'pool', title: `tsmpi pool — ${script}`, prefix: 'tsmpi pool' });
  engine.observer = m.feed;
  try {
    await m.listening;
    return m;
  } catch (e) {
    if (engine.observer === m.feed) engine.observer = null;
    process.stderr.write(`tsmpi/pool: monitor: ${(e as Error).message}\n`);
    return null;
  }
}

/** Wait until the channels report lost (their process ended); kill the rest after `ms`. */
function waitGone(chs: Channel[], ms: number): Promise<void> {
  return Promise.all(
    chs.map(
      (c) =>
        new Promise<void>((resolve) => {
          const prev = c.onLost;
          const t = setTimeout(() => c.kill(), ms);
          c.onLost = (why, ours) => {
            clearTimeout(t);
            prev(why, ours);
            resolve();
          };
        }),
    ),
  ).then(() => {});
}
