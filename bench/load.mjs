#!/usr/bin/env node
// `npm run load`: a bounded load run of the built worker in workerd, next to
// a bare pass-through worker in the same workerd process (see
// bench/load-run.mjs for what it does and the knobs).
//
// This file only supervises: it starts bench/load-run.mjs in a process group
// of its own (with workerd and the origin under it), records the extra
// groups the run reports (the LTI platform runs in its own), and on exit,
// error, Ctrl-C or SIGTERM makes sure every one of those groups is gone:
// SIGINT to the run first (it stops its peers itself), then SIGTERM and
// SIGKILL to whatever group is left. The exit code is the run's.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const runner = path.join(here, 'load-run.mjs');

const child = spawn(process.execPath, [runner, ...process.argv.slice(2)], {
  detached: true, // its own process group: workerd and the origin inherit it
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
});
const groups = new Set([child.pid]);
child.on('message', (m) => {
  if (m && Number.isInteger(m.pgid) && m.pgid > 1) groups.add(m.pgid);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const groupAlive = (g) => {
  try {
    process.kill(-g, 0);
    return true;
  } catch {
    return false;
  }
};
const signalGroups = (sig) => {
  for (const g of groups) {
    try {
      process.kill(-g, sig);
    } catch {
      /* already gone */
    }
  }
};
/** SIGTERM every live group, wait up to `graceMs`, then SIGKILL what is left. */
async function reap(graceMs) {
  if (![...groups].some(groupAlive)) return;
  signalGroups('SIGTERM');
  const deadline = Date.now() + graceMs;
  while ([...groups].some(groupAlive) && Date.now() < deadline) await sleep(100);
  signalGroups('SIGKILL');
}

let childExit = null;
child.on('exit', async (code, signal) => {
  childExit = code ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 9) : 1);
  await reap(2000);
  process.exit(interrupted ? 130 : childExit);
});
child.on('error', (err) => {
  console.error(`load: could not start ${runner}: ${err.message}`);
  process.exit(2);
});

let interrupted = false;
async function onSignal(sig) {
  if (interrupted) {
    // second signal: no more waiting
    signalGroups('SIGKILL');
    process.exit(130);
  }
  interrupted = true;
  console.error(`\nload: ${sig}: stopping the run and every process it started`);
  try {
    process.kill(child.pid, 'SIGINT'); // the run stops its peers and exits
  } catch {
    /* already gone */
  }
  await sleep(10_000);
  if (childExit === null) {
    await reap(1000);
    process.exit(130);
  }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => void onSignal(sig));
// last resort (an exception in this file): nothing may outlive the supervisor
process.on('exit', () => signalGroups('SIGKILL'));
