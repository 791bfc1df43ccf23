/**
 * Turn function source text back into a function, where it runs (a pool worker
 * or a rank). Strict mode, as in the ES module it came from; `__name` (esbuild's
 * keep-names helper) exists in case a call survived stripping. `provided` are
 * extra names the function may use (the task pool gives `reportPartial`, …).
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

export function compileFunction(source: string, provided: Readonly<Record<string, unknown>> = {}, sourceURL = 'tsmpi-dataframe-fn.js'): (...args: unknown[]) => unknown {
  const names = Object.keys(provided);
  const key = `${sourceURL}\0${names.join(',')}\0${source}`;
  let fn = cache.get(key);
  if (!fn) {
    const make = new Function('__name', ...names, `"use strict";\nreturn (${source}\n);\n//# sourceURL=${sourceURL}`) as (...a: unknown[]) => unknown;
    const made = make(keepName, ...names.map((n) => provided[n]));
    if (typeof made !== 'function') throw new TypeError('the source text did not evaluate to a function');
    fn = made as (...args: unknown[]) => unknown;
    if (cache.size > 32) cache.clear();
    cache.set(key, fn);
  }
  return fn;
}
