#!/usr/bin/env node
/** tsmpirun: start ranks of one script and supervise them. */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TsmpiError } from '../runtime/errors.js';
import { localModeOf, parseArgs, USAGE, viaOf, type RunOptions } from './cli/args.js';
import { isLocalHost, mayOversubscribe, parseHostfile, parseHostList, placeRanks, slotsOf, type HostSpec } from './hostlist/hosts.js';
import { Job } from './job/job.js';
import { distDir } from './os/paths.js';
import { slurmHosts } from './hostlist/slurm.js';

function hostsOf(o: RunOptions, via: 'tsmpid' | 'ssh' | 'slurm'): HostSpec[] {
  if (via === 'slurm') {
    // Every allocated node gets an agent through srun, this one too if it is one of them.
    const hosts = process.env.SLURM_JOB_ID ? slurmHosts(process.env) : null;
    if (!hosts) throw new TsmpiError('ERR_ARG', '--via slurm runs inside a Slurm allocation (salloc, sbatch), and SLURM_JOB_ID/SLURM_JOB_NODELIST are not set here');
    return hosts;
  }
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
  // Inside a Slurm allocation, its hosts are the default.
  const slurm = slurmHosts(process.env)?.map((h) => (h.name === hostname() || h.name === hostname().split('.')[0] ? { ...h, name: 'localhost' } : h));
  return slurm ?? [{ name: 'localhost', slots: null, maxSlots: null, port: 0 }];
}

async function run(o: RunOptions): Promise<number> {
  if (!existsSync(o.script)) throw new TsmpiError('ERR_ARG', `SCRIPT ${o.script} does not exist`);
  const via = viaOf(o, process.env);
  const hosts = hostsOf(o, via);
  for (const f of o.files) if (!existsSync(f)) throw new TsmpiError('ERR_ARG', `--files: ${f} does not exist`);
  const n = o.np ?? hosts.reduce((s, h) => s + slotsOf(h), 0);
  const placement = placeRanks(hosts, n, (h) => mayOversubscribe(h, o.oversubscribe));
  const env: Record<string, string> = {};
  for (const [k, v] of o.env) {
    const value = v ?? process.env[k];
    if (value !== undefined) env[k] = value;
  }
  const localMode = localModeOf(o.localMode);
  // Keys and ssh (and what they import) load only for a job that leaves this machine.
  const remote = via !== 'tsmpid' || placement.some((p) => !isLocalHost(p.host.name));
  const [{ DEFAULT_KEY_DIR }, { DEFAULT_SSH }] = remote ? await Promise.all([import('./keys/keys.js'), import('./hosts/ssh-host.js')]) : [LOCAL_ONLY, LOCAL_ONLY];
  const job = new Job({
    localMode,
    script: o.script,
    args: o.args,
    placement,
    env,
    tagOutput: o.tagOutput,
    timeout: o.timeout,
    results: o.results,
    files: o.files,
    identityFile: o.identity ?? join(DEFAULT_KEY_DIR, 'id'),
    knownHostsFile: o.knownHosts ?? join(DEFAULT_KEY_DIR, 'known_hosts'),
    outputDir: o.outputDir,
    quiet: o.quiet,
    report: o.report,
    detectDeadlock: o.detectDeadlock,
    oversubscribe: o.oversubscribe === true,
    monitor: o.monitor,
    via,
    ssh: {
      command: o.sshCommand ?? DEFAULT_SSH.command,
      // srun passes this environment on, so under Slurm this very node binary is the default
      remoteNode: o.remoteNode ?? (via === 'slurm' ? process.execPath : DEFAULT_SSH.remoteNode),
      remotePrefix: o.remotePrefix ?? DEFAULT_SSH.remotePrefix,
    },
  });
  return job.run();
}

/** Stand-ins for a job on this machine only (no keys are read, no ssh runs). */
const LOCAL_ONLY = { DEFAULT_KEY_DIR: '', DEFAULT_SSH: { command: ['ssh'], remoteNode: 'node', remotePrefix: '' } };

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
      try {
        const { keygen } = await import('./keys/keys.js');
        const { idFile, pubFile } = keygen(cmd.out);
        process.stdout.write(`wrote ${idFile} (secret, keep it) and ${pubFile} (add it to each host's --authorized-keys)\n`);
        return 0;
      } catch (e) {
        process.stderr.write(`tsmpirun: keygen: ${(e as Error).message}\n`);
        return 2;
      }
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
