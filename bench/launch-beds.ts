// The launch benchmark's hosts (bench/run.js --only launch): the test suite's
// own beds, two real sshd "hosts" (127.0.0.21–.22) and a two-node Slurm cluster
// on loopback. Prints one `BEDS {json}` line once both are up, then keeps them
// until its stdin closes (the bench's end, however it ends), and removes them.
import { startSlurmBed } from '../test/beds/slurm.js';
import { startSshBed } from '../test/beds/sshd.js';

const ssh = await startSshBed([
  ['hostA', '127.0.0.21'],
  ['hostB', '127.0.0.22'],
]);
const slurm = await startSlurmBed(['n1', 'n2'], { cpus: 4 }).catch(async (e: unknown) => {
  await ssh.close();
  throw e;
});
process.stdout.write(`BEDS ${JSON.stringify({ sshConfig: ssh.config, sshHosts: ssh.hosts.map((h) => [h.name, h.address]), slurmEnv: slurm.env })}\n`);
let closing = false;
const close = async () => {
  if (closing) return;
  closing = true;
  await Promise.all([ssh.close(), slurm.close()]);
  process.exit(0);
};
process.stdin.on('end', () => void close());
process.stdin.on('close', () => void close());
process.stdin.resume();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void close());
