//! Pure: the trash for `DROP DATABASE`. The database is renamed to
//! `pgwarden_trash_db_<oid>` and closed to connections (`ALLOW_CONNECTIONS false`),
//! so its name is free at once and nobody can use it; restore renames it back and
//! opens it again; purge is a real `DROP DATABASE` of the trash name.
//!
//! `DROP DATABASE` cannot run inside a transaction block, so it cannot be tried as
//! written in a savepoint like the other kinds. `ALTER DATABASE … RENAME` stands in
//! for that check: it is transactional and its preconditions (the database exists,
//! the role owns it, has `CREATEDB`, is not connected to it, no other session or
//! prepared transaction uses it) include every one of the drop's except two the
//! facts query reads: a template database and replication (slots, subscriptions).
//! Where the rename fails with the error the drop would give (a missing database,
//! not the owner, other sessions), the client gets the server's error; where the
//! two differ ([`judge_rename_error`]) the client gets the drop's error only when
//! pgwarden can say it exactly, and the rule's fallback otherwise: never the drop.
//!
//! The record: a database cannot hold its own registry row (nobody can connect to
//! it once it is closed), and a registry table lives in one database only, so the
//! item is recorded in the shared catalog instead, as the trashed database's
//! comment (a JSON document, [`Record`]; the original comment is kept in it). Any
//! connection to any database of the cluster lists it, and the item's id is the
//! database's OID, unique in the cluster.

use serde::{Deserialize, Serialize};

use super::plan::Context;
use super::registry::Item;
use super::{ident, literal};

/// Every trashed database is renamed to this prefix and its OID.
pub const TRASH_DB_PREFIX: &str = "pgwarden_trash_db_";

/// The record's format (the comment's `pgwarden_trash` member).
pub const FORMAT: i32 = 1;

/// `statement_timeout` for the rename: like the drop, it waits up to 5 s for
/// other sessions to leave before it refuses, so pgwarden's usual 5 s would cut
/// that wait short.
pub const RENAME_TIMEOUT_MS: u64 = 15_000;

/// The drop's error for a template database (`dropdb`), which the rename does
/// not check.
pub const TEMPLATE_CODE: &str = "42809";
pub const TEMPLATE_MESSAGE: &str = "cannot drop a template database";

/// The name database `oid` is kept under.
pub fn trash_name(oid: i64) -> String {
    format!("{TRASH_DB_PREFIX}{oid}")
}

const TIME_FORMAT: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

/// What the catalog says, around one database name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DbFacts {
    /// Whether the name is the session's own database.
    pub current: bool,
    /// Whether the server's messages are in English (`lc_messages` C, POSIX or
    /// en…): only then can pgwarden give a message of the drop's that the rename
    /// does not produce, word for word.
    pub english: bool,
    /// The transaction's time, and when an item trashed now expires (UTC).
    pub now: String,
    pub expires: Option<String>,
    /// The database, `None` when no database has the name.
    pub db: Option<DbRow>,
}

/// One `pg_database` row and what uses it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DbRow {
    pub oid: i64,
    /// Whether the session's role has its owner's privileges.
    pub owner: bool,
    pub template: bool,
    pub allow_connections: bool,
    pub comment: Option<String>,
    /// `pg_database_size`, when the role may read it.
    pub size: Option<i64>,
    pub slots: i64,
    pub active_slots: i64,
    pub subscriptions: i64,
}

