//! `pgwarden demo --non-interactive`: the real binary starts a throwaway cluster and
//! the proxy; a real client (tokio-postgres) drives the statements the demo tells a
//! newcomer to type, and the cluster directory is gone after the demo stops.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_postgres::error::DbError;
use tokio_postgres::{Client, NoTls};

/// A running `pgwarden demo --non-interactive`; killed (SIGKILL) if still running
/// when dropped, in which case the demo's watchdog removes the cluster.
struct Demo {
    child: Child,
    stdin: Option<ChildStdin>,
    info: Value,
    /// Everything the demo printed on stdout before the JSON line.
    text: String,
}

impl Demo {
    fn start() -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgwarden"))
            .args(["demo", "--non-interactive"])
            .env("PGWARDEN_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pgwarden demo");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut text = String::new();
        let info = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with('{') => {
                    break serde_json::from_str::<Value>(&line)
                        .unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
                }
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                }
                Err(e) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!("no JSON line from the demo ({e}; exit status {status:?}); it printed:\n{text}");
                }
            }
        };
        let stdin = child.stdin.take();
        Demo {
            child,
            stdin,
            info,
            text,
        }
    }

    fn port(&self) -> u16 {
        self.info["port"].as_u64().expect("port") as u16
    }

    fn str(&self, key: &str) -> &str {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {}", self.info))
    }

    fn dir(&self) -> PathBuf {
        PathBuf::from(self.str("dir"))
    }

    async fn connect(&self) -> Client {
        let (client, conn) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port())
            .user(self.str("user"))
            .password(self.str("password"))
            .dbname(self.str("database"))
            .application_name("pgwarden-demo-test")
            .connect_timeout(Duration::from_secs(10))
            .connect(NoTls)
            .await
            .expect("connect through the demo's pgwarden");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// Waits for the process to exit; panics after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
        .get(0)
}

/// The server's (or pgwarden's) error for a statement that must fail.
async fn refused(client: &Client, sql: &str) -> DbError {
    match client.simple_query(sql).await {
        Ok(_) => panic!("{sql:?} ran, but it should have been refused"),
        Err(e) => e
            .as_db_error()
            .unwrap_or_else(|| panic!("{sql:?}: not a server error: {e}"))
            .clone(),
    }
}

