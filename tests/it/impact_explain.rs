//! EXPLAIN ANALYZE of a data-changing statement through the real proxy: it runs the
//! statement, so pgwarden measures it exactly like the statement it explains. With
//! the example policy on a production target every destructive form (simple
//! protocol, EXECUTE of a prepared DELETE, inside a message of several statements,
//! extended protocol) destroys data directly and is held through pgwarden, the
//! table unchanged; within the limits it runs once and the client gets the plan
//! rows it gets directly, byte for byte. Over the limit no plan row reaches the
//! client. Plain EXPLAIN runs nothing and is not held.

use crate::policy_example_impact::{each_destroys_directly_and_is_held, Run, ROWS};
use crate::support;

use std::sync::Arc;

use support::guarded::*;
use support::impact::*;
use support::raw::RawConn;
use support::*;
use tokio_postgres::Client;

async fn simple(c: Arc<Client>, sql: &'static str) -> Result<u64, tokio_postgres::Error> {
    c.batch_execute(sql).await.map(|_| 0)
}

/// (what, setup on the same connection, the attempt).
fn families() -> Vec<(&'static str, &'static str, Run)> {
    vec![
        ("EXPLAIN ANALYZE DELETE", "", |c| {
            Box::pin(simple(c, "EXPLAIN ANALYZE DELETE FROM t WHERE id > 0"))
        }),
        ("EXPLAIN (ANALYZE, BUFFERS) UPDATE", "", |c| {
            Box::pin(simple(
                c,
                "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET v = 'gone' WHERE length(v) >= 0",
            ))
        }),
        ("EXPLAIN (FORMAT JSON, ANALYZE on) DELETE", "", |c| {
            Box::pin(simple(
                c,
                "EXPLAIN (FORMAT JSON, ANALYZE on) DELETE FROM t \
                 WHERE id BETWEEN -2147483648 AND 2147483647",
            ))
        }),
        ("EXPLAIN ANALYZE of a data-modifying CTE", "", |c| {
            Box::pin(simple(
                c,
                "EXPLAIN ANALYZE WITH d AS (DELETE FROM t WHERE id > 0 RETURNING *) \
                 SELECT count(*) FROM d",
            ))
        }),
        ("EXPLAIN ANALYZE MERGE", "", |c| {
            Box::pin(simple(
                c,
                "EXPLAIN ANALYZE MERGE INTO t USING t s ON t.id = s.id WHEN MATCHED THEN DELETE",
            ))
        }),
        (
            "EXPLAIN ANALYZE EXECUTE",
            "PREPARE p(int) AS DELETE FROM t WHERE id > $1",
            |c| Box::pin(simple(c, "EXPLAIN ANALYZE EXECUTE p(-1)")),
        ),
        ("EXPLAIN ANALYZE in a message of several", "", |c| {
            Box::pin(simple(
                c,
                "SELECT 1; EXPLAIN ANALYZE DELETE FROM t USING t t2 WHERE t.id = t2.id",
            ))
        }),
        ("EXPLAIN ANALYZE with a parameter (extended)", "", |c| {
            Box::pin(async move {
                c.query("EXPLAIN ANALYZE DELETE FROM t WHERE v LIKE $1", &[&"%"])
                    .await
                    .map(|r| r.len() as u64)
            })
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_destroys_directly_and_is_held_through_pgwarden() {
    each_destroys_directly_and_is_held(families()).await;
}

/// Plans without timings, so that two runs print the same.
const EA: &str = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)";

fn scenario() -> Vec<String> {
    [
        format!("{EA} DELETE FROM t WHERE id > 95 /* e1 */"),
        "SELECT count(*) FROM t".to_string(),
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) \
         UPDATE t SET v = 'e' WHERE id BETWEEN 10 AND 14 /* e2 */"
            .to_string(),
        "PREPARE p(int) AS DELETE FROM t WHERE id > $1".to_string(),
        format!("{EA} EXECUTE p(93) /* e3 */"),
        // Inside the client's transaction, and failing by itself there.
        "BEGIN".to_string(),
        format!("{EA} DELETE FROM t WHERE id > 90 AND id < 94 /* e4 */"),
        "SELECT count(*) FROM t".to_string(),
        "COMMIT".to_string(),
        "BEGIN".to_string(),
        format!("{EA} DELETE FROM t WHERE 1 / (id - id) > 0 /* e5 */"),
        "SELECT 1".to_string(),
        "ROLLBACK".to_string(),
        // In a message of several statements.
        format!("{EA} DELETE FROM t WHERE id > 89 /* e6 */; SELECT count(*) FROM t"),
        // Plain EXPLAIN runs nothing: allowed, alone and next to a measured write.
        "EXPLAIN (COSTS OFF) DELETE FROM t".to_string(),
        "EXPLAIN (COSTS OFF) DELETE FROM t; DELETE FROM t WHERE id > 88 /* e7 */".to_string(),
        "SELECT count(*) FROM t; SELECT count(*) FROM t WHERE v = 'e'".to_string(),
    ]
    .to_vec()
}

async fn run_scenario(ep: &Endpoint) -> Vec<String> {
    let mut c = RawConn::connect(ep).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    let mut out = Vec::new();
    for sql in scenario() {
        out.extend(exchange(&mut c, &sql).await);
    }
    out
}

async fn refill(cluster: &PgCluster) {
    su_exec(
        cluster,
        "TRUNCATE t;
         INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 100) g;
         ANALYZE t;",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_the_limits_it_runs_once_and_the_client_gets_its_plan() {
    let cluster = PgCluster::builder()
        .setting("log_statement", "'all'")
        .start();
    victim_table(&cluster, "t", ROWS, SCRAM_USER).await;
    su_exec(&cluster, "ANALYZE t").await;
    let direct = run_scenario(&cluster.endpoint()).await;
    let markers: Vec<String> = (1..=7).map(|i| format!("/* e{i} */")).collect();
    let after_direct: Vec<usize> = markers.iter().map(|m| times_logged(&cluster, m)).collect();
    let direct_count = server_count(&cluster, "t").await;
    refill(&cluster).await;
    let probes_before = times_logged(&cluster, support::impact::PROBE_MARKER);
    let proxy = prod_builder(&cluster).start().await;
    let got = run_scenario(&proxy.endpoint()).await;
    show("impact_explain", "direct", &direct);
    show("impact_explain", "proxy", &got);
    for (i, (d, p)) in direct.iter().zip(got.iter()).enumerate() {
        assert_eq!(
            p, d,
            "line {i}: through pgwarden (left) differs from direct"
        );
    }
    assert_eq!(got.len(), direct.len());
    // The plans are there (the statement ran, once).
    assert!(
        got.iter()
            .any(|l| l.contains("Delete on t (actual rows=0 loops=1)")),
        "{got:?}"
    );
    for (marker, before) in markers.iter().zip(after_direct) {
        let ran = times_logged(&cluster, marker) - before;
        assert_eq!(ran, 1, "{marker} ran {ran} times through pgwarden");
    }
    assert_eq!(server_count(&cluster, "t").await, direct_count);
    // They were measured, not let through unmeasured.
    assert!(times_logged(&cluster, support::impact::PROBE_MARKER) - probes_before >= 6);
    proxy.shutdown().await;
}

/// Over 5 rows is blocked.
const BLOCK_POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "impact-limit"
environment = "production"
classes = ["delete.*", "update.*", "merge.delete"]
action = "block"
impact = { rows = 5, on_unknown = "block" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_no_plan_row_reaches_the_client() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", ROWS, SCRAM_USER).await;
    let proxy = prod_builder(&cluster)
        .policy_toml(BLOCK_POLICY)
        .start()
        .await;
    let mut c = RawConn::connect(&proxy.endpoint()).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    let lines = |r: &[String]| r.join("\n");
    for (sql, status) in [
        (format!("{EA} DELETE FROM t WHERE id > 0"), "Z I"),
        (
            "EXPLAIN ANALYZE UPDATE t SET v = 'x' WHERE id > 10".to_string(),
            "Z I",
        ),
        (
            "SELECT 1; EXPLAIN ANALYZE DELETE FROM t WHERE id > 0".to_string(),
            "Z I",
        ),
    ] {
        let r = exchange(&mut c, &sql).await;
        // Only pgwarden's error and the status: no RowDescription, no plan row.
        let error = r
            .iter()
            .position(|l| l.starts_with("E "))
            .unwrap_or_else(|| panic!("{sql}: not refused: {}", lines(&r)));
        assert!(r[error].contains("PW002"), "{}", lines(&r));
        assert!(
            r[error].contains("would "),
            "the impact is in the error: {}",
            lines(&r)
        );
        assert!(
            !r[error..]
                .iter()
                .any(|l| l.starts_with("D ") || l.starts_with("T ")),
            "{sql}: plan rows leaked: {}",
            lines(&r)
        );
        assert_eq!(r.last().map(String::as_str), Some(status), "{}", lines(&r));
        assert_eq!(server_count(&cluster, "t").await, ROWS, "{sql}");
    }
    // Inside the client's transaction: refused, the transaction failed.
    exchange(&mut c, "BEGIN").await;
    let r = exchange(&mut c, "EXPLAIN ANALYZE DELETE FROM t WHERE id > 0").await;
    assert!(r[1].contains("PW002"), "{}", lines(&r));
    assert_eq!(r[2..], ["Z E"], "{}", lines(&r));
    exchange(&mut c, "ROLLBACK").await;
    // Plain EXPLAIN is a read, even of an unbounded DELETE.
    let r = exchange(&mut c, "EXPLAIN DELETE FROM t").await;
    assert!(
        r.iter().any(|l| l.starts_with("C EXPLAIN")),
        "{}",
        lines(&r)
    );
    // The extended protocol: the same.
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    expect_code(
        client
            .query("EXPLAIN ANALYZE DELETE FROM t WHERE id > $1", &[&-1i32])
            .await,
        "PW002",
    );
    let rows = client
        .query("EXPLAIN ANALYZE DELETE FROM t WHERE id > $1", &[&98i32])
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert_eq!(server_count(&cluster, "t").await, 98);
    assert!(usable(&client).await);
    proxy.shutdown().await;
}
