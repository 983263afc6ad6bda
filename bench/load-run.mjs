// The load run behind `npm run load` (started by bench/load.mjs, which owns
// the process groups). Everything on 127.0.0.1, in bounded loops:
//
// - the built worker ("hubgate") and a bare pass-through worker ("bare") in
//   one workerd process (Miniflare), each on a socket of its own, both in
//   front of one origin process (bench/load-origin.mjs);
// - per round, each kind with its operations running concurrently:
//     oauth     full logins: worker → oidc-provider → username form → worker
//               callback → the worker's hub login → the hub page as the user
//     lti       launches from the LTI platform (lti1p3platform) → worker →
//               hub page as the LTI user
//     get       proxied GETs (with a session from a real login on hubgate)
//     upload    streamed PUT (Content-Length) and POST (chunked) bodies; the
//               origin hashes what it received, the client what it sent
//     download  streamed bodies; the origin hashes what it sent, the client
//               what it received
//     ws        sockets open at once, each echoing messages of varied size
//               (text and binary), every echo compared
//   get/upload/download/ws run against hubgate and bare, the order of the two
//   alternating from round to round;
// - the RSS of the workerd process tree (from /proc) after each round.
//
// Failures (must be 0) are failed, lost or corrupted requests and messages.
// The table goes to stdout, the figures as JSON to
// bench/results/load-<timestamp>.json. Exit 0 when nothing failed, 1 when
// something did, 2 on a harness error, 3 when the run overran
// LOAD_MAX_MINUTES, 130 when interrupted.
//
// Knobs (environment, defaults in brackets):
//   LOAD_ROUNDS [6]                  rounds
//   LOAD_KINDS [oauth,lti,get,upload,download,ws]   kinds to run
//   LOAD_OAUTH_LOGINS [30]           OAuth logins per round
//   LOAD_LTI_LAUNCHES [30]           LTI launches per round
//   LOAD_LOGIN_CONCURRENCY [4]       concurrent logins / launches
//   LOAD_GETS [2000]                 proxied GETs per round per worker
//   LOAD_GET_CONCURRENCY [16]        concurrent GETs (one session each on hubgate)
//   LOAD_UPLOADS [4]                 uploads per round per worker (PUT, POST, PUT, …)
//   LOAD_DOWNLOADS [4]               downloads per round per worker
//   LOAD_BODY_CONCURRENCY [2]        concurrent uploads / downloads
//   LOAD_BODY_MB [100]               body size in MB (10^6 bytes)
//   LOAD_WS_SOCKETS [200]            WebSockets open at once per round per worker
//   LOAD_WS_MESSAGES [1000]          messages echoed per socket
//   LOAD_WS_MIN_BYTES [4]            smallest message (log-uniform sizes)
//   LOAD_WS_MAX_BYTES [49152]        largest message
//   LOAD_TIMEOUT_S [120]             deadline of one operation (one message: 30 s)
//   LOAD_MAX_MINUTES [30]            the whole run's deadline
//   LOAD_RESULTS_DIR [bench/results]
//   LOAD_VERBOSE=1                   echo workerd's output
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Miniflare, Log, LogLevel } from 'miniflare';
import { REPO_ROOT, DEFAULT_SCRIPT, DEFAULT_DURABLE_OBJECTS, cookieJar, oidcLogin, openWebSocket } from '../tests/e2e/support/worker.mjs';
import { startIdp } from '../tests/e2e/support/idp.mjs';
import { startLtiPlatform, ltiLaunch } from '../tests/e2e/support/lti-platform.mjs';
import { assertionKey, randomSecret, registerWorker, trail } from '../tests/e2e/support/oauth-helpers.mjs';
import { freePort } from '../tests/e2e/support/ports.mjs';
import { prng, quantile, median, sortedSamples, workerdTree, request, readText, writeKeystream, rssBytes } from './load-lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const runStarted = Date.now();

// ---------------------------------------------------------------------------
// Knobs

