//! Connections still in startup are limited per client address and overall
//! (`server.max_starting_per_client`, `server.max_starting`): silent TCP
//! connections beyond them get FATAL 53300 at once, and neither they nor the ones
//! let in lock out other clients or authenticated sessions.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

use support::*;

const WAIT: Duration = Duration::from_secs(3);

/// A TCP connection from `source` (any 127.x.y.z address reaches the proxy on
/// 127.0.0.1 over loopback) that sends nothing.
async fn silent(source: &str, proxy: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{source}:0").parse().unwrap()).unwrap();
    s.connect(proxy).await.unwrap()
}

/// What the proxy sent before closing, if it closed within `wait`; `None` = still open.
async fn answer(conn: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(wait, conn.read_to_end(&mut buf)).await {
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_lock_out_other_clients() {
    let c = PgCluster::start();
    let proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("dev", &c))
        .server_setting("max_starting", "5")
        .server_setting("max_starting_per_client", "3")
        .server_setting("startup_timeout", "\"60s\"")
        .start()
        .await;
    let addr = proxy.addr();
    // An authenticated session from before the burst.
    let early = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;

    // One address: three silent connections are let in, the fourth is refused.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(silent("127.0.0.2", addr).await);
    }
    let mut fourth = silent("127.0.0.2", addr).await;
    let text = answer(&mut fourth, WAIT)
        .await
        .expect("the fourth connection is closed");
    assert!(
        text.contains("53300") && text.contains("max_starting_per_client"),
        "{text:?}"
    );
    // Another address still gets through startup and works.
    let other = proxy
        .endpoint()
        .must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await;
    other.simple_query("SELECT 1").await.unwrap();

    // Overall: two more from a third address fill max_starting = 5; the next
    // connection, from yet another address, is refused.
    for _ in 0..2 {
        held.push(silent("127.0.0.3", addr).await);
    }
    let mut over = silent("127.0.0.4", addr).await;
    let text = answer(&mut over, WAIT)
        .await
        .expect("the connection over the limit is closed");
    assert!(
        text.contains("53300") && text.contains("(pgwarden server.max_starting)"),
        "{text:?}"
    );
    for conn in &mut held {
        assert_eq!(
            answer(conn, Duration::from_millis(200)).await,
            None,
            "a silent connection within the limits was closed early"
        );
    }
    // Sessions that are past startup are not affected.
    early.simple_query("SELECT 1").await.unwrap();
    other.simple_query("SELECT 1").await.unwrap();

    // Once the silent connections go away, their slots are free again.
    drop(held);
    let mut late = None;
    for _ in 0..50 {
        if let Ok(cl) = proxy
            .endpoint()
            .connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
            .await
        {
            late = Some(cl);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    late.expect("a client after the burst connects")
        .simple_query("SELECT 1")
        .await
        .unwrap();
    proxy.shutdown().await;
}
