//! Pure: SQL text (+ session facts) → one classified `Statement` per statement.
//!
//! Text is parsed with PostgreSQL's own grammar (`pg_query`); each statement's tree is
//! turned into a generic tree (`tree`) so the walk (`walk`) cannot skip a node type or
//! field, and nested statements (CTEs, EXPLAIN ANALYZE, PREPARE bodies, rule actions,
//! function bodies, DO blocks) add their classes to the statement that holds them.
//! What the grammar rejects is one statement of class `unparsed`.
//!
//! Class choices worth knowing:
//! - plain `VACUUM`/`ANALYZE` are `read` (no data changes); `VACUUM FULL`, `CLUSTER`,
//!   `REINDEX`, `REFRESH MATERIALIZED VIEW` and `CHECKPOINT` are `maintenance`;
//! - `LOCK` is `transaction`; `NOTIFY` is `write`; `LISTEN`/`UNLISTEN`/`DISCARD` are `session`;
//! - `EXECUTE name` is `code.opaque` with `executes` set: the session replaces its
//!   classes with those stored for the PREPARE of that name;
//! - `COPY` to or from a server-side file adds `system` (the server's OS user does it);
//! - a SQL or PL/pgSQL function body's statically visible statements add their classes
//!   to `CREATE FUNCTION`; other languages and dynamic SQL are `code.opaque`.

mod asks;
mod bounded;
mod cache;
mod decode;
pub mod deep;
mod fold;
mod functions;
pub mod literals;
#[cfg(test)]
mod node_names;
mod objects;
pub(crate) mod parse;
mod plpgsql;
mod session;
#[cfg(test)]
mod shape_pairs;
mod shapes;
mod startup;
mod statement;
pub(crate) mod tree;
mod walk;

pub use functions::DEFAULT_DANGEROUS;
pub use session::encoding_is_safe;
pub use startup::startup_settings;
pub use statement::{CatalogAsk, Class, SessionFacts, Statement};

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// SQL bytes as text for the classifier, decoded exactly in the session's client
/// encoding (`decode`), and whether they were: if not, the text is decoded lossily
/// (for the audit log only) and must be classified with [`SessionFacts::unreadable`].
pub fn read_text<'a>(sql: &'a [u8], facts: &SessionFacts) -> (Cow<'a, str>, bool) {
    match decode::decode(sql, &facts.client_encoding) {
        Some(t) => (t, true),
        None => (String::from_utf8_lossy(sql), false),
    }
}

/// Classifier settings.
#[derive(Debug, Clone)]
pub struct ClassifierOptions {
    /// Functions whose call anywhere in a statement adds class `system`. Matched on
    /// the function's own name, case-insensitively, whatever schema qualifies it.
    pub dangerous_functions: Vec<String>,
    /// Cache entries kept (0 disables the cache).
    pub cache_capacity: usize,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        ClassifierOptions {
            dangerous_functions: DEFAULT_DANGEROUS.iter().map(|s| s.to_string()).collect(),
            cache_capacity: 10_000,
        }
    }
}

/// A classifier shared by all sessions (`Send + Sync`, use through an `Arc`).
pub struct Classifier {
    dangerous: Vec<String>,
    cache: cache::Cache,
    /// Classifications by literal-insensitive shape (same capacity as `cache`).
    shapes: shapes::Shapes,
}

impl Classifier {
    pub fn new(opts: ClassifierOptions) -> Classifier {
        let mut dangerous: Vec<String> = opts
            .dangerous_functions
            .iter()
            .map(|s| functions::norm(s))
            .filter(|s| !s.is_empty())
            .map(|s| match s.rsplit_once('.') {
                // A configured `pg_catalog.x` matches `x` in any schema.
                Some((_, name)) => name.to_string(),
                None => s,
            })
            .collect();
        dangerous.sort();
        dangerous.dedup();
        Classifier {
            dangerous,
            cache: cache::Cache::new(opts.cache_capacity),
            shapes: shapes::Shapes::new(opts.cache_capacity, shapes::MAX_BYTES),
        }
    }

