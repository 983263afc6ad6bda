// LTI 1.3 end to end: the built worker in workerd (Miniflare) and a real
// platform — PyPI's lti1p3platform (tests/e2e/support/lti-platform.py) — on
// 127.0.0.1. Every launch goes platform → worker login initiation → platform
// authorize → form_post of the signed id_token to the worker → hub.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startWorker, cookieJar, follow } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import { freePort } from './support/ports.mjs';
import { startLtiPlatform, ltiLaunch, parseForm } from './support/lti-platform.mjs';

const PLATFORMS = [
  { name: 'moodle', clientId: 'hubgate-moodle', deploymentId: 'dep-moodle' },
  { name: 'canvas', clientId: 'hubgate-canvas', deploymentId: 'dep-canvas' },
  { name: 'rotating', clientId: 'hubgate-rot', deploymentId: 'dep-rot' },
  { name: 'flaky', clientId: 'hubgate-flaky', deploymentId: 'dep-flaky' },
  { name: 'bulk', clientId: 'hubgate-bulk', deploymentId: 'dep-bulk' },
];
const BULK_LAUNCHES = Number(process.env.HUBGATE_LTI_BULK ?? 1000);

let worker;
let hub;
let platform;

before(async () => {
  const workerPort = await freePort();
  const tool = `http://127.0.0.1:${workerPort}`;
  platform = await startLtiPlatform({ port: await freePort(), tool, platforms: PLATFORMS });
  hub = await startHubEcho();
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  worker = await startWorker({
    port: workerPort,
    bindings: {
      HUB_ORIGIN: hub.url,
      SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
      LTI13_PLATFORMS: JSON.stringify(PLATFORMS.map((p) => platform.registration(p.name))),
      LTI13_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      LTI13_TOOL_NAME: 'Course Hub',
    },
  });
});

after(async () => {
  await Promise.allSettled([worker?.close(), hub?.close(), platform?.close()]);
});

