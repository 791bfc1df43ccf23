// A real Slurm cluster on this machine for tests: munged with its own key and
// socket, slurmctld, and one slurmd a node, each node with its own hostname
// (unshare --uts) and port, all under one scratch folder with its own
// SLURM_CONF. Tests then run tsmpirun inside `salloc`, as a user would.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { marked } from './leftovers.js';

const PROGRAMS = ['/usr/sbin/munged', '/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/srun', '/usr/bin/salloc', '/usr/bin/scontrol', '/usr/bin/scancel'];

export interface SlurmBed {
  dir: string;
  /** SLURM_CONF (and nothing else) for every Slurm command of the tests */
  env: Record<string, string>;
  nodes: string[];
  /** in the environment of every process the bed's daemons run (slurmd passes it on) */
  mark: string;
  /** run a Slurm client command against this cluster */
  cmd(program: string, args: string[], timeoutMs?: number): { code: number | null; stdout: string; stderr: string };
  close(): Promise<void>;
}

/** Fail loudly (never skip) when Slurm or munge is missing. */
export function requireSlurm(): void {
  for (const p of PROGRAMS) {
    if (!existsSync(p)) throw new Error(`${p} is missing: install Slurm (apt-get install -y --no-install-recommends slurmd slurmctld slurm-client munge; .ci/run does)`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Start a cluster of `nodes` (names, each with `cpus` CPUs) on loopback; the
 * controller on `ctlAddress`, node i on `nodeAddresses[i]`.
 */
export async function startSlurmBed(nodes: string[], o: { cpus?: number; ctlAddress?: string; nodeAddresses?: string[] } = {}): Promise<SlurmBed> {
  requireSlurm();
  const dir = mkdtempSync(join(tmpdir(), 'tsmpi-slurmbed-'));
  const mark = randomBytes(8).toString('hex');
  const cpus = o.cpus ?? 4;
  const ctlAddress = o.ctlAddress ?? '127.0.0.31';
  const addrs = o.nodeAddresses ?? nodes.map((_, i) => `127.0.0.${32 + i}`);
  const procs: ChildProcess[] = [];
  const logs: string[] = [];
  const start = (name: string, argv: string[], env: Record<string, string>) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env, TSMPI_BED_MARK: mark } });
    const i = logs.push('') - 1;
    p.stderr!.on('data', (c: Buffer) => (logs[i] = (logs[i]! + c).slice(-4000)));
    p.on('error', (e) => (logs[i] += `\n${name}: ${e.message}`));
    procs.push(p);
    return p;
  };
  const close = async () => {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGTERM');
            setTimeout(() => p.kill('SIGKILL'), 3000).unref();
          }),
      ),
    );
    // a step daemon (slurmstepd) still finishing when its slurmd went: nothing may outlive the bed
    for (const f of marked([`TSMPI_BED_MARK=${mark}`])) {
      try {
        process.kill(f.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // munge: its own key and socket; --force because the socket folder is 0700
    const mungeDir = join(dir, 'munge');
    mkdirSync(mungeDir, { mode: 0o700 });
    writeFileSync(join(mungeDir, 'munge.key'), randomBytes(1024), { mode: 0o400 });
    const socket = join(mungeDir, 'munge.socket');
    start('munged', ['/usr/sbin/munged', '--foreground', '--force', `--socket=${socket}`, `--key-file=${join(mungeDir, 'munge.key')}`, `--pid-file=${join(mungeDir, 'munged.pid')}`, `--seed-file=${join(mungeDir, 'seed')}`, `--log-file=${join(mungeDir, 'munged.log')}`], {});
    await waitFor(() => existsSync(socket), 10_000, () => `munged's socket\n${logs.join('\n')}`);
    const ctlPort = await freePort();
    const ports = await Promise.all(nodes.map(() => freePort()));
    for (const n of nodes) mkdirSync(join(dir, 'spool', n), { recursive: true });
    mkdirSync(join(dir, 'state'));
    const conf = join(dir, 'slurm.conf');
    writeFileSync(
      conf,
      [
        'ClusterName=tsmpitest',
        `SlurmctldHost=ctl(${ctlAddress})`,
        `SlurmctldPort=${ctlPort}`,
        'SlurmUser=root',
        'SlurmdUser=root',
        'AuthType=auth/munge',
        'CredType=cred/munge',
        `AuthInfo=socket=${socket}`,
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_CPU',
        'SlurmdParameters=config_overrides',
        'MpiDefault=none',
        'KillWait=5',
        'ReturnToService=2',
        'InactiveLimit=0',
        'JobAcctGatherType=jobacct_gather/none',
        'AccountingStorageType=accounting_storage/none',
        'SchedulerType=sched/builtin',
        `StateSaveLocation=${join(dir, 'state')}`,
        `SlurmdSpoolDir=${join(dir, 'spool', '%n')}`,
        `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
        `SlurmdPidFile=${join(dir, 'slurmd-%n.pid')}`,
        `SlurmctldLogFile=${join(dir, 'slurmctld.log')}`,
        `SlurmdLogFile=${join(dir, 'slurmd-%n.log')}`,
        ...nodes.map((n, i) => `NodeName=${n} NodeHostname=${n} NodeAddr=${addrs[i]} Port=${ports[i]} CPUs=${cpus} State=UNKNOWN`),
        `PartitionName=debug Nodes=${nodes.join(',')} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO`,
        '',
      ].join('\n'),
    );
    const env = { SLURM_CONF: conf };
    start('slurmctld', ['unshare', '--uts', 'sh', '-c', `hostname ctl && exec /usr/sbin/slurmctld -D -i -f ${conf}`], env);
    for (const n of nodes) start(`slurmd ${n}`, ['unshare', '--uts', 'sh', '-c', `hostname ${n} && exec /usr/sbin/slurmd -D -f ${conf} -N ${n}`], env);
    const cmd = (program: string, args: string[], timeoutMs = 15_000) => {
      const r = spawnSync(program, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: timeoutMs });
      return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    };
    const logText = () => `${logs.join('\n')}\n${['slurmctld.log', ...nodes.map((n) => `slurmd-${n}.log`)].map((f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').slice(-2000) : '')).join('\n')}`;
    await waitFor(
      () => {
        const r = cmd('/usr/bin/sinfo', ['-h', '-N', '-o', '%N %t']);
        const idle = r.stdout.split('\n').filter((l) => / idle$/.test(l.trim())).length;
        return idle === nodes.length;
      },
      20_000,
      () => `${nodes.length} idle nodes\n${cmd('/usr/bin/sinfo', ['-N']).stdout}\n${logText()}`,
    );
    return { dir, env, nodes, mark, cmd, close };
  } catch (e) {
    await close();
    throw e;
  }
}
