//! Deep statements through the real proxy with the example policy: expressions nested
//! as deep as PostgreSQL's parser library serializes (~700 `||`, 1,000 UNION ALL)
//! are judged by what they do, not held as `unparsed`; a hostile 100,000-deep one is
//! held as unparsed (fail closed), nothing runs, and the session and proxy go on.

use crate::support::guarded::*;
use crate::support::*;

fn chain(head: &str, n: usize) -> String {
    format!("{head}{}", " || 'a'".repeat(n))
}

async fn one(client: &tokio_postgres::Client, sql: &str) -> String {
    let rows = client.simple_query(sql).await.expect("runs");
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_statements_are_judged_and_hostile_depth_is_held() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, SCRAM_USER).await;
    let proxy = prod_builder(&cluster).start().await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;

    // Read, and answered by the server.
    let sql = format!("SELECT length({})", chain("'a'", 700));
    assert_eq!(one(&c, &sql).await, "701");
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1{}) s",
        " UNION ALL SELECT 1".repeat(1000)
    );
    assert_eq!(one(&c, &sql).await, "1001");

    // What a deep expression does is seen: a setting that stops the guard reading
    // later statements is blocked (PW002), not held as unreadable text.
    let sql = chain(
        "SELECT set_config('session_replication_role', 'replica', false)",
        700,
    );
    let m = expect_code(c.simple_query(&sql).await, "PW002");
    assert!(m.contains("session.replication_role"), "{m}");

    // Hostile depth: held as unparsed, nothing deleted, the session carries on.
    let sql = format!("DELETE FROM t WHERE v = {}", chain("v", 100_000));
    let m = expect_code(c.simple_query(&sql).await, "PW001");
    assert!(m.contains("unparsed"), "{m}");
    assert!(usable(&c).await);
    let rows = cluster
        .superuser_client()
        .await
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(rows, 5);
    assert_eq!(one(&c, "SELECT 1").await, "1");
}
