// LTI 1.3 end to end: the built worker in workerd (Miniflare) and a real
// platform — PyPI's lti1p3platform (tests/e2e/support/lti-platform.py) — on
// 127.0.0.1. Every launch goes platform → worker login initiation → platform
// authorize → form_post of the signed id_token to the worker → the worker's
// own login at the hub → 302 to the target.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startWorker, cookieJar, follow } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import { freePort } from './support/ports.mjs';
import { startLtiPlatform, ltiLaunch, parseForm } from './support/lti-platform.mjs';
import { hubLogins, checkHubLogin, identityHeadersIn, setCookieFor, isDeletion, waitForLog, logMark } from './support/oauth-helpers.mjs';

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
/** Course groups as the worker names them: `lti:<platform name>:<context id|label>`. */
const courseGroups = (name) => `lti:${name}:course-101,lti:${name}:DS101`;
/** Launch up to the platform's auto-post form (the id_token and state), keeping the flow cookie in `jar`. */
async function launchForm(platformUrl, name, jar, user) {
  const first = await follow(null, `${platformUrl}/p/${name}/start?user=${user}`, jar);
  const form = parseForm(first.at(-1).text);
  const flow = jar.all().find((c) => c.name.startsWith('hubgate-lti-'));
  assert.ok(flow, 'flow cookie set by login initiation');
  return { form, flow };
}
const postLaunch = (w, form, cookie) =>
  w.fetch('/hub/lti13/oauth_callback', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(form.fields).toString(),
  });

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
      // each registration names its platform (usernames and course groups carry the name)
      LTI13_PLATFORMS: JSON.stringify(PLATFORMS.map((p) => ({ ...platform.registration(p.name), name: p.name }))),
      LTI13_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      LTI13_TOOL_NAME: 'Course Hub',
      // for identity-provider logins only: never make an LTI launch admin
      ADMIN_USERS: 'moodle:student1@example.edu,student1@example.edu',
      ADMIN_GROUPS: `${courseGroups('moodle')},course-101,DS101`,
    },
  });
});

after(async () => {
  await Promise.allSettled([worker?.close(), hub?.close(), platform?.close()]);
});

