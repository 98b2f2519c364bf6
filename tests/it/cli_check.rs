//! End-to-end tests of `pgwarden check`: the real binary on real files. A good
//! configuration prints a summary and exits 0; every error exits 1 with
//! `file:line: key: message` on stderr (or the environment variable instead of
//! `file:line`); warnings go to stdout as `warning: …` lines and do not fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_pgwarden");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory per test, under the cargo-provided temporary directory.
fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_check")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn check_with_env(config: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("check")
        .arg("--config")
        .arg(config)
        .env_remove("PGWARDEN_CONFIG")
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("PGWARDEN__") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run pgwarden")
}

fn check(config: &Path) -> Output {
    check_with_env(config, &[])
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out(o),
        err(o)
    );
    out(o)
}

/// Exits 1 with exactly one error line starting `pgwarden: {prefix}`, containing `needle`.
#[track_caller]
fn fails(o: &Output, prefix: &str, needle: &str) {
    let e = err(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{e}",
        out(o)
    );
    assert!(
        e.starts_with(&format!("pgwarden: {prefix}")),
        "stderr does not start with {prefix:?}:\n{e}"
    );
    assert!(e.contains(needle), "stderr lacks {needle:?}:\n{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line:\n{e}");
    assert!(!out(o).contains(": OK"), "{}", out(o));
}

