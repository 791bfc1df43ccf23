// Pandaral·lel for danfojs inside an MPI job (collective mode): every rank
// calls parallelApply; rank 0 passes the frame and gets the result, the other
// ranks pass undefined. The frame travels as typed columns, spread over every
// rank of the communicator, on every host of the job. Ranks other than the
// root never load danfojs.
// Run: npx tsmpirun -n 4 examples/parallel-apply-mpi.ts [rows]
import { init } from 'tsmpi';
import { parallelApply } from 'tsmpi/dataframe';

const comm = await init();
const root = 0;
const rows = Number(process.argv[2] ?? 200_000);

let df: import('danfojs-node').DataFrame | undefined;
if (comm.rank === root) {
  const dfd = await import('danfojs-node');
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const col = () => Array.from({ length: rows }, () => rnd() * 10);
  df = new dfd.DataFrame({ a: col(), b: col(), c: col(), d: col() });
}

const score = (row: number[], ctx: { rounds: number }) => {
  const [a, b, c, d] = row;
  let s = 0;
  for (let k = 0; k < ctx.rounds; k++) s += Math.sqrt(a! * a! + b! * b!) + Math.sin(c!) * d!;
  return s;
};

const t0 = performance.now();
const out = await parallelApply(df, score, { comm, root, context: { rounds: 8 }, progress: true });
if (comm.rank === root) {
  const ms = performance.now() - t0;
  const serial = df!.apply((row: number[]) => score(row, { rounds: 8 }), { axis: 1 });
  const same = JSON.stringify(out!.values) === JSON.stringify(serial.values);
  console.log(`${rows} rows over ${comm.size} ranks in ${ms.toFixed(0)} ms: same result as df.apply: ${same}`);
}
