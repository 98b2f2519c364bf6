//! `pgwarden explain` (pure part) on the example policy: verdicts, rendering, exit codes.

use std::sync::OnceLock;

use pgwarden::classify::{Class, Statement};
use pgwarden::config::units::format_duration;
use pgwarden::explain::{exit_code, explain, render_json, render_text, Mode, Report, RunsOn, Who};
use pgwarden::policy::{Action, Policy};

fn example() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml");
        Policy::load(&path).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn st(sql: &str, classes: &[&str], objects: &[&str]) -> Statement {
    Statement {
        sql: sql.to_string(),
        classes: classes
            .iter()
            .map(|c| Class::from_name(c).unwrap())
            .collect(),
        objects: objects.iter().map(|o| o.to_string()).collect(),
        fingerprint: String::new(),
        prepares: None,
        executes: None,
        deallocates: None,
        asks: Vec::new(),
    }
}

fn read() -> Statement {
    st("SELECT * FROM users", &["read"], &["users"])
}
fn drop_table() -> Statement {
    st(
        "DROP TABLE public.users",
        &["drop.table"],
        &["public.users"],
    )
}
fn unbounded() -> Statement {
    st("DELETE FROM orders", &["delete.unbounded"], &["orders"])
}
fn alter_type() -> Statement {
    st(
        "ALTER TABLE t ALTER COLUMN c TYPE bigint",
        &["alter.column_type"],
        &["t"],
    )
}
fn audit_only() -> Statement {
    st("CREATE INDEX i ON t (c)", &["create.other"], &["t"])
}

fn run(env: &str, mode: Mode, stmts: &[Statement]) -> Report {
    let target = RunsOn {
        name: "prod",
        environment: env,
        mode,
    };
    let who = Who {
        user: "alice",
        application: "psql",
        database: "app",
        client_addr: None,
        now: "2025-06-11T10:00:00Z".parse().unwrap(),
    };
    explain(example(), &target, &who, stmts)
}

macro_rules! exit_codes {
    ($($name:ident: $env:expr, $mode:ident, [$($s:expr),*] => $code:expr;)*) => {$(
        #[test]
        fn $name() {
            let r = run($env, Mode::$mode, &[$($s),*]);
            assert_eq!(exit_code(&r), $code, "{}", render_text(&r));
            assert_eq!(render_json(&r)["summary"]["exit_code"], $code);
        }
    )*};
}

exit_codes! {
    exit_empty_input: "production", Enforce, [] => 0;
    exit_reads_only: "production", Enforce, [read(), read()] => 0;
    exit_audit_is_zero: "production", Enforce, [audit_only()] => 0;
    exit_self_hold: "production", Enforce, [read(), alter_type()] => 2;
    exit_approver_hold: "production", Enforce, [drop_table()] => 2;
    exit_block: "production", Enforce, [unbounded()] => 3;
    exit_block_beats_hold: "production", Enforce, [drop_table(), unbounded(), read()] => 3;
    exit_shadow_same_as_enforce_hold: "production", Shadow, [drop_table()] => 2;
    exit_shadow_same_as_enforce_block: "production", Shadow, [unbounded()] => 3;
    exit_staging_permissive: "staging", Enforce, [drop_table(), unbounded()] => 0;
    exit_unparsed_held: "production", Enforce, [st("SELEC 1", &["unparsed"], &[])] => 2;
    exit_unknown_environment_blocks: "qa", Enforce, [read()] => 3;
}

#[test]
fn report_entries_carry_verdicts() {
    let r = run(
        "production",
        Mode::Enforce,
        &[read(), drop_table(), unbounded()],
    );
    assert_eq!(r.entries.len(), 3);
    let e = &r.entries[1];
    assert_eq!(e.index, 2);
    assert_eq!(e.sql, "DROP TABLE public.users");
    assert_eq!(e.classes, vec!["drop.table"]);
    assert_eq!(e.objects, vec!["public.users"]);
    assert_eq!(e.action, Action::Hold);
    assert_eq!(e.rule.as_deref(), Some("drops-go-to-the-trash"));
    assert!(e.trash.as_ref().is_some_and(|t| t.covered), "{e:?}");
    assert_eq!(r.entries[0].trash, None);
    assert_eq!(e.timeout, Some(std::time::Duration::from_secs(600)));
    assert_eq!(r.entries[0].rule, None);
    assert_eq!(r.entries[0].confirm, None);
    assert_eq!(r.entries[2].action, Action::Block);
    assert_eq!(r.overall(), Action::Block);
    assert_eq!(r.policy_sha256, example().sha256());
}

