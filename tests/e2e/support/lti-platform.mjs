// Start the Python LTI 1.3 platform (tests/e2e/support/lti-platform.py, on
// PyPI's lti1p3platform, from .tools/ltivenv) on 127.0.0.1 in its own process
// group, and drive launches through it and the worker like a browser would.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { REPO_ROOT, follow } from './worker.mjs';

export const LTI_PYTHON = path.join(REPO_ROOT, '.tools', 'ltivenv', 'bin', 'python');
const SCRIPT = path.join(REPO_ROOT, 'tests', 'e2e', 'support', 'lti-platform.py');

/**
 * @param {object} o
 * @param {number} o.port pre-picked port (the worker's LTI13_PLATFORMS names its issuer)
 * @param {string} o.tool the worker's origin
 * @param {Array<{name:string, clientId:string, deploymentId:string}>} o.platforms
 */
export async function startLtiPlatform({ port, tool, platforms, verbose = process.env.HUBGATE_E2E_VERBOSE === '1' }) {
  if (!fs.existsSync(LTI_PYTHON)) throw new Error(`${LTI_PYTHON} missing: run scripts/setup.sh`);
  const args = [SCRIPT, '--port', String(port), '--tool', tool];
  for (const p of platforms) args.push('--platform', `${p.name}:${p.clientId}:${p.deploymentId}`);
  if (verbose) args.push('--verbose');
  const child = spawn(LTI_PYTHON, args, { detached: true, stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'ignore'] });
  const stop = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  const ready = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('LTI platform did not start within 20 s')), 20_000);
    const rl = readline.createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(line));
      } catch (e) {
        reject(e);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`LTI platform exited with ${code}`));
    });
  }).catch((e) => {
    stop();
    throw e;
  });
  const url = `http://127.0.0.1:${ready.port}`;
  const api = {
    url,
    pid: child.pid,
    issuer: (name) => `${url}/p/${name}`,
    /** The LTI13_PLATFORMS entry for `name`. */
    registration(name) {
      const p = platforms.find((x) => x.name === name);
      return {
        issuer: api.issuer(name),
        client_id: p.clientId,
        authorize_url: `${url}/p/${name}/authorize`,
        jwks_endpoint: `${url}/p/${name}/jwks`,
        deployment_ids: [p.deploymentId],
      };
    },
    async stats(name) {
      return (await fetch(`${url}/p/${name}/stats`)).json();
    },
    async control(name, action) {
      const r = await fetch(`${url}/p/${name}/control?action=${action}`, { method: 'POST' });
      if (!r.ok) throw new Error(`control ${action}: ${r.status}`);
      return r.json();
    },
    async close() {
      if (child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return;
      }
      const deadline = Date.now() + 3000;
      while (child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      stop();
    },
  };
  return api;
}

/** Fields of the first <form> of an HTML page: { action, method, fields }. */
export function parseForm(htmlText) {
  const unescape = (s) =>
    s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const form = htmlText.match(/<form[^>]*action="([^"]*)"[^>]*>/i) ?? htmlText.match(/<form[^>]*>/i);
  if (!form) throw new Error(`no form in page: ${htmlText.slice(0, 200)}`);
  const action = unescape(form[1] ?? htmlText.match(/action="([^"]*)"/i)[1]);
  const fields = {};
  for (const m of htmlText.matchAll(/<input[^>]*>/gi)) {
    const name = m[0].match(/name="([^"]*)"/i);
    const value = m[0].match(/value="([^"]*)"/i);
    if (name) fields[unescape(name[1])] = value ? unescape(value[1]) : '';
  }
  return { action, fields };
}

/**
 * A launch through the platform and the worker:
 * platform /start → worker oauth_login → platform authorize (auto-post page)
 * → POST id_token+state to the worker → … following redirects (hub login, target).
 * @returns {{ authorize: object, launch: object, chain: object[], final: object, launchMs: number, form: object }}
 */
export async function ltiLaunch(platform, name, jar, { user = 'student1', kind = 'resource', roles = 'Learner', target, followAfter = true, max = 10 } = {}) {
  const q = new URLSearchParams({ user, kind, roles });
  if (target) q.set('target', target);
  const first = await follow(null, `${platform.url}/p/${name}/start?${q}`, jar, { max });
  const authorize = first.at(-1);
  if (authorize.status !== 200) {
    const err = new Error(`authorize step answered ${authorize.status}: ${authorize.text.slice(0, 300)}`);
    err.chain = first;
    throw err;
  }
  const form = parseForm(authorize.text);
  const body = new URLSearchParams(form.fields).toString();
  const t0 = process.hrtime.bigint();
  const rest = await follow(null, form.action, jar, { method: 'POST', body, max: followAfter ? max : 1, stopAt: followAfter ? undefined : () => true });
  const launchMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { authorize, form, launch: rest[0], chain: [...first, ...rest], final: rest.at(-1), launchMs };
}
