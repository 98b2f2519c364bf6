//! Constants folded exactly as PostgreSQL computes them, or not at all.
//!
//! Folding is what lets the WHERE analysis (`bounded`) call `1 = 1` always true and
//! `1 = 2` never true, so a wrong constant is a wrong verdict. Only what is computed
//! here exactly as the server would is folded: integers (checked), booleans, text
//! equality, `||` of texts, NULL logic. Everything else folds to `None` ("not a
//! constant this folder knows"): decimal and floating-point arithmetic and comparison,
//! casts with type modifiers (`char(1)`, `varchar(3)`, `numeric(5,2)` truncate or round),
//! `char`/`bpchar`/`name` (padding, truncation), bit strings, ordering of texts
//! (collation-dependent), and `= NULL` (`transform_null_equals` turns it into IS NULL).

use super::tree::{Obj, G};
use pg_query::protobuf::{AExprKind, BoolExprType, BoolTestType, NullTestType, SubLinkType};

/// A folded constant.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    /// A decimal literal's text (`1.5`, `1e3`, `3000000000`): kept for reading setting
    /// values, never computed with or compared.
    Num(String),
    Str(String),
}

pub(super) fn k<T: Into<i32>>(v: T) -> i64 {
    i64::from(v.into())
}

/// PostgreSQL's boolean input: t/true/y/yes/on/1 and f/false/n/no/off/0 (prefixes allowed).
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = s
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase();
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

/// A value read as a boolean (NULL stays NULL); `None` if it is not one.
pub(super) fn as_bool(v: &Val) -> Option<Val> {
    match v {
        Val::Null => Some(Val::Null),
        Val::Bool(b) => Some(Val::Bool(*b)),
        Val::Str(s) => parse_bool(s).map(Val::Bool),
        Val::Int(_) | Val::Num(_) => None,
    }
}

/// PostgreSQL's integer input: optional surrounding spaces, an optional sign, digits.
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

fn const_of(o: &Obj) -> Option<Val> {
    if o.flag("isnull") {
        return Some(Val::Null);
    }
    match o.child("val") {
        Some(v) => match v.name {
            "Integer" => Some(Val::Int(v.int("ival"))),
            "Float" => Some(Val::Num(v.text("fval").to_string())),
            "Boolean" => Some(Val::Bool(v.flag("boolval"))),
            "String" => Some(Val::Str(v.text("sval").to_string())),
            // B'0101' = '101'::bit(3)? Bit strings compare by length and value: not here.
            _ => None,
        },
        // An integer 0 / false / '' has all its fields at their defaults.
        None => Some(Val::Null),
    }
}

/// A bare NULL constant, the operand `transform_null_equals` looks for.
pub(super) fn is_null_literal(g: &G) -> bool {
    g.is("AConst").is_some_and(|o| o.flag("isnull"))
}

/// The last name of a TypeName (`pg_catalog.bool` → `bool`).
pub(super) fn type_last(o: &Obj) -> &str {
    o.list("names")
        .last()
        .and_then(|n| n.is("String"))
        .map(|s| s.text("sval"))
        .unwrap_or("")
}

