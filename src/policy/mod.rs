//! Pure: the compiled policy and `evaluate(statement, session) -> Verdict`.
