// The floor: the least a Node program must do to move messages between two
// processes over a Unix domain socket, written by hand.
//
//   node bench/floor.mjs MODE 'JSON'     (rank 0; starts rank 1 as a child node process)
//
// Wire: a 4-byte little-endian length, then the payload. Nothing else.
// Sender: a message up to 16 KiB is copied with its length into one buffer and
// written once; a larger one is written as length + the caller's bytes (corked,
// no copy). send() resolves on the socket's write callback, i.e. when the
// caller may reuse its buffer — what tsmpi's send() promises too.
// Receiver: every message is delivered as a Buffer of its own: a payload that
// lies inside one `data` chunk is a view of that chunk (Node allocates every
// chunk afresh, nothing is reused), any other payload is assembled into a fresh
// allocation. No receive buffer is ever reused across messages. recv() returns
// a promise, like any awaitable API.
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pingpong, stream, emitLine, pin } from './kernels.mjs';
import { profiled } from './profile.mjs';

const SMALL = 16 * 1024;

class Endpoint {
  constructor(socket) {
    this.socket = socket;
    this.queue = [];
    this.waiters = [];
    this.hdr = Buffer.alloc(4);
    this.hfill = 0;
    this.need = -1; // payload length of the frame being read, -1 between frames
    this.cur = null;
    this.fill = 0;
    socket.on('data', (chunk) => this.push(chunk));
  }

  push(chunk) {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.need < 0) {
        if (this.hfill === 0 && end - pos >= 4) {
          this.need = chunk.readUInt32LE(pos);
          pos += 4;
        } else {
          const n = Math.min(4 - this.hfill, end - pos);
          chunk.copy(this.hdr, this.hfill, pos, pos + n);
          this.hfill += n;
          pos += n;
          if (this.hfill < 4) return;
          this.hfill = 0;
          this.need = this.hdr.readUInt32LE(0);
        }
        if (end - pos >= this.need) {
          const view = chunk.subarray(pos, pos + this.need);
          pos += this.need;
          this.need = -1;
          this.deliver(view);
          continue;
        }
        this.cur = Buffer.allocUnsafeSlow(this.need);
        this.fill = 0;
      }
      const n = Math.min(this.need - this.fill, end - pos);
      chunk.copy(this.cur, this.fill, pos, pos + n);
      this.fill += n;
      pos += n;
      if (this.fill === this.need) {
        const msg = this.cur;
        this.cur = null;
        this.need = -1;
        this.deliver(msg);
      }
    }
  }

  deliver(msg) {
    const w = this.waiters.shift();
    if (w) w(msg);
    else this.queue.push(msg);
  }

  recv() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  send(data) {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const len = bytes.byteLength;
    return new Promise((resolve, reject) => {
      const done = (err) => (err ? reject(err) : resolve());
      if (len <= SMALL) {
        const out = Buffer.allocUnsafe(4 + len);
        out.writeUInt32LE(len, 0);
        out.set(bytes, 4);
        this.socket.write(out, done);
      } else {
        const h = Buffer.allocUnsafe(4);
        h.writeUInt32LE(len, 0);
        this.socket.cork();
        this.socket.write(h);
        this.socket.write(bytes, done);
        this.socket.uncork();
      }
    });
  }
}

async function run(role, mode, params, socket) {
  const ep = new Endpoint(socket);
  const rank = role === 'main' ? 0 : 1;
  pin(rank, params.pin);
  await profiled(`floor-${mode}`, rank, async () => {
    if (mode === 'pingpong') await pingpong(ep, rank, params, emitLine);
    else if (mode === 'stream') await stream(ep, rank, params, emitLine);
    else throw new Error(`unknown mode ${mode}`);
  });
}

const [role, mode, json, path] = process.argv.slice(2);
const params = JSON.parse(json);

if (role === 'peer') {
  const socket = net.connect(path);
  socket.once('connect', async () => {
    await run('peer', mode, params, socket);
    socket.end();
  });
} else {
  const sockPath = join(tmpdir(), `tsmpi-floor-${process.pid}.sock`);
  const server = net.createServer();
  await new Promise((resolve) => server.listen(sockPath, resolve));
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'peer', mode, json, sockPath], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const socket = await new Promise((resolve) => server.once('connection', resolve));
  server.close();
  try {
    unlinkSync(sockPath);
  } catch {}
  await run('main', mode, params, socket);
  socket.end();
  const code = await exited;
  process.exitCode = code === 0 ? 0 : 1;
}
