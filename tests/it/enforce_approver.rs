//! Approver holds through the real proxy: the client gets a NoticeResponse "held as
//! #ID" at once and waits; approve (admin API or `pgwarden holds`) runs the statement
//! exactly once, deny gives PW004, timeout PW005; a client that disconnects or
//! cancels while held never has its statement run; an approver cannot approve a
//! statement of their own user; 50 concurrent holds resolve independently. Every
//! outcome is checked on the server as the superuser.
//!
//! The admin API tests need `RunningProxy::admin_addr()` (the `[admin]` listener).

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use support::guarded::*;
use support::http;
use support::raw::{query, RawConn};
use support::*;

const ALICE_TOKEN: &str = "alice-secret-token";
/// An approver whose name equals the database user `scram_user`.
const SELF_TOKEN: &str = "scram-user-approver-token";

/// A proxy with a production target, `policy` (None: built-in), and approvers
/// `alice` and `scram_user` whose tokens come from environment variables unique to
/// `test`.
async fn admin_proxy(cluster: &PgCluster, policy: Option<&str>, test: &str) -> TestProxy {
    let alice_env = format!("PGWARDEN_TEST_TOKEN_{test}_ALICE");
    let self_env = format!("PGWARDEN_TEST_TOKEN_{test}_SCRAM_USER");
    std::env::set_var(&alice_env, ALICE_TOKEN);
    std::env::set_var(&self_env, SELF_TOKEN);
    let mut b = prod_builder(cluster).admin(&[("alice", &alice_env), (SCRAM_USER, &self_env)]);
    if let Some(p) = policy {
        b = b.policy_toml(p);
    }
    b.start().await
}

/// The admin listener's address; panics when this build has no admin API.
#[track_caller]
fn admin(proxy: &TestProxy) -> SocketAddr {
    proxy.admin_addr().expect(
        "the proxy has no admin listener: RunningProxy::admin_addr() returned None \
         (is the admin HTTP API in this build?)",
    )
}

/// The held statement's outcome (within 10 s).
async fn outcome(task: JoinHandle<Result<(), tokio_postgres::Error>>) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("held statement not resolved within 10 s")
        .expect("task panicked")
        .map_err(|e| sqlstate(&e).unwrap_or_else(|| format!("client error {e}")))
}

async fn approve(addr: SocketAddr, id: u64, token: Option<&str>) -> http::Response {
    http::post(addr, &format!("/holds/{id}/approve"), token, None).await
}

async fn deny(
    addr: SocketAddr,
    id: u64,
    token: Option<&str>,
    reason: Option<&str>,
) -> http::Response {
    let body = reason.map(|r| serde_json::json!({ "reason": r }).to_string());
    http::post(addr, &format!("/holds/{id}/deny"), token, body.as_deref()).await
}

/// Pending holds per the admin API.
async fn list(addr: SocketAddr) -> Vec<serde_json::Value> {
    let r = http::get(addr, "/holds", Some(ALICE_TOKEN)).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json().as_array().cloned().expect("GET /holds: an array")
}

