//! Pure: answering a statement's [`CatalogAsk`]s from the target's catalog — the
//! one read-only query that asks them ([`sql`]), the reading of its rows
//! ([`read`]), PostgreSQL's rules for a column type change that needs no rewrite
//! ([`metadata_only`]), and the refined classes ([`apply`]).
//!
//! Names are resolved by the server itself (`to_regclass`, `to_regtype` in the
//! client's own session, with its search_path), right before the statement runs on
//! the same connection. Anything the query cannot show — a missing table or column,
//! a domain, another collation, a name that is not ASCII (pgwarden's query would be
//! read in the client's encoding) — leaves the ask unproven, and the statement keeps
//! its class.

use super::quote::{ident, literal, maybe_qualified};
use crate::classify::{CatalogAsk, Class, Statement};

const VARHDRSZ: i64 = 4;
const TEXT: u32 = 25;
const VARCHAR: u32 = 1043;
const VARBIT: u32 = 1562;
const NUMERIC: u32 = 1700;

/// The query that answers `asks`: one row per ask, `(index, a, b, c, d)` as text.
/// `None` when an ask cannot be put to the server exactly (a non-ASCII name, or a
/// NUL), so it stays unproven without asking.
pub fn sql(asks: &[CatalogAsk]) -> Option<String> {
    let mut parts = Vec::with_capacity(asks.len());
    for (i, ask) in asks.iter().enumerate() {
        let names: Vec<&str> = match ask {
            CatalogAsk::Widen {
                schema,
                table,
                column,
                type_name,
                ..
            } => schema
                .iter()
                .chain([table, column])
                .chain(type_name.iter())
                .map(String::as_str)
                .collect(),
            CatalogAsk::TempTable { name } => vec![name.as_str()],
        };
        if names.iter().any(|n| !n.is_ascii() || n.contains('\0')) {
            return None;
        }
        parts.push(match ask {
            CatalogAsk::Widen {
                schema,
                table,
                column,
                type_name,
                ..
            } => {
                let rel = maybe_qualified(schema.as_deref(), table);
                let ty: Vec<String> = type_name.iter().map(|n| ident(n)).collect();
                format!(
                    "SELECT {i}, a.atttypid::int8::text, a.atttypmod::text, t.oid::int8::text, \
                     (a.attcollation = t.typcollation)::text \
                     FROM (SELECT pg_catalog.to_regclass({rel}) AS r, \
                     pg_catalog.to_regtype({ty}) AS ty) x \
                     LEFT JOIN pg_catalog.pg_class c ON c.oid = x.r AND c.relkind IN ('r', 'p') \
                     LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
                     AND a.attname = {col} AND a.attnum > 0 AND NOT a.attisdropped \
                     LEFT JOIN pg_catalog.pg_type t ON t.oid = x.ty",
                    rel = literal(&rel),
                    ty = literal(&ty.join(".")),
                    col = literal(column),
                )
            }
            // The session's own temporary table, no triggers (a TRUNCATE trigger
            // could do anything), and the temporary schema first in the path
            // (after pg_catalog, where nobody can create tables), so no other
            // session can put a table of that name ahead of it.
            CatalogAsk::TempTable { name } => format!(
                "SELECT {i}, (c.relpersistence = 't' \
                 AND c.relnamespace = pg_catalog.pg_my_temp_schema() \
                 AND NOT c.relhastriggers \
                 AND (pg_catalog.array_remove(pg_catalog.current_schemas(true), \
                 'pg_catalog'::name))[1] = n.nspname)::text, \
                 NULL, NULL, NULL \
                 FROM (SELECT pg_catalog.to_regclass({rel}) AS r) x \
                 LEFT JOIN pg_catalog.pg_class c ON c.oid = x.r \
                 LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
                rel = literal(&ident(name)),
            ),
        });
    }
    (!parts.is_empty()).then(|| parts.join(" UNION ALL "))
}

