//! The `pgwarden` command line: parses arguments, calls the library, sets exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use pgwarden::config::Config;

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
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            rt.block_on(pgwarden::app::serve(cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => {
            let cfg = Config::load(&config)?;
            pgwarden::app::shared(std::sync::Arc::new(cfg.clone()))?;
            println!("{}: OK", config.display());
            println!("  listen {} (tls: {:?})", cfg.server.listen, tls_name(&cfg));
            for t in &cfg.targets {
                let routes = if t.databases.is_empty() {
                    "default target".to_string()
                } else {
                    format!("databases {}", t.databases.join(", "))
                };
                println!(
                    "  target {} -> {}:{} ({}, {:?}, {})",
                    t.name, t.host, t.port, t.environment, t.mode, routes
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn tls_name(cfg: &Config) -> &'static str {
    match cfg.server.tls {
        pgwarden::config::ClientTls::Disable => "disable",
        pgwarden::config::ClientTls::Prefer { .. } => "prefer",
        pgwarden::config::ClientTls::Require { .. } => "require",
    }
}
