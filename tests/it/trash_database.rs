//! The trash for `DROP DATABASE` through the proxy: directly the drop destroys
//! the database; through pgwarden (a trash rule on production) it is renamed to
//! `pgwarden_trash_db_<oid>` and closed to connections, the client gets `DROP
//! DATABASE` and a NOTICE, the name is free at once, restore brings it back with
//! its rows (md5) and is refused while the name is taken, purge removes it. Every
//! drop the server refuses gives the same error directly and through pgwarden;
//! what pgwarden cannot carry out faithfully gets the rule's fallback and changes
//! nothing.

use crate::support;
use crate::trash_proxy::{
    cli, item_of, notice, psql_trashes, refused_as_directly, server_error as err_of, through,
};
use crate::trash_table::{lines, md5};

use std::time::Duration;

use pgwarden::trash::run;
use support::guarded::*;
use support::*;
use tokio_postgres::Client;

/// Drops of databases go to the trash on production; the fallback refuses (PW002).
const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "databases-to-trash"
environment = "production"
classes = ["drop.database"]
action = "trash"
retention = "1h"
fallback = "block"
"#;

const OTHER: &str = "db_other";
const OWNER: &str = "db_owner_nocreatedb";
const PW: &str = "db-role-pw";

async fn has_db(c: &Client, name: &str) -> bool {
    lines(
        c,
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .await
        == ["1"]
}

/// A database `name` with a table of 500 rows, owned by `owner`.
async fn make_db(cluster: &PgCluster, su: &Client, name: &str, owner: &str) -> String {
    su.batch_execute(&format!("CREATE DATABASE {name} OWNER {owner}"))
        .await
        .expect("create database");
    let c = cluster.superuser_client_db(name).await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g;",
    )
    .await
    .expect("table");
    md5(&c, "t").await
}

async fn connect_direct(cluster: &PgCluster, db: &str) -> Result<Client, tokio_postgres::Error> {
    cluster.connect(SUPERUSER, SUPERUSER_PASSWORD, db).await
}

