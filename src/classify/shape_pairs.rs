//! Table tests of the shape cache through the classifier: each row is a pair of
//! statements; after the first, the second must (or must not) be served by the
//! first's shape, and in every row the second's classification equals its own,
//! uncached.

use super::{classify, Classifier, ClassifierOptions, SessionFacts};

/// Shares: the second statement is answered by the first's shape.
const SHARE: &[(&str, &str)] = &[
    // pgbench's TPC-B-like transaction.
    (
        "UPDATE pgbench_accounts SET abalance = abalance + 4321 WHERE aid = 77;",
        "UPDATE pgbench_accounts SET abalance = abalance + 12 WHERE aid = 999999;",
    ),
    (
        "SELECT abalance FROM pgbench_accounts WHERE aid = 77;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 5;",
    ),
    (
        "UPDATE pgbench_tellers SET tbalance = tbalance + -5 WHERE tid = 3;",
        "UPDATE pgbench_tellers SET tbalance = tbalance + -4999 WHERE tid = 10;",
    ),
    (
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 77, 5, CURRENT_TIMESTAMP);",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (9, 2, 1, 4999, CURRENT_TIMESTAMP);",
    ),
    ("DELETE FROM t WHERE id = 5", "DELETE FROM t WHERE id = 6"),
    // What an attacker puts in a literal stays a literal.
    (
        "SELECT * FROM users WHERE name = 'bob'",
        "SELECT * FROM users WHERE name = '''; DROP TABLE users; --'",
    ),
    (
        "SELECT * FROM users WHERE name = E'bob'",
        "SELECT * FROM users WHERE name = E'\\'; DROP TABLE users; --'",
    ),
    (
        "UPDATE users SET note = 'x' WHERE id = 1",
        "UPDATE users SET note = '/* */ $$ -- '';DELETE FROM users' WHERE id = 2",
    ),
    // Comments, quoted identifiers and dollar quotes are part of the shape.
    (
        "SELECT /* it's /* nested */ */ a FROM \"it's\" WHERE b = 1 -- '\n",
        "SELECT /* it's /* nested */ */ a FROM \"it's\" WHERE b = 2 -- '\n",
    ),
    ("SELECT $$ a $$, 1", "SELECT $$ a $$, 2"),
    // A statement after the literal keeps its class.
    ("SELECT 1; DROP TABLE t", "SELECT 2; DROP TABLE t"),
    ("SELECT lo_unlink(5)", "SELECT lo_unlink(6)"),
    // A sequence named by a literal is not one of the statement's objects.
    ("SELECT nextval('a')", "SELECT nextval('b')"),
];

