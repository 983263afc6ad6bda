// Session refresh through the built worker against the real oidc-provider:
// the refresh token the provider issues at login (scope offline_access, asked
// for with prompt=consent) is kept sealed in KV NONCES, never in the browser;
// after AUTH_REFRESH_AGE the session's next request refreshes it at the token
// endpoint (the provider rotates the refresh token on every use), re-applies
// the allow/group rules and re-mints the cookie; a changed identity logs the
// user in at the hub again; a refresh that fails ends the session everywhere.
// AUTH_REFRESH_AGE=2, so each wait is a couple of seconds. Run:
//   node --test tests/e2e/oidc-refresh.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { cookieJar, oidcLogin } from './support/worker.mjs';
import { DEMO_USERS } from './support/idp.mjs';
import {
  startOidcStack,
  send,
  trail,
  setCookieFor,
  isDeletion,
  verifySession,
  waitForLog,
  logMark,
  hubLogins,
  checkHubLogin,
  identityHeadersIn,
  SESSION_COOKIE,
  NAV_HEADERS,
  API_HEADERS,
} from './support/oauth-helpers.mjs';

const CLIENT_ID = 'hubgate-demo';
const CLIENT_SECRET = 'hubgate-demo-secret';
const REFRESH_AGE = 2; // seconds
const TIMEOUT = { timeout: 60_000 };
const REFRESH_PREFIX = 'session-refresh:';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hubPaths = (hub, from) => hub.requests.slice(from).map((r) => `${r.method} ${r.path}`);

/**
 * The suite's users: the demo users (a copy: a test changes groups at the IdP)
 * plus two more students, so each test that changes groups has its own user.
 */
function suiteUsers() {
  return {
    ...structuredClone(DEMO_USERS),
    dora: { sub: 'sub-dora-19fa', preferred_username: 'dora', email: 'dora@example.edu', email_verified: true, name: 'Dora Explorer', groups: ['students'] },
    erin: { sub: 'sub-erin-3b07', preferred_username: 'erin', email: 'erin@example.edu', email_verified: true, name: 'Erin Brockovich', groups: ['students'] },
  };
}

/**
 * The provider (rotating refresh tokens), the echo hub and a worker asking for
 * offline_access with prompt=consent, allowing the group `students` only.
 * `s.tokens` records every token endpoint answer (the provider's grant.success
 * / grant.error events): { ok, grantType, rtIn, rtOut, error, description }.
 */
async function startRefreshStack() {
  const users = suiteUsers();
  const s = await startOidcStack({
    idpOptions: { users, rotateRefreshToken: true },
    bindings: {
      OAUTH_SCOPES: 'openid profile email offline_access',
      OAUTH_EXTRA_AUTHORIZE_PARAMS: JSON.stringify({ prompt: 'consent' }),
      AUTH_REFRESH_AGE: String(REFRESH_AGE),
      ALLOWED_USERS: undefined,
      ALLOWED_GROUPS: 'students',
    },
  });
  s.users = users;
  s.tokens = [];
  s.idp.provider.on('grant.success', (ctx) => {
    s.tokens.push({
      ok: true,
      grantType: ctx.oidc.params.grant_type,
      rtIn: ctx.oidc.params.refresh_token,
      rtOut: ctx.body?.refresh_token,
      idToken: ctx.body?.id_token,
    });
  });
  s.idp.provider.on('grant.error', (ctx, err) => {
    s.tokens.push({
      ok: false,
      grantType: ctx.oidc?.params?.grant_type,
      rtIn: ctx.oidc?.params?.refresh_token,
      error: err.error ?? err.message,
      description: err.error_description,
    });
  });
  return s;
}

/** Token endpoint answers since index `from` with grant_type=refresh_token. */
const refreshes = (s, from) => s.tokens.slice(from).filter((t) => t.grantType === 'refresh_token');

