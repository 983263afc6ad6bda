// A fake hub origin (node:http + ws). Every request is answered with JSON
//   { method, path, query, headers, body, hub_user }      (body as text)
// where `hub_user` is the user whose hub cookies (jupyterhub-hub-login or
// jupyterhub-session-id, as set by this hub's /hub/login) came with the
// request ('' when none): like a real hub, after its login it trusts only its
// own cookies. Special paths (at any prefix, so BASE_URL=/jh/ works too):
//   GET  <base>hub/login          needs X-Forwarded-User (401 JSON without it, as a
//                                 header authenticator would); sets three cookies in
//                                 three Set-Cookie headers (jupyterhub-hub-login,
//                                 jupyterhub-session-id, _xsrf) and 302s to `next`
//                                 (or /hub/), with X-Echo-User: <the user it saw>.
//                                 setLoginAnswer(status) makes it answer `status` instead.
//   any  <base>hub/logout         forgets the session of the hub cookies it got, clears
//                                 those cookies and 302s to /hub/login (like a hub)
//   GET  /hub/redirect-elsewhere  302 to http://127.0.0.1:1/elsewhere (a proxy must not follow)
//   POST /upload                  counts the streamed body: { bytes, sha256 }
//   GET  /stream?chunks=&size=&delayMs=  a chunked response written piece by piece
//   WebSocket upgrade under /ws/  echoes each message back as "<hub_user>: <message>"
// setDelay(suffix, ms) holds requests whose path ends in `suffix` for `ms` first.
// Every response carries X-Echo-User (the X-Forwarded-User it saw, '' when none)
// and X-Echo-Hub-User (the user its cookies name, '' when none).
import http from 'node:http';
import crypto from 'node:crypto';
import { WebSocketServer } from 'ws';
import { listen, closeServer } from './ports.mjs';

export const HUB_COOKIES = Object.freeze(['jupyterhub-hub-login', 'jupyterhub-session-id', '_xsrf']);
/** Request headers that carry identity to a hub: only the worker's own login subrequest may send them. */
export const IDENTITY_HEADERS = Object.freeze(['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-forwarded-admin', 'x-hubgate-assertion']);

/** Cookie header → { name: value } (first wins). */
function requestCookies(header) {
  const out = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    if (!(k in out)) out[k] = part.slice(i + 1).trim();
  }
  return out;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function queryObject(searchParams) {
  const q = {};
  for (const [k, v] of searchParams) {
    if (k in q) q[k] = [].concat(q[k], v);
    else q[k] = v;
  }
  return q;
}

/**
 * @param {object} [opts]
 * @param {number} [opts.port=0]
 * @returns {Promise<{url:string, port:number, requests:object[], sockets:Set<any>, close():Promise<void>}>}
 */
