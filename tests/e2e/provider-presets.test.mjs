// OAUTH_PROVIDER presets through the built worker in workerd, each against a
// local stand-in for its identity provider (support/provider-standins.mjs):
// one login per preset, and a named test per quirk or refusal. A refusal is a
// 403 (401 for a token that does not verify) at /hub/oauth_callback, and
// nothing reaches the hub. Run:
//   node --test tests/e2e/provider-presets.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { startWorker, cookieJar, follow } from './support/worker.mjs';
import { startHubEcho } from './support/hub-echo.mjs';
import {
  httpFetch,
  send,
  trail,
  callbackEntry,
  hubLogins,
  checkHubLogin,
  verifySession,
  waitForLog,
  correlationId,
  randomSecret,
  setCookieFor,
  isDeletion,
  SESSION_COOKIE,
  NAV_HEADERS,
} from './support/oauth-helpers.mjs';
import {
  startGitHubStandin,
  startGitLabStandin,
  startGoogleStandin,
  startAzureAdStandin,
  startAuth0Standin,
  startCILogonStandin,
  startKeycloakStandin,
  startRecorder,
  GITHUB_UA_REFUSAL,
  GITHUB_API_VERSION,
} from './support/provider-standins.mjs';

const SECRET = randomSecret();
const T = { timeout: 30_000 };
const SETUP = { timeout: 60_000 };

// ---------------------------------------------------------------------------
// Helpers

/** A worker for `standin` in front of `hub`; its callback registered at the stand-in. */
async function presetWorker(standin, hub, bindings, into) {
  const all = {
    HUB_ORIGIN: hub.url,
    SESSION_SECRET: SECRET,
    OAUTH_CLIENT_ID: standin.clientId,
    OAUTH_CLIENT_SECRET: standin.clientSecret,
    ...bindings,
  };
  const w = await startWorker({ bindings: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) });
  into.push(w);
  standin.registerRedirect(`${w.url}/hub/oauth_callback`);
  return w;
}

async function closeAll(workers, ...servers) {
  for (const w of workers) await w.close().catch(() => {});
  for (const s of servers) await s?.close().catch(() => {});
}

/**
 * A browser login at `worker` as `user` of `standin` (whose authorize endpoint
 * redirects straight back): /hub/oauth_login → stand-in → /hub/oauth_callback → …
 */
async function login(worker, standin, hub, user, { next = '/hub/', jar = cookieJar() } = {}) {
  standin.setUser(user);
  const hubMark = hub.requests.length;
  const mark = standin.requests.length;
  const chain = await follow(httpFetch, new URL(`/hub/oauth_login?next=${encodeURIComponent(next)}`, worker.url), jar, { max: 12 });
  return {
    worker,
    jar,
    chain,
    final: chain.at(-1),
    callback: callbackEntry(chain),
    seen: standin.requests.slice(mark),
    hubSeen: hub.requests.slice(hubMark),
    logins: hubLogins(hub, hubMark),
  };
}

/** What a failing assertion should show: the redirect trail, the last answer, the worker's last log lines. */
function diag(r) {
  const logs = r.worker
    .jsonLogs()
    .slice(-4)
    .map((l) => JSON.stringify(l).slice(0, 600))
    .join('\n');
  return `${trail(r.chain)}\n--- last answer ${r.final.status}: ${r.final.text.slice(0, 600)}\n--- worker log tail:\n${logs}`;
}

/** The login ended at the hub as `user` (the hub logged the worker's identity in, then served `next`). */
function expectAtHub(r, { user, email, next = '/hub/' }) {
  assert.ok(r.callback, `the login reached the callback\n${diag(r)}`);
  assert.equal(r.callback.status, 302, diag(r));
  assert.equal(r.final.status, 200, diag(r));
  const echo = r.final.json();
  assert.equal(echo.hub_user, user, diag(r));
  assert.equal(echo.path, new URL(next, 'http://x').pathname);
  assert.equal(r.logins.length, 1, 'one login subrequest at the hub');
  checkHubLogin(assert, r.logins[0], { user, email, next });
  const claims = verifySession(r.jar.get(SESSION_COOKIE), SECRET);
  assert.equal(claims.sub, user);
  assert.equal(claims.method, 'oauth');
  return r.logins[0];
}

/** The login was refused at the callback with `status`; no session, nothing at the hub. */
function expectRefused(r, status = 403) {
  assert.ok(r.callback, `the login reached the callback\n${diag(r)}`);
  const statuses = [].concat(status);
  assert.ok(statuses.includes(r.callback.status), `callback answered ${r.callback.status}, expected ${statuses.join(' or ')}\n${diag(r)}`);
  assert.equal(r.final, r.callback, 'the refusal ends the chain');
  assert.equal(r.jar.get(SESSION_COOKIE), undefined, 'no session');
  assert.deepEqual(setCookieFor(r.callback.setCookies, SESSION_COOKIE).filter((c) => !isDeletion(c)), []);
  assert.deepEqual(
    r.hubSeen.map((q) => `${q.method} ${q.path}`),
    [],
    'nothing reached the hub',
  );
}

/** Groups the hub login carried (X-Forwarded-Groups, comma-joined). */
const groupsOf = (hubLogin) => (hubLogin.headers['x-forwarded-groups'] ?? '').split(',').filter(Boolean);
const sorted = (xs) => [...xs].sort();
const scopeList = (s) => sorted(String(s ?? '').split(' ').filter(Boolean));

/** The one authorize request of a login at the stand-in. */
function authorizeOf(r, path) {
  const a = r.seen.filter((e) => e.path === path);
  assert.equal(a.length, 1, `one authorize request at ${path}: ${r.seen.map((e) => `${e.method} ${e.path}`).join(', ')}\n${diag(r)}`);
  return a[0];
}

