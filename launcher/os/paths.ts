/** Where the installed package's own files are (absolute, real paths). */
import { realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/ of the installed package */
export const distDir = realpathSync(join(here, '..', '..'));
export const runtimeEntry = join(distDir, 'runtime', 'index.js');
export const dataframeEntry = join(distDir, 'plugins', 'dataframe', 'index.js');
export const poolEntry = join(distDir, 'pool', 'index.js');
export const poolWorkerEntry = join(distDir, 'pool', 'worker-main.js');
export const rankMain = join(distDir, 'runtime', 'rank-main.js');
/**
 * The same entries bundled (scripts/bundle-ranks.mjs, part of the build): what a
 * job's local ranks load, a few files instead of dozens. Null when the build
 * made no bundle, or when tsc ran again after it (then ranks load the modules above).
 */
export const rankBundle: { main: string; runtime: string; dataframe: string; pool: string } | null = (() => {
  const dir = join(distDir, 'ranks');
  const b = { main: join(dir, 'rank-main.js'), runtime: join(dir, 'runtime.js'), dataframe: join(dir, 'dataframe.js'), pool: join(dir, 'pool.js') };
  try {
    const built = statSync(runtimeEntry).mtimeMs;
    return Object.values(b).every((f) => statSync(f).mtimeMs >= built) ? b : null;
  } catch {
    return null;
  }
})();
export const threadJobMain = join(distDir, 'launcher', 'agent', 'thread-job-main.js');
