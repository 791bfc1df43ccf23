/** `--monitor [HOST:]PORT` (and the Pool's `monitor` option): where the monitor listens. */
import { isIP } from 'node:net';
import { TsmpiError } from '../../runtime/errors.js';

export interface MonitorAddress {
  /** 127.0.0.1 unless the user named another address */
  host: string;
  /** 0: any free port (the printed URL says which) */
  port: number;
}

export const DEFAULT_MONITOR_HOST = '127.0.0.1';

/** `PORT`, `HOST:PORT` or `[IPv6]:PORT`; `what` names the option in errors. */
export function parseMonitorAddress(text: string | number, what = '--monitor'): MonitorAddress {
  const s = String(text).trim();
  const bad = (why: string) => new TsmpiError('ERR_ARG', `${what} needs [HOST:]PORT (${why}), got ${JSON.stringify(String(text))}`);
  let host = DEFAULT_MONITOR_HOST;
  let portText = s;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(s);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
    if (isIP(host) !== 6) throw bad(`${host} is not an IPv6 address`);
  } else if (s.includes(':')) {
    const cut = s.lastIndexOf(':');
    host = s.slice(0, cut);
    portText = s.slice(cut + 1);
    if (host.includes(':')) throw bad('write an IPv6 address in brackets: [::1]:PORT');
    if (!/^[A-Za-z0-9.-]+$/.test(host)) throw bad(`${JSON.stringify(host)} is not a host name or address`);
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad('the port must be a number');
  const port = Number(portText);
  if (port > 65535) throw bad('the port must be at most 65535');
  return { host, port };
}
