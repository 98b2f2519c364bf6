//! Text in a client encoding other than UTF-8 is read exactly as the server reads it.
//! Two distinct non-ASCII dollar-quote tags pair differently when both are decoded
//! lossily (to U+FFFD, the same tag): `SELECT $A$ $B$ || $A$; DROP TABLE victim;
//! SELECT $B$ || $B$ -- $A$` is one harmless SELECT read that way and a DROP for the
//! server. Sent by real psql (`-c`, one Query) with PGCLIENTENCODING set, in LATIN1,
//! WIN1252 and EUC_JP: directly it drops the table; through pgwarden on a production
//! target it is refused and the table is still there. The same bytes in a UTF8
//! session do not decode and are refused as `unreadable`.

use crate::support::guarded::*;
use crate::support::*;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

const POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "no-drops"
environment = "production"
classes = ["drop.*", "unreadable"]
action = "block"
message = "no drops here"
"#;

fn attack(a: &[u8], b: &[u8]) -> Vec<u8> {
    let tag = |t: &[u8]| [b"$".as_slice(), t, b"$"].concat();
    let (a, b) = (tag(a), tag(b));
    [
        b"SELECT ".as_slice(),
        &a,
        b" ",
        &b,
        b" || ",
        &a,
        b"; DROP TABLE victim; SELECT ",
        &b,
        b" || ",
        &b,
        b" -- ",
        &a,
    ]
    .concat()
}

