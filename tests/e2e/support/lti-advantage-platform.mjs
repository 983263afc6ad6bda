// A stand-in LTI 1.3 platform with the LTI Advantage services and LTI Dynamic
// Registration, in Node (`jose` signs and verifies), on http://127.0.0.1:<port>
// (URLs may say `localhost` instead: the `host` option). Several platforms
// live in one server, each under /p/<name>/ with its own issuer
// (http://127.0.0.1:<port>/p/<name>), client id, deployment id, key,
// contexts (courses), rosters, line items and tokens. Shapes as the 1EdTech
// specs document them:
//
//   GET  /p/<n>/start?hint=…      the user clicks the tool link: 302 to the tool's
//                                 login initiation (LTI Core 1.3, 5.1.1) with iss,
//                                 login_hint, target_link_uri, lti_message_hint,
//                                 client_id, lti_deployment_id. `startUrl(n, opts)`
//                                 registers the launch and gives this URL.
//   GET  /p/<n>/authorize         the OIDC authentication request (IMS Security
//                                 Framework 5.1.1.2), checked; a page that form_posts
//                                 id_token + state to the redirect_uri. The id_token
//                                 (RS256, kid) carries a resource link launch with the
//                                 context, roles, email, and unless the launch says
//                                 otherwise the Names and Roles claim
//                                 (…/lti-nrps/claim/namesroleservice) and the
//                                 Assignment and Grade claim (…/lti-ags/claim/endpoint).
//   GET  /p/<n>/jwks              the platform's key set (counted)
//   GET  /p/<n>/.well-known/openid-configuration
//                                 LTI Dynamic Registration 1.0, 3.4: the platform's
//                                 OpenID configuration (issuer, the endpoints,
//                                 scopes_supported, the …/lti-platform-configuration
//                                 block with product_family_code, version,
//                                 messages_supported). While a registration token of
//                                 this platform is outstanding (issued, not yet used),
//                                 it needs `Authorization: Bearer <that token>` (401
//                                 otherwise); with none outstanding it is public.
//                                 `state(n).configPatch` (an object) is merged into it:
//                                 a test's lie (e.g. another issuer).
//   POST /p/<n>/register          3.5.2 / 3.6: the tool's client registration (RFC 7591
//                                 with the …/lti-tool-configuration block), with
//                                 `Authorization: Bearer <registration token>` (one-time,
//                                 from `registrationToken(n)`: unknown or used → 401
//                                 invalid_token). The body is checked (application/json;
//                                 application_type web; response_types [id_token];
//                                 grant_types with implicit and client_credentials;
//                                 initiate_login_uri, redirect_uris, jwks_uri URLs;
//                                 token_endpoint_auth_method private_key_jwt; the tool
//                                 configuration's domain, target_link_uri and messages,
//                                 the URLs on the domain): wrong → 400
//                                 invalid_client_metadata (invalid_redirect_uri for the
//                                 redirect URIs). Accepted: a new client id and
//                                 deployment id, answered 200 with the registration
//                                 echoed, `client_id`, and the tool configuration's
//                                 `deployment_id`. From then on the platform launches as
//                                 that client by default (the registered login
//                                 initiation URL, the id_token's aud and deployment),
//                                 checks the registered redirect URIs, and grants tokens
//                                 to it (its assertion verified at the registered
//                                 jwks_uri); the earlier clients stay valid
//                                 (`startUrl(n, { clientId })` launches as one).
//   POST /p/<n>/token             OAuth 2.0 client credentials grant with an RFC 7523
//                                 JWT client assertion (IMS Security Framework 4.1):
//                                 the assertion is verified against the tool's key set
//                                 (the worker's /hub/lti13/jwks, fetched and cached,
//                                 refetched for an unknown kid): RS256 with a kid,
//                                 iss = sub = client_id, aud = the token URL (or
//                                 `tokenAudience`), exp in the future, iat and jti
//                                 present, a jti never seen before (a reused one is
//                                 400 invalid_grant). Grants the requested scopes it
//                                 knows; none known → 400 invalid_scope.
//   GET  /p/<n>/nrps/<ctx>/memberships
//                                 Names and Roles Provisioning Services 2.0: a
//                                 membership container, `pageSize` members a page, the
//                                 next page in `Link: <…>; rel="next"` (an opaque URL:
//                                 a page asked for without it is refused). `role` and
//                                 `limit` query parameters are honoured.
//   GET  /p/<n>/ags/<ctx>/lineitems            line items container (AGS 2.0)
//   POST /p/<n>/ags/<ctx>/lineitems            create a line item → 201
//   GET  /p/<n>/ags/<ctx>/lineitems/<i>        one line item
//   POST /p/<n>/ags/<ctx>/lineitems/<i>/scores a score → `scoreStatus` (204; 200 with a body)
//   GET  /p/<n>/ags/<ctx>/lineitems/<i>/results results (result.readonly)
//
// Service requests need `Authorization: Bearer <token from /token>`: none,
// unknown or expired → 401 (WWW-Authenticate: Bearer …); the token lacks the
// scope → 403 insufficient_scope; a wrong request media type → 415; an Accept
// that does not name the response media type → 406; an invalid body → 400.
// Checked in that order.
//
// Every request is recorded (`state(n).requests`); token requests in
// `state(n).tokenRequests` (with the verified assertion's header and claims),
// configuration fetches in `state(n).configRequests`, registration posts in
// `state(n).registrationRequests` (headers, Authorization, body, the parsed
// JSON, errors, status, the client id and deployment given), the accepted
// ones in `state(n).registrations`, every client in `state(n).clients`,
// service requests in `state(n).serviceRequests` (kind, url, headers, body,
// the token's scopes, the answer's status); everything the platform found
// wrong with what the tool sent, in `state(n).problems` (a correct tool leaves
// it empty). `state(n).fail.{token,nrps,ags,configuration,registration}`
// injects failures: a status number (answered with a JSON error) or 'reset'
// (the connection is dropped).
import http from 'node:http';
import crypto from 'node:crypto';
import {
  SignJWT,
  jwtVerify,
  createLocalJWKSet,
  exportJWK,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  decodeJwt,
} from 'jose';
import { listen, closeServer } from './ports.mjs';
import { follow } from './worker.mjs';
import { parseForm } from './lti-platform.mjs';

export const ROLE = 'http://purl.imsglobal.org/vocab/lis/v2/membership#';
export const CLAIM = 'https://purl.imsglobal.org/spec/lti/claim/';
export const NRPS_CLAIM = 'https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice';
export const AGS_CLAIM = 'https://purl.imsglobal.org/spec/lti-ags/claim/endpoint';
export const SCOPES = Object.freeze({
  nrps: 'https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly',
  lineitem: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem',
  lineitemReadonly: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly',
  resultReadonly: 'https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly',
  score: 'https://purl.imsglobal.org/spec/lti-ags/scope/score',
});
export const AGS_SCOPES = Object.freeze([SCOPES.lineitem, SCOPES.lineitemReadonly, SCOPES.resultReadonly, SCOPES.score]);
const KNOWN_SCOPES = new Set(Object.values(SCOPES));
export const MEDIA = Object.freeze({
  membership: 'application/vnd.ims.lti-nrps.v2.membershipcontainer+json',
  lineItem: 'application/vnd.ims.lis.v2.lineitem+json',
  lineItemContainer: 'application/vnd.ims.lis.v2.lineitemcontainer+json',
  score: 'application/vnd.ims.lis.v1.score+json',
  resultContainer: 'application/vnd.ims.lis.v2.resultcontainer+json',
});
export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** LTI Dynamic Registration 1.0: the platform's block in its OpenID configuration, the tool's in its registration. */
export const PLATFORM_CONFIGURATION = 'https://purl.imsglobal.org/spec/lti-platform-configuration';
export const TOOL_CONFIGURATION = 'https://purl.imsglobal.org/spec/lti-tool-configuration';
/** The message types the stand-in supports (its configuration's messages_supported). */
export const MESSAGES_SUPPORTED = Object.freeze(['LtiResourceLinkRequest', 'LtiDeepLinkingRequest']);
export const ACTIVITY_PROGRESS = Object.freeze(['Initialized', 'Started', 'InProgress', 'Submitted', 'Completed']);
export const GRADING_PROGRESS = Object.freeze(['FullyGraded', 'Pending', 'PendingManual', 'Failed', 'NotReady']);
/** ISO 8601 date-time with a time zone (sub-second precision optional). */
export const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** A role as a full URI: a short name (`Learner`) is a context membership role. */
export const roleUri = (r) => (r.includes('#') || r.includes('/') ? r : ROLE + r);
/** The media type of a Content-Type value (no parameters, lower case). */
const mediaType = (v) => (v ?? '').split(';')[0].trim().toLowerCase();
/** True when the Accept header names `type` (parameters ignored; a wildcard does not count). */
const acceptNames = (v, type) => (v ?? '').split(',').some((part) => mediaType(part) === type);
const hasAny = (have, wanted) => wanted.some((s) => have.includes(s));

