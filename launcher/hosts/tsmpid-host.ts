/**
 * Ranks on another machine, through its tsmpid: TLS with the host's key pinned
 * (first contact records it, a changed key is refused), the launcher's identity
 * proven by signing the daemon's fresh challenge bound to this TLS session, the
 * file key agreed by X25519; then the job goes to the daemon's agent
 * (agent-host.ts).
 */
import * as tls from 'node:tls';
import { TsmpiError } from '../../runtime/errors.js';
import { CONTROL_VERSION } from '../../runtime/wire/control.js';
import type { HostSpec } from '../hostlist/hosts.js';
import { signChallenge, type Identity, type KnownHosts } from '../keys/keys.js';
import { deriveFileKey, stagingKeyPair } from '../staging/staging.js';
import { peerFingerprint, tlsChannelBinding } from '../keys/x509.js';
import { AgentHost, type AgentJobSpec } from './agent-host.js';

export { HOST_SILENCE_MS, type StagedSource } from './agent-host.js';

export interface RemoteHostSpec extends AgentJobSpec {
  host: HostSpec;
  identity: Identity;
  knownHosts: KnownHosts;
  knownHostsFile: string;
}

export class RemoteHost extends AgentHost {
  readonly name: string;

  constructor(private readonly s: RemoteHostSpec) {
    super(s);
    this.name = s.host.name;
  }

  protected get where(): string {
    return `${this.s.host.name}:${this.s.host.port}`;
  }

  /** Connect, check the host key, authenticate. */
  async connect(): Promise<void> {
    const { name: host, port } = this.s.host;
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const sock = tls.connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3', servername: undefined as unknown as string });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new TsmpiError('ERR_TIMEOUT', `${this.where}: no TLS handshake within ${this.s.connectTimeoutMs} ms`));
      }, this.s.connectTimeoutMs);
      sock.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(sock);
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(new TsmpiError('ERR_PEER_LOST', `cannot reach tsmpid on ${this.where}: ${e.message}`, { cause: e }));
      });
    });
    socket.setNoDelay(true);
    const fp = peerFingerprint(socket);
    const verdict = fp ? this.s.knownHosts.check(host, port, fp) : 'changed';
    if (verdict === 'changed') {
      socket.destroy();
      throw new TsmpiError(
        'ERR_AUTH',
        `the host key of ${this.where} is not the one recorded in ${this.s.knownHostsFile} (now ${fp}); refusing to connect. If the host was really reinstalled, remove its line from that file.`,
      );
    }
    if (verdict === 'new') {
      this.s.knownHosts.record(host, port, fp!);
      this.s.note(`recorded the host key of ${this.where} (${fp}) in ${this.s.knownHostsFile}`);
    }
    this.localAddress = (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    const conn = this.link(socket);
    const challenge = await this.next('challenge');
    if (challenge.t !== 'challenge') throw new TsmpiError('ERR_PROTOCOL', `${this.where}: expected a challenge`);
    if (challenge.v !== CONTROL_VERSION) throw new TsmpiError('ERR_PROTOCOL', `${this.where} speaks protocol ${challenge.v}, this launcher ${CONTROL_VERSION}`);
    this.slots = challenge.slots;
    const nonce = Buffer.from(challenge.nonce, 'base64');
    const staging = stagingKeyPair();
    this.fileKey = deriveFileKey(staging.secretKey, Buffer.from(challenge.staging, 'base64'), nonce);
    const sig = signChallenge(this.s.identity.secretKey, nonce, tlsChannelBinding(socket));
    conn.sendControl({
      t: 'auth',
      key: Buffer.from(this.s.identity.publicKey).toString('base64'),
      sig: Buffer.from(sig).toString('base64'),
      staging: Buffer.from(staging.publicKey).toString('base64'),
    });
    await this.next('welcome');
  }
}
