// Hand-built Ed25519 certificates against Node's real TLS 1.3: server and
// client certificates, pinned by fingerprint with rejectUnauthorized: false.
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { createTlsIdentity, loadOrCreateTlsIdentity, peerFingerprint, tlsChannelBinding, type TlsIdentity } from '../launcher/keys/x509.js';
import { throwsCode as expectCode, tempDirs } from './expect-code.js';

const tempDir = tempDirs('x509-test');



interface Seen {
  serverSawClient: string | null;
  clientSawServer: string | null;
  serverBinding: string;
  clientBinding: string;
  reply: string;
}

/** One real TLS 1.3 connection on 127.0.0.1; the server asks for (but does not require) a client certificate. */
async function handshake(server: TlsIdentity, client: TlsIdentity | null): Promise<Seen> {
  let serverSawClient: string | null = null;
  let serverBinding = '';
  const srv = tls.createServer({ key: server.key, cert: server.cert, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, (sock) => {
    serverSawClient = peerFingerprint(sock);
    serverBinding = Buffer.from(tlsChannelBinding(sock)).toString('hex');
    sock.end(`hello ${sock.getProtocol()}`);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise<Seen>((resolve, reject) => {
      const opts: tls.ConnectionOptions = { host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3' };
      if (client) Object.assign(opts, { key: client.key, cert: client.cert });
      const sock = tls.connect(opts);
      let clientSawServer: string | null = null;
      let clientBinding = '';
      let reply = '';
      sock.on('secureConnect', () => {
        clientSawServer = peerFingerprint(sock);
        clientBinding = Buffer.from(tlsChannelBinding(sock)).toString('hex');
      });
      sock.on('data', (d: Buffer) => (reply += d.toString()));
      sock.on('end', () => {
        sock.end();
        resolve({ serverSawClient, clientSawServer, serverBinding, clientBinding, reply });
      });
      sock.on('error', reject);
    });
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

describe('createTlsIdentity', () => {
  it('makes a self-signed Ed25519 v3 certificate valid from yesterday for 100 years', () => {
    const id = createTlsIdentity('node-a');
    const cert = new X509Certificate(id.cert);
    expect(cert.subject).toBe('CN=node-a');
    expect(cert.issuer).toBe('CN=node-a');
    expect(cert.publicKey.asymmetricKeyType).toBe('ed25519');
    expect(cert.verify(cert.publicKey)).toBe(true); // the signature over the TBSCertificate holds
    expect(cert.ca).toBe(false);
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    expect(from).toBeLessThan(Date.now() - 23 * 3600_000);
    expect(new Date(to).getUTCFullYear()).toBeGreaterThanOrEqual(new Date().getUTCFullYear() + 99); // GeneralizedTime past 2049
    const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
    expect(id.fingerprint).toBe('sha256:' + createHash('sha256').update(spki).digest('hex'));
    expect(id.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(id.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('gives each identity its own key and serial', () => {
    const a = new X509Certificate(createTlsIdentity('x').cert);
    const b = new X509Certificate(createTlsIdentity('x').cert);
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect(a.fingerprint256).not.toBe(b.fingerprint256);
  });

  it('refuses an empty common name and cuts a long one to 64 characters', () => {
    expectCode(() => createTlsIdentity(''), 'ERR_ARG');
    const long = 'h'.repeat(63) + 'ü' + 'tail.example.org';
    expect(new X509Certificate(createTlsIdentity(long).cert).subject).toBe(`CN=${long.slice(0, 64)}`);
  });
});

describe('Node TLS 1.3 with these certificates', () => {
  it('works as server and as client certificate (mutual TLS), pinned by fingerprint', async () => {
    const server = createTlsIdentity('daemon');
    const client = createTlsIdentity('launcher');
    const seen = await handshake(server, client);
    expect(seen.reply).toBe('hello TLSv1.3');
    expect(seen.clientSawServer).toBe(server.fingerprint);
    expect(seen.serverSawClient).toBe(client.fingerprint);
    // both ends derive the same channel binding
    expect(seen.clientBinding).toMatch(/^[0-9a-f]{64}$/);
    expect(seen.serverBinding).toBe(seen.clientBinding);
  });

  it('a client without a certificate is seen as null; another server key shows as another fingerprint', async () => {
    const server = createTlsIdentity('daemon');
    const seen = await handshake(server, null);
    expect(seen.serverSawClient).toBeNull();
    expect(seen.clientSawServer).toBe(server.fingerprint);
    const impostor = createTlsIdentity('daemon');
    const other = await handshake(impostor, null);
    expect(other.clientSawServer).not.toBe(server.fingerprint);
    expect(other.clientBinding).not.toBe(seen.clientBinding);
  });
});

describe('loadOrCreateTlsIdentity', () => {
  it('creates host.key (mode 600) and host.crt once, then reuses them', () => {
    const dir = join(tempDir(), 'state', 'tls');
    const a = loadOrCreateTlsIdentity(dir, 'h');
    expect(existsSync(join(dir, 'host.crt'))).toBe(true);
    if (process.platform !== 'win32') expect(statSync(join(dir, 'host.key')).mode & 0o777).toBe(0o600);
    const b = loadOrCreateTlsIdentity(dir, 'h');
    expect(b).toEqual(a);
  });

  it('names a corrupt key or certificate, a missing half and a mismatched pair', () => {
    const dir = tempDir();
    const good = loadOrCreateTlsIdentity(dir, 'h');
    const keyFile = join(dir, 'host.key');
    const certFile = join(dir, 'host.crt');

    writeFileSync(keyFile, 'garbage');
    expectCode(() => loadOrCreateTlsIdentity(dir, 'h'), 'ERR_ARG', keyFile);
    writeFileSync(keyFile, good.key);

    writeFileSync(certFile, good.cert.slice(0, 100));
    expectCode(() => loadOrCreateTlsIdentity(dir, 'h'), 'ERR_ARG', certFile);

    writeFileSync(certFile, createTlsIdentity('h').cert);
    expectCode(() => loadOrCreateTlsIdentity(dir, 'h'), 'ERR_ARG', 'does not match');

    rmSync(certFile);
    expectCode(() => loadOrCreateTlsIdentity(dir, 'h'), 'ERR_ARG', certFile);
    expect(readFileSync(keyFile, 'utf8')).toBe(good.key); // never replaced
  });
});
