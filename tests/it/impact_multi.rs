//! The impact probe for simple Query messages of several statements (`psql -c
//! "UPDATE …; DELETE …"`, tokio-postgres `simple_query` / `batch_execute`), through
//! the real proxy: pgwarden runs the statements one by one inside its transaction
//! (or savepoint) and measures each at its position. Over the limit the tables are
//! unchanged on the server; within it every statement ran once and the client's
//! replies are byte for byte those of a direct run, errors in the middle and the
//! client's transactions and savepoints included.

use crate::support;

use support::guarded::*;
use support::http;
use support::impact::*;
use support::raw::RawConn;
use support::*;

/// `t` and `u` with 20 rows each (ids 1..=20), refilled in place (same table
/// OIDs, so row descriptions compare equal between runs).
async fn refill(cluster: &PgCluster) {
    su_exec(
        cluster,
        "TRUNCATE t, u;
         INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 20) g;
         INSERT INTO u SELECT g, 'row ' || g FROM generate_series(1, 20) g;
         ANALYZE t, u;",
    )
    .await;
}

async fn tables(cluster: &PgCluster) {
    victim_table(cluster, "t", 20, SCRAM_USER).await;
    victim_table(cluster, "u", 20, SCRAM_USER).await;
    // A deferred foreign key: checked at COMMIT, after the last statement ran.
    su_exec(
        cluster,
        "CREATE TABLE p (id int PRIMARY KEY);
         INSERT INTO p SELECT generate_series(1, 20);
         CREATE TABLE c (pid int REFERENCES p DEFERRABLE INITIALLY DEFERRED);
         INSERT INTO c VALUES (19), (20);
         GRANT ALL ON p, c TO PUBLIC;
         ANALYZE t, u, p, c",
    )
    .await;
}

