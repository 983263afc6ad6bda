// Helpers shared by bench/load*.mjs: deterministic bytes, statistics, the
// memory of a process tree from /proc, and a small node:http client that
// streams bodies and enforces a deadline.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

/** Deterministic bytes for `seed` (AES-128-CTR keystream): either end can make them cheaply. */
export function keystream(seed) {
  const key = crypto.createHash('sha256').update(`hubgate-load/${seed}`).digest();
  return crypto.createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
}

/** A small seeded PRNG (mulberry32) returning floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Quantile `q` (0..1) of an ascending-sorted array (nearest rank); NaN when empty. */
export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/** Median of a list of numbers (NaN when empty). */
export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Sort a Float64Array (or number array) of samples ascending, as a Float64Array. */
export function sortedSamples(samples) {
  const a = Float64Array.from(samples);
  a.sort();
  return a;
}

// ---------------------------------------------------------------------------
// /proc

/** pid -> { ppid, pgrp, comm } for every process now. */
export function processTable() {
  const table = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const rest = stat.slice(close + 2).split(' ');
    table.set(Number(name), { ppid: Number(rest[1]), pgrp: Number(rest[2]), comm });
  }
  return table;
}

/** Every descendant of `root` (not `root` itself). */
export function descendants(root, table = processTable()) {
  const children = new Map();
  for (const [pid, p] of table) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(pid);
  }
  const out = [];
  const todo = [...(children.get(root) ?? [])];
  while (todo.length) {
    const pid = todo.pop();
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** VmRSS of `pid` in bytes (0 when gone). */
export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * The workerd process tree under `root` (every descendant named workerd, and
 * their descendants): { pids, rss } with rss summed in bytes.
 */
export function workerdTree(root = process.pid) {
  const table = processTable();
  const under = descendants(root, table);
  const tops = under.filter((pid) => table.get(pid)?.comm === 'workerd');
  const pids = new Set(tops);
  for (const t of tops) for (const d of descendants(t, table)) pids.add(d);
  const list = [...pids];
  return { pids: list, rss: list.reduce((s, pid) => s + rssBytes(pid), 0) };
}

// ---------------------------------------------------------------------------
// HTTP client

/**
 * One request over node:http. `body` is a function (req) => Promise that
 * writes and ends the request (streamed), or a string/Buffer, or undefined.
 * Resolves with the response (its body not yet read). Rejects on socket
 * errors and when `timeoutMs` passes without the response head; `signal`
 * aborts the request (and its body) at any point.
 */
export function request(url, { method = 'GET', headers = {}, body, agent, timeoutMs = 60_000, signal } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent, signal });
    const timer = setTimeout(() => req.destroy(new Error(`no response head within ${timeoutMs} ms`)), timeoutMs);
    req.once('response', (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    if (typeof body === 'function') {
      body(req).catch((err) => req.destroy(err));
    } else {
      req.end(body);
    }
  });
}

/** Read a response body to a string, with a deadline. */
export function readText(res, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const timer = setTimeout(() => res.destroy(new Error(`body not complete within ${timeoutMs} ms`)), timeoutMs);
    res.on('data', (c) => chunks.push(c));
    res.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    res.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    res.once('close', () => {
      clearTimeout(timer);
      if (!res.complete) reject(new Error('connection closed before the body ended'));
    });
  });
}

/** Write `total` bytes of keystream(seed) into a writable with backpressure, hashing them. */
export async function writeKeystream(writable, seed, total, chunkSize = 256 * 1024) {
  const ks = keystream(seed);
  const zeros = Buffer.alloc(chunkSize);
  const hash = crypto.createHash('sha256');
  let written = 0;
  while (written < total) {
    const n = Math.min(chunkSize, total - written);
    const chunk = ks.update(n === chunkSize ? zeros : zeros.subarray(0, n));
    hash.update(chunk);
    written += n;
    if (!writable.write(chunk)) {
      await new Promise((resolve, reject) => {
        const done = (err) => {
          writable.off('drain', done);
          writable.off('close', closed);
          writable.off('error', done);
          if (err instanceof Error) reject(err);
          else resolve();
        };
        const closed = () => done(new Error(`request closed after ${written} bytes`));
        writable.on('drain', done);
        writable.on('close', closed);
        writable.on('error', done);
      });
    }
  }
  writable.end();
  return { bytes: written, sha256: hash.digest('hex') };
}
