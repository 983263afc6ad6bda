// The origin behind both workers for `npm run load` (bench/load.mjs), run as
// its own process so its hashing and echoing do not share an event loop with
// the load client. Loopback only. It prints one JSON line {"port": N} on
// stdout once it listens, and stops on SIGTERM/SIGINT or when stdin closes.
//
//   GET  <any>/hub/login        needs X-Forwarded-User (the worker's own login
//                               subrequest): sets the hub cookies (three
//                               Set-Cookie headers, as a hub does) and 302s to `next`
//   PUT|POST /load/upload       hashes the streamed body: {bytes, sha256}
//   GET  /load/download?id=&bytes=&seed=
//                               streams `bytes` of AES-128-CTR keystream from
//                               `seed` (Content-Length set), hashing what it
//                               writes; the record is kept under `id`
//   GET  /_origin/sent?id=      (asked directly, not through a worker) the
//                               record of download `id`: {bytes, sha256, done, error}
//   GET  /_origin/stats         counters
//   WebSocket upgrade /load/ws  echoes every message back unchanged, text as
//                               text and binary as binary
//   anything else               200 JSON {path, query, hub_user, leak}: `hub_user`
//                               is the user the hub cookies name ('' when none),
//                               `leak` is true when an identity header came along
import http from 'node:http';
import crypto from 'node:crypto';
import { WebSocketServer } from 'ws';
import { keystream } from './load-lib.mjs';

const IDENTITY = ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-forwarded-admin', 'x-hubgate-assertion'];
const sessions = new Map(); // hub cookie value -> user
const sent = new Map(); // download id -> record
const stats = { requests: 0, logins: 0, uploads: 0, downloads: 0, wsOpened: 0, wsMessages: 0, leaks: 0 };

function cookies(header) {
  const out = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    if (!(k in out)) out[k] = part.slice(i + 1).trim();
  }
  return out;
}
const hubUserOf = (req) => {
  const c = cookies(req.headers.cookie);
  return sessions.get(c['jupyterhub-hub-login']) ?? sessions.get(c['jupyterhub-session-id']) ?? '';
};
const leaked = (req) => Object.keys(req.headers).some((k) => IDENTITY.includes(k.toLowerCase().replace(/_/g, '-')));

const CHUNK = 256 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

function json(res, status, obj, headers = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const server = http.createServer(async (req, res) => {
  stats.requests += 1;
  const url = new URL(req.url, 'http://origin.invalid');
  const p = url.pathname;
  try {
    if (p === '/_origin/sent') {
      const r = sent.get(url.searchParams.get('id'));
      return json(res, r ? 200 : 404, r ?? { error: 'unknown id' });
    }
    if (p === '/_origin/stats') return json(res, 200, { ...stats, sessions: sessions.size, memory: process.memoryUsage() });

    if (p === '/load/upload' && (req.method === 'PUT' || req.method === 'POST')) {
      const hash = crypto.createHash('sha256');
      let bytes = 0;
      for await (const chunk of req) {
        bytes += chunk.length;
        hash.update(chunk);
      }
      stats.uploads += 1;
      return json(res, 200, { method: req.method, bytes, sha256: hash.digest('hex'), hub_user: hubUserOf(req), leak: leaked(req) });
    }

    req.resume();
    if (p === '/load/download' && req.method === 'GET') {
      const id = url.searchParams.get('id') ?? '';
      const total = Number(url.searchParams.get('bytes') ?? 0);
      const stream = keystream(url.searchParams.get('seed') ?? id);
      const hash = crypto.createHash('sha256');
      const rec = { id, bytes: 0, sha256: null, done: false, error: null };
      sent.set(id, rec);
      stats.downloads += 1;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total, 'x-hub-user': hubUserOf(req) });
      res.on('close', () => {
        if (!rec.done) rec.error = `connection closed after ${rec.bytes} of ${total} bytes`;
      });
      while (rec.bytes < total) {
        const n = Math.min(CHUNK, total - rec.bytes);
        const chunk = stream.update(n === CHUNK ? ZEROS : ZEROS.subarray(0, n));
        hash.update(chunk);
        rec.bytes += n;
        if (!res.write(chunk)) {
          await new Promise((resolve) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.on('drain', done);
            res.on('close', done);
          });
        }
        if (res.destroyed) return;
      }
      rec.sha256 = hash.digest('hex');
      rec.done = true;
      return res.end();
    }

    if (p.endsWith('/hub/login') && req.method === 'GET') {
      const user = req.headers['x-forwarded-user'] ?? '';
      if (!user) return json(res, 401, { error: 'no X-Forwarded-User header' });
      const login = encodeURIComponent(`${user}.${crypto.randomBytes(8).toString('hex')}`);
      const sid = crypto.randomBytes(16).toString('hex');
      sessions.set(login, user);
      sessions.set(sid, user);
      stats.logins += 1;
      const body = JSON.stringify({ logged_in: user });
      res.writeHead(302, {
        location: url.searchParams.get('next') || '/hub/',
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'set-cookie': [
          `jupyterhub-hub-login=${login}; HttpOnly; Path=/hub/; SameSite=Lax`,
          `jupyterhub-session-id=${sid}; HttpOnly; Path=/; SameSite=Lax`,
          `_xsrf=${crypto.randomBytes(16).toString('base64url')}; Path=/hub/; SameSite=Lax`,
        ],
      });
      return res.end(body);
    }

    const leak = leaked(req) && !p.endsWith('/hub/login');
    if (leak) stats.leaks += 1;
    return json(res, 200, { method: req.method, path: p, query: Object.fromEntries(url.searchParams), hub_user: hubUserOf(req), leak });
  } catch (err) {
    if (!res.headersSent) json(res, 500, { error: err.message });
    else res.destroy();
  }
});
server.keepAliveTimeout = 30_000;
server.headersTimeout = 60_000;
server.requestTimeout = 0;

const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://origin.invalid');
  if (url.pathname !== '/load/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  if (leaked(req)) stats.leaks += 1;
  wss.handleUpgrade(req, socket, head, (ws) => {
    stats.wsOpened += 1;
    ws.on('message', (data, isBinary) => {
      stats.wsMessages += 1;
      ws.send(data, { binary: isBinary });
    });
    ws.on('error', () => {});
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port, pid: process.pid })}\n`);
});
const stop = () => {
  for (const ws of wss.clients) ws.terminate();
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
