/**
 * Where a pool's workers come from: each worker is a rank of a small internal
 * job started through the launcher's RankHost implementations (one
 * implementation of hosts, keys, pinned host keys and encrypted staging for
 * tsmpirun and the pool), running pool/worker-main.js. The pool's process plays
 * the launcher's part: control server, supervisor (exits and lost hosts).
 *
 * `makeHost` is the one place that picks an implementation by `via`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { HostSpec } from '../launcher/hostlist/hosts.js';
import { LocalHost } from '../launcher/hosts/local-host.js';
import type { HostEvents, RankHost } from '../launcher/hosts/rank-host.js';
import type { StagedSource } from '../launcher/hosts/tsmpid-host.js';
import { sweepStaleJobFolders } from '../launcher/job/job-folder.js';
import { POOL_WORKER_PLACEHOLDER, SCRIPT_FILE } from '../launcher/job/placeholders.js';
import { poolWorkerEntry } from '../launcher/os/paths.js';
import type { Channel } from './channel.js';
import { fromControl, toControl, type FromWorker } from './messages.js';

export type Via = 'tsmpid' | 'ssh';

/** The pool's own folder on this machine (control sockets, compiled tasks, the remote workers' stub). */
export class PoolDir {
  readonly path: string;
  private n = 0;
  constructor() {
    this.path = mkdtempSync(join(tmpdir(), 'tsmpi-'));
    // A pool process killed by SIGKILL cannot clean up: the next tsmpirun or pool does.
    writeFileSync(join(this.path, 'launcher.pid'), String(process.pid));
    const keep = this.path;
    setImmediate(() => sweepStaleJobFolders(tmpdir(), keep));
  }
  /**
   * A fresh sub-folder (one per local worker: its control socket). Named after
   * the pool's folder too: on Windows the socket is a named pipe named by the
   * folder's base name, which must not collide with another pool's.
   */
  sub(prefix: string): string {
    const d = join(this.path, `${basename(this.path)}-${prefix}${this.n++}`);
    mkdirSync(d, { mode: 0o700 });
    return d;
  }
}

export interface RemoteSettings {
  via: Via;
  identityFile: string;
  knownHostsFile: string;
  sshCommand: string[] | null;
  files: string[];
  note(line: string): void;
}

/** Output of a worker goes to this process's stdout/stderr. */
function forward(stream: 1 | 2, chunk: Buffer): void {
  try {
    (stream === 1 ? process.stdout : process.stderr).write(chunk);
  } catch {
    // a closed stdout must not take the pool down
  }
}

/** Channels over one RankHost's ranks. */
class HostChannels {
  readonly channels = new Map<number, HostChannel>();
  constructor(readonly host: RankHost, local: boolean) {
    for (const r of host.ranks) this.channels.set(r, new HostChannel(this, r, local));
  }
  events(): HostEvents {
    return {
      message: (rank, m) => {
        const c = this.channels.get(rank);
        if (!c || m.t !== 'pool') return;
        let v: FromWorker;
        try {
          v = fromControl(m) as FromWorker;
        } catch (e) {
          c.lost(`sent a malformed message (${(e as Error).message})`);
          return;
        }
        c.onMessage(v);
      },
      output: (_rank, stream, chunk) => forward(stream, chunk),
      exit: (rank, code, signal) => this.channels.get(rank)?.lost(signal ? `was killed by ${signal}` : `exited with code ${code}`),
      closed: () => {},
      lost: (reason) => {
        for (const c of this.channels.values()) c.lost(`its host ${this.host.name} was lost (${reason})`);
      },
    };
  }
  /** Every rank of the host is gone: release it. */
  maybeClose(): void {
    if ([...this.channels.values()].every((c) => c.gone)) this.host.close();
  }
}