/** An OpenID Connect authorize request as the contract has it: code flow, state, PKCE S256, nonce. */
function checkOidcAuthorize(q, worker, clientId, scopes) {
  assert.equal(q.response_type, 'code');
  assert.equal(q.client_id, clientId);
  assert.equal(q.redirect_uri, `${worker.url}/hub/oauth_callback`);
  assert.equal(q.code_challenge_method, 'S256');
  assert.match(q.code_challenge ?? '', /^[A-Za-z0-9_-]{43}$/);
  assert.ok((q.state ?? '').length >= 32, `state ${q.state}`);
  assert.ok((q.nonce ?? '').length >= 32, `nonce ${q.nonce}`);
  if (scopes) assert.deepEqual(scopeList(q.scope), sorted(scopes));
}

/** The token request of a login: a POST carrying the code and PKCE verifier. */
function tokenOf(r, path, { pkce = true } = {}) {
  const t = r.seen.filter((e) => e.path === path);
  assert.equal(t.length, 1, `one token request at ${path}\n${diag(r)}`);
  assert.equal(t[0].method, 'POST');
  const form = new URLSearchParams(t[0].body);
  assert.ok(form.get('code'), 'the code is redeemed');
  if (pkce) assert.match(form.get('code_verifier') ?? '', /^[A-Za-z0-9._~-]{43,128}$/);
  return t[0];
}

/** Start a login only: the worker's redirect to the provider. */
async function authorizeRedirect(worker) {
  const r = await send(worker, '/hub/oauth_login?next=%2Fhub%2F', cookieJar(), { headers: NAV_HEADERS });
  assert.equal(r.status, 302, `${r.status} ${r.text.slice(0, 600)}`);
  return new URL(r.location);
}

// ---------------------------------------------------------------------------
// GitHub

const GH_ORG = 'hubgate-test';
const GH_TEAM = 'hub-users';
const GH_USERS = {
  // org on page 2 of /user/orgs (a private membership: needs read:org), team on page 3 of /user/teams
  octocat: {
    login: 'octocat',
    id: 583231,
    name: 'The Octocat',
    email: null,
    emails: [
      { email: 'octocat@users.noreply.example', primary: false, verified: true, visibility: null },
      { email: 'octo@old.example', primary: false, verified: false, visibility: null },
      { email: 'octocat@uni.example.edu', primary: true, verified: true, visibility: 'private' },
    ],
    orgsPadding: 120,
    orgs: [{ login: GH_ORG, public: false }],
    teamsPadding: 230,
    teams: [{ slug: GH_TEAM, org: GH_ORG, name: 'Hub users' }],
  },
  // in the org (page 2) but not in the team; her primary email is unverified
  monalisa: {
    login: 'monalisa',
    email: null,
    emails: [
      { email: 'mona@unverified.example', primary: true, verified: false, visibility: 'private' },
      { email: 'mona@verified.example', primary: false, verified: true, visibility: null },
    ],
    orgsPadding: 110,
    orgs: [{ login: GH_ORG, public: false }],
    teams: [{ slug: 'other-team', org: GH_ORG }],
  },
  // a team of the same slug in another org, no listed org
  stranger: {
    login: 'stranger',
    email: null,
    emails: [{ email: 'stranger@example.net', primary: true, verified: true, visibility: 'public' }],
    orgs: [{ login: 'unrelated-org', public: true }],
    teams: [{ slug: GH_TEAM, org: 'unrelated-org' }],
  },
  // page 1 of /user/teams is full and its rel="next" names another origin (set in before())
  wanderer: { login: 'wanderer', email: 'wanderer@example.net', emails: [], orgs: [], teamsPadding: 100, teams: [{ slug: GH_TEAM, org: GH_ORG }] },
  // the team is on page 11
  looper: { login: 'looper', email: 'looper@example.net', emails: [], orgs: [], teamsPadding: 1000, teams: [{ slug: GH_TEAM, org: GH_ORG }] },
  // a public email on /user
  publicmail: {
    login: 'publicmail',
    email: 'pm@public.example',
    emails: [{ email: 'pm-primary@example.net', primary: true, verified: true, visibility: 'private' }],
    orgs: [{ login: GH_ORG, public: true }],
  },
};

/** Every REST request carries GitHub's required headers and the user's token. */
function checkGitHubApiHeaders(gh, reqs, login) {
  assert.ok(reqs.length > 0, 'the worker called the API');
  const authz = reqs[0].headers.authorization ?? '';
  assert.match(authz, /^Bearer gho_/);
  assert.equal(gh.tokens.get(authz.slice('Bearer '.length))?.user, login, 'the token issued for this login');
  for (const q of reqs) {
    const where = `${q.method} ${q.url}`;
    assert.equal(q.method, 'GET', where);
    assert.equal(q.headers.authorization, authz, where);
    assert.equal(q.headers.accept, 'application/vnd.github+json', where);
    assert.equal(q.headers['user-agent'], 'hubgate', where);
    assert.equal(q.headers['x-github-api-version'], GITHUB_API_VERSION, where);
  }
}

/** Page numbers requested from a paged list (page 1 may be asked without `page`). */
const pagesOf = (reqs) => reqs.map((q) => Number(q.query.page ?? '1')).sort((a, b) => a - b);

