#!/usr/bin/env node
// Local demo with a REAL JupyterHub: `npm run dev:jupyterhub` (runs
// scripts/setup.sh, scripts/setup-jupyterhub.sh and scripts/build.sh first).
//
// Starts, all on 127.0.0.1:
//   - the demo OpenID provider (tests/e2e/support/idp.mjs)       port 9411, or a free one if busy
//   - the built worker in workerd (Miniflare, as in the e2e tests) port 8788, or a free one if busy
//   - JupyterHub 6 behind configurable-http-proxy, with the
//     `hubgate` authenticator (hub/) and single-user JupyterLab
//     servers run as the current user (tests/e2e/support/jupyterhub.mjs)
//                                                                   port 9412, or a free one if busy
// Open the printed worker URL and sign in as alice, bob or carol (admin);
// mallory is refused by the worker. Fresh secrets and keys every run; the
// hub's state lives in tests/e2e/.work/dev-hub-*/ and is removed on exit.
// Ctrl-C stops everything.
//
//   node scripts/dev-jupyterhub.mjs [--remote-user] [--verbose]
//     --remote-user  the hub uses jhub-remote-user-authenticator (X-Forwarded-User)
//                    instead of the signed assertion
//     --verbose      echo the hub's and workerd's logs
import crypto from 'node:crypto';
import { generateKeyPair, exportJWK } from 'jose';
import { startIdp } from '../tests/e2e/support/idp.mjs';
import { startWorker, DEFAULT_SCRIPT } from '../tests/e2e/support/worker.mjs';
import { startJupyterHub, jupyterhubMissing } from '../tests/e2e/support/jupyterhub.mjs';
import { DEMO_USERS } from '../tests/e2e/support/users.mjs';
import { preferredPort } from '../tests/e2e/support/ports.mjs';
import fs from 'node:fs';

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--remote-user', '--verbose'].includes(a)) {
    console.error(`dev-jupyterhub: unknown argument ${a}\nusage: node scripts/dev-jupyterhub.mjs [--remote-user] [--verbose]`);
    process.exit(2);
  }
}
const auth = args.has('--remote-user') ? 'remote-user' : 'hubgate';
const verbose = args.has('--verbose');

function fail(msg) {
  console.error(`dev-jupyterhub: ${msg}`);
  process.exit(1);
}
if (!fs.existsSync(DEFAULT_SCRIPT)) fail('build/worker/shim.mjs is missing: run `npm run build` first');
const missing = jupyterhubMissing();
if (missing) fail(missing);

const closers = [];
let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  console.error('dev-jupyterhub: stopping');
  for (const c of closers.reverse()) {
    await c().catch((e) => console.error(`dev-jupyterhub: ${e.message}`));
  }
  process.exit(code);
}
// Miniflare ends the process on SIGINT/SIGTERM itself (after disposing
// workerd); jupyterhub.mjs then kills the hub, its proxy and the single-user
// servers and removes the hub's work dir from its exit handler.
process.on('SIGINT', () => stop(130));
process.on('SIGTERM', () => stop(143));
process.on('SIGHUP', () => stop(129));

try {
  const workerPort = await preferredPort(8788);
  const hubPort = await preferredPort(9412);
  const workerUrl = `http://127.0.0.1:${workerPort}`;
  const clientId = 'hubgate-demo';
  const clientSecret = crypto.randomBytes(24).toString('base64url');

  const idp = await startIdp({
    port: await preferredPort(9411),
    quiet: !verbose,
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [`${workerUrl}/hub/oauth_callback`] }],
  });
  closers.push(() => idp.close());

  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: `dev-${crypto.randomBytes(4).toString('hex')}` };
  const worker = await startWorker({
    port: workerPort,
    verbose,
    bindings: {
      HUB_ORIGIN: `http://127.0.0.1:${hubPort}`,
      OIDC_ISSUER: idp.issuer,
      OAUTH_CLIENT_ID: clientId,
      OAUTH_CLIENT_SECRET: clientSecret,
      OAUTH2_USERNAME_KEY: 'preferred_username',
      ALLOWED_USERS: 'alice,bob,carol',
      ADMIN_USERS: 'carol',
      SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
      ASSERTION_SIGNING_KEY: JSON.stringify(signingKey),
      ASSERTION_AUTH_STATE_CLAIMS: 'name,email_verified',
      LOGIN_SERVICE: 'Demo IdP',
    },
  });
  closers.push(() => worker.close());

  console.error('dev-jupyterhub: starting JupyterHub …');
  const hub = await startJupyterHub({ port: hubPort, auth, issuer: worker.url, name: 'dev-hub', verbose });
  closers.push(() => hub.close());

  const users = Object.keys(DEMO_USERS)
    .map((u) => (u === 'carol' ? `${u} (admin)` : u === 'mallory' ? `${u} (refused)` : u))
    .join(', ');
  console.log(`
  hubgate + real JupyterHub ${auth === 'hubgate' ? '(hubgate authenticator: signed assertion)' : '(jhub-remote-user-authenticator: X-Forwarded-User)'}

    open            ${worker.url}/hub/home
    sign in as      ${users} — no password
    hub origin      ${hub.url}   (behind the worker; CHP + JupyterHub ${hub.hubPort ? `API on :${hub.hubPort}` : ''})
    demo IdP        ${idp.issuer}
    worker JWKS     ${worker.url}/_hubgate/jwks.json
    hub API token   ${hub.apiToken}
                    curl -H "Authorization: token <token>" ${worker.url}/hub/api/users
    hub log         ${hub.workDir}/jupyterhub.log

  Ctrl-C stops everything.
`);
  hub.exitPromise.then((e) => {
    if (!stopping) {
      console.error(`dev-jupyterhub: jupyterhub exited (${e.signal ?? e.code}); last lines:\n${hub.tail(30)}`);
      stop(1);
    }
  });
} catch (err) {
  console.error(`dev-jupyterhub: ${err.stack ?? err}`);
  await stop(1);
}
