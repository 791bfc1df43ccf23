// A test bed of real OpenSSH servers, one a "host" on its own loopback address
// and with its own hostname (unshare --uts), key-only login, and one client
// ssh_config that reaches them by name. Nothing here is mocked: tsmpirun runs
// the real `ssh` against the real `sshd`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { marked } from './leftovers.js';

export const SSHD = '/usr/sbin/sshd';

export interface SshHostBed {
  /** the name in the client config (and the host's own hostname) */
  name: string;
  address: string;
  port: number;
  /** the sshd process (its -D listener) */
  sshd: ChildProcess;
}

export interface SshBed {
  dir: string;
  /** `ssh -F CONFIG NAME …` reaches every host */
  config: string;
  hosts: SshHostBed[];
  /** in the environment of everything started through this bed's sshds (SetEnv/AcceptEnv) */
  mark: string;
  close(): Promise<void>;
}

/** Fail loudly (never skip) when OpenSSH is missing. */
export function requireOpenSsh(): void {
  for (const p of [SSHD, '/usr/bin/ssh', '/usr/bin/ssh-keygen']) {
    if (!existsSync(p)) throw new Error(`${p} is missing: install OpenSSH (apt-get install -y --no-install-recommends openssh-server openssh-client; .ci/run does)`);
  }
}

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function portTaken(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(true));
    s.listen(port, address, () => s.close(() => resolve(false)));
  });
}

async function listening(address: string, port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, address, () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`sshd on ${address}:${port} did not start within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Start one sshd per `[name, address]`. `refuse` names hosts whose sshd accepts
 * no key at all (for "the key is refused" tests).
 */
export async function startSshBed(hosts: [string, string][], o: { refuse?: string[] } = {}): Promise<SshBed> {
  requireOpenSsh();
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'tsmpi-sshbed-'));
  const mark = randomBytes(8).toString('hex');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id'), '-C', 'tsmpi-test']);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id.pub')));
  writeFileSync(join(dir, 'no_keys'), '');
  const known: string[] = [];
  const client: string[] = [];
  const beds: SshHostBed[] = [];
  try {
    for (const [name, address] of hosts) {
      const hostKey = join(dir, `host-${name}`);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey, '-C', name]);
      known.push(`${name} ${readFileSync(hostKey + '.pub', 'utf8').trim().split(' ').slice(0, 2).join(' ')}`);
      const port = (await portTaken(address, 22)) ? await freePort(address) : 22;
      const conf = join(dir, `sshd-${name}.conf`);
      const hostTmp = join(dir, `tmp-${name}`);
      mkdirSync(hostTmp, { mode: 0o700 });
      writeFileSync(
        conf,
        [
          `ListenAddress ${address}:${port}`,
          `HostKey ${hostKey}`,
          `PidFile ${join(dir, `sshd-${name}.pid`)}`,
          `AuthorizedKeysFile ${join(dir, o.refuse?.includes(name) ? 'no_keys' : 'authorized_keys')}`,
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PubkeyAuthentication yes',
          'PermitRootLogin prohibit-password',
          'UsePAM no',
          'StrictModes no',
          'MaxStartups 64:30:128',
          'MaxSessions 64',
          // only the bed's marker, so tests can find every process it started; nothing of the launcher's
          'AcceptEnv TSMPI_BED_MARK',
          // a temp folder of this host's own, as a second machine has: agents
          // of other tests (other hosts, other beds) never see its folders
          `SetEnv TMPDIR=${hostTmp}`,
          'LogLevel ERROR',
          '',
        ].join('\n'),
      );
      const sshd = spawn('unshare', ['--uts', 'sh', '-c', `hostname ${name} && exec ${SSHD} -D -e -f ${conf}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      sshd.stderr!.on('data', (c: Buffer) => (log = (log + c).slice(-4000)));
      beds.push({ name, address, port, sshd });
      await listening(address, port, 10_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${log}`);
      });
      client.push(
        `Host ${name} ${address}`,
        `  HostName ${address}`,
        `  Port ${port}`,
        `  HostKeyAlias ${name}`,
        '  User root',
        `  IdentityFile ${join(dir, 'id')}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${join(dir, 'known_hosts')}`,
        '  StrictHostKeyChecking yes',
        '  BatchMode yes',
        '  ConnectTimeout 5',
        '  ServerAliveInterval 5',
        '  LogLevel ERROR',
        `  SetEnv TSMPI_BED_MARK=${mark}`,
        '',
      );
    }
  } catch (e) {
    for (const b of beds) b.sshd.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  writeFileSync(join(dir, 'known_hosts'), known.join('\n') + '\n');
  const config = join(dir, 'ssh_config');
  writeFileSync(config, client.join('\n'));
  return {
    dir,
    config,
    hosts: beds,
    mark,
    async close() {
      await Promise.all(
        beds.map(
          (b) =>
            new Promise<void>((resolve) => {
              if (b.sshd.exitCode !== null || b.sshd.signalCode !== null) return resolve();
              b.sshd.once('exit', () => resolve());
              b.sshd.kill('SIGTERM');
              setTimeout(() => b.sshd.kill('SIGKILL'), 2000).unref();
            }),
        ),
      );
      // a session still closing when its sshd went: nothing may outlive the bed
      for (const f of marked([`TSMPI_BED_MARK=${mark}`])) {
        try {
          process.kill(f.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
