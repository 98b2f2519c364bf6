//! Held statements: the approval queue (second-person confirmation) and one-time
//! self-confirmation tokens.

mod queue;
mod tokens;

pub use queue::{HoldError, HoldInfo, HoldQueue, Resolution};
pub use tokens::{extract_confirm_token, TokenError, Tokens};
