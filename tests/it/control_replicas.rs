//! Holds shared by replicas: three pgwarden processes (the real binary) with one
//! control database, all on this machine. A hold made on A is approved on B and runs
//! on A (time from the approval request to the statement's result, p50/p99, printed;
//! also with notifications switched off, so the poll alone carries the decision);
//! a hold is denied on C; a hold expires; 200 concurrent holds spread over the three
//! are decided on other replicas and exactly the approved ones run; A is killed with
//! SIGKILL while holding: its holds never run and show as withdrawn on B and C; the
//! control database is stopped and restarted: meanwhile holds are refused with
//! PW007, allowed statements go on, /readyz and `pgwarden_control_up` say so, and
//! holds work again without a restart. Every outcome is checked on the server.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use support::guarded::*;
use support::http;
use support::*;

const TOKEN: &str = "replicas-alice-token";
const TOKEN_ENV: &str = "PGWARDEN_TEST_TOKEN_REPLICAS_ALICE";
const CONTROL_PW_ENV: &str = "PGWARDEN_TEST_CONTROL_PASSWORD";

const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "ledger-approve"
environment = "production"
classes = ["write"]
objects = ["ledger", "*.ledger"]
action = "hold"
confirm = "approver"
timeout = "2m"

[[rule]]
name = "drops-approve-quickly"
environment = "production"
classes = ["drop.*"]
action = "hold"
confirm = "approver"
timeout = "2s"
"#;

struct Replica {
    name: &'static str,
    proc: Option<ProxyProcess>,
    admin: SocketAddr,
}

impl Replica {
    fn ep(&self) -> Endpoint {
        self.proc.as_ref().expect("replica running").endpoint()
    }
}

async fn replica(name: &'static str, target: &PgCluster, control: &PgCluster) -> Replica {
    let admin_port = free_port();
    let extra = format!(
        "\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\napprovers = {{ alice = {{ token_env = \"{TOKEN_ENV}\" }} }}\n\
         \n[control]\nurl = \"host=127.0.0.1 port={} user={SUPERUSER} dbname={APP_DB}\"\n\
         password_env = \"{CONTROL_PW_ENV}\"\nreplica = \"{name}\"\n\
         poll_interval = \"250ms\"\nreplica_timeout = \"2s\"\n",
        control.port()
    );
    let proc = prod_builder(target)
        .policy_toml(POLICY)
        .extra_toml(&extra)
        .spawn_binary()
        .await;
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let r = Replica {
        name,
        proc: Some(proc),
        admin,
    };
    // Connected to the control database (holds can be recorded).
    eventually(
        &format!("replica {name} connected to the control database"),
        Duration::from_secs(20),
        || async move {
            let r = http::get(admin, "/readyz", None).await;
            r.json()["control"] == "ok"
        },
    )
    .await;
    r
}

async fn pending(admin: SocketAddr) -> Vec<serde_json::Value> {
    let r = http::get(admin, "/holds", Some(TOKEN)).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json().as_array().cloned().unwrap_or_default()
}

async fn status(admin: SocketAddr, id: u64) -> String {
    let r = http::get(admin, &format!("/holds/{id}"), Some(TOKEN)).await;
    assert_eq!(r.status, 200, "GET /holds/{id}: {r:?}");
    r.json()["status"].as_str().unwrap_or_default().to_string()
}

/// Waits until `admin` lists hold `id`.
async fn listed(admin: SocketAddr, id: u64) {
    eventually(
        &format!("hold #{id} listed on {admin}"),
        Duration::from_secs(10),
        || async move { pending(admin).await.iter().any(|h| h["id"] == id) },
    )
    .await;
}

async fn approve(admin: SocketAddr, id: u64) -> http::Response {
    http::post(admin, &format!("/holds/{id}/approve"), Some(TOKEN), None).await
}

async fn deny(admin: SocketAddr, id: u64, reason: &str) -> http::Response {
    let body = serde_json::json!({ "reason": reason }).to_string();
    http::post(
        admin,
        &format!("/holds/{id}/deny"),
        Some(TOKEN),
        Some(&body),
    )
    .await
}

