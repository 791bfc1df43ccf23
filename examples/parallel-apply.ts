// Pandaral·lel for danfojs, standalone: a plain script gets a pool of local
// worker processes (started on first use, reused, closed by closePool()).
// Each call returns exactly what the serial danfojs call returns.
// Run: npx tsx examples/parallel-apply.ts [rows]   (or: npx tsmpirun -n 1 examples/parallel-apply.ts)
import * as dfd from 'danfojs-node';
import { closePool, parallelApply, parallelGroupApply } from 'tsmpi/dataframe';

const rows = Number(process.argv[2] ?? 200_000);
const regions = ['north', 'south', 'east', 'west'];
let seed = 42;
const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
const df = new dfd.DataFrame({
  region: Array.from({ length: rows }, () => regions[Math.floor(rnd() * 4)]!),
  price: Array.from({ length: rows }, () => Math.round(rnd() * 10_000) / 100),
  qty: Array.from({ length: rows }, () => 1 + Math.floor(rnd() * 20)),
});

// A row function: values arrive in column order, missing values removed (as in
// danfojs). It may only use its arguments and globals; values from the script
// travel in `context`, its second argument.
// Some real work per row: compound the price over a number of periods.
function gross(row: [string, number, number], ctx: { rate: number; periods: number }): number {
  const [, price, qty] = row;
  let value = price * qty;
  for (let k = 0; k < ctx.periods; k++) value = Math.round(value * (1 + ctx.rate) * 1e4) / 1e4;
  return value;
}
const context = { rate: 0.002, periods: 60 };

let t = performance.now();
const serial = df.apply((row: [string, number, number]) => gross(row, context), { axis: 1 });
const serialMs = performance.now() - t;

const times: number[] = [];
let parallel = serial;
for (let run = 0; run < 2; run++) {
  t = performance.now();
  parallel = await parallelApply(df, gross, { axis: 1, progress: run === 0, context });
  times.push(performance.now() - t);
}

const same = JSON.stringify(parallel.values) === JSON.stringify(serial.values) && parallel.dtypes[0] === serial.dtypes[0];
console.log(`parallelApply over ${rows} rows: same result as df.apply: ${same}`);
console.log(`serial ${serialMs.toFixed(0)} ms; parallel ${times[0]!.toFixed(0)} ms (pool start included), then ${times[1]!.toFixed(0)} ms`);

// groupby(by).apply: each group arrives as a danfojs DataFrame.
const top = await parallelGroupApply(df, ['region'], (g: dfd.DataFrame) => g.sortValues('price', { ascending: false }).head(1));
console.log(`most expensive row per region: ${top.shape[0]} rows`);

await closePool();
