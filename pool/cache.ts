/**
 * Results kept on disk (joblib's Memory): one file per (task identity,
 * arguments), written atomically once the task succeeded, so a run that
 * crashed resumes where it stopped. Programs and tasks that threw are never
 * stored. Stored values keep everything the codec carries (Map, typed arrays…).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsmpiError } from '../runtime/errors.js';
import { pack, unpack } from './messages.js';

export class ResultCache {
  constructor(readonly dir: string) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new TsmpiError('ERR_ARG', `Pool: options.cache: cannot create the folder ${dir}: ${(e as Error).message}`);
    }
  }

  /** The key of a call; throws ERR_SERIALIZE when the arguments cannot be stored. */
  key(task: string, args: unknown): string {
    return createHash('sha256').update(task).update('\0').update(pack(args)).digest('hex');
  }

  /** The stored result, or `miss`. */
  get(key: string): { hit: true; value: unknown } | { hit: false } {
    let text: string;
    try {
      text = readFileSync(this.path(key), 'utf8');
    } catch {
      return { hit: false };
    }
    try {
      return { hit: true, value: unpack(text) };
    } catch {
      return { hit: false }; // a damaged entry is computed again
    }
  }

  put(key: string, value: unknown): void {
    let text: string;
    try {
      text = pack(value);
    } catch {
      return; // a value that cannot be stored is simply not cached
    }
    const at = this.path(key);
    const tmp = `${at}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      writeFileSync(tmp, text);
      renameSync(tmp, at);
    } catch {
      // a cache that cannot be written is only slower
    }
  }

  private path(key: string): string {
    return join(this.dir, `${key}.result`);
  }
}
