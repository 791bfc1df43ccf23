// The platform-specific pieces, tested for Linux, macOS and Windows on any host.
import { describe, expect, it } from 'vitest';
import { hasUserSignals, localAddress, socketPathFits, teardownSignal } from '../launcher/os/platform.js';
import { ownerOnlyCommand, restrictToOwner, windowsAccount, type Runner } from '../launcher/os/owner-only.js';
import { parseAddress } from '../runtime/transport/socket.js';
import { throwsCode } from './expect-code.js';
import { formatContact, pickAddress } from '../runtime/transport/contact.js';

describe('local endpoints', () => {
  it('Unix sockets in the job folder on Linux and macOS', () => {
    expect(localAddress('/tmp/tsmpi-abc', 'r3', 'linux')).toBe('unix:/tmp/tsmpi-abc/r3.sock');
    expect(localAddress('/var/folders/x/T/tsmpi-abc', 'control', 'darwin')).toBe('unix:/var/folders/x/T/tsmpi-abc/control.sock');
  });

  it('named pipes on Windows, unique by the job folder name', () => {
    const a = localAddress('C:\\Users\\me\\AppData\\Local\\Temp\\tsmpi-abc', 'r3', 'win32');
    expect(a).toBe('pipe:\\\\.\\pipe\\tsmpi-tsmpi-abc-r3');
    expect(localAddress('C:\\Temp\\tsmpi-xyz', 'r3', 'win32')).not.toBe(a);
    expect(parseAddress(a)).toEqual({ path: '\\\\.\\pipe\\tsmpi-tsmpi-abc-r3' });
  });

  it('knows the Unix socket path limits (macOS is shorter)', () => {
    const long = `unix:/${'x'.repeat(104)}`;
    expect(socketPathFits(long, 'linux')).toBe(true);
    expect(socketPathFits(long, 'darwin')).toBe(false);
    expect(socketPathFits(`unix:/${'x'.repeat(120)}`, 'linux')).toBe(false);
    expect(socketPathFits('pipe:\\\\.\\pipe\\whatever', 'win32')).toBe(true);
  });
});

describe('signals', () => {
  it('SIGTERM then SIGKILL where signals exist; Windows ends processes outright', () => {
    expect(teardownSignal('polite', 'linux')).toBe('SIGTERM');
    expect(teardownSignal('force', 'darwin')).toBe('SIGKILL');
    expect(teardownSignal('polite', 'win32')).toBe('SIGKILL');
    expect(hasUserSignals('win32')).toBe(false);
    expect(hasUserSignals('linux')).toBe(true);
  });
});

describe('contacts: which address a peer uses', () => {
  const c = formatContact('hostA', ['unix:/tmp/j/r1.sock', 'tls:10.0.0.5:4000']);
  it('the local socket on the same host, TLS from elsewhere', () => {
    expect(pickAddress(c, 'hostA')).toBe('unix:/tmp/j/r1.sock');
    expect(pickAddress(c, 'hostB')).toBe('tls:10.0.0.5:4000');
  });
  it('a named pipe counts as local on Windows hosts', () => {
    const w = formatContact('win', ['pipe:\\\\.\\pipe\\tsmpi-j-r1', 'tls:127.0.0.2:5000']);
    expect(pickAddress(w, 'win')).toBe('pipe:\\\\.\\pipe\\tsmpi-j-r1');
  });
  it('a rank with no reachable address is ERR_PEER_LOST; garbage is ERR_PROTOCOL', () => {
    expect(() => pickAddress(formatContact('hostA', ['unix:/x']), 'hostB')).toThrow(expect.objectContaining({ code: 'ERR_PEER_LOST' }));
    expect(() => pickAddress('nonsense', 'hostA')).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
  });
  it('TLS and TCP addresses, IPv6 too', () => {
    expect(parseAddress('tls:[::1]:7470')).toEqual({ host: '::1', port: 7470 });
    expect(parseAddress('tcp:127.0.0.2:0')).toEqual({ host: '127.0.0.2', port: 0 });
    expect(() => parseAddress('tls:host:99999')).toThrow(expect.objectContaining({ code: 'ERR_ARG' }));
  });
});

describe('secret files on Windows (no mode bits): icacls for the current user', () => {
  it('builds the icacls call: inheritance removed, full control for DOMAIN\\user (inherited by a folder\'s contents)', () => {
    const env = { USERDOMAIN: 'WS1', SystemRoot: 'C:\\Windows' };
    const who = windowsAccount(env, 'ann');
    expect(who).toBe('WS1\\ann');
    expect(windowsAccount({}, 'ann')).toBe('ann');
    expect(ownerOnlyCommand('C:\\tsmpid\\host.key', 'file', who, env)).toEqual({
      file: 'C:\\Windows\\System32\\icacls.exe',
      args: ['C:\\tsmpid\\host.key', '/inheritance:r', '/grant:r', 'WS1\\ann:F', '/q'],
    });
    expect(ownerOnlyCommand('C:\\tsmpid', 'dir', who, env).args).toEqual(['C:\\tsmpid', '/inheritance:r', '/grant:r', 'WS1\\ann:(OI)(CI)F', '/q']);
  });

  it('runs it on win32 only, and refuses with ERR_ARG naming the file when it fails', () => {
    const calls: string[][] = [];
    const ok: Runner = (file, args) => void calls.push([file, ...args]);
    expect(restrictToOwner('/srv/host.key', 'file', 'linux', ok)).toBeNull();
    expect(calls).toEqual([]);
    expect(restrictToOwner('C:\\w\\host.key', 'file', 'win32', ok)).toBe(windowsAccount());
    expect(calls[0]![0]).toMatch(/icacls\.exe$/);
    expect(calls[0]![1]).toBe('C:\\w\\host.key');
    const broken: Runner = () => {
      throw new Error('spawn icacls.exe ENOENT');
    };
    const e = throwsCode(() => restrictToOwner('C:\\w\\host.key', 'file', 'win32', broken), 'ERR_ARG', 'C:\\w\\host.key');
    expect(e.message).toMatch(/ENOENT.*other users could read it/);
  });
});
