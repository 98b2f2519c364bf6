//! The catalog queries and the reading of their text rows into [`TableInfo`]s.
//!
//! Two read-only queries over `pg_catalog`, each one simple-protocol Query:
//! [`tables_sql`] (one row per relation) and [`keys_sql`] (one row per column of
//! each qualifying unique index, in index order). System schemas are left out;
//! temporary schemas are kept, because an unqualified name may resolve to them.

use std::collections::BTreeMap;

use super::TableInfo;

/// oid, schema, name, relkind, estimate, has_triggers, has_rules, has_children,
/// cascades_on_delete, cascades_on_update. Each flag is a hashed subplan (one scan
/// of its catalog) and the estimate reads the statistics function directly: with
/// correlated EXISTS and `pg_stat_all_tables` (which groups over every index) the
/// planner's cost for 2,000 tables passed `jit_optimize_above_cost`, and the
/// JIT-compiled read took over half a second on every session's first write.
const TABLES_SELECT: &str =
    "SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, \
 GREATEST(c.reltuples::int8, pg_catalog.pg_stat_get_live_tuples(c.oid), 0), \
 c.oid IN (SELECT g.tgrelid FROM pg_catalog.pg_trigger g WHERE NOT g.tgisinternal), \
 c.oid IN (SELECT w.ev_class FROM pg_catalog.pg_rewrite w WHERE w.rulename <> '_RETURN'), \
 c.relhassubclass, \
 c.oid IN (SELECT f.confrelid FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' \
   AND f.confdeltype IN ('c', 'n', 'd')), \
 c.oid IN (SELECT f.confrelid FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' \
   AND f.confupdtype IN ('c', 'n', 'd')) \
 FROM pg_catalog.pg_class c \
 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'";

/// The tables query: every relation of the user schemas (`names` `None`), or
/// only those named one of `names` (in any schema: an unqualified name may mean
/// any of them). Each name is sent as a literal.
pub fn tables_sql(names: Option<&[String]>) -> String {
    let only = names.map_or(String::new(), |n| {
        format!(" AND c.relname IN ({})", literals(n))
    });
    format!("{TABLES_SELECT}{only} ORDER BY 2, 3")
}

/// The keys query, for every table or only for the tables named one of `names`.
pub fn keys_sql(names: Option<&[String]>) -> String {
    let only = names.map_or(String::new(), |n| {
        format!(
            " AND i.indrelid IN (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname IN ({}))",
            literals(n)
        )
    });
    format!("{KEYS_SELECT}{only} ORDER BY 1, 2, k.ord")
}

/// `names` as a list of SQL literals (an empty list matches nothing: `NULL`).
fn literals(names: &[String]) -> String {
    if names.is_empty() {
        return "NULL".to_string();
    }
    names
        .iter()
        .map(|n| super::quote::literal(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// table oid, index oid, column: the key columns (not INCLUDE columns) of unique,
/// valid, live, immediate, non-partial, expression-free indexes whose key columns
/// are all NOT NULL. The indexes with a nullable key column are one hashed subplan,
/// not a correlated one per index (whose cost passed `jit_above_cost` at 2,000
/// tables).
const KEYS_SELECT: &str = "SELECT i.indrelid::int8, i.indexrelid::int8, a.attname::text \
 FROM pg_catalog.pg_index i \
 CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
 JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
 WHERE i.indisunique AND i.indisvalid AND i.indislive AND i.indimmediate \
   AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts \
   AND i.indexrelid NOT IN (SELECT j.indexrelid FROM pg_catalog.pg_index j \
     CROSS JOIN LATERAL pg_catalog.unnest(j.indkey::int2[]) WITH ORDINALITY AS x(attnum, ord) \
     JOIN pg_catalog.pg_attribute b ON b.attrelid = j.indrelid AND b.attnum = x.attnum \
     WHERE x.ord <= j.indnkeyatts AND NOT b.attnotnull)";

/// A row that is not what the query returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected catalog row: {0}")]
pub struct LoadError(String);

type Row<'a> = [Option<&'a str>];

fn text<'a>(row: &Row<'a>, i: usize, what: &str) -> Result<&'a str, LoadError> {
    row.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| LoadError(format!("{what} missing")))
}