/// Never shares: different shapes, or a shape that does not stand for its
/// statements (its parameters judge differently from the literals).
const APART: &[(&str, &str)] = &[
    // The folder reads the literals.
    ("DELETE FROM t WHERE 1 = 2", "DELETE FROM t WHERE 1 = 1"),
    (
        "DELETE FROM t WHERE id = 1 OR 1 = 2",
        "DELETE FROM t WHERE id = 1 OR 1 = 1",
    ),
    (
        "UPDATE t SET v = 0 WHERE 'a' = 'b'",
        "UPDATE t SET v = 0 WHERE 'a' = 'a'",
    ),
    (
        "DELETE FROM t WHERE id = 1 AND true",
        "DELETE FROM t WHERE id = 1 OR true",
    ),
    (
        "DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT 1)",
        "DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT 100000)",
    ),
    // Settings by name.
    (
        "SELECT set_config('work_mem', '1MB', false)",
        "SELECT set_config('search_path', 'evil', false)",
    ),
    (
        "SELECT set_config('x.y', '1', false)",
        "SELECT set_config('session_replication_role', 'replica', false)",
    ),
    ("SET work_mem = 64", "SET statement_timeout = 0"),
    // Literals that are SQL.
    (
        "SELECT dblink_exec('c', 'SELECT 1')",
        "SELECT dblink_exec('c', 'DROP TABLE t')",
    ),
    (
        "SELECT query_to_xml('SELECT 1', true, true, '')",
        "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')",
    ),
    ("DO 'BEGIN NULL; END'", "DO 'BEGIN DELETE FROM t; END'"),
    (
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'DELETE FROM t RETURNING 1'",
    ),
    ("SELECT $$ a $$, 1", "SELECT $$ DROP TABLE t $$, 1"),
    (
        "COPY t FROM PROGRAM 'true'",
        "COPY t FROM PROGRAM 'rm -rf /'",
    ),
    // Prepared statements are the session's, never shared.
    (
        "PREPARE p(int) AS DELETE FROM t WHERE id = 1",
        "PREPARE p(int) AS DELETE FROM t WHERE id = 2",
    ),
    ("EXECUTE p(1)", "EXECUTE p(-1)"),
    // Type modifiers the catalog is asked about.
    (
        "ALTER TABLE t ALTER COLUMN c TYPE varchar(40)",
        "ALTER TABLE t ALTER COLUMN c TYPE varchar(10)",
    ),
    ("TRUNCATE t; SELECT 1", "TRUNCATE t; SELECT 2"),
    // Different literal kinds, different text around a literal.
    ("SELECT 1 FROM t", "SELECT '1' FROM t"),
    ("SELECT 1 FROM t", "SELECT 1.5 FROM t"),
    // pgbench's negative deltas: a second shape (the minus is text).
    (
        "UPDATE pgbench_branches SET bbalance = bbalance + 5 WHERE bid = 1",
        "UPDATE pgbench_branches SET bbalance = bbalance + -5 WHERE bid = 1",
    ),
    (
        "SELECT * FROM t WHERE a = 'x'",
        "SELECT * FROM u WHERE a = 'x'",
    ),
    ("SELECT 'x' -- a\n", "SELECT 'x' -- b\n"),
    // What the scanner is not sure of gets no shape.
    ("SELECT U&'a'", "SELECT U&'\\0061'"),
    ("SELECT 'a'\n'b'", "SELECT 'c'\n'd'"),
    ("SELECT 0x1", "SELECT 0x2"),
];

fn cached() -> Classifier {
    Classifier::new(ClassifierOptions::default())
}

/// Classifies `a` then `b` with one classifier; whether `b` came from `a`'s shape.
fn pair(c: &Classifier, a: &str, b: &str, facts: &SessionFacts) -> bool {
    let mut sa = super::literals::Shape::default();
    let mut sb = super::literals::Shape::default();
    let ha = super::literals::shape_into(a, facts, &mut sa);
    let hb = super::literals::shape_into(b, facts, &mut sb);
    let _ = c.classify_shaped(a, ha.then_some(&sa), facts, |_| {});
    let (v, by_shape) = c.classify_shaped(b, hb.then_some(&sb), facts, |_| {});
    let want = classify(b, facts);
    assert_eq!(v.len(), want.len(), "{b}");
    for (got, want) in v.iter().zip(&want) {
        assert_eq!(got.classes, want.classes, "{a} → {b}");
        assert_eq!(got.objects, want.objects, "{a} → {b}");
        assert_eq!(got.fingerprint, want.fingerprint, "{a} → {b}");
        assert_eq!(got.prepares, want.prepares, "{a} → {b}");
        assert_eq!(got.executes, want.executes, "{a} → {b}");
        assert_eq!(got.asks, want.asks, "{a} → {b}");
    }
    by_shape && ha && hb && sa.key() == sb.key()
}

#[test]
fn pairs_that_share_a_shape() {
    let f = SessionFacts::default();
    for (a, b) in SHARE {
        assert!(pair(&cached(), a, b, &f), "should share: {a} → {b}");
    }
}

#[test]
fn pairs_that_never_share_one() {
    let f = SessionFacts::default();
    for (a, b) in APART {
        assert!(!pair(&cached(), a, b, &f), "must not share: {a} → {b}");
        // Nor the other way round.
        assert!(!pair(&cached(), b, a, &f), "must not share: {b} → {a}");
    }
}

