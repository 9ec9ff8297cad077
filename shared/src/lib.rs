//! What the EPIX hub and every spoke must agree on: the AMQP envelope and topology names,
//! receipts, the stable error codes, and the permit document with its validation.

pub mod audit;
pub mod envelope;
pub mod party;
pub mod permit;
pub mod problem;
pub mod receipt;
pub mod signature;
pub mod trust;

pub use party::PartyCode;
pub use problem::{ErrorCode, Problem};
pub use receipt::{Receipt, ReceiptStatus};
