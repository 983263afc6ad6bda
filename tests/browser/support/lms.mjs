// The LMS site of the real-browser suite: a small LTI 1.3 platform in Node
// (`jose` signs the launches), on https://127.0.0.1:<port> with the suite's
// local certificate, so the LMS and the tool (the worker on
// https://localhost:<port>) are two different sites in the browser.
//
//   GET  /course?user=&roles=&target=&storage=1&storage_target=&platform=&aside=&window=frame|new&auto=1
//        the course page. It holds the tool's iframe (name `tool-frame`) and
//        the third-party login initiation as a form POSTed into that frame
//        (or into a new window with window=new, submitted by clicking
//        `#open`): iss, login_hint, target_link_uri, lti_message_hint,
//        client_id, lti_deployment_id, and with storage=1 also
//        lti_storage_target (LTI Platform Storage; `_parent` unless
//        storage_target names a frame of the page). The page answers
//        the tool's postMessages as the LTI Client Side postMessages /
//        Platform Storage specs describe (`platform`):
//          lti     (default) lti.capabilities, lti.put_data, lti.get_data
//                  (values kept per sender origin, replies sent to
//                  event.source with targetOrigin = event.origin)
//          legacy  the same under the older org.imsglobal.lti.* names only;
//                  lti.* messages are logged and left unanswered
//          relay   an impostor test: the page computes the replies (both
//                  name sets) but has them delivered to the tool frame by
//                  the `aside` frame, i.e. from another origin
//          none    no storage script at all (no `window.__lti`)
//        Every message whose subject starts with lti. or org.imsglobal.lti.
//        is logged in `window.__lti.messages` (with event.origin and whether
//        it was answered) for the tests. `aside=<url>` adds a hidden frame
//        named `third-party-storage` on another site (third-party-site.mjs
//        /relay); what it reports (every message it received, with the
//        sender's origin; relays done) is in `window.__lti.aside`, and the
//        launch is submitted once it has loaded.
//   GET  /authorize  the OIDC authentication request from the tool (IMS
//        Security Framework 5.1.1.2): checked (scope, response_type,
//        response_mode, prompt, client_id, redirect_uri, login_hint,
//        lti_message_hint, state, nonce), then a page that auto-posts
//        id_token + state (+ lti_storage_target when the launch used it) to
//        the redirect_uri. A refused request is a 400 page saying why.
//   GET  /jwks       the platform's key set, also on a plain-http loopback
//        port (`jwksUrl`) for the worker's server-to-server fetch (workerd
//        does not trust the local certificate).
//
// Everything the platform saw is in `lms.authorizeRequests` / `lms.launches`.
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { SignJWT, exportJWK, calculateJwkThumbprint } from 'jose';
import { listen, closeServer } from '../../e2e/support/ports.mjs';

const ROLE = 'http://purl.imsglobal.org/vocab/lis/v2/membership#';
const CLAIM = 'https://purl.imsglobal.org/spec/lti/claim/';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(body);
}

const STORAGE_PREFIXES = { lti: ['lti.'], legacy: ['org.imsglobal.lti.'], relay: ['lti.', 'org.imsglobal.lti.'] };
export const ASIDE_FRAME = 'third-party-storage';

/**
 * The course page's script: the platform side of LTI Platform Storage.
 * @param {string} frameName the frame the capabilities name for put/get
 * @param {'lti'|'legacy'|'relay'} mode
 * @param {string|null} asideOrigin origin of the `aside` frame (relay mode and reports)
 */
