//! JOSE: key sets and JWT verification with the algorithm chosen by code
//! (`keys`), the claim checks OIDC and LTI share (`claims`), and the
//! worker's own HS256 tokens with one key per purpose (`hs256`).

pub mod claims;
pub mod hs256;
pub mod keys;
