//! The audit log on a full file system (a small tmpfs), through the real proxy on a
//! production target with the example policy: with `statements = "all"` nothing
//! runs unrecorded (every statement gets PW006, `SELECT 1` included); with the
//! default `guarded` scope only guarded statements are refused and ordinary
//! traffic goes on. Both recover once space is free again.

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::audit_file::audit_toml;
use support::*;

/// A tmpfs mounted on a temp directory, unmounted on drop. Needs root (CI runs as
/// root); elsewhere the test fails saying so.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0777"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it and needs root (mount -t tmpfs): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the file system is full.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).expect("create filler");
        let chunk = vec![b'x'; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(b"x");
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn code(
    r: Result<Vec<tokio_postgres::SimpleQueryMessage>, tokio_postgres::Error>,
) -> Option<String> {
    r.err()
        .map(|e| e.code().map_or("?".into(), |c| c.code().to_string()))
}

/// Runs `sql` until it gets `want` (the file system may still take a record or two
/// in the audit file's last page), for up to 5 s.
async fn until(client: &tokio_postgres::Client, sql: &str, want: Option<&str>) -> Option<String> {
    let mut last = None;
    for _ in 0..50 {
        last = code(client.simple_query(sql).await);
        if last.as_deref() == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_all_refuses_everything_on_a_full_disk() {
    let c = PgCluster::start();
    let fs = Tmpfs::mount("256k");
    let audit = fs.path().join("audit.jsonl");
    let proxy = TestProxy::builder()
        .target(TargetSpec::production("prod", &c))
        .extra_toml(&audit_toml(&audit, "all"))
        .start()
        .await;
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    client.simple_query("SELECT 1").await.unwrap();

    let filler = fs.fill();
    assert_eq!(
        until(&client, "SELECT 1", Some("PW006")).await.as_deref(),
        Some("PW006")
    );
    let e = client.simple_query("SELECT 1").await.unwrap_err();
    let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or_default();
    assert!(detail.contains("\"all\""), "{e:?}");

    std::fs::remove_file(filler).unwrap();
    assert_eq!(until(&client, "SELECT 1", None).await, None, "no recovery");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_guarded_keeps_ordinary_traffic_on_a_full_disk() {
    let c = PgCluster::start();
    let fs = Tmpfs::mount("256k");
    let audit = fs.path().join("audit.jsonl");
    let proxy = TestProxy::builder()
        .target(TargetSpec::production("prod", &c))
        .extra_toml(&audit_toml(&audit, "guarded"))
        .start()
        .await;
    let client = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;

    let filler = fs.fill();
    // CREATE TABLE is audited by the example policy: guarded, so it must be on disk
    // before it runs.
    assert_eq!(
        until(
            &client,
            "CREATE TABLE IF NOT EXISTS full1 (id int)",
            Some("PW006")
        )
        .await
        .as_deref(),
        Some("PW006")
    );
    for _ in 0..10 {
        client.simple_query("SELECT 1").await.unwrap();
    }

    std::fs::remove_file(filler).unwrap();
    assert_eq!(
        until(&client, "CREATE TABLE IF NOT EXISTS full1 (id int)", None).await,
        None,
        "no recovery"
    );
    proxy.shutdown().await;
}
