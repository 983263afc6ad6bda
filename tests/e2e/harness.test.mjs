// Checks the e2e support modules on their own (no hubgate worker needed):
// the demo IdP, the rogue IdP, the fake hub, the cookie jar / redirect
// follower, and startWorker's Miniflare plumbing with a stand-in module.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import WebSocket from 'ws';
import { jwtVerify, createRemoteJWKSet, decodeProtectedHeader, decodeJwt, createLocalJWKSet } from 'jose';

import { startIdp, DEMO_USERS } from './support/idp.mjs';
import { startRogueIdp, SCENARIOS } from './support/rogue-idp.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import { cookieJar, follow, clearIdpSession, startWorker, oidcLogin, openWebSocket, nextMessage } from './support/worker.mjs';
import { freePort } from './support/ports.mjs';

const rand = () => crypto.randomBytes(16).toString('base64url');
const s256 = (v) => crypto.createHash('sha256').update(v).digest('base64url');
const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** A plain OIDC client: authorize (through `follow`), optional interaction, callback params. */
async function authorize(op, { clientId, redirectUri, jar, username, scope = 'openid profile email', pkce = true, extra = {} }) {
  const verifier = rand() + rand();
  const state = rand();
  const nonce = rand();
  const disco = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
  const u = new URL(disco.authorization_endpoint);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    ...(pkce ? { code_challenge: s256(verifier), code_challenge_method: 'S256' } : {}),
    ...extra,
  }).toString();
  const atCallback = (next) => next.href.startsWith(redirectUri);
  const isInteraction = (next) => next.origin === op.issuer && next.pathname.startsWith('/interaction/');
  let chain = await follow(null, u, jar, { stopAt: (n) => atCallback(n) || isInteraction(n) });
  let last = chain.at(-1);
  let interacted = false;
  if (last.location && isInteraction(new URL(last.location, last.url))) {
    interacted = true;
    const iu = new URL(last.location, last.url);
    const page = await follow(null, iu, jar, { max: 1 });
    assert.equal(page[0].status, 200);
    assert.match(page[0].text, /name="username"/);
    const rest = await follow(null, iu, jar, {
      method: 'POST',
      body: new URLSearchParams({ username }).toString(),
      stopAt: atCallback,
    });
    chain = [...chain, ...page, ...rest];
    last = chain.at(-1);
  }
  assert.ok(last.location, `expected a redirect to the client, got ${last.status} ${last.text}`);
  const cb = new URL(last.location, last.url);
  assert.ok(atCallback(cb), `redirected to ${cb.href}`);
  return { params: Object.fromEntries(cb.searchParams), verifier, state, nonce, chain, interacted, disco };
}

async function redeem(disco, { code, verifier, clientId, clientSecret, redirectUri, authMethod = 'basic' }) {
  const form = { grant_type: 'authorization_code', code, redirect_uri: redirectUri };
  if (verifier !== undefined) form.code_verifier = verifier;
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (authMethod === 'basic') headers.authorization = basic(clientId, clientSecret);
  else Object.assign(form, { client_id: clientId, client_secret: clientSecret });
  const res = await fetch(disco.token_endpoint, { method: 'POST', headers, body: new URLSearchParams(form) });
  return { status: res.status, body: await res.json().catch(() => null), res };
}

