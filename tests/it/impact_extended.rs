//! The impact probe in the extended protocol, through the real proxy with
//! tokio-postgres (parameters bound by the driver) and raw protocol messages: a
//! batch of `[Parse,] Bind, [Describe,] Execute, Sync` is measured as a whole with
//! its parameter values. Over the limit the table is unchanged on the server and
//! nothing of the statement reaches the client; within it the statement ran exactly
//! once (the server's log says so); a key-bound `$1` is not probed; the client's
//! prepared statements, portals and transactions behave as directly. Every other
//! extended-protocol shape gets the rule's `on_unknown`.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use support::guarded::*;
use support::http;
use support::impact::*;
use support::raw::{message, BackendMsg, RawConn};
use support::*;
use tokio_postgres::AsyncMessage;

/// How often the server's log shows an extended-protocol execution (`execute
/// <name>: …`) of a statement containing `marker`.
fn executions_logged(cluster: &PgCluster, marker: &str) -> usize {
    logged_lines(cluster, "execute ", marker)
}

/// How many impact probes the server ran (their counts query).
fn probes_logged(cluster: &PgCluster) -> usize {
    times_logged(cluster, PROBE_MARKER)
}

async fn logged_once(cluster: &PgCluster, marker: &str) {
    eventually(
        &format!("{marker} in the server log"),
        Duration::from_secs(5),
        || async { executions_logged(cluster, marker) >= 1 },
    )
    .await;
    // A moment more for a second execution to show, had there been one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(executions_logged(cluster, marker), 1, "{marker}");
}

