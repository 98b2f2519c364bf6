//! The classifier's adversarial corpus (tests/data/adversarial.sql) replayed live
//! through pgwarden on a production target, as the PostgreSQL superuser (so only
//! pgwarden stands between each attempt and the data), with the built-in policy in
//! which every hold is turned into a block (a hold would make the replay wait; the
//! classes must still be refused). Before each entry the victim objects are created
//! afresh; after it, a snapshot taken directly on the server is compared: any
//! missing relation, schema, role or database, or any changed row, counts as
//! destroyed. Each entry is sent as one simple Query and, separately, through the
//! extended protocol.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::guarded::*;
use support::*;

/// The SQL of each entry (after its `-- expect:` line); header lines before the first entry's
/// `-- expect:` line are not SQL.
fn corpus() -> Vec<String> {
    let text = include_str!("../data/adversarial.sql");
    text.split("\n--@@\n")
        .map(|e| {
            let lines: Vec<&str> = e
                .lines()
                .skip_while(|l| !l.starts_with("-- expect:"))
                .skip(1)
                .collect();
            lines.join("\n")
        })
        .filter(|s| !s.trim().is_empty())
        .collect()
}

/// The built-in policy with every hold (and every trash rule, whose fallback is a
/// hold) turned into a block.
pub(crate) fn all_holds_block() -> String {
    let builtin = pgwarden::shared::BUILTIN_POLICY;
    let mut out = String::new();
    for line in builtin.lines() {
        let t = line.trim_start();
        // Comments are not policy (the example policy's comments quote rules, holds included).
        if t.starts_with('#')
            || t.starts_with("confirm =")
            || t.starts_with("timeout =")
            || t.starts_with("retention =")
            || t.starts_with("fallback =")
        {
            continue;
        }
        if t.starts_with("production") && t.contains("on_unparsed") {
            out.push_str("production = { action = \"allow\", on_unparsed = \"block\" }\n");
            continue;
        }
        out.push_str(
            &line
                .replace("action = \"hold\"", "action = \"block\"")
                .replace("on_unknown = \"hold\"", "on_unknown = \"block\"")
                .replace("action = \"trash\"", "action = \"block\""),
        );
        out.push('\n');
    }
    assert!(!out.contains("\"hold\""), "a hold is left:\n{out}");
    out
}

/// The first line of an entry that is verified to destroy data when sent directly.
const DESTROYS: &str = "-- destroys directly";

const RESET: &str = "
DROP TABLE IF EXISTS users, orders, audit, users_backup, users_gone CASCADE;
DROP SCHEMA IF EXISTS evil CASCADE;
DROP FUNCTION IF EXISTS cleanup(), cleanup_sql(), trg() CASCADE;
DROP PROCEDURE IF EXISTS cleanup_atomic(), some_cleanup_procedure() CASCADE;
CREATE TABLE users (id int PRIMARY KEY, email text);
INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 100) g;
CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users(id));
INSERT INTO orders SELECT g, g FROM generate_series(1, 50) g;
CREATE TABLE audit (x int);
INSERT INTO audit SELECT g FROM generate_series(1, 10) g;
CREATE PROCEDURE some_cleanup_procedure() LANGUAGE sql AS 'DELETE FROM users';
SELECT lo_from_bytea(0, 'keep me');
";

/// What must survive: relations, schemas, roles, databases, large objects, and the
/// contents of the victim tables.
async fn snapshot(cluster: &PgCluster) -> BTreeMap<String, String> {
    let c = cluster.superuser_client().await;
    let mut snap = BTreeMap::new();
    for (label, sql) in [
        (
            "relations",
            "SELECT string_agg(n.nspname || '.' || c.relname, ',' ORDER BY n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
             AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'",
        ),
        (
            "schemas",
            "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%'",
        ),
        ("roles", "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles"),
        (
            "databases",
            "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database",
        ),
        (
            "large objects",
            "SELECT count(*)::text FROM pg_largeobject_metadata",
        ),
        (
            "users",
            "SELECT count(*) || ' ' || md5(string_agg(id || ':' || coalesce(email, '-'), ',' ORDER BY id)) FROM users",
        ),
        (
            "orders",
            "SELECT count(*) || ' ' || md5(string_agg(id || ':' || user_id, ',' ORDER BY id)) FROM orders",
        ),
        (
            "audit",
            "SELECT count(*) || ' ' || md5(string_agg(x::text, ',' ORDER BY x)) FROM audit",
        ),
        (
            "settings",
            "SELECT count(*)::text FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'",
        ),
    ] {
        let v: Option<String> = c
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("snapshot {label}: {e:?}"))
            .get(0);
        snap.insert(label.to_string(), v.unwrap_or_default());
    }
    snap
}

