// Subjects: consent state and history, devices, legal holds, and export and erasure requests
// with their due dates. Writes (owner, admin) go through the same API as everything else.

import { all, api, download } from '../api.js';
import {
  badge, busy, button, card, clear, clearFormErrors, confirmAction, errorBox, field, fmtDate,
  fmtTime, h, select, shortId, showFormErrors, table, toast, yesNo,
} from '../ui.js';

const WRITERS = ['owner', 'admin'];

export async function render(root, ctx) {
  const { items: subjects } = await all('/v1/subjects', 'subjects', { limit: 500 });
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
    card('Export and erasure requests', reqEl),
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
        { key: 'kind', label: 'kind', render: (r) => badge(r.kind === 'access' ? 'export'
          : 'erasure', r.kind === 'erasure' ? 'warn' : '') },
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
      const b = button('Export bundle', () => busy(b, async () => {
        try {
          await download(`/v1/requests/${r.request_id}/bundle`, {},
            `subject-${r.subject_id}.zip`);
          toast('Export downloaded; the request is completed.');
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
  const kind = select([['access', 'export (access)'], ['erasure', 'erasure']], 'access',
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
  root.append(
    h('a.back', { href: '#/subjects' }, '‹ All subjects'),
    h('div.page-head', {}, h('h1', {}, s.external_ref,
      s.display_name ? h('span.muted', {}, ` · ${s.display_name}`) : null),
    h('p.chips', {}, badge(s.timezone || 'tenant time zone'),
      s.on_duty ? badge('on duty', 'ok') : badge('off duty', 'muted'),
      s.collection_blocked ? badge(`collection blocked: ${s.blocked_reason || ''}`, 'bad') : null,
      h('span.muted.mono', {}, s.subject_id))),
    h('div.grid-2', {}, card('Consent now', stateEl), card('Devices', devicesEl)),
    card('Consent history', historyEl),
    card('Legal holds', holdsEl),
    card('Export and erasure requests', reqEl));

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
  holds(holdsEl, { writer, names, subjectId: id });
  requests(reqEl, { writer, names, subjectId: id, onChange: () => {
    loadConsent();
    loadDevices();
  } });
  return null;
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
