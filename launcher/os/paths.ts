/** Where the installed package's own files are (absolute, real paths). */
import { realpathSync } from 'node:fs';
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
export const threadJobMain = join(distDir, 'launcher', 'agent', 'thread-job-main.js');
