// `[vars]` that are not strings: Workers hand a TOML boolean, number, array
// or table to the worker as a JSON value. The worker reads them as their
// JSON text, as `hubgate-check` does, so what the check accepts is what
// runs (before, an unquoted `AUTO_LOGIN = true` passed the check and was
// silently ignored by the worker).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runMiniflare, hubgateModule, DEFAULT_DURABLE_OBJECTS } from './support/worker.mjs';

/** The built worker with these vars beside a fixed base (any JSON values, as Workers hand them over). */
function withVars(vars) {
  return runMiniflare({
    ...hubgateModule(),
    compatibilityDate: '2025-09-01',
    kvNamespaces: ['JWKS_CACHE', 'NONCES'],
    durableObjects: structuredClone(DEFAULT_DURABLE_OBJECTS),
    bindings: {
      HUB_ORIGIN: 'http://127.0.0.1:9',
      SESSION_SECRET: 'vars-test-secret-0123456789abcdef-0123456789',
      OAUTH_CLIENT_ID: 'c',
      OAUTH_CLIENT_SECRET: 's',
      ...vars,
    },
  });
}

test('non-string vars (a boolean, a number, an array, an object) are read as the check CLI reads them', async () => {
  const w = await withVars({
    OAUTH2_AUTHORIZE_URL: 'http://127.0.0.1:9/authorize',
    OAUTH2_TOKEN_URL: 'http://127.0.0.1:9/token',
    OAUTH2_USERDATA_URL: 'http://127.0.0.1:9/me',
    AUTO_LOGIN: true,
    SESSION_MAX_AGE: 3600,
    ALLOWED_USERS: ['alice', 'bob'],
    OAUTH_EXTRA_AUTHORIZE_PARAMS: { prompt: 'login' },
  });
  try {
    const r = await w.fetch('/hub/login', { headers: { accept: 'text/html' } });
    assert.equal(r.status, 302, 'AUTO_LOGIN = true (a boolean) is honoured');
    assert.equal(r.headers.get('location'), '/hub/oauth_login');
    const start = await w.fetch('/hub/oauth_login');
    assert.equal(start.status, 302);
    const loc = new URL(start.headers.get('location'));
    assert.equal(loc.searchParams.get('prompt'), 'login', 'a table var is read as its JSON object');
    const flow = start.headers.getSetCookie().find((c) => c.startsWith('hubgate-oauth-'));
    assert.ok(flow, 'the flow cookie');
  } finally {
    await w.close();
  }
});

test('a var of the wrong shape is a configuration error, not ignored', async () => {
  const w = await withVars({
    OIDC_ISSUER: 'http://127.0.0.1:9',
    SESSION_MAX_AGE: 5,
  });
  try {
    const r = await w.fetch('/hub/login', { headers: { accept: 'application/json' } });
    assert.equal(r.status, 500);
    assert.ok(w.logs.some((l) => l.includes('SESSION_MAX_AGE')), w.logs.join('\n'));
  } finally {
    await w.close();
  }
});
