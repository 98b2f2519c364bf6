//! Pure: is a statement a plain `DELETE/UPDATE … WHERE key = value` — one table, no
//! joins, CTEs, subqueries or function calls anywhere, and a WHERE clause that is an
//! AND of plain comparisons, some of them `column = constant or parameter`?
//!
//! Only the shape is judged here; whether the pinned columns form a key of the table
//! is the catalog's answer ([`super::Catalog::key_bound`]). Anything outside the
//! narrow shape is `None` ("probe it"), never a guess.

use pg_query::protobuf::{AExprKind, BoolExprType};

use crate::classify::tree::{to_tree, Obj, G};

/// A DELETE/UPDATE whose WHERE pins some columns to single values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShape {
    /// The schema as written (`None`: unqualified).
    pub schema: Option<String>,
    pub table: String,
    /// Columns compared with `=` to a constant or a parameter, ANDed at the top.
    pub pinned: Vec<String>,
    pub is_delete: bool,
}

/// Node types a key-shaped statement may contain (no FuncCall, SubLink, CTE, …).
const ALLOWED: &[&str] = &[
    "DeleteStmt",
    "UpdateStmt",
    "RangeVar",
    "Alias",
    "ResTarget",
    "ReturningClause",
    "ColumnRef",
    "String",
    "AStar",
    "AConst",
    "Integer",
    "Float",
    "Boolean",
    "BitString",
    "ParamRef",
    "TypeCast",
    "TypeName",
    "AExpr",
    "BoolExpr",
    "NullTest",
    "List",
];

/// Built-in operators (unqualified) allowed in comparisons and SET expressions.
const OPERATORS: &[&str] = &[
    "=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "||",
];

fn k<T: Into<i32>>(v: T) -> i64 {
    i64::from(v.into())
}

/// The key shape of `sql`, if it is one statement of that narrow form. A long text
/// is parsed on the classifier's big-stack threads: its tree may nest as deep as the
/// parser allows.
pub fn key_shape(sql: &str) -> Option<KeyShape> {
    crate::classify::deep::read(sql, shape_of).flatten()
}

fn shape_of(sql: &str) -> Option<KeyShape> {
    let parsed = pg_query::parse(sql, 0).ok()?;
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let tree = to_tree(raw.stmt.as_deref()?);
    if !only_allowed(&tree) {
        return None;
    }
    let (o, is_delete) = match tree.obj()? {
        o if o.name == "DeleteStmt" => (o, true),
        o if o.name == "UpdateStmt" => (o, false),
        _ => return None,
    };
    // One table: no USING (DELETE) or FROM (UPDATE) list joins others in.
    if !o.list("using_clause").is_empty() || !o.list("from_clause").is_empty() {
        return None;
    }
    let rel = o.child("relation")?;
    if !rel.text("catalogname").is_empty() {
        return None;
    }
    let table = rel.text("relname").to_string();
    let alias = rel.child("alias").map(|a| a.text("aliasname"));
    let schema = Some(rel.text("schemaname"))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let names = Names {
        table: &table,
        alias,
    };
    // RETURNING of plain columns only (no OLD/NEW aliases: `options` stays empty).
    let returning = o.child("returning_clause");
    if returning.is_some_and(|r| !r.list("options").is_empty()) {
        return None;
    }
    for r in returning.map_or(&[][..], |r| r.list("exprs")) {
        let val = r.obj()?.get("val");
        val.is("ColumnRef")?;
    }
    let mut pinned = Vec::new();
    conjuncts(o.get("where_clause"), &names, &mut pinned)?;
    if pinned.is_empty() {
        return None;
    }
    pinned.sort();
    pinned.dedup();
    Some(KeyShape {
        schema,
        table,
        pinned,
        is_delete,
    })
}

/// Every node is of an allowed type, every operator a plain built-in one, every
/// boolean an AND.
fn only_allowed(g: &G) -> bool {
    match g {
        G::List(items) => items.iter().all(only_allowed),
        G::Obj(o) => {
            if !ALLOWED.contains(&o.name) {
                return false;
            }
            if o.name == "AExpr" && (o.int("kind") != k(AExprKind::AexprOp) || op(o).is_none()) {
                return false;
            }
            if o.name == "BoolExpr" && o.int("boolop") != k(BoolExprType::AndExpr) {
                return false;
            }
            o.fields.iter().all(|(_, v)| only_allowed(v))
        }
        _ => true,
    }
}

fn op(o: &Obj) -> Option<&str> {
    let [name] = o.list("name") else {
        return None;
    };
    let s = name.is("String")?.text("sval");
    OPERATORS.contains(&s).then_some(s)
}

struct Names<'a> {
    table: &'a str,
    alias: Option<&'a str>,
}

