// A real OpenID Provider for the e2e tests and `npm run dev`: npm `oidc-provider`
// on 127.0.0.1 over plain http, with demo users and a login/consent step that a
// test can drive with one form POST (no HTML scraping).
//
//   const idp = await startIdp({ clients: [{ client_id, client_secret, redirect_uris }] });
//   idp.issuer                 // http://127.0.0.1:<port>
//   idp.setRedirectUris(id, [`${worker.url}/hub/oauth_callback`]) // once the worker's port is known
//   idp.stats.count('/jwks')   // how many times the key set was fetched
//   idp.setClientMetadata(id, { backchannel_logout_uri, post_logout_redirect_uris }) // logout URIs, same way
//   idp.outgoing               // requests the provider made itself (logout tokens) and their answers
//
// Refresh tokens: oidc-provider issues one to a client whose grant_types has
// `refresh_token` (every client here) when the authorization request asked for
// `offline_access` WITH `prompt=consent` (otherwise that scope is dropped).
// It rotates one for a confidential client only once 70 % of its lifetime has
// passed; `startIdp({ rotateRefreshToken: true })` rotates on every use (the old
// one is consumed; using it again is refused and revokes the whole grant).
//
// RP-Initiated Logout (`/session/end`) and Back-Channel Logout are on; a client
// gets logout tokens once it has a `backchannel_logout_uri`
// (`backchannel_logout_session_required: true` puts `sid` in its id_tokens and
// logout tokens). oidc-provider 9 refuses to POST them to special-use addresses
// (127.0.0.0/8 included: its SSRF-protecting undici dispatcher destroys the
// socket); its supported override is the `fetch` option, used here to drop that
// dispatcher for loopback URLs only (and to record what the provider sent).
//
// Interaction routes (ours, not oidc-provider's dev interactions):
//   GET  /interaction/:uid  tiny HTML form (username field) for humans
//   POST /interaction/:uid  `username=alice` logs alice in AND grants consent to the
//                           requested scopes/claims, then 303s back to the provider;
//                           `action=deny` ends the flow with error=access_denied.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK } from 'jose';
import { listen, closeServer } from './ports.mjs';
import { DEMO_USERS, IDP_COOKIE_NAMES } from './users.mjs';

export { DEMO_USERS, IDP_COOKIE_NAMES };

const DEFAULT_CLIENT = Object.freeze({
  client_id: 'hubgate-demo',
  client_secret: 'hubgate-demo-secret',
  redirect_uris: [],
});

// Minimal in-memory adapter. Clients are looked up in a mutable map so their
// redirect_uris can be set after the worker's port is known (oidc-provider's
// static `clients` are frozen at construction).
function makeAdapterFactory(clientStore) {
  const store = new Map(); // key -> { payload, exp }
  const byUid = new Map();
  const byUserCode = new Map();
  const grants = new Map(); // grantId -> Set(key)
  const now = () => Math.floor(Date.now() / 1000);
  const alive = (e) => e && (!e.exp || e.exp > now());

  return (model) => {
    const key = (id) => `${model}:${id}`;
    return {
      async find(id) {
        if (model === 'Client') {
          const c = clientStore.get(id);
          return c ? structuredClone(c) : undefined;
        }
        const e = store.get(key(id));
        return alive(e) ? e.payload : undefined;
      },
      async findByUid(uid) {
        const id = byUid.get(uid);
        return id ? this.find(id) : undefined;
      },
      async findByUserCode(code) {
        const id = byUserCode.get(code);
        return id ? this.find(id) : undefined;
      },
      async upsert(id, payload, expiresIn) {
        if (model === 'Client') {
          clientStore.set(id, payload);
          return;
        }
        const k = key(id);
        store.set(k, { payload, exp: expiresIn ? now() + expiresIn : 0 });
        if (model === 'Session' && payload.uid) byUid.set(payload.uid, id);
        if (payload.userCode) byUserCode.set(payload.userCode, id);
        if (payload.grantId) {
          if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
          grants.get(payload.grantId).add(k);
        }
      },
      async consume(id) {
        const e = store.get(key(id));
        if (e) e.payload.consumed = now();
      },
      async destroy(id) {
        if (model === 'Client') {
          clientStore.delete(id);
          return;
        }
        store.delete(key(id));
      },
      async revokeByGrantId(grantId) {
        for (const k of grants.get(grantId) ?? []) store.delete(k);
        grants.delete(grantId);
      },
    };
  };
}

