// Run the built worker (build/worker/shim.mjs + its wasm) in workerd through
// Miniflare's programmatic API, and drive it like a browser: a cookie jar,
// manual redirect following across worker <-> IdP, and a whole OIDC login.
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import { IDP_COOKIE_NAMES } from './users.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const DEFAULT_SCRIPT = path.join(REPO_ROOT, 'build', 'worker', 'shim.mjs');
/** The one-time store the worker requires (wrangler.toml: ONE_TIME → class OneTime, a SQLite-backed class). */
export const DEFAULT_DURABLE_OBJECTS = Object.freeze({ ONE_TIME: Object.freeze({ className: 'OneTime', useSQLite: true }) });

/**
 * Start the worker in workerd.
 * @param {object} opts
 * @param {Record<string,string>} opts.bindings vars and secrets (all plain strings)
 * @param {string[]} [opts.kv] KV namespace binding names
 * @param {number} [opts.port=0] fixed port (e.g. pre-picked so the IdP redirect_uri is known)
 * @param {string} [opts.scriptPath] default build/worker/shim.mjs
 * @param {string} [opts.compatibilityDate]
 * @param {boolean} [opts.verbose] echo workerd's stdout/stderr (also HUBGATE_E2E_VERBOSE=1)
 * @param {Record<string, Function>} [opts.serviceBindings] service bindings (e.g. HUB) as Node request handlers
 * @param {boolean} [opts.https] serve https on 127.0.0.1 with Miniflare's built-in self-signed
 *   certificate (the worker then sees https URLs: `__Host-` cookies, both SameSite variants);
 *   talk to it with httpFetch/send from oauth-helpers.mjs, which accept that certificate on loopback
 * @param {Record<string, string|object>|null} [opts.durableObjects] Durable Object bindings; default
 *   `{ ONE_TIME: { className: 'OneTime', useSQLite: true } }` (the one-time store the worker requires,
 *   declared as in wrangler.toml); `null` or `{}` binds none
 * @returns {Promise<{url:string, port:number, mf:any, logs:string[], fetch(p:string, init?:RequestInit):Promise<Response>, kv(name:string):Promise<any>, close():Promise<void>}>}
 */
export async function startWorker({
  bindings = {},
  kv = ['JWKS_CACHE', 'NONCES'],
  port = 0,
  scriptPath = DEFAULT_SCRIPT,
  compatibilityDate = '2025-09-01',
  verbose = process.env.HUBGATE_E2E_VERBOSE === '1',
  serviceBindings,
  durableObjects = DEFAULT_DURABLE_OBJECTS,
  https = false,
} = {}) {
  if (!fs.existsSync(scriptPath)) {
    throw new Error(`${scriptPath} not found: run \`npm run build\` first`);
  }
  for (const [k, v] of Object.entries(bindings)) {
    if (typeof v !== 'string') throw new TypeError(`binding ${k} must be a string`);
  }
  return runMiniflare(
    {
      ...hubgateModule(scriptPath),
      compatibilityDate,
      bindings,
      kvNamespaces: kv,
      ...(durableObjects && Object.keys(durableObjects).length ? { durableObjects: structuredClone(durableObjects) } : {}),
      ...(serviceBindings ? { serviceBindings } : {}),
    },
    { port, https, verbose },
  );
}

/** The built worker as a Miniflare module worker (options for one worker). */
export function hubgateModule(scriptPath = DEFAULT_SCRIPT) {
  return {
    modules: true,
    scriptPath,
    modulesRoot: path.dirname(path.dirname(scriptPath)),
    modulesRules: [
      // the build emits an ES module with a .js extension, index.js (Miniflare's default rule would say CommonJS)
      { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true },
    ],
  };
}

/**
 * Start workerd through Miniflare with `options` (one worker's options, or
 * `{ workers: [...] }` with the worker under test named by `kvWorker`), on
 * 127.0.0.1, collecting its output as log lines; the handle every suite uses.
 */
