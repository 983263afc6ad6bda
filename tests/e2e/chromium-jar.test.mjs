// The Chromium-like cookie store (support/chromium-jar.mjs) on its own: one
// named test per rule it enforces. Pure: no server, no worker (the last tests
// drive `follow` from worker.mjs with a stub fetch).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chromiumJar, defaultSiteOf, isSecureUrl } from './support/chromium-jar.mjs';
import { follow, cookieJar } from './support/worker.mjs';

const TOOL = 'https://tool.test';
const LMS = 'https://lms.example';
const OTHER_LMS = 'https://other-lms.example';
const names = (list) => list.map((c) => c.name);
const cookieNames = (header) => (header ? header.split('; ').map((p) => p.slice(0, p.indexOf('='))) : []);

describe('chromium-jar: sites and secure contexts', () => {
  test('sites are schemeful and ignore ports; loopback http counts as a secure URL', () => {
    assert.equal(defaultSiteOf('https://127.0.0.1:8443/x'), 'https://127.0.0.1');
    assert.notEqual(defaultSiteOf('http://127.0.0.1:1/'), defaultSiteOf('https://127.0.0.1:1/'));
    assert.equal(defaultSiteOf('https://a.b.tool.test/'), 'https://tool.test');
    assert.equal(defaultSiteOf('wss://tool.test/ws'), 'https://tool.test');
    assert.ok(isSecureUrl('http://127.0.0.1:9/'));
    assert.ok(isSecureUrl('http://localhost/'));
    assert.ok(!isSecureUrl('http://tool.test/'));
  });

  test('loopback http counts as secure: Secure, SameSite=None and Partitioned cookies are stored and sent there, not on plain http', () => {
    const store = chromiumJar();
    const frame = store.frameIn('http://lms.example');
    const top = store.top();
    const loop = 'http://127.0.0.1:8787/';
    assert.equal(top.store(loop, ['s=1; Secure; Path=/']).stored.length, 1);
    assert.equal(frame.store(loop, ['p=1; Secure; SameSite=None; Partitioned; Path=/']).stored.length, 1);
    assert.equal(top.header(loop), 's=1');
    assert.equal(frame.header(loop), 'p=1');
    const plain = 'http://tool.test/';
    const r = top.store(plain, ['s=2; Secure; Path=/']);
    assert.equal(r.stored.length, 0);
    assert.match(r.rejected[0].reason, /Secure from an insecure URL/);
    top.store('https://tool.test/', ['t=3; Secure; Path=/']);
    assert.equal(top.header(plain), '', 'a Secure cookie is not sent to plain http');
    assert.equal(top.header('https://tool.test/'), 't=3');
  });
});

describe('chromium-jar: keys', () => {
  test('cookies are keyed by (name, domain, path, partition key): same name on other paths, partitions, or as a Domain cookie coexist', () => {
    const store = chromiumJar({ thirdPartyCookies: 'allowed' });
    const top = store.top();
    const frame = store.frameIn(LMS);
    top.store(`${TOOL}/`, ['a=root; Path=/; Secure; SameSite=None', 'a=hub; Path=/hub/; Secure; SameSite=None', 'a=dom; Domain=tool.test; Path=/; Secure; SameSite=None']);
    top.store(`${TOOL}/`, ['a=toppart; Path=/; Secure; SameSite=None; Partitioned']);
    frame.store(`${TOOL}/`, ['a=lmspart; Path=/; Secure; SameSite=None; Partitioned']);
    store.frameIn(OTHER_LMS).store(`${TOOL}/`, ['a=otherpart; Path=/; Secure; SameSite=None; Partitioned']);
    assert.deepEqual(store.all().map((c) => c.value).sort(), ['dom', 'hub', 'lmspart', 'otherpart', 'root', 'toppart']);
    // the same key again replaces the value
    frame.store(`${TOOL}/`, ['a=lmspart2; Path=/; Secure; SameSite=None; Partitioned']);
    assert.equal(store.all().filter((c) => c.name === 'a').length, 6);
    assert.deepEqual(
      store.all().filter((c) => c.partitionKey?.startsWith(LMS)).map((c) => c.value),
      ['lmspart2'],
    );
    assert.equal(store.all().find((c) => c.value === 'lmspart2').partitionKey, 'https://lms.example ^cross-site');
  });

  test('the Cookie header lists longer paths first, then older cookies first; an overwrite keeps the creation time', () => {
    const store = chromiumJar();
    const top = store.top();
    top.store(`${TOOL}/`, ['first=1; Path=/', 'second=1; Path=/', 'deep=1; Path=/hub/']);
    assert.equal(top.header(`${TOOL}/hub/x`), 'deep=1; first=1; second=1');
    top.store(`${TOOL}/`, ['first=2; Path=/']);
    assert.equal(top.header(`${TOOL}/hub/x`), 'deep=1; first=2; second=1', 'overwritten, still the older one');
    // a partitioned cookie of the same name set later comes after, both are sent
    top.store(`${TOOL}/`, ['first=p; Path=/; Secure; SameSite=None; Partitioned']);
    assert.equal(top.header(`${TOOL}/`), 'first=2; second=1; first=p');
  });
});

