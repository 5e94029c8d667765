/*!
 * Netra Analytics browser tag. No dependencies; served minified by the service at
 * /tag/<version>/netra-analytics.js. Configure with window.netraAnalyticsConfig before loading,
 * or netraAnalytics.init({...}) after. See the README's "Browser tag and GTM" section.
 */
(function (root, factory) {
  var api = factory();
  if (typeof module === 'object' && module.exports) module.exports = api;
  var early = root && root.netraAnalytics;
  if (root && root.document && (!early || early.q)) { // replay what a loader stub queued
    var tag = api.install(root, root.netraAnalyticsConfig);
    ((early && early.q) || []).forEach(function (event) { tag.push(event); });
  }
})(typeof window !== 'undefined' ? window : this, function () {
  'use strict';

  var VERSION = '1.1.0';
  var QUEUE_KEY = 'netra_analytics_queue';
  var SESSION_KEY = 'netra_analytics_session';
  var ANONYMOUS_KEY = 'netra_analytics_anonymous_id';
  var BEACON_BUDGET = 60000; // bytes; browsers allow 64 KiB of keepalive/beacon bodies in flight
  var BEACON_CHUNK = 16000; // several small beacons: one the browser refuses costs less
  var MAX_BODY = 1048576; // the service refuses larger bodies (413): such an event can never go
  // What integrations pass for "no user" (the service's list of placeholders): sent as a user id,
  // it would make every visitor one user, and the service refuses the whole request for it.
  var NO_USER = /^(anonymous|anon|undefined|null|none|nil|nan|unknown|\[object object\]|0|-1|false|true|user_id|anonymous_id)?$/i;
  var RESERVED = { event_type: 1, event_id: 1, timestamp: 1, session_id: 1, properties: 1, event: 1 };
  // Required properties per event type, as the service's taxonomy defines them.
  var REQUIRED = {
    chat_interaction: 'thread_id message_id message_type prompt_length is_follow_up',
    thread_lifecycle: 'thread_id action',
    feature_usage: 'feature_name action success',
    survey_response: 'survey_id question_id question_type',
    feedback_submission: 'feedback_type',
    performance_metric: 'metric_type duration_ms success',
    error_tracking: 'error_type error_message user_impact'
  };
  var DEFAULTS = {
    endpoint: '/api/analytics/events',
    heartbeatEndpoint: '', // default: the endpoint with /events replaced by /tag/heartbeat
    userId: '',
    gtmContainerId: '',
    environment: '',
    appVersion: '',
    batchSize: 20,
    flushIntervalMs: 2000,
    maxQueue: 1000,
    maxAgeMs: 7 * 24 * 3600 * 1000,
    sessionTimeoutMs: 30 * 60 * 1000,
    retryBaseMs: 1000,
    retryMaxMs: 5 * 60 * 1000,
    heartbeatMs: 5 * 60 * 1000,
    requireConsent: true,
    respectDoNotTrack: true,
    captureChat: true,
    capturePageLoad: true,
    captureErrors: true,
    debug: false
  };

  function uuid(win) {
    var c = win.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = '';
    for (var j = 0; j < 16; j++) h += (b[j] + 256).toString(16).slice(1) + (j === 3 || j === 5 || j === 7 || j === 9 ? '-' : '');
    return h;
  }

  // Text the service can store, cut to at most n UTF-16 units (no limit without n). A cut never
  // splits a surrogate pair (an emoji that does not fit is left out whole), and a lone surrogate,
  // which JSON.stringify would write as a \ud83d escape the service refuses, becomes U+FFFD.
  function cut(value, n) {
    var s = String(value).replace(/[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]/g, function (c) {
      return c.length > 1 ? c : String.fromCharCode(65533); // not '\ufffd': the minified file stays ASCII
    });
    return s.length > n ? s.slice(0, /[\ud800-\udbff]/.test(s.charAt(n - 1)) ? n - 1 : n) : s;
  }

  // JSON.stringify replacer: every string in an event, however deep, made storable.
  function storable(key, value) {
    return typeof value === 'string' ? cut(value) : value;
  }

  // The signed-in user's id, or '' when there is none: blank, a stand-in like 'anonymous', or
  // an id the service would refuse the whole request for (control characters, over 256).
  function userOf(id) {
    var s = id == null ? '' : cut(id).trim();
    return NO_USER.test(s) || /[\x00-\x1f\x7f-\x9f]/.test(s) || s.length > 256 ? '' : s;
  }

  // Byte length of a string as UTF-8, without TextEncoder (older browsers).
  function utf8Length(s) {
    return unescape(encodeURIComponent(s)).length;
  }

  // Groups of items sharing one context, each serialised under `limit` bytes (an item larger
  // than that goes alone). sentAt: the page's clock at sending, for the service to correct
  // event times by the client's clock skew.
  function chunk(items, limit, sentAt) {
    var out = [];
    var current = null;
    for (var i = 0; i < items.length; i++) {
      var it = items[i];
      var ev = JSON.stringify(it.ev, storable);
      var size = utf8Length(ev) + 1;
      if (!current || current.ctx !== it.ctx || current.size + size > limit) {
        current = { ctx: it.ctx, items: [], parts: [], size: utf8Length(it.ctx) + 64 };
        out.push(current);
      }
      current.items.push(it);
      current.parts.push(ev);
      current.size += size;
    }
    return out.map(function (c) {
      return { items: c.items, body: '{"events":[' + c.parts.join(',') + '],"context":' + c.ctx + ',"sent_at":"' + sentAt + '"}' };
    });
  }

  function backoff(attempt, base, max, random) {
    var ceiling = Math.min(max, base * Math.pow(2, attempt));
    return Math.round(ceiling / 2 + random() * ceiling / 2); // "equal jitter"
  }

  function create(win, options) {
    var cfg = {};
    var k;
    for (k in DEFAULTS) cfg[k] = DEFAULTS[k];
    var nav = win.navigator || {};
    var doc = win.document;
    var now = function () { return (win.Date || Date).now(); }; // window.Date: a clock tests can move
    var memoryQueue = []; // while storage is unavailable or consent not yet given
    var inFlight = {};
    var attempt = 0;
    var retryAt = 0;
    var timer = null;
    var consent = null; // null: unknown, true: granted, false: denied
    var started = false;
    var pageSession = null; // the session while it may not be stored
    var pageAnonymous = ''; // the anonymous id while it may not be stored
    var keptAlive = 0; // bytes of keepalive bodies in flight: the browsers' 64 KiB is for all of them
    var tag = {
      version: VERSION,
      sessionId: '',
      init: init,
      push: push,
      flush: flush,
      flushOnHide: flushOnHide,
      setConsent: setConsent,
      anonymousId: anonymousId,
      // Signed in: following events carry the user id beside the anonymous id, which is how the
      // service links this browser's events to the person. Blank or a stand-in: signed out.
      identify: function (id) { cfg.userId = userOf(id); },
      // Signed out (a shared computer's next visitor is someone else): no user, a new anonymous id.
      reset: function () { cfg.userId = ''; newAnonymousId(); },
      pending: function () { return load().length; }
    };

    function log() {
      if (cfg.debug && win.console) win.console.warn.apply(win.console, ['[netra-analytics]'].concat([].slice.call(arguments)));
    }

    function blocked() {
      if (!cfg.respectDoNotTrack) return false;
      return nav.doNotTrack === '1' || win.doNotTrack === '1' || nav.globalPrivacyControl === true;
    }

    function allowed() {
      return !blocked() && (consent === true || (!cfg.requireConsent && consent !== false));
    }

    // --- queue in localStorage (shared by tabs; the service drops repeated event ids) ---
    function store() {
      try { return allowed() ? win.localStorage : null; } catch (e) { return null; }
    }

    // Storage when allowed and working; memory before consent, or once storage has failed.
    function load() {
      var s = store();
      if (!s || memoryQueue.length) return memoryQueue;
      try {
        var items = JSON.parse(s.getItem(QUEUE_KEY) || '[]');
        return Array.isArray(items) ? items : [];
      } catch (e) { return []; }
    }

    function save(items) {
      var cutoff = now() - cfg.maxAgeMs;
      items = items.filter(function (it) { return it.t >= cutoff; });
      if (items.length > cfg.maxQueue) items = items.slice(items.length - cfg.maxQueue);
      var s = store();
      if (s) {
        try {
          s.setItem(QUEUE_KEY, JSON.stringify(items));
          memoryQueue = [];
          return;
        } catch (e) { log('storage full', e); }
      }
      memoryQueue = items;
    }

    function remove(ids) {
      var gone = {};
      ids.forEach(function (id) { gone[id] = 1; delete inFlight[id]; });
      save(load().filter(function (it) { return !gone[it.ev.event_id]; }));
    }

    // --- session: kept in sessionStorage, renewed after sessionTimeoutMs without activity ---
    function session() {
      var t = now();
      var s = null;
      try {
        s = JSON.parse(win.sessionStorage.getItem(SESSION_KEY) || 'null') || pageSession;
      } catch (e) { s = pageSession; }
      if (!s || !s.id || t - s.last > cfg.sessionTimeoutMs) s = { id: uuid(win), last: t };
      s.last = t;
      if (allowed()) { // an identifier stays in the page's memory until consent
        try { win.sessionStorage.setItem(SESSION_KEY, JSON.stringify(s)); } catch (e) { /* private mode */ }
      } else pageSession = s;
      tag.sessionId = s.id;
      return s.id;
    }

    // --- anonymous id: one per browser, in localStorage under the same consent as the queue ---
    // Read from storage even before consent (so that events from before consent carry the id the
    // browser already has), but written only once allowed.
    function anonymousId() {
      var stored = '';
      try { stored = win.localStorage.getItem(ANONYMOUS_KEY) || ''; } catch (e) { /* no storage */ }
      pageAnonymous = stored || pageAnonymous || uuid(win);
      var s = store();
      if (s && stored !== pageAnonymous) {
        try { s.setItem(ANONYMOUS_KEY, pageAnonymous); } catch (e) { /* full or private mode */ }
      }
      return pageAnonymous;
    }

    function newAnonymousId() {
      try { win.localStorage.removeItem(ANONYMOUS_KEY); } catch (e) { /* no storage */ }
      pageAnonymous = uuid(win);
    }

    function context(sessionId) {
      var loc = win.location || {};
      return JSON.stringify({
        user_id: userOf(cfg.userId) || undefined, // left out when unknown: the anonymous id stands in
        anonymous_id: anonymousId(),
        session_id: sessionId,
        page_path: cut(loc.pathname || '', 2048),
        page_title: cut((doc && doc.title) || '', 2048),
        referrer: cut((doc && doc.referrer) || '', 2048),
        gtm_container_id: cfg.gtmContainerId,
        environment: cfg.environment,
        app_version: cfg.appVersion
      }, storable);
    }

    // Contexts queued by tag 1.0.0 have no anonymous id and may say user_id 'anonymous', which
    // the service refuses: give them this browser's anonymous id instead.
    function upgrade(it) {
      if (it.ctx.indexOf('"anonymous_id"') < 0) {
        var c = JSON.parse(it.ctx);
        c.user_id = userOf(c.user_id) || undefined;
        c.anonymous_id = anonymousId();
        it.ctx = JSON.stringify(c);
      }
      return it;
    }

    function check(ev) {
      var required = REQUIRED[ev.event_type];
      if (!required) return ['unknown event_type ' + JSON.stringify(ev.event_type)];
      return required.split(' ').filter(function (f) { return ev.properties[f] === undefined; })
        .map(function (f) { return ev.event_type + ': missing required property ' + f; });
    }

    // The spec's API: enrich with session_id and timestamp, push to dataLayer, send.
    function push(data) {
      if (!data || typeof data !== 'object') return null;
      if (blocked()) return null;
      var props = {};
      var p;
      if (data.properties && typeof data.properties === 'object') for (p in data.properties) props[p] = data.properties[p];
      for (p in data) if (!RESERVED[p]) props[p] = data[p];
      var sid = session();
      var ev = {
        event_type: data.event_type,
        event_id: data.event_id || uuid(win),
        timestamp: new Date(now()).toISOString(),
        properties: props
      };
      var problems = check(ev);
      if (problems.length) log('bad event (the service will reject it):', problems.join('; '), ev);
      var layer = (win.dataLayer = win.dataLayer || []);
      var entry = { event: 'netra_analytics_event', event_type: ev.event_type, event_id: ev.event_id, session_id: sid, timestamp: ev.timestamp };
      for (p in props) if (!(p in entry)) entry[p] = props[p];
      layer.push(entry);
      if (consent === false) return ev.event_id; // denied: nothing is kept or sent
      var items = load();
      items.push({ t: now(), ctx: context(sid), ev: ev });
      save(items);
      if (items.length >= cfg.batchSize) flush();
      else schedule(cfg.flushIntervalMs);
      return ev.event_id;
    }

    function schedule(delay) {
      if (timer !== null) return;
      timer = win.setTimeout(function () { timer = null; flush(); }, Math.max(0, delay));
    }

    function retryLater(ms) {
      retryAt = now() + ms;
      if (timer !== null) { win.clearTimeout(timer); timer = null; }
      schedule(ms);
    }

    function sendable() {
      return load().filter(function (it) { return !inFlight[it.ev.event_id]; }).map(upgrade);
    }

    function sentAt() {
      return new Date(now()).toISOString();
    }

    function flush() {
      if (!allowed() || nav.onLine === false || now() < retryAt || !win.fetch) return Promise.resolve(false);
      var batch = chunk(sendable().slice(0, cfg.batchSize), BEACON_BUDGET, sentAt())[0];
      if (!batch) return Promise.resolve(true);
      if (timer !== null) { win.clearTimeout(timer); timer = null; } // this send serves the timer too
      var ids = batch.items.map(function (it) { return it.ev.event_id; });
      var size = utf8Length(batch.body);
      if (size > MAX_BODY) { // one event alone (batches of several stay under BEACON_BUDGET)
        log('event over the service\'s ' + MAX_BODY + ' bytes, dropping it', batch.items[0].ev);
        remove(ids);
        return flush();
      }
      // Browsers refuse a keepalive body that takes the ones in flight past 64 KiB, whatever
      // the network: a larger body goes without keepalive (if the page closes first, it stays
      // queued for the next page).
      var keepalive = keptAlive + size <= BEACON_BUDGET;
      if (keepalive) keptAlive += size;
      ids.forEach(function (id) { inFlight[id] = 1; });
      var sending = win.fetch(cfg.endpoint, {
        method: 'POST',
        body: batch.body,
        headers: { 'content-type': 'text/plain;charset=UTF-8' },
        keepalive: keepalive,
        credentials: 'omit'
      }).then(function (res) {
        if (keepalive) keptAlive -= size;
        return handle(res, batch.items, ids);
      }, function (err) {
        if (keepalive) keptAlive -= size;
        ids.forEach(function (id) { delete inFlight[id]; });
        failed('network error', err);
        return false;
      });
      if (size > BEACON_BUDGET) flush(); // the events behind a large one do not wait for it
      return sending;
    }

    function header(res, name) {
      var value = res.headers && res.headers.get ? parseFloat(res.headers.get(name) || '') : NaN;
      return isNaN(value) ? -1 : value;
    }

    function failed(why, detail) {
      var delay = backoff(attempt++, cfg.retryBaseMs, cfg.retryMaxMs, Math.random);
      log(why + '; retrying in ' + delay + ' ms', detail || '');
      retryLater(delay);
    }

    function handle(res, items, ids) {
      var status = res.status;
      if (status === 429 || status >= 500) {
        ids.forEach(function (id) { delete inFlight[id]; });
        var after = header(res, 'retry-after');
        if (after >= 0) {
          attempt++;
          log('service answered ' + status + '; retrying in ' + after + ' s (Retry-After)');
          retryLater(after * 1000);
        } else failed('service answered ' + status);
        return false;
      }
      if (status >= 400) { // the whole request was refused (400, 413, 415): it cannot succeed
        log('service refused a batch (' + status + '), dropping ' + ids.length + ' events');
        remove(ids);
        return true;
      }
      attempt = 0;
      retryAt = 0;
      return res.json().then(function (reply) {
        var keep = {};
        var wait = 0;
        (reply.rejected || []).forEach(function (r) {
          var it = items[r.index];
          if (!it) return;
          if (r.reason === 'rate_limited') {
            keep[it.ev.event_id] = 1;
            wait = Math.max(1, header(res, 'x-ratelimit-reset')) * 1000 || 60000;
          } else log('event rejected:', r.reason, JSON.stringify(r.errors || []), it.ev);
        });
        remove(ids.filter(function (id) { return !keep[id]; }));
        ids.forEach(function (id) { delete inFlight[id]; });
        if (wait) retryLater(wait);
        else if (sendable().length) schedule(0);
        return true;
      }, function () {
        remove(ids); // a 2xx means stored, whatever its body
        return true;
      });
    }

    // Page hidden or leaving: hand what is queued to the browser in beacons under 64 KB in all.
    // A batch leaves the queue only once the browser has taken it.
    function flushOnHide() {
      if (!allowed()) return 0;
      var budget = BEACON_BUDGET;
      var sent = 0;
      var batches = chunk(sendable(), BEACON_CHUNK, sentAt());
      for (var i = 0; i < batches.length; i++) {
        var size = utf8Length(batches[i].body);
        if (size > budget) continue; // a large event waits for the next page; smaller ones may fit
        var ok = false;
        try {
          if (nav.sendBeacon) ok = nav.sendBeacon(cfg.endpoint, new win.Blob([batches[i].body], { type: 'text/plain;charset=UTF-8' }));
        } catch (e) { ok = false; }
        if (!ok) break; // the browser's queue is full: the rest stays queued for the next page
        budget -= size;
        sent += batches[i].items.length;
        remove(batches[i].items.map(function (it) { return it.ev.event_id; }));
      }
      return sent;
    }

    function setConsent(granted) {
      var was = allowed();
      var held = consent === true ? [] : memoryQueue;
      consent = !!granted;
      if (!consent) { // withdrawn: forget what is waiting, here and in storage
        memoryQueue = [];
        try { win.localStorage.removeItem(QUEUE_KEY); } catch (e) { /* no storage */ }
        // And the anonymous id, when this page had consent: GTM Consent Mode's 'default' denied
        // comes on every page before the 'update', and would make every page a new visitor.
        if (was) newAnonymousId();
        return;
      }
      if (!was && allowed()) {
        memoryQueue = [];
        if (held.length) save(load().concat(held));
        anonymousId(); // now it may be kept
        start();
        flush();
      }
    }

    // GTM Consent Mode: gtag('consent', 'default'|'update', {analytics_storage: ...}) lands in
    // the dataLayer as an Arguments object; read those already there and watch for new ones.
    function watchConsentMode() {
      var layer = (win.dataLayer = win.dataLayer || []);
      var read = function (entry) {
        if (entry && entry[0] === 'consent' && entry[2] && entry[2].analytics_storage) {
          setConsent(entry[2].analytics_storage === 'granted');
        }
      };
      for (var i = 0; i < layer.length; i++) read(layer[i]);
      var original = layer.push;
      layer.push = function () {
        for (var j = 0; j < arguments.length; j++) read(arguments[j]);
        return original.apply(layer, arguments);
      };
    }

    function heartbeat() {
      if (!allowed() || !win.fetch) return;
      var base = cfg.heartbeatEndpoint || cfg.endpoint.replace(/\/events$/, '/tag/heartbeat');
      var url = base + '?container=' + encodeURIComponent(cfg.gtmContainerId || 'none') + '&version=' + VERSION;
      win.fetch(url, { method: 'POST', keepalive: true, credentials: 'omit' }).catch(function () {});
    }

    function start() {
      if (started || !allowed()) return;
      started = true;
      heartbeat();
      if (cfg.heartbeatMs > 0) win.setInterval(function () { if (!doc || doc.visibilityState !== 'hidden') heartbeat(); }, cfg.heartbeatMs);
      if (sendable().length) schedule(0);
    }

    function capture() {
      if (!doc || !win.addEventListener) return;
      if (cfg.captureChat) {
        doc.addEventListener('netra_chat_message', function (e) {
          var d = e.detail || {};
          var out = { event_type: 'chat_interaction' };
          for (var p in d) out[p] = d[p];
          push(out);
        });
      }
      if (cfg.capturePageLoad) {
        var sendLoad = function () {
          win.setTimeout(function () {
            var perf = win.performance;
            var nt = perf && perf.getEntriesByType && perf.getEntriesByType('navigation')[0];
            if (!nt) return;
            push({
              event_type: 'performance_metric',
              metric_type: 'page_load',
              duration_ms: Math.round(nt.loadEventEnd || nt.duration || 0),
              success: true
            });
          }, 0);
        };
        if (doc.readyState === 'complete') sendLoad();
        else win.addEventListener('load', sendLoad);
      }
      if (cfg.captureErrors) {
        win.addEventListener('error', function (e) {
          push({
            event_type: 'error_tracking',
            error_type: (e.error && e.error.name) || 'Error',
            error_message: cut(e.message || 'unknown error', 1000),
            stack_trace: cut((e.error && e.error.stack) || (e.filename ? e.filename + ':' + e.lineno + ':' + e.colno : ''), 4000),
            user_impact: 'medium'
          });
        });
        win.addEventListener('unhandledrejection', function (e) {
          var r = e.reason || {};
          push({
            event_type: 'error_tracking',
            error_type: r.name || 'UnhandledRejection',
            error_message: cut(r.message || r, 1000),
            stack_trace: cut(r.stack || '', 4000),
            user_impact: 'medium'
          });
        });
      }
      doc.addEventListener('visibilitychange', function () {
        if (doc.visibilityState === 'hidden') flushOnHide();
      });
      win.addEventListener('pagehide', flushOnHide);
      win.addEventListener('online', function () { retryAt = 0; flush(); });
    }

    function init(options) {
      for (var key in options || {}) if (key in DEFAULTS) cfg[key] = options[key];
      if (options && options.consent !== undefined) setConsent(options.consent);
      start();
      return tag;
    }

    init(options);
    return { tag: tag, capture: capture, watchConsentMode: watchConsentMode };
  }

  function install(win, options) {
    var made = create(win, options);
    var tag = made.tag;
    Object.keys(REQUIRED).forEach(function (type) {
      var name = type.replace(/_(\w)/g, function (m, c) { return c.toUpperCase(); });
      tag[name] = function (props) { return tag.push({ event_type: type, properties: props || {} }); };
    });
    win.netraAnalytics = tag;
    made.watchConsentMode();
    made.capture();
    return tag;
  }

  return { create: create, install: install, chunk: chunk, backoff: backoff, cut: cut, VERSION: VERSION };
});
