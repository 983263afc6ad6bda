// LTI Dynamic Registration 1.0 end to end: the built worker in workerd
// (Miniflare), started with NO static LTI platform (LTI is on only because
// LTI13_DYNAMIC_REGISTRATION=true), against the stand-in platform of
// tests/e2e/support/lti-advantage-platform.mjs, which serves an OpenID
// configuration per platform (/p/<name>/.well-known/openid-configuration)
// and a registration endpoint (/p/<name>/register) taking a one-time
// registration token as a bearer token.
//
// The admin pastes /hub/lti13/register?secret=<LTI13_REGISTRATION_SECRET>
// into the LMS; the LMS opens it with `openid_configuration` and
// `registration_token` added. The worker reads the configuration (its issuer
// must be a prefix of the configuration's own URL), posts its registration,
// keeps the platform the LMS answers (KV NONCES, `lti-registrations:v1`) and
// answers a page that posts `org.imsglobal.lti.close`.
//
// The worker names a registered platform after its issuer's host: every
// stand-in issuer here is http://127.0.0.1:<port>/p/<name>, so all of them
// would be called `127.0.0.1`, and only the first issuer that registers gets
// the name (another issuer on the host is a 409, before anything is posted to
// it). The suites run in file order, and that order matters: the refusals
// (403, 400, 502) come first, while nothing is registered, so that each of
// them also shows it left the name free; then the registration that succeeds,
// then what may no longer happen.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startWorker, cookieJar, follow } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import { freePort } from './support/ports.mjs';
import { hubLogins, checkHubLogin, waitForLog, logMark, correlationId, send, NAV_HEADERS, trail } from './support/oauth-helpers.mjs';
import { startAdvantagePlatform, advLaunch, member, SCOPES, TOOL_CONFIGURATION, PLATFORM_CONFIGURATION } from './support/lti-advantage-platform.mjs';

/** 40 random characters (the worker wants at least 32). */
const REGISTRATION_SECRET = crypto.randomBytes(30).toString('base64url');
const KV_KEY = 'lti-registrations:v1';
/** What the worker's last page runs: the LMS's dialog is closed (LTI Dynamic Registration 1.0, 3.7). */
const CLOSE_MESSAGE = 'org.imsglobal.lti.close';
/** The name the worker gives a platform registered from http://127.0.0.1:<port>/…: the issuer's host. */
const HOST_NAME = '127.0.0.1';

let worker;
let echo;
let lms;
/** Every registration token handed out, and every secret-like value, for the log check at the end. */
const issuedTokens = [];

// ---------------------------------------------------------------------------
// Helpers

const qs = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)).toString();
/**
 * The URL the LMS opens: the admin's `secret` (the right one unless given;
 * `null` leaves it out), plus what the LMS adds.
 */
const registerPath = ({ secret = REGISTRATION_SECRET, openid_configuration, registration_token } = {}) =>
  `/hub/lti13/register?${qs({ secret, openid_configuration, registration_token })}`;

/** A fresh registration token of the stand-in platform `name`. */
function tokenOf(name) {
  const t = lms.registrationToken(name);
  issuedTokens.push(t);
  return t;
}

/** The LMS opens the registration URL in its dialog (a browser navigation), with `jar`'s cookies if any. */
const openRegister = (params, jar) => send(worker, registerPath(params), jar, { headers: NAV_HEADERS });

/** The platforms the worker keeps in KV (NONCES, `lti-registrations:v1`); [] when none. */
async function stored() {
  const raw = await (await worker.kv('NONCES')).get(KV_KEY);
  return raw === null ? [] : JSON.parse(raw);
}

/** How much platform `name` of the stand-in has received so far. */
function seen(name) {
  const P = lms.state(name);
  return { requests: P.requests.length, config: P.configRequests.length, registration: P.registrationRequests.length };
}

