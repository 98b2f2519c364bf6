//! Tests of the writer, the chain across restarts and reopen, durability and failure
//! handling, and verification against every kind of tampering.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::chain::{seal, ChainState};
use super::*;
use crate::config::{AuditConfig, AuditScope, Durability};

fn stmt(i: u64) -> Event {
    StatementEvent {
        session: 7,
        statement_id: i,
        client: Some("10.0.0.1:5555".into()),
        user: "alice".into(),
        database: "app".into(),
        application: "psql".into(),
        target: "prod".into(),
        environment: "production".into(),
        sql: format!("DELETE FROM orders WHERE id = {i}"),
        fingerprint: "0123456789abcdef".into(),
        classes: vec!["delete.bounded".into()],
        objects: vec!["orders".into()],
        decision: Disposition::Audit,
        rule: Some("audit-deletes".into()),
        hold_id: None,
        approver: None,
        shadow: false,
        plan: None,
        impact: None,
        blast: None,
    }
    .into()
}

fn cfg(path: &Path) -> AuditConfig {
    AuditConfig {
        path: Some(path.to_path_buf()),
        statements: AuditScope::Guarded,
        durability: Durability::BeforeExecute,
        redact: false,
    }
}

async fn write_file(path: &Path, n: u64) -> Vec<u64> {
    let log = AuditLog::open(&cfg(path)).expect("open");
    let mut seqs = Vec::new();
    for i in 1..=n {
        seqs.push(log.record_durable(stmt(i)).await.expect("record"));
    }
    seqs
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write");
}

fn broken_at(path: &Path) -> (u64, String) {
    match verify(path) {
        Err(VerifyError::Broken { line, reason, .. }) => (line, reason),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

async fn ten(dir: &Path) -> PathBuf {
    let p = dir.join("audit.jsonl");
    assert_eq!(write_file(&p, 10).await, (1..=10).collect::<Vec<_>>());
    let r = verify(&p).expect("intact log verifies");
    assert_eq!(r.records, 10);
    assert_eq!(r.continues_from, None);
    p
}

#[tokio::test]
async fn lines_parse_back_as_records_with_every_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let ls = lines(&p);
    let r = Record::parse(&ls[0]).expect("parse");
    assert_eq!(r.seq, 1);
    assert_eq!(r.prev, GENESIS);
    assert_eq!(r.event, stmt(1));
    assert!(ls[0].starts_with(r#"{"seq":1,"ts":""#), "{}", ls[0]);
    let v: serde_json::Value = serde_json::from_str(&ls[0]).expect("json");
    for key in [
        "ts",
        "seq",
        "session",
        "statement_id",
        "client",
        "user",
        "database",
        "application",
        "target",
        "environment",
        "sql",
        "fingerprint",
        "classes",
        "objects",
        "decision",
        "rule",
        "hold_id",
        "approver",
        "shadow",
        "plan",
        "prev",
        "hash",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["event"], "statement");
    assert_eq!(v["decision"], "audit");
    assert_eq!(v["hold_id"], serde_json::Value::Null);
    let r2 = Record::parse(&ls[1]).expect("parse");
    assert_eq!(r2.prev, r.hash);
}

#[tokio::test]
async fn tamper_edit_a_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let mut ls = lines(&p);
    ls[3] = ls[3].replace("\"user\":\"alice\"", "\"user\":\"bob\"");
    write_lines(&p, &ls);
    let (line, why) = broken_at(&p);
    assert_eq!(line, 4);
    assert!(why.contains("hash mismatch"), "{why}");
}

#[tokio::test]
async fn tamper_edit_and_rehash_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let mut ls = lines(&p);
    let r = Record::parse(&ls[3]).expect("parse");
    let mut ev = r.event.clone();
    if let Event::Statement(s) = &mut ev {
        s.user = "bob".into();
    }
    let mut out = Vec::new();
    seal(&mut out, r.seq, &r.ts, &ev, &r.prev).expect("seal");
    ls[3] = String::from_utf8(out).expect("utf8").trim_end().to_string();
    write_lines(&p, &ls);
    let (line, why) = broken_at(&p);
    assert_eq!(
        line, 5,
        "the forged line verifies on its own; the next one does not"
    );
    assert!(why.contains("prev does not match"), "{why}");
}

#[tokio::test]
async fn tamper_delete_a_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let mut ls = lines(&p);
    ls.remove(3);
    write_lines(&p, &ls);
    let (line, why) = broken_at(&p);
    assert_eq!(line, 4);
    assert!(why.contains("record 4 is missing"), "{why}");
}