function int(name, def) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${raw}: not a non-negative number`);
  return Math.floor(n);
}
const ALL_KINDS = ['oauth', 'lti', 'get', 'upload', 'download', 'ws'];
const CFG = {
  rounds: Math.max(1, int('LOAD_ROUNDS', 6)),
  kinds: (process.env.LOAD_KINDS || ALL_KINDS.join(',')).split(',').map((s) => s.trim()).filter(Boolean),
  oauthLogins: int('LOAD_OAUTH_LOGINS', 30),
  ltiLaunches: int('LOAD_LTI_LAUNCHES', 30),
  loginConcurrency: Math.max(1, int('LOAD_LOGIN_CONCURRENCY', 4)),
  gets: int('LOAD_GETS', 2000),
  getConcurrency: Math.max(1, int('LOAD_GET_CONCURRENCY', 16)),
  uploads: int('LOAD_UPLOADS', 4),
  downloads: int('LOAD_DOWNLOADS', 4),
  bodyConcurrency: Math.max(1, int('LOAD_BODY_CONCURRENCY', 2)),
  bodyBytes: int('LOAD_BODY_MB', 100) * 1_000_000,
  wsSockets: int('LOAD_WS_SOCKETS', 200),
  wsMessages: int('LOAD_WS_MESSAGES', 1000),
  wsMinBytes: Math.max(1, int('LOAD_WS_MIN_BYTES', 4)),
  wsMaxBytes: Math.max(1, int('LOAD_WS_MAX_BYTES', 48 * 1024)),
  timeoutMs: Math.max(1, int('LOAD_TIMEOUT_S', 120)) * 1000,
  wsMessageTimeoutMs: 30_000,
  maxMinutes: Math.max(1, int('LOAD_MAX_MINUTES', 30)),
  resultsDir: path.resolve(process.env.LOAD_RESULTS_DIR || path.join(here, 'results')),
  verbose: process.env.LOAD_VERBOSE === '1',
};
for (const k of CFG.kinds) if (!ALL_KINDS.includes(k)) throw new Error(`LOAD_KINDS: unknown kind ${k} (known: ${ALL_KINDS.join(', ')})`);
if (CFG.wsMinBytes > CFG.wsMaxBytes) throw new Error('LOAD_WS_MIN_BYTES > LOAD_WS_MAX_BYTES');
const runs = (k) => CFG.kinds.includes(k);

// ---------------------------------------------------------------------------
// Cleanup: every peer registers how to stop it; Ctrl-C, errors and the end
// of the run all go through stopAll().

const stopCtl = new AbortController();
const cleanups = [];
let stopping = null;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function stopAll() {
  stopping ??= (async () => {
    stopCtl.abort();
    while (cleanups.length) {
      const c = cleanups.pop();
      await Promise.race([Promise.resolve().then(c).catch(() => {}), sleep(5000)]);
    }
  })();
  return stopping;
}
async function bail(code, message) {
  if (message) console.error(message);
  await stopAll();
  process.exit(code);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => void bail(130, `load-run: ${sig}, stopping`));
process.on('uncaughtException', (err) => void bail(2, `load-run: uncaught: ${err.stack ?? err}`));
process.on('unhandledRejection', (err) => void bail(2, `load-run: unhandled rejection: ${err?.stack ?? err}`));
setTimeout(() => void bail(3, `load-run: over LOAD_MAX_MINUTES=${CFG.maxMinutes}, stopping`), CFG.maxMinutes * 60_000).unref();

const log = (msg) => process.stderr.write(`[load ${((Date.now() - runStarted) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);

/** Reject after `ms` (the operation may still be running; its sockets are ours to drop). */
function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

// ---------------------------------------------------------------------------
// Peers

/** The origin process (same process group as this one). */
async function startOrigin() {
  const child = spawn(process.execPath, [path.join(here, 'load-origin.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(2000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const line = await withTimeout(
    new Promise((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`origin exited with ${code}`)));
    }),
    15_000,
    'origin start',
  );
  const { port, pid } = JSON.parse(line);
  return { url: `http://127.0.0.1:${port}`, pid };
}

const LTI_PLATFORM = { name: 'lms', clientId: 'hubgate-load', deploymentId: 'dep-load' };
const USERS = ['alice', 'bob', 'carol'];

async function startWorkers({ origin, idp, platform, hubgatePort, barePort }) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const bindings = {
    HUB_ORIGIN: origin.url,
    OIDC_ISSUER: idp.issuer,
    OAUTH_CLIENT_ID: 'hubgate-demo',
    OAUTH_CLIENT_SECRET: 'hubgate-demo-secret',
    OAUTH2_USERNAME_KEY: 'preferred_username',
    ALLOWED_USERS: USERS.join(','),
    ADMIN_USERS: 'carol',
    SESSION_SECRET: randomSecret(),
    ASSERTION_SIGNING_KEY: await assertionKey('load-es256'),
    LTI13_PLATFORMS: JSON.stringify([{ ...platform.registration(LTI_PLATFORM.name), name: LTI_PLATFORM.name }]),
    LTI13_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  };
  // The baseline: what any worker in front of the hub must do at least.
  const bare = `export default { async fetch(req) {
    const u = new URL(req.url); const o = new URL(${JSON.stringify(origin.url)});
    u.protocol = o.protocol; u.host = o.host;
    return fetch(new Request(u, req), { redirect: 'manual' });
  } };`;
  const logs = { lines: 0, tail: [] };
  const pipe = (stream, name) => {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      logs.lines += 1;
      logs.tail.push(`[${name}] ${line}`);
      if (logs.tail.length > 200) logs.tail.shift();
      if (CFG.verbose) process.stderr.write(`[workerd ${name}] ${line}\n`);
    });
  };
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    cf: false,
    log: new Log(CFG.verbose ? LogLevel.DEBUG : LogLevel.NONE),
    handleRuntimeStdio(stdout, stderr) {
      pipe(stdout, 'out');
      pipe(stderr, 'err');
    },
    workers: [
      {
        name: 'hubgate',
        modules: true,
        scriptPath: DEFAULT_SCRIPT,
        modulesRoot: path.join(REPO_ROOT, 'build'),
        modulesRules: [
          { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
          { type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true },
        ],
        compatibilityDate: '2025-09-01',
        bindings,
        kvNamespaces: ['JWKS_CACHE', 'NONCES'],
        durableObjects: structuredClone(DEFAULT_DURABLE_OBJECTS),
        // each worker straight on a socket of its own (no Miniflare entry worker in front)
        unsafeDirectSockets: [{ host: '127.0.0.1', port: hubgatePort }],
      },
      {
        name: 'bare',
        modules: true,
        script: bare,
        compatibilityDate: '2025-09-01',
        unsafeDirectSockets: [{ host: '127.0.0.1', port: barePort }],
      },
    ],
  });
  cleanups.push(() => mf.dispose());
  await mf.ready;
  return { mf, logs, hubgate: `http://127.0.0.1:${hubgatePort}`, bare: `http://127.0.0.1:${barePort}` };
}