async fn done(h: Held) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(20), h.task)
        .await
        .expect("held statement not resolved within 20 s")
        .expect("task panicked")
        .map_err(|e| sqlstate(&e).unwrap_or_else(|| format!("client error {e}")))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_one_set_of_holds() {
    std::env::set_var(TOKEN_ENV, TOKEN);
    std::env::set_var(CONTROL_PW_ENV, SUPERUSER_PASSWORD);
    let target = PgCluster::builder()
        .setting("max_connections", "400")
        .start();
    let mut control = PgCluster::start();
    victim_table(&target, "ledger", 0, SCRAM_USER).await;
    victim_table(&target, "doomed", 3, SCRAM_USER).await;
    let a = replica("a", &target, &control).await;
    let b = replica("b", &target, &control).await;
    let c = replica("c", &target, &control).await;
    let mut decisions = 0u32;
    let mut holds = 0u32;

    // Approve on B a hold made on A: it runs on A, once; timed, many times.
    let rounds = 60;
    let mut latencies = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let h = hold(
            &a.ep(),
            SCRAM_USER,
            SCRAM_PASSWORD,
            &format!("INSERT INTO ledger VALUES ({i}, 'approved on b')"),
        )
        .await;
        holds += 1;
        listed(b.admin, h.id).await;
        let started = Instant::now();
        let r = approve(b.admin, h.id).await;
        assert_eq!(r.status, 200, "{r:?}");
        decisions += 1;
        done(h).await.expect("approved on B, ran on A");
        latencies.push(started.elapsed());
    }
    assert_eq!(server_count(&target, "ledger").await, rounds as i64);
    latencies.sort();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    eprintln!(
        "approval on B -> statement done on A, {rounds} holds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        latencies[rounds - 1].as_secs_f64() * 1000.0
    );

    // Without notifications (the trigger switched off in the control database), the
    // owning replica finds the decision by its poll (`poll_interval` 250 ms): timed.
    let db = control.superuser_client_db(APP_DB).await;
    db.batch_execute("ALTER TABLE pgwarden.holds DISABLE TRIGGER holds_notify")
        .await
        .expect("switch notifications off");
    let polled_rounds = 20;
    let mut polled = Vec::with_capacity(polled_rounds);
    for i in 0..polled_rounds {
        let h = hold(
            &a.ep(),
            SCRAM_USER,
            SCRAM_PASSWORD,
            &format!(
                "INSERT INTO ledger VALUES ({}, 'found by the poll')",
                500 + i
            ),
        )
        .await;
        holds += 1;
        listed(b.admin, h.id).await;
        let started = Instant::now();
        assert_eq!(approve(b.admin, h.id).await.status, 200);
        decisions += 1;
        done(h).await.expect("approved on B, found by A's poll");
        polled.push(started.elapsed());
    }
    db.batch_execute("ALTER TABLE pgwarden.holds ENABLE TRIGGER holds_notify")
        .await
        .expect("switch notifications on");
    drop(db);
    polled.sort();
    let (poll50, poll99) = (percentile(&polled, 0.50), percentile(&polled, 0.99));
    eprintln!(
        "approval on B -> statement done on A by the poll alone (poll_interval 250 ms), {polled_rounds} holds: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        poll50.as_secs_f64() * 1000.0,
        poll99.as_secs_f64() * 1000.0,
        polled[polled_rounds - 1].as_secs_f64() * 1000.0
    );
    assert!(
        polled[polled_rounds - 1] < Duration::from_secs(5),
        "the poll finds every decision: {polled:?}"
    );
    su_exec(&target, "DELETE FROM ledger WHERE id >= 500").await;

    // A decided hold stays decided: approving again, on any replica, is refused.
    let r = approve(c.admin, 1).await;
    assert_ne!(r.status, 200, "a second approval of hold #1: {r:?}");

    // Deny on C a hold made on B.
    let h = hold(
        &b.ep(),
        SCRAM_USER,
        SCRAM_PASSWORD,
        "INSERT INTO ledger VALUES (-1, 'denied on c')",
    )
    .await;
    holds += 1;
    let id = h.id;
    listed(c.admin, id).await;
    let r = deny(c.admin, id, "not during the freeze").await;
    assert_eq!(r.status, 200, "{r:?}");
    decisions += 1;
    assert_eq!(done(h).await, Err("PW004".into()));
    let r = http::get(a.admin, &format!("/holds/{id}"), Some(TOKEN)).await;
    assert_eq!(r.json()["status"], "denied", "{r:?}");
    assert_eq!(r.json()["decided_by"], "alice", "{r:?}");
    assert_eq!(r.json()["reason"], "not during the freeze", "{r:?}");

    // Expiry: nobody decides; the owner expires it and every replica sees so.
    let h = hold(&c.ep(), SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE doomed").await;
    holds += 1;
    let id = h.id;
    assert_eq!(done(h).await, Err("PW005".into()));
    assert_eq!(status(a.admin, id).await, "expired");
    assert_eq!(approve(b.admin, id).await.status, 409);
    assert!(server_table_exists(&target, "doomed").await);

    // 200 concurrent holds over the three replicas, each decided on another one:
    // even-numbered ones approved, odd-numbered ones denied. As the trust user: 200
    // SCRAM logins at once in a debug build would measure the password hashing.
    su_exec(&target, &format!("GRANT INSERT ON ledger TO {TRUST_USER}")).await;
    let before = server_count(&target, "ledger").await;
    let reps = [&a, &b, &c];
    let started = Instant::now();
    let held = join_all((0..200).map(|i| {
        let ep = reps[i % 3].ep();
        async move {
            let sql = format!("INSERT INTO ledger VALUES ({}, 'concurrent')", 1000 + i);
            (i, hold(&ep, TRUST_USER, "", &sql).await)
        }
    }))
    .await;
    holds += 200;
    eventually(
        "all 200 holds listed on every replica",
        Duration::from_secs(20),
        || async {
            for r in reps {
                if pending(r.admin).await.len() < 200 {
                    return false;
                }
            }
            true
        },
    )
    .await;
    // All 200 decisions sent at once; each timed from its request to its client's
    // result on the owning replica.
    let decided_at = Instant::now();
    let outcomes = join_all(held.into_iter().map(|(i, h)| {
        let admin = reps[(i + 1) % 3].admin;
        async move {
            let id = h.id;
            let asked = Instant::now();
            let r = if i % 2 == 0 {
                approve(admin, id).await
            } else {
                deny(admin, id, "odd").await
            };
            assert_eq!(r.status, 200, "hold #{id}: {r:?}");
            let o = done(h).await;
            (i, o, asked.elapsed())
        }
    }))
    .await;
    decisions += outcomes.len() as u32;
    let mut concurrent = Vec::new();
    for (i, o, took) in outcomes {
        if i % 2 == 0 {
            assert_eq!(o, Ok(()), "hold {i}");
            concurrent.push(took);
        } else {
            assert_eq!(o, Err("PW004".into()), "hold {i}");
        }
    }
    concurrent.sort();
    let n = concurrent.len();
    eprintln!(
        "200 concurrent holds over 3 replicas, all decided at once on other replicas: \
         {:.2} s from the first hold, {:.2} s for the decisions; approval -> statement done \
         on the owning replica, {n} approved: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        started.elapsed().as_secs_f64(),
        decided_at.elapsed().as_secs_f64(),
        percentile(&concurrent, 0.50).as_secs_f64() * 1000.0,
        percentile(&concurrent, 0.99).as_secs_f64() * 1000.0,
        concurrent[n - 1].as_secs_f64() * 1000.0
    );
    assert_eq!(server_count(&target, "ledger").await, before + 100);

    // kill -9 of A while it holds statements: they never run, and B and C show
    // them as withdrawn once A's heartbeat is overdue.
    let mut on_a = Vec::new();
    for i in 0..3 {
        let h = hold(
            &a.ep(),
            SCRAM_USER,
            SCRAM_PASSWORD,
            &format!("INSERT INTO ledger VALUES ({}, 'held on a')", 5000 + i),
        )
        .await;
        holds += 1;
        listed(b.admin, h.id).await;
        on_a.push(h.id);
    }
    let before = server_count(&target, "ledger").await;
    let mut a = a;
    a.proc.take().expect("a").kill().await;
    for &id in &on_a {
        for r in [&b, &c] {
            let admin = r.admin;
            eventually(
                &format!("hold #{id} of the killed replica withdrawn on {}", r.name),
                Duration::from_secs(15),
                || async move { status(admin, id).await == "withdrawn" },
            )
            .await;
        }
        assert_ne!(approve(b.admin, id).await.status, 200);
    }
    assert_eq!(server_count(&target, "ledger").await, before);
    assert!(pending(c.admin).await.is_empty());

    // The control database stops: holds are refused (PW007), allowed traffic goes
    // on, /readyz and the metric say so.
    control.stop();
    let ep = b.ep();
    eventually(
        "a hold refused with PW007 while the control database is down",
        Duration::from_secs(15),
        || {
            let ep = ep.clone();
            async move {
                let client = ep
                    .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
                    .await
                    .expect("connect through b");
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    client.batch_execute("INSERT INTO ledger VALUES (-2, 'control down')"),
                )
                .await
                {
                    Ok(Err(e)) => sqlstate(&e).as_deref() == Some("PW007"),
                    _ => false,
                }
            }
        },
    )
    .await;
    let client = b
        .ep()
        .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .expect("connect through b");
    let n: i64 = client
        .query_one("SELECT count(*) FROM ledger", &[])
        .await
        .expect("allowed statements go on without the control database")
        .get(0);
    assert_eq!(n, before);
    let r = http::get(b.admin, "/readyz", None).await;
    assert!(
        r.json()["control"]
            .as_str()
            .is_some_and(|s| s.contains("unreachable") || s.contains("re-established")),
        "{r:?}"
    );
    let m = http::get(b.admin, "/metrics", None).await;
    assert!(m.body.contains("pgwarden_control_up 0"), "{}", m.body);
    assert_eq!(
        http::get(c.admin, "/holds", Some(TOKEN)).await.status,
        503,
        "listing without the control database"
    );

    // Back: holds work again on the same processes, without a restart.
    control.start_again();
    for r in [&b, &c] {
        let admin = r.admin;
        eventually(
            &format!("replica {} reconnected", r.name),
            Duration::from_secs(20),
            || async move { http::get(admin, "/readyz", None).await.json()["control"] == "ok" },
        )
        .await;
    }
    let m = http::get(b.admin, "/metrics", None).await;
    assert!(m.body.contains("pgwarden_control_up 1"), "{}", m.body);
    let h = hold(
        &b.ep(),
        SCRAM_USER,
        SCRAM_PASSWORD,
        "INSERT INTO ledger VALUES (-3, 'after the outage')",
    )
    .await;
    holds += 1;
    listed(c.admin, h.id).await;
    assert_eq!(approve(c.admin, h.id).await.status, 200);
    decisions += 1;
    done(h)
        .await
        .expect("approved on C after the outage, ran on B");
    assert_eq!(server_count(&target, "ledger").await, before + 1);

    eprintln!(
        "replica test: {holds} holds, {decisions} decisions over 3 replicas; approval -> run p50 {:.1} ms, p99 {:.1} ms",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
}

