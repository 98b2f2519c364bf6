//! WHERE clauses the constant folder once called bounded, each verified on a real
//! PostgreSQL 15 cluster to change every row of `users` when sent directly, and then
//! sent through pgwarden on a production target with the built-in policy (holds turned
//! into blocks, as in enforce_adversarial): none may change a row.

use crate::enforce_adversarial::all_holds_block;
use crate::support::guarded::*;
use crate::support::*;

const CORPUS: &[&str] = &[
    "DELETE FROM users WHERE 0.1 + 0.2 = 0.3",
    "DELETE FROM users WHERE 0.30000000000000001 <> 0.3",
    "DELETE FROM users WHERE 'ab'::char(1) = 'a'",
    "DELETE FROM users WHERE 'a '::bpchar = 'a'",
    "DELETE FROM users WHERE 'abc'::varchar(1) = 'a'",
    "DELETE FROM users WHERE 1.005::numeric(3,2) = 1.01",
    "DELETE FROM users WHERE B'1' = '1'",
    "DELETE FROM users WHERE X'F' = B'1111'",
    "DELETE FROM users WHERE (id IS NULL) IS FALSE",
    "DELETE FROM users WHERE id IS DISTINCT FROM NULL",
    "DELETE FROM users WHERE NOT (id IS NOT DISTINCT FROM NULL)",
    "DELETE FROM users WHERE id <= id2",
    "DELETE FROM users WHERE id % 1 = 0",
    "DELETE FROM users WHERE id * 0 = 0",
    "DELETE FROM users WHERE abs(id) >= 0",
    "DELETE FROM users WHERE id = 1 OR NOT id = 1",
    "DELETE FROM users WHERE id < 5 OR id > 3",
    "DELETE FROM users WHERE active OR NOT active",
    "DELETE FROM users WHERE active IN (true, false)",
    "DELETE FROM users WHERE id <> ALL (SELECT x FROM audit WHERE false)",
    "DELETE FROM users WHERE id <> ANY (ARRAY[1, 2])",
    "DELETE FROM users WHERE id IN (SELECT id)",
    "DELETE FROM users WHERE id IN (SELECT id FROM audit)",
    "DELETE FROM users WHERE email LIKE '%%'",
    "DELETE FROM users WHERE email LIKE '%' ESCAPE '#'",
    "DELETE FROM users WHERE email ~ 'a*'",
    "DELETE FROM users WHERE email >= ''",
    "DELETE FROM users WHERE id <= 2147483647",
    "DELETE FROM users WHERE NOT (email NOT LIKE '%')",
    "UPDATE users SET email = 'x' WHERE (id = 1 OR id <> 1) = true",
    "UPDATE users SET email = 'x' WHERE email <> 'nobody'",
];

const RESET: &str = "
DROP TABLE IF EXISTS users, audit CASCADE;
CREATE TABLE users (id int PRIMARY KEY, id2 int, email text, active bool NOT NULL);
INSERT INTO users SELECT g, g + 1, 'user' || g, g % 2 = 0 FROM generate_series(1, 20) g;
CREATE TABLE audit (x int);
INSERT INTO audit VALUES (1);
";

const SNAPSHOT: &str =
    "SELECT count(*) || ' ' || md5(string_agg(id || ':' || email, ',' ORDER BY id)) FROM users";

async fn snapshot(cluster: &PgCluster) -> String {
    let c = cluster.superuser_client().await;
    let v: Option<String> = c.query_one(SNAPSHOT, &[]).await.expect("snapshot").get(0);
    v.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disguised_always_true_filters_change_nothing() {
    let cluster = PgCluster::start();
    let proxy = prod_builder(&cluster)
        .policy_toml(&all_holds_block())
        .start()
        .await;
    let (mut destructive, mut destroyed) = (0, Vec::new());
    for sql in CORPUS {
        su_exec(&cluster, RESET).await;
        let before = snapshot(&cluster).await;
        let c = cluster.superuser_client().await;
        c.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("directly: {sql}: {e:?}"));
        assert_ne!(
            snapshot(&cluster).await,
            before,
            "not destructive directly: {sql}"
        );
        destructive += 1;

        su_exec(&cluster, RESET).await;
        let c = proxy
            .endpoint()
            .must_connect(SUPERUSER, SUPERUSER_PASSWORD, APP_DB)
            .await;
        let r = c.batch_execute(sql).await;
        if snapshot(&cluster).await != before {
            destroyed.push(format!("{sql} ({r:?})"));
        }
    }
    println!(
        "blind spots: {destructive} destructive directly, {} destroyed through pgwarden",
        destroyed.len()
    );
    assert!(
        destroyed.is_empty(),
        "destroyed through pgwarden:\n{}",
        destroyed.join("\n")
    );
    proxy.shutdown().await;
}
