//! hubgate: an authentication gateway for JupyterHub at the edge.
//!
//! The modules read like a request's path through the worker: the router
//! picks a route; `oauth` (and later `lti`) verify who is there; `session`
//! remembers it; `proxy` decides what reaches the hub. `edge` (wasm32 only)
//! is the thin adapter that performs the I/O those decisions ask for.

pub mod access;
pub mod app;
pub mod assertion;
pub mod claims;
pub mod config;
pub mod cookies;
pub mod flow_state;
pub mod http;
pub mod identity;
pub mod io;
pub mod jwks;
pub mod log;
pub mod lti;
pub mod oauth;
pub mod pages;
pub mod proxy;
pub mod redirect;
pub mod router;
pub mod secret;
pub mod session;
pub mod session_store;
pub mod signing;

#[cfg(target_arch = "wasm32")]
mod edge;
