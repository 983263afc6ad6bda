// Proof under stress: named fault cases through the built worker in workerd
// (Miniflare). Every upstream the worker depends on misbehaves in turn — the
// identity provider's discovery, token, userinfo and JWKS endpoints, an LTI
// platform's key set, KV, the one-time Durable Object, the hub — and each
// case asserts
//   - the exact status,
//   - the generic page (HTML) or JSON, chosen by `Accept`, with a correlation id,
//   - exactly one JSON log line carrying that correlation id, with the detail,
//   - that the same worker keeps serving everyone else while the fault is in
//     progress (/_hubgate/health and a proxied request with a valid session),
//   - and that nothing waits past its bound.
// The fault-injecting peers are in support/faulty-upstream.mjs. Run:
//   node --test --test-concurrency=1 tests/e2e/faults.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { startWorker, cookieJar, openWebSocket, nextMessage } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import {
  randomSecret,
  mintSession,
  send,
  httpFetch,
  loginUntilCallback,
  waitForLog,
  logMark,
  correlationId,
  setCookieFor,
  isDeletion,
  flowCookies,
  SESSION_COOKIE,
  NAV_HEADERS,
  API_HEADERS,
} from './support/oauth-helpers.mjs';
import { DEAD_ORIGIN, FAULTS, startFaultyIdp, startFaultyPlatform, startFaultyHub, startFaultyWorker } from './support/faulty-upstream.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The worker's bounds (src/http.rs, src/oauth/token.rs, src/ports.rs). */
const IDP_TIMEOUT_MS = 5_000;
const TOKEN_TIMEOUT_MS = 10_000;
const KV_TIMEOUT_MS = 2_000;
const ONE_TIME_TIMEOUT_MS = 5_000;
/** HUB_TIMEOUT for the proxied-request cases (seconds). */
const HUB_TIMEOUT_S = 3;
/** How late an answer may come after its bound on this busy machine. */
const LATE_MS = 3_000;
/** Every test ends well within this, or it hung. */
const CASE_TIMEOUT = { timeout: 45_000 };

/** What the client may see of an upstream failure: nothing but the status and the id. */
const LEAKS = /127\.0\.0\.1|timed out|network|larger than|EOF|one-time|injected|Error/;

/**
 * The worker's generic 502 answer: the page for a browser, JSON for an API
 * client (by `Accept`). Returns its correlation id.
 */
function upstreamError(r, as) {
  assert.equal(r.status, 502, `${as}: ${r.status} ${r.text.slice(0, 300)}`);
  const type = r.headers.get('content-type') ?? '';
  if (as === 'json') {
    assert.match(type, /^application\/json/, type);
    const body = JSON.parse(r.text);
    assert.deepEqual(body, { status: 502, error: 'Upstream service unavailable', correlation_id: body.correlation_id });
    assert.match(body.correlation_id, /^[A-Za-z0-9_-]{12}$/);
    return body.correlation_id;
  }
  assert.match(type, /^text\/html/, type);
  assert.match(r.text, /<h1>Upstream service unavailable<\/h1>/);
  assert.match(r.text, /\(status 502\)/);
  assert.doesNotMatch(r.text.replace(/<style>[^<]*<\/style>/, ''), LEAKS, 'the page stays generic');
  const id = correlationId(r.text);
  assert.match(id ?? '', /^[A-Za-z0-9_-]{12}$/, 'the page shows a correlation id');
  return id;
}

/** Exactly one JSON log line carries `id`; returns it. */
async function oneLogLine(worker, id, from = 0) {
  const line = await waitForLog(worker, (l) => l.correlation_id === id, { from, timeoutMs: 4000 });
  assert.ok(line, `no log line carries ${id}:\n${worker.logs.slice(-10).join('\n')}`);
  await sleep(150);
  const all = worker.jsonLogs().filter((l) => l.correlation_id === id);
  assert.equal(all.length, 1, `log lines for ${id}: ${JSON.stringify(all)}`);
  assert.equal(line.event, 'error');
  return line;
}

/**
 * The same worker still serves everyone else: health, and a proxied request
 * with a valid session (each within 3 s). `session` null: the hub is the
 * fault, so only health is asked for.
 */
