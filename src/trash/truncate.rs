//! Pure: the trash for `TRUNCATE`. The rows of every table the TRUNCATE would empty
//! (the named tables, their partitions and inheritance children, and with CASCADE
//! the tables whose foreign keys point at them, recursively) are copied into the
//! item's schema, then the TRUNCATE runs; restore puts the rows back into the
//! (then empty) tables with their user triggers off, and moves owned sequences
//! forward to where they were.
//!
//! Faithful or not at all: over the rule's size limit, or with a foreign table in
//! the set, the plan is [`NotFaithful`] and the rule's fallback applies.

use serde::{Deserialize, Serialize};

use super::facts::Rel;
use super::plan::{Context, Moved, NotFaithful, TrashPlan};
use super::{ident, item_schema, literal, qualified};

/// A user trigger that was enabled (`pg_trigger.tgenabled`: O, A or R).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    pub enabled: String,
}

/// A sequence the table owns, and its value before the TRUNCATE (`None`: never
/// used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    pub last_value: Option<i64>,
}

/// One table the TRUNCATE empties.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Emptied {
    pub schema: String,
    pub name: String,
    /// `pg_class.relkind`: r (rows copied), p (no rows of its own), f (not covered).
    pub kind: String,
    /// The columns that hold values (not generated), in order.
    pub columns: Vec<String>,
    pub triggers: Vec<Trigger>,
    pub sequences: Vec<Sequence>,
}

/// What the catalog says about a TRUNCATE.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TruncateFacts {
    /// The tables the statement names, in its order.
    pub named: Vec<Rel>,
    /// Every table it empties, referenced tables before the tables referencing them.
    pub tables: Vec<Emptied>,
    /// `pg_table_size` of them all, in bytes.
    pub size: i64,
}

/// Where a table's rows were copied, and what a restore needs to put them back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsCopy {
    /// The copy's name in the item's schema.
    pub copy: String,
    pub columns: Vec<String>,
    pub triggers: Vec<Trigger>,
    pub sequences: Vec<Sequence>,
}

const CLASS: &str = "'pg_catalog.pg_class'::pg_catalog.regclass";

/// The query: no row when no name resolves to a table, else one JSON document.
pub fn sql(names: &[String], cascade: bool) -> String {
    let lits: Vec<String> = names.iter().map(|n| literal(n)).collect();
    let arr = format!("ARRAY[{}]::pg_catalog.text[]", lits.join(", "));
    format!(
        "WITH RECURSIVE named AS (
  SELECT c.oid, pg_catalog.min(u.n) AS n FROM pg_catalog.unnest({arr}) WITH ORDINALITY u(x, n)
  JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(u.x)
  WHERE c.relkind IN ('r', 'p', 'f') GROUP BY c.oid
), edges AS (
  SELECT i.inhparent AS parent, i.inhrelid AS child, 0 AS fk FROM pg_catalog.pg_inherits i
  UNION ALL
  SELECT k.confrelid, k.conrelid, 1 FROM pg_catalog.pg_constraint k
  WHERE k.contype = 'f' AND {cascade} AND k.conrelid <> k.confrelid
), walk AS (
  SELECT oid, ARRAY[oid] AS path, 0 AS depth FROM named
  UNION ALL
  SELECT e.child, w.path || e.child, w.depth + e.fk FROM edges e JOIN walk w ON e.parent = w.oid
  WHERE e.child <> ALL (w.path)
), tabs AS (
  SELECT oid, pg_catalog.max(depth) AS depth FROM walk GROUP BY oid
)
SELECT pg_catalog.json_build_object(
  'named', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('schema', n.nspname,
              'name', c.relname, 'kind', c.relkind, 'persistence', c.relpersistence) ORDER BY x.n)
            FROM named x JOIN pg_catalog.pg_class c ON c.oid = x.oid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace),
  'tables', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('schema', n.nspname,
      'name', c.relname, 'kind', c.relkind,
      'columns', (SELECT coalesce(pg_catalog.json_agg(a.attname ORDER BY a.attnum), '[]')
                  FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                  AND NOT a.attisdropped AND a.attgenerated = ''),
      'triggers', (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object('name', g.tgname,
                     'enabled', g.tgenabled) ORDER BY g.tgname), '[]')
                   FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal
                   AND g.tgenabled <> 'D'),
      'sequences', (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object('schema', sn.nspname,
                      'name', s.relname, 'last_value', pg_catalog.pg_sequence_last_value(s.oid))
                      ORDER BY s.oid), '[]')
                    FROM pg_catalog.pg_depend d
                    JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                    JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
                    WHERE d.classid = {CLASS} AND d.refclassid = {CLASS} AND d.refobjid = c.oid
                    AND d.deptype IN ('a', 'i'))) ORDER BY t.depth, c.oid)
    FROM tabs t JOIN pg_catalog.pg_class c ON c.oid = t.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace),
  'size', (SELECT coalesce(pg_catalog.sum(pg_catalog.pg_table_size(oid)), 0)::int8 FROM tabs)
)::text WHERE EXISTS (SELECT 1 FROM named)",
        cascade = if cascade { "true" } else { "false" },
    )
}