// ---------------------------------------------------------------------------
// Measuring

/** A fresh tally for one kind against one target in one round. */
function tally(kind, target, unit) {
  return { kind, target, unit, count: 0, failed: 0, lost: 0, corrupted: 0, errors: [], samples: [], wallMs: 0, bytes: 0 };
}
function failure(t, what, err) {
  t[what] += 1;
  if (t.errors.length < 5) t.errors.push(String(err?.message ?? err).slice(0, 500));
}

/** Run `n` operations over `concurrency` lanes; `op(i, lane)` returns its latency sample or throws. */
async function lanes(t, n, concurrency, op) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async (_, lane) => {
      while (next < n && !stopCtl.signal.aborted) {
        const i = next++;
        const s = performance.now();
        try {
          await op(i, lane);
          t.samples.push(performance.now() - s);
          t.count += 1;
        } catch (err) {
          failure(t, err.corrupted ? 'corrupted' : 'failed', err);
        }
      }
    }),
  );
  t.wallMs = performance.now() - t0;
  return t;
}
const corrupt = (msg) => Object.assign(new Error(msg), { corrupted: true });

// ---------------------------------------------------------------------------
// The kinds

async function oauthLogin(ctx, i) {
  const user = USERS[i % USERS.length];
  const next = `/load/after-login?i=${i}`;
  const { final, chain, interacted } = await withTimeout(oidcLogin({ url: ctx.hubgate }, ctx.idp, user, cookieJar(), next, { max: 20 }), CFG.timeoutMs, 'oauth login');
  if (!interacted) throw new Error(`the IdP never asked for a username:\n${trail(chain)}`);
  if (final.status !== 200) throw new Error(`login ended with ${final.status}:\n${trail(chain)}\n${final.text.slice(0, 300)}`);
  const seen = final.json();
  if (seen.path !== '/load/after-login' || seen.query.i !== String(i)) throw corrupt(`login landed on ${seen.path}?i=${seen.query.i}, not ${next}`);
  if (seen.hub_user !== user) throw corrupt(`the hub saw ${JSON.stringify(seen.hub_user)} after ${user}'s login`);
  if (seen.leak) throw corrupt('an identity header reached a proxied request');
}

async function ltiOne(ctx, i) {
  const user = `s${i % 50}`;
  const r = await withTimeout(ltiLaunch(ctx.platform, LTI_PLATFORM.name, cookieJar(), { user, max: 15 }), CFG.timeoutMs, 'lti launch');
  if (r.launch.status !== 302) throw new Error(`launch answered ${r.launch.status}: ${r.launch.text.slice(0, 300)}`);
  if (r.final.status !== 200) throw new Error(`launch ended with ${r.final.status}:\n${trail(r.chain)}`);
  const seen = r.final.json();
  const expected = `${LTI_PLATFORM.name}:${user}@example.edu`;
  if (seen.hub_user !== expected) throw corrupt(`the hub saw ${JSON.stringify(seen.hub_user)} after ${expected}'s launch`);
  if (seen.leak) throw corrupt('an identity header reached a proxied request');
}

/** Per-target fixed parts: base URL, the lanes' cookies (hubgate) and who the hub must see. */
function targetOf(ctx, target, lane) {
  if (target === 'bare') return { base: ctx.bare, cookie: undefined, user: '' };
  const s = ctx.sessions[lane % ctx.sessions.length];
  return { base: ctx.hubgate, cookie: s.cookie, user: s.user };
}

