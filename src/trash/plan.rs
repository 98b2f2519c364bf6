//! Pure: the SQL that trashes a table instead of dropping it, from its [`TableFacts`].
//!
//! What a real `DROP TABLE` does, and how the trash matches it:
//! - the table, its indexes, constraints, owned sequences, triggers, policies and
//!   grants disappear from their schema: `ALTER TABLE … SET SCHEMA` moves the table
//!   with all of them into the item's own schema, so every name is free at once;
//! - partitions go with a partitioned table: each is moved too;
//! - foreign keys from the table to tables that stay are removed (otherwise a
//!   parent row could not be deleted, or would cascade into the trash): they are
//!   dropped, their definitions kept in the registry for restore;
//! - with CASCADE, views over it are dropped (here: moved with it) and foreign keys
//!   of other tables that point at it are dropped (definitions kept).
//!
//! Anything else the catalog shows (inheritance, a partition of another table,
//! publications, extended statistics, functions or columns using the row type, …)
//! makes the plan [`NotFaithful`]; the policy's fallback then applies. A temporary
//! table is not trashed (its data ends with the session anyway): [`Plan::AsWritten`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::facts::{ForeignKey, Rel, TableFacts};
use super::statement::{RelKind, TrashRequest};
use super::truncate::RowsCopy;
use super::{ident, item_schema, literal, qualified, REGISTRY_SCHEMA};

/// One object moved into the trash, under its original schema and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// `table`, `partition` or `view` (views include materialized views; see `kind`).
    pub role: String,
    /// `pg_class.relkind`.
    pub kind: String,
    pub schema: String,
    pub name: String,
    /// For a TRUNCATE (`role` = `rows`): where the rows were copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Box<RowsCopy>>,
}

/// A foreign key pgwarden removed, to be re-created on restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// `out`: on a moved table (it moves with it); `in`: on a table that stays.
    pub side: String,
    /// The key, with the tables named as they were when trashed.
    pub key: ForeignKey,
}

/// The result of planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run the statement as written (nothing to keep).
    AsWritten(&'static str),
    /// Run these statements, in order, in the client's transaction.
    Trash(TrashPlan),
}

/// Why the trash cannot stand in for a statement faithfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFaithful(pub String);

impl std::fmt::Display for NotFaithful {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not faithful: {}", self.0)
    }
}

/// A trash plan for item `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashPlan {
    pub id: i64,
    /// `schema.name` of the (first) trashed table, for messages.
    pub original: String,
    /// What was kept, for the NOTICE (`table "public"."t"`, …).
    pub what: String,
    pub statements: Vec<String>,
    pub moved: Vec<Moved>,
    pub removed: Vec<Removed>,
    pub size: i64,
    /// Where the item is kept: its schema (`pgwarden_trash_<id>`), or for a
    /// database the name it was renamed to (`pgwarden_trash_db_<oid>`).
    pub trash_name: String,
}

impl TrashPlan {
    /// The NOTICE the client gets instead of nothing.
    pub fn notice(&self) -> String {
        let verb = if self.what.starts_with("tables ") || self.what.starts_with("the rows of ") {
            "were"
        } else {
            "was"
        };
        // A database is renamed rather than moved into a schema.
        let place = if self.what.starts_with("database ") {
            format!("database {}, closed to connections", self.trash_name)
        } else {
            format!("schema {}", self.trash_name)
        };
        format!(
            "pgwarden: {} {verb} moved to the trash as item {} ({place}) instead of being \
             destroyed; restore it with `pgwarden trash restore {}`",
            self.what, self.id, self.id
        )
    }
}

/// Who and what, for the registry row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context<'a> {
    /// The client's user as pgwarden saw it.
    pub by: &'a str,
    /// The statement as the client sent it.
    pub statement: &'a str,
    /// How long the item is kept before a purge may remove it.
    pub retention: Option<Duration>,
    /// A TRUNCATE is trashed only while its tables hold at most this many bytes.
    pub truncate_max_bytes: u64,
}

fn relation_keyword(kind: &str) -> &'static str {
    match kind {
        "v" => "VIEW",
        "m" => "MATERIALIZED VIEW",
        _ => "TABLE",
    }
}

