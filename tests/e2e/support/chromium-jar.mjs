// A browser-like cookie store that decides as Chromium does (RFC 6265bis as
// Chromium implements it, and CHIPS), for driving the worker the way one
// browser with several contexts would: a top-level tab on the tool's site and
// the tool inside a cross-site LMS iframe share ONE store, each seeing what
// Chromium would let it see.
//
//   const store = chromiumJar();                 // third-party cookies blocked (default)
//   const top = store.top();                     // top-level documents (a tab)
//   const frame = store.frameIn(lmsPageOrigin);  // the tool framed by a page of that site
//   await follow(httpFetch, url, frame, { headers });   // a view is a jar for follow/send
//
// What it enforces (each has a named test in tests/e2e/chromium-jar.test.mjs):
// - cookies are keyed by (name, domain, path, partition key); a host-only
//   cookie and a Domain cookie of the same host are distinct (Chromium stores
//   the latter as ".host");
// - `Partitioned` requires `Secure` (otherwise the cookie is rejected) and
//   stores the cookie under the partition key of the context it was set in:
//   the top-level site plus whether the frame is cross-site to it (Chromium's
//   ancestor chain bit); it is sent only in a context with the same key;
// - `SameSite=None` requires `Secure` (otherwise rejected);
// - SameSite is enforced when sending AND when setting: in a cross-site
//   context `Strict` never goes, `Lax` (and a cookie without SameSite, which
//   Chromium treats as Lax) goes only on a top-level navigation with a safe
//   method (GET, HEAD); a response in a cross-site context that is not a
//   top-level navigation cannot set a cookie that is not `SameSite=None`
//   (RFC 6265bis 5.7 step 13). Chromium's two-minute "Lax allowing unsafe"
//   exception for cookies without SameSite is not modelled (this is stricter);
// - with third-party cookies blocked, a third-party context (a frame request
//   to a site other than the top-level one) neither stores nor sends
//   unpartitioned cookies; partitioned ones are stored and sent;
// - a deletion (Max-Age<=0, or Expires in the past) removes only the cookie
//   with the same name, domain, path AND partition key: an unpartitioned
//   deletion never reaches a partitioned cookie, and the reverse;
// - overwriting a cookie keeps its creation time (RFC 6265bis 5.7 step 23),
//   and the Cookie header lists longer paths first, then older cookies first;
// - `Secure` cookies are set only from, and sent only to, secure URLs: https,
//   or loopback http (127.0.0.0/8, localhost, [::1]), which Chromium treats as
//   a secure context; an insecure URL cannot overwrite a `Secure` cookie
//   (strict secure cookies); `__Secure-` needs `Secure`; `__Host-` needs
//   `Secure`, `Path=/` and no `Domain`; an expiry is capped at 400 days;
//   name + value over 4096 bytes is rejected;
// - sites are schemeful (http://127.0.0.1 and https://127.0.0.1 are two
//   sites, as with Chromium's schemeful same-site); ports never matter, and
//   cookies are not bound to scheme or port (as in Chromium today), so a
//   worker and an IdP on the same 127.0.0.1 see each other's cookies. There
//   is no public suffix list: the site of a name is its last two labels (an
//   IP address or a single label is its own site); pass `siteOf` to change it.
//
// Contexts. A `top()` view is a top-level browsing context: a navigation's
// top-level site is the URL it navigates to, so the request is same-site
// unless `initiator` (the origin of the document that started it) names
// another site; a fetch (`navigation: false`) is made by a document of
// `initiator`'s site (default: the URL's own). A `frameIn(origin)` view is a
// frame in a page of `origin`'s site: every request is framed (never
// top-level), and cross-site, third-party and under the cross-site partition
// key when its URL's site differs from that top-level site (the tool's pages
// are); requests to the top-level site itself are first-party.
//
// A view offers what cookieJar() offers (store, header, matching, get,
// cookie, all, names, set, delete, clear), with an optional last argument
// `{ method = 'GET', navigation = true, initiator }` on store, header and
// matching; `follow` in worker.mjs passes it on every hop.
import { parseSetCookie, LOOPBACK, defaultPath, pathMatches, domainMatches } from './worker.mjs';

const IPV4 = /^\d+\.\d+\.\d+\.\d+$/;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const MAX_AGE_CAP_MS = 400 * 24 * 3600 * 1000;
const MAX_NAME_VALUE = 4096;

