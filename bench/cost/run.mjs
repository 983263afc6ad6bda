// The run behind `node bench/workerd-cost.mjs` (which supervises it: this
// process and everything it starts live in one process group that the
// supervisor removes on exit or Ctrl-C). Prints figures and writes them to
// bench/results/workerd-cost-<timestamp>.json; asserts nothing about time.
//
// 1. Cold start
//    A  a new Miniflare (a new workerd process) per round: hubgate and a bare
//       pass-through worker with the same KV and Durable Object bindings,
//       interleaved; time to `ready`, then the first request; net = hubgate − bare
//    B  a fresh isolate inside one running workerd per round (Worker Loader):
//       hubgate (wasm bytes made unique per isolate by a custom section, so
//       no compiled-module cache can serve it; and again with identical
//       bytes), hubgate with a configuration error, hubgate without
//       LTI13_PRIVATE_KEY, the wasm module alone (compile + instantiate with
//       inert imports), a bare worker; the first and the second request
//    C  WebAssembly.compile + instantiate of build/index_bg.wasm in this Node
//       (reported as not possible where this Node's V8 cannot compile it)
//    The worker is copied from build/ at the start (a rebuild meanwhile
//    changes nothing here); its size and SHA-256 are in the output.
// 2. Per request: hubgate and a bare pass-through worker in one workerd
//    process, each on its own socket, serial requests in interleaved
//    batches; latency p50/p90 and workerd's CPU (utime+stime from /proc) per
//    request for proxied GETs (with a session; with an API token and no
//    session), /hub/lti13/config, the OAuth login and callback, the LTI
//    login initiation and launch; and, to tell the one-time Durable Object's
//    share apart, one request to the worker's OneTime class from a JS worker
// 3. Counts: a fresh workerd with the built worker behind a counting
//    wrapper (its KV namespaces and its Durable Object namespace wrapped);
//    key-set, discovery, token, userinfo and hub fetches counted at the
//    peers; per BENCH_COUNT launches and logins on a warm isolate, scaled to
//    10,000
//
// Knobs (environment; defaults in brackets):
//   BENCH_PARTS [1a,1b,1c,2,3]  which parts to run
//   BENCH_COLD_ROUNDS [15]    rounds of 1A and 1B (each kind once per round)
//   BENCH_GETS [2000]         proxied GETs per worker (2a)
//   BENCH_CONFIGS [1000]      GET /hub/lti13/config (2d) and API-token GETs per worker
//   BENCH_FLOWS [300]         logins and launches per worker (2b, 2c)
//   BENCH_ROUNDS [6]          rounds of part 2 (the order of the workers alternates; GETs
//                             and config alternate in sub-batches of 50 within a round)
//   BENCH_COUNT [1000]        launches and logins counted (3); figures scaled to 10,000
//                             (10000 takes about 8 minutes on a busy 2-core machine)
//   BENCH_COUNT_CONCURRENCY [4]
//   BENCH_RESULTS_DIR [bench/results]
//   BENCH_VERBOSE=1           echo workerd's output
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Miniflare, Log, LogLevel } from 'miniflare';
import { generateKeyPair, exportJWK } from 'jose';
import { freePort } from '../../tests/e2e/support/ports.mjs';
import { DEFAULT_DURABLE_OBJECTS } from '../../tests/e2e/support/worker.mjs';
import { startHub, startIdp, startPlatform } from './peers.mjs';
import { client, getOnce, cookies, workerdPids, cpuMs, CLK_TCK, summary, median, pairedMedian, fmt, ratio, table, sleep } from './lib.mjs';
import { COMPAT_DATE, bareSource, countingModule, hubgateModule, loaderHostOptions, snapshotBuild } from './workers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const started = Date.now();

function int(name, def, min = 0) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}=${raw}: not a number >= ${min}`);
  return Math.floor(n);
}
const PARTS = ['1a', '1b', '1c', '2', '3'];
const CFG = {
  parts: (process.env.BENCH_PARTS || PARTS.join(',')).split(',').map((x) => x.trim().toLowerCase()).filter(Boolean),
  coldRounds: int('BENCH_COLD_ROUNDS', 15, 1),
  gets: int('BENCH_GETS', 2000, 1),
  configs: int('BENCH_CONFIGS', 1000, 1),
  flows: int('BENCH_FLOWS', 300, 1),
  rounds: int('BENCH_ROUNDS', 6, 1),
  count: int('BENCH_COUNT', 1000, 1),
  countConcurrency: int('BENCH_COUNT_CONCURRENCY', 4, 1),
  resultsDir: path.resolve(process.env.BENCH_RESULTS_DIR || path.join(here, '..', 'results')),
  verbose: process.env.BENCH_VERBOSE === '1',
};
const COUNT_PER = 10_000;
for (const p of CFG.parts) if (!PARTS.includes(p)) throw new Error(`BENCH_PARTS: unknown part ${p} (known: ${PARTS.join(', ')})`);
const runs = (p) => CFG.parts.includes(p);

// ---------------------------------------------------------------------------
// Cleanup: every peer and Miniflare registers how to stop it.

const cleanups = [];
let stopping = null;
function stopAll() {
  stopping ??= (async () => {
    while (cleanups.length) {
      const c = cleanups.pop();
      await Promise.race([Promise.resolve().then(c).catch(() => {}), sleep(5000)]);
    }
  })();
  return stopping;
}
/** Register `fn` as a cleanup; returns a function that runs it now (once) and unregisters it. */
function onStop(fn) {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    await fn();
  };
  cleanups.push(once);
  return async () => {
    const i = cleanups.indexOf(once);
    if (i >= 0) cleanups.splice(i, 1);
    await once();
  };
}
async function bail(code, message) {
  if (message) console.error(message);
  await stopAll();
  process.exit(code);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => void bail(130, `workerd-cost: ${sig}, stopping`));
process.on('uncaughtException', (err) => void bail(2, `workerd-cost: ${err.stack ?? err}${workerdTail()}`));
process.on('unhandledRejection', (err) => void bail(2, `workerd-cost: ${err?.stack ?? err}${workerdTail()}`));

const log = (msg) => process.stderr.write(`[cost ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);

