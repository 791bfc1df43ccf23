// Pure tests of the matching engine: MPI's posted-receive and unexpected queues,
// wildcards, probes, lost peers and flow control. No sockets, no processes.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Engine, FLOW_LIMIT, type FlowSource, type Message } from '../runtime/engine.js';
import { ANY_SOURCE, ANY_TAG } from '../runtime/constants.js';
import { TsmpiError } from '../runtime/errors.js';

const ME = 0;
const WORLD = [0, 1, 2, 3] as const;

let nextId = 0;
/** A message; `payload` holds its id so tests can tell messages apart. */
function msg(src: number, tag: number, o: { ctx?: number; bytes?: number; from?: FlowSource | null; onMatched?: (() => void) | null } = {}): Message {
  const payload = o.bytes !== undefined ? BIG.subarray(0, o.bytes) : Buffer.from(`m${nextId++}`);
  return { ctx: o.ctx ?? 0, src, tag, flags: 0, enc: 0, elem: 0, payload, onMatched: o.onMatched ?? null, from: o.from ?? null };
}

// One shared block for large payloads: the engine only counts their bytes.
const BIG = Buffer.allocUnsafeSlow(FLOW_LIMIT / 4 + 16);

interface Watched<T> {
  state: 'pending' | 'resolved' | 'rejected';
  value?: T;
  error?: unknown;
}
/** Observe a promise without leaving a rejection unhandled. */
function watch<T>(p: Promise<T>): Watched<T> {
  const w: Watched<T> = { state: 'pending' };
  p.then(
    (v) => Object.assign(w, { state: 'resolved', value: v }),
    (e) => Object.assign(w, { state: 'rejected', error: e }),
  );
  return w;
}
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function expectLost(w: Watched<unknown>): void {
  expect(w.state).toBe('rejected');
  expect(w.error).toBeInstanceOf(TsmpiError);
  expect((w.error as TsmpiError).code).toBe('ERR_PEER_LOST');
}

class FakeFlow implements FlowSource {
  unexpectedBytes = 0;
  pauses = 0;
  resumes = 0;
  paused = false;
  pause(): void {
    this.pauses++;
    this.paused = true;
  }
  resume(): void {
    this.resumes++;
    this.paused = false;
  }
}

describe('matching order', () => {
  it('matches queued messages in arrival order', () => {
    const e = new Engine(ME);
    const ms = [msg(1, 5), msg(1, 5), msg(1, 5)];
    for (const m of ms) e.deliver(m);
    expect(e.tryRecv(0, 1, 5)).toBe(ms[0]);
    expect(e.tryRecv(0, 1, 5)).toBe(ms[1]);
    expect(e.tryRecv(0, 1, 5)).toBe(ms[2]);
    expect(e.tryRecv(0, 1, 5)).toBeNull();
  });

  it('ANY_SOURCE takes the earliest arrival from any source; ANY_TAG the earliest of any tag', () => {
    const e = new Engine(ME);
    const a = msg(2, 9);
    const b = msg(1, 3);
    const c = msg(3, 9);
    for (const m of [a, b, c]) e.deliver(m);
    expect(e.tryRecv(0, ANY_SOURCE, 3)).toBe(b);
    expect(e.tryRecv(0, 3, ANY_TAG)).toBe(c);
    expect(e.tryRecv(0, ANY_SOURCE, ANY_TAG)).toBe(a);
    expect(e.tryRecv(0, ANY_SOURCE, ANY_TAG)).toBeNull();
  });

  it('a specific receive skips non-matching messages and leaves them queued in order', () => {
    const e = new Engine(ME);
    const x1 = msg(1, 1);
    const y = msg(1, 2);
    const x2 = msg(2, 1);
    const x3 = msg(1, 1);
    for (const m of [x1, y, x2, x3]) e.deliver(m);
    expect(e.tryRecv(0, 1, 2)).toBe(y);
    expect(e.tryRecv(0, 1, 1)).toBe(x1);
    expect(e.tryRecv(0, 1, 1)).toBe(x3);
    expect(e.tryRecv(0, 1, 1)).toBeNull();
    expect(e.tryRecv(0, 2, ANY_TAG)).toBe(x2);
  });

  it('matches waiting receives in posting order', async () => {
    const e = new Engine(ME);
    const r1 = watch(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, false));
    const r2 = watch(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, false));
    const r3 = watch(e.wait(0, 1, 4, WORLD, false));
    const a = msg(1, 4);
    const b = msg(2, 4);
    const c = msg(1, 4);
    for (const m of [a, b, c]) e.deliver(m);
    await flush();
    expect(r1.value).toBe(a);
    expect(r2.value).toBe(b);
    expect(r3.value).toBe(c);
    expect(e.queued()).toEqual([]);
  });

  it('a message goes to the first posted receive it matches, not the first posted', async () => {
    const e = new Engine(ME);
    const fromOne = watch(e.wait(0, 1, ANY_TAG, WORLD, false));
    const tagSeven = watch(e.wait(0, ANY_SOURCE, 7, WORLD, false));
    const any = watch(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, false));
    const m1 = msg(2, 7);
    e.deliver(m1);
    await flush();
    expect(fromOne.state).toBe('pending');
    expect(tagSeven.value).toBe(m1);
    expect(any.state).toBe('pending');
    const m2 = msg(3, 0);
    e.deliver(m2);
    await flush();
    expect(fromOne.state).toBe('pending');
    expect(any.value).toBe(m2);
    const m3 = msg(1, 0);
    e.deliver(m3);
    await flush();
    expect(fromOne.value).toBe(m3);
  });

  it('a receive posted after a message arrived takes it at once', async () => {
    const e = new Engine(ME);
    const m = msg(1, 1);
    e.deliver(m);
    await expect(e.wait(0, 1, 1, WORLD, false)).resolves.toBe(m);
    expect(e.queued()).toEqual([]);
  });
});

