// Fault-injecting peers on 127.0.0.1 for tests/e2e/faults.test.mjs: an
// OpenID provider, an LTI platform and a hub whose endpoints can each be
// down, slow, failing, answering HTML, too big or cut short; and a worker
// started beside extra Miniflare workers so its KV namespace and its
// one-time Durable Object can be made to throw or stall.
//
// Faults (FAULTS):
//   down       nothing listens (the URL points at DEAD_ORIGIN): connection refused
//   slow       the valid document, but only after `slowMs` (past the worker's timeout)
//   500        HTTP 500 with a JSON error body
//   html       HTTP 200 text/html (a maintenance page)
//   huge       HTTP 200 application/json, chunked, no Content-Length, `hugeBytes` long
//   truncated  HTTP 200 application/json whose body is the first half of the document
//
// Every faulty answer except `down` is held until the test calls
// `release(path)` (or `holdMs` passes), so a test can run other requests
// while the fault is in progress; `arrived(path, n)` resolves once n faulty
// requests to `path` are being held.
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { SignJWT, generateKeyPair, exportJWK } from 'jose';
import { WebSocketServer } from 'ws';
import { listen, closeServer } from './ports.mjs';
import { DEFAULT_SCRIPT, hubgateModule, runMiniflare } from './worker.mjs';

