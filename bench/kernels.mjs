// The measuring loops shared by the tsmpi rank script and the socket floor, so
// both sides run exactly the same loop. An endpoint is `{ send(data), recv() }`
// talking to the one peer; both return promises. Rank 0 measures and reports
// through `emit`; rank 1 echoes / receives.
//
// Parameters (see run.js):
//   pingpong: { sizes: number[], iters: { [size]: n }, warm: { [size]: n }, reps }
//   stream:   { bytes, count, reps }

import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

/**
 * Bind this process to one CPU, as mpirun does by default for 2 ranks
 * (--bind-to core: rank 0 on core 0, rank 1 on core 1). `mode`: 'cross'
 * (rank r on cpu r mod cores), 'same' (every rank on cpu 0) or 'none'.
 */
export function pin(rank, mode) {
  if (mode === 'none' || !mode) return;
  const cpu = mode === 'same' ? 0 : rank % availableParallelism();
  spawnSync('taskset', ['-pc', String(cpu), String(process.pid)], { stdio: 'ignore', timeout: 10_000 });
}

const now = () => Number(process.hrtime.bigint()) / 1e3; // µs

export async function pingpong(ep, rank, p, emit) {
  for (const size of p.sizes) {
    const n = p.iters[size];
    const buf = new Uint8Array(size);
    const samples = [];
    // rep 0 is warm-up (JIT tiers, connection set-up, first touch of memory):
    // Node needs a few thousand round trips before its latency settles.
    for (let r = 0; r <= p.reps; r++) {
      const m = r === 0 ? p.warm[size] : n;
      if (rank === 0) {
        const t0 = now();
        for (let i = 0; i < m; i++) {
          await ep.send(buf);
          await ep.recv();
        }
        const dt = now() - t0;
        if (r > 0) samples.push(dt / m / 2);
      } else {
        for (let i = 0; i < m; i++) {
          const got = await ep.recv();
          await ep.send(got);
        }
      }
    }
    if (rank === 0) emit({ kind: 'pingpong', size, samples });
  }
}

export async function stream(ep, rank, p, emit) {
  const arr = new Float64Array(p.bytes / 8).fill(1.5);
  const tiny = new Uint8Array(1);
  const samples = [];
  for (let r = 0; r <= p.reps; r++) {
    const count = p.count; // rep 0 is warm-up
    if (rank === 0) {
      await ep.recv(); // the receiver is ready
      const t0 = now();
      const sends = [];
      for (let k = 0; k < count; k++) sends.push(ep.send(arr));
      await Promise.all(sends);
      await ep.recv(); // the receiver has them all
      const dt = now() - t0;
      if (r > 0) samples.push((count * p.bytes) / dt); // bytes/µs = MB/s
    } else {
      await ep.send(tiny);
      for (let k = 0; k < count; k++) await ep.recv();
      await ep.send(tiny);
    }
  }
  if (rank === 0) emit({ kind: 'stream', bytes: p.bytes, count: p.count, samples });
}

export function emitLine(obj) {
  process.stdout.write(`BENCH ${JSON.stringify(obj)}\n`);
}
