//! End-to-end tests of `pgwarden explain`: the real binary, real config files, the
//! example policy. One named case per row: SQL → exit code (0 allow, 2 hold,
//! 3 block) and substrings of the text report.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pgwarden");

/// A policy that lets the migration tool run drops when deployed by a `deploy_*` user;
/// everything else as in the example policy (the rule is prepended to it).
const FLYWAY_RULE: &str = r#"
[[rule]]
name = "flyway-migrations"
environment = "production"
applications = ["flyway"]
users = ["deploy_*"]
classes = ["drop.*", "alter.drop_column"]
action = "allow"
"#;

struct Files {
    /// prod / staging / dev / shadow on the example policy.
    config: PathBuf,
    /// prod on the example policy with FLYWAY_RULE first.
    flyway_config: PathBuf,
    dir: PathBuf,
}

fn example_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml")
}

/// TOML basic string for a path (backslashes and quotes escaped).
fn toml_str(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

fn targets() -> &'static str {
    r#"
[targets.prod]
host = "127.0.0.1"
environment = "production"
databases = ["app"]

[targets.staging]
host = "127.0.0.1"
environment = "staging"
databases = ["app_staging"]

[targets.dev]
host = "127.0.0.1"
environment = "development"

[targets.shadow]
host = "127.0.0.1"
environment = "production"
databases = ["app_shadow"]
mode = "shadow"
"#
}

fn files() -> &'static Files {
    static F: OnceLock<Files> = OnceLock::new();
    F.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_explain");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("proxy.toml");
        std::fs::write(
            &config,
            format!(
                "[policy]\npath = {}\n{}",
                toml_str(&example_policy()),
                targets()
            ),
        )
        .unwrap();
        let policy = dir.join("flyway-policy.toml");
        let example = std::fs::read_to_string(example_policy()).unwrap();
        std::fs::write(&policy, format!("{FLYWAY_RULE}\n{example}")).unwrap();
        let flyway_config = dir.join("proxy-flyway.toml");
        std::fs::write(
            &flyway_config,
            format!("[policy]\npath = {}\n{}", toml_str(&policy), targets()),
        )
        .unwrap();
        Files {
            config,
            flyway_config,
            dir,
        }
    })
}