async function getOne(ctx, target, agent, round, i, lane) {
  const { base, cookie, user } = targetOf(ctx, target, lane);
  const headers = { accept: 'application/json', ...(cookie ? { cookie } : {}) };
  const signal = AbortSignal.any([stopCtl.signal, AbortSignal.timeout(CFG.timeoutMs)]);
  const res = await request(`${base}/load/get?r=${round}&i=${i}`, { headers, agent, timeoutMs: CFG.timeoutMs, signal });
  const text = await readText(res, CFG.timeoutMs);
  if (res.statusCode !== 200) throw new Error(`GET answered ${res.statusCode}: ${text.slice(0, 300)}`);
  let seen;
  try {
    seen = JSON.parse(text);
  } catch {
    throw corrupt(`GET body is not the origin's JSON: ${text.slice(0, 200)}`);
  }
  if (seen.path !== '/load/get' || seen.query.i !== String(i) || seen.query.r !== String(round)) throw corrupt(`GET ${i} got the answer to ${seen.path}?r=${seen.query.r}&i=${seen.query.i}`);
  if (seen.hub_user !== user) throw corrupt(`GET ${i}: the hub saw ${JSON.stringify(seen.hub_user)}, not ${JSON.stringify(user)}`);
  if (seen.leak) throw corrupt('an identity header reached a proxied request');
}

async function uploadOne(ctx, target, round, i, lane, t) {
  const { base, cookie, user } = targetOf(ctx, target, lane);
  const total = CFG.bodyBytes;
  const method = i % 2 ? 'POST' : 'PUT';
  const seed = `${target}-r${round}-up${i}`;
  // PUT with a Content-Length, POST chunked: both framings stream through
  const headers = { 'content-type': 'application/octet-stream', accept: 'application/json', ...(method === 'PUT' ? { 'content-length': String(total) } : {}), ...(cookie ? { cookie } : {}) };
  let sent = null;
  const signal = AbortSignal.any([stopCtl.signal, AbortSignal.timeout(CFG.timeoutMs)]);
  const res = await request(`${base}/load/upload?r=${round}&i=${i}`, {
    method,
    headers,
    agent: false,
    timeoutMs: CFG.timeoutMs,
    signal,
    body: async (req) => {
      sent = await writeKeystream(req, seed, total);
    },
  });
  const text = await readText(res, CFG.timeoutMs);
  if (res.statusCode !== 200) throw new Error(`${method} answered ${res.statusCode}: ${text.slice(0, 300)}`);
  const got = JSON.parse(text);
  if (!sent) throw new Error(`${method}: the origin answered before the body was sent (${got.bytes} bytes)`);
  t.bytes += sent.bytes;
  if (got.bytes !== sent.bytes) throw corrupt(`${method}: sent ${sent.bytes} bytes, the origin received ${got.bytes}`);
  if (got.sha256 !== sent.sha256) throw corrupt(`${method}: SHA-256 differs (sent ${sent.sha256}, received ${got.sha256})`);
  if (got.method !== method) throw corrupt(`${method} arrived as ${got.method}`);
  if (got.hub_user !== user) throw corrupt(`${method}: the hub saw ${JSON.stringify(got.hub_user)}`);
}

async function downloadOne(ctx, target, round, i, lane, t) {
  const { base, cookie } = targetOf(ctx, target, lane);
  const total = CFG.bodyBytes;
  const id = `${target}-r${round}-down${i}-${crypto.randomBytes(4).toString('hex')}`;
  const signal = AbortSignal.any([stopCtl.signal, AbortSignal.timeout(CFG.timeoutMs)]);
  const res = await request(`${base}/load/download?id=${id}&bytes=${total}&seed=${id}`, { headers: cookie ? { cookie } : {}, agent: false, timeoutMs: CFG.timeoutMs, signal });
  if (res.statusCode !== 200) throw new Error(`download answered ${res.statusCode}: ${(await readText(res)).slice(0, 300)}`);
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  await new Promise((resolve, reject) => {
    res.on('data', (c) => {
      bytes += c.length;
      hash.update(c);
    });
    res.once('end', resolve);
    res.once('error', reject);
    res.once('close', () => (res.complete ? resolve() : reject(new Error(`download closed after ${bytes} of ${total} bytes`))));
  });
  t.bytes += bytes;
  const got = hash.digest('hex');
  const rec = await (await fetch(`${ctx.origin.url}/_origin/sent?id=${encodeURIComponent(id)}`)).json();
  if (!rec.done) throw new Error(`the origin did not finish sending: ${rec.error ?? JSON.stringify(rec)}`);
  if (bytes !== rec.bytes) throw corrupt(`download: the origin sent ${rec.bytes} bytes, received ${bytes}`);
  if (got !== rec.sha256) throw corrupt(`download: SHA-256 differs (sent ${rec.sha256}, received ${got})`);
}

