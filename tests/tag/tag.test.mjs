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
const { create, install, chunk, backoff } = require(TAG);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MINUTE = 60_000;

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
  assert.equal(body.context.session_id, tag.sessionId);
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
  assert.deepEqual(win.heartbeats, ['/api/analytics/tag/heartbeat?container=none&version=1.0.0']);
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
  const batches = chunk(items, 8000);
  const seen = batches.flatMap((b) => JSON.parse(b.body).events.map((e) => e.event_id));
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
