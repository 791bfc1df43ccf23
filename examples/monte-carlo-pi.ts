// Monte Carlo pi: every rank throws darts, streams its running estimate with
// reportPartial and its progress with reportProgress; rank 0 prints the result.
// Run: npx tsmpirun -n 4 --results estimates.jsonl examples/monte-carlo-pi.ts [darts per rank]
import { init, reportPartial, reportProgress, SUM } from 'tsmpi';

const comm = await init();
const darts = Number(process.argv[2] ?? 4_000_000);
const batch = Math.max(1, Math.floor(darts / 20));
// A small deterministic generator per rank (xorshift), so runs are repeatable.
let s = 0x9e3779b9 ^ (comm.rank * 0x85ebca6b);
const rand = () => {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>> 0) / 0x100000000;
};

let inside = 0;
for (let thrown = 0; thrown < darts; ) {
  const n = Math.min(batch, darts - thrown);
  for (let i = 0; i < n; i++) {
    const x = rand();
    const y = rand();
    if (x * x + y * y < 1) inside++;
  }
  thrown += n;
  reportProgress(thrown, darts);
  await reportPartial({ rank: comm.rank, darts: thrown, estimate: (4 * inside) / thrown });
}
const total = await comm.reduce(inside, SUM, 0);
if (comm.rank === 0) {
  const pi = (4 * total!) / (darts * comm.size);
  console.log(`pi ≈ ${pi.toFixed(6)} from ${darts * comm.size} darts (error ${Math.abs(pi - Math.PI).toExponential(1)})`);
}
