// Unit tests of the browser tag on a fake window (clock, timers, storage, fetch, beacons).
// Run: node --test tests/tag/   (make test runs them)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { build } from '../../src/netra_analytics/tag/build.mjs';

const require = createRequire(import.meta.url);
const TAG = fileURLToPath(new URL('../../src/netra_analytics/tag/netra-analytics.js', import.meta.url));
const MIN = fileURLToPath(new URL('../../src/netra_analytics/tag/netra-analytics.min.js', import.meta.url));
const { create, install, chunk, backoff, cut, VERSION } = require(TAG);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

function memoryStorage() {
  const items = new Map();
  return {
    getItem: (k) => (items.has(k) ? items.get(k) : null),
    setItem: (k, v) => items.set(k, String(v)),
    removeItem: (k) => items.delete(k),
    items,
  };
}

function response(status, body = { accepted: 0, rejected: [] }, headers = {}) {
  return {
    status,
    headers: { get: (name) => headers[name.toLowerCase()] ?? null },
    json: async () => body,
  };
}

// A window whose clock and timers only move when the test says so.
function fakeWindow({ navigator = {}, localStorage = memoryStorage(), reply } = {}) {
  let clock = Date.UTC(2026, 10, 25, 12);
  let nextId = 1;
  const timers = new Map();
  const sent = [];
  const beacons = [];
  const listeners = {};
  const win = {
    Date: { now: () => clock },
    navigator: { onLine: true, sendBeacon: (url, blob) => { beacons.push({ url, blob }); return true; }, ...navigator },
    localStorage,
    sessionStorage: memoryStorage(),
    location: { pathname: '/chat' },
    console: { warn: (...args) => win.warnings.push(args.join(' ')) },
    warnings: [],
    crypto: globalThis.crypto,
    Blob: globalThis.Blob,
    setTimeout: (fn, ms) => { timers.set(nextId, { at: clock + ms, fn }); return nextId++; },
    clearTimeout: (id) => timers.delete(id),
    setInterval: () => 0,
    addEventListener: (type, fn) => { (listeners[type] ||= []).push(fn); },
    fire: (type, event = {}) => (listeners[type] || []).forEach((fn) => fn(event)),
    heartbeats: [],
    fetch: async (url, options) => {
      if (url.includes('/tag/heartbeat')) { win.heartbeats.push(url); return response(204); }
      const request = { url, options, body: options.body ? JSON.parse(options.body) : null, at: clock };
      sent.push(request);
      const answer = (reply || (() => response(202)))(request, sent.length);
      if (answer instanceof Error) throw answer;
      return answer;
    },
    document: {
      title: 'Chat', referrer: '', readyState: 'loading', visibilityState: 'visible',
      addEventListener: (type, fn) => { (listeners[`doc:${type}`] ||= []).push(fn); },
    },
    sent,
    beacons,
    // Move the clock, running the timers that come due (and the promises they start).
    async advance(ms) {
      const until = clock + ms;
      for (;;) {
        await settle();
        const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        clock = Math.max(clock, due[1].at);
        due[1].fn();
      }
      clock = until;
      await settle();
    },
  };
  return win;
}