// workerd's output: kept (last 100 lines) for error reports, echoed with BENCH_VERBOSE=1
const tail = [];
function pipeStdio(stdout, stderr) {
  for (const [stream, name] of [
    [stdout, 'out'],
    [stderr, 'err'],
  ]) {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      tail.push(`[workerd ${name}] ${line}`);
      if (tail.length > 100) tail.shift();
      if (CFG.verbose) process.stderr.write(`[workerd ${name}] ${line}\n`);
    });
  }
}
const workerdTail = () => (tail.length ? `\nlast workerd output:\n${tail.slice(-30).join('\n')}` : '');

/** Start a Miniflare; it is disposed by stopAll() or by the returned stop(). */
async function miniflare(options) {
  const mf = new Miniflare({ host: '127.0.0.1', port: 0, cf: false, log: new Log(CFG.verbose ? LogLevel.DEBUG : LogLevel.NONE), handleRuntimeStdio: pipeStdio, ...options });
  const stop = onStop(() => mf.dispose());
  let url;
  try {
    url = await mf.ready;
  } catch (err) {
    await stop();
    throw err;
  }
  return { mf, url, stop };
}

function expect(cond, what, res) {
  if (!cond) throw new Error(`${what}${res ? ` (got ${res.status}${res.location ? ` → ${res.location}` : ''}: ${String(res.text ?? '').slice(0, 300)})` : ''}`);
}

// ---------------------------------------------------------------------------
// Configuration: a realistic OIDC + LTI deployment

