/**
 * The agent program a launcher starts on another host without tsmpid:
 *
 *   ssh -T HOST node PREFIX/dist/launcher/agent/agent-main.js --stdio
 *     the link to the launcher is the SSH channel: stdin and stdout (ssh
 *     authenticated and encrypts it; this program opens no port). EOF on stdin
 *     (the launcher or its ssh client died) ends the job here.
 *   srun … node …/agent-main.js --call-back
 *     the first line on stdin says where the launcher listens, its TLS key's
 *     fingerprint (pinned) and the job's token; the agent connects back over
 *     TLS, checks the fingerprint, then proves the token. The token never
 *     appears on a command line.
 *
 * Either way it says hello ('agent'), gets the file key ('open', over the
 * encrypted link), and the job is the Agent's (agent.ts). When the link ends,
 * for any reason, or on SIGTERM/SIGINT/SIGHUP (scancel), the ranks are ended,
 * the folder removed, and the program exits.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { TsmpiError } from '../../runtime/errors.js';
import { CONTROL_VERSION, parseToDaemon } from '../../runtime/wire/control.js';
import { peerFingerprint } from '../keys/x509.js';
import { sweepStaleJobFolders } from '../job/job-folder.js';
import { FramedConn } from '../link/framed.js';
import { AGENT_MARK, stdioLink } from '../link/stdio-link.js';
import { CHUNK } from '../staging/staging.js';
import { Agent } from './agent.js';

const HELLO_CONTROL = 64 * 1024;
const JOB_CONTROL = 16 * 1024 * 1024;
/** the launcher pings every 2 s; this much silence means it is gone */
const SILENCE_MS = 30_000;
const CONNECT_MS = 15_000;

/** What srun's stdin carries, one JSON line. */
export interface CallBack {
  /** '' for SLURM_LAUNCH_NODE_IPADDR */
  address: string;
  port: number;
  fingerprint: string;
  token: string;
}

function log(line: string): void {
  try {
    process.stderr.write(`tsmpi agent on ${hostname()}: ${line}\n`);
  } catch {
    // the launcher is gone
  }
}

/** An address of this host others can reach, when nothing better is known. */
function ownAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function readLine(stream: NodeJS.ReadableStream, limit: number, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => finish(new TsmpiError('ERR_TIMEOUT', `nothing on stdin within ${ms} ms`)), ms);
    const onData = (c: Buffer) => {
      text += c.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl >= 0) finish(null, text.slice(0, nl));
      else if (text.length > limit) finish(new TsmpiError('ERR_PROTOCOL', 'the first line on stdin is too long'));
    };
    const onEnd = () => finish(new TsmpiError('ERR_PEER_LOST', 'stdin ended before the call-back line'));
    const finish = (err: Error | null, line?: string) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      if (err) reject(err);
      else resolve(line!);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
  });
}

async function callBack(): Promise<{ link: Duplex; listenHost: string; token: string }> {
  const cb = JSON.parse(await readLine(process.stdin, 4096, CONNECT_MS)) as CallBack;
  // '': the launcher's address as srun reports it to this node
  const address = cb.address || process.env.SLURM_LAUNCH_NODE_IPADDR || '127.0.0.1';
  // Keep reading stdin (srun's), and ignore it: a closed stdin is not an end here.
  process.stdin.resume();
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: address, port: cb.port, rejectUnauthorized: false, minVersion: 'TLSv1.3', servername: undefined as unknown as string });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new TsmpiError('ERR_TIMEOUT', `no TLS handshake with the launcher at ${address}:${cb.port} within ${CONNECT_MS} ms`));
    }, CONNECT_MS);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new TsmpiError('ERR_PEER_LOST', `cannot reach the launcher at ${address}:${cb.port}: ${e.message}`, { cause: e }));
    });
  });
  if (peerFingerprint(socket) !== cb.fingerprint) {
    socket.destroy();
    throw new TsmpiError('ERR_AUTH', `the launcher at ${address}:${cb.port} does not hold the key it announced`);
  }
  socket.setNoDelay(true);
  return { link: socket, listenHost: (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, ''), token: cb.token };
}

