// A real JupyterHub 6 on 127.0.0.1 for the end-to-end suite and the dev
// script: configurable-http-proxy from node_modules in front, sqlite, the
// SimpleLocalProcessSpawner running jupyterhub-singleuser (jupyter_server +
// JupyterLab + ipykernel) as the current user, and either this repository's
// `hubgate` authenticator (verifies X-Hubgate-Assertion against the worker's
// JWKS) or jhub-remote-user-authenticator reading X-Forwarded-User.
//
// Needs the venv from `bash scripts/setup-jupyterhub.sh` (.tools/jhvenv).
//
//   const port = await freePort();                   // the hub origin, known before the worker starts
//   const worker = await startWorker({ bindings: { HUB_ORIGIN: `http://127.0.0.1:${port}`, … } });
//   const hub = await startJupyterHub({ port, issuer: worker.url });
//   …
//   await hub.close();                               // hub, proxy and single-user servers, by process group
//
// Every process runs in its own process group. close() sends SIGTERM to the
// hub's group (the hub then stops its proxy and the single-user servers, which
// JupyterHub starts in groups of their own), waits, SIGKILLs, and finally
// kills any process still carrying this hub's marker in its environment.
// The same sweep runs synchronously on process exit, so a failed or
// interrupted test leaves nothing behind.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const JH_VENV = process.env.HUBGATE_JHVENV ?? path.join(REPO_ROOT, '.tools', 'jhvenv');
export const WORK_ROOT = path.join(REPO_ROOT, 'tests', 'e2e', '.work');
const CONFIG_PY = path.join(here, 'jupyterhub_config.py');
const CHP = path.join(REPO_ROOT, 'node_modules', '.bin', 'configurable-http-proxy');
const MARKER = 'HUBGATE_E2E_HUB_ID';

/** Why the real hub cannot run here, or null when it can. */
export function jupyterhubMissing() {
  for (const bin of ['jupyterhub', 'jupyterhub-singleuser']) {
    if (!fs.existsSync(path.join(JH_VENV, 'bin', bin))) {
      return `${path.join(JH_VENV, 'bin', bin)} missing: run \`bash scripts/setup-jupyterhub.sh\``;
    }
  }
  if (!fs.existsSync(CHP)) return `${CHP} missing: run \`npm ci\``;
  return null;
}

// --- process bookkeeping ----------------------------------------------------

const live = new Set(); // hub records with a process group that may be alive

function pgAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* gone */
  }
}