const b64url = (buf) => Buffer.from(buf).toString('base64url');
/** A session cookie as the worker mints it (see tests/e2e/support/oauth-helpers.mjs mintSession). */
function mintSession(secret, origin, sub = 'alice') {
  const key = crypto.createHmac('sha256', Buffer.from(secret, 'utf8')).update('hubgate/v1/session').digest();
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'hubgate-session+jwt' }))}.${b64url(JSON.stringify({ iss: 'hubgate', aud: origin, sub, method: 'oauth', groups: ['students'], admin: false, sid: crypto.randomBytes(16).toString('base64url'), iat: now, exp: now + 3600 }))}`;
  return `hubgate=${input}.${b64url(crypto.createHmac('sha256', key).update(input).digest())}`;
}

async function makeBindings({ hub, idp, platform }) {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const assertion = JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' });
  const { privateKey: toolKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const secret = crypto.randomBytes(32).toString('base64');
  const bindings = {
    HUB_ORIGIN: hub.url,
    SESSION_SECRET: secret,
    ASSERTION_SIGNING_KEY: assertion,
    OIDC_ISSUER: idp.issuer,
    OAUTH_CLIENT_ID: idp.clientId,
    OAUTH_CLIENT_SECRET: idp.clientSecret,
    OAUTH2_USERNAME_KEY: 'preferred_username',
    ALLOWED_USERS: 'alice,bob',
    ADMIN_USERS: 'carol',
    ALLOWED_GROUPS: 'students',
    LTI13_ISSUER: platform.issuer,
    LTI13_CLIENT_ID: platform.clientId,
    LTI13_AUTHORIZE_URL: platform.authorizeUrl,
    LTI13_JWKS_ENDPOINT: platform.jwksUrl,
    LTI13_DEPLOYMENT_IDS: platform.deploymentId,
    LTI13_PRIVATE_KEY: toolKey.export({ type: 'pkcs8', format: 'pem' }),
  };
  // The same, broken: a short secret and a plain-http token URL on another host (two errors, reported at once).
  const badBindings = { ...bindings, SESSION_SECRET: 'too-short', OAUTH2_TOKEN_URL: 'http://idp.example.edu/token' };
  // The same without the tool's RSA key (optional: only deep linking signs with it)
  const { LTI13_PRIVATE_KEY: _toolKey, ...noToolKey } = bindings;
  return { bindings, badBindings, noToolKey, secret };
}

const KV = ['JWKS_CACHE', 'NONCES'];

/** /do: one request to a fresh OneTime object, named and asked as src/edge/io.rs does; /noop: nothing. */
const DO_PROBE = `export default { async fetch(req, env) {
  if (new URL(req.url).pathname === '/noop') return new Response('noop');
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(crypto.randomUUID()));
  const name = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const r = await env.ONE_TIME.get(env.ONE_TIME.idFromName(name)).fetch('https://one-time.invalid/use?ttl=600');
  return new Response(await r.text());
} };`;

// ---------------------------------------------------------------------------
// Flows, driven like a browser (cookies by hand, no redirect following)

const USERS = ['alice', 'bob', 'carol'];

/** /hub/oauth_login → (authorize at the IdP) */
async function oauthStart(c, i) {
  const jar = cookies();
  const r = await c.request('/hub/oauth_login?next=%2Fhub%2Fhome', { headers: { accept: 'text/html' } });
  expect(r.status === 302 && r.location?.includes('/authorize?'), 'oauth_login redirects to the IdP', r);
  jar.store(r.setCookies);
  return { jar, r, authorize: `${r.location}&login_hint=${USERS[i % USERS.length]}` };
}
/** The IdP's authorize (a Node peer, not the worker): returns the callback path. */
async function oauthAuthorize(flow) {
  const t0 = performance.now();
  const a = await getOnce(flow.authorize);
  flow.authorizeMs = performance.now() - t0;
  expect(a.status === 302 && a.location?.includes('/hub/oauth_callback?'), 'the IdP redirects back', a);
  const u = new URL(a.location);
  flow.callback = `${u.pathname}${u.search}`;
  return flow;
}
async function oauthCallback(c, flow) {
  const r = await c.request(flow.callback, { headers: { accept: 'text/html', cookie: flow.jar.header() } });
  expect(r.status === 302 && r.location === '/hub/home', 'the callback logs in and redirects to next', r);
  flow.jar.store(r.setCookies);
  expect(flow.jar.names().includes('hubgate'), 'the callback sets the session cookie', r);
  return r;
}

function ltiInitPath(platform, origin, user) {
  const q = new URLSearchParams({ iss: platform.issuer, login_hint: user, target_link_uri: `${origin}/hub/home`, client_id: platform.clientId, lti_deployment_id: platform.deploymentId });
  return `/hub/lti13/oauth_login?${q}`;
}
async function ltiInit(c, platform, i) {
  const user = `s${i % 50}`;
  const jar = cookies();
  const r = await c.request(ltiInitPath(platform, c.origin, user), { headers: { accept: 'text/html' } });
  expect(r.status === 302 && r.location?.startsWith(platform.authorizeUrl), 'LTI login initiation redirects to the platform', r);
  jar.store(r.setCookies);
  const q = new URL(r.location).searchParams;
  return { jar, r, user, nonce: q.get('nonce'), state: q.get('state'), redirect: new URL(q.get('redirect_uri')) };
}
async function ltiSign(platform, c, flow) {
  const idToken = await platform.sign({ nonce: flow.nonce, user: flow.user, target: `${c.origin}/hub/home` });
  flow.body = new URLSearchParams({ id_token: idToken, state: flow.state }).toString();
  return flow;
}
async function ltiLaunch(c, flow) {
  const r = await c.request(flow.redirect.pathname, {
    method: 'POST',
    headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: flow.jar.header() },
    body: flow.body,
  });
  expect(r.status === 302 && r.location === '/hub/home', 'the launch logs in and redirects to the target', r);
  flow.jar.store(r.setCookies);
  expect(flow.jar.names().includes('hubgate'), 'the launch sets the session cookie', r);
  return r;
}

// ---------------------------------------------------------------------------
// 1A: a new workerd process per round

async function coldProcess({ build, hub, bindings, secret }) {
  const kinds = ['hubgate', 'bare'];
  const out = Object.fromEntries(kinds.map((k) => [k, { ready: [], first: [], second: [] }]));
  const options = {
    hubgate: () => ({ ...hubgateModule(build.script), compatibilityDate: COMPAT_DATE, bindings, kvNamespaces: KV, durableObjects: structuredClone(DEFAULT_DURABLE_OBJECTS) }),
    bare: () => ({ modules: true, script: bareSource(hub.url, { withOneTime: true }), compatibilityDate: COMPAT_DATE, kvNamespaces: KV, durableObjects: structuredClone(DEFAULT_DURABLE_OBJECTS) }),
  };
  for (let round = -1; round < CFG.coldRounds; round += 1) {
    const order = round % 2 ? kinds : [...kinds].reverse();
    for (const kind of order) {
      const t0 = performance.now();
      const { url, stop } = await miniflare(options[kind]());
      const tReady = performance.now();
      const cookie = mintSession(secret, url.origin);
      const c = client(url.origin);
      const t1 = performance.now();
      const first = await c.request('/hub/home', { headers: { cookie, accept: 'text/html' } });
      const tFirst = performance.now();
      const second = await c.request('/hub/home', { headers: { cookie, accept: 'text/html' } });
      c.close();
      await stop();
      expect(first.status === 200 && first.text === 'ok' && second.status === 200, `1A ${kind}: the first request is proxied to the hub`, first);
      if (round < 0) continue; // warm-up (Node's own module loading, the disk cache)
      out[kind].ready.push(tReady - t0);
      out[kind].first.push(tFirst - t1);
      out[kind].second.push(second.ms);
    }
    if (round >= 0) log(`1A round ${round + 1}/${CFG.coldRounds}: hubgate ${fmt(out.hubgate.ready.at(-1) + out.hubgate.first.at(-1), 0)} ms, bare ${fmt(out.bare.ready.at(-1) + out.bare.first.at(-1), 0)} ms`);
  }
  for (const k of kinds) out[k].total = out[k].ready.map((r, i) => r + out[k].first[i]);
  return out;
}

// ---------------------------------------------------------------------------
// 1B: a fresh isolate per round inside one running workerd (Worker Loader)

const LOADER_KINDS = [
  { kind: 'hubgate', unique: true, path: '/hub/home', status: 200 },
  { kind: 'hubgate-cached-wasm', unique: false, path: '/hub/home', status: 200 },
  { kind: 'hubgate-config-error', unique: true, path: '/hub/home', status: 500 },
  { kind: 'hubgate-no-tool-key', unique: true, path: '/hub/home', status: 200 },
  { kind: 'wasm-only', unique: true, path: '/', status: 200 },
  { kind: 'bare', unique: false, path: '/hub/home', status: 200 },
];
const LOADER_RESTART_EVERY = 5; // rounds; a new workerd then frees the loaded isolates

async function coldIsolate({ build, hub, bindings, badBindings, noToolKey, secret }) {
  const publicOrigin = 'http://127.0.0.1:8999'; // the origin the loaded workers see (no socket: requests come from the host)
  const cookie = mintSession(secret, publicOrigin);
  const out = Object.fromEntries(LOADER_KINDS.map((k) => [k.kind, { cold: [], warm: [] }]));
  const noop = [];
  let host = null;
  const start = async () => {
    const port = await freePort();
    const m = await miniflare({ ...loaderHostOptions({ build, bindings, badBindings, noToolKey, hubOrigin: hub.url, publicOrigin }), unsafeDirectSockets: [{ host: '127.0.0.1', port }] });
    return { ...m, c: client(`http://127.0.0.1:${port}`) };
  };
  let seq = 0;
  for (let round = -1; round < CFG.coldRounds; round += 1) {
    if (!host || (round >= 0 && round % LOADER_RESTART_EVERY === 0)) {
      if (host) {
        host.c.close();
        await host.stop();
      }
      host = await start();
      // the host's own isolate and the loader's first use, not measured
      for (let i = 0; i < 3; i += 1) await host.c.request('/noop');
    }
    const shift = ((round % LOADER_KINDS.length) + LOADER_KINDS.length) % LOADER_KINDS.length;
    const order = [...LOADER_KINDS.slice(shift), ...LOADER_KINDS.slice(0, shift)];
    for (const k of order) {
      seq += 1;
      const id = `${k.kind}-${seq}`;
      const q = `id=${encodeURIComponent(id)}&path=${encodeURIComponent(k.path)}`;
      const p = await host.c.request(`/prepare?id=${encodeURIComponent(id)}&kind=${k.kind}&unique=${k.unique ? 1 : 0}`);
      expect(p.status === 200, `1B ${k.kind}: prepare`, p);
      const n = await host.c.request('/noop');
      const cold = await host.c.request(`/cold?${q}`, { headers: { 'x-probe-cookie': cookie } });
      const warm = await host.c.request(`/warm?${q}`, { headers: { 'x-probe-cookie': cookie } });
      for (const r of [cold, warm]) {
        expect(r.status === 200, `1B ${k.kind}: the host answers`, r);
        const inner = JSON.parse(r.text);
        expect(inner.status === k.status, `1B ${k.kind}: the loaded worker answers ${k.status}`, { status: inner.status, text: inner.head });
      }
      if (round < 0) continue;
      noop.push(n.ms);
      out[k.kind].cold.push(cold.ms);
      out[k.kind].warm.push(warm.ms);
    }
    if (round >= 0) log(`1B round ${round + 1}/${CFG.coldRounds}: hubgate ${fmt(out.hubgate.cold.at(-1), 1)} ms, bare ${fmt(out.bare.cold.at(-1), 1)} ms`);
  }
  host.c.close();
  await host.stop();
  return { kinds: out, noop };
}

