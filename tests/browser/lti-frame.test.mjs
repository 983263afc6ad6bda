// Real-browser suite: headless Chromium (Debian's `chromium` through npm
// `playwright-core`) decides what a cookie jar in Node cannot: SameSite,
// Secure, `__Host-`, partitioned (CHIPS) cookies, third-party cookie
// blocking, frame-ancestors, a cross-site iframe.
//
//   LMS site   https://127.0.0.1:L   course page framing the tool, LTI 1.3 platform (support/lms.mjs)
//   tool site  https://localhost:W   the built worker in workerd, the suite's local certificate
//                → a real JupyterHub 6.1.1 (http://127.0.0.1:H) with JupyterLab
//   IdP        http://127.0.0.1:I    the demo OpenID provider, for top-level logins
//
// Every browser has a fresh profile with third-party cookies blocked (the
// harness test proves the setting is in force); one also blocks every cookie
// of the tool inside the LMS page, partitioned ones included (Chromium's
// per-site cookie rule), as browsers that refuse all third-party cookies
// do. Each test says what went wrong with the frame's URL chain (cookies
// sent, Set-Cookie received, Location, CSP), a diagnosis and the browser's
// cookie store.
//
// Needs: `bash scripts/setup-browser.sh` (chromium), `npm ci`
// (playwright-core), `npm run build` (build/), `bash scripts/setup-jupyterhub.sh`
// (.tools/jhvenv). A missing piece fails the suite with the command to run.
// HUBGATE_E2E_VERBOSE=1 echoes workerd's and the hub's logs.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { startStack, missingPieces } from './support/stack.mjs';
import { launchBrowser, explain, describeCookies, chromiumVersion, findChromium, pollUntil, frameNamed, evalIn, siteOf } from './support/browser.mjs';
import { openCourse, waitForFrame, atToolPath, hubIdentity, workerSession, idpLogin, labReady, runInNotebookUi, runInKernelFromFrame, ltiUsername, TOOL_FRAME } from './support/flows.mjs';
import { ASIDE_FRAME } from './support/lms.mjs';

let s;
const browsers = new Set();
let LMS_SITE;
let TOOL_SITE;

async function newBrowser(label, opts = {}) {
  const b = await launchBrowser({ spki: s.tls.spki, label, ...opts });
  browsers.add(b);
  return b;
}
async function closeBrowser(b) {
  browsers.delete(b);
  await b.close();
}
/** Run `fn(b)` with a fresh browser, closed afterwards whatever happens. */
async function withBrowser(label, fn, opts) {
  const b = await newBrowser(label, opts);
  try {
    return await fn(b);
  } finally {
    await closeBrowser(b);
  }
}
const why = (b, what, o = {}) => explain(b, what, { embedderOrigin: s.lms.url, ...o });
/** assert.ok, with the browser's story as the message (built only on failure). */
async function must(b, cond, what, o = {}) {
  if (!cond) assert.fail(await why(b, what, o));
}
/** assert.deepStrictEqual, with the browser's story as the message (built only on failure). */
async function mustEqual(b, actual, expected, what, o = {}) {
  try {
    assert.deepStrictEqual(actual, expected);
  } catch {
    assert.fail(await why(b, `${what}\n  got:      ${inspect(actual)}\n  expected: ${inspect(expected)}`, o));
  }
}

/**
 * The profile's setting is in force: a third site (127.0.0.2) framed by the
 * LMS page keeps its partitioned cookie and loses the unpartitioned one.
 */
async function assertThirdPartyCookiesBlocked(b) {
  await b.page.evaluate((src) => {
    const f = document.createElement('iframe');
    f.name = 'third-party';
    f.src = src;
    f.style.display = 'none';
    document.body.appendChild(f);
  }, `${s.thirdParty.url}/set`);
  const loaded = await pollUntil(async () => {
    const f = frameNamed(b.page, 'third-party');
    return f && f.url().startsWith(s.thirdParty.url) && (await evalIn(f, () => document.readyState === 'complete' && document.body.textContent === 'set', null, 3000));
  }, { timeoutMs: 15_000 });
  assert.ok(loaded, 'the third-party probe frame loaded');
  const probe = (await b.context.cookies()).filter((c) => c.domain === '127.0.0.2').map((c) => `${c.name} ${c.partitionKey ?? 'unpartitioned'}`);
  assert.deepEqual(probe, [`probe_partitioned ${LMS_SITE}`], 'third-party cookies are blocked (only the partitioned probe cookie is kept)');
  await b.page.evaluate(() => document.querySelectorAll('iframe[name="third-party"]').forEach((f) => f.remove()));
}

/** The launch POST (id_token + state) to the worker in the tool frame, once answered. */
function launchPost(b, mark, frame = TOOL_FRAME) {
  return b.rec.since(mark).find((e) => e.frame === frame && e.method === 'POST' && e.url === `${s.tool}/hub/lti13/oauth_callback` && (e.status || e.failure));
}
async function waitForLaunchPost(b, mark, timeoutMs = 30_000) {
  return pollUntil(() => launchPost(b, mark), { timeoutMs });
}
/** The single-user server's user named in a /user/<name>/… URL. */
const serverUser = (url) => decodeURIComponent(new URL(url).pathname.split('/')[2] ?? '');
const cookieLine = (c) => `${c.name} (domain ${c.domain}, path ${c.path}, SameSite=${c.sameSite}, ${c.secure ? 'Secure' : 'not Secure'}, ${c.httpOnly ? 'HttpOnly' : 'not HttpOnly'}, ${c.partitionKey ? `partition ${c.partitionKey}` : 'unpartitioned'})`;

before(
  async () => {
    const missing = await missingPieces();
    if (missing.length) throw new Error(`the real-browser suite cannot run here:\n- ${missing.join('\n- ')}`);
    const t0 = Date.now();
    s = await startStack();
    LMS_SITE = siteOf(s.lms.url);
    TOOL_SITE = siteOf(s.tool);
    console.log(
      `browser suite: ${chromiumVersion(findChromium())}; LMS ${s.lms.url}, tool (worker) ${s.tool}, hub ${s.hub.url}, IdP ${s.idp.issuer}; ` +
        `stack up in ${Date.now() - t0} ms (hub ${s.hub.startupMs} ms)`,
    );
  },
  { timeout: 180_000 },
);

