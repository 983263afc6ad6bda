// Helpers for the OAuth/OIDC, proxy and security e2e suites: start an IdP
// (the real oidc-provider or the rogue one) + the fake hub + the built worker
// on loopback, mint and check the worker's own session cookies, drive a login
// up to (but not into) the callback, and wait for log lines.
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { generateKeyPair, exportJWK } from 'jose';
import { startIdp } from './idp.mjs';
import { startRogueIdp } from './rogue-idp.mjs';
import { startHubEcho, IDENTITY_HEADERS } from './hub-echo.mjs';
import { startWorker, follow } from './worker.mjs';

/** Session cookie name on loopback http (on https it is `__Host-hubgate`). */
export const SESSION_COOKIE = 'hubgate';
/** Prefix of the per-flow OAuth state cookie (the name carries the first 16 chars of the state). */
export const FLOW_COOKIE_PREFIX = 'hubgate-oauth-';

export const NAV_HEADERS = Object.freeze({
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
});
export const API_HEADERS = Object.freeze({
  accept: 'application/json',
  'sec-fetch-mode': 'cors',
});

/** A session secret of 32 random bytes, base64 (44 characters, over the 32-character minimum). */
export const randomSecret = () => crypto.randomBytes(32).toString('base64');

/** Drop bindings whose value is `undefined` (so an override can remove a default). */
function clean(bindings) {
  return Object.fromEntries(Object.entries(bindings).filter(([, v]) => v !== undefined));
}

/** A fresh P-256 private JWK for ASSERTION_SIGNING_KEY. */
export async function assertionKey(kid = `e2e-${crypto.randomBytes(4).toString('hex')}`) {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' });
}

/** Add `${worker.url}/hub/oauth_callback` to a demo IdP client's redirect_uris. */
export function registerWorker(idp, worker, clientId = 'hubgate-demo') {
  const uris = idp.client(clientId)?.redirect_uris ?? [];
  idp.setRedirectUris(clientId, [...new Set([...uris, `${worker.url}/hub/oauth_callback`])]);
}

/** Bindings for a worker in front of `hub` using the demo IdP. */
export function demoBindings({ idp, hub, secret, ...rest }) {
  return clean({
    HUB_ORIGIN: hub.url,
    OIDC_ISSUER: idp.issuer,
    OAUTH_CLIENT_ID: 'hubgate-demo',
    OAUTH_CLIENT_SECRET: 'hubgate-demo-secret',
    OAUTH2_USERNAME_KEY: 'preferred_username',
    ALLOWED_USERS: 'alice,bob',
    ADMIN_USERS: 'carol',
    SESSION_SECRET: secret,
    ...rest,
  });
}

/** Bindings for a worker using the rogue IdP. */
export function rogueBindings({ rogue, hub, secret, ...rest }) {
  return clean({
    HUB_ORIGIN: hub.url,
    OIDC_ISSUER: rogue.issuer,
    OAUTH_CLIENT_ID: rogue.clientId,
    OAUTH_CLIENT_SECRET: rogue.clientSecret,
    OAUTH2_USERNAME_KEY: 'preferred_username',
    ALLOWED_USERS: 'alice,bob',
    ADMIN_USERS: 'carol',
    SESSION_SECRET: secret,
    ...rest,
  });
}

/**
 * The real oidc-provider, the fake hub and a worker between them.
 * `bindings` override the defaults (`undefined` removes one).
 */
export async function startOidcStack({ bindings = {}, idpOptions = {} } = {}) {
  const stack = { idp: null, hub: null, worker: null, workers: [], secret: randomSecret() };
  try {
    stack.idp = await startIdp(idpOptions);
    stack.hub = await startHubEcho();
    stack.bindings = demoBindings({ idp: stack.idp, hub: stack.hub, secret: stack.secret, ...bindings });
    stack.worker = await startWorker({ bindings: stack.bindings });
    stack.workers.push(stack.worker);
    registerWorker(stack.idp, stack.worker);
  } catch (err) {
    await closeStack(stack);
    throw err;
  }
  /** Another worker in front of the same IdP and hub, with other bindings. */
  stack.addWorker = async (extra = {}) => {
    const w = await startWorker({ bindings: clean({ ...stack.bindings, ...extra }) });
    stack.workers.push(w);
    registerWorker(stack.idp, w);
    return w;
  };
  stack.close = () => closeStack(stack);
  return stack;
}