// ---------------------------------------------------------------------------
// 1C: WebAssembly.compile + instantiate in Node

function withCustomSection(bytes, tag) {
  const name = Buffer.from('hubgate-bench');
  const body = Buffer.concat([Buffer.from([name.length]), name, Buffer.from(tag)]);
  return Buffer.concat([bytes, Buffer.from([0, body.length]), body]);
}

async function nodeCompile(build) {
  const bytes = fs.readFileSync(build.wasm);
  const compile = [];
  const instantiate = [];
  try {
    for (let i = -1; i < CFG.coldRounds; i += 1) {
      const unique = withCustomSection(bytes, `node-${i}-${crypto.randomUUID()}`);
      const t0 = performance.now();
      const mod = await WebAssembly.compile(unique);
      const t1 = performance.now();
      const imports = {};
      for (const imp of WebAssembly.Module.imports(mod)) {
        (imports[imp.module] ??= {})[imp.name] = imp.kind === 'function' ? () => { throw new Error('inert import'); } : imp.kind === 'tag' ? WebAssembly.JSTag : undefined;
      }
      await WebAssembly.instantiate(mod, imports);
      const t2 = performance.now();
      if (i < 0) continue;
      compile.push(t1 - t0);
      instantiate.push(t2 - t1);
    }
    return { node: process.version, v8: process.versions.v8, compile: summary(compile), instantiate: summary(instantiate) };
  } catch (err) {
    return { node: process.version, v8: process.versions.v8, error: String(err.message ?? err) };
  }
}

// ---------------------------------------------------------------------------
// 2: per-request cost, hubgate and bare in one workerd process

