// Proxy overhead of the built worker against a bare pass-through worker run
// in the same workerd process, both in front of the same local origin.
// Prints figures; asserts nothing about time. Loopback only, bounded loops.
import http from 'node:http';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { REPO_ROOT } from '../tests/e2e/support/worker.mjs';
import { listen } from '../tests/e2e/support/ports.mjs';
import { createHmac, randomBytes } from 'node:crypto';

const N = Number(process.env.BENCH_REQUESTS || 2000);
const CONCURRENCY = 8;

const origin = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
});
const originPort = await listen(origin, 0);
const hubOrigin = `http://127.0.0.1:${originPort}`;

const secret = randomBytes(32).toString('base64');
const bare = `export default { async fetch(req) {
  const u = new URL(req.url); const o = new URL(${JSON.stringify(hubOrigin)});
  u.protocol = o.protocol; u.host = o.host;
  return fetch(new Request(u, req), { redirect: 'manual' });
} };`;

const mf = new Miniflare({
  host: '127.0.0.1',
  port: 0,
  cf: false,
  workers: [
    {
      name: 'hubgate',
      modules: true,
      scriptPath: path.join(REPO_ROOT, 'build', 'worker', 'shim.mjs'),
      modulesRoot: path.join(REPO_ROOT, 'build'),
      modulesRules: [
        { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
        { type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true },
      ],
      compatibilityDate: '2025-09-01',
      bindings: {
        HUB_ORIGIN: hubOrigin,
        SESSION_SECRET: secret,
        OAUTH_CLIENT_ID: 'bench',
        OAUTH_CLIENT_SECRET: 'bench',
        OAUTH2_AUTHORIZE_URL: 'http://127.0.0.1:9/authorize',
        OAUTH2_TOKEN_URL: 'http://127.0.0.1:9/token',
        OAUTH2_USERDATA_URL: 'http://127.0.0.1:9/user',
        ALLOW_ALL: 'true',
        ASSERTION_SIGNING_KEY: JSON.stringify({ kty: 'EC', crv: 'P-256', kid: 'bench', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', d: 'jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI' }),
      },
    },
    { name: 'bare', modules: true, script: bare, compatibilityDate: '2025-09-01' },
  ],
});
const base = await mf.ready;

// A valid session cookie for the hubgate worker (same derivation as src/signing.rs).
function sessionCookie(workerOrigin) {
  const key = createHmac('sha256', Buffer.from(secret)).update('hubgate/v1/session').digest();
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'HS256', typ: 'hubgate-session+jwt' });
  const body = b64({ iss: 'hubgate', aud: workerOrigin, sub: 'alice', method: 'oauth', groups: ['g'], admin: false, sid: 'bench-sid', iat: now, exp: now + 3600 });
  const sig = createHmac('sha256', key).update(`${head}.${body}`).digest('base64url');
  return `hubgate=${head}.${body}.${sig}`;
}

async function run(label, fetchOne) {
  // Warm-up, then a bounded measured loop.
  for (let i = 0; i < 50; i++) await fetchOne();
  const times = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < N) {
      next++;
      const s = process.hrtime.bigint();
      await fetchOne();
      times.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
  }));
  const total = Number(process.hrtime.bigint() - t0) / 1e6;
  times.sort((a, b) => a - b);
  const p = (q) => times[Math.floor(q * (times.length - 1))];
  const r = { label, n: times.length, rps: (times.length / total) * 1000, p50: p(0.5), p99: p(0.99) };
  console.log(`${label.padEnd(28)} ${r.n} req  ${r.rps.toFixed(0)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms`);
  return r;
}

const hubgate = await mf.getWorker('hubgate');
const bareWorker = await mf.getWorker('bare');
const cookie = sessionCookie('http://127.0.0.1');
const check = await hubgate.fetch('http://127.0.0.1/hub/home', { headers: { cookie }, redirect: 'manual' });
if (check.status !== 200) throw new Error(`hubgate did not proxy (status ${check.status}): ${await check.text()}`);
await check.text();

const b = await run('bare pass-through worker', async () => (await bareWorker.fetch('http://127.0.0.1/hub/home')).arrayBuffer());
const h = await run('hubgate (session+assertion)', async () => (await hubgate.fetch('http://127.0.0.1/hub/home', { headers: { cookie }, redirect: 'manual' })).arrayBuffer());
console.log(`proxy overhead ratio (hubgate / bare): p50 ${(h.p50 / b.p50).toFixed(2)}x, throughput ${(b.rps / h.rps).toFixed(2)}x`);
void base;
await mf.dispose();
origin.close();
