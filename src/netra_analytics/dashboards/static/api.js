// The service's JSON endpoints: the catalog and one panel's table.

export class PanelError extends Error {}

async function getJson(url) {
  const reply = await fetch(url, { headers: { accept: 'application/json' } });
  if (!reply.ok) {
    let message = `${reply.status} ${reply.statusText}`;
    try {
      const body = await reply.json();
      if (body.message) message = body.message;
      else if (Array.isArray(body.detail)) message = body.detail.map((d) => d.msg).join('; ');
      else if (body.detail) message = String(body.detail);
    } catch (_) { /* not JSON: keep the status line */ }
    throw new PanelError(message);
  }
  return reply.json();
}

export function query(range, tz, filters) {
  const params = new URLSearchParams({ from: range.from, to: range.to, tz });
  for (const [name, value] of Object.entries(filters)) if (value) params.set(name, value);
  return params;
}

export function loadCatalog(range, tz) {
  return getJson(`/api/analytics/dashboards?${query(range, tz, {})}`);
}

export function panelUrl(id, params, format = 'json') {
  const all = new URLSearchParams(params);
  if (format !== 'json') all.set('format', format);
  return `/api/analytics/panels/${encodeURIComponent(id)}?${all}`;
}

export function loadPanel(id, params) {
  return getJson(panelUrl(id, params));
}
