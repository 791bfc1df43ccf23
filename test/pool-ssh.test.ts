// tsmpi/pool with via: 'ssh': workers on a host reached through real OpenSSH
// (test/beds/sshd.ts: an sshd on 127.0.0.59 with its own host key, key-only
// login), the same agent as tsmpirun --via ssh; the host sees none of this
// process's environment. Nothing of the pool is left there after close().
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, task } from '../dist/pool/index.js';
import { noneLeft } from './beds/leftovers.js';
import { startSshBed, type SshBed } from './beds/sshd.js';
import { fixture } from './harness.js';

let bed: SshBed;
let base: string;

beforeAll(async () => {
  bed = await startSshBed([['poolS', '127.0.0.59']]);
  base = mkdtempSync(join(tmpdir(), 'pool-ssh-'));
}, 30_000);

afterAll(async () => {
  await bed?.close();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe("via: 'ssh'", () => {
  it('map, a module task with its imports and staged files, and a program run on the ssh host; nothing is left there', async () => {
    const data = join(base, 'pool-data.txt');
    writeFileSync(data, 'over-ssh-5\n');
    const pool = new Pool({ workers: 0, hosts: 'poolS:2', via: 'ssh', sshCommand: `ssh -F ${bed.config}`, files: [data] });
    try {
      const items = Array.from({ length: 500 }, (_, i) => i);
      expect(await pool.map((x: number) => x * 3, items)).toEqual(items.map((x) => x * 3));
      const f = pool.submit(task(fixture('pool-tasks.ts'), 'whereAmI'));
      const w = await f;
      expect(f.host).toBe('poolS');
      expect(w.data).toBe('over-ssh-5');
      expect(w.ast).toBe('Program');
      expect(w.self.endsWith('/pool-tasks.ts')).toBe(true);
      expect(w.self.startsWith(`file://${w.cwd}`)).toBe(true);
      const r = await pool.exec(['cat', 'pool-data.txt']);
      expect(r).toMatchObject({ code: 0, stdout: 'over-ssh-5\n' });
    } finally {
      await pool.close();
    }
    await noneLeft([`TSMPI_BED_MARK=${bed.mark}`], 8000);
  });
});
