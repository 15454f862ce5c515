// The tidepool dashboard page: polls the JSON API (/api/) and draws with uPlot. No framework and
// no build step. Every value from the API reaches the page through textContent, never as HTML.
//
// The dead-letter list is read on demand (page load, Refresh, a change in the dead-letter
// count, after a replay or purge), never on a timer: each listing takes every letter off the
// queue and gives it back, and a `tidepool dlq` command running meanwhile sees fewer (see
// shared/broker/dead-letters.ts).
/* global uPlot */

const HOUR_MS = 3600_000;
const SERIES_EVERY_MS = 2000;
const RUNS_EVERY_MS = 3000;
const CONNECTIONS_EVERY_MS = 10_000;

const $ = (selector) => document.querySelector(selector);

// ------------------------------------------------------------------------------------------
// API

async function api(path, options = {}) {
  const init = { headers: { accept: 'application/json' }, ...options };
  if (options.json !== undefined) {
    init.method = 'POST';
    init.headers = { ...init.headers, 'content-type': 'application/json' };
    init.body = JSON.stringify(options.json);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const error = new Error((body && body.error) || `${res.status} ${res.statusText}`);
    error.status = res.status;
    error.body = body;
    throw error;
  }
  return body;
}

let errorTimer;
function showError(message) {
  const el = $('#error');
  el.textContent = message;
  el.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => (el.hidden = true), 15_000);
}

function clearError() {
  $('#error').hidden = true;
}

// ------------------------------------------------------------------------------------------
// Formatting

const numberFormat = new Intl.NumberFormat('en');
const fmtNumber = (n) => (n === null || n === undefined ? '–' : numberFormat.format(n));

function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function fmtAgo(iso) {
  if (!iso) return '–';
  const ms = Date.now() - Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  if (ms < 60_000) return `${Math.max(0, Math.round(ms / 1000))} s ago`;
  if (ms < HOUR_MS) return `${Math.round(ms / 60_000)} min ago`;
  if (ms < 48 * HOUR_MS) return `${Math.round(ms / HOUR_MS)} h ago`;
  return new Date(iso).toLocaleString();
}

