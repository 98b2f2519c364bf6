//! The example policy's measured-writes rule through the real proxy: every family of
//! issue 11's first paragraph (filters that match every row, joins, MERGE with
//! itself, SQL PREPARE/EXECUTE, extended-protocol Bind) destroys data when sent
//! directly, and through pgwarden with the built-in policy it is measured, rolled
//! back and held for an approver, the table unchanged on the server. Routine writes
//! within the limits run once.

use crate::support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use support::guarded::*;
use support::*;
use tokio_postgres::{AsyncMessage, Client};

pub(crate) const ROWS: i64 = 100;

pub(crate) type Run =
    fn(Arc<Client>) -> Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send>>;

/// (what, setup on the same connection, the attempt).
fn families() -> Vec<(&'static str, &'static str, Run)> {
    vec![
        ("id > 0", "", |c| {
            Box::pin(async move {
                c.batch_execute("DELETE FROM t WHERE id > 0")
                    .await
                    .map(|_| 0)
            })
        }),
        ("id > -2147483648", "", |c| {
            Box::pin(async move {
                c.batch_execute("DELETE FROM t WHERE id > -2147483648")
                    .await
                    .map(|_| 0)
            })
        }),
        ("length(v) >= 0", "", |c| {
            Box::pin(async move {
                c.batch_execute("UPDATE t SET v = 'gone' WHERE length(v) >= 0")
                    .await
                    .map(|_| 0)
            })
        }),
        ("full-range BETWEEN", "", |c| {
            Box::pin(async move {
                c.batch_execute("DELETE FROM t WHERE id BETWEEN -2147483648 AND 2147483647")
                    .await
                    .map(|_| 0)
            })
        }),
        ("LIKE '%' in a parameter", "", |c| {
            Box::pin(async move { c.execute("DELETE FROM t WHERE v LIKE $1", &[&"%"]).await })
        }),
        ("DELETE … USING", "", |c| {
            Box::pin(async move {
                c.batch_execute("DELETE FROM t USING t t2 WHERE t.id = t2.id")
                    .await
                    .map(|_| 0)
            })
        }),
        ("UPDATE … FROM", "", |c| {
            Box::pin(async move {
                c.batch_execute("UPDATE t SET v = 'gone' FROM t t2 WHERE t.id = t2.id")
                    .await
                    .map(|_| 0)
            })
        }),
        ("MERGE with itself", "", |c| {
            Box::pin(async move {
                c.batch_execute("MERGE INTO t USING t s ON t.id = s.id WHEN MATCHED THEN DELETE")
                    .await
                    .map(|_| 0)
            })
        }),
        (
            "PREPARE / EXECUTE(-1)",
            "PREPARE p(int) AS DELETE FROM t WHERE id > $1",
            |c| Box::pin(async move { c.batch_execute("EXECUTE p(-1)").await.map(|_| 0) }),
        ),
        ("extended Bind", "", |c| {
            Box::pin(async move { c.execute("DELETE FROM t WHERE id > $1", &[&-1i32]).await })
        }),
        ("data-modifying CTE", "", |c| {
            Box::pin(async move {
                c.batch_execute(
                    "WITH d AS (DELETE FROM t WHERE id > 0 RETURNING *) SELECT count(*) FROM d",
                )
                .await
                .map(|_| 0)
            })
        }),
    ]
}

