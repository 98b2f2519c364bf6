//! Views of server messages that pgwarden needs to read (given a message body).

use super::{be_i32, cstr};

pub const AUTHENTICATION: u8 = b'R';
pub const PARAMETER_STATUS: u8 = b'S';
pub const BACKEND_KEY_DATA: u8 = b'K';
pub const READY_FOR_QUERY: u8 = b'Z';
pub const ERROR_RESPONSE: u8 = b'E';
pub const NOTICE_RESPONSE: u8 = b'N';
pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
pub const COMMAND_COMPLETE: u8 = b'C';
pub const DATA_ROW: u8 = b'D';
pub const COPY_DATA: u8 = b'd';
pub const COPY_IN_RESPONSE: u8 = b'G';
pub const COPY_OUT_RESPONSE: u8 = b'H';
pub const COPY_BOTH_RESPONSE: u8 = b'W';
pub const COPY_DONE: u8 = b'c';

/// An Authentication request from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth<'a> {
    Ok,
    CleartextPassword,
    Md5Password,
    /// SASL with the offered mechanism names.
    Sasl(Vec<&'a [u8]>),
    SaslContinue,
    SaslFinal,
    /// Kerberos, GSS, SSPI and anything else pgwarden cannot relay.
    Unsupported(i32),
}

pub fn auth(body: &[u8]) -> Option<Auth<'_>> {
    let code = be_i32(body)?;
    Some(match code {
        0 => Auth::Ok,
        3 => Auth::CleartextPassword,
        5 => Auth::Md5Password,
        10 => {
            let mut rest = &body[4..];
            let mut mechs = Vec::new();
            loop {
                let (m, r) = cstr(rest)?;
                if m.is_empty() {
                    break;
                }
                mechs.push(m);
                rest = r;
            }
            Auth::Sasl(mechs)
        }
        11 => Auth::SaslContinue,
        12 => Auth::SaslFinal,
        other => Auth::Unsupported(other),
    })
}

/// ReadyForQuery's transaction status: b'I' idle, b'T' in a transaction, b'E' failed.
pub fn ready_status(body: &[u8]) -> Option<u8> {
    match body {
        [s @ (b'I' | b'T' | b'E')] => Some(*s),
        _ => None,
    }
}

/// ParameterStatus name and value.
pub fn parameter_status(body: &[u8]) -> Option<(&str, &str)> {
    let (name, rest) = cstr(body)?;
    let (value, _) = cstr(rest)?;
    Some((
        std::str::from_utf8(name).ok()?,
        std::str::from_utf8(value).ok()?,
    ))
}

/// BackendKeyData: process id and secret key.
pub fn backend_key(body: &[u8]) -> Option<(i32, &[u8])> {
    let pid = be_i32(body)?;
    let key = &body[4..];
    (!key.is_empty()).then_some((pid, key))
}

/// The fields of an ErrorResponse or NoticeResponse.
pub fn fields(body: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some((&code, r)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let Some((value, r)) = cstr(r) else { break };
        out.push((code, String::from_utf8_lossy(value).into_owned()));
        rest = r;
    }
    out
}

/// The SQLSTATE of an ErrorResponse body.
pub fn sqlstate(body: &[u8]) -> Option<String> {
    fields(body)
        .into_iter()
        .find(|(c, _)| *c == b'C')
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sasl_mechanisms() {
        let body = b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0";
        assert_eq!(
            auth(body),
            Some(Auth::Sasl(vec![
                b"SCRAM-SHA-256-PLUS".as_slice(),
                b"SCRAM-SHA-256".as_slice()
            ]))
        );
        assert_eq!(auth(b"\0\0\0\x0aSCRAM"), None);
        assert_eq!(auth(b"\0\0"), None);
    }

    #[test]
    fn reads_small_messages() {
        assert_eq!(ready_status(b"T"), Some(b'T'));
        assert_eq!(ready_status(b"X"), None);
        assert_eq!(ready_status(b""), None);
        assert_eq!(
            parameter_status(b"client_encoding\0UTF8\0"),
            Some(("client_encoding", "UTF8"))
        );
        assert_eq!(parameter_status(b"x\0"), None);
        assert_eq!(
            backend_key(b"\0\0\0\x07abcd"),
            Some((7, b"abcd".as_slice()))
        );
        assert_eq!(
            sqlstate(b"SERROR\0C42P01\0Mno\0\0").as_deref(),
            Some("42P01")
        );
    }
}
