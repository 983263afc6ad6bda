//! Sessions: the settings (`settings`), the signed cookie (`cookie`), the
//! per-flow state cookie (`flow_cookie`), extras too big for the cookie
//! (`store`), and what a new session sets (`start`, pure).

pub mod cookie;
pub mod flow_cookie;
pub mod revocation;
pub mod seal;
pub mod settings;
pub mod start;
pub mod store;

pub use cookie::{Loaded, PartialSession, Session, SessionError};
pub use settings::SessionSettings;
