/**
 * An error thrown by the user's function in another process: reported there as
 * plain fields, revived here as an error of the same kind (a TypeError stays a
 * TypeError) with the same message, the remote stack, and where it happened.
 */
import { TsmpiError } from '../../runtime/errors.js';
import { describeUnclonable } from '../../runtime/wire/codec.js';
import { errorReport, reviveReport } from '../../runtime/fn/remote-error.js';
import { ItemError } from './kernel.js';
import type { FailureReport } from './messages.js';

/** Fields a revived error carries besides name, message and stack. */
export interface RemoteErrorFields {
  /** the stack as it was in the worker */
  remoteStack: string;
  /** where: e.g. `row 17 (index 17)` or `group "a"` */
  where: string;
  /** the item's position in the call (row, column, value or group number) */
  position?: number;
  /** its label: the row's index label, the column's name, or the group's key */
  label?: unknown;
  /** applyMap: the column of the value */
  column?: string;
  /** the process that ran it */
  pid?: number;
}

/** In the worker: what an ItemError (or any failure) looks like on the wire. */
export function reportOf(e: unknown): FailureReport {
  if (e instanceof ItemError) {
    const r = reportOf(e.error);
    r.at = e.at;
    if (e.column !== undefined) r.column = e.column;
    if (e.inResult) r.inResult = true;
    return r;
  }
  return { at: -1, ...errorReport(e) };
}

/** In the worker: the result of item `at` cannot be sent back. */
export function unsendable(value: unknown, at: number): ItemError {
  const what = describeUnclonable(value);
  return new ItemError(at, new TsmpiError('ERR_SERIALIZE', `the function's result cannot be sent back: ${what}`), undefined, true);
}

/** At the root: the error to reject the call with. */
export function reviveError(r: FailureReport, what: string, fields: Omit<RemoteErrorFields, 'remoteStack'>): Error {
  const doing = r.inResult ? 'returned an unsendable result' : r.compile ? 'failed to compile' : 'threw';
  const trailer = `    [tsmpi/dataframe] ${what}: the function ${doing} at ${fields.where}${fields.pid ? ` in process ${fields.pid}` : ''}`;
  const e = reviveReport(r, trailer);
  Object.assign(e, fields);
  return e;
}