/** The `detail` of the `error` log line of a failed answer (its correlation id), for assertion messages. */
async function errorDetail(r) {
  const id = correlationId(r.text);
  if (!id) return `(no correlation id in ${r.text.slice(0, 200)})`;
  const line = await waitForLog(worker, (l) => l.correlation_id === id);
  return line?.detail ?? `(no log line for ${id})`;
}

/** The groups the hub received in the login subrequest, sorted. */
const groupsOf = (login) =>
  (login.headers['x-forwarded-groups'] ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean)
    .sort();

/** The course groups `lti:<p>:<id>`, `lti:<p>:<label>` and one `lti:<p>:<id>:<Role>` per roster role, sorted. */
const expectedGroups = (p, id, label, roles = []) => [`lti:${p}:${id}`, `lti:${p}:${label}`, ...roles.map((r) => `lti:${p}:${id}:${r}`)].sort();

/** A launch of `user` from stand-in platform `name` up to the worker's answer to the form post; it must land in the hub. */
async function launch(name, user, opts = {}) {
  const from = echo.requests.length;
  const jar = opts.jar ?? cookieJar();
  const r = await advLaunch(lms, name, jar, { user, followAfter: false, ...opts });
  assert.equal(r.launch.status, 302, `launch of ${user} at ${name}: ${r.launch.status} ${r.launch.text.slice(0, 300)}\n${trail(r.chain)}`);
  const logins = hubLogins(echo, from);
  assert.equal(logins.length, 1, `one hub login for the launch of ${user}`);
  const [login] = logins;
  assert.equal(login.loggedIn, login.headers['x-forwarded-user'], 'the hub logged the user in');
  return { ...r, jar, login, username: login.headers['x-forwarded-user'], groups: groupsOf(login) };
}

/**
 * A launch from stand-in platform `name` (as `clientId`, default its current
 * client) that the worker must refuse at its login initiation: the chain ends
 * at the worker with `status`, the platform's authorize is never reached, and
 * the hub sees no login.
 */
async function refusedLaunch(name, { clientId, status = 401 } = {}) {
  const P = lms.state(name);
  const authorizeFrom = P.authorizeRequests.length;
  const hubFrom = echo.requests.length;
  const chain = await follow(null, lms.startUrl(name, { clientId }), cookieJar());
  const last = chain.at(-1);
  assert.ok(last.url.startsWith(`${worker.url}/hub/lti13/oauth_login?`), `the chain ends at the worker's login initiation:\n${trail(chain)}`);
  assert.equal(last.status, status, `a launch from ${name} as ${clientId ?? P.clientId} is refused:\n${trail(chain)}\n${last.text.slice(0, 200)}`);
  assert.equal(new URL(last.url).searchParams.get('client_id'), clientId ?? P.clientId);
  assert.equal(P.authorizeRequests.length, authorizeFrom, 'the platform was never asked to authenticate the user');
  assert.deepEqual(hubLogins(echo, hubFrom), [], 'no hub login');
  return last;
}

/** The inline scripts of an HTML page. */
const scriptsOf = (html) => [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/gi)].map((m) => m[1]);
const sha256b64 = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('base64');
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
      // registers (and launches) for real
      { name: 'moodle' },
      // a second issuer on the same host: 409
      { name: 'second' },
      // its configuration names an issuer that is not a prefix of its URL
      { name: 'liar' },
      // refuses the registration
      { name: 'refuser' },
    ],
  });
  echo = await startHubEcho();
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  worker = await startWorker({
    port: workerPort,
    // kv: the default, JWKS_CACHE and NONCES (registrations are kept in NONCES)
    bindings: {
      HUB_ORIGIN: echo.url,
      SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
      LTI13_DYNAMIC_REGISTRATION: 'true',
      LTI13_REGISTRATION_SECRET: REGISTRATION_SECRET,
      LTI13_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    },
  });
  assert.equal(worker.url, tool);
  assert.equal(REGISTRATION_SECRET.length, 40);
  const health = await worker.fetch('/_hubgate/health');
  const healthText = await health.text();
  assert.equal(health.status, 200, `the worker refused its configuration (dynamic registration alone, no LTI13_PLATFORMS): ${healthText}\n${worker.logs.join('\n')}`);
});

