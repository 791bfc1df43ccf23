/**
 * Entry point of every rank process started by tsmpirun or tsmpid:
 *   node rank-main.js COMPILED_SCRIPT ORIGINAL_SCRIPT [args…]
 * Connects to the launcher before the user's code runs, so that any failure,
 * even an import error, reaches the launcher with its stack.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connectLauncher, rankStats, toLauncher } from './world.js';

const [compiled, original, ...args] = process.argv.slice(2);
if (!compiled || !original) {
  process.stderr.write('rank-main: usage: rank-main COMPILED ORIGINAL [args…]\n');
  process.exit(2);
}
process.setSourceMapsEnabled(true);

let failing = false;
function fail(err: unknown): void {
  if (failing) return;
  failing = true;
  const stack = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : `uncaught value: ${String(err)}`;
  const exit = () => process.exit(1);
  sendStats();
  const tagged = err instanceof Error && err.name === 'TsmpiError' ? (err as unknown as { code?: unknown }).code : undefined;
  const code = typeof tagged === 'string' ? tagged : undefined;
  if (!toLauncher(code ? { t: 'failed', stack, code } : { t: 'failed', stack }, exit)) {
    process.stderr.write(stack + '\n');
    exit();
  }
  setTimeout(exit, 1000).unref();
}
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

// What this rank did, for `tsmpirun --report`: sent once as it ends, however it ends.
let statsSent = false;
function sendStats(): void {
  if (statsSent) return;
  statsSent = true;
  toLauncher({ t: 'stats', stats: rankStats() });
}
process.on('beforeExit', sendStats);
const realExit = process.exit.bind(process);
process.exit = ((code?: number | string | null) => {
  sendStats();
  return realExit(code as number);
}) as typeof process.exit;

const launched = await connectLauncher();
// The launcher may still be compiling the script; it says when to go. The
// control link keeps the process alive meanwhile (it exits if the launcher goes).
if (launched) {
  launched.control.ref(true);
  await launched.run;
  launched.control.ref(false);
}
// argv[1] names the script where it sits on this host (a remote job folder is the cwd).
process.argv = [process.argv[0]!, resolve(original), ...args];
try {
  await import(pathToFileURL(compiled).href);
} catch (e) {
  fail(e);
}
