// The built worker in front of a REAL JupyterHub 6.1.1 (configurable-http-proxy,
// SimpleLocalProcessSpawner running jupyter_server + JupyterLab + ipykernel),
// with the demo OpenID provider, all on 127.0.0.1.
//
// Needs `bash scripts/build.sh` (build/), `bash scripts/setup-jupyterhub.sh`
// (.tools/jhvenv) and scripts/setup.sh's .tools/ltivenv (the LTI platform);
// a missing one fails the suite with the command to run.
// HUBGATE_E2E_VERBOSE=1 echoes the hub's and workerd's logs.
//
// Topology: browser (cookie jar) → worker 127.0.0.1:P → CHP 127.0.0.1:Q (the
// hub origin, HUB_ORIGIN) → hub / single-user servers. P ≠ Q, so the public
// origin and the hub origin differ, as when the worker sits on another host.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt } from 'jose';

import { startIdp } from './support/idp.mjs';
import { startWorker, cookieJar, oidcLogin, clearIdpSession, parseSetCookie } from './support/worker.mjs';
import { startJupyterHub } from './support/jupyterhub.mjs';
import { apiCall, spawnAndOpenLab, openKernelChannels, execute, browserFetch, navigate, KERNEL_WS_V1 } from './support/jupyter-client.mjs';
import { freePort } from './support/ports.mjs';
import { startLtiPlatform, ltiLaunch } from './support/lti-platform.mjs';

// A missing build or venv fails loudly (startWorker / startJupyterHub throw):
// npm test builds and runs scripts/setup-jupyterhub.sh first.

const LTI_PLATFORM = { name: 'moodle', clientId: 'hubgate-moodle', deploymentId: 'dep-moodle' };
const CLIENT_ID = 'hubgate-demo';
const CLIENT_SECRET = 'hubgate-demo-secret';
const trail = (chain) => chain.map((c) => `${c.status} ${c.method} ${c.url}${c.location ? ` -> ${c.location}` : ''}`).join('\n');
const pathOf = (u) => new URL(u).pathname;

async function signingKey(kid) {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { jwk: { ...jwk, kid }, privateKey };
}

/**
 * An assertion as the worker would mint it (a fresh `jti`, `login_path` the
 * hub's login), signed with `key` (the real one or an attacker's).
 */
function assertion(key, { iss, aud, sub, admin = false, groups = [], expSeconds = 60, iatOffset = 0, kid, jti = crypto.randomBytes(18).toString('base64url'), loginPath = '/hub/login' }) {
  const now = Math.floor(Date.now() / 1000) + iatOffset;
  return new SignJWT({ sub, groups, admin, method: 'oauth', login_path: loginPath })
    .setProtectedHeader({ alg: 'ES256', kid: kid ?? key.jwk.kid, typ: 'JWT' })
    .setIssuer(iss)
    .setAudience(aud)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(now + expSeconds)
    .sign(key.privateKey);
}

/**
 * Worker + IdP + hub. The hub's port is picked first so the worker can be
 * given HUB_ORIGIN, then the hub is started with the worker's origin as the
 * assertion issuer. `recordHub`: the worker reaches the hub through a `HUB`
 * service binding that records what the worker sends (plain HTTP only: no
 * WebSockets through it) in `stack.toHub`.
 */