/** Nothing listens on the discard port of loopback: a connection there is refused. */
export const DEAD_ORIGIN = 'http://127.0.0.1:9';
export const FAULTS = Object.freeze(['down', 'slow', '500', 'html', 'huge', 'truncated']);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Held requests, released by path (so concurrent cases do not release each other's). */
function makeGate(holdMs) {
  const gates = new Map(); // path -> { promise, resolve }
  const held = new Map(); // path -> count
  const waiters = [];
  const gateOf = (p) => {
    if (!gates.has(p)) {
      let resolve;
      const promise = new Promise((r) => {
        resolve = r;
      });
      gates.set(p, { promise, resolve });
    }
    return gates.get(p);
  };
  const notify = () => {
    for (const w of [...waiters]) {
      if ((held.get(w.path) ?? 0) >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  return {
    /** Hold a request to `p` until `release(p)` (at most holdMs). */
    async hold(p) {
      held.set(p, (held.get(p) ?? 0) + 1);
      const gate = gateOf(p);
      notify();
      let timer;
      await Promise.race([gate.promise, new Promise((r) => (timer = setTimeout(r, holdMs)))]);
      clearTimeout(timer);
    },
    /** Resolves once `n` requests to `p` have been held (rejects after `timeoutMs`). */
    arrived(p, n = 1, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const w = { path: p, n, resolve };
        waiters.push(w);
        notify();
        setTimeout(() => reject(new Error(`${n} request(s) to ${p} did not arrive in ${timeoutMs} ms (${held.get(p) ?? 0} did)`)), timeoutMs).unref();
      });
    },
    /** Let the held requests to `p` (all paths when none is named) answer; later ones are held again. */
    release(p) {
      for (const [path, gate] of gates) {
        if (p === undefined || p === path) {
          gate.resolve();
          gates.delete(path);
        }
      }
    },
  };
}

/**
 * Answer `res` with `fault` in place of `doc` (a JSON value). Returns the
 * number of body bytes written (for `huge`: how far the reader let it get).
 */
export async function answerFault(res, fault, doc, { slowMs = 7000, hugeBytes = 8 << 20, headers = {} } = {}) {
  const text = JSON.stringify(doc);
  switch (fault) {
    case 'slow':
      await sleep(slowMs);
      if (res.destroyed) return 0;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
      return text.length;
    case '500': {
      const body = JSON.stringify({ error: 'server_error', error_description: 'injected fault' });
      res.writeHead(500, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return body.length;
    }
    case 'html': {
      const body = '<!doctype html><html><head><title>Maintenance</title></head><body><h1>Down for maintenance</h1><p>Back soon.</p></body></html>';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length });
      res.end(body);
      return body.length;
    }
    case 'huge': {
      // A JSON object, streamed without Content-Length: only a reader that
      // counts what it reads can stop it.
      res.writeHead(200, { 'content-type': 'application/json', ...headers });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const head = `{"padding":"`;
      res.write(head);
      sent += head.length;
      while (sent < hugeBytes && !res.destroyed) {
        if (!res.write(chunk)) {
          await new Promise((r) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              r();
            };
            res.once('drain', done);
            res.once('close', done);
          });
        }
        sent += chunk.length;
      }
      if (!res.destroyed) res.end(`","keys":[]}`);
      return sent;
    }
    case 'truncated': {
      const body = text.slice(0, Math.floor(text.length / 2));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return body.length;
    }
    default:
      throw new Error(`answerFault: unknown fault ${fault}`);
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const json = (res, status, obj, headers = {}) => {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
};

// ---------------------------------------------------------------------------
// OpenID provider

/**
 * A small OpenID provider whose discovery, token, userinfo and JWKS
 * endpoints can each carry a fault. /authorize redirects straight back with
 * a code (no login step).
 * @param {object} [o]
 * @param {{discovery?:string, token?:string, userinfo?:string, jwks?:string}} [o.faults]
 * @param {number} [o.slowMs] how long `slow` waits
 * @param {number} [o.holdMs] how long a faulty answer waits for `release()` at most
 */
export async function startFaultyIdp({ faults = {}, slowMs = 7000, holdMs = 8000, hugeBytes = 8 << 20, clientId = 'faulty-client', clientSecret = 'faulty-secret', username = 'alice' } = {}) {
  const gate = makeGate(holdMs);
  const hits = Object.create(null);
  const written = Object.create(null);
  const codes = new Map(); // code -> nonce
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: `faulty-${crypto.randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const port = await listen(server, 0);
  const origin = `http://127.0.0.1:${port}`;
  const issuer = faults.discovery === 'down' ? DEAD_ORIGIN : origin;
  const at = (name, p) => `${faults[name] === 'down' ? DEAD_ORIGIN : origin}${p}`;
  const claims = { sub: `sub-${username}`, preferred_username: username, email: `${username}@example.edu`, name: username };

  function discovery() {
    return {
      issuer,
      authorization_endpoint: `${origin}/authorize`,
      token_endpoint: at('token', '/token'),
      userinfo_endpoint: at('userinfo', '/userinfo'),
      jwks_uri: at('jwks', '/jwks'),
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      code_challenge_methods_supported: ['S256'],
    };
  }

  async function tokenBody(req) {
    const params = new URLSearchParams(await readBody(req));
    const nonce = codes.get(params.get('code'));
    codes.delete(params.get('code'));
    if (nonce === undefined) return { status: 400, body: { error: 'invalid_grant' } };
    const now = Math.floor(Date.now() / 1000);
    const idToken = await new SignJWT({ ...claims, iss: issuer, aud: clientId, iat: now, exp: now + 300, nonce })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'JWT' })
      .sign(privateKey);
    return { status: 200, body: { access_token: crypto.randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 300, id_token: idToken } };
  }

  async function handle(req, res) {
    const url = new URL(req.url, origin);
    hits[url.pathname] = (hits[url.pathname] ?? 0) + 1;
    const name = { '/.well-known/openid-configuration': 'discovery', '/token': 'token', '/userinfo': 'userinfo', '/jwks': 'jwks' }[url.pathname];
    if (url.pathname === '/authorize') {
      const q = url.searchParams;
      const code = crypto.randomBytes(16).toString('hex');
      codes.set(code, q.get('nonce'));
      const back = new URL(q.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') ?? '');
      back.searchParams.set('iss', issuer);
      res.writeHead(302, { location: back.href, 'content-length': 0 });
      return res.end();
    }
    if (!name) return json(res, 404, { error: 'not_found' });
    let doc;
    let status = 200;
    if (name === 'discovery') doc = discovery();
    else if (name === 'jwks') doc = { keys: [jwk] };
    else if (name === 'userinfo') doc = { ...claims };
    else ({ status, body: doc } = await tokenBody(req));
    const fault = faults[name];
    if (fault && fault !== 'down' && status === 200) {
      if (fault !== 'slow') await gate.hold(url.pathname);
      else gate.hold(url.pathname); // counted as arrived; `slow` keeps its own clock
      written[url.pathname] = await answerFault(res, fault, doc, { slowMs, hugeBytes, headers: { 'cache-control': 'public, max-age=300' } });
      return undefined;
    }
    return json(res, status, doc, { 'cache-control': 'public, max-age=300' });
  }

  return {
    origin,
    issuer,
    clientId,
    clientSecret,
    username,
    hits,
    written,
    arrived: gate.arrived,
    release: gate.release,
    /** Worker bindings for this provider (OIDC discovery from `issuer`). */
    bindings() {
      return {
        OIDC_ISSUER: issuer,
        OAUTH_CLIENT_ID: clientId,
        OAUTH_CLIENT_SECRET: clientSecret,
        OAUTH2_USERNAME_KEY: 'preferred_username',
        ALLOWED_USERS: username,
      };
    },
    close() {
      gate.release();
      return closeServer(server);
    },
  };
}

