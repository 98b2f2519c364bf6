//! Pure: the blast radius of DROP, TRUNCATE and ALTER TABLE … DROP COLUMN — the
//! catalog query that says what would be lost, and the reading of its rows into a
//! [`BlastRadius`] with a sentence for the hold notice and the audit log.
//!
//! One read-only query per statement ([`BlastQuery::sql`]). It follows
//! `pg_inherits` (partitions and child tables), `pg_constraint` (tables that
//! `TRUNCATE … CASCADE` empties through foreign keys) and `pg_depend` (objects a
//! `DROP … CASCADE` removes, with a view's rewrite rule counted as the view). Row
//! counts are the statistics' estimates; [`count_sql`] gives an exact count up to a
//! cap for a table the caller chooses to count. Names that do not resolve are
//! reported as missing (the statement would fail, or resolve another way in the
//! client's search_path when the query runs on a connection of pgwarden's own).

use std::fmt::Write as _;

use super::quote::{ident, literal, maybe_qualified as qualified};

/// What a statement would destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlastTarget {
    /// `DROP TABLE`/`DROP VIEW`/`DROP INDEX`…: a relation by name.
    Relation {
        schema: Option<String>,
        name: String,
    },
    /// `DROP SCHEMA`.
    Schema { name: String },
    /// `ALTER TABLE … DROP COLUMN`.
    Column {
        schema: Option<String>,
        table: String,
        column: String,
    },
}

/// The statement's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlastOp {
    Drop { cascade: bool },
    Truncate { cascade: bool },
}

/// One statement's blast-radius question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlastQuery {
    pub target: BlastTarget,
    pub op: BlastOp,
}

/// Why a table is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Named by the statement (or in the dropped schema).
    Target,
    /// A partition or child table of one that is lost.
    Partition,
    /// Emptied by TRUNCATE … CASCADE through a foreign key.
    ForeignKey,
    /// Keeps its rows but loses a column's values.
    Column,
}

/// Rows of a lost table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowCount {
    Estimate(u64),
    Exact(u64),
    /// More than the cap of an exact count.
    MoreThan(u64),
}

impl RowCount {
    fn describe(self) -> String {
        match self {
            RowCount::Estimate(n) => format!("~{} row{}", thousands(n), plural(n)),
            RowCount::Exact(n) => format!("{} row{}", thousands(n), plural(n)),
            RowCount::MoreThan(n) => format!("more than {} rows", thousands(n)),
        }
    }
}

/// A table whose rows would be lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostTable {
    pub schema: String,
    pub name: String,
    pub rows: RowCount,
    pub reason: Reason,
    /// `pg_class.relkind`: `r` table, `p` partitioned, `m` materialized view, `f`
    /// foreign table (never counted: that would scan the remote server).
    pub kind: char,
}

impl LostTable {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// What a statement would destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlastRadius {
    pub op: BlastOp,
    pub tables: Vec<LostTable>,
    /// Other objects removed with it, as `pg_identify_object` names them
    /// ("view public.v", "table constraint orders_t_fkey on public.orders").
    pub dependents: Vec<String>,
    /// The target did not resolve in the catalog.
    pub missing: bool,
}

const CLASS: &str = "'pg_catalog.pg_class'::regclass::oid";

