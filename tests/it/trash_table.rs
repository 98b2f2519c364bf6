//! The trash (`pgwarden::trash`) on a real cluster: every plan is carried out on the
//! server and checked against what a real DROP would leave behind (the name free,
//! other tables behaving as after a DROP), and restore is checked against a catalog
//! snapshot and an md5 of the rows taken before the drop.

use crate::support;

use std::time::Duration;

use pgwarden::trash::plan::Context;
use pgwarden::trash::run::{self, TrashError, TrashRun};
use support::*;
use tokio_postgres::Client;

pub(crate) const SCHEMA: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE,
  amount numeric CHECK (amount >= 0), note text DEFAULT 'n',
  code text UNIQUE);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE TABLE shipments (id int PRIMARY KEY, order_id int REFERENCES orders ON DELETE SET NULL);
CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 10;
CREATE VIEW bigger_orders AS SELECT * FROM big_orders WHERE amount > 50;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.note := NEW.note || '!'; RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_small ON orders USING (amount < 1000);
CREATE ROLE reader;
GRANT SELECT ON orders TO reader;
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 20) g;
INSERT INTO orders (customer_id, amount, code) SELECT 1 + g % 20, g, 'o' || g FROM generate_series(1, 100) g;
INSERT INTO shipments SELECT g, g FROM generate_series(1, 10) g;
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes SELECT g, md5(g::text) FROM generate_series(1, 50) g;
CREATE TABLE measurements (id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE m2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE m2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO measurements SELECT g, '2025-06-01' FROM generate_series(1, 10) g;
INSERT INTO measurements SELECT g, '2026-06-01' FROM generate_series(1, 20) g;
CREATE TABLE typed_use (id int PRIMARY KEY);
CREATE FUNCTION uses_row(r typed_use) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE parent_t (id int);
CREATE TABLE child_t () INHERITS (parent_t);
";

const CX: Context<'static> = Context {
    by: "alice",
    statement: "test",
    retention: Some(Duration::from_secs(3600)),
    truncate_max_bytes: 1 << 20,
};

async fn fixture() -> (PgCluster, Client) {
    let cluster = PgCluster::start();
    let c = cluster.superuser_client().await;
    c.batch_execute(SCHEMA).await.expect("schema");
    (cluster, c)
}

