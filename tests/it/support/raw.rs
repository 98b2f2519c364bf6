//! Hand-made PostgreSQL wire bytes over a raw TcpStream, for malformed-input tests.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::clients::Endpoint;

/// Protocol 3.0.
pub const PROTOCOL_3_0: u32 = 196_608;
/// SSLRequest: length 8, code 80877103.
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// GSSENCRequest: length 8, code 80877104.
pub const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// A StartupMessage for `version` with key/value parameters.
pub fn startup_with_version(version: u32, params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// A protocol 3.0 StartupMessage.
pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    startup_with_version(PROTOCOL_3_0, params)
}

/// A CancelRequest for `pid` / `secret`.
pub fn cancel_request(pid: i32, secret: i32) -> Vec<u8> {
    let mut m = vec![0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e];
    m.extend_from_slice(&pid.to_be_bytes());
    m.extend_from_slice(&secret.to_be_bytes());
    m
}

/// A regular message: tag, length (body + 4), body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A simple Query message.
pub fn query(sql: &str) -> Vec<u8> {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    message(b'Q', &body)
}

/// Terminate.
pub fn terminate() -> Vec<u8> {
    message(b'X', &[])
}

/// A backend message as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendMsg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl BackendMsg {
    /// The fields of an ErrorResponse/NoticeResponse (`S`, `V`, `C`, `M`, ...).
    pub fn fields(&self) -> BTreeMap<char, String> {
        error_fields(&self.body)
    }

    /// SQLSTATE of an ErrorResponse.
    pub fn sqlstate(&self) -> Option<String> {
        self.fields().get(&'C').cloned()
    }
}

/// Parses the fields of an ErrorResponse/NoticeResponse body.
pub fn error_fields(body: &[u8]) -> BTreeMap<char, String> {
    let mut out = BTreeMap::new();
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        out.insert(
            code as char,
            String::from_utf8_lossy(&tail[..end]).into_owned(),
        );
        rest = tail.get(end + 1..).unwrap_or(&[]);
    }
    out
}

/// Splits bytes into backend messages; a trailing partial message is returned as `Err`.
pub fn parse_backend(bytes: &[u8]) -> (Vec<BackendMsg>, Vec<u8>) {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len < 4 || rest.len() < 1 + len {
            break;
        }
        out.push(BackendMsg {
            tag: rest[0],
            body: rest[5..1 + len].to_vec(),
        });
        rest = &rest[1 + len..];
    }
    (out, rest.to_vec())
}

/// How a raw connection ended.
#[derive(Debug)]
pub struct Closed {
    /// Every byte received before the peer closed.
    pub bytes: Vec<u8>,
    /// true: EOF or reset seen; false: still open at the deadline.
    pub closed: bool,
    /// The read error that ended it, if it was not a clean EOF (e.g. reset).
    pub error: Option<std::io::ErrorKind>,
}

impl Closed {
    /// The received bytes as backend messages (ignoring a partial tail).
    pub fn messages(&self) -> Vec<BackendMsg> {
        parse_backend(&self.bytes).0
    }

    /// The first ErrorResponse received, if any.
    pub fn error_response(&self) -> Option<BackendMsg> {
        self.messages().into_iter().find(|m| m.tag == b'E')
    }
}

/// A raw client connection.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub async fn connect(ep: &Endpoint) -> RawConn {
        RawConn {
            stream: ep.tcp().await,
            buf: Vec::new(),
        }
    }

    /// Writes bytes (errors, e.g. reset by a peer that already closed, are returned).
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Half-closes our side (no more bytes from us).
    pub async fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Reads exactly one byte (for the answer to SSLRequest/GSSENCRequest).
    pub async fn read_byte(&mut self, timeout: Duration) -> Option<u8> {
        if !self.buf.is_empty() {
            return Some(self.buf.remove(0));
        }
        let mut b = [0u8; 1];
        match tokio::time::timeout(timeout, self.stream.read(&mut b)).await {
            Ok(Ok(1)) => Some(b[0]),
            _ => None,
        }
    }

    /// Reads one backend message, `None` on EOF/error/timeout.
    pub async fn read_message(&mut self, timeout: Duration) -> Option<BackendMsg> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (msgs, _) = parse_backend(&self.buf);
            if let Some(first) = msgs.into_iter().next() {
                self.buf.drain(..5 + first.body.len());
                return Some(first);
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads messages until ReadyForQuery ('Z'); panics on an ErrorResponse or EOF.
    pub async fn read_until_ready(&mut self, what: &str) -> Vec<BackendMsg> {
        let mut got = Vec::new();
        loop {
            let m = self
                .read_message(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("{what}: connection closed or timed out: {got:?}"));
            if m.tag == b'E' {
                panic!("{what}: error {:?}", m.fields());
            }
            let done = m.tag == b'Z';
            got.push(m);
            if done {
                return got;
            }
        }
    }

    /// Logs in as a `trust` user (no password exchange) and waits for ReadyForQuery.
    pub async fn login_trust(&mut self, user: &str, db: &str) -> Vec<BackendMsg> {
        self.send(&startup(&[("user", user), ("database", db)]))
            .await
            .expect("send startup");
        let msgs = self.read_until_ready("raw trust login").await;
        assert_eq!(
            msgs.first().map(|m| (m.tag, m.body.clone())),
            Some((b'R', vec![0, 0, 0, 0])),
            "expected AuthenticationOk first"
        );
        msgs
    }

    /// Reads until the peer closes (or `timeout`), keeping everything received.
    pub async fn read_to_close(&mut self, timeout: Duration) -> Closed {
        let mut bytes = std::mem::take(&mut self.buf);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) => {
                    return Closed {
                        bytes,
                        closed: true,
                        error: None,
                    }
                }
                Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => {
                    return Closed {
                        bytes,
                        closed: true,
                        error: Some(e.kind()),
                    }
                }
                Err(_) => {
                    return Closed {
                        bytes,
                        closed: false,
                        error: None,
                    }
                }
            }
        }
    }
}
