// The `HUB` service binding: with it bound, the worker reaches the hub
// through the binding, not the network; HUB_ORIGIN only names the origin.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import { mintSession, randomSecret } from './support/oauth-helpers.mjs';

describe('HUB service binding', () => {
  let hub;
  let worker;
  const secret = randomSecret();
  const viaBinding = [];

  before(async () => {
    hub = await startHubEcho();
    worker = await startWorker({
      bindings: {
        // Not reachable on purpose: only the binding can deliver the request.
        HUB_ORIGIN: 'http://127.0.0.1:9',
        SESSION_SECRET: secret,
        OAUTH_CLIENT_ID: 'c',
        OAUTH_CLIENT_SECRET: 's',
        OAUTH2_AUTHORIZE_URL: 'http://127.0.0.1:9/a',
        OAUTH2_TOKEN_URL: 'http://127.0.0.1:9/t',
        OAUTH2_USERDATA_URL: 'http://127.0.0.1:9/u',
        ALLOW_ALL: 'true',
      },
      serviceBindings: {
        async HUB(request) {
          const u = new URL(request.url);
          viaBinding.push(`${request.method} ${u.pathname}`);
          const target = new URL(u.pathname + u.search, hub.url);
          const body = ['GET', 'HEAD'].includes(request.method) ? undefined : await request.arrayBuffer();
          return fetch(target, { method: request.method, headers: request.headers, body, redirect: 'manual' });
        },
      },
    });
  });

  after(async () => {
    await worker?.close();
    await hub?.close();
  });

  test('a proxied request with a session goes through the binding, with no identity attached', async () => {
    const cookie = `hubgate=${mintSession({ secret, origin: worker.url, sub: 'alice', groups: ['g1'] })}`;
    const r = await worker.fetch('/user/alice/api/status?x=1', { headers: { cookie, accept: 'application/json' } });
    assert.equal(r.status, 200);
    const echo = await r.json();
    assert.equal(echo.path, '/user/alice/api/status');
    assert.equal(echo.headers['x-forwarded-user'], undefined);
    assert.equal(echo.headers['x-forwarded-groups'], undefined);
    assert.deepEqual(viaBinding, ['GET /user/alice/api/status']);
  });

  test("the worker's own hub login (/hub/login with a session) goes through the binding with the identity (302)", async () => {
    const cookie = `hubgate=${mintSession({ secret, origin: worker.url, sub: 'alice', groups: ['g1'] })}`;
    const before = viaBinding.length;
    const r = await worker.fetch('/hub/login?next=%2Fuser%2Falice%2F', { headers: { cookie, accept: 'text/html' } });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), '/user/alice/');
    assert.equal(r.headers.getSetCookie().filter((c) => /^(jupyterhub-hub-login|jupyterhub-session-id|_xsrf)=[^;]/.test(c)).length, 3, r.headers.getSetCookie().join(' | '));
    assert.deepEqual(viaBinding.slice(before), ['GET /hub/login']);
    const login = hub.requestsTo('/hub/login').at(-1);
    assert.equal(login.headers['x-forwarded-user'], 'alice');
    assert.equal(login.headers['x-forwarded-groups'], 'g1');
    assert.equal(login.headers.cookie, undefined);
  });

  test('logout calls the hub through the binding, with no identity (200)', async () => {
    const cookie = `hubgate=${mintSession({ secret, origin: worker.url, sub: 'alice' })}; jupyterhub-session-id=abc`;
    const before = viaBinding.length;
    const r = await worker.fetch('/hub/logout', { headers: { cookie, accept: 'text/html' } });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    assert.deepEqual(viaBinding.slice(before), ['GET /hub/logout']);
    const call = hub.requestsTo('/hub/logout').at(-1);
    assert.equal(call.headers['x-forwarded-user'], undefined);
    assert.equal(call.headers.cookie, 'jupyterhub-session-id=abc');
  });

  test('a POST body streams through the binding', async () => {
    const cookie = `hubgate=${mintSession({ secret, origin: worker.url })}`;
    const r = await worker.fetch('/upload', { method: 'POST', headers: { cookie }, body: 'x'.repeat(100_000) });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).bytes, 100_000);
  });
});
