//! Pure: the impact probe — the statements pgwarden sends around a data-changing
//! statement to measure what it changed, and the reading of their replies.
//!
//! The probe runs the client's statement inside a savepoint (inside a client
//! transaction) or inside a transaction pgwarden opens (outside one), reads the
//! per-table deltas of the counts behind `pg_stat_xact_user_tables` (which count
//! every row the statement inserted, updated or deleted in any table of this
//! database: ON DELETE CASCADE / SET NULL actions and trigger writes included),
//! then either keeps the statement's effect or rolls it back. This module builds the SQL texts
//! ([`ProbePlan`]) and turns the replies into a [`Measured`] value; it does no I/O.
//! The session core sends the texts as its own messages and never forwards their
//! replies.
//!
//! What the probe cannot see (the result is then incomplete, so the policy must not
//! rely on it for these): changes outside this database's tables — sequences
//! (`nextval` is not rolled back either), other databases through dblink or
//! postgres_fdw (a foreign table's rows are not counted: the command tag's row count
//! is used as a lower bound), large objects (`pg_largeobject` is a catalog), catalog
//! changes made by triggers, `NOTIFY`, files written by server-side functions, and
//! deferred constraint triggers, which fire at COMMIT, after the measurement.

mod measure;
mod plan;

pub use measure::{Impact, Measured, Snapshot, TableImpact, Unknown};
pub use plan::{ProbePlan, ProbeSettings, SavedSettings, PROBE_SAVEPOINT_PREFIX};
