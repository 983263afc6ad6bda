// Start one "anchor" JupyterHub 6.1.1 for the side-by-side benchmark: the hub
// from .tools/anchorvenv (scripts/setup-anchors.sh) with
// jupyterhub-ltiauthenticator or OAuthenticator's GenericOAuthenticator,
// behind configurable-http-proxy from node_modules, on 127.0.0.1, with its own
// temporary work dir (config, sqlite, cookie secret, log) and ports.
//
// Modelled on tests/e2e/support/jupyterhub.mjs (read-only there): every
// process runs in its own process group; close() sends SIGTERM to the hub's
// group (the hub stops its proxy), waits, SIGKILLs, and then kills whatever
// still carries this hub's marker in its environment. The same sweep runs
// synchronously on process exit.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../tests/e2e/support/ports.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..');
export const ANCHOR_VENV = process.env.HUBGATE_ANCHORVENV ?? path.join(REPO_ROOT, '.tools', 'anchorvenv');
const CONFIG_PY = path.join(here, 'anchor_config.py');
const CHP = path.join(REPO_ROOT, 'node_modules', '.bin', 'configurable-http-proxy');
const MARKER = 'HUBGATE_ANCHOR_HUB_ID';
const STAMP = path.join(ANCHOR_VENV, '.hubgate-anchor-stamp');

/** Why the anchors cannot run here, or null when they can. */
export function anchorsMissing() {
  if (!fs.existsSync(path.join(ANCHOR_VENV, 'bin', 'jupyterhub')) || !fs.existsSync(STAMP)) {
    return `${ANCHOR_VENV} is not set up: run \`bash scripts/setup-anchors.sh\``;
  }
  if (!fs.existsSync(CHP)) return `${CHP} missing: run \`npm ci\``;
  return null;
}

const live = new Set();

function killGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* gone */
  }
}

function pgAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

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
      if (fs.readFileSync(`/proc/${e}/environ`).includes(needle)) out.push(Number(e));
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

function sweepSync(rec) {
  killGroup(rec.pgid, 'SIGKILL');
  for (const pid of pidsWithMarker(rec.id)) {
    killGroup(pid, 'SIGKILL');
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
    try {
      fs.rmSync(rec.workDir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @param {object} o
 * @param {'lti13'|'generic-oauth'} o.auth
 * @param {number} o.port the proxy's public port (pre-picked)
 * @param {number} o.hubPort the hub's own port (pre-picked)
 * @param {number} [o.proxyApiPort] configurable-http-proxy's API port (default: a free one)
 * @param {string} o.hubConnectUrl where the proxy reaches the hub (a delay proxy in front of hubPort)
 * @param {object} o.settings the authenticator's settings (keys of anchor_config.py's cfg)
 * @param {string} [o.name]
 * @param {boolean} [o.verbose]
 */
export async function startAnchorHub({ auth, port, hubPort, proxyApiPort, hubConnectUrl, settings = {}, name = auth, verbose = process.env.HUBGATE_BENCH_VERBOSE === '1', readyTimeoutMs = 90_000 }) {
  const missing = anchorsMissing();
  if (missing) throw new Error(missing);
  proxyApiPort ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const id = crypto.randomBytes(8).toString('hex');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `hubgate-anchor-${name}-`));
  const cfg = {
    work_dir: workDir,
    port,
    hub_port: hubPort,
    hub_connect_url: hubConnectUrl,
    proxy_api_port: proxyApiPort,
    chp_command: CHP,
    auth,
    log_level: 'INFO',
    ...settings,
  };
  const cfgPath = path.join(workDir, 'anchor.json');
  fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
  const env = {
    ...process.env,
    PATH: `${path.join(ANCHOR_VENV, 'bin')}:${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    VIRTUAL_ENV: ANCHOR_VENV,
    HUBGATE_ANCHOR_CONFIG: cfgPath,
    [MARKER]: id,
    JUPYTERHUB_CRYPT_KEY: crypto.randomBytes(32).toString('hex'),
    PYTHONUNBUFFERED: '1',
  };
  delete env.PYTHONPATH;
  delete env.JUPYTERHUB_API_TOKEN;

  const logs = [];
  const logFile = fs.createWriteStream(path.join(workDir, 'jupyterhub.log'));
  const child = spawn(path.join(ANCHOR_VENV, 'bin', 'jupyterhub'), ['-f', CONFIG_PY], {
    cwd: workDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const rec = { id, pgid: child.pid, workDir };
  live.add(rec);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      logs.push(line);
      logFile.write(`${line}\n`);
      if (verbose) process.stderr.write(`[anchor ${name}] ${line}\n`);
    });
  }
  const tail = (n = 60) => logs.slice(-n).join('\n');

  async function close() {
    if (!live.has(rec)) return;
    if (!exited) {
      killGroup(rec.pgid, 'SIGTERM');
      const deadline = Date.now() + 15_000;
      while (!exited && Date.now() < deadline) await sleep(100);
    }
    killGroup(rec.pgid, 'SIGTERM');
    for (const pid of pidsWithMarker(id)) killGroup(pid, 'SIGTERM');
    const deadline = Date.now() + 5_000;
    while ((pgAlive(rec.pgid) || pidsWithMarker(id).length) && Date.now() < deadline) await sleep(100);
    sweepSync(rec);
    live.delete(rec);
    await new Promise((r) => logFile.end(r));
    fs.rmSync(workDir, { recursive: true, force: true });
  }

  const started = Date.now();
  try {
    for (let i = 0; ; i += 1) {
      if (exited) throw new Error(`anchor jupyterhub (${name}) exited (${exited.signal ?? exited.code}) while starting:\n${tail()}`);
      if (Date.now() - started > readyTimeoutMs) throw new Error(`anchor jupyterhub (${name}) not ready after ${readyTimeoutMs} ms:\n${tail()}`);
      try {
        const res = await fetch(`${url}/hub/api/`, { signal: AbortSignal.timeout(2000) });
        const body = await res.text();
        if (res.status === 200 && body.includes('version')) break;
      } catch {
        /* not yet */
      }
      await sleep(Math.min(100 + i * 50, 500));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { url, port, hubPort, proxyApiPort, workDir, logs, tail, startupMs: Date.now() - started, close };
}
