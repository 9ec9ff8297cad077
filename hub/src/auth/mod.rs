//! Authentication and authorization of HTTP API callers.
//!
//! Callers log in at `POST /v1/auth/token` with a password or client credentials and get a
//! short-lived ES256 JWT. Every protected handler takes a [`Principal`], whose extractor
//! checks the token and then the user's current status in the database, so a removed or
//! locked user is refused at once. What each role may do is decided in [`policy`].

pub mod clock;
pub mod keys;
pub mod limiter;
pub mod password;
pub mod policy;
pub mod principal;
pub mod users;

pub use clock::{Clock, ManualClock, SystemClock};
pub use keys::{Claims, TokenKeys};
pub use policy::Role;
pub use principal::Principal;