async fn psql(ep: &Endpoint, encoding: &str, sql: &[u8]) -> CmdOutput {
    let mut cmd = ep.tool_command("psql", SUPERUSER, SUPERUSER_PASSWORD, APP_DB);
    cmd.env("PGCLIENTENCODING", encoding)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(OsStr::from_bytes(sql));
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("psql timed out (held?)")
        .expect("run psql");
    CmdOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn victim_exists(cluster: &PgCluster) -> bool {
    let c = cluster.superuser_client().await;
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'victim' AND relkind = 'r'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    n == 1
}

async fn reset(cluster: &PgCluster) {
    su_exec(
        cluster,
        "DROP TABLE IF EXISTS victim; CREATE TABLE victim (id int); INSERT INTO victim VALUES (1)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_non_ascii_tags_hide_no_drop() {
    let cluster = PgCluster::start();
    let proxy = prod_builder(&cluster).policy_toml(POLICY).start().await;
    let cases: [(&str, &[u8], &[u8]); 3] = [
        ("LATIN1", b"\xe9", b"\xfc"),
        ("WIN1252", b"\x80", b"\x9a"),
        ("EUC_JP", b"\xa4\xa2", b"\xa4\xa4"),
    ];
    for (encoding, a, b) in cases {
        let sql = attack(a, b);
        reset(&cluster).await;
        let direct = psql(&cluster.endpoint(), encoding, &sql).await;
        direct.assert_ok(&format!("{encoding} directly"));
        assert!(
            !victim_exists(&cluster).await,
            "{encoding}: the attempt does not drop the table directly"
        );

        reset(&cluster).await;
        let out = psql(&proxy.endpoint(), encoding, &sql).await;
        assert!(
            !out.status.success() && out.stderr.contains("no drops here"),
            "{encoding} through pgwarden: not refused as a drop:\n{}{}",
            out.stdout,
            out.stderr
        );
        assert!(
            victim_exists(&cluster).await,
            "{encoding}: pgwarden let the DROP through"
        );
    }

    // The LATIN1 bytes in a UTF8 session: not UTF-8, never read lossily.
    reset(&cluster).await;
    let out = psql(&proxy.endpoint(), "UTF8", &attack(b"\xe9", b"\xfc")).await;
    assert!(
        !out.status.success() && out.stderr.contains("no drops here"),
        "UTF8 session: invalid bytes not refused as unreadable:\n{}{}",
        out.stdout,
        out.stderr
    );
    assert!(victim_exists(&cluster).await);
    proxy.shutdown().await;
}

/// Blocks dropping the table named `Ã©` (UTF-8 bytes C3 83 C2 A9); allows the rest.
const NAME_POLICY: &str = r#"
[defaults]
production = { action = "allow", on_unparsed = "block" }

[[rule]]
name = "keep-the-table"
environment = "production"
classes = ["drop.*"]
objects = ["Ã©", "*.Ã©"]
action = "block"
message = "that table stays"

[[rule]]
name = "no-unreadable"
environment = "production"
classes = ["unreadable"]
action = "block"
message = "unreadable"
"#;

/// `SET client_encoding = 'LATIN1'` and, in the same write, `DROP TABLE "<C3 A9>"`:
/// the server reads the DROP in LATIN1 (the table `Ã©`); read in the UTF8 the
/// session had, it would name `é`, which no rule protects.
fn switch_then_drop() -> Vec<u8> {
    use crate::support::raw::{message, query};
    let mut drop = b"DROP TABLE \"\xc3\xa9\"".to_vec();
    drop.push(0);
    [
        query("SET client_encoding = 'LATIN1'"),
        message(b'Q', &drop),
    ]
    .concat()
}

async fn secret_exists(cluster: &PgCluster) -> bool {
    let c = cluster.superuser_client().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM pg_class WHERE relname = 'Ã©'", &[])
        .await
        .expect("count")
        .get(0);
    n == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_switch_between_safe_encodings_reads_what_follows_as_unreadable() {
    use crate::support::raw::RawConn;
    let cluster = PgCluster::start();
    let make = format!(
        "DROP TABLE IF EXISTS \"Ã©\"; CREATE TABLE \"Ã©\" (id int); \
         ALTER TABLE \"Ã©\" OWNER TO {TRUST_USER}"
    );
    su_exec(&cluster, &make).await;
    let proxy = prod_builder(&cluster)
        .policy_toml(NAME_POLICY)
        .start()
        .await;

    // Directly: the DROP, read in LATIN1, drops `Ã©`.
    let mut direct = RawConn::connect(&cluster.endpoint()).await;
    direct.login_trust(TRUST_USER, APP_DB).await;
    direct.send(&switch_then_drop()).await.unwrap();
    direct.read_until_ready("SET").await;
    direct.read_until_ready("DROP").await;
    assert!(!secret_exists(&cluster).await, "not destructive directly");
    su_exec(&cluster, &make).await;

    // Through pgwarden: the DROP behind the unanswered switch is unreadable.
    let mut c = RawConn::connect(&proxy.endpoint()).await;
    c.login_trust(TRUST_USER, APP_DB).await;
    c.send(&switch_then_drop()).await.unwrap();
    c.read_until_ready("SET").await;
    let mut refused = None;
    for _ in 0..10 {
        let m = c
            .read_message(Duration::from_secs(10))
            .await
            .expect("reply to the DROP");
        if m.tag == b'E' {
            refused = m.fields().get(&'M').cloned();
        }
        if m.tag == b'Z' {
            break;
        }
    }
    let refused = refused.expect("the DROP was not refused");
    assert!(refused.contains("\"no-unreadable\""), "{refused}");
    assert!(
        secret_exists(&cluster).await,
        "pgwarden let the DROP through"
    );

    // Once the server has answered, the session's encoding is known: the same DROP
    // is read in LATIN1, names `Ã©`, and is refused by its rule.
    c.send(&crate::support::raw::message(
        b'Q',
        b"DROP TABLE \"\xc3\xa9\"\0",
    ))
    .await
    .unwrap();
    let mut refused = None;
    for _ in 0..10 {
        let m = c
            .read_message(Duration::from_secs(10))
            .await
            .expect("reply");
        if m.tag == b'E' {
            refused = m.fields().get(&'M').cloned();
        }
        if m.tag == b'Z' {
            break;
        }
    }
    let refused = refused.expect("the DROP was not refused");
    assert!(refused.contains("\"keep-the-table\""), "{refused}");
    assert!(secret_exists(&cluster).await);
    proxy.shutdown().await;
}