after(async () => {
  await Promise.allSettled([worker?.close(), echo?.close(), lms?.close()]);
});

// ---------------------------------------------------------------------------

describe('who may register: the registration secret (no session here)', () => {
  test('without the secret, or with a wrong one, and no session: 403, and the platform receives nothing (no configuration fetch, no registration)', async () => {
    const token = tokenOf('moodle');
    const before = seen('moodle');
    const wrong = [
      null, // no secret at all
      '',
      crypto.randomBytes(30).toString('base64url'), // 40 other characters
      REGISTRATION_SECRET.slice(0, -1), // a prefix
      `${REGISTRATION_SECRET}x`, // one character more
      REGISTRATION_SECRET.toUpperCase() === REGISTRATION_SECRET ? REGISTRATION_SECRET.toLowerCase() : REGISTRATION_SECRET.toUpperCase(), // another case
      ` ${REGISTRATION_SECRET}`,
    ];
    for (const secret of wrong) {
      const r = await openRegister({ secret, openid_configuration: lms.configurationUrl('moodle'), registration_token: token });
      assert.equal(r.status, 403, `secret ${JSON.stringify(secret?.slice(0, 6))}…: ${r.status} ${await errorDetail(r)}`);
    }
    // the secret elsewhere than in the URL the admin pasted: still not allowed
    for (const headers of [{ authorization: `Bearer ${REGISTRATION_SECRET}` }, { cookie: `secret=${REGISTRATION_SECRET}` }]) {
      const r = await send(worker, registerPath({ secret: null, openid_configuration: lms.configurationUrl('moodle'), registration_token: token }), null, { headers: { ...NAV_HEADERS, ...headers } });
      assert.equal(r.status, 403, `secret in ${Object.keys(headers)[0]}: ${r.status}`);
    }
    // a session cookie that is not one
    const jar = cookieJar();
    jar.set(worker.url, 'hubgate', 'forged.session.value');
    const forged = await openRegister({ secret: null, openid_configuration: lms.configurationUrl('moodle'), registration_token: token }, jar);
    assert.equal(forged.status, 403, 'a forged session cookie');

    assert.deepEqual(seen('moodle'), before, 'the platform received nothing: no configuration fetch, no registration');
    assert.deepEqual(lms.strayRequests, []);
    assert.equal(lms.state('moodle').registrationTokens.get(token).usedAt, null, 'the registration token is still unused');
    assert.deepEqual(await stored(), [], 'nothing registered');
  });
});