/** Pids whose environment carries `HUBGATE_E2E_HUB_ID=<id>` (Linux /proc). */
function pidsWithMarker(id) {
  const needle = Buffer.from(`${MARKER}=${id}\0`);
  const out = [];
  let entries = [];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const env = fs.readFileSync(`/proc/${e}/environ`);
      if (env.includes(needle)) out.push(Number(e));
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

function sweepSync(rec) {
  killGroup(rec.pgid, 'SIGKILL');
  for (const pid of pidsWithMarker(rec.id)) {
    killGroup(pid, 'SIGKILL'); // single-user servers and CHP lead their own groups
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

process.on('exit', () => {
  for (const rec of live) {
    sweepSync(rec);
    if (!rec.keepWorkDir) {
      try {
        fs.rmSync(rec.workDir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  }
});

// --- start ------------------------------------------------------------------

/**
 * Start JupyterHub behind configurable-http-proxy on 127.0.0.1.
 * @param {object} opts
 * @param {number} [opts.port] the proxy's public port = the hub origin the worker uses (default: free)
 * @param {'hubgate'|'remote-user'} [opts.auth='hubgate']
 * @param {string} [opts.issuer] worker origin (assertion `iss`); required for 'hubgate'
 * @param {string} [opts.audience] assertion `aud` (default: this hub's origin)
 * @param {string} [opts.jwksUrl] default `${issuer}/_hubgate/jwks.json`
 * @param {string} [opts.headerName='X-Forwarded-User'] for 'remote-user'
 * @param {string[]} [opts.adminUsers] c.Authenticator.admin_users
 * @param {string} [opts.name] a label for the work dir
 * @param {boolean} [opts.verbose] echo the hub's log (also HUBGATE_E2E_VERBOSE=1)
 * @param {number} [opts.readyTimeoutMs=90000]
 * @param {string} [opts.logLevel='INFO'] the hub's; 'DEBUG' also turns on the single-user servers' debug log
 * @param {boolean} [opts.keepWorkDir] keep the work dir tests/e2e/.work/NAME-XXXXXX (config, sqlite, jupyterhub.log, homes) after close
 *   (also HUBGATE_E2E_KEEP_WORK=1)
 */
export async function startJupyterHub({
  port,
  auth = 'hubgate',
  issuer,
  audience,
  jwksUrl,
  headerName = 'X-Forwarded-User',
  adminUsers = [],
  name = 'hub',
  verbose = process.env.HUBGATE_E2E_VERBOSE === '1',
  readyTimeoutMs = 90_000,
  logLevel = 'INFO',
  keepWorkDir = process.env.HUBGATE_E2E_KEEP_WORK === '1',
} = {}) {
  const missing = jupyterhubMissing();
  if (missing) throw new Error(missing);
  if (auth === 'hubgate' && !issuer) throw new Error('startJupyterHub: issuer (the worker origin) is required');

  port ??= await freePort();
  const hubPort = await freePort();
  const proxyApiPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const id = crypto.randomBytes(8).toString('hex');
  fs.mkdirSync(WORK_ROOT, { recursive: true });
  const workDir = fs.mkdtempSync(path.join(WORK_ROOT, `${name}-`));
  const apiToken = crypto.randomBytes(24).toString('hex');

  const cfg = {
    work_dir: workDir,
    hub_id: id,
    port,
    hub_port: hubPort,
    proxy_api_port: proxyApiPort,
    chp_command: CHP,
    singleuser_command: path.join(JH_VENV, 'bin', 'jupyterhub-singleuser'),
    auth,
    issuer,
    audience: audience ?? url,
    jwks_url: jwksUrl ?? (issuer ? `${issuer}/_hubgate/jwks.json` : undefined),
    header_name: headerName,
    admin_users: adminUsers,
    api_token: apiToken,
    log_level: logLevel,
    singleuser_debug: logLevel === 'DEBUG',
  };
  const cfgPath = path.join(workDir, 'hubgate-e2e.json');
  fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));

  const env = {
    ...process.env,
    PATH: `${path.join(JH_VENV, 'bin')}:${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    VIRTUAL_ENV: JH_VENV,
    HUBGATE_E2E_HUB_CONFIG: cfgPath,
    [MARKER]: id,
    JUPYTERHUB_CRYPT_KEY: crypto.randomBytes(32).toString('hex'),
    PYTHONUNBUFFERED: '1',
  };
  delete env.PYTHONPATH;
  delete env.JUPYTERHUB_API_TOKEN;

  const logs = [];
  const logFile = fs.createWriteStream(path.join(workDir, 'jupyterhub.log'));
  const child = spawn(path.join(JH_VENV, 'bin', 'jupyterhub'), ['-f', CONFIG_PY], {
    cwd: workDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group
  });
  const rec = { id, pgid: child.pid, workDir, keepWorkDir };
  live.add(rec);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  const waiters = new Set(); // line predicates waiting for a log line
  const pipe = (stream) => {
    const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', (line) => {
      logs.push(line);
      logFile.write(`${line}\n`);
      if (verbose) process.stderr.write(`[jupyterhub] ${line}\n`);
      for (const w of waiters) if (w.test(line)) w.resolve(line);
    });
  };
  pipe(child.stdout);
  pipe(child.stderr);

  const tail = (n = 60) => logs.slice(-n).join('\n');

  async function close() {
    if (!live.has(rec)) return;
    if (!exited) {
      killGroup(rec.pgid, 'SIGTERM');
      const deadline = Date.now() + 15_000;
      while (!exited && Date.now() < deadline) await sleep(100);
    }
    // The hub's group, then anything that still carries the marker
    // (single-user servers, kernels, the proxy: each in a group of its own).
    killGroup(rec.pgid, 'SIGTERM');
    for (const pid of pidsWithMarker(id)) killGroup(pid, 'SIGTERM');
    const deadline = Date.now() + 5_000;
    while ((pgAlive(rec.pgid) || pidsWithMarker(id).length) && Date.now() < deadline) await sleep(100);
    sweepSync(rec);
    live.delete(rec);
    await new Promise((r) => logFile.end(r));
    if (!keepWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
  }

  // Ready when the hub answers through the proxy (bounded).
  const started = Date.now();
  try {
    for (let i = 0; ; i += 1) {
      if (exited) throw new Error(`jupyterhub exited (${exited.signal ?? exited.code}) while starting:\n${tail()}`);
      if (Date.now() - started > readyTimeoutMs) throw new Error(`jupyterhub not ready after ${readyTimeoutMs} ms:\n${tail()}`);
      try {
        const res = await fetch(`${url}/hub/api/`, { signal: AbortSignal.timeout(2000) });
        const body = await res.text();
        if (res.status === 200 && body.includes('version')) break;
      } catch {
        /* not listening yet */
      }
      await sleep(Math.min(100 + i * 50, 500));
    }
  } catch (err) {
    await close();
    throw err;
  }

  const api = async (p, init = {}) => {
    const res = await fetch(new URL(`/hub/api${p}`, url), {
      redirect: 'manual',
      ...init,
      headers: { authorization: `token ${apiToken}`, ...(init.headers ?? {}) },
    });
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };

  return {
    url,
    origin: url,
    port,
    hubPort,
    proxyApiPort,
    workDir,
    apiToken,
    auth,
    logs,
    pid: child.pid,
    startupMs: Date.now() - started,
    tail,
    /** Hub REST API with the service token (straight to the proxy, not through the worker). */
    api,
    /** Lines the proxy logged for requests it forwarded (CHP debug: "PROXY WEB /path to …"). */
    proxiedRequests() {
      return logs.filter((l) => /\bPROXY (WEB|WS)\b/.test(l));
    },
    /** Resolve with the first log line (from now on) matching `re`, or reject after `timeoutMs`. */
    waitForLog(re, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const w = {
          test: (l) => re.test(l),
          resolve: (l) => {
            clearTimeout(t);
            waiters.delete(w);
            resolve(l);
          },
        };
        const t = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no log line matching ${re} in ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    exited: () => exited,
    exitPromise,
    close,
  };
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