/// The one-time token in a PW001 error: after `confirm=` if the text shows the
/// prefix, else the first word shaped like a token (10 characters, A-Z and 2-9).
fn token_in(e: &DbError) -> Option<String> {
    let texts = [Some(e.message()), e.detail(), e.hint()];
    let texts: Vec<&str> = texts.into_iter().flatten().collect();
    for t in &texts {
        if let Some(i) = t.find("confirm=") {
            let tok: String = t[i + "confirm=".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if !tok.is_empty() && tok != "TOKEN" {
                return Some(tok);
            }
        }
    }
    texts.iter().find_map(|t| {
        t.split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| {
                w.len() == 10
                    && w.chars()
                        .all(|c| c.is_ascii_uppercase() || ('2'..='9').contains(&c))
            })
            .map(str::to_string)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_sample_data_and_removes_the_cluster_when_stdin_closes() {
    let mut demo = Demo::start();
    let dir = demo.dir();
    assert!(
        dir.is_dir(),
        "{} should exist while the demo runs",
        dir.display()
    );
    // What it tells people to type is there, with the real values.
    for needle in [
        format!("127.0.0.1:{}/app", demo.port()),
        "SELECT count(*) FROM orders;".to_string(),
        "DELETE FROM orders;".to_string(),
        "/* pgwarden:confirm=TOKEN */".to_string(),
        "DROP TABLE invoices;".to_string(),
        format!("PGWARDEN_ADMIN={}", demo.str("admin")),
        format!("PGWARDEN_TOKEN={}", demo.str("token")),
        "holds approve ID".to_string(),
        "trash restore ID".to_string(),
        format!("{}/metrics", demo.str("admin")),
        demo.str("audit").to_string(),
    ] {
        assert!(
            demo.text.contains(&needle),
            "{needle:?} missing from\n{}",
            demo.text
        );
    }
    assert!(PathBuf::from(demo.str("audit")).starts_with(&dir));

    // The demo's own config passes `pgwarden check`.
    let check = Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .args(["check", "--config", demo.str("config")])
        .output()
        .expect("run pgwarden check");
    assert!(
        check.status.success(),
        "check failed:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // The allowed statement returns rows through the proxy, with password auth.
    let client = demo.connect().await;
    let rows = client
        .query("SELECT count(*) FROM orders", &[])
        .await
        .expect("allowed SELECT");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(0), 200);
    assert_eq!(count(&client, "customers").await, 50);
    assert_eq!(count(&client, "invoices").await, 150);
    assert!(count(&client, "billing.payments").await > 0);
    // A wrong password is refused.
    let wrong = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(demo.port())
        .user("alice")
        .password("not-the-password")
        .dbname("app")
        .connect(NoTls)
        .await;
    assert!(wrong.is_err(), "a wrong password must not log in");
    drop(client);

    // Closing stdin stops everything and removes the cluster.
    drop(demo.stdin.take());
    let status = demo.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "demo exited with {status}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_stops_on_sigterm_and_removes_the_cluster() {
    let mut demo = Demo::start();
    let dir = demo.dir();
    let client = demo.connect().await;
    assert_eq!(count(&client, "orders").await, 200);
    let pid = demo.child.id().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let status = demo.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "demo exited with {status}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

/// The statements the demo suggests get the decisions PRODUCT.md promises
/// ("What the client sees"): PW002 for a block, PW001 with a one-time token for a
/// self-confirmation, and the statement runs when repeated with the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_blocks_and_holds_what_it_says_it_does() {
    let mut demo = Demo::start();
    let dir = demo.dir();
    let client = demo.connect().await;

    // Blocked: unbounded writes; the table is unchanged and the session usable.
    let before: String = client
        .query_one("SELECT sum(total)::text FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    for sql in ["DELETE FROM orders;", "UPDATE orders SET total = 0;"] {
        let e = refused(&client, sql).await;
        assert_eq!(e.code().code(), "PW002", "{sql}: {}", e.message());
    }
    assert_eq!(count(&client, "orders").await, 200);
    let after: String = client
        .query_one("SELECT sum(total)::text FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after, "a blocked UPDATE changed the data");
    let e = refused(&client, "DROP DATABASE app;").await;
    assert_eq!(e.code().code(), "PW002", "{}", e.message());

    // Held for self-confirmation: PW001 with a one-time token; nothing ran yet.
    let rename = "ALTER TABLE customers RENAME COLUMN email TO contact_email;";
    let e = refused(&client, rename).await;
    assert_eq!(e.code().code(), "PW001", "{}", e.message());
    let token = token_in(&e).unwrap_or_else(|| {
        panic!(
            "no token in PW001: message {:?} detail {:?} hint {:?}",
            e.message(),
            e.detail(),
            e.hint()
        )
    });
    let has_column = "SELECT count(*) FROM information_schema.columns \
                      WHERE table_name = 'customers' AND column_name = 'contact_email'";
    let n: i64 = client.query_one(has_column, &[]).await.unwrap().get(0);
    assert_eq!(n, 0, "the held rename ran before it was confirmed");

    // Confirmed with the token: it runs.
    client
        .simple_query(&format!("/* pgwarden:confirm={token} */ {rename}"))
        .await
        .expect("the confirmed rename runs");
    let n: i64 = client.query_one(has_column, &[]).await.unwrap().get(0);
    assert_eq!(n, 1, "the confirmed rename did not run");

    drop(client);
    drop(demo.stdin.take());
    let status = demo.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "demo exited with {status}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

/// The approver flow the demo describes: `TRUNCATE billing.refunds;` waits for a
/// second person; `pgwarden holds list` shows it and `pgwarden holds approve ID`
/// (admin URL and token from the demo's JSON line, in PGWARDEN_ADMIN /
/// PGWARDEN_TOKEN) lets it run: the waiting client gets its normal result and the
/// table is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_approver_flow_with_the_holds_cli() {
    let mut demo = Demo::start();
    let dir = demo.dir();
    let client = std::sync::Arc::new(demo.connect().await);
    let refunds = count(&client, "billing.refunds").await;
    assert!(refunds > 0);
    let c = std::sync::Arc::clone(&client);
    let held = tokio::spawn(async move {
        c.simple_query("TRUNCATE billing.refunds;")
            .await
            .map(|_| ())
    });

    let admin = demo.str("admin").to_string();
    let token = demo.str("token").to_string();
    let holds = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"));
        cmd.arg("holds")
            .args(args)
            .env("PGWARDEN_ADMIN", &admin)
            .env("PGWARDEN_TOKEN", &token)
            .env("PGWARDEN_LOG", "warn");
        async move {
            let out = cmd.output().await.expect("run pgwarden holds");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        let (ok, out) = holds(&["list", "--json"]).await;
        assert!(ok, "holds list failed: {out}");
        let list: Vec<Value> =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        if let Some(h) = list.iter().find(|h| {
            h["sql"]
                .as_str()
                .unwrap_or("")
                .contains("TRUNCATE billing.refunds")
        }) {
            assert_eq!(h["user"], "alice", "{h}");
            break h["id"].as_u64().expect("hold id");
        }
        assert!(
            Instant::now() < deadline,
            "the TRUNCATE never showed in holds list: {out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!held.is_finished(), "the held TRUNCATE did not wait");
    // Still there while held (checked on another connection).
    let other = demo.connect().await;
    assert_eq!(count(&other, "billing.refunds").await, refunds);
    let (ok, out) = holds(&["list"]).await;
    assert!(ok && out.contains(&format!("#{id} ")), "{out}");

    let id_arg = id.to_string();
    let (ok, out) = holds(&["approve", id_arg.as_str()]).await;
    assert!(ok, "holds approve failed: {out}");
    assert!(out.contains(&format!("approved hold #{id}")), "{out}");
    tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the approved TRUNCATE did not complete within 10 s")
        .unwrap()
        .expect("the approved TRUNCATE succeeds for its client");
    assert_eq!(count(&other, "billing.refunds").await, 0, "not emptied");
    // Approving again: no such pending hold.
    let (ok, out) = holds(&["approve", id_arg.as_str()]).await;
    assert!(!ok && out.contains("404"), "{out}");

    drop(other);
    drop(client);
    drop(demo.stdin.take());
    let status = demo.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "demo exited with {status}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

/// The trash the demo describes: `DROP TABLE invoices;` answers DROP TABLE with a
/// NOTICE naming the item, the table is gone (its rows destroyed as far as the
/// name goes), and `pgwarden trash restore ID` with the demo's connection details
/// brings back every row (md5 of the rows and the table's columns and constraints
/// as before), with an audit record of the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_dropped_table_comes_back_with_trash_restore() {
    let mut demo = Demo::start();
    let dir = demo.dir();
    assert!(
        demo.text.contains("trash restore ID") && demo.text.contains("drops-go-to-the-trash"),
        "{}",
        demo.text
    );
    let (client, mut conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(demo.port())
        .user(demo.str("user"))
        .password(demo.str("password"))
        .dbname(demo.str("database"))
        .connect(NoTls)
        .await
        .expect("connect through the demo's pgwarden");
    let (tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = futures_util::StreamExt::next(&mut stream).await {
            if let tokio_postgres::AsyncMessage::Notice(n) = m {
                let _ = tx.send(n.message().to_string());
            }
        }
    });
    let md5 = "SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM invoices i";
    let shape = "SELECT string_agg(conname || ':' || pg_get_constraintdef(oid), ';' ORDER BY conname) \
                 || '|' || (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ',' ORDER BY attnum) \
                 FROM pg_attribute WHERE attrelid = 'invoices'::regclass AND attnum > 0) \
                 FROM pg_constraint WHERE conrelid = 'invoices'::regclass";
    let rows_before: String = client.query_one(md5, &[]).await.unwrap().get(0);
    let shape_before: String = client.query_one(shape, &[]).await.unwrap().get(0);
    assert_eq!(count(&client, "invoices").await, 150);

    let msgs = client
        .simple_query("DROP TABLE invoices;")
        .await
        .expect("the DROP is answered");
    assert!(
        msgs.iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(_))),
        "{msgs:?}"
    );
    let notice = tokio::time::timeout(Duration::from_secs(10), notices.recv())
        .await
        .expect("a notice")
        .expect("a notice");
    assert!(
        notice.contains("was moved to the trash as item"),
        "{notice}"
    );
    let id: String = notice
        .split("as item ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("item id")
        .to_string();
    let gone: bool = client
        .query_one("SELECT to_regclass('public.invoices') IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(gone, "invoices still there after the DROP");

    // Restore as the demo tells people to: directly against PostgreSQL.
    let audit = dir.join("trash-audit.jsonl");
    let url = format!(
        "host=127.0.0.1 port={} dbname={} user={}",
        demo.info["postgres_port"],
        demo.str("database"),
        demo.str("user")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .args([
            "trash",
            "restore",
            &id,
            "--password-env",
            "PGWARDEN_TRASH_PASSWORD",
        ])
        .arg("--audit")
        .arg(&audit)
        .env("PGWARDEN_TRASH_URL", &url)
        .env("PGWARDEN_TRASH_PASSWORD", demo.str("password"))
        .env("PGWARDEN_LOG", "warn")
        .output()
        .expect("run pgwarden trash restore");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&client, "invoices").await, 150);
    let rows_after: String = client.query_one(md5, &[]).await.unwrap().get(0);
    let shape_after: String = client.query_one(shape, &[]).await.unwrap().get(0);
    assert_eq!(rows_after, rows_before);
    assert_eq!(shape_after, shape_before);
    let log = std::fs::read_to_string(&audit).expect("the restore's audit log");
    assert!(log.contains("\"event\":\"restore\""), "{log}");

    drop(client);
    drop(demo.stdin.take());
    let status = demo.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "demo exited with {status}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}
