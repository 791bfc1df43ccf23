/**
 * A pool worker's loop, whatever carries its messages (a rank host's control
 * channel, or a communicator under Pool.fromComm): keep the functions the pool
 * defines, run calls, map batches and programs one at a time, send back values,
 * errors (name, message, stack), partial results and progress.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { threadId } from 'node:worker_threads';
import { TsmpiError } from '../runtime/errors.js';
import { compileFunction } from '../runtime/fn/compile-fn.js';
import { errorReport } from '../runtime/fn/remote-error.js';
import { describeUnclonable } from '../runtime/wire/codec.js';
import { reportPartial, reportProgress, setReportSink } from '../runtime/world.js';
import { fillPlaceholders } from '../launcher/job/own-install.js';
import type { FailReport, FnDef, FromWorker, StagedBytes, ToWorker } from './messages.js';

export interface WorkerPort {
  /** throws ERR_SERIALIZE when the message cannot travel (nothing sent) */
  send(m: FromWorker): void;
  onMessage(h: (m: ToWorker) => void): void;
}

/** Names a function task may use without importing them (they come from 'tsmpi'). */
export const PROVIDED = { reportPartial, reportProgress } as const;

type Fn = (...args: unknown[]) => unknown;

/** Serve the pool until it says bye; resolves then. */
export function serve(port: WorkerPort, where = hostname()): Promise<void> {
  const fns = new Map<number, Promise<Fn>>();
  let queue: Promise<void> = Promise.resolve();
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));

  const fail = (task: number, e: unknown, extra: Partial<FailReport> = {}) => port.send({ t: 'fail', task, report: { ...errorReport(e), ...extra } });
  const reply = (task: number, value: unknown, began: number) => {
    try {
      port.send({ t: 'ok', task, value, ms: performance.now() - began });
    } catch (e) {
      fail(task, new TsmpiError('ERR_SERIALIZE', `the task's result cannot be sent back: ${describeUnclonable(value)}`, { cause: e }), { unsendable: true });
    }
  };
  const sinkFor = (task: number) => {
    // Progress leaves at most every 100 ms (and always when done): a hot loop may call it freely.
    let last = -Infinity;
    return {
      partial: (value: unknown) => port.send({ t: 'partial', task, value }),
      progress: (d: number, total: number) => {
        const now = performance.now();
        if (d < total && now - last < 100) return;
        last = now;
        port.send({ t: 'progress', task, done: d, total });
      },
    };
  };

  async function handle(m: ToWorker): Promise<void> {
    switch (m.t) {
      case 'def':
        fns.set(m.fn, define(m.def));
        fns.get(m.fn)!.catch(() => {});
        return;
      case 'bye':
        port.send({ t: 'gone' });
        done();
        return;
      case 'exec':
        await runProgram(m, port);
        return;
      case 'run':
      case 'batch': {
        const began = performance.now();
        let fn: Fn;
        try {
          fn = await (fns.get(m.fn) ?? Promise.reject(new TsmpiError('ERR_PROTOCOL', `function #${m.fn} was never defined`)));
        } catch (e) {
          fail(m.task, e);
          return;
        }
        setReportSink(sinkFor(m.task));
        try {
          if (m.t === 'run') {
            let v: unknown;
            try {
              v = await fn(...m.args);
            } catch (e) {
              fail(m.task, e);
              return;
            }
            reply(m.task, v, began);
          } else {
            const out = new Array<unknown>(m.items.length);
            for (let i = 0; i < m.items.length; i++) {
              try {
                let v = m.hasCtx ? fn(m.items[i], m.ctx) : fn(m.items[i]);
                if (v !== null && typeof v === 'object' && typeof (v as PromiseLike<unknown>).then === 'function') v = await v;
                out[i] = v;
              } catch (e) {
                fail(m.task, e, { at: i });
                return;
              }
            }
            reply(m.task, out, began);
          }
        } finally {
          setReportSink(null);
        }
        return;
      }
    }
  }

  port.onMessage((m) => {
    queue = queue.then(() => handle(m)).catch((e) => {
      process.stderr.write(`tsmpi/pool worker ${process.pid}: ${(e as Error).stack ?? e}\n`);
      process.exit(70);
    });
  });
  port.send({ t: 'ready', pid: process.pid, host: where, cwd: process.cwd() });
  return finished;
}

async function define(def: FnDef): Promise<Fn> {
  if (def.kind === 'source') return compileFunction(def.source, PROVIDED, 'tsmpi-pool-task.js') as Fn;
  let url = def.url;
  if (url === null) {
    // Shipped: written into this host's job folder (the worker's cwd, which for
    // a Pool.fromComm rank is the user's folder), imported from there, and
    // removed once loaded; pid and thread keep workers sharing a folder apart.
    const code = fillPlaceholders(def.code ?? '');
    const file = join(process.cwd(), `.tsmpi-task-${createHash('sha256').update(code).digest('hex').slice(0, 16)}-${process.pid}-${threadId}.mjs`);
    writeFileSync(file, code);
    try {
      return exported(def, (await import(pathToFileURL(file).href)) as Record<string, unknown>);
    } finally {
      rmSync(file, { force: true });
    }
  }
  return exported(def, (await import(url)) as Record<string, unknown>);
}

function exported(def: Extract<FnDef, { kind: 'module' }>, mod: Record<string, unknown>): Fn {
  const fn = mod[def.export];
  if (typeof fn !== 'function') {
    throw new TsmpiError('ERR_ARG', `task(${def.name}, '${def.export}'): the module has no exported function '${def.export}' (exports: ${Object.keys(mod).join(', ') || 'none'})`);
  }
  return fn as Fn;
}

/** A file name inside the job folder, or ERR_ARG. */
function inside(name: string): string {
  const n = normalize(name);
  if (isAbsolute(n) || n.split(/[\\/]/).includes('..')) throw new TsmpiError('ERR_ARG', `exec: the file ${JSON.stringify(name)} would land outside the job folder`);
  return join(process.cwd(), n.split('/').join(sep));
}

function writeFiles(files: StagedBytes[]): void {
  for (const f of files) {
    const at = inside(f.name);
    mkdirSync(dirname(at), { recursive: true });
    writeFileSync(at, f.data);
  }
}

function runProgram(m: Extract<ToWorker, { t: 'exec' }>, port: WorkerPort): Promise<void> {
  const began = performance.now();
  return new Promise<void>((resolve) => {
    try {
      writeFiles(m.files);
    } catch (e) {
      port.send({ t: 'fail', task: m.task, report: errorReport(e) });
      resolve();
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let settled = false;
    const child = spawn(m.argv[0]!, m.argv.slice(1), { cwd: process.cwd(), env: { ...process.env, ...m.env }, stdio: ['ignore', 'pipe', 'pipe'], shell: false, windowsHide: true });
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      const why = new TsmpiError('ERR_ARG', `exec: cannot start the program ${JSON.stringify(m.argv[0])} on ${hostname()}: ${e.message}`);
      port.send({ t: 'fail', task: m.task, report: errorReport(why) });
      resolve();
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      const value = { code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      port.send({ t: 'ok', task: m.task, value, ms: performance.now() - began });
      resolve();
    });
  });
}