/** An element with children: strings become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function statusBadge(status) {
  return el('span', { class: `status status-${status}` }, status.replace('_', ' '));
}

function timeCell(iso) {
  return el('td', { title: iso || '' }, fmtAgo(iso));
}

function emptyRow(columns, text) {
  return el('tr', {}, el('td', { colspan: columns, class: 'muted' }, text));
}

function definitionList(pairs) {
  return el('dl', {}, pairs.filter(([, v]) => v !== undefined).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v === null ? '–' : v)]));
}

function stderrBlock(title, lines) {
  if (!lines || lines.length === 0) return [el('h4', {}, title), el('p', { class: 'muted' }, '(none)')];
  return [el('h4', {}, `${title} (last ${lines.length} line${lines.length === 1 ? '' : 's'})`), el('pre', {}, lines.join('\n'))];
}

// ------------------------------------------------------------------------------------------
// Charts (uPlot; time in seconds on the x axis)

const charts = {};
const series = { t: [], ready: [], inFlight: [], dead: [], running: [], starting: [] };
let minuteCounts = [];
let lastSampleT = 0;
let lastDead;

function makeChart(id, lines, options = {}) {
  const target = document.getElementById(id);
  const width = Math.max(300, target.clientWidth);
  const opts = {
    width,
    height: 220,
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(options.minMax ?? 1, Math.ceil((max ?? 0) * 1.1) || 0)] } },
    axes: [{}, { size: 50 }],
    series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 2, fill: l.fill, paths: l.paths, points: { show: false }, spanGaps: false }))],
  };
  charts[id] = new uPlot(opts, [[], ...lines.map(() => [])], target);
}

function initCharts() {
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
  const stepped = uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
  makeChart('chart-queue', [
    { label: 'ready', color: color('--ready') },
    { label: 'in flight', color: color('--inflight') },
    { label: 'dead', color: color('--dead') },
  ]);
  makeChart('chart-runners', [
    { label: 'running', color: color('--ok'), paths: stepped, fill: 'rgba(35,136,74,0.12)' },
    { label: 'starting', color: color('--inflight'), paths: stepped },
  ]);
  makeChart('chart-syncs', [
    { label: 'succeeded', color: color('--ok'), paths: bars, fill: 'rgba(35,136,74,0.45)' },
    { label: 'retried', color: color('--warn'), paths: bars, fill: 'rgba(183,121,31,0.45)' },
    { label: 'dead-lettered', color: color('--dead'), paths: bars, fill: 'rgba(199,54,47,0.45)' },
  ]);
  window.addEventListener('resize', () => {
    for (const [id, chart] of Object.entries(charts)) chart.setSize({ width: Math.max(300, document.getElementById(id).clientWidth), height: 220 });
  });
}

function drawCharts() {
  const t = series.t.map((ms) => ms / 1000);
  charts['chart-queue'].setData([t, series.ready, series.inFlight, series.dead]);
  charts['chart-runners'].setData([t, series.running, series.starting]);
  const mt = minuteCounts.map((m) => m.t / 1000);
  // A bar of 0 is no bar (uPlot would stroke a flat one).
  const bar = (key) => minuteCounts.map((m) => m[key] || null);
  charts['chart-syncs'].setData([mt, bar('succeeded'), bar('retrying'), bar('dead_lettered')]);
  for (const id of ['chart-queue', 'chart-runners']) {
    const node = document.getElementById(id);
    node.dataset.samples = String(series.t.length);
    node.dataset.lastT = String(lastSampleT);
  }
  const syncs = document.getElementById('chart-syncs');
  syncs.dataset.samples = String(minuteCounts.length);
  syncs.dataset.total = String(minuteCounts.reduce((sum, m) => sum + m.succeeded + m.retrying + m.dead_lettered, 0));
}

function setStat(name, value) {
  const node = document.querySelector(`[data-stat="${name}"]`);
  node.textContent = fmtNumber(value);
  node.dataset.value = value === null || value === undefined ? '' : String(value);
}

async function pollSeries() {
  const first = lastSampleT === 0;
  const data = await api(first ? '/api/series?minutes=60' : `/api/series?since=${lastSampleT + 1}`);
  for (const s of data.samples) {
    if (s.t <= lastSampleT) continue;
    series.t.push(s.t);
    series.ready.push(s.ready);
    series.inFlight.push(s.inFlight);
    series.dead.push(s.dead);
    series.running.push(s.running);
    series.starting.push(s.starting);
    lastSampleT = s.t;
  }
  // Keep the last hour.
  const cutoff = data.now - HOUR_MS;
  let drop = 0;
  while (drop < series.t.length && series.t[drop] < cutoff) drop++;
  if (drop > 0) for (const key of Object.keys(series)) series[key].splice(0, drop);
  minuteCounts = data.syncsPerMinute;
  drawCharts();

  // Tiles: the scaler's latest tick when there is one (followers record no samples), else the latest sample.
  const s = data.scaler;
  const latest = series.t.length > 0 ? series.t.length - 1 : -1;
  const pick = (key, snapshotKey = key) => (s ? s[snapshotKey] : latest >= 0 ? series[key][latest] : null);
  setStat('ready', pick('ready'));
  setStat('inFlight', pick('inFlight'));
  setStat('dead', pick('dead', 'deadLetters'));
  setStat('running', pick('running'));
  setStat('starting', pick('starting'));
  const thisMinute = minuteCounts[minuteCounts.length - 1];
  setStat('syncsPerMinute', thisMinute ? thisMinute.succeeded + thisMinute.retrying + thisMinute.dead_lettered : 0);

  const status = $('#scaler-status');
  if (s) {
    const age = Math.max(0, data.now - s.at);
    status.textContent = `${s.leader ? 'leader' : 'follower'} · last tick ${(age / 1000).toFixed(1)} s ago · ${s.reason}`;
  } else {
    status.textContent = 'no scaler tick yet';
  }
  const dead = pick('dead', 'deadLetters');
  if (lastDead !== undefined && dead !== lastDead) void loadDeadLetters();
  lastDead = dead;
}

// ------------------------------------------------------------------------------------------
// Run phases: where a run's time went (shared/store/runs.ts PHASES), as a bar per run in the
// table and a timeline in its detail. A stored record may hold anything, so each value is
// checked before it is drawn: what is not a plausible duration is left out, never shown raw.

/** In their order in a run; each starts where the one before ended. */
const PHASES = ['queued', 'lockWait', 'preparing', 'starting', 'reading', 'committing', 'finishing'];
const PHASE_LABELS = { queued: 'queued', lockWait: 'lock wait', preparing: 'preparing', starting: 'starting', reading: 'reading', committing: 'committing', finishing: 'finishing' };
/** Longer than any sync waits or runs: a bigger value is a corrupt one (and seven of them still add up to a finite total). */
const MAX_PHASE_MS = 366 * 24 * HOUR_MS;

