//! The impact probe's SQL (`pgwarden::impact::ProbePlan`) run by hand over
//! tokio-postgres against a real cluster, the way the session core will send it:
//! the measured rows are exact for plain DELETE/UPDATE, cascades, SET NULL,
//! triggers, MERGE, ON CONFLICT DO UPDATE and data-modifying CTEs, inside and outside
//! a client transaction and inside a client savepoint (even one named like
//! pgwarden's); after the undo every table is as before; the probe's timeouts turn
//! into "unknown" and the client's own timeouts are restored after a keep.

use crate::support;

use std::time::Duration;

use pgwarden::impact::{
    Impact, Measured, ProbePlan, ProbeSettings, SavedSettings, Snapshot, Unknown,
};
use support::*;
use tokio_postgres::{Client, SimpleQueryMessage};

const SCHEMA: &str = "
CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, t_id int NOT NULL REFERENCES t ON DELETE CASCADE);
CREATE TABLE notes (id int PRIMARY KEY, t_id int REFERENCES t ON DELETE SET NULL);
CREATE TABLE audit_log (t_id int, old_v int, new_v int);
CREATE FUNCTION log_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit_log VALUES (NEW.id, OLD.v, NEW.v); RETURN NEW; END $$;
CREATE TRIGGER t_audit AFTER UPDATE ON t FOR EACH ROW EXECUTE FUNCTION log_update();
INSERT INTO t SELECT g, g * 10 FROM generate_series(1, 5) g;
INSERT INTO orders SELECT g, g FROM generate_series(1, 5) g;
INSERT INTO notes SELECT g, g FROM generate_series(1, 3) g;
ANALYZE;
";

/// Everything in the fixture's tables, for "unchanged" checks.
const CONTENTS: &str = "SELECT concat_ws(' | ',
  (SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t),
  (SELECT string_agg(id || ':' || t_id, ',' ORDER BY id) FROM orders),
  (SELECT string_agg(id || ':' || coalesce(t_id::text, 'null'), ',' ORDER BY id) FROM notes),
  (SELECT count(*)::text FROM audit_log))";

/// One result set of a simple Query: its rows (text) and its command-tag count.
struct ResultSet {
    rows: Vec<Vec<Option<String>>>,
    tag_rows: u64,
}

fn result_sets(msgs: Vec<SimpleQueryMessage>) -> Vec<ResultSet> {
    let mut out = Vec::new();
    let mut rows = Vec::new();
    for m in msgs {
        match m {
            SimpleQueryMessage::Row(r) => rows.push(
                (0..r.len())
                    .map(|i| r.get(i).map(str::to_string))
                    .collect::<Vec<_>>(),
            ),
            SimpleQueryMessage::CommandComplete(n) => out.push(ResultSet {
                rows: std::mem::take(&mut rows),
                tag_rows: n,
            }),
            _ => {}
        }
    }
    out
}

fn borrowed(rows: &[Vec<Option<String>>]) -> Vec<Vec<Option<&str>>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.as_deref()).collect())
        .collect()
}

/// What a probe left: the measurement and the client's settings read by `open`.
struct Probed {
    measured: Measured,
    saved: Option<SavedSettings>,
}

/// Runs open → statement → measure, as the session core will.
async fn probe(c: &Client, plan: &ProbePlan, sql: &str) -> Probed {
    let open = result_sets(c.simple_query(&plan.open()).await.expect("probe open"));
    assert_eq!(open.len(), 5, "SAVEPOINT/BEGIN, settings, counts, SET, SET");
    let settings = borrowed(&open[1].rows);
    let saved = SavedSettings::from_row(&settings[0]);
    let track_counts = settings[0].get(2).copied().flatten().map(str::to_string);
    let before = Snapshot::from_rows(&borrowed(&open[2].rows)).expect("snapshot");
    let tag_rows = match c.simple_query(sql).await {
        Ok(msgs) => result_sets(msgs).last().map(|r| r.tag_rows),
        Err(e) => {
            let code = e.code().map(|s| s.code().to_string()).unwrap_or_default();
            return Probed {
                measured: Measured::Unknown(Unknown::from_sqlstate(&code)),
                saved,
            };
        }
    };
    let after = result_sets(c.simple_query(&plan.measure()).await.expect("measure"));
    let measured = Measured::from_rows(
        &before,
        &borrowed(&after[0].rows),
        track_counts.as_deref(),
        tag_rows,
    );
    Probed { measured, saved }
}

