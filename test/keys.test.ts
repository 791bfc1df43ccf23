// Launcher identities, authorized keys, challenge signatures and known hosts.
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_KEY_DIR,
  KnownHosts,
  formatPublicKey,
  keygen,
  parseAuthorizedKeys,
  readIdentity,
  signChallenge,
  verifyChallenge,
} from '../launcher/keys/keys.js';
import { throwsCode as expectCode, tempDirs } from './expect-code.js';

const tempDir = tempDirs('keys-test');

const posix = process.platform !== 'win32';


const FP_A = 'sha256:' + 'a'.repeat(64);
const FP_B = 'sha256:' + 'b'.repeat(64);

describe('keygen and readIdentity', () => {
  it('writes id (600) and id.pub in a new folder (700), and reads the pair back', () => {
    const dir = join(tempDir(), 'nested', '.tsmpi');
    const { idFile, pubFile } = keygen(dir);
    expect(idFile).toBe(join(dir, 'id'));
    expect(pubFile).toBe(join(dir, 'id.pub'));
    if (posix) {
      expect(statSync(idFile).mode & 0o777).toBe(0o600);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    }
    const pub = readFileSync(pubFile, 'utf8');
    expect(pub).toMatch(/^tsmpi-ed25519 [A-Za-z0-9+/]{43}= \S+@\S+\n$/);
    const id = readIdentity(idFile);
    expect(id.secretKey.length).toBe(64);
    expect(parseAuthorizedKeys(pub)).toEqual([id.publicKey]);
    const sig = signChallenge(id.secretKey, new Uint8Array(32), new Uint8Array(32));
    expect(verifyChallenge([id.publicKey], id.publicKey, sig, new Uint8Array(32), new Uint8Array(32))).toBe(true);
  });

  it('refuses to overwrite an existing id', () => {
    const dir = tempDir();
    const { idFile } = keygen(dir);
    const before = readFileSync(idFile, 'utf8');
    expectCode(() => keygen(dir), 'ERR_ARG', idFile);
    expect(readFileSync(idFile, 'utf8')).toBe(before);
  });

  it('missing or corrupt id → ERR_ARG naming the file', () => {
    const dir = tempDir();
    const f = join(dir, 'id');
    expectCode(() => readIdentity(f), 'ERR_ARG', f);
    for (const text of ['', 'hello', 'tsmpi-ed25519-secret !!!', `tsmpi-ed25519-secret ${Buffer.alloc(32).toString('base64')}`]) {
      writeFileSync(f, text, { mode: 0o600 });
      expectCode(() => readIdentity(f), 'ERR_ARG', f);
    }
    // a seed whose stored public half is wrong
    const kp = nacl.sign.keyPair();
    kp.secretKey[40] = kp.secretKey[40]! ^ 1;
    writeFileSync(f, `tsmpi-ed25519-secret ${Buffer.from(kp.secretKey).toString('base64')}\n`);
    expectCode(() => readIdentity(f), 'ERR_ARG', 'does not match');
  });

  it.skipIf(!posix)('refuses a group- or world-readable id like ssh (ERR_AUTH, says chmod 600)', () => {
    const { idFile } = keygen(tempDir());
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(idFile, mode);
      expectCode(() => readIdentity(idFile), 'ERR_AUTH', 'chmod 600');
    }
    chmodSync(idFile, 0o400);
    expect(readIdentity(idFile).publicKey.length).toBe(32);
  });

  it('DEFAULT_KEY_DIR is ~/.tsmpi', () => {
    expect(DEFAULT_KEY_DIR).toBe(join(homedir(), '.tsmpi'));
  });
});

describe('formatPublicKey and parseAuthorizedKeys', () => {
  it('round-trips keys with comments, blank lines, # lines and CRLF', () => {
    const a = nacl.sign.keyPair().publicKey;
    const b = nacl.sign.keyPair().publicKey;
    const text = `\uFEFF# team keys\r\n\r\n${formatPublicKey(a, 'alice@x')}\r\n   \n  ${formatPublicKey(b)}  \n# end\n`;
    expect(parseAuthorizedKeys(text, 'ak')).toEqual([a, b]);
    expect(formatPublicKey(a)).toBe(`tsmpi-ed25519 ${Buffer.from(a).toString('base64')}`);
    expect(formatPublicKey(a, 'two\nlines')).toBe(`tsmpi-ed25519 ${Buffer.from(a).toString('base64')} two lines`);
    expect(parseAuthorizedKeys('')).toEqual([]);
  });

  it('a bad line is ERR_ARG naming file:line', () => {
    const good = formatPublicKey(nacl.sign.keyPair().publicKey);
    const bad = [
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG',
      'tsmpi-ed25519',
      'tsmpi-ed25519 not-base64!',
      `tsmpi-ed25519 ${Buffer.alloc(31).toString('base64')}`,
      `tsmpi-ed25519 ${Buffer.alloc(33).toString('base64')}`,
    ];
    for (const line of bad) expectCode(() => parseAuthorizedKeys(`${good}\n# c\n${line}\n`, '/etc/tsmpi/keys'), 'ERR_ARG', '/etc/tsmpi/keys:3');
    expectCode(() => formatPublicKey(new Uint8Array(31)), 'ERR_ARG');
  });
});

