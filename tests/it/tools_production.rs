//! Routine tools against a production target with the example (built-in) policy: a
//! guard that stops routine work gets switched off. pg_dump in every format and
//! psql's `\d` family read production through pgwarden with zero refusals;
//! pg_restore (custom, directory, tar) and `psql -f` of a plain dump write into a
//! staging target through pgwarden, and the restored data matches.

use crate::support::guarded::su_exec;
use crate::support::*;

const STAGING_DB: &str = "staging_copy";

/// A schema with what real databases have: serial and identity keys, a foreign key,
/// an index, a view, a materialized view, a PL/pgSQL trigger, a comment, an enum, a
/// domain and a large object.
const SCHEMA: &str = r#"
GRANT ALL ON SCHEMA public TO scram_user;
SET ROLE scram_user;
CREATE TYPE mood AS ENUM ('ok', 'meh');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, m mood DEFAULT 'ok');
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id int REFERENCES customers(id) ON DELETE CASCADE,
    qty positive,
    note varchar(40),
    updated_at timestamptz DEFAULT now()
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE qty > 10;
CREATE MATERIALIZED VIEW order_totals AS SELECT customer_id, sum(qty) AS total FROM orders GROUP BY 1;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
COMMENT ON TABLE orders IS 'what customers bought';
INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 20) g;
INSERT INTO orders (customer_id, qty, note) SELECT 1 + g % 20, 1 + g % 30, 'n' || g FROM generate_series(1, 200) g;
REFRESH MATERIALIZED VIEW order_totals;
SELECT lo_from_bytea(0, 'large object body');
RESET ROLE;
"#;

fn prod_and_staging(cluster: &PgCluster) -> ProxyBuilder {
    TestProxy::builder()
        .target(TargetSpec::production("prod", cluster).databases(&[APP_DB]))
        .target(
            TargetSpec::for_cluster("staging", cluster)
                .environment("staging")
                .databases(&[STAGING_DB]),
        )
}

async fn run(ep: &Endpoint, tool: &str, db: &str, args: &[&str]) -> CmdOutput {
    ep.run_tool(
        tool,
        SCRAM_USER,
        SCRAM_PASSWORD,
        db,
        args,
        std::time::Duration::from_secs(120),
    )
    .await
}

/// No statement refused: pgwarden's SQLSTATEs never appear in a tool's output.
fn no_refusals(out: &CmdOutput, what: &str) {
    out.assert_ok(what);
    for code in ["PW001", "PW002", "PW003", "PW004", "PW005", "pgwarden"] {
        assert!(
            !out.stderr.contains(code) && !out.stdout.contains(code),
            "{what}: {code} in output:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

async fn fresh_staging(cluster: &PgCluster) {
    su_exec(cluster, &format!("DROP DATABASE IF EXISTS {STAGING_DB}")).await;
    su_exec(
        cluster,
        &format!("CREATE DATABASE {STAGING_DB} OWNER {SCRAM_USER}"),
    )
    .await;
}

async fn staging_count(cluster: &PgCluster, table: &str) -> i64 {
    let c = cluster.superuser_client_db(STAGING_DB).await;
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e:?}"))
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_restore_and_psql_describe_pass_on_production() {
    let cluster = PgCluster::start();
    su_exec(&cluster, SCHEMA).await;
    let proxy = prod_and_staging(&cluster).start().await;
    let ep = proxy.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    // pg_dump in every format, reading production through pgwarden.
    let plain = path("dump.sql");
    let custom = path("dump.custom");
    let directory = path("dump.dir");
    let tar = path("dump.tar");
    for (format, file) in [
        ("p", &plain),
        ("c", &custom),
        ("d", &directory),
        ("t", &tar),
    ] {
        let out = run(&ep, "pg_dump", APP_DB, &["-F", format, "-f", file, "-b"]).await;
        no_refusals(&out, &format!("pg_dump -F {format} through pgwarden"));
    }
    let out = run(
        &ep,
        "pg_dump",
        APP_DB,
        &["--schema-only", "-f", &path("schema.sql")],
    )
    .await;
    no_refusals(&out, "pg_dump --schema-only");
    let out = run(
        &ep,
        "pg_dumpall",
        APP_DB,
        &[
            "--schema-only",
            "--no-role-passwords",
            "-f",
            &path("all.sql"),
        ],
    )
    .await;
    let _ = out; // pg_dumpall needs superuser for roles; only pg_dump is required.

    // psql's \d family on production.
    for cmd in [
        "\\d",
        "\\d orders",
        "\\d+ orders",
        "\\dt",
        "\\di",
        "\\dv",
        "\\dm",
        "\\ds",
        "\\df",
        "\\dn",
        "\\du",
        "\\dT",
        "\\dD",
        "\\dx",
        "\\l",
        "\\dp",
        "\\dd",
        "\\dy",
        "\\dC",
        "\\dL",
        "\\z orders",
        "\\sf touch",
        "\\lo_list",
        "\\conninfo",
    ] {
        let out = run(&ep, "psql", APP_DB, &["-X", "-c", cmd]).await;
        no_refusals(&out, &format!("psql {cmd} through pgwarden"));
    }

    // pg_restore of each archive format into staging through pgwarden.
    for (what, file, extra) in [
        ("custom", &custom, vec![]),
        ("directory", &directory, vec!["-j", "2"]),
        ("tar", &tar, vec![]),
    ] {
        fresh_staging(&cluster).await;
        let mut args = vec!["--no-owner", "-d", STAGING_DB, "--exit-on-error"];
        args.extend(extra);
        args.push(file);
        let out = run(&ep, "pg_restore", STAGING_DB, &args).await;
        no_refusals(
            &out,
            &format!("pg_restore ({what}) into staging through pgwarden"),
        );
        assert_eq!(staging_count(&cluster, "orders").await, 200, "{what}");
    }

    // psql -f of the plain dump into staging.
    fresh_staging(&cluster).await;
    let out = run(
        &ep,
        "psql",
        STAGING_DB,
        &["-X", "-v", "ON_ERROR_STOP=1", "-q", "-f", &plain],
    )
    .await;
    no_refusals(&out, "psql -f dump.sql into staging through pgwarden");
    assert_eq!(staging_count(&cluster, "orders").await, 200);
    assert_eq!(staging_count(&cluster, "customers").await, 20);
    proxy.shutdown().await;
}
