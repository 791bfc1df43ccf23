// The value codec's fast paths: encodeValue + decodeValue round trips of the
// README's values. One implementation per process, so that one's JIT state
// (inlining, call-site feedback) never shapes another's numbers; run.js starts
// them alternately, round by round:
//   new  this build's codec (dist/runtime/wire/codec.js)
//   old  the codec as it was before identity tracking (bench/codec-before.mjs;
//        the README's 0.3 µs / 2 µs figures came from it)
//   v8   node:v8 serialize + deserialize (the anchor)
//
//   node bench/codec.mjs new|old|v8 '{"reps":7,"ms":20}'   → BENCH lines
import { serialize, deserialize } from 'node:v8';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const impl = process.argv[2];
const p = { reps: 7, ms: 20, ...JSON.parse(process.argv[3] ?? '{}') };

async function roundTrip() {
  if (impl === 'v8') return (v) => deserialize(serialize(v));
  const m = impl === 'new' ? await import(pathToFileURL(join(ROOT, 'dist', 'runtime', 'wire', 'codec.js')).href) : impl === 'old' ? await import('./codec-before.mjs') : null;
  if (!m) throw new Error(`usage: node bench/codec.mjs new|old|v8 [params]`);
  return (v) => {
    const e = m.encodeValue(v);
    return m.decodeValue(e.enc, e.elem, e.parts[0]);
  };
}
const fn = await roundTrip();

const shared = { x: 1 };
/** name → value; the names are run.js's row names */
export const VALUES = {
  number: 1.5,
  small: { a: 1, b: 'x' },
  records: Array.from({ length: 100 }, (_, i) => ({ id: i, name: `n${i}`, score: i / 3, tags: ['a', 'b'] })),
  shared: { a: shared, b: shared },
};

let sink = 0;
/** µs per round trip over a batch of `n`. */
function time(v, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = fn(v);
    if (r === sink) sink++;
  }
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}

for (const [value, v] of Object.entries(VALUES)) {
  // a batch lasts about p.ms; the first second or so of batches is warm-up (JIT tiers)
  const n = Math.max(50, Math.round((p.ms * 1000) / time(v, 200)));
  const warmEnd = performance.now() + 300;
  while (performance.now() < warmEnd) time(v, n);
  const samples = [];
  for (let r = 0; r < p.reps; r++) samples.push(time(v, n));
  process.stdout.write(`BENCH ${JSON.stringify({ kind: 'codec', impl, value, samples })}\n`);
}
if (sink < 0) process.stdout.write(String(sink));
