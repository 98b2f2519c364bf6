//! Helpers for the enforcement tests: a production target, victim tables owned by the
//! test user, and checks made directly on the cluster as the superuser (never through
//! pgwarden), so a test sees what really happened on the server.

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client};

use super::clients::Endpoint;
use super::cluster::APP_DB;

use super::cluster::{PgCluster, MD5_USER, SCRAM_USER, TRUST_USER};
use super::proxy::{ProxyBuilder, TargetSpec, TestProxy};

/// The name of the production target in these tests.
pub const PROD: &str = "prod";

/// A policy for precise tests: blocks unbounded writes and opaque code, self-confirm
/// for renames, approver holds with `approver_timeout` for drops, truncates and
/// inserts into a table named `ledger` (to count how often an approved statement ran).
pub fn small_policy(self_timeout: &str, approver_timeout: &str) -> String {
    format!(
        r#"
[defaults]
production = {{ action = "allow", on_unparsed = "block" }}

[[rule]]
name = "no-unbounded-writes"
environment = "production"
classes = ["delete.unbounded", "update.unbounded"]
action = "block"

[[rule]]
name = "no-opaque-code"
environment = "production"
classes = ["code.opaque", "system"]
action = "block"

[[rule]]
name = "renames-confirm"
environment = "production"
classes = ["alter.rename", "delete.maybe_unbounded"]
action = "hold"
confirm = "self"
timeout = "{self_timeout}"

[[rule]]
name = "ledger-approve"
environment = "production"
classes = ["write"]
objects = ["ledger", "*.ledger"]
action = "hold"
confirm = "approver"
timeout = "{approver_timeout}"

[[rule]]
name = "drops-approve"
environment = "production"
classes = ["drop.*", "truncate"]
action = "hold"
confirm = "approver"
timeout = "{approver_timeout}"
"#
    )
}

/// pgwarden with one production target `prod` for `cluster` and the built-in policy.
pub async fn prod_proxy(cluster: &PgCluster) -> TestProxy {
    prod_builder(cluster).start().await
}

/// A builder with one production target `prod` for `cluster`.
pub fn prod_builder(cluster: &PgCluster) -> ProxyBuilder {
    TestProxy::builder().target(TargetSpec::production(PROD, cluster))
}

/// Runs SQL as the superuser directly on the cluster.
pub async fn su_exec(cluster: &PgCluster, sql: &str) {
    cluster
        .superuser_client()
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("superuser: {sql}: {e:?}"));
}

/// Lets the test users create objects in `public`, and creates `name(id int primary
/// key, v text)` with `rows` rows (ids 1..=rows), owned by `owner`.
pub async fn victim_table(cluster: &PgCluster, name: &str, rows: i64, owner: &str) {
    su_exec(
        cluster,
        &format!(
            "GRANT ALL ON SCHEMA public TO {SCRAM_USER}, {MD5_USER}, {TRUST_USER};
             DROP TABLE IF EXISTS {name};
             CREATE TABLE {name} (id int PRIMARY KEY, v text);
             INSERT INTO {name} SELECT g, 'row ' || g FROM generate_series(1, {rows}) g;
             ALTER TABLE {name} OWNER TO {owner};
             GRANT ALL ON {name} TO PUBLIC;"
        ),
    )
    .await;
}

/// Rows in `table`, counted by the superuser on the cluster.
pub async fn server_count(cluster: &PgCluster, table: &str) -> i64 {
    let c = cluster.superuser_client().await;
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e:?}"))
        .get(0)
}

/// Rows of `table` matching `cond`, counted by the superuser.
pub async fn server_count_where(cluster: &PgCluster, table: &str, cond: &str) -> i64 {
    let c = cluster.superuser_client().await;
    c.query_one(&format!("SELECT count(*) FROM {table} WHERE {cond}"), &[])
        .await
        .unwrap_or_else(|e| panic!("count {table} where {cond}: {e:?}"))
        .get(0)
}

/// Whether a relation `name` (unqualified, in `public`) exists on the cluster.
pub async fn server_table_exists(cluster: &PgCluster, name: &str) -> bool {
    let c = cluster.superuser_client().await;
    c.query_one(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relname = $1",
        &[&name],
    )
    .await
    .unwrap()
    .get::<_, i64>(0)
        == 1
}

/// Asserts `r` is a server error with SQLSTATE `code` and returns its message.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(r: Result<T, tokio_postgres::Error>, code: &str) -> String {
    match r {
        Ok(v) => panic!("expected SQLSTATE {code}, got success: {v:?}"),
        Err(e) => match e.as_db_error() {
            Some(db) => {
                assert_eq!(
                    db.code().code(),
                    code,
                    "expected SQLSTATE {code}, got {} {}",
                    db.code().code(),
                    db.message()
                );
                db.message().to_string()
            }
            None => panic!("expected SQLSTATE {code}, got a client error: {e:?}"),
        },
    }
}

/// The token of a PW001 message `... confirm with token TOKEN`.
#[track_caller]
pub fn token_of(message: &str) -> String {
    let at = message
        .find("confirm with token ")
        .unwrap_or_else(|| panic!("no token in {message:?}"));
    let token: String = message[at + "confirm with token ".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    assert_eq!(token.len(), 10, "token {token:?} in {message:?}");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_uppercase() && c != 'I' && c != 'O' || ('2'..='9').contains(&c)),
        "token alphabet: {token:?}"
    );
    token
}

/// Polls `f` every 50 ms until it returns true (panics after `limit`).
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `client` is still usable (`SELECT 1` answers 1).
pub async fn usable(client: &Client) -> bool {
    matches!(
        client
            .query_one("SELECT 1", &[])
            .await
            .map(|r| r.get::<_, i32>(0)),
        Ok(1)
    )
}

/// A statement sent by its own task; `id` is the hold id from the notice.
pub struct Held {
    pub id: u64,
    pub notice: String,
    pub task: JoinHandle<Result<(), tokio_postgres::Error>>,
    pub client: Arc<Client>,
}

/// The hold id in "pgwarden: held as #ID, waiting for approval (...)".
pub fn hold_id(message: &str) -> u64 {
    let at = message
        .find("held as #")
        .unwrap_or_else(|| panic!("not a hold notice: {message:?}"));
    message[at + "held as #".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no id in {message:?}"))
}

/// Connects as `user`, sends `sql` (simple protocol) from a task, and waits for the
/// hold notice (PW001), which must arrive while the statement is still waiting.
pub async fn hold(ep: &Endpoint, user: &str, password: &str, sql: &str) -> Held {
    let (client, mut rx) = ep
        .connect_with_messages(user, password, APP_DB)
        .await
        .unwrap_or_else(|e| panic!("connect {user}: {e:?}"));
    let client = Arc::new(client);
    let c = Arc::clone(&client);
    let sql = sql.to_string();
    let task = tokio::spawn(async move { c.batch_execute(&sql).await });
    let notice = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = rx.recv().await {
            if let AsyncMessage::Notice(n) = m {
                return Some(n);
            }
        }
        None
    })
    .await
    .expect("no hold notice within 10 s")
    .expect("connection ended before the hold notice");
    assert_eq!(notice.code().code(), "PW001", "{notice:?}");
    assert!(!task.is_finished(), "the held statement did not wait");
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    Held {
        id: hold_id(notice.message()),
        notice: notice.message().to_string(),
        task,
        client,
    }
}
