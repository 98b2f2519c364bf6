//! Table-driven tests of configuration loading: each bad file names line and key.

use super::*;

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:6432"
max_message_size = "64MB"
startup_timeout = "5s"

[targets.prod]
host = "db.internal"
port = 5432
environment = "production"
databases = ["app"]
tls = { mode = "verify-full", ca = "/etc/ca.crt" }

[targets.dev]
host = "127.0.0.1"
environment = "development"
mode = "shadow"
"#;

#[test]
fn a_good_file_validates_and_routes() {
    let c = Config::from_toml_str(GOOD, "proxy.toml").unwrap();
    assert_eq!(c.server.max_message_size, 64 << 20);
    assert_eq!(c.route("app").unwrap().name, "prod");
    assert_eq!(c.route("other").unwrap().name, "dev");
    assert_eq!(c.target("dev").unwrap().mode, TargetMode::Shadow);
    assert_eq!(c.target("dev").unwrap().port, 5432);
    assert_eq!(
        c.target("prod").unwrap().tls_mode,
        UpstreamTlsMode::VerifyFull
    );
}

#[test]
fn no_default_target_means_no_route() {
    let text = "[targets.a]\nhost = \"h\"\nenvironment = \"e\"\ndatabases = [\"x\"]\n";
    let c = Config::from_toml_str(text, "p.toml").unwrap();
    assert!(c.route("y").is_none());
}

macro_rules! bad_config {
    ($($name:ident: $text:expr => $line:expr, $needle:expr;)*) => {$(
        #[test]
        fn $name() {
            let e = Config::from_toml_str($text, "p.toml").unwrap_err();
            let shown = e.to_string();
            assert_eq!(e.line, $line, "{shown}");
            assert!(shown.contains($needle), "{shown:?} lacks {:?}", $needle);
            assert!(shown.starts_with("p.toml"), "{shown}");
        }
    )*};
}

const T: &str = "[targets.a]\nhost = \"h\"\nenvironment = \"e\"\n";