describe('contexts', () => {
  it('never mix', async () => {
    const e = new Engine(ME);
    const inOne = msg(1, 0, { ctx: 1 });
    e.deliver(inOne);
    expect(e.tryRecv(0, ANY_SOURCE, ANY_TAG)).toBeNull();
    expect(e.tryProbe(2, 1, 0)).toBeNull();
    const w = watch(e.wait(2, ANY_SOURCE, ANY_TAG, WORLD, false));
    const inThree = msg(1, 0, { ctx: 3 });
    e.deliver(inThree);
    await flush();
    expect(w.state).toBe('pending');
    const inTwo = msg(1, 0, { ctx: 2 });
    e.deliver(inTwo);
    await flush();
    expect(w.value).toBe(inTwo);
    expect(e.tryRecv(1, ANY_SOURCE, ANY_TAG)).toBe(inOne);
    expect(e.tryRecv(3, 1, 0)).toBe(inThree);
  });

  it('context ids up to 2^32-1 work', () => {
    const e = new Engine(ME);
    const m = msg(1, 0, { ctx: 2 ** 32 - 1 });
    e.deliver(m);
    expect(e.tryRecv(0, 1, 0)).toBeNull();
    expect(e.tryRecv(2 ** 32 - 1, 1, 0)).toBe(m);
  });
});

describe('probes', () => {
  it('tryProbe looks without taking; tryRecv takes', () => {
    const e = new Engine(ME);
    expect(e.tryProbe(0, ANY_SOURCE, ANY_TAG)).toBeNull();
    expect(e.tryRecv(0, ANY_SOURCE, ANY_TAG)).toBeNull();
    const m = msg(1, 2);
    e.deliver(m);
    expect(e.tryProbe(0, 1, 2)).toBe(m);
    expect(e.tryProbe(0, ANY_SOURCE, ANY_TAG)).toBe(m);
    expect(e.tryProbe(0, 1, 3)).toBeNull();
    expect(e.queued()).toHaveLength(1);
    expect(e.tryRecv(0, 1, 2)).toBe(m);
    expect(e.tryProbe(0, 1, 2)).toBeNull();
  });

  it('a probe wait on a queued message resolves without consuming it', async () => {
    const e = new Engine(ME);
    const m = msg(1, 2);
    e.deliver(m);
    await expect(e.wait(0, 1, 2, WORLD, true)).resolves.toBe(m);
    await expect(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, true)).resolves.toBe(m);
    expect(e.tryRecv(0, 1, 2)).toBe(m);
  });

  it('a waiting probe sees the message, which stays queued for a receive', async () => {
    const e = new Engine(ME);
    const p1 = watch(e.wait(0, 1, ANY_TAG, WORLD, true));
    const p2 = watch(e.wait(0, ANY_SOURCE, 5, WORLD, true));
    const m = msg(1, 5);
    e.deliver(m);
    await flush();
    expect(p1.value).toBe(m);
    expect(p2.value).toBe(m);
    expect(e.queued()).toEqual([{ comm: 0, source: 1, tag: 5, bytes: m.payload.length }]);
    expect(e.tryRecv(0, 1, 5)).toBe(m);
  });

  it('a waiting probe posted before a waiting receive both see the message; the receive takes it', async () => {
    const e = new Engine(ME);
    const p = watch(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, true));
    const r = watch(e.wait(0, 1, 1, WORLD, false));
    const later = watch(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, true));
    const m = msg(1, 1);
    e.deliver(m);
    await flush();
    expect(p.value).toBe(m);
    expect(r.value).toBe(m);
    // a probe posted after the receive does not see a message the receive took
    expect(later.state).toBe('pending');
    expect(e.queued()).toEqual([]);
  });
});

