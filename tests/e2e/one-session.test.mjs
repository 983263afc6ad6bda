// One browser, one session per context: the built worker on https (Miniflare's
// self-signed certificate on 127.0.0.1), the demo IdP, an LTI 1.3 platform and
// the echo hub, driven through ONE Chromium-like cookie store
// (support/chromium-jar.mjs) with two views, as one browser holds them:
//   top   = a top-level tab (the tool at https://127.0.0.1:<port>),
//   frame = the tool framed by the LMS page (http://127.0.0.1:<platform port>:
//           another site than the tool's, schemeful same-site), so the frame's
//           cookies live in the LMS partition and third-party cookies are
//           blocked unless a test says otherwise.
// The hub stand-in tells who it sees two ways: the identity on the worker's own
// login subrequest (X-Forwarded-User at GET /hub/login, what the worker hands
// it), and `hub_user` on a proxied request (the user its own cookies name).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startWorker, follow, clearIdpSession } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import { startIdp } from './support/idp.mjs';
import { freePort } from './support/ports.mjs';
import { startLtiPlatform, parseForm } from './support/lti-platform.mjs';
import { demoBindings, registerWorker, httpFetch, hubLogins, identityHeadersIn, isDeletion, trail } from './support/oauth-helpers.mjs';
import { chromiumJar } from './support/chromium-jar.mjs';

