// Subjects: consent state and history, devices, legal holds, and access and erasure requests
// with their due dates. Writes (owner, admin) go through the same API as everything else.

import { all, api, download } from '../api.js';
import { disposeMap, makeMap } from '../map.js';
import {
  badge, busy, button, card, clear, clearFormErrors, confirmAction, errorBox, field, fmtDate,
  fmtNum, fmtTime, h, select, shortId, showFormErrors, stat, table, toast, yesNo,
} from '../ui.js';

const WRITERS = ['owner', 'admin'];

export async function render(root, ctx) {
  const { items: subjects } = await all('/v1/subjects', 'subjects', { limit: 500 });
  // by reference, numbers in order (worker-2 before worker-10)
  subjects.sort((a, b) => a.external_ref.localeCompare(b.external_ref, 'en',
    { numeric: true }));
  const names = new Map(subjects.map((s) => [s.subject_id, s]));
  if (ctx.args[0]) return detail(root, ctx, ctx.args[0], names);
  return overview(root, ctx, subjects, names);
}

function subjectLink(id, names) {
  const s = names.get(id);
  return h('a', { href: `#/subjects/${id}` }, s ? s.external_ref : shortId(id));
}

// ---------------------------------------------------------------------------- overview

function overview(root, ctx, subjects, names) {
  const writer = ctx.can(WRITERS);
  const reqEl = h('div', { id: 'requests' });
  const holdsEl = h('div', { id: 'holds' });
  const filter = h('input', { type: 'search', placeholder: 'Filter by reference or name',
    'aria-label': 'Filter subjects' });
  const listEl = h('div', { id: 'subject-list' });
  root.append(
    h('div.page-head', {}, h('h1', {}, 'Subjects'),
      h('p.muted', {}, 'The tracked people, their requests and legal holds. Open a subject '
        + 'for consent, devices and history.')),
    card('Access and erasure requests', reqEl),
    card('Legal holds', holdsEl),
    card('All subjects', h('div.toolbar', {}, filter), listEl));

  function showList() {
    const q = filter.value.trim().toLowerCase();
    const rows = subjects.filter((s) => !q || s.external_ref.toLowerCase().includes(q)
      || (s.display_name || '').toLowerCase().includes(q));
    clear(listEl, table([
      { key: 'external_ref', label: 'reference', render: (s) => subjectLink(s.subject_id, names) },
      { key: 'display_name', label: 'name' },
      { key: 'timezone', label: 'time zone' },
      { key: 'on_duty', label: 'on duty', render: (s) => yesNo(s.on_duty) },
      { key: 'collection_blocked', label: 'collection', render: (s) => (s.collection_blocked
        ? badge(`blocked${s.blocked_reason ? `: ${s.blocked_reason}` : ''}`, 'warn')
        : badge('allowed', 'ok')) },
      { key: 'created_at', label: 'created', render: (s) => fmtDate(s.created_at) },
    ], rows, { empty: 'No subject matches.' }));
  }
  filter.addEventListener('input', showList);
  showList();
  requests(reqEl, { writer, names });
  holds(holdsEl, { writer, names });
  return null;
}

// ---------------------------------------------------------------------------- requests

