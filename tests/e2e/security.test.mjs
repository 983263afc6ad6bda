// The bad-input battery through the built worker: state and flow cookies,
// forged/expired/rotated session cookies, forged id_tokens and token
// responses (rogue IdP), JWKS key selection, open redirects, smuggled
// identity headers, the worker's cookies at the hub, oversized input and a
// misconfigured worker. Every case asserts the exact status. Run:
//   node --test --test-concurrency=1 tests/e2e/security.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { jwtVerify, createLocalJWKSet } from 'jose';

import { cookieJar, oidcLogin, openWebSocket, DEFAULT_SCRIPT, startWorker } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import {
  startRogueStack,
  assertionKey,
  randomSecret,
  mintSession,
  verifySession,
  derivedKey,
  signHs256,
  tamperSignature,
  tamperPayload,
  loginUntilCallback,
  flowCookies,
  send,
  trail,
  callbackEntry,
  setCookieFor,
  waitForLog,
  logMark,
  correlationId,
  hubLogins,
  checkHubLogin,
  identityHeadersIn,
  isDeletion,
  SESSION_COOKIE,
  NAV_HEADERS,
  API_HEADERS,
} from './support/oauth-helpers.mjs';

// A missing build fails loudly (startWorker throws): npm test always builds first.
const now = () => Math.floor(Date.now() / 1000);

/** Request `url` (absolute, at the worker) with the jar: one hop, no following. */
const hit = (worker, url, jar, headers = NAV_HEADERS) => send(worker, `${url.pathname}${url.search}`, jar, { headers });

// ---------------------------------------------------------------------------

describe('OAuth state and the per-flow cookie', () => {
  let s;
  before(async () => {
    s = await startRogueStack();
  });
  after(() => s?.close());

  const tokenRequests = () => s.rogue.stats.token.length;

  test('control: the untouched callback completes (302 straight to next, after the hub login)', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar, '/hub/ok');
    const from = s.hub.requests.length;
    const r = await hit(s.worker, callbackUrl, jar);
    assert.equal(r.status, 302, r.text);
    assert.equal(r.location, '/hub/ok');
    assert.ok(jar.get(SESSION_COOKIE));
    checkHubLogin(assert, hubLogins(s.hub, from)[0], { user: 'alice', next: '/hub/ok' });
  });

  test('missing state → 400, the code is never redeemed', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    callbackUrl.searchParams.delete('state');
    const before = tokenRequests();
    const r = await hit(s.worker, callbackUrl, jar);
    assert.equal(r.status, 400);
    assert.equal(tokenRequests(), before);
    assert.equal(jar.get(SESSION_COOKIE), undefined);
  });

  test('empty state → 400', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    callbackUrl.searchParams.set('state', '');
    const r = await hit(s.worker, callbackUrl, jar);
    assert.equal(r.status, 400);
  });

  test('mismatched state (same cookie prefix, different tail) → 400, the code is never redeemed', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    const state = callbackUrl.searchParams.get('state');
    const flipped = `${state.slice(0, -1)}${state.at(-1) === 'A' ? 'B' : 'A'}`;
    callbackUrl.searchParams.set('state', flipped);
    const before = tokenRequests();
    const r = await hit(s.worker, callbackUrl, jar);
    assert.equal(r.status, 400);
    assert.equal(tokenRequests(), before);
    assert.equal(jar.get(SESSION_COOKIE), undefined);
    const line = await waitForLog(s.worker, (l) => l.kind === 'oauth' && l.path === '/hub/oauth_callback' && /does not match/.test(l.detail ?? ''));
    assert.ok(line, 'logged as a state mismatch');
  });

  test('error=access_denied without a state → 400 (the state is checked before anything else)', async () => {
    const r = await send(s.worker, '/hub/oauth_callback?error=access_denied', cookieJar(), { headers: NAV_HEADERS });
    assert.equal(r.status, 400);
  });

  test('state from another flow (no flow cookie for it) → 400', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    callbackUrl.searchParams.set('state', crypto.randomBytes(32).toString('base64url'));
    const r = await hit(s.worker, callbackUrl, jar);
    assert.equal(r.status, 400);
  });

  test('callback in another browser (no flow cookie at all, login CSRF) → 400', async () => {
    const { callbackUrl } = await loginUntilCallback(s.worker, cookieJar());
    const before = tokenRequests();
    const r = await hit(s.worker, callbackUrl, cookieJar());
    assert.equal(r.status, 400);
    assert.equal(tokenRequests(), before);
  });

  test('replayed callback in the same browser (flow cookie already cleared) → 400', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    const first = await hit(s.worker, callbackUrl, jar);
    assert.equal(first.status, 302);
    assert.deepEqual(flowCookies(jar), []);
    const again = await hit(s.worker, callbackUrl, cookieJar());
    assert.equal(again.status, 400);
  });

  test('replayed callback with the flow cookie restored (stolen cookie + URL) → 400, state already used', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    const [name] = flowCookies(jar);
    const value = jar.get(name);
    const first = await hit(s.worker, callbackUrl, jar);
    assert.equal(first.status, 302);
    const before = tokenRequests();
    const replay = await send(s.worker, `${callbackUrl.pathname}${callbackUrl.search}`, null, {
      headers: { ...NAV_HEADERS, cookie: `${name}=${value}` },
    });
    assert.equal(replay.status, 400);
    assert.equal(tokenRequests(), before, 'the replayed code is not sent to the IdP');
    assert.deepEqual(setCookieFor(replay.setCookies, SESSION_COOKIE), []);
  });

  test('tampered flow cookie (signature byte changed) → 400', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    const [name] = flowCookies(jar);
    jar.set(s.worker.url, name, tamperSignature(jar.get(name)));
    const before = tokenRequests();
    const r = await hit(s.worker, callbackUrl, jar);
    assert.equal(r.status, 400);
    assert.equal(tokenRequests(), before);
  });

  test('tampered flow cookie (payload next rewritten to //evil.example, signature kept) → 400', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    const [name] = flowCookies(jar);
    jar.set(s.worker.url, name, tamperPayload(jar.get(name), (c) => ({ ...c, next: '//evil.example/' })));
    const r = await hit(s.worker, callbackUrl, jar);
    assert.equal(r.status, 400);
  });

  test('forged flow cookie signed with another secret → 400', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    const [name] = flowCookies(jar);
    const [, payload] = jar.get(name).split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    jar.set(s.worker.url, name, signHs256({ alg: 'HS256', typ: 'hubgate-flow+jwt' }, claims, derivedKey(randomSecret(), 'flow')));
    const r = await hit(s.worker, callbackUrl, jar);
    assert.equal(r.status, 400);
  });

  test('a session token presented as the flow cookie → 400 (purpose-separated keys and typ)', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar);
    const [name] = flowCookies(jar);
    jar.set(s.worker.url, name, mintSession({ secret: s.secret, origin: s.worker.url }));
    const r = await hit(s.worker, callbackUrl, jar);
    assert.equal(r.status, 400);
  });
});

// ---------------------------------------------------------------------------

