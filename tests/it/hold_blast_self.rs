//! Blast radius in holds the author confirms (`confirm = "self"`), through the real
//! proxy: before refusing a DROP, TRUNCATE or DROP COLUMN with a confirmation token
//! (PW001), the session reads from the catalog what it would destroy, and the error's
//! detail says so, as an approver hold's notice does (tests/it/hold_blast.rs). The
//! confirming statement (with the token) is not read for again, and runs.

use crate::support;

use support::guarded::*;
use support::*;

const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "drops-confirm"
environment = "production"
classes = ["drop.*", "truncate", "alter.drop_column"]
action = "hold"
confirm = "self"
timeout = "5m"
message = "Confirm to run it."
"#;

const SCHEMA: &str = "
CREATE TABLE parent (id int PRIMARY KEY, note text);
INSERT INTO parent SELECT g, 'n' FROM generate_series(1, 5) g;
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent);
INSERT INTO child SELECT g, 1 + g % 5 FROM generate_series(1, 3) g;
CREATE TABLE one_row (id int);
INSERT INTO one_row VALUES (1);
";

/// The PW001 refusal of `sql`: (message, detail).
async fn refused(c: &tokio_postgres::Client, sql: &str) -> (String, String) {
    let e = c
        .batch_execute(sql)
        .await
        .expect_err("a self-confirm hold refuses first");
    let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e:?}"));
    assert_eq!(db.code().code(), "PW001", "{sql}: {db:?}");
    (
        db.message().to_string(),
        db.detail().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_confirm_hold_shows_what_would_be_destroyed() {
    let cluster = PgCluster::builder()
        .setting("log_statement", "'all'")
        .start();
    su_exec(
        &cluster,
        &format!("GRANT ALL ON SCHEMA public TO {SCRAM_USER}; SET ROLE {SCRAM_USER}; {SCHEMA} RESET ROLE;"),
    )
    .await;
    let proxy = prod_builder(&cluster).policy_toml(POLICY).start().await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    for (sql, want) in [
        (
            "TRUNCATE parent CASCADE",
            "would empty public.parent (5 rows), and through foreign keys public.child (3 rows)",
        ),
        (
            "ALTER TABLE parent DROP COLUMN note",
            "would drop a column of public.parent (5 rows)",
        ),
        (
            "DROP TABLE parent CASCADE",
            "would drop public.parent (5 rows) and 1 dependent object \
             (table constraint child_parent_id_fkey on public.child)",
        ),
    ] {
        let (message, detail) = refused(&c, sql).await;
        assert!(message.contains("drops-confirm"), "{sql}: {message}");
        assert!(
            detail.starts_with(&format!(
                "pgwarden read the catalog: this {want}. Confirm to run it."
            )),
            "{sql}\n got: {detail}\nwant: {want}"
        );
    }
    assert_eq!(server_count(&cluster, "parent").await, 5);
    assert_eq!(server_count(&cluster, "child").await, 3);

    // Inside a transaction: read under pgwarden's savepoint; the refusal then fails
    // the transaction, as any error there does, and ROLLBACK ends it as usual.
    c.batch_execute("BEGIN; SET LOCAL lock_timeout = '7s'")
        .await
        .unwrap();
    let (_, detail) = refused(&c, "DROP TABLE one_row").await;
    assert!(
        detail.starts_with("pgwarden read the catalog: this would drop public.one_row (1 row)"),
        "{detail}"
    );
    expect_code(c.simple_query("SELECT 1").await, "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert!(usable(&c).await);

    // Confirmed with the token: runs, with no second catalog read.
    let (message, _) = refused(&c, "DROP TABLE one_row /* b-self */").await;
    let token = token_of(&message);
    let reads_before = cluster.log().matches("pg_depend").count();
    c.batch_execute(&format!(
        "/* pgwarden:confirm={token} */ DROP TABLE one_row /* b-self */"
    ))
    .await
    .unwrap();
    assert!(!server_table_exists(&cluster, "one_row").await);
    assert_eq!(
        cluster.log().matches("pg_depend").count(),
        reads_before,
        "the confirmed statement was read for again"
    );
    proxy.shutdown().await;
}
