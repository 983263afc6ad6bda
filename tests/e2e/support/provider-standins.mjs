// Local stand-ins for the identity providers behind the OAUTH_PROVIDER presets,
// on plain http 127.0.0.1, each answering with its provider's documented
// response shapes (paths rehomed under the stand-in's origin):
//
//   startGitHubStandin    GitHub OAuth app flow + REST v3, as GitHub Enterprise
//                         serves it (web flow at /login/oauth/*, API at /api/v3)
//   startGitLabStandin    GitLab OAuth (Doorkeeper) + API v4
//   startGoogleStandin    Google OpenID Connect (accounts.google.com and its APIs)
//   startAzureAdStandin   Microsoft identity platform v2.0 (Entra ID / Azure AD),
//                         per-tenant and multi-tenant (common / organizations)
//   startAuth0Standin     an Auth0 tenant (issuer with a trailing slash, /v2/logout)
//   startCILogonStandin   CILogon's OpenID Connect (idp claims, selected_idp, skin)
//   startKeycloakStandin  one Keycloak realm (/realms/<realm>/protocol/openid-connect/*)
//   startRecorder         a plain origin that records what reaches it (a trap)
//
// Every stand-in records each request it receives in `requests` as
//   { method, path, url, query, headers, body, form, at }
// (`path` as sent, percent-encoding kept; `form` the parsed urlencoded body),
// has `setUser(name)` (whose account the next authorization is for: the
// authorize endpoints never ask, they redirect straight back with a code),
// `registerRedirect(uri)` (like registering the callback URL at the provider:
// an unregistered redirect_uri gets an error page, never a redirect) and
// `close()`. Codes are single use, bound to the client, the redirect_uri and
// the PKCE challenge (verified when one was sent); access tokens are bound to
// the user and the scopes granted. The OpenID ones sign id_tokens RS256 with
// jose and serve discovery and their key set; claims follow the scopes
// requested where the provider documents it so.
//
// Each stand-in's `users` is the fixture object passed in (kept by reference:
// a test may change an account between logins).
import http from 'node:http';
import crypto from 'node:crypto';
import { SignJWT, generateKeyPair, exportJWK } from 'jose';
import { listen, closeServer } from './ports.mjs';

// ---------------------------------------------------------------------------
// Plumbing

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const random = (n = 24) => crypto.randomBytes(n).toString('base64url');
const hex = (n = 16) => crypto.randomBytes(n).toString('hex');
const s256 = (verifier) => crypto.createHash('sha256').update(verifier).digest('base64url');
const uuid = () => crypto.randomUUID();
const now = () => Math.floor(Date.now() / 1000);
const safeEqual = (a, b) => {
  const x = Buffer.from(String(a ?? ''));
  const y = Buffer.from(String(b ?? ''));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
};
/** A stable small number for a name (ids in fixtures that gave none). */
const idOf = (name) => crypto.createHash('sha256').update(String(name)).digest().readUInt32BE(0) % 90_000_000 + 10_000_000;
/** Claims without the `undefined` ones (a fixture may remove a claim by setting it undefined). */
const defined = (obj) => Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
const scopesOf = (s) => new Set(String(s ?? '').split(/[\s,]+/).filter(Boolean));
/** OpenID Connect at_hash / c_hash: left half of SHA-256, base64url. */
const halfHash = (v) => crypto.createHash('sha256').update(v).digest().subarray(0, 16).toString('base64url');

function send(res, status, body, headers = {}) {
  if (typeof body === 'string') {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(body);
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

const errorPage = (title, detail) =>
  `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1><p>${detail}</p></body></html>`;

/**
 * An http server on 127.0.0.1 that records every request, then hands it to
 * `route(req, res, { url, entry })`.
 */
async function recordingServer(port, route) {
  const requests = [];
  let handler = route;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://standin.invalid');
    let body = '';
    try {
      body = await readBody(req);
    } catch {
      res.destroy();
      return;
    }
    const type = req.headers['content-type'] ?? '';
    const entry = {
      method: req.method,
      path: url.pathname,
      url: req.url,
      query: Object.fromEntries(url.searchParams),
      headers: { ...req.headers },
      body,
      form: type.includes('application/x-www-form-urlencoded') ? Object.fromEntries(new URLSearchParams(body)) : undefined,
      at: Date.now(),
    };
    requests.push(entry);
    try {
      await handler(req, res, { url, entry });
    } catch (err) {
      if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: String(err?.message ?? err) });
      else res.destroy();
    }
  });
  const bound = await listen(server, port);
  return {
    origin: `http://127.0.0.1:${bound}`,
    port: bound,
    requests,
    setRoute(r) {
      handler = r;
    },
    close: () => closeServer(server),
  };
}

/** The handle every stand-in returns (plus its own fields). */
function handle(name, srv, core, extra = {}) {
  return {
    name,
    url: srv.origin,
    port: srv.port,
    clientId: core.clientId,
    clientSecret: core.clientSecret,
    users: core.users,
    requests: srv.requests,
    /** Recorded requests whose path (as sent) is `p`, or matches `p` when a RegExp. */
    requestsTo(p) {
      return srv.requests.filter((r) => (p instanceof RegExp ? p.test(r.path) : r.path === p));
    },
    /** Recorded requests since index `mark` of `requests`. */
    since(mark) {
      return srv.requests.slice(mark);
    },
    setUser: core.setUser,
    get currentUser() {
      return core.current;
    },
    registerRedirect: core.registerRedirect,
    /** Access tokens issued so far: token → { user, scopes }. */
    tokens: core.tokens,
    close: srv.close,
    ...extra,
  };
}

/**
 * What every authorization-code provider shares: the registered client, the
 * chosen user, codes and access tokens.
 */
