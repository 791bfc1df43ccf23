/**
 * The few places where Linux, macOS and Windows differ, as pure functions of the
 * platform so each can be tested off its platform.
 */
import { posix, win32 } from 'node:path';

export type Platform = 'linux' | 'darwin' | 'win32' | string;

/**
 * The address of a local endpoint named `name` for a job folder `dir`: a Unix
 * socket inside the folder, or a named pipe on Windows (which has no Unix
 * socket files; pipe names live in their own namespace, so the folder's name
 * keeps them unique).
 */
export function localAddress(dir: string, name: string, platform: Platform = process.platform): string {
  if (platform === 'win32') return `pipe:\\\\.\\pipe\\tsmpi-${win32.basename(dir)}-${name}`;
  return `unix:${posix.join(dir, `${name}.sock`)}`;
}

/** Unix socket paths are short (104 bytes on macOS, 108 on Linux): fail early with a clear reason. */
export function socketPathFits(address: string, platform: Platform = process.platform): boolean {
  if (!address.startsWith('unix:')) return true;
  const limit = platform === 'darwin' ? 103 : 107;
  return Buffer.byteLength(address.slice(5)) <= limit;
}

/**
 * The signal to send for a teardown step. Windows has no signals: Node ends the
 * process whatever is asked (TerminateProcess), so every step maps to SIGKILL's
 * meaning there, and SIGUSR1 reports are not available.
 */
export function teardownSignal(step: 'polite' | 'force', platform: Platform = process.platform): NodeJS.Signals {
  if (platform === 'win32') return 'SIGKILL';
  return step === 'polite' ? 'SIGTERM' : 'SIGKILL';
}

export function hasUserSignals(platform: Platform = process.platform): boolean {
  return platform !== 'win32';
}