fn detail_of(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .and_then(|d| d.detail())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_are_measured_over_blocked_within_run_once() {
    let cluster = logged_cluster();
    victim_table(&cluster, "t", 100, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;

    // $1 = -1 matches every row: measured, rolled back, blocked.
    let e = c
        .execute("DELETE FROM t WHERE id > $1 /* ext-over */", &[&-1i32])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e).as_deref(), Some("PW002"), "{e:?}");
    assert!(
        detail_of(&e).contains("would delete 100 of 100 rows of public.t (100 %)"),
        "{e:?}"
    );
    assert_eq!(server_count(&cluster, "t").await, 100);
    assert!(usable(&c).await);

    // Two of 100 rows: within the limit, kept, run exactly once.
    let n = c
        .execute("DELETE FROM t WHERE id > $1 /* ext-once */", &[&98i32])
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(server_count(&cluster, "t").await, 98);
    logged_once(&cluster, "ext-once").await;

    // RETURNING rows of a rolled-back probe never reach the client; within the
    // limit they do.
    let e = c
        .query("DELETE FROM t WHERE id > $1 RETURNING id", &[&-1i32])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e).as_deref(), Some("PW002"), "{e:?}");
    assert_eq!(server_count(&cluster, "t").await, 98);
    let rows = c
        .query("DELETE FROM t WHERE id > $1 RETURNING id", &[&96i32])
        .await
        .unwrap();
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, vec![97, 98]);
    assert_eq!(server_count(&cluster, "t").await, 96);

    // UPDATE, and LIKE with the pattern in a parameter.
    expect_code(
        c.execute("UPDATE t SET v = 'gone' WHERE v LIKE $1", &[&"%"])
            .await,
        "PW002",
    );
    assert_eq!(server_count_where(&cluster, "t", "v = 'gone'").await, 0);
    let n = c
        .execute("UPDATE t SET v = 'new' WHERE id < $1", &[&3i32])
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(server_count_where(&cluster, "t", "v = 'new'").await, 2);

    // Bound by the primary key for any value of $1: not probed.
    let before = probes_logged(&cluster);
    let n = c
        .execute("DELETE FROM t WHERE id = $1 /* ext-keyed */", &[&1i32])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = c
        .execute(
            "UPDATE t SET v = $2 WHERE id = $1 /* ext-keyed-2 */",
            &[&2i32, &"k"],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    logged_once(&cluster, "ext-keyed-2").await;
    assert_eq!(
        probes_logged(&cluster),
        before,
        "a key-bound statement was probed"
    );
    assert_eq!(server_count(&cluster, "t").await, 95);

    // A statement prepared earlier (its own Parse/Describe/Sync), executed by
    // Bind/Execute/Sync: measured at each execution, still usable after a refusal.
    let st = c
        .prepare("DELETE FROM t WHERE id > $1 /* ext-named */")
        .await
        .unwrap();
    expect_code(c.execute(&st, &[&-1i32]).await, "PW002");
    assert_eq!(server_count(&cluster, "t").await, 95);
    assert_eq!(c.execute(&st, &[&94i32]).await.unwrap(), 2);
    assert_eq!(server_count(&cluster, "t").await, 93);
    expect_code(c.execute(&st, &[&0i32]).await, "PW002");
    assert_eq!(server_count(&cluster, "t").await, 93);
    assert!(usable(&c).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_transactions_the_client_state_is_as_direct() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 100, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let mut c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;

    // Within the limit inside BEGIN: the client sees its work, ROLLBACK undoes it.
    let tx = c.transaction().await.unwrap();
    let st = tx.prepare("DELETE FROM t WHERE id > $1").await.unwrap();
    assert_eq!(tx.execute(&st, &[&98i32]).await.unwrap(), 2);
    let n: i64 = tx
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 98);
    // A client savepoint and its rollback, around a measured statement.
    tx.batch_execute("SAVEPOINT mine").await.unwrap();
    assert_eq!(tx.execute(&st, &[&96i32]).await.unwrap(), 2);
    tx.batch_execute("ROLLBACK TO SAVEPOINT mine")
        .await
        .unwrap();
    let n: i64 = tx
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 98);
    tx.rollback().await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 100);

    // Over the limit inside BEGIN: refused like a server error, so the transaction
    // is failed until ROLLBACK; nothing changed.
    let tx = c.transaction().await.unwrap();
    expect_code(
        tx.execute("DELETE FROM t WHERE id > $1", &[&-1i32]).await,
        "PW002",
    );
    expect_code(tx.query_one("SELECT 1", &[]).await, "25P02");
    tx.rollback().await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 100);

    // Within the limit and committed.
    let tx = c.transaction().await.unwrap();
    assert_eq!(
        tx.execute("DELETE FROM t WHERE id > $1", &[&98i32])
            .await
            .unwrap(),
        2
    );
    tx.commit().await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 98);

    // Portals: a SELECT portal read with a row limit works as directly; a Bind of
    // a data-changing statement without its Execute (here: Bind, Sync, then
    // Execute with a row limit) is not measured: the rule's on_unknown (block).
    let tx = c.transaction().await.unwrap();
    let sel = tx
        .prepare("SELECT id FROM t WHERE id > $1 ORDER BY id")
        .await
        .unwrap();
    let portal = tx.bind(&sel, &[&90i32]).await.unwrap();
    let first = tx.query_portal(&portal, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    let rest = tx.query_portal(&portal, 0).await.unwrap();
    assert_eq!(rest.len(), 5);
    let del = tx.prepare("DELETE FROM t WHERE id > $1").await.unwrap();
    let Err(e) = tx.bind(&del, &[&97i32]).await else {
        panic!("a Bind of a data-changing statement without its Execute was let through");
    };
    assert_eq!(sqlstate(&e).as_deref(), Some("PW002"), "{e:?}");
    assert!(detail_of(&e).contains("impact unknown"), "{e:?}");
    tx.rollback().await.unwrap();
    assert_eq!(server_count(&cluster, "t").await, 98);
    assert!(usable(&c).await);
}

/// A Parse message.
fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut b = name.as_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(sql.as_bytes());
    b.push(0);
    b.extend_from_slice(&0i16.to_be_bytes());
    message(b'P', &b)
}