/** A stored duration in ms if it is one (a finite number, 0 up to MAX_PHASE_MS), else undefined. */
function validMs(value) {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_PHASE_MS ? value : undefined;
}

/** A plain object (not null, not an array), or undefined. */
function asObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}

/** The run's phases that hold a valid duration, in order, each with its offset from the run's start. */
function runPhases(run) {
  const phases = asObject(run.phases);
  if (!phases) return [];
  const out = [];
  let offset = 0;
  for (const phase of PHASES) {
    const ms = Object.hasOwn(phases, phase) ? validMs(phases[phase]) : undefined;
    if (ms === undefined) continue;
    out.push({ phase, ms, offset });
    offset += ms;
  }
  return out;
}

function phaseTitle({ phase, ms }) {
  return `${PHASE_LABELS[phase]}: ${fmtDuration(ms)}`;
}

/** The runs table's cell: one segment per phase, widths relative to the row's total, and the total as text. */
function phaseCell(run) {
  const phases = runPhases(run);
  if (phases.length === 0) return el('td', { class: 'muted' }, '–');
  const total = phases.reduce((sum, p) => sum + p.ms, 0);
  const bar = el('span', { class: 'phase-bar', role: 'img', 'aria-label': phases.map(phaseTitle).join(', ') });
  for (const p of phases) {
    const segment = el('span', { class: `phase phase-${p.phase}`, title: phaseTitle(p), dataset: { phase: p.phase, ms: String(p.ms) } });
    // Through the CSSOM: the page's CSP refuses style attributes.
    segment.style.width = `${total > 0 ? (p.ms / total) * 100 : 0}%`;
    bar.append(segment);
  }
  return el('td', { class: 'phases' }, bar, ' ', el('span', { class: 'phase-total' }, fmtDuration(total)));
}

/** Above the runs table, once: which colour is which phase. */
function phaseLegend() {
  return PHASES.map((phase) => el('span', { class: 'legend-item' }, el('span', { class: `swatch phase-${phase}` }), PHASE_LABELS[phase]));
}

const CONNECTOR_STEPS = [
  ['scheduledMs', 'scheduled'],
  ['startedMs', 'started'],
  ['connectedMs', 'connected'],
];

/** "scheduled +1.2 s · started +2.0 s" from a connector's start record; undefined when nothing in it is valid. */
function connectorSteps(value) {
  const start = asObject(value);
  if (!start) return undefined;
  const steps = CONNECTOR_STEPS.flatMap(([key, label]) => {
    const ms = Object.hasOwn(start, key) ? validMs(start[key]) : undefined;
    return ms === undefined ? [] : [`${label} +${fmtDuration(ms)}`];
  });
  return steps.length > 0 ? steps.join(' · ') : undefined;
}

/** The run detail's timeline (phase, start offset, duration) and the connectors' start steps; nothing for a run without phases. */
function phaseTimeline(run) {
  const phases = runPhases(run);
  const connectorStart = asObject(asObject(run.phases)?.connectorStart);
  const connectors = ['source', 'destination'].flatMap((role) => {
    const steps = connectorStart && Object.hasOwn(connectorStart, role) ? connectorSteps(connectorStart[role]) : undefined;
    return steps === undefined ? [] : [[role, steps]];
  });
  if (phases.length === 0 && connectors.length === 0) return [];
  return [
    el('h4', {}, 'Where the time went'),
    ...(phases.length > 0
      ? [
          el(
            'table',
            { class: 'phase-timeline' },
            el('thead', {}, el('tr', {}, el('th', {}, 'phase'), el('th', {}, 'from start'), el('th', {}, 'duration'))),
            el(
              'tbody',
              {},
              phases.map((p) =>
                el('tr', { dataset: { phase: p.phase } }, el('td', {}, el('span', { class: `swatch phase-${p.phase}` }), PHASE_LABELS[p.phase]), el('td', {}, `+${fmtDuration(p.offset)}`), el('td', {}, fmtDuration(p.ms))),
              ),
            ),
          ),
        ]
      : []),
    ...(connectors.length > 0
      ? [el('p', { class: 'muted' }, 'Connectors starting, from their launch:'), definitionList(connectors.map(([role, steps]) => [role, el('span', { dataset: { connectorStart: role } }, steps)]))]
      : []),
  ];
}

