//! Every statement of the parse-coverage corpus classifies, none as `unparsed`.

use crate::classify_support;

use classify_support::entries;
use pgwarden::classify::{classify, Class, SessionFacts};

#[test]
fn corpus_statements_all_classify() {
    let text = include_str!("../data/pg-statements.sql");
    let entries = entries(text);
    assert_eq!(entries.len(), 211, "corpus size");
    let facts = SessionFacts::default();
    let mut failures = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let stmts = classify(e, &facts);
        if stmts.is_empty()
            || stmts
                .iter()
                .any(|s| s.has(Class::Unparsed) || s.classes.is_empty())
        {
            failures.push(format!("#{i}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "unclassified:\n{}",
        failures.join("\n")
    );
}

#[test]
fn corpus_as_one_string_keeps_every_statement() {
    let text = include_str!("../data/pg-statements.sql");
    let joined = entries(text).join(";\n");
    let stmts = classify(&joined, &SessionFacts::default());
    assert_eq!(stmts.len(), 211);
}