bad_config! {
    unknown_top_level_key: "[serverr]\nlisten = \"x:1\"\n" => Some(1), "unknown field `serverr`";
    unknown_server_key: &format!("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 2\n{T}") => Some(3), ": server.listne: unknown field `listne`";
    unknown_target_key: "[targets.a]\nhost = \"h\"\nenvironment = \"e\"\nprot = 1\n" => Some(4), ": targets.a.prot: unknown field `prot`";
    wrong_type: "[targets.a]\nhost = 5\nenvironment = \"e\"\n" => Some(2), ": targets.a.host: invalid type";
    syntax_error: "[server\nlisten = 1\n" => Some(1), "";
    missing_host: "[targets.a]\nenvironment = \"e\"\n" => Some(1), ": targets.a.host: missing field `host`";
    bad_listen: &format!("[server]\nlisten = \"nowhere\"\n{T}") => Some(2), "server.listen";
    bad_port: "[targets.a]\nhost = \"h\"\nport = 70000\nenvironment = \"e\"\n" => Some(3), "targets.a.port";
    bad_tls_mode: &format!("[server]\ntls = {{ mode = \"maybe\" }}\n{T}") => Some(2), "server.tls.mode";
    tls_without_cert: &format!("[server]\ntls = {{ mode = \"require\", key = \"k\" }}\n{T}") => Some(2), "server.tls.cert";
    upstream_verify_without_ca: "[targets.a]\nhost = \"h\"\nenvironment = \"e\"\ntls = { mode = \"verify-full\" }\n" => Some(4), "targets.a.tls.ca";
    bad_duration: &format!("[server]\nstartup_timeout = \"soon\"\n{T}") => Some(2), "server.startup_timeout";
    bad_size: &format!("[server]\nmax_message_size = \"lots\"\n{T}") => Some(2), "server.max_message_size";
    tiny_size: &format!("[server]\nmax_message_size = 10\n{T}") => Some(2), "between 1kB and 1GB";
    no_targets: "[server]\nlisten = \"127.0.0.1:1\"\n" => None, "at least one";
    two_defaults: "[targets.a]\nhost = \"h\"\nenvironment = \"e\"\n[targets.b]\nhost = \"h\"\nenvironment = \"e\"\n" => Some(4), "more than one default target";
    database_routed_twice: "[targets.a]\nhost = \"h\"\nenvironment = \"e\"\ndatabases = [\"x\"]\n[targets.b]\nhost = \"h\"\nenvironment = \"e\"\ndatabases = [\"x\"]\n" => Some(8), "already routed";
    bad_target_mode: "[targets.a]\nhost = \"h\"\nenvironment = \"e\"\nmode = \"loud\"\n" => Some(4), "targets.a.mode";
    bad_audit_scope: &format!("[audit]\nstatements = \"some\"\n{T}") => Some(2), "audit.statements";
    zero_workers: &format!("[server]\nworker_threads = 0\n{T}") => Some(2), "server.worker_threads";
    word_workers: &format!("[server]\nworker_threads = \"many\"\n{T}") => Some(2), "\"auto\" (one per core) or a number";
    control_password_in_url: &format!("{T}[control]\nurl = \"host=h user=u password=hunter2 dbname=d\"\n") => Some(5), "control.url: must not contain a password";
    control_password_in_uri: &format!("{T}[control]\nurl = \"postgresql://u:hunter2@h/d\"\n") => Some(5), "must not contain a password";
    control_bad_url: &format!("{T}[control]\nurl = \"host='unterminated\"\n") => Some(5), "control.url: invalid connection string";
    control_no_user: &format!("{T}[control]\nurl = \"host=h dbname=d\"\n") => Some(5), "must name a user";
    control_two_passwords: &format!("{T}[control]\nurl = \"host=h user=u\"\npassword_env = \"X\"\npassword_file = \"f\"\n") => Some(6), "not both";
    control_verify_without_ca: &format!("{T}[control]\nurl = \"host=h user=u\"\ntls = {{ mode = \"verify-full\" }}\n") => Some(6), "control.tls.ca";
    control_server_name: &format!("{T}[control]\nurl = \"host=h user=u\"\ntls = {{ mode = \"require\", server_name = \"x\" }}\n") => Some(6), "control.tls.server_name";
    control_timeout_too_short: &format!("{T}[control]\nurl = \"host=h user=u\"\npoll_interval = \"1s\"\nreplica_timeout = \"2s\"\n") => Some(7), "three poll intervals";
    control_unknown_key: &format!("{T}[control]\nurl = \"host=h user=u\"\npasword_env = \"X\"\n") => Some(6), "unknown field `pasword_env`";
    trash_unknown_target: &format!("{T}[trash]\ntarget = \"zz\"\nurl = \"host=h user=u\"\n") => Some(5), "trash.target: no target named \"zz\"";
    trash_password_in_url: &format!("{T}[trash]\ntarget = \"a\"\nurl = \"host=h user=u password=x\"\n") => Some(6), "trash.url: must not contain a password: use trash.password_env";
    trash_zero_interval: &format!("{T}[trash]\ntarget = \"a\"\nurl = \"host=h user=u\"\npurge_interval = \"0s\"\n") => Some(7), "trash.purge_interval";
}

#[test]
fn a_trash_section_names_a_target_and_defaults_to_hourly_purges() {
    let text = format!(
        "{T}[trash]\ntarget = \"a\"\nurl = \"host=h user=pgwarden_trash dbname=app\"\n\
         password_env = \"TRASH_PW\"\n"
    );
    let t = Config::from_toml_str(&text, "p.toml")
        .unwrap()
        .trash
        .expect("trash section");
    assert_eq!(t.target, "a");
    assert_eq!(t.password, Some(PasswordSource::Env("TRASH_PW".into())));
    assert_eq!(t.purge_interval, std::time::Duration::from_secs(3600));
}

