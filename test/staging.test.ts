// Encrypted file staging: key agreement, sealed chunks, the receiver's checks,
// and job-folder path safety on POSIX and Windows path rules.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import path, { join } from 'node:path';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { CHUNK, FileReceiver, deriveFileKey, fileDigest, openChunk, safeJobPath, sealChunk, sealFile, stagingKeyPair } from '../launcher/staging/staging.js';
import { isTsmpiError } from '../runtime/errors.js';
import { throwsCode as expectCode, tempDirs } from './expect-code.js';

const tempDir = tempDirs('staging-test');



function sharedKey(): Buffer {
  const a = stagingKeyPair();
  const b = stagingKeyPair();
  return deriveFileKey(a.secretKey, b.publicKey, Buffer.from('test'));
}

async function sealAll(file: string, key: Buffer, fileIndex: number) {
  const out: { chunkIndex: number; last: boolean; sealed: Buffer }[] = [];
  for await (const c of sealFile(file, key, fileIndex)) out.push(c);
  return out;
}

/** Everything in jobDir but what the test put there itself. */
function leftovers(jobDir: string, except: string[] = []): string[] {
  return readdirSync(jobDir, { recursive: true, encoding: 'utf8' }).filter((f) => !except.includes(f));
}

describe('deriveFileKey', () => {
  it('both sides derive the same 32-byte key; context and peers change it', () => {
    const a = stagingKeyPair();
    const b = stagingKeyPair();
    const ctx = Buffer.from('job-1');
    const ka = deriveFileKey(a.secretKey, b.publicKey, ctx);
    const kb = deriveFileKey(b.secretKey, a.publicKey, ctx);
    expect(ka.length).toBe(32);
    expect(ka.equals(kb)).toBe(true);
    expect(ka.equals(deriveFileKey(a.secretKey, b.publicKey, Buffer.from('job-2')))).toBe(false);
    expect(ka.equals(deriveFileKey(a.secretKey, stagingKeyPair().publicKey, ctx))).toBe(false);
  });

  it('refuses low-order peer keys (all-zero shared secret) with ERR_AUTH, wrong lengths otherwise', () => {
    const a = stagingKeyPair();
    const lowOrder = [new Uint8Array(32), Uint8Array.from([1, ...new Uint8Array(31)])];
    for (const p of lowOrder) expectCode(() => deriveFileKey(a.secretKey, p, new Uint8Array(0)), 'ERR_AUTH');
    expectCode(() => deriveFileKey(a.secretKey, new Uint8Array(31), new Uint8Array(0)), 'ERR_PROTOCOL');
    expectCode(() => deriveFileKey(new Uint8Array(16), a.publicKey, new Uint8Array(0)), 'ERR_ARG');
  });
});

describe('sealChunk / openChunk', () => {
  const key = sharedKey();
  const plain = randomBytes(1000);
  const sealed = sealChunk(key, 3, 7, false, plain);

  it('round-trips and appends a 16-byte tag', () => {
    expect(sealed.length).toBe(1016);
    expect(openChunk(key, 3, 7, false, sealed).equals(plain)).toBe(true);
    expect(openChunk(key, 0, 0, true, sealChunk(key, 0, 0, true, new Uint8Array(0))).length).toBe(0);
    expect(openChunk(key, 0xffffffff, 2 ** 40, true, sealChunk(key, 0xffffffff, 2 ** 40, true, plain)).equals(plain)).toBe(true);
  });

  it('never repeats a nonce: other indexes give other ciphertexts', () => {
    const seen = new Set<string>();
    for (const [f, c] of [[0, 0], [0, 1], [1, 0], [1, 1], [256, 0], [0, 256]] as const) seen.add(sealChunk(key, f, c, false, plain).toString('hex'));
    expect(seen.size).toBe(6);
  });

  it('any tampering, other indexes, another last flag or another key → ERR_AUTH', () => {
    for (const i of [0, 500, 999, 1000, 1015]) {
      const t = Buffer.from(sealed);
      t[i] = t[i]! ^ 1;
      expectCode(() => openChunk(key, 3, 7, false, t), 'ERR_AUTH');
    }
    expectCode(() => openChunk(key, 3, 8, false, sealed), 'ERR_AUTH');
    expectCode(() => openChunk(key, 4, 7, false, sealed), 'ERR_AUTH');
    expectCode(() => openChunk(key, 3, 7, true, sealed), 'ERR_AUTH');
    expectCode(() => openChunk(sharedKey(), 3, 7, false, sealed), 'ERR_AUTH');
    expectCode(() => openChunk(key, 3, 7, false, sealed.subarray(0, 1015)), 'ERR_AUTH');
    expectCode(() => openChunk(key, 3, 7, false, sealed.subarray(0, 10)), 'ERR_AUTH');
    expectCode(() => openChunk(key, 3, 7, false, Buffer.alloc(CHUNK + 17)), 'ERR_PROTOCOL');
    expectCode(() => openChunk(key, -1, 7, false, sealed), 'ERR_PROTOCOL');
    expectCode(() => sealChunk(key, 0, 0, true, Buffer.alloc(CHUNK + 1)), 'ERR_ARG');
    expectCode(() => sealChunk(Buffer.alloc(16), 0, 0, true, plain), 'ERR_ARG');
  });
});