impl BlastQuery {
    /// The query. Rows: `'table', schema, name, estimate, reason, relkind`,
    /// `'object', type, identity, NULL, NULL, NULL` (a dropped relation that is not
    /// a table, e.g. an index or a view, is one of these), and one `'resolved'` row
    /// when the target exists.
    pub fn sql(&self) -> String {
        let (tables_root, dep_root) = match &self.target {
            BlastTarget::Relation { schema, name } => {
                let rel = format!(
                    "SELECT pg_catalog.to_regclass({})::oid AS oid",
                    literal(&qualified(schema.as_deref(), name))
                );
                let roots =
                    format!("SELECT oid, 'target'::text FROM ({rel}) r WHERE oid IS NOT NULL");
                let dep = format!("SELECT {CLASS}, oid FROM ({rel}) r WHERE oid IS NOT NULL");
                (roots, dep)
            }
            BlastTarget::Schema { name } => {
                let ns = format!("pg_catalog.to_regnamespace({})::oid", literal(&ident(name)));
                let roots = format!(
                    "SELECT c.oid, 'target'::text FROM pg_catalog.pg_class c \
                     WHERE c.relnamespace = {ns} AND c.relkind IN ('r', 'p', 'm', 'f')"
                );
                let dep = format!(
                    "SELECT 'pg_catalog.pg_namespace'::regclass::oid, n FROM (SELECT {ns} AS n) x \
                     WHERE n IS NOT NULL"
                );
                (roots, dep)
            }
            BlastTarget::Column {
                schema,
                table,
                column,
            } => {
                let rel = format!(
                    "pg_catalog.to_regclass({})::oid",
                    literal(&qualified(schema.as_deref(), table))
                );
                let roots = format!(
                    "SELECT r, 'column'::text FROM (SELECT {rel} AS r) x WHERE r IS NOT NULL"
                );
                let dep = format!(
                    "SELECT d.classid, d.objid FROM pg_catalog.pg_depend d \
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
                     WHERE d.refclassid = {CLASS} AND d.refobjid = {rel} \
                     AND a.attname = {} AND d.deptype IN ('n', 'a', 'i')",
                    literal(column)
                );
                (roots, dep)
            }
        };
        let fk = match self.op {
            BlastOp::Truncate { cascade: true } => {
                " UNION ALL SELECT f.conrelid, 'foreign key' FROM pg_catalog.pg_constraint f \
                 WHERE f.confrelid = tabs.oid AND f.contype = 'f'"
            }
            _ => "",
        };
        // TRUNCATE removes no objects; DROP (and DROP COLUMN) follow pg_depend.
        let objects = match self.op {
            BlastOp::Truncate { .. } => String::new(),
            BlastOp::Drop { .. } => format!(
                " UNION ALL SELECT 'object', i.type, i.identity, NULL, NULL, NULL \
                 FROM objs o CROSS JOIN LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, 0) i \
                 WHERE o.classid <> 'pg_catalog.pg_type'::regclass::oid \
                 AND i.schema IS DISTINCT FROM 'pg_toast' \
                 AND o.classid <> 'pg_catalog.pg_rewrite'::regclass::oid \
                 AND o.classid <> 'pg_catalog.pg_namespace'::regclass::oid \
                 AND NOT COALESCE((SELECT t.tgisinternal FROM pg_catalog.pg_trigger t \
                   WHERE o.classid = 'pg_catalog.pg_trigger'::regclass::oid AND t.oid = o.objid), false) \
                 AND (o.rel IS NULL OR o.rel NOT IN (SELECT oid FROM tabs WHERE reason <> 'column')) \
                 AND NOT (o.classid = {CLASS} AND o.objid IN (SELECT oid FROM tabs) \
                   AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = o.objid) \
                   IN ('r', 'p', 'm', 'f'))"
            ),
        };
        let resolved = format!(
            " UNION ALL SELECT 'resolved', NULL, NULL, NULL, NULL, NULL \
             WHERE EXISTS ({tables_root}) OR EXISTS ({dep_root})"
        );
        format!(
            "WITH RECURSIVE \
             tabs(oid, reason) AS ({tables_root} \
               UNION SELECT x.oid, x.reason FROM tabs CROSS JOIN LATERAL ( \
                 SELECT i.inhrelid, 'partition'::text FROM pg_catalog.pg_inherits i \
                 WHERE i.inhparent = tabs.oid AND tabs.reason <> 'column'{fk}) x(oid, reason)), \
             dep(classid, objid) AS ({dep_root} \
               UNION SELECT {CLASS}, tabs.oid FROM tabs WHERE tabs.reason <> 'column' \
               UNION SELECT x.classid, x.objid FROM dep CROSS JOIN LATERAL ( \
                 SELECT d.classid, d.objid FROM pg_catalog.pg_depend d \
                 WHERE d.refclassid = dep.classid AND d.refobjid = dep.objid \
                 AND d.deptype IN ('n', 'a', 'i', 'P', 'S') \
                 UNION ALL SELECT {CLASS}, w.ev_class FROM pg_catalog.pg_rewrite w \
                 WHERE dep.classid = 'pg_catalog.pg_rewrite'::regclass::oid AND w.oid = dep.objid) x), \
             objs AS (SELECT d.classid, d.objid, CASE \
               WHEN d.classid = {CLASS} THEN COALESCE( \
                 (SELECT x.indrelid FROM pg_catalog.pg_index x WHERE x.indexrelid = d.objid), \
                 (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.reltoastrelid = d.objid), d.objid) \
               WHEN d.classid = 'pg_catalog.pg_constraint'::regclass::oid THEN \
                 (SELECT c.conrelid FROM pg_catalog.pg_constraint c WHERE c.oid = d.objid) \
               WHEN d.classid = 'pg_catalog.pg_trigger'::regclass::oid THEN \
                 (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid = d.objid) \
               WHEN d.classid = 'pg_catalog.pg_attrdef'::regclass::oid THEN \
                 (SELECT a.adrelid FROM pg_catalog.pg_attrdef a WHERE a.oid = d.objid) \
               WHEN d.classid = 'pg_catalog.pg_policy'::regclass::oid THEN \
                 (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid = d.objid) \
               END AS rel FROM dep d) \
             SELECT 'table', n.nspname::text, c.relname::text, \
               GREATEST(c.reltuples::int8, COALESCE(s.n_live_tup, 0), 0)::text, t.reason, \
               c.relkind::text \
             FROM tabs t JOIN pg_catalog.pg_class c ON c.oid = t.oid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid \
             WHERE c.relkind IN ('r', 'p', 'm', 'f'){objects}{resolved}"
        )
    }