function oauthCore({ clientId, clientSecret, users, user }) {
  if (!users || !Object.keys(users).length) throw new Error('a stand-in needs `users`');
  const core = {
    clientId,
    clientSecret,
    users,
    current: user ?? Object.keys(users)[0],
    redirectUris: new Set(),
    codes: new Map(),
    tokens: new Map(),
    setUser(name) {
      if (!users[name]) throw new Error(`unknown user ${name}`);
      core.current = name;
    },
    registerRedirect(uri) {
      core.redirectUris.add(String(uri));
    },
    account(name) {
      return users[name];
    },

    /**
     * The authorization endpoint: checks client and redirect_uri (an error page,
     * never a redirect, when either is wrong), then redirects back with a code
     * for the current user. `back` adds response parameters (Keycloak's iss).
     */
    authorize(res, q, { responseType = true, redirectOptional = false, back = {} } = {}) {
      if (q.client_id !== clientId) return send(res, 400, errorPage('Invalid client', 'unknown client_id'));
      let redirectUri = q.redirect_uri;
      if (!redirectUri && redirectOptional && core.redirectUris.size === 1) [redirectUri] = core.redirectUris;
      if (!redirectUri || !core.redirectUris.has(redirectUri)) {
        return send(res, 400, errorPage('Invalid redirect_uri', 'the redirect_uri is not registered for this client'));
      }
      const target = new URL(redirectUri);
      const redirect = (params) => {
        for (const [k, v] of Object.entries(params)) if (v !== undefined) target.searchParams.set(k, v);
        res.writeHead(302, { location: target.href, 'cache-control': 'no-store' });
        res.end();
      };
      if (responseType && q.response_type !== 'code') {
        return redirect({ error: 'unsupported_response_type', state: q.state, ...back });
      }
      if (q.code_challenge !== undefined && !['S256', 'plain', undefined].includes(q.code_challenge_method)) {
        return redirect({ error: 'invalid_request', error_description: 'unsupported code_challenge_method', state: q.state, ...back });
      }
      const code = random();
      core.codes.set(code, {
        user: core.current,
        scope: q.scope ?? '',
        nonce: q.nonce,
        challenge: q.code_challenge,
        challengeMethod: q.code_challenge_method ?? 'plain',
        redirectUri: q.redirect_uri,
        params: { ...q },
        exp: Date.now() + 60_000,
      });
      return redirect({ code, state: q.state, ...back });
    },

    /**
     * Client authentication at the token endpoint: HTTP Basic (RFC 6749 2.3.1,
     * form-urlencoded id and secret) or client_id/client_secret in the body.
     * Returns 'basic' | 'post', or null when the client is not authenticated.
     */
    clientAuth(req, params, methods = ['basic', 'post']) {
      const authz = req.headers.authorization ?? '';
      if (/^basic /i.test(authz)) {
        if (!methods.includes('basic')) return null;
        const raw = Buffer.from(authz.slice(6).trim(), 'base64').toString('utf8');
        const i = raw.indexOf(':');
        if (i < 0) return null;
        const dec = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
        let id;
        let secret;
        try {
          id = dec(raw.slice(0, i));
          secret = dec(raw.slice(i + 1));
        } catch {
          return null;
        }
        return id === clientId && safeEqual(secret, clientSecret) ? 'basic' : null;
      }
      if (params.has('client_secret')) {
        if (!methods.includes('post')) return null;
        return params.get('client_id') === clientId && safeEqual(params.get('client_secret'), clientSecret) ? 'post' : null;
      }
      return null;
    },

    /**
     * Redeem an authorization code: single use, unexpired, same redirect_uri as
     * at the authorize step, PKCE verified when a challenge was sent.
     * Returns { grant } or { error, description }.
     */
    redeem(params) {
      const code = params.get('code');
      const grant = code && core.codes.get(code);
      if (code) core.codes.delete(code);
      if (!grant || grant.exp < Date.now()) return { error: 'invalid_grant', description: 'unknown, used or expired code' };
      if (grant.redirectUri !== undefined && params.get('redirect_uri') !== grant.redirectUri) {
        return { error: 'invalid_grant', description: 'redirect_uri does not match the authorization request' };
      }
      if (grant.challenge !== undefined) {
        const verifier = params.get('code_verifier');
        const ok = verifier && (grant.challengeMethod === 'S256' ? safeEqual(s256(verifier), grant.challenge) : safeEqual(verifier, grant.challenge));
        if (!ok) return { error: 'invalid_grant', description: 'PKCE verification failed' };
      }
      return { grant };
    },

    /** Record a new access token for a redeemed grant. */
    issue(grant, token = random(32)) {
      core.tokens.set(token, { user: grant.user, scopes: scopesOf(grant.scope), grant });
      return token;
    },

    /** The access token of an `Authorization: Bearer …` header (or `token …` when allowed), and its record. */
    bearer(req, { tokenScheme = false } = {}) {
      const authz = req.headers.authorization ?? '';
      const m = /^(bearer|token) +(.+)$/i.exec(authz.trim());
      if (!m || (m[1].toLowerCase() === 'token' && !tokenScheme)) return { present: Boolean(authz) };
      const record = core.tokens.get(m[2]);
      return { present: true, token: m[2], record };
    },
  };
  return core;
}

async function rsaKey(kid, { alg = 'RS256', use = 'sig', withAlg = true, extra = {} } = {}) {
  const { publicKey, privateKey } = await generateKeyPair(alg === 'RSA-OAEP' ? 'RSA-OAEP' : 'RS256', { extractable: true });
  const pub = await exportJWK(publicKey);
  return { kid, privateKey, jwk: { kid, kty: 'RSA', ...(withAlg ? { alg } : {}), use, n: pub.n, e: pub.e, ...extra } };
}

/** RS256 JWT with `claims` (undefined ones dropped), signed by `key` (or `signer`, keeping `key`'s kid). */
function signJwt(claims, key, { signer = key, typ = 'JWT' } = {}) {
  return new SignJWT(defined(claims)).setProtectedHeader({ alg: 'RS256', typ, kid: key.kid }).sign(signer.privateKey);
}

function tokenParams(body) {
  return new URLSearchParams(body);
}

// ---------------------------------------------------------------------------
// A trap origin

/**
 * An origin that records everything and answers 200 `{ body }` (JSON) with
 * `headers`: where a foreign `Link: rel="next"` points, to prove nothing went there.
 */
export async function startRecorder({ port = 0, body = [], headers = {} } = {}) {
  let answer = { body, headers };
  const srv = await recordingServer(port, (req, res) => send(res, 200, answer.body, answer.headers));
  return {
    url: srv.origin,
    port: srv.port,
    requests: srv.requests,
    setAnswer(b, h = {}) {
      answer = { body: b, headers: h };
    },
    close: srv.close,
  };
}

// ---------------------------------------------------------------------------
// GitHub (OAuth app web flow + REST API v3), as GitHub Enterprise Server lays
// it out: https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
// and https://docs.github.com/en/rest (users, emails, orgs, teams; pagination).

export const GITHUB_UA_REFUSAL = Object.freeze({
  message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header',
});
export const GITHUB_API_VERSION = '2022-11-28';

/**
 * GitHub fixture accounts: `{ login, id?, name?, email (public email or null),
 * emails: [{ email, primary, verified, visibility }], orgs: [{ login, public? }],
 * teams: [{ slug, org, name? }], orgsPadding?: n, teamsPadding?: n (filler
 * memberships listed *before* the real ones, to push them to later pages),
 * teamsNextOrigin? / orgsNextOrigin? (page 1's rel="next" names this other origin) }`.
 *
 * Paths: GET /login/oauth/authorize, POST /login/oauth/access_token,
 * GET /api/v3/user, /api/v3/user/emails, /api/v3/user/orgs, /api/v3/user/teams.
 */