// ---------------------------------------------------------------------------
// LTI 1.3 platform

const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';

/**
 * Several LTI 1.3 platforms on one port, `/p/<name>/…`, each with its own
 * key and its own JWKS fault. The test drives a launch itself (`launch`):
 * login initiation at the worker, then the signed id_token posted back.
 * @param {object} o
 * @param {Array<{name:string, fault?:string}>} o.platforms
 */
export async function startFaultyPlatform({ platforms, slowMs = 7000, holdMs = 8000, hugeBytes = 8 << 20 }) {
  const gate = makeGate(holdMs);
  const hits = Object.create(null);
  const written = Object.create(null);
  const byName = new Map();
  for (const p of platforms) {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: `${p.name}-key`, alg: 'RS256', use: 'sig' };
    byName.set(p.name, { ...p, jwk, privateKey });
  }
  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const port = await listen(server, 0);
  const origin = `http://127.0.0.1:${port}`;
  const issuer = (name) => `${origin}/p/${name}`;
  const jwksUrl = (name) => `${byName.get(name).fault === 'down' ? DEAD_ORIGIN : origin}/p/${name}/jwks`;

  async function handle(req, res) {
    const url = new URL(req.url, origin);
    hits[url.pathname] = (hits[url.pathname] ?? 0) + 1;
    const m = /^\/p\/([^/]+)\/jwks$/.exec(url.pathname);
    const p = m && byName.get(m[1]);
    if (!p) return json(res, 404, { error: 'not_found' });
    const doc = { keys: [p.jwk] };
    if (p.fault && p.fault !== 'down') {
      if (p.fault !== 'slow') await gate.hold(url.pathname);
      else gate.hold(url.pathname);
      written[url.pathname] = await answerFault(res, p.fault, doc, { slowMs, hugeBytes, headers: { 'cache-control': 'max-age=300' } });
      return undefined;
    }
    return json(res, 200, doc, { 'cache-control': 'max-age=300' });
  }

  const api = {
    origin,
    hits,
    written,
    arrived: gate.arrived,
    release: gate.release,
    issuer,
    jwksUrl,
    /** The LTI13_PLATFORMS entry of `name`. */
    registration(name) {
      return {
        name,
        issuer: issuer(name),
        client_id: `client-${name}`,
        authorize_url: `${origin}/p/${name}/authorize`,
        jwks_endpoint: jwksUrl(name),
        deployment_ids: [`dep-${name}`],
      };
    },
    /** The key set of `name`, as a KV `JWKS_CACHE` entry fetched `ageSecs` ago with a `ttl`. */
    cacheEntry(name, { ageSecs = 400, ttl = 300 } = {}) {
      return {
        key: `jwks:${jwksUrl(name)}`,
        value: JSON.stringify({ fetched_at: Math.floor(Date.now() / 1000) - ageSecs, ttl, body: JSON.stringify({ keys: [byName.get(name).jwk] }) }),
      };
    },
    /**
     * Login initiation at `worker`, then the signed launch posted back with
     * the flow cookie and `accept`. Returns the launch's { status, headers, text, ms }.
     */
    async launch(worker, name, { user = 'student1', accept = 'text/html', target = '/hub/' } = {}) {
      const p = byName.get(name);
      const init = new URLSearchParams({ iss: issuer(name), login_hint: user, target_link_uri: `${worker.url}${target}`, client_id: `client-${name}`, lti_deployment_id: `dep-${name}` });
      const first = await fetch(`${worker.url}/hub/lti13/oauth_login?${init}`, { redirect: 'manual' });
      await first.arrayBuffer();
      if (first.status !== 302) throw new Error(`login initiation answered ${first.status}`);
      const authorize = new URL(first.headers.get('location'));
      const cookie = first.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      const now = Math.floor(Date.now() / 1000);
      const idToken = await new SignJWT({
        iss: issuer(name),
        aud: `client-${name}`,
        sub: `${user}-sub`,
        email: `${user}@example.edu`,
        iat: now,
        exp: now + 300,
        nonce: authorize.searchParams.get('nonce'),
        [`${LTI}deployment_id`]: `dep-${name}`,
        [`${LTI}version`]: '1.3.0',
        [`${LTI}message_type`]: 'LtiResourceLinkRequest',
        [`${LTI}resource_link`]: { id: `link-${name}` },
        [`${LTI}target_link_uri`]: `${worker.url}${target}`,
        [`${LTI}roles`]: ['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'],
        [`${LTI}context`]: { id: 'course-1', label: 'C1' },
      })
        .setProtectedHeader({ alg: 'RS256', kid: p.jwk.kid, typ: 'JWT' })
        .sign(p.privateKey);
      const t0 = Date.now();
      const r = await fetch(authorize.searchParams.get('redirect_uri'), {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept, cookie },
        body: new URLSearchParams({ id_token: idToken, state: authorize.searchParams.get('state') }).toString(),
      });
      const text = await r.text();
      return { status: r.status, headers: r.headers, text, ms: Date.now() - t0, location: r.headers.get('location') };
    },
    close() {
      gate.release();
      return closeServer(server);
    },
  };
  return api;
}

