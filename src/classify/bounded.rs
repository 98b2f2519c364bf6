//! Is a DELETE/UPDATE bounded? A conservative reading of its WHERE clause.
//!
//! A predicate is judged one of: a constant (`true` makes the statement unbounded;
//! constants come from `fold`, which folds only what it computes exactly as PostgreSQL
//! does), `Restricts` (an ordinary positive filter on the target's rows: `id = 1`,
//! `id IN (…)`, `created_at < now()`, `name LIKE 'a%'`, `deleted_at IS NULL`, a
//! correlated `EXISTS`), or `Unknown` ("maybe unbounded"). Anything not known to be such a
//! filter is `Unknown`, never `Restricts`: negative filters (`<>`, `NOT IN`, `NOT LIKE`,
//! `IS DISTINCT FROM`, `NOT EXISTS`), `IS NOT NULL` in any disguise, comparisons of two
//! of the target's columns or of expressions over them, ORs whose arms may cover every
//! value of a column (`a < 5 OR a >= 5`, `flag = 't' OR flag = 'f'`), `<> ANY`/`ALL`
//! (true for an empty set), patterns that may match everything, `= NULL`
//! (`transform_null_equals`), ordering comparisons with a type's extremes (`''`,
//! `'infinity'`, `'NaN'`, BC dates, large integers). Negation is pushed inwards (`NOT`,
//! `IS FALSE`), so `NOT (a <> 1)` reads as `a = 1` and `(x IS NULL) IS FALSE` as
//! `x IS NOT NULL`. Unqualified names that are PL/pgSQL variables of the function
//! being read are values, not columns.

use super::fold::{
    as_bool, is_null_literal, k, not3, op_name, select_target_val, tableless_select, type_last,
};
pub use super::fold::{fold, parse_bool, Val};
use super::tree::{Obj, G};
use pg_query::protobuf::{AExprKind, BoolExprType, BoolTestType, NullTestType, SubLinkType};

/// The verdict on a WHERE clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Bounded,
    Maybe,
    Unbounded,
}

/// The DELETE/UPDATE target, used to tell its columns from other names.
#[derive(Debug, Clone, Copy)]
pub struct ModifiedTable<'a> {
    pub relname: &'a str,
    pub alias: Option<&'a str>,
    /// PL/pgSQL variables in scope (lower-case): unqualified, they are values.
    pub vars: &'a [String],
}