export async function startGitHubStandin({ users, clientId = 'gh-client-id', clientSecret = 'gh-client-secret', user, port = 0 } = {}) {
  const core = oauthCore({ clientId, clientSecret, users, user });
  const srv = await recordingServer(port, () => {});
  const web = srv.origin;
  const api = `${srv.origin}/api/v3`;
  const docs = 'https://docs.github.com/rest';

  const orgObject = (login) => {
    const id = idOf(`org:${login}`);
    return {
      login,
      id,
      node_id: Buffer.from(`04:Organization${id}`).toString('base64'),
      url: `${api}/orgs/${login}`,
      repos_url: `${api}/orgs/${login}/repos`,
      events_url: `${api}/orgs/${login}/events`,
      hooks_url: `${api}/orgs/${login}/hooks`,
      issues_url: `${api}/orgs/${login}/issues`,
      members_url: `${api}/orgs/${login}/members{/member}`,
      public_members_url: `${api}/orgs/${login}/public_members{/member}`,
      avatar_url: `${web}/avatars/u/${id}`,
      description: null,
    };
  };
  const teamObject = ({ slug, org, name }) => {
    const id = idOf(`team:${org}/${slug}`);
    const o = orgObject(org);
    return {
      id,
      node_id: Buffer.from(`04:Team${id}`).toString('base64'),
      url: `${api}/organizations/${o.id}/team/${id}`,
      html_url: `${web}/orgs/${org}/teams/${slug}`,
      name: name ?? slug,
      slug,
      description: null,
      privacy: 'closed',
      notification_setting: 'notifications_enabled',
      permission: 'pull',
      members_url: `${api}/organizations/${o.id}/team/${id}/members{/member}`,
      repositories_url: `${api}/organizations/${o.id}/team/${id}/repos`,
      parent: null,
      members_count: 3,
      repos_count: 1,
      created_at: '2021-03-01T10:00:00Z',
      updated_at: '2024-05-01T10:00:00Z',
      organization: { ...o, name: org, company: null, blog: '', location: null, email: null, is_verified: false, has_organization_projects: true, has_repository_projects: true, public_repos: 2, public_gists: 0, followers: 0, following: 0, html_url: `${web}/${org}`, created_at: '2020-01-01T00:00:00Z', updated_at: '2024-01-01T00:00:00Z', type: 'Organization' },
    };
  };
  const pad3 = (i) => String(i).padStart(3, '0');
  const orgList = (u, scopes) => {
    const fill = Array.from({ length: u.orgsPadding ?? 0 }, (_, i) => ({ login: `o${pad3(i + 1)}`, public: true }));
    // without read:org (or user) only public memberships are listed
    const seeAll = scopes.has('read:org') || scopes.has('admin:org') || scopes.has('user');
    return [...fill, ...(u.orgs ?? [])].filter((o) => seeAll || o.public).map((o) => orgObject(o.login));
  };
  const teamList = (u) => {
    const fill = Array.from({ length: u.teamsPadding ?? 0 }, (_, i) => ({ slug: `t${pad3(i + 1)}`, org: 'o001' }));
    return [...fill, ...(u.teams ?? [])].map(teamObject);
  };
  const userObject = (login, u) => {
    const id = u.id ?? idOf(`user:${login}`);
    return {
      login,
      id,
      node_id: Buffer.from(`04:User${id}`).toString('base64'),
      avatar_url: `${web}/avatars/u/${id}`,
      gravatar_id: '',
      url: `${api}/users/${login}`,
      html_url: `${web}/${login}`,
      followers_url: `${api}/users/${login}/followers`,
      organizations_url: `${api}/users/${login}/orgs`,
      repos_url: `${api}/users/${login}/repos`,
      type: 'User',
      site_admin: false,
      name: u.name ?? null,
      company: null,
      blog: '',
      location: null,
      email: u.email ?? null,
      hireable: null,
      bio: null,
      twitter_username: null,
      public_repos: 3,
      public_gists: 0,
      followers: 1,
      following: 0,
      created_at: '2019-01-25T18:44:36Z',
      updated_at: '2024-11-18T12:00:00Z',
      private_gists: 0,
      total_private_repos: 0,
      owned_private_repos: 0,
      disk_usage: 100,
      collaborators: 0,
      two_factor_authentication: true,
      plan: { name: 'free', space: 976562499, private_repos: 10000, collaborators: 0 },
    };
  };

  const apiHeaders = (record, accepted = '') => ({
    'x-github-media-type': 'github.v3; format=json',
    'x-github-api-version-selected': GITHUB_API_VERSION,
    'x-oauth-scopes': [...(record?.scopes ?? [])].join(', '),
    'x-accepted-oauth-scopes': accepted,
    'x-ratelimit-limit': '5000',
    'x-ratelimit-remaining': '4999',
    'x-ratelimit-used': '1',
    'x-ratelimit-resource': 'core',
  });

  /** A list endpoint, paged like GitHub: per_page (default 30, at most 100), page (from 1), Link. */
  function paged(res, url, items, headers, { nextOrigin } = {}) {
    const perPage = Math.min(Math.max(Number.parseInt(url.searchParams.get('per_page') ?? '30', 10) || 30, 1), 100);
    const page = Math.max(Number.parseInt(url.searchParams.get('page') ?? '1', 10) || 1, 1);
    const last = Math.max(Math.ceil(items.length / perPage), 1);
    const link = (p, origin = srv.origin) => {
      const u = new URL(url.pathname, origin);
      for (const [k, v] of url.searchParams) if (k !== 'page' && k !== 'per_page') u.searchParams.set(k, v);
      u.searchParams.set('per_page', String(perPage));
      u.searchParams.set('page', String(p));
      return `<${u.href}>`;
    };
    const rels = [];
    if (page > 1) rels.push(`${link(page - 1)}; rel="prev"`);
    if (page < last) {
      const origin = page === 1 && nextOrigin ? nextOrigin : srv.origin;
      rels.push(`${link(page + 1, origin)}; rel="next"`, `${link(last, origin)}; rel="last"`);
    }
    if (page > 1) rels.push(`${link(1)}; rel="first"`);
    const slice = items.slice((page - 1) * perPage, page * perPage);
    return send(res, 200, slice, { ...headers, ...(rels.length ? { link: rels.join(', ') } : {}) });
  }

  srv.setRoute(async (req, res, { url, entry }) => {
    const q = entry.query;
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      // GitHub's authorize takes no response_type; redirect_uri may be left out (the registered callback is used)
      return core.authorize(res, q, { responseType: false, redirectOptional: true });
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const params = tokenParams(entry.body);
      // GitHub answers token errors with 200 and an error object
      const fail = (error, error_description) =>
        send(res, 200, { error, error_description, error_uri: `https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#${error.replace(/_/g, '-')}` });
      // documented: client_id and client_secret are body parameters
      if (!core.clientAuth(req, params, ['post'])) return fail('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
      const { grant, error, description } = core.redeem(params);
      if (error) {
        return /redirect_uri/.test(description)
          ? fail('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.')
          : fail('bad_verification_code', 'The code passed is incorrect or expired.');
      }
      const token = core.issue(grant, `gho_${crypto.randomBytes(27).toString('base64url').replace(/[-_]/g, 'x').slice(0, 36)}`);
      const scope = [...scopesOf(grant.scope)].sort().join(',');
      const accept = req.headers.accept ?? '';
      if (accept.includes('application/json')) return send(res, 200, { access_token: token, token_type: 'bearer', scope });
      // without Accept: application/json GitHub answers form-encoded
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
      return res.end(new URLSearchParams({ access_token: token, scope, token_type: 'bearer' }).toString());
    }
    if (url.pathname === '/api/v3' || url.pathname.startsWith('/api/v3/')) {
      // https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent
      if (!req.headers['user-agent']) return send(res, 403, GITHUB_UA_REFUSAL);
      const version = req.headers['x-github-api-version'];
      if (version !== undefined && version !== GITHUB_API_VERSION) {
        return send(res, 400, { message: `API version ${version} is not supported.`, documentation_url: `${docs}/about-the-rest-api/api-versions`, status: '400' });
      }
      const { present, record } = core.bearer(req, { tokenScheme: true });
      if (!present) return send(res, 401, { message: 'Requires authentication', documentation_url: `${docs}/users/users#get-the-authenticated-user`, status: '401' });
      if (!record) return send(res, 401, { message: 'Bad credentials', documentation_url: docs, status: '401' });
      const login = record.user;
      const u = core.account(login);
      const sub = url.pathname.slice('/api/v3'.length);
      if (req.method !== 'GET') return send(res, 404, { message: 'Not Found', documentation_url: docs, status: '404' });
      switch (sub) {
        case '/user':
          return send(res, 200, userObject(login, u), apiHeaders(record));
        case '/user/emails':
          if (!['user', 'user:email'].some((s) => record.scopes.has(s))) {
            return send(res, 404, { message: 'Not Found', documentation_url: `${docs}/users/emails#list-email-addresses-for-the-authenticated-user`, status: '404' }, apiHeaders(record, 'user, user:email'));
          }
          return paged(res, url, u.emails ?? [], apiHeaders(record, 'user, user:email'));
        case '/user/orgs':
          return paged(res, url, orgList(u, record.scopes), apiHeaders(record, 'admin:org, read:org, repo, user, write:org'), { nextOrigin: u.orgsNextOrigin });
        case '/user/teams':
          if (!['read:org', 'user', 'repo', 'admin:org', 'write:org'].some((s) => record.scopes.has(s))) {
            return send(res, 403, { message: 'Resource not accessible with the scopes this token was granted', documentation_url: `${docs}/teams/teams#list-teams-for-the-authenticated-user`, status: '403' }, apiHeaders(record, 'read:org, repo, user'));
          }
          return paged(res, url, teamList(u), apiHeaders(record, 'read:org, repo, user'), { nextOrigin: u.teamsNextOrigin });
        default:
          return send(res, 404, { message: 'Not Found', documentation_url: docs, status: '404' });
      }
    }
    return send(res, 404, errorPage('Not Found', url.pathname));
  });

  return handle('github', srv, core, {
    web,
    api,
    paths: { authorize: '/login/oauth/authorize', token: '/login/oauth/access_token', user: '/api/v3/user', emails: '/api/v3/user/emails', orgs: '/api/v3/user/orgs', teams: '/api/v3/user/teams' },
    /** Recorded requests to the REST API (under /api/v3). */
    apiRequests(mark = 0) {
      return srv.requests.slice(mark).filter((r) => r.path.startsWith('/api/v3'));
    },
  });
}

