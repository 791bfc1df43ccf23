/**
 * A bundle: several encoded values in one payload, so collectives can forward
 * other ranks' values without decoding and re-encoding them. Pure.
 *
 *   u32 count, u32 zero, then per item 16 bytes: u8 enc, u8 elem, 6 zero bytes,
 *   u64 length; then the items' bytes back to back.
 */
import { TsmpiError } from '../errors.js';
import type { Encoded } from './codec.js';

export const BUNDLE_ENCODING = 3;
const ITEM_HEADER = 16;

/** Pack items without copying their bytes (the parts reference them). */
export function packBundle(items: readonly Encoded[]): Encoded {
  const head = Buffer.alloc(8 + ITEM_HEADER * items.length);
  head.writeUInt32LE(items.length, 0);
  const parts: Uint8Array[] = [head];
  let length = head.length;
  items.forEach((it, i) => {
    const o = 8 + ITEM_HEADER * i;
    head[o] = it.enc;
    head[o + 1] = it.elem;
    const lo = it.length % 0x100000000;
    head.writeUInt32LE(lo, o + 8);
    head.writeUInt32LE((it.length - lo) / 0x100000000, o + 12);
    parts.push(...it.parts);
    length += it.length;
  });
  return { enc: BUNDLE_ENCODING, elem: 0, parts, length, aliased: true };
}

/** Split a bundle payload into its items (views of `payload`). */
export function unpackBundle(payload: Buffer): Encoded[] {
  const bad = (why: string) => new TsmpiError('ERR_PROTOCOL', `malformed bundle: ${why}`);
  if (payload.length < 8) throw bad('too short');
  const count = payload.readUInt32LE(0);
  let off = 8 + ITEM_HEADER * count;
  if (off > payload.length) throw bad(`${count} items do not fit in ${payload.length} bytes`);
  const items: Encoded[] = [];
  for (let i = 0; i < count; i++) {
    const o = 8 + ITEM_HEADER * i;
    const len = payload.readUInt32LE(o + 12) * 0x100000000 + payload.readUInt32LE(o + 8);
    if (off + len > payload.length) throw bad(`item ${i} runs past the end`);
    items.push({ enc: payload[o]!, elem: payload[o + 1]!, parts: [payload.subarray(off, off + len)], length: len, aliased: true });
    off += len;
  }
  if (off !== payload.length) throw bad('trailing bytes');
  return items;
}