// ------------------------------------------------------------------------------------------
// Recent runs

let selectedRun;

function runsQuery() {
  const form = $('#runs-filter');
  const params = new URLSearchParams();
  const connection = form.elements.connection.value;
  const status = form.elements.status.value;
  const limit = form.elements.limit.value;
  if (connection) params.set('connection', connection);
  if (status) params.set('status', status);
  if (limit) params.set('limit', limit);
  return params.toString();
}

async function loadRuns() {
  const query = runsQuery();
  const { runs } = await api(`/api/runs${query ? `?${query}` : ''}`);
  const body = $('#runs-body');
  body.replaceChildren(
    ...(runs.length === 0
      ? [emptyRow(10, 'no runs match')]
      : runs.map((r) =>
          el(
            'tr',
            { class: `selectable${r.syncId === selectedRun ? ' selected' : ''}`, dataset: { syncId: r.syncId, status: r.status }, onclick: () => void showRun(r.syncId) },
            el('td', { class: 'id', title: r.syncId }, r.syncId.slice(0, 8)),
            el('td', {}, r.connectionId),
            el('td', {}, statusBadge(r.status)),
            el('td', {}, String(r.attempt)),
            timeCell(r.startedAt),
            el('td', {}, fmtDuration(r.durationMs ?? (r.status === 'running' ? Date.now() - Date.parse(r.startedAt) : undefined))),
            phaseCell(r),
            el('td', {}, fmtNumber(r.records)),
            el('td', {}, fmtBytes(r.bytes)),
            el('td', { class: 'id' }, r.runnerId),
          ),
        )),
  );
  if (selectedRun) void showRun(selectedRun, true);
}

async function showRun(syncId, quiet = false) {
  selectedRun = syncId;
  for (const row of document.querySelectorAll('#runs-body tr')) row.classList.toggle('selected', row.dataset.syncId === syncId);
  let run;
  try {
    run = await api(`/api/runs/${encodeURIComponent(syncId)}`);
  } catch (err) {
    if (!quiet) showError(`run ${syncId}: ${err.message}`);
    return;
  }
  const detail = $('#run-detail');
  const streams = Object.entries(run.streams || {});
  detail.replaceChildren(
    el('h3', {}, 'Run ', el('span', { class: 'id' }, run.syncId), ' ', statusBadge(run.status), ' ', el('button', { type: 'button', class: 'link', onclick: () => { selectedRun = undefined; detail.hidden = true; } }, 'close')),
    definitionList([
      ['connection', run.connectionId],
      ['attempt', String(run.attempt)],
      ['runner', run.runnerId],
      ['requested', run.requestedAt],
      ['started', run.startedAt],
      ['finished', run.finishedAt ?? null],
      ['duration', fmtDuration(run.durationMs)],
      ['publish → first record', fmtDuration(run.firstRecordMs)],
      ['records / bytes', `${fmtNumber(run.records)} / ${fmtBytes(run.bytes)}`],
      ['streams', streams.length ? streams.map(([name, s]) => `${name}: ${fmtNumber(s.records)} records, ${fmtBytes(s.bytes)}`).join(' · ') : null],
      ['state', run.stateVersion !== undefined ? `version ${run.stateVersion} (${run.stateCommits} commits)` : `${run.stateCommits} commits`],
      ['full refresh', run.fullRefresh ? 'yes' : 'no'],
      ['retry at', run.retryAt],
      ['cancelled', run.cancelled ? `by ${run.cancelled.by} at ${run.cancelled.at}` : null],
    ]),
    ...(FINAL_STATUSES.has(run.status)
      ? []
      : [el('div', { class: 'actions' }, el('button', { type: 'button', id: 'run-cancel', onclick: () => void cancelRun(run.syncId) }, 'Cancel this sync'))]),
    ...phaseTimeline(run),
    ...(run.error
      ? [
          el('h4', {}, 'Error'),
          el('p', { class: 'error-text', dataset: { role: 'run-error' } }, `${run.error.origin}/${run.error.type}${run.error.retryable ? ' (retryable)' : ' (permanent)'}: ${run.error.message}`),
          ...stderrBlock('source stderr', run.error.stderr && run.error.stderr.source),
          ...stderrBlock('destination stderr', run.error.stderr && run.error.stderr.destination),
        ]
      : []),
    ...(run.previousAttempts && run.previousAttempts.length
      ? [
          el('h4', {}, 'Earlier attempts'),
          el(
            'ul',
            {},
            run.previousAttempts.map((a) => el('li', {}, `#${a.attempt} ${a.status} on ${a.runnerId}, ${a.startedAt}${a.error ? `: ${a.error.message}` : ''}`)),
          ),
        ]
      : []),
  );
  detail.hidden = false;
}