describe('LTI 1.3 launches in workerd against lti1p3platform', () => {
  test('full launch: login initiation → signed launch → the worker logs in at the hub → 302 to the target as the LTI user', async () => {
    const jar = cookieJar();
    const from = hub.requests.length;
    const { launch, final, chain } = await ltiLaunch(platform, 'moodle', jar, { user: 'student1' });
    assert.equal(launch.status, 302, launch.text);
    assert.equal(launch.location, '/hub/', 'straight to the target, not through /hub/login');
    assert.ok(jar.names().includes('hubgate'), `session cookie missing: ${jar.names()}`);
    assert.ok(!jar.names().some((n) => n.startsWith('hubgate-lti-')), 'flow cookie must be cleared');
    // The worker's login initiation sent the platform every OIDC parameter.
    const authorizeUrl = new URL(chain.find((c) => c.url.includes('/authorize')).url);
    for (const [k, v] of Object.entries({ scope: 'openid', response_type: 'id_token', response_mode: 'form_post', prompt: 'none', client_id: 'hubgate-moodle' })) {
      assert.equal(authorizeUrl.searchParams.get(k), v, k);
    }
    // several login sources (five platforms): the username carries the platform's name;
    // groups are the course's, namespaced; ADMIN_USERS / ADMIN_GROUPS do not apply to a launch
    checkHubLogin(assert, hubLogins(hub, from)[0], { user: 'moodle:student1@example.edu', groups: courseGroups('moodle'), admin: false, next: '/hub/' });
    for (const name of ['jupyterhub-hub-login', 'jupyterhub-session-id', '_xsrf']) {
      assert.ok(setCookieFor(launch.setCookies, name).some((c) => !isDeletion(c)), `${name} passed on by the launch`);
    }
    assert.equal(final.status, 200, final.text);
    const seen = final.json();
    assert.equal(seen.path, '/hub/');
    assert.equal(seen.hub_user, 'moodle:student1@example.edu');
    assert.deepEqual(identityHeadersIn(seen.headers), []);
    assert.deepEqual(hub.identityCarriers(from).map((r) => r.path), ['/hub/login']);
  });

  test('two registered platforms each launch with their own issuer, client id and keys; admin comes from the Instructor role', async () => {
    const from = hub.requests.length;
    const a = await ltiLaunch(platform, 'moodle', cookieJar(), { user: 'ann' });
    const b = await ltiLaunch(platform, 'canvas', cookieJar(), { user: 'teacher', roles: 'Instructor' });
    const [la, lb] = hubLogins(hub, from);
    checkHubLogin(assert, la, { user: 'moodle:ann@example.edu', groups: courseGroups('moodle'), admin: false });
    checkHubLogin(assert, lb, { user: 'canvas:teacher@example.edu', groups: courseGroups('canvas'), admin: true });
    assert.equal(a.final.json().hub_user, 'moodle:ann@example.edu');
    assert.equal(b.final.json().hub_user, 'canvas:teacher@example.edu');
    assert.equal((await platform.stats('moodle')).jwks_fetches, 1);
    assert.equal((await platform.stats('canvas')).jwks_fetches, 1);
  });

  test('a launch lands on its target_link_uri when it is on this hub', async () => {
    const from = hub.requests.length;
    const { launch } = await ltiLaunch(platform, 'moodle', cookieJar(), {
      target: `${worker.url}/hub/user-redirect/lab?reset`,
      followAfter: false,
    });
    assert.equal(launch.location, '/hub/user-redirect/lab?reset');
    assert.equal(hubLogins(hub, from)[0].query.next, '/hub/user-redirect/lab?reset');
  });

  test('a replayed LTI launch is refused (401) with the Durable Object store', async () => {
    const jar = cookieJar();
    // Stop before the form post, keep the flow cookie, then post twice.
    const { form, flow } = await launchForm(platform.url, 'moodle', jar, 'replayer');
    const cookie = `${flow.name}=${flow.value}`;
    const ok = await postLaunch(worker, form, cookie);
    assert.equal(ok.status, 302);
    await ok.arrayBuffer();
    const from = hub.requests.length;
    const replay = await postLaunch(worker, form, cookie);
    assert.equal(replay.status, 401);
    assert.equal((await replay.json()).error, 'Not signed in');
    assert.ok(setCookieFor(replay.headers.getSetCookie(), flow.name).some(isDeletion), 'the failed launch clears its flow cookie');
    assert.deepEqual(setCookieFor(replay.headers.getSetCookie(), 'hubgate'), [], 'no session');
    assert.equal(hub.requests.length, from, 'the hub never sees the replay');
    assert.ok(await waitForLog(worker, (l) => l.event === 'error' && l.kind === 'lti' && String(l.detail).includes('nonce was already used')));
    // And without the flow cookie the state check refuses it first.
    const bare = await postLaunch(worker, form);
    assert.equal(bare.status, 400);
  });

  test('20 concurrent launch posts with one state give exactly one session (LTI, Durable Object store: one 302, 19 × 401)', async () => {
    const N = 20;
    const jar = cookieJar();
    const { form, flow } = await launchForm(platform.url, 'moodle', jar, 'racer');
    const from = hub.requests.length;
    const rs = await Promise.all(Array.from({ length: N }, () => postLaunch(worker, form, `${flow.name}=${flow.value}`)));
    for (const r of rs) await r.arrayBuffer();
    const statuses = rs.map((r) => r.status).sort();
    assert.deepEqual(statuses, [302, ...Array(N - 1).fill(401)], `statuses: ${statuses.join(',')}`);
    const sessions = rs.filter((r) => setCookieFor(r.headers.getSetCookie(), 'hubgate').some((c) => !isDeletion(c)));
    assert.equal(sessions.length, 1, 'exactly one session minted');
    const logins = hubLogins(hub, from);
    assert.equal(logins.length, 1, 'one hub login');
    checkHubLogin(assert, logins[0], { user: 'moodle:racer@example.edu' });
    assert.equal(hub.requests.length - from, 1, 'nothing else reached the hub');
  });

  test('a state cut inside a multi-byte character is 400 and the isolate keeps serving (LTI launch)', async () => {
    const jar = cookieJar();
    const { form, flow } = await launchForm(platform.url, 'moodle', jar, 'bytes');
    const state = form.fields.state;
    const mark = logMark(worker);
    const from = hub.requests.length;
    for (const b of [`${state.slice(0, 15)}é${state.slice(15)}`, `${state.slice(0, 14)}😀${state.slice(14)}`, 'é'.repeat(40)]) {
      const r = await postLaunch(worker, { fields: { ...form.fields, state: b } }, `${flow.name}=${flow.value}`);
      assert.equal(r.status, 400, JSON.stringify(b));
      await r.arrayBuffer();
    }
    const raw = await worker.fetch('/hub/lti13/oauth_callback', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: `state=${state.slice(0, 15)}%C3%A9%FF&id_token=${form.fields.id_token}`,
    });
    assert.equal(raw.status, 400);
    await raw.arrayBuffer();
    assert.equal(hub.requests.length, from);
    const health = await worker.fetch('/_hubgate/health');
    assert.equal(health.status, 200);
    await health.arrayBuffer();
    const again = await ltiLaunch(platform, 'moodle', cookieJar(), { user: 'bytes', followAfter: false });
    assert.equal(again.launch.status, 302, again.launch.text);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(worker.logs.slice(mark).filter((l) => /panicked|RuntimeError|Reinitializing|Critical|unreachable/i.test(l)), []);
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
      assert.equal(r.final.json().hub_user, `flaky:s${i}@example.edu`);
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
    assert.equal(get.headers.get('allow'), 'POST');
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
      `[lti bench] workerd: ${BULK_LAUNCHES} launches, launch POST (id_token verify + one-time nonce + session + hub login) ` +
        `mean ${mean.toFixed(2)} ms, p50 ${pct(50).toFixed(2)} ms, p95 ${pct(95).toFixed(2)} ms, max ${times.at(-1).toFixed(2)} ms; ` +
        `(GET /hub/lti13/jwks round trip ${baseMean.toFixed(2)} ms, so ~${(mean - baseMean).toFixed(2)} ms of launch work); ` +
        `whole launch incl. platform ${(wall / BULK_LAUNCHES).toFixed(2)} ms; JWKS fetches: ${stats.jwks_fetches}`,
    );
  });
});

