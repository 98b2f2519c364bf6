//! Cross-session behaviour through pgwarden vs. directly: LISTEN/NOTIFY between two
//! sessions (delivered to an idle listener), and cancelling `pg_sleep(30)` with the
//! connection's cancel key (57014 within a second).

use crate::support;

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use support::*;

/// The next notification (skipping notices), or `None` after `wait`.
async fn next_notification(
    rx: &mut UnboundedReceiver<AsyncMessage>,
    wait: Duration,
) -> Option<tokio_postgres::Notification> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(AsyncMessage::Notification(n))) => return Some(n),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

async fn backend_pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

async fn listen_notify(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let (listener, mut rx) = ep
        .connect_with_messages(SCRAM_USER, SCRAM_PASSWORD, APP_DB)
        .await
        .unwrap_or_else(|e| panic!("[{}] listener connect: {e:?}", ep.label));
    listener
        .batch_execute("LISTEN events; LISTEN \"Other Channel\"")
        .await
        .unwrap();
    let notifier = ep.must_connect(MD5_USER, MD5_PASSWORD, APP_DB).await;
    let notifier_pid = backend_pid(&notifier).await;

    // Delivered while the listener sits idle: nothing is sent on its connection.
    notifier
        .batch_execute("NOTIFY events, 'hello'")
        .await
        .unwrap();
    notifier
        .execute("SELECT pg_notify('Other Channel', $1)", &[&"payload ü"])
        .await
        .unwrap();
    for _ in 0..2 {
        match next_notification(&mut rx, Duration::from_secs(5)).await {
            Some(n) => t.push(format!(
                "got {:?} {:?} from notifier: {}",
                n.channel(),
                n.payload(),
                n.process_id() == notifier_pid
            )),
            None => t.push("missing notification".to_string()),
        }
    }

    // Inside a transaction: delivered at COMMIT, not before.
    let mut notifier = notifier;
    let tx = notifier.transaction().await.unwrap();
    tx.batch_execute("NOTIFY events, 'in-tx'").await.unwrap();
    let early = next_notification(&mut rx, Duration::from_millis(300)).await;
    t.push(format!(
        "before commit: {:?}",
        early.map(|n| n.payload().to_string())
    ));
    tx.commit().await.unwrap();
    let late = next_notification(&mut rx, Duration::from_secs(5)).await;
    t.push(format!(
        "after commit: {:?}",
        late.map(|n| n.payload().to_string())
    ));

    // The listener notifying itself, and a burst of 100.
    listener
        .batch_execute("NOTIFY events, 'self'")
        .await
        .unwrap();
    let own = next_notification(&mut rx, Duration::from_secs(5)).await;
    t.push(format!("self: {:?}", own.map(|n| n.payload().to_string())));
    for i in 0..100 {
        notifier
            .execute("SELECT pg_notify('events', $1)", &[&i.to_string()])
            .await
            .unwrap();
    }
    let mut burst = Vec::new();
    while burst.len() < 100 {
        match next_notification(&mut rx, Duration::from_secs(5)).await {
            Some(n) => burst.push(n.payload().parse::<i32>().unwrap()),
            None => break,
        }
    }
    t.push(format!(
        "burst of {} in order: {}",
        burst.len(),
        burst == (0..100).collect::<Vec<_>>()
    ));

    // After UNLISTEN nothing arrives.
    listener.batch_execute("UNLISTEN *").await.unwrap();
    notifier
        .batch_execute("NOTIFY events, 'ignored'")
        .await
        .unwrap();
    let none = next_notification(&mut rx, Duration::from_millis(300)).await;
    t.push(format!(
        "after unlisten: {:?}",
        none.map(|n| n.payload().to_string())
    ));

    assert!(
        !t.iter().any(|l| l.contains("missing")),
        "[{}] {t:#?}",
        ep.label
    );
    t
}

