//! `pgwarden audit verify` as a user runs it: OK line and exit 0, or `FILE:LINE: broken: why` and exit 1.

use std::path::Path;
use std::process::Command;

use pgwarden::audit::{AuditLog, Event, Expire};
use pgwarden::config::{AuditConfig, AuditScope, Durability};

async fn write(path: &Path, n: u64) {
    let log = AuditLog::open(&AuditConfig {
        path: Some(path.to_path_buf()),
        statements: AuditScope::All,
        durability: Durability::BeforeExecute,
        redact: false,
    })
    .expect("open");
    for i in 1..=n {
        log.record_durable(Event::Expire(Expire {
            hold_id: i,
            session: 1,
            statement_id: i,
        }))
        .await
        .expect("record");
    }
}

fn verify(files: &[&Path]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .arg("audit")
        .arg("verify")
        .args(files)
        .output()
        .expect("run pgwarden");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn verify_reports_ok_then_the_broken_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    write(&p, 5).await;
    let (code, out) = verify(&[&p]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: 5 records, last hash "), "{out}");

    let text = std::fs::read_to_string(&p).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(2);
    std::fs::write(&p, lines.join("\n") + "\n").expect("write");
    let (code, out) = verify(&[&p]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        format!(
            "{}:3: broken: seq 4 after 2: record 3 is missing (removed, or lines reordered)",
            p.display()
        )
    );
}

#[tokio::test]
async fn verify_notes_a_file_that_starts_mid_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    write(&p, 4).await;
    let text = std::fs::read_to_string(&p).expect("read");
    let tail: Vec<&str> = text.lines().skip(2).collect();
    std::fs::write(&p, tail.join("\n") + "\n").expect("write");
    let (code, out) = verify(&[&p]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 2 records"), "{out}");
    assert!(out.contains("starts mid-chain at seq 3"), "{out}");
}

/// The independent check in docs/audit.md accepts a real log and rejects an edited one.
#[tokio::test]
async fn the_documented_python_check_agrees() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 not found; skipped");
        return;
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/audit.md"))
        .expect("docs/audit.md");
    let start = doc.find("```python\n").expect("python block") + "```python\n".len();
    let script = &doc[start..start + doc[start..].find("```").expect("end of block")];
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    write(&p, 6).await;
    let run = |path: &Path| {
        Command::new("python3")
            .arg("-c")
            .arg(script.replace(
                "\"audit.jsonl\"",
                &format!("{:?}", path.display().to_string()),
            ))
            .output()
            .expect("python3")
    };
    let ok = run(&p);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("OK 6 "));
    let text = std::fs::read_to_string(&p)
        .expect("read")
        .replace("\"hold_id\":3", "\"hold_id\":4");
    std::fs::write(&p, text).expect("write");
    let bad = run(&p);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 3: edited"));
}