/// The column a ColumnRef names, if it names one of the target's columns.
fn column(g: &G, names: &Names<'_>) -> Option<String> {
    let o = g.is("ColumnRef")?;
    let parts: Vec<&str> = o
        .list("fields")
        .iter()
        .map(|f| f.is("String").map(|s| s.text("sval")))
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [c] => Some(c.to_string()),
        [rel, c] if Some(*rel) == names.alias || (names.alias.is_none() && *rel == names.table) => {
            Some(c.to_string())
        }
        _ => None,
    }
}

/// A single value that does not depend on the row: a constant, a parameter, or a
/// cast of one.
fn is_value(g: &G) -> bool {
    match g.obj() {
        Some(o) if o.name == "AConst" || o.name == "ParamRef" => true,
        Some(o) if o.name == "TypeCast" => is_value(o.get("arg")),
        _ => false,
    }
}

/// Walks the AND tree of the WHERE clause; every leaf must be a comparison of a
/// column with a value (or a NULL test of a column); `=` leaves pin their column.
fn conjuncts(g: &G, names: &Names<'_>, pinned: &mut Vec<String>) -> Option<()> {
    let o = g.obj()?;
    match o.name {
        "BoolExpr" => {
            for a in o.list("args") {
                conjuncts(a, names, pinned)?;
            }
            Some(())
        }
        "NullTest" => column(o.get("arg"), names).map(|_| ()),
        "AExpr" => {
            let (l, r) = (o.get("lexpr"), o.get("rexpr"));
            let col = match (column(l, names), column(r, names)) {
                (Some(c), None) if is_value(r) => c,
                (None, Some(c)) if is_value(l) => c,
                _ => return None,
            };
            if op(o) == Some("=") {
                pinned.push(col);
            }
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(sql: &str) -> Option<Vec<String>> {
        key_shape(sql).map(|s| s.pinned)
    }

    #[test]
    fn shapes() {
        let yes: &[(&str, &[&str])] = &[
            ("DELETE FROM t WHERE id = 1", &["id"]),
            ("DELETE FROM t WHERE id = $1", &["id"]),
            ("DELETE FROM t WHERE $1 = id", &["id"]),
            ("DELETE FROM public.t AS x WHERE x.id = '7'::int", &["id"]),
            ("DELETE FROM t WHERE t.id = 1 RETURNING id", &["id"]),
            (
                "UPDATE t SET v = v + 1, w = $2 WHERE a = $1 AND b = 2 AND c > 0",
                &["a", "b"],
            ),
            (
                "UPDATE t SET v = 1 WHERE id = 1 AND deleted_at IS NULL",
                &["id"],
            ),
            ("DELETE FROM ONLY t WHERE id = 1", &["id"]),
        ];
        for (sql, want) in yes {
            let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(pins(sql), Some(want), "{sql}");
        }
        let no = [
            "DELETE FROM t",
            "DELETE FROM t WHERE id > 0",
            "DELETE FROM t WHERE id = 1 OR id = 2",
            "DELETE FROM t WHERE NOT id = 1",
            "DELETE FROM t WHERE id = id",
            "DELETE FROM t WHERE id = other.id",
            "DELETE FROM t AS x WHERE t.id = 1",
            "DELETE FROM t WHERE id = (SELECT max(id) FROM t)",
            "DELETE FROM t WHERE id = ANY($1)",
            "DELETE FROM t WHERE id IN (1, 2)",
            "DELETE FROM t WHERE id = abs(-1)",
            "DELETE FROM t WHERE id = 1 AND wipe()",
            "DELETE FROM t WHERE id OPERATOR(public.=) 1",
            "DELETE FROM t WHERE id = 1 RETURNING wipe()",
            "DELETE FROM t WHERE id = 1 RETURNING id + 1",
            "UPDATE t SET v = 1 WHERE id = 1 RETURNING WITH (OLD AS o) o.v",
            "DELETE FROM t USING u WHERE t.id = 1",
            "UPDATE t SET v = wipe() WHERE id = 1",
            "UPDATE t SET v = u.v FROM u WHERE t.id = 1",
            "WITH d AS (DELETE FROM u) DELETE FROM t WHERE id = 1",
            "DELETE FROM t WHERE id = 1; DELETE FROM t",
            "DELETE FROM t WHERE id = 1 COLLATE \"C\"",
            "DELETE FROM t WHERE CURRENT OF c",
            "INSERT INTO t VALUES (1)",
            "SELECT 1",
            "not sql",
        ];
        for sql in no {
            assert_eq!(pins(sql), None, "{sql}");
        }
        let s = key_shape("UPDATE app.t SET v = 1 WHERE id = 1").unwrap();
        assert_eq!(
            (s.schema.as_deref(), s.table.as_str(), s.is_delete),
            (Some("app"), "t", false)
        );
    }
}
