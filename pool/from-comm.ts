/**
 * Pool.fromComm (mpi4py.futures' MPIPoolExecutor under mpiexec): inside a
 * tsmpirun job, the root gets a Pool whose workers are the communicator's
 * other ranks; they serve its tasks (pool/worker.ts) over a private duplicate
 * of the communicator and resolve null once the root's pool is closed.
 */
import type { Comm } from '../runtime/comm.js';
import { ANY_SOURCE } from '../runtime/constants.js';
import { TsmpiError } from '../runtime/errors.js';
import { encodeValue } from '../runtime/wire/codec.js';
import type { Channel } from './channel.js';
import type { FromWorker, ToWorker } from './messages.js';
import type { Pool } from './pool.js';
import { serve } from './worker.js';

const TAG = 1;

/** Throws ERR_SERIALIZE now (as a channel must) rather than in the send's promise. */
function checkSendable(m: unknown): void {
  encodeValue(m);
}

class CommChannel implements Channel {
  readonly local = false;
  gone = false;
  // A rank says 'ready' as soon as it serves, which may be before the pool's
  // engine takes this channel (its first task may wait for a module to
  // compile): what comes before is kept and handed over then, never dropped.
  #early: (() => void)[] | null = [];
  #onMessage: (m: FromWorker) => void = (m) => this.#early?.push(() => this.#onMessage(m));
  #onLost: (why: string, ours: boolean) => void = (why, ours) => this.#early?.push(() => this.#onLost(why, ours));
  get onMessage(): (m: FromWorker) => void {
    return this.#onMessage;
  }
  set onMessage(h: (m: FromWorker) => void) {
    this.#onMessage = h;
    this.#flush();
  }
  get onLost(): (why: string, ours: boolean) => void {
    return this.#onLost;
  }
  set onLost(h: (why: string, ours: boolean) => void) {
    this.#onLost = h;
    this.#flush();
  }
  #flush(): void {
    const early = this.#early;
    if (!early) return;
    this.#early = null;
    if (early.length > 0) queueMicrotask(() => early.forEach((f) => f()));
  }
  constructor(
    private readonly comm: Comm,
    private readonly rank: number,
    readonly host: string,
  ) {}
  send(m: ToWorker): void {
    checkSendable(m);
    void this.comm.send(m, this.rank, TAG).catch((e: Error) => this.lost(`could not be reached (${e.message})`));
  }
  ref(): void {
    // the job's links are the runtime's
  }
  kill(): void {
    // A rank cannot be ended alone without ending the job: it leaves the pool,
    // and stops serving (null) once the task it is running returns.
    if (!this.gone) {
      try {
        this.send({ t: 'bye' });
      } catch {
        // cannot happen: bye always encodes
      }
    }
    this.lost('cannot be ended alone (a rank of the job); it was dropped from the pool', true);
  }
  lost(why: string, ours = false): void {
    if (this.gone) return;
    this.gone = true;
    this.onLost(why, ours);
  }
}

export async function fromComm(
  comm: Comm,
  opts: { root?: number },
  make: (channels: Channel[], onClosed: () => Promise<void>) => Pool,
): Promise<Pool | null> {
  if (typeof opts !== 'object' || opts === null) throw new TsmpiError('ERR_ARG', 'Pool.fromComm(comm, { root }): options must be an object');
  const root = opts.root ?? 0;
  if (!Number.isInteger(root) || root < 0 || root >= comm.size) throw new TsmpiError('ERR_ROOT', `Pool.fromComm: root ${root} is not a rank of a communicator of size ${comm.size}`);
  const c = await comm.dup();
  const hosts = await c.allgather(process.env.TSMPI_HOST ?? 'localhost');
  if (c.rank !== root) {
    await serve(
      {
        send: (m) => {
          checkSendable(m);
          void c.send(m, root, TAG).catch(() => {});
        },
        onMessage: (h) => {
          void (async () => {
            for (;;) {
              const m = (await c.recv(root, TAG)) as ToWorker;
              h(m);
              if (m.t === 'bye') return;
            }
          })();
        },
      },
      hosts[c.rank],
    );
    return null;
  }
  const channels = new Map<number, CommChannel>();
  for (let r = 0; r < c.size; r++) if (r !== root) channels.set(r, new CommChannel(c, r, hosts[r] ?? 'localhost'));
  let open = channels.size;
  let allGone!: () => void;
  const finished = new Promise<void>((r) => (allGone = r));
  if (open === 0) allGone();
  void (async () => {
    while (open > 0) {
      let got: { data: unknown; source: number };
      try {
        got = await c.recvWithStatus(ANY_SOURCE, TAG);
      } catch (e) {
        for (const ch of channels.values()) ch.lost(`was lost (${(e as Error).message})`);
        allGone();
        return;
      }
      const ch = channels.get(got.source);
      if (!ch) continue;
      const m = got.data as FromWorker;
      if (m.t === 'gone') {
        open--;
        ch.lost('stopped serving', true);
        continue;
      }
      ch.onMessage(m);
    }
    allGone();
  })();
  return make([...channels.values()], () => finished);
}