after(
  async () => {
    for (const b of [...browsers]) await closeBrowser(b).catch(() => {});
    if (process.env.HUBGATE_E2E_VERBOSE === '1' && s?.hub) console.error(s.hub.tail(200));
    await s?.close();
  },
  { timeout: 120_000 },
);

describe('harness (must pass: the browser, the two sites, the frame, the hub)', () => {
  test('Chromium starts with the local certificate pinned and third-party cookies blocked; the LMS page frames the tool on another site; the login initiation and the launch reach the worker', { timeout: 90_000 }, async () => {
    await withBrowser('harness', async (b) => {
      const authBefore = s.lms.authorizeRequests.length;
      const { mark } = await openCourse(b, s, { user: 'harness', target: `${s.tool}/hub/home` });
      assert.equal(await b.page.title(), 'Test LMS · Data Science 101', 'the LMS page loaded over https with the local certificate');

      await assertThirdPartyCookiesBlocked(b);

      // In the tool frame: login initiation → the platform's authorize → launch POST, all reaching the worker.
      const post = await waitForLaunchPost(b, mark);
      const init = b.rec.since(mark).find((e) => e.frame === TOOL_FRAME && e.method === 'POST' && e.url === `${s.tool}/hub/lti13/oauth_login`);
      await must(b, init?.status, 'the login initiation form posted into the frame did not reach the worker', { mark });
      assert.equal(init.secFetch, 'cross-site/navigate/iframe', 'the browser treats the tool frame as a cross-site iframe');
      assert.equal(s.lms.authorizeRequests.length, authBefore + 1, 'the frame reached the platform authorize endpoint');
      assert.deepEqual(s.lms.authorizeRequests.at(-1).problems, [], 'the worker sent a valid OIDC authentication request');
      await must(b, post?.status, 'the id_token form post did not reach the worker', { mark });
      assert.equal(post.secFetch, 'cross-site/navigate/iframe');
    });
  });

  test('control, first party: an IdP user at top level reaches JupyterLab and runs `1 + 1` → 2 in a notebook (the same JupyterLab driver the frame tests use)', { timeout: 240_000 }, async () => {
    await withBrowser('control', async (b) => {
      const mark = b.rec.mark();
      const login = await idpLogin(s, b.page, 'alice');
      await must(b, login.ok, `IdP login at top level: ${login.reason}`, { mark, frames: ['top'] });
      const who = await hubIdentity(b.page.mainFrame());
      assert.equal(who.page, 'alice', JSON.stringify(who));
      await b.page.goto(`${s.tool}/hub/spawn`, { waitUntil: 'load', timeout: 30_000 });
      const lab = await pollUntil(() => labReady(s)(b.page.mainFrame()), { timeoutMs: 150_000 });
      await must(b, lab, `alice's JupyterLab did not open at top level (at ${b.page.url()})`, { mark, frames: ['top'] });
      const ui = await runInNotebookUi(b.page.mainFrame());
      await must(b, ui.ok, `JupyterLab at top level: step "${ui.step}": ${ui.detail}`, { mark, frames: ['top'] });
      assert.equal(ui.output, '2');
      console.log(`control: JupyterLab notebook 1 + 1 -> ${ui.output} in ${ui.ms} ms (top level, first party)`);
    });
  });
});