async function perRequest({ build, hub, idp, platform, bindings }) {
  const [hPort, bPort, pPort] = [await freePort(), await freePort(), await freePort()];
  const before = new Set(workerdPids());
  const { stop } = await miniflare({
    workers: [
      { name: 'hubgate', ...hubgateModule(build.script), compatibilityDate: COMPAT_DATE, bindings, kvNamespaces: KV, durableObjects: structuredClone(DEFAULT_DURABLE_OBJECTS), unsafeDirectSockets: [{ host: '127.0.0.1', port: hPort }] },
      { name: 'bare', modules: true, script: bareSource(hub.url), compatibilityDate: COMPAT_DATE, unsafeDirectSockets: [{ host: '127.0.0.1', port: bPort }] },
      // the worker's own OneTime class (in hubgate's namespace), asked as the worker asks it
      { name: 'do-probe', modules: true, script: DO_PROBE, compatibilityDate: COMPAT_DATE, durableObjects: { ONE_TIME: { className: 'OneTime', scriptName: 'hubgate', useSQLite: true } }, unsafeDirectSockets: [{ host: '127.0.0.1', port: pPort }] },
    ],
  });
  const pids = workerdPids().filter((p) => !before.has(p));
  expect(pids.length >= 1, `2: found workerd's pid under this process (${pids.length})`);
  const hc = client(`http://127.0.0.1:${hPort}`);
  const bc = client(`http://127.0.0.1:${bPort}`);
  const pc = client(`http://127.0.0.1:${pPort}`);
  const hubLoginsBefore = hub.counts().logins;
  let hubgateLogins = 0;

  // Warm up both, and take the request shapes the bare worker gets from real flows.
  log('2: warm-up');
  const tpl = {};
  for (let i = 0; i < 5; i += 1) {
    const f = await oauthAuthorize(await oauthStart(hc, i));
    await oauthCallback(hc, f);
    const l = await ltiSign(platform, hc, await ltiInit(hc, platform, i));
    await ltiLaunch(hc, l);
    hubgateLogins += 2;
    tpl.oauthCallback = { path: f.callback, cookie: f.jar.header((n) => n.startsWith('hubgate-oauth-')) };
    tpl.ltiInit = ltiInitPath(platform, bc.origin, l.user);
    tpl.ltiLaunch = { path: l.redirect.pathname, body: l.body, cookie: l.jar.header((n) => n.startsWith('hubgate-lti-')) };
    if (i === 0) tpl.session = f.jar.header(); // the session and the hub's cookies, as a browser sends them
  }
  const getHeaders = { accept: 'text/html', cookie: tpl.session };
  const tokenHeaders = { accept: 'application/json', authorization: `token ${crypto.randomBytes(16).toString('hex')}` };
  for (let i = 0; i < 100; i += 1) {
    await hc.request(`/hub/home?w=${i}`, { headers: getHeaders });
    await bc.request(`/hub/home?w=${i}`, { headers: getHeaders });
    await hc.request(`/hub/api/user?w=${i}`, { headers: tokenHeaders });
    await bc.request(`/hub/api/user?w=${i}`, { headers: tokenHeaders });
    await pc.request('/do');
    await pc.request('/noop');
    if (i % 5 === 0) {
      await hc.request('/hub/lti13/config', { headers: { accept: 'application/json' } });
      await bc.request('/hub/lti13/config', { headers: { accept: 'application/json' } });
      await bc.request('/hub/oauth_login?next=%2Fhub%2Fhome', { headers: { accept: 'text/html' } });
      await bc.request(tpl.oauthCallback.path, { headers: { accept: 'text/html', cookie: tpl.oauthCallback.cookie } });
      await bc.request(tpl.ltiInit, { headers: { accept: 'text/html' } });
      await bc.request(tpl.ltiLaunch.path, { method: 'POST', headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: tpl.ltiLaunch.cookie }, body: tpl.ltiLaunch.body });
    }
  }
  const check = await hc.request('/hub/home?check=1', { headers: getHeaders });
  expect(check.status === 200 && check.text === 'ok', '2: hubgate proxies a GET with the session', check);

  // workerd's CPU while idle, for reference
  const idle0 = cpuMs(pids);
  const idleT0 = performance.now();
  await sleep(2000);
  const idle = { cpuMsPerS: ((cpuMs(pids) - idle0) / (performance.now() - idleT0)) * 1000 };

  const KINDS = ['get', 'get_token', 'config', 'oauth_login', 'oauth_callback', 'login_full', 'lti_init', 'lti_launch', 'launch_full'];
  const res = {};
  const slot = (kind, target) => ((res[kind] ??= {})[target] ??= { samples: [], cpuMs: 0, n: 0 });
  for (const k of KINDS) for (const t of ['hubgate', 'bare']) slot(k, t);
  /** Run `n` requests of `kind` against `target`, measuring workerd's CPU around the batch. */
  async function batch(kind, target, n, one) {
    const r = slot(kind, target);
    const c0 = cpuMs(pids);
    for (let i = 0; i < n; i += 1) r.samples.push(await one(i));
    const used = cpuMs(pids) - c0;
    r.cpuMs += used;
    r.n += n;
  }
  const per = (total) => Math.max(1, Math.round(total / CFG.rounds));
  const SUB = 50;
  const nGet = per(CFG.gets);
  const nConfig = per(CFG.configs);
  const nFlow = per(CFG.flows);
  let seq = 0;
  for (let round = 0; round < CFG.rounds; round += 1) {
    const order = round % 2 ? ['bare', 'hubgate'] : ['hubgate', 'bare'];
    // the cheap kinds alternate between the two workers in sub-batches of about SUB requests
    const cheap = [
      ['get', nGet, (c, i) => c.request(`/hub/home?r=${round}&i=${i}`, { headers: getHeaders }), (r) => r.status === 200 && r.text === 'ok'],
      ['get_token', nConfig, (c, i) => c.request(`/hub/api/user?r=${round}&i=${i}`, { headers: tokenHeaders }), (r) => r.status === 200 && r.text === 'ok'],
      ['config', nConfig, (c) => c.request('/hub/lti13/config', { headers: { accept: 'application/json' } }), (r) => r.status === 200],
    ];
    for (const [kind, n, send, ok] of cheap) {
      const subs = Math.max(1, Math.round(n / SUB));
      for (let sub = 0; sub < subs; sub += 1) {
        const size = Math.floor((n * (sub + 1)) / subs) - Math.floor((n * sub) / subs);
        for (const target of sub % 2 ? [...order].reverse() : order) {
          const c = target === 'hubgate' ? hc : bc;
          await batch(kind, target, size, async (i) => {
            const r = await send(c, i);
            expect(ok(r), `${kind} via ${target}`, r);
            return r.ms;
          });
        }
      }
    }
    for (const kind of round % 2 ? ['noop', 'do_request'] : ['do_request', 'noop']) {
      await batch(kind, 'probe', nFlow, async () => {
        const r = await pc.request(kind === 'noop' ? '/noop' : '/do');
        expect(r.status === 200 && r.text === (kind === 'noop' ? 'noop' : 'first'), `do-probe ${kind}`, r);
        return r.ms;
      });
    }
    for (const target of order) {
      if (target === 'hubgate') {
        const flows = [];
        await batch('oauth_login', target, nFlow, async (i) => {
          const f = await oauthStart(hc, seq + i);
          flows.push(f);
          return f.r.ms;
        });
        for (const f of flows) await oauthAuthorize(f);
        await batch('oauth_callback', target, nFlow, async (i) => {
          const r = await oauthCallback(hc, flows[i]);
          res.login_full.hubgate.samples.push(flows[i].r.ms + flows[i].authorizeMs + r.ms);
          return r.ms;
        });
        const launches = [];
        await batch('lti_init', target, nFlow, async (i) => {
          const f = await ltiInit(hc, platform, seq + i);
          launches.push(f);
          return f.r.ms;
        });
        for (const f of launches) await ltiSign(platform, hc, f);
        await batch('lti_launch', target, nFlow, async (i) => {
          const r = await ltiLaunch(hc, launches[i]);
          res.launch_full.hubgate.samples.push(launches[i].r.ms + r.ms);
          return r.ms;
        });
        hubgateLogins += 2 * nFlow;
        seq += nFlow;
      } else {
        const logins = [];
        await batch('oauth_login', target, nFlow, async (i) => {
          const r = await bc.request(`/hub/oauth_login?next=%2Fhub%2Fhome`, { headers: { accept: 'text/html' } });
          expect(r.status === 200, 'bare oauth_login', r);
          logins.push(r.ms);
          return r.ms;
        });
        await batch('oauth_callback', target, nFlow, async (i) => {
          const r = await bc.request(tpl.oauthCallback.path, { headers: { accept: 'text/html', cookie: tpl.oauthCallback.cookie } });
          expect(r.status === 200, 'bare oauth_callback', r);
          res.login_full.bare.samples.push(logins[i] + r.ms);
          return r.ms;
        });
        const inits = [];
        await batch('lti_init', target, nFlow, async () => {
          const r = await bc.request(tpl.ltiInit, { headers: { accept: 'text/html' } });
          expect(r.status === 200, 'bare lti_init', r);
          inits.push(r.ms);
          return r.ms;
        });
        await batch('lti_launch', target, nFlow, async (i) => {
          const r = await bc.request(tpl.ltiLaunch.path, { method: 'POST', headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: tpl.ltiLaunch.cookie }, body: tpl.ltiLaunch.body });
          expect(r.status === 200, 'bare lti_launch', r);
          res.launch_full.bare.samples.push(inits[i] + r.ms);
          return r.ms;
        });
      }
    }
    log(`2 round ${round + 1}/${CFG.rounds}: GET p50 hubgate ${fmt(summary(res.get.hubgate.samples).p50)} ms, bare ${fmt(summary(res.get.bare.samples).p50)} ms`);
  }
  const hubLogins = hub.counts().logins - hubLoginsBefore;
  expect(hubLogins === hubgateLogins, `2: every login and launch logged in at the hub once (${hubLogins} hub logins for ${hubgateLogins})`);
  hc.close();
  bc.close();
  pc.close();
  await stop();
  // the CPU of a whole login / launch is the sum of its worker requests (the IdP and the platform are Node peers)
  for (const t of ['hubgate', 'bare']) {
    res.login_full[t].cpuPerReq = res.oauth_login[t].cpuMs / res.oauth_login[t].n + res.oauth_callback[t].cpuMs / res.oauth_callback[t].n;
    res.launch_full[t].cpuPerReq = res.lti_init[t].cpuMs / res.lti_init[t].n + res.lti_launch[t].cpuMs / res.lti_launch[t].n;
  }
  const out = { pids: pids.length, idle, sizes: { gets: nGet * CFG.rounds, configs: nConfig * CFG.rounds, flows: nFlow * CFG.rounds, rounds: CFG.rounds }, kinds: {} };
  for (const k of Object.keys(res)) {
    out.kinds[k] = {};
    for (const t of Object.keys(res[k])) {
      const r = res[k][t];
      out.kinds[k][t] = { ...summary(r.samples), cpuMsPerReq: r.cpuPerReq ?? (r.n ? r.cpuMs / r.n : NaN), cpuMsTotal: r.cpuMs };
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// 3: counts on a warm isolate, behind the counting wrapper

async function counts({ build, hub, idp, platform, bindings }) {
  const port = await freePort();
  const { stop } = await miniflare({
    name: 'counted',
    ...countingModule(build),
    compatibilityDate: COMPAT_DATE,
    bindings,
    // namespaces of their own: nothing cached by earlier phases
    kvNamespaces: { JWKS_CACHE: 'counted-jwks-cache', NONCES: 'counted-nonces' },
    durableObjects: structuredClone(DEFAULT_DURABLE_OBJECTS),
    unsafeDirectSockets: [{ host: '127.0.0.1', port }],
  });
  const origin = `http://127.0.0.1:${port}`;
  const lanes = Array.from({ length: CFG.countConcurrency }, () => client(origin));
  const snap = async () => {
    const w = await lanes[0].request('/__bench/counts');
    expect(w.status === 200, 'the counting wrapper answers its counts', w);
    return { worker: JSON.parse(w.text), idp: idp.counts(), platform: platform.counts(), hub: hub.counts() };
  };
  const login = async (c, i) => oauthCallback(c, await oauthAuthorize(await oauthStart(c, i)));
  const launch = async (c, i) => ltiLaunch(c, await ltiSign(platform, c, await ltiInit(c, platform, i)));
  const many = async (n, fn) => {
    let next = 0;
    await Promise.all(
      lanes.map(async (c) => {
        while (next < n) {
          const i = next++;
          await fn(c, i);
          if (i && i % 1000 === 0) log(`3: ${i}/${n}`);
        }
      }),
    );
  };
  const s0 = await snap();
  await launch(lanes[0], 0);
  const sLaunch1 = await snap();
  await login(lanes[0], 0);
  const sLogin1 = await snap();
  for (let i = 1; i < 10; i += 1) {
    await launch(lanes[0], i);
    await login(lanes[0], i);
  }
  const sWarm = await snap();
  log(`3: ${CFG.count} launches`);
  let t0 = performance.now();
  await many(CFG.count, launch);
  const launchesS = (performance.now() - t0) / 1000;
  const sLaunches = await snap();
  log(`3: ${CFG.count} logins`);
  t0 = performance.now();
  await many(CFG.count, login);
  const loginsS = (performance.now() - t0) / 1000;
  const sLogins = await snap();
  for (const c of lanes) c.close();
  await stop();
  return { n: CFG.count, concurrency: CFG.countConcurrency, launchesS, loginsS, snapshots: { start: s0, afterFirstLaunch: sLaunch1, afterFirstLogin: sLogin1, warm: sWarm, afterLaunches: sLaunches, afterLogins: sLogins } };
}

/** The counted quantities of a snapshot, flat. */
function flat(s) {
  const w = s.worker;
  return {
    idpJwks: s.idp['/jwks'] ?? 0,
    platformJwks: s.platform['/jwks'] ?? 0,
    discovery: s.idp['/.well-known/openid-configuration'] ?? 0,
    token: s.idp['/token'] ?? 0,
    userinfo: s.idp['/userinfo'] ?? 0,
    hubLogin: s.hub.logins ?? 0,
    kvCacheReads: (w['JWKS_CACHE.get'] ?? 0) + (w['JWKS_CACHE.getWithMetadata'] ?? 0),
    kvCacheWrites: (w['JWKS_CACHE.put'] ?? 0) + (w['JWKS_CACHE.delete'] ?? 0),
    kvNoncesReads: (w['NONCES.get'] ?? 0) + (w['NONCES.getWithMetadata'] ?? 0),
    kvNoncesWrites: (w['NONCES.put'] ?? 0) + (w['NONCES.delete'] ?? 0),
    kvLists: (w['JWKS_CACHE.list'] ?? 0) + (w['NONCES.list'] ?? 0),
    doRequests: (w['ONE_TIME.fetch'] ?? 0) + (w['ONE_TIME.connect'] ?? 0),
  };
}
const diff = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]]));

