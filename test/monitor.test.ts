// --monitor: the live page of a real 4-rank job and of a pool, in Debian's
// Chromium (headless), and the server's rules checked with plain HTTP requests.
import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { fixture, run, tsmpirun, until, type RunResult } from './harness.js';
import { openBrowser, SHOTS, type Browser } from './browser.js';
import { parseMonitorAddress } from '../dist/launcher/monitor/address.js';
import { startMonitor } from '../dist/launcher/monitor/index.js';
import { MonitorState } from '../dist/launcher/monitor/state.js';
import { allowedHosts, judge, tokenMatches } from '../dist/launcher/monitor/guard.js';

/** `fn` throws an error with this stable code (the dist build's TsmpiError). */
function expectCode(fn: () => unknown, code: string): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect((err as { code?: string } | null)?.code, String(err)).toBe(code);
}

const tmps: string[] = [];
afterAll(() => {
  for (const d of tmps) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'monitor-test-'));
  tmps.push(d);
  return d;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A plain HTTP request with exactly these headers (fetch cannot set Host). */
function get(url: string, o: { path?: string; method?: string; headers?: Record<string, string>; stream?: boolean } = {}): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method: o.method ?? 'GET', path: o.path ?? u.pathname + u.search, headers: { host: u.host, ...o.headers }, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          // an event stream never ends: the first event is enough
          if (o.stream && body.includes('\n\n', body.indexOf('event: view'))) req.destroy();
        });
        const done = () => resolve({ status: res.statusCode!, headers: res.headers, body });
        res.on('end', done);
        res.on('close', done);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${u.host} in 5 s`)));
    req.on('error', (e) => (o.stream ? undefined : reject(e)));
    req.end();
  });
}

// One Chromium for the file, opened inside the first test that needs it, so a
// missing browser fails those tests (it is never a skip).
let shared: Promise<Browser> | null = null;
const theBrowser = () => (shared ??= openBrowser());
afterAll(async () => {
  await (await shared?.catch(() => null))?.close();
});

describe('monitor: --monitor [HOST:]PORT', () => {
  it('parses PORT, HOST:PORT and [IPv6]:PORT, and refuses the rest with ERR_ARG', () => {
    expect(parseMonitorAddress('0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseMonitorAddress('8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseMonitorAddress('0.0.0.0:9000')).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(parseMonitorAddress('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    for (const bad of ['', 'x', '70000', 'host:', '::1:80', 'a b:80', '[zz]:80', '-1']) expectCode(() => parseMonitorAddress(bad), 'ERR_ARG');
  });

  it('compares tokens whatever their lengths', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abd', 'abc')).toBe(false);
    expect(tokenMatches('', 'abc')).toBe(false);
    expect(tokenMatches(null, 'abc')).toBe(false);
  });

  it('judges Host, Origin, method and token, in that order', () => {
    const loop = allowedHosts('127.0.0.1', 8080);
    expect([...loop].sort()).toEqual(['127.0.0.1:8080', 'localhost:8080']);
    const any = allowedHosts('0.0.0.0', 8080);
    expect(any.has('localhost:8080') && any.has('127.0.0.1:8080')).toBe(true);
    expect(any.has('evil.example:8080')).toBe(false);
    expect([...allowedHosts('::1', 9)]).toContain('[::1]:9');
    const r = { method: 'GET', host: '127.0.0.1:8080', origin: undefined, fetchSite: undefined, token: 't0k' };
    const status = (x: Partial<typeof r>) => {
      const v = judge({ ...r, ...x }, loop, 't0k');
      return v.ok ? 200 : v.status;
    };
    expect(status({})).toBe(200);
    expect(status({ host: undefined })).toBe(421);
    expect(status({ host: 'LOCALHOST:8080' })).toBe(200);
    expect(status({ host: 'rebind.example:8080', token: null })).toBe(421);
    expect(status({ origin: 'http://127.0.0.1:8080' })).toBe(200);
    expect(status({ origin: 'https://127.0.0.1:8080' })).toBe(403);
    expect(status({ origin: 'null' })).toBe(403);
    expect(status({ fetchSite: 'cross-site' })).toBe(403);
    expect(status({ fetchSite: 'same-origin' })).toBe(200);
    expect(status({ method: 'PUT' })).toBe(405);
    expect(status({ token: 't0K' })).toBe(403);
  });

  it('a bad --monitor is a usage error (exit 2) naming the option', async () => {
    const r = await tsmpirun(['-n', '1', '--monitor', 'nope', fixture('monitor-job.ts')], { timeoutMs: 20_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--monitor/);
  });

  it('a port in use: exit 2 naming it, before any rank starts', async () => {
    const busy = createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', () => res()));
    const port = (busy.address() as AddressInfo).port;
    try {
      const r = await tsmpirun(['-n', '2', '--monitor', String(port), fixture('monitor-job.ts')], { timeoutMs: 20_000 });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--monitor: cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
      expect(r.stdout).not.toMatch(/ready/);
    } finally {
      busy.close();
    }
  });
});

describe('monitor: state stays small at scale', () => {
  it('256 ranks and 100,000 tasks: an update carries only what changed', () => {
    const job = new MonitorState('job', 'big job');
    for (let r = 0; r < 256; r++) job.rank(r, { host: `h${r % 4}`, phase: 'running', pid: 1000 + r });
    const whole = JSON.stringify(job.view(0));
    expect(whole.length).toBeLessThan(256 * 400);
    const rev = job.view(0).rev;
    // an identical sample changes nothing; one rank's new traffic is one tile
    for (let r = 0; r < 256; r++) job.rank(r, { blocked: [], traffic: { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0 } });
    const rev2 = job.view(0).rev;
    for (let r = 0; r < 256; r++) job.rank(r, { blocked: [], traffic: { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0 } });
    job.rank(5, { traffic: { messagesSent: 1, bytesSent: 8, messagesReceived: 0, bytesReceived: 0 } });
    expect(job.view(rev2).ranks?.map((t) => t.rank)).toEqual([5]);
    expect(rev2).toBeGreaterThan(rev);

    const pool = new MonitorState('pool', 'big pool');
    for (let w = 0; w < 16; w++) pool.worker(String(w), { host: `h${w % 2}`, phase: 'idle' });
    for (let t = 0; t < 100_000; t++) pool.task(t, 'queued');
    for (let t = 0; t < 100_000; t++) {
      pool.task(t, 'running');
      pool.task(t, t % 1000 === 0 ? 'failed' : 'done');
      if (t % 1000 === 0) pool.failure({ from: `task ${t}`, name: 'Error', message: 'boom', stack: 'Error: boom\n    at task' });
      pool.progress('map', t + 1, 100_000);
    }
    const v = pool.view(0);
    expect(v.tasks!.counts).toEqual({ queued: 0, running: 0, done: 99_900, failed: 100, cancelled: 0 });
    expect(v.failures!.length).toBeLessThanOrEqual(20);
    expect(JSON.stringify(v).length).toBeLessThan(20_000);
  });
});

describe('monitor: a 4-rank job in Chromium', () => {

  it('shows tiles, a blocked rank, progress, partial results, output, and the failing rank at the end', async () => {
    const browser = await theBrowser();
    const dir = tempDir();
    const go = join(dir, 'go');
    let stderr = '';
    let child: ChildProcess | null = null;
    const job = tsmpirun(['-n', '4', '--monitor', '127.0.0.1:0', fixture('monitor-job.ts'), go], {
      timeoutMs: 60_000,
      onStart: (c) => {
        child = c;
        c.stderr!.on('data', (b: Buffer) => (stderr += b));
      },
    });
    let result: RunResult | null = null;
    void job.then((r) => (result = r), () => {});
    try {
      await until(() => /monitor at http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/.test(stderr), 20_000, 'the monitor URL on stderr');
      const url = /monitor at (http:\/\/\S+)/.exec(stderr)![1]!;
      const u = new URL(url);
      const token = u.searchParams.get('token')!;
      expect(token.length).toBeGreaterThanOrEqual(32);

      // ---- the rules, with plain requests
      const ok = await get(url);
      expect(ok.status).toBe(200);
      expect(ok.headers['content-type']).toMatch(/text\/html/);
      expect(ok.headers['content-security-policy']).toMatch(/default-src 'none'/);
      expect(ok.body).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/); // no CDN: every asset is ours
      for (const asset of ['/app.js', '/app.css']) {
        expect((await get(url, { path: `${asset}?token=${token}` })).status).toBe(200);
        expect((await get(url, { path: asset })).status).toBe(403);
      }
      expect((await get(url, { path: '/' })).status).toBe(403);
      expect((await get(url, { path: '/?token=' + token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A') })).status).toBe(403);
      expect((await get(url, { path: '/?token=short' })).status).toBe(403);
      expect((await get(url, { path: '/events' })).status).toBe(403);
      expect((await get(url, { headers: { host: `evil.example:${u.port}` } })).status).toBe(421);
      expect((await get(url, { headers: { host: `127.0.0.1:${Number(u.port) + 1}` } })).status).toBe(421);
      expect((await get(url, { headers: { origin: 'http://evil.example' } })).status).toBe(403);
      expect((await get(url, { headers: { origin: `http://localhost:${u.port}` } })).status).toBe(200);
      expect((await get(url, { headers: { host: `localhost:${u.port}` } })).status).toBe(200);
      expect((await get(url, { method: 'POST' })).status).toBe(405);
      expect((await get(url, { method: 'DELETE' })).status).toBe(405);
      const ev = await get(url, { path: `/events?token=${token}`, stream: true });
      expect(ev.headers['content-type']).toMatch(/text\/event-stream/);
      expect(ev.body).toMatch(/event: view\ndata: \{/);

      // ---- the page
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      // a Content-Security-Policy violation would show here (until the job ends: then the stream's reconnect fails)
      let jobEnding = false;
      page.on('console', (m) => {
        if (m.type() === 'error' && !jobEnding) errors.push(m.text());
      });
      const external: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(`http://127.0.0.1:${u.port}/`)) external.push(r.url());
      });
      await page.goto(url);
      await page.waitForFunction(() => document.querySelectorAll('#tiles .tile').length === 4, null, { timeout: 15_000 });
      const tile = (r: number) => page.locator(`#tiles .tile[data-rank="${r}"]`);
      await page.waitForFunction(() => /blocked in recv\(source=2, tag=7\) on comm 0 for \d+\.\d s/.test(document.querySelector('.tile[data-rank="1"]')?.textContent ?? ''), null, { timeout: 15_000 });
      expect(await tile(1).getAttribute('data-state')).toBe('blocked');
      expect(await tile(0).textContent()).toMatch(/localhost · pid \d+/);
      // progress moves
      await page.waitForFunction(() => /\d+ \/ \d+/.test(document.getElementById('progress-text')?.textContent ?? ''), null, { timeout: 15_000 });
      const p1 = await page.locator('#progress-text').textContent();
      await page.waitForFunction((before) => document.getElementById('progress-text')?.textContent !== before, p1, { timeout: 10_000 });
      const done = (t: string | null) => Number(/(\d+) \//.exec(t ?? '')![1]);
      expect(done(await page.locator('#progress-text').textContent())).toBeGreaterThan(done(p1));
      // partial results appear
      await page.waitForFunction(() => document.querySelectorAll('#partials li').length > 0, null, { timeout: 15_000 });
      expect(await page.locator('#partials li').first().textContent()).toMatch(/^rank 0 @ .*"square":\d+/);
      // traffic of the ping-pong, and the chart
      await page.waitForFunction(() => /sent [1-9]\d* msgs/.test(document.querySelector('.tile[data-rank="2"]')?.textContent ?? ''), null, { timeout: 15_000 });
      await page.waitForFunction(() => /\d/.test(document.getElementById('chart-now')?.textContent ?? ''), null, { timeout: 10_000 });
      // the output tail, filtered
      await page.waitForFunction(() => (document.getElementById('output')?.textContent ?? '').includes('rank 0 step'), null, { timeout: 10_000 });
      await page.fill('#out-filter', 'needle');
      await page.waitForFunction(() => (document.getElementById('output')?.textContent ?? '').includes('needle 42 from rank 2'), null, { timeout: 5000 });
      expect(await page.locator('#output').textContent()).not.toMatch(/rank 0 step/);
      await page.fill('#out-filter', '');
      await page.selectOption('#out-rank', '0');
      await page.waitForFunction(() => !(document.getElementById('output')?.textContent ?? '').includes('needle'), null, { timeout: 5000 });
      await page.waitForFunction(() => Number(document.getElementById('chart')?.dataset.points ?? 0) >= 4, null, { timeout: 10_000 });
      await page.screenshot({ path: join(SHOTS, 'monitor-job.png') });

      // ---- a rank fails: the end, with its stack
      expect(errors).toEqual([]);
      jobEnding = true;
      writeFileSync(go, '');
      await page.waitForFunction(() => !document.getElementById('end')!.hidden, null, { timeout: 20_000 });
      expect(await page.locator('#end-message').textContent()).toMatch(/rank 3 on localhost \(pid \d+\) exited with code 1/);
      expect(await page.locator('#end-stack').textContent()).toMatch(/rank 3 gave up, as the monitor test asked[\s\S]*monitor-job\.ts/);
      expect(await page.locator('#status').textContent()).toBe('failed, exit 1');
      expect(await tile(3).getAttribute('data-state')).toBe('failed');
      expect(await tile(1).getAttribute('data-state')).toBe('killed');
      await page.screenshot({ path: join(SHOTS, 'monitor-job-end.png'), fullPage: true });
      await until(() => result !== null, 20_000, 'tsmpirun to exit');
      expect(result!.code).toBe(1);
      // the page keeps the last state after the launcher exits
      await page.waitForFunction(() => /launcher has exited/.test(document.getElementById('conn')?.textContent ?? ''), null, { timeout: 10_000 });
      expect(await page.locator('#tiles .tile').count()).toBe(4);
      expect(errors).toEqual([]);
      expect(external).toEqual([]);
      // the token is printed once, in the URL line, and nowhere else
      expect(result!.stderr.split(token).length - 1).toBe(1);
      expect(result!.stdout).not.toContain(token);
      await page.close();
    } finally {
      // SIGTERM: tsmpirun ends its ranks
      if (result === null) (child as ChildProcess | null)?.kill('SIGTERM');
      await job.catch(() => {});
    }
  });
});

