/**
 * Compile a job's script once (TypeScript or JavaScript, anywhere on disk) into
 * one ES module that ranks start on plain `node`: local files are bundled,
 * `tsmpi` and `tsmpi/dataframe` resolve to this installation, other packages
 * resolve from the script's folder and stay external.
 */
import { isBuiltin } from 'node:module';
import { dirname, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';
import { dataframeEntry, runtimeEntry } from './paths.js';
import { DATAFRAME_PLACEHOLDER, RUNTIME_PLACEHOLDER } from './placeholders.js';

export class CompileError extends Error {
  override name = 'CompileError';
}

/** Where a job's script runs: here (tsmpi from this install), or on a remote host. */
export type Target = 'local' | 'remote';

const OWN: Record<Target, Record<string, string>> = {
  local: { tsmpi: pathToFileURL(runtimeEntry).href, 'tsmpi/dataframe': pathToFileURL(dataframeEntry).href },
  // A remote host's daemon puts its own install's URLs in place of these.
  remote: { tsmpi: RUNTIME_PLACEHOLDER, 'tsmpi/dataframe': DATAFRAME_PLACEHOLDER },
};

const resolver = (target: Target): Plugin => ({
  name: 'tsmpi-resolve',
  setup(build) {
    build.onResolve({ filter: /^[^./]|^\.[^./]|^\.\.[^/]/ }, async (args) => {
      if (args.pluginData?.tsmpiInner) return undefined;
      const own = OWN[target][args.path];
      if (own) return { path: own, external: true };
      if (isBuiltin(args.path)) return { path: args.path, external: true };
      // A remote host has none of this machine's packages: bundle them.
      if (target === 'remote') return undefined;
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

/** Compile `script` into `outfile`. Throws CompileError with esbuild's messages. */
export async function compileScript(script: string, outfile: string, target: Target = 'local'): Promise<void> {
  const { build, formatMessages } = await import('esbuild');
  const abs = resolvePath(script);
  const url = pathToFileURL(abs).href;
  try {
    await build({
      entryPoints: [abs],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      logLevel: 'silent',
      absWorkingDir: dirname(abs),
      define: {
        'import.meta.url': JSON.stringify(url),
        'import.meta.filename': JSON.stringify(abs),
        'import.meta.dirname': JSON.stringify(dirname(abs)),
      },
      banner: {
        js: `import { createRequire as __tsmpiCreateRequire } from 'node:module';\nglobalThis.require ??= __tsmpiCreateRequire(${JSON.stringify(url)});`,
      },
      plugins: [resolver(target)],
    });
  } catch (e) {
    const errors = (e as { errors?: import('esbuild').Message[] }).errors;
    if (errors?.length) {
      const text = await formatMessages(errors, { kind: 'error', color: false });
      throw new CompileError(`cannot compile ${script}:\n${text.join('')}`);
    }
    throw new CompileError(`cannot compile ${script}: ${(e as Error).message}`);
  }
}