/// A TOML basic string for a path.
fn toml_str(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

// --- the shipped example ---------------------------------------------------------

#[test]
fn example_config_with_the_builtin_policy() {
    let d = dir("example_builtin");
    let cfg = d.join("proxy.toml");
    std::fs::copy(root().join("proxy.toml.example"), &cfg).unwrap();
    let s = ok(&check(&cfg));
    assert!(s.starts_with(&format!("{}: OK\n", cfg.display())), "{s}");
    assert!(s.contains("  listen 127.0.0.1:6432 (tls: disable)"), "{s}");
    assert!(
        s.contains(
            "  target prod -> 127.0.0.1:5432 (environment production, enforce mode, default target)"
        ),
        "{s}"
    );
    assert!(
        s.contains("  policy built-in policy (policy.example.toml): 14 rules, sha256 "),
        "{s}"
    );
    assert!(!s.contains("warning:"), "{s}");
}

#[test]
fn example_config_with_the_example_policy_file() {
    let d = dir("example_file");
    let cfg = d.join("proxy.toml");
    let text = std::fs::read_to_string(root().join("proxy.toml.example")).unwrap();
    let policy = root().join("policy.example.toml");
    // Uncomment the example's [policy] section, pointing at the shipped policy.
    let text = text.replace(
        "# [policy]\n# path = \"policy.example.toml\"",
        &format!("[policy]\npath = {}", toml_str(&policy)),
    );
    assert!(
        text.contains("\n[policy]\n"),
        "the example's [policy] section moved"
    );
    std::fs::write(&cfg, text).unwrap();
    let s = ok(&check(&cfg));
    assert!(
        s.contains(&format!("  policy {}: 14 rules, sha256 ", policy.display())),
        "{s}"
    );
    assert!(!s.contains("warning:"), "{s}");
}

#[test]
fn relative_policy_path_is_relative_to_the_config() {
    let d = dir("relative_policy");
    std::fs::copy(
        root().join("policy.example.toml"),
        d.join("policy.example.toml"),
    )
    .unwrap();
    let cfg = d.join("proxy.toml");
    std::fs::write(
        &cfg,
        "[policy]\npath = \"policy.example.toml\"\n[targets.prod]\nhost = \"db\"\nenvironment = \"production\"\n",
    )
    .unwrap();
    let s = ok(&check(&cfg));
    assert!(s.contains("policy.example.toml: 14 rules"), "{s}");
}

#[test]
fn summary_lists_every_target() {
    let d = dir("targets");
    let cfg = d.join("proxy.toml");
    std::fs::write(
        &cfg,
        r#"
[targets.prod]
host = "db.internal"
port = 5433
environment = "production"
databases = ["app", "billing"]

[targets.staging]
host = "staging.internal"
environment = "staging"
mode = "shadow"
"#,
    )
    .unwrap();
    let s = ok(&check(&cfg));
    assert!(
        s.contains("target prod -> db.internal:5433 (environment production, enforce mode, databases app, billing)"),
        "{s}"
    );
    assert!(
        s.contains("target staging -> staging.internal:5432 (environment staging, shadow mode, default target)"),
        "{s}"
    );
}

#[test]
fn config_from_pgwarden_config_variable() {
    let d = dir("config_env");
    let cfg = d.join("elsewhere.toml");
    std::fs::copy(root().join("proxy.toml.example"), &cfg).unwrap();
    let o = Command::new(BIN)
        .arg("check")
        .current_dir(&d)
        .env("PGWARDEN_CONFIG", &cfg)
        .output()
        .unwrap();
    let s = ok(&o);
    assert!(s.contains("elsewhere.toml: OK"), "{s}");
}

// --- broken configuration: file:line: key: message ---------------------------------

const TARGET: &str = "[targets.prod]\nhost = \"db\"\nenvironment = \"production\"\n";

/// `name: toml => "line: key", "substring of the message";`
macro_rules! bad_config {
    ($($name:ident: $text:expr => $at:expr, $needle:expr;)*) => {$(
        #[test]
        fn $name() {
            let d = dir(stringify!($name));
            let cfg = d.join("proxy.toml");
            std::fs::write(&cfg, $text).unwrap();
            fails(&check(&cfg), &format!("{}:{}: ", cfg.display(), $at), $needle);
        }
    )*};
}

bad_config! {
    cfg_unknown_server_key: format!("[server]\nlisten = \"127.0.0.1:6432\"\nlistne = \"x\"\n{TARGET}")
        => "3: server.listne", "unknown field `listne`";
    cfg_unknown_section: format!("[sever]\nlisten = \"x\"\n{TARGET}") => "1: sever", "unknown field `sever`";
    cfg_unknown_target_key: format!("{TARGET}hots = \"x\"\n") => "4: targets.prod.hots", "unknown field `hots`";
    cfg_unknown_key_in_inline_table: format!("{TARGET}tls = {{ mode = \"require\", sni = \"x\" }}\n")
        => "4: targets.prod.tls.sni", "unknown field `sni`";
    cfg_bad_port: "[targets.prod]\nhost = \"db\"\nport = 70000\nenvironment = \"production\"\n"
        => "3: targets.prod.port", "invalid port 70000 (1-65535)";
    cfg_port_not_a_number: "[targets.prod]\nhost = \"db\"\nport = \"5432x\"\nenvironment = \"production\"\n"
        => "3: targets.prod.port", "invalid type";
    cfg_bad_server_tls_mode: format!("[server]\ntls = {{ mode = \"sometimes\" }}\n{TARGET}")
        => "2: server.tls.mode", "unknown mode \"sometimes\" (expected disable, prefer or require)";
    cfg_server_tls_without_cert: format!("[server]\ntls = {{ mode = \"require\" }}\n{TARGET}")
        => "2: server.tls.cert", "needs a certificate file";
    cfg_bad_target_tls_mode: format!("{TARGET}tls = {{ mode = \"verify\" }}\n")
        => "4: targets.prod.tls.mode", "verify-ca or verify-full";
    cfg_missing_target_host: "[server]\nlisten = \"127.0.0.1:6432\"\n\n[targets.prod]\nenvironment = \"production\"\n"
        => "4: targets.prod.host", "missing field `host`";
    cfg_missing_target_environment: "[targets.prod]\nhost = \"db\"\n"
        => "1: targets.prod.environment", "missing field `environment`";
    cfg_bad_listen: format!("[server]\nlisten = \"6432\"\n{TARGET}") => "2: server.listen", "expected HOST:PORT";
    cfg_bad_duration: format!("[server]\nstartup_timeout = \"soon\"\n{TARGET}") => "2: server.startup_timeout", "soon";
    cfg_bad_size: format!("[server]\nmax_message_size = \"lots\"\n{TARGET}") => "2: server.max_message_size", "lots";
    cfg_bad_target_mode: format!("{TARGET}mode = \"dry-run\"\n") => "4: targets.prod.mode", "expected enforce or shadow";
    cfg_database_routed_twice: format!("{TARGET}databases = [\"app\"]\n[targets.b]\nhost = \"h\"\nenvironment = \"e\"\ndatabases = [\"app\"]\n")
        => "4: targets.prod.databases", "already routed";
    cfg_toml_syntax: format!("[server\n{TARGET}") => "1: server", "invalid table header";
}

#[test]
fn cfg_no_targets() {
    let d = dir("no_targets");
    let cfg = d.join("proxy.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:6432\"\n").unwrap();
    fails(
        &check(&cfg),
        &format!("{}: targets: ", cfg.display()),
        "at least one [targets.NAME]",
    );
}

#[test]
fn cfg_missing_file() {
    let d = dir("missing_file");
    let cfg = d.join("nope.toml");
    fails(&check(&cfg), &format!("{}: ", cfg.display()), "cannot read");
}

#[test]
fn cfg_missing_tls_files() {
    let d = dir("missing_tls");
    let cfg = d.join("proxy.toml");
    std::fs::write(
        &cfg,
        format!("[server]\ntls = {{ mode = \"prefer\", cert = \"server.crt\", key = \"server.key\" }}\n{TARGET}"),
    )
    .unwrap();
    let o = check(&cfg);
    // Relative to the config file's directory.
    fails(
        &o,
        &format!("{}: TLS files: ", cfg.display()),
        &format!("{}", d.join("server.crt").display()),
    );
}

// --- environment overrides ------------------------------------------------------------

fn example_copy(name: &str) -> PathBuf {
    let cfg = dir(name).join("proxy.toml");
    std::fs::copy(root().join("proxy.toml.example"), &cfg).unwrap();
    cfg
}

#[test]
fn env_override_bad_port_names_the_variable() {
    let cfg = example_copy("env_port");
    let o = check_with_env(&cfg, &[("PGWARDEN__TARGETS__PROD__PORT", "70000")]);
    fails(
        &o,
        "PGWARDEN__TARGETS__PROD__PORT: targets.prod.port: ",
        "invalid port 70000",
    );
}

#[test]
fn env_override_wrong_type_names_the_variable() {
    let cfg = example_copy("env_type");
    let o = check_with_env(&cfg, &[("PGWARDEN__SERVER__MAX_CONNECTIONS", "lots")]);
    fails(
        &o,
        "PGWARDEN__SERVER__MAX_CONNECTIONS: server.max_connections: ",
        "invalid type",
    );
}

#[test]
fn env_override_unknown_key_names_the_variable() {
    let cfg = example_copy("env_unknown");
    let o = check_with_env(&cfg, &[("PGWARDEN__SERVER__LISTNE", "0.0.0.0:1")]);
    fails(
        &o,
        "PGWARDEN__SERVER__LISTNE: server.listne: ",
        "unknown field `listne`",
    );
}

#[test]
fn env_override_applies() {
    let cfg = example_copy("env_ok");
    let o = check_with_env(
        &cfg,
        &[
            ("PGWARDEN__TARGETS__PROD__PORT", "5433"),
            ("PGWARDEN__SERVER__LISTEN", "0.0.0.0:7432"),
        ],
    );
    let s = ok(&o);
    assert!(s.contains("listen 0.0.0.0:7432"), "{s}");
    assert!(s.contains("target prod -> 127.0.0.1:5433"), "{s}");
}

// --- the policy file ----------------------------------------------------------------------

/// Writes `policy.toml` and a config naming it; returns (config, policy).
fn with_policy(name: &str, policy: &str, targets: &str) -> (PathBuf, PathBuf) {
    let d = dir(name);
    let p = d.join("policy.toml");
    std::fs::write(&p, policy).unwrap();
    let cfg = d.join("proxy.toml");
    std::fs::write(&cfg, format!("[policy]\npath = \"policy.toml\"\n{targets}")).unwrap();
    (cfg, p)
}

const DEFAULTS: &str = "[defaults]\nproduction = { action = \"allow\", on_unparsed = \"hold\" }\n";

/// `name: policy text => "line: key", "substring";` (the rule starts on line 3)
macro_rules! bad_policy {
    ($($name:ident: $text:expr => $at:expr, $needle:expr;)*) => {$(
        #[test]
        fn $name() {
            let (cfg, p) = with_policy(stringify!($name), &$text, TARGET);
            fails(&check(&cfg), &format!("{}:{}: ", p.display(), $at), $needle);
        }
    )*};
}

fn rule(body: &str) -> String {
    format!("{DEFAULTS}[[rule]]\nname = \"r\"\n{body}\n")
}

bad_policy! {
    pol_unknown_rule_key: rule("action = \"block\"\ncolour = \"red\"") => "6: rule[1].colour", "unknown field `colour`";
    pol_unknown_top_level_key: format!("ruels = []\n{DEFAULTS}") => "1: ruels", "unknown field `ruels`";
    pol_unknown_default_key: "[defaults]\nproduction = { action = \"allow\", on_unparsd = \"hold\" }\n"
        => "2: defaults.production.on_unparsd", "unknown field";
    pol_unknown_class: rule("classes = [\"drop.tabel\"]\naction = \"block\"")
        => "5: rule[1].classes", "'drop.tabel' matches no statement class";
    pol_bad_day: rule("hours = \"Tus 09:00-10:00 UTC\"\naction = \"allow\"")
        => "5: rule[1].hours", "unknown day 'Tus'";
    pol_bad_time: rule("hours = \"Mon 09:00-25:00 UTC\"\naction = \"allow\"")
        => "5: rule[1].hours", "'25:00' is not a time of day";
    pol_bad_zone: rule("hours = \"Mon 09:00-10:00 Mars/Olympus\"\naction = \"allow\"")
        => "5: rule[1].hours", "unknown time zone 'Mars/Olympus'";
    pol_zone_missing: rule("hours = \"Mon 09:00-10:00\"\naction = \"allow\"") => "5: rule[1].hours", "";
    pol_bad_action: rule("action = \"deny\"") => "5: rule[1].action", "unknown action 'deny'";
    pol_bad_confirm: rule("action = \"hold\"\nconfirm = \"boss\"") => "6: rule[1].confirm", "boss";
    pol_bad_timeout: rule("action = \"hold\"\ntimeout = \"2d\"") => "6: rule[1].timeout", "'2d' is not a duration";
    pol_empty_list: rule("users = []\naction = \"block\"") => "5: rule[1].users", "matches nothing";
    pol_bad_cidr: rule("clients = [\"10.0.0.0/33\"]\naction = \"block\"") => "5: rule[1].clients", "10.0.0.0/33";
    pol_rule_without_action: rule("classes = [\"truncate\"]") => "3: rule[1].action", "missing field `action`";
}

#[test]
fn pol_duplicate_rule_names() {
    let text = format!(
        "{DEFAULTS}[[rule]]\nname = \"r\"\naction = \"block\"\nclasses = \"truncate\"\n[[rule]]\nname = \"r\"\naction = \"hold\"\nclasses = \"drop.*\"\n"
    );
    let (cfg, p) = with_policy("pol_duplicate_rule_names", &text, TARGET);
    fails(
        &check(&cfg),
        &format!("{}:8: rule[2].name", p.display()),
        "r",
    );
}

#[test]
fn pol_missing_file_names_it() {
    let d = dir("pol_missing_file");
    let cfg = d.join("proxy.toml");
    std::fs::write(&cfg, format!("[policy]\npath = \"gone.toml\"\n{TARGET}")).unwrap();
    fails(
        &check(&cfg),
        &format!("{}", d.join("gone.toml").display()),
        "cannot read",
    );
}

// --- warnings: exit 0 ------------------------------------------------------------------

#[test]
fn shadowed_rule_is_a_warning() {
    let text = format!(
        "{DEFAULTS}[[rule]]\nname = \"all-drops\"\nclasses = [\"drop.*\", \"truncate\", \"delete.unbounded\", \"update.unbounded\", \"alter.drop_column\"]\naction = \"block\"\n\n[[rule]]\nname = \"table-drops\"\nclasses = [\"drop.table\"]\naction = \"hold\"\n"
    );
    let (cfg, p) = with_policy("shadowed", &text, TARGET);
    let s = ok(&check(&cfg));
    assert!(s.contains(": OK"), "{s}");
    assert!(
        s.contains(&format!(
            "warning: {}:9: rule 'table-drops' is shadowed by rule 'all-drops' (line 4)",
            p.display()
        )),
        "{s}"
    );
    assert_eq!(s.matches("warning:").count(), 1, "{s}");
}

#[test]
fn environment_without_defaults_is_a_warning() {
    let targets = format!(
        "{TARGET}[targets.qa]\nhost = \"qa\"\nenvironment = \"qa\"\ndatabases = [\"qa\"]\n"
    );
    let (cfg, _) = with_policy("no_defaults", DEFAULTS, &targets);
    let s = ok(&check(&cfg));
    assert!(
        s.contains("warning: target qa: the policy has no [defaults] for environment \"qa\"; every statement no rule decides is blocked"),
        "{s}"
    );
    assert!(!s.contains("target prod: the policy"), "{s}");
}

#[test]
fn builtin_policy_warns_about_an_unknown_environment() {
    let d = dir("builtin_unknown_env");
    let cfg = d.join("proxy.toml");
    std::fs::write(
        &cfg,
        "[targets.prod]\nhost = \"db\"\nenvironment = \"prod\"\n",
    )
    .unwrap();
    let s = ok(&check(&cfg));
    assert!(s.contains("warning: target prod:"), "{s}");
}

#[test]
fn forwarding_unparsed_in_production_is_a_warning() {
    let text = "[defaults]\nproduction = { action = \"allow\", on_unparsed = \"allow\" }\n";
    let (cfg, p) = with_policy("unparsed_allow", text, TARGET);
    let s = ok(&check(&cfg));
    assert!(
        s.contains(&format!(
            "warning: {}:2: defaults.production.on_unparsed",
            p.display()
        )),
        "{s}"
    );
}

#[test]
fn confirm_on_a_block_is_a_warning() {
    let (cfg, _) = with_policy(
        "confirm_on_block",
        &rule("action = \"block\"\nconfirm = \"self\""),
        TARGET,
    );
    let s = ok(&check(&cfg));
    assert!(
        s.contains("rule 'r': confirm/timeout have no effect"),
        "{s}"
    );
}