/** Everything about the session cookie in `jar`: its value and verified claims. */
function sessionOf(s, jar) {
  const value = jar.get(SESSION_COOKIE);
  assert.ok(value, `no ${SESSION_COOKIE} cookie in the jar: ${jar.names().join(', ')}`);
  return { value, claims: verifySession(value, s.secret) };
}

/**
 * `username` logs in through the worker with a fresh jar and reaches the hub.
 * Returns { jar, rt (the refresh token the provider issued), session }.
 */
async function login(s, username, next = '/hub/home') {
  const jar = cookieJar();
  const n = s.tokens.length;
  const from = s.hub.requests.length;
  const { chain, final, interacted } = await oidcLogin(s.worker, s.idp, username, jar, next);
  assert.ok(interacted, 'prompt=consent: the provider asked');
  assert.equal(final.status, 200, `${trail(chain)}\n${final.text}`);
  assert.equal(final.json().hub_user, username, 'the hub knows the user');
  assert.equal(hubLogins(s.hub, from).length, 1, hubPaths(s.hub, from).join('\n'));
  const issued = s.tokens.slice(n);
  assert.equal(issued.length, 1, JSON.stringify(issued));
  assert.equal(issued[0].grantType, 'authorization_code');
  assert.ok(issued[0].ok);
  assert.ok(issued[0].rtOut, 'the provider issued a refresh token (offline_access with prompt=consent)');
  const session = sessionOf(s, jar);
  assert.equal(typeof session.claims.prv?.rat, 'number', `the session plans a refresh: ${JSON.stringify(session.claims)}`);
  return { jar, rt: issued[0].rtOut, session };
}

/**
 * Wait (bounded) until the refresh the cookie in `jar` plans is due: the
 * worker compares whole seconds, `now >= rat`.
 */
async function waitUntilDue(s, jar) {
  const { rat } = sessionOf(s, jar).claims.prv;
  const wait = rat * 1000 + 150 - Date.now();
  assert.ok(wait <= (REFRESH_AGE + 2) * 1000, `refresh planned ${wait} ms ahead, more than AUTH_REFRESH_AGE=${REFRESH_AGE}`);
  if (wait > 0) await sleep(wait);
}

/** An API request with `jar` that reaches the hub as `user`. */
async function apiAsUser(s, jar, user, path = '/hub/api/user') {
  const from = s.hub.requests.length;
  const r = await send(s.worker, path, jar, { headers: { ...API_HEADERS } });
  assert.equal(r.status, 200, `${path}: ${r.status} ${r.text}`);
  assert.equal(r.json().hub_user, user);
  assert.equal(r.json().path, path);
  assert.deepEqual(identityHeadersIn(r.json().headers), [], 'no identity on a proxied request');
  assert.ok(hubPaths(s.hub, from).includes(`GET ${path}`), hubPaths(s.hub, from).join('\n'));
  return r;
}

/** The non-deleting Set-Cookie for the session cookie in a response (undefined when none). */
const newSessionCookie = (r) => setCookieFor(r.setCookies, SESSION_COOKIE).find((c) => !isDeletion(c));

/** Forms a token can take when it leaks: itself and its usual encodings. */
function leakForms(token) {
  const b = Buffer.from(token, 'utf8');
  return [token, b.toString('base64'), b.toString('base64url'), b.toString('hex'), encodeURIComponent(token)];
}

/** Every key and value of KV namespace `name`, values as bytes. */
async function kvDump(worker, name) {
  const kv = await worker.kv(name);
  const out = [];
  let cursor;
  for (let i = 0; i < 50; i += 1) {
    const page = await kv.list({ cursor });
    for (const { name: key } of page.keys) {
      const value = await kv.get(key, 'arrayBuffer');
      out.push({ key, value: value === null ? Buffer.alloc(0) : Buffer.from(value) });
    }
    if (page.list_complete) break;
    cursor = page.cursor;
  }
  return out;
}

