//! Real client programs through pgwarden vs. directly: `pgbench -i` then `pgbench -T 5 -c 4`
//! in simple, extended and prepared mode with zero failures; psql `-c` and `-f` with a
//! script (COPY, \copy, \gset, \d, notices, an error); psql's `\lo_import`/`\lo_export`
//! (libpq's large-object calls use the FunctionCall message); and the `pgwarden serve`
//! binary as a process.

use crate::support;

use support::*;

fn pgbench_count(stdout: &str, label: &str) -> Option<u64> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

async fn pgbench_modes(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let init = ep
        .pgbench(SCRAM_USER, SCRAM_PASSWORD, APP_DB, &["-i", "-s", "1", "-q"])
        .await;
    init.assert_ok(&format!("[{}] pgbench -i", ep.label));
    t.push("pgbench -i ok".to_string());
    for mode in ["simple", "extended", "prepared"] {
        let out = ep
            .pgbench(
                SCRAM_USER,
                SCRAM_PASSWORD,
                APP_DB,
                &["-T", "5", "-c", "4", "-j", "2", "-M", mode, "-n"],
            )
            .await;
        out.assert_ok(&format!("[{}] pgbench -M {mode}", ep.label));
        let processed = pgbench_count(&out.stdout, "number of transactions actually processed:");
        let failed = pgbench_count(&out.stdout, "number of failed transactions:");
        eprintln!(
            "[{}] pgbench -M {mode}: processed {processed:?}, failed {failed:?}",
            ep.label
        );
        assert!(
            processed.unwrap_or(0) > 0,
            "[{}] -M {mode}: {}",
            ep.label,
            out.stdout
        );
        assert_eq!(failed, Some(0), "[{}] -M {mode}: {}", ep.label, out.stdout);
        t.push(format!("-M {mode}: 0 failed"));
    }
    t
}

// The pgbench transcript is fixed, so the proxy run skips the (15 s) direct rerun.
transparency!(
    pgbench_simple_extended_prepared,
    pgbench_modes,
    proxy_only_rerun
);

const SCRIPT: &str = r#"\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP TABLE IF EXISTS script_t;
RESET client_min_messages;
CREATE TABLE script_t (id int PRIMARY KEY, note text);
BEGIN;
INSERT INTO script_t VALUES (1, 'one'), (2, 'two');
COPY script_t FROM STDIN;
3	three
4	four
\.
COMMIT;
SELECT count(*) AS n FROM script_t \gset
\echo rows :n
SELECT * FROM script_t ORDER BY id;
\copy script_t TO STDOUT
\d script_t
DO $$ BEGIN RAISE NOTICE 'notice from script'; END $$;
PREPARE p(int) AS SELECT note FROM script_t WHERE id = $1;
EXECUTE p(3);
SELECT 'unicode ✓', E'tab\there', NULL::text AS nothing;
\x on
SELECT 1 AS a, 2 AS b;
\x off
SELECT 1/0;
SELECT 'never reached';
"#;

async fn psql_scenario(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let dir = tempfile::tempdir().unwrap();

    // -c, twice, with aligned and unaligned output.
    let out = ep
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &[
                "-c",
                "SELECT 1 AS one, 'two' AS two",
                "-c",
                "SHOW DateStyle",
            ],
        )
        .await;
    out.assert_ok(&format!("[{}] psql -c", ep.label));
    t.push(out.stdout.clone());
    let out = ep
        .psql(
            MD5_USER,
            MD5_PASSWORD,
            APP_DB,
            &["-At", "-c", "SELECT current_user, current_database()"],
        )
        .await;
    out.assert_ok(&format!("[{}] psql -At -c", ep.label));
    t.push(out.stdout.clone());

    // -f with a script; stops at the error with exit status 3.
    let script = dir.path().join("script.sql");
    std::fs::write(&script, SCRIPT).unwrap();
    let script_arg = script.to_str().unwrap();
    let out = ep
        .psql(SCRAM_USER, SCRAM_PASSWORD, APP_DB, &["-f", script_arg])
        .await;
    t.push(format!("exit {:?}", out.status.code()));
    t.push(out.stdout.clone());
    t.push(out.stderr.replace(script_arg, "SCRIPT"));
    assert_eq!(out.status.code(), Some(3), "[{}] {out:?}", ep.label);
    assert!(out.stdout.contains("rows 4"), "[{}] {out:?}", ep.label);
    assert!(
        out.stderr.contains("ERROR:  division by zero"),
        "[{}] {out:?}",
        ep.label
    );

    // A script through stdin in single-transaction mode.
    let mut cmd = ep.tool_command("psql", SCRAM_USER, SCRAM_PASSWORD, APP_DB);
    cmd.args(["-X", "-1", "-At", "-v", "ON_ERROR_STOP=1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"SELECT txid_current() = txid_current();\nSELECT 'from stdin';\n")
            .await
            .unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    t.push(format!(
        "stdin -1: {:?} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    ));
    t
}

transparency!(psql_c_and_f, psql_scenario);

/// `\lo_import` / `\lo_export`: libpq implements lo_open/lo_write/lo_read/... with the
/// FunctionCall ('F') message, which is otherwise hard to produce.
async fn large_objects(ep: &Endpoint) -> Transcript {
    let mut t = Transcript::new();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let output = dir.path().join("out.bin");
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&input, &data).unwrap();

    let out = ep
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &["-c", &format!("\\lo_import '{}'", input.display())],
        )
        .await;
    out.assert_ok(&format!("[{}] \\lo_import", ep.label));
    let oid: u32 = out
        .stdout
        .trim()
        .strip_prefix("lo_import ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("[{}] unexpected output {:?}", ep.label, out.stdout));
    t.push("lo_import ok".to_string());

    let out = ep
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &["-c", &format!("\\lo_export {oid} '{}'", output.display())],
        )
        .await;
    out.assert_ok(&format!("[{}] \\lo_export", ep.label));
    let back = std::fs::read(&output).unwrap();
    t.push(format!(
        "lo_export: {} bytes, identical {}",
        back.len(),
        back == data
    ));
    assert!(back == data, "[{}] large object differs", ep.label);

    let out = ep
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &[
                "-At",
                "-c",
                &format!("SELECT length(lo_get({oid}))"),
                "-c",
                &format!("\\lo_unlink {oid}"),
            ],
        )
        .await;
    out.assert_ok(&format!("[{}] lo_get / \\lo_unlink", ep.label));
    t.push(out.stdout.replace(&oid.to_string(), "OID"));
    t
}

transparency!(psql_large_objects_function_call, large_objects);

/// The real binary: `pgwarden serve --config FILE` in front of a cluster, used by psql.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_psql() {
    let c = PgCluster::start();
    let mut proxy = TestProxy::builder()
        .target(TargetSpec::for_cluster("main", &c))
        .spawn_binary()
        .await;
    let out = proxy
        .endpoint()
        .psql(
            SCRAM_USER,
            SCRAM_PASSWORD,
            APP_DB,
            &["-At", "-c", "SELECT current_setting('port')"],
        )
        .await;
    out.assert_ok("psql through the pgwarden binary");
    assert_eq!(out.stdout.trim(), c.port().to_string());
    let status = proxy.terminate(std::time::Duration::from_secs(10)).await;
    assert!(
        status.is_some(),
        "pgwarden did not exit within 10 s of SIGTERM; stderr:\n{}",
        proxy.stderr()
    );
}
