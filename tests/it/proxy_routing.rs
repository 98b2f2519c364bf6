//! Routing by database name: two targets with `databases = [...]` on two clusters, an
//! unknown database without a default target (FATAL naming it), and a default target
//! that receives every unlisted database (the server's own error for a missing one).

use crate::support;

use support::*;

async fn served_by(ep: &Endpoint, user: &str, password: &str, db: &str) -> Result<u16, String> {
    match ep.connect(user, password, db).await {
        Ok(c) => {
            let row = c
                .query_one(
                    "SELECT current_setting('port'), current_database()::text",
                    &[],
                )
                .await
                .map_err(|e| describe_error(&e))?;
            assert_eq!(row.get::<_, String>(1), db);
            Ok(row.get::<_, String>(0).parse().unwrap())
        }
        Err(e) => Err(describe_error(&e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_databases_on_two_clusters() {
    let one = PgCluster::start();
    let two = PgCluster::builder().database("reports").start();
    assert_ne!(one.port(), two.port());

    // Directly, `reports` only exists on the second cluster.
    assert_eq!(
        served_by(&two.endpoint(), SCRAM_USER, SCRAM_PASSWORD, "reports").await,
        Ok(two.port())
    );
    assert!(
        served_by(&one.endpoint(), SCRAM_USER, SCRAM_PASSWORD, "reports")
            .await
            .unwrap_err()
            .contains("3D000")
    );

    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("one", &one).databases(&["app"]))
        .target(TargetSpec::for_cluster("two", &two).databases(&["reports"]))
        .start()
        .await;
    let ep = proxy.endpoint();
    for (user, pw) in [(SCRAM_USER, SCRAM_PASSWORD), (MD5_USER, MD5_PASSWORD)] {
        assert_eq!(served_by(&ep, user, pw, APP_DB).await, Ok(one.port()));
        assert_eq!(served_by(&ep, user, pw, "reports").await, Ok(two.port()));
    }
    // Wrong passwords still get each server's own answer.
    let e = served_by(&ep, SCRAM_USER, "wrong", "reports")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        "FATAL 28P01 password authentication failed for user \"scram_user\""
    );

    // Both routes at once, interleaved on concurrent sessions.
    let a = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let b = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, "reports").await;
    let (ra, rb) = tokio::join!(
        a.query_one("SELECT current_setting('port')", &[]),
        b.query_one("SELECT current_setting('port')", &[])
    );
    assert_ne!(
        ra.unwrap().get::<_, String>(0),
        rb.unwrap().get::<_, String>(0)
    );

    // A database no target lists, and there is no default target: a FATAL error
    // that names the database, before any server is involved.
    let err = ep
        .connect(SCRAM_USER, SCRAM_PASSWORD, "nowhere_db")
        .await
        .expect_err("unknown database was routed somewhere");
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("expected an ErrorResponse, got {err:?}"));
    assert_eq!(db.severity(), "FATAL", "{db:?}");
    assert!(db.message().contains("nowhere_db"), "{db:?}");
    eprintln!("unknown database: {}", describe_error(&err));

    // The database name defaults to the user name when the client sends none.
    let mut no_db = tokio_postgres::Config::new();
    no_db
        .host("127.0.0.1")
        .port(ep.port)
        .user(SCRAM_USER)
        .password(SCRAM_PASSWORD);
    let err = ep
        .connect_config(&no_db)
        .await
        .expect_err("database defaulting to the user name was routed somewhere");
    assert!(
        err.as_db_error()
            .is_some_and(|d| d.message().contains(SCRAM_USER)),
        "{err:?}"
    );

    // psql and pgbench follow the same routes.
    let out = ep
        .psql(
            MD5_USER,
            MD5_PASSWORD,
            "reports",
            &["-At", "-c", "SELECT current_setting('port')"],
        )
        .await;
    out.assert_ok("psql to reports");
    assert_eq!(out.stdout.trim(), two.port().to_string());
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_target_takes_unlisted_databases() {
    let main = PgCluster::builder().database("misc").start();
    let reports = PgCluster::builder().database("reports").start();
    let direct_missing = served_by(&main.endpoint(), SCRAM_USER, SCRAM_PASSWORD, "nowhere_db")
        .await
        .unwrap_err();
    assert_eq!(
        direct_missing,
        "FATAL 3D000 database \"nowhere_db\" does not exist"
    );

    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("main", &main))
        .target(TargetSpec::for_cluster("reports", &reports).databases(&["reports"]))
        .start()
        .await;
    let ep = proxy.endpoint();
    assert_eq!(
        served_by(&ep, SCRAM_USER, SCRAM_PASSWORD, APP_DB).await,
        Ok(main.port())
    );
    assert_eq!(
        served_by(&ep, SCRAM_USER, SCRAM_PASSWORD, "misc").await,
        Ok(main.port())
    );
    assert_eq!(
        served_by(&ep, MD5_USER, MD5_PASSWORD, "reports").await,
        Ok(reports.port())
    );
    // The default target's server answers for a database it does not have, unchanged.
    assert_eq!(
        served_by(&ep, SCRAM_USER, SCRAM_PASSWORD, "nowhere_db").await,
        Err(direct_missing)
    );
    proxy.shutdown().await;
}
