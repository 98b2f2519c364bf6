//! `[notify]` webhooks through the real proxy: local HTTP receivers started by the
//! test get signed JSON and Slack bodies for hold, approve, deny, expire and
//! withdraw; a receiver that fails is retried and counted; one that hangs never slows
//! a session (its queue overflows and that is counted too); and with every webhook
//! failing, a held statement still only runs when approved (it expires otherwise),
//! checked on the server.

use crate::support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use support::guarded::*;
use support::http;
use support::*;

const ALICE_TOKEN: &str = "alice-notify-test-token";
const SECRET: &str = "webhook-signing-secret";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    Ok,
    Fail,
    Hang,
}

/// One request a receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Got {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A local HTTP receiver on 127.0.0.1 that records every request (also used by
/// the approver page's tests).
pub(crate) struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    pub(crate) async fn start(mode: Mode) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = Arc::clone(&got);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let g = Arc::clone(&g);
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut s).await else {
                        return;
                    };
                    g.lock().unwrap().push(req);
                    let reply: &[u8] = match mode {
                        Mode::Ok => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        Mode::Fail => b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\nfail",
                        Mode::Hang => {
                            // Keep the connection open and never answer.
                            std::future::pending::<()>().await;
                            return;
                        }
                    };
                    let _ = s.write_all(reply).await;
                });
            }
        });
        Receiver { addr, got }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (10 s) for a request to `path` whose JSON has `event` for hold `id`.
    pub(crate) async fn wait_event(&self, path: &str, event: &str, id: u64) -> Got {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.all().into_iter().find(|g| {
                g.path == path
                    && g.header("x-pgwarden-event") == Some(event)
                    && body_hold_id(g) == Some(id)
            });
            if let Some(g) = found {
                return g;
            }
            assert!(
                Instant::now() < deadline,
                "no {event} event for hold #{id} at {path} within 10 s; got {:#?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The hold id in a generic body (`hold.id`) or a Slack body (`#ID` in `text`).
fn body_hold_id(g: &Got) -> Option<u64> {
    let v: Value = serde_json::from_str(&g.body).ok()?;
    if let Some(id) = v["hold"]["id"].as_u64() {
        return Some(id);
    }
    let text = v["text"].as_str()?;
    let at = text.find('#')?;
    text[at + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

async fn read_request(s: &mut tokio::net::TcpStream) -> Option<Got> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let path = lines.next()?.split_whitespace().nth(1)?.to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        if raw.len() >= end + 4 + len {
            let body = String::from_utf8_lossy(&raw[end + 4..end + 4 + len]).into_owned();
            return Some(Got {
                path,
                headers,
                body,
            });
        }
    }
}

/// The value of one sample in the OpenMetrics text, 0 when absent.
fn sample(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_report_holds_and_never_decide_or_slow_them() {
    let ok = Receiver::start(Mode::Ok).await;
    let failing = Receiver::start(Mode::Fail).await;
    let hanging = Receiver::start(Mode::Hang).await;
    std::env::set_var("PGWARDEN_TEST_NOTIFY_SECRET", SECRET);
    std::env::set_var("PGWARDEN_TEST_NOTIFY_ALICE", ALICE_TOKEN);
    let notify = format!(
        r#"
[notify]
page_url = "https://approvers.example/ui"
queue = 2

[notify.webhooks.generic]
url = "{}"
secret_env = "PGWARDEN_TEST_NOTIFY_SECRET"

[notify.webhooks.chat]
url = "{}"
format = "slack"

[notify.webhooks.failing]
url = "{}"
retries = 2
backoff = "50ms"

[notify.webhooks.hanging]
url = "{}"
timeout = "30s"
retries = 0
"#,
        ok.url("/generic"),
        ok.url("/slack"),
        failing.url("/hook"),
        hanging.url("/hook"),
    );
    let cluster = PgCluster::start();
    for t in ["n_approved", "n_expired", "n_denied", "n_withdrawn"] {
        victim_table(&cluster, t, 3, SCRAM_USER).await;
    }
    let proxy = prod_builder(&cluster)
        .policy_toml(&small_policy("1m", "3s"))
        .admin(&[("alice", "PGWARDEN_TEST_NOTIFY_ALICE")])
        .extra_toml(&notify)
        .start()
        .await;
    let admin = proxy.admin_addr().expect("admin listener");
    let ep = proxy.endpoint();

    // Held: the client hears of it at once although one receiver hangs.
    let started = Instant::now();
    let held = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE n_approved").await;
    let to_notice = started.elapsed();
    assert!(
        to_notice < Duration::from_secs(2),
        "hold notice took {to_notice:?}"
    );
    let g = ok.wait_event("/generic", "hold", held.id).await;
    let v = g.json();
    assert_eq!(v["event"], "hold");
    assert_eq!(v["hold"]["sql"], "DROP TABLE n_approved");
    assert_eq!(v["hold"]["user"], SCRAM_USER);
    assert_eq!(v["hold"]["target"], PROD);
    assert_eq!(v["hold"]["rule"], "drops-approve");
    assert_eq!(
        v["url"],
        format!("https://approvers.example/ui#hold-{}", held.id)
    );
    assert_eq!(g.header("content-type"), Some("application/json"));
    // The signature: HMAC-SHA256 of "TIMESTAMP.BODY" under the secret.
    let ts = g.header("x-pgwarden-timestamp").expect("timestamp header");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{}", g.body).as_bytes());
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(g.header("x-pgwarden-signature"), Some(want.as_str()));
    let s = ok.wait_event("/slack", "hold", held.id).await;
    let sv = s.json();
    assert!(
        sv["text"].as_str().unwrap().contains("held for approval"),
        "{sv}"
    );
    assert!(sv["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("DROP TABLE n_approved"));
    assert!(
        s.header("x-pgwarden-signature").is_none(),
        "no secret, no signature"
    );

    // Other sessions are served at their usual pace meanwhile.
    let other = ep.must_connect(SCRAM_USER, SCRAM_PASSWORD, APP_DB).await;
    let t = Instant::now();
    for _ in 0..20 {
        other.simple_query("SELECT 1").await.unwrap();
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "20 SELECTs took {:?}",
        t.elapsed()
    );

    // Approved: it runs, and the approval is reported with the approver.
    let r = http::post(
        admin,
        &format!("/holds/{}/approve", held.id),
        Some(ALICE_TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::timeout(Duration::from_secs(10), held.task)
        .await
        .expect("approved statement finished")
        .unwrap()
        .expect("approved statement ran");
    assert!(!server_table_exists(&cluster, "n_approved").await);
    let a = ok.wait_event("/generic", "approve", held.id).await.json();
    assert_eq!(a["approver"], "alice");

    // Every attempt of the failing receiver was made and the failure counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = http::get(admin, "/metrics", None).await.body;
        let failed = sample(
            &m,
            "pgwarden_notifications_total{webhook=\"failing\",result=\"failed\"}",
        );
        let retried = sample(
            &m,
            "pgwarden_notifications_total{webhook=\"failing\",result=\"retried\"}",
        );
        if failed >= 2.0 && retried >= 4.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "failing webhook not counted:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = failing
        .all()
        .iter()
        .filter(|g| body_hold_id(g) == Some(held.id))
        .count();
    assert_eq!(attempts, 6, "hold + approve, each tried 1 + 2 times");

    // Nobody approves: with webhooks failing and hanging it still expires, never runs.
    let waiting = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE n_expired").await;
    let r = tokio::time::timeout(Duration::from_secs(10), waiting.task)
        .await
        .expect("expiry within 10 s")
        .unwrap();
    expect_code(r, "PW005");
    assert!(
        server_table_exists(&cluster, "n_expired").await,
        "an expired hold never runs"
    );
    ok.wait_event("/generic", "expire", waiting.id).await;

    // Denied with a reason.
    let denied = hold(&ep, SCRAM_USER, SCRAM_PASSWORD, "DROP TABLE n_denied").await;
    let r = http::post(
        admin,
        &format!("/holds/{}/deny", denied.id),
        Some(ALICE_TOKEN),
        Some(r#"{"reason":"wrong database"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = ok.wait_event("/generic", "deny", denied.id).await.json();
    assert_eq!(
        (d["approver"].as_str(), d["reason"].as_str()),
        (Some("alice"), Some("wrong database"))
    );
    let chat = ok.wait_event("/slack", "deny", denied.id).await.json();
    assert!(chat["text"]
        .as_str()
        .unwrap()
        .contains("denied by alice: wrong database"));
    assert!(server_table_exists(&cluster, "n_denied").await);

    // The client goes away while held: withdrawn.
    let mut cmd = ep.tool_command("psql", SCRAM_USER, SCRAM_PASSWORD, APP_DB);
    cmd.args(["-X", "-c", "DROP TABLE n_withdrawn"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut psql = cmd.spawn().expect("spawn psql");
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        let found = ok
            .all()
            .into_iter()
            .find(|g| g.path == "/generic" && g.json()["hold"]["sql"] == "DROP TABLE n_withdrawn");
        if let Some(g) = found {
            break body_hold_id(&g).expect("hold id");
        }
        assert!(
            Instant::now() < deadline,
            "psql's DROP was not reported as held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    psql.kill().await.unwrap();
    ok.wait_event("/generic", "withdraw", gone).await;
    assert!(server_table_exists(&cluster, "n_withdrawn").await);

    // The hanging receiver holds its first delivery; its queue (2) overflowed.
    assert!(
        !hanging.all().is_empty(),
        "the hanging receiver was reached"
    );
    let m = http::get(admin, "/metrics", None).await.body;
    assert!(
        sample(
            &m,
            "pgwarden_notifications_total{webhook=\"hanging\",result=\"dropped\"}"
        ) >= 1.0,
        "overflow of the hanging webhook's queue is counted:\n{m}"
    );
    assert_eq!(
        sample(
            &m,
            "pgwarden_notifications_total{webhook=\"generic\",result=\"failed\"}"
        ),
        0.0
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unset_webhook_secret_stops_startup() {
    let cluster = PgCluster::start();
    let r = prod_builder(&cluster)
        .extra_toml(
            "\n[notify.webhooks.x]\nurl = \"http://127.0.0.1:9/\"\nsecret_env = \"PGWARDEN_TEST_NOTIFY_UNSET\"\n",
        )
        .try_start()
        .await;
    let e = r.err().expect("startup must fail without the secret");
    assert!(e.contains("PGWARDEN_TEST_NOTIFY_UNSET"), "{e}");
}