#[test]
fn one_shape_under_other_facts_is_another_entry() {
    let c = cached();
    let utf8 = SessionFacts::default();
    let latin1 = SessionFacts {
        client_encoding: "LATIN1".into(),
        ..SessionFacts::default()
    };
    let (a, b) = SHARE[0];
    assert!(pair(&c, a, b, &utf8));
    let mut s = super::literals::Shape::default();
    assert!(super::literals::shape_into(b, &latin1, &mut s));
    // Not a hit: classified (and stored) anew under these facts.
    let (hits, misses) = c.cache_stats();
    let _ = c.classify_shaped(b, Some(&s), &latin1, |_| {});
    assert_eq!(c.cache_stats(), (hits, misses + 1));
    let _ = c.classify_shaped(b, Some(&s), &latin1, |_| {});
    assert_eq!(c.cache_stats(), (hits + 1, misses + 1));
    // standard_conforming_strings off: no shape at all.
    let off = SessionFacts {
        standard_conforming_strings: false,
        ..SessionFacts::default()
    };
    assert!(!super::literals::shape_into(b, &off, &mut s));
}

#[test]
fn no_cache_no_shapes() {
    let c = Classifier::new(ClassifierOptions {
        cache_capacity: 0,
        ..ClassifierOptions::default()
    });
    let f = SessionFacts::default();
    let (a, b) = SHARE[0];
    assert!(!pair(&c, a, b, &f));
    assert_eq!(c.cache_stats().0, 0);
}

/// Templates whose `?` are filled with random literals: through one cached
/// classifier, every statement classifies exactly as it does uncached, whichever
/// statement of its shape came first.
const TEMPLATES: &[&str] = &[
    "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?",
    "SELECT abalance FROM pgbench_accounts WHERE aid = ?",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)",
    "DELETE FROM t WHERE ? = ?",
    "DELETE FROM t WHERE id = ? OR ? = ?",
    "UPDATE t SET v = ? WHERE id = ? AND ? = ?",
    "DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT ?)",
    "SELECT set_config(?, ?, false)",
    "SELECT dblink_exec(?, ?)",
    "SELECT query_to_xml(?, true, true, '')",
    "SELECT * FROM t WHERE name = ? AND id < ?",
    "EXPLAIN (ANALYZE ?) DELETE FROM t",
    "SELECT pg_terminate_backend(?)",
    "DELETE FROM t WHERE id = ? AND length(?) >= ?",
    "SELECT ?; DELETE FROM t WHERE id = ?",
    "SELECT setval(?, ?)",
    "SELECT lo_import(?)",
    "UPDATE pg_settings SET setting = ? WHERE name = ?",
    "DELETE FROM t WHERE name LIKE ?",
    "SELECT * FROM t WHERE id = ? FOR UPDATE",
    "COPY t TO ?",
    "WITH d AS (DELETE FROM t WHERE id = ? RETURNING *) SELECT ?",
    "SELECT * FROM t WHERE a = ? -- ?\n",
    "ALTER TABLE t ALTER COLUMN c TYPE varchar(?)",
    "ALTER TABLE t ALTER COLUMN c TYPE numeric(?, ?)",
    "TRUNCATE t; SELECT ?",
];

const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "99999999999",
    "1.5",
    "'1'",
    "'a'",
    "'true'",
    "'search_path'",
    "'work_mem'",
    "'session_replication_role'",
    "'replica'",
    "'DROP TABLE t'",
    "'SELECT 1'",
    "'DELETE FROM t'",
    "'''; DROP TABLE t; --'",
    "E'\\'; DROP TABLE t; --'",
    "'%'",
    "''",
];

#[test]
fn random_literals_classify_as_written() {
    let f = SessionFacts::default();
    let c = cached();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut shared = 0;
    for _ in 0..3000 {
        let t = TEMPLATES[(next() as usize) % TEMPLATES.len()];
        let mut sql = String::new();
        for (i, part) in t.split('?').enumerate() {
            if i > 0 {
                sql.push_str(VALUES[(next() as usize) % VALUES.len()]);
            }
            sql.push_str(part);
        }
        let mut s = super::literals::Shape::default();
        let has = super::literals::shape_into(&sql, &f, &mut s);
        let (got, by_shape) = c.classify_shaped(&sql, has.then_some(&s), &f, |_| {});
        shared += usize::from(by_shape);
        let want = classify(&sql, &f);
        assert_eq!(got.len(), want.len(), "{sql}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((&g.classes, &g.objects), (&w.classes, &w.objects), "{sql}");
            assert_eq!(g.fingerprint, w.fingerprint, "{sql}");
            assert_eq!(g.asks, w.asks, "{sql}");
        }
    }
    // The shape cache was used, not only bypassed.
    assert!(shared > 500, "{shared}");
}