describe("refused registrations (while nothing is registered)", () => {
  test("an OpenID configuration whose issuer is not a prefix of its own URL: 400, nothing posted to the platform, nothing registered, and a launch from it is refused", async () => {
    const P = lms.state('liar');
    const lies = [
      lms.issuer('moodle'), // another platform's issuer, on the same origin
      `${lms.url}/p/li`, // a prefix of the URL as a string, not as a path
      `${lms.url}/p/liar/elsewhere`, // under the issuer, not above the configuration
      `http://localhost:${lms.port}/p/liar`, // the same server under another host name: another origin
      'https://lms.example.edu/p/liar', // another origin altogether
    ];
    try {
      for (const issuer of lies) {
        P.configPatch = { issuer };
        const token = tokenOf('liar');
        const before = seen('liar');
        const r = await openRegister({ openid_configuration: lms.configurationUrl('liar'), registration_token: token });
        const detail = await errorDetail(r);
        assert.equal(r.status, 400, `issuer ${issuer}: ${r.status} ${detail}`);
        assert.match(detail, /prefix/, `the reason logged for issuer ${issuer}`);
        const got = P.configRequests.slice(before.config);
        assert.equal(got.length, 1, `the configuration was fetched once for issuer ${issuer}`);
        assert.equal(got[0].authorization, `Bearer ${token}`, 'with the registration token');
        assert.equal(got[0].status, 200);
        assert.equal(P.registrationRequests.length, before.registration, `no registration was posted after the configuration naming ${issuer}`);
        // the token was not spent: the platform may be registered properly with it
        assert.equal(P.registrationTokens.get(token).usedAt, null);
      }
    } finally {
      P.configPatch = null;
    }
    assert.deepEqual(await stored(), [], 'nothing registered');
    assert.deepEqual(P.registrations, []);
    await refusedLaunch('liar');
    // …nor does the issuer it claimed gain anything: moodle is still unknown too
    await refusedLaunch('moodle');
    assert.deepEqual(P.problems, [], show(P.problems));
  });

  test('the platform refusing the registration (bad, missing or wrong registration token; an error; a dropped connection): 502, nothing stored, and a launch as its client is refused', async () => {
    const P = lms.state('refuser');
    const cases = [];
    // 1. No token of this platform outstanding (its configuration is public):
    //    the worker is given a token the platform never issued; the
    //    registration endpoint refuses it.
    {
      const made = `rt-${crypto.randomBytes(18).toString('base64url')}`;
      issuedTokens.push(made);
      const before = seen('refuser');
      const r = await openRegister({ openid_configuration: lms.configurationUrl('refuser'), registration_token: made });
      cases.push(['a token the platform never issued', r, await errorDetail(r)]);
      const [reg, ...more] = P.registrationRequests.slice(before.registration);
      assert.deepEqual(more, []);
      assert.equal(reg.authorization, `Bearer ${made}`, 'the registration carried the token as given');
      assert.equal(reg.status, 401);
      assert.equal(reg.error, 'invalid_token');
    }
    // 2. No registration_token at all: posted without Authorization, refused.
    {
      const before = seen('refuser');
      const r = await openRegister({ openid_configuration: lms.configurationUrl('refuser') });
      cases.push(['no registration_token', r, await errorDetail(r)]);
      const [cfg] = P.configRequests.slice(before.config);
      assert.equal(cfg.authorization, null, 'no Authorization without a registration_token');
      const [reg] = P.registrationRequests.slice(before.registration);
      assert.equal(reg.authorization, null);
      assert.equal(reg.status, 401);
    }
    // 3. A token is outstanding, the worker is given another: the
    //    configuration fetch is refused already (nothing is posted).
    const good = tokenOf('refuser');
    {
      const before = seen('refuser');
      const wrong = `rt-${crypto.randomBytes(18).toString('base64url')}`;
      issuedTokens.push(wrong);
      const r = await openRegister({ openid_configuration: lms.configurationUrl('refuser'), registration_token: wrong });
      cases.push(['a wrong token (the configuration is refused)', r, await errorDetail(r)]);
      const cfgs = P.configRequests.slice(before.config);
      assert.deepEqual(cfgs.map((c) => [c.authorization, c.status]), [[`Bearer ${wrong}`, 401]]);
      assert.equal(P.registrationRequests.length, before.registration, 'no registration posted after the configuration was refused');
    }
    // 4. The right token, but the platform fails: an error status, then a dropped connection.
    for (const failure of [400, 500, 'reset']) {
      P.fail.registration = failure;
      try {
        const before = seen('refuser');
        const r = await openRegister({ openid_configuration: lms.configurationUrl('refuser'), registration_token: good });
        cases.push([`the registration endpoint answering ${failure}`, r, await errorDetail(r)]);
        const [reg] = P.registrationRequests.slice(before.registration);
        assert.equal(reg.authorization, `Bearer ${good}`);
        assert.equal(reg.status, failure);
      } finally {
        P.fail.registration = null;
      }
    }
    for (const [what, r, detail] of cases) assert.equal(r.status, 502, `${what}: ${r.status} ${detail}`);
    assert.deepEqual(await stored(), [], 'nothing stored');
    assert.deepEqual(P.registrations, [], 'the platform assigned no client');
    assert.deepEqual([...P.clients.keys()], ['hubgate-refuser'], 'only the client it was configured with, which the worker never heard of');
    await refusedLaunch('refuser');
    assert.deepEqual(P.problems, [], show(P.problems));
  });
});