describe('onMatched (ssend acknowledgement)', () => {
  it('runs exactly once when a queued message is taken later by tryRecv', () => {
    const e = new Engine(ME);
    let acks = 0;
    const m = msg(1, 0, { onMatched: () => acks++ });
    e.deliver(m);
    expect(acks).toBe(0);
    e.tryProbe(0, 1, 0);
    expect(acks).toBe(0);
    expect(e.tryRecv(0, 1, 0)).toBe(m);
    expect(acks).toBe(1);
    expect(e.tryRecv(0, 1, 0)).toBeNull();
    expect(acks).toBe(1);
  });

  it('runs exactly once when a queued message is taken by a receive wait, not by a probe wait', async () => {
    const e = new Engine(ME);
    let acks = 0;
    e.deliver(msg(1, 0, { onMatched: () => acks++ }));
    await e.wait(0, 1, 0, WORLD, true);
    expect(acks).toBe(0);
    await e.wait(0, 1, 0, WORLD, false);
    expect(acks).toBe(1);
  });

  it('runs exactly once, synchronously, when a message is delivered to a waiting receive', async () => {
    const e = new Engine(ME);
    let acks = 0;
    const probe = watch(e.wait(0, 1, 0, WORLD, true));
    const r = watch(e.wait(0, 1, 0, WORLD, false));
    const m = msg(1, 0, { onMatched: () => acks++ });
    e.deliver(m);
    expect(acks).toBe(1);
    await flush();
    expect(probe.value).toBe(m);
    expect(r.value).toBe(m);
    expect(acks).toBe(1);
  });

  it('does not run for a message only a probe saw', async () => {
    const e = new Engine(ME);
    let acks = 0;
    const probe = watch(e.wait(0, 1, 0, WORLD, true));
    e.deliver(msg(1, 0, { onMatched: () => acks++ }));
    await flush();
    expect(probe.state).toBe('resolved');
    expect(acks).toBe(0);
    e.tryRecv(0, ANY_SOURCE, ANY_TAG);
    expect(acks).toBe(1);
  });
});

