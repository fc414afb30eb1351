// A dependency-free horizontal bar chart in SVG.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/** rows: [{label, value}], largest first; returns an <svg>. */
export function barChart(rows, { title = '', unit = '', max = 20, width = 860 } = {}) {
  const data = rows.filter((r) => Number.isFinite(r.value)).slice(0, max);
  const barH = 20;
  const gap = 6;
  const longest = Math.max(0, ...data.map((r) => Math.min(40, String(r.label).length)));
  const labelW = Math.min(width * 0.45, Math.max(90, longest * 7.2 + 16));
  const fits = Math.floor((labelW - 16) / 7.2);
  const top = title ? 26 : 6;
  const height = top + data.length * (barH + gap) + 6;
  const peak = Math.max(1e-9, ...data.map((r) => r.value));
  const plotW = width - labelW - 80;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img',
    'aria-label': title || 'bar chart', width: '100%' });
  if (title) root.append(svg('text', { x: 0, y: 16, class: 'chart-title' }, title));
  data.forEach((r, i) => {
    const y = top + i * (barH + gap);
    const w = Math.max(1, (r.value / peak) * plotW);
    const label = String(r.label);
    root.append(
      svg('text', { x: labelW - 8, y: y + barH * 0.7, 'text-anchor': 'end', class: 'chart-label' },
        label.length > fits ? `${label.slice(0, fits - 1)}…` : label),
      svg('rect', { x: labelW, y, width: w, height: barH, rx: 3, class: 'chart-bar' }),
      svg('text', { x: labelW + w + 6, y: y + barH * 0.7, class: 'chart-value' },
        `${r.value.toLocaleString('en-GB', { maximumFractionDigits: 1 })}${unit}`),
    );
  });
  return root;
}