describe('demo IdP (oidc-provider)', () => {
  let idp;
  let redirectUri;
  const clientId = 'hubgate-demo';
  const clientSecret = 'hubgate-demo-secret';

  before(async () => {
    idp = await startIdp();
    redirectUri = `http://127.0.0.1:${await freePort()}/hub/oauth_callback`;
    idp.setRedirectUris(clientId, [redirectUri]); // set after start, as with a worker on port 0
  });
  after(() => idp.close());

  test('serves discovery on 127.0.0.1 over http with S256 PKCE and an RS256 key with kid', async () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    const disco = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
    assert.equal(disco.issuer, idp.issuer);
    assert.deepEqual(disco.code_challenge_methods_supported, ['S256']);
    assert.ok(disco.id_token_signing_alg_values_supported.includes('RS256'));
    const before = idp.stats.count('/jwks');
    const jwks = await (await fetch(disco.jwks_uri)).json();
    assert.equal(idp.stats.count('/jwks'), before + 1);
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kty, 'RSA');
    assert.equal(jwks.keys[0].kid, idp.kid);
    assert.equal(jwks.keys[0].d, undefined, 'no private parts published');
  });

  test('programmatic login: code flow with PKCE, id_token carries username/email/groups', async () => {
    const jar = cookieJar();
    const a = await authorize(idp, { clientId, redirectUri, jar, username: 'alice', scope: 'openid profile email' });
    assert.ok(a.interacted);
    assert.equal(a.params.state, a.state);
    assert.equal(a.params.iss, idp.issuer, 'RFC 9207 iss in the authorization response');
    assert.ok(a.params.code);
    const t = await redeem(a.disco, { code: a.params.code, verifier: a.verifier, clientId, clientSecret, redirectUri });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.equal(decodeProtectedHeader(t.body.id_token).alg, 'RS256');
    const jwks = createRemoteJWKSet(new URL(a.disco.jwks_uri));
    const { payload } = await jwtVerify(t.body.id_token, jwks, { issuer: idp.issuer, audience: clientId, algorithms: ['RS256'] });
    assert.equal(payload.nonce, a.nonce);
    assert.equal(payload.sub, DEMO_USERS.alice.sub);
    assert.equal(payload.preferred_username, 'alice');
    assert.equal(payload.email, 'alice@example.edu');
    assert.deepEqual(payload.groups, ['students']);

    const ui = await fetch(a.disco.userinfo_endpoint, { headers: { authorization: `Bearer ${t.body.access_token}` } });
    assert.equal(ui.status, 200);
    const claims = await ui.json();
    assert.equal(claims.sub, payload.sub);
    assert.equal(claims.preferred_username, 'alice');
    assert.deepEqual(claims.groups, ['students']);

    // the code is single-use
    const again = await redeem(a.disco, { code: a.params.code, verifier: a.verifier, clientId, clientSecret, redirectUri });
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
  });

  test('client_secret_post is accepted too', async () => {
    const a = await authorize(idp, { clientId, redirectUri, jar: cookieJar(), username: 'carol' });
    const t = await redeem(a.disco, { code: a.params.code, verifier: a.verifier, clientId, clientSecret, redirectUri, authMethod: 'post' });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.deepEqual(decodeJwt(t.body.id_token).groups, ['staff']);
  });

  test('PKCE is required and checked', async () => {
    const a = await authorize(idp, { clientId, redirectUri, jar: cookieJar(), username: 'alice', pkce: false });
    assert.equal(a.params.error, 'invalid_request');
    assert.match(a.params.error_description, /PKCE/);

    const b = await authorize(idp, { clientId, redirectUri, jar: cookieJar(), username: 'alice' });
    const t = await redeem(b.disco, { code: b.params.code, verifier: `${b.verifier}x`, clientId, clientSecret, redirectUri });
    assert.equal(t.status, 400);
    assert.equal(t.body.error, 'invalid_grant');
  });

  test('wrong client secret is refused', async () => {
    const a = await authorize(idp, { clientId, redirectUri, jar: cookieJar(), username: 'bob' });
    const t = await redeem(a.disco, { code: a.params.code, verifier: a.verifier, clientId, clientSecret: 'nope', redirectUri });
    assert.equal(t.status, 401);
    assert.equal(t.body.error, 'invalid_client');
  });

  test('unregistered redirect_uri is refused at the IdP', async () => {
    const res = await fetch(
      `${idp.issuer}/auth?${new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: 'http://127.0.0.1:1/evil', scope: 'openid', code_challenge: s256('x'.repeat(43)), code_challenge_method: 'S256' })}`,
      { redirect: 'manual' },
    );
    assert.equal(res.status, 400);
    assert.match(await res.text(), /redirect_uri/);
  });

  test('single sign-on: a second authorize in the same jar is silent; clearIdpSession asks again', async () => {
    const jar = cookieJar();
    const first = await authorize(idp, { clientId, redirectUri, jar, username: 'bob' });
    assert.ok(first.interacted);
    const second = await authorize(idp, { clientId, redirectUri, jar, username: 'ignored' });
    assert.equal(second.interacted, false);
    assert.ok(second.params.code);
    const t = await redeem(second.disco, { code: second.params.code, verifier: second.verifier, clientId, clientSecret, redirectUri });
    assert.equal(decodeJwt(t.body.id_token).preferred_username, 'bob');

    clearIdpSession(jar);
    const third = await authorize(idp, { clientId, redirectUri, jar, username: 'carol' });
    assert.ok(third.interacted);
    const t3 = await redeem(third.disco, { code: third.params.code, verifier: third.verifier, clientId, clientSecret, redirectUri });
    assert.equal(decodeJwt(t3.body.id_token).preferred_username, 'carol');
  });

  test('deny ends the flow with access_denied; unknown users get 400', async () => {
    const jar = cookieJar();
    const disco = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
    const u = new URL(disco.authorization_endpoint);
    u.search = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid', state: 's1', code_challenge: s256('v'.repeat(43)), code_challenge_method: 'S256' }).toString();
    const chain = await follow(null, u, jar, { stopAt: (n) => n.pathname.startsWith('/interaction/') });
    const iu = new URL(chain.at(-1).location, chain.at(-1).url);
    const unknown = await follow(null, iu, jar, { method: 'POST', body: 'username=nobody' });
    assert.equal(unknown[0].status, 400);
    const denied = await follow(null, iu, jar, { method: 'POST', body: 'action=deny', stopAt: (n) => n.href.startsWith(redirectUri) });
    const cb = new URL(denied.at(-1).location);
    assert.equal(cb.searchParams.get('error'), 'access_denied');
    assert.equal(cb.searchParams.get('state'), 's1');
  });

  test('sso: false asks for a username on every authorize', async () => {
    const op = await startIdp({ sso: false, clients: [{ client_id: 'c2', client_secret: 's2', redirect_uris: [redirectUri] }] });
    try {
      const jar = cookieJar();
      const a = await authorize(op, { clientId: 'c2', redirectUri, jar, username: 'alice' });
      const b = await authorize(op, { clientId: 'c2', redirectUri, jar, username: 'bob' });
      assert.ok(a.interacted && b.interacted);
      const t = await redeem(b.disco, { code: b.params.code, verifier: b.verifier, clientId: 'c2', clientSecret: 's2', redirectUri });
      assert.equal(decodeJwt(t.body.id_token).preferred_username, 'bob');
    } finally {
      await op.close();
    }
  });

  test('setFault makes a path fail', async () => {
    idp.setFault('/jwks', { status: 503 });
    assert.equal((await fetch(`${idp.issuer}/jwks`)).status, 503);
    idp.setFault('/jwks', null);
    assert.equal((await fetch(`${idp.issuer}/jwks`)).status, 200);
  });
});