export async function runMiniflare(options, { port = 0, https = false, verbose = false, kvWorker } = {}) {
  const { Miniflare, Log, LogLevel } = await import('miniflare');
  const logs = [];
  const pipe = (stream, name) => {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      logs.push(line);
      if (verbose) process.stderr.write(`[workerd ${name}] ${line}\n`);
    });
  };
  const mf = new Miniflare({
    ...options,
    host: '127.0.0.1',
    port,
    ...(https ? { https: true } : {}),
    cf: false,
    log: new Log(verbose ? LogLevel.DEBUG : LogLevel.NONE),
    handleRuntimeStdio(stdout, stderr) {
      pipe(stdout, 'out');
      pipe(stderr, 'err');
    },
  });
  let ready;
  try {
    ready = await mf.ready;
  } catch (err) {
    await mf.dispose().catch(() => {});
    throw err;
  }
  const url = ready.origin; // http(s)://127.0.0.1:<port>
  return {
    url,
    port: Number(ready.port),
    mf,
    logs,
    /** Real HTTP fetch to the worker; never follows redirects unless init.redirect says so. */
    fetch(p, init = {}) {
      if (https) return Promise.reject(new Error('an https worker: use httpFetch/send from oauth-helpers.mjs'));
      return fetch(new URL(p, url), { redirect: 'manual', ...init });
    },
    kv(name) {
      return kvWorker ? mf.getKVNamespace(name, kvWorker) : mf.getKVNamespace(name);
    },
    /** Log lines parsed as JSON (the worker logs one JSON object per event). */
    jsonLogs() {
      return logs.flatMap((l) => {
        const i = l.indexOf('{');
        if (i < 0) return [];
        try {
          return [JSON.parse(l.slice(i))];
        } catch {
          return [];
        }
      });
    },
    close() {
      return mf.dispose();
    },
  };
}

// ---------------------------------------------------------------------------
// Cookie jar

export const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i;

export function defaultPath(pathname) {
  if (!pathname.startsWith('/')) return '/';
  const i = pathname.lastIndexOf('/');
  return i <= 0 ? '/' : pathname.slice(0, i);
}

