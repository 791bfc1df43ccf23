/**
 * tsmpi/pool: independent calls spread over local cores and remote hosts
 * (concurrent.futures / multiprocessing.Pool / joblib / Dispy for TypeScript).
 */
export { Pool, type PoolOptions, type ExecOptions, type ExecResult, type MapOptions } from './pool.js';
export { Future, asCompleted } from './future.js';
export { task, type ModuleTask } from './task.js';
export type { FutureState } from './engine.js';
export { TsmpiError } from '../runtime/errors.js';
