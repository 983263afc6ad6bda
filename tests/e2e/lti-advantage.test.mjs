// LTI Advantage services end to end: the built worker in workerd (Miniflare)
// against a stand-in LTI 1.3 platform with the Advantage services
// (tests/e2e/support/lti-advantage-platform.mjs: Names and Roles
// Provisioning Services 2.0, Assignment and Grade Services 2.0, and an
// OAuth 2.0 token endpoint taking an RFC 7523 client assertion, which it
// verifies against the worker's /hub/lti13/jwks).
//
// What the worker is expected to do (see the comments marked "Reading:"
// where the description left a choice and the spec-conformant one was taken):
// - Names and Roles at launch: a launch carrying the NRPS claim, from a
//   platform registered with `token_url`, makes the worker get a platform
//   token (client credentials + signed assertion, cached until it expires),
//   read the whole roster (following `Link: <…>; rel="next"`), keep it for
//   LTI13_ROSTER_TTL seconds, and add `lti:<platform>:<context id>:<Role>`
//   (the part of each roster role URI after `#`) to the groups the hub gets,
//   for an Active member only. A token or roster failure never fails the
//   launch (logged as `nrps_failed`).
// - Assignment and Grade: /_hubgate/lti/ags/lineitems (GET, POST) and
//   /_hubgate/lti/ags/scores (POST) for `course=<platform>:<context id>`,
//   authenticated with `Bearer <LTI13_SERVICE_SECRET>` or a JupyterHub API
//   token (`token <t>`, checked at the hub's /hub/api/user: a service, or an
//   admin user).
//
// The hub here is hub-echo (support/hub-echo.mjs, unchanged) behind a small
// front (below) that answers GET /hub/api/user from a token table the way
// JupyterHub's SelfAPIHandler does, and passes everything else to hub-echo,
// so the worker's login subrequests are recorded as in the other suites.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { startWorker, cookieJar } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import { freePort, listen, closeServer } from './support/ports.mjs';
import { hubLogins, waitForLog, logMark } from './support/oauth-helpers.mjs';
import { startAdvantagePlatform, advLaunch, member, SCOPES, MEDIA, ASSERTION_TYPE, ISO_8601, ROLE } from './support/lti-advantage-platform.mjs';

/** At least 32 characters (the worker refuses a shorter LTI13_SERVICE_SECRET). */
const SERVICE_SECRET = crypto.randomBytes(32).toString('base64url');
const hubToken = () => crypto.randomBytes(16).toString('hex');
const TOKENS = { service: hubToken(), admin: hubToken(), user: hubToken(), unknown: hubToken() };
/** What the hub's GET /hub/api/user answers for each token (JupyterHub 5 models, trimmed). */
const HUB_TOKEN_MODELS = {
  [TOKENS.service]: { kind: 'service', name: 'grader', admin: false, roles: [], scopes: ['read:users'] },
  [TOKENS.admin]: { kind: 'user', name: 'teacher', admin: true, groups: [], roles: ['admin', 'user'], scopes: ['admin:users', 'admin:servers'] },
  [TOKENS.user]: { kind: 'user', name: 'student', admin: false, groups: [], roles: ['user'], scopes: ['access:servers!user=student'] },
};
const TEASSISTANT = 'http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant';

let worker;
let echo;
let hub;
let lms;
let gone;
let trap;

/**
 * The hub: GET <base>hub/api/user from `HUB_TOKEN_MODELS` (`Authorization:
 * token <t>` or `Bearer <t>`, as JupyterHub accepts both; a token naming no
 * one is 403, as JupyterHub answers), everything else passed to hub-echo.
 */
async function startHubFront(upstream, models) {
  const apiUser = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://hub.invalid');
    if (url.pathname.endsWith('/hub/api/user')) {
      req.resume();
      apiUser.push({ at: Date.now(), method: req.method, authorization: req.headers.authorization, headers: { ...req.headers } });
      const m = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      const model = m ? models[m[1]] : undefined;
      let status = 200;
      let body = { ...model, token_id: 'a1', session_id: null };
      if (req.method !== 'GET') [status, body] = [405, { status: 405, message: 'Method Not Allowed' }];
      else if (!model) [status, body] = [403, { status: 403, message: 'Forbidden' }];
      res.writeHead(status, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(body));
    }
    const up = http.request({ host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (e) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`hub front: ${e.message}`);
      } else res.destroy();
    });
    req.pipe(up);
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, port, apiUser, close: () => closeServer(server) };
}

/** Another origin that must never be called: records whatever reaches it. */
async function startTrap() {
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    req.resume();
    res.writeHead(204);
    res.end();
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, requests, close: () => closeServer(server) };
}

// ---------------------------------------------------------------------------
// Helpers

/** The groups the hub received in the login subrequest, sorted. */
const groupsOf = (login) =>
  (login.headers['x-forwarded-groups'] ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean)
    .sort();

/** The course groups `lti:<p>:<id>`, `lti:<p>:<label>` and one `lti:<p>:<id>:<Role>` per role, sorted. */
const expectedGroups = (p, id, label, roles = []) => [`lti:${p}:${id}`, `lti:${p}:${label}`, ...roles.map((r) => `lti:${p}:${id}:${r}`)].sort();