// ---------------------------------------------------------------------------
// Report

function reportColdProcess(a, say) {
  say(`1A. Cold start, a new workerd process per round: new Miniflare → ready (workerd started, modules compiled and instantiated) → first request answered; ${a.hubgate.total.length} rounds, interleaved, medians, ms`);
  const rowA = (name, k) => [name, fmt(median(k.ready), 1), fmt(median(k.first), 1), fmt(median(k.total), 1), fmt(median(k.second), 1)];
  const net = (key) => fmt(median(a.hubgate[key]) - median(a.bare[key]), 1);
  const paired = (key) => fmt(pairedMedian(a.hubgate[key], a.bare[key]), 1);
  const times = (key) => `${fmt(ratio(median(a.hubgate[key]), median(a.bare[key])))}×`;
  say(
    table([
      ['worker', 'to ready', '1st request', 'total', '2nd request'],
      rowA('hubgate (proxied GET with a session)', a.hubgate),
      rowA('bare pass-through (same KV + DO bindings)', a.bare),
      ['net = hubgate − bare (medians)', net('ready'), net('first'), net('total'), net('second')],
      ['net, median of per-round differences', paired('ready'), paired('first'), paired('total'), paired('second')],
      ['ratio hubgate / bare', times('ready'), times('first'), times('total'), ''],
    ]),
  );
  say('    includes workerd process start and Miniflare\'s own workers for both; the net is what hubgate adds');
  say();
}