function makeStats() {
  const requests = Object.create(null);
  return {
    requests, // path -> count
    total: 0,
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
    },
  };
}

const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i;

/**
 * oidc-provider's outgoing fetch (the `fetch` option; it passes its SSRF-protecting
 * dispatcher in `options`): without that dispatcher for loopback URLs, so the
 * provider can POST logout tokens to a worker on 127.0.0.1; unchanged otherwise.
 * Each request is recorded in `outgoing` as { url, method, body, status, headers, error }
 * (status/headers once the answer came; the body is the form as sent).
 */
function makeProviderFetch(outgoing) {
  return async (url, options) => {
    const entry = { url: String(url), method: options.method ?? 'GET', body: options.body === undefined ? undefined : String(options.body), status: null, headers: null, error: null };
    outgoing.push(entry);
    let init = options;
    if (LOOPBACK_HOST.test(new URL(url).hostname)) {
      init = { ...options };
      delete init.dispatcher;
    }
    try {
      const res = await globalThis.fetch(url, init);
      entry.status = res.status;
      entry.headers = Object.fromEntries(res.headers);
      return res;
    } catch (err) {
      entry.error = err;
      throw err;
    }
  };
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(body);
}

/**
 * Start the provider.
 * @param {object} [opts]
 * @param {number} [opts.port=0]
 * @param {object[]} [opts.clients] client metadata (client_id, client_secret, redirect_uris, …);
 *   default one client `hubgate-demo` / `hubgate-demo-secret` with no redirect_uris yet.
 * @param {Record<string, object>} [opts.users] username -> claims (default DEMO_USERS)
 * @param {boolean} [opts.sso=true] keep an IdP session so a second authorize is silent
 *   (like a real IdP). With false every authorize asks for the username again.
 * @param {boolean} [opts.quiet=true] don't log provider server errors
 * @param {boolean|Function} [opts.rotateRefreshToken] oidc-provider's `rotateRefreshToken`
 *   (true: a new refresh token on every refresh); default: oidc-provider's own policy
 */