/**
 * A launch of `user` at platform `name` of `server` (the stand-in), up to the
 * worker's answer to the form post; the hub login it made, the username and
 * the groups the hub got.
 */
async function launch(server, name, user, opts = {}) {
  const from = echo.requests.length;
  const r = await advLaunch(server, name, cookieJar(), { user, followAfter: false, ...opts });
  assert.equal(r.launch.status, 302, `launch of ${user} at ${name}: ${r.launch.status} ${r.launch.text.slice(0, 300)}`);
  const logins = hubLogins(echo, from);
  assert.equal(logins.length, 1, `one hub login for the launch of ${user}`);
  const [login] = logins;
  assert.equal(login.loggedIn, login.headers['x-forwarded-user'], 'the hub logged the user in');
  return { ...r, login, username: login.headers['x-forwarded-user'], groups: groupsOf(login) };
}

const authSecret = () => `Bearer ${SERVICE_SECRET}`;

/** A request to the worker's service endpoint; JSON in, JSON (when any) out. */
async function svc(path, { method = 'GET', authorization = authSecret(), body, headers = {} } = {}) {
  const h = { accept: 'application/json', ...headers };
  if (authorization !== null) h.authorization = authorization;
  if (body !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
  const res = await worker.fetch(path, { method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const qs = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v !== undefined)).toString();
const lineitemsPath = (course) => `/_hubgate/lti/ags/lineitems?${qs({ course })}`;
const scoresPath = (course, user, lineitem) => `/_hubgate/lti/ags/scores?${qs({ course, user, lineitem })}`;
const isSuccess = (s) => s >= 200 && s < 300;
/** Pretty JSON for assertion messages. */
const show = (x) => JSON.stringify(x, null, 1);

// ---------------------------------------------------------------------------

before(async () => {
  const workerPort = await freePort();
  const tool = `http://127.0.0.1:${workerPort}`;
  lms = await startAdvantagePlatform({
    tool,
    port: await freePort(),
    platforms: [
      { name: 'adv', clientId: 'hubgate-adv', deploymentId: 'dep-adv' },
      { name: 'tok', clientId: 'hubgate-tok', deploymentId: 'dep-tok' },
      { name: 'short', clientId: 'hubgate-short', deploymentId: 'dep-short', expiresIn: 2 },
      { name: 'notok', clientId: 'hubgate-notok', deploymentId: 'dep-notok' },
      { name: 'plain', clientId: 'hubgate-plain', deploymentId: 'dep-plain' },
    ],
  });
  // a platform on its own server, closed by the "unreachable" test
  gone = await startAdvantagePlatform({ tool, port: await freePort(), platforms: [{ name: 'gone', clientId: 'hubgate-gone', deploymentId: 'dep-gone' }] });
  trap = await startTrap();
  echo = await startHubEcho();
  hub = await startHubFront(echo, HUB_TOKEN_MODELS);
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  worker = await startWorker({
    port: workerPort,
    bindings: {
      HUB_ORIGIN: hub.url,
      SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
      LTI13_PLATFORMS: JSON.stringify([
        lms.registration('adv'),
        lms.registration('tok'),
        lms.registration('short'),
        lms.registration('notok'),
        // no token_url: services are off for this platform
        lms.registration('plain', { tokenUrl: false }),
        gone.registration('gone'),
      ]),
      LTI13_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      LTI13_SERVICE_SECRET: SERVICE_SECRET,
      LTI13_ROSTER_TTL: '300',
    },
  });
  const health = await worker.fetch('/_hubgate/health');
  const healthText = await health.text();
  assert.equal(health.status, 200, `the worker refused its configuration: ${healthText}\n${worker.logs.join('\n')}`);
});

after(async () => {
  await Promise.allSettled([worker?.close(), hub?.close(), echo?.close(), lms?.close(), gone?.close(), trap?.close()]);
});

// ---------------------------------------------------------------------------

describe('Names and Roles at launch: roster roles become course role groups', () => {
  const adv = () => lms.state('adv');

  test('roster roles give role groups (instructor, learner, a sub-role); the roster, not the launch roles, decides', async () => {
    lms.setRoster('adv', 'course-7', [
      member('ann', ['Instructor']),
      member('bob', ['Learner']),
      // Reading: "the part after #" of each role URI, so a sub-role URI
      // (…/membership/Instructor#TeachingAssistant) gives `TeachingAssistant`.
      member('dan', ['Instructor', TEASSISTANT]),
    ]);
    const ann = await launch(lms, 'adv', 'ann', { roles: 'Instructor' });
    assert.deepEqual(ann.groups, expectedGroups('adv', 'course-7', 'ADV7', ['Instructor']));
    const bob = await launch(lms, 'adv', 'bob', { roles: 'Learner' });
    assert.deepEqual(bob.groups, expectedGroups('adv', 'course-7', 'ADV7', ['Learner']));
    // dan's launch says Learner, the roster says Instructor and TA: groups follow the roster
    const dan = await launch(lms, 'adv', 'dan', { roles: 'Learner' });
    assert.deepEqual(dan.groups, expectedGroups('adv', 'course-7', 'ADV7', ['Instructor', 'TeachingAssistant']));

    const nrps = adv().service('nrps', 'course-7');
    assert.ok(nrps.length >= 1, 'the roster was read');
    for (const r of nrps) {
      assert.equal(r.status, 200, show(r));
      assert.equal(r.method, 'GET');
      assert.ok(r.headers.accept.split(',').some((t) => t.split(';')[0].trim() === MEDIA.membership), `Accept: ${r.headers.accept}`);
      assert.ok(r.scopes.includes(SCOPES.nrps), `token scopes ${r.scopes}`);
    }
    assert.equal(new URL(nrps[0].url).pathname, new URL(lms.membershipsUrl('adv', 'course-7')).pathname);
    assert.deepEqual(adv().problems, []);
  });

  test('the whole roster is read: each Link rel="next" page is followed (5 members, 2 a page: 3 requests)', async () => {
    lms.addContext('adv', { id: 'course-8', label: 'ADV8', title: 'Advantage 8' });
    // the launching user is the last member: on page 3
    lms.setRoster('adv', 'course-8', [member('p1'), member('p2'), member('p3'), member('p4'), member('ivy', ['Instructor'])]);
    const ivy = await launch(lms, 'adv', 'ivy', { roles: 'Instructor', context: 'course-8' });
    assert.deepEqual(ivy.groups, expectedGroups('adv', 'course-8', 'ADV8', ['Instructor']));
    const pages = lms.state('adv').service('nrps', 'course-8');
    assert.equal(pages.length, 3, pages.map((p) => p.url).join('\n'));
    assert.equal(pages[0].url.split('?')[0], lms.membershipsUrl('adv', 'course-8'), 'the first page is the claim URL');
    for (let i = 1; i < pages.length; i += 1) {
      assert.equal(pages[i].url, pages[i - 1].next, 'each further page is the previous Link rel="next" URL, as given');
    }
    assert.equal(pages.at(-1).next, undefined, 'the last page has no next link');
    assert.ok(pages.every((p) => p.status === 200));
    assert.deepEqual(lms.state('adv').problems, []);
  });

  test('the roster is cached for LTI13_ROSTER_TTL: a second launch in the course asks the platform nothing', async () => {
    lms.addContext('adv', { id: 'course-9', label: 'ADV9', title: 'Advantage 9' });
    lms.setRoster('adv', 'course-9', [member('kim'), member('lee')]);
    const kim = await launch(lms, 'adv', 'kim', { context: 'course-9' });
    assert.deepEqual(kim.groups, expectedGroups('adv', 'course-9', 'ADV9', ['Learner']));
    const rosterReads = adv().service('nrps', 'course-9').length;
    assert.equal(rosterReads, 1, 'two members: one page');
    const tokenRequests = adv().tokenRequests.length;
    const allRequests = adv().requests.length;
    // the platform's roster changes; within the TTL the worker still uses what it read
    lms.setRoster('adv', 'course-9', [member('kim'), member('lee', ['Instructor'])]);
    const lee = await launch(lms, 'adv', 'lee', { context: 'course-9' });
    assert.deepEqual(lee.groups, expectedGroups('adv', 'course-9', 'ADV9', ['Learner']), 'the cached roster, not the changed one');
    const again = await launch(lms, 'adv', 'kim', { context: 'course-9' });
    assert.deepEqual(again.groups, kim.groups);
    assert.equal(adv().service('nrps', 'course-9').length, rosterReads, 'no new roster request');
    assert.equal(adv().tokenRequests.length, tokenRequests, 'no new token request');
    // what did reach the platform are the launches' own steps: no token, no roster page
    const since = adv().requests.slice(allRequests).map((r) => r.path);
    assert.deepEqual(since.filter((p) => p.endsWith('/token') || p.includes('/nrps/')), []);
  });

  test('an Inactive member gets no role group; a member without status counts as Active; a non-member only the course groups', async () => {
    lms.addContext('adv', { id: 'course-10', label: 'ADV10', title: 'Advantage 10' });
    lms.setRoster('adv', 'course-10', [
      member('max', ['Instructor'], 'Inactive'),
      // Reading: NRPS 2.0 says a member without `status` is Active
      member('ned', ['Learner'], null),
      member('ola', ['Instructor']),
    ]);
    const max = await launch(lms, 'adv', 'max', { roles: 'Instructor', context: 'course-10' });
    assert.deepEqual(max.groups, expectedGroups('adv', 'course-10', 'ADV10'), 'inactive: course groups only');
    const ned = await launch(lms, 'adv', 'ned', { context: 'course-10' });
    assert.deepEqual(ned.groups, expectedGroups('adv', 'course-10', 'ADV10', ['Learner']));
    const zed = await launch(lms, 'adv', 'zed', { context: 'course-10' });
    assert.deepEqual(zed.groups, expectedGroups('adv', 'course-10', 'ADV10'), 'not on the roster: course groups only');
  });

  test('a launch without the NRPS claim reads no roster', async () => {
    lms.addContext('adv', { id: 'course-11', label: 'ADV11', title: 'Advantage 11' });
    lms.setRoster('adv', 'course-11', [member('pia', ['Instructor'])]);
    const pia = await launch(lms, 'adv', 'pia', { roles: 'Instructor', context: 'course-11', nrps: false });
    assert.deepEqual(pia.groups, expectedGroups('adv', 'course-11', 'ADV11'));
    assert.equal(adv().service('nrps', 'course-11').length, 0);
  });

  test('a roster failure does not fail the launch: the claim groups only, and `nrps_failed` logged', async () => {
    lms.addContext('adv', { id: 'course-12', label: 'ADV12', title: 'Advantage 12' });
    lms.setRoster('adv', 'course-12', [member('quin', ['Instructor'])]);
    const mark = logMark(worker);
    adv().fail.nrps = 500;
    try {
      const quin = await launch(lms, 'adv', 'quin', { roles: 'Instructor', context: 'course-12' });
      assert.deepEqual(quin.groups, expectedGroups('adv', 'course-12', 'ADV12'));
    } finally {
      adv().fail.nrps = null;
    }
    assert.ok(adv().service('nrps', 'course-12').length >= 1, 'the roster was asked for');
    // Reading: "logs nrps_failed" — the event name, or a field's value, of one JSON log line
    assert.ok(await waitForLog(worker, (l) => JSON.stringify(l).includes('nrps_failed'), { from: mark }), `no nrps_failed log line:\n${worker.logs.slice(-20).join('\n')}`);
  });

  test('a platform registered without token_url: no token, no roster, the claim groups only', async () => {
    lms.setRoster('plain', 'course-7', [member('rae', ['Instructor'])]);
    const rae = await launch(lms, 'plain', 'rae', { roles: 'Instructor' });
    assert.deepEqual(rae.groups, expectedGroups('plain', 'course-7', 'ADV7'));
    assert.equal(lms.state('plain').tokenRequests.length, 0);
    assert.equal(lms.state('plain').serviceRequests.length, 0);
  });
});

describe('platform access tokens', () => {
  test('a token failure does not fail the launch: the claim groups only, no roster request, `nrps_failed` logged', async () => {
    const P = lms.state('notok');
    lms.setRoster('notok', 'course-7', [member('sal', ['Instructor'])]);
    P.fail.token = 503;
    const mark = logMark(worker);
    try {
      const sal = await launch(lms, 'notok', 'sal', { roles: 'Instructor' });
      assert.deepEqual(sal.groups, expectedGroups('notok', 'course-7', 'ADV7'));
    } finally {
      P.fail.token = null;
    }
    assert.ok(P.tokenRequests.length >= 1, 'a token was asked for');
    assert.equal(P.serviceRequests.length, 0, 'no roster request without a token');
    assert.ok(await waitForLog(worker, (l) => JSON.stringify(l).includes('nrps_failed'), { from: mark }), `no nrps_failed log line:\n${worker.logs.slice(-20).join('\n')}`);
  });

  test('one token per scope, cached across NRPS and AGS calls (two courses, every AGS call twice); the client assertion is as LTI Security 4.1 says', async () => {
    const P = lms.state('tok');
    lms.addContext('tok', { id: 'course-8', label: 'TOK8', title: 'Token 8' });
    lms.setRoster('tok', 'course-7', [member('ann', ['Instructor'])]);
    lms.setRoster('tok', 'course-8', [member('bob', ['Learner'])]);

    const ann = await launch(lms, 'tok', 'ann', { roles: 'Instructor' });
    assert.deepEqual(ann.groups, expectedGroups('tok', 'course-7', 'ADV7', ['Instructor']));
    assert.equal(P.grants(SCOPES.nrps).length, 1, 'one token for the roster');
    const afterFirst = P.tokenRequests.length;
    const bob = await launch(lms, 'tok', 'bob', { context: 'course-8' });
    assert.deepEqual(bob.groups, expectedGroups('tok', 'course-8', 'TOK8', ['Learner']));
    assert.equal(P.tokenRequests.length, afterFirst, 'the second course reuses the token');
    const [r7, r8] = [P.service('nrps', 'course-7')[0], P.service('nrps', 'course-8')[0]];
    assert.equal(r7.token, r8.token, 'the same platform token for both rosters');

    const course = 'tok:course-7';
    const round = async (i) => {
      const list = await svc(lineitemsPath(course));
      assert.equal(list.status, 200, list.text);
      const made = await svc(lineitemsPath(course), { method: 'POST', body: { label: `Lab ${i}`, scoreMaximum: 5 } });
      assert.equal(made.status, 201, made.text);
      // lineitem omitted: the launch's AGS claim named one
      const score = await svc(scoresPath(course, ann.username), { method: 'POST', body: { scoreGiven: i, scoreMaximum: 5 } });
      assert.ok(isSuccess(score.status), `${score.status} ${score.text}`);
    };
    await round(1);
    const afterRound1 = P.tokenRequests.length;
    await round(2);
    assert.equal(P.tokenRequests.length, afterRound1, 'the second round of AGS calls asks for no token');

    // Per scope: asked for once at most; the ones the calls need exactly once.
    // Reading: "cached per scope" allows one token per scope or one token for
    // several scopes; neither asks again for a scope it already holds.
    for (const s of Object.values(SCOPES)) {
      const n = P.tokenRequests.filter((r) => r.requested.includes(s)).length;
      assert.ok(n <= 1, `scope ${s} requested ${n} times`);
    }
    for (const s of [SCOPES.nrps, SCOPES.lineitem, SCOPES.score]) assert.equal(P.grants(s).length, 1, `one grant of ${s}`);
    assert.ok(P.tokenRequests.every((r) => r.status === 200), show(P.tokenRequests.map((r) => [r.status, r.error, r.description])));
    assert.ok(P.serviceRequests.every((r) => isSuccess(r.status)), show(P.serviceRequests.map((r) => [r.kind, r.status])));
    const needs = { nrps: [SCOPES.nrps], 'lineitems.get': [SCOPES.lineitem, SCOPES.lineitemReadonly], 'lineitems.post': [SCOPES.lineitem], 'scores.post': [SCOPES.score] };
    for (const r of P.serviceRequests) assert.ok(needs[r.kind].some((s) => r.scopes.includes(s)), `${r.kind} with ${r.scopes}`);

    // The client assertion (IMS Security Framework 4.1, RFC 7523 3)
    const toolKeys = await (await worker.fetch('/hub/lti13/jwks')).json();
    const jtis = new Set();
    for (const r of P.tokenRequests) {
      assert.equal(r.form.grant_type, 'client_credentials');
      assert.equal(r.form.client_assertion_type, ASSERTION_TYPE);
      assert.equal(r.header.alg, 'RS256');
      assert.deepEqual(toolKeys.keys.map((k) => k.kid), [r.header.kid], 'signed with the key published at /hub/lti13/jwks');
      assert.equal(r.claims.iss, 'hubgate-tok');
      assert.equal(r.claims.sub, 'hubgate-tok');
      assert.ok([].concat(r.claims.aud).includes(lms.tokenUrl('tok')), `aud ${r.claims.aud}`);
      assert.ok(r.claims.exp * 1000 > r.at, 'exp in the future when sent');
      assert.equal(typeof r.claims.iat, 'number');
      assert.ok(!jtis.has(r.claims.jti), 'a fresh jti each time');
      jtis.add(r.claims.jti);
    }
    assert.deepEqual(P.problems, []);
  });

  test('an expired platform token is not used again: a new one is asked for', async () => {
    const P = lms.state('short'); // grants tokens for 2 seconds
    lms.addContext('short', { id: 'course-8', label: 'SH8', title: 'Short 8' });
    lms.setRoster('short', 'course-7', [member('cy')]);
    lms.setRoster('short', 'course-8', [member('dee')]);
    const cy = await launch(lms, 'short', 'cy');
    assert.deepEqual(cy.groups, expectedGroups('short', 'course-7', 'ADV7', ['Learner']));
    assert.equal(P.grants(SCOPES.nrps).length, 1);
    await new Promise((r) => setTimeout(r, 2500));
    const dee = await launch(lms, 'short', 'dee', { context: 'course-8' });
    assert.deepEqual(dee.groups, expectedGroups('short', 'course-8', 'SH8', ['Learner']));
    assert.equal(P.grants(SCOPES.nrps).length, 2, 'a second token after the first expired');
    assert.notEqual(P.service('nrps', 'course-8')[0].token, P.service('nrps', 'course-7')[0].token);
    assert.deepEqual(P.problems, [], 'no request with an expired token');
  });
});

describe('Assignment and Grade Services through /_hubgate/lti/ags', () => {
  const adv = () => lms.state('adv');
  const COURSE = 'adv:course-7';
  const users = {};
  before(async () => {
    lms.addContext('adv', { id: 'course-20', label: 'ADV20', title: 'Advantage 20' });
    // line item ids with a query string (AGS 2.0: /scores goes on the path, the query stays)
    lms.addContext('adv', { id: 'course-21', label: 'ADV21', title: 'Advantage 21', idQuery: 'type_id=1' });
    lms.addContext('adv', { id: 'course-22', label: 'ADV22', title: 'Advantage 22' });
    users.ann = (await launch(lms, 'adv', 'ann', { roles: 'Instructor' })).username;
    users.bob = (await launch(lms, 'adv', 'bob', { roles: 'Learner' })).username;
    users.zed = (await launch(lms, 'adv', 'zed', { context: 'course-20' })).username;
    users.uma = (await launch(lms, 'adv', 'uma', { context: 'course-21' })).username;
    users.vic = (await launch(lms, 'adv', 'vic', { context: 'course-22', ags: false })).username;
    assert.equal(users.bob, 'adv:bob@example.edu', 'several platforms: usernames carry the platform name');
  });

  test("GET lineitems: the platform's line items (status and JSON body passed through)", async () => {
    const from = adv().serviceRequests.length;
    const apiFrom = hub.apiUser.length;
    const r = await svc(lineitemsPath(COURSE));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, lms.lineItems('adv', 'course-7'));
    const [got, ...more] = adv().serviceRequests.slice(from);
    assert.deepEqual(more, []);
    assert.equal(got.kind, 'lineitems.get');
    assert.equal(got.url, lms.lineItemsUrl('adv', 'course-7'), "the claim's lineitems URL");
    assert.ok(got.scopes.includes(SCOPES.lineitem) || got.scopes.includes(SCOPES.lineitemReadonly));
    assert.equal(hub.apiUser.length, apiFrom, 'the service secret needs no hub check');
    assert.deepEqual(adv().problems, []);
  });

  test('POST lineitems: created at the platform (201 passed through), as a line item with the lineitem scope', async () => {
    const from = adv().serviceRequests.length;
    const item = { label: 'Lab 2', scoreMaximum: 20, resourceId: 'lab2', tag: 'lab' };
    const r = await svc(lineitemsPath(COURSE), { method: 'POST', body: item });
    assert.equal(r.status, 201, r.text);
    const created = lms.lineItems('adv', 'course-7').at(-1);
    assert.deepEqual(r.json, created);
    assert.deepEqual(r.json, { id: `${lms.lineItemsUrl('adv', 'course-7')}/${lms.lineItems('adv', 'course-7').length}`, ...item });
    const got = adv().serviceRequests.slice(from).find((x) => x.kind === 'lineitems.post');
    assert.equal(got.url, lms.lineItemsUrl('adv', 'course-7'));
    assert.equal(got.headers['content-type'].split(';')[0].trim(), MEDIA.lineItem);
    assert.ok(got.scopes.includes(SCOPES.lineitem));
    // Reading: the line item goes to the platform as given
    assert.deepEqual(got.json, item);
    const list = await svc(lineitemsPath(COURSE));
    assert.ok(list.json.some((x) => x.id === created.id && x.label === 'Lab 2'));
    // the platform refuses a line item without scoreMaximum: 400, nothing created
    const count = lms.lineItems('adv', 'course-7').length;
    const bad = await svc(lineitemsPath(COURSE), { method: 'POST', body: { label: 'No maximum' } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(lms.lineItems('adv', 'course-7').length, count);
    assert.deepEqual(adv().problems, []);
  });

  test("POST scores: the platform gets exactly a score for the user's launch sub, timestamp by the worker, Completed / FullyGraded by default", async () => {
    const lineitem = lms.lineItems('adv', 'course-7')[0].id;
    const from = adv().serviceRequests.length;
    const t0 = Date.now();
    const r = await svc(scoresPath(COURSE, users.bob, lineitem), { method: 'POST', body: { scoreGiven: 8.5, scoreMaximum: 10, comment: 'Well done' } });
    const t1 = Date.now();
    assert.ok(isSuccess(r.status), `${r.status} ${r.text}`);
    const got = adv().serviceRequests.slice(from);
    assert.equal(got.length, 1, show(got.map((x) => x.kind)));
    const [s] = got;
    assert.equal(s.kind, 'scores.post');
    assert.equal(s.method, 'POST');
    assert.equal(s.url, `${lineitem}/scores`);
    assert.equal(s.headers['content-type'].split(';')[0].trim(), MEDIA.score);
    assert.ok(s.scopes.includes(SCOPES.score), `token scopes ${s.scopes}`);
    assert.ok(isSuccess(s.status), show(s.errors));
    const { timestamp, ...rest } = s.json;
    assert.deepEqual(rest, {
      userId: lms.subOf('adv', 'bob'),
      scoreGiven: 8.5,
      scoreMaximum: 10,
      comment: 'Well done',
      activityProgress: 'Completed',
      gradingProgress: 'FullyGraded',
    });
    assert.notEqual(rest.userId, 'bob');
    assert.match(timestamp, ISO_8601);
    const ts = Date.parse(timestamp);
    assert.ok(ts >= t0 - 2000 && ts <= t1 + 2000, `timestamp ${timestamp} not within the request`);
    assert.deepEqual(adv().problems, []);
  });

  test("POST scores: given progress values go as given; without lineitem, the launch's AGS lineitem", async () => {
    const from = adv().serviceRequests.length;
    adv().scoreStatus = 200; // this time the platform answers 200 with a JSON body (AGS allows 200 or 204)
    let r;
    try {
      r = await svc(scoresPath(COURSE, users.ann), {
        method: 'POST',
        body: { scoreGiven: 3, scoreMaximum: 10, activityProgress: 'Submitted', gradingProgress: 'PendingManual' },
      });
    } finally {
      adv().scoreStatus = 204;
    }
    assert.ok(isSuccess(r.status), `${r.status} ${r.text}`);
    const [s] = adv().serviceRequests.slice(from).filter((x) => x.kind === 'scores.post');
    assert.equal(s.url, `${lms.lineItems('adv', 'course-7')[0].id}/scores`, "the launch claim's lineitem");
    const { timestamp, ...rest } = s.json;
    assert.deepEqual(rest, { userId: lms.subOf('adv', 'ann'), scoreGiven: 3, scoreMaximum: 10, activityProgress: 'Submitted', gradingProgress: 'PendingManual' });
    assert.match(timestamp, ISO_8601);
  });

  test('POST scores to a line item URL with a query: /scores goes on the path, the query stays (AGS 2.0)', async () => {
    const lineitem = lms.lineItems('adv', 'course-21')[0].id;
    assert.match(lineitem, /\?type_id=1$/);
    const from = adv().serviceRequests.length;
    const r = await svc(scoresPath('adv:course-21', users.uma, lineitem), { method: 'POST', body: { scoreGiven: 1, scoreMaximum: 10 } });
    assert.ok(isSuccess(r.status), `${r.status} ${r.text}`);
    const [s] = adv().serviceRequests.slice(from).filter((x) => x.kind === 'scores.post');
    assert.equal(s.url, `${lms.lineItemsUrl('adv', 'course-21')}/1/scores?type_id=1`);
    assert.ok(isSuccess(s.status));
  });

  test('404: a user who never launched from the course, an unknown user or course, a course launched without the AGS claim; nothing sent', async () => {
    const from = adv().serviceRequests.length;
    const lineitem = lms.lineItems('adv', 'course-7')[0].id;
    const cases = [
      // zed launched from course-20 only
      ['POST', scoresPath(COURSE, users.zed, lineitem), { scoreGiven: 1, scoreMaximum: 10 }],
      ['POST', scoresPath(COURSE, users.zed), { scoreGiven: 1, scoreMaximum: 10 }],
      ['POST', scoresPath(COURSE, 'adv:nobody@example.edu', lineitem), { scoreGiven: 1, scoreMaximum: 10 }],
      // the course-20 user is known, but not in course-7; and course-7's bob is not in course-20
      ['POST', scoresPath('adv:course-20', users.bob), { scoreGiven: 1, scoreMaximum: 10 }],
      ['GET', lineitemsPath('adv:course-99')],
      ['POST', lineitemsPath('adv:course-99'), { label: 'x', scoreMaximum: 1 }],
      ['POST', scoresPath('adv:course-99', users.bob, lineitem), { scoreGiven: 1, scoreMaximum: 10 }],
      ['GET', lineitemsPath('nosuch:course-7')],
      // Reading: the worker knows a course's AGS endpoints from launches; a
      // course whose launches carried no AGS claim has none: 404.
      ['GET', lineitemsPath('adv:course-22')],
      ['POST', scoresPath('adv:course-22', users.vic, lineitem), { scoreGiven: 1, scoreMaximum: 10 }],
      // Reading: services are off for a platform without token_url, so none of its courses is known here
      ['GET', lineitemsPath('plain:course-7')],
    ];
    for (const [method, path, body] of cases) {
      const r = await svc(path, { method, body });
      assert.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.text}`);
    }
    assert.deepEqual(adv().serviceRequests.slice(from).map((x) => `${x.kind} ${x.url}`), [], 'nothing reached the platform');
    assert.equal(lms.state('plain').tokenRequests.length + lms.state('plain').serviceRequests.length, 0);
  });

  test('a lineitem not on the origin of the course lineitems URL is 400 and is never called', async () => {
    const from = adv().serviceRequests.length;
    const reqFrom = adv().requests.length;
    const path1 = new URL(lms.lineItems('adv', 'course-7')[0].id).pathname;
    const foreign = [
      `${trap.url}${path1}`, // another port
      `http://localhost:${lms.port}${path1}`, // the same server under another host name: another origin
      `https://127.0.0.1:${lms.port}${path1}`, // another scheme
      'https://lms.invalid/lineitems/1',
    ];
    for (const lineitem of foreign) {
      const r = await svc(scoresPath(COURSE, users.bob, lineitem), { method: 'POST', body: { scoreGiven: 1, scoreMaximum: 10 } });
      assert.equal(r.status, 400, `${lineitem}: ${r.status} ${r.text}`);
    }
    assert.deepEqual(trap.requests, []);
    assert.deepEqual(adv().serviceRequests.slice(from), []);
    assert.deepEqual(adv().requests.slice(reqFrom).filter((x) => x.host !== `127.0.0.1:${lms.port}`), [], 'nothing under another host name');
  });

  test("no credentials, a wrong secret or an unknown hub token: 401; a non-admin user's hub token: 403; nothing reaches the platform", async () => {
    const lineitem = lms.lineItems('adv', 'course-7')[0].id;
    const endpoints = [
      ['GET', lineitemsPath(COURSE)],
      ['POST', lineitemsPath(COURSE), { label: 'Sneaky', scoreMaximum: 1 }],
      ['POST', scoresPath(COURSE, users.bob, lineitem), { scoreGiven: 10, scoreMaximum: 10 }],
    ];
    const attempts = [
      [null, 401],
      [`Bearer ${crypto.randomBytes(32).toString('base64url')}`, 401],
      [`Bearer ${SERVICE_SECRET.slice(0, -1)}`, 401],
      [SERVICE_SECRET, 401], // no scheme
      [`Basic ${Buffer.from(`x:${SERVICE_SECRET}`).toString('base64')}`, 401],
      [`token ${TOKENS.unknown}`, 401], // the hub answers 403 (JupyterHub does for a token naming no one): still "wrong credentials"
      [`token ${TOKENS.user}`, 403],
    ];
    const reqFrom = adv().requests.length;
    const apiFrom = hub.apiUser.length;
    for (const [method, path, body] of endpoints) {
      for (const [authorization, status] of attempts) {
        const r = await svc(path, { method, body, authorization });
        assert.equal(r.status, status, `${method} ${path} with ${authorization?.slice(0, 12)}…: ${r.status} ${r.text}`);
      }
    }
    assert.deepEqual(adv().requests.slice(reqFrom).map((x) => `${x.method} ${x.path}`), [], 'nothing reached the platform');
    const asked = hub.apiUser.slice(apiFrom);
    assert.ok(asked.some((a) => a.authorization === `token ${TOKENS.user}`), 'the user token was checked at the hub');
    assert.ok(asked.every((a) => a.method === 'GET'));
    // Reading: a `Bearer` credential that is not the secret may be tried at
    // the hub as an API token (JupyterHub takes `Bearer X` like `token X`);
    // the secret itself, and schemes other than token/Bearer, never go there.
    assert.ok(asked.every((a) => /^token \S+$/.test(a.authorization ?? '')), `hub checks: ${asked.map((a) => a.authorization?.slice(0, 8))}`);
    assert.ok(!asked.some((a) => a.authorization.includes(SERVICE_SECRET)), 'the service secret went to the hub');
  });

  test("an admin user's hub token and a hub service's token are allowed, checked at the hub's /hub/api/user with the same header", async () => {
    for (const tok of [TOKENS.admin, TOKENS.service]) {
      const apiFrom = hub.apiUser.length;
      const authorization = `token ${tok}`;
      const list = await svc(lineitemsPath(COURSE), { authorization });
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(list.json, lms.lineItems('adv', 'course-7'));
      const score = await svc(scoresPath(COURSE, users.bob, lms.lineItems('adv', 'course-7')[0].id), { method: 'POST', authorization, body: { scoreGiven: 9, scoreMaximum: 10 } });
      assert.ok(isSuccess(score.status), `${score.status} ${score.text}`);
      const asked = hub.apiUser.slice(apiFrom);
      assert.ok(asked.length >= 1, 'the token was checked at the hub');
      for (const a of asked) {
        assert.equal(a.method, 'GET');
        assert.equal(a.authorization, authorization);
      }
    }
    assert.deepEqual(adv().problems, []);
  });

  test('the platform unreachable: 502 (connection dropped; connection refused)', async () => {
    // dropped: the AGS endpoint resets the connection
    const ok = await svc(lineitemsPath(COURSE));
    assert.equal(ok.status, 200, ok.text);
    adv().fail.ags = 'reset';
    try {
      const r = await svc(lineitemsPath(COURSE));
      assert.equal(r.status, 502, r.text);
      const s = await svc(scoresPath(COURSE, users.bob, lms.lineItems('adv', 'course-7')[0].id), { method: 'POST', body: { scoreGiven: 1, scoreMaximum: 10 } });
      assert.equal(s.status, 502, s.text);
    } finally {
      adv().fail.ags = null;
    }
    // refused: the whole platform (token endpoint included) is gone
    gone.setRoster('gone', 'course-7', [member('wes', ['Instructor'])]);
    const wes = await launch(gone, 'gone', 'wes', { roles: 'Instructor' });
    assert.deepEqual(wes.groups, expectedGroups('gone', 'course-7', 'ADV7', ['Instructor']));
    const lineitem = gone.lineItems('gone', 'course-7')[0].id;
    await gone.close();
    const list = await svc(lineitemsPath('gone:course-7'));
    assert.equal(list.status, 502, list.text);
    const score = await svc(scoresPath('gone:course-7', wes.username, lineitem), { method: 'POST', body: { scoreGiven: 1, scoreMaximum: 10 } });
    assert.equal(score.status, 502, score.text);
    const health = await worker.fetch('/_hubgate/health');
    assert.equal(health.status, 200);
    await health.arrayBuffer();
  });
});

describe('what the worker keeps to itself', () => {
  test('no log line carries the service secret, a hub token, a platform access token or a client assertion', async () => {
    await new Promise((r) => setTimeout(r, 100)); // workerd's output arrives asynchronously
    const secrets = [SERVICE_SECRET, TOKENS.admin, TOKENS.service, TOKENS.user];
    for (const name of ['adv', 'tok', 'short', 'notok', 'plain']) {
      for (const r of lms.state(name).tokenRequests) {
        if (r.accessToken) secrets.push(r.accessToken);
        if (r.form?.client_assertion) secrets.push(r.form.client_assertion.split('.')[2]);
      }
    }
    for (const r of gone.state('gone').tokenRequests) if (r.accessToken) secrets.push(r.accessToken);
    assert.ok(secrets.length > 6, 'tokens were issued');
    const leaks = worker.logs.filter((l) => secrets.some((s) => l.includes(s)));
    assert.deepEqual(leaks, []);
  });

  test('the stand-in platforms found nothing wrong in what the worker sent them', () => {
    for (const name of ['adv', 'tok', 'short', 'notok', 'plain']) assert.deepEqual(lms.state(name).problems, [], name);
    assert.deepEqual(gone.state('gone').problems, []);
    assert.deepEqual(lms.strayRequests, []);
    // the role URIs the roster used are the LIS context role vocabulary
    assert.ok(lms.context('adv', 'course-7').roster.every((m) => m.roles.every((r) => r.startsWith(ROLE) || r === TEASSISTANT)));
  });
});