    /// Reads the query's rows. `missing` when nothing resolved at all.
    pub fn read(&self, rows: &[Vec<Option<&str>>]) -> Result<BlastRadius, String> {
        let mut resolved = false;
        let mut tables: Vec<LostTable> = Vec::new();
        let mut dependents: Vec<String> = Vec::new();
        for row in rows {
            let f = |i: usize| row.get(i).copied().flatten();
            match f(0) {
                Some("table") => {
                    let (Some(schema), Some(name), Some(est), Some(reason)) =
                        (f(1), f(2), f(3), f(4))
                    else {
                        return Err("table row with a missing field".into());
                    };
                    let estimate: u64 = est.parse().map_err(|_| format!("estimate '{est}'"))?;
                    let kind = f(5).and_then(|k| k.chars().next()).unwrap_or('r');
                    let reason = match reason {
                        "target" => Reason::Target,
                        "partition" => Reason::Partition,
                        "foreign key" => Reason::ForeignKey,
                        "column" => Reason::Column,
                        other => return Err(format!("reason '{other}'")),
                    };
                    // A table reached twice keeps its strongest reason.
                    if let Some(t) = tables
                        .iter_mut()
                        .find(|t| t.schema == schema && t.name == name)
                    {
                        if rank(reason) < rank(t.reason) {
                            t.reason = reason;
                        }
                    } else {
                        tables.push(LostTable {
                            schema: schema.to_string(),
                            name: name.to_string(),
                            rows: RowCount::Estimate(estimate),
                            reason,
                            kind,
                        });
                    }
                }
                Some("object") => {
                    let (Some(kind), Some(identity)) = (f(1), f(2)) else {
                        return Err("object row with a missing field".into());
                    };
                    let d = format!("{kind} {identity}");
                    if !dependents.contains(&d) {
                        dependents.push(d);
                    }
                }
                Some("resolved") => resolved = true,
                _ => return Err("row of unknown kind".into()),
            }
        }
        // By reason, then name: the same sentence every time.
        tables.sort_by(|a, b| {
            (rank(a.reason), &a.schema, &a.name).cmp(&(rank(b.reason), &b.schema, &b.name))
        });
        dependents.sort();
        let missing = !resolved;
        Ok(BlastRadius {
            op: self.op,
            tables,
            dependents,
            missing,
        })
    }
}

/// An exact count of `schema.name`'s rows, stopping after `cap + 1` rows so a big
/// table is never scanned whole. Reply: one value, read by [`RowCount::from_count`].
pub fn count_sql(schema: &str, name: &str, cap: u64) -> String {
    format!(
        "SELECT count(*) FROM (SELECT 1 FROM ONLY {} LIMIT {}) x",
        qualified(Some(schema), name),
        cap.saturating_add(1)
    )
}

impl RowCount {
    /// The result of [`count_sql`] with the same `cap`.
    pub fn from_count(count: u64, cap: u64) -> RowCount {
        if count > cap {
            RowCount::MoreThan(cap)
        } else {
            RowCount::Exact(count)
        }
    }
}

