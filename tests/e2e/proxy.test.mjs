// The proxy through the built worker: bodies both ways (streamed), redirects
// not followed, hub cookies unmerged, WebSockets, health, and what happens
// without a session (navigation, API, Authorization pass-through). Run:
//   node --test --test-concurrency=1 tests/e2e/proxy.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';

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

  test('GET keeps path and query exactly; 200 with the hub body and identity', async () => {
    const r = await send(s.worker, '/user/alice/api/contents/a%20b.ipynb?a=1&b=%2F&c=x%20y&a=2', jar, { headers: API_HEADERS });
    assert.equal(r.status, 200);
    const echo = r.json();
    assert.equal(echo.method, 'GET');
    assert.equal(echo.path, '/user/alice/api/contents/a%20b.ipynb');
    assert.deepEqual(echo.query, { a: ['1', '2'], b: '/', c: 'x y' });
    assert.equal(last().url, '/user/alice/api/contents/a%20b.ipynb?a=1&b=%2F&c=x%20y&a=2');
    assert.equal(echo.headers['x-forwarded-user'], 'alice');
    assert.equal(r.headers.get('x-echo-user'), 'alice', "the hub's response headers come back");
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
    assert.equal(s.hub.requestsTo('/upload').at(-1).headers['x-forwarded-user'], 'alice');
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

  test('three Set-Cookie headers from the hub /hub/login arrive as three separate headers (302)', async () => {
    const r = await send(s.worker, `/hub/login?next=${encodeURIComponent('/user/alice/lab')}`, jar, { headers: NAV_HEADERS });
    assert.equal(r.status, 302);
    assert.equal(r.location, '/user/alice/lab');
    assert.equal(last().headers['x-forwarded-user'], 'alice', '/hub/login is proxied with the identity when a session exists');
    for (const name of HUB_COOKIES) {
      const got = setCookieFor(r.setCookies, name);
      assert.equal(got.length, 1, `${name}: ${r.setCookies.join(' | ')}`);
      for (const other of HUB_COOKIES.filter((n) => n !== name)) {
        assert.ok(!got[0].includes(`${other}=`), `folded: ${got[0]}`);
      }
    }
    assert.match(setCookieFor(r.setCookies, 'jupyterhub-hub-login')[0], /HttpOnly; Path=\/hub\/; SameSite=Lax$/);
  });

  test('WebSocket echo through the worker carries the session identity (101)', async () => {
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
    assert.equal(up.headers['x-forwarded-user'], 'alice');
    assert.ok(!/(^|;\s*)hubgate=/.test(up.headers.cookie ?? ''), 'session cookie not forwarded on the upgrade');
  });

  test('WebSocket with a smuggled X-Forwarded-User still speaks as the session user', async () => {
    const ws = await openWebSocket(`${s.worker.url}/ws/user/alice/terminals/1`, jar, { headers: { 'x-forwarded-user': 'admin', x_forwarded_user: 'admin' } });
    try {
      ws.send('whoami');
      assert.equal(await nextMessage(ws), 'alice: whoami');
    } finally {
      ws.close();
    }
    const up = s.hub.requests.filter((r) => r.upgrade).at(-1);
    assert.equal(up.headers['x-forwarded-user'], 'alice');
    assert.equal(up.headers.x_forwarded_user, undefined);
  });

  test('Authorization with a session passes through next to the identity (200)', async () => {
    const r = await send(s.worker, '/hub/api/users', jar, { headers: { ...API_HEADERS, authorization: 'token abc123' } });
    assert.equal(r.status, 200);
    assert.equal(r.json().headers.authorization, 'token abc123');
    assert.equal(r.json().headers['x-forwarded-user'], 'alice');
  });

  test('forwarding headers are set by the worker; client-sent ones are replaced (200)', async () => {
    const r = await send(s.worker, '/hub/api/info', jar, {
      headers: { ...API_HEADERS, 'x-forwarded-host': 'evil.example', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', forwarded: 'for=6.6.6.6;host=evil.example', 'x-real-ip': '6.6.6.6' },
    });
    assert.equal(r.status, 200);
    const h = r.json().headers;
    assert.equal(h['x-forwarded-host'], new URL(s.worker.url).host);
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.ok(!(h['x-forwarded-for'] ?? '').includes('6.6.6.6'), h['x-forwarded-for']);
    assert.equal(h.forwarded, undefined);
    assert.equal(h['x-real-ip'], undefined);
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

  test('/_hubgate/health: 200 JSON, status ok, no secrets', async () => {
    const r = await send(s.worker, '/_hubgate/health', null, { headers: API_HEADERS });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /application\/json/);
    const j = r.json();
    assert.equal(j.status, 'ok');
    assert.equal(j.config.hub_origin.replace(/\/$/, ''), s.hub.url);
    for (const secret of [s.secret, previous, 'hubgate-demo-secret', JSON.parse(signingKey).d]) {
      assert.ok(!r.text.includes(secret), 'a secret leaked into /_hubgate/health');
    }
    const walk = (v, path = '') => {
      if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
      else if (/secret|password|private/i.test(path)) assert.equal(typeof v === 'string' && v.length > 8, false, `${path} looks like a secret`);
    };
    walk(j);
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
    assert.equal(setCookieFor(r.setCookies, SESSION_COOKIE).length, 1);
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
    const chain = await follow(httpFetch, start, cookieJar(), { max: 10 });
    const cb = chain.find((c) => new URL(c.url).pathname === '/jh/hub/oauth_callback');
    assert.equal(cb?.status, 302, trail(chain));
    assert.equal(cb.location, `/jh/hub/login?next=${encodeURIComponent('/jh/hub/home')}`);
    // the fake hub knows no /jh/ prefix: it echoes /jh/hub/login with the identity
    const last = chain.at(-1);
    assert.equal(last.status, 200, trail(chain));
    assert.equal(last.json().path, '/jh/hub/login');
    assert.equal(last.json().headers['x-forwarded-user'], 'alice');
  });

  test('/_hubgate/health is also answered outside the base (200)', async () => {
    const r = await send(s.worker, '/_hubgate/health', null, { headers: API_HEADERS });
    assert.equal(r.status, 200);
    assert.equal(r.json().config.base_url, '/jh/');
  });
});
