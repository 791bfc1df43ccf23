/**
 * Compile a job's script once (TypeScript or JavaScript, anywhere on disk) into
 * one ES module that ranks start on plain `node`: local files are bundled,
 * `tsmpi`, `tsmpi/dataframe` and `tsmpi/pool` resolve to this installation, other packages
 * resolve from the script's folder and stay external.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, posix, relative as relativePath, resolve as resolvePath, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';
import { dataframeEntry, distDir, poolEntry, rankBundle, runtimeEntry } from '../os/paths.js';
import { DATAFRAME_PLACEHOLDER, PACKAGE_PLACEHOLDER, POOL_PLACEHOLDER, RUNTIME_PLACEHOLDER } from './placeholders.js';

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** tsmpi's own runtime dependencies: every tsmpid host has them installed. */
const OWN_DEPENDENCIES: Set<string> = (() => {
  try {
    const pkg = JSON.parse(readFileSync(join(distDir, '..', 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    return new Set(Object.keys(pkg.dependencies ?? {}));
  } catch {
    return new Set<string>();
  }
})();

export class CompileError extends Error {
  override name = 'CompileError';
}

/**
 * Where a job's script runs: here (tsmpi from this install), here as a job's
 * rank (tsmpi from this install's rank bundle, which its rank-main shares), or
 * on a remote host.
 */
export type Target = 'local' | 'rank' | 'remote';

const OWN: Record<Target, Record<string, string>> = {
  local: { tsmpi: pathToFileURL(runtimeEntry).href, 'tsmpi/dataframe': pathToFileURL(dataframeEntry).href, 'tsmpi/pool': pathToFileURL(poolEntry).href },
  rank: rankBundle
    ? { tsmpi: pathToFileURL(rankBundle.runtime).href, 'tsmpi/dataframe': pathToFileURL(rankBundle.dataframe).href, 'tsmpi/pool': pathToFileURL(rankBundle.pool).href }
    : {},
  // A remote host's daemon puts its own install's URLs in place of these.
  remote: { tsmpi: RUNTIME_PLACEHOLDER, 'tsmpi/dataframe': DATAFRAME_PLACEHOLDER, 'tsmpi/pool': POOL_PLACEHOLDER },
};

const resolver = (target: Target): Plugin => ({
  name: 'tsmpi-resolve',
  setup(build) {
    build.onResolve({ filter: /^[^./]|^\.[^./]|^\.\.[^/]/ }, async (args) => {
      if (args.pluginData?.tsmpiInner) return undefined;
      const own = OWN[target][args.path];
      if (own) return { path: own, external: true };
      if (isBuiltin(args.path)) return { path: args.path, external: true };
      if (target === 'remote') {
        // The daemon's install has tsmpi's own dependencies; anything else is bundled.
        const pkg = packageName(args.path);
        if (OWN_DEPENDENCIES.has(pkg)) return { path: PACKAGE_PLACEHOLDER + args.path, external: true };
        return undefined;
      }
      if (/^[A-Za-z]:[\\/]/.test(args.path)) return undefined;
      const r = await build.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
        pluginData: { tsmpiInner: true },
      });
      if (r.errors.length) return { errors: r.errors };
      return { path: pathToFileURL(r.path).href, external: true };
    });
  },
});

/**
 * Each local source file sees its own `import.meta.url`, `filename` and
 * `dirname`, made where the rank runs: the bundle carries only the file's path
 * relative to the script's folder (posix separators), and its prologue turns
 * that into this host's path and URL at load time (`path.resolve` and
 * `pathToFileURL` of the host that runs the rank: `file:///C:/…` and
 * backslashes on Windows). Nothing in the bundle names the launcher's files.
 */
const importMeta = (scriptDir: string): Plugin => ({
  name: 'tsmpi-import-meta',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
      if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta')) return undefined;
      const rel = JSON.stringify(relativePath(scriptDir, args.path).split(sep).join('/'));
      const contents = text
        .replaceAll('import.meta.url', `${META}(${rel}).url`)
        .replaceAll('import.meta.filename', `${META}(${rel}).filename`)
        .replaceAll('import.meta.dirname', `${META}(${rel}).dirname`);
      const ext = extname(args.path).replace(/^\.[cm]?/, '');
      return { contents, loader: (ext === 'ts' || ext === 'tsx' || ext === 'jsx' ? ext : 'js') as 'ts' | 'tsx' | 'jsx' | 'js', resolveDir: dirname(args.path) };
    });
  },
});

const META = '__tsmpiMeta';

/**
 * The bundle's first lines: where the script's folder is on the host that runs
 * it, and `import.meta` of every bundled file from there. Locally that is the
 * script's own folder; in a remote job folder it is `place`'s folder (the
 * script's staged name, beside the `--files`), found from where the bundle
 * itself sits on that host.
 */
