/**
 * Turn function source text back into a function, where it runs (a pool worker
 * or a rank). Strict mode, as in the ES module it came from; `__name` (esbuild's
 * keep-names helper) exists in case a call survived stripping.
 */

const keepName = (target: unknown, value: string): unknown => {
  try {
    Object.defineProperty(target, 'name', { value, configurable: true });
  } catch {
    // not a function: leave it
  }
  return target;
};

const cache = new Map<string, (...args: unknown[]) => unknown>();

export function compileFunction(source: string): (...args: unknown[]) => unknown {
  let fn = cache.get(source);
  if (!fn) {
    const make = new Function('__name', `"use strict";\nreturn (${source}\n);\n//# sourceURL=tsmpi-dataframe-fn.js`) as (n: typeof keepName) => unknown;
    const made = make(keepName);
    if (typeof made !== 'function') throw new TypeError('the source text did not evaluate to a function');
    fn = made as (...args: unknown[]) => unknown;
    if (cache.size > 32) cache.clear();
    cache.set(source, fn);
  }
  return fn;
}

/** danfojs for group work, loaded on first need (it costs a second and 150 MB). */
let danfo: Promise<DanfoModule> | null = null;

export interface DanfoModule {
  DataFrame: new (data: unknown, options?: unknown) => unknown;
  tensorflow?: unknown;
}

export function loadDanfo(): Promise<DanfoModule> {
  danfo ??= import('danfojs-node').then((m: unknown) => {
    const mod = ((m as { default?: DanfoModule }).default ?? m) as DanfoModule;
    quietTensorflow(mod.tensorflow);
    return mod;
  });
  return danfo;
}

/**
 * tfjs prints a banner on stderr at its first tensor operation when it runs on
 * its pure-JS backend in Node ("Hi, looks like you are running TensorFlow.js in
 * Node.js…"). It is advice for a different install; mark the backend as used.
 */
export function quietTensorflow(tf: unknown): void {
  try {
    const t = tf as { backend?: () => unknown } | undefined;
    const backend = t?.backend?.() as { firstUse?: boolean } | undefined;
    if (backend && backend.firstUse === true) backend.firstUse = false;
  } catch {
    // a tfjs without that flag: nothing to quiet
  }
}
