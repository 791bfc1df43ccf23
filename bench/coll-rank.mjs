// Collectives, tsmpi side: node dist/launcher/tsmpirun.js -n N bench/coll-rank.mjs 'JSON'
// The same loop as bench/mpi4py_coll.py, through the public API only.
//
// For every op: `warm` untimed calls, then `reps` timed calls. Before each call
// every rank awaits comm.barrier(); each rank times its own call (hrtime, from
// just after the barrier until the call's promise settles). After the loop the
// per-call times are gathered to rank 0, which reports for every call the max
// over ranks (`samples`: when the last rank was done) and its own time (`root`).
// Results are checked once, after the warm-up, so a broken path is not timed.
//
// Params: { ops: string[], warm: { small, large }, reps: { small, large }, pin }
import { isMainThread } from 'node:worker_threads';
import { init, SUM } from 'tsmpi';
import { emitLine, pin } from './kernels.mjs';
import { profiled } from './profile.mjs';

const comm = await init();
const { rank, size: n } = comm;
const p = JSON.parse(process.argv[2]);
if (isMainThread) pin(rank, p.pin);

const now = () => Number(process.hrtime.bigint()) / 1e3; // µs
const BIG = (8 * 1024 * 1024) / 8; // 8 MiB of float64
const VEC = 1 << 20; // 1M float64
const big = new Float64Array(BIG);
if (rank === 0) for (let i = 0; i < BIG; i++) big[i] = i * 0.5;
const vec = new Float64Array(VEC).fill(rank + 1);
const objs = Array.from({ length: n }, (_, i) => ({ a: i, b: 'x' }));
const tri = (n * (n + 1)) / 2;

function check(cond, what) {
  if (!cond) throw new Error(`coll-rank: wrong result of ${what} on rank ${rank}`);
}

// name -> [call, check(result), large?]
const OPS = {
  barrier: [() => comm.barrier(), () => {}, false],
  bcast_obj: [() => comm.bcast(rank === 0 ? { a: 1, b: 'x' } : undefined, 0), (r) => check(r?.a === 1 && r.b === 'x', 'bcast_obj'), false],
  bcast_8mib: [
    () => comm.bcast(rank === 0 ? big : undefined, 0),
    (r) => check(r instanceof Float64Array && r.length === BIG && r[BIG - 1] === (BIG - 1) * 0.5, 'bcast_8mib'),
    true,
  ],
  scatter_obj: [() => comm.scatter(rank === 0 ? objs : undefined, 0), (r) => check(r?.a === rank && r.b === 'x', 'scatter_obj'), false],
  gather_obj: [
    () => comm.gather({ a: rank, b: 'x' }, 0),
    (r) => check(rank !== 0 || (Array.isArray(r) && r.length === n && r[n - 1].a === n - 1), 'gather_obj'),
    false,
  ],
  reduce_int: [() => comm.reduce(rank + 1, SUM, 0), (r) => check(rank !== 0 || r === tri, 'reduce_int'), false],
  allreduce_int: [() => comm.allreduce(rank + 1, SUM), (r) => check(r === tri, 'allreduce_int'), false],
  reduce_1m: [
    () => comm.reduce(vec, SUM, 0),
    (r) => check(rank !== 0 || (r instanceof Float64Array && r.length === VEC && r[VEC - 1] === tri), 'reduce_1m'),
    true,
  ],
  allreduce_1m: [
    () => comm.allreduce(vec, SUM),
    (r) => check(r instanceof Float64Array && r.length === VEC && r[0] === tri && r[VEC - 1] === tri, 'allreduce_1m'),
    true,
  ],
};

await profiled(`tsmpi-coll-n${n}`, rank, async () => {
  for (const name of p.ops) {
    const [call, verify, large] = OPS[name] ?? [];
    if (!call) throw new Error(`coll-rank: unknown op ${name}`);
    const warm = large ? p.warm.large : p.warm.small;
    const reps = large ? p.reps.large : p.reps.small;
    const times = new Float64Array(reps);
    for (let i = 0; i < warm + reps; i++) {
      await comm.barrier();
      const t0 = now();
      const r = await call();
      const dt = now() - t0;
      if (i >= warm) times[i - warm] = dt;
      else if (i === warm - 1) verify(r);
    }
    const all = await comm.gather(times, 0);
    if (rank === 0) {
      const samples = Array.from(times, (_, i) => Math.max(...all.map((t) => t[i])));
      emitLine({ kind: 'coll', impl: p.impl ?? 'tsmpi', op: name, n, samples, root: Array.from(times) });
    }
  }
});
