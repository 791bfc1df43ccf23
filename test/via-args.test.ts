// The command line of `--via` and its ssh options, and what tsmpirun hands to
// ssh: pure functions, with the remote shell's quoting checked by a real sh.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseArgs, splitCommand, viaOf, type RunOptions } from '../launcher/cli/args.js';
import { shellQuote, sshArgv } from '../launcher/hosts/ssh-host.js';
import { isTsmpiError } from '../runtime/errors.js';

function opts(argv: string[]): RunOptions {
  const c = parseArgs(argv);
  if (c.kind !== 'run') throw new Error(`not a run: ${c.kind}`);
  return c.options;
}

function refused(argv: string[], text: string): void {
  try {
    parseArgs(argv);
  } catch (e) {
    expect(isTsmpiError(e, 'ERR_ARG'), String(e)).toBe(true);
    expect((e as Error).message).toContain(text);
    return;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('--via and the ssh options', () => {
  it('reads --via, --ssh-command, --remote-node, --remote-prefix', () => {
    const o = opts(['--via', 'ssh', '--ssh-command', 'ssh -F "/tmp/my cfg" -o Port=2222', '--remote-node=/opt/node/bin/node', '--remote-prefix', '/opt/tsmpi', 'job.ts']);
    expect(o.via).toBe('ssh');
    expect(o.sshCommand).toEqual(['ssh', '-F', '/tmp/my cfg', '-o', 'Port=2222']);
    expect(o.remoteNode).toBe('/opt/node/bin/node');
    expect(o.remotePrefix).toBe('/opt/tsmpi');
    expect(opts(['--via=slurm', 'job.ts']).via).toBe('slurm');
  });

  it('refuses a bad --via, an empty --ssh-command, hosts with --via slurm, --ssh-command without ssh', () => {
    refused(['--via', 'rsh', 'job.ts'], '--via must be tsmpid, ssh or slurm');
    refused(['--via', 'ssh', '--ssh-command', '  ', 'job.ts'], '--ssh-command names no command');
    refused(['--via', 'ssh', '--ssh-command', 'ssh -F "cfg', 'job.ts'], 'unclosed');
    refused(['--via', 'slurm', '--host', 'a,b', 'job.ts'], '--via slurm takes its hosts from the allocation');
    refused(['--ssh-command', 'ssh', 'job.ts'], '--ssh-command needs --via ssh');
  });

  it('defaults to slurm inside an allocation when no host flag is given, else tsmpid', () => {
    expect(viaOf(opts(['job.ts']), {})).toBe('tsmpid');
    expect(viaOf(opts(['job.ts']), { SLURM_JOB_ID: '42' })).toBe('slurm');
    expect(viaOf(opts(['--host', 'a', 'job.ts']), { SLURM_JOB_ID: '42' })).toBe('tsmpid');
    expect(viaOf(opts(['--via', 'ssh', 'job.ts']), { SLURM_JOB_ID: '42' })).toBe('ssh');
  });

  it('splits commands as a shell would (quotes, backslashes)', () => {
    expect(splitCommand(`ssh  -F 'a b' -o "X=\\"y\\"" c\\ d`)).toEqual(['ssh', '-F', 'a b', '-o', 'X="y"', 'c d']);
    expect(splitCommand(`ssh ''`)).toEqual(['ssh', '']);
  });
});

describe('what ssh is given', () => {
  it('quotes every word so the remote shell reads it back unchanged', () => {
    const words = ['plain', '/path with space/node', "it's", '$HOME', '`id`', 'a;b', '*', '', 'ü'];
    const line = words.map(shellQuote).join(' ');
    const r = spawnSync('sh', ['-c', `printf '%s\\n' ${line}`], { encoding: 'utf8' });
    expect(r.stdout.split('\n').slice(0, -1)).toEqual(words);
  });

  it('is -T (no pty), BatchMode (no prompt), never -n, then the host and one quoted command', () => {
    const argv = sshArgv('user@hostA', { command: ['ssh', '-F', 'cfg'], remoteNode: '/opt/node 20/bin/node', remotePrefix: '/opt/tsmpi/' });
    expect(argv).toEqual(['ssh', '-F', 'cfg', '-T', '-o', 'BatchMode=yes', 'user@hostA', `'/opt/node 20/bin/node' /opt/tsmpi/dist/launcher/agent/agent-main.js --stdio`]);
    expect(argv).not.toContain('-n');
  });
});
