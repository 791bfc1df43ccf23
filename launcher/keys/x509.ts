/**
 * TLS identities without openssl: a minimal self-signed X.509 v3 certificate,
 * DER-encoded by hand and signed with Node's crypto.
 *
 * The key is Ed25519: Node 20's TLS 1.3 (OpenSSL 3) accepts an Ed25519
 * certificate both as the server's and as the client's (test/x509.test.ts
 * proves it with a real server and client). Nobody verifies these certificates
 * against a CA: each side pins the other's key by its fingerprint, the SHA-256
 * of the certificate's SubjectPublicKeyInfo (so a re-issued certificate for the
 * same key keeps its fingerprint).
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { TsmpiError } from '../../runtime/errors.js';

export interface TlsIdentity {
  /** PKCS#8 private key, PEM */
  key: string;
  /** self-signed certificate, PEM */
  cert: string;
  /** 'sha256:' + hex SHA-256 of the SubjectPublicKeyInfo DER */
  fingerprint: string;
}

const DAY_MS = 86_400_000;

// ---- DER ------------------------------------------------------------------

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const seq = (...c: Buffer[]) => der(0x30, ...c);
const set = (...c: Buffer[]) => der(0x31, ...c);
const explicit = (n: number, ...c: Buffer[]) => der(0xa0 | n, ...c);

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const v of rest) {
    const groups = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) groups.unshift(0x80 | (x & 0x7f));
    out.push(...groups);
  }
  return der(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z';
  const year = d.getUTCFullYear();
  return year < 2050 ? der(0x17, Buffer.from(digits.slice(2), 'ascii')) : der(0x18, Buffer.from(digits, 'ascii'));
}

const ED25519 = seq(oid('1.3.101.112'));

function name(commonName: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), der(0x0c, Buffer.from(commonName, 'utf8')))));
}

function buildCertificate(privateKey: KeyObject, spki: Buffer, commonName: string, now: Date): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, no leading zero byte: minimal DER
  const subject = name(commonName);
  const extensions = explicit(
    3,
    seq(
      // basicConstraints (critical): not a CA
      seq(oid('2.5.29.19'), der(0x01, Buffer.from([0xff])), der(0x04, seq())),
      // keyUsage (critical): digitalSignature
      seq(oid('2.5.29.15'), der(0x01, Buffer.from([0xff])), der(0x04, der(0x03, Buffer.from([0x07, 0x80])))),
    ),
  );
  const tbs = seq(
    explicit(0, der(0x02, Buffer.from([2]))), // v3
    der(0x02, serial),
    ED25519,
    subject, // issuer = subject
    seq(time(new Date(now.getTime() - DAY_MS)), time(new Date(Date.UTC(now.getUTCFullYear() + 100, now.getUTCMonth(), now.getUTCDate())))),
    subject,
    spki,
    extensions,
  );
  const signature = sign(null, tbs, privateKey);
  return seq(tbs, ED25519, der(0x03, Buffer.from([0]), signature));
}

function pem(label: string, body: Buffer): string {
  const b64 = body.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function fingerprintOfSpki(spki: Buffer): string {
  return 'sha256:' + createHash('sha256').update(spki).digest('hex');
}

/** A fresh Ed25519 key and its self-signed certificate (valid from yesterday for 100 years; CN cut to 64 characters). */
export function createTlsIdentity(commonName: string): TlsIdentity {
  if (typeof commonName !== 'string' || commonName.length === 0) {
    throw new TsmpiError('ERR_ARG', `a certificate's common name must be a non-empty string, got ${JSON.stringify(commonName)}`);
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // X.520 allows 64 characters; the name is only a label (peers pin the key)
  const cert = buildCertificate(privateKey, spki, Array.from(commonName).slice(0, 64).join(''), new Date());
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: pem('CERTIFICATE', cert),
    fingerprint: fingerprintOfSpki(spki),
  };
}

function readPem(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TsmpiError('ERR_ARG', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The host's TLS identity kept in `dir` (`host.key`, mode 600, and `host.crt`):
 * created at the first call, the same one after. A file that is there but does
 * not hold a key or certificate, or a pair that does not match, is ERR_ARG
 * naming the file (never silently replaced: that would change the pinned key).
 */
export function loadOrCreateTlsIdentity(dir: string, commonName: string): TlsIdentity {
  const keyFile = join(dir, 'host.key');
  const certFile = join(dir, 'host.crt');
  const keyPem = readPem(keyFile);
  const certPem = readPem(certFile);
  if (keyPem === null && certPem === null) {
    const id = createTlsIdentity(commonName);
    let file = keyFile;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(keyFile, id.key, { mode: 0o600, flag: 'wx' });
      file = certFile;
      writeFileSync(certFile, id.cert, { mode: 0o644, flag: 'wx' });
    } catch (e) {
      // Another daemon starting on the same workdir won the race: use its key.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && file === keyFile) {
        const until = Date.now() + 2000;
        while (readPem(certFile) === null && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        return loadOrCreateTlsIdentity(dir, commonName);
      }
      throw new TsmpiError('ERR_ARG', `cannot create ${file}: ${(e as Error).message}`, { cause: e });
    }
    return id;
  }
  if (keyPem === null) throw new TsmpiError('ERR_ARG', `${certFile} is there but ${keyFile} is missing; remove both to make a new host key`);
  if (certPem === null) throw new TsmpiError('ERR_ARG', `${keyFile} is there but ${certFile} is missing; remove both to make a new host key`);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new TsmpiError('ERR_ARG', `${keyFile} does not hold a private key (corrupt?): ${(e as Error).message}`, { cause: e });
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new TsmpiError('ERR_ARG', `${certFile} does not hold a certificate (corrupt?): ${(e as Error).message}`, { cause: e });
  }
  if (!cert.checkPrivateKey(key)) throw new TsmpiError('ERR_ARG', `${certFile} does not match the key in ${keyFile}`);
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return { key: keyPem, cert: certPem, fingerprint: fingerprintOfSpki(spki) };
}

/**
 * 32 bytes both ends of one TLS 1.3 connection compute alike (RFC 8446 keying
 * material exporter) and no other connection shares: bind a challenge
 * signature to it so that it cannot be relayed to another connection.
 */
export function tlsChannelBinding(socket: TLSSocket): Uint8Array {
  return new Uint8Array(socket.exportKeyingMaterial(32, 'EXPORTER-tsmpi-channel-binding-v1', Buffer.alloc(0)));
}

/** The fingerprint of the certificate the peer presented, or null when it sent none. */
export function peerFingerprint(socket: TLSSocket): string | null {
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.raw || peer.raw.length === 0) return null;
  try {
    return fingerprintOfSpki(new X509Certificate(peer.raw).publicKey.export({ type: 'spki', format: 'der' }));
  } catch {
    return null;
  }
}
