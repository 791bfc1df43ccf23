/**
 * The agent's end of a `--threads` job on its host: one per-job process
 * (thread-job-main.ts), cwd the job folder, runs every rank of the host as a
 * worker thread; this relays its ranks' control messages, output and exits.
 * If that process dies, every rank it had that did not report its exit is
 * reported ended with the process's code or signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { AgentToThreadJob, LauncherToRank, RankToLauncher, ThreadJobToAgent } from '../../runtime/wire/control.js';
import { threadJobMain } from '../os/paths.js';

export interface ThreadJobEvents {
  message(rank: number, m: RankToLauncher): void;
  /** (the agent calls `hold` while its link to the launcher is congested) */
  output(rank: number, stream: 1 | 2, chunk: Buffer): void;
  exit(rank: number, code: number | null, signal: string | null): void;
}

export class ThreadJob {
  private readonly child: ChildProcess;
  private readonly live: Set<number>;
  private holding = false;
  /** resolves once the process is gone (its cwd holds the job folder: Windows cannot remove it before) */
  readonly closed: Promise<void>;

  constructor(job: Extract<AgentToThreadJob, { t: 'job' }>, private readonly ev: ThreadJobEvents) {
    this.live = new Set(job.ranks);
    // the folder on its command line only names the job for ps (and test beds)
    this.child = spawn(process.execPath, [threadJobMain, job.dir], {
      cwd: job.dir,
      env: process.env,
      // stdout stays closed: an ssh agent's stdout is its link to the launcher
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
      windowsHide: true,
    });
    this.child.on('message', (m: ThreadJobToAgent) => this.onMessage(m));
    this.child.on('error', () => {});
    let closed!: () => void;
    this.closed = new Promise((r) => (closed = r));
    // 'close': after the last message on the channel too
    this.child.on('close', (code, signal) => {
      for (const rank of [...this.live]) this.ended(rank, code === 0 && !signal ? 1 : code, signal);
      closed();
    });
    this.post(job);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Whether `rank` has not reported its exit yet. */
  running(rank: number): boolean {
    return this.live.has(rank);
  }

  send(rank: number, m: LauncherToRank): void {
    this.post({ t: 'ctl', rank, m });
  }

  /** SIGTERM: the ranks end as on the launcher's machine; SIGKILL: the process itself goes. */
  kill(signal: NodeJS.Signals): void {
    if (signal === 'SIGKILL') {
      try {
        this.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    } else this.post({ t: 'kill', signal });
  }

  /** Pause (or resume) the ranks' output at its source. */
  hold(on: boolean): void {
    if (on === this.holding) return;
    this.holding = on;
    this.post({ t: 'hold', on });
  }

  private post(m: AgentToThreadJob): void {
    if (this.child.connected) this.child.send(m, undefined, {}, () => {});
  }

  private onMessage(m: ThreadJobToAgent): void {
    switch (m.t) {
      case 'rank':
        if (this.live.has(m.rank)) this.ev.message(m.rank, m.m);
        return;
      case 'out':
        if (this.live.has(m.rank)) this.ev.output(m.rank, m.stream, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
        return;
      case 'exit':
        this.ended(m.rank, m.code, m.signal);
        return;
    }
  }

  private ended(rank: number, code: number | null, signal: string | null): void {
    if (this.live.delete(rank)) this.ev.exit(rank, code, signal);
  }
}
