//! Upserts and MERGE … UPDATE under the example policy, through the real proxy:
//! `INSERT … ON CONFLICT DO UPDATE` (class `insert.upsert`) and `MERGE … WHEN
//! MATCHED THEN UPDATE` (`merge.update`) are measured like DELETE/UPDATE. One that
//! overwrites every row is rolled back and held for an approver, the table unchanged
//! on the server; a one-row upsert runs exactly once (the server's log says so).

use crate::support;

use std::time::Duration;

use support::guarded::*;
use support::*;

const ROWS: i64 = 100;

/// Rows of `t` still as `victim_table` made them.
async fn intact(cluster: &PgCluster) -> i64 {
    server_count_where(cluster, "t", "v = 'row ' || id").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upsert_that_overwrites_every_row_is_held() {
    let cluster = PgCluster::start();
    let proxy = prod_builder(&cluster).start().await;
    for sql in [
        "INSERT INTO t SELECT id, 'gone' FROM t ON CONFLICT (id) DO UPDATE SET v = excluded.v",
        "INSERT INTO t SELECT id FROM t ON CONFLICT (id) DO UPDATE SET v = NULL RETURNING *",
        "MERGE INTO t USING t s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 'gone'",
        "MERGE INTO t USING (SELECT 1) s ON true WHEN MATCHED THEN UPDATE SET v = NULL",
    ] {
        // Directly it overwrites every row.
        victim_table(&cluster, "t", ROWS, SCRAM_USER).await;
        let direct = cluster
            .endpoint()
            .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
            .await;
        direct.batch_execute(sql).await.unwrap();
        assert_eq!(intact(&cluster).await, 0, "{sql}: directly");

        victim_table(&cluster, "t", ROWS, SCRAM_USER).await;
        let h = hold(&proxy.endpoint(), SCRAM_USER, SCRAM_PASSWORD, sql).await;
        let text = h.notice.clone();
        assert!(
            text.contains("large-writes-need-a-second-person"),
            "{sql}: {text}"
        );
        assert_eq!(intact(&cluster).await, ROWS, "{sql}: changed while held");
        h.task.abort();
        drop(h.client);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            intact(&cluster).await,
            ROWS,
            "{sql}: changed after the hold"
        );
        assert_eq!(server_count(&cluster, "t").await, ROWS, "{sql}");
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_row_upsert_runs_once() {
    let cluster = PgCluster::builder()
        .setting("log_statement", "'all'")
        .start();
    victim_table(&cluster, "t", ROWS, SCRAM_USER).await;
    let proxy = prod_builder(&cluster).start().await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    // Simple protocol: an existing row, and a new one.
    c.batch_execute(
        "INSERT INTO t VALUES (5, 'five') ON CONFLICT (id) DO UPDATE SET v = excluded.v /* upsert-1 */",
    )
    .await
    .unwrap();
    c.batch_execute(
        "INSERT INTO t VALUES (500, 'new') ON CONFLICT (id) DO UPDATE SET v = excluded.v /* upsert-2 */",
    )
    .await
    .unwrap();
    // Extended protocol, with parameters, as drivers send it.
    let n = c
        .execute(
            "INSERT INTO t VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = excluded.v /* upsert-3 */",
            &[&6i32, &"six"],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    // MERGE of one row.
    c.batch_execute(
        "MERGE INTO t USING (SELECT 7 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 'seven' /* merge-1 */",
    )
    .await
    .unwrap();
    assert_eq!(server_count(&cluster, "t").await, ROWS + 1);
    for (id, v) in [(5, "five"), (500, "new"), (6, "six"), (7, "seven")] {
        assert_eq!(
            server_count_where(&cluster, "t", &format!("id = {id} AND v = '{v}'")).await,
            1,
            "row {id}"
        );
    }
    // 5, 6 and 7 overwritten, 500 new.
    assert_eq!(intact(&cluster).await, ROWS - 3);
    for marker in ["upsert-1", "upsert-2", "upsert-3", "merge-1"] {
        let ran = cluster
            .log()
            .lines()
            .filter(|l| (l.contains("statement:") || l.contains("execute ")) && l.contains(marker))
            .count();
        assert_eq!(ran, 1, "{marker} ran {ran} times");
    }
    proxy.shutdown().await;
}
