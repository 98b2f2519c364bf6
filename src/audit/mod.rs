//! The audit log: typed events, a SHA-256 hash chain, a JSON-lines writer with group
//! commit and durability modes, scope and redaction rules, and verification.
//!
//! File format and hash definition: docs/audit.md.

pub mod chain;
pub mod event;
pub mod redact;
pub mod scope;
pub mod sink;
pub mod verify;
pub mod writer;

#[cfg(test)]
mod tests;

pub use chain::{ChainState, GENESIS};
pub use event::{
    class_names, Approve, AuditGap, CliActor, Deny, Disposition, Event, Expire, Held, OutOfSync,
    OutcomeEvent, PlanApprove, PlanRevoke, PolicyReload, PurgeEvent, Record, RestoreEvent,
    SessionEnd, SessionStart, StatementEvent, TrashEvent, Withdraw,
};
pub use redact::{redact, sql_for_log};
pub use scope::{is_guarded, is_write, should_record};
pub use sink::{FileSink, Sink, StdoutSink};
pub use verify::{verify, verify_files, verify_reader, VerifyError, VerifyReport};
pub use writer::{AuditError, AuditLog, MAX_QUEUED};
