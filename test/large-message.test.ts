import { describe, expect, it } from 'vitest';
import { fixture, tsmpirun } from './harness.js';

describe('messages beyond 2 GiB', () => {
  it('a 2 GiB + 4 KiB Uint8Array arrives whole and intact', async () => {
    const r = await tsmpirun(['-n', '2', fixture('huge.ts')], { timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`sent ${2 ** 31 + 4099} bytes: intact`);
  });
});