describe('chromium-jar: Partitioned (CHIPS)', () => {
  test('Partitioned requires Secure: without it the cookie is rejected, in a frame and at top level', () => {
    const store = chromiumJar();
    for (const view of [store.top(), store.frameIn(LMS)]) {
      const r = view.store(`${TOOL}/`, ['p=1; Path=/; SameSite=None; Partitioned', 'q=1; Path=/; Partitioned']);
      assert.equal(r.stored.length, 0, view.label);
      assert.ok(r.rejected.every((x) => /Secure/.test(x.reason)), JSON.stringify(r.rejected));
    }
    assert.deepEqual(store.all(), []);
  });

  test("a partitioned cookie is stored under the view's top-level site and sent only in that partition", () => {
    const store = chromiumJar();
    const frame = store.frameIn(`${LMS}/course/1`);
    frame.store(`${TOOL}/hub/lti13/oauth_callback`, ['s=student; Path=/; Secure; HttpOnly; SameSite=None; Partitioned']);
    const [c] = store.all();
    assert.equal(c.partitionKey, 'https://lms.example ^cross-site');
    assert.equal(store.frameIn('https://www.lms.example:8443/other').header(`${TOOL}/hub/`), 's=student', 'same site, any page or port of it');
    assert.equal(store.frameIn(OTHER_LMS).header(`${TOOL}/hub/`), '', 'another LMS site is another partition');
    assert.equal(store.top().header(`${TOOL}/hub/`), '', 'the top-level tool is another partition');
    // at top level the partition is the tool's own site
    store.top().store(`${TOOL}/`, ['t=tab; Path=/; Secure; SameSite=None; Partitioned']);
    assert.equal(store.all().find((x) => x.name === 't').partitionKey, 'https://tool.test');
    assert.equal(store.top().header(`${TOOL}/`), 't=tab');
    assert.equal(frame.header(`${TOOL}/`), 's=student');
  });

  test('third-party cookies blocked: a frame neither stores nor sends unpartitioned cookies, partitioned ones are stored and sent', () => {
    const store = chromiumJar();
    const frame = store.frameIn(LMS);
    const r = frame.store(`${TOOL}/`, ['u=1; Path=/; Secure; SameSite=None', 'p=1; Path=/; Secure; SameSite=None; Partitioned']);
    assert.deepEqual(names(r.stored), ['p']);
    assert.match(r.rejected[0].reason, /third-party cookies blocked/);
    // an unpartitioned SameSite=None cookie set at top level exists but is not sent into the frame
    store.top().store(`${TOOL}/`, ['u=top; Path=/; Secure; SameSite=None']);
    assert.equal(frame.header(`${TOOL}/`), 'p=1');
    assert.equal(store.top().header(`${TOOL}/`), 'u=top');
    // the frame's own top-level site is first-party inside it: unpartitioned cookies work there
    assert.deepEqual(names(frame.store(`${LMS}/`, ['lms=1; Path=/']).stored), ['lms']);
    assert.equal(frame.header(`${LMS}/`), 'lms=1');
  });

  test('third-party cookies allowed: a frame stores and sends unpartitioned SameSite=None cookies beside partitioned ones', () => {
    const store = chromiumJar({ thirdPartyCookies: 'allowed' });
    const frame = store.frameIn(LMS);
    const r = frame.store(`${TOOL}/`, ['u=1; Path=/; Secure; SameSite=None', 'p=1; Path=/; Secure; SameSite=None; Partitioned']);
    assert.deepEqual(names(r.stored), ['u', 'p']);
    assert.equal(frame.header(`${TOOL}/`), 'u=1; p=1');
    assert.equal(store.top().header(`${TOOL}/`), 'u=1', 'the unpartitioned one is the same cookie at top level');
    // the setting can change under a running store
    store.thirdPartyCookies = 'blocked';
    assert.equal(frame.header(`${TOOL}/`), 'p=1');
    assert.throws(() => {
      store.thirdPartyCookies = 'maybe';
    }, TypeError);
  });
});

