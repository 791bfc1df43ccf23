/** Where ranks run: this machine, or a remote host's daemon. The job sees only this. */
import type { LauncherToRank, RankToLauncher } from '../../runtime/wire/control.js';

export interface HostEvents {
  message(rank: number, m: RankToLauncher): void;
  output(rank: number, stream: 1 | 2, chunk: Buffer): void;
  /** the rank's process ended */
  exit(rank: number, code: number | null, signal: NodeJS.Signals | null): void;
  /** the rank's output is complete (after exit) */
  closed(rank: number): void;
  /** the host itself is gone (daemon died, connection cut): its ranks are lost */
  lost(reason: string): void;
}

export interface RankHost {
  /** the name the user gave (`localhost`, `hostB`) */
  readonly name: string;
  readonly ranks: readonly number[];
  /** cores the host has for ranks (more ranks than this: crowded) */
  readonly slots: number;
  /** Start the ranks; resolves once they are running. */
  start(events: HostEvents): Promise<void>;
  send(rank: number, m: LauncherToRank): boolean;
  connected(rank: number): boolean;
  pid(rank: number): number;
  /** Signal every live rank of this host. */
  kill(signal: NodeJS.Signals): void;
  /** Release what the host holds (sockets); ranks must have ended. */
  close(): void;
  /** Whether the host's processes and links keep this process alive (default: they do). A task pool lets go while idle. */
  ref?(on: boolean): void;
}