describe('session cookie', () => {
  let s;
  let rotated;
  const oldSecret = randomSecret();
  before(async () => {
    s = await startRogueStack();
    rotated = await s.addWorker({ SESSION_SECRET_PREVIOUS: oldSecret });
  });
  after(() => s?.close());

  /** Navigation and API request with `token` as the session cookie on `worker`. */
  async function both(worker, token) {
    const cookie = `${SESSION_COOKIE}=${token}`;
    const before = s.hub.requests.length;
    const nav = await send(worker, '/user/alice/lab?x=1', null, { headers: { ...NAV_HEADERS, cookie } });
    const api = await send(worker, '/hub/api/user', null, { headers: { ...API_HEADERS, cookie } });
    return { nav, api, hubRequests: s.hub.requests.length - before };
  }
  const refused = (r) => {
    assert.equal(r.nav.status, 302, r.nav.text);
    assert.equal(r.nav.location, `/hub/login?next=${encodeURIComponent('/user/alice/lab?x=1')}`);
    assert.equal(r.api.status, 401, r.api.text);
    assert.equal(r.hubRequests, 0, 'nothing reached the hub');
  };

  test('control: a session minted the way the worker mints it is accepted (200 proxied; /hub/login hands its sub to the hub, 302)', async () => {
    const token = mintSession({ secret: s.secret, origin: s.worker.url, sub: 'alice', groups: ['students'], email: 'alice@example.edu' });
    const r = await send(s.worker, '/hub/api/user', null, { headers: { ...API_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(identityHeadersIn(r.json().headers), []);
    const from = s.hub.requests.length;
    const h = await send(s.worker, '/hub/login', null, { headers: { ...NAV_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
    assert.equal(h.status, 302, h.text);
    assert.equal(h.location, '/hub/');
    checkHubLogin(assert, hubLogins(s.hub, from)[0], { user: 'alice', email: 'alice@example.edu', groups: 'students', next: '/hub/' });
  });

  test('two session cookies in one browser: the newest valid one wins (at /hub/login the hub gets its user)', async () => {
    const older = mintSession({ secret: s.secret, origin: s.worker.url, sub: 'alice', iat: now() - 600 });
    const newer = mintSession({ secret: s.secret, origin: s.worker.url, sub: 'bob', iat: now() - 5 });
    for (const cookie of [`${SESSION_COOKIE}=${older}; ${SESSION_COOKIE}=${newer}`, `${SESSION_COOKIE}=${newer}; ${SESSION_COOKIE}=${older}`]) {
      const from = s.hub.requests.length;
      const r = await send(s.worker, '/hub/login', null, { headers: { ...NAV_HEADERS, cookie } });
      assert.equal(r.status, 302, r.text);
      checkHubLogin(assert, hubLogins(s.hub, from)[0], { user: 'bob' });
    }
    // a newer but invalid one does not shadow a valid one
    const forgedSig = tamperSignature(mintSession({ secret: s.secret, origin: s.worker.url, sub: 'mallory', iat: now() }));
    const from = s.hub.requests.length;
    const r = await send(s.worker, '/hub/login', null, { headers: { ...NAV_HEADERS, cookie: `${SESSION_COOKIE}=${forgedSig}; ${SESSION_COOKIE}=${older}` } });
    assert.equal(r.status, 302, r.text);
    checkHubLogin(assert, hubLogins(s.hub, from)[0], { user: 'alice' });
  });

  test('tampered session cookie (signature) → navigation 302 to login, API 401; logged as session_rejected', async () => {
    const jar = cookieJar();
    const { final, chain } = await oidcLogin(s.worker, s.rogue, 'alice', jar, '/hub/');
    assert.equal(final.status, 200, trail(chain));
    const mark = logMark(s.worker);
    refused(await both(s.worker, tamperSignature(jar.get(SESSION_COOKIE))));
    const line = await waitForLog(s.worker, (l) => l.event === 'session_rejected' && /signature/.test(l.detail), { from: mark });
    assert.ok(line, 'logged as session_rejected (signature)');
  });

  test('tampered session cookie (payload sub → admin, admin → true, signature kept) → 302 / 401', async () => {
    const token = mintSession({ secret: s.secret, origin: s.worker.url, sub: 'alice' });
    refused(await both(s.worker, tamperPayload(token, (c) => ({ ...c, sub: 'admin', admin: true }))));
  });

  test('expired session cookie (validly signed, exp in the past) → 302 / 401', async () => {
    const token = mintSession({ secret: s.secret, origin: s.worker.url, sub: 'alice', iat: now() - 7200, exp: now() - 60 });
    const mark = logMark(s.worker);
    refused(await both(s.worker, token));
    // (log lines arrive asynchronously: match on the detail, not on the first line after the mark)
    const line = await waitForLog(s.worker, (l) => l.event === 'session_rejected' && /expired/.test(l.detail), { from: mark });
    assert.ok(line, 'logged as session_rejected (expired)');
  });

  test('session cookie signed with an unknown secret → 302 / 401', async () => {
    refused(await both(s.worker, mintSession({ secret: randomSecret(), origin: s.worker.url })));
  });

  test('session cookie for another origin (aud) → 302 / 401', async () => {
    refused(await both(s.worker, mintSession({ secret: s.secret, origin: 'http://127.0.0.1:1' })));
  });

  test('session cookie with another iss → 302 / 401', async () => {
    refused(await both(s.worker, mintSession({ secret: s.secret, origin: s.worker.url, iss: 'not-hubgate' })));
  });

  test('session cookie with the flow typ → 302 / 401', async () => {
    refused(await both(s.worker, mintSession({ secret: s.secret, origin: s.worker.url, typ: 'hubgate-flow+jwt' })));
  });

  test('session cookie signed with the flow-purpose key → 302 / 401', async () => {
    const claims = { iss: 'hubgate', aud: s.worker.url, sub: 'alice', method: 'oauth', groups: [], admin: false, sid: 'x'.repeat(22), iat: now(), exp: now() + 600 };
    refused(await both(s.worker, signHs256({ alg: 'HS256', typ: 'hubgate-session+jwt' }, claims, derivedKey(s.secret, 'flow'))));
  });

  test('session cookie with alg none → 302 / 401', async () => {
    const token = mintSession({ secret: s.secret, origin: s.worker.url, sub: 'admin', admin: true });
    const [, payload] = token.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'hubgate-session+jwt' })).toString('base64url')}.${payload}.`;
    refused(await both(s.worker, none));
  });

  test('session cookie keyed with the raw SESSION_SECRET instead of the derived key → 302 / 401', async () => {
    const claims = { iss: 'hubgate', aud: s.worker.url, sub: 'alice', method: 'oauth', groups: [], admin: false, sid: 'y'.repeat(22), iat: now(), exp: now() + 600 };
    refused(await both(s.worker, signHs256({ alg: 'HS256', typ: 'hubgate-session+jwt' }, claims, Buffer.from(s.secret))));
  });

  test('session cookie without exp → 302 / 401', async () => {
    const claims = { iss: 'hubgate', aud: s.worker.url, sub: 'alice', method: 'oauth', groups: [], admin: false, sid: 'z'.repeat(22), iat: now() };
    refused(await both(s.worker, signHs256({ alg: 'HS256', typ: 'hubgate-session+jwt' }, claims, derivedKey(s.secret, 'session'))));
  });

  test('session cookie issued an hour in the future → 302 / 401', async () => {
    refused(await both(s.worker, mintSession({ secret: s.secret, origin: s.worker.url, iat: now() + 3600, exp: now() + 7200 })));
  });

  test('garbage session cookie → 302 / 401', async () => {
    refused(await both(s.worker, 'not.a.jwt'));
  });

  test('session signed with SESSION_SECRET_PREVIOUS is accepted (200) and re-minted with the current key, same sid and expiry', async () => {
    const exp = now() + 1800;
    const sid = crypto.randomBytes(16).toString('base64url');
    const token = mintSession({ secret: oldSecret, origin: rotated.url, sub: 'bob', groups: ['students'], sid, exp, iat: now() - 600 });
    const r = await send(rotated, '/hub/api/user', null, { headers: { ...API_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(identityHeadersIn(r.json().headers), []);
    const [fresh] = setCookieFor(r.setCookies, SESSION_COOKIE);
    assert.ok(fresh, `no re-minted session in ${r.setCookies.join(' | ')}`);
    assert.match(fresh, /HttpOnly/i);
    const value = fresh.slice(SESSION_COOKIE.length + 1).split(';')[0];
    const claims = verifySession(value, s.secret);
    assert.throws(() => verifySession(value, oldSecret));
    assert.equal(claims.sub, 'bob');
    assert.equal(claims.sid, sid);
    assert.ok(Math.abs(claims.exp - exp) <= 1, `expiry kept (${claims.exp} vs ${exp}): rotation must not extend a session`);
    // the re-minted cookie works and is not re-minted again
    const again = await send(rotated, '/hub/api/user', null, { headers: { ...API_HEADERS, cookie: `${SESSION_COOKIE}=${value}` } });
    assert.equal(again.status, 200);
    assert.deepEqual(setCookieFor(again.setCookies, SESSION_COOKIE), []);
    // and it is bob's: the hub login gets bob
    const from = s.hub.requests.length;
    const h = await send(rotated, '/hub/login', null, { headers: { ...NAV_HEADERS, cookie: `${SESSION_COOKIE}=${value}` } });
    assert.equal(h.status, 302, h.text);
    checkHubLogin(assert, hubLogins(s.hub, from)[0], { user: 'bob', groups: 'students' });
  });

  test('a session signed with the previous secret is refused by a worker without SESSION_SECRET_PREVIOUS → 302 / 401', async () => {
    refused(await both(s.worker, mintSession({ secret: oldSecret, origin: s.worker.url })));
  });
});

// ---------------------------------------------------------------------------

describe('id_token and token response checks (rogue IdP)', () => {
  let s;
  before(async () => {
    s = await startRogueStack();
  });
  after(() => {
    s?.rogue.setScenario('good');
    return s?.close();
  });

  async function callbackStatus(scenario) {
    s.rogue.setScenario(scenario);
    const jar = cookieJar();
    const hubBefore = s.hub.requests.length;
    const tokensBefore = s.rogue.stats.token.length;
    const mark = logMark(s.worker);
    const { chain, final } = await oidcLogin(s.worker, s.rogue, 'alice', jar, '/hub/');
    const cb = callbackEntry(chain);
    assert.ok(cb, trail(chain));
    return { cb, final, jar, chain, mark, hubRequests: s.hub.requests.length - hubBefore, tokenRequests: s.rogue.stats.token.length - tokensBefore };
  }

  async function expectRefused(scenario, status, detail) {
    const r = await callbackStatus(scenario);
    assert.equal(r.cb.status, status, `${scenario}: ${r.cb.text}\n${trail(r.chain)}`);
    assert.equal(r.final, r.cb, 'the error page is the end of the chain');
    assert.deepEqual(setCookieFor(r.cb.setCookies, SESSION_COOKIE), [], 'no session');
    assert.equal(r.jar.get(SESSION_COOKIE), undefined);
    assert.equal(r.hubRequests, 0, 'the hub never sees the request');
    assert.doesNotMatch(r.cb.text, /alice|sub-alice/, 'no detail in the page');
    const id = correlationId(r.cb.text);
    assert.ok(id, 'the error page carries a correlation id');
    const line = await waitForLog(s.worker, (l) => l.correlation_id === id, { from: r.mark });
    assert.ok(line, 'the failure is logged under the correlation id of the page');
    assert.equal(line.kind, 'oauth');
    assert.equal(line.path, '/hub/oauth_callback');
    assert.equal(line.status, String(status));
    if (detail) assert.match(line.detail, detail);
    return r;
  }

  test('control (good): the rogue IdP login completes, 200 at the hub as alice', async () => {
    const r = await callbackStatus('good');
    assert.equal(r.cb.status, 302);
    assert.equal(r.final.status, 200, trail(r.chain));
    assert.equal(r.final.json().hub_user, 'alice');
    assert.equal(r.hubRequests, 2, 'the hub login and the proxied page');
    // PKCE: the worker sent an S256 challenge and the matching verifier
    const auth = s.rogue.stats.authorize.at(-1);
    assert.equal(auth.code_challenge_method, 'S256');
    const verifier = s.rogue.stats.token.at(-1).params.code_verifier;
    assert.equal(crypto.createHash('sha256').update(verifier).digest('base64url'), auth.code_challenge);
  });

  test('wrong aud in the id_token → 401', () => expectRefused('wrong-aud', 401));
  test('aud with several audiences and no azp → 401', () => expectRefused('multi-aud-no-azp', 401));
  test('azp naming another client → 401', () => expectRefused('wrong-azp', 401));
  test('wrong iss in the id_token → 401', () => expectRefused('wrong-iss', 401));
  test('wrong nonce in the id_token → 401', () => expectRefused('wrong-nonce', 401));
  test('missing nonce in the id_token → 401', () => expectRefused('missing-nonce', 401));
  test('alg none id_token → 401', () => expectRefused('alg-none', 401));
  test('HS256 algorithm confusion (HMAC keyed with the RSA public key PEM) → 401', () => expectRefused('hs256-confusion', 401));
  test('HS256 keyed with the client secret → 401', () => expectRefused('hs256-client-secret', 401));
  test('bad RS256 signature → 401', () => expectRefused('bad-signature', 401));
  test('expired id_token → 401', () => expectRefused('expired', 401));
  test('id_token issued an hour in the future → 401', () => expectRefused('iat-future', 401));
  test('id_token without sub → 401', () => expectRefused('missing-sub', 401));
  test('token endpoint error field on HTTP 200 → 401', () => expectRefused('error-200', 401, /invalid_grant/));
  test('token endpoint 500 → 502', () => expectRefused('token-500', 502));
  test('token response without id_token (OIDC) → 401', () => expectRefused('no-id-token', 401));
  test('token endpoint answering 200 text/html → 502', () => expectRefused('token-not-json', 502));
  test('userinfo sub differs from the id_token sub → 401', () => expectRefused('userinfo-sub-mismatch', 401));
  test('userinfo 500 → 502', () => expectRefused('userinfo-500', 502));

  test('IdP access_denied at authorize → 403, the token endpoint is never called', async () => {
    const r = await expectRefused('authorize-error', 403);
    assert.equal(r.tokenRequests, 0);
  });

  test('RFC 9207 iss parameter naming another issuer (mix-up) → 401, the code is never redeemed', async () => {
    const r = await expectRefused('wrong-auth-iss', 401, /RFC 9207/);
    assert.equal(r.tokenRequests, 0);
  });
});

// ---------------------------------------------------------------------------

describe('IdP key set and discovery (rogue IdP)', () => {
  let s;
  before(async () => {
    s = await startRogueStack();
  });
  after(() => {
    s?.rogue.setScenario('good');
    return s?.close();
  });

  const jwksFetches = () => s.rogue.stats.count('/jwks');
  async function login(worker, scenario) {
    s.rogue.setScenario(scenario);
    const { chain } = await oidcLogin(worker, s.rogue, 'alice', cookieJar(), '/hub/');
    return callbackEntry(chain) ?? chain.at(-1);
  }

  test('unknown kid → 401 with exactly one JWKS refetch; a second one within 30 s → 401 with none', async () => {
    const w = await s.addWorker();
    assert.equal((await login(w, 'good')).status, 302);
    const filled = jwksFetches();
    assert.equal((await login(w, 'good')).status, 302);
    assert.equal(jwksFetches(), filled, 'a known kid is served from the cache');
    const cb = await login(w, 'unknown-kid');
    assert.equal(cb.status, 401);
    assert.equal(jwksFetches(), filled + 1, 'exactly one refetch for the unknown kid');
    const again = await login(w, 'unknown-kid');
    assert.equal(again.status, 401);
    assert.equal(jwksFetches(), filled + 1, 'no second refetch inside the cooldown');
    assert.equal((await login(w, 'good')).status, 302, 'the known key still works');
  });

  test('a key rotated right after the first login is picked up: one refetch, login 302', async () => {
    const w = await s.addWorker();
    assert.equal((await login(w, 'good')).status, 302);
    const before = jwksFetches();
    await s.rogue.rotateKey();
    const cb = await login(w, 'good');
    assert.equal(cb.status, 302, cb.text);
    assert.equal(jwksFetches(), before + 1);
  });

  test('JWKS endpoint down with nothing cached → 502', async () => {
    const w = await s.addWorker();
    const cb = await login(w, 'jwks-down');
    assert.equal(cb.status, 502);
  });

  test("discovery document whose issuer differs from OIDC_ISSUER → 502 at /hub/oauth_login, no redirect to the IdP", async () => {
    const w = await s.addWorker();
    s.rogue.setScenario('discovery-wrong-issuer');
    const authBefore = s.rogue.stats.count('/authorize');
    const r = await send(w, '/hub/oauth_login?next=%2Fhub%2F', cookieJar(), { headers: NAV_HEADERS });
    assert.equal(r.status, 502, r.text);
    assert.equal(r.location, null);
    assert.equal(s.rogue.stats.count('/authorize'), authBefore);
    assert.deepEqual(setCookieFor(r.setCookies, 'hubgate-oauth-').length, 0);
  });
});

// ---------------------------------------------------------------------------

describe('open redirects in next', () => {
  let s;
  before(async () => {
    s = await startRogueStack();
  });
  after(() => s?.close());

  const BAD = {
    'scheme-relative //evil.example': '//evil.example',
    'backslash /\\evil.example': '/\\evil.example',
    'absolute https://evil.example': 'https://evil.example',
    'tab /\\t/evil': '/\t/evil',
    'javascript: URL': 'javascript:alert(document.cookie)',
    'double backslash \\\\evil.example': '\\\\evil.example',
    'newline /\\n/evil.example': '/\n/evil.example',
    'CRLF header injection': '/hub/\r\nSet-Cookie: x=1',
    'relative evil.example': 'evil.example',
    'scheme without slashes http:evil.example': 'http:evil.example',
    'triple slash ///evil.example': '///evil.example',
  };
  for (const [name, next] of Object.entries(BAD)) {
    test(`next ${name} → 400 at /hub/oauth_login, no flow started`, async () => {
      const jar = cookieJar();
      const before = s.rogue.stats.count('/authorize');
      const r = await send(s.worker, `/hub/oauth_login?next=${encodeURIComponent(next)}`, jar, { headers: NAV_HEADERS });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.location, null);
      assert.deepEqual(flowCookies(jar), []);
      assert.equal(s.rogue.stats.count('/authorize'), before);
      assert.ok(!r.text.includes('evil'), 'the value is not echoed');
    });
  }

  test('control: a same-origin path next → 302 to the IdP, and the login ends there', async () => {
    const jar = cookieJar();
    const { chain, final } = await oidcLogin(s.worker, s.rogue, 'alice', jar, '/user/alice/lab?x=1#top');
    assert.equal(chain[0].status, 302);
    assert.equal(final.status, 200, trail(chain));
    assert.equal(final.json().path, '/user/alice/lab');
  });
});

// ---------------------------------------------------------------------------

describe('smuggled identity headers and the worker cookies', () => {
  let s;
  const jar = cookieJar();
  let hubJwks;
  before(async () => {
    s = await startRogueStack({ bindings: { ASSERTION_SIGNING_KEY: await assertionKey() } });
    const { final, chain } = await oidcLogin(s.worker, s.rogue, 'alice', jar, '/hub/');
    assert.equal(final.status, 200, trail(chain));
    hubJwks = createLocalJWKSet((await send(s.worker, '/_hubgate/jwks.json', null, { headers: API_HEADERS })).json());
  });
  after(() => s?.close());

  const FORGED = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsImFkbWluIjp0cnVlfQ.';
  const SMUGGLED = [
    ['X-Forwarded-User', 'admin'],
    ['x_forwarded_user', 'admin'],
    ['X_FORWARDED_USER', 'admin'],
    ['x-forwarded_user', 'admin'],
    ['X-Forwarded-Email', 'root@evil.example'],
    ['x_forwarded_email', 'root@evil.example'],
    ['X-Forwarded-Groups', 'admins,staff'],
    ['x_forwarded_groups', 'admins'],
    ['X-Forwarded-Admin', 'true'],
    ['x_forwarded_admin', 'true'],
    ['X-Hubgate-Assertion', FORGED],
    ['x_hubgate_assertion', FORGED],
  ];
  const underscored = (h) => Object.keys(h).filter((k) => k.includes('_'));

  for (const path of ['/hub/api/user', '/user/alice/api/contents']) {
    test(`with a session, smuggled identity headers never reach the hub at ${path}: no identity header, no assertion (200)`, async () => {
      for (const [name, value] of SMUGGLED) {
        const r = await send(s.worker, path, jar, { headers: { ...API_HEADERS, [name]: value } });
        assert.equal(r.status, 200, `${name}: ${r.text}`);
        const h = s.hub.requests.at(-1).headers;
        assert.deepEqual(identityHeadersIn(h), [], `${name} reached the hub`);
        assert.deepEqual(underscored(h), [], `${name} reached the hub`);
        assert.equal(s.hub.requests.at(-1).hubUser, 'alice', 'the hub still knows alice by its cookies');
      }
    });
  }

  test('with a session, smuggled identity headers at /hub/login: the worker logs in only alice, with its own assertion (302)', async () => {
    for (const [name, value] of SMUGGLED) {
      const from = s.hub.requests.length;
      const r = await send(s.worker, '/hub/login?next=%2Fhub%2F', jar, { headers: { ...API_HEADERS, [name]: value } });
      assert.equal(r.status, 302, `${name}: ${r.text}`);
      assert.equal(r.location, '/hub/');
      const seen = s.hub.requests.slice(from);
      assert.equal(seen.length, 1, 'only the login subrequest');
      const h = seen[0].headers;
      checkHubLogin(assert, seen[0], { user: 'alice', email: 'alice@example.edu', groups: 'students', admin: false, next: '/hub/' });
      assert.deepEqual(underscored(h), [], `${name} reached the hub`);
      assert.notEqual(h['x-hubgate-assertion'], FORGED, name);
      const { payload } = await jwtVerify(h['x-hubgate-assertion'], hubJwks, { issuer: s.worker.url, audience: s.hub.url });
      assert.equal(payload.sub, 'alice');
      assert.equal(payload.admin, false);
      assert.equal(payload.login_path, '/hub/login');
      assert.equal(r.headers.get('x-echo-user'), null, "the hub's own response headers are not passed on, only its cookies");
    }
  });

  test('identity headers never reach /user/...: alice smuggles them on /user/bob/x, the hub sees no identity and no assertion (200)', async () => {
    const from = s.hub.requests.length;
    const r = await send(s.worker, '/user/bob/x', jar, {
      headers: { ...API_HEADERS, ...Object.fromEntries(SMUGGLED.filter(([n]) => !/^X_FORWARDED_USER$/.test(n))), 'x-forwarded-user': 'bob', 'X-Hubgate-Assertion': FORGED },
    });
    assert.equal(r.status, 200);
    const seen = s.hub.requests.slice(from);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].path, '/user/bob/x');
    assert.deepEqual(identityHeadersIn(seen[0].headers), []);
    assert.deepEqual(underscored(seen[0].headers), []);
    assert.deepEqual(s.hub.identityCarriers(from), []);
    // and a WebSocket to another user's server carries none either
    const ws = await openWebSocket(`${s.worker.url}/ws/user/bob/api/kernels/k/channels`, jar, { headers: { 'x-forwarded-user': 'bob', 'x-hubgate-assertion': FORGED } });
    ws.close();
    assert.deepEqual(s.hub.identityCarriers(from), []);
  });

  test('all smuggled headers at once with a session: 200, hub sees no identity header', async () => {
    const r = await send(s.worker, '/hub/api/user', jar, { headers: { ...API_HEADERS, ...Object.fromEntries(SMUGGLED.filter(([n]) => !/^X_FORWARDED_USER$/.test(n))) } });
    assert.equal(r.status, 200);
    const h = r.json().headers;
    assert.deepEqual(identityHeadersIn(h), []);
    assert.deepEqual(underscored(h), []);
  });

  test('without a session (Authorization pass-through), the hub sees none of the smuggled identity headers (200)', async () => {
    // control: an ordinary underscored header does reach the hub, so the
    // identity ones below are dropped by the worker, not by the runtime
    const control = await send(s.worker, '/hub/api/user', null, { headers: { ...API_HEADERS, authorization: 'token abc', x_custom_header: 'kept' } });
    assert.equal(control.status, 200);
    assert.equal(control.json().headers.x_custom_header, 'kept');
    for (const [name, value] of SMUGGLED) {
      const r = await send(s.worker, '/hub/api/user', null, { headers: { ...API_HEADERS, authorization: 'token abc', [name]: value } });
      assert.equal(r.status, 200, name);
      const h = s.hub.requests.at(-1).headers;
      assert.equal(h.authorization, 'token abc');
      assert.deepEqual(identityHeadersIn(h), [], name);
      assert.deepEqual(underscored(h), [], `${name} reached the hub`);
    }
  });

  test("the worker's own cookies never reach the hub; the hub's and the user's do (200)", async () => {
    const session = jar.get(SESSION_COOKIE);
    const cookie = [
      'foo=bar',
      `${SESSION_COOKIE}=${session}`,
      'hubgate-oauth-AbCdEf0123456789=forged',
      '__Host-hubgate=forged',
      '__Host-hubgate-oauth-x=forged',
      '_xsrf=xsrf-token',
      'jupyterhub-session-id=abc',
    ].join('; ');
    const r = await send(s.worker, '/user/alice/api/contents', null, { headers: { ...API_HEADERS, cookie } });
    assert.equal(r.status, 200);
    assert.deepEqual(identityHeadersIn(r.json().headers), []);
    const got = r.json().headers.cookie ?? '';
    assert.equal(got, 'foo=bar; _xsrf=xsrf-token; jupyterhub-session-id=abc');
    assert.ok(!got.includes(session));
  });

  test('without a session, Authorization pass-through carries no cookies at all: neither the worker\'s nor the hub\'s (200)', async () => {
    const r = await send(s.worker, '/hub/api/user', null, {
      headers: { ...API_HEADERS, authorization: 'token abc', cookie: 'hubgate=garbage; hubgate-oauth-x=1; keep=me; jupyterhub-session-id=abc' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.json().headers.cookie, undefined);
  });

  test("a login through the real flow: the hub's Cookie header never carries hubgate or flow cookies", async () => {
    const j = cookieJar();
    const start = s.hub.requests.length;
    const { final, chain } = await oidcLogin(s.worker, s.rogue, 'alice', j, '/user/alice/tree');
    assert.equal(final.status, 200, trail(chain));
    const seen = s.hub.requests.slice(start);
    assert.ok(seen.length >= 2);
    for (const req of seen) {
      assert.ok(!/(^|;\s*)(__Host-)?hubgate(-oauth-[^=]*)?=/.test(req.headers.cookie ?? ''), `${req.path}: ${req.headers.cookie}`);
    }
    assert.equal(hubLogins(s.hub, start)[0].headers.cookie, undefined, 'the hub login carries no browser cookie at all');
  });
});

// ---------------------------------------------------------------------------

describe('oversized input', () => {
  let s;
  before(async () => {
    s = await startRogueStack();
  });
  after(() => s?.close());

  const form = (bytes) => `state=x&id_token=${'a'.repeat(bytes)}`;

  test('LTI-style form > 64 KiB to /hub/lti13/oauth_callback (Content-Length declared) → 413', async () => {
    const before = s.hub.requests.length;
    const r = await send(s.worker, '/hub/lti13/oauth_callback', null, {
      method: 'POST',
      headers: { ...NAV_HEADERS, 'content-type': 'application/x-www-form-urlencoded' },
      body: form(70 * 1024),
    });
    assert.equal(r.status, 413);
    assert.equal(s.hub.requests.length, before);
  });

  test('LTI-style form > 64 KiB to /hub/lti13/oauth_callback streamed without Content-Length → 413', async () => {
    const body = Buffer.from(form(80 * 1024));
    let off = 0;
    const stream = new ReadableStream({
      pull(c) {
        if (off >= body.length) return c.close();
        c.enqueue(body.subarray(off, off + 8192));
        off += 8192;
      },
    });
    const res = await fetch(`${s.worker.url}/hub/lti13/oauth_callback`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: stream,
      duplex: 'half',
      redirect: 'manual',
    });
    await res.arrayBuffer();
    assert.equal(res.status, 413);
  });

  test('form > 64 KiB to /hub/lti13/oauth_login (POST initiation) → 413', async () => {
    const r = await send(s.worker, '/hub/lti13/oauth_login', null, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `iss=x&login_hint=${'b'.repeat(100 * 1024)}`,
    });
    assert.equal(r.status, 413);
  });
});

// ---------------------------------------------------------------------------

describe('identity claims the hub cannot receive as headers (ALLOW_ALL, rogue IdP)', () => {
  let s;
  before(async () => {
    s = await startRogueStack({ bindings: { ALLOW_ALL: 'true', ALLOWED_USERS: undefined } });
  });
  after(() => {
    s?.rogue.setScenario('good');
    return s?.close();
  });

  async function login(extra) {
    s.rogue.setScenario('good', extra);
    const jar = cookieJar();
    const hubBefore = s.hub.requests.length;
    const { chain, final } = await oidcLogin(s.worker, s.rogue, 'alice', jar, '/hub/');
    return { chain, final, jar, cb: callbackEntry(chain), hubSeen: s.hub.requests.slice(hubBefore) };
  }
  const noInjection = (seen) => {
    for (const r of seen) {
      assert.notEqual(r.headers['x-forwarded-admin'], 'true');
      assert.ok(!JSON.stringify(r.headers).includes('\\r'), 'no CR reached the hub');
    }
  };

  test('username claim with CR/LF → 400 at the callback, no session minted, hub never reached', async () => {
    const r = await login({ preferred_username: 'eve\r\nX-Forwarded-Admin: true' });
    noInjection(r.hubSeen);
    assert.equal(r.cb?.status, 400, `a session was minted for a username that cannot be sent to the hub:\n${trail(r.chain)}`);
    assert.equal(r.jar.get(SESSION_COOKIE), undefined);
    assert.deepEqual(r.hubSeen, []);
  });

  test('email claim with CR/LF is dropped: the login completes (200) as alice, the hub login has no x-forwarded-email', async () => {
    const r = await login({ email: 'alice@example.edu\r\nX-Forwarded-Admin: true' });
    noInjection(r.hubSeen);
    assert.equal(r.final.status, 200, `the login fails once the identity holds this email:\n${trail(r.chain)}`);
    const [hubLogin] = hubLogins({ requests: r.hubSeen });
    checkHubLogin(assert, hubLogin, { user: 'alice' });
    assert.equal(hubLogin.headers['x-forwarded-email'], undefined);
    assert.equal(r.final.json().hub_user, 'alice');
  });

  test('a group name with CR/LF is dropped: the login completes (200) with the other groups', async () => {
    const r = await login({ groups: ['students', 'x\r\nX-Forwarded-Admin: true'] });
    noInjection(r.hubSeen);
    assert.equal(r.final.status, 200, `the login fails once the identity holds this group:\n${trail(r.chain)}`);
    checkHubLogin(assert, hubLogins({ requests: r.hubSeen })[0], { user: 'alice', groups: 'students' });
  });

  test('a user with 150 long group names: login completes (200) and the session Set-Cookie stays under 4 KB', async () => {
    const groups = Array.from({ length: 150 }, (_, i) => `cn=course-group-${i},ou=groups,dc=example,dc=edu`);
    const r = await login({ groups });
    assert.equal(r.final.status, 200, trail(r.chain));
    const [set] = setCookieFor(r.cb.setCookies, SESSION_COOKIE);
    assert.ok(set);
    const pair = set.split(';')[0];
    assert.ok(pair.length <= 4096, `session cookie is ${pair.length} bytes: browsers drop cookies over 4096 bytes, so this user could never sign in`);
  });
});

// ---------------------------------------------------------------------------

describe('misconfigured worker', () => {
  let hub;
  let w;
  let minimal;
  before(async () => {
    hub = await startHubEcho();
    // SESSION_SECRET missing, OAUTH_CLIENT_SECRET missing, a token URL that is
    // not https on a public host, and an ALLOW_ALL that is not a boolean.
    w = await startWorker({
      bindings: {
        HUB_ORIGIN: hub.url,
        OIDC_ISSUER: 'http://127.0.0.1:9/',
        OAUTH_CLIENT_ID: 'hubgate-demo',
        OAUTH2_TOKEN_URL: 'http://idp.example.org/token',
        ALLOW_ALL: 'perhaps',
      },
    });
    // A secret but no login method and a short secret.
    minimal = await startWorker({ bindings: { HUB_ORIGIN: hub.url, SESSION_SECRET: 'too-short' } });
  });
  after(async () => {
    await w?.close();
    await minimal?.close();
    await hub?.close();
  });

  test('answers 500 with a generic HTML page and logs the full list of errors once', async () => {
    const mark = logMark(w);
    const r = await send(w, '/hub/home', null, { headers: NAV_HEADERS });
    assert.equal(r.status, 500);
    assert.match(r.headers.get('content-type'), /text\/html/);
    for (const leak of ['SESSION_SECRET', 'OAUTH_CLIENT_SECRET', 'OAUTH2_TOKEN_URL', 'ALLOW_ALL', 'idp.example.org']) {
      assert.ok(!r.text.includes(leak), `the page names ${leak}`);
    }
    const line = await waitForLog(w, (l) => l.event === 'error' && l.kind === 'config', { from: mark });
    assert.ok(line, `no config error logged:\n${w.logs.join('\n')}`);
    assert.equal(line.status, '500');
    assert.match(line.detail, /missing SESSION_SECRET/);
    assert.match(line.detail, /missing OAUTH_CLIENT_SECRET/);
    assert.match(line.detail, /OAUTH2_TOKEN_URL is not an https URL/);
    assert.match(line.detail, /ALLOW_ALL/);
    assert.ok(r.text.includes(line.correlation_id), 'the page carries the correlation id of the log line');
    await new Promise((res) => setTimeout(res, 100));
    const lines = w.jsonLogs().slice(mark).filter((l) => l.kind === 'config');
    assert.equal(lines.length, 1, 'one log line carries the whole list');
    assert.equal(s_hubRequests(), 0);
  });

  test('answers 500 JSON to an API client, /_hubgate/health and /hub/oauth_login included', async () => {
    for (const p of ['/hub/api/user', '/_hubgate/health', '/hub/oauth_login', '/hub/oauth_callback?code=x&state=y']) {
      const r = await send(w, p, null, { headers: API_HEADERS });
      assert.equal(r.status, 500, p);
      const j = r.json();
      assert.equal(j.status, 500);
      assert.match(j.correlation_id, /^[A-Za-z0-9_-]{8,}$/);
      assert.ok(!r.text.includes('SESSION_SECRET'));
    }
    assert.equal(s_hubRequests(), 0);
  });

  test('no login method and a short SESSION_SECRET → 500, both errors logged', async () => {
    const mark = logMark(minimal);
    const r = await send(minimal, '/', null, { headers: NAV_HEADERS });
    assert.equal(r.status, 500);
    assert.ok(!r.text.includes('too-short'));
    const line = await waitForLog(minimal, (l) => l.event === 'error' && l.kind === 'config', { from: mark });
    assert.ok(line);
    assert.match(line.detail, /no login method/);
    assert.match(line.detail, /SESSION_SECRET must be at least 32/);
    assert.ok(!line.detail.includes('too-short'), 'the secret value itself is not logged');
  });

  function s_hubRequests() {
    return hub.requests.length;
  }
});

// ---------------------------------------------------------------------------

describe('one-time store (OAuth state)', () => {
  let s;
  let kvStore;
  const N = 20;
  before(async () => {
    s = await startRogueStack();
    // the explicit, warned KV fallback: no Durable Object bound
    kvStore = await startWorker({ bindings: { ...s.bindings, ONE_TIME_STORE: 'kv' }, durableObjects: null });
    s.workers.push(kvStore);
  });
  after(() => s?.close());

  test(`${N} concurrent callbacks with one state give exactly one session (OAuth, Durable Object store: one 302, ${N - 1} × 400)`, async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar, '/hub/race');
    const cookie = jar.header(callbackUrl);
    const tokensBefore = s.rogue.stats.token.length;
    const hubBefore = s.hub.requests.length;
    const rs = await Promise.all(
      Array.from({ length: N }, () => send(s.worker, `${callbackUrl.pathname}${callbackUrl.search}`, null, { headers: { ...NAV_HEADERS, cookie } })),
    );
    const statuses = rs.map((r) => r.status).sort();
    assert.deepEqual(statuses, [302, ...Array(N - 1).fill(400)], `statuses: ${statuses.join(',')}`);
    const sessions = rs.filter((r) => setCookieFor(r.setCookies, SESSION_COOKIE).some((c) => !/Max-Age=0/i.test(c)));
    assert.equal(sessions.length, 1, 'exactly one session minted');
    assert.equal(sessions[0].location, '/hub/race');
    assert.equal(s.rogue.stats.token.length - tokensBefore, 1, 'the code is redeemed once');
    assert.equal(hubLogins(s.hub, hubBefore).length, 1, 'one hub login');
    assert.equal(s.hub.requests.length - hubBefore, 1, 'nothing else reached the hub');
    const replays = await waitForLog(s.worker, (l) => l.kind === 'oauth' && /already used/.test(l.detail ?? ''));
    assert.ok(replays, 'the refused ones are logged as an already used state');
  });

  test('with ONE_TIME_STORE=kv and NONCES bound, a replayed callback (flow cookie restored) is still refused sequentially (400)', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(kvStore, jar);
    const [name] = flowCookies(jar);
    const value = jar.get(name);
    const first = await hit(kvStore, callbackUrl, jar);
    assert.equal(first.status, 302, first.text);
    const before = s.rogue.stats.token.length;
    const hubBefore = s.hub.requests.length;
    const replay = await send(kvStore, `${callbackUrl.pathname}${callbackUrl.search}`, null, { headers: { ...NAV_HEADERS, cookie: `${name}=${value}` } });
    assert.equal(replay.status, 400);
    assert.equal(s.rogue.stats.token.length, before, 'the replayed code is not sent to the IdP');
    assert.equal(s.hub.requests.length, hubBefore, 'nothing reached the hub');
    assert.deepEqual(setCookieFor(replay.setCookies, SESSION_COOKIE), []);
  });
});

// ---------------------------------------------------------------------------

describe('a worker without a one-time store', () => {
  let hub;
  let noStore;
  let kvWithoutNonces;
  let control;
  const secret = randomSecret();
  const bindings = () => ({
    HUB_ORIGIN: hub.url,
    SESSION_SECRET: secret,
    OAUTH_CLIENT_ID: 'c',
    OAUTH_CLIENT_SECRET: 's',
    OAUTH2_AUTHORIZE_URL: 'http://127.0.0.1:9/a',
    OAUTH2_TOKEN_URL: 'http://127.0.0.1:9/t',
    OAUTH2_USERDATA_URL: 'http://127.0.0.1:9/u',
    ALLOW_ALL: 'true',
  });
  before(async () => {
    hub = await startHubEcho();
    noStore = await startWorker({ bindings: bindings(), durableObjects: null });
    kvWithoutNonces = await startWorker({ bindings: { ...bindings(), ONE_TIME_STORE: 'kv' }, durableObjects: null, kv: ['JWKS_CACHE'] });
    control = await startWorker({ bindings: bindings() });
  });
  after(async () => {
    for (const w of [noStore, kvWithoutNonces, control]) await w?.close();
    await hub?.close();
  });

  const ROUTES = [
    ['GET', '/_hubgate/health'],
    ['GET', '/_hubgate/jwks.json'],
    ['GET', '/hub/login'],
    ['GET', '/hub/oauth_login?next=%2Fhub%2F'],
    ['GET', '/hub/oauth_callback?code=x&state=y'],
    ['GET', '/hub/logout'],
    ['POST', '/hub/logout'],
    ['GET', '/hub/lti13/config'],
    ['POST', '/hub/lti13/oauth_callback'],
    ['GET', '/hub/home'],
    ['GET', '/user/alice/lab'],
    ['POST', '/user/alice/api/kernels'],
  ];

  test('without a one-time store every route answers 500 and the log names ONE_TIME', async () => {
    const session = mintSession({ secret, origin: noStore.url, sub: 'alice' });
    const mark = logMark(noStore);
    for (const [method, p] of ROUTES) {
      for (const headers of [NAV_HEADERS, { ...API_HEADERS, authorization: 'token abc', cookie: `${SESSION_COOKIE}=${session}` }]) {
        const r = await send(noStore, p, null, { method, headers: { ...headers, ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) }, body: method === 'POST' ? 'state=x&id_token=y' : undefined });
        assert.equal(r.status, 500, `${method} ${p}: ${r.status}`);
        assert.ok(!r.text.includes('ONE_TIME'), 'the page stays generic');
      }
    }
    const line = await waitForLog(noStore, (l) => l.event === 'error' && l.kind === 'config', { from: mark });
    assert.ok(line, `no config error logged:\n${noStore.logs.join('\n')}`);
    assert.equal(line.status, '500');
    assert.match(line.detail, /ONE_TIME/);
    assert.equal(hub.requests.length, 0, 'nothing reached the hub');
  });

  test('ONE_TIME_STORE=kv without KV NONCES answers 500 and the log names NONCES', async () => {
    const mark = logMark(kvWithoutNonces);
    const r = await send(kvWithoutNonces, '/hub/oauth_login', null, { headers: API_HEADERS });
    assert.equal(r.status, 500);
    const line = await waitForLog(kvWithoutNonces, (l) => l.event === 'error' && l.kind === 'config', { from: mark });
    assert.ok(line);
    assert.match(line.detail, /NONCES/);
    assert.equal(hub.requests.length, 0);
  });

  test('control: the same bindings with the ONE_TIME Durable Object bound run (health 200, login 302)', async () => {
    const h = await send(control, '/_hubgate/health', null, { headers: API_HEADERS });
    assert.equal(h.status, 200);
    assert.deepEqual(h.json(), { status: 'ok' });
    const l = await send(control, '/hub/oauth_login?next=%2Fhub%2F', null, { headers: NAV_HEADERS });
    assert.equal(l.status, 302);
    assert.equal(new URL(l.location).origin, 'http://127.0.0.1:9');
  });
});

// ---------------------------------------------------------------------------

describe('the hub refuses the worker\'s login', () => {
  let s;
  let deadHub;
  before(async () => {
    s = await startRogueStack();
    deadHub = await s.addWorker({ HUB_ORIGIN: 'http://127.0.0.1:9' });
  });
  after(() => {
    s?.hub.setLoginAnswer(null);
    return s?.close();
  });

  async function callbackWhileHubAnswers(status, worker = s.worker) {
    s.hub.setLoginAnswer(status);
    try {
      const jar = cookieJar();
      const { callbackUrl } = await loginUntilCallback(worker, jar, '/hub/x');
      const from = s.hub.requests.length;
      const mark = logMark(worker);
      const r = await hit(worker, callbackUrl, jar);
      return { r, jar, seen: s.hub.requests.slice(from), mark };
    } finally {
      s.hub.setLoginAnswer(null);
    }
  }
  const noSession = ({ r, jar }) => {
    assert.equal(r.location, null, 'no redirect to next');
    assert.deepEqual(setCookieFor(r.setCookies, SESSION_COOKIE), [], 'no session');
    assert.equal(jar.get(SESSION_COOKIE), undefined);
    for (const name of ['jupyterhub-hub-login', 'jupyterhub-session-id', '_xsrf']) {
      assert.ok(setCookieFor(r.setCookies, name).every(isDeletion), `${name} set: ${r.setCookies.join(' | ')}`);
    }
    assert.deepEqual(flowCookies(jar), [], 'the flow cookie is cleared');
  };

  test('hub login answering 500 → 502 at the callback, no session', async () => {
    const out = await callbackWhileHubAnswers(500);
    assert.equal(out.r.status, 502, out.r.text);
    noSession(out);
    assert.equal(hubLogins({ requests: out.seen }).length, 1);
    const line = await waitForLog(s.worker, (l) => l.kind === 'session_start' && /500/.test(l.detail ?? ''), { from: out.mark });
    assert.ok(line, 'logged with the hub status');
  });

  test('hub login answering 403 → 403 at the callback, no session', async () => {
    const out = await callbackWhileHubAnswers(403);
    assert.equal(out.r.status, 403, out.r.text);
    noSession(out);
  });

  test('hub login answering 200 (no redirect, so no login) → 502 at the callback, no session', async () => {
    const out = await callbackWhileHubAnswers(200);
    assert.equal(out.r.status, 502, out.r.text);
    noSession(out);
  });

  test('hub unreachable at the login → 502 at the callback, no session', async () => {
    const out = await callbackWhileHubAnswers(null, deadHub);
    assert.equal(out.r.status, 502, out.r.text);
    noSession(out);
  });

  test('/hub/login with a session while the hub refuses → 502, nothing set', async () => {
    const token = mintSession({ secret: s.secret, origin: s.worker.url, sub: 'alice' });
    s.hub.setLoginAnswer(500);
    try {
      const r = await send(s.worker, '/hub/login?next=%2Fhub%2Fhome', null, { headers: { ...NAV_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
      assert.equal(r.status, 502, r.text);
      assert.equal(r.location, null);
      assert.deepEqual(r.setCookies.filter((c) => !isDeletion(c)), []);
    } finally {
      s.hub.setLoginAnswer(null);
    }
  });
});

// ---------------------------------------------------------------------------

describe('session cookie variants on https (Miniflare serving https on 127.0.0.1)', () => {
  let s;
  let w;
  const HOST_COOKIE = '__Host-hubgate';
  before(async () => {
    s = await startRogueStack();
    w = await startWorker({ bindings: s.bindings, https: true });
    s.workers.push(w);
  });
  after(() => s?.close());

  test('logout deletes both session cookie variants (SameSite=Lax and SameSite=None; Secure; Partitioned) and calls the hub', async () => {
    assert.match(w.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const token = mintSession({ secret: s.secret, origin: w.url, sub: 'alice' });
    const calls = s.hub.requestsTo('/hub/logout').length;
    const out = await send(w, '/hub/logout', null, { headers: { ...NAV_HEADERS, cookie: `${HOST_COOKIE}=${token}; jupyterhub-session-id=abc` } });
    assert.equal(out.status, 200, out.text);
    const cleared = setCookieFor(out.setCookies, HOST_COOKIE);
    assert.equal(cleared.length, 2, out.setCookies.join('\n'));
    assert.ok(cleared.every(isDeletion), cleared.join('\n'));
    for (const c of cleared) {
      assert.match(c, /;\s*Secure/i);
      assert.match(c, /;\s*HttpOnly/i);
      assert.match(c, /;\s*Path=\/(;|$)/);
    }
    assert.equal(cleared.filter((c) => /SameSite=Lax/i.test(c) && !/Partitioned/i.test(c)).length, 1, 'the top-level variant');
    assert.equal(cleared.filter((c) => /SameSite=None/i.test(c) && /Partitioned/i.test(c)).length, 1, 'the LMS-frame variant');
    assert.equal(s.hub.requestsTo('/hub/logout').length, calls + 1);
    const call = s.hub.requestsTo('/hub/logout').at(-1);
    assert.deepEqual(identityHeadersIn(call.headers), []);
    assert.equal(call.headers.cookie, 'jupyterhub-session-id=abc');
  });

  test('an OAuth login on https sets __Host-hubgate SameSite=Lax and deletes the partitioned variant', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(w, jar, '/hub/home');
    const r = await hit(w, callbackUrl, jar);
    assert.equal(r.status, 302, r.text);
    assert.equal(r.location, '/hub/home');
    const mine = setCookieFor(r.setCookies, HOST_COOKIE);
    const set = mine.filter((c) => !isDeletion(c));
    assert.equal(set.length, 1, mine.join('\n'));
    assert.match(set[0], /SameSite=Lax/i);
    assert.match(set[0], /;\s*Secure/i);
    const deleted = mine.filter(isDeletion);
    assert.equal(deleted.length, 1, mine.join('\n'));
    assert.match(deleted[0], /SameSite=None/i);
    assert.match(deleted[0], /Partitioned/i);
  });
});

// ---------------------------------------------------------------------------

describe('malformed state values', () => {
  let s;
  before(async () => {
    s = await startRogueStack();
  });
  after(() => s?.close());

  test('a state cut inside a multi-byte character is 400 and the isolate keeps serving', async () => {
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(s.worker, jar, '/hub/after');
    const state = callbackUrl.searchParams.get('state');
    const mark = logMark(s.worker);
    const before = s.hub.requests.length;
    // the flow cookie is named by the state's first 16 characters: put a
    // two-, three- and four-byte character across that boundary, or make the
    // whole state multi-byte, or send bytes that are not UTF-8 at all
    const bad = [
      `${state.slice(0, 15)}é${state.slice(15)}`,
      `${state.slice(0, 15)}€${state.slice(16)}`,
      `${state.slice(0, 14)}😀${state.slice(14)}`,
      'é'.repeat(40),
      '😀'.repeat(20),
    ];
    for (const b of bad) {
      const u = new URL(callbackUrl);
      u.searchParams.set('state', b);
      const r = await hit(s.worker, u, jar);
      assert.equal(r.status, 400, `${JSON.stringify(b)}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    for (const raw of ['%C3', `${state.slice(0, 15)}%C3%A9%FF${state.slice(15)}`, '%F0%9F%98']) {
      const r = await send(s.worker, `${callbackUrl.pathname}?code=x&state=${raw}`, jar, { headers: NAV_HEADERS });
      assert.equal(r.status, 400, `${raw}: ${r.status}`);
    }
    assert.equal(s.hub.requests.length, before);
    // each failed callback ended its flow (the cookie named like the state is cleared)
    assert.deepEqual(flowCookies(jar), []);
    // the same worker still serves: health, and a new login completes
    const h = await send(s.worker, '/_hubgate/health', null, { headers: API_HEADERS });
    assert.equal(h.status, 200);
    const again = await loginUntilCallback(s.worker, jar, '/hub/after');
    const ok = await hit(s.worker, again.callbackUrl, jar);
    assert.equal(ok.status, 302, ok.text);
    assert.equal(ok.location, '/hub/after');
    await new Promise((r) => setTimeout(r, 100));
    const crashed = s.worker.logs.slice(mark).filter((l) => /panicked|RuntimeError|Reinitializing|Critical|unreachable/i.test(l));
    assert.deepEqual(crashed, [], 'no panic or wasm reinitialisation');
  });
});

// ---------------------------------------------------------------------------

describe('issuer identifiers are compared exactly (rogue IdP whose issuer ends in /)', () => {
  let s;
  let plain;
  before(async () => {
    s = await startRogueStack({ rogueOptions: { trailingSlash: true } });
    // s.worker: OIDC_ISSUER = the provider's issuer, with its trailing slash
    plain = await s.addWorker({ OIDC_ISSUER: s.rogue.issuer.replace(/\/$/, '') });
  });
  after(() => s?.close());

  test("OIDC_ISSUER ending in '/' works when the provider's issuer ends in '/' (callback 302, hub login as alice)", async () => {
    assert.ok(s.rogue.issuer.endsWith('/'));
    const jar = cookieJar();
    const from = s.hub.requests.length;
    const { chain, final } = await oidcLogin(s.worker, s.rogue, 'alice', jar, '/hub/home');
    assert.equal(callbackEntry(chain)?.status, 302, trail(chain));
    assert.equal(final.status, 200, trail(chain));
    checkHubLogin(assert, hubLogins(s.hub, from)[0], { user: 'alice', next: '/hub/home' });
  });

  test("OIDC_ISSUER without the provider's trailing '/' → 502 at /hub/oauth_login, no redirect to the IdP", async () => {
    const before = s.rogue.stats.count('/authorize');
    const r = await send(plain, '/hub/oauth_login?next=%2Fhub%2F', cookieJar(), { headers: NAV_HEADERS });
    assert.equal(r.status, 502, r.text);
    assert.equal(r.location, null);
    assert.equal(s.rogue.stats.count('/authorize'), before);
  });
});

// ---------------------------------------------------------------------------

describe('a hub that does not answer the worker within 5 s', { concurrency: true }, () => {
  let s;
  let slowLogout;
  let slowLogin;
  before(async () => {
    s = await startRogueStack();
    // one hub per case, so the two delays do not meet
    slowLogout = await startHubEcho();
    slowLogin = await startHubEcho();
    slowLogout.setDelay('/hub/logout', 7000);
    slowLogin.setDelay('/hub/login', 7000);
  });
  after(async () => {
    await s?.close();
    await slowLogout?.close();
    await slowLogin?.close();
  });

  test('logout while the hub hangs: 200 signed-out after the 5 s timeout, session cleared, logged as hub_logout_failed', async () => {
    const w = await s.addWorker({ HUB_ORIGIN: slowLogout.url });
    const token = mintSession({ secret: s.secret, origin: w.url, sub: 'alice' });
    const mark = logMark(w);
    const t0 = Date.now();
    const r = await send(w, '/hub/logout', null, { headers: { ...NAV_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
    const ms = Date.now() - t0;
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /signed out/i);
    assert.ok(ms >= 4500 && ms < 6900, `answered after ${ms} ms`);
    assert.ok(setCookieFor(r.setCookies, SESSION_COOKIE).every(isDeletion));
    assert.equal(setCookieFor(r.setCookies, SESSION_COOKIE).length, 2, 'both variants');
    const line = await waitForLog(w, (l) => l.event === 'hub_logout_failed', { from: mark });
    assert.ok(line, 'the timed-out hub logout is logged');
    assert.match(line.detail, /timed out after 5000 ms/);
    assert.deepEqual(identityHeadersIn(slowLogout.requestsTo('/hub/logout').at(-1).headers), []);
  });

  test('callback while the hub login hangs: 502 after the 5 s timeout, no session', async () => {
    const w = await s.addWorker({ HUB_ORIGIN: slowLogin.url });
    const jar = cookieJar();
    const { callbackUrl } = await loginUntilCallback(w, jar, '/hub/x');
    const t0 = Date.now();
    const r = await hit(w, callbackUrl, jar);
    const ms = Date.now() - t0;
    assert.equal(r.status, 502, r.text);
    assert.ok(ms >= 4500 && ms < 6900, `answered after ${ms} ms`);
    assert.deepEqual(setCookieFor(r.setCookies, SESSION_COOKIE), []);
    assert.equal(jar.get(SESSION_COOKIE), undefined);
  });
});
