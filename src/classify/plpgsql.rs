//! PL/pgSQL bodies (DO blocks, functions): the SQL and expressions they contain, read
//! with pg_query's PL/pgSQL parser, and whether they run SQL built at run time.

use serde_json::Value;

/// One SQL statement or expression inside a PL/pgSQL body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// The text as PL/pgSQL hands it to the SQL parser.
    pub query: String,
    /// The raw-parse mode PL/pgSQL uses for it (0 = statement, 2 = expression, 3-5 = assignment).
    pub mode: i32,
    /// The text of a dynamic `EXECUTE`/`OPEN … FOR EXECUTE`/`RETURN QUERY EXECUTE`: the
    /// expression's *value* is SQL run later.
    pub dynamic: bool,
}

/// What a PL/pgSQL body contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    pub exprs: Vec<Expr>,
    /// The names of its variables, parameters and records (lower-case): unqualified in
    /// its SQL, they are values, not columns.
    pub vars: Vec<String>,
}

const DYNAMIC_STMTS: &[&str] = &[
    "PLpgSQL_stmt_dynexecute",
    "PLpgSQL_stmt_dynfors",
    "PLpgSQL_stmt_open",
    "PLpgSQL_stmt_return_query",
];

/// Reads every `CREATE FUNCTION … LANGUAGE plpgsql` in `text`; `None` if PL/pgSQL's
/// parser rejects it.
pub fn read_functions(text: &str) -> Option<Body> {
    let v = pg_query::parse_plpgsql(text).ok()?;
    let mut body = Body::default();
    collect(&v, false, &mut body);
    Some(body)
}

/// A dollar-quote tag that does not occur in `body`.
fn tag_for(body: &str) -> String {
    let mut tag = String::from("pgwarden");
    let mut n = 0u32;
    while body.contains(&format!("${tag}$")) {
        n += 1;
        tag = format!("pgwarden{n}");
    }
    tag
}

/// A DO block's body as a function PL/pgSQL's parser can read.
pub fn do_block_as_function(body: &str) -> String {
    let tag = tag_for(body);
    format!("CREATE FUNCTION pgwarden_do() RETURNS void LANGUAGE plpgsql AS ${tag}${body}${tag}$")
}

/// Variables PL/pgSQL declares implicitly in trigger and event-trigger functions.
const TRIGGER_VARS: &str = "new record; old record; tg_op text; tg_name text; \
    tg_when text; tg_level text; tg_table_name text; tg_table_schema text; \
    tg_relname text; tg_relid oid; tg_nargs int; tg_argv text[]; tg_event text; tg_tag text;";

/// Fallbacks for a function body the parser cannot read in its own CREATE FUNCTION
/// (pg_query's PL/pgSQL JSON output is broken for trigger functions): the body nested
/// in a block that declares the trigger variables, as a void and as an int function.
pub fn body_as_functions(body: &str) -> Vec<String> {
    let inner = body
        .trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    let wrapped = format!("DECLARE {TRIGGER_VARS} BEGIN\n{inner};\nEND");
    let tag = tag_for(&wrapped);
    ["void", "int"]
        .iter()
        .map(|ret| {
            format!(
                "CREATE FUNCTION pgwarden_fn() RETURNS {ret} LANGUAGE plpgsql AS ${tag}${wrapped}${tag}$"
            )
        })
        .collect()
}

fn collect(v: &Value, dynamic: bool, out: &mut Body) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect(x, dynamic, out)),
        Value::Object(m) => {
            for (key, val) in m {
                if matches!(key.as_str(), "PLpgSQL_var" | "PLpgSQL_rec") {
                    if let Some(n) = val.get("refname").and_then(Value::as_str) {
                        out.vars.push(n.to_ascii_lowercase());
                    }
                }
                if key == "PLpgSQL_expr" {
                    if let Some(q) = val.get("query").and_then(Value::as_str) {
                        let mode = val
                            .get("parseMode")
                            .and_then(Value::as_i64)
                            .and_then(|m| i32::try_from(m).ok())
                            .unwrap_or(0);
                        out.exprs.push(Expr {
                            query: q.to_string(),
                            mode,
                            dynamic,
                        });
                    }
                    continue;
                }
                if DYNAMIC_STMTS.contains(&key.as_str()) {
                    // Only the dynamic query's own expression is "dynamic"; its
                    // parameters (USING …) and the loop body are ordinary.
                    if let Value::Object(inner) = val {
                        for (k2, v2) in inner {
                            let dyn_field = matches!(k2.as_str(), "query" | "dynquery");
                            let is_static_query = k2 == "query"
                                && matches!(
                                    key.as_str(),
                                    "PLpgSQL_stmt_open" | "PLpgSQL_stmt_return_query"
                                );
                            collect(v2, dyn_field && !is_static_query, out);
                        }
                    }
                    continue;
                }
                collect(val, dynamic, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_static_and_dynamic() {
        let f = do_block_as_function(
            "DECLARE t text := 'x'; BEGIN DELETE FROM a; EXECUTE 'DROP TABLE ' || t; END",
        );
        let b = read_functions(&f).expect("plpgsql parses");
        assert!(b
            .exprs
            .iter()
            .any(|e| e.query.contains("DELETE FROM a") && !e.dynamic));
        assert!(b
            .exprs
            .iter()
            .any(|e| e.query.contains("DROP TABLE") && e.dynamic));
    }

    #[test]
    fn trigger_bodies_via_fallback() {
        let body = "BEGIN NEW.updated_at := now(); DELETE FROM t; RETURN NEW; END";
        let b = body_as_functions(body)
            .iter()
            .find_map(|f| read_functions(f))
            .expect("a fallback parses");
        assert!(b.exprs.iter().any(|e| e.query.contains("DELETE FROM t")));
    }

    #[test]
    fn tag_avoids_collision() {
        let f = do_block_as_function("BEGIN PERFORM '$pgwarden$'; END");
        assert!(f.contains("$pgwarden1$"));
    }
}
