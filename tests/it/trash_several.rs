//! The trash for `DROP TABLE a, b [CASCADE]` through the proxy: all the tables the
//! statement names go to the trash as one item; the names are free at once, a
//! restore brings every table back identical (catalog snapshot, md5 of the rows),
//! a purge removes them, ROLLBACK undoes the drop, and drops PostgreSQL refuses
//! give its own error.

use crate::support;
use crate::trash_proxy::{
    cli, exists, item_of, notice, refused_as_directly, registry_count, through, trash_proxy,
};
use crate::trash_table::{lines, md5, snapshot, SCHEMA};

use pgwarden::trash::run;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_several_tables_go_as_one_item_and_come_back() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(SCHEMA).await.expect("schema");
    let tables = ["notes", "shipments"];
    let mut before = Vec::new();
    for t in tables {
        before.push((snapshot(&su, t).await, md5(&su, t).await));
    }
    // Directly (rolled back), the statement destroys both tables.
    let direct = cluster.superuser_client().await;
    direct.batch_execute("BEGIN").await.expect("begin");
    direct
        .batch_execute("DROP TABLE notes, shipments")
        .await
        .expect("runs directly");
    assert!(!exists(&direct, "notes").await && !exists(&direct, "shipments").await);
    direct.batch_execute("ROLLBACK").await.expect("rollback");

    let proxy = trash_proxy(&cluster).await;
    let (c, mut rx) = through(&proxy).await;

    // Refusals: the server's own error, through pgwarden as directly.
    for sql in [
        "DROP TABLE notes, no_such_table",
        "DROP TABLE notes, orders",
        "DROP TABLE notes, big_orders",
    ] {
        refused_as_directly(&direct, &c, sql).await;
    }
    assert_eq!(registry_count(&su).await, 0);

    // Inside a transaction, ROLLBACK undoes it.
    c.batch_execute("BEGIN").await.expect("begin");
    c.simple_query("DROP TABLE notes, shipments")
        .await
        .expect("trashed");
    assert!(notice(&mut rx).await.contains("were moved to the trash"));
    assert!(!exists(&c, "notes").await && !exists(&c, "shipments").await);
    c.batch_execute("ROLLBACK").await.expect("rollback");
    for (t, (snap, rows)) in tables.iter().zip(&before) {
        assert_eq!(&snapshot(&su, t).await, snap, "{t} after ROLLBACK");
        assert_eq!(&md5(&su, t).await, rows, "{t} after ROLLBACK");
    }
    assert_eq!(registry_count(&su).await, 0);

    // Outside: one item with both tables; the names are free, and orders (which
    // shipments referenced) no longer has a key pointing at it.
    let msgs = c
        .simple_query("DROP TABLE notes, shipments")
        .await
        .expect("the drop is answered as a DROP");
    assert!(msgs
        .iter()
        .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(_))));
    let told = notice(&mut rx).await;
    assert!(
        told.contains("tables \"public\".\"notes\", \"public\".\"shipments\" were moved"),
        "{told}"
    );
    let id = item_of(&told);
    let items = run::list(&su).await.expect("list");
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].moved.iter().filter(|m| m.role == "table").count(),
        2
    );
    for name in ["notes", "notes_pkey", "shipments", "shipments_pkey"] {
        assert!(!exists(&su, name).await, "{name} still there");
    }
    assert_eq!(
        lines(
            &su,
            "SELECT count(*) FROM pg_constraint WHERE confrelid = 'orders'::regclass"
        )
        .await,
        ["0"]
    );
    c.batch_execute("CREATE TABLE notes (x int); CREATE TABLE shipments (y int)")
        .await
        .expect("the names are free");

    // Restore: refused while a name is taken, and --as is for one table.
    let (code, _, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("already exist"), "{err}");
    let (code, _, err) = cli(&cluster, &["restore", &id.to_string(), "--as", "n2"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--as"), "{err}");
    su.batch_execute("DROP TABLE notes, shipments")
        .await
        .expect("drop the new ones directly");
    let (code, out, err) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    for (t, (snap, rows)) in tables.iter().zip(&before) {
        assert_eq!(&snapshot(&su, t).await, snap, "{t} restored");
        assert_eq!(&md5(&su, t).await, rows, "{t} restored");
    }
    assert_eq!(registry_count(&su).await, 0);

    // Purge: gone for good.
    c.simple_query("DROP TABLE notes, shipments CASCADE")
        .await
        .expect("trashed");
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
    assert!(!exists(&su, "notes").await && !exists(&su, "shipments").await);
}