/**
 * NARROW FAKE: the calls a pool makes on its MonitorFeed during a map (workers
 * on two hosts, 100,000 tasks, some failing with a remote stack, partial
 * results, the map's progress). Only the feed's caller is faked: the monitor's
 * state, server and page under test are the real ones.
 */
class FakePoolFeeder {
  private next = 0;
  private timer: NodeJS.Timeout | null = null;
  constructor(
    private readonly feed: import('../dist/launcher/monitor/feed.js').MonitorFeed,
    readonly total: number,
  ) {}
  start(): void {
    for (let w = 0; w < 6; w++) this.feed.worker(String(w), { host: w < 4 ? 'localhost' : '127.0.0.51', pid: 4000 + w, phase: 'idle' });
    for (let t = 0; t < this.total; t++) this.feed.task(t, 'queued');
    this.feed.progress('map', 0, this.total);
    this.timer = setInterval(() => this.step(), 20);
  }
  /** the tasks left running until the next step, one a live worker */
  private running: number[] = [];
  private step(): void {
    for (const t of this.running) this.finishTask(t);
    this.running = [];
    const end = Math.min(this.total, this.next + 150);
    for (; this.next < end; this.next++) {
      const t = this.next;
      this.feed.task(t, 'running');
      this.feed.worker(String(t % 5), { phase: 'busy', task: t }); // worker 5 is lost below
      if (end - t <= 5) this.running.push(t);
      else this.finishTask(t);
    }
    this.feed.worker('5', { phase: 'lost', task: null });
    this.feed.progress('map', this.next - this.running.length, this.total);
    if (this.next >= this.total) this.stop();
  }
  private finishTask(t: number): void {
    const host = t % 5 < 4 ? 'localhost' : '127.0.0.51';
    if (t % 997 === 0) {
      this.feed.task(t, 'failed');
      this.feed.failure({ from: `task ${t}`, host, name: 'RangeError', message: `item ${t} is out of range`, stack: `RangeError: item ${t} is out of range\n    at square (file:///work/job/tasks.ts:3:11)\n    at runTask (worker)` });
    } else this.feed.task(t, 'done');
    if (t % 2500 === 0) this.feed.partial(`task ${t}`, { item: t, best: t * 2 }, Date.now() / 1000);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

describe('monitor: a real pool\'s page in Chromium, during a map', () => {
  it('workers by host, tasks done moving, failures with their remote stacks, partial results, map progress, the end', async () => {
    const browser = await theBrowser();
    const dir = tempDir();
    const go = join(dir, 'go');
    const n = 20_000;
    let stderr = '';
    let child: ChildProcess | null = null;
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const script = run(process.execPath, ['--import', tsx, fixture('monitor-pool.ts'), go, String(n)], {
      timeoutMs: 90_000,
      onStart: (c) => {
        child = c;
        c.stderr!.on('data', (b: Buffer) => (stderr += b));
      },
    });
    let result: RunResult | null = null;
    void script.then((r) => (result = r), () => {});
    try {
      await until(() => /tsmpi pool: monitor at http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/.test(stderr), 30_000, 'the pool\'s monitor URL');
      const url = /monitor at (\S+)/.exec(stderr)![1]!;
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(url);
      await page.waitForFunction(() => document.querySelectorAll('.hostgroup[data-host="localhost"] .tile').length === 2, null, { timeout: 20_000 });
      const done = () => page.evaluate(() => Number(document.querySelector('#tasks tr[data-phase="done"] td.n')?.textContent ?? 0));
      await page.waitForFunction(() => Number(document.querySelector('#tasks tr[data-phase="done"] td.n')?.textContent ?? 0) > 0, null, { timeout: 30_000 });
      const d1 = await done();
      await page.waitForFunction((d) => Number(document.querySelector('#tasks tr[data-phase="done"] td.n')?.textContent ?? 0) > d, d1, { timeout: 20_000 });
      await page.waitForFunction(() => document.querySelector('#tasks tr[data-phase="failed"] td.n')?.textContent === '3', null, { timeout: 20_000 });
      expect(await page.locator('#failures .failure').count()).toBe(3);
      expect(await page.locator('#failures .failure summary').first().textContent()).toMatch(/on localhost: RangeError: item \d is out of range/);
      expect(await page.locator('#failures .failure pre').first().textContent()).toMatch(/RangeError: item \d is out of range[\s\S]*monitor-pool-tasks\.ts/);
      await page.waitForFunction(() => /"square":\d+/.test(document.getElementById('partials')?.textContent ?? ''), null, { timeout: 20_000 });
      // every task: the map's items and the three submitted
      await page.waitForFunction((k) => new RegExp('\\d+% — \\d+ / ' + k + ' ').test(document.getElementById('progress-text')?.textContent ?? ''), n + 3, { timeout: 20_000 });
      await page.waitForFunction(() => document.querySelector('.tile[data-state="busy"]') !== null, null, { timeout: 20_000 });
      await page.waitForFunction(() => Number(document.getElementById('chart')?.dataset.points ?? 0) >= 8, null, { timeout: 20_000 });
      await page.screenshot({ path: join(SHOTS, 'monitor-pool.png') });
      expect(result).toBeNull(); // all of that during the map
      writeFileSync(go, '');
      await page.waitForFunction(() => !document.getElementById('end')!.hidden, null, { timeout: 30_000 });
      expect(await page.locator('#end-message').textContent()).toBe('the pool closed');
      await until(() => result !== null, 30_000, 'the script to end');
      expect(result!.code, result!.stderr).toBe(0);
      // the serial loop is the oracle
      let sum = 0;
      for (let i = 0; i < n; i++) sum = (sum + i * i) % 1_000_000_007;
      expect(JSON.parse(result!.stdout.trim().split('\n').at(-1)!)).toEqual({ failed: 3, sum });
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      if (result === null) (child as ChildProcess | null)?.kill('SIGTERM');
      await script.catch(() => {});
    }
  });
});

describe('monitor: the pool page at scale in Chromium (fake pool feed)', () => {
  it('a job page keeps up with 256 ranks (a narrow fake of the job\'s feed calls)', async () => {
    const browser = await theBrowser();
    const m = await startMonitor(0, { kind: 'job', title: '256 ranks', announce: null });
    const n = 256;
    for (let r = 0; r < n; r++) m.feed.rank(r, { host: `node${r >> 6}`, pid: 10_000 + r, phase: 'running' });
    let sent = 0;
    const timer = setInterval(() => {
      sent += 10;
      for (let r = 0; r < n; r++) {
        m.feed.rank(r, { blocked: r === n - 1 ? [{ op: 'barrier()', comm: 0, seconds: sent / 100 }] : [], traffic: { messagesSent: sent, bytesSent: sent * 8, messagesReceived: sent, bytesReceived: sent * 8 } });
        m.feed.progress(`rank ${r}`, sent, 10_000);
      }
    }, 250);
    try {
      const page = await browser.context.newPage();
      await page.goto(m.url);
      await page.waitForFunction((k) => document.querySelectorAll('#tiles .tile').length === k, n, { timeout: 15_000 });
      await page.waitForFunction(() => /blocked in barrier\(\) on comm 0/.test(document.querySelector('.tile[data-rank="255"]')?.textContent ?? ''), null, { timeout: 10_000 });
      const before = await page.locator('.tile[data-rank="128"]').textContent();
      await page.waitForFunction((b) => document.querySelector('.tile[data-rank="128"]')?.textContent !== b, before, { timeout: 10_000 });
      expect(await page.locator('#totals').textContent()).toMatch(/ranks256/);
      await page.close();
    } finally {
      clearInterval(timer);
      await m.close();
    }
  });


  it('workers by host, task counts and rates, failures with stacks, partial results, map progress', async () => {
    const browser = await theBrowser();
    const m = await startMonitor(0, { kind: 'pool', title: 'pool.map(square) — 100000 items', announce: null });
    const feeder = new FakePoolFeeder(m.feed, 100_000);
    try {
      feeder.start();
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(m.url);
      await page.waitForFunction(() => document.querySelectorAll('#tiles .hostgroup').length === 2 && document.querySelectorAll('#tiles .tile').length === 6, null, { timeout: 15_000 });
      expect(await page.locator('.hostgroup[data-host="127.0.0.51"] .tile').count()).toBe(2);
      await page.waitForFunction(() => document.querySelector('.tile[data-worker="5"]')?.getAttribute('data-state') === 'lost', null, { timeout: 10_000 });
      const count = async (phase: string) => Number(await page.locator(`#tasks tr[data-phase="${phase}"] td.n`).first().textContent());
      await page.waitForFunction(() => Number(document.querySelector('#tasks tr[data-phase="done"] td.n')?.textContent ?? 0) > 0, null, { timeout: 10_000 });
      const done1 = await count('done');
      await page.waitForFunction((d) => Number(document.querySelector('#tasks tr[data-phase="done"] td.n')?.textContent ?? 0) > d, done1, { timeout: 10_000 });
      await page.waitForFunction(() => /[1-9]\d*(\.\d)?\/s/.test(document.querySelector('#tasks tr[data-phase="done"]')?.textContent ?? ''), null, { timeout: 10_000 });
      await page.waitForFunction(() => document.querySelectorAll('#failures .failure').length > 0, null, { timeout: 10_000 });
      expect(await page.locator('#failures .failure pre').first().textContent()).toMatch(/RangeError: item \d+ is out of range\n\s+at square/);
      await page.waitForFunction(() => document.querySelectorAll('#partials li').length > 0, null, { timeout: 10_000 });
      expect(await page.locator('#partials li').first().textContent()).toMatch(/^task \d+ @ .*"best":\d+/);
      await page.waitForFunction(() => /\d+% — \d+ \/ 100000/.test(document.getElementById('progress-text')?.textContent ?? ''), null, { timeout: 10_000 });
      await page.waitForFunction(() => Number(document.getElementById('chart')?.dataset.points ?? 0) >= 8, null, { timeout: 10_000 });
      await page.screenshot({ path: join(SHOTS, 'monitor-pool-fake.png') });
      // the counts always add up to the tasks submitted
      // (read in one go: an update between reads would move them)
      const sum = await page.evaluate(() => [...document.querySelectorAll('#tasks tr')].reduce((a, tr) => a + Number(tr.querySelector('td.n')?.textContent ?? 0), 0));
      expect(sum).toBe(100_000);
      // wrong token: refused here too
      expect((await get(m.url.replace(/token=.*/, 'token=nope'))).status).toBe(403);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      feeder.stop();
      await m.close();
    }
  });
});


/** Read a monitor's event stream, merging its views as the page does. */
function watch(pageUrl: string) {
  const u = new URL(pageUrl);
  const ranks = new Map<number, { host: string; phase: string; blocked: string | null; traffic: { messagesSent: number } | null }>();
  const seen = { views: 0, end: null as null | { code: number; message: string; stack?: string | null } };
  let buf = '';
  const req = request({ host: u.hostname, port: u.port, path: `/events?token=${u.searchParams.get('token')}`, headers: { host: u.host } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      buf += c;
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const data = buf.slice(0, cut).split('\n').find((l) => l.startsWith('data: '));
        buf = buf.slice(cut + 2);
        if (!data) continue;
        const v = JSON.parse(data.slice(6));
        seen.views++;
        for (const t of v.ranks ?? []) ranks.set(t.rank, t);
        if (v.end) seen.end = v.end;
      }
    });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  req.end();
  return { ranks, seen, close: () => req.destroy() };
}

describe('monitor: ranks on a tsmpid host', () => {
  let daemon: import('./daemons.js').TestDaemon;
  let keyDir: string;
  beforeAll(async () => {
    const { keygen, startDaemon } = await import('./daemons.js');
    keyDir = join(tempDir(), 'keys');
    await keygen(keyDir);
    daemon = await startDaemon({ host: '127.0.0.1', authorizedKeys: join(keyDir, 'id.pub'), slots: 2 });
  });
  afterAll(async () => {
    const { stopDaemons } = await import('./daemons.js');
    await stopDaemons();
  });

  it('samples remote ranks through the daemon: their blocked call and traffic, and the end', async () => {
    const { writeHostfile } = await import('./daemons.js');
    const dir = tempDir();
    const go = join(dir, 'go');
    let stderr = '';
    const job = tsmpirun(
      ['--hostfile', writeHostfile(dir, ['localhost slots=2', daemon.line(2)]), '-n', '4', '--identity', join(keyDir, 'id'), '--known-hosts', join(keyDir, 'known_hosts'), '--monitor', '0', fixture('monitor-job.ts'), go],
      { timeoutMs: 60_000, env: { TMPDIR: dir }, onStart: (c) => c.stderr!.on('data', (b: Buffer) => (stderr += b)) },
    );
    let w: ReturnType<typeof watch> | null = null;
    try {
      await until(() => /monitor at http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/.test(stderr), 20_000, 'the monitor URL');
      w = watch(/monitor at (\S+)/.exec(stderr)![1]!);
      const ranks = w.ranks;
      await until(() => ranks.get(1)?.blocked?.startsWith('recv(source=2, tag=7) on comm 0') === true, 20_000, 'rank 1 blocked in recv(source=2, tag=7)');
      await until(() => (ranks.get(2)?.traffic?.messagesSent ?? 0) > 0 && (ranks.get(3)?.traffic?.messagesSent ?? 0) > 0, 20_000, 'the remote ranks\' sampled traffic');
      expect(ranks.get(2)!.host).toBe('127.0.0.1');
      expect(ranks.get(3)!.phase).toBe('running');
      writeFileSync(go, '');
      await until(() => w!.seen.end !== null, 20_000, 'the end');
      expect(w.seen.end!.message).toMatch(/rank 3 on 127\.0\.0\.1 .*exited with code 1/);
      expect(w.seen.end!.stack).toMatch(/rank 3 gave up/);
      const r = await job;
      expect(r.code).toBe(1);
    } finally {
      w?.close();
      await job.catch(() => {});
    }
  });
});

describe('monitor: sampling only while watched', () => {
  it('polls while a page is attached, and never otherwise', async () => {
    const { sampleWhileWatched } = await import('../dist/launcher/monitor/sampler.js');
    const m = await startMonitor(0, { kind: 'job', title: 'sampling', announce: null });
    let polls = 0;
    const stop = sampleWhileWatched(m.feed, () => polls++, 20);
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(polls).toBe(0);
      const w = watch(m.url);
      await until(() => polls >= 3, 5000, 'polls while watched');
      w.close();
      await until(() => !m.feed.watched, 5000, 'the page to be gone');
      const after = polls;
      await new Promise((r) => setTimeout(r, 300));
      expect(polls).toBe(after);
    } finally {
      stop();
      await m.close();
    }
  });
});

