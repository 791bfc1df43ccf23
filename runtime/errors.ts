/**
 * The one error class of tsmpi. Every failure carries a stable `code`; tests and
 * users match on the code, never on the message text.
 */
export const ERROR_CODES = [
  'ERR_RANK',
  'ERR_ROOT',
  'ERR_TAG',
  'ERR_ARG',
  'ERR_OP',
  'ERR_SERIALIZE',
  'ERR_PEER_LOST',
  'ERR_TIMEOUT',
  'ERR_ABORTED',
  'ERR_AUTH',
  'ERR_PROTOCOL',
  /** a cancelled task-pool task (tsmpi/pool) */
  'ERR_CANCELLED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class TsmpiError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TsmpiError';
    this.code = code;
  }
}

export function isTsmpiError(e: unknown, code?: ErrorCode): e is TsmpiError {
  return e instanceof TsmpiError && (code === undefined || e.code === code);
}

/** Revive an error that crossed a process boundary as `{ code, message }`. */
export function errorFromWire(code: string, message: string): TsmpiError {
  const known = (ERROR_CODES as readonly string[]).includes(code) ? (code as ErrorCode) : 'ERR_PROTOCOL';
  return new TsmpiError(known, message);
}
