// Policy: purposes (retention, precision, readers), the tenant's versioned policy (collection
// windows, accuracy, k, differential privacy) and privacy zones drawn on the map.
// Owners and admins edit; auditors read. Validation errors from the API show inline.

import { all, api } from '../api.js';
import { makeMap } from '../map.js';
import {
  badge, busy, button, card, clear, clearFormErrors, confirmAction, errorBox, field, fmtNum,
  fmtTime, h, select, shortId, showFormErrors, table, toast, yesNo,
} from '../ui.js';

const WRITERS = ['owner', 'admin'];
const ROLES = ['owner', 'admin', 'analyst', 'dispatcher', 'auditor'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

export async function render(root, ctx) {
  const writer = ctx.can(WRITERS);
  const purposesEl = h('div', { id: 'purposes' });
  const policyEl = h('div', { id: 'tenant-policy' });
  const zonesEl = h('div', { id: 'zones' });
  const versionsEl = h('div', { id: 'policy-versions' });
  root.append(
    h('div.page-head', {}, h('h1', {}, 'Policy'),
      h('p.muted', {}, writer
        ? 'Every change is validated by the API, applies to data already stored, and is '
          + 'written to the audit log; policy changes also make a new version.'
        : 'Read-only: only owners and admins change the policy.')),
    card('Purposes', purposesEl),
    card('Tenant policy', policyEl),
    card('Privacy zones', zonesEl),
    card('Policy versions', versionsEl));
  const reloadVersions = () => versions(versionsEl);
  purposes(purposesEl, writer);
  tenantPolicy(policyEl, writer, reloadVersions);
  reloadVersions();
  return zones(zonesEl, writer);
}

// ---------------------------------------------------------------------------- purposes

async function purposes(el, writer) {
  let rows;
  try {
    ({ purposes: rows } = await api('/v1/purposes'));
  } catch (err) {
    clear(el, errorBox(err));
    return;
  }
  const cols = ['key', 'title', 'precision', 'retention', 'consent', 'individual reads',
    'aggregates', 'reader roles'];
  const tbody = h('tbody');
  for (const p of rows) {
    const tr = h('tr', { dataset: { purpose: p.key } },
      h('td', {}, h('code', {}, p.key)),
      h('td', {}, p.title, p.description ? h('div.muted.small', {}, p.description) : null),
      h('td.num', { dataset: { col: 'precision_m' } }, `${fmtNum(p.precision_m)} m`),
      h('td.num', { dataset: { col: 'retention_days' } }, `${fmtNum(p.retention_days)} days`),
      h('td', {}, p.requires_consent ? badge('required') : badge('not needed', 'muted')),
      h('td', {}, yesNo(p.individual_access)),
      h('td', {}, yesNo(p.aggregate_use)),
      h('td', {}, (p.reader_roles || []).length ? p.reader_roles.join(', ') : '—'),
      writer ? h('td.actions', {}, button('Edit', () => openEditor(p, tr), {
        kind: 'small', dataset: { edit: p.key } })) : null);
    tbody.append(tr);
  }
  const tableEl = h('div.table-wrap', {}, h('table', {}, h('thead', {}, h('tr', {},
    cols.map((c) => h('th', {}, c)), writer ? h('th') : null)), tbody));
  clear(el, h('p.muted', {}, 'A ping is kept only at the finest precision and for the '
    + 'longest retention among the purposes it may serve; shortening a retention window or '
    + 'coarsening a precision applies to stored data at the next retention run, and to reads '
    + 'at once.'), rows.length ? tableEl : h('p.muted', {}, 'No purpose yet.'));
  if (writer) el.append(newPurposeForm(() => purposes(el, writer)));

  function openEditor(p, tr) {
    tbody.querySelectorAll('tr.editor').forEach((e) => e.remove());
    const editor = h('tr.editor', {}, h('td', { colspan: cols.length + 1 },
      purposeForm(p, async () => purposes(el, writer), () => editor.remove())));
    tr.after(editor);
    editor.querySelector('input')?.focus();
  }
}

function purposeInputs(p = {}) {
  return {
    key: h('input', { type: 'text', name: 'key', value: p.key || '', placeholder: 'dispatch' }),
    title: h('input', { type: 'text', name: 'title', value: p.title || '' }),
    description: h('input', { type: 'text', name: 'description', value: p.description || '' }),
    precision_m: h('input', { type: 'number', name: 'precision_m', min: 1, step: 1,
      value: p.precision_m ?? '' }),
    retention_days: h('input', { type: 'number', name: 'retention_days', min: 1, step: 1,
      value: p.retention_days ?? '' }),
    requires_consent: h('input', { type: 'checkbox', name: 'requires_consent',
      checked: p.requires_consent ?? true }),
    individual_access: h('input', { type: 'checkbox', name: 'individual_access',
      checked: p.individual_access }),
    aggregate_use: h('input', { type: 'checkbox', name: 'aggregate_use',
      checked: p.aggregate_use }),
    reader_roles: ROLES.map((r) => h('input', { type: 'checkbox', value: r,
      checked: (p.reader_roles || []).includes(r) })),
  };
}

function readPurpose(i) {
  const num = (v) => (v.value === '' ? null : Number(v.value));
  return {
    key: i.key.value.trim(), title: i.title.value, description: i.description.value,
    precision_m: num(i.precision_m), retention_days: num(i.retention_days),
    requires_consent: i.requires_consent.checked, individual_access: i.individual_access.checked,
    aggregate_use: i.aggregate_use.checked,
    reader_roles: i.reader_roles.filter((c) => c.checked).map((c) => c.value),
  };
}

function purposeFields(i, { withKey }) {
  const check = (input, label, name) => h('label.check', { dataset: { field: name } }, input,
    ` ${label}`);
  return [
    h('div.row', {},
      withKey ? field('Key', i.key, { fieldName: 'key', hint: 'cannot change later' }) : null,
      field('Title', i.title, { fieldName: 'title' }),
      field('Precision (m)', i.precision_m, { fieldName: 'precision_m',
        hint: 'finest precision allowed' }),
      field('Retention (days)', i.retention_days, { fieldName: 'retention_days',
        hint: 'how long a ping may serve it' })),
    h('div.row', {}, field('Description', i.description, { fieldName: 'description',
      wide: true })),
    h('div.row', {},
      h('div.field.auto', {}, h('span.label', {}, 'Rules'),
        h('div.checks', {}, check(i.requires_consent, 'requires consent', 'requires_consent'),
          check(i.individual_access, 'individual reads', 'individual_access'),
          check(i.aggregate_use, 'aggregate reports', 'aggregate_use'))),
      h('div.field.auto', { dataset: { field: 'reader_roles' } },
        h('span.label', {}, 'Roles that may read individuals'),
        h('div.checks', {}, i.reader_roles.map((c) => h('label.check', {}, c, ` ${c.value}`))))),
  ];
}

function purposeForm(p, saved, close) {
  const i = purposeInputs(p);
  const save = button('Save', null, { kind: 'primary', type: 'submit' });
  const form = h('form.editor-form', { dataset: { purpose: p.key }, onsubmit: (e) => {
    e.preventDefault();
    busy(save, async () => {
      clearFormErrors(form);
      const now = readPurpose(i);
      const body = {};
      for (const [k, v] of Object.entries(now)) {
        if (k === 'key') continue;
        const before = p[k] ?? (k === 'description' ? '' : null);
        if (JSON.stringify(v) !== JSON.stringify(before)) body[k] = v;
      }
      if (!Object.keys(body).length) { close(); return; }
      try {
        await api(`/v1/purposes/${p.purpose_id}`, { method: 'PATCH', body });
        toast(`Purpose "${p.key}" saved.`);
        await saved();
      } catch (err) { showFormErrors(form, err); }
    });
  } }, h('h3', {}, `Edit purpose `, h('code', {}, p.key)), purposeFields(i, { withKey: false }),
  h('div.form-error'),
  h('div.actions', {}, save, button('Cancel', close, { kind: 'ghost' }),
    h('span.spacer'),
    button('Delete or archive', () => remove(p, saved, form), { kind: 'ghost danger' })));
  return form;
}

async function remove(p, saved, form) {
  if (!confirmAction(`Remove purpose "${p.key}"? A purpose that consents or pings refer to is `
    + 'archived instead; its data keeps ageing by its rules.')) return;
  try {
    const { outcome } = await api(`/v1/purposes/${p.purpose_id}`, { method: 'DELETE' });
    toast(`Purpose "${p.key}" ${outcome}.`);
    await saved();
  } catch (err) { showFormErrors(form, err); }
}

function newPurposeForm(saved) {
  const i = purposeInputs();
  const body = h('div.collapsible', { hidden: true });
  const save = button('Add purpose', null, { kind: 'primary', type: 'submit' });
  const form = h('form.editor-form', { onsubmit: (e) => {
    e.preventDefault();
    busy(save, async () => {
      clearFormErrors(form);
      try {
        const created = await api('/v1/purposes', { method: 'POST', body: readPurpose(i) });
        toast(`Purpose "${created.key}" added.`);
        await saved();
      } catch (err) { showFormErrors(form, err); }
    });
  } }, body);
  body.append(h('h3', {}, 'New purpose'), purposeFields(i, { withKey: true }),
    h('div.form-error'), h('div.actions', {}, save));
  const toggle = button('+ New purpose', () => {
    body.hidden = !body.hidden;
    toggle.hidden = true;
  }, { kind: 'ghost' });
  return h('div', {}, toggle, form);
}

// ---------------------------------------------------------------------------- tenant policy

async function tenantPolicy(el, writer, reloadVersions) {
  let pol;
  try {
    pol = await api('/v1/policy');
  } catch (err) {
    clear(el, errorBox(err));
    return;
  }
  const dis = !writer;
  const num = (name, value, attrs = {}) => h('input', { type: 'number', name, value: value ?? '',
    disabled: dis, ...attrs });
  const zonesList = typeof Intl.supportedValuesOf === 'function'
    ? Intl.supportedValuesOf('timeZone') : [];
  const tzList = h('datalist', { id: 'tz-list' }, zonesList.map((z) => h('option', { value: z })));
  const i = {
    timezone: h('input', { type: 'text', name: 'timezone', value: pol.timezone,
      list: 'tz-list', disabled: dis }),
    min_accuracy_m: num('min_accuracy_m', pol.min_accuracy_m, { min: 1, step: 'any' }),
    k_min_subjects: num('k_min_subjects', pol.k_min_subjects, { min: 2, step: 1 }),
    dp: h('input', { type: 'checkbox', name: 'dp', checked: pol.dp_epsilon_per_query !== null,
      disabled: dis }),
    dp_epsilon_per_query: num('dp_epsilon_per_query', pol.dp_epsilon_per_query ?? 0.5,
      { step: 'any', min: 0.01 }),
    dp_epsilon_per_day: num('dp_epsilon_per_day', pol.dp_epsilon_per_day ?? 5,
      { step: 'any', min: 0.01 }),
    aggregate_retention_days: num('aggregate_retention_days', pol.aggregate_retention_days,
      { min: 1, step: 1 }),
    keep_consent_proof_on_erasure: h('input', { type: 'checkbox',
      name: 'keep_consent_proof_on_erasure', checked: pol.keep_consent_proof_on_erasure,
      disabled: dis }),
    stay_radius_m: num('stay_radius_m', pol.stay_radius_m, { min: 10, step: 1 }),
    stay_min_minutes: num('stay_min_minutes', pol.stay_min_minutes, { min: 1, step: 1 }),
  };
  const syncDp = () => {
    i.dp_epsilon_per_query.disabled = dis || !i.dp.checked;
    i.dp_epsilon_per_day.disabled = dis || !i.dp.checked;
  };
  i.dp.addEventListener('change', syncDp);
  syncDp();
  const windows = windowsEditor(pol.collection_windows || [], dis);
  const save = button('Save policy', null, { kind: 'primary', type: 'submit', id: 'policy-save' });

  const form = h('form.policy-form', { onsubmit: (e) => {
    e.preventDefault();
    busy(save, async () => {
      clearFormErrors(form);
      const n = (input) => (input.value === '' ? null : Number(input.value));
      const now = {
        timezone: i.timezone.value.trim(),
        min_accuracy_m: n(i.min_accuracy_m),
        k_min_subjects: n(i.k_min_subjects),
        dp_epsilon_per_query: i.dp.checked ? n(i.dp_epsilon_per_query) : null,
        dp_epsilon_per_day: i.dp.checked ? n(i.dp_epsilon_per_day) : null,
        aggregate_retention_days: n(i.aggregate_retention_days),
        keep_consent_proof_on_erasure: i.keep_consent_proof_on_erasure.checked,
        stay_radius_m: n(i.stay_radius_m),
        stay_min_minutes: n(i.stay_min_minutes),
        collection_windows: windows.value(),
      };
      const body = {};
      for (const [k, v] of Object.entries(now)) {
        if (JSON.stringify(v) !== JSON.stringify(pol[k] ?? null)) body[k] = v;
      }
      if ('dp_epsilon_per_query' in body || 'dp_epsilon_per_day' in body) {
        body.dp_epsilon_per_query = now.dp_epsilon_per_query;
        body.dp_epsilon_per_day = now.dp_epsilon_per_day;
      }
      if (!Object.keys(body).length) { toast('Nothing changed.', 'info'); return; }
      try {
        await api('/v1/policy', { method: 'PATCH', body });
        toast('Policy saved as a new version.');
        tenantPolicy(el, writer, reloadVersions);
        reloadVersions();
      } catch (err) { showFormErrors(form, err); }
    });
  } },
  h('p.muted', {}, `Version ${pol.version}, ${fmtTime(pol.created_at)} by `,
    h('span.mono', {}, pol.created_by || '—')),
  tzList,
  h('div.row', {},
    field('Time zone', i.timezone, { fieldName: 'timezone', hint: 'default for subjects and '
      + 'windows' }),
    field('Minimum accuracy (m)', i.min_accuracy_m, { fieldName: 'min_accuracy_m',
      hint: 'less accurate pings are dropped; empty: keep all' }),
    field('k (minimum subjects)', i.k_min_subjects, { fieldName: 'k_min_subjects',
      hint: 'per released cell or group' }),
    field('Aggregate retention (days)', i.aggregate_retention_days, {
      fieldName: 'aggregate_retention_days', hint: 'how long rollups are kept' })),
  h('div.row', {},
    h('div.field.auto', {}, h('span.label', {}, 'Differential privacy'),
      h('label.check', {}, i.dp, ' add calibrated noise to aggregates')),
    field('ε per query', i.dp_epsilon_per_query, { fieldName: 'dp_epsilon_per_query' }),
    field('ε per day (budget)', i.dp_epsilon_per_day, { fieldName: 'dp_epsilon_per_day' }),
    h('div.field.auto', { dataset: { field: 'keep_consent_proof_on_erasure' } },
      h('span.label', {}, 'Erasure'),
      h('label.check', {}, i.keep_consent_proof_on_erasure, ' keep the consent ledger as proof'))),
  h('div.row', {},
    field('Stop radius (m)', i.stay_radius_m, { fieldName: 'stay_radius_m',
      hint: 'stop detection for travel reports' }),
    field('Stop minimum (minutes)', i.stay_min_minutes, { fieldName: 'stay_min_minutes' })),
  h('h3', {}, 'Collection windows'),
  h('p.muted.small', {}, 'Weekly hours when pings are kept, in each subject\'s time zone. An '
    + 'end before the start runs overnight; 24:00 ends at midnight. No window: always.'),
  windows.el,
  h('div.form-error'),
  writer ? h('div.actions', {}, save) : null);
  clear(el, form);
}

function windowsEditor(initial, disabled) {
  const list = h('div.windows', { dataset: { field: 'collection_windows' } });
  const rows = [];
  function addRow(w = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00',
    end: '18:00' }) {
    const idx = () => rows.indexOf(row);
    const days = DAYS.map((d) => h('input', { type: 'checkbox', value: d,
      checked: w.days.includes(d), disabled }));
    const start = h('input.time', { type: 'text', value: w.start, placeholder: 'HH:MM',
      'aria-label': 'start', disabled, inputmode: 'numeric' });
    const end = h('input.time', { type: 'text', value: w.end, placeholder: 'HH:MM',
      'aria-label': 'end', disabled, inputmode: 'numeric' });
    const row = h('div.window-row', {},
      h('div.days', {}, days.map((c) => h('label.day', {}, c, c.value))),
      h('div.field.time-field', {}, start), h('span.muted', {}, '–'),
      h('div.field.time-field', {}, end),
      disabled ? null : button('Remove', () => {
        rows.splice(idx(), 1);
        row.remove();
        renumber();
      }, { kind: 'small ghost' }));
    row.read = () => ({ days: days.filter((c) => c.checked).map((c) => c.value),
      start: start.value.trim(), end: end.value.trim() });
    row.number = (n) => {
      row.querySelector('.days').dataset.field = `collection_windows[${n}].days`;
      start.dataset.field = `collection_windows[${n}].start`;
      end.dataset.field = `collection_windows[${n}].end`;
      row.dataset.field = `collection_windows[${n}]`;
    };
    rows.push(row);
    list.insertBefore(row, empty);
    renumber();
  }
  const empty = h('p.muted.small', {}, 'Always collecting (no window).');
  list.append(empty);
  function renumber() {
    rows.forEach((r, n) => r.number(n));
    empty.hidden = rows.length > 0;
  }
  initial.forEach((w) => addRow(w));
  renumber();
  const el = h('div', {}, list, disabled ? null : button('+ Add window', () => addRow(), {
    kind: 'ghost small' }));
  return { el, value: () => rows.map((r) => r.read()) };
}

