//! The policy file watch through the real proxy: a file rewritten in place (not
//! atomically) is never policy while it is half-written, the finished file is
//! reloaded exactly once, and a broken version is tried once, not on every event.

use crate::support;

use std::io::Write;
use std::time::Duration;

use support::audit_file::{audit_toml, records};
use support::*;

const HEAD: &str = "[defaults]\nproduction = { action = \"allow\", on_unparsed = \"block\" }\n";

const RULES: &str = r#"
[[rule]]
name = "no-drops"
environment = "production"
classes = ["drop.*", "truncate"]
action = "block"

[[rule]]
name = "no-unbounded-writes"
environment = "production"
classes = ["delete.unbounded", "update.unbounded"]
action = "block"
"#;

fn file_reloads(audit: &std::path::Path) -> Vec<serde_json::Value> {
    records(audit)
        .into_iter()
        .filter(|r| r["event"] == "policy_reload" && r["trigger"] == "file")
        .collect()
}

async fn refused(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    match client.simple_query(sql).await {
        Ok(_) => None,
        Err(e) => Some(e.code().map_or("?".to_string(), |c| c.code().to_string())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_policy_never_becomes_policy() {
    let c = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    // The audit log sits next to the policy, as in the demo: its writes are events
    // in the watched directory too.
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&policy, format!("{HEAD}{RULES}")).unwrap();
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("prod", &c).environment("production"))
        .policy_path(&policy)
        .extra_toml(&audit_toml(&audit, "all"))
        .start()
        .await;
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    client
        .batch_execute("CREATE TABLE w1 (id int); INSERT INTO w1 VALUES (1)")
        .await
        .unwrap();
    assert_eq!(
        refused(&client, "DROP TABLE w1").await.as_deref(),
        Some("PW002")
    );

    // Rewrite in place: truncate, write the [defaults] part, pause (as a slow
    // writer or an editor does), then the rules, then close.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&policy)
        .unwrap();
    f.write_all(HEAD.as_bytes()).unwrap();
    f.flush().unwrap();
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            refused(&client, "DROP TABLE w1").await.as_deref(),
            Some("PW002"),
            "a DROP passed while the policy file was half-written: {:?}",
            file_reloads(&audit)
        );
        assert_eq!(
            refused(&client, "DELETE FROM w1").await.as_deref(),
            Some("PW002"),
            "a DELETE passed while the policy file was half-written"
        );
    }
    assert!(
        file_reloads(&audit).is_empty(),
        "reloaded a half-written file: {:?}",
        file_reloads(&audit)
    );
    // The finished file has one more rule, so it differs from the policy in force.
    let extra = "\n[[rule]]\nname = \"audit-ddl\"\nenvironment = \"production\"\nclasses = [\"alter.*\"]\naction = \"audit\"\n";
    f.write_all(format!("{RULES}{extra}").as_bytes()).unwrap();
    drop(f);
    let mut reloads = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        reloads = file_reloads(&audit);
        if !reloads.is_empty() {
            break;
        }
    }
    // Further events (our own reads, the audit writes) must not trigger more attempts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reloads_after = file_reloads(&audit);
    assert_eq!(reloads_after.len(), 1, "{reloads_after:?}");
    assert_eq!(reloads[0]["result"], "ok", "{reloads:?}");
    assert_eq!(reloads[0]["rules"], 3, "{reloads:?}");
    assert_eq!(
        refused(&client, "DROP TABLE w1").await.as_deref(),
        Some("PW002")
    );

    // A broken version (renamed into place) is rejected once, however many events
    // follow; the policy in force stays.
    let tmp = dir.path().join(".policy.toml.tmp");
    std::fs::write(
        &tmp,
        format!("{HEAD}[[rule]]\nname = \"x\"\nclasses = [\"drop.tabel\"]\naction = \"allow\"\n"),
    )
    .unwrap();
    std::fs::rename(&tmp, &policy).unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for _ in 0..5 {
        let _ = std::fs::read(&policy).unwrap();
        let perm = std::fs::metadata(&policy).unwrap().permissions();
        std::fs::set_permissions(&policy, perm).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let reloads = file_reloads(&audit);
    assert_eq!(reloads.len(), 2, "{reloads:?}");
    assert_eq!(reloads[1]["result"], "error", "{reloads:?}");
    assert_eq!(
        refused(&client, "DROP TABLE w1").await.as_deref(),
        Some("PW002")
    );
    proxy.shutdown().await;
}

#[test]
fn check_warns_when_production_lets_destructive_statements_through() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    // The file as the watcher could have caught it: cut after [defaults].
    std::fs::write(&policy, HEAD).unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.prod]\nhost = \"127.0.0.1\"\nenvironment = \"production\"\n[policy]\npath = {:?}\n",
            policy.display().to_string()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("warning:") && text.contains("lets destructive statements through"),
        "{text}"
    );
    assert!(
        text.contains("drop.*, truncate, delete.unbounded, update.unbounded"),
        "{text}"
    );
}