    /// Classifies `sql` (cached by text and session facts).
    pub fn classify(&self, sql: &str, facts: &SessionFacts) -> Arc<[Statement]> {
        self.classify_observed(sql, facts, |_| {})
    }

    /// As `classify`, and tells `parsed` how long parsing took when the cache did
    /// not hold the text.
    pub fn classify_observed(
        &self,
        sql: &str,
        facts: &SessionFacts,
        parsed: impl FnOnce(std::time::Duration),
    ) -> Arc<[Statement]> {
        self.cache.get_or_insert(sql, facts, || {
            let started = std::time::Instant::now();
            let v = classify_with(sql, facts, &self.dangerous);
            parsed(started.elapsed());
            v
        })
    }

    /// As `classify_observed`, by the statement's literal-insensitive `shape` when it
    /// has one (`literals::shape_into`): statements that differ only in their
    /// literals are parsed once. The first statement of a shape is classified both as
    /// written and as its shape; the shape stands for its statements only if both give
    /// exactly the same judgement (`shapes::same_judgement`), and otherwise every
    /// statement of that shape is classified as written. Also says whether the
    /// classification is the shape's (true: valid for every statement of the shape).
    pub fn classify_shaped(
        &self,
        sql: &str,
        shape: Option<&literals::Shape>,
        facts: &SessionFacts,
        parsed: impl FnOnce(std::time::Duration),
    ) -> (Arc<[Statement]>, bool) {
        let Some(shape) = shape.filter(|_| self.cache.capacity() > 0) else {
            return (self.classify_observed(sql, facts, parsed), false);
        };
        match self.shapes.get(shape, facts) {
            shapes::Lookup::Stands(v) => {
                self.cache.count_hit();
                (v, true)
            }
            shapes::Lookup::Refused => (self.classify_observed(sql, facts, parsed), false),
            shapes::Lookup::Unknown => {
                let started = std::time::Instant::now();
                let written = classify_with(sql, facts, &self.dangerous);
                let shaped = classify_with(shape.text(), facts, &self.dangerous);
                parsed(started.elapsed());
                match shapes::same_judgement(&written, &shaped) {
                    Some(v) => {
                        let v: Arc<[Statement]> = v.into();
                        self.cache.count_miss();
                        self.shapes.insert(shape, facts, Some(Arc::clone(&v)));
                        (v, true)
                    }
                    None => {
                        self.cache.count_miss();
                        self.shapes.insert(shape, facts, None);
                        (self.cache.insert(sql, facts, written), false)
                    }
                }
            }
        }
    }

    /// A FunctionCall message of the function `oid`, as a statement the policy judges.
    pub fn function_call(&self, oid: u32) -> Statement {
        let (name, mut classes) = functions::function_call(&self.dangerous, oid);
        classes.sort();
        classes.dedup();
        let sql = match name {
            Some(n) => format!("<FunctionCall of {n} (oid {oid})>"),
            None => format!("<FunctionCall of function oid {oid}>"),
        };
        Statement {
            sql,
            classes,
            objects: vec![name.map_or_else(|| format!("oid:{oid}"), str::to_string)],
            fingerprint: format!("functioncall-{oid}"),
            prepares: None,
            executes: None,
            deallocates: None,
            asks: Vec::new(),
        }
    }

    /// Counts a hit in a cache that sits in front of this one (a session's own).
    pub fn count_hit(&self) {
        self.cache.count_hit();
    }

    /// Entries the cache keeps (0: no cache).
    pub fn cache_capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// (hits, misses) since creation.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.stats()
    }
}

