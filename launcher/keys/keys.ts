/**
 * Launcher identities (Ed25519 signing keys, tweetnacl) and host pinning.
 *
 * - `id`: the secret key, one line `tsmpi-ed25519-secret <base64 of the 64-byte
 *   nacl secret key>`, mode 600. Like ssh, a group/world-accessible id is refused.
 * - `id.pub` / authorized keys: one line `tsmpi-ed25519 <base64 public key> [comment]`.
 * - known hosts: lines `host:port sha256:<hex>` (IPv6 hosts as `[addr]:port`).
 * - a challenge signature covers 'tsmpi-auth-v1', then the nonce and the
 *   binding, each preceded by its length (so no two (nonce, binding) pairs give
 *   the same message).
 */
import { timingSafeEqual } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import nacl from 'tweetnacl';
import { TsmpiError } from '../../runtime/errors.js';

export interface Identity {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** Where `tsmpirun keygen` and the launcher look by default: ~/.tsmpi */
export const DEFAULT_KEY_DIR: string = join(homedir(), '.tsmpi');

const PUB_TYPE = 'tsmpi-ed25519';
const SECRET_TYPE = 'tsmpi-ed25519-secret';
const AUTH_DOMAIN = Buffer.from('tsmpi-auth-v1', 'ascii');
const B64_32 = /^[A-Za-z0-9+/]{43}=$/;
const B64_64 = /^[A-Za-z0-9+/]{86}==$/;
const FINGERPRINT = /^sha256:[0-9a-f]{64}$/;

function defaultComment(): string {
  let user = process.env.USER ?? process.env.USERNAME ?? 'user';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep the environment's name
  }
  return `${user}@${hostname()}`;
}

/** `tsmpi-ed25519 <base64> [comment]` */
export function formatPublicKey(pk: Uint8Array, comment?: string): string {
  if (!(pk instanceof Uint8Array) || pk.length !== nacl.sign.publicKeyLength) {
    throw new TsmpiError('ERR_ARG', `a public key is ${nacl.sign.publicKeyLength} bytes`);
  }
  const c = comment?.replace(/[\r\n]+/g, ' ').trim();
  return `${PUB_TYPE} ${Buffer.from(pk).toString('base64')}${c ? ' ' + c : ''}`;
}

/**
 * Write `outDir/id` (secret, created with mode 600; an existing one is never
 * overwritten: ERR_ARG) and `outDir/id.pub`. Creates `outDir` (mode 700) when missing.
 */
