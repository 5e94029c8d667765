// The built-in dashboard: reads the catalog, draws the index or one dashboard's panels, and
// keeps the range, filters and refresh in the URL. Every panel is a card whose state
// (`data-state`: loading, drawn, empty, error) says what it shows.
import { loadCatalog, loadPanel, panelUrl, query } from './api.js';
import { chartOption, clickedValue } from './charts.js';
import { change, formatValue } from './format.js';
import { FILTERS, fromLocalInput, readState, toLocalInput, viewerZone, window_, writeState } from './state.js';

const $ = (id) => document.getElementById(id);
const zone = viewerZone();
let state = readState(window.location);
let catalog = null;
let board = null;
const charts = new Map(); // panel id -> ECharts instance
const timers = [];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function pushState() {
  window.history.replaceState(null, '', `${window.location.pathname}${writeState(state)}`);
  for (const link of document.querySelectorAll('a[data-keep-query]')) {
    link.href = `${link.dataset.keepQuery}${writeState({ ...state, refresh: '' })}`;
  }
}

function renderNav() {
  const nav = $('nav');
  nav.replaceChildren();
  for (const d of catalog.dashboards) {
    const link = el('a', d.name === document.body.dataset.dashboard ? 'current' : '', d.title);
    link.dataset.keepQuery = `/dashboards/${d.name}`;
    nav.append(link);
  }
}

function emptyStore() {
  const box = el('section', 'empty-store');
  box.append(el('h2', '', 'No events stored yet'));
  box.append(el('p', '', 'Fill the store with realistic demo traffic, then reload this page '
    + '(the import is admin-only: use the admin key the service printed on its first start):'));
  box.append(el('pre', '',
    `.venv/bin/netra-analytics demo --url ${window.location.origin} --api-key <admin key>`));
  box.append(el('p', '', 'Or send events from your product with the browser tag (see the README).'));
  return box;
}

function renderIndex(main) {
  const list = el('section', 'index');
  list.append(el('h1', '', 'Dashboards'));
  const grid = el('div', 'index-grid');
  for (const d of catalog.dashboards) {
    const card = el('a', 'index-card');
    card.dataset.keepQuery = `/dashboards/${d.name}`;
    card.append(el('h2', '', d.title), el('p', '', d.description), el('span', 'count', `${d.panels.length} panels`));
    grid.append(card);
  }
  list.append(grid);
  main.replaceChildren(...(catalog.events_stored ? [] : [emptyStore()]), list);
}

function renderControls() {
  $('controls').hidden = false;
  $('range').value = state.range;
  $('custom').hidden = state.range !== 'custom';
  const range = window_(state);
  $('from').value = toLocalInput(range.from);
  $('to').value = toLocalInput(range.to);
  $('zone').textContent = `Times in ${zone}`;
  for (const name of ['environment', 'app_version']) {
    const select = $(name);
    const values = catalog[`${name}s`];
    const current = state.filters[name] || '';
    select.replaceChildren(el('option', '', 'All'));
    select.firstChild.value = '';
    for (const value of new Set([...values, ...(current ? [current] : [])])) {
      const option = el('option', '', value);
      option.value = value;
      select.append(option);
    }
    select.value = current;
  }
  $('refresh').value = state.refresh || (board.live ? String(board.refresh_seconds) : 'off');
  // The live state has no range, environment or version: only the refresh applies.
  for (const id of ['range', 'environment', 'app_version']) $(id).closest('label').hidden = board.live;
  renderChips();
}

function renderChips() {
  const chips = $('chips');
  const set = FILTERS.filter((name) => state.filters[name]);
  chips.hidden = set.length === 0;
  chips.replaceChildren(...set.map((name) => {
    const chip = el('button', 'chip', `${name.replace('_', ' ')}: ${state.filters[name]} ✕`);
    chip.type = 'button';
    chip.title = 'Clear this filter';
    chip.dataset.filter = name;
    chip.addEventListener('click', () => setFilter(name, ''));
    return chip;
  }));
}

