// Headless Chromium (Debian's `chromium`, found by scripts/setup-browser.sh)
// driven by npm `playwright-core` through `executablePath`, with the flags
// that DESIGN.md's "Build facts" list for these machines and a fresh
// --user-data-dir (a persistent context: a real profile, as a student's
// browser has, not an incognito-like context).
//
// Third-party cookies are blocked by the profile's own setting
// (`profile.cookie_controls_mode = 1`, "Block third-party cookies", as the
// browsers students use do); `thirdPartyCookies: 'allow'` turns them on for a
// control. The suite checks the setting is in force (`probeThirdPartyCookies`).
//
// Everything the browser does is recorded (`recorder`): every request and
// response of every frame with the cookies the browser sent, the Set-Cookie
// lines it received, Location, the CSP and X-Frame-Options; failed requests
// (net::ERR_…); console messages. `explain()` turns that and the browser's
// cookie store (with partition keys) into a failure message.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
const SETUP = 'bash scripts/setup-browser.sh';
/** Screenshots taken when a test fails (git-ignored). */
export const FAILURES = path.join(REPO_ROOT, 'tests', 'browser', '.work', 'failures');

/** The chromium executable, or throw with the command that installs it. */
export function findChromium() {
  if (process.env.HUBGATE_CHROMIUM) {
    if (isExecutable(process.env.HUBGATE_CHROMIUM)) return process.env.HUBGATE_CHROMIUM;
    throw new Error(`HUBGATE_CHROMIUM=${process.env.HUBGATE_CHROMIUM} is not an executable file: unset it and run \`${SETUP}\``);
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of ['chromium', 'chromium-browser']) {
      const p = path.join(dir, name);
      if (isExecutable(p)) return p;
    }
  }
  if (isExecutable('/usr/bin/chromium')) return '/usr/bin/chromium';
  throw new Error(
    `Chromium is not installed (not on the PATH, not at /usr/bin/chromium): run \`${SETUP}\` ` +
      '(as root it runs `apt-get install -y chromium`; otherwise run `sudo apt-get update && sudo apt-get install -y chromium`)',
  );
}

function isExecutable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export function chromiumVersion(exe) {
  try {
    return execFileSync(exe, ['--version'], { timeout: 10_000 }).toString().trim();
  } catch {
    return 'chromium (version unknown)';
  }
}

async function playwright() {
  try {
    return await import('playwright-core');
  } catch (err) {
    throw new Error(`npm playwright-core is not installed (${err.code ?? err.message}): run \`npm ci\``);
  }
}

// Playwright's own --disable-features list minus ThirdPartyStoragePartitioning
// (Playwright turns storage partitioning off; a student's Chromium has it on).
// A later --disable-features replaces an earlier one in Chromium's command line.
const DISABLED_FEATURES = [
  'AvoidUnnecessaryBeforeUnloadCheckSync',
  'DestroyProfileOnBrowserClose',
  'HttpsUpgrades',
  'HttpsFirstBalancedModeAutoEnable',
  'LensOverlay',
  'MediaRouter',
  'PaintHolding',
  'AvoidCorsURLLoaderRestartOnRedirect',
  'OptimizationHints',
  'NetworkTimeServiceQuerying',
  'AimEnabled',
  'PreconnectToSearch',
  // One renderer for the LMS page and the tool frame. A launch moves the
  // frame LMS -> tool -> LMS (authorize) -> tool within a second; with each
  // site in its own process Playwright once lost the frame on the last hop
  // (CI: the tool's check page ran and messaged the LMS page while
  // frame.url() still said /authorize, and every later navigation went
  // unseen). Cookies, partitions, SameSite, frame-ancestors and postMessage
  // origins are decided outside the renderer and do not depend on this.
  'IsolateOrigins',
  'site-per-process',
];

