//! The literal-insensitive classification cache through the real proxy, with the
//! example production policy: statements that differ only in their literals are
//! parsed once (the cache counts hits), while a literal that changes the judgement
//! (`WHERE 1 = 1` after `WHERE 1 = 2`) and SQL next to a literal are judged as
//! written, checked on the server.

use crate::support;

use pgwarden::admin::client::request;
use support::*;

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn counts(admin: &str) -> (f64, f64) {
    let m = request(admin, "GET", "/metrics", None, None).await.unwrap();
    (
        metric(&m.body, "pgwarden_classifier_cache_hits_total"),
        metric(&m.body, "pgwarden_classifier_cache_misses_total"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literals_share_a_classification_only_when_it_stands_for_them() {
    let c = PgCluster::start();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml");
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("prod", &c).environment("production"))
        .policy_path(&example)
        .extra_toml("[admin]\nlisten = \"127.0.0.1:0\"\n")
        .start()
        .await;
    let admin = format!("http://{}", proxy.admin_addr().expect("admin listener"));
    let server = c.superuser_client().await;
    server
        .batch_execute(
            "CREATE TABLE shapes (id int PRIMARY KEY, v int, name text);
             INSERT INTO shapes SELECT g, 0, 'n' || g FROM generate_series(1, 5) g;
             GRANT ALL ON shapes TO scram_user",
        )
        .await
        .unwrap();
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;

    // TPC-B style: one shape, new literals every time. The session's own memory
    // of its last few statements is keyed by shape too, so more than it holds are
    // used in turn.
    let (hits0, misses0) = counts(&admin).await;
    for i in 1..=40 {
        let id = i % 5 + 1;
        client
            .simple_query(&format!(
                "UPDATE shapes SET v = v + {i} WHERE id = {id}; \
                 SELECT v FROM shapes WHERE id = {id}; \
                 SELECT name FROM shapes WHERE name = 'n{id}'"
            ))
            .await
            .unwrap();
        for (k, t) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            client
                .simple_query(&format!(
                    "SELECT '{t}' AS c{k}, {k} + {i} FROM shapes WHERE id = {id}"
                ))
                .await
                .unwrap();
        }
    }
    let (hits, misses) = counts(&admin).await;
    assert!(misses - misses0 <= 6.0, "misses {misses0} → {misses}");
    assert!(hits - hits0 >= 230.0, "hits {hits0} → {hits}");
    let total: i64 = server
        .query_one("SELECT sum(v)::int8 FROM shapes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, (1..=40).sum::<i64>());

    // The folder reads these literals: the first shape never stands for the second.
    client
        .simple_query("DELETE FROM shapes WHERE 1 = 2")
        .await
        .unwrap();
    client
        .simple_query("DELETE FROM shapes WHERE 1 = 2")
        .await
        .unwrap();
    let e = client
        .simple_query("DELETE FROM shapes WHERE 1 = 1")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"), "{e}");
    let e = client
        .simple_query("UPDATE shapes SET v = 0 WHERE 'a' = 'a'")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"), "{e}");

    // An attacker's SQL inside a literal is a literal; next to one it is SQL.
    let rows = client
        .simple_query("SELECT name FROM shapes WHERE name = '''; DELETE FROM shapes; --'")
        .await
        .unwrap();
    assert!(rows
        .iter()
        .all(|m| !matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))));
    let e = client
        .simple_query("SELECT name FROM shapes WHERE name = 'x'; DELETE FROM shapes; --'")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"), "{e}");
    let e = client
        .simple_query("SELECT name FROM shapes WHERE name = E'\\''; DELETE FROM shapes; --'")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"), "{e}");
    let left: i64 = server
        .query_one("SELECT count(*) FROM shapes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 5);
}