async function startStack({ auth = 'hubgate', workerBindings = {}, name, lti = false, recordHub = false } = {}) {
  const stack = { closers: [] };
  try {
    stack.idp = await startIdp();
    stack.closers.push(() => stack.idp.close());
    const hubPort = await freePort();
    const hubOrigin = `http://127.0.0.1:${hubPort}`;
    const workerPort = await freePort();
    stack.key = await signingKey('e2e-es256-1');
    const ltiBindings = {};
    if (lti) {
      // an LMS (PyPI lti1p3platform) registered with the worker, next to the IdP
      stack.platform = await startLtiPlatform({ port: await freePort(), tool: `http://127.0.0.1:${workerPort}`, platforms: [LTI_PLATFORM] });
      stack.closers.push(() => stack.platform.close());
      const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      ltiBindings.LTI13_PLATFORMS = JSON.stringify([{ ...stack.platform.registration(LTI_PLATFORM.name), name: LTI_PLATFORM.name }]);
      ltiBindings.LTI13_PRIVATE_KEY = privateKey.export({ type: 'pkcs8', format: 'pem' });
    }
    stack.toHub = [];
    const serviceBindings = recordHub
      ? {
          async HUB(request) {
            const u = new URL(request.url);
            stack.toHub.push({ method: request.method, path: u.pathname, query: Object.fromEntries(u.searchParams), headers: Object.fromEntries(request.headers) });
            const body = ['GET', 'HEAD'].includes(request.method) ? undefined : await request.arrayBuffer();
            return fetch(new URL(u.pathname + u.search, hubOrigin), { method: request.method, headers: request.headers, body, redirect: 'manual' });
          },
        }
      : undefined;
    stack.worker = await startWorker({
      port: workerPort,
      serviceBindings,
      bindings: {
        ...ltiBindings,
        HUB_ORIGIN: hubOrigin,
        OIDC_ISSUER: stack.idp.issuer,
        OAUTH_CLIENT_ID: CLIENT_ID,
        OAUTH_CLIENT_SECRET: CLIENT_SECRET,
        OAUTH2_USERNAME_KEY: 'preferred_username',
        ALLOWED_USERS: 'alice,bob,carol',
        ADMIN_USERS: 'carol',
        SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
        ASSERTION_SIGNING_KEY: JSON.stringify(stack.key.jwk),
        ASSERTION_AUTH_STATE_CLAIMS: 'name,email_verified',
        LOGIN_SERVICE: 'Demo IdP',
        // These tests are about the hub's side of a logout; the provider's
        // side is tests/e2e/oidc-logout.test.mjs's.
        OIDC_LOGOUT_AT_PROVIDER: 'false',
        ...workerBindings,
      },
    });
    stack.closers.push(() => stack.worker.close());
    stack.idp.setRedirectUris(CLIENT_ID, [`${stack.worker.url}/hub/oauth_callback`]);
    stack.hub = await startJupyterHub({ port: hubPort, auth, issuer: stack.worker.url, name: name ?? auth });
    stack.closers.push(() => stack.hub.close());
    return stack;
  } catch (err) {
    await stopStack(stack);
    throw err;
  }
}

async function stopStack(stack) {
  for (const c of (stack?.closers ?? []).reverse()) {
    await c().catch((e) => console.error('[jupyterhub.test] close failed:', e));
  }
}

/** Log `user` in through the worker and the IdP (fresh IdP session); the chain must end in the hub. */
async function login(stack, user, jar, next = '/hub/home') {
  clearIdpSession(jar);
  const { chain, final } = await oidcLogin(stack.worker, stack.idp, user, jar, next);
  return { chain, final };
}

