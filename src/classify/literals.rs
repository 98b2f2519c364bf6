//! A statement's literal-insensitive shape: its text with every number and string
//! literal replaced by a parameter (`$1`, `$2`, …), found by one pass of a scanner
//! that follows PostgreSQL's lexer (quotes, `E''` escapes, dollar quotes, nested
//! comments, quoted identifiers). Anything the scanner is not sure of gives no shape.
//!
//! A shape is only a cache key and the text the classifier judges for every
//! statement of that shape; the classifier's shape cache decides whether the shape
//! may stand for its statements (see `shapes.rs`). The key also records each
//! literal's kind (integer, decimal, string, escape string), so that statements whose
//! literals parse to different trees never share it.

use super::statement::SessionFacts;

/// Longer texts, or texts with more literals, get no shape.
pub const MAX_TEXT: usize = 16 * 1024;
pub const MAX_LITERALS: usize = 1000;

/// The shape of one statement text: the parameterised text, then a NUL (which no
/// statement text contains), then one byte per literal for its kind.
#[derive(Debug, Default, Clone)]
pub struct Shape {
    key: String,
    text_len: usize,
}

impl Shape {
    /// The parameterised text (valid SQL when the original was).
    pub fn text(&self) -> &str {
        &self.key[..self.text_len]
    }

    /// The cache key: the text and the literal kinds.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn clear(&mut self) {
        self.key.clear();
        self.text_len = 0;
    }
}

/// Literal kinds as recorded in the key.
const INTEGER: char = 'i';
const DECIMAL: char = 'd';
const STRING: char = 's';
const ESCAPE: char = 'e';

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn ident_cont(c: u8) -> bool {
    ident_start(c) || c.is_ascii_digit() || c == b'$'
}

fn space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// Characters copied as they are outside literals: operators and punctuation.
fn plain(c: u8) -> bool {
    matches!(
        c,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
            | b'('
            | b')'
            | b'['
            | b']'
            | b','
            | b';'
            | b':'
            | b'.'
    )
}

/// Writes the shape of `sql` into `out` and returns true; or returns false, with
/// `out` empty, when `sql` has no literal, when the session facts make text
/// unreliable to read (standard_conforming_strings off, an unsafe encoding), or when
/// it holds anything the scanner does not handle with certainty: parameters
/// already (`$1`), `U&''`, `B''`, `X''`, `N''` or other prefixed strings, strings
/// continued on the next line, numbers running into words (`0x1`, `1e`), a
/// backslash outside a string, an unterminated quote or comment.
pub fn shape_into(sql: &str, facts: &SessionFacts, out: &mut Shape) -> bool {
    out.clear();
    // A NUL would make the key ("text NUL kinds") ambiguous; no protocol message
    // carries one in its text (PostgreSQL ends the text at the first NUL), but a
    // file given to `pgwarden explain` may.
    if sql.len() > MAX_TEXT || sql.contains('\0') || super::session::unreadable(facts) {
        return false;
    }
    let mut kinds = String::new();
    if scan(sql.as_bytes(), sql, &mut out.key, &mut kinds).is_none() || kinds.is_empty() {
        out.clear();
        return false;
    }
    out.text_len = out.key.len();
    out.key.push('\0');
    out.key.push_str(&kinds);
    true
}

/// The end of a string literal body starting after its opening quote at `i`:
/// the index just past the closing quote. `''` is a quote inside; in an escape
/// string (`backslash`) so is `\'`, and a backslash escapes whatever follows.
fn string_end(b: &[u8], mut i: usize, backslash: bool) -> Option<usize> {
    loop {
        match *b.get(i)? {
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i + 1),
            b'\\' if backslash => {
                b.get(i + 1)?;
                i += 2;
            }
            _ => i += 1,
        }
    }
}

/// After a string literal ends at `i`: false when what follows could change what
/// the literal is: another string, continued across a newline (`'a'\n'b'` is one
/// literal, `'a' -- c\n'b'` too, `'a' 'b'` an error), or a word or number run into it.
fn string_may_end(b: &[u8], i: usize) -> bool {
    let touching = b
        .get(i)
        .is_some_and(|&c| ident_cont(c) || c == b'\'' || c == b'"');
    !touching && !follows_string(b, i)
}

/// Whether, from `j` on, comments and spaces lead to a quote.
fn follows_string(b: &[u8], mut j: usize) -> bool {
    loop {
        match b.get(j) {
            Some(b'\'') => return true,
            Some(&c) if space(c) => j += 1,
            Some(b'-') if b.get(j + 1) == Some(&b'-') => {
                while b.get(j).is_some_and(|&c| c != b'\n' && c != b'\r') {
                    j += 1;
                }
            }
            Some(b'/') if b.get(j + 1) == Some(&b'*') => match comment_end(b, j) {
                Some(e) => j = e,
                None => return true,
            },
            _ => return false,
        }
    }
}

