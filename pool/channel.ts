/** One worker as the pool's engine sees it, whatever runs it. */
import type { FromWorker, ToWorker } from './messages.js';

export interface Channel {
  /** where it runs: the host's name as the user gave it */
  readonly host: string;
  /** on this machine: the pool replaces it when it is lost */
  readonly local: boolean;
  /** throws ERR_SERIALIZE (nothing sent) when the message cannot travel */
  send(m: ToWorker): void;
  /** whether it keeps this process alive (the pool lets go while idle) */
  ref(on: boolean): void;
  /** end it now (a cancelled or timed-out task, terminate) */
  kill(): void;
  /** set by the engine */
  onMessage: (m: FromWorker) => void;
  /** the worker (or its host) is gone; called once. `ours`: the pool ended it (cancel, timeout, terminate) */
  onLost: (why: string, ours: boolean) => void;
}