/// Waits until a hold whose SQL contains `sql` is listed; returns its id.
async fn wait_listed(addr: SocketAddr, sql: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(h) = list(addr)
            .await
            .into_iter()
            .find(|h| h["sql"].as_str().is_some_and(|s| s.contains(sql)))
        {
            return h["id"].as_u64().expect("hold id");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sql:?} never listed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_runs_exactly_once_and_deny_never_runs() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, SCRAM_USER).await;
    victim_table(&cluster, "ledger", 0, SCRAM_USER).await;
    let proxy = admin_proxy(&cluster, Some(&small_policy("1m", "1m")), "APPROVE").await;
    let addr = admin(&proxy);
    let ep = proxy.endpoint();

    // Held: the statement waits, nothing ran, the hold is listed with its facts.
    let h = hold(
        &ep,
        SCRAM_USER,
        SCRAM_PASSWORD,
        "INSERT INTO ledger VALUES (1, 'paid')",
    )
    .await;
    assert!(h.notice.contains("ledger-approve"), "{}", h.notice);
    assert!(h.notice.contains("waiting for approval"), "{}", h.notice);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server_count(&cluster, "ledger").await, 0);
    let holds = list(addr).await;
    assert_eq!(holds.len(), 1, "{holds:?}");
    let l = &holds[0];
    assert_eq!(l["id"].as_u64(), Some(h.id));
    assert_eq!(l["user"], SCRAM_USER);
    assert_eq!(l["database"], APP_DB);
    assert_eq!(l["target"], PROD);
    assert_eq!(l["rule"], "ledger-approve");
    assert_eq!(l["sql"], "INSERT INTO ledger VALUES (1, 'paid')");
    assert!(l["classes"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c == "write")));
    for key in [
        "session",
        "application",
        "client",
        "age_seconds",
        "timeout_seconds",
    ] {
        assert!(l.get(key).is_some(), "{key} missing from {l}");
    }
    assert_eq!(l["timeout_seconds"].as_u64(), Some(60));

    // Authorization and unknown ids.
    assert_eq!(http::get(addr, "/holds", None).await.status, 401);
    assert_eq!(http::get(addr, "/holds", Some("wrong")).await.status, 401);
    assert_eq!(approve(addr, h.id, None).await.status, 401);
    assert_eq!(approve(addr, h.id, Some("wrong")).await.status, 401);
    assert_eq!(deny(addr, h.id, Some("wrong"), None).await.status, 401);
    assert_eq!(approve(addr, 999_999, Some(ALICE_TOKEN)).await.status, 404);
    assert_eq!(server_count(&cluster, "ledger").await, 0);
    assert!(!h.task.is_finished());

    // Approve: runs, once; the client gets the normal result.
    let r = approve(addr, h.id, Some(ALICE_TOKEN)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    assert_eq!(j["id"].as_u64(), Some(h.id));
    assert_eq!(j["status"], "approved");
    assert_eq!(j["approver"], "alice");
    assert_eq!(outcome(h.task).await, Ok(()));
    assert_eq!(server_count(&cluster, "ledger").await, 1);
    assert_eq!(approve(addr, h.id, Some(ALICE_TOKEN)).await.status, 404);
    assert_eq!(server_count(&cluster, "ledger").await, 1);
    assert!(usable(&h.client).await);
    assert!(list(addr).await.is_empty());

    // Approved in the extended protocol too: the normal result (rows affected).
    let (c, mut rx) = ep
        .connect_with_messages(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .unwrap();
    let c = Arc::new(c);
    let c2 = Arc::clone(&c);
    let task = tokio::spawn(async move {
        c2.execute("INSERT INTO ledger VALUES ($1, 'ext')", &[&2i32])
            .await
    });
    let id = loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(AsyncMessage::Notice(n))) => break hold_id(n.message()),
            Ok(Some(_)) => continue,
            other => panic!("no hold notice: {other:?}"),
        }
    };
    assert_eq!(approve(addr, id, Some(ALICE_TOKEN)).await.status, 200);
    let n = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .expect("approved extended insert");
    assert_eq!(n, 1);
    assert_eq!(server_count(&cluster, "ledger").await, 2);

    // Deny: PW004 with the reason; nothing runs; the connection stays usable.
    let h = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE t").await;
    assert!(h.notice.contains("drop.table"), "{}", h.notice);
    let r = deny(
        addr,
        h.id,
        Some(ALICE_TOKEN),
        Some("not during business hours"),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let err = tokio::time::timeout(Duration::from_secs(10), h.task)
        .await
        .unwrap()
        .unwrap()
        .expect_err("denied statement succeeded");
    let db = err.as_db_error().expect("server error");
    assert_eq!(db.code().code(), "PW004");
    let full = format!("{} {:?}", db.message(), db.detail());
    assert!(full.contains("alice"), "{full}");
    assert!(full.contains("not during business hours"), "{full}");
    assert!(server_table_exists(&cluster, "t").await);
    assert_eq!(server_count(&cluster, "t").await, 5);
    assert!(usable(&h.client).await);
    assert_eq!(approve(addr, h.id, Some(ALICE_TOKEN)).await.status, 404);
    assert!(server_table_exists(&cluster, "t").await);

    // Deny without a body works too.
    let h = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "TRUNCATE t").await;
    assert_eq!(deny(addr, h.id, Some(ALICE_TOKEN), None).await.status, 200);
    assert_eq!(outcome(h.task).await, Err("PW004".into()));
    assert_eq!(server_count(&cluster, "t").await, 5);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_approval_is_refused() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, SCRAM_USER).await;
    let proxy = admin_proxy(&cluster, Some(&small_policy("1m", "1m")), "SELF").await;
    let addr = admin(&proxy);
    let h = hold(
        &proxy.endpoint(),
        SCRAM_USER,
        SCRAM_PASSWORD,
        "DROP TABLE t",
    )
    .await;
    // The approver named like the statement's database user may not approve it.
    let r = approve(addr, h.id, Some(SELF_TOKEN)).await;
    assert_eq!(r.status, 403, "{r:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!h.task.is_finished());
    assert!(server_table_exists(&cluster, "t").await);
    assert_eq!(
        list(addr).await.len(),
        1,
        "a refused self-approval keeps the hold"
    );
    // Somebody else may.
    assert_eq!(approve(addr, h.id, Some(ALICE_TOKEN)).await.status, 200);
    assert_eq!(outcome(h.task).await, Ok(()));
    assert!(!server_table_exists(&cluster, "t").await);
    proxy.shutdown().await;
}

