//! The impact probe for a Query message with the client's own transaction control
//! (`BEGIN; UPDATE …; DELETE …; COMMIT` from `psql -c`, `batch_execute`, migration
//! tools), through the real proxy with the example policy on a production target.
//! pgwarden sends the client's BEGIN, runs the statements one by one under its own
//! savepoint, measures each at its position, and ends with the client's COMMIT.
//! Over the limit it is held (the tables unchanged on the server); within it every
//! statement ran once and the replies, with the transaction status after each
//! message, are byte for byte those of a direct run. The shapes it does not
//! emulate keep `on_unknown`.

use crate::support;

use std::time::Duration;

use support::guarded::*;
use support::http;
use support::impact::*;
use support::raw::RawConn;
use support::*;

/// `t` and `u` (100 rows each), `p` with a deferred foreign key from `c`.
async fn tables(cluster: &PgCluster) {
    victim_table(cluster, "t", 100, SCRAM_USER).await;
    victim_table(cluster, "u", 100, SCRAM_USER).await;
    su_exec(
        cluster,
        "CREATE TABLE p (id int PRIMARY KEY);
         INSERT INTO p SELECT generate_series(1, 100);
         CREATE TABLE c (pid int REFERENCES p DEFERRABLE INITIALLY DEFERRED);
         INSERT INTO c VALUES (99), (100);
         GRANT ALL ON p, c TO PUBLIC;
         ANALYZE t, u, p, c",
    )
    .await;
}

/// Refilled in place (same OIDs, so row descriptions compare equal).
async fn refill(cluster: &PgCluster) {
    su_exec(
        cluster,
        "TRUNCATE t, u;
         INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 100) g;
         INSERT INTO u SELECT g, 'row ' || g FROM generate_series(1, 100) g;
         DELETE FROM c; INSERT INTO c VALUES (99), (100);
         DELETE FROM p; INSERT INTO p SELECT generate_series(1, 100);
         ANALYZE t, u, p, c;",
    )
    .await;
}

/// Messages with the client's transaction control, each measured statement within
/// the example policy's limits (1,000 rows, 10 % of a table over 10 rows), with
/// errors, the client's transactions and a deferred foreign key.
const SCENARIO: &[&str] = &[
    // BEGIN first, COMMIT last, from an idle session.
    "BEGIN; DELETE FROM t WHERE id > 98 RETURNING id /* x1 */; \
     UPDATE u SET v = 'a' WHERE id < 4 /* x2 */; SELECT count(*) FROM t; COMMIT",
    "SELECT count(*) FROM t",
    "START TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
     DELETE FROM t WHERE id > 97 /* x3 */; END",
    // An error after BEGIN: the transaction is failed (E), the rest never runs.
    "BEGIN; DELETE FROM t WHERE id > 95 /* x4 */; SELECT 1 / 0; \
     DELETE FROM u WHERE id > 90 /* x5 */; COMMIT",
    "SELECT 1",
    "ROLLBACK",
    // An error with a position, counted from the start of the message.
    "BEGIN; UPDATE u SET v = 'b' WHERE id > 95 /* x6 */; SELECT nocol FROM t; COMMIT",
    "ROLLBACK",
    // A read-only transaction: the write fails by itself.
    "BEGIN READ ONLY; DELETE FROM t WHERE id > 90 /* x7 */; COMMIT",
    "ROLLBACK",
    // A deferred foreign key fails at the client's COMMIT.
    "BEGIN; DELETE FROM p WHERE id > 98 /* x8 */; COMMIT",
    "SELECT count(*) FROM p",
    // BEGIN without COMMIT leaves the transaction open; COMMIT without BEGIN
    // inside it ends it.
    "BEGIN; UPDATE u SET v = 'open' WHERE id > 96 /* x9 */",
    "SELECT count(*) FROM u WHERE v = 'open'",
    "UPDATE t SET v = 'in' WHERE id < 3 /* x10 */; COMMIT",
    "SELECT count(*) FROM t WHERE v = 'in'; SELECT count(*) FROM u WHERE v = 'open'",
    // BEGIN inside the client's transaction: the server's warning.
    "BEGIN",
    "INSERT INTO t VALUES (300, 'mine')",
    "BEGIN; DELETE FROM t WHERE id > 299 /* x11 */; COMMIT",
    // A client savepoint named like pgwarden's, committed by the message.
    "BEGIN",
    "SAVEPOINT pgwarden_probe_1",
    "DELETE FROM t WHERE id > 90 AND id < 95 /* x12 */; COMMIT",
    "SELECT count(*) FROM t; SELECT count(*) FROM u",
    // An error after BEGIN without COMMIT, and inside the client's transaction.
    "BEGIN; DELETE FROM u WHERE id > 97 /* x13 */; SELECT 1 / 0",
    "ROLLBACK",
    "BEGIN",
    "DELETE FROM u WHERE id > 97 /* x14 */; SELECT 1 / 0; COMMIT",
    "ROLLBACK",
    // The client's own timeouts are what they were.
    "SET statement_timeout = '42s'",
    "BEGIN; UPDATE u SET v = 'y' WHERE id < 3 /* x15 */",
    "SHOW statement_timeout",
    "SHOW lock_timeout",
    "COMMIT",
    "SHOW statement_timeout",
    // EXPLAIN ANALYZE between the client's BEGIN and COMMIT.
    "BEGIN; EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) \
     DELETE FROM u WHERE id > 98 /* x16 */; COMMIT",
    "SELECT count(*) FROM t; SELECT count(*) FROM u; SELECT count(*) FROM p",
];

