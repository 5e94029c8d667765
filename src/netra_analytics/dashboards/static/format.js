// Numbers as people read them, by the catalog's unit.

const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const one = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const two = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function formatValue(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (typeof value !== 'number') return String(value);
  switch (unit) {
    case 'usd_cents': return `$${two.format(value / 100)}`;
    case 'usd': return `$${whole.format(value)}`;
    case 'ms': return value >= 10000 ? `${one.format(value / 1000)} s` : `${whole.format(value)} ms`;
    case 'seconds': return value >= 120 ? `${Math.floor(value / 60)} min ${Math.round(value % 60)} s` : `${one.format(value)} s`;
    case 'percent': return `${one.format(value)}%`;
    case 'score': return one.format(value);
    case 'events/s': return `${one.format(value)}/s`;
    default: return Number.isInteger(value) ? whole.format(value) : one.format(value);
  }
}

// The change from the previous period: its text and direction.
export function change(value, previous) {
  if (typeof value !== 'number' || typeof previous !== 'number') {
    return { text: 'no earlier data', direction: 'none' };
  }
  if (previous === 0) {
    return value === 0 ? { text: 'unchanged', direction: 'flat' } : { text: 'new', direction: 'up' };
  }
  const percent = (100 * (value - previous)) / Math.abs(previous);
  if (Math.abs(percent) < 0.05) return { text: 'unchanged', direction: 'flat' };
  const arrow = percent > 0 ? '▲' : '▼';
  return { text: `${arrow} ${one.format(Math.abs(percent))}%`, direction: percent > 0 ? 'up' : 'down' };
}