/// The facts query for database `name` (one row, one JSON document).
/// `retention_s` gives `expires`.
pub fn facts_sql(name: &str, retention_s: Option<u64>) -> String {
    let expires = match retention_s {
        Some(s) => format!(
            "pg_catalog.to_char((pg_catalog.now() + pg_catalog.make_interval(secs => {s})) \
             AT TIME ZONE 'UTC', {TIME_FORMAT})"
        ),
        None => "NULL".to_string(),
    };
    format!(
        "SELECT pg_catalog.json_build_object(
  'current', pg_catalog.current_database() = {name},
  'english', (SELECT s IN ('C', 'POSIX') OR s LIKE 'C.%' OR s LIKE 'en%'
              FROM pg_catalog.current_setting('lc_messages') s),
  'now', pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', {TIME_FORMAT}),
  'expires', {expires},
  'db', (SELECT pg_catalog.json_build_object(
      'oid', d.oid::int8,
      'owner', pg_catalog.pg_has_role(d.datdba, 'USAGE'),
      'template', d.datistemplate,
      'allow_connections', d.datallowconn,
      'comment', pg_catalog.shobj_description(d.oid, 'pg_database'),
      'size', CASE WHEN pg_catalog.has_database_privilege(d.oid, 'CONNECT')
                   THEN pg_catalog.pg_database_size(d.oid) END,
      'slots', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots r
                WHERE r.datoid = d.oid),
      'active_slots', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots r
                       WHERE r.datoid = d.oid AND r.active),
      'subscriptions', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_subscription s
                        WHERE s.subdbid = d.oid))
    FROM pg_catalog.pg_database d WHERE d.datname = {name})
)::text",
        name = literal(name),
    )
}

/// Reads the facts query's rows.
pub fn read_facts(rows: &[Vec<Option<&str>>]) -> Result<DbFacts, String> {
    let [row] = rows else {
        return Err("database facts: not one row".into());
    };
    let text = row
        .first()
        .copied()
        .flatten()
        .ok_or("database facts: empty row")?;
    serde_json::from_str(text).map_err(|e| format!("database facts: unexpected document: {e}"))
}

/// What the client gets for a `DROP DATABASE` a trash rule matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Go on (rename, then trash).
    Continue,
    /// The statement as written: the server refuses it whatever happens meanwhile.
    AsWritten(&'static str),
    /// The rename's error is the drop's (same SQLSTATE, message and detail).
    ServerError,
    /// The drop's error for a template database, which pgwarden gives itself.
    TemplateError,
    /// `IF EXISTS` of a missing database: the drop's NOTICE and tag.
    Skipped,
    /// The rule's fallback, with the reason.
    Fallback(String),
    /// Rename it into the trash and record it.
    Trash,
}

/// The request's parts that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub name: &'a str,
    pub missing_ok: bool,
    pub force: bool,
}

fn in_english(f: &DbFacts, step: Step, what: &str) -> Step {
    if f.english {
        step
    } else {
        Step::Fallback(format!(
            "{what}, and the server's messages are not in English (pgwarden gives that error \
             only word for word)"
        ))
    }
}

/// Before the rename, from the facts read by the client's name.
pub fn judge_before(r: Request<'_>, f: &DbFacts) -> Step {
    if f.current {
        // The session's own database cannot be renamed or dropped by anyone while
        // it is connected: the server refuses the drop whatever it checks first.
        return Step::AsWritten("the session's own database: the server refuses the DROP");
    }
    if r.name.starts_with(TRASH_DB_PREFIX) {
        return Step::Fallback("it is pgwarden's trash (use `pgwarden trash purge`)".into());
    }
    Step::Continue
}

/// The rename failed with `code`; `f` are the facts read just before it.
pub fn judge_rename_error(r: Request<'_>, f: &DbFacts, code: &str) -> Step {
    match (code, f.db.as_ref()) {
        // A missing database: the drop's own message ("database … does not exist").
        ("3D000", _) if r.missing_ok => {
            in_english(f, Step::Skipped, "IF EXISTS of a missing database")
        }
        ("3D000", _) => Step::ServerError,
        // Not the owner: the drop's check and message ("must be owner of database …").
        ("42501", Some(d)) if !d.owner => Step::ServerError,
        // The owner without CREATEDB: the drop goes past this check.
        ("42501", Some(d)) if d.template => {
            in_english(f, Step::TemplateError, "a template database")
        }
        ("42501", Some(_)) => Step::Fallback(
            "the role owns the database but may not rename it (no CREATEDB), which the trash needs"
                .into(),
        ),
        // Other sessions or prepared transactions: the drop checks a template and
        // active replication slots first, and WITH (FORCE) ends the sessions.
        ("55006", Some(d)) if d.template => {
            in_english(f, Step::TemplateError, "a template database")
        }
        ("55006", Some(d)) if d.active_slots > 0 => {
            Step::Fallback("an active replication slot uses the database".into())
        }
        ("55006", Some(_)) if r.force => Step::Fallback(
            "WITH (FORCE) while other sessions use the database (pgwarden does not end them)"
                .into(),
        ),
        ("55006", Some(_)) => Step::ServerError,
        (code, _) => Step::Fallback(format!(
            "the database could not be renamed into the trash (SQLSTATE {code})"
        )),
    }
}

