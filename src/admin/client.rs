//! A minimal HTTP/1.1 client for `pgwarden holds` and `pgwarden plans`: plain HTTP,
//! or HTTPS (`[admin] tls`) checked against the built-in Mozilla roots plus a
//! private CA given with `--ca`. No redirects.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// An HTTP response: status code and body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid admin URL {0:?} (expected http://HOST:PORT or https://HOST:PORT)")]
    Url(String),
    #[error("TLS to the admin API at {addr}: {message}")]
    Tls { addr: String, message: String },
    #[error("cannot reach the admin API at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("admin API at {0} did not answer in time")]
    Timeout(String),
    #[error("invalid HTTP response from the admin API")]
    Response,
}

/// Sends one request and reads the whole response (the server closes it).
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<HttpResponse, ClientError> {
    request_with_ca(base, None, method, path, token, body).await
}

/// `request`, trusting `ca` (a PEM file) besides the built-in roots for an
/// `https://` base URL.
pub async fn request_with_ca(
    base: &str,
    ca: Option<&Path>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<HttpResponse, ClientError> {
    let (tls, rest) = if let Some(r) = base.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = base.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(ClientError::Url(base.to_string()));
    };
    let hostport = Some(rest.trim_end_matches('/'))
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .ok_or_else(|| ClientError::Url(base.to_string()))?;
    let tls_error = |message: String| ClientError::Tls {
        addr: hostport.to_string(),
        message,
    };
    let tls = if tls {
        let host = match hostport.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => h,
            _ => hostport,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = crate::tls::server_name(host).map_err(|e| tls_error(e.to_string()))?;
        let config = crate::tls::webhook_config(ca).map_err(|e| tls_error(e.to_string()))?;
        Some((tokio_rustls::TlsConnector::from(config), name))
    } else {
        None
    };
    let fut = async {
        let s = tokio::net::TcpStream::connect(hostport)
            .await
            .map_err(|source| ClientError::Connect {
                addr: hostport.to_string(),
                source,
            })?;
        let body = body.unwrap_or("");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        let io = |source| ClientError::Connect {
            addr: hostport.to_string(),
            source,
        };
        let raw = match tls {
            None => exchange(s, req.as_bytes()).await.map_err(io)?,
            Some((connector, name)) => {
                let s = connector
                    .connect(name, s)
                    .await
                    .map_err(|e| tls_error(e.to_string()))?;
                exchange(s, req.as_bytes()).await.map_err(io)?
            }
        };
        parse(&raw)
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .map_err(|_| ClientError::Timeout(hostport.to_string()))?
}

/// Writes the request and reads until the server closes the connection.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    req: &[u8],
) -> std::io::Result<Vec<u8>> {
    s.write_all(req).await?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw).await {
        Ok(_) => Ok(raw),
        // A TLS server that closes without close_notify, after a whole response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(e),
    }
}

fn parse(raw: &[u8]) -> Result<HttpResponse, ClientError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or(ClientError::Response)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(ClientError::Response)?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        let r = parse(b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "abcde"));
        assert!(parse(b"garbage").is_err());
    }
}