export function keygen(outDir: string): { idFile: string; pubFile: string } {
  const idFile = join(outDir, 'id');
  const pubFile = join(outDir, 'id.pub');
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const kp = nacl.sign.keyPair();
  try {
    writeFileSync(idFile, `${SECRET_TYPE} ${Buffer.from(kp.secretKey).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new TsmpiError('ERR_ARG', `${idFile} exists already; remove it first or choose another --out folder`, { cause: e });
    }
    throw new TsmpiError('ERR_ARG', `cannot write ${idFile}: ${(e as Error).message}`, { cause: e });
  } finally {
    kp.secretKey.fill(0);
  }
  writeFileSync(pubFile, formatPublicKey(kp.publicKey, defaultComment()) + '\n', { mode: 0o644 });
  return { idFile, pubFile };
}

/** Read a launcher's `id` file. Missing or corrupt: ERR_ARG; group/world-accessible (POSIX): ERR_AUTH. */
export function readIdentity(file: string): Identity {
  let text: string;
  try {
    if (process.platform !== 'win32') {
      const mode = statSync(file).mode & 0o777;
      if (mode & 0o077) {
        throw new TsmpiError(
          'ERR_AUTH',
          `permissions 0${mode.toString(8)} for the identity ${file} are too open: others could read the secret key; run chmod 600 ${file}`,
        );
      }
    }
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof TsmpiError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TsmpiError('ERR_ARG', `identity ${file} not found; create one with: tsmpirun keygen --out ${dirname(file)}`, { cause: e });
    }
    throw new TsmpiError('ERR_ARG', `cannot read the identity ${file}: ${(e as Error).message}`, { cause: e });
  }
  const fields = text.trim().split(/\s+/);
  const corrupt = (why: string) => new TsmpiError('ERR_ARG', `${file} is not a tsmpi identity (${why}); make a new one with tsmpirun keygen`);
  if (fields.length < 2 || fields[0] !== SECRET_TYPE) throw corrupt(`expected a line "${SECRET_TYPE} <key>"`);
  if (!B64_64.test(fields[1]!)) throw corrupt('the key is not 64 bytes of base64');
  const secretKey = new Uint8Array(Buffer.from(fields[1]!, 'base64'));
  const derived = nacl.sign.keyPair.fromSeed(secretKey.subarray(0, 32));
  if (!timingSafeEqual(derived.publicKey, secretKey.subarray(32))) throw corrupt('its public half does not match its seed');
  return { publicKey: derived.publicKey, secretKey };
}

/** Parse a file of `id.pub` lines (`#` comments and blank lines allowed). A bad line is ERR_ARG naming `file:line`. */
export function parseAuthorizedKeys(text: string, file = 'authorized_keys'): Uint8Array[] {
  const keys: Uint8Array[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const [type, b64] = line.split(/\s+/);
      if (type !== PUB_TYPE) {
        throw new TsmpiError('ERR_ARG', `${file}:${i + 1}: expected "${PUB_TYPE} <base64 key> [comment]", got ${JSON.stringify(line.slice(0, 40))}`);
      }
      if (b64 === undefined || !B64_32.test(b64)) throw new TsmpiError('ERR_ARG', `${file}:${i + 1}: the key is not 32 bytes of base64`);
      keys.push(new Uint8Array(Buffer.from(b64, 'base64')));
    });
  return keys;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function challengeMessage(nonce: Uint8Array, binding: Uint8Array): Buffer {
  return Buffer.concat([AUTH_DOMAIN, u32(nonce.length), nonce, u32(binding.length), binding]);
}

/** A detached Ed25519 signature over ('tsmpi-auth-v1', nonce, binding). */
export function signChallenge(secretKey: Uint8Array, nonce: Uint8Array, binding: Uint8Array): Uint8Array {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== nacl.sign.secretKeyLength) {
    throw new TsmpiError('ERR_ARG', `a secret key is ${nacl.sign.secretKeyLength} bytes`);
  }
  if (!(nonce instanceof Uint8Array) || !(binding instanceof Uint8Array)) throw new TsmpiError('ERR_ARG', 'nonce and binding must be bytes');
  return nacl.sign.detached(challengeMessage(nonce, binding), secretKey);
}

/**
 * True only when `publicKey` is one of `keys` (compared in constant time, every
 * key looked at) and `signature` is its signature over (nonce, binding).
 * Never throws: anything malformed is false.
 */
export function verifyChallenge(keys: Uint8Array[], publicKey: Uint8Array, signature: Uint8Array, nonce: Uint8Array, binding: Uint8Array): boolean {
  try {
    if (!Array.isArray(keys)) return false;
    for (const x of [publicKey, signature, nonce, binding]) if (!(x instanceof Uint8Array)) return false;
    if (publicKey.length !== nacl.sign.publicKeyLength || signature.length !== nacl.sign.signatureLength) return false;
    let found = false;
    for (const k of keys) {
      if (k instanceof Uint8Array && k.length === publicKey.length && timingSafeEqual(k, publicKey)) found = true;
    }
    if (!found) return false;
    return nacl.sign.detached.verify(challengeMessage(nonce, binding), signature, publicKey);
  } catch {
    return false;
  }
}

function hostKey(host: string, port: number): string {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return `${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/**
 * Pinned host keys, one `host:port sha256:<hex>` a line (`#` comments). A host
 * may have several lines; it is known when any of them matches. `check` reads
 * the file each time, so an edit (removing a changed key) takes effect at once.
 */
export class KnownHosts {
  constructor(readonly file: string) {}

  private entries(): { key: string; fingerprint: string }[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new TsmpiError('ERR_ARG', `cannot read known hosts ${this.file}: ${(e as Error).message}`, { cause: e });
    }
    const out: { key: string; fingerprint: string }[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const m = /^(\S+):(\d{1,5})\s+(\S+)(?:\s.*)?$/.exec(line);
      if (!m || !FINGERPRINT.test(m[3]!)) throw new TsmpiError('ERR_ARG', `${this.file}:${i + 1}: expected "host:port sha256:<64 hex>"`);
      out.push({ key: hostKey(m[1]!, Number(m[2])), fingerprint: m[3]! });
    });
    return out;
  }

  check(host: string, port: number, fingerprint: string): 'known' | 'new' | 'changed' {
    const key = hostKey(host, port);
    const mine = this.entries().filter((e) => e.key === key);
    if (mine.length === 0) return 'new';
    return mine.some((e) => e.fingerprint === fingerprint) ? 'known' : 'changed';
  }

  /** Append `host:port fingerprint`; the file is created with mode 600 (and its folder, 700). */
  record(host: string, port: number, fingerprint: string): void {
    if (!FINGERPRINT.test(fingerprint)) throw new TsmpiError('ERR_ARG', `not a fingerprint: ${JSON.stringify(fingerprint)}`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TsmpiError('ERR_ARG', `not a port: ${port}`);
    if (!host || /[\s#]/.test(host)) throw new TsmpiError('ERR_ARG', `not a host name: ${JSON.stringify(host)}`);
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    let prefix = '';
    try {
      const text = readFileSync(this.file, 'utf8');
      if (text.length > 0 && !text.endsWith('\n')) prefix = '\n';
    } catch {
      // not there yet
    }
    appendFileSync(this.file, `${prefix}${hostKey(host, port)} ${fingerprint}\n`, { mode: 0o600 });
  }
}
