// What a released report withheld and why, in the API's own words (properties.withheld),
// and whether this is the first release or the same answer given again.

import { fmtNum, fmtTime, h } from './ui.js';

export function withheldNote(p) {
  const whole = new Set(['past_retention', 'near_retention_edge']); // the period, not groups
  const items = (p.withheld || []).map((w) => h('li', { dataset: { reason: w.reason } },
    ...(whole.has(w.reason) ? ['Nothing released: ', w.explanation]
      : w.count === null ? ['Not shown: ', w.explanation] // DP: how many is not said
      : [h('b', {}, fmtNum(w.count)), ` ${w.count === 1 ? 'group' : 'groups'} withheld: `,
        w.explanation])));
  const when = p.mode === 'differential_privacy'
    ? h('p.muted', {}, 'Differential privacy: every figure carries noise, and what one person '
      + 'did on one day changes this answer only a little (ε and δ above); each answer is '
      + 'drawn afresh and charged to the budget of the days it covers.')
    : h('p.muted', {}, p.replayed
      ? `Released on ${fmtTime(p.released_at)}; this is that same answer. Released reports `
        + 'never change, so nothing can be learnt by asking again.'
      : `Released now (${fmtTime(p.released_at)}); asking again gives this same answer.`);
  return h('div.withheld', { id: 'report-withheld' },
    items.length ? h('ul', {}, ...items) : h('p.muted', {}, 'Nothing was withheld.'), when);
}
