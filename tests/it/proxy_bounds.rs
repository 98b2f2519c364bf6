//! Every buffer pgwarden keeps is bounded, whatever a client or a server sends: a
//! password reply before authentication, a client that keeps sending while its
//! statement is held, a server that reports millions of parameters, sends a huge
//! error, an oversized message of a type pgwarden must read, or an oversized
//! authentication request. Each test runs the real binary, measures its peak resident
//! memory (`VmHWM`) and checks that another session keeps working.

use crate::support;

use std::time::Duration;

use support::fake_server::{self, FakeConn, FakeServer};
use support::guarded::*;
use support::raw::{self, message, query, RawConn};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What any one of these attacks may add to the proxy's peak resident memory. The
/// attacks send 100 MiB and more each; unbounded buffering shows as that much.
const MAX_GROWTH_KIB: u64 = 40 * 1024;

/// A proxy binary with the cluster as its default target and `fake` (when given) as
/// the target of database `fake`.
async fn proxy(cluster: &PgCluster, fake: Option<&FakeServer>) -> ProxyProcess {
    let mut b = TestProxy::builder().target(TargetSpec::for_cluster("main", cluster));
    if let Some(f) = fake {
        b = b.target(TargetSpec::for_port("fake", f.port).databases(&["fake"]));
    }
    b.spawn_binary().await
}

/// Another session through the proxy runs a query.
async fn other_session_works(ep: &Endpoint) {
    let c = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let n: i32 = c.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);
}

#[track_caller]
fn assert_bounded(proxy: &ProxyProcess, baseline_kib: u64, what: &str) {
    let peak = proxy.memory_kib("VmHWM");
    assert!(
        peak < baseline_kib + MAX_GROWTH_KIB,
        "{what}: peak RSS {peak} KiB, {} KiB over the {baseline_kib} KiB before",
        peak.saturating_sub(baseline_kib)
    );
}