/// Which asks the rows of [`sql`] prove, in order. A row that is missing, repeated
/// or unreadable proves nothing.
pub fn read(asks: &[CatalogAsk], rows: &[Vec<Option<String>>]) -> Vec<bool> {
    let mut proven = vec![false; asks.len()];
    let mut seen = vec![false; asks.len()];
    for row in rows {
        let Some(i) = row
            .first()
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|i| *i < asks.len())
        else {
            return vec![false; asks.len()];
        };
        if seen[i] {
            return vec![false; asks.len()];
        }
        seen[i] = true;
        let col = |n: usize| row.get(n).and_then(|v| v.as_deref());
        proven[i] = match &asks[i] {
            CatalogAsk::Widen { typmods, .. } => {
                let num = |n: usize| col(n).and_then(|v| v.parse::<i64>().ok());
                match (num(1), num(2), num(3), col(4)) {
                    (Some(old), Some(old_mod), Some(new), Some("true")) => {
                        match (u32::try_from(old), u32::try_from(new)) {
                            (Ok(old), Ok(new)) => metadata_only(old, old_mod, new, typmods),
                            _ => false,
                        }
                    }
                    _ => false,
                }
            }
            CatalogAsk::TempTable { .. } => col(1) == Some("true"),
        };
    }
    proven
}

/// The typmod PostgreSQL stores for type `ty` written with `mods`; `None` when it
/// would refuse them (the statement then fails, and pgwarden proves nothing).
fn new_typmod(ty: u32, mods: &[i64]) -> Option<i64> {
    match (ty, mods) {
        (TEXT | VARCHAR | NUMERIC | VARBIT, []) => Some(-1),
        (VARCHAR, [n]) if (1..=10_485_760).contains(n) => Some(n + VARHDRSZ),
        (VARBIT, [n]) if (1..=i64::from(i32::MAX) - 8).contains(n) => Some(*n),
        (NUMERIC, [p]) if (1..=1000).contains(p) => Some((p << 16) + VARHDRSZ),
        (NUMERIC, [p, s]) if (1..=1000).contains(p) && (-1000..=1000).contains(s) => {
            Some(((p << 16) | (s & 0x7ff)) + VARHDRSZ)
        }
        _ => None,
    }
}

fn numeric_precision(typmod: i64) -> i64 {
    ((typmod - VARHDRSZ) >> 16) & 0xffff
}