/** Who the hub thinks this browser is: GET /hub/api/user through the worker, as a page's fetch(). */
function apiHeaders(jar, url) {
  const h = { accept: 'application/json', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin', 'sec-fetch-dest': 'empty' };
  const xsrf = jar.get('_xsrf', url);
  if (xsrf) h['x-xsrftoken'] = decodeURIComponent(xsrf);
  const cookie = jar.header(url);
  if (cookie) h.cookie = cookie;
  return h;
}

async function hubWhoami(stack, jar) {
  const r = await apiCall(stack.worker.url, jar, 'GET', '/hub/api/user');
  return r;
}

describe('real JupyterHub behind the worker (hubgate authenticator)', () => {
  let s;
  const alice = cookieJar();
  let kernelId;

  before(async () => {
    s = await startStack({ lti: true });
    console.log(`stack: worker ${s.worker.url}, hub ${s.hub.url} (hub ready in ${s.hub.startupMs} ms), idp ${s.idp.issuer}`);
  });
  after(async () => {
    if (process.env.HUBGATE_E2E_VERBOSE === '1' && s?.hub) console.error(s.hub.tail(200));
    await stopStack(s);
  });

  test('an OIDC user logs in through the worker and lands in the hub as that user', async () => {
    const { chain, final } = await login(s, 'alice', alice, '/hub/home');
    assert.equal(final.status, 200, trail(chain));
    assert.equal(pathOf(final.url), '/hub/home', trail(chain));
    assert.match(final.text, /alice/);
    // the worker logged alice in at the hub itself: the callback goes straight
    // to /hub/home with the hub's cookies, the browser never visits /hub/login
    assert.ok(!chain.some((c) => pathOf(c.url) === '/hub/login'), trail(chain));
    const cb = chain.find((c) => pathOf(c.url) === '/hub/oauth_callback');
    assert.equal(cb?.status, 302, trail(chain));
    assert.equal(cb.location, '/hub/home');
    const me = await hubWhoami(s, alice);
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.name, 'alice');
    assert.equal(me.json.admin, false);
    // what the hub stored from the signed assertion
    const u = await s.hub.api('/users/alice');
    assert.equal(u.status, 200, u.text);
    assert.deepEqual(u.json.groups, ['students']);
    assert.equal(u.json.auth_state.method, 'oauth');
    assert.equal(u.json.auth_state.email, 'alice@example.edu');
    assert.deepEqual(u.json.auth_state.auth_state, { name: 'Alice Liddell', email_verified: true });
  });

  test("several Set-Cookie headers from the hub's login reach the browser apart, in the callback's answer", async () => {
    const jar = cookieJar();
    const { chain } = await login(s, 'bob', jar, '/hub/home');
    const hop = chain.find((c) => pathOf(c.url) === '/hub/oauth_callback' && c.status === 302);
    assert.ok(hop, trail(chain));
    const names = hop.setCookies.map((c) => parseSetCookie(c)?.name);
    for (const n of ['jupyterhub-hub-login', 'jupyterhub-session-id', '_xsrf']) {
      assert.ok(names.includes(n), `${n} missing from ${JSON.stringify(hop.setCookies)}`);
    }
    // each header is one cookie (no comma-joined fold)
    for (const c of hop.setCookies) {
      assert.equal(c.match(/(?:^|,\s*)[\w-]+=/g)?.length ?? 1, 1, `folded Set-Cookie: ${c}`);
    }
    assert.ok(jar.get('jupyterhub-hub-login'), 'hub login cookie kept');
    assert.ok(jar.get('jupyterhub-session-id'), 'hub session id kept');
    assert.ok(jar.get('_xsrf', `${s.worker.url}/hub/home`), 'hub _xsrf kept');
  });

  test('alice starts her server through the worker', async () => {
    const r = await spawnAndOpenLab(s.worker.url, alice, 'alice');
    console.log(`alice's server: spawned and JupyterLab served in ${r.ms} ms`);
    const end = r.chain.at(-1);
    assert.match(end.text, /JupyterLab|jupyter-config-data/);
    assert.ok(alice.get('jupyterhub-user-alice', `${s.worker.url}/user/alice/lab`), 'single-user OAuth cookie set');
    const u = await s.hub.api('/users/alice');
    assert.equal(u.json.servers[''].ready, true);
  });

  test('kernel over REST (_xsrf + X-XSRFToken + Sec-Fetch-*) and its WebSocket through the worker: 1 + 1 = 2', async () => {
    const created = await apiCall(s.worker.url, alice, 'POST', '/user/alice/api/kernels', { name: 'python3' });
    assert.equal(created.status, 201, `${created.status} ${created.text}`);
    kernelId = created.json.id;
    assert.match(kernelId, /^[0-9a-f-]{36}$/);

    const t0 = performance.now();
    const { ws, sessionId } = await openKernelChannels(s.worker.url, alice, 'alice', kernelId);
    const openMs = performance.now() - t0;
    try {
      // the first execute also waits for the fresh kernel; the second is the round trip
      const first = await execute(ws, sessionId, '1 + 1', { timeoutMs: 60_000 });
      assert.equal(first.result, '2', JSON.stringify(first));
      assert.equal(first.reply.status, 'ok');
      const times = [];
      for (let i = 0; i < 5; i += 1) {
        const r = await execute(ws, sessionId, '1 + 1');
        assert.equal(r.result, '2');
        times.push(r.ms);
      }
      times.sort((a, b) => a - b);
      // control: the same kernel, straight to the hub origin (no worker)
      const direct = await openKernelChannels(s.hub.url, alice, 'alice', kernelId, { headers: { origin: s.hub.url } });
      const dtimes = [];
      try {
        for (let i = 0; i < 5; i += 1) dtimes.push((await execute(direct.ws, direct.sessionId, '1 + 1')).ms);
      } finally {
        direct.ws.close();
      }
      dtimes.sort((a, b) => a - b);
      console.log(
        `kernel straight to the hub origin (control): 1 + 1 round trip median ${dtimes[2].toFixed(1)} ms ` +
          `(min ${dtimes[0].toFixed(1)}, max ${dtimes[4].toFixed(1)}, n=5)`,
      );
      console.log(
        `kernel through the worker: WebSocket open ${openMs.toFixed(1)} ms; ` +
          `first execute_result ${first.ms.toFixed(1)} ms; 1 + 1 round trip median ${times[2].toFixed(1)} ms ` +
          `(min ${times[0].toFixed(1)}, max ${times[4].toFixed(1)}, n=5) -> text/plain '2'`,
      );
    } finally {
      ws.close();
    }
  });
  test('the kernel WebSocket with the binary v1 protocol JupyterLab 4 asks for (Sec-WebSocket-Protocol) through the worker', async () => {
    const { ws, sessionId, protocol } = await openKernelChannels(s.worker.url, alice, 'alice', kernelId, { protocol: KERNEL_WS_V1 });
    try {
      assert.equal(protocol, KERNEL_WS_V1, 'the hub chose v1 and the worker passed its answer on');
      const r = await execute(ws, sessionId, '1 + 1');
      assert.equal(r.result, '2', JSON.stringify(r));
      const big = await execute(ws, sessionId, "print('x' * 200_000)");
      assert.equal(big.stream.trim().length, 200_000, 'a 200 kB stream message arrives whole');
    } finally {
      ws.close();
    }
  });

  test('a 4 MB file saved through the worker (PUT, streamed) reads back intact, compressed or not', async () => {
    const content = crypto.randomBytes(3 * 1024 * 1024).toString('base64'); // 4 MiB of text
    const sha = crypto.createHash('sha256').update(content).digest('hex');
    const t0 = performance.now();
    const put = await apiCall(s.worker.url, alice, 'PUT', '/user/alice/api/contents/hubgate-big.txt', { type: 'file', format: 'text', content });
    const putMs = performance.now() - t0;
    assert.ok([200, 201].includes(put.status), `${put.status} ${put.text.slice(0, 300)}`);
    assert.equal(put.json.size, content.length);
    const back = await apiCall(s.worker.url, alice, 'GET', '/user/alice/api/contents/hubgate-big.txt?type=file&format=text&content=1');
    assert.equal(back.status, 200);
    assert.equal(crypto.createHash('sha256').update(back.json.content).digest('hex'), sha);
    // the raw file, asking for gzip as a browser does: same bytes through the worker as straight from the hub
    const encodings = {};
    for (const [label, base] of [['worker', s.worker.url], ['hub', s.hub.url]]) {
      const url = new URL('/user/alice/files/hubgate-big.txt', base);
      const r = await browserFetch(url, { headers: { ...apiHeaders(alice, url), origin: base, 'accept-encoding': 'gzip, deflate, br' } });
      const body = await r.text();
      assert.equal(r.status, 200, `${label}: ${r.status}`);
      assert.equal(crypto.createHash('sha256').update(body).digest('hex'), sha, `${label}: body differs`);
      encodings[label] = r.headers.get('content-encoding') ?? 'identity';
    }
    console.log(`4 MiB PUT through the worker in ${putMs.toFixed(0)} ms; download Content-Encoding via worker: ${encodings.worker}, direct: ${encodings.hub}`);
  });

  test('Origin rewrite: the hub origin is another origin than the worker, and jupyter_server accepts the rewritten one', async () => {
    assert.notEqual(new URL(s.worker.url).origin, new URL(s.hub.url).origin, 'different ports = different origins');
    // Control, straight to the hub origin with the *public* Origin a browser sends:
    // jupyter_server compares Origin with Host and refuses the kernel REST call (404).
    const directUrl = new URL('/user/alice/api/kernels', s.hub.url);
    const refused = await browserFetch(directUrl, {
      method: 'POST',
      headers: { ...apiHeaders(alice, directUrl), origin: s.worker.url, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'python3' }),
    });
    assert.equal(refused.status, 404, `direct cross-origin kernel POST: ${refused.status} ${await refused.text()}`);
    // Through the worker the same Origin is rewritten to the hub origin: accepted.
    const created = await apiCall(s.worker.url, alice, 'POST', '/user/alice/api/kernels', { name: 'python3' });
    assert.equal(created.status, 201, created.text);
    const del = await apiCall(s.worker.url, alice, 'DELETE', `/user/alice/api/kernels/${created.json.id}`);
    assert.equal(del.status, 204, del.text);

    // WebSocket. Tornado 6.6 skips its Origin check when the browser says
    // `Sec-Fetch-Site: same-origin` (which the worker passes through), so the
    // rewrite matters for clients that send no Sec-Fetch-Site (older browsers,
    // plain-http hosts): without it, refused straight at the hub origin ...
    const noSfs = { 'sec-fetch-site': undefined, 'sec-fetch-mode': undefined, 'sec-fetch-dest': undefined };
    await assert.rejects(
      openKernelChannels(s.hub.url, alice, 'alice', kernelId, { headers: { ...noSfs, origin: s.worker.url } }),
      (e) => e.status === 403,
      'direct WebSocket with the public Origin and no Sec-Fetch-Site must be refused',
    );
    // ... and accepted through the worker, which rewrites Origin to the hub origin.
    const viaWorker = await openKernelChannels(s.worker.url, alice, 'alice', kernelId, { headers: noSfs });
    const r = await execute(viaWorker.ws, viaWorker.sessionId, '1 + 1');
    assert.equal(r.result, '2');
    viaWorker.ws.close();

    // A foreign Origin is passed on unchanged, and jupyter_server refuses it.
    const foreign = await apiCall(s.worker.url, alice, 'POST', '/user/alice/api/kernels', { name: 'python3' }, { origin: 'http://127.0.0.2:1', 'sec-fetch-site': 'cross-site' });
    assert.equal(foreign.status, 404, `foreign Origin through the worker: ${foreign.status}`);
    await assert.rejects(
      openKernelChannels(s.worker.url, alice, 'alice', kernelId, { headers: { origin: 'http://127.0.0.2:1', 'sec-fetch-site': 'cross-site' } }),
      (e) => e.status === 403,
      'cross-site WebSocket through the worker must be refused',
    );
  });

  test('an admin from ADMIN_USERS sees /hub/admin and the admin API; a non-admin does not', async () => {
    const carol = cookieJar();
    const { final, chain } = await login(s, 'carol', carol, '/hub/admin');
    assert.equal(final.status, 200, trail(chain));
    assert.equal(pathOf(final.url), '/hub/admin');
    const page = await navigate(`${s.worker.url}/hub/admin`, carol);
    assert.equal(page.at(-1).status, 200, trail(page));
    assert.match(page.at(-1).text, /admin/i);
    const users = await apiCall(s.worker.url, carol, 'GET', '/hub/api/users');
    assert.equal(users.status, 200, users.text);
    assert.ok(users.json.some((u) => u.name === 'alice'));
    assert.equal(users.json.find((u) => u.name === 'carol').admin, true);
    // alice is not an admin
    const denied = await navigate(`${s.worker.url}/hub/admin`, alice);
    assert.equal(denied.at(-1).status, 403, trail(denied));
    const deniedApi = await apiCall(s.worker.url, alice, 'GET', '/hub/api/users');
    assert.equal(deniedApi.status, 403);
  });

  test('a hub API token in `Authorization: token …` reaches the hub API through the worker without a worker session', async () => {
    const made = await s.hub.api('/users/alice/tokens', { method: 'POST', body: JSON.stringify({ note: 'e2e', expires_in: 600 }) });
    assert.equal(made.status, 201, made.text);
    const token = made.json.token;
    const me = await s.worker.fetch('/hub/api/user', { headers: { authorization: `token ${token}`, accept: 'application/json' } });
    assert.equal(me.status, 200, await me.clone().text());
    assert.equal((await me.json()).name, 'alice');
    assert.equal(me.headers.getSetCookie().length, 0, 'no worker session was created');
    // and the single-user server's API
    const status = await s.worker.fetch('/user/alice/api/status', { headers: { authorization: `token ${token}` } });
    assert.equal(status.status, 200, await status.text());
    // a bad token is the hub's to refuse (its 403, not the worker's 401)
    const bad = await s.worker.fetch('/hub/api/user', { headers: { authorization: 'token not-a-real-token', accept: 'application/json' } });
    assert.equal(bad.status, 403, await bad.text());
    // no token, no session: the worker's 401, and nothing reaches the hub
    const before = s.hub.proxiedRequests().length;
    const none = await s.worker.fetch('/hub/api/user', { headers: { accept: 'application/json' } });
    assert.equal(none.status, 401);
    await none.arrayBuffer();
    assert.equal(s.hub.proxiedRequests().length, before);
  });

  test('a user who is not allowed (mallory) gets 403 from the worker and the hub never sees a request for them', async () => {
    const jar = cookieJar();
    const before = s.hub.proxiedRequests().length;
    const { final, chain } = await login(s, 'mallory', jar, '/hub/home');
    assert.equal(final.status, 403, trail(chain));
    assert.ok(chain.every((c) => new URL(c.url).origin !== new URL(s.hub.url).origin));
    assert.equal(jar.get('hubgate'), undefined, 'no worker session');
    assert.equal(jar.get('jupyterhub-hub-login'), undefined, 'no hub session');
    // even with a follow-up navigation to the hub
    const again = await navigate(`${s.worker.url}/hub/home`, jar, { max: 1 }).catch((e) => e.chain);
    assert.notEqual(again[0].status, 200);
    await new Promise((r) => setTimeout(r, 200)); // let the proxy's log lines arrive
    assert.deepEqual(s.hub.proxiedRequests().slice(before), [], 'the hub origin got no request');
    assert.ok(!s.hub.logs.some((l) => /mallory/.test(l)), 'mallory never appears in the hub log');
    const u = await s.hub.api('/users/mallory');
    assert.equal(u.status, 404);
  });

  test('a forged X-Forwarded-User or a forged/expired X-Hubgate-Assertion from the client never logs anyone in', async () => {
    const attacker = await signingKey(s.key.jwk.kid); // same kid, another key
    const iss = s.worker.url;
    const aud = s.hub.url;
    const forgedReal = await assertion(s.key, { iss, aud, sub: 'eve', admin: true }); // would verify at the hub
    const forgedAttacker = await assertion(attacker, { iss, aud, sub: 'eve', admin: true });
    const expired = await assertion(s.key, { iss, aud, sub: 'eve', iatOffset: -600, expSeconds: 60 });
    const smuggle = (tok) => ({
      'x-forwarded-user': 'eve',
      'X_Forwarded_User': 'eve',
      'x-forwarded-admin': 'true',
      'x-hubgate-assertion': tok,
      'X_Hubgate_Assertion': tok,
    });

    // 1. through the worker, no session: /hub/login is the worker's own page; nothing reaches the hub
    const before = s.hub.proxiedRequests().length;
    for (const tok of [forgedReal, forgedAttacker, expired]) {
      const jar = cookieJar();
      const r = await navigate(`${s.worker.url}/hub/login?next=%2Fhub%2Fhome`, jar, { headers: smuggle(tok), max: 1 }).catch((e) => e.chain);
      assert.notEqual(r[0].status, 302, 'no redirect into the hub');
      assert.equal(jar.get('jupyterhub-hub-login'), undefined);
      const api = await s.worker.fetch('/hub/api/user', { headers: { ...smuggle(tok), accept: 'application/json' } });
      assert.equal(api.status, 401);
      await api.arrayBuffer();
    }
    // with an Authorization header the request does reach the hub, stripped of the smuggled identity
    const withAuth = await s.worker.fetch('/hub/api/user', { headers: { ...smuggle(forgedReal), authorization: 'token nope', accept: 'application/json' } });
    assert.equal(withAuth.status, 403, await withAuth.text());

    // 2. through the worker with bob's session: the hub logs in bob, not eve
    const bob = cookieJar();
    await login(s, 'bob', bob, '/hub/home');
    for (const tok of [forgedReal, forgedAttacker, expired]) {
      const r = await navigate(`${s.worker.url}/hub/login?next=%2Fhub%2Fhome`, bob, { headers: smuggle(tok) });
      assert.equal(r.at(-1).status, 200, trail(r));
      const me = await hubWhoami(s, bob);
      assert.equal(me.json?.name, 'bob', me.text);
      assert.equal(me.json.admin, false);
    }

    // 3. straight to the hub origin (not through the worker): the authenticator refuses them
    for (const [what, headers] of [
      ['forged assertion (attacker key)', { 'x-hubgate-assertion': forgedAttacker }],
      ['expired assertion (worker key)', { 'x-hubgate-assertion': expired }],
      ['wrong audience (worker key)', { 'x-hubgate-assertion': await assertion(s.key, { iss, aud: 'http://127.0.0.1:1', sub: 'eve' }) }],
      ['X-Forwarded-User only', { 'x-forwarded-user': 'eve' }],
    ]) {
      const r = await browserFetch(`${s.hub.url}/hub/login?next=%2Fhub%2Fhome`, { headers: { ...headers, 'sec-fetch-mode': 'navigate' } });
      assert.equal(r.status, 401, `${what}: ${r.status}`);
      assert.ok(!r.headers.getSetCookie().some((c) => c.startsWith('jupyterhub-hub-login=')), what);
    }
    const eve = await s.hub.api('/users/eve');
    assert.equal(eve.status, 404, 'nobody called eve was ever created');
    assert.ok(s.hub.proxiedRequests().length > before); // (the hub did see the direct requests above)
  });

  test('logout ends the worker session and the hub session, and does not bounce back into /hub/login', async () => {
    const userCookie = alice.get('jupyterhub-user-alice', `${s.worker.url}/user/alice/`);
    assert.ok(userCookie, 'alice has a single-user server cookie');
    assert.equal((await apiCall(s.worker.url, alice, 'GET', '/user/alice/api/status')).status, 200);

    const out = await navigate(`${s.worker.url}/hub/logout`, alice, { max: 3 });
    const first = out[0];
    assert.equal(out.length, 1, `logout must not redirect: ${trail(out)}`);
    assert.equal(first.status, 200);
    assert.match(first.text, /signed out/i);
    assert.ok(!first.location, 'no Location');
    const cleared = first.setCookies.map((c) => parseSetCookie(c)).filter((c) => c.attrs['max-age'] === '0' || c.value === '' || c.value === '""');
    for (const n of ['hubgate', 'jupyterhub-hub-login', 'jupyterhub-session-id']) {
      assert.ok(cleared.some((c) => c.name === n), `${n} cleared: ${JSON.stringify(first.setCookies)}`);
    }
    assert.equal(alice.get('hubgate'), undefined);
    assert.equal(alice.get('jupyterhub-hub-login'), undefined);
    assert.equal(alice.get('jupyterhub-session-id'), undefined);

    // a later visit to /hub/home goes to the worker's login, not into the hub
    const later = await navigate(`${s.worker.url}/hub/home`, alice, { max: 1 }).catch((e) => e.chain);
    assert.equal(later[0].status, 302);
    assert.match(later[0].location, /^\/hub\/login\?next=%2Fhub%2Fhome/);
    const loginPage = await navigate(new URL(later[0].location, s.worker.url), alice, { max: 1 }).catch((e) => e.chain);
    assert.equal(loginPage[0].status, 200);
    assert.match(loginPage[0].text, /Sign in/);
    const api = await apiCall(s.worker.url, alice, 'GET', '/hub/api/user');
    assert.equal(api.status, 401);

    // the hub revoked the session's tokens: the old single-user cookie is dead,
    // even sent straight to the hub origin
    const replay = await browserFetch(`${s.hub.url}/user/alice/api/status`, {
      headers: { cookie: `jupyterhub-user-alice=${userCookie}`, 'sec-fetch-mode': 'navigate' },
    });
    assert.notEqual(replay.status, 200, 'revoked single-user cookie');
    await replay.arrayBuffer();
  });

  test('switching users in one browser: bob logs out, alice logs in, the hub shows alice', async () => {
    const jar = cookieJar();
    const b = await login(s, 'bob', jar, '/hub/home');
    assert.equal(b.final.status, 200, trail(b.chain));
    assert.equal((await hubWhoami(s, jar)).json.name, 'bob');
    const out = await navigate(`${s.worker.url}/hub/logout`, jar, { max: 1 });
    assert.equal(out[0].status, 200);

    const a = await login(s, 'alice', jar, '/hub/home');
    assert.equal(a.final.status, 200, trail(a.chain));
    assert.equal(pathOf(a.final.url), '/hub/home');
    assert.match(a.final.text, /alice/);
    assert.doesNotMatch(a.final.text, /\bbob\b/);
    assert.equal((await hubWhoami(s, jar)).json.name, 'alice');

    // alice opens her server in this browser (its OAuth cookie, path /user/alice/)
    await spawnAndOpenLab(s.worker.url, jar, 'alice');
    assert.ok(jar.get('jupyterhub-user-alice', `${s.worker.url}/user/alice/`));
    assert.equal((await apiCall(s.worker.url, jar, 'GET', '/user/alice/api/status')).status, 200);

    // and without a logout in between: alice -> bob in the same browser
    const b2 = await login(s, 'bob', jar, '/hub/home');
    assert.equal(b2.final.status, 200, trail(b2.chain));
    const me = await hubWhoami(s, jar);
    assert.equal(me.json.name, 'bob');
    assert.equal(me.json.admin, false);
    // bob must not reach alice's server with what alice left in the browser
    const status = await apiCall(s.worker.url, jar, 'GET', '/user/alice/api/status');
    assert.notEqual(status.status, 200, `bob reached alice's server: ${status.status} ${status.text}`);
    const lab = await navigate(`${s.worker.url}/user/alice/lab`, jar, { max: 8 }).catch((e) => e.chain);
    assert.notEqual(lab.at(-1).status === 200 && pathOf(lab.at(-1).url) === '/user/alice/lab', true, `bob opened alice's JupyterLab:\n${trail(lab)}`);
  });
  test('an LTI 1.3 launch from the LMS lands in the hub as the LTI user, with admin from the role and groups from the course', async () => {
    const jar = cookieJar();
    const student = await ltiLaunch(s.platform, LTI_PLATFORM.name, jar, { user: 'student1', roles: 'Learner', max: 15 });
    assert.equal(student.launch.status, 302, student.launch.text);
    assert.equal(student.launch.location, '/hub/', 'the launch goes straight to its target');
    assert.equal(student.final.status, 200, trail(student.chain));
    assert.ok(!student.chain.some((c) => pathOf(c.url) === '/hub/login'), trail(student.chain));
    // OAuth and LTI are both configured: the LTI username carries the platform's name
    const me = await hubWhoami(s, jar);
    assert.equal(me.json.name, 'moodle:student1@example.edu', me.text);
    assert.equal(me.json.admin, false);
    const u = await s.hub.api(`/users/${encodeURIComponent('moodle:student1@example.edu')}`);
    assert.equal(u.status, 200, u.text);
    assert.deepEqual([...u.json.groups].sort(), ['lti:moodle:DS101', 'lti:moodle:course-101']);
    assert.equal(u.json.auth_state.method, 'lti');

    // an instructor launch in the same browser switches the hub to the instructor, as an admin
    const teacher = await ltiLaunch(s.platform, LTI_PLATFORM.name, jar, { user: 'teacher', roles: 'Instructor', max: 15 });
    assert.equal(teacher.final.status, 200, trail(teacher.chain));
    const t = await hubWhoami(s, jar);
    assert.equal(t.json.name, 'moodle:teacher@example.edu');
    assert.equal(t.json.admin, true);
  });
});