/// Reads the query's rows: `Ok(None)` when no name resolved.
pub fn read(rows: &[Vec<Option<&str>>]) -> Result<Option<TruncateFacts>, String> {
    match rows {
        [] => Ok(None),
        [row] => {
            let text = row
                .first()
                .copied()
                .flatten()
                .ok_or("truncate facts: empty row")?;
            serde_json::from_str(text)
                .map(Some)
                .map_err(|e| format!("truncate facts: unexpected document: {e}"))
        }
        _ => Err("truncate facts: more than one row".into()),
    }
}

/// `<n>_<name>`, cut to PostgreSQL's 63 bytes on a character boundary.
fn copy_name(n: usize, name: &str) -> String {
    let mut s = format!("{n}_{name}");
    while s.len() > 63 {
        s.pop();
    }
    s
}

fn columns(cols: &[String]) -> String {
    cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
}

/// Plans the trash of a TRUNCATE as item `id`: copy, then the TRUNCATE itself
/// (named by the names the server resolved), then the registry row.
pub fn plan(
    f: &TruncateFacts,
    restart_identity: bool,
    cascade: bool,
    id: i64,
    cx: &Context<'_>,
) -> Result<TrashPlan, NotFaithful> {
    let nf = |why: String| Err(NotFaithful(why));
    if let Some(t) = f.tables.iter().find(|t| t.kind == "f") {
        return nf(format!(
            "{} is a foreign table (its rows live elsewhere)",
            qualified(&t.schema, &t.name)
        ));
    }
    if let Some(t) = f.named.iter().find(|t| t.persistence == "t") {
        return nf(format!(
            "{} is a temporary table",
            qualified(&t.schema, &t.name)
        ));
    }
    let limit = cx.truncate_max_bytes;
    if u64::try_from(f.size).unwrap_or(u64::MAX) > limit {
        return nf(format!(
            "the tables hold {} bytes, over the rule's truncate_max_size ({limit} bytes)",
            f.size
        ));
    }
    let first = f
        .named
        .first()
        .ok_or_else(|| NotFaithful("no table to empty".into()))?;
    let schema = item_schema(id);
    let mut statements = vec![format!("CREATE SCHEMA {}", ident(&schema))];
    let mut moved = Vec::new();
    for (i, t) in f.tables.iter().filter(|t| t.kind == "r").enumerate() {
        let copy = copy_name(i + 1, &t.name);
        statements.push(format!(
            "CREATE TABLE {} AS SELECT {} FROM ONLY {}",
            qualified(&schema, &copy),
            columns(&t.columns),
            qualified(&t.schema, &t.name)
        ));
        moved.push(Moved {
            role: "rows".into(),
            kind: t.kind.clone(),
            schema: t.schema.clone(),
            name: t.name.clone(),
            rows: Some(Box::new(RowsCopy {
                copy,
                columns: t.columns.clone(),
                triggers: t.triggers.clone(),
                sequences: t.sequences.clone(),
            })),
        });
    }
    let named: Vec<String> = f
        .named
        .iter()
        .map(|t| qualified(&t.schema, &t.name))
        .collect();
    statements.push(format!(
        "TRUNCATE TABLE {}{}{}",
        named.join(", "),
        if restart_identity {
            " RESTART IDENTITY"
        } else {
            ""
        },
        if cascade { " CASCADE" } else { "" }
    ));
    statements.push(super::plan::registry_insert(
        id,
        "truncate",
        Some(&first.schema),
        &first.name,
        &schema,
        cx,
        &moved,
        &[],
        f.size,
    ));
    let what = if moved.len() == 1 {
        format!("the rows of table {}", named.join(", "))
    } else {
        format!(
            "the rows of {} tables ({}, …)",
            moved.len(),
            qualified(&moved[0].schema, &moved[0].name)
        )
    };
    Ok(TrashPlan {
        id,
        original: qualified(&first.schema, &first.name),
        what,
        statements,
        moved,
        removed: Vec::new(),
        size: f.size,
        trash_name: schema,
    })
}

/// The statements that put one table's rows back (the table empty, checked
/// before): its user triggers off while the rows go in, owned sequences moved to
/// at least where they were.
pub fn restore_rows(trash_schema: &str, m: &Moved, r: &RowsCopy) -> Vec<String> {
    let table = qualified(&m.schema, &m.name);
    let mut out = Vec::new();
    for t in &r.triggers {
        out.push(format!(
            "ALTER TABLE {table} DISABLE TRIGGER {}",
            ident(&t.name)
        ));
    }
    let cols = columns(&r.columns);
    out.push(format!(
        "INSERT INTO {table} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {}",
        qualified(trash_schema, &r.copy)
    ));
    for t in &r.triggers {
        let mode = match t.enabled.as_str() {
            "A" => "ALWAYS ",
            "R" => "REPLICA ",
            _ => "",
        };
        out.push(format!(
            "ALTER TABLE {table} ENABLE {mode}TRIGGER {}",
            ident(&t.name)
        ));
    }
    for s in &r.sequences {
        let Some(v) = s.last_value else { continue };
        let seq = qualified(&s.schema, &s.name);
        out.push(format!(
            "SELECT pg_catalog.setval({}, GREATEST({v}, CASE WHEN q.is_called THEN q.last_value ELSE {v} END), true) FROM {seq} q",
            literal(&seq)
        ));
    }
    out
}

