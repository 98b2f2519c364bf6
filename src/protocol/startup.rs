//! Startup-phase packets (untagged): StartupMessage, SSLRequest, GSSENCRequest and
//! CancelRequest, and re-encoding a startup message when the protocol version must
//! be negotiated down.

use super::{be_i32, cstr, FrameError};

pub const SSL_REQUEST_CODE: i32 = 80_877_103;
pub const GSSENC_REQUEST_CODE: i32 = 80_877_104;
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;
/// Protocol 3.0.
pub const PROTOCOL_3_0: i32 = 196_608;

/// A parsed startup-phase packet (the whole packet, length word included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    Cancel { pid: i32, key: Vec<u8> },
    Startup(StartupMessage),
}

/// A StartupMessage: protocol version and parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupMessage {
    pub major: u16,
    pub minor: u16,
    pub params: Vec<(String, String)>,
}

impl StartupMessage {
    /// The value of `key`; the last one if the key repeats, as PostgreSQL reads it
    /// (sessions refuse repeated keys anyway, see [`StartupMessage::repeated_key`]).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A key given more than once (compared case-insensitively, as setting names
    /// are). PostgreSQL takes the last value, a reader taking the first would route
    /// and judge another user, database or replication mode than the server uses.
    pub fn repeated_key(&self) -> Option<&str> {
        self.params.iter().enumerate().find_map(|(i, (k, _))| {
            self.params[..i]
                .iter()
                .any(|(earlier, _)| earlier.eq_ignore_ascii_case(k))
                .then_some(k.as_str())
        })
    }

    /// The user name (required by PostgreSQL).
    pub fn user(&self) -> Option<&str> {
        self.get("user")
    }

    /// The database name; defaults to the user name, as in PostgreSQL.
    pub fn database(&self) -> Option<&str> {
        self.get("database").or_else(|| self.user())
    }

    /// `_pq_.*` protocol options, which pgwarden does not support.
    pub fn protocol_options(&self) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k.starts_with("_pq_."))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Encodes a protocol 3.0 startup message with every parameter except `_pq_.*`.
    pub fn encode_v3_0(&self) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 0];
        out.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
        for (k, v) in self.params.iter().filter(|(k, _)| !k.starts_with("_pq_.")) {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        out.push(0);
        let len = out.len() as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        out
    }
}

/// Parses a whole startup-phase packet (`packet` includes its length word).
pub fn parse(packet: &[u8]) -> Result<StartupPacket, FrameError> {
    let code = be_i32(packet.get(4..).unwrap_or_default())
        .ok_or(FrameError::Malformed("startup packet"))?;
    let body = packet.get(8..).unwrap_or_default();
    match code {
        SSL_REQUEST_CODE if body.is_empty() => Ok(StartupPacket::SslRequest),
        GSSENC_REQUEST_CODE if body.is_empty() => Ok(StartupPacket::GssEncRequest),
        CANCEL_REQUEST_CODE => {
            // Protocol 3.2 allows keys longer than 4 bytes; 3.0 sends exactly 4.
            let pid = be_i32(body).ok_or(FrameError::Malformed("cancel request"))?;
            let key = body[4..].to_vec();
            if key.is_empty() || key.len() > 256 {
                return Err(FrameError::Malformed("cancel request"));
            }
            Ok(StartupPacket::Cancel { pid, key })
        }
        SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => Err(FrameError::Malformed("encryption request")),
        _ => parse_startup_message(code, body).map(StartupPacket::Startup),
    }
}

fn parse_startup_message(code: i32, mut body: &[u8]) -> Result<StartupMessage, FrameError> {
    let bad = FrameError::Malformed("startup message");
    let major = (code >> 16) as u16;
    let minor = (code & 0xffff) as u16;
    let mut params = Vec::new();
    loop {
        let (key, rest) = cstr(body).ok_or(bad.clone())?;
        if key.is_empty() {
            if !rest.is_empty() {
                return Err(bad);
            }
            break;
        }
        let (value, rest) = cstr(rest).ok_or(bad.clone())?;
        let key = std::str::from_utf8(key).map_err(|_| bad.clone())?;
        // Values are forwarded as bytes in the original packet; this copy is only
        // for routing and logging, so invalid UTF-8 is replaced, not rejected.
        let value = String::from_utf8_lossy(value).into_owned();
        params.push((key.to_string(), value));
        body = rest;
    }
    Ok(StartupMessage {
        major,
        minor,
        params,
    })
}

