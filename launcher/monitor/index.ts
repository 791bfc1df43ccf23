/**
 * `--monitor` / the Pool's `monitor` option: start the live page, print its
 * URL (with the token) once on stderr, and hand back the feed to write into.
 */
import { parseMonitorAddress, type MonitorAddress } from './address.js';
import { MonitorServer } from './server.js';
import { MonitorState, type MonitorKind } from './state.js';
import type { MonitorFeed } from './feed.js';

export type { MonitorFeed };
export { parseMonitorAddress, type MonitorAddress };

export interface Monitor {
  /** what the job or pool writes into */
  readonly feed: MonitorFeed;
  /** the page's address, token included */
  readonly url: string;
  /** send the last state to every page and stop serving */
  close(): Promise<void>;
}

export interface MonitorOptions {
  kind: MonitorKind;
  title: string;
  /** where the URL is announced (default: stderr, as `PREFIX: monitor at URL`) */
  announce?: ((url: string) => void) | null;
  /** who announces it, e.g. `tsmpirun` or `tsmpi pool` */
  prefix?: string;
}

export async function startMonitor(where: MonitorAddress | string | number, o: MonitorOptions): Promise<Monitor> {
  const address = typeof where === 'object' ? where : parseMonitorAddress(where, o.kind === 'pool' ? 'monitor' : '--monitor');
  const state = new MonitorState(o.kind, o.title);
  const server = await MonitorServer.start(address, state);
  const announce = o.announce === undefined ? (url: string) => process.stderr.write(`${o.prefix ?? 'tsmpirun'}: monitor at ${url}\n`) : o.announce;
  announce?.(server.url);
  return { feed: state, url: server.url, close: () => server.close() };
}
