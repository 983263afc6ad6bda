// Helpers for bench/workerd-cost.mjs: a serial keep-alive HTTP client, a
// tiny cookie store, workerd's CPU time from /proc, and statistics.
import fs from 'node:fs';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { processTable, descendants, quantile, median } from '../load-lib.mjs';

export { quantile, median };

// ---------------------------------------------------------------------------
// HTTP

/** A client for one origin over one kept-alive socket (requests are serial). */
export function client(origin, { timeoutMs = 30_000 } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const base = new URL(origin);
  return {
    origin,
    /** One request; resolves once the whole body is read: { status, headers, setCookies, location, text, ms }. */
    request(path, { method = 'GET', headers = {}, body } = {}) {
      const payload = body === undefined ? undefined : Buffer.from(body);
      const h = { ...headers };
      if (payload) h['content-length'] = String(payload.length);
      const t0 = performance.now();
      return new Promise((resolve, reject) => {
        const req = http.request({ host: base.hostname, port: base.port, path, method, headers: h, agent }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.once('error', reject);
          res.once('end', () => {
            const ms = performance.now() - t0;
            resolve({
              status: res.statusCode,
              headers: res.headers,
              setCookies: res.headers['set-cookie'] ?? [],
              location: res.headers.location,
              text: Buffer.concat(chunks).toString('utf8'),
              ms,
            });
          });
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${origin}${path}: no answer within ${timeoutMs} ms`)));
        req.once('error', reject);
        req.end(payload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/** GET an absolute URL on another origin (a peer), one-off. */
export function getOnce(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode, headers: res.headers, location: res.headers.location, text: Buffer.concat(chunks).toString('utf8') }));
      res.once('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${url}: no answer within 30 s`)));
    req.once('error', reject);
  });
}

/** Cookie store without attributes: name -> value; Max-Age<=0 deletes. */
export function cookies() {
  const map = new Map();
  return {
    store(setCookies) {
      for (const sc of setCookies) {
        const first = sc.split(';')[0];
        const i = first.indexOf('=');
        if (i <= 0) continue;
        const name = first.slice(0, i).trim();
        const gone = /;\s*max-age=(-?\d+)/i.exec(sc);
        if (gone && Number(gone[1]) <= 0) map.delete(name);
        else map.set(name, first.slice(i + 1).trim());
      }
      return this;
    },
    header(filter = () => true) {
      return [...map].filter(([n]) => filter(n)).map(([n, v]) => `${n}=${v}`).join('; ');
    },
    names: () => [...map.keys()],
  };
}

// ---------------------------------------------------------------------------
// workerd's CPU time

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100 */
}
export const CLK_TCK = clkTck;

/** The workerd processes under `root` (and their descendants). */
export function workerdPids(root = process.pid) {
  const table = processTable();
  const tops = descendants(root, table).filter((pid) => table.get(pid)?.comm === 'workerd');
  const pids = new Set(tops);
  for (const t of tops) for (const d of descendants(t, table)) pids.add(d);
  return [...pids];
}

/** utime+stime of `pids` in milliseconds (all threads, from /proc/<pid>/stat). */
export function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state): utime is field 14, stime field 15
    ticks += Number(rest[11]) + Number(rest[12]);
  }
  return (ticks * 1000) / CLK_TCK;
}

// ---------------------------------------------------------------------------
// Statistics

export function summary(samples) {
  const s = Float64Array.from(samples).sort();
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), min: s[0], max: s[s.length - 1] };
}

/** Median of the element-wise differences a[i] - b[i]. */
export function pairedMedian(a, b) {
  return median(a.map((x, i) => x - b[i]).filter((x) => Number.isFinite(x)));
}

export const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '—');
export const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);

/** Render rows (arrays of cells) as an aligned text table; the first row is the header. */
export function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c] ?? '').length)));
  const line = (r) => r.map((cell, c) => (c === 0 ? String(cell ?? '').padEnd(widths[c]) : String(cell ?? '').padStart(widths[c]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
