//! A literal-insensitive cache key for simple SELECTs.
//!
//! Clients that inline literals (`SELECT … WHERE aid = 48213`) make every text
//! unique, so the classification cache would never hit. For a SELECT made only of
//! words, numbers and operators — no parentheses (so no function calls or
//! subqueries), no quotes, comments, dollar signs or backslashes — number values
//! cannot change the classification, so such texts are classified in a shape with
//! every number replaced by `0`. Anything else is classified as written.

/// What a byte is to the shape.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bad,
    Ident,
    Digit,
    Dash,
    Other,
}

const fn kind(c: u8) -> Kind {
    if c.is_ascii_digit() {
        Kind::Digit
    } else if c.is_ascii_alphabetic() || c == b'_' {
        Kind::Ident
    } else if c == b'-' {
        Kind::Dash
    } else if matches!(
        c,
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b'.' | b'=' | b'<' | b'>' | b'!' | b'*' | b'+'
    ) {
        Kind::Other
    } else {
        Kind::Bad
    }
}

/// States: what the bytes before were (a word — digits in a word are part of it —,
/// a number, a dash, anything else).
const AFTER_OTHER: u8 = 0;
const IN_WORD: u8 = 1;
const IN_NUMBER: u8 = 2;
const AFTER_DASH: u8 = 3;

/// Actions, in the bits above the next state.
const FAIL: u8 = 0 << 2;
const COPY: u8 = 1 << 2;
const ZERO: u8 = 2 << 2;
const SKIP: u8 = 3 << 2;

/// The step for (state, byte): `STEP[state * 256 + byte]` = action | next state.
/// One lookup per byte; the only branch in the loop is the rare failure.
static STEP: [u8; 1024] = {
    let mut t = [FAIL; 1024];
    let mut state = 0;
    while state < 4 {
        let mut b = 0;
        while b < 256 {
            let s = state as u8;
            t[state * 256 + b] = match kind(b as u8) {
                Kind::Bad => FAIL,
                Kind::Dash if s == AFTER_DASH => FAIL, // `--` starts a comment
                Kind::Dash => COPY | AFTER_DASH,
                Kind::Ident => COPY | IN_WORD,
                Kind::Other => COPY | AFTER_OTHER,
                Kind::Digit if s == IN_WORD => COPY | IN_WORD,
                Kind::Digit if s == IN_NUMBER => SKIP | IN_NUMBER,
                Kind::Digit => ZERO | IN_NUMBER,
            };
            b += 1;
        }
        state += 1;
    }
    t
};

/// Writes the shape to classify instead of `sql` into `out` and returns true, or
/// leaves `out` empty and returns false when `sql` has none. `out` is reused from
/// statement to statement, so finding a shape allocates nothing. Only ASCII is
/// ever written.
pub fn shape_into(sql: &str, out: &mut Vec<u8>) -> bool {
    out.clear();
    let t = sql.trim();
    let body = t.strip_suffix(';').unwrap_or(t).as_bytes();
    if body.len() < 7 || !body[..6].eq_ignore_ascii_case(b"select") {
        return false;
    }
    // One pass over a copy, compacting it in place: refuse anything outside the
    // allowed set (and `--`), keep the rest with each number collapsed to `0`.
    out.extend_from_slice(body);
    let mut state = AFTER_OTHER;
    let mut w = 0;
    for r in 0..out.len() {
        let b = out[r];
        let step = STEP[usize::from(state) * 256 + usize::from(b)];
        let action = step & !3;
        if action == FAIL {
            out.clear();
            return false;
        }
        state = step & 3;
        out[w] = if action == ZERO { b'0' } else { b };
        w += usize::from(action != SKIP);
    }
    out.truncate(w);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select_shape(sql: &str) -> Option<String> {
        let mut out = Vec::new();
        shape_into(sql, &mut out).then(|| String::from_utf8(out).unwrap())
    }

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
            (
                "select a1-2, -3.5e7 from t2 where b <> 0042",
                Some("select a1-0, -0.0e7 from t2 where b <> 0"),
            ),
            ("select 1 -- \n", None),
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
        // One buffer for all, as a session uses it: nothing of a shape is left over.
        let mut reused = Vec::new();
        for (sql, want) in cases {
            assert_eq!(select_shape(sql).as_deref(), *want, "{sql}");
            let found = shape_into(sql, &mut reused);
            assert_eq!(found, want.is_some(), "{sql}");
            assert_eq!(reused, want.unwrap_or("").as_bytes(), "{sql}");
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
