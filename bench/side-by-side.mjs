// Side by side: hubgate (the built worker in workerd, in front of a real
// JupyterHub 6.1.1 with this repository's hub authenticator) against the
// Python "anchors" (JupyterHub 6.1.1 + jupyterhub-ltiauthenticator 1.6.3, and
// JupyterHub 6.1.1 + OAuthenticator 17.4.0's GenericOAuthenticator, each behind
// configurable-http-proxy), on this machine, in one run.
//
//   node bench/side-by-side.mjs
//
// Measures, as a browser would make them, every round trip from the first
// request of a login to the response that hands the browser the hub's own
// login cookie (jupyterhub-hub-login):
//   - LTI 1.3: GET <front>/hub/lti13/oauth_login (login initiation) → the
//     platform's authorize step (auto-posting form) → POST
//     <front>/hub/lti13/oauth_callback → … until the hub cookie is held;
//   - OIDC: GET <front>/hub/oauth_login → the IdP's authorize (an IdP session
//     exists: single sign-on, no form) → GET <front>/hub/oauth_callback → …;
//   - bare: GET <front>/hub/api/ through the same kind of front door (a
//     pass-through worker in workerd in front of the same hub, or
//     configurable-http-proxy in front of the anchor's hub), subtracted to
//     show the local front door's fixed cost.
// Each without latency and with WAN-like latency injected by TCP delay
// proxies (bench/delay-proxy.mjs): browser↔front door 20 ms, front door↔hub
// 10 ms, hub-or-worker↔the platform's key set / the IdP's token, userinfo and
// key set 40 ms (one way, each chunk); and, as an extra condition the issue
// did not ask for, the same latency plus one round trip before the first
// bytes of every new TCP connection (a handshake: the anchors open a new
// connection for each key set / token / userinfo fetch, the worker keeps its
// connections). The delay proxies are always in the path; the "none"
// condition sets them to 0 ms. The same platform (bench/anchors/
// platform.mjs, RS256 via jose, one key, one client_id) and the same
// oidc-provider instance (tests/e2e/support/idp.mjs, one client per side)
// serve both sides; the users are the demo users alice, bob and carol.
//
// Method: warm-up, then rounds interleaved (hubgate, anchor, anchor, hubgate,
// …: the order flips every round), medians and p90 over BENCH_ROUNDS rounds
// per cell. A login that fails is logged with the hub's errors, recorded in
// the JSON and run again (at most MAX_FAILURES per cell); only complete
// logins are timed. Prints a table and writes the same figures as JSON to
// bench/results/side-by-side-<ISO timestamp>.json. Figures only: nothing here
// asserts a time.
//
// Environment:
//   BENCH_ROUNDS=30        rounds per cell (each side)
//   BENCH_WARMUP=5         warm-up rounds per cell and side before measuring
//   BENCH_LATENCY=20,10,40 one-way ms: browser↔front, front↔hub, server↔platform/IdP
//   BENCH_HANDSHAKE_ROW=0  skip the extra condition "latency + a TCP handshake's
//                          round trip before each new connection's first bytes"
//   BENCH_FLOWS=lti,oidc   which logins to measure (the bare round trip always is)
//   BENCH_SKIP_SETUP=1     don't run scripts/setup-anchors.sh (fail if it is needed)
//   HUBGATE_BENCH_VERBOSE=1  echo the anchors' logs
//
// Needs: build/ (npm run build), .tools/jhvenv (bash scripts/setup-jupyterhub.sh),
// .tools/anchorvenv (bash scripts/setup-anchors.sh, run from here unless
// BENCH_SKIP_SETUP=1), node_modules (npm ci). Loopback only; every process
// started here is stopped on exit, error or Ctrl-C.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, exportJWK } from 'jose';

import { startWorker, runMiniflare, cookieJar, DEFAULT_SCRIPT } from '../tests/e2e/support/worker.mjs';
import { startJupyterHub, jupyterhubMissing } from '../tests/e2e/support/jupyterhub.mjs';
import { startIdp, IDP_COOKIE_NAMES } from '../tests/e2e/support/idp.mjs';
import { portIsFree } from '../tests/e2e/support/ports.mjs';
import { startDelayProxy } from './delay-proxy.mjs';
import { startPlatform, parseForm } from './anchors/platform.mjs';
import { startAnchorHub, anchorsMissing, ANCHOR_VENV } from './anchors/anchor-hub.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(here, '..');

const ROUNDS = intEnv('BENCH_ROUNDS', 30, 1, 1000);
const WARMUP = intEnv('BENCH_WARMUP', 5, 0, 100);
const LATENCY = (() => {
  const raw = process.env.BENCH_LATENCY ?? '20,10,40';
  const [front, hub, upstream] = raw.split(',').map(Number);
  if (![front, hub, upstream].every((n) => Number.isFinite(n) && n >= 0 && n <= 1000)) {
    throw new Error(`BENCH_LATENCY must be three numbers (ms), got ${raw}`);
  }
  return { front, hub, upstream };
})();
const HANDSHAKE_ROW = process.env.BENCH_HANDSHAKE_ROW !== '0';
const FLOWS = (process.env.BENCH_FLOWS ?? 'lti,oidc').split(',').map((f) => f.trim());
if (!FLOWS.length || FLOWS.some((f) => !['lti', 'oidc'].includes(f))) throw new Error(`BENCH_FLOWS: lti, oidc or both, got ${process.env.BENCH_FLOWS}`);
const USERS = ['alice', 'bob', 'carol'];
const HUB_COOKIE = 'jupyterhub-hub-login';
const MAX_HOPS = 8; // bound on the browser requests of one login
const MAX_FAILURES = 5; // failed logins tolerated (and re-run) per cell before the bench gives up
const LTI_CLIENT_ID = 'bench-lms-client';
const LTI_DEPLOYMENT = 'bench-deployment-1';
const OIDC = {
  hubgate: { client_id: 'hubgate-bench', client_secret: 'hubgate-bench-secret' },
  anchor: { client_id: 'anchor-generic', client_secret: 'anchor-generic-secret' },
};