fn rank(r: Reason) -> u8 {
    match r {
        Reason::Target | Reason::Column => 0,
        Reason::Partition => 1,
        Reason::ForeignKey => 2,
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// 5000 → "5,000".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl BlastRadius {
    /// "would drop public.orders (5,000 rows) and 2 dependent objects (view
    /// public.v, …)", "would empty public.t (5 rows) and, through foreign keys,
    /// public.orders (~5 rows)".
    pub fn sentence(&self) -> String {
        if self.missing {
            return "found nothing of that name in the catalog".to_string();
        }
        let list = |reason: Reason| -> Vec<String> {
            self.tables
                .iter()
                .filter(|t| t.reason == reason)
                .map(|t| format!("{} ({})", t.qualified(), t.rows.describe()))
                .collect()
        };
        let verb = match self.op {
            BlastOp::Drop { .. } => "drop",
            BlastOp::Truncate { .. } => "empty",
        };
        let mut s = String::from("would ");
        let targets = list(Reason::Target);
        let columns = list(Reason::Column);
        if !columns.is_empty() {
            let _ = write!(s, "drop a column of {}", columns.join(", "));
        } else if targets.is_empty() {
            // Not a table (an index, a view, an empty schema): the objects say it.
            if self.dependents.is_empty() {
                let _ = write!(s, "{verb} no table");
            } else {
                let _ = write!(s, "{verb} {}", self.dependents.join(", "));
                return s;
            }
        } else {
            let _ = write!(s, "{verb} {}", targets.join(", "));
        }
        let parts = list(Reason::Partition);
        if !parts.is_empty() {
            let _ = write!(s, ", with partitions or child tables {}", parts.join(", "));
        }
        let fks = list(Reason::ForeignKey);
        if !fks.is_empty() {
            let _ = write!(s, ", and through foreign keys {}", fks.join(", "));
        }
        match self.dependents.len() {
            0 => {}
            n => {
                let _ = write!(
                    s,
                    " and {n} dependent object{} ({})",
                    plural(n as u64),
                    self.dependents.join(", ")
                );
            }
        }
        if let BlastOp::Drop { cascade: false } = self.op {
            if !self.dependents.is_empty() {
                s.push_str("; without CASCADE the server refuses while they exist");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: &[Option<&'static str>]) -> Vec<Option<&'static str>> {
        v.to_vec()
    }

    #[test]
    fn names_are_quoted_and_escaped() {
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(literal("a'b\\c"), "E'a''b\\\\c'");
        let q = BlastQuery {
            target: BlastTarget::Relation {
                schema: Some("Pub".into()),
                name: "o'rders".into(),
            },
            op: BlastOp::Drop { cascade: true },
        };
        assert!(q.sql().contains("to_regclass(E'\"Pub\".\"o''rders\"')"));
        assert_eq!(
            count_sql("public", "t", 1000),
            "SELECT count(*) FROM (SELECT 1 FROM ONLY \"public\".\"t\" LIMIT 1001) x"
        );
        assert_eq!(RowCount::from_count(1001, 1000), RowCount::MoreThan(1000));
        assert_eq!(RowCount::from_count(7, 1000), RowCount::Exact(7));
    }

    #[test]
    fn rows_and_sentences() {
        let q = BlastQuery {
            target: BlastTarget::Relation {
                schema: None,
                name: "orders".into(),
            },
            op: BlastOp::Drop { cascade: false },
        };
        let r = q
            .read(&[
                row(&[Some("resolved"), None, None, None, None]),
                row(&[
                    Some("table"),
                    Some("public"),
                    Some("orders"),
                    Some("5000"),
                    Some("target"),
                ]),
                row(&[Some("object"), Some("view"), Some("public.v"), None, None]),
                row(&[Some("object"), Some("view"), Some("public.w"), None, None]),
            ])
            .unwrap();
        assert_eq!(
            r.sentence(),
            "would drop public.orders (~5,000 rows) and 2 dependent objects (view public.v, \
             view public.w); without CASCADE the server refuses while they exist"
        );
        let q = BlastQuery {
            target: BlastTarget::Relation {
                schema: None,
                name: "t".into(),
            },
            op: BlastOp::Truncate { cascade: true },
        };
        let mut r = q
            .read(&[
                row(&[Some("resolved"), None, None, None, None]),
                row(&[
                    Some("table"),
                    Some("public"),
                    Some("orders"),
                    Some("5"),
                    Some("foreign key"),
                ]),
                row(&[
                    Some("table"),
                    Some("public"),
                    Some("t"),
                    Some("1"),
                    Some("target"),
                ]),
                row(&[
                    Some("table"),
                    Some("public"),
                    Some("t"),
                    Some("1"),
                    Some("foreign key"),
                ]),
            ])
            .unwrap();
        r.tables[0].rows = RowCount::Exact(1);
        assert_eq!(
            r.sentence(),
            "would empty public.t (1 row), and through foreign keys public.orders (~5 rows)"
        );
        assert!(q.read(&[]).unwrap().missing);
        assert!(q.read(&[row(&[Some("x")])]).is_err());
        assert!(q
            .read(&[row(&[
                Some("table"),
                Some("s"),
                Some("t"),
                Some("-1"),
                Some("target")
            ])])
            .is_err());
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
