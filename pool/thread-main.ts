/**
 * The program a thread worker runs (workerType: 'thread'): serve the pool over
 * the thread's port, messages as structured-clone values. Its tasks' init() is
 * the singleton world, as in a process worker.
 */
import { parentPort } from 'node:worker_threads';
import { initAlone } from '../runtime/world.js';
import type { ToWorker } from './messages.js';
import { serve } from './worker.js';

const port = parentPort;
if (!port) {
  process.stderr.write('tsmpi/pool: thread-main runs only as a pool thread worker\n');
  process.exit(2);
}

initAlone();
await serve({
  send: (m) => port.postMessage(m),
  onMessage: (h) => port.on('message', (m: ToWorker) => h(m)),
});
// bye: let the thread end (a task's leftover timers are cut by the pool's grace period)
port.close();
