// The agent program as ssh and srun start it (dist/launcher/agent/agent-main.js),
// spoken to directly: its hello, its end at EOF, what it refuses, and a
// call-back that will not give its token to a launcher with the wrong key.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import type { AgentJobSpec } from '../launcher/hosts/agent-host.js';
import { SlurmStep } from '../launcher/hosts/slurm-host.js';
import { createTlsIdentity } from '../launcher/keys/x509.js';
import { isTsmpiError } from '../runtime/errors.js';
import { marked, noneLeft } from './beds/leftovers.js';
import { FramedConn } from '../launcher/link/framed.js';
import { stdioLink } from '../launcher/link/stdio-link.js';
import { parseDaemonMessage, type DaemonToLauncher } from '../runtime/wire/control.js';
import { gone, root, until } from './harness.js';

const agentMain = join(root, 'dist', 'launcher', 'agent', 'agent-main.js');

function startAgent(mode: string, env: Record<string, string> = {}): { child: ChildProcess; conn: FramedConn; got: DaemonToLauncher[]; stderr: () => string; closed: () => boolean } {
  const child = spawn(process.execPath, [agentMain, mode], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const got: DaemonToLauncher[] = [];
  let err = '';
  let isClosed = false;
  child.stderr!.on('data', (c: Buffer) => (err += c));
  const conn = new FramedConn(stdioLink(child.stdout!, child.stdin!, { skipToMark: mode === '--stdio' }), 1 << 20, 1 << 20, {
    control: (v) => got.push(parseDaemonMessage(v)),
    data: () => {},
    close: () => (isClosed = true),
  });
  return { child, conn, got, stderr: () => err, closed: () => isClosed };
}

function exited(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => reject(new Error(`the agent did not exit within ${ms} ms`)), ms);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('agent-main --stdio (as ssh starts it)', () => {
  it("says hello with where its ranks would listen (SSH_CONNECTION's server address) and the launcher's address; exits at EOF", async () => {
    const a = startAgent('--stdio', { SSH_CONNECTION: '127.0.0.9 50000 127.0.0.29 22' });
    await until(() => a.got.length > 0, 10_000, `a hello; stderr: ${a.stderr()}`);
    const hello = a.got[0]!;
    expect(hello.t).toBe('agent');
    if (hello.t !== 'agent') return;
    expect(hello.listenHost).toBe('127.0.0.29');
    expect(hello.peerHost).toBe('127.0.0.9');
    expect(hello.slots).toBeGreaterThan(0);
    expect(hello.token).toBeUndefined();
    a.child.stdin!.end();
    expect(await exited(a.child, 5000)).toBe(0);
    await until(() => gone(a.child.pid!), 3000, 'the agent to be gone');
  });

  it("refuses a job before 'open' (ERR_PROTOCOL) and ends", async () => {
    const a = startAgent('--stdio');
    await until(() => a.got.length > 0, 10_000, 'a hello');
    a.conn.sendControl({ t: 'start' });
    await until(() => a.got.some((m) => m.t === 'refused'), 5000, `a refusal; got ${JSON.stringify(a.got)}`);
    expect(a.got.find((m) => m.t === 'refused')).toMatchObject({ code: 'ERR_PROTOCOL' });
    await exited(a.child, 5000);
  });

  it('ends on garbage (a frame that is not one)', async () => {
    const a = startAgent('--stdio');
    await until(() => a.got.length > 0, 10_000, 'a hello');
    a.child.stdin!.write(Buffer.alloc(64, 0x41));
    await exited(a.child, 5000);
    expect(a.closed()).toBe(true);
  });
});

describe('agent-main --call-back (as srun starts it)', () => {
  it("will not give its token to a launcher whose key is not the one announced", async () => {
    const announced = createTlsIdentity('the real launcher');
    const impostor = createTlsIdentity('someone else');
    const heard: Buffer[] = [];
    const server = tls.createServer({ key: impostor.key, cert: impostor.cert, minVersion: 'TLSv1.3' }, (s) => s.on('data', (c: Buffer) => heard.push(c)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      const child = spawn(process.execPath, [agentMain, '--call-back'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (c: Buffer) => (err += c));
      child.stdin!.write(JSON.stringify({ address: '127.0.0.1', port, fingerprint: announced.fingerprint, token: 'c2VjcmV0' }) + '\n');
      expect(await exited(child, 10_000)).toBe(1);
      expect(err).toMatch(/does not hold the key it announced/);
      expect(Buffer.concat(heard).includes('c2VjcmV0')).toBe(false);
      expect(heard.length).toBe(0);
    } finally {
      server.close();
    }
  });

  it('ends when stdin closes before the call-back line', async () => {
    const child = spawn(process.execPath, [agentMain, '--call-back'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c));
    child.stdin!.end();
    expect(await exited(child, 10_000)).toBe(1);
    expect(err).toMatch(/stdin ended before the call-back line/);
  });
});

describe('the launcher end of a Slurm step', () => {
  // srun replaced by a script that starts the real agent with a forged call-back
  // line: only the starting of tasks is stood in for, not what is tested.
  it.each([
    ['a wrong token', `s/"token":"[^"]*"/"token":"d3Jvbmc="/`, 'n1'],
    ['the right token from a node that is not in the job', 's/x/x/', 'n9'],
  ])('refuses an agent with %s: the node never joins, the start fails in time', async (_what, edit, node) => {
    const dir = mkdtempSync(join(tmpdir(), 'fake-srun-'));
    const mark = `fake-srun-${Math.random().toString(36).slice(2)}`;
    const srun = join(dir, 'srun');
    writeFileSync(srun, `#!/bin/sh\nread line\nprintf '%s\\n' "$line" | sed '${edit}' | SLURMD_NODENAME=${node} FAKE_MARK=${mark} exec ${process.execPath} ${agentMain} --call-back\n`);
    chmodSync(srun, 0o755);
    const step = new SlurmStep({ nodes: ['n1'], remoteNode: process.execPath, remotePrefix: null, srun });
    const job = { connectTimeoutMs: 3000, ranks: [0], note: () => {} } as unknown as AgentJobSpec;
    const host = step.host('n1', job);
    try {
      const t0 = Date.now();
      const err = await host.connect().then(
        () => null,
        (e: unknown) => e,
      );
      expect(isTsmpiError(err), String(err)).toBe(true);
      // refused at once, the agent ends (its link closed), srun with it: the start fails
      expect((err as Error).message).toMatch(/n1 \(slurm\)/);
      expect(Date.now() - t0).toBeLessThan(8000);
    } finally {
      host.close();
      await noneLeft([`FAKE_MARK=${mark}`], 8000);
      expect(marked([`FAKE_MARK=${mark}`])).toEqual([]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
