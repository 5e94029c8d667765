// The demo page's settings, read before the tag loads (a file: the page's CSP runs no inline script).
// Demo settings from the address: ?user=...&consent=granted|denied|ask&flush=ms&retry_max=ms
// &signed_out=1 (start signed out: events carry only the browser's anonymous id)
(function () {
  var q = new URLSearchParams(location.search);
  var user = q.get('user') || localStorage.getItem('netra_demo_user');
  if (!user) { user = 'demo-' + Math.random().toString(36).slice(2, 10); localStorage.setItem('netra_demo_user', user); }
  var signedIn = q.get('signed_out') !== '1';
  window.netraDemo = { user: user, signedIn: signedIn, consent: q.get('consent') || 'ask' };
  window.dataLayer = window.dataLayer || [];
  window.netraAnalyticsConfig = {
    userId: signedIn ? user : '',
    gtmContainerId: 'GTM-DEMO001',
    environment: 'demo',
    appVersion: 'demo-1',
    flushIntervalMs: Number(q.get('flush') || 1000),
    retryMaxMs: Number(q.get('retry_max') || 300000),
    debug: true,
    consent: q.get('consent') === 'granted' ? true : q.get('consent') === 'denied' ? false : undefined
  };
})();