/// A query whose rows say why a restore of these tables cannot run (a table that
/// has rows again).
pub fn not_empty_sql(moved: &[Moved]) -> String {
    let checks: Vec<String> = moved
        .iter()
        .filter(|m| m.rows.is_some())
        .map(|m| {
            let t = qualified(&m.schema, &m.name);
            format!(
                "SELECT {} WHERE EXISTS (SELECT 1 FROM ONLY {t})",
                literal(&format!(
                    "{}.{} has rows again (restore puts rows back into empty tables only)",
                    m.schema, m.name
                ))
            )
        })
        .collect();
    if checks.is_empty() {
        "SELECT 1 WHERE false".into()
    } else {
        checks.join(" UNION ALL ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rel(name: &str) -> Rel {
        Rel {
            schema: "public".into(),
            name: name.into(),
            kind: "r".into(),
            persistence: "p".into(),
        }
    }

    fn emptied(name: &str, kind: &str) -> Emptied {
        Emptied {
            schema: "public".into(),
            name: name.into(),
            kind: kind.into(),
            columns: vec!["id".into(), "v".into()],
            triggers: vec![Trigger {
                name: "tg".into(),
                enabled: "A".into(),
            }],
            sequences: vec![Sequence {
                schema: "public".into(),
                name: format!("{name}_id_seq"),
                last_value: Some(42),
            }],
        }
    }

    fn facts() -> TruncateFacts {
        TruncateFacts {
            named: vec![rel("p")],
            tables: vec![emptied("p", "r"), emptied("c", "r")],
            size: 8192,
        }
    }

    const CX: Context<'static> = Context {
        by: "alice",
        statement: "TRUNCATE p CASCADE",
        retention: Some(Duration::from_secs(60)),
        truncate_max_bytes: 10_000,
    };

    #[test]
    fn copies_then_truncates() {
        let p = plan(&facts(), true, true, 5, &CX).expect("plan");
        assert_eq!(
            &p.statements[..4],
            &[
                "CREATE SCHEMA \"pgwarden_trash_5\"",
                "CREATE TABLE \"pgwarden_trash_5\".\"1_p\" AS SELECT \"id\", \"v\" FROM ONLY \"public\".\"p\"",
                "CREATE TABLE \"pgwarden_trash_5\".\"2_c\" AS SELECT \"id\", \"v\" FROM ONLY \"public\".\"c\"",
                "TRUNCATE TABLE \"public\".\"p\" RESTART IDENTITY CASCADE",
            ]
        );
        assert!(
            p.statements[4].contains("'truncate'"),
            "{}",
            p.statements[4]
        );
        assert_eq!(p.moved.len(), 2);
        assert!(
            p.notice().contains("the rows of 2 tables"),
            "{}",
            p.notice()
        );
    }

    #[test]
    fn over_the_limit_or_foreign_is_not_faithful() {
        let mut f = facts();
        f.size = 10_001;
        let e = plan(&f, false, false, 1, &CX).unwrap_err();
        assert!(e.0.contains("truncate_max_size"), "{e}");
        let mut g = facts();
        g.tables.push(emptied("remote", "f"));
        assert!(plan(&g, false, false, 1, &CX)
            .unwrap_err()
            .0
            .contains("foreign"));
        let mut h = facts();
        h.tables[0].kind = "p".into();
        let p = plan(&h, false, false, 1, &CX).expect("partitioned parent: no copy of its own");
        assert_eq!(p.moved.len(), 1);
        assert_eq!(p.statements[2], "TRUNCATE TABLE \"public\".\"p\"");
    }

    #[test]
    fn restore_puts_rows_back_with_triggers_off() {
        let p = plan(&facts(), false, false, 5, &CX).expect("plan");
        let m = &p.moved[0];
        let r = m.rows.as_deref().expect("rows");
        assert_eq!(
            restore_rows("pgwarden_trash_5", m, r),
            vec![
                "ALTER TABLE \"public\".\"p\" DISABLE TRIGGER \"tg\"",
                "INSERT INTO \"public\".\"p\" (\"id\", \"v\") OVERRIDING SYSTEM VALUE SELECT \"id\", \"v\" FROM \"pgwarden_trash_5\".\"1_p\"",
                "ALTER TABLE \"public\".\"p\" ENABLE ALWAYS TRIGGER \"tg\"",
                "SELECT pg_catalog.setval(E'\"public\".\"p_id_seq\"', GREATEST(42, CASE WHEN q.is_called THEN q.last_value ELSE 42 END), true) FROM \"public\".\"p_id_seq\" q",
            ]
        );
        assert!(not_empty_sql(&p.moved).contains("has rows again"));
        assert_eq!(copy_name(1, &"x".repeat(80)).len(), 63);
    }
}
