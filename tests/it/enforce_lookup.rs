//! Statements whose class depends on the target's catalog, through the real proxy on
//! a production target with the built-in policy (holds turned into blocks, as in
//! enforce_adversarial): a column type change the catalog shows to be metadata-only
//! runs at once (`alter.column_widen`), and a TRUNCATE of the session's own
//! temporary table is a write. Each destructive variant is first shown to destroy
//! data when sent directly, then shown to change nothing through pgwarden.

use crate::enforce_adversarial::all_holds_block;
use crate::support::guarded::*;
use crate::support::*;

const SETUP: &str = "
CREATE TABLE w (id int PRIMARY KEY, name varchar(40), price numeric(10,2),
                code varchar(40) COLLATE \"C\", bits varbit(8));
INSERT INTO w SELECT g, 'customer number ' || g, g + 0.25, 'c' || g, B'1011'
  FROM generate_series(1, 20) g;
";

async fn setup(cluster: &PgCluster, table: &str) {
    su_exec(
        cluster,
        &format!(
            "GRANT ALL ON SCHEMA public TO {SCRAM_USER};
             {}
             ALTER TABLE {table} OWNER TO {SCRAM_USER};",
            SETUP.replace(" w ", &format!(" {table} "))
        ),
    )
    .await;
}

async fn one(cluster: &PgCluster, sql: &str) -> String {
    let c = cluster.superuser_client().await;
    let v: Option<String> = c.query_one(sql, &[]).await.expect(sql).get(0);
    v.unwrap_or_default()
}

/// The column's type as `format_type` shows it.
async fn column_type(cluster: &PgCluster, table: &str, column: &str) -> String {
    one(
        cluster,
        &format!(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = '{table}'::regclass AND attname = '{column}'"
        ),
    )
    .await
}

async fn fingerprint(cluster: &PgCluster, table: &str) -> String {
    one(
        cluster,
        &format!("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM {table} t"),
    )
    .await
}

/// Type changes that lose data without USING or with it: each is run directly on a
/// copy first and must change its values.
const DESTRUCTIVE: &[&str] = &[
    "ALTER TABLE TBL ALTER COLUMN price TYPE numeric(12,0)",
    "ALTER TABLE TBL ALTER COLUMN price TYPE numeric(10,1)",
    "ALTER TABLE TBL ALTER COLUMN name TYPE varchar(5) USING substr(name, 1, 5)",
    "ALTER TABLE TBL ALTER COLUMN name TYPE varchar(120), ALTER COLUMN price TYPE int",
    "ALTER TABLE TBL ALTER COLUMN bits TYPE varbit(2) USING substring(bits from 1 for 2)",
    "ALTER TABLE TBL ALTER COLUMN name TYPE text USING ''",
];

/// Type changes that are not metadata-only but do not lose data: held all the same.
const NOT_METADATA_ONLY: &[&str] = &[
    "ALTER TABLE TBL ALTER COLUMN id TYPE bigint",
    "ALTER TABLE TBL ALTER COLUMN code TYPE text",
    "ALTER TABLE TBL ALTER COLUMN name TYPE varchar(40) COLLATE \"C\"",
    "ALTER TABLE TBL ALTER COLUMN name TYPE char(60)",
    "ALTER TABLE TBL ALTER COLUMN name TYPE varchar(30)",
    "ALTER TABLE TBL ALTER COLUMN price TYPE numeric(12,3)",
    "ALTER TABLE TBL ALTER COLUMN name TYPE varchar(120)[] USING ARRAY[name]",
    "ALTER TABLE missing_table ALTER COLUMN name TYPE varchar(120)",
    "ALTER TABLE TBL ALTER COLUMN missing_column TYPE varchar(120)",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_only_type_change_runs_and_a_rewrite_is_stopped() {
    let cluster = PgCluster::start();
    setup(&cluster, "w").await;
    setup(&cluster, "w_direct").await;
    let proxy = prod_builder(&cluster)
        .policy_toml(&all_holds_block())
        .start()
        .await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    let direct = cluster.superuser_client().await;

    for sql in DESTRUCTIVE {
        let before = fingerprint(&cluster, "w_direct").await;
        direct
            .batch_execute(&format!(
                "BEGIN; {}; COMMIT",
                sql.replace("TBL", "w_direct")
            ))
            .await
            .unwrap_or_else(|e| panic!("directly: {sql}: {e:?}"));
        assert_ne!(
            fingerprint(&cluster, "w_direct").await,
            before,
            "not destructive directly: {sql}"
        );
        su_exec(&cluster, "DROP TABLE w_direct").await;
        setup(&cluster, "w_direct").await;
    }

    let unchanged = fingerprint(&cluster, "w").await;
    for sql in DESTRUCTIVE.iter().chain(NOT_METADATA_ONLY) {
        let sql = sql.replace("TBL", "w");
        let m = expect_code(c.simple_query(&sql).await, "PW002");
        assert!(m.contains("alter.column_type"), "{sql}: {m}");
        assert_eq!(fingerprint(&cluster, "w").await, unchanged, "{sql}");
        assert_eq!(
            column_type(&cluster, "w", "name").await,
            "character varying(40)"
        );
        assert_eq!(column_type(&cluster, "w", "price").await, "numeric(10,2)");
        assert!(usable(&c).await, "{sql}: connection unusable");
    }

    // Metadata-only: they run, the values stay as they were.
    for (sql, column, now) in [
        (
            "ALTER TABLE w ALTER COLUMN name TYPE varchar(120)",
            "name",
            "character varying(120)",
        ),
        (
            "ALTER TABLE public.w ALTER name TYPE character varying",
            "name",
            "character varying",
        ),
        ("ALTER TABLE w ALTER COLUMN name TYPE text", "name", "text"),
        (
            "ALTER TABLE w ALTER COLUMN price TYPE numeric(12,2)",
            "price",
            "numeric(12,2)",
        ),
        (
            "ALTER TABLE w ALTER COLUMN price TYPE numeric, ALTER COLUMN bits TYPE varbit(16)",
            "price",
            "numeric",
        ),
    ] {
        c.simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        assert_eq!(column_type(&cluster, "w", column).await, now, "{sql}");
        assert_eq!(fingerprint(&cluster, "w").await, unchanged, "{sql}");
    }
    assert_eq!(column_type(&cluster, "w", "bits").await, "bit varying(16)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lookup_runs_inside_the_clients_transaction_and_leaves_it_as_it_was() {
    let cluster = PgCluster::builder()
        .setting("log_statement", "'all'")
        .start();
    setup(&cluster, "w").await;
    let proxy = prod_builder(&cluster)
        .policy_toml(&all_holds_block())
        .start()
        .await;
    let c = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    c.batch_execute("BEGIN; SAVEPOINT mine; INSERT INTO w (id, name) VALUES (100, 'before')")
        .await
        .unwrap();
    c.simple_query("ALTER TABLE w ALTER COLUMN name TYPE varchar(200)")
        .await
        .unwrap();
    c.batch_execute(&format!(
        "INSERT INTO w (id, name) VALUES (101, '{}'); ROLLBACK TO SAVEPOINT mine; \
         INSERT INTO w (id, name) VALUES (102, 'after'); COMMIT",
        "x".repeat(150)
    ))
    .await
    .unwrap();
    // The client's savepoint undid its insert and the type change together, as
    // directly; its transaction went on and committed.
    assert_eq!(
        column_type(&cluster, "w", "name").await,
        "character varying(40)"
    );
    assert_eq!(
        one(
            &cluster,
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM w WHERE id >= 100"
        )
        .await,
        "102"
    );
    assert!(
        cluster.log().contains("SAVEPOINT pgwarden_"),
        "the lookup did not run under pgwarden's savepoint"
    );

    // A lookup that fails (no access to pg_attribute) proves nothing: the change
    // is stopped, and the client's transaction is untouched.
    su_exec(
        &cluster,
        "REVOKE SELECT ON pg_catalog.pg_attribute FROM PUBLIC",
    )
    .await;
    c.batch_execute("BEGIN; INSERT INTO w (id, name) VALUES (103, 'kept')")
        .await
        .unwrap();
    let m = expect_code(
        c.simple_query("ALTER TABLE w ALTER COLUMN name TYPE varchar(200)")
            .await,
        "PW002",
    );
    assert!(m.contains("alter.column_type"), "{m}");
    c.batch_execute("ROLLBACK").await.unwrap();
    su_exec(
        &cluster,
        "GRANT SELECT ON pg_catalog.pg_attribute TO PUBLIC",
    )
    .await;
    assert_eq!(
        column_type(&cluster, "w", "name").await,
        "character varying(40)"
    );
    // Outside a transaction, with the catalog readable again: it runs.
    c.simple_query("ALTER TABLE w ALTER COLUMN name TYPE varchar(200)")
        .await
        .unwrap();
    assert_eq!(
        column_type(&cluster, "w", "name").await,
        "character varying(200)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_of_the_sessions_own_temporary_table_is_a_write() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "tt", 10, SCRAM_USER).await;
    victim_table(&cluster, "other", 10, SCRAM_USER).await;
    let proxy = prod_builder(&cluster)
        .policy_toml(&all_holds_block())
        .start()
        .await;
    let ep = proxy.endpoint();
    let c = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    // Directly, a TRUNCATE of the temporary table's name empties the permanent one
    // once search_path puts pg_temp after public.
    let direct = cluster
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    direct
        .batch_execute(
            "CREATE TABLE shadowed AS SELECT g FROM generate_series(1, 5) g; \
             CREATE TEMP TABLE shadowed (g int); \
             SET search_path = public, pg_temp; TRUNCATE shadowed",
        )
        .await
        .unwrap();
    assert_eq!(server_count(&cluster, "public.shadowed").await, 0);

    // The session's own temporary table: a write, through pgwarden too.
    c.batch_execute("CREATE TEMP TABLE tt AS SELECT g FROM generate_series(1, 5) g")
        .await
        .unwrap();
    c.simple_query("TRUNCATE tt").await.unwrap();
    c.batch_execute("INSERT INTO tt VALUES (1); BEGIN")
        .await
        .unwrap();
    c.simple_query("TRUNCATE TABLE tt RESTART IDENTITY")
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    c.simple_query("TRUNCATE pg_temp.tt, tt").await.unwrap();
    assert_eq!(server_count(&cluster, "public.tt").await, 10);

    // With pg_temp after public the name means the permanent table: stopped.
    let stopped = [
        "SET search_path = public, pg_temp",
        "SET search_path = \"$user\", public, pg_temp",
    ];
    for set in stopped {
        c.batch_execute(set).await.unwrap();
        let m = expect_code(c.simple_query("TRUNCATE tt").await, "PW002");
        assert!(m.contains("truncate"), "{set}: {m}");
        assert_eq!(server_count(&cluster, "public.tt").await, 10, "{set}");
        c.batch_execute("RESET search_path").await.unwrap();
    }
    // Explicitly first: still the temporary table.
    c.batch_execute("SET search_path = pg_temp, public")
        .await
        .unwrap();
    c.simple_query("TRUNCATE tt").await.unwrap();
    c.batch_execute("RESET search_path").await.unwrap();

    // A permanent table among them, a table with no temporary namesake, a
    // temporary table with triggers (a foreign key's): stopped, nothing emptied.
    c.batch_execute(
        "CREATE TEMP TABLE tp (id int PRIMARY KEY); \
         CREATE TEMP TABLE tc (id int REFERENCES tp); INSERT INTO tp VALUES (1); \
         INSERT INTO tc VALUES (1)",
    )
    .await
    .unwrap();
    for sql in [
        "TRUNCATE tt, other",
        "TRUNCATE other",
        "TRUNCATE public.tt",
        "TRUNCATE tc",
        "TRUNCATE tp CASCADE",
    ] {
        let m = expect_code(c.simple_query(sql).await, "PW002");
        assert!(m.contains("truncate"), "{sql}: {m}");
        assert_eq!(server_count(&cluster, "public.tt").await, 10, "{sql}");
        assert_eq!(server_count(&cluster, "other").await, 10, "{sql}");
        assert!(usable(&c).await, "{sql}");
    }
    let tc: i64 = c
        .query_one("SELECT count(*) FROM tc", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tc, 1);
}
