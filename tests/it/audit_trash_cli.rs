//! `pgwarden trash restore/purge --audit FILE` and a running proxy's audit file: the
//! proxy's writer holds the file's lock, so the command refuses that file with a
//! clear message before touching the target (two writers would break the hash
//! chain), works with a file of its own, and may continue the proxy's file once the
//! proxy has stopped; both files verify.

use crate::support;

use support::audit_file::{audit_toml, records, verify, wait_for};
use support::guarded::*;
use support::*;

const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "drops-to-trash"
environment = "production"
classes = ["drop.table"]
action = "trash"
retention = "1h"
fallback = "block"
"#;

/// `pgwarden trash ARGS --audit AUDIT` against the cluster as the superuser.
fn cli(cluster: &PgCluster, args: &[&str], audit: &std::path::Path) -> (Option<i32>, String) {
    let url = format!(
        "host=127.0.0.1 port={} dbname={APP_DB} user={SUPERUSER}",
        cluster.port()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .arg("trash")
        .args(args)
        .args([
            "--url",
            &url,
            "--password-env",
            "TRASH_AUDIT_LOCK_PW",
            "--tls",
            "disable",
        ])
        .arg("--audit")
        .arg(audit)
        .env_remove("PGWARDEN_TRASH_AUDIT")
        .env("TRASH_AUDIT_LOCK_PW", SUPERUSER_PASSWORD)
        .output()
        .expect("runs pgwarden");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

async fn registry(cluster: &PgCluster) -> Vec<(i64, String)> {
    let c = cluster.superuser_client().await;
    c.query(
        "SELECT id, original_name FROM pgwarden_trash.registry ORDER BY id",
        &[],
    )
    .await
    .expect("registry")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trash_command_refuses_the_audit_file_a_running_proxy_writes() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "lock_a", 4, SUPERUSER).await;
    victim_table(&cluster, "lock_b", 2, SUPERUSER).await;
    let dir = tempfile::tempdir().expect("dir");
    let proxy_audit = dir.path().join("proxy-audit.jsonl");
    let own_audit = dir.path().join("trash-cli.jsonl");
    let mut proxy = prod_builder(&cluster)
        .policy_toml(POLICY)
        .extra_toml(&audit_toml(&proxy_audit, "guarded"))
        .spawn_binary()
        .await;
    let c = proxy
        .endpoint()
        .must_connect(SUPERUSER, SUPERUSER_PASSWORD, APP_DB)
        .await;
    c.simple_query("DROP TABLE lock_a").await.expect("trashed");
    c.simple_query("DROP TABLE lock_b").await.expect("trashed");
    let items = registry(&cluster).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let (a, b) = (items[0].0, items[1].0);
    let lines = wait_for(&proxy_audit, "the trash events", |r| {
        r.iter().filter(|e| e["event"] == "trash").count() == 2
    })
    .await
    .len();

    // The proxy's own file: refused, nothing restored, nothing written.
    for args in [
        vec!["restore".to_string(), a.to_string()],
        vec!["purge".into(), a.to_string()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out) = cli(&cluster, &args, &proxy_audit);
        assert_eq!(code, Some(1), "{args:?}: {out}");
        assert!(
            out.contains(
                "another process is writing this file (a running pgwarden holds its lock)"
            ) && out.contains("give this command an audit file of its own"),
            "{args:?}: {out}"
        );
        assert_eq!(
            registry(&cluster).await.len(),
            2,
            "{args:?}: nothing changed"
        );
        assert!(!server_table_exists(&cluster, "lock_a").await);
    }
    assert_eq!(
        records(&proxy_audit).len(),
        lines,
        "the CLI wrote nothing there"
    );

    // A file of its own: restored and audited.
    let (code, out) = cli(&cluster, &["restore", &a.to_string()], &own_audit);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(server_count(&cluster, "lock_a").await, 4);
    let own = records(&own_audit);
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["event"], "restore");

    // Once the proxy has stopped, its lock is gone: the command may continue its file.
    c.simple_query("SELECT 1").await.expect("still usable");
    drop(c);
    proxy
        .terminate(std::time::Duration::from_secs(10))
        .await
        .expect("the proxy stopped");
    let (code, out) = cli(&cluster, &["purge", &b.to_string()], &proxy_audit);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(registry(&cluster).await, []);
    let recs = records(&proxy_audit);
    assert_eq!(
        recs.last().map(|r| r["event"].clone()),
        Some("purge".into())
    );
    let (ok, out) = verify(&[&proxy_audit]);
    assert!(ok, "{out}");
    let (ok, out) = verify(&[&own_audit]);
    assert!(ok, "{out}");
}
