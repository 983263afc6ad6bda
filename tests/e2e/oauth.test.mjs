// OAuth 2.0 / OpenID Connect through the built worker against the real
// oidc-provider: login, session reuse, logout, parallel tabs, AUTO_LOGIN,
// allow/admin rules, IdP refusals. Run:
//   node --test --test-concurrency=1 tests/e2e/oauth.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { cookieJar, follow, oidcLogin, clearIdpSession, DEFAULT_SCRIPT } from './support/worker.mjs';
import { HUB_COOKIES } from './support/hub-echo.mjs';
import {
  startOidcStack,
  httpFetch,
  send,
  trail,
  callbackEntry,
  flowCookies,
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

// A missing build fails loudly (startWorker throws): npm test always builds first.

describe('OIDC login against oidc-provider', () => {
  let s;
  before(async () => {
    s = await startOidcStack();
  });
  after(() => s?.close());

  test('alice logs in: the callback logs her in at the hub by its own subrequest and 302s straight to next with both sessions', async () => {
    const jar = cookieJar();
    const from = s.hub.requests.length;
    const { chain, final, interacted } = await oidcLogin(s.worker, s.idp, 'alice', jar, '/hub/home?tab=1');
    assert.ok(interacted, 'the IdP asked for a username');
    assert.equal(final.status, 200, trail(chain));
    const echo = final.json();
    assert.equal(echo.path, '/hub/home');
    assert.deepEqual(echo.query, { tab: '1' });
    assert.equal(echo.hub_user, 'alice', 'the hub knows alice by the cookies its login set');
    assert.deepEqual(identityHeadersIn(echo.headers), [], 'no identity on the proxied request');

    const cb = callbackEntry(chain);
    assert.ok(cb, trail(chain));
    assert.equal(cb.status, 302);
    assert.equal(cb.location, '/hub/home?tab=1', 'straight to next, not through /hub/login');
    assert.ok(!chain.some((c) => new URL(c.url).pathname === '/hub/login'), trail(chain));
    const [session] = setCookieFor(cb.setCookies, SESSION_COOKIE).filter((c) => !isDeletion(c));
    assert.ok(session, cb.setCookies.join('\n'));
    assert.match(session, /HttpOnly/i);
    assert.match(session, /SameSite=Lax/i);
    assert.match(session, /Path=\//);
    const claims = verifySession(jar.get(SESSION_COOKIE), s.secret);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.iss, 'hubgate');
    assert.equal(claims.aud, s.worker.url);
    assert.equal(claims.method, 'oauth');
    assert.deepEqual(claims.groups, ['students']);
    assert.equal(claims.admin, false);
    // the flow cookie is single-use: cleared by the callback
    assert.deepEqual(flowCookies(jar), []);
    // the worker's own subrequest: identity attached, no browser cookies, next passed on
    const logins = hubLogins(s.hub, from);
    assert.equal(logins.length, 1);
    checkHubLogin(assert, logins[0], { user: 'alice', email: 'alice@example.edu', groups: 'students', admin: false, next: '/hub/home?tab=1' });
    assert.equal(logins[0].headers['x-hubgate-assertion'], undefined, 'no ASSERTION_SIGNING_KEY: header-only login');
    // the hub's three Set-Cookie headers reach the browser apart, in the callback's answer,
    // each after the worker's expiry of the same cookie
    for (const name of HUB_COOKIES) {
      const sets = setCookieFor(cb.setCookies, name).filter((c) => !isDeletion(c));
      assert.equal(sets.length, 1, `${name}: ${cb.setCookies.join(' | ')}`);
      const setAt = cb.setCookies.indexOf(sets[0]);
      for (const d of setCookieFor(cb.setCookies, name).filter(isDeletion)) {
        assert.ok(cb.setCookies.indexOf(d) < setAt, `${name} expired after the hub set it: ${cb.setCookies.join(' | ')}`);
      }
      assert.ok(jar.get(name), `hub cookie ${name} reached the browser`);
    }
    // every other request the hub saw carried no identity
    assert.deepEqual(s.hub.identityCarriers(from).map((r) => r.path), ['/hub/login']);
  });

  test('carol is admin via ADMIN_USERS (x-forwarded-admin true on the hub login)', async () => {
    const jar = cookieJar();
    const from = s.hub.requests.length;
    const { chain, final } = await oidcLogin(s.worker, s.idp, 'carol', jar, '/hub/admin');
    assert.equal(final.status, 200, trail(chain));
    const echo = final.json();
    assert.equal(echo.path, '/hub/admin');
    assert.equal(echo.hub_user, 'carol');
    assert.deepEqual(identityHeadersIn(echo.headers), []);
    checkHubLogin(assert, hubLogins(s.hub, from)[0], { user: 'carol', groups: 'staff', admin: true, next: '/hub/admin' });
    assert.equal(verifySession(jar.get(SESSION_COOKIE), s.secret).admin, true);
  });

  test('session reuse: a second request is proxied (200) without any IdP round trip', async () => {
    const jar = cookieJar();
    const first = await oidcLogin(s.worker, s.idp, 'bob', jar, '/hub/');
    assert.equal(first.final.status, 200, trail(first.chain));
    const before = s.idp.stats.total;
    const again = await follow(httpFetch, `${s.worker.url}/user/bob/lab?x=1`, jar);
    assert.equal(again.length, 1, trail(again));
    assert.equal(again[0].status, 200);
    const echo = again[0].json();
    assert.equal(echo.path, '/user/bob/lab');
    assert.equal(echo.hub_user, 'bob');
    assert.deepEqual(identityHeadersIn(echo.headers), []);
    const logins = hubLogins(s.hub).length;
    const api = await send(s.worker, '/hub/api/user', jar, { headers: API_HEADERS });
    assert.equal(api.status, 200);
    assert.equal(api.json().hub_user, 'bob');
    assert.deepEqual(identityHeadersIn(api.json().headers), []);
    assert.equal(hubLogins(s.hub).length, logins, 'no new hub login on reuse');
    assert.equal(s.idp.stats.total, before, 'no request reached the IdP');
    assert.equal(api.setCookies.length, 0, 'no new session minted on reuse');
  });

  test('a second login in the same browser is silent at the IdP (single sign-on) and starts a new session', async () => {
    const jar = cookieJar();
    const first = await oidcLogin(s.worker, s.idp, 'alice', jar, '/hub/');
    assert.equal(first.final.status, 200, trail(first.chain));
    const sid1 = verifySession(jar.get(SESSION_COOKIE), s.secret).sid;
    const second = await oidcLogin(s.worker, s.idp, 'ignored', jar, '/hub/again');
    assert.equal(second.interacted, false);
    assert.equal(second.final.status, 200, trail(second.chain));
    assert.equal(second.final.json().hub_user, 'alice');
    const sid2 = verifySession(jar.get(SESSION_COOKIE), s.secret).sid;
    assert.notEqual(sid2, sid1, 'a new session id on each login');
    // the callback expired the hub's login cookies and passed on the new ones the hub login set
    const cb = callbackEntry(second.chain);
    for (const name of ['jupyterhub-hub-login', 'jupyterhub-session-id']) {
      assert.ok(setCookieFor(cb.setCookies, name).some(isDeletion), `${name} expired at the callback`);
      assert.ok(setCookieFor(cb.setCookies, name).some((c) => !isDeletion(c)), `${name} set again at the callback`);
    }
    assert.equal(hubLogins(s.hub).at(-1).headers.cookie, undefined, "the old hub session's cookies are not sent to the hub login");
  });

  test("a new login in the same browser expires the previous user's jupyterhub-user-<name> cookie (Path=/user/<name>/)", async () => {
    const jar = cookieJar();
    const first = await oidcLogin(s.worker, s.idp, 'alice', jar, '/user/alice/lab');
    assert.equal(first.final.status, 200, trail(first.chain));
    // what alice's single-user server sets after its OAuth handshake with the hub
    jar.store(`${s.worker.url}/user/alice/oauth_callback`, ['jupyterhub-user-alice=alice-server-token; Path=/user/alice/; HttpOnly; SameSite=Lax']);
    assert.equal(jar.get('jupyterhub-user-alice', `${s.worker.url}/user/alice/lab`), 'alice-server-token');
    clearIdpSession(jar);
    const second = await oidcLogin(s.worker, s.idp, 'bob', jar, '/hub/');
    assert.equal(second.final.status, 200, trail(second.chain));
    const cb = callbackEntry(second.chain);
    assert.equal(cb.status, 302);
    const expiry = setCookieFor(cb.setCookies, 'jupyterhub-user-alice');
    assert.ok(
      expiry.some((c) => isDeletion(c) && /;\s*Path=\/user\/alice\//i.test(c)),
      `bob's browser keeps alice's single-user server cookie; callback Set-Cookie: ${cb.setCookies.join(' | ')}`,
    );
    assert.equal(jar.get('jupyterhub-user-alice', `${s.worker.url}/user/alice/lab`), undefined);
  });

  test('logout: to the provider end_session endpoint (RP-Initiated Logout), session cookie cleared, hub /hub/logout called with the hub cookies and no identity, hub Set-Cookie passed on', async () => {
    const jar = cookieJar();
    const login = await oidcLogin(s.worker, s.idp, 'alice', jar, '/hub/');
    assert.equal(login.final.status, 200, trail(login.chain));
    const sid = verifySession(jar.get(SESSION_COOKIE), s.secret).sid;
    const hubLogin = jar.get('jupyterhub-hub-login', `${s.worker.url}/hub/`);
    assert.equal(s.hub.sessionUser(hubLogin), 'alice');
    const hubLogoutsBefore = s.hub.requestsTo('/hub/logout').length;

    const out = await send(s.worker, '/hub/logout', jar, { headers: NAV_HEADERS });
    // The IdP has an end_session_endpoint: the logout ends there too; the
    // hub's redirect to /hub/login is never passed on.
    assert.equal(out.status, 302, out.text);
    const end = new URL(out.location);
    assert.equal(`${end.origin}${end.pathname}`, `${s.idp.issuer}/session/end`);
    assert.ok(end.searchParams.get('id_token_hint'), 'id_token_hint');
    assert.equal(end.searchParams.get('post_logout_redirect_uri'), `${s.worker.url}/_hubgate/signed_out`);

    // both variants of the session cookie (top level SameSite=Lax, LMS frame
    // SameSite=None; Secure; Partitioned), on http loopback as on https
    const cleared = setCookieFor(out.setCookies, SESSION_COOKIE);
    assert.equal(cleared.length, 2, out.setCookies.join('\n'));
    assert.ok(cleared.every(isDeletion), cleared.join('\n'));
    assert.equal(jar.get(SESSION_COOKIE), undefined);
    // the hub's own Set-Cookie headers arrive separately, once as the hub
    // sent them and once for an LMS frame's partition; the worker expires
    // _xsrf in both variants too (the hub binds it to its session)
    const xsrf = setCookieFor(out.setCookies, '_xsrf');
    assert.equal(xsrf.length, 4, out.setCookies.join('\n'));
    assert.ok(xsrf.every(isDeletion));
    assert.equal(xsrf.filter((c) => /Partitioned/.test(c)).length, 2);
    assert.ok(xsrf.some((c) => /Expires=Thu, 01 Jan 1970/.test(c) && !/SameSite/.test(c)), "the hub's own deletion is passed on as it sent it");
    for (const c of out.setCookies) assert.equal(c.split(/=/)[0].includes(','), false, `folded Set-Cookie: ${c}`);
    for (const name of HUB_COOKIES) assert.equal(jar.get(name), undefined, `${name} cleared`);

    const calls = s.hub.requestsTo('/hub/logout');
    assert.equal(calls.length, hubLogoutsBefore + 1);
    const call = calls.at(-1);
    assert.equal(call.method, 'GET');
    assert.deepEqual(identityHeadersIn(call.headers), [], 'no identity on the hub logout');
    assert.ok(!/(^|;\s*)hubgate=/.test(call.headers.cookie ?? ''), 'session cookie not sent to the hub');
    assert.match(call.headers.cookie ?? '', /(^|;\s*)jupyterhub-session-id=/, "the hub's own cookies reach its logout");
    assert.ok(sid);
    assert.equal(s.hub.sessionUser(hubLogin), undefined, 'the hub ended its session');

    // signed out: a navigation goes to the login page again
    const after = await send(s.worker, '/hub/home', jar, { headers: NAV_HEADERS });
    assert.equal(after.status, 302);
    assert.equal(after.location, `/hub/login?next=${encodeURIComponent('/hub/home')}`);
  });

  test('logout by POST without a session: 200 signed-out page, session cookie cleared', async () => {
    const out = await send(s.worker, '/hub/logout', cookieJar(), { method: 'POST', headers: NAV_HEADERS });
    assert.equal(out.status, 200, out.text);
    assert.equal(out.location, null);
    assert.ok(setCookieFor(out.setCookies, SESSION_COOKIE).every(isDeletion));
    assert.equal(setCookieFor(out.setCookies, SESSION_COOKIE).length, 2, 'both variants');
    const call = s.hub.requestsTo('/hub/logout').at(-1);
    assert.equal(call.headers['x-forwarded-user'], undefined, 'no identity without a session');
  });

  test('parallel tabs: two concurrent login flows in one jar both complete at their own next', async () => {
    const jar = cookieJar();
    clearIdpSession(jar);
    const isInteraction = (u) => u.origin === s.idp.issuer && u.pathname.startsWith('/interaction/');
    const start = (next) =>
      follow(httpFetch, `${s.worker.url}/hub/oauth_login?next=${encodeURIComponent(next)}`, jar, { stopAt: isInteraction });
    const [a, b] = await Promise.all([start('/hub/tab-a'), start('/hub/tab-b')]);
    assert.equal(a[0].status, 302);
    assert.equal(b[0].status, 302);
    const flows = flowCookies(jar);
    assert.equal(flows.length, 2, `two flow cookies side by side: ${jar.names().join(', ')}`);
    const finish = (chain) =>
      follow(httpFetch, new URL(chain.at(-1).location, chain.at(-1).url), jar, {
        method: 'POST',
        body: new URLSearchParams({ username: 'alice' }).toString(),
        max: 15,
      });
    const [ra, rb] = await Promise.all([finish(a), finish(b)]);
    assert.equal(ra.at(-1).status, 200, trail(ra));
    assert.equal(rb.at(-1).status, 200, trail(rb));
    assert.equal(ra.at(-1).json().path, '/hub/tab-a');
    assert.equal(rb.at(-1).json().path, '/hub/tab-b');
    assert.equal(callbackEntry(ra).status, 302);
    assert.equal(callbackEntry(rb).status, 302);
    assert.deepEqual(flowCookies(jar), [], 'both flow cookies cleared');
  });

  test('ALLOWED_USERS: mallory is refused with 403 and the hub never sees a request for her', async () => {
    const jar = cookieJar();
    const hubBefore = s.hub.requests.length;
    const { chain, final } = await oidcLogin(s.worker, s.idp, 'mallory', jar, '/hub/');
    assert.equal(final.status, 403, trail(chain));
    assert.equal(new URL(final.url).pathname, '/hub/oauth_callback');
    assert.doesNotMatch(final.text, /mallory/, 'the page is generic');
    assert.equal(jar.get(SESSION_COOKIE), undefined, 'no session for mallory');
    assert.deepEqual(setCookieFor(final.setCookies, SESSION_COOKIE), []);
    const seen = s.hub.requests.slice(hubBefore);
    assert.deepEqual(seen.filter((r) => JSON.stringify(r.headers).includes('mallory')), []);
    assert.deepEqual(seen, [], 'no request reached the hub at all');
    const line = await waitForLog(s.worker, (l) => l.event === 'error' && l.kind === 'session_start' && l.path === '/hub/oauth_callback' && /mallory/.test(l.detail));
    assert.ok(line, 'the refusal is logged with the detail');
    assert.equal(line.status, '403');
  });

  test('IdP access_denied (user clicks Deny at oidc-provider) → 403, no session', async () => {
    const jar = cookieJar();
    const isInteraction = (u) => u.origin === s.idp.issuer && u.pathname.startsWith('/interaction/');
    const first = await follow(httpFetch, `${s.worker.url}/hub/oauth_login?next=%2Fhub%2F`, jar, { stopAt: isInteraction });
    const iu = new URL(first.at(-1).location, first.at(-1).url);
    const rest = await follow(httpFetch, iu, jar, { method: 'POST', body: 'action=deny' });
    const cb = callbackEntry(rest);
    assert.ok(cb, trail(rest));
    assert.equal(new URL(cb.url).searchParams.get('error'), 'access_denied');
    assert.equal(cb.status, 403);
    assert.equal(rest.at(-1), cb);
    assert.equal(jar.get(SESSION_COOKIE), undefined);
  });

  test('token endpoint answering 500 → 502 at the callback', async () => {
    const jar = cookieJar();
    s.idp.setFault('/token', { status: 500 });
    try {
      const { chain, final } = await oidcLogin(s.worker, s.idp, 'alice', jar, '/hub/');
      assert.equal(callbackEntry(chain)?.status, 502, trail(chain));
      assert.equal(final.status, 502);
      assert.equal(jar.get(SESSION_COOKIE), undefined);
    } finally {
      s.idp.setFault('/token', null);
    }
  });

  test('token endpoint answering 400 invalid_grant → 401 at the callback', async () => {
    const jar = cookieJar();
    s.idp.setFault('/token', { status: 400, body: JSON.stringify({ error: 'invalid_grant' }) });
    try {
      const { chain, final } = await oidcLogin(s.worker, s.idp, 'alice', jar, '/hub/');
      assert.equal(callbackEntry(chain)?.status, 401, trail(chain));
      assert.equal(final.status, 401);
    } finally {
      s.idp.setFault('/token', null);
    }
  });

  test('/hub/login without a session: 200 login page with the LOGIN_SERVICE button and next kept', async () => {
    const r = await send(s.worker, `/hub/login?next=${encodeURIComponent('/user/alice/lab')}`, cookieJar(), { headers: NAV_HEADERS });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /text\/html/);
    assert.ok(r.text.includes(`/hub/oauth_login?next=${encodeURIComponent('/user/alice/lab')}`), r.text);
    assert.match(r.text, /Sign in with OAuth 2\.0/);
  });

  test('/hub/login drops an unsafe next from the login link', async () => {
    const r = await send(s.worker, `/hub/login?next=${encodeURIComponent('//evil.example/')}`, cookieJar(), { headers: NAV_HEADERS });
    assert.equal(r.status, 200);
    assert.ok(!r.text.includes('evil.example'), r.text);
  });

  test('login → authorize request carries PKCE S256, state, nonce, the registered redirect_uri and openid scope', async () => {
    const r = await send(s.worker, '/hub/oauth_login?next=%2Fhub%2F', cookieJar(), { headers: NAV_HEADERS });
    assert.equal(r.status, 302);
    const u = new URL(r.location);
    assert.equal(u.origin, s.idp.issuer);
    const q = u.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), 'hubgate-demo');
    assert.equal(q.get('redirect_uri'), `${s.worker.url}/hub/oauth_callback`);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
    assert.ok(q.get('state')?.length >= 32);
    assert.ok(q.get('nonce')?.length >= 32);
    assert.ok(q.get('scope').split(' ').includes('openid'));
    const flow = setCookieFor(r.setCookies, `hubgate-oauth-${q.get('state').slice(0, 16)}`);
    assert.equal(flow.length, 1, r.setCookies.join('\n'));
    assert.match(flow[0], /HttpOnly/i);
  });
});

