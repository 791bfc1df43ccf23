/** Function source back into a function (shared: runtime/fn/compile-fn.ts); danfojs on demand. */
export { compileFunction } from '../../runtime/fn/compile-fn.js';

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
