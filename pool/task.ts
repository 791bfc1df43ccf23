/**
 * What a pool can run: a self-contained function (sent as source text; a free
 * variable is ERR_ARG naming it), or `task(moduleUrl, exportName)`, an exported
 * function of a module, compiled once with esbuild (its local imports bundled,
 * packages left to the host that runs it) and shipped to remote hosts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TsmpiError } from '../runtime/errors.js';
import { functionSource } from '../runtime/fn/fn-source.js';
import type { FnHandle } from './engine.js';

const TASK = Symbol.for('tsmpi.pool.task');

/** A module task: an exported function of a `.ts` or `.js` module. */
export interface ModuleTask<A extends unknown[] = unknown[], R = unknown> {
  readonly [TASK]: true;
  readonly url: string;
  readonly exportName: string;
  /** never set: carries the function's type for submit/map */
  readonly __type?: (...args: A) => R;
}

export function task<A extends unknown[] = unknown[], R = unknown>(moduleUrl: string | URL, exportName = 'default'): ModuleTask<A, R> {
  let url: string;
  if (moduleUrl instanceof URL) url = moduleUrl.href;
  else if (typeof moduleUrl === 'string' && /^file:/.test(moduleUrl)) url = moduleUrl;
  else if (typeof moduleUrl === 'string' && moduleUrl.length > 0) url = pathToFileURL(moduleUrl).href;
  else throw new TsmpiError('ERR_ARG', `task(moduleUrl, exportName): moduleUrl must be a file URL or a path, got ${moduleUrl === '' ? 'an empty string' : typeof moduleUrl}`);
  if (!url.startsWith('file:')) throw new TsmpiError('ERR_ARG', `task(moduleUrl, exportName): moduleUrl must be a file: URL, got ${url}`);
  if (typeof exportName !== 'string' || exportName === '') throw new TsmpiError('ERR_ARG', `task(${url}, exportName): exportName must be a non-empty string`);
  return Object.freeze({ [TASK]: true as const, url, exportName });
}

export function isModuleTask(x: unknown): x is ModuleTask {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[TASK] === true;
}

/** A resolved task: its handle for the engine and its identity for the cache. */
export interface Resolved {
  handle: FnHandle;
  /** task identity: the source text, or the module's compiled code and export */
  key: string;
}

export const FREE_VARIABLE_REMEDY = (v: string) =>
  `Pass it as an argument (pool.submit(fn, ${v})), or to map in the \`context\` option ({ context: { ${v} } }) and read it from the second argument: (item, ctx) => … ctx.${v}`;

export class TaskRegistry {
  private nextId = 1;
  private readonly bySource = new Map<string, Resolved>();
  /** the same function object again: no second parse */
  private readonly byFunction = new WeakMap<object, Resolved>();
  /** the same text (a new closure of the same arrow): checked once */
  private readonly byText = new Map<string, Resolved>();
  private readonly modules = new Map<string, Promise<Resolved>>();

  constructor(
    /** the pool's folder: compiled modules go there */
    private readonly dir: () => string,
    /** whether remote workers need the shipped code */
    private readonly needRemote: () => boolean,
    /** whether local workers need the module compiled for this machine */
    private readonly needLocal: () => boolean,
  ) {}

  /** A function task (synchronous: a free variable throws ERR_ARG here). */
  fromFunction(fn: unknown, what: string): Resolved {
    const known = typeof fn === 'function' ? (this.byFunction.get(fn) ?? this.byText.get(Function.prototype.toString.call(fn))) : undefined;
    if (known) return known;
    const { source, name } = functionSource(fn, what, '', { allowAsync: true, provided: ['reportPartial', 'reportProgress'], remedy: FREE_VARIABLE_REMEDY });
    let r = this.bySource.get(source);
    if (!r) {
      const def = { kind: 'source' as const, source };
      r = { handle: { id: this.nextId++, local: def, remote: def, name: name || 'function' }, key: `fn:${source}` };
      this.bySource.set(source, r);
    }
    this.byFunction.set(fn as object, r);
    if (this.byText.size > 1000) this.byText.clear();
    this.byText.set(Function.prototype.toString.call(fn), r);
    return r;
  }

  /** A module task: compiled on first use (local and, with remote hosts, remote). */
  fromModule(t: ModuleTask, what: string): Promise<Resolved> {
    const k = `${t.url}#${t.exportName}`;
    let p = this.modules.get(k);
    if (!p) {
      p = this.compile(t, what);
      this.modules.set(k, p);
      p.catch(() => this.modules.delete(k));
    }
    return p;
  }

  private async compile(t: ModuleTask, what: string): Promise<Resolved> {
    const { compileScript, CompileError } = await import('../launcher/job/compile.js');
    const path = fileURLToPath(t.url);
    const id = this.nextId++;
    const base = join(this.dir(), `task-${id}`);
    const name = `${path}#${t.exportName}`;
    try {
      const local = this.needLocal() || !this.needRemote();
      if (local) await compileScript(path, `${base}.mjs`, 'local');
      let remoteCode: string | null = null;
      if (this.needRemote()) {
        await compileScript(path, `${base}.remote.mjs`, 'remote');
        remoteCode = readFileSync(`${base}.remote.mjs`, 'utf8');
      }
      // The task's identity: the module and its local imports as compiled (the
      // source map, which names this run's temporary folder, left out).
      const code = (local ? readFileSync(`${base}.mjs`, 'utf8') : remoteCode!).replace(/\/\/# sourceMappingURL=.*$/m, '');
      const key = `mod:${createHash('sha256').update(code).digest('hex')}#${t.exportName}`;
      return {
        handle: {
          id,
          local: { kind: 'module', url: pathToFileURL(`${base}.mjs`).href, code: null, name: path, export: t.exportName },
          remote: { kind: 'module', url: null, code: remoteCode, name: path, export: t.exportName },
          name,
        },
        key,
      };
    } catch (e) {
      if (e instanceof CompileError) throw new TsmpiError('ERR_ARG', `${what}: ${e.message}`, { cause: e });
      throw e;
    }
  }
}
