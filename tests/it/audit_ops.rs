//! The audit log against ground truth: a mixed workload through pgwarden is compared
//! with the server's own `log_statement = 'all'` log, and the chain continues when a
//! second pgwarden process appends to the same file.
//!
//! How statements are matched (by exact SQL text; the workload's SQL is one line):
//! - Simple protocol: one Query message is one audit `statement` event (all its
//!   statements together) and one server `statement: SQL` line.
//! - Extended protocol: pgwarden decides at Parse, so there is one audit event per
//!   Parse, while the server logs one `execute NAME: SQL` line per Execute. With
//!   `log_min_duration_statement = 0` the server also logs each Parse
//!   (`duration: … ms  parse NAME: SQL`), which gives the exact count to compare.
//! - So for every SQL text: forwarded audit events = server `statement` lines +
//!   server `parse` lines, and every executed text was parsed.
//! - Refused statements (block, PW001) never reach the server: the server only sees
//!   pgwarden's injected `pgwarden_refused` (a syntax error), which is filtered out
//!   and counted.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::SinkExt;

use support::audit_file::*;
use support::guarded::*;
use support::*;

const APP: &str = "audit-vs-server-log";

/// What the server logged for sessions with application_name `APP`.
#[derive(Default, Debug)]
struct ServerLog {
    /// `statement: SQL` (simple protocol).
    simple: Vec<String>,
    /// `parse NAME: SQL` (extended protocol, from the duration log).
    parsed: Vec<String>,
    /// `execute NAME: SQL`.
    executed: Vec<String>,
    /// `ERROR:  syntax error at or near "pgwarden_refused"`.
    refusals: usize,
    /// Other ERROR lines.
    errors: Vec<String>,
}

fn server_log(text: &str) -> ServerLog {
    let prefix = format!("@@{APP}@@ ");
    let mut log = ServerLog::default();
    for line in text.lines() {
        let Some(at) = line.find(&prefix) else {
            continue;
        };
        let rest = &line[at + prefix.len()..];
        if let Some(sql) = rest.strip_prefix("LOG:  statement: ") {
            log.simple.push(sql.to_string());
        } else if let Some(r) = rest.strip_prefix("LOG:  execute ") {
            let (_, sql) = r.split_once(": ").expect("execute NAME: SQL");
            log.executed.push(sql.to_string());
        } else if let Some(r) = rest.strip_prefix("LOG:  duration: ") {
            if let Some((_, r)) = r.split_once(" ms  parse ") {
                let (_, sql) = r.split_once(": ").expect("parse NAME: SQL");
                log.parsed.push(sql.to_string());
            }
        } else if let Some(e) = rest.strip_prefix("ERROR:  ") {
            if e.starts_with("syntax error at or near \"pgwarden_refused\"") {
                log.refusals += 1;
            } else {
                log.errors.push(e.to_string());
            }
        }
    }
    log
}

