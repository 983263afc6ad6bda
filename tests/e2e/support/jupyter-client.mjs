// Browser-like helpers for talking to a real JupyterHub and its single-user
// servers through the worker: spawn and wait, REST calls with the `_xsrf`
// cookie + `X-XSRFToken` and the `Sec-Fetch-*` headers a browser sends, and
// the kernel WebSocket (Jupyter messaging protocol v5, JSON text frames).
import crypto from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';
import { follow } from './worker.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * `fetch(url, init)` over node:http, answering a WHATWG Response, for the
 * requests where the Sec-Fetch-* headers matter. Node's global fetch (undici)
 * always sends `Sec-Fetch-Mode: cors`, overwriting a `navigate` given in
 * init.headers, so a "navigation" made with it looks like a cross-origin
 * script fetch to JupyterHub (whose XSRF rules then refuse cookie auth on a
 * single-user server page) and to the worker. This one sends exactly the
 * headers it is given, and decodes gzip/br/deflate bodies as a browser does.
 * Never follows redirects; http only (loopback).
 * Usable as the first argument of `follow`.
 */
export function browserFetch(url, init = {}) {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`browserFetch: http only, got ${u.href}`);
  const headers = {};
  for (const [k, v] of new Headers(init.headers ?? {})) headers[k] = v;
  const body = init.body === undefined || init.body === null ? undefined : Buffer.from(init.body);
  if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port || 80, path: `${u.pathname}${u.search}`, method: init.method ?? 'GET', headers, signal: init.signal },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const h = new Headers();
          for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
          let buf = Buffer.concat(chunks);
          // decode like a browser (the Content-Encoding header stays, for the caller to see)
          const enc = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
          try {
            if (enc === 'gzip') buf = zlib.gunzipSync(buf);
            else if (enc === 'br') buf = zlib.brotliDecompressSync(buf);
            else if (enc === 'deflate') buf = zlib.inflateSync(buf);
          } catch (err) {
            reject(new Error(`browserFetch: ${u.href}: body is not valid ${enc}: ${err.message}`));
            return;
          }
          const nullBody = [204, 205, 304].includes(res.statusCode) || (init.method ?? 'GET') === 'HEAD';
          resolve(new Response(nullBody ? null : buf, { status: res.statusCode, statusText: res.statusMessage, headers: h }));
        });
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`browserFetch: timeout on ${u.href}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Like `follow`, with real navigation headers (see browserFetch). */
export function navigate(url, jar, opts = {}) {
  return follow(browserFetch, url, jar, opts);
}

/** Headers of a same-origin `fetch()` from a page of `origin`. */
export function browserApiHeaders(origin, jar, url, extra = {}) {
  const h = {
    accept: 'application/json',
    origin,
    referer: `${origin}/`,
    'sec-fetch-mode': 'cors',
    'sec-fetch-site': 'same-origin',
    'sec-fetch-dest': 'empty',
    'user-agent': 'hubgate-e2e/1 (node)',
    ...extra,
  };
  const xsrf = jar.get('_xsrf', url);
  if (xsrf) h['x-xsrftoken'] = decodeURIComponent(xsrf);
  const cookie = jar.header(url);
  if (cookie) h.cookie = cookie;
  return h;
}

/**
 * A same-origin API call as a page's `fetch()` would make it (cookies, `_xsrf`
 * header, Origin, Sec-Fetch-*). Returns { status, headers, text, json }.
 */
export async function apiCall(base, jar, method, p, body, extraHeaders = {}) {
  const url = new URL(p, base);
  const headers = browserApiHeaders(new URL(base).origin, jar, url, extraHeaders);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await browserFetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  jar.store(url, res);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json, url: url.href };
}

/**
 * Start `user`'s server the way a browser does (GET /hub/spawn, then keep
 * opening /user/<name>/lab until the server answers), bounded by `timeoutMs`.
 * Returns the final chain (its last entry is the JupyterLab page) and timings.
 */
export async function spawnAndOpenLab(base, jar, user, { timeoutMs = 90_000 } = {}) {
  const started = Date.now();
  const spawn = await navigate(new URL('/hub/spawn', base), jar, { max: 15 });
  const labPath = `/user/${user}/lab`;
  let last;
  for (let i = 0; Date.now() - started < timeoutMs; i += 1) {
    try {
      last = await navigate(new URL(labPath, base), jar, { max: 15 });
    } catch (err) {
      if (!err.chain) throw err;
      err.message += `:\n${err.chain.map((c) => `${c.status} ${c.method} ${c.url}${c.location ? ` -> ${c.location}` : ''}`).join('\n')}`;
      throw err;
    }
    const end = last.at(-1);
    if (end.status === 200 && new URL(end.url).pathname === labPath) {
      return { spawn, chain: last, ms: Date.now() - started };
    }
    await sleep(Math.min(250 + i * 100, 1000));
  }
  const trail = (last ?? spawn).map((c) => `${c.status} ${c.method} ${c.url}`).join('\n');
  throw new Error(`${user}'s server did not come up in ${timeoutMs} ms:\n${trail}`);
}

/** A Jupyter message (protocol v5.3) for the `shell` channel. */
export function jupyterMessage(msgType, content, session) {
  return {
    header: {
      msg_id: crypto.randomUUID(),
      username: 'hubgate-e2e',
      session,
      date: new Date().toISOString(),
      msg_type: msgType,
      version: '5.3',
    },
    parent_header: {},
    metadata: {},
    content,
    channel: 'shell',
    buffers: [],
  };
}