describe('LTI in the LMS iframe (cross-site, third-party cookies blocked, https)', () => {
  test('a student launched in the LMS frame reaches JupyterLab and runs `1 + 1` → 2 in a notebook inside the frame (JupyterLab UI)', { timeout: 300_000 }, async () => {
    await withBrowser('lab-ui', async (b) => {
      const user = 'student1';
      const { mark } = await openCourse(b, s, { user, target: `${s.tool}/hub/spawn` });
      const r = await waitForFrame(b, mark, labReady(s), { timeoutMs: 180_000 });
      await must(b, r.ok, `the launch inside the LMS frame did not reach JupyterLab: ${r.reason}`, { mark });
      assert.equal(serverUser(r.frame.url()), ltiUsername(s, user), `JupyterLab in the frame belongs to ${serverUser(r.frame.url())}`);
      const mark2 = b.rec.mark();
      const ui = await runInNotebookUi(r.frame);
      await must(b, ui.ok, `JupyterLab in the frame did not run the cell: step "${ui.step}": ${ui.detail}`, { mark: mark2 });
      assert.equal(ui.output, '2');
      console.log(`JupyterLab in the LMS frame: notebook 1 + 1 -> ${ui.output} in ${ui.ms} ms`);
    });
  });

  test("the frame's own JavaScript (the frame's cookie partition) creates a kernel over REST and runs `1 + 1` over the kernel WebSocket", { timeout: 300_000 }, async () => {
    await withBrowser('lab-js', async (b) => {
      const user = 'student1';
      const { mark } = await openCourse(b, s, { user, target: `${s.tool}/hub/spawn` });
      const r = await waitForFrame(b, mark, labReady(s), { timeoutMs: 180_000 });
      await must(b, r.ok, `the launch inside the LMS frame did not reach JupyterLab: ${r.reason}`, { mark });
      const mark2 = b.rec.mark();
      const k = await runInKernelFromFrame(r.frame);
      await must(b, k.ok, `kernel from the frame's JavaScript: step "${k.step}": ${k.detail}`, { mark: mark2 });
      assert.equal(k.output, '2');
    });
  });

  test('logout inside the frame ends the LTI session: reloading the tool page in the frame shows it signed out (no worker session, no __Host-hubgate, no hub login cookie in the LMS partition)', { timeout: 120_000 }, async () => {
    await withBrowser('logout', async (b) => {
      const { mark } = await openCourse(b, s, { user: 'student2', target: `${s.tool}/hub/home` });
      const post = await waitForLaunchPost(b, mark);
      await mustEqual(b, post?.status, 302, 'the launch did not complete', { mark });
      await waitForFrame(b, mark, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 20_000 }); // whatever the hub does in the frame
      const before = await workerSession(s, b.page);
      await must(b, before.session, `precondition: after the launch the LMS partition holds no worker session (/hub/api/user -> ${before.status} ${before.text})`, { mark });

      // Log out inside the frame: the hub's Logout link when the hub page is shown, else a navigation of the frame.
      const frame = frameNamed(b.page, TOOL_FRAME);
      const mark2 = b.rec.mark();
      const link = await evalIn(frame, () => !!document.querySelector('a#logout, a[href$="/hub/logout"]'), null, 3000).catch(() => false);
      if (link) await frame.click('a#logout, a[href$="/hub/logout"]', { timeout: 10_000 });
      else await frame.goto(`${s.tool}/hub/logout`, { waitUntil: 'load', timeout: 20_000 });
      const out = await waitForFrame(b, mark2, atToolPath(s, /^\/hub\/logout$/), { timeoutMs: 20_000 });
      await must(b, out.ok, `the logout page did not load in the frame: ${out.reason}`, { mark: mark2 });
      const logoutEntry = b.rec.since(mark2).find((e) => e.frame === TOOL_FRAME && new URL(e.url).pathname === '/hub/logout');

      // Reload the tool page the student was on.
      const mark3 = b.rec.mark();
      await frame.goto(`${s.tool}/hub/home`, { waitUntil: 'load', timeout: 20_000 }).catch(() => {});
      await waitForFrame(b, mark3, atToolPath(s, /^\/hub\/login$/), { timeoutMs: 15_000 });
      const after = await workerSession(s, b.page);
      const left = (await b.context.cookies()).filter((c) => c.domain === 'localhost' && /^(__Host-)?(hubgate|jupyterhub-hub-login|jupyterhub-session-id)$/.test(c.name));
      const deletions = (logoutEntry?.setCookies ?? []).map((l) => `  ${l}`).join('\n');
      const extra = `logout answered ${logoutEntry?.status ?? '?'} with these Set-Cookie lines (values elided):\n${deletions || '  (none)'}\ncookies left for localhost:\n${left.map((c) => `  ${cookieLine(c)}`).join('\n') || '  (none)'}`;
      await must(b, !after.session, `after logout in the frame and a reload the worker still has a session in the LMS partition (/hub/api/user from a tool document in the LMS page -> ${after.status} ${after.text})`, { mark: mark2, extra });
      await mustEqual(b, left.map(cookieLine), [], 'session cookies left in the browser after logout in the frame', { mark: mark2, extra });
      const at = new URL(frameNamed(b.page, TOOL_FRAME).url());
      await mustEqual(b, at.pathname, '/hub/login', `after the reload the frame is at ${at.href}, not the worker's sign-in page`, { mark: mark3 });
    });
  });

  test("third-party cookies blocked and the login initiation carries lti_storage_target: state and nonce go through the LMS page's lti.put_data / lti.get_data (Platform Storage) and the launch lands in the hub as the student", { timeout: 120_000 }, async () => {
    await withBrowser('storage', async (b) => {
      const user = 'student3';
      await b.page.goto(`${s.lms.url}/course?user=nobody&auto=0`, { waitUntil: 'load' });
      await assertThirdPartyCookiesBlocked(b);
      const launchesBefore = s.lms.launches.length;
      const { mark } = await openCourse(b, s, { user, target: `${s.tool}/hub/home`, storage: true });
      await waitForLaunchPost(b, mark);
      const r = await waitForFrame(b, mark, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 30_000 });
      const messages = await b.page.evaluate(() => window.__lti.messages);
      const shown = messages.map((m) => `  ${m.subject} from ${m.origin} key=${JSON.stringify(m.key)} value=${JSON.stringify(m.value)}`).join('\n') || '  (none)';
      const launch = s.lms.launches.slice(launchesBefore).find((l) => l.user === user);
      await must(b, launch, 'the platform never issued the id_token (no valid authorize request from the frame)', { mark, extra: `authorize requests: ${JSON.stringify(s.lms.authorizeRequests.slice(-2))}` });
      const init = b.rec.since(mark).find((e) => e.frame === TOOL_FRAME && e.method === 'POST' && e.url === `${s.tool}/hub/lti13/oauth_login`);
      const extra = `postMessages the LMS page received:\n${shown}\nthe authorize request carried state=${launch.state} nonce=${launch.nonce}`;
      const fromTool = messages.filter((m) => m.origin === s.tool);
      const puts = fromTool.filter((m) => m.subject === 'lti.put_data');
      const gets = fromTool.filter((m) => m.subject === 'lti.get_data');
      // the state and the nonce of this launch, as key or value (any encoding that carries them verbatim)
      const carries = (m, v) => JSON.stringify([m.key, m.value]).includes(v);
      await must(b, puts.some((m) => carries(m, launch.state)) && puts.some((m) => carries(m, launch.nonce)), `the worker did not store the state and the nonce in the platform's storage (lti.put_data from ${s.tool}) although the login initiation carried lti_storage_target=_parent; login initiation answered ${init?.status} ${init?.location ? `-> ${init.location}` : `(${init?.contentType ?? ''})`}`, { mark, extra });
      await must(b, gets.some((g) => puts.some((p) => p.key === g.key && (carries(p, launch.state) || carries(p, launch.nonce)))), 'the worker stored state/nonce but never read them back with lti.get_data during the launch', { mark, extra });
      const post = launchPost(b, mark);
      await must(b, post && gets.some((g) => g.at >= post.t - 50), 'lti.get_data came before the id_token post: the launch was not checked against platform storage', { mark, extra });
      await must(b, r.ok, `with platform storage the launch did not land on /hub/home in the frame: ${r.reason}`, { mark, extra });
      const who = await hubIdentity(r.frame);
      await mustEqual(b, who.page, ltiUsername(s, user), `the hub in the frame shows ${JSON.stringify(who)}`, { mark });
    });
  });
});

