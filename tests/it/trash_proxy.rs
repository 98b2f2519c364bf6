//! The trash carried out by the proxy: a `DROP TABLE` that a rule with
//! `action = "trash"` matches, sent through pgwarden by psql and tokio-postgres,
//! leaves the database as a real DROP would (the name free, other tables free of
//! its foreign keys), answers `DROP TABLE` with a NOTICE naming the item, and comes
//! back identical (catalog snapshot, md5 of the rows) with `pgwarden trash
//! restore`. Drops the server refuses give the server's error exactly as directly,
//! with the same transaction state; ROLLBACK undoes a trash; concurrent drops get
//! items of their own; whatever the trash does not cover gets the rule's fallback.

use crate::support;
use crate::trash_table::{lines, md5, snapshot, SCHEMA};

use std::time::Duration;

use pgwarden::trash::run;
use support::audit_file::{audit_toml, verify, wait_for};
use support::guarded::*;
use support::*;
use tokio_postgres::{AsyncMessage, Client};

/// Drops of tables go to the trash on production; the fallback refuses (PW002), so
/// a fallback shows at once.
pub(crate) const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "drops-to-trash"
environment = "production"
classes = ["drop.table"]
action = "trash"
retention = "1h"
fallback = "block"
"#;

pub(crate) async fn trash_proxy(cluster: &PgCluster) -> TestProxy {
    prod_builder(cluster).policy_toml(POLICY).start().await
}

/// A client through the proxy, with its notices.
pub(crate) async fn through(
    proxy: &TestProxy,
) -> (Client, tokio::sync::mpsc::UnboundedReceiver<AsyncMessage>) {
    proxy
        .endpoint()
        .connect_with_messages(SUPERUSER, SUPERUSER_PASSWORD, APP_DB)
        .await
        .expect("connect through pgwarden")
}

/// A refused statement's server error, every field a client sees.
pub(crate) fn server_error(
    r: Result<Vec<tokio_postgres::SimpleQueryMessage>, tokio_postgres::Error>,
) -> String {
    let e = r.expect_err("refused");
    let db = e.as_db_error().expect("a server error");
    format!(
        "{} {} {} {:?} {:?}",
        db.severity(),
        db.code().code(),
        db.message(),
        db.detail(),
        db.hint()
    )
}

/// `sql` is refused through pgwarden (`c`) with exactly the error it gets
/// directly, and the session is usable afterwards.
pub(crate) async fn refused_as_directly(direct: &Client, c: &Client, sql: &str) {
    let want = server_error(direct.simple_query(sql).await);
    let got = server_error(c.simple_query(sql).await);
    assert_eq!(got, want, "{sql}");
    assert!(usable(c).await, "{sql}");
}

/// Runs `sql` with psql (as the superuser, stopping at the first error) through
/// the proxy; it must succeed with `tag` on stdout and `notice` on stderr, which
/// it returns.
pub(crate) async fn psql_trashes(proxy: &TestProxy, sql: &str, tag: &str, notice: &str) -> String {
    let out = proxy
        .endpoint()
        .psql(
            SUPERUSER,
            SUPERUSER_PASSWORD,
            APP_DB,
            &["-v", "ON_ERROR_STOP=1", "-c", sql],
        )
        .await;
    out.assert_ok(sql);
    assert_eq!(out.stdout.trim(), tag, "{sql}");
    assert!(out.stderr.contains(notice), "{sql}: {}", out.stderr);
    out.stderr
}

/// The next notice's message.
pub(crate) async fn notice(rx: &mut tokio::sync::mpsc::UnboundedReceiver<AsyncMessage>) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(AsyncMessage::Notice(n))) => return n.message().to_string(),
            Ok(Some(_)) => continue,
            other => panic!("no notice: {other:?}"),
        }
    }
}

/// Every notice that has arrived so far.
pub(crate) fn notices_so_far(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<AsyncMessage>,
) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        if let AsyncMessage::Notice(n) = m {
            out.push(n.message().to_string());
        }
    }
    out
}

/// The trash item id a NOTICE names.
pub(crate) fn item_of(notice: &str) -> i64 {
    notice
        .split("as item ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no item in {notice:?}"))
}

pub(crate) async fn exists(c: &Client, name: &str) -> bool {
    lines(c, &format!("SELECT to_regclass('{name}') IS NOT NULL")).await == ["t"]
}