function intEnv(name, dflt, min, max) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in ${min}..${max}, got ${v}`);
  return n;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => process.stderr.write(`[side-by-side] ${msg}\n`);

// ---------------------------------------------------------------------------
// Cleanup: everything started registers a closer; run once, on exit paths too.

const closers = [];
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c.fn();
      } catch (err) {
        log(`closing ${c.name} failed: ${err.message}`);
      }
    }
  })();
  return cleaning;
}
function onClose(name, fn) {
  closers.push({ name, fn });
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: stopping everything`);
    const t = setTimeout(() => process.exit(130), 30_000);
    t.unref();
    cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------
// Ports: picked below the kernel's ephemeral range, so that a port the OS
// hands out for listen(0) (tests/e2e/support's freePort, inside
// startJupyterHub) can never be one of ours that is not listening yet.

const handedOut = new Set();
function ephemeralLow() {
  try {
    const [lo] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && lo > 12000) return lo;
  } catch {
    /* not Linux */
  }
  return 32768;
}
const PORT_HI = ephemeralLow();
const PORT_LO = PORT_HI - 10000;
async function pickPort() {
  for (let i = 0; i < 200; i += 1) {
    const p = PORT_LO + crypto.randomInt(PORT_HI - PORT_LO);
    if (handedOut.has(p)) continue;
    if (await portIsFree(p)) {
      handedOut.add(p);
      return p;
    }
  }
  throw new Error(`no free port in ${PORT_LO}..${PORT_HI - 1} after 200 tries`);
}

// ---------------------------------------------------------------------------
// Preconditions

function ensureSetup() {
  const missingBuild = async () => {
    // someone may be rebuilding: wait a little for build/worker/shim.mjs
    for (let i = 0; i < 24 && !fs.existsSync(DEFAULT_SCRIPT); i += 1) {
      if (i === 0) log(`${DEFAULT_SCRIPT} is missing; waiting up to 2 min (a rebuild in progress?)`);
      await sleep(5000);
    }
    if (!fs.existsSync(DEFAULT_SCRIPT)) throw new Error(`${DEFAULT_SCRIPT} not found: run \`npm run build\``);
  };
  const jh = jupyterhubMissing();
  if (jh) throw new Error(jh);
  if (process.env.BENCH_SKIP_SETUP === '1') {
    const m = anchorsMissing();
    if (m) throw new Error(m);
  } else {
    log('bash scripts/setup-anchors.sh');
    const r = spawnSync('bash', [path.join(REPO_ROOT, 'scripts', 'setup-anchors.sh')], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error('the anchors could not be set up: run `bash scripts/setup-anchors.sh` and look at its output');
  }
  return missingBuild();
}

function anchorVersions() {
  const py = path.join(ANCHOR_VENV, 'bin', 'python');
  const r = spawnSync(
    py,
    ['-c', 'import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in ["jupyterhub", "jupyterhub-ltiauthenticator", "oauthenticator", "pyjwt", "tornado"]}))'],
    { encoding: 'utf8' },
  );
  try {
    return JSON.parse(r.stdout);
  } catch {
    return {};
  }
}

// ---------------------------------------------------------------------------
// The browser: node:http with a keep-alive agent per side (a browser keeps
// its connections), exact headers, the jar from tests/e2e/support/worker.mjs.

const NAV = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
  'user-agent': 'hubgate-bench/1 (node)',
};

