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

/// Deepest generic tree the walk is given. PostgreSQL's parser already refuses what
/// would overrun its own stack budget; this bound keeps the walk's recursion (and its
/// stack, see `deep`) bounded whatever the parser lets through. Deeper text is
/// unparsed: held or blocked by `on_unparsed`, never forwarded as harmless.
pub const MAX_TREE_DEPTH: usize = 10_000;

/// Splits and parses `sql`. `Err(())` when the grammar rejects the text (the whole
/// text then counts as one unparsed statement: the server would not run any of it),
/// or a statement nests deeper than [`MAX_TREE_DEPTH`].
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
        if depth(&tree) > MAX_TREE_DEPTH {
            return Err(());
        }
        out.push(Piece { text, tree });
    }
    Ok(out)
}

/// Nesting depth of a tree, counted without recursion.
pub fn depth(tree: &G) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(tree, 1usize)];
    while let Some((g, d)) = todo.pop() {
        deepest = deepest.max(d);
        match g {
            G::List(v) => todo.extend(v.iter().map(|x| (x, d + 1))),
            G::Obj(o) => todo.extend(o.fields.iter().map(|(_, x)| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// A structural fingerprint of a parsed statement (16 hex digits): FNV-1a over the
/// tree, which has no source locations, with constant values left out. Texts that
/// differ only in literals, whitespace, comments or keyword case get the same
/// fingerprint, as with pg_query's own, without parsing the text a second time.
pub fn fingerprint(tree: &G) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    hash_tree(tree, &mut h);
    format!("{:016x}", h.0)
}

struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn hash_tree(g: &G, h: &mut Fnv) {
    match g {
        G::Null => h.bytes(&[0]),
        G::Bool(b) => h.bytes(&[1, u8::from(*b)]),
        G::Int(i) => {
            h.bytes(&[2]);
            h.bytes(&i.to_le_bytes());
        }
        G::Float(f) => {
            h.bytes(&[3]);
            h.bytes(&f.to_bits().to_le_bytes());
        }
        G::Str(s) => {
            h.bytes(&[4]);
            h.bytes(s.as_bytes());
            h.bytes(&[0xff]);
        }
        G::List(v) => {
            h.bytes(&[5]);
            h.bytes(&(v.len() as u64).to_le_bytes());
            for x in v {
                hash_tree(x, h);
            }
        }
        G::Obj(o) => {
            h.bytes(&[6]);
            h.bytes(o.name.as_bytes());
            h.bytes(&[0xff]);
            if o.name == "AConst" {
                return;
            }
            for (k, v) in &o.fields {
                h.bytes(k.as_bytes());
                h.bytes(&[0xfe]);
                hash_tree(v, h);
            }
        }
    }
}

/// `text` without the comments and whitespace in front of it (block comments nest,
/// as in PostgreSQL). An unclosed comment is kept: the text is then all comment.
pub fn without_leading_comments(text: &str) -> &str {
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            match after.find('\n') {
                Some(i) => rest = after[i + 1..].trim_start(),
                None => return "",
            }
        } else if rest.starts_with("/*") {
            let bytes = rest.as_bytes();
            let (mut depth, mut i) = (0usize, 0usize);
            while i + 1 < bytes.len() {
                match &bytes[i..i + 2] {
                    b"/*" => {
                        depth += 1;
                        i += 2;
                    }
                    b"*/" => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => i += 1,
                }
            }
            if depth != 0 {
                return rest;
            }
            rest = rest[i..].trim_start();
        } else {
            return rest;
        }
    }
}

/// The fingerprint of text the grammar rejected: a hash of the text without the
/// comments in front of it, so a confirmation prefix (`/* pgwarden:confirm=… */`)
/// leaves it unchanged, as it does for parsed statements.
pub fn unparsed_fingerprint(text: &str) -> String {
    text_hash(without_leading_comments(text).trim_end())
}

pub fn text_hash(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    hex::encode(&d[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting_without_recursion() {
        assert_eq!(depth(&G::Null), 1);
        let mut g = G::Int(1);
        for _ in 0..100_000 {
            g = G::List(vec![g]);
        }
        assert_eq!(depth(&g), 100_001);
        // Dropping a tree this deep would recurse once per level: leak it in the test.
        std::mem::forget(g);
    }

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
    fn leading_comments() {
        assert_eq!(without_leading_comments("  SELEC 1"), "SELEC 1");
        assert_eq!(
            without_leading_comments("/* pgwarden:confirm=AB */ SELEC 1"),
            "SELEC 1"
        );
        assert_eq!(
            without_leading_comments("-- x\n/* a /* b */ c */\n SELEC /* k */ 1"),
            "SELEC /* k */ 1"
        );
        assert_eq!(without_leading_comments("/* open"), "/* open");
        assert_eq!(
            unparsed_fingerprint("/* pgwarden:confirm=XY */ SELEC 1"),
            unparsed_fingerprint("SELEC 1")
        );
        assert_ne!(
            unparsed_fingerprint("SELEC 1"),
            unparsed_fingerprint("SELEC 2")
        );
    }

    #[test]
    fn fingerprints() {
        let fp = |s: &str| fingerprint(&parse(s, 0).unwrap()[0].tree);
        assert_eq!(fp("SELECT 1"), fp("select  /* c */ 2"));
        assert_eq!(
            fp("DELETE FROM t WHERE id = 5"),
            fp("delete from t where id = 77")
        );
        assert_ne!(
            fp("DELETE FROM t WHERE id = 5"),
            fp("DELETE FROM u WHERE id = 5")
        );
        assert_ne!(fp("SELECT a FROM t"), fp("SELECT b FROM t"));
        assert_eq!(fp("SELECT 1").len(), 16);
    }
}