describe('LTI 1.3 launches in workerd against lti1p3platform', () => {
  test('full launch: login initiation → signed launch → session → proxied hub page as the LTI user', async () => {
    const jar = cookieJar();
    const { launch, final, chain } = await ltiLaunch(platform, 'moodle', jar, { user: 'student1' });
    assert.equal(launch.status, 302, launch.text);
    assert.equal(launch.location, '/hub/login?next=%2Fhub%2F');
    assert.ok(jar.names().includes('hubgate'), `session cookie missing: ${jar.names()}`);
    assert.ok(!jar.names().some((n) => n.startsWith('hubgate-lti-')), 'flow cookie must be cleared');
    // The worker's login initiation sent the platform every OIDC parameter.
    const authorizeUrl = new URL(chain.find((c) => c.url.includes('/authorize')).url);
    for (const [k, v] of Object.entries({ scope: 'openid', response_type: 'id_token', response_mode: 'form_post', prompt: 'none', client_id: 'hubgate-moodle' })) {
      assert.equal(authorizeUrl.searchParams.get(k), v, k);
    }
    assert.equal(final.status, 200, final.text);
    const seen = final.json();
    assert.equal(seen.path, '/hub/');
    assert.equal(seen.headers['x-forwarded-user'], 'student1@example.edu');
    assert.equal(seen.headers['x-forwarded-admin'], 'false');
    assert.equal(seen.headers['x-forwarded-groups'], 'course-101,DS101');
  });

  test('two registered platforms each launch with their own issuer, client id and keys', async () => {
    const a = await ltiLaunch(platform, 'moodle', cookieJar(), { user: 'ann' });
    const b = await ltiLaunch(platform, 'canvas', cookieJar(), { user: 'teacher', roles: 'Instructor' });
    assert.equal(a.final.json().headers['x-forwarded-user'], 'ann@example.edu');
    const seen = b.final.json();
    assert.equal(seen.headers['x-forwarded-user'], 'teacher@example.edu');
    assert.equal(seen.headers['x-forwarded-admin'], 'true');
    assert.equal((await platform.stats('moodle')).jwks_fetches, 1);
    assert.equal((await platform.stats('canvas')).jwks_fetches, 1);
  });

  test('a launch lands on its target_link_uri when it is on this hub', async () => {
    const { launch } = await ltiLaunch(platform, 'moodle', cookieJar(), {
      target: `${worker.url}/hub/user-redirect/lab?reset`,
      followAfter: false,
    });
    assert.equal(launch.location, `/hub/login?next=${encodeURIComponent('/hub/user-redirect/lab?reset')}`);
  });

  test('replayed launch is refused (nonce recorded in KV NONCES)', async () => {
    const jar = cookieJar();
    // Stop before the form post, keep the flow cookie, then post twice.
    const first = await follow(null, `${platform.url}/p/moodle/start?user=replayer`, jar);
    const form = parseForm(first.at(-1).text);
    const flow = jar.all().find((c) => c.name.startsWith('hubgate-lti-'));
    assert.ok(flow, 'flow cookie set by login initiation');
    const post = () =>
      worker.fetch('/hub/lti13/oauth_callback', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `${flow.name}=${flow.value}`, accept: 'application/json' },
        body: new URLSearchParams(form.fields).toString(),
      });
    const ok = await post();
    assert.equal(ok.status, 302);
    const replay = await post();
    assert.equal(replay.status, 401);
    assert.equal((await replay.json()).error, 'Not signed in');
    assert.ok(worker.jsonLogs().some((l) => String(l.detail).includes('nonce was already used')));
    // And without the flow cookie the state check refuses it first.
    const bare = await worker.fetch('/hub/lti13/oauth_callback', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form.fields).toString(),
    });
    assert.equal(bare.status, 400);
  });

  test('platform key rotation (new kid) is handled by exactly one JWKS refetch', async () => {
    const before = await ltiLaunch(platform, 'rotating', cookieJar(), { followAfter: false });
    assert.equal(before.launch.status, 302);
    const s1 = await platform.stats('rotating');
    assert.equal(s1.jwks_fetches, 1);
    const s2 = await platform.control('rotating', 'rotate');
    assert.notEqual(s2.kid, s1.kid);
    for (let i = 0; i < 3; i += 1) {
      const r = await ltiLaunch(platform, 'rotating', cookieJar(), { followAfter: false });
      assert.equal(r.launch.status, 302, r.launch.text);
    }
    assert.equal((await platform.stats('rotating')).jwks_fetches, 2);
  });

  test('platform JWKS down with a warm cache still launches', async () => {
    const warm = await ltiLaunch(platform, 'flaky', cookieJar(), { followAfter: false });
    assert.equal(warm.launch.status, 302);
    await platform.control('flaky', 'down');
    const down = await fetch(`${platform.url}/p/flaky/jwks`);
    assert.equal(down.status, 503);
    await down.arrayBuffer();
    for (let i = 0; i < 5; i += 1) {
      const r = await ltiLaunch(platform, 'flaky', cookieJar(), { user: `s${i}` });
      assert.equal(r.launch.status, 302, r.launch.text);
      assert.equal(r.final.json().headers['x-forwarded-user'], `s${i}@example.edu`);
    }
    // One fetch filled the cache; the probe above is the only other one.
    assert.equal((await platform.stats('flaky')).jwks_fetches, 2);
    await platform.control('flaky', 'up');
  });

  test('deep linking round trip: picker, signed LtiDeepLinkingResponse verified by the platform against /hub/lti13/jwks', async () => {
    const jar = cookieJar();
    const { launch } = await ltiLaunch(platform, 'moodle', jar, { user: 'prof', kind: 'deep', roles: 'Instructor' });
    assert.equal(launch.status, 200, launch.text);
    const picker = parseForm(launch.text);
    assert.equal(picker.action, '/hub/lti13/deep_link');
    assert.equal(picker.fields.title, 'Pick a notebook');
    const answer = await follow(null, new URL(picker.action, worker.url), jar, {
      method: 'POST',
      body: new URLSearchParams({ ...picker.fields, title: 'Lab 1', path: '/hub/user-redirect/lab/tree/lab1.ipynb' }).toString(),
    });
    const autoPost = answer.at(-1);
    assert.equal(autoPost.status, 200, autoPost.text);
    assert.match(autoPost.headers.get('content-security-policy'), /script-src 'sha256-/);
    const back = parseForm(autoPost.text);
    assert.equal(back.action, `${platform.issuer('moodle')}/deep_link_return`);
    const verdict = await fetch(back.action, { method: 'POST', body: new URLSearchParams(back.fields) });
    const v = await verdict.json();
    assert.equal(verdict.status, 200, JSON.stringify(v));
    assert.deepEqual(v.content_items, [{ type: 'ltiResourceLink', title: 'Lab 1', url: `${worker.url}/hub/user-redirect/lab/tree/lab1.ipynb` }]);
    assert.deepEqual(v.claims['https://purl.imsglobal.org/spec/lti-dl/claim/data'], { course: 'course-101' });
    const toolKeys = await (await worker.fetch('/hub/lti13/jwks')).json();
    assert.deepEqual(toolKeys.keys.map((k) => k.kid), [v.kid]);
  });

  test('GET on the launch URL is 405; the tool configuration names every endpoint', async () => {
    const get = await worker.fetch('/hub/lti13/oauth_callback');
    assert.equal(get.status, 405);
    await get.arrayBuffer();
    const cfg = await (await worker.fetch('/hub/lti13/config', { headers: { 'x-forwarded-proto': 'https,http' } })).json();
    const origin = worker.url.replace('http:', 'https:');
    assert.equal(cfg.title, 'Course Hub');
    assert.equal(cfg.oidc_initiation_url, `${origin}/hub/lti13/oauth_login`);
    assert.deepEqual(cfg.redirect_uris, [`${origin}/hub/lti13/oauth_callback`]);
    assert.equal(cfg.public_jwk_url, `${origin}/hub/lti13/jwks`);
  });

  test(`${BULK_LAUNCHES} launches fetch the platform JWKS once per TTL (once here), with time per launch`, async () => {
    const times = [];
    const started = Date.now();
    // The first launch fills the isolate's cache; then four browsers launch
    // side by side (workerd does not let one request wait on another's fetch,
    // so concurrent launches on a cold isolate would each fetch). The count
    // bounds the loop.
    const LANES = 4;
    const first = await ltiLaunch(platform, 'bulk', cookieJar(), { user: 'u0', followAfter: false });
    assert.equal(first.launch.status, 302, first.launch.text);
    times.push(first.launchMs);
    let next = 1;
    await Promise.all(Array.from({ length: LANES }, async () => {
      const jar = cookieJar();
      while (next < BULK_LAUNCHES) {
        const i = next++;
        const r = await ltiLaunch(platform, 'bulk', jar, { user: `u${i % 50}`, followAfter: false });
        assert.equal(r.launch.status, 302, r.launch.text);
        times.push(r.launchMs);
      }
    }));
    assert.equal(times.length, BULK_LAUNCHES);
    const wall = Date.now() - started;
    // Baseline: the same HTTP round trip to the worker for a static answer.
    const base = [];
    for (let i = 0; i < 200; i += 1) {
      const t0 = process.hrtime.bigint();
      const r = await worker.fetch('/hub/lti13/jwks');
      await r.arrayBuffer();
      base.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const baseMean = base.reduce((a, b) => a + b, 0) / base.length;
    const stats = await platform.stats('bulk');
    assert.equal(stats.jwks_fetches, 1, `JWKS fetched ${stats.jwks_fetches} times over ${BULK_LAUNCHES} launches`);
    times.sort((x, y) => x - y);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    const pct = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
    console.log(
      `[lti bench] workerd: ${BULK_LAUNCHES} launches, launch POST (id_token verify + nonce KV + session) ` +
        `mean ${mean.toFixed(2)} ms, p50 ${pct(50).toFixed(2)} ms, p95 ${pct(95).toFixed(2)} ms, max ${times.at(-1).toFixed(2)} ms; ` +
        `(GET /hub/lti13/jwks round trip ${baseMean.toFixed(2)} ms, so ~${(mean - baseMean).toFixed(2)} ms of launch work); ` +
        `whole launch incl. platform ${(wall / BULK_LAUNCHES).toFixed(2)} ms; JWKS fetches: ${stats.jwks_fetches}`,
    );
  });
});
