// Anchor for the staging row: copy a file over one plain TLS 1.3 connection on
// loopback, from this process to a child process that writes it to disk.
//   node bench/tls-copy.mjs SRC DST CERT KEY HOST
// Prints `BENCH {"kind":"tlscopy","bytes":…,"ms":…}`: the time from before the
// connection is opened until the receiver has written (not fsynced) every byte
// to DST and said so. No hashing, no extra encryption layer: Node's TLS with its
// default TLS 1.3 cipher (AES-256-GCM), 1 MiB reads piped into the socket; the
// receiver writes in 1 MiB batches (writev).
import * as tls from 'node:tls';
import { spawn } from 'node:child_process';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const [role, ...rest] = process.argv.slice(2);

function fail(e) {
  process.stderr.write(`tls-copy: ${e.message}\n`);
  process.exit(1);
}

if (role === 'serve') {
  const [dst, cert, key, host] = rest;
  const server = tls.createServer({ cert: readFileSync(cert), key: readFileSync(key), minVersion: 'TLSv1.3' }, async (sock) => {
    server.close();
    const fh = await open(dst, 'w');
    let need = -1;
    let got = 0;
    let head = Buffer.alloc(0);
    // TLS hands over ≤16 KiB records; gather them and write 1 MiB at a time
    // (one writev per MiB), as any copier would.
    let batch = [];
    let batched = 0;
    let writing = Promise.resolve();
    let inFlight = 0;
    const flush = () => {
      const bufs = batch;
      batch = [];
      batched = 0;
      inFlight++;
      writing = writing.then(() => fh.writev(bufs));
      if (inFlight >= 4) sock.pause(); // back-pressure, but let receiving overlap writing
      writing.then(() => {
        if (--inFlight < 4) sock.resume();
      }, fail);
    };
    sock.on('data', (chunk) => {
      if (need < 0) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 8) return;
        need = Number(head.readBigUInt64LE(0));
        chunk = head.subarray(8);
      }
      got += chunk.length;
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= 1 << 20 || got === need) flush();
      if (got === need) writing.then(() => fh.close()).then(() => sock.end(Buffer.from([1])), fail);
    });
  });
  server.listen(0, host, () => process.stdout.write(`${server.address().port}\n`));
} else {
  const [src, dst, cert, key, host] = [role, ...rest];
  const bytes = statSync(src).size;
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'serve', dst, cert, key, host], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let s = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      s += d;
      if (s.includes('\n')) resolve(Number(s.trim()));
    });
    child.once('exit', (c) => reject(new Error(`tls-copy server exited ${c}`)));
  });
  const t0 = performance.now();
  const sock = tls.connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
  await new Promise((resolve, reject) => sock.once('secureConnect', resolve).once('error', reject));
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(bytes));
  sock.write(head);
  createReadStream(src, { highWaterMark: 1 << 20 }).pipe(sock, { end: false });
  await new Promise((resolve, reject) => sock.once('data', resolve).once('error', reject).once('end', () => reject(new Error('tls-copy: no ack'))));
  const ms = performance.now() - t0;
  const cipher = sock.getCipher()?.name;
  sock.destroy();
  process.stdout.write(`BENCH ${JSON.stringify({ kind: 'tlscopy', bytes, ms, cipher })}\n`);
  await new Promise((r) => child.once('exit', r));
}