describe('OIDC worker variants (AUTO_LOGIN, OAUTH_LOGOUT_REDIRECT_URL)', () => {
  let s;
  let auto;
  let redirecting;
  const LOGOUT_TO = 'https://www.example.edu/signed-out';
  before(async () => {
    s = await startOidcStack();
    auto = await s.addWorker({ AUTO_LOGIN: 'true' });
    redirecting = await s.addWorker({ OAUTH_LOGOUT_REDIRECT_URL: LOGOUT_TO });
  });
  after(() => s?.close());

  test('AUTO_LOGIN: /hub/login goes straight on to the IdP (302 → /hub/oauth_login → 302 authorize)', async () => {
    const jar = cookieJar();
    const chain = await follow(httpFetch, `${auto.url}/hub/login?next=${encodeURIComponent('/user/alice/')}`, jar, {
      stopAt: (u) => u.origin === s.idp.issuer,
    });
    assert.equal(chain[0].status, 302, trail(chain));
    assert.equal(chain[0].location, `/hub/oauth_login?next=${encodeURIComponent('/user/alice/')}`);
    const last = chain.at(-1);
    assert.equal(last.status, 302);
    assert.equal(new URL(last.location).origin, s.idp.issuer);
    assert.equal(new URL(last.location).pathname, '/auth');
    assert.equal(chain.length, 2, 'no login page in between');
  });

  test('AUTO_LOGIN: an unauthenticated navigation ends at the hub as alice after one IdP sign-in', async () => {
    const jar = cookieJar();
    const isInteraction = (u) => u.origin === s.idp.issuer && u.pathname.startsWith('/interaction/');
    const first = await follow(httpFetch, `${auto.url}/user/alice/tree`, jar, { stopAt: isInteraction });
    assert.equal(first[0].status, 302);
    assert.equal(first[0].location, `/hub/login?next=${encodeURIComponent('/user/alice/tree')}`);
    const last = first.at(-1);
    const rest = await follow(httpFetch, new URL(last.location, last.url), jar, { method: 'POST', body: 'username=alice', max: 15 });
    assert.equal(rest.at(-1).status, 200, trail(rest));
    assert.equal(rest.at(-1).json().path, '/user/alice/tree');
    assert.equal(rest.at(-1).json().hub_user, 'alice');
    assert.equal(rest.at(-1).json().headers['x-forwarded-user'], undefined);
  });

  test('OAUTH_LOGOUT_REDIRECT_URL: logout answers 302 to it, clears the session and still calls the hub', async () => {
    const jar = cookieJar();
    const login = await oidcLogin(redirecting, s.idp, 'bob', jar, '/hub/');
    assert.equal(login.final.status, 200, trail(login.chain));
    const calls = s.hub.requestsTo('/hub/logout').length;
    const out = await send(redirecting, '/hub/logout', jar, { headers: NAV_HEADERS });
    assert.equal(out.status, 302, out.text);
    assert.equal(out.location, LOGOUT_TO);
    assert.ok(setCookieFor(out.setCookies, SESSION_COOKIE).every(isDeletion));
    assert.equal(setCookieFor(out.setCookies, SESSION_COOKIE).length, 2, 'both variants');
    assert.equal(jar.get(SESSION_COOKIE), undefined);
    assert.equal(setCookieFor(out.setCookies, '_xsrf').length, 4, "the hub's Set-Cookie is passed on (and for the frame), beside the worker's own expiry");
    assert.equal(s.hub.requestsTo('/hub/logout').length, calls + 1);
    const call = s.hub.requestsTo('/hub/logout').at(-1);
    assert.deepEqual(identityHeadersIn(call.headers), [], 'no identity on the hub logout');
    assert.match(call.headers.cookie ?? '', /(^|;\s*)jupyterhub-session-id=/);
  });

  test('logout with AUTO_LOGIN never redirects to /hub/login (which would sign back in): it ends at the provider, whose logout returns to the signed-out page', async () => {
    const jar = cookieJar();
    const login = await oidcLogin(auto, s.idp, 'alice', jar, '/hub/');
    assert.equal(login.final.status, 200, trail(login.chain));
    const out = await send(auto, '/hub/logout', jar, { headers: NAV_HEADERS });
    assert.equal(out.status, 302);
    assert.ok(out.location.startsWith(`${s.idp.issuer}/session/end?`), out.location);
    assert.ok(!out.location.includes('/hub/login'));
    const back = await send(auto, '/_hubgate/signed_out', jar, { headers: NAV_HEADERS });
    assert.equal(back.status, 200);
    assert.match(back.text, /signed out/i);
  });

  test('a session from one worker origin is not accepted by another (aud = origin): 401 for API', async () => {
    const jar = cookieJar();
    const login = await oidcLogin(s.worker, s.idp, 'alice', jar, '/hub/');
    assert.equal(login.final.status, 200, trail(login.chain));
    const token = jar.get(SESSION_COOKIE);
    const mark = logMark(auto);
    const r = await send(auto, '/hub/api/user', null, { headers: { ...API_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
    assert.equal(r.status, 401);
    assert.ok(await waitForLog(auto, (l) => l.event === 'session_rejected' && /another origin/.test(l.detail), { from: mark }));
  });
});