async function settle() {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

function chat(n) {
  return { event_type: 'feature_usage', feature_name: `f${n}`, action: 'open', success: true };
}

function sentIds(win) {
  return win.sent.flatMap((r) => r.body.events.map((e) => e.properties.feature_name));
}

test('the minified tag is built from the source and is under 5 KB gzipped', async () => {
  const minified = readFileSync(MIN, 'utf8');
  assert.equal(minified, await build(), 'netra-analytics.min.js is stale: npm run build:tag');
  const gzipped = gzipSync(minified, { level: 9 }).length;
  assert.ok(gzipped < 5 * 1024, `${gzipped} bytes gzipped`);
});

test('push enriches the event, feeds the dataLayer and sends it', async () => {
  const win = fakeWindow();
  const { tag } = create(win, { requireConsent: false, userId: 'u1', gtmContainerId: 'GTM-T1' });
  const id = tag.push({ event_type: 'chat_interaction', thread_id: 't1', message_id: 'm1',
    message_type: 'user_prompt', prompt_length: 5, is_follow_up: false });
  assert.match(id, UUID);
  const [layer] = win.dataLayer;
  assert.equal(layer.event, 'netra_analytics_event');
  assert.equal(layer.session_id, tag.sessionId);
  assert.equal(layer.thread_id, 't1');
  assert.equal(layer.timestamp, '2026-11-25T12:00:00.000Z');
  await win.advance(2000);
  assert.equal(win.sent.length, 1);
  const { body, options } = win.sent[0];
  assert.equal(options.keepalive, true);
  assert.deepEqual(body.events[0].properties, { thread_id: 't1', message_id: 'm1',
    message_type: 'user_prompt', prompt_length: 5, is_follow_up: false });
  assert.equal(body.events[0].event_id, id);
  assert.equal(body.context.user_id, 'u1');
  assert.match(body.context.anonymous_id, UUID);
  assert.equal(body.context.session_id, tag.sessionId);
  assert.equal(body.sent_at, '2026-11-25T12:00:02.000Z');
  assert.equal(body.context.gtm_container_id, 'GTM-T1');
  assert.equal(tag.pending(), 0);
});

test('batches by size at once and by time otherwise', async () => {
  const win = fakeWindow();
  const { tag } = create(win, { requireConsent: false, batchSize: 3, flushIntervalMs: 5000 });
  tag.push(chat(1));
  tag.push(chat(2));
  await win.advance(4000);
  assert.equal(win.sent.length, 0);
  tag.push(chat(3));
  await settle();
  assert.deepEqual(sentIds(win), ['f1', 'f2', 'f3']);
  tag.push(chat(4));
  await win.advance(4999);
  assert.equal(win.sent.length, 1);
  await win.advance(1);
  assert.deepEqual(sentIds(win), ['f1', 'f2', 'f3', 'f4']);
});

test('network errors and 5xx are retried with growing, jittered delays', async () => {
  const win = fakeWindow({ reply: (_, n) => (n <= 3 ? (n === 2 ? response(503) : new Error('offline')) : response(202)) });
  const { tag } = create(win, { requireConsent: false, retryBaseMs: 1000, flushIntervalMs: 0 });
  tag.push(chat(1));
  await win.advance(0);
  assert.equal(win.sent.length, 1);
  await win.advance(499); // the first retry comes 500 to 1000 ms after the failure
  assert.equal(win.sent.length, 1);
  await win.advance(7501); // enough for all three retries at their longest (1 + 2 + 4 s)
  assert.equal(win.sent.length, 4);
  // Each wait is drawn afresh from [ceiling / 2, ceiling], the ceiling doubling per attempt:
  // measured from the failure it follows, not from the first send (so the test does not
  // depend on the draws, which Math.random makes).
  const waits = win.sent.slice(1).map((r, i) => r.at - win.sent[i].at);
  for (const [i, [low, high]] of [[500, 1000], [1000, 2000], [2000, 4000]].entries()) {
    assert.ok(waits[i] >= low && waits[i] <= high, `retry ${i + 1} after ${waits[i]} ms`);
  }
  assert.equal(tag.pending(), 0);
  assert.deepEqual(new Set(win.sent.map((r) => r.body.events[0].event_id)).size, 1, 'one event id');
});

test('the backoff doubles, is capped, and keeps half of its ceiling', () => {
  for (const [attempt, low, high] of [[0, 500, 1000], [1, 1000, 2000], [3, 4000, 8000], [20, 150000, 300000]]) {
    assert.equal(backoff(attempt, 1000, 300000, () => 0), low);
    assert.equal(backoff(attempt, 1000, 300000, () => 1), high);
  }
});

test('429 waits for Retry-After; invalid events are dropped, rate-limited ones kept', async () => {
  let calls = 0;
  const win = fakeWindow({
    reply: (request) => {
      calls += 1;
      if (calls === 1) return response(429, {}, { 'retry-after': '7' });
      if (calls === 2) {
        return response(202, { accepted: 1, rejected: [
          { index: 1, reason: 'invalid', errors: [{ field: 'properties.success', message: 'required' }] },
          { index: 2, reason: 'rate_limited' },
        ] }, { 'x-ratelimit-reset': '3' });
      }
      return response(202, { accepted: request.body.events.length, rejected: [] });
    },
  });
  const { tag } = create(win, { requireConsent: false, flushIntervalMs: 0, debug: true });
  tag.push(chat(1));
  tag.push({ event_type: 'feature_usage', feature_name: 'f2', action: 'open' });
  tag.push(chat(3));
  await win.advance(0);
  assert.equal(win.sent.length, 1);
  await win.advance(6999);
  assert.equal(win.sent.length, 1);
  await win.advance(1);
  assert.equal(win.sent.length, 2);
  assert.equal(tag.pending(), 1); // f3 waits for the rate limit window
  await win.advance(3000);
  assert.deepEqual(win.sent.at(-1).body.events.map((e) => e.properties.feature_name), ['f3']);
  assert.equal(tag.pending(), 0);
  assert.ok(win.warnings.some((w) => w.includes('feature_usage: missing required property success')));
  assert.ok(win.warnings.some((w) => w.includes('event rejected: invalid')));
});

test('a refused request (400/413/415) is dropped, not retried forever', async () => {
  const win = fakeWindow({ reply: () => response(400) });
  const { tag } = create(win, { requireConsent: false, flushIntervalMs: 0 });
  tag.push(chat(1));
  await win.advance(60_000);
  assert.equal(win.sent.length, 1);
  assert.equal(tag.pending(), 0);
});

test('the offline queue survives a reload, is bounded, and waits for the network', async () => {
  const storage = memoryStorage();
  const offline = fakeWindow({ localStorage: storage, navigator: { onLine: false } });
  const first = create(offline, { requireConsent: false, maxQueue: 3, flushIntervalMs: 0 }).tag;
  for (let i = 1; i <= 5; i++) first.push(chat(i));
  await offline.advance(10_000);
  assert.equal(offline.sent.length, 0);
  assert.equal(JSON.parse(storage.getItem('netra_analytics_queue')).length, 3); // the newest 3
  offline.navigator.onLine = true;
  offline.fire('online');
  await settle();
  assert.equal(offline.sent.length, 0, 'no document: the page never started listening');

  const reloaded = fakeWindow({ localStorage: storage });
  const second = create(reloaded, { requireConsent: false, flushIntervalMs: 0 }).tag;
  await reloaded.advance(0);
  assert.deepEqual(sentIds(reloaded), ['f3', 'f4', 'f5']);
  assert.equal(second.pending(), 0);
});

test('queued events older than maxAgeMs are dropped', async () => {
  const storage = memoryStorage();
  const win = fakeWindow({ localStorage: storage, navigator: { onLine: false } });
  const { tag } = create(win, { requireConsent: false, maxAgeMs: 10 * MINUTE });
  tag.push(chat(1));
  await win.advance(11 * MINUTE);
  tag.push(chat(2));
  const queued = JSON.parse(storage.getItem('netra_analytics_queue'));
  assert.deepEqual(queued.map((it) => it.ev.properties.feature_name), ['f2']);
});

test('the session is kept in sessionStorage and renewed after 30 idle minutes', async () => {
  const win = fakeWindow();
  const { tag } = create(win, { requireConsent: false });
  tag.push(chat(1));
  const first = tag.sessionId;
  assert.match(first, UUID);
  await win.advance(29 * MINUTE);
  tag.push(chat(2));
  assert.equal(tag.sessionId, first, 'activity within 30 minutes keeps the session');
  await win.advance(29 * MINUTE);
  tag.push(chat(3));
  assert.equal(tag.sessionId, first, 'idle time counts from the last activity');
  await win.advance(31 * MINUTE);
  tag.push(chat(4));
  assert.notEqual(tag.sessionId, first);
  assert.equal(JSON.parse(win.sessionStorage.getItem('netra_analytics_session')).id, tag.sessionId);
});

test('without consent nothing is stored or sent; consent given later sends what was held', async () => {
  const win = fakeWindow();
  const { tag } = create(win, { flushIntervalMs: 0 });
  tag.push(chat(1));
  await win.advance(60_000);
  assert.equal(win.sent.length, 0);
  assert.equal(win.localStorage.items.size, 0);
  assert.equal(win.sessionStorage.items.size, 0);
  assert.equal(tag.pending(), 1);
  tag.setConsent(true);
  await win.advance(0);
  assert.deepEqual(sentIds(win), ['f1']);
  assert.deepEqual(win.heartbeats, [`/api/analytics/tag/heartbeat?container=none&version=${VERSION}`]);
});

test('consent withdrawn: queued events are forgotten and nothing more is sent', async () => {
  const win = fakeWindow({ navigator: { onLine: false } });
  const { tag } = create(win, { consent: true, flushIntervalMs: 0 });
  tag.push(chat(1));
  assert.equal(tag.pending(), 1);
  tag.setConsent(false);
  assert.equal(tag.pending(), 0);
  win.navigator.onLine = true;
  tag.push(chat(2));
  await win.advance(60_000);
  assert.deepEqual(sentIds(win), []);
});

test('Do-Not-Track and Global Privacy Control turn the tag off', async () => {
  for (const navigator of [{ doNotTrack: '1' }, { globalPrivacyControl: true }]) {
    const win = fakeWindow({ navigator });
    const { tag } = create(win, { consent: true, flushIntervalMs: 0 });
    assert.equal(tag.push(chat(1)), null);
    await win.advance(60_000);
    assert.equal(win.sent.length, 0);
    assert.equal(win.dataLayer, undefined);
  }
  const win = fakeWindow({ navigator: { doNotTrack: '1' } });
  const { tag } = create(win, { consent: true, respectDoNotTrack: false, flushIntervalMs: 0 });
  tag.push(chat(1));
  await win.advance(0);
  assert.deepEqual(sentIds(win), ['f1']);
});

test('GTM Consent Mode signals in the dataLayer grant and deny', async () => {
  const win = fakeWindow();
  win.dataLayer = [['consent', 'default', { analytics_storage: 'denied' }]];
  const tag = install(win, { flushIntervalMs: 0 });
  tag.featureUsage({ feature_name: 'f1', action: 'open', success: true });
  await win.advance(10_000);
  assert.deepEqual(sentIds(win), []);
  (function () { win.dataLayer.push(arguments); })('consent', 'update', { analytics_storage: 'granted' });
  tag.featureUsage({ feature_name: 'f2', action: 'open', success: true });
  await win.advance(0);
  assert.deepEqual(sentIds(win), ['f2']); // f1 came while denied: dropped
});

test('beacons on hide stay under 64 KB and leave the queue only when handed over', async () => {
  let accept = 2;
  const win = fakeWindow({ navigator: { sendBeacon: (url, blob) => { win.beacons.push(blob); return accept-- > 0; } } });
  const tag = install(win, { consent: true, flushIntervalMs: 60_000, batchSize: 1000, captureErrors: false, capturePageLoad: false });
  const long = 'x'.repeat(900);
  for (let i = 0; i < 120; i++) tag.errorTracking({ error_type: 'E', error_message: `${i} ${long}`, user_impact: 'low' });
  win.document.visibilityState = 'hidden';
  win.fire('doc:visibilitychange');
  const sizes = await Promise.all(win.beacons.map(async (b) => (await b.text()).length));
  assert.equal(sizes.length, 3); // two handed over, the third refused: the browser's queue is full
  assert.ok(sizes.every((size) => size <= 16_000), `beacon sizes ${sizes}`);
  assert.ok(sizes.reduce((a, b) => a + b, 0) <= 60_000, `beacons total ${sizes}`);
  const bodies = await Promise.all(win.beacons.map(async (b) => JSON.parse(await b.text())));
  const handed = bodies.slice(0, 2).flatMap((b) => b.events.map((e) => e.event_id));
  const queued = JSON.parse(win.localStorage.getItem('netra_analytics_queue')).map((it) => it.ev.event_id);
  assert.equal(handed.length + queued.length, 120);
  assert.ok(handed.every((id) => !queued.includes(id)));
  win.fire('pagehide'); // after visibilitychange: what was handed over is not sent again
  const later = await Promise.all(win.beacons.slice(bodies.length).map(async (b) => JSON.parse(await b.text())));
  assert.ok(later.flatMap((b) => b.events.map((e) => e.event_id)).every((id) => !handed.includes(id)));
});

test('chunks keep one context per request and every event once', () => {
  const items = [];
  for (let i = 0; i < 50; i++) {
    items.push({ ctx: JSON.stringify({ user_id: i < 30 ? 'a' : 'b' }), ev: { event_id: `e${i}`, pad: 'y'.repeat(500) } });
  }
  const batches = chunk(items, 8000, '2026-11-25T12:00:00.000Z');
  const seen = batches.flatMap((b) => JSON.parse(b.body).events.map((e) => e.event_id));
  assert.ok(batches.every((b) => JSON.parse(b.body).sent_at === '2026-11-25T12:00:00.000Z'));
  assert.deepEqual(seen, items.map((it) => it.ev.event_id));
  for (const b of batches) {
    assert.ok(Buffer.byteLength(b.body) <= 8000);
    assert.equal(new Set(b.items.map((it) => it.ctx)).size, 1);
  }
});

test('auto-capture: chat DOM events, page load timing and errors', async () => {
  const win = fakeWindow();
  win.performance = { getEntriesByType: () => [{ loadEventEnd: 321.4, duration: 330 }] };
  const tag = install(win, { consent: true, flushIntervalMs: 0, batchSize: 100 });
  win.fire('doc:netra_chat_message', { detail: { thread_id: 't', message_id: 'm', message_type: 'user_prompt', prompt_length: 2, is_follow_up: false } });
  win.fire('load');
  win.fire('error', { message: 'boom', error: { name: 'TypeError', stack: 'at x' } });
  win.fire('unhandledrejection', { reason: { name: 'AbortError', message: 'late' } });
  await win.advance(0);
  await win.advance(0);
  const events = win.sent.flatMap((r) => r.body.events);
  const byType = Object.fromEntries(events.map((e) => [e.event_type + ':' + (e.properties.error_type || ''), e.properties]));
  assert.equal(byType['chat_interaction:'].thread_id, 't');
  assert.deepEqual(byType['performance_metric:'], { metric_type: 'page_load', duration_ms: 321, success: true });
  assert.equal(byType['error_tracking:TypeError'].error_message, 'boom');
  assert.equal(byType['error_tracking:AbortError'].error_message, 'late');
  assert.equal(tag.pending(), 0);
});

// --- Text: what the service can store ---------------------------------------------------

const EMOJI = '\u{1F600}'; // one code point, two UTF-16 units
const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

// A fixed-seed generator (mulberry32): the same cases on every run.
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Strings mixing ASCII, 2- and 3-byte characters, emoji and lone high and low surrogates.
function textOf(rand, maxUnits) {
  const pieces = ['a', 'Z', ' ', '\u00e9', '\u20ac', EMOJI, '\u{10FFFF}', '\ud83d', '\ude00', '\udbff', '\udc00'];
  let s = '';
  const length = Math.floor(rand() * maxUnits);
  while (s.length < length) s += pieces[Math.floor(rand() * pieces.length)];
  return s;
}

// A body the service can decode and store: no lone surrogate, raw or as a \udXXX escape.
function assertStorable(raw) {
  assert.doesNotMatch(raw, /\\u[dD][89a-fA-F]/, 'a surrogate escape in the body');
  assert.doesNotMatch(raw, LONE, 'a lone surrogate in the body');
  assert.doesNotThrow(() => encodeURIComponent(raw)); // throws on a lone surrogate
}

test('cuts at 2048, 1000 and 4000 never split an emoji in titles, paths, referrers, errors', async () => {
  const win = fakeWindow();
  win.document.title = 'a'.repeat(2047) + EMOJI; // the emoji's second half would be unit 2049
  win.document.referrer = 'https://r.example/' + 'b'.repeat(2029) + EMOJI;
  win.location.pathname = '/' + 'c'.repeat(2046) + EMOJI + 'tail';
  const tag = install(win, { consent: true, flushIntervalMs: 0, batchSize: 100, capturePageLoad: false });
  win.fire('error', { message: 'm'.repeat(999) + EMOJI, error: { name: 'TypeError', stack: 's'.repeat(3999) + EMOJI } });
  win.fire('unhandledrejection', { reason: { name: 'AbortError', message: 'n'.repeat(999) + EMOJI, stack: 't'.repeat(3999) + EMOJI } });
  win.document.title = 'a'.repeat(2046) + EMOJI; // fits: kept whole
  tag.featureUsage({ feature_name: 'f', action: 'open', success: true });
  await win.advance(0);
  const raw = win.sent.map((r) => r.options.body);
  raw.forEach(assertStorable);
  const [split, whole] = win.sent.map((r) => r.body);
  assert.equal(split.context.page_title, 'a'.repeat(2047));
  assert.equal(split.context.referrer, 'https://r.example/' + 'b'.repeat(2029));
  assert.equal(split.context.page_path, '/' + 'c'.repeat(2046));
  const errors = split.events.map((e) => e.properties);
  assert.deepEqual(errors.map((p) => [p.error_message, p.stack_trace]), [
    ['m'.repeat(999), 's'.repeat(3999)],
    ['n'.repeat(999), 't'.repeat(3999)],
  ]);
  assert.equal(whole.context.page_title, 'a'.repeat(2046) + EMOJI);
  assert.equal(tag.pending(), 0);
});

test('cut: random strings with surrogates come out well formed, within the limit, a prefix', () => {
  const rand = random(12);
  for (let i = 0; i < 5000; i++) {
    const input = textOf(rand, 40);
    const n = Math.floor(rand() * 45);
    // The oracle: code point by code point, each lone surrogate replaced by U+FFFD.
    const whole = Array.from(input).map((c) => (c.length === 1 && /[\ud800-\udfff]/.test(c) ? '\ufffd' : c)).join('');
    assert.equal(cut(input), whole, JSON.stringify(input));
    const out = cut(input, n);
    const label = `${JSON.stringify(input)} cut at ${n}: ${JSON.stringify(out)}`;
    assert.doesNotMatch(out, LONE, label);
    assert.ok(out.length <= n, label);
    assert.ok(out.length >= Math.min(n, whole.length) - 1, label); // at most half a pair left out
    assert.ok(whole.startsWith(out), label);
    if (!LONE.test(input)) assert.ok(input.startsWith(out), label);
  }
  assert.equal(cut(12.5), '12.5');
});

test('every string of an event and its context, however deep, reaches the body storable', async () => {
  const rand = random(7);
  const win = fakeWindow();
  const tag = install(win, { consent: true, flushIntervalMs: 0, batchSize: 1000, capturePageLoad: false });
  const pushed = [];
  for (let i = 0; i < 300; i++) {
    win.document.title = textOf(rand, 3000);
    win.document.referrer = textOf(rand, 50);
    win.location.pathname = '/' + textOf(rand, 2100);
    tag.identify(textOf(rand, 20) || 'u');
    const props = { feature_name: textOf(rand, 30), action: 'open', success: true, note: { deep: [textOf(rand, 30)] } };
    pushed.push(tag.featureUsage(props));
    win.fire('error', { message: textOf(rand, 1200), error: { name: 'E', stack: textOf(rand, 4200) } });
  }
  await win.advance(0);
  for (const request of win.sent) {
    assertStorable(request.options.body);
    assert.ok(request.body.context.page_title.length <= 2048 && request.body.context.page_path.length <= 2048);
  }
  const events = win.sent.flatMap((r) => r.body.events);
  assert.equal(events.length, 600);
  assert.deepEqual(events.filter((e) => e.event_type === 'feature_usage').map((e) => e.event_id), pushed);
  for (const e of events.filter((x) => x.event_type === 'error_tracking')) {
    assert.ok(e.properties.error_message.length <= 1000 && e.properties.stack_trace.length <= 4000);
  }
});

// --- Size: the browsers' 64 KiB keepalive limit and the service's 1 MiB ------------------

// A chat event with a 40,000-character prompt of 3-byte characters: about 120 KB of JSON.
function bigChat(id, chars = 40_000) {
  const prompt = '\u65e5\u672c'.repeat(chars / 2);
  return { event_type: 'chat_interaction', thread_id: 't', message_id: id, message_type: 'user_prompt',
    prompt_text: prompt, prompt_length: prompt.length, is_follow_up: false };
}

function bytes(request) {
  return Buffer.byteLength(request.options.body);
}

test('a batch over 64 KiB goes without keepalive, and the events behind it go too', async () => {
  const win = fakeWindow();
  const { tag } = create(win, { requireConsent: false, flushIntervalMs: 0 });
  tag.push(bigChat('big'));
  for (let i = 1; i <= 3; i++) tag.push(chat(i));
  await win.advance(0);
  const big = win.sent.find((r) => r.body.events.some((e) => e.event_type === 'chat_interaction'));
  assert.equal(big.body.events.length, 1);
  assert.ok(bytes(big) > 65536, `${bytes(big)} bytes`);
  assert.equal(big.options.keepalive, false);
  const small = win.sent.filter((r) => r !== big);
  assert.ok(small.every((r) => r.options.keepalive === true && bytes(r) <= 60_000));
  assert.deepEqual(sentIds(win).filter(Boolean), ['f1', 'f2', 'f3']);
  assert.equal(tag.pending(), 0);
});

test('a fetch refusing keepalive bodies past 64 KiB in flight, as browsers do, never stalls the queue', async () => {
  let inFlight = 0;
  let refused = 0;
  const win = fakeWindow({
    reply: (request) => {
      const size = bytes(request);
      if (request.options.keepalive) {
        if (size > 65536 || inFlight + size > 65536) { refused += 1; return new TypeError('Failed to fetch'); }
        inFlight += size;
      }
      // The reply takes 200 ms of the page's clock, so that requests overlap.
      return new Promise((resolve) => win.setTimeout(() => {
        if (request.options.keepalive) inFlight -= size;
        resolve(response(202, { accepted: request.body.events.length, rejected: [] }));
      }, 200));
    },
  });
  const { tag } = create(win, { requireConsent: false, flushIntervalMs: 0, batchSize: 20 });
  const ids = [tag.push(bigChat('big1'))];
  for (let i = 1; i <= 3; i++) ids.push(tag.push(chat(i)));
  ids.push(tag.push(bigChat('big2')));
  for (let i = 4; i <= 63; i++) ids.push(tag.push({ ...chat(i), note: 'x'.repeat(1500) })); // 3 batches of ~30 KB
  await win.advance(2000); // no backoff needed: a refusal would cost at least 500 ms per retry
  assert.equal(refused, 0);
  assert.deepEqual(new Set(win.sent.flatMap((r) => r.body.events.map((e) => e.event_id))), new Set(ids));
  assert.equal(win.sent.flatMap((r) => r.body.events).length, ids.length, 'each event sent once');
  assert.equal(tag.pending(), 0);
});

test('an event over the service\'s 1 MiB, or answered 413, is dropped, and the rest go', async () => {
  const win = fakeWindow({ reply: (request) => (bytes(request) > 100_000 ? response(413) : response(202)) });
  const { tag } = create(win, { requireConsent: false, flushIntervalMs: 0, debug: true });
  tag.push(bigChat('huge', 400_000)); // 1.2 MB: never sent
  tag.push(chat(1));
  tag.push(bigChat('refused')); // 120 KB: the service answers 413
  tag.push(chat(2));
  await win.advance(10 * MINUTE);
  const messages = win.sent.map((r) => r.body.events.map((e) => e.properties.message_id || e.properties.feature_name).join());
  assert.deepEqual(messages.sort(), ['f1', 'f2', 'refused']);
  assert.equal(tag.pending(), 0);
  assert.ok(win.warnings.some((w) => w.includes('event over the service\'s 1048576 bytes, dropping it')));
  assert.ok(win.warnings.some((w) => w.includes('service refused a batch (413), dropping 1 events')));
});

test('on hide, an event too large for the beacons waits, and the smaller ones behind it go', async () => {
  const win = fakeWindow();
  const tag = install(win, { consent: true, flushIntervalMs: 60_000, captureErrors: false, capturePageLoad: false });
  tag.push(bigChat('big'));
  tag.featureUsage({ feature_name: 'f1', action: 'open', success: true });
  win.document.visibilityState = 'hidden';
  win.fire('doc:visibilitychange');
  const bodies = await Promise.all(win.beacons.map(async (b) => JSON.parse(await b.blob.text())));
  assert.deepEqual(bodies.flatMap((b) => b.events.map((e) => e.properties.feature_name)), ['f1']);
  assert.equal(tag.pending(), 1); // the large one, for fetch on this or the next page
  assert.match(bodies[0].sent_at, /^2026-11-25T12:00:00\.000Z$/);
});

// --- sent_at: the page's clock at sending ---------------------------------------------------

test('sent_at is the page\'s clock when sent, not when the event was captured', async () => {
  const win = fakeWindow({ navigator: { onLine: false }, reply: (_, n) => (n === 1 ? new Error('offline') : response(202)) });
  const { tag } = create(win, { requireConsent: false, flushIntervalMs: 0, retryBaseMs: 1000 });
  const t0 = new Date(win.Date.now()).toISOString();
  tag.push(chat(1));
  await win.advance(3 * DAY); // queued offline for three days
  win.navigator.onLine = true;
  await tag.flush(); // fails: retried from the queue
  await win.advance(5000);
  assert.equal(win.sent.length, 2);
  for (const request of win.sent) {
    assert.deepEqual(Object.keys(request.body), ['events', 'context', 'sent_at']);
    assert.equal(request.body.sent_at, new Date(request.at).toISOString());
    assert.equal(request.body.events[0].timestamp, t0);
  }
  assert.equal(win.sent[0].body.sent_at, new Date(Date.parse(t0) + 3 * DAY).toISOString());
  assert.ok(win.sent[1].at > win.sent[0].at, 'the retry carries its own time');
  assert.equal(tag.pending(), 0);
});

// --- Identity: the user when known, the anonymous id always ----------------------------------

function contexts(win) {
  return win.sent.map((r) => r.body.context);
}

test('user_id is sent only when known; every context carries the anonymous id', async () => {
  const refused = ['none', 'Unknown', '0', 'false', '[object Object]', 'user_id', 'u\u0000x', 'x'.repeat(257)];
  for (const userId of [undefined, null, '', '   ', 'anonymous', 'Anonymous', 'undefined', 'null', ...refused]) {
    const win = fakeWindow();
    const { tag } = create(win, { requireConsent: false, flushIntervalMs: 0, userId });
    tag.push(chat(1));
    await win.advance(0);
    const [context] = contexts(win);
    assert.ok(!('user_id' in context), `userId ${JSON.stringify(userId)}: ${JSON.stringify(context)}`);
    assert.match(context.anonymous_id, UUID);
  }
  const win = fakeWindow();
  const { tag } = create(win, { requireConsent: false, flushIntervalMs: 0 });
  for (const [id, expected] of [['u7', 'u7'], [' u8 ', 'u8'], [42, '42'], ['null', undefined], ['u9', 'u9'], ['', undefined]]) {
    tag.identify(id);
    tag.push(chat(1));
    await win.advance(0);
    assert.equal(contexts(win).at(-1).user_id, expected, `identify(${JSON.stringify(id)})`);
  }
  assert.equal(new Set(contexts(win).map((c) => c.anonymous_id)).size, 1, 'identify keeps the anonymous id');
});

test('the user ids the tag leaves out include every placeholder the service refuses', async () => {
  // The service refuses the whole request for one (ingest/identity.py): a drift loses batches.
  const source = readFileSync(new URL('../../src/netra_analytics/ingest/identity.py', import.meta.url), 'utf8');
  const block = source.match(/PLACEHOLDER_IDS = frozenset\(\s*\{([^}]*)\}/);
  assert.ok(block, 'PLACEHOLDER_IDS not found in identity.py');
  const placeholders = [...block[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  assert.ok(placeholders.length >= 5, placeholders.join());
  const win = fakeWindow();
  const { tag } = create(win, { requireConsent: false, flushIntervalMs: 0 });
  for (const id of placeholders.flatMap((p) => [p, p.toUpperCase(), ` ${p} `])) {
    tag.identify(id);
    tag.push(chat(1));
    await win.advance(0);
    assert.ok(!('user_id' in contexts(win).at(-1)), `identify(${JSON.stringify(id)}) sent it as a user id`);
  }
});

test('the anonymous id is stable across tag instances sharing storage', async () => {
  const storage = memoryStorage();
  const first = fakeWindow({ localStorage: storage });
  create(first, { consent: true, flushIntervalMs: 0 }).tag.push(chat(1));
  await first.advance(0);
  const second = fakeWindow({ localStorage: storage }); // another tab, or the next page
  create(second, { consent: true, flushIntervalMs: 0 }).tag.push(chat(2));
  await second.advance(0);
  const [a, b] = [contexts(first)[0].anonymous_id, contexts(second)[0].anonymous_id];
  assert.match(a, UUID);
  assert.equal(b, a);
  assert.equal(storage.getItem('netra_analytics_anonymous_id'), a);
  const stranger = fakeWindow(); // another browser
  create(stranger, { consent: true, flushIntervalMs: 0 }).tag.push(chat(3));
  await stranger.advance(0);
  assert.notEqual(contexts(stranger)[0].anonymous_id, a);
});

test('before consent the anonymous id lives in the page only; consent stores it, withdrawal forgets it', async () => {
  const win = fakeWindow();
  const { tag } = create(win, { flushIntervalMs: 0 });
  tag.push(chat(1));
  const id = tag.anonymousId();
  assert.match(id, UUID);
  assert.equal(win.localStorage.getItem('netra_analytics_anonymous_id'), null, 'not persisted before consent');
  assert.equal(win.localStorage.items.size, 0);
  tag.setConsent(true);
  assert.equal(win.localStorage.getItem('netra_analytics_anonymous_id'), id, 'persisted once consent is given');
  await win.advance(0);
  assert.equal(contexts(win)[0].anonymous_id, id, 'the event from before consent carries the same id');
  tag.setConsent(false);
  assert.equal(win.localStorage.getItem('netra_analytics_anonymous_id'), null);
  assert.notEqual(tag.anonymousId(), id);
});

test('GTM Consent Mode\'s default "denied" on each page keeps the stored anonymous id', async () => {
  const storage = memoryStorage();
  storage.setItem('netra_analytics_anonymous_id', 'a6c4b3c2-6f1e-4d7a-9b1a-2f0c1d2e3f40'); // from an earlier page
  const win = fakeWindow({ localStorage: storage });
  win.dataLayer = [['consent', 'default', { analytics_storage: 'denied' }]];
  const tag = install(win, { flushIntervalMs: 0, capturePageLoad: false });
  (function () { win.dataLayer.push(arguments); })('consent', 'update', { analytics_storage: 'granted' });
  tag.featureUsage({ feature_name: 'f1', action: 'open', success: true });
  await win.advance(0);
  assert.equal(contexts(win)[0].anonymous_id, 'a6c4b3c2-6f1e-4d7a-9b1a-2f0c1d2e3f40');
  (function () { win.dataLayer.push(arguments); })('consent', 'update', { analytics_storage: 'denied' });
  assert.equal(storage.getItem('netra_analytics_anonymous_id'), null, 'withdrawn: forgotten');
});

test('reset (sign-out) drops the user id and starts a new anonymous id', async () => {
  const win = fakeWindow();
  const { tag } = create(win, { consent: true, flushIntervalMs: 0, userId: 'u1' });
  tag.push(chat(1));
  await win.advance(0);
  tag.reset();
  tag.push(chat(2));
  await win.advance(0);
  const [before, after] = contexts(win);
  assert.equal(before.user_id, 'u1');
  assert.ok(!('user_id' in after));
  assert.match(after.anonymous_id, UUID);
  assert.notEqual(after.anonymous_id, before.anonymous_id);
  assert.equal(win.localStorage.getItem('netra_analytics_anonymous_id'), after.anonymous_id);
});

test('events queued by tag 1.0.0 are sent with the anonymous id instead of user "anonymous"', async () => {
  const storage = memoryStorage();
  const old = (user, n) => ({ t: Date.UTC(2026, 10, 25, 11), ctx: JSON.stringify({ user_id: user, session_id: 's1', page_path: '/' }),
    ev: { event_type: 'feature_usage', event_id: crypto.randomUUID(), timestamp: '2026-11-25T11:00:00.000Z', properties: chat(n) } });
  storage.setItem('netra_analytics_queue', JSON.stringify([old('anonymous', 1), old('u1', 2)]));
  const win = fakeWindow({ localStorage: storage });
  const { tag } = create(win, { consent: true, flushIntervalMs: 0 });
  await win.advance(0);
  const [anonymous, signedIn] = contexts(win);
  assert.deepEqual(anonymous, { session_id: 's1', page_path: '/', anonymous_id: tag.anonymousId() });
  assert.deepEqual(signedIn, { user_id: 'u1', session_id: 's1', page_path: '/', anonymous_id: tag.anonymousId() });
  assert.equal(tag.pending(), 0);
});
