//! Malformed and unusual wire input over a raw TcpStream: bad startup lengths, unknown
//! protocol versions, bad regular-message lengths, a 1 GB declared length, unknown
//! message types, truncated messages; SSLRequest followed by plaintext; GSSENCRequest.
//! pgwarden must answer each malformed input with an ErrorResponse and close, while
//! other sessions keep working. PostgreSQL's own behaviour is the reference where it
//! is defined (and is checked directly). An impossible startup length (e.g. a Terminate
//! before any startup packet) is closed without a reply, as PostgreSQL does: clients
//! such as node-postgres throw on an unexpected error there.

use crate::support;

use std::time::{Duration, Instant};

use support::raw::{self, Closed, RawConn};
use support::*;
use tokio_postgres::Client;

const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// What a malformed input should get back.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// ErrorResponse with this SQLSTATE, then close.
    Error(&'static str),
    /// An error (any SQLSTATE; for protocol 2.0 possibly in v2 format), then close.
    AnyError,
    /// Close; an ErrorResponse before it is allowed but not required (the client
    /// has already gone away).
    CloseMaybeError,
    /// Close without sending anything.
    Silent,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// Log in as the trust user first (the bytes then arrive after AuthenticationOk).
    AfterLogin(&'static [u8]),
    /// Send these bytes as the very first thing on the connection.
    Raw(&'static [u8]),
    /// Send these first bytes, then half-close our side.
    RawThenClose(&'static [u8]),
    AfterLoginThenClose(&'static [u8]),
    Startup(u32),
}

struct Case {
    name: &'static str,
    step: Step,
    proxy: Expect,
}

const CASES: &[Case] = &[
    Case {
        name: "startup length 4 (< 8)",
        step: Step::Raw(&[0, 0, 0, 4]),
        proxy: Expect::Silent,
    },
    Case {
        name: "startup length 7 (< 8)",
        step: Step::Raw(&[0, 0, 0, 7, 0, 3, 0]),
        proxy: Expect::Silent,
    },
    Case {
        name: "startup length 2^31-1",
        step: Step::Raw(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]),
        proxy: Expect::Silent,
    },
    Case {
        name: "startup length 0xffffffff",
        step: Step::Raw(&[0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0]),
        proxy: Expect::Silent,
    },
    Case {
        name: "Terminate before startup",
        step: Step::Raw(&[b'X', 0, 0, 0, 4]),
        proxy: Expect::Silent,
    },
    Case {
        name: "unsupported protocol 4.0",
        step: Step::Startup(0x0004_0000),
        proxy: Expect::AnyError,
    },
    Case {
        name: "unsupported protocol 2.0",
        step: Step::Startup(0x0002_0000),
        proxy: Expect::AnyError,
    },
    Case {
        name: "unknown request code 1234.9999",
        step: Step::Raw(&[0, 0, 0, 8, 0x04, 0xd2, 0x27, 0x0f]),
        proxy: Expect::AnyError,
    },
    Case {
        name: "regular message length 3 (< 4)",
        step: Step::AfterLogin(&[b'Q', 0, 0, 0, 3]),
        proxy: Expect::Error("08P01"),
    },
    Case {
        name: "regular message length 0",
        step: Step::AfterLogin(&[b'P', 0, 0, 0, 0]),
        proxy: Expect::Error("08P01"),
    },
    Case {
        name: "declared length 1 GB",
        step: Step::AfterLogin(&[b'Q', 0x40, 0, 0, 0, b'S', b'E', b'L']),
        proxy: Expect::Error("08P01"),
    },
    Case {
        name: "declared length 4 GB - 1",
        step: Step::AfterLogin(&[b'd', 0xff, 0xff, 0xff, 0xff]),
        proxy: Expect::Error("08P01"),
    },
    Case {
        name: "unknown message type '!' after auth",
        step: Step::AfterLogin(&[b'!', 0, 0, 0, 4]),
        proxy: Expect::Error("08P01"),
    },
    Case {
        name: "unknown message type 0x00 after auth",
        step: Step::AfterLogin(&[0, 0, 0, 0, 4]),
        proxy: Expect::Error("08P01"),
    },
    Case {
        name: "truncated startup, then close",
        step: Step::RawThenClose(&[0, 0, 0, 40, 0, 3, 0, 0, b'u', b's']),
        proxy: Expect::CloseMaybeError,
    },
    Case {
        name: "truncated length word, then close",
        step: Step::RawThenClose(&[0, 0]),
        proxy: Expect::CloseMaybeError,
    },
    Case {
        name: "truncated query after auth, then close",
        step: Step::AfterLoginThenClose(&[b'Q', 0, 0, 0, 20, b'S', b'E']),
        proxy: Expect::CloseMaybeError,
    },
];

async fn run_case(ep: &Endpoint, case: &Case) -> Closed {
    let mut c = RawConn::connect(ep).await;
    // Peers may close and reset before we finish writing: ignore write errors.
    match case.step {
        Step::Raw(bytes) => {
            let _ = c.send(bytes).await;
        }
        Step::RawThenClose(bytes) => {
            let _ = c.send(bytes).await;
            c.shutdown_write().await;
        }
        Step::AfterLogin(bytes) => {
            c.login_trust(TRUST_USER, APP_DB).await;
            let _ = c.send(bytes).await;
        }
        Step::AfterLoginThenClose(bytes) => {
            c.login_trust(TRUST_USER, APP_DB).await;
            let _ = c.send(bytes).await;
            c.shutdown_write().await;
        }
        Step::Startup(version) => {
            let msg =
                raw::startup_with_version(version, &[("user", TRUST_USER), ("database", APP_DB)]);
            let _ = c.send(&msg).await;
        }
    }
    c.read_to_close(CLOSE_WITHIN).await
}

/// Tags, severity + SQLSTATE of the first error, closed; not the byte count (an error
/// pgwarden makes itself has no server file/line fields).
fn outcome(closed: &Closed) -> String {
    let s = summary(closed);
    s[..s.rfind(" bytes=").unwrap()].to_string()
}

fn summary(closed: &Closed) -> String {
    let msgs = closed.messages();
    let tags: String = msgs.iter().map(|m| m.tag as char).collect();
    let err = closed
        .error_response()
        .map(|e| {
            let f = e.fields();
            format!(
                "{} {}",
                f.get(&'S').cloned().unwrap_or_default(),
                f.get(&'C').cloned().unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "-".to_string());
    format!(
        "tags={tags:?} error={err} closed={} bytes={}",
        closed.closed,
        closed.bytes.len()
    )
}

async fn still_works(client: &Client, what: &str) {
    let v: i32 = tokio::time::timeout(
        Duration::from_secs(5),
        client.query_one("SELECT 41 + 1", &[]),
    )
    .await
    .unwrap_or_else(|_| panic!("bystander session hung after {what}"))
    .unwrap_or_else(|e| panic!("bystander session broken after {what}: {e:?}"))
    .get(0);
    assert_eq!(v, 42);
}

/// No raw (trust_user) backends left on the server once the raw clients are gone.
async fn no_leftover_backends(cluster: &PgCluster) {
    let su = cluster.superuser_client().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = su
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
                &[&TRUST_USER],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} server sessions of closed raw clients still alive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Direct reference: PostgreSQL closes on every case (answering some with an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_direct_reference() {
    let c = PgCluster::start();
    let ep = c.endpoint();
    let bystander = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    for case in CASES {
        let closed = run_case(&ep, case).await;
        eprintln!("direct   | {:40} | {}", case.name, summary(&closed));
        assert!(closed.closed, "{}: PostgreSQL left it open", case.name);
        let msgs = closed.messages();
        assert!(
            msgs.iter().all(|m| m.tag == b'E'),
            "{}: {msgs:?}",
            case.name
        );
        still_works(&bystander, case.name).await;
    }
    no_leftover_backends(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_via_proxy_answered_with_error_and_close() {
    let c = PgCluster::start();
    let proxy = TestProxy::start(&c).await;
    let ep = proxy.endpoint();
    let bystander = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let mut failures = Vec::new();
    for case in CASES {
        let started = Instant::now();
        let closed = run_case(&ep, case).await;
        let line = format!("proxy    | {:40} | {}", case.name, summary(&closed));
        eprintln!("{line}");
        let err = closed.error_response();
        let ok = closed.closed
            && started.elapsed() < CLOSE_WITHIN
            && match case.proxy {
                Expect::Error(code) => {
                    closed.messages().first().map(|m| m.tag) == Some(b'E')
                        && err.as_ref().and_then(|e| e.sqlstate()).as_deref() == Some(code)
                        && err
                            .as_ref()
                            .and_then(|e| e.fields().get(&'S').cloned())
                            .as_deref()
                            == Some("FATAL")
                }
                // First byte only: a protocol-2 client may get a v2-style error.
                Expect::AnyError => closed.bytes.first() == Some(&b'E'),
                Expect::CloseMaybeError => closed.messages().iter().all(|m| m.tag == b'E'),
                Expect::Silent => closed.bytes.is_empty(),
            };
        if !ok {
            failures.push(format!("{line}   expected {:?}", case.proxy));
        }
        still_works(&bystander, case.name).await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The same garbage from 40 connections at once.
    let ep_ref = &ep;
    let results = futures_util::future::join_all(
        CASES
            .iter()
            .cycle()
            .take(40)
            .map(|case| async move { run_case(ep_ref, case).await.closed }),
    )
    .await;
    assert!(results.iter().all(|&closed| closed));
    still_works(&bystander, "40 concurrent malformed connections").await;
    no_leftover_backends(&c).await;
    proxy.shutdown().await;
}

/// Cases where PostgreSQL's answer is the reference and pgwarden must give the same.
async fn protocol_edge_cases(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();

    // Protocol 3.1 with an unknown `_pq_` option: NegotiateProtocolVersion, then the
    // session proceeds normally on 3.0.
    let mut c = RawConn::connect(ep).await;
    c.send(&raw::startup_with_version(
        0x0003_0001,
        &[
            ("user", TRUST_USER),
            ("database", APP_DB),
            ("_pq_.pgwarden_test", "1"),
        ],
    ))
    .await
    .unwrap();
    let msgs = c.read_until_ready("protocol 3.1 startup").await;
    let negotiate = msgs.iter().find(|m| m.tag == b'v');
    t.push(format!(
        "3.1 + _pq_ option: first={:?} negotiate={:?}",
        msgs.first().map(|m| m.tag as char),
        negotiate.map(|m| m.body.clone())
    ));
    c.send(&raw::query("SELECT 1")).await.unwrap();
    let reply = c.read_until_ready("query after negotiation").await;
    let tags: String = reply.iter().map(|m| m.tag as char).collect();
    t.push(format!("then a query: {tags}"));
    c.send(&raw::terminate()).await.unwrap();
    let closed = c.read_to_close(CLOSE_WITHIN).await;
    t.push(format!("terminate: {}", outcome(&closed)));

    // What a login looks like on the wire: AuthenticationOk, every ParameterStatus
    // (name=value, in order), BackendKeyData, ReadyForQuery — unchanged by pgwarden.
    let mut c = RawConn::connect(ep).await;
    let login = c.login_trust(TRUST_USER, APP_DB).await;
    let tags: String = login.iter().map(|m| m.tag as char).collect();
    t.push(format!("login tags {tags}"));
    for m in login.iter().filter(|m| m.tag == b'S') {
        let parts: Vec<String> = m
            .body
            .split(|&b| b == 0)
            .take(2)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        t.push(format!("  ParameterStatus {}={}", parts[0], parts[1]));
    }
    let ready = login.last().unwrap();
    t.push(format!("  ReadyForQuery {:?}", ready.body));
    c.send(&raw::terminate()).await.unwrap();

    // A Query before authentication is complete must not reach the server as a query:
    // PostgreSQL answers FATAL 08P01 (expected a password/SASL response).
    let mut c = RawConn::connect(ep).await;
    c.send(&raw::startup(&[("user", SCRAM_USER), ("database", APP_DB)]))
        .await
        .unwrap();
    let auth = c
        .read_message(CLOSE_WITHIN)
        .await
        .expect("authentication request");
    t.push(format!(
        "auth request {} kind {:?}",
        auth.tag as char,
        auth.body.get(..4)
    ));
    let _ = c.send(&raw::query("SELECT 'sneaked in'")).await;
    let closed = c.read_to_close(CLOSE_WITHIN).await;
    t.push(format!("query before auth: {}", outcome(&closed)));
    assert!(
        !closed.messages().iter().any(|m| m.tag == b'D'),
        "[{}] a query ran before authentication",
        ep.label
    );

    // Unknown message type after auth: PostgreSQL says FATAL 08P01 and closes.
    let mut c = RawConn::connect(ep).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    c.send(&raw::message(b'!', b"")).await.unwrap();
    let closed = c.read_to_close(CLOSE_WITHIN).await;
    t.push(format!("unknown type: {}", outcome(&closed)));

    // Protocol 4.0: an error, then close.
    let mut c = RawConn::connect(ep).await;
    c.send(&raw::startup_with_version(
        0x0004_0000,
        &[("user", TRUST_USER), ("database", APP_DB)],
    ))
    .await
    .unwrap();
    let closed = c.read_to_close(CLOSE_WITHIN).await;
    t.push(format!("protocol 4.0: {}", outcome(&closed)));

    // A startup packet with no user: PostgreSQL's own error.
    let mut c = RawConn::connect(ep).await;
    c.send(&raw::startup(&[("database", APP_DB)]))
        .await
        .unwrap();
    let closed = c.read_to_close(CLOSE_WITHIN).await;
    t.push(format!("no user: {}", outcome(&closed)));

    // A query split into 1-byte writes is still one query.
    let mut c = RawConn::connect(ep).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    for b in raw::query("SELECT 'dribbled'") {
        c.send(&[b]).await.unwrap();
    }
    let reply = c.read_until_ready("dribbled query").await;
    let row = reply.iter().find(|m| m.tag == b'D').map(|m| m.body.clone());
    t.push(format!("dribbled: {row:?}"));
    t
}

transparency!(protocol_edge_cases_match_postgres, protocol_edge_cases);

/// SSLRequest followed by plaintext instead of a TLS handshake: (a) in the same
/// packet, (b) after the 'S'. Neither may lead to a session (no AuthenticationOk).
/// PostgreSQL 15 feeds the bytes to its TLS handshake and waits for the rest of a
/// "record"; pgwarden must refuse them outright and close (`expect_close`).
async fn ssl_then_plaintext(ep: &Endpoint, expect_close: bool) -> Transcript {
    let mut t = Transcript::new();
    let startup = raw::startup(&[("user", TRUST_USER), ("database", APP_DB)]);
    let wait = Duration::from_secs(2);

    let mut c = RawConn::connect(ep).await;
    let mut both = raw::SSL_REQUEST.to_vec();
    both.extend_from_slice(&startup);
    let _ = c.send(&both).await;
    let closed = c.read_to_close(wait).await;
    let first = closed.bytes.first().copied().map(char::from);
    let rest = raw::parse_backend(closed.bytes.get(1..).unwrap_or(&[])).0;
    let authenticated = rest.iter().any(|m| m.tag == b'R' || m.tag == b'Z');
    t.push(format!(
        "same packet: answer {first:?}, authenticated {authenticated}"
    ));
    assert!(!authenticated, "[{}] {t:?}", ep.label);
    assert!(
        closed.closed || !expect_close,
        "[{}] still open {wait:?} after plaintext following SSLRequest (same packet)",
        ep.label
    );

    let mut c = RawConn::connect(ep).await;
    c.send(&raw::SSL_REQUEST).await.unwrap();
    let answer = c.read_byte(CLOSE_WITHIN).await.map(char::from);
    let _ = c.send(&startup).await;
    let closed = c.read_to_close(wait).await;
    let authenticated = closed
        .messages()
        .iter()
        .any(|m| m.tag == b'R' || m.tag == b'Z');
    t.push(format!(
        "after 'S': answer {answer:?}, authenticated {authenticated}"
    ));
    assert!(!authenticated, "[{}] {t:?}", ep.label);
    assert!(
        closed.closed || !expect_close,
        "[{}] still open {wait:?} after plaintext following 'S'",
        ep.label
    );
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_request_then_plaintext_direct() {
    let c = PgCluster::start();
    let t = ssl_then_plaintext(&c.endpoint(), false).await;
    show("ssl_request_then_plaintext", "direct", &t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_request_then_plaintext_via_proxy() {
    let c = PgCluster::start();
    let expected = ssl_then_plaintext(&c.endpoint(), false).await;
    let proxy = TestProxy::builder()
        .client_tls("prefer")
        .target(TargetSpec::for_cluster("main", &c))
        .start()
        .await;
    let got = ssl_then_plaintext(&proxy.endpoint(), true).await;
    show("ssl_request_then_plaintext", "proxy", &got);
    assert_eq!(got, expected);
    proxy.shutdown().await;
}

/// GSSENCRequest: pgwarden has no GSSAPI encryption and answers 'N'; the client then
/// continues with a plaintext startup on the same connection. (PostgreSQL built with
/// GSSAPI answers 'G' here, so this is proxy-specific.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gssenc_request_answered_n_via_proxy() {
    let c = PgCluster::start();
    let mut direct = RawConn::connect(&c.endpoint()).await;
    direct.send(&raw::GSSENC_REQUEST).await.unwrap();
    let answer = direct.read_byte(CLOSE_WITHIN).await.map(char::from);
    eprintln!("PostgreSQL answers GSSENCRequest with {answer:?}");

    let proxy = TestProxy::start(&c).await;
    let mut p = RawConn::connect(&proxy.endpoint()).await;
    p.send(&raw::GSSENC_REQUEST).await.unwrap();
    assert_eq!(p.read_byte(CLOSE_WITHIN).await, Some(b'N'));
    p.login_trust(TRUST_USER, APP_DB).await;
    // GSSENCRequest, then SSLRequest (answered per client TLS: none here → 'N').
    let mut p = RawConn::connect(&proxy.endpoint()).await;
    p.send(&raw::GSSENC_REQUEST).await.unwrap();
    assert_eq!(p.read_byte(CLOSE_WITHIN).await, Some(b'N'));
    p.send(&raw::SSL_REQUEST).await.unwrap();
    assert_eq!(p.read_byte(CLOSE_WITHIN).await, Some(b'N'));
    p.login_trust(TRUST_USER, APP_DB).await;
    proxy.shutdown().await;
}
