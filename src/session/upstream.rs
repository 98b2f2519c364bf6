//! Connecting to a target server: TCP options, then TLS per the target's sslmode.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stream::Stream;
use crate::config::{Target, UpstreamTlsMode};
use crate::protocol::startup;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to target {target} ({addr}): {source}")]
    Connect {
        target: String,
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out connecting to target {target} ({addr})")]
    Timeout { target: String, addr: String },
    #[error("target {0} does not accept TLS, and its tls mode requires it")]
    TlsRefused(String),
    #[error("TLS with target {target} failed: {source}")]
    Tls {
        target: String,
        source: std::io::Error,
    },
    #[error("target {target}: {message}")]
    Setup { target: String, message: String },
}

/// Applies TCP options pgwarden uses on both legs.
pub fn tune(stream: &TcpStream, keepalive: Option<Duration>) {
    // Failures here only cost latency or dead-peer detection, never correctness.
    let _ = stream.set_nodelay(true);
    if let Some(idle) = keepalive {
        let sock = socket2::SockRef::from(stream);
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(Duration::from_secs(10));
        let _ = sock.set_tcp_keepalive(&ka);
    }
}

/// Opens a connection to `target`, negotiating TLS when its mode asks for it.
pub async fn connect(
    target: &Target,
    tls: Option<&Arc<rustls::ClientConfig>>,
    keepalive: Option<Duration>,
) -> Result<Stream, UpstreamError> {
    let addr = format!("{}:{}", target.host, target.port);
    let tcp = match tokio::time::timeout(target.connect_timeout, TcpStream::connect(&addr)).await {
        Err(_) => {
            return Err(UpstreamError::Timeout {
                target: target.name.clone(),
                addr,
            })
        }
        Ok(Err(source)) => {
            return Err(UpstreamError::Connect {
                target: target.name.clone(),
                addr,
                source,
            })
        }
        Ok(Ok(s)) => s,
    };
    tune(&tcp, keepalive);
    let Some(tls) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    negotiate_tls(tcp, target, tls).await
}

async fn negotiate_tls(
    mut tcp: TcpStream,
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Stream, UpstreamError> {
    let io_err = |source| UpstreamError::Tls {
        target: target.name.clone(),
        source,
    };
    tcp.write_all(&startup::encode_ssl_request())
        .await
        .map_err(io_err)?;
    // Exactly one byte: anything after 'S' belongs to the TLS handshake.
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await.map_err(io_err)?;
    match answer[0] {
        b'S' => {}
        b'N' if target.tls_mode == UpstreamTlsMode::Prefer => return Ok(Stream::Plain(tcp)),
        _ => return Err(UpstreamError::TlsRefused(target.name.clone())),
    }
    let name = target.tls_server_name.as_deref().unwrap_or(&target.host);
    let server_name = crate::tls::server_name(name).map_err(|e| UpstreamError::Setup {
        target: target.name.clone(),
        message: e.to_string(),
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
    let stream = connector.connect(server_name, tcp).await.map_err(io_err)?;
    Ok(Stream::Connected(Box::new(stream)))
}