/// A cast folded exactly, or `None`. Type modifiers and array bounds are never folded.
fn cast(v: Val, ty: &Obj) -> Option<Val> {
    if !ty.list("typmods").is_empty() || !ty.list("array_bounds").is_empty() || ty.flag("setof") {
        return None;
    }
    if v == Val::Null {
        return Some(Val::Null);
    }
    match type_last(ty) {
        "bool" | "boolean" => match v {
            Val::Int(i) => Some(Val::Bool(i != 0)),
            other => as_bool(&other),
        },
        "int2" | "int4" | "int8" | "integer" | "smallint" | "bigint" => match v {
            Val::Int(i) => Some(Val::Int(i)),
            Val::Str(s) => parse_int(&s).map(Val::Int),
            _ => None,
        },
        // text and varchar without a length keep every character; bpchar pads and
        // compares without trailing spaces, name truncates: not folded.
        "text" | "varchar" => match v {
            Val::Str(s) => Some(Val::Str(s)),
            Val::Int(i) => Some(Val::Str(i.to_string())),
            Val::Bool(b) => Some(Val::Str(if b { "true" } else { "false" }.to_string())),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn op_name(o: &Obj) -> &str {
    o.list("name")
        .last()
        .and_then(|n| n.is("String"))
        .map(|s| s.text("sval"))
        .unwrap_or("")
}

/// Compares two constants with a comparison operator; `None` if not exactly computable.
pub(super) fn compare(op: &str, a: &Val, b: &Val) -> Option<Val> {
    if !matches!(op, "=" | "<>" | "!=" | "<" | ">" | "<=" | ">=") {
        return None;
    }
    if *a == Val::Null || *b == Val::Null {
        return Some(Val::Null);
    }
    let equality_only = matches!(op, "=" | "<>" | "!=");
    let ord = match (a, b) {
        // Text order depends on the collation: only equality is exact.
        (Val::Str(x), Val::Str(y)) if equality_only => x.cmp(y),
        (Val::Str(_), Val::Str(_)) => return None,
        (Val::Bool(_), _) | (_, Val::Bool(_)) => match (as_bool(a)?, as_bool(b)?) {
            (Val::Bool(x), Val::Bool(y)) => x.cmp(&y),
            _ => return None,
        },
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Int(x), Val::Str(s)) => x.cmp(&parse_int(s)?),
        (Val::Str(s), Val::Int(y)) => parse_int(s)?.cmp(y),
        _ => return None,
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
    match (op, a, b) {
        ("||", Val::Str(x), Val::Str(y)) => Some(Val::Str(format!("{x}{y}"))),
        ("||", Val::Null, Val::Str(_)) | ("||", Val::Str(_), Val::Null) => Some(Val::Null),
        ("+", Val::Int(x), Val::Int(y)) => x.checked_add(*y).map(Val::Int),
        ("-", Val::Int(x), Val::Int(y)) => x.checked_sub(*y).map(Val::Int),
        ("*", Val::Int(x), Val::Int(y)) => x.checked_mul(*y).map(Val::Int),
        ("+" | "-" | "*", Val::Null, Val::Int(_)) | ("+" | "-" | "*", Val::Int(_), Val::Null) => {
            Some(Val::Null)
        }
        _ => None,
    }
}

pub(super) fn and3(a: &Val, b: &Val) -> Val {
    match (a, b) {
        (Val::Bool(false), _) | (_, Val::Bool(false)) => Val::Bool(false),
        (Val::Bool(true), Val::Bool(true)) => Val::Bool(true),
        _ => Val::Null,
    }
}

pub(super) fn or3(a: &Val, b: &Val) -> Val {
    match (a, b) {
        (Val::Bool(true), _) | (_, Val::Bool(true)) => Val::Bool(true),
        (Val::Bool(false), Val::Bool(false)) => Val::Bool(false),
        _ => Val::Null,
    }
}

pub(super) fn not3(a: &Val) -> Val {
    match a {
        Val::Bool(b) => Val::Bool(!b),
        _ => Val::Null,
    }
}

/// A SELECT that reads no table: `SELECT <one expr>` without FROM/WHERE/GROUP/HAVING.
pub(super) fn tableless_select(g: &G) -> Option<&Obj> {
    let s = g.is("SelectStmt")?;
    let only_allowed = s
        .fields
        .iter()
        .all(|(k, _)| matches!(*k, "target_list" | "limit_option" | "op"));
    (only_allowed && s.list("target_list").len() == 1).then_some(s)
}

pub(super) fn select_target_val(s: &Obj) -> Option<&G> {
    s.list("target_list")
        .first()
        .and_then(|t| t.is("ResTarget"))
        .map(|rt| rt.get("val"))
}

/// Folds an expression without column references to a constant, or `None`.
pub fn fold(g: &G) -> Option<Val> {
    let o = g.obj()?;
    match o.name {
        "AConst" => const_of(o),
        "TypeCast" => {
            let v = fold(o.get("arg"))?;
            cast(v, o.child("type_name")?)
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
            let vals: Vec<Val> = o.list("args").iter().map(fold).collect::<Option<_>>()?;
            // All of one kind, so the common type is the one folded here.
            let same_kind = vals.windows(2).all(|w| match (&w[0], &w[1]) {
                (Val::Null, _) | (_, Val::Null) => true,
                (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
            });
            if !same_kind {
                return None;
            }
            Some(
                vals.into_iter()
                    .find(|v| *v != Val::Null)
                    .unwrap_or(Val::Null),
            )
        }
        "CaseExpr" => fold_case(o),
        "SubLink" => {
            let t = o.int("sub_link_type");
            let sel = o.get("subselect");
            if t == k(SubLinkType::ExistsSublink) {
                tableless_select(sel).map(|_| Val::Bool(true))
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

pub(super) fn bool_test(t: i64, v: &Val) -> Option<bool> {
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
        // `x = NULL` is `x IS NULL` under transform_null_equals: not folded.
        if op == "=" && (is_null_literal(l) || is_null_literal(r)) {
            return None;
        }
        let b = fold(r)?;
        if *l == G::Null {
            // Unary operator.
            return match (op, b) {
                ("-", Val::Int(i)) => i.checked_neg().map(Val::Int),
                ("-", Val::Num(f)) => Some(Val::Num(format!("-{f}"))),
                ("+", v @ (Val::Int(_) | Val::Num(_))) => Some(v),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tree::to_tree;

    fn fold_sql(expr: &str) -> Option<Val> {
        let r = pg_query::parse(&format!("SELECT {expr}"), 0).expect("parses");
        let g = to_tree(r.protobuf.stmts[0].stmt.as_deref().expect("stmt"));
        let s = g.is("SelectStmt").expect("select");
        fold(select_target_val(s).expect("target"))
    }

    #[test]
    fn exact_constants_fold() {
        assert_eq!(fold_sql("1 + 2 = 3"), Some(Val::Bool(true)));
        assert_eq!(fold_sql("'a' || 'b' = 'ab'"), Some(Val::Bool(true)));
        assert_eq!(fold_sql("'1' = 1"), Some(Val::Bool(true)));
        assert_eq!(fold_sql("'yes'::bool"), Some(Val::Bool(true)));
        assert_eq!(fold_sql("NULL IS NULL"), Some(Val::Bool(true)));
        assert_eq!(fold_sql("1.5"), Some(Val::Num("1.5".into())));
        assert_eq!(fold_sql("-1.5"), Some(Val::Num("-1.5".into())));
    }

    #[test]
    fn inexact_constants_do_not_fold() {
        for e in [
            "0.1 + 0.2 = 0.3",
            "0.30000000000000001 <> 0.3",
            "1.0 = 1",
            "'ab'::char(1) = 'a'",
            "'a '::bpchar = 'a'",
            "'a'::varchar(1) = 'ab'::varchar(1)",
            "12.345::numeric(4,2) = 12.35",
            "B'01' = B'1'",
            "X'0F' = B'00001111'",
            "'a' < 'B'",
            "NULL = NULL",
            "1 = NULL",
            "'abc'::name = 'abc'",
            "'1.0' = 1",
            "2147483648 > 1",
            "1e0 = 1",
        ] {
            assert_eq!(fold_sql(e), None, "{e}");
        }
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