fn number<T: std::str::FromStr>(row: &Row<'_>, i: usize, what: &str) -> Result<T, LoadError> {
    text(row, i, what)?
        .parse()
        .map_err(|_| LoadError(format!("{what} is not a number")))
}

fn flag(row: &Row<'_>, i: usize, what: &str) -> Result<bool, LoadError> {
    match text(row, i, what)? {
        "t" => Ok(true),
        "f" => Ok(false),
        other => Err(LoadError(format!("{what} is '{other}', not t or f"))),
    }
}

/// Reads [`TABLES_SQL`] and [`KEYS_SQL`] rows. Any malformed row fails the whole
/// load (the old catalog, or none, stays: "unknown", never a guess).
pub fn tables(
    tables: &[Vec<Option<&str>>],
    keys: &[Vec<Option<&str>>],
) -> Result<Vec<TableInfo>, LoadError> {
    // table oid → index oid → columns in index order
    let mut by_table: BTreeMap<u32, BTreeMap<u32, Vec<String>>> = BTreeMap::new();
    for row in keys {
        let t: u32 = number(row, 0, "indrelid")?;
        let i: u32 = number(row, 1, "indexrelid")?;
        let col = text(row, 2, "attname")?.to_string();
        by_table
            .entry(t)
            .or_default()
            .entry(i)
            .or_default()
            .push(col);
    }
    let mut out = Vec::with_capacity(tables.len());
    for row in tables {
        let oid: u32 = number(row, 0, "oid")?;
        let kind = text(row, 3, "relkind")?;
        let mut chars = kind.chars();
        let (Some(kind), None) = (chars.next(), chars.next()) else {
            return Err(LoadError(format!("relkind '{kind}'")));
        };
        out.push(TableInfo {
            oid,
            schema: text(row, 1, "nspname")?.to_string(),
            name: text(row, 2, "relname")?.to_string(),
            kind,
            estimate: number(row, 4, "estimate")?,
            keys: by_table
                .remove(&oid)
                .map(|m| m.into_values().collect())
                .unwrap_or_default(),
            has_triggers: flag(row, 5, "has_triggers")?,
            has_rules: flag(row, 6, "has_rules")?,
            has_children: flag(row, 7, "relhassubclass")?,
            cascades_on_delete: flag(row, 8, "cascades_on_delete")?,
            cascades_on_update: flag(row, 9, "cascades_on_update")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_queries_for_some_names_send_them_as_literals() {
        let names = vec!["t".to_string(), "it's".to_string()];
        let t = tables_sql(Some(&names));
        assert!(
            t.contains(" AND c.relname IN (E't', E'it''s') ORDER BY 2, 3"),
            "{t}"
        );
        let k = keys_sql(Some(&names));
        assert!(
            k.contains("WHERE c.relname IN (E't', E'it''s')) ORDER BY 1, 2, k.ord"),
            "{k}"
        );
        assert!(tables_sql(Some(&[])).contains("IN (NULL)"));
        assert!(!tables_sql(None).contains("relname IN"));
    }

    use super::*;

    fn row(v: &[&'static str]) -> Vec<Option<&'static str>> {
        v.iter().map(|s| Some(*s)).collect()
    }

    #[test]
    fn rows_become_tables_with_their_keys() {
        let t = tables(
            &[row(&[
                "10", "public", "t", "r", "5", "f", "f", "f", "t", "f",
            ])],
            &[
                row(&["10", "20", "id"]),
                row(&["10", "21", "a"]),
                row(&["10", "21", "b"]),
                row(&["99", "30", "x"]),
            ],
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].keys,
            vec![vec!["id".to_string()], vec!["a".into(), "b".into()]]
        );
        assert!(t[0].cascades_on_delete && !t[0].has_triggers);
        assert_eq!((t[0].kind, t[0].estimate), ('r', 5));
    }

    #[test]
    fn malformed_rows_fail_the_load() {
        let good = ["10", "public", "t", "r", "5", "f", "f", "f", "f", "f"];
        for (i, bad) in [(0, "x"), (3, "rr"), (4, "-1"), (5, "yes")] {
            let mut r = row(&good);
            r[i] = Some(bad);
            assert!(tables(&[r], &[]).is_err(), "field {i} = {bad}");
        }
        let mut r = row(&good);
        r[1] = None;
        assert!(tables(&[r], &[]).is_err());
        assert!(tables(&[], &[row(&["1", "2"])]).is_err());
    }
}