function reportColdIsolate(b, say) {
  const k = b.kinds;
  say(`1B. Cold start, a fresh isolate inside a running workerd (Worker Loader): module compile + instantiate + config parse + the answer, seen from Node through a host worker; ${k.hubgate.cold.length} rounds, interleaved, medians, ms`);
  const rowB = (name, x) => [name, fmt(median(x.cold), 2), fmt(median(x.warm), 2), fmt(pairedMedian(x.cold, x.warm), 2), fmt(summary(x.cold).p90, 2)];
  say(
    table([
      ['isolate', '1st request', '2nd request', '1st − 2nd', '1st p90'],
      rowB('hubgate, proxied GET (wasm compiled afresh)', k.hubgate),
      rowB('hubgate, identical wasm bytes every time', k['hubgate-cached-wasm']),
      rowB('hubgate, configuration error (answers 500)', k['hubgate-config-error']),
      rowB('hubgate without LTI13_PRIVATE_KEY', k['hubgate-no-tool-key']),
      rowB('the wasm module alone: compile + instantiate', k['wasm-only']),
      rowB('bare pass-through, proxied GET', k.bare),
      ['host round trip alone (/noop)', fmt(median(b.noop), 2), '', '', fmt(summary(b.noop).p90, 2)],
      ['net hubgate − bare (medians)', fmt(median(k.hubgate.cold) - median(k.bare.cold), 2), fmt(median(k.hubgate.warm) - median(k.bare.warm), 2), '', ''],
      ['ratio hubgate / bare', `${fmt(ratio(median(k.hubgate.cold), median(k.bare.cold)))}×`, `${fmt(ratio(median(k.hubgate.warm), median(k.bare.warm)))}×`, '', ''],
      ['configuration error − valid configuration', fmt(median(k['hubgate-config-error'].cold) - median(k.hubgate.cold), 2), '', '', ''],
    ]),
  );
  say('    the loaded hubgate gets stand-ins for KV and the Durable Object (a loaded worker cannot be given real ones); these requests never use them');
  say();
}

function reportNode(n, say) {
  say(`1C. WebAssembly.compile + instantiate of build/index_bg.wasm in Node ${n.node} (V8 ${n.v8}), medians`);
  if (n.error) say(`    not possible in this Node: ${n.error}\n    (the module uses the exnref exception-handling instructions; see "the wasm module alone" in 1B for the same in workerd's V8)`);
  else say(`    compile ${fmt(n.compile.p50, 2)} ms, instantiate ${fmt(n.instantiate.p50, 2)} ms (${n.compile.n} runs, bytes made unique per run)`);
  say();
}

function reportPerRequest(p, say) {
  say(`2. Per request in one workerd process, serial, interleaved batches (GET ${p.sizes.gets}, API-token GET and config ${p.sizes.configs}, logins ${p.sizes.flows}, launches ${p.sizes.flows} per worker); latency ms; workerd CPU per request (utime+stime of the workerd process, ${1000 / CLK_TCK} ms ticks, summed over all batches)`);
  const rows = [['request', 'worker', 'n', 'p50', 'p90', 'p50 ratio', 'CPU ms/req', 'CPU − bare']];
  const names = {
    get: '(a) proxied GET, warm session',
    get_token: "(a') proxied GET, API token, no session",
    config: '(d) GET /hub/lti13/config',
    oauth_login: '(b) GET /hub/oauth_login',
    oauth_callback: '(b) GET /hub/oauth_callback',
    login_full: '(b) whole login (3 hops, IdP incl.)',
    lti_init: '(c) LTI login initiation',
    lti_launch: '(c) LTI launch POST',
    launch_full: '(c) whole launch (init + POST)',
  };
  for (const [k, label] of Object.entries(names)) {
    const h = p.kinds[k].hubgate;
    const bb = p.kinds[k].bare;
    rows.push([label, 'hubgate', h.n, fmt(h.p50), fmt(h.p90), `${fmt(ratio(h.p50, bb.p50))}×`, fmt(h.cpuMsPerReq, 3), fmt(h.cpuMsPerReq - bb.cpuMsPerReq, 3)]);
    rows.push(['', 'bare', bb.n, fmt(bb.p50), fmt(bb.p90), '', fmt(bb.cpuMsPerReq, 3), '']);
  }
  const dq = p.kinds.do_request.probe;
  const nq = p.kinds.noop.probe;
  const doCpu = dq.cpuMsPerReq - nq.cpuMsPerReq;
  rows.push(['one OneTime DO request, from a JS worker', 'probe', dq.n, fmt(dq.p50), fmt(dq.p90), '', fmt(dq.cpuMsPerReq, 3), '']);
  rows.push(['the same JS worker answering at once', 'probe', nq.n, fmt(nq.p50), fmt(nq.p90), '', fmt(nq.cpuMsPerReq, 3), '']);
  say(table(rows));
  const g = p.kinds.get;
  const ll = p.kinds.lti_launch;
  const lf = p.kinds.launch_full;
  const oc = p.kinds.oauth_callback;
  const over = (x) => x.hubgate.cpuMsPerReq - x.bare.cpuMsPerReq;
  say(`    (a) target p50 ≤ 1.05 × bare: ${fmt(ratio(g.hubgate.p50, g.bare.p50))}× (${ratio(g.hubgate.p50, g.bare.p50) <= 1.05 ? 'met' : 'not met'}); p90 ${fmt(ratio(g.hubgate.p90, g.bare.p90))}×`);
  say(`    one OneTime DO request (a new object in Miniflare's local SQLite-backed store, same workerd process): ${fmt(doCpu, 3)} ms CPU (probe /do − /noop), p50 ${fmt(dq.p50)} ms`);
  say(`    (c) target ≤ 1.5 ms CPU over bare per launch: launch POST ${fmt(over(ll), 3)} ms, initiation + POST ${fmt(over(lf), 3)} ms;`);
  say(`        less the one DO request each makes: launch POST ${fmt(over(ll) - doCpu, 3)} ms, initiation + POST ${fmt(over(lf) - doCpu, 3)} ms (OAuth callback ${fmt(over(oc) - doCpu, 3)} ms, with two more subrequests than bare)`);
  say(`    workerd idle: ${fmt(p.idle.cpuMsPerS, 2)} ms CPU per second; ${p.pids} workerd process(es) read`);
  say();
}