fn counts<'a>(items: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_the_server_ran_is_audited_once_with_its_outcome() {
    let c = PgCluster::builder()
        .setting("log_statement", "'all'")
        .setting("log_min_duration_statement", "0")
        .setting("log_line_prefix", "'%m [%p] @@%a@@ '")
        .start();
    su_exec(&c, &format!("GRANT ALL ON SCHEMA public TO {SCRAM_USER}")).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let proxy = prod_builder(&c)
        .policy_toml(&small_policy("60s", "60s"))
        .extra_toml(&audit_toml(&audit, "all"))
        .start()
        .await;
    let ep = proxy.endpoint();
    let mut cfg = ep.config(SCRAM_USER, SCRAM_PASSWORD, APP_DB);
    cfg.application_name(APP);
    let client = ep.connect_config(&cfg).await.unwrap();

    // SQL text → the command tag its outcome must carry (first execution for
    // prepared statements, the last statement's tag for a multi-statement Query).
    let mut expected_tag: BTreeMap<&str, &str> = BTreeMap::new();

    // Simple queries, one with several statements.
    let create = "CREATE TABLE ops (id int PRIMARY KEY, v text)";
    client.batch_execute(create).await.unwrap();
    expected_tag.insert(create, "CREATE TABLE");
    let multi = "INSERT INTO ops VALUES (1, 'a'); INSERT INTO ops VALUES (2, 'b'); UPDATE ops SET v = 'c' WHERE id = 2";
    client.batch_execute(multi).await.unwrap();
    expected_tag.insert(multi, "UPDATE 1");

    // Extended protocol: a one-off query, and a prepared statement run three times.
    let one_off = "SELECT v FROM ops WHERE id = $1";
    let v: String = client.query_one(one_off, &[&2i32]).await.unwrap().get(0);
    assert_eq!(v, "c");
    expected_tag.insert(one_off, "SELECT 1");
    let insert = "INSERT INTO ops VALUES ($1, $2)";
    let st = client.prepare(insert).await.unwrap();
    for id in 10..13i32 {
        assert_eq!(client.execute(&st, &[&id, &"p"]).await.unwrap(), 1);
    }
    drop(st);
    expected_tag.insert(insert, "INSERT 0 1");

    // COPY (tokio-postgres sends it in the extended protocol).
    let copy = "COPY ops FROM STDIN";
    let sink = client.copy_in(copy).await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"20\tx\n21\ty\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    expected_tag.insert(copy, "COPY 2");

    // A transaction rolled back.
    client.batch_execute("BEGIN").await.unwrap();
    let in_tx = "INSERT INTO ops VALUES (30, 'rolled back')";
    client.batch_execute(in_tx).await.unwrap();
    client.batch_execute("ROLLBACK").await.unwrap();
    expected_tag.insert("BEGIN", "BEGIN");
    expected_tag.insert(in_tx, "INSERT 0 1");
    expected_tag.insert("ROLLBACK", "ROLLBACK");

    // Blocked, and held for self-confirmation then confirmed.
    let blocked = "DELETE FROM ops";
    let e = client.simple_query(blocked).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("PW002"), "{e:?}");
    let rename = "ALTER TABLE ops RENAME TO ops_renamed";
    let e = client.simple_query(rename).await.unwrap_err();
    let msg = expect_code::<()>(Err(e), "PW001");
    let confirmed = format!("/* pgwarden:confirm={} */ {rename}", token_of(&msg));
    client.simple_query(&confirmed).await.unwrap();
    expected_tag.insert(&confirmed, "ALTER TABLE");

    let count = "SELECT count(*) FROM ops_renamed";
    let n: i64 = client.query_one(count, &[]).await.unwrap().get(0);
    assert_eq!(n, 2 + 3 + 2, "the rolled-back insert is not there");
    expected_tag.insert(count, "SELECT 1");
    drop(client);

    let recs = wait_for(&audit, "the session's end", |r| {
        r.iter().any(|e| e["event"] == "session_end")
    })
    .await;
    proxy.shutdown().await;
    // The server writes its log directly; give it a moment for the last lines.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = server_log(&c.log());

    let statements: Vec<&serde_json::Value> = recs
        .iter()
        .filter(|e| e["event"] == "statement" && e["application"] == APP)
        .collect();
    let sql = |e: &serde_json::Value| e["sql"].as_str().unwrap().to_string();
    let forwarded: Vec<&serde_json::Value> = statements
        .iter()
        .copied()
        .filter(|e| {
            matches!(
                e["decision"].as_str(),
                Some("allow" | "audit" | "confirmed" | "approved")
            )
        })
        .collect();
    let refused: Vec<&serde_json::Value> = statements
        .iter()
        .copied()
        .filter(|e| matches!(e["decision"].as_str(), Some("block" | "hold")))
        .collect();
    assert_eq!(
        forwarded.len() + refused.len(),
        statements.len(),
        "unexpected decisions: {statements:#?}"
    );

    // 1. Same statements, same counts.
    let audited = counts(forwarded.iter().map(|e| sql(e)).collect::<Vec<_>>().iter());
    let mut on_server = counts(server.simple.iter());
    for (s, n) in counts(server.parsed.iter()) {
        *on_server.entry(s).or_insert(0) += n;
    }
    assert_eq!(
        audited, on_server,
        "audited (left) vs server-logged (right) statements; server log: {server:#?}"
    );
    for s in &server.executed {
        assert!(
            server.parsed.contains(s),
            "executed but never parsed (so never decided?): {s}"
        );
    }
    assert_eq!(
        counts(server.executed.iter()).get(insert),
        Some(&3),
        "{server:#?}"
    );
    assert!(server.errors.is_empty(), "{:?}", server.errors);
    for s in expected_tag.keys() {
        assert!(audited.contains_key(*s), "not audited: {s}");
    }

    // 2. Refused statements never ran: only pgwarden's injected syntax error.
    assert_eq!(refused.len(), 2, "{refused:#?}");
    let refused_sql: Vec<String> = refused.iter().map(|e| sql(e)).collect();
    assert_eq!(refused_sql, vec![blocked.to_string(), rename.to_string()]);
    for s in &refused_sql {
        for seen in server
            .simple
            .iter()
            .chain(&server.parsed)
            .chain(&server.executed)
        {
            // (The confirmed re-send carries the held SQL after its token comment.)
            assert_ne!(seen, s, "refused {s:?} reached the server");
        }
    }
    assert_eq!(server.refusals, 2, "{server:#?}");

    // 3. One outcome per forwarded statement, with its tag; none for refusals.
    for e in &forwarded {
        let outcomes: Vec<&serde_json::Value> = recs
            .iter()
            .filter(|o| {
                o["event"] == "outcome"
                    && o["session"] == e["session"]
                    && o["statement_id"] == e["statement_id"]
            })
            .collect();
        assert_eq!(outcomes.len(), 1, "outcomes of {e}: {outcomes:#?}");
        let want = expected_tag
            .get(sql(e).as_str())
            .unwrap_or_else(|| panic!("unexpected statement {e}"));
        assert_eq!(outcomes[0]["tag"], *want, "outcome of {}", sql(e));
        assert!(outcomes[0]["sqlstate"].is_null(), "{}", outcomes[0]);
    }
    for e in &refused {
        assert!(
            !recs.iter().any(|o| o["event"] == "outcome"
                && o["session"] == e["session"]
                && o["statement_id"] == e["statement_id"]),
            "a refused statement has an outcome: {e}"
        );
    }
    let (ok, out) = verify(&[&audit]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_continues_the_chain_in_the_same_file() {
    let c = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut last_seq = 0;
    for run in 1..=2 {
        let proxy = prod_builder(&c)
            .extra_toml(&audit_toml(&audit, "all"))
            .start()
            .await;
        let client = proxy
            .endpoint()
            .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
            .await;
        client
            .simple_query(&format!("SELECT 'run {run}'"))
            .await
            .unwrap();
        client.query_one("SELECT $1::int", &[&run]).await.unwrap();
        drop(client);
        wait_for(&audit, "session_end", |r| {
            r.iter().filter(|e| e["event"] == "session_end").count() == run as usize
        })
        .await;
        proxy.shutdown().await;

        let recs = records(&audit);
        let seqs: Vec<u64> = recs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "seq numbers run on without a gap or restart"
        );
        assert!(seqs.len() as u64 > last_seq, "run {run} appended nothing");
        if run == 2 {
            // The second process's first record links to the first one's last.
            let first_of_run2 = &recs[last_seq as usize];
            assert_eq!(first_of_run2["prev"], recs[last_seq as usize - 1]["hash"]);
            assert_eq!(first_of_run2["event"], "policy_reload");
            assert_eq!(first_of_run2["trigger"], "startup");
        }
        last_seq = seqs.len() as u64;
        let (ok, out) = verify(&[&audit]);
        assert!(ok, "after run {run}: {out}");
        assert!(out.contains(&format!("{last_seq} records")), "{out}");
    }
}