describe('github preset against a GitHub Enterprise stand-in', () => {
  let gh;
  let trap;
  let hub;
  let w; // ALLOWED_ORGANIZATIONS = hubgate-test:hub-users,other-org
  let wOrg; // ALLOWED_ORGANIZATIONS = hubgate-test
  const workers = [];

  before(async () => {
    trap = await startRecorder({ body: [] });
    gh = await startGitHubStandin({ users: GH_USERS });
    GH_USERS.wanderer.teamsNextOrigin = trap.url;
    // what following the foreign link would find: the allowed team
    trap.setAnswer([{ id: 1, slug: GH_TEAM, name: GH_TEAM, organization: { login: GH_ORG, id: 2 } }]);
    hub = await startHubEcho();
    const base = { OAUTH_PROVIDER: 'github', GITHUB_URL: gh.url };
    w = await presetWorker(gh, hub, { ...base, ALLOWED_ORGANIZATIONS: `${GH_ORG}:${GH_TEAM},other-org` }, workers);
    wOrg = await presetWorker(gh, hub, { ...base, ALLOWED_ORGANIZATIONS: GH_ORG }, workers);
  }, SETUP);
  after(() => closeAll(workers, hub, gh, trap));

  test('github: a member of an allowed team listed on page 3 of /user/teams reaches the hub as `login` with the verified primary email', T, async () => {
    const r = await login(w, gh, hub, 'octocat');
    const hubLogin = expectAtHub(r, { user: 'octocat', email: 'octocat@uni.example.edu' });
    // org and org:team memberships become groups
    const groups = groupsOf(hubLogin);
    assert.ok(groups.includes(GH_ORG), `groups: ${groups.slice(-5).join(',')}…`);
    assert.ok(groups.includes(`${GH_ORG}:${GH_TEAM}`), `groups: ${groups.slice(-5).join(',')}…`);

    // the web flow at GITHUB_URL
    const auth = authorizeOf(r, gh.paths.authorize);
    assert.equal(auth.query.client_id, gh.clientId);
    assert.equal(auth.query.redirect_uri, `${w.url}/hub/oauth_callback`);
    assert.ok((auth.query.state ?? '').length >= 32);
    assert.deepEqual(scopeList(auth.query.scope), sorted(['read:user', 'user:email', 'read:org']));
    const tok = tokenOf(r, gh.paths.token, { pkce: auth.query.code_challenge !== undefined });
    assert.match(tok.headers.accept ?? '', /application\/json/, 'the worker asks for JSON');
    assert.equal(new URLSearchParams(tok.body).get('client_id'), gh.clientId);

    // the REST API under {GITHUB_URL}/api/v3, with GitHub's headers on every call
    const api = r.seen.filter((q) => q.path.startsWith('/api/v3/'));
    checkGitHubApiHeaders(gh, api, 'octocat');
    assert.equal(api.filter((q) => q.path === gh.paths.user).length, 1);
    assert.ok(api.some((q) => q.path === gh.paths.emails), '/user has no email: /user/emails is read');
    const orgs = api.filter((q) => q.path === gh.paths.orgs);
    const teams = api.filter((q) => q.path === gh.paths.teams);
    for (const q of [...orgs, ...teams]) assert.equal(q.query.per_page, '100', q.url);
    assert.deepEqual(pagesOf(teams), [1, 2, 3], 'rel="next" followed to the team on page 3');
    assert.ok(pagesOf(orgs).includes(1), 'orgs read');
    assert.deepEqual(new Set(pagesOf(orgs)).size, pagesOf(orgs).length, 'no page read twice');
  });

  test('github: ALLOWED_ORGANIZATIONS=org admits a member whose private org membership is on page 2 of /user/orgs', T, async () => {
    const r = await login(wOrg, gh, hub, 'monalisa');
    const hubLogin = expectAtHub(r, { user: 'monalisa' });
    assert.ok(groupsOf(hubLogin).includes(GH_ORG));
    const orgs = r.seen.filter((q) => q.path === gh.paths.orgs);
    assert.deepEqual(pagesOf(orgs), [1, 2]);
    checkGitHubApiHeaders(gh, r.seen.filter((q) => q.path.startsWith('/api/v3/')), 'monalisa');
  });

  test('github: an unverified primary email is never used (nor a verified non-primary one)', T, async () => {
    const r = await login(wOrg, gh, hub, 'monalisa');
    const hubLogin = expectAtHub(r, { user: 'monalisa' });
    assert.ok(r.seen.some((q) => q.path === gh.paths.emails), '/user/emails was read');
    assert.ok(!hubLogin.headers['x-forwarded-email'], `email sent: ${hubLogin.headers['x-forwarded-email']}`);
    assert.doesNotMatch(JSON.stringify(hubLogin.headers), /mona@(un)?verified\.example/);
    assert.equal(verifySession(r.jar.get(SESSION_COOKIE), SECRET).email, undefined);
  });

  test("github: /user's own email is used when set", T, async () => {
    const r = await login(wOrg, gh, hub, 'publicmail');
    expectAtHub(r, { user: 'publicmail', email: 'pm@public.example' });
  });

  test('github: a user in no listed organization or team (same team slug in another org) → 403, nothing reaches the hub', T, async () => {
    const r = await login(w, gh, hub, 'stranger');
    expectRefused(r, 403);
    assert.ok(r.seen.some((q) => q.path === gh.paths.teams), 'the worker read the memberships before refusing');
  });

  test('github: an org member outside the listed team is refused (org:team needs the team)', T, async () => {
    const r = await login(w, gh, hub, 'monalisa');
    expectRefused(r, 403);
  });

  test('github: a Link rel="next" to another origin is not followed (the token never leaves the API origin)', T, async () => {
    const r = await login(w, gh, hub, 'wanderer');
    const teams = r.seen.filter((q) => q.path === gh.paths.teams);
    assert.ok(teams.length >= 1, `page 1 of /user/teams was read\n${diag(r)}`);
    assert.deepEqual(trap.requests.map((q) => `${q.method} ${q.url}`), [], 'no request reached the other origin');
    // the allowed team was only behind the foreign link
    expectRefused(r, [403, 502]);
  });

  test('github: pagination stops after 10 pages (a team on page 11 is never seen)', T, async () => {
    const r = await login(w, gh, hub, 'looper');
    const teams = r.seen.filter((q) => q.path === gh.paths.teams);
    assert.ok(teams.length >= 1 && teams.length <= 10, `${teams.length} pages of /user/teams read\n${diag(r)}`);
    expectRefused(r, [403, 502]);
  });

  test('github: the stand-in refuses an API call without User-Agent as GitHub does (so every passing login proves the worker sends one)', T, async () => {
    const bare = await httpFetch(`${gh.url}/api/v3/user`, { headers: { authorization: 'Bearer gho_whatever', accept: 'application/vnd.github+json' } });
    assert.equal(bare.status, 403);
    assert.deepEqual(await bare.json(), GITHUB_UA_REFUSAL);
    const anon = await httpFetch(`${gh.url}/api/v3/user`, { headers: { 'user-agent': 'probe' } });
    assert.equal(anon.status, 401);
    assert.equal((await anon.json()).message, 'Requires authentication');
  });
});

