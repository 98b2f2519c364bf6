//! A statement still running when `server.shutdown_grace` ends is cancelled on the
//! server (it does not go on after pgwarden exits), the client gets its 57014 and
//! then FATAL 57P01, and the audit log has the statement's outcome and the
//! session's end.

use crate::support;

use std::time::Duration;

use support::audit_file::{audit_toml, records};
use support::guarded::eventually;
use support::raw::{query, RawConn};
use support::*;

const SLEEP: &str = "SELECT pg_sleep(60), 'not cut short'";

async fn sleeping(su: &tokio_postgres::Client) -> i64 {
    su.query_one(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(60)%'",
        &[],
    )
    .await
    .unwrap()
    .get::<_, i64>(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_running_past_the_grace_period_is_cancelled_and_recorded() {
    let c = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("dev", &c))
        .server_setting("shutdown_grace", "\"1s\"")
        .extra_toml(&audit_toml(&audit, "all"))
        .start()
        .await;
    let ep = proxy.endpoint();
    let mut busy = RawConn::connect(&ep).await;
    busy.login_trust(TRUST_USER, APP_DB).await;
    busy.send(&query(SLEEP)).await.unwrap();
    let su = c.superuser_client().await;
    let su = &su;
    eventually(
        "pg_sleep running on the server",
        Duration::from_secs(10),
        move || async move { sleeping(su).await == 1 },
    )
    .await;

    let started = std::time::Instant::now();
    let stopping = tokio::spawn(proxy.shutdown());

    // The client sees its statement cancelled, then the shutdown.
    let closed = busy.read_to_close(Duration::from_secs(20)).await;
    assert!(closed.closed, "session not closed: {:?}", closed.messages());
    let errors: Vec<Option<String>> = closed
        .messages()
        .iter()
        .filter(|m| m.tag == b'E')
        .map(|m| m.sqlstate())
        .collect();
    assert_eq!(
        errors,
        [Some("57014".to_string()), Some("57P01".to_string())],
        "{:?}",
        closed.messages()
    );
    tokio::time::timeout(Duration::from_secs(20), stopping)
        .await
        .expect("the proxy stopped")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // Nothing is left running on the server.
    eventually(
        "pg_sleep gone from the server",
        Duration::from_secs(5),
        move || async move { sleeping(su).await == 0 },
    )
    .await;

    // The audit log records the cancelled statement's outcome and the session's end.
    let recs = records(&audit);
    let stmt = recs
        .iter()
        .find(|r| {
            r["event"] == "statement"
                && r["sql"]
                    .as_str()
                    .is_some_and(|s| s.contains("pg_sleep(60)"))
        })
        .unwrap_or_else(|| panic!("no statement record: {recs:#?}"));
    let outcome = recs
        .iter()
        .find(|r| {
            r["event"] == "outcome"
                && r["session"] == stmt["session"]
                && r["statement_id"] == stmt["statement_id"]
        })
        .unwrap_or_else(|| panic!("no outcome for {stmt}: {recs:#?}"));
    assert_eq!(outcome["sqlstate"], "57014", "{outcome}");
    assert!(
        recs.iter()
            .any(|r| r["event"] == "session_end" && r["session"] == stmt["session"]),
        "no session_end: {recs:#?}"
    );
}
