// The worker's own pages (sign-in, signed out, errors) in a real Chromium:
// the Content-Security-Policy lets their one style apply (by its hash) and
// nothing else, they work with the keyboard alone, and they say which
// services a student can sign in with. Only a browser can tell whether a
// hash-allowed style is applied, and where the focus goes.
//
// Starts the built worker in workerd on 127.0.0.1 (no hub, no IdP: these
// pages need neither) and stops it; one Chromium, fresh profile.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker } from '../e2e/support/worker.mjs';
import { launchBrowser } from './support/browser.mjs';

const PROVIDERS = JSON.stringify([
  {
    name: 'partner',
    OAUTH_CLIENT_ID: 'partner',
    OAUTH_CLIENT_SECRET_BINDING: 'PARTNER_SECRET',
    OAUTH2_AUTHORIZE_URL: 'http://127.0.0.1:9/authorize',
    OAUTH2_TOKEN_URL: 'http://127.0.0.1:9/token',
    OAUTH2_USERDATA_URL: 'http://127.0.0.1:9/me',
    LOGIN_SERVICE: 'Partner University',
  },
]);

describe("the worker's own pages in Chromium: CSP, keyboard, service names", () => {
  let worker;
  let b;
  before(async () => {
    worker = await startWorker({
      bindings: {
        HUB_ORIGIN: 'http://127.0.0.1:9',
        SESSION_SECRET: 'pages-test-secret-0123456789abcdef-0123456789',
        OAUTH_CLIENT_ID: 'home',
        OAUTH_CLIENT_SECRET: 'home-secret',
        OAUTH2_AUTHORIZE_URL: 'http://127.0.0.1:9/authorize',
        OAUTH2_TOKEN_URL: 'http://127.0.0.1:9/token',
        OAUTH2_USERDATA_URL: 'http://127.0.0.1:9/me',
        LOGIN_SERVICE: 'Home University',
        OAUTH_PROVIDERS: PROVIDERS,
        PARTNER_SECRET: 'partner-secret',
        ALLOW_ALL: 'true',
      },
    });
    b = await launchBrowser({ label: 'pages' });
  });
  after(async () => {
    await b?.close();
    await worker?.close();
  });

  /** Load a page; the CSP violations and console errors it caused. */
  async function load(path) {
    const page = await b.context.newPage();
    const problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    await page.exposeFunction('__cspViolation', (v) => problems.push(`CSP: ${v}`)).catch(() => {});
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation?.(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const resp = await page.goto(`${worker.url}${path}`, { waitUntil: 'load' });
    return { page, resp, problems };
  }

  test('the sign-in page lists every provider by its LOGIN_SERVICE, applies its style under the CSP with no violation, and runs no script', async () => {
    const { page, resp, problems } = await load('/hub/login?next=%2Fhub%2Fhome');
    assert.equal(resp.status(), 200);
    const csp = resp.headers()['content-security-policy'];
    assert.match(csp, /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+';/);
    assert.doesNotMatch(csp, /unsafe-inline|script-src/);
    const links = await page.$$eval('main a', (as) => as.map((a) => ({ text: a.textContent.trim(), href: a.getAttribute('href') })));
    assert.deepEqual(links, [
      { text: 'Sign in with Home University', href: '/hub/oauth_login?next=%2Fhub%2Fhome' },
      { text: 'Sign in with Partner University', href: '/hub/oauth_login/partner?next=%2Fhub%2Fhome' },
    ]);
    // The style applied: the hash in the CSP is the style's.
    const bg = await page.$eval('a.button', (a) => getComputedStyle(a).backgroundColor);
    assert.equal(bg, 'rgb(179, 71, 0)', 'the page style was blocked by its own CSP');
    assert.equal(await page.$eval('html', (h) => h.lang), 'en');
    assert.equal(await page.$$eval('script', (s) => s.length), 0);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('keyboard: Tab reaches each sign-in link in order with a visible focus outline, and Enter follows it', async () => {
    const { page } = await load('/hub/login');
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => ({
      text: document.activeElement.textContent.trim(),
      outline: getComputedStyle(document.activeElement).outlineStyle,
      width: getComputedStyle(document.activeElement).outlineWidth,
    }));
    assert.equal(first.text, 'Sign in with Home University');
    assert.equal(first.outline, 'solid');
    assert.equal(first.width, '3px');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Sign in with Partner University');
    // Enter follows the link: the worker starts that provider's login (a
    // redirect to its authorize URL, which is not listening here).
    const started = page.waitForRequest((r) => r.url().startsWith('http://127.0.0.1:9/authorize'), { timeout: 10_000 });
    await page.keyboard.press('Enter');
    const req = await started;
    assert.equal(new URL(req.url()).searchParams.get('client_id'), 'partner');
    await page.close();
  });

  test('contrast of text on the pages is at least 4.5:1 (WCAG AA) as Chromium renders them', async () => {
    const { page } = await load('/_hubgate/signed_out');
    const pairs = await page.evaluate(() => {
      const rgb = (s) => s.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
      const lum = ([r, g, b]) => {
        const c = (v) => {
          v /= 255;
          return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b);
      };
      const ratio = (a, b) => {
        const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p);
        return (x + 0.05) / (y + 0.05);
      };
      const bodyBg = getComputedStyle(document.body).backgroundColor;
      return [...document.querySelectorAll('h1, p, a')].map((el) => {
        const s = getComputedStyle(el);
        const bg = s.backgroundColor === 'rgba(0, 0, 0, 0)' ? bodyBg : s.backgroundColor;
        return { tag: el.tagName, text: el.textContent.trim().slice(0, 30), ratio: ratio(s.color, bg) };
      });
    });
    assert.ok(pairs.length >= 2);
    for (const p of pairs) assert.ok(p.ratio >= 4.5, `${p.tag} "${p.text}" has contrast ${p.ratio.toFixed(2)}:1`);
    await page.close();
  });

  test('an error page (a refused callback) is the same accessible shell with a reference, and its CSP holds', async () => {
    const { page, resp, problems } = await load('/hub/oauth_callback?state=nope&code=x');
    assert.equal(resp.status(), 400);
    assert.match(await page.textContent('main'), /Reference: /);
    assert.equal(await page.$eval('html', (h) => h.lang), 'en');
    assert.equal(await page.$eval('h1', (h) => getComputedStyle(h).color), 'rgb(34, 34, 34)');
    assert.deepEqual(problems.filter((p) => p.startsWith('CSP')), []);
    await page.close();
  });
});