/// `t`'s rows and the rows still as created, counted on the server.
pub(crate) async fn state(cluster: &PgCluster) -> (i64, i64) {
    (
        server_count(cluster, "t").await,
        server_count_where(cluster, "t", "v = 'row ' || id").await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_destroys_directly_and_is_held_through_pgwarden() {
    each_destroys_directly_and_is_held(families()).await;
}

/// For each of `families`: directly it destroys data; through pgwarden with the
/// built-in policy on a production target it is held for an approver with the
/// measured impact ("100 of 100 rows of public.t (100 %)"), and `t` is unchanged
/// while held and after the client goes away.
pub(crate) async fn each_destroys_directly_and_is_held(
    families: Vec<(&'static str, &'static str, Run)>,
) {
    let cluster = PgCluster::start();
    let proxy = prod_builder(&cluster).start().await;
    let ep = proxy.endpoint();
    let whole = (ROWS, ROWS);
    for (what, setup, run) in families {
        // Directly, as the same user: the attempt destroys data.
        victim_table(&cluster, "t", ROWS, SCRAM_USER).await;
        let direct = cluster
            .endpoint()
            .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
            .await;
        if !setup.is_empty() {
            direct.batch_execute(setup).await.unwrap();
        }
        run(Arc::new(direct))
            .await
            .unwrap_or_else(|e| panic!("{what} directly: {e:?}"));
        assert_ne!(
            state(&cluster).await,
            whole,
            "{what}: not destructive directly"
        );

        // Through pgwarden with the built-in policy: held for an approver with the
        // measured impact, and nothing changed.
        victim_table(&cluster, "t", ROWS, SCRAM_USER).await;
        let (client, mut rx) = ep
            .connect_with_messages(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
            .await
            .unwrap();
        let client = Arc::new(client);
        if !setup.is_empty() {
            client.batch_execute(setup).await.unwrap();
        }
        let task = tokio::spawn(run(Arc::clone(&client)));
        let notice = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(m) = rx.recv().await {
                if let AsyncMessage::Notice(n) = m {
                    return Some(n);
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: no hold notice within 15 s"))
        .unwrap_or_else(|| panic!("{what}: connection ended before a hold notice"));
        assert_eq!(notice.code().code(), "PW001", "{what}: {notice:?}");
        let text = format!(
            "{} {}",
            notice.message(),
            notice.detail().unwrap_or_default()
        );
        assert!(
            text.contains("large-writes-need-a-second-person"),
            "{what}: {text}"
        );
        assert!(
            text.contains(&format!("{ROWS} of {ROWS} rows of public.t (100 %)")),
            "{what}: the measured impact is not in the notice: {text}"
        );
        assert!(
            !task.is_finished(),
            "{what}: the held statement did not wait"
        );
        assert_eq!(state(&cluster).await, whole, "{what}: changed while held");
        // The client goes away: a held statement never runs.
        task.abort();
        drop(client);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            state(&cluster).await,
            whole,
            "{what}: changed after the hold"
        );
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routine_writes_within_the_limits_run_once() {
    let cluster = PgCluster::builder()
        .setting("log_statement", "'all'")
        .start();
    victim_table(&cluster, "t", ROWS, SCRAM_USER).await;
    let proxy = prod_builder(&cluster).start().await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    // 5 of 100 rows (5 %), by a range: measured and kept.
    let n = c
        .execute("DELETE FROM t WHERE id > 95 /* within-1 */", &[])
        .await
        .unwrap();
    assert_eq!(n, 5);
    // By the primary key, with a parameter and as text.
    assert_eq!(
        c.execute("UPDATE t SET v = 'one' WHERE id = $1", &[&7i32])
            .await
            .unwrap(),
        1
    );
    c.batch_execute("DELETE FROM t WHERE id = 8 /* within-2 */")
        .await
        .unwrap();
    // 10 rows of a 100-row table: exactly at the share (10 %), kept.
    c.batch_execute("UPDATE t SET v = 'ten' WHERE id BETWEEN 11 AND 20 /* within-3 */")
        .await
        .unwrap();
    assert_eq!(server_count(&cluster, "t").await, 94);
    assert_eq!(server_count_where(&cluster, "t", "v = 'ten'").await, 10);
    for marker in ["within-1", "within-2", "within-3"] {
        let ran = cluster
            .log()
            .lines()
            .filter(|l| (l.contains("statement:") || l.contains("execute ")) && l.contains(marker))
            .count();
        assert_eq!(ran, 1, "{marker} ran {ran} times");
    }
    proxy.shutdown().await;
}