pub(crate) async fn lines(c: &Client, sql: &str) -> Vec<String> {
    run::rows(c, sql)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{sql}"))
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// Everything a restore must bring back for `table` (in public), and the views.
pub(crate) async fn snapshot(c: &Client, table: &str) -> Vec<String> {
    let rel = format!("'public.{table}'::regclass");
    let sql = format!(
        "SELECT 'col ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
            || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
           FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE a.attrelid = {rel} AND a.attnum > 0 AND NOT a.attisdropped
         UNION ALL SELECT 'idx ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = {rel}
         UNION ALL SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = {rel}
         UNION ALL SELECT 'fk-in ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
           FROM pg_constraint WHERE confrelid = {rel} AND conrelid <> {rel}
         UNION ALL SELECT 'trg ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = {rel} AND NOT tgisinternal
         UNION ALL SELECT 'pol ' || polname || ' ' || pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = {rel}
         UNION ALL SELECT 'rel ' || relname || ' ' || relnamespace::regnamespace || ' ' || relkind::text || ' '
             || coalesce(relacl::text, '-') || ' rls=' || relrowsecurity || ' owner=' || relowner::regrole
           FROM pg_class WHERE oid = {rel}
         UNION ALL SELECT 'part ' || inhrelid::regclass || ' ' || pg_get_expr(c.relpartbound, c.oid)
           FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid WHERE inhparent = {rel}
         UNION ALL SELECT 'seq ' || s.relname || ' ' || s.relnamespace::regnamespace FROM pg_depend d
           JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' WHERE d.refobjid = {rel}
         UNION ALL SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
           FROM pg_class c WHERE c.relkind IN ('v', 'm') AND c.relnamespace = 'public'::regnamespace
         ORDER BY 1"
    );
    lines(c, &sql).await
}

pub(crate) async fn md5(c: &Client, table: &str) -> String {
    lines(
        c,
        &format!("SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t"),
    )
    .await
    .join("")
}

async fn trash(c: &Client, sql: &str) -> Result<TrashRun, TrashError> {
    run::drop_into_trash(
        c,
        sql,
        false,
        &Context {
            statement: sql,
            ..CX
        },
    )
    .await
}

fn trashed_id(o: TrashRun) -> i64 {
    match o {
        TrashRun::Trashed(p) => p.id,
        TrashRun::AsWritten(w) => panic!("run as written: {w}"),
    }
}

async fn exists(c: &Client, name: &str) -> bool {
    lines(c, &format!("SELECT to_regclass('{name}') IS NOT NULL")).await == ["t"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_cascade_behaves_like_drop_and_restores_identically() {
    let (_cluster, c) = fixture().await;
    let before = snapshot(&c, "orders").await;
    let rows_before = md5(&c, "orders").await;
    let view_rows = md5(&c, "bigger_orders").await;
    let seq_before = lines(&c, "SELECT last_value FROM orders_id_seq").await;

    let id = trashed_id(
        trash(&c, "DROP TABLE orders CASCADE")
            .await
            .expect("trashed"),
    );

    // As after a real DROP … CASCADE: the names are free, the views are gone, the
    // foreign key of shipments is gone, customers no longer cascade into orders.
    for name in [
        "orders",
        "big_orders",
        "bigger_orders",
        "orders_id_seq",
        "orders_pkey",
    ] {
        assert!(!exists(&c, name).await, "{name} should be gone");
    }
    c.batch_execute(
        "CREATE TABLE orders (id serial PRIMARY KEY, code text UNIQUE);
         CREATE VIEW big_orders AS SELECT 1 AS x;
         INSERT INTO shipments VALUES (99, 12345);
         DELETE FROM customers WHERE id = 1;",
    )
    .await
    .expect("the database behaves as after a real DROP");
    let trashed = format!("pgwarden_trash_{id}.orders");
    assert_eq!(
        md5(&c, &trashed).await,
        rows_before,
        "rows kept in the trash"
    );

    // Restoring while the names are taken is refused, clearly.
    let err = run::restore(&c, id, None).await.expect_err("name taken");
    assert!(
        err.to_string()
            .contains("cannot restore: public.orders, public.big_orders already exist"),
        "{err}"
    );
    c.batch_execute("DROP TABLE orders; DROP VIEW big_orders")
        .await
        .expect("cleanup");
    // The removed foreign keys come back; rows that now violate them make the
    // restore fail as a whole, with the server's reason.
    let err = run::restore(&c, id, None).await.expect_err("violations");
    assert!(err.to_string().contains("23503"), "{err}");
    assert!(
        exists(&c, &trashed).await,
        "a failed restore changes nothing"
    );
    c.batch_execute(
        "DELETE FROM shipments WHERE id = 99;
         INSERT INTO customers VALUES (1, 'c1');",
    )
    .await
    .expect("repair");
    let item = run::restore(&c, id, None).await.expect("restored");
    assert_eq!(item.original(), "public.orders");
    assert_eq!(snapshot(&c, "orders").await, before);
    assert_eq!(md5(&c, "orders").await, rows_before);
    assert_eq!(md5(&c, "bigger_orders").await, view_rows);
    assert_eq!(
        lines(&c, "SELECT last_value FROM orders_id_seq").await,
        seq_before
    );
    assert!(!exists(&c, &trashed).await);
    assert!(run::list(&c).await.expect("list").is_empty());
    let schemas = lines(
        &c,
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgwarden_trash_%'",
    )
    .await;
    assert_eq!(schemas, ["0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_transactions_restore_as_purge_and_fallbacks() {
    let (cluster, c) = fixture().await;

    // The server refuses: the same error as a direct DROP, and nothing changes.
    for sql in [
        "DROP TABLE orders",
        "DROP TABLE missing",
        "DROP TABLE customers",
    ] {
        let direct = c.batch_execute(sql).await.expect_err(sql);
        match trash(&c, sql).await {
            Err(TrashError::Refused(e)) => {
                assert_eq!(describe_error(&e), describe_error(&direct), "{sql}")
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert!(exists(&c, "orders").await);
    assert!(matches!(
        trash(&c, "DROP TABLE IF EXISTS missing").await,
        Ok(TrashRun::AsWritten(_))
    ));

    // Inside a client transaction the move is part of it.
    let notes = md5(&c, "notes").await;
    c.batch_execute("BEGIN").await.expect("begin");
    let o = run::drop_into_trash(&c, "DROP TABLE notes", true, &CX).await;
    trashed_id(o.expect("trashed"));
    assert!(!exists(&c, "notes").await);
    c.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(
        md5(&c, "notes").await,
        notes,
        "ROLLBACK undoes the trash move"
    );
    assert!(run::list(&c).await.expect("list").is_empty());
    c.batch_execute("BEGIN").await.expect("begin");
    let id = trashed_id(
        run::drop_into_trash(&c, "DROP TABLE notes", true, &CX)
            .await
            .expect("trashed"),
    );
    c.batch_execute("COMMIT").await.expect("commit");
    assert!(!exists(&c, "notes").await);

    // Restore under another name when the name is taken.
    c.batch_execute("CREATE TABLE notes (x int)")
        .await
        .expect("new notes");
    assert!(matches!(
        run::restore(&c, id, None).await,
        Err(TrashError::Taken(_))
    ));
    run::restore(&c, id, Some("notes_old"))
        .await
        .expect("restored as");
    assert_eq!(md5(&c, "notes_old").await, notes);

    // Purge really drops.
    let id = trashed_id(trash(&c, "DROP TABLE notes_old").await.expect("trashed"));
    let items = run::list(&c).await.expect("list");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].trashed_by, "alice");
    assert!(run::size(&c).await.expect("size") > 0);
    run::purge(&c, id).await.expect("purged");
    assert!(!exists(&c, &format!("pgwarden_trash_{id}.notes_old")).await);
    assert!(run::list(&c).await.expect("list").is_empty());
    assert!(matches!(
        run::purge(&c, id).await,
        Err(TrashError::NotFound(_))
    ));

    // Expired items are purged; others stay.
    let short = Context {
        retention: Some(Duration::ZERO),
        ..CX
    };
    run::drop_into_trash(&c, "DROP TABLE shipments", false, &short)
        .await
        .expect("trashed");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let kept = trashed_id(
        trash(&c, "DROP TABLE customers CASCADE")
            .await
            .expect("trashed"),
    );
    let purged = run::purge_expired(&c).await.expect("purge expired");
    assert_eq!(purged.len(), 1);
    assert_eq!(run::list(&c).await.expect("list")[0].id, kept);

    // A partitioned table goes with its partitions and comes back whole.
    let before = snapshot(&c, "measurements").await;
    let rows_before = md5(&c, "measurements").await;
    let id = trashed_id(trash(&c, "DROP TABLE measurements").await.expect("trashed"));
    for name in ["measurements", "m2025", "m2026"] {
        assert!(!exists(&c, name).await, "{name}");
    }
    c.batch_execute("CREATE TABLE m2025 (x int)")
        .await
        .expect("name free");
    c.batch_execute("DROP TABLE m2025").await.expect("drop");
    run::restore(&c, id, None).await.expect("restored");
    assert_eq!(snapshot(&c, "measurements").await, before);
    assert_eq!(md5(&c, "measurements").await, rows_before);

    // What the trash cannot keep faithfully is refused, and nothing changes.
    for sql in [
        "DROP TABLE typed_use CASCADE",
        "DROP TABLE child_t",
        "DROP TABLE parent_t CASCADE",
        "DROP TABLE m2026",
    ] {
        match trash(&c, sql).await {
            Err(TrashError::NotFaithful(_)) => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert!(exists(&c, "typed_use").await && exists(&c, "child_t").await);

    // Concurrent drops of different tables on a database without a registry yet.
    c.batch_execute("CREATE DATABASE fresh").await.expect("db");
    let a = cluster.superuser_client_db("fresh").await;
    let b = cluster.superuser_client_db("fresh").await;
    a.batch_execute("CREATE TABLE one (id int); CREATE TABLE two (id int)")
        .await
        .expect("tables");
    let (ra, rb) = tokio::join!(trash(&a, "DROP TABLE one"), trash(&b, "DROP TABLE two"));
    trashed_id(ra.expect("one"));
    trashed_id(rb.expect("two"));
    assert_eq!(run::list(&a).await.expect("list").len(), 2);
}

/// `pgwarden trash list | restore | purge` against the cluster, password from a
/// variable, over TCP. Restore and purge refuse to run without an audit log (or
/// `--no-audit`); with one they append `restore`/`purge` records naming the
/// approver (the account by default, or `--as-approver`), the account, host and
/// database role, in a chain `pgwarden audit verify` accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trash_command_lists_restores_and_purges() {
    let (cluster, c) = fixture().await;
    let notes = md5(&c, "notes").await;
    let id = trashed_id(trash(&c, "DROP TABLE notes").await.expect("trashed"));
    let other = trashed_id(trash(&c, "DROP TABLE shipments").await.expect("trashed"));
    let url = format!(
        "host=127.0.0.1 port={} dbname={APP_DB} user={SUPERUSER}",
        cluster.port()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("trash-cli.jsonl");
    let run_cli = |args: &[&str], audit: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"));
        cmd.env_remove("PGWARDEN_TRASH_AUDIT");
        if let Some(a) = audit {
            cmd.env("PGWARDEN_TRASH_AUDIT", a);
        }
        let out = cmd
            .arg("trash")
            .args(args)
            .args([
                "--url",
                &url,
                "--password-env",
                "TRASH_TEST_PW",
                "--tls",
                "disable",
            ])
            .env("TRASH_TEST_PW", SUPERUSER_PASSWORD)
            .output()
            .expect("runs pgwarden");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let cli = |args: &[&str]| run_cli(args, Some(&audit));
    // Without an audit log, restore and purge refuse before touching the target.
    for args in [
        &["restore", "1"][..],
        &["purge", "1"],
        &["purge", "--expired"],
    ] {
        let (code, _, err) = run_cli(args, None);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("give --audit FILE"), "{err}");
    }
    assert_eq!(
        run::list(&c).await.expect("list").len(),
        2,
        "nothing changed"
    );
    let (code, out, err) = cli(&["list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("public.notes") && out.contains("public.shipments"),
        "{out}"
    );
    let (code, out, _) = cli(&["list", "--json"]);
    assert_eq!(code, Some(0));
    let items: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(items.as_array().map(Vec::len), Some(2));

    c.batch_execute("CREATE TABLE notes (x int)")
        .await
        .expect("taken");
    let (code, _, err) = cli(&["restore", &id.to_string()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("public.notes already exists"), "{err}");
    let (code, out, err) = cli(&["restore", &id.to_string(), "--as", "notes_back"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("restored trash item"), "{out}");
    assert_eq!(md5(&c, "notes_back").await, notes);

    let (code, out, err) = cli(&["purge", &other.to_string(), "--as-approver", "carol"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("purged trash item"), "{out}");
    let recs = crate::support::audit_file::records(&audit);
    let me = pgwarden::trash::who::os_account().expect("account").0;
    let restore: Vec<_> = recs.iter().filter(|r| r["event"] == "restore").collect();
    assert_eq!(
        restore.len(),
        1,
        "the refused restore wrote nothing: {recs:?}"
    );
    let r = restore[0];
    assert_eq!(r["item"], id);
    assert_eq!(r["original"], "public.notes");
    assert_eq!(r["restored_as"], "public.notes_back");
    assert_eq!(r["target"], APP_DB);
    assert_eq!(r["approver"], me.as_str(), "{r}");
    assert_eq!(r["cli"]["os_user"], me.as_str(), "{r}");
    assert_eq!(r["cli"]["db_user"], SUPERUSER, "{r}");
    assert!(
        r["cli"]["host"].as_str().is_some_and(|h| !h.is_empty()),
        "{r}"
    );
    let p = recs
        .iter()
        .find(|r| r["event"] == "purge")
        .expect("a purge record");
    assert_eq!(p["item"], other);
    assert_eq!(p["original"], "public.shipments");
    assert_eq!(p["reason"], "requested");
    assert_eq!(p["approver"], "carol");
    assert_eq!(p["cli"]["os_user"], me.as_str(), "the account is kept: {p}");
    let (ok, out) = crate::support::audit_file::verify(&[&audit]);
    assert!(ok, "{out}");
    let (code, out, _) = cli(&["purge", "--expired"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("purged 0 expired"), "{out}");
    let (code, out, _) = cli(&["list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("the trash is empty"), "{out}");
    let (code, _, err) = cli(&["purge", "999"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no trash item 999"), "{err}");
}
