//! Confirmation tokens kept in the control database, shared by replicas: three
//! pgwarden processes (the real binary) and one control database. A token issued on
//! A is accepted once on B; a replay on C or on A itself is refused; the same token
//! sent to A, B and C at once runs exactly once; another user's or an expired token
//! is refused on another replica; the database itself refuses a second use; while
//! the control database is down no token is issued (PW007), allowed traffic goes on,
//! and tokens work again after it is back, without a restart. Every outcome is
//! checked on the server.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::join_all;

use support::guarded::*;
use support::http;
use support::*;

const CONTROL_PW_ENV: &str = "PGWARDEN_TEST_CONTROL_PASSWORD_TOKENS";

const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "ledger-confirm"
environment = "production"
classes = ["write"]
objects = ["ledger", "*.ledger"]
action = "hold"
confirm = "self"
timeout = "2m"

[[rule]]
name = "drops-confirm-quickly"
environment = "production"
classes = ["drop.*"]
action = "hold"
confirm = "self"
timeout = "1s"
"#;

struct Replica {
    proc: ProxyProcess,
    admin: SocketAddr,
}

async fn replica(name: &str, target: &PgCluster, control: &PgCluster) -> Replica {
    let admin_port = free_port();
    let extra = format!(
        "\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
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
    connected(name, admin).await;
    Replica { proc, admin }
}

async fn connected(name: &str, admin: SocketAddr) {
    eventually(
        &format!("replica {name} connected to the control database"),
        Duration::from_secs(20),
        || async move { http::get(admin, "/readyz", None).await.json()["control"] == "ok" },
    )
    .await;
}

/// `pgwarden_statements_total` for `decision`, summed over classes, on `admin`.
async fn decisions(admin: SocketAddr, decision: &str) -> f64 {
    let prefix = format!("pgwarden_statements_total{{target=\"prod\",decision=\"{decision}\"");
    http::get(admin, "/metrics", None)
        .await
        .body
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn confirmed(token: &str, sql: &str) -> String {
    format!("/* pgwarden:confirm={token} */ {sql}")
}

/// A token for `sql`, issued on `ep` to the SCRAM user.
async fn issue(ep: &Endpoint, sql: &str) -> String {
    let c = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    token_of(&expect_code(c.batch_execute(sql).await, "PW001"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_issued_on_one_replica_is_used_once_on_any() {
    std::env::set_var(CONTROL_PW_ENV, SUPERUSER_PASSWORD);
    let target = PgCluster::start();
    let mut control = PgCluster::start();
    victim_table(&target, "ledger", 0, SCRAM_USER).await;
    victim_table(&target, "doomed", 3, SCRAM_USER).await;
    let a = replica("a", &target, &control).await;
    let b = replica("b", &target, &control).await;
    let c = replica("c", &target, &control).await;
    let (ea, eb, ec) = (a.proc.endpoint(), b.proc.endpoint(), c.proc.endpoint());

    // Issued on A, accepted on B: runs once.
    let sql = "INSERT INTO ledger VALUES (1, 'confirmed on b')";
    let token = issue(&ea, sql).await;
    assert_eq!(server_count(&target, "ledger").await, 0, "held, not run");
    let on_b = eb.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    on_b.batch_execute(&confirmed(&token, sql))
        .await
        .expect("a token issued on A is accepted on B");
    assert_eq!(server_count(&target, "ledger").await, 1);

    // Replayed on C, and on A that issued it: refused, nothing runs.
    su_exec(&target, "DELETE FROM ledger").await;
    for ep in [&ec, &ea] {
        let cl = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
        let m = expect_code(cl.batch_execute(&confirmed(&token, sql)).await, "PW003");
        assert!(m.contains("already used"), "{m}");
        assert!(usable(&cl).await);
    }
    assert_eq!(server_count(&target, "ledger").await, 0);
    // Counted as what the control database made of them: confirmed where the token
    // was accepted (B), a bad token where it was refused (C and A).
    for (r, ok, bad) in [(&b, 1.0, 0.0), (&c, 0.0, 1.0), (&a, 0.0, 1.0)] {
        assert_eq!(
            decisions(r.admin, "confirmed").await,
            ok,
            "confirmed on {}",
            r.admin
        );
        assert_eq!(
            decisions(r.admin, "bad_token").await,
            bad,
            "bad tokens on {}",
            r.admin
        );
    }

    // The same token sent to A, B and C at the same moment: exactly one runs.
    let rounds = 20;
    for i in 0..rounds {
        let sql = format!("INSERT INTO ledger VALUES ({}, 'raced')", 100 + i);
        let token = issue(&ea, &sql).await;
        let clients =
            join_all([&ea, &eb, &ec].map(|ep| ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)))
                .await;
        let text = confirmed(&token, &sql);
        let results = join_all(clients.iter().map(|cl| cl.batch_execute(&text))).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {i}: {results:?}");
        for r in results.into_iter().filter(|r| r.is_err()) {
            expect_code(r, "PW003");
        }
    }
    assert_eq!(server_count(&target, "ledger").await, rounds);

    // Another user on another replica: refused (and the token is used up).
    su_exec(&target, &format!("GRANT {SCRAM_USER} TO {MD5_USER}")).await;
    let sql = "INSERT INTO ledger VALUES (-1, 'not yours')";
    let token = issue(&ea, sql).await;
    let eve = ec.must_connect(MD5_USER, MD5_PASSWORD, APP_DB).await;
    let m = expect_code(eve.batch_execute(&confirmed(&token, sql)).await, "PW003");
    assert!(m.contains("another user"), "{m}");
    let m = expect_code(on_b.batch_execute(&confirmed(&token, sql)).await, "PW003");
    assert!(m.contains("already used"), "{m}");
    assert_eq!(server_count_where(&target, "ledger", "id = -1").await, 0);

    // Expired before it reached B: refused, the table stays.
    let token = issue(&ea, "DROP TABLE doomed").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = expect_code(
        on_b.batch_execute(&confirmed(&token, "DROP TABLE doomed"))
            .await,
        "PW003",
    );
    assert!(m.contains("expired"), "{m}");
    assert!(server_table_exists(&target, "doomed").await);

    // The database keeps the rule itself: a used token cannot be used again.
    let db = control.superuser_client_db(APP_DB).await;
    let used: i64 = db
        .query_one(
            "SELECT count(*) FROM pgwarden.tokens WHERE used_at IS NOT NULL",
            &[],
        )
        .await
        .expect("tokens table")
        .get(0);
    assert_eq!(used, 1 + rounds + 1 + 1, "every token presented is used up");
    let again = db
        .execute(
            "UPDATE pgwarden.tokens SET used_at = now(), used_by = 'x' \
             WHERE used_at IS NOT NULL",
            &[],
        )
        .await;
    assert!(again.is_err(), "a second use in the database: {again:?}");
    drop(db);

    // The control database stops: no token is issued (PW007); allowed traffic goes on.
    control.stop();
    let ep = ea.clone();
    eventually(
        "a confirmation refused with PW007 while the control database is down",
        Duration::from_secs(15),
        || {
            let ep = ep.clone();
            async move {
                let cl = ep
                    .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
                    .await
                    .expect("connect through a");
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    cl.batch_execute("INSERT INTO ledger VALUES (-2, 'control down')"),
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
    let n: i64 = on_b
        .query_one("SELECT count(*) FROM ledger", &[])
        .await
        .expect("allowed statements go on without the control database")
        .get(0);
    assert_eq!(n, rounds);

    // Back: tokens work again across replicas, without a restart.
    control.start_again();
    connected("a", a.admin).await;
    connected("c", c.admin).await;
    let sql = "INSERT INTO ledger VALUES (-3, 'after the outage')";
    let token = issue(&ea, sql).await;
    let cl = ec.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    cl.batch_execute(&confirmed(&token, sql))
        .await
        .expect("issued on A after the outage, accepted on C");
    assert_eq!(server_count_where(&target, "ledger", "id = -3").await, 1);
    assert_eq!(server_count_where(&target, "ledger", "id = -2").await, 0);
}