function setFilter(name, value) {
  if (value) state.filters[name] = value;
  else delete state.filters[name];
  pushState();
  renderControls();
  loadAll();
}

function panelCard(panel) {
  const card = el('article', `panel panel-${panel.visualisation}${panel.wide ? ' wide' : ''}`);
  card.dataset.panel = panel.id;
  card.dataset.state = 'loading';
  const head = el('header', 'panel-head');
  const title = el('h2', '', panel.title);
  const csv = el('a', 'csv', 'CSV');
  csv.title = 'Download this panel as CSV';
  csv.setAttribute('download', '');
  head.append(title, csv);
  card.append(head, el('p', 'question', panel.description), el('div', 'body'), el('p', 'note'));
  return card;
}

function renderBoard(main) {
  const grid = el('div', 'grid');
  for (const id of board.panels) grid.append(panelCard(catalog.panels[id]));
  const heading = el('section', 'board-head');
  heading.append(el('h1', '', board.title), el('p', '', board.description));
  main.replaceChildren(...(catalog.events_stored ? [] : [emptyStore()]), heading, grid);
}

function drawStat(body, panel, reply) {
  const [value, previous] = reply.rows[0];
  const tile = el('div', 'stat');
  tile.append(el('span', 'value', formatValue(value, panel.unit)));
  if (!panel.live || previous !== null) {
    const delta = change(value, previous);
    // Coloured by whether the change is good news for this number (the catalog's `better`).
    const moved = delta.direction === 'up' || delta.direction === 'down';
    const verdict = !moved || !panel.better ? 'neutral' : delta.direction === panel.better ? 'good' : 'bad';
    const line = el('span', `delta ${verdict}`, delta.text);
    line.title = `previous period: ${formatValue(previous, panel.unit)}`;
    tile.append(line, el('span', 'vs', panel.live ? 'vs the 5 minutes before' : 'vs the previous period'));
  }
  if (reply.parts) {
    const parts = el('ul', 'parts');
    for (const [name, share] of Object.entries(reply.parts)) parts.append(el('li', '', `${name} ${Math.round(100 * share)}%`));
    tile.append(parts);
  }
  body.replaceChildren(tile);
}

function drawTable(body, reply) {
  const table = el('table', 'rows');
  const head = el('tr');
  for (const c of reply.columns) head.append(el('th', '', c.replaceAll('_', ' ')));
  table.append(el('thead'));
  table.firstChild.append(head);
  const rows = el('tbody');
  for (const r of reply.rows) {
    const tr = el('tr');
    for (const v of r) tr.append(el('td', '', v === null ? '–' : String(v)));
    rows.append(tr);
  }
  table.append(rows);
  const scroll = el('div', 'table-scroll');
  scroll.append(table);
  body.replaceChildren(scroll);
}

function drawChart(body, panel, reply) {
  let chart = charts.get(panel.id);
  if (!chart || chart.getDom() !== body.firstChild) {
    const canvas = el('div', 'chart');
    body.replaceChildren(canvas);
    chart = window.echarts.init(canvas, null, { renderer: 'canvas' });
    charts.set(panel.id, chart);
    new ResizeObserver(() => chart.resize()).observe(canvas);
  }
  chart.setOption(chartOption(panel.visualisation, reply, panel.unit), true);
  chart.off('click');
  if (panel.click_filter) {
    chart.on('click', (params) => {
      const value = clickedValue(panel.visualisation, params, reply);
      if (value) setFilter(panel.click_filter, value);
    });
  }
}

function signature(rows) {
  let hash = 0;
  const text = JSON.stringify(rows);
  for (let i = 0; i < text.length; i += 1) hash = (hash * 31 + text.charCodeAt(i)) | 0;
  return String(hash >>> 0);
}

