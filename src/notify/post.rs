//! One HTTP/1.1 POST to a webhook receiver, over TCP or TLS (rustls): one request per
//! connection, hyper's client connection, the whole exchange bounded by a timeout.
//! Webhooks are rare, so no pool: nothing to keep alive or to go stale.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Request, Uri};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where a webhook's requests go, parsed once.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    /// Path and query sent in the request line.
    target: String,
    /// The Host header.
    authority: String,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
}

impl Endpoint {
    /// `tls` is used for https URLs (required then).
    pub fn new(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Endpoint, String> {
        let uri: Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("the URL must start with http:// or https://".into()),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or("the URL has no host")?
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| host.clone());
        let target = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        // Brackets belong to the URL, not to the address or the TLS name.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = if https {
            let config = tls.ok_or("https needs a TLS configuration")?;
            let name = rustls::pki_types::ServerName::try_from(bare.clone())
                .map_err(|_| format!("{bare:?} is not a valid TLS server name"))?;
            Some((tokio_rustls::TlsConnector::from(config), name))
        } else {
            None
        };
        Ok(Endpoint {
            host: bare,
            port,
            target,
            authority,
            tls,
        })
    }

    /// POSTs `body` with `headers`; returns the response status. Errors are text for
    /// the log (connect, TLS, HTTP, timeout).
    pub async fn post(
        &self,
        headers: &[(&'static str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<u16, String> {
        match tokio::time::timeout(timeout, self.exchange(headers, body)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    async fn exchange(
        &self,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<u16, String> {
        let mut req = Request::post(&self.target)
            .header(header::HOST, &self.authority)
            .header(header::CONNECTION, "close")
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("pgwarden/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => send(TokioIo::new(tcp), req).await,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", self.host))?;
                send(TokioIo::new(stream), req).await
            }
        }
    }
}

async fn send<I>(io: I, req: Request<Full<Bytes>>) -> Result<u16, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // The connection is driven beside the request; it ends when this returns.
    let driver = tokio::spawn(conn);
    let result = sender
        .send_request(req)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("HTTP: {e}"));
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_a_request_needs() {
        let e = Endpoint::new("http://127.0.0.1:8080/hooks/a?x=1", None).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 8080));
        assert_eq!(e.target, "/hooks/a?x=1");
        assert_eq!(e.authority, "127.0.0.1:8080");
        let e = Endpoint::new("http://[::1]/", None).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.target.as_str()),
            ("::1", 80, "/")
        );
        assert!(
            Endpoint::new("https://hooks.example/x", None).is_err(),
            "needs TLS"
        );
        assert!(Endpoint::new("ftp://x/", None).is_err());
        assert!(Endpoint::new("/relative", None).is_err());
    }
}