#[tokio::test]
async fn tamper_insert_a_forged_line_with_a_valid_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let mut ls = lines(&p);
    let r3 = Record::parse(&ls[2]).expect("parse");
    let mut out = Vec::new();
    seal(&mut out, 4, &r3.ts, &stmt(99), &r3.hash).expect("seal");
    ls.insert(
        3,
        String::from_utf8(out).expect("utf8").trim_end().to_string(),
    );
    write_lines(&p, &ls);
    let (line, why) = broken_at(&p);
    assert_eq!(line, 5);
    assert!(why.contains("seq 4 after 4"), "{why}");
}

#[tokio::test]
async fn tamper_swap_two_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let mut ls = lines(&p);
    ls.swap(5, 6);
    write_lines(&p, &ls);
    let (line, why) = broken_at(&p);
    assert_eq!(line, 6);
    assert!(why.contains("seq 7 after 5"), "{why}");
}

#[tokio::test]
async fn tamper_truncate_the_last_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let text = std::fs::read(&p).expect("read");
    std::fs::write(&p, &text[..text.len() - 20]).expect("write");
    let (line, why) = broken_at(&p);
    assert_eq!(line, 10);
    assert!(why.contains("truncated"), "{why}");
}

#[tokio::test]
async fn tamper_edit_the_first_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let mut ls = lines(&p);
    ls[0] = ls[0].replace("DELETE FROM orders", "SELECT * FROM orders");
    write_lines(&p, &ls);
    let (line, why) = broken_at(&p);
    assert_eq!(line, 1);
    assert!(why.contains("hash mismatch"), "{why}");
}

#[tokio::test]
async fn tamper_garbage_and_blank_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let mut ls = lines(&p);
    ls.insert(2, String::new());
    write_lines(&p, &ls);
    assert_eq!(broken_at(&p).0, 3);
    ls[2] = "not json".into();
    write_lines(&p, &ls);
    assert_eq!(broken_at(&p).0, 3);
}

#[tokio::test]
async fn head_removed_reads_as_a_continued_chain() {
    // A hash chain cannot tell a removed head from a rotated file: verify accepts it
    // and says where the chain starts; the caller checks that against the previous file.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ten(dir.path()).await;
    let ls = lines(&p);
    write_lines(&p, &ls[2..]);
    let r = verify(&p).expect("verifies");
    assert_eq!(r.records, 8);
    assert_eq!(r.first_seq, Some(3));
    let second = Record::parse(&ls[1]).expect("parse");
    assert_eq!(r.continues_from, Some(second.hash));
}

#[tokio::test]
async fn restart_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    assert_eq!(write_file(&p, 3).await, vec![1, 2, 3]);
    assert_eq!(write_file(&p, 3).await, vec![4, 5, 6]);
    let r = verify(&p).expect("verifies");
    assert_eq!((r.records, r.first_seq, r.last_seq), (6, Some(1), Some(6)));
}

#[tokio::test]
async fn restart_after_a_torn_write_cuts_the_torn_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    write_file(&p, 3).await;
    let mut text = std::fs::read(&p).expect("read");
    text.extend_from_slice(br#"{"seq":4,"ts":"2025-"#);
    std::fs::write(&p, &text).expect("write");
    assert_eq!(write_file(&p, 2).await, vec![4, 5]);
    assert_eq!(verify(&p).expect("verifies").records, 5);
}

#[tokio::test]
async fn restart_refuses_a_file_whose_last_line_is_not_a_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    std::fs::write(&p, "hello\n").expect("write");
    let err = AuditLog::open(&cfg(&p)).expect_err("must refuse");
    assert!(err.to_string().contains("not an audit record"), "{err}");
}

#[test]
fn open_fails_when_the_directory_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("nope").join("audit.jsonl");
    let err = AuditLog::open(&cfg(&p)).expect_err("must fail");
    assert!(matches!(err, AuditError::Open { .. }), "{err}");
}