/// Classifies every statement in `sql` with the default options, without a cache.
/// Never fails: text the grammar cannot parse comes back as one statement of class
/// `unparsed`; empty text or only comments gives no statements.
pub fn classify(sql: &str, facts: &SessionFacts) -> Vec<Statement> {
    static DEFAULTS: OnceLock<Vec<String>> = OnceLock::new();
    let dangerous =
        DEFAULTS.get_or_init(|| DEFAULT_DANGEROUS.iter().map(|s| s.to_string()).collect());
    classify_with(sql, facts, dangerous)
}

/// Classifies on the calling thread when the text is short, on a big-stack pool
/// thread otherwise (`deep`); a panic anywhere below (in the parser bindings or here)
/// is caught and the text is `unparsed`, never forwarded unclassified and never a
/// crashed session.
fn classify_with(sql: &str, facts: &SessionFacts, dangerous: &[String]) -> Vec<Statement> {
    let read = if deep::inline(sql) {
        deep::here(|| classify_inner(sql, facts, dangerous))
    } else {
        let (text, session, list) = (sql.to_string(), facts.clone(), dangerous.to_vec());
        deep::run(move || classify_inner(&text, &session, &list))
    };
    read.unwrap_or_else(|| {
        let mut s = unparsed(sql);
        if session::unreadable(facts) {
            s.classes.push(Class::Unreadable);
        }
        vec![s]
    })
}

fn unparsed(sql: &str) -> Statement {
    Statement {
        sql: sql.trim().to_string(),
        classes: vec![Class::Unparsed],
        objects: Vec::new(),
        fingerprint: parse::unparsed_fingerprint(sql),
        prepares: None,
        executes: None,
        deallocates: None,
        asks: Vec::new(),
    }
}

