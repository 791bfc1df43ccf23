/**
 * Ranks on the nodes of the Slurm allocation tsmpirun runs in: one job step,
 * `srun --overlap --nodes=K --ntasks=K --ntasks-per-node=1 node agent-main.js
 * --call-back`, starts one agent per node. srun's stdin (broadcast to every
 * task) carries one line: where this launcher listens, the fingerprint of its
 * TLS key, and the job's token. Each agent connects back over TLS, checks the
 * fingerprint, proves the token and names its node (SLURMD_NODENAME); from then
 * on its connection is that node's agent link (agent-host.ts). Nothing secret
 * is on a command line. srun's end (scancel, a node failure, an agent that
 * could not start) before every node called back fails the start; a link that
 * ends later is that node lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { TsmpiError } from '../../runtime/errors.js';
import { CONTROL_VERSION, parseDaemonMessage, type DaemonToLauncher } from '../../runtime/wire/control.js';
import { decodeJson } from '../../runtime/wire/codec.js';
import { FrameDecoder, FrameType } from '../../runtime/wire/frame.js';
import type { CallBack } from '../agent/agent-main.js';
import { createTlsIdentity, type TlsIdentity } from '../keys/x509.js';
import { distDir } from '../os/paths.js';
import { AgentHost, whatItSaid, type AgentJobSpec } from './agent-host.js';

export interface SlurmStepOptions {
  /** the allocation's nodes that get ranks, in order */
  nodes: string[];
  /** node on the nodes (srun passes this environment on: this node binary by default) */
  remoteNode: string;
  /** the tsmpi package's folder there (default: this install's, a shared file system) */
  remotePrefix: string | null;
  /** the srun command (default 'srun') */
  srun?: string;
}

type AgentHello = Extract<DaemonToLauncher, { t: 'agent' }>;

/** The agent's hello must come this soon after it connected. */
const HELLO_MS = 10_000;
const STDERR_TAIL = 4096;