fn known(m: &Measured) -> &Impact {
    match m {
        Measured::Known(i) => i,
        Measured::Unknown(u) => panic!("impact unknown: {u:?}"),
    }
}

/// (table, inserted, updated, deleted).
type Changed = (String, u64, u64, u64);

/// [`Changed`] for every changed table.
fn counts(i: &Impact) -> Vec<Changed> {
    i.tables
        .iter()
        .map(|t| (t.name.clone(), t.inserted, t.updated, t.deleted))
        .collect()
}

async fn contents(c: &Client) -> String {
    c.query_one(CONTENTS, &[])
        .await
        .expect("contents")
        .get::<_, String>(0)
}

async fn setting(c: &Client, name: &str) -> String {
    c.query_one("SELECT current_setting($1)", &[&name])
        .await
        .expect("current_setting")
        .get(0)
}

fn s(name: &str, i: u64, u: u64, d: u64) -> Changed {
    (name.to_string(), i, u, d)
}

/// The families, with the exact rows each changes in the fixture.
fn cases() -> Vec<(&'static str, &'static str, Vec<Changed>)> {
    vec![
        (
            "delete matching every row, cascade and set null",
            "DELETE FROM t WHERE id > 0",
            vec![s("notes", 0, 3, 0), s("orders", 0, 0, 5), s("t", 0, 0, 5)],
        ),
        (
            "update with a trigger writing another table",
            "UPDATE t SET v = v + 1 WHERE id > 2",
            vec![s("audit_log", 3, 0, 0), s("t", 0, 3, 0)],
        ),
        (
            "merge deleting and inserting",
            "MERGE INTO t USING (VALUES (1), (2), (9)) s(id) ON t.id = s.id \
             WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, 0)",
            vec![s("notes", 0, 2, 0), s("orders", 0, 0, 2), s("t", 1, 0, 2)],
        ),
        (
            "insert on conflict do update",
            "INSERT INTO t (id, v) VALUES (1, 11), (2, 22), (6, 66) \
             ON CONFLICT (id) DO UPDATE SET v = excluded.v",
            vec![s("audit_log", 2, 0, 0), s("t", 1, 2, 0)],
        ),
        (
            "data-modifying CTE",
            "WITH d AS (DELETE FROM orders WHERE id <= 2 RETURNING t_id) \
             UPDATE t SET v = 0 WHERE id IN (SELECT t_id FROM d)",
            vec![
                s("audit_log", 2, 0, 0),
                s("orders", 0, 0, 2),
                s("t", 0, 2, 0),
            ],
        ),
        ("a read changes nothing", "SELECT count(*) FROM t", vec![]),
    ]
}

