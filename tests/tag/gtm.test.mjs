// The GTM packaging: the Custom Template's sandboxed code run against stand-ins of GTM's APIs,
// and the Custom HTML snippet run in a fake page, where it loads and feeds the real tag.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import vm from 'node:vm';

const dir = new URL('../../src/netra_analytics/tag/', import.meta.url);
const read = (name) => readFileSync(new URL(name, dir), 'utf8');
const TAG_SOURCE = read('netra-analytics.js');
const VERSION = TAG_SOURCE.match(/var VERSION = '([\d.]+)'/)[1];

function sections(tpl) {
  const out = {};
  const parts = tpl.split(/^___([A-Z_]+)___$/m);
  for (let i = 1; i < parts.length; i += 2) out[parts[i]] = parts[i + 1].trim();
  return out;
}

function runTemplate(data, { consentGranted }) {
  const calls = { setInWindow: [], injectScript: [], callInWindow: [], listeners: [], success: 0, failure: 0 };
  const apis = {
    injectScript: (url, onSuccess, onFailure, cacheToken) => calls.injectScript.push({ url, onSuccess, onFailure, cacheToken }),
    setInWindow: (key, value, overwrite) => calls.setInWindow.push({ key, value, overwrite }),
    callInWindow: (path, ...args) => calls.callInWindow.push({ path, args }),
    isConsentGranted: (type) => type === 'analytics_storage' && consentGranted,
    addConsentListener: (type, fn) => calls.listeners.push({ type, fn }),
    getContainerVersion: () => ({ containerId: 'GTM-TPL123' }),
    makeNumber: (v) => Number(v),
    logToConsole: () => {},
  };
  const code = sections(read('netra-analytics.tpl')).SANDBOXED_JS_FOR_WEB_TEMPLATE;
  const full = { ...data, gtmOnSuccess: () => calls.success++, gtmOnFailure: () => calls.failure++ };
  vm.runInNewContext(code, { require: (name) => apis[name], data: full });
  return calls;
}

test('the template file has every section, as JSON where GTM expects JSON', () => {
  const parts = sections(read('netra-analytics.tpl'));
  for (const name of ['INFO', 'TEMPLATE_PARAMETERS', 'SANDBOXED_JS_FOR_WEB_TEMPLATE', 'WEB_PERMISSIONS', 'TESTS']) {
    assert.ok(parts[name], `section ${name}`);
  }
  assert.equal(JSON.parse(parts.INFO).type, 'TAG');
  const fields = JSON.parse(parts.TEMPLATE_PARAMETERS).flatMap((p) => [p, ...(p.subParams || [])]).map((p) => p.name);
  for (const field of ['serviceUrl', 'userId', 'consentMode', 'captureChat', 'capturePageLoad', 'captureErrors', 'debug']) {
    assert.ok(fields.includes(field), field);
  }
  const permissions = JSON.parse(parts.WEB_PERMISSIONS).map((p) => p.instance.key.publicId);
  assert.deepEqual(permissions.sort(), ['access_consent', 'access_globals', 'inject_script', 'logging', 'read_container_data']);
});

test('the template loads this version of the tag and configures it from its fields', () => {
  const calls = runTemplate({ serviceUrl: 'https://analytics.example.com', userId: 'u9', consentMode: 'consent_mode',
    environment: 'staging', batchSize: '10', captureErrors: false }, { consentGranted: false });
  const [{ url, onSuccess, cacheToken }] = calls.injectScript;
  assert.equal(url, `https://analytics.example.com/tag/${VERSION}/netra-analytics.js`);
  assert.equal(cacheToken, `netra-analytics-${VERSION}`);
  const [{ key, value }] = calls.setInWindow;
  assert.equal(key, 'netraAnalyticsConfig');
  assert.equal(value.endpoint, 'https://analytics.example.com/api/analytics/events');
  assert.equal(value.gtmContainerId, 'GTM-TPL123');
  assert.equal(value.userId, 'u9');
  assert.equal(value.batchSize, 10);
  assert.equal(value.captureErrors, false);
  assert.equal(value.requireConsent, true);
  assert.equal(value.consent, undefined); // not granted yet: the tag waits
  onSuccess();
  assert.equal(calls.success, 1);
  const [listener] = calls.listeners;
  assert.equal(listener.type, 'analytics_storage');
  listener.fn('analytics_storage', true);
  assert.deepEqual(calls.callInWindow, [{ path: 'netraAnalytics.setConsent', args: [true] }]);
});

test('the template passes consent already granted, and can leave consent to the site', () => {
  const granted = runTemplate({ serviceUrl: 'https://a.example', consentMode: 'consent_mode' }, { consentGranted: true });
  assert.equal(granted.setInWindow[0].value.consent, true);
  const elsewhere = runTemplate({ serviceUrl: 'https://a.example', consentMode: 'not_required' }, { consentGranted: false });
  assert.equal(elsewhere.setInWindow[0].value.requireConsent, false);
  elsewhere.injectScript[0].onSuccess();
  assert.equal(elsewhere.listeners.length, 0);
});

test('the Custom HTML snippet loads this version and replays events pushed before the tag', async () => {
  const html = read('gtm-custom-html.html');
  const script = html.match(/<script>([\s\S]*)<\/script>/)[1]
    .replace('{{Netra User ID}}', '"u-html"').replace('{{Container ID}}', '"GTM-HTML01"')
    .replace('{{Environment Name}}', '"live"').replace('{{Debug Mode}}', 'false');
  const appended = [];
  const sent = [];
  const listeners = {};
  const window = {
    document: {
      head: { appendChild: (el) => appended.push(el) },
      createElement: () => ({}),
      addEventListener: () => {},
      readyState: 'loading',
      title: 'Page',
      referrer: '',
    },
    navigator: { onLine: true },
    location: { pathname: '/pricing' },
    localStorage: new Map(),
    sessionStorage: new Map(),
    crypto: globalThis.crypto,
    setTimeout: (fn) => { listeners.timer = fn; return 1; },
    clearTimeout: () => {},
    setInterval: () => 0,
    addEventListener: () => {},
    fetch: async (url, options) => { sent.push({ url, body: options.body }); return { status: 202, json: async () => ({ rejected: [] }) }; },
  };
  for (const storage of [window.localStorage, window.sessionStorage]) {
    storage.getItem = (k) => storage.get(k) ?? null;
    storage.setItem = (k, v) => storage.set(k, String(v));
    storage.removeItem = (k) => storage.delete(k);
  }
  window.window = window;
  const context = vm.createContext(window);
  vm.runInContext(script, context);
  assert.equal(appended[0].src, `https://analytics.example.com/tag/${VERSION}/netra-analytics.js`);
  assert.equal(window.netraAnalyticsConfig.gtmContainerId, 'GTM-HTML01');
  window.netraAnalytics.push({ event_type: 'feature_usage', feature_name: 'pricing', action: 'view', success: true });
  window.netraAnalyticsConfig.consent = true; // as if Consent Mode had granted it
  vm.runInContext(TAG_SOURCE, context); // the script element loads
  assert.equal(typeof window.netraAnalytics.featureUsage, 'function');
  listeners.timer();
  await new Promise((resolve) => setImmediate(resolve));
  const events = sent.filter((r) => r.body).map((r) => JSON.parse(r.body));
  assert.equal(events.length, 1);
  assert.equal(events[0].events[0].properties.feature_name, 'pricing');
  assert.equal(events[0].context.user_id, 'u-html');
  assert.equal(events[0].context.page_path, '/pricing');
});
