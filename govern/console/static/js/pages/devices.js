// Devices: which phones deliver, and what became of their ingest requests. The apps' protocols
// give a phone no answer per point (and some delete a point whatever the answer), so this is
// where an admin sees a misconfigured phone before its data is gone. Never shows coordinates.

import { all, api } from '../api.js';
import {
  badge, card, clear, errorBox, fmtNum, fmtTime, h, shortId, stat, table,
} from '../ui.js';

export async function render(root, ctx) {
  const { items: subjects } = await all('/v1/subjects', 'subjects', { limit: 500 });
  const names = new Map(subjects.map((s) => [s.subject_id, s]));
  const { devices } = await api('/v1/devices');
  if (ctx.args[0]) return detail(root, ctx.args[0], devices, names);
  return overview(root, devices, names);
}

function subjectName(id, names) {
  const s = names.get(id);
  return s ? (s.display_name || s.external_ref) : shortId(id);
}

function health(d) {
  if (d.ingest_flagged) {
    return badge(`refusing: last ${d.refused_streak} requests stored nothing`, 'bad');
  }
  if (d.refused_streak) return badge(`${d.refused_streak} refused in a row`, 'warn');
  return d.last_accepted_at ? badge('delivering', 'ok') : badge('no ping yet', 'muted');
}

function overview(root, devices, names) {
  const flagged = devices.filter((d) => d.ingest_flagged).length;
  root.append(
    h('div.page-head', {}, h('h1', {}, 'Devices'),
      h('p.muted', {}, 'Enrolled devices and whether their pings arrive. A device is flagged '
        + 'when its last requests all stored nothing; open it to see why.')),
    flagged ? h('div.alert.error', { id: 'devices-flagged', role: 'alert' },
      `${flagged} device${flagged > 1 ? 's' : ''} refusing: check the app's settings.`) : null,
    card('All devices', table([
      { key: 'identifier', label: 'identifier', render: (d) => h('a.mono', {
        href: `#/devices/${d.device_id}` }, d.identifier) },
      { key: 'subject_id', label: 'subject', render: (d) => subjectName(d.subject_id, names) },
      { key: 'platform', label: 'platform' },
      { key: 'last_accepted_at', label: 'last stored ping',
        render: (d) => fmtTime(d.last_accepted_at) },
      { key: 'ingest_flagged', label: 'ingest', render: health },
    ], devices, { empty: 'No device enrolled.', rowAttrs: (d) => ({
      dataset: { device: d.device_id, flagged: String(Boolean(d.ingest_flagged)) } }) })));
  return null;
}

function counts(map, label) {
  const rows = Object.entries(map || {}).sort((a, b) => b[1] - a[1])
    .map(([key, n]) => ({ key, n }));
  return table([
    { key: 'key', label, render: (r) => h('span.mono', {}, r.key) },
    { key: 'n', label: 'count', num: true, render: (r) => fmtNum(r.n) },
  ], rows, { empty: 'None.' });
}

async function detail(root, id, devices, names) {
  const device = devices.find((d) => d.device_id === id);
  root.append(h('div.page-head', {},
    h('p', {}, h('a', { href: '#/devices' }, '← all devices')),
    h('h1', {}, device ? `Device ${device.identifier}` : `Device ${shortId(id)}`),
    device ? h('p.muted', {}, `${subjectName(device.subject_id, names)} · `
      + `${device.platform || 'platform unknown'}`) : null));
  const body = h('div', { id: 'device-ingest' });
  root.append(body);
  let d;
  try {
    d = await api(`/v1/devices/${id}/ingest`);
  } catch (err) {
    body.append(errorBox(err));
    return null;
  }
  const dropped = Object.values(d.dropped).reduce((a, b) => a + b, 0);
  const rejected = Object.values(d.rejected).reduce((a, b) => a + b, 0);
  const refused = Object.values(d.refused).reduce((a, b) => a + b, 0);
  clear(body,
    d.flagged ? h('div.alert.error', { id: 'device-flagged', role: 'alert' },
      `The last ${d.refused_streak} requests of this device stored nothing. `
      + 'The refusals below say which field or rule refused them.') : null,
    card(`Last 24 hours (since ${fmtTime(d.window_start)})`, h('div.stats', {},
      stat('requests', fmtNum(d.requests)),
      stat('accepted', fmtNum(d.accepted)),
      stat('duplicates', fmtNum(d.duplicates), 'retries, stored once'),
      stat('dropped', fmtNum(dropped), 'by the policy or without a fix'),
      stat('rejected', fmtNum(rejected), 'pings that did not validate'),
      stat('refused requests', fmtNum(refused)),
      stat('ignored', fmtNum(d.ignored), 'messages that are no location'),
      stat('timed at receipt', fmtNum(d.server_time), 'the app sent no time')),
    h('p.muted.small', {}, `Last request ${fmtTime(d.last_request_at)} · last stored ping `
      + `${fmtTime(d.last_accepted_at)}`)),
    h('div.grid-2', {},
      card('Dropped, by reason', counts(d.dropped, 'reason')),
      card('Rejected, by field', counts(d.rejected, 'field'))),
    card('Requests refused whole, by error', counts(d.refused, 'error')),
    card('Last refusals', h('div', { id: 'device-refusals' }, table([
      { key: 'at', label: 'at', render: (r) => fmtTime(r.at) },
      { key: 'format', label: 'app format' },
      { key: 'kind', label: 'kind', render: (r) => badge(r.kind,
        r.kind === 'dropped' ? 'warn' : 'bad') },
      { key: 'field', label: 'field', render: (r) => (r.field ? h('span.mono', {}, r.field)
        : '—') },
      { key: 'reason', label: 'reason' },
      { key: 'count', label: 'items', num: true },
    ], d.refusals, { empty: 'Nothing refused.' }))));
  return null;
}
