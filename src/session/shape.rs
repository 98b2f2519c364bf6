//! A literal-insensitive cache key for simple SELECTs.
//!
//! Clients that inline literals (`SELECT … WHERE aid = 48213`) make every text
//! unique, so the classification cache would never hit. For a SELECT made only of
//! words, numbers and operators — no parentheses (so no function calls or
//! subqueries), no quotes, comments, dollar signs or backslashes — number values
//! cannot change the classification, so such texts are classified in a shape with
//! every number replaced by `0`. Anything else is classified as written.

const BAD: u8 = 0;
const IDENT: u8 = 1;
const DIGIT: u8 = 2;
const DASH: u8 = 3;
const OTHER: u8 = 4;

/// What each byte is to the shape: one table lookup per byte on the hot path.
static KIND: [u8; 256] = {
    let mut t = [BAD; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            DIGIT
        } else if c.is_ascii_alphabetic() || c == b'_' {
            IDENT
        } else if c == b'-' {
            DASH
        } else if matches!(
            c,
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b'.' | b'=' | b'<' | b'>' | b'!' | b'*' | b'+'
        ) {
            OTHER
        } else {
            BAD
        };
        b += 1;
    }
    t
};

/// The shape to classify instead of `sql`, when it qualifies.
pub fn select_shape(sql: &str) -> Option<String> {
    let t = sql.trim();
    let body = t.strip_suffix(';').unwrap_or(t).as_bytes();
    if body.len() < 7 || !body[..6].eq_ignore_ascii_case(b"select") {
        return None;
    }
    // One pass: refuse anything outside the allowed set (and `--`), copy the rest
    // with each number collapsed to `0`.
    let mut out = Vec::with_capacity(body.len());
    let mut prev = OTHER;
    let mut prev_ident = false;
    let mut in_number = false;
    for &b in body {
        let k = KIND[b as usize];
        if k == BAD || (k == DASH && prev == DASH) {
            return None;
        }
        prev = k;
        if k == DIGIT && (in_number || !prev_ident) {
            if !in_number {
                out.push(b'0');
                in_number = true;
            }
            continue;
        }
        in_number = false;
        prev_ident = k == IDENT || k == DIGIT;
        out.push(b);
    }
    // Only ASCII was copied.
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
                Some("SELECT abalance FROM pgbench_accounts WHERE aid = 0"),
            ),
            (
                "select a1, b FROM t2 WHERE x > 10 AND y = 3",
                Some("select a1, b FROM t2 WHERE x > 0 AND y = 0"),
            ),
            ("SELECT pg_terminate_backend(123)", None),
            ("SELECT 'x'", None),
            ("SELECT 1; DROP TABLE t", None),
            ("SELECT 1 -- x\n", None),
            ("SELECT 1 /* x */", None),
            ("DELETE FROM t WHERE 5 > 3", None),
            ("WITH d AS (DELETE FROM t) SELECT 1", None),
            ("SELECT $1", None),
            ("selec", None),
        ];
        for (sql, want) in cases {
            assert_eq!(select_shape(sql).as_deref(), *want, "{sql}");
        }
    }

    #[test]
    fn shapes_classify_like_their_originals() {
        let facts = crate::classify::SessionFacts::default();
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
            "SELECT * INTO copy2 FROM t WHERE id = 7",
            "SELECT a FROM s.t WHERE b = 1 FOR UPDATE",
        ] {
            let a = crate::classify::classify(sql, &facts);
            let b = crate::classify::classify(&select_shape(sql).unwrap(), &facts);
            assert_eq!(a[0].classes, b[0].classes, "{sql}");
            assert_eq!(a[0].objects, b[0].objects, "{sql}");
            assert_eq!(a[0].fingerprint, b[0].fingerprint, "{sql}");
        }
    }
}
