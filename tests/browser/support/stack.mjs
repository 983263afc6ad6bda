// The two sites and everything behind them, all on loopback:
//
//   LMS site   https://127.0.0.1:L   the test LMS (support/lms.mjs): course page, authorize, JWKS
//   tool site  https://localhost:W   the built worker in workerd (Miniflare, the suite's certificate)
//                 → http://127.0.0.1:H  a real JupyterHub 6.1.1 (tests/e2e/support/jupyterhub.mjs)
//   IdP        http://127.0.0.1:I    the demo OpenID provider (tests/e2e/support/idp.mjs)
//   3rd site   https://127.0.0.2:T   sets two probe cookies (checks the browser's cookie setting)
//
// localhost and 127.0.0.1 are different sites in Chromium, so the tool in
// the LMS page's iframe is a cross-site frame, as with a real LMS.
//
// Server-to-server calls stay off the local certificate: the worker fetches
// the platform's key set from its plain-http loopback port, and the hub
// fetches the worker's /_hubgate/jwks.json through a small http relay on
// 127.0.0.1 (the relay trusts the local certificate).
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { generateKeyPair, exportJWK } from 'jose';
import { runMiniflare, hubgateModule, DEFAULT_SCRIPT, DEFAULT_DURABLE_OBJECTS } from '../../e2e/support/worker.mjs';
import { startIdp } from '../../e2e/support/idp.mjs';
import { startJupyterHub, jupyterhubMissing } from '../../e2e/support/jupyterhub.mjs';
import { freePort, listen, closeServer } from '../../e2e/support/ports.mjs';
import fs from 'node:fs';
import { localCertificate } from './tls.mjs';
import { startLms } from './lms.mjs';
import { startThirdPartySite } from './third-party-site.mjs';
import { findChromium } from './browser.mjs';

export const CLIENT_ID = 'hubgate-browser';
export const CLIENT_SECRET = 'hubgate-browser-secret';

/** Why the suite cannot run here (with the command that fixes it), or null. */
export async function missingPieces() {
  const problems = [];
  try {
    findChromium();
  } catch (err) {
    problems.push(err.message);
  }
  try {
    await import('playwright-core');
  } catch {
    problems.push('npm playwright-core is not installed: run `npm ci`');
  }
  if (!fs.existsSync(DEFAULT_SCRIPT)) problems.push(`${DEFAULT_SCRIPT} not found: run \`npm run build\``);
  const hub = jupyterhubMissing();
  if (hub) problems.push(hub);
  return problems;
}

/** http://127.0.0.1:R/_hubgate/jwks.json → https://localhost:W/_hubgate/jwks.json */
async function startJwksRelay(toolOrigin, ca) {
  const server = http.createServer((req, res) => {
    if (req.url !== '/_hubgate/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    const up = https.get(`${toolOrigin}/_hubgate/jwks.json`, { ca, timeout: 5000 }, (r) => {
      res.writeHead(r.statusCode ?? 502, { 'content-type': r.headers['content-type'] ?? 'application/json' });
      r.pipe(res);
    });
    up.on('timeout', () => up.destroy(new Error('timeout')));
    up.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`relay: ${err.message}\n`);
    });
  });
  const port = await listen(server, 0);
  return { url: `http://127.0.0.1:${port}/_hubgate/jwks.json`, close: () => closeServer(server) };
}

/**
 * Start the LMS, the IdP, the worker (https on localhost) and a real hub.
 * @returns {Promise<object>} { tls, lms, idp, worker, tool, hub, close() }
 */
export async function startStack({ verbose = process.env.HUBGATE_E2E_VERBOSE === '1', workerBindings = {} } = {}) {
  const s = { closers: [] };
  const close = async () => {
    for (const c of s.closers.reverse()) {
      await Promise.race([c().catch((e) => console.error('[browser stack] close failed:', e)), new Promise((r) => setTimeout(r, 30_000))]);
    }
    s.closers = [];
  };
  s.close = close;
  try {
    s.tls = localCertificate();
    const workerPort = await freePort();
    const hubPort = await freePort();
    s.tool = `https://localhost:${workerPort}`;
    s.hubOrigin = `http://127.0.0.1:${hubPort}`;

    s.lms = await startLms({ tls: s.tls });
    s.closers.push(() => s.lms.close());
    s.lms.setTool(s.tool);

    s.thirdParty = await startThirdPartySite({ tls: s.tls });
    s.closers.push(() => s.thirdParty.close());

    s.idp = await startIdp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${s.tool}/hub/oauth_callback`] }] });
    s.closers.push(() => s.idp.close());

    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const assertionKey = { ...(await exportJWK(privateKey)), kid: 'browser-es256-1', alg: 'ES256', use: 'sig' };
    s.bindings = {
      HUB_ORIGIN: s.hubOrigin,
      OIDC_ISSUER: s.idp.issuer,
      OAUTH_CLIENT_ID: CLIENT_ID,
      OAUTH_CLIENT_SECRET: CLIENT_SECRET,
      OAUTH2_USERNAME_KEY: 'preferred_username',
      ALLOWED_USERS: 'alice,bob,carol',
      ADMIN_USERS: 'carol',
      LOGIN_SERVICE: 'Demo IdP',
      SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
      ASSERTION_SIGNING_KEY: JSON.stringify(assertionKey),
      LTI13_PLATFORMS: JSON.stringify([s.lms.registration()]),
      ...workerBindings,
    };
    s.worker = await runMiniflare(
      {
        ...hubgateModule(),
        compatibilityDate: '2025-09-01',
        bindings: s.bindings,
        kvNamespaces: ['JWKS_CACHE', 'NONCES'],
        durableObjects: structuredClone(DEFAULT_DURABLE_OBJECTS),
        httpsKeyPath: s.tls.keyPath,
        httpsCertPath: s.tls.certPath,
      },
      { port: workerPort, verbose },
    );
    s.closers.push(() => s.worker.close());

    s.relay = await startJwksRelay(s.tool, s.tls.cert);
    s.closers.push(() => s.relay.close());

    s.hub = await startJupyterHub({ port: hubPort, issuer: s.tool, jwksUrl: s.relay.url, name: 'browser', verbose });
    s.closers.push(() => s.hub.close());
    return s;
  } catch (err) {
    await close();
    throw err;
  }
}

/** GET/POST to the tool from Node (trusting the local certificate); no redirects followed. */
export function toolFetch(s, p, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(p, s.tool), { method, headers, ca: s.tls.cert, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}