/// The rename succeeded: `f` are the facts read by the trash name, under the
/// rename's lock.
pub fn judge_renamed(f: &DbFacts) -> Step {
    let Some(d) = f.db.as_ref() else {
        return Step::Fallback("the renamed database could not be read back".into());
    };
    if d.template {
        return in_english(f, Step::TemplateError, "a template database");
    }
    if d.slots > 0 {
        return Step::Fallback(format!(
            "{} replication slot(s) use the database (the drop removes or refuses them)",
            d.slots
        ));
    }
    if d.subscriptions > 0 {
        return Step::Fallback("logical replication subscriptions are defined in it".into());
    }
    Step::Trash
}

/// The record kept as the trashed database's comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The format ([`FORMAT`]); the member's name marks the comment as pgwarden's.
    pub pgwarden_trash: i32,
    pub original_name: String,
    pub trashed_at: String,
    pub trashed_by: String,
    pub statement: String,
    pub expires_at: Option<String>,
    pub size_bytes: i64,
    /// The database's own comment, put back on restore.
    pub comment: Option<String>,
    /// Its `datallowconn` before, put back on restore.
    pub allow_connections: bool,
}

/// The record for the database `f` describes (read by its trash name), dropped
/// as `original`.
pub fn record(f: &DbFacts, original: &str, cx: &Context<'_>) -> Result<Record, String> {
    let d = f.db.as_ref().ok_or("no database")?;
    Ok(Record {
        pgwarden_trash: FORMAT,
        original_name: original.to_string(),
        trashed_at: f.now.clone(),
        trashed_by: cx.by.to_string(),
        statement: cx.statement.to_string(),
        expires_at: f.expires.clone(),
        size_bytes: d.size.unwrap_or(0),
        comment: d.comment.clone(),
        allow_connections: d.allow_connections,
    })
}

/// After the rename (same transaction): closed to connections, and recorded.
pub fn trash_sql(trash: &str, rec: &Record) -> Result<String, String> {
    let doc = serde_json::to_string(rec).map_err(|e| e.to_string())?;
    Ok(format!(
        "ALTER DATABASE {db} ALLOW_CONNECTIONS false; COMMENT ON DATABASE {db} IS {}",
        literal(&doc),
        db = ident(trash)
    ))
}

/// The rename into the trash, with its own timeout (set for the rest of
/// pgwarden's transaction, which ends right after).
pub fn rename_sql(name: &str, trash: &str) -> String {
    format!(
        "SET LOCAL statement_timeout = {RENAME_TIMEOUT_MS}; ALTER DATABASE {} RENAME TO {}",
        ident(name),
        ident(trash)
    )
}

/// Every trashed database: rows of oid, name, comment and the time now.
pub fn list_sql() -> String {
    format!(
        "SELECT d.oid::text, d.datname::text, pg_catalog.shobj_description(d.oid, 'pg_database'), \
         pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', {TIME_FORMAT}) \
         FROM pg_catalog.pg_database d \
         WHERE pg_catalog.starts_with(d.datname::text, {}) ORDER BY d.oid",
        literal(TRASH_DB_PREFIX)
    )
}

