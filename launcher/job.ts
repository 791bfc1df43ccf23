/**
 * A job: compile the script once, start its ranks, be their rendezvous (hand out
 * addresses) and supervisor (forward output, watch exits, tear everything down
 * on the first failure, a timeout, abort or a signal).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { socketTransport } from '../runtime/transport/socket.js';
import type { Listener } from '../runtime/transport/transport.js';
import type { BlockedOp, QueuedMessage, RankToLauncher } from '../runtime/wire/control.js';
import { ENV } from '../runtime/world.js';
import { compileScript, CompileError } from './compile.js';
import { ControlServer } from './control-server.js';
import { LineForwarder } from './output.js';
import { rankMain } from './paths.js';

/** SIGTERM first; ranks still alive this long after are killed. */
const KILL_GRACE_MS = 1000;
/** How long a timeout report waits for ranks to say what they are blocked in. */
const DUMP_WAIT_MS = 1000;

export interface JobSpec {
  script: string;
  args: string[];
  /** host name of each rank, in rank order (all local for now) */
  hosts: string[];
  env: Record<string, string>;
  tagOutput: boolean;
  timeout: number | null;
  results: string | null;
}

interface RankState {
  rank: number;
  host: string;
  child: ChildProcess | null;
  pid: number;
  address: string | null;
  exited: boolean;
  closed: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** we sent it a signal during teardown */
  killed: boolean;
  stack: string | null;
  blocked: { ops: BlockedOp[]; queued: QueuedMessage[] } | null;
  out: LineForwarder;
  err: LineForwarder;
}

type Ending =
  | { kind: 'failure'; rank: number }
  | { kind: 'abort'; rank: number; code: number }
  | { kind: 'timeout' }
  | { kind: 'signal'; signal: NodeJS.Signals };

function safeWrite(stream: NodeJS.WriteStream, text: string): void {
  try {
    stream.write(text);
  } catch {
    // a closed stdout (e.g. piped into `head`) must not take the launcher down
  }
}

export function signalCode(signal: NodeJS.Signals | null): number {
  const n = signal ? (osConstants.signals as Record<string, number>)[signal] : undefined;
  return 128 + (n ?? 1);
}

export class Job {
  private readonly ranks: RankState[];
  private readonly secret = randomBytes(24).toString('hex');
  private dir = '';
  private control!: ControlServer;
  private listener: Listener | null = null;
  private tableSent = false;
  private ending: Ending | null = null;
  /** the first rank seen failing, before end() (deferred by a turn) ran */
  private firstFailure: number | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private timeoutTimer: NodeJS.Timeout | null = null;
  private resultsFd: number | null = null;
  private finish!: (code: number) => void;

  constructor(private readonly spec: JobSpec) {
    this.ranks = spec.hosts.map((host, rank) => {
      const prefix = spec.tagOutput ? `[${rank}] ` : '';
      return {
        rank,
        host,
        child: null,
        pid: 0,
        address: null,
        exited: false,
        closed: false,
        code: null,
        signal: null,
        killed: false,
        stack: null,
        blocked: null,
        out: new LineForwarder((t) => safeWrite(process.stdout, t), prefix),
        err: new LineForwarder((t) => safeWrite(process.stderr, t), prefix),
      };
    });
  }

  get size(): number {
    return this.ranks.length;
  }

