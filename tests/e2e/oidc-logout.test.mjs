// OpenID Connect logout through the built worker against the real
// oidc-provider: RP-Initiated Logout (the worker's /hub/logout sends the
// browser to the provider's end_session endpoint and back to
// /_hubgate/signed_out) and Back-Channel Logout 1.0 (the provider POSTs a
// logout token to /_hubgate/oidc/backchannel_logout, which revokes the worker
// sessions it names, everywhere). The provider calls the worker directly
// (idp.outgoing records each POST and the worker's answer). Run:
//   node --test tests/e2e/oidc-logout.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { generateKeyPair, SignJWT } from 'jose';

import { cookieJar, follow, oidcLogin } from './support/worker.mjs';
import { DEMO_USERS } from './support/idp.mjs';
import {
  startOidcStack,
  httpFetch,
  send,
  trail,
  waitForLog,
  logMark,
  correlationId,
  SESSION_COOKIE,
  NAV_HEADERS,
  API_HEADERS,
} from './support/oauth-helpers.mjs';

const CLIENT_ID = 'hubgate-demo';
const BACKCHANNEL = '/_hubgate/oidc/backchannel_logout';
const SIGNED_OUT = '/_hubgate/signed_out';
const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const TIMEOUT = { timeout: 30_000 };

const part = (jwt, i) => JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url').toString('utf8'));
const claimsOf = (jwt) => part(jwt, 1);
const headerOf = (jwt) => part(jwt, 0);
const hubPaths = (hub, from) => hub.requests.slice(from).map((r) => `${r.method} ${r.path}`);

/**
 * The real provider, the echo hub and a worker, with the client's logout
 * metadata registered once the worker's URL is known. `s.idTokens` collects
 * the id_tokens the provider's token endpoint issued (what the worker got).
 */
