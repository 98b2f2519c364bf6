//! Pure: what pgwarden knows about a target's tables from its catalog — unique keys
//! with NOT NULL columns, row estimates, and what makes a change reach further than
//! its own table (triggers, rules, cascading foreign keys, child tables) — and the
//! decision "this statement changes at most one row" that lets the impact guard skip
//! the probe.
//!
//! The catalog is read with the queries in [`load`] (as text rows, the way pgwarden
//! reads any reply it originates) into a [`Catalog`] stamped with the time it was
//! read. A catalog older than its `max_age`, or marked stale after DDL, answers
//! "unknown" for everything: a stale catalog never turns into an allow, only into a
//! probe. [`blast`] holds the blast-radius queries for DROP and TRUNCATE, and
//! [`blast_statement`] reads which of them a statement asks.

pub mod blast;
pub mod blast_statement;
mod keyed;
pub mod load;
pub(crate) mod quote;
pub mod refine;

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use keyed::{key_shape, KeyShape};

/// One table (or other relation) of the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `pg_class.relkind`: `r` table, `p` partitioned table, `v` view, `m` matview,
    /// `f` foreign table.
    pub kind: char,
    /// Rows, as estimated by the statistics.
    pub estimate: u64,
    /// Unique, valid, immediate, non-partial indexes on plain columns that are all
    /// NOT NULL: each is a set of columns that identifies at most one row.
    pub keys: Vec<Vec<String>>,
    /// User triggers (any event).
    pub has_triggers: bool,
    /// Rewrite rules other than a view's `_RETURN`.
    pub has_rules: bool,
    /// Child tables (inheritance): a DELETE/UPDATE without ONLY reaches them too.
    pub has_children: bool,
    /// Foreign keys referencing it with ON DELETE CASCADE / SET NULL / SET DEFAULT.
    pub cascades_on_delete: bool,
    /// … with ON UPDATE CASCADE / SET NULL / SET DEFAULT.
    pub cascades_on_update: bool,
}

/// Why the catalog cannot say that a statement is bounded by a key. Each means
/// "probe it".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotBounded {
    /// Older than `max_age`, or marked stale after DDL.
    Stale,
    /// Not a plain `DELETE/UPDATE … WHERE key = value` shape.
    Shape,
    /// No table of that name in the catalog.
    NoSuchTable,
    /// The catalog was read for other table names only.
    NotRead,
    /// Not a plain table, or has children, triggers, rules or cascading keys.
    ReachesFurther(String),
    /// The pinned columns cover no key (of one of the tables the name may mean).
    NoKey(String),
}

/// Whether a statement changes at most one row of one table, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBound {
    /// At most one row of `schema.table`, through the key `columns`.
    AtMostOneRow {
        table: String,
        key: Vec<String>,
    },
    Unknown(NotBounded),
}

/// A snapshot of the target's catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    tables: Vec<TableInfo>,
    /// relname (as stored) → indexes into `tables`, in load order.
    by_name: HashMap<String, Vec<usize>>,
    /// The table names it was read for (`None`: every table of the database).
    names: Option<Vec<String>>,
    loaded_at: Instant,
    stale: bool,
}

impl Catalog {
    /// A catalog of every table, read at `loaded_at`.
    pub fn new(tables: Vec<TableInfo>, loaded_at: Instant) -> Catalog {
        Catalog::build(tables, None, loaded_at)
    }

    /// A catalog of the tables named one of `names` (in any schema), read at
    /// `loaded_at` (with [`load::tables_sql`] and [`load::keys_sql`] for `names`).
    pub fn named(names: Vec<String>, tables: Vec<TableInfo>, loaded_at: Instant) -> Catalog {
        Catalog::build(tables, Some(names), loaded_at)
    }