/// Judges a WHERE clause (`None`: no WHERE at all).
pub fn judge(where_clause: Option<&G>, target: ModifiedTable<'_>) -> Bound {
    let Some(w) = where_clause else {
        return Bound::Unbounded;
    };
    if w.is("CurrentOfExpr").is_some() {
        return Bound::Bounded;
    }
    match pred(w, target, false) {
        Pred::Const(Val::Bool(true)) => Bound::Unbounded,
        Pred::Const(Val::Bool(false)) | Pred::Const(Val::Null) => Bound::Bounded,
        Pred::Const(_) => Bound::Maybe,
        Pred::Restricts => Bound::Bounded,
        Pred::Unknown => Bound::Maybe,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Pred {
    Const(Val),
    Restricts,
    Unknown,
}

/// A column reference's names (`a.id` → ["a", "id"]); `*` for a star.
fn col_names(o: &Obj) -> Vec<&str> {
    o.list("fields")
        .iter()
        .map(|f| f.is("String").map(|s| s.text("sval")).unwrap_or("*"))
        .collect()
}

/// Whether a column reference may be a column of the target: unqualified and not a
/// PL/pgSQL variable, or qualified by the target's name or alias.
fn target_col(names: &[&str], t: ModifiedTable<'_>) -> bool {
    match names.split_last() {
        Some((n, [])) => !t.vars.iter().any(|v| v.eq_ignore_ascii_case(n)),
        Some((_, q)) => q
            .last()
            .is_some_and(|q| *q == t.relname || t.alias == Some(*q)),
        None => false,
    }
}

/// The target's (possible) columns under `g`, not descending into subqueries, which
/// count as one marker column `?subquery` (a correlated subquery reads this row).
fn columns<'a>(g: &'a G, t: ModifiedTable<'_>, out: &mut Vec<Vec<&'a str>>) {
    match g {
        G::Obj(o) => {
            if o.name == "ColumnRef" {
                let n = col_names(o);
                if target_col(&n, t) {
                    out.push(n);
                }
                return;
            }
            if o.name == "SubLink" || o.name == "SelectStmt" {
                out.push(vec!["?subquery"]);
                return;
            }
            for (_, v) in &o.fields {
                columns(v, t, out);
            }
        }
        G::List(l) => l.iter().for_each(|x| columns(x, t, out)),
        _ => {}
    }
}

fn cols_of<'a>(g: &'a G, t: ModifiedTable<'_>) -> Vec<Vec<&'a str>> {
    let mut v = Vec::new();
    columns(g, t, &mut v);
    v
}

fn has_node(g: &G, names: &[&str]) -> bool {
    match g {
        G::Obj(o) => names.contains(&o.name) || o.fields.iter().any(|(_, v)| has_node(v, names)),
        G::List(l) => l.iter().any(|x| has_node(x, names)),
        _ => false,
    }
}

/// Whether two column lists may name the same column (`id` vs `t.id`).
fn same_column(a: &[&str], b: &[&str]) -> bool {
    match (a.last(), b.last()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "=" | "<>" | "!=" | "<" | ">" | "<=" | ">=")
}

fn inverse(op: &str) -> &'static str {
    match op {
        "=" => "<>",
        "<>" | "!=" => "=",
        "<" => ">=",
        ">=" => "<",
        ">" => "<=",
        "<=" => ">",
        _ => "",
    }
}

/// Functions of one column that are not constant, so `f(col) = constant` filters.
const FILTERING_FUNCTIONS: &[&str] = &[
    "lower",
    "upper",
    "btrim",
    "ltrim",
    "rtrim",
    "date_trunc",
    "date",
];

/// A column of the target as an operand: bare, cast, or (for equality) inside one of
/// the filtering functions with constant other arguments.
fn column_operand<'a>(g: &'a G, t: ModifiedTable<'_>, equality: bool) -> Option<Vec<&'a str>> {
    let o = g.obj()?;
    match o.name {
        "ColumnRef" => {
            let n = col_names(o);
            (target_col(&n, t) && n.last() != Some(&"*")).then_some(n)
        }
        "TypeCast" => column_operand(o.get("arg"), t, equality),
        "FuncCall" if equality => {
            let name = o
                .list("funcname")
                .last()
                .and_then(|n| n.is("String"))
                .map(|s| s.text("sval").to_ascii_lowercase())?;
            if !FILTERING_FUNCTIONS.contains(&name.as_str()) {
                return None;
            }
            let args = o.list("args");
            let mut col = None;
            for a in args {
                if fold(a).is_some() {
                    continue;
                }
                if col.is_some() {
                    return None;
                }
                col = Some(column_operand(a, t, false)?);
            }
            col
        }
        _ => None,
    }
}

/// The other operand of a filter: no column of the target, and no subquery that could
/// reach this row (see `subquery_may_reach`).
fn value_operand(g: &G, t: ModifiedTable<'_>, col: &[&str]) -> bool {
    cols_of(g, t).iter().all(|c| c == &["?subquery"]) && !sublinks_reach(g, t, col)
}

fn sublinks_reach(g: &G, t: ModifiedTable<'_>, col: &[&str]) -> bool {
    match g {
        G::Obj(o) if o.name == "SubLink" => subquery_may_reach(o.get("subselect"), t, col),
        G::Obj(o) => o.fields.iter().any(|(_, v)| sublinks_reach(v, t, col)),
        G::List(l) => l.iter().any(|x| sublinks_reach(x, t, col)),
        _ => false,
    }
}

