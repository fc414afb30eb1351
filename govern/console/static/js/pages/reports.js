// Travel, visits and origin-destination reports (GET /v1/reports/travel, /visits, /od):
// a chart, a table, a map of sites where it helps, and CSV. An answer of another shape is
// still shown (as a table), and a missing endpoint shows the API's own error.

import { api, download } from '../api.js';
import { barChart } from '../charts.js';
import { disposeMap, makeMap } from '../map.js';
import { periodPicker } from '../period.js';
import { withheldNote } from '../withheld.js';
import {
  busy, button, card, clear, errorBox, field, fmtDate, fmtNum, h, select, stat, table, tabs,
} from '../ui.js';

const REPORTS = {
  travel: {
    label: 'Travel',
    blurb: 'Per day or ISO week: distinct subjects, trips, distance, moving time and stops, '
      + 'from trips and stops serving an aggregate purpose.',
  },
  visits: {
    label: 'Visits',
    blurb: 'Stops at sites per day or week: visits, distinct subjects, median and 90th '
      + 'percentile dwell time.',
  },
  od: {
    label: 'Origin–destination',
    blurb: 'Trips between sites, or between H3 cells: trips and distinct subjects per pair.',
  },
};

let spec = null;
function openapi() {
  if (!spec) spec = fetch('/openapi.json').then((r) => r.json()).catch(() => ({}));
  return spec;
}

const km = (m) => fmtNum(m / 1000, 1);
function duration(s) {
  if (s === null || s === undefined) return '—';
  const mins = Math.round(s / 60);
  return mins < 60 ? `${mins} min` : `${Math.floor(mins / 60)} h ${String(mins % 60)
    .padStart(2, '0')}`;
}

function siteName(z, sites) {
  if (!z) return '—';
  if (z.cell) return z.cell;
  if (z.site) return z.site;
  if (z.site_id) return (sites.get(z.site_id) || {}).name || z.site_id.slice(0, 8);
  return 'outside any site';
}

/** "1 pair", "3 pairs" (and a trailing word: "1 pair released"). */
function plural(n, noun, tail = '') {
  return `${fmtNum(n)} ${n === 1 ? noun : `${noun}s`}${tail ? ` ${tail}` : ''}`;
}

/** A cell's or site's name in a table, with the raw H3 index kept as its title. */
function place(z, name) {
  return z && z.cell ? h('span', { title: z.cell }, name(z)) : name(z);
}

/** The OD report's H3 cells, numbered by first appearance (busiest pair first), with their
 * centres and hexagons (GET /console/h3: geometry only, no data). */
async function cellPlaces(rows) {
  const ids = [...new Set(rows.flatMap((r) => [r.origin.cell, r.destination.cell]))]
    .filter(Boolean);
  const out = new Map();
  for (let i = 0; i < ids.length; i += 200) {
    const resp = await fetch(`/console/h3?cells=${ids.slice(i, i + 200).join(',')}`,
      { credentials: 'omit' });
    if (!resp.ok) break;
    const { cells } = await resp.json();
    Object.entries(cells).forEach(([cell, c]) => out.set(cell, c));
  }
  ids.forEach((cell, i) => {
    const c = out.get(cell);
    if (c) {
      c.name = `cell ${i + 1} (${Math.abs(c.lat).toFixed(3)}° ${c.lat >= 0 ? 'N' : 'S'}, `
        + `${Math.abs(c.lon).toFixed(3)}° ${c.lon >= 0 ? 'E' : 'W'})`;
    }
  });
  return out;
}

function centre(site) {
  const g = site.geometry;
  if (g.type === 'Point') return [g.coordinates[1], g.coordinates[0]];
  const b = window.L.geoJSON(g).getBounds().getCenter();
  return [b.lat, b.lng];
}

