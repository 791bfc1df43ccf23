/**
 * A rank's contact: where its peers can reach it. `@HOSTID ADDRESS…` — ranks on
 * the same host use the local socket (or, as threads of one process, shared
 * memory: `shm:MESH:RANK`); ranks elsewhere use the TLS address.
 */
import { TsmpiError } from '../errors.js';

export function formatContact(hostId: string, addresses: string[]): string {
  return [`@${hostId}`, ...addresses].join(' ');
}

/** `myMesh`: this rank's shared-memory mesh (thread ranks of one process), preferred for peers in it. */
export function pickAddress(contact: string, myHostId: string, myMesh: string | null = null): string {
  const [host, ...addresses] = contact.split(' ');
  if (!host?.startsWith('@') || addresses.length === 0) throw new TsmpiError('ERR_PROTOCOL', `malformed contact ${JSON.stringify(contact)}`);
  if (myMesh) {
    const shm = addresses.find((a) => a.startsWith(`shm:${myMesh}:`));
    if (shm) return shm;
  }
  const sameHost = host.slice(1) === myHostId;
  const local = addresses.find((a) => a.startsWith('unix:') || a.startsWith('pipe:'));
  if (sameHost && local) return local;
  const remote = addresses.find((a) => a.startsWith('tls:'));
  if (remote) return remote;
  if (local && sameHost) return local;
  throw new TsmpiError('ERR_PEER_LOST', `no address in ${JSON.stringify(contact)} is reachable from host ${myHostId}`);
}
