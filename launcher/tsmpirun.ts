#!/usr/bin/env node
/** tsmpirun: start ranks of one script and supervise them. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsmpiError } from '../runtime/errors.js';
import { parseArgs, USAGE, type RunOptions } from './args.js';
import { isLocalHost, mayOversubscribe, parseHostfile, parseHostList, placeRanks, slotsOf, type HostSpec } from './hosts.js';
import { Job } from './job.js';
import { distDir } from './paths.js';

function hostsOf(o: RunOptions): HostSpec[] {
  if (o.hosts !== null) return parseHostList(o.hosts);
  if (o.hostfile !== null) {
    let text: string;
    try {
      text = readFileSync(o.hostfile, 'utf8');
    } catch (e) {
      throw new TsmpiError('ERR_ARG', `cannot read --hostfile ${o.hostfile}: ${(e as Error).message}`);
    }
    return parseHostfile(text, o.hostfile);
  }
  return [{ name: 'localhost', slots: null, maxSlots: null, port: 0 }];
}

async function run(o: RunOptions): Promise<number> {
  if (!existsSync(o.script)) throw new TsmpiError('ERR_ARG', `SCRIPT ${o.script} does not exist`);
  const hosts = hostsOf(o);
  const remote = hosts.filter((h) => !isLocalHost(h.name));
  if (remote.length) {
    throw new TsmpiError('ERR_ARG', `remote hosts (${remote.map((h) => h.name).join(', ')}) need tsmpid, which this version does not support yet`);
  }
  const n = o.np ?? hosts.reduce((s, h) => s + slotsOf(h), 0);
  const placement = placeRanks(hosts, n, (h) => mayOversubscribe(h, o.oversubscribe));
  const rankHosts: string[] = new Array(n);
  for (const p of placement) for (const r of p.ranks) rankHosts[r] = p.host.name;
  const env: Record<string, string> = {};
  for (const [k, v] of o.env) {
    const value = v ?? process.env[k];
    if (value !== undefined) env[k] = value;
  }
  const job = new Job({ script: o.script, args: o.args, hosts: rankHosts, env, tagOutput: o.tagOutput, timeout: o.timeout, results: o.results });
  return job.run();
}

async function main(argv: string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`tsmpirun: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  switch (cmd.kind) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'version': {
      const pkg = JSON.parse(readFileSync(join(distDir, '..', 'package.json'), 'utf8')) as { version: string };
      process.stdout.write(`tsmpirun (tsmpi) ${pkg.version}\n`);
      return 0;
    }
    case 'keygen':
      process.stderr.write('tsmpirun: keygen is not available in this version yet\n');
      return 2;
    case 'run':
      try {
        return await run(cmd.options);
      } catch (e) {
        if (e instanceof TsmpiError && e.code === 'ERR_ARG') {
          process.stderr.write(`tsmpirun: ${e.message}\n`);
          return 2;
        }
        process.stderr.write(`tsmpirun: ${(e as Error).stack ?? e}\n`);
        return 1;
      }
  }
}

process.exitCode = await main(process.argv.slice(2));