class HostChannel implements Channel {
  gone = false;
  onMessage: (m: FromWorker) => void = () => {};
  onLost: (why: string, ours: boolean) => void = () => {};
  constructor(private readonly owner: HostChannels, private readonly rank: number, readonly local: boolean) {}
  get host(): string {
    return this.owner.host.name;
  }
  send(m: Parameters<Channel['send']>[0]): void {
    const c = toControl(m);
    if (!this.gone && !this.owner.host.send(this.rank, c)) {
      // not connected yet or any more: the exit event follows
    }
  }
  ref(on: boolean): void {
    this.owner.host.ref?.(on);
  }
  kill(): void {
    if (this.gone) return;
    if (this.local || this.owner.host.ranks.length === 1) {
      this.owner.host.kill('SIGKILL');
      this.lost('was ended by the pool', true);
      return;
    }
    // A daemon signals all of a job's ranks at once: every worker of that host
    // ends, and the others' tasks go back to the queue (ours, not a loss).
    this.owner.host.kill('SIGKILL');
    for (const c of this.owner.channels.values()) c.lost('was ended by the pool', true);
  }
  lost(why: string, ours = false): void {
    if (this.gone) return;
    this.gone = true;
    this.onLost(why, ours);
    this.owner.maybeClose();
  }
}

/** The remote workers' script: one import, which the host's tsmpid points at its own install. */
function remoteStub(dir: PoolDir): string {
  const stub = join(dir.path, 'pool-worker.mjs');
  writeFileSync(stub, `import ${JSON.stringify(POOL_WORKER_PLACEHOLDER)};\n`);
  return stub;
}

/** One local worker: a one-rank job on this machine. */
export async function startLocalWorker(dir: PoolDir): Promise<Channel> {
  const sub = dir.sub('w');
  const host = new LocalHost({
    name: 'localhost',
    ranks: [0],
    size: 1,
    secret: randomBytes(24).toString('hex'),
    dir: sub,
    compiled: poolWorkerEntry,
    script: poolWorkerEntry,
    args: [],
    env: {},
    hostId: `pool:${hostname()}`,
    listenTls: null,
    tlsDir: null,
  });
  const hc = new HostChannels(host, true);
  await host.start(hc.events());
  host.go();
  return hc.channels.get(0)!;
}

/**
 * `count` workers on a remote host: connect (TLS, pinned host key, our key),
 * stage the stub and the pool's files, start them. Rejects when the host
 * cannot be reached or refuses.
 */
export async function startRemoteWorkers(spec: HostSpec, count: number, settings: RemoteSettings, dir: PoolDir): Promise<Channel[]> {
  const host = await makeHost(spec, count, settings, dir);
  await host.connect();
  const hc = new HostChannels(host, false);
  await host.start(hc.events());
  return [...hc.channels.values()];
}

/** The one factory of remote RankHosts: `via` picks the implementation. */
async function makeHost(spec: HostSpec, count: number, s: RemoteSettings, dir: PoolDir): Promise<RankHost & { connect(): Promise<void> }> {
  const [{ fileDigest }, { createTlsIdentity }, { stagedName }, { statSync }] = await Promise.all([
    import('../launcher/staging/staging.js'),
    import('../launcher/keys/x509.js'),
    import('../launcher/job/job.js'),
    import('node:fs'),
  ]);
  const script = remoteStub(dir);
  const files: StagedSource[] = [{ path: script, name: SCRIPT_FILE, ...(await fileDigest(script)) }];
  for (const f of s.files) files.push({ path: f, name: stagedName(f), size: statSync(f).size, sha256: '' });
  const job = {
    ranks: Array.from({ length: count }, (_, i) => i),
    size: count,
    secret: randomBytes(24).toString('hex'),
    files,
    script: 'pool-worker.mjs',
    args: [],
    env: {},
    hostId: `${spec.name}:${spec.port}`,
    credential: createTlsIdentity('tsmpi pool'),
    oversubscribe: true,
    connectTimeoutMs: 10_000,
    note: s.note,
  };
  if (s.via === 'ssh') {
    const { SshHost, DEFAULT_SSH } = await import('../launcher/hosts/ssh-host.js');
    return new SshHost({ ...job, host: spec, ssh: s.sshCommand ? { ...DEFAULT_SSH, command: s.sshCommand } : DEFAULT_SSH });
  }
  const [{ RemoteHost }, { KnownHosts, readIdentity }] = await Promise.all([import('../launcher/hosts/tsmpid-host.js'), import('../launcher/keys/keys.js')]);
  return new RemoteHost({ ...job, host: spec, identity: readIdentity(s.identityFile), knownHosts: new KnownHosts(s.knownHostsFile), knownHostsFile: s.knownHostsFile });
}