export function pathMatches(reqPath, cookiePath) {
  if (reqPath === cookiePath) return true;
  if (!reqPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || reqPath[cookiePath.length] === '/';
}

export function domainMatches(host, cookie) {
  if (cookie.hostOnly) return host === cookie.domain;
  return host === cookie.domain || host.endsWith(`.${cookie.domain}`);
}

/** Parse one Set-Cookie header value. Returns null when unparsable. */
export function parseSetCookie(header) {
  const parts = header.split(';');
  const first = parts.shift();
  const eq = first.indexOf('=');
  if (eq <= 0) return null;
  const c = {
    name: first.slice(0, eq).trim(),
    value: first.slice(eq + 1).trim(),
    attrs: {},
  };
  for (const p of parts) {
    const i = p.indexOf('=');
    const k = (i < 0 ? p : p.slice(0, i)).trim().toLowerCase();
    const v = i < 0 ? '' : p.slice(i + 1).trim();
    if (k) c.attrs[k] = v;
  }
  return c;
}

/**
 * A minimal browser-like cookie jar for node fetch. Cookies are keyed by
 * (name, host, path); like a browser it ignores the port, so the worker and an
 * IdP on the same 127.0.0.1 see each other's cookies. Honours Path, Domain,
 * Max-Age (0 or negative deletes), Expires, Secure (loopback http counts as a
 * secure context, as in browsers) and the __Host-/__Secure- prefix rules.
 * SameSite is recorded but not enforced.
 */
export function cookieJar() {
  /** @type {Map<string, object>} */
  const cookies = new Map();
  const keyOf = (c) => `${c.name}\u0000${c.domain}\u0000${c.path}`;
  const expired = (c, now = Date.now()) => c.expires !== null && c.expires <= now;

  const jar = {
    /** Store the Set-Cookie headers of `res` (a Response, or an array of header strings) received from `url`. */
    store(url, res) {
      const u = new URL(url);
      const list = Array.isArray(res) ? res : res.headers.getSetCookie();
      const secureContext = u.protocol === 'https:' || LOOPBACK.test(u.hostname);
      for (const raw of list) {
        const p = parseSetCookie(raw);
        if (!p) continue;
        const a = p.attrs;
        const c = {
          name: p.name,
          value: p.value,
          domain: u.hostname.toLowerCase(),
          hostOnly: true,
          path: a.path && a.path.startsWith('/') ? a.path : defaultPath(u.pathname),
          expires: null,
          secure: 'secure' in a,
          httpOnly: 'httponly' in a,
          sameSite: a.samesite ?? null,
          partitioned: 'partitioned' in a,
          raw,
        };
        if (a.domain) {
          const d = a.domain.replace(/^\./, '').toLowerCase();
          if (!domainMatches(c.domain, { domain: d, hostOnly: false })) continue; // foreign domain: rejected
          if (d !== c.domain || !/^[\d.]+$/.test(d)) {
            c.domain = d;
            c.hostOnly = false;
          }
        }
        if (c.secure && !secureContext) continue;
        if (c.name.startsWith('__Secure-') && !c.secure) continue;
        if (c.name.startsWith('__Host-') && (!c.secure || a.domain !== undefined || c.path !== '/' || a.path !== '/')) continue;
        if ('max-age' in a && /^-?\d+$/.test(a['max-age'])) {
          const n = Number(a['max-age']);
          c.expires = n <= 0 ? 0 : Date.now() + n * 1000;
        } else if (a.expires) {
          const t = Date.parse(a.expires);
          if (!Number.isNaN(t)) c.expires = t;
        }
        const k = keyOf(c);
        if (expired(c)) cookies.delete(k);
        else cookies.set(k, c);
      }
    },
    /** Cookies that would be sent to `url`, most specific path first. */
    matching(url) {
      const u = new URL(url);
      const host = u.hostname.toLowerCase();
      const secureContext = u.protocol === 'https:' || LOOPBACK.test(u.hostname);
      const now = Date.now();
      const out = [];
      for (const [k, c] of cookies) {
        if (expired(c, now)) {
          cookies.delete(k);
          continue;
        }
        if (!domainMatches(host, c)) continue;
        if (!pathMatches(u.pathname, c.path)) continue;
        if (c.secure && !secureContext) continue;
        out.push(c);
      }
      return out.sort((x, y) => y.path.length - x.path.length);
    },
    /** The Cookie header value for `url` ('' when none). */
    header(url) {
      return jar.matching(url).map((c) => `${c.name}=${c.value}`).join('; ');
    },
    /** Value of the first live cookie called `name` (optionally as sent to `url`). */
    get(name, url) {
      const list = url ? jar.matching(url) : jar.all();
      return list.find((c) => c.name === name)?.value;
    },
    /** Full record (attributes included) of the first live cookie called `name`. */
    cookie(name) {
      return jar.all().find((c) => c.name === name);
    },
    /** All live cookies. */
    all() {
      const now = Date.now();
      return [...cookies.values()].filter((c) => !expired(c, now));
    },
    names() {
      return jar.all().map((c) => c.name);
    },
    /** Put a cookie by hand (e.g. a forged one). */
    set(url, name, value, { path = '/' } = {}) {
      jar.store(url, [`${name}=${value}; Path=${path}`]);
    },
    /** Delete every cookie called `name`, or those for which `name(cookie)` is true. */
    delete(name) {
      for (const [k, c] of cookies) {
        if (typeof name === 'function' ? name(c) : c.name === name) cookies.delete(k);
      }
    },
    clear() {
      cookies.clear();
    },
  };
  return jar;
}

/** Forget the demo IdP's session (so the next authorize asks for a username again). */
export function clearIdpSession(jar) {
  const prefixes = Object.values(IDP_COOKIE_NAMES);
  jar.delete((c) => prefixes.some((p) => c.name === p || c.name === `${p}.sig`));
}

// ---------------------------------------------------------------------------
// Redirect following

const BROWSER_NAV_HEADERS = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
  'user-agent': 'hubgate-e2e/1 (node)',
};

/**
 * Follow redirects by hand (redirect: 'manual'), across hosts, with `jar`.
 * Each hop's body is read; the chain's entries are
 *   { url, method, status, headers, location, setCookies, text, json() }.
 * @param {(url:string, init:RequestInit)=>Promise<Response>} [fetchFn] default global fetch
 * @param {string|URL} url absolute URL of the first request
 * @param {ReturnType<typeof cookieJar>} [jar]
 * @param {object} [opts]
 * @param {number} [opts.max=10] maximum number of requests
 * @param {string} [opts.method='GET'] first request's method
 * @param {BodyInit} [opts.body] first request's body
 * @param {Record<string,string>} [opts.headers] extra headers on every request
 * @param {boolean} [opts.navigate=true] send browser navigation headers (Accept: text/html, Sec-Fetch-Mode: navigate)
 * @param {(next: URL) => boolean} [opts.stopAt] don't request `next` when this returns true (the chain ends with the redirect to it)
 * @param {string} [opts.initiator] origin of the document that started the navigation (a cross-site
 *   one makes a browser-like store treat the request as cross-site; cookieJar ignores it)
 * @returns {Promise<Array<object>>} the chain; the last entry is the final response
 *
 * Each hop asks the jar with `jar.header(url, { method, navigation, initiator })` and stores with
 * `jar.store(url, res, { method, navigation, initiator })` (`navigation` is `navigate`), so a store
 * that enforces SameSite (support/chromium-jar.mjs) knows the request's method; cookieJar ignores
 * the extra argument.
 */
