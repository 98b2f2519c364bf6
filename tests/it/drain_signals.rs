//! Signals to the real `pgwarden serve` binary: SIGUSR1 reopens the audit file after
//! a logrotate-style rename (one chain over both files), SIGTERM drains (idle
//! sessions get 57P01, a running statement finishes first, a held statement gets
//! PW005 and never runs, new connections are refused, exit 0 within the grace
//! period), SIGHUP reloads the policy (a broken one is rejected and audited).

use crate::support;

use std::time::Duration;

use support::audit_file::*;
use support::guarded::*;
use support::raw::{query, RawConn};
use support::*;

fn has_statement(r: &[serde_json::Value], sql: &str) -> bool {
    r.iter()
        .any(|e| e["event"] == "statement" && e["sql"].as_str() == Some(sql))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_audit_file_and_the_chain_spans_the_rotated_files() {
    let c = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let mut proxy = prod_builder(&c)
        .extra_toml(&audit_toml(&audit, "all"))
        .spawn_binary()
        .await;
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    client
        .simple_query("SELECT 'before rotation'")
        .await
        .unwrap();
    wait_for(&audit, "the first statement", |r| {
        has_statement(r, "SELECT 'before rotation'") && r.iter().any(|e| e["event"] == "outcome")
    })
    .await;

    // logrotate: rename, then SIGUSR1. The signal alone (no traffic yet) must make
    // pgwarden open a new file at the configured path.
    std::fs::rename(&audit, &rotated).unwrap();
    assert!(!audit.exists());
    proxy.reopen_audit();
    eventually(
        "a new audit file after SIGUSR1",
        Duration::from_secs(5),
        || {
            let exists = audit.exists();
            async move { exists }
        },
    )
    .await;

    client
        .simple_query("SELECT 'after rotation'")
        .await
        .unwrap();
    drop(client);
    wait_for(&audit, "the second statement and session_end", |r| {
        has_statement(r, "SELECT 'after rotation'") && r.iter().any(|e| e["event"] == "session_end")
    })
    .await;
    let status = proxy
        .terminate(Duration::from_secs(15))
        .await
        .expect("pgwarden exits after SIGTERM");
    assert!(status.success(), "exit status {status}");

    let old = records(&rotated);
    let new = records(&audit);
    assert!(has_statement(&old, "SELECT 'before rotation'"));
    assert!(!has_statement(&old, "SELECT 'after rotation'"));
    assert!(has_statement(&new, "SELECT 'after rotation'"));
    assert!(!has_statement(&new, "SELECT 'before rotation'"));
    let last_old = old.last().unwrap();
    let first_new = new.first().unwrap();
    assert_eq!(
        first_new["seq"].as_u64().unwrap(),
        last_old["seq"].as_u64().unwrap() + 1,
        "seq continues in the reopened file"
    );
    assert_eq!(first_new["prev"], last_old["hash"]);
    let (ok, out) = verify(&[&rotated, &audit]);
    assert!(ok, "the rotated files do not verify as one chain: {out}");
    assert!(out.contains("OK"), "{out}");
    // In the wrong order they are not one chain.
    let (ok, out) = verify(&[&audit, &rotated]);
    assert!(!ok, "the files verified in the wrong order: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_idle_running_and_held_sessions() {
    let c = PgCluster::start();
    victim_table(&c, "kept", 3, SCRAM_USER).await;
    let mut proxy = prod_builder(&c)
        .policy_toml(&small_policy("60s", "60s"))
        .server_setting("shutdown_grace", "\"10s\"")
        .spawn_binary()
        .await;
    let ep = proxy.endpoint();

    // An idle session (raw, to see exactly what it receives).
    let mut idle = RawConn::connect(&ep).await;
    idle.login_trust(TRUST_USER, APP_DB).await;

    // A session running a statement when SIGTERM arrives.
    let mut busy = RawConn::connect(&ep).await;
    busy.login_trust(TRUST_USER, APP_DB).await;
    busy.send(&query("SELECT pg_sleep(3), 'slept'"))
        .await
        .unwrap();
    let su = c.superuser_client().await;
    let su = &su;
    eventually(
        "pg_sleep running on the server",
        Duration::from_secs(10),
        move || async move {
            su.query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(3)%'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
                == 1
        },
    )
    .await;

    // A statement held for an approver.
    let held = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE kept").await;
    let (held, _held_client) = (held.task, held.client);

    let signalled = tokio::time::Instant::now();
    proxy.signal("TERM");

    // New connections are refused while the drain is still running.
    eventually(
        "the listener closed after SIGTERM",
        Duration::from_secs(5),
        || {
            let port = ep.port;
            async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_err()
            }
        },
    )
    .await;
    // ...while the drain is still running (the busy session's statement and the
    // held one keep it going), not because the process had already exited.
    assert!(
        proxy.is_running(),
        "pgwarden had exited {:?} after SIGTERM: {}",
        signalled.elapsed(),
        proxy.stderr()
    );
    assert!(ep
        .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .is_err());

    // The held statement is denied with PW005 and never runs.
    let r = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("held statement not resolved at shutdown")
        .unwrap();
    expect_code(r, "PW005");

    // The idle session gets FATAL 57P01 and is closed.
    let closed = idle.read_to_close(Duration::from_secs(10)).await;
    assert!(
        closed.closed,
        "idle session not closed: {:?}",
        closed.messages()
    );
    let err = closed.error_response().expect("an error before the close");
    assert_eq!(
        err.sqlstate().as_deref(),
        Some("57P01"),
        "{:?}",
        err.fields()
    );

    // The running statement finished and its result arrived before the close.
    let closed = busy.read_to_close(Duration::from_secs(10)).await;
    assert!(closed.closed, "busy session not closed");
    let tags: Vec<u8> = closed.messages().iter().map(|m| m.tag).collect();
    let fatal_at = tags
        .iter()
        .position(|&t| t == b'E')
        .expect("a FATAL at the end");
    assert_eq!(
        &tags[..fatal_at],
        b"TDCZ",
        "result then ReadyForQuery before the FATAL: {:?}",
        closed.messages()
    );
    let row = &closed.messages()[1];
    assert!(
        String::from_utf8_lossy(&row.body).contains("slept"),
        "{row:?}"
    );
    assert_eq!(
        closed.messages()[fatal_at].sqlstate().as_deref(),
        Some("57P01")
    );

    let status = proxy
        .wait(Duration::from_secs(10))
        .await
        .expect("pgwarden did not exit within the grace period");
    assert!(status.success(), "exit status {status}: {}", proxy.stderr());
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(server_count(&c, "kept").await, 3, "the held DROP ran");
}

const ALLOW_DROPS: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }
"#;

