/** Ranks on this machine: child processes talking over a local control socket. */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { socketTransport } from '../../runtime/transport/socket.js';
import type { Listener } from '../../runtime/transport/transport.js';
import type { LauncherToRank } from '../../runtime/wire/control.js';
import { ENV } from '../../runtime/env.js';
import { ControlServer } from '../link/control-server.js';
import { rankMain } from '../os/paths.js';
import { localAddress } from '../os/platform.js';
import type { HostEvents, RankHost } from './rank-host.js';

/** One running rank, whatever runs it (a child process, a worker thread). */
export interface RankChild {
  readonly pid: number;
  readonly stdout: NodeJS.ReadableStream;
  readonly stderr: NodeJS.ReadableStream;
  /** it could not start */
  onError(cb: (e: Error) => void): void;
  /** `why`: what ended it, when the rank itself could not say (a thread out of heap) */
  onExit(cb: (code: number | null, signal: NodeJS.Signals | null, why?: string) => void): void;
  /** after exit, once its output is complete */
  onClose(cb: () => void): void;
  kill(signal: NodeJS.Signals): void;
  /** Whether it (and its output) keeps the launcher's process alive. */
  ref(on: boolean): void;
}

function processChild(child: ChildProcess): RankChild {
  return {
    pid: child.pid ?? 0,
    stdout: child.stdout!,
    stderr: child.stderr!,
    onError: (cb) => child.on('error', cb),
    onExit: (cb) => child.on('exit', cb),
    onClose: (cb) => child.on('close', cb),
    kill: (signal) => child.kill(signal),
    ref: (on) => {
      if (on) child.ref();
      else child.unref();
      for (const s of [child.stdout, child.stderr] as (NodeJS.ReadableStream & { ref?(): void; unref?(): void })[]) {
        if (on) s?.ref?.();
        else s?.unref?.();
      }
    },
  };
}

export interface LocalHostSpec {
  name: string;
  ranks: number[];
  size: number;
  secret: string;
  /** the job's private folder on this machine */
  dir: string;
  compiled: string;
  /** the rank entry its ranks start (default: rank-main; a job's ranks use the rank bundle's, which its compiled script shares) */
  rankMain?: string;
  script: string;
  args: string[];
  env: Record<string, string>;
  hostId: string;
  /** set when the job spans hosts: `tls:IP:0` and the credential folder */
  listenTls: string | null;
  tlsDir: string | null;
  /** where rank `rank` listens for the ranks of this host (default: a socket in `dir`) */
  rankListen?: (rank: number) => string;
}

export { localAddress };

export class LocalHost implements RankHost {
  readonly name: string;
  readonly ranks: readonly number[];
  readonly slots = availableParallelism();
  private control: ControlServer | null = null;
  private listener: Listener | null = null;
  private readonly children = new Map<number, RankChild>();
  private readonly live = new Set<number>();
  private readonly joined = new Set<number>();
  private ready = false;

  constructor(protected readonly s: LocalHostSpec) {
    this.name = s.name;
    this.ranks = s.ranks;
  }

  async start(ev: HostEvents): Promise<void> {
    const s = this.s;
    this.listener = await this.controlListener();
    this.control = new ControlServer(this.listener, s.size, s.secret, {
      message: ev.message,
      refused: () => {},
      joined: (rank) => {
        this.joined.add(rank);
        if (this.ready) this.control!.send(rank, { t: 'run' });
      },
    });
    for (const rank of s.ranks) {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        ...s.env,
        [ENV.control]: this.listener.address,
        [ENV.rank]: String(rank),
        [ENV.size]: String(s.size),
        [ENV.secret]: s.secret,
        [ENV.listen]: s.rankListen ? s.rankListen(rank) : localAddress(s.dir, `r${rank}`),
        [ENV.host]: s.name,
        [ENV.hostId]: s.hostId,
      };
      if (s.listenTls) env[ENV.listenTls] = s.listenTls;
      if (s.tlsDir) env[ENV.tlsDir] = s.tlsDir;
      const child = this.startRank(rank, env, [s.compiled, s.script, ...s.args]);
      this.children.set(rank, child);
      this.live.add(rank);
      let exited = false;
      let closed = false;
      child.stdout.on('data', (c: Buffer) => ev.output(rank, 1, c));
      child.stderr.on('data', (c: Buffer) => ev.output(rank, 2, c));
      child.onError((e) => {
        // could not start at all
        ev.message(rank, { t: 'failed', stack: `cannot start rank ${rank}: ${e.message}` });
        if (!exited) {
          exited = true;
          this.live.delete(rank);
          ev.exit(rank, 127, null);
        }
        if (!closed) {
          closed = true;
          ev.closed(rank);
        }
      });
      child.onExit((code, signal, why) => {
        if (exited) return;
        exited = true;
        this.live.delete(rank);
        this.ended(rank);
        if (why) ev.message(rank, { t: 'failed', stack: why });
        ev.exit(rank, code, signal);
      });
      child.onClose(() => {
        if (closed) return;
        closed = true;
        // Its last control messages may still be unread: closed once they are in.
        this.control!.whenDrained(rank, () => ev.closed(rank));
      });
    }
  }

  /** Where the ranks' control links arrive: a local socket here; ports in ThreadHost. */
  protected controlListener(): Promise<Listener> {
    return socketTransport.listen(localAddress(this.s.dir, 'control'));
  }

  /** Start one rank running `rank-main ARGV…` with `env`: a child process here; threads in ThreadHost. */
  protected startRank(rank: number, env: NodeJS.ProcessEnv, argv: string[]): RankChild {
    return processChild(
      spawn(process.execPath, [this.s.rankMain ?? rankMain, ...argv], {
        env,
        stdio: [rank === 0 ? 'inherit' : 'ignore', 'pipe', 'pipe'],
        windowsHide: true,
      }),
    );
  }

  /** A rank ended (before its exit is reported). */
  protected ended(_rank: number): void {}

  /** The compiled script is in place: let every rank (now or once it joins) import it. */
  go(): void {
    this.ready = true;
    for (const rank of this.joined) this.control!.send(rank, { t: 'run' });
  }

  send(rank: number, m: LauncherToRank): boolean {
    return this.control?.send(rank, m) ?? false;
  }

  connected(rank: number): boolean {
    return this.control?.connected(rank) ?? false;
  }

  pid(rank: number): number {
    return this.children.get(rank)?.pid ?? 0;
  }

  kill(signal: NodeJS.Signals): void {
    for (const rank of this.live) {
      try {
        this.children.get(rank)?.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  close(): void {
    this.listener?.close();
  }

  /** Pause (or resume) every rank's output: whoever reads it cannot keep up. */
  holdOutput(on: boolean): void {
    for (const c of this.children.values()) {
      for (const s of [c.stdout, c.stderr]) {
        if (on) s.pause();
        else s.resume();
      }
    }
  }

  ref(on: boolean): void {
    for (const c of this.children.values()) c.ref(on);
    this.control?.ref(on);
  }
}
