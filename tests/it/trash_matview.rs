//! The trash for `DROP MATERIALIZED VIEW` (class `drop.view`) through the proxy:
//! the materialized view (with its rows, indexes, grants, and with CASCADE the
//! views over it) moves into the trash; the name is free at once, a restore brings
//! it back identical (definition, indexes, md5 of the rows), a purge removes it,
//! ROLLBACK undoes it, and a drop PostgreSQL refuses gives its own error.

use crate::support;
use crate::trash_proxy::{
    cli, exists, item_of, notice, psql_trashes, refused_as_directly, registry_count, through,
    POLICY,
};
use crate::trash_table::{lines, md5};

use pgwarden::trash::run;
use support::guarded::*;
use support::*;
use tokio_postgres::Client;

const SETUP: &str = "
CREATE TABLE kept (id int PRIMARY KEY, v text);
INSERT INTO kept SELECT i, md5(i::text) FROM generate_series(1, 200) i;
CREATE MATERIALIZED VIEW kept_mv AS SELECT id, v FROM kept WHERE id % 2 = 0;
CREATE UNIQUE INDEX kept_mv_id ON kept_mv (id);
CREATE VIEW over_mv AS SELECT count(*) AS n FROM kept_mv;
CREATE ROLE mv_reader;
GRANT SELECT ON kept_mv TO mv_reader;
";

/// The materialized view's definition, indexes, grants and dependent views.
async fn mv_snapshot(c: &Client) -> Vec<String> {
    lines(
        c,
        "SELECT 'def ' || pg_get_viewdef('public.kept_mv'::regclass)
         UNION ALL SELECT 'idx ' || pg_get_indexdef(indexrelid) FROM pg_index
           WHERE indrelid = 'public.kept_mv'::regclass
         UNION ALL SELECT 'rel ' || relname || ' ' || relnamespace::regnamespace || ' '
           || relkind::text || ' ' || coalesce(relacl::text, '-') || ' ' || relispopulated
           FROM pg_class WHERE oid = 'public.kept_mv'::regclass
         UNION ALL SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
           FROM pg_class c WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace
         ORDER BY 1",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_matview_moves_and_comes_back_identical() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(SETUP).await.expect("setup");
    let before = mv_snapshot(&su).await;
    let rows = md5(&su, "kept_mv").await;
    // Directly (rolled back), the drop destroys the materialized view's rows.
    let direct = cluster.superuser_client().await;
    direct.batch_execute("BEGIN").await.expect("begin");
    direct
        .batch_execute("DROP MATERIALIZED VIEW kept_mv CASCADE")
        .await
        .expect("runs directly");
    assert!(!exists(&direct, "kept_mv").await);
    direct.batch_execute("ROLLBACK").await.expect("rollback");

    let policy = POLICY.replace(
        r#"classes = ["drop.table"]"#,
        r#"classes = ["drop.table", "drop.view"]"#,
    );
    assert_ne!(policy, POLICY);
    let proxy = prod_builder(&cluster).policy_toml(&policy).start().await;
    let (c, mut rx) = through(&proxy).await;

    // Refused as directly: a dependent view without CASCADE, a missing one, a
    // table named as a materialized view.
    for sql in [
        "DROP MATERIALIZED VIEW kept_mv",
        "DROP MATERIALIZED VIEW no_such_mv",
        "DROP MATERIALIZED VIEW kept",
    ] {
        refused_as_directly(&direct, &c, sql).await;
    }

    // ROLLBACK undoes it.
    c.batch_execute("BEGIN").await.expect("begin");
    c.simple_query("DROP MATERIALIZED VIEW kept_mv CASCADE")
        .await
        .expect("trashed");
    assert!(notice(&mut rx)
        .await
        .contains("drop cascades to view over_mv"));
    assert!(notice(&mut rx).await.contains("moved to the trash"));
    c.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(mv_snapshot(&su).await, before);
    assert_eq!(registry_count(&su).await, 0);

    // psql sees the server's tag.
    let stderr = psql_trashes(
        &proxy,
        "DROP MATERIALIZED VIEW kept_mv CASCADE",
        "DROP MATERIALIZED VIEW",
        "NOTICE:  pgwarden: materialized view \"public\".\"kept_mv\" was moved to the trash",
    )
    .await;
    let id = item_of(&stderr);
    assert!(!exists(&su, "kept_mv").await && !exists(&su, "over_mv").await);
    assert!(!exists(&su, "kept_mv_id").await, "the index moved too");
    let items = run::list(&su).await.expect("list");
    assert_eq!(items[0].kind, "materialized_view");
    c.batch_execute("CREATE MATERIALIZED VIEW kept_mv AS SELECT 1 AS x")
        .await
        .expect("the name is free");
    let (code, _, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("public.kept_mv already exists"), "{err}");
    su.batch_execute("DROP MATERIALIZED VIEW kept_mv")
        .await
        .expect("drop the new one");
    let (code, out, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(mv_snapshot(&su).await, before);
    assert_eq!(md5(&su, "kept_mv").await, rows);
    assert_eq!(lines(&su, "SELECT n FROM over_mv").await, ["100"]);

    // Purge.
    c.simple_query("DROP MATERIALIZED VIEW kept_mv CASCADE")
        .await
        .expect("trashed");
    let id = run::list(&su).await.expect("list")[0].id;
    let (code, out, err) = cli(&cluster, &["purge", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(registry_count(&su).await, 0);
    assert!(!exists(&su, &format!("pgwarden_trash_{id}.kept_mv")).await);
}