describe('LTI with one platform registered without a name, and ONE_TIME_STORE=kv', () => {
  let w;
  let h;
  let p;
  before(async () => {
    const port = await freePort();
    p = await startLtiPlatform({ port: await freePort(), tool: `http://127.0.0.1:${port}`, platforms: [{ name: 'solo', clientId: 'hubgate-solo', deploymentId: 'dep-solo' }] });
    h = await startHubEcho();
    w = await startWorker({
      port,
      durableObjects: null,
      bindings: {
        HUB_ORIGIN: h.url,
        SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
        LTI13_PLATFORMS: JSON.stringify([p.registration('solo')]),
        ONE_TIME_STORE: 'kv',
      },
    });
  });
  after(async () => {
    await Promise.allSettled([w?.close(), h?.close(), p?.close()]);
  });

  test("one login source: the username is the platform's as is; course groups carry the issuer's host as the platform name", async () => {
    const from = h.requests.length;
    const { launch } = await ltiLaunch(p, 'solo', cookieJar(), { user: 'student1', roles: 'Instructor' });
    assert.equal(launch.status, 302, launch.text);
    checkHubLogin(assert, hubLogins(h, from)[0], { user: 'student1@example.edu', groups: courseGroups('127.0.0.1'), admin: true });
  });

  test('with ONE_TIME_STORE=kv and NONCES bound a replayed LTI launch is still refused sequentially (401)', async () => {
    const jar = cookieJar();
    const { form, flow } = await launchForm(p.url, 'solo', jar, 'replayer');
    const cookie = `${flow.name}=${flow.value}`;
    const ok = await postLaunch(w, form, cookie);
    assert.equal(ok.status, 302);
    await ok.arrayBuffer();
    const from = h.requests.length;
    const replay = await postLaunch(w, form, cookie);
    assert.equal(replay.status, 401);
    await replay.arrayBuffer();
    assert.equal(h.requests.length, from, 'the hub never sees the replay');
    assert.ok(await waitForLog(w, (l) => l.kind === 'lti' && String(l.detail).includes('nonce was already used')));
  });
});

describe('LTI: two platforms on one host, registered without names', () => {
  let w;
  let h;
  let p;
  const TWO = [
    { name: 'east', clientId: 'hubgate-east', deploymentId: 'dep-east' },
    { name: 'west', clientId: 'hubgate-west', deploymentId: 'dep-west' },
  ];
  before(async () => {
    const port = await freePort();
    p = await startLtiPlatform({ port: await freePort(), tool: `http://127.0.0.1:${port}`, platforms: TWO });
    h = await startHubEcho();
    w = await startWorker({
      port,
      bindings: {
        HUB_ORIGIN: h.url,
        SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
        // both issuers are http://127.0.0.1:<port>/p/…: the same host
        LTI13_PLATFORMS: JSON.stringify(TWO.map((x) => p.registration(x.name))),
      },
    });
  });
  after(async () => {
    await Promise.allSettled([w?.close(), h?.close(), p?.close()]);
  });

  test('the same user name at two platforms never becomes one hub user (distinct namespaces, or the configuration is refused)', async () => {
    const health = await w.fetch('/_hubgate/health');
    await health.arrayBuffer();
    if (health.status === 500) {
      // refusing the ambiguous configuration is an answer too, if it says why
      const line = await waitForLog(w, (l) => l.event === 'error' && l.kind === 'config');
      assert.match(line?.detail ?? '', /LTI13_PLATFORMS|name/);
      return;
    }
    assert.equal(health.status, 200);
    const from = h.requests.length;
    const e = await ltiLaunch(p, 'east', cookieJar(), { user: 'student1', followAfter: false });
    const x = await ltiLaunch(p, 'west', cookieJar(), { user: 'student1', followAfter: false });
    assert.equal(e.launch.status, 302, e.launch.text);
    assert.equal(x.launch.status, 302, x.launch.text);
    const [le, lw] = hubLogins(h, from);
    assert.notEqual(
      le.headers['x-forwarded-user'],
      lw.headers['x-forwarded-user'],
      `a launch from the second platform logs in the first platform's user ${le.headers['x-forwarded-user']}`,
    );
    assert.notEqual(le.headers['x-forwarded-groups'], lw.headers['x-forwarded-groups'], 'course groups of two platforms collide');
  });
});
