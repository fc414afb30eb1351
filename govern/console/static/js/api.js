// The console's only way to the server: /v1 with the member token from sessionStorage.
// The token never goes into a URL, a cookie or localStorage.

const KEY = 'govern.token';

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); this.me = null; },
  me: null,
};

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

function buildUrl(path, query) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  return url;
}

async function errorFrom(resp) {
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON */ }
  const e = body && body.error;
  if (e) return new ApiError(resp.status, e.code, e.message, e.details);
  return new ApiError(resp.status, `http_${resp.status}`,
    `The server answered ${resp.status} ${resp.statusText || ''}`.trim(), {});
}

// The tenant already runs its HEAVY_READS_PER_TENANT heavy reads (another tab, another
// member): ask again when the server says, a few times, before showing the refusal.
const BUSY_RETRIES = 4;
const BUSY_WAIT_MAX_S = 10;

/** Seconds to wait before asking again, or null to take this answer. */
async function busyWait(resp, attempt) {
  if (resp.status !== 429 || attempt >= BUSY_RETRIES) return null;
  const err = await errorFrom(resp.clone());
  if (err.code !== 'tenant_busy') return null;
  const after = Number(resp.headers.get('Retry-After'));
  return Math.min(Number.isFinite(after) && after > 0 ? after : 1, BUSY_WAIT_MAX_S);
}

async function send(path, { method = 'GET', query, body, token } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = token || session.token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  for (let attempt = 0; ; attempt += 1) {
    try {
      resp = await fetch(buildUrl(path, query), init);
    } catch {
      throw new ApiError(0, 'network', 'The server could not be reached.', {});
    }
    const wait = await busyWait(resp, attempt);
    if (wait === null) break;
    await new Promise((resolve) => { setTimeout(resolve, wait * 1000); });
  }
  if (!resp.ok) {
    const err = await errorFrom(resp);
    if (resp.status === 401 && !token) {
      window.dispatchEvent(new CustomEvent('govern:unauthenticated', { detail: err }));
    }
    throw err;
  }
  return resp;
}

/** JSON from the API (null for 204); throws ApiError with the API's code and message. */
export async function api(path, options = {}) {
  const resp = await send(path, options);
  if (resp.status === 204) return null;
  return resp.json();
}

/** Fetch a file with the token and hand it to the browser as a download. */
export async function download(path, query, fallbackName) {
  const resp = await send(path, { query });
  const blob = await resp.blob();
  const cd = resp.headers.get('Content-Disposition') || '';
  const m = /filename="?([^";]+)"?/.exec(cd);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = m ? m[1] : fallbackName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  return resp;
}

/** Every page of a list that pages with ?after=<next_after>, up to `max` items. */
export async function all(path, key, query = {}, max = 5000) {
  const items = [];
  let after = null;
  for (;;) {
    const page = await api(path, { query: { ...query, after } });
    items.push(...page[key]);
    if (!page.next_after || items.length >= max) {
      return { items, truncated: Boolean(page.next_after) };
    }
    after = page.next_after;
  }
}