describe('rogue IdP', () => {
  let rogue;
  let redirectUri;
  before(async () => {
    rogue = await startRogueIdp({ scenario: 'good' });
    redirectUri = `http://127.0.0.1:${await freePort()}/hub/oauth_callback`;
  });
  after(() => rogue.close());

  const opts = () => ({ clientId: rogue.clientId, clientSecret: rogue.clientSecret, redirectUri });
  async function tokens(scenario, extra) {
    rogue.setScenario(scenario, extra);
    const a = await authorize(rogue, { ...opts(), jar: cookieJar() });
    assert.equal(a.interacted, false);
    assert.equal(a.params.state, a.state);
    const t = await redeem(a.disco, { code: a.params.code, verifier: a.verifier, ...opts() });
    return { ...a, t };
  }
  const jwks = () => createLocalJWKSet(rogue.jwks());
  const verify = (jwt, nonce) =>
    jwtVerify(jwt, jwks(), { issuer: rogue.issuer, audience: rogue.clientId, algorithms: ['RS256'] }).then(({ payload }) => {
      if (payload.nonce !== nonce) throw new Error('nonce mismatch');
      return payload;
    });

  test('lists its scenarios', () => {
    for (const s of ['good', 'wrong-aud', 'wrong-iss', 'wrong-nonce', 'alg-none', 'unknown-kid', 'hs256-confusion', 'expired', 'error-200']) {
      assert.ok(s in SCENARIOS, s);
    }
    assert.throws(() => rogue.setScenario('nonsense'));
  });

  test('good: a token that verifies; PKCE, nonce and client auth recorded', async () => {
    const { t, nonce, verifier } = await tokens('good');
    assert.equal(t.status, 200);
    const payload = await verify(t.body.id_token, nonce);
    assert.equal(payload.preferred_username, 'alice');
    assert.equal(rogue.stats.token.at(-1).auth, 'basic');
    assert.equal(rogue.stats.token.at(-1).params.code_verifier, verifier);
    assert.equal(rogue.stats.authorize.at(-1).code_challenge_method, 'S256');
    const ui = await fetch(`${rogue.issuer}/userinfo`, { headers: { authorization: `Bearer ${t.body.access_token}` } });
    assert.equal((await ui.json()).sub, payload.sub);
  });

  test('token endpoint checks PKCE, client auth, single use', async () => {
    rogue.setScenario('good');
    const a = await authorize(rogue, { ...opts(), jar: cookieJar() });
    const badPkce = await redeem(a.disco, { code: a.params.code, verifier: 'wrong'.repeat(10), ...opts() });
    assert.equal(badPkce.status, 400);
    const b = await authorize(rogue, { ...opts(), jar: cookieJar() });
    assert.equal((await redeem(b.disco, { code: b.params.code, verifier: b.verifier, ...opts(), clientSecret: 'x' })).status, 401);
    const c = await authorize(rogue, { ...opts(), jar: cookieJar() });
    assert.equal((await redeem(c.disco, { code: c.params.code, verifier: c.verifier, ...opts(), authMethod: 'post' })).status, 200);
    assert.equal((await redeem(c.disco, { code: c.params.code, verifier: c.verifier, ...opts() })).status, 400);
    const noPkce = await authorize(rogue, { ...opts(), jar: cookieJar(), pkce: false });
    assert.equal(noPkce.params.error, 'invalid_request');
  });

  test('setUser picks whose claims are issued', async () => {
    rogue.setUser('carol');
    try {
      const { t } = await tokens('good');
      assert.deepEqual(decodeJwt(t.body.id_token).groups, ['staff']);
    } finally {
      rogue.setUser('alice');
    }
  });

  for (const [scenario, check] of Object.entries({
    'wrong-aud': (p) => assert.equal(p.aud, 'someone-else'),
    'wrong-iss': (p) => assert.notEqual(p.iss, rogue.issuer),
    'wrong-nonce': (p, a) => assert.notEqual(p.nonce, a.nonce),
    'missing-nonce': (p) => assert.equal(p.nonce, undefined),
    expired: (p) => assert.ok(p.exp < Date.now() / 1000),
    'iat-future': (p) => assert.ok(p.iat > Date.now() / 1000 + 600),
    'multi-aud-no-azp': (p) => assert.ok(Array.isArray(p.aud) && p.aud.length === 2 && p.azp === undefined),
    'wrong-azp': (p) => assert.equal(p.azp, 'someone-else'),
    'missing-sub': (p) => assert.equal(p.sub, undefined),
  })) {
    test(`${scenario}: the id_token claim is off as described`, async () => {
      const a = await tokens(scenario);
      assert.equal(a.t.status, 200);
      check(decodeJwt(a.t.body.id_token), a);
      // jose itself does not check azp, a missing sub or an iat in the future; the worker must
      if (!['missing-sub', 'multi-aud-no-azp', 'wrong-azp', 'iat-future'].includes(scenario)) {
        await assert.rejects(verify(a.t.body.id_token, a.nonce));
      }
    });
  }

  test('alg-none: unsigned token', async () => {
    const a = await tokens('alg-none');
    const [h, , sig] = a.t.body.id_token.split('.');
    assert.equal(JSON.parse(Buffer.from(h, 'base64url')).alg, 'none');
    assert.equal(sig, '');
    assert.equal(decodeJwt(a.t.body.id_token).nonce, a.nonce, 'claims otherwise right');
    await assert.rejects(verify(a.t.body.id_token, a.nonce));
  });

  test('unknown-kid: RS256 by a key outside the JWKS', async () => {
    const a = await tokens('unknown-kid');
    const h = decodeProtectedHeader(a.t.body.id_token);
    assert.equal(h.alg, 'RS256');
    assert.equal(h.kid, 'rogue-unknown');
    assert.ok(!rogue.jwks().keys.some((k) => k.kid === h.kid));
    await assert.rejects(verify(a.t.body.id_token, a.nonce));
  });

  test('hs256-confusion: HMAC keyed with the public key PEM, real kid', async () => {
    const a = await tokens('hs256-confusion');
    const h = decodeProtectedHeader(a.t.body.id_token);
    assert.equal(h.alg, 'HS256');
    assert.equal(h.kid, rogue.kid);
    // it really is an HMAC over the public key's bytes: a naive verifier would accept it
    await jwtVerify(a.t.body.id_token, new TextEncoder().encode(rogue.publicKeyPem()), { algorithms: ['HS256'] });
    await assert.rejects(verify(a.t.body.id_token, a.nonce));
  });

  test('hs256-client-secret and bad-signature are refused by an RS256 verifier', async () => {
    for (const s of ['hs256-client-secret', 'bad-signature']) {
      const a = await tokens(s);
      await assert.rejects(verify(a.t.body.id_token, a.nonce), s);
    }
  });

  test('error-200: 200 with an error field (and tokens)', async () => {
    const { t } = await tokens('error-200');
    assert.equal(t.status, 200);
    assert.equal(t.body.error, 'invalid_grant');
    assert.ok(t.body.id_token && t.body.access_token);
  });

  test('token-500, no-id-token, token-not-json', async () => {
    assert.equal((await tokens('token-500')).t.status, 500);
    const n = await tokens('no-id-token');
    assert.equal(n.t.status, 200);
    assert.equal(n.t.body.id_token, undefined);
    const h = await tokens('token-not-json');
    assert.equal(h.t.status, 200);
    assert.equal(h.t.body, null);
  });

  test('authorize-error and wrong-auth-iss shape the authorization response', async () => {
    rogue.setScenario('authorize-error');
    const a = await authorize(rogue, { ...opts(), jar: cookieJar() });
    assert.equal(a.params.error, 'access_denied');
    assert.equal(a.params.state, a.state);
    rogue.setScenario('wrong-auth-iss');
    const b = await authorize(rogue, { ...opts(), jar: cookieJar() });
    assert.ok(b.params.code);
    assert.notEqual(b.params.iss, rogue.issuer);
  });

  test('userinfo-sub-mismatch, userinfo-500', async () => {
    const a = await tokens('userinfo-sub-mismatch');
    const ui = await (await fetch(`${rogue.issuer}/userinfo`, { headers: { authorization: `Bearer ${a.t.body.access_token}` } })).json();
    assert.notEqual(ui.sub, decodeJwt(a.t.body.id_token).sub);
    const b = await tokens('userinfo-500');
    assert.equal((await fetch(`${rogue.issuer}/userinfo`, { headers: { authorization: `Bearer ${b.t.body.access_token}` } })).status, 500);
    assert.equal((await fetch(`${rogue.issuer}/userinfo`)).status, 401);
  });

  test('jwks-down, discovery-wrong-issuer, key rotation, stats', async () => {
    rogue.setScenario('jwks-down');
    assert.equal((await fetch(`${rogue.issuer}/jwks`)).status, 503);
    rogue.setScenario('discovery-wrong-issuer');
    assert.notEqual((await (await fetch(`${rogue.issuer}/.well-known/openid-configuration`)).json()).issuer, rogue.issuer);
    rogue.setScenario('good');
    rogue.setJwksCacheControl('max-age=42');
    const before = rogue.stats.count('/jwks');
    const res = await fetch(`${rogue.issuer}/jwks`);
    assert.equal(res.headers.get('cache-control'), 'max-age=42');
    assert.equal(rogue.stats.count('/jwks'), before + 1);
    const old = rogue.kid;
    const kid = await rogue.rotateKey();
    assert.notEqual(kid, old);
    assert.deepEqual(rogue.jwks().keys.map((k) => k.kid), [old, kid]);
    const a = await tokens('good');
    assert.equal(decodeProtectedHeader(a.t.body.id_token).kid, kid);
    await verify(a.t.body.id_token, a.nonce);
    await rogue.rotateKey({ dropOld: true });
    assert.equal(rogue.jwks().keys.length, 1);
  });
});

