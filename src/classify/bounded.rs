//! Is a DELETE/UPDATE bounded? A small, conservative constant folder over WHERE clauses.
//!
//! A predicate is judged one of: a constant (`true` makes the statement unbounded),
//! `Restricts` (an ordinary filter on the target's rows, e.g. `id = 1`,
//! `created_at < now()`), or `Unknown` (parameters, function results, uncorrelated
//! subqueries…: "maybe unbounded"). Anything the folder does not understand is
//! `Unknown`, never `Restricts`, unless it is a plain comparison of a column with
//! something that is not the same column.

use super::tree::{Obj, G};
use pg_query::protobuf::{AExprKind, BoolExprType, BoolTestType, NullTestType, SubLinkType};

/// The verdict on a WHERE clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Bounded,
    Maybe,
    Unbounded,
}

/// The DELETE/UPDATE target, used to recognise correlated subqueries.
#[derive(Debug, Clone, Copy)]
pub struct ModifiedTable<'a> {
    pub relname: &'a str,
    pub alias: Option<&'a str>,
}

/// Judges a WHERE clause (`None`: no WHERE at all).
pub fn judge(where_clause: Option<&G>, target: ModifiedTable<'_>) -> Bound {
    let Some(w) = where_clause else {
        return Bound::Unbounded;
    };
    if w.is("CurrentOfExpr").is_some() {
        return Bound::Bounded;
    }
    match pred(w, target) {
        Pred::Const(Val::Bool(true)) => Bound::Unbounded,
        Pred::Const(Val::Bool(false)) | Pred::Const(Val::Null) => Bound::Bounded,
        Pred::Const(_) => Bound::Maybe,
        Pred::Restricts => Bound::Bounded,
        Pred::Unknown => Bound::Maybe,
    }
}

/// A folded constant.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Pred {
    Const(Val),
    Restricts,
    Unknown,
}

fn k<T: Into<i32>>(v: T) -> i64 {
    i64::from(v.into())
}

/// PostgreSQL's boolean input: t/true/y/yes/on/1 and f/false/n/no/off/0 (prefixes allowed).
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    let is_prefix = |full: &str| full.starts_with(&s);
    match s.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        "o" => None,
        _ if is_prefix("true") || is_prefix("yes") || s == "on" => Some(true),
        _ if is_prefix("false") || is_prefix("no") || s == "off" || s == "of" => Some(false),
        _ => None,
    }
}

fn as_bool(v: &Val) -> Option<Val> {
    match v {
        Val::Null => Some(Val::Null),
        Val::Bool(b) => Some(Val::Bool(*b)),
        Val::Str(s) => parse_bool(s).map(Val::Bool),
        Val::Int(_) | Val::Num(_) => None,
    }
}

fn const_of(o: &Obj) -> Val {
    if o.flag("isnull") {
        return Val::Null;
    }
    match o.child("val") {
        Some(v) => match v.name {
            "Integer" => Val::Int(v.int("ival")),
            "Float" => v
                .text("fval")
                .parse::<f64>()
                .map(Val::Num)
                .unwrap_or(Val::Str(v.text("fval").to_string())),
            "Boolean" => Val::Bool(v.flag("boolval")),
            "String" => Val::Str(v.text("sval").to_string()),
            "BitString" => Val::Str(v.text("bsval").to_string()),
            _ => Val::Null,
        },
        // An integer 0 / false / '' has all its fields at their defaults.
        None => Val::Null,
    }
}

/// The last name of a TypeName (`pg_catalog.bool` → `bool`).
fn type_last(o: &Obj) -> &str {
    o.list("names")
        .last()
        .and_then(|n| n.is("String"))
        .map(|s| s.text("sval"))
        .unwrap_or("")
}