    fn build(tables: Vec<TableInfo>, names: Option<Vec<String>>, loaded_at: Instant) -> Catalog {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, t) in tables.iter().enumerate() {
            by_name.entry(t.name.clone()).or_default().push(i);
        }
        Catalog {
            tables,
            by_name,
            names,
            loaded_at,
            stale: false,
        }
    }

    /// Whether it was read for tables named `name`.
    pub fn covers(&self, name: &str) -> bool {
        self.names
            .as_ref()
            .is_none_or(|n| n.iter().any(|x| x == name))
    }

    /// The names it was read for, when read for some names only.
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }

    /// `schema.name`, exactly as in the catalog.
    pub fn table(&self, schema: &str, name: &str) -> Option<&TableInfo> {
        self.by_name
            .get(name)?
            .iter()
            .map(|&i| &self.tables[i])
            .find(|t| t.schema == schema)
    }

    /// After DDL (seen in any session, or reported by the server): answer
    /// "unknown" until the next load.
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Fresh: not marked stale and read less than `max_age` before `now`.
    pub fn is_fresh(&self, now: Instant, max_age: Duration) -> bool {
        !self.stale && now.saturating_duration_since(self.loaded_at) <= max_age
    }

    /// Does `shape` change at most one row, and nothing beyond it? An unqualified
    /// table name may mean a table of that name in any schema (pgwarden does not
    /// know the session's search_path), so every table of that name must qualify.
    pub fn key_bound(&self, shape: &KeyShape, now: Instant, max_age: Duration) -> KeyBound {
        if !self.is_fresh(now, max_age) {
            return KeyBound::Unknown(NotBounded::Stale);
        }
        if !self.covers(&shape.table) {
            return KeyBound::Unknown(NotBounded::NotRead);
        }
        let candidates: Vec<&TableInfo> = match &shape.schema {
            Some(s) => self.table(s, &shape.table).into_iter().collect(),
            None => self
                .by_name
                .get(&shape.table)
                .map(|v| v.iter().map(|&i| &self.tables[i]).collect())
                .unwrap_or_default(),
        };
        if candidates.is_empty() {
            return KeyBound::Unknown(NotBounded::NoSuchTable);
        }
        let mut found = None;
        for t in candidates {
            let q = format!("{}.{}", t.schema, t.name);
            let cascades = if shape.is_delete {
                t.cascades_on_delete
            } else {
                t.cascades_on_update
            };
            if t.kind != 'r' || t.has_children || t.has_triggers || t.has_rules || cascades {
                return KeyBound::Unknown(NotBounded::ReachesFurther(q));
            }
            let Some(key) = t
                .keys
                .iter()
                .find(|k| k.iter().all(|c| shape.pinned.contains(c)))
            else {
                return KeyBound::Unknown(NotBounded::NoKey(q));
            };
            found.get_or_insert((q, key.clone()));
        }
        match found {
            Some((table, key)) => KeyBound::AtMostOneRow { table, key },
            None => KeyBound::Unknown(NotBounded::NoSuchTable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(schema: &str, name: &str, keys: &[&[&str]]) -> TableInfo {
        TableInfo {
            oid: 1,
            schema: schema.into(),
            name: name.into(),
            kind: 'r',
            estimate: 100,
            keys: keys
                .iter()
                .map(|k| k.iter().map(|c| c.to_string()).collect())
                .collect(),
            has_triggers: false,
            has_rules: false,
            has_children: false,
            cascades_on_delete: false,
            cascades_on_update: false,
        }
    }

    const AGE: Duration = Duration::from_secs(60);

    fn bound(c: &Catalog, sql: &str, now: Instant) -> KeyBound {
        match key_shape(sql) {
            Some(s) => c.key_bound(&s, now, AGE),
            None => KeyBound::Unknown(NotBounded::Shape),
        }
    }

    #[test]
    fn decisions() {
        let t0 = Instant::now();
        let mut cascading = table("public", "customers", &[&["id"]]);
        cascading.cascades_on_delete = true;
        let mut triggered = table("public", "audited", &[&["id"]]);
        triggered.has_triggers = true;
        let mut view = table("public", "v", &[]);
        view.kind = 'v';
        let c = Catalog::new(
            vec![
                table("public", "t", &[&["id"], &["a", "b"]]),
                table("public", "nokey", &[]),
                table("other", "t", &[&["id"]]),
                table("other", "dup", &[&["code"]]),
                table("public", "dup", &[&["id"]]),
                cascading,
                triggered,
                view,
            ],
            t0,
        );
        let one = |t: &str, k: &[&str]| KeyBound::AtMostOneRow {
            table: t.into(),
            key: k.iter().map(|s| s.to_string()).collect(),
        };
        let cases: Vec<(&str, KeyBound)> = vec![
            (
                "DELETE FROM public.t WHERE id = $1",
                one("public.t", &["id"]),
            ),
            ("DELETE FROM t WHERE id = 5", one("public.t", &["id"])),
            (
                "UPDATE t SET v = v + 1 WHERE a = 1 AND b = 'x'",
                KeyBound::Unknown(NotBounded::NoKey("other.t".into())),
            ),
            (
                "DELETE FROM public.t WHERE a = 1 AND b = 2",
                one("public.t", &["a", "b"]),
            ),
            (
                "DELETE FROM public.t WHERE a = 1",
                KeyBound::Unknown(NotBounded::NoKey("public.t".into())),
            ),
            (
                "DELETE FROM nokey WHERE id = 1",
                KeyBound::Unknown(NotBounded::NoKey("public.nokey".into())),
            ),
            (
                "DELETE FROM missing WHERE id = 1",
                KeyBound::Unknown(NotBounded::NoSuchTable),
            ),
            (
                "DELETE FROM dup WHERE id = 1",
                KeyBound::Unknown(NotBounded::NoKey("other.dup".into())),
            ),
            (
                "DELETE FROM public.dup WHERE id = 1",
                one("public.dup", &["id"]),
            ),
            (
                "DELETE FROM customers WHERE id = 1",
                KeyBound::Unknown(NotBounded::ReachesFurther("public.customers".into())),
            ),
            (
                "UPDATE customers SET name = 'x' WHERE id = 1",
                one("public.customers", &["id"]),
            ),
            (
                "UPDATE audited SET v = 1 WHERE id = 1",
                KeyBound::Unknown(NotBounded::ReachesFurther("public.audited".into())),
            ),
            (
                "DELETE FROM v WHERE id = 1",
                KeyBound::Unknown(NotBounded::ReachesFurther("public.v".into())),
            ),
            (
                "DELETE FROM public.t WHERE id > 0",
                KeyBound::Unknown(NotBounded::Shape),
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(bound(&c, sql, t0), want, "{sql}");
        }
    }

    #[test]
    fn a_catalog_read_for_some_names_knows_nothing_of_others() {
        let t0 = Instant::now();
        let c = Catalog::named(vec!["t".into()], vec![table("public", "t", &[&["id"]])], t0);
        assert!(c.covers("t") && !c.covers("u"));
        assert!(matches!(
            bound(&c, "DELETE FROM t WHERE id = 1", t0),
            KeyBound::AtMostOneRow { .. }
        ));
        assert_eq!(
            bound(&c, "DELETE FROM u WHERE id = 1", t0),
            KeyBound::Unknown(NotBounded::NotRead)
        );
        // Read for a name with no table: no table of that name.
        let none = Catalog::named(vec!["u".into()], Vec::new(), t0);
        assert_eq!(
            bound(&none, "DELETE FROM u WHERE id = 1", t0),
            KeyBound::Unknown(NotBounded::NoSuchTable)
        );
    }

    #[test]
    fn a_stale_catalog_never_bounds() {
        let t0 = Instant::now();
        let mut c = Catalog::new(vec![table("public", "t", &[&["id"]])], t0);
        let sql = "DELETE FROM public.t WHERE id = 1";
        assert!(matches!(bound(&c, sql, t0), KeyBound::AtMostOneRow { .. }));
        assert_eq!(
            bound(&c, sql, t0 + AGE + Duration::from_secs(1)),
            KeyBound::Unknown(NotBounded::Stale)
        );
        c.mark_stale();
        assert_eq!(bound(&c, sql, t0), KeyBound::Unknown(NotBounded::Stale));
    }
}
