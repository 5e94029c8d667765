// One ECharts option per visualisation, built from the panel's table (columns and rows) and
// the catalog's unit: the same code draws every panel of a kind.
import { formatValue } from './format.js';

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const PALETTE = ['#3b6fd8', '#e07b39', '#2a9d8f', '#c44e6b', '#8a63d2', '#e9c46a', '#6c8a9b', '#52b788'];
const label = (name) => name.replaceAll('_', ' ');

function base(unit) {
  return {
    color: PALETTE,
    animation: false,
    grid: { left: 8, right: 16, top: 28, bottom: 8, containLabel: true },
    tooltip: { trigger: 'item', valueFormatter: (v) => formatValue(v, unit) },
  };
}

function timeseries(table, unit) {
  const series = table.columns.slice(1);
  return {
    ...base(unit),
    tooltip: { trigger: 'axis', valueFormatter: (v) => formatValue(v, unit) },
    grid: { left: 16, right: 40, top: 28, bottom: 8, containLabel: true }, // room for end labels
    legend: series.length > 1 ? { top: 0, data: series.map(label) } : undefined,
    xAxis: { type: 'category', data: table.rows.map((r) => r[0]), boundaryGap: false },
    yAxis: { type: 'value', axisLabel: { formatter: (v) => formatValue(v, unit) } },
    series: series.map((name, i) => ({
      name: label(name), type: 'line', showSymbol: table.rows.length < 40,
      areaStyle: series.length === 1 ? { opacity: 0.15 } : undefined,
      lineStyle: name.startsWith('projected') ? { type: 'dashed' } : undefined,
      data: table.rows.map((r) => r[i + 1]),
    })),
  };
}

function bar(table, unit) {
  const series = table.columns.slice(1);
  const labels = table.rows.map((r) => String(r[0]));
  if (series.length === 1) { // one series: horizontal bars, the largest on top
    return {
      ...base(unit),
      grid: { left: 8, right: 72, top: 28, bottom: 8, containLabel: true }, // room for the values
      // hideOverlap: on a phone, money labels ran into each other ("$0.00$5.00$10.00").
      xAxis: { type: 'value', axisLabel: { hideOverlap: true, formatter: (v) => formatValue(v, unit) } },
      yAxis: { type: 'category', data: labels, inverse: true },
      series: [{ name: label(series[0]), type: 'bar', data: table.rows.map((r) => r[1]),
        label: { show: true, position: 'right', formatter: (p) => formatValue(p.value, unit) } }],
    };
  }
  return {
    ...base(unit),
    tooltip: { trigger: 'axis', valueFormatter: (v) => formatValue(v, unit) },
    legend: { top: 0, data: series.map(label) },
    xAxis: { type: 'category', data: labels },
    yAxis: { type: 'value' },
    series: series.map((name, i) => ({ name: label(name), type: 'bar', data: table.rows.map((r) => r[i + 1]) })),
  };
}

function pie(table, unit) {
  return {
    ...base(unit),
    series: [{
      type: 'pie', radius: ['40%', '70%'], avoidLabelOverlap: true,
      label: { formatter: '{b}\n{d}%' },
      // Largest first, clockwise from 12 o'clock.
      data: [...table.rows].sort((a, b) => b[1] - a[1])
        .map((r) => ({ name: label(String(r[0])), value: r[1], key: r[0] })),
    }],
  };
}

function heatmap(table, unit) {
  const max = Math.max(1, ...table.rows.map((r) => r[2]));
  return {
    ...base(unit),
    tooltip: { formatter: (p) => `${WEEKDAYS[p.value[1]]} ${p.value[0]}:00 · ${formatValue(p.value[2], unit)}` },
    grid: { left: 8, right: 16, top: 8, bottom: 48, containLabel: true },
    xAxis: { type: 'category', data: [...Array(24).keys()].map(String), splitArea: { show: true } },
    yAxis: { type: 'category', data: WEEKDAYS, inverse: true, splitArea: { show: true } },
    visualMap: { min: 0, max, calculable: true, orient: 'horizontal', left: 'center', bottom: 0, itemHeight: 120 },
    series: [{ type: 'heatmap', data: table.rows.map((r) => [r[0], r[1] - 1, r[2]]) }],
  };
}

