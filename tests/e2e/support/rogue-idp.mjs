// A tiny hand-written OpenID provider (node:http + jose) whose token endpoint
// hands out an id_token built per *scenario*, so tests can feed the worker bad
// tokens. Everything around the token is honest: discovery, JWKS, /authorize
// (redirects straight back with a code, no login step), PKCE S256 and client
// authentication at /token, /userinfo.
//
//   const rogue = await startRogueIdp({ scenario: 'good' });
//   rogue.setScenario('alg-none');   // the next token response carries an unsigned id_token
//
// Scenarios (SCENARIOS lists them with a description):
//   token:     good, wrong-aud, multi-aud-no-azp, wrong-azp, wrong-iss, wrong-nonce,
//              missing-nonce, alg-none, unknown-kid, hs256-confusion, hs256-client-secret,
//              bad-signature, expired, iat-future, missing-sub
//   response:  error-200, token-500, no-id-token, token-not-json
//   elsewhere: userinfo-sub-mismatch, userinfo-500, authorize-error, wrong-auth-iss,
//              jwks-down, discovery-wrong-issuer
import http from 'node:http';
import crypto from 'node:crypto';
import { SignJWT, generateKeyPair, exportJWK, exportSPKI, base64url } from 'jose';
import { listen, closeServer } from './ports.mjs';
import { DEMO_USERS } from './users.mjs';

export const SCENARIOS = Object.freeze({
  good: 'a valid RS256 id_token for the current user',
  'wrong-aud': 'aud is another client',
  'multi-aud-no-azp': 'aud lists the client and another audience, no azp',
  'wrong-azp': 'azp names another client',
  'wrong-iss': 'iss is another issuer',
  'wrong-nonce': 'nonce differs from the one sent to /authorize',
  'missing-nonce': 'no nonce claim',
  'alg-none': 'header alg "none", empty signature',
  'unknown-kid': 'signed by a key that is not in the JWKS (kid "rogue-unknown")',
  'hs256-confusion': "HS256 with the RSA public key's PEM text as the HMAC secret, kid of the real key",
  'hs256-client-secret': 'HS256 with the client secret as the HMAC secret',
  'bad-signature': 'valid token with one signature byte flipped',
  expired: 'exp an hour ago',
  'iat-future': 'iat an hour from now',
  'missing-sub': 'no sub claim',
  'error-200': 'HTTP 200 with an error field (and otherwise valid tokens)',
  'token-500': 'token endpoint answers 500',
  'no-id-token': 'token response without id_token',
  'token-not-json': 'token endpoint answers 200 text/html',
  'userinfo-sub-mismatch': "userinfo's sub differs from the id_token's",
  'userinfo-500': 'userinfo answers 500',
  'authorize-error': 'authorize redirects back with error=access_denied',
  'wrong-auth-iss': 'authorization response carries another iss parameter (mix-up)',
  'jwks-down': 'JWKS endpoint answers 503',
  'discovery-wrong-issuer': "discovery document's issuer differs from the URL it was fetched from",
});

function makeStats() {
  const requests = Object.create(null);
  return {
    requests,
    total: 0,
    authorize: [], // query params of each /authorize request
    token: [], // { auth: 'basic'|'post'|'none', params } of each /token request
    hit(path) {
      requests[path] = (requests[path] ?? 0) + 1;
      this.total += 1;
    },
    count(path) {
      return requests[path] ?? 0;
    },
    reset() {
      for (const k of Object.keys(requests)) delete requests[k];
      this.total = 0;
      this.authorize.length = 0;
      this.token.length = 0;
    },
  };
}

const json = (res, status, obj, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(obj));
};

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const b64 = (obj) => base64url.encode(JSON.stringify(obj));
const s256 = (verifier) => crypto.createHash('sha256').update(verifier).digest('base64url');
const safeEqual = (a, b) => {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
};

async function newKey(kid) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, publicKey, privateKey, jwk, pem: await exportSPKI(publicKey) };
}

/**
 * @param {object} [opts]
 * @param {string} [opts.scenario='good']
 * @param {number} [opts.port=0]
 * @param {string} [opts.clientId='hubgate-rogue']
 * @param {string} [opts.clientSecret='rogue-secret']
 * @param {string} [opts.username='alice'] whose claims go into tokens (DEMO_USERS)
 * @param {Record<string,object>} [opts.users=DEMO_USERS]
 * @param {string} [opts.jwksCacheControl='public, max-age=300']
 */