async function othersServed(worker, session, { proxiedPath = '/hub/api/user' } = {}) {
  const t0 = Date.now();
  const asks = [send(worker, '/_hubgate/health', null, { headers: API_HEADERS })];
  if (session) asks.push(send(worker, proxiedPath, null, { headers: { ...API_HEADERS, cookie: `${SESSION_COOKIE}=${session}` } }));
  const [health, proxied] = await Promise.all(asks);
  const ms = Date.now() - t0;
  assert.equal(health.status, 200, health.text);
  assert.deepEqual(health.json(), { status: 'ok' });
  if (proxied) {
    assert.equal(proxied.status, 200, proxied.text.slice(0, 300));
    assert.equal(proxied.json().path, proxiedPath);
  }
  assert.ok(ms < 3000, `others waited ${ms} ms`);
}

/** `ms` is the time an answer took that had to wait for its `bound`. */
function within(ms, bound, label) {
  assert.ok(ms >= bound - 500, `${label}: answered after ${ms} ms, before its ${bound} ms bound`);
  assert.ok(ms < bound + LATE_MS, `${label}: answered after ${ms} ms, bound ${bound} ms`);
}

/** Close everything started, even when a case failed half-way. */
function resources() {
  const open = new Set();
  return {
    add(r) {
      open.add(r);
      return r;
    },
    async close(r) {
      open.delete(r);
      await r?.close().catch(() => {});
    },
    async closeAll() {
      await Promise.allSettled([...open].map((r) => r.close()));
      open.clear();
    },
  };
}

// What the log line says, per fault (the detail stays in the log).
const DETAIL = {
  down: /network error/,
  slow: /timed out after \d+ ms/,
  500: /status 500/,
  html: /expected value at line 1 column 1|not JSON|not a JWKS/,
  huge: /larger than \d+ bytes/,
  truncated: /EOF while parsing/,
};
const HUGE_BYTES = 64 << 20;
/** The fault as a test name says it (`boundMs`: the timeout a slow answer runs into). */
const what = (fault, boundMs) =>
  ({
    down: 'down (connection refused)',
    slow: `slow past its ${boundMs / 1000} s timeout`,
    500: 'answering 500',
    html: 'answering HTML',
    huge: `answering huge JSON (${HUGE_BYTES >> 20} MiB, chunked)`,
    truncated: 'answering truncated JSON',
  })[fault];
/** A reader that stops at its cap leaves most of a 64 MiB body unsent. */
const READ_AT_MOST = 16 << 20;

async function writtenBy(peer, p) {
  const deadline = Date.now() + 8000;
  while (peer.written[p] === undefined && Date.now() < deadline) await sleep(50);
  return peer.written[p];
}

// ---------------------------------------------------------------------------