#[test]
fn a_control_section_validates_without_echoing_secrets() {
    let text = format!(
        "{T}[control]\nurl = \"postgresql://pgwarden@control.internal:5433/pgwarden\"\n\
         password_file = \"secrets/control\"\ntls = {{ mode = \"verify-full\", ca = \"ca.crt\" }}\n\
         replica = \"gw-a\"\n"
    );
    let c = load_text(
        &text,
        "p.toml",
        std::path::Path::new("/etc/pgwarden"),
        vec![],
    )
    .unwrap()
    .control
    .expect("control section");
    assert_eq!(
        c.password,
        Some(PasswordSource::File("/etc/pgwarden/secrets/control".into()))
    );
    assert_eq!(c.tls_mode, UpstreamTlsMode::VerifyFull);
    assert_eq!(c.replica.as_deref(), Some("gw-a"));
    assert_eq!(c.poll_interval, std::time::Duration::from_secs(1));
    assert_eq!(c.replica_timeout, std::time::Duration::from_secs(10));
    assert!(Config::from_toml_str(T, "p.toml")
        .unwrap()
        .control
        .is_none());
    let e = Config::from_toml_str(
        &format!("{T}[control]\nurl = \"host=h user=u password=hunter2\"\n"),
        "p.toml",
    )
    .unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn environment_overrides_apply_and_are_named_in_errors() {
    let ok = load_text(
        T,
        "p.toml",
        std::path::Path::new(""),
        vec![("PGWARDEN__TARGETS__A__PORT".into(), "6543".into())],
    )
    .unwrap();
    assert_eq!(ok.targets[0].port, 6543);
    let e = load_text(
        T,
        "p.toml",
        std::path::Path::new(""),
        vec![("PGWARDEN__TARGETS__A__PORT".into(), "0".into())],
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("PGWARDEN__TARGETS__A__PORT"),
        "{e}"
    );
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let text = format!("[policy]\npath = \"policy.toml\"\n{T}");
    let c = load_text(&text, "x", std::path::Path::new("/etc/pgwarden"), vec![]).unwrap();
    assert_eq!(
        c.policy_path.as_deref(),
        Some(std::path::Path::new("/etc/pgwarden/policy.toml"))
    );
}

#[test]
fn worker_threads_default_to_one_and_accept_auto_or_a_number() {
    let threads = |extra: &str| {
        Config::from_toml_str(&format!("{extra}{T}"), "p.toml")
            .unwrap()
            .server
            .worker_threads
    };
    assert_eq!(threads(""), Some(1));
    assert_eq!(threads("[server]\nworker_threads = \"auto\"\n"), None);
    assert_eq!(threads("[server]\nworker_threads = \"AUTO\"\n"), None);
    assert_eq!(threads("[server]\nworker_threads = 4\n"), Some(4));
    // Environment overrides arrive as text.
    let c = load_text(
        T,
        "p.toml",
        std::path::Path::new(""),
        vec![("PGWARDEN__SERVER__WORKER_THREADS".into(), "2".into())],
    )
    .unwrap();
    assert_eq!(c.server.worker_threads, Some(2));
}

#[test]
fn control_passwords_come_from_a_variable_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "s3cret\n").unwrap();
    assert_eq!(PasswordSource::File(file).read(), Ok("s3cret".into()));
    let missing = PasswordSource::Env("PGWARDEN_TEST_SURELY_UNSET_VARIABLE".into());
    assert_eq!(
        missing.read(),
        Err("environment variable PGWARDEN_TEST_SURELY_UNSET_VARIABLE is not set".into())
    );
    let gone = PasswordSource::File(dir.path().join("nope"))
        .read()
        .unwrap_err();
    assert!(gone.contains("cannot read password file"), "{gone}");
}