/// Whether a subquery may read the row being filtered instead of another table: no
/// FROM (`(SELECT id)` is the outer `id`), it reads the target itself, it names the
/// target, or its output names an unqualified column called like `col`.
fn subquery_may_reach(sel: &G, t: ModifiedTable<'_>, col: &[&str]) -> bool {
    let Some(s) = sel.is("SelectStmt") else {
        return true;
    };
    if s.list("from_clause").is_empty() || reads_target(sel, t) || mentions_target(sel, t) {
        return true;
    }
    let mut out = Vec::new();
    let no_vars = ModifiedTable { vars: &[], ..t };
    columns(s.get("target_list"), no_vars, &mut out);
    out.iter()
        .any(|c| c.len() == 1 && col.last().is_some_and(|n| c[0] == *n))
}

/// Whether an ordering comparison with `v` may hold for every value of a type.
fn interior(v: &Val) -> bool {
    match v {
        Val::Int(i) => i.unsigned_abs() < 32767,
        Val::Num(s) => {
            !s.contains(['e', 'E'])
                && s.parse::<f64>()
                    .is_ok_and(|f| f.is_finite() && f.abs() < 32767.0)
        }
        Val::Str(s) => {
            let l = s.trim().to_ascii_lowercase();
            let starts_ok = l
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || (c == '-' && l.len() > 1));
            let long_digits = l
                .split(|c: char| !c.is_ascii_digit())
                .any(|run| run.len() >= 5);
            let early_year = l.len() >= 4
                && l[..4].bytes().all(|b| b.is_ascii_digit())
                && l[..4].parse::<u32>().is_ok_and(|y| y < 1900);
            starts_ok
                && !long_digits
                && !early_year
                && !l.contains("inf")
                && !l.contains("nan")
                && !l.ends_with("bc")
                && !l.starts_with("00:")
                && !l.starts_with("0:")
                && parse_bool(&l).is_none()
        }
        Val::Bool(_) | Val::Null => false,
    }
}

/// Whether a set of equality values covers a boolean column (`'t'` and `false`).
fn covers_bool(vals: &[Val]) -> bool {
    let bools: Vec<Val> = vals.iter().filter_map(as_bool).collect();
    bools.contains(&Val::Bool(true)) && bools.contains(&Val::Bool(false))
}