describe('fake hub (hub-echo)', () => {
  let hub;
  before(async () => {
    hub = await startHubEcho();
  });
  after(() => hub.close());

  test('echoes method, path, query, headers and body', async () => {
    const res = await fetch(`${hub.url}/user/alice/api/contents?x=1&x=2&y=z`, {
      method: 'PUT',
      headers: { 'x-test': 'yes', 'content-type': 'text/plain' },
      body: 'hello body',
    });
    assert.equal(res.status, 200);
    const e = await res.json();
    assert.equal(e.method, 'PUT');
    assert.equal(e.path, '/user/alice/api/contents');
    assert.deepEqual(e.query, { x: ['1', '2'], y: 'z' });
    assert.equal(e.headers['x-test'], 'yes');
    assert.equal(e.body, 'hello body');
    assert.equal(hub.requests.at(-1).path, '/user/alice/api/contents');
  });

  test('/hub/login: 401 without identity; with it three Set-Cookie headers and a redirect to next', async () => {
    const none = await fetch(`${hub.url}/hub/login`, { redirect: 'manual' });
    assert.equal(none.status, 401);
    const res = await fetch(`${hub.url}/hub/login?next=${encodeURIComponent('/user/alice/lab?x=1')}`, {
      redirect: 'manual',
      headers: { 'x-forwarded-user': 'alice' },
    });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/user/alice/lab?x=1');
    assert.equal(res.headers.get('x-echo-user'), 'alice');
    const sc = res.headers.getSetCookie();
    assert.equal(sc.length, 3);
    assert.deepEqual(sc.map((c) => c.split('=')[0]), ['jupyterhub-hub-login', 'jupyterhub-session-id', '_xsrf']);
    const plain = await fetch(`${hub.url}/hub/login`, { redirect: 'manual', headers: { 'x-forwarded-user': 'bob' } });
    assert.equal(plain.headers.get('location'), '/hub/');
  });

  test('/hub/logout clears the hub cookies and redirects to /hub/login; redirect-elsewhere', async () => {
    const jar = cookieJar();
    await follow(null, `${hub.url}/hub/login`, jar, { headers: { 'x-forwarded-user': 'alice' } });
    assert.ok(jar.get('jupyterhub-hub-login', `${hub.url}/hub/`));
    assert.ok(jar.get('jupyterhub-session-id'));
    const out = await follow(null, `${hub.url}/hub/logout`, jar, { max: 1 }).catch((e) => e.chain);
    assert.equal(out[0].status, 302);
    assert.equal(out[0].location, '/hub/login');
    assert.equal(jar.get('jupyterhub-hub-login'), undefined);
    assert.equal(jar.get('jupyterhub-session-id'), undefined);
    assert.equal(jar.get('_xsrf'), undefined);
    const el = await fetch(`${hub.url}/hub/redirect-elsewhere`, { redirect: 'manual' });
    assert.equal(el.status, 302);
    assert.equal(el.headers.get('location'), 'http://127.0.0.1:1/elsewhere');
  });

  test('/upload counts a streamed body', async () => {
    const total = 3 * 1024 * 1024 + 7;
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    let sent = 0;
    const stream = new ReadableStream({
      pull(c) {
        if (sent >= total) return c.close();
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        c.enqueue(chunk.subarray(0, n));
      },
    });
    const res = await fetch(`${hub.url}/upload`, { method: 'POST', body: stream, duplex: 'half' });
    const j = await res.json();
    assert.equal(j.bytes, total);
    assert.match(j.sha256, /^[0-9a-f]{64}$/);
  });

  test('/stream writes chunks over time', async () => {
    const res = await fetch(`${hub.url}/stream?chunks=4&size=100&delayMs=20`);
    assert.equal((await res.arrayBuffer()).byteLength, 400);
  });

  test('a hub login session: proxied requests are answered for the user its cookies name', async () => {
    const jar = cookieJar();
    const login = await follow(null, `${hub.url}/hub/login?next=%2Fhub%2Fhome`, jar, { headers: { 'x-forwarded-user': 'alice' } });
    assert.equal(login[0].status, 302);
    assert.equal(login.at(-1).json().hub_user, 'alice');
    assert.equal(login.at(-1).headers.get('x-echo-hub-user'), 'alice');
    const anon = await (await fetch(`${hub.url}/hub/home`)).json();
    assert.equal(anon.hub_user, '');
    // /user/... gets only jupyterhub-session-id (Path=/), which names the user too
    const u = await follow(null, `${hub.url}/user/alice/lab`, jar);
    assert.equal(u[0].json().hub_user, 'alice');
    await follow(null, `${hub.url}/hub/logout`, jar, { max: 1 }).catch(() => {});
    hub.setLoginAnswer(500);
    try {
      const refused = await fetch(`${hub.url}/hub/login`, { redirect: 'manual', headers: { 'x-forwarded-user': 'bob' } });
      assert.equal(refused.status, 500);
      assert.deepEqual(refused.headers.getSetCookie(), []);
    } finally {
      hub.setLoginAnswer(null);
    }
    const jh = await fetch(`${hub.url}/jh/hub/login?next=%2Fjh%2Fhub%2F`, { redirect: 'manual', headers: { 'x-forwarded-user': 'bob' } });
    assert.equal(jh.status, 302, 'a login under any base path');
    assert.equal(jh.headers.get('location'), '/jh/hub/');
  });

  test('WebSocket under /ws/ echoes with the user of the hub cookies; elsewhere refused', async () => {
    const jar = cookieJar();
    await follow(null, `${hub.url}/hub/login`, jar, { headers: { 'x-forwarded-user': 'alice' } });
    const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/ws/user/alice/api/kernels/k1/channels`, { headers: { cookie: jar.header(`${hub.url}/ws/`), 'x-forwarded-user': 'mallory' } });
    await new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    const got = new Promise((r) => ws.once('message', (d) => r(d.toString())));
    ws.send('ping 1');
    assert.equal(await got, 'alice: ping 1', 'the cookie, not X-Forwarded-User, names the user');
    ws.close();
    const up = hub.requests.filter((r) => r.upgrade).at(-1);
    assert.equal(up.path, '/ws/user/alice/api/kernels/k1/channels');
    assert.equal(up.headers['x-forwarded-user'], 'mallory');
    assert.deepEqual(hub.identityCarriers(hub.requests.indexOf(up)).map((r) => r.path), ['/ws/user/alice/api/kernels/k1/channels']);

    await assert.rejects(openWebSocket(`${hub.url}/not-ws`), (e) => e.status === 404);

    // the helper sends the jar's cookies and an Origin, like a browser tab
    const jar2 = cookieJar();
    jar2.set(hub.url, 'hubgate', 'xyz');
    const ws2 = await openWebSocket(`${hub.url}/ws/x`, jar2);
    ws2.send('hi');
    assert.equal(await nextMessage(ws2), ': hi');
    ws2.close();
    const up2 = hub.requests.filter((r) => r.upgrade).at(-1);
    assert.equal(up2.headers.cookie, 'hubgate=xyz');
    assert.equal(up2.headers.origin, hub.url);
  });
});

describe('cookie jar', () => {
  test('path, port-agnostic host, Max-Age=0 and past Expires delete', () => {
    const jar = cookieJar();
    jar.store('http://127.0.0.1:8000/hub/oauth_login', [
      'a=1; Path=/',
      'b=2; Path=/hub/oauth_callback; HttpOnly',
      'c=3', // default path /hub
      'd=4; Path=/; Max-Age=3600',
    ]);
    assert.equal(jar.header('http://127.0.0.1:9999/'), 'a=1; d=4');
    assert.equal(jar.header('http://127.0.0.1:8000/hub/oauth_callback?x'), 'b=2; c=3; a=1; d=4');
    assert.equal(jar.header('http://127.0.0.1:8000/hubx'), 'a=1; d=4');
    assert.equal(jar.header('http://localhost:8000/'), '');
    jar.store('http://127.0.0.1:8000/', ['a=; Path=/; Max-Age=0', 'd=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT']);
    assert.equal(jar.get('a'), undefined);
    assert.equal(jar.get('d'), undefined);
    jar.store('http://127.0.0.1:8000/hub/', ['b=; Path=/hub/; Max-Age=0']); // different path: a different cookie
    assert.equal(jar.get('b'), '2');
  });

  test('prefix rules and Secure', () => {
    const jar = cookieJar();
    jar.store('http://127.0.0.1:1/', ['__Host-x=1; Path=/', '__Host-y=2; Secure; Path=/', '__Secure-z=3', 's=4; Secure; Path=/']);
    assert.deepEqual(jar.names().sort(), ['__Host-y', 's']); // loopback http is a secure context
    jar.store('http://example.test/', ['t=5; Secure']);
    assert.equal(jar.get('t'), undefined);
    assert.ok(jar.cookie('s').secure);
  });
});

describe('startWorker (Miniflare plumbing, stand-in module)', () => {
  let dir;
  before(() => {
    // same layout as scripts/build.sh's output: worker/shim.mjs -> ../index.js -> ./index_bg.wasm
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubgate-fake-build-'));
    fs.mkdirSync(path.join(dir, 'worker'));
    fs.writeFileSync(
      path.join(dir, 'worker', 'shim.mjs'),
      `import { add } from '../index.js';
export default { async fetch(req, env) {
  const u = new URL(req.url);
  console.log(JSON.stringify({ event: 'req', path: u.pathname }));
  if (u.pathname === '/kv') { await env.NONCES.put('k', 'v'); return new Response('ok'); }
  if (u.pathname === '/upstream') return fetch(env.HUB_ORIGIN + '/hub/redirect-elsewhere', { redirect: 'manual' });
  if (u.pathname === '/cookies') { const h = new Headers(); h.append('set-cookie', 'hubgate=abc; Path=/; HttpOnly'); h.append('set-cookie', 'x=1; Path=/'); h.set('location', '/hub/'); return new Response(null, { status: 302, headers: h }); }
  return Response.json({ sum: add(2, 3), foo: env.FOO, url: req.url, cookie: req.headers.get('cookie') });
} };`,
    );
    fs.writeFileSync(
      path.join(dir, 'index.js'),
      `import wasm from './index_bg.wasm';
const inst = new WebAssembly.Instance(wasm, {});
export function add(a, b) { return inst.exports.add(a, b); }`,
    );
    // (module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
    fs.writeFileSync(
      path.join(dir, 'index_bg.wasm'),
      Buffer.from('0061736d0100000001070160027f7f017f030201000707010361646400000a09010700200020016a0b', 'hex'),
    );
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('loads shim + wasm, bindings, KV, outbound fetch to loopback, logs, follow across hosts', async () => {
    const hub = await startHubEcho();
    // the stand-in exports no OneTime class: no Durable Object bindings
    const w = await startWorker({ scriptPath: path.join(dir, 'worker', 'shim.mjs'), bindings: { FOO: 'bar', HUB_ORIGIN: hub.url }, durableObjects: null });
    try {
      assert.match(w.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const r = await (await w.fetch('/x?y=1')).json();
      assert.equal(r.sum, 5);
      assert.equal(r.foo, 'bar');
      assert.equal(new URL(r.url).origin, w.url);
      await (await w.fetch('/kv')).text();
      assert.equal(await (await w.kv('NONCES')).get('k'), 'v');
      const up = await w.fetch('/upstream');
      assert.equal(up.status, 302);
      assert.equal(up.headers.get('location'), 'http://127.0.0.1:1/elsewhere');

      const jar = cookieJar();
      const chain = await follow(null, `${w.url}/cookies`, jar);
      assert.equal(chain[0].setCookies.length, 2);
      assert.equal(chain.at(-1).json().cookie, 'hubgate=abc; x=1');
      await new Promise((res) => setTimeout(res, 100));
      assert.ok(w.jsonLogs().some((l) => l.path === '/kv'));
    } finally {
      await w.close();
      await hub.close();
    }
  });
});

describe('real worker smoke', () => {
  let idp;
  let hub;
  let w;
  const jar = cookieJar();
  before(async () => {
    idp = await startIdp();
    hub = await startHubEcho();
    w = await startWorker({
      bindings: {
        HUB_ORIGIN: hub.url,
        OIDC_ISSUER: idp.issuer,
        OAUTH_CLIENT_ID: 'hubgate-demo',
        OAUTH_CLIENT_SECRET: 'hubgate-demo-secret',
        OAUTH2_USERNAME_KEY: 'preferred_username',
        ALLOWED_USERS: 'alice,bob',
        ADMIN_USERS: 'carol',
        SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
      },
    });
    idp.setRedirectUris('hubgate-demo', [`${w.url}/hub/oauth_callback`]); // port 0: known only now
  });
  after(async () => {
    await w?.close();
    await hub?.close();
    await idp?.close();
  });

  test('oidcLogin through the built worker: the worker logs alice in at the hub, then the hub knows her by its cookies', async () => {
    const from = hub.requests.length;
    const { final, chain } = await oidcLogin(w, idp, 'alice', jar, '/hub/home');
    const trail = chain.map((c) => `${c.status} ${c.method} ${c.url}`).join('\n');
    assert.equal(final.status, 200, trail);
    const echo = final.json();
    assert.equal(echo.path, '/hub/home', trail);
    assert.equal(echo.hub_user, 'alice', 'the hub cookies the worker passed on name alice');
    assert.equal(echo.headers['x-forwarded-user'], undefined, 'no identity on a proxied request');
    const logins = hub.requests.slice(from).filter((r) => r.path === '/hub/login');
    assert.equal(logins.length, 1);
    assert.equal(logins[0].headers['x-forwarded-user'], 'alice');
    assert.equal(logins[0].headers.cookie, undefined);
    assert.ok(!chain.some((c) => new URL(c.url).pathname === '/hub/login'), 'the browser never goes through /hub/login');
    assert.ok(jar.get('hubgate'), 'session cookie set');
  });

  test('WebSocket through the worker speaks as the hub-cookie user, with no identity header', async () => {
    const ws = await openWebSocket(`${w.url}/ws/user/alice/api/kernels/k/channels`, jar);
    ws.send('hello');
    assert.equal(await nextMessage(ws), 'alice: hello');
    ws.close();
    const up = hub.requests.filter((r) => r.upgrade).at(-1);
    assert.equal(up.headers['x-forwarded-user'], undefined);
  });
});
