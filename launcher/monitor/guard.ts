/**
 * Who may see the monitor: a request must carry the page's random token (in
 * `?token=`, compared in constant time), name the monitor itself in `Host`
 * (a DNS-rebinding page names its own domain there) and, when it sends an
 * `Origin`, come from the monitor's own origin. Only GET is served.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant time whatever the lengths: both sides are hashed first. */
export function tokenMatches(given: string | null, token: string): boolean {
  if (given === null) return false;
  return timingSafeEqual(digest(given), digest(token));
}

/** The `host:port` names a browser may use for a monitor bound to `bound`. */
export function allowedHosts(bound: string, port: number): Set<string> {
  const names = new Set<string>([bound]);
  const loopback = bound === '127.0.0.1' || bound === '::1' || bound === 'localhost';
  const any = bound === '0.0.0.0' || bound === '::';
  if (loopback) names.add('localhost').add('127.0.0.1');
  if (any) {
    names.add('localhost').add('127.0.0.1').add(hostname()).add(hostname().split('.')[0]!);
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.address);
  }
  const out = new Set<string>();
  for (const n of names) {
    const h = n.includes(':') ? `[${n}]` : n;
    out.add(`${h.toLowerCase()}:${port}`);
    // a browser leaves out the default port
    if (port === 80) out.add(h.toLowerCase());
  }
  return out;
}

export type Verdict = { ok: true } | { ok: false; status: number; reason: string };

export interface RequestFacts {
  method: string | undefined;
  host: string | undefined;
  origin: string | undefined;
  /** Sec-Fetch-Site, sent by browsers */
  fetchSite: string | undefined;
  token: string | null;
}

export function judge(r: RequestFacts, allowed: Set<string>, token: string): Verdict {
  if (!r.host || !allowed.has(r.host.toLowerCase())) return { ok: false, status: 421, reason: 'this monitor does not answer to that Host' };
  if (r.origin !== undefined && !(r.origin.startsWith('http://') && allowed.has(r.origin.slice(7).toLowerCase()))) {
    return { ok: false, status: 403, reason: 'cross-origin requests are refused' };
  }
  if (r.fetchSite === 'cross-site' || r.fetchSite === 'same-site') return { ok: false, status: 403, reason: 'cross-origin requests are refused' };
  if (r.method !== 'GET') return { ok: false, status: 405, reason: 'the monitor is read-only: GET only' };
  if (!tokenMatches(r.token, token)) return { ok: false, status: 403, reason: 'a valid token is required (use the URL tsmpirun printed)' };
  return { ok: true };
}
