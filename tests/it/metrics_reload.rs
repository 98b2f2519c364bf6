//! Operations through the real proxy: /metrics values move as statements flow,
//! /healthz and /readyz answer, and the policy reloads (POST /reload and a file
//! change, including a ConfigMap-style symlink swap) without dropping sessions,
//! while a broken policy is rejected and the old one stays in force.

use crate::support;

use std::time::Duration;

use pgwarden::admin::client::request;
use support::*;

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const STRICT: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "no-drops"
environment = "production"
classes = ["drop.*"]
action = "block"
"#;

const LENIENT: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_and_policy_reloads() {
    let c = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    // ConfigMap layout: policy.toml -> ..data/policy.toml, ..data -> ..v1
    let v1 = dir.path().join("..v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("policy.toml"), STRICT).unwrap();
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/policy.toml", dir.path().join("policy.toml")).unwrap();
    let token_var = "PGWARDEN_TEST_TOKEN_METRICS_RELOAD";
    std::env::set_var(token_var, "tok-metrics");
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("prod", &c).environment("production"))
        .extra_toml(&format!(
            "[policy]\npath = {:?}\n[admin]\nlisten = \"127.0.0.1:0\"\napprovers = {{ carol = {{ token_env = \"{token_var}\" }} }}\n",
            dir.path().join("policy.toml").display().to_string()
        ))
        .start()
        .await;
    let admin = format!("http://{}", proxy.admin_addr().expect("admin listener"));

    let h = request(&admin, "GET", "/healthz", None, None)
        .await
        .unwrap();
    assert_eq!(h.status, 200);
    let r = request(&admin, "GET", "/readyz", None, None).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    client
        .batch_execute("CREATE TABLE m1 (id int); CREATE TABLE m2 (id int)")
        .await
        .unwrap();
    for _ in 0..5 {
        client.query("SELECT 1", &[]).await.unwrap();
    }
    let e = client.simple_query("DROP TABLE m1").await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"));

    let m = request(&admin, "GET", "/metrics", None, None)
        .await
        .unwrap();
    assert_eq!(m.status, 200);
    let text = m.body;
    assert!(
        metric(
            &text,
            "pgwarden_statements_total{target=\"prod\",decision=\"allow\""
        ) >= 6.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "pgwarden_statements_total{target=\"prod\",decision=\"block\",class=\"drop\"}"
        ),
        1.0,
        "{text}"
    );
    assert!(metric(&text, "pgwarden_connections_active") >= 1.0);
    assert!(
        metric(
            &text,
            "pgwarden_bytes_total{direction=\"server_to_client\"}"
        ) > 0.0
    );
    // Parse times are observed for cache misses, one each.
    let parsed = metric(&text, "pgwarden_classify_seconds_count");
    assert!(parsed >= 1.0, "{text}");
    assert_eq!(
        parsed,
        metric(&text, "pgwarden_classifier_cache_misses_total"),
        "{text}"
    );
    assert!(
        metric(&text, "pgwarden_classifier_cache_hits_total") >= 4.0,
        "{text}"
    );
    assert!(!text.contains("SELECT"), "SQL text must never be a label");

    // A broken policy is rejected; the old one stays in force.
    let v2 = dir.path().join("..v2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(
        v2.join("policy.toml"),
        "[[rule]]\nname = \"x\"\nclasses = [\"drop.tabel\"]\naction = \"allow\"\n",
    )
    .unwrap();
    swap(dir.path(), "..v2");
    let r = request(&admin, "POST", "/reload", Some("tok-metrics"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("drop.tabel"), "{}", r.body);
    let e = client.simple_query("DROP TABLE m1").await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"));
    let unauth = request(&admin, "POST", "/reload", None, None)
        .await
        .unwrap();
    assert_eq!(unauth.status, 401);

    // A good policy arrives by symlink swap; the file watch applies it, and the same
    // session sees it on its next statement.
    let v3 = dir.path().join("..v3");
    std::fs::create_dir(&v3).unwrap();
    std::fs::write(v3.join("policy.toml"), LENIENT).unwrap();
    swap(dir.path(), "..v3");
    let mut dropped = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if client.simple_query("DROP TABLE m1").await.is_ok() {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the watched policy change was not applied");

    // A statement the session repeats keeps its verdict only while the policy stays:
    // allowed over and over under the lenient policy, blocked once the strict one is
    // back, on the very next try.
    for _ in 0..3 {
        client
            .simple_query("DROP TABLE IF EXISTS m9")
            .await
            .unwrap();
    }
    let r = request(&admin, "POST", "/reload", Some("tok-metrics"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v4 = dir.path().join("..v4");
    std::fs::create_dir(&v4).unwrap();
    std::fs::write(v4.join("policy.toml"), STRICT).unwrap();
    swap(dir.path(), "..v4");
    let r = request(&admin, "POST", "/reload", Some("tok-metrics"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let e = client
        .simple_query("DROP TABLE IF EXISTS m9")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"), "{e:?}");
    let m = request(&admin, "GET", "/metrics", None, None)
        .await
        .unwrap();
    assert!(
        metric(&m.body, "pgwarden_policy_reloads_total{result=\"error\"}") >= 1.0,
        "{}",
        m.body
    );
    assert!(
        metric(&m.body, "pgwarden_policy_reloads_total{result=\"ok\"}") >= 1.0,
        "{}",
        m.body
    );
    proxy.shutdown().await;
}

/// Points `..data` at `version` atomically, as the kubelet does for ConfigMaps.
fn swap(dir: &std::path::Path, version: &str) {
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}