/** Statuses after which a sync will not run again by itself (shared/store/runs.ts): nothing to cancel. */
const FINAL_STATUSES = new Set(['succeeded', 'dead_lettered', 'cancelled']);

async function cancelRun(syncId) {
  if (!confirm(`Cancel sync ${syncId}?\n\nIf it is running it is stopped within seconds (the destination rolls back to its last confirmed state); if it waits in a queue it will not run. It is not retried.`)) return;
  try {
    const result = await api(`/api/runs/${encodeURIComponent(syncId)}/cancel`, { json: {} });
    showAction(`sync ${syncId}: cancelled by ${result.cancelled.by} at ${result.cancelled.at}`, '#run-action');
    void showRun(syncId, true);
    void loadRuns();
  } catch (err) {
    showError(`cancel ${syncId}: ${err.message}`);
  }
}

// ------------------------------------------------------------------------------------------
// Dead letters

let deadLoading;
let selectedLetter;

function deadConnection() {
  return $('#dead-connection').value;
}

function loadDeadLetters() {
  // One listing at a time; a request while one runs is served by the next.
  if (deadLoading) return deadLoading;
  deadLoading = (async () => {
    try {
      const connection = deadConnection();
      const listing = await api(`/api/dead-letters?limit=200${connection ? `&connection=${encodeURIComponent(connection)}` : ''}`);
      $('#dead-queue').textContent = listing.queue;
      const warnings = $('#dead-warnings');
      warnings.hidden = listing.warnings.length === 0;
      warnings.textContent = listing.warnings.join(' ');
      $('#dead-note').textContent = `${listing.matched} letter${listing.matched === 1 ? '' : 's'}${connection ? ` of ${connection}` : ''} (read ${new Date().toLocaleTimeString()})`;
      const body = $('#dead-body');
      body.replaceChildren(
        ...(listing.letters.length === 0
          ? [emptyRow(8, 'no dead letters')]
          : listing.letters.map((l) =>
              el(
                'tr',
                { class: `selectable${l.id === selectedLetter ? ' selected' : ''}`, dataset: { letterId: l.id }, onclick: () => void showLetter(l.id) },
                el('td', { class: 'id', title: l.id }, l.id.length > 12 ? l.id.slice(0, 8) : l.id),
                el('td', {}, l.connectionId ?? '–'),
                el('td', { class: 'reason' }, l.reason),
                el('td', {}, `${l.origin ?? '–'}/${l.type ?? '–'}`),
                el('td', {}, l.attempts === undefined ? '–' : String(l.attempts)),
                timeCell(l.lastFailureAt),
                el('td', {}, String(l.replayed)),
                el(
                  'td',
                  {},
                  el('button', { type: 'button', disabled: !l.replayable, title: l.replayable ? 'replay this sync' : l.problem, onclick: (e) => { e.stopPropagation(); void replayOne(l.id); } }, 'Replay'),
                ),
              ),
            )),
      );
    } catch (err) {
      showError(`dead letters: ${err.message}`);
    } finally {
      deadLoading = undefined;
    }
  })();
  return deadLoading;
}

