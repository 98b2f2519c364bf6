//! Self-confirmation through the real proxy: PW001 with a one-time token; the same
//! statement prefixed with `/* pgwarden:confirm=TOKEN */` runs once. Replay, another
//! user, another statement, a made-up token and an expired token get PW003 and
//! nothing runs. Every outcome is checked on the server.

use crate::support;

use std::time::Duration;

use support::guarded::*;
use support::*;

const RENAME: &str = "ALTER TABLE t RENAME TO t_renamed";

fn confirmed(token: &str, sql: &str) -> String {
    format!("/* pgwarden:confirm={token} */ {sql}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_runs_once_and_refuses_replay_other_users_and_other_statements() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, SCRAM_USER).await;
    victim_table(&cluster, "u", 5, SCRAM_USER).await;
    // md5_user may rename scram_user's tables: only pgwarden stands in the way.
    su_exec(&cluster, &format!("GRANT {SCRAM_USER} TO {MD5_USER}")).await;
    let proxy = prod_proxy(&cluster).await;
    let ep = proxy.endpoint();
    let a = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let b = ep.must_connect(MD5_USER, MD5_PASSWORD, APP_DB).await;

    // Held: PW001 with the token, rule and target; nothing happened.
    let m = expect_code(a.batch_execute(RENAME).await, "PW001");
    for part in ["alter.rename", "schema-changes-confirm", "\"prod\""] {
        assert!(m.contains(part), "{part:?} missing from {m:?}");
    }
    let token = token_of(&m);
    assert!(server_table_exists(&cluster, "t").await);
    assert!(!server_table_exists(&cluster, "t_renamed").await);

    // Confirmed: runs.
    a.batch_execute(&confirmed(&token, RENAME)).await.unwrap();
    assert!(!server_table_exists(&cluster, "t").await);
    assert!(server_table_exists(&cluster, "t_renamed").await);

    // Replay (after putting the table back): refused, nothing runs.
    su_exec(&cluster, "ALTER TABLE t_renamed RENAME TO t").await;
    let m = expect_code(a.batch_execute(&confirmed(&token, RENAME)).await, "PW003");
    assert!(m.contains(&token), "{m}");
    assert!(server_table_exists(&cluster, "t").await);
    assert!(!server_table_exists(&cluster, "t_renamed").await);
    assert!(usable(&a).await);

    // A token of user A used by user B: refused.
    let token = token_of(&expect_code(a.batch_execute(RENAME).await, "PW001"));
    expect_code(b.batch_execute(&confirmed(&token, RENAME)).await, "PW003");
    assert!(server_table_exists(&cluster, "t").await);
    assert!(!server_table_exists(&cluster, "t_renamed").await);
    assert!(usable(&b).await);

    // A token for one statement used on another: refused.
    let token = token_of(&expect_code(a.batch_execute(RENAME).await, "PW001"));
    let other = "ALTER TABLE u RENAME TO u_renamed";
    expect_code(a.batch_execute(&confirmed(&token, other)).await, "PW003");
    assert!(server_table_exists(&cluster, "u").await);
    assert!(!server_table_exists(&cluster, "u_renamed").await);
    // ... also when the other statement hides behind the confirmed one.
    let token = token_of(&expect_code(a.batch_execute(RENAME).await, "PW001"));
    expect_code(
        a.batch_execute(&confirmed(&token, &format!("{RENAME}; {other}")))
            .await,
        "PW003",
    );
    assert!(server_table_exists(&cluster, "t").await);
    assert!(server_table_exists(&cluster, "u").await);

    // A made-up token: refused.
    expect_code(
        a.batch_execute(&confirmed("ABCDEFGH23", RENAME)).await,
        "PW003",
    );
    assert!(server_table_exists(&cluster, "t").await);

    // Extended protocol: held at Parse, confirmed at Parse, runs once.
    let m = expect_code(a.query_typed(other, &[]).await, "PW001");
    let token = token_of(&m);
    assert!(server_table_exists(&cluster, "u").await);
    a.query_typed(&confirmed(&token, other), &[]).await.unwrap();
    assert!(server_table_exists(&cluster, "u_renamed").await);
    su_exec(&cluster, "ALTER TABLE u_renamed RENAME TO u").await;
    expect_code(
        a.query(&confirmed(&token, other) as &str, &[]).await,
        "PW003",
    );
    assert!(server_table_exists(&cluster, "u").await);

    // A token from the simple protocol confirms the statement in the extended one.
    let token = token_of(&expect_code(a.batch_execute(RENAME).await, "PW001"));
    a.execute(&confirmed(&token, RENAME) as &str, &[])
        .await
        .unwrap();
    assert!(server_table_exists(&cluster, "t_renamed").await);

    // Row counts never changed along the way.
    assert_eq!(server_count(&cluster, "t_renamed").await, 5);
    assert_eq!(server_count(&cluster, "u").await, 5);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refused() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, SCRAM_USER).await;
    let proxy = prod_builder(&cluster)
        .policy_toml(&small_policy("1s", "1m"))
        .start()
        .await;
    let a = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    let m = expect_code(a.batch_execute(RENAME).await, "PW001");
    assert!(m.contains("renames-confirm"), "{m}");
    let token = token_of(&m);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = expect_code(a.batch_execute(&confirmed(&token, RENAME)).await, "PW003");
    assert!(m.contains("expired"), "{m}");
    assert!(server_table_exists(&cluster, "t").await);
    assert!(!server_table_exists(&cluster, "t_renamed").await);

    // A fresh token within the timeout works.
    let token = token_of(&expect_code(a.batch_execute(RENAME).await, "PW001"));
    a.batch_execute(&confirmed(&token, RENAME)).await.unwrap();
    assert!(server_table_exists(&cluster, "t_renamed").await);
    proxy.shutdown().await;
}
