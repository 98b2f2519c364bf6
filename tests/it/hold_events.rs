//! Hold events in the audit chain, through the real proxy: a statement held for an
//! approver writes `hold`; approving writes `approve` with the approver, denying
//! `deny` with the approver and reason, a timeout `expire`, a client that leaves
//! `withdraw` with the reason; each names the hold, session and statement, and the
//! chain verifies. `GET /holds/ID` tells what became of each.

use crate::support;

use std::time::Duration;

use support::audit_file;
use support::guarded::*;
use support::http;
use support::raw::{query, RawConn};
use support::*;

const TOKEN: &str = "hold-events-alice-token";

fn kinds(records: &[serde_json::Value], hold: u64) -> Vec<&str> {
    records
        .iter()
        .filter(|r| r["hold_id"].as_u64() == Some(hold) && r["event"] != "statement")
        .filter_map(|r| r["event"].as_str())
        .collect()
}

fn event<'a>(records: &'a [serde_json::Value], hold: u64, kind: &str) -> &'a serde_json::Value {
    records
        .iter()
        .find(|r| r["hold_id"].as_u64() == Some(hold) && r["event"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event for hold #{hold}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_deny_expire_and_withdraw_are_in_the_chain() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "ledger", 0, SCRAM_USER).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    std::env::set_var("PGWARDEN_TEST_TOKEN_HOLD_EVENTS", TOKEN);
    let proxy = prod_builder(&cluster)
        .admin(&[("alice", "PGWARDEN_TEST_TOKEN_HOLD_EVENTS")])
        .policy_toml(&small_policy("1m", "3s"))
        .extra_toml(&audit_file::audit_toml(&log, "guarded"))
        .start()
        .await;
    let admin = proxy.admin_addr().expect("admin listener");
    let ep = proxy.endpoint();
    let sql = "INSERT INTO ledger VALUES (1, 'paid')";

    let approved = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, sql).await;
    let r = http::post(
        admin,
        &format!("/holds/{}/approve", approved.id),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    approved
        .task
        .await
        .unwrap()
        .expect("approved statement ran");

    let denied = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, sql).await;
    let body = serde_json::json!({"reason": "not during the freeze"}).to_string();
    let r = http::post(
        admin,
        &format!("/holds/{}/deny", denied.id),
        Some(TOKEN),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    expect_code(denied.task.await.unwrap(), "PW004");

    let expired = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, sql).await;
    expect_code(
        tokio::time::timeout(Duration::from_secs(10), expired.task)
            .await
            .expect("expiry within 10 s")
            .unwrap(),
        "PW005",
    );

    // A client that closes its socket while held.
    let mut raw = RawConn::connect(&ep).await;
    raw.login_trust(TRUST_USER, APP_DB).await;
    raw.send(&query(sql)).await.unwrap();
    let n = raw
        .read_message(Duration::from_secs(10))
        .await
        .expect("hold notice");
    assert_eq!(n.tag, b'N');
    let id = hold_id(&n.fields()[&'M']);
    drop(raw);

    let records = audit_file::wait_for(&log, "the withdraw event", |r| {
        r.iter()
            .any(|e| e["event"] == "withdraw" && e["hold_id"].as_u64() == Some(id))
    })
    .await;
    assert_eq!(kinds(&records, approved.id), ["hold", "approve"]);
    assert_eq!(kinds(&records, denied.id), ["hold", "deny"]);
    assert_eq!(kinds(&records, expired.id), ["hold", "expire"]);
    assert_eq!(kinds(&records, id), ["hold", "withdraw"]);

    let h = event(&records, approved.id, "hold");
    assert_eq!(h["user"], SCRAM_USER);
    assert_eq!(h["confirm"], "approver");
    assert_eq!(h["timeout_s"], 3);
    assert!(h["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));
    // The hold event names the statement record it belongs to.
    let stmt = records
        .iter()
        .find(|r| r["event"] == "statement" && r["hold_id"].as_u64() == Some(approved.id))
        .expect("the held statement's record");
    assert_eq!(h["session"], stmt["session"]);
    assert_eq!(h["statement_id"], stmt["statement_id"]);
    assert_eq!(event(&records, approved.id, "approve")["approver"], "alice");
    let d = event(&records, denied.id, "deny");
    assert_eq!(d["approver"], "alice");
    assert_eq!(d["reason"], "not during the freeze");
    assert!(event(&records, id, "withdraw")["reason"]
        .as_str()
        .is_some_and(|r| r.contains("client")));

    for (hold, status) in [
        (approved.id, "approved"),
        (denied.id, "denied"),
        (expired.id, "expired"),
        (id, "withdrawn"),
    ] {
        let r = http::get(admin, &format!("/holds/{hold}"), Some(TOKEN)).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["status"], status, "hold #{hold}: {r:?}");
    }
    let r = http::get(admin, "/holds/99999", Some(TOKEN)).await;
    assert_eq!(r.status, 404, "{r:?}");

    let (ok, out) = audit_file::verify(&[&log]);
    assert!(ok, "{out}");
}