/// Encodes a CancelRequest for the server.
pub fn encode_cancel(pid: i32, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + key.len());
    out.extend_from_slice(&((12 + key.len()) as i32).to_be_bytes());
    out.extend_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
    out.extend_from_slice(&pid.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// An SSLRequest packet.
pub fn encode_ssl_request() -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&8i32.to_be_bytes());
    out[4..].copy_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        StartupMessage {
            major: 3,
            minor: 0,
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
        .encode_v3_0()
    }

    #[test]
    fn parses_a_startup_message_in_order() {
        let p = startup(&[("user", "bob"), ("database", "app"), ("options", "-c x=y")]);
        let StartupPacket::Startup(m) = parse(&p).unwrap() else {
            panic!("not a startup message")
        };
        assert_eq!((m.major, m.minor), (3, 0));
        assert_eq!(m.user(), Some("bob"));
        assert_eq!(m.database(), Some("app"));
        assert_eq!(m.get("options"), Some("-c x=y"));
        assert_eq!(m.encode_v3_0(), p);
    }

    #[test]
    fn repeated_keys_are_found_and_read_last() {
        let p = startup(&[("user", "alice"), ("database", "app"), ("user", "postgres")]);
        let StartupPacket::Startup(m) = parse(&p).unwrap() else {
            panic!()
        };
        assert_eq!(m.repeated_key(), Some("user"));
        assert_eq!(m.user(), Some("postgres"));
        for (a, b) in [
            ("replication", "replication"),
            ("search_path", "SEARCH_PATH"),
        ] {
            let p = startup(&[("user", "u"), (a, "false"), (b, "database")]);
            let StartupPacket::Startup(m) = parse(&p).unwrap() else {
                panic!()
            };
            assert_eq!(m.repeated_key(), Some(b));
        }
        let p = startup(&[("user", "u"), ("database", "d"), ("options", "-c a=b")]);
        let StartupPacket::Startup(m) = parse(&p).unwrap() else {
            panic!()
        };
        assert_eq!(m.repeated_key(), None);
    }

    #[test]
    fn database_defaults_to_user() {
        let p = startup(&[("user", "bob")]);
        let StartupPacket::Startup(m) = parse(&p).unwrap() else {
            panic!()
        };
        assert_eq!(m.database(), Some("bob"));
    }

    #[test]
    fn special_requests() {
        assert_eq!(
            parse(&encode_ssl_request()).unwrap(),
            StartupPacket::SslRequest
        );
        assert_eq!(
            parse(&encode_cancel(42, &[1, 2, 3, 4])).unwrap(),
            StartupPacket::Cancel {
                pid: 42,
                key: vec![1, 2, 3, 4]
            }
        );
    }

    #[test]
    fn malformed_packets_are_errors() {
        let cases: &[&[u8]] = &[
            &[0, 0, 0, 8, 0, 3, 0, 0],                  // no terminator
            &[0, 0, 0, 10, 0, 3, 0, 0, b'u', 0],        // key without value
            &[0, 0, 0, 11, 0, 3, 0, 0, 0, b'x', 0],     // bytes after terminator
            &[0, 0, 0, 12, 4, 210, 22, 46, 0, 0, 0, 1], // cancel without key
            &[0, 0, 0, 9, 4, 210, 22, 47, 0],           // SSLRequest with a body
            &[0, 0, 0],
        ];
        for (i, c) in cases.iter().enumerate() {
            assert!(parse(c).is_err(), "case {i} parsed");
        }
    }

    #[test]
    fn negotiating_down_drops_protocol_options() {
        let m = StartupMessage {
            major: 3,
            minor: 2,
            params: vec![("user".into(), "u".into()), ("_pq_.x".into(), "1".into())],
        };
        assert_eq!(m.protocol_options(), vec!["_pq_.x"]);
        let StartupPacket::Startup(back) = parse(&m.encode_v3_0()).unwrap() else {
            panic!()
        };
        assert_eq!(back.minor, 0);
        assert_eq!(back.params.len(), 1);
    }
}