function requests(el, { writer, names, subjectId, onChange }) {
  const status = select([['open', 'open'], ['', 'all'], ['completed', 'completed'],
    ['refused', 'refused']], 'open', { 'aria-label': 'Status' });
  const overdue = h('input', { type: 'checkbox', 'aria-label': 'Overdue only' });
  const out = h('div');
  const message = h('div.messages');
  const tools = subjectId ? null : h('div.toolbar', {}, field('Status', status),
    h('label.check', {}, overdue, ' overdue only'));

  async function load() {
    clear(message);
    try {
      const { requests: rows } = await api('/v1/requests', { query: {
        status: subjectId ? null : status.value, overdue: overdue.checked ? 'true' : null,
        subject_id: subjectId } });
      clear(out, table([
        subjectId ? null : { key: 'subject_id', label: 'subject',
          render: (r) => subjectLink(r.subject_id, names) },
        { key: 'kind', label: 'kind',
          render: (r) => badge(r.kind, r.kind === 'erasure' ? 'warn' : '') },
        { key: 'status', label: 'status', render: (r) => badge(r.status,
          r.status === 'completed' ? 'ok' : '') },
        { key: 'received_at', label: 'received', render: (r) => fmtDate(r.received_at) },
        { key: 'due_at', label: 'due', render: (r) => h('span', {}, fmtDate(r.due_at),
          r.overdue ? badge('overdue', 'bad') : null) },
        { key: 'completed_at', label: 'completed', render: (r) => fmtDate(r.completed_at) },
        { key: 'note', label: 'note' },
        writer ? { key: 'actions', label: '', render: (r) => actions(r) } : null,
      ].filter(Boolean), rows, { empty: 'No request.' }));
    } catch (err) {
      message.append(errorBox(err));
    }
  }

  function actions(r) {
    if (r.status !== 'open') return '';
    if (r.kind === 'access') {
      const b = button('Download access bundle', () => busy(b, async () => {
        try {
          await download(`/v1/requests/${r.request_id}/bundle`, {},
            `subject-${r.subject_id}.zip`);
          toast('Access bundle downloaded; the request is completed.');
          load();
        } catch (err) { message.append(errorBox(err)); }
      }), { kind: 'small' });
      return b;
    }
    const b = button('Erase now', () => busy(b, async () => {
      const s = names.get(r.subject_id);
      if (!confirmAction(`Erase everything held about ${s ? s.external_ref : r.subject_id}? `
        + 'This cannot be undone.')) return;
      try {
        const res = await api(`/v1/requests/${r.request_id}/erase`, { method: 'POST' });
        toast(`Erased: ${Object.entries(res.counts || {}).map(([k, v]) => `${v} ${k}`)
          .join(', ') || 'done'}`);
        load();
        if (onChange) onChange();
      } catch (err) { message.append(errorBox(err)); }
    }), { kind: 'small danger' });
    return b;
  }

  status.addEventListener('change', load);
  overdue.addEventListener('change', load);
  el.append(...[tools, message, out].filter(Boolean));
  if (writer && subjectId) el.append(newRequestForm(subjectId, load));
  load();
}

function newRequestForm(subjectId, reload) {
  const kind = select([['access', 'access (a copy of everything held)'], ['erasure', 'erasure']], 'access',
    { name: 'kind' });
  const note = h('input', { type: 'text', name: 'note', placeholder: 'e.g. email of 3 Feb' });
  const received = h('input', { type: 'date', name: 'received_at' });
  const submit = button('Record request', null, { kind: 'primary', type: 'submit' });
  const form = h('form.inline-form', { onsubmit: (e) => {
    e.preventDefault();
    busy(submit, async () => {
      clearFormErrors(form);
      try {
        await api('/v1/requests', { method: 'POST', body: {
          subject_id: subjectId, kind: kind.value, note: note.value || null,
          received_at: received.value ? `${received.value}T12:00:00Z` : null } });
        note.value = '';
        toast('Request recorded; due in 30 days.');
        reload();
      } catch (err) { showFormErrors(form, err); }
    });
  } }, h('h3', {}, 'New request'),
  h('div.row', {}, field('Kind', kind, { fieldName: 'kind' }),
    field('Received (default today)', received, { fieldName: 'received_at' }),
    field('Note', note, { fieldName: 'note', wide: true }), h('div.row-end', {}, submit)),
  h('div.form-error'));
  return form;
}

// ---------------------------------------------------------------------------- holds