/// A Bind of `stmt` into `portal` with text parameters.
fn bind(portal: &str, stmt: &str, params: &[&str]) -> Vec<u8> {
    let mut b = portal.as_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(stmt.as_bytes());
    b.push(0);
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(params.len() as i16).to_be_bytes());
    for p in params {
        b.extend_from_slice(&(p.len() as i32).to_be_bytes());
        b.extend_from_slice(p.as_bytes());
    }
    b.extend_from_slice(&0i16.to_be_bytes());
    message(b'B', &b)
}

fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = portal.as_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(&max_rows.to_be_bytes());
    message(b'E', &b)
}

fn sync() -> Vec<u8> {
    message(b'S', &[])
}

fn tags(msgs: &[BackendMsg]) -> String {
    msgs.iter().map(|m| m.tag as char).collect()
}

/// Reads up to ReadyForQuery, errors included.
async fn read_ready(c: &mut RawConn) -> Vec<BackendMsg> {
    let mut got = Vec::new();
    loop {
        let m = c
            .read_message(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no ReadyForQuery: {got:?}"));
        let done = m.tag == b'Z';
        got.push(m);
        if done {
            return got;
        }
    }
}

fn error_code(msgs: &[BackendMsg]) -> Option<String> {
    msgs.iter()
        .find(|m| m.tag == b'E')
        .and_then(|m| m.sqlstate())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_extended_shapes_get_on_unknown() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 100, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let mut c = RawConn::connect(&proxy.endpoint()).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    let del = "DELETE FROM t WHERE id > $1";

    // The measured shape over raw messages, unnamed statement and portal: within.
    let mut b = parse("", del);
    b.extend(bind("", "", &["99"]));
    b.extend(execute("", 0));
    b.extend(sync());
    c.send(&b).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(tags(&got), "12CZ", "{got:?}");
    assert_eq!(server_count(&cluster, "t").await, 99);

    // Two Executes per Sync: not measured, the rule's on_unknown (block) refuses.
    let mut b = parse("s1", del);
    b.extend(bind("p1", "s1", &["98"]));
    b.extend(execute("p1", 0));
    b.extend(bind("p2", "s1", &["97"]));
    b.extend(execute("p2", 0));
    b.extend(sync());
    c.send(&b).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(error_code(&got).as_deref(), Some("PW002"), "{got:?}");
    assert_eq!(server_count(&cluster, "t").await, 99);

    // A row limit (portal suspension): on_unknown.
    let mut b = bind("", "s1", &["98"]);
    b.extend(execute("", 1));
    b.extend(sync());
    c.send(&b).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(error_code(&got).as_deref(), Some("PW002"), "{got:?}");
    assert_eq!(server_count(&cluster, "t").await, 99);

    // Flush-based pipelining (replies asked for before the Sync): on_unknown.
    let mut b = bind("", "s1", &["98"]);
    b.extend(execute("", 0));
    b.extend(message(b'H', &[]));
    c.send(&b).await.unwrap();
    let m = c
        .read_message(Duration::from_secs(10))
        .await
        .expect("a reply to the Flush");
    assert_eq!(m.sqlstate().as_deref(), Some("PW002"), "{m:?}");
    c.send(&sync()).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(tags(&got), "Z", "{got:?}");
    assert_eq!(server_count(&cluster, "t").await, 99);

    // The named statement still works in the measured shape: within, then over.
    let mut b = bind("", "s1", &["98"]);
    b.extend(execute("", 0));
    b.extend(sync());
    c.send(&b).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(tags(&got), "2CZ", "{got:?}");
    assert_eq!(server_count(&cluster, "t").await, 98);
    let mut b = bind("", "s1", &["-1"]);
    b.extend(execute("", 0));
    b.extend(sync());
    c.send(&b).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(error_code(&got).as_deref(), Some("PW002"), "{got:?}");
    assert_eq!(server_count(&cluster, "t").await, 98);

    // A refused batch that named a new statement leaves no statement behind: the
    // same name can be parsed again, as directly.
    let mut b = parse("s2", del);
    b.extend(bind("", "s2", &["-1"]));
    b.extend(execute("", 0));
    b.extend(sync());
    c.send(&b).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(error_code(&got).as_deref(), Some("PW002"), "{got:?}");
    let mut b = parse("s2", "SELECT 1");
    b.extend(bind("", "s2", &[]));
    b.extend(execute("", 0));
    b.extend(sync());
    c.send(&b).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(tags(&got), "12DCZ", "{got:?}");
    assert_eq!(server_count(&cluster, "t").await, 98);
}

/// Sends `sql` with the parameter `value` (extended protocol) from a task, and
/// waits for the hold notice.
async fn hold_extended(ep: &Endpoint, sql: &str, value: i32) -> Held {
    let (client, mut rx) = ep
        .connect_with_messages(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .unwrap_or_else(|e| panic!("connect: {e:?}"));
    let client = Arc::new(client);
    let c = Arc::clone(&client);
    let sql = sql.to_string();
    let task = tokio::spawn(async move { c.execute(&sql, &[&value]).await.map(|_| ()) });
    let notice = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = rx.recv().await {
            if let AsyncMessage::Notice(n) = m {
                return Some(n);
            }
        }
        None
    })
    .await
    .expect("no hold notice within 10 s")
    .expect("connection ended before the hold notice");
    assert_eq!(notice.code().code(), "PW001", "{notice:?}");
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    Held {
        id: hold_id(notice.message()),
        notice: notice.message().to_string(),
        task,
        client,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_an_extended_impact_hold_reruns_it_bounded() {
    let cluster = logged_cluster();
    victim_table(&cluster, "held_t", 20, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let admin = proxy.admin_addr().expect("admin listener");

    let h = hold_extended(
        &proxy.endpoint(),
        "DELETE FROM held_t WHERE id > $1 /* ext-rerun-1 */",
        10,
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
    // The probe and the bounded re-run: two executions, one of them kept.
    assert_eq!(executions_logged(&cluster, "ext-rerun-1"), 2);
    assert!(usable(&h.client).await);

    // The data changed meanwhile: the re-run would change more than approved.
    let h = hold_extended(
        &proxy.endpoint(),
        "DELETE FROM held_t WHERE id > $1 /* ext-rerun-2 */",
        2,
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

/// A Query message.
fn query(sql: &str) -> Vec<u8> {
    support::raw::query(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_after_a_pipelined_begin_stays_in_the_clients_transaction() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 100, SCRAM_USER).await;
    let proxy = impact_proxy(&cluster).await;
    let mut c = RawConn::connect(&proxy.endpoint()).await;
    c.login_trust(TRUST_USER, APP_DB).await;

    // BEGIN and a measured DELETE in one write, before BEGIN's reply: the probe
    // must run inside the client's transaction (a savepoint), so ROLLBACK undoes it.
    let mut b = query("BEGIN");
    b.extend(query("DELETE FROM t WHERE id > 98"));
    c.send(&b).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(tags(&got), "CZ", "{got:?}");
    let got = read_ready(&mut c).await;
    assert_eq!(tags(&got), "CZ", "{got:?}");
    assert_eq!(got.last().map(|m| m.body.clone()), Some(b"T".to_vec()));
    // The same with an extended-protocol batch.
    let mut b = query("SAVEPOINT s");
    b.extend(parse("", "DELETE FROM t WHERE id > $1"));
    b.extend(bind("", "", &["96"]));
    b.extend(execute("", 0));
    b.extend(sync());
    c.send(&b).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(tags(&got), "CZ", "{got:?}");
    let got = read_ready(&mut c).await;
    assert_eq!(tags(&got), "12CZ", "{got:?}");
    assert_eq!(got.last().map(|m| m.body.clone()), Some(b"T".to_vec()));
    c.send(&query("ROLLBACK")).await.unwrap();
    let got = read_ready(&mut c).await;
    assert_eq!(tags(&got), "CZ", "{got:?}");
    assert_eq!(got.last().map(|m| m.body.clone()), Some(b"I".to_vec()));
    assert_eq!(server_count(&cluster, "t").await, 100);
}