fn pred(g: &G, t: ModifiedTable<'_>, neg: bool) -> Pred {
    if let Some(v) = fold(g) {
        return match as_bool(&v) {
            Some(b) if neg => Pred::Const(not3(&b)),
            Some(b) => Pred::Const(b),
            None => Pred::Unknown,
        };
    }
    let Some(o) = g.obj() else {
        return Pred::Unknown;
    };
    match o.name {
        "BoolExpr" => {
            let op = o.int("boolop");
            let args = o.list("args");
            if op == k(BoolExprType::NotExpr) {
                match args.first() {
                    Some(a) => pred(a, t, !neg),
                    None => Pred::Unknown,
                }
            } else if (op == k(BoolExprType::AndExpr)) != neg {
                conjunction(args, t, neg)
            } else if op == k(BoolExprType::OrExpr) || op == k(BoolExprType::AndExpr) {
                disjunction(args, t, neg)
            } else {
                Pred::Unknown
            }
        }
        "AExpr" => pred_aexpr(o, t, neg),
        // A boolean column: `active` and `NOT active` both filter.
        "ColumnRef" if column_operand(g, t, false).is_some() => Pred::Restricts,
        "TypeCast" => match o.child("type_name").map(type_last) {
            Some("bool" | "boolean") => pred(o.get("arg"), t, neg),
            _ => Pred::Unknown,
        },
        "NullTest" => {
            let is_null = o.int("nulltesttype") == k(NullTestType::IsNull);
            // `x IS NOT NULL` is true for every row of a NOT NULL column.
            if is_null != neg && column_operand(o.get("arg"), t, false).is_some() {
                Pred::Restricts
            } else {
                Pred::Unknown
            }
        }
        "BooleanTest" => {
            let tt = o.int("booltesttype");
            let arg = o.get("arg");
            if neg {
                // NOT (x IS TRUE) is x IS NOT TRUE: also the NULLs.
                Pred::Unknown
            } else if tt == k(BoolTestType::IsTrue) {
                pred(arg, t, false)
            } else if tt == k(BoolTestType::IsFalse) {
                pred(arg, t, true)
            } else {
                Pred::Unknown
            }
        }
        "SubLink" => pred_sublink(o, t, neg),
        "CoalesceExpr" if !neg => match o.list("args").first() {
            Some(first) if fold(first).is_none() => match pred(first, t, false) {
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
        "CurrentOfExpr" if !neg => Pred::Restricts,
        _ => Pred::Unknown,
    }
}

/// `a AND b …` (or, negated, `NOT a OR NOT b …` read as `NOT (a AND b …)`).
fn conjunction(args: &[G], t: ModifiedTable<'_>, neg: bool) -> Pred {
    let preds: Vec<Pred> = args.iter().map(|a| pred(a, t, neg)).collect();
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
    Pred::Unknown
}

/// One restricting arm of an OR: the target's columns it mentions, and its values if
/// it is an equality with constants.
type Arm<'a> = (Vec<Vec<&'a str>>, Option<Vec<Val>>);

/// `a OR b …` (or `NOT (a AND b …)` with `neg`): restricting only when no two arms
/// are about the same column, unless both are equalities with constants that do not
/// cover a boolean.
fn disjunction(args: &[G], t: ModifiedTable<'_>, neg: bool) -> Pred {
    let preds: Vec<Pred> = args.iter().map(|a| pred(a, t, neg)).collect();
    if preds.contains(&Pred::Const(Val::Bool(true))) || complementary(args) {
        return Pred::Const(Val::Bool(true));
    }
    if preds.contains(&Pred::Unknown)
        || preds
            .iter()
            .any(|p| matches!(p, Pred::Const(Val::Int(_) | Val::Num(_) | Val::Str(_))))
    {
        return Pred::Unknown;
    }
    let arms: Vec<Arm<'_>> = args
        .iter()
        .zip(&preds)
        .filter(|(_, p)| **p == Pred::Restricts)
        .map(|(a, _)| (cols_of(a, t), point(a, neg)))
        .collect();
    if arms.is_empty() {
        return Pred::Const(Val::Bool(false));
    }
    for (i, (ci, pi)) in arms.iter().enumerate() {
        let mut values: Vec<Val> = pi.clone().unwrap_or_default();
        for (cj, pj) in &arms[i + 1..] {
            let shared = ci.iter().any(|a| cj.iter().any(|b| same_column(a, b)));
            if !shared {
                continue;
            }
            match (pi, pj) {
                (Some(_), Some(vj)) if ci.len() == 1 && cj.len() == 1 => {
                    values.extend(vj.iter().cloned())
                }
                _ => return Pred::Unknown,
            }
        }
        if covers_bool(&values) {
            return Pred::Unknown;
        }
    }
    Pred::Restricts
}

/// The values of an equality filter on one column (`c = 1`, `c IN (1, 2)`, `c`,
/// `NOT c`, `c IS NULL`), or `None` if the arm is not one.
fn point(g: &G, neg: bool) -> Option<Vec<Val>> {
    let o = g.obj()?;
    match o.name {
        "ColumnRef" => Some(vec![Val::Bool(!neg)]),
        "BoolExpr" if o.int("boolop") == k(BoolExprType::NotExpr) => {
            point(o.list("args").first()?, !neg)
        }
        "NullTest" => Some(vec![Val::Null]),
        "AExpr" => {
            let kind = o.int("kind");
            let op = op_name(o);
            let (l, r) = (o.get("lexpr"), o.get("rexpr"));
            if kind == k(AExprKind::AexprOp) {
                let eq = if neg { inverse(op) } else { op };
                if eq != "=" {
                    return None;
                }
                let v = fold(r).or_else(|| fold(l))?;
                Some(vec![v])
            } else if kind == k(AExprKind::AexprIn) && (op == "=") != neg {
                r.elems().iter().map(fold).collect()
            } else if (kind == k(AExprKind::AexprNotDistinct)) != neg
                && (kind == k(AExprKind::AexprNotDistinct) || kind == k(AExprKind::AexprDistinct))
            {
                Some(vec![fold(r).or_else(|| fold(l))?])
            } else {
                None
            }
        }
        _ => None,
    }
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
    let inv = |op: &str| match op {
        "isnull" => "notnull",
        "notnull" => "isnull",
        other => inverse(other),
    };
    let keys: Vec<_> = args.iter().filter_map(key).collect();
    keys.iter().any(|(op, l, r)| {
        let i = inv(op);
        keys.iter()
            .any(|(op2, l2, r2)| (op2 == i || (i == "<>" && op2 == "!=")) && l2 == l && r2 == r)
    })
}

/// A LIKE pattern with at least one character that is not a wildcard.
fn like_literal(p: &str) -> bool {
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' | '_' => {}
            '\\' => return chars.next().is_some(),
            _ => return true,
        }
    }
    false
}