// ---------------------------------------------------------------------------
// Hub

/**
 * A hub origin that misbehaves by path; everything else is answered 200
 * with a small JSON echo ({ path, method }).
 *   GET  /slow/…            answers after `slowMs`
 *   GET  /reset-response    200 with Content-Length 65536 (chunked with ?chunked), sends 1 KiB, then resets the connection
 *   POST /reset-upload      reads 64 KiB of the request body, then resets the connection
 *   GET  /bad-gateway       the hub's own 502 (text/html, X-Hub-Own: 502)
 *   WebSocket /ws/abrupt    accepts, answers the first message, then drops the TCP connection
 *   WebSocket /ws/silent    never answers the upgrade (until released, or `slowMs`)
 *   WebSocket /ws/echo      echoes
 */
export async function startFaultyHub({ slowMs = 9000 } = {}) {
  const requests = [];
  const held = makeGate(slowMs);
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://hub.invalid');
    requests.push({ method: req.method, path: url.pathname });
    if (url.pathname.startsWith('/slow/')) {
      await held.hold(url.pathname);
      if (res.destroyed) return;
      return json(res, 200, { path: url.pathname, method: req.method, slow: true });
    }
    if (url.pathname === '/reset-response') {
      // with Content-Length the cut is visible in the length; chunked, only in the missing last chunk
      const chunked = url.searchParams.has('chunked');
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...(chunked ? {} : { 'content-length': 65536 }) });
      res.write(Buffer.alloc(1024, 0x62));
      setTimeout(() => res.socket?.resetAndDestroy?.() ?? res.destroy(), 100);
      return undefined;
    }
    if (url.pathname === '/reset-upload') {
      let got = 0;
      req.on('data', (c) => {
        got += c.length;
        if (got >= 64 * 1024) req.socket.resetAndDestroy?.() ?? req.socket.destroy();
      });
      return undefined;
    }
    if (url.pathname === '/bad-gateway') {
      const body = '<html><body><h1>502: the hub could not reach the server</h1></body></html>';
      res.writeHead(502, { 'content-type': 'text/html', 'content-length': body.length, 'x-hub-own': '502' });
      return res.end(body);
    }
    await readBody(req);
    return json(res, 200, { path: url.pathname, method: req.method });
  });
  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set();
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://hub.invalid');
    requests.push({ method: req.method, path: url.pathname, upgrade: true });
    if (url.pathname === '/ws/silent') {
      held.hold(url.pathname).then(() => socket.destroy());
      return;
    }
    if (!['/ws/abrupt', '/ws/echo'].includes(url.pathname)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('message', (data) => {
        ws.send(`echo: ${data}`);
        if (url.pathname === '/ws/abrupt') setTimeout(() => socket.resetAndDestroy?.() ?? socket.destroy(), 50);
      });
    });
  });
  const port = await listen(server, 0);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    arrived: held.arrived,
    release: held.release,
    async close() {
      held.release();
      for (const ws of sockets) ws.terminate();
      wss.close();
      await closeServer(server);
    },
  };
}

