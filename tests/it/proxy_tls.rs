//! TLS on both legs: client→pgwarden with verify-full against the test CA (compared with
//! a direct verify-full connection to the server), pgwarden→server with verify-full /
//! verify-ca / require, certificate and name failures, and SCRAM through a proxy that
//! terminates TLS (channel binding must be negotiated away, not broken).

use crate::support;

use support::*;

/// Connects as `user` and reports who we are and whether the server leg is TLS.
async fn tls_login(ep: &Endpoint, user: &str, password: &str) -> String {
    match ep.connect(user, password, APP_DB).await {
        Ok(c) => {
            let row = c
                .query_one(
                    "SELECT current_user::text, ssl FROM pg_stat_ssl \
                     WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            format!(
                "{user}: ok as {}, server-side ssl {}",
                row.get::<_, String>(0),
                row.get::<_, bool>(1)
            )
        }
        Err(e) => format!("{user}: {}", describe_error(&e)),
    }
}

/// Client-visible TLS behaviour of an endpoint that has TLS (`ep.tls` set).
async fn client_tls_scenario(ep: &Endpoint) -> Transcript {
    let tls = ep.tls.clone().expect("a TLS endpoint");
    let mut t = Transcript::new();
    for (user, pw) in [
        (SCRAM_USER, SCRAM_PASSWORD),
        (MD5_USER, MD5_PASSWORD),
        (TRUST_USER, ""),
    ] {
        t.push(tls_login(ep, user, pw).await);
    }
    t.push(tls_login(ep, SCRAM_USER, "wrong").await);

    // The certificate is valid for 127.0.0.1 as well as localhost.
    let by_ip = Endpoint::plain(&ep.label, ep.port).with_tls(test_ca(), "127.0.0.1", &tls.ca_path);
    t.push(format!(
        "by ip: {}",
        tls_login(&by_ip, SCRAM_USER, SCRAM_PASSWORD).await
    ));

    // Clients refuse a certificate from another CA, or for another name.
    let scratch = tempfile::tempdir().unwrap();
    let other_path = other_ca().write_ca(scratch.path(), "other-ca.crt");
    let wrong_ca =
        Endpoint::plain(&ep.label, ep.port).with_tls(other_ca(), "localhost", &other_path);
    let e = wrong_ca
        .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .expect_err("a certificate from an unrelated CA was accepted");
    t.push(format!(
        "unrelated CA refused, server error: {}",
        e.as_db_error().is_some()
    ));
    let wrong_name =
        Endpoint::plain(&ep.label, ep.port).with_tls(test_ca(), "db.example", &tls.ca_path);
    let e = wrong_name
        .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .expect_err("a certificate for another name was accepted");
    t.push(format!(
        "wrong name refused, server error: {}",
        e.as_db_error().is_some()
    ));

    // libpq's sslmode=verify-full (psql).
    let out = ep
        .psql(
            MD5_USER,
            MD5_PASSWORD,
            APP_DB,
            &["-At", "-c", "SELECT 'psql over tls', current_user"],
        )
        .await;
    out.assert_ok("psql verify-full");
    t.push(out.stdout.trim().to_string());
    let mut cmd = wrong_ca.tool_command("psql", MD5_USER, MD5_PASSWORD, APP_DB);
    let out = cmd.args(["-X", "-c", "SELECT 1"]).output().await.unwrap();
    t.push(format!(
        "psql with unrelated CA: exit {:?}, certificate complaint: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).contains("certificate")
    ));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_verify_full_direct() {
    let c = PgCluster::start();
    let t = client_tls_scenario(&c.tls_endpoint()).await;
    show("client_tls_verify_full", "direct", &t);
    assert!(t[0].starts_with("scram_user: ok as scram_user"), "{t:#?}");
}

/// Client→pgwarden TLS (mode require, certificate from the test CA); the transcript
/// must match a direct TLS connection, except that the server leg is plaintext here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_verify_full_via_proxy() {
    let c = PgCluster::start();
    let expected: Transcript = client_tls_scenario(&c.tls_endpoint())
        .await
        .into_iter()
        .map(|l| l.replace("server-side ssl true", "server-side ssl false"))
        .collect();
    let proxy = TestProxy::builder()
        .client_tls("require")
        .target(TargetSpec::for_cluster("main", &c))
        .start()
        .await;
    let got = client_tls_scenario(&proxy.tls_endpoint("localhost")).await;
    show("client_tls_verify_full", "proxy", &got);
    assert_eq!(got, expected);

    // mode = require: a plaintext client is turned away, not served.
    let plain = proxy.endpoint();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        plain.connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB),
    )
    .await
    .expect("plaintext connect to a TLS-only proxy hung");
    assert!(
        r.is_err(),
        "plaintext client accepted with tls mode = require"
    );
    let out = plain
        .psql(SCRAM_USER, SCRAM_PASSWORD, APP_DB, &["-c", "SELECT 1"])
        .await;
    assert!(!out.status.success(), "{out:?}");
    proxy.shutdown().await;
}

/// Client TLS mode prefer: TLS clients get TLS, plaintext clients are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_prefer_serves_both() {
    let c = PgCluster::start();
    let proxy = TestProxy::builder()
        .client_tls("prefer")
        .target(TargetSpec::for_cluster("main", &c))
        .start()
        .await;
    let tls = tls_login(&proxy.tls_endpoint("localhost"), SCRAM_USER, SCRAM_PASSWORD).await;
    assert_eq!(tls, "scram_user: ok as scram_user, server-side ssl false");
    let plain = tls_login(&proxy.endpoint(), MD5_USER, MD5_PASSWORD).await;
    assert_eq!(plain, "md5_user: ok as md5_user, server-side ssl false");
    let out = proxy
        .tls_endpoint("localhost")
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &["-At", "-c", "SELECT 1"],
        )
        .await;
    out.assert_ok("psql verify-full to a prefer proxy");
    proxy.shutdown().await;
}