describe('registration', () => {
  const moodle = () => lms.state('moodle');
  let clientId;
  let deploymentId;

  test("the admin's URL, opened by the LMS with openid_configuration and registration_token: 200, a page that posts org.imsglobal.lti.close (its script allowed by hash), a valid registration received by the platform", async () => {
    lms.setRoster('moodle', 'course-7', [member('student1', ['Learner']), member('teacher1', ['Instructor'])]);
    const token = tokenOf('moodle');
    const before = seen('moodle');
    const mark = logMark(worker);
    const page = await openRegister({ openid_configuration: lms.configurationUrl('moodle'), registration_token: token });
    assert.equal(page.status, 200, `${page.status} ${await errorDetail(page)}`);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);

    // the page: one inline script, which posts the close message to the LMS window, allowed by its hash
    const scripts = scriptsOf(page.text);
    assert.equal(scripts.length, 1, `one script: ${show(scripts)}`);
    const [script] = scripts;
    assert.ok(script.includes('postMessage'), script);
    assert.ok(script.includes(`subject:'${CLOSE_MESSAGE}'`) || script.includes(`subject:"${CLOSE_MESSAGE}"`) || script.includes(`"subject":"${CLOSE_MESSAGE}"`), `the script posts {subject: '${CLOSE_MESSAGE}'}: ${script}`);
    assert.match(script, /window\.opener|window\.parent/, 'to the window that opened the tool (dialog or frame)');
    const csp = page.headers.get('content-security-policy') ?? '';
    const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src')) ?? '';
    assert.equal(scriptSrc, `script-src 'sha256-${sha256b64(script)}'`, `the CSP allows exactly that script, by hash: ${csp}`);
    assert.ok(!/unsafe-inline/.test(scriptSrc), csp);
    assert.match(csp, /default-src 'none'/, csp);

    // what the platform received: its configuration fetched, then one registration, both with the token
    const P = moodle();
    const cfgs = P.configRequests.slice(before.config);
    const regs = P.registrationRequests.slice(before.registration);
    assert.equal(cfgs.length, 1, 'the configuration was fetched once');
    assert.equal(regs.length, 1, 'one registration was posted');
    const [cfg] = cfgs;
    const [reg] = regs;
    assert.ok(cfg.at <= reg.at, 'the configuration first');
    assert.equal(cfg.method, 'GET');
    assert.equal(cfg.authorization, `Bearer ${token}`, 'the configuration fetched with the registration token');
    assert.equal(cfg.status, 200);
    assert.equal(reg.method, 'POST');
    assert.equal(reg.authorization, `Bearer ${token}`, 'the registration posted with the registration token as a bearer token');
    assert.equal(reg.headers['content-type'].split(';')[0].trim(), 'application/json');
    assert.deepEqual(reg.errors, [], 'the platform found nothing wrong with the registration');
    assert.equal(reg.status, 200);
    const body = reg.json;
    assert.equal(body.application_type, 'web');
    assert.deepEqual(body.response_types, ['id_token']);
    assert.ok(body.grant_types.includes('implicit') && body.grant_types.includes('client_credentials'), show(body.grant_types));
    assert.equal(body.initiate_login_uri, `${worker.url}/hub/lti13/oauth_login`);
    assert.deepEqual(body.redirect_uris, [`${worker.url}/hub/lti13/oauth_callback`]);
    assert.equal(body.jwks_uri, `${worker.url}/hub/lti13/jwks`);
    assert.equal(body.token_endpoint_auth_method, 'private_key_jwt');
    assert.equal(typeof body.client_name, 'string');
    const scopes = (body.scope ?? '').split(' ');
    for (const s of [SCOPES.nrps, SCOPES.lineitem, SCOPES.score]) assert.ok(scopes.includes(s), `scope ${s} requested: ${body.scope}`);
    const tc = body[TOOL_CONFIGURATION];
    assert.ok(tc, `the ${TOOL_CONFIGURATION} block: ${show(body)}`);
    assert.equal(tc.domain, HOST_NAME);
    assert.equal(tc.target_link_uri, `${worker.url}/hub/`);
    const types = tc.messages.map((m) => m.type).sort();
    assert.deepEqual(types, ['LtiDeepLinkingRequest', 'LtiResourceLinkRequest'], 'resource links, and deep linking (LTI13_PRIVATE_KEY is set)');
    // the key set it named is the one the worker serves
    const keys = await (await worker.fetch('/hub/lti13/jwks')).json();
    assert.equal(keys.keys.length, 1, show(keys));
    assert.deepEqual(P.problems, [], show(P.problems));

    // the platform's answer: a new client and deployment; its token is spent
    assert.equal(P.registrations.length, 1);
    ({ clientId, deploymentId } = P.registrations[0]);
    assert.equal(reg.answer.client_id, clientId);
    assert.equal(reg.answer[TOOL_CONFIGURATION].deployment_id, deploymentId);
    assert.notEqual(clientId, 'hubgate-moodle');
    assert.ok(P.registrationTokens.get(token).usedAt, 'the one-time token was used');
    assert.ok(page.text.includes(clientId), 'the page names the new client');

    // what the worker kept: the platform under the issuer's host name
    assert.deepEqual(await stored(), [
      {
        name: HOST_NAME,
        issuer: lms.issuer('moodle'),
        client_id: [clientId],
        authorize_url: `${lms.issuer('moodle')}/authorize`,
        jwks_endpoint: `${lms.issuer('moodle')}/jwks`,
        deployment_ids: [deploymentId],
        token_url: lms.tokenUrl('moodle'),
      },
    ]);
    const logged = await waitForLog(worker, (l) => l.event === 'lti_registered', { from: mark });
    assert.ok(logged, `an lti_registered log line:\n${worker.logs.slice(-10).join('\n')}`);
    assert.deepEqual(logged, { event: 'lti_registered', issuer: lms.issuer('moodle'), client_id: clientId, deployment_id: deploymentId, name: HOST_NAME });
    // the configuration the worker read (3.4), which named those endpoints
    const conf = cfg.configuration;
    assert.deepEqual(conf, lms.configuration('moodle'));
    assert.equal(conf.issuer, lms.issuer('moodle'));
    assert.equal(conf.registration_endpoint, `${lms.issuer('moodle')}/register`);
    assert.ok(conf.scopes_supported.includes(SCOPES.nrps));
    assert.deepEqual(conf[PLATFORM_CONFIGURATION], {
      product_family_code: 'hubgate-e2e',
      version: '1',
      messages_supported: [{ type: 'LtiResourceLinkRequest' }, { type: 'LtiDeepLinkingRequest' }],
    });
  });

  test('a launch from the platform as the new client right after: 302 to the target, the student logged in at the hub with the course groups lti:127.0.0.1:<context>', async () => {
    assert.ok(clientId, 'registered by the test before');
    const P = moodle();
    const tokenFrom = P.tokenRequests.length;
    const r = await launch('moodle', 'student1', { roles: 'Learner' });
    assert.equal(new URL(r.launch.location, worker.url).href, `${worker.url}/hub/`, `302 to the target: ${r.launch.location}`);
    const launched = P.launches.at(-1);
    assert.equal(launched.clientId, clientId, 'the platform launched as the registered client');
    assert.equal(launched.deploymentId, deploymentId);
    assert.equal(new URL(r.chain.find((c) => c.url.includes('/hub/lti13/oauth_login')).url).searchParams.get('client_id'), clientId);
    // The username: the email (LTI13_USERNAME_KEY's default) under the
    // platform's name: with dynamic registration any registered platform
    // could name any user, so usernames always carry the platform.
    assert.equal(r.username, `${HOST_NAME}:student1@example.edu`, `username ${r.username}`);
    checkHubLogin(assert, r.login, { user: r.username, email: 'student1@example.edu', admin: false, next: '/hub/' });
    assert.deepEqual(r.groups, expectedGroups(HOST_NAME, 'course-7', 'ADV7', ['Learner']), `groups ${r.groups}`);
    // the roster was read with a token the platform granted the new client
    const grants = P.tokenRequests.slice(tokenFrom);
    assert.ok(grants.length >= 1, 'a platform token was asked for (the roster)');
    for (const g of grants) {
      assert.equal(g.status, 200, show([g.error, g.description]));
      assert.equal(g.claims.iss, clientId, 'the client assertion names the registered client');
      assert.equal(g.claims.sub, clientId);
    }
    assert.ok(P.service('nrps', 'course-7').every((s) => s.status === 200));
    // an instructor too
    const t = await launch('moodle', 'teacher1', { roles: 'Instructor' });
    assert.deepEqual(t.groups, expectedGroups(HOST_NAME, 'course-7', 'ADV7', ['Instructor']));
    assert.deepEqual(P.problems, [], show(P.problems));
  });

  test('what was not registered is refused: the client the platform had before (never registered with the worker), the new client with another deployment', async () => {
    await refusedLaunch('moodle', { clientId: 'hubgate-moodle' });
    // the deployment the platform answered is the only one accepted for the new client
    const P = moodle();
    const authorizeFrom = P.authorizeRequests.length;
    const chain = await follow(null, lms.startUrl('moodle', { deploymentId: 'dep-elsewhere' }), cookieJar());
    const last = chain.at(-1);
    assert.ok(last.url.startsWith(`${worker.url}/hub/lti13/oauth_login?`), trail(chain));
    assert.equal(new URL(last.url).searchParams.get('client_id'), clientId);
    assert.equal(last.status, 403, `another deployment of the new client: ${last.status}`);
    assert.equal(P.authorizeRequests.length, authorizeFrom);
  });

  test('another issuer on the same host (127.0.0.1): 409, the name stays with the first; nothing posted to it, nothing stored, its launches refused', async () => {
    const P = lms.state('second');
    const storedBefore = await stored();
    const token = tokenOf('second');
    const before = seen('second');
    const r = await openRegister({ openid_configuration: lms.configurationUrl('second'), registration_token: token });
    const detail = await errorDetail(r);
    assert.equal(r.status, 409, `${r.status} ${detail}`);
    assert.ok(detail.includes(lms.issuer('moodle')), `the answer names the issuer holding the name: ${detail}`);
    assert.equal(P.configRequests.length - before.config, 1, 'its configuration was read (to learn the issuer)');
    assert.equal(P.registrationRequests.length, before.registration, 'no registration posted');
    assert.equal(P.registrationTokens.get(token).usedAt, null, 'its token is unspent');
    assert.deepEqual(await stored(), storedBefore, 'nothing stored');
    await refusedLaunch('second');
    // the first platform is unaffected
    const again = await launch('moodle', 'student1');
    assert.deepEqual(again.groups, expectedGroups(HOST_NAME, 'course-7', 'ADV7', ['Learner']));
  });
});

