/**
 * Chunks and results between the root and workers on the same machine, as
 * files in memory (/dev/shm where there is one): a chunk of 2 MiB of typed
 * columns costs one write and one read, where a pool message carries it as
 * base64 inside a JSON control message (four passes over the bytes, measured
 * at 25–90 ms per chunk here, against ~2 ms). Only the plugin's own pool (all
 * its workers are local) uses it; a user's Pool, which may reach remote
 * hosts, gets the chunks in the task's arguments.
 *
 * A file is the runtime codec's bytes (runtime/wire/codec.ts) after a two-byte
 * header (encoding, element type). The reader removes it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeValue, encodeValue } from '../../runtime/wire/codec.js';

/** A value left in a file for a process on this machine. */
export interface FileRef {
  file: string;
}

export function isFileRef(v: unknown): v is FileRef {
  return typeof v === 'object' && v !== null && typeof (v as FileRef).file === 'string' && Object.keys(v).length === 1;
}

/** Write `value` to `file` (codec bytes after a two-byte header). */
export function putFile(file: string, value: unknown): FileRef {
  const e = encodeValue(value);
  const out = Buffer.allocUnsafe(2 + e.length);
  out[0] = e.enc;
  out[1] = e.elem;
  let off = 2;
  for (const p of e.parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  try {
    writeFileSync(file, out);
  } catch (e) {
    // a partial file (no room left): nobody will read it
    try {
      unlinkSync(file);
    } catch {
      // never created
    }
    throw e;
  }
  return { file };
}

/** Read the value back and remove the file. */
export function takeFile(ref: FileRef): unknown {
  const b = readFileSync(ref.file);
  unlinkSync(ref.file);
  return decodeValue(b[0]!, b[1]!, b.subarray(2));
}

/** The root's folder of hand-off files (one per pool): removed by `close`, or at exit. */
export class Handoff {
  readonly dir: string;
  private n = 0;
  private readonly onExit = () => this.close();
  constructor() {
    let dir: string;
    try {
      dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tsmpi-df-'));
    } catch {
      dir = mkdtempSync(join(tmpdir(), 'tsmpi-df-'));
    }
    this.dir = dir;
    process.on('exit', this.onExit);
  }
  /** A fresh file name in the folder. */
  name(what: string): string {
    return join(this.dir, `${what}-${this.n++}`);
  }
  /** Remove a file nobody will read (a chunk that was cancelled before it ran). */
  drop(ref: FileRef): void {
    try {
      unlinkSync(ref.file);
    } catch {
      // read already, or never written
    }
  }
  close(): void {
    process.removeListener('exit', this.onExit);
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort (at exit)
    }
  }
}
