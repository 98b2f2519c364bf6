//! Views of client messages that carry or refer to statements (given a message body).

use super::{be_i16, be_i32, cstr};

pub const QUERY: u8 = b'Q';
pub const PARSE: u8 = b'P';
pub const BIND: u8 = b'B';
pub const EXECUTE: u8 = b'E';
pub const DESCRIBE: u8 = b'D';
pub const CLOSE: u8 = b'C';
pub const SYNC: u8 = b'S';
pub const FLUSH: u8 = b'H';
pub const FUNCTION_CALL: u8 = b'F';
pub const TERMINATE: u8 = b'X';
pub const PASSWORD: u8 = b'p';
pub const COPY_DATA: u8 = b'd';
pub const COPY_DONE: u8 = b'c';
pub const COPY_FAIL: u8 = b'f';

/// Every message type a client may send after authentication.
pub fn is_known(tag: u8) -> bool {
    matches!(
        tag,
        QUERY
            | PARSE
            | BIND
            | EXECUTE
            | DESCRIBE
            | CLOSE
            | SYNC
            | FLUSH
            | FUNCTION_CALL
            | TERMINATE
            | COPY_DATA
            | COPY_DONE
            | COPY_FAIL
    )
}

/// The SQL text of a Query message (bytes, in the session's client encoding).
pub fn query(body: &[u8]) -> Option<&[u8]> {
    let (text, rest) = cstr(body)?;
    rest.is_empty().then_some(text)
}

/// A Parse message: statement name and SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse<'a> {
    pub name: &'a [u8],
    pub query: &'a [u8],
    pub param_types: i16,
}

pub fn parse(body: &[u8]) -> Option<Parse<'_>> {
    let (name, rest) = cstr(body)?;
    let (query, rest) = cstr(rest)?;
    let n = be_i16(rest)?;
    if n < 0 || rest.len() != 2 + 4 * n as usize {
        return None;
    }
    Some(Parse {
        name,
        query,
        param_types: n,
    })
}

/// A Bind message's portal and statement names (parameters are not decoded here).
pub fn bind_names(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (portal, rest) = cstr(body)?;
    let (stmt, _) = cstr(rest)?;
    Some((portal, stmt))
}

/// An Execute message's portal name and row limit.
pub fn execute(body: &[u8]) -> Option<(&[u8], i32)> {
    let (portal, rest) = cstr(body)?;
    let max = be_i32(rest)?;
    (rest.len() == 4).then_some((portal, max))
}

/// A Close or Describe message: kind (b'S' statement or b'P' portal) and name.
pub fn target(body: &[u8]) -> Option<(u8, &[u8])> {
    let (&kind, rest) = body.split_first()?;
    let (name, rest) = cstr(rest)?;
    (matches!(kind, b'S' | b'P') && rest.is_empty()).then_some((kind, name))
}

/// A FunctionCall message's function OID.
pub fn function_oid(body: &[u8]) -> Option<u32> {
    be_i32(body).map(|v| v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_statement_messages() {
        assert_eq!(query(b"SELECT 1\0"), Some(b"SELECT 1".as_slice()));
        assert_eq!(query(b"SELECT 1"), None);
        assert_eq!(query(b"SELECT 1\0x"), None);
        let p = parse(b"s1\0SELECT $1\0\0\x01\0\0\0\x17").unwrap();
        assert_eq!(p.name, b"s1");
        assert_eq!(p.query, b"SELECT $1");
        assert_eq!(p.param_types, 1);
        assert_eq!(parse(b"s1\0SELECT $1\0\0\x02\0\0\0\x17"), None);
        assert_eq!(parse(b"s1\0SELECT\0\xff\xff"), None);
        assert_eq!(
            bind_names(b"p\0s\0\0\0"),
            Some((b"p".as_slice(), b"s".as_slice()))
        );
        assert_eq!(execute(b"\0\0\0\0\0"), Some((b"".as_slice(), 0)));
        assert_eq!(target(b"Sname\0"), Some((b'S', b"name".as_slice())));
        assert_eq!(target(b"Xname\0"), None);
        assert!(is_known(b'Q') && !is_known(b'z'));
    }
}