function holds(el, { writer, names, subjectId }) {
  const out = h('div');
  const message = h('div.messages');
  async function load() {
    clear(message);
    try {
      const { legal_holds: rows } = await api('/v1/legal-holds', {
        query: { subject_id: subjectId } });
      clear(out, table([
        subjectId ? null : { key: 'subject_id', label: 'applies to', render: (r) => (r.subject_id
          ? subjectLink(r.subject_id, names) : badge('whole tenant', 'warn')) },
        { key: 'reason', label: 'reason' },
        { key: 'active', label: 'state', render: (r) => (r.active ? badge('active', 'warn')
          : badge('ended', 'muted')) },
        { key: 'starts_at', label: 'from', render: (r) => fmtTime(r.starts_at) },
        { key: 'ends_at', label: 'until', render: (r) => (r.ends_at ? fmtTime(r.ends_at)
          : 'until ended') },
        { key: 'created_by', label: 'placed by' },
        writer ? { key: 'end', label: '', render: (r) => (r.active ? endButton(r) : '') } : null,
      ].filter(Boolean), rows, { empty: 'No legal hold.' }));
    } catch (err) {
      message.append(errorBox(err));
    }
  }
  function endButton(r) {
    const b = button('End now', () => busy(b, async () => {
      if (!confirmAction('End this hold? Paused ageing and erasure resume at the next '
        + 'retention run.')) return;
      try {
        await api(`/v1/legal-holds/${r.hold_id}/end`, { method: 'POST', body: {} });
        toast('Hold ended.');
        load();
      } catch (err) { message.append(errorBox(err)); }
    }), { kind: 'small' });
    return b;
  }
  el.append(message, out);
  if (writer) el.append(holdForm(subjectId, load));
  load();
}

function holdForm(subjectId, reload) {
  const reason = h('input', { type: 'text', name: 'reason',
    placeholder: 'e.g. litigation 2026-17, counsel J. Roe' });
  const ends = h('input', { type: 'date', name: 'ends_at' });
  const submit = button(subjectId ? 'Place hold' : 'Place tenant-wide hold', null, {
    kind: subjectId ? 'primary' : 'ghost', type: 'submit' });
  const form = h('form.inline-form', { onsubmit: (e) => {
    e.preventDefault();
    busy(submit, async () => {
      clearFormErrors(form);
      try {
        await api('/v1/legal-holds', { method: 'POST', body: {
          subject_id: subjectId || null, reason: reason.value,
          ends_at: ends.value ? `${ends.value}T00:00:00Z` : null } });
        reason.value = '';
        toast('Legal hold placed.');
        reload();
      } catch (err) { showFormErrors(form, err); }
    });
  } }, h('h3', {}, subjectId ? 'Place a legal hold' : 'Place a hold on the whole tenant'),
  h('div.row', {}, field('Reason', reason, { fieldName: 'reason', wide: true }),
    field('Ends (optional)', ends, { fieldName: 'ends_at' }), h('div.row-end', {}, submit)),
  h('div.form-error'));
  return form;
}

// ---------------------------------------------------------------------------- one subject