async function showLetter(id) {
  selectedLetter = id;
  for (const row of document.querySelectorAll('#dead-body tr')) row.classList.toggle('selected', row.dataset.letterId === id);
  let l;
  try {
    l = await api(`/api/dead-letters/${encodeURIComponent(id)}`);
  } catch (err) {
    showError(`dead letter ${id}: ${err.message}`);
    return;
  }
  const detail = $('#dead-detail');
  let body = l.bodyBase64 ?? l.body;
  try {
    body = JSON.stringify(JSON.parse(l.body), null, 2);
  } catch {
    // not JSON: shown as it is
  }
  detail.replaceChildren(
    el('h3', {}, 'Dead letter ', el('span', { class: 'id' }, l.id), ' ', el('button', { type: 'button', class: 'link', onclick: () => { selectedLetter = undefined; detail.hidden = true; } }, 'close')),
    el('div', { class: 'actions' }, el('button', { type: 'button', id: 'letter-replay', disabled: !l.replayable, onclick: () => void replayOne(l.id) }, 'Replay this sync')),
    definitionList([
      ['connection', l.connectionId ?? null],
      ['reason', l.reason],
      ['origin / type', `${l.origin ?? '–'}/${l.type ?? '–'} (dead-lettered by ${l.deadLetteredBy})`],
      ['attempts', l.attempts === undefined ? null : `${l.attempts}${l.retryable === true ? ' (retryable: out of attempts)' : l.retryable === false ? ' (permanent failure)' : ''}`],
      ['first failure', l.firstFailureAt ?? null],
      ['last failure', l.lastFailureAt ?? null],
      ['runner', l.runner ?? null],
      ['replayed', `${l.replayed} time(s)${l.replayedAt ? `, last at ${l.replayedAt}` : ''}`],
      ['replayable', l.replayable ? 'yes' : `no: ${l.problem}`],
    ]),
    ...stderrBlock('source stderr', l.stderr.source),
    ...stderrBlock('destination stderr', l.stderr.destination),
    el('h4', {}, 'body'),
    el('pre', {}, body),
    el('h4', {}, 'headers'),
    el('pre', {}, JSON.stringify(Object.fromEntries(Object.entries(l.headers).filter(([k]) => !k.startsWith('x-tidepool-stderr-'))), null, 2)),
  );
  detail.hidden = false;
}

/** What the last replay, purge or cancel did, in its section; stays until the next one (listings do not overwrite it). */
function showAction(text, target = '#dead-action') {
  const node = $(target);
  node.textContent = `${new Date().toLocaleTimeString()}: ${text}`;
  node.hidden = false;
}

function replaySummary(result) {
  const parts = [`replayed ${result.replayed.length}`];
  if (result.skipped.length) parts.push(`skipped ${result.skipped.length}`);
  if (result.failed.length) parts.push(`failed ${result.failed.length}`);
  if (result.notFound.length) parts.push(`not found ${result.notFound.length}`);
  return parts.join(', ');
}

async function replayOne(id) {
  if (!confirm(`Replay sync ${id}?\n\nIt goes back to the syncs queue as attempt 1.`)) return;
  try {
    const result = await api(`/api/dead-letters/${encodeURIComponent(id)}/replay`, { json: {} });
    showAction(`sync ${id}: ${replaySummary(result)}`);
    selectedLetter = undefined;
    $('#dead-detail').hidden = true;
    // Follow it in recent runs.
    selectedRun = id;
  } catch (err) {
    showError(`replay ${id}: ${err.message}`);
  }
  await loadDeadLetters();
  void loadRuns();
}

async function replayAll() {
  const connection = deadConnection();
  const what = connection ? `every dead letter of connection ${connection}` : 'EVERY dead letter';
  if (!confirm(`Replay ${what}?`)) return;
  try {
    const result = await api('/api/dead-letters/replay', { json: connection ? { connectionId: connection } : { all: true } });
    showAction(`${connection ? `connection ${connection}` : 'all'}: ${replaySummary(result)}`);
  } catch (err) {
    showError(`replay: ${err.message}`);
  }
  await loadDeadLetters();
}

async function purge() {
  const connection = deadConnection();
  const what = connection ? `every dead letter of connection ${connection}` : 'EVERY dead letter';
  if (!confirm(`Purge ${what}?\n\nThis removes them for good.`)) return;
  try {
    const result = await api('/api/dead-letters/purge', { json: connection ? { connectionId: connection } : { all: true } });
    showAction(`purged ${result.purged.length}${connection ? ` of connection ${connection}` : ''}`);
  } catch (err) {
    showError(`purge: ${err.message}`);
  }
  selectedLetter = undefined;
  $('#dead-detail').hidden = true;
  await loadDeadLetters();
}