// WebSocket messages: deterministic per (round, socket, message), sizes
// log-uniform between the bounds, half text (with multi-byte characters),
// half binary.
const BIN_POOL = crypto.randomBytes(2 * CFG.wsMaxBytes + 64);
const TEXT_POOL = (() => {
  // UTF-8 bytes of a text with one-, two- and three-byte characters
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_/{}[]"\'\\éüßøΩж€✓中文한';
  const r = prng(7);
  const chars = [];
  for (let bytes = 0; bytes < 2 * CFG.wsMaxBytes + 64; ) {
    const c = alphabet[Math.floor(r() * alphabet.length)];
    chars.push(c);
    bytes += Buffer.byteLength(c);
  }
  return Buffer.from(chars.join(''), 'utf8');
})();
/** Move `i` back to the start of a UTF-8 character of TEXT_POOL. */
const charStart = (i) => {
  while (i > 0 && (TEXT_POOL[i] & 0xc0) === 0x80) i -= 1;
  return i;
};
function message(round, socket, m) {
  const r = prng(((round * 1_000_003) ^ (socket * 7919) ^ (m * 104_729)) >>> 0);
  const lo = Math.log(CFG.wsMinBytes);
  const size = Math.max(CFG.wsMinBytes, Math.round(Math.exp(lo + r() * (Math.log(CFG.wsMaxBytes) - lo))));
  const off = Math.floor(r() * CFG.wsMaxBytes);
  if (r() < 0.5) {
    const data = Buffer.from(BIN_POOL.subarray(off, off + size));
    if (size >= 8) {
      data.writeUInt32BE(socket, 0);
      data.writeUInt32BE(m, 4);
    }
    return { binary: true, data, bytes: size };
  }
  // text: sent and compared as UTF-8 bytes (a text frame from a Buffer), cut at character boundaries
  const head = Buffer.from(`${socket}:${m}:`);
  const a = charStart(off);
  const b = Math.max(a, charStart(off + Math.max(0, size - head.length)));
  const data = size > head.length ? Buffer.concat([head, TEXT_POOL.subarray(a, b)]) : TEXT_POOL.subarray(charStart(off), charStart(off + size));
  return { binary: false, data, bytes: data.length };
}