export function prologue(target: Target, scriptAbs: string, place: string): string {
  const base =
    target !== 'remote'
      ? JSON.stringify(dirname(scriptAbs))
      : `__tsmpiPath.resolve(__tsmpiPath.dirname(__tsmpiUrl.fileURLToPath(import.meta.url)), ${JSON.stringify(posix.dirname(place))})`;
  return [
    `import { createRequire as __tsmpiCreateRequire } from 'node:module';`,
    `import * as __tsmpiPath from 'node:path';`,
    `import * as __tsmpiUrl from 'node:url';`,
    `const __tsmpiBase = ${base};`,
    `function ${META}(rel) { const filename = __tsmpiPath.resolve(__tsmpiBase, rel); return { url: __tsmpiUrl.pathToFileURL(filename).href, filename, dirname: __tsmpiPath.dirname(filename) }; }`,
    `globalThis.require ??= __tsmpiCreateRequire(${META}(${JSON.stringify(posix.basename(place))}).url);`,
  ].join('\n');
}

interface CacheEntry {
  inputs: { path: string; mtimeMs: number; size: number }[];
}

/**
 * A compiled script is reused while none of its inputs changed (size and
 * modification time, like make). TSMPI_COMPILE_CACHE=0 turns it off.
 */
function cacheDir(): string | null {
  if (process.env.TSMPI_COMPILE_CACHE === '0') return null;
  const who = typeof process.getuid === 'function' ? String(process.getuid()) : (process.env.USERNAME ?? 'user');
  const dir = join(tmpdir(), `.tsmpi-compile-cache-${who}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    // Never trust a cache folder someone else could write to.
    if (typeof process.getuid === 'function' && (st.uid !== process.getuid() || (st.mode & 0o022) !== 0)) return null;
    return dir;
  } catch {
    return null;
  }
}

function cacheKey(abs: string, target: Target, place: string): string {
  let runtimeStamp = '';
  try {
    runtimeStamp = String(statSync(target === 'rank' && rankBundle ? rankBundle.runtime : runtimeEntry).mtimeMs);
  } catch {
    // no stamp: still keyed by everything else
  }
  return createHash('sha256').update(JSON.stringify([abs, target, place, runtimeEntry, runtimeStamp, process.version])).digest('hex').slice(0, 32);
}

function fresh(entry: CacheEntry): boolean {
  try {
    return entry.inputs.every((i) => {
      const st = statSync(i.path);
      return st.mtimeMs === i.mtimeMs && st.size === i.size;
    });
  } catch {
    return false;
  }
}

/**
 * Compile `script` into `outfile`. `place` is where the script sits in a remote
 * job folder (its staged name, posix separators). Throws CompileError with
 * esbuild's messages.
 */
export async function compileScript(script: string, outfile: string, target: Target = 'local', place = basename(script)): Promise<void> {
  const abs = resolvePath(script);
  const cache = cacheDir();
  const key = cache ? cacheKey(abs, target, place) : '';
  if (cache) {
    try {
      const entry = JSON.parse(readFileSync(join(cache, `${key}.json`), 'utf8')) as CacheEntry;
      if (fresh(entry)) {
        copyFileSync(join(cache, `${key}.mjs`), outfile);
        return;
      }
    } catch {
      // not cached yet
    }
  }
  const { build, formatMessages } = await import('esbuild');
  let metafile: import('esbuild').Metafile | undefined;
  try {
    const result = await build({
      entryPoints: [abs],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      // Stack traces name the script where it is on the launcher's machine, also
      // when the compiled file runs in a job folder on another host. A path, not
      // a file URL: Windows Node drops a map whose sources are drive-less file
      // URLs, while a path resolves against the bundle's own URL on any host
      // (a Windows host keeps its drive letter: Z:\tmp\job.ts).
      sourceRoot: pathToFileURL(dirname(resolvePath(outfile))).pathname + '/',
      logLevel: 'silent',
      metafile: true,
      absWorkingDir: dirname(abs),
      banner: { js: prologue(target, abs, place) },
      plugins: [resolver(target), importMeta(dirname(abs))],
    });
    metafile = result.metafile;
  } catch (e) {
    const errors = (e as { errors?: import('esbuild').Message[] }).errors;
    if (errors?.length) {
      const text = await formatMessages(errors, { kind: 'error', color: false });
      throw new CompileError(`cannot compile ${script}:\n${text.join('')}`);
    }
    throw new CompileError(`cannot compile ${script}: ${(e as Error).message}`);
  }
  if (cache && metafile) {
    try {
      const inputs = Object.keys(metafile.inputs)
        .filter((p) => !/^[a-z][a-z0-9-]+:/i.test(p))
        .map((p) => {
          const path = resolvePath(dirname(abs), p);
          const st = statSync(path);
          return { path, mtimeMs: st.mtimeMs, size: st.size };
        });
      const tmp = join(cache, `${key}.${process.pid}.tmp`);
      copyFileSync(outfile, tmp);
      renameSync(tmp, join(cache, `${key}.mjs`));
      writeFileSync(join(cache, `${key}.json`), JSON.stringify({ inputs } satisfies CacheEntry));
    } catch {
      // a cache that cannot be written is only slower
    }
  }
}