describe('monitor: ranks as threads (--threads)', () => {
  it('samples thread ranks too: the blocked call, traffic, and the end naming the failing rank', async () => {
    const dir = tempDir();
    const go = join(dir, 'go');
    let stderr = '';
    const job = tsmpirun(['--threads', '-n', '4', '--monitor', '0', fixture('monitor-job.ts'), go], {
      timeoutMs: 60_000,
      onStart: (c) => c.stderr!.on('data', (b: Buffer) => (stderr += b)),
    });
    let w: ReturnType<typeof watch> | null = null;
    try {
      await until(() => /monitor at http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/.test(stderr), 20_000, 'the monitor URL');
      w = watch(/monitor at (\S+)/.exec(stderr)![1]!);
      const ranks = w.ranks;
      await until(() => ranks.get(1)?.blocked?.startsWith('recv(source=2, tag=7) on comm 0') === true, 20_000, 'rank 1 blocked in recv(source=2, tag=7)');
      await until(() => (ranks.get(3)?.traffic?.messagesSent ?? 0) > 0, 20_000, 'rank 3\'s sampled traffic');
      writeFileSync(go, '');
      await until(() => w!.seen.end !== null, 20_000, 'the end');
      expect(w.seen.end!.message).toMatch(/rank 3 on localhost .*exited with code 1/);
      expect(w.seen.end!.stack).toMatch(/rank 3 gave up/);
      expect((await job).code).toBe(1);
    } finally {
      w?.close();
      await job.catch(() => {});
    }
  });
});
