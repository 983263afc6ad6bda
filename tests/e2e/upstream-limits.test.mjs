// Fetches to the identity provider are bounded: a key set over 128 KiB or an
// endpoint slower than 5 s is an upstream failure (502), never a hang or an
// unbounded read. Each case gets a fresh worker so its key cache is cold.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { cookieJar, oidcLogin } from './support/worker.mjs';
import { startOidcStack, trail, callbackEntry, waitForLog, logMark } from './support/oauth-helpers.mjs';

describe('bounded fetches to the IdP', { concurrency: true }, () => {
  const stacks = [];
  after(async () => {
    for (const s of stacks) await s.close();
  });

  async function callbackWith(fault, path) {
    const s = await startOidcStack();
    stacks.push(s);
    s.idp.setFault(path, fault);
    const mark = logMark(s.worker);
    const { chain } = await oidcLogin(s.worker, s.idp, 'alice', cookieJar(), '/hub/');
    return { s, chain, mark };
  }

  test('a JWKS larger than 128 KiB is refused: 502 at the callback', async () => {
    const huge = JSON.stringify({ keys: [], padding: 'x'.repeat(200 * 1024) });
    const { s, chain, mark } = await callbackWith({ status: 200, body: huge }, '/jwks');
    const cb = callbackEntry(chain);
    assert.ok(cb, trail(chain));
    assert.equal(cb.status, 502, trail(chain));
    const line = await waitForLog(s.worker, (l) => l.kind === 'oauth' && l.path === '/hub/oauth_callback', { from: mark });
    assert.match(line.detail, /larger than 131072 bytes/);
  });

  test('a JWKS endpoint slower than 5 s times out: 502 at the callback', async () => {
    const { s, chain, mark } = await callbackWith({ delayMs: 5600 }, '/jwks');
    const cb = callbackEntry(chain);
    assert.ok(cb, trail(chain));
    assert.equal(cb.status, 502, trail(chain));
    const line = await waitForLog(s.worker, (l) => l.kind === 'oauth' && l.path === '/hub/oauth_callback', { from: mark });
    assert.match(line.detail, /timed out after 5000 ms/);
  });

  test('a discovery endpoint slower than 5 s times out: 502 at the login start', async () => {
    const s = await startOidcStack();
    stacks.push(s);
    s.idp.setFault('/.well-known/openid-configuration', { delayMs: 5600 });
    const r = await s.worker.fetch('/hub/oauth_login', { headers: { accept: 'application/json' } });
    assert.equal(r.status, 502);
    const body = await r.json();
    assert.equal(body.error, 'Upstream service unavailable');
    assert.ok(body.correlation_id);
  });
});
