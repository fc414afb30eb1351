// Period pickers for aggregate reports. Without differential privacy the API releases only
// whole UTC days, ISO weeks (Monday to Monday) and calendar months; with it, whole hours.

import { h, select } from './ui.js';

const DAY = 86_400_000;

function utcMidnight(d) {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}

function iso(d) {
  return d.toISOString().replace('.000Z', 'Z');
}

function ymd(d) {
  return d.toISOString().slice(0, 10);
}

/** ISO week string ("2026-W05") of a UTC date. */
export function isoWeek(d) {
  const t = utcMidnight(d);
  const dow = (t.getUTCDay() + 6) % 7; // Monday 0
  const thursday = new Date(t.getTime() + (3 - dow) * DAY);
  const year = thursday.getUTCFullYear();
  const jan4 = new Date(Date.UTC(year, 0, 4));
  const week1 = jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * DAY;
  const n = 1 + Math.round((thursday.getTime() - 3 * DAY - week1) / (7 * DAY));
  return `${year}-W${String(n).padStart(2, '0')}`;
}

function weekStart(value) {
  const m = /^(\d{4})-W(\d{2})$/.exec(value);
  if (!m) return null;
  const jan4 = new Date(Date.UTC(Number(m[1]), 0, 4));
  const week1 = jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * DAY;
  return new Date(week1 + (Number(m[2]) - 1) * 7 * DAY);
}

/** {from, to} ISO strings for a picker value, or null when incomplete. */
export function rangeOf(kind, value, valueTo) {
  if (!value) return null;
  if (kind === 'day') {
    const a = new Date(`${value}T00:00:00Z`);
    return Number.isNaN(a.getTime()) ? null : { from: iso(a), to: iso(new Date(+a + DAY)) };
  }
  if (kind === 'week') {
    const a = weekStart(value);
    return a ? { from: iso(a), to: iso(new Date(+a + 7 * DAY)) } : null;
  }
  if (kind === 'month') {
    const m = /^(\d{4})-(\d{2})$/.exec(value);
    if (!m) return null;
    const a = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1));
    const b = new Date(Date.UTC(Number(m[1]), Number(m[2]), 1));
    return { from: iso(a), to: iso(b) };
  }
  if (kind === 'hours') {
    if (!valueTo) return null;
    return { from: `${value}:00Z`, to: `${valueTo}:00Z` };
  }
  return null;
}

/** The last complete UTC day, ISO week and calendar month before `now`. */
export function lastComplete(now) {
  const today = utcMidnight(now);
  const yesterday = new Date(today.getTime() - DAY);
  const lastMonth = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 1, 1));
  return {
    day: ymd(yesterday),
    week: isoWeek(new Date(today.getTime() - 7 * DAY)), // the week before this one
    month: ymd(lastMonth).slice(0, 7),
  };
}

/**
 * A period picker: kind (day/week/month, plus hours when `hours` is true) and the matching
 * input. `picker.range()` gives {from, to, label}. Each kind defaults to its last complete
 * period (yesterday, last week, last month).
 */
export function periodPicker({ hours = false, onChange } = {}) {
  const defaults = lastComplete(new Date());
  const kinds = [['day', 'Day (UTC)'], ['week', 'ISO week'], ['month', 'Month']];
  if (hours) kinds.push(['hours', 'Hours (DP)']);
  const kind = select(kinds, 'day', { name: 'period', 'aria-label': 'Period' });
  const slot = h('span.period-inputs');
  const inputs = {
    day: h('input', { type: 'date', name: 'day', value: defaults.day, 'aria-label': 'Day' }),
    week: h('input', { type: 'week', name: 'week', value: defaults.week,
      'aria-label': 'ISO week' }),
    month: h('input', { type: 'month', name: 'month', value: defaults.month,
      'aria-label': 'Month' }),
    hoursFrom: h('input', { type: 'datetime-local', name: 'from', step: 3600,
      value: `${defaults.day}T06:00`, 'aria-label': 'From (UTC)' }),
    hoursTo: h('input', { type: 'datetime-local', name: 'to', step: 3600,
      value: `${defaults.day}T18:00`, 'aria-label': 'To (UTC)' }),
  };
  function show() {
    const k = kind.value;
    slot.replaceChildren(...(k === 'hours'
      ? [inputs.hoursFrom, h('span.muted', {}, ' to '), inputs.hoursTo, h('span.muted', {},
        ' UTC')]
      : [inputs[k]]));
  }
  kind.addEventListener('change', () => { show(); if (onChange) onChange(); });
  Object.values(inputs).forEach((i) => i.addEventListener('change', () => onChange && onChange()));
  show();
  const el = h('span.period', {}, kind, slot);
  return {
    el,
    kind,
    inputs,
    range() {
      const k = kind.value;
      const r = k === 'hours'
        ? rangeOf('hours', inputs.hoursFrom.value.slice(0, 13) + ':00',
          inputs.hoursTo.value.slice(0, 13) + ':00')
        : rangeOf(k, inputs[k].value);
      if (!r) return null;
      const label = k === 'hours' ? `${r.from} – ${r.to}` : `${k} ${inputs[k].value}`;
      return { ...r, label };
    },
  };
}