/// What the server leg looks like from inside the session.
async fn server_leg_scenario(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    for (user, pw) in [
        (SCRAM_USER, SCRAM_PASSWORD),
        (MD5_USER, MD5_PASSWORD),
        (TRUST_USER, ""),
        (SCRAM_USER, "wrong"),
    ] {
        t.push(tls_login(ep, user, pw).await);
    }
    t
}

/// pgwarden→server with verify-full against the cluster's CA: the server sees TLS,
/// as it does for a client connecting directly with TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_verify_full() {
    let c = PgCluster::start();
    let expected = server_leg_scenario(&c.tls_endpoint()).await;
    show("server_tls_verify_full", "direct", &expected);
    assert_eq!(
        expected[0],
        "scram_user: ok as scram_user, server-side ssl true"
    );
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("main", &c).tls("verify-full", Some(c.ca_path())))
        .start()
        .await;
    let got = server_leg_scenario(&proxy.endpoint()).await;
    show("server_tls_verify_full", "proxy", &got);
    assert_eq!(got, expected);
    proxy.shutdown().await;
}

/// TLS on both legs with SCRAM. TLS ends at pgwarden, so it removes
/// SCRAM-SHA-256-PLUS from the server's offer. A client that supports channel binding
/// then answers "y" (supported, but not offered), and a server whose own connection is
/// TLS must reject that as a downgrade (RFC 5802): the client gets the server's own
/// error, unchanged. With channel binding disabled, as README tells users of this
/// setup, everything matches a direct connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_both_legs_with_scram() {
    let c = PgCluster::start();
    let expected = server_leg_scenario(&c.tls_endpoint()).await;
    let proxy = TestProxy::builder()
        .client_tls("require")
        .target(TargetSpec::for_cluster("main", &c).tls("verify-full", Some(c.ca_path())))
        .start()
        .await;
    let ep = proxy.tls_endpoint("localhost");
    let got = server_leg_scenario(&ep).await;
    show("tls_on_both_legs_with_scram", "proxy", &got);
    assert_eq!(
        got[0],
        "scram_user: FATAL 28000 SCRAM channel binding negotiation error"
    );
    assert_eq!(got[1..3], expected[1..3]);

    let mut cfg = ep.config(SCRAM_USER, SCRAM_PASSWORD, APP_DB);
    cfg.channel_binding(tokio_postgres::config::ChannelBinding::Disable);
    let client = ep
        .connect_config(&cfg)
        .await
        .expect("SCRAM without channel binding over two TLS legs");
    let row = client
        .query_one(
            "SELECT current_user::text, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), SCRAM_USER);
    assert!(row.get::<_, bool>(1));
    cfg.password("wrong");
    let Err(err) = ep.connect_config(&cfg).await else {
        panic!("wrong password accepted");
    };
    assert_eq!(
        format!("{SCRAM_USER}: {}", describe_error(&err)),
        expected[3]
    );

    let conninfo = format!("dbname={APP_DB} channel_binding=disable");
    let out = proxy
        .tls_endpoint("127.0.0.1")
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &[
                "-d",
                &conninfo,
                "-At",
                "-c",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ],
        )
        .await;
    out.assert_ok("psql over two TLS legs");
    assert_eq!(out.stdout.trim(), "t");
    proxy.shutdown().await;
}

/// Connecting through a proxy whose server leg cannot be established: an error reaches
/// the client promptly (no hang), and it is not a successful login.
async fn expect_upstream_refusal(proxy: &TestProxy, what: &str) -> String {
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        proxy.endpoint().connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB),
    )
    .await
    .unwrap_or_else(|_| panic!("{what}: connect hung"));
    match r {
        Ok(_) => panic!("{what}: the session was established"),
        Err(e) => describe_error(&e),
    }
}

/// The server's certificate comes from a CA pgwarden does not trust: verify-full and
/// verify-ca refuse it; require (encrypt only, as in libpq) accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_untrusted_ca() {
    let c = PgCluster::builder().ca(other_ca()).start();
    let trusted = test_ca().write_ca(c.dir(), "not-the-issuer.crt");
    for mode in ["verify-full", "verify-ca"] {
        let proxy = TestProxy::builder()
            .target(TargetSpec::for_cluster("main", &c).tls(mode, Some(&trusted)))
            .start()
            .await;
        let e = expect_upstream_refusal(&proxy, mode).await;
        eprintln!("{mode} with an untrusted server certificate: {e}");
        proxy.shutdown().await;
    }
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("main", &c).tls("require", None))
        .start()
        .await;
    let got = tls_login(&proxy.endpoint(), SCRAM_USER, SCRAM_PASSWORD).await;
    assert_eq!(got, "scram_user: ok as scram_user, server-side ssl true");
    proxy.shutdown().await;
}

/// The server's certificate does not name 127.0.0.1: verify-full refuses it,
/// verify-ca (chain only) accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_name_mismatch() {
    let c = PgCluster::builder().server_names(&["db.example"]).start();
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("main", &c).tls("verify-full", Some(c.ca_path())))
        .start()
        .await;
    let e = expect_upstream_refusal(&proxy, "verify-full, wrong name").await;
    eprintln!("verify-full with a certificate for another name: {e}");
    proxy.shutdown().await;

    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("main", &c).tls("verify-ca", Some(c.ca_path())))
        .start()
        .await;
    let got = tls_login(&proxy.endpoint(), MD5_USER, MD5_PASSWORD).await;
    assert_eq!(got, "md5_user: ok as md5_user, server-side ssl true");
    proxy.shutdown().await;
}
