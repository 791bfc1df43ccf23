// The import.meta fixture, for the remote tiers: lay out an app folder the way a
// user would (a script in app/, a helper in app/lib/, data in app/data/), run
// it, and read back what every rank saw.
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture } from './harness.js';

export interface MetaSeen {
  rank: number;
  platform: string;
  url: string;
  filename: string;
  dirname: string;
  urlPath: string;
  argv1: string;
  cwd: string;
  helper: { url: string; filename: string; dirname: string };
  viaUrl: string;
  viaDirname: string;
  viaCwd: string;
  requireOk: boolean;
}

export const STAGED_CONF = 'staged copy of conf';

/** `work/app/{meta.ts,lib/helper.ts,data/conf.txt}`; run `app/meta.ts` with `--files app/data/conf.txt` from `work`. */
export function layMetaApp(work: string): { script: string; files: string[]; conf: string } {
  const app = join(work, 'app');
  mkdirSync(join(app, 'data'), { recursive: true });
  cpSync(fixture('import-meta'), app, { recursive: true });
  const conf = join(app, 'data', 'conf.txt');
  writeFileSync(conf, `${STAGED_CONF}\n`);
  return { script: join('app', 'meta.ts'), files: ['app/data/conf.txt'], conf };
}

/** The ranks' reports, in rank order, from rank 0's `META` line. */
export function metaOf(stdout: string): MetaSeen[] {
  const m = /^META (.*)$/m.exec(stdout);
  if (!m) throw new Error(`no META line in:\n${stdout}`);
  return JSON.parse(m[1]!) as MetaSeen[];
}
