/**
 * The launcher's end of the control channel: ranks connect, say who they are
 * (checked against the job's secret), then exchange typed control messages.
 */
import { timingSafeEqual } from 'node:crypto';
import { controlDecoder, encodeControl } from '../../runtime/control.js';
import { TsmpiError } from '../../runtime/errors.js';
import { CONTROL_VERSION, parseRankMessage, type LauncherToRank, type RankToLauncher } from '../../runtime/wire/control.js';
import type { Link, Listener } from '../../runtime/transport/transport.js';
import { feedFrames } from '../../runtime/transport/feed.js';

export interface ControlEvents {
  message(rank: number, m: RankToLauncher): void;
  /** a connection that never identified itself properly was dropped */
  refused(reason: string): void;
  /** a rank identified itself */
  joined?(rank: number): void;
  /** an identified rank's control link closed (everything it sent has been read) */
  left?(rank: number): void;
}

/** How long a dead rank's control link may take to deliver its last messages. */
const DRAIN_LIMIT_MS = 5000;

export class ControlServer {
  private readonly links = new Map<number, Link>();
  private readonly joinedRanks = new Set<number>();
  private readonly leftRanks = new Set<number>();
  private readonly drainWaiters = new Map<number, () => void>();
  private refOn = true;

  constructor(
    listener: Listener,
    private readonly size: number,
    private readonly secret: string,
    private readonly events: ControlEvents,
  ) {
    listener.onLink((link) => this.accept(link));
  }

  private accept(link: Link): void {
    if (!this.refOn) link.ref(false);
    let rank = -1;
    const decoder = controlDecoder((v) => {
      const m = parseRankMessage(v);
      if (rank < 0) {
        rank = this.checkHello(m, link);
        this.joinedRanks.add(rank);
        this.events.joined?.(rank);
        return;
      }
      this.events.message(rank, m);
    });
    feedFrames(link, decoder, (e) => this.events.refused(e.message));
    link.onClose(() => {
      if (rank >= 0 && this.links.get(rank) === link) {
        this.links.delete(rank);
        this.leftRanks.add(rank);
        this.drainWaiters.get(rank)?.();
        this.events.left?.(rank);
      }
    });
  }

  private checkHello(m: RankToLauncher, link: Link): number {
    if (m.t !== 'hello') throw new TsmpiError('ERR_PROTOCOL', 'a control link must start with hello');
    if (m.v !== CONTROL_VERSION) {
      link.write(encodeControl({ t: 'refused', code: 'ERR_PROTOCOL', message: `control protocol version ${m.v} is not ${CONTROL_VERSION}` }));
      throw new TsmpiError('ERR_PROTOCOL', `a rank speaks control protocol version ${m.v}, the launcher ${CONTROL_VERSION}`);
    }
    const a = Buffer.from(m.secret);
    const b = Buffer.from(this.secret);
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw new TsmpiError('ERR_AUTH', 'a control link does not know the job secret');
    if (!Number.isInteger(m.rank) || m.rank < 0 || m.rank >= this.size || this.links.has(m.rank)) {
      throw new TsmpiError('ERR_PROTOCOL', `a control link claims rank ${m.rank}, which is not free`);
    }
    this.links.set(m.rank, link);
    return m.rank;
  }

  /**
   * Once a rank's process is gone: call `done` when everything it sent on its
   * control link has been read (partial results, stats), or after a bound.
   */
  whenDrained(rank: number, done: () => void): void {
    if (!this.joinedRanks.has(rank) || this.leftRanks.has(rank)) {
      done();
      return;
    }
    const timer = setTimeout(finish, DRAIN_LIMIT_MS);
    const waiters = this.drainWaiters;
    function finish(): void {
      clearTimeout(timer);
      waiters.delete(rank);
      done();
    }
    waiters.set(rank, finish);
  }

  send(rank: number, m: LauncherToRank): boolean {
    const link = this.links.get(rank);
    if (!link) return false;
    link.write(encodeControl(m));
    return true;
  }

  connected(rank: number): boolean {
    return this.links.has(rank);
  }

  /** Whether the ranks' control links keep this process alive. */
  ref(on: boolean): void {
    this.refOn = on;
    for (const l of this.links.values()) l.ref(on);
  }
}