/// A regular expression that is plain text, optionally anchored (`^abc`, `abc$`).
fn regex_literal(p: &str) -> bool {
    let body = p.strip_prefix('^').unwrap_or(p);
    let body = body.strip_suffix('$').unwrap_or(body);
    !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '@' | ',' | ':' | '/'))
}

fn pred_aexpr(o: &Obj, t: ModifiedTable<'_>, neg: bool) -> Pred {
    let kind = o.int("kind");
    let op = op_name(o);
    let l = o.get("lexpr");
    let r = o.get("rexpr");
    let is = |x: AExprKind| kind == k(x);
    if is(AExprKind::AexprLike) || is(AExprKind::AexprIlike) {
        let negative = op.starts_with('!') != neg;
        let literal = matches!(fold(r), Some(Val::Str(p)) if like_literal(&p));
        return match column_operand(l, t, false) {
            Some(_) if literal && !negative => Pred::Restricts,
            _ => Pred::Unknown,
        };
    }
    if is(AExprKind::AexprOp) && matches!(op, "~" | "~*" | "!~" | "!~*") {
        let negative = op.starts_with('!') != neg;
        let literal = matches!(fold(r), Some(Val::Str(p)) if regex_literal(&p));
        return match column_operand(l, t, false) {
            Some(_) if literal && !negative => Pred::Restricts,
            _ => Pred::Unknown,
        };
    }
    if is(AExprKind::AexprOp) && is_comparison(op) {
        if is_null_literal(l) || is_null_literal(r) {
            // `x = NULL` is `x IS NULL` under transform_null_equals, and NOT of it
            // `x IS NOT NULL`; the other comparisons with NULL are never true.
            return Pred::Unknown;
        }
        let eff = if neg { inverse(op) } else { op };
        if l == r && !has_node(l, &["FuncCall", "SubLink", "ParamRef"]) {
            // Same expression on both sides: true for every non-null row.
            return Pred::Const(Val::Bool(matches!(eff, "=" | "<=" | ">=")));
        }
        if !matches!(eff, "=" | "<" | ">" | "<=" | ">=") {
            return Pred::Unknown;
        }
        return comparison(l, r, eff, t);
    }
    if is(AExprKind::AexprOpAny) && op == "=" && !neg {
        let Some(col) = column_operand(l, t, true) else {
            return Pred::Unknown;
        };
        if !value_operand(r, t, &col) {
            return Pred::Unknown;
        }
        let vals: Option<Vec<Val>> = match fold(r) {
            Some(Val::Str(s)) => Some(array_literal(&s)),
            Some(_) => None,
            None => r
                .is("AArrayExpr")
                .map(|a| a.list("elements").iter().filter_map(fold).collect()),
        };
        return match vals {
            Some(v) if covers_bool(&v) => Pred::Unknown,
            _ => Pred::Restricts,
        };
    }
    if is(AExprKind::AexprDistinct) || is(AExprKind::AexprNotDistinct) {
        let not_distinct = is(AExprKind::AexprNotDistinct) != neg;
        if l == r && !has_node(l, &["FuncCall", "SubLink", "ParamRef"]) {
            // `x IS NOT DISTINCT FROM x` holds for every row, NULLs included.
            return Pred::Const(Val::Bool(not_distinct));
        }
        if !not_distinct {
            return Pred::Unknown;
        }
        return comparison(l, r, "=", t);
    }
    if is(AExprKind::AexprIn) {
        let positive = (op == "=") != neg;
        let Some(col) = column_operand(l, t, true) else {
            return Pred::Unknown;
        };
        if !positive || !r.elems().iter().all(|e| value_operand(e, t, &col)) {
            return Pred::Unknown;
        }
        let vals: Vec<Val> = r.elems().iter().filter_map(fold).collect();
        return if covers_bool(&vals) {
            Pred::Unknown
        } else {
            Pred::Restricts
        };
    }
    if is(AExprKind::AexprBetween) || is(AExprKind::AexprBetweenSym) {
        let Some(col) = column_operand(l, t, false) else {
            return Pred::Unknown;
        };
        if neg || !r.elems().iter().all(|e| value_operand(e, t, &col)) {
            return Pred::Unknown;
        }
        return Pred::Restricts;
    }
    Pred::Unknown
}

