// The console shell: sign-in, navigation by role, and a hash router (#/page/arg).

import { api, ApiError, session } from './api.js';
import { button, clear, errorBox, field, h } from './ui.js';
import * as audit from './pages/audit.js';
import * as devices from './pages/devices.js';
import * as heatmap from './pages/heatmap.js';
import * as policy from './pages/policy.js';
import * as positions from './pages/positions.js';
import * as reports from './pages/reports.js';
import * as subjects from './pages/subjects.js';

// Who may open each page (docs/api.md); the API enforces the same rules.
const PAGES = [
  { path: 'heatmap', label: 'Heatmap', roles: ['owner', 'admin', 'analyst'], mod: heatmap },
  { path: 'reports', label: 'Reports', roles: ['owner', 'admin', 'analyst'], mod: reports },
  { path: 'positions', label: 'Positions', roles: ['owner', 'admin', 'dispatcher'],
    mod: positions },
  { path: 'policy', label: 'Policy', roles: ['owner', 'admin', 'auditor'], mod: policy },
  { path: 'subjects', label: 'Subjects', roles: ['owner', 'admin', 'auditor'], mod: subjects },
  { path: 'devices', label: 'Devices', roles: ['owner', 'admin'], mod: devices },
  { path: 'audit', label: 'Audit', roles: ['owner', 'admin', 'auditor'], mod: audit },
];

const HOME = { auditor: 'audit', dispatcher: 'positions' };

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let cleanup = null;
let signInNote = null;

export function can(roles) {
  return Boolean(session.me && roles.includes(session.me.role));
}

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean)
    .map(decodeURIComponent);
  return { page: parts[0] || '', args: parts.slice(1) };
}

function renderShell() {
  const me = session.me;
  const { page } = parseHash();
  clear(nav, PAGES.filter((p) => p.roles.includes(me.role)).map((p) => h('a', {
    href: `#/${p.path}`, class: p.path === page ? 'active' : '', dataset: { page: p.path },
  }, p.label)));
  clear(who,
    h('span.tenant', { title: `tenant ${me.tenant_id}` }, me.tenant_name),
    h('span.role', { dataset: { role: me.role } }, me.role),
    h('span.email', {}, me.display_name || me.email),
    button('Sign out', signOut, { kind: 'ghost', id: 'sign-out' }));
}

function signOut() {
  session.clear();
  signInNote = 'Signed out. The token was removed from this tab.';
  location.hash = '#/';
  route();
}

function renderSignIn(note) {
  clear(nav);
  clear(who);
  const input = h('input', {
    type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'gv_…', required: true, id: 'token',
  });
  const box = h('div.form-error');
  const submit = button('Sign in', null, { kind: 'primary', type: 'submit' });
  // method=post: even without JavaScript a token can never end up in a URL
  const form = h('form.signin', { method: 'post', action: '#', onsubmit: async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    box.replaceChildren();
    submit.disabled = true;
    try {
      session.me = await api('/v1/me', { token });
      session.set(token);
      input.value = '';
      if (parseHash().page) route();
      else location.hash = `#/${home()}`; // routes on hashchange
    } catch (err) {
      box.append(errorBox(err.status === 401
        ? new ApiError(401, err.code, 'That token is unknown, revoked or expired.') : err));
    } finally {
      submit.disabled = false;
    }
  } },
  h('h1', {}, 'Sign in'),
  h('p.muted', {}, 'Paste a member token (owner, admin, analyst, dispatcher or auditor). '
    + 'It is kept only in this browser tab and is forgotten when the tab closes.'),
  note ? h('div.alert.info', {}, note) : null,
  field('Member token', input),
  h('p.muted.small', {}, 'No token? ', h('code', {}, 'make run'), ' prints the demo\'s tokens '
    + 'for every role (and writes them to ', h('code', {}, 'var/demo-tokens.txt'), '). An owner '
    + 'gets one from ', h('code', {}, 'govern tenant create'), '; members get theirs when '
    + 'invited, and create more under their account (', h('code', {}, 'POST /v1/tokens'), ').'),
  box,
  h('div.actions', {}, submit));
  clear(main, h('div.signin-wrap', {}, form));
  input.focus();
}

function home() {
  return HOME[session.me.role] || 'heatmap';
}

let routing = 0; // which route() call is current: a page left while it loads is cleaned up

async function route() {
  const mine = ++routing;
  if (cleanup) {
    try { cleanup(); } catch { /* page already gone */ }
    cleanup = null;
  }
  if (!session.token) {
    const note = signInNote;
    signInNote = null;
    renderSignIn(note);
    return;
  }
  if (!session.me) {
    try {
      session.me = await api('/v1/me');
    } catch (err) {
      if (err.status !== 401) {
        clear(main, h('div.pad', {}, errorBox(err, 'Could not load your account.')));
      }
      return;
    }
  }
  let { page, args } = parseHash();
  if (!page) {
    page = home();
    history.replaceState(null, '', `#/${page}`);
  }
  renderShell();
  const def = PAGES.find((p) => p.path === page);
  const root = h('div.page', { dataset: { page } });
  clear(main, root);
  if (!def) {
    root.append(h('div.alert.error', {}, `There is no page "${page}".`));
    return;
  }
  document.title = `${def.label} · govern console`;
  if (!def.roles.includes(session.me.role)) {
    root.append(h('div.alert.error.forbidden', { role: 'alert' },
      `The role "${session.me.role}" may not open the ${def.label} page; `,
      h('span.who-may', {}, `it is open to: ${def.roles.join(', ')}.`),
      ' Ask an owner or admin if you need access.'));
    return;
  }
  try {
    const done = (await def.mod.render(root, { me: session.me, args, can })) || null;
    if (mine === routing) cleanup = done;
    else if (done) done(); // the person moved on while this page was loading
  } catch (err) {
    if (mine === routing) root.append(errorBox(err, 'This page failed to load:'));
  }
}

window.addEventListener('govern:unauthenticated', () => {
  session.clear();
  signInNote = 'Your token is no longer valid (revoked or expired). Sign in again.';
  route();
});
window.addEventListener('hashchange', route);
route();