fn run(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("explain")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("PGWARDEN_CONFIG")
        .env("PGWARDEN_LOG", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Overrides from the environment would change the targets under test.
    for (k, _) in std::env::vars() {
        if k.starts_with("PGWARDEN__") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().expect("run pgwarden");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn explain(args: &[&str]) -> Output {
    run(&files().config, args, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn expect(o: &Output, code: i32, needles: &[&str]) {
    let (out, err) = (stdout(o), stderr(o));
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    for n in needles {
        assert!(
            out.contains(n),
            "stdout lacks {n:?}\n--- stdout\n{out}\n--- stderr\n{err}"
        );
    }
}

/// `name: target, sql => exit, [substrings of stdout];`
macro_rules! explain_cases {
    ($($name:ident: $target:literal, $sql:expr => $code:expr, [$($needle:expr),* $(,)?];)*) => {$(
        #[test]
        fn $name() {
            let o = explain(&["--target", $target, $sql]);
            expect(&o, $code, &[$($needle),*]);
        }
    )*};
}

const HOLD_APPROVER: &str = "HOLD (confirm: approver, timeout 10m)";
const HOLD_SELF: &str = "HOLD (confirm: self, timeout 5m)";
const DROPS: &str = "by rule 'drops-need-a-second-person'";
const TRASH: &str = "by rule 'drops-go-to-the-trash'";
const TRASHED: &str = "verdict: TRASH, fallback HOLD (confirm: approver, timeout 10m)";
const TRASH_NOTE: &str = "trash:   moved to the trash, restorable with `pgwarden trash restore ID`";
const UNBOUNDED: &str = "BLOCK by rule 'no-unbounded-writes'";
const PROD_DEFAULT: &str = "ALLOW by the production default";
const MEASURED: &str = "measured: at run time by rule 'large-writes-need-a-second-person': kept when \
within rows = 1000 and share = 10 % (of tables where over 10 rows change, or all of more than one) (→ ALLOW by the production \
default), else HOLD (confirm: approver, timeout 10m); impact unknown → HOLD (confirm: approver, timeout 10m)";
const KEY_BOUND: &str = "; no probe when the target's catalog proves it bounded by a key\n";

explain_cases! {
    // A plain DROP TABLE goes to the trash in production (exit 2: its fallback is a
    // hold); what the trash does not cover, and other drops and truncate, wait for
    // an approver.
    drop_table_prod: "prod", "DROP TABLE users" => 2,
        ["classes: drop.table", "objects: users", TRASHED, TRASH, TRASH_NOTE, "message: Destroys data"];
    drop_table_if_exists_several: "prod", "DROP TABLE IF EXISTS a, b CASCADE" => 2,
        ["classes: drop.table", "objects: a, b", TRASHED, TRASH, TRASH_NOTE];
    drop_schema_qualified: "prod", "DROP SCHEMA billing CASCADE" => 2,
        ["classes: drop.schema", "objects: billing", DROPS];
    drop_index: "prod", "DROP INDEX CONCURRENTLY i" => 2, ["classes: drop.index", DROPS];
    drop_view: "prod", "drop view public.v" => 2, ["classes: drop.view", "objects: public.v", DROPS];
    drop_role: "prod", "DROP ROLE bob" => 2, ["classes: drop.role", DROPS];
    drop_owned: "prod", "DROP OWNED BY bob" => 2, ["classes: drop.owned", DROPS];
    drop_sequence_is_other: "prod", "DROP SEQUENCE s" => 2, ["classes: drop.other", DROPS];
    drop_database_blocked: "prod", "DROP DATABASE app (FORCE)" => 3,
        ["classes: drop.database", "BLOCK by rule 'no-drop-database'"];
    truncate_several: "prod", "TRUNCATE a, b RESTART IDENTITY" => 2,
        ["classes: truncate", "objects: a, b", HOLD_APPROVER, DROPS];
    alter_drop_column: "prod", "ALTER TABLE t ADD COLUMN x int, DROP COLUMN y" => 2,
        ["alter.drop_column", DROPS];
    reassign_owned: "prod", "REASSIGN OWNED BY a TO b" => 2, ["classes: reassign_owned", DROPS];

    // Unbounded writes are blocked; the others are measured at run time and shown
    // with their verdict within the limits (exit 0).
    delete_no_where: "prod", "DELETE FROM orders" => 3,
        ["classes: delete.unbounded", "objects: orders", UNBOUNDED, "message: This statement would change every row"];
    delete_always_true: "prod", "DELETE FROM orders WHERE 1 = 1" => 3, ["delete.unbounded", UNBOUNDED];
    delete_or_true: "prod", "DELETE FROM orders WHERE id = 5 OR true" => 3, ["delete.unbounded", UNBOUNDED];
    update_no_where: "prod", "UPDATE users SET admin = true" => 3, ["classes: update.unbounded", UNBOUNDED];
    update_id_equals_id: "prod", "UPDATE users SET x = 1 WHERE id = id" => 3, ["update.unbounded", UNBOUNDED];
    delete_bounded: "prod", "DELETE FROM orders WHERE id = 42" => 0,
        ["classes: delete.bounded", PROD_DEFAULT, MEASURED, KEY_BOUND];
    delete_all_matching: "prod", "DELETE FROM orders WHERE id > 0" => 0,
        ["classes: delete.bounded", PROD_DEFAULT, MEASURED, "impact unknown → HOLD (confirm: approver, timeout 10m)\n",
         "1 of them measured at run time"];
    update_bounded_param: "prod", "UPDATE users SET name = $1 WHERE id = $2" => 0,
        ["classes: update.bounded", PROD_DEFAULT, MEASURED, KEY_BOUND];
    delete_maybe_unbounded: "prod", "DELETE FROM orders WHERE $1" => 0,
        ["classes: delete.maybe_unbounded", PROD_DEFAULT, MEASURED];
    // A function call is held for its author anyway: measuring cannot let it through,
    // so the strictest verdict (impact unknown) decides, unmeasured.
    update_maybe_unbounded_call: "prod", "UPDATE t SET x = 1 WHERE f(id)" => 2,
        ["update.maybe_unbounded", "code.call", HOLD_APPROVER, "by rule 'large-writes-need-a-second-person'"];
    cte_delete_in_select: "prod", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d" => 3,
        ["delete.unbounded", UNBOUNDED];
    explain_analyze_delete: "prod", "EXPLAIN ANALYZE DELETE FROM t" => 3, ["delete.unbounded", UNBOUNDED];
    merge_delete: "prod", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE" => 0,
        ["merge.delete", PROD_DEFAULT, MEASURED];

    // Reads and writes pass.
    select_plain: "prod", "SELECT * FROM users WHERE id = 1" => 0, ["classes: read", "objects: users", PROD_DEFAULT];
    insert_plain: "prod", "INSERT INTO t (a) VALUES (1)" => 0, ["classes: write", PROD_DEFAULT];
    upsert: "prod", "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2" => 0,
        ["insert.upsert", PROD_DEFAULT, MEASURED];
    upsert_nothing: "prod", "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING" => 0, ["classes: write\n", PROD_DEFAULT];
    merge_update: "prod", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a" => 0,
        ["merge.update", PROD_DEFAULT, MEASURED];
    transaction: "prod", "BEGIN" => 0, ["classes: transaction", PROD_DEFAULT];
    create_index_audited: "prod", "CREATE INDEX i ON t (c)" => 0,
        ["classes: create.other", "AUDIT by rule 'record-ddl-and-bulk'"];
    copy_in_audited: "prod", "COPY t FROM STDIN" => 0, ["classes: copy.in", "AUDIT by rule 'record-ddl-and-bulk'"];
    vacuum_full_audited: "prod", "VACUUM FULL t" => 0, ["classes: maintenance", "AUDIT"];

    // Look-alikes stay allowed.
    drop_inside_string: "prod", "SELECT 'DROP TABLE x'" => 0, ["classes: read", PROD_DEFAULT];
    drop_in_line_comment: "prod", "-- DROP TABLE x\nSELECT 1" => 0, ["classes: read", "1 statement:"];
    drop_in_block_comment: "prod", "/* DROP TABLE x; */ SELECT 1" => 0, ["classes: read", "1 statement:"];
    column_named_drop: "prod", "SELECT \"drop\" FROM t" => 0, ["classes: read"];
    plain_explain_delete: "prod", "EXPLAIN DELETE FROM t" => 0, ["classes: read"];
    dollar_quoted_drop: "prod", "SELECT $x$DROP TABLE users$x$" => 0, ["classes: read"];

    // Code.
    do_block_with_delete: "prod", "DO $$ BEGIN DELETE FROM t; END $$" => 3,
        ["code.do", "delete.unbounded", UNBOUNDED];
    do_block_harmless: "prod", "DO $$ BEGIN PERFORM 1; END $$" => 2,
        ["classes: code.do", HOLD_SELF, "by rule 'code-confirm'"];
    create_function: "prod", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'" => 2,
        ["classes: create.code", "by rule 'code-confirm'"];
    call_held: "prod", "CALL p()" => 2, ["classes: code.call", "by rule 'code-confirm'"];
    copy_program_blocked: "prod", "COPY t TO PROGRAM 'gzip > /tmp/x'" => 3,
        ["classes: copy.program", "BLOCK by rule 'no-shell-from-the-database'"];
    dangerous_function: "prod", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity" => 2,
        ["system", "by rule 'privileges-need-a-second-person'"];
    grant: "prod", "GRANT ALL ON t TO bob" => 2, ["classes: grant", HOLD_APPROVER];

    // Session settings.
    set_role: "prod", "SET ROLE admin" => 2, ["session.role", "by rule 'role-switch-confirm'"];
    set_encoding_blocked: "prod", "SET client_encoding = 'SJIS'" => 3,
        ["session.encoding", "BLOCK by rule 'no-unreadable-sql'"];
    set_string_literals_blocked: "prod", "SET standard_conforming_strings = off" => 3,
        ["session.string_literals", "BLOCK by rule 'no-unreadable-sql'"];
    set_search_path_audited: "prod", "SET search_path = app, public" => 0, ["session.search_path", "AUDIT"];
    set_ordinary: "prod", "SET statement_timeout = '5s'" => 0, ["classes: session", PROD_DEFAULT];

    // Several statements: the strictest wins, each is reported.
    multi_drop_and_select: "prod", "SELECT 1; DROP TABLE users; SELECT 2" => 2,
        ["[1] SELECT 1", "[2] DROP TABLE users", "[3] SELECT 2", "3 statements: 2 allow, 0 audit, 1 hold, 0 block → hold (exit 2)"];
    multi_hold_and_block: "prod", "DROP TABLE a; DELETE FROM b" => 3,
        ["1 hold, 1 block → block (exit 3)", TRASH, UNBOUNDED];
    multi_hidden_after_comment: "prod", "SELECT 1 /* ; */; -- ;\nTRUNCATE t" => 2,
        ["[2] ", "classes: truncate", "2 statements"];
    multi_all_allowed: "prod", "BEGIN; UPDATE t SET x = 1 WHERE id = 1; COMMIT" => 0,
        ["3 statements: 3 allow", "→ allow (exit 0)"];
    prepare_then_execute: "prod", "PREPARE p AS DELETE FROM t; EXECUTE p" => 3,
        ["runs:    the statement prepared at [1]", UNBOUNDED];

    // Unparsable text fails closed in production only.
    unparsed_prod_held: "prod", "SELEC * FROM users" => 2,
        ["classes: unparsed", "HOLD (confirm: self, timeout 5m) by the production default"];
    unparsed_staging_audited: "staging", "SELEC * FROM users" => 0,
        ["classes: unparsed", "AUDIT by the staging default"];
    unparsed_dev_allowed: "dev", "SELEC * FROM users" => 0, ["ALLOW by the development default"];

    // Other environments: the example policy guards production only.
    drop_table_staging: "staging", "DROP TABLE users" => 0,
        ["environment staging", "classes: drop.table", "ALLOW by the staging default"];
    delete_unbounded_dev: "dev", "DELETE FROM orders" => 0,
        ["environment development", "delete.unbounded", "ALLOW by the development default"];
    drop_database_dev: "dev", "DROP DATABASE app" => 0, ["drop.database", "ALLOW"];

    // Shadow mode: same exit codes, the text says "would".
    shadow_drop: "shadow", "DROP TABLE users" => 2,
        ["shadow mode", "verdict: would TRASH, fallback HOLD", TRASH];
    shadow_view: "shadow", "DROP VIEW v" => 2, ["shadow mode", "verdict: would HOLD", DROPS];
    shadow_unbounded: "shadow", "DELETE FROM orders" => 3, ["verdict: would BLOCK by rule 'no-unbounded-writes'"];
    shadow_read: "shadow", "SELECT 1" => 0, ["verdict: ALLOW", "(exit 0)"];
}

#[test]
fn header_names_target_user_application_database_and_policy() {
    let o = explain(&[
        "--target",
        "prod",
        "--user",
        "alice",
        "--application",
        "psql",
        "SELECT 1",
    ]);
    expect(
        &o,
        0,
        &[
            "target prod (environment production, enforce mode)",
            "user alice",
            "application psql",
            "database app",
            "policy.example.toml (sha256 ",
        ],
    );
}

#[test]
fn database_flag_overrides_the_targets_first_database() {
    let o = explain(&["--target", "prod", "--database", "reports", "SELECT 1"]);
    expect(&o, 0, &["database reports"]);
}

// --- --user / --application against a custom rule ---------------------------

fn flyway(args: &[&str]) -> Output {
    run(&files().flyway_config, args, None)
}

#[test]
fn flyway_deploy_user_may_drop() {
    let o = flyway(&[
        "--target",
        "prod",
        "--user",
        "deploy_bot",
        "--application",
        "flyway",
        "DROP TABLE old_users",
    ]);
    expect(
        &o,
        0,
        &["ALLOW by rule 'flyway-migrations'", "application flyway"],
    );
}

#[test]
fn flyway_rule_needs_the_user_too() {
    let o = flyway(&[
        "--target",
        "prod",
        "--user",
        "alice",
        "--application",
        "flyway",
        "DROP TABLE old_users",
    ]);
    expect(&o, 2, &[TRASH]);
}

#[test]
fn flyway_rule_needs_the_application_too() {
    let o = flyway(&[
        "--target",
        "prod",
        "--user",
        "deploy_bot",
        "DROP TABLE old_users",
    ]);
    expect(&o, 2, &[TRASH]);
}

#[test]
fn flyway_rule_does_not_cover_unbounded_deletes() {
    let o = flyway(&[
        "--target",
        "prod",
        "--user",
        "deploy_bot",
        "--application",
        "flyway",
        "DROP TABLE a; DELETE FROM b",
    ]);
    expect(&o, 3, &["ALLOW by rule 'flyway-migrations'", UNBOUNDED]);
}

// --- files and stdin ----------------------------------------------------------

const MIGRATION: &str = r#"-- V7__split_names.sql
CREATE TABLE people (id bigint PRIMARY KEY, first text, last text);

ALTER TABLE users ADD COLUMN first_name text;
UPDATE users SET first_name = split_part(name, ' ', 1) WHERE name IS NOT NULL;

CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  NEW.updated_at := now();  -- a ; inside the body
  RETURN NEW;
END
$body$;

ALTER TABLE users DROP COLUMN name;
"#;

#[test]
fn migration_file_with_several_statements() {
    let path = files().dir.join("V7__split_names.sql");
    std::fs::write(&path, MIGRATION).unwrap();
    let o = explain(&["--target", "prod", "--file", path.to_str().unwrap()]);
    expect(
        &o,
        2,
        &[
            "[1] CREATE TABLE people",
            "[2] ALTER TABLE users ADD COLUMN first_name text",
            "[3] UPDATE users SET first_name",
            // `name IS NOT NULL` may well be every row: measured at run time.
            "classes: update.maybe_unbounded",
            MEASURED,
            "[4] CREATE FUNCTION touch()",
            "classes: create.code",
            "[5] ALTER TABLE users DROP COLUMN name",
            "classes: alter.drop_column",
            DROPS,
            "5 statements: 1 allow, 2 audit, 2 hold, 0 block → hold (exit 2)\n\
             1 of them measured at run time, counted by their verdict within the limits",
        ],
    );
}

#[test]
fn sql_from_stdin() {
    let o = run(
        &files().config,
        &["--target", "prod", "--file", "-"],
        Some("SELECT 1;\nDELETE FROM accounts;\n"),
    );
    expect(
        &o,
        3,
        &["[2] DELETE FROM accounts", "delete.unbounded", UNBOUNDED],
    );
}

#[test]
fn missing_file_is_an_error() {
    let path = files().dir.join("no-such-migration.sql");
    let o = explain(&["--target", "prod", "--file", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no-such-migration.sql"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn file_and_sql_together_are_refused() {
    let o = explain(&["--target", "prod", "--file", "x.sql", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2), "clap usage error: {}", stderr(&o));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}

// --- errors ---------------------------------------------------------------------

#[test]
fn unknown_target_lists_the_targets() {
    let o = explain(&["--target", "production", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("no target \"production\""), "{err}");
    assert!(
        err.contains("(targets: dev, prod, shadow, staging)"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn missing_sql_is_an_error() {
    let o = explain(&["--target", "prod"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("give SQL text or --file FILE"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_config_is_an_error() {
    let o = run(
        &files().dir.join("absent.toml"),
        &["--target", "prod", "SELECT 1"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("absent.toml"), "{}", stderr(&o));
}

#[test]
fn empty_input_has_nothing_to_hold() {
    let o = explain(&["--target", "prod", "-- only a comment"]);
    expect(&o, 0, &["0 statements", "(exit 0)"]);
}

// --- JSON -------------------------------------------------------------------------

fn json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = explain(&all);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(&o), stderr(&o)));
    (o.status.code(), v)
}

#[test]
fn json_report_per_statement() {
    let (code, v) = json(&[
        "--target",
        "prod",
        "--user",
        "alice",
        "SELECT * FROM users; DROP TABLE public.users; DELETE FROM orders",
    ]);
    assert_eq!(code, Some(3));
    assert_eq!(v["target"]["name"], "prod");
    assert_eq!(v["target"]["environment"], "production");
    assert_eq!(v["target"]["mode"], "enforce");
    assert_eq!(v["user"], "alice");
    assert_eq!(v["database"], "app");
    assert!(v["policy"]["origin"]
        .as_str()
        .unwrap()
        .ends_with("policy.example.toml"));
    assert_eq!(v["policy"]["sha256"].as_str().unwrap().len(), 64);

    let s = v["statements"].as_array().unwrap();
    assert_eq!(s.len(), 3);

    assert_eq!(s[0]["index"], 1);
    assert_eq!(s[0]["classes"], serde_json::json!(["read"]));
    assert_eq!(s[0]["objects"], serde_json::json!(["users"]));
    assert_eq!(s[0]["action"], "allow");
    assert!(s[0]["rule"].is_null(), "the default decided: {}", s[0]);

    assert_eq!(s[1]["sql"], "DROP TABLE public.users");
    assert_eq!(s[1]["classes"], serde_json::json!(["drop.table"]));
    assert_eq!(s[1]["objects"], serde_json::json!(["public.users"]));
    assert_eq!(s[1]["action"], "hold");
    assert_eq!(s[1]["rule"], "drops-go-to-the-trash");
    assert_eq!(s[1]["trash"]["covered"], true, "{}", s[1]);
    assert!(s[1]["trash"]["what"]
        .as_str()
        .unwrap()
        .contains("pgwarden trash restore ID"));
    assert!(s[0]["trash"].is_null());
    assert_eq!(s[1]["confirm"], "approver");
    assert_eq!(s[1]["timeout_secs"], 600);
    assert!(s[1]["message"].as_str().unwrap().contains("approver"));

    assert_eq!(s[2]["classes"], serde_json::json!(["delete.unbounded"]));
    assert_eq!(s[2]["action"], "block");
    assert_eq!(s[2]["rule"], "no-unbounded-writes");
    assert!(s[2]["confirm"].is_null());

    let sum = &v["summary"];
    assert_eq!(sum["action"], "block");
    assert_eq!(sum["exit_code"], 3);
    assert_eq!(
        (&sum["allow"], &sum["audit"], &sum["hold"], &sum["block"]),
        (
            &Value::from(1),
            &Value::from(0),
            &Value::from(1),
            &Value::from(1)
        )
    );
}

#[test]
fn json_exit_code_matches_summary() {
    for (sql, code) in [
        ("SELECT 1", 0),
        ("TRUNCATE t", 2),
        ("UPDATE t SET a = 1", 3),
    ] {
        let (c, v) = json(&["--target", "prod", sql]);
        assert_eq!(c, Some(code), "{sql}");
        assert_eq!(v["summary"]["exit_code"], code, "{sql}");
    }
}

#[test]
fn json_shadow_mode() {
    let (code, v) = json(&["--target", "shadow", "DROP TABLE users"]);
    assert_eq!(code, Some(2));
    assert_eq!(v["target"]["mode"], "shadow");
    assert_eq!(v["statements"][0]["action"], "hold");
    assert_eq!(v["summary"]["exit_code"], 2);
}

#[test]
fn json_from_a_file_with_a_dollar_quoted_body() {
    let path = files().dir.join("json-migration.sql");
    std::fs::write(&path, MIGRATION).unwrap();
    let (code, v) = json(&["--target", "prod", "--file", path.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    let s = v["statements"].as_array().unwrap();
    assert_eq!(s.len(), 5);
    let classes: Vec<&str> = s
        .iter()
        .map(|e| e["classes"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        [
            "create.other",
            "alter.other",
            "update.maybe_unbounded",
            "create.code",
            "alter.drop_column"
        ]
    );
    assert_eq!(s[4]["rule"], "drops-need-a-second-person");
}

#[test]
fn closed_stdout_still_exits_with_the_verdict() {
    // `pgwarden explain … | head -1`: the reader goes away before the report is
    // written; the exit code must still be the verdict, not a panic (101).
    let mut child = Command::new(BIN)
        .args(["explain", "--config"])
        .arg(&files().config)
        .args(["--target", "prod", "--json", "DELETE FROM orders"])
        .env_remove("PGWARDEN_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

/// README's table of statement classes lists every class, and each example
/// statement really has the class it illustrates.
#[test]
fn readme_class_table_is_complete_and_true() {
    use pgwarden::classify::{classify, Class, SessionFacts};
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut seen = Vec::new();
    for line in readme.lines() {
        // | `class` | meaning | `example` |
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() != 5 || !cells[1].starts_with('`') {
            continue;
        }
        let Some(class) = Class::from_name(cells[1].trim_matches('`')) else {
            continue;
        };
        seen.push(class);
        let example = cells[3];
        if !example.starts_with('`') {
            continue; // no statement shows it (e.g. `unreadable` comes from session facts)
        }
        let sql = example.trim_matches('`');
        let got = classify(sql, &SessionFacts::default());
        assert!(
            got.iter().any(|s| s.has(class)),
            "README example {sql:?} for {class} is classified {:?}",
            got.iter().map(|s| &s.classes).collect::<Vec<_>>()
        );
    }
    for c in Class::ALL {
        assert!(seen.contains(c), "README's class table lacks {c}");
    }
}

/// The sample output in README is what the binary prints (policy hash aside).
#[test]
fn readme_explain_sample_is_real_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let cmd = "$ pgwarden explain --target prod \"DROP TABLE users; SELECT 1\"\n";
    let start = readme.find(cmd).expect("README shows the explain sample") + cmd.len();
    let shown = &readme[start..start + readme[start..].find("```").unwrap()];

    let dir = files().dir.join("readme");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::copy(root.join("proxy.toml.example"), &config).unwrap();
    let o = run(
        &config,
        &["--target", "prod", "DROP TABLE users; SELECT 1"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let mask = |s: &str| -> String {
        s.lines()
            .map(|l| match l.find("(sha256 ") {
                Some(i) => format!("{}(sha256 …)", &l[..i]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(mask(shown), mask(&stdout(&o)));
}

/// A rule with `impact` limits: explain says the statement is measured at run time
/// and which verdict each outcome gets; the verdict line and the exit code are the
/// ones within the limits, so a CI check passes a routine write.
#[test]
fn measured_statements_show_the_probe_and_its_outcomes() {
    let dir = files().dir.join("impact");
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        r#"
[defaults]
production = { action = "allow" }

[[rule]]
name = "no-unbounded-writes"
environment = "production"
classes = ["delete.unbounded", "update.unbounded"]
action = "block"

[[rule]]
name = "large-writes"
environment = "production"
classes = ["delete.bounded", "update.bounded"]
action = "hold"
confirm = "approver"
timeout = "10m"
impact = { rows = 1000, share = "10%", share_min_rows = 10, on_unknown = "block" }
"#,
    )
    .unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!("[policy]\npath = {}\n{}", toml_str(&policy), targets()),
    )
    .unwrap();
    let o = run(
        &config,
        &[
            "--target",
            "prod",
            "DELETE FROM t WHERE id > 0; DELETE FROM t",
        ],
        None,
    );
    let out = stdout(&o);
    assert!(
        out.contains(
            "[1] DELETE FROM t WHERE id > 0\n    classes: delete.bounded\n    objects: t\n    \
             verdict: ALLOW by the production default\n    \
             measured: at run time by rule 'large-writes': kept when within rows = 1000 and \
             share = 10 % (of tables where over 10 rows change, or all of more than one) (→ ALLOW by the production \
             default), else HOLD (confirm: approver, timeout 10m); impact unknown → BLOCK\n"
        ),
        "{out}"
    );
    // The unbounded DELETE is blocked by its own rule, and not measured.
    assert!(
        out.contains("verdict: BLOCK by rule 'no-unbounded-writes'"),
        "{out}"
    );
    assert_eq!(out.matches("    measured: ").count(), 1, "{out}");
    assert!(
        out.contains(
            "1 allow, 0 audit, 0 hold, 1 block → block (exit 3)\n1 of them measured at run time"
        ),
        "{out}"
    );
    assert_eq!(o.status.code(), Some(3));

    // Alone, the measured UPDATE passes a CI check: exit 0, with the marker in JSON.
    let o = run(
        &config,
        &[
            "--target",
            "prod",
            "--json",
            "UPDATE t SET v = 1 WHERE id > 0",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let s = &v["statements"][0];
    assert_eq!(s["action"], "allow", "{v}");
    assert_eq!(s["measured"]["rule"], "large-writes", "{v}");
    assert_eq!(s["measured"]["within"], "allow", "{v}");
    assert_eq!(s["measured"]["over"]["action"], "hold", "{v}");
    assert_eq!(s["measured"]["over"]["confirm"], "approver", "{v}");
    assert_eq!(s["measured"]["over"]["timeout_secs"], 600, "{v}");
    assert_eq!(s["measured"]["unknown"]["action"], "block", "{v}");
    assert_eq!(s["measured"]["key_bound_unprobed"], false, "{v}");
    assert_eq!(v["summary"]["measured"], 1, "{v}");
    assert_eq!(v["summary"]["exit_code"], 0, "{v}");

    // A statement bounded by a key in its text: the catalog can spare the probe.
    let o = run(
        &config,
        &["--target", "prod", "--json", "DELETE FROM t WHERE id = 42"],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let m = &v["statements"][0]["measured"];
    assert_eq!(m["key_bound_unprobed"], true, "{v}");
    assert!(
        m["what"]
            .as_str()
            .unwrap_or_default()
            .ends_with("; no probe when the target's catalog proves it bounded by a key"),
        "{v}"
    );
    // Not measured: no marker.
    let o = run(&config, &["--target", "prod", "--json", "SELECT 1"], None);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["statements"][0]["measured"].is_null(), "{v}");
    assert_eq!(v["summary"]["measured"], 0, "{v}");
}

/// A rule with `empty = true`: explain cannot count rows, so the verdict is the one
/// for tables with rows, and an `empty:` line says what an empty table would get.
#[test]
fn an_empty_rule_needs_the_live_catalog() {
    let dir = files().dir.join("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        r#"
[defaults]
production = { action = "allow" }

[[rule]]
name = "empty-tables-go"
environment = "production"
classes = ["drop.table", "truncate"]
empty = true
action = "allow"

[[rule]]
name = "drops"
environment = "production"
classes = ["drop.*", "truncate", "alter.drop_column", "delete.unbounded", "update.unbounded"]
action = "hold"
confirm = "approver"
"#,
    )
    .unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!("[policy]\npath = {}\n{}", toml_str(&policy), targets()),
    )
    .unwrap();
    let o = run(
        &config,
        &["--target", "prod", "DROP TABLE t; DROP VIEW v"],
        None,
    );
    let out = stdout(&o);
    assert!(out.contains("verdict: HOLD"), "{out}");
    assert!(
        out.contains(
            "empty:   ALLOW by rule 'empty-tables-go' if every table it destroys is exactly \
             empty (needs the live catalog"
        ),
        "{out}"
    );
    // DROP VIEW is not the empty rule's: no such line.
    assert_eq!(out.matches("empty:").count(), 1, "{out}");
    let o = run(&config, &["--target", "prod", "--json", "TRUNCATE t"], None);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["statements"][0]["action"], "hold", "{v}");
    let empty = v["statements"][0]["empty"].as_str().unwrap_or_default();
    assert!(empty.contains("empty-tables-go"), "{v}");
}