async function wsRound(ctx, target, round, t, open) {
  const n = CFG.wsSockets;
  const M = CFG.wsMessages;
  // open every socket at once, and only then start echoing
  const o0 = performance.now();
  const opened = await Promise.allSettled(
    Array.from({ length: n }, async (_, s) => {
      const { base, cookie } = targetOf(ctx, target, s);
      const s0 = performance.now();
      const ws = await openWebSocket(`${base}/load/ws?r=${round}&s=${s}`, null, { headers: cookie ? { cookie } : {}, timeoutMs: CFG.timeoutMs });
      open.samples.push(performance.now() - s0);
      open.count += 1;
      ws.on('error', () => {});
      return ws;
    }),
  );
  open.wallMs = performance.now() - o0;
  const sockets = opened.map((x) => (x.status === 'fulfilled' ? x.value : null));
  opened.forEach((x) => {
    if (x.status === 'rejected') {
      failure(open, 'failed', x.reason);
      t.lost += M;
    }
  });
  const live = sockets.filter((ws) => ws && ws.readyState === 1).length;
  t.openAtOnce = live;

  const t0 = performance.now();
  const closes = {};
  await Promise.all(
    sockets.map(async (ws, s) => {
      if (!ws) return;
      const inbox = [];
      let waiter = null;
      let closed = null;
      ws.on('message', (data, isBinary) => {
        if (waiter) {
          const w = waiter;
          waiter = null;
          w.resolve({ data, isBinary });
        } else inbox.push({ data, isBinary });
      });
      ws.on('close', (code) => {
        closed = code;
        if (waiter) waiter.reject(new Error(`socket ${s} closed (${code}) while waiting for an echo`));
      });
      const next = () =>
        inbox.length
          ? Promise.resolve(inbox.shift())
          : new Promise((resolve, reject) => {
              if (closed !== null) return reject(new Error(`socket ${s} closed (${closed}) before its echo`));
              const timer = setTimeout(() => {
                waiter = null;
                reject(Object.assign(new Error(`socket ${s}: no echo within ${CFG.wsMessageTimeoutMs} ms`), { lost: true }));
              }, CFG.wsMessageTimeoutMs);
              waiter = {
                resolve: (v) => {
                  clearTimeout(timer);
                  resolve(v);
                },
                reject: (e) => {
                  clearTimeout(timer);
                  reject(e);
                },
              };
            });
      for (let m = 0; m < M; m += 1) {
        if (stopCtl.signal.aborted) return;
        const msg = message(round, s, m);
        const s0 = performance.now();
        let got;
        try {
          ws.send(msg.data, { binary: msg.binary });
          got = await next();
        } catch (err) {
          failure(t, 'lost', err);
          t.lost += M - m - 1; // the rest of this socket's messages never went
          ws.terminate();
          return;
        }
        t.samples.push(performance.now() - s0);
        t.bytes += msg.bytes;
        const same = got.isBinary === msg.binary && Buffer.isBuffer(got.data) && got.data.equals(msg.data);
        if (same) t.count += 1;
        else failure(t, 'corrupted', `socket ${s} message ${m}: a ${msg.binary ? 'binary' : 'text'} message of ${msg.bytes} bytes came back as ${got.isBinary ? 'binary' : 'text'} of ${got.data.length} bytes${got.data.length === msg.bytes ? ' with other content' : ''}`);
      }
      // close cleanly and see the close come back
      const code = await new Promise((resolve) => {
        if (closed !== null) return resolve(closed);
        const timer = setTimeout(() => {
          ws.terminate();
          resolve('timeout');
        }, 10_000);
        ws.once('close', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
        ws.close(1000, 'done');
      });
      closes[code] = (closes[code] ?? 0) + 1;
    }),
  );
  t.wallMs = performance.now() - t0;
  t.closes = closes;
}

// ---------------------------------------------------------------------------
// Summaries

const UNITS = { oauth: 'logins/s', lti: 'launches/s', get: 'req/s', upload: 'MB/s', download: 'MB/s', ws: 'msg/s', 'ws-open': 'opens/s' };
function throughput(t) {
  if (!t.wallMs) return NaN;
  if (t.kind === 'upload' || t.kind === 'download') return t.bytes / 1e6 / (t.wallMs / 1000);
  return t.count / (t.wallMs / 1000);
}
function roundFigures(t) {
  const s = sortedSamples(t.samples);
  return {
    count: t.count,
    failed: t.failed,
    lost: t.lost,
    corrupted: t.corrupted,
    wall_ms: +t.wallMs.toFixed(1),
    bytes: t.bytes || undefined,
    throughput: +throughput(t).toFixed(2),
    p50_ms: +quantile(s, 0.5).toFixed(3),
    p99_ms: +quantile(s, 0.99).toFixed(3),
    ...(t.openAtOnce !== undefined ? { open_at_once: t.openAtOnce } : {}),
    ...(t.closes ? { close_codes: t.closes } : {}),
    ...(t.errors.length ? { errors: t.errors } : {}),
  };
}

// ---------------------------------------------------------------------------

async function main() {
  log(`config ${JSON.stringify({ ...CFG, resultsDir: path.relative(REPO_ROOT, CFG.resultsDir) })}`);
  const origin = await startOrigin();
  const idp = await startIdp({ quiet: true });
  cleanups.push(() => idp.close());
  const hubgatePort = await freePort();
  const barePort = await freePort();
  const hubgateUrl = `http://127.0.0.1:${hubgatePort}`;
  const platform = await startLtiPlatform({ port: await freePort(), tool: hubgateUrl, platforms: [LTI_PLATFORM] });
  process.send?.({ pgid: platform.pid }); // its own process group: the supervisor reaps it too
  cleanups.push(() => platform.close());
  const workers = await startWorkers({ origin, idp, platform, hubgatePort, barePort });
  registerWorker(idp, { url: workers.hubgate });
  const ctx = { origin, idp, platform, hubgate: workers.hubgate, bare: workers.bare, sessions: [] };
  const tree = workerdTree();
  log(`origin ${origin.url}, IdP ${idp.issuer}, LTI platform ${platform.url}, hubgate ${ctx.hubgate}, bare ${ctx.bare}, workerd pids ${tree.pids.join(',')}`);
  if (!tree.pids.length) throw new Error('no workerd process found under this one');

  // Warm-up, and the sessions the proxied kinds use: one real login per lane.
  const w0 = performance.now();
  const nSessions = Math.max(CFG.getConcurrency, CFG.bodyConcurrency, 1);
  for (let i = 0; i < nSessions; i += 1) {
    const user = USERS[i % USERS.length];
    const jar = cookieJar();
    const { final, chain } = await oidcLogin({ url: ctx.hubgate }, idp, user, jar, '/hub/');
    if (final.status !== 200 || final.json().hub_user !== user) throw new Error(`warm-up login of ${user} failed:\n${trail(chain)}\n${final.text.slice(0, 300)}`);
    ctx.sessions.push({ user, cookie: jar.header(`${ctx.hubgate}/load/get`) });
  }
  if (runs('lti')) await ltiOne(ctx, 0);
  for (const target of ['hubgate', 'bare']) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    for (let i = 0; i < 50; i += 1) await getOne(ctx, target, agent, 0, i, i);
    agent.destroy();
    const warm = tally('warm', target);
    await uploadOne(ctx, target, 0, 0, 0, warm).catch((e) => {
      throw new Error(`warm-up upload through ${target}: ${e.message}`);
    });
    const ws = await openWebSocket(`${target === 'bare' ? ctx.bare : ctx.hubgate}/load/ws`, null, { headers: target === 'bare' ? {} : { cookie: ctx.sessions[0].cookie } });
    ws.close();
  }
  log(`warm-up done in ${((performance.now() - w0) / 1000).toFixed(1)} s (${nSessions} sessions)`);

  const memory = [{ round: 0, when: 'after warm-up', ...memSample(origin) }];
  log(`memory after warm-up: workerd ${(memory[0].workerd_rss / 2 ** 20).toFixed(1)} MiB`);
  /** kind -> target -> [per-round tally] */
  const results = {};
  const keep = (t) => {
    ((results[t.kind] ??= {})[t.target] ??= []).push(t);
    const f = t.failed + t.lost + t.corrupted;
    log(`r${t.round} ${t.kind.padEnd(8)} ${t.target.padEnd(7)} ${String(t.count).padStart(7)} ok ${f ? `${f} FAILED ` : ''}${throughput(t).toFixed(1)} ${UNITS[t.kind]}  p50 ${quantile(sortedSamples(t.samples), 0.5).toFixed(2)} ms${t.errors.length ? `  first error: ${t.errors[0]}` : ''}`);
  };

  for (let round = 1; round <= CFG.rounds && !stopCtl.signal.aborted; round += 1) {
    const r0 = performance.now();
    const order = round % 2 ? ['hubgate', 'bare'] : ['bare', 'hubgate'];
    if (runs('oauth') && CFG.oauthLogins) {
      const t = Object.assign(tally('oauth', 'hubgate'), { round });
      keep(await lanes(t, CFG.oauthLogins, CFG.loginConcurrency, (i) => oauthLogin(ctx, round * 100_000 + i)));
    }
    if (runs('lti') && CFG.ltiLaunches) {
      const t = Object.assign(tally('lti', 'hubgate'), { round });
      keep(await lanes(t, CFG.ltiLaunches, CFG.loginConcurrency, (i) => ltiOne(ctx, i)));
    }
    if (runs('get') && CFG.gets) {
      for (const target of order) {
        const agent = new http.Agent({ keepAlive: true, maxSockets: CFG.getConcurrency });
        const t = Object.assign(tally('get', target), { round });
        keep(await lanes(t, CFG.gets, CFG.getConcurrency, (i, lane) => getOne(ctx, target, agent, round, i, lane)));
        agent.destroy();
      }
    }
    if (runs('upload') && CFG.uploads) {
      for (const target of order) {
        const t = Object.assign(tally('upload', target), { round });
        keep(await lanes(t, CFG.uploads, CFG.bodyConcurrency, (i, lane) => uploadOne(ctx, target, round, i, lane, t)));
      }
    }
    if (runs('download') && CFG.downloads) {
      for (const target of order) {
        const t = Object.assign(tally('download', target), { round });
        keep(await lanes(t, CFG.downloads, CFG.bodyConcurrency, (i, lane) => downloadOne(ctx, target, round, i, lane, t)));
      }
    }
    if (runs('ws') && CFG.wsSockets && CFG.wsMessages) {
      for (const target of order) {
        const t = Object.assign(tally('ws', target), { round });
        const open = Object.assign(tally('ws-open', target), { round });
        await wsRound(ctx, target, round, t, open);
        keep(open);
        keep(t);
        if (t.openAtOnce !== CFG.wsSockets) log(`r${round} ws ${target}: only ${t.openAtOnce} of ${CFG.wsSockets} sockets open at once`);
      }
    }
    const m = { round, when: `after round ${round}`, round_s: +((performance.now() - r0) / 1000).toFixed(1), ...memSample(origin) };
    memory.push(m);
    log(`round ${round} done in ${m.round_s} s; workerd RSS ${(m.workerd_rss / 2 ** 20).toFixed(1)} MiB (${m.workerd_pids} process${m.workerd_pids === 1 ? '' : 'es'})`);
  }
  if (stopCtl.signal.aborted) return 130;

  // Aggregate: counts and failures summed; latency percentiles over every
  // sample; throughput the median of the rounds; ratios (hubgate / bare) the
  // median of the per-round ratios (the two ran back to back in each round).
  const rows = [];
  for (const kind of ['oauth', 'lti', 'get', 'upload', 'download', 'ws-open', 'ws']) {
    for (const target of ['hubgate', 'bare']) {
      const list = results[kind]?.[target];
      if (!list) continue;
      const all = sortedSamples(list.flatMap((t) => t.samples));
      const perRound = list.map(roundFigures);
      const row = {
        kind,
        target,
        rounds: list.length,
        count: list.reduce((s, t) => s + t.count, 0),
        failures: list.reduce((s, t) => s + t.failed + t.lost + t.corrupted, 0),
        failed: list.reduce((s, t) => s + t.failed, 0),
        lost: list.reduce((s, t) => s + t.lost, 0),
        corrupted: list.reduce((s, t) => s + t.corrupted, 0),
        throughput: +median(list.map(throughput)).toFixed(2),
        throughput_unit: UNITS[kind],
        p50_ms: +quantile(all, 0.5).toFixed(3),
        p99_ms: +quantile(all, 0.99).toFixed(3),
        p50_ms_median_of_rounds: +median(perRound.map((r) => r.p50_ms)).toFixed(3),
        per_round: perRound,
      };
      const bare = results[kind]?.bare;
      if (target === 'hubgate' && bare) {
        const pairs = list.map((t, i) => [t, bare[i]]).filter(([, b]) => b);
        const q = (t, p) => quantile(sortedSamples(t.samples), p);
        row.vs_bare = {
          p50: +median(pairs.map(([h, b]) => q(h, 0.5) / q(b, 0.5))).toFixed(2),
          p99: +median(pairs.map(([h, b]) => q(h, 0.99) / q(b, 0.99))).toFixed(2),
          throughput: +median(pairs.map(([h, b]) => throughput(h) / throughput(b))).toFixed(2),
        };
      }
      rows.push(row);
    }
  }
  const failures = rows.reduce((s, r) => s + r.failures, 0);
  const runSeconds = (Date.now() - runStarted) / 1000;

  printTable(rows, memory, runSeconds, failures);

  const stamp = new Date(runStarted).toISOString().replace(/[:.]/g, '-');
  fs.mkdirSync(CFG.resultsDir, { recursive: true });
  const file = path.join(CFG.resultsDir, `load-${stamp}.json`);
  const out = {
    started: new Date(runStarted).toISOString(),
    run_seconds: +runSeconds.toFixed(1),
    command: 'npm run load',
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('LOAD_'))),
    config: { ...CFG, resultsDir: path.relative(REPO_ROOT, CFG.resultsDir) },
    machine: { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, loadavg_at_end: os.loadavg(), total_mem: os.totalmem() },
    method: {
      transport: 'real sockets: each worker on its own workerd socket (Miniflare unsafeDirectSockets), node:http and ws clients',
      latency: 'p50/p99 over every sample of every round; ws latency is one message round trip, oauth/lti the whole flow, upload/download the whole transfer',
      throughput: 'median over rounds of (count or MB) / wall time of the kind in that round',
      vs_bare: 'median over rounds of hubgate/bare for that round (the two run back to back, order alternating); >1 for latency and <1 for throughput means hubgate is slower',
      memory: 'VmRSS summed over the workerd process tree, sampled after each round',
    },
    failures,
    rows,
    memory,
    workerd_log_lines: workers.logs.lines,
    ...(failures ? { workerd_log_tail: workers.logs.tail.slice(-50) } : {}),
  };
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
  return failures ? 1 : 0;
}