function sankey(table, unit) {
  const nodes = [...new Set(table.rows.flatMap((r) => [r[0], r[1]]))].map((name) => ({ name }));
  return {
    ...base(unit),
    series: [{
      type: 'sankey', left: 8, right: 96, top: 8, bottom: 8, nodeGap: 10, emphasis: { focus: 'adjacency' },
      data: nodes, links: table.rows.map((r) => ({ source: r[0], target: r[1], value: r[2] })),
      lineStyle: { color: 'gradient', curveness: 0.5 },
    }],
  };
}

function wordcloud(table, unit) {
  return {
    ...base(unit),
    series: [{
      type: 'wordCloud', shape: 'circle', left: 'center', top: 'center', width: '95%', height: '95%',
      sizeRange: [12, 52], rotationRange: [0, 0], gridSize: 6, drawOutOfBound: false,
      textStyle: { color: (p) => PALETTE[p.dataIndex % PALETTE.length] },
      data: table.rows.map((r) => ({ name: r[0], value: r[1] })),
    }],
  };
}

function cohortMatrix(table) {
  const cohorts = [...new Set(table.rows.map((r) => r[0]))];
  const sizes = Object.fromEntries(table.rows.map((r) => [r[0], r[1]]));
  const weeks = Math.max(...table.rows.map((r) => r[2])) + 1;
  return {
    ...base('percent'),
    tooltip: { formatter: (p) => `cohort ${cohorts[p.value[1]]}, week ${p.value[0]}: ${formatValue(p.value[2], 'percent')}` },
    grid: { left: 8, right: 16, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: 'category', data: [...Array(weeks).keys()].map((k) => `week ${k}`), position: 'top' },
    yAxis: { type: 'category', inverse: true, data: cohorts.map((c) => `${c} (${sizes[c]})`) },
    visualMap: { show: false, min: 0, max: 100, inRange: { color: ['#eef3fb', '#3b6fd8'] } },
    series: [{
      type: 'heatmap', label: { show: true, formatter: (p) => `${Math.round(p.value[2])}%` },
      data: table.rows.map((r) => [r[2], cohorts.indexOf(r[0]), r[3] === null ? 0 : 100 * r[3]]),
    }],
  };
}

function funnel(table, unit) {
  return {
    ...base(unit),
    series: [{
      type: 'funnel', sort: 'none', left: '5%', width: '90%', top: 8, bottom: 8, minSize: '8%', gap: 2,
      // Dark text on a white halo: a narrow last step's label spills over the white card, where
      // the default white-on-fill text could not be read.
      label: { position: 'inside', color: '#1f2933', textBorderColor: '#ffffff', textBorderWidth: 3,
        formatter: (p) => `${p.name}: ${formatValue(p.value, unit)} (${Math.round(100 * p.data.share)}%)` },
      data: table.rows.map((r) => ({ name: r[0], value: r[1], share: r[2] ?? 0 })),
    }],
  };
}

const BUILDERS = { timeseries, bar, pie, heatmap, sankey, wordcloud, cohort_matrix: cohortMatrix, funnel };

export function chartOption(visualisation, table, unit) {
  return BUILDERS[visualisation](table, unit);
}

// The value a click on a chart element filters by: a pie slice's or bar's label, a node's name.
export function clickedValue(visualisation, params, table) {
  if (visualisation === 'pie') return params.data && params.data.key;
  if (visualisation === 'bar') return table.rows[params.dataIndex] && String(table.rows[params.dataIndex][0]);
  if (visualisation === 'sankey') return params.dataType === 'node' ? params.name : null;
  return null;
}
