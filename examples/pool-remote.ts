// Tasks and a program on remote hosts (Dispy's JobCluster): the hosts' tsmpid
// run the workers; files are staged (encrypted) once to every host; partial
// results stream back while tasks run.
// Run with the daemons of examples/remote/hostfile up (see README "Task pool"):
//   npx tsx examples/pool-remote.ts examples/remote/hostfile
// Without a hostfile it uses local workers, so it runs anywhere.
import { fileURLToPath } from 'node:url';
import { Pool, asCompleted, task } from 'tsmpi/pool';

const hostfile = process.argv[2];
const data = fileURLToPath(new URL('./remote/data.csv', import.meta.url));
const pool = new Pool(hostfile ? { hostfile, files: [data], retries: 1 } : { workers: 2 });

// Local workers run in this script's folder: there the file is found by its path.
if (!hostfile) process.chdir(fileURLToPath(new URL('./remote/', import.meta.url)));

const slices = 4;
const sumSlice = task<[number, number], { slice: number; sum: number; host: string }>(new URL('./remote/pool-tasks.ts', import.meta.url), 'sumSlice');
const futures = Array.from({ length: slices }, (_, i) => pool.submit(sumSlice, i, slices));
let partials = 0;
for (const f of futures) f.onPartial(() => partials++);

let total = 0;
for await (const done of asCompleted(futures)) {
  const r = await done;
  total += r.sum;
  console.log(`slice ${r.slice}: ${r.sum} (on ${done.host})`);
}

// A program runs there too (no shell); its cwd is the folder with the files.
const wc = await pool.exec(['wc', '-l', 'data.csv']);
console.log(`total ${total}; ${partials} partial results; wc says: ${wc.stdout.trim()}`);
await pool.close();