pub(crate) async fn registry_count(c: &Client) -> usize {
    run::list(c).await.expect("list").len()
}

/// `pgwarden trash ARGS` against the cluster as the superuser.
pub(crate) fn cli(cluster: &PgCluster, args: &[&str]) -> (Option<i32>, String, String) {
    let url = format!(
        "host=127.0.0.1 port={} dbname={APP_DB} user={SUPERUSER}",
        cluster.port()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .arg("trash")
        .args(args)
        .args([
            "--url",
            &url,
            "--password-env",
            "TRASH_PROXY_TEST_PW",
            "--tls",
            "disable",
            "--no-audit",
        ])
        .env_remove("PGWARDEN_TRASH_AUDIT")
        .env("TRASH_PROXY_TEST_PW", SUPERUSER_PASSWORD)
        .output()
        .expect("runs pgwarden");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_proxy_drop_frees_the_name_and_restore_brings_it_back_identical() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(SCHEMA).await.expect("schema");
    let before = snapshot(&su, "orders").await;
    let rows_before = md5(&su, "orders").await;
    let proxy = trash_proxy(&cluster).await;
    let (c, mut rx) = through(&proxy).await;

    let msgs = c
        .simple_query("DROP TABLE orders CASCADE")
        .await
        .expect("the drop is answered as a DROP");
    assert!(
        msgs.iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(_))),
        "{msgs:?}"
    );
    let told = notice(&mut rx).await;
    assert!(
        told.contains("drop cascades to"),
        "the server's notice first: {told}"
    );
    let told = notice(&mut rx).await;
    assert!(
        told.contains("table \"public\".\"orders\" was moved to the trash")
            && told.contains("pgwarden trash restore"),
        "{told}"
    );
    let id = item_of(&told);

    // As after a real DROP: the names are free, the views gone, other tables free
    // of its keys (shipments' key to it is gone; deleting a customer no longer
    // cascades into it).
    for name in [
        "orders",
        "orders_pkey",
        "orders_id_seq",
        "big_orders",
        "bigger_orders",
    ] {
        assert!(!exists(&su, name).await, "{name} still there");
    }
    c.batch_execute("CREATE TABLE orders (x int)")
        .await
        .expect("the name is free");
    su.batch_execute("INSERT INTO shipments VALUES (99, 123456)")
        .await
        .expect("no key to the trashed table");
    su.batch_execute(
        "BEGIN; DELETE FROM customers WHERE id = 1; ROLLBACK; DELETE FROM shipments WHERE id = 99",
    )
    .await
    .expect("a referenced row can be deleted");
    // The registry on the target has the item, with the client's statement.
    let items = run::list(&su).await.expect("list");
    let item = items.iter().find(|i| i.id == id).expect("item recorded");
    assert_eq!(item.statement, "DROP TABLE orders CASCADE");

    // The new table takes the name: restoring under it is refused, then works once
    // the new one is gone (dropped directly: it is not the one to keep).
    let (code, _, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("public.orders already exists"), "{err}");
    su.batch_execute("DROP TABLE orders")
        .await
        .expect("drop new");
    let (code, out, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(snapshot(&su, "orders").await, before);
    assert_eq!(md5(&su, "orders").await, rows_before);
}

/// psql through the proxy prints what it prints for a real DROP, plus pgwarden's
/// NOTICE; the table is then in the trash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_proxy_psql_sees_drop_table_and_the_notice() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute("CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, md5(g::text) FROM generate_series(1, 50) g")
        .await
        .expect("table");
    let rows = md5(&su, "notes").await;
    let proxy = trash_proxy(&cluster).await;
    let stderr = psql_trashes(
        &proxy,
        "DROP TABLE notes",
        "DROP TABLE",
        "NOTICE:  pgwarden: table \"public\".\"notes\" was moved to the trash",
    )
    .await;
    assert!(
        stderr.contains("HINT:  To restore it: pgwarden trash restore 1 (or --as NAME"),
        "{}",
        stderr
    );
    assert!(!exists(&su, "notes").await);
    assert_eq!(md5(&su, "pgwarden_trash_1.notes").await, rows);
}

