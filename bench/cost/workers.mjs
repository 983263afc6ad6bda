// Worker sources and Miniflare options for bench/workerd-cost.mjs. The
// built worker itself (build/index.js + build/index_bg.wasm) is never
// changed: the counting and probe variants only wrap its env.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, hubgateModule } from '../../tests/e2e/support/worker.mjs';

export const COMPAT_DATE = '2025-09-01';
export { hubgateModule };
const BUILD_FILES = ['worker/shim.mjs', 'index.js', 'index_bg.wasm'];

/**
 * Copy build/ (the files the worker is made of) to a private directory, so
 * a rebuild by someone else during the run cannot change the worker under
 * measurement or mix two builds. Waits up to `waitMs` for a build that is
 * momentarily missing. Returns { dir, script, indexJs, wasm, remove() }.
 */
export async function snapshotBuild({ waitMs = 120_000, log = () => {} } = {}) {
  const src = path.join(REPO_ROOT, 'build');
  const deadline = Date.now() + waitMs;
  for (;;) {
    const missing = BUILD_FILES.filter((f) => !fs.existsSync(path.join(src, f)));
    if (!missing.length) break;
    if (Date.now() >= deadline) throw new Error(`build/${missing[0]} not found: build the worker first (npm run build)`);
    log(`build/${missing[0]} missing (a rebuild?), waiting`);
    await new Promise((r) => setTimeout(r, 5000));
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hubgate-cost-'));
  const dir = path.join(root, 'build');
  for (const f of BUILD_FILES) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(src, f), path.join(dir, f));
  }
  return {
    dir,
    script: path.join(dir, 'worker', 'shim.mjs'),
    indexJs: path.join(dir, 'index.js'),
    wasm: path.join(dir, 'index_bg.wasm'),
    remove: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** A pass-through worker: what any worker in front of the hub does at least. */
export function bareSource(hubOrigin, { withOneTime = false } = {}) {
  return `export default { async fetch(req) {
  const u = new URL(req.url); const o = new URL(${JSON.stringify(hubOrigin)});
  u.protocol = o.protocol; u.host = o.host;
  return fetch(new Request(u, req), { redirect: 'manual' });
} };
${withOneTime ? 'export class OneTime { constructor(state) { this.state = state; } async fetch() { return new Response("first"); } }' : ''}`;
}

/**
 * Main module of the counting worker: the built worker's default export,
 * constructed per request with an env whose JWKS_CACHE, NONCES and ONE_TIME
 * are the real bindings behind counting wrappers (KV: every get/put/…; the
 * Durable Object namespace: every stub.fetch, i.e. every request to a
 * OneTime object). GET /__bench/counts answers the counts; nothing else is
 * changed. The wrapper of ONE_TIME is a class named DurableObjectNamespace
 * because worker-rs checks the binding's constructor name.
 */
export const COUNTING_MAIN = `
import { WorkerEntrypoint } from 'cloudflare:workers';
import Hubgate from './index.js';
export { OneTime } from './index.js';
const counts = Object.create(null);
const inc = (k) => { counts[k] = (counts[k] ?? 0) + 1; };
function countingKv(name, kv) {
  return {
    get: (...a) => { inc(name + '.get'); return kv.get(...a); },
    getWithMetadata: (...a) => { inc(name + '.getWithMetadata'); return kv.getWithMetadata(...a); },
    put: (...a) => { inc(name + '.put'); return kv.put(...a); },
    delete: (...a) => { inc(name + '.delete'); return kv.delete(...a); },
    list: (...a) => { inc(name + '.list'); return kv.list(...a); },
  };
}
class DurableObjectNamespace {
  #name; #ns;
  constructor(name, ns) { this.#name = name; this.#ns = ns; }
  idFromName(n) { inc(this.#name + '.idFromName'); return this.#ns.idFromName(n); }
  idFromString(s) { return this.#ns.idFromString(s); }
  newUniqueId(o) { return this.#ns.newUniqueId(o); }
  get(id, o) {
    const stub = this.#ns.get(id, o);
    const name = this.#name;
    return {
      id: stub.id,
      name: stub.name,
      fetch(...a) { inc(name + '.fetch'); return stub.fetch(...a); },
      connect(...a) { inc(name + '.connect'); return stub.connect(...a); },
    };
  }
}
let wrapped = null;
export default class extends WorkerEntrypoint {
  fetch(req) {
    if (new URL(req.url).pathname === '/__bench/counts') return Response.json(counts);
    wrapped ??= {
      ...this.env,
      JWKS_CACHE: countingKv('JWKS_CACHE', this.env.JWKS_CACHE),
      NONCES: countingKv('NONCES', this.env.NONCES),
      ONE_TIME: new DurableObjectNamespace('ONE_TIME', this.env.ONE_TIME),
    };
    return new Hubgate(this.ctx, wrapped).fetch(req);
  }
}
`;

/** Miniflare options of the counting worker (the built modules plus COUNTING_MAIN as the main module). */
export function countingModule(build) {
  return {
    modules: [
      { type: 'ESModule', path: path.join(build.dir, '__bench_counting.mjs'), contents: COUNTING_MAIN },
      { type: 'ESModule', path: build.indexJs, contents: fs.readFileSync(build.indexJs, 'utf8') },
      { type: 'CompiledWasm', path: build.wasm, contents: fs.readFileSync(build.wasm) },
    ],
    modulesRoot: build.dir,
  };
}

// ---------------------------------------------------------------------------
// Fresh isolates inside one running workerd: a host worker with a Worker
// Loader binding creates a new isolate for every new id.

/**
 * The built worker in a loaded isolate. Loaded workers get only plain
 * values in env (a KV namespace or a Durable Object namespace cannot be
 * passed), so JWKS_CACHE, NONCES and ONE_TIME are stand-ins that throw if
 * used; the probe requests never use them (a proxied GET with a session,
 * or a configuration error), and the responses are checked.
 */
const PROBE_HUBGATE_MAIN = `
import { WorkerEntrypoint } from 'cloudflare:workers';
import Hubgate from './index.js';
class DurableObjectNamespace { idFromName() { throw new Error('cold-start probe: no Durable Object'); } get() { throw new Error('cold-start probe: no Durable Object'); } }
const kv = () => { throw new Error('cold-start probe: no KV'); };
class KvNamespace { get = kv; getWithMetadata = kv; put = kv; delete = kv; list = kv; }
let env2 = null;
export default class extends WorkerEntrypoint {
  fetch(req) {
    env2 ??= { ...this.env, JWKS_CACHE: new KvNamespace(), NONCES: new KvNamespace(), ONE_TIME: new DurableObjectNamespace() };
    return new Hubgate(this.ctx, env2).fetch(req);
  }
}`;

/** The module alone: compile (at isolate start) and instantiate with inert imports, no wasm-bindgen start, no request work. */
const PROBE_WASM_ONLY_MAIN = `
import mod from './index_bg.wasm';
const imports = {};
for (const i of WebAssembly.Module.imports(mod)) {
  (imports[i.module] ??= {})[i.name] = i.kind === 'function' ? () => { throw new Error('inert import'); } : i.kind === 'tag' ? WebAssembly.JSTag : undefined;
}
const instance = new WebAssembly.Instance(mod, imports);
export default { fetch() { return new Response('instantiated ' + Object.keys(instance.exports).length); } };`;

/**
 * Host worker. GET /prepare?id=&kind=&unique=  builds the module set (a copy
 * of the wasm with a custom section naming the id when unique=1, so V8's
 * process-wide compiled-module cache cannot serve it) and keeps it;
 * GET /cold?id=&path= and /warm?id=&path= send one request to that id's
 * isolate (the first creates it); GET /noop answers at once.
 */
export const LOADER_HOST = `
const prepared = new Map();
const enc = new TextEncoder();
function uniqueWasm(bytes, id) {
  const name = enc.encode('hubgate-bench');
  const tag = enc.encode('isolate-' + id + '-' + crypto.randomUUID());
  const body = new Uint8Array(1 + name.length + tag.length);
  body[0] = name.length; body.set(name, 1); body.set(tag, 1 + name.length);
  if (body.length > 127) throw new Error('custom section too long');
  const src = new Uint8Array(bytes);
  const out = new Uint8Array(src.length + 2 + body.length);
  out.set(src); out[src.length] = 0; out[src.length + 1] = body.length; out.set(body, src.length + 2);
  return out.buffer;
}
export default { async fetch(req, env) {
  const u = new URL(req.url);
  const q = u.searchParams;
  if (u.pathname === '/noop') return new Response('noop');
  const id = q.get('id');
  if (u.pathname === '/prepare') {
    const kind = q.get('kind');
    const wasm = q.get('unique') === '1' ? uniqueWasm(env.WASM, id) : env.WASM;
    const spec = { compatibilityDate: env.COMPAT_DATE };
    if (kind === 'bare') {
      Object.assign(spec, { mainModule: 'main.js', modules: { 'main.js': env.BARE_MAIN } });
    } else if (kind === 'wasm-only') {
      Object.assign(spec, { mainModule: 'main.js', modules: { 'main.js': env.WASM_ONLY_MAIN, 'index_bg.wasm': { wasm } } });
    } else {
      const bindings = JSON.parse(kind === 'hubgate-config-error' ? env.BAD_BINDINGS : kind === 'hubgate-no-tool-key' ? env.NO_TOOL_KEY_BINDINGS : env.BINDINGS);
      Object.assign(spec, { mainModule: 'main.js', modules: { 'main.js': env.HUBGATE_MAIN, 'index.js': env.INDEX_JS, 'index_bg.wasm': { wasm } }, env: bindings });
    }
    prepared.set(id, spec);
    return new Response('prepared');
  }
  const spec = prepared.get(id);
  if (!spec) return new Response('not prepared', { status: 500 });
  const worker = env.LOADER.get(id, () => spec);
  const res = await worker.getEntrypoint().fetch(new Request(env.PUBLIC_ORIGIN + q.get('path'), { headers: { cookie: req.headers.get('x-probe-cookie') ?? '', accept: 'text/html' } }));
  const text = await res.text();
  if (u.pathname === '/warm') prepared.delete(id);
  return Response.json({ status: res.status, bytes: text.length, head: text.slice(0, 160) });
} };`;

/** Miniflare options of the loader host. */
export function loaderHostOptions({ build, bindings, badBindings, noToolKey, hubOrigin, publicOrigin }) {
  return {
    name: 'loader-host',
    modules: true,
    script: LOADER_HOST,
    compatibilityDate: COMPAT_DATE,
    workerLoaders: { LOADER: {} },
    bindings: {
      COMPAT_DATE,
      PUBLIC_ORIGIN: publicOrigin,
      BINDINGS: JSON.stringify(bindings),
      BAD_BINDINGS: JSON.stringify(badBindings),
      NO_TOOL_KEY_BINDINGS: JSON.stringify(noToolKey),
      HUBGATE_MAIN: PROBE_HUBGATE_MAIN,
      WASM_ONLY_MAIN: PROBE_WASM_ONLY_MAIN,
      BARE_MAIN: bareSource(hubOrigin),
    },
    textBlobBindings: { INDEX_JS: build.indexJs },
    dataBlobBindings: { WASM: build.wasm },
  };
}
