//! The catalog queries (`pgwarden::catalog`) against a real cluster: which unique
//! indexes count as keys, which key-shaped statements change at most one row, and
//! blast radii of DROP / TRUNCATE / DROP COLUMN checked against what the server
//! really removes (each statement is run inside a transaction and rolled back).

use crate::support;

use std::time::{Duration, Instant};

use pgwarden::catalog::blast::{BlastOp, BlastQuery, BlastRadius, BlastTarget, Reason};
use pgwarden::catalog::{key_shape, load, Catalog, KeyBound, NotBounded};
use support::*;
use tokio_postgres::{Client, SimpleQueryMessage};

const SCHEMA: &str = "
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL UNIQUE, nick text UNIQUE);
CREATE TABLE orders (id int PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE TABLE items (order_id int REFERENCES orders, n int, PRIMARY KEY (order_id, n));
CREATE TABLE plain (id int NOT NULL, code text NOT NULL);
CREATE UNIQUE INDEX plain_partial ON plain (id) WHERE id > 0;
CREATE UNIQUE INDEX plain_expr ON plain (lower(code));
CREATE TABLE deferred (id int, CONSTRAINT deferred_pk PRIMARY KEY (id) DEFERRABLE);
CREATE TABLE inc (id int NOT NULL, x int);
CREATE UNIQUE INDEX inc_id ON inc (id) INCLUDE (x);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE id > 1;
CREATE VIEW v2 AS SELECT * FROM big_orders;
CREATE TABLE measurements (id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE m2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE m2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE SCHEMA scratch;
CREATE TABLE scratch.a (id int);
CREATE VIEW scratch.av AS SELECT * FROM scratch.a;
CREATE VIEW uses_scratch AS SELECT * FROM scratch.a;
INSERT INTO customers SELECT g, 'c' || g || '@x', NULL FROM generate_series(1, 50) g;
INSERT INTO orders SELECT g, 1 + g % 50 FROM generate_series(1, 200) g;
INSERT INTO items SELECT g, 1 FROM generate_series(1, 30) g;
INSERT INTO measurements SELECT g, '2025-06-01' FROM generate_series(1, 10) g;
INSERT INTO measurements SELECT g, '2026-06-01' FROM generate_series(1, 20) g;
INSERT INTO scratch.a SELECT generate_series(1, 7);
ANALYZE;
";

fn rows(msgs: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    msgs.into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

fn borrowed(rows: &[Vec<Option<String>>]) -> Vec<Vec<Option<&str>>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.as_deref()).collect())
        .collect()
}

async fn query_rows(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    rows(
        c.simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{e:?}\n{sql}")),
    )
}

async fn catalog(c: &Client) -> Catalog {
    let t = query_rows(c, &load::tables_sql(None)).await;
    let k = query_rows(c, &load::keys_sql(None)).await;
    let tables = load::tables(&borrowed(&t), &borrowed(&k)).expect("catalog rows");
    Catalog::new(tables, Instant::now())
}