/// A row of [`list_sql`] as an item and its record; `None` for a database that
/// only looks like one of the trash (no record of pgwarden's, another name).
pub fn read_item(row: &[Option<&str>]) -> Option<(Item, Record)> {
    let oid: i64 = row.first().copied().flatten()?.parse().ok()?;
    let name = row.get(1).copied().flatten()?;
    let comment = row.get(2).copied().flatten()?;
    let now = row.get(3).copied().flatten()?;
    let rec: Record = serde_json::from_str(comment).ok()?;
    if rec.pgwarden_trash != FORMAT || name != trash_name(oid) {
        return None;
    }
    // Both times are UTC in one fixed-width format: they compare as text.
    let expired = rec.expires_at.as_deref().is_some_and(|e| e < now);
    let item = Item {
        id: oid,
        kind: "database".into(),
        original_schema: None,
        original_name: rec.original_name.clone(),
        trash_schema: name.to_string(),
        trashed_at: rec.trashed_at.clone(),
        trashed_by: rec.trashed_by.clone(),
        statement: rec.statement.clone(),
        moved: Vec::new(),
        removed: Vec::new(),
        size_bytes: rec.size_bytes,
        expires_at: rec.expires_at.clone(),
        expired,
    };
    Some((item, rec))
}

/// A query whose row names the database a restore to `name` needs, when it exists.
pub fn taken_sql(name: &str) -> String {
    format!(
        "SELECT {} FROM pg_catalog.pg_database WHERE datname = {}",
        literal(&format!("database {name}")),
        literal(name)
    )
}

/// The statements that put the item back as `name` (in one transaction).
pub fn restore_sql(item: &Item, rec: &Record, name: &str) -> Result<Vec<String>, String> {
    if name.is_empty() || name.len() > 63 {
        return Err("--as: a database name of 1 to 63 bytes".into());
    }
    let comment = rec.comment.as_deref().map_or("NULL".to_string(), literal);
    Ok(vec![
        format!(
            "ALTER DATABASE {} RENAME TO {}",
            ident(&item.trash_schema),
            ident(name)
        ),
        format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS {}",
            ident(name),
            rec.allow_connections
        ),
        format!("COMMENT ON DATABASE {} IS {comment}", ident(name)),
    ])
}