async function loadOne(panel, params) {
  const card = document.querySelector(`[data-panel="${panel.id}"]`);
  if (!card) return;
  const body = card.querySelector('.body');
  const note = card.querySelector('.note');
  card.querySelector('.csv').href = panelUrl(panel.id, params, 'csv');
  card.classList.add('busy');
  try {
    const reply = await loadPanel(panel.id, params);
    const notes = [];
    if (reply.covers) notes.push(`Covers ${reply.covers}.`);
    if (reply.filters_ignored.length) notes.push(`Not filtered by ${reply.filters_ignored.join(', ').replaceAll('_', ' ')}.`);
    note.textContent = notes.join(' ');
    card.dataset.rows = String(reply.rows.length);
    card.dataset.signature = signature(reply.rows);
    const empty = reply.rows.length === 0 || (panel.visualisation === 'stat' && reply.rows[0][0] === null);
    if (empty) {
      charts.delete(panel.id);
      body.replaceChildren(el('p', 'empty', 'No data in this range.'));
      card.dataset.state = 'empty';
    } else if (panel.visualisation === 'stat') {
      drawStat(body, panel, reply);
      card.dataset.state = 'drawn';
    } else if (panel.visualisation === 'table') {
      drawTable(body, reply);
      card.dataset.state = 'drawn';
    } else {
      drawChart(body, panel, reply);
      card.dataset.state = 'drawn';
    }
  } catch (error) {
    charts.delete(panel.id);
    body.replaceChildren(el('p', 'error', error.message));
    card.dataset.state = 'error';
  } finally {
    card.classList.remove('busy');
  }
}

function panelParams() {
  return query(window_(state), zone, state.filters);
}

// How long the last load of all the panels took, from the first request to the last one drawn
// (read by bench/dashboard_bench.py), and how many loads there have been.
async function loadAll(only = null) {
  const params = panelParams();
  const ids = only || board.panels;
  const started = performance.now();
  await Promise.all(ids.map((id) => loadOne(catalog.panels[id], params)));
  if (!only || only.length === board.panels.length) {
    document.body.dataset.lastLoadMs = String(Math.round(performance.now() - started));
    document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
  }
}

function schedule() {
  while (timers.length) clearInterval(timers.pop());
  const chosen = $('refresh').value === 'off' ? null : Number($('refresh').value);
  if (!chosen) return;
  // Live panels refresh at their own pace (5 s) when that is more often than the chosen one.
  const fast = board.panels.filter((id) => catalog.panels[id].refresh_seconds < chosen);
  const rest = board.panels.filter((id) => !fast.includes(id));
  timers.push(setInterval(() => loadAll(rest), chosen * 1000));
  if (fast.length) timers.push(setInterval(() => loadAll(fast), Math.min(...fast.map((id) => catalog.panels[id].refresh_seconds)) * 1000));
}

function wireControls() {
  $('range').addEventListener('change', () => {
    const value = $('range').value;
    $('custom').hidden = value !== 'custom';
    if (value === 'custom') return; // wait for Apply
    state.range = value;
    pushState();
    loadAll();
  });
  $('apply').addEventListener('click', () => {
    const from = fromLocalInput($('from').value);
    const to = fromLocalInput($('to').value);
    if (!from || !to) return;
    state = { ...state, range: 'custom', from, to };
    pushState();
    loadAll();
  });
  for (const name of ['environment', 'app_version']) {
    $(name).addEventListener('change', () => setFilter(name, $(name).value));
  }
  $('refresh').addEventListener('change', () => {
    state.refresh = $('refresh').value;
    pushState();
    schedule();
  });
}

async function start() {
  const main = $('main');
  const name = document.body.dataset.dashboard;
  try {
    catalog = await loadCatalog(window_(state), zone);
  } catch (error) {
    main.replaceChildren(el('p', 'error', `The dashboards could not load: ${error.message}`));
    return;
  }
  renderNav();
  if (!name) {
    renderIndex(main);
    pushState();
    document.body.dataset.ready = 'true';
    return;
  }
  board = catalog.dashboards.find((d) => d.name === name);
  renderBoard(main);
  renderControls();
  wireControls();
  pushState();
  await loadAll();
  schedule();
  document.body.dataset.ready = 'true';
}

start();