const SESSION = '__Host-hubgate';
const WORKER_SESSION = /^(__Host-)?hubgate$/;
const HUB_LOGIN_COOKIES = /^(__Host-)?(jupyterhub-hub-login|jupyterhub-session-id)$/;
const NAV = Object.freeze({
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
  'user-agent': 'hubgate-e2e/1 (chromium-jar)',
});
/** A navigation of the tool's iframe (the worker answers a framed login initiation with its page). */
const IN_FRAME = Object.freeze({ ...NAV, 'sec-fetch-dest': 'iframe' });
/** A script's fetch. */
const FETCH = Object.freeze({ accept: '*/*', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' });
const PLATFORM = { name: 'moodle', clientId: 'hubgate-moodle', deploymentId: 'dep-moodle' };

let worker;
let hub;
let idp;
let platform;
let STUDENT;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cookieNames = (header) => (header ? header.split('; ').map((p) => p.slice(0, p.indexOf('='))) : []);
const iatOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).iat;
/** Wait until the clock is past the second a session was issued in (the worker's iat has one-second resolution). */
async function afterIssued(token) {
  const wait = (iatOf(token) + 1) * 1000 - Date.now() + 50;
  if (wait > 0) await sleep(wait);
}
const tool = (path) => new URL(path, worker.url);
/** The worker's session cookies `view` sends to the tool (records, in Cookie header order). */
const sessionsSent = (view, path = '/hub/') => view.matching(tool(path)).filter((c) => WORKER_SESSION.test(c.name));
/** Names of the cookies `view` sends to the tool at `path`. */
const sentTo = (view, path = '/hub/') => cookieNames(view.header(tool(path)));

/** One request in `view`, no redirect followed. */
async function hop(view, path, headers = NAV, opts = {}) {
  const [entry] = await follow(httpFetch, tool(path), view, { headers, stopAt: () => true, ...opts });
  return entry;
}

/**
 * A launch inside the LMS frame, as Chromium runs it: the frame loads the platform's
 * launch start, which sends it to the tool's login initiation; the tool answers a framed
 * initiation with its page, whose script asks /_hubgate/lti/flow_check whether the
 * (partitioned) flow cookie came back and then goes to the platform's authorize URL;
 * the platform's auto-post form posts the id_token to the tool (a cross-site POST in the
 * frame), and the frame follows the tool's redirects to the hub.
 */
async function launchInFrame(frame, user) {
  const q = new URLSearchParams({ user, kind: 'resource', roles: 'Learner' });
  const first = await follow(httpFetch, `${platform.url}/p/${PLATFORM.name}/start?${q}`, frame, { headers: IN_FRAME });
  const page = first.at(-1);
  assert.equal(page.status, 200, `${trail(first)}\n${page.text.slice(0, 300)}`);
  assert.equal(new URL(page.url).pathname, '/hub/lti13/oauth_login', trail(first));
  const data = JSON.parse(/<script type="application\/json" id="hubgate-lti">([\s\S]*?)<\/script>/.exec(page.text)[1]);
  const check = await follow(httpFetch, tool(data.flow_check), frame, { headers: FETCH, navigate: false });
  assert.equal(check[0].status, 204, 'the partitioned flow cookie came back inside the frame');
  const auth = await follow(httpFetch, data.authorize, frame, { headers: IN_FRAME });
  const form = parseForm(auth.at(-1).text);
  const rest = await follow(httpFetch, new URL(form.action, worker.url), frame, {
    method: 'POST',
    body: new URLSearchParams(form.fields).toString(),
    headers: IN_FRAME,
    initiator: platform.url,
  });
  return { launch: rest[0], final: rest.at(-1), chain: [...first, ...check, ...auth, ...rest] };
}

/**
 * A launch the platform opens in a new window (top level): the LMS page navigates the tab
 * to its launch start, the tool's login initiation, the platform's authorize, then posts
 * the id_token to the tool from the platform's page (a cross-site top-level POST).
 */
async function launchAtTop(top, user) {
  const q = new URLSearchParams({ user, kind: 'resource', roles: 'Learner' });
  const first = await follow(httpFetch, `${platform.url}/p/${PLATFORM.name}/start?${q}`, top, { headers: NAV, initiator: platform.url });
  const authorize = first.at(-1);
  assert.equal(authorize.status, 200, trail(first));
  const form = parseForm(authorize.text);
  const rest = await follow(httpFetch, new URL(form.action, worker.url), top, {
    method: 'POST',
    body: new URLSearchParams(form.fields).toString(),
    headers: NAV,
    initiator: platform.url,
  });
  return { launch: rest[0], final: rest.at(-1), chain: [...first, ...rest] };
}

/** An IdP login in the top-level tab (worker → IdP → username form → IdP → worker callback → hub). */
async function loginAtTop(top, username, next = '/hub/api/user') {
  const idpOrigin = new URL(idp.issuer).origin;
  const isInteraction = (u) => u.origin === idpOrigin && u.pathname.startsWith('/interaction/');
  const first = await follow(httpFetch, tool(`/hub/oauth_login?next=${encodeURIComponent(next)}`), top, { headers: NAV, max: 20, stopAt: isInteraction });
  const last = first.at(-1);
  assert.ok(last.location && isInteraction(new URL(last.location, last.url)), `no IdP interaction:\n${trail(first)}`);
  const rest = await follow(httpFetch, new URL(last.location, last.url), top, {
    method: 'POST',
    body: new URLSearchParams({ username }).toString(),
    headers: NAV,
    initiator: idpOrigin,
    max: 20,
  });
  const chain = [...first, ...rest];
  return { chain, callback: chain.find((c) => new URL(c.url).pathname === '/hub/oauth_callback'), final: chain.at(-1) };
}

/** Who the hub's own cookies name on a proxied GET /hub/api/user from `view` (and what reached the hub). */
async function hubSees(view, headers) {
  const r = await hop(view, '/hub/api/user', headers);
  assert.equal(r.status, 200, `${r.status} ${r.location ?? ''} ${r.text.slice(0, 200)}`);
  const echo = r.json();
  assert.equal(echo.path, '/hub/api/user');
  assert.deepEqual(identityHeadersIn(echo.headers), [], 'no identity header on a proxied request');
  assert.ok(!cookieNames(echo.headers.cookie ?? '').some((n) => WORKER_SESSION.test(n)), `the worker's cookie reached the hub: ${echo.headers.cookie}`);
  return echo.hub_user;
}

/** The user the worker hands the hub for `view`'s session: its login subrequest at /hub/login (a hand-off). */
async function workerHandsHub(view, headers) {
  const from = hub.requests.length;
  const r = await hop(view, '/hub/login?next=%2Fhub%2Fapi%2Fuser', headers);
  assert.equal(r.status, 302, `${r.status} ${r.text.slice(0, 200)}`);
  const logins = hubLogins(hub, from);
  assert.equal(logins.length, 1, 'one login subrequest');
  return logins[0].headers['x-forwarded-user'];
}

before(async () => {
  const port = await freePort();
  const origin = `https://127.0.0.1:${port}`;
  platform = await startLtiPlatform({ port: await freePort(), tool: origin, platforms: [PLATFORM] });
  idp = await startIdp();
  hub = await startHubEcho();
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  worker = await startWorker({
    port,
    https: true,
    bindings: demoBindings({
      idp,
      hub,
      secret: crypto.randomBytes(32).toString('base64'),
      LTI13_PLATFORMS: JSON.stringify([{ ...platform.registration(PLATFORM.name), name: PLATFORM.name }]),
      LTI13_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    }),
  });
  assert.equal(worker.url, origin);
  registerWorker(idp, worker);
  // the LTI username as the worker names it (learned once, from a launch in a jar of its own)
  const probe = chromiumJar().top();
  const from = hub.requests.length;
  const l = await launchAtTop(probe, 'student1');
  assert.equal(l.launch.status, 302, l.launch.text);
  STUDENT = hubLogins(hub, from)[0].headers['x-forwarded-user'];
  assert.match(STUDENT, /student1/);
});

after(async () => {
  await Promise.allSettled([worker?.close(), hub?.close(), idp?.close(), platform?.close()]);
});

describe('one browser (Chromium-like cookie store, third-party cookies blocked): a session per context', () => {
  test('a. an LTI launch in the LMS frame, then an IdP login at top level: two sessions in one store; the frame reaches the hub as the student, the top-level tab as alice', async () => {
    const store = chromiumJar();
    const top = store.top();
    const frame = store.frameIn(platform.url);

    const from = hub.requests.length;
    const l = await launchInFrame(frame, 'student1');
    assert.equal(l.launch.status, 302, l.launch.text);
    assert.equal(l.final.status, 200, trail(l.chain));
    assert.equal(l.final.json().hub_user, STUDENT);
    assert.equal(hubLogins(hub, from)[0].headers['x-forwarded-user'], STUDENT);

    const login = await loginAtTop(top, 'alice');
    assert.equal(login.callback?.status, 302, trail(login.chain));
    assert.equal(login.final.status, 200, trail(login.chain));
    assert.equal(login.final.json().hub_user, 'alice');

    // both sessions exist, one per partition
    const sessions = store.all().filter((c) => c.name === SESSION);
    assert.equal(sessions.length, 2, JSON.stringify(sessions));
    const part = sessions.find((c) => c.partitioned);
    const unpart = sessions.find((c) => !c.partitioned);
    assert.ok(part && unpart, 'one partitioned, one not');
    assert.equal(part.partitionKey, `${store.siteOf(new URL(platform.url))} ^cross-site`, 'the LMS partition');
    assert.equal(part.sameSite, 'none');
    assert.equal(unpart.sameSite, 'lax');
    // each context sends exactly its own one
    assert.deepEqual(sessionsSent(frame).map((c) => c.value), [part.value]);
    assert.deepEqual(sessionsSent(top).map((c) => c.value), [unpart.value]);

    // the hub sees each context's own user, on proxied requests and on the worker's login subrequest
    assert.equal(await hubSees(frame, IN_FRAME), STUDENT);
    assert.equal(await hubSees(top, NAV), 'alice');
    assert.equal(await workerHandsHub(frame, IN_FRAME), STUDENT);
    assert.equal(await workerHandsHub(top, NAV), 'alice');
    assert.equal(await hubSees(frame, IN_FRAME), STUDENT, 'after the hand-offs too');
    assert.equal(await hubSees(top, NAV), 'alice');
  });

  test('b. logout inside the frame ends the frame session only: the frame sends no worker session cookie and gets the login redirect; the top-level tab is still alice', async () => {
    const store = chromiumJar();
    const top = store.top();
    const frame = store.frameIn(platform.url);
    assert.equal((await launchInFrame(frame, 'student1')).launch.status, 302);
    assert.equal((await loginAtTop(top, 'alice')).final.json().hub_user, 'alice');
    assert.equal(sessionsSent(frame).length, 1);

    const logouts = hub.requestsTo('/hub/logout').length;
    const rejectedBefore = store.rejected.length;
    const out = await hop(frame, '/hub/logout', IN_FRAME);
    assert.equal(out.status, 200, out.text.slice(0, 200));
    // the worker ended the hub session of the frame's hub cookies (the student's), not alice's
    const call = hub.requestsTo('/hub/logout').at(-1);
    assert.equal(hub.requestsTo('/hub/logout').length, logouts + 1);
    assert.equal(call.hubUser, STUDENT);
    assert.deepEqual(identityHeadersIn(call.headers), []);

    // the frame sends no worker session cookie, and no hub login cookie
    const sent = sentTo(frame, '/hub/api/user');
    assert.ok(!sent.some((n) => WORKER_SESSION.test(n)), `frame still sends ${sent}`);
    assert.ok(!sent.some((n) => HUB_LOGIN_COOKIES.test(n)), `frame still sends ${sent}`);
    assert.deepEqual(frame.all().filter((c) => WORKER_SESSION.test(c.name) || HUB_LOGIN_COOKIES.test(c.name)), []);
    // what the browser refused of the logout in the frame: the top-level (unpartitioned, Lax) deletions
    const refused = store.rejected.slice(rejectedBefore).filter((r) => r.view === frame.label);
    assert.ok(refused.some((r) => r.raw.startsWith(`${SESSION}=;`) && /SameSite=Lax/.test(r.raw)), JSON.stringify(refused));
    assert.ok(refused.every((r) => !/Partitioned/i.test(r.raw)), 'every partitioned deletion was taken');

    // a request in the frame is now sent to log in
    const again = await hop(frame, '/hub/api/user', IN_FRAME);
    assert.equal(again.status, 302);
    assert.equal(again.location, '/hub/login?next=%2Fhub%2Fapi%2Fuser');
    const api = await hop(frame, '/hub/api/user', FETCH, { navigate: false });
    assert.equal(api.status, 401);

    // the top-level tab keeps its session (a frame cannot reach the unpartitioned cookie)
    assert.equal(sessionsSent(top).length, 1);
    assert.equal(await hubSees(top, NAV), 'alice');
    assert.equal(await workerHandsHub(top, NAV), 'alice');
    assert.deepEqual(store.all().filter((c) => c.name === SESSION).map((c) => c.partitioned), [false]);
  });
});

describe('one browser, third-party cookies allowed: a frame that holds a partitioned and an unpartitioned session', () => {
  test('c. in the frame both session cookies are sent; the newest login wins whichever comes first in the Cookie header', async () => {
    const store = chromiumJar({ thirdPartyCookies: 'allowed' });
    const top = store.top();
    const frame = store.frameIn(platform.url);

    // An unpartitioned session the frame can send: the worker only ever sets `SameSite=Lax`
    // at top level (never sent in a cross-site frame), so this one is alice's session token
    // as a browser may hold it from elsewhere (e.g. set `SameSite=None` by an earlier
    // version): unpartitioned, `SameSite=None; Secure`.
    const a = await loginAtTop(top, 'alice');
    assert.equal(a.final.status, 200, trail(a.chain));
    const alice = top.get(SESSION, tool('/'));
    const plant = (token) => top.store(tool('/'), [`${SESSION}=${token}; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=3600`]);
    assert.equal(plant(alice).stored.length, 1);
    assert.deepEqual(sessionsSent(frame).map((c) => c.value), [alice], 'the frame sends it');
    assert.equal(await workerHandsHub(frame, IN_FRAME), 'alice');

    // then a launch in the frame: a newer, partitioned session; alice's cookie stays (the launch's
    // deletion of the top-level variant is SameSite=Lax, which a cross-site frame refuses)
    await afterIssued(alice);
    const l = await launchInFrame(frame, 'student1');
    assert.equal(l.launch.status, 302, l.launch.text);
    const student = frame.matching(tool('/')).find((c) => c.name === SESSION && c.partitioned).value;
    assert.ok(iatOf(student) > iatOf(alice));
    const sent1 = sessionsSent(frame);
    assert.deepEqual(sent1.map((c) => [c.partitioned, c.value]), [[false, alice], [true, student]], 'both sent, the older one first');
    assert.equal(await workerHandsHub(frame, IN_FRAME), STUDENT, 'the newest (second in the header) wins');

    // then bob logs in at top level; his token replaces alice's unpartitioned cookie, which keeps
    // its creation time, so the newest session now comes FIRST in the frame's Cookie header
    await afterIssued(student);
    clearIdpSession(top);
    const b = await loginAtTop(top, 'bob');
    assert.equal(b.final.status, 200, trail(b.chain));
    const bob = top.get(SESSION, tool('/'));
    assert.equal(plant(bob).stored.length, 1);
    const sent2 = sessionsSent(frame);
    assert.deepEqual(sent2.map((c) => [c.partitioned, c.value]), [[false, bob], [true, student]], 'both sent, the newest first');
    assert.equal(await workerHandsHub(frame, IN_FRAME), 'bob', 'the newest (first in the header) wins');
  });
});

describe('two logins within one second', () => {
  test(
    'c3. two logins within the same second: the later one wins in a context that sends both',
    async (t) => {
      const store = chromiumJar({ thirdPartyCookies: 'allowed' });
      const top = store.top();
      const frame = store.frameIn(platform.url);
      // start just after a second boundary so both fit in one second
      await sleep(1000 - (Date.now() % 1000) + 5);
      assert.equal((await launchInFrame(frame, 'student1')).launch.status, 302);
      assert.equal((await loginAtTop(top, 'alice')).final.status, 200);
      const alice = top.get(SESSION, tool('/'));
      const student = frame.matching(tool('/')).find((c) => c.name === SESSION && c.partitioned).value;
      if (iatOf(alice) !== iatOf(student)) {
        t.skip('the two logins did not fall in one second');
        return;
      }
      top.store(tool('/'), [`${SESSION}=${alice}; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=3600`]);
      assert.deepEqual(sessionsSent(frame).map((c) => c.value), [student, alice], 'the older one first in the header');
      assert.equal(await workerHandsHub(frame, IN_FRAME), 'alice', 'alice logged in last');
    },
  );
});

describe('logout at top level', () => {
  test('d. deletes every variant the worker set at top level (session at top level and partitioned for a new-window launch, the hub cookies of both), each with the attributes it was set with', async () => {
    const store = chromiumJar();
    const top = store.top();
    const frame = store.frameIn(platform.url);
    const setByWorker = [];
    const record = (chain) => {
      for (const e of chain) {
        if (new URL(e.url).origin !== worker.url) continue;
        // the session cookie and the hub's cookies (not the flow cookies, which each flow clears itself)
        for (const c of e.setCookies) if (!isDeletion(c) && /^(__Host-hubgate=|__Host-jupyterhub-|jupyterhub-|_xsrf=)/.test(c)) setByWorker.push(c);
      }
    };

    // a launch opened in a new window (top level): a partitioned session under the tool's own site
    const l = await launchAtTop(top, 'student1');
    assert.equal(l.launch.status, 302, l.launch.text);
    record(l.chain);
    assert.deepEqual(store.all().filter((c) => c.name === SESSION).map((c) => [c.partitioned, c.partitionKey]), [[true, store.siteOf(tool('/'))]]);
    // an IdP login replaces it: the worker deletes the partitioned variant (and the launch's hub login cookies)
    const a = await loginAtTop(top, 'alice');
    assert.equal(a.final.json().hub_user, 'alice');
    record(a.chain);
    assert.deepEqual(store.all().filter((c) => c.name === SESSION).map((c) => c.partitioned), [false], 'one session at top level');
    // a session in the LMS frame too (another partition, out of reach of a top-level logout)
    assert.equal((await launchInFrame(frame, 'student1')).launch.status, 302);

    // Every variant at once: what the worker set at top level, replayed as it was sent.
    const kinds = new Set(setByWorker.map((c) => `${c.slice(0, c.indexOf('='))}${/Partitioned/i.test(c) ? ' (partitioned)' : ''}`));
    for (const k of [SESSION, `${SESSION} (partitioned)`, 'jupyterhub-hub-login', 'jupyterhub-hub-login (partitioned)', 'jupyterhub-session-id', 'jupyterhub-session-id (partitioned)']) {
      assert.ok(kinds.has(k), `the worker set ${k} at top level: ${[...kinds]}`);
    }
    const replay = top.store(tool('/'), setByWorker);
    assert.deepEqual(replay.rejected, []);
    const held = top.all().filter((c) => WORKER_SESSION.test(c.name) || /^(__Host-)?(jupyterhub-|_xsrf)/.test(c.name));
    const keyOf = (c) => `${c.name} ${c.path} ${c.partitionKey ?? '-'}`;
    const heldKeys = new Set(held.map(keyOf));
    assert.ok(heldKeys.size >= 6, [...heldKeys].join('\n'));
    assert.equal(sessionsSent(top).length, 2, 'the tab now sends both session variants');

    const refusedBefore = store.rejected.length;
    const out = await hop(top, '/hub/logout', NAV);
    assert.equal(out.status, 200, out.text.slice(0, 200));
    assert.deepEqual(store.rejected.slice(refusedBefore), [], 'the tab takes every deletion of the logout');
    const left = store.all().filter((c) => heldKeys.has(keyOf(c)));
    assert.deepEqual(left.map(keyOf), [], 'every variant held at top level is gone');
    assert.deepEqual(sentTo(top, '/hub/api/user').filter((n) => WORKER_SESSION.test(n) || HUB_LOGIN_COOKIES.test(n)), []);
    const again = await hop(top, '/hub/api/user', NAV);
    assert.equal(again.status, 302);
    assert.match(again.location, /^\/hub\/login\?next=/);

    // each session variant's deletion carries exactly the attributes it was set with
    const attrs = (raw) =>
      raw
        .split(';')
        .slice(1)
        .map((s) => s.trim())
        .filter((s) => s && !/^(max-age|expires)=/i.test(s))
        .map((s) => s.toLowerCase())
        .sort();
    for (const set of setByWorker.filter((c) => c.startsWith(`${SESSION}=`))) {
      const partitioned = /Partitioned/i.test(set);
      const del = out.setCookies.filter((c) => c.startsWith(`${SESSION}=`) && isDeletion(c) && /Partitioned/i.test(c) === partitioned);
      assert.equal(del.length, 1, out.setCookies.join('\n'));
      assert.deepEqual(attrs(del[0]), attrs(set), `${del[0]}\nvs\n${set}`);
    }
    // and every hub cookie variant has a deletion with its name, path and partitioning
    const pathOf = (raw) => /;\s*path=([^;]*)/i.exec(raw)?.[1];
    for (const set of setByWorker.filter((c) => !c.startsWith(`${SESSION}=`))) {
      const name = set.slice(0, set.indexOf('='));
      const partitioned = /Partitioned/i.test(set);
      assert.ok(
        out.setCookies.some((c) => c.startsWith(`${name}=`) && isDeletion(c) && pathOf(c) === pathOf(set) && /Partitioned/i.test(c) === partitioned && (!partitioned || /;\s*Secure/i.test(c))),
        `no deletion for ${set}\n${out.setCookies.join('\n')}`,
      );
    }

    // the LMS partition is another jar: the frame's session is untouched by a top-level logout
    assert.equal(sessionsSent(frame).length, 1);
    assert.equal(await hubSees(frame, IN_FRAME), STUDENT);
  });
});