// ---------------------------------------------------------------------------
// GitLab (OAuth 2 by Doorkeeper + REST API v4):
// https://docs.gitlab.com/api/oauth2/ , /api/users/#for-user , /api/members/

/**
 * GitLab fixture accounts: `{ id, username, name, email, state? }`.
 * `groups`: `{ 'full/path': { id, members: { [userId]: access_level } } }`,
 * `projects`: `{ [id]: { path_with_namespace, members: { [userId]: access_level } } }`.
 *
 * Paths: GET /oauth/authorize, POST /oauth/token, GET /api/v4/user,
 * GET /api/v4/groups/:id/members/all/:user_id, GET /api/v4/projects/:id/members/all/:user_id
 * (`:id` a number or the URL-encoded full path: an unencoded `/` matches no route).
 */
export async function startGitLabStandin({ users, groups = {}, projects = {}, clientId = 'gl-application-id', clientSecret = 'gloas-gl-secret', user, port = 0 } = {}) {
  const core = oauthCore({ clientId, clientSecret, users, user });
  const srv = await recordingServer(port, () => {});
  const base = srv.origin;
  const userById = (id) => Object.values(users).find((u) => String(u.id) === String(id));
  const memberObject = (u, level) => ({
    id: u.id,
    username: u.username,
    name: u.name,
    state: u.state ?? 'active',
    locked: false,
    avatar_url: `${base}/uploads/-/system/user/avatar/${u.id}/avatar.png`,
    web_url: `${base}/${u.username}`,
    access_level: level,
    created_at: '2023-01-10T09:00:00.000Z',
    created_by: { id: 1, username: 'root', name: 'Administrator', state: 'active', locked: false, avatar_url: null, web_url: `${base}/root` },
    expires_at: null,
    group_saml_identity: null,
    membership_state: 'active',
  });
  const notFound = (res, what = '404 Not found') => send(res, 404, { message: what });
  const routeMiss = (res) => send(res, 404, { error: '404 Not Found' });

  srv.setRoute(async (req, res, { url, entry }) => {
    if (req.method === 'GET' && url.pathname === '/oauth/authorize') return core.authorize(res, entry.query);
    if (req.method === 'POST' && url.pathname === '/oauth/token') {
      const params = tokenParams(entry.body);
      if (!core.clientAuth(req, params)) {
        return send(res, 401, { error: 'invalid_client', error_description: 'Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.' }, { 'www-authenticate': 'Bearer realm="Doorkeeper", error="invalid_client"' });
      }
      if (params.get('grant_type') !== 'authorization_code') return send(res, 400, { error: 'unsupported_grant_type', error_description: 'The authorization grant type is not supported by the authorization server.' });
      const { grant, error } = core.redeem(params);
      if (error) {
        return send(res, 400, { error: 'invalid_grant', error_description: 'The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.' });
      }
      const token = core.issue(grant, hex(32));
      return send(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 7200, refresh_token: hex(32), scope: [...scopesOf(grant.scope)].join(' '), created_at: now() });
    }
    if (url.pathname.startsWith('/api/v4/')) {
      const { present, record } = core.bearer(req);
      if (!present || !record) return send(res, 401, { message: '401 Unauthorized' });
      const needs = (allowed) => {
        if (allowed.some((s) => record.scopes.has(s))) return false;
        send(res, 403, { error: 'insufficient_scope', error_description: 'The request requires higher privileges than provided by the access token.', scope: allowed.join(' ') }, {
          'www-authenticate': `Bearer realm="Protected by OAuth 2", error="insufficient_scope", error_description="The request requires higher privileges than provided by the access token.", scope="${allowed.join(' ')}"`,
        });
        return true;
      };
      if (req.method !== 'GET') return routeMiss(res);
      if (url.pathname === '/api/v4/user') {
        if (needs(['api', 'read_api', 'read_user'])) return undefined;
        const u = core.account(record.user);
        return send(res, 200, {
          id: u.id,
          username: u.username,
          name: u.name,
          state: u.state ?? 'active',
          locked: false,
          avatar_url: `${base}/uploads/-/system/user/avatar/${u.id}/avatar.png`,
          web_url: `${base}/${u.username}`,
          created_at: '2023-01-10T09:00:00.000Z',
          bio: '',
          location: '',
          public_email: '',
          linkedin: '',
          twitter: '',
          discord: '',
          website_url: '',
          organization: '',
          job_title: '',
          pronouns: null,
          bot: false,
          work_information: null,
          local_time: null,
          last_sign_in_at: '2024-11-18T08:00:00.000Z',
          confirmed_at: '2023-01-10T09:05:00.000Z',
          last_activity_on: '2024-11-18',
          email: u.email,
          theme_id: 1,
          color_scheme_id: 1,
          projects_limit: 100000,
          current_sign_in_at: '2024-11-18T08:00:00.000Z',
          identities: [],
          can_create_group: true,
          can_create_project: true,
          two_factor_enabled: false,
          external: false,
          private_profile: false,
          commit_email: u.email,
        });
      }
      // the path as sent: `org%2Fsub` is one segment, `org/sub` two (no route)
      const m = /^\/api\/v4\/(groups|projects)\/([^/]+)\/members\/all\/([^/]+)$/.exec(url.pathname);
      if (!m) return routeMiss(res);
      if (needs(['api', 'read_api'])) return undefined;
      let id;
      try {
        id = decodeURIComponent(m[2]);
      } catch {
        return routeMiss(res);
      }
      const userId = m[3];
      if (m[1] === 'groups') {
        const entryKey = Object.keys(groups).find((p) => p.toLowerCase() === id.toLowerCase() || String(groups[p].id) === id);
        if (!entryKey) return notFound(res, '404 Group Not Found');
        const level = groups[entryKey].members?.[userId];
        const u = userById(userId);
        if (level === undefined || !u) return notFound(res);
        return send(res, 200, memberObject(u, level));
      }
      const pid = Object.keys(projects).find((k) => k === id || projects[k].path_with_namespace === id);
      if (!pid) return notFound(res, '404 Project Not Found');
      const level = projects[pid].members?.[userId];
      const u = userById(userId);
      if (level === undefined || !u) return notFound(res);
      return send(res, 200, memberObject(u, level));
    }
    return send(res, 404, errorPage('Not Found', url.pathname));
  });

  return handle('gitlab', srv, core, {
    paths: { authorize: '/oauth/authorize', token: '/oauth/token', user: '/api/v4/user' },
  });
}

// ---------------------------------------------------------------------------
// OpenID Connect providers: shared pieces

/** The token endpoint of an OpenID provider: client auth, code, then `answer(grant, accessToken)`. */
async function oidcToken(core, req, res, entry, { methods = ['basic', 'post'], invalidClient, invalidGrant, accessToken = () => random(32), answer }) {
  const params = tokenParams(entry.body);
  if (!core.clientAuth(req, params, methods)) return invalidClient(res);
  if (params.get('grant_type') !== 'authorization_code') return send(res, 400, { error: 'unsupported_grant_type' });
  const { grant, error, description } = core.redeem(params);
  if (error) return invalidGrant(res, description);
  const token = core.issue(grant, await accessToken(grant));
  return send(res, 200, await answer(grant, token));
}