function request(agent, url, { method = 'GET', headers = {}, body } = {}) {
  const u = new URL(url);
  if (u.protocol !== 'http:' || !/^127\.\d+\.\d+\.\d+$/.test(u.hostname)) throw new Error(`loopback http only: ${u.href}`);
  const h = { ...headers };
  const payload = body === undefined ? undefined : Buffer.from(body);
  if (payload) h['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const hh = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) hh.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        resolve({ status: res.statusCode, headers: hh, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout on ${u.href}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** One browser request with `jar`; stores cookies; records the hop. */
async function hop(ctx, url, { method = 'GET', headers = {}, body, label }) {
  const h = { ...NAV, ...headers };
  if (body !== undefined) h['content-type'] = 'application/x-www-form-urlencoded';
  const cookie = ctx.jar.header(url);
  if (cookie) h.cookie = cookie;
  const t = performance.now();
  const res = await request(ctx.agent, url, { method, headers: h, body });
  const ms = performance.now() - t;
  ctx.jar.store(url, { headers: { getSetCookie: () => res.headers.getSetCookie() } });
  const u = new URL(url);
  ctx.hops.push({ label, method, path: u.pathname, status: res.status, ms });
  return res;
}

const labelFor = (side, url) => {
  const o = new URL(url).origin;
  if (o === side.front) return 'front';
  if (o === side.platformOrigin) return 'platform';
  if (o === side.idpOrigin) return 'idp';
  return 'other';
};

/**
 * Follow a login from `start` like a browser until the jar holds the hub's
 * login cookie: redirects are followed, the platform's auto-posting form is
 * submitted, the IdP's sign-in form gets the username (warm-up only, when no
 * IdP session exists yet). Bounded by MAX_HOPS.
 */
async function runLogin(side, ctx, start, user) {
  let url = start;
  let method = 'GET';
  let body;
  let headers = {};
  let interacted = false;
  for (let i = 0; i < MAX_HOPS; i += 1) {
    const res = await hop(ctx, url, { method, body, headers, label: labelFor(side, url) });
    if (ctx.jar.get(HUB_COOKIE)) return { interacted };
    headers = {};
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc) {
      const next = new URL(loc, url);
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
      if (next.origin === side.idpOrigin && next.pathname.startsWith('/interaction/')) {
        // no IdP session yet: sign in (only expected during warm-up)
        interacted = true;
        await hop(ctx, next.href, { label: 'idp' });
        method = 'POST';
        body = new URLSearchParams({ username: user }).toString();
      }
      url = next.href;
      continue;
    }
    if (res.status === 200 && /<form[^>]*id="launch"/.test(res.text)) {
      // the platform's form_post page: the browser posts it cross-site
      const form = parseForm(res.text);
      url = form.action;
      method = 'POST';
      body = new URLSearchParams(form.fields).toString();
      headers = { origin: new URL(url).origin, 'sec-fetch-site': 'cross-site' };
      continue;
    }
    throw new Error(`${side.name}: login stopped at ${res.status} ${method} ${url}:\n${res.text.slice(0, 400)}\n${trail(ctx)}`);
  }
  throw new Error(`${side.name}: no hub session after ${MAX_HOPS} requests:\n${trail(ctx)}`);
}
const trail = (ctx) => ctx.hops.map((h) => `  ${h.status} ${h.method} ${h.label} ${h.path} ${h.ms.toFixed(1)} ms`).join('\n');

/** A jar with only the IdP's session cookies of `keep` (the rest is a fresh browser). */
function freshJar(keep) {
  const jar = cookieJar();
  if (keep) {
    const idpNames = Object.values(IDP_COOKIE_NAMES).flatMap((n) => [n, `${n}.sig`]);
    for (const c of keep.all()) if (idpNames.includes(c.name)) jar.store(`http://${c.domain}${c.path}`, [c.raw]);
  }
  return jar;
}

// One timed flow per kind. Each returns { ms, hops, requests, interacted }.

async function ltiFlow(side, user) {
  const ctx = { jar: freshJar(), agent: side.agent, hops: [] };
  const q = new URLSearchParams({
    iss: side.platformIssuer,
    login_hint: user,
    target_link_uri: `${side.front}/hub/`,
    client_id: LTI_CLIENT_ID,
    lti_deployment_id: LTI_DEPLOYMENT,
    lti_message_hint: `resource-1-${user}`,
  });
  const t0 = performance.now();
  await runLogin(side, ctx, `${side.front}/hub/lti13/oauth_login?${q}`, user);
  const ms = performance.now() - t0;
  return { ms, hops: ctx.hops, jar: ctx.jar };
}

async function oidcFlow(side, user) {
  const idpJar = side.idpJars.get(user);
  const ctx = { jar: freshJar(idpJar), agent: side.agent, hops: [] };
  const t0 = performance.now();
  const { interacted } = await runLogin(side, ctx, `${side.front}/hub/oauth_login?next=${encodeURIComponent('/hub/home')}`, user);
  const ms = performance.now() - t0;
  // keep the (possibly refreshed) IdP session for the next round
  side.idpJars.set(user, ctx.jar);
  return { ms, hops: ctx.hops, jar: ctx.jar, interacted };
}

async function bareFlow(side) {
  const ctx = { jar: cookieJar(), agent: side.agent, hops: [] };
  const t0 = performance.now();
  const res = await hop(ctx, `${side.bareFront}/hub/api/`, { label: 'front', headers: { accept: 'application/json' } });
  const ms = performance.now() - t0;
  if (res.status !== 200 || !res.text.includes('version')) throw new Error(`${side.name}: bare GET /hub/api/ answered ${res.status}: ${res.text.slice(0, 200)}`);
  return { ms, hops: ctx.hops };
}

/** Who the hub thinks this browser is (GET /hub/api/user through the front door, as a page's fetch). */
async function whoami(side, jar) {
  const url = `${side.front}/hub/api/user`;
  const h = { accept: 'application/json', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin', 'sec-fetch-dest': 'empty' };
  const xsrf = jar.get('_xsrf', url);
  if (xsrf) h['x-xsrftoken'] = decodeURIComponent(xsrf);
  const cookie = jar.header(url);
  if (cookie) h.cookie = cookie;
  const res = await request(side.agent, url, { headers: h });
  if (res.status !== 200) throw new Error(`${side.name}: /hub/api/user answered ${res.status}: ${res.text.slice(0, 200)}`);
  return JSON.parse(res.text).name;
}

// ---------------------------------------------------------------------------
// Statistics

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p90: quantile(s, 0.9), min: s[0], max: s.at(-1) };
}
const r1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);
const r3 = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);

