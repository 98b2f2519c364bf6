//! The trash: instead of destroying a dropped table, pgwarden moves it (with its
//! indexes, constraints, owned sequences, triggers, policies and grants) into a
//! schema of its own on the target and records it in a registry table there, so one
//! command brings it back.
//!
//! Pure parts, no I/O: [`statement`] reads the DROP statement, [`facts`] is the
//! catalog query about the dropped table and the reading of its one row, [`plan`]
//! turns facts into the SQL that keeps the data (or says why that would not be
//! faithful), [`registry`] owns the registry table and the restore and purge plans,
//! [`database`] is the trash for `DROP DATABASE` (a rename, recorded in the shared
//! catalog rather than a registry).
//! [`run`] carries the plans out on a tokio-postgres connection (the CLI, the
//! proxy's retention purge in [`retention`] and the tests use it; trashed databases
//! through [`database_run`]); the proxy's
//! sessions run the trash themselves (`session/relay/trash.rs`).
//!
//! Layout on the target: the registry is `pgwarden_trash.registry`; each trashed
//! item lives alone in `pgwarden_trash_<id>`, so objects keep their own names (two
//! trashed tables' `t_pkey` indexes never collide) and purging is one
//! `DROP SCHEMA … CASCADE`.

pub mod connect;
pub mod database;
pub mod database_run;
pub mod dispatch;
pub mod facts;
pub mod plan;
pub mod registry;
pub mod retention;
pub mod run;
pub mod schema;
pub mod statement;
pub mod truncate;
pub mod who;

/// The schema holding the registry table.
pub const REGISTRY_SCHEMA: &str = "pgwarden_trash";
/// Every trashed item's schema is this prefix and the item's id.
pub const ITEM_SCHEMA_PREFIX: &str = "pgwarden_trash_";
/// The savepoint pgwarden runs a DROP in, as written, to learn whether the server
/// accepts it (always rolled back).
pub const AS_WRITTEN_SAVEPOINT: &str = "pgwarden_trash_asis";

/// Opens the savepoint the DROP is tried in as written.
pub fn as_written_open() -> String {
    format!("SAVEPOINT {AS_WRITTEN_SAVEPOINT}")
}

/// Undoes the DROP tried as written (after the server accepted it).
pub fn as_written_undo() -> String {
    format!(
        "ROLLBACK TO SAVEPOINT {AS_WRITTEN_SAVEPOINT}; RELEASE SAVEPOINT {AS_WRITTEN_SAVEPOINT}"
    )
}

/// The schema of trashed item `id`.
pub fn item_schema(id: i64) -> String {
    format!("{ITEM_SCHEMA_PREFIX}{id}")
}

pub(crate) use crate::catalog::quote::{ident, literal, qualified};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_schemas_are_numbered() {
        assert_eq!(item_schema(7), "pgwarden_trash_7");
    }
}