async fn fallback_of(c: &Client, sql: &str) -> String {
    let e = c.simple_query(sql).await.expect_err("the fallback refuses");
    let db = e.as_db_error().expect("a server-style error");
    assert_eq!(db.code().code(), "PW002", "{sql}: {db:?}");
    db.detail().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_database_is_renamed_closed_and_comes_back() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;

    // Directly, DROP DATABASE destroys it: connecting fails afterwards.
    make_db(&cluster, &su, "gone", SUPERUSER).await;
    su.batch_execute("DROP DATABASE gone").await.expect("drop");
    let e = connect_direct(&cluster, "gone").await.expect_err("gone");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("3D000"));

    let rows = make_db(&cluster, &su, "shop", SUPERUSER).await;
    su.batch_execute("COMMENT ON DATABASE shop IS 'the shop''s data'")
        .await
        .expect("comment");
    let pw_var = "PGWARDEN_TEST_TRASH_DATABASE_PW";
    std::env::set_var(pw_var, SUPERUSER_PASSWORD);
    let token_var = "PGWARDEN_TEST_TOKEN_TRASH_DATABASE";
    std::env::set_var(token_var, "tok-db");
    let proxy = prod_builder(&cluster)
        .policy_toml(POLICY)
        .admin(&[("carol", token_var)])
        .extra_toml(&format!(
            "\n[trash]\ntarget = \"{PROD}\"\nurl = \"host=127.0.0.1 port={} user={SUPERUSER} dbname={APP_DB}\"\n\
             password_env = \"{pw_var}\"\ntls = {{ mode = \"disable\" }}\n",
            cluster.port()
        ))
        .start()
        .await;

    // psql through pgwarden: the tag, and the NOTICE saying where it went.
    let stderr = psql_trashes(
        &proxy,
        "DROP DATABASE shop",
        "DROP DATABASE",
        "NOTICE:  pgwarden: database \"shop\" was moved to the trash as item ",
    )
    .await;
    let id = item_of(&stderr);
    let trash = format!("pgwarden_trash_db_{id}");
    assert!(
        stderr.contains(&format!("(database {trash}, closed to connections)"))
            && stderr.contains(&format!("pgwarden trash restore {id}")),
        "{stderr}"
    );
    assert!(!has_db(&su, "shop").await);
    assert_eq!(
        lines(
            &su,
            &format!("SELECT datallowconn FROM pg_database WHERE datname = '{trash}'")
        )
        .await,
        ["f"]
    );
    // Nobody can connect to the trash, not even the superuser.
    let e = connect_direct(&cluster, &trash).await.expect_err("closed");
    assert_eq!(
        e.as_db_error().map(|d| d.code().code()),
        Some("55000"),
        "{e:?}"
    );
    // Listed from any database of the cluster, by the CLI and the library.
    let items = run::list(&su).await.expect("list");
    let item = items.iter().find(|i| i.id == id).expect("listed");
    assert_eq!(
        (
            item.kind.as_str(),
            item.original().as_str(),
            item.trash_schema.as_str()
        ),
        ("database", "shop", trash.as_str())
    );
    assert!(item.size_bytes > 0 && item.expires_at.is_some() && !item.expired);
    let postgres = cluster.superuser_client_db("postgres").await;
    assert!(run::list(&postgres)
        .await
        .expect("list")
        .iter()
        .any(|i| i.id == id));
    let (code, stdout, stderr) = cli(&cluster, &["list"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&id.to_string()) && stdout.contains("shop"),
        "{stdout}"
    );

    // The admin API lists it through the shared handlers.
    use support::http::request;
    let admin = proxy.admin_addr().expect("admin");
    let l = request(admin, "GET", "/trash", Some("tok-db"), None).await;
    assert_eq!(l.status, 200, "{}", l.body);
    let v: serde_json::Value = serde_json::from_str(&l.body).expect("json");
    let listed = v["items"].as_array().expect("items");
    assert!(
        listed
            .iter()
            .any(|i| i["id"] == id && i["kind"] == "database" && i["original"] == "shop"),
        "{v}"
    );

    // The name is free at once; restore is refused while it is taken.
    su.batch_execute("CREATE DATABASE shop")
        .await
        .expect("the name is free");
    let path = format!("/trash/{id}/restore");
    let r = request(admin, "POST", &path, Some("tok-db"), None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let (code, _, stderr) = cli(&cluster, &["restore", &id.to_string()]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("database shop already exists"), "{stderr}");
    assert!(has_db(&su, &trash).await);
    su.batch_execute("DROP DATABASE shop")
        .await
        .expect("drop the new one");

    // Restore: the name, the rows, the comment and connections are back.
    let (code, stdout, stderr) = cli(&cluster, &["restore", &id.to_string()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("restored trash item"), "{stdout}");
    let back = cluster.superuser_client_db("shop").await;
    assert_eq!(md5(&back, "t").await, rows);
    assert_eq!(
        lines(
            &su,
            "SELECT datallowconn::text || ' ' || shobj_description(oid, 'pg_database')
               FROM pg_database WHERE datname = 'shop'"
        )
        .await,
        ["true the shop's data"]
    );
    assert!(!has_db(&su, &trash).await);
    drop(back);

    // Again through tokio-postgres (notices as they come), then purged.
    let (c, mut rx) = through(&proxy).await;
    let mut done = false;
    for _ in 0..50 {
        // The restore's check of "shop" just ended; its backend may still be
        // leaving (the drop would wait for it the same way).
        match c.simple_query("DROP DATABASE shop").await {
            Ok(_) => {
                done = true;
                break;
            }
            Err(e) if e.as_db_error().map(|d| d.code().code()) == Some("55006") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(done);
    let again = item_of(&notice(&mut rx).await);
    assert_eq!(again, id, "the OID stays the database's");
    // pgwarden's own trash is not trashed again: the fallback.
    let why = fallback_of(&c, &format!("DROP DATABASE {trash}")).await;
    assert!(why.contains("pgwarden's trash"), "{why}");
    let (code, _, stderr) = cli(&cluster, &["purge", &id.to_string()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!has_db(&su, &trash).await && !has_db(&su, "shop").await);
    assert!(run::list(&su).await.expect("list").is_empty());
    let (code, _, _) = cli(&cluster, &["purge", &id.to_string()]);
    assert_ne!(code, Some(0), "purged twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_database_refusals_are_the_servers_and_the_rest_falls_back() {
    let cluster = PgCluster::start();
    let su = cluster.superuser_client().await;
    su.batch_execute(&format!(
        "CREATE ROLE {OTHER} LOGIN PASSWORD '{PW}';
         CREATE ROLE {OWNER} LOGIN PASSWORD '{PW}';"
    ))
    .await
    .expect("roles");
    su.batch_execute("CREATE DATABASE tpl IS_TEMPLATE true")
        .await
        .expect("template");
    let rows = make_db(&cluster, &su, "shop", SUPERUSER).await;
    make_db(&cluster, &su, "mine", OWNER).await;
    let proxy = prod_builder(&cluster).policy_toml(POLICY).start().await;
    let (c, _rx) = through(&proxy).await;
    let direct = connect_direct(&cluster, APP_DB).await.expect("direct");

    // Refused by the server: the same error directly and through pgwarden.
    for sql in [
        "DROP DATABASE no_such_db",
        "DROP DATABASE app",
        "DROP DATABASE tpl",
        "DROP DATABASE IF EXISTS app",
    ] {
        refused_as_directly(&direct, &c, sql).await;
    }
    // Inside a transaction block.
    for client in [&direct, &c] {
        client.batch_execute("BEGIN").await.expect("begin");
    }
    let want = err_of(direct.simple_query("DROP DATABASE shop").await);
    let got = err_of(c.simple_query("DROP DATABASE shop").await);
    assert_eq!(got, want);
    assert!(want.contains("25001"), "{want}");
    for client in [&direct, &c] {
        client.batch_execute("ROLLBACK").await.expect("rollback");
    }
    // IF EXISTS of a missing database: the NOTICE and the tag, as directly.
    let sql = "DROP DATABASE IF EXISTS no_such_db";
    let d = cluster.psql(&["-c", sql]).await;
    let p = proxy
        .endpoint()
        .psql(SUPERUSER, SUPERUSER_PASSWORD, APP_DB, &["-c", sql])
        .await;
    d.assert_ok("direct");
    p.assert_ok("through");
    assert_eq!(
        (p.stdout.trim(), p.stderr.trim()),
        (d.stdout.trim(), d.stderr.trim())
    );
    assert!(
        d.stderr.contains("does not exist, skipping"),
        "{}",
        d.stderr
    );

    // Not the owner.
    let other_direct = cluster.connect(OTHER, PW, APP_DB).await.expect("other");
    let other = proxy
        .endpoint()
        .connect(OTHER, PW, APP_DB)
        .await
        .expect("other through");
    let want = err_of(other_direct.simple_query("DROP DATABASE shop").await);
    let got = err_of(other.simple_query("DROP DATABASE shop").await);
    assert_eq!(got, want);
    assert!(
        want.contains("42501 must be owner of database shop"),
        "{want}"
    );

    // Other sessions connected: 55006 with its DETAIL, after the same wait.
    let inside = cluster.superuser_client_db("shop").await;
    let want = err_of(direct.simple_query("DROP DATABASE shop").await);
    let got = err_of(c.simple_query("DROP DATABASE shop").await);
    assert_eq!(got, want);
    assert!(
        want.contains("55006") && want.contains("There is 1 other session using the database."),
        "{want}"
    );
    // WITH (FORCE) would end that session: pgwarden does not, so the fallback.
    let why = fallback_of(&c, "DROP DATABASE shop WITH (FORCE)").await;
    assert!(why.contains("WITH (FORCE)"), "{why}");
    assert_eq!(md5(&inside, "t").await, rows, "the session lives on");
    drop(inside);

    // The owner without CREATEDB may drop but not rename it: the fallback, and the
    // database stays (directly the drop would succeed).
    let owner = proxy
        .endpoint()
        .connect(OWNER, PW, APP_DB)
        .await
        .expect("owner through");
    let why = fallback_of(&owner, "DROP DATABASE mine").await;
    assert!(why.contains("no CREATEDB"), "{why}");
    assert!(has_db(&su, "mine").await);
    let owner_direct = cluster.connect(OWNER, PW, APP_DB).await.expect("owner");
    owner_direct
        .simple_query("DROP DATABASE mine")
        .await
        .expect("directly the owner drops it");
    assert!(has_db(&su, "shop").await);
    assert!(run::list(&su).await.expect("list").is_empty());
}
