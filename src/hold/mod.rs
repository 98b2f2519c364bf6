//! Held statements: the approval queue (second-person confirmation) and one-time
//! self-confirmation tokens.

mod events;
mod queue;
mod tokens;

pub use events::{HoldEvent, HoldEventKind, RECENT_CAPACITY};
pub use queue::{HoldError, HoldInfo, HoldQueue, Resolution};
pub use tokens::{extract_confirm_token, TokenError, Tokens};
