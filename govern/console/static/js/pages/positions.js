// Positions: the team's latest allowed position under a purpose (dispatch). Every load is an
// audited individual read, at no finer precision than the purpose allows.

import { api } from '../api.js';
import { disposeMap, makeMap } from '../map.js';
import {
  badge, busy, button, card, clear, errorBox, field, fmtTime, h, select, table,
} from '../ui.js';

// A latest position older than this is flagged stale (greyed on the map, "stale" in the list).
const STALE_MINUTES = 30;

/** "4 min", "2 h 05 min", "3 d 4 h": how long ago `t` was, from `now`. */
export function age(t, now) {
  const mins = Math.max(0, Math.floor((now - Date.parse(t)) / 60_000));
  if (mins < 60) return `${mins} min`;
  const hours = Math.floor(mins / 60);
  if (hours < 24) return `${hours} h ${String(mins % 60).padStart(2, '0')} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export async function render(root, { me }) {
  const { purposes } = await api('/v1/purposes');
  const readable = purposes.filter((p) => p.individual_access
    && (p.reader_roles || []).includes(me.role));
  root.append(h('div.page-head', {}, h('h1', {}, 'Positions'),
    h('p.muted', {}, 'The latest position of each subject whose consent for the purpose is '
      + 'active, at the purpose\'s precision. Each load is recorded in the audit log.')));
  if (!readable.length) {
    const individual = purposes.filter((p) => p.individual_access);
    root.append(h('div.alert.info.who-may', {}, `No purpose lets the role "${me.role}" read `
      + 'individual positions. ', individual.length
      ? `${individual.map((p) => `${p.title} is read by ${(p.reader_roles || []).join(', ')
        || 'nobody'}`).join('; ')}. `
      : 'No purpose allows individual reads. ',
    'A purpose\'s reader roles are set on the Policy page.'));
    return null;
  }
  const purpose = select(readable.map((p) => [p.key, `${p.title} (${p.precision_m} m)`]),
    readable.find((p) => p.key === 'dispatch') ? 'dispatch' : readable[0].key,
    { name: 'purpose' });
  const load = button('Load positions', null, { kind: 'primary', type: 'submit' });
  const message = h('div.messages');
  const list = h('div');
  const mapEl = h('div.map', { id: 'positions-map' });
  root.append(card(null, h('form.toolbar', {
    onsubmit: (e) => { e.preventDefault(); busy(load, refresh); },
  }, field('Purpose', purpose), h('div.toolbar-actions', {}, load)), message),
  h('div.grid-2', {}, card(null, mapEl), card('Subjects', list)));
  const map = await makeMap(mapEl);
  const layer = window.L.layerGroup().addTo(map);

  async function refresh() {
    clear(message);
    try {
      const fc = await api('/v1/positions/latest', { query: { purpose: purpose.value } });
      const now = Date.now();
      fc.features.forEach((f) => {
        const p = f.properties;
        p.age = age(p.t, now);
        p.stale = now - Date.parse(p.t) > STALE_MINUTES * 60_000;
      });
      fc.features.sort((a, b) => Date.parse(b.properties.t) - Date.parse(a.properties.t));
      layer.clearLayers();
      for (const f of fc.features) {
        const [lon, lat] = f.geometry.coordinates;
        const p = f.properties;
        const colour = p.stale ? '#94a3b8' : '#2563eb';
        window.L.circle([lat, lon], { radius: p.precision_m, color: colour, weight: 1,
          fillOpacity: 0.08, interactive: false }).addTo(layer);
        window.L.circleMarker([lat, lon], { radius: 6, color: p.stale ? colour : '#fff',
          weight: 2, fillColor: p.stale ? '#fff' : colour, fillOpacity: 1,
          className: p.stale ? 'position stale' : 'position' })
          .bindTooltip(`${p.display_name || p.external_ref} · ${p.age} ago`
            + `${p.stale ? ' (stale)' : ''}`, { direction: 'top' })
          .addTo(layer);
      }
      const stale = fc.features.filter((f) => f.properties.stale).length;
      if (stale) {
        message.append(h('div.alert.info.stale-note', {}, `${stale} of ${fc.features.length} `
          + `positions are older than ${STALE_MINUTES} minutes (greyed): they show where the `
          + 'subject was last seen under this purpose, not where they are now.'));
      }
      if (fc.features.length) {
        map.fitBounds(window.L.geoJSON(fc).getBounds(), { padding: [30, 30], maxZoom: 14 });
      }
      clear(list, table([
        { key: 'external_ref', label: 'subject' },
        { key: 'display_name', label: 'name' },
        { key: 't', label: 'at', render: (r) => fmtTime(r.t) },
        { key: 'age', label: 'age', render: (r) => h('span', {}, `${r.age} ago`,
          r.stale ? badge('stale', 'warn') : null) },
        { key: 'precision_m', label: 'precision', num: true, render: (r) => `${r.precision_m} m` },
      ], fc.features.map((f) => f.properties), { empty: 'No allowed position right now.' }));
    } catch (err) {
      message.append(errorBox(err));
    }
  }
  await refresh();
  return () => disposeMap(map);
}