/** Refresh the provider directly with `rt`, as the client would (Basic auth). */
async function providerRefresh(s, rt) {
  const res = await fetch(`${s.idp.issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt }).toString(),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * The session that `jar` (and `copy`, a Cookie header kept from before) held
 * has ended at its refresh: the first request (a navigation with the jar)
 * refreshes, fails, is sent to /hub/login with the cookie deleted; an API
 * call and a navigation with the copy are refused; nothing reaches the hub;
 * exactly one refresh_token request reached the provider; the worker logged
 * refresh_failed. Returns { failed: the log line, tokenAnswers }.
 */
async function sessionEndsAtRefresh(s, { jar, copy, user }) {
  const from = s.hub.requests.length;
  const n = s.tokens.length;
  const tokenRequests = s.idp.stats.count('/token');
  const mark = logMark(s.worker);

  const nav = await send(s.worker, '/hub/home?tab=3', jar, { headers: { ...NAV_HEADERS } });
  assert.equal(nav.status, 302, `navigation: ${nav.status} ${nav.text}\n${nav.setCookies.join('\n')}`);
  assert.equal(nav.location, `/hub/login?next=${encodeURIComponent('/hub/home?tab=3')}`);
  const deleted = setCookieFor(nav.setCookies, SESSION_COOKIE);
  assert.ok(deleted.length > 0 && deleted.every(isDeletion), `the session cookie is deleted: ${nav.setCookies.join(' | ')}`);
  assert.equal(newSessionCookie(nav), undefined);
  assert.equal(jar.get(SESSION_COOKIE), undefined, 'the browser no longer holds the session');

  const api = await send(s.worker, '/hub/api/user', null, { headers: { ...API_HEADERS, cookie: copy } });
  assert.equal(api.status, 401, `API with the kept copy: ${api.status} ${api.text}`);
  const navCopy = await send(s.worker, '/hub/home', null, { headers: { ...NAV_HEADERS, cookie: copy } });
  assert.equal(navCopy.status, 302, `navigation with the kept copy: ${navCopy.status} ${navCopy.text}`);
  assert.equal(navCopy.location, `/hub/login?next=${encodeURIComponent('/hub/home')}`);

  assert.deepEqual(hubPaths(s.hub, from), [], 'nothing reached the hub');
  const answers = refreshes(s, n);
  assert.equal(answers.length, 1, `one refresh at the provider: ${JSON.stringify(s.tokens.slice(n))}`);
  assert.equal(s.idp.stats.count('/token') - tokenRequests, 1, 'one token request in all');

  const failed = await waitForLog(s.worker, (l) => l.event === 'refresh_failed', { from: mark });
  assert.ok(failed, `no refresh_failed log line:\n${s.worker.logs.slice(-15).join('\n')}`);
  assert.equal(failed.user, user);
  const lines = s.worker.jsonLogs().slice(mark);
  assert.equal(lines.filter((l) => l.event === 'refresh_failed').length, 1, 'one refresh failed (the copies were refused as revoked)');
  assert.equal(lines.filter((l) => l.event === 'session_refreshed').length, 0);
  return { failed, answer: answers[0], lines };
}

// ---------------------------------------------------------------------------

describe('OIDC session refresh against oidc-provider (offline_access, rotating refresh tokens, AUTH_REFRESH_AGE=2)', TIMEOUT, () => {
  let s;
  before(async () => {
    s = await startRefreshStack();
  });
  after(() => s?.close());

  test("after login the browser holds no refresh token, and KV NONCES holds the session's refresh token sealed (session-refresh:<sid>), never in clear", async () => {
    const alice = await login(s, 'alice');
    const { rt, jar, session } = alice;
    assert.ok(rt.length >= 20, `a real refresh token: ${rt}`);

    // the browser: no cookie (name, value or attributes) carries the refresh token in any form
    const forms = leakForms(rt);
    for (const c of jar.all()) {
      for (const f of forms) assert.ok(!c.raw.includes(f), `cookie ${c.name} carries the refresh token`);
    }
    const claimsText = JSON.stringify(session.claims);
    for (const f of forms) assert.ok(!claimsText.includes(f), 'the session claims carry the refresh token');

    // KV NONCES: the sealed token under the session's id
    const nonces = await kvDump(s.worker, 'NONCES');
    const key = `${REFRESH_PREFIX}${session.claims.sid}`;
    const entry = nonces.find((e) => e.key === key);
    assert.ok(entry, `no ${key} in NONCES: ${nonces.map((e) => e.key).join(', ')}`);
    assert.ok(entry.value.length > 0, 'a sealed value is stored');
    // sealed (AEAD): longer than the token by at least a tag, and no trace of it
    assert.ok(entry.value.length >= Buffer.byteLength(rt) + 16, `sealed value of ${entry.value.length} bytes for a ${rt.length}-character token`);
    // nowhere in either namespace, keys or values, in any of its forms
    const all = [...nonces, ...(await kvDump(s.worker, 'JWKS_CACHE'))];
    for (const { key: k, value } of all) {
      for (const f of forms) {
        assert.ok(!k.includes(f), `KV key ${k} carries the refresh token`);
        assert.ok(!value.includes(Buffer.from(f, 'utf8')), `KV ${k} carries the refresh token in clear`);
      }
    }
    // the session still works (and nothing is due yet: no refresh)
    const n = s.tokens.length;
    await apiAsUser(s, jar, 'alice');
    assert.deepEqual(refreshes(s, n), []);
  });

  test('after AUTH_REFRESH_AGE a proxied request makes exactly one refresh at the token endpoint and gets a re-minted cookie; the provider rotated the refresh token (the old one consumed, refused when used again) and the next refresh uses the new one', async () => {
    const alice = await login(s, 'alice');
    const { jar, rt: rt1 } = alice;
    const before = alice.session.claims;
    const refreshEntryBefore = (await kvDump(s.worker, 'NONCES')).find((e) => e.key === `${REFRESH_PREFIX}${before.sid}`);
    assert.ok(refreshEntryBefore);

    await waitUntilDue(s, jar);
    let n = s.tokens.length;
    let tokenRequests = s.idp.stats.count('/token');
    const hubFrom = s.hub.requests.length;
    let mark = logMark(s.worker);
    const r1 = await apiAsUser(s, jar, 'alice');

    // exactly one token request, grant_type=refresh_token with the login's refresh token
    assert.equal(s.idp.stats.count('/token') - tokenRequests, 1, 'one request at the token endpoint');
    const first = refreshes(s, n);
    assert.equal(first.length, 1, JSON.stringify(s.tokens.slice(n)));
    assert.ok(first[0].ok, `the provider refused: ${JSON.stringify(first[0])}`);
    assert.equal(first[0].rtIn, rt1, "the worker sent the login's refresh token");
    const rt2 = first[0].rtOut;
    assert.ok(rt2 && rt2 !== rt1, 'the provider rotated the refresh token');

    // a re-minted session cookie: same session id and expiry, the next refresh planned later
    const minted = newSessionCookie(r1);
    assert.ok(minted, `no new session cookie: ${r1.setCookies.join(' | ')}`);
    const after1 = sessionOf(s, jar).claims;
    assert.notEqual(jar.get(SESSION_COOKIE), alice.session.value);
    assert.equal(after1.sid, before.sid);
    assert.equal(after1.exp, before.exp, 'a refresh does not extend the session');
    assert.equal(after1.sub, 'alice');
    assert.deepEqual(after1.groups, ['students']);
    assert.ok(after1.prv.rat > before.prv.rat, `next refresh planned later: ${before.prv.rat} → ${after1.prv.rat}`);
    const refreshed = await waitForLog(s.worker, (l) => l.event === 'session_refreshed', { from: mark });
    assert.ok(refreshed, `no session_refreshed log line:\n${s.worker.logs.slice(-10).join('\n')}`);
    assert.equal(refreshed.user, 'alice');
    assert.equal(refreshed.changed, 'false');
    assert.deepEqual(hubLogins(s.hub, hubFrom), [], 'an unchanged identity: no new login at the hub');

    // the old refresh token is consumed at the provider; the new one is stored (sealed anew)
    const old = await s.idp.provider.RefreshToken.find(rt1, { ignoreExpiration: true });
    assert.ok(old?.consumed, `the login's refresh token is consumed: ${JSON.stringify(old && { consumed: old.consumed })}`);
    const refreshEntry = (await kvDump(s.worker, 'NONCES')).find((e) => e.key === `${REFRESH_PREFIX}${before.sid}`);
    assert.ok(refreshEntry);
    assert.ok(!refreshEntry.value.equals(refreshEntryBefore.value), 'the stored sealed token changed');
    for (const f of leakForms(rt2)) assert.ok(!refreshEntry.value.includes(Buffer.from(f)), 'the rotated token is not stored in clear');

    // not due again at once: the next request does not refresh
    n = s.tokens.length;
    const again = await apiAsUser(s, jar, 'alice');
    assert.equal(newSessionCookie(again), undefined, 'no new cookie before the next plan');
    assert.deepEqual(refreshes(s, n), []);

    // the next refresh uses the rotated token and succeeds
    await waitUntilDue(s, jar);
    n = s.tokens.length;
    tokenRequests = s.idp.stats.count('/token');
    mark = logMark(s.worker);
    const r2 = await apiAsUser(s, jar, 'alice');
    assert.equal(s.idp.stats.count('/token') - tokenRequests, 1);
    const second = refreshes(s, n);
    assert.equal(second.length, 1, JSON.stringify(s.tokens.slice(n)));
    assert.ok(second[0].ok, `the provider refused the second refresh: ${JSON.stringify(second[0])}`);
    assert.equal(second[0].rtIn, rt2, 'the second refresh used the rotated refresh token');
    assert.ok(second[0].rtOut && ![rt1, rt2].includes(second[0].rtOut), 'rotated again');
    assert.ok(newSessionCookie(r2), 'a re-minted cookie again');
    assert.ok(await waitForLog(s.worker, (l) => l.event === 'session_refreshed', { from: mark }));
    assert.equal(s.worker.jsonLogs().slice(mark).filter((l) => l.event === 'refresh_failed').length, 0);

    // the old (consumed) refresh token, used again, is refused by the provider.
    // (oidc-provider then revokes the whole grant: reuse detection; last step of this test)
    const replay = await providerRefresh(s, rt1);
    assert.equal(replay.status, 400, JSON.stringify(replay.body));
    assert.equal(replay.body.error, 'invalid_grant');
  });

  test('groups changed at the IdP: the refresh logs the user in at the hub again with the new groups, and the next request works', async () => {
    const bob = await login(s, 'bob');
    const { jar } = bob;
    const hubLoginBefore = jar.get('jupyterhub-hub-login', `${s.worker.url}/hub/`);
    assert.equal(s.hub.sessionUser(hubLoginBefore), 'bob');

    s.users.bob.groups = ['students', 'gpu'];
    await waitUntilDue(s, jar);
    const from = s.hub.requests.length;
    const n = s.tokens.length;
    const mark = logMark(s.worker);
    const r = await send(s.worker, '/hub/home?tab=4', jar, { headers: { ...NAV_HEADERS } });
    assert.equal(r.status, 200, `${r.status} ${r.text}\n${r.setCookies.join('\n')}`);
    assert.equal(r.json().path, '/hub/home');

    const answers = refreshes(s, n);
    assert.equal(answers.length, 1, JSON.stringify(s.tokens.slice(n)));
    assert.ok(answers[0].ok);
    // the worker's own login subrequest, with the new groups, before the proxied request
    const logins = hubLogins(s.hub, from);
    assert.equal(logins.length, 1, `one new login at the hub:\n${hubPaths(s.hub, from).join('\n')}`);
    checkHubLogin(assert, logins[0], { user: 'bob', email: 'bob@example.edu', groups: 'students,gpu', admin: false, next: '/hub/home?tab=4' });
    assert.deepEqual(hubPaths(s.hub, from), ['GET /hub/login', 'GET /hub/home'], 'the login, then the request itself');
    // the response carries the re-minted session and the hub's new cookies
    assert.ok(newSessionCookie(r), `no new session cookie: ${r.setCookies.join(' | ')}`);
    assert.deepEqual(sessionOf(s, jar).claims.groups, ['students', 'gpu']);
    assert.equal(sessionOf(s, jar).claims.sid, bob.session.claims.sid);
    const hubLoginAfter = jar.get('jupyterhub-hub-login', `${s.worker.url}/hub/`);
    assert.notEqual(hubLoginAfter, hubLoginBefore, `the hub's new login cookie reached the browser: ${r.setCookies.join(' | ')}`);
    assert.equal(s.hub.sessionUser(hubLoginAfter), 'bob');
    const line = await waitForLog(s.worker, (l) => l.event === 'session_refreshed', { from: mark });
    assert.ok(line, `no session_refreshed:\n${s.worker.logs.slice(-10).join('\n')}`);
    assert.equal(line.changed, 'true');

    // the next request works, with the hub's new session, and does not log in again
    const from2 = s.hub.requests.length;
    await apiAsUser(s, jar, 'bob');
    assert.deepEqual(hubLogins(s.hub, from2), []);
    assert.equal(s.hub.requests.at(-1).hubUser, 'bob');
  });

  test('grant revoked at the provider: the next request after AUTH_REFRESH_AGE ends the session (navigation 302 to /hub/login with the cookie deleted, API 401, a kept copy refused, nothing reaches the hub, refresh_failed logged)', async (t) => {
    const alice = await login(s, 'alice');
    const { jar, rt } = alice;
    const copy = jar.header(new URL('/hub/', s.worker.url));
    await apiAsUser(s, jar, 'alice'); // control: the session works

    // revoke the grant at the provider: the grant and every token issued under it
    const token = await s.idp.provider.RefreshToken.find(rt);
    assert.ok(token?.grantId, 'the refresh token is live at the provider');
    const grant = await s.idp.provider.Grant.find(token.grantId);
    assert.ok(grant);
    await grant.destroy();
    await s.idp.provider.RefreshToken.adapter.revokeByGrantId(token.grantId);
    assert.equal(await s.idp.provider.RefreshToken.find(rt), undefined, 'revoked');

    await waitUntilDue(s, jar);
    const { failed, answer } = await sessionEndsAtRefresh(s, { jar, copy, user: 'alice' });
    assert.equal(answer.ok, false);
    assert.equal(answer.error, 'invalid_grant', JSON.stringify(answer));
    assert.match(failed.detail ?? '', /invalid_grant|token endpoint|refus/i, JSON.stringify(failed));
    t.diagnostic(`refresh_failed: ${JSON.stringify(failed)}`);
  });

  test('user no longer in ALLOWED_GROUPS at the IdP: the refresh ends the session as a revoked grant does', async (t) => {
    const dora = await login(s, 'dora');
    const { jar } = dora;
    const copy = jar.header(new URL('/hub/', s.worker.url));
    await apiAsUser(s, jar, 'dora');

    s.users.dora.groups = ['alumni'];
    await waitUntilDue(s, jar);
    const { failed, answer } = await sessionEndsAtRefresh(s, { jar, copy, user: 'dora' });
    assert.equal(answer.ok, true, 'the provider refreshed; the worker refused the user');
    assert.match(failed.detail ?? '', /allow|group|not/i, JSON.stringify(failed));
    t.diagnostic(`refresh_failed: ${JSON.stringify(failed)}`);

    // and a new login is refused too (403, nothing at the hub)
    const from = s.hub.requests.length;
    const again = await oidcLogin(s.worker, s.idp, 'dora', cookieJar(), '/hub/');
    assert.equal(again.final.status, 403, trail(again.chain));
    assert.deepEqual(hubPaths(s.hub, from), []);
  });

  test('two concurrent requests when due: one refresh at the provider, both answered by the hub (the other with the current session), no refresh_failed', async (t) => {
    const erin = await login(s, 'erin');
    const { jar } = erin;
    await waitUntilDue(s, jar);

    // hold the token endpoint a little so the two requests overlap the refresh
    s.idp.setFault('/token', { delayMs: 600 });
    let results;
    const n = s.tokens.length;
    const tokenRequests = s.idp.stats.count('/token');
    const from = s.hub.requests.length;
    const mark = logMark(s.worker);
    const cookie = jar.header(new URL('/hub/', s.worker.url));
    try {
      const t0 = Date.now();
      results = await Promise.all(
        ['/hub/api/user?tab=a', '/hub/api/user?tab=b'].map(async (p) => {
          const r = await send(s.worker, p, null, { headers: { ...API_HEADERS, cookie } });
          r.ms = Date.now() - t0;
          return r;
        }),
      );
    } finally {
      s.idp.setFault('/token', null);
    }
    for (const r of results) {
      assert.equal(r.status, 200, `${r.status} ${r.text}`);
      assert.equal(r.json().hub_user, 'erin');
    }
    assert.deepEqual(
      results.map((r) => r.json().query.tab).sort(),
      ['a', 'b'],
    );
    assert.deepEqual(hubPaths(s.hub, from).sort(), ['GET /hub/api/user', 'GET /hub/api/user'], 'both reached the hub, no hub login');

    assert.equal(s.idp.stats.count('/token') - tokenRequests, 1, 'one request at the token endpoint');
    const answers = refreshes(s, n);
    assert.equal(answers.length, 1, JSON.stringify(s.tokens.slice(n)));
    assert.ok(answers[0].ok);
    const minted = results.map(newSessionCookie);
    assert.equal(minted.filter(Boolean).length, 1, `one response re-mints the cookie: ${results.map((r) => r.setCookies.join(' | ')).join(' || ')}`);
    // they overlapped: the other request did not wait for the refresh (held 600 ms at the provider)
    const refresher = results.find((r) => newSessionCookie(r));
    const other = results.find((r) => !newSessionCookie(r));
    assert.ok(refresher.ms >= 600, `the refreshing request took ${refresher.ms} ms`);
    assert.ok(other.ms < refresher.ms, `the other request (${other.ms} ms) was answered before the refresh landed (${refresher.ms} ms)`);
    t.diagnostic(`refreshing request ${refresher.ms} ms, the other ${other.ms} ms`);
    for (const r of results) {
      assert.ok(!setCookieFor(r.setCookies, SESSION_COOKIE).some(isDeletion), 'no cookie deleted');
    }

    await sleep(200);
    const lines = s.worker.jsonLogs().slice(mark);
    assert.equal(lines.filter((l) => l.event === 'refresh_failed').length, 0, JSON.stringify(lines));
    assert.equal(lines.filter((l) => l.event === 'session_refreshed').length, 1, JSON.stringify(lines));

    // the browser keeps the re-minted cookie; its next request works without another refresh
    jar.store(new URL('/hub/', s.worker.url), [minted.find(Boolean)]);
    const claims = sessionOf(s, jar).claims;
    assert.equal(claims.sid, erin.session.claims.sid);
    assert.ok(claims.prv.rat > erin.session.claims.prv.rat);
    const n2 = s.tokens.length;
    await apiAsUser(s, jar, 'erin');
    assert.deepEqual(refreshes(s, n2), []);
  });
});
