//! Shared integration-test support: throwaway PostgreSQL clusters, test certificates,
//! client endpoints (tokio-postgres, psql, pgbench), raw wire bytes, and pgwarden
//! started in front of the clusters.
//!
//! Scenarios are written as `async fn scenario(ep: &Endpoint) -> Transcript` so the
//! same code runs directly against a cluster and through pgwarden; [`transparency!`]
//! generates both tests and compares the transcripts.
//!
//! - `PgCluster::start()` / `PgCluster::builder()....start()`: a server on a free port of
//!   127.0.0.1 with TLS (test CA), users `postgres`, `scram_user`, `md5_user`,
//!   `trust_user` (constants below) and database `app`. Needs PostgreSQL's server
//!   binaries (PATH or /usr/lib/postgresql/*/bin); as root it runs them as `postgres`.
//! - `TestProxy::start(&cluster)` / `TestProxy::builder()`: pgwarden in-process on
//!   127.0.0.1:0 with generated TOML; `.spawn_binary()` runs `pgwarden serve` instead.
//! - `Endpoint`: tokio-postgres (`connect`, `connect_with_messages`), `psql`, `pgbench`.
//! - `raw`: hand-made wire bytes for malformed-input tests.
//! - `fake_server`: a scripted PostgreSQL server on 127.0.0.1, for a broken or hostile
//!   server's side of the protocol.
//!
//! Environment: `PGWARDEN_TEST_SHOW=1` prints transcripts (with `--nocapture`);
//! `PGWARDEN_TEST_RELAY=1` puts a dumb TCP relay where pgwarden would be, to check that
//! the scenarios themselves are proxy-safe (TLS, routing and malformed-input tests then
//! fail by design).
#![allow(dead_code, unused_imports, unused_macros)]

pub mod audit_file;
pub mod certs;
pub mod clients;
pub mod cluster;
pub mod fake_server;
pub mod guarded;
pub mod http;
pub mod impact;
pub mod proxy;
pub mod raw;
pub mod webdriver;

pub use certs::{other_ca, test_ca, CertFiles, LeafCert, TestCa};
pub use clients::{CmdOutput, Endpoint};
pub use cluster::{
    free_port, pg_install, PgCluster, PgClusterBuilder, APP_DB, MD5_PASSWORD, MD5_USER,
    SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, SUPERUSER_PASSWORD, TRUST_USER,
};
pub use proxy::{ProxyBuilder, ProxyProcess, TargetSpec, TestProxy};

/// What a scenario observed, as comparable lines (no pids, ports or timings).
pub type Transcript = Vec<String>;

/// The SQLSTATE and message of a tokio-postgres error that came from the server, or
/// the error's text otherwise (for transcripts).
pub fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {} {}", db.severity(), db.code().code(), db.message()),
        None => format!("client error: {e}"),
    }
}

/// The SQLSTATE code of a server error, if `e` is one.
pub fn sqlstate(e: &tokio_postgres::Error) -> Option<String> {
    e.code().map(|c| c.code().to_string())
}

/// Prints a transcript when `PGWARDEN_TEST_SHOW` is set (run with `--nocapture`).
pub fn show(name: &str, label: &str, transcript: &Transcript) {
    if std::env::var_os("PGWARDEN_TEST_SHOW").is_some() {
        eprintln!("--- {name} [{label}] ---");
        for line in transcript {
            eprintln!("{line}");
        }
    }
}

/// Generates `mod $name { direct, via_proxy }` for a scenario
/// `async fn(&Endpoint) -> Transcript`:
/// - `direct` runs it against a fresh cluster;
/// - `via_proxy` runs it directly, then through an in-process pgwarden in front of the
///   same cluster, and asserts both transcripts are equal.
///
/// `transparency!(name, scenario, proxy_only_rerun)` skips the direct run inside
/// `via_proxy` (for slow scenarios whose transcript is fixed anyway).
macro_rules! transparency {
    ($name:ident, $scenario:path) => {
        transparency!(@gen $name, $scenario, true);
    };
    ($name:ident, $scenario:path, proxy_only_rerun) => {
        transparency!(@gen $name, $scenario, false);
    };
    (@gen $name:ident, $scenario:path, $compare:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn direct() {
                let cluster = crate::support::PgCluster::start();
                let transcript = $scenario(&cluster.endpoint()).await;
                crate::support::show(stringify!($name), "direct", &transcript);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn via_proxy() {
                let cluster = crate::support::PgCluster::start();
                let expected = if $compare {
                    Some($scenario(&cluster.endpoint()).await)
                } else {
                    None
                };
                let proxy = crate::support::TestProxy::start(&cluster).await;
                let got = $scenario(&proxy.endpoint()).await;
                crate::support::show(stringify!($name), "proxy", &got);
                if let Some(expected) = expected {
                    assert_eq!(
                        got, expected,
                        "transcript through pgwarden (left) differs from direct (right)"
                    );
                }
                proxy.shutdown().await;
            }
        }
    };
}
pub(crate) use transparency;