/** Scheme and registrable domain of `url` (ws/wss as http/https), no port: `https://127.0.0.1`. */
export function defaultSiteOf(url) {
  const u = url instanceof URL ? url : new URL(url);
  let scheme = u.protocol.slice(0, -1);
  if (scheme === 'ws') scheme = 'http';
  if (scheme === 'wss') scheme = 'https';
  const host = u.hostname.toLowerCase();
  const site = IPV4.test(host) || host.startsWith('[') || !host.includes('.') ? host : host.split('.').slice(-2).join('.');
  return `${scheme}://${site}`;
}

/** True for https, wss and loopback http (a secure context for cookies in Chromium). */
export function isSecureUrl(url) {
  const u = url instanceof URL ? url : new URL(url);
  return u.protocol === 'https:' || u.protocol === 'wss:' || LOOPBACK.test(u.hostname);
}

function partitionKeyOf(topSite, crossSiteAncestor) {
  return crossSiteAncestor ? `${topSite} ^cross-site` : topSite;
}

function parseSameSite(attrs) {
  if (!('samesite' in attrs)) return 'unspecified';
  const v = attrs.samesite.toLowerCase();
  return v === 'none' || v === 'lax' || v === 'strict' ? v : 'unspecified';
}

/**
 * @param {object} [opts]
 * @param {'blocked'|'allowed'} [opts.thirdPartyCookies='blocked'] Chromium's third-party cookie setting
 * @param {(url: URL) => string} [opts.siteOf] site of a URL (default: scheme + last two labels, see above)
 * @param {() => number} [opts.now] clock in ms (default Date.now)
 */
