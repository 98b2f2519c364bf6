//! Pure: SQL text (+ session facts) → one classified `Statement` per statement.

mod statement;

pub use statement::{Class, SessionFacts, Statement};

/// Classifies every statement in `sql`. Never fails: text the grammar cannot parse
/// comes back as one statement of class `unparsed`.
pub fn classify(sql: &str, _facts: &SessionFacts) -> Vec<Statement> {
    // Placeholder until the classifier lands: everything is unparsed (fails closed).
    vec![Statement {
        sql: sql.trim().to_string(),
        classes: vec![Class::Unparsed],
        objects: Vec::new(),
        fingerprint: String::new(),
        prepares: None,
        executes: None,
        deallocates: None,
    }]
}