async fn fixture() -> (PgCluster, Client) {
    let cluster = PgCluster::start();
    let c = cluster.superuser_client().await;
    c.batch_execute(SCHEMA).await.expect("schema");
    (cluster, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_key_bounded_statements() {
    let (_cluster, c) = fixture().await;
    let cat = catalog(&c).await;
    let keys = |name: &str| {
        let mut k = cat.table("public", name).expect(name).keys.clone();
        k.sort();
        k
    };
    let cols = |v: &[&[&str]]| -> Vec<Vec<String>> {
        v.iter()
            .map(|k| k.iter().map(|s| s.to_string()).collect())
            .collect()
    };
    assert_eq!(
        keys("customers"),
        cols(&[&["email"], &["id"]]),
        "nullable nick is no key"
    );
    assert_eq!(keys("items"), cols(&[&["order_id", "n"]]));
    assert_eq!(
        keys("plain"),
        cols(&[]),
        "partial and expression indexes are no keys"
    );
    assert_eq!(
        keys("deferred"),
        cols(&[]),
        "a deferrable key may hold duplicates mid-transaction"
    );
    assert_eq!(
        keys("inc"),
        cols(&[&["id"]]),
        "INCLUDE columns are not part of the key"
    );
    let customers = cat.table("public", "customers").unwrap();
    assert!(customers.cascades_on_delete && !customers.cascades_on_update);
    assert_eq!(customers.estimate, 50);
    assert_eq!(cat.table("public", "measurements").unwrap().kind, 'p');

    let one = |t: &str, k: &[&str]| KeyBound::AtMostOneRow {
        table: t.into(),
        key: k.iter().map(|s| s.to_string()).collect(),
    };
    let further = |t: &str| KeyBound::Unknown(NotBounded::ReachesFurther(t.into()));
    let nokey = |t: &str| KeyBound::Unknown(NotBounded::NoKey(t.into()));
    let cases = vec![
        (
            "DELETE FROM customers WHERE id = $1",
            further("public.customers"),
        ),
        (
            "UPDATE customers SET nick = 'x' WHERE email = $1",
            one("public.customers", &["email"]),
        ),
        (
            "DELETE FROM orders WHERE id = 1",
            one("public.orders", &["id"]),
        ),
        (
            "DELETE FROM items WHERE order_id = 1",
            nokey("public.items"),
        ),
        (
            "DELETE FROM items WHERE order_id = 1 AND n = 1",
            one("public.items", &["order_id", "n"]),
        ),
        ("DELETE FROM plain WHERE id = 1", nokey("public.plain")),
        (
            "DELETE FROM deferred WHERE id = 1",
            nokey("public.deferred"),
        ),
        ("DELETE FROM inc WHERE id = 1", one("public.inc", &["id"])),
        (
            "DELETE FROM measurements WHERE id = 1 AND at = '2025-06-01'",
            further("public.measurements"),
        ),
        (
            "DELETE FROM big_orders WHERE id = 2",
            further("public.big_orders"),
        ),
    ];
    let age = Duration::from_secs(60);
    for (sql, want) in cases {
        let shape = key_shape(sql).unwrap_or_else(|| panic!("shape of {sql}"));
        assert_eq!(cat.key_bound(&shape, Instant::now(), age), want, "{sql}");
    }

    // What the catalog calls "at most one row" is what the server does.
    for sql in [
        "UPDATE customers SET nick = 'x' WHERE email = 'c7@x'",
        "DELETE FROM orders WHERE id = 100",
        "DELETE FROM items WHERE order_id = 3 AND n = 1",
    ] {
        let msgs = c
            .simple_query(&format!("BEGIN; {sql}; ROLLBACK"))
            .await
            .unwrap();
        let changed: Vec<u64> = msgs
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::CommandComplete(n) => Some(*n),
                _ => None,
            })
            .collect();
        assert_eq!(changed, vec![0, 1, 0], "{sql}");
    }

    // After DDL the catalog is stale until reloaded: never an allow from old facts.
    let mut cat = cat;
    cat.mark_stale();
    let shape = key_shape("DELETE FROM orders WHERE id = 1").unwrap();
    assert_eq!(
        cat.key_bound(&shape, Instant::now(), age),
        KeyBound::Unknown(NotBounded::Stale)
    );
    c.batch_execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey CASCADE")
        .await
        .unwrap();
    let cat = catalog(&c).await;
    assert_eq!(
        cat.key_bound(&shape, Instant::now(), age),
        nokey("public.orders")
    );
}

async fn blast(c: &Client, q: &BlastQuery) -> BlastRadius {
    let r = query_rows(c, &q.sql()).await;
    q.read(&borrowed(&r)).expect("blast rows")
}