// ---------------------------------------------------------------------------
// Public-host defaults (no request leaves the machine: OAuth 2.0 has no discovery)

describe('github and gitlab defaults: the public hosts', () => {
  let hub;
  const workers = [];
  const dummy = { clientId: 'public-client', clientSecret: 'public-secret', registerRedirect() {} };
  before(async () => {
    hub = await startHubEcho();
  }, SETUP);
  after(() => closeAll(workers, hub));

  test('github without GITHUB_URL: authorize at https://github.com/login/oauth/authorize with read:user user:email', T, async () => {
    const w = await presetWorker(dummy, hub, { OAUTH_PROVIDER: 'github', ALLOWED_USERS: 'octocat' }, workers);
    const u = await authorizeRedirect(w);
    assert.equal(`${u.origin}${u.pathname}`, 'https://github.com/login/oauth/authorize');
    assert.equal(u.searchParams.get('client_id'), 'public-client');
    assert.equal(u.searchParams.get('redirect_uri'), `${w.url}/hub/oauth_callback`);
    assert.ok((u.searchParams.get('state') ?? '').length >= 32);
    assert.deepEqual(scopeList(u.searchParams.get('scope')), sorted(['read:user', 'user:email']));
  });

  test('gitlab without GITLAB_URL: authorize at https://gitlab.com/oauth/authorize with read_user', T, async () => {
    const w = await presetWorker(dummy, hub, { OAUTH_PROVIDER: 'gitlab', ALLOWED_USERS: 'someone' }, workers);
    const u = await authorizeRedirect(w);
    assert.equal(`${u.origin}${u.pathname}`, 'https://gitlab.com/oauth/authorize');
    assert.equal(u.searchParams.get('response_type'), 'code');
    assert.equal(u.searchParams.get('client_id'), 'public-client');
    assert.deepEqual(scopeList(u.searchParams.get('scope')), ['read_user']);
  });

  test('an unknown OAUTH_PROVIDER is a configuration error: 500 and a log line naming it', T, async () => {
    const w = await presetWorker(dummy, hub, {
      OAUTH_PROVIDER: 'myspace',
      OAUTH2_AUTHORIZE_URL: 'https://idp.example/authorize',
      OAUTH2_TOKEN_URL: 'https://idp.example/token',
      OAUTH2_USERDATA_URL: 'https://idp.example/user',
      ALLOWED_USERS: 'someone',
    }, workers);
    const r = await send(w, '/hub/oauth_login?next=%2Fhub%2F', cookieJar(), { headers: NAV_HEADERS });
    assert.equal(r.status, 500, r.text.slice(0, 300));
    assert.ok(await waitForLog(w, (l) => JSON.stringify(l).includes('OAUTH_PROVIDER')), w.logs.slice(-3).join('\n'));
  });
});

// ---------------------------------------------------------------------------
// GitLab

const GL_USERS = {
  gldev: { id: 4201, username: 'gldev', name: 'Gitta Dev', email: 'gldev@uni.example' },
  reporter: { id: 4202, username: 'reporter', name: 'Rita Reporter', email: 'rita@uni.example' },
  developer: { id: 4203, username: 'developer', name: 'Dev Eloper', email: 'dev@uni.example' },
  outsider: { id: 4204, username: 'outsider', name: 'Otto Outsider', email: 'otto@elsewhere.example' },
};
const GL_GROUPS = {
  org: { id: 10, members: {} },
  'org/sub': { id: 11, members: { 4201: 30 } },
};
const GL_PROJECTS = { 77: { path_with_namespace: 'org/sub/course', members: { 4202: 20, 4203: 30 } } };

describe('gitlab preset against a GitLab stand-in', () => {
  let gl;
  let hub;
  let w;
  const workers = [];
  before(async () => {
    gl = await startGitLabStandin({ users: GL_USERS, groups: GL_GROUPS, projects: GL_PROJECTS });
    hub = await startHubEcho();
    w = await presetWorker(gl, hub, { OAUTH_PROVIDER: 'gitlab', GITLAB_URL: gl.url, ALLOWED_GITLAB_GROUPS: 'org/sub', ALLOWED_PROJECT_IDS: '77' }, workers);
  }, SETUP);
  after(() => closeAll(workers, hub, gl));

  test('gitlab: a member of subgroup org/sub reaches the hub; the group is probed as org%2Fsub', T, async () => {
    const r = await login(w, gl, hub, 'gldev');
    expectAtHub(r, { user: 'gldev' });
    const auth = authorizeOf(r, gl.paths.authorize);
    assert.equal(auth.query.response_type, 'code');
    assert.equal(auth.query.redirect_uri, `${w.url}/hub/oauth_callback`);
    assert.deepEqual(scopeList(auth.query.scope), ['read_api', 'read_user']);
    tokenOf(r, gl.paths.token, { pkce: auth.query.code_challenge !== undefined });
    const api = r.seen.filter((q) => q.path.startsWith('/api/v4/'));
    assert.ok(api.some((q) => q.path === gl.paths.user));
    assert.ok(
      api.some((q) => /^\/api\/v4\/groups\/org%2Fsub\/members\/all\/4201$/i.test(q.path)),
      `group probe: ${api.map((q) => q.path).join(', ')}`,
    );
    assert.ok(!api.some((q) => q.path.startsWith('/api/v4/groups/org/sub')), 'never the unencoded path');
    for (const q of api) assert.match(q.headers.authorization ?? '', /^Bearer [0-9a-f]{64}$/, q.path);
  });

  test('gitlab: a project member with access_level 20 (Reporter) → 403', T, async () => {
    const r = await login(w, gl, hub, 'reporter');
    assert.ok(r.seen.some((q) => q.path === '/api/v4/projects/77/members/all/4202'), `project probe\n${diag(r)}`);
    expectRefused(r, 403);
  });

  test('gitlab: a project member with access_level 30 (Developer) is allowed', T, async () => {
    const r = await login(w, gl, hub, 'developer');
    expectAtHub(r, { user: 'developer' });
    assert.ok(r.seen.some((q) => q.path === '/api/v4/projects/77/members/all/4203'));
  });

  test('gitlab: a user in neither the group nor the project → 403', T, async () => {
    const r = await login(w, gl, hub, 'outsider');
    expectRefused(r, 403);
  });
});

