/**
 * The process's place in a job: built once by `init()`. Under `tsmpirun` (the
 * TSMPI_* environment is set) it joins the job through the launcher's control
 * channel; otherwise it is a singleton world of size 1 where every call works.
 */
import { hostname, totalmem } from 'node:os';
import { Comm } from './comm.js';
import { ControlClient } from './control.js';
import { Engine } from './engine.js';
import { TsmpiError } from './errors.js';
import { Fabric } from './fabric.js';
import { PendingRegistry } from './pending.js';
import { CONTROL_VERSION, type LauncherToRank, type RankToLauncher } from './wire/control.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSocketTransport, socketTransport, type TlsCredential } from './transport/socket.js';
import { formatContact } from './transport/contact.js';
import type { Listener } from './transport/transport.js';
import { SHM_WORKER_DATA, type ShmMeshData } from './transport/shm-mesh.js';
import { ShmTransport, withShm } from './transport/shm.js';
import { CONTROL_PORT_WORKER_DATA, PORT_ADDRESS, PortLink } from './transport/port.js';
import type { MessagePort } from 'node:worker_threads';
import { ENV } from './env.js';

/** Environment a launched rank reads (in runtime/env.ts: the launcher reads it without loading the runtime). */
export { ENV };

export class World {
  readonly engine: Engine;
  readonly pending = new PendingRegistry();
  /** next free context id for dup/split (even numbers; ctx + 1 is the collective context) */
  nextCtx = 2;
  /** more ranks on this host than it has cores */
  crowded = false;
  /** the shared memory of this process's thread ranks (`--threads`), for collectives on it */
  shm: ShmTransport | null = null;

  constructor(
    readonly rank: number,
    readonly size: number,
    readonly host: string,
    readonly fabric: Fabric,
    engine: Engine,
    readonly control: ControlClient | null,
  ) {
    this.engine = engine;
  }

  async abort(code: number): Promise<never> {
    const c = Number.isInteger(code) && code >= 0 && code <= 255 ? code : 1;
    const failure = new TsmpiError('ERR_ABORTED', `rank ${this.rank} called abort(${c})`);
    this.engine.failAll(failure);
    if (this.control) {
      await new Promise<void>((resolve) => {
        this.control!.send({ t: 'abort', code: c }, () => resolve());
        setTimeout(resolve, 1000).unref();
      });
    }
    process.exit(c);
  }
}

/** The launched process's state, shared by rank-main and `init()`. */
interface Launched {
  control: ControlClient;
  rank: number;
  size: number;
  secret: string;
  listen: string;
  host: string;
  /** ranks the launcher reported gone, possibly before init() */
  gone: Set<number>;
  /** resolves when the launcher says the script may run */
  run: Promise<void>;
}

let launched: Launched | null = null;
let launching: Promise<Launched | null> | null = null;

function envInt(name: string): number {
  const v = Number(process.env[name]);
  if (!Number.isInteger(v) || v < 0) throw new TsmpiError('ERR_ARG', `environment variable ${name} is not a valid number`);
  return v;
}

/** Connect to the launcher if this process was started by one (idempotent). */
export function connectLauncher(): Promise<Launched | null> {
  if (launching) return launching;
  launching = (async () => {
    const address = process.env[ENV.control];
    if (!address) return null;
    const rank = envInt(ENV.rank);
    const size = envInt(ENV.size);
    const secret = process.env[ENV.secret] ?? '';
    const port = address === PORT_ADDRESS ? await launcherPort() : null;
    const control = port ? ControlClient.over(new PortLink(port)) : await ControlClient.connect(socketTransport, address, 10_000);
    control.send({ t: 'hello', v: CONTROL_VERSION, rank, pid: process.pid, secret });
    control.onClose(() => {
      // The launcher is gone: nothing may be left behind.
      process.exit(1);
    });
    let runNow!: () => void;
    const run = new Promise<void>((resolve) => (runNow = resolve));
    const l: Launched = { control, rank, size, secret, listen: process.env[ENV.listen] ?? '', host: process.env[ENV.host] ?? hostname(), gone: new Set(), run };
    control.onMessage((m) => {
      if (m.t === 'gone') l.gone.add(m.rank);
      else if (m.t === 'run') runNow();
    });
    launched = l;
    return l;
  })();
  return launching;
}

/**
 * The launcher's control link for code that serves it (a tsmpi/pool worker):
 * its messages, and whether it keeps this process alive. Null without a launcher.
 */
export function launcherLink(): { onMessage(h: (m: LauncherToRank) => void): void; ref(on: boolean): void } | null {
  if (!launched) return null;
  const c = launched.control;
  return { onMessage: (h) => c.onMessage(h), ref: (on) => c.ref(on) };
}