export const KERNEL_WS_V1 = 'v1.kernel.websocket.jupyter.org';

/**
 * Open the kernel's channels WebSocket through `base` like a JupyterLab tab
 * (cookies, Origin = page origin, Sec-Fetch-Mode: websocket). With
 * `protocol: KERNEL_WS_V1` it asks for the binary v1 kernel protocol, as
 * JupyterLab 4 does; otherwise messages are JSON text (the legacy protocol).
 * Rejects with `err.status` when the upgrade is refused.
 */
export async function openKernelChannels(base, jar, user, kernelId, { sessionId = crypto.randomUUID(), timeoutMs = 10_000, headers = {}, protocol } = {}) {
  const { default: WebSocket } = await import('ws');
  const httpUrl = new URL(`/user/${user}/api/kernels/${kernelId}/channels?session_id=${sessionId}`, base);
  const wsUrl = new URL(httpUrl);
  wsUrl.protocol = 'ws:';
  // A header given as `undefined` is left out (e.g. no Sec-Fetch-Site, as an older browser).
  const all = {
    origin: httpUrl.origin,
    'sec-fetch-mode': 'websocket',
    'sec-fetch-site': 'same-origin',
    'sec-fetch-dest': 'empty',
    'user-agent': 'hubgate-e2e/1 (node)',
    ...headers,
  };
  const cookie = jar?.header(httpUrl);
  if (cookie) all.cookie = cookie;
  const h = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
  const ws = new WebSocket(wsUrl, protocol ? [protocol] : [], { headers: h, handshakeTimeout: timeoutMs });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (req, res) => {
      const err = new Error(`WebSocket upgrade refused: ${res.statusCode}`);
      err.status = res.statusCode;
      res.resume();
      ws.terminate();
      reject(err);
    });
    ws.once('error', reject);
  });
  ws.kernelProtocol = ws.protocol || 'legacy';
  return { ws, sessionId, protocol: ws.kernelProtocol };
}

/** v1 kernel WebSocket frame (jupyter_server serialize_msg_to_ws_v1). */
export function encodeV1(msg) {
  const parts = [msg.header, msg.parent_header, msg.metadata, msg.content].map((p) => Buffer.from(JSON.stringify(p)));
  const channel = Buffer.from(msg.channel);
  const offsets = [8 * (1 + 1 + parts.length + 1)];
  offsets.push(offsets.at(-1) + channel.length);
  for (const p of parts) offsets.push(offsets.at(-1) + p.length);
  const head = Buffer.alloc(8 * (offsets.length + 1));
  head.writeBigUInt64LE(BigInt(offsets.length), 0);
  offsets.forEach((o, i) => head.writeBigUInt64LE(BigInt(o), 8 * (i + 1)));
  return Buffer.concat([head, channel, ...parts]);
}

/** Parse a v1 frame into { channel, header, parent_header, metadata, content, buffers }. */
export function decodeV1(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const offsets = Array.from({ length: n }, (_, i) => Number(buf.readBigUInt64LE(8 * (i + 1))));
  const channel = buf.subarray(offsets[0], offsets[1]).toString('utf8');
  const parts = [];
  for (let i = 1; i < n - 1; i += 1) parts.push(buf.subarray(offsets[i], offsets[i + 1]));
  const [header, parent, metadata, content] = parts.slice(0, 4).map((p) => JSON.parse(p.toString('utf8')));
  return { channel, header, parent_header: parent, metadata, content, buffers: parts.slice(4) };
}

/**
 * Send an execute_request for `code` and collect replies to it until the
 * kernel is idle again. Resolves with { result (text/plain of execute_result,
 * or undefined), stream, error, reply (execute_reply content), ms }.
 */
export function execute(ws, sessionId, code, { timeoutMs = 30_000 } = {}) {
  const msg = jupyterMessage(
    'execute_request',
    { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
    sessionId,
  );
  const id = msg.header.msg_id;
  return new Promise((resolve, reject) => {
    const out = { result: undefined, stream: '', error: undefined, reply: undefined, idle: false, ms: undefined };
    const t0 = performance.now();
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`no complete answer to execute_request ${JSON.stringify(code)} in ${timeoutMs} ms: ${JSON.stringify(out)}`));
    }, timeoutMs);
    const v1 = ws.kernelProtocol === KERNEL_WS_V1;
    function onMessage(data, isBinary) {
      let m;
      try {
        m = v1 ? (isBinary ? decodeV1(Buffer.from(data)) : null) : isBinary ? null : JSON.parse(data.toString());
      } catch {
        return;
      }
      if (!m) return;
      if (m.parent_header?.msg_id !== id) return;
      const type = m.header?.msg_type ?? m.msg_type;
      if (type === 'execute_result') {
        out.result = m.content?.data?.['text/plain'];
        out.ms ??= performance.now() - t0;
      } else if (type === 'stream') out.stream += m.content?.text ?? '';
      else if (type === 'error') out.error = m.content;
      else if (type === 'execute_reply') out.reply = m.content;
      else if (type === 'status' && m.content?.execution_state === 'idle') out.idle = true;
      if (out.reply && out.idle) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        out.totalMs = performance.now() - t0;
        resolve(out);
      }
    }
    ws.on('message', onMessage);
    ws.send(v1 ? encodeV1(msg) : JSON.stringify(msg));
  });
}