async function startLogoutStack({ sessionRequired }) {
  const s = await startOidcStack();
  try {
    s.idp.setClientMetadata(CLIENT_ID, {
      backchannel_logout_uri: `${s.worker.url}${BACKCHANNEL}`,
      backchannel_logout_session_required: sessionRequired,
      post_logout_redirect_uris: [`${s.worker.url}${SIGNED_OUT}`],
    });
    s.idTokens = [];
    s.idp.provider.on('grant.success', (ctx) => {
      if (ctx.body?.id_token) s.idTokens.push(ctx.body.id_token);
    });
    const res = await fetch(`${s.idp.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
    const doc = await res.json();
    assert.equal(doc.backchannel_logout_supported, true);
    s.endSession = doc.end_session_endpoint;
    assert.ok(s.endSession, 'discovery names an end_session_endpoint');
  } catch (err) {
    await s.close();
    throw err;
  }
  return s;
}

/** `username` logs in through the worker in `jar` (its own IdP session unless the jar has one) and reaches the hub. */
async function login(s, username, jar = cookieJar()) {
  const n = s.idTokens.length;
  const from = s.hub.requests.length;
  const { chain, final } = await oidcLogin(s.worker, s.idp, username, jar, '/hub/home');
  assert.equal(final.status, 200, trail(chain));
  assert.equal(final.json().path, '/hub/home');
  assert.equal(final.json().hub_user, username, 'the hub knows the user');
  assert.ok(hubPaths(s.hub, from).includes('GET /hub/home'), hubPaths(s.hub, from).join('\n'));
  const issued = s.idTokens.slice(n);
  assert.equal(issued.length, 1, 'one id_token issued for the login');
  return { jar, idToken: issued[0], claims: claimsOf(issued[0]) };
}

/** A request with `jar` (or a kept Cookie header) reaches the hub as `user`. */
async function reachesHub(s, { jar = null, cookie } = {}, user) {
  const from = s.hub.requests.length;
  const headers = cookie === undefined ? { ...API_HEADERS } : { ...API_HEADERS, cookie };
  const r = await send(s.worker, '/hub/api/user', jar, { headers });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json().hub_user, user);
  assert.deepEqual(hubPaths(s.hub, from), ['GET /hub/api/user']);
}

/**
 * A navigation and an API request with `cookie` are refused (302 to /hub/login, 401)
 * because the provider ended the session, and nothing reaches the hub.
 */
async function refused(s, cookie, label) {
  const from = s.hub.requests.length;
  const mark = logMark(s.worker);
  const nav = await send(s.worker, '/hub/home?tab=2', null, { headers: { ...NAV_HEADERS, cookie } });
  const api = await send(s.worker, '/hub/api/user', null, { headers: { ...API_HEADERS, cookie } });
  assert.equal(nav.status, 302, `${label}: navigation ${nav.status} ${nav.text}`);
  assert.equal(nav.location, `/hub/login?next=${encodeURIComponent('/hub/home?tab=2')}`, label);
  assert.equal(api.status, 401, `${label}: API ${api.status} ${api.text}`);
  assert.deepEqual(hubPaths(s.hub, from), [], `${label}: nothing reached the hub`);
  const why = await waitForLog(s.worker, (l) => l.event === 'session_rejected' && l.path === '/hub/api/user', { from: mark });
  assert.match(why?.detail ?? '', /back-channel logout/, `${label}: ${JSON.stringify(why)}`);
  return { nav, api };
}

const decodeEntities = (v) =>
  v.replace(/&(amp|quot|lt|gt|#(\d+)|#x([0-9a-f]+));/gi, (m, name, dec, hex) => {
    if (dec) return String.fromCharCode(Number(dec));
    if (hex) return String.fromCharCode(parseInt(hex, 16));
    return { amp: '&', quot: '"', lt: '<', gt: '>' }[name.toLowerCase()];
  });
const attr = (tag, name) => {
  const m = new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag);
  return m ? decodeEntities(m[1]) : undefined;
};

/**
 * oidc-provider's logout confirmation page, submitted as a browser would by
 * its "Yes, sign me out" button: the form's action and fields plus the button's name=value.
 */
function logoutSubmission(html, pageUrl) {
  const form = /<form\b[^>]*>[\s\S]*?<\/form>/i.exec(html);
  assert.ok(form, `no form on the provider's logout page:\n${html}`);
  const open = /<form\b[^>]*>/i.exec(form[0])[0];
  assert.equal((attr(open, 'method') ?? 'get').toLowerCase(), 'post');
  const fields = new URLSearchParams();
  for (const [input] of form[0].matchAll(/<input\b[^>]*>/gi)) {
    if (attr(input, 'name')) fields.append(attr(input, 'name'), attr(input, 'value') ?? '');
  }
  const yes = [...html.matchAll(/<button\b([^>]*)>([^<]*)<\/button>/gi)].find(([, , label]) => /sign me out/i.test(label));
  assert.ok(yes, `no "sign me out" button:\n${html}`);
  const button = `<button ${yes[1]}>`;
  assert.equal(attr(button, 'form'), attr(open, 'id'), 'the button submits the logout form');
  if (attr(button, 'name')) fields.append(attr(button, 'name'), attr(button, 'value') ?? '');
  return { action: new URL(attr(open, 'action') ?? pageUrl, pageUrl), fields };
}

/**
 * The browser at the provider's end_session endpoint `url` with `jar`: the
 * confirmation page (200 HTML form), then its submission, following redirects.
 * Returns { page, confirm } (the submission's redirect chain).
 */
async function signOutAtProvider(url, jar) {
  const pageChain = await follow(httpFetch, url, jar);
  const page = pageChain.at(-1);
  assert.equal(page.status, 200, `${trail(pageChain)}\n${page.text}`);
  assert.match(page.headers.get('content-type'), /text\/html/);
  const { action, fields } = logoutSubmission(page.text, page.url);
  const confirm = await follow(httpFetch, action, jar, { method: 'POST', body: fields.toString() });
  return { page, confirm };
}

/** The provider's logout-token POSTs to this worker since index `from` of idp.outgoing. */
function deliveries(s, from) {
  return s.idp.outgoing.slice(from).filter((o) => o.url === `${s.worker.url}${BACKCHANNEL}`);
}

/** Checks one delivery: POSTed, answered 200 no-store; returns the logout token and its claims. */
function checkDelivery(s, delivery, { sub, sid }) {
  assert.ok(delivery, 'the provider POSTed a logout token to the worker');
  assert.equal(delivery.error, null, `delivery failed: ${delivery.error}`);
  assert.equal(delivery.method, 'POST');
  assert.equal(delivery.status, 200, 'the worker answered the logout token 200');
  assert.match(delivery.headers['cache-control'] ?? '', /no-store/);
  const token = new URLSearchParams(delivery.body).get('logout_token');
  assert.ok(token, delivery.body);
  const claims = claimsOf(token);
  assert.equal(headerOf(token).typ, 'logout+jwt');
  assert.equal(claims.iss, s.idp.issuer);
  assert.deepEqual([claims.aud].flat(), [CLIENT_ID]);
  assert.deepEqual(claims.events, { [LOGOUT_EVENT]: {} });
  assert.equal(claims.nonce, undefined);
  assert.ok(claims.jti);
  assert.equal(claims.sub, sub);
  assert.equal(claims.sid, sid);
  return { token, claims };
}

/** POST a form body to the worker's back-channel endpoint (as the provider does: no cookies). */
function postLogoutToken(s, body) {
  return send(s.worker, BACKCHANNEL, null, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: typeof body === 'string' ? body : new URLSearchParams(body).toString(),
  });
}

/**
 * Resolve just after the next whole second. A logout token with only `sub`
 * revokes the user's sessions issued at or before the second it arrived
 * (the worker counts whole seconds), so a login in that same second is
 * revoked too; a login meant to outlive the revocation waits for the next one.
 */
const nextSecond = () => new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 50));