async function main(argv: string[]): Promise<void> {
  const mode = argv[0];
  if (mode !== '--stdio' && mode !== '--call-back') throw new TsmpiError('ERR_ARG', 'usage: agent-main.js --stdio | --call-back');
  let link: Duplex;
  let listenHost: string;
  let peerHost = '';
  let token: string | undefined;
  if (mode === '--stdio') {
    // whatever a shell startup file printed on this stdout comes before this
    process.stdout.write(AGENT_MARK);
    link = stdioLink(process.stdin, process.stdout);
    // SSH_CONNECTION: "client-ip client-port server-ip server-port"
    const sc = (process.env.SSH_CONNECTION ?? '').split(' ');
    listenHost = sc[2] || ownAddress();
    peerHost = sc[0] ?? '';
  } else {
    ({ link, listenHost, token } = await callBack());
  }
  const peer = 'launcher';
  const jobsDir = mkdtempSync(join(tmpdir(), 'tsmpi-agent-'));
  // The folder's owner, as a launcher's job folder names its own: an agent
  // killed with SIGKILL cannot clean up, the next agent or launcher here does.
  writeFileSync(join(jobsDir, 'launcher.pid'), String(process.pid));
  setImmediate(() => sweepStaleJobFolders(tmpdir(), jobsDir));
  let agent: Agent | null = null;
  let silence: NodeJS.Timeout | null = null;
  let exiting = false;
  const end = async (why: string) => {
    if (exiting) return;
    exiting = true;
    if (silence) clearTimeout(silence);
    if (agent) await agent.shutdown(why);
    else conn.end();
    rmSync(jobsDir, { recursive: true, force: true });
    // a launcher that is gone cannot read the rest: do not wait for it
    setTimeout(() => process.exit(0), agent && !link.destroyed ? 1500 : 100).unref();
  };
  const touch = () => {
    if (silence) clearTimeout(silence);
    silence = setTimeout(() => void end(`nothing heard from the launcher for ${SILENCE_MS} ms`), SILENCE_MS);
  };
  const conn: FramedConn = new FramedConn(link, HELLO_CONTROL, HELLO_CONTROL, {
    control: (v) => {
      if (exiting) return;
      touch();
      const m = parseToDaemon(v);
      if (agent) return agent.onControl(m);
      if (m.t === 'ping') {
        conn.sendControl({ t: 'pong' });
        return;
      }
      if (m.t !== 'open') throw new TsmpiError('ERR_PROTOCOL', `'${m.t}' before 'open'`);
      const fileKey = Buffer.from(m.fileKey, 'base64');
      if (fileKey.length !== 32) throw new TsmpiError('ERR_PROTOCOL', 'the file key must be 32 bytes');
      conn.limit(Math.max(CHUNK + 1024, JOB_CONTROL), JOB_CONTROL);
      agent = new Agent(conn, fileKey, { jobsDir, slots: null, maxJobBytes: 64 * 2 ** 30, maxRanks: 1024, listenHost, peer, log: () => {} });
    },
    data: (h, p) => {
      if (exiting) return;
      touch();
      if (!agent) throw new TsmpiError('ERR_PROTOCOL', 'file data before open');
      agent.onData(h, p);
    },
    close: (err) => void end(err ? `the link failed: ${err.message}` : 'the launcher closed the link'),
  });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void end(`received ${sig}`));
  touch();
  conn.sendControl({
    t: 'agent',
    v: CONTROL_VERSION,
    host: hostname(),
    platform: process.platform,
    slots: availableParallelism(),
    listenHost,
    peerHost,
    ...(process.env.SLURMD_NODENAME ? { node: process.env.SLURMD_NODENAME } : {}),
    ...(token !== undefined ? { token } : {}),
  });
}

main(process.argv.slice(2)).catch((e: unknown) => {
  log((e as Error).message);
  process.exit(1);
});