/// The real drop (outside a transaction).
pub fn purge_sql(item: &Item) -> String {
    format!("DROP DATABASE {}", ident(&item.trash_schema))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(db: Option<DbRow>) -> DbFacts {
        DbFacts {
            current: false,
            english: true,
            now: "2026-01-02T03:04:05Z".into(),
            expires: Some("2026-01-09T03:04:05Z".into()),
            db,
        }
    }

    fn row() -> DbRow {
        DbRow {
            oid: 16390,
            owner: true,
            template: false,
            allow_connections: true,
            comment: Some("the app's data".into()),
            size: Some(7_000_000),
            slots: 0,
            active_slots: 0,
            subscriptions: 0,
        }
    }

    const R: Request<'static> = Request {
        name: "app",
        missing_ok: false,
        force: false,
    };

    #[test]
    fn the_rename_error_is_the_drops_where_they_agree() {
        let f = facts(Some(row()));
        assert_eq!(
            judge_rename_error(R, &facts(None), "3D000"),
            Step::ServerError
        );
        let if_exists = Request {
            missing_ok: true,
            ..R
        };
        assert_eq!(
            judge_rename_error(if_exists, &facts(None), "3D000"),
            Step::Skipped
        );
        let german = DbFacts {
            english: false,
            ..facts(None)
        };
        assert!(matches!(
            judge_rename_error(if_exists, &german, "3D000"),
            Step::Fallback(_)
        ));
        let not_owner = facts(Some(DbRow {
            owner: false,
            template: true,
            ..row()
        }));
        assert_eq!(
            judge_rename_error(R, &not_owner, "42501"),
            Step::ServerError
        );
        // The owner without CREATEDB: the drop would succeed, so never forwarded.
        assert!(matches!(
            judge_rename_error(R, &f, "42501"),
            Step::Fallback(_)
        ));
        let template = facts(Some(DbRow {
            template: true,
            ..row()
        }));
        assert_eq!(
            judge_rename_error(R, &template, "42501"),
            Step::TemplateError
        );
        assert_eq!(
            judge_rename_error(R, &template, "55006"),
            Step::TemplateError
        );
        assert_eq!(judge_rename_error(R, &f, "55006"), Step::ServerError);
        let force = Request { force: true, ..R };
        assert!(matches!(
            judge_rename_error(force, &f, "55006"),
            Step::Fallback(_)
        ));
        let slot = facts(Some(DbRow {
            active_slots: 1,
            slots: 1,
            ..row()
        }));
        assert!(matches!(
            judge_rename_error(R, &slot, "55006"),
            Step::Fallback(_)
        ));
        for code in ["57014", "55P03", "42P04", "0A000"] {
            assert!(
                matches!(judge_rename_error(R, &f, code), Step::Fallback(_)),
                "{code}"
            );
        }
    }

    #[test]
    fn before_and_after_the_rename() {
        let current = DbFacts {
            current: true,
            ..facts(Some(row()))
        };
        assert!(matches!(judge_before(R, &current), Step::AsWritten(_)));
        let own = Request {
            name: "pgwarden_trash_db_5",
            ..R
        };
        assert!(matches!(judge_before(own, &facts(None)), Step::Fallback(_)));
        assert_eq!(judge_before(R, &facts(None)), Step::Continue);
        assert_eq!(judge_renamed(&facts(Some(row()))), Step::Trash);
        for d in [
            DbRow { slots: 1, ..row() },
            DbRow {
                subscriptions: 1,
                ..row()
            },
        ] {
            assert!(matches!(judge_renamed(&facts(Some(d))), Step::Fallback(_)));
        }
        let template = facts(Some(DbRow {
            template: true,
            ..row()
        }));
        assert_eq!(judge_renamed(&template), Step::TemplateError);
        assert!(matches!(judge_renamed(&facts(None)), Step::Fallback(_)));
    }

    #[test]
    fn recorded_listed_restored_purged() {
        let cx = Context {
            by: "alice",
            statement: "DROP DATABASE app",
            retention: None,
            truncate_max_bytes: 0,
        };
        let rec = record(&facts(Some(row())), "app", &cx).expect("record");
        let sql = trash_sql("pgwarden_trash_db_16390", &rec).expect("sql");
        assert!(
            sql.starts_with(
                "ALTER DATABASE \"pgwarden_trash_db_16390\" ALLOW_CONNECTIONS false; \
                 COMMENT ON DATABASE \"pgwarden_trash_db_16390\" IS E'{\"pgwarden_trash\":1,"
            ),
            "{sql}"
        );
        let doc = serde_json::to_string(&rec).expect("json");
        let now = "2026-01-05T00:00:00Z";
        let r = [
            Some("16390"),
            Some("pgwarden_trash_db_16390"),
            Some(doc.as_str()),
            Some(now),
        ];
        let (item, back) = read_item(&r).expect("an item");
        assert_eq!(back, rec);
        assert_eq!((item.id, item.kind.as_str()), (16390, "database"));
        assert_eq!(item.original(), "app");
        assert!(!item.expired);
        let later = [r[0], r[1], r[2], Some("2026-02-01T00:00:00Z")];
        assert!(read_item(&later).expect("an item").0.expired);
        // Another name, or a comment that is not pgwarden's: not an item.
        assert!(read_item(&[r[0], Some("pgwarden_trash_db_1"), r[2], r[3]]).is_none());
        assert!(read_item(&[r[0], r[1], Some("notes"), r[3]]).is_none());
        assert_eq!(
            restore_sql(&item, &rec, "app").expect("plan"),
            vec![
                "ALTER DATABASE \"pgwarden_trash_db_16390\" RENAME TO \"app\"",
                "ALTER DATABASE \"app\" ALLOW_CONNECTIONS true",
                "COMMENT ON DATABASE \"app\" IS E'the app''s data'",
            ]
        );
        assert!(restore_sql(&item, &rec, "").is_err());
        assert_eq!(
            purge_sql(&item),
            "DROP DATABASE \"pgwarden_trash_db_16390\""
        );
        assert!(taken_sql("app").contains("datname = E'app'"));
        assert!(facts_sql("app", Some(60)).contains("secs => 60"));
        assert!(
            rename_sql("app", "pgwarden_trash_db_1").ends_with("RENAME TO \"pgwarden_trash_db_1\"")
        );
    }
}
