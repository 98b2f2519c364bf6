//! The trash for `DROP SCHEMA` through the proxy: the schema is renamed into the
//! trash, so its name is free at once; restore renames it back with every object
//! and row (md5, catalog snapshot); purge removes it; ROLLBACK undoes it; a schema
//! that objects elsewhere depend on (or whose objects depend on relations
//! elsewhere) gets the fallback; a drop PostgreSQL refuses gives its own error.

use crate::support;
use crate::trash_proxy::{cli, psql_trashes, refused_as_directly, registry_count, through, POLICY};
use crate::trash_table::{lines, md5};

use pgwarden::trash::run;
use support::guarded::*;
use support::*;
use tokio_postgres::Client;

const SETUP: &str = "
CREATE SCHEMA side;
CREATE TABLE side.t (id serial PRIMARY KEY, v text);
INSERT INTO side.t (v) SELECT md5(g::text) FROM generate_series(1, 120) g;
CREATE TABLE side.c (id int PRIMARY KEY, t_id int REFERENCES side.t);
INSERT INTO side.c SELECT g, g FROM generate_series(1, 10) g;
CREATE VIEW side.v AS SELECT count(*) AS n FROM side.t;
CREATE FUNCTION side.f(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1';
CREATE TABLE base (id int PRIMARY KEY);
CREATE SCHEMA rep;
CREATE VIEW rep.r AS SELECT * FROM public.base;
CREATE SCHEMA used;
CREATE TABLE used.u (id int);
CREATE VIEW uses_used AS SELECT * FROM used.u;
";

/// The schema's objects and their definitions.
async fn schema_snapshot(c: &Client) -> Vec<String> {
    lines(
        c,
        "SELECT 'rel ' || c.relname || ' ' || c.relkind::text || ' '
             || coalesce(pg_get_viewdef(c.oid), '') FROM pg_class c
           WHERE c.relnamespace = 'side'::regnamespace
         UNION ALL SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
           WHERE connamespace = 'side'::regnamespace
         UNION ALL SELECT 'fn ' || pg_get_functiondef(p.oid) FROM pg_proc p
           WHERE p.pronamespace = 'side'::regnamespace
         ORDER BY 1",
    )
    .await
}

async fn has_schema(c: &Client, name: &str) -> bool {
    lines(
        c,
        &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{name}'"),
    )
    .await
        == ["1"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_schema_is_renamed_and_comes_back() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(SETUP).await.expect("setup");
    let before = schema_snapshot(&su).await;
    let rows = (md5(&su, "side.t").await, md5(&su, "side.c").await);
    // Directly (rolled back), the drop destroys the schema's tables.
    let direct = cluster.superuser_client().await;
    direct.batch_execute("BEGIN").await.expect("begin");
    direct
        .batch_execute("DROP SCHEMA side CASCADE")
        .await
        .expect("runs directly");
    assert!(!has_schema(&direct, "side").await);
    direct.batch_execute("ROLLBACK").await.expect("rollback");

    let policy = POLICY.replace(
        r#"classes = ["drop.table"]"#,
        r#"classes = ["drop.table", "drop.schema"]"#,
    );
    assert_ne!(policy, POLICY);
    let proxy = prod_builder(&cluster).policy_toml(&policy).start().await;
    let (c, _rx) = through(&proxy).await;

    // Refused as directly: not empty without CASCADE, a missing schema.
    for sql in ["DROP SCHEMA side", "DROP SCHEMA no_such_schema"] {
        refused_as_directly(&direct, &c, sql).await;
    }
    // Not faithful: the fallback (PW002 here) with the reason, nothing changed.
    for (sql, why) in [
        (
            "DROP SCHEMA used CASCADE",
            "objects outside the schema depend on it",
        ),
        ("DROP SCHEMA rep CASCADE", "depend on relations outside it"),
        ("DROP SCHEMA side, rep CASCADE", "several schemas"),
    ] {
        let e = c.simple_query(sql).await.expect_err("fallback");
        let db = e.as_db_error().expect("server-style");
        assert_eq!(db.code().code(), "PW002", "{sql}: {db:?}");
        assert!(
            db.detail().unwrap_or_default().contains(why),
            "{sql}: {db:?}"
        );
        assert!(usable(&c).await, "{sql}");
    }
    assert!(has_schema(&su, "used").await && has_schema(&su, "rep").await);
    assert_eq!(registry_count(&su).await, 0);

    // ROLLBACK undoes it.
    c.batch_execute("BEGIN").await.expect("begin");
    c.simple_query("DROP SCHEMA side CASCADE")
        .await
        .expect("trashed");
    assert!(!has_schema(&c, "side").await);
    c.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(schema_snapshot(&su).await, before);
    assert_eq!(registry_count(&su).await, 0);

    // psql sees DROP SCHEMA and the NOTICE; the name is free.
    psql_trashes(
        &proxy,
        "DROP SCHEMA side CASCADE",
        "DROP SCHEMA",
        "NOTICE:  pgwarden: schema \"side\" was moved to the trash",
    )
    .await;
    assert!(!has_schema(&su, "side").await);
    let items = run::list(&su).await.expect("list");
    assert_eq!(items[0].kind, "schema");
    let id = items[0].id;
    c.batch_execute("CREATE SCHEMA side; CREATE TABLE side.t (x int)")
        .await
        .expect("the name is free");
    let (code, _, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("schema side already exists"), "{err}");
    su.batch_execute("DROP SCHEMA side CASCADE")
        .await
        .expect("drop the new one directly");
    let (code, out, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(schema_snapshot(&su).await, before);
    assert_eq!((md5(&su, "side.t").await, md5(&su, "side.c").await), rows);
    assert_eq!(
        lines(&su, "SELECT side.f(n::int) FROM side.v").await,
        ["121"]
    );

    // Purge.
    c.simple_query("DROP SCHEMA side CASCADE")
        .await
        .expect("trashed");
    let id = run::list(&su).await.expect("list")[0].id;
    let (code, out, err) = cli(&cluster, &["purge", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(registry_count(&su).await, 0);
    assert!(!has_schema(&su, &format!("pgwarden_trash_{id}")).await);
}
