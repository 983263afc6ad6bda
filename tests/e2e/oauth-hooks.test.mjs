// OAuthenticator's "writing your own" hooks as bindings, through the built
// worker in workerd against a plain OAuth 2.0 stand-in on 127.0.0.1 that
// records what it is sent: extra token parameters, client authentication
// in the body, the user-data request by POST with parameters and the token
// in the URL, a username from a dotted claim path, auth_state under
// USER_AUTH_STATE_KEY.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startWorker, cookieJar, follow } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import { listen, closeServer } from './support/ports.mjs';
import { httpFetch, hubLogins, verifySession, randomSecret, SESSION_COOKIE, trail } from './support/oauth-helpers.mjs';

const SECRET = randomSecret();

/** A plain OAuth 2.0 provider: authorize redirects straight back with a code. */
async function startPlainIdp() {
  const seen = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://idp.invalid');
    let body = '';
    for await (const chunk of req) body += chunk;
    seen.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body });
    const json = (status, v) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
    if (url.pathname === '/authorize') {
      const back = new URL(url.searchParams.get('redirect_uri'));
      back.searchParams.set('code', 'the-code');
      back.searchParams.set('state', url.searchParams.get('state'));
      return res.writeHead(302, { location: back.href }).end();
    }
    if (url.pathname === '/token' && req.method === 'POST') return json(200, { access_token: 'tok-123', token_type: 'Bearer' });
    if (url.pathname === '/me') {
      const token = url.searchParams.get('access_token');
      if (token !== 'tok-123') return json(401, { error: 'no token in the URL' });
      return json(200, { data: { user: { name: 'Alice' } }, dept: 'cs' });
    }
    return json(404, { error: 'not found' });
  });
  const port = await listen(server, 0);
  return { url: `http://127.0.0.1:${port}`, seen, close: () => closeServer(server) };
}

describe('the hooks as bindings, end to end in workerd', () => {
  let idp;
  let hub;
  let worker;
  before(async () => {
    idp = await startPlainIdp();
    hub = await startHubEcho();
    worker = await startWorker({
      bindings: {
        HUB_ORIGIN: hub.url,
        SESSION_SECRET: SECRET,
        OAUTH_CLIENT_ID: 'hooks-client',
        OAUTH_CLIENT_SECRET: 'hooks-secret',
        OAUTH2_AUTHORIZE_URL: `${idp.url}/authorize`,
        OAUTH2_TOKEN_URL: `${idp.url}/token`,
        OAUTH2_USERDATA_URL: `${idp.url}/me`,
        OAUTH_BASIC_AUTH: 'false',
        OAUTH_TOKEN_PARAMS: JSON.stringify({ audience: 'jupyterhub', resource: 7 }),
        OAUTH2_USERDATA_METHOD: 'POST',
        OAUTH2_USERDATA_PARAMS: JSON.stringify({ fields: 'name,dept' }),
        OAUTH2_USERDATA_TOKEN_METHOD: 'url',
        OAUTH2_USERNAME_KEY: 'data.user.name',
        USER_AUTH_STATE_KEY: 'user',
        ASSERTION_AUTH_STATE_CLAIMS: 'dept',
        ALLOWED_USERS: 'alice',
      },
    });
  });
  after(async () => {
    await worker?.close();
    await hub?.close();
    await idp?.close();
  });

  test('token parameters and client authentication in the body; user data by POST with its parameters and the token in the URL; username from a dotted path; auth_state under USER_AUTH_STATE_KEY', async () => {
    const jar = cookieJar();
    const hubMark = hub.requests.length;
    const chain = await follow(httpFetch, new URL('/hub/oauth_login?next=%2Fhub%2Fhome', worker.url), jar, { max: 10 });
    const final = chain.at(-1);
    assert.equal(final.status, 200, trail(chain));

    const token = idp.seen.find((r) => r.path === '/token');
    const form = new URLSearchParams(token.body);
    assert.equal(form.get('grant_type'), 'authorization_code');
    assert.equal(form.get('audience'), 'jupyterhub');
    assert.equal(form.get('resource'), '7');
    assert.equal(form.get('client_id'), 'hooks-client');
    assert.equal(form.get('client_secret'), 'hooks-secret', 'OAUTH_BASIC_AUTH=false: the secret in the body');
    assert.equal(token.headers.authorization, undefined);

    const me = idp.seen.find((r) => r.path === '/me');
    assert.equal(me.method, 'POST');
    assert.equal(me.query.access_token, 'tok-123');
    assert.equal(me.headers.authorization, undefined, 'the token is in the URL only');
    assert.equal(me.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(new URLSearchParams(me.body).get('fields'), 'name,dept');

    const logins = hubLogins(hub, hubMark);
    assert.equal(logins.length, 1);
    assert.equal(logins[0].headers['x-forwarded-user'], 'alice', 'the username from data.user.name, lower-cased');
    const claims = verifySession(jar.get(SESSION_COOKIE), SECRET);
    assert.deepEqual(claims.auth_state, { user: { dept: 'cs' } });
  });

  test('a token parameter that would change the grant is a configuration error (500, logged), never sent', async () => {
    const bad = await startWorker({
      bindings: {
        HUB_ORIGIN: hub.url,
        SESSION_SECRET: SECRET,
        OAUTH_CLIENT_ID: 'c',
        OAUTH_CLIENT_SECRET: 's',
        OAUTH2_AUTHORIZE_URL: `${idp.url}/authorize`,
        OAUTH2_TOKEN_URL: `${idp.url}/token`,
        OAUTH2_USERDATA_URL: `${idp.url}/me`,
        OAUTH_TOKEN_PARAMS: JSON.stringify({ grant_type: 'password' }),
        ALLOW_ALL: 'true',
      },
    });
    try {
      const before = idp.seen.length;
      const r = await bad.fetch('/hub/oauth_login', { headers: { accept: 'application/json' } });
      assert.equal(r.status, 500);
      assert.ok(bad.logs.some((l) => l.includes('OAUTH_TOKEN_PARAMS') && l.includes('grant_type')), bad.logs.join('\n'));
      assert.equal(idp.seen.length, before, 'nothing was sent to the provider');
    } finally {
      await bad.close();
    }
  });
});
