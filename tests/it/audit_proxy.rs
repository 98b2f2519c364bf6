//! The audit log through the real proxy: every decision recorded with its outcome,
//! the chain verifies with `pgwarden audit verify` and breaks when edited, and a
//! guarded statement is refused (PW006) when its record cannot be written.

use crate::support;

use support::audit_file::{audit_toml, verify as verify_files, wait_for};
use support::*;

fn token_of(e: &tokio_postgres::Error) -> String {
    let db = e.as_db_error().expect("a server error");
    let msg = db.message();
    let i = msg.find("token ").expect("token in message") + 6;
    msg[i..].split_whitespace().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_and_outcomes_are_recorded_and_the_chain_verifies() {
    let c = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("prod", &c).environment("production"))
        .extra_toml(&audit_toml(&audit, "all"))
        .start()
        .await;
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    client
        .batch_execute("CREATE TABLE audited (id int); INSERT INTO audited VALUES (1), (2), (3)")
        .await
        .unwrap();
    let e = client
        .simple_query("DELETE FROM audited")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"));
    let e = client
        .simple_query("ALTER TABLE audited RENAME TO audited2")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW001"));
    let token = token_of(&e);
    client
        .simple_query(&format!(
            "/* pgwarden:confirm={token} */ ALTER TABLE audited RENAME TO audited2"
        ))
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM audited2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    drop(client);

    let recs = wait_for(&audit, "the session's end", |r| {
        r.iter().any(|e| e["event"] == "session_end")
    })
    .await;
    let statements: Vec<&serde_json::Value> =
        recs.iter().filter(|e| e["event"] == "statement").collect();
    let decision_of = |needle: &str| -> Vec<String> {
        statements
            .iter()
            .filter(|e| e["sql"].as_str().unwrap_or("").contains(needle))
            .map(|e| e["decision"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(decision_of("DELETE FROM audited"), vec!["block"]);
    assert_eq!(decision_of("RENAME TO audited2"), vec!["hold", "confirmed"]);
    let blocked = statements
        .iter()
        .find(|e| e["decision"] == "block")
        .unwrap();
    assert_eq!(blocked["rule"], "no-unbounded-writes");
    assert_eq!(blocked["classes"], serde_json::json!(["delete.unbounded"]));
    assert_eq!(blocked["target"], "prod");
    assert_eq!(blocked["user"], SCRAM_USER);
    // Every forwarded statement has an outcome with its command tag.
    let confirmed = statements
        .iter()
        .find(|e| e["decision"] == "confirmed")
        .unwrap();
    let outcome = recs
        .iter()
        .find(|e| {
            e["event"] == "outcome"
                && e["statement_id"] == confirmed["statement_id"]
                && e["session"] == confirmed["session"]
        })
        .expect("an outcome for the confirmed statement");
    assert_eq!(outcome["tag"], "ALTER TABLE");
    let insert = statements
        .iter()
        .find(|e| e["sql"].as_str().unwrap().starts_with("CREATE TABLE"))
        .unwrap();
    let insert_outcome = recs
        .iter()
        .find(|e| {
            e["event"] == "outcome"
                && e["statement_id"] == insert["statement_id"]
                && e["session"] == insert["session"]
        })
        .unwrap();
    assert_eq!(insert_outcome["tag"], "INSERT 0 3");
    assert_eq!(insert_outcome["rows"], 3);
    assert!(recs.iter().any(|e| e["event"] == "session_start"));

    proxy.shutdown().await;
    let (ok, out) = verify_files(&[&audit]);
    assert!(ok, "verify failed on an untouched log: {out}");

    // Editing a recorded decision breaks the chain at that line.
    let text = std::fs::read_to_string(&audit).unwrap();
    let tampered = text.replacen("\"decision\":\"block\"", "\"decision\":\"allow\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&audit, tampered).unwrap();
    let (ok, out) = verify_files(&[&audit]);
    assert!(!ok, "verify accepted an edited log: {out}");
    assert!(out.contains("broken"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_statements_are_refused_when_the_audit_log_cannot_be_written() {
    let c = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("logs");
    std::fs::create_dir(&logdir).unwrap();
    let audit = logdir.join("audit.jsonl");
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("prod", &c).environment("production"))
        .extra_toml(&audit_toml(&audit, "guarded"))
        .start()
        .await;
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    client
        .batch_execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)")
        .await
        .unwrap();
    let e = client
        .simple_query("ALTER TABLE kept RENAME TO renamed")
        .await
        .unwrap_err();
    let token = token_of(&e);
    std::fs::remove_dir_all(&logdir).unwrap();
    let e = client
        .simple_query(&format!(
            "/* pgwarden:confirm={token} */ ALTER TABLE kept RENAME TO renamed"
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW006"), "{e:?}");
    // Nothing was forwarded unrecorded, and ordinary reads are still served.
    let n: i64 = client
        .query_one("SELECT count(*) FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let direct = c.superuser_client().await;
    let still: i64 = direct
        .query_one("SELECT count(*) FROM pg_class WHERE relname = 'kept'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(still, 1);
    proxy.shutdown().await;
}