#[tokio::test]
async fn disabled_log_records_nothing_and_succeeds() {
    let log = AuditLog::open(&AuditConfig {
        path: None,
        statements: AuditScope::All,
        durability: Durability::BeforeExecute,
        redact: false,
    })
    .expect("open");
    assert!(!log.is_enabled());
    assert_eq!(log.record_durable(stmt(1)).await.expect("ok"), 0);
    log.record(stmt(2));
    assert!(log.healthy());
}

#[tokio::test]
async fn reopen_after_rename_continues_in_the_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let log = AuditLog::open(&cfg(&p)).expect("open");
    for i in 1..=3 {
        log.record_durable(stmt(i)).await.expect("record");
    }
    std::fs::rename(&p, &rotated).expect("rename");
    log.reopen();
    for i in 4..=6 {
        log.record_durable(stmt(i)).await.expect("record");
    }
    drop(log);
    let old = verify(&rotated).expect("old file verifies");
    assert_eq!((old.records, old.last_seq), (3, Some(3)));
    let new = verify(&p).expect("new file verifies");
    assert_eq!((new.records, new.first_seq), (3, Some(4)));
    assert_eq!(new.continues_from, Some(old.last_hash.clone()));
    let both = verify_files(&[&rotated, &p]).expect("both verify as one chain");
    assert_eq!((both.records, both.continues_from), (6, None));
    // In the wrong order they do not.
    assert!(matches!(
        verify_files(&[&p, &rotated]),
        Err(VerifyError::Broken { line: 1, .. })
    ));
}

#[tokio::test]
async fn rename_without_reopen_is_noticed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let log = AuditLog::open(&cfg(&p)).expect("open");
    log.record_durable(stmt(1)).await.expect("record");
    std::fs::rename(&p, &rotated).expect("rename");
    log.record_durable(stmt(2)).await.expect("record");
    drop(log);
    assert_eq!(lines(&rotated).len(), 1);
    assert_eq!(lines(&p).len(), 1);
    verify_files(&[&rotated, &p]).expect("one chain");
}

#[tokio::test]
async fn buffered_records_keep_per_caller_order_and_flush_syncs_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&cfg(&p)).expect("open");
    for i in 1..=500 {
        log.record(stmt(i));
    }
    assert_eq!(log.flush().await.expect("flush"), 500);
    let ids: Vec<u64> = lines(&p)
        .iter()
        .map(|l| match Record::parse(l).expect("parse").event {
            Event::Statement(s) => s.statement_id,
            e => panic!("unexpected {e:?}"),
        })
        .collect();
    assert_eq!(ids, (1..=500).collect::<Vec<_>>());
    assert_eq!(verify(&p).expect("verifies").records, 500);
}

/// An in-memory sink that counts syncs and fails on demand (half a batch is written
/// before the failure, as a real short write would).
#[derive(Clone, Default)]
struct Mem {
    data: Arc<Mutex<Vec<u8>>>,
    syncs: Arc<AtomicU64>,
    fail: Arc<AtomicBool>,
    sync_delay: Duration,
    len_before: usize,
}

impl Mem {
    fn text(&self) -> String {
        String::from_utf8(self.data.lock().expect("lock").clone()).expect("utf8")
    }
}

