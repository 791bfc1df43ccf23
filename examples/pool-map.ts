// The classic "parallelize a simple loop": the same function over many inputs
// on every core, results in input order, with one progress bar on stderr.
// Run: npx tsx examples/pool-map.ts [n]   (or: npx tsmpirun -n 1 examples/pool-map.ts)
import { Pool } from 'tsmpi/pool';

const n = Number(process.argv[2] ?? 2000);

// A self-contained function: it uses only its arguments and globals (it runs
// in other processes from its source text).
function collatzSteps(start: number): number {
  let x = start;
  let steps = 0;
  while (x !== 1) {
    x = x % 2 === 0 ? x / 2 : 3 * x + 1;
    steps++;
  }
  return steps;
}

const inputs = Array.from({ length: n }, (_, i) => i + 1);

// The serial loop…
const serial = inputs.map(collatzSteps);

// …and the same on a pool: fast items are batched automatically (chunksize 'auto').
const pool = new Pool({ progress: true });
const parallel = await pool.map(collatzSteps, inputs);
await pool.close();

const same = parallel.length === serial.length && parallel.every((v, i) => v === serial[i]);
let best = 0;
for (let i = 1; i < n; i++) if (parallel[i]! > parallel[best]!) best = i;
console.log(`${n} inputs: the longest chain starts at ${inputs[best]} (${parallel[best]} steps); same as the serial loop: ${same}`);