/// Reads backend messages as they arrive (without keeping them) until ReadyForQuery
/// or the connection's end; returns how many of each tag came, in order of arrival,
/// and the bodies of messages up to `keep` bytes.
async fn drain(stream: &mut tokio::net::TcpStream, keep: usize) -> Vec<(u8, usize, Vec<u8>)> {
    let mut out: Vec<(u8, usize, Vec<u8>)> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    // (tag, total body, body left to read, kept body)
    let mut current: Option<(u8, usize, usize, Vec<u8>)> = None;
    loop {
        let mut at = 0;
        loop {
            if let Some((_, total, left, kept)) = current.as_mut() {
                let n = (*left).min(buf.len() - at);
                if *total <= keep {
                    kept.extend_from_slice(&buf[at..at + n]);
                }
                at += n;
                *left -= n;
                if *left > 0 {
                    break;
                }
                let (tag, total, _, kept) = current.take().unwrap();
                let _ = tag;
                let done = tag == b'Z';
                out.push((tag, total, kept));
                if done {
                    return out;
                }
                continue;
            }
            if buf.len() - at < 5 {
                break;
            }
            let tag = buf[at];
            let len = u32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]);
            let body = len as usize - 4;
            at += 5;
            current = Some((tag, body, body, Vec::new()));
        }
        buf.drain(..at);
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_replies_before_authentication_are_capped() {
    let cluster = PgCluster::start();
    let proxy = proxy(&cluster, None).await;
    let ep = proxy.endpoint();
    other_session_works(&ep).await;
    let baseline = proxy.memory_kib("VmRSS");

    // Three clients at once answer the server's SASL request with a 200 MiB message.
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let ep = ep.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = RawConn::connect(&ep).await;
            c.send(&raw::startup(&[("user", SCRAM_USER), ("database", APP_DB)]))
                .await
                .unwrap();
            let r = c
                .read_message(Duration::from_secs(10))
                .await
                .expect("auth request");
            assert_eq!(r.tag, b'R', "{r:?}");
            let mut head = vec![b'p'];
            head.extend_from_slice(&(200u32 << 20).to_be_bytes());
            c.send(&head).await.unwrap();
            // pgwarden refuses on the header; the rest may not be taken at all.
            let _ = tokio::time::timeout(
                Duration::from_secs(20),
                fake_server::send_filler(&mut c.stream, 100 << 20),
            )
            .await;
            let closed = c.read_to_close(Duration::from_secs(10)).await;
            (
                closed.error_response().and_then(|e| e.sqlstate()),
                closed.closed,
            )
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (Some("08P01".to_string()), true));
    }
    assert_bounded(&proxy, baseline, "200 MiB password replies");
    other_session_works(&ep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_while_its_statement_is_held_is_not_read() {
    let cluster = PgCluster::start();
    victim_table(&cluster, "t", 5, TRUST_USER).await;
    let token_env = "PGWARDEN_TEST_TOKEN_BOUNDS_ALICE";
    std::env::set_var(token_env, "bounds-token");
    let admin_port = free_port();
    let proxy = prod_builder(&cluster)
        .policy_toml(&small_policy("1m", "1m"))
        .extra_toml(&format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
             approvers = {{ alice = {{ token_env = \"{token_env}\" }} }}\n"
        ))
        .spawn_binary()
        .await;
    let admin: std::net::SocketAddr = ([127, 0, 0, 1], admin_port).into();
    let ep = proxy.endpoint();
    other_session_works(&ep).await;
    let baseline = proxy.memory_kib("VmRSS");

    let mut c = RawConn::connect(&ep).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    c.send(&query("DROP TABLE t")).await.unwrap();
    let n = c
        .read_message(Duration::from_secs(10))
        .await
        .expect("hold notice");
    assert_eq!(n.tag, b'N', "{n:?}");

    // A stream of Syncs: once the socket buffers are full, writing stalls.
    let syncs: Vec<u8> = std::iter::repeat_n(message(b'S', &[]), 200_000)
        .flatten()
        .collect();
    let mut sent = 0usize;
    while sent < 512 << 20 {
        match tokio::time::timeout(Duration::from_secs(3), c.stream.write_all(&syncs)).await {
            Ok(Ok(())) => sent += syncs.len(),
            Ok(Err(e)) => panic!("write failed after {sent} bytes: {e}"),
            Err(_) => break,
        }
    }
    assert!(
        sent < 64 << 20,
        "pgwarden kept reading a client whose statement is held: {sent} bytes taken"
    );
    assert_bounded(&proxy, baseline, "Syncs while held");
    other_session_works(&ep).await;

    // The client goes away without pgwarden reading it: the hold is withdrawn all
    // the same, so the statement can never run. (A reset: a FIN would wait behind the
    // bytes pgwarden does not read, as it would in front of PostgreSQL.)
    #[allow(deprecated)] // SO_LINGER 0 does not block: it resets at once
    c.stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = support::http::get(admin, "/holds", Some("bounds-token")).await;
        assert_eq!(r.status, 200, "{r:?}");
        if r.json().as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hold of a closed client is still pending: {:?}",
            r.json()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server_table_exists(&cluster, "t").await);
}

/// A fake server that logs in, then answers every Query with `reply(i)` for
/// i in 0..count, CommandComplete and ReadyForQuery.
async fn fake_answering(count: usize, reply: fn(usize) -> Vec<u8>) -> FakeServer {
    FakeServer::start(move |mut conn: FakeConn| async move {
        if conn.accept_login().await.is_err() {
            return;
        }
        while let Some((tag, _)) = conn.read_message().await {
            if tag != b'Q' {
                continue;
            }
            let mut out = Vec::with_capacity(1 << 20);
            for i in 0..count {
                out.extend(reply(i));
                if out.len() >= 1 << 20 {
                    if conn.send(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            }
            out.extend(fake_server::complete("SELECT 0"));
            out.extend(fake_server::ready());
            if conn.send(&out).await.is_err() {
                return;
            }
        }
    })
    .await
}

async fn fake_session(ep: &Endpoint) -> RawConn {
    let mut c = RawConn::connect(ep).await;
    c.login_trust("someone", "fake").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millions_of_server_parameters_are_not_kept() {
    let cluster = PgCluster::start();
    let fake = fake_answering(2_000_000, |i| {
        message(b'S', format!("pgwarden_test_parameter_{i}\0v\0").as_bytes())
    })
    .await;
    let proxy = proxy(&cluster, Some(&fake)).await;
    let ep = proxy.endpoint();
    other_session_works(&ep).await;
    let baseline = proxy.memory_kib("VmRSS");

    let mut c = fake_session(&ep).await;
    c.send(&query("SELECT 1")).await.unwrap();
    let got = drain(&mut c.stream, 64).await;
    let params = got.iter().filter(|m| m.0 == b'S').count();
    assert_eq!(
        params, 2_000_000,
        "every ParameterStatus reaches the client"
    );
    assert_eq!(got.last().map(|m| m.0), Some(b'Z'));
    assert_bounded(&proxy, baseline, "2 million ParameterStatus names");
    // The session goes on.
    c.send(&query("SELECT 1")).await.unwrap();
    assert_eq!(
        drain(&mut c.stream, 64).await.last().map(|m| m.0),
        Some(b'Z')
    );
    other_session_works(&ep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_server_errors_and_notices_are_streamed() {
    const NOTICE: usize = 40 << 20;
    const ERROR: usize = 300 << 20;
    let cluster = PgCluster::start();
    let fake = FakeServer::start(|mut conn: FakeConn| async move {
        if conn.accept_login().await.is_err() {
            return;
        }
        while let Some((tag, _)) = conn.read_message().await {
            if tag != b'Q' {
                continue;
            }
            for (tag, len, code) in [(b'N', NOTICE, "01000"), (b'E', ERROR, "XX000")] {
                let fields = format!("SERROR\0VERROR\0C{code}\0M");
                let mut head = vec![tag];
                head.extend_from_slice(&((4 + fields.len() + len + 2) as u32).to_be_bytes());
                head.extend_from_slice(fields.as_bytes());
                if conn.send(&head).await.is_err()
                    || fake_server::send_filler(&mut conn.stream, len)
                        .await
                        .is_err()
                    || conn.send(&[0, 0]).await.is_err()
                {
                    return;
                }
            }
            if conn.send(&fake_server::ready()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let proxy = proxy(&cluster, Some(&fake)).await;
    let ep = proxy.endpoint();
    other_session_works(&ep).await;
    let baseline = proxy.memory_kib("VmRSS");

    let mut c = fake_session(&ep).await;
    c.send(&query("SELECT 1")).await.unwrap();
    let got = drain(&mut c.stream, 0).await;
    let shape: Vec<(u8, usize)> = got.iter().map(|m| (m.0, m.1)).collect();
    assert_eq!(
        shape,
        vec![(b'N', NOTICE + 24), (b'E', ERROR + 24), (b'Z', 1)],
        "both messages reach the client whole"
    );
    assert_bounded(&proxy, baseline, "a 300 MiB ErrorResponse");
    c.send(&query("SELECT 1")).await.unwrap();
    assert_eq!(
        drain(&mut c.stream, 0).await.last().map(|m| m.0),
        Some(b'Z')
    );
    other_session_works(&ep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_server_message_pgwarden_must_read_ends_the_session() {
    let cluster = PgCluster::start();
    let fake = FakeServer::start(|mut conn: FakeConn| async move {
        if conn.accept_login().await.is_err() {
            return;
        }
        while let Some((tag, _)) = conn.read_message().await {
            if tag == b'Q' {
                // A 100 MiB CommandComplete, sent as far as pgwarden takes it.
                let _ = conn.send_oversized(b'C', 100 << 20, 100 << 20).await;
                return;
            }
        }
    })
    .await;
    let proxy = proxy(&cluster, Some(&fake)).await;
    let ep = proxy.endpoint();
    other_session_works(&ep).await;
    let baseline = proxy.memory_kib("VmRSS");

    let mut c = fake_session(&ep).await;
    c.send(&query("SELECT 1")).await.unwrap();
    let closed = c.read_to_close(Duration::from_secs(20)).await;
    let e = closed.error_response().expect("an error before the close");
    assert_eq!(e.sqlstate().as_deref(), Some("08006"), "{:?}", e.fields());
    assert!(closed.closed);
    assert_bounded(&proxy, baseline, "a 100 MiB CommandComplete");
    other_session_works(&ep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_authentication_requests_are_refused() {
    let cluster = PgCluster::start();
    let fake = FakeServer::start(|mut conn: FakeConn| async move {
        // A 200 MiB AuthenticationSASL.
        let _ = conn.send_oversized(b'R', 200 << 20, 100 << 20).await;
    })
    .await;
    let proxy = proxy(&cluster, Some(&fake)).await;
    let ep = proxy.endpoint();
    other_session_works(&ep).await;
    let baseline = proxy.memory_kib("VmRSS");

    let mut tasks = Vec::new();
    for _ in 0..3 {
        let ep = ep.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = RawConn::connect(&ep).await;
            c.send(&raw::startup(&[("user", "someone"), ("database", "fake")]))
                .await
                .unwrap();
            let closed = c.read_to_close(Duration::from_secs(20)).await;
            (
                closed.error_response().and_then(|e| e.sqlstate()),
                closed.closed,
            )
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (Some("08006".to_string()), true));
    }
    assert_bounded(&proxy, baseline, "200 MiB authentication requests");
    other_session_works(&ep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_nothing_asked_for_closes_the_session_with_an_audit_record() {
    let cluster = PgCluster::start();
    // Answers the first Query with one CommandComplete too many after its
    // ReadyForQuery: a reply no forwarded request accounts for.
    let fake = FakeServer::start(|mut conn: FakeConn| async move {
        if conn.accept_login().await.is_err() {
            return;
        }
        while let Some((tag, _)) = conn.read_message().await {
            if tag != b'Q' {
                continue;
            }
            let mut out = fake_server::complete("SELECT 0");
            out.extend(fake_server::ready());
            out.extend(fake_server::complete("DELETE 5"));
            if conn.send(&out).await.is_err() {
                return;
            }
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("main", &cluster))
        .target(TargetSpec::for_port("fake", fake.port).databases(&["fake"]))
        .extra_toml(&support::audit_file::audit_toml(&audit, "all"))
        .spawn_binary()
        .await;
    let ep = proxy.endpoint();
    let mut c = fake_session(&ep).await;
    c.send(&query("SELECT 1")).await.unwrap();
    let closed = c.read_to_close(Duration::from_secs(10)).await;
    assert!(closed.closed, "the session is closed");
    assert_eq!(
        closed
            .error_response()
            .and_then(|e| e.sqlstate())
            .as_deref(),
        Some("08P01")
    );
    support::audit_file::wait_for(&audit, "an out_of_sync record", |records| {
        records.iter().any(|r| {
            r["event"] == "out_of_sync" && r["message_type"] == "C" && r["expected"].is_null()
        })
    })
    .await;
    other_session_works(&ep).await;
}
