#!/usr/bin/env node
// Local demo: `npm run dev` (runs scripts/setup.sh and scripts/build.sh first).
//
// Starts, all on 127.0.0.1:
//   - the demo OpenID provider (tests/e2e/support/idp.mjs)   port 9401, or a free one if busy
//   - the fake hub (tests/e2e/support/hub-echo.mjs)           port 9402, or a free one if busy
//   - `wrangler dev` with the built worker (wrangler.toml)    port 8787, inspector 9229
// and writes the worker's bindings to the git-ignored `.dev.vars` (fresh client
// and session secrets every run). Ctrl-C stops everything.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startIdp } from '../tests/e2e/support/idp.mjs';
import { startHubEcho } from '../tests/e2e/support/hub-echo.mjs';
import { DEMO_USERS } from '../tests/e2e/support/users.mjs';
import { preferredPort, portIsFree } from '../tests/e2e/support/ports.mjs';
import { startLtiPlatform } from '../tests/e2e/support/lti-platform.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORKER_PORT = 8787;
const INSPECTOR_PORT = 9229;
const DEV_VARS = path.join(root, '.dev.vars');
const MARKER = '# written by scripts/dev.mjs';

function fail(msg) {
  console.error(`dev: ${msg}`);
  process.exit(1);
}

const wranglerBin = path.join(root, 'node_modules', '.bin', 'wrangler');
if (!fs.existsSync(wranglerBin)) fail('node_modules/.bin/wrangler is missing: run `npm ci` first');
if (!fs.existsSync(path.join(root, 'wrangler.toml'))) fail('wrangler.toml is missing at the repository root');
if (!fs.existsSync(path.join(root, 'build', 'worker', 'shim.mjs'))) fail('build/worker/shim.mjs is missing: run `npm run build` first');
if (fs.existsSync(DEV_VARS) && !fs.readFileSync(DEV_VARS, 'utf8').startsWith(MARKER)) {
  fail('.dev.vars exists and was not written by this script; move it aside (it would be overwritten)');
}
if (!(await portIsFree(WORKER_PORT))) fail(`port ${WORKER_PORT} on 127.0.0.1 is busy (another wrangler dev?)`);
if (!(await portIsFree(INSPECTOR_PORT))) fail(`inspector port ${INSPECTOR_PORT} on 127.0.0.1 is busy`);

const workerUrl = `http://127.0.0.1:${WORKER_PORT}`;
const clientId = 'hubgate-demo';
const clientSecret = crypto.randomBytes(24).toString('base64url');

const idp = await startIdp({
  port: await preferredPort(9401),
  quiet: false,
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [`${workerUrl}/hub/oauth_callback`, `http://localhost:${WORKER_PORT}/hub/oauth_callback`],
    },
  ],
});
const hub = await startHubEcho({ port: await preferredPort(9402) });
// The demo LMS (lti1p3platform, from .tools/ltivenv): its page launches the demo course.
const lms = await startLtiPlatform({
  port: await preferredPort(9403),
  tool: workerUrl,
  platforms: [{ name: 'demo', clientId: 'hubgate-demo-lms', deploymentId: 'demo-deployment' }],
});
const { privateKey: ltiKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });

const vars = {
  HUB_ORIGIN: hub.url,
  OIDC_ISSUER: idp.issuer,
  OAUTH_CLIENT_ID: clientId,
  OAUTH_CLIENT_SECRET: clientSecret,
  SESSION_SECRET: crypto.randomBytes(32).toString('base64'),
  OAUTH2_USERNAME_KEY: 'preferred_username',
  ALLOWED_USERS: 'alice,bob',
  ADMIN_USERS: 'carol',
  LOGIN_SERVICE: 'Demo IdP',
  // One platform in the single-platform bindings (.dev.vars does not unescape JSON).
  LTI13_ISSUER: lms.registration('demo').issuer,
  LTI13_CLIENT_ID: lms.registration('demo').client_id,
  LTI13_AUTHORIZE_URL: lms.registration('demo').authorize_url,
  LTI13_JWKS_ENDPOINT: lms.registration('demo').jwks_endpoint,
  LTI13_DEPLOYMENT_IDS: lms.registration('demo').deployment_ids.join(','),
  LTI13_PRIVATE_KEY: ltiKey.export({ type: 'pkcs8', format: 'pem' }),
  LTI13_TOOL_NAME: 'Demo Course Hub',
};
fs.writeFileSync(
  DEV_VARS,
  `${MARKER} for \`npm run dev\`; regenerated on every run\n${Object.entries(vars)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join('\n')}\n`,
  { mode: 0o600 },
);

const child = spawn(
  wranglerBin,
  [
    'dev',
    '--config', path.join(root, 'wrangler.toml'),
    '--ip', '127.0.0.1',
    '--port', String(WORKER_PORT),
    '--inspector-port', String(INSPECTOR_PORT),
    '--show-interactive-dev-session=false',
  ],
  {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true, // own process group: workerd can outlive a plain SIGTERM to wrangler
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      // no lookups off this machine: the banner's version check and Request.cf download
      WRANGLER_HIDE_BANNER: 'true',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    },
  },
);
const groups = [child.pid];

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && groups.some(alive)) await new Promise((r) => setTimeout(r, 100));
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await Promise.allSettled([idp.close(), hub.close(), lms.close()]);
  process.exit(code);
}
function alive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
process.on('SIGINT', () => stop(130));
process.on('SIGTERM', () => stop(143));
process.on('SIGHUP', () => stop(129));
child.on('exit', (code, signal) => {
  if (!stopping) {
    console.error(`dev: wrangler exited (${signal ?? code}); stopping`);
    stop(code || 1);
  }
});

// Tell the user once the worker answers.
const started = Date.now();
for (;;) {
  if (stopping) break;
  try {
    const res = await fetch(`${workerUrl}/_hubgate/health`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    break;
  } catch {
    if (Date.now() - started > 120_000) {
      console.error('dev: the worker did not answer within 2 minutes');
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
if (!stopping) {
  const users = Object.entries(DEMO_USERS)
    .map(([name, u]) => {
      const role = vars.ADMIN_USERS.split(',').includes(name) ? 'admin' : vars.ALLOWED_USERS.split(',').includes(name) ? 'allowed' : 'refused';
      return `    ${name.padEnd(8)} groups: ${JSON.stringify(u.groups).padEnd(14)} ${role}`;
    })
    .join('\n');
  console.log(`
hubgate dev is up.

  Open      ${workerUrl}/hub/
  Demo IdP  ${idp.issuer}  (type a username, no password)
  Fake hub  ${hub.url}  (echoes what the worker sends it)
  Demo LMS  ${lms.url}/  (LTI 1.3: buttons launch the demo course through the worker)
  Devtools  inspector on 127.0.0.1:${INSPECTOR_PORT}
  Bindings  .dev.vars (regenerated each run)

  Demo users:
${users}

Ctrl-C stops everything.
`);
}