/** The userinfo endpoint: Bearer access token → `claims(record)`. */
function oidcUserinfo(core, req, res, claims) {
  const { record } = core.bearer(req);
  if (!record) return send(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
  return send(res, 200, claims(record));
}

/** Claims of `account` allowed by `scopes`: `groups` maps a scope to its claim names. */
function claimsFor(account, scopes, groups) {
  const out = {};
  for (const [scope, names] of Object.entries(groups)) {
    if (scope !== '*' && !scopes.has(scope)) continue;
    for (const n of names) if (account[n] !== undefined) out[n] = account[n];
  }
  return out;
}

// ---------------------------------------------------------------------------
// Google: https://developers.google.com/identity/openid-connect/openid-connect
// (discovery at https://accounts.google.com/.well-known/openid-configuration)

const GOOGLE_SCOPE_URLS = Object.freeze({
  email: 'https://www.googleapis.com/auth/userinfo.email',
  profile: 'https://www.googleapis.com/auth/userinfo.profile',
});

/**
 * Google fixture accounts: `{ sub, email, email_verified, hd? (Workspace
 * domain, absent for consumer accounts), name?, given_name?, family_name?, picture? }`.
 * The stand-in's issuer is its origin (set it as OIDC_ISSUER).
 *
 * Paths: /.well-known/openid-configuration, GET /o/oauth2/v2/auth, POST /token,
 * GET /v1/userinfo, GET /oauth2/v3/certs.
 */
export async function startGoogleStandin({ users, clientId = '123456789012-hubgate.apps.googleusercontent.com', clientSecret = 'GOCSPX-standin-secret', user, port = 0 } = {}) {
  const core = oauthCore({ clientId, clientSecret, users, user });
  const key = await rsaKey(hex(20));
  const srv = await recordingServer(port, () => {});
  const issuer = srv.origin;
  const SCOPED = { '*': ['sub', 'hd'], email: ['email', 'email_verified'], profile: ['name', 'picture', 'given_name', 'family_name', 'locale'] };
  const discovery = () => ({
    issuer,
    authorization_endpoint: `${issuer}/o/oauth2/v2/auth`,
    device_authorization_endpoint: `${issuer}/device/code`,
    token_endpoint: `${issuer}/token`,
    userinfo_endpoint: `${issuer}/v1/userinfo`,
    revocation_endpoint: `${issuer}/revoke`,
    jwks_uri: `${issuer}/oauth2/v3/certs`,
    response_types_supported: ['code', 'token', 'id_token', 'code token', 'code id_token', 'token id_token', 'code token id_token', 'none'],
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'email', 'profile'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    claims_supported: ['aud', 'email', 'email_verified', 'exp', 'family_name', 'given_name', 'iat', 'iss', 'name', 'picture', 'sub'],
    code_challenge_methods_supported: ['plain', 'S256'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
  });

  srv.setRoute(async (req, res, { url, entry }) => {
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /.well-known/openid-configuration':
        return send(res, 200, discovery(), { 'cache-control': 'public, max-age=3600' });
      case 'GET /oauth2/v3/certs':
        return send(res, 200, { keys: [key.jwk] }, { 'cache-control': 'public, max-age=21600, must-revalidate' });
      case 'GET /o/oauth2/v2/auth':
        return core.authorize(res, entry.query);
      case 'POST /token':
        return oidcToken(core, req, res, entry, {
          invalidClient: (r) => send(r, 401, { error: 'invalid_client', error_description: 'Unauthorized' }),
          invalidGrant: (r) => send(r, 400, { error: 'invalid_grant', error_description: 'Bad Request' }),
          accessToken: () => `ya29.${random(48)}`,
          answer: async (grant, token) => {
            const scopes = scopesOf(grant.scope);
            const t = now();
            const idToken = await signJwt(
              { iss: issuer, azp: clientId, aud: clientId, ...claimsFor(core.account(grant.user), scopes, SCOPED), at_hash: halfHash(token), nonce: grant.nonce, iat: t, exp: t + 3600 },
              key,
            );
            // Google reports the granted scopes with their URL names
            const scope = [...scopes].map((s) => GOOGLE_SCOPE_URLS[s] ?? s).join(' ');
            return { access_token: token, expires_in: 3599, scope, token_type: 'Bearer', id_token: idToken };
          },
        });
      case 'GET /v1/userinfo':
      case 'POST /v1/userinfo':
        return oidcUserinfo(core, req, res, (r) => claimsFor(core.account(r.user), r.scopes, SCOPED));
      default:
        return send(res, 404, errorPage('Not Found', url.pathname));
    }
  });

  return handle('google', srv, core, {
    issuer,
    jwks: () => ({ keys: [key.jwk] }),
    paths: { discovery: '/.well-known/openid-configuration', authorize: '/o/oauth2/v2/auth', token: '/token', userinfo: '/v1/userinfo', jwks: '/oauth2/v3/certs' },
  });
}

// ---------------------------------------------------------------------------
// Microsoft identity platform v2.0:
// https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc ,
// /id-token-claims-reference (tid, oid, groups, _claim_names/_claim_sources overage)

export const AZURE_MULTI_TENANT = Object.freeze(['common', 'organizations', 'consumers']);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Azure AD fixture accounts: `{ tid, oid, sub?, name, preferred_username,
 * email?, groups?: [object ids], overage?: true (no groups claim but the
 * _claim_names/_claim_sources pointer to Graph), issTenant? (iss names this
 * tenant instead of tid), signWith?: 'foreign' (signed by a key not in the key
 * set, under the published kid) }`. A claim set to undefined is left out (tid).
 *
 * Paths (tenant = a GUID, common, organizations or consumers):
 * /{tenant}/v2.0/.well-known/openid-configuration, GET /{tenant}/oauth2/v2.0/authorize,
 * POST /{tenant}/oauth2/v2.0/token, GET /{tenant}/discovery/v2.0/keys,
 * GET /{tenant}/oauth2/v2.0/logout, GET /oidc/userinfo (Graph's, served here).
 * The key set publishes no `alg` (as Microsoft's does not), with `issuer` per key.
 */
export async function startAzureAdStandin({ users, clientId = '6731de76-14a6-49ae-97bc-6eba6914391e', clientSecret = 'azure~standin~secret', user, port = 0 } = {}) {
  const core = oauthCore({ clientId, clientSecret, users, user });
  const key = await rsaKey(random(20), { withAlg: false });
  const foreign = await rsaKey(key.kid, { withAlg: false });
  const srv = await recordingServer(port, () => {});
  const host = srv.origin;
  const issuerOf = (tenant) => `${host}/${AZURE_MULTI_TENANT.includes(tenant) ? '{tenantid}' : tenant}/v2.0`;
  const discovery = (tenant) => ({
    token_endpoint: `${host}/${tenant}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${host}/${tenant}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: issuerOf(tenant),
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${host}/oidc/userinfo`,
    authorization_endpoint: `${host}/${tenant}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${host}/${tenant}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${host}/${tenant}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
    kerberos_endpoint: `${host}/${tenant}/kerberos`,
    tenant_region_scope: tenant === 'common' || tenant === 'organizations' || tenant === 'consumers' ? null : 'EU',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  });
  const publicKeys = (tenant) => ({ keys: [{ ...key.jwk, issuer: issuerOf(tenant) }] });
  const badTenant = (res, tenant) =>
    send(res, 400, {
      error: 'invalid_tenant',
      error_description: `AADSTS90002: Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
      error_codes: [90002],
      timestamp: new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      trace_id: uuid(),
      correlation_id: uuid(),
    });
  const subOf = (u, name) => u.sub ?? crypto.createHash('sha256').update(`${name}:${clientId}`).digest('base64url').slice(0, 43);

  srv.setRoute(async (req, res, { url, entry }) => {
    if (url.pathname === '/oidc/userinfo' && (req.method === 'GET' || req.method === 'POST')) {
      return oidcUserinfo(core, req, res, (r) => {
        const u = core.account(r.user);
        return defined({ sub: subOf(u, r.user), name: u.name, family_name: u.family_name, given_name: u.given_name, picture: 'https://graph.microsoft.com/v1.0/me/photo/$value', email: u.email });
      });
    }
    const m = /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/authorize|oauth2\/v2\.0\/token|discovery\/v2\.0\/keys|oauth2\/v2\.0\/logout)$/.exec(url.pathname);
    if (!m) return send(res, 404, errorPage('Not Found', url.pathname));
    const [, tenant, what] = m;
    if (!AZURE_MULTI_TENANT.includes(tenant) && !GUID.test(tenant)) return badTenant(res, tenant);
    switch (`${req.method} ${what}`) {
      case 'GET v2.0/.well-known/openid-configuration':
        return send(res, 200, discovery(tenant), { 'cache-control': 'max-age=86400, private' });
      case 'GET discovery/v2.0/keys':
        return send(res, 200, publicKeys(tenant), { 'cache-control': 'max-age=86400, private' });
      case 'GET oauth2/v2.0/authorize':
        return core.authorize(res, entry.query);
      case 'GET oauth2/v2.0/logout': {
        const to = entry.query.post_logout_redirect_uri;
        if (to) {
          res.writeHead(302, { location: to });
          return res.end();
        }
        return send(res, 200, errorPage('You signed out of your account', 'It’s a good idea to close all browser windows.'));
      }
      case 'POST oauth2/v2.0/token':
        return oidcToken(core, req, res, entry, {
          invalidClient: (r) => send(r, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.', error_codes: [7000215], trace_id: uuid(), correlation_id: uuid() }),
          invalidGrant: (r, d) => send(r, 400, { error: 'invalid_grant', error_description: `AADSTS70008: The provided authorization code or refresh token has expired due to inactivity. (${d})`, error_codes: [70008], trace_id: uuid(), correlation_id: uuid() }),
          accessToken: () => `eyJ0eXAiOiJKV1QiLCJub25jZSI6Ik.${random(64)}.${random(64)}`,
          answer: async (grant, token) => {
            const u = core.account(grant.user);
            const scopes = scopesOf(grant.scope);
            const t = now();
            // the token is issued by the user's home tenant (its tid), or the one the fixture forces
            const issTenant = u.issTenant ?? u.tid ?? tenant;
            const claims = {
              aud: clientId,
              iss: `${host}/${issTenant}/v2.0`,
              iat: t,
              nbf: t,
              exp: t + 3600,
              aio: random(40),
              ...(scopes.has('email') && u.email ? { email: u.email } : {}),
              ...(scopes.has('profile') ? { name: u.name, preferred_username: u.preferred_username } : {}),
              nonce: grant.nonce,
              oid: u.oid,
              rh: `0.${random(30)}.`,
              sub: subOf(u, grant.user),
              tid: u.tid,
              uti: random(16),
              ver: '2.0',
              at_hash: halfHash(token),
            };
            if (u.overage) {
              // too many groups for the token: a pointer to Graph instead of `groups`
              claims._claim_names = { groups: 'src1' };
              claims._claim_sources = { src1: { endpoint: `https://graph.microsoft.com/v1.0/users/${u.oid}/getMemberObjects` } };
            } else if (u.groups) {
              claims.groups = u.groups;
            }
            const idToken = await signJwt(claims, key, { signer: u.signWith === 'foreign' ? foreign : key });
            // Microsoft lists the granted scopes with Graph's User.Read, without openid
            const scope = [...[...scopes].filter((s) => s !== 'openid'), 'User.Read'].join(' ');
            return { token_type: 'Bearer', scope, expires_in: 4488, ext_expires_in: 4488, access_token: token, id_token: idToken };
          },
        });
      default:
        return send(res, 405, { error: 'invalid_request', error_description: 'AADSTS900561: The endpoint only accepts POST, OPTIONS requests.' });
    }
  });

  return handle('azuread', srv, core, {
    authorityHost: host,
    issuerOf,
    /** The discovery document's path for `tenant`. */
    discoveryPath: (tenant) => `/${tenant}/v2.0/.well-known/openid-configuration`,
    authorizePath: (tenant) => `/${tenant}/oauth2/v2.0/authorize`,
    tokenPath: (tenant) => `/${tenant}/oauth2/v2.0/token`,
    jwks: (tenant = 'common') => publicKeys(tenant),
  });
}

// ---------------------------------------------------------------------------
// Auth0: https://auth0.com/docs/get-started/applications/configure-applications-with-oidc-discovery ,
// https://auth0.com/docs/api/authentication (authorize, oauth/token, userinfo, v2/logout)

/**
 * Auth0 fixture accounts: `{ sub ('auth0|…'), nickname, name, email,
 * email_verified, picture?, issOverride? (iss claim instead of the issuer) }`.
 * The issuer is `<origin>/` (trailing slash). `endSession: true` publishes an
 * end_session_endpoint (RP-Initiated Logout turned on in the tenant); by default
 * there is none, as in a tenant that has not turned it on.
 *
 * Paths: /.well-known/openid-configuration, /.well-known/jwks.json, GET /authorize,
 * POST /oauth/token, GET /userinfo, GET /v2/logout (302 to an allowed returnTo),
 * GET /oidc/logout (only with endSession).
 */
export async function startAuth0Standin({ users, clientId = 'AbCdEfGhIjKlMnOpQrStUvWxYz012345', clientSecret = 'auth0-standin-client-secret-0123456789', endSession = false, user, port = 0 } = {}) {
  const core = oauthCore({ clientId, clientSecret, users, user });
  const key = await rsaKey(random(16), { extra: { x5t: random(20) } });
  const srv = await recordingServer(port, () => {});
  const origin = srv.origin;
  const issuer = `${origin}/`;
  const allowedLogoutUrls = new Set();
  const SCOPED = { '*': ['sub'], profile: ['nickname', 'name', 'picture', 'updated_at'], email: ['email', 'email_verified'] };
  const discovery = () => ({
    issuer,
    authorization_endpoint: `${origin}/authorize`,
    token_endpoint: `${origin}/oauth/token`,
    device_authorization_endpoint: `${origin}/oauth/device/code`,
    userinfo_endpoint: `${origin}/userinfo`,
    mfa_challenge_endpoint: `${origin}/mfa/challenge`,
    jwks_uri: `${origin}/.well-known/jwks.json`,
    registration_endpoint: `${origin}/oidc/register`,
    revocation_endpoint: `${origin}/oauth/revoke`,
    ...(endSession ? { end_session_endpoint: `${origin}/oidc/logout` } : {}),
    scopes_supported: ['openid', 'profile', 'offline_access', 'name', 'given_name', 'family_name', 'nickname', 'email', 'email_verified', 'picture', 'created_at', 'identities', 'phone', 'address'],
    response_types_supported: ['code', 'token', 'id_token', 'code token', 'code id_token', 'token id_token', 'code token id_token'],
    code_challenge_methods_supported: ['S256', 'plain'],
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['public'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    claims_supported: ['aud', 'auth_time', 'created_at', 'email', 'email_verified', 'exp', 'family_name', 'given_name', 'iat', 'identities', 'iss', 'name', 'nickname', 'phone_number', 'picture', 'sub'],
    request_uri_parameter_supported: false,
    request_parameter_supported: false,
    id_token_signing_alg_values_supported: ['HS256', 'RS256', 'PS256'],
    token_endpoint_auth_signing_alg_values_supported: ['RS256', 'RS384', 'PS256'],
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
  });

  srv.setRoute(async (req, res, { url, entry }) => {
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /.well-known/openid-configuration':
        return send(res, 200, discovery(), { 'cache-control': 'public, max-age=15, stale-while-revalidate=15, stale-if-error=86400' });
      case 'GET /.well-known/jwks.json':
        return send(res, 200, { keys: [key.jwk] }, { 'cache-control': 'public, max-age=15, stale-while-revalidate=15, stale-if-error=86400' });
      case 'GET /authorize':
        return core.authorize(res, entry.query);
      case 'POST /oauth/token':
        return oidcToken(core, req, res, entry, {
          invalidClient: (r) => send(r, 401, { error: 'access_denied', error_description: 'Unauthorized' }),
          invalidGrant: (r) => send(r, 403, { error: 'invalid_grant', error_description: 'Invalid authorization code' }),
          accessToken: () => `eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwiaXNzIjoi.${random(80)}`,
          answer: async (grant, token) => {
            const u = core.account(grant.user);
            const scopes = scopesOf(grant.scope);
            const t = now();
            const idToken = await signJwt({ ...claimsFor(u, scopes, SCOPED), iss: u.issOverride ?? issuer, aud: clientId, iat: t, exp: t + 36000, sid: random(24), nonce: grant.nonce }, key);
            return { access_token: token, id_token: idToken, scope: [...scopes].join(' '), expires_in: 86400, token_type: 'Bearer' };
          },
        });
      case 'GET /userinfo':
        return oidcUserinfo(core, req, res, (r) => claimsFor(core.account(r.user), r.scopes, SCOPED));
      case 'GET /v2/logout': {
        const to = entry.query.returnTo;
        if (to && !allowedLogoutUrls.has(to)) {
          return send(res, 400, errorPage('Oops!, something went wrong', `invalid_request: The "returnTo" querystring parameter "${to}" is not defined as a valid URL in "Allowed Logout URLs".`));
        }
        res.writeHead(302, { location: to ?? `${origin}/` });
        return res.end();
      }
      case 'GET /oidc/logout':
        if (!endSession) return send(res, 404, errorPage('Not Found', url.pathname));
        res.writeHead(302, { location: entry.query.post_logout_redirect_uri ?? `${origin}/` });
        return res.end();
      default:
        return send(res, 404, errorPage('Not Found', url.pathname));
    }
  });

  return handle('auth0', srv, core, {
    issuer,
    /** Add a URL to the application's "Allowed Logout URLs". */
    allowLogoutUrl(u) {
      allowedLogoutUrls.add(String(u));
    },
    paths: { discovery: '/.well-known/openid-configuration', authorize: '/authorize', token: '/oauth/token', userinfo: '/userinfo', jwks: '/.well-known/jwks.json', logout: '/v2/logout' },
  });
}

// ---------------------------------------------------------------------------
// CILogon: https://www.cilogon.org/oidc (scopes, claims, selected_idp, skin;
// discovery at https://cilogon.org/.well-known/openid-configuration)

/**
 * CILogon fixture accounts: `{ idp (entity id of the user's home IdP), idp_name,
 * eppn?, eptid?, email, given_name, family_name, name?, affiliation?, ou?, sub? }`.
 * `idp` and the other org.cilogon.userinfo claims are only given when that
 * scope was requested (as CILogon documents); email with `email`, names with `profile`.
 *
 * Paths: /.well-known/openid-configuration, GET /authorize, POST /oauth2/token,
 * GET|POST /oauth2/userinfo, GET /oauth2/certs. Access tokens are URL-shaped,
 * as CILogon's are (`<origin>/oauth2/accessToken/<id>/<ms>`).
 */
export async function startCILogonStandin({ users, clientId = 'cilogon:/client_id/1a2b3c4d5e6f', clientSecret = 'cilogon-standin-secret', user, port = 0 } = {}) {
  const core = oauthCore({ clientId, clientSecret, users, user });
  const key = await rsaKey(hex(8).toUpperCase());
  const srv = await recordingServer(port, () => {});
  const issuer = srv.origin;
  const SCOPED = {
    '*': ['sub'],
    email: ['email'],
    profile: ['given_name', 'family_name', 'name'],
    'org.cilogon.userinfo': ['idp', 'idp_name', 'eppn', 'eptid', 'affiliation', 'ou', 'subject_id', 'pairwise_id', 'oidc', 'isMemberOf'],
  };
  const subOf = (u, name) => u.sub ?? `${issuer}/serverA/users/${idOf(name)}`;
  const discovery = () => ({
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    registration_endpoint: `${issuer}/oauth2/oidc-cm`,
    token_endpoint: `${issuer}/oauth2/token`,
    userinfo_endpoint: `${issuer}/oauth2/userinfo`,
    jwks_uri: `${issuer}/oauth2/certs`,
    revocation_endpoint: `${issuer}/oauth2/revoke`,
    introspection_endpoint: `${issuer}/oauth2/introspect`,
    device_authorization_endpoint: `${issuer}/oauth2/device_authorization`,
    scopes_supported: ['openid', 'email', 'profile', 'org.cilogon.userinfo', 'edu.uiuc.ncsa.myproxy.getcert', 'offline_access'],
    response_types_supported: ['code', 'id_token'],
    response_modes_supported: ['query', 'fragment', 'form_post'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:device_code'],
    code_challenge_methods_supported: ['plain', 'S256'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'RS384', 'RS512'],
    userinfo_signing_alg_values_supported: ['RS256', 'RS384', 'RS512'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    claims_supported: ['aud', 'iat', 'iss', 'exp', 'sub', 'auth_time', 'nonce', 'jti', 'acr', 'amr', 'idp', 'idp_name', 'eppn', 'eptid', 'affiliation', 'ou', 'given_name', 'family_name', 'name', 'email', 'subject_id', 'pairwise_id', 'oidc', 'isMemberOf', 'cert_subject_dn', 'uid', 'uidNumber', 'voPersonExternalID'],
    claims_parameter_supported: false,
    request_parameter_supported: true,
    request_uri_parameter_supported: false,
    require_request_uri_registration: false,
  });

  srv.setRoute(async (req, res, { url, entry }) => {
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /.well-known/openid-configuration':
        return send(res, 200, discovery(), { 'cache-control': 'max-age=3600' });
      case 'GET /oauth2/certs':
        return send(res, 200, { keys: [key.jwk] });
      case 'GET /authorize':
        // CILogon would offer only the IdPs in selected_idp; the stand-in signs in
        // the current user whatever they are (as if the parameter had been changed)
        return core.authorize(res, entry.query);
      case 'POST /oauth2/token':
        return oidcToken(core, req, res, entry, {
          invalidClient: (r) => send(r, 401, { error: 'invalid_client', error_description: 'client authentication failed' }),
          invalidGrant: (r, d) => send(r, 400, { error: 'invalid_grant', error_description: d }),
          accessToken: () => `${issuer}/oauth2/accessToken/${hex(16)}/${Date.now()}`,
          answer: async (grant, token) => {
            const u = core.account(grant.user);
            const scopes = scopesOf(grant.scope);
            const t = now();
            const idToken = await signJwt(
              {
                iss: issuer,
                ...claimsFor(u, scopes, SCOPED),
                sub: subOf(u, grant.user),
                aud: clientId,
                iat: t,
                exp: t + 900,
                nonce: grant.nonce,
                auth_time: t,
                jti: `${issuer}/oauth2/idToken/${hex(16)}/${Date.now()}`,
                acr: 'https://refeds.org/profile/mfa',
                amr: ['pwd'],
                token_id: `${issuer}/oauth2/idToken/${hex(16)}/${Date.now()}`,
              },
              key,
            );
            return { access_token: token, refresh_token: `${issuer}/oauth2/refreshToken/${hex(16)}/${Date.now()}`, id_token: idToken, token_type: 'Bearer', expires_in: 900 };
          },
        });
      case 'GET /oauth2/userinfo':
      case 'POST /oauth2/userinfo':
        return oidcUserinfo(core, req, res, (r) => ({ ...claimsFor(core.account(r.user), r.scopes, SCOPED), sub: subOf(core.account(r.user), r.user) }));
      default:
        return send(res, 404, errorPage('Not Found', url.pathname));
    }
  });

  return handle('cilogon', srv, core, {
    issuer,
    paths: { discovery: '/.well-known/openid-configuration', authorize: '/authorize', token: '/oauth2/token', userinfo: '/oauth2/userinfo', jwks: '/oauth2/certs' },
  });
}

// ---------------------------------------------------------------------------
// Keycloak: https://www.keycloak.org/securing-apps/oidc-layers (endpoints under
// /realms/{realm}/protocol/openid-connect/, discovery at /realms/{realm}/.well-known/openid-configuration)

/**
 * Keycloak fixture accounts: `{ sub? (uuid), preferred_username, email,
 * email_verified, given_name, family_name, name?, realm_access: { roles: [...] },
 * resource_access? }`. `rolesInIdToken` (default true) is the "realm roles"
 * mapper with "Add to ID token" and "Add to userinfo" on (by default Keycloak
 * puts realm_access in the access token only). profile and email are default
 * client scopes: their claims come whatever the scope requested. The key set
 * also publishes an RSA-OAEP encryption key (`use: enc`), as every realm does.
 * Authorization responses carry `iss` and `session_state` (RFC 9207, advertised).
 */
export async function startKeycloakStandin({ users, realm = 'hub', clientId = 'jupyterhub', clientSecret = 'keycloak-standin-secret', rolesInIdToken = true, user, port = 0 } = {}) {
  const core = oauthCore({ clientId, clientSecret, users, user });
  const sig = await rsaKey(random(32), { extra: { 'x5t#S256': random(32) } });
  const enc = await rsaKey(random(32), { alg: 'RSA-OAEP', use: 'enc' });
  const srv = await recordingServer(port, () => {});
  const issuer = `${srv.origin}/realms/${realm}`;
  const oidc = `${issuer}/protocol/openid-connect`;
  const prefix = `/realms/${realm}`;
  const subOf = (u, name) => u.sub ?? crypto.createHash('sha256').update(name).digest('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12}).*$/, '$1-$2-$3-$4-$5');
  const profile = (u, name) =>
    defined({
      sub: subOf(u, name),
      email_verified: u.email_verified ?? true,
      name: u.name ?? ([u.given_name, u.family_name].filter(Boolean).join(' ') || undefined),
      preferred_username: u.preferred_username,
      given_name: u.given_name,
      family_name: u.family_name,
      email: u.email,
    });
  const discovery = () => ({
    issuer,
    authorization_endpoint: `${oidc}/auth`,
    token_endpoint: `${oidc}/token`,
    introspection_endpoint: `${oidc}/token/introspect`,
    userinfo_endpoint: `${oidc}/userinfo`,
    end_session_endpoint: `${oidc}/logout`,
    frontchannel_logout_session_supported: true,
    frontchannel_logout_supported: true,
    jwks_uri: `${oidc}/certs`,
    check_session_iframe: `${oidc}/login-status-iframe.html`,
    grant_types_supported: ['authorization_code', 'implicit', 'refresh_token', 'password', 'client_credentials', 'urn:openid:params:grant-type:ciba', 'urn:ietf:params:oauth:grant-type:device_code'],
    acr_values_supported: ['0', '1'],
    response_types_supported: ['code', 'none', 'id_token', 'token', 'id_token token', 'code id_token', 'code token', 'code id_token token'],
    subject_types_supported: ['public', 'pairwise'],
    id_token_signing_alg_values_supported: ['PS384', 'RS384', 'EdDSA', 'ES384', 'HS256', 'HS512', 'ES256', 'RS256', 'HS384', 'ES512', 'PS256', 'PS512', 'RS512'],
    userinfo_signing_alg_values_supported: ['PS384', 'RS384', 'EdDSA', 'ES384', 'HS256', 'HS512', 'ES256', 'RS256', 'HS384', 'ES512', 'PS256', 'PS512', 'RS512', 'none'],
    response_modes_supported: ['query', 'fragment', 'form_post', 'query.jwt', 'fragment.jwt', 'form_post.jwt', 'jwt'],
    registration_endpoint: `${issuer}/clients-registrations/openid-connect`,
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'tls_client_auth', 'client_secret_jwt'],
    claims_supported: ['aud', 'sub', 'iss', 'auth_time', 'name', 'given_name', 'family_name', 'preferred_username', 'email', 'acr'],
    claim_types_supported: ['normal'],
    claims_parameter_supported: true,
    scopes_supported: ['openid', 'profile', 'email', 'roles', 'web-origins', 'acr', 'basic', 'offline_access', 'address', 'phone', 'microprofile-jwt', 'organization'],
    request_parameter_supported: true,
    request_uri_parameter_supported: true,
    require_request_uri_registration: true,
    code_challenge_methods_supported: ['plain', 'S256'],
    tls_client_certificate_bound_access_tokens: true,
    revocation_endpoint: `${oidc}/revoke`,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    authorization_response_iss_parameter_supported: true,
  });

  srv.setRoute(async (req, res, { url, entry }) => {
    if (!url.pathname.startsWith(`${prefix}/`)) {
      if (url.pathname.startsWith('/realms/')) return send(res, 404, { error: 'Realm does not exist', error_description: 'Realm does not exist' });
      return send(res, 404, errorPage('Not Found', url.pathname));
    }
    const sub = url.pathname.slice(prefix.length);
    switch (`${req.method} ${sub}`) {
      case 'GET /.well-known/openid-configuration':
        return send(res, 200, discovery(), { 'cache-control': 'no-cache, must-revalidate, no-transform, no-store' });
      case 'GET /protocol/openid-connect/certs':
        return send(res, 200, { keys: [sig.jwk, enc.jwk] });
      case 'GET /protocol/openid-connect/auth':
        return core.authorize(res, entry.query, { back: { session_state: uuid(), iss: issuer } });
      case 'POST /protocol/openid-connect/token':
        return oidcToken(core, req, res, entry, {
          invalidClient: (r) => send(r, 401, { error: 'unauthorized_client', error_description: 'Invalid client or Invalid client credentials' }),
          invalidGrant: (r) => send(r, 400, { error: 'invalid_grant', error_description: 'Code not valid' }),
          // Keycloak's access tokens are JWTs too (typ Bearer, realm_access inside)
          accessToken: (grant) => {
            const u = core.account(grant.user);
            const t = now();
            grant.sid = uuid();
            const roles = defined({ realm_access: u.realm_access, resource_access: u.resource_access });
            return signJwt(
              { exp: t + 300, iat: t, auth_time: t, jti: `onrtac:${uuid()}`, iss: issuer, aud: 'account', sub: subOf(u, grant.user), typ: 'Bearer', azp: clientId, sid: grant.sid, acr: '1', 'allowed-origins': ['/*'], ...roles, scope: 'openid profile email', ...profile(u, grant.user) },
              sig,
            );
          },
          answer: async (grant, accessToken) => {
            const u = core.account(grant.user);
            const t = now();
            const { sid } = grant;
            const roles = defined({ realm_access: u.realm_access, resource_access: u.resource_access });
            const idToken = await signJwt(
              { exp: t + 300, iat: t, auth_time: t, jti: `ofrtac:${uuid()}`, iss: issuer, aud: clientId, sub: subOf(u, grant.user), typ: 'ID', azp: clientId, nonce: grant.nonce, sid, at_hash: halfHash(accessToken), acr: '1', ...profile(u, grant.user), ...(rolesInIdToken ? roles : {}) },
              sig,
            );
            return { access_token: accessToken, expires_in: 300, refresh_expires_in: 1800, refresh_token: `eyJhbGciOiJIUzUxMiJ9.${random(60)}.${random(40)}`, token_type: 'Bearer', id_token: idToken, 'not-before-policy': 0, session_state: sid, scope: 'openid profile email' };
          },
        });
      case 'GET /protocol/openid-connect/userinfo':
      case 'POST /protocol/openid-connect/userinfo':
        return oidcUserinfo(core, req, res, (r) => {
          const u = core.account(r.user);
          return { ...profile(u, r.user), ...(rolesInIdToken ? defined({ realm_access: u.realm_access, resource_access: u.resource_access }) : {}) };
        });
      case 'GET /protocol/openid-connect/logout': {
        const to = entry.query.post_logout_redirect_uri;
        if (to) {
          res.writeHead(302, { location: to });
          return res.end();
        }
        return send(res, 200, errorPage('Logging out', 'Do you want to log out?'));
      }
      default:
        return send(res, 404, { error: 'Unable to find matching target resource method', error_description: 'For more on this error consult the server log.' });
    }
  });

  return handle('keycloak', srv, core, {
    issuer,
    realm,
    paths: { discovery: `${prefix}/.well-known/openid-configuration`, authorize: `${prefix}/protocol/openid-connect/auth`, token: `${prefix}/protocol/openid-connect/token`, userinfo: `${prefix}/protocol/openid-connect/userinfo`, jwks: `${prefix}/protocol/openid-connect/certs` },
  });
}