/**
 * A roster entry for `setRoster`: `{ user, roles, status?, name?, email? }`.
 * `status: null` leaves the field out (NRPS 2.0: Active is then assumed).
 */
export function member(user, roles = ['Learner'], status = 'Active', extra = {}) {
  return { user, roles: [].concat(roles), status, ...extra };
}

/**
 * @param {object} o
 * @param {string} o.tool the worker's origin (login initiation, redirect_uri, its key set)
 * @param {number} [o.port=0]
 * @param {Array<{name:string, clientId?:string, deploymentId?:string, tokenAudience?:string, expiresIn?:number}>} [o.platforms]
 * @param {number} [o.pageSize=2] members (and line items) per page
 * @param {string} [o.toolJwksUrl] default `${tool}/hub/lti13/jwks`
 * @param {Array<{id:string,label:string,title:string}>} [o.contexts] contexts every platform starts with
 *   (default one: course-7 / ADV7)
 * @param {string} [o.host='127.0.0.1'] the host name in its URLs (issuers included): `localhost` gives
 *   issuers on another host than the default's (it listens on 127.0.0.1 either way)
 */
export async function startAdvantagePlatform({
  tool,
  port = 0,
  platforms = [{ name: 'adv' }],
  pageSize = 2,
  toolJwksUrl,
  contexts = [{ id: 'course-7', label: 'ADV7', title: 'Advantage 7: Data Science' }],
  host = '127.0.0.1',
  verbose = process.env.HUBGATE_E2E_VERBOSE === '1',
} = {}) {
  if (!/^(127\.\d+\.\d+\.\d+|localhost)$/.test(host)) throw new TypeError(`startAdvantagePlatform: host ${host} is not a loopback name`);
  if (!tool) throw new TypeError('startAdvantagePlatform: `tool` (the worker origin) is required');
  let toolOrigin = tool.replace(/\/$/, '');
  let toolKeysUrl = toolJwksUrl ?? `${toolOrigin}/hub/lti13/jwks`;
  /** The tool's key set as last fetched; refetched for an unknown kid. */
  const toolKeys = { jwks: null, fetches: 0 };
  /** Key sets at other URLs a registration named: url → { jwks, fetches }. */
  const otherToolKeys = new Map();
  const log = (...a) => verbose && process.stderr.write(`[lti-advantage] ${a.join(' ')}\n`);
  const byName = new Map();
  /** Requests to no platform (404). */
  const strayRequests = [];
  let base = ''; // http://127.0.0.1:<port>, once listening

  async function newPlatform({ name, clientId = `hubgate-${name}`, deploymentId = `dep-${name}`, tokenAudience, expiresIn = 3600 }) {
    if (!/^[a-z0-9_-]+$/i.test(name)) throw new Error(`bad platform name ${name}`);
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = await exportJWK(publicKey);
    jwk.kid = await calculateJwkThumbprint(jwk);
    jwk.alg = 'RS256';
    jwk.use = 'sig';
    const P = {
      name,
      /** The client the platform launches as by default: the configured one, then the newest registered. */
      clientId,
      deploymentId,
      /**
       * Every client of this platform: client id → { clientId, deploymentId, dynamic,
       * initiateLoginUri, redirectUris, jwksUri, scopes } (the configured client's
       * URLs are null: the tool's, `tool` / `setTool`).
       */
      clients: new Map([[clientId, { clientId, deploymentId, dynamic: false, initiateLoginUri: null, redirectUris: null, jwksUri: null, scopes: null }]]),
      /** Registration tokens: token → { issuedAt, usedAt } (one-time). */
      registrationTokens: new Map(),
      configRequests: [],
      registrationRequests: [],
      registrations: [],
      /** Merged into the OpenID configuration it serves (a test's lie), or null. */
      configPatch: null,
      privateKey,
      jwk,
      /** `aud` the client assertion must carry; the token URL when undefined. */
      tokenAudience,
      /** expires_in of the tokens it grants (seconds). */
      expiresIn,
      /** status of a successful score POST: 204 (no body) or 200 (a JSON body). */
      scoreStatus: 204,
      contexts: new Map(),
      subs: new Map(),
      pending: new Map(),
      counter: 0,
      authorizeRequests: [],
      launches: [],
      requests: [],
      tokenRequests: [],
      serviceRequests: [],
      tokens: new Map(),
      jtis: new Set(),
      cursors: new Set(),
      fail: { token: null, nrps: null, ags: null, configuration: null, registration: null },
      problems: [],
      jwksFetches: 0,
      get issuer() {
        return `${base}/p/${name}`;
      },
      get tokenUrl() {
        return `${base}/p/${name}/token`;
      },
      get configurationUrl() {
        return `${base}/p/${name}/.well-known/openid-configuration`;
      },
      get registrationEndpoint() {
        return `${base}/p/${name}/register`;
      },
      /** Service requests of `kind` ('nrps', 'lineitems.get', 'lineitems.post', 'lineitem.get', 'scores.post', 'results.get'), optionally for one context. */
      service(kind, ctx) {
        return P.serviceRequests.filter((r) => (!kind || r.kind === kind) && (ctx === undefined || r.context === ctx));
      },
      /** Successful token requests that granted `scope` (all successful ones without it). */
      grants(scope) {
        return P.tokenRequests.filter((r) => r.status === 200 && (!scope || r.granted.includes(scope)));
      },
      /** Scores received for a context (every valid score POST, in order). */
      scores(ctx) {
        return P.service('scores.post', ctx).filter((r) => r.status >= 200 && r.status < 300);
      },
    };
    for (const c of contexts) addContext(P, c);
    return P;
  }

  function addContext(P, { id, label, title = label, idQuery = '', roster = [] }) {
    if (P.contexts.has(id)) throw new Error(`context ${id} exists at ${P.name}`);
    const c = { id, label, title, idQuery, roster: [], lineItems: [], nextItem: 1, results: new Map() };
    P.contexts.set(id, c);
    // the resource link's own line item (the launch's AGS `lineitem`)
    createLineItem(P, c, { label: 'Week 1 notebook', scoreMaximum: 10, resourceLinkId: `rl-${id}`, resourceId: 'week1', tag: 'notebook' });
    setRoster(P, id, roster);
    return c;
  }

  function subOf(P, user) {
    if (!P.subs.has(user)) {
      // opaque and stable: nothing like the username (a tool must use `sub`, not guess it)
      P.subs.set(user, `u-${crypto.createHash('sha256').update(`${P.name}\u0000${user}`).digest('hex').slice(0, 20)}`);
    }
    return P.subs.get(user);
  }

  function setRoster(P, ctxId, members) {
    const c = P.contexts.get(ctxId);
    if (!c) throw new Error(`no context ${ctxId} at ${P.name}`);
    c.roster = members.map((m) => {
      const roles = (m.roles ?? ['Learner']).map(roleUri);
      const name = m.name ?? m.user.replace(/^./, (x) => x.toUpperCase());
      const out = {
        ...(m.status === null ? {} : { status: m.status ?? 'Active' }),
        name,
        given_name: name,
        family_name: 'Example',
        email: m.email ?? `${m.user}@example.edu`,
        user_id: subOf(P, m.user),
        roles,
      };
      return out;
    });
  }

  /** Where the tool of `client` is: its registered URLs, or the tool's (`tool`, `setTool`) for the configured client. */
  const toolUrls = (client) => ({
    login: client.initiateLoginUri ?? `${toolOrigin}/hub/lti13/oauth_login`,
    redirectUris: client.redirectUris ?? [`${toolOrigin}/hub/lti13/oauth_callback`],
    jwks: client.jwksUri ?? toolKeysUrl,
  });

  const containerUrl = (P, c) => `${base}/p/${P.name}/ags/${encodeURIComponent(c.id)}/lineitems`;
  const membershipsUrl = (P, c) => `${base}/p/${P.name}/nrps/${encodeURIComponent(c.id)}/memberships`;

  function createLineItem(P, c, body) {
    const n = c.nextItem++;
    const item = { id: `${containerUrl(P, c)}/${n}${c.idQuery ? `?${c.idQuery}` : ''}` };
    for (const k of ['label', 'scoreMaximum', 'resourceId', 'tag', 'resourceLinkId', 'startDateTime', 'endDateTime', 'gradesReleased']) {
      if (body[k] !== undefined) item[k] = body[k];
    }
    c.lineItems.push({ n, item });
    return item;
  }

  // ---------------------------------------------------------------------------
  // HTTP plumbing

  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on('data', (d) => {
        size += d.length;
        if (size > 1 << 20) {
          reject(new Error('body over 1 MiB'));
          req.destroy();
        } else chunks.push(d);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  function answer(res, rec, status, body, headers = {}) {
    if (rec) rec.status = status;
    const h = { 'cache-control': 'no-store', ...headers };
    let payload = '';
    if (body !== undefined && body !== null && status !== 204) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
    }
    res.writeHead(status, h);
    res.end(payload);
  }

  /** Injected failure for `kind`: true when it answered (or dropped the connection). */
  function injected(P, kind, req, res, rec) {
    const f = P.fail[kind];
    if (f === null || f === undefined || f === false) return false;
    if (f === 'reset') {
      if (rec) rec.status = 'reset';
      req.socket.destroy();
      return true;
    }
    answer(res, rec, Number(f), { error: 'server_error', error_description: `${kind} failure injected by the test` });
    return true;
  }

  // ---------------------------------------------------------------------------
  // Launch

  function start(P, q, res) {
    const launch = P.pending.get(q.get('hint') ?? '');
    if (!launch) return answer(res, null, 400, { error: 'unknown launch hint: use startUrl()' });
    const init = new URL(toolUrls(launch.client).login);
    for (const [k, v] of Object.entries({
      iss: P.issuer,
      login_hint: launch.user,
      target_link_uri: launch.target,
      lti_message_hint: launch.hint,
      client_id: launch.client.clientId,
      lti_deployment_id: launch.deploymentId ?? launch.client.deploymentId,
    })) {
      init.searchParams.set(k, v);
    }
    res.writeHead(302, { location: init.href, 'cache-control': 'no-store' });
    res.end();
  }

  async function authorize(P, q, res) {
    const rec = { at: Date.now(), query: Object.fromEntries(q), problems: [] };
    P.authorizeRequests.push(rec);
    const problems = rec.problems;
    const launch = P.pending.get(q.get('lti_message_hint') ?? '');
    // the client the launch was started for (its login initiation named it)
    const client = launch?.client ?? P.clients.get(P.clientId);
    for (const [k, v] of Object.entries({ scope: 'openid', response_type: 'id_token', response_mode: 'form_post', prompt: 'none', client_id: client.clientId })) {
      if (q.get(k) !== v) problems.push(`${k} must be ${JSON.stringify(v)}, got ${JSON.stringify(q.get(k))}`);
    }
    if (!toolUrls(client).redirectUris.includes(q.get('redirect_uri'))) problems.push(`redirect_uri ${JSON.stringify(q.get('redirect_uri'))} is not registered`);
    for (const k of ['state', 'nonce']) if (!q.get(k)) problems.push(`${k} missing`);
    if (!launch) problems.push(`unknown or used lti_message_hint ${JSON.stringify(q.get('lti_message_hint'))}`);
    else if (q.get('login_hint') !== launch.user) problems.push(`login_hint ${JSON.stringify(q.get('login_hint'))} is not ${JSON.stringify(launch.user)}`);
    if (problems.length) {
      P.problems.push(...problems.map((p) => `authorize: ${p}`));
      return answer(res, null, 400, `<!doctype html><title>authorization refused</title><pre id="problems">${esc(problems.join('\n'))}</pre>`, {
        'content-type': 'text/html; charset=utf-8',
      });
    }
    P.pending.delete(launch.hint);
    const c = P.contexts.get(launch.context);
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      nonce: q.get('nonce'),
      email: launch.email,
      name: launch.user.replace(/^./, (x) => x.toUpperCase()),
      given_name: launch.user,
      family_name: 'Example',
      [`${CLAIM}message_type`]: 'LtiResourceLinkRequest',
      [`${CLAIM}version`]: '1.3.0',
      [`${CLAIM}deployment_id`]: launch.deploymentId ?? client.deploymentId,
      [`${CLAIM}target_link_uri`]: launch.target,
      [`${CLAIM}resource_link`]: { id: `rl-${c.id}`, title: 'Week 1 notebook' },
      [`${CLAIM}roles`]: launch.roles,
      [`${CLAIM}context`]: { id: c.id, label: c.label, title: c.title, type: ['http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering'] },
      [`${CLAIM}tool_platform`]: { guid: `${P.name}-guid`, name: `Advantage LMS (${P.name})`, product_family_code: 'hubgate-e2e', version: '1' },
      [`${CLAIM}launch_presentation`]: { document_target: 'iframe', return_url: `${P.issuer}/course/${encodeURIComponent(c.id)}` },
    };
    if (launch.nrps) {
      claims[NRPS_CLAIM] = { context_memberships_url: membershipsUrl(P, c), service_versions: ['2.0'] };
    }
    if (launch.ags) {
      const ags = { scope: launch.agsScopes ?? [...AGS_SCOPES], lineitems: containerUrl(P, c) };
      const li = launch.lineitem === true ? c.lineItems[0]?.item.id : launch.lineitem;
      if (li) ags.lineitem = li;
      claims[AGS_CLAIM] = ags;
    }
    Object.assign(claims, launch.extraClaims);
    const sub = subOf(P, launch.user);
    const idToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: P.jwk.kid, typ: 'JWT' })
      .setIssuer(P.issuer)
      .setAudience(client.clientId)
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(P.privateKey);
    P.launches.push({ ...launch, clientId: client.clientId, deploymentId: launch.deploymentId ?? client.deploymentId, sub, claims, state: q.get('state'), at: Date.now() });
    const fields = { id_token: idToken, state: q.get('state') };
    const inputs = Object.entries(fields)
      .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
      .join('');
    return answer(
      res,
      null,
      200,
      `<!doctype html><html><head><title>launching</title></head><body><form id="f" method="post" action="${esc(q.get('redirect_uri'))}">${inputs}</form><script>document.getElementById('f').submit()</script></body></html>`,
      { 'content-type': 'text/html; charset=utf-8' },
    );
  }

  // ---------------------------------------------------------------------------
  // Token endpoint (IMS Security Framework 4.1; RFC 6749 4.4; RFC 7523 2.2, 3)

  /** The key set at `url` (the tool's /hub/lti13/jwks unless a registration named another), refetched for an unknown kid. */
  async function toolKeySet(kid, url = toolKeysUrl) {
    let cache = toolKeys;
    if (url !== toolKeysUrl) {
      if (!otherToolKeys.has(url)) otherToolKeys.set(url, { jwks: null, fetches: 0 });
      cache = otherToolKeys.get(url);
    }
    const has = () => cache.jwks?.keys?.some((k) => k.kid === kid);
    if (!has()) {
      cache.fetches += 1;
      const r = await fetch(url, { headers: { accept: 'application/json' } });
      if (!r.ok) throw new Error(`the tool's key set ${url} answered ${r.status}`);
      cache.jwks = await r.json();
    }
    return createLocalJWKSet(cache.jwks);
  }

  async function token(P, req, res, body) {
    const rec = { at: Date.now(), form: null, requested: [], granted: [], header: null, claims: null, status: null, error: null, description: null, accessToken: null, clientId: null };
    P.tokenRequests.push(rec);
    const refuse = (status, error, description) => {
      rec.error = error;
      rec.description = description;
      log(`token ${P.name}: ${status} ${error}: ${description}`);
      return answer(res, rec, status, { error, error_description: description });
    };
    if (req.method !== 'POST') return answer(res, rec, 405, { error: 'invalid_request', error_description: 'POST only' }, { allow: 'POST' });
    if (injected(P, 'token', req, res, rec)) return undefined;
    if (mediaType(req.headers['content-type']) !== 'application/x-www-form-urlencoded') {
      P.problems.push(`token: content-type ${JSON.stringify(req.headers['content-type'])} is not application/x-www-form-urlencoded`);
      return refuse(400, 'invalid_request', 'the body must be application/x-www-form-urlencoded');
    }
    const form = new URLSearchParams(body);
    rec.form = Object.fromEntries(form);
    rec.requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    if (form.get('grant_type') !== 'client_credentials') {
      P.problems.push(`token: grant_type ${JSON.stringify(form.get('grant_type'))}`);
      return refuse(400, 'unsupported_grant_type', 'grant_type must be client_credentials');
    }
    if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
      P.problems.push(`token: client_assertion_type ${JSON.stringify(form.get('client_assertion_type'))}`);
      return refuse(400, 'invalid_client', `client_assertion_type must be ${ASSERTION_TYPE}`);
    }
    const assertion = form.get('client_assertion');
    if (!assertion) {
      P.problems.push('token: no client_assertion');
      return refuse(400, 'invalid_client', 'client_assertion missing');
    }
    try {
      rec.header = decodeProtectedHeader(assertion);
    } catch (e) {
      P.problems.push(`token: client_assertion is not a JWS: ${e.message}`);
      return refuse(400, 'invalid_client', 'client_assertion is not a signed JWT');
    }
    if (rec.header.alg !== 'RS256' || !rec.header.kid) {
      P.problems.push(`token: assertion header ${JSON.stringify(rec.header)} (RS256 with a kid expected)`);
      return refuse(400, 'invalid_client', 'the client assertion must be RS256 with a kid');
    }
    // the client the assertion claims to be (iss = sub = client_id), checked below with the signature
    let claimed;
    try {
      claimed = decodeJwt(assertion);
    } catch (e) {
      P.problems.push(`token: client_assertion has no JSON claims: ${e.message}`);
      return refuse(400, 'invalid_client', 'client_assertion is not a signed JWT');
    }
    const client = P.clients.get(claimed.iss);
    if (!client) {
      P.problems.push(`token: the assertion's iss ${JSON.stringify(claimed.iss)} is no client of this platform`);
      return refuse(400, 'invalid_client', 'unknown client');
    }
    rec.clientId = client.clientId;
    let keys;
    try {
      keys = await toolKeySet(rec.header.kid, toolUrls(client).jwks);
    } catch (e) {
      P.problems.push(`token: ${e.message}`);
      return refuse(400, 'invalid_client', e.message);
    }
    const audience = P.tokenAudience ?? P.tokenUrl;
    try {
      const { payload } = await jwtVerify(assertion, keys, {
        algorithms: ['RS256'],
        issuer: client.clientId,
        subject: client.clientId,
        audience,
        requiredClaims: ['iss', 'sub', 'aud', 'iat', 'exp', 'jti'],
      });
      rec.claims = payload;
    } catch (e) {
      P.problems.push(`token: client assertion refused: ${e.code ?? ''} ${e.message}`);
      return refuse(400, 'invalid_client', `client assertion refused: ${e.message}`);
    }
    const { jti, iat, exp } = rec.claims;
    if (typeof jti !== 'string' || !jti) {
      P.problems.push('token: jti is not a non-empty string');
      return refuse(400, 'invalid_client', 'jti must be a non-empty string');
    }
    if (typeof iat !== 'number' || typeof exp !== 'number' || exp <= iat) {
      P.problems.push(`token: iat ${iat} / exp ${exp}`);
      return refuse(400, 'invalid_client', 'iat and exp must be numbers with exp after iat');
    }
    if (form.has('client_id') && form.get('client_id') !== client.clientId) {
      P.problems.push(`token: client_id ${form.get('client_id')} is not ${client.clientId}`);
      return refuse(400, 'invalid_client', 'client_id does not match the assertion');
    }
    if (P.jtis.has(jti)) {
      P.problems.push(`token: jti ${jti} reused`);
      return refuse(400, 'invalid_grant', 'jti already used');
    }
    P.jtis.add(jti);
    // a registered client gets only the scopes it registered
    const granted = [...new Set(rec.requested.filter((s) => KNOWN_SCOPES.has(s) && (client.scopes === null || client.scopes.includes(s))))];
    if (!granted.length) {
      P.problems.push(`token: no known scope in ${JSON.stringify(form.get('scope'))}`);
      return refuse(400, 'invalid_scope', 'no known scope requested');
    }
    const accessToken = `at-${crypto.randomBytes(24).toString('base64url')}`;
    rec.granted = granted;
    rec.accessToken = accessToken;
    P.tokens.set(accessToken, { scopes: granted, expires: Date.now() + P.expiresIn * 1000, request: rec, clientId: client.clientId });
    log(`token ${P.name}: granted ${granted.join(' ')}`);
    return answer(res, rec, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: P.expiresIn, scope: granted.join(' ') }, { pragma: 'no-cache' });
  }

  /** The bearer token's grant, or answers 401/403 and returns null. */
  function authorizeService(P, req, res, rec, anyOfScopes) {
    const h = req.headers.authorization;
    const realm = `Bearer realm="${P.issuer}"`;
    if (!h) {
      P.problems.push(`${rec.kind}: no Authorization header`);
      answer(res, rec, 401, { error: 'invalid_request', error_description: 'no bearer token' }, { 'www-authenticate': realm });
      return null;
    }
    const m = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(h);
    const grant = m && P.tokens.get(m[1]);
    if (!grant) {
      P.problems.push(`${rec.kind}: Authorization ${JSON.stringify(h.slice(0, 24))}… is not a bearer token this platform issued`);
      answer(res, rec, 401, { error: 'invalid_token', error_description: 'unknown token' }, { 'www-authenticate': `${realm}, error="invalid_token"` });
      return null;
    }
    rec.token = m[1];
    rec.scopes = grant.scopes;
    if (grant.expires <= Date.now()) {
      P.problems.push(`${rec.kind}: an expired token was used`);
      answer(res, rec, 401, { error: 'invalid_token', error_description: 'token expired' }, { 'www-authenticate': `${realm}, error="invalid_token", error_description="expired"` });
      return null;
    }
    if (!hasAny(grant.scopes, anyOfScopes)) {
      P.problems.push(`${rec.kind}: token scopes ${grant.scopes.join(' ')} lack ${anyOfScopes.join(' or ')}`);
      answer(res, rec, 403, { error: 'insufficient_scope', error_description: `needs ${anyOfScopes.join(' or ')}` }, {
        'www-authenticate': `${realm}, error="insufficient_scope", scope="${anyOfScopes.join(' ')}"`,
      });
      return null;
    }
    return grant;
  }

  function requireAccept(P, req, res, rec, type) {
    if (acceptNames(req.headers.accept, type)) return true;
    P.problems.push(`${rec.kind}: Accept ${JSON.stringify(req.headers.accept)} does not name ${type}`);
    answer(res, rec, 406, { error: 'not_acceptable', error_description: `Accept must name ${type}` });
    return false;
  }

  function requireContentType(P, req, res, rec, type) {
    if (mediaType(req.headers['content-type']) === type) return true;
    P.problems.push(`${rec.kind}: Content-Type ${JSON.stringify(req.headers['content-type'])} is not ${type}`);
    answer(res, rec, 415, { error: 'unsupported_media_type', error_description: `Content-Type must be ${type}` });
    return false;
  }

  function parseJson(P, res, rec, body) {
    try {
      const v = JSON.parse(body);
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        rec.json = v;
        return v;
      }
    } catch {
      /* below */
    }
    P.problems.push(`${rec.kind}: the body is not a JSON object`);
    answer(res, rec, 400, { error: 'invalid_request', error_description: 'the body must be a JSON object' });
    return null;
  }

  /** `items` paged by `limit` (≤ pageSize) with an opaque next-page URL; refuses a page not reached by a Link. */
  function page(P, res, rec, url, items) {
    const q = url.searchParams;
    const limit = Math.max(1, Math.min(Number(q.get('limit')) || pageSize, pageSize));
    const n = Number(q.get('page') ?? 1);
    if (!Number.isInteger(n) || n < 1 || (n > 1 && !P.cursors.has(`${url.pathname}|${q.get('page')}|${q.get('cursor')}`))) {
      P.problems.push(`${rec.kind}: page ${q.get('page')} asked for without the platform's Link URL (${url.search})`);
      answer(res, rec, 400, { error: 'invalid_request', error_description: 'follow the Link header for further pages' });
      return null;
    }
    const slice = items.slice((n - 1) * limit, n * limit);
    let link;
    if (n * limit < items.length) {
      const next = new URL(`${base}${url.pathname}`);
      for (const [k, v] of q) if (k !== 'page' && k !== 'cursor') next.searchParams.append(k, v);
      const cursor = crypto.randomBytes(6).toString('hex');
      next.searchParams.set('page', String(n + 1));
      next.searchParams.set('cursor', cursor);
      P.cursors.add(`${url.pathname}|${n + 1}|${cursor}`);
      link = next.href;
      rec.next = link;
    }
    return { slice, link, n };
  }

  // ---------------------------------------------------------------------------
  // Names and Roles Provisioning Services 2.0

  function nrps(P, c, req, res, url) {
    const rec = newServiceRecord(P, 'nrps', c, req, url);
    if (req.method !== 'GET') return answer(res, rec, 405, { error: 'GET only' }, { allow: 'GET' });
    if (injected(P, 'nrps', req, res, rec)) return undefined;
    if (!authorizeService(P, req, res, rec, [SCOPES.nrps])) return undefined;
    if (!requireAccept(P, req, res, rec, MEDIA.membership)) return undefined;
    let members = c.roster;
    const role = url.searchParams.get('role');
    if (role) members = members.filter((m) => m.roles.includes(roleUri(role)));
    const p = page(P, res, rec, url, members);
    if (!p) return undefined;
    rec.members = p.slice.map((m) => m.user_id);
    const selfUrl = `${base}${url.pathname}${url.search}`;
    return answer(
      res,
      rec,
      200,
      { id: selfUrl, context: { id: c.id, label: c.label, title: c.title }, members: p.slice },
      { 'content-type': MEDIA.membership, ...(p.link ? { link: `<${p.link}>; rel="next"` } : {}) },
    );
  }

  // ---------------------------------------------------------------------------
  // Assignment and Grade Services 2.0

  function newServiceRecord(P, kind, c, req, url, body) {
    const rec = {
      at: Date.now(),
      kind,
      context: c?.id,
      method: req.method,
      host: req.headers.host,
      url: `http://${req.headers.host}${req.url}`,
      path: url.pathname,
      search: url.search,
      headers: { ...req.headers },
      body,
      json: undefined,
      token: null,
      scopes: null,
      status: null,
    };
    P.serviceRequests.push(rec);
    return rec;
  }

  function lineItems(P, c, req, res, url, body) {
    if (req.method === 'GET') {
      const rec = newServiceRecord(P, 'lineitems.get', c, req, url, body);
      if (injected(P, 'ags', req, res, rec)) return undefined;
      if (!authorizeService(P, req, res, rec, [SCOPES.lineitem, SCOPES.lineitemReadonly])) return undefined;
      if (!requireAccept(P, req, res, rec, MEDIA.lineItemContainer)) return undefined;
      const q = url.searchParams;
      let items = c.lineItems.map((x) => x.item);
      if (q.get('resource_link_id')) items = items.filter((i) => i.resourceLinkId === q.get('resource_link_id'));
      if (q.get('resource_id')) items = items.filter((i) => i.resourceId === q.get('resource_id'));
      if (q.get('tag')) items = items.filter((i) => i.tag === q.get('tag'));
      // no paging unless the tool asks for a limit
      const p = q.has('limit') || q.has('page') ? page(P, res, rec, url, items) : { slice: items };
      if (!p) return undefined;
      return answer(res, rec, 200, p.slice, { 'content-type': MEDIA.lineItemContainer, ...(p.link ? { link: `<${p.link}>; rel="next"` } : {}) });
    }
    if (req.method === 'POST') {
      const rec = newServiceRecord(P, 'lineitems.post', c, req, url, body);
      if (injected(P, 'ags', req, res, rec)) return undefined;
      if (!authorizeService(P, req, res, rec, [SCOPES.lineitem])) return undefined;
      if (!requireContentType(P, req, res, rec, MEDIA.lineItem)) return undefined;
      const li = parseJson(P, res, rec, body);
      if (!li) return undefined;
      const errors = [];
      if (typeof li.label !== 'string' || !li.label.trim()) errors.push('label is required');
      if (typeof li.scoreMaximum !== 'number' || !(li.scoreMaximum > 0)) errors.push('scoreMaximum must be a number > 0');
      for (const k of ['resourceId', 'tag', 'resourceLinkId', 'startDateTime', 'endDateTime']) {
        if (li[k] !== undefined && typeof li[k] !== 'string') errors.push(`${k} must be a string`);
      }
      if (li.resourceLinkId !== undefined && li.resourceLinkId !== `rl-${c.id}`) errors.push(`unknown resourceLinkId ${li.resourceLinkId}`);
      if (errors.length) {
        rec.errors = errors;
        return answer(res, rec, 400, { error: 'invalid_request', error_description: errors.join('; ') });
      }
      const item = createLineItem(P, c, li);
      rec.created = item;
      return answer(res, rec, 201, item, { 'content-type': MEDIA.lineItem, location: item.id });
    }
    return answer(res, newServiceRecord(P, 'lineitems.other', c, req, url, body), 405, { error: 'GET or POST' }, { allow: 'GET, POST' });
  }

  /** The line item `n` of `c` when the URL's query is the one its id carries (AGS: /scores keeps the query). */
  function itemAt(c, n, url) {
    const found = c.lineItems.find((x) => x.n === n);
    if (!found) return null;
    const want = new URLSearchParams(c.idQuery).toString();
    const got = new URLSearchParams(url.search).toString();
    return want === got ? found : null;
  }

  function lineItem(P, c, n, req, res, url, body) {
    const rec = newServiceRecord(P, 'lineitem.get', c, req, url, body);
    if (req.method !== 'GET') return answer(res, rec, 405, { error: 'GET only here' }, { allow: 'GET' });
    if (injected(P, 'ags', req, res, rec)) return undefined;
    if (!authorizeService(P, req, res, rec, [SCOPES.lineitem, SCOPES.lineitemReadonly])) return undefined;
    const found = itemAt(c, n, url);
    if (!found) return answer(res, rec, 404, { error: 'no such line item' });
    return answer(res, rec, 200, found.item, { 'content-type': MEDIA.lineItem });
  }

  function scores(P, c, n, req, res, url, body) {
    const rec = newServiceRecord(P, 'scores.post', c, req, url, body);
    if (req.method !== 'POST') return answer(res, rec, 405, { error: 'POST only' }, { allow: 'POST' });
    if (injected(P, 'ags', req, res, rec)) return undefined;
    if (!authorizeService(P, req, res, rec, [SCOPES.score])) return undefined;
    if (!requireContentType(P, req, res, rec, MEDIA.score)) return undefined;
    const found = itemAt(c, n, url);
    if (!found) {
      P.problems.push(`scores.post: no line item at ${url.pathname}${url.search}`);
      return answer(res, rec, 404, { error: 'no such line item' });
    }
    rec.lineItem = found.item.id;
    const s = parseJson(P, res, rec, body);
    if (!s) return undefined;
    const errors = [];
    if (typeof s.userId !== 'string' || !s.userId) errors.push('userId is required');
    else if (![...P.subs.values()].includes(s.userId)) errors.push(`userId ${s.userId} is no user of this platform`);
    if (typeof s.timestamp !== 'string' || !ISO_8601.test(s.timestamp) || Number.isNaN(Date.parse(s.timestamp))) {
      errors.push(`timestamp ${JSON.stringify(s.timestamp)} is not an ISO 8601 date-time with a time zone`);
    }
    if (!ACTIVITY_PROGRESS.includes(s.activityProgress)) errors.push(`activityProgress ${JSON.stringify(s.activityProgress)}`);
    if (!GRADING_PROGRESS.includes(s.gradingProgress)) errors.push(`gradingProgress ${JSON.stringify(s.gradingProgress)}`);
    if (s.scoreGiven !== undefined) {
      if (typeof s.scoreGiven !== 'number' || s.scoreGiven < 0) errors.push('scoreGiven must be a number ≥ 0');
      if (s.scoreMaximum === undefined) errors.push('scoreMaximum is required with scoreGiven');
    }
    if (s.scoreMaximum !== undefined && (typeof s.scoreMaximum !== 'number' || !(s.scoreMaximum > 0))) errors.push('scoreMaximum must be a number > 0');
    if (typeof s.scoreGiven === 'number' && typeof s.scoreMaximum === 'number' && s.scoreGiven > s.scoreMaximum) errors.push('scoreGiven is over scoreMaximum');
    if (s.comment !== undefined && typeof s.comment !== 'string') errors.push('comment must be a string');
    const key = `${n}|${s.userId}`;
    const last = c.results.get(key);
    if (last && Date.parse(s.timestamp) < Date.parse(last.timestamp)) errors.push('timestamp is older than the last score for this user');
    if (errors.length) {
      rec.errors = errors;
      P.problems.push(...errors.map((e) => `scores.post: ${e}`));
      return answer(res, rec, 400, { error: 'invalid_request', error_description: errors.join('; ') });
    }
    c.results.set(key, { ...s, lineItemN: n });
    const resultUrl = `${containerUrl(P, c)}/${n}/results?user_id=${encodeURIComponent(s.userId)}`;
    if (P.scoreStatus === 200) return answer(res, rec, 200, { resultUrl });
    return answer(res, rec, P.scoreStatus, null);
  }

  function results(P, c, n, req, res, url) {
    const rec = newServiceRecord(P, 'results.get', c, req, url);
    if (req.method !== 'GET') return answer(res, rec, 405, { error: 'GET only' }, { allow: 'GET' });
    if (injected(P, 'ags', req, res, rec)) return undefined;
    if (!authorizeService(P, req, res, rec, [SCOPES.resultReadonly])) return undefined;
    const itemUrl = new URL(url);
    itemUrl.pathname = itemUrl.pathname.replace(/\/results$/, '');
    itemUrl.searchParams.delete('user_id');
    const found = itemAt(c, n, itemUrl);
    if (!found) return answer(res, rec, 404, { error: 'no such line item' });
    const userId = url.searchParams.get('user_id');
    const out = [];
    for (const [k, s] of c.results) {
      if (!k.startsWith(`${n}|`) || (userId && s.userId !== userId)) continue;
      out.push({
        id: `${containerUrl(P, c)}/${n}/results/${encodeURIComponent(s.userId)}`,
        scoreOf: found.item.id,
        userId: s.userId,
        ...(s.scoreGiven !== undefined ? { resultScore: s.scoreGiven, resultMaximum: s.scoreMaximum } : {}),
        ...(s.comment !== undefined ? { comment: s.comment } : {}),
      });
    }
    return answer(res, rec, 200, out, { 'content-type': MEDIA.resultContainer });
  }

  // ---------------------------------------------------------------------------
  // LTI Dynamic Registration 1.0 (3.4 the platform's configuration; 3.5.2 the
  // tool's registration, an OpenID Connect Dynamic Client Registration / RFC
  // 7591 request; 3.6 the platform's answer)

  /** The platform's OpenID configuration (3.4), with `configPatch` merged in. */
  function openidConfiguration(P) {
    return {
      issuer: P.issuer,
      authorization_endpoint: `${P.issuer}/authorize`,
      token_endpoint: P.tokenUrl,
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS256'],
      jwks_uri: `${P.issuer}/jwks`,
      registration_endpoint: P.registrationEndpoint,
      scopes_supported: ['openid', ...Object.values(SCOPES)],
      response_types_supported: ['id_token'],
      subject_types_supported: ['public', 'pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      claims_supported: ['sub', 'iss', 'name', 'given_name', 'family_name', 'email'],
      [PLATFORM_CONFIGURATION]: {
        product_family_code: 'hubgate-e2e',
        version: '1',
        messages_supported: MESSAGES_SUPPORTED.map((type) => ({ type })),
      },
      ...(P.configPatch ?? {}),
    };
  }

  /** The Bearer token of a request ('' when none, null when the header is something else). */
  function bearerOf(req) {
    const h = req.headers.authorization;
    if (h === undefined) return '';
    const m = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(h);
    return m ? m[1] : null;
  }

  const outstandingToken = (P) => [...P.registrationTokens.values()].some((t) => !t.usedAt);

  function configuration(P, req, res) {
    const rec = { at: Date.now(), method: req.method, headers: { ...req.headers }, authorization: req.headers.authorization ?? null, token: null, status: null, error: null };
    P.configRequests.push(rec);
    if (req.method !== 'GET') return answer(res, rec, 405, { error: 'invalid_request', error_description: 'GET only' }, { allow: 'GET' });
    if (injected(P, 'configuration', req, res, rec)) return undefined;
    const presented = bearerOf(req);
    rec.token = presented || null;
    if (outstandingToken(P)) {
      const t = presented ? P.registrationTokens.get(presented) : undefined;
      if (!t || t.usedAt) {
        rec.error = presented ? (t ? 'used registration token' : 'unknown registration token') : 'no registration token';
        log(`configuration ${P.name}: 401 ${rec.error}`);
        return answer(res, rec, 401, { error: 'invalid_token', error_description: rec.error }, { 'www-authenticate': `Bearer realm="${P.issuer}", error="invalid_token"` });
      }
    }
    rec.configuration = openidConfiguration(P);
    return answer(res, rec, 200, rec.configuration);
  }

  /** An absolute http(s) URL, or null. */
  const urlOrNull = (v) => {
    if (typeof v !== 'string') return null;
    try {
      const u = new URL(v);
      return u.protocol === 'https:' || u.protocol === 'http:' ? u : null;
    } catch {
      return null;
    }
  };

  /** What is wrong with a registration body (LTI Dynamic Registration 1.0, 3.5.2): [errors, redirect URI errors]. */
  function registrationErrors(r) {
    const errors = [];
    const redirectErrors = [];
    const isStrings = (v) => Array.isArray(v) && v.every((x) => typeof x === 'string');
    if (r.application_type !== 'web') errors.push(`application_type must be "web", got ${JSON.stringify(r.application_type)}`);
    if (!isStrings(r.response_types) || r.response_types.length !== 1 || r.response_types[0] !== 'id_token') {
      errors.push(`response_types must be ["id_token"], got ${JSON.stringify(r.response_types)}`);
    }
    if (!isStrings(r.grant_types) || !r.grant_types.includes('implicit') || !r.grant_types.includes('client_credentials')) {
      errors.push(`grant_types must contain "implicit" and "client_credentials", got ${JSON.stringify(r.grant_types)}`);
    }
    if (r.token_endpoint_auth_method !== 'private_key_jwt') errors.push(`token_endpoint_auth_method must be "private_key_jwt", got ${JSON.stringify(r.token_endpoint_auth_method)}`);
    if (r.client_name !== undefined && (typeof r.client_name !== 'string' || !r.client_name.trim())) errors.push('client_name must be a non-empty string');
    if (r.scope !== undefined && typeof r.scope !== 'string') errors.push('scope must be a space-separated string');
    const login = urlOrNull(r.initiate_login_uri);
    if (!login) errors.push(`initiate_login_uri ${JSON.stringify(r.initiate_login_uri)} is not an absolute http(s) URL`);
    if (!urlOrNull(r.jwks_uri)) errors.push(`jwks_uri ${JSON.stringify(r.jwks_uri)} is not an absolute http(s) URL`);
    const redirects = isStrings(r.redirect_uris) ? r.redirect_uris.map(urlOrNull) : [];
    if (!redirects.length || redirects.includes(null)) redirectErrors.push(`redirect_uris must be a non-empty array of absolute http(s) URLs, got ${JSON.stringify(r.redirect_uris)}`);
    const tc = r[TOOL_CONFIGURATION];
    if (!tc || typeof tc !== 'object' || Array.isArray(tc)) {
      errors.push(`the ${TOOL_CONFIGURATION} object is missing`);
      return [errors, redirectErrors];
    }
    const domains = [];
    if (typeof tc.domain !== 'string' || !tc.domain) errors.push(`${TOOL_CONFIGURATION} domain is required`);
    else domains.push(tc.domain.toLowerCase());
    if (tc.secondary_domains !== undefined) {
      if (!isStrings(tc.secondary_domains)) errors.push('secondary_domains must be an array of strings');
      else domains.push(...tc.secondary_domains.map((d) => d.toLowerCase()));
    }
    // the tool's URLs are on its domain (a domain may carry the port)
    const onDomain = (u) => domains.includes(u.hostname.toLowerCase()) || domains.includes(u.host.toLowerCase());
    const target = urlOrNull(tc.target_link_uri);
    if (!target) errors.push(`${TOOL_CONFIGURATION} target_link_uri ${JSON.stringify(tc.target_link_uri)} is not an absolute http(s) URL`);
    if (domains.length) {
      if (target && !onDomain(target)) errors.push(`target_link_uri ${target.href} is not on the domain ${tc.domain}`);
      if (login && !onDomain(login)) errors.push(`initiate_login_uri ${login.href} is not on the domain ${tc.domain}`);
      for (const u of redirects) if (u && !onDomain(u)) redirectErrors.push(`redirect_uri ${u.href} is not on the domain ${tc.domain}`);
    }
    if (!Array.isArray(tc.messages) || !tc.messages.length) errors.push(`${TOOL_CONFIGURATION} messages must be a non-empty array`);
    else {
      for (const m of tc.messages) {
        if (!m || typeof m !== 'object' || typeof m.type !== 'string') {
          errors.push(`a message ${JSON.stringify(m)} has no type`);
          continue;
        }
        if (!MESSAGES_SUPPORTED.includes(m.type)) errors.push(`message type ${m.type} is not supported here`);
        if (m.target_link_uri !== undefined) {
          const u = urlOrNull(m.target_link_uri);
          if (!u) errors.push(`message ${m.type}: target_link_uri ${JSON.stringify(m.target_link_uri)} is not an absolute http(s) URL`);
          else if (domains.length && !onDomain(u)) errors.push(`message ${m.type}: target_link_uri ${u.href} is not on the domain ${tc.domain}`);
        }
        if (m.label !== undefined && typeof m.label !== 'string') errors.push(`message ${m.type}: label must be a string`);
      }
    }
    if (tc.claims !== undefined && !isStrings(tc.claims)) errors.push(`${TOOL_CONFIGURATION} claims must be an array of strings`);
    if (tc.description !== undefined && typeof tc.description !== 'string') errors.push(`${TOOL_CONFIGURATION} description must be a string`);
    if (tc.custom_parameters !== undefined && (typeof tc.custom_parameters !== 'object' || Array.isArray(tc.custom_parameters) || tc.custom_parameters === null)) {
      errors.push(`${TOOL_CONFIGURATION} custom_parameters must be an object`);
    }
    return [errors, redirectErrors];
  }

  function register(P, req, res, body) {
    const rec = {
      at: Date.now(),
      method: req.method,
      headers: { ...req.headers },
      authorization: req.headers.authorization ?? null,
      token: null,
      body,
      json: undefined,
      errors: [],
      status: null,
      error: null,
      clientId: null,
      deploymentId: null,
      answer: null,
    };
    P.registrationRequests.push(rec);
    const refuse = (status, error, description, headers = {}) => {
      rec.error = error;
      log(`register ${P.name}: ${status} ${error}: ${description}`);
      return answer(res, rec, status, { error, error_description: description }, headers);
    };
    if (req.method !== 'POST') return answer(res, rec, 405, { error: 'invalid_request', error_description: 'POST only' }, { allow: 'POST' });
    if (injected(P, 'registration', req, res, rec)) return undefined;
    // 3.5.1: the registration token, as a bearer token
    const presented = bearerOf(req);
    rec.token = presented || null;
    const t = presented ? P.registrationTokens.get(presented) : undefined;
    if (!t || t.usedAt) {
      const why = presented ? (t ? 'the registration token was used already' : 'unknown registration token') : 'no registration token';
      return refuse(401, 'invalid_token', why, { 'www-authenticate': `Bearer realm="${P.issuer}", error="invalid_token"` });
    }
    if (mediaType(req.headers['content-type']) !== 'application/json') {
      P.problems.push(`register: content-type ${JSON.stringify(req.headers['content-type'])} is not application/json`);
      return refuse(400, 'invalid_client_metadata', 'the body must be application/json');
    }
    let r;
    try {
      r = JSON.parse(body);
    } catch {
      r = undefined;
    }
    if (!r || typeof r !== 'object' || Array.isArray(r)) {
      P.problems.push('register: the body is not a JSON object');
      return refuse(400, 'invalid_client_metadata', 'the body must be a JSON object');
    }
    rec.json = r;
    const [errors, redirectErrors] = registrationErrors(r);
    rec.errors = [...redirectErrors, ...errors];
    if (rec.errors.length) {
      P.problems.push(...rec.errors.map((e) => `register: ${e}`));
      return refuse(400, redirectErrors.length ? 'invalid_redirect_uri' : 'invalid_client_metadata', rec.errors.join('; '));
    }
    t.usedAt = Date.now();
    const n = P.registrations.length + 1;
    const clientId = `dyn-${P.name}-${n}-${crypto.randomBytes(6).toString('hex')}`;
    const deploymentId = `dep-dyn-${P.name}-${n}`;
    const requested = (r.scope ?? '').split(/\s+/).filter(Boolean);
    const scopes = requested.filter((s) => KNOWN_SCOPES.has(s));
    const client = {
      clientId,
      deploymentId,
      dynamic: true,
      initiateLoginUri: r.initiate_login_uri,
      redirectUris: [...r.redirect_uris],
      jwksUri: r.jwks_uri,
      scopes,
    };
    P.clients.set(clientId, client);
    // from now on the platform launches as the new client
    P.clientId = clientId;
    P.deploymentId = deploymentId;
    // 3.6: the registration as received, with the client id and the deployment
    const out = {
      client_id: clientId,
      ...r,
      ...(r.scope !== undefined ? { scope: scopes.join(' ') } : {}),
      [TOOL_CONFIGURATION]: { ...r[TOOL_CONFIGURATION], deployment_id: deploymentId },
    };
    out.client_id = clientId;
    rec.clientId = clientId;
    rec.deploymentId = deploymentId;
    rec.answer = out;
    P.registrations.push({ at: rec.at, clientId, deploymentId, token: presented, request: r, answer: out });
    log(`register ${P.name}: client ${clientId}, deployment ${deploymentId}`);
    return answer(res, rec, 200, out);
  }

  // ---------------------------------------------------------------------------

  async function handle(req, res) {
    const url = new URL(req.url, 'http://platform.invalid');
    const parts = url.pathname.split('/').slice(1).map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
    const P = parts[0] === 'p' ? byName.get(parts[1]) : undefined;
    if (!P) {
      strayRequests.push({ at: Date.now(), method: req.method, url: req.url, host: req.headers.host });
      return answer(res, null, 404, { error: 'no such platform' });
    }
    const body = await readBody(req);
    P.requests.push({ at: Date.now(), method: req.method, host: req.headers.host, url: req.url, path: url.pathname });
    log(`${P.name}: ${req.method} ${req.headers.host}${req.url}`);
    const [action, ctxId, sub, item, tail, ...more] = parts.slice(2);
    switch (action) {
      case 'start':
        return start(P, url.searchParams, res);
      case 'authorize':
        return authorize(P, url.searchParams, res);
      case '.well-known':
        if (ctxId !== 'openid-configuration' || sub !== undefined) break;
        return configuration(P, req, res);
      case 'register':
        if (parts.length !== 3) break;
        return register(P, req, res, body);
      case 'jwks':
        P.jwksFetches += 1;
        return answer(res, null, 200, { keys: [P.jwk] }, { 'cache-control': 'max-age=300' });
      case 'token':
        if (parts.length !== 3) break;
        return token(P, req, res, body);
      case 'nrps': {
        const c = P.contexts.get(ctxId);
        if (!c || sub !== 'memberships' || item !== undefined) break;
        return nrps(P, c, req, res, url);
      }
      case 'ags': {
        const c = P.contexts.get(ctxId);
        if (!c || sub !== 'lineitems' || more.length) break;
        if (item === undefined) return lineItems(P, c, req, res, url, body);
        const n = Number(item);
        if (!Number.isInteger(n) || n < 1) break;
        if (tail === undefined) return lineItem(P, c, n, req, res, url, body);
        if (tail === 'scores') return scores(P, c, n, req, res, url, body);
        if (tail === 'results') return results(P, c, n, req, res, url);
        break;
      }
      default:
        break;
    }
    P.problems.push(`unknown route ${req.method} ${url.pathname}`);
    return answer(res, null, 404, { error: 'not found' });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      log(`error: ${err.stack}`);
      if (!res.headersSent) answer(res, null, 500, { error: 'server_error', error_description: err.message });
      else res.destroy();
    });
  });
  const bound = await listen(server, port);
  base = `http://${host}:${bound}`;
  for (const p of platforms) {
    const P = await newPlatform(p);
    if (byName.has(P.name)) throw new Error(`platform ${P.name} twice`);
    byName.set(P.name, P);
  }
  const must = (name) => {
    const P = byName.get(name);
    if (!P) throw new Error(`no platform ${name}`);
    return P;
  };

  const api = {
    url: base,
    port: bound,
    strayRequests,
    toolKeys,
    /** The whole recorded state of platform `name` (arrays the tests read, `fail` they set). */
    state: must,
    issuer: (name) => must(name).issuer,
    tokenUrl: (name) => must(name).tokenUrl,
    clientId: (name) => must(name).clientId,
    /** The platform's OpenID configuration URL (LTI Dynamic Registration 1.0, 3.4): the `openid_configuration` a tool is given. */
    configurationUrl: (name) => must(name).configurationUrl,
    /** The OpenID configuration the platform serves now. */
    configuration: (name) => openidConfiguration(must(name)),
    /** A new one-time registration token of platform `name` (the `registration_token` a tool is given). */
    registrationToken(name) {
      const P = must(name);
      const token = `rt-${crypto.randomBytes(18).toString('base64url')}`;
      P.registrationTokens.set(token, { issuedAt: Date.now(), usedAt: null });
      return token;
    },
    /** The worker's LTI13_PLATFORMS entry; `tokenUrl: false` leaves `token_url` out (services off). */
    registration(name, { tokenUrl = true } = {}) {
      const P = must(name);
      return {
        issuer: P.issuer,
        client_id: P.clientId,
        authorize_url: `${P.issuer}/authorize`,
        jwks_endpoint: `${P.issuer}/jwks`,
        deployment_ids: [P.deploymentId],
        name: P.name,
        ...(tokenUrl ? { token_url: P.tokenUrl } : {}),
      };
    },
    /** Add a context (course) with its own line item 1 and roster; `idQuery` puts a query on its line item ids. */
    addContext(name, ctx) {
      return addContext(must(name), ctx);
    },
    context(name, id) {
      return must(name).contexts.get(id);
    },
    /** Replace a context's roster: entries from `member(user, roles, status)`. */
    setRoster(name, ctxId, members) {
      setRoster(must(name), ctxId, members);
    },
    /** The platform's `sub` (LTI user id) for `user`. */
    subOf: (name, user) => subOf(must(name), user),
    membershipsUrl: (name, ctxId) => membershipsUrl(must(name), must(name).contexts.get(ctxId)),
    lineItemsUrl: (name, ctxId) => containerUrl(must(name), must(name).contexts.get(ctxId)),
    /** The line items of a context as the platform holds them. */
    lineItems: (name, ctxId) => must(name).contexts.get(ctxId).lineItems.map((x) => x.item),
    /**
     * Register a launch and return its start URL (GET it to begin).
     * @param {object} o
     * @param {string} [o.user='student1']
     * @param {string|string[]} [o.roles='Learner'] short names or URIs (comma-separated string or array)
     * @param {string} [o.context='course-7']
     * @param {boolean} [o.nrps=true] include the Names and Roles claim
     * @param {boolean} [o.ags=true] include the Assignment and Grade claim
     * @param {boolean|string} [o.lineitem=true] the AGS claim's `lineitem`: the context's item 1, none (false) or a URL
     * @param {string[]} [o.agsScopes] the AGS claim's `scope` (default all four)
     * @param {string} [o.target] target_link_uri (default `${tool}/hub/`)
     * @param {object} [o.extraClaims] more id_token claims
     * @param {string} [o.clientId] launch as this client of the platform (default: the configured one, or the newest registered)
     * @param {string} [o.deploymentId] another deployment id than the client's (login initiation and id_token)
     */
    startUrl(name, { user = 'student1', roles = 'Learner', context = contexts[0]?.id, nrps: withNrps = true, ags: withAgs = true, lineitem = true, agsScopes, target, email, extraClaims = {}, clientId, deploymentId } = {}) {
      const P = must(name);
      if (!P.contexts.has(context)) throw new Error(`no context ${context} at ${name}`);
      const client = P.clients.get(clientId ?? P.clientId);
      if (!client) throw new Error(`no client ${clientId} at ${name}`);
      P.counter += 1;
      const hint = `launch-${P.counter}-${crypto.randomBytes(4).toString('hex')}`;
      const list = Array.isArray(roles) ? roles : String(roles).split(',').filter(Boolean);
      P.pending.set(hint, {
        hint,
        user,
        roles: list.map(roleUri),
        context,
        nrps: withNrps,
        ags: withAgs,
        lineitem,
        agsScopes,
        target: target ?? `${toolOrigin}/hub/`,
        email: email ?? `${user}@example.edu`,
        extraClaims,
        client,
        deploymentId,
      });
      return `${P.issuer}/start?hint=${encodeURIComponent(hint)}`;
    },
    /** Tell the platform where the tool is (when not known at start). */
    setTool(origin, jwksUrl) {
      toolOrigin = origin.replace(/\/$/, '');
      toolKeysUrl = jwksUrl ?? `${toolOrigin}/hub/lti13/jwks`;
      toolKeys.jwks = null;
    },
    close() {
      return closeServer(server);
    },
  };
  return api;
}

