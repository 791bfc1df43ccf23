// Ping-pong between ranks 0 and 1: half round-trip latency and bandwidth.
// Run: npx tsmpirun -n 2 examples/pingpong.ts [iterations]
import { init } from 'tsmpi';

const comm = await init();
if (comm.size < 2) throw new Error('pingpong needs at least 2 ranks');
const iters = Number(process.argv[2] ?? 1000);

for (const bytes of [8, 1024, 64 * 1024, 1024 * 1024]) {
  const buf = new Uint8Array(bytes);
  const n = bytes >= 1024 * 1024 ? Math.max(10, iters / 50) : iters;
  await comm.barrier();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (comm.rank === 0) {
      await comm.send(buf, 1);
      await comm.recv(1);
    } else if (comm.rank === 1) {
      const got = await comm.recv(0);
      await comm.send(got, 0);
    }
  }
  const half = ((performance.now() - t0) / n / 2) * 1000;
  if (comm.rank === 0) {
    const mbps = bytes / half;
    console.log(`${String(bytes).padStart(8)} B  ${half.toFixed(1).padStart(8)} µs  ${mbps.toFixed(1).padStart(8)} MB/s`);
  }
}