/// The index just past a block comment starting at `i` (`/*`); they nest.
fn comment_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match (b.get(i)?, b.get(i + 1)) {
            (b'/', Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
}

/// A dollar quote's opening tag at `i` (`$$` or `$tag$`): its length.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j).is_some_and(|&c| ident_start(c)) {
        j += 1;
        while b
            .get(j)
            .is_some_and(|&c| ident_start(c) || c.is_ascii_digit())
        {
            j += 1;
        }
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1 - i)
}

/// The end of a number starting at `i`: digits, an optional fraction, an optional
/// exponent; and whether it is a decimal. None when a word, a dot or a quote runs
/// into it (`0x1` is `0 AS x1` in PostgreSQL 15, `1..2` a range in PL/pgSQL).
fn number_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let digits = |b: &[u8], mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    i = digits(b, i);
    let mut decimal = false;
    if b.get(i) == Some(&b'.') {
        decimal = true;
        i = digits(b, i + 1);
    }
    if matches!(b.get(i), Some(b'e') | Some(b'E')) {
        decimal = true;
        i += 1;
        if matches!(b.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        i = digits(b, i);
    }
    match b.get(i) {
        Some(&c) if ident_cont(c) || matches!(c, b'.' | b'\'' | b'"') => None,
        _ => Some((i, decimal)),
    }
}

