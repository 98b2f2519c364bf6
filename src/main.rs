//! The `pgwarden` command line: parses arguments, calls the library, sets exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use pgwarden::config::{Config, TargetMode};
use pgwarden::{app, classify, explain, shared};

#[derive(Parser)]
#[command(name = "pgwarden", version, about = "A guarded PostgreSQL proxy")]
struct Cli {
    /// Log format: human-readable text or JSON lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        #[arg(long, env = "PGWARDEN_CONFIG", default_value = "proxy.toml")]
        config: PathBuf,
    },
    /// Validate the configuration and policy, and print a summary.
    Check {
        #[arg(long, env = "PGWARDEN_CONFIG", default_value = "proxy.toml")]
        config: PathBuf,
    },
    /// Classify statements and show what the policy would do, without connecting.
    /// Exit 0: all allowed; 2: something would be held; 3: something blocked.
    Explain {
        #[arg(long, env = "PGWARDEN_CONFIG", default_value = "proxy.toml")]
        config: PathBuf,
        /// The target whose environment and rules apply.
        #[arg(long)]
        target: String,
        #[arg(long, default_value = "postgres")]
        user: String,
        #[arg(long, default_value = "")]
        application: String,
        /// Database name (default: the target's first listed database, or the user).
        #[arg(long)]
        database: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Read SQL from this file ("-" for stdin).
        #[arg(long, conflicts_with = "sql")]
        file: Option<PathBuf>,
        /// Also write the plan (fingerprints, classes, verdicts) to this file, for
        /// `pgwarden plans approve`.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// SQL text (may start with a `--` comment).
        #[arg(allow_hyphen_values = true)]
        sql: Option<String>,
    },
    /// Start a throwaway PostgreSQL with sample data and pgwarden in front of it,
    /// and print what to type to see a block, a hold and a confirmation.
    Demo(pgwarden::demo::DemoOptions),
    /// List, approve or deny held statements on a running proxy's admin API.
    Holds {
        /// The admin API's base URL.
        #[arg(
            long,
            global = true,
            env = "PGWARDEN_ADMIN",
            default_value = "http://127.0.0.1:9187"
        )]
        admin: String,
        /// A private CA (PEM) to trust for an https:// admin URL, besides the
        /// built-in Mozilla roots.
        #[arg(long, global = true, env = "PGWARDEN_ADMIN_CA")]
        ca: Option<PathBuf>,
        /// Your approver bearer token.
        #[arg(long, global = true, env = "PGWARDEN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(subcommand)]
        command: HoldsCommand,
    },
    /// Approve plans ahead (from `pgwarden explain --plan`) on a running proxy.
    Plans {
        /// The admin API's base URL.
        #[arg(
            long,
            global = true,
            env = "PGWARDEN_ADMIN",
            default_value = "http://127.0.0.1:9187"
        )]
        admin: String,
        /// A private CA (PEM) to trust for an https:// admin URL, besides the
        /// built-in Mozilla roots.
        #[arg(long, global = true, env = "PGWARDEN_ADMIN_CA")]
        ca: Option<PathBuf>,
        /// Your approver bearer token.
        #[arg(long, global = true, env = "PGWARDEN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(subcommand)]
        command: PlansCommand,
    },
    /// Tables kept in a target's trash instead of dropped: list, restore, purge.
    /// Talks to the target directly (not through the proxy).
    Trash {
        /// Connection string of the target database (libpq key=value or URL form,
        /// without the password).
        #[arg(long, global = true, env = "PGWARDEN_TRASH_URL")]
        url: Option<String>,
        /// Read the password from this environment variable.
        #[arg(long, global = true, conflicts_with = "password_file")]
        password_env: Option<String>,
        /// Read the password from this file.
        #[arg(long, global = true)]
        password_file: Option<PathBuf>,
        /// TLS to the target: disable, prefer, require, verify-ca, verify-full.
        #[arg(long, global = true, default_value = "prefer")]
        tls: String,
        /// CA certificate (PEM) for verify-ca and verify-full.
        #[arg(long, global = true)]
        tls_ca: Option<PathBuf>,
        /// Append a `restore`/`purge` record to this audit log (a file of its own,
        /// not the one a running proxy writes). Restore and purge need it or
        /// --no-audit.
        #[arg(long, global = true, env = "PGWARDEN_TRASH_AUDIT")]
        audit: Option<PathBuf>,
        /// Restore or purge without an audit record.
        #[arg(long, global = true, conflicts_with = "audit")]
        no_audit: bool,
        /// The approver named in the audit record (default: the account running
        /// the command; the account, host and database role are recorded anyway).
        #[arg(long, global = true)]
        as_approver: Option<String>,
        /// The target's name in the audit record (default: the database's name).
        #[arg(long, global = true)]
        target: Option<String>,
        #[command(subcommand)]
        command: TrashCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum PlansCommand {
    /// Approve the plan in FILE: its statements that would be held run without
    /// waiting, each as often as the plan has it, within the window.
    Approve {
        file: PathBuf,
        /// How long from now it can be used.
        #[arg(long, default_value = "1h")]
        window: String,
        /// Database user it is for (default: the plan's; "*": any).
        #[arg(long)]
        user: Option<String>,
        /// application_name it is for (default: the plan's; "*": any).
        #[arg(long)]
        application: Option<String>,
    },
    /// Approved plans whose window has not ended.
    List,
    /// End approved plan ID's window now: its statements are decided by the policy
    /// as usual again.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum TrashCommand {
    /// Trashed items, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Put item ID back under its name (or NAME), with the foreign keys and views
    /// removed alongside.
    Restore {
        id: i64,
        #[arg(long = "as")]
        as_name: Option<String>,
    },
    /// Really drop item ID, or every item whose retention has passed.
    Purge {
        #[arg(required_unless_present = "expired", conflicts_with = "expired")]
        id: Option<i64>,
        #[arg(long)]
        expired: bool,
    },
}

struct TrashConnection {
    url: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    tls: String,
    tls_ca: Option<PathBuf>,
    audit: Option<PathBuf>,
    no_audit: bool,
    as_approver: Option<String>,
    target: Option<String>,
}

/// Where `pgwarden trash restore/purge` records what it did, and who did it.
struct TrashAudit {
    log: pgwarden::audit::AuditLog,
    approver: String,
    actor: pgwarden::audit::CliActor,
    target: Option<String>,
}

impl TrashAudit {
    /// Opens the log before anything changes on the target, so a log that cannot
    /// be written stops the command first.
    fn open(conn: &TrashConnection) -> anyhow::Result<Option<TrashAudit>> {
        use pgwarden::audit::{AuditLog, CliActor, FileSink};
        let Some(path) = &conn.audit else {
            if conn.no_audit {
                return Ok(None);
            }
            bail!("restore and purge write an audit record: give --audit FILE (or PGWARDEN_TRASH_AUDIT), or --no-audit");
        };
        let (os_user, os_uid) = pgwarden::trash::who::os_account().map_err(anyhow::Error::msg)?;
        // Exclusive: a file a running proxy writes is refused (its writer holds the lock).
        let log = AuditLog::with_sink(
            Box::new(FileSink::exclusive(path)),
            &path.display().to_string(),
        )?;
        Ok(Some(TrashAudit {
            log,
            approver: conn.as_approver.clone().unwrap_or_else(|| os_user.clone()),
            actor: CliActor {
                os_user,
                os_uid,
                host: pgwarden::trash::who::host(),
                db_user: String::new(),
            },
            target: conn.target.clone(),
        }))
    }

    /// Fills in what only the target can say: the role logged in, its name.
    async fn bind(&mut self, c: &tokio_postgres::Client) -> anyhow::Result<()> {
        let row = c
            .query_one("SELECT session_user::text, current_database()::text", &[])
            .await
            .context("asking the target who we are")?;
        self.actor.db_user = row.get(0);
        if self.target.is_none() {
            self.target = Some(row.get(1));
        }
        Ok(())
    }

    async fn record(&self, event: pgwarden::audit::Event) -> anyhow::Result<()> {
        self.log
            .record_durable(event)
            .await
            .map(|_| ())
            .context("the change was made, but its audit record could not be written")
    }
}

fn trash(conn: TrashConnection, command: TrashCommand) -> anyhow::Result<ExitCode> {
    use pgwarden::audit::{Event, PurgeEvent, RestoreEvent};
    use pgwarden::config::{PasswordSource, UpstreamTlsMode};
    use pgwarden::trash::{connect, run};
    let Some(url) = conn.url.clone() else {
        bail!("give the target's connection string with --url or PGWARDEN_TRASH_URL");
    };
    let password = match (conn.password_env.clone(), conn.password_file.clone()) {
        (Some(v), _) => Some(PasswordSource::Env(v)),
        (None, Some(f)) => Some(PasswordSource::File(f)),
        (None, None) => None,
    };
    let tls_mode = match conn.tls.as_str() {
        "disable" => UpstreamTlsMode::Disable,
        "prefer" => UpstreamTlsMode::Prefer,
        "require" => UpstreamTlsMode::Require,
        "verify-ca" => UpstreamTlsMode::VerifyCa,
        "verify-full" => UpstreamTlsMode::VerifyFull,
        other => bail!("--tls {other:?}: use disable, prefer, require, verify-ca or verify-full"),
    };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async {
        let mut audit = match command {
            TrashCommand::List { .. } => None,
            _ => TrashAudit::open(&conn)?,
        };
        let c = connect::connect(&url, password.as_ref(), tls_mode, conn.tls_ca.as_deref())
            .await
            .map_err(|e| anyhow::anyhow!("connecting to the target: {e}"))?;
        if let Some(a) = audit.as_mut() {
            a.bind(&c).await?;
        }
        let audit = audit.as_ref();
        let target = || audit.and_then(|a| a.target.clone()).unwrap_or_default();
        match command {
            TrashCommand::List { json } => {
                let items = run::list(&c).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&items)?);
                } else {
                    print!("{}", connect::format_list(&items));
                }
            }
            TrashCommand::Restore { id, as_name } => {
                let item = run::restore(&c, id, as_name.as_deref()).await?;
                let name = match (&item.original_schema, &as_name) {
                    (Some(s), Some(n)) => format!("{s}.{n}"),
                    (None, Some(n)) => n.clone(),
                    _ => item.original(),
                };
                println!("restored trash item {id} as {name}");
                if let Some(a) = audit {
                    a.record(Event::Restore(RestoreEvent {
                        target: target(),
                        item: id,
                        original: item.original(),
                        restored_as: name,
                        approver: a.approver.clone(),
                        cli: Some(Box::new(a.actor.clone())),
                    }))
                    .await?;
                }
            }
            TrashCommand::Purge { id, .. } => {
                let (items, reason) = match id {
                    Some(id) => (vec![run::purge(&c, id).await?], "requested"),
                    None => (run::purge_expired(&c).await?, "expired"),
                };
                match id {
                    Some(id) => println!("purged trash item {id} ({})", items[0].original()),
                    None => println!("purged {} expired trash item(s)", items.len()),
                }
                for (a, item) in audit.iter().flat_map(|a| items.iter().map(move |i| (a, i))) {
                    a.record(Event::Purge(PurgeEvent {
                        target: target(),
                        item: item.id,
                        original: item.original(),
                        size_bytes: item.size_bytes,
                        reason: reason.to_string(),
                        approver: Some(a.approver.clone()),
                        cli: Some(Box::new(a.actor.clone())),
                    }))
                    .await?;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Subcommand)]
enum HoldsCommand {
    /// Pending holds, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Recently decided holds, newest first (with [control]: of every replica).
    Recent {
        #[arg(long)]
        json: bool,
    },
    /// Approve hold ID: the statement runs and its client gets the result.
    Approve { id: u64 },
    /// Hold ID, pending or decided: who decided, and why it ended.
    Show { id: u64 },
    /// Deny hold ID: its client gets PW004.
    Deny {
        id: u64,
        #[arg(long)]
        reason: Option<String>,
    },
}

/// One admin API call of `pgwarden holds` / `pgwarden plans`: the answer when it is
/// 200, else an error with the API's own message.
fn admin_call(
    rt: &tokio::runtime::Runtime,
    admin: &str,
    ca: Option<&Path>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<pgwarden::admin::client::HttpResponse> {
    let resp = rt.block_on(pgwarden::admin::client::request_with_ca(
        admin, ca, method, path, token, body,
    ))?;
    if resp.status != 200 {
        let msg = serde_json::from_str::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or(resp.body);
        bail!("admin API answered {}: {}", resp.status, msg.trim());
    }
    Ok(resp)
}

fn plans(
    admin: &str,
    ca: Option<&Path>,
    token: Option<&str>,
    command: PlansCommand,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let (method, path, body) = match &command {
        PlansCommand::List => ("GET", "/plans".to_string(), None),
        PlansCommand::Revoke { id } => ("POST", format!("/plans/{id}/revoke"), None),
        PlansCommand::Approve {
            file,
            window,
            user,
            application,
        } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let plan: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a plan file", file.display()))?;
            let body = serde_json::json!({
                "plan": plan,
                "window": window,
                "user": user,
                "application": application,
            });
            ("POST", "/plans".to_string(), Some(body.to_string()))
        }
    };
    let resp = admin_call(&rt, admin, ca, method, &path, token, body.as_deref())?;
    match command {
        PlansCommand::List => println!("{}", resp.body),
        PlansCommand::Revoke { id } => println!("revoked plan {id}"),
        PlansCommand::Approve { .. } => {
            let v: serde_json::Value = serde_json::from_str(&resp.body).unwrap_or_default();
            println!(
                "approved plan {} ({} statements)",
                v["id"].as_str().unwrap_or("?"),
                v["statements"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn holds(
    admin: &str,
    ca: Option<&Path>,
    token: Option<&str>,
    command: HoldsCommand,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let (method, path, body) = match &command {
        HoldsCommand::List { .. } => ("GET", "/holds".to_string(), None),
        HoldsCommand::Recent { .. } => ("GET", "/holds/recent".to_string(), None),
        HoldsCommand::Approve { id } => ("POST", format!("/holds/{id}/approve"), None),
        HoldsCommand::Show { id } => ("GET", format!("/holds/{id}"), None),
        HoldsCommand::Deny { id, reason } => (
            "POST",
            format!("/holds/{id}/deny"),
            Some(serde_json::json!({ "reason": reason }).to_string()),
        ),
    };
    let resp = admin_call(&rt, admin, ca, method, &path, token, body.as_deref())?;
    match command {
        HoldsCommand::List { json: true } => println!("{}", resp.body),
        HoldsCommand::List { json: false } => {
            let holds: Vec<serde_json::Value> =
                serde_json::from_str(&resp.body).context("reading the hold list")?;
            if holds.is_empty() {
                println!("no pending holds");
            }
            for h in holds {
                let s = |k: &str| {
                    h.get(k)
                        .map(|v| v.to_string().trim_matches('"').to_string())
                        .unwrap_or_default()
                };
                println!(
                    "#{} user {} target {} database {} age {}s rule {}\n    {}",
                    s("id"),
                    s("user"),
                    s("target"),
                    s("database"),
                    s("age_seconds"),
                    s("rule"),
                    s("sql")
                );
                // What pgwarden measured, or what a DROP/TRUNCATE would destroy.
                for (key, label) in [("impact", "impact"), ("blast", "blast radius")] {
                    if let Some(v) = h.get(key).and_then(|v| v.as_str()) {
                        println!("    {label}: {v}");
                    }
                }
            }
        }
        HoldsCommand::Recent { json: true } => println!("{}", resp.body),
        HoldsCommand::Recent { json: false } => {
            let events: Vec<serde_json::Value> =
                serde_json::from_str(&resp.body).context("reading the decided holds")?;
            if events.is_empty() {
                println!("no decided holds");
            }
            for e in events {
                let h = &e["hold"];
                let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                let mut line = format!("#{} {}", h["id"], s(&e["kind"]));
                if let Some(a) = e["approver"].as_str() {
                    line.push_str(&format!(" by {a}"));
                }
                if let Some(at) = e["at"]
                    .as_i64()
                    .and_then(|t| jiff::Timestamp::from_second(t).ok())
                {
                    line.push_str(&format!(" at {at}"));
                }
                line.push_str(&format!(
                    " user {} target {}",
                    s(&h["user"]),
                    s(&h["target"])
                ));
                if let Some(r) = e["reason"].as_str() {
                    line.push_str(&format!(" reason {r:?}"));
                }
                println!("{line}\n    {}", s(&h["sql"]));
            }
        }
        HoldsCommand::Approve { id } => println!("approved hold #{id}"),
        HoldsCommand::Show { .. } => println!("{}", resp.body),
        HoldsCommand::Deny { id, .. } => println!("denied hold #{id}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain and report the first broken line (exit 1).
    /// Several files (oldest first, e.g. rotated ones) are checked as one chain.
    Verify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pgwarden: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config } => {
            let cfg = Config::load(&config)?;
            let rt = app::runtime(&cfg).context("starting the runtime")?;
            rt.block_on(app::serve(cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => check(&config),
        Command::Holds {
            admin,
            ca,
            token,
            command,
        } => holds(&admin, ca.as_deref(), token.as_deref(), command),
        Command::Plans {
            admin,
            ca,
            token,
            command,
        } => plans(&admin, ca.as_deref(), token.as_deref(), command),
        Command::Trash {
            url,
            password_env,
            password_file,
            tls,
            tls_ca,
            audit,
            no_audit,
            as_approver,
            target,
            command,
        } => trash(
            TrashConnection {
                url,
                password_env,
                password_file,
                tls,
                tls_ca,
                audit,
                no_audit,
                as_approver,
                target,
            },
            command,
        ),
        Command::Demo(opts) => {
            pgwarden::demo::run(&opts)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command: AuditCommand::Verify { files },
        } => audit_verify(&files),
        Command::Explain {
            config,
            target,
            user,
            application,
            database,
            json,
            file,
            sql,
            plan,
        } => {
            let cfg = Config::load(&config)?;
            let policy = shared::load_policy(&cfg)?;
            let Some(t) = cfg.target(&target) else {
                let names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
                bail!(
                    "no target {target:?} in {} (targets: {})",
                    config.display(),
                    names.join(", ")
                );
            };
            let text = match (file, sql) {
                (Some(f), _) if f.as_os_str() == "-" => {
                    std::io::read_to_string(std::io::stdin()).context("reading stdin")?
                }
                (Some(f), _) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?,
                (None, Some(s)) => s,
                (None, None) => bail!("give SQL text or --file FILE"),
            };
            let database = database
                .or_else(|| t.databases.first().cloned())
                .unwrap_or_else(|| user.clone());
            let statements = classify::classify(&text, &classify::SessionFacts::default());
            let report = explain::explain(
                &policy,
                &explain::RunsOn {
                    name: &t.name,
                    environment: &t.environment,
                    mode: match t.mode {
                        TargetMode::Enforce => explain::Mode::Enforce,
                        TargetMode::Shadow => explain::Mode::Shadow,
                    },
                },
                &explain::Who {
                    user: &user,
                    application: &application,
                    database: &database,
                    client_addr: None,
                    now: jiff::Timestamp::now(),
                },
                &statements,
            );
            if let Some(path) = plan {
                let p = explain::plan(&report, &statements);
                let mut text = serde_json::to_string_pretty(&p)?;
                text.push('\n');
                std::fs::write(&path, text)
                    .with_context(|| format!("writing the plan to {}", path.display()))?;
            }
            if json {
                let mut text = serde_json::to_string_pretty(&explain::render_json(&report))?;
                text.push('\n');
                emit(&text)?;
            } else {
                emit(&explain::render_text(&report))?;
            }
            Ok(ExitCode::from(explain::exit_code(&report) as u8))
        }
    }
}

fn check(config: &std::path::Path) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    shared::tls_material(&cfg).with_context(|| format!("{}: TLS files", config.display()))?;
    let policy = shared::load_policy(&cfg)?;
    let mut warnings: Vec<String> = policy.warnings().to_vec();
    for t in &cfg.targets {
        if !policy.has_defaults_for(&t.environment) {
            warnings.push(format!(
                "target {}: the policy has no [defaults] for environment {:?}; every statement no rule decides is blocked",
                t.name, t.environment
            ));
        }
    }
    use std::fmt::Write as _;
    let mut out = String::new();
    macro_rules! out {
        ($($t:tt)*) => {
            let _ = writeln!(out, $($t)*);
        };
    }
    out!("{}: OK", config.display());
    out!("  listen {} (tls: {})", cfg.server.listen, tls_name(&cfg));
    for t in &cfg.targets {
        let routes = if t.databases.is_empty() {
            "default target".to_string()
        } else {
            format!("databases {}", t.databases.join(", "))
        };
        let mode = match t.mode {
            TargetMode::Enforce => "enforce",
            TargetMode::Shadow => "shadow",
        };
        out!(
            "  target {} -> {}:{} (environment {}, {mode} mode, {})",
            t.name,
            t.host,
            t.port,
            t.environment,
            routes
        );
    }
    out!(
        "  policy {}: {} rules, sha256 {}",
        policy.origin(),
        policy.rule_count(),
        &policy.sha256()[..12.min(policy.sha256().len())]
    );
    for w in &warnings {
        out!("warning: {w}");
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout; a closed pipe (`pgwarden explain … | head`) is not an error,
/// so the exit code still reports the verdict.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

fn audit_verify(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    use pgwarden::audit::{verify_files, VerifyError};
    match verify_files(files) {
        Ok(r) => {
            println!("OK: {} records, last hash {}", r.records, r.last_hash);
            if let (Some(prev), Some(first)) = (&r.continues_from, r.first_seq) {
                println!("note: starts mid-chain at seq {first} (prev {prev}): a rotated file, or its head was removed");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ VerifyError::Broken { .. }) => {
            println!("{e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn tls_name(cfg: &Config) -> &'static str {
    match cfg.server.tls {
        pgwarden::config::ClientTls::Disable => "disable",
        pgwarden::config::ClientTls::Prefer { .. } => "prefer",
        pgwarden::config::ClientTls::Require { .. } => "require",
    }
}