/// The elements of a simple array literal (`'{t,f}'`), as texts.
fn array_literal(s: &str) -> Vec<Val> {
    s.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .map(|e| Val::Str(e.trim().trim_matches('"').to_string()))
        .collect()
}

/// `l op r` with `op` one of = < > <= >=: a filter when one side is a column of the
/// target and the other a value that is not at a type's extreme (for orderings).
fn comparison(l: &G, r: &G, op: &str, t: ModifiedTable<'_>) -> Pred {
    let equality = op == "=";
    let (col, value) = match (
        column_operand(l, t, equality),
        column_operand(r, t, equality),
    ) {
        (Some(c), None) => (c, r),
        (None, Some(c)) => (c, l),
        _ => return Pred::Unknown,
    };
    if !value_operand(value, t, &col) {
        return Pred::Unknown;
    }
    match fold(value) {
        Some(v) if !equality && !interior(&v) => Pred::Unknown,
        // `x = NULL` never holds (or is IS NULL): either way at most the NULL rows.
        _ => Pred::Restricts,
    }
}

/// Whether a subquery refers to the target by name or alias.
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

/// The WHERE's top-level conjuncts.
fn conjuncts(g: &G) -> Vec<&G> {
    match g.obj() {
        Some(o) if o.name == "BoolExpr" && o.int("boolop") == k(BoolExprType::AndExpr) => {
            o.list("args").iter().flat_map(conjuncts).collect()
        }
        _ => vec![g],
    }
}

/// A correlated semi-join: some conjunct is `target.col = other.col`.
fn correlated_equality(w: &G, t: ModifiedTable<'_>) -> bool {
    let qualified = |g: &G| -> Option<bool> {
        let c = g.is("ColumnRef")?;
        let n = col_names(c);
        let (_, q) = n.split_last()?;
        let q = q.last()?;
        Some(*q == t.relname || t.alias == Some(*q))
    };
    conjuncts(w).iter().any(|c| {
        c.is("AExpr").is_some_and(|a| {
            a.int("kind") == k(AExprKind::AexprOp)
                && op_name(a) == "="
                && matches!(
                    (qualified(a.get("lexpr")), qualified(a.get("rexpr"))),
                    (Some(true), Some(false)) | (Some(false), Some(true))
                )
        })
    })
}