describe('real JupyterHub with jhub-remote-user-authenticator (X-Forwarded-User)', () => {
  let s;
  before(async () => {
    s = await startStack({ auth: 'remote-user' });
  });
  after(() => stopStack(s));

  test('remote-user: login through the worker lands in the hub as that user; a smuggled X-Forwarded-User does not switch it', async () => {
    const jar = cookieJar();
    const { final, chain } = await login(s, 'alice', jar, '/hub/home');
    assert.equal(final.status, 200, trail(chain));
    assert.equal(pathOf(final.url), '/hub/home');
    assert.match(final.text, /alice/);
    assert.equal((await hubWhoami(s, jar)).json.name, 'alice');

    // the client's own X-Forwarded-User (any spelling) is replaced by the worker's
    const r = await navigate(`${s.worker.url}/hub/login?next=%2Fhub%2Fhome`, jar, {
      headers: { 'x-forwarded-user': 'carol', X_Forwarded_User: 'carol' },
    });
    assert.equal(r.at(-1).status, 200, trail(r));
    assert.equal((await hubWhoami(s, jar)).json.name, 'alice');

    // without a session nothing reaches the hub's /hub/login
    const anon = cookieJar();
    const before = s.hub.proxiedRequests().length;
    const x = await navigate(`${s.worker.url}/hub/login`, anon, { headers: { 'x-forwarded-user': 'carol' }, max: 1 }).catch((e) => e.chain);
    assert.notEqual(x[0].status, 302);
    assert.equal(anon.get('jupyterhub-hub-login'), undefined);
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(s.hub.proxiedRequests().slice(before), []);
    assert.equal((await s.hub.api('/users/carol')).status, 404);
  });
});