/// A refused drop gives the server's error, word for word, and leaves the session
/// where the server would (outside a transaction: idle; inside: failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_proxy_refused_drops_get_the_servers_error() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(SCHEMA).await.expect("schema");
    let proxy = trash_proxy(&cluster).await;
    let (c, _rx) = through(&proxy).await;
    let direct = cluster.superuser_client().await;
    for sql in [
        "DROP TABLE orders",
        "DROP TABLE no_such_table",
        "DROP TABLE customers",
        "DROP TABLE pg_catalog.pg_class",
    ] {
        let want = server_error(direct.simple_query(sql).await);
        let got = server_error(c.simple_query(sql).await);
        assert_eq!(got, want, "{sql}");
        // Idle again: the next statement works.
        assert!(usable(&c).await, "{sql}");
        // Inside a transaction the transaction is failed, as directly.
        let want_tx = {
            direct.batch_execute("BEGIN").await.expect("begin");
            let e = server_error(direct.simple_query(sql).await);
            let next = server_error(direct.simple_query("SELECT 1").await);
            direct.batch_execute("ROLLBACK").await.expect("rollback");
            (e, next)
        };
        c.batch_execute("BEGIN").await.expect("begin");
        let got_tx = (
            server_error(c.simple_query(sql).await),
            server_error(c.simple_query("SELECT 1").await),
        );
        c.batch_execute("ROLLBACK").await.expect("rollback");
        assert_eq!(got_tx, want_tx, "{sql} in a transaction");
    }
    assert!(exists(&su, "orders").await && exists(&su, "customers").await);
    assert_eq!(registry_count(&su).await, 0);
}

/// Inside a transaction the trash is part of it: ROLLBACK brings the table back
/// untouched and leaves no item; COMMIT keeps the item. A client savepoint rolled
/// back undoes it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_proxy_in_transactions_rollback_and_commit() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(SCHEMA).await.expect("schema");
    let rows = md5(&su, "notes").await;
    let before = snapshot(&su, "notes").await;
    let proxy = trash_proxy(&cluster).await;
    let (c, mut rx) = through(&proxy).await;

    c.batch_execute("SET lock_timeout = '7s'; BEGIN")
        .await
        .expect("begin");
    c.simple_query("DROP TABLE notes").await.expect("trashed");
    assert!(notice(&mut rx).await.contains("moved to the trash"));
    assert!(!exists(&c, "notes").await, "gone inside the transaction");
    // The client's own settings are as before inside its transaction.
    assert_eq!(lines(&c, "SHOW lock_timeout").await, ["7s"]);
    c.batch_execute("ROLLBACK").await.expect("rollback");
    assert!(exists(&su, "notes").await);
    assert_eq!(md5(&su, "notes").await, rows);
    assert_eq!(snapshot(&su, "notes").await, before);

    c.batch_execute("BEGIN; SAVEPOINT s")
        .await
        .expect("savepoint");
    c.simple_query("DROP TABLE notes").await.expect("trashed");
    c.batch_execute("ROLLBACK TO SAVEPOINT s; COMMIT")
        .await
        .expect("rolled back to s");
    assert!(exists(&su, "notes").await);

    c.batch_execute("BEGIN").await.expect("begin");
    c.simple_query("DROP TABLE notes").await.expect("trashed");
    c.batch_execute("CREATE TABLE notes (other int); COMMIT")
        .await
        .expect("the name is free in the same transaction");
    let _ = notices_so_far(&mut rx);
    let items = run::list(&su).await.expect("list");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        md5(&su, &format!("pgwarden_trash_{}.notes", items[0].id)).await,
        rows
    );
    assert!(usable(&c).await);
}

/// Concurrent drops of different tables through the proxy, on a database without a
/// registry yet: every one is an item of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_proxy_concurrent_drops_get_items_of_their_own() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    const N: usize = 6;
    for i in 0..N {
        su.batch_execute(&format!(
            "CREATE TABLE t{i} (id int PRIMARY KEY); INSERT INTO t{i} SELECT generate_series(1, {})",
            i + 1
        ))
        .await
        .expect("table");
    }
    let proxy = trash_proxy(&cluster).await;
    let mut tasks = Vec::new();
    for i in 0..N {
        let ep = proxy.endpoint();
        tasks.push(tokio::spawn(async move {
            let c = ep.must_connect(SUPERUSER, SUPERUSER_PASSWORD, APP_DB).await;
            c.simple_query(&format!("DROP TABLE t{i}"))
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("dropped");
    }
    let items = run::list(&su).await.expect("list");
    assert_eq!(items.len(), N);
    let mut ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), N);
    for item in &items {
        let n: usize = item
            .original_name
            .trim_start_matches('t')
            .parse()
            .expect("tN");
        let count = lines(
            &su,
            &format!("SELECT count(*) FROM pgwarden_trash_{}.t{n}", item.id),
        )
        .await;
        assert_eq!(count, [format!("{}", n + 1)]);
    }
}