function reportCounts(c, say) {
  const fill = diff(flat(c.snapshots.afterFirstLogin), flat(c.snapshots.start));
  const fillLaunch = diff(flat(c.snapshots.afterFirstLaunch), flat(c.snapshots.start));
  const launches = diff(flat(c.snapshots.afterLaunches), flat(c.snapshots.warm));
  const logins = diff(flat(c.snapshots.afterLogins), flat(c.snapshots.afterLaunches));
  const scale = COUNT_PER / c.n;
  const scaled = c.n === COUNT_PER ? '' : `; measured over ${c.n.toLocaleString('en')} each and scaled × ${fmt(scale, 2)}`;
  say(`3. Counts on one isolate behind a counting wrapper: the first launch and login on a fresh isolate, then per ${COUNT_PER.toLocaleString('en')} launches and per ${COUNT_PER.toLocaleString('en')} logins on the warm isolate${scaled} (${c.concurrency} at a time; launches ${fmt(c.launchesS, 1)} s, logins ${fmt(c.loginsS, 1)} s)`);
  const per = (x) => Math.round(x * scale);
  const crow = (label, k) => [label, fillLaunch[k], fill[k], per(launches[k]), per(logins[k])];
  say(
    table([
      ['what', '1st launch', '1st launch + 1st login', `per ${COUNT_PER / 1000}k launches`, `per ${COUNT_PER / 1000}k logins`],
      crow('platform key-set (JWKS) fetches', 'platformJwks'),
      crow('IdP key-set (JWKS) fetches', 'idpJwks'),
      crow('OIDC discovery fetches', 'discovery'),
      crow('IdP token requests', 'token'),
      crow('IdP userinfo requests', 'userinfo'),
      crow('hub login subrequests', 'hubLogin'),
      crow('KV JWKS_CACHE reads', 'kvCacheReads'),
      crow('KV JWKS_CACHE writes', 'kvCacheWrites'),
      crow('KV NONCES reads', 'kvNoncesReads'),
      crow('KV NONCES writes', 'kvNoncesWrites'),
      crow('KV lists', 'kvLists'),
      crow('Durable Object requests (ONE_TIME)', 'doRequests'),
    ]),
  );
  say('    fetches counted at the peers; KV operations and Durable Object requests counted by wrappers around the real bindings; key sets and discovery answered max-age=3600 (the worker keeps them at most KEY_SET_MAX_AGE, 600 s)');
}

function report(r) {
  const lines = [];
  const say = (s = '') => lines.push(s);
  const load = (l) => l.map((x) => x.toFixed(2)).join(' ');
  say(`hubgate in workerd: cost figures (${new Date(r.at).toISOString()}; ${os.cpus().length} CPUs; load average ${load(r.loadStart)} at the start, ${load(r.loadEnd ?? os.loadavg())} at the end; miniflare ${r.miniflare})`);
  say(`worker: build/worker/shim.mjs + build/index_bg.wasm (${r.wasmBytes.toLocaleString("en")} bytes, sha256 ${r.wasmSha256.slice(0, 12)}…); OIDC + LTI configuration with ASSERTION_SIGNING_KEY and LTI13_PRIVATE_KEY; KV JWKS_CACHE, NONCES; OneTime Durable Object`);
  say();
  if (r.cold.process) reportColdProcess(r.cold.process, say);
  if (r.cold.isolate) reportColdIsolate(r.cold.isolate, say);
  if (r.cold.node) reportNode(r.cold.node, say);
  if (r.perRequest) reportPerRequest(r.perRequest, say);
  if (r.counts) reportCounts(r.counts, say);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// Main

async function main() {
  const build = await snapshotBuild({ log });
  onStop(() => build.remove());
  // Miniflare's own SIGINT/SIGTERM hook stops workerd and exits at once: the copy goes on exit too
  process.on('exit', () => build.remove());
  const miniflareVersion = JSON.parse(fs.readFileSync(path.join(here, '..', '..', 'node_modules', 'miniflare', 'package.json'), 'utf8')).version;
  const hub = await startHub();
  onStop(() => hub.close());
  const idp = await startIdp();
  onStop(() => idp.close());
  const platform = await startPlatform();
  onStop(() => platform.close());
  const { bindings, badBindings, noToolKey, secret } = await makeBindings({ hub, idp, platform });
  const result = { at: started, loadStart: os.loadavg(), miniflare: miniflareVersion, wasmBytes: fs.statSync(build.wasm).size, wasmSha256: crypto.createHash('sha256').update(fs.readFileSync(build.wasm)).digest('hex'), config: CFG, cold: {} };

  if (runs('1c')) {
    log('1C: WebAssembly.compile in Node');
    result.cold.node = await nodeCompile(build);
  }
  if (runs('1a')) {
    log('1A: a new workerd process per round');
    result.cold.process = await coldProcess({ build, hub, bindings, secret });
  }
  if (runs('1b')) {
    log('1B: a fresh isolate per round (Worker Loader)');
    result.cold.isolate = await coldIsolate({ build, hub, bindings, badBindings, noToolKey, secret });
  }
  if (runs('2')) {
    log('2: per-request cost');
    result.perRequest = await perRequest({ build, hub, idp, platform, bindings });
  }
  if (runs('3')) {
    log('3: counts');
    result.counts = await counts({ build, hub, idp, platform, bindings });
  }
  // cumulative counts at each point (the peers serve every phase: only differences within part 3 are figures)
  if (result.counts) result.counts.cumulative = {
    start: flat(result.counts.snapshots.start),
    afterFirstLaunch: flat(result.counts.snapshots.afterFirstLaunch),
    afterFirstLogin: flat(result.counts.snapshots.afterFirstLogin),
    warm: flat(result.counts.snapshots.warm),
    afterLaunches: flat(result.counts.snapshots.afterLaunches),
    afterLogins: flat(result.counts.snapshots.afterLogins),
  };
  result.seconds = (Date.now() - started) / 1000;
  result.loadEnd = os.loadavg();
  await stopAll();

  const text = report(result);
  console.log(text);
  console.log(`\n(run took ${fmt(result.seconds, 0)} s)`);
  fs.mkdirSync(CFG.resultsDir, { recursive: true });
  const file = path.join(CFG.resultsDir, `workerd-cost-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify({ ...result, table: text }, null, 2)}\n`);
  console.log(`figures written to ${path.relative(process.cwd(), file)}`);
}

main().then(
  () => process.exit(0),
  (err) => bail(2, `workerd-cost: ${err.stack ?? err}${workerdTail()}`),
);