export async function follow(fetchFn, url, jar, { max = 10, method = 'GET', body, headers = {}, navigate = true, stopAt, initiator } = {}) {
  const doFetch = fetchFn ?? globalThis.fetch;
  const chain = [];
  let current = new URL(url);
  let m = method;
  let b = body;
  for (let i = 0; i < max; i += 1) {
    const h = { ...(navigate ? BROWSER_NAV_HEADERS : {}), ...headers };
    if (b !== undefined && typeof b === 'string' && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) {
      h['content-type'] = 'application/x-www-form-urlencoded';
    }
    const request = { method: m, navigation: navigate, ...(initiator ? { initiator } : {}) };
    const cookie = jar?.header(current, request);
    if (cookie) h.cookie = cookie;
    const res = await doFetch(current.href, { method: m, headers: h, body: b, redirect: 'manual' });
    jar?.store(current, res, request);
    const text = await res.text();
    const location = res.headers.get('location');
    const entry = {
      url: current.href,
      method: m,
      status: res.status,
      headers: res.headers,
      location,
      setCookies: res.headers.getSetCookie(),
      text,
      json() {
        return JSON.parse(text);
      },
    };
    chain.push(entry);
    if (!(res.status >= 300 && res.status < 400 && location)) return chain;
    const next = new URL(location, current);
    if (stopAt?.(next)) return chain;
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && m === 'POST')) {
      m = 'GET';
      b = undefined;
    }
    current = next;
  }
  const err = new Error(`more than ${max} requests following redirects from ${url}`);
  err.chain = chain;
  throw err;
}

/**
 * The whole browser login through the worker and the demo IdP:
 * worker /hub/oauth_login?next=… → IdP authorize → POST username to the
 * interaction → IdP → worker /hub/oauth_callback → … → final response.
 * When the IdP already has a session (single sign-on) or never asks (the rogue
 * IdP), no username is posted.
 * @returns {Promise<{chain: object[], final: object, interacted: boolean}>}
 */
export async function oidcLogin(worker, idp, username, jar, next = '/hub/', { max = 20 } = {}) {
  const idpOrigin = new URL(idp.url ?? idp.issuer).origin;
  const isInteraction = (u) => u.origin === idpOrigin && u.pathname.startsWith('/interaction/');
  const start = new URL(`/hub/oauth_login?next=${encodeURIComponent(next)}`, worker.url);
  const first = await follow(null, start, jar, { max, stopAt: isInteraction });
  const last = first.at(-1);
  if (!(last.location && isInteraction(new URL(last.location, last.url)))) {
    return { chain: first, final: last, interacted: false };
  }
  const interactionUrl = new URL(last.location, last.url);
  const rest = await follow(null, interactionUrl, jar, {
    max,
    method: 'POST',
    body: new URLSearchParams({ username }).toString(),
  });
  const chain = [...first, ...rest];
  return { chain, final: chain.at(-1), interacted: true };
}

/**
 * Open a WebSocket to `url` (http(s) or ws(s)) with the jar's cookies, like a
 * browser tab would. Resolves with the open socket, or rejects with an error
 * whose `status` is the HTTP status of a refused upgrade.
 * @returns {Promise<import('ws').WebSocket>}
 */
export async function openWebSocket(url, jar, { headers = {}, timeoutMs = 5000 } = {}) {
  const { default: WebSocket } = await import('ws');
  const u = new URL(url);
  const httpUrl = new URL(u);
  httpUrl.protocol = u.protocol === 'wss:' || u.protocol === 'https:' ? 'https:' : 'http:';
  u.protocol = httpUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  const h = { origin: httpUrl.origin, ...headers };
  const cookie = jar?.header(httpUrl, { method: 'GET', navigation: false });
  if (cookie) h.cookie = cookie;
  const ws = new WebSocket(u, { headers: h, handshakeTimeout: timeoutMs });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => {
      const err = new Error(`WebSocket upgrade refused: ${res.statusCode}`);
      err.status = res.statusCode;
      err.headers = res.headers;
      res.resume();
      ws.terminate();
      reject(err);
    });
    ws.once('error', reject);
  });
}

/** Next message on `ws` as text. */
export function nextMessage(ws, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no WebSocket message in time')), timeoutMs);
    ws.once('message', (d) => {
      clearTimeout(t);
      resolve(d.toString());
    });
  });
}
