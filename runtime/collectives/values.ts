/**
 * Values inside a collective call, shared by the message algorithms
 * (collectives.ts) and the shared-memory ones (shm.ts): a failure
 * that travels in place of a value, and the steps that may produce one.
 */
import { TsmpiError } from '../errors.js';
import type { Op } from '../op.js';
import { decodeValue, encodeValue, flatten, type Encoded } from '../wire/codec.js';

/** A failure travelling through a collective in place of a value. */
export class CollError {
  constructor(readonly err: TsmpiError) {}
}
export type Maybe<T> = T | CollError;

export function asTsmpi(e: unknown): TsmpiError {
  return e instanceof TsmpiError ? e : new TsmpiError('ERR_ARG', String((e as Error)?.message ?? e), { cause: e });
}

export function encodeOr(v: unknown): Maybe<Encoded> {
  try {
    return encodeValue(v);
  } catch (e) {
    return new CollError(asTsmpi(e));
  }
}

export function decodeItem(it: Encoded): unknown {
  return decodeValue(it.enc, it.elem, it.parts.length === 1 ? (it.parts[0] as Buffer) : flatten(it));
}

export function unwrap<T>(v: Maybe<T>): T {
  if (v instanceof CollError) throw v.err;
  return v;
}

/** The root's own item must be a copy, never the caller's object. */
export function flatItem(e: Encoded): Encoded {
  return { ...e, parts: [flatten(e)] };
}

/** `a op b`, or the first error among them. `b` is owned (freshly received). */
export function combine(op: Op, a: Maybe<unknown>, b: Maybe<unknown>, into: 'a' | 'b' | null): Maybe<unknown> {
  if (a instanceof CollError) return a;
  if (b instanceof CollError) return b;
  try {
    return op.combine(a, b, into);
  } catch (e) {
    return new CollError(asTsmpi(e));
  }
}

export function checked(op: Op, data: unknown): Maybe<unknown> {
  try {
    op.check(data);
    return data;
  } catch (e) {
    return new CollError(asTsmpi(e));
  }
}