/// What happened to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// pgwarden refused it (PWxxx).
    Refused,
    /// It reached the server, which refused it.
    ServerError,
    /// It ran (allowed by the policy).
    Ran,
    /// No answer within the limit (a hold: must not happen with this policy).
    NoAnswer,
}

fn outcome_of<T>(
    r: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
) -> Outcome {
    match r {
        Err(_) => Outcome::NoAnswer,
        Ok(Ok(_)) => Outcome::Ran,
        Ok(Err(e)) => match sqlstate(&e) {
            Some(code) if code.starts_with("PW") => Outcome::Refused,
            _ => Outcome::ServerError,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_corpus_destroys_nothing() {
    let entries = corpus();
    assert!(entries.len() >= 80, "corpus has {} entries", entries.len());
    let cluster = PgCluster::start();
    let proxy = prod_builder(&cluster)
        .policy_toml(&all_holds_block())
        .start()
        .await;
    let ep = proxy.endpoint();
    let limit = Duration::from_secs(10);

    // Entries marked `-- destroys directly` are first sent straight to the server,
    // where they must change the snapshot: the attempt is real.
    let mut direct = 0;
    for sql in entries.iter().filter(|s| s.starts_with(DESTROYS)) {
        su_exec(&cluster, RESET).await;
        let before = snapshot(&cluster).await;
        let c = cluster.superuser_client().await;
        c.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("directly: {sql}: {e:?}"));
        drop(c);
        assert_ne!(
            snapshot(&cluster).await,
            before,
            "not destructive directly: {sql}"
        );
        direct += 1;
    }

    let mut destroyed = Vec::new();
    let mut tally: BTreeMap<(&str, Outcome), usize> = BTreeMap::new();
    let mut ran = Vec::new();
    for sql in &entries {
        for protocol in ["simple", "extended"] {
            su_exec(&cluster, RESET).await;
            let before = snapshot(&cluster).await;
            // A fresh session per attempt: settings of one attempt cannot help another.
            let c = ep.must_connect(SUPERUSER, SUPERUSER_PASSWORD, APP_DB).await;
            let o = if protocol == "simple" {
                outcome_of(tokio::time::timeout(limit, c.batch_execute(sql)).await)
            } else {
                outcome_of(tokio::time::timeout(limit, c.query_typed(sql.as_str(), &[])).await)
            };
            *tally.entry((protocol, o)).or_default() += 1;
            if o == Outcome::Ran {
                ran.push(format!("[{protocol}] {sql}"));
            }
            drop(c);
            let after = snapshot(&cluster).await;
            let changed: Vec<String> = before
                .iter()
                .filter(|(k, v)| after.get(*k) != Some(v))
                .map(|(k, v)| format!("{k}: {v:?} -> {:?}", after.get(k)))
                .collect();
            if !changed.is_empty() {
                destroyed.push(format!(
                    "[{protocol}] {sql}\n    {}",
                    changed.join("\n    ")
                ));
            }
            assert_ne!(
                o,
                Outcome::NoAnswer,
                "no answer (held?) for [{protocol}] {sql}"
            );
        }
    }
    println!(
        "adversarial: {} attempted, {} destroyed",
        entries.len(),
        destroyed.len()
    );
    println!("  (each entry sent twice: as a simple Query and through the extended protocol)");
    println!("  {direct} entries marked `{DESTROYS}` destroyed data when sent directly");
    for ((protocol, o), n) in &tally {
        println!("  {protocol:8} {o:?}: {n}");
    }
    for r in &ran {
        println!("  allowed by the policy, ran harmlessly: {r}");
    }
    assert!(
        destroyed.is_empty(),
        "destroyed by {} attempts:\n{}",
        destroyed.len(),
        destroyed.join("\n")
    );
    proxy.shutdown().await;
}
