// Heatmap: released H3 cells of a fixed period (or whole hours under differential privacy),
// on the basemap; suppressed cells are only counted, as the API reports them.

import { api, download } from '../api.js';
import { breaks, colourFor, disposeMap, legend, makeMap } from '../map.js';
import { periodPicker } from '../period.js';
import { withheldNote } from '../withheld.js';
import {
  busy, button, card, clear, errorBox, field, fmtNum, fmtTime, h, select, stat,
} from '../ui.js';

const RESOLUTIONS = [
  [5, '5 · hexagons ≈ 8.5 km across'], [6, '6 · ≈ 3.2 km'], [7, '7 · ≈ 1.2 km'],
  [8, '8 · ≈ 460 m'], [9, '9 · ≈ 175 m'],
];

export async function render(root) {
  const policy = await api('/v1/policy').catch(() => ({}));
  const dp = policy.dp_epsilon_per_query !== null && policy.dp_epsilon_per_query !== undefined;
  const picker = periodPicker({ hours: dp, delayHours: policy.release_delay_hours ?? 24 });
  const resolution = select(RESOLUTIONS, 7, { name: 'resolution' });
  const metric = select([['subjects', 'distinct subjects'], ['pings', 'pings']], 'subjects',
    { name: 'metric' });
  const show = button('Show', null, { kind: 'primary', type: 'submit', id: 'heatmap-show' });
  const csv = button('Download CSV', null, { kind: 'ghost', id: 'heatmap-csv' });
  const stats = h('div.stats', { id: 'heatmap-stats' });
  const message = h('div.messages');
  const mapEl = h('div.map.map-tall', { id: 'heatmap-map' });

  const form = h('form.toolbar', { onsubmit: (e) => { e.preventDefault(); busy(show, load); } },
    field('Period', picker.el),
    field('Resolution', resolution),
    field('Colour by', metric),
    h('div.toolbar-actions', {}, show, csv));

  root.append(
    h('div.page-head', {}, h('h1', {}, 'Heatmap'),
      h('p.muted', {}, 'Aggregate pings per hexagon, from rollups only. A hexagon is shown '
        + `only when at least k distinct subjects (k = ${policy.k_min_subjects ?? '?'}) were `
        + 'there on every day of the period, and when it cannot be subtracted from what you '
        + 'were shown before to reveal fewer than k people; the others are withheld and counted.',
      dp ? ' Differential privacy is on: every query spends part of today\'s budget.'
        : ' Without differential privacy only whole UTC days, ISO weeks and months that '
          + `ended at least ${policy.release_delay_hours ?? 24} hours ago are released, each `
          + 'once: asking again shows the same answer.')),
    card(null, form, message, stats),
    card(null, mapEl));

  const map = await makeMap(mapEl, { center: [51, 10], zoom: 5 });
  let hexLayer = null;
  let legendCtl = null;
  let last = null;
  let gone = false;

  function paint() {
    if (hexLayer) hexLayer.remove();
    if (legendCtl) legendCtl.remove();
    if (!last) return;
    const key = metric.value;
    const values = last.features.map((f) => f.properties[key]);
    const bks = breaks(values);
    hexLayer = window.L.geoJSON(last, {
      style: (f) => ({
        className: 'hex-cell', color: '#7a1f12', weight: 0.6, opacity: 0.6,
        fillColor: colourFor(f.properties[key], bks), fillOpacity: 0.72,
      }),
      onEachFeature: (f, layer) => layer.bindTooltip(
        `<b>${fmtNum(f.properties.subjects)}</b> subjects · <b>${fmtNum(f.properties.pings)}`
        + `</b> pings<br><span class="mono">${f.properties.cell}</span>`, { sticky: true }),
    }).addTo(map);
    if (bks.length) {
      legendCtl = legend(map, key === 'pings' ? 'pings per hexagon' : 'subjects per hexagon', bks,
        Math.min(...values));
    }
  }

  async function load() {
    const range = picker.range();
    clear(message);
    if (!range) {
      message.append(errorBox({ message: 'Pick a complete period first.' }));
      return;
    }
    try {
      const fc = await api('/v1/reports/heatmap', {
        query: { from: range.from, to: range.to, resolution: resolution.value },
      });
      if (gone || !mapEl.isConnected) return; // the page was left while it loaded
      last = fc;
      const p = fc.properties || {};
      const budget = p.budget;
      clear(stats,
        stat('hexagons released', fmtNum(fc.features.length)),
        stat('suppressed (under k)', fmtNum(p.suppressed), `k = ${p.k_min_subjects}`),
        stat('subjects in busiest', fmtNum(Math.max(0, ...fc.features.map(
          (f) => f.properties.subjects)))),
        stat('pings', fmtNum(fc.features.reduce((s, f) => s + f.properties.pings, 0))),
        p.mode === 'differential_privacy'
          ? stat('DP budget left (these days)', budget ? fmtNum(budget.remaining, 2) : '—',
            budget ? `ε ${fmtNum(p.epsilon, 2)}, δ ${p.delta} spent now · `
              + `${fmtNum(budget.spent, 2)} of ${fmtNum(budget.epsilon_per_day, 2)} per `
              + 'person-day' : '')
          : stat('mode', `exact · ${p.period || ''}`, 'differential privacy off'),
        h('div.stat-note.muted', {}, `${fmtTime(range.from)} – ${fmtTime(range.to)}`, h('br'),
          `generated ${fmtTime(p.generated_at)}`),
        withheldNote(p));
      paint();
      if (fc.features.length) {
        map.fitBounds(hexLayer.getBounds(), { padding: [24, 24], maxZoom: 13 });
      } else {
        message.append(h('div.alert.info', {}, 'No hexagon could be released for this period '
          + `(${fmtNum(p.suppressed)} suppressed under k).`));
      }
      root.dataset.cells = String(fc.features.length);
    } catch (err) {
      message.append(errorBox(err));
    }
  }

  csv.addEventListener('click', () => busy(csv, async () => {
    const range = picker.range();
    clear(message);
    if (!range) return;
    try {
      await download('/v1/reports/heatmap', {
        from: range.from, to: range.to, resolution: resolution.value, format: 'csv',
      }, 'heatmap.csv');
    } catch (err) {
      message.append(errorBox(err));
    }
  }));
  metric.addEventListener('change', paint);
  await load();
  return () => { gone = true; disposeMap(map); };
}
