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

/// Runs the real `pgwarden` binary with `args`; `ca_env` sets `PGWARDEN_ADMIN_CA`.
async fn cli(args: &[&str], ca_env: Option<&std::path::Path>) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"));
    cmd.args(args)
        .env("PGWARDEN_TOKEN", TOKEN)
        .env_remove("PGWARDEN_ADMIN")
        .env_remove("PGWARDEN_ADMIN_CA");
    if let Some(ca) = ca_env {
        cmd.env("PGWARDEN_ADMIN_CA", ca);
    }
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("pgwarden finished within 60 s")
        .expect("run pgwarden")
}

/// `pgwarden holds` and `pgwarden plans` against the HTTPS admin listener: with
/// the private CA (`--ca` or `PGWARDEN_ADMIN_CA`) they list and approve, and the
/// approved statement runs on the server; without it the certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_and_plans_commands_over_https_with_a_private_ca() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "https_orders", 3, SCRAM_USER).await;
    std::env::set_var("PGWARDEN_TEST_HTTPS_CLI_ALICE", TOKEN);
    let b = prod_builder(&cluster).policy_toml(&small_policy("1m", "5m"));
    let files = test_ca().server_leaf().write(b.dir(), "admin");
    let ca = test_ca().write_ca(b.dir(), "admin-ca.pem");
    let proxy = b
        .extra_toml(&format!(
            "\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             approvers = {{ alice = {{ token_env = \"PGWARDEN_TEST_HTTPS_CLI_ALICE\" }} }}\n\
             tls = {{ cert = {:?}, key = {:?} }}\n",
            files.cert.display().to_string(),
            files.key.display().to_string()
        ))
        .start()
        .await;
    let url = format!("https://{}", proxy.admin_addr().expect("admin listener"));
    let ca_arg = ca.display().to_string();

    let h = hold(
        &proxy.endpoint(),
        SCRAM_USER,
        SCRAM_PASSWORD,
        "DROP TABLE https_orders",
    )
    .await;

    // Not trusted without the CA: the handshake fails, nothing is decided.
    let out = cli(&["holds", "--admin", &url, "list"], None).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("TLS to the admin API") && err.contains("UnknownIssuer"),
        "{err}"
    );

    let out = cli(&["holds", "--admin", &url, "--ca", &ca_arg, "list"], None).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(&format!("#{}", h.id)) && text.contains("DROP TABLE https_orders"),
        "{text}"
    );
    let out = cli(&["plans", "--admin", &url, "list"], Some(&ca)).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    // Approved over HTTPS with the CA from the environment: the statement runs.
    let id = h.id.to_string();
    let out = cli(&["holds", "--admin", &url, "approve", &id], Some(&ca)).await;
    assert!(out.status.success(), "{out:?}");
    tokio::time::timeout(Duration::from_secs(30), h.task)
        .await
        .expect("approved statement finished")
        .expect("task")
        .expect("the approved DROP TABLE ran");
    assert!(!server_table_exists(&cluster, "https_orders").await);
    proxy.shutdown().await;
}