describe('signChallenge and verifyChallenge', () => {
  const me = nacl.sign.keyPair();
  const other = nacl.sign.keyPair();
  const nonce = nacl.randomBytes(32);
  const binding = nacl.randomBytes(32);
  const sig = signChallenge(me.secretKey, nonce, binding);

  it('accepts only an authorized key with a valid signature over this nonce and binding', () => {
    expect(verifyChallenge([other.publicKey, me.publicKey], me.publicKey, sig, nonce, binding)).toBe(true);
    expect(verifyChallenge([other.publicKey], me.publicKey, sig, nonce, binding)).toBe(false); // not authorized
    expect(verifyChallenge([], me.publicKey, sig, nonce, binding)).toBe(false);
    expect(verifyChallenge([me.publicKey], me.publicKey, sig, nacl.randomBytes(32), binding)).toBe(false); // replayed to another nonce
    expect(verifyChallenge([me.publicKey], me.publicKey, sig, nonce, nacl.randomBytes(32))).toBe(false); // another connection
    const flipped = Uint8Array.from(sig);
    flipped[5] = flipped[5]! ^ 0x10;
    expect(verifyChallenge([me.publicKey], me.publicKey, flipped, nonce, binding)).toBe(false);
    // an authorized key cannot claim another's signature
    expect(verifyChallenge([me.publicKey, other.publicKey], other.publicKey, sig, nonce, binding)).toBe(false);
  });

  it('is domain separated and length-prefixed: moving bytes between nonce and binding breaks it', () => {
    const whole = Buffer.concat([nonce, binding]);
    expect(verifyChallenge([me.publicKey], me.publicKey, sig, whole.subarray(0, 31), whole.subarray(31))).toBe(false);
    expect(verifyChallenge([me.publicKey], me.publicKey, sig, whole, new Uint8Array(0))).toBe(false);
    const plain = nacl.sign.detached(Buffer.concat([nonce, binding]), me.secretKey);
    expect(verifyChallenge([me.publicKey], me.publicKey, plain, nonce, binding)).toBe(false);
  });

  it('never throws on garbage', () => {
    const junk: unknown[] = [undefined, null, 'x', 42, {}, [], new Uint8Array(0), new Uint8Array(31), new Uint8Array(65), new Uint16Array(32)];
    for (const j of junk) {
      const u = j as Uint8Array;
      expect(verifyChallenge([me.publicKey], u, sig, nonce, binding)).toBe(false);
      expect(verifyChallenge([me.publicKey], me.publicKey, u, nonce, binding)).toBe(false);
      expect(verifyChallenge([me.publicKey], me.publicKey, sig, u, binding)).toBe(false);
      expect(verifyChallenge([me.publicKey], me.publicKey, sig, nonce, u)).toBe(false);
      expect(verifyChallenge([u, me.publicKey], me.publicKey, sig, nonce, binding)).toBe(true);
      expect(verifyChallenge(j as Uint8Array[], me.publicKey, sig, nonce, binding)).toBe(false);
    }
    expectCode(() => signChallenge(new Uint8Array(32), nonce, binding), 'ERR_ARG');
  });
});

describe('KnownHosts', () => {
  it('new → record → known; another key → changed; file 600 in a new folder', () => {
    const file = join(tempDir(), 'sub', 'known_hosts');
    const kh = new KnownHosts(file);
    expect(kh.check('node1', 7470, FP_A)).toBe('new');
    expect(existsSync(file)).toBe(false);
    kh.record('node1', 7470, FP_A);
    if (posix) expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`node1:7470 ${FP_A}\n`);
    expect(kh.check('node1', 7470, FP_A)).toBe('known');
    expect(kh.check('NODE1', 7470, FP_A)).toBe('known');
    expect(kh.check('node1', 7470, FP_B)).toBe('changed');
    expect(kh.check('node1', 7471, FP_B)).toBe('new'); // another port is another daemon
    expect(new KnownHosts(file).check('node1', 7470, FP_A)).toBe('known');
  });

  it('reads comments, IPv6 hosts, several keys for one host, and a file without a final newline', () => {
    const file = join(tempDir(), 'kh');
    writeFileSync(file, `# pinned\n\n[::1]:7470 ${FP_A}\nnode2:9000 ${FP_B}`);
    const kh = new KnownHosts(file);
    expect(kh.check('::1', 7470, FP_A)).toBe('known');
    expect(kh.check('[::1]', 7470, FP_B)).toBe('changed');
    kh.record('node2', 9000, FP_A);
    kh.record('fe80::2', 7470, FP_A);
    expect(readFileSync(file, 'utf8').split('\n').slice(-3)).toEqual([`node2:9000 ${FP_A}`, `[fe80::2]:7470 ${FP_A}`, '']);
    expect(kh.check('node2', 9000, FP_A)).toBe('known');
    expect(kh.check('node2', 9000, FP_B)).toBe('known');
    expect(kh.check('node2', 9000, 'sha256:' + 'c'.repeat(64))).toBe('changed');
  });

  it('a malformed line or argument is ERR_ARG', () => {
    const file = join(tempDir(), 'kh');
    writeFileSync(file, `node1:7470 ${FP_A}\nnode2 ${FP_B}\n`);
    expectCode(() => new KnownHosts(file).check('node1', 7470, FP_A), 'ERR_ARG', `${file}:2`);
    const kh = new KnownHosts(join(tempDir(), 'kh'));
    expectCode(() => kh.record('n', 7470, 'md5:00'), 'ERR_ARG');
    expectCode(() => kh.record('n', 0, FP_A), 'ERR_ARG');
    expectCode(() => kh.record('a b', 7470, FP_A), 'ERR_ARG');
  });
});