/// What the trash does not cover gets the rule's fallback (here: refused, PW002,
/// with the reason), and nothing changes: a partition (alone or with another table), a table
/// with dependents the trash cannot carry, the extended protocol, a lock the DROP
/// would wait for longer than pgwarden's lock_timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_proxy_uncovered_drops_get_the_fallback() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(SCHEMA).await.expect("schema");
    let proxy = trash_proxy(&cluster).await;
    let (c, _rx) = through(&proxy).await;
    for (sql, why) in [
        ("DROP TABLE notes, m2026", "partition"),
        ("DROP TABLE m2026", "partition"),
        ("DROP TABLE typed_use CASCADE", "depend"),
        ("DROP TABLE notes; SELECT 1", "several statements"),
    ] {
        let m = expect_code(c.simple_query(sql).await, "PW002");
        assert!(m.contains("drops-to-trash"), "{sql}: {m}");
        let detail = c.simple_query(sql).await.expect_err("refused");
        let detail = detail
            .as_db_error()
            .and_then(|d| d.detail())
            .unwrap_or_default()
            .to_string();
        assert!(
            detail.contains("could not move this to the trash") && detail.contains(why),
            "{sql}: {detail}"
        );
        assert!(usable(&c).await, "{sql}");
    }
    // Extended protocol: the fallback.
    expect_code(c.execute("DROP TABLE notes", &[]).await, "PW002");
    // A lock held elsewhere: pgwarden's lock_timeout ends the wait and the fallback
    // applies (a refusal inside a transaction fails it, as a server error would).
    let locker = cluster.superuser_client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE notes IN ACCESS SHARE MODE")
        .await
        .expect("lock");
    c.batch_execute("BEGIN").await.expect("begin");
    let m = expect_code(c.simple_query("DROP TABLE notes").await, "PW002");
    assert!(m.contains("drops-to-trash"), "{m}");
    expect_code(c.simple_query("SELECT 1").await, "25P02");
    c.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(lines(&su, "SELECT count(*) FROM notes").await, ["50"]);
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    for t in ["notes", "shipments", "m2026", "typed_use"] {
        assert!(exists(&su, t).await, "{t}");
    }
    assert_eq!(registry_count(&su).await, 0);
    // A temporary table has nothing to keep: it is dropped as written.
    c.batch_execute("CREATE TEMP TABLE scratch (x int)")
        .await
        .expect("temp");
    c.simple_query("DROP TABLE scratch").await.expect("dropped");
    c.simple_query("DROP TABLE IF EXISTS scratch")
        .await
        .expect("nothing to drop");
    assert_eq!(registry_count(&su).await, 0);
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// With a `[trash]` credential the proxy purges expired items on its interval (an
/// audit `purge` event each, after the `trash` event of the drop) and reports the
/// trash's size per target; unexpired items stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_proxy_purges_expired_items_and_reports_the_size() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(
        "CREATE TABLE kept (id int PRIMARY KEY, v text); \
         INSERT INTO kept SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g; \
         CREATE TABLE expiring (id int)",
    )
    .await
    .expect("tables");
    let dir = tempfile::tempdir().expect("dir");
    let audit = dir.path().join("audit.jsonl");
    let pw_var = "PGWARDEN_TEST_TRASH_PURGE_PW";
    std::env::set_var(pw_var, SUPERUSER_PASSWORD);
    let token_var = "PGWARDEN_TEST_TOKEN_TRASH_PURGE";
    std::env::set_var(token_var, "tok-trash");
    let proxy = prod_builder(&cluster)
        .policy_toml(POLICY)
        .admin(&[("carol", token_var)])
        .extra_toml(&format!(
            "{}\n[trash]\ntarget = \"{PROD}\"\nurl = \"host=127.0.0.1 port={} user={SUPERUSER} dbname={APP_DB}\"\n\
             password_env = \"{pw_var}\"\ntls = {{ mode = \"disable\" }}\npurge_interval = \"1s\"\n",
            audit_toml(&audit, "guarded"),
            cluster.port()
        ))
        .start()
        .await;
    let (c, _rx) = through(&proxy).await;
    c.simple_query("DROP TABLE kept").await.expect("trashed");
    c.simple_query("DROP TABLE expiring")
        .await
        .expect("trashed");
    let items = run::list(&su).await.expect("list");
    assert_eq!(items.len(), 2);
    let expiring = items
        .iter()
        .find(|i| i.original_name == "expiring")
        .expect("item")
        .id;
    su.batch_execute(&format!(
        "UPDATE pgwarden_trash.registry SET expires_at = now() - interval '1 second' WHERE id = {expiring}"
    ))
    .await
    .expect("expire it");
    let mut left = 2;
    for _ in 0..100 {
        left = registry_count(&su).await;
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 1, "the expired item is purged within the interval");
    assert!(!exists(&su, &format!("pgwarden_trash_{expiring}.expiring")).await);
    let kept = run::list(&su).await.expect("list");
    assert_eq!(kept[0].original_name, "kept");
    let count = format!("SELECT count(*) FROM pgwarden_trash_{}.kept", kept[0].id);
    assert_eq!(lines(&su, &count).await, ["2000"]);

    let recs = wait_for(&audit, "a purge event", |r| {
        r.iter().any(|e| e["event"] == "purge")
    })
    .await;
    let purge = recs.iter().find(|e| e["event"] == "purge").expect("purge");
    assert_eq!(purge["item"], expiring);
    assert_eq!(purge["target"], PROD);
    assert_eq!(purge["reason"], "expired");
    let trashed: Vec<_> = recs.iter().filter(|e| e["event"] == "trash").collect();
    assert_eq!(trashed.len(), 2, "{recs:?}");
    assert!(recs.iter().any(|e| e["event"] == "statement"
        && e["decision"] == "trash"
        && e["sql"] == "DROP TABLE kept"));
    let (ok, out) = verify(&[&audit]);
    assert!(ok, "{out}");

    // The size of what is left (the kept table: well over 100 kB).
    let admin = proxy.admin_addr().expect("admin");
    let mut bytes = 0.0;
    for _ in 0..50 {
        let m = support::http::request(admin, "GET", "/metrics", None, None).await;
        bytes = metric(
            &m.body,
            &format!("pgwarden_trash_bytes{{target=\"{PROD}\"}}"),
        );
        if bytes > 100_000.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bytes > 100_000.0, "pgwarden_trash_bytes = {bytes}");

    // The admin API with an approver's token: list, restore (refused while the
    // name is taken), purge; restore and purge are audited with the approver.
    use support::http::request;
    assert_eq!(
        request(admin, "GET", "/trash", None, None).await.status,
        401
    );
    let l = request(admin, "GET", "/trash", Some("tok-trash"), None).await;
    assert_eq!(l.status, 200, "{}", l.body);
    let v: serde_json::Value = serde_json::from_str(&l.body).expect("json");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
    let id = kept[0].id;
    su.batch_execute("CREATE TABLE kept (other int)")
        .await
        .expect("take the name");
    let path = format!("/trash/{id}/restore");
    let r = request(admin, "POST", &path, Some("tok-trash"), None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = request(
        admin,
        "POST",
        &path,
        Some("tok-trash"),
        Some(r#"{"as": "kept_back"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(lines(&su, "SELECT count(*) FROM kept_back").await, ["2000"]);
    let recs = wait_for(&audit, "a restore event", |r| {
        r.iter().any(|e| e["event"] == "restore")
    })
    .await;
    let restore = recs
        .iter()
        .find(|e| e["event"] == "restore")
        .expect("restore");
    assert_eq!(restore["approver"], "carol");
    assert_eq!(restore["restored_as"], "public.kept_back");
    // Another drop through the proxy, purged by hand.
    c.simple_query("DROP TABLE kept").await.expect("trashed");
    let again = run::list(&su).await.expect("list");
    let other = again[0].id;
    let r = request(
        admin,
        "POST",
        &format!("/trash/{other}/purge"),
        Some("tok-trash"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(registry_count(&su).await, 0);
    let r = request(admin, "POST", "/trash/999/purge", Some("tok-trash"), None).await;
    assert_eq!(r.status, 404, "{}", r.body);
    wait_for(&audit, "a requested purge", |r| {
        r.iter().any(|e| {
            e["event"] == "purge" && e["reason"] == "requested" && e["approver"] == "carol"
        })
    })
    .await;
    let (ok, out) = verify(&[&audit]);
    assert!(ok, "{out}");
}