export async function startRogueIdp({
  scenario = 'good',
  port = 0,
  clientId = 'hubgate-rogue',
  clientSecret = 'rogue-secret',
  username = 'alice',
  users = DEMO_USERS,
  jwksCacheControl = 'public, max-age=300',
  trailingSlash = false,
} = {}) {
  if (!(scenario in SCENARIOS)) throw new Error(`unknown scenario ${scenario}`);
  const stats = makeStats();
  const codes = new Map(); // code -> { nonce, codeChallenge, redirectUri, scope, username, exp }
  const accessTokens = new Map(); // token -> username
  let current = scenario;
  let extraClaims = {};
  let currentUser = username;
  let cacheControl = jwksCacheControl;

  let signing = await newKey('rogue-1');
  const published = [signing];
  const unknown = await newKey('rogue-unknown');
  let keyCounter = 1;

  let handler = (req, res) => json(res, 503, { error: 'starting' });
  const server = http.createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err) => {
      if (!res.headersSent) json(res, 500, { error: 'server_error', error_description: err.message });
      else res.destroy();
    });
  });
  const bound = await listen(server, port);
  // `trailingSlash`: the issuer identifier is the origin with a '/' at the end
  // (as some providers publish it); the endpoints stay under the origin.
  const origin = `http://127.0.0.1:${bound}`;
  const issuer = trailingSlash ? `${origin}/` : origin;

  function claimsFor(entry) {
    const now = Math.floor(Date.now() / 1000);
    const user = users[entry.username];
    const claims = {
      iss: issuer,
      aud: clientId,
      iat: now,
      exp: now + 300,
      auth_time: now,
      nonce: entry.nonce,
      ...structuredClone(user),
    };
    switch (current) {
      case 'wrong-aud':
        claims.aud = 'someone-else';
        break;
      case 'multi-aud-no-azp':
        claims.aud = [clientId, 'someone-else'];
        break;
      case 'wrong-azp':
        claims.azp = 'someone-else';
        break;
      case 'wrong-iss':
        claims.iss = 'http://127.0.0.1:1/not-the-issuer';
        break;
      case 'wrong-nonce':
        claims.nonce = 'not-the-nonce-you-sent';
        break;
      case 'missing-nonce':
        delete claims.nonce;
        break;
      case 'expired':
        claims.iat = now - 7200;
        claims.auth_time = now - 7200;
        claims.exp = now - 3600;
        break;
      case 'iat-future':
        claims.iat = now + 3600;
        claims.exp = now + 7200;
        break;
      case 'missing-sub':
        delete claims.sub;
        break;
      default:
        break;
    }
    if (claims.nonce === undefined) delete claims.nonce;
    return { ...claims, ...extraClaims };
  }

  async function idToken(entry) {
    const claims = claimsFor(entry);
    switch (current) {
      case 'alg-none':
        return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
      case 'unknown-kid':
        return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: unknown.kid, typ: 'JWT' }).sign(unknown.privateKey);
      case 'hs256-confusion':
        return new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256', kid: signing.kid, typ: 'JWT' })
          .sign(new TextEncoder().encode(signing.pem));
      case 'hs256-client-secret':
        return new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .sign(new TextEncoder().encode(clientSecret));
      case 'bad-signature': {
        const jwt = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signing.kid, typ: 'JWT' }).sign(signing.privateKey);
        const [h, p, s] = jwt.split('.');
        const sig = Buffer.from(s, 'base64url');
        sig[sig.length >> 1] ^= 0x01;
        return `${h}.${p}.${sig.toString('base64url')}`;
      }
      default:
        return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signing.kid, typ: 'JWT' }).sign(signing.privateKey);
    }
  }

  function discovery() {
    return {
      issuer: current === 'discovery-wrong-issuer' ? 'http://127.0.0.1:1/other-issuer' : issuer,
      authorization_endpoint: `${origin}/authorize`,
      token_endpoint: `${origin}/token`,
      userinfo_endpoint: `${origin}/userinfo`,
      jwks_uri: `${origin}/jwks`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      code_challenge_methods_supported: ['S256'],
      scopes_supported: ['openid', 'profile', 'email', 'groups'],
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'name', 'preferred_username', 'email', 'email_verified', 'groups'],
      authorization_response_iss_parameter_supported: true,
    };
  }

  function authorize(req, res, url) {
    const q = Object.fromEntries(url.searchParams);
    stats.authorize.push(q);
    const redirectUri = q.redirect_uri;
    let target;
    try {
      target = new URL(redirectUri);
    } catch {
      return json(res, 400, { error: 'invalid_request', error_description: 'redirect_uri missing or invalid' });
    }
    if (q.client_id !== clientId) return json(res, 400, { error: 'invalid_client', error_description: 'unknown client_id' });
    const back = (params) => {
      for (const [k, v] of Object.entries(params)) if (v !== undefined) target.searchParams.set(k, v);
      res.writeHead(302, { location: target.href, 'cache-control': 'no-store' });
      res.end();
    };
    const iss = current === 'wrong-auth-iss' ? 'http://127.0.0.1:1/not-the-issuer' : issuer;
    if (q.response_type !== 'code') return back({ error: 'unsupported_response_type', state: q.state, iss });
    if (!q.code_challenge || q.code_challenge_method !== 'S256') {
      return back({ error: 'invalid_request', error_description: 'PKCE S256 required', state: q.state, iss });
    }
    if (current === 'authorize-error') {
      return back({ error: 'access_denied', error_description: 'the user said no', state: q.state, iss });
    }
    const code = crypto.randomBytes(24).toString('base64url');
    codes.set(code, {
      nonce: q.nonce,
      codeChallenge: q.code_challenge,
      redirectUri,
      scope: q.scope ?? '',
      username: currentUser,
      exp: Date.now() + 60_000,
    });
    return back({ code, state: q.state, iss });
  }

  async function token(req, res) {
    const params = new URLSearchParams(await readBody(req));
    let id;
    let secret;
    let auth = 'none';
    const authz = req.headers.authorization;
    if (authz?.startsWith('Basic ')) {
      auth = 'basic';
      const raw = Buffer.from(authz.slice(6), 'base64').toString('utf8');
      const i = raw.indexOf(':');
      id = decodeURIComponent(raw.slice(0, i));
      secret = decodeURIComponent(raw.slice(i + 1));
    } else if (params.has('client_secret')) {
      auth = 'post';
      id = params.get('client_id');
      secret = params.get('client_secret');
    }
    stats.token.push({ auth, params: Object.fromEntries(params) });
    if (auth === 'none' || id !== clientId || !safeEqual(secret, clientSecret)) {
      return json(res, 401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="rogue"' });
    }
    if (params.get('grant_type') !== 'authorization_code') return json(res, 400, { error: 'unsupported_grant_type' });
    const code = params.get('code');
    const entry = codes.get(code);
    codes.delete(code); // single use
    if (!entry || entry.exp < Date.now()) return json(res, 400, { error: 'invalid_grant', error_description: 'unknown or used code' });
    if (params.get('redirect_uri') !== entry.redirectUri) {
      return json(res, 400, { error: 'invalid_grant', error_description: 'redirect_uri mismatch' });
    }
    const verifier = params.get('code_verifier');
    if (!verifier || !safeEqual(s256(verifier), entry.codeChallenge)) {
      return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
    }
    if (current === 'token-500') return json(res, 500, { error: 'server_error' });
    if (current === 'token-not-json') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<html><body>Welcome to the token endpoint</body></html>');
    }
    const accessToken = crypto.randomBytes(24).toString('base64url');
    accessTokens.set(accessToken, entry.username);
    const body = { access_token: accessToken, token_type: 'Bearer', expires_in: 300, scope: entry.scope };
    if (current !== 'no-id-token') body.id_token = await idToken(entry);
    if (current === 'error-200') {
      body.error = 'invalid_grant';
      body.error_description = 'tokens and an error in one 200 response';
    }
    return json(res, 200, body);
  }

  function userinfo(req, res) {
    const authz = req.headers.authorization ?? '';
    const at = authz.startsWith('Bearer ') ? authz.slice(7) : undefined;
    const who = at && accessTokens.get(at);
    if (!who) return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    if (current === 'userinfo-500') return json(res, 500, { error: 'server_error' });
    const claims = { ...structuredClone(users[who]), ...extraClaims };
    if (current === 'userinfo-sub-mismatch') claims.sub = 'sub-somebody-else';
    return json(res, 200, claims);
  }

  handler = async (req, res) => {
    const url = new URL(req.url, issuer);
    stats.hit(url.pathname);
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /.well-known/openid-configuration':
        return json(res, 200, discovery(), { 'cache-control': 'public, max-age=300' });
      case 'GET /jwks':
        if (current === 'jwks-down') return json(res, 503, { error: 'temporarily_unavailable' });
        return json(res, 200, { keys: published.map((k) => k.jwk) }, { 'cache-control': cacheControl });
      case 'GET /authorize':
        return authorize(req, res, url);
      case 'POST /token':
        return token(req, res);
      case 'GET /userinfo':
      case 'POST /userinfo':
        return userinfo(req, res);
      default:
        return json(res, 404, { error: 'not_found' });
    }
  };

  return {
    issuer,
    url: origin,
    port: bound,
    clientId,
    clientSecret,
    stats,
    get scenario() {
      return current;
    },
    /** Switch scenario; `extra` claims are merged into id_token and userinfo claims. */
    setScenario(name, extra = {}) {
      if (!(name in SCENARIOS)) throw new Error(`unknown scenario ${name}`);
      current = name;
      extraClaims = { ...extra };
    },
    /** Whose claims the next codes carry. */
    setUser(name) {
      if (!users[name]) throw new Error(`unknown user ${name}`);
      currentUser = name;
    },
    setJwksCacheControl(value) {
      cacheControl = value;
    },
    /** Publish a new key and sign with it from now on. `{ dropOld: true }` unpublishes the previous keys. */
    async rotateKey({ dropOld = false } = {}) {
      keyCounter += 1;
      signing = await newKey(`rogue-${keyCounter}`);
      if (dropOld) published.length = 0;
      published.push(signing);
      return signing.kid;
    },
    get kid() {
      return signing.kid;
    },
    /** The public keys as served at /jwks. */
    jwks() {
      return { keys: published.map((k) => k.jwk) };
    },
    /** The current signing key's public key as SPKI PEM. */
    publicKeyPem() {
      return signing.pem;
    },
    close() {
      return closeServer(server);
    },
  };
}
