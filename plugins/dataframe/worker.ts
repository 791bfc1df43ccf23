/**
 * A pool worker: a plain Node process that runs the user's function over chunks
 * of plain values sent by the root on file descriptor 3, and sends the results
 * back. It loads danfojs only for group work, where the function is given a
 * DataFrame. It exits when the root closes the pipe or goes away.
 */
import { Socket } from 'node:net';
import { compileFunction, loadDanfo } from './compile.js';
import { runChunk, type CallSpec } from './kernel.js';
import { readMessages, writeMessage, type FromWorker, type ToWorker } from './messages.js';
import { reportOf, unsendable } from './remote-error.js';
import type { Packed } from './columns.js';

const sock = new Socket({ fd: 3, readable: true, writable: true });
const parent = process.ppid;
const send = (m: FromWorker) => writeMessage(sock, m);

interface Current {
  call: number;
  spec: CallSpec | null;
  failure: unknown;
  progress: boolean;
}
let current: Current | null = null;
let queue: Promise<void> = Promise.resolve();

function onMessage(m: ToWorker): void {
  queue = queue.then(() => handle(m)).catch((e) => {
    process.stderr.write(`tsmpi/dataframe worker ${process.pid}: ${(e as Error).stack ?? e}\n`);
    process.exit(70);
  });
}

async function handle(m: ToWorker): Promise<void> {
  if (m.t === 'call') {
    const c: Current = { call: m.call, spec: null, failure: null, progress: m.progress };
    try {
      const fn = compileFunction(m.source);
      const spec: CallSpec = { kind: m.kind, fn, ctx: m.ctx, hasCtx: m.hasCtx };
      if (m.kind === 'groups') {
        const dfd = await loadDanfo();
        spec.makeFrame = (data) => new dfd.DataFrame(data);
      }
      c.spec = spec;
    } catch (e) {
      c.failure = e;
    }
    current = c;
    return;
  }
  const c = current;
  if (!c || c.call !== m.call) return;
  if (!c.spec) {
    send({ t: 'fail', call: m.call, chunk: m.chunk, report: { ...reportOf(c.failure), compile: true } });
    return;
  }
  const began = performance.now();
  let last = began;
  c.spec.tick = (done) => {
    const now = performance.now();
    if (now - last < 100) return;
    last = now;
    // The root went away while we were busy: stop now, not at the chunk's end.
    if (process.ppid !== parent) process.exit(0);
    if (c.progress) send({ t: 'progress', call: m.call, chunk: m.chunk, done });
  };
  let out: Packed[];
  try {
    out = runChunk(c.spec, m.data);
  } catch (e) {
    send({ t: 'fail', call: m.call, chunk: m.chunk, report: reportOf(e) });
    return;
  }
  try {
    send({ t: 'result', call: m.call, chunk: m.chunk, out, ms: performance.now() - began });
  } catch {
    send({ t: 'fail', call: m.call, chunk: m.chunk, report: reportOf(firstUnsendable(out, m.data.start)) });
  }
}

/** Find the result that could not be sent, to name its row or group. */
function firstUnsendable(out: Packed[], start: number): unknown {
  for (const p of out) {
    if (p.k !== 'any') continue;
    for (let i = 0; i < p.values.length; i++) {
      try {
        structuredClone(p.values[i]);
      } catch {
        return unsendable(p.values[i], start + i);
      }
    }
  }
  return new Error('the results cannot be sent back');
}

readMessages<ToWorker>(sock, onMessage, (e) => {
  process.stderr.write(`tsmpi/dataframe worker ${process.pid}: ${e.message}\n`);
  process.exit(71);
});
sock.on('end', () => process.exit(0));
sock.on('close', () => process.exit(0));
sock.on('error', () => process.exit(0));
send({ t: 'ready', pid: process.pid });