/**
 * A launch through the stand-in platform and the worker, like a browser:
 * platform /start → worker login initiation → platform authorize (auto-post
 * page) → POST id_token + state to the worker → … following redirects when
 * `followAfter` (else the chain ends with the launch answer).
 * @returns {Promise<{authorize: object, form: object, launch: object, chain: object[], final: object, sub: string}>}
 */
export async function advLaunch(platform, name, jar, { followAfter = true, max = 10, ...opts } = {}) {
  const startUrl = platform.startUrl(name, opts);
  const first = await follow(null, startUrl, jar, { max });
  const authorizePage = first.at(-1);
  if (authorizePage.status !== 200) {
    const err = new Error(`authorize step answered ${authorizePage.status}: ${authorizePage.text.slice(0, 300)}`);
    err.chain = first;
    throw err;
  }
  const form = parseForm(authorizePage.text);
  const body = new URLSearchParams(form.fields).toString();
  const rest = await follow(null, form.action, jar, { method: 'POST', body, max: followAfter ? max : 1, stopAt: followAfter ? undefined : () => true });
  return {
    authorize: authorizePage,
    form,
    launch: rest[0],
    chain: [...first, ...rest],
    final: rest.at(-1),
    sub: platform.subOf(name, opts.user ?? 'student1'),
  };
}