describe('sealFile → FileReceiver', () => {
  const sizes: [string, number][] = [
    ['0 B', 0],
    ['1 B', 1],
    ['exactly CHUNK', CHUNK],
    ['CHUNK+1', CHUNK + 1],
    ['3.5 MiB', 3.5 * CHUNK],
  ];
  for (const [label, size] of sizes) {
    it(`round-trips ${label} into a subfolder`, async () => {
      const src = join(tempDir(), 'src.bin');
      const data = randomBytes(size);
      writeFileSync(src, data);
      const jobDir = tempDir();
      const key = sharedKey();
      const d = await fileDigest(src);
      expect(d.size).toBe(size);
      const chunks = await sealAll(src, key, 5);
      expect(chunks.length).toBe(Math.max(1, Math.ceil(size / CHUNK)));
      expect(chunks.map((c) => c.last)).toEqual(chunks.map((_, i) => i === chunks.length - 1));
      const r = new FileReceiver(jobDir, key, 5, 'data/in/src.bin', d.size, d.sha256);
      for (const c of chunks) r.push(c.chunkIndex, c.last, c.sealed);
      const out = r.finish();
      expect(out).toBe(join(jobDir, 'data', 'in', 'src.bin'));
      expect(readFileSync(out).equals(data)).toBe(true);
      expect(leftovers(jobDir).sort()).toEqual(['data', join('data', 'in'), join('data', 'in', 'src.bin')]);
    });
  }

  async function setup(size = 2 * CHUNK + 10) {
    const src = join(tempDir(), 'f');
    writeFileSync(src, randomBytes(size));
    const jobDir = tempDir();
    const key = sharedKey();
    const d = await fileDigest(src);
    const chunks = await sealAll(src, key, 1);
    return { jobDir, key, d, chunks };
  }

  it('a tampered byte → ERR_AUTH, nothing left behind', async () => {
    const { jobDir, key, d, chunks } = await setup();
    const r = new FileReceiver(jobDir, key, 1, 'x', d.size, d.sha256);
    r.push(0, false, chunks[0]!.sealed);
    const bad = Buffer.from(chunks[1]!.sealed);
    bad[12345] = bad[12345]! ^ 0x80;
    expectCode(() => r.push(1, false, bad), 'ERR_AUTH');
    expect(leftovers(jobDir)).toEqual([]);
    expectCode(() => r.push(1, false, chunks[1]!.sealed), 'ERR_PROTOCOL'); // dead after a failure
    r.abort(); // idempotent
  });

  it('swapped chunks → refused (out of order, or ERR_AUTH when relabelled), nothing left behind', async () => {
    const { jobDir, key, d, chunks } = await setup();
    const r1 = new FileReceiver(jobDir, key, 1, 'x', d.size, d.sha256);
    expectCode(() => r1.push(1, false, chunks[1]!.sealed), 'ERR_PROTOCOL');
    expect(leftovers(jobDir)).toEqual([]);
    const r2 = new FileReceiver(jobDir, key, 1, 'x', d.size, d.sha256);
    expectCode(() => r2.push(0, false, chunks[1]!.sealed), 'ERR_AUTH'); // chunk 1 claiming to be chunk 0
    expect(leftovers(jobDir)).toEqual([]);
    const r3 = new FileReceiver(jobDir, key, 2, 'x', d.size, d.sha256); // a chunk of file 1 offered as file 2
    expectCode(() => r3.push(0, false, chunks[0]!.sealed), 'ERR_AUTH');
    expect(leftovers(jobDir)).toEqual([]);
  });

  it('a dropped last chunk → ERR_AUTH at finish, and the last flag cannot be forged', async () => {
    const { jobDir, key, d, chunks } = await setup();
    const r = new FileReceiver(jobDir, key, 1, 'x', d.size, d.sha256);
    r.push(0, false, chunks[0]!.sealed);
    r.push(1, false, chunks[1]!.sealed);
    expectCode(() => r.finish(), 'ERR_AUTH');
    expect(leftovers(jobDir)).toEqual([]);
    // a file cut at a chunk boundary cannot pass its middle chunk off as the last one
    const r2 = new FileReceiver(jobDir, key, 1, 'x', 2 * CHUNK, d.sha256);
    r2.push(0, false, chunks[0]!.sealed);
    expectCode(() => r2.push(1, true, chunks[1]!.sealed), 'ERR_AUTH');
    expect(leftovers(jobDir)).toEqual([]);
  });

  it('the wrong key → ERR_AUTH', async () => {
    const { jobDir, d, chunks } = await setup();
    const r = new FileReceiver(jobDir, sharedKey(), 1, 'x', d.size, d.sha256);
    expectCode(() => r.push(0, false, chunks[0]!.sealed), 'ERR_AUTH');
    expect(leftovers(jobDir)).toEqual([]);
  });

  it('more than the declared size, short chunks, extra chunks → ERR_PROTOCOL', async () => {
    const { jobDir, key, d, chunks } = await setup();
    const r = new FileReceiver(jobDir, key, 1, 'x', CHUNK + 5, d.sha256);
    r.push(0, false, chunks[0]!.sealed);
    expectCode(() => r.push(1, false, chunks[1]!.sealed), 'ERR_PROTOCOL');
    expect(leftovers(jobDir)).toEqual([]);

    const r2 = new FileReceiver(jobDir, key, 1, 'x', 100, d.sha256);
    expectCode(() => r2.push(0, false, sealChunk(key, 1, 0, false, Buffer.alloc(10))), 'ERR_PROTOCOL'); // not last, not full
    expect(leftovers(jobDir)).toEqual([]);

    const small = Buffer.alloc(10);
    const r3 = new FileReceiver(jobDir, key, 1, 'x', 10, (await import('node:crypto')).createHash('sha256').update(small).digest('hex'));
    r3.push(0, true, sealChunk(key, 1, 0, true, small));
    expectCode(() => r3.push(1, true, sealChunk(key, 1, 1, true, Buffer.alloc(0))), 'ERR_PROTOCOL');
    expect(leftovers(jobDir)).toEqual([]);
  });

  it('a size or digest mismatch → ERR_AUTH at finish, nothing left behind', async () => {
    const { jobDir, key, d, chunks } = await setup();
    const r = new FileReceiver(jobDir, key, 1, 'x', d.size, 'ab'.repeat(32));
    for (const c of chunks) r.push(c.chunkIndex, c.last, c.sealed);
    expectCode(() => r.finish(), 'ERR_AUTH');
    expect(leftovers(jobDir)).toEqual([]);
    const r2 = new FileReceiver(jobDir, key, 1, 'x', d.size + 100, d.sha256);
    for (const c of chunks) r2.push(c.chunkIndex, c.last, c.sealed);
    expectCode(() => r2.finish(), 'ERR_AUTH');
    expect(leftovers(jobDir)).toEqual([]);
  });

  it('refuses bad declarations up front, creates nothing', () => {
    const jobDir = tempDir();
    const key = sharedKey();
    expectCode(() => new FileReceiver(jobDir, key, 0, '../x', 1, 'a'.repeat(64)), 'ERR_PROTOCOL');
    expectCode(() => new FileReceiver(jobDir, key, 0, 'x', -1, 'a'.repeat(64)), 'ERR_PROTOCOL');
    expectCode(() => new FileReceiver(jobDir, key, 0, 'x', 1, 'zz'), 'ERR_PROTOCOL');
    expectCode(() => new FileReceiver(jobDir, key, 2 ** 32, 'x', 1, 'a'.repeat(64)), 'ERR_PROTOCOL');
    expect(leftovers(jobDir)).toEqual([]);
  });

  it('abort removes the temp file; an existing target or a symlinked folder is refused', async () => {
    const { jobDir, key, d, chunks } = await setup(10);
    const r = new FileReceiver(jobDir, key, 1, 'x', d.size + 1, d.sha256);
    expect(leftovers(jobDir)).toEqual([]); // nothing until the first chunk
    r.push(0, true, chunks[0]!.sealed);
    expect(leftovers(jobDir).length).toBe(1);
    r.abort();
    expect(leftovers(jobDir)).toEqual([]);

    writeFileSync(join(jobDir, 'x'), 'mine');
    const r2 = new FileReceiver(jobDir, key, 1, 'x', d.size, d.sha256);
    r2.push(0, true, chunks[0]!.sealed);
    expectCode(() => r2.finish(), 'ERR_PROTOCOL');
    expect(readFileSync(join(jobDir, 'x'), 'utf8')).toBe('mine');
    expect(leftovers(jobDir)).toEqual(['x']);

    if (process.platform !== 'win32') {
      const outside = tempDir();
      symlinkSync(outside, join(jobDir, 'link'));
      const r3 = new FileReceiver(jobDir, key, 1, 'link/y', d.size, d.sha256);
      r3.push(0, true, chunks[0]!.sealed);
      expectCode(() => r3.finish(), 'ERR_PROTOCOL');
      expect(readdirSync(outside)).toEqual([]);
      expect(leftovers(jobDir).sort()).toEqual(['link', 'x']);
    }
  });

  it('FileReceiver and sealFile agree with a file sent into an existing subfolder', async () => {
    const { jobDir, key, d, chunks } = await setup(CHUNK * 2);
    mkdirSync(join(jobDir, 'data'));
    const r = new FileReceiver(jobDir, key, 1, 'data/f', d.size, d.sha256);
    for (const c of chunks) r.push(c.chunkIndex, c.last, c.sealed);
    expect(existsSync(r.finish())).toBe(true);
  });
});

