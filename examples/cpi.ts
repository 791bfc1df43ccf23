// Pi by numerical integration of 4/(1+x²) over [0, 1], the classic MPI example.
// Rank 0 broadcasts the number of intervals, every rank sums its share, and
// reduce adds the shares up at rank 0.
// Run: npx tsmpirun -n 4 examples/cpi.ts [intervals]
import { init, SUM } from 'tsmpi';

const comm = await init();
const n = await comm.bcast(comm.rank === 0 ? Number(process.argv[2] ?? 10_000_000) : undefined, 0);
const t0 = performance.now();
const h = 1 / n;
let sum = 0;
for (let i = comm.rank + 1; i <= n; i += comm.size) {
  const x = h * (i - 0.5);
  sum += 4 / (1 + x * x);
}
const pi = await comm.reduce(h * sum, SUM, 0);
if (comm.rank === 0) {
  console.log(`pi is approximately ${pi!.toFixed(16)}, error ${Math.abs(pi! - Math.PI).toExponential(2)}`);
  console.log(`${n} intervals on ${comm.size} ranks in ${(performance.now() - t0).toFixed(1)} ms`);
}
