/**
 * Ranks on another machine reached through OpenSSH, as `mpirun --host` does:
 * one `ssh -T HOST node PREFIX/dist/launcher/agent/agent-main.js --stdio` per
 * host, and the SSH channel's stdin/stdout is the link to the agent there (no
 * daemon, no port of the agent's own). SSH authenticated both ends and encrypts
 * the channel, so the file key is simply sent over it and staging is the same
 * sealed path as through tsmpid. Closing the channel (the launcher ends, dies,
 * or kills its ssh) is EOF on the agent's stdin: it ends its ranks and exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { TsmpiError } from '../../runtime/errors.js';
import { CONTROL_VERSION } from '../../runtime/wire/control.js';
import type { HostSpec } from '../hostlist/hosts.js';
import { stdioLink } from '../link/stdio-link.js';
import { distDir } from '../os/paths.js';
import { AgentHost, whatItSaid, type AgentJobSpec } from './agent-host.js';

export interface SshOptions {
  /** the ssh command and its own options (`--ssh-command "ssh -F cfg"`); default ['ssh'] */
  command: string[];
  /** node on the far host (`--remote-node`); default 'node' */
  remoteNode: string;
  /** the tsmpi package's folder there (`--remote-prefix`); default: this install's */
  remotePrefix: string;
}

export const DEFAULT_SSH: SshOptions = { command: ['ssh'], remoteNode: 'node', remotePrefix: join(distDir, '..') };

export interface SshHostSpec extends AgentJobSpec {
  host: HostSpec;
  ssh: SshOptions;
}

/** Quote one word for the remote shell (ssh joins its arguments with spaces). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The ssh client's argv for reaching `host` (POSIX paths there). */
export function sshArgv(host: string, o: SshOptions): string[] {
  const prefix = o.remotePrefix.replace(/\/+$/, '');
  const agent = `${prefix}/dist/launcher/agent/agent-main.js`;
  // -T: no pty (a pty mangles the stream); BatchMode: no prompt can hang the
  // job (stdin is the protocol, not a terminal); never -n (stdin is the link).
  return [...o.command, '-T', '-o', 'BatchMode=yes', host, [o.remoteNode, agent, '--stdio'].map(shellQuote).join(' ')];
}

/** Most of ssh's stderr kept for error messages. */
const STDERR_TAIL = 4096;

export class SshHost extends AgentHost {
  readonly name: string;
  private child: ChildProcess | null = null;
  private stderrTail = '';
  private exitText: string | null = null;
  private reaper: NodeJS.Timeout | null = null;

  constructor(private readonly s: SshHostSpec) {
    super(s);
    this.name = s.host.name;
  }

  protected get where(): string {
    return `${this.s.host.name} (ssh)`;
  }

  protected override lostReason(why: string): string {
    const err = whatItSaid(this.stderrTail);
    return [why, this.exitText ?? '', err ? `ssh said: ${err}` : ''].filter(Boolean).join('; ');
  }

  /** Start ssh and the agent there; resolves once the agent said hello. */
  async connect(): Promise<void> {
    const [cmd, ...args] = sshArgv(this.s.host.name, this.s.ssh);
    const child = (this.child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true }));
    const exited = new Promise<void>((resolve) => {
      child.on('error', (e) => {
        this.exitText = `cannot run ${JSON.stringify(cmd)}: ${e.message}`;
        resolve();
      });
      child.on('exit', (code, signal) => {
        this.exitText = `ssh exited with ${signal ?? `code ${code}`}`;
        if (this.reaper) clearTimeout(this.reaper);
        resolve();
      });
    });
    child.stderr!.on('data', (c: Buffer) => {
      this.stderrTail = (this.stderrTail + c.toString('utf8')).slice(-STDERR_TAIL);
    });
    const conn = this.link(stdioLink(child.stdout!, child.stdin!, { skipToMark: true }));
    let hello;
    try {
      hello = await this.next('agent');
    } catch (e) {
      child.kill('SIGKILL');
      await exited;
      // ssh exits 255 for a refused key as for a failed connection: its words tell them apart
      const refused = /permission denied|host key verification failed|no matching host key/i.test(this.stderrTail);
      const err = e as TsmpiError;
      throw new TsmpiError(refused ? 'ERR_AUTH' : err.code === 'ERR_TIMEOUT' ? 'ERR_TIMEOUT' : 'ERR_PEER_LOST', `cannot start the agent on ${this.where}: ${refused ? this.lostReason(err.message) : err.message}`, { cause: e });
    }
    if (hello.t !== 'agent') throw new TsmpiError('ERR_PROTOCOL', `${this.where}: expected the agent's hello`);
    if (hello.v !== CONTROL_VERSION) throw new TsmpiError('ERR_PROTOCOL', `${this.where} speaks protocol ${hello.v}, this launcher ${CONTROL_VERSION}`);
    this.slots = hello.slots;
    if (hello.peerHost) this.localAddress = hello.peerHost.replace(/^::ffff:/, '');
    this.fileKey = randomBytes(32);
    conn.sendControl({ t: 'open', fileKey: this.fileKey.toString('base64') });
  }

  override ref(on: boolean): void {
    super.ref(on);
    const child = this.child;
    if (!child) return;
    if (on) child.ref();
    else child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr] as ({ ref?(): void; unref?(): void } | null)[]) {
      if (on) s?.ref?.();
      else s?.unref?.();
    }
  }

  override close(): void {
    super.close();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // The agent exits at EOF and ssh with it; an ssh stuck on a dead network is ended.
    this.reaper = setTimeout(() => child.kill('SIGKILL'), 3000);
  }
}
