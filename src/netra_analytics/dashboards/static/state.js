// The view's state, held in the URL so that a view can be shared: the range (a relative span,
// or custom from/to), the filters, the refresh interval. The viewer's time zone comes from the
// browser, not the URL: a shared view shows in each viewer's own zone.

export const SPANS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };
export const FILTERS = ['environment', 'app_version', 'page_path', 'category', 'model'];
const MINUTE = 60e3;

export function readState(location) {
  const params = new URLSearchParams(location.search);
  const range = params.get('range') || '24h';
  const state = {
    range: range in SPANS || range === 'custom' ? range : '24h',
    from: params.get('from') || '',
    to: params.get('to') || '',
    refresh: params.get('refresh') || '',
    filters: {},
  };
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) state.filters[name] = value;
  }
  if (state.range === 'custom' && !(state.from && state.to)) state.range = '24h';
  return state;
}

export function writeState(state) {
  const params = new URLSearchParams();
  params.set('range', state.range);
  if (state.range === 'custom') {
    params.set('from', state.from);
    params.set('to', state.to);
  }
  if (state.refresh) params.set('refresh', state.refresh);
  for (const [name, value] of Object.entries(state.filters)) if (value) params.set(name, value);
  return `?${params.toString()}`;
}

// The range as the API takes it: ISO times, [from, to). A relative span ends at the next whole
// minute, so that the panels loaded within a minute ask the same question (and hit the cache).
export function window_(state, now = Date.now()) {
  if (state.range === 'custom') {
    return { from: new Date(state.from).toISOString(), to: new Date(state.to).toISOString() };
  }
  const end = Math.ceil((now + 1) / MINUTE) * MINUTE;
  return { from: new Date(end - SPANS[state.range]).toISOString(), to: new Date(end).toISOString() };
}

export function viewerZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

// A datetime-local input's value (local time, minutes) for an ISO time, and back.
export function toLocalInput(iso) {
  const moment = new Date(iso);
  const shifted = new Date(moment.getTime() - moment.getTimezoneOffset() * MINUTE);
  return shifted.toISOString().slice(0, 16);
}

export function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : '';
}