export function chromiumJar({ thirdPartyCookies = 'blocked', siteOf = defaultSiteOf, now = () => Date.now() } = {}) {
  const setting = (v) => {
    if (v !== 'blocked' && v !== 'allowed') throw new TypeError(`thirdPartyCookies must be 'blocked' or 'allowed', got ${v}`);
    return v;
  };
  let thirdParty = setting(thirdPartyCookies);
  /** @type {Map<string, object>} */
  const cookies = new Map();
  /** Every Set-Cookie the store refused: { raw, url, view, reason }. */
  const rejected = [];
  let seq = 0;
  const keyOf = (c) => `${c.name}\u0000${c.hostOnly ? '' : '.'}${c.domain}\u0000${c.path}\u0000${c.partitionKey ?? ''}`;
  const expired = (c, t = now()) => c.expires !== null && c.expires <= t;
  const live = () => {
    const t = now();
    for (const [k, c] of cookies) if (expired(c, t)) cookies.delete(k);
    return [...cookies.values()];
  };

  /** The request's cookie context in `view`. */
  function contextOf(view, url, { method = 'GET', navigation = true, initiator } = {}) {
    const target = siteOf(url);
    const m = String(method).toUpperCase();
    if (view.kind === 'top') {
      if (navigation !== false) {
        // A top-level navigation: the new document's site is the top-level site.
        const crossSite = initiator != null && siteOf(new URL(initiator)) !== target;
        return { topSite: target, crossSite, topLevel: true, thirdParty: false, partitionKey: partitionKeyOf(target, false), method: m };
      }
      const docSite = initiator != null ? siteOf(new URL(initiator)) : target;
      const crossSite = docSite !== target;
      return { topSite: docSite, crossSite, topLevel: false, thirdParty: crossSite, partitionKey: partitionKeyOf(docSite, false), method: m };
    }
    const crossSite = target !== view.topSite;
    return { topSite: view.topSite, crossSite, topLevel: false, thirdParty: crossSite, partitionKey: partitionKeyOf(view.topSite, crossSite), method: m };
  }

  function storeIn(view, url, res, request) {
    const u = new URL(url);
    const list = Array.isArray(res) ? res : res.headers.getSetCookie();
    const ctx = contextOf(view, u, request);
    const secureUrl = isSecureUrl(u);
    const host = u.hostname.toLowerCase();
    const out = { stored: [], deleted: [], rejected: [] };
    const refuse = (raw, reason) => {
      const r = { raw, url: u.href, view: view.label, reason };
      rejected.push(r);
      out.rejected.push(r);
    };
    for (const raw of list) {
      const p = parseSetCookie(raw);
      if (!p) {
        refuse(raw, 'unparsable');
        continue;
      }
      const a = p.attrs;
      if (p.name.length + p.value.length > MAX_NAME_VALUE) {
        refuse(raw, 'name and value over 4096 bytes');
        continue;
      }
      const c = {
        name: p.name,
        value: p.value,
        domain: host,
        hostOnly: true,
        path: a.path && a.path.startsWith('/') ? a.path : defaultPath(u.pathname),
        expires: null,
        secure: 'secure' in a,
        httpOnly: 'httponly' in a,
        sameSite: parseSameSite(a),
        partitioned: 'partitioned' in a,
        partitionKey: null,
        sourceSite: siteOf(u),
        raw,
      };
      if (a.domain) {
        const d = a.domain.replace(/^\./, '').toLowerCase();
        if (!domainMatches(host, { domain: d, hostOnly: false })) {
          refuse(raw, `Domain=${a.domain} does not cover ${host}`);
          continue;
        }
        if (d !== host || !IPV4.test(d)) {
          c.domain = d;
          c.hostOnly = false;
        }
      }
      if (c.secure && !secureUrl) {
        refuse(raw, 'Secure from an insecure URL');
        continue;
      }
      if (c.name.startsWith('__Secure-') && !c.secure) {
        refuse(raw, '__Secure- without Secure');
        continue;
      }
      if (c.name.startsWith('__Host-') && (!c.secure || a.domain !== undefined || a.path !== '/')) {
        refuse(raw, '__Host- needs Secure, Path=/ and no Domain');
        continue;
      }
      if (c.sameSite === 'none' && !c.secure) {
        refuse(raw, 'SameSite=None without Secure');
        continue;
      }
      if (c.partitioned && !c.secure) {
        refuse(raw, 'Partitioned without Secure');
        continue;
      }
      if (c.sameSite !== 'none' && ctx.crossSite && !ctx.topLevel) {
        refuse(raw, `SameSite=${c.sameSite === 'unspecified' ? '(unspecified, Lax)' : c.sameSite} set in a cross-site context`);
        continue;
      }
      if (!c.partitioned && ctx.thirdParty && thirdParty === 'blocked') {
        refuse(raw, 'unpartitioned cookie in a third-party context (third-party cookies blocked)');
        continue;
      }
      if (!secureUrl && !c.secure) {
        const shadows = live().some(
          (o) => o.secure && o.name === c.name && (domainMatches(o.domain, c) || domainMatches(c.domain, o)) && (pathMatches(c.path, o.path) || pathMatches(o.path, c.path)),
        );
        if (shadows) {
          refuse(raw, 'an insecure URL cannot overwrite a Secure cookie');
          continue;
        }
      }
      if (c.partitioned) c.partitionKey = ctx.partitionKey;
      const t = now();
      if ('max-age' in a && /^-?\d+$/.test(a['max-age'])) {
        const n = Number(a['max-age']);
        c.expires = n <= 0 ? 0 : t + Math.min(n * 1000, MAX_AGE_CAP_MS);
      } else if (a.expires) {
        const e = Date.parse(a.expires);
        if (!Number.isNaN(e)) c.expires = Math.min(e, t + MAX_AGE_CAP_MS);
      }
      const k = keyOf(c);
      const old = cookies.get(k);
      if (expired(c, t)) {
        if (old) {
          cookies.delete(k);
          out.deleted.push(old);
        }
        continue;
      }
      c.creation = old ? old.creation : ++seq;
      c.created = old ? old.created : t;
      cookies.set(k, c);
      out.stored.push(c);
    }
    return out;
  }

  function matchingIn(view, url, request) {
    const u = new URL(url);
    const ctx = contextOf(view, u, request);
    const host = u.hostname.toLowerCase();
    const secureUrl = isSecureUrl(u);
    const out = [];
    for (const c of live()) {
      if (!domainMatches(host, c)) continue;
      if (!pathMatches(u.pathname, c.path)) continue;
      if (c.secure && !secureUrl) continue;
      if (c.partitionKey !== null) {
        if (c.partitionKey !== ctx.partitionKey) continue;
      } else if (ctx.thirdParty && thirdParty === 'blocked') {
        continue;
      }
      if (ctx.crossSite) {
        const s = c.sameSite === 'unspecified' ? 'lax' : c.sameSite;
        if (s === 'strict') continue;
        if (s === 'lax' && !(ctx.topLevel && SAFE_METHODS.has(ctx.method))) continue;
      }
      out.push(c);
    }
    return out.sort((x, y) => y.path.length - x.path.length || x.creation - y.creation);
  }

  /** Cookies a view can see at all (without a URL): see `view.all`. */
  function visibleIn(view, c) {
    if (view.kind === 'top') {
      // unpartitioned cookies, and those partitioned under their own site at top level
      return c.partitionKey === null || c.partitionKey === partitionKeyOf(c.sourceSite, false);
    }
    if (c.partitionKey !== null) return c.partitionKey.split(' ')[0] === view.topSite;
    return thirdParty === 'allowed' || c.sourceSite === view.topSite;
  }

  function makeView(kind, topSite, label) {
    const view = {
      kind,
      /** The top-level site of a frame view (null for top()). */
      topSite,
      label,
      /**
       * Store the Set-Cookie headers of `res` (a Response, or an array of header strings)
       * received from `url` in this context. Returns { stored, deleted, rejected }.
       */
      store(url, res, request = {}) {
        return storeIn(view, url, res, request);
      },
      /** Cookies that would be sent to `url` from this context, in Cookie header order. */
      matching(url, request = {}) {
        return matchingIn(view, url, request);
      },
      /** The Cookie header value for `url` ('' when none); `request` = { method, navigation, initiator }. */
      header(url, request = {}) {
        return view.matching(url, request).map((c) => `${c.name}=${c.value}`).join('; ');
      },
      /** Value of the first cookie called `name` (as sent to `url` when given, else of `all()`). */
      get(name, url, request = {}) {
        const list = url ? view.matching(url, request) : view.all();
        return list.find((c) => c.name === name)?.value;
      },
      /** Full record (attributes, partitionKey) of the first cookie of `all()` called `name`. */
      cookie(name) {
        return view.all().find((c) => c.name === name);
      },
      /**
       * Live cookies this context can reach for some URL: for top(), unpartitioned cookies and
       * those partitioned at top level on their own site; for a frame, those partitioned under
       * its top-level site, and unpartitioned ones when third-party cookies are allowed or they
       * belong to the top-level site.
       */
      all() {
        return live().filter((c) => visibleIn(view, c));
      },
      names() {
        return view.all().map((c) => c.name);
      },
      /**
       * Put a cookie through this context's rules, as if `url` had set it:
       * `attributes` is the rest of a Set-Cookie (e.g. 'Secure; SameSite=None; Partitioned').
       */
      set(url, name, value, { path = '/', attributes = '' } = {}) {
        return view.store(url, [`${name}=${value}; Path=${path}${attributes ? `; ${attributes}` : ''}`]);
      },
      /** Delete every cookie of `all()` called `name`, or those for which `name(cookie)` is true. */
      delete(name) {
        for (const c of view.all()) {
          if (typeof name === 'function' ? name(c) : c.name === name) cookies.delete(keyOf(c));
        }
      },
      /** Delete every cookie of `all()` (like clearing this context's site data). */
      clear() {
        view.delete(() => true);
      },
    };
    return view;
  }

  const topView = makeView('top', null, 'top');
  const frames = new Map();
  const store = {
    /** The top-level context (a tab). */
    top() {
      return topView;
    },
    /** A cross-site frame inside a page whose origin is `topLevelOrigin` (its site is the partition). */
    frameIn(topLevelOrigin) {
      const site = siteOf(new URL(topLevelOrigin));
      if (!frames.has(site)) frames.set(site, makeView('frame', site, `frame in ${site}`));
      return frames.get(site);
    },
    get thirdPartyCookies() {
      return thirdParty;
    },
    set thirdPartyCookies(v) {
      thirdParty = setting(v);
    },
    /** Every live cookie of the store, every partition, with its `partitionKey` (null: unpartitioned). */
    all() {
      return live();
    },
    names() {
      return live().map((c) => c.name);
    },
    /** Set-Cookie headers refused so far: { raw, url, view, reason }. */
    rejected,
    /** Drop session cookies (no Max-Age/Expires), as closing the browser does. */
    endSession() {
      for (const [k, c] of cookies) if (c.expires === null) cookies.delete(k);
    },
    clear() {
      cookies.clear();
      rejected.length = 0;
    },
    siteOf,
  };
  return store;
}