describe('after registration', () => {
  test('/hub/lti13/register without openid_configuration (or with one that is no URL): 400, nothing fetched', async () => {
    const before = ['moodle', 'second', 'liar', 'refuser'].map(seen);
    const storedBefore = await stored();
    for (const params of [{}, { registration_token: tokenOf('moodle') }, { openid_configuration: '' }, { openid_configuration: 'not a url' }]) {
      const r = await openRegister(params);
      assert.equal(r.status, 400, `${show(params)}: ${r.status} ${await errorDetail(r)}`);
    }
    assert.deepEqual(['moodle', 'second', 'liar', 'refuser'].map(seen), before, 'no platform was asked anything');
    assert.deepEqual(await stored(), storedBefore);
  });

  test("the registration token is one-time: the same URL opened again answers 502 (the platform refuses it), the registration kept as it was", async () => {
    const P = lms.state('moodle');
    const storedBefore = await stored();
    const [first] = P.registrations;
    // another token of the platform is outstanding (as when the admin starts a
    // new registration), so its configuration asks for one, and the spent
    // one is refused there already
    tokenOf('moodle');
    const before = seen('moodle');
    const r = await openRegister({ openid_configuration: lms.configurationUrl('moodle'), registration_token: first.token });
    assert.equal(r.status, 502, `${r.status} ${await errorDetail(r)}`);
    const cfgs = P.configRequests.slice(before.config);
    assert.deepEqual(cfgs.map((c) => [c.authorization, c.status, c.error]), [[`Bearer ${first.token}`, 401, 'used registration token']], 'the platform refused the spent token');
    assert.equal(P.registrationRequests.length, before.registration, 'nothing posted');
    assert.deepEqual(await stored(), storedBefore);
    assert.equal(P.registrations.length, 1);
  });

  test("a student's session is no substitute for the secret: 403, nothing fetched", async () => {
    const s = await launch('moodle', 'student1');
    assert.ok(s.jar.names().length > 0, 'the launch left a session cookie');
    const before = seen('moodle');
    const r = await openRegister({ secret: null, openid_configuration: lms.configurationUrl('moodle'), registration_token: tokenOf('moodle') }, s.jar);
    assert.equal(r.status, 403, `${r.status} ${await errorDetail(r)}`);
    assert.deepEqual(seen('moodle'), before);
  });

  test("a registered platform's instructor is no hub admin and may not register without the secret; with it, the same platform again adds a second client, and both launch", async () => {
    const P = lms.state('moodle');
    const t = await launch('moodle', 'teacher1', { roles: 'Instructor' });
    assert.equal(t.login.headers['x-forwarded-admin'], 'false', "a registered platform's roles make no hub admin (bind it to let them)");
    const [first] = P.registrations;
    const token = tokenOf('moodle');
    const before = seen('moodle');
    const refused = await openRegister({ secret: null, openid_configuration: lms.configurationUrl('moodle'), registration_token: token }, t.jar);
    assert.equal(refused.status, 403, `an LTI session registered a platform: ${refused.status}`);
    assert.deepEqual(seen('moodle'), before, 'the platform was contacted for a refused registration');
    const r = await openRegister({ secret: REGISTRATION_SECRET, openid_configuration: lms.configurationUrl('moodle'), registration_token: token });
    assert.equal(r.status, 200, `${r.status} ${await errorDetail(r)}`);
    assert.equal(P.registrations.length, 2);
    const second = P.registrations[1];
    assert.equal(second.token, token);
    assert.notEqual(second.clientId, first.clientId);
    const kept = await stored();
    assert.deepEqual(
      kept.map((p) => [p.name, p.issuer, p.client_id, p.deployment_ids]),
      [
        [HOST_NAME, lms.issuer('moodle'), [first.clientId], [first.deploymentId]],
        [HOST_NAME, lms.issuer('moodle'), [second.clientId], [second.deploymentId]],
      ],
      'the same issuer under the same name, one entry per client',
    );
    const viaNew = await launch('moodle', 'student1');
    assert.equal(P.launches.at(-1).clientId, second.clientId);
    const viaOld = await launch('moodle', 'student1', { clientId: first.clientId });
    assert.equal(P.launches.at(-1).clientId, first.clientId);
    assert.equal(viaNew.username, viaOld.username, 'one platform, one user, whichever client');
    assert.deepEqual(viaNew.groups, viaOld.groups);
  });

  test('no log line carries the registration secret or a registration token', async () => {
    await new Promise((r) => setTimeout(r, 100)); // workerd's output arrives asynchronously
    const secrets = [REGISTRATION_SECRET, ...issuedTokens];
    assert.ok(issuedTokens.length > 5);
    const leaks = worker.logs.filter((l) => secrets.some((s) => l.includes(s)));
    assert.deepEqual(leaks, []);
  });

  test('the stand-in platforms found nothing wrong in what the worker sent them', () => {
    for (const name of ['moodle', 'second', 'liar', 'refuser']) assert.deepEqual(lms.state(name).problems, [], name);
    assert.deepEqual(lms.strayRequests, []);
  });
});