fn cast(v: Val, ty: &str) -> Option<Val> {
    if v == Val::Null {
        return Some(Val::Null);
    }
    match ty {
        "bool" | "boolean" => match v {
            Val::Int(i) => Some(Val::Bool(i != 0)),
            other => as_bool(&other),
        },
        "int2" | "int4" | "int8" | "integer" | "smallint" | "bigint" => match v {
            Val::Int(i) => Some(Val::Int(i)),
            Val::Str(s) => s.trim().parse::<i64>().ok().map(Val::Int),
            Val::Bool(b) if ty == "int4" || ty == "integer" => Some(Val::Int(i64::from(b))),
            _ => None,
        },
        "numeric" | "float4" | "float8" => num(&v).map(Val::Num),
        "text" | "varchar" | "bpchar" | "name" => match v {
            Val::Str(s) => Some(Val::Str(s)),
            Val::Int(i) => Some(Val::Str(i.to_string())),
            Val::Bool(b) => Some(Val::Str(if b { "true" } else { "false" }.to_string())),
            _ => None,
        },
        _ => None,
    }
}

fn num(v: &Val) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Num(f) => Some(*f),
        Val::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

fn op_name(o: &Obj) -> &str {
    o.list("name")
        .last()
        .and_then(|n| n.is("String"))
        .map(|s| s.text("sval"))
        .unwrap_or("")
}

/// Compares two constants with a comparison operator; `None` if not comparable here.
fn compare(op: &str, a: &Val, b: &Val) -> Option<Val> {
    if *a == Val::Null || *b == Val::Null {
        return Some(Val::Null);
    }
    let ord = match (a, b) {
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        (Val::Bool(_), _) | (_, Val::Bool(_)) => {
            let x = as_bool(a)?;
            let y = as_bool(b)?;
            match (x, y) {
                (Val::Bool(x), Val::Bool(y)) => x.cmp(&y),
                _ => return None,
            }
        }
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        _ => num(a)?.partial_cmp(&num(b)?)?,
    };
    use std::cmp::Ordering::*;
    let r = match op {
        "=" => ord == Equal,
        "<>" | "!=" => ord != Equal,
        "<" => ord == Less,
        ">" => ord == Greater,
        "<=" => ord != Greater,
        ">=" => ord != Less,
        _ => return None,
    };
    Some(Val::Bool(r))
}

fn arith(op: &str, a: &Val, b: &Val) -> Option<Val> {
    if *a == Val::Null || *b == Val::Null {
        return Some(Val::Null);
    }
    match (op, a, b) {
        ("||", Val::Str(x), Val::Str(y)) => Some(Val::Str(format!("{x}{y}"))),
        ("+", Val::Int(x), Val::Int(y)) => x.checked_add(*y).map(Val::Int),
        ("-", Val::Int(x), Val::Int(y)) => x.checked_sub(*y).map(Val::Int),
        ("*", Val::Int(x), Val::Int(y)) => x.checked_mul(*y).map(Val::Int),
        ("+", _, _) => Some(Val::Num(num(a)? + num(b)?)),
        ("-", _, _) => Some(Val::Num(num(a)? - num(b)?)),
        ("*", _, _) => Some(Val::Num(num(a)? * num(b)?)),
        _ => None,
    }
}

fn and3(a: &Val, b: &Val) -> Val {
    match (a, b) {
        (Val::Bool(false), _) | (_, Val::Bool(false)) => Val::Bool(false),
        (Val::Bool(true), Val::Bool(true)) => Val::Bool(true),
        _ => Val::Null,
    }
}

fn or3(a: &Val, b: &Val) -> Val {
    match (a, b) {
        (Val::Bool(true), _) | (_, Val::Bool(true)) => Val::Bool(true),
        (Val::Bool(false), Val::Bool(false)) => Val::Bool(false),
        _ => Val::Null,
    }
}

fn not3(a: &Val) -> Val {
    match a {
        Val::Bool(b) => Val::Bool(!b),
        _ => Val::Null,
    }
}