describe('real JupyterHub: the assertion the worker sends is single-use (HUB service binding recording it)', () => {
  let s;
  before(async () => {
    s = await startStack({ recordHub: true, name: 'replay' });
  });
  after(() => stopStack(s));

  test('an assertion captured on the hub login and replayed at the real hub is refused (401)', async () => {
    const jar = cookieJar();
    const { chain, final } = await login(s, 'alice', jar, '/hub/home');
    assert.equal(final.status, 200, trail(chain));
    assert.equal((await hubWhoami(s, jar)).json?.name, 'alice');
    const logins = s.toHub.filter((r) => r.path === '/hub/login');
    assert.equal(logins.length, 1, JSON.stringify(s.toHub.map((r) => r.path)));
    const captured = logins[0].headers['x-hubgate-assertion'];
    assert.ok(captured, 'the worker sent its assertion');
    assert.equal(logins[0].headers.cookie, undefined, 'no browser cookie on the login subrequest');
    // only the login subrequest carried it
    assert.deepEqual(s.toHub.filter((r) => r.headers['x-hubgate-assertion'] || r.headers['x-forwarded-user']).map((r) => r.path), ['/hub/login']);
    const claims = decodeJwt(captured);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.iss, s.worker.url);
    assert.equal(claims.aud, s.hub.url);
    assert.equal(claims.login_path, '/hub/login');
    assert.match(claims.jti, /^[A-Za-z0-9_-]{16,}$/);
    assert.ok(claims.exp - claims.iat <= 60);

    // replayed straight at the hub's login (within its 60 s): refused, no hub session
    const replay = await browserFetch(`${s.hub.url}/hub/login?next=%2Fhub%2Fhome`, { headers: { 'x-hubgate-assertion': captured, 'sec-fetch-mode': 'navigate' } });
    assert.equal(replay.status, 401, `replayed assertion: ${replay.status}`);
    assert.ok(!replay.headers.getSetCookie().some((c) => c.startsWith('jupyterhub-hub-login=')), 'no hub session from a replay');
    await replay.arrayBuffer();
    // nor does it mint an API token at the token API (the assertion is good at the login path only)
    const token = await browserFetch(`${s.hub.url}/hub/api/users/alice/tokens`, {
      method: 'POST',
      headers: { 'x-hubgate-assertion': captured, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'replay' }),
    });
    assert.equal(token.status, 403, `token API with a captured assertion: ${token.status}`);
    await token.arrayBuffer();

    // control: the same claims with a fresh jti, signed with the worker's key, are accepted (302),
    // so the refusal above is the single-use rule, not something else about the token
    const fresh = await assertion(s.key, { iss: s.worker.url, aud: s.hub.url, sub: 'alice', groups: ['students'] });
    const ok = await browserFetch(`${s.hub.url}/hub/login?next=%2Fhub%2Fhome`, { headers: { 'x-hubgate-assertion': fresh, 'sec-fetch-mode': 'navigate' } });
    assert.equal(ok.status, 302, `fresh assertion: ${ok.status}`);
    await ok.arrayBuffer();
    // and /hub/login through the worker with alice's session sends another, new one
    const again = await navigate(`${s.worker.url}/hub/login?next=%2Fhub%2Fhome`, jar);
    assert.equal(again.at(-1).status, 200, trail(again));
    const second = s.toHub.filter((r) => r.path === '/hub/login').at(-1).headers['x-hubgate-assertion'];
    assert.notEqual(decodeJwt(second).jti, claims.jti);
  });
});
