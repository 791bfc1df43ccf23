// mpi4py.futures' MPIPoolExecutor under mpiexec: inside a tsmpirun job, rank 0
// gets a Pool whose workers are the other ranks; they serve its tasks and get
// null once rank 0 closes the pool.
// Run: npx tsmpirun -n 3 examples/pool-mpi.ts
import { init } from 'tsmpi';
import { Pool } from 'tsmpi/pool';

const comm = await init();
const pool = await Pool.fromComm(comm, { root: 0 });
if (pool) {
  // Monte Carlo pi: each task throws darts with its own seed.
  const darts = 200_000;
  const hits = await pool.map((seed: number, ctx: { darts: number }) => {
    let s = seed;
    const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647;
    let inside = 0;
    for (let i = 0; i < ctx.darts; i++) {
      const x = rnd();
      const y = rnd();
      if (x * x + y * y <= 1) inside++;
    }
    return inside;
  }, Array.from({ length: 16 }, (_, i) => i + 1), { context: { darts } });
  const pi = (4 * hits.reduce((a, b) => a + b, 0)) / (darts * hits.length);
  console.log(`pi is about ${pi.toFixed(4)} from ${hits.length} tasks on ${comm.size - 1} worker ranks`);
  await pool.close();
} else {
  console.log(`rank ${comm.rank}: pool closed`);
}
