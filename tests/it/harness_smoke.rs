//! The test harness itself, directly against throwaway clusters (no proxy): logins per
//! auth method, TLS verify-full with the test CA, psql and pgbench.

use crate::support;

use std::time::Duration;

use support::*;

fn is_invalid_password(e: &tokio_postgres::Error) -> bool {
    sqlstate(e).as_deref() == Some("28P01")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_per_auth_method() {
    let c = PgCluster::start();

    for (user, pw) in [
        (SCRAM_USER, SCRAM_PASSWORD),
        (MD5_USER, MD5_PASSWORD),
        (SUPERUSER, SUPERUSER_PASSWORD),
    ] {
        let client = c
            .connect(user, pw, APP_DB)
            .await
            .unwrap_or_else(|e| panic!("{user} login: {e:?}"));
        let row = client
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), user);

        let err = c
            .connect(user, "wrong-password", APP_DB)
            .await
            .err()
            .unwrap_or_else(|| panic!("{user} with a wrong password got in"));
        assert!(is_invalid_password(&err), "{user}: {err:?}");
        let db = err.as_db_error().unwrap();
        assert_eq!(db.severity(), "FATAL");
        assert_eq!(
            db.message(),
            format!("password authentication failed for user \"{user}\"")
        );
    }

    // The trust user needs no password at all.
    let client = c
        .connect(TRUST_USER, "", APP_DB)
        .await
        .expect("trust login");
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), TRUST_USER);

    // The stored password formats are what the test users promise.
    let su = c.superuser_client().await;
    let rows = su
        .query(
            "SELECT rolname::text, left(rolpassword, 6) FROM pg_authid \
             WHERE rolname IN ($1, $2) ORDER BY 1",
            &[&MD5_USER, &SCRAM_USER],
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, MD5_USER);
    assert!(got[0].1.starts_with("md5"), "{got:?}");
    assert_eq!(got[1], (SCRAM_USER.to_string(), "SCRAM-".to_string()));

    // pg_hba sends each user down the intended method.
    let methods = su
        .query(
            "SELECT user_name::text, auth_method FROM pg_hba_file_rules \
             WHERE type = 'host' ORDER BY line_number",
            &[],
        )
        .await
        .unwrap();
    let methods: Vec<(String, String)> = methods.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        methods,
        vec![
            ("{trust_user}".to_string(), "trust".to_string()),
            ("{md5_user}".to_string(), "md5".to_string()),
            ("{all}".to_string(), "scram-sha-256".to_string()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verify_full_against_test_ca() {
    let c = PgCluster::start();
    for name in ["localhost", "127.0.0.1"] {
        let ep = c.endpoint().with_tls(c.ca(), name, c.ca_path());
        let client = ep
            .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
            .await
            .unwrap_or_else(|e| panic!("TLS to {name}: {e:?}"));
        let row = client
            .query_one(
                "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "connection to {name} is not TLS");
        assert!(row.get::<_, String>(1).starts_with("TLSv1."));
    }

    // A client trusting another CA refuses the server certificate.
    let other_ca_path = other_ca().write_ca(c.dir(), "other-ca.crt");
    let ep = c
        .endpoint()
        .with_tls(other_ca(), "localhost", &other_ca_path);
    let err = ep
        .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .expect_err("TLS with an unrelated CA must fail");
    assert!(err.as_db_error().is_none(), "{err:?}");

    // A name the certificate does not cover is refused too.
    let ep = c.endpoint().with_tls(c.ca(), "db.example", c.ca_path());
    assert!(ep
        .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .is_err());

    // libpq verify-full (psql) accepts the server certificate.
    let out = c
        .tls_endpoint()
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &[
                "-At",
                "-c",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ],
        )
        .await;
    out.assert_ok("psql verify-full");
    assert_eq!(out.stdout.trim(), "t");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_and_pgbench_run() {
    let c = PgCluster::builder().database("other").start();
    let out = c.psql(&["-At", "-c", "SELECT 40 + 2"]).await;
    out.assert_ok("psql");
    assert_eq!(out.stdout.trim(), "42");

    let out = c
        .endpoint()
        .psql(
            MD5_USER,
            MD5_PASSWORD,
            "other",
            &[
                "-At",
                "-c",
                "SELECT current_user || '@' || current_database()",
            ],
        )
        .await;
    out.assert_ok("psql md5 on other db");
    assert_eq!(out.stdout.trim(), "md5_user@other");

    let out = c
        .endpoint()
        .psql(SCRAM_USER, "nope", APP_DB, &["-c", "SELECT 1"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("password authentication failed for user \"scram_user\""),
        "{out:?}"
    );

    let ep = c.endpoint();
    ep.pgbench(SCRAM_USER, SCRAM_PASSWORD, APP_DB, &["-i", "-s", "1", "-q"])
        .await
        .assert_ok("pgbench -i");
    let out = ep
        .pgbench(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &["-T", "1", "-c", "2", "-M", "prepared"],
        )
        .await;
    out.assert_ok("pgbench -T 1");
    assert!(
        out.stdout.contains("number of failed transactions: 0"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_start_in_parallel_and_clean_up() {
    let started = std::time::Instant::now();
    let clusters: Vec<PgCluster> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(PgCluster::start)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = clusters.iter().map(PgCluster::port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for c in &clusters {
        let su = c.superuser_client().await;
        let port: String = su
            .query_one("SELECT current_setting('port')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(port, c.port().to_string());
    }
    eprintln!("3 clusters started in {:?}", started.elapsed());

    let dirs: Vec<std::path::PathBuf> = clusters.iter().map(|c| c.dir().to_path_buf()).collect();
    let port = clusters[0].port();
    drop(clusters);
    for d in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "server still listening after drop"
    );
}