#[test]
fn text_report_shows_each_statement() {
    let r = run(
        "production",
        Mode::Enforce,
        &[read(), drop_table(), unbounded()],
    );
    let t = render_text(&r);
    for want in [
        "target prod (environment production, enforce mode) · user alice · application psql · database app",
        "[1] SELECT * FROM users",
        "    verdict: ALLOW by the production default",
        "[2] DROP TABLE public.users",
        "    classes: drop.table",
        "    objects: public.users",
        "    verdict: TRASH, fallback HOLD (confirm: approver, timeout 10m) by rule 'drops-go-to-the-trash'",
        "    trash:   moved to the trash, restorable with `pgwarden trash restore ID` for 168h;",
        "    verdict: BLOCK by rule 'no-unbounded-writes'",
        "    message: This statement would change every row. Add a WHERE clause.",
        "3 statements: 1 allow, 0 audit, 1 hold, 1 block → block (exit 3)",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
}

#[test]
fn text_report_shadow_mode_says_would() {
    let r = run("production", Mode::Shadow, &[drop_table(), read()]);
    let t = render_text(&r);
    assert!(t.contains("shadow mode"), "{t}");
    assert!(
        t.contains("verdict: would TRASH, fallback HOLD (confirm: approver"),
        "{t}"
    );
    assert!(
        t.contains("verdict: ALLOW by the production default"),
        "{t}"
    );
}

#[test]
fn text_report_flattens_and_truncates_sql() {
    let long = format!("SELECT\n\t1,   {}", "x, ".repeat(100));
    let r = run("production", Mode::Enforce, &[st(&long, &["read"], &[])]);
    let t = render_text(&r);
    let line = t.lines().find(|l| l.starts_with("[1] ")).unwrap();
    assert!(line.starts_with("[1] SELECT 1, x, x,"), "{line}");
    assert!(line.ends_with('…'), "{line}");
    assert_eq!(line.chars().count(), 4 + 120);
}

#[test]
fn json_report_shape() {
    let r = run("production", Mode::Shadow, &[read(), alter_type()]);
    let j = render_json(&r);
    assert_eq!(j["target"]["name"], "prod");
    assert_eq!(j["target"]["environment"], "production");
    assert_eq!(j["target"]["mode"], "shadow");
    assert_eq!(j["user"], "alice");
    assert_eq!(j["policy"]["sha256"], example().sha256());
    let s = &j["statements"];
    assert_eq!(s.as_array().map(Vec::len), Some(2));
    assert_eq!(s[0]["action"], "allow");
    assert_eq!(s[0]["rule"], serde_json::Value::Null);
    assert_eq!(s[0]["confirm"], serde_json::Value::Null);
    assert_eq!(s[1]["sql"], "ALTER TABLE t ALTER COLUMN c TYPE bigint");
    assert_eq!(s[1]["classes"][0], "alter.column_type");
    assert_eq!(s[1]["objects"][0], "t");
    assert_eq!(s[1]["action"], "hold");
    assert_eq!(s[1]["rule"], "schema-changes-confirm");
    assert_eq!(s[1]["confirm"], "self");
    assert_eq!(s[1]["timeout_secs"], 300);
    assert_eq!(j["summary"]["action"], "hold");
    assert_eq!(j["summary"]["hold"], 1);
    assert_eq!(j["summary"]["allow"], 1);
}

#[test]
fn execute_resolves_earlier_prepare() {
    let mut prep = st(
        "PREPARE d AS DELETE FROM orders",
        &["delete.unbounded"],
        &["orders"],
    );
    prep.prepares = Some("d".to_string());
    let mut exec = st("EXECUTE d", &["read"], &[]);
    exec.executes = Some("d".to_string());
    let r = run("production", Mode::Enforce, &[prep, exec.clone()]);
    assert_eq!(r.entries[1].action, Action::Block);
    assert_eq!(r.entries[1].resolved_from, Some(1));
    assert_eq!(r.entries[1].classes, vec!["delete.unbounded"]);
    assert!(render_text(&r).contains("runs:    the statement prepared at [1]"));

    // After DEALLOCATE the name no longer resolves.
    let mut prep = st(
        "PREPARE d AS DELETE FROM orders",
        &["delete.unbounded"],
        &["orders"],
    );
    prep.prepares = Some("d".to_string());
    let mut dealloc = st("DEALLOCATE ALL", &["session"], &[]);
    dealloc.deallocates = Some("*".to_string());
    let r = run("production", Mode::Enforce, &[prep, dealloc, exec]);
    assert_eq!(r.entries[2].resolved_from, None);
    assert_eq!(r.entries[2].action, Action::Allow);
}

#[test]
fn durations_format_compactly() {
    use std::time::Duration;
    assert_eq!(format_duration(Duration::from_secs(600)), "10m");
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format_duration(Duration::from_secs(45)), "45s");
    assert_eq!(format_duration(Duration::from_secs(3601)), "1h1s");
    assert_eq!(format_duration(Duration::ZERO), "0s");
}
