/**
 * The per-job process that runs one host's ranks of a `--threads` job as worker
 * threads (ThreadHost, as on the launcher's machine: a MessagePort control link
 * a rank, shared-memory rings between them). A worker thread cannot chdir and
 * cwd is process-wide, so the agent starts this program with its cwd in the job
 * folder, one a job. Over the IPC channel it gets the job, then relays each
 * rank's control messages, output and exit, in that order, to the agent
 * (launcher/agent/thread-job.ts). When the channel ends (the agent is gone,
 * even by SIGKILL) the ranks are ended and this process exits.
 */
import { ThreadHost } from '../hosts/thread-host.js';
import type { AgentToThreadJob, ThreadJobToAgent } from '../../runtime/wire/control.js';

/** After the agent is gone, how long ending ranks may take before this process exits anyway. */
const ORPHAN_GRACE_MS = 1000;

/** Messages handed to the channel and not yet written: output is held while too many are. */
const IN_FLIGHT = 32;
let inFlight = 0;
let host: ThreadHost | null = null;
let agentHolds = false;
let finished = false;
let holding = false;

function send(m: ThreadJobToAgent): void {
  if (!process.connected) return;
  inFlight++;
  process.send!(m, undefined, {}, () => {
    inFlight--;
    settle();
  });
  settle();
}

/** Hold or release the ranks' output; once every rank ended and everything is written, let go of the agent. */
function settle(): void {
  const hold = agentHolds || inFlight > IN_FLIGHT;
  if (host && hold !== holding) host.holdOutput((holding = hold));
  // a disconnect drops what the channel has not written yet
  if (finished && inFlight === 0 && process.connected) process.disconnect();
}

let running = 0;
function onJob(j: Extract<AgentToThreadJob, { t: 'job' }>): void {
  const listen = new Map(j.ranks.map((r, i) => [r, j.listen[i]!]));
  const h = (host = new ThreadHost({
    name: j.host,
    ranks: j.ranks,
    size: j.size,
    secret: j.secret,
    dir: j.own,
    compiled: j.compiled,
    script: j.script,
    args: j.args,
    env: j.env,
    hostId: j.hostId,
    listenTls: j.listenTls,
    tlsDir: j.own,
    rankListen: (rank) => listen.get(rank)!,
  }));
  running = j.ranks.length;
  const exits = new Map<number, { code: number | null; signal: NodeJS.Signals | null }>();
  void h
    .start({
      message: (rank, m) => send({ t: 'rank', rank, m }),
      output: (rank, stream, chunk) => send({ t: 'out', rank, stream, data: chunk }),
      exit: (rank, code, signal) => exits.set(rank, { code, signal }),
      closed: (rank) => {
        const e = exits.get(rank) ?? { code: null, signal: null };
        send({ t: 'exit', rank, code: e.code, signal: e.signal });
        if (--running === 0) {
          h.close();
          finished = true;
          settle();
        }
      },
      lost: () => {},
    })
    .then(
      () => h.go(),
      (e: Error) => {
        // the agent reports every rank ended with this exit
        process.stderr.write(`tsmpi: cannot start the job's thread ranks: ${e.stack ?? e.message}\n`);
        process.exit(1);
      },
    );
}

process.on('message', (m: AgentToThreadJob) => {
  switch (m.t) {
    case 'job':
      if (!host) onJob(m);
      return;
    case 'ctl':
      host?.send(m.rank, m.m);
      return;
    case 'kill':
      host?.kill(m.signal === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM');
      return;
    case 'hold':
      agentHolds = m.on;
      settle();
      return;
  }
});

// The agent is gone (or let go after the last exit): end what still runs, then exit.
process.on('disconnect', () => {
  host?.kill('SIGTERM');
  setTimeout(() => process.exit(0), running > 0 ? ORPHAN_GRACE_MS : 0).unref();
});
// Only the agent ends this process.
for (const sig of ['SIGINT', 'SIGHUP'] as const) process.on(sig, () => {});
