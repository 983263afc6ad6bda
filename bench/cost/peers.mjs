// Small, fast peers on 127.0.0.1 for bench/workerd-cost.mjs, each in this
// Node process, each counting the requests it gets by path:
//
//   startHub()       a trivial hub origin: GET <any>/hub/login answers 302 to
//                    `next` with three Set-Cookie headers (as
//                    tests/e2e/support/hub-echo.mjs does); everything else 200 "ok"
//   startIdp()       an OpenID provider: discovery, authorize (302 straight back
//                    with a code; the id_token is signed here, with the flow's
//                    nonce, so the token endpoint only looks it up), token (PKCE
//                    S256 and client_secret_basic checked), userinfo, JWKS
//   startPlatform()  an LTI 1.3 platform: its JWKS, and `sign(claims)` for the
//                    launch id_token (signed locally with jose, RS256)
//
// Key sets and discovery answer `Cache-Control: public, max-age=3600` (the
// worker clamps that to KEY_SET_MAX_AGE, 600 s by default).
import http from 'node:http';
import crypto from 'node:crypto';
import { SignJWT, generateKeyPair, exportJWK } from 'jose';
import { listen, closeServer } from '../../tests/e2e/support/ports.mjs';

const CACHEABLE = 'public, max-age=3600';

function counter() {
  const hits = Object.create(null);
  return {
    hits,
    hit(p) {
      hits[p] = (hits[p] ?? 0) + 1;
    },
    snapshot() {
      return { ...hits };
    },
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res, status, obj, headers = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function serve(handler) {
  const server = http.createServer((req, res) => {
    handler(req, res).catch((err) => {
      if (!res.headersSent) json(res, 500, { error: String(err?.message ?? err) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  return server;
}

/** The hub origin. `logins` counts GET …/hub/login; `withIdentity` those that carried X-Forwarded-User. */
export async function startHub() {
  const c = counter();
  let logins = 0;
  let withIdentity = 0;
  const server = serve(async (req, res) => {
    const url = new URL(req.url, 'http://hub.invalid');
    await readBody(req); // drain (POST bodies of the bare worker's pass-through)
    if (req.method === 'GET' && url.pathname.endsWith('/hub/login')) {
      c.hit('/hub/login');
      logins += 1;
      if (req.headers['x-forwarded-user']) withIdentity += 1;
      const user = encodeURIComponent(req.headers['x-forwarded-user'] ?? 'anonymous');
      res.writeHead(302, {
        location: url.searchParams.get('next') || '/hub/',
        'content-length': 0,
        'set-cookie': [
          `jupyterhub-hub-login=${user}.${crypto.randomBytes(8).toString('hex')}; HttpOnly; Path=/hub/; SameSite=Lax`,
          `jupyterhub-session-id=${crypto.randomBytes(16).toString('hex')}; HttpOnly; Path=/; SameSite=Lax`,
          `_xsrf=${crypto.randomBytes(16).toString('base64url')}; Path=/hub/; SameSite=Lax`,
        ],
      });
      return res.end();
    }
    c.hit('other');
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
    res.end('ok');
  });
  const port = await listen(server, 0);
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ ...c.snapshot(), logins, withIdentity }),
    close: () => closeServer(server),
  };
}

/** The OpenID provider. */
export async function startIdp({ clientId = 'bench-client', clientSecret = 'bench-secret' } = {}) {
  const c = counter();
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: `idp-${crypto.randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  const codes = new Map(); // code -> { idToken, claims, challenge, redirectUri }
  const tokens = new Map(); // access token -> claims
  let port;
  const issuer = () => `http://127.0.0.1:${port}`;
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
  const discovery = () => ({
    issuer: issuer(),
    authorization_endpoint: `${issuer()}/authorize`,
    token_endpoint: `${issuer()}/token`,
    userinfo_endpoint: `${issuer()}/userinfo`,
    jwks_uri: `${issuer()}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'profile', 'email'],
  });
  const server = serve(async (req, res) => {
    const url = new URL(req.url, issuer());
    c.hit(url.pathname);
    if (url.pathname === '/.well-known/openid-configuration') return json(res, 200, discovery(), { 'cache-control': CACHEABLE });
    if (url.pathname === '/jwks') return json(res, 200, { keys: [jwk] }, { 'cache-control': CACHEABLE });
    if (url.pathname === '/authorize') {
      const q = url.searchParams;
      if (q.get('client_id') !== clientId || q.get('code_challenge_method') !== 'S256' || !q.get('redirect_uri')) return json(res, 400, { error: 'invalid_request' });
      const user = q.get('login_hint') || 'alice';
      const now = Math.floor(Date.now() / 1000);
      const claims = { sub: `sub-${user}`, preferred_username: user, email: `${user}@example.edu`, name: user, groups: ['students'] };
      const idToken = await new SignJWT({ ...claims, iss: issuer(), aud: clientId, iat: now, exp: now + 300, nonce: q.get('nonce') })
        .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'JWT' })
        .sign(privateKey);
      const code = crypto.randomBytes(16).toString('hex');
      codes.set(code, { idToken, claims, challenge: q.get('code_challenge'), redirectUri: q.get('redirect_uri') });
      const back = new URL(q.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') ?? '');
      back.searchParams.set('iss', issuer());
      res.writeHead(302, { location: back.href, 'content-length': 0 });
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const entry = codes.get(form.get('code'));
      codes.delete(form.get('code'));
      const auth = req.headers.authorization;
      const clientOk = auth === basic || (form.get('client_id') === clientId && form.get('client_secret') === clientSecret);
      const verifier = form.get('code_verifier') ?? '';
      if (!entry || !clientOk || form.get('grant_type') !== 'authorization_code' || form.get('redirect_uri') !== entry.redirectUri) return json(res, 400, { error: 'invalid_grant' });
      if (crypto.createHash('sha256').update(verifier).digest('base64url') !== entry.challenge) return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE' });
      const accessToken = crypto.randomBytes(16).toString('hex');
      tokens.set(accessToken, entry.claims);
      return json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 300, scope: 'openid profile email', id_token: entry.idToken }, { 'cache-control': 'no-store' });
    }
    if (url.pathname === '/userinfo') {
      const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const claims = token && tokens.get(token);
      tokens.delete(token);
      if (!claims) return json(res, 401, { error: 'invalid_token' });
      return json(res, 200, claims, { 'cache-control': 'no-store' });
    }
    return json(res, 404, { error: 'not_found' });
  });
  port = await listen(server, 0);
  return {
    issuer: issuer(),
    clientId,
    clientSecret,
    counts: c.snapshot,
    close: () => closeServer(server),
  };
}

const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';

/** The LTI 1.3 platform. */
export async function startPlatform({ clientId = 'bench-tool', deploymentId = 'bench-dep' } = {}) {
  const c = counter();
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: `lms-${crypto.randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  const server = serve(async (req, res) => {
    const url = new URL(req.url, 'http://lms.invalid');
    c.hit(url.pathname);
    if (url.pathname === '/jwks') return json(res, 200, { keys: [jwk] }, { 'cache-control': CACHEABLE });
    return json(res, 404, { error: 'not_found' });
  });
  const port = await listen(server, 0);
  const issuer = `http://127.0.0.1:${port}`;
  return {
    issuer,
    clientId,
    deploymentId,
    authorizeUrl: `${issuer}/authorize`,
    jwksUrl: `${issuer}/jwks`,
    counts: c.snapshot,
    /** A launch id_token for the authorize request the worker redirected to. */
    sign({ nonce, user, target, roles = ['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'] }) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        iss: issuer,
        aud: clientId,
        azp: clientId,
        sub: `${user}-sub`,
        email: `${user}@example.edu`,
        name: user,
        iat: now,
        exp: now + 300,
        nonce,
        [`${LTI}deployment_id`]: deploymentId,
        [`${LTI}version`]: '1.3.0',
        [`${LTI}message_type`]: 'LtiResourceLinkRequest',
        [`${LTI}resource_link`]: { id: 'link-1', title: 'Notebook' },
        [`${LTI}target_link_uri`]: target,
        [`${LTI}roles`]: roles,
        [`${LTI}context`]: { id: 'course-1', label: 'C1', title: 'Course 1' },
      })
        .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'JWT' })
        .sign(privateKey);
    },
    close: () => closeServer(server),
  };
}