async function detail(root, ctx, id, names) {
  const writer = ctx.can(WRITERS);
  const s = await api(`/v1/subjects/${encodeURIComponent(id)}`);
  const stateEl = h('div', { id: 'consent-state' });
  const historyEl = h('div', { id: 'consent-history' });
  const devicesEl = h('div', { id: 'devices' });
  const holdsEl = h('div');
  const reqEl = h('div');
  const trackEl = h('div', { id: 'subject-track' });
  root.append(
    h('a.back', { href: '#/subjects' }, '‹ All subjects'),
    h('div.page-head', {}, h('h1', {}, s.external_ref,
      s.display_name ? h('span.muted', {}, ` · ${s.display_name}`) : null),
    h('p.chips', {}, badge(s.timezone || 'tenant time zone'),
      s.on_duty ? badge('on duty', 'ok') : badge('off duty', 'muted'),
      s.collection_blocked ? badge(`collection blocked: ${s.blocked_reason || ''}`, 'bad') : null,
      h('span.muted.mono', {}, s.subject_id))),
    h('div.grid-2', {}, card('Consent now', stateEl), card('Devices', devicesEl)),
    card('Track and travel', trackEl),
    card('Consent history', historyEl),
    card('Legal holds', holdsEl),
    card('Access and erasure requests', reqEl));

  async function loadConsent() {
    try {
      const [state, history] = await Promise.all([
        api(`/v1/subjects/${id}/consent-state`), api(`/v1/subjects/${id}/consents`)]);
      clear(stateEl, table([
        { key: 'purpose', label: 'purpose' },
        { key: 'status', label: 'status', render: (r) => badge(r.status,
          r.status === 'granted' ? 'ok' : r.status === 'withdrawn' ? 'bad' : 'muted') },
        { key: 'since', label: 'since', render: (r) => fmtTime(r.since) },
        { key: 'active', label: 'may use location', render: (r) => yesNo(r.active) },
      ], state.purposes, { empty: 'No purpose declared.' }),
      writer ? consentForm(id, state.purposes.map((p) => p.purpose), loadConsent) : null);
      clear(historyEl, table([
        { key: 'at', label: 'effective', render: (r) => fmtTime(r.at) },
        { key: 'purpose', label: 'purpose' },
        { key: 'status', label: 'status', render: (r) => badge(r.status,
          r.status === 'granted' ? 'ok' : 'bad') },
        { key: 'source', label: 'source' },
        { key: 'policy_version', label: 'policy version' },
        { key: 'actor_id', label: 'recorded by', render: (r) => h('span.mono', {},
          r.actor_id || '') },
        { key: 'evidence', label: 'evidence', render: (r) => h('span.details', {},
          JSON.stringify(r.evidence || {})) },
      ], [...history.events].reverse(), { empty: 'The ledger is empty.' }));
    } catch (err) {
      clear(stateEl, errorBox(err));
    }
  }

  async function loadDevices() {
    try {
      const { devices } = await api('/v1/devices', { query: { subject_id: id,
        include_revoked: 'true' } });
      clear(devicesEl, table([
        { key: 'identifier', label: 'identifier', render: (d) => (ctx.can(WRITERS)
          ? h('a.mono', { href: `#/devices/${d.device_id}` }, d.identifier)
          : h('span.mono', {}, d.identifier)) },
        { key: 'ingest_flagged', label: 'ingest', render: (d) => (d.ingest_flagged
          ? badge('refusing', 'bad') : null) },
        { key: 'platform', label: 'platform' },
        { key: 'last_seen_at', label: 'last seen', render: (d) => fmtTime(d.last_seen_at) },
        { key: 'revoked_at', label: 'state', render: (d) => (d.revoked_at
          ? badge(`revoked ${fmtDate(d.revoked_at)}`, 'muted') : badge('active', 'ok')) },
      ], devices, { empty: 'No device enrolled.' }));
    } catch (err) {
      clear(devicesEl, errorBox(err));
    }
  }

  loadConsent();
  loadDevices();
  const stopTrack = await trackAndTravel(trackEl, ctx, id);
  holds(holdsEl, { writer, names, subjectId: id });
  requests(reqEl, { writer, names, subjectId: id, onChange: () => {
    loadConsent();
    loadDevices();
  } });
  return stopTrack;
}

// ---------------------------------------------------------------------------- track, travel

const DAY_MS = 86_400_000;
const MAX_TRACK_PAGES = 5; // 50,000 points at most, the API's 10,000 per page

function utcDay(offsetDays) {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  return new Date(d.getTime() + offsetDays * DAY_MS).toISOString().slice(0, 10);
}

function km(m) {
  return `${fmtNum((m || 0) / 1000, 1)} km`;
}

function minutes(s) {
  return `${fmtNum(Math.round((s || 0) / 60))} min`;
}

/**
 * The subject's track of one UTC day and its travel (trips per local day, the week up to
 * that day) under a purpose the member's role may read. Nothing is read until asked:
 * every view is an audited individual read, through the same endpoints as any client.
 */