describe('safeJobPath', () => {
  const ok: [string, string[]][] = [
    ['x.csv', ['x.csv']],
    ['data/x.csv', ['data', 'x.csv']],
    ['a/b/c.txt', ['a', 'b', 'c.txt']],
    ['.hidden', ['.hidden']],
    ['naïve résumé.txt', ['naïve résumé.txt']],
    ['console.log', ['console.log']],
    ['COM10', ['COM10']],
    ['nul_not', ['nul_not']],
    ['..x', ['..x']],
    ['x'.repeat(255), ['x'.repeat(255)]],
  ];
  const bad = [
    '',
    'a\0b',
    'a\nb',
    '/etc/passwd',
    '//server/share/x',
    'C:\\x',
    'C:x',
    'c:/x',
    '\\\\server\\share',
    '\\x',
    'a\\b',
    '..',
    '../x',
    'a/../../x',
    'a/..',
    '.',
    './x',
    'a//b',
    'a/',
    'CON',
    'con',
    'nul.txt',
    'Aux.tar.gz',
    'data/COM1',
    'LPT9.log',
    'COM¹',
    'CONIN$',
    'CON .txt',
    'x.',
    'x ',
    'dir./y',
    'x:stream',
    'a*b',
    'a?b',
    'a|b',
    '"q"',
    '<x>',
    'x'.repeat(256),
    'é'.repeat(128), // 256 bytes
    ('a'.repeat(200) + '/').repeat(25) + 'x',
  ];

  for (const [api, root] of [
    [path.posix, '/jobs/j1'],
    [path.win32, 'C:\\jobs\\j1'],
  ] as const) {
    const label = api === path.posix ? 'posix' : 'win32';
    it(`${label}: allows plain names and subfolders inside the job folder`, () => {
      for (const [name, parts] of ok) expect(safeJobPath(root, name, api)).toBe(api.join(root, ...parts));
    });
    it(`${label}: refuses every escaping or non-portable name with ERR_PROTOCOL`, () => {
      for (const name of bad) {
        try {
          const got = safeJobPath(root, name, api);
          throw new Error(`${JSON.stringify(name)} was allowed as ${got}`);
        } catch (e) {
          expect(isTsmpiError(e, 'ERR_PROTOCOL'), `${JSON.stringify(name)}: ${String(e)}`).toBe(true);
        }
      }
      expectCode(() => safeJobPath(root, 42 as unknown as string, api), 'ERR_PROTOCOL');
    });
  }
});