/// Waits until `sql` is running (state active) in the server session `pid`. If the
/// query ends before it is seen running, returns its outcome and client (a cancel
/// meant for an earlier statement can land on the next one; PostgreSQL processes
/// cancel requests asynchronously). If it never shows up, the panic says what the
/// server reported for that session.
async fn wait_until_running<T: std::fmt::Debug>(
    watcher: &Client,
    pid: i32,
    sql: &str,
    sleeper: &mut tokio::task::JoinHandle<(Result<(), tokio_postgres::Error>, T)>,
) -> Option<(Result<(), tokio_postgres::Error>, T)> {
    // Generous: CI machines run many clusters at once and a slow start is not what
    // this test is about.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE pid = $1 AND query = $2 AND state = 'active'",
                &[&pid, &sql],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            return None;
        }
        if sleeper.is_finished() {
            return Some(sleeper.await.expect("sleeper task"));
        }
        if Instant::now() >= deadline {
            let row = watcher
                .query_opt(
                    "SELECT state, query, wait_event FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .await
                .unwrap()
                .map(|r| {
                    let state: Option<String> = r.get(0);
                    let query: Option<String> = r.get(1);
                    let wait: Option<String> = r.get(2);
                    format!("state={state:?} query={query:?} wait_event={wait:?}")
                });
            panic!("{sql:?} never started running; server session {pid}: {row:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cancel_sleep(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let client = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let watcher = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let token = client.cancel_token();
    let pid = backend_pid(&client).await;

    // Simple protocol. The cancel goes to the same host:port as the session.
    let mut sleeper = tokio::spawn(async move {
        let r = client.simple_query("SELECT pg_sleep(30)").await;
        (r.map(|_| ()), client)
    });
    if let Some((r, _)) =
        wait_until_running(&watcher, pid, "SELECT pg_sleep(30)", &mut sleeper).await
    {
        panic!("[{}] pg_sleep(30) ended before it ran: {r:?}", ep.label);
    }
    let started = Instant::now();
    token
        .cancel_query(NoTls)
        .await
        .unwrap_or_else(|e| panic!("[{}] cancel request: {e:?}", ep.label));
    let (result, client) = tokio::time::timeout(Duration::from_secs(10), sleeper)
        .await
        .expect("cancelled query did not return within 10 s")
        .unwrap();
    let elapsed = started.elapsed();
    let e = result.expect_err("pg_sleep(30) was not cancelled");
    t.push(format!("simple: {}", describe_error(&e)));
    assert_eq!(sqlstate(&e).as_deref(), Some("57014"), "[{}]", ep.label);
    assert!(
        elapsed < Duration::from_secs(1),
        "[{}] cancel took {elapsed:?}",
        ep.label
    );

    // The session is usable afterwards, and its cancel key still works (extended
    // protocol this time).
    let v: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    t.push(format!("after cancel: {v}"));
    let mut client = client;
    let mut attempt = 0;
    let sleeper = loop {
        attempt += 1;
        let mut sleeper = tokio::spawn(async move {
            let r = client
                .query("SELECT pg_sleep($1)", &[&30f64])
                .await
                .map(|_| ());
            (r, client)
        });
        match wait_until_running(&watcher, pid, "SELECT pg_sleep($1)", &mut sleeper).await {
            None => break sleeper,
            // The earlier cancel arrived late (PostgreSQL signals the backend from
            // another process); that is the server's behaviour, directly too.
            Some((Err(e), c)) if sqlstate(&e).as_deref() == Some("57014") && attempt < 3 => {
                client = c;
            }
            Some((r, _)) => panic!("[{}] pg_sleep($1) ended before it ran: {r:?}", ep.label),
        }
    };
    let started = Instant::now();
    token.cancel_query(NoTls).await.unwrap();
    let (result, client) = tokio::time::timeout(Duration::from_secs(10), sleeper)
        .await
        .expect("cancelled query did not return within 10 s")
        .unwrap();
    let elapsed = started.elapsed();
    let e = result.expect_err("pg_sleep($1) was not cancelled");
    t.push(format!("extended: {}", describe_error(&e)));
    assert!(
        elapsed < Duration::from_secs(1),
        "[{}] cancel took {elapsed:?}",
        ep.label
    );

    // Cancelling an idle session does nothing to it.
    token.cancel_query(NoTls).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let v: i32 = client.query_one("SELECT 2", &[]).await.unwrap().get(0);
    t.push(format!("idle cancel harmless: {v}"));

    // Another session's key does not cancel this one: a bogus CancelRequest is
    // dropped and the connection closed without a reply.
    let mut raw = support::raw::RawConn::connect(ep).await;
    raw.send(&support::raw::cancel_request(12345, 67890))
        .await
        .unwrap();
    let closed = raw.read_to_close(Duration::from_secs(5)).await;
    t.push(format!(
        "bogus cancel: closed={} reply bytes={}",
        closed.closed,
        closed.bytes.len()
    ));
    let v: i32 = watcher.query_one("SELECT 3", &[]).await.unwrap().get(0);
    t.push(format!("others unaffected: {v}"));
    t
}

transparency!(listen_notify_across_sessions, listen_notify);
transparency!(cancel_pg_sleep, cancel_sleep);
