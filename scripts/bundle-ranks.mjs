// After tsc: the modules a job's rank loads (rank-main and the `tsmpi`,
// `tsmpi/dataframe`, `tsmpi/pool` entries) bundled into dist/ranks/, a few
// files sharing chunks instead of ~30 modules each rank resolves and reads on
// its own (eight thread ranks starting at once wait on that). One bundle, so a
// rank has one instance of every module whichever entries its script imports.
// Code that finds files beside itself (`import.meta.url`) still finds them
// where tsc put them. Usage: node scripts/bundle-ranks.mjs
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const outdir = join(dist, 'ranks');
await rm(outdir, { recursive: true, force: true });

/** `import.meta.url` of a bundled file: its own place in dist/, relative to the bundle (the install may move). */
const ownUrl = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const rel = relative(outdir, args.path).split(sep).join('/');
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

await build({
  entryPoints: {
    'rank-main': join(dist, 'runtime', 'rank-main.js'),
    runtime: join(dist, 'runtime', 'index.js'),
    dataframe: join(dist, 'plugins', 'dataframe', 'index.js'),
    pool: join(dist, 'pool', 'index.js'),
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
  plugins: [ownUrl],
});

// esbuild names a class that refers to itself `var Comm = class _Comm`: give
// such classes back the names tsc gave them (`Comm.name`, stack traces). Not
// keepNames, which renames every named closure at each call (a cost a message).
for (const f of await readdir(outdir)) {
  if (!f.endsWith('.js')) continue;
  const file = join(outdir, f);
  const text = await readFile(file, 'utf8');
  const names = [...text.matchAll(/^var (\w+) = class _\1\b/gm)].map((m) => m[1]);
  if (!names.length) continue;
  const fix = names.map((n) => `Object.defineProperty(${n}, "name", { value: ${JSON.stringify(n)} });`).join('\n');
  const at = text.lastIndexOf('\n//# sourceMappingURL=');
  await writeFile(file, at < 0 ? `${text}\n${fix}\n` : `${text.slice(0, at)}\n${fix}${text.slice(at)}`);
}
