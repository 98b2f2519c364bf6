//! The impact tests' shared setting: a policy with small limits (over 5 rows, or
//! over half of a table with a floor of 3 rows, is blocked; `held_t` is held for an
//! approver instead), the proxy that enforces it with approver `alice`, and a
//! cluster that logs every statement, so a test can count how often one ran.

use std::net::SocketAddr;
use std::time::Duration;

use super::guarded::prod_builder;
use super::raw::{BackendMsg, RawConn};
use super::{http, sqlstate, PgCluster, TestProxy};

/// A text in each of the probe's counting queries, to count probes in the
/// server's log.
pub const PROBE_MARKER: &str = "pg_stat_get_xact_tuples_inserted";

/// Approver `alice`'s token on [`impact_proxy`]'s admin API.
pub const ALICE_TOKEN: &str = "alice-impact-test-token";

pub const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "no-unbounded-writes"
environment = "production"
classes = ["delete.unbounded", "update.unbounded"]
action = "block"

[[rule]]
name = "held-impact"
environment = "production"
classes = ["delete.*", "update.*", "merge.delete", "write"]
objects = ["held_t", "*.held_t"]
action = "hold"
timeout = "30s"
impact = { rows = 5, on_unknown = "hold" }

[[rule]]
name = "impact-limit"
environment = "production"
classes = ["delete.*", "update.*", "merge.delete", "write"]
action = "block"
impact = { rows = 5, share = "50%", share_min_rows = 3, on_unknown = "block" }
"#;

/// pgwarden with [`POLICY`] on a production target of `cluster`.
pub async fn impact_proxy(cluster: &PgCluster) -> TestProxy {
    let env = "PGWARDEN_TEST_TOKEN_IMPACT_ALICE";
    std::env::set_var(env, ALICE_TOKEN);
    prod_builder(cluster)
        .policy_toml(POLICY)
        .admin(&[("alice", env)])
        .start()
        .await
}

/// A cluster whose log shows every statement (`log_statement = all`).
pub fn logged_cluster() -> PgCluster {
    PgCluster::builder()
        .setting("log_statement", "'all'")
        .start()
}

/// How often the server's log shows a statement containing `marker`.
pub fn times_logged(cluster: &PgCluster, marker: &str) -> usize {
    logged_lines(cluster, "statement:", marker)
}

/// How many lines of the server's log contain both `kind` (e.g. `statement:` or
/// `execute `) and `marker`.
pub fn logged_lines(cluster: &PgCluster, kind: &str, marker: &str) -> usize {
    cluster
        .log()
        .lines()
        .filter(|l| l.contains(kind) && l.contains(marker))
        .count()
}

/// One message's replies as comparable lines: every message's type and exact body.
pub async fn exchange(c: &mut RawConn, sql: &str) -> Vec<String> {
    c.send(&super::raw::query(sql)).await.unwrap();
    let mut out = vec![format!("> {sql}")];
    loop {
        let m: BackendMsg = c
            .read_message(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{sql}: no reply; so far {out:?}"));
        out.push(format!(
            "{} {}",
            m.tag as char,
            String::from_utf8_lossy(&m.body).replace('\0', "|")
        ));
        if m.tag == b'Z' {
            return out;
        }
    }
}

/// Approves hold `id` on the admin API at `addr` as alice.
pub async fn approve(addr: SocketAddr, id: u64) -> http::Response {
    http::post(
        addr,
        &format!("/holds/{id}/approve"),
        Some(ALICE_TOKEN),
        None,
    )
    .await
}

/// What became of a held statement run in `task`: `Ok`, or its SQLSTATE.
pub async fn outcome(
    task: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("held statement not resolved within 15 s")
        .expect("task panicked")
        .map_err(|e| sqlstate(&e).unwrap_or_else(|| format!("client error {e}")))
}