const BLOCK_DROPS: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "no-drops-after-reload"
environment = "production"
classes = ["drop.*"]
action = "block"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_policy_and_rejects_a_broken_one() {
    let c = PgCluster::start();
    victim_table(&c, "d1", 1, SCRAM_USER).await;
    victim_table(&c, "d2", 1, SCRAM_USER).await;
    victim_table(&c, "d3", 1, SCRAM_USER).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut proxy = prod_builder(&c)
        .policy_toml(ALLOW_DROPS)
        .extra_toml(&audit_toml(&audit, "guarded"))
        .spawn_binary()
        .await;
    let policy = proxy.dir().join("policy.toml");
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    client.simple_query("DROP TABLE d1").await.unwrap();
    assert!(!server_table_exists(&c, "d1").await);

    // Edit in place and send SIGHUP (the file watch may see the edit too).
    std::fs::write(&policy, BLOCK_DROPS).unwrap();
    proxy.hangup();
    wait_for(&audit, "a reload with the new policy", |r| {
        r.iter().any(|e| {
            e["event"] == "policy_reload"
                && e["result"] == "ok"
                && e["trigger"] == "sighup"
                && e["rules"] == 1
        })
    })
    .await;
    let e = client.simple_query("DROP TABLE d2").await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"), "{e:?}");
    assert!(server_table_exists(&c, "d2").await);

    // A broken policy and SIGHUP: rejected, audited, the last good one stays.
    std::fs::write(
        &policy,
        "[[rule]]\nname = \"x\"\nclasses = [\"drop.tabel\"]\naction = \"allow\"\n",
    )
    .unwrap();
    proxy.hangup();
    let recs = wait_for(&audit, "a sighup reload error", |r| {
        r.iter().any(|e| {
            e["event"] == "policy_reload" && e["result"] == "error" && e["trigger"] == "sighup"
        })
    })
    .await;
    let err = recs
        .iter()
        .find(|e| {
            e["event"] == "policy_reload" && e["trigger"] == "sighup" && e["result"] == "error"
        })
        .unwrap();
    assert!(
        err["error"].as_str().unwrap_or("").contains("drop.tabel"),
        "{err}"
    );
    let e = client.simple_query("DROP TABLE d3").await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"), "{e:?}");
    assert!(server_table_exists(&c, "d3").await);
    assert!(
        proxy.stderr().contains("policy reload rejected"),
        "{}",
        proxy.stderr()
    );
    // The session survived both reloads.
    assert!(usable(&client).await);
    drop(client);
    let status = proxy.terminate(Duration::from_secs(15)).await.unwrap();
    assert!(status.success());
}