describe('lost peers', () => {
  it('peerGone rejects waits for that source with ERR_PEER_LOST, receives and probes alike', async () => {
    const e = new Engine(ME);
    const r = watch(e.wait(0, 1, ANY_TAG, WORLD, false));
    const p = watch(e.wait(5, 1, 3, WORLD, true));
    const other = watch(e.wait(0, 2, ANY_TAG, WORLD, false));
    const any = watch(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, false));
    e.peerGone(1, 'its process ended');
    await flush();
    expectLost(r);
    expectLost(p);
    expect(other.state).toBe('pending');
    expect(any.state).toBe('pending');
    expect(e.isGone(1)).toBe('its process ended');
    expect(e.isGone(2)).toBeUndefined();
    // the engine still serves the others
    const m = msg(2, 0);
    e.deliver(m);
    await flush();
    expect(other.value).toBe(m);
  });

  it('ANY_SOURCE waits reject only when every other member is gone', async () => {
    const e = new Engine(ME);
    const any = watch(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, false));
    const anyProbe = watch(e.wait(0, ANY_SOURCE, 4, WORLD, true));
    const sub = watch(e.wait(7, ANY_SOURCE, ANY_TAG, [0, 2], false));
    e.peerGone(1, 'x');
    e.peerGone(3, 'x');
    await flush();
    expect(any.state).toBe('pending');
    expect(anyProbe.state).toBe('pending');
    expect(sub.state).toBe('pending');
    e.peerGone(2, 'x');
    await flush();
    expectLost(any);
    expectLost(anyProbe);
    expectLost(sub);
  });

  it('a communicator that does not contain the lost rank is not affected', async () => {
    const e = new Engine(ME);
    const sub = watch(e.wait(7, ANY_SOURCE, ANY_TAG, [0, 2], false));
    e.peerGone(1, 'x');
    e.peerGone(3, 'x');
    await flush();
    expect(sub.state).toBe('pending');
  });

  it('a singleton ANY_SOURCE wait is never lost (self-sends can still come)', async () => {
    const e = new Engine(ME);
    const w = watch(e.wait(0, ANY_SOURCE, ANY_TAG, [0], false));
    e.peerGone(1, 'x');
    await flush();
    expect(w.state).toBe('pending');
    const m = msg(ME, 0);
    e.deliver(m);
    await flush();
    expect(w.value).toBe(m);
  });

  it('later waits on a gone source reject at once, after its already-queued messages', async () => {
    const e = new Engine(ME);
    const a = msg(1, 0);
    const b = msg(1, 1);
    e.deliver(a);
    e.deliver(b);
    e.peerGone(1, 'its process ended');
    await expect(e.wait(0, 1, ANY_TAG, WORLD, true)).resolves.toBe(a);
    await expect(e.wait(0, 1, 1, WORLD, false)).resolves.toBe(b);
    await expect(e.wait(0, 1, ANY_TAG, WORLD, false)).resolves.toBe(a);
    await expect(e.wait(0, 1, ANY_TAG, WORLD, false)).rejects.toMatchObject({ code: 'ERR_PEER_LOST' });
    await expect(e.wait(0, 1, 0, WORLD, true)).rejects.toMatchObject({ code: 'ERR_PEER_LOST' });
    // other sources are still fine
    const c = watch(e.wait(0, 2, 0, WORLD, false));
    await flush();
    expect(c.state).toBe('pending');
  });

  it('ANY_SOURCE waits after everyone is gone still get queued messages first', async () => {
    const e = new Engine(ME);
    const a = msg(2, 0);
    e.deliver(a);
    for (const r of [1, 2, 3]) e.peerGone(r, 'x');
    await expect(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, false)).resolves.toBe(a);
    await expect(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, false)).rejects.toMatchObject({ code: 'ERR_PEER_LOST' });
  });

  it('peerGone is idempotent and keeps the first reason', async () => {
    const e = new Engine(ME);
    e.peerGone(1, 'first');
    e.peerGone(1, 'second');
    expect(e.isGone(1)).toBe('first');
    const err = await e.wait(0, 1, 0, WORLD, false).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(TsmpiError);
    expect((err as TsmpiError).code).toBe('ERR_PEER_LOST');
  });
});