/// Markers of statements that must not run (after an error in their message).
const NEVER: &[&str] = &["x5"];

async fn run_scenario(ep: &Endpoint) -> Vec<String> {
    let mut c = RawConn::connect(ep).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    let mut out = Vec::new();
    for sql in SCENARIO {
        out.extend(exchange(&mut c, sql).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_the_limits_each_statement_runs_once_and_replies_are_as_direct() {
    let cluster = logged_cluster();
    tables(&cluster).await;
    let direct = run_scenario(&cluster.endpoint()).await;
    let markers: Vec<String> = (1..=16).map(|i| format!("/* x{i} */")).collect();
    let after_direct: Vec<usize> = markers.iter().map(|m| times_logged(&cluster, m)).collect();
    let direct_counts = (
        server_count(&cluster, "t").await,
        server_count(&cluster, "u").await,
        server_count(&cluster, "p").await,
    );
    refill(&cluster).await;
    let proxy = prod_builder(&cluster).start().await;
    let got = run_scenario(&proxy.endpoint()).await;
    show("impact_txn", "direct", &direct);
    show("impact_txn", "proxy", &got);
    for (i, (d, p)) in direct.iter().zip(got.iter()).enumerate() {
        assert_eq!(
            p, d,
            "line {i}: through pgwarden (left) differs from direct"
        );
    }
    assert_eq!(got.len(), direct.len());
    for (marker, before) in markers.iter().zip(after_direct) {
        let ran = times_logged(&cluster, marker) - before;
        let want = usize::from(!NEVER.iter().any(|n| marker.contains(&format!("{n} "))));
        assert_eq!(ran, want, "{marker} ran {ran} times through pgwarden");
    }
    assert_eq!(
        (
            server_count(&cluster, "t").await,
            server_count(&cluster, "u").await,
            server_count(&cluster, "p").await,
        ),
        direct_counts
    );
    // The statements were measured: pgwarden's counts were read.
    assert!(times_logged(&cluster, support::impact::PROBE_MARKER) > 10);
    proxy.shutdown().await;
}

/// The destructive families of the issue, each between the client's BEGIN and
/// COMMIT after a harmless statement.
const FAMILIES: &[&str] = &[
    "DELETE FROM t WHERE id > 0",
    "DELETE FROM t WHERE id > -2147483648",
    "UPDATE t SET v = 'gone' WHERE length(v) >= 0",
    "DELETE FROM t WHERE id BETWEEN -2147483648 AND 2147483647",
    "DELETE FROM t WHERE v LIKE '%'",
    "DELETE FROM t USING t t2 WHERE t.id = t2.id",
    "UPDATE t SET v = 'gone' FROM t t2 WHERE t.id = t2.id",
    "MERGE INTO t USING t s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "INSERT INTO t SELECT id, 'gone' FROM t ON CONFLICT (id) DO UPDATE SET v = excluded.v",
    "WITH d AS (DELETE FROM t WHERE id > 0 RETURNING *) SELECT count(*) FROM d",
    "DELETE FROM t WHERE id > 0 RETURNING *",
    "EXPLAIN ANALYZE DELETE FROM t WHERE id > 0",
];

async fn unchanged(cluster: &PgCluster, what: &str) {
    assert_eq!(server_count(cluster, "t").await, 100, "{what}");
    assert_eq!(server_count(cluster, "u").await, 100, "{what}");
    assert_eq!(
        server_count_where(cluster, "t", "v = 'row ' || id").await,
        100,
        "{what}"
    );
    assert_eq!(
        server_count_where(cluster, "u", "v = 'row ' || id").await,
        100,
        "{what}"
    );
}

/// Sends `sql` from a task and waits for its hold notice (PW001): its message and
/// detail, the task (still waiting) and the client.
async fn held(
    ep: &Endpoint,
    sql: &str,
) -> (
    String,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    std::sync::Arc<tokio_postgres::Client>,
) {
    let (client, mut rx) = ep
        .connect_with_messages(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .unwrap();
    let client = std::sync::Arc::new(client);
    let c = std::sync::Arc::clone(&client);
    let owned = sql.to_string();
    let task = tokio::spawn(async move { c.batch_execute(&owned).await });
    let notice = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(m) = rx.recv().await {
            if let tokio_postgres::AsyncMessage::Notice(n) = m {
                return Some(n);
            }
        }
        None
    })
    .await
    .unwrap_or_else(|_| panic!("{sql}: no hold notice within 15 s"))
    .unwrap_or_else(|| panic!("{sql}: connection ended before a hold notice"));
    assert_eq!(notice.code().code(), "PW001", "{sql}: {notice:?}");
    assert!(!task.is_finished(), "{sql}: the held message did not wait");
    let text = format!(
        "{} {}",
        notice.message(),
        notice.detail().unwrap_or_default()
    );
    (text, task, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_destroys_directly_and_is_held_through_pgwarden() {
    let cluster = PgCluster::start();
    tables(&cluster).await;
    let direct = cluster
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    let proxy = prod_builder(&cluster).start().await;
    for family in FAMILIES {
        let sql = format!("BEGIN; UPDATE u SET v = 'first' WHERE id = 1; {family}; COMMIT");
        // Directly: it destroys data.
        direct.batch_execute(&sql).await.unwrap();
        assert!(
            server_count(&cluster, "t").await < 100
                || server_count_where(&cluster, "t", "v = 'row ' || id").await < 100,
            "{sql}: not destructive directly"
        );
        refill(&cluster).await;
        // Through pgwarden (the example policy): held for an approver with the
        // measured impact at the statement's position; nothing changed.
        let (text, task, client) = held(&proxy.endpoint(), &sql).await;
        assert!(
            text.contains("large-writes-need-a-second-person"),
            "{sql}: {text}"
        );
        assert!(
            text.contains("statement 3 of 4: would ")
                && text.contains("100 of 100 rows of public.t"),
            "{sql}: the measured impact is not in the notice: {text}"
        );
        unchanged(&cluster, &sql).await;
        task.abort();
        drop(client);
        tokio::time::sleep(Duration::from_millis(100)).await;
        unchanged(&cluster, &sql).await;
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_after_begin_leaves_the_transaction_failed_as_an_error_would() {
    let cluster = logged_cluster();
    tables(&cluster).await;
    let proxy = impact_proxy(&cluster).await;
    let mut c = RawConn::connect(&proxy.endpoint()).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    let lines = |r: &[String]| r.join("\n");
    // The replies before the refused statement (the client's BEGIN, the UPDATE),
    // then pgwarden's error with the impact at its position; the transaction is
    // failed, as after any error there, and nothing of it stands.
    let r = exchange(
        &mut c,
        "BEGIN; UPDATE u SET v = 'first' WHERE id = 1; \
         DELETE FROM t WHERE id > 0 RETURNING id; DELETE FROM u WHERE id > 50 /* late-1 */; COMMIT",
    )
    .await;
    assert_eq!(r[1], "C BEGIN|", "{}", lines(&r));
    assert_eq!(r[2], "C UPDATE 1|", "{}", lines(&r));
    assert!(
        r[3].starts_with("E ") && r[3].contains("PW002"),
        "{}",
        lines(&r)
    );
    assert!(
        r[3].contains("statement 3 of 5: would delete 100 of 100 rows of public.t"),
        "{}",
        lines(&r)
    );
    assert_eq!(r[4], "Z E", "{}", lines(&r));
    assert_eq!(r.len(), 5, "no RETURNING rows: {}", lines(&r));
    let r = exchange(&mut c, "SELECT 1").await;
    assert!(r[1].contains("25P02"), "{}", lines(&r));
    let r = exchange(&mut c, "ROLLBACK").await;
    assert_eq!(r[1..], ["C ROLLBACK|", "Z I"], "{}", lines(&r));
    unchanged(&cluster, "after BEGIN").await;
    assert_eq!(times_logged(&cluster, "late-1"), 0);

    // Without BEGIN, from an idle session: the implicit transaction is rolled back
    // (status I), and the refused statement's RETURNING rows never reach the client.
    let r = exchange(
        &mut c,
        "UPDATE u SET v = 'first' WHERE id = 1; DELETE FROM t WHERE id > 0 RETURNING id",
    )
    .await;
    assert_eq!(r[1], "C UPDATE 1|", "{}", lines(&r));
    assert!(
        r[2].starts_with("E ") && r[2].contains("PW002"),
        "{}",
        lines(&r)
    );
    assert_eq!(r[3..], ["Z I"], "{}", lines(&r));
    unchanged(&cluster, "without BEGIN").await;

    // COMMIT without BEGIN inside the client's transaction: the same.
    exchange(&mut c, "BEGIN").await;
    exchange(&mut c, "INSERT INTO u VALUES (500, 'mine')").await;
    let r = exchange(&mut c, "UPDATE t SET v = 'gone' WHERE id > 0; COMMIT").await;
    assert!(r[1].contains("PW002"), "{}", lines(&r));
    assert_eq!(r[2], "Z E", "{}", lines(&r));
    exchange(&mut c, "ROLLBACK").await;
    unchanged(&cluster, "inside a transaction").await;

    // tokio-postgres and psql -c.
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    let sql = "BEGIN; DELETE FROM t WHERE v LIKE '%'; COMMIT";
    expect_code(client.batch_execute(sql).await, "PW002");
    expect_code(client.simple_query("SELECT 1").await, "25P02");
    client.batch_execute("ROLLBACK").await.unwrap();
    expect_code(client.simple_query(sql).await, "PW002");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert!(usable(&client).await);
    let out = proxy
        .endpoint()
        .psql(SCRAM_USER, SCRAM_PASSWORD, APP_DB, &["-X", "-c", sql])
        .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("impact-limit"), "{}", out.stderr);
    unchanged(&cluster, "clients").await;

    // Within the limits psql -c prints what it prints directly.
    let cmd = "BEGIN; UPDATE u SET v = 'p' WHERE id = 4; DELETE FROM t WHERE id > 98 RETURNING id; COMMIT";
    let via = proxy
        .endpoint()
        .psql(SCRAM_USER, SCRAM_PASSWORD, APP_DB, &["-X", "-c", cmd])
        .await;
    via.assert_ok("psql -c through pgwarden");
    assert_eq!(server_count(&cluster, "t").await, 98);
    refill(&cluster).await;
    let direct = cluster
        .endpoint()
        .psql(SCRAM_USER, SCRAM_PASSWORD, APP_DB, &["-X", "-c", cmd])
        .await;
    direct.assert_ok("psql -c direct");
    assert_eq!(via.stdout, direct.stdout);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shapes_not_emulated_keep_on_unknown() {
    let cluster = PgCluster::start();
    tables(&cluster).await;
    let proxy = impact_proxy(&cluster).await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    for sql in [
        // Outside a transaction the server warns from its implicit block.
        "DELETE FROM t WHERE id > 99; COMMIT",
        "BEGIN; DELETE FROM t WHERE id > 99; ROLLBACK",
        "BEGIN; DELETE FROM t WHERE id > 99; COMMIT; SELECT 1",
        "BEGIN; DELETE FROM t WHERE id > 99; COMMIT AND CHAIN",
        "BEGIN; SAVEPOINT s; DELETE FROM t WHERE id > 99; COMMIT",
        "DELETE FROM t WHERE id > 99; BEGIN; COMMIT",
        "BEGIN; SET LOCAL lock_timeout = '1s'; DELETE FROM t WHERE id > 99; COMMIT",
        "BEGIN; LOCK t; DELETE FROM t WHERE id > 99; COMMIT",
    ] {
        expect_code(c.simple_query(sql).await, "PW002");
        assert_eq!(server_count(&cluster, "t").await, 100, "{sql}");
        assert!(usable(&c).await, "{sql}");
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_transaction_shows_the_impact_and_approval_reruns_it_bounded() {
    let cluster = logged_cluster();
    tables(&cluster).await;
    victim_table(&cluster, "held_t", 20, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let admin = proxy.admin_addr().expect("admin listener");

    let sql = "BEGIN; UPDATE u SET v = 'one' WHERE id = 1; \
               DELETE FROM held_t WHERE id > 10 /* rerun-1 */; COMMIT";
    let h = hold(&proxy.endpoint(), SCRAM_USER, SCRAM_PASSWORD, sql).await;
    assert!(h.notice.contains("held-impact"), "{}", h.notice);
    let listed = http::get(admin, &format!("/holds/{}", h.id), Some(ALICE_TOKEN)).await;
    let impact = listed.json()["impact"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        impact.contains("statement 3 of 4: would delete 10 of 20 rows of public.held_t (50 %)"),
        "{listed:?}"
    );
    assert_eq!(server_count(&cluster, "held_t").await, 20);
    assert_eq!(server_count_where(&cluster, "u", "v = 'one'").await, 0);
    let r = approve(admin, h.id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(outcome(h.task).await, Ok(()));
    assert_eq!(server_count(&cluster, "held_t").await, 10);
    assert_eq!(server_count_where(&cluster, "u", "v = 'one'").await, 1);
    // Committed: the session is idle again.
    assert!(usable(&h.client).await);
    let rows = h.client.simple_query("SHOW transaction_isolation").await;
    assert!(rows.is_ok());
    // The probe and the approved re-run: rolled back once, committed once.
    assert_eq!(times_logged(&cluster, "rerun-1 */"), 2);

    // Approved, but the data changed meanwhile: rolled back and refused; the
    // client's transaction is failed as after an error there.
    let sql = "BEGIN; UPDATE u SET v = 'two' WHERE id = 2; \
               DELETE FROM held_t WHERE id > 2 /* rerun-2 */; COMMIT";
    let h = hold(&proxy.endpoint(), SCRAM_USER, SCRAM_PASSWORD, sql).await;
    su_exec(
        &cluster,
        "INSERT INTO held_t SELECT g, 'new' FROM generate_series(100, 110) g",
    )
    .await;
    let r = approve(admin, h.id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(outcome(h.task).await, Err("PW008".to_string()));
    expect_code(h.client.simple_query("SELECT 1").await, "25P02");
    h.client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(server_count(&cluster, "held_t").await, 21);
    assert_eq!(server_count_where(&cluster, "u", "v = 'two'").await, 0);
    assert!(usable(&h.client).await);
    proxy.shutdown().await;
}