/** Per-label medians of the hops of several runs (where the time went). */
function hopBreakdown(runs) {
  const byLabel = {};
  for (const r of runs) {
    const sums = {};
    for (const h of r.hops) sums[h.label] = (sums[h.label] ?? 0) + h.ms;
    for (const [k, v] of Object.entries(sums)) (byLabel[k] ??= []).push(v);
  }
  return Object.fromEntries(Object.entries(byLabel).map(([k, v]) => [k, r1(summary(v).median)]));
}
/** The requests of a login in order, with each one's median time over `runs` (same shape every round). */
function requestShape(runs) {
  const last = runs.at(-1);
  return last.hops.map((h, i) => ({
    request: `${h.method} ${h.label}${h.label === 'front' ? h.path : ''} -> ${h.status}`,
    medianMs: r1(summary(runs.filter((r) => r.hops[i]).map((r) => r.hops[i].ms)).median),
  }));
}

// ---------------------------------------------------------------------------
// Main

async function main() {
  await ensureSetup();
  const started = new Date();
  const loadBefore = os.loadavg();
  log(`rounds ${ROUNDS}/cell, warm-up ${WARMUP}, latency ${JSON.stringify(LATENCY)}${HANDSHAKE_ROW ? ', and again with handshakes' : ''}`);

  // --- the shared peers: the IdP and the platform ---------------------------
  const idp = await startIdp({
    clients: [
      { ...OIDC.hubgate, redirect_uris: [] },
      { ...OIDC.anchor, redirect_uris: [] },
    ],
  });
  onClose('idp', () => idp.close());
  const ltiCallbacks = new Set();
  const platform = await startPlatform({
    clientId: LTI_CLIENT_ID,
    deploymentId: LTI_DEPLOYMENT,
    redirectAllowed: (u) => ltiCallbacks.has(u),
  });
  onClose('platform', () => platform.close());

  // --- ports, then the delay proxies (targets may come up later) -------------
  const port = {
    worker: await pickPort(),
    bareWorker: await pickPort(),
    hgChp: await pickPort(),
    anLtiChp: await pickPort(),
    anLtiHub: await pickPort(),
    anLtiApi: await pickPort(),
    anOidcChp: await pickPort(),
    anOidcHub: await pickPort(),
    anOidcApi: await pickPort(),
  };
  const proxies = [];
  const delay = async (name, targetPort, kind) => {
    const p = await startDelayProxy({ name, port: await pickPort(), target: { port: targetPort }, delayMs: 0 });
    p.kind = kind; // 'front' | 'hub' | 'upstream'
    proxies.push(p);
    onClose(`delay ${name}`, () => p.close());
    return p;
  };
  const d = {
    hgFront: await delay('browser->worker', port.worker, 'front'),
    hgBareFront: await delay('browser->bare worker', port.bareWorker, 'front'),
    hgToHub: await delay('worker->hub', port.hgChp, 'hub'),
    hgToPlatform: await delay('worker->platform', platform.port, 'upstream'),
    hgToIdp: await delay('worker->idp', idp.port, 'upstream'),
    anLtiFront: await delay('browser->chp (lti)', port.anLtiChp, 'front'),
    anLtiToHub: await delay('chp->hub (lti)', port.anLtiHub, 'hub'),
    anOidcFront: await delay('browser->chp (oidc)', port.anOidcChp, 'front'),
    anOidcToHub: await delay('chp->hub (oidc)', port.anOidcHub, 'hub'),
    anToPlatform: await delay('hub->platform', platform.port, 'upstream'),
    anToIdp: await delay('hub->idp', idp.port, 'upstream'),
  };
  const setLatency = (on, handshake = false) => {
    for (const p of proxies) {
      p.setDelay(on ? LATENCY[p.kind] : 0);
      p.setHandshake(on && handshake);
    }
  };
  ltiCallbacks.add(`${d.hgFront.url}/hub/lti13/oauth_callback`);
  ltiCallbacks.add(`${d.anLtiFront.url}/hub/lti13/oauth_callback`);
  idp.setRedirectUris(OIDC.hubgate.client_id, [`${d.hgFront.url}/hub/oauth_callback`]);
  idp.setRedirectUris(OIDC.anchor.client_id, [`${d.anOidcFront.url}/hub/oauth_callback`]);

  // --- hubgate: the worker, a bare pass-through worker, the hub ---------------
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const assertionKey = JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' });
  log('starting the hubgate worker and a bare pass-through worker (workerd)');
  const worker = await startWorker({
    port: port.worker,
    bindings: {
      HUB_ORIGIN: d.hgToHub.url,
      SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
      ASSERTION_SIGNING_KEY: assertionKey,
      ALLOW_ALL: 'true',
      USERNAME_NAMESPACE: 'none',
      // OIDC: discovery from the issuer (fetched once, cached); the browser's
      // authorize straight to the IdP, the worker's own calls through the delay proxy
      OIDC_ISSUER: idp.issuer,
      OAUTH_CLIENT_ID: OIDC.hubgate.client_id,
      OAUTH_CLIENT_SECRET: OIDC.hubgate.client_secret,
      OAUTH2_AUTHORIZE_URL: `${idp.issuer}/auth`,
      OAUTH2_TOKEN_URL: `${d.hgToIdp.url}/token`,
      OAUTH2_USERDATA_URL: `${d.hgToIdp.url}/me`,
      OIDC_JWKS_URL: `${d.hgToIdp.url}/jwks`,
      OAUTH2_USERNAME_KEY: 'preferred_username',
      // LTI: one platform, the same registration as the anchor's
      LTI13_ISSUER: platform.issuer,
      LTI13_CLIENT_ID: LTI_CLIENT_ID,
      LTI13_AUTHORIZE_URL: platform.authorizeUrl,
      LTI13_JWKS_ENDPOINT: `${d.hgToPlatform.url}/jwks/hubgate`,
      LTI13_DEPLOYMENT_IDS: LTI_DEPLOYMENT,
    },
  });
  onClose('worker', () => worker.close());
  const bareScript = `export default { async fetch(req) {
  const u = new URL(req.url); const o = new URL(${JSON.stringify(d.hgToHub.url)});
  u.protocol = o.protocol; u.host = o.host;
  return fetch(new Request(u, req), { redirect: 'manual' });
} };`;
  const bare = await runMiniflare({ name: 'bare', modules: true, script: bareScript, compatibilityDate: '2025-09-01' }, { port: port.bareWorker });
  onClose('bare worker', () => bare.close());

  log('starting three JupyterHubs (hubgate authenticator; ltiauthenticator; GenericOAuthenticator)');
  const [hgHub, anLti, anOidc] = (hubsForTails.list = await Promise.all([
    startJupyterHub({
      port: port.hgChp,
      auth: 'hubgate',
      issuer: d.hgFront.url, // the worker's public origin (the browser's side of the delay proxy)
      audience: d.hgToHub.url, // HUB_ORIGIN
      jwksUrl: `${worker.url}/_hubgate/jwks.json`,
      name: 'bench-hubgate',
    }).then((h) => (onClose('hubgate hub', () => h.close()), h)),
    startAnchorHub({
      auth: 'lti13',
      port: port.anLtiChp,
      hubPort: port.anLtiHub,
      proxyApiPort: port.anLtiApi,
      hubConnectUrl: d.anLtiToHub.url,
      name: 'lti',
      settings: {
        lti_issuer: platform.issuer,
        lti_client_id: LTI_CLIENT_ID,
        lti_authorize_url: platform.authorizeUrl,
        lti_jwks_endpoint: `${d.anToPlatform.url}/jwks/anchor`,
      },
    }).then((h) => (onClose('anchor lti hub', () => h.close()), h)),
    startAnchorHub({
      auth: 'generic-oauth',
      port: port.anOidcChp,
      hubPort: port.anOidcHub,
      proxyApiPort: port.anOidcApi,
      hubConnectUrl: d.anOidcToHub.url,
      name: 'oidc',
      settings: {
        oauth_client_id: OIDC.anchor.client_id,
        oauth_client_secret: OIDC.anchor.client_secret,
        oauth_callback_url: `${d.anOidcFront.url}/hub/oauth_callback`,
        oauth_authorize_url: `${idp.issuer}/auth`,
        oauth_token_url: `${d.anToIdp.url}/token`,
        oauth_userdata_url: `${d.anToIdp.url}/me`,
      },
    }).then((h) => (onClose('anchor oidc hub', () => h.close()), h)),
  ]));
  log(`hubs ready (hubgate ${hgHub.startupMs} ms, lti anchor ${anLti.startupMs} ms, oidc anchor ${anOidc.startupMs} ms)`);

  // Sides. A keep-alive agent per front door (a browser's connection pool).
  const mkAgent = () => {
    const a = new http.Agent({ keepAlive: true, maxSockets: 4 });
    onClose('agent', () => a.destroy());
    return a;
  };
  const idpJars = () => new Map();
  const common = { platformOrigin: platform.url, platformIssuer: platform.issuer, idpOrigin: new URL(idp.issuer).origin };
  const sides = {
    hubgate: {
      lti: { ...common, name: 'hubgate', hub: hgHub, worker, front: d.hgFront.url, bareFront: d.hgBareFront.url, agent: mkAgent() },
      oidc: { ...common, name: 'hubgate', hub: hgHub, worker, front: d.hgFront.url, bareFront: d.hgBareFront.url, agent: mkAgent(), idpJars: idpJars() },
      bare: { ...common, name: 'hubgate', hub: hgHub, worker, front: d.hgFront.url, bareFront: d.hgBareFront.url, agent: mkAgent() },
    },
    anchor: {
      lti: { ...common, name: 'anchor (ltiauthenticator)', hub: anLti, front: d.anLtiFront.url, bareFront: d.anLtiFront.url, agent: mkAgent() },
      oidc: { ...common, name: 'anchor (GenericOAuthenticator)', hub: anOidc, front: d.anOidcFront.url, bareFront: d.anOidcFront.url, agent: mkAgent(), idpJars: idpJars() },
      bareLti: { ...common, name: 'anchor (lti hub)', hub: anLti, front: d.anLtiFront.url, bareFront: d.anLtiFront.url, agent: mkAgent() },
      bareOidc: { ...common, name: 'anchor (oidc hub)', hub: anOidc, front: d.anOidcFront.url, bareFront: d.anOidcFront.url, agent: mkAgent() },
    },
  };

  // --- first logins: IdP sessions, and a check that each side really logs in --
  setLatency(false);
  for (const user of USERS) {
    for (const [sideName, side] of [['hubgate', sides.hubgate.oidc], ['anchor', sides.anchor.oidc]]) {
      side.idpJars.set(user, cookieJar());
      const r = await oidcFlow(side, user);
      const who = await whoami(side, r.jar);
      if (who !== user) throw new Error(`${sideName}: OIDC login as ${user} gave the hub user ${who}`);
    }
    for (const [sideName, side] of [['hubgate', sides.hubgate.lti], ['anchor', sides.anchor.lti]]) {
      const r = await ltiFlow(side, user);
      const who = await whoami(side, r.jar);
      const want = `${user}@example.edu`;
      if (who !== want) throw new Error(`${sideName}: LTI launch as ${user} gave the hub user ${who} (want ${want})`);
    }
  }
  log('each side logged alice, bob and carol in by LTI and by OIDC (checked with /hub/api/user)');

  // --- cells -----------------------------------------------------------------
  // Conditions: none; the issue's latency; the same plus a TCP handshake's
  // round trip on every new connection (extra, not asked for; BENCH_HANDSHAKE_ROW=0 skips it).
  const conditions = [
    { id: 'none', latency: false, handshake: false },
    { id: 'latency', latency: true, handshake: false },
    ...(HANDSHAKE_ROW ? [{ id: 'latency+handshake', latency: true, handshake: true }] : []),
  ];
  // What each hub logged for the requests that make up a login (its own request time).
  const hubLogs = { hubgate: hgHub.logs, anchorLti: anLti.logs, anchorOidc: anOidc.logs };
  const cells = [];
  for (const cond of conditions) {
    setLatency(cond.latency, cond.handshake);
    const kinds = [
      { flow: 'bare', a: sides.hubgate.bare, b: sides.anchor.bareLti, b2: sides.anchor.bareOidc, run: (s) => bareFlow(s), logs: ['hubgate', 'anchorLti', 'anchorOidc'] },
      { flow: 'lti', a: sides.hubgate.lti, b: sides.anchor.lti, run: (s, i) => ltiFlow(s, USERS[i % USERS.length]), logs: ['hubgate', 'anchorLti'] },
      { flow: 'oidc', a: sides.hubgate.oidc, b: sides.anchor.oidc, run: (s, i) => oidcFlow(s, USERS[i % USERS.length]), logs: ['hubgate', 'anchorOidc'] },
    ];
    for (const k of kinds.filter((x) => x.flow === 'bare' || FLOWS.includes(x.flow))) {
      const label = `${k.flow}/${cond.id}`;
      log(`${label}: warm-up ${WARMUP}, then ${ROUNDS} interleaved rounds`);
      const anchorsB = k.b2 ? [k.b, k.b2] : [k.b];
      const failures = [];
      // A login that fails is recorded (with the hub's log) and run again, at
      // most MAX_FAILURES times per cell; only complete logins are timed.
      const attempt = async (side, i, warmup = false) => {
        for (;;) {
          try {
            return await k.run(side, i);
          } catch (err) {
            await sleep(300);
            const f = { side: side.name, round: warmup ? `warm-up ${i}` : i, error: err.message.split('\n')[0].slice(0, 300), hubLog: side.hub.tail(40).split('\n') };
            const recent = side.hub.logs.slice(-200);
            const firstError = recent.findIndex((l) => /^\[E /.test(l));
            f.hubErrors = firstError < 0 ? [] : recent.slice(firstError, firstError + 12);
            if (side.worker) f.workerLog = side.worker.logs.slice(-10);
            failures.push(f);
            log(`${label}: ${side.name} failed in round ${f.round}: ${f.error}\n  hub errors:\n    ${f.hubErrors.join('\n    ')}`);
            if (failures.length >= MAX_FAILURES) throw err;
          }
        }
      };
      for (let i = 0; i < WARMUP; i += 1) {
        await attempt(k.a, i, true);
        for (const b of anchorsB) await attempt(b, i, true);
      }
      await sleep(300); // let the warm-up's log lines arrive before marking
      const logMark = Object.fromEntries(k.logs.map((n) => [n, hubLogs[n].length]));
      const jw0 = { ...platform.stats.jwksBy };
      const idp0 = { ...idp.stats.requests };
      const conn0 = Object.fromEntries(proxies.map((p) => [p.name, p.stats.connections]));
      const runs = { hubgate: [], anchor: [], anchor2: [] };
      let interacted = 0;
      for (let i = 0; i < ROUNDS; i += 1) {
        const order = i % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
        for (const which of order) {
          if (which === 'a') {
            const r = await attempt(k.a, i);
            interacted += r.interacted ? 1 : 0;
            runs.hubgate.push(r);
          } else {
            const r = await attempt(k.b, i);
            interacted += r.interacted ? 1 : 0;
            runs.anchor.push(r);
            if (k.b2) runs.anchor2.push(await attempt(k.b2, i));
          }
        }
      }
      const jw1 = { ...platform.stats.jwksBy };
      const idpDelta = Object.fromEntries(Object.entries(idp.stats.requests).map(([n, v]) => [n, v - (idp0[n] ?? 0)]).filter(([, v]) => v > 0));
      const connDelta = Object.fromEntries(proxies.map((p) => [p.name, p.stats.connections - conn0[p.name]]).filter(([, v]) => v > 0));
      await sleep(300);
      const hubTimes = Object.fromEntries(k.logs.map((n) => [n, hubRequestTimes(hubLogs[n].slice(logMark[n]))]));
      const cell = {
        flow: k.flow,
        condition: cond.id,
        hubgate: { ...summary(runs.hubgate.map((r) => r.ms)), where: hopBreakdown(runs.hubgate), requests: requestShape(runs.hubgate) },
        anchor: { ...summary(runs.anchor.map((r) => r.ms)), where: hopBreakdown(runs.anchor), requests: requestShape(runs.anchor) },
        hubRequestTimes: hubTimes, // median request time each hub logged, by route (its own processing)
        failures, // logins that failed and were run again (not timed)
        idpInteractions: interacted,
        idpRequests: idpDelta, // both sides together (the IdP is shared)
        newConnectionsThroughDelayProxies: connDelta,
      };
      if (k.b2) cell.anchorOidcHub = { ...summary(runs.anchor2.map((r) => r.ms)) };
      if (k.flow === 'lti') {
        cell.platformKeySetFetches = {
          hubgate: (jw1.hubgate ?? 0) - (jw0.hubgate ?? 0),
          anchor: (jw1.anchor ?? 0) - (jw0.anchor ?? 0),
          launchesEach: ROUNDS,
        };
      }
      if (interacted) log(`${label}: ${interacted} logins needed the IdP's sign-in form (no IdP session): not single sign-on`);
      cells.push(cell);
      log(`${label}: hubgate median ${cell.hubgate.median.toFixed(1)} ms, anchor median ${cell.anchor.median.toFixed(1)} ms`);
    }
  }

  // --- results ---------------------------------------------------------------
  const find = (flow, cond) => cells.find((c) => c.flow === flow && c.condition === cond);
  const rows = [];
  for (const cond of conditions) {
    const bareCell = find('bare', cond.id);
    for (const flow of FLOWS) {
      const c = find(flow, cond.id);
      const hgBare = bareCell.hubgate.median;
      const anBare = flow === 'lti' ? bareCell.anchor.median : bareCell.anchorOidcHub.median;
      const row = {
        flow,
        condition: cond.id,
        hubgate: { median: r1(c.hubgate.median), p90: r1(c.hubgate.p90), bare: r1(hgBare), net: r1(c.hubgate.median - hgBare), browserRequests: c.hubgate.requests.length },
        anchor: { median: r1(c.anchor.median), p90: r1(c.anchor.p90), bare: r1(anBare), net: r1(c.anchor.median - anBare), browserRequests: c.anchor.requests.length },
      };
      row.ratio = r3(c.hubgate.median / c.anchor.median);
      row.netRatio = r3((c.hubgate.median - hgBare) / (c.anchor.median - anBare));
      rows.push(row);
    }
  }
  const targetFor = (cond) => {
    const r = rows.find((x) => x.flow === 'lti' && x.condition === cond);
    return r && { condition: cond, ratio: r.ratio, met: r.ratio <= 0.5, netRatio: r.netRatio, netMet: r.netRatio <= 0.5 };
  };
  const target = {
    what: "LTI 1.3 launch under the issue's latency: hubgate's median time to a hub session <= 0.5 x the anchor's",
    ...(targetFor('latency') ?? { ratio: NaN, met: false, netRatio: NaN, netMet: false, skipped: 'BENCH_FLOWS has no lti' }),
    withHandshake: HANDSHAKE_ROW ? targetFor('latency+handshake') : undefined,
  };

  const result = {
    bench: 'side-by-side',
    started: started.toISOString(),
    finished: new Date().toISOString(),
    rounds: ROUNDS,
    warmup: WARMUP,
    latencyMs: { ...LATENCY, oneWay: true, perChunk: true },
    conditions,
    machine: { cpus: os.cpus().length, node: process.version, loadavgBefore: loadBefore.map(r3), loadavgAfter: os.loadavg().map(r3) },
    versions: { anchors: anchorVersions(), worker: path.relative(REPO_ROOT, DEFAULT_SCRIPT) },
    rows,
    target,
    cells,
  };

  printTable(result);
  const outDir = path.join(here, 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `side-by-side-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nfigures written to ${path.relative(REPO_ROOT, file)}`);
}

/** Median request time by route from JupyterHub's access log lines ("302 GET /hub/login?… (user@ip) 12.34ms"). */
function hubRequestTimes(lines) {
  const by = {};
  for (const l of lines) {
    const m = /\] (\d{3}) (GET|POST) (\/[^\s?]*)\S*.* \([^)]*\) ([\d.]+)ms\s*$/.exec(l);
    if (!m) continue;
    (by[`${m[2]} ${m[3]}`] ??= []).push(Number(m[4]));
  }
  return Object.fromEntries(Object.entries(by).map(([k, v]) => [k, { n: v.length, medianMs: r1(summary(v).median) }]));
}