export async function render(root, { args }) {
  const kind = REPORTS[args[0]] ? args[0] : 'travel';
  const def = REPORTS[kind];
  const [doc, policy, siteList] = await Promise.all([
    openapi(),
    api('/v1/policy').catch(() => ({})),
    api('/v1/sites').then((r) => r.sites).catch(() => []),
  ]);
  const sites = new Map(siteList.map((s) => [s.site_id, s]));
  const known = Boolean(doc.paths && doc.paths[`/v1/reports/${kind}`]);

  const picker = periodPicker({ hours: policy.dp_epsilon_per_query != null,
    delayHours: policy.release_delay_hours ?? 24 });
  const params = {};
  const fields = [field('Period', picker.el)];
  if (kind !== 'od') {
    params.bucket = select([['day', 'per day'], ['week', 'per ISO week']], 'day',
      { name: 'bucket' });
    fields.push(field('Buckets', params.bucket));
  }
  if (kind === 'visits') {
    params.site = select([['', 'all sites'], ...siteList.map((s) => [s.site_id, s.name])], '',
      { name: 'site' });
    fields.push(field('Site', params.site));
  }
  if (kind === 'od') {
    params.zones = select([['sites', 'sites'], ...[5, 6, 7, 8].map((r) => [`h3:${r}`,
      `H3 cells, resolution ${r}`])], siteList.length ? 'sites' : 'h3:7', { name: 'zones' });
    fields.push(field('Between', params.zones));
  }
  const run = button('Run report', null, { kind: 'primary', type: 'submit', id: 'report-run' });
  const csv = button('Download CSV', null, { kind: 'ghost', id: 'report-csv' });
  const message = h('div.messages');
  const out = h('div.report-out', { id: 'report-out' });

  root.append(
    h('div.page-head', {}, h('h1', {}, 'Reports'), h('p.muted', {}, 'Aggregate travel '
      + 'reports under the heatmap\'s rules: no group resting on fewer than k subjects is '
      + 'released, and without differential privacy only whole UTC days, ISO weeks and months '
      + 'are.')),
    tabs(Object.entries(REPORTS).map(([k, r]) => [k, r.label]), kind,
      (k) => { location.hash = `#/reports/${k}`; }),
    card(def.label, h('p.muted', {}, def.blurb),
      known ? null : h('div.alert.info', {}, `GET /v1/reports/${kind} is not in this server's `
        + 'API; running the report shows what the server answers.'),
      kind === 'visits' && !siteList.length
        ? h('div.alert.info', {}, 'No site is defined yet: visits are counted at sites '
          + '(POST /v1/sites).') : null,
      h('form.toolbar', { onsubmit: (e) => { e.preventDefault(); busy(run, go); } },
        fields, h('div.toolbar-actions', {}, run, csv)),
      message),
    out);

  let map = null;

  function query() {
    const r = picker.range();
    if (!r) return null;
    const q = { from: r.from, to: r.to };
    Object.entries(params).forEach(([k, input]) => { if (input.value) q[k] = input.value; });
    return q;
  }

  async function go() {
    clear(message);
    const q = query();
    if (!q) { message.append(errorBox({ message: 'Pick a complete period first.' })); return; }
    if (map) { disposeMap(map); map = null; }
    clear(out);
    try {
      const body = await api(`/v1/reports/${kind}`, { query: q });
      map = await show(body);
      root.dataset.rows = String(out.querySelectorAll('tbody tr').length);
    } catch (err) {
      message.append(errorBox(err, `${def.label} report:`));
    }
  }

  function metaCards(p, extra = []) {
    return card(null, h('div.stats', {}, extra,
      stat('suppressed (under k)', fmtNum(p.suppressed), `k = ${p.k_min_subjects ?? '?'}`),
      p.mode === 'differential_privacy'
        ? stat('DP budget left (these days)', p.budget ? fmtNum(p.budget.remaining, 2) : '—',
          `ε ${fmtNum(p.epsilon, 2)}, δ ${p.delta} spent by this report, per person-day`)
        : stat('mode', `exact · ${p.period || ''}`, 'differential privacy off')),
      withheldNote(p));
  }

  async function show(body) {
    const p = body.properties || {};
    if (Array.isArray(body.buckets)) {
      const rows = body.buckets;
      const sum = (k) => rows.reduce((s, r) => s + (r[k] || 0), 0);
      out.append(metaCards(p, [stat('trips', fmtNum(sum('trips'))),
        stat('distance', `${km(sum('distance_m'))} km`),
        stat('moving time', duration(sum('moving_s'))), stat('stops', fmtNum(sum('stops')))]));
      if (rows.length) {
        out.append(card(null, barChart(rows.map((r) => ({ label: fmtDate(r.bucket),
          value: r.distance_m / 1000 })), { title: `distance per ${p.bucket || 'bucket'}`,
          unit: ' km' })));
      }
      const unit = p.bucket || 'bucket';
      const title = `${fmtNum(rows.length)} ${rows.length === 1 ? unit : `${unit}s`} released`;
      out.append(card(title, table([
        { key: 'bucket', label: p.bucket === 'week' ? 'week of' : 'day',
          render: (r) => fmtDate(r.bucket) },
        { key: 'subjects', label: 'subjects', num: true, render: (r) => fmtNum(r.subjects) },
        { key: 'trips', label: 'trips', num: true, render: (r) => fmtNum(r.trips) },
        { key: 'distance_m', label: 'distance', num: true,
          render: (r) => `${km(r.distance_m)} km` },
        { key: 'moving_s', label: 'moving time', num: true, render: (r) => duration(r.moving_s) },
        { key: 'stops', label: 'stops', num: true, render: (r) => fmtNum(r.stops) },
      ], rows, { empty: 'Nothing released for this period (groups under k are suppressed).' })));
      return null;
    }
    if (Array.isArray(body.visits)) {
      const rows = body.visits;
      const bySite = new Map();
      rows.forEach((r) => {
        const key = r.site || siteName(r, sites);
        bySite.set(key, (bySite.get(key) || 0) + r.visits);
      });
      out.append(metaCards(p, [stat('visits', fmtNum(rows.reduce((s, r) => s + r.visits, 0))),
        stat('sites', fmtNum(bySite.size))]));
      let m = null;
      if (rows.length) {
        out.append(h('div.grid-2', {}, card(null, barChart([...bySite].map(([label, value]) => ({
          label, value })).sort((a, b) => b.value - a.value), { title: 'visits by site',
          width: 560 })), card(null, h('div.map', { id: 'report-map' }))));
        m = await siteMap(out.querySelector('#report-map'), rows.map((r) => [r.site_id,
          r.visits]));
      }
      out.append(card(plural(rows.length, 'group', 'released'), table([
        { key: 'site', label: 'site', render: (r) => r.site || siteName(r, sites) },
        { key: 'bucket', label: p.bucket === 'week' ? 'week of' : 'day',
          render: (r) => fmtDate(r.bucket) },
        { key: 'visits', label: 'visits', num: true, render: (r) => fmtNum(r.visits) },
        { key: 'subjects', label: 'subjects', num: true, render: (r) => fmtNum(r.subjects) },
        { key: 'median_dwell_s', label: 'median dwell', num: true,
          render: (r) => duration(r.median_dwell_s) },
        { key: 'p90_dwell_s', label: '90% dwell under', num: true,
          render: (r) => duration(r.p90_dwell_s) },
      ], rows, { empty: 'Nothing released for this period (groups under k are suppressed).' })));
      return m;
    }
    if (Array.isArray(body.pairs)) {
      const rows = [...body.pairs].sort((a, b) => b.trips - a.trips);
      out.append(metaCards(p, [stat('trips', fmtNum(rows.reduce((s, r) => s + r.trips, 0))),
        stat('pairs', fmtNum(rows.length))]));
      let m = null;
      const bySites = rows.length && rows.every((r) => !r.origin.cell);
      const cells = bySites ? null : await cellPlaces(rows);
      const name = (z) => (z && z.cell && cells.has(z.cell) ? cells.get(z.cell).name
        : siteName(z, sites));
      if (rows.length) {
        const chart = card(null, barChart(rows.map((r) => ({ label: `${name(r.origin)} → `
          + `${name(r.destination)}`, value: r.trips })), { title: 'trips per pair (top 20)',
          width: 560 }));
        out.append(h('div.grid-2', {}, chart, card(null, h('div.map', { id: 'report-map' }))));
        m = await flowMap(out.querySelector('#report-map'), rows, cells);
      }
      out.append(card(plural(rows.length, 'pair', 'released'), table([
        { key: 'origin', label: 'from', render: (r) => place(r.origin, name) },
        { key: 'destination', label: 'to', render: (r) => place(r.destination, name) },
        { key: 'trips', label: 'trips', num: true, render: (r) => fmtNum(r.trips) },
        { key: 'subjects', label: 'subjects', num: true, render: (r) => fmtNum(r.subjects) },
      ], rows, { empty: 'Nothing released for this period (pairs under k are suppressed).' })));
      return m;
    }
    out.append(card('Answer', generic(body)));
    return null;
  }

  async function siteMap(el, weights) {
    const m = await makeMap(el);
    const total = new Map();
    weights.forEach(([id, w]) => total.set(id, (total.get(id) || 0) + w));
    const peak = Math.max(1, ...total.values());
    const layer = window.L.featureGroup().addTo(m);
    siteList.forEach((s) => {
      const w = total.get(s.site_id) || 0;
      window.L.circleMarker(centre(s), { radius: 5 + 15 * Math.sqrt(w / peak), color: '#0f766e',
        weight: 1.5, fillColor: '#14b8a6', fillOpacity: w ? 0.55 : 0.1 })
        .bindTooltip(`${s.name}: ${fmtNum(w)} visits`).addTo(layer);
    });
    if (siteList.length) m.fitBounds(layer.getBounds(), { padding: [30, 30], maxZoom: 14 });
    return m;
  }

  // pairs of sites, or of H3 cells (drawn as their hexagons, numbered as in the table)
  async function flowMap(el, rows, cells) {
    const m = await makeMap(el);
    const L = window.L;
    const layer = L.featureGroup().addTo(m);
    const peak = Math.max(1, ...rows.map((r) => r.trips));
    const end = (z) => {
      if (cells) {
        const c = cells.get(z.cell);
        return c ? { ll: [c.lat, c.lon], name: c.name } : null;
      }
      const site = sites.get(z.site_id);
      return site ? { ll: centre(site), name: site.name } : null;
    };
    if (cells) {
      cells.forEach((c, cell) => L.polygon(c.boundary, { color: '#0f766e', weight: 1.2,
        fillColor: '#14b8a6', fillOpacity: 0.15, className: 'od-cell' })
        .bindTooltip(`${c.name} · ${cell}`).addTo(layer));
    }
    rows.forEach((r) => {
      const a = end(r.origin);
      const b = end(r.destination);
      if (!a || !b || a.name === b.name) return;
      const [pa, pb] = [a.ll, b.ll];
      // a gentle arc, so that A→B and B→A do not overlap
      const ctl = [(pa[0] + pb[0]) / 2 + (pb[1] - pa[1]) * 0.2,
        (pa[1] + pb[1]) / 2 - (pb[0] - pa[0]) * 0.2];
      const arc = Array.from({ length: 17 }, (_, i) => {
        const t = i / 16;
        const u = 1 - t;
        return [0, 1].map((d) => u * u * pa[d] + 2 * u * t * ctl[d] + t * t * pb[d]);
      });
      L.polyline(arc, { color: '#c2410c', opacity: 0.7, weight: 1.5
        + 7 * (r.trips / peak), className: 'od-flow' })
        .bindTooltip(`${a.name} → ${b.name}: ${plural(r.trips, 'trip')}`).addTo(layer);
    });
    if (!cells) {
      siteList.forEach((s) => L.circleMarker(centre(s), { radius: 5, color: '#fff', weight: 2,
        fillColor: '#0f766e', fillOpacity: 1 }).bindTooltip(s.name).addTo(layer));
    }
    if (layer.getLayers().length) {
      m.fitBounds(layer.getBounds(), { padding: [30, 30], maxZoom: 14 });
    }
    return m;
  }

  csv.addEventListener('click', () => busy(csv, async () => {
    clear(message);
    const q = query();
    if (!q) return;
    try {
      await download(`/v1/reports/${kind}`, { ...q, format: 'csv' }, `${kind}.csv`);
    } catch (err) {
      message.append(errorBox(err, 'CSV:'));
    }
  }));

  await go();
  return () => { if (map) disposeMap(map); };
}

/** Any other answer: its scalar properties and its first list, as tables. */
function generic(body) {
  const rows = Object.values(body || {}).find((v) => Array.isArray(v)) || [];
  const keys = [...new Set(rows.slice(0, 50).flatMap((r) => Object.keys(r || {})))];
  return table(keys.map((k) => ({ key: k, label: k.replace(/_/g, ' '),
    render: (r) => (typeof r[k] === 'object' && r[k] !== null ? JSON.stringify(r[k]) : r[k]) })),
  rows, { empty: 'Nothing released.' });
}