/** Read the first frame (the agent's hello) off a fresh connection, then leave the socket to its link. */
function firstMessage(socket: tls.TLSSocket): Promise<DaemonToLauncher> {
  return new Promise((resolve, reject) => {
    let got: unknown;
    const decoder = new FrameDecoder(
      (h, payload) => {
        if (h.type !== FrameType.CONTROL || got !== undefined) throw new TsmpiError('ERR_PROTOCOL', 'a Slurm agent must first say hello');
        got = decodeJson(payload);
      },
      { maxPayload: 64 * 1024 },
    );
    const timer = setTimeout(() => done(new TsmpiError('ERR_TIMEOUT', 'no hello'), undefined), HELLO_MS);
    const onData = (c: Buffer) => {
      try {
        decoder.push(c);
      } catch (e) {
        return done(e as Error, undefined);
      }
      // the agent waits for 'open' after its hello: nothing else can be in flight
      if (got !== undefined) done(null, got);
    };
    const onClose = () => done(new TsmpiError('ERR_PEER_LOST', 'closed before its hello'), undefined);
    const done = (err: Error | null, v: unknown) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) return reject(err);
      try {
        resolve(parseDaemonMessage(v));
      } catch (e) {
        reject(e as Error);
      }
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

export class SlurmStep {
  private readonly waiting = new Map<string, SlurmHost>();
  private readonly token = randomBytes(32);
  private credential: TlsIdentity | null = null;
  private server: tls.Server | null = null;
  private srun: ChildProcess | null = null;
  private begun: Promise<void> | null = null;
  private stderrTail = '';
  private ended: string | null = null;
  private closed = false;

  constructor(private readonly o: SlurmStepOptions) {}

  /** The host of one node; its connect() waits for that node's agent. */
  host(node: string, job: AgentJobSpec): SlurmHost {
    const h = new SlurmHost(node, job, this);
    this.waiting.set(node, h);
    return h;
  }

  /** What srun said last (its errors, the agents' stderr). */
  get said(): string {
    return whatItSaid(this.stderrTail);
  }

  /** Why the step is over, or null while it runs. */
  get endedWhy(): string | null {
    return this.ended;
  }

  /** Listen, start the step (once, for every node). */
  begin(): Promise<void> {
    this.begun ??= (async () => {
      this.credential = createTlsIdentity('tsmpirun slurm');
      const server = (this.server = tls.createServer({ key: this.credential.key, cert: this.credential.cert, minVersion: 'TLSv1.3', handshakeTimeout: HELLO_MS }));
      server.on('secureConnection', (s) => void this.accept(s));
      server.on('tlsClientError', (_e, s) => s.destroy());
      // The nodes reach this launcher at whatever address srun reports to them
      // (SLURM_LAUNCH_NODE_IPADDR): listen on every address; the key is pinned
      // and the token proves the job, so nobody else gets in.
      const port = await new Promise<number>((resolve, reject) => {
        const listen = (host: string, fallback: string | null) => {
          server.once('error', (e) => (fallback ? listen(fallback, null) : reject(e)));
          server.listen(0, host, () => resolve((server.address() as { port: number }).port));
        };
        listen('::', '0.0.0.0');
      });
      const prefix = this.o.remotePrefix ?? join(distDir, '..');
      const agent = `${prefix.replace(/\/+$/, '')}/dist/launcher/agent/agent-main.js`;
      const args = ['--overlap', `--nodes=${this.o.nodes.length}`, `--ntasks=${this.o.nodes.length}`, '--ntasks-per-node=1', `--nodelist=${this.o.nodes.join(',')}`, '--input=all', '--kill-on-bad-exit=0', this.o.remoteNode, agent, '--call-back'];
      const srun = (this.srun = spawn(this.o.srun ?? 'srun', args, { stdio: ['pipe', 'ignore', 'pipe'] }));
      srun.stderr!.on('data', (c: Buffer) => (this.stderrTail = (this.stderrTail + c.toString('utf8')).slice(-STDERR_TAIL)));
      srun.on('error', (e) => this.onEnd(`cannot run srun: ${e.message}`));
      srun.on('exit', (code, signal) => this.onEnd(`srun exited with ${signal ?? `code ${code}`}`));
      const line: CallBack = { address: '', port, fingerprint: this.credential.fingerprint, token: this.token.toString('base64') };
      // Kept open: stdin's end is not the agents' signal (their connection is), but srun's.
      srun.stdin!.on('error', () => {});
      srun.stdin!.write(JSON.stringify(line) + '\n');
    })();
    return this.begun;
  }

  private onEnd(why: string): void {
    if (this.ended) return;
    this.ended = why;
    this.server?.close();
    for (const h of this.waiting.values()) h.stepEnded(why);
  }

  private async accept(socket: tls.TLSSocket): Promise<void> {
    let hello: DaemonToLauncher;
    try {
      hello = await firstMessage(socket);
    } catch {
      socket.destroy();
      return;
    }
    const token = Buffer.from(hello.t === 'agent' ? (hello.token ?? '') : '', 'base64');
    const host = hello.t === 'agent' ? this.waiting.get(hello.node ?? '') : undefined;
    if (hello.t !== 'agent' || token.length !== this.token.length || !timingSafeEqual(token, this.token) || !host) {
      socket.destroy();
      return;
    }
    this.waiting.delete(hello.node!);
    host.arrived(socket, hello);
  }

  /** Every node's agent has its link, or the job is over: stop listening, end the step. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server?.close();
    const srun = this.srun;
    if (!srun || srun.exitCode !== null || srun.signalCode !== null) return;
    srun.stdin?.end();
    // the agents end when their links close, and srun with them; a stuck one is ended
    const t = setTimeout(() => srun.kill('SIGKILL'), 5000);
    srun.once('exit', () => clearTimeout(t));
  }
}

export class SlurmHost extends AgentHost {
  readonly name: string;
  private arrive: ((v: { socket: Duplex; hello: AgentHello }) => void) | null = null;
  private fail: ((e: Error) => void) | null = null;
  private early: { socket: Duplex; hello: AgentHello } | null = null;
  private earlyEnd: string | null = null;

  constructor(
    node: string,
    job: AgentJobSpec,
    private readonly step: SlurmStep,
  ) {
    super(job);
    this.name = node;
  }

  protected get where(): string {
    return `${this.name} (slurm)`;
  }

  protected override lostReason(why: string): string {
    const said = this.step.said;
    return [this.step.endedWhy ?? why, said ? `srun said: ${said}` : ''].filter(Boolean).join('; ');
  }

  /** The node's agent called back. */
  arrived(socket: Duplex, hello: AgentHello): void {
    if (this.arrive) this.arrive({ socket, hello });
    else this.early = { socket, hello };
  }

  /** srun ended before this node's agent called back. */
  stepEnded(why: string): void {
    if (this.fail) this.fail(new TsmpiError('ERR_PEER_LOST', `${this.where}: ${this.lostReason(why)}`));
    else this.earlyEnd = why;
  }

  async connect(): Promise<void> {
    await this.step.begin();
    const { socket, hello } = await new Promise<{ socket: Duplex; hello: AgentHello }>((resolve, reject) => {
      if (this.early) return resolve(this.early);
      if (this.earlyEnd) return reject(new TsmpiError('ERR_PEER_LOST', `${this.where}: ${this.lostReason(this.earlyEnd)}`));
      const timer = setTimeout(() => reject(new TsmpiError('ERR_TIMEOUT', `${this.where}: its agent did not call back within ${this.job.connectTimeoutMs} ms; ${this.lostReason('')}`)), this.job.connectTimeoutMs);
      this.arrive = (v) => {
        clearTimeout(timer);
        resolve(v);
      };
      this.fail = (e) => {
        clearTimeout(timer);
        reject(e);
      };
    });
    this.fail = null;
    if (hello.v !== CONTROL_VERSION) throw new TsmpiError('ERR_PROTOCOL', `${this.where} speaks protocol ${hello.v}, this launcher ${CONTROL_VERSION}`);
    this.slots = hello.slots;
    this.localAddress = (socket as tls.TLSSocket).localAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1';
    const conn = this.link(socket);
    socket.resume();
    this.fileKey = randomBytes(32);
    conn.sendControl({ t: 'open', fileKey: this.fileKey.toString('base64') });
  }

  override close(): void {
    super.close();
    this.step.close();
  }
}