impl Sink for Mem {
    fn prepare(&mut self) -> io::Result<Option<ChainState>> {
        self.len_before = self.data.lock().expect("lock").len();
        Ok(None)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut d = self.data.lock().expect("lock");
        if self.fail.load(Ordering::SeqCst) {
            d.extend_from_slice(&buf[..buf.len() / 2]);
            return Err(io::Error::other("No space left on device"));
        }
        d.extend_from_slice(buf);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        std::thread::sleep(self.sync_delay);
        self.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn abandon(&mut self) {
        self.data.lock().expect("lock").truncate(self.len_before);
    }
    fn reopen(&mut self) {}
}

#[tokio::test]
async fn record_durable_returns_after_the_sync() {
    let mem = Mem::default();
    let log = AuditLog::with_sink(Box::new(mem.clone()), "mem").expect("open");
    log.record(stmt(1));
    let seq = log.record_durable(stmt(2)).await.expect("record");
    assert_eq!(seq, 2);
    assert!(mem.syncs.load(Ordering::SeqCst) >= 1);
    assert_eq!(mem.text().lines().count(), 2);
    // Buffered-only batches are not synced.
    let before = mem.syncs.load(Ordering::SeqCst);
    for i in 3..=50 {
        log.record(stmt(i));
    }
    drop(log); // joins the writer: everything queued is written
    assert_eq!(mem.text().lines().count(), 50);
    assert!(mem.syncs.load(Ordering::SeqCst) <= before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_durable_records_share_syncs() {
    let mem = Mem {
        sync_delay: Duration::from_millis(20),
        ..Mem::default()
    };
    let log = AuditLog::with_sink(Box::new(mem.clone()), "mem").expect("open");
    let mut tasks = Vec::new();
    for i in 0..32 {
        let log = log.clone();
        tasks.push(tokio::spawn(
            async move { log.record_durable(stmt(i)).await },
        ));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("join").expect("record"));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=32).collect::<Vec<_>>());
    let syncs = mem.syncs.load(Ordering::SeqCst);
    assert!(syncs < 32 / 2, "group commit: {syncs} syncs for 32 records");
    let r = verify_reader(mem.text().as_bytes(), "mem").expect("verifies");
    assert_eq!(r.records, 32);
}

#[tokio::test]
async fn a_failed_write_refuses_durable_records_and_recovers() {
    let mem = Mem::default();
    let log = AuditLog::with_sink(Box::new(mem.clone()), "mem").expect("open");
    log.record_durable(stmt(1)).await.expect("record");
    assert!(log.healthy());

    mem.fail.store(true, Ordering::SeqCst);
    log.record(stmt(2)); // lost (counted)
    let err = log.record_durable(stmt(3)).await.expect_err("must fail");
    assert!(matches!(err, AuditError::Write(_)), "{err}");
    assert!(!log.healthy());
    assert!(log.write_errors() >= 1);
    assert!(log
        .last_error()
        .expect("an error")
        .contains("No space left"));
    // Half a batch reached the sink and was cut again.
    assert_eq!(mem.text().lines().count(), 1);

    mem.fail.store(false, Ordering::SeqCst);
    let seq = log.record_durable(stmt(4)).await.expect("recovered");
    assert!(log.healthy());
    assert_eq!(seq, 3, "seq 2 is the audit_gap record");
    let text = mem.text();
    let recs: Vec<Record> = text
        .lines()
        .map(|l| Record::parse(l).expect("parse"))
        .collect();
    match &recs[1].event {
        Event::AuditGap(g) => {
            assert_eq!(g.refused, 1);
            assert!(g.lost >= 1);
            assert!(g.error.contains("No space left"));
        }
        e => panic!("expected audit_gap, got {e:?}"),
    }
    assert_eq!(recs[2].event, stmt(4));
    verify_reader(text.as_bytes(), "mem").expect("chain intact across the failure");
}

#[tokio::test]
async fn recovers_by_itself_while_idle() {
    let mem = Mem::default();
    let log = AuditLog::with_sink(Box::new(mem.clone()), "mem").expect("open");
    mem.fail.store(true, Ordering::SeqCst);
    log.record_durable(stmt(1)).await.expect_err("must fail");
    assert!(!log.healthy());
    mem.fail.store(false, Ordering::SeqCst);
    for _ in 0..50 {
        if log.healthy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log.healthy(), "the writer retries with an audit_gap record");
    assert!(mem.text().contains("\"event\":\"audit_gap\""));
}

#[tokio::test]
async fn a_removed_directory_fails_then_recovers_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("audit");
    std::fs::create_dir(&sub).expect("mkdir");
    let p = sub.join("audit.jsonl");
    let log = AuditLog::open(&cfg(&p)).expect("open");
    log.record_durable(stmt(1)).await.expect("record");
    log.record_durable(stmt(2)).await.expect("record");
    let saved = dir.path().join("saved.jsonl");
    std::fs::copy(&p, &saved).expect("copy");
    std::fs::remove_dir_all(&sub).expect("rm");

    let err = log.record_durable(stmt(3)).await.expect_err("must fail");
    assert!(!log.healthy(), "{err}");
    assert!(log.write_errors() >= 1);

    std::fs::create_dir(&sub).expect("mkdir again");
    let seq = log.record_durable(stmt(4)).await.expect("recovered");
    assert!(log.healthy());
    assert_eq!(seq, 4, "3 = audit_gap");
    drop(log);
    let r = verify(&p).expect("the new file verifies");
    assert_eq!(r.first_seq, Some(3));
    verify_files(&[&saved, &p]).expect("continues the chain of the lost file");
}
