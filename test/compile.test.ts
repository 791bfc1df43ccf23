// Compiling a job's script: per-file import.meta, and the compile cache.
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileScript } from '../launcher/job/compile.js';
import { root, run, tsmpirun } from './harness.js';
import { tempDirs } from './expect-code.js';

const tempDir = tempDirs('tsmpi-compile');

function project(): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'helper.ts'), `export const helperUrl: string = import.meta.url;\nexport const value = 1;\n`);
  writeFileSync(
    join(dir, 'main.ts'),
    `import { helperUrl, value } from './helper.ts';\nconsole.log(JSON.stringify({ main: import.meta.url, helper: helperUrl, value, dir: import.meta.dirname }));\n`,
  );
  return dir;
}

describe('compileScript', () => {
  it('gives every source file its own import.meta.url, dirname and filename', async () => {
    const dir = project();
    const r = await tsmpirun(['-n', '1', join(dir, 'main.ts')]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.main).toBe(pathToFileURL(join(dir, 'main.ts')).href);
    expect(out.helper).toBe(pathToFileURL(join(dir, 'helper.ts')).href);
    expect(out.dir).toBe(dir);
  });

  it("a remote bundle names none of the launcher's paths: import.meta and require are made where it runs", async () => {
    const dir = project();
    const out = join(tempDir(), 'remote.mjs');
    await compileScript(join(dir, 'main.ts'), out, 'remote', 'app/main.ts');
    const code = readFileSync(out, 'utf8').replace(/\/\/# sourceMappingURL=.*$/m, '');
    expect(code).not.toContain(dir);
    expect(code).toContain('"helper.ts"');
    // run where it is: helper and main resolve from the bundle's folder, the script sitting at app/main.ts
    const place = tempDir();
    const moved = join(place, '.tsmpi-job.mjs');
    writeFileSync(moved, readFileSync(out, 'utf8').replaceAll('tsmpi-remote:runtime', pathToFileURL(join(root, 'dist', 'runtime', 'index.js')).href));
    const r = await run(process.execPath, [moved]);
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout);
    expect(seen.main).toBe(pathToFileURL(join(place, 'app', 'main.ts')).href);
    expect(seen.helper).toBe(pathToFileURL(join(place, 'app', 'helper.ts')).href);
    expect(seen.dir).toBe(join(place, 'app'));
  });

  it('reuses a compiled script until one of its inputs changes', async () => {
    const dir = project();
    const out1 = join(dir, 'a.mjs');
    const out2 = join(dir, 'b.mjs');
    const out3 = join(dir, 'c.mjs');
    await compileScript(join(dir, 'main.ts'), out1);
    await compileScript(join(dir, 'main.ts'), out2);
    expect(readFileSync(out2, 'utf8')).toBe(readFileSync(out1, 'utf8'));
    writeFileSync(join(dir, 'helper.ts'), `export const helperUrl: string = import.meta.url;\nexport const value = 2;\n`);
    const later = new Date(Date.now() + 5000);
    utimesSync(join(dir, 'helper.ts'), later, later);
    await compileScript(join(dir, 'main.ts'), out3);
    expect(readFileSync(out3, 'utf8')).toContain('value = 2');
  });

  it('reports a syntax error with the file and line', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.ts'), 'const x = ;\n');
    await expect(compileScript(join(dir, 'bad.ts'), join(dir, 'out.mjs'))).rejects.toThrow(/bad\.ts:1/);
  });
});
