//! Stale-while-error caching of documents the worker fetches (key sets,
//! discovery documents): the policy is one pure function (`policy::decide`),
//! `store` is the thin shell that carries it out, in isolate memory and KV.

pub mod key_sets;
pub mod policy;
pub mod store;

pub use policy::CacheSettings;