/** Where reportPartial/reportProgress go instead of the launcher (a pool worker: to the task's future). */
export interface ReportSink {
  partial(value: unknown): void;
  progress(done: number, total: number): void;
}
let reportSink: ReportSink | null = null;
export function setReportSink(sink: ReportSink | null): void {
  reportSink = sink;
}

/** Send a control message to the launcher, if there is one. */
export function toLauncher(msg: RankToLauncher, done?: () => void): boolean {
  if (!launched) return false;
  launched.control.send(msg, done);
  return true;
}

let world: Promise<World> | null = null;
let currentFabric: Fabric | null = null;

/** The world communicator. Idempotent. */
export function init(): Promise<Comm> {
  world ??= makeWorld();
  return world.then(worldComm);
}

/**
 * A pool worker is a rank of no job: `init()` in its tasks gives the
 * singleton world (size 1, rank 0), as a plain script gets.
 */
export function initAlone(): void {
  world ??= Promise.resolve(singletonWorld());
}

function singletonWorld(): World {
  const engine = new Engine(0);
  const fabric = new Fabric({
    self: 0,
    contacts: [null],
    hostId: 'self',
    secret: 'singleton',
    transport: socketTransport,
    listeners: [],
    engine,
    maxPayload: Math.max(totalmem(), 1 << 30),
    connectTimeoutMs: 10_000,
  });
  return new World(0, 1, hostname(), fabric, engine, null);
}

const worldComms = new WeakMap<World, Comm>();
function worldComm(w: World): Comm {
  let c = worldComms.get(w);
  if (!c) {
    const group = Array.from({ length: w.size }, (_, i) => i);
    c = new Comm({ world: w, group, rankOf: new Map(group.map((r) => [r, r])), ctx: 0, rank: w.rank, seq: 0 });
    worldComms.set(w, c);
  }
  return c;
}

async function makeWorld(): Promise<World> {
  const l = await connectLauncher();
  const maxPayload = Math.max(totalmem(), 1 << 30);
  if (!l) return singletonWorld();
  const credential = await readCredential();
  const shm = await shmTransport();
  const sockets = makeSocketTransport(credential);
  const transport = shm ? withShm(shm, sockets) : sockets;
  const listeners: Listener[] = [await transport.listen(l.listen)];
  const tlsAt = process.env[ENV.listenTls];
  if (tlsAt) listeners.push(await transport.listen(tlsAt));
  if (shm) listeners.push(await shm.listen(shm.address));
  const hostId = process.env[ENV.hostId] ?? 'localhost';
  const contact = formatContact(hostId, listeners.map((x) => x.address));
  const engine = new Engine(l.rank);
  const timeoutS = Number(process.env[ENV.initTimeout] ?? 120);
  let crowdedJob = false;
  const table = await new Promise<(string | null)[]>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new TsmpiError('ERR_TIMEOUT', `init(): the other ranks did not all start within ${timeoutS} s`)),
      timeoutS * 1000,
    );
    l.control.onMessage((m) => {
      if (m.t === 'table') {
        clearTimeout(timer);
        crowdedJob = m.crowded === true;
        resolve(m.addresses);
      } else if (m.t === 'refused') {
        clearTimeout(timer);
        reject(new TsmpiError(m.code as TsmpiError['code'], m.message));
      }
    });
    l.control.ref(true);
    l.control.send({ t: 'listening', address: contact });
  }).finally(() => l.control.ref(false));
  if (table.length !== l.size) throw new TsmpiError('ERR_PROTOCOL', `the launcher sent ${table.length} addresses for ${l.size} ranks`);
  const fabric = new Fabric({
    self: l.rank,
    contacts: table,
    hostId,
    meshId: shm?.id ?? null,
    secret: l.secret,
    transport,
    listeners,
    engine,
    maxPayload,
    connectTimeoutMs: 30_000,
  });
  const w = new World(l.rank, l.size, l.host, fabric, engine, l.control);
  w.shm = shm;
  currentFabric = fabric;
  // The launcher decides for the whole job, so every rank picks the same
  // algorithms; TSMPI_CROWDED=0|1 overrides it (tests run both families).
  const forced = process.env.TSMPI_CROWDED;
  w.crowded = forced === '1' ? true : forced === '0' ? false : crowdedJob;
  table.forEach((address, r) => {
    if (address === null && r !== l.rank) engine.peerGone(r, 'it ended without joining the job');
  });
  for (const r of l.gone) fabric.launcherSaysGone(r);
  w.pending.keepAlive = (on) => l.control.ref(on);
  l.control.onMessage((m) => {
    if (m.t === 'gone') fabric.launcherSaysGone(m.rank);
    else if (m.t === 'dump') {
      // Context ids → communicator ids: even contexts are user traffic, odd ones collectives.
      const queued = engine.queued().map((q) => ({ ...q, comm: q.comm >>> 1, collective: (q.comm & 1) === 1 }));
      l.control.send({ t: 'blocked', ops: w.pending.snapshot(), queued, sent: fabric.messagesSent, received: fabric.messagesReceived });
    } else if (m.t === 'sample') {
      const f = fabric;
      const traffic = { messagesSent: f.messagesSent, bytesSent: f.bytesSent, messagesReceived: f.messagesReceived, bytesReceived: f.bytesReceived };
      l.control.send({ t: 'sampled', ops: w.pending.snapshot(), traffic });
    }
  });
  return w;
}

