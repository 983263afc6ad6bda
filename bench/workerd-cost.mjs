#!/usr/bin/env node
// `node bench/workerd-cost.mjs`: what the built worker costs in workerd —
// cold start against a bare pass-through worker, per-request latency and
// workerd CPU against a bare worker in the same process, and the key-set,
// discovery, KV and Durable Object traffic per 10,000 launches and logins.
// Prints a table and writes the figures as JSON to
// bench/results/workerd-cost-<timestamp>.json. Figures only: nothing here
// asserts a time. See bench/cost/run.mjs for what each figure measures and
// the knobs (BENCH_COUNT, BENCH_COLD_ROUNDS, …).
//
// This file only supervises: it runs bench/cost/run.mjs in a process group
// of its own (workerd, spawned by Miniflare, inherits it) and on exit,
// error, Ctrl-C or SIGTERM makes sure that group is gone: SIGINT to the run
// first (it disposes its Miniflare instances and closes its servers), then
// SIGTERM and SIGKILL to whatever is left of the group.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const runner = path.join(here, 'cost', 'run.mjs');

const child = spawn(process.execPath, [runner, ...process.argv.slice(2)], {
  detached: true, // its own process group
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
});
const group = child.pid;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const alive = () => {
  try {
    process.kill(-group, 0);
    return true;
  } catch {
    return false;
  }
};
const signal = (sig) => {
  try {
    process.kill(-group, sig);
  } catch {
    /* already gone */
  }
};
async function reap(graceMs) {
  if (!alive()) return;
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await sleep(100);
  signal('SIGKILL');
}

let interrupted = false;
let exited = false;
child.on('exit', async (code, sig) => {
  exited = true;
  await reap(2000);
  process.exit(interrupted ? 130 : (code ?? (sig ? 1 : 0)));
});
child.on('error', (err) => {
  console.error(`workerd-cost: could not start ${runner}: ${err.message}`);
  process.exit(2);
});

async function onSignal(sig) {
  if (interrupted) {
    signal('SIGKILL');
    process.exit(130);
  }
  interrupted = true;
  console.error(`\nworkerd-cost: ${sig}: stopping the run and everything it started`);
  try {
    process.kill(child.pid, 'SIGINT'); // the run stops its peers and exits
  } catch {
    /* already gone */
  }
  await sleep(8000);
  if (!exited) {
    await reap(1000);
    process.exit(130);
  }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => void onSignal(sig));
// last resort: nothing may outlive the supervisor
process.on('exit', () => signal('SIGKILL'));
