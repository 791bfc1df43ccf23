// Pass a token around the ring of ranks; each rank adds its rank to it.
// Run: npx tsmpirun -n 4 examples/ring.ts
import { init } from 'tsmpi';

const comm = await init();
const { rank, size } = comm;
const next = (rank + 1) % size;
const prev = (rank + size - 1) % size;

if (rank === 0) {
  await comm.send({ hops: 0, sum: 0 }, next);
  const token = await comm.recv(prev);
  console.log(`token came back after ${token.hops} hops with sum ${token.sum} (expected ${(size * (size - 1)) / 2})`);
} else {
  const token = await comm.recv(prev);
  await comm.send({ hops: token.hops + 1, sum: token.sum + rank }, next);
}
