// The proxy through the built worker: bodies both ways (streamed), redirects
// not followed, hub cookies unmerged, WebSockets, health, and what happens
// without a session (navigation, API, Authorization pass-through). Run:
//   node --test --test-concurrency=1 tests/e2e/proxy.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { jwtVerify, createLocalJWKSet, decodeJwt } from 'jose';

import { cookieJar, follow, oidcLogin, openWebSocket, nextMessage, DEFAULT_SCRIPT } from './support/worker.mjs';
import { HUB_COOKIES } from './support/hub-echo.mjs';
import { freePort } from './support/ports.mjs';
import {
  startOidcStack,
  httpFetch,
  assertionKey,
  randomSecret,
  mintSession,
  send,
  trail,
  setCookieFor,
  isDeletion,
  waitForLog,
  logMark,
  startRogueStack,
  hubLogins,
  checkHubLogin,
  identityHeadersIn,
  SESSION_COOKIE,
  NAV_HEADERS,
  API_HEADERS,
} from './support/oauth-helpers.mjs';

// A missing build fails loudly (startWorker throws): npm test always builds first.

describe('proxy with a session', () => {
  let s;
  const jar = cookieJar();
  const previous = randomSecret();
  let signingKey;
  before(async () => {
    signingKey = await assertionKey();
    s = await startOidcStack({ bindings: { ASSERTION_SIGNING_KEY: signingKey, SESSION_SECRET_PREVIOUS: previous } });
    const { final, chain } = await oidcLogin(s.worker, s.idp, 'alice', jar, '/hub/');
    assert.equal(final.status, 200, trail(chain));
  });
  after(() => s?.close());

  const last = () => s.hub.requests.at(-1);

  test('GET keeps path and query exactly; 200 with the hub body, for the user of the hub cookies, with no identity header', async () => {
    const r = await send(s.worker, '/user/alice/api/contents/a%20b.ipynb?a=1&b=%2F&c=x%20y&a=2', jar, { headers: API_HEADERS });
    assert.equal(r.status, 200);
    const echo = r.json();
    assert.equal(echo.method, 'GET');
    assert.equal(echo.path, '/user/alice/api/contents/a%20b.ipynb');
    assert.deepEqual(echo.query, { a: ['1', '2'], b: '/', c: 'x y' });
    assert.equal(last().url, '/user/alice/api/contents/a%20b.ipynb?a=1&b=%2F&c=x%20y&a=2');
    assert.equal(echo.hub_user, 'alice');
    assert.deepEqual(identityHeadersIn(echo.headers), []);
    assert.equal(r.headers.get('x-echo-hub-user'), 'alice', "the hub's response headers come back");
    assert.equal(r.headers.get('x-echo-user'), '', 'the hub saw no X-Forwarded-User');
  });

  test('POST JSON body arrives intact with its content type (200)', async () => {
    const body = JSON.stringify({ type: 'notebook', content: { cells: [{ source: 'print("héllo")' }] } });
    const r = await send(s.worker, '/user/alice/api/contents/x.ipynb', jar, {
      method: 'POST',
      headers: { ...API_HEADERS, 'content-type': 'application/json' },
      body,
    });
    assert.equal(r.status, 200);
    const echo = r.json();
    assert.equal(echo.method, 'POST');
    assert.equal(echo.body, body);
    assert.equal(echo.headers['content-type'], 'application/json');
  });

  test('PUT, PATCH and DELETE keep their method and body (200)', async () => {
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const body = method === 'DELETE' ? undefined : `payload for ${method}`;
      const r = await send(s.worker, `/user/alice/api/thing?m=${method}`, jar, {
        method,
        headers: { ...API_HEADERS, ...(body ? { 'content-type': 'text/plain' } : {}) },
        body,
      });
      assert.equal(r.status, 200, method);
      assert.equal(r.json().method, method);
      if (body) assert.equal(r.json().body, body);
    }
  });

  test('a large streamed POST (8 MiB + 13 bytes) reaches /upload with the right byte count and hash (200)', async () => {
    const total = 8 * 1024 * 1024 + 13;
    const chunk = crypto.randomBytes(64 * 1024);
    const hash = crypto.createHash('sha256');
    let sent = 0;
    let pulls = 0;
    const stream = new ReadableStream({
      pull(c) {
        pulls += 1;
        if (sent >= total) return c.close();
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        const piece = chunk.subarray(0, n);
        hash.update(piece);
        c.enqueue(piece);
      },
    });
    const res = await fetch(`${s.worker.url}/upload`, {
      method: 'POST',
      headers: { ...API_HEADERS, cookie: jar.header(`${s.worker.url}/upload`), 'content-type': 'application/octet-stream' },
      body: stream,
      duplex: 'half',
      redirect: 'manual',
    });
    assert.equal(res.status, 200);
    const j = await res.json();
    assert.equal(j.bytes, total);
    assert.equal(j.sha256, hash.digest('hex'));
    assert.ok(pulls > 100, 'the client really streamed');
    const up = s.hub.requestsTo('/upload').at(-1);
    assert.equal(up.hubUser, 'alice');
    assert.deepEqual(identityHeadersIn(up.headers), []);
  });

  test('a slow chunked response streams: the first bytes arrive long before the end (200)', async () => {
    const chunks = 6;
    const size = 1024;
    const delayMs = 250;
    const t0 = Date.now();
    const res = await fetch(`${s.worker.url}/stream?chunks=${chunks}&size=${size}&delayMs=${delayMs}`, {
      headers: { ...API_HEADERS, cookie: jar.header(`${s.worker.url}/stream`) },
      redirect: 'manual',
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let first;
    let bytes = 0;
    for (let i = 0; i < 10_000; i += 1) {
      const { done, value } = await reader.read();
      if (done) break;
      first ??= Date.now() - t0;
      bytes += value.byteLength;
    }
    const total = Date.now() - t0;
    assert.equal(bytes, chunks * size);
    assert.ok(total >= chunks * delayMs - 50, `took ${total} ms`);
    assert.ok(first < total - 2 * delayMs, `first bytes after ${first} ms of ${total} ms: the response was buffered`);
  });

  test("a hub redirect is not followed: the 302 and its Location pass through", async () => {
    const before = s.hub.requests.length;
    const r = await send(s.worker, '/hub/redirect-elsewhere', jar, { headers: NAV_HEADERS });
    assert.equal(r.status, 302);
    assert.equal(r.location, 'http://127.0.0.1:1/elsewhere');
    assert.equal(s.hub.requests.length, before + 1, 'exactly one request reached the hub');
  });

  test('/hub/login with a session: the worker logs in at the hub itself (assertion, identity, no cookies) and 302s to next with the three hub Set-Cookie headers apart', async () => {
    const from = s.hub.requests.length;
    const r = await send(s.worker, `/hub/login?next=${encodeURIComponent('/user/alice/lab')}`, jar, { headers: NAV_HEADERS });
    assert.equal(r.status, 302, r.text);
    assert.equal(r.location, '/user/alice/lab');
    const seen = s.hub.requests.slice(from);
    assert.equal(seen.length, 1, 'only the login subrequest reached the hub');
    checkHubLogin(assert, seen[0], { user: 'alice', email: 'alice@example.edu', groups: 'students', admin: false, next: '/user/alice/lab' });
    const jwks = createLocalJWKSet((await send(s.worker, '/_hubgate/jwks.json', null, { headers: API_HEADERS })).json());
    const { payload, protectedHeader } = await jwtVerify(seen[0].headers['x-hubgate-assertion'], jwks, { issuer: s.worker.url, audience: s.hub.url });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.login_path, '/hub/login');
    assert.match(payload.jti, /^[A-Za-z0-9_-]{16,}$/);
    assert.ok(payload.exp - payload.iat <= 60, `assertion lives ${payload.exp - payload.iat} s`);
    for (const name of HUB_COOKIES) {
      const got = setCookieFor(r.setCookies, name).filter((c) => !isDeletion(c));
      assert.equal(got.length, 1, `${name}: ${r.setCookies.join(' | ')}`);
      for (const other of HUB_COOKIES.filter((n) => n !== name)) {
        assert.ok(!got[0].includes(`${other}=`), `folded: ${got[0]}`);
      }
    }
    assert.match(setCookieFor(r.setCookies, 'jupyterhub-hub-login').filter((c) => !isDeletion(c))[0], /HttpOnly; Path=\/hub\/; SameSite=Lax$/);
    // a second handoff is a new assertion (its own jti)
    const again = await send(s.worker, '/hub/login', jar, { headers: NAV_HEADERS });
    assert.equal(again.status, 302);
    assert.equal(again.location, '/hub/', 'next defaults to {BASE_URL}hub/');
    assert.notEqual(decodeJwt(last().headers['x-hubgate-assertion']).jti, payload.jti);
  });

  test('/hub/login with a session and an unsafe next → 400, nothing reaches the hub', async () => {
    const before = s.hub.requests.length;
    const r = await send(s.worker, `/hub/login?next=${encodeURIComponent('//evil.example/')}`, jar, { headers: NAV_HEADERS });
    assert.equal(r.status, 400);
    assert.equal(r.location, null);
    assert.equal(s.hub.requests.length, before);
  });

  test('WebSocket echo through the worker speaks as the hub-cookie user and carries no identity header (101)', async () => {
    const ws = await openWebSocket(`${s.worker.url}/ws/user/alice/api/kernels/k1/channels?session_id=abc`, jar);
    try {
      ws.send('hello kernel');
      assert.equal(await nextMessage(ws), 'alice: hello kernel');
      ws.send(Buffer.from([1, 2, 3]), { binary: true });
      assert.equal(await nextMessage(ws), `alice: ${Buffer.from([1, 2, 3]).toString('base64')}`);
    } finally {
      ws.close();
    }
    const up = s.hub.requests.filter((r) => r.upgrade).at(-1);
    assert.equal(up.path, '/ws/user/alice/api/kernels/k1/channels');
    assert.deepEqual(up.query, { session_id: 'abc' });
    assert.deepEqual(identityHeadersIn(up.headers), []);
    assert.ok(!/(^|;\s*)hubgate=/.test(up.headers.cookie ?? ''), 'session cookie not forwarded on the upgrade');
  });

  test('WebSocket with a smuggled X-Forwarded-User: dropped, the hub sees no identity header (101)', async () => {
    const ws = await openWebSocket(`${s.worker.url}/ws/user/alice/terminals/1`, jar, { headers: { 'x-forwarded-user': 'admin', x_forwarded_user: 'admin' } });
    try {
      ws.send('whoami');
      assert.equal(await nextMessage(ws), 'alice: whoami');
    } finally {
      ws.close();
    }
    const up = s.hub.requests.filter((r) => r.upgrade).at(-1);
    assert.deepEqual(identityHeadersIn(up.headers), []);
  });

  test('Authorization with a session passes through with the hub cookies and no identity (200)', async () => {
    const r = await send(s.worker, '/hub/api/users', jar, { headers: { ...API_HEADERS, authorization: 'token abc123' } });
    assert.equal(r.status, 200);
    assert.equal(r.json().headers.authorization, 'token abc123');
    assert.equal(r.json().hub_user, 'alice');
    assert.deepEqual(identityHeadersIn(r.json().headers), []);
  });

  test('forwarding headers are set by the worker; client-sent ones are replaced (200)', async () => {
    const r = await send(s.worker, '/hub/api/info', jar, {
      headers: {
        ...API_HEADERS,
        'x-forwarded-host': 'evil.example',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        'x-forwarded-port': '443',
        'x-forwarded-prefix': '/evil',
        x_forwarded_host: 'evil.example',
        forwarded: 'for=6.6.6.6;host=evil.example',
        'x-real-ip': '6.6.6.6',
        'x-scheme': 'https',
        'x-client-ip': '6.6.6.6',
        'true-client-ip': '6.6.6.6',
        'cf-ray': 'forged-ray',
        'cf-ipcountry': 'XX',
        'cf-visitor': '{"scheme":"https"}',
      },
    });
    assert.equal(r.status, 200);
    const h = r.json().headers;
    assert.equal(h['x-forwarded-host'], new URL(s.worker.url).host);
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.ok(!(h['x-forwarded-for'] ?? '').includes('6.6.6.6'), h['x-forwarded-for']);
    for (const k of ['forwarded', 'x-real-ip', 'x-scheme', 'x-client-ip', 'true-client-ip', 'x-forwarded-port', 'x-forwarded-prefix', 'x_forwarded_host']) {
      assert.equal(h[k], undefined, `${k} reached the hub`);
    }
    assert.ok(!JSON.stringify(h).includes('forged-ray') && !JSON.stringify(h).includes('"XX"'), `a client cf-* header reached the hub: ${JSON.stringify(h)}`);
    assert.ok(!JSON.stringify(h).includes('evil.example'));
  });

  test("XSRF: X-XSRFToken, Sec-Fetch-* and the hub's _xsrf cookie pass through untouched (200)", async () => {
    const xsrf = jar.get('_xsrf');
    assert.ok(xsrf, 'the hub set _xsrf at login');
    const r = await send(s.worker, '/hub/api/users/alice/server', jar, {
      method: 'POST',
      headers: { accept: 'application/json', 'x-xsrftoken': xsrf, 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(r.status, 200);
    const h = r.json().headers;
    assert.equal(h['x-xsrftoken'], xsrf);
    assert.equal(h['sec-fetch-mode'], 'cors');
    assert.equal(h['sec-fetch-site'], 'same-origin');
    assert.match(h.cookie, new RegExp(`(^|; )_xsrf=${xsrf.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(;|$)`));
  });

  test('Origin equal to the public origin is rewritten to the hub origin; any other Origin is unchanged', async () => {
    const mine = await send(s.worker, '/user/alice/api/kernels', jar, { method: 'POST', headers: { ...API_HEADERS, origin: s.worker.url }, body: '{}' });
    assert.equal(mine.status, 200);
    assert.equal(mine.json().headers.origin, s.hub.url);
    const other = await send(s.worker, '/user/alice/api/kernels', jar, { method: 'POST', headers: { ...API_HEADERS, origin: 'https://elsewhere.example' }, body: '{}' });
    assert.equal(other.status, 200);
    assert.equal(other.json().headers.origin, 'https://elsewhere.example');
  });

  test('/_hubgate/health: 200 JSON {"status":"ok"} and nothing else (no config summary, no secrets)', async () => {
    const r = await send(s.worker, '/_hubgate/health', null, { headers: API_HEADERS });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /application\/json/);
    assert.deepEqual(r.json(), { status: 'ok' });
    for (const secret of [s.secret, previous, 'hubgate-demo-secret', JSON.parse(signingKey).d, s.hub.url]) {
      assert.ok(!r.text.includes(secret), 'something of the configuration leaked into /_hubgate/health');
    }
  });

  test('/_hubgate/jwks.json: 200, the public assertion key only (no private part), cacheable', async () => {
    const r = await send(s.worker, '/_hubgate/jwks.json', null, { headers: API_HEADERS });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('cache-control') ?? '', /max-age=\d+/);
    const { keys } = r.json();
    const mine = JSON.parse(signingKey);
    assert.deepEqual(keys.map((k) => k.kid), [mine.kid]);
    assert.equal(keys[0].d, undefined, 'no private key material');
    assert.equal(keys[0].x, mine.x);
  });

  test('/_hubgate/health answers 200 without a session, also to a navigation', async () => {
    const r = await send(s.worker, '/_hubgate/health', null, { headers: NAV_HEADERS });
    assert.equal(r.status, 200);
    assert.equal(r.json().status, 'ok');
  });
});

describe('proxy without a session', () => {
  let s;
  let strict;
  let deadHub;
  before(async () => {
    s = await startOidcStack();
    strict = await s.addWorker({ PASS_AUTHORIZATION: 'false' });
    deadHub = await s.addWorker({ HUB_ORIGIN: `http://127.0.0.1:${await freePort()}` });
  });
  after(() => s?.close());

  test('browser navigation → 302 to /hub/login?next=<path and query>', async () => {
    const before = s.hub.requests.length;
    const r = await send(s.worker, '/user/alice/lab?x=1&y=%2F', cookieJar(), { headers: NAV_HEADERS });
    assert.equal(r.status, 302);
    assert.equal(r.location, `/hub/login?next=${encodeURIComponent('/user/alice/lab?x=1&y=%2F')}`);
    assert.equal(s.hub.requests.length, before, 'nothing reached the hub');
  });

  test('navigation recognised by Accept: text/html alone (no Sec-Fetch-Mode) → 302', async () => {
    const r = await send(s.worker, '/hub/home', null, { headers: { accept: 'text/html' } });
    assert.equal(r.status, 302);
    assert.equal(r.location, `/hub/login?next=${encodeURIComponent('/hub/home')}`);
  });

  test('API request → 401 JSON with the login URL', async () => {
    const before = s.hub.requests.length;
    const r = await send(s.worker, '/hub/api/user', null, { headers: API_HEADERS });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('content-type'), /application\/json/);
    const j = r.json();
    assert.equal(j.status, 401);
    assert.equal(j.login_url, '/hub/login');
    assert.equal(s.hub.requests.length, before);
  });

  test('fetch() from a page (Sec-Fetch-Mode: cors, Accept: */*) → 401', async () => {
    const r = await send(s.worker, '/user/alice/api/kernels', null, { headers: { accept: '*/*', 'sec-fetch-mode': 'cors' } });
    assert.equal(r.status, 401);
  });

  test('POST form without a session → 401 (not a navigation redirect)', async () => {
    const r = await send(s.worker, '/hub/spawn', null, {
      method: 'POST',
      headers: { ...NAV_HEADERS, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'profile=small',
    });
    assert.equal(r.status, 401);
  });

  test('WebSocket upgrade without a session → 401', async () => {
    const before = s.hub.requests.length;
    await assert.rejects(openWebSocket(`${s.worker.url}/ws/user/alice/api/kernels/k/channels`, null), (e) => e.status === 401);
    assert.equal(s.hub.requests.length, before);
  });

  test('Authorization without a session passes through (PASS_AUTHORIZATION default on): 200, hub sees the token and no identity', async () => {
    const r = await send(s.worker, '/hub/api/users?state=active', null, { headers: { ...API_HEADERS, authorization: 'token 0123456789abcdef' } });
    assert.equal(r.status, 200);
    const h = r.json().headers;
    assert.equal(h.authorization, 'token 0123456789abcdef');
    assert.equal(h['x-forwarded-user'], undefined);
    assert.equal(h['x-forwarded-admin'], undefined);
    assert.equal(h['x-hubgate-assertion'], undefined);
  });

  test('pass-through with Authorization and no session carries no cookies', async () => {
    const from = s.hub.requests.length;
    const r = await send(s.worker, '/hub/api/users', null, {
      headers: { ...API_HEADERS, authorization: 'token 0123456789abcdef', cookie: 'jupyterhub-session-id=stolen; jupyterhub-hub-login=stolen; _xsrf=x; keep=me; hubgate=garbage' },
    });
    assert.equal(r.status, 200);
    const seen = s.hub.requests.slice(from);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].headers.cookie, undefined, `cookies reached the hub: ${seen[0].headers.cookie}`);
    assert.equal(seen[0].headers.authorization, 'token 0123456789abcdef');
    assert.deepEqual(identityHeadersIn(seen[0].headers), []);
  });

  test('Authorization without a session with PASS_AUTHORIZATION=false → 401, hub not reached', async () => {
    const before = s.hub.requests.length;
    const r = await send(strict, '/hub/api/users', null, { headers: { ...API_HEADERS, authorization: 'token 0123456789abcdef' } });
    assert.equal(r.status, 401);
    assert.equal(s.hub.requests.length, before);
  });

  test('logout while the hub is unreachable still answers 200 signed-out and clears the session', async () => {
    const token = mintSession({ secret: s.secret, origin: deadHub.url, sub: 'alice' });
    const mark = logMark(deadHub);
    const r = await send(deadHub, '/hub/logout', null, { headers: { ...NAV_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
    assert.equal(r.status, 200);
    assert.match(r.text, /signed out/i);
    assert.ok(setCookieFor(r.setCookies, SESSION_COOKIE).every(isDeletion));
    assert.equal(setCookieFor(r.setCookies, SESSION_COOKIE).length, 2, 'both variants');
    assert.ok(await waitForLog(deadHub, (l) => l.event === 'hub_logout_failed', { from: mark }), 'the failed hub logout is logged');
  });

  test('hub unreachable → 502 generic page (session valid)', async () => {
    const token = mintSession({ secret: s.secret, origin: deadHub.url, sub: 'alice' });
    const r = await send(deadHub, '/hub/home', null, { headers: { ...NAV_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
    assert.equal(r.status, 502);
    assert.doesNotMatch(r.text, /127\.0\.0\.1/, 'no upstream detail in the page');
  });
});

describe('BASE_URL=/jh/', () => {
  let s;
  before(async () => {
    s = await startRogueStack({ bindings: { BASE_URL: '/jh/' } });
  });
  after(() => s?.close());

  test('unauthenticated navigation under the base → 302 to /jh/hub/login?next=…', async () => {
    const r = await send(s.worker, '/jh/user/alice/lab', null, { headers: NAV_HEADERS });
    assert.equal(r.status, 302);
    assert.equal(r.location, `/jh/hub/login?next=${encodeURIComponent('/jh/user/alice/lab')}`);
  });

  test('/jh/hub/oauth_login → 302 to the IdP with redirect_uri under the base; the login lands at the hub as alice', async () => {
    const jar = cookieJar();
    const r = await send(s.worker, `/jh/hub/oauth_login?next=${encodeURIComponent('/jh/hub/home')}`, jar, { headers: NAV_HEADERS });
    assert.equal(r.status, 302);
    assert.equal(new URL(r.location).searchParams.get('redirect_uri'), `${s.worker.url}/jh/hub/oauth_callback`);
    const start = `${s.worker.url}/jh/hub/oauth_login?next=${encodeURIComponent('/jh/hub/home')}`;
    const from = s.hub.requests.length;
    const chain = await follow(httpFetch, start, cookieJar(), { max: 10 });
    const cb = chain.find((c) => new URL(c.url).pathname === '/jh/hub/oauth_callback');
    assert.equal(cb?.status, 302, trail(chain));
    assert.equal(cb.location, '/jh/hub/home');
    checkHubLogin(assert, hubLogins(s.hub, from)[0], { user: 'alice', next: '/jh/hub/home', base: '/jh/' });
    const last = chain.at(-1);
    assert.equal(last.status, 200, trail(chain));
    assert.equal(last.json().path, '/jh/hub/home');
    assert.equal(last.json().hub_user, 'alice');
    assert.deepEqual(identityHeadersIn(last.json().headers), []);
  });

  test('/_hubgate/health is also answered outside the base (200)', async () => {
    const r = await send(s.worker, '/_hubgate/health', null, { headers: API_HEADERS });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { status: 'ok' });
  });

  test('/_hubgate/jwks.json is answered at the origin root and under the base (200 both), never proxied', async () => {
    const before = s.hub.requests.length;
    for (const p of ['/_hubgate/jwks.json', '/jh/_hubgate/jwks.json']) {
      const r = await send(s.worker, p, null, { headers: API_HEADERS });
      assert.equal(r.status, 200, p);
      assert.ok(Array.isArray(r.json().keys), p);
    }
    assert.equal(s.hub.requests.length, before);
  });

  test('/jh/hub/login with a session hands off to the hub at /jh/hub/login and 302s to next under the base', async () => {
    const token = mintSession({ secret: s.secret, origin: s.worker.url, sub: 'bob' });
    const from = s.hub.requests.length;
    const r = await send(s.worker, `/jh/hub/login?next=${encodeURIComponent('/jh/user/bob/')}`, null, { headers: { ...NAV_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
    assert.equal(r.status, 302, r.text);
    assert.equal(r.location, '/jh/user/bob/');
    checkHubLogin(assert, hubLogins(s.hub, from)[0], { user: 'bob', next: '/jh/user/bob/', base: '/jh/' });
    const plain = await send(s.worker, '/jh/hub/login', null, { headers: { ...NAV_HEADERS, cookie: `${SESSION_COOKIE}=${token}` } });
    assert.equal(plain.location, '/jh/hub/');
  });
});
