//! Blast radius in holds, through the real proxy on a production target with the
//! example policy: before holding a DROP, TRUNCATE or DROP COLUMN for an approver,
//! the session reads from the catalog what it would destroy (exact row counts up
//! to a cap), on the client's own connection; the client sees it in the hold
//! notice, the approver in `GET /holds`, the audit log in the statement and hold
//! records. Inside the client's transaction the read leaves it as it was. A failed
//! read holds without a blast radius; with the example's `empty` rule enabled an
//! exactly empty table is dropped at once and a table with one row is held. The
//! example's trash rule is left out (DROP TABLE would go to the trash), except in
//! `with_the_trash_rule_…`, where an empty table is dropped at once and not trashed.
//! The approver page shows the blast radius on the hold card (headless Chromium),
//! also on another replica sharing the control database.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use support::guarded::*;
use support::http;
use support::*;
use tokio_postgres::{AsyncMessage, Client};

const ALICE_TOKEN: &str = "alice-blast-test-token";

const SCHEMA: &str = "
CREATE TABLE parent (id int PRIMARY KEY, note text);
INSERT INTO parent SELECT g, 'n' FROM generate_series(1, 5) g;
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent);
INSERT INTO child SELECT g, 1 + g % 5 FROM generate_series(1, 3) g;
CREATE VIEW parent_view AS SELECT id FROM parent;
CREATE SCHEMA scratch;
CREATE TABLE scratch.a (id int);
INSERT INTO scratch.a SELECT generate_series(1, 7);
CREATE TABLE scratch.b (id int);
CREATE TABLE empty0 (id int);
CREATE TABLE one_row (id int);
INSERT INTO one_row VALUES (1);
CREATE TABLE empty1 (id int);
";

fn example_policy(empty_rule: bool) -> String {
    example_policy_with(empty_rule, false)
}

fn example_policy_with(empty_rule: bool, keep_trash: bool) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml");
    let text = std::fs::read_to_string(path).expect("policy.example.toml");
    // Without its trash rule: a plain DROP TABLE is then held by the rule below it
    // (with the trash rule it runs at once, keeping the data; tests/it/trash_*).
    let trash = "[[rule]]\nname = \"drops-go-to-the-trash\"\n";
    let at = text.find(trash).expect("the example's trash rule moved");
    let end = at + text[at..].find("\n\n").expect("end of the trash rule") + 2;
    let text = if keep_trash {
        text.clone()
    } else {
        format!("{}{}", &text[..at], &text[end..])
    };
    if !empty_rule {
        return text;
    }
    let commented = "# [[rule]]\n# name = \"empty-tables-go\"\n# environment = \"production\"\n\
                     # classes = [\"drop.table\", \"truncate\"]\n# empty = true\n# action = \"audit\"\n";
    assert!(text.contains(commented), "the example's empty rule moved");
    text.replace(commented, &commented.replace("# ", ""))
}

async fn setup(cluster: &PgCluster) {
    su_exec(
        cluster,
        &format!(
            "GRANT ALL ON SCHEMA public TO {SCRAM_USER}; GRANT CREATE ON DATABASE {APP_DB} TO {SCRAM_USER}; SET ROLE {SCRAM_USER}; {SCHEMA} RESET ROLE;"
        ),
    )
    .await;
}