// ---------------------------------------------------------------------------- versions

async function versions(el) {
  try {
    const { versions: rows } = await api('/v1/policy/versions');
    clear(el, table([
      { key: 'version', label: 'version', num: true },
      { key: 'created_at', label: 'at', render: (v) => fmtTime(v.created_at) },
      { key: 'created_by', label: 'by', render: (v) => h('span.mono', {}, v.created_by || '') },
      { key: 'changed', label: 'changed', render: (v) => (v.changed || []).join(', ') || '—' },
    ], rows.slice(0, 20)));
  } catch (err) {
    clear(el, errorBox(err));
  }
}

// ---------------------------------------------------------------------------- zones

async function zones(el, writer) {
  const mapEl = h('div.map', { id: 'zones-map' });
  const listEl = h('div', { id: 'zones-list' });
  const drawEl = h('div.draw');
  clear(el, h('p.muted', {}, 'Nothing recorded inside a zone is kept. A zone applies to every '
    + 'subject, or to one (a worker\'s home). What it hides is drawn at random around what it '
    + 'protects, so that its edge does not point at the place.'),
  h('div.zones-layout', {}, h('div', {}, mapEl, drawEl), listEl));
  const [map, subjects] = await Promise.all([
    makeMap(mapEl),
    all('/v1/subjects', 'subjects', { limit: 500 }).then((r) => r.items).catch(() => []),
  ]);
  const names = new Map(subjects.map((s) => [s.subject_id, s.external_ref]));
  const L = window.L;
  const layer = L.featureGroup().addTo(map);
  const shapes = new Map();

  function shape(z) {
    const style = { color: z.subject_id ? '#7c3aed' : '#dc2626', weight: 1.5, fillOpacity: 0.18 };
    const g = z.geometry;
    let s;
    if (g.type === 'Point') {
      s = L.circle([g.coordinates[1], g.coordinates[0]], { ...style, radius: Number(z.radius_m) });
    } else {
      s = L.geoJSON(g, { style });
    }
    return s.bindTooltip(z.name, { sticky: true });
  }

  // What a zone protects and how well: the numbers it states (from its size and the hiding
  // rule), never its random offset, which the API does not return.
  function protection(z) {
    const p = z.protection || {};
    if (p.hiding === 'legacy') {
      return h('div.zone-protection', {}, badge('centred on the place', 'bad'),
        h('div.small.muted', {}, 'Drawn before zones were offset: its edge points at what it '
          + 'protects. Draw it again.'));
    }
    return h('div.zone-protection', { title: 'With 95% confidence no reader locates the place '
      + 'closer than this, from any number of trips.' },
    h('span.nowrap', {}, `not within ${fmtNum(p.located_no_better_than_m)} m`),
    h('div.small.muted', {}, `circle fits off by ≥ ${fmtNum(p.centre_estimate_off_by_m)} m; `
      + `trips hidden up to ${fmtNum(p.hidden_beyond_edge_m)} m beyond its edge`));
  }

  async function load() {
    let list;
    try {
      ({ zones: list } = await api('/v1/zones'));
    } catch (err) {
      clear(listEl, errorBox(err));
      return;
    }
    layer.clearLayers();
    shapes.clear();
    list.forEach((z) => { const s = shape(z).addTo(layer); shapes.set(z.zone_id, s); });
    if (list.length) map.fitBounds(layer.getBounds(), { padding: [20, 20], maxZoom: 14 });
    clear(listEl, table([
      { key: 'name', label: 'zone', render: (z) => h('div', {}, h('a', { href: '#',
        title: `created ${fmtTime(z.created_at)} by ${z.created_by || '?'}`, onclick: (e) => {
          e.preventDefault();
          const s = shapes.get(z.zone_id);
          map.fitBounds(s.getBounds(), { maxZoom: 15, padding: [30, 30] });
          s.openTooltip();
        } }, z.name), h('div.small', {}, z.subject_id
        ? h('a.muted', { href: `#/subjects/${z.subject_id}` }, `subject `
          + `${names.get(z.subject_id) || shortId(z.subject_id)}`)
        : badge('everyone', 'warn'))) },
      { key: 'shape', label: 'protects', render: (z) => h('span.nowrap', {},
        z.geometry.type === 'Point' ? `circle ${fmtNum(Number(z.radius_m))} m`
          : `${z.geometry.type.toLowerCase()} (≈ ${fmtNum(Number(
            (z.protection || {}).protects?.equivalent_radius_m || 0))} m radius)`) },
      { key: 'protection', label: 'how well', render: protection },
      writer ? { key: 'del', label: '', render: (z) => {
        const b = button('Delete', () => busy(b, async () => {
          if (!confirmAction(`Delete zone "${z.name}"? Pings inside it will be kept again.`)) {
            return;
          }
          try {
            await api(`/v1/zones/${z.zone_id}`, { method: 'DELETE' });
            toast('Zone deleted.');
            load();
          } catch (err) { toast(err.message, 'error'); }
        }), { kind: 'small ghost danger' });
        return b;
      } } : null,
    ].filter(Boolean), list, { empty: 'No privacy zone.' }));
  }

  if (writer) drawTool(map, drawEl, subjects, load);
  await load();
  return () => map.remove();
}

