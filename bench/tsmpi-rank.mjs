// Rank script for tsmpirun: node dist/launcher/tsmpirun.js -n 2 bench/tsmpi-rank.mjs MODE 'JSON'
// Rank 0 <-> rank 1 through the public API only: await comm.send(buf, peer); await comm.recv(peer).
import { init } from 'tsmpi';
import { pingpong, stream, emitLine, pin } from './kernels.mjs';
import { profiled } from './profile.mjs';

const comm = await init();
if (comm.size !== 2) throw new Error('run with -n 2');
const [mode, json] = process.argv.slice(2);
const params = JSON.parse(json);
pin(comm.rank, params.pin);
const peer = 1 - comm.rank;
const ep = {
  send: (data) => comm.send(data, peer, 0),
  recv: () => comm.recv(peer, 0),
};
await profiled(`tsmpi-${mode}`, comm.rank, async () => {
  if (mode === 'pingpong') await pingpong(ep, comm.rank, params, emitLine);
  else if (mode === 'stream') await stream(ep, comm.rank, params, emitLine);
  else throw new Error(`unknown mode ${mode}`);
});