struct BlastProxy {
    proxy: TestProxy,
    audit: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(cluster: &PgCluster, empty_rule: bool) -> BlastProxy {
    start_with(cluster, example_policy(empty_rule)).await
}

async fn start_with(cluster: &PgCluster, policy: String) -> BlastProxy {
    let env = "PGWARDEN_TEST_TOKEN_BLAST_ALICE";
    std::env::set_var(env, ALICE_TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let proxy = prod_builder(cluster)
        .policy_toml(&policy)
        .admin(&[("alice", env)])
        .extra_toml(&support::audit_file::audit_toml(&audit, "all"))
        .start()
        .await;
    BlastProxy {
        proxy,
        audit,
        _dir: dir,
    }
}

/// A held statement: the notice's message and detail.
struct Held {
    id: u64,
    message: String,
    detail: String,
    task: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
}

async fn connect(
    p: &BlastProxy,
) -> (
    Arc<Client>,
    tokio::sync::mpsc::UnboundedReceiver<AsyncMessage>,
) {
    let (c, rx) = p
        .proxy
        .endpoint()
        .connect_with_messages(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .expect("connect");
    (Arc::new(c), rx)
}

/// Sends `sql` on `c` from a task and waits for its hold notice.
async fn hold_on(
    c: &Arc<Client>,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<AsyncMessage>,
    sql: &str,
) -> Held {
    let c2 = Arc::clone(c);
    let text = sql.to_string();
    let task = tokio::spawn(async move { c2.batch_execute(&text).await });
    let n = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Some(AsyncMessage::Notice(n)) if n.code().code() == "PW001" => return n,
                Some(_) => {}
                None => panic!("connection ended before the hold notice: {sql}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no hold notice within 10 s: {sql}"));
    Held {
        id: hold_id(n.message()),
        message: n.message().to_string(),
        detail: n.detail().unwrap_or_default().to_string(),
        task,
    }
}

async fn decide(p: &BlastProxy, id: u64, how: &str) {
    let admin = p.proxy.admin_addr().expect("admin");
    let r = http::post(
        admin,
        &format!("/holds/{id}/{how}"),
        Some(ALICE_TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
}

async fn finished(h: Held) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(15), h.task)
        .await
        .expect("held statement not resolved within 15 s")
        .expect("task panicked")
        .map_err(|e| sqlstate(&e).unwrap_or_else(|| format!("client error {e}")))
}

fn blast_of_hold(list: &serde_json::Value, id: u64) -> String {
    list.as_array()
        .and_then(|a| a.iter().find(|h| h["id"] == id))
        .and_then(|h| h["blast"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_show_what_would_be_destroyed() {
    let cluster = PgCluster::start();
    setup(&cluster).await;
    let p = start(&cluster, false).await;
    let admin = p.proxy.admin_addr().expect("admin");
    let (c, mut rx) = connect(&p).await;

    let cases = [
        (
            "DROP TABLE parent CASCADE /* b-drop */",
            "would drop public.parent (5 rows) and 2 dependent objects \
             (table constraint child_parent_id_fkey on public.child, view public.parent_view)",
        ),
        (
            "TRUNCATE parent CASCADE /* b-truncate */",
            "would empty public.parent (5 rows), and through foreign keys public.child (3 rows)",
        ),
        (
            "DROP SCHEMA scratch CASCADE /* b-schema */",
            "would drop scratch.a (7 rows), scratch.b (0 rows)",
        ),
        (
            "ALTER TABLE parent DROP COLUMN note /* b-column */",
            "would drop a column of public.parent (5 rows)",
        ),
    ];
    for (sql, want) in cases {
        let h = hold_on(&c, &mut rx, sql).await;
        assert!(
            h.message.contains("drops-need-a-second-person"),
            "{}",
            h.message
        );
        assert!(
            h.detail
                .starts_with(&format!("pgwarden read the catalog: this {want}")),
            "{sql}\n got: {}\nwant: {want}",
            h.detail
        );
        let list = http::get(admin, "/holds", Some(ALICE_TOKEN)).await.json();
        assert_eq!(blast_of_hold(&list, h.id), want, "{sql}: {list}");
        decide(&p, h.id, "deny").await;
        assert_eq!(finished(h).await, Err("PW004".to_string()), "{sql}");
    }
    // Nothing was destroyed, and pgwarden's reads left the session working.
    assert_eq!(server_count(&cluster, "parent").await, 5);
    assert_eq!(server_count(&cluster, "child").await, 3);
    assert_eq!(server_count(&cluster, "scratch.a").await, 7);
    assert!(usable(&c).await);

    // `pgwarden holds list` shows it too.
    let h = hold_on(&c, &mut rx, "DROP TABLE one_row /* b-cli */").await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .args([
            "holds",
            "list",
            "--admin",
            &format!("http://{admin}"),
            "--token",
            ALICE_TOKEN,
        ])
        .env_remove("PGWARDEN_ADMIN")
        .env_remove("PGWARDEN_TOKEN")
        .kill_on_drop(true)
        .output()
        .await
        .expect("pgwarden holds list");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("    blast radius: would drop public.one_row (1 row)"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    decide(&p, h.id, "approve").await;
    assert_eq!(finished(h).await, Ok(()));
    assert!(!server_table_exists(&cluster, "one_row").await);

    // The audit log: the statement record and the hold record carry it.
    let recs = support::audit_file::wait_for(&p.audit, "the held statements", |r| {
        r.iter()
            .filter(|e| e["event"] == "hold" && e["blast"].is_string())
            .count()
            >= 5
    })
    .await;
    let stmt = recs
        .iter()
        .find(|e| {
            e["event"] == "statement" && e["sql"].as_str().unwrap_or("").contains("b-truncate")
        })
        .expect("statement record");
    assert_eq!(
        stmt["blast"],
        "would empty public.parent (5 rows), and through foreign keys public.child (3 rows)"
    );
    assert_eq!(stmt["decision"], "hold");
    drop(c);
    drop(p.proxy);
    let (ok, out) = support::audit_file::verify(&[&p.audit]);
    assert!(ok, "{out}");
}

async fn value(c: &Client, sql: &str) -> String {
    c.simple_query(sql)
        .await
        .expect(sql)
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_transaction_the_read_leaves_it_as_it_was() {
    let cluster = PgCluster::builder()
        .setting("log_statement", "'all'")
        .start();
    setup(&cluster).await;
    let p = start(&cluster, false).await;
    let (c, mut rx) = connect(&p).await;
    c.batch_execute("BEGIN; SET LOCAL lock_timeout = '7s'; INSERT INTO parent VALUES (100, 'mine'); SAVEPOINT a")
        .await
        .unwrap();
    let h = hold_on(&c, &mut rx, "DROP TABLE child /* t-drop */").await;
    assert!(
        h.detail
            .starts_with("pgwarden read the catalog: this would drop public.child (3 rows)"),
        "{}",
        h.detail
    );
    decide(&p, h.id, "approve").await;
    assert_eq!(finished(h).await, Ok(()));
    // The client's settings and savepoints are as they would be directly.
    assert_eq!(value(&c, "SHOW lock_timeout").await, "7s");
    assert_eq!(
        value(&c, "SELECT count(*) FROM pg_class WHERE relname = 'child'").await,
        "0"
    );
    c.batch_execute("ROLLBACK TO SAVEPOINT a").await.unwrap();
    assert_eq!(value(&c, "SELECT count(*) FROM child").await, "3");
    assert_eq!(
        value(&c, "SELECT note FROM parent WHERE id = 100").await,
        "mine"
    );
    // A denied one leaves the transaction failed, as a server error would.
    let h = hold_on(&c, &mut rx, "TRUNCATE child /* t-truncate */").await;
    decide(&p, h.id, "deny").await;
    assert_eq!(finished(h).await, Err("PW004".to_string()));
    expect_code(c.simple_query("SELECT 1").await, "25P02");
    c.batch_execute("ROLLBACK TO SAVEPOINT a; COMMIT")
        .await
        .unwrap();
    assert_eq!(server_count_where(&cluster, "parent", "id = 100").await, 1);
    assert_eq!(server_count(&cluster, "child").await, 3);
    // pgwarden read under its own savepoint, and counted exactly.
    let log = cluster.log();
    assert!(
        log.contains("SAVEPOINT pgwarden_probe_"),
        "no savepoint in the log"
    );
    assert!(
        log.contains("FROM ONLY \"public\".\"child\" LIMIT 1001"),
        "no count in the log"
    );
    assert!(usable(&c).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_tables_go_at_once_and_a_failed_read_holds_without_blast() {
    let cluster = PgCluster::start();
    setup(&cluster).await;
    let p = start(&cluster, true).await;
    let (c, mut rx) = connect(&p).await;
    // Exactly empty: dropped and truncated at once.
    c.batch_execute("TRUNCATE empty0").await.unwrap();
    c.batch_execute("DROP TABLE empty0").await.unwrap();
    assert!(!server_table_exists(&cluster, "empty0").await);
    // One row: held, with the exact count.
    let h = hold_on(&c, &mut rx, "DROP TABLE one_row").await;
    assert!(
        h.detail
            .starts_with("pgwarden read the catalog: this would drop public.one_row (1 row)."),
        "{}",
        h.detail
    );
    decide(&p, h.id, "deny").await;
    assert_eq!(finished(h).await, Err("PW004".to_string()));
    assert_eq!(server_count(&cluster, "one_row").await, 1);
    // TRUNCATE … CASCADE of an empty table that foreign keys reach with rows: held.
    let h = hold_on(&c, &mut rx, "TRUNCATE parent CASCADE").await;
    decide(&p, h.id, "deny").await;
    assert_eq!(finished(h).await, Err("PW004".to_string()));

    // The catalog read fails: held, never dropped at once, and inside a transaction
    // the client's transaction is as it was.
    su_exec(
        &cluster,
        "REVOKE SELECT ON pg_catalog.pg_depend FROM PUBLIC",
    )
    .await;
    c.batch_execute("BEGIN; INSERT INTO parent VALUES (200, 'kept')")
        .await
        .unwrap();
    let h = hold_on(&c, &mut rx, "DROP TABLE empty1").await;
    assert!(
        h.detail
            .starts_with("pgwarden: blast radius unknown: pgwarden's catalog read failed."),
        "{}",
        h.detail
    );
    let admin = p.proxy.admin_addr().expect("admin");
    let list = http::get(admin, "/holds", Some(ALICE_TOKEN)).await.json();
    assert_eq!(
        blast_of_hold(&list, h.id),
        "blast radius unknown: pgwarden's catalog read failed"
    );
    decide(&p, h.id, "approve").await;
    assert_eq!(finished(h).await, Ok(()));
    assert_eq!(
        value(&c, "SELECT note FROM parent WHERE id = 200").await,
        "kept"
    );
    c.batch_execute("COMMIT").await.unwrap();
    assert_eq!(server_count_where(&cluster, "parent", "id = 200").await, 1);
    assert!(!server_table_exists(&cluster, "empty1").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_trash_rule_an_empty_table_is_dropped_and_a_full_one_trashed() {
    let cluster = PgCluster::start();
    setup(&cluster).await;
    let p = start_with(&cluster, example_policy_with(true, true)).await;
    let (c, _rx) = connect(&p).await;
    c.batch_execute("DROP TABLE empty0").await.unwrap();
    c.batch_execute("DROP TABLE one_row").await.unwrap();
    assert!(!server_table_exists(&cluster, "empty0").await);
    assert!(!server_table_exists(&cluster, "one_row").await);
    let su = cluster.superuser_client().await;
    let trashed: Vec<String> = su
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname LIKE 'pgwarden\\_trash\\_%' AND c.relkind = 'r'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        trashed,
        vec!["one_row".to_string()],
        "only the table with rows is kept"
    );
}

/// The approver page's hold card shows the blast radius ("Would destroy") of a held
/// DROP TABLE … CASCADE and TRUNCATE … CASCADE with the real figures, in headless
/// Chromium; denied there, nothing is destroyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_what_a_held_drop_or_truncate_would_destroy() {
    use support::webdriver::Browser;
    let cluster = PgCluster::start();
    setup(&cluster).await;
    let p = start(&cluster, false).await;
    let base = format!("http://{}", p.proxy.admin_addr().expect("admin"));
    let b = Browser::start(1100, 800).await;
    b.sign_in(&base, ALICE_TOKEN, "alice").await;

    let (c, mut rx) = connect(&p).await;
    let cases = [
        (
            "DROP TABLE parent CASCADE /* page-drop */",
            "would drop public.parent (5 rows) and 2 dependent objects \
             (table constraint child_parent_id_fkey on public.child, view public.parent_view)",
            "approver-page-blast.png",
        ),
        (
            "TRUNCATE parent CASCADE /* page-truncate */",
            "would empty public.parent (5 rows), and through foreign keys public.child (3 rows)",
            "",
        ),
    ];
    for (sql, want, shot) in cases {
        let h = hold_on(&c, &mut rx, sql).await;
        let card = b
            .wait_for(
                &format!("article.hold#hold-{}", h.id),
                sql,
                Duration::from_secs(30),
            )
            .await;
        // The fact's name and its value, as the card shows them.
        let shown = b
            .script(&format!(
                "var dl = document.querySelector('#hold-{} dl.facts'); var out = null; \
                 dl.querySelectorAll('dt').forEach(function (dt) {{ \
                   if (dt.textContent === 'Would destroy') out = dt.nextElementSibling.textContent; }}); \
                 return out",
                h.id
            ))
            .await;
        assert_eq!(shown, serde_json::json!(want), "{sql}");
        assert!(b.text(&card).await.contains("Would destroy"));
        if !shot.is_empty() {
            b.save_screenshot(shot).await;
        }
        let reason = b.find_in(&card, "input.reason").await;
        b.type_into(&reason, "not today").await;
        b.click(&b.find_in(&card, "button.deny").await).await;
        assert_eq!(finished(h).await, Err("PW004".to_string()), "{sql}");
    }
    assert_eq!(server_count(&cluster, "parent").await, 5);
    assert_eq!(server_count(&cluster, "child").await, 3);
    assert!(usable(&c).await);
    p.proxy.shutdown().await;
}

/// Replicas: two pgwarden processes (the real binary) sharing one control
/// database. A DROP held on A carries its blast radius to B: in B's `GET /holds`,
/// `GET /holds/ID` and on B's approver page (headless Chromium). Denied on B, A's
/// client gets the denial and nothing is destroyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_shows_the_blast_radius_of_a_hold() {
    use std::net::SocketAddr;
    use support::webdriver::Browser;
    let token_env = "PGWARDEN_TEST_TOKEN_BLAST_REPLICAS";
    let control_pw = "PGWARDEN_TEST_BLAST_CONTROL_PASSWORD";
    std::env::set_var(token_env, ALICE_TOKEN);
    std::env::set_var(control_pw, SUPERUSER_PASSWORD);
    let target = PgCluster::start();
    let control = PgCluster::start();
    setup(&target).await;
    let policy = example_policy(false);
    let replica = |name: &'static str| {
        let admin_port = free_port();
        let extra = format!(
            "\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\napprovers = {{ alice = {{ token_env = \"{token_env}\" }} }}\n\
             \n[control]\nurl = \"host=127.0.0.1 port={} user={SUPERUSER} dbname={APP_DB}\"\n\
             password_env = \"{control_pw}\"\nreplica = \"{name}\"\n\
             poll_interval = \"250ms\"\nreplica_timeout = \"2s\"\n",
            control.port()
        );
        let builder = prod_builder(&target)
            .policy_toml(&policy)
            .extra_toml(&extra);
        (builder, SocketAddr::from(([127, 0, 0, 1], admin_port)))
    };
    let (builder, a_admin) = replica("a");
    let a = builder.spawn_binary().await;
    let (builder, b_admin) = replica("b");
    let b = builder.spawn_binary().await;
    for admin in [a_admin, b_admin] {
        eventually(
            "the replica is connected to the control database",
            Duration::from_secs(20),
            || async move { http::get(admin, "/readyz", None).await.json()["control"] == "ok" },
        )
        .await;
    }

    let (c, mut rx) = a
        .endpoint()
        .connect_with_messages(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .expect("connect to A");
    let c = Arc::new(c);
    let sql = "DROP TABLE parent CASCADE /* on-a */";
    let want = "would drop public.parent (5 rows) and 2 dependent objects \
                (table constraint child_parent_id_fkey on public.child, view public.parent_view)";
    let h = hold_on(&c, &mut rx, sql).await;
    let id = h.id;
    eventually("B lists A's hold", Duration::from_secs(10), || async move {
        let list = http::get(b_admin, "/holds", Some(ALICE_TOKEN)).await.json();
        !blast_of_hold(&list, id).is_empty()
    })
    .await;
    let list = http::get(b_admin, "/holds", Some(ALICE_TOKEN)).await.json();
    assert_eq!(blast_of_hold(&list, id), want, "{list}");
    let one = http::get(b_admin, &format!("/holds/{id}"), Some(ALICE_TOKEN))
        .await
        .json();
    assert_eq!(one["blast"], want, "{one}");

    let page = Browser::start(1100, 800).await;
    page.sign_in(&format!("http://{b_admin}"), ALICE_TOKEN, "alice")
        .await;
    let card = page
        .wait_for(
            &format!("article.hold#hold-{id}"),
            "Would destroy",
            Duration::from_secs(30),
        )
        .await;
    let text = page.text(&card).await;
    assert!(text.contains(want), "B's page card:\n{text}");
    page.click(&page.find_in(&card, "button.deny").await).await;
    assert_eq!(finished(h).await, Err("PW004".to_string()));
    let decided = http::get(b_admin, &format!("/holds/{id}"), Some(ALICE_TOKEN))
        .await
        .json();
    assert_eq!(decided["status"], "denied", "{decided}");
    assert_eq!(server_count(&target, "parent").await, 5);
    assert_eq!(server_count(&target, "child").await, 3);
    a.kill().await;
    b.kill().await;
}
