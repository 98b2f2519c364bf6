//! Held statements: the approval queue (second-person confirmation), the stores
//! holds are kept in, plans approved ahead, hold events for watchers, and one-time
//! self-confirmation tokens.

mod events;
mod memory;
pub mod plans;
mod queue;
pub mod store;
mod tokens;

pub use events::{HoldEvent, HoldEventKind, RECENT_CAPACITY};
pub use memory::MemoryStore;
pub use plans::{ApprovedPlan, Plan, PlanRequest};
pub use queue::{HoldError, HoldInfo, HoldQueue, Resolution};
pub use store::{HoldRecord, HoldStatus, HoldStore, PlanClaim, Ruling, StoreFuture};
pub use tokens::{extract_confirm_token, new_token, TokenError, TokenUse, Tokens};
