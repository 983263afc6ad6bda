// A small LTI 1.3 platform (LMS) for the side-by-side benchmark, the same one
// for hubgate and for ltiauthenticator: the OIDC authorization step of a
// launch (IMS Security Framework 5.1.1.2-3) answered with the auto-posting
// form (response_mode=form_post) carrying an RS256 id_token signed with `jose`,
// and the platform's key set. Loopback only, in this process.
//
//   GET|POST /authorize?<authentication request>  → 200 page posting id_token + state to redirect_uri
//   GET      /jwks, /jwks/<tag>                    → the key set (counted in stats.jwks, and by tag in stats.jwksBy)
//
// Users are the demo users (tests/e2e/support/users.mjs): login_hint is the
// username; the id_token carries their email (the username on both sides),
// name, sub, a course context and the Learner role.
import crypto from 'node:crypto';
import http from 'node:http';
import { generateKeyPair, exportJWK, SignJWT, calculateJwkThumbprint } from 'jose';
import { DEMO_USERS } from '../../tests/e2e/support/users.mjs';
import { listen, closeServer } from '../../tests/e2e/support/ports.mjs';

const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';
const ROLE = 'http://purl.imsglobal.org/vocab/lis/v2/membership#';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * @param {object} o
 * @param {string} o.clientId the tool's client id at this platform (the same for both tools)
 * @param {string} o.deploymentId
 * @param {(redirectUri: string) => boolean} o.redirectAllowed the registered tools' launch URLs
 * @param {Record<string, object>} [o.users] default DEMO_USERS
 */
export async function startPlatform({ clientId, deploymentId, redirectAllowed, users = DEMO_USERS }) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const jwks = JSON.stringify({ keys: [{ ...pub, kid, alg: 'RS256', use: 'sig' }] });
  const stats = { authorize: 0, jwks: 0, jwksBy: {}, refused: 0 };

  let issuer = '';
  async function authorize(req, res, url) {
    const params = req.method === 'POST' ? new URLSearchParams(await readBody(req)) : url.searchParams;
    const p = (k) => params.get(k) ?? '';
    const fail = (status, msg) => {
      stats.refused += 1;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`${msg}\n`);
    };
    if (p('scope') !== 'openid' || p('response_type') !== 'id_token' || p('response_mode') !== 'form_post' || p('prompt') !== 'none') {
      return fail(400, 'not an LTI authentication request');
    }
    if (p('client_id') !== clientId) return fail(400, `unknown client_id ${p('client_id')}`);
    if (!redirectAllowed(p('redirect_uri'))) return fail(400, `redirect_uri not registered: ${p('redirect_uri')}`);
    if (!p('nonce') || !p('state')) return fail(400, 'nonce and state are required');
    const username = p('login_hint');
    const user = users[username];
    if (!user) return fail(400, `unknown login_hint ${username}`);
    stats.authorize += 1;
    const now = Math.floor(Date.now() / 1000);
    const idToken = await new SignJWT({
      nonce: p('nonce'),
      email: user.email,
      name: user.name,
      given_name: user.name.split(' ')[0],
      [`${LTI}message_type`]: 'LtiResourceLinkRequest',
      [`${LTI}version`]: '1.3.0',
      [`${LTI}deployment_id`]: deploymentId,
      [`${LTI}target_link_uri`]: p('redirect_uri').replace(/\/hub\/lti13\/oauth_callback$/, '/hub/'),
      [`${LTI}resource_link`]: { id: 'bench-resource-1', title: 'Lab 1' },
      [`${LTI}roles`]: [`${ROLE}Learner`],
      [`${LTI}context`]: { id: 'bench-course-1', label: 'BENCH101', title: 'Benchmarking 101', type: ['http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering'] },
      ...(p('lti_message_hint') ? { [`${LTI}custom`]: { hint: p('lti_message_hint') } } : {}),
    })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(clientId)
      .setSubject(user.sub)
      .setJti(crypto.randomBytes(12).toString('base64url'))
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey);
    const page = `<!doctype html><meta charset="utf-8"><title>Launching…</title>
<form id="launch" method="post" action="${esc(p('redirect_uri'))}">
<input type="hidden" name="id_token" value="${esc(idToken)}">
<input type="hidden" name="state" value="${esc(p('state'))}">
</form>
<script>document.getElementById('launch').submit()</script>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page);
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const jwksPath = /^\/jwks(?:\/([\w-]{1,32}))?$/.exec(url.pathname);
    if (jwksPath && req.method === 'GET') {
      stats.jwks += 1;
      const tag = jwksPath[1] ?? 'untagged';
      stats.jwksBy[tag] = (stats.jwksBy[tag] ?? 0) + 1;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      return res.end(jwks);
    }
    if (url.pathname === '/authorize' && (req.method === 'GET' || req.method === 'POST')) {
      authorize(req, res, url).catch((err) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`platform error: ${err.message}\n`);
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  const port = await listen(server, 0);
  const url = `http://127.0.0.1:${port}`;
  issuer = url;
  return {
    url,
    port,
    issuer,
    clientId,
    deploymentId,
    kid,
    stats,
    authorizeUrl: `${url}/authorize`,
    close: () => closeServer(server),
  };
}

/** Fields of the first <form> of an HTML page: { action, fields }. */
export function parseForm(htmlText) {
  const unescape = (s) =>
    s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const form = htmlText.match(/<form[^>]*action="([^"]*)"[^>]*>/i);
  if (!form) throw new Error(`no form in page: ${htmlText.slice(0, 200)}`);
  const fields = {};
  for (const m of htmlText.matchAll(/<input[^>]*>/gi)) {
    const name = m[0].match(/name="([^"]*)"/i);
    const value = m[0].match(/value="([^"]*)"/i);
    if (name) fields[unescape(name[1])] = value ? unescape(value[1]) : '';
  }
  return { action: unescape(form[1]), fields };
}