function memSample(origin) {
  const tree = workerdTree();
  return { workerd_rss: tree.rss, workerd_pids: tree.pids.length, origin_rss: rssBytes(origin.pid), client_rss: process.memoryUsage().rss };
}

function printTable(rows, memory, runSeconds, failures) {
  const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const head = ['kind', 'target', 'count', 'fail', 'throughput', 'p50 ms', 'p99 ms', 'p50 ×bare', 'p99 ×bare', 'tput ×bare'];
  const body = rows.map((r) => [
    r.kind,
    r.target,
    String(r.count),
    String(r.failures),
    `${fmt(r.throughput, r.throughput >= 100 ? 0 : 1)} ${r.throughput_unit}`,
    fmt(r.p50_ms),
    fmt(r.p99_ms),
    r.vs_bare ? fmt(r.vs_bare.p50) : '',
    r.vs_bare ? fmt(r.vs_bare.p99) : '',
    r.vs_bare ? fmt(r.vs_bare.throughput) : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log('');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  console.log('');
  console.log('workerd RSS (MiB, summed over its process tree):');
  console.log(memory.map((m) => `  ${m.when.padEnd(16)} ${(m.workerd_rss / 2 ** 20).toFixed(1)}`).join('\n'));
  console.log(`\n${failures ? `FAILURES: ${failures}` : 'no failures'}; run time ${runSeconds.toFixed(0)} s`);
}

main()
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  })
  .catch((err) => bail(2, `load-run: ${err.stack ?? err}`));