describe('flow control', () => {
  const Q = FLOW_LIMIT / 4;

  it('pauses a source once its unexpected bytes exceed FLOW_LIMIT, and only once', () => {
    const e = new Engine(ME);
    const f = new FakeFlow();
    for (let i = 0; i < 4; i++) e.deliver(msg(1, i, { bytes: Q, from: f }));
    expect(f.unexpectedBytes).toBe(FLOW_LIMIT);
    expect(f.pauses).toBe(0); // at the limit, not over it
    e.deliver(msg(1, 9, { bytes: 1, from: f }));
    expect(f.pauses).toBe(1);
    e.deliver(msg(1, 9, { bytes: 1, from: f }));
    expect(f.pauses).toBe(1);
    expect(f.resumes).toBe(0);
  });

  it('resumes it once its unexpected bytes drop below half', () => {
    const e = new Engine(ME);
    const f = new FakeFlow();
    for (let i = 0; i < 4; i++) e.deliver(msg(1, i, { bytes: Q, from: f }));
    e.deliver(msg(1, 4, { bytes: 16, from: f }));
    expect(f.paused).toBe(true);
    e.tryRecv(0, 1, 0); // 3Q + 16 left
    e.tryRecv(0, 1, 4); // 3Q left
    e.tryRecv(0, 1, 1); // 2Q = exactly half: not below
    expect(f.unexpectedBytes).toBe(FLOW_LIMIT / 2);
    expect(f.resumes).toBe(0);
    e.tryRecv(0, 1, 2);
    expect(f.unexpectedBytes).toBe(Q);
    expect(f.resumes).toBe(1);
    expect(f.paused).toBe(false);
    e.tryRecv(0, 1, 3);
    expect(f.unexpectedBytes).toBe(0);
    expect(f.resumes).toBe(1);
  });

  it('does not count messages delivered straight to a waiting receive', async () => {
    const e = new Engine(ME);
    const f = new FakeFlow();
    const waits = [0, 1, 2, 3, 4].map((i) => watch(e.wait(0, 1, i, WORLD, false)));
    for (let i = 0; i < 5; i++) e.deliver(msg(1, i, { bytes: Q, from: f }));
    await flush();
    expect(waits.every((w) => w.state === 'resolved')).toBe(true);
    expect(f.unexpectedBytes).toBe(0);
    expect(f.pauses).toBe(0);
  });

  it('resumes every paused source when a receive has to wait', async () => {
    const e = new Engine(ME);
    const f = new FakeFlow();
    const g = new FakeFlow();
    for (let i = 0; i < 5; i++) e.deliver(msg(1, i, { bytes: Q, from: f }));
    for (let i = 0; i < 5; i++) e.deliver(msg(2, i, { bytes: Q, from: g }));
    expect([f.pauses, g.pauses]).toEqual([1, 1]);
    // satisfied at once: nothing resumes
    await e.wait(0, 1, 0, WORLD, false);
    expect([f.resumes, g.resumes]).toEqual([0, 0]);
    // must wait (for a message that may sit behind a paused link): all resume
    const w = watch(e.wait(0, 3, 0, WORLD, false));
    expect([f.resumes, g.resumes]).toEqual([1, 1]);
    expect([f.paused, g.paused]).toEqual([false, false]);
    // the next unexpected message from a source still over the limit pauses it again
    e.deliver(msg(2, 9, { bytes: 1, from: g }));
    expect(g.pauses).toBe(2);
    expect(f.pauses).toBe(1);
    // and draining it below half resumes it again, once
    for (let i = 0; i < 4; i++) e.tryRecv(0, 2, i);
    expect(g.resumes).toBe(2);
    // f was resumed by the wait; draining it does not resume it twice
    for (let i = 1; i < 5; i++) e.tryRecv(0, 1, i);
    expect(f.resumes).toBe(1);
    expect(f.unexpectedBytes).toBe(0);
    e.deliver(msg(3, 0));
    await flush();
    expect(w.state).toBe('resolved');
  });

  it('keeps sources apart: one paused link does not pause another', () => {
    const e = new Engine(ME);
    const f = new FakeFlow();
    const g = new FakeFlow();
    for (let i = 0; i < 5; i++) e.deliver(msg(1, 0, { bytes: Q, from: f }));
    e.deliver(msg(2, 0, { bytes: Q, from: g }));
    expect(f.pauses).toBe(1);
    expect(g.pauses).toBe(0);
    expect(g.unexpectedBytes).toBe(Q);
  });
});

describe('failAll and queued', () => {
  it('failAll rejects every wait on every context with the given error', async () => {
    const e = new Engine(ME);
    const ws = [
      watch(e.wait(0, 1, 0, WORLD, false)),
      watch(e.wait(0, ANY_SOURCE, ANY_TAG, WORLD, true)),
      watch(e.wait(9, 2, ANY_TAG, WORLD, false)),
    ];
    const err = new TsmpiError('ERR_ABORTED', 'rank 2 called abort');
    e.failAll(err);
    await flush();
    for (const w of ws) {
      expect(w.state).toBe('rejected');
      expect(w.error).toBe(err);
    }
    // nothing is left waiting: a later message is queued, not given to a failed wait
    const m = msg(1, 0);
    e.deliver(m);
    expect(e.queued()).toHaveLength(1);
  });

  it('queued lists the unmatched messages, per context in arrival order', async () => {
    const e = new Engine(ME);
    expect(e.queued()).toEqual([]);
    const w = watch(e.wait(0, 3, 3, WORLD, false));
    e.deliver(msg(1, 7, { bytes: 10 }));
    e.deliver(msg(2, 8, { bytes: 20, ctx: 4 }));
    e.deliver(msg(3, 3, { bytes: 30 })); // goes to the waiting receive
    e.deliver(msg(2, 9, { bytes: 0 }));
    await flush();
    expect(w.state).toBe('resolved');
    const q = e.queued();
    expect(q).toHaveLength(3);
    expect(q).toContainEqual({ comm: 4, source: 2, tag: 8, bytes: 20 });
    expect(q.filter((x) => x.comm === 0)).toEqual([
      { comm: 0, source: 1, tag: 7, bytes: 10 },
      { comm: 0, source: 2, tag: 9, bytes: 0 },
    ]);
    e.tryRecv(0, 1, 7);
    expect(e.queued()).toHaveLength(2);
  });
});