/** The rogue IdP, the fake hub and a worker between them. */
export async function startRogueStack({ scenario = 'good', bindings = {}, rogueOptions = {} } = {}) {
  const stack = { rogue: null, hub: null, worker: null, workers: [], secret: randomSecret() };
  try {
    stack.rogue = await startRogueIdp({ scenario, ...rogueOptions });
    stack.hub = await startHubEcho();
    stack.bindings = rogueBindings({ rogue: stack.rogue, hub: stack.hub, secret: stack.secret, ...bindings });
    stack.worker = await startWorker({ bindings: stack.bindings });
    stack.workers.push(stack.worker);
  } catch (err) {
    await closeStack(stack);
    throw err;
  }
  stack.addWorker = async (extra = {}) => {
    const w = await startWorker({ bindings: clean({ ...stack.bindings, ...extra }) });
    stack.workers.push(w);
    return w;
  };
  stack.close = () => closeStack(stack);
  return stack;
}

async function closeStack(stack) {
  for (const w of stack.workers ?? []) await w.close().catch(() => {});
  if (stack.worker && !stack.workers?.includes(stack.worker)) await stack.worker.close().catch(() => {});
  await stack.hub?.close().catch(() => {});
  await stack.idp?.close().catch(() => {});
  await stack.rogue?.close().catch(() => {});
}

// ---------------------------------------------------------------------------
// Requests with a jar

/**
 * fetch-compatible client over node:http that sends exactly the headers it is
 * given. Node's global fetch (undici) overwrites `Sec-Fetch-Mode` with `cors`,
 * so a browser navigation (`Sec-Fetch-Mode: navigate`) can only be simulated
 * this way. Never follows redirects. Usable as `follow(httpFetch, …)`. Also
 * speaks https to a loopback worker started with `https: true` (its
 * certificate is self-signed and not verified).
 * @returns {Promise<Response>}
 */
