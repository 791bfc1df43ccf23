/** Public-key pins: 'sha256:' + hex of SHA-256 over a certificate's SubjectPublicKeyInfo. */
import { createHash, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

export function certFingerprint(certDerOrPem: Buffer | string): string {
  const spki = new X509Certificate(certDerOrPem).publicKey.export({ type: 'spki', format: 'der' });
  return 'sha256:' + createHash('sha256').update(spki).digest('hex');
}

/** The pin of the certificate the peer presented, or null. */
export function peerPin(socket: TLSSocket): string | null {
  const c = socket.getPeerX509Certificate?.();
  return c ? certFingerprint(c.raw) : null;
}