fn moved(role: &str, r: &Rel) -> Moved {
    Moved {
        role: role.to_string(),
        kind: r.kind.clone(),
        schema: r.schema.clone(),
        name: r.name.clone(),
        rows: None,
    }
}

fn removed(side: &str, k: &ForeignKey) -> Removed {
    Removed {
        side: side.to_string(),
        key: k.clone(),
    }
}

/// The registry row of item `id` (`first`: the original name recorded).
#[allow(clippy::too_many_arguments)]
pub(crate) fn registry_insert(
    id: i64,
    kind: &str,
    original_schema: Option<&str>,
    original_name: &str,
    schema: &str,
    cx: &Context<'_>,
    moved: &[Moved],
    removed: &[Removed],
    size: i64,
) -> String {
    let expires = match cx.retention {
        Some(d) => format!(
            "pg_catalog.now() + pg_catalog.make_interval(secs => {})",
            d.as_secs()
        ),
        None => "NULL".to_string(),
    };
    format!(
        "INSERT INTO {}.registry (id, kind, original_schema, original_name, trash_schema, \
         trashed_by, statement, moved, removed, size_bytes, expires_at) \
         VALUES ({id}, {}, {}, {}, {}, {}, {}, {}::jsonb, {}::jsonb, {size}, {expires})",
        ident(REGISTRY_SCHEMA),
        literal(kind),
        original_schema.map_or_else(|| "NULL".to_string(), literal),
        literal(original_name),
        literal(schema),
        literal(cx.by),
        literal(cx.statement),
        literal(&to_json(&moved)),
        literal(&to_json(&removed)),
    )
}

