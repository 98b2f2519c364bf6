//! Every entry of `tests/data/adversarial.sql` is caught: its `-- expect:` classes appear.

use crate::classify_support;

use classify_support::{entries, union};
use pgwarden::classify::{classify, Class, SessionFacts};

/// (expected classes, SQL) per entry; lines before an entry's `-- expect:` line are
/// the file's header (first entry only).
fn corpus() -> Vec<(Vec<String>, String)> {
    let text = include_str!("../data/adversarial.sql");
    entries(text)
        .into_iter()
        .map(|e| {
            let mut lines = e.lines().skip_while(|l| !l.starts_with("-- expect:"));
            let head = lines
                .next()
                .unwrap_or_else(|| panic!("entry without '-- expect:': {e}"));
            let expect = head["-- expect:".len()..]
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let sql: Vec<&str> = lines.collect();
            (expect, sql.join("\n"))
        })
        .collect()
}

#[test]
fn corpus_is_big_enough() {
    assert!(corpus().len() >= 80);
}

#[test]
fn every_attempt_is_caught() {
    let facts = SessionFacts::default();
    let mut missed = Vec::new();
    for (expect, sql) in corpus() {
        assert!(!sql.trim().is_empty());
        let got = union(&classify(&sql, &facts));
        for c in &expect {
            assert!(Class::from_name(c).is_some(), "unknown class {c}");
            if !got.contains(&c.as_str()) {
                missed.push(format!("{sql:?}: expected {c}, got {got:?}"));
            }
        }
    }
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}

#[test]
fn nothing_is_classified_as_plain_read_or_write_only() {
    // Each attempt must carry at least one class a production policy guards
    // (`delete.bounded`/`update.bounded` count: the example policy measures them).
    let harmless = ["read", "write", "transaction", "session", "create.other"];
    for (_, sql) in corpus() {
        let got = union(&classify(&sql, &SessionFacts::default()));
        assert!(
            got.iter().any(|c| !harmless.contains(c)),
            "{sql:?} looks harmless: {got:?}"
        );
    }
}
