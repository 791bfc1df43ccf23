/**
 * The program a pool's workers run (a rank of the pool's internal job, started
 * by rank-main on this machine or by a host's tsmpid): serve the pool over the
 * control channel until it says bye. A worker whose pool goes away exits: the
 * control link closes (runtime/world.ts), and a watchdog thread ends the
 * process even while a task keeps the main thread busy.
 */
import { Worker } from 'node:worker_threads';
import { initAlone, launcherLink, toLauncher } from '../runtime/world.js';
import { fromControl, toControl, type ToWorker } from './messages.js';
import { serve } from './worker.js';

const link = launcherLink();
if (!link) {
  process.stderr.write('tsmpi/pool: worker-main runs only as a pool worker\n');
  process.exit(2);
}

// The parent (the pool's process, or the host's tsmpid) is gone: end now, busy or not.
const watchdog = new Worker(
  `const { workerData } = require('node:worker_threads');
   setInterval(() => { if (process.ppid !== workerData) process.kill(process.pid, 'SIGKILL'); }, 250);`,
  { eval: true, workerData: process.ppid },
);
watchdog.unref();

// Its tasks' init() is the singleton world: this process joined no job's mesh.
initAlone();
link.ref(true);
await serve({
  send: (m) => {
    toLauncher(toControl(m));
  },
  onMessage: (h) =>
    link.onMessage((m) => {
      if (m.t === 'pool') h(fromControl(m) as ToWorker);
    }),
});
link.ref(false);