/// Plans the trash for a DROP of tables, views or materialized views with the
/// catalog's `facts` (`None`: no name resolved) as item `id`.
pub fn plan(
    request: &TrashRequest,
    facts: Option<&TableFacts>,
    id: i64,
    cx: &Context<'_>,
) -> Result<Plan, NotFaithful> {
    let TrashRequest::DropRelations { kind, names, .. } = request else {
        return Err(NotFaithful("not a DROP of tables or views".into()));
    };
    let Some(f) = facts else {
        // The server accepted the statement (checked before planning), so this is
        // DROP … IF EXISTS of missing names: it removes nothing.
        return Ok(Plan::AsWritten("nothing it names exists"));
    };
    let Some(first) = f.tables.first() else {
        return Ok(Plan::AsWritten("nothing it names exists"));
    };
    if f.tables.iter().all(|t| t.persistence == "t") {
        return Ok(Plan::AsWritten("a temporary table"));
    }
    let nf = |why: String| Err(NotFaithful(why));
    if f.tables.iter().any(|t| t.persistence == "t") {
        return nf("temporary and permanent tables in one statement".into());
    }
    if f.tables.len() < names.len() {
        // IF EXISTS with some names missing: the others are kept all the same.
        tracing::debug!("trash: some names of the DROP do not exist");
    }
    if f.is_child {
        return nf(format!(
            "{} a partition or inheritance child of another table",
            if f.tables.len() == 1 {
                format!("{} is", qualified(&first.schema, &first.name))
            } else {
                "one of the tables is".to_string()
            }
        ));
    }
    if f.inherited {
        return nf("the table has inheritance children".into());
    }
    if f.children.iter().any(|c| c.kind != "r" && c.kind != "p") {
        return nf("a partition is not a plain table (e.g. a foreign table)".into());
    }
    if !f.other_dependents.is_empty() {
        return nf(format!(
            "other objects depend on it: {}",
            f.other_dependents.join(", ")
        ));
    }
    if !f.publications.is_empty() {
        return nf(format!("it is published ({})", f.publications.join(", ")));
    }
    if !f.statistics.is_empty() {
        return nf("it has extended statistics objects".into());
    }
    if !request.cascade() && (!f.views.is_empty() || !f.fks_in.is_empty()) {
        // The server would have refused the DROP; planning is only asked after it
        // accepted, so the catalog changed in between.
        return nf("dependent objects without CASCADE".into());
    }
    let schema = item_schema(id);
    let mut statements = vec![format!("CREATE SCHEMA {}", ident(&schema))];
    let mut removed_list = Vec::new();
    for (side, keys) in [("out", &f.fks_out), ("in", &f.fks_in)] {
        for k in keys {
            statements.push(format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                qualified(&k.schema, &k.table),
                ident(&k.name)
            ));
            removed_list.push(removed(side, k));
        }
    }
    let mut moved_list: Vec<Moved> = f.tables.iter().map(|t| moved("table", t)).collect();
    moved_list.extend(f.children.iter().map(|c| moved("partition", c)));
    moved_list.extend(f.views.iter().map(|v| moved("view", v)));
    for m in &moved_list {
        statements.push(format!(
            "ALTER {} {} SET SCHEMA {}",
            relation_keyword(&m.kind),
            qualified(&m.schema, &m.name),
            ident(&schema)
        ));
    }
    statements.push(registry_insert(
        id,
        kind.item_kind(),
        Some(&first.schema),
        &first.name,
        &schema,
        cx,
        &moved_list,
        &removed_list,
        f.size,
    ));
    let noun = match kind {
        RelKind::Table => "table",
        RelKind::View => "view",
        RelKind::MaterializedView => "materialized view",
    };
    let what = match f.tables.as_slice() {
        [t] => format!("{noun} {}", qualified(&t.schema, &t.name)),
        ts => format!(
            "{noun}s {}",
            ts.iter()
                .map(|t| qualified(&t.schema, &t.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Ok(Plan::Trash(TrashPlan {
        id,
        original: qualified(&first.schema, &first.name),
        what,
        statements,
        moved: moved_list,
        removed: removed_list,
        size: f.size,
        trash_name: item_schema(id),
    }))
}

/// Serialises a plan's lists (plain strings: serialisation cannot fail).
fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trash::statement::read;

    fn rel(schema: &str, name: &str, kind: &str) -> Rel {
        Rel {
            schema: schema.into(),
            name: name.into(),
            kind: kind.into(),
            persistence: "p".into(),
        }
    }

    fn fk(table: &str, name: &str) -> ForeignKey {
        ForeignKey {
            schema: "public".into(),
            table: table.into(),
            name: name.into(),
            columns: vec!["x".into()],
            ref_schema: "public".into(),
            ref_table: "p".into(),
            ref_columns: vec!["id".into()],
            tail: String::new(),
        }
    }

    fn facts() -> TableFacts {
        TableFacts {
            tables: vec![rel("public", "t", "r")],
            is_child: false,
            inherited: false,
            children: vec![],
            views: vec![],
            fks_out: vec![],
            fks_in: vec![],
            other_dependents: vec![],
            publications: vec![],
            statistics: vec![],
            size: 16384,
        }
    }

    const CX: Context<'static> = Context {
        by: "alice",
        statement: "DROP TABLE t",
        retention: Some(Duration::from_secs(3600)),
        truncate_max_bytes: 0,
    };

    fn trash(sql: &str, f: &TableFacts) -> Result<TrashPlan, NotFaithful> {
        match plan(&read(sql).expect("reads"), Some(f), 3, &CX)? {
            Plan::Trash(p) => Ok(p),
            Plan::AsWritten(w) => panic!("as written: {w}"),
        }
    }

    #[test]
    fn plain_table() {
        let p = trash("DROP TABLE t", &facts()).expect("plan");
        assert_eq!(p.statements[0], "CREATE SCHEMA \"pgwarden_trash_3\"");
        assert_eq!(
            p.statements[1],
            "ALTER TABLE \"public\".\"t\" SET SCHEMA \"pgwarden_trash_3\""
        );
        assert!(p.statements[2].starts_with("INSERT INTO \"pgwarden_trash\".registry"));
        assert!(p.statements[2].contains("make_interval(secs => 3600)"));
        assert_eq!(p.statements.len(), 3);
        assert!(p.notice().contains("pgwarden trash restore 3"));
    }

    #[test]
    fn foreign_keys_and_views() {
        let mut f = facts();
        f.fks_out = vec![fk("t", "t_p_fkey")];
        f.fks_in = vec![fk("child", "child_t_fkey")];
        f.views = vec![rel("public", "v", "v"), rel("rep", "m", "m")];
        assert_eq!(
            trash("DROP TABLE t", &f),
            Err(NotFaithful("dependent objects without CASCADE".into()))
        );
        let p = trash("DROP TABLE t CASCADE", &f).expect("plan");
        let want = [
            "ALTER TABLE \"public\".\"t\" DROP CONSTRAINT \"t_p_fkey\"",
            "ALTER TABLE \"public\".\"child\" DROP CONSTRAINT \"child_t_fkey\"",
            "ALTER TABLE \"public\".\"t\" SET SCHEMA \"pgwarden_trash_3\"",
            "ALTER VIEW \"public\".\"v\" SET SCHEMA \"pgwarden_trash_3\"",
            "ALTER MATERIALIZED VIEW \"rep\".\"m\" SET SCHEMA \"pgwarden_trash_3\"",
        ];
        assert_eq!(&p.statements[1..6], &want);
        assert_eq!(p.removed.len(), 2);
        assert_eq!(p.moved.len(), 3);
    }

    #[test]
    fn several_tables_are_one_item() {
        let mut f = facts();
        f.tables.push(rel("s", "u", "r"));
        let p = trash("DROP TABLE t, s.u", &f).expect("plan");
        assert_eq!(
            &p.statements[1..3],
            &[
                "ALTER TABLE \"public\".\"t\" SET SCHEMA \"pgwarden_trash_3\"",
                "ALTER TABLE \"s\".\"u\" SET SCHEMA \"pgwarden_trash_3\"",
            ]
        );
        assert_eq!(p.moved.iter().filter(|m| m.role == "table").count(), 2);
        assert!(
            p.notice()
                .contains("tables \"public\".\"t\", \"s\".\"u\" were moved"),
            "{}",
            p.notice()
        );
        let mut g = f.clone();
        g.tables[1].persistence = "t".into();
        assert!(trash("DROP TABLE t, s.u", &g).is_err(), "temporary and not");
        let mut m = facts();
        m.tables[0].kind = "m".into();
        let p = trash("DROP MATERIALIZED VIEW t", &m).expect("plan");
        assert_eq!(
            p.statements[1],
            "ALTER MATERIALIZED VIEW \"public\".\"t\" SET SCHEMA \"pgwarden_trash_3\""
        );
        assert!(
            p.statements[2].contains("E'materialized_view'"),
            "{}",
            p.statements[2]
        );
    }

    #[test]
    fn partitions_move_too() {
        let mut f = facts();
        f.tables[0].kind = "p".into();
        f.children = vec![rel("public", "t2025", "r")];
        let p = trash("DROP TABLE t", &f).expect("plan");
        assert_eq!(p.moved[1].role, "partition");
        let mut g = facts();
        g.children = vec![rel("public", "kid", "r")];
        g.inherited = true;
        assert!(trash("DROP TABLE t CASCADE", &g).is_err(), "inheritance");
    }

    #[test]
    fn not_faithful_cases() {
        let cases: Vec<(&str, TableFacts)> = vec![
            (
                "child",
                TableFacts {
                    is_child: true,
                    ..facts()
                },
            ),
            (
                "dependents",
                TableFacts {
                    other_dependents: vec!["function f(t)".into()],
                    ..facts()
                },
            ),
            (
                "published",
                TableFacts {
                    publications: vec!["pub".into()],
                    ..facts()
                },
            ),
            (
                "statistics",
                TableFacts {
                    statistics: vec!["s".into()],
                    ..facts()
                },
            ),
        ];
        for (name, f) in cases {
            assert!(trash("DROP TABLE t CASCADE", &f).is_err(), "{name}");
        }
    }

    #[test]
    fn nothing_to_keep() {
        let req = read("DROP TABLE IF EXISTS t").expect("reads");
        assert!(matches!(plan(&req, None, 1, &CX), Ok(Plan::AsWritten(_))));
        let mut f = facts();
        f.tables[0].persistence = "t".into();
        assert!(matches!(
            plan(&req, Some(&f), 1, &CX),
            Ok(Plan::AsWritten(_))
        ));
    }
}