function drawTool(map, el, subjects, reload) {
  const L = window.L;
  let mode = null;
  let points = [];
  const preview = L.layerGroup().addTo(map);
  const name = h('input', { type: 'text', name: 'name', placeholder: 'e.g. clinic entrance' });
  const subject = select([['', 'every subject'], ...subjects.map((s) => [s.subject_id,
    s.external_ref])], '', { name: 'subject_id' });
  const radius = h('input', { type: 'number', name: 'radius_m', value: 200, min: 1,
    max: 50000 });
  const status = h('span.muted.draw-status', {}, 'Draw a new zone: ');
  const polyBtn = button('Polygon', () => start('polygon'), { kind: 'small' });
  const circleBtn = button('Circle', () => start('circle'), { kind: 'small' });
  const undoBtn = button('Undo point', () => { points.pop(); redraw(); }, { kind: 'small ghost' });
  const cancelBtn = button('Cancel', () => reset(), { kind: 'small ghost' });
  const save = button('Save zone', null, { kind: 'primary', type: 'submit' });
  const radiusField = field('Radius (m)', radius, { fieldName: 'radius_m' });
  const form = h('form.inline-form.zone-form', { hidden: true, onsubmit: (e) => {
    e.preventDefault();
    busy(save, submit);
  } },
  h('div.row', {}, field('Name', name, { fieldName: 'name' }),
    field('Applies to', subject, { fieldName: 'subject_id' }), radiusField,
    h('div.row-end', {}, save)),
  h('div.field', { dataset: { field: 'geometry' } }),
  h('div.form-error'));

  function start(m) {
    reset();
    mode = m;
    map.getContainer().classList.add('drawing');
    form.hidden = false;
    radiusField.hidden = m !== 'circle';
    status.textContent = m === 'polygon'
      ? 'Click the map to add corners (at least 3), then save.'
      : 'Click the map to place the centre, set the radius, then save.';
  }

  function reset() {
    mode = null;
    points = [];
    preview.clearLayers();
    form.hidden = true;
    clearFormErrors(form);
    map.getContainer().classList.remove('drawing');
    status.textContent = 'Draw a new zone: ';
  }

  function redraw() {
    preview.clearLayers();
    if (mode === 'polygon') {
      if (points.length >= 3) L.polygon(points, { color: '#0f766e', dashArray: '4 4' })
        .addTo(preview);
      else if (points.length === 2) L.polyline(points, { color: '#0f766e' }).addTo(preview);
      points.forEach((p) => L.circleMarker(p, { radius: 4, color: '#0f766e', fillOpacity: 1 })
        .addTo(preview));
    } else if (mode === 'circle' && points.length) {
      L.circle(points[0], { radius: Number(radius.value) || 0, color: '#0f766e',
        dashArray: '4 4' }).addTo(preview);
    }
    el.dataset.points = String(points.length);
  }

  map.on('click', (e) => {
    if (!mode) return;
    const p = [Number(e.latlng.lat.toFixed(6)), Number(e.latlng.wrap().lng.toFixed(6))];
    if (mode === 'circle') points = [p];
    else points.push(p);
    redraw();
  });
  radius.addEventListener('input', redraw);

  async function submit() {
    clearFormErrors(form);
    let geometry;
    let radiusM = null;
    if (mode === 'polygon') {
      const ring = points.map(([lat, lon]) => [lon, lat]);
      if (ring.length) ring.push(ring[0]);
      geometry = { type: 'Polygon', coordinates: [ring] };
    } else {
      geometry = { type: 'Point', coordinates: points.length ? [points[0][1], points[0][0]] : [] };
      radiusM = radius.value === '' ? null : Number(radius.value);
    }
    try {
      await api('/v1/zones', { method: 'POST', body: {
        name: name.value, subject_id: subject.value || null, geometry, radius_m: radiusM } });
      toast(`Zone "${name.value}" saved.`);
      name.value = '';
      reset();
      reload();
    } catch (err) {
      showFormErrors(form, err);
    }
  }

  el.append(h('div.draw-bar', {}, status, polyBtn, circleBtn, undoBtn, cancelBtn), form);
}