/** A thread rank (`tsmpirun --threads`) finds its port to the launcher in its workerData. */
async function launcherPort(): Promise<MessagePort> {
  const { isMainThread, workerData } = await import('node:worker_threads');
  const p = isMainThread ? undefined : (workerData as Record<string, unknown> | null)?.[CONTROL_PORT_WORKER_DATA];
  if (!p) throw new TsmpiError('ERR_ARG', `${ENV.control}=${PORT_ADDRESS} is only for thread ranks started by tsmpirun --threads`);
  return p as MessagePort;
}

/** A thread rank (`tsmpirun --threads`) finds its shared-memory mesh in its workerData. */
async function shmTransport(): Promise<ShmTransport | null> {
  const { isMainThread, workerData } = await import('node:worker_threads');
  const d = isMainThread ? undefined : (workerData as Record<string, unknown> | null)?.[SHM_WORKER_DATA];
  if (!d) return null;
  return new ShmTransport(d as ShmMeshData);
}

async function readCredential(): Promise<TlsCredential | null> {
  const dir = process.env[ENV.tlsDir];
  if (!dir) return null;
  const { certFingerprint } = await import('./transport/pin.js');
  try {
    const cert = readFileSync(join(dir, 'job.crt'), 'utf8');
    return { key: readFileSync(join(dir, 'job.key'), 'utf8'), cert, pin: certFingerprint(cert) };
  } catch (e) {
    throw new TsmpiError('ERR_ARG', `cannot read the job credential in ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

/** A provisional result, streamed to the launcher (printed, or written with --results). */
/**
 * A provisional result (JSON-serializable), streamed to the launcher on the
 * control channel: printed there as a tagged line, or written with --results.
 * Resolves once it has left this process. Without a launcher it goes to stderr.
 */
export function reportPartial(value: unknown): Promise<void> {
  let v: unknown;
  try {
    v = JSON.parse(JSON.stringify(value ?? null));
  } catch (e) {
    return Promise.reject(new TsmpiError('ERR_SERIALIZE', `reportPartial: the value is not JSON-serializable: ${(e as Error).message}`, { cause: e }));
  }
  if (reportSink) {
    reportSink.partial(v);
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    if (!toLauncher({ t: 'partial', value: v, time: Date.now() / 1000 }, resolve)) {
      process.stderr.write(`[partial] ${JSON.stringify(v)}\n`);
      resolve();
    }
  });
}

/** Progress updates leave at most this often (the last one always goes). */
const PROGRESS_EVERY_MS = 100;
let lastProgress = -Infinity;
let pendingProgress: { done: number; total: number } | null = null;
let progressTimer: NodeJS.Timeout | null = null;

/**
 * Drive the launcher's progress bar: `done` of `total` units of this rank's work.
 * Cheap to call in a hot loop: updates are coalesced here.
 */
export function reportProgress(done: number, total: number): void {
  if (!Number.isFinite(done) || !Number.isFinite(total) || total < 0 || done < 0) {
    throw new TsmpiError('ERR_ARG', `reportProgress(done, total) needs finite non-negative numbers, got (${done}, ${total})`);
  }
  if (reportSink) {
    reportSink.progress(done, total);
    return;
  }
  if (!launched) return;
  const now = performance.now();
  if (done >= total || now - lastProgress >= PROGRESS_EVERY_MS) {
    lastProgress = now;
    pendingProgress = null;
    toLauncher({ t: 'progress', done, total });
    return;
  }
  pendingProgress = { done, total };
  progressTimer ??= setTimeout(() => {
    progressTimer = null;
    if (pendingProgress) {
      lastProgress = performance.now();
      toLauncher({ t: 'progress', ...pendingProgress });
      pendingProgress = null;
    }
  }, PROGRESS_EVERY_MS - (now - lastProgress));
  progressTimer.unref();
}

/** This rank's counters for --report (zeros before init). */
export function rankStats(): import('./wire/control.js').RankStats {
  const f = currentFabric;
  const cpu = process.cpuUsage();
  return {
    messagesSent: f?.messagesSent ?? 0,
    bytesSent: f?.bytesSent ?? 0,
    messagesReceived: f?.messagesReceived ?? 0,
    bytesReceived: f?.bytesReceived ?? 0,
    cpuUserMs: Math.round(cpu.user / 1000),
    cpuSystemMs: Math.round(cpu.system / 1000),
    maxRssKiB: process.resourceUsage().maxRSS,
  };
}
