/**
 * An error thrown by user code in another process: reported there as plain
 * fields, revived here as an error of the same kind (a TypeError stays a
 * TypeError, a TsmpiError keeps its code) with the same message and the remote
 * stack. Shared by tsmpi/dataframe and tsmpi/pool.
 */
import { inspect } from 'node:util';
import { TsmpiError } from '../errors.js';

export interface ErrorReport {
  name: string;
  message: string;
  stack: string;
}

const BUILTIN: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/** Where it was thrown: what an error (or any thrown value) looks like on the wire. */
export function errorReport(e: unknown): ErrorReport {
  if (e instanceof Error || (typeof e === 'object' && e !== null && 'message' in e && 'name' in e)) {
    const err = e as Error;
    const report: ErrorReport = { name: String(err.name), message: String(err.message), stack: String(err.stack ?? `${err.name}: ${err.message}`) };
    if (err instanceof TsmpiError) report.name = `TsmpiError[${err.code}]`;
    return report;
  }
  const text = `the function threw a value that is not an Error: ${inspect(e, { depth: 2, breakLength: Infinity })}`;
  return { name: 'Error', message: text, stack: `Error: ${text}` };
}

/** Here: an error of the same kind, name and message; `stack` is the remote stack, then `trailer`. */
export function reviveReport(r: ErrorReport, trailer: string): Error {
  const coded = /^TsmpiError\[(ERR_[A-Z_]+)\]$/.exec(r.name);
  let e: Error;
  if (coded) e = new TsmpiError(coded[1] as TsmpiError['code'], r.message);
  else {
    const Ctor = BUILTIN[r.name] ?? Error;
    e = new Ctor(r.message);
    if (e.name !== r.name) Object.defineProperty(e, 'name', { value: r.name, configurable: true, writable: true, enumerable: false });
  }
  Object.defineProperty(e, 'remoteStack', { value: r.stack, configurable: true, writable: true, enumerable: true });
  e.stack = `${r.stack}\n${trailer}`;
  return e;
}
