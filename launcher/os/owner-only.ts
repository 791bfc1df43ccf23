/**
 * Keeping a secret file to its owner. On Linux and macOS the mode bits do it
 * (files are written 0600 in 0700 folders). Windows keeps no mode bits: a
 * file there is readable by whoever the folder's inherited ACL lets in, often
 * every local user. So on Windows tsmpid restricts its workdir (inherited by
 * the job folders) and its host key with `icacls` to the current user, and
 * refuses to start when it cannot.
 */
import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { win32 } from 'node:path';
import { TsmpiError } from '../../runtime/errors.js';
import type { Platform } from './platform.js';

/** The current user as icacls names them: DOMAIN\name (or just name). */
export function windowsAccount(env: NodeJS.ProcessEnv = process.env, name: string = userInfo().username): string {
  return env.USERDOMAIN ? `${env.USERDOMAIN}\\${name}` : name;
}

/**
 * icacls' program and arguments that leave `path` to `account` alone: the
 * inherited entries removed, full control for the account (for a folder, also
 * inherited by everything created in it).
 */
export function ownerOnlyCommand(path: string, kind: 'file' | 'dir', account: string, env: NodeJS.ProcessEnv = process.env): { file: string; args: string[] } {
  const grant = kind === 'dir' ? `${account}:(OI)(CI)F` : `${account}:F`;
  return { file: win32.join(env.SystemRoot ?? 'C:\\Windows', 'System32', 'icacls.exe'), args: [path, '/inheritance:r', '/grant:r', grant, '/q'] };
}

export type Runner = (file: string, args: string[]) => void;
const runIcacls: Runner = (file, args) => {
  execFileSync(file, args, { stdio: 'ignore', windowsHide: true, timeout: 15_000 });
};

/**
 * Restrict `path` to the current user (Windows: returns the account), or
 * nothing (elsewhere, returns null: the mode it was made with does). ERR_ARG
 * naming the path when it cannot be done.
 */
export function restrictToOwner(path: string, kind: 'file' | 'dir', platform: Platform = process.platform, run: Runner = runIcacls): string | null {
  if (platform !== 'win32') return null;
  const account = windowsAccount();
  const { file, args } = ownerOnlyCommand(path, kind, account);
  try {
    run(file, args);
  } catch (e) {
    throw new TsmpiError(
      'ERR_ARG',
      `cannot restrict ${path} to ${account} (${file} ${args.join(' ')}: ${(e as Error).message}); tsmpid does not keep its host key where other users could read it`,
      { cause: e },
    );
  }
  return account;
}