describe('LTI Platform Storage and the new-window fallback (origins of the messages, older platforms, a frame with no cookie at all)', () => {
  const newWindowShown = async (f) => new URL(f.url()).origin === s.tool && (await evalIn(f, () => !!document.getElementById('new-window') && !document.getElementById('new-window').hidden, null, 3000));
  const showMessages = (list) => list.map((m) => `  ${m.subject} from ${m.origin}${m.answered === false ? ' (not answered)' : ''} key=${JSON.stringify(m.key)}`).join('\n') || '  (none)';
  const showAside = (list) => list.map((a) => `  ${a.kind} ${a.subject ?? ''} ${a.message_id ?? ''}${a.origin ? ` from ${a.origin}` : ''}`).join('\n') || '  (none)';

  test('a browser that keeps no cookie for the tool inside the LMS frame (not even a partitioned one) and a platform with no storage: the frame offers "Open in a new window"; the new window completes the launch and shows /hub/home as the student; nothing signed the student in inside the frame', { timeout: 120_000 }, async () => {
    // This emulates browsers that block even partitioned third-party cookies
    // (Safari, Firefox in strict mode, a Chrome user's "block cookies for
    // this site" rule). It is Chromium's own per-site cookie rule, written in
    // the fresh profile: cookies of https://localhost:* are blocked in pages
    // of https://127.0.0.1:* (the LMS), partitioned ones included, while the
    // tool at top level keeps its cookies. (Not `context.route`: it cannot
    // change a response's headers in the browser; `route.fetch` would make
    // the request from Node, without Sec-Fetch-*, and copy its Set-Cookie
    // into the browser's cookie jar.) The LMS page has no storage script and
    // the initiation carries no lti_storage_target: the worker's page can
    // only check its flow cookie, which the browser did not keep.
    await withBrowser('no-cookie-new-window', async (b) => {
      const user = 'student9';
      const authBefore = s.lms.authorizeRequests.length;
      const launchesBefore = s.lms.launches.length;
      const { mark } = await openCourse(b, s, { user, target: `${s.tool}/hub/home`, platform: 'none' });
      assert.equal(await b.page.evaluate(() => typeof window.__lti), 'undefined', 'the LMS page has no storage script (platform=none)');
      const offered = await waitForFrame(b, mark, newWindowShown, { timeoutMs: 20_000 });
      await must(b, offered.ok, `the frame did not offer to open the tool in a new window: ${offered.reason}`, { mark });

      // The emulation is in force: the worker set its flow cookie in the frame and the browser kept nothing.
      await b.rec.settle();
      const init = b.rec.since(mark).find((e) => e.frame === TOOL_FRAME && e.method === 'POST' && e.url === `${s.tool}/hub/lti13/oauth_login`);
      const inPartition = async () => (await b.context.cookies()).filter((c) => c.domain === 'localhost' && c.partitionKey === LMS_SITE);
      await must(b, init?.status === 200 && (init.setCookies ?? []).length > 0, `precondition: the login initiation in the frame answered ${init?.status} with ${(init?.setCookies ?? []).length} Set-Cookie lines (expected the storage/new-window page and the flow cookie)`, { mark });
      await mustEqual(b, (await inPartition()).map(cookieLine), [], 'precondition: the browser kept a tool cookie in the LMS frame although cookies of the tool are blocked there', { mark });
      const check = b.rec.since(mark).find((e) => e.frame === TOOL_FRAME && e.url.startsWith(`${s.tool}/_hubgate/lti/flow_check?`));
      await must(b, check, 'the page in the frame showed the new-window offer without asking /_hubgate/lti/flow_check whether its flow cookie came back', { mark });
      await mustEqual(b, [check.status, check.sent], [404, []], 'flow_check in the frame (status, cookies sent)', { mark });
      await mustEqual(b, s.lms.authorizeRequests.length, authBefore, 'the frame went on to the platform although its flow cookie was lost (the launch could only fail there)', { mark });

      const link = await evalIn(offered.frame, () => {
        const a = [...document.querySelectorAll('#new-window a')].find((x) => x.textContent.trim() === 'Open in a new window');
        return a ? { href: a.href, target: a.target, visible: !!(a.offsetWidth || a.offsetHeight) } : null;
      });
      await must(b, link?.visible, `no visible "Open in a new window" link in the frame: ${JSON.stringify(link)}`, { mark });
      const to = new URL(link.href);
      await mustEqual(b, [link.target, to.origin, to.pathname, to.searchParams.get('login_hint'), to.searchParams.get('iss')], ['_blank', s.tool, '/hub/lti13/oauth_login', user, s.lms.issuer], 'the new-window link (target, origin, path, login_hint, iss)', { mark });
      await mustEqual(b, await evalIn(offered.frame, () => document.getElementById('platform-window')?.hidden ?? 'absent'), true, "the platform's new-window button is shown although the platform never answered lti.capabilities", { mark });

      const mark2 = b.rec.mark();
      const [popup] = await Promise.all([b.context.waitForEvent('page', { timeout: 15_000 }), offered.frame.getByRole('link', { name: 'Open in a new window' }).click({ timeout: 10_000 })]);
      const home = await pollUntil(async () => {
        const u = new URL(popup.url());
        return u.origin === s.tool && u.pathname === '/hub/home' && (await popup.evaluate(() => document.readyState)) === 'complete';
      }, { timeoutMs: 30_000 });
      await must(b, home, `the launch in the new window did not reach /hub/home (at ${popup.url()})`, { mark: mark2, frames: ['top'] });
      const who = await hubIdentity(popup.mainFrame());
      await mustEqual(b, who.page, ltiUsername(s, user), `the hub in the new window shows ${JSON.stringify(who)}`, { mark: mark2, frames: ['top'] });
      await mustEqual(b, who.api?.name, ltiUsername(s, user), `/hub/api/user in the new window: ${JSON.stringify(who.api)}`, { mark: mark2, frames: ['top'] });
      await mustEqual(b, s.lms.launches.slice(launchesBefore).filter((l) => l.user === user).length, 1, 'the platform issued the id_token once (for the new window)', { mark });

      // Nothing signed the student in inside the frame.
      await must(b, !launchPost(b, mark), 'an id_token was posted to the worker inside the frame', { mark });
      const frameNow = frameNamed(b.page, TOOL_FRAME);
      await mustEqual(b, [new URL(frameNow.url()).pathname, await newWindowShown(frameNow).catch(() => false)], ['/hub/lti13/oauth_login', true], 'the frame left the new-window offer', { mark });
      const inFrame = await workerSession(s, b.page);
      await must(b, !inFrame.session, `a tool document in the LMS page has a worker session (/hub/api/user -> ${inFrame.status} ${inFrame.text})`, { mark });
      await mustEqual(b, (await inPartition()).map(cookieLine), [], 'tool cookies in the LMS partition after the launch', { mark });
    }, { blockCookies: [{ site: s.tool, embeddedIn: s.lms.url }] });
  });

  test('a platform that answers only the older org.imsglobal.lti.* names: the launch in the frame stores state and nonce with org.imsglobal.lti.put_data, reads them back with org.imsglobal.lti.get_data, posts the stored flow same-origin and lands on /hub/home as the student', { timeout: 120_000 }, async () => {
    await withBrowser('storage-legacy', async (b) => {
      const user = 'student10';
      const posts = [];
      b.context.on('request', (req) => {
        if (req.method() === 'POST' && req.url() === `${s.tool}/hub/lti13/oauth_callback`) posts.push(new URLSearchParams(req.postData() ?? ''));
      });
      const launchesBefore = s.lms.launches.length;
      const { mark } = await openCourse(b, s, { user, target: `${s.tool}/hub/home`, storage: true, platform: 'legacy' });
      const r = await waitForFrame(b, mark, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 40_000 });
      const messages = await b.page.evaluate(() => window.__lti.messages);
      const launch = s.lms.launches.slice(launchesBefore).find((l) => l.user === user);
      await must(b, launch, 'the platform never issued the id_token (no valid authorize request from the frame)', { mark, extra: `postMessages the LMS page received:\n${showMessages(messages)}` });
      const extra = `postMessages the LMS page received:\n${showMessages(messages)}\nthe authorize request carried state=${launch.state} nonce=${launch.nonce}\nid_token posts: ${posts.map((q) => [...q.keys()].join('+')).join(' | ')}`;
      await mustEqual(b, messages.filter((m) => m.origin !== s.tool).map((m) => `${m.subject} from ${m.origin}`), [], 'storage messages from an origin other than the tool', { mark, extra });
      const subjects = messages.map((m) => m.subject);
      await must(b, subjects.includes('org.imsglobal.lti.capabilities'), 'the tool never asked org.imsglobal.lti.capabilities', { mark, extra });
      await mustEqual(b, subjects.filter((x) => /^lti\.(put|get)_data$/.test(x)), [], 'the tool used lti.put_data / lti.get_data, which this platform does not offer', { mark, extra });
      const puts = messages.filter((m) => m.subject === 'org.imsglobal.lti.put_data');
      const gets = messages.filter((m) => m.subject === 'org.imsglobal.lti.get_data');
      const carries = (m, v) => JSON.stringify([m.key, m.value]).includes(v);
      await must(b, puts.some((m) => carries(m, launch.state)) && puts.some((m) => carries(m, launch.nonce)), 'the tool did not store the state and the nonce with org.imsglobal.lti.put_data', { mark, extra });
      const statePut = puts.find((m) => typeof m.key === 'string' && m.key.includes(launch.state));
      await must(b, statePut && gets.some((g) => g.key === statePut.key), 'the tool never read the state back with org.imsglobal.lti.get_data', { mark, extra });
      // the check page's same-origin post carried what the platform stored under the state's key
      const flowPost = posts.find((q) => q.has('hubgate_flow'));
      await must(b, flowPost && flowPost.get('state') === launch.state && flowPost.get('hubgate_flow') === statePut.value, 'the launch was not posted again with the flow read back from the platform (hubgate_flow)', { mark, extra });
      await must(b, r.ok, `with org.imsglobal.lti.* storage the launch did not land on /hub/home in the frame: ${r.reason}`, { mark, extra });
      const who = await hubIdentity(r.frame);
      await mustEqual(b, who.page, ltiUsername(s, user), `the hub in the frame shows ${JSON.stringify(who)}`, { mark });
      await mustEqual(b, who.api?.name, ltiUsername(s, user), `/hub/api/user in the frame: ${JSON.stringify(who.api)}`, { mark });
    });
  });

  test("the tool addresses its storage messages to the LMS origin only: with lti_storage_target naming a frame of another site in the LMS page, that frame receives none of them (the tool frame's own postMessage with targetOrigin * does reach it), and the launch goes on with the cookie", { timeout: 120_000 }, async () => {
    await withBrowser('storage-target-origin', async (b) => {
      const user = 'student11';
      const { mark } = await openCourse(b, s, { user, target: `${s.tool}/hub/home`, storage: true, storageTarget: ASIDE_FRAME, aside: `${s.thirdParty.url}/relay` });
      const r = await waitForFrame(b, mark, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 40_000 });
      const seen = async () => b.page.evaluate(() => ({ messages: window.__lti.messages, aside: window.__lti.aside }));
      const lti = await seen();
      const extra = `postMessages the LMS page received:\n${showMessages(lti.messages)}\nwhat the frame of ${s.thirdParty.url} reported:\n${showAside(lti.aside)}`;
      await must(b, r.ok, `the launch did not land on /hub/home in the frame: ${r.reason}`, { mark, extra });
      // The tool found the named frame and waited out both capability probes (2 × 800 ms) before checking its cookie.
      const init = b.rec.since(mark).find((e) => e.frame === TOOL_FRAME && e.method === 'POST' && e.url === `${s.tool}/hub/lti13/oauth_login`);
      const check = b.rec.since(mark).find((e) => e.frame === TOOL_FRAME && e.url.startsWith(`${s.tool}/_hubgate/lti/flow_check?`));
      await must(b, init && check && check.t - init.t >= 1500, `the initiation page checked its cookie ${check && init ? `${check.t - init.t} ms` : '(never)'} after the initiation request: it did not wait for answers from the frame named ${ASIDE_FRAME}`, { mark, extra });
      await mustEqual(b, lti.aside.filter((a) => a.kind === 'received').map((a) => `${a.subject} from ${a.origin}`), [], `the frame of another site (${s.thirdParty.url}) received storage messages from the tool`, { mark, extra });
      await mustEqual(b, lti.messages.map((m) => `${m.subject} from ${m.origin}`), [], 'the LMS page received storage messages although lti_storage_target named another frame', { mark, extra });

      // Control: the same frame does receive what the tool frame posts to it with targetOrigin * (and not with the LMS origin).
      await evalIn(r.frame, ({ name, lms }) => {
        const w = window.parent.frames[name];
        w.postMessage({ subject: 'lti.capabilities', message_id: 'control-lms-origin' }, lms);
        w.postMessage({ subject: 'lti.capabilities', message_id: 'control-star' }, '*');
      }, { name: ASIDE_FRAME, lms: s.lms.url });
      const after = await pollUntil(async () => {
        const x = await seen();
        return x.aside.some((a) => a.message_id === 'control-star') ? x : null;
      }, { timeoutMs: 10_000 });
      await must(b, after, `control: a message posted from the tool frame with targetOrigin * never reached the frame of ${s.thirdParty.url}`, { mark, extra });
      await mustEqual(b, after.aside.filter((a) => a.kind === 'received').map((a) => `${a.message_id} from ${a.origin}`), [`control-star from ${s.tool}`], 'control: what the frame of another site received from the tool frame', { mark, extra });
    });
  });

  test("the tool accepts storage replies from the LMS origin only: well-formed replies (right subject and message_id) delivered to the tool frame by a frame of another site are ignored, no put_data / get_data follows, and the launch goes on with the cookie", { timeout: 120_000 }, async () => {
    await withBrowser('storage-reply-origin', async (b) => {
      const user = 'student12';
      const { mark } = await openCourse(b, s, { user, target: `${s.tool}/hub/home`, storage: true, platform: 'relay', aside: `${s.thirdParty.url}/relay` });
      const r = await waitForFrame(b, mark, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 40_000 });
      const lti = await b.page.evaluate(() => ({ messages: window.__lti.messages, aside: window.__lti.aside }));
      const extra = `postMessages the LMS page received:\n${showMessages(lti.messages)}\nwhat the frame of ${s.thirdParty.url} reported:\n${showAside(lti.aside)}`;
      await mustEqual(b, lti.messages.filter((m) => m.origin !== s.tool).map((m) => `${m.subject} from ${m.origin}`), [], 'storage messages from an origin other than the tool', { mark, extra });
      const probes = lti.messages.filter((m) => /capabilities$/.test(m.subject));
      await must(b, probes.some((m) => m.subject === 'lti.capabilities') && probes.some((m) => m.subject === 'org.imsglobal.lti.capabilities'), 'the tool did not probe lti.capabilities and org.imsglobal.lti.capabilities', { mark, extra });
      // every probe's reply was delivered from the other site's frame, in time (the tool waits 800 ms)
      for (const p of probes) {
        const relayed = lti.aside.find((a) => a.kind === 'relayed' && a.message_id === p.message_id && a.subject === `${p.subject}.response`);
        await must(b, relayed && relayed.at - p.at < 500, `the reply to ${p.subject} (${p.message_id}) was not delivered to the tool frame within 500 ms (${relayed ? `${relayed.at - p.at} ms` : 'never'})`, { mark, extra });
      }
      await mustEqual(b, lti.messages.filter((m) => /(put|get)_data$/.test(m.subject)).map((m) => m.subject), [], `the tool took a capabilities reply sent from ${s.thirdParty.url} and went on to use the storage`, { mark, extra });
      await must(b, r.ok, `the launch did not land on /hub/home in the frame: ${r.reason}`, { mark, extra });
      const who = await hubIdentity(r.frame);
      await mustEqual(b, who.page, ltiUsername(s, user), `the hub in the frame shows ${JSON.stringify(who)}`, { mark });

      // Control: what the other site's frame relays does reach the tool frame's window, from that site's origin.
      await evalIn(r.frame, () => {
        window.__got = [];
        window.addEventListener('message', (e) => window.__got.push({ origin: e.origin, id: e.data && e.data.message_id }));
      });
      await b.page.evaluate(() => window.__lti.relay({ subject: 'lti.capabilities.response', message_id: 'control-relay', supported_messages: [] }));
      const got = await pollUntil(() => evalIn(r.frame, () => window.__got.find((x) => x.id === 'control-relay') ?? null, null, 3000), { timeoutMs: 10_000 });
      await mustEqual(b, got?.origin, s.thirdParty.url, 'control: a reply relayed by the frame of another site reached the tool frame from', { mark, extra });
    });
  });
});