describe('throughput (printed, not asserted)', () => {
  it('seals and opens 256 MiB in 1 MiB chunks', () => {
    const key = sharedKey();
    const plain = randomBytes(CHUNK);
    const n = 256;
    // sealed chunks are sent and dropped, as on a real connection: memory is reused
    let sealNs = 0n;
    let openNs = 0n;
    let opened = 0;
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      const sealed = sealChunk(key, 0, i, i === n - 1, plain);
      const t1 = process.hrtime.bigint();
      opened += openChunk(key, 0, i, i === n - 1, sealed).length;
      openNs += process.hrtime.bigint() - t1;
      sealNs += t1 - t0;
    }
    const sealMs = Number(sealNs) / 1e6;
    const openMs = Number(openNs) / 1e6;
    const mb = (n * CHUNK) / 1e6;
    // secretbox for comparison, on 16 MiB only (it is an order of magnitude slower)
    const nonce = nacl.randomBytes(24);
    const t = process.hrtime.bigint();
    for (let i = 0; i < 16; i++) nacl.secretbox(plain, nonce, key);
    const boxMs = Number(process.hrtime.bigint() - t) / 1e6;
    console.log(
      `staging throughput: AES-256-GCM seal ${(mb / (sealMs / 1000)).toFixed(0)} MB/s, open ${(mb / (openMs / 1000)).toFixed(0)} MB/s ` +
        `(256 MiB in 1 MiB chunks); tweetnacl secretbox ${((16 * CHUNK) / 1e6 / (boxMs / 1000)).toFixed(0)} MB/s`,
    );
    expect(opened).toBe(n * CHUNK);
  });

  it('stages a 64 MiB file through disk: digest, sealFile, FileReceiver', async () => {
    const src = join(tempDir(), 'big.bin');
    const chunk = randomBytes(CHUNK);
    writeFileSync(src, Buffer.concat(Array.from({ length: 64 }, () => chunk)));
    const jobDir = tempDir();
    const key = sharedKey();
    const t0 = process.hrtime.bigint();
    const d = await fileDigest(src);
    const t1 = process.hrtime.bigint();
    const r = new FileReceiver(jobDir, key, 0, 'big.bin', d.size, d.sha256);
    for await (const c of sealFile(src, key, 0)) r.push(c.chunkIndex, c.last, c.sealed);
    r.finish();
    const t2 = process.hrtime.bigint();
    const mb = d.size / 1e6;
    console.log(
      `staging a file: digest ${(mb / (Number(t1 - t0) / 1e9)).toFixed(0)} MB/s, read+seal+open+write+hash ${(mb / (Number(t2 - t1) / 1e9)).toFixed(0)} MB/s (64 MiB)`,
    );
    expect(d.size).toBe(64 * CHUNK);
  });
});

