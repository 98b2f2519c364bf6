//! Logins through pgwarden vs. directly: SCRAM-SHA-256, md5 and trust with right and
//! wrong passwords; a wrong password must yield the server's own error (28P01) unchanged.

use crate::support;

use futures_util::future::join_all;

use support::*;

async fn login(ep: &Endpoint, user: &str, password: &str, db: &str) -> String {
    match ep.connect(user, password, db).await {
        Ok(client) => {
            let row = client
                .query_one(
                    "SELECT current_user::text, current_database()::text, \
                     (SELECT client_addr::text FROM pg_stat_activity \
                      WHERE pid = pg_backend_pid())",
                    &[],
                )
                .await
                .unwrap();
            format!(
                "{user}/{db}: ok as {} on {} (server sees client {:?})",
                row.get::<_, String>(0),
                row.get::<_, String>(1),
                row.get::<_, Option<String>>(2)
            )
        }
        Err(e) => {
            let detail = e
                .as_db_error()
                .map(|d| format!(" detail={:?} hint={:?}", d.detail(), d.hint()))
                .unwrap_or_default();
            format!("{user}/{db}: {}{detail}", describe_error(&e))
        }
    }
}

async fn logins(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    for (user, right) in [
        (SCRAM_USER, SCRAM_PASSWORD),
        (MD5_USER, MD5_PASSWORD),
        (SUPERUSER, SUPERUSER_PASSWORD),
    ] {
        t.push(login(ep, user, right, APP_DB).await);
        t.push(login(ep, user, "wrong", APP_DB).await);
        // Prefix of the right password, and the right one with a trailing space.
        t.push(login(ep, user, &right[..right.len() - 1], APP_DB).await);
        t.push(login(ep, user, &format!("{right} "), APP_DB).await);
    }
    // No password at all where one is required: tokio-postgres gives up client-side.
    t.push(login(ep, SCRAM_USER, "", APP_DB).await);
    t.push(login(ep, TRUST_USER, "", APP_DB).await);
    t.push(login(ep, TRUST_USER, "ignored", APP_DB).await);
    t.push(login(ep, "ghost", "whatever", APP_DB).await);
    t.push(login(ep, SCRAM_USER, SCRAM_PASSWORD, "no_such_db").await);
    t.push(login(ep, SCRAM_USER, SCRAM_PASSWORD, "postgres").await);

    for (i, line) in t.iter().enumerate().take(12) {
        let expect = if i % 4 == 0 {
            ": ok as "
        } else {
            ": FATAL 28P01 "
        };
        assert!(line.contains(expect), "[{}] {line}", ep.label);
    }
    let wrong = format!("{SCRAM_USER}/{APP_DB}: FATAL 28P01 password authentication failed for user \"{SCRAM_USER}\" detail=None hint=None");
    assert!(t.contains(&wrong), "[{}] {t:#?}", ep.label);

    // Many logins at once, alternating methods.
    let results = join_all((0..24).map(|i| async move {
        let (user, pw) = match i % 3 {
            0 => (SCRAM_USER, SCRAM_PASSWORD),
            1 => (MD5_USER, MD5_PASSWORD),
            _ => (TRUST_USER, ""),
        };
        let c = ep.connect(user, pw, APP_DB).await?;
        let v: i32 = c.query_one("SELECT $1::int4", &[&i]).await?.get(0);
        Ok::<_, tokio_postgres::Error>(v == i)
    }))
    .await;
    let ok = results.iter().filter(|r| matches!(r, Ok(true))).count();
    t.push(format!("{ok} of 24 concurrent logins ok"));
    assert_eq!(ok, 24, "[{}] {results:?}", ep.label);
    t
}

transparency!(scram_md5_trust_logins, logins);