async function trackAndTravel(el, ctx, id) {
  const { purposes } = await api('/v1/purposes');
  const individual = purposes.filter((p) => p.individual_access);
  const readable = individual.filter((p) => (p.reader_roles || []).includes(ctx.me.role));
  if (!readable.length) {
    el.append(h('div.alert.info.who-may', {}, `No purpose lets the role "${ctx.me.role}" read `
      + 'this subject\'s track. ', individual.length
      ? `${individual.map((p) => `${p.title} is read by ${(p.reader_roles || []).join(', ')
        || 'nobody'}`).join('; ')}.` : 'No purpose allows individual reads.'));
    return null;
  }
  const preferred = ['time_tracking', 'dispatch'].find((k) => readable.some((p) => p.key === k));
  const purpose = select(readable.map((p) => [p.key, `${p.title} (${p.precision_m} m)`]),
    preferred || readable[0].key, { name: 'track_purpose' });
  const day = h('input', { type: 'date', name: 'track_day', value: utcDay(-1),
    'aria-label': 'Day (UTC)' });
  const show = button('Show track and travel', null, { kind: 'primary', type: 'submit',
    id: 'track-show' });
  const message = h('div.messages');
  const summary = h('div.stats', { id: 'track-stats' });
  const mapEl = h('div.map', { id: 'track-map' });
  const travelEl = h('div', { id: 'subject-travel' });
  el.append(h('p.muted', {}, 'The pings that serve the purpose now, at its precision, and the '
    + 'trips built from them. Each view is recorded in the audit log as an individual read.'),
  h('form.toolbar', { onsubmit: (e) => { e.preventDefault(); busy(show, load); } },
    field('Purpose', purpose), field('Day (UTC)', day), h('div.toolbar-actions', {}, show)),
  message, summary, h('div.grid-2', {}, mapEl, travelEl));
  const map = await makeMap(mapEl);
  const layer = window.L.featureGroup().addTo(map);
  let gone = false;

  async function readTrack(from, to) {
    const features = [];
    let cursor = null;
    for (let i = 0; i < MAX_TRACK_PAGES; i += 1) {
      const page = await api(`/v1/subjects/${id}/track`, { query: {
        purpose: purpose.value, from, to, limit: 10_000, cursor } });
      features.push(...page.features);
      cursor = page.properties && page.properties.next_cursor;
      if (!cursor) return { features, truncated: false };
    }
    return { features, truncated: true };
  }

  async function load() {
    clear(message);
    if (!day.value) {
      message.append(errorBox({ message: 'Pick a day first.' }));
      return;
    }
    const from = `${day.value}T00:00:00Z`;
    const to = new Date(Date.parse(from) + DAY_MS).toISOString().replace('.000Z', 'Z');
    const weekFrom = new Date(Date.parse(from) - 6 * DAY_MS).toISOString()
      .replace('.000Z', 'Z');
    try {
      const [track, travel] = await Promise.all([readTrack(from, to),
        api(`/v1/subjects/${id}/travel`, { query: { purpose: purpose.value, from: weekFrom,
          to } })]);
      if (gone) return;
      drawTrack(track.features);
      const points = track.features.length;
      const precision = points ? track.features[0].properties.precision_m
        : travel.precision_m;
      clear(summary,
        stat('points', fmtNum(points), `${day.value}, UTC`),
        stat('precision', `${fmtNum(precision)} m`, purpose.value),
        stat('trips that day', fmtNum(tripsOn(travel, day.value).length)),
        stat('distance in the week', km(travel.totals && travel.totals.distance_m),
          `${travel.days.length} days with trips`));
      el.dataset.points = String(points);
      if (track.truncated) {
        message.append(h('div.alert.info', {}, `Showing the first ${fmtNum(points)} points.`));
      }
      if (!points) {
        message.append(h('div.alert.info', {}, 'No point of this day serves the purpose now '
          + '(outside its retention window or collection window, no consent then, or in a '
          + 'privacy zone).'));
      }
      showTravel(travel);
    } catch (err) {
      message.append(errorBox(err));
    }
  }

  function tripsOn(travel, date) {
    const d = travel.days.find((x) => x.date === date);
    return d ? d.trips : [];
  }

  function drawTrack(features) {
    layer.clearLayers();
    if (!features.length) return;
    const L = window.L;
    const line = features.map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0]]);
    L.polyline(line, { color: '#2563eb', weight: 3, opacity: 0.8, className: 'track-line' })
      .addTo(layer);
    const ends = [[features[0], 'start', '#16a34a'], [features[features.length - 1], 'end',
      '#dc2626']];
    ends.forEach(([f, label, colour]) => {
      const [lon, lat] = f.geometry.coordinates;
      L.circleMarker([lat, lon], { radius: 7, color: '#fff', weight: 2, fillColor: colour,
        fillOpacity: 1 }).bindTooltip(`${label} · ${fmtTime(f.properties.t)}`).addTo(layer);
    });
    map.fitBounds(layer.getBounds(), { padding: [24, 24], maxZoom: 15, animate: false });
  }

  function showTravel(travel) {
    clear(travelEl, h('h3', {}, 'Trips per day (the subject\'s time zone)'), table([
      { key: 'date', label: 'day' },
      { key: 'count', label: 'trips', num: true, render: (r) => fmtNum(r.count) },
      { key: 'distance_m', label: 'distance', num: true, render: (r) => km(r.distance_m) },
      { key: 'moving_s', label: 'moving', num: true, render: (r) => minutes(r.moving_s) },
    ], travel.days, { empty: 'No trip in the week up to this day.' }),
    h('h3', {}, `Trips on ${day.value}`), table([
      { key: 'started_at', label: 'from', render: (t) => fmtTime(t.started_at) },
      { key: 'ended_at', label: 'to', render: (t) => fmtTime(t.ended_at) },
      { key: 'origin', label: 'origin', render: (t) => (t.origin && t.origin.site) || '—' },
      { key: 'destination', label: 'destination',
        render: (t) => (t.destination && t.destination.site) || '—' },
      { key: 'distance_m', label: 'distance', num: true, render: (t) => km(t.distance_m) },
    ], tripsOn(travel, day.value), { empty: 'No trip that day.' }));
  }

  return () => { gone = true; disposeMap(map); };
}