  /** Run the job to its end; resolves to tsmpirun's exit status. */
  async run(): Promise<number> {
    this.dir = mkdtempSync(join(tmpdir(), 'tsmpi-'));
    // Listen for signals from the start: one during compiling must still
    // remove the job folder.
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.ending?.kind === 'signal') this.killAll('SIGKILL');
      else this.end({ kind: 'signal', signal });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    try {
      const compiled = join(this.dir, 'script.mjs');
      try {
        await compileScript(this.spec.script, compiled);
      } catch (e) {
        if (e instanceof CompileError) {
          safeWrite(process.stderr, `tsmpirun: ${e.message}\n`);
          return 1;
        }
        throw e;
      }
      if (this.spec.results && this.spec.results !== '-') this.resultsFd = openSync(this.spec.results, 'a');
      this.listener = await socketTransport.listen(this.localAddress('control'));
      this.control = new ControlServer(this.listener, this.size, this.secret, {
        message: (rank, m) => this.onMessage(rank, m),
        refused: () => {},
      });
      const done = new Promise<number>((resolve) => (this.finish = resolve));
      if (this.spec.timeout !== null) {
        this.timeoutTimer = setTimeout(() => void this.onTimeout(), this.spec.timeout * 1000);
      }
      // a signal while compiling or listening: start nothing
      if (this.ending) return this.exitCode();
      for (const r of this.ranks) this.start(r, compiled);
      return await done;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
      if (this.killTimer) clearTimeout(this.killTimer);
      this.listener?.close();
      if (this.resultsFd !== null) closeSync(this.resultsFd);
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private localAddress(name: string): string {
    if (process.platform === 'win32') return `pipe:\\\\.\\pipe\\${this.dir.split(/[\\/]/).pop()}-${name}`;
    return `unix:${join(this.dir, `${name}.sock`)}`;
  }

  private start(r: RankState, compiled: string): void {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.spec.env,
      [ENV.control]: this.listener!.address,
      [ENV.rank]: String(r.rank),
      [ENV.size]: String(this.size),
      [ENV.secret]: this.secret,
      [ENV.listen]: this.localAddress(`r${r.rank}`),
      [ENV.host]: r.host,
    };
    const child = spawn(process.execPath, [rankMain, compiled, this.spec.script, ...this.spec.args], {
      env,
      stdio: [r.rank === 0 ? 'inherit' : 'ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    r.child = child;
    r.pid = child.pid ?? 0;
    child.stdout!.on('data', (c: Buffer) => r.out.push(c));
    child.stderr!.on('data', (c: Buffer) => r.err.push(c));
    child.on('error', (e) => {
      // could not start at all
      r.stack = `cannot start rank ${r.rank}: ${e.message}`;
      if (!r.exited) this.onExit(r, 127, null);
      if (!r.closed) this.onClose(r);
    });
    child.on('exit', (code, signal) => this.onExit(r, code, signal));
    child.on('close', () => this.onClose(r));
  }

  private onMessage(rank: number, m: RankToLauncher): void {
    const r = this.ranks[rank]!;
    switch (m.t) {
      case 'listening':
        r.address = m.address;
        this.maybeSendTable();
        break;
      case 'failed':
        r.stack = m.stack;
        break;
      case 'abort':
        this.end({ kind: 'abort', rank, code: m.code });
        break;
      case 'partial':
        this.onPartial(r, m.value, m.time);
        break;
      case 'progress':
        break;
      case 'blocked':
        r.blocked = { ops: m.ops, queued: m.queued };
        break;
      case 'hello':
        break;
    }
  }

  private onPartial(r: RankState, value: unknown, time: number): void {
    const line = JSON.stringify({ rank: r.rank, host: r.host, time, value }) + '\n';
    if (this.resultsFd !== null) writeSync(this.resultsFd, line);
    else if (this.spec.results === '-') safeWrite(process.stdout, line);
    else safeWrite(process.stdout, `[partial ${r.rank}] ${JSON.stringify(value)}\n`);
  }

  /** Once every rank listens (or ended without joining), give everyone the address table. */
  private maybeSendTable(): void {
    if (this.tableSent) return;
    if (!this.ranks.every((r) => r.address !== null || r.exited)) return;
    this.tableSent = true;
    const addresses = this.ranks.map((r) => (r.exited ? null : r.address));
    for (const r of this.ranks) if (!r.exited) this.control.send(r.rank, { t: 'table', addresses });
  }

  private onExit(r: RankState, code: number | null, signal: NodeJS.Signals | null): void {
    if (r.exited) return;
    r.exited = true;
    r.code = code;
    r.signal = signal;
    const failed = signal !== null || (code ?? 0) !== 0;
    // Not at once: exits that arrive together (one SIGCHLD, or an abort message
    // read in the same turn) are all recorded first, so none of those ranks is
    // counted as ended by us, and the lowest of them is reported.
    if (failed && !this.ending && this.firstFailure === null) {
      this.firstFailure = r.rank;
      setImmediate(() => this.end({ kind: 'failure', rank: r.rank }));
    }
    for (const o of this.ranks) if (!o.exited) this.control.send(o.rank, { t: 'gone', rank: r.rank });
    this.maybeSendTable();
  }

  private onClose(r: RankState): void {
    if (r.closed) return;
    r.closed = true;
    r.out.flush();
    r.err.flush();
    if (!this.ranks.every((x) => x.closed)) return;
    // the last rank may close before the deferred end() of a failure ran
    if (this.firstFailure !== null) this.end({ kind: 'failure', rank: this.firstFailure });
    this.finish(this.exitCode());
  }

  /** Begin the end of the job (first cause wins); every live rank is ended. */
  private end(why: Ending): void {
    if (this.ending) return;
    this.ending = why;
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    this.killAll('SIGTERM');
    this.killTimer = setTimeout(() => this.killAll('SIGKILL'), KILL_GRACE_MS);
    this.killTimer.unref();
  }

  private killAll(signal: NodeJS.Signals): void {
    for (const r of this.ranks) {
      if (r.exited || !r.child) continue;
      r.killed = true;
      try {
        r.child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  private async onTimeout(): Promise<void> {
    if (this.ending) return;
    const live = this.ranks.filter((r) => !r.exited);
    for (const r of live) this.control.send(r.rank, { t: 'dump' });
    const deadline = Date.now() + DUMP_WAIT_MS;
    while (Date.now() < deadline && live.some((r) => !r.exited && r.blocked === null && this.control.connected(r.rank))) {
      await new Promise((res) => setTimeout(res, 20));
    }
    const lines = [`tsmpirun: the job ran longer than --timeout ${this.spec.timeout} s; ending it`];
    for (const r of this.ranks) lines.push(...describeRank(r));
    safeWrite(process.stderr, lines.join('\n') + '\n');
    this.end({ kind: 'timeout' });
  }

  private exitCode(): number {
    const e = this.ending;
    if (e === null) return 0;
    switch (e.kind) {
      case 'timeout':
        return 124;
      case 'abort':
        safeWrite(process.stderr, `tsmpirun: rank ${e.rank} on ${this.ranks[e.rank]!.host} called abort(${e.code}); every rank was ended\n`);
        return e.code;
      case 'signal':
        safeWrite(process.stderr, `tsmpirun: received ${e.signal}; every rank was ended\n`);
        return signalCode(e.signal);
      case 'failure': {
        // The lowest rank that failed on its own (not one we ended).
        const failed = this.ranks.filter((r) => !r.killed && (r.signal !== null || (r.code ?? 0) !== 0));
        const r = failed[0] ?? this.ranks[e.rank]!;
        const how = r.signal ? `was killed by signal ${r.signal}` : `exited with code ${r.code}`;
        const others = this.ranks.filter((x) => x.killed).length;
        const stack = r.stack ? '\n' + r.stack.replace(/^/gm, '  ') : '';
        safeWrite(
          process.stderr,
          `tsmpirun: rank ${r.rank} on ${r.host} (pid ${r.pid}) ${how}${stack}\n` + (others ? `tsmpirun: ended ${others} other rank${others === 1 ? '' : 's'}\n` : ''),
        );
        return r.signal ? signalCode(r.signal) : (r.code ?? 1);
      }
    }
  }
}

function describeRank(r: RankState): string[] {
  if (r.exited) return [`  rank ${r.rank} (${r.host}): finished, ${r.signal ? `signal ${r.signal}` : `exit ${r.code}`}`];
  if (!r.blocked) return [`  rank ${r.rank} (${r.host}): running, did not answer (busy outside tsmpi?)`];
  const out: string[] = [];
  if (r.blocked.ops.length === 0) out.push(`  rank ${r.rank} (${r.host}): running, not blocked in tsmpi`);
  for (const op of r.blocked.ops) out.push(`  rank ${r.rank} (${r.host}): ${op.op} on comm ${op.comm} for ${op.seconds.toFixed(1)} s`);
  if (r.blocked.queued.length) {
    const q = r.blocked.queued.slice(0, 8).map((m) => `from ${m.source} tag ${m.tag} (${m.bytes} B) on comm ${m.comm}`);
    out.push(`    unmatched in its queue: ${q.join('; ')}${r.blocked.queued.length > 8 ? `; and ${r.blocked.queued.length - 8} more` : ''}`);
  }
  return out;
}
