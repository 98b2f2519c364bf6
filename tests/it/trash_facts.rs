//! The trash's catalog query (`pgwarden::trash::facts`) on a catalog the size of
//! PostgreSQL's regression database: its plan stays below `jit_above_cost`, so the
//! server runs it at once instead of compiling it with LLVM first (about 3 s per
//! DROP on such a catalog, 6–20 s under pg_regress's parallel schedule, beyond the
//! trash's 5 s `statement_timeout`), and it still answers what the DROP would take
//! along.

use crate::support;

use pgwarden::trash::{facts, schema, truncate};
use support::*;

/// About 500 tables with an owned sequence, a key, a check, a default, an index
/// and a view each: pg_depend grows by ~6,000 rows to the regression database's
/// ~8,000 (1,800 in a new database).
const GROW: &str = "DO $$
BEGIN
  FOR i IN 1..500 LOOP
    EXECUTE format('CREATE TABLE bulk_%s (id serial PRIMARY KEY, v text DEFAULT ''x'' CHECK (v <> ''''))', i);
    EXECUTE format('CREATE INDEX ON bulk_%s (v)', i);
    EXECUTE format('CREATE VIEW bulk_v_%s AS SELECT id FROM bulk_%s', i, i);
  END LOOP;
END $$;
CREATE TABLE orders (id int PRIMARY KEY);
CREATE TABLE lines (id int PRIMARY KEY, order_id int REFERENCES orders);
CREATE VIEW order_ids AS SELECT id FROM orders;
CREATE TABLE typed_use (id int PRIMARY KEY);
CREATE FUNCTION uses_row(r typed_use) RETURNS int LANGUAGE sql AS 'SELECT 1';
ANALYZE;";

/// The one-value answer of `sql` (simple protocol, as text).
async fn text(c: &tokio_postgres::Client, sql: &str) -> String {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{sql}"))
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no row: {sql}"))
}

async fn plan(c: &tokio_postgres::Client, explain: &str, sql: &str) -> serde_json::Value {
    serde_json::from_str(&text(c, &format!("{explain} {sql}")).await).expect("plan JSON")
}

fn number(v: &serde_json::Value, key: &str) -> f64 {
    v[0]["Plan"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[tokio::test]
async fn the_facts_query_stays_below_the_jit_threshold_on_a_large_catalog() {
    let cluster = PgCluster::start();
    let c = cluster.superuser_client().await;
    c.batch_execute(GROW).await.expect("grow the catalog");
    let depend: i64 = text(&c, "SELECT count(*) FROM pg_depend")
        .await
        .parse()
        .expect("count");
    assert!(depend > 7000, "catalog too small for the test: {depend}");
    let jit_above: f64 = text(&c, "SELECT current_setting('jit_above_cost')")
        .await
        .parse()
        .expect("jit_above_cost");

    let names = |v: &[&str]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    for (what, sql) in [
        ("orders", facts::sql(&names(&["orders"]), &["r", "p"])),
        (
            "bulk_7, bulk_8, missing",
            facts::sql(&names(&["bulk_7", "bulk_8", "missing"]), &["r", "p"]),
        ),
        ("order_ids", facts::sql(&names(&["order_ids"]), &["v"])),
        // the other statement kinds' catalog queries, on the same catalog
        ("TRUNCATE orders", truncate::sql(&names(&["orders"]), true)),
        ("DROP SCHEMA public", schema::sql("public")),
    ] {
        let cost = number(&plan(&c, "EXPLAIN (FORMAT JSON)", &sql).await, "Total Cost");
        // The old form (a correlated test per dependency) was estimated at ~600,000
        // here; the margin covers catalogs several times larger.
        assert!(
            cost * 5.0 < jit_above,
            "{what}: estimated cost {cost} vs jit_above_cost {jit_above}"
        );
        let analyzed = plan(&c, "EXPLAIN (ANALYZE, FORMAT JSON)", &sql).await;
        assert!(
            analyzed[0].get("JIT").is_none(),
            "{what}: compiled with JIT: {}",
            analyzed[0]["JIT"]
        );
    }

    let read = |rows: Vec<tokio_postgres::SimpleQueryMessage>| {
        let texts: Vec<Vec<Option<String>>> = rows
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some(vec![r.get(0).map(String::from)])
                }
                _ => None,
            })
            .collect();
        let borrowed: Vec<Vec<Option<&str>>> = texts
            .iter()
            .map(|r| r.iter().map(|v| v.as_deref()).collect())
            .collect();
        facts::read(&borrowed).expect("document")
    };
    let orders = read(
        c.simple_query(&facts::sql(&["orders".into()], &["r", "p"]))
            .await
            .expect("facts"),
    )
    .expect("orders exists");
    assert_eq!(orders.views.len(), 1, "{orders:?}");
    assert_eq!(orders.views[0].name, "order_ids");
    assert_eq!(orders.fks_in.len(), 1, "{orders:?}");
    assert_eq!(orders.fks_in[0].table, "lines");
    assert!(orders.other_dependents.is_empty(), "{orders:?}");
    let bulk = read(
        c.simple_query(&facts::sql(
            &["bulk_7".into(), "missing".into()],
            &["r", "p"],
        ))
        .await
        .expect("facts"),
    )
    .expect("bulk_7 exists");
    assert_eq!(bulk.tables.len(), 1);
    assert_eq!(bulk.views[0].name, "bulk_v_7");
    assert!(bulk.other_dependents.is_empty(), "{bulk:?}");
    let typed = read(
        c.simple_query(&facts::sql(&["typed_use".into()], &["r", "p"]))
            .await
            .expect("facts"),
    )
    .expect("typed_use exists");
    assert_eq!(
        typed.other_dependents,
        vec!["function uses_row(typed_use)".to_string()]
    );
    assert!(read(
        c.simple_query(&facts::sql(&["missing".into()], &["r", "p"]))
            .await
            .expect("facts")
    )
    .is_none());
}