fn classify_inner(sql: &str, facts: &SessionFacts, dangerous: &[String]) -> Vec<Statement> {
    let flags = if facts.standard_conforming_strings {
        0
    } else {
        pg_query::ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS.bits()
    };
    let unreadable = session::unreadable(facts);
    let mut out = match parse::parse(sql, flags) {
        Ok(pieces) => pieces
            .iter()
            .map(|p| {
                let mut w = walk::Walker::new(dangerous, flags, p.text);
                w.statement(&p.tree);
                let f = w.finish();
                Statement {
                    sql: p.text.to_string(),
                    classes: f.classes,
                    objects: f.objects,
                    fingerprint: parse::fingerprint(&p.tree),
                    prepares: f.prepares,
                    executes: f.executes,
                    deallocates: f.deallocates,
                    asks: f.asks,
                }
            })
            .collect(),
        Err(()) => vec![unparsed(sql)],
    };
    // A statement that changes how text reads (SET client_encoding, set_config of
    // standard_conforming_strings, a write to pg_settings…) changes it for the
    // statements after it in the same text, before the server confirms anything.
    let changed_at = out.iter().position(|s| {
        s.classes.iter().any(|c| {
            matches!(
                c,
                Class::SessionEncoding | Class::SessionStringLiterals | Class::SystemCatalog
            )
        })
    });
    for (i, s) in out.iter_mut().enumerate() {
        if unreadable || changed_at.is_some_and(|at| i > at) {
            s.classes.push(Class::Unreadable);
            s.classes.sort();
            s.classes.dedup();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_setting_makes_the_rest_of_the_text_unreadable() {
        let f = SessionFacts::default();
        let s = classify(
            "SELECT 1; SET standard_conforming_strings = off; SELECT 'a\\'; DROP TABLE t; --'",
            &f,
        );
        assert!(!s[0].classes.contains(&Class::Unreadable));
        assert!(!s[1].classes.contains(&Class::Unreadable));
        assert!(s[2..]
            .iter()
            .all(|s| s.classes.contains(&Class::Unreadable)));
        let s = classify("SET client_encoding = 'UTF8'; SELECT 1", &f);
        assert!(!s[1].classes.contains(&Class::Unreadable));
    }

    #[test]
    fn text_that_does_not_decode_exactly_is_unreadable() {
        let latin1 = SessionFacts {
            client_encoding: "LATIN1".into(),
            ..SessionFacts::default()
        };
        // Distinct tags in LATIN1: the server sees SELECT, DROP, SELECT.
        let sql =
            b"SELECT $\xe9$ $\xfc$ || $\xe9$; DROP TABLE t; SELECT $\xfc$ || $\xfc$ -- $\xe9$";
        // Read lossily, both tags are U+FFFD and the text is one harmless SELECT.
        let lossy = classify(&String::from_utf8_lossy(sql), &SessionFacts::default());
        assert_eq!(lossy.len(), 1);
        assert_eq!(lossy[0].classes, vec![Class::Read]);
        let (text, exact) = read_text(sql, &latin1);
        assert!(exact);
        let s = classify(&text, &latin1);
        assert!(
            s.iter().any(|s| s.classes.contains(&Class::DropTable)),
            "{s:?}"
        );
        // The same bytes in a UTF8 session do not decode: unreadable, never lossy.
        let utf8 = SessionFacts::default();
        let (text, exact) = read_text(sql, &utf8);
        assert!(!exact);
        let s = classify(&text, &utf8.unreadable());
        assert!(s.iter().all(|s| s.classes.contains(&Class::Unreadable)));
    }

    #[test]
    fn classifier_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Classifier>();
    }

    #[test]
    fn cached_equals_uncached() {
        let c = Classifier::new(ClassifierOptions::default());
        let f = SessionFacts::default();
        let sql = "DELETE FROM t; SELECT 1";
        let a = c.classify(sql, &f);
        let b = c.classify(sql, &f);
        assert_eq!(&a[..], &classify(sql, &f)[..]);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(c.cache_stats(), (1, 1));
    }

    fn chain(head: &str, n: usize) -> String {
        format!("{head}{}", " || 'a'".repeat(n))
    }

    #[test]
    fn deep_expressions_are_read() {
        let f = SessionFacts::default();
        // ~700 nested `||` is about what PostgreSQL's parser library serializes; prost's
        // recursion limit made ~50 unreadable.
        let s = &classify(&chain("SELECT 'a'", 700), &f)[0];
        assert_eq!(s.classes, [Class::Read]);
        let s = &classify(&chain("SELECT pg_terminate_backend(1)::text", 700), &f)[0];
        assert!(
            !s.has(Class::Unparsed) && !s.has(Class::Read),
            "{:?}",
            s.classes
        );
        let union = format!("SELECT 1{}", " UNION ALL SELECT 1".repeat(1000));
        assert_eq!(classify(&union, &f)[0].classes, [Class::Read]);
        let dml = format!("DELETE FROM t WHERE v = {}", chain("v", 700));
        let short = classify("DELETE FROM t WHERE v = v || 'a'", &f);
        assert_eq!(classify(&dml, &f)[0].classes, short[0].classes);
        assert!(!short[0].has(Class::Unparsed));
    }

    #[test]
    fn hostile_depth_is_unparsed_not_a_crash() {
        let f = SessionFacts::default();
        for sql in [
            chain("SELECT 'a'", 100_000),
            format!("DELETE FROM t WHERE v = {}", chain("'a'", 100_000)),
            format!(
                "SELECT {}1{}",
                "lower(".repeat(100_000),
                ")".repeat(100_000)
            ),
            format!(
                "SELECT {}1{}",
                "(SELECT ".repeat(20_000),
                ")".repeat(20_000)
            ),
        ] {
            assert_eq!(classify(&sql, &f)[0].classes, [Class::Unparsed]);
        }
    }

    #[test]
    fn custom_dangerous_list() {
        let c = Classifier::new(ClassifierOptions {
            dangerous_functions: vec!["Public.Nuke".into()],
            cache_capacity: 0,
        });
        let f = SessionFacts::default();
        assert!(c.classify("SELECT nuke()", &f)[0].has(Class::System));
        assert!(!c.classify("SELECT lo_unlink(1)", &f)[0].has(Class::System));
    }
}