/// Relations (schema.name) and constraint names present now.
async fn objects(c: &Client) -> Vec<String> {
    let mut v: Vec<String> = query_rows(
        c,
        "SELECT n.nspname || '.' || c.relname FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname IN ('public', 'scratch') \
         UNION ALL SELECT conname::text FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    )
    .await
    .into_iter()
    .filter_map(|r| r.into_iter().next().flatten())
    .collect();
    v.sort();
    v
}

fn rel(schema: &str, name: &str) -> BlastTarget {
    BlastTarget::Relation {
        schema: Some(schema.into()),
        name: name.into(),
    }
}

fn names(r: &BlastRadius, reason: Reason) -> Vec<String> {
    r.tables
        .iter()
        .filter(|t| t.reason == reason)
        .map(|t| t.qualified())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blast_radius_matches_what_the_server_removes() {
    let (_cluster, c) = fixture().await;

    // DROP TABLE orders CASCADE: its rows, two views, items' foreign key.
    let q = BlastQuery {
        target: rel("public", "orders"),
        op: BlastOp::Drop { cascade: true },
    };
    let r = blast(&c, &q).await;
    assert_eq!(names(&r, Reason::Target), vec!["public.orders"]);
    assert_eq!(
        r.dependents,
        vec![
            "table constraint items_order_id_fkey on public.items".to_string(),
            "view public.big_orders".to_string(),
            "view public.v2".to_string(),
        ],
        "{}",
        r.sentence()
    );
    assert_eq!(
        r.sentence(),
        "would drop public.orders (~200 rows) and 3 dependent objects (table constraint \
         items_order_id_fkey on public.items, view public.big_orders, view public.v2)"
    );
    let before = objects(&c).await;
    c.batch_execute("BEGIN; DROP TABLE orders CASCADE")
        .await
        .unwrap();
    let after = objects(&c).await;
    c.batch_execute("ROLLBACK").await.unwrap();
    let gone: Vec<&String> = before.iter().filter(|o| !after.contains(o)).collect();
    for want in [
        "public.orders",
        "public.big_orders",
        "public.v2",
        "items_order_id_fkey",
    ] {
        assert!(
            gone.iter().any(|g| *g == want),
            "{want} not dropped: {gone:?}"
        );
    }
    // Everything else that went is part of orders itself (its key, index, sequence-free).
    for g in &gone {
        assert!(
            [
                "public.orders",
                "public.big_orders",
                "public.v2",
                "items_order_id_fkey"
            ]
            .contains(&g.as_str())
                || g.starts_with("public.orders_")
                || g.starts_with("orders_")
                || g.starts_with("public.pg_toast"),
            "dropped but not reported: {g}"
        );
    }

    // DROP TABLE on a partitioned table takes its partitions' rows.
    let r = blast(
        &c,
        &BlastQuery {
            target: rel("public", "measurements"),
            op: BlastOp::Drop { cascade: false },
        },
    )
    .await;
    assert_eq!(names(&r, Reason::Target), vec!["public.measurements"]);
    let mut parts = names(&r, Reason::Partition);
    parts.sort();
    assert_eq!(parts, vec!["public.m2025", "public.m2026"]);
    let rows: Vec<String> = r
        .tables
        .iter()
        .map(|t| format!("{}={:?}", t.name, t.rows))
        .collect();
    assert!(rows.contains(&"m2025=Estimate(10)".to_string()), "{rows:?}");
    assert!(rows.contains(&"m2026=Estimate(20)".to_string()), "{rows:?}");

    // TRUNCATE … CASCADE empties the tables that reference it; without, only itself.
    let r = blast(
        &c,
        &BlastQuery {
            target: rel("public", "customers"),
            op: BlastOp::Truncate { cascade: true },
        },
    )
    .await;
    assert_eq!(names(&r, Reason::Target), vec!["public.customers"]);
    let mut fks = names(&r, Reason::ForeignKey);
    fks.sort();
    assert_eq!(fks, vec!["public.items", "public.orders"]);
    assert!(r.dependents.is_empty());
    let emptied = query_rows(
        &c,
        "BEGIN; TRUNCATE customers CASCADE; \
         SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM items); \
         ROLLBACK",
    )
    .await;
    assert_eq!(emptied[0][0].as_deref(), Some("0"));
    let r = blast(
        &c,
        &BlastQuery {
            target: rel("public", "customers"),
            op: BlastOp::Truncate { cascade: false },
        },
    )
    .await;
    assert_eq!(r.tables.len(), 1);

    // DROP SCHEMA … CASCADE: its tables and a view elsewhere that reads them.
    let r = blast(
        &c,
        &BlastQuery {
            target: BlastTarget::Schema {
                name: "scratch".into(),
            },
            op: BlastOp::Drop { cascade: true },
        },
    )
    .await;
    assert_eq!(names(&r, Reason::Target), vec!["scratch.a"]);
    assert!(
        r.dependents.contains(&"view scratch.av".to_string()),
        "{:?}",
        r.dependents
    );
    assert!(
        r.dependents
            .contains(&"view public.uses_scratch".to_string()),
        "{:?}",
        r.dependents
    );

    // ALTER TABLE … DROP COLUMN: the table keeps its rows but loses the column's
    // values, and the unique constraint on it.
    let r = blast(
        &c,
        &BlastQuery {
            target: BlastTarget::Column {
                schema: None,
                table: "customers".into(),
                column: "email".into(),
            },
            op: BlastOp::Drop { cascade: false },
        },
    )
    .await;
    assert_eq!(names(&r, Reason::Column), vec!["public.customers"]);
    assert!(
        r.dependents
            .iter()
            .any(|d| d.contains("customers_email_key")),
        "{:?}",
        r.dependents
    );
    assert!(
        r.sentence()
            .starts_with("would drop a column of public.customers (~50 rows)"),
        "{}",
        r.sentence()
    );

    // DROP INDEX: the index itself is what goes.
    let r = blast(
        &c,
        &BlastQuery {
            target: rel("public", "orders_customer_idx"),
            op: BlastOp::Drop { cascade: false },
        },
    )
    .await;
    assert_eq!(r.sentence(), "would drop index public.orders_customer_idx");

    // A name that does not exist.
    let r = blast(
        &c,
        &BlastQuery {
            target: rel("public", "nope"),
            op: BlastOp::Drop { cascade: false },
        },
    )
    .await;
    assert!(r.missing);
}