async fn fixture() -> (PgCluster, Client, Client) {
    let cluster = PgCluster::start();
    let admin = cluster.superuser_client().await;
    admin.batch_execute(SCHEMA).await.expect("schema");
    let session = cluster.superuser_client().await;
    (cluster, admin, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_counts_are_exact_and_undo_leaves_tables_unchanged() {
    let (_cluster, admin, c) = fixture().await;
    let original = contents(&admin).await;
    let mut seq = 0;
    for (name, sql, expected) in cases() {
        for context in ["outside", "transaction", "client savepoint"] {
            seq += 1;
            let in_tx = context != "outside";
            if in_tx {
                // Work of the client's own before the probe: the deltas must not count it.
                c.batch_execute("BEGIN; INSERT INTO audit_log VALUES (0, 0, 0)")
                    .await
                    .unwrap();
            }
            if context == "client savepoint" {
                // Named exactly like pgwarden's savepoint for this probe.
                c.batch_execute(&format!("SAVEPOINT pgwarden_probe_{seq}"))
                    .await
                    .unwrap();
            }
            let plan = ProbePlan::new(seq, in_tx, ProbeSettings::default());
            let p = probe(&c, &plan, sql).await;
            let i = known(&p.measured);
            assert_eq!(counts(i), expected, "{name} ({context}): {sql}");
            if let Some(t) = i.table("public.t") {
                assert_eq!(t.estimate, 5, "{name}: estimate of t");
            }
            c.batch_execute(&plan.undo()).await.expect("undo");
            if context == "client savepoint" {
                // The client's savepoint is still there and still means its own point.
                c.batch_execute(&format!("ROLLBACK TO SAVEPOINT pgwarden_probe_{seq}"))
                    .await
                    .expect("client's savepoint survives the probe");
            }
            if in_tx {
                let row = c
                    .query_one("SELECT count(*) FROM audit_log WHERE t_id = 0", &[])
                    .await
                    .unwrap();
                assert_eq!(
                    row.get::<_, i64>(0),
                    1,
                    "{name} ({context}): client's own row kept"
                );
                c.batch_execute("ROLLBACK").await.unwrap();
            }
            assert_eq!(
                contents(&admin).await,
                original,
                "{name} ({context}): tables changed after the undo"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_lets_the_effect_stand_and_restores_the_client_timeouts() {
    let (_cluster, admin, c) = fixture().await;
    c.batch_execute("SET statement_timeout = '42s'; SET lock_timeout = '7s'")
        .await
        .unwrap();

    // Inside a transaction: kept, the client's timeouts back, committed by the client.
    c.batch_execute("BEGIN").await.unwrap();
    let plan = ProbePlan::new(1, true, ProbeSettings::default());
    let p = probe(&c, &plan, "UPDATE t SET v = 0 WHERE id = 1").await;
    assert_eq!(
        counts(known(&p.measured)),
        vec![s("audit_log", 1, 0, 0), s("t", 0, 1, 0)]
    );
    let saved = p.saved.expect("settings row");
    assert_eq!(
        setting(&c, "statement_timeout").await,
        "5s",
        "probe timeout in force"
    );
    c.batch_execute(&plan.keep(&saved)).await.expect("keep");
    assert_eq!(setting(&c, "statement_timeout").await, "42s");
    assert_eq!(setting(&c, "lock_timeout").await, "7s");
    c.batch_execute("COMMIT").await.unwrap();
    let v: i32 = admin
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 0);

    // Outside: pgwarden's own transaction commits; the session's settings are as before.
    let plan = ProbePlan::new(2, false, ProbeSettings::default());
    let p = probe(&c, &plan, "DELETE FROM t WHERE id = 5").await;
    assert_eq!(
        counts(known(&p.measured)),
        vec![s("orders", 0, 0, 1), s("t", 0, 0, 1)]
    );
    c.batch_execute(&plan.keep(&p.saved.unwrap()))
        .await
        .unwrap();
    assert_eq!(setting(&c, "statement_timeout").await, "42s");
    let n: i64 = admin
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_timeouts_are_unknown_and_undo_still_works() {
    let (_cluster, admin, c) = fixture().await;
    let original = contents(&admin).await;
    let quick = ProbeSettings {
        statement_timeout: Duration::from_millis(200),
        lock_timeout: Duration::from_millis(100),
    };
    for in_tx in [false, true] {
        if in_tx {
            c.batch_execute("BEGIN").await.unwrap();
        }
        // statement_timeout: a statement slower than the probe allows.
        let plan = ProbePlan::new(1, in_tx, quick);
        let p = probe(&c, &plan, "DELETE FROM t WHERE pg_sleep(0.2) IS NOT NULL").await;
        assert_eq!(
            p.measured,
            Measured::Unknown(Unknown::Timeout),
            "in_tx={in_tx}"
        );
        c.batch_execute(&plan.undo())
            .await
            .expect("undo after timeout");

        // lock_timeout: another session holds the table.
        let locker = _cluster.superuser_client().await;
        locker
            .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let plan = ProbePlan::new(2, in_tx, quick);
        let p = probe(&c, &plan, "DELETE FROM t WHERE id > 0").await;
        assert_eq!(
            p.measured,
            Measured::Unknown(Unknown::LockTimeout),
            "in_tx={in_tx}"
        );
        c.batch_execute(&plan.undo())
            .await
            .expect("undo after lock timeout");
        locker.batch_execute("ROLLBACK").await.unwrap();

        if in_tx {
            // The client's transaction is usable, as it was before the probe.
            c.batch_execute("SELECT 1; ROLLBACK").await.unwrap();
        }
        assert_eq!(setting(&c, "statement_timeout").await, "0");
        assert_eq!(contents(&admin).await, original, "in_tx={in_tx}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_off_is_unknown() {
    let (_cluster, _admin, c) = fixture().await;
    c.batch_execute("SET track_counts = off").await.unwrap();
    let plan = ProbePlan::new(1, false, ProbeSettings::default());
    let p = probe(&c, &plan, "DELETE FROM t WHERE id > 0").await;
    assert_eq!(p.measured, Measured::Unknown(Unknown::CountsOff));
    c.batch_execute(&plan.undo()).await.unwrap();
}