// ---------------------------------------------------------------------------
// A worker beside fault-injecting Miniflare workers

/**
 * Module of a wrapped binding that stands in for an empty KV namespace whose
 * every call throws, stalls (answers an error after STALL_MS) or is slow
 * (answers normally after STALL_MS), by MODE.
 */
const FAULTY_KV = `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default function (env) {
  const mode = env.MODE;
  const calls = async (op) => {
    if (mode === 'throw') throw new Error('injected KV failure (' + op + ')');
    // a store that does not answer: pending I/O (a timer), so the runtime waits on it
    if (mode === 'stall') { await sleep(Number(env.STALL_MS)); throw new Error('KV answered after ' + env.STALL_MS + ' ms'); }
    if (mode === 'slow') await sleep(Number(env.STALL_MS));
    return undefined;
  };
  return {
    async get(key, opts) { await calls('get'); return null; },
    async getWithMetadata(key, opts) { await calls('getWithMetadata'); return { value: null, metadata: null }; },
    async put(key, value, opts) { await calls('put'); },
    async list(opts) { await calls('list'); return { keys: [], list_complete: true, cursor: '' }; },
    async delete(key) { await calls('delete'); },
  };
}
`;

/** Durable Object classes that stand in for OneTime: one throws, one answers (first) after STALL_MS, one answers nonsense. */
const FAULTY_ONE_TIME = `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export class ThrowingOneTime {
  constructor(state, env) { this.env = env; }
  async fetch() { throw new Error('injected one-time store failure'); }
}
export class StallingOneTime {
  constructor(state, env) { this.env = env; }
  async fetch() { await sleep(Number(this.env.STALL_MS)); return new Response('first'); }
}
export class ConfusedOneTime {
  constructor(state, env) { this.env = env; }
  async fetch() { return new Response('maybe'); }
}
`;

/**
 * Start the built worker with KV namespaces and/or ONE_TIME replaced by
 * fault-injecting stand-ins.
 * @param {object} o
 * @param {Record<string,string>} o.bindings
 * @param {Record<string,'throw'|'stall'|'slow'>} [o.faultyKv] KV binding name -> mode (a wrapped binding)
 * @param {string[]} [o.kv] real KV namespaces
 * @param {'ThrowingOneTime'|'StallingOneTime'|'ConfusedOneTime'|null} [o.oneTime] null: the real OneTime class
 * @param {number} [o.stallMs] how long a stalled store takes before it gives up itself (a slow one, before it answers)
 */
export async function startFaultyWorker({ bindings, faultyKv = {}, kv = [], oneTime = null, stallMs = 30_000, scriptPath = DEFAULT_SCRIPT, verbose = process.env.HUBGATE_E2E_VERBOSE === '1' }) {
  if (!fs.existsSync(scriptPath)) throw new Error(`${scriptPath} not found: run \`npm run build\` first`);
  const wrapped = Object.fromEntries(Object.entries(faultyKv).map(([name, mode]) => [name, { scriptName: 'faulty-kv', bindings: { MODE: mode, STALL_MS: String(stallMs) } }]));
  const workers = [
    {
      name: 'hubgate',
      ...hubgateModule(scriptPath),
      compatibilityDate: '2025-09-01',
      bindings,
      kvNamespaces: kv,
      durableObjects: { ONE_TIME: oneTime ? { className: oneTime, scriptName: 'faulty-one-time' } : { className: 'OneTime', useSQLite: true } },
      ...(Object.keys(wrapped).length ? { wrappedBindings: wrapped } : {}),
    },
    { name: 'faulty-kv', modules: true, script: FAULTY_KV },
    {
      name: 'faulty-one-time',
      modules: true,
      script: FAULTY_ONE_TIME,
      compatibilityDate: '2025-09-01',
      bindings: { STALL_MS: String(stallMs) },
      durableObjects: { THROWING: 'ThrowingOneTime', STALLING: 'StallingOneTime', CONFUSED: 'ConfusedOneTime' },
    },
  ];
  return runMiniflare({ workers }, { verbose, kvWorker: 'hubgate' });
}