describe('identity provider faults: discovery, token, userinfo, JWKS × down, slow, 500, HTML, huge, truncated → 502', { concurrency: 8 }, () => {
  const res = resources();
  let hub;
  const secret = randomSecret();
  before(async () => {
    hub = res.add(await startHubEcho());
  });
  after(() => res.closeAll());

  const ENDPOINTS = {
    discovery: { path: '/.well-known/openid-configuration', bound: IDP_TIMEOUT_MS, at: '/hub/oauth_login' },
    token: { path: '/token', bound: TOKEN_TIMEOUT_MS, at: '/hub/oauth_callback' },
    userinfo: { path: '/userinfo', bound: IDP_TIMEOUT_MS, at: '/hub/oauth_callback' },
    jwks: { path: '/jwks', bound: IDP_TIMEOUT_MS, at: '/hub/oauth_callback' },
  };

  async function idpCase(endpoint, fault) {
    const e = ENDPOINTS[endpoint];
    const idp = res.add(await startFaultyIdp({ faults: { [endpoint]: fault }, slowMs: e.bound + 4000, holdMs: 10_000, hugeBytes: HUGE_BYTES }));
    const worker = res.add(await startWorker({ bindings: { HUB_ORIGIN: hub.url, SESSION_SECRET: secret, ...idp.bindings() } }));
    try {
      const session = mintSession({ secret, origin: worker.url, sub: 'bob' });
      const mark = logMark(worker);
      const tokensBefore = idp.hits['/token'] ?? 0;
      const attempt = async (headers) => {
        const jar = cookieJar();
        let target = `${e.at}?next=%2Fhub%2F`;
        if (endpoint !== 'discovery') {
          const { callbackUrl } = await loginUntilCallback(worker, jar, '/hub/');
          target = `${callbackUrl.pathname}${callbackUrl.search}`;
        }
        const t0 = Date.now();
        const r = await send(worker, target, jar, { headers });
        return { r, jar, ms: Date.now() - t0 };
      };
      const pending = Promise.all([attempt(NAV_HEADERS), attempt(API_HEADERS)]);
      pending.catch(() => {});
      if (fault !== 'down') await idp.arrived(e.path, 2);
      await othersServed(worker, session);
      idp.release(e.path);
      const [[html, json]] = await Promise.all([pending, othersServed(worker, session)]);

      for (const [out, as] of [
        [html, 'html'],
        [json, 'json'],
      ]) {
        const id = upstreamError(out.r, as);
        const line = await oneLogLine(worker, id, mark);
        assert.equal(line.status, '502');
        assert.equal(line.kind, 'oauth');
        assert.equal(line.path, e.at);
        assert.match(line.detail, DETAIL[fault], line.detail);
        if (fault === 'slow') {
          within(out.ms, e.bound, `${endpoint} ${as}`);
          assert.match(line.detail, new RegExp(`timed out after ${e.bound} ms`));
        }
        assert.equal(out.jar.get(SESSION_COOKIE), undefined, 'no session');
        assert.deepEqual(setCookieFor(out.r.setCookies, SESSION_COOKIE), []);
        // the failed flow's cookie is cleared (no flow was started when discovery failed)
        assert.deepEqual(flowCookies(out.jar), []);
      }
      if (endpoint === 'discovery') assert.equal(idp.hits['/authorize'] ?? 0, 0, 'nobody was sent to the IdP');
      if (endpoint === 'token' || endpoint === 'discovery') assert.equal(idp.hits['/userinfo'] ?? 0, 0);
      if (endpoint === 'jwks' || endpoint === 'userinfo') assert.equal((idp.hits['/token'] ?? 0) - tokensBefore, 2, 'one code redeemed per flow');
      if (fault === 'huge') {
        const sent = await writtenBy(idp, e.path);
        assert.ok(sent < READ_AT_MOST, `the worker read on past its cap: the IdP got to send ${sent} of ${HUGE_BYTES} bytes`);
      }
      // the worker is healthy afterwards too
      await othersServed(worker, session);
    } finally {
      await res.close(worker);
      await res.close(idp);
    }
  }

  for (const endpoint of Object.keys(ENDPOINTS)) {
    for (const fault of FAULTS) {
      const where = endpoint === 'discovery' ? 'at /hub/oauth_login' : 'at the callback';
      test(`IdP ${endpoint} ${what(fault, ENDPOINTS[endpoint].bound)} → 502 ${where}, page and JSON, one log line each, others served`, CASE_TIMEOUT, () => idpCase(endpoint, fault));
    }
  }
});

// ---------------------------------------------------------------------------