function conditionLabel(id, L) {
  if (id === 'none') return 'none';
  const base = `${L.front}/${L.hub}/${L.upstream}`;
  return id === 'latency+handshake' ? `${base}+hs` : base;
}

function printTable(res) {
  const L = res.latencyMs;
  const out = [];
  out.push(`side-by-side: hubgate vs the Python anchors, time to a hub session (jupyterhub-hub-login held), ms`);
  out.push(`${res.rounds} interleaved rounds per cell after ${res.warmup} warm-up; median (p90); node ${res.machine.node}, ${res.machine.cpus} cores, load ${res.machine.loadavgBefore.join(' ')}`);
  out.push(`anchors: jupyterhub ${res.versions.anchors.jupyterhub}, jupyterhub-ltiauthenticator ${res.versions.anchors['jupyterhub-ltiauthenticator']}, oauthenticator ${res.versions.anchors.oauthenticator} (GenericOAuthenticator), behind configurable-http-proxy`);
  out.push(`latency ${L.front}/${L.hub}/${L.upstream} = one way, each chunk: browser<->front door ${L.front} ms, front door<->hub ${L.hub} ms, hub-or-worker<->platform key set / IdP token+userinfo ${L.upstream} ms`);
  out.push(`+hs = the same, and every new TCP connection waits one round trip before its first bytes (not asked for by the issue)`);
  out.push('');
  const head = ['flow', 'latency', 'hubgate', 'anchor', 'ratio', 'hg bare', 'an bare', 'hg net', 'an net', 'net ratio', 'requests hg/an'];
  const body = res.rows.map((r) => [
    r.flow === 'lti' ? 'LTI 1.3 launch' : 'OIDC login',
    conditionLabel(r.condition, L),
    `${r.hubgate.median.toFixed(1)} (${r.hubgate.p90.toFixed(1)})`,
    `${r.anchor.median.toFixed(1)} (${r.anchor.p90.toFixed(1)})`,
    r.ratio.toFixed(2),
    r.hubgate.bare.toFixed(1),
    r.anchor.bare.toFixed(1),
    r.hubgate.net.toFixed(1),
    r.anchor.net.toFixed(1),
    r.netRatio.toFixed(2),
    `${r.hubgate.browserRequests}/${r.anchor.browserRequests}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cols) => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  out.push(line(head));
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) out.push(line(b));
  out.push('');
  out.push('ratio = hubgate / anchor (medians). bare = median of one GET /hub/api/ through the same front door');
  out.push('(hubgate: a pass-through worker in workerd before the same hub; anchor: its configurable-http-proxy before its hub); net = median - bare.');
  out.push('');
  out.push('per browser request, median ms (hubgate | anchor):');
  for (const c of res.cells.filter((x) => x.flow !== 'bare')) {
    const fmt = (reqs) => reqs.map((q) => `${q.request.replace(/ -> \d+$/, '')} ${q.medianMs}`).join(', ');
    out.push(`  ${c.flow.padEnd(4)} ${conditionLabel(c.condition, L).padEnd(11)} ${fmt(c.hubgate.requests)} | ${fmt(c.anchor.requests)}`);
  }
  out.push('the hubs\' own request times (their access log), median ms:');
  for (const c of res.cells.filter((x) => x.flow !== 'bare')) {
    const fmt = (t) => Object.entries(t ?? {}).map(([route, v]) => `${route} ${v.medianMs}`).join(', ');
    const an = c.flow === 'lti' ? c.hubRequestTimes.anchorLti : c.hubRequestTimes.anchorOidc;
    out.push(`  ${c.flow.padEnd(4)} ${conditionLabel(c.condition, L).padEnd(11)} hubgate's hub: ${fmt(c.hubRequestTimes.hubgate)} | anchor: ${fmt(an)}`);
  }
  for (const c of res.cells.filter((x) => x.flow === 'lti')) {
    const f = c.platformKeySetFetches;
    out.push(`platform key set fetches during the ${f.launchesEach} measured launches per side (${conditionLabel(c.condition, L)}): hubgate ${f.hubgate}, anchor ${f.anchor}`);
  }
  const failed = res.cells.flatMap((c) => c.failures.map((f) => `${c.flow}/${conditionLabel(c.condition, L)} ${f.side}: ${f.error}`));
  out.push(failed.length ? `failed logins (re-run, not timed; details in the JSON): ${failed.length}\n  ${failed.join('\n  ')}` : 'failed logins: none');
  const t = res.target;
  out.push('');
  out.push(`target: ${t.what}: ratio ${t.ratio.toFixed(2)} -> ${t.met ? 'MET' : 'NOT MET'}; net of each side's bare round trip: ${t.netRatio.toFixed(2)} -> ${t.netMet ? 'met' : 'not met'}`);
  if (t.withHandshake) {
    const h = t.withHandshake;
    out.push(`        with a handshake round trip per new connection: ratio ${h.ratio.toFixed(2)} -> ${h.met ? 'met' : 'not met'}; net ${h.netRatio.toFixed(2)} -> ${h.netMet ? 'met' : 'not met'}`);
  }
  console.log(out.join('\n'));
}

const hubsForTails = { list: [] };
try {
  await main();
} catch (err) {
  console.error(`[side-by-side] failed: ${err.stack ?? err}`);
  for (const [i, h] of hubsForTails.list.entries()) {
    console.error(`--- ${['hubgate hub', 'anchor lti hub', 'anchor oidc hub'][i]}: last log lines ---\n${h.tail(25)}`);
  }
  process.exitCode = 1;
} finally {
  await cleanup();
}