/// Recently decided holds come from the control database: A lists the holds B
/// approved and denied (who, when, why), its own expiry, and the same list B has;
/// `pgwarden holds recent` prints them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recently_decided_holds_are_shared_by_replicas() {
    std::env::set_var(TOKEN_ENV, TOKEN);
    std::env::set_var(CONTROL_PW_ENV, SUPERUSER_PASSWORD);
    let target = PgCluster::start();
    let control = PgCluster::start();
    victim_table(&target, "ledger", 0, SCRAM_USER).await;
    victim_table(&target, "doomed", 3, SCRAM_USER).await;
    let a = replica("a", &target, &control).await;
    let b = replica("b", &target, &control).await;

    let h = hold(
        &a.ep(),
        SCRAM_USER,
        SCRAM_PASSWORD,
        "INSERT INTO ledger VALUES (1, 'approved on b')",
    )
    .await;
    let approved = h.id;
    listed(b.admin, approved).await;
    assert_eq!(approve(b.admin, approved).await.status, 200);
    done(h).await.expect("approved on B, ran on A");
    let h = hold(
        &a.ep(),
        SCRAM_USER,
        SCRAM_PASSWORD,
        "INSERT INTO ledger VALUES (2, 'denied on b')",
    )
    .await;
    let denied = h.id;
    listed(b.admin, denied).await;
    assert_eq!(deny(b.admin, denied, "wrong ticket").await.status, 200);
    assert_eq!(done(h).await, Err("PW004".into()));
    let h = hold(&a.ep(), SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE doomed").await;
    let expired = h.id;
    assert_eq!(done(h).await, Err("PW005".into()));

    let recent = |admin| async move {
        let r = http::get(admin, "/holds/recent", Some(TOKEN)).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json().as_array().cloned().unwrap_or_default()
    };
    let on_a = recent(a.admin).await;
    let seen: Vec<(u64, &str)> = on_a
        .iter()
        .map(|e| {
            (
                e["hold"]["id"].as_u64().unwrap_or(0),
                e["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![(expired, "expire"), (denied, "deny"), (approved, "approve")],
        "newest first, decisions taken on B included: {on_a:?}"
    );
    assert_eq!(on_a[1]["approver"], "alice");
    assert_eq!(on_a[1]["reason"], "wrong ticket");
    assert_eq!(on_a[2]["approver"], "alice");
    assert_eq!(
        on_a[2]["hold"]["sql"],
        "INSERT INTO ledger VALUES (1, 'approved on b')"
    );
    assert_eq!(
        on_a[2]["hold"]["replica"]
            .as_str()
            .map(|r| r.starts_with("a/")),
        Some(true)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for e in &on_a {
        let at = e["at"].as_u64().unwrap_or(0);
        assert!(at <= now && at + 60 > now, "decided just now: {e}");
    }
    assert_eq!(recent(b.admin).await, on_a, "every replica lists the same");

    // A plan approved on A and revoked on B (the command line): gone on A too, and
    // the statement it covered is held again there.
    victim_table(&target, "planned", 3, SCRAM_USER).await;
    let dir = a.proc.as_ref().expect("a").dir().to_path_buf();
    std::fs::write(dir.join("plan.sql"), "DROP TABLE planned;\n").expect("write sql");
    let cli = |args: Vec<String>| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
            .args(&args)
            .env("PGWARDEN_TOKEN", TOKEN)
            .output()
            .expect("run pgwarden");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let s = |p: std::path::PathBuf| p.display().to_string();
    let (_, text) = cli(vec![
        "explain".into(),
        "--config".into(),
        s(dir.join("proxy.toml")),
        "--target".into(),
        PROD.into(),
        "--user".into(),
        SCRAM_USER.into(),
        "--file".into(),
        s(dir.join("plan.sql")),
        "--plan".into(),
        s(dir.join("plan.json")),
    ]);
    assert!(dir.join("plan.json").exists(), "{text}");
    let (ok, text) = cli(vec![
        "plans".into(),
        "--admin".into(),
        format!("http://{}", a.admin),
        "approve".into(),
        s(dir.join("plan.json")),
        "--window".into(),
        "10m".into(),
    ]);
    assert!(ok, "{text}");
    let plans = |admin| async move { http::get(admin, "/plans", Some(TOKEN)).await.json() };
    let id = plans(a.admin).await[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!id.is_empty());
    eventually("the plan listed on B", Duration::from_secs(10), || async {
        plans(b.admin).await[0]["id"] == id.as_str()
    })
    .await;
    let (ok, text) = cli(vec![
        "plans".into(),
        "--admin".into(),
        format!("http://{}", b.admin),
        "revoke".into(),
        id.clone(),
    ]);
    assert!(ok && text.contains(&format!("revoked plan {id}")), "{text}");
    eventually(
        "the revoked plan gone on A",
        Duration::from_secs(10),
        || async { plans(a.admin).await == serde_json::json!([]) },
    )
    .await;
    let h = hold(&a.ep(), SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE planned").await;
    assert_eq!(
        done(h).await,
        Err("PW005".into()),
        "held again, and expired"
    );
    assert!(server_table_exists(&target, "planned").await);
    let (ok, text) = cli(vec![
        "plans".into(),
        "--admin".into(),
        format!("http://{}", a.admin),
        "revoke".into(),
        id.clone(),
    ]);
    assert!(!ok && text.contains("404"), "a second revocation: {text}");

    // The command line, against A.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
        .args(["holds", "--admin", &format!("http://{}", a.admin), "recent"])
        .env("PGWARDEN_TOKEN", TOKEN)
        .output()
        .expect("pgwarden holds recent");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(&format!("#{denied} deny by alice"))
            && text.contains("reason \"wrong ticket\"")
            && text.contains(&format!("#{approved} approve by alice")),
        "{text}"
    );
}
