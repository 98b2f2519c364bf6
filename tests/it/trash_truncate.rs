//! The trash for `TRUNCATE` through the proxy: under the rule's
//! `truncate_max_size`, the rows of every table the TRUNCATE empties (CASCADE,
//! partitions) are copied into the trash before it runs; the client gets
//! `TRUNCATE TABLE` and a NOTICE; a restore puts every row back (md5) with the
//! tables' triggers and sequences as they were, and refuses while a table has rows
//! again; a purge removes the copy; ROLLBACK undoes it; over the limit the fallback
//! applies; a TRUNCATE PostgreSQL refuses gives its own error.

use crate::support;
use crate::trash_proxy::{
    cli, item_of, notice, psql_trashes, refused_as_directly, registry_count, through, POLICY,
};
use crate::trash_table::{lines, md5};

use pgwarden::trash::run;
use support::guarded::*;
use support::*;
use tokio_postgres::Client;

const SETUP: &str = "
CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL,
  doubled int GENERATED ALWAYS AS (id * 2) STORED);
CREATE TABLE entries (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id int NOT NULL REFERENCES accounts, amount int NOT NULL);
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW.amount := NEW.amount + 1000; RETURN NEW; END$$;
CREATE TRIGGER entries_bump BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION bump();
INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 40) g;
INSERT INTO entries (account_id, amount) SELECT 1 + g % 40, g FROM generate_series(1, 300) g;
CREATE TABLE logs (id int, at date NOT NULL, msg text) PARTITION BY RANGE (at);
CREATE TABLE logs2025 PARTITION OF logs FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE logs2026 PARTITION OF logs FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO logs SELECT g, '2025-03-01'::date + g, md5(g::text) FROM generate_series(1, 500) g;
CREATE TABLE big (id int, pad text);
INSERT INTO big SELECT g, repeat('x', 500) FROM generate_series(1, 4000) g;
";

/// Rows, triggers' state and the sequences' next values, for comparison.
async fn state(c: &Client) -> Vec<String> {
    let mut out = vec![
        md5(c, "accounts").await,
        md5(c, "entries").await,
        md5(c, "logs2025").await,
        md5(c, "logs2026").await,
    ];
    out.extend(
        lines(
            c,
            "SELECT tgname || ' ' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
        )
        .await,
    );
    out
}

async fn count(c: &Client, table: &str) -> String {
    lines(c, &format!("SELECT count(*) FROM {table}"))
        .await
        .join("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_truncate_copies_the_rows_and_restore_puts_them_back() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(SETUP).await.expect("setup");
    let before = state(&su).await;
    // Directly (rolled back), the statement destroys the rows.
    let direct = cluster.superuser_client().await;
    direct.batch_execute("BEGIN").await.expect("begin");
    direct
        .batch_execute("TRUNCATE accounts RESTART IDENTITY CASCADE")
        .await
        .expect("runs directly");
    assert_eq!(count(&direct, "entries").await, "0");
    direct.batch_execute("ROLLBACK").await.expect("rollback");

    let policy = POLICY.replace(
        r#"classes = ["drop.table"]"#,
        "classes = [\"drop.table\", \"truncate\"]\ntruncate_max_size = \"1MB\"",
    );
    assert_ne!(policy, POLICY);
    let proxy = prod_builder(&cluster).policy_toml(&policy).start().await;
    let (c, mut rx) = through(&proxy).await;

    // Refused as directly: referenced without CASCADE, a missing table, a view.
    su.batch_execute("CREATE VIEW acc_v AS SELECT * FROM accounts")
        .await
        .expect("view");
    for sql in [
        "TRUNCATE accounts",
        "TRUNCATE no_such_table",
        "TRUNCATE acc_v",
    ] {
        refused_as_directly(&direct, &c, sql).await;
    }
    assert_eq!(registry_count(&su).await, 0);

    // Inside a transaction the copy is part of it: ROLLBACK leaves no item.
    c.batch_execute("BEGIN").await.expect("begin");
    c.simple_query("TRUNCATE accounts CASCADE")
        .await
        .expect("trashed");
    assert!(notice(&mut rx).await.contains("truncate cascades to table"));
    assert!(notice(&mut rx).await.contains("moved to the trash"));
    assert_eq!(count(&c, "entries").await, "0");
    c.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(state(&su).await, before);
    assert_eq!(registry_count(&su).await, 0);

    // Outside: the tag, the NOTICE, the tables empty, the identity restarted.
    let stderr = psql_trashes(&proxy, "TRUNCATE accounts RESTART IDENTITY CASCADE", "TRUNCATE TABLE", "NOTICE:  pgwarden: the rows of 2 tables (\"public\".\"accounts\", …) were moved to the trash").await;
    let id = item_of(&stderr);
    assert_eq!(count(&su, "accounts").await, "0");
    assert_eq!(count(&su, "entries").await, "0");
    // As after a real TRUNCATE: new rows start the identity again.
    su.batch_execute("INSERT INTO accounts (name) VALUES ('new')")
        .await
        .expect("insert");
    assert_eq!(lines(&su, "SELECT id FROM accounts").await, ["1"]);

    // A table with rows again: restore refuses and says why.
    let (code, _, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("public.accounts has rows again"), "{err}");
    let (code, _, err) = cli(&cluster, &["restore", &id.to_string(), "--as", "x"]);
    assert_eq!(code, Some(1), "{err}");
    su.batch_execute("DELETE FROM accounts")
        .await
        .expect("empty");
    let (code, out, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    // Every row back as it was (the trigger did not fire on the way back; the
    // generated column recomputed), and the sequences moved past them.
    assert_eq!(state(&su).await, before);
    su.batch_execute(
        "INSERT INTO accounts (name) VALUES ('next'); \
         INSERT INTO entries (account_id, amount) VALUES (1, 1)",
    )
    .await
    .expect("new rows get new ids");
    assert_eq!(
        lines(&su, "SELECT max(id) FROM accounts").await,
        ["41"],
        "40 rows restored: the next id is 41"
    );
    su.batch_execute("DELETE FROM entries WHERE id > 300; DELETE FROM accounts WHERE id > 40")
        .await
        .expect("tidy");
    assert_eq!(registry_count(&su).await, 0);

    // A partitioned table: every partition's rows come back.
    let parts = state(&su).await;
    c.simple_query("TRUNCATE logs").await.expect("trashed");
    assert_eq!(count(&su, "logs").await, "0");
    let id = run::list(&su).await.expect("list")[0].id;
    let (code, out, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(state(&su).await, parts);

    // Over the limit: the fallback, and the rows stay.
    let big = md5(&su, "big").await;
    let e = c.simple_query("TRUNCATE big").await.expect_err("fallback");
    let db = e.as_db_error().expect("server-style");
    assert_eq!(db.code().code(), "PW002", "{db:?}");
    assert!(
        db.detail()
            .unwrap_or_default()
            .contains("truncate_max_size"),
        "{db:?}"
    );
    assert_eq!(md5(&su, "big").await, big);
    assert!(usable(&c).await);

    // Purge: the copy is gone.
    c.simple_query("TRUNCATE logs").await.expect("trashed");
    let id = run::list(&su).await.expect("list")[0].id;
    let (code, out, err) = cli(&cluster, &["purge", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(registry_count(&su).await, 0);
    assert_eq!(
        lines(
            &su,
            &format!("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgwarden_trash_{id}'")
        )
        .await,
        ["0"]
    );
}