export async function startHubEcho({ port = 0 } = {}) {
  const requests = [];
  const sockets = new Set();
  /** hub cookie value (jupyterhub-hub-login or jupyterhub-session-id) → user */
  const sessions = new Map();
  let loginAnswer = null;
  /** path suffix → milliseconds to hold a matching request before answering */
  const delays = new Map();
  const hubUserOf = (req) => {
    const c = requestCookies(req.headers.cookie);
    return sessions.get(c['jupyterhub-hub-login']) ?? sessions.get(c['jupyterhub-session-id']) ?? '';
  };
  const wss = new WebSocketServer({ noServer: true });

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://hub.invalid');
    const user = req.headers['x-forwarded-user'] ?? '';
    const hubUser = hubUserOf(req);
    const entry = { method: req.method, path: url.pathname, query: queryObject(url.searchParams), headers: { ...req.headers }, url: req.url, hubUser };
    requests.push(entry);
    for (const [suffix, ms] of delays) {
      if (url.pathname.endsWith(suffix)) await new Promise((r) => setTimeout(r, ms));
    }
    if (res.destroyed || req.socket.destroyed) return;
    const send = (status, obj, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-echo-user': user, 'x-echo-hub-user': hubUser, ...headers });
      res.end(JSON.stringify(obj));
    };
    try {
      if (req.method === 'POST' && url.pathname === '/upload') {
        const hash = crypto.createHash('sha256');
        let bytes = 0;
        for await (const chunk of req) {
          bytes += chunk.length;
          hash.update(chunk);
        }
        entry.bytes = bytes;
        return send(200, { bytes, sha256: hash.digest('hex') });
      }

      const body = await readBody(req);
      entry.body = body;
      const echo = { method: req.method, path: url.pathname, query: entry.query, headers: req.headers, body, hub_user: hubUser };

      if (url.pathname.endsWith('/hub/login') && req.method === 'GET') {
        if (loginAnswer !== null) return send(loginAnswer, { ...echo, error: `login answer set to ${loginAnswer}` });
        if (!user) return send(401, { ...echo, error: 'no X-Forwarded-User header' });
        const next = url.searchParams.get('next') || '/hub/';
        const login = encodeURIComponent(`${user}.${crypto.randomBytes(8).toString('hex')}`);
        const sid = crypto.randomBytes(16).toString('hex');
        sessions.set(login, user);
        sessions.set(sid, user);
        entry.loggedIn = user;
        res.writeHead(302, {
          location: next,
          'content-type': 'application/json',
          'x-echo-user': user,
          'x-echo-hub-user': hubUser,
          // three separate headers: node sends one Set-Cookie line per array item
          'set-cookie': [
            `jupyterhub-hub-login=${login}; HttpOnly; Path=/hub/; SameSite=Lax`,
            `jupyterhub-session-id=${sid}; HttpOnly; Path=/; SameSite=Lax`,
            `_xsrf=${crypto.randomBytes(16).toString('base64url')}; Path=/hub/; SameSite=Lax`,
          ],
        });
        return res.end(JSON.stringify(echo));
      }
      if (url.pathname.endsWith('/hub/logout')) {
        const c = requestCookies(req.headers.cookie);
        sessions.delete(c['jupyterhub-hub-login']);
        sessions.delete(c['jupyterhub-session-id']);
        const gone = 'Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0';
        res.writeHead(302, {
          location: '/hub/login',
          'content-type': 'application/json',
          'x-echo-user': user,
          'x-echo-hub-user': hubUser,
          'set-cookie': [
            `jupyterhub-hub-login=; ${gone}; HttpOnly; Path=/hub/`,
            `jupyterhub-session-id=; ${gone}; HttpOnly; Path=/`,
            `_xsrf=; ${gone}; Path=/hub/`,
          ],
        });
        return res.end(JSON.stringify(echo));
      }
      if (url.pathname === '/hub/redirect-elsewhere') {
        return send(302, echo, { location: 'http://127.0.0.1:1/elsewhere' });
      }
      if (url.pathname === '/stream' && req.method === 'GET') {
        const chunks = Math.min(Number(url.searchParams.get('chunks') ?? 5), 10_000);
        const size = Math.min(Number(url.searchParams.get('size') ?? 1024), 1 << 20);
        const delayMs = Math.min(Number(url.searchParams.get('delayMs') ?? 50), 10_000);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-echo-user': user, 'x-echo-hub-user': hubUser });
        for (let i = 0; i < chunks; i += 1) {
          if (!res.write(Buffer.alloc(size, 0x61 + (i % 26)))) await new Promise((r) => res.once('drain', r));
          if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
        }
        return res.end();
      }
      return send(200, echo);
    } catch (err) {
      if (!res.headersSent) send(500, { error: err.message });
      else res.destroy();
    }
  });

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://hub.invalid');
    const user = hubUserOf(req);
    requests.push({ method: req.method, path: url.pathname, query: queryObject(url.searchParams), headers: { ...req.headers }, url: req.url, upgrade: true, hubUser: user });
    if (!url.pathname.startsWith('/ws/')) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('message', (data, isBinary) => {
        ws.send(`${user}: ${isBinary ? Buffer.from(data).toString('base64') : data.toString()}`);
      });
    });
  });

  const bound = await listen(server, port);
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    requests,
    sockets,
    /** Requests (not upgrades) whose path is `p`. */
    requestsTo(p) {
      return requests.filter((r) => r.path === p && !r.upgrade);
    },
    /** Requests (and upgrades) since index `from` that carried an identity header or the assertion. */
    identityCarriers(from = 0) {
      return requests.slice(from).filter((r) => IDENTITY_HEADERS.some((h) => h in r.headers) || Object.keys(r.headers).some((k) => IDENTITY_HEADERS.includes(k.replace(/_/g, '-'))));
    },
    /** Hold requests whose path ends in `suffix` for `ms` before answering; `ms` null removes it. */
    setDelay(suffix, ms) {
      if (ms === null) delays.delete(suffix);
      else delays.set(suffix, ms);
    },
    /** Make <base>hub/login answer `status` (no cookies) instead of logging in; null restores it. */
    setLoginAnswer(status) {
      loginAnswer = status;
    },
    /** The user a hub cookie value belongs to (undefined when it names no live session). */
    sessionUser(value) {
      return sessions.get(value);
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      await closeServer(server);
    },
  };
}
