// Audit: the hash-chained log with filters and its verification, and retention evidence.

import { all, api } from '../api.js';
import {
  badge, busy, button, card, clear, errorBox, field, fmtNum, fmtTime, h, shortId, table,
} from '../ui.js';

const PAGE = 100;

function isChange(v) {
  return v && typeof v === 'object' && !Array.isArray(v) && 'from' in v && 'to' in v
    && Object.keys(v).length === 2;
}

function show(v) {
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

/** Audit details as one line; {"changed": {k: {from, to}}} reads "k: a → b". */
function detailsText(d) {
  if (!d || !Object.keys(d).length) return '';
  const parts = [];
  for (const [k, v] of Object.entries(d)) {
    if (k === 'changed' && v && typeof v === 'object' && Object.values(v).every(isChange)) {
      for (const [f, c] of Object.entries(v)) parts.push(`${f}: ${show(c.from)} → ${show(c.to)}`);
    } else if (isChange(v)) {
      parts.push(`${k}: ${show(v.from)} → ${show(v.to)}`);
    } else {
      parts.push(`${k}: ${show(v)}`);
    }
  }
  return parts.join(' · ');
}

/** Who acted: a member's name and email, a device's identifier, else the raw actor. */
function actorCell(r) {
  if (r.actor_email) {
    return h('span.actor', { title: r.actor_id }, r.actor_name
      ? [r.actor_name, ' ', h('span.muted', {}, r.actor_email)] : r.actor_email);
  }
  const label = r.actor_name ? `${r.actor_kind} ${r.actor_name}` : r.actor_id;
  return h('span.mono', { title: r.actor_id }, label && label.length > 28
    ? `${label.slice(0, 27)}…` : label);
}

export async function render(root, { me, can }) {
  root.append(h('div.page-head', {}, h('h1', {}, 'Audit'),
    h('p.muted', {}, 'Every change, individual read, report and refused request is appended '
      + 'to a per-tenant hash chain that the application cannot rewrite.')));
  if (can(['owner', 'auditor'])) {
    const verify = h('div', { id: 'audit-verify' });
    const log = h('div', { id: 'audit-log' });
    root.append(card('Chain verification', verify), card('Audit log', log));
    verifyChain(verify);
    auditLog(log);
  } else {
    root.append(h('div.alert.info', {}, `The audit log is open to owners and auditors; as `
      + `${me.role} you see the retention evidence only.`));
  }
  const runs = h('div', { id: 'retention-runs' });
  root.append(card('Retention runs', runs));
  retentionRuns(runs);
  return null;
}

async function verifyChain(el) {
  const again = button('Verify again', () => busy(again, () => verifyChain(el)), {
    kind: 'ghost' });
  clear(el, h('p.muted', {}, 'Recomputing the chain…'));
  try {
    const v = await api('/v1/audit/verify');
    clear(el, h(`div.verify.${v.ok ? 'ok' : 'broken'}`, {},
      h('div.verify-mark', {}, v.ok ? '✓' : '✗'),
      h('div', {},
        h('strong', {}, v.ok ? `Chain intact: ${fmtNum(v.entries)} entries verified`
          : `Chain broken at entry ${v.first_broken_seq}`),
        h('div.muted.mono', {}, v.head ? `head ${v.head}` : 'no entries yet'),
        v.reasons && v.reasons.length
          ? h('ul', {}, v.reasons.map((r) => h('li', {}, r))) : null),
      again));
  } catch (err) {
    clear(el, errorBox(err), again);
  }
}

function auditLog(el) {
  const inputs = {
    from: h('input', { type: 'date', name: 'from' }),
    to: h('input', { type: 'date', name: 'to' }),
    action: h('input', { type: 'text', name: 'action', placeholder: 'exact or prefix: purpose',
      title: 'an action (purpose.update) or a prefix (purpose, read, report)' }),
    member: h('input', { type: 'text', name: 'member', placeholder: 'email or name',
      title: 'part of the acting member\'s email or name' }),
    subject_ref: h('input', { type: 'text', name: 'subject_ref', placeholder: 'worker-001',
      title: 'part of the subject\'s reference' }),
  };
  const apply = button('Apply', null, { kind: 'primary', type: 'submit' });
  const reset = button('Clear', () => {
    Object.values(inputs).forEach((i) => { i.value = ''; });
    busy(apply, load);
  }, { kind: 'ghost' });
  const message = h('div.messages');
  const out = h('div');
  const pager = h('div.pager');
  const form = h('form.toolbar', { onsubmit: (e) => { e.preventDefault(); busy(apply, load); } },
    field('From (UTC day)', inputs.from), field('To (UTC day, exclusive)', inputs.to),
    field('Action', inputs.action),
    field('Member', inputs.member), field('Subject', inputs.subject_ref),
    h('div.toolbar-actions', {}, apply, reset));
  el.append(form, message, out, pager);
  let entries = [];
  let page = 0;

  function show() {
    const slice = entries.slice(page * PAGE, (page + 1) * PAGE);
    clear(out, table([
      { key: 'seq', label: '#', num: true },
      { key: 'at', label: 'at', render: (r) => fmtTime(r.at) },
      { key: 'actor_id', label: 'actor', render: actorCell },
      { key: 'action', label: 'action', render: (r) => badge(r.action,
        r.action === 'auth.denied' ? 'warn' : '') },
      { key: 'target', label: 'target', render: (r) => (r.target_type
        ? h('span', { title: r.target_id || '' }, r.target_type, ' ', r.target_label
          ? h('span.target-label', {}, r.target_label)
          : h('span.mono.muted', {}, r.target_id && r.target_id.length > 20
            ? shortId(r.target_id) : (r.target_id || '')))
        : '') },
      { key: 'subject_id', label: 'subject', render: (r) => (r.subject_id
        ? h('a', { href: `#/subjects/${r.subject_id}`, title: r.subject_id },
          r.subject_ref || shortId(r.subject_id)) : '') },
      { key: 'details', label: 'details', render: (r) => h('span.details', {
        title: JSON.stringify(r.details) }, detailsText(r.details)) },
    ], slice, { empty: 'No entry matches these filters.',
      rowAttrs: (r) => ({ dataset: { action: r.action } }) }));
    const pages = Math.max(1, Math.ceil(entries.length / PAGE));
    clear(pager,
      button('‹ Newer', () => { page -= 1; show(); }, { kind: 'ghost', disabled: page === 0 }),
      h('span.muted', {}, `page ${page + 1} of ${pages} · ${fmtNum(entries.length)} entries, `
        + 'newest first'),
      button('Older ›', () => { page += 1; show(); }, { kind: 'ghost',
        disabled: page >= pages - 1 }));
  }

  async function load() {
    clear(message);
    const q = {
      from: inputs.from.value ? `${inputs.from.value}T00:00:00Z` : null,
      to: inputs.to.value ? `${inputs.to.value}T00:00:00Z` : null,
      action: inputs.action.value.trim(), member: inputs.member.value.trim(),
      subject_ref: inputs.subject_ref.value.trim(), order: 'desc', limit: 1000,
    };
    try {
      const { items, truncated } = await all('/v1/audit', 'entries', q, 10_000);
      entries = items;
      page = 0;
      if (truncated) {
        message.append(h('div.alert.info', {}, 'Showing the newest 10,000 matching entries; '
          + 'narrow the filters (dates, action, member) to see older ones.'));
      }
      show();
    } catch (err) {
      message.append(errorBox(err));
    }
  }
  busy(apply, load);
}

async function retentionRuns(el) {
  try {
    const { runs } = await api('/v1/retention/runs', { query: { limit: 200 } });
    clear(el, h('p.muted', {}, 'What each scheduler run aged, deleted or dropped, per purpose, '
      + 'and up to which cut-off.'),
    table([
      { key: 'started_at', label: 'started', render: (r) => fmtTime(r.started_at) },
      { key: 'kind', label: 'kind', render: (r) => badge(r.kind) },
      { key: 'purpose', label: 'purpose' },
      { key: 'cutoff', label: 'cut-off', render: (r) => fmtTime(r.cutoff) },
      { key: 'aged', label: 'aged', num: true, render: (r) => fmtNum(r.aged) },
      { key: 'deleted', label: 'deleted', num: true, render: (r) => fmtNum(r.deleted) },
      { key: 'dropped', label: 'dropped', num: true, render: (r) => fmtNum(r.dropped) },
      { key: 'finished_at', label: 'finished', render: (r) => fmtTime(r.finished_at) },
    ], runs, { empty: 'No retention run yet: the scheduler records one per purpose and run.' }));
  } catch (err) {
    clear(el, errorBox(err));
  }
}