describe('LTI platform JWKS faults, with and without a cached key set', { concurrency: true }, () => {
  const res = resources();
  let hub;
  let platform;
  let worker;
  const secret = randomSecret();
  const name = (fault, cached) => `${cached ? 'cached' : 'cold'}-${fault}`;
  before(async () => {
    hub = res.add(await startHubEcho());
    const platforms = [{ name: 'healthy' }];
    for (const fault of FAULTS) for (const cached of [false, true]) platforms.push({ name: name(fault, cached), fault });
    platform = res.add(await startFaultyPlatform({ platforms, slowMs: IDP_TIMEOUT_MS + 4000, holdMs: 10_000, hugeBytes: HUGE_BYTES }));
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    worker = res.add(
      await startWorker({
        bindings: {
          HUB_ORIGIN: hub.url,
          SESSION_SECRET: secret,
          LTI13_PLATFORMS: JSON.stringify(platforms.map((p) => platform.registration(p.name))),
          LTI13_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }),
        },
      }),
    );
    // A key set cached by an earlier isolate, past its freshness (fetched
    // 400 s ago, fresh for 300 s) but within the 24 h it may serve stale.
    const kv = await worker.kv('JWKS_CACHE');
    for (const fault of FAULTS) {
      const { key, value } = platform.cacheEntry(name(fault, true));
      await kv.put(key, value);
    }
  });
  after(() => res.closeAll());

  const session = () => mintSession({ secret, origin: worker.url, sub: 'bob' });
  /** A launch from the healthy platform, meanwhile: 302 to the hub. */
  async function healthyLaunch() {
    const r = await platform.launch(worker, 'healthy', { user: `h${crypto.randomBytes(3).toString('hex')}` });
    assert.equal(r.status, 302, r.text.slice(0, 300));
  }

  for (const fault of FAULTS) {
    test(`LTI platform JWKS ${what(fault, IDP_TIMEOUT_MS)} without a cached set → 502 at the launch, page and JSON, one log line each, others served`, CASE_TIMEOUT, async () => {
      const p = name(fault, false);
      const jwksPath = `/p/${p}/jwks`;
      const mark = logMark(worker);
      const launch = (accept) => platform.launch(worker, p, { accept });
      const pending = Promise.all([launch('text/html,application/xhtml+xml'), launch('application/json')]);
      pending.catch(() => {});
      if (fault !== 'down') await platform.arrived(jwksPath, 2);
      await Promise.all([othersServed(worker, session()), healthyLaunch()]);
      platform.release(jwksPath);
      const [[html, json]] = await Promise.all([pending, othersServed(worker, session())]);
      for (const [r, as] of [
        [html, 'html'],
        [json, 'json'],
      ]) {
        const id = upstreamError(r, as);
        const line = await oneLogLine(worker, id, mark);
        assert.equal(line.kind, 'lti');
        assert.equal(line.status, '502');
        assert.equal(line.path, '/hub/lti13/oauth_callback');
        assert.match(line.detail, /platform key set/);
        assert.match(line.detail, DETAIL[fault], line.detail);
        if (fault === 'slow') within(r.ms, IDP_TIMEOUT_MS, `launch ${as}`);
        const cleared = r.headers.getSetCookie().filter((c) => c.startsWith('hubgate-lti-'));
        assert.ok(cleared.length === 1 && isDeletion(cleared[0]), `the flow cookie is cleared: ${cleared}`);
        assert.ok(!r.headers.getSetCookie().some((c) => c.startsWith(`${SESSION_COOKIE}=`) && !isDeletion(c)), 'no session');
      }
      if (fault === 'huge') {
        const sent = await writtenBy(platform, jwksPath);
        assert.ok(sent < READ_AT_MOST, `the worker read on past its cap: ${sent} of ${HUGE_BYTES} bytes sent`);
      }
    });

    test(`LTI platform JWKS ${what(fault, IDP_TIMEOUT_MS)} with a cached set past its freshness → the launch succeeds on the stale set (302), logged once as jwks_stale_used`, CASE_TIMEOUT, async () => {
      const p = name(fault, true);
      const jwksPath = `/p/${p}/jwks`;
      const mark = logMark(worker);
      const from = hub.requests.length;
      const pending = platform.launch(worker, p, { user: 'stale1' });
      pending.catch(() => {});
      if (fault !== 'down') await platform.arrived(jwksPath, 1);
      await Promise.all([othersServed(worker, session()), healthyLaunch()]);
      platform.release(jwksPath);
      const r = await pending;
      assert.equal(r.status, 302, r.text.slice(0, 300));
      assert.equal(r.location, '/hub/');
      assert.ok(r.headers.getSetCookie().some((c) => c.startsWith(`${SESSION_COOKIE}=`) && !isDeletion(c)), 'a session');
      if (fault === 'slow') within(r.ms, IDP_TIMEOUT_MS, 'launch on the stale set');
      const login = hub.requests.slice(from).find((q) => q.path === '/hub/login' && q.headers['x-forwarded-user'] === `${p}:stale1@example.edu`);
      assert.ok(login, 'the worker logged the launch user in at the hub');
      const url = platform.jwksUrl(p);
      const line = await waitForLog(worker, (l) => l.event === 'jwks_stale_used' && l.url === url, { from: mark, timeoutMs: 4000 });
      assert.ok(line, 'the stale use is logged');
      assert.equal(line.reason, 'expired');
      assert.match(line.error, DETAIL[fault], line.error);
      await sleep(150);
      assert.equal(worker.jsonLogs().slice(mark).filter((l) => l.event === 'jwks_stale_used' && l.url === url).length, 1, 'one line for the one refetch');
      assert.deepEqual(worker.jsonLogs().slice(mark).filter((l) => l.event === 'error' && (l.detail ?? '').includes(url)), [], 'no failure logged for this key set');
    });
  }
});

// ---------------------------------------------------------------------------