describe('chromium-jar: SameSite', () => {
  test('SameSite=None requires Secure: without it the cookie is rejected', () => {
    const store = chromiumJar();
    const r = store.top().store(`${TOOL}/`, ['n=1; Path=/; SameSite=None', 'ok=1; Path=/; SameSite=None; Secure']);
    assert.deepEqual(names(r.stored), ['ok']);
    assert.match(r.rejected[0].reason, /SameSite=None without Secure/);
  });

  test('in a cross-site frame Lax, Strict and unspecified cookies are never sent (GET or POST, navigation or fetch); None is', () => {
    const store = chromiumJar({ thirdPartyCookies: 'allowed' });
    store.top().store(`${TOOL}/`, ['lax=1; Path=/; SameSite=Lax', 'strict=1; Path=/; SameSite=Strict', 'plain=1; Path=/', 'none=1; Path=/; SameSite=None; Secure']);
    assert.deepEqual(cookieNames(store.top().header(`${TOOL}/`)), ['lax', 'strict', 'plain', 'none'], 'all go same-site');
    const frame = store.frameIn(LMS);
    for (const request of [{}, { method: 'GET' }, { method: 'POST' }, { navigation: true }, { navigation: false }]) {
      assert.deepEqual(cookieNames(frame.header(`${TOOL}/`, request)), ['none'], JSON.stringify(request));
    }
  });

  test('a cross-site top-level navigation sends Lax (and unspecified) cookies on GET only, never Strict', () => {
    const store = chromiumJar();
    const top = store.top();
    top.store(`${TOOL}/`, ['lax=1; Path=/; SameSite=Lax', 'strict=1; Path=/; SameSite=Strict', 'plain=1; Path=/', 'none=1; Path=/; SameSite=None; Secure']);
    const from = { initiator: LMS };
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`, { ...from, method: 'GET' })), ['lax', 'plain', 'none']);
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`, { ...from, method: 'HEAD' })), ['lax', 'plain', 'none']);
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`, { ...from, method: 'POST' })), ['none']);
    // a cross-site fetch from a page of the LMS at top level is not a navigation and is third-party:
    // nothing unpartitioned with third-party cookies blocked, None only when they are allowed
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`, { ...from, navigation: false })), []);
    store.thirdPartyCookies = 'allowed';
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`, { ...from, navigation: false })), ['none']);
    store.thirdPartyCookies = 'blocked';
    // same-site (or browser-initiated) navigations send everything
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`, { method: 'POST' })), ['lax', 'strict', 'plain', 'none']);
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`, { method: 'POST', initiator: `${TOOL}:8443` })), ['lax', 'strict', 'plain', 'none']);
  });

  test('a response in a cross-site frame cannot set Lax, Strict or unspecified cookies; a cross-site top-level navigation can', () => {
    const store = chromiumJar({ thirdPartyCookies: 'allowed' });
    const set = ['lax=1; Path=/; Secure; SameSite=Lax', 'strict=1; Path=/; Secure; SameSite=Strict', 'plain=1; Path=/; Secure', 'bogus=1; Path=/; Secure; SameSite=Sometimes', 'none=1; Path=/; Secure; SameSite=None'];
    const inFrame = store.frameIn(LMS).store(`${TOOL}/`, set);
    assert.deepEqual(names(inFrame.stored), ['none']);
    assert.equal(inFrame.rejected.length, 4);
    assert.ok(inFrame.rejected.every((r) => /cross-site context/.test(r.reason)), JSON.stringify(inFrame.rejected));
    store.clear();
    const atTop = store.top().store(`${TOOL}/`, set, { method: 'POST', initiator: LMS });
    assert.deepEqual(names(atTop.stored), ['lax', 'strict', 'plain', 'bogus', 'none']);
    assert.equal(store.all().find((c) => c.name === 'bogus').sameSite, 'unspecified', 'an unknown SameSite value is unspecified (Lax)');
  });
});

describe('chromium-jar: deletions', () => {
  test('a deletion removes only the cookie with the same name, domain, path and partition key', () => {
    const store = chromiumJar();
    const top = store.top();
    const frame = store.frameIn(LMS);
    top.store(`${TOOL}/`, ['s=top; Path=/; Secure; HttpOnly; SameSite=Lax', 'h=hub; Path=/hub/; Secure']);
    frame.store(`${TOOL}/`, ['s=frame; Path=/; Secure; HttpOnly; SameSite=None; Partitioned']);
    const GONE = 'Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT';
    // in the frame a deletion without Partitioned is refused outright (SameSite=Lax, unpartitioned)...
    const r1 = frame.store(`${TOOL}/`, [`s=; Path=/; Secure; HttpOnly; SameSite=Lax; ${GONE}`]);
    assert.equal(r1.deleted.length, 0);
    assert.equal(r1.rejected.length, 1);
    // ...and even as SameSite=None with third-party cookies allowed it is the unpartitioned key:
    // it deletes the top-level cookie (whatever SameSite that one had), never the partitioned one
    store.thirdPartyCookies = 'allowed';
    const r2 = frame.store(`${TOOL}/`, [`s=; Path=/; Secure; SameSite=None; ${GONE}`]);
    assert.equal(r2.rejected.length, 0);
    assert.deepEqual(r2.deleted.map((c) => c.value), ['top']);
    assert.equal(frame.get('s', `${TOOL}/`), 'frame');
    store.thirdPartyCookies = 'blocked';
    top.store(`${TOOL}/`, ['s=top; Path=/; Secure; HttpOnly; SameSite=Lax']);
    // another path deletes nothing
    assert.equal(top.store(`${TOOL}/`, [`h=; Path=/; ${GONE}`]).deleted.length, 0);
    assert.equal(top.get('h', `${TOOL}/hub/`), 'hub');
    // a partitioned deletion at top level targets the top-level partition, not the LMS's
    assert.equal(top.store(`${TOOL}/`, [`s=; Path=/; Secure; SameSite=None; Partitioned; ${GONE}`]).deleted.length, 0);
    assert.equal(frame.get('s', `${TOOL}/`), 'frame');
    assert.equal(top.get('s', `${TOOL}/`), 'top');
    // the matching deletions
    assert.deepEqual(frame.store(`${TOOL}/`, [`s=; Path=/; Secure; SameSite=None; Partitioned; ${GONE}`]).deleted.map((c) => c.value), ['frame']);
    assert.deepEqual(top.store(`${TOOL}/`, [`s=; Path=/; Secure; SameSite=Lax; ${GONE}`]).deleted.map((c) => c.value), ['top']);
    assert.deepEqual(top.store(`${TOOL}/`, [`h=; Path=/hub/; ${GONE}`]).deleted.map((c) => c.value), ['hub']);
    assert.deepEqual(store.all(), []);
  });

  test('Max-Age wins over Expires; an Expires in the past deletes; a lifetime is capped at 400 days', () => {
    let t = Date.UTC(2030, 0, 1);
    const store = chromiumJar({ now: () => t });
    const top = store.top();
    top.store(`${TOOL}/`, ['a=1; Path=/; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'b=1; Path=/; Expires=Wed, 01 Jan 2031 00:00:00 GMT', 'c=1; Path=/; Max-Age=999999999']);
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`)), ['a', 'b', 'c']);
    assert.equal(store.all().find((c) => c.name === 'c').expires, t + 400 * 24 * 3600 * 1000);
    top.store(`${TOOL}/`, ['b=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT']);
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`)), ['a', 'c']);
    t += 61_000;
    assert.deepEqual(cookieNames(top.header(`${TOOL}/`)), ['c']);
  });
});

describe('chromium-jar: prefixes, Secure and Domain', () => {
  test('__Host- needs Secure, Path=/ and no Domain; __Secure- needs Secure', () => {
    const store = chromiumJar();
    const top = store.top();
    const r = top.store(`${TOOL}/hub/x`, [
      '__Host-a=1; Secure; Path=/',
      '__Host-b=1; Path=/',
      '__Host-c=1; Secure',
      '__Host-d=1; Secure; Path=/hub/',
      '__Host-e=1; Secure; Path=/; Domain=tool.test',
      '__Secure-f=1; Secure; Path=/',
      '__Secure-g=1; Path=/',
    ]);
    assert.deepEqual(names(r.stored), ['__Host-a', '__Secure-f']);
  });

  test('an insecure URL cannot overwrite a Secure cookie (strict secure cookies)', () => {
    const store = chromiumJar();
    const top = store.top();
    top.store('https://tool.test/', ['k=secure; Secure; Path=/']);
    const r = top.store('http://tool.test/', ['k=plain; Path=/']);
    assert.equal(r.stored.length, 0);
    assert.match(r.rejected[0].reason, /cannot overwrite a Secure cookie/);
    assert.equal(top.get('k', 'https://tool.test/'), 'secure');
  });

  test('Domain: a foreign domain is rejected; a parent domain cookie reaches subdomains; a host-only one does not', () => {
    const store = chromiumJar();
    const top = store.top();
    const r = top.store('https://hub.tool.test/', ['d=1; Domain=tool.test; Path=/', 'h=1; Path=/', 'x=1; Domain=evil.test; Path=/']);
    assert.deepEqual(names(r.stored), ['d', 'h']);
    assert.equal(top.header('https://lab.tool.test/'), 'd=1');
    assert.equal(top.header('https://hub.tool.test/'), 'd=1; h=1');
  });
});

describe('chromium-jar: the jar interface', () => {
  test('a view offers the cookieJar interface: store, header, matching, get, cookie, all, names, set, delete, clear', () => {
    const old = cookieJar();
    const store = chromiumJar();
    const top = store.top();
    const frame = store.frameIn(LMS);
    for (const k of Object.keys(old)) assert.equal(typeof top[k], 'function', `top().${k}`);
    for (const k of Object.keys(old)) assert.equal(typeof frame[k], 'function', `frameIn().${k}`);
    top.set(`${TOOL}/`, 'forged', 'v');
    assert.equal(top.get('forged'), 'v');
    assert.equal(top.cookie('forged').sameSite, 'unspecified');
    // by hand in a frame, a cookie goes through the frame's rules
    assert.equal(frame.set(`${TOOL}/`, 'f', 'v').stored.length, 0);
    assert.equal(frame.set(`${TOOL}/`, 'f', 'v', { attributes: 'Secure; SameSite=None; Partitioned' }).stored.length, 1);
    assert.deepEqual(frame.names(), ['f']);
    assert.deepEqual(top.names(), ['forged']);
    assert.deepEqual(store.names().sort(), ['f', 'forged']);
    frame.delete('f');
    assert.deepEqual(store.names(), ['forged']);
    top.clear();
    assert.deepEqual(store.names(), []);
  });

  test('follow passes each hop\'s method to the view: a cross-site POST navigation carries no Lax cookie, the GET after its 303 does', async () => {
    const store = chromiumJar();
    const top = store.top();
    top.store(`${TOOL}/`, ['lax=1; Path=/; Secure; SameSite=Lax', 'none=1; Path=/; Secure; SameSite=None']);
    const seen = [];
    const fetchFn = async (url, init) => {
      seen.push(`${init.method} ${new URL(url).pathname} [${init.headers.cookie ?? ''}]`);
      if (new URL(url).pathname === '/post') return new Response(null, { status: 303, headers: { location: '/landed' } });
      return new Response('ok', { status: 200, headers: { 'set-cookie': 'later=1; Path=/; SameSite=Lax' } });
    };
    const chain = await follow(fetchFn, `${TOOL}/post`, top, { method: 'POST', body: 'x=1', initiator: LMS });
    assert.equal(chain.at(-1).status, 200);
    assert.deepEqual(seen, ['POST /post [none=1]', 'GET /landed [lax=1; none=1]']);
    assert.equal(top.get('later', `${TOOL}/`), '1', 'a top-level navigation may set a Lax cookie even cross-site');
    // in a frame the same chain sends None only and stores nothing Lax
    const frame = store.frameIn(LMS);
    store.thirdPartyCookies = 'allowed';
    seen.length = 0;
    await follow(fetchFn, `${TOOL}/post`, frame, { method: 'POST', body: 'x=1' });
    assert.deepEqual(seen, ['POST /post [none=1]', 'GET /landed [none=1]']);
    assert.ok(store.rejected.some((r) => r.view === frame.label && r.raw.startsWith('later=')));
  });

  test('the old cookieJar still works with follow (it ignores the request argument)', async () => {
    const jar = cookieJar();
    jar.store('http://127.0.0.1:1/', ['lax=1; Path=/; SameSite=Lax']);
    const seen = [];
    const fetchFn = async (url, init) => {
      seen.push(init.headers.cookie);
      return new Response('ok', { status: 200 });
    };
    await follow(fetchFn, 'http://127.0.0.1:1/x', jar, { method: 'POST', body: 'a=1', initiator: LMS });
    assert.deepEqual(seen, ['lax=1']);
  });
});
