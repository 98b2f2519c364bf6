//! Messages pgwarden itself sends: errors, notices, protocol negotiation, and the
//! server's SASL offer with channel binding removed.

use super::sqlstate::SqlState;

/// ErrorResponse / NoticeResponse severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
    Notice,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Notice => "NOTICE",
        }
    }
}

/// The contents of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<'a> {
    pub severity: Severity,
    pub code: SqlState,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub hint: Option<&'a str>,
}

impl<'a> Report<'a> {
    pub fn new(severity: Severity, code: SqlState, message: &'a str) -> Self {
        Report {
            severity,
            code,
            message,
            detail: None,
            hint: None,
        }
    }
}

fn field(out: &mut Vec<u8>, code: u8, value: &str) {
    out.push(code);
    // A NUL inside a value would end the field early on the client side.
    out.extend(value.bytes().map(|b| if b == 0 { b' ' } else { b }));
    out.push(0);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = (out.len() - 1) as i32;
    out[1..5].copy_from_slice(&len.to_be_bytes());
    out
}

/// Encodes an ErrorResponse (or a NoticeResponse for `Severity::Notice`).
pub fn report(r: &Report<'_>) -> Vec<u8> {
    let tag = if r.severity == Severity::Notice {
        b'N'
    } else {
        b'E'
    };
    let mut out = vec![tag, 0, 0, 0, 0];
    field(&mut out, b'S', r.severity.as_str());
    field(&mut out, b'V', r.severity.as_str());
    field(&mut out, b'C', r.code.as_str());
    field(&mut out, b'M', r.message);
    if let Some(d) = r.detail {
        field(&mut out, b'D', d);
    }
    if let Some(h) = r.hint {
        field(&mut out, b'H', h);
    }
    out.push(0);
    finish(out)
}

/// Shorthand for a FATAL error.
pub fn fatal(code: SqlState, message: &str) -> Vec<u8> {
    report(&Report::new(Severity::Fatal, code, message))
}

/// ReadyForQuery with the given transaction status.
pub fn ready_for_query(status: u8) -> Vec<u8> {
    vec![b'Z', 0, 0, 0, 5, status]
}

/// NegotiateProtocolVersion: the newest protocol version supported (as PostgreSQL
/// sends it: major << 16 | minor) and the options that are not.
pub fn negotiate_protocol_version(version: i32, unsupported: &[&str]) -> Vec<u8> {
    let mut out = vec![b'v', 0, 0, 0, 0];
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(unsupported.len() as i32).to_be_bytes());
    for o in unsupported {
        out.extend_from_slice(o.as_bytes());
        out.push(0);
    }
    finish(out)
}

/// AuthenticationSASL offering `mechs` (used to drop `SCRAM-SHA-256-PLUS`).
pub fn auth_sasl(mechs: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![b'R', 0, 0, 0, 0];
    out.extend_from_slice(&10i32.to_be_bytes());
    for m in mechs {
        out.extend_from_slice(m);
        out.push(0);
    }
    out.push(0);
    finish(out)
}

#[cfg(test)]
mod tests {
    use super::super::{backend, frame};
    use super::*;

    #[test]
    fn error_round_trips() {
        let mut r = Report::new(Severity::Error, SqlState::PW_BLOCKED, "blocked\0x");
        r.hint = Some("add a WHERE clause");
        let m = report(&r);
        let h = frame::complete(&m, 1024).unwrap().unwrap();
        assert_eq!((h.tag, h.total), (b'E', m.len()));
        let f = backend::fields(&m[5..]);
        assert!(f.contains(&(b'C', "PW002".into())));
        assert!(f.contains(&(b'M', "blocked x".into())));
        assert!(f.contains(&(b'H', "add a WHERE clause".into())));
    }

    #[test]
    fn sasl_offer_round_trips() {
        let m = auth_sasl(&[b"SCRAM-SHA-256"]);
        assert_eq!(
            backend::auth(&m[5..]),
            Some(backend::Auth::Sasl(vec![b"SCRAM-SHA-256".as_slice()]))
        );
        let v = negotiate_protocol_version(0, &["_pq_.a"]);
        assert_eq!(frame::complete(&v, 100).unwrap().unwrap().total, v.len());
    }
}
