//! Pure: quoting names and values into the SQL pgwarden writes itself (catalog
//! reads, the trash's statements), safe whatever the session's settings are.

/// A double-quoted identifier.
pub(crate) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `schema.name`, both quoted.
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// `schema.name`, or `name` alone when no schema was written; quoted.
pub(crate) fn maybe_qualified(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(s) => qualified(s, name),
        None => ident(name),
    }
}

/// An `E'…'` literal, safe whatever standard_conforming_strings says.
pub(crate) fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("s", "T"), "\"s\".\"T\"");
        assert_eq!(maybe_qualified(None, "t"), "\"t\"");
        assert_eq!(maybe_qualified(Some("s"), "t"), "\"s\".\"t\"");
        assert_eq!(literal("it's a \\"), "E'it''s a \\\\'");
    }
}
