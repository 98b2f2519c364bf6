//! `[admin] tls`: the admin listener serves HTTPS (checked with a rustls client that
//! trusts only the test CA); the approver page's session cookie is then Secure, and
//! a plaintext request gets no answer.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::guarded::*;
use support::*;

const TOKEN: &str = "alice-https-test-token";

async fn https(addr: std::net::SocketAddr, request: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(test_ca().client_config()));
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the admin listener");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
        .await
        .expect("answer within 10 s")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_over_https_sets_a_secure_cookie() {
    let cluster = PgCluster::start();
    std::env::set_var("PGWARDEN_TEST_HTTPS_ALICE", TOKEN);
    let b = prod_builder(&cluster);
    let files = test_ca().server_leaf().write(b.dir(), "admin");
    let proxy = b
        .extra_toml(&format!(
            "\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             approvers = {{ alice = {{ token_env = \"PGWARDEN_TEST_HTTPS_ALICE\" }} }}\n\
             tls = {{ cert = {:?}, key = {:?} }}\n",
            files.cert.display().to_string(),
            files.key.display().to_string()
        ))
        .start()
        .await;
    let addr = proxy.admin_addr().expect("admin listener");

    let r = https(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");

    let body = format!("token={TOKEN}");
    let r = https(
        addr,
        &format!(
            "POST /ui/login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 303"), "{r}");
    let cookie = r
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie in {r}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(cookie.trim_end().ends_with("; Secure"), "{cookie}");

    // Plain HTTP to the HTTPS listener gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut out)).await;
    assert!(
        !String::from_utf8_lossy(&out).contains("200 OK"),
        "answered in plaintext"
    );
    proxy.shutdown().await;
}