/// Messages of several statements, each within the limits, with errors in the
/// middle, inside and outside the client's transactions and savepoints.
const SCENARIO: &[&str] = &[
    "DELETE FROM t WHERE id > 18 RETURNING id /* m1 */; \
     UPDATE u SET v = 'upd' WHERE id BETWEEN 1 AND 3 /* m2 */; SELECT count(*) FROM t",
    "INSERT INTO t VALUES (200, 'new') /* m3 */; DELETE FROM t WHERE id >= 200 /* m4 */; \
     SELECT count(*) FROM t WHERE id >= 200",
    // An error in the middle: the first statement is rolled back, the last never runs.
    "DELETE FROM t WHERE id > 15 /* m5 */; SELECT 1 / 0; DELETE FROM t WHERE id < 3 /* m6 */",
    "SELECT count(*) FROM t",
    // An error with a position (counted from the start of the message).
    "DELETE FROM t WHERE id > 16 /* m7 */; SELECT nocol FROM t",
    "UPDATE t SET v = 'key' WHERE id = 5 /* m8 */; DELETE FROM u WHERE id > 19 /* m9 */; \
     SELECT v FROM t WHERE id = 5",
    // Inside the client's transaction, with its own savepoints.
    "BEGIN",
    "INSERT INTO t VALUES (300, 'mine')",
    "SAVEPOINT a",
    "DELETE FROM t WHERE id > 14 AND id < 100 /* m10 */; UPDATE u SET v = 'in' WHERE id < 3 /* m11 */",
    "SELECT count(*) FROM t",
    "ROLLBACK TO SAVEPOINT a",
    "SELECT count(*) FROM t; SELECT count(*) FROM u WHERE v = 'in'",
    "DELETE FROM t WHERE id > 15 AND id < 100 /* m12 */; SELECT 1 / 0; SELECT 2",
    "SELECT 1",
    "ROLLBACK TO SAVEPOINT a",
    "DELETE FROM t WHERE id > 17 AND id < 100 /* m13 */; DELETE FROM u WHERE id = 1 /* m14 */",
    "RELEASE SAVEPOINT a",
    "COMMIT",
    "SELECT count(*) FROM t; SELECT count(*) FROM u",
    // A client savepoint named like pgwarden's.
    "BEGIN",
    "SAVEPOINT pgwarden_probe_1",
    "DELETE FROM t WHERE id > 15 AND id < 100 /* m15 */; DELETE FROM u WHERE id > 18 /* m16 */",
    "ROLLBACK TO SAVEPOINT pgwarden_probe_1",
    "SELECT count(*) FROM t; SELECT count(*) FROM u",
    "ROLLBACK",
    // The client's own timeouts are what they were.
    "SET statement_timeout = '42s'",
    "DELETE FROM t WHERE id > 14 AND id < 17 /* m17 */; UPDATE u SET v = 'x' WHERE id = 2",
    "SHOW statement_timeout",
    "SHOW lock_timeout",
    // A deferred constraint fails at COMMIT: the error takes the last tag's place.
    "DELETE FROM p WHERE id > 18 /* m18 */; SELECT count(*) FROM p",
    "SELECT count(*) FROM p",
];

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
async fn within_the_limit_every_statement_runs_once_and_replies_are_as_direct() {
    let cluster = logged_cluster();
    tables(&cluster).await;
    let direct = run_scenario(&cluster.endpoint()).await;
    let after_direct: Vec<usize> = (1..=18)
        .map(|i| times_logged(&cluster, &format!("/* m{i} */")))
        .collect();
    let direct_counts = (
        server_count(&cluster, "t").await,
        server_count(&cluster, "u").await,
    );
    refill(&cluster).await;
    let proxy = impact_proxy(&cluster).await;
    let got = run_scenario(&proxy.endpoint()).await;
    show("impact_multi", "direct", &direct);
    show("impact_multi", "proxy", &got);
    for (i, (d, p)) in direct.iter().zip(got.iter()).enumerate() {
        assert_eq!(
            p, d,
            "line {i}: through pgwarden (left) differs from direct"
        );
    }
    assert_eq!(got.len(), direct.len());
    // Each marked statement ran exactly once through pgwarden (the direct run
    // logged each message as one line).
    for i in 1..=18 {
        let marker = format!("/* m{i} */");
        let now = times_logged(&cluster, &marker);
        let before = after_direct[(i - 1) as usize];
        // m6 never runs (after the error), through pgwarden as directly.
        let want = if i == 6 { 0 } else { 1 };
        assert_eq!(now - before, want, "{marker} ran {} times", now - before);
    }
    assert_eq!(
        (
            server_count(&cluster, "t").await,
            server_count(&cluster, "u").await
        ),
        direct_counts
    );
    // The measured statements were measured: pgwarden's counts were read.
    assert!(times_logged(&cluster, PROBE_MARKER) > 10);
}

/// The destructive families of the issue, each after a harmless statement and
/// before another one, in one message.
const FAMILIES: &[&str] = &[
    "DELETE FROM t WHERE id > 0",
    "DELETE FROM t WHERE id > -2147483648",
    "UPDATE t SET v = 'gone' WHERE length(v) >= 0",
    "DELETE FROM t WHERE id BETWEEN -1000 AND 1000",
    "DELETE FROM t WHERE v LIKE '%'",
    "DELETE FROM t USING t t2 WHERE t.id = t2.id",
    "UPDATE t SET v = 'gone' FROM t t2 WHERE t.id = t2.id",
    "MERGE INTO t USING t s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "INSERT INTO t SELECT id, 'gone' FROM t ON CONFLICT (id) DO UPDATE SET v = excluded.v",
    "WITH d AS (DELETE FROM t WHERE id > 0 RETURNING *) SELECT count(*) FROM d",
    "DELETE FROM t WHERE id > 0 RETURNING *",
];

