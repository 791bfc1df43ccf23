#!/usr/bin/env node
/**
 * tsmpid: the host daemon. Runs ranks for launchers whose keys are authorized,
 * over TLS only. `tsmpid --authorized-keys FILE --workdir DIR [--listen HOST:PORT] [--slots N]`
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { TsmpiError } from '../runtime/errors.js';
import { Daemon } from './daemon/daemon.js';
import { requestStop, STOP_FILE, watchStopFile, writePidFile } from './daemon/stop-file.js';
import { DEFAULT_PORT } from './hostlist/hosts.js';

const USAGE = `usage: tsmpid --authorized-keys FILE --workdir DIR [options]
       tsmpid --stop --workdir DIR   (stop the daemon serving DIR, cleanly: on Windows too)

options:
  --listen HOST:PORT        where to accept launchers (default 0.0.0.0:${DEFAULT_PORT})
  --authorized-keys FILE    launcher keys allowed to run jobs (one id.pub a line)
  --workdir DIR             host key and per-job folders live here
  --slots N                 ranks this host offers (default: its cores, ${availableParallelism()})
  --handshake-timeout S     seconds a connection has to authenticate (default 10)
  --idle-timeout S          seconds of silence before a launcher is dropped (default 60)
  --max-connections N       concurrent connections (default 64)
  --stop                    ask the daemon serving --workdir to end its jobs and exit
  -h, --help
`;

interface Parsed {
  listen: string;
  authorizedKeys: string | null;
  workdir: string | null;
  slots: number | null;
  handshake: number;
  idle: number;
  maxConnections: number;
  stop: boolean;
}

function positive(v: string | undefined, name: string): number {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n <= 0) throw new TsmpiError('ERR_ARG', `${name} needs a positive number, got ${JSON.stringify(v)}`);
  return n;
}

function parse(argv: string[]): Parsed | 'help' {
  const p: Parsed = { listen: `0.0.0.0:${DEFAULT_PORT}`, authorizedKeys: null, workdir: null, slots: null, handshake: 10, idle: 60, maxConnections: 64, stop: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const value = () => (a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : argv[++i]);
    switch (name) {
      case '-h':
      case '--help':
        return 'help';
      case '--listen':
        p.listen = value() ?? '';
        break;
      case '--authorized-keys':
        p.authorizedKeys = value() ?? null;
        break;
      case '--workdir':
        p.workdir = value() ?? null;
        break;
      case '--slots':
        p.slots = Math.floor(positive(value(), '--slots'));
        break;
      case '--handshake-timeout':
        p.handshake = positive(value(), name);
        break;
      case '--idle-timeout':
        p.idle = positive(value(), name);
        break;
      case '--max-connections':
        p.maxConnections = Math.floor(positive(value(), name));
        break;
      case '--stop':
        p.stop = true;
        break;
      default:
        throw new TsmpiError('ERR_ARG', `unknown option ${JSON.stringify(a)}`);
    }
  }
  if (!p.workdir) throw new TsmpiError('ERR_ARG', '--workdir DIR is required');
  if (!p.authorizedKeys && !p.stop) throw new TsmpiError('ERR_ARG', '--authorized-keys FILE is required');
  return p;
}

function splitListen(text: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new TsmpiError('ERR_ARG', `--listen needs HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

async function main(): Promise<number> {
  let p: Parsed | 'help';
  let where: { host: string; port: number };
  try {
    p = parse(process.argv.slice(2));
    if (p === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    where = splitListen(p.listen);
  } catch (e) {
    process.stderr.write(`tsmpid: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (p.stop) {
    try {
      await requestStop(resolve(p.workdir!));
      process.stdout.write(`tsmpid: the daemon serving ${resolve(p.workdir!)} stopped\n`);
      return 0;
    } catch (e) {
      process.stderr.write(`tsmpid: ${(e as Error).message}\n`);
      return 1;
    }
  }
  let daemon: Daemon;
  try {
    daemon = new Daemon({
      host: where.host,
      port: where.port,
      authorizedKeys: p.authorizedKeys!,
      workdir: p.workdir!,
      slots: p.slots ?? availableParallelism(),
      handshakeTimeoutMs: p.handshake * 1000,
      idleTimeoutMs: p.idle * 1000,
      maxConnections: p.maxConnections,
    });
    const info = await daemon.start();
    process.stdout.write(`tsmpid: listening on ${info.host}:${info.port}\ntsmpid: host key fingerprint ${info.fingerprint}\n`);
  } catch (e) {
    process.stderr.write(`tsmpid: ${(e as Error).message}\n`);
    return e instanceof TsmpiError && e.code === 'ERR_ARG' ? 2 : 1;
  }
  const unmark = writePidFile(daemon.o.workdir);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`tsmpid: ${why}: ending every job\n`);
      void daemon.close().then(resolve);
    };
    // Windows delivers no SIGTERM to a program (Ctrl+C and Ctrl+Break do
    // arrive): the stop file is the way to stop it cleanly from outside.
    watchStopFile(daemon.o.workdir, () => stop(`${STOP_FILE} appeared`));
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    if (process.platform === 'win32') process.once('SIGBREAK', () => stop('SIGBREAK'));
  });
  unmark();
  return 0;
}

process.exitCode = await main();