fn pred_sublink(o: &Obj, t: ModifiedTable<'_>, neg: bool) -> Pred {
    let ty = o.int("sub_link_type");
    let sel = o.get("subselect");
    if ty == k(SubLinkType::ExistsSublink) {
        let Some(s) = sel.is("SelectStmt") else {
            return Pred::Unknown;
        };
        if s.list("from_clause").is_empty() {
            return match s.get("where_clause") {
                G::Null => Pred::Const(Val::Bool(!neg)),
                w => pred(w, t, neg),
            };
        }
        // NOT EXISTS keeps every row the subquery does not match: maybe all.
        if !neg && correlated_equality(s.get("where_clause"), t) {
            Pred::Restricts
        } else {
            Pred::Unknown
        }
    } else if ty == k(SubLinkType::ExprSublink) {
        match tableless_select(sel).and_then(select_target_val) {
            Some(v) => pred(v, t, neg),
            None => Pred::Unknown,
        }
    } else if ty == k(SubLinkType::AnySublink) {
        // `x IN (SELECT …)`; `x <> ANY (…)` and `ALL` (true for an empty set) are not filters.
        let op = o
            .list("oper_name")
            .last()
            .and_then(|n| n.is("String"))
            .map(|s| s.text("sval"))
            .unwrap_or("=");
        match column_operand(o.get("testexpr"), t, true) {
            Some(col) if !neg && op == "=" && !subquery_may_reach(sel, t, &col) => Pred::Restricts,
            _ => Pred::Unknown,
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
                vars: &["v_id".to_string()],
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
        // Constants the folder cannot compute exactly are not constants.
        float_sum: "0.1 + 0.2 = 0.3" => Maybe;
        float_ne: "0.30000000000000001 <> 0.3" => Maybe;
        char1: "'ab'::char(1) = 'a'" => Maybe;
        bpchar_pad: "'a '::bpchar = 'a'" => Maybe;
        varchar_n: "'abc'::varchar(1) = 'a'" => Maybe;
        numeric_ps: "1.005::numeric(3,2) = 1.01" => Maybe;
        bits: "B'1' = '1'" => Maybe;
        hex_bits: "X'F' = B'1111'" => Maybe;
        text_order: "'a' < 'B'" => Maybe;
        null_eq_null: "NULL = NULL" => Maybe;
        not_null_eq: "NOT (id = NULL)" => Maybe;
        id_eq_null: "id = NULL" => Maybe;
        // IS NOT NULL in disguise.
        is_null_is_false: "(id IS NULL) IS FALSE" => Maybe;
        not_is_null: "NOT id IS NULL" => Maybe;
        distinct_null: "id IS DISTINCT FROM NULL" => Maybe;
        not_not_distinct_null: "NOT (id IS NOT DISTINCT FROM NULL)" => Maybe;
        not_distinct_null: "id IS NOT DISTINCT FROM NULL" => Bounded;
        not_distinct_self: "id IS NOT DISTINCT FROM id" => Unbounded;
        distinct_self: "id IS DISTINCT FROM id" => Bounded;
        // Two columns, or expressions over the target's columns.
        two_cols: "a = b" => Maybe;
        two_cols_qualified: "a.x <= a.y" => Maybe;
        mod_one: "id % 1 = 0" => Maybe;
        times_zero: "id * 0 = 0" => Maybe;
        abs_ge: "abs(id) >= 0" => Maybe;
        bool_eq_true: "(id = 1 OR id <> 1) = true" => Maybe;
        join_col: "t.id = u.tid" => Bounded;
        plpgsql_var: "id = v_id" => Bounded;
        plpgsql_var_alone: "v_id" => Maybe;
        lower_eq_const: "lower(email) = 'a@b'" => Bounded;
        // Complements and covers.
        not_complement: "id = 1 OR NOT id = 1" => Maybe;
        not_ne: "NOT (id <> 1)" => Bounded;
        ranges_cover: "id < 5 OR id >= 5" => Unbounded;
        ranges_overlap: "id < 5 OR id > 3" => Maybe;
        bool_cover: "flag = 't' OR flag = 'f'" => Maybe;
        bool_cover_not: "flag OR NOT flag" => Maybe;
        bool_in_cover: "flag IN (true, false)" => Maybe;
        bool_any_cover: "flag = ANY('{t,f}')" => Maybe;
        de_morgan: "NOT (id = 1 AND NOT id = 1)" => Maybe;
        two_points: "id = 1 OR id = 2" => Bounded;
        other_columns: "id = 1 OR name = 'x'" => Bounded;
        not_between_inverted: "id NOT BETWEEN 5 AND 1" => Maybe;
        not_between: "NOT (id BETWEEN 1 AND 5)" => Maybe;
        // Negative filters keep maybe everything.
        ne: "id <> 1" => Maybe;
        not_in: "id NOT IN (1, 2)" => Maybe;
        not_exists: "NOT EXISTS (SELECT 1 FROM u WHERE u.tid = a.id)" => Maybe;
        not_like: "name NOT LIKE 'a%'" => Maybe;
        // Empty sets and ALL.
        ne_all_empty: "id <> ALL (SELECT tid FROM u WHERE false)" => Maybe;
        eq_all: "id = ALL ('{}'::int[])" => Maybe;
        ne_any: "id <> ANY (ARRAY[1, 2])" => Maybe;
        eq_any_param: "id = ANY($1)" => Bounded;
        in_outer: "id IN (SELECT id)" => Maybe;
        in_same_name: "id IN (SELECT id FROM u)" => Maybe;
        eq_outer: "id = (SELECT id)" => Maybe;
        exists_self_true: "EXISTS (SELECT 1 FROM u WHERE a.id = a.id)" => Maybe;
        // Patterns that may match everything.
        like_pct2: "name LIKE '%%'" => Maybe;
        like_underscore: "name LIKE '_%'" => Maybe;
        like_escape: "name LIKE '%' ESCAPE '#'" => Maybe;
        ilike_all: "name ILIKE '%'" => Maybe;
        similar_all: "name SIMILAR TO '%'" => Maybe;
        regex_star: "name ~ 'a*'" => Maybe;
        regex_dotstar: "name ~ '^.*$'" => Maybe;
        like_prefix: "name LIKE 'abc%'" => Bounded;
        regex_prefix: "name ~ '^abc'" => Bounded;
        not_not_like_all: "NOT (name NOT LIKE '%')" => Maybe;
        // Ordering with a type's extremes.
        ge_empty: "name >= ''" => Maybe;
        lt_infinity: "created_at < 'infinity'" => Maybe;
        lt_nan: "price < 'NaN'" => Maybe;
        gt_bc: "d > '4713-01-01 BC'" => Maybe;
        gt_year1: "d > '0001-01-01'" => Maybe;
        le_big: "id <= 2147483647" => Maybe;
        gt_neg_big: "id > -9223372036854775808" => Maybe;
        ge_false: "flag >= false" => Maybe;
        ge_midnight: "t >= '00:00'" => Maybe;
        lt_date: "created_at < '2024-01-01'" => Bounded;
        lt_int: "id < 100" => Bounded;
    }

    #[test]
    fn no_where_is_unbounded() {
        assert_eq!(
            judge(
                None,
                ModifiedTable {
                    relname: "t",
                    alias: None,
                    vars: &[],
                }
            ),
            Bound::Unbounded
        );
    }
}