// ---------------------------------------------------------------------------

describe('OIDC logout against oidc-provider (client with backchannel_logout_session_required: logout tokens name the sid)', TIMEOUT, () => {
  let s;
  before(async () => {
    s = await startLogoutStack({ sessionRequired: true });
  });
  after(() => s?.close());

  test('logout through the worker: 302 to the provider end_session endpoint with id_token_hint, client_id and post_logout_redirect_uri; the provider confirms and returns to /_hubgate/signed_out', async () => {
    const alice = await login(s, 'alice');
    assert.equal(alice.claims.sub, DEMO_USERS.alice.sub);
    assert.ok(alice.claims.sid, 'the id_token names the provider session');
    const hubLogouts = s.hub.requestsTo('/hub/logout').length;

    const out = await send(s.worker, '/hub/logout', alice.jar, { headers: NAV_HEADERS });
    assert.equal(out.status, 302, out.text);
    const to = new URL(out.location);
    assert.equal(`${to.origin}${to.pathname}`, s.endSession);
    assert.deepEqual([...to.searchParams.keys()].sort(), ['client_id', 'id_token_hint', 'post_logout_redirect_uri']);
    const hint = to.searchParams.get('id_token_hint');
    assert.equal(hint, alice.idToken, "the hint is the login's own id_token");
    assert.equal(claimsOf(hint).sub, DEMO_USERS.alice.sub);
    assert.deepEqual([claimsOf(hint).aud].flat(), [CLIENT_ID]);
    assert.equal(to.searchParams.get('client_id'), CLIENT_ID);
    assert.equal(to.searchParams.get('post_logout_redirect_uri'), `${s.worker.url}${SIGNED_OUT}`);
    // the worker's cookies are gone and the hub ended its session
    assert.equal(alice.jar.get(SESSION_COOKIE), undefined);
    assert.equal(s.hub.requestsTo('/hub/logout').length, hubLogouts + 1);

    const { page, confirm } = await signOutAtProvider(to, alice.jar);
    assert.match(page.text, /sign-out|sign me out/i);
    assert.equal(confirm[0].status, 303, trail(confirm));
    assert.equal(confirm[0].location, `${s.worker.url}${SIGNED_OUT}`, 'the provider returns to the registered post_logout_redirect_uri');
    const back = confirm.at(-1);
    assert.equal(back.url, `${s.worker.url}${SIGNED_OUT}`, trail(confirm));
    assert.equal(back.status, 200);
    assert.match(back.headers.get('content-type'), /text\/html/);
    assert.match(back.text, /signed out/i);

    // the provider's session is over: logging in again asks for a username
    const again = await oidcLogin(s.worker, s.idp, 'alice', alice.jar, '/hub/');
    assert.equal(again.interacted, true, 'no single sign-on after the provider logout');
    assert.equal(again.final.status, 200, trail(again.chain));
  });

  test('back-channel: during that provider logout the provider POSTs a logout token (sid) and gets 200; a copy of the session cookie kept from before is refused (302 / 401) and nothing reaches the hub', async () => {
    const alice = await login(s, 'alice');
    const bob = await login(s, 'bob');
    // what a second tab (or a thief) holds: every cookie the browser sends to /hub/
    const kept = alice.jar.header(new URL('/hub/', s.worker.url));
    const keptSession = `${SESSION_COOKIE}=${alice.jar.get(SESSION_COOKIE)}`;
    assert.match(kept, new RegExp(`(^|; )${SESSION_COOKIE}=`));
    await reachesHub(s, { cookie: kept }, 'alice'); // control: the copy works before the logout

    const sent = s.idp.outgoing.length;
    const mark = logMark(s.worker);
    const out = await send(s.worker, '/hub/logout', alice.jar, { headers: NAV_HEADERS });
    assert.equal(out.status, 302, out.text);
    const { confirm } = await signOutAtProvider(out.location, alice.jar);
    assert.equal(confirm.at(-1).url, `${s.worker.url}${SIGNED_OUT}`, trail(confirm));
    assert.equal(confirm.at(-1).status, 200);

    const posted = deliveries(s, sent);
    assert.equal(posted.length, 1, JSON.stringify(s.idp.outgoing.slice(sent)));
    checkDelivery(s, posted[0], { sub: DEMO_USERS.alice.sub, sid: alice.claims.sid });
    const line = await waitForLog(s.worker, (l) => l.event === 'backchannel_logout', { from: mark });
    assert.ok(line, `no backchannel_logout log line:\n${s.worker.logs.slice(-10).join('\n')}`);
    assert.equal(line.revoked, 'provider session');

    await refused(s, kept, 'every cookie kept from before the logout');
    await refused(s, keptSession, 'the session cookie alone');
    await reachesHub(s, { jar: bob.jar }, 'bob');
  });

  test("logout at the provider only: the back-channel token alone revokes the worker session of that provider session; bob's session and alice's session from another provider session still reach the hub", async () => {
    const alice = await login(s, 'alice');
    const aliceElsewhere = await login(s, 'alice'); // another browser: another provider session
    const bob = await login(s, 'bob');
    assert.notEqual(aliceElsewhere.claims.sid, alice.claims.sid);
    const hubLogin = alice.jar.get('jupyterhub-hub-login', `${s.worker.url}/hub/`);
    assert.equal(s.hub.sessionUser(hubLogin), 'alice');
    const cookie = alice.jar.header(new URL('/hub/', s.worker.url));

    // the user ends the provider session at the provider itself: no client_id, no hint
    const sent = s.idp.outgoing.length;
    const mark = logMark(s.worker);
    const { confirm } = await signOutAtProvider(s.endSession, alice.jar);
    assert.equal(confirm[0].status, 303, trail(confirm));
    const done = confirm.at(-1);
    assert.equal(new URL(done.url).origin, s.idp.issuer, `ends at the provider:\n${trail(confirm)}`);
    assert.equal(done.status, 200);
    assert.ok(!confirm.some((c) => new URL(c.url).origin === s.worker.url), 'the browser never went to the worker');

    const posted = deliveries(s, sent);
    assert.equal(posted.length, 1, JSON.stringify(s.idp.outgoing.slice(sent)));
    checkDelivery(s, posted[0], { sub: DEMO_USERS.alice.sub, sid: alice.claims.sid });
    const line = await waitForLog(s.worker, (l) => l.event === 'backchannel_logout', { from: mark });
    assert.ok(line, 'the worker logged the back-channel logout');

    // the browser still holds every cookie, the hub's session included
    assert.ok(alice.jar.get(SESSION_COOKIE), 'the worker never cleared its cookie');
    assert.equal(s.hub.sessionUser(hubLogin), 'alice', "the hub's own session is still alive");
    await refused(s, cookie, "alice's browser after the provider logout");
    await reachesHub(s, { jar: bob.jar }, 'bob');
    await reachesHub(s, { jar: aliceElsewhere.jar }, 'alice');
  });
});