describe('a digest that follows the data (hashed while sealed)', () => {
  it('accepts the right digest after the last chunk, refuses a wrong or a second one', async () => {
    const { createHash } = await import('node:crypto');
    const dir = tempDir();
    const file = join(dir, 'src.bin');
    writeFileSync(file, randomBytes(CHUNK + 123));
    const key = sharedKey();
    const run = async (digest: (right: string) => string, twice = false) => {
      const jobDir = mkdtempSync(join(dir, 'job-'));
      const r = new FileReceiver(jobDir, key, 0, 'out.bin', CHUNK + 123, null);
      expect(r.hasDigest).toBe(false);
      const hash = createHash('sha256');
      for await (const c of sealFile(file, key, 0, hash)) r.push(c.chunkIndex, c.last, c.sealed);
      const right = hash.digest('hex');
      expect(right).toBe((await fileDigest(file)).sha256);
      if (twice) {
        const r2 = new FileReceiver(jobDir, key, 1, 'two.bin', 0, right);
        expectCode(() => r2.finish(right), 'ERR_PROTOCOL');
      }
      return { jobDir, result: () => r.finish(digest(right)) };
    };
    const good = await run((d) => d);
    expect(readFileSync(good.result())).toEqual(readFileSync(file));
    const bad = await run((d) => (d[0] === '0' ? '1' : '0') + d.slice(1));
    expectCode(bad.result, 'ERR_AUTH');
    expect(leftovers(bad.jobDir)).toEqual([]);
    await run((d) => d, true);
    const none = new FileReceiver(mkdtempSync(join(dir, 'job-')), key, 0, 'x.bin', 0, null);
    expectCode(() => none.finish(), 'ERR_PROTOCOL');
  });
});
