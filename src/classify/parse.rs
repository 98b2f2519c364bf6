//! Text → statements: PostgreSQL's grammar splits the text, each statement's own text
//! is sliced out by its byte offsets, and its fingerprint is computed.

use super::tree::{to_tree, G};
use sha2::{Digest, Sha256};

/// One statement of the input.
pub struct Piece<'a> {
    /// The statement's own text, trimmed.
    pub text: &'a str,
    pub tree: G,
}

/// Splits and parses `sql`. `Err(())` when the grammar rejects the text (the whole
/// text then counts as one unparsed statement: the server would not run any of it).
pub fn parse(sql: &str, flags: i32) -> Result<Vec<Piece<'_>>, ()> {
    let r = pg_query::parse(sql, flags).map_err(|_| ())?;
    let mut out = Vec::with_capacity(r.protobuf.stmts.len());
    for raw in &r.protobuf.stmts {
        let start = usize::try_from(raw.stmt_location).unwrap_or(0);
        let len = usize::try_from(raw.stmt_len).unwrap_or(0);
        let end = if len == 0 {
            sql.len()
        } else {
            start.saturating_add(len).min(sql.len())
        };
        let text = sql.get(start..end).unwrap_or(sql).trim();
        let tree = raw.stmt.as_deref().map(to_tree).unwrap_or(G::Null);
        out.push(Piece { text, tree });
    }
    Ok(out)
}

/// pg_query's fingerprint (16 hex digits); for text it cannot fingerprint, the first
/// 16 hex digits of the text's SHA-256, so the value is still stable.
pub fn fingerprint(text: &str, flags: i32) -> String {
    match pg_query::fingerprint(text, flags, 0) {
        Ok(f) => f.hex,
        Err(_) => text_hash(text),
    }
}

pub fn text_hash(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    hex::encode(&d[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_each_statement() {
        let p = parse("SELECT 1; /* x; */ DELETE FROM t ;  SELECT ';'", 0).expect("parses");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].text, "SELECT 1");
        assert!(p[1].text.ends_with("DELETE FROM t"));
        assert_eq!(p[2].text, "SELECT ';'");
    }

    #[test]
    fn comments_only_is_empty() {
        assert_eq!(parse("-- nothing\n/* here */", 0).map(|p| p.len()), Ok(0));
        assert!(parse("DELETE FROM", 0).is_err());
    }

    #[test]
    fn fingerprints() {
        assert_eq!(fingerprint("SELECT 1", 0), fingerprint("select  2", 0));
        assert_eq!(fingerprint("not sql at all", 0).len(), 16);
    }
}