export async function startIdp({ port = 0, clients, users = DEMO_USERS, sso = true, quiet = true, rotateRefreshToken } = {}) {
  const stats = makeStats();
  const outgoing = []; // the provider's own requests (logout tokens), see makeProviderFetch
  const faults = new Map(); // path -> { status, delayMs, body }
  const clientStore = new Map();
  for (const c of clients ?? [DEFAULT_CLIENT]) {
    clientStore.set(c.client_id, {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...structuredClone(c),
    });
  }

  let handler = (req, res) => send(res, 503, 'text/plain', 'starting');
  const server = http.createServer((req, res) => handler(req, res));
  const bound = await listen(server, port);
  const issuer = `http://127.0.0.1:${bound}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = `idp-${crypto.randomBytes(6).toString('hex')}`;
  jwk.alg = 'RS256';
  jwk.use = 'sig';

  const provider = new Provider(issuer, {
    adapter: makeAdapterFactory(clientStore),
    jwks: { keys: [jwk] },
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
      names: { ...IDP_COOKIE_NAMES },
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'groups'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    conformIdTokenClaims: false, // put the scope claims into the id_token too
    responseTypes: ['code'],
    pkce: { required: () => true }, // S256 is the only method oidc-provider offers
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
    },
    fetch: makeProviderFetch(outgoing),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const user = Object.values(users).find((u) => u.sub === sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return structuredClone(user);
        },
      };
    },
    ttl: {
      Session: 3600,
      Interaction: 600,
      AuthorizationCode: 60,
      AccessToken: 600,
      IdToken: 600,
      Grant: 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
    ...(rotateRefreshToken === undefined ? {} : { rotateRefreshToken }),
  });
  if (!quiet) {
    provider.on('server_error', (ctx, err) => console.error('[idp] server_error', err));
  }

  const koa = provider.callback();

  async function interaction(req, res, url) {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (err) {
      return send(res, 400, 'text/plain; charset=utf-8', `interaction not found: ${err.message}\n`);
    }
    if (req.method === 'GET') {
      const client = details.params.client_id;
      const names = Object.keys(users).map(esc).join(', ');
      return send(
        res,
        200,
        'text/html; charset=utf-8',
        `<!doctype html><meta charset="utf-8"><title>Demo IdP sign-in</title>
<h1>Demo IdP</h1>
<p>Sign in to <code>${esc(client)}</code> (scopes: <code>${esc(details.params.scope ?? '')}</code>).</p>
<form method="post" action="${esc(url.pathname)}">
  <label>Username <input name="username" autofocus autocomplete="username"></label>
  <button type="submit">Sign in</button>
  <button type="submit" name="action" value="deny">Deny</button>
</form>
<p>Demo users: ${names}. No password.</p>`,
      );
    }
    if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, POST' });

    const form = new URLSearchParams(await readBody(req));
    if (form.get('action') === 'deny') {
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user denied the request' },
        { mergeWithLastSubmission: false },
      );
    }
    const username = (form.get('username') ?? '').trim();
    const user = users[username];
    if (!user) {
      return send(res, 400, 'text/plain; charset=utf-8', `unknown user ${JSON.stringify(username)}\n`);
    }
    const accountId = user.sub;
    const { prompt, params } = details;
    let grant;
    if (details.grantId && details.session?.accountId === accountId) {
      grant = await provider.Grant.find(details.grantId);
    }
    grant ??= new provider.Grant({ accountId, clientId: params.client_id });
    // Grant everything that was asked for (scopes and claims), automatically.
    grant.addOIDCScope(String(params.scope ?? 'openid'));
    const missingClaims = prompt.details?.missingOIDCClaims;
    if (missingClaims?.length) grant.addOIDCClaims(missingClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details?.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId, remember: sso }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  handler = async (req, res) => {
    const url = new URL(req.url, issuer);
    stats.hit(url.pathname);
    const fault = faults.get(url.pathname);
    if (fault) {
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      if (fault.status) {
        return send(res, fault.status, 'application/json', fault.body ?? JSON.stringify({ error: 'injected_fault' }));
      }
    }
    if (!sso && (url.pathname === '/auth' || url.pathname.startsWith('/auth/')) && req.headers.cookie) {
      // No single sign-on: authorize (and its resume) never see an earlier IdP session.
      req.headers.cookie = req.headers.cookie
        .split(';')
        .filter((c) => !c.trim().startsWith(`${IDP_COOKIE_NAMES.session}=`) && !c.trim().startsWith(`${IDP_COOKIE_NAMES.session}.sig=`))
        .join(';');
    }
    if (url.pathname.startsWith('/interaction/')) {
      try {
        await interaction(req, res, url);
      } catch (err) {
        if (!quiet) console.error('[idp] interaction error', err);
        if (!res.headersSent) send(res, 500, 'text/plain', `interaction error: ${err.message}\n`);
      }
      return;
    }
    koa(req, res);
  };

  return {
    issuer,
    url: issuer,
    port: bound,
    provider,
    stats,
    /** Requests the provider made itself (back-channel logout POSTs): { url, method, body, status, headers, error }. */
    outgoing,
    users,
    kid: jwk.kid,
    /** Replace a client's redirect_uris (e.g. once the worker's URL is known). */
    setRedirectUris(clientId, uris) {
      const c = clientStore.get(clientId);
      if (!c) throw new Error(`no client ${clientId}`);
      c.redirect_uris = [...uris];
    },
    /**
     * Set (or, with `undefined`, remove) metadata of a client, e.g. its logout
     * URIs once the worker's URL is known: `backchannel_logout_uri`,
     * `backchannel_logout_session_required`, `post_logout_redirect_uris`.
     */
    setClientMetadata(clientId, meta) {
      const c = clientStore.get(clientId);
      if (!c) throw new Error(`no client ${clientId}`);
      for (const [k, v] of Object.entries(meta)) {
        if (v === undefined) delete c[k];
        else c[k] = structuredClone(v);
      }
    },
    /** Add or replace a client. */
    setClient(meta) {
      clientStore.set(meta.client_id, {
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        ...structuredClone(meta),
      });
    },
    client(clientId) {
      return structuredClone(clientStore.get(clientId));
    },
    /**
     * Make `path` misbehave: `{ status }` answers that status (JSON body),
     * `{ delayMs }` waits first. `null` clears it.
     */
    setFault(path, fault) {
      if (fault) faults.set(path, fault);
      else faults.delete(path);
    },
    close() {
      return closeServer(server);
    },
  };
}
