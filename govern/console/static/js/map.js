// Leaflet maps over the configured tile source (TILE_URL, by default OpenStreetMap's
// standard tiles) with its attribution; when it is off or its tiles cannot load, an offline
// basemap: Natural Earth countries (world-atlas 110m TopoJSON, vendored) and a graticule.

const L = () => window.L;
let countries = null;
let settings = null;

function loadSettings() {
  if (!settings) {
    settings = fetch('/console/config.json', { cache: 'no-store', credentials: 'omit' })
      .then((r) => (r.ok ? r.json() : { tiles: null }))
      .catch(() => ({ tiles: null }));
  }
  return settings;
}

function loadCountries() {
  if (!countries) {
    countries = fetch('/console/static/vendor/world-atlas/countries-110m.json')
      .then((r) => r.json())
      .then((topo) => window.topojson.feature(topo, topo.objects.countries))
      .catch(() => null);
  }
  return countries;
}

const STEPS = [30, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005];

function graticule(map, layer) {
  const b = map.getBounds();
  const span = Math.max(b.getEast() - b.getWest(), b.getNorth() - b.getSouth());
  // the finest step that still gives at most 10 lines across the view
  const step = STEPS.filter((s) => span / s <= 10).pop() || STEPS[0];
  const lines = [];
  const west = Math.floor(b.getWest() / step) * step;
  const south = Math.max(-85, Math.floor(b.getSouth() / step) * step);
  const north = Math.min(85, b.getNorth());
  for (let x = west; x <= b.getEast(); x += step) {
    lines.push([[south, x], [north + step, x]]);
  }
  for (let y = south; y <= north; y += step) {
    lines.push([[y, west], [y, b.getEast() + step]]);
  }
  layer.clearLayers();
  layer.addLayer(L().polyline(lines, {
    color: '#5b6b7a', weight: 0.7, opacity: 0.3, interactive: false, pane: 'graticule',
  }));
  // labels along the top (longitude) and left (latitude) edges
  const digits = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  const label = (v, pos, neg) => `${Math.abs(v).toFixed(digits)}°${v >= 0 ? pos : neg}`;
  const mark = (latlng, text, cls) => L().marker(latlng, {
    interactive: false, keyboard: false, pane: 'graticule',
    icon: L().divIcon({ className: `grat-label ${cls}`, html: text, iconSize: null }),
  });
  for (let x = Math.ceil(b.getWest() / step) * step; x <= b.getEast(); x += step) {
    layer.addLayer(mark([b.getNorth(), x], label(x, 'E', 'W'), 'grat-lon'));
  }
  for (let y = Math.ceil(b.getSouth() / step) * step; y <= north; y += step) {
    layer.addLayer(mark([y, b.getWest()], label(y, 'N', 'S'), 'grat-lat'));
  }
}

const CoordsControl = () => L().Control.extend({
  options: { position: 'bottomleft' },
  onAdd(map) {
    const el = L().DomUtil.create('div', 'map-coords');
    map.on('mousemove', (e) => {
      const { lat, lng } = e.latlng;
      el.textContent = `${Math.abs(lat).toFixed(4)}° ${lat >= 0 ? 'N' : 'S'}, `
        + `${Math.abs(lng).toFixed(4)}° ${lng >= 0 ? 'E' : 'W'}`;
    });
    map.on('mouseout', () => { el.textContent = ''; });
    return el;
  },
});

async function offlineBasemap(map, el) {
  const grid = L().layerGroup().addTo(map);
  map.on('moveend', () => graticule(map, grid));
  graticule(map, grid);
  map.attributionControl.addAttribution('Basemap: Natural Earth via world-atlas (110m)');
  const geo = await loadCountries();
  if (geo && map.getContainer().isConnected) {
    L().geoJSON(geo, {
      pane: 'basemap', interactive: false,
      style: { color: '#b9b3a3', weight: 0.8, fillColor: '#f7f5ef', fillOpacity: 1 },
    }).addTo(map);
  }
  el.dataset.basemapSource = 'offline';
  el.dataset.basemap = geo ? 'ready' : 'missing';
}

function attributionHtml(tiles) {
  const text = document.createElement('span');
  text.textContent = tiles.attribution || '';
  if (!tiles.attribution_url) return text.innerHTML;
  const a = document.createElement('a');
  a.href = tiles.attribution_url;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  a.textContent = tiles.attribution || tiles.attribution_url;
  return a.outerHTML;
}