function storageScript(frameName, mode, asideOrigin) {
  return `
(function () {
  var prefixes = ${JSON.stringify(STORAGE_PREFIXES[mode])};
  var relay = ${JSON.stringify(mode === 'relay')};
  var asideOrigin = ${JSON.stringify(asideOrigin)};
  var store = Object.create(null); // origin -> key -> value
  var log = [];
  var aside = [];
  function asideWindow() { return window.frames[${JSON.stringify(ASIDE_FRAME)}] || null; }
  window.__lti = {
    mode: ${JSON.stringify(mode)}, messages: log, store: store, aside: aside,
    // the tests' control: have the aside frame deliver any message to the tool frame
    relay: function (m) { var w = asideWindow(); if (w) w.postMessage({ relay: m, to: 'tool-frame' }, asideOrigin); },
  };
  window.addEventListener('message', function (event) {
    var d = event.data;
    if (asideOrigin && event.origin === asideOrigin && d && typeof d === 'object' && typeof d.aside === 'string') {
      aside.push({ kind: d.aside, origin: d.origin, subject: d.subject, message_id: d.message_id, data: d.data, at: Date.now() });
      return;
    }
    if (typeof d === 'string') { try { d = JSON.parse(d); } catch (e) { return; } }
    if (!d || typeof d !== 'object' || typeof d.subject !== 'string') return;
    if (d.subject.indexOf('lti.') !== 0 && d.subject.indexOf('org.imsglobal.lti.') !== 0) return;
    var p = null;
    prefixes.forEach(function (x) { if (d.subject.indexOf(x) === 0) p = x; });
    var entry = { subject: d.subject, key: d.key, value: d.value, message_id: d.message_id, origin: event.origin, answered: !!p && !/\\.response$/.test(d.subject), at: Date.now() };
    log.push(entry);
    if (!entry.answered) return;
    function reply(m) {
      m.message_id = d.message_id;
      if (relay) {
        var w = asideWindow();
        if (w) w.postMessage({ relay: m, to: 'tool-frame' }, asideOrigin);
        else log.push({ subject: 'relay-failed', error: 'no aside frame' });
        return;
      }
      try { event.source.postMessage(m, event.origin); } catch (e) { log.push({ subject: 'reply-failed', error: String(e) }); }
    }
    var mine = store[event.origin] || (store[event.origin] = Object.create(null));
    switch (d.subject.slice(p.length)) {
      case 'capabilities':
        reply({ subject: p + 'capabilities.response', supported_messages: [
          { subject: p + 'capabilities' },
          { subject: p + 'put_data', frame: ${JSON.stringify(frameName)} },
          { subject: p + 'get_data', frame: ${JSON.stringify(frameName)} },
        ] });
        break;
      case 'put_data':
        if (typeof d.key !== 'string' || !d.key || d.value === undefined) {
          reply({ subject: p + 'put_data.response', key: d.key, error: { code: 'bad_request', message: 'key and value are required' } });
          break;
        }
        mine[d.key] = d.value;
        reply({ subject: p + 'put_data.response', key: d.key, value: d.value });
        break;
      case 'get_data':
        if (typeof d.key !== 'string' || !(d.key in mine)) {
          reply({ subject: p + 'get_data.response', key: d.key, error: { code: 'bad_request', message: 'no value stored for this key and origin' } });
          break;
        }
        reply({ subject: p + 'get_data.response', key: d.key, value: mine[d.key] });
        break;
      default:
        reply({ subject: d.subject + '.response', error: { code: 'unsupported_subject', message: 'not supported by this platform' } });
    }
  });
})();`;
}

/**
 * @param {object} o
 * @param {{key:string, cert:string}} o.tls
 * @param {string} [o.name='lms'] the registration's name at the worker
 * @param {string} [o.clientId]
 * @param {string} [o.deploymentId]
 * @param {number} [o.port=0] https port (pre-pick it: the worker's bindings name the issuer)
 */