// ------------------------------------------------------------------------------------------
// Connections

/** A connection's schedule: paused, or when its next sync is due; the last slot's fate on hover. */
function scheduleCell(schedule) {
  if (!schedule) return el('td', { class: 'muted' }, 'on request');
  const last = schedule.lastSlot;
  const title = `${schedule.schedule.cron} (${schedule.schedule.timezone})${last ? ` · last slot ${last.slot}: ${last.outcome}${last.reason ? ` (${last.reason})` : ''}` : ''}`;
  if (schedule.paused) return el('td', { title }, statusBadge('paused'));
  return el('td', { title }, schedule.nextRun ? `next ${fmtIn(schedule.nextRun)}` : 'never again');
}

function fmtIn(iso) {
  const ms = Date.parse(iso) - Date.now();
  if (!Number.isFinite(ms)) return iso;
  if (ms < 60_000) return `in ${Math.max(0, Math.round(ms / 1000))} s`;
  if (ms < HOUR_MS) return `in ${Math.round(ms / 60_000)} min`;
  return new Date(iso).toLocaleString();
}

async function loadConnections() {
  const { connections } = await api('/api/connections');
  $('#connections-body').replaceChildren(
    ...(connections.length === 0
      ? [emptyRow(7, 'no connections (tidepool connections apply -f FILE)')]
      : connections.map((c) =>
          el(
            'tr',
            { dataset: { connectionId: c.id } },
            el('td', {}, c.id),
            el('td', {}, `${c.source} → ${c.destination}`),
            el('td', { title: c.state ? c.state.updatedAt : '' }, c.state ? `v${c.state.version}, ${fmtAgo(c.state.updatedAt)}` : 'none'),
            el('td', {}, c.lastRun ? statusBadge(c.lastRun.status) : '–'),
            el('td', {}, c.lastRun ? fmtNumber(c.lastRun.records) : '–'),
            timeCell(c.lastRun ? c.lastRun.finishedAt || c.lastRun.startedAt : undefined),
            scheduleCell(c.schedule),
          ),
        )),
  );
  // Connection pickers keep their choice.
  for (const select of [$('#runs-filter').elements.connection, $('#dead-connection')]) {
    const chosen = select.value;
    select.replaceChildren(el('option', { value: '' }, 'all'), ...connections.map((c) => el('option', { value: c.id }, c.id)));
    select.value = connections.some((c) => c.id === chosen) ? chosen : '';
  }
}

// ------------------------------------------------------------------------------------------
// Polling: each loop waits for its own request before scheduling the next, and pauses while the tab is hidden.

function every(ms, task) {
  const loop = async () => {
    if (!document.hidden) {
      try {
        await task();
        clearError();
      } catch (err) {
        showError(err.status === 401 ? 'unauthorized: reload the page and sign in' : err.message);
      }
    }
    setTimeout(() => void loop(), ms);
  };
  void loop();
}

async function start() {
  initCharts();
  // For a look from the browser's console (and the browser test): what the charts are drawn from.
  window.tidepoolDashboard = { charts, series, minuteCounts: () => minuteCounts };
  try {
    const overview = await api('/api/overview');
    $('#prefix').textContent = overview.prefix;
    document.title = `tidepool · ${overview.prefix}`;
  } catch (err) {
    showError(err.message);
  }
  $('#phase-legend').append(...phaseLegend());
  $('#runs-filter').addEventListener('change', () => void loadRuns().catch((err) => showError(err.message)));
  $('#runs-filter').addEventListener('submit', (e) => e.preventDefault());
  $('#dead-refresh').addEventListener('click', () => void loadDeadLetters());
  $('#dead-connection').addEventListener('change', () => void loadDeadLetters());
  $('#dead-replay-all').addEventListener('click', () => void replayAll());
  $('#dead-purge').addEventListener('click', () => void purge());
  every(CONNECTIONS_EVERY_MS, loadConnections);
  every(SERIES_EVERY_MS, pollSeries);
  every(RUNS_EVERY_MS, loadRuns);
  void loadDeadLetters();
}

void start();