/**
 * The configured tiles; if the first view's tiles all fail (no network, a blocked or wrong
 * server), they are removed and the offline basemap is drawn instead.
 */
function tileBasemap(map, el, tiles) {
  let loaded = 0;
  let failed = 0;
  const layer = L().tileLayer(tiles.url, {
    maxZoom: 19, attribution: attributionHtml(tiles), referrerPolicy: 'strict-origin',
    className: 'basemap-tiles',
  });
  el.dataset.basemapSource = 'tiles';
  layer.on('tileload', () => {
    loaded += 1;
    el.dataset.basemap = 'ready';
  });
  layer.on('tileerror', () => { failed += 1; });
  const fallback = () => {
    if (loaded || !map.hasLayer(layer)) return;
    map.removeLayer(layer);
    offlineBasemap(map, el);
  };
  // 'load' fires once every tile of the view has answered, loaded or failed (removed only
  // after Leaflet's own 'load' handling, which still needs the layer on the map)
  layer.on('load', () => setTimeout(fallback, 0));
  // a server that never answers: give up on it after a while (the page stays usable)
  setTimeout(fallback, 8000);
  layer.addTo(map);
  el.dataset.tilesFailed = '0';
  layer.on('tileerror', () => { el.dataset.tilesFailed = String(failed); });
}

/** A map in `el`; resolves once its basemap is chosen (tiles, or the offline one drawn). */
export async function makeMap(el, { center = [50, 10], zoom = 4 } = {}) {
  const map = L().map(el, { minZoom: 2, maxZoom: 18, worldCopyJump: true, zoomSnap: 0.5,
    zoomControl: false });
  L().control.zoom({ position: 'topright' }).addTo(map);
  map.createPane('basemap').style.zIndex = 200;
  map.createPane('graticule').style.zIndex = 250;
  map.attributionControl.setPrefix(false);
  L().control.scale({ imperial: false }).addTo(map);
  new (CoordsControl())().addTo(map);
  map.setView(center, zoom);
  const { tiles } = await loadSettings();
  if (tiles && tiles.url) tileBasemap(map, el, tiles);
  else await offlineBasemap(map, el);
  return map;
}

/**
 * Remove a map even while it pans or zooms. Leaflet 1.9's zoom animation ends on a timer that
 * remove() does not clear, and then moves panes that are gone (`_leaflet_pos` of undefined);
 * marking the animation over makes that timer a no-op.
 */
export function disposeMap(map) {
  try {
    map._animatingZoom = false; // eslint-disable-line no-underscore-dangle
    map.stop();
    map.off();
    map.remove();
  } catch { /* already removed */ }
}

// ColorBrewer YlOrRd, 6 classes
export const RAMP = ['#ffffb2', '#fed976', '#feb24c', '#fd8d3c', '#f03b20', '#bd0026'];

/** Class breaks (upper bounds) for values: quantiles, deduplicated. */
export function breaks(values, n = RAMP.length) {
  const sorted = [...values].sort((a, b) => a - b);
  if (!sorted.length) return [];
  const out = [];
  for (let i = 1; i <= n; i += 1) {
    const v = sorted[Math.min(sorted.length - 1, Math.ceil((i / n) * sorted.length) - 1)];
    if (!out.length || v > out[out.length - 1]) out.push(v);
  }
  return out;
}

export function colourFor(v, bks) {
  const i = bks.findIndex((b) => v <= b);
  const idx = i < 0 ? bks.length - 1 : i;
  // spread the used classes over the whole ramp
  const scaled = bks.length <= 1 ? RAMP.length - 1
    : Math.round((idx / (bks.length - 1)) * (RAMP.length - 1));
  return RAMP[scaled];
}

const fmt = (v) => v.toLocaleString('en-GB');

/** A legend control for the class breaks (integer counts from `min`). */
export function legend(map, title, bks, min = 1) {
  const ctl = L().control({ position: 'bottomright' });
  ctl.onAdd = () => {
    const el = L().DomUtil.create('div', 'map-legend');
    const t = document.createElement('div');
    t.className = 'legend-title';
    t.textContent = title;
    el.append(t);
    let lo = min - 1;
    bks.forEach((b) => {
      const row = document.createElement('div');
      const sw = document.createElement('i');
      sw.style.background = colourFor(b, bks);
      const text = lo + 1 >= b ? fmt(b) : `${fmt(lo + 1)}–${fmt(b)}`;
      row.append(sw, document.createTextNode(text));
      el.append(row);
      lo = b;
    });
    return el;
  };
  ctl.addTo(map);
  return ctl;
}
