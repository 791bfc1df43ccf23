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

/** A monitor whose feed exists at once (nothing fed is missed) while it starts listening. */
export interface OpeningMonitor {
  readonly feed: MonitorFeed;
  /** the URL once listening (after it was announced); rejects with ERR_ARG when it cannot listen */
  readonly listening: Promise<string>;
  close(): Promise<void>;
}

/** Start the monitor; the address is checked at once (ERR_ARG), the listening happens after. */
export function openMonitor(where: MonitorAddress | string | number, o: MonitorOptions): OpeningMonitor {
  const address = typeof where === 'object' ? where : parseMonitorAddress(where, o.kind === 'pool' ? 'monitor' : '--monitor');
  const state = new MonitorState(o.kind, o.title);
  const announce = o.announce === undefined ? (url: string) => process.stderr.write(`${o.prefix ?? 'tsmpirun'}: monitor at ${url}\n`) : o.announce;
  const server = MonitorServer.start(address, state).then((s) => {
    announce?.(s.url);
    return s;
  });
  server.catch(() => {});
  return {
    feed: state,
    listening: server.then((s) => s.url),
    close: async () => (await server.catch(() => null))?.close(),
  };
}

/** Start the monitor and wait until it listens (and its URL was announced). */
export async function startMonitor(where: MonitorAddress | string | number, o: MonitorOptions): Promise<Monitor> {
  const m = openMonitor(where, o);
  const url = await m.listening;
  return { feed: m.feed, url, close: m.close };
}