function consentForm(subjectId, purposeKeys, reload) {
  const purpose = select(purposeKeys, purposeKeys[0], { name: 'purpose' });
  const status = select([['granted', 'grant'], ['withdrawn', 'withdraw']], 'withdrawn',
    { name: 'status' });
  const version = h('input', { type: 'text', name: 'policy_version', value: '2026-01' });
  const evidence = h('input', { type: 'text', name: 'evidence',
    placeholder: 'what proves it, e.g. signed form 2026-031' });
  const submit = button('Record', null, { kind: 'primary', type: 'submit' });
  const form = h('form.inline-form', { onsubmit: (e) => {
    e.preventDefault();
    busy(submit, async () => {
      clearFormErrors(form);
      try {
        await api(`/v1/subjects/${subjectId}/consents`, { method: 'POST', body: {
          purpose: purpose.value, status: status.value, policy_version: version.value,
          evidence: evidence.value ? { note: evidence.value } : {} } });
        evidence.value = '';
        toast('Consent recorded in the ledger.');
        reload();
      } catch (err) { showFormErrors(form, err); }
    });
  } }, h('h3', {}, 'Record consent on the subject\'s behalf'),
  h('div.row', {}, field('Purpose', purpose, { fieldName: 'purpose' }),
    field('Change', status, { fieldName: 'status' }),
    field('Policy version', version, { fieldName: 'policy_version' }),
    field('Evidence', evidence, { fieldName: 'evidence', wide: true }),
    h('div.row-end', {}, submit)),
  h('div.form-error'));
  return form;
}