describe('one browser, an LTI launch and an IdP login', () => {
  async function ltiInNewWindow(b, user) {
    const { mark } = await openCourse(b, s, { user, target: `${s.tool}/hub/home`, window: 'new' });
    const [popup] = await Promise.all([b.context.waitForEvent('page', { timeout: 15_000 }), b.page.click('#open')]);
    const ok = await pollUntil(async () => {
      const u = new URL(popup.url());
      return u.origin === s.tool && u.pathname === '/hub/home' && (await popup.evaluate(() => document.readyState)) === 'complete';
    }, { timeoutMs: 30_000 });
    await must(b, ok, `the LTI launch in a new window did not reach /hub/home (at ${popup.url()})`, { mark, frames: ['top'] });
    return { popup, mark, who: await hubIdentity(popup.mainFrame()) };
  }
  const topLevelSessionCookies = async (b) => (await b.context.cookies()).filter((c) => c.name === '__Host-hubgate' && c.domain === 'localhost' && (!c.partitionKey || c.partitionKey === TOOL_SITE));

  test('an LTI launch in a new window, then an IdP login at top level, then the LTI launch again: the hub is handed the student, then alice, then the student (one __Host-hubgate sent at top level each time)', { timeout: 120_000 }, async () => {
    await withBrowser('lti-then-idp', async (b) => {
      const user = 'student4';
      const first = await ltiInNewWindow(b, user);
      await mustEqual(b, first.who.page, ltiUsername(s, user), `after the LTI launch the hub shows ${JSON.stringify(first.who)}`, { mark: first.mark, frames: ['top'] });
      await first.popup.close();

      const tab = await b.context.newPage();
      const mark = b.rec.mark();
      const login = await idpLogin(s, tab, 'alice');
      await must(b, login.ok, `IdP login: ${login.reason}`, { mark, frames: ['top'] });
      const who = await hubIdentity(tab.mainFrame());
      const cookies = await topLevelSessionCookies(b);
      const extra = `__Host-hubgate cookies the browser sends at top level (${cookies.length}):\n${cookies.map((c) => `  ${cookieLine(c)}`).join('\n')}`;
      await mustEqual(b, who.page, 'alice', `after the IdP login as alice the hub page shows ${JSON.stringify(who.page)} (api: ${JSON.stringify(who.api)})`, { mark, frames: ['top'], extra });
      await mustEqual(b, who.api?.name, 'alice', `/hub/api/user after the IdP login: ${JSON.stringify(who.api)}`, { mark, frames: ['top'], extra });
      await mustEqual(b, cookies.length, 1, 'the browser holds more than one __Host-hubgate for the top-level tool site', { mark, frames: ['top'], extra });

      const again = await ltiInNewWindow(b, user);
      const cookies2 = await topLevelSessionCookies(b);
      const extra2 = `__Host-hubgate cookies the browser sends at top level (${cookies2.length}):\n${cookies2.map((c) => `  ${cookieLine(c)}`).join('\n')}`;
      await mustEqual(b, again.who.page, ltiUsername(s, user), `after the second LTI launch the hub shows ${JSON.stringify(again.who.page)}`, { mark: again.mark, frames: ['top'], extra: extra2 });
      await mustEqual(b, cookies2.length, 1, 'after the second LTI launch the browser holds more than one __Host-hubgate for the top-level tool site', { mark: again.mark, frames: ['top'], extra: extra2 });
    });
  });

  test('an LTI launch in the LMS frame and an IdP login at top level in one browser: the frame stays the student, the top-level tab is alice', { timeout: 120_000 }, async () => {
    await withBrowser('frame-and-top', async (b) => {
      const user = 'student5';
      const { mark } = await openCourse(b, s, { user, target: `${s.tool}/hub/home` });
      const r = await waitForFrame(b, mark, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 30_000 });
      await must(b, r.ok, `the launch in the LMS frame did not show the hub's home page: ${r.reason}`, { mark });
      const inFrame = await hubIdentity(r.frame);
      assert.equal(inFrame.page, ltiUsername(s, user), JSON.stringify(inFrame));

      const tab = await b.context.newPage();
      const mark2 = b.rec.mark();
      const login = await idpLogin(s, tab, 'alice');
      await must(b, login.ok, `IdP login: ${login.reason}`, { mark: mark2, frames: ['top'] });
      const top = await hubIdentity(tab.mainFrame());
      await mustEqual(b, top.page, 'alice', `the top-level tab shows ${JSON.stringify(top)}`, { mark: mark2, frames: ['top'] });

      const mark3 = b.rec.mark();
      await r.frame.goto(`${s.tool}/hub/home`, { waitUntil: 'load', timeout: 20_000 }).catch(() => {});
      const again = await waitForFrame(b, mark3, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 20_000 });
      await must(b, again.ok, `the frame no longer shows the hub after the top-level login: ${again.reason}`, { mark: mark3 });
      const frameAgain = await hubIdentity(again.frame);
      await mustEqual(b, frameAgain.page, ltiUsername(s, user), `after alice's top-level login the LMS frame shows ${JSON.stringify(frameAgain.page)}`, { mark: mark3 });
      await tab.reload({ waitUntil: 'load' });
      assert.equal((await hubIdentity(tab.mainFrame())).page, 'alice', 'the top-level tab is still alice');
    });
  });

  test("two students launch one after the other in the same LMS frame (a shared computer): the hub shows the second, and the first one's server is not reachable with what the first left in the partition", { timeout: 300_000 }, async () => {
    await withBrowser('shared-computer', async (b) => {
      const first = 'student1';
      const second = 'student8';
      const a = await openCourse(b, s, { user: first, target: `${s.tool}/hub/spawn` });
      const lab = await waitForFrame(b, a.mark, labReady(s), { timeoutMs: 180_000 });
      await must(b, lab.ok, `precondition: the first student's launch in the frame did not reach JupyterLab: ${lab.reason}`, { mark: a.mark });
      const serverPath = new URL(lab.frame.url()).pathname.replace(/lab.*$/, '');

      const bLaunch = await openCourse(b, s, { user: second, target: `${s.tool}/hub/home` });
      const home = await waitForFrame(b, bLaunch.mark, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 30_000 });
      await must(b, home.ok, `the second student's launch in the same frame did not show the hub: ${home.reason}`, { mark: bLaunch.mark });
      const who = await hubIdentity(home.frame);
      await mustEqual(b, who.page, ltiUsername(s, second), `after the second launch the hub in the frame shows ${JSON.stringify(who.page)}`, { mark: bLaunch.mark });

      const mark = b.rec.mark();
      await home.frame.goto(`${s.tool}${serverPath}api/status`, { waitUntil: 'load', timeout: 30_000 }).catch(() => {});
      await b.rec.settle();
      const hops = b.rec.since(mark).filter((e) => e.frame === TOOL_FRAME && e.nav);
      const end = hops.at(-1);
      const left = (await b.context.cookies()).filter((c) => c.domain === 'localhost' && c.name.startsWith('jupyterhub-user-'));
      await must(
        b,
        !(end && new URL(end.url).pathname === `${serverPath}api/status` && end.status === 200),
        `the second student reached the first student's server (${serverPath}api/status answered 200 in the frame)`,
        { mark: bLaunch.mark, extra: `single-user cookies left in the browser:\n${left.map((c) => `  ${cookieLine(c)}`).join('\n') || '  (none)'}` },
      );
    });
  });

  test('logout at top level after a new-window LTI launch and an IdP login leaves no __Host-hubgate for the tool site in any partition', { timeout: 120_000 }, async () => {
    await withBrowser('top-logout', async (b) => {
      const first = await ltiInNewWindow(b, 'student7');
      await first.popup.close();
      const tab = await b.context.newPage();
      const login = await idpLogin(s, tab, 'bob');
      assert.ok(login.ok, login.reason);
      const mark = b.rec.mark();
      await tab.goto(`${s.tool}/hub/logout`, { waitUntil: 'load', timeout: 20_000 });
      const entry = b.rec.since(mark).find((e) => new URL(e.url).pathname === '/hub/logout');
      await b.rec.settle();
      const left = (await b.context.cookies()).filter((c) => c.domain === 'localhost' && /^(__Host-)?hubgate$/.test(c.name));
      const extra = `logout Set-Cookie:\n${(entry?.setCookies ?? []).map((l) => `  ${l}`).join('\n') || '  (none)'}\nleft:\n${left.map((c) => `  ${cookieLine(c)}`).join('\n') || '  (none)'}`;
      await mustEqual(b, left.map(cookieLine), [], 'a __Host-hubgate cookie survived the logout', { mark, frames: ['top'], extra });
      const after = await workerSession(s, tab, { inFrame: false });
      assert.equal(after.session, false, `after logout /hub/api/user -> ${after.status} ${after.text}`);
    });
  });
});

