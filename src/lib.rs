//! hubgate: an authentication gateway for JupyterHub at the edge.
//!
//! Layers, each importing only from the ones above it (docs/ARCHITECTURE.md;
//! `scripts/check-layers.mjs` keeps it so):
//! leaves → mechanisms → domains → `config` → `app` → `edge` (wasm32 only).

// ── leaves: values, the I/O port, binding reading, policies, pages ──
pub mod bindings;
pub mod cookies;
pub mod http;
pub mod json;
pub mod log;
pub mod pages;
pub mod ports;
pub mod secret;
pub mod url_policy;
// ── mechanisms: JOSE, caching, one-time use ──
pub mod cache;
pub mod jose;
pub mod one_time;
// ── domains ──
pub mod assertion;
pub mod framing;
pub mod identity;
pub mod lti;
pub mod oauth;
pub mod proxy;
pub mod router;
pub mod session;
// ── composition ──
pub mod app;
pub mod config;

#[cfg(target_arch = "wasm32")]
mod edge;