export async function startLms({ tls, name = 'lms', clientId = 'hubgate-browser-lms', deploymentId = 'dep-browser', port = 0 }) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = await exportJWK(publicKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  jwk.alg = 'RS256';
  jwk.use = 'sig';

  let tool = null; // the worker's origin, set once known
  let counter = 0;
  const pending = new Map(); // lti_message_hint -> launch
  const authorizeRequests = [];
  const launches = [];
  const jwksFetches = { count: 0 };

  const jwksBody = () => JSON.stringify({ keys: [jwk] });

  function coursePage(q) {
    if (!tool) return [503, 'text/plain', 'the tool is not registered yet\n'];
    const user = q.get('user') ?? 'student1';
    const roles = (q.get('roles') ?? 'Learner').split(',').filter(Boolean).map((r) => (r.includes('#') || r.includes('/') ? r : ROLE + r));
    const storage = q.get('storage') === '1';
    const storageTarget = q.get('storage_target') || '_parent';
    const platform = q.get('platform') ?? 'lti';
    if (!['lti', 'legacy', 'relay', 'none'].includes(platform)) return [400, 'text/plain', `unknown platform=${platform}\n`];
    const aside = q.get('aside') ? new URL(q.get('aside')) : null;
    if (platform === 'relay' && !aside) return [400, 'text/plain', 'platform=relay needs aside=<url>\n'];
    const win = q.get('window') === 'new' ? 'new' : 'frame';
    const auto = q.get('auto') !== '0' && win === 'frame';
    counter += 1;
    const hint = `launch-${counter}-${crypto.randomBytes(4).toString('hex')}`;
    const target = q.get('target') ? new URL(q.get('target'), tool).href : `${tool}/hub/`;
    const launch = { hint, user, roles, target, storage, storageTarget, window: win, email: q.get('email') ?? `${user}@example.edu`, created: Date.now() };
    pending.set(hint, launch);
    const fields = {
      iss: api.issuer,
      login_hint: user,
      target_link_uri: target,
      lti_message_hint: hint,
      client_id: clientId,
      lti_deployment_id: deploymentId,
      ...(storage ? { lti_storage_target: storageTarget } : {}),
    };
    const inputs = Object.entries(fields)
      .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
      .join('\n  ');
    const formTarget = win === 'new' ? '_blank' : 'tool-frame';
    const html = `<!doctype html><html><head><meta charset="utf-8"><title>Test LMS · Data Science 101</title>
<style>body{font-family:sans-serif;margin:0}header{padding:.5rem 1rem;background:#234;color:#fff}iframe{border:0;width:100%;height:calc(100vh - 3rem)}</style>
</head><body data-launch="${esc(hint)}">
<header>Test LMS · Data Science 101 · ${esc(user)} <button id="open" type="submit" form="launch">Open the tool${win === 'new' ? ' in a new window' : ''}</button></header>
<form id="launch" method="post" action="${esc(`${tool}/hub/lti13/oauth_login`)}" target="${formTarget}">
  ${inputs}
</form>
<iframe name="tool-frame" id="tool-frame" title="JupyterHub" src="about:blank" allow="clipboard-read; clipboard-write; fullscreen"></iframe>
${platform === 'none' ? '' : `<script>${storageScript(storageTarget, platform, aside ? aside.origin : null)}</script>`}
${aside ? `<iframe name="${ASIDE_FRAME}" id="aside" title="another site" src="${esc(aside.href)}" hidden></iframe>` : ''}
${auto ? (aside ? `<script>document.getElementById('aside').addEventListener('load', function () { document.getElementById('launch').submit(); }, { once: true });</script>` : `<script>document.getElementById('launch').submit();</script>`) : ''}
</body></html>`;
    return [200, 'text/html; charset=utf-8', html];
  }

  async function authorize(q) {
    const rec = { at: Date.now(), query: Object.fromEntries(q), problems: [] };
    authorizeRequests.push(rec);
    const problems = rec.problems;
    for (const [k, v] of Object.entries({ scope: 'openid', response_type: 'id_token', response_mode: 'form_post', prompt: 'none', client_id: clientId })) {
      if (q.get(k) !== v) problems.push(`${k} must be ${JSON.stringify(v)}, got ${JSON.stringify(q.get(k))}`);
    }
    if (q.get('redirect_uri') !== `${tool}/hub/lti13/oauth_callback`) problems.push(`redirect_uri ${JSON.stringify(q.get('redirect_uri'))} is not registered`);
    for (const k of ['state', 'nonce']) if (!q.get(k)) problems.push(`${k} missing`);
    const launch = pending.get(q.get('lti_message_hint') ?? '');
    if (!launch) problems.push(`unknown or used lti_message_hint ${JSON.stringify(q.get('lti_message_hint'))}`);
    else if (q.get('login_hint') !== launch.user) problems.push(`login_hint ${JSON.stringify(q.get('login_hint'))} is not ${JSON.stringify(launch.user)}`);
    if (problems.length) {
      return [400, 'text/html; charset=utf-8', `<!doctype html><title>LMS: authorization refused</title><h1>LMS: authorization refused</h1><pre id="problems">${esc(problems.join('\n'))}</pre>`];
    }
    pending.delete(launch.hint);
    const now = Math.floor(Date.now() / 1000);
    const idToken = await new SignJWT({
      nonce: q.get('nonce'),
      email: launch.email,
      name: launch.user.replace(/^./, (c) => c.toUpperCase()),
      given_name: launch.user,
      [`${CLAIM}message_type`]: 'LtiResourceLinkRequest',
      [`${CLAIM}version`]: '1.3.0',
      [`${CLAIM}deployment_id`]: deploymentId,
      [`${CLAIM}target_link_uri`]: launch.target,
      [`${CLAIM}resource_link`]: { id: `rl-${name}-1`, title: 'Week 1 notebook' },
      [`${CLAIM}roles`]: launch.roles,
      [`${CLAIM}context`]: { id: 'course-101', label: 'DS101', title: 'Data Science 101', type: ['http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering'] },
      [`${CLAIM}custom`]: { uname: launch.user },
      [`${CLAIM}launch_presentation`]: { document_target: launch.window === 'new' ? 'window' : 'iframe', return_url: `${api.url}/course` },
    })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'JWT' })
      .setIssuer(api.issuer)
      .setAudience(clientId)
      .setSubject(`sub-${launch.user}`)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey);
    const fields = { id_token: idToken, state: q.get('state') };
    if (launch.storage) fields.lti_storage_target = launch.storageTarget;
    launches.push({ ...launch, state: q.get('state'), nonce: q.get('nonce'), at: Date.now() });
    const inputs = Object.entries(fields)
      .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
      .join('');
    return [
      200,
      'text/html; charset=utf-8',
      `<!doctype html><html><head><title>LMS: launching</title></head><body><form id="f" method="post" action="${esc(q.get('redirect_uri'))}">${inputs}</form><script>document.getElementById('f').submit()</script></body></html>`,
    ];
  }

  async function handle(req, res, { plain }) {
    const url = new URL(req.url, 'https://127.0.0.1');
    try {
      if (url.pathname === '/jwks') {
        jwksFetches.count += 1;
        return send(res, 200, 'application/json', jwksBody(), { 'cache-control': 'max-age=300' });
      }
      if (plain) return send(res, 404, 'text/plain', 'only /jwks here\n');
      if (req.method !== 'GET') return send(res, 405, 'text/plain', 'method not allowed\n');
      if (url.pathname === '/course') return send(res, ...coursePage(url.searchParams));
      if (url.pathname === '/authorize') return send(res, ...(await authorize(url.searchParams)));
      if (url.pathname === '/favicon.ico') return send(res, 404, 'text/plain', '');
      return send(res, 404, 'text/plain', 'not found\n');
    } catch (err) {
      return send(res, 500, 'text/plain', `LMS error: ${err.stack}\n`);
    }
  }

  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => handle(req, res, { plain: false }));
  const plainServer = http.createServer((req, res) => handle(req, res, { plain: true }));
  const httpsPort = await listen(server, port);
  const jwksPort = await listen(plainServer, 0);

  const api = {
    name,
    clientId,
    deploymentId,
    url: `https://127.0.0.1:${httpsPort}`,
    port: httpsPort,
    issuer: `https://127.0.0.1:${httpsPort}`,
    authorizeUrl: `https://127.0.0.1:${httpsPort}/authorize`,
    jwksUrl: `http://127.0.0.1:${jwksPort}/jwks`,
    authorizeRequests,
    launches,
    jwksFetches,
    /** Tell the platform where the tool (the worker) is. */
    setTool(origin) {
      tool = origin.replace(/\/$/, '');
    },
    /** The worker's LTI13_PLATFORMS entry. */
    registration() {
      return { issuer: api.issuer, client_id: clientId, authorize_url: api.authorizeUrl, jwks_endpoint: api.jwksUrl, deployment_ids: [deploymentId], name };
    },
    /** The course page URL for a launch. */
    courseUrl({ user = 'student1', roles = 'Learner', target, storage = false, storageTarget, platform, aside, window: win = 'frame', auto } = {}) {
      const q = new URLSearchParams({ user, roles });
      if (target) q.set('target', target);
      if (storage) q.set('storage', '1');
      if (storageTarget) q.set('storage_target', storageTarget);
      if (platform) q.set('platform', platform);
      if (aside) q.set('aside', aside);
      if (win !== 'frame') q.set('window', win);
      if (auto === false) q.set('auto', '0');
      return `${api.url}/course?${q}`;
    },
    async close() {
      await Promise.all([closeServer(server), closeServer(plainServer)]);
    },
  };
  return api;
}