describe('invariants under random traffic (property)', () => {
  type Op =
    | { k: 'deliver'; ctx: number; src: number; tag: number }
    | { k: 'recv' | 'probe' | 'tryRecv' | 'tryProbe'; ctx: number; src: number; tag: number };

  const SRC = [1, 2, 3];
  const TAGS = [0, 1, 2];
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ k: fc.constant('deliver' as const), ctx: fc.constantFrom(0, 1), src: fc.constantFrom(...SRC), tag: fc.constantFrom(...TAGS) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        k: fc.constantFrom('recv' as const, 'probe' as const, 'tryRecv' as const, 'tryProbe' as const),
        ctx: fc.constantFrom(0, 1),
        src: fc.constantFrom(ANY_SOURCE, ...SRC),
        tag: fc.constantFrom(ANY_TAG, ...TAGS),
      }),
    },
  );

  it('non-overtaking, each message matched once, nothing stuck that could match', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const e = new Engine(ME);
        const matched: number[] = [];
        const info = new Map<number, { ctx: number; src: number; tag: number }>();
        const pending: { ctx: number; src: number; tag: number; w: Watched<Message>; probe: boolean }[] = [];
        const check = (pat: { ctx: number; src: number; tag: number }, m: Message | null | undefined): void => {
          if (!m) return;
          expect(m.ctx).toBe(pat.ctx);
          if (pat.src !== ANY_SOURCE) expect(m.src).toBe(pat.src);
          if (pat.tag !== ANY_TAG) expect(m.tag).toBe(pat.tag);
        };
        let id = 0;
        for (const o of ops) {
          if (o.k === 'deliver') {
            const n = id++;
            info.set(n, o);
            const m = msg(o.src, o.tag, { ctx: o.ctx, onMatched: () => matched.push(n) });
            m.payload = Buffer.from(String(n));
            e.deliver(m);
          } else if (o.k === 'recv' || o.k === 'probe') {
            pending.push({ ...o, probe: o.k === 'probe', w: watch(e.wait(o.ctx, o.src, o.tag, WORLD, o.k === 'probe')) });
          } else if (o.k === 'tryRecv') {
            check(o, e.tryRecv(o.ctx, o.src, o.tag));
          } else {
            check(o, e.tryProbe(o.ctx, o.src, o.tag));
          }
        }
        await flush();
        // each message acknowledged at most once
        expect(new Set(matched).size).toBe(matched.length);
        // non-overtaking: per (ctx, src, tag), matched in sending order
        const last = new Map<string, number>();
        for (const n of matched) {
          const { ctx, src, tag } = info.get(n)!;
          const key = `${ctx}/${src}/${tag}`;
          expect(n).toBeGreaterThan(last.get(key) ?? -1);
          last.set(key, n);
        }
        // every completed wait got a message that fits it
        for (const p of pending) if (p.w.state === 'resolved') check(p, p.w.value);
        // received or still queued: every message is accounted for exactly once
        const queued = e.queued();
        expect(queued.length + matched.length).toBe(id);
        // nothing is stuck: no pending receive or probe matches a queued message
        for (const p of pending) {
          if (p.w.state !== 'pending') continue;
          for (const q of queued) {
            const fits = q.comm === p.ctx && (p.src === ANY_SOURCE || p.src === q.source) && (p.tag === ANY_TAG || p.tag === q.tag);
            expect(fits).toBe(false);
          }
        }
        e.failAll(new TsmpiError('ERR_ABORTED', 'end of case'));
      }),
      { numRuns: 300 },
    );
  });
});