async fn unchanged(cluster: &PgCluster, what: &str) {
    assert_eq!(server_count(cluster, "t").await, 20, "{what}");
    assert_eq!(server_count(cluster, "u").await, 20, "{what}");
    assert_eq!(
        server_count_where(cluster, "t", "v = 'gone'").await,
        0,
        "{what}"
    );
    assert_eq!(
        server_count_where(cluster, "u", "v <> 'row ' || id").await,
        0,
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_over_the_limit_is_blocked_and_changes_nothing() {
    let cluster = logged_cluster();
    tables(&cluster).await;
    let proxy = impact_proxy(&cluster).await;
    let ep = proxy.endpoint();
    let c = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    for (n, family) in FAMILIES.iter().enumerate() {
        let sql = format!(
            "UPDATE u SET v = 'first' WHERE id = 1; {family}; DELETE FROM u WHERE id = 2 /* after-{n} */"
        );
        let m = expect_code(c.simple_query(&sql).await, "PW002");
        assert!(m.contains("impact-limit"), "{sql}: {m}");
        unchanged(&cluster, &sql).await;
        let m = expect_code(c.batch_execute(&sql).await, "PW002");
        assert!(m.contains("impact-limit"), "{sql}: {m}");
        unchanged(&cluster, &sql).await;
        // The statements after the refused one never ran.
        assert_eq!(times_logged(&cluster, &format!("after-{n} */")), 0, "{sql}");
        assert!(usable(&c).await, "{sql}: connection unusable");
    }
    // The impact is in the error's detail, with the statement's position.
    let e = c
        .simple_query("SELECT 1; DELETE FROM t WHERE id > 0")
        .await
        .unwrap_err();
    let detail = e
        .as_db_error()
        .and_then(|d| d.detail())
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.contains(
            "statement 2 of 2: would delete 20 of 20 rows of public.t (100 %) \
             (20 rows changed > rows = 5)"
        ),
        "{detail}"
    );
    // Two statements each within the limit but over it together are each judged
    // on their own (as two messages would be): within.
    c.batch_execute("DELETE FROM t WHERE id > 17; DELETE FROM t WHERE id > 14")
        .await
        .unwrap();
    assert_eq!(server_count(&cluster, "t").await, 14);
    su_exec(
        &cluster,
        "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(15, 20) g",
    )
    .await;

    // Inside the client's transaction: refused, the transaction failed as after
    // any error, the client's earlier work undone by its own ROLLBACK. (BEGIN
    // with a write in one message is measured too: tests/it/impact_txn.rs.)
    c.batch_execute("BEGIN; INSERT INTO u VALUES (100, 'mine')")
        .await
        .unwrap();
    expect_code(
        c.simple_query("DELETE FROM u WHERE id = 100; DELETE FROM t WHERE id > 0")
            .await,
        "PW002",
    );
    expect_code(c.simple_query("SELECT 1").await, "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    unchanged(&cluster, "inside a transaction").await;
    // The client's savepoint still works after a refused message.
    c.batch_execute("BEGIN; SAVEPOINT s").await.unwrap();
    c.batch_execute("INSERT INTO u VALUES (101, 'kept')")
        .await
        .unwrap();
    c.batch_execute("SAVEPOINT s2").await.unwrap();
    expect_code(
        c.simple_query("UPDATE u SET v = 'x' WHERE id = 101; UPDATE t SET v = 'gone' WHERE id > 0")
            .await,
        "PW002",
    );
    c.batch_execute("ROLLBACK TO SAVEPOINT s2").await.unwrap();
    let rows = c
        .simple_query("SELECT v FROM u WHERE id = 101")
        .await
        .unwrap();
    assert!(
        rows.iter().any(|m| matches!(m,
            tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("kept"))),
        "{rows:?}"
    );
    c.batch_execute("ROLLBACK TO SAVEPOINT s; COMMIT")
        .await
        .unwrap();
    unchanged(&cluster, "after the savepoints").await;

    // psql -c with several statements.
    let out = ep
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &[
                "-X",
                "-c",
                "UPDATE u SET v = 'psql' WHERE id = 3; DELETE FROM t WHERE v LIKE '%'",
            ],
        )
        .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("impact-limit"), "{}", out.stderr);
    unchanged(&cluster, "psql -c").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_run_one_by_one_keeps_on_unknown() {
    let cluster = PgCluster::start();
    tables(&cluster).await;
    let proxy = impact_proxy(&cluster).await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    for sql in [
        "BEGIN; DELETE FROM t WHERE id > 19; ROLLBACK",
        "DELETE FROM t WHERE id > 19; VACUUM t",
        "SET lock_timeout = '1s'; DELETE FROM t WHERE id > 19",
        "DELETE FROM t WHERE id > 19; COPY t TO STDOUT",
        "PREPARE p AS DELETE FROM t WHERE id > 19; EXECUTE p",
    ] {
        expect_code(c.simple_query(sql).await, "PW002");
        assert_eq!(server_count(&cluster, "t").await, 20, "{sql}");
        assert!(usable(&c).await, "{sql}");
    }
    // psql -c and within the limit: the output is psql's as directly (the last
    // statement's result).
    let cmd = "UPDATE u SET v = 'p' WHERE id = 4; DELETE FROM t WHERE id > 18 RETURNING id";
    let via = proxy
        .endpoint()
        .psql(SCRAM_USER, SCRAM_PASSWORD, APP_DB, &["-X", "-c", cmd])
        .await;
    via.assert_ok("psql -c through pgwarden");
    assert_eq!(server_count(&cluster, "t").await, 18);
    refill(&cluster).await;
    let direct = cluster
        .endpoint()
        .psql(SCRAM_USER, SCRAM_PASSWORD, APP_DB, &["-X", "-c", cmd])
        .await;
    direct.assert_ok("psql -c direct");
    assert_eq!(via.stdout, direct.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_message_shows_the_impact_and_approval_reruns_it_bounded() {
    let cluster = logged_cluster();
    tables(&cluster).await;
    victim_table(&cluster, "held_t", 20, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let admin = proxy.admin_addr().expect("admin listener");

    let sql = "UPDATE u SET v = 'one' WHERE id = 1; DELETE FROM held_t WHERE id > 10 /* rerun-1 */";
    let h = hold(&proxy.endpoint(), SCRAM_USER, SCRAM_PASSWORD, sql).await;
    assert!(h.notice.contains("held-impact"), "{}", h.notice);
    let listed = http::get(admin, &format!("/holds/{}", h.id), Some(ALICE_TOKEN)).await;
    let impact = listed.json()["impact"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        impact.contains("statement 2 of 2: would delete 10 of 20 rows of public.held_t (50 %)"),
        "{listed:?}"
    );
    assert_eq!(server_count(&cluster, "held_t").await, 20);
    assert_eq!(server_count_where(&cluster, "u", "v = 'one'").await, 0);
    let r = approve(admin, h.id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(outcome(h.task).await, Ok(()));
    assert_eq!(server_count(&cluster, "held_t").await, 10);
    assert_eq!(server_count_where(&cluster, "u", "v = 'one'").await, 1);
    // The probe and the approved re-run: rolled back once, kept once.
    assert_eq!(times_logged(&cluster, "rerun-1 */"), 2);

    // Approved, but the data changed meanwhile: rolled back and refused, the
    // statement before it undone too.
    let sql = "UPDATE u SET v = 'two' WHERE id = 2; DELETE FROM held_t WHERE id > 2 /* rerun-2 */";
    let h = hold(&proxy.endpoint(), SCRAM_USER, SCRAM_PASSWORD, sql).await;
    su_exec(
        &cluster,
        "INSERT INTO held_t SELECT g, 'new' FROM generate_series(100, 110) g",
    )
    .await;
    let r = approve(admin, h.id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(outcome(h.task).await, Err("PW008".to_string()));
    assert_eq!(server_count(&cluster, "held_t").await, 21);
    assert_eq!(server_count_where(&cluster, "u", "v = 'two'").await, 0);
    assert!(usable(&h.client).await);
}
