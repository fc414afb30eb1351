// Small DOM helpers. Text from the API is always set as text, never parsed as HTML.

export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  // the API validates every write; its messages are shown inline instead of the browser's
  if (el.tagName === 'FORM') el.noValidate = true;
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = [el.className, v].filter(Boolean).join(' ');
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---------------------------------------------------------------------------- formatting

const dtFmt = new Intl.DateTimeFormat('en-GB', {
  year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit',
  timeZone: 'UTC', hour12: false,
});
const dFmt = new Intl.DateTimeFormat('en-GB', {
  year: 'numeric', month: 'short', day: '2-digit', timeZone: 'UTC',
});

/** A timestamp in UTC, e.g. "03 Feb 2026, 14:05 UTC" ("—" when empty). */
export function fmtTime(v) {
  if (!v) return '—';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : `${dtFmt.format(d)} UTC`.replace(/ /g, '\u00a0');
}

export function fmtDate(v) {
  if (!v) return '—';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : dFmt.format(d).replace(/ /g, '\u00a0');
}

export function fmtNum(v, digits = 0) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v !== 'number') return String(v);
  return v.toLocaleString('en-GB', { maximumFractionDigits: digits });
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : '—';
}

export function badge(text, kind = '') {
  return h(`span.badge${kind ? `.${kind}` : ''}`, {}, text);
}

export function yesNo(v) {
  return v ? badge('yes', 'ok') : badge('no', 'muted');
}

// ---------------------------------------------------------------------------- tables

/**
 * columns: [{key, label, render?(row), num?: bool}], rows: objects.
 * Returns a <div class="table-wrap"> with a table, or an "empty" note.
 */
export function table(columns, rows, { empty = 'Nothing here yet.', rowAttrs } = {}) {
  if (!rows || rows.length === 0) return h('p.muted.empty', {}, empty);
  const head = h('tr', {}, columns.map((c) => h(`th${c.num ? '.num' : ''}`, { scope: 'col' },
    c.label)));
  const body = rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {}, columns.map((c) => {
    const v = c.render ? c.render(r) : r[c.key];
    return h(`td${c.num ? '.num' : ''}`, {}, v === undefined || v === null ? '—' : v);
  })));
  return h('div.table-wrap', {}, h('table', {}, h('thead', {}, head), h('tbody', {}, body)));
}

// ---------------------------------------------------------------------------- errors

/** A box with the API's message (and its code); the page stays usable. */
export function errorBox(err, prefix = '') {
  const msg = err && err.message ? err.message : String(err);
  const code = err && err.code ? err.code : '';
  return h('div.alert.error', { role: 'alert' },
    prefix ? h('strong', {}, `${prefix} `) : null, msg,
    code ? h('code.code', {}, code) : null);
}

/** Flatten the API's details ({field: [msgs]} possibly nested) into [[path, msg], ...]. */
export function flattenDetails(details, prefix = '') {
  const out = [];
  if (Array.isArray(details)) {
    for (const d of details) {
      if (typeof d === 'string') out.push([prefix, d]);
      else out.push(...flattenDetails(d, prefix));
    }
  } else if (details && typeof details === 'object') {
    for (const [k, v] of Object.entries(details)) {
      // inner keys that already carry the full path (collection_windows[0].start) win
      const path = /^\d+$/.test(k) ? `${prefix}[${k}]` : (k.startsWith(prefix) || !prefix
        ? k : `${prefix}.${k}`);
      out.push(...flattenDetails(v, path));
    }
  } else if (details !== undefined && details !== null) {
    out.push([prefix, String(details)]);
  }
  return out;
}

/**
 * Show a failed write inside `form`: each message under the input whose data-field matches
 * its path (or the nearest parent path), the rest in the form's error box.
 */
export function showFormErrors(form, err) {
  clearFormErrors(form);
  const box = form.querySelector('.form-error');
  const rest = [];
  for (const [path, msg] of flattenDetails(err.details)) {
    let target = null;
    let p = path;
    while (p && !target) {
      target = form.querySelector(`[data-field="${CSS.escape(p)}"]`);
      if (!target) p = p.replace(/(\.[^.[\]]+|\[\d+\])$/, '') === p ? '' :
        p.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
    }
    if (target) {
      const holder = target.closest('.field, .window-row') || target.parentElement;
      holder.classList.add('invalid');
      const label = p === path ? msg : `${path.slice(p.length).replace(/^\./, '')}: ${msg}`;
      holder.append(h('div.field-error', {}, label));
    } else {
      rest.push(path ? `${path}: ${msg}` : msg);
    }
  }
  if (box) {
    clear(box, errorBox(err), rest.length ? h('ul', {}, rest.map((r) => h('li', {}, r))) : null);
  }
}

export function clearFormErrors(form) {
  form.querySelectorAll('.field-error').forEach((e) => e.remove());
  form.querySelectorAll('.invalid').forEach((e) => e.classList.remove('invalid'));
  const box = form.querySelector('.form-error');
  if (box) box.replaceChildren();
}

// ---------------------------------------------------------------------------- widgets

export function toast(message, kind = 'ok') {
  const el = document.getElementById('toast');
  const item = h(`div.toast-item.${kind}`, {}, message);
  el.append(item);
  setTimeout(() => item.remove(), 4000);
}

export function card(title, ...children) {
  return h('section.card', {}, title ? h('h2', {}, title) : null, ...children);
}

export function stat(label, value, hint) {
  return h('div.stat', {}, h('div.stat-value', {}, value), h('div.stat-label', {}, label),
    hint ? h('div.stat-hint', {}, hint) : null);
}

/** A labelled input; `field` ties it to the API's error details. */
export function field(label, input, { hint, fieldName, wide } = {}) {
  if (fieldName) input.dataset.field = fieldName;
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h(`div.field${wide ? '.wide' : ''}`, {}, h('label', { for: id }, label), input,
    hint ? h('div.hint', {}, hint) : null);
}

export function button(label, onclick, { kind = '', type = 'button', ...attrs } = {}) {
  return h(`button${kind ? `.${kind}` : ''}`, { type, onclick, ...attrs }, label);
}

/** Disable a button while `fn` runs. */
export async function busy(btn, fn) {
  const was = btn.disabled;
  btn.disabled = true;
  btn.classList.add('busy');
  try { return await fn(); } finally {
    btn.disabled = was;
    btn.classList.remove('busy');
  }
}

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value: v, selected: String(v) === String(value) }, label);
  }));
}

export function tabs(items, active, onChange) {
  return h('div.tabs', { role: 'tablist' }, items.map(([key, label]) => h('button.tab', {
    type: 'button', role: 'tab', 'aria-selected': String(key === active),
    class: key === active ? 'active' : '', onclick: () => onChange(key),
  }, label)));
}

export function confirmAction(message) {
  return window.confirm(message);
}
