// Rank script for tsmpirun: node dist/launcher/tsmpirun.js -n 2 bench/tsmpi-rank.mjs MODE 'JSON'
// Rank 0 <-> rank 1 through the public API only: await comm.send(buf, peer); await comm.recv(peer).
import { isMainThread } from 'node:worker_threads';
import { init } from 'tsmpi';
import { pingpong, stream, emitLine, pin } from './kernels.mjs';
import { profiled } from './profile.mjs';

const comm = await init();
if (comm.size !== 2) throw new Error('run with -n 2');
const [mode, json] = process.argv.slice(2);
const params = JSON.parse(json);
// A thread rank cannot pin itself (taskset acts on the process's main thread): threads run unpinned.
if (isMainThread) pin(comm.rank, params.pin);
const peer = 1 - comm.rank;
// MODE stream-into: the receiver takes every message into one reused array (the buffer tier).
const into = mode === 'stream-into' ? new Float64Array(params.bytes / 8) : null;
const ep = {
  send: (data) => comm.send(data, peer, 0),
  recv: into ? () => comm.recvInto(into, peer, 0) : () => comm.recv(peer, 0),
};
await profiled(`tsmpi-${mode}`, comm.rank, async () => {
  if (mode === 'pingpong') await pingpong(ep, comm.rank, params, emitLine);
  else if (mode === 'stream' || mode === 'stream-into') await stream(ep, comm.rank, params, emitLine);
  else throw new Error(`unknown mode ${mode}`);
});