export function httpFetch(url, { method = 'GET', headers = {}, body } = {}) {
  const u = new URL(url);
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(u.hostname);
  if (u.protocol !== 'http:' && !(u.protocol === 'https:' && loopback)) {
    return Promise.reject(new Error(`httpFetch: only http, or https on loopback, got ${u.href}`));
  }
  const h = {};
  for (const [k, v] of headers instanceof Headers ? headers.entries() : Object.entries(headers)) h[k.toLowerCase()] = v;
  let payload;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    payload = Buffer.from(body);
    h['content-length'] = String(payload.length);
  } else if (body !== undefined && body !== null) {
    return Promise.reject(new TypeError('httpFetch: body must be a string or bytes'));
  }
  return new Promise((resolve, reject) => {
    // https only on loopback, to a worker started with `https: true` (Miniflare's self-signed certificate)
    const tls = u.protocol === 'https:' ? { rejectUnauthorized: false } : {};
    const req = (u.protocol === 'https:' ? https : http).request(u, { method, headers: h, agent: false, ...tls }, (res) => {
      const out = new Headers();
      const raw = res.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) out.append(raw[i], raw[i + 1]);
      const nullBody = [101, 204, 205, 304].includes(res.statusCode) || method === 'HEAD';
      if (nullBody) res.resume();
      resolve(
        new Response(nullBody ? null : Readable.toWeb(res), {
          status: res.statusCode,
          statusText: res.statusMessage,
          headers: out,
        }),
      );
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * One request to the worker (through `httpFetch`, so headers go as given) with
 * the jar's cookies, no redirect following; stores the response's cookies.
 * Returns { res, status, headers, location, setCookies, text, json() }.
 */
export async function send(worker, path, jar, { method = 'GET', headers = {}, body } = {}) {
  const url = new URL(path, worker.url);
  const h = { ...headers };
  const cookie = jar?.header(url);
  if (cookie && !Object.keys(h).some((k) => k.toLowerCase() === 'cookie')) h.cookie = cookie;
  const res = await httpFetch(url, { method, headers: h, body });
  jar?.store(url, res);
  const text = await res.text();
  return {
    res,
    status: res.status,
    headers: res.headers,
    location: res.headers.get('location'),
    setCookies: res.headers.getSetCookie(),
    text,
    json() {
      return JSON.parse(text);
    },
  };
}

/** Trail of a redirect chain for assertion messages. */
export const trail = (chain) => chain.map((c) => `${c.status} ${c.method} ${c.url}`).join('\n');

/** The chain entry that hit the worker's /hub/oauth_callback (undefined when none). */
export const callbackEntry = (chain) => chain.find((c) => new URL(c.url).pathname === '/hub/oauth_callback');

/**
 * Start a login at the worker and follow it through `idp` (the rogue IdP, which
 * never asks for a username) until the redirect back to the worker's callback;
 * the callback itself is not requested.
 * @returns {Promise<{chain: object[], callbackUrl: URL}>}
 */
export async function loginUntilCallback(worker, jar, next = '/hub/') {
  const start = new URL(`/hub/oauth_login?next=${encodeURIComponent(next)}`, worker.url);
  const isCallback = (u) => u.origin === worker.url && u.pathname === '/hub/oauth_callback';
  const chain = await follow(httpFetch, start, jar, { stopAt: isCallback });
  const last = chain.at(-1);
  if (!last.location) throw new Error(`login did not reach the callback:\n${trail(chain)}\n${last.text}`);
  const callbackUrl = new URL(last.location, last.url);
  if (!isCallback(callbackUrl)) throw new Error(`login went to ${callbackUrl.href}:\n${trail(chain)}`);
  return { chain, callbackUrl };
}

/** Names of the live per-flow OAuth cookies in `jar`. */
export const flowCookies = (jar) => jar.names().filter((n) => n.startsWith(FLOW_COOKIE_PREFIX));

/** `Set-Cookie` values for `name` in a response's list. */
export const setCookieFor = (list, name) => list.filter((c) => c.startsWith(`${name}=`));

/** True when a Set-Cookie value deletes its cookie (Max-Age<=0 or an Expires in the past). */
export function isDeletion(setCookie) {
  const maxAge = /;\s*max-age=(-?\d+)/i.exec(setCookie);
  if (maxAge) return Number(maxAge[1]) <= 0;
  const exp = /;\s*expires=([^;]+)/i.exec(setCookie);
  return Boolean(exp && Date.parse(exp[1]) <= Date.now());
}

// ---------------------------------------------------------------------------
// The worker's own HS256 tokens

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** The per-purpose HMAC key: HMAC-SHA256(key = secret bytes, message = "hubgate/v1/<purpose>"). */
export function derivedKey(secret, purpose = 'session') {
  return crypto.createHmac('sha256', Buffer.from(secret, 'utf8')).update(`hubgate/v1/${purpose}`).digest();
}

/** Sign an HS256 compact JWT with `header` and `claims` under `key` (raw bytes). */
export function signHs256(header, claims, key) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(crypto.createHmac('sha256', key).update(input).digest())}`;
}

/**
 * A session cookie value as the worker mints it. Times are Unix seconds;
 * defaults: issued now, valid for an hour.
 */
export function mintSession({
  secret,
  origin,
  sub = 'alice',
  email,
  method = 'oauth',
  groups = [],
  admin = false,
  sid = crypto.randomBytes(16).toString('base64url'),
  iat,
  exp,
  iss = 'hubgate',
  typ = 'hubgate-session+jwt',
  extra = {},
}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss, aud: origin, sub, method, groups, admin, sid, iat: iat ?? now, exp: exp ?? now + 3600, ...extra };
  if (email !== undefined) claims.email = email;
  return signHs256({ alg: 'HS256', typ }, claims, derivedKey(secret, 'session'));
}

/** Verify a session token with `secret`; returns its claims or throws. */
export function verifySession(token, secret) {
  const [h, p, s] = token.split('.');
  const expected = crypto.createHmac('sha256', derivedKey(secret, 'session')).update(`${h}.${p}`).digest();
  const got = Buffer.from(s ?? '', 'base64url');
  if (got.length !== expected.length || !crypto.timingSafeEqual(got, expected)) throw new Error('session signature does not verify');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  if (header.typ !== 'hubgate-session+jwt' || header.alg !== 'HS256') throw new Error(`unexpected header ${JSON.stringify(header)}`);
  return JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
}

/** Flip one character in the middle of a JWT's signature (still valid base64url). */
export function tamperSignature(token) {
  const [h, p, s] = token.split('.');
  const i = Math.floor(s.length / 2);
  const c = s[i] === 'A' ? 'B' : 'A';
  return `${h}.${p}.${s.slice(0, i)}${c}${s.slice(i + 1)}`;
}

/** Re-encode a JWT's payload with `change(claims)` applied, keeping the old signature. */
export function tamperPayload(token, change) {
  const [h, p, s] = token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  return `${h}.${b64url(JSON.stringify(change(claims) ?? claims))}.${s}`;
}

// ---------------------------------------------------------------------------
// Logs

/**
 * Wait until one of the worker's JSON log lines satisfies `pred` (workerd's
 * stdout arrives asynchronously). Resolves with the line, or null after `timeoutMs`.
 */
export async function waitForLog(worker, pred, { timeoutMs = 2000, from = 0 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = worker.jsonLogs().slice(from).find(pred);
    if (hit) return hit;
    if (Date.now() >= deadline) return null;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The correlation id an error answer carries (HTML page or JSON), or undefined. */
export function correlationId(text) {
  const html = /Reference: <code>([^<]+)<\/code>/.exec(text);
  if (html) return html[1];
  try {
    return JSON.parse(text).correlation_id;
  } catch {
    return undefined;
  }
}

/** Index to pass as `from` so only lines logged after this point are searched. */
export const logMark = (worker) => worker.jsonLogs().length;

// ---------------------------------------------------------------------------
// What reached the hub

export { IDENTITY_HEADERS };

/** Identity-carrying header names (any case, `_` for `-`) present in a request's headers. */
export function identityHeadersIn(headers) {
  return Object.keys(headers ?? {}).filter((k) => IDENTITY_HEADERS.includes(k.toLowerCase().replace(/_/g, '-')));
}

/** The echo hub's recorded login subrequests (GET <base>hub/login) since index `from` of hub.requests. */
export function hubLogins(hub, from = 0) {
  return hub.requests.slice(from).filter((r) => r.path.endsWith('/hub/login') && !r.upgrade);
}

/**
 * Checks a login subrequest the worker sent to the echo hub: a GET to
 * <base>hub/login?next=<next> with the identity headers and no browser cookies.
 */
export function checkHubLogin(assert, req, { user, email, groups, admin = false, next, base = '/' } = {}) {
  assert.ok(req, 'the worker sent its login subrequest to the hub');
  assert.equal(req.method, 'GET');
  assert.equal(req.path, `${base}hub/login`);
  if (next !== undefined) assert.equal(req.query.next, next);
  assert.equal(req.headers.cookie, undefined, `no browser cookie on the hub login: ${req.headers.cookie}`);
  if (user !== undefined) assert.equal(req.headers['x-forwarded-user'], user);
  if (email !== undefined) assert.equal(req.headers['x-forwarded-email'], email);
  if (groups !== undefined) assert.equal(req.headers['x-forwarded-groups'], groups);
  assert.equal(req.headers['x-forwarded-admin'], String(admin));
  assert.equal(req.loggedIn, user, 'the hub logged the user in');
}