fn scan(b: &[u8], sql: &str, out: &mut String, kinds: &mut String) -> Option<()> {
    let mut i = 0;
    let param = |out: &mut String, kinds: &mut String, kind: char| -> Option<()> {
        if kinds.len() >= MAX_LITERALS {
            return None;
        }
        kinds.push(kind);
        out.push('$');
        out.push_str(&kinds.len().to_string());
        Some(())
    };
    while let Some(&c) = b.get(i) {
        // Every branch copies whole tokens: `i` stays on a char boundary.
        let start = i;
        match c {
            _ if space(c) => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while b.get(i).is_some_and(|&c| c != b'\n' && c != b'\r') {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = comment_end(b, i)?,
            b'\'' => {
                let end = string_end(b, i + 1, false)?;
                if !string_may_end(b, end) {
                    return None;
                }
                param(out, kinds, STRING)?;
                i = end;
                continue;
            }
            b'"' => {
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'"' if b.get(i + 1) == Some(&b'"') => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'$' => {
                // `$1` (a parameter already) or `$` that opens no dollar quote.
                let tag_len = dollar_tag(b, i)?;
                let tag = &b[i..i + tag_len];
                let body = i + tag_len;
                let close = b[body..].windows(tag_len).position(|w| w == tag)?;
                i = body + close + tag_len;
                // `$a$…$a$b`: the closing tag runs into a word.
                if b.get(i).is_some_and(|&c| ident_cont(c)) {
                    return None;
                }
            }
            b'0'..=b'9' => {
                let (end, decimal) = number_end(b, i)?;
                param(out, kinds, if decimal { DECIMAL } else { INTEGER })?;
                i = end;
                continue;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => return None,
            _ if ident_start(c) => {
                while b.get(i).is_some_and(|&c| ident_cont(c)) {
                    i += 1;
                }
                let word = &b[start..i];
                match b.get(i) {
                    Some(b'\'') if word.eq_ignore_ascii_case(b"e") => {
                        let end = string_end(b, i + 1, true)?;
                        if !string_may_end(b, end) {
                            return None;
                        }
                        param(out, kinds, ESCAPE)?;
                        i = end;
                        continue;
                    }
                    // B'', X'', N'' and any word run into a quote.
                    Some(b'\'') => return None,
                    // U&'' and U&"": Unicode escapes with a choosable escape character.
                    Some(b'&') if word.eq_ignore_ascii_case(b"u") => return None,
                    _ => {}
                }
            }
            _ if plain(c) => i += 1,
            // A backslash, a control character, anything else.
            _ => return None,
        }
        out.push_str(sql.get(start..i)?);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(sql: &str) -> Option<String> {
        let mut s = Shape::default();
        shape_into(sql, &SessionFacts::default(), &mut s).then(|| s.key().replace('\0', "|"))
    }

    #[test]
    fn shapes() {
        let rows: &[(&str, Option<&str>)] = &[
            (
                "UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 77;",
                Some("UPDATE pgbench_accounts SET abalance = abalance + -$1 WHERE aid = $2;|ii"),
            ),
            (
                "INSERT INTO h (a, b) VALUES (1, 'x''y', 2.5, 1e3, E'a\\'b')",
                Some("INSERT INTO h (a, b) VALUES ($1, $2, $3, $4, $5)|isdde"),
            ),
            ("SELECT a1, t2.b3 FROM t2", None),
            ("SELECT 'a' -- '\n", Some("SELECT $1 -- '\n|s")),
            (
                "SELECT /* ' /* ' */ ' */ 1",
                Some("SELECT /* ' /* ' */ ' */ $1|i"),
            ),
            (
                "SELECT \"it's\" FROM t WHERE x = 1",
                Some("SELECT \"it's\" FROM t WHERE x = $1|i"),
            ),
            ("SELECT $$it's 1$$, 2", Some("SELECT $$it's 1$$, $1|i")),
            ("SELECT $a$ $$ 1 $a$, 2", Some("SELECT $a$ $$ 1 $a$, $1|i")),
            (
                "SELECT a$1 FROM t WHERE b = 2",
                Some("SELECT a$1 FROM t WHERE b = $1|i"),
            ),
            (
                "SELECT 'x'::int, 5::text",
                Some("SELECT $1::int, $2::text|si"),
            ),
            (
                "SELECT é FROM t WHERE x = 'é'",
                Some("SELECT é FROM t WHERE x = $1|s"),
            ),
            // No shape.
            ("SELECT $1", None),
            ("SELECT 'a'\n'b'", None),
            ("SELECT 'a' -- c\n'b'", None),
            ("SELECT 'a' /* c */ 'b'", None),
            ("SELECT U&'d\\0061t'", None),
            ("SELECT u&\"x\" FROM t WHERE a = 1", None),
            ("SELECT B'101'", None),
            ("SELECT x'1f'", None),
            ("SELECT N'x'", None),
            ("SELECT 0x1", None),
            ("SELECT 1e", None),
            ("SELECT 1..2", None),
            ("SELECT .5", None),
            ("SELECT 'unterminated", None),
            ("SELECT E'unterminated\\'", None),
            ("SELECT 1 /* open", None),
            ("SELECT 1 /* /* */", None),
            ("SELECT \"open", None),
            ("SELECT $a$ open", None),
            ("SELECT $a$ x $a$b", None),
            ("SELECT $ 1", None),
            ("SELECT \\x", None),
            ("SELECT 1\u{0}", None),
        ];
        for (sql, want) in rows {
            assert_eq!(shape(sql).as_deref(), *want, "{sql}");
        }
    }

    #[test]
    fn a_shape_never_crosses_a_string_or_comment() {
        // The attacker's text inside a literal stays inside it.
        assert_eq!(
            shape("SELECT * FROM t WHERE name = '''; DROP TABLE x; --'").as_deref(),
            Some("SELECT * FROM t WHERE name = $1|s")
        );
        assert_eq!(
            shape("SELECT * FROM t WHERE name = E'\\'; DROP TABLE x; --'").as_deref(),
            Some("SELECT * FROM t WHERE name = $1|e")
        );
        // Without E, a backslash is a character and the quote ends the string: what
        // follows is SQL (and a comment), as PostgreSQL reads it.
        assert_eq!(
            shape("SELECT 'a\\'; DROP TABLE x; --'").as_deref(),
            Some("SELECT $1; DROP TABLE x; --'|s")
        );
        assert_eq!(
            shape("SELECT 'a\\', 1; DROP TABLE x").as_deref(),
            Some("SELECT $1, $2; DROP TABLE x|si")
        );
    }

    #[test]
    fn facts_that_change_reading_give_no_shape() {
        let mut s = Shape::default();
        let off = SessionFacts {
            standard_conforming_strings: false,
            ..SessionFacts::default()
        };
        assert!(!shape_into("SELECT 'a'", &off, &mut s));
        let sjis = SessionFacts {
            client_encoding: "SJIS".into(),
            ..SessionFacts::default()
        };
        assert!(!shape_into("SELECT 'a'", &sjis, &mut s));
        assert!(!shape_into("SELECT 'a'", &off.unreadable(), &mut s));
        assert!(shape_into("SELECT 'a'", &SessionFacts::default(), &mut s));
        assert_eq!(s.text(), "SELECT $1");
    }

    #[test]
    fn bounded() {
        let many = format!("SELECT {}", vec!["1"; MAX_LITERALS + 1].join(","));
        assert_eq!(shape(&many), None);
        let long = format!("SELECT 1 {}", " ".repeat(MAX_TEXT));
        assert_eq!(shape(&long), None);
    }
}
