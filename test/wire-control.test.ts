// Pure tests of the typed control messages: valid ones pass untouched, anything
// missing, mistyped or unknown is ERR_PROTOCOL.
import { describe, expect, it } from 'vitest';
import { CONTROL_VERSION, parseLauncherMessage, parseRankMessage } from '../runtime/wire/control.js';
import { decodeJson, encodeJson } from '../runtime/wire/codec.js';
import { throwsCode } from './expect-code.js';


/** Through JSON, as on the wire. */
const wire = (v: unknown): unknown => decodeJson(encodeJson(v));

const validRank: unknown[] = [
  { t: 'hello', v: CONTROL_VERSION, rank: 0, pid: 1234, secret: 'abc' },
  { t: 'listening', address: '/tmp/tsmpi-1/r0.sock' },
  { t: 'failed', stack: 'Error: boom\n    at x' },
  { t: 'abort', code: 3 },
  { t: 'partial', value: { rows: [1, 2] }, time: 1.5 },
  { t: 'partial', value: null, time: 0 },
  { t: 'partial', time: 0 }, // an undefined value does not survive JSON
  { t: 'progress', done: 3, total: 10 },
  { t: 'blocked', ops: [{ op: 'recv', comm: 0, seconds: 2 }], queued: [{ comm: 0, source: 1, tag: 2, bytes: 8 }] },
  { t: 'blocked', ops: [], queued: [] },
  { t: 'sampled', ops: [{ op: 'recv(source=1, tag=7)', comm: 0, seconds: 4.9 }], traffic: { messagesSent: 1, bytesSent: 8, messagesReceived: 0, bytesReceived: 0 } },
];

const validLauncher: unknown[] = [
  { t: 'table', addresses: ['a', null, 'c'] },
  { t: 'table', addresses: [] },
  { t: 'gone', rank: 2 },
  { t: 'dump' },
  { t: 'sample' },
  { t: 'refused', code: 'ERR_AUTH', message: 'no' },
];

describe('valid messages pass', () => {
  for (const m of validRank) {
    it(`rank → launcher ${JSON.stringify(m)}`, () => {
      expect(parseRankMessage(m)).toBe(m);
      expect(parseRankMessage(wire(m))).toEqual(m);
    });
  }
  for (const m of validLauncher) {
    it(`launcher → rank ${JSON.stringify(m)}`, () => {
      expect(parseLauncherMessage(m)).toBe(m);
      expect(parseLauncherMessage(wire(m))).toEqual(m);
    });
  }

  it('extra fields are tolerated', () => {
    expect(parseLauncherMessage({ t: 'dump', extra: 1 })).toEqual({ t: 'dump', extra: 1 });
  });
});

describe('ERR_PROTOCOL for anything else', () => {
  const notMessages: [string, unknown][] = [
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['a string', 'hello'],
    ['an array', [{ t: 'dump' }]],
    ['an object without t', { rank: 1 }],
    ['t not a string', { t: 1 }],
    ['t null', { t: null }],
    ['unknown type', { t: 'bogus' }],
    ['inherited name __proto__', { t: '__proto__' }],
    ['inherited name toString', { t: 'toString' }],
    ['inherited name constructor', { t: 'constructor' }],
    ['empty type', { t: '' }],
  ];
  for (const [name, v] of notMessages) {
    it(`${name} (both directions)`, () => {
      throwsCode(() => parseRankMessage(v), 'ERR_PROTOCOL');
      throwsCode(() => parseLauncherMessage(v), 'ERR_PROTOCOL');
    });
  }

  it("a type of the other direction is unknown", () => {
    throwsCode(() => parseRankMessage({ t: 'dump' }), 'ERR_PROTOCOL');
    throwsCode(() => parseLauncherMessage({ t: 'abort', code: 1 }), 'ERR_PROTOCOL');
  });

  const badRank: [string, unknown][] = [
    ['sampled without traffic', { t: 'sampled', ops: [] }],
    ['sampled with ops not an array', { t: 'sampled', ops: {}, traffic: {} }],
    ['hello without secret', { t: 'hello', v: 1, rank: 0, pid: 1 }],
    ['hello with a string rank', { t: 'hello', v: 1, rank: '0', pid: 1, secret: 's' }],
    ['hello with a null version', { t: 'hello', v: null, rank: 0, pid: 1, secret: 's' }],
    ['hello with a numeric secret', { t: 'hello', v: 1, rank: 0, pid: 1, secret: 7 }],
    ['listening without address', { t: 'listening' }],
    ['listening with a null address', { t: 'listening', address: null }],
    ['failed with an object stack', { t: 'failed', stack: { s: 1 } }],
    ['abort with a string code', { t: 'abort', code: '1' }],
    ['partial without time', { t: 'partial', value: 1 }],
    ['progress without total', { t: 'progress', done: 1 }],
    ['progress with a bool done', { t: 'progress', done: true, total: 2 }],
    ['blocked without queued', { t: 'blocked', ops: [] }],
    ['blocked with null ops', { t: 'blocked', ops: null, queued: [] }],
    ['blocked with string ops', { t: 'blocked', ops: 'recv', queued: [] }],
    ['blocked with an object for ops', { t: 'blocked', ops: {}, queued: [] }],
    ['blocked with an object for queued', { t: 'blocked', ops: [], queued: { length: 0 } }],
  ];
  for (const [name, v] of badRank) {
    it(`rank → launcher: ${name}`, () => {
      throwsCode(() => parseRankMessage(v), 'ERR_PROTOCOL');
      throwsCode(() => parseRankMessage(wire(v)), 'ERR_PROTOCOL');
    });
  }

  const badLauncher: [string, unknown][] = [
    ['table without addresses', { t: 'table' }],
    ['table with null addresses', { t: 'table', addresses: null }],
    ['table with a string for addresses', { t: 'table', addresses: 'a,b' }],
    ['table with an object for addresses', { t: 'table', addresses: { 0: 'a', length: 1 } }],
    ['gone without rank', { t: 'gone' }],
    ['gone with a string rank', { t: 'gone', rank: '1' }],
    ['refused without message', { t: 'refused', code: 'ERR_AUTH' }],
    ['refused with a numeric code', { t: 'refused', code: 1, message: 'm' }],
  ];
  for (const [name, v] of badLauncher) {
    it(`launcher → rank: ${name}`, () => {
      throwsCode(() => parseLauncherMessage(v), 'ERR_PROTOCOL');
      throwsCode(() => parseLauncherMessage(wire(v)), 'ERR_PROTOCOL');
    });
  }
});
