// Small assertions shared by the unit tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import { TsmpiError } from '../runtime/errors.js';

/** Assert `fn` throws a TsmpiError with `code` (and, optionally, a message containing `text`); return it. */
export function throwsCode(fn: () => unknown, code: string, text?: string): TsmpiError {
  try {
    fn();
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(TsmpiError);
    expect((e as TsmpiError).code).toBe(code);
    if (text) expect((e as Error).message).toContain(text);
    return e as TsmpiError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

/** Temp folders named PREFIX-…, removed after each test of the file that calls this. */
export function tempDirs(prefix: string): () => string {
  const made: string[] = [];
  afterEach(() => {
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), `${prefix}-`));
    made.push(d);
    return d;
  };
}