// ---------------------------------------------------------------------------
// Google

const GOOGLE_USERS = {
  ada: { sub: '110248495921238986420', email: 'ada@uni.edu', email_verified: true, hd: 'uni.edu', name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace' },
  // a consumer Google account registered with a university address: no hd
  consumer: { sub: '110248495921238986421', email: 'x@uni.edu', email_verified: true, name: 'X Consumer' },
  // an account of another Workspace domain whose address reads like uni.edu
  spoof: { sub: '110248495921238986422', email: 'eve@uni.edu', email_verified: true, hd: 'evil.com' },
  unverified: { sub: '110248495921238986423', email: 'unv@uni.edu', email_verified: false, hd: 'uni.edu' },
  lin: { sub: '110248495921238986424', email: 'lin@lab.uni.edu', email_verified: true, hd: 'lab.uni.edu' },
};

describe('google preset against a Google stand-in', () => {
  let g;
  let hub;
  let w; // HOSTED_DOMAIN=uni.edu
  let wMany; // HOSTED_DOMAIN=uni.edu,lab.uni.edu
  const workers = [];
  before(async () => {
    g = await startGoogleStandin({ users: GOOGLE_USERS });
    hub = await startHubEcho();
    const base = { OAUTH_PROVIDER: 'google', OIDC_ISSUER: g.issuer, ALLOW_ALL: 'true' };
    w = await presetWorker(g, hub, { ...base, HOSTED_DOMAIN: 'uni.edu' }, workers);
    wMany = await presetWorker(g, hub, { ...base, HOSTED_DOMAIN: 'uni.edu,lab.uni.edu' }, workers);
  }, SETUP);
  after(() => closeAll(workers, hub, g));

  test("google: one hosted domain: hd=uni.edu logs in as the email's local part", T, async () => {
    const r = await login(w, g, hub, 'ada');
    expectAtHub(r, { user: 'ada', email: 'ada@uni.edu' });
    checkOidcAuthorize(authorizeOf(r, g.paths.authorize).query, w, g.clientId, ['openid', 'email']);
    tokenOf(r, g.paths.token);
  });

  test('google: an @uni.edu email without hd (consumer account) → 403', T, async () => {
    expectRefused(await login(w, g, hub, 'consumer'), 403);
  });

  test('google: hd=evil.com with an @uni.edu email → 403 (hd decides, never the email text)', T, async () => {
    expectRefused(await login(w, g, hub, 'spoof'), 403);
  });

  test('google: email_verified false → 403', T, async () => {
    expectRefused(await login(w, g, hub, 'unverified'), 403);
  });

  test('google: several hosted domains: the username is the whole email', T, async () => {
    expectAtHub(await login(wMany, g, hub, 'ada'), { user: 'ada@uni.edu', email: 'ada@uni.edu' });
    expectAtHub(await login(wMany, g, hub, 'lin'), { user: 'lin@lab.uni.edu', email: 'lin@lab.uni.edu' });
    expectRefused(await login(wMany, g, hub, 'spoof'), 403);
  });
});

// ---------------------------------------------------------------------------
// Azure AD (Microsoft identity platform v2.0)

const T_CONTOSO = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const T_FABRIKAM = 'f8cdef31-a31e-4b4a-93e4-5f571e91255a';
const G_STAFF = '2c6a1e8e-5f0e-4c1d-9a57-0d0e5d6c0a01';
const G_JUPYTER = '9b1f4c3a-7d2e-4e8b-b1c6-3f4a5b6c7d02';
const oid = () => crypto.randomUUID();
const AZ_USERS = {
  adele: { tid: T_CONTOSO, oid: oid(), name: 'Adele Vance', preferred_username: 'AdeleV@contoso.example', email: 'adelev@contoso.example', groups: [G_STAFF, G_JUPYTER] },
  fabi: { tid: T_FABRIKAM, oid: oid(), name: 'Fabian Fab', preferred_username: 'fabi@fabrikam.example', groups: [] },
  // iss names Fabrikam, tid says Contoso
  mixup: { tid: T_CONTOSO, issTenant: T_FABRIKAM, oid: oid(), name: 'Mix Up', preferred_username: 'mixup@contoso.example' },
  // no tid claim; iss a real tenant's
  notid: { tid: undefined, issTenant: T_CONTOSO, oid: oid(), name: 'No Tid', preferred_username: 'notid@contoso.example' },
  // more groups than a token holds: _claim_names/_claim_sources instead of groups
  bigorg: { tid: T_CONTOSO, oid: oid(), name: 'Big Org', preferred_username: 'bigorg@contoso.example', overage: true },
  // signed by a key the key set does not hold, under the published kid
  forged: { tid: T_CONTOSO, oid: oid(), name: 'Forged', preferred_username: 'forged@contoso.example', groups: [G_JUPYTER], signWith: 'foreign' },
  grace: { tid: T_CONTOSO, oid: oid(), name: 'Grace', preferred_username: 'grace.h@contoso.example' },
};

describe('azuread preset against a Microsoft identity platform stand-in', () => {
  let az;
  let hub;
  let wCommon; // AZURE_TENANT_ID=common, OAUTH2_USERNAME_KEY=preferred_username, ALLOW_ALL
  let wTenant; // AZURE_TENANT_ID=<Contoso>
  let wGroups; // common, ALLOWED_GROUPS=<jupyter group>
  let wDefault; // no tenant, no username key
  const workers = [];
  before(async () => {
    az = await startAzureAdStandin({ users: AZ_USERS });
    hub = await startHubEcho();
    const base = { OAUTH_PROVIDER: 'azuread', AZURE_AUTHORITY_HOST: az.url, OAUTH2_USERNAME_KEY: 'preferred_username' };
    wCommon = await presetWorker(az, hub, { ...base, AZURE_TENANT_ID: 'common', ALLOW_ALL: 'true' }, workers);
    wTenant = await presetWorker(az, hub, { ...base, AZURE_TENANT_ID: T_CONTOSO, ALLOW_ALL: 'true' }, workers);
    wGroups = await presetWorker(az, hub, { ...base, AZURE_TENANT_ID: 'common', ALLOWED_GROUPS: G_JUPYTER }, workers);
    wDefault = await presetWorker(az, hub, { OAUTH_PROVIDER: 'azuread', AZURE_AUTHORITY_HOST: az.url, ALLOW_ALL: 'true' }, workers);
  }, SETUP);
  after(() => closeAll(workers, hub, az));

  test("azuread common: the published {tenantid} issuer template is filled with the token's tid", T, async () => {
    const doc = await (await fetch(`${az.url}${az.discoveryPath('common')}`)).json();
    assert.equal(doc.issuer, `${az.url}/{tenantid}/v2.0`, 'the stand-in publishes the template, as Microsoft does');
    const r = await login(wCommon, az, hub, 'adele');
    const hubLogin = expectAtHub(r, { user: 'adelev@contoso.example' });
    assert.ok(r.seen.some((q) => q.path === az.discoveryPath('common')), `discovery under /common/v2.0: ${r.seen.map((q) => q.path).join(', ')}`);
    checkOidcAuthorize(authorizeOf(r, az.authorizePath('common')).query, wCommon, az.clientId);
    tokenOf(r, az.tokenPath('common'));
    assert.deepEqual(sorted(groupsOf(hubLogin)), sorted([G_STAFF, G_JUPYTER]), 'groups from the groups claim');
  });

  test('azuread common: a user of another tenant signs in too, iss filled with its own tid', T, async () => {
    expectAtHub(await login(wCommon, az, hub, 'fabi'), { user: 'fabi@fabrikam.example' });
  });

  test('azuread common: an id_token whose iss names another tenant than its tid → 401', T, async () => {
    expectRefused(await login(wCommon, az, hub, 'mixup'), 401);
  });

  test('azuread common: an id_token without tid is refused', T, async () => {
    expectRefused(await login(wCommon, az, hub, 'notid'), [401, 403]);
  });

  test('azuread tenant GUID: the issuer is exact; a token from another tenant → 401', T, async () => {
    const r = await login(wTenant, az, hub, 'adele');
    expectAtHub(r, { user: 'adelev@contoso.example' });
    assert.ok(r.seen.some((q) => q.path === az.discoveryPath(T_CONTOSO)), `discovery under /${T_CONTOSO}/v2.0: ${r.seen.map((q) => q.path).join(', ')}`);
    checkOidcAuthorize(authorizeOf(r, az.authorizePath(T_CONTOSO)).query, wTenant, az.clientId);
    expectRefused(await login(wTenant, az, hub, 'fabi'), 401);
  });

  test('azuread: ALLOWED_GROUPS admits a member of the group (object id in the groups claim)', T, async () => {
    const r = await login(wGroups, az, hub, 'adele');
    const hubLogin = expectAtHub(r, { user: 'adelev@contoso.example' });
    assert.ok(groupsOf(hubLogin).includes(G_JUPYTER));
    expectRefused(await login(wGroups, az, hub, 'fabi'), 403);
  });

  test('azuread: group overage (_claim_names, no groups) with ALLOWED_GROUPS → 403 saying the groups claim overflowed', T, async () => {
    const r = await login(wGroups, az, hub, 'bigorg');
    expectRefused(r, 403);
    // the reason, on the page itself or (pages are generic) in the log line its correlation id names
    const id = correlationId(r.final.text);
    const line = /overage/i.test(r.final.text) ? null : id && (await waitForLog(wGroups, (l) => l.correlation_id === id));
    assert.ok(/overage/i.test(r.final.text) || /overage/i.test(JSON.stringify(line ?? {})), `the refusal names the overage: page ${r.final.text.slice(0, 300)} / log ${JSON.stringify(line)}`);
  });

  test('azuread: group overage without a group rule still signs in (no groups)', T, async () => {
    const r = await login(wCommon, az, hub, 'bigorg');
    const hubLogin = expectAtHub(r, { user: 'bigorg@contoso.example' });
    assert.deepEqual(groupsOf(hubLogin), []);
  });

  test('azuread: an id_token signed by another key (kid of the published one) → 401', T, async () => {
    expectRefused(await login(wCommon, az, hub, 'forged'), 401);
  });

  test('azuread defaults: tenant common, username from the name claim', T, async () => {
    const r = await login(wDefault, az, hub, 'grace');
    expectAtHub(r, { user: 'grace' });
    assert.ok(r.seen.some((q) => q.path === az.discoveryPath('common')));
  });
});

// ---------------------------------------------------------------------------
// Auth0

const A0_USERS = {
  jane: { sub: 'auth0|6560a7c2b1e1f2a3b4c5d6e7', nickname: 'jane', name: 'jane@example.org', email: 'jane@example.org', email_verified: true, picture: 'https://s.gravatar.com/avatar/0?s=480', updated_at: '2024-11-18T08:00:00.000Z' },
  // iss without the trailing slash (set in before())
  slashless: { sub: 'auth0|6560a7c2b1e1f2a3b4c5d6e8', nickname: 'slashless', name: 'slashless@example.org', email: 'slashless@example.org', email_verified: true },
};

describe('auth0 preset against an Auth0 tenant stand-in', () => {
  let a0;
  let hub;
  let w;
  const workers = [];
  before(async () => {
    a0 = await startAuth0Standin({ users: A0_USERS });
    A0_USERS.slashless.issOverride = a0.url;
    hub = await startHubEcho();
    w = await presetWorker(a0, hub, { OAUTH_PROVIDER: 'auth0', AUTH0_DOMAIN: a0.url, OAUTH2_USERNAME_KEY: 'nickname', ALLOW_ALL: 'true' }, workers);
    a0.allowLogoutUrl(`${w.url}/_hubgate/signed_out`);
  }, SETUP);
  after(() => closeAll(workers, hub, a0));

  test('auth0: the issuer keeps its trailing slash (discovery at {issuer}.well-known/openid-configuration)', T, async () => {
    assert.ok(a0.issuer.endsWith('/'));
    const r = await login(w, a0, hub, 'jane');
    expectAtHub(r, { user: 'jane', email: 'jane@example.org' });
    assert.ok(r.seen.some((q) => q.path === '/.well-known/openid-configuration'), r.seen.map((q) => q.path).join(', '));
    assert.ok(!r.seen.some((q) => q.path.startsWith('//')), 'no doubled slash');
    checkOidcAuthorize(authorizeOf(r, a0.paths.authorize).query, w, a0.clientId);
    tokenOf(r, a0.paths.token);
  });

  test('auth0: an id_token whose iss lacks the trailing slash → 401 (compared exactly)', T, async () => {
    expectRefused(await login(w, a0, hub, 'slashless'), 401);
  });

  test('auth0: logout without end_session_endpoint ends at /v2/logout?client_id&returnTo=<origin>/_hubgate/signed_out', T, async () => {
    const jar = cookieJar();
    expectAtHub(await login(w, a0, hub, 'jane', { jar }), { user: 'jane', email: 'jane@example.org' });
    const out = await send(w, '/hub/logout', jar, { headers: NAV_HEADERS });
    assert.ok([302, 303].includes(out.status), `${out.status} ${out.text.slice(0, 300)}`);
    const to = new URL(out.location);
    assert.equal(`${to.origin}${to.pathname}`, `${a0.url}/v2/logout`);
    assert.equal(to.searchParams.get('client_id'), a0.clientId);
    assert.equal(to.searchParams.get('returnTo'), `${w.url}/_hubgate/signed_out`);
    assert.equal(jar.get(SESSION_COOKIE), undefined, 'the session is over');
    // Auth0 sends the browser back to the signed-out page
    const back = await follow(httpFetch, to, jar);
    assert.equal(back.at(-1).status, 200, trail(back));
    assert.equal(new URL(back.at(-1).url).pathname, '/_hubgate/signed_out');
  });
});

// ---------------------------------------------------------------------------
// CILogon

const IDP_UNI = 'https://idp.uni.edu/idp/shibboleth';
const IDP_GOOGLE = 'http://google.com/accounts/o8/id';
const IDP_GITHUB = 'http://github.com/login/oauth/authorize';
// OAuthenticator's `idps`; the default is not the first key on purpose
const CILOGON_IDPS = {
  [IDP_GOOGLE]: { username_derivation: { username_claim: 'email', action: 'prefix', prefix: 'google' }, allowed_domains: ['uni.edu', '*.lab.org'] },
  [IDP_UNI]: { username_derivation: { username_claim: 'eppn', action: 'strip_idp_domain', domain: 'uni.edu' }, allow_all: true, default: true },
  [IDP_GITHUB]: { username_derivation: { username_claim: 'email', action: 'prefix', prefix: 'gh' }, allowed_domains: ['uni.edu'] },
};
const CL_USERS = {
  jdoe: { idp: IDP_UNI, idp_name: 'University of Example', eppn: 'jdoe@uni.edu', eptid: `${IDP_UNI}!https://cilogon.org/shibboleth!b1Xc9w=`, email: 'john.doe@uni.edu', given_name: 'John', family_name: 'Doe', name: 'John Doe', affiliation: 'member@uni.edu;staff@uni.edu', ou: 'Physics' },
  visitor: { idp: IDP_UNI, idp_name: 'University of Example', eppn: 'visitor@partner.org', email: 'visitor@partner.org', given_name: 'Vi', family_name: 'Sitor' },
  jane: { idp: IDP_GOOGLE, idp_name: 'Google', email: 'jane@uni.edu', given_name: 'Jane', family_name: 'Roe', name: 'Jane Roe' },
  kim: { idp: IDP_GOOGLE, idp_name: 'Google', email: 'kim@physics.lab.org', given_name: 'Kim', family_name: 'Lee' },
  joe: { idp: IDP_GOOGLE, idp_name: 'Google', email: 'joe@gmail.com', given_name: 'Joe', family_name: 'Bloggs' },
  other: { idp: 'https://idp.other.edu/idp/shibboleth', idp_name: 'Other University', eppn: 'x@other.edu', email: 'x@other.edu', given_name: 'X', family_name: 'Other' },
};

describe('cilogon preset against a CILogon stand-in', () => {
  let cl;
  let hub;
  let w;
  const workers = [];
  before(async () => {
    cl = await startCILogonStandin({ users: CL_USERS });
    hub = await startHubEcho();
    w = await presetWorker(cl, hub, { OAUTH_PROVIDER: 'cilogon', CILOGON_HOST: cl.url, CILOGON_IDPS: JSON.stringify(CILOGON_IDPS), CILOGON_SKIN: 'hubgate' }, workers);
  }, SETUP);
  after(() => closeAll(workers, hub, cl));

  test('cilogon: the authorize request carries selected_idp (the default first, then the others) and skin', T, async () => {
    const u = await authorizeRedirect(w);
    assert.equal(`${u.origin}${u.pathname}`, `${cl.url}/authorize`);
    const q = Object.fromEntries(u.searchParams);
    checkOidcAuthorize(q, w, cl.clientId);
    const idps = (q.selected_idp ?? '').split(',');
    assert.equal(idps[0], IDP_UNI, `selected_idp=${q.selected_idp}`);
    assert.deepEqual(sorted(idps.slice(1)), sorted([IDP_GOOGLE, IDP_GITHUB]));
    assert.equal(q.skin, 'hubgate');
  });

  test('cilogon: strip_idp_domain: eppn jdoe@uni.edu from the default IdP (allow_all) logs in as jdoe', T, async () => {
    const r = await login(w, cl, hub, 'jdoe');
    expectAtHub(r, { user: 'jdoe' });
    tokenOf(r, cl.paths.token);
  });

  test('cilogon: strip_idp_domain leaves another domain on the name (never the bare local part)', T, async () => {
    const r = await login(w, cl, hub, 'visitor');
    assert.ok(!r.logins.some((l) => l.headers['x-forwarded-user'] === 'visitor'), diag(r));
    if (r.final.status === 200) expectAtHub(r, { user: 'visitor@partner.org' });
    else expectRefused(r, [403, 500]);
  });

  test('cilogon: prefix action and allowed_domains (fnmatch): google:jane@uni.edu and google:kim@physics.lab.org', T, async () => {
    expectAtHub(await login(w, cl, hub, 'jane'), { user: 'google:jane@uni.edu' });
    expectAtHub(await login(w, cl, hub, 'kim'), { user: 'google:kim@physics.lab.org' });
  });

  test("cilogon: an email outside the IdP's allowed_domains → 403", T, async () => {
    expectRefused(await login(w, cl, hub, 'joe'), 403);
  });

  test('cilogon: an idp claim that is not a configured key → 403', T, async () => {
    expectRefused(await login(w, cl, hub, 'other'), 403);
  });
});

// ---------------------------------------------------------------------------
// Keycloak

const KC_USERS = {
  alice: {
    sub: 'b2a3c4d5-e6f7-4a8b-9c0d-1e2f3a4b5c6d',
    preferred_username: 'alice',
    email: 'alice@uni.example',
    email_verified: true,
    given_name: 'Alice',
    family_name: 'Liddell',
    realm_access: { roles: ['default-roles-hub', 'offline_access', 'uma_authorization', 'jupyter'] },
    resource_access: { account: { roles: ['manage-account', 'view-profile'] } },
  },
  // `jupyter` only as a client role, not a realm role
  bob: {
    sub: 'c3b4d5e6-f7a8-4b9c-8d0e-2f3a4b5c6d7e',
    preferred_username: 'bob',
    email: 'bob@uni.example',
    email_verified: true,
    given_name: 'Bob',
    family_name: 'Builder',
    realm_access: { roles: ['default-roles-hub', 'offline_access', 'uma_authorization'] },
    resource_access: { jupyterhub: { roles: ['jupyter'] } },
  },
};

describe('keycloak preset against a Keycloak realm stand-in', () => {
  let kc;
  let hub;
  let w; // GROUPS_CLAIM=realm_access.roles, ALLOWED_GROUPS=jupyter
  let wOverride; // OAUTH2_USERNAME_KEY=email, OAUTH_SCOPES=openid email
  const workers = [];
  before(async () => {
    kc = await startKeycloakStandin({ users: KC_USERS, realm: 'hub' });
    hub = await startHubEcho();
    const base = { OAUTH_PROVIDER: 'keycloak', KEYCLOAK_URL: kc.url, KEYCLOAK_REALM: 'hub' };
    w = await presetWorker(kc, hub, { ...base, GROUPS_CLAIM: 'realm_access.roles', ALLOWED_GROUPS: 'jupyter' }, workers);
    wOverride = await presetWorker(kc, hub, { ...base, OAUTH2_USERNAME_KEY: 'email', OAUTH_SCOPES: 'openid email', ALLOW_ALL: 'true' }, workers);
  }, SETUP);
  after(() => closeAll(workers, hub, kc));

  test('keycloak: realm role jupyter in realm_access.roles admits; the username is preferred_username', T, async () => {
    const r = await login(w, kc, hub, 'alice');
    const hubLogin = expectAtHub(r, { user: 'alice', email: 'alice@uni.example' });
    assert.ok(groupsOf(hubLogin).includes('jupyter'), `groups: ${groupsOf(hubLogin)}`);
    assert.ok(r.seen.some((q) => q.path === kc.paths.discovery), `discovery at /realms/hub: ${r.seen.map((q) => q.path).join(', ')}`);
    checkOidcAuthorize(authorizeOf(r, kc.paths.authorize).query, w, kc.clientId);
    tokenOf(r, kc.paths.token);
  });

  test('keycloak: no jupyter realm role (only a client role of that name) → 403', T, async () => {
    expectRefused(await login(w, kc, hub, 'bob'), 403);
  });

  test('keycloak: a binding overrides a preset default (OAUTH2_USERNAME_KEY=email, OAUTH_SCOPES)', T, async () => {
    const r = await login(wOverride, kc, hub, 'bob');
    expectAtHub(r, { user: 'bob@uni.example', email: 'bob@uni.example' });
    checkOidcAuthorize(authorizeOf(r, kc.paths.authorize).query, wOverride, kc.clientId, ['openid', 'email']);
  });
});
