//! The impact probe through the real proxy: data-changing statements that the text
//! cannot bound are run inside pgwarden's savepoint (or transaction), measured, and
//! kept only within the rule's limits. Over the limit the table is unchanged on the
//! server and nothing of the statement (rows, tag) reaches the client; within it the
//! statement ran exactly once (the server's log says so) and the client sees what it
//! would see directly, transaction state included.

use crate::support;

use std::time::Duration;

use support::guarded::*;
use support::http;
use support::impact::*;
use support::*;
use tokio_postgres::SimpleQueryMessage;

fn rows_of(msgs: &[SimpleQueryMessage]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect()
}

async fn client_value(c: &tokio_postgres::Client, sql: &str) -> String {
    rows_of(&c.simple_query(sql).await.unwrap())
        .pop()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_over_the_limit_is_blocked_and_changes_nothing() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 20, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    let families = [
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
    for sql in families {
        let m = expect_code(c.simple_query(sql).await, "PW002");
        assert!(m.contains("impact-limit"), "{sql}: {m}");
        assert_eq!(server_count(&cluster, "t").await, 20, "{sql}");
        assert_eq!(
            server_count_where(&cluster, "t", "v = 'gone'").await,
            0,
            "{sql}"
        );
        assert!(usable(&c).await, "{sql}: connection unusable");
    }
    // The measured impact is in the client's error detail.
    let e = c
        .simple_query("DELETE FROM t WHERE id > 0")
        .await
        .unwrap_err();
    let detail = e
        .as_db_error()
        .and_then(|d| d.detail())
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.contains(
            "would delete 20 of 20 rows of public.t (100 %) (20 rows changed > rows = 5)"
        ),
        "{detail}"
    );

    // SQL PREPARE / EXECUTE with a parameter that matches everything.
    c.batch_execute("PREPARE p(int) AS DELETE FROM t WHERE id > $1")
        .await
        .unwrap();
    expect_code(c.simple_query("EXECUTE p(-1)").await, "PW002");
    assert_eq!(server_count(&cluster, "t").await, 20);
    // The same prepared statement within the limit runs.
    c.batch_execute("EXECUTE p(18)").await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 18);

    // Extended protocol: measured with the bound value (tests/it/impact_extended.rs).
    expect_code(
        c.execute("DELETE FROM t WHERE id > $1", &[&-1i32]).await,
        "PW002",
    );
    expect_code(
        c.execute("DELETE FROM t WHERE v LIKE $1", &[&"%"]).await,
        "PW002",
    );
    assert_eq!(server_count(&cluster, "t").await, 18);

    // Multi-statement messages: not measured, on_unknown decides the message.
    expect_code(
        c.simple_query("SELECT 1; DELETE FROM t WHERE id > 0").await,
        "PW002",
    );
    assert_eq!(server_count(&cluster, "t").await, 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_transactions_the_client_state_is_as_direct() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 20, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;

    // Over the limit in a transaction: refused, the transaction aborted as for any
    // error, and the client's earlier work undone by its own ROLLBACK.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("INSERT INTO t VALUES (100, 'mine')")
        .await
        .unwrap();
    expect_code(c.simple_query("DELETE FROM t WHERE id > 0").await, "PW002");
    expect_code(c.simple_query("SELECT 1").await, "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 20);

    // The client's own savepoint, and a client savepoint named like pgwarden's.
    c.batch_execute("BEGIN; SAVEPOINT pgwarden_probe_1")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO t VALUES (101, 'kept')")
        .await
        .unwrap();
    c.batch_execute("SAVEPOINT s").await.unwrap();
    expect_code(c.simple_query("DELETE FROM t WHERE id > 0").await, "PW002");
    c.batch_execute("ROLLBACK TO SAVEPOINT s").await.unwrap();
    assert_eq!(client_value(&c, "SELECT count(*) FROM t").await, "21");
    c.batch_execute("ROLLBACK TO SAVEPOINT pgwarden_probe_1")
        .await
        .unwrap();
    assert_eq!(client_value(&c, "SELECT count(*) FROM t").await, "20");
    c.batch_execute("COMMIT").await.unwrap();

    // Within the limit in a transaction: it runs, the transaction goes on, and the
    // client's own timeouts are what they were.
    c.batch_execute("SET statement_timeout = '42s'")
        .await
        .unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    let n = c.execute("SELECT 1", &[]).await.unwrap();
    assert_eq!(n, 1);
    let out = c
        .simple_query("DELETE FROM t WHERE id > 18 RETURNING id")
        .await
        .unwrap();
    assert_eq!(rows_of(&out), vec!["19", "20"]);
    assert_eq!(client_value(&c, "SHOW statement_timeout").await, "42s");
    assert_eq!(client_value(&c, "SELECT count(*) FROM t").await, "18");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 20);

    // A probed statement that fails by itself: the server's error; inside a
    // transaction the transaction is failed, outside it the session is idle.
    c.batch_execute("BEGIN").await.unwrap();
    expect_code(
        c.simple_query("DELETE FROM t WHERE id > 1 / 0").await,
        "22012",
    );
    expect_code(c.simple_query("SELECT 1").await, "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    expect_code(
        c.simple_query("DELETE FROM t WHERE id > 1 / 0").await,
        "22012",
    );
    assert_eq!(client_value(&c, "SELECT 1").await, "1");
    assert_eq!(client_value(&c, "SHOW statement_timeout").await, "42s");
    assert_eq!(server_count(&cluster, "t").await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_the_limit_it_runs_once_and_cascades_and_triggers_count() {
    let cluster = logged_cluster();
    victim_table(&cluster, "t", 20, SCRAM_USER).await;
    su_exec(
        &cluster,
        &format!(
            "CREATE TABLE parent (id int PRIMARY KEY);
             CREATE TABLE child (id serial PRIMARY KEY,
                 parent int REFERENCES parent ON DELETE CASCADE);
             INSERT INTO parent SELECT g FROM generate_series(1, 3) g;
             INSERT INTO child (parent) SELECT 1 + g % 3 FROM generate_series(1, 30) g;
             CREATE TABLE tr (id int PRIMARY KEY, v text);
             CREATE TABLE tr_log (id int);
             INSERT INTO tr SELECT g, 'x' FROM generate_series(1, 100) g;
             CREATE FUNCTION tr_note() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO tr_log VALUES (NEW.id); RETURN NEW; END $$;
             CREATE TRIGGER tr_note AFTER UPDATE ON tr FOR EACH ROW EXECUTE FUNCTION tr_note();
             GRANT ALL ON parent, child, tr, tr_log TO {SCRAM_USER};"
        ),
    )
    .await;
    let proxy = impact_proxy(&cluster).await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;

    // Two rows: kept, the RETURNING rows and the tag reach the client, and the
    // server ran the statement exactly once.
    let out = c
        .simple_query("DELETE FROM t WHERE id > 18 /* once-1 */ RETURNING id")
        .await
        .unwrap();
    assert_eq!(rows_of(&out), vec!["19", "20"]);
    assert!(
        out.iter()
            .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(2))),
        "{out:?}"
    );
    assert_eq!(server_count(&cluster, "t").await, 18);
    // Outside a transaction it is committed: the session is idle again.
    c.batch_execute("BEGIN; ROLLBACK").await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 18);
    eventually(
        "the statement in the server log",
        Duration::from_secs(5),
        || async { times_logged(&cluster, "once-1") == 1 },
    )
    .await;

    // One parent row, ten child rows through ON DELETE CASCADE: 11 rows > 5.
    let e = c
        .simple_query("DELETE FROM parent WHERE id = 1")
        .await
        .unwrap_err();
    let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or_default();
    assert!(detail.contains("public.child"), "{detail}");
    assert!(detail.contains("cascade or trigger"), "{detail}");
    assert_eq!(server_count(&cluster, "parent").await, 3);
    assert_eq!(server_count(&cluster, "child").await, 30);

    // Three updated rows write three log rows through a trigger: 6 > 5.
    expect_code(
        c.simple_query("UPDATE tr SET v = 'y' WHERE id <= 3").await,
        "PW002",
    );
    assert_eq!(server_count(&cluster, "tr_log").await, 0);
    assert_eq!(server_count_where(&cluster, "tr", "v = 'y'").await, 0);
    // Two rows and their two log rows: 4, within.
    c.batch_execute("UPDATE tr SET v = 'y' WHERE id <= 2 /* once-2 */")
        .await
        .unwrap();
    assert_eq!(server_count(&cluster, "tr_log").await, 2);
    assert_eq!(server_count_where(&cluster, "tr", "v = 'y'").await, 2);
    eventually(
        "the update in the server log",
        Duration::from_secs(5),
        || async { times_logged(&cluster, "once-2") == 1 },
    )
    .await;

    // Bounded by the primary key (the session read the catalog for the DELETE on
    // `parent` above): no probe. After DDL through the session, probed again.
    let probes = || times_logged(&cluster, PROBE_MARKER);
    let before = probes();
    c.batch_execute("UPDATE t SET v = 'keyed' WHERE id = 3")
        .await
        .unwrap();
    c.batch_execute("DELETE FROM t WHERE id = 4 /* keyed-2 */")
        .await
        .unwrap();
    eventually(
        "the keyed delete in the server log",
        Duration::from_secs(5),
        || async { times_logged(&cluster, "keyed-2") == 1 },
    )
    .await;
    assert_eq!(probes(), before, "a key-bounded statement was probed");
    assert_eq!(server_count_where(&cluster, "t", "v = 'keyed'").await, 1);
    assert_eq!(server_count(&cluster, "t").await, 17);
    c.batch_execute("ALTER TABLE t DROP CONSTRAINT t_pkey")
        .await
        .unwrap();
    c.batch_execute("DELETE FROM t WHERE id = 5 /* unkeyed */")
        .await
        .unwrap();
    eventually(
        "the unkeyed delete probed",
        Duration::from_secs(5),
        || async { times_logged(&cluster, "unkeyed") == 1 && probes() > before },
    )
    .await;
    assert_eq!(server_count(&cluster, "t").await, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_wait_is_impact_unknown() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 20, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    let locker = cluster.superuser_client().await;
    locker
        .batch_execute("BEGIN; SELECT * FROM t WHERE id = 20 FOR UPDATE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let m = expect_code(c.simple_query("DELETE FROM t WHERE id > 18").await, "PW002");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited {:?}",
        started.elapsed()
    );
    let e = c
        .simple_query("DELETE FROM t WHERE id > 18")
        .await
        .unwrap_err();
    let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or_default();
    assert!(detail.contains("lock_timeout"), "{m} / {detail}");
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 20);
    c.batch_execute("DELETE FROM t WHERE id > 18")
        .await
        .unwrap();
    assert_eq!(server_count(&cluster, "t").await, 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impact_hold_shows_the_impact_and_approval_reruns_it_bounded() {
    let cluster = logged_cluster();
    victim_table(&cluster, "held_t", 20, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let admin = proxy.admin_addr().expect("admin listener");

    // Held with its measured impact; nothing changed while it waits.
    let h = hold(
        &proxy.endpoint(),
        SCRAM_USER,
        SCRAM_PASSWORD,
        "DELETE FROM held_t WHERE id > 10 /* rerun-1 */",
    )
    .await;
    assert!(h.notice.contains("held-impact"), "{}", h.notice);
    let listed = http::get(admin, &format!("/holds/{}", h.id), Some(ALICE_TOKEN)).await;
    let impact = listed.json()["impact"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        impact.contains("would delete 10 of 20 rows of public.held_t (50 %)"),
        "{listed:?}"
    );
    assert_eq!(server_count(&cluster, "held_t").await, 20);
    let r = approve(admin, h.id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(outcome(h.task).await, Ok(()));
    assert_eq!(server_count(&cluster, "held_t").await, 10);

    // Approved, but the data changed meanwhile: the re-run would delete more than
    // the approver saw, so it is rolled back and refused.
    let h = hold(
        &proxy.endpoint(),
        SCRAM_USER,
        SCRAM_PASSWORD,
        "DELETE FROM held_t WHERE id > 2 /* rerun-2 */",
    )
    .await;
    su_exec(
        &cluster,
        "INSERT INTO held_t SELECT g, 'new' FROM generate_series(100, 110) g",
    )
    .await;
    let r = approve(admin, h.id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(outcome(h.task).await, Err("PW008".to_string()));
    assert_eq!(server_count(&cluster, "held_t").await, 21);
    assert!(usable(&h.client).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_the_measured_impact() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 20, SCRAM_USER).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let proxy = prod_builder(&cluster)
        .policy_toml(POLICY)
        .extra_toml(&support::audit_file::audit_toml(&audit, "all"))
        .start()
        .await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    expect_code(
        c.simple_query("DELETE FROM t WHERE id > 0 /* audit-over */")
            .await,
        "PW002",
    );
    c.batch_execute("DELETE FROM t WHERE id > 18 /* audit-within */")
        .await
        .unwrap();
    let impact_of = |recs: &[serde_json::Value], needle: &str| -> Option<(String, String)> {
        recs.iter()
            .filter(|e| e["event"] == "statement")
            .find(|e| e["sql"].as_str().unwrap_or("").contains(needle))
            .map(|e| {
                (
                    e["decision"].as_str().unwrap_or("").to_string(),
                    e["impact"].as_str().unwrap_or("").to_string(),
                )
            })
    };
    let recs = support::audit_file::wait_for(&audit, "both statements", |r| {
        impact_of(r, "audit-over").is_some() && impact_of(r, "audit-within").is_some()
    })
    .await;
    let (decision, impact) = impact_of(&recs, "audit-over").unwrap();
    assert_eq!(decision, "block");
    assert!(
        impact.starts_with("would delete 20 of 20 rows of public.t (100 %)"),
        "{impact}"
    );
    let (decision, impact) = impact_of(&recs, "audit-within").unwrap();
    assert_eq!(decision, "allow");
    assert_eq!(impact, "would delete 2 of 20 rows of public.t (10 %)");
    drop(c);
    drop(proxy);
    let (ok, out) = support::audit_file::verify(&[&audit]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_probed_statement_is_cancelled_as_directly() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 20, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let c = std::sync::Arc::new(
        proxy
            .endpoint()
            .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
            .await,
    );
    let locker = cluster.superuser_client().await;
    locker
        .batch_execute("BEGIN; SELECT * FROM t WHERE id = 20 FOR UPDATE")
        .await
        .unwrap();
    let c2 = std::sync::Arc::clone(&c);
    let task = tokio::spawn(async move { c2.simple_query("DELETE FROM t WHERE id > 18").await });
    // Waiting for the lock, well before the probe's lock_timeout (500 ms).
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.cancel_token()
        .cancel_query(tokio_postgres::NoTls)
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("cancelled statement did not end")
        .expect("task panicked");
    expect_code(r, "57014");
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 20);
    assert!(usable(&c).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_bound_statement_inside_a_transaction_is_not_probed() {
    let cluster = logged_cluster();
    victim_table(&cluster, "t", 20, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    let probes = || times_logged(&cluster, PROBE_MARKER);

    // The session's first key-shaped statement comes inside BEGIN: the catalog is
    // read there (under pgwarden's savepoint) and no probe runs.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("UPDATE t SET v = 'keyed' WHERE id = 3 /* keyed-tx-1 */")
        .await
        .unwrap();
    c.batch_execute("DELETE FROM t WHERE id = 4 /* keyed-tx-2 */")
        .await
        .unwrap();
    // The client's transaction is as direct: its earlier work is there, it is still
    // a working transaction, and its own ROLLBACK undoes everything.
    assert_eq!(
        client_value(&c, "SELECT v FROM t WHERE id = 3").await,
        "keyed"
    );
    assert_eq!(client_value(&c, "SELECT count(*) FROM t").await, "19");
    c.batch_execute("ROLLBACK").await.unwrap();
    eventually(
        "the keyed statements in the server log",
        Duration::from_secs(5),
        || async { times_logged(&cluster, "keyed-tx-2") == 1 },
    )
    .await;
    assert_eq!(probes(), 0, "a key-bound statement inside BEGIN was probed");
    assert_eq!(times_logged(&cluster, "keyed-tx-1"), 1);
    assert_eq!(server_count(&cluster, "t").await, 20);
    assert_eq!(server_count_where(&cluster, "t", "v = 'keyed'").await, 0);

    // Committed, the same statements stand, each run once.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("UPDATE t SET v = 'keyed' WHERE id = 5 /* keyed-tx-3 */")
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    assert_eq!(server_count_where(&cluster, "t", "v = 'keyed'").await, 1);
    assert_eq!(probes(), 0);

    // Over the limit inside a transaction: still probed and refused, the
    // transaction failed exactly as by an error.
    c.batch_execute("BEGIN").await.unwrap();
    expect_code(c.simple_query("DELETE FROM t WHERE id > 0").await, "PW002");
    assert!(probes() > 0);
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_catalog_read_inside_a_transaction_leaves_it_as_it_was() {
    let cluster = logged_cluster();
    victim_table(&cluster, "t", 20, SCRAM_USER).await;
    // The key query cannot read pg_index as this user: the catalog read fails.
    su_exec(&cluster, "REVOKE SELECT ON pg_catalog.pg_index FROM PUBLIC").await;
    let proxy = impact_proxy(&cluster).await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("UPDATE t SET v = 'mine' WHERE id = 1")
        .await
        .unwrap();
    // Key-shaped: the catalog read fails under pgwarden's savepoint, which is
    // rolled back; the statement is then probed (one row, within the limit).
    c.batch_execute("UPDATE t SET v = 'keyed' WHERE id = 3 /* failed-catalog */")
        .await
        .unwrap();
    eventually(
        "the failed catalog read in the server log",
        Duration::from_secs(5),
        || async {
            cluster
                .log()
                .contains("permission denied for table pg_index")
        },
    )
    .await;
    assert!(times_logged(&cluster, PROBE_MARKER) > 0);
    // The client's transaction works and holds both updates.
    assert_eq!(
        client_value(&c, "SELECT v FROM t WHERE id = 1").await,
        "mine"
    );
    assert_eq!(
        client_value(&c, "SELECT v FROM t WHERE id = 3").await,
        "keyed"
    );
    c.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        server_count_where(&cluster, "t", "v IN ('mine', 'keyed')").await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_sets_the_probes_own_timeouts() {
    let cluster = logged_cluster();
    victim_table(&cluster, "t", 20, SCRAM_USER).await;
    let policy = POLICY.replace(
        r#"impact = { rows = 5, share = "50%", share_min_rows = 3, on_unknown = "block" }"#,
        r#"impact = { rows = 5, share = "50%", share_min_rows = 3, on_unknown = "block", statement_timeout = "3s", lock_timeout = "150ms" }"#,
    );
    assert_ne!(policy, POLICY, "the test's policy did not change");
    let proxy = prod_builder(&cluster).policy_toml(&policy).start().await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    let locker = cluster.superuser_client().await;
    locker
        .batch_execute("BEGIN; SELECT * FROM t WHERE id = 20 FOR UPDATE")
        .await
        .unwrap();
    // The probe waits on the lock for its own 150 ms, not the default 500 ms: the
    // impact is unknown and the rule's on_unknown blocks it.
    let e = c
        .simple_query("DELETE FROM t WHERE id > 18")
        .await
        .unwrap_err();
    let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or_default();
    assert!(detail.contains("lock_timeout"), "{e:?}");
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 20);
    eventually(
        "the probe's timeouts in the server log",
        Duration::from_secs(5),
        || async {
            times_logged(&cluster, "SET LOCAL statement_timeout = 3000") >= 1
                && times_logged(&cluster, "SET LOCAL lock_timeout = 150") >= 1
        },
    )
    .await;
    assert_eq!(times_logged(&cluster, "SET LOCAL lock_timeout = 500"), 0);
}