describe('KV and the one-time Durable Object failing or stalling', { concurrency: true }, () => {
  const res = resources();
  let hub;
  const secret = randomSecret();
  before(async () => {
    hub = res.add(await startHubEcho());
  });
  after(() => res.closeAll());

  /** A faulty worker in front of a healthy IdP and the echo hub. */
  async function stack(opts, extraBindings = {}) {
    const idp = res.add(await startFaultyIdp({}));
    const worker = res.add(await startFaultyWorker({ bindings: { HUB_ORIGIN: hub.url, SESSION_SECRET: secret, ...idp.bindings(), ...extraBindings }, ...opts }));
    return { idp, worker, session: mintSession({ secret, origin: worker.url, sub: 'bob' }) };
  }

  /** Login start and callback for one browser; the callback with `headers`. */
  async function login(worker, headers = NAV_HEADERS) {
    const jar = cookieJar();
    const t0 = Date.now();
    const { callbackUrl } = await loginUntilCallback(worker, jar, '/hub/');
    const t1 = Date.now();
    const r = await send(worker, `${callbackUrl.pathname}${callbackUrl.search}`, jar, { headers });
    return { r, jar, startMs: t1 - t0, callbackMs: Date.now() - t1 };
  }

  for (const mode of ['throw', 'stall']) {
    test(`KV JWKS_CACHE ${mode === 'throw' ? 'throwing on every call' : 'stalling on every call'}: the OAuth login still completes (302), each failed call logged as kv_error`, CASE_TIMEOUT, async () => {
      const { worker, idp } = await stack({ faultyKv: { JWKS_CACHE: mode }, kv: ['NONCES'] });
      try {
        const mark = logMark(worker);
        const session = mintSession({ secret, origin: worker.url, sub: 'bob' });
        const pending = login(worker);
        pending.catch(() => {});
        await othersServed(worker, session);
        const { r, startMs, callbackMs } = await pending;
        assert.equal(r.status, 302, r.text.slice(0, 300));
        assert.equal(r.location, '/hub/');
        // one get and one put per document (discovery at the start, key set at the callback)
        if (mode === 'stall') {
          assert.ok(startMs < 2 * KV_TIMEOUT_MS + LATE_MS, `login start took ${startMs} ms`);
          assert.ok(callbackMs < 2 * KV_TIMEOUT_MS + LATE_MS, `callback took ${callbackMs} ms`);
        }
        await sleep(150);
        const errors = worker.jsonLogs().slice(mark).filter((l) => l.event === 'kv_error');
        assert.deepEqual(errors.map((l) => l.op).sort(), ['get', 'get', 'put', 'put'], JSON.stringify(errors));
        for (const l of errors) assert.match(l.detail, mode === 'throw' ? /injected KV failure/ : new RegExp(`timed out after ${KV_TIMEOUT_MS} ms`));
        assert.equal(idp.hits['/jwks'], 1);
      } finally {
        await res.close(worker);
      }
    });
  }

  test(`KV and the ONE_TIME Durable Object slow but within their bounds (1 s a call): the login completes (302), nothing logged as a failure`, CASE_TIMEOUT, async () => {
    const { worker, idp, session } = await stack({ faultyKv: { JWKS_CACHE: 'slow', NONCES: 'slow' }, oneTime: 'StallingOneTime', stallMs: 1000 });
    try {
      const mark = logMark(worker);
      const pending = login(worker);
      pending.catch(() => {});
      await sleep(300);
      await othersServed(worker, session);
      const { r, callbackMs } = await pending;
      assert.equal(r.status, 302, r.text.slice(0, 300));
      assert.equal(r.location, '/hub/');
      // the key set's KV read and write and the one-time store: 1 s each
      assert.ok(callbackMs >= 2500, `callback after ${callbackMs} ms: the stores were slow`);
      assert.equal(idp.hits['/token'], 1);
      await sleep(150);
      assert.deepEqual(worker.jsonLogs().slice(mark).filter((l) => l.event === 'kv_error' || l.event === 'error'), []);
    } finally {
      await res.close(worker);
    }
  });

  const ONE_TIME_CASES = [
    ['the ONE_TIME Durable Object throwing', { oneTime: 'ThrowingOneTime', kv: ['JWKS_CACHE', 'NONCES'] }, {}, /injected one-time store failure/],
    ['the ONE_TIME Durable Object answering neither first nor replay', { oneTime: 'ConfusedOneTime', kv: ['JWKS_CACHE', 'NONCES'] }, {}, /unexpected answer "maybe"/],
    ['the ONE_TIME Durable Object stalling', { oneTime: 'StallingOneTime', kv: ['JWKS_CACHE', 'NONCES'] }, {}, new RegExp(`timed out after ${ONE_TIME_TIMEOUT_MS} ms`)],
    ['KV NONCES as the one-time store (ONE_TIME_STORE=kv) throwing', { faultyKv: { NONCES: 'throw' }, kv: ['JWKS_CACHE'] }, { ONE_TIME_STORE: 'kv' }, /injected KV failure/],
    ['KV NONCES as the one-time store (ONE_TIME_STORE=kv) stalling', { faultyKv: { NONCES: 'stall' }, kv: ['JWKS_CACHE'] }, { ONE_TIME_STORE: 'kv' }, new RegExp(`timed out after ${ONE_TIME_TIMEOUT_MS} ms`)],
  ];
  for (const [store, opts, extra, detail] of ONE_TIME_CASES) {
    test(`${store} → 502 at the callback before the code is redeemed, page and JSON, one log line each, others served`, CASE_TIMEOUT, async () => {
      const { worker, idp, session } = await stack(opts, extra);
      try {
        const mark = logMark(worker);
        const pending = Promise.all([login(worker, NAV_HEADERS), login(worker, API_HEADERS)]);
        pending.catch(() => {});
        await sleep(300);
        await othersServed(worker, session);
        const [html, json] = await pending;
        for (const [out, as] of [
          [html, 'html'],
          [json, 'json'],
        ]) {
          const id = upstreamError(out.r, as);
          const line = await oneLogLine(worker, id, mark);
          assert.equal(line.kind, 'oauth');
          assert.equal(line.path, '/hub/oauth_callback');
          assert.match(line.detail, /one-time store/);
          assert.match(line.detail, detail, line.detail);
          if (/stalling/.test(store)) within(out.callbackMs, ONE_TIME_TIMEOUT_MS, `callback ${as}`);
          assert.equal(out.jar.get(SESSION_COOKIE), undefined);
          assert.deepEqual(flowCookies(out.jar), []);
        }
        assert.equal(idp.hits['/token'] ?? 0, 0, 'no code was redeemed');
        await othersServed(worker, session);
      } finally {
        await res.close(worker);
      }
    });
  }
});

