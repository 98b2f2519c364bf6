//! `pgwarden demo`: a throwaway PostgreSQL with sample data, pgwarden in front of it
//! with the example production policy, an approver token and an audit file, and
//! printed instructions for seeing an allow, a block, a self-confirmation and an
//! approval. Ctrl-C (or SIGTERM, SIGHUP, or stdin closing with `--non-interactive`)
//! stops everything and removes the cluster; a drop guard does so on error paths too.

pub mod guide;
mod install;
mod postgres;

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::app;
use crate::config::Config;
use crate::shared;

/// Command-line options of `pgwarden demo`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DemoOptions {
    /// For scripts and tests: use ephemeral ports, print the connection details as one
    /// JSON line last, and stop when stdin closes (or on SIGTERM/SIGINT).
    #[arg(long)]
    pub non_interactive: bool,
    /// Directory holding initdb, pg_ctl and postgres (default: PATH, then the usual
    /// package locations).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "{0}.\n\
         The demo needs a local PostgreSQL installation (any supported version). Install it with\n\
         \x20 Debian/Ubuntu:  sudo apt-get install postgresql   (run on a terminal, the demo offers to)\n\
         \x20 Fedora/RHEL:    sudo dnf install postgresql-server\n\
         \x20 macOS:          brew install postgresql@17\n\
         then run the demo again, or point it at the binaries with --pg-bin DIR."
    )]
    NoPostgres(String),
    #[error(
        "running as root, but there is no `postgres` system user to run PostgreSQL as \
         (PostgreSQL refuses to run as root). Installing PostgreSQL from your OS packages \
         creates it; or run the demo as an ordinary user."
    )]
    RootWithoutPostgresUser,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} failed:\n{output}")]
    Postgres { what: String, output: String },
    #[error("the demo configuration is invalid (a bug): {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("the demo policy is invalid (a bug): {0}")]
    Policy(#[from] crate::policy::PolicyError),
    #[error("starting pgwarden: {0}")]
    Start(#[from] app::StartError),
}

impl DemoError {
    fn io(what: String, source: std::io::Error) -> DemoError {
        DemoError::Io { what, source }
    }
}

/// `n` random bytes as lowercase hex.
fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)
}

/// Runs the demo until it is told to stop. Blocking: creates its own runtime (after
/// setting the approver's token variable, while the process has one thread).
pub fn run(opts: &DemoOptions) -> Result<(), DemoError> {
    let install = match postgres::find_install(opts.pg_bin.as_deref()) {
        Err(DemoError::NoPostgres(_))
            if opts.pg_bin.is_none()
                && !opts.non_interactive
                && install::offer(postgres::is_root()) =>
        {
            postgres::find_install(None)?
        }
        found => found?,
    };
    let owner = postgres::server_owner()?;
    let have_psql = postgres::find_psql(&install).is_some();
    let password = random_hex(8);
    let token = random_hex(16);

    say(&format!(
        "Starting a throwaway PostgreSQL ({}) …",
        install.version
    ));
    let mut cluster = postgres::DemoCluster::create(install, owner, &guide::setup_sql(&password))?;

    // The proxy's files sit next to the cluster and go away with it.
    let dir = cluster.dir().to_path_buf();
    let policy = dir.join("policy.toml");
    let config_path = dir.join("proxy.toml");
    let audit = dir.join("audit.jsonl");
    write_file(&policy, shared::BUILTIN_POLICY)?;
    // Ephemeral ports for scripts; the familiar ones when free for people.
    let (listen, admin_port) = if opts.non_interactive {
        ("127.0.0.1:0".to_string(), postgres::free_port()?)
    } else {
        (
            preferred_listen(6432),
            port_if_free(9187).map_or_else(postgres::free_port, Ok)?,
        )
    };
    let text = guide::proxy_toml(&listen, admin_port, cluster.port(), &policy, &audit);
    write_file(&config_path, &text)?;
    let config = Config::from_toml_str(&text, &config_path.display().to_string())?;
    shared::load_policy(&config)?;

    // The admin API reads approver tokens from the environment.
    std::env::set_var(guide::APPROVER_TOKEN_ENV, &token);

    let rt = tokio::runtime::Runtime::new()
        .map_err(|e| DemoError::io("starting the runtime".into(), e))?;
    let result = rt.block_on(async {
        let proxy = match app::start(config.clone()).await {
            Ok(p) => p,
            // Someone took 6432 between the check and the bind: any port will do.
            Err(app::StartError::Bind { .. }) if listen != "127.0.0.1:0" => {
                let mut c = config.clone();
                c.server.listen = "127.0.0.1:0".into();
                app::start(c).await?
            }
            Err(e) => return Err(DemoError::from(e)),
        };
        let exe = exe_for_display();
        let admin_served = proxy.admin_addr().is_some();
        let endpoints = guide::Endpoints {
            dir: &dir,
            config: &config_path,
            policy: &policy,
            audit: &audit,
            pg_version: cluster.version(),
            pg_port: cluster.port(),
            proxy_port: proxy.addr().port(),
            admin_port: proxy.admin_addr().map_or(admin_port, |a| a.port()),
            admin_served,
            password: &password,
            token: &token,
            exe: &exe,
            have_psql,
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(guide::instructions(&endpoints).as_bytes());
        if opts.non_interactive {
            let _ = writeln!(out, "{}", guide::ready_json(&endpoints));
        }
        let _ = out.flush();
        drop(out);

        wait_for_stop(opts.non_interactive).await;
        say("Stopping pgwarden and PostgreSQL …");
        proxy.shutdown().await;
        Ok(())
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    cluster.remove();
    if result.is_ok() {
        say(&format!("Removed {}.", dir.display()));
    }
    result
}

/// Progress for a person: stderr, so stdout stays instructions (and the JSON line).
fn say(text: &str) {
    eprintln!("pgwarden demo: {text}");
}

fn write_file(path: &Path, text: &str) -> Result<(), DemoError> {
    std::fs::write(path, text).map_err(|e| DemoError::io(format!("writing {}", path.display()), e))
}

fn port_if_free(port: u16) -> Option<u16> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .ok()
        .map(|_| port)
}

fn preferred_listen(port: u16) -> String {
    match port_if_free(port) {
        Some(p) => format!("127.0.0.1:{p}"),
        None => "127.0.0.1:0".into(),
    }
}

/// How the user can run this binary again: `pgwarden` when PATH finds this very
/// file, else its path (relative to the current directory when inside it).
fn exe_for_display() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "pgwarden".into();
    };
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p).any(|d| {
                d.join("pgwarden").canonicalize().ok() == exe.canonicalize().ok()
                    && d.join("pgwarden").is_file()
            })
        })
        .unwrap_or(false);
    if on_path {
        return "pgwarden".into();
    }
    match std::env::current_dir() {
        Ok(cwd) => exe
            .strip_prefix(&cwd)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| exe.display().to_string()),
        Err(_) => exe.display().to_string(),
    }
}

/// Ctrl-C, SIGTERM or SIGHUP (terminal closed); with `non_interactive`, also stdin
/// reaching end of file.
async fn wait_for_stop(non_interactive: bool) {
    use tokio::signal::unix::{signal, SignalKind};
    let stdin_closed = async {
        if !non_interactive {
            return std::future::pending::<()>().await;
        }
        // A plain thread: a blocked stdin read must not keep the runtime alive.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    let (term, hup) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    );
    let term = async {
        match term {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    let hup = async {
        match hup {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
        _ = hup => {}
        _ = stdin_closed => {}
    }
}