fn numeric_scale(typmod: i64) -> i64 {
    (((typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024
}

/// Whether changing a column of type `old` (typmod `old_mod`) to `new` written with
/// `mods` is metadata-only in PostgreSQL: a binary-coercible change, or a length
/// coercion its support function removes (`varchar_support`, `numeric_support`,
/// `varbit_support`), so `ATColumnChangeRequiresRewrite` finds no rewrite and no
/// value is checked or changed.
pub fn metadata_only(old: u32, old_mod: i64, new: u32, mods: &[i64]) -> bool {
    let Some(new_mod) = new_typmod(new, mods) else {
        return false;
    };
    match (old, new) {
        (VARCHAR, VARCHAR) => new_mod < 0 || (old_mod >= 0 && old_mod <= new_mod),
        (VARCHAR, TEXT) | (TEXT, TEXT) => true,
        (TEXT, VARCHAR) => new_mod < 0,
        (NUMERIC, NUMERIC) => {
            new_mod < VARHDRSZ
                || (old_mod >= VARHDRSZ
                    && numeric_scale(new_mod) == numeric_scale(old_mod)
                    && numeric_precision(new_mod) >= numeric_precision(old_mod))
        }
        (VARBIT, VARBIT) => new_mod <= 0 || (old_mod > 0 && old_mod <= new_mod),
        _ => false,
    }
}

/// The statement's classes once its asks are answered: a type change whose every
/// column change is proven metadata-only is `alter.column_widen`; a TRUNCATE whose
/// every table is proven the session's own temporary one is `write`. The asks are
/// used up either way (the statement is not looked up again).
pub fn apply(stmt: &mut Statement, proven: &[bool]) {
    let asks = std::mem::take(&mut stmt.asks);
    if asks.is_empty() || proven.len() != asks.len() || !proven.iter().all(|p| *p) {
        return;
    }
    let (from, to) = match asks[0] {
        CatalogAsk::Widen { .. } => (Class::AlterColumnType, Class::AlterColumnWiden),
        CatalogAsk::TempTable { .. } => (Class::Truncate, Class::Write),
    };
    let same_kind = asks
        .iter()
        .all(|a| std::mem::discriminant(a) == std::mem::discriminant(&asks[0]));
    if !same_kind {
        return;
    }
    for c in stmt.classes.iter_mut() {
        if *c == from {
            *c = to;
        }
    }
    stmt.classes.sort();
    stmt.classes.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mods(v: &[i64]) -> Vec<i64> {
        v.to_vec()
    }

    /// (case, old type, old typmod, new type, new mods, metadata-only?)
    type Case = (&'static str, u32, i64, u32, &'static [i64], bool);
    const CASES: &[Case] = &[
        (
            "varchar(40) to varchar(120)",
            VARCHAR,
            44,
            VARCHAR,
            &[120],
            true,
        ),
        (
            "varchar(40) to varchar(40)",
            VARCHAR,
            44,
            VARCHAR,
            &[40],
            true,
        ),
        (
            "varchar(40) to varchar(39)",
            VARCHAR,
            44,
            VARCHAR,
            &[39],
            false,
        ),
        ("varchar(40) to varchar", VARCHAR, 44, VARCHAR, &[], true),
        ("varchar to varchar(40)", VARCHAR, -1, VARCHAR, &[40], false),
        ("varchar(40) to text", VARCHAR, 44, TEXT, &[], true),
        ("text to varchar", TEXT, -1, VARCHAR, &[], true),
        ("text to varchar(10)", TEXT, -1, VARCHAR, &[10], false),
        ("text to text", TEXT, -1, TEXT, &[], true),
        (
            "numeric(10,2) to numeric(12,2)",
            NUMERIC,
            (10 << 16) + 2 + 4,
            NUMERIC,
            &[12, 2],
            true,
        ),
        (
            "numeric(10,2) to numeric(12,3)",
            NUMERIC,
            (10 << 16) + 2 + 4,
            NUMERIC,
            &[12, 3],
            false,
        ),
        (
            "numeric(10,2) to numeric(9,2)",
            NUMERIC,
            (10 << 16) + 2 + 4,
            NUMERIC,
            &[9, 2],
            false,
        ),
        (
            "numeric(10,2) to numeric",
            NUMERIC,
            (10 << 16) + 2 + 4,
            NUMERIC,
            &[],
            true,
        ),
        (
            "numeric(10) to numeric(12)",
            NUMERIC,
            (10 << 16) + 4,
            NUMERIC,
            &[12],
            true,
        ),
        (
            "numeric to numeric(12,2)",
            NUMERIC,
            -1,
            NUMERIC,
            &[12, 2],
            false,
        ),
        (
            "numeric(5,-2) to numeric(6,-2)",
            NUMERIC,
            (5 << 16) + (-2 & 0x7ff) + 4,
            NUMERIC,
            &[6, -2],
            true,
        ),
        (
            "numeric(5,-2) to numeric(6,2)",
            NUMERIC,
            (5 << 16) + (-2 & 0x7ff) + 4,
            NUMERIC,
            &[6, 2],
            false,
        ),
        ("varbit(8) to varbit(16)", VARBIT, 8, VARBIT, &[16], true),
        ("varbit(8) to varbit(4)", VARBIT, 8, VARBIT, &[4], false),
        ("varbit to varbit(4)", VARBIT, -1, VARBIT, &[4], false),
        ("int4 to int8", 23, -1, 20, &[], false),
        ("varchar(40) to int8", VARCHAR, 44, 20, &[], false),
        ("text to varchar(0)", TEXT, -1, VARCHAR, &[0], false),
        (
            "varchar(4) to varchar(-1)",
            VARCHAR,
            8,
            VARCHAR,
            &[-1],
            false,
        ),
        (
            "varchar(4) to varchar(1,2)",
            VARCHAR,
            8,
            VARCHAR,
            &[1, 2],
            false,
        ),
        ("text(5)", TEXT, -1, TEXT, &[5], false),
        ("bpchar(4) to bpchar(8)", 1042, 8, 1042, &[8], false),
    ];

    #[test]
    fn type_changes() {
        for (name, old, old_mod, new, m, want) in CASES {
            assert_eq!(
                metadata_only(*old, *old_mod, *new, &mods(m)),
                *want,
                "{name}"
            );
        }
    }

    fn widen(column: &str) -> CatalogAsk {
        CatalogAsk::Widen {
            schema: Some("public".into()),
            table: "t".into(),
            column: column.into(),
            type_name: vec!["pg_catalog".into(), "varchar".into()],
            typmods: vec![50],
        }
    }

    fn row(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|s| s.map(str::to_string)).collect()
    }

    #[test]
    fn rows_are_read_by_index() {
        let asks = [widen("a"), widen("b")];
        let yes = |i: &str| {
            row(&[
                Some(i),
                Some("1043"),
                Some("24"),
                Some("1043"),
                Some("true"),
            ])
        };
        assert_eq!(read(&asks, &[yes("1"), yes("0")]), [true, true]);
        // Another collation, a missing column, a missing row.
        let other = row(&[
            Some("1"),
            Some("1043"),
            Some("24"),
            Some("1043"),
            Some("false"),
        ]);
        assert_eq!(read(&asks, &[yes("0"), other]), [true, false]);
        let missing = row(&[Some("1"), None, None, Some("1043"), None]);
        assert_eq!(read(&asks, &[yes("0"), missing]), [true, false]);
        assert_eq!(read(&asks, &[yes("0")]), [true, false]);
        // Repeated or out-of-range indexes prove nothing.
        assert_eq!(read(&asks, &[yes("0"), yes("0")]), [false, false]);
        assert_eq!(read(&asks, &[yes("2")]), [false, false]);
        assert_eq!(read(&asks, &[row(&[None])]), [false, false]);
        // Narrowing.
        let narrow = row(&[
            Some("0"),
            Some("1043"),
            Some("104"),
            Some("1043"),
            Some("true"),
        ]);
        assert_eq!(read(&asks, &[narrow]), [false, false]);
    }

    #[test]
    fn temp_rows() {
        let asks = [CatalogAsk::TempTable { name: "x".into() }];
        assert_eq!(read(&asks, &[row(&[Some("0"), Some("true")])]), [true]);
        assert_eq!(read(&asks, &[row(&[Some("0"), Some("false")])]), [false]);
        assert_eq!(read(&asks, &[row(&[Some("0"), None])]), [false]);
    }

    #[test]
    fn names_are_quoted_and_non_ascii_is_not_asked() {
        let q = sql(&[CatalogAsk::TempTable {
            name: "it's \"x\"\\".into(),
        }])
        .unwrap_or_default();
        assert!(q.contains(r#"to_regclass(E'"it''s ""x""\\"')"#), "{q}");
        assert_eq!(
            sql(&[CatalogAsk::TempTable {
                name: "caf\u{e9}".into()
            }]),
            None
        );
        assert_eq!(sql(&[]), None);
    }

    fn stmt(classes: Vec<Class>, asks: Vec<CatalogAsk>) -> Statement {
        Statement {
            sql: String::new(),
            classes,
            objects: Vec::new(),
            fingerprint: String::new(),
            prepares: None,
            executes: None,
            deallocates: None,
            asks,
        }
    }

    #[test]
    fn classes_change_only_when_everything_is_proven() {
        let mut s = stmt(
            vec![Class::AlterColumnType, Class::AlterOther],
            vec![widen("a"), widen("b")],
        );
        apply(&mut s, &[true, false]);
        assert_eq!(s.classes, [Class::AlterColumnType, Class::AlterOther]);
        assert!(s.asks.is_empty());

        let mut s = stmt(vec![Class::AlterColumnType], vec![widen("a")]);
        apply(&mut s, &[true]);
        assert_eq!(s.classes, [Class::AlterColumnWiden]);

        let mut s = stmt(
            vec![Class::Truncate],
            vec![CatalogAsk::TempTable { name: "x".into() }],
        );
        apply(&mut s, &[true]);
        assert_eq!(s.classes, [Class::Write]);

        let mut s = stmt(
            vec![Class::Truncate],
            vec![CatalogAsk::TempTable { name: "x".into() }],
        );
        apply(&mut s, &[]);
        assert_eq!(s.classes, [Class::Truncate]);
    }
}