// ---------------------------------------------------------------------------

describe('OIDC back-channel logout against oidc-provider (client without backchannel_logout_session_required: logout tokens name only sub)', TIMEOUT, () => {
  let s;
  before(async () => {
    s = await startLogoutStack({ sessionRequired: false });
  });
  after(() => s?.close());

  test('refusals at the endpoint with real tokens: an id_token as logout_token, a replayed logout token, a token signed by another key → 400; GET → 405; after each the session still reaches the hub', async () => {
    const alice = await login(s, 'alice');
    assert.equal(alice.claims.sid, undefined, 'no sid without backchannel_logout_session_required');
    const mark = logMark(s.worker);
    let live = alice; // the session a wrongly accepted token would revoke

    /** `res` is refused with `status` for the reason `detail` (the worker's log line, by correlation id), and `live` still reaches the hub. */
    const expectRefused = async (label, res, status, detail) => {
      assert.equal(res.status, status, `${label}: ${res.status} ${res.text}`);
      const id = correlationId(res.text);
      const line = await waitForLog(s.worker, (l) => l.event === 'error' && l.correlation_id === id, { from: mark });
      assert.match(line?.detail ?? '', detail, `${label}: ${JSON.stringify(line)}`);
      await reachesHub(s, { jar: live.jar }, 'alice');
    };
    const postQuietly = async (body) => {
      const from = s.hub.requests.length;
      const r = await postLogoutToken(s, body);
      assert.deepEqual(hubPaths(s.hub, from), [], 'the endpoint does not reach the hub');
      return r;
    };

    // the login's own id_token (signed by the provider, right iss and aud, but a nonce and no events)
    await expectRefused('id_token as logout_token', await postQuietly({ logout_token: alice.idToken }), 400, /backchannel-logout|nonce/);

    // a well-formed logout token signed by another key: once claiming the provider's kid, once its own
    const { privateKey } = await generateKeyPair('RS256');
    const forge = (kid) =>
      new SignJWT({ events: { [LOGOUT_EVENT]: {} }, jti: crypto.randomUUID(), sub: DEMO_USERS.alice.sub })
        .setProtectedHeader({ alg: 'RS256', typ: 'logout+jwt', kid })
        .setIssuer(s.idp.issuer)
        .setAudience(CLIENT_ID)
        .setIssuedAt()
        .setExpirationTime('2m')
        .sign(privateKey);
    await expectRefused("another key, the provider's kid", await postQuietly({ logout_token: await forge(s.idp.kid) }), 400, /signature does not verify/);
    await expectRefused('another key, its own kid', await postQuietly({ logout_token: await forge('attacker-key-1') }), 400, /no key with kid/);

    // GET is not the protocol
    const from = s.hub.requests.length;
    const get = await send(s.worker, `${BACKCHANNEL}?logout_token=${encodeURIComponent(await forge(s.idp.kid))}`, null, { headers: API_HEADERS });
    assert.deepEqual(hubPaths(s.hub, from), []);
    await expectRefused('GET', get, 405, /does not take this method/);
    assert.equal(s.worker.jsonLogs().slice(mark).filter((l) => l.event === 'backchannel_logout').length, 0, 'nothing was revoked');

    // a real logout token: alice ends her provider session at the provider
    const sent = s.idp.outgoing.length;
    const cookie = alice.jar.header(new URL('/hub/', s.worker.url));
    const { confirm } = await signOutAtProvider(s.endSession, alice.jar);
    assert.equal(confirm.at(-1).status, 200, trail(confirm));
    const posted = deliveries(s, sent);
    assert.equal(posted.length, 1, JSON.stringify(s.idp.outgoing.slice(sent)));
    const { token } = checkDelivery(s, posted[0], { sub: DEMO_USERS.alice.sub, sid: undefined });
    await refused(s, cookie, 'the session the real logout token ended');

    // alice signs in again (a session after the revocation: a later second), then the token comes again
    await nextSecond();
    live = await login(s, 'alice');
    await expectRefused('the same logout token again', await postQuietly({ logout_token: token }), 400, /jti was already used/);
    assert.equal(s.worker.jsonLogs().slice(mark).filter((l) => l.event === 'backchannel_logout').length, 1, 'only the first delivery revoked anything');
  });

  test("a logout token with only sub revokes every session of that user in every browser (not bob's); a later login works", async () => {
    const alice = await login(s, 'alice');
    const aliceElsewhere = await login(s, 'alice');
    const bob = await login(s, 'bob');
    const cookies = [alice, aliceElsewhere].map((l) => l.jar.header(new URL('/hub/', s.worker.url)));

    const sent = s.idp.outgoing.length;
    const mark = logMark(s.worker);
    const { confirm } = await signOutAtProvider(s.endSession, alice.jar);
    assert.equal(confirm.at(-1).status, 200, trail(confirm));
    checkDelivery(s, deliveries(s, sent)[0], { sub: DEMO_USERS.alice.sub, sid: undefined });
    const line = await waitForLog(s.worker, (l) => l.event === 'backchannel_logout', { from: mark });
    assert.ok(line, 'the worker logged the back-channel logout');
    assert.equal(line.revoked, 'every session of the user');

    await refused(s, cookies[0], 'the browser that signed out at the provider');
    await refused(s, cookies[1], "alice's other browser");
    await reachesHub(s, { jar: bob.jar }, 'bob');

    await nextSecond();
    const later = await login(s, 'alice', aliceElsewhere.jar); // single sign-on with the provider session that is still alive
    await reachesHub(s, { jar: later.jar }, 'alice');
  });
});