/** DESIGN.md: the flags that keep Chromium's background connections quiet on a closed network. */
export const BASE_FLAGS = Object.freeze([
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

// Playwright kills the browsers it launched when this process exits; the
// profiles are removed here too.
const live = new Set(); // { dir }
process.on('exit', () => {
  for (const rec of live) {
    try {
      fs.rmSync(rec.dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});

/**
 * Launch Chromium with a fresh profile.
 * @param {object} o
 * @param {string} o.spki base64 SHA-256 SPKI pin of the local certificate
 * @param {'block'|'allow'} [o.thirdPartyCookies='block']
 * @param {{site:string, embeddedIn:string}[]} [o.blockCookies] Chromium's own
 *   per-site rule "block cookies" (content setting COOKIES = block, primary
 *   pattern the cookie's site, secondary pattern the top-level site): no
 *   cookie at all, partitioned ones included, for `site` in pages of
 *   `embeddedIn`; `site` at top level keeps its cookies.
 * @param {number} [o.timeoutMs=30000] launch timeout
 * @returns {Promise<{context:any, page:any, dir:string, exe:string, rec:ReturnType<typeof recorder>, close():Promise<void>}>}
 */
export async function launchBrowser({ spki, thirdPartyCookies = 'block', blockCookies = [], timeoutMs = 30_000, label = 'browser' }) {
  const exe = findChromium();
  const { chromium } = await playwright();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hubgate-${label}-`));
  // A first-run profile with the cookie setting already in place.
  fs.mkdirSync(path.join(dir, 'Default'), { recursive: true });
  const profile = { cookie_controls_mode: thirdPartyCookies === 'allow' ? 0 : 1 };
  if (blockCookies.length) {
    // "scheme://host:*" patterns (any port); 13… is a Chromium time stamp (µs since 1601)
    const pattern = (url) => `${new URL(url).protocol}//${new URL(url).hostname}:*`;
    const cookies = {};
    for (const { site, embeddedIn } of blockCookies) cookies[`${pattern(site)},${pattern(embeddedIn)}`] = { setting: 2, last_modified: '13300000000000000' };
    profile.content_settings = { exceptions: { cookies } };
  }
  fs.writeFileSync(path.join(dir, 'Default', 'Preferences'), JSON.stringify({ profile }));
  const args = [...BASE_FLAGS, '--disable-site-isolation-trials', `--disable-features=${DISABLED_FEATURES.join(',')}`];
  if (spki) args.push(`--ignore-certificate-errors-spki-list=${spki}`);
  const rec0 = { dir };
  live.add(rec0);
  let context;
  try {
    context = await chromium.launchPersistentContext(dir, {
      executablePath: exe,
      headless: true,
      args,
      timeout: timeoutMs,
      viewport: { width: 1280, height: 900 },
      ignoreHTTPSErrors: false,
      env: { ...process.env, TZ: 'UTC' },
    });
  } catch (err) {
    live.delete(rec0);
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`Chromium (${exe}) did not start: ${err.message}`);
  }
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(30_000);
  const rec = recorder(context);
  const page = context.pages()[0] ?? (await context.newPage());
  let closed = false;
  return {
    label,
    context,
    page,
    dir,
    exe,
    rec,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.race([context.close().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
      live.delete(rec0);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------
// Recording

const shortValue = (v) => (v.length > 12 ? `${v.slice(0, 8)}…(${v.length})` : v);
/** A Set-Cookie line with its value shortened (attributes kept verbatim). */
export function shortSetCookie(line) {
  const i = line.indexOf('=');
  const j = line.indexOf(';');
  if (i < 0) return line;
  const value = line.slice(i + 1, j < 0 ? undefined : j);
  return `${line.slice(0, i)}=${shortValue(value)}${j < 0 ? '' : line.slice(j)}`;
}
const cookieNames = (header) =>
  (header ?? '')
    .split(/;\s*/)
    .filter(Boolean)
    .map((c) => c.split('=')[0]);

function frameLabel(frame) {
  try {
    if (!frame) return '?';
    if (!frame.parentFrame()) return 'top';
    return frame.name() || 'frame';
  } catch {
    return '?';
  }
}

/**
 * Record the context's traffic. Entries:
 * { n, frame, nav, method, url, status, location, sent:[cookie names], setCookies:[lines], csp, xfo, failure }
 */
export function recorder(context) {
  const entries = [];
  const consoleLines = [];
  const pendingWork = new Set();
  let n = 0;
  const track = (p) => {
    pendingWork.add(p);
    p.finally(() => pendingWork.delete(p));
  };
  const byRequest = new Map();

  context.on('request', (req) => {
    let frame;
    try {
      frame = req.frame();
    } catch {
      frame = null;
    }
    const e = { n: (n += 1), frame: frameLabel(frame), nav: req.isNavigationRequest(), method: req.method(), url: req.url(), resourceType: req.resourceType(), t: Date.now() };
    byRequest.set(req, e);
    entries.push(e);
    track(
      req
        .allHeaders()
        .then((h) => {
          e.sent = cookieNames(h.cookie);
          e.secFetch = [h['sec-fetch-site'], h['sec-fetch-mode'], h['sec-fetch-dest']].filter(Boolean).join('/');
        })
        .catch(() => {}),
    );
  });
  context.on('response', (res) => {
    const e = byRequest.get(res.request());
    if (!e) return;
    e.status = res.status();
    track(
      res
        .headersArray()
        .then((list) => {
          const get = (name) => list.filter((h) => h.name.toLowerCase() === name).map((h) => h.value);
          e.location = get('location')[0];
          e.setCookies = get('set-cookie').flatMap((v) => v.split('\n'));
          e.csp = get('content-security-policy').join(', ') || undefined;
          e.xfo = get('x-frame-options')[0];
          e.contentType = get('content-type')[0];
        })
        .catch(() => {}),
    );
  });
  context.on('requestfailed', (req) => {
    const e = byRequest.get(req);
    if (e) e.failure = req.failure()?.errorText ?? 'failed';
  });
  context.on('console', (msg) => {
    let where = '?';
    try {
      where = frameLabel(msg.page()?.mainFrame() ?? null);
    } catch {
      /* ignore */
    }
    consoleLines.push(`[${msg.type()}] ${msg.text()}${where !== '?' ? '' : ''}`);
  });

  return {
    entries,
    consoleLines,
    /** Wait (bounded) until header lookups have finished. */
    async settle(timeoutMs = 3000) {
      await Promise.race([Promise.allSettled([...pendingWork]), new Promise((r) => setTimeout(r, timeoutMs))]);
    },
    mark() {
      return entries.length;
    },
    since(mark = 0) {
      return entries.slice(mark);
    },
  };
}

/** One line per request: status, method, URL, Location, cookies sent, Set-Cookie, CSP. Loops are collapsed. */
export function formatEntries(list, { onlyFrames, documentsOnly = true, max = 40 } = {}) {
  const chosen = list.filter((e) => (!onlyFrames || onlyFrames.includes(e.frame)) && (!documentsOnly || e.nav || e.resourceType === 'document'));
  const sig = (e) => `${e.frame} ${e.status} ${e.method} ${e.url} ${e.location ?? ''}`;
  const lines = [];
  const seen = new Map(); // signature -> times printed
  let skipped = 0;
  for (const e of chosen) {
    const k = sig(e);
    const times = seen.get(k) ?? 0;
    seen.set(k, times + 1);
    if (times >= 2 && !e.failure) {
      skipped += 1; // the third and later round of a loop
      continue;
    }
    if (skipped) {
      lines.push(`  (… ${skipped} more requests repeating the ones above)`);
      skipped = 0;
    }
    const parts = [`  [${e.frame}] ${e.status ?? '---'} ${e.method} ${e.url}`];
    if (e.location) parts.push(`      -> Location: ${e.location}`);
    if (e.failure) parts.push(`      !! failed: ${e.failure}`);
    if (e.sent) parts.push(`      cookies sent: ${e.sent.length ? e.sent.join(', ') : '(none)'}${e.secFetch ? `   (Sec-Fetch: ${e.secFetch})` : ''}`);
    for (const c of e.setCookies ?? []) parts.push(`      Set-Cookie: ${shortSetCookie(c)}`);
    if (e.csp) parts.push(`      CSP: ${e.csp}`);
    if (e.xfo) parts.push(`      X-Frame-Options: ${e.xfo}`);
    lines.push(parts.join('\n'));
  }
  if (skipped) lines.push(`  (… ${skipped} more requests repeating the ones above)`);
  if (lines.length > max) return [`  (… ${lines.length - max} earlier entries left out)`, ...lines.slice(-max)].join('\n');
  return lines.join('\n') || '  (no requests)';
}

/** The schemeful site of a URL as Chromium names cookie partitions (`https://127.0.0.1`, `https://localhost`). */
export function siteOf(url) {
  const u = new URL(url);
  return `${u.protocol}//${u.hostname}`;
}

/** Parse one Set-Cookie line: { name, value, attrs (lower-cased keys), deletion }. */
export function parseSetCookieLine(line) {
  const parts = line.split(';');
  const first = parts.shift();
  const eq = first.indexOf('=');
  const c = { name: first.slice(0, eq).trim(), value: first.slice(eq + 1).trim(), attrs: {} };
  for (const p of parts) {
    const i = p.indexOf('=');
    const k = (i < 0 ? p : p.slice(0, i)).trim().toLowerCase();
    if (k) c.attrs[k] = i < 0 ? '' : p.slice(i + 1).trim();
  }
  const maxAge = c.attrs['max-age'];
  const expires = c.attrs.expires ? Date.parse(c.attrs.expires) : NaN;
  c.deletion = (maxAge !== undefined && Number(maxAge) <= 0) || (!Number.isNaN(expires) && expires < Date.now());
  return c;
}

/**
 * What the recorded traffic of `frame` says went wrong, as short sentences:
 * redirect loops, failed navigations, Set-Cookie lines a cross-site frame
 * cannot keep, cookies set but absent from the store, frame-ancestors /
 * X-Frame-Options refusing the embedder.
 */
export function diagnose(entries, cookies, { frame = 'tool-frame', embedderOrigin } = {}) {
  const notes = [];
  const mine = entries.filter((e) => e.frame === frame);
  const navs = mine.filter((e) => e.nav || e.resourceType === 'document');
  const counts = new Map();
  for (const e of navs) counts.set(`${e.method} ${new URL(e.url).pathname}${new URL(e.url).search}`, (counts.get(`${e.method} ${new URL(e.url).pathname}${new URL(e.url).search}`) ?? 0) + 1);
  const looping = [...counts].filter(([, n]) => n >= 3);
  if (looping.length) notes.push(`redirect loop in the frame: ${looping.map(([u, n]) => `${u} ×${n}`).join(', ')}`);
  for (const e of navs.filter((x) => x.failure)) notes.push(`the frame's navigation to ${e.url} failed: ${e.failure}`);
  const embedderOriginOnly = embedderOrigin ? new URL(embedderOrigin).origin : null;
  const embedderSite = embedderOrigin ? siteOf(embedderOrigin) : null;
  const seen = new Set();
  for (const e of mine) {
    for (const line of e.setCookies ?? []) {
      const c = parseSetCookieLine(line);
      const where = new URL(e.url).pathname;
      const ss = c.attrs.samesite;
      let why = null;
      if (c.deletion) {
        continue;
      } else if (!ss || ss.toLowerCase() !== 'none') {
        why = `SameSite=${ss ?? '(unset, so Lax)'}: Chromium does not keep (or send) it in a cross-site frame`;
      } else if (!('secure' in c.attrs)) {
        why = 'SameSite=None without Secure: refused';
      } else if (!('partitioned' in c.attrs)) {
        why = 'SameSite=None but not Partitioned: a third-party cookie, refused while third-party cookies are blocked';
      }
      const k = `${c.name}|${why}`;
      if (why && !seen.has(k)) {
        seen.add(k);
        notes.push(`Set-Cookie ${c.name} from ${where} in the frame has ${why}  [${shortSetCookie(line)}]`);
      }
    }
  }
  if (cookies && embedderSite) {
    // the last Set-Cookie for a name decides whether it should be there
    const last = new Map();
    for (const c of mine.flatMap((e) => (e.setCookies ?? []).map(parseSetCookieLine))) last.set(c.name, c);
    const setNames = new Set([...last.values()].filter((c) => !c.deletion).map((c) => c.name));
    const kept = new Set(cookies.filter((c) => c.partitionKey === embedderSite || !c.partitionKey).map((c) => c.name));
    const lost = [...setNames].filter((n) => !kept.has(n));
    if (lost.length) notes.push(`set in the frame but not in the browser's cookie store afterwards: ${lost.join(', ')}`);
  }
  const cspSeen = new Set();
  for (const e of navs) {
    const fa = (e.csp ?? '')
      .split(/[;,]/)
      .map((d) => d.trim())
      .find((d) => /^frame-ancestors\b/i.test(d));
    if (fa) {
      const sources = fa.split(/\s+/).slice(1);
      const allows = sources.includes('*') || (embedderOriginOnly && sources.some((x) => x.replace(/\/$/, '') === embedderOriginOnly || (x === 'https:' && embedderOriginOnly.startsWith('https:'))));
      const k = `${new URL(e.url).pathname}|${fa}`;
      if (!allows && !cspSeen.has(k)) {
        cspSeen.add(k);
        const redirect = e.status >= 300 && e.status < 400 ? ' (on a redirect; JupyterHub sends it on every page)' : '';
        notes.push(`${e.status} ${new URL(e.url).pathname} answered CSP \`${fa}\`${redirect}: the browser refuses to show such a page inside the LMS page (${embedderOriginOnly})`);
      }
    }
    if (e.xfo && !cspSeen.has(`xfo|${e.url}`)) {
      cspSeen.add(`xfo|${e.url}`);
      notes.push(`${new URL(e.url).pathname} answered X-Frame-Options: ${e.xfo}`);
    }
  }
  return notes;
}

/** The browser's cookie store, one line per cookie, with SameSite and partition key. */
export async function describeCookies(context, filter = () => true) {
  const list = (await context.cookies()).filter(filter);
  if (!list.length) return '  (no cookies)';
  return list
    .map((c) => {
      const exp = c.expires > 0 ? `expires ${new Date(c.expires * 1000).toISOString()}` : 'session';
      return `  ${c.name}=${shortValue(c.value)}  domain=${c.domain} path=${c.path} SameSite=${c.sameSite} ${c.secure ? 'Secure' : 'not-Secure'}${c.httpOnly ? ' HttpOnly' : ''} ${c.partitionKey ? `Partitioned(top-level site ${c.partitionKey})` : 'unpartitioned'} ${exp}`;
    })
    .join('\n');
}

/**
 * A failure message: what went wrong, the diagnosis, then the URL chain
 * (navigations with their cookies, Set-Cookie, Location, CSP), failed
 * requests, console errors and the cookie store.
 */
let shots = 0;
export async function explain(browser, what, { mark = 0, frames, extra, embedderOrigin, frame = 'tool-frame', screenshot = true } = {}) {
  await browser.rec.settle();
  let shot = null;
  if (screenshot) {
    try {
      fs.mkdirSync(FAILURES, { recursive: true });
      const file = path.join(FAILURES, `${browser.label}-${process.pid}-${(shots += 1)}.png`);
      await browser.page.screenshot({ path: file, timeout: 5000 });
      shot = path.relative(REPO_ROOT, file);
    } catch {
      /* closed or busy */
    }
  }
  const list = browser.rec.since(mark);
  let cookies = null;
  try {
    cookies = await browser.context.cookies();
  } catch {
    /* closed */
  }
  const parts = [what];
  if (extra) parts.push(extra);
  const notes = diagnose(list, cookies, { frame, embedderOrigin });
  if (notes.length) parts.push(`diagnosis:\n${notes.map((n) => `  - ${n}`).join('\n')}`);
  parts.push(`navigations${frames ? ` (${frames.join(', ')})` : ''}, oldest first:\n${formatEntries(list, { onlyFrames: frames })}`);
  const failed = list.filter((e) => e.failure && !e.nav).slice(-10);
  if (failed.length) parts.push(`failed subresource requests:\n${formatEntries(failed, { documentsOnly: false })}`);
  const consoleLines = browser.rec.consoleLines.filter((l) => /error|refused|blocked|cookie|frame|csp|content security/i.test(l)).slice(-15);
  if (consoleLines.length) parts.push(`console:\n${consoleLines.map((l) => `  ${l}`).join('\n')}`);
  parts.push(`cookies in the browser:\n${cookies ? await describeCookies(browser.context) : '(unreadable)'}`);
  if (shot) parts.push(`screenshot of the LMS page: ${shot}`);
  return parts.join('\n\n');
}

// ---------------------------------------------------------------------------
// Waiting

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `check()` (which may throw while a frame navigates) until it returns a
 * truthy value or `timeoutMs` passes. Returns the value, or null on timeout.
 */
export async function pollUntil(check, { timeoutMs = 30_000, intervalMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch {
      /* navigating */
    }
    if (Date.now() >= deadline) return null;
    await sleep(intervalMs);
  }
}

/** The frame called `name` in `page` (null while absent). */
export const frameNamed = (page, name) => page.frames().find((f) => f.name() === name) ?? null;

/** Run `fn(arg)` in `frame` with a bounded wait. */
export async function evalIn(frame, fn, arg, timeoutMs = 15_000) {
  let t;
  try {
    return await Promise.race([
      frame.evaluate(fn, arg),
      new Promise((_, rej) => {
        t = setTimeout(() => rej(new Error(`evaluate in frame ${frame.url()} timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}
