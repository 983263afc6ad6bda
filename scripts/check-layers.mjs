#!/usr/bin/env node
// The layering rule of docs/ARCHITECTURE.md: each layer imports only from
// the layers above it (and from itself), and no two top-level modules import
// each other, directly or through others. Reads every `crate::<module>` path
// in src/ (use lines and inline paths alike). Exit 1 with every violation.
//
//   node scripts/check-layers.mjs [src-dir]
import fs from 'node:fs';
import path from 'node:path';

const LAYERS = [
  ['leaves', ['http', 'json', 'ports', 'bindings', 'url_policy', 'secret', 'log', 'pages', 'cookies']],
  ['mechanisms', ['jose', 'cache', 'one_time']],
  ['domains', ['identity', 'session', 'assertion', 'framing', 'proxy', 'router', 'oauth', 'lti']],
  ['config', ['config']],
  ['app', ['app']],
  ['edge', ['edge']],
];
const layerOf = new Map();
LAYERS.forEach(([, mods], i) => mods.forEach((m) => layerOf.set(m, i)));

const src = path.resolve(process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'src'));
const files = [];
(function walk(d) {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.rs')) files.push(p);
  }
})(src);

const problems = [];
const edges = new Map(); // module -> Set(modules it imports)
for (const file of files) {
  const rel = path.relative(src, file);
  const top = rel.split(path.sep)[0].replace(/\.rs$/, '');
  if (top === 'lib' || top === 'bin') continue;
  if (!layerOf.has(top)) {
    problems.push(`${rel}: module \`${top}\` is in no layer (add it to scripts/check-layers.mjs and docs/ARCHITECTURE.md)`);
    continue;
  }
  const text = fs.readFileSync(file, 'utf8')
    // comments do not import anything
    .replace(/\/\/.*$/gm, '');
  const used = new Set();
  for (const m of text.matchAll(/crate::([a-z_]+)/g)) used.add(m[1]);
  // `use crate::{a, b::c}` groups
  for (const m of text.matchAll(/crate::\{([^}]*)\}/g)) {
    for (const part of m[1].split(',')) {
      const name = part.trim().split('::')[0];
      if (name) used.add(name);
    }
  }
  for (const dep of used) {
    if (dep === top || !layerOf.has(dep)) continue;
    if (!edges.has(top)) edges.set(top, new Set());
    edges.get(top).add(dep);
    const [from, to] = [layerOf.get(top), layerOf.get(dep)];
    if (to > from) {
      problems.push(`${rel}: \`${top}\` (${LAYERS[from][0]}) imports \`${dep}\` (${LAYERS[to][0]}), a lower layer`);
    }
  }
}

// Cycles between top-level modules (possible within a layer).
const state = new Map();
const stack = [];
function visit(m) {
  state.set(m, 'open');
  stack.push(m);
  for (const d of edges.get(m) ?? []) {
    if (state.get(d) === 'open') {
      problems.push(`cycle: ${[...stack.slice(stack.indexOf(d)), d].join(' -> ')}`);
    } else if (!state.has(d)) visit(d);
  }
  stack.pop();
  state.set(m, 'done');
}
for (const m of edges.keys()) if (!state.has(m)) visit(m);

if (problems.length) {
  console.error(`layering: ${problems.length} problem(s)`);
  for (const p of problems) console.error(`  - ${p}`);
  process.exit(1);
}
const count = [...edges.values()].reduce((n, s) => n + s.size, 0);
console.error(`layering: ok (${files.length} files, ${count} module imports, no upward import, no cycle)`);