/// A SELECT that reads no table: `SELECT <one expr>` without FROM/WHERE/GROUP/HAVING.
fn tableless_select(g: &G) -> Option<&Obj> {
    let s = g.is("SelectStmt")?;
    let only_allowed = s
        .fields
        .iter()
        .all(|(k, _)| matches!(*k, "target_list" | "limit_option" | "op"));
    (only_allowed && s.list("target_list").len() == 1).then_some(s)
}

fn select_target_val(s: &Obj) -> Option<&G> {
    s.list("target_list")
        .first()
        .and_then(|t| t.is("ResTarget"))
        .map(|rt| rt.get("val"))
}

/// Folds an expression without column references to a constant.
pub fn fold(g: &G) -> Option<Val> {
    let o = g.obj()?;
    match o.name {
        "AConst" => Some(const_of(o)),
        "TypeCast" => {
            let v = fold(o.get("arg"))?;
            cast(v, o.child("type_name").map(type_last).unwrap_or(""))
        }
        "AExpr" => fold_aexpr(o),
        "BoolExpr" => {
            let args: Vec<Val> = o
                .list("args")
                .iter()
                .map(|a| fold(a).and_then(|v| as_bool(&v)))
                .collect::<Option<_>>()?;
            let op = o.int("boolop");
            if op == k(BoolExprType::NotExpr) {
                args.first().map(not3)
            } else if op == k(BoolExprType::AndExpr) {
                Some(args.iter().fold(Val::Bool(true), |acc, v| and3(&acc, v)))
            } else if op == k(BoolExprType::OrExpr) {
                Some(args.iter().fold(Val::Bool(false), |acc, v| or3(&acc, v)))
            } else {
                None
            }
        }
        "NullTest" => {
            let v = fold(o.get("arg"))?;
            let is_null = v == Val::Null;
            if o.int("nulltesttype") == k(NullTestType::IsNotNull) {
                Some(Val::Bool(!is_null))
            } else {
                Some(Val::Bool(is_null))
            }
        }
        "BooleanTest" => {
            let v = as_bool(&fold(o.get("arg"))?)?;
            Some(Val::Bool(bool_test(o.int("booltesttype"), &v)?))
        }
        "CoalesceExpr" => {
            for a in o.list("args") {
                match fold(a)? {
                    Val::Null => continue,
                    v => return Some(v),
                }
            }
            Some(Val::Null)
        }
        "CaseExpr" => fold_case(o),
        "SubLink" => {
            let t = o.int("sub_link_type");
            let sel = o.get("subselect");
            if t == k(SubLinkType::ExistsSublink) {
                let s = sel.is("SelectStmt")?;
                let only = s
                    .fields
                    .iter()
                    .all(|(k, _)| matches!(*k, "target_list" | "limit_option" | "op"));
                only.then_some(Val::Bool(true))
            } else if t == k(SubLinkType::ExprSublink) {
                let s = tableless_select(sel)?;
                fold(select_target_val(s)?)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn bool_test(t: i64, v: &Val) -> Option<bool> {
    let is_t = *v == Val::Bool(true);
    let is_f = *v == Val::Bool(false);
    let is_u = *v == Val::Null;
    Some(match t {
        x if x == k(BoolTestType::IsTrue) => is_t,
        x if x == k(BoolTestType::IsNotTrue) => !is_t,
        x if x == k(BoolTestType::IsFalse) => is_f,
        x if x == k(BoolTestType::IsNotFalse) => !is_f,
        x if x == k(BoolTestType::IsUnknown) => is_u,
        x if x == k(BoolTestType::IsNotUnknown) => !is_u,
        _ => return None,
    })
}

fn fold_case(o: &Obj) -> Option<Val> {
    let arg = match o.get("arg") {
        G::Null => None,
        g => Some(fold(g)?),
    };
    for w in o.list("args") {
        let w = w.is("CaseWhen")?;
        let cond = fold(w.get("expr"))?;
        let hit = match &arg {
            Some(a) => compare("=", a, &cond)? == Val::Bool(true),
            None => as_bool(&cond)? == Val::Bool(true),
        };
        if hit {
            return fold(w.get("result"));
        }
    }
    match o.get("defresult") {
        G::Null => Some(Val::Null),
        g => fold(g),
    }
}

fn fold_aexpr(o: &Obj) -> Option<Val> {
    let kind = o.int("kind");
    let op = op_name(o);
    let l = o.get("lexpr");
    let r = o.get("rexpr");
    if kind == k(AExprKind::AexprOp) {
        let b = fold(r)?;
        if *l == G::Null {
            // Unary operator.
            return match (op, b) {
                ("-", Val::Int(i)) => i.checked_neg().map(Val::Int),
                ("-", Val::Num(f)) => Some(Val::Num(-f)),
                ("+", v) => Some(v),
                _ => None,
            };
        }
        let a = fold(l)?;
        compare(op, &a, &b).or_else(|| arith(op, &a, &b))
    } else if kind == k(AExprKind::AexprDistinct) || kind == k(AExprKind::AexprNotDistinct) {
        let a = fold(l)?;
        let b = fold(r)?;
        let same = match (&a, &b) {
            (Val::Null, Val::Null) => true,
            (Val::Null, _) | (_, Val::Null) => false,
            _ => compare("=", &a, &b)? == Val::Bool(true),
        };
        Some(Val::Bool(if kind == k(AExprKind::AexprDistinct) {
            !same
        } else {
            same
        }))
    } else if kind == k(AExprKind::AexprIn) {
        let a = fold(l)?;
        let mut acc = Val::Bool(false);
        for item in r.elems() {
            let b = fold(item)?;
            acc = or3(&acc, &compare("=", &a, &b)?);
        }
        if op == "<>" {
            acc = not3(&acc);
        }
        Some(acc)
    } else if kind == k(AExprKind::AexprBetween) || kind == k(AExprKind::AexprNotBetween) {
        let a = fold(l)?;
        let bounds = r.elems();
        let lo = fold(bounds.first()?)?;
        let hi = fold(bounds.get(1)?)?;
        let v = and3(&compare(">=", &a, &lo)?, &compare("<=", &a, &hi)?);
        Some(if kind == k(AExprKind::AexprNotBetween) {
            not3(&v)
        } else {
            v
        })
    } else {
        None
    }
}

/// Column references under `g` (not descending into subqueries), as their field lists.
fn columns<'a>(g: &'a G, out: &mut Vec<Vec<&'a str>>) {
    match g {
        G::Obj(o) => {
            if o.name == "ColumnRef" {
                out.push(
                    o.list("fields")
                        .iter()
                        .map(|f| f.is("String").map(|s| s.text("sval")).unwrap_or("*"))
                        .collect(),
                );
                return;
            }
            if o.name == "SubLink" || o.name == "SelectStmt" {
                // A subquery's own columns are not this row's columns, but a correlated
                // reference is: treat any subquery as "mentions columns" conservatively.
                out.push(vec!["?subquery"]);
                return;
            }
            for (_, v) in &o.fields {
                columns(v, out);
            }
        }
        G::List(l) => l.iter().for_each(|x| columns(x, out)),
        _ => {}
    }
}

fn has_call(g: &G) -> bool {
    match g {
        G::Obj(o) => {
            matches!(o.name, "FuncCall" | "SubLink" | "ParamRef")
                || o.fields.iter().any(|(_, v)| has_call(v))
        }
        G::List(l) => l.iter().any(has_call),
        _ => false,
    }
}

/// Whether two column lists may name the same column (`id` vs `t.id`).
/// An unqualified column, or one qualified by the target, may be the target's column;
/// one qualified by anything else (a USING table, a PL/pgSQL record) is not.
fn same_column(a: &[&str], b: &[&str], t: ModifiedTable<'_>) -> bool {
    let is_target = |q: &[&str]| {
        q.last()
            .is_some_and(|q| *q == t.relname || t.alias == Some(*q))
    };
    match (a.split_last(), b.split_last()) {
        (Some((x, qa)), Some((y, qb))) if x == y => match (qa.is_empty(), qb.is_empty()) {
            (true, true) => true,
            (true, false) => is_target(qb),
            (false, true) => is_target(qa),
            (false, false) => qa == qb || (is_target(qa) && is_target(qb)),
        },
        _ => false,
    }
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "=" | "<>" | "!=" | "<" | ">" | "<=" | ">=")
}

/// A LIKE/regex pattern that matches every non-null string.
fn matches_everything(op: &str, kind: i64, pattern: &G) -> bool {
    let Some(Val::Str(p)) = fold(pattern) else {
        return false;
    };
    let like = kind == k(AExprKind::AexprLike)
        || kind == k(AExprKind::AexprIlike)
        || kind == k(AExprKind::AexprSimilar)
        || matches!(op, "~~" | "~~*");
    let regex = kind == k(AExprKind::AexprOp) && matches!(op, "~" | "~*");
    if like && !matches!(op, "!~~" | "!~~*") {
        return !p.is_empty() && p.chars().all(|c| c == '%');
    }
    if regex {
        return p.chars().all(|c| matches!(c, '^' | '$' | '.' | '*' | '?'));
    }
    false
}

fn pred(g: &G, t: ModifiedTable<'_>) -> Pred {
    if let Some(v) = fold(g) {
        return match as_bool(&v) {
            Some(b) => Pred::Const(b),
            None => Pred::Unknown,
        };
    }
    let Some(o) = g.obj() else {
        return Pred::Unknown;
    };
    match o.name {
        "BoolExpr" => pred_bool(o, t),
        "AExpr" => pred_aexpr(o, t),
        "ColumnRef" => Pred::Restricts,
        "TypeCast" => match o.child("type_name").map(type_last) {
            Some("bool" | "boolean") => pred(o.get("arg"), t),
            _ => Pred::Unknown,
        },
        "NullTest" => {
            let mut cols = Vec::new();
            columns(o.get("arg"), &mut cols);
            if cols.is_empty() || o.get("arg").is("ColumnRef").is_none() {
                Pred::Unknown
            } else if o.int("nulltesttype") == k(NullTestType::IsNull) {
                Pred::Restricts
            } else {
                // `id IS NOT NULL` is true for every row of a NOT NULL column.
                Pred::Unknown
            }
        }
        "BooleanTest" => {
            let inner = pred(o.get("arg"), t);
            let tt = o.int("booltesttype");
            match inner {
                Pred::Const(v) => bool_test(tt, &v)
                    .map(|b| Pred::Const(Val::Bool(b)))
                    .unwrap_or(Pred::Unknown),
                Pred::Restricts
                    if tt == k(BoolTestType::IsTrue) || tt == k(BoolTestType::IsFalse) =>
                {
                    Pred::Restricts
                }
                _ => Pred::Unknown,
            }
        }
        "SubLink" => pred_sublink(o, t),
        "CoalesceExpr" => match o.list("args").first() {
            Some(first) if fold(first).is_none() => match pred(first, t) {
                // coalesce(flag, false): as restrictive as `flag`.
                Pred::Restricts
                    if o.list("args")[1..].iter().all(|a| {
                        matches!(
                            fold(a).and_then(|v| as_bool(&v)),
                            Some(Val::Bool(false)) | Some(Val::Null)
                        )
                    }) =>
                {
                    Pred::Restricts
                }
                _ => Pred::Unknown,
            },
            _ => Pred::Unknown,
        },
        "CurrentOfExpr" => Pred::Restricts,
        _ => Pred::Unknown,
    }
}

fn pred_bool(o: &Obj, t: ModifiedTable<'_>) -> Pred {
    let op = o.int("boolop");
    let args = o.list("args");
    if op == k(BoolExprType::NotExpr) {
        return match args.first().map(|a| pred(a, t)) {
            Some(Pred::Const(v)) => Pred::Const(not3(&v)),
            Some(Pred::Restricts) => match args.first().and_then(|a| a.obj()) {
                // NOT (x IS NULL) is x IS NOT NULL; NOT of a comparison still filters.
                Some(inner) if inner.name == "NullTest" => Pred::Unknown,
                Some(inner) if inner.name == "AExpr" || inner.name == "ColumnRef" => {
                    Pred::Restricts
                }
                _ => Pred::Unknown,
            },
            _ => Pred::Unknown,
        };
    }
    let preds: Vec<Pred> = args.iter().map(|a| pred(a, t)).collect();
    if op == k(BoolExprType::AndExpr) {
        if preds
            .iter()
            .any(|p| matches!(p, Pred::Const(Val::Bool(false)) | Pred::Const(Val::Null)))
        {
            return Pred::Const(Val::Bool(false));
        }
        if preds.iter().all(|p| *p == Pred::Const(Val::Bool(true))) {
            return Pred::Const(Val::Bool(true));
        }
        if preds.contains(&Pred::Restricts) {
            return Pred::Restricts;
        }
        return Pred::Unknown;
    }
    if op == k(BoolExprType::OrExpr) {
        if preds.contains(&Pred::Const(Val::Bool(true))) || complementary(args) {
            return Pred::Const(Val::Bool(true));
        }
        if preds.contains(&Pred::Unknown) {
            return Pred::Unknown;
        }
        if preds.contains(&Pred::Restricts) {
            return Pred::Restricts;
        }
        return Pred::Const(Val::Bool(false));
    }
    Pred::Unknown
}

/// `x = c OR x <> c`, `x < c OR x >= c`, `x IS NULL OR x IS NOT NULL`: all rows.
static NULL_G: G = G::Null;

fn complementary(args: &[G]) -> bool {
    fn key(g: &G) -> Option<(String, &G, &G)> {
        let o = g.obj()?;
        match o.name {
            "AExpr" if o.int("kind") == k(AExprKind::AexprOp) => {
                Some((op_name(o).to_string(), o.get("lexpr"), o.get("rexpr")))
            }
            "NullTest" => {
                let op = if o.int("nulltesttype") == k(NullTestType::IsNull) {
                    "isnull"
                } else {
                    "notnull"
                };
                Some((op.to_string(), o.get("arg"), &NULL_G))
            }
            _ => None,
        }
    }
    let inverse = |op: &str| match op {
        "=" => "<>",
        "<>" | "!=" => "=",
        "<" => ">=",
        ">=" => "<",
        ">" => "<=",
        "<=" => ">",
        "isnull" => "notnull",
        "notnull" => "isnull",
        _ => "",
    };
    let keys: Vec<_> = args.iter().filter_map(key).collect();
    keys.iter().any(|(op, l, r)| {
        let inv = inverse(op);
        keys.iter()
            .any(|(op2, l2, r2)| (op2 == inv || (inv == "<>" && op2 == "!=")) && l2 == l && r2 == r)
    })
}

fn pred_aexpr(o: &Obj, t: ModifiedTable<'_>) -> Pred {
    let kind = o.int("kind");
    let op = op_name(o);
    let l = o.get("lexpr");
    let r = o.get("rexpr");
    if matches_everything(op, kind, r) {
        return Pred::Unknown;
    }
    let simple_cmp = kind == k(AExprKind::AexprOp) && is_comparison(op);
    let not_distinct = kind == k(AExprKind::AexprNotDistinct);
    let distinct = kind == k(AExprKind::AexprDistinct);
    if (simple_cmp || distinct || not_distinct) && l == r && !has_call(l) {
        // Same expression on both sides: true for every non-null row.
        let truth = if distinct {
            false
        } else if not_distinct {
            true
        } else {
            matches!(op, "=" | "<=" | ">=")
        };
        return Pred::Const(Val::Bool(truth));
    }
    let mut lc = Vec::new();
    let mut rc = Vec::new();
    columns(l, &mut lc);
    columns(r, &mut rc);
    match (lc.is_empty(), rc.is_empty()) {
        (true, true) => Pred::Unknown,
        (false, true) | (true, false) => Pred::Restricts,
        (false, false) => {
            let same = lc.iter().any(|a| rc.iter().any(|b| same_column(a, b, t)));
            if same {
                Pred::Unknown
            } else {
                Pred::Restricts
            }
        }
    }
}

/// Whether a subquery refers to the target by name or alias (a correlated subquery).
fn mentions_target(g: &G, t: ModifiedTable<'_>) -> bool {
    match g {
        G::Obj(o) => {
            if o.name == "ColumnRef" {
                let f = o.list("fields");
                if f.len() >= 2 {
                    let q = f[f.len() - 2].is("String").map(|s| s.text("sval"));
                    return q == Some(t.relname) || (t.alias.is_some() && q == t.alias);
                }
                return false;
            }
            o.fields.iter().any(|(_, v)| mentions_target(v, t))
        }
        G::List(l) => l.iter().any(|x| mentions_target(x, t)),
        _ => false,
    }
}

/// Whether a subquery reads the target table itself (`id IN (SELECT id FROM t)`).
fn reads_target(g: &G, t: ModifiedTable<'_>) -> bool {
    match g {
        G::Obj(o) => {
            if o.name == "RangeVar" {
                return o.text("relname") == t.relname;
            }
            o.fields.iter().any(|(_, v)| reads_target(v, t))
        }
        G::List(l) => l.iter().any(|x| reads_target(x, t)),
        _ => false,
    }
}

fn pred_sublink(o: &Obj, t: ModifiedTable<'_>) -> Pred {
    let ty = o.int("sub_link_type");
    let sel = o.get("subselect");
    if ty == k(SubLinkType::ExistsSublink) {
        let Some(s) = sel.is("SelectStmt") else {
            return Pred::Unknown;
        };
        if s.list("from_clause").is_empty() {
            return match s.get("where_clause") {
                G::Null => Pred::Const(Val::Bool(true)),
                w => pred(w, t),
            };
        }
        let correlated = mentions_target(s.get("where_clause"), t);
        let always = matches!(
            fold(s.get("where_clause")).and_then(|v| as_bool(&v)),
            Some(Val::Bool(true))
        );
        if correlated && !always {
            Pred::Restricts
        } else {
            Pred::Unknown
        }
    } else if ty == k(SubLinkType::ExprSublink) {
        match tableless_select(sel).and_then(select_target_val) {
            Some(v) => pred(v, t),
            None => Pred::Unknown,
        }
    } else if ty == k(SubLinkType::AnySublink) || ty == k(SubLinkType::AllSublink) {
        let mut cols = Vec::new();
        columns(o.get("testexpr"), &mut cols);
        if cols.is_empty() || reads_target(sel, t) {
            Pred::Unknown
        } else {
            Pred::Restricts
        }
    } else {
        Pred::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tree::to_tree;

    fn judge_sql(where_sql: &str) -> Bound {
        let sql = format!("DELETE FROM t AS a WHERE {where_sql}");
        let r = pg_query::parse(&sql, 0).expect("parses");
        let g = to_tree(r.protobuf.stmts[0].stmt.as_deref().expect("stmt"));
        let d = g.is("DeleteStmt").expect("delete");
        let w = match d.get("where_clause") {
            G::Null => None,
            w => Some(w),
        };
        judge(
            w,
            ModifiedTable {
                relname: "t",
                alias: Some("a"),
            },
        )
    }

    macro_rules! cases {
        ($($name:ident: $sql:expr => $b:ident;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(judge_sql($sql), Bound::$b, "{}", $sql);
            }
        )*};
    }

    cases! {
        lit_true: "true" => Unbounded;
        lit_t: "'t'" => Unbounded;
        lit_yes: "'yes'" => Unbounded;
        one_eq_one: "1=1" => Unbounded;
        a_eq_a: "'a'='a'" => Unbounded;
        not_false: "NOT false" => Unbounded;
        or_true: "x = 5 OR true" => Unbounded;
        id_eq_id: "id = id" => Unbounded;
        qualified_id: "a.id = a.id" => Unbounded;
        null_is_null: "NULL IS NULL" => Unbounded;
        coalesce_null_true: "coalesce(NULL, true)" => Unbounded;
        select_true: "(SELECT true)" => Unbounded;
        exists_select_1: "EXISTS (SELECT 1)" => Unbounded;
        one_lt_two: "1 < 2" => Unbounded;
        cast_t_bool: "'t'::boolean" => Unbounded;
        int_cast_bool: "1::bool" => Unbounded;
        arith: "2 + 2 = 4" => Unbounded;
        concat: "'a' || 'b' = 'ab'" => Unbounded;
        in_list: "1 IN (1, 2)" => Unbounded;
        between: "5 BETWEEN 1 AND 10" => Unbounded;
        not_distinct: "NULL IS NOT DISTINCT FROM NULL" => Unbounded;
        case_true: "CASE WHEN true THEN true END" => Unbounded;
        and_true: "true AND 1 = 1" => Unbounded;
        is_true: "(1 = 1) IS TRUE" => Unbounded;
        complement: "id = 1 OR id <> 1" => Unbounded;
        complement_null: "id IS NULL OR id IS NOT NULL" => Unbounded;
        lower_eq_lower: "lower(email) = lower(email)" => Maybe;
        id_ge_id: "id >= id" => Unbounded;
        neg: "-1 < 0" => Unbounded;
        id_eq_1: "id = 1" => Bounded;
        created_now: "created_at < now()" => Bounded;
        param: "id = $1" => Bounded;
        in_ids: "id IN (1, 2, 3)" => Bounded;
        and_mixed: "id = 1 AND $1::bool" => Bounded;
        bool_col: "active" => Bounded;
        not_bool_col: "NOT active" => Bounded;
        is_null: "deleted_at IS NULL" => Bounded;
        false_lit: "false" => Bounded;
        null_lit: "NULL" => Bounded;
        one_eq_two: "1 = 2" => Bounded;
        correlated: "EXISTS (SELECT 1 FROM u WHERE u.tid = a.id)" => Bounded;
        in_sub: "id IN (SELECT tid FROM u)" => Bounded;
        param_bool: "$1::bool" => Maybe;
        func_bool: "is_old(x)" => Maybe;
        or_param: "id = 1 OR $1" => Maybe;
        not_null: "id IS NOT NULL" => Maybe;
        uncorrelated: "EXISTS (SELECT 1 FROM u)" => Maybe;
        in_self: "id IN (SELECT id FROM t)" => Maybe;
        like_all: "name LIKE '%'" => Maybe;
        regex_all: "name ~ ''" => Maybe;
        id_plus_zero: "id = id + 0" => Maybe;
        param_eq_param: "$1 = 1" => Maybe;
        no_where_current_of: "CURRENT OF c" => Bounded;
    }

    #[test]
    fn no_where_is_unbounded() {
        assert_eq!(
            judge(
                None,
                ModifiedTable {
                    relname: "t",
                    alias: None
                }
            ),
            Bound::Unbounded
        );
    }

    #[test]
    fn bool_literals() {
        assert_eq!(parse_bool("t"), Some(true));
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("on"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("o"), None);
        assert_eq!(parse_bool("nope"), None);
    }
}