describe("cookie attributes as the browser's cookie store holds them", () => {
  test('after an IdP login at top level: one __Host-hubgate, host-only localhost, Path=/, Secure, HttpOnly, SameSite=Lax, unpartitioned; no OAuth flow cookie left', { timeout: 60_000 }, async () => {
    await withBrowser('cookies-oauth', async (b) => {
      const mark = b.rec.mark();
      const login = await idpLogin(s, b.page, 'bob');
      await must(b, login.ok, `IdP login: ${login.reason}`, { mark, frames: ['top'] });
      const all = await b.context.cookies();
      const mine = all.filter((c) => c.domain === 'localhost' && /hubgate/.test(c.name));
      const store = await describeCookies(b.context);
      const hg = mine.filter((c) => c.name === '__Host-hubgate');
      assert.equal(hg.length, 1, `__Host-hubgate cookies: ${hg.length}\n${store}`);
      assert.deepEqual(
        { domain: hg[0].domain, path: hg[0].path, secure: hg[0].secure, httpOnly: hg[0].httpOnly, sameSite: hg[0].sameSite, partitionKey: hg[0].partitionKey },
        { domain: 'localhost', path: '/', secure: true, httpOnly: true, sameSite: 'Lax', partitionKey: undefined },
        store,
      );
      assert.deepEqual(mine.filter((c) => c.name !== '__Host-hubgate').map(cookieLine), [], `worker cookies other than the session left after the login:\n${store}`);
    });
  });

  test('after a launch in the LMS frame: __Host-hubgate is SameSite=None, Secure, HttpOnly, Path=/, partitioned under the LMS site; no unpartitioned worker cookie; no LTI flow cookie left', { timeout: 60_000 }, async () => {
    await withBrowser('cookies-lti', async (b) => {
      const { mark } = await openCourse(b, s, { user: 'student6', target: `${s.tool}/hub/home` });
      const post = await waitForLaunchPost(b, mark);
      await mustEqual(b, post?.status, 302, 'the launch did not complete', { mark });
      await waitForFrame(b, mark, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 15_000 });
      await b.rec.settle();
      const all = await b.context.cookies();
      const mine = all.filter((c) => c.domain === 'localhost' && /hubgate/.test(c.name));
      const hg = mine.filter((c) => c.name === '__Host-hubgate');
      const msgOpts = { mark };
      await mustEqual(b, hg.length, 1, `__Host-hubgate cookies after the framed launch: ${hg.length}`, msgOpts);
      await mustEqual(b, { path: hg[0].path, secure: hg[0].secure, httpOnly: hg[0].httpOnly, sameSite: hg[0].sameSite, partitionKey: hg[0].partitionKey }, { path: '/', secure: true, httpOnly: true, sameSite: 'None', partitionKey: LMS_SITE }, 'the session cookie of a framed launch', msgOpts);
      await mustEqual(b, mine.filter((c) => !c.partitionKey).map(cookieLine), [], 'unpartitioned worker cookies after a framed launch', msgOpts);
      await mustEqual(b, mine.filter((c) => /^(__Host-)?hubgate-lti-/.test(c.name)).map(cookieLine), [], 'the LTI flow cookie outlived the launch', msgOpts);
    });
  });

  test("the hub's own cookies from a launch in the LMS frame are kept by the browser, in the LMS partition (every cookie the hub set in the frame; jupyterhub-hub-login and jupyterhub-session-id among them)", { timeout: 60_000 }, async () => {
    await withBrowser('cookies-hub', async (b) => {
      const { mark } = await openCourse(b, s, { user: 'student6', target: `${s.tool}/hub/home` });
      const post = await waitForLaunchPost(b, mark);
      await mustEqual(b, post?.status, 302, 'the launch did not complete', { mark });
      await waitForFrame(b, mark, atToolPath(s, /^\/hub\/home$/), { timeoutMs: 15_000 });
      await b.rec.settle();
      const all = await b.context.cookies();
      const partition = all.filter((c) => c.domain === 'localhost' && c.partitionKey === LMS_SITE).map((c) => c.name);
      // the hub's cookies as the launch answered them (the first response that set them)
      const hubSet = post.setCookies?.filter((l) => /^(__Host-)?(jupyterhub-|_xsrf)/.test(l) && !/Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(l)) ?? [];
      const names = [...new Set(hubSet.map((l) => l.slice(0, l.indexOf('='))))];
      const msgOpts = { mark, extra: `the launch's Set-Cookie for the hub's cookies:\n${hubSet.map((l) => `  ${l.replace(/=[^;]*/, '=…')}`).join('\n') || '  (none)'}` };
      for (const n of ['jupyterhub-hub-login', 'jupyterhub-session-id']) {
        await must(b, names.some((x) => x === n || x === `__Host-${n}`), `the launch did not pass on the hub's ${n}`, msgOpts);
      }
      const lost = names.filter((n) => !partition.includes(n));
      await mustEqual(b, lost, [], `the browser did not keep the hub's cookies set in the frame (LMS partition ${LMS_SITE})`, msgOpts);
    });
  });
});