/// Expiry and cancellation need no approver: they are tested without the admin API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_cancel_never_run() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, SCRAM_USER).await;
    let proxy = prod_builder(&cluster)
        .policy_toml(&small_policy("1m", "1s"))
        .start()
        .await;
    let ep = proxy.endpoint();

    // Timeout: PW005; nothing ran; the connection stays usable.
    let h = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE t").await;
    assert!(h.notice.contains("timeout 1s"), "{}", h.notice);
    assert_eq!(outcome(h.task).await, Err("PW005".into()));
    assert!(server_table_exists(&cluster, "t").await);
    assert!(usable(&h.client).await);

    // Cancel while held: 57014; nothing ran, now or after the hold would have
    // expired; the connection stays usable.
    let h = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE t").await;
    h.client
        .cancel_token()
        .cancel_query(NoTls)
        .await
        .expect("send cancel");
    assert_eq!(outcome(h.task).await, Err("57014".into()));
    // The cancel is pgwarden's to handle: the next statement is not cancelled by it.
    h.client
        .query_one("SELECT pg_sleep(0.3)", &[])
        .await
        .expect("statement after the cancelled hold");
    assert!(usable(&h.client).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(server_table_exists(&cluster, "t").await);
    assert!(usable(&h.client).await);

    // A cancel of an earlier, running statement must not cancel a later hold: the
    // later hold waits for its own resolution (here: the 1 s timeout, PW005).
    let c = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let c = Arc::new(c);
    let c2 = Arc::clone(&c);
    let sleeper = tokio::spawn(async move { c2.batch_execute("SELECT pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.cancel_token().cancel_query(NoTls).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), sleeper)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.map_err(|e| sqlstate(&e)), Err(Some("57014".to_string())));
    let c3 = Arc::clone(&c);
    let started = tokio::time::Instant::now();
    let held = tokio::spawn(async move { c3.batch_execute("DROP TABLE t").await });
    assert_eq!(
        outcome(held).await,
        Err("PW005".into()),
        "the earlier cancel withdrew a later hold"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(server_table_exists(&cluster, "t").await);
    assert!(usable(&c).await);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_while_held_never_runs() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, SCRAM_USER).await;
    victim_table(&cluster, "t_raw", 5, TRUST_USER).await;
    victim_table(&cluster, "t_rst", 5, TRUST_USER).await;
    let proxy = admin_proxy(&cluster, Some(&small_policy("1m", "1m")), "DISCONNECT").await;
    let addr = admin(&proxy);
    let ep = proxy.endpoint();

    // psql killed while its DROP waits.
    let mut cmd = ep.tool_command("psql", SCRAM_USER, SCRAM_PASSWORD, APP_DB);
    cmd.args(["-X", "-c", "DROP TABLE t"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut psql = cmd.spawn().expect("spawn psql");
    let id = wait_listed(addr, "DROP TABLE t").await;
    psql.kill().await.unwrap();

    // A raw client that closes its socket after the notice.
    let mut raw = RawConn::connect(&ep).await;
    raw.login_trust(TRUST_USER, APP_DB).await;
    raw.send(&query("DROP TABLE t_raw")).await.unwrap();
    let n = raw
        .read_message(Duration::from_secs(10))
        .await
        .expect("notice");
    assert_eq!(n.tag, b'N');
    let raw_id = hold_id(&n.fields()[&'M']);
    drop(raw);

    // A raw client whose connection is reset (RST, not a clean close).
    let mut rst = RawConn::connect(&ep).await;
    rst.login_trust(TRUST_USER, APP_DB).await;
    rst.send(&query("DROP TABLE t_rst")).await.unwrap();
    let n = rst
        .read_message(Duration::from_secs(10))
        .await
        .expect("notice");
    let rst_id = hold_id(&n.fields()[&'M']);
    #[allow(deprecated)] // SO_LINGER 0 does not block: it resets at once
    rst.stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(rst);

    // The holds are withdrawn: approving them afterwards finds nothing, and the
    // statements never run (checked after the approval attempts).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (id, what) in [(id, "psql"), (raw_id, "raw close"), (rst_id, "raw reset")] {
        let r = approve(addr, id, Some(ALICE_TOKEN)).await;
        assert_eq!(r.status, 404, "{what}: approve after disconnect: {r:?}");
    }
    assert!(list(addr).await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    for t in ["t", "t_raw", "t_rst"] {
        assert!(server_table_exists(&cluster, t).await, "{t} was dropped");
        assert_eq!(server_count(&cluster, t).await, 5);
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_holds_resolve_independently() {
    const N: usize = 50;
    let cluster = PgCluster::start();
    su_exec(
        &cluster,
        &format!("GRANT ALL ON SCHEMA public TO {SCRAM_USER}"),
    )
    .await;
    let mut ddl = String::new();
    for i in 0..N {
        ddl.push_str(&format!(
            "CREATE TABLE t_{i} (id int); INSERT INTO t_{i} VALUES ({i}); ALTER TABLE t_{i} OWNER TO {SCRAM_USER};"
        ));
    }
    su_exec(&cluster, &ddl).await;
    // A policy that holds DROP TABLE for an approver (the built-in one trashes it).
    let proxy = admin_proxy(&cluster, Some(&small_policy("10m", "10m")), "FIFTY").await;
    let addr = admin(&proxy);
    let ep = proxy.endpoint();

    let holds: Vec<Held> = join_all((0..N).map(|i| {
        let ep = ep.clone();
        async move {
            hold(
                &ep,
                SCRAM_USER,
                SCRAM_PASSWORD,
                &format!("DROP TABLE t_{i}"),
            )
            .await
        }
    }))
    .await;
    let mut ids: Vec<u64> = holds.iter().map(|h| h.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N, "hold ids are not distinct");
    assert_eq!(list(addr).await.len(), N);
    for i in 0..N {
        assert!(server_table_exists(&cluster, &format!("t_{i}")).await);
    }

    // Approve the even ones and deny the odd ones, all at once.
    let responses = join_all(holds.iter().enumerate().map(|(i, h)| async move {
        if i % 2 == 0 {
            approve(addr, h.id, Some(ALICE_TOKEN)).await
        } else {
            deny(addr, h.id, Some(ALICE_TOKEN), Some("odd")).await
        }
    }))
    .await;
    for (i, r) in responses.iter().enumerate() {
        assert_eq!(r.status, 200, "hold {i}: {r:?}");
    }
    let outcomes = join_all(holds.into_iter().map(|h| outcome(h.task))).await;
    for (i, o) in outcomes.into_iter().enumerate() {
        let expected = if i % 2 == 0 {
            Ok(())
        } else {
            Err("PW004".to_string())
        };
        assert_eq!(o, expected, "session {i}");
        assert_eq!(
            server_table_exists(&cluster, &format!("t_{i}")).await,
            i % 2 == 1,
            "t_{i}: exactly the approved tables are gone"
        );
    }
    assert!(list(addr).await.is_empty());
    proxy.shutdown().await;
}

/// `pgwarden holds list|approve|deny` against the running proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_cli() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, SCRAM_USER).await;
    victim_table(&cluster, "u", 5, SCRAM_USER).await;
    let proxy = admin_proxy(&cluster, Some(&small_policy("1m", "1m")), "CLI").await;
    let addr = admin(&proxy);
    let url = format!("http://{addr}");
    let cli = |args: Vec<String>, env: Vec<(&'static str, String)>| async move {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"));
        cmd.args(&args)
            .env_remove("PGWARDEN_ADMIN")
            .env_remove("PGWARDEN_TOKEN")
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
            .await
            .expect("pgwarden holds timed out")
            .expect("run pgwarden");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let with_flags = |sub: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["holds".into()];
        v.extend(sub.iter().map(|s| s.to_string()));
        v.extend([
            "--admin".into(),
            url.clone(),
            "--token".into(),
            ALICE_TOKEN.into(),
        ]);
        v
    };

    let ep = proxy.endpoint();
    let h1 = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE t").await;
    let h2 = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE u").await;

    // list (flags), and again with the environment variables.
    let (st, out, err) = cli(with_flags(&["list"]), vec![]).await;
    assert!(st.success(), "holds list: {st}\n{out}\n{err}");
    for needle in [
        h1.id.to_string(),
        h2.id.to_string(),
        "DROP TABLE t".into(),
        "DROP TABLE u".into(),
        SCRAM_USER.to_string(),
    ] {
        assert!(
            out.contains(&needle),
            "{needle:?} not in holds list:\n{out}"
        );
    }
    let (st, out2, err) = cli(
        vec!["holds".into(), "list".into()],
        vec![
            ("PGWARDEN_ADMIN", url.clone()),
            ("PGWARDEN_TOKEN", ALICE_TOKEN.into()),
        ],
    )
    .await;
    assert!(st.success(), "holds list (env): {st}\n{out2}\n{err}");
    assert!(out2.contains("DROP TABLE u"), "{out2}");

    // A wrong token fails with a non-zero exit and changes nothing.
    let mut bad = with_flags(&["approve", &h1.id.to_string()]);
    let last = bad.len() - 1;
    bad[last] = "wrong-token".into();
    let (st, _, _) = cli(bad, vec![]).await;
    assert!(!st.success(), "approve with a wrong token succeeded");
    assert!(server_table_exists(&cluster, "t").await);

    // deny with a reason, approve.
    let (st, out, err) = cli(
        with_flags(&["deny", &h2.id.to_string(), "--reason", "keep u"]),
        vec![],
    )
    .await;
    assert!(st.success(), "holds deny: {st}\n{out}\n{err}");
    let e = tokio::time::timeout(Duration::from_secs(10), h2.task)
        .await
        .unwrap()
        .unwrap()
        .expect_err("denied");
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "PW004");
    assert!(
        format!("{} {:?}", db.message(), db.detail()).contains("keep u"),
        "{db:?}"
    );
    let (st, out, err) = cli(with_flags(&["approve", &h1.id.to_string()]), vec![]).await;
    assert!(st.success(), "holds approve: {st}\n{out}\n{err}");
    assert_eq!(outcome(h1.task).await, Ok(()));
    assert!(!server_table_exists(&cluster, "t").await);
    assert!(server_table_exists(&cluster, "u").await);

    // Approving what is no longer held fails.
    let (st, _, _) = cli(with_flags(&["approve", &h1.id.to_string()]), vec![]).await;
    assert!(!st.success(), "approving a resolved hold succeeded");
    let (st, out, _) = cli(with_flags(&["list"]), vec![]).await;
    assert!(st.success());
    assert!(!out.contains("DROP TABLE"), "{out}");
    proxy.shutdown().await;
}

/// The binary with its defaults runs sessions, the admin API and the audit writer's
/// callers on one thread (`server.worker_threads = 1`). A statement held there waits
/// without stalling anything else: other sessions keep working, `pgwarden holds approve`
/// reaches the admin API, and the statement runs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_thread_binary_serves_while_a_statement_is_held() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, SCRAM_USER).await;
    let token_env = "PGWARDEN_TEST_TOKEN_BINARY_ALICE";
    std::env::set_var(token_env, ALICE_TOKEN);
    let admin_port = free_port();
    let audit = tempfile::tempdir().unwrap();
    let proxy = prod_builder(&cluster)
        .policy_toml(&small_policy("1m", "1m"))
        .extra_toml(&format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
             approvers = {{ alice = {{ token_env = \"{token_env}\" }} }}\n{}",
            support::audit_file::audit_toml(&audit.path().join("audit.jsonl"), "guarded")
        ))
        .spawn_binary()
        .await;
    assert!(
        !proxy.config_toml().contains("worker_threads"),
        "this test is about the default"
    );
    let ep = proxy.endpoint();
    let h = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE t").await;

    // Another session is served while the statement waits.
    let other = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let n: i64 = other
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 5);
    assert!(!h.task.is_finished());

    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
            .args([
                "holds",
                "approve",
                &h.id.to_string(),
                "--admin",
                &format!("http://127.0.0.1:{admin_port}"),
                "--token",
                ALICE_TOKEN,
            ])
            .env_remove("PGWARDEN_ADMIN")
            .env_remove("PGWARDEN_TOKEN")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("pgwarden holds approve timed out")
    .expect("run pgwarden");
    assert!(
        out.status.success(),
        "holds approve: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(outcome(h.task).await, Ok(()));
    assert!(!server_table_exists(&cluster, "t").await);
    drop(h.client);
}
