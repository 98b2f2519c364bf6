//! The startup packet and its edges, through pgwarden with the built-in (example)
//! policy on a production target, each checked against PostgreSQL itself:
//! - a repeated key (`user`, `database`, `replication`, a setting) is refused, so
//!   pgwarden never routes or judges another user/database than the server uses;
//! - settings in the startup packet (plain keys and `options` switches `-c`, `--`,
//!   short switches) are judged like the equivalent SET: routine ones pass, the
//!   ones the example policy guards refuse the connection;
//! - a Terminate sent before any startup packet is closed without a reply;
//! - a NUL byte inside a Query gets ERROR 08P01 and the session carries on.

use crate::support;

use std::time::Duration;

use support::guarded::{prod_proxy, su_exec};
use support::raw::{self, RawConn};
use support::*;

const WAIT: Duration = Duration::from_secs(5);

/// Sends a startup packet as the trust user's raw client and returns the first
/// message of the answer (R = authenticated, E = refused) and its SQLSTATE.
async fn first_answer(ep: &Endpoint, params: &[(&str, &str)]) -> (u8, Option<String>, String) {
    let mut c = RawConn::connect(ep).await;
    c.send(&raw::startup(params)).await.expect("send startup");
    let m = c.read_message(WAIT).await.expect("an answer");
    let msg = m.fields().get(&'M').cloned().unwrap_or_default();
    (m.tag, m.sqlstate(), msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_startup_keys_are_refused() {
    let cluster = PgCluster::start();
    let proxy = prod_proxy(&cluster).await;
    let ep = proxy.endpoint();
    let cases: &[&[(&str, &str)]] = &[
        &[
            ("user", TRUST_USER),
            ("database", APP_DB),
            ("user", SUPERUSER),
        ],
        &[
            ("user", TRUST_USER),
            ("database", APP_DB),
            ("database", "postgres"),
        ],
        &[
            ("user", TRUST_USER),
            ("database", APP_DB),
            ("replication", "false"),
            ("replication", "database"),
        ],
        &[
            ("user", TRUST_USER),
            ("database", APP_DB),
            ("search_path", "public"),
            ("SEARCH_PATH", "evil"),
        ],
    ];
    for params in cases {
        let (tag, code, msg) = first_answer(&ep, params).await;
        assert_eq!(
            (tag, code.as_deref()),
            (b'E', Some("08P01")),
            "{params:?}: {msg}"
        );
        assert!(msg.contains("more than once"), "{msg}");
    }
    // The same user and database once each still connect.
    let (tag, _, msg) = first_answer(&ep, &[("user", TRUST_USER), ("database", APP_DB)]).await;
    assert_eq!(tag, b'R', "{msg}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_settings_are_judged_like_set() {
    let cluster = PgCluster::start();
    // The settings that need a superuser on the server: give the trust user the
    // rights, so that directly they really take effect (checked below).
    su_exec(&cluster, &format!("ALTER ROLE {TRUST_USER} SUPERUSER")).await;
    let proxy = prod_proxy(&cluster).await;
    let base = [("user", TRUST_USER), ("database", APP_DB)];
    let guarded: &[(&str, &str)] = &[
        ("session_replication_role", "replica"),
        ("options", "-c session_replication_role=replica"),
        ("options", "--session-replication-role=replica"),
        ("options", "-csession_replication_role=replica"),
        ("options", "-c statement_timeout=5s -c client_encoding=SJIS"),
        ("standard_conforming_strings", "off"),
        ("options", "-O"),
        ("allow_system_table_mods", "on"),
        ("transform_null_equals", "on"),
    ];
    for kv in guarded {
        let mut params = base.to_vec();
        params.push(*kv);
        let (tag, _, _) = first_answer(&cluster.endpoint(), &params).await;
        assert_eq!(tag, b'R', "directly, {kv:?} is accepted by the server");
        let (tag, code, msg) = first_answer(&proxy.endpoint(), &params).await;
        assert_eq!(
            (tag, code.as_deref()),
            (b'E', Some("PW002")),
            "{kv:?} through pgwarden: {msg}"
        );
        assert!(msg.contains("startup"), "{msg}");
    }
    let routine: &[(&str, &str)] = &[
        ("application_name", "psql"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO"),
        ("TimeZone", "UTC"),
        ("extra_float_digits", "3"),
        ("options", "-c statement_timeout=4321 -c DateStyle=German"),
        ("search_path", "public"),
    ];
    for kv in routine {
        let mut params = base.to_vec();
        params.push(*kv);
        let (tag, _, msg) = first_answer(&proxy.endpoint(), &params).await;
        assert_eq!(tag, b'R', "{kv:?} through pgwarden: {msg}");
    }
    proxy.shutdown().await;
}

/// node-postgres sends Terminate when `end()` follows `connect()` before the startup
/// packet went out; PostgreSQL closes without a reply.
async fn terminate_before_startup(ep: &Endpoint) -> (bool, usize) {
    let mut c = RawConn::connect(ep).await;
    let _ = c.send(&raw::terminate()).await;
    let closed = c.read_to_close(WAIT).await;
    (closed.closed, closed.bytes.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_before_startup_closes_silently() {
    let cluster = PgCluster::start();
    let proxy = prod_proxy(&cluster).await;
    assert_eq!(
        terminate_before_startup(&cluster.endpoint()).await,
        (true, 0)
    );
    assert_eq!(terminate_before_startup(&proxy.endpoint()).await, (true, 0));
    proxy.shutdown().await;
}

/// A Query whose text has a NUL inside, then an ordinary query on the same connection.
async fn nul_in_query(ep: &Endpoint) -> Vec<String> {
    let mut c = RawConn::connect(ep).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    let mut out = Vec::new();
    for body in [
        &b"SELECT 1\0; DROP TABLE nul_victim\0"[..],
        &b"SELECT 1\0\0"[..],
    ] {
        c.send(&raw::message(b'Q', body)).await.expect("send");
        loop {
            let m = c.read_message(WAIT).await.expect("an answer");
            let f = m.fields();
            out.push(match m.tag {
                b'E' => format!(
                    "E {} {}",
                    f.get(&'S').cloned().unwrap_or_default(),
                    m.sqlstate().unwrap_or_default()
                ),
                t => (t as char).to_string(),
            });
            if m.tag == b'Z' {
                break;
            }
        }
    }
    c.send(&raw::query("SELECT count(*) FROM nul_victim"))
        .await
        .expect("send");
    let msgs = c.read_until_ready("after NUL").await;
    out.push(msgs.iter().map(|m| m.tag as char).collect());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_query_is_an_error_and_the_session_stays() {
    let cluster = PgCluster::start();
    support::guarded::victim_table(&cluster, "nul_victim", 3, TRUST_USER).await;
    let direct = nul_in_query(&cluster.endpoint()).await;
    let proxy = prod_proxy(&cluster).await;
    let through = nul_in_query(&proxy.endpoint()).await;
    assert_eq!(through, direct);
    assert_eq!(direct[0], "E ERROR 08P01");
    assert_eq!(
        support::guarded::server_count(&cluster, "nul_victim").await,
        3
    );
    proxy.shutdown().await;
}