// ---------------------------------------------------------------------------

describe('hub faults on proxied requests', { concurrency: true }, () => {
  const res = resources();
  let hub;
  let worker;
  let deadHubWorker;
  const secret = randomSecret();
  const bindings = (hubOrigin) => ({
    HUB_ORIGIN: hubOrigin,
    SESSION_SECRET: secret,
    HUB_TIMEOUT: String(HUB_TIMEOUT_S),
    OAUTH_CLIENT_ID: 'c',
    OAUTH_CLIENT_SECRET: 's',
    OAUTH2_AUTHORIZE_URL: `${DEAD_ORIGIN}/authorize`,
    OAUTH2_TOKEN_URL: `${DEAD_ORIGIN}/token`,
    OAUTH2_USERDATA_URL: `${DEAD_ORIGIN}/userinfo`,
    ALLOW_ALL: 'true',
  });
  before(async () => {
    hub = res.add(await startFaultyHub({ slowMs: HUB_TIMEOUT_S * 1000 + 6000 }));
    [worker, deadHubWorker] = await Promise.all([startWorker({ bindings: bindings(hub.url) }), startWorker({ bindings: bindings(DEAD_ORIGIN) })]);
    res.add(worker);
    res.add(deadHubWorker);
  });
  after(() => res.closeAll());

  const cookieFor = (w) => `${SESSION_COOKIE}=${mintSession({ secret, origin: w.url, sub: 'alice' })}`;
  const proxied = (w, p, headers, init = {}) => send(w, p, null, { ...init, headers: { ...headers, cookie: cookieFor(w) } });

  async function hubFailure(w, outs, detail, path) {
    for (const [r, as] of outs) {
      const id = upstreamError(r, as);
      const line = await oneLogLine(w, id);
      assert.equal(line.kind, 'hub_unreachable');
      assert.equal(line.status, '502');
      assert.equal(line.path, path);
      assert.match(line.detail, detail, line.detail);
    }
  }

  test('hub down (connection refused) → 502 page and JSON for a proxied request, one log line each, health still 200', CASE_TIMEOUT, async () => {
    const t0 = Date.now();
    const [html, json] = await Promise.all([proxied(deadHubWorker, '/user/alice/lab', NAV_HEADERS), proxied(deadHubWorker, '/user/alice/api/kernels', API_HEADERS), othersServed(deadHubWorker, null)]);
    assert.ok(Date.now() - t0 < 3000, 'answered at once');
    await hubFailure(deadHubWorker, [[html, 'html']], /network error|Network connection lost/i, '/user/alice/lab');
    await hubFailure(deadHubWorker, [[json, 'json']], /network error|Network connection lost/i, '/user/alice/api/kernels');
  });

  test(`hub slow past HUB_TIMEOUT (${HUB_TIMEOUT_S} s) → 502 page and JSON after the bound, one log line each; a fast proxied request meanwhile gets 200`, CASE_TIMEOUT, async () => {
    const timed = async (p, headers) => {
      const t0 = Date.now();
      const r = await proxied(worker, p, headers);
      return { r, ms: Date.now() - t0 };
    };
    const pending = Promise.all([timed('/slow/page', NAV_HEADERS), timed('/slow/api', API_HEADERS)]);
    pending.catch(() => {});
    await Promise.all([hub.arrived('/slow/page'), hub.arrived('/slow/api')]);
    await othersServed(worker, mintSession({ secret, origin: worker.url, sub: 'bob' }), { proxiedPath: '/fast' });
    const [html, json] = await pending;
    hub.release('/slow/page');
    hub.release('/slow/api');
    within(html.ms, HUB_TIMEOUT_S * 1000, 'slow page');
    within(json.ms, HUB_TIMEOUT_S * 1000, 'slow api');
    await hubFailure(worker, [[html.r, 'html']], new RegExp(`timed out after ${HUB_TIMEOUT_S * 1000} ms`), '/slow/page');
    await hubFailure(worker, [[json.r, 'json']], new RegExp(`timed out after ${HUB_TIMEOUT_S * 1000} ms`), '/slow/api');
  });

  test(`hub never answering a WebSocket upgrade → 502 after HUB_TIMEOUT (${HUB_TIMEOUT_S} s), one log line; a WebSocket to the hub meanwhile works`, CASE_TIMEOUT, async () => {
    const headers = { cookie: cookieFor(worker), accept: 'application/json' };
    const t0 = Date.now();
    const refused = openWebSocket(`${worker.url}/ws/silent`, null, { headers, timeoutMs: 15_000 }).then(
      (ws) => {
        ws.terminate();
        return null;
      },
      (err) => err,
    );
    await hub.arrived('/ws/silent');
    const steady = await openWebSocket(`${worker.url}/ws/echo`, null, { headers: { cookie: cookieFor(worker) } });
    try {
      steady.send('meanwhile');
      assert.equal(await nextMessage(steady), 'echo: meanwhile');
    } finally {
      steady.terminate();
    }
    const err = await refused;
    hub.release('/ws/silent');
    assert.equal(err?.status, 502, `the upgrade: ${err?.message ?? 'opened'}`);
    within(Date.now() - t0, HUB_TIMEOUT_S * 1000, 'refused upgrade');
    const line = await waitForLog(worker, (l) => l.event === 'error' && l.path === '/ws/silent', { timeoutMs: 4000 });
    assert.ok(line, 'logged');
    assert.equal(line.kind, 'hub_unreachable');
    assert.match(line.detail, new RegExp(`timed out after ${HUB_TIMEOUT_S * 1000} ms`));
    await oneLogLine(worker, line.correlation_id);
  });

  test('hub resets the connection mid-response (Content-Length 64 KiB, 1 KiB sent): the 200 passes, the client sees the body cut short at once, the worker keeps serving', CASE_TIMEOUT, async () => {
    const t0 = Date.now();
    const res1 = await httpFetch(`${worker.url}/reset-response`, { headers: { ...API_HEADERS, cookie: cookieFor(worker) } });
    assert.equal(res1.status, 200);
    assert.equal(res1.headers.get('content-length'), '65536');
    let got = 0;
    let failed = null;
    try {
      got = (await res1.arrayBuffer()).byteLength;
    } catch (err) {
      failed = err;
    }
    assert.ok(failed || got < 65536, `the cut is visible to the client (got ${got} bytes, no error)`);
    assert.ok(Date.now() - t0 < 3000, `the cut ended the response at once (${Date.now() - t0} ms)`);
    await othersServed(worker, mintSession({ secret, origin: worker.url, sub: 'bob' }), { proxiedPath: '/fast' });
  });

  test('hub resets the connection mid-response (chunked, 1 KiB sent): the 200 passes, the response ends at once with what the hub sent, the worker keeps serving', CASE_TIMEOUT, async () => {
    // workerd (in Miniflare) ends a chunked response whose upstream body
    // broke with a regular last chunk, so the client cannot tell the cut
    // from the length; this case shows only that nothing hangs and nothing
    // is made up.
    const t0 = Date.now();
    const r = await httpFetch(`${worker.url}/reset-response?chunked`, { headers: { ...API_HEADERS, cookie: cookieFor(worker) } });
    assert.equal(r.status, 200);
    let got = 0;
    try {
      got = (await r.arrayBuffer()).byteLength;
    } catch {
      got = -1;
    }
    assert.ok(got <= 1024, `got ${got} bytes of the 1 KiB the hub sent`);
    assert.ok(Date.now() - t0 < 3000, `ended after ${Date.now() - t0} ms`);
    await othersServed(worker, mintSession({ secret, origin: worker.url, sub: 'bob' }), { proxiedPath: '/fast' });
  });

  test('hub resets the connection mid-upload (4 MiB body, reset after 64 KiB) → 502 page and JSON, one log line each, others served', CASE_TIMEOUT, async () => {
    const body = crypto.randomBytes(4 << 20);
    const upload = (headers) => proxied(worker, '/reset-upload', { ...headers, 'content-type': 'application/octet-stream' }, { method: 'POST', body });
    const t0 = Date.now();
    const [html, json] = await Promise.all([upload(NAV_HEADERS), upload(API_HEADERS), othersServed(worker, mintSession({ secret, origin: worker.url, sub: 'bob' }), { proxiedPath: '/fast' })]);
    assert.ok(Date.now() - t0 < 5000, `answered after ${Date.now() - t0} ms`);
    await hubFailure(worker, [[html, 'html'], [json, 'json']], /network connection lost|disconnected|reset|broken pipe/i, '/reset-upload');
  });

  test("hub answering its own 502 → passed through unchanged (status, body, headers), no worker error page, no worker error line", CASE_TIMEOUT, async () => {
    const mark = logMark(worker);
    for (const headers of [NAV_HEADERS, API_HEADERS]) {
      const r = await proxied(worker, '/bad-gateway', headers);
      assert.equal(r.status, 502);
      assert.equal(r.headers.get('x-hub-own'), '502');
      assert.match(r.headers.get('content-type'), /^text\/html/);
      assert.equal(r.text, '<html><body><h1>502: the hub could not reach the server</h1></body></html>');
      assert.equal(correlationId(r.text), undefined);
    }
    await sleep(200);
    assert.deepEqual(worker.jsonLogs().slice(mark).filter((l) => l.event === 'error' && l.path === '/bad-gateway'), []);
  });

  test('hub drops a WebSocket without a close frame: the client sees it closed (1006) at once; another WebSocket and a proxied request in the same worker work', CASE_TIMEOUT, async () => {
    const headers = { cookie: cookieFor(worker) };
    const [abrupt, steady] = await Promise.all([openWebSocket(`${worker.url}/ws/abrupt`, null, { headers }), openWebSocket(`${worker.url}/ws/echo`, null, { headers })]);
    try {
      const closed = new Promise((resolve) => {
        abrupt.once('close', (code) => resolve(code));
        abrupt.on('error', () => {});
      });
      const t0 = Date.now();
      abrupt.send('hello');
      assert.equal(await nextMessage(abrupt), 'echo: hello');
      const code = await Promise.race([closed, sleep(5000).then(() => 'still open after 5 s')]);
      assert.equal(code, 1006, 'closed without a close frame');
      assert.ok(Date.now() - t0 < 3000, `closed after ${Date.now() - t0} ms`);
      steady.send('still here');
      assert.equal(await nextMessage(steady), 'echo: still here');
      await othersServed(worker, mintSession({ secret, origin: worker.url, sub: 'bob' }), { proxiedPath: '/fast' });
    } finally {
      abrupt.terminate();
      steady.terminate();
    }
  });
});
