//! Typed proxy configuration: raw TOML structs (unknown keys rejected), environment
//! overrides (`PGWARDEN__SECTION__KEY`), then one validation pass into `Config`.
//! Every error names the file and line, or the environment variable, and the key.

mod locate;
pub mod notify;
mod raw;
pub mod units;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;
use std::{collections::BTreeMap, fmt};

pub use validate::validate;

/// Prefix of environment overrides: `PGWARDEN__SERVER__LISTEN` sets `server.listen`.
pub const ENV_PREFIX: &str = "PGWARDEN";

/// The validated proxy configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (file path, or a label).
    pub origin: String,
    pub server: ServerConfig,
    pub admin: Option<AdminConfig>,
    /// `[notify]`: webhooks told about holds.
    pub notify: Option<notify::NotifyConfig>,
    pub audit: AuditConfig,
    pub policy_path: Option<PathBuf>,
    pub classifier: ClassifierConfig,
    /// Targets in name order.
    pub targets: Vec<Target>,
    /// The shared control database; None = holds and tokens live in this process.
    pub control: Option<ControlConfig>,
    /// `[trash]`: pgwarden purges a target's expired trash items itself.
    pub trash: Option<TrashConfig>,
}

/// `[trash]`: pgwarden's own connection to one target, with which it purges expired
/// trash items every `purge_interval` and reports the trash's size.
#[derive(Debug, Clone)]
pub struct TrashConfig {
    /// The target (a name in `[targets]`) the credential is for.
    pub target: String,
    /// The connection string as written; it never carries the password.
    pub url: String,
    pub password: Option<PasswordSource>,
    pub tls_mode: UpstreamTlsMode,
    pub tls_ca: Option<PathBuf>,
    pub purge_interval: Duration,
}

/// `[control]`: the PostgreSQL database that several replicas share holds in.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// The connection string as written (libpq key=value or URL form); it never
    /// carries the password.
    pub url: String,
    pub password: Option<PasswordSource>,
    pub tls_mode: UpstreamTlsMode,
    pub tls_ca: Option<PathBuf>,
    /// This replica's name in the control database (default: host name and pid).
    pub replica: Option<String>,
    /// How often a replica looks for decisions it may have missed (NOTIFY is lost
    /// while the connection is down) and refreshes its heartbeat.
    pub poll_interval: Duration,
    /// A replica whose heartbeat is older than this is gone: its holds are withdrawn.
    pub replica_timeout: Duration,
    pub connect_timeout: Duration,
}

/// Where a secret is read from, at each connection (so a rotated one is picked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Env(String),
    File(PathBuf),
}

impl PasswordSource {
    /// Reads the secret; the error names the variable or file, never the value.
    pub fn read(&self) -> Result<String, String> {
        match self {
            PasswordSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("environment variable {var} is not set")),
            },
            PasswordSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("cannot read password file {}: {e}", path.display())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: String,
    pub tls: ClientTls,
    pub max_message_size: usize,
    pub max_connections: usize,
    /// Connections still in startup (not yet authenticated), overall and per
    /// client address; more are refused with 53300 at once.
    pub max_starting: usize,
    pub max_starting_per_client: usize,
    pub startup_timeout: Duration,
    pub tcp_keepalive: Option<Duration>,
    pub shutdown_grace: Duration,
    /// Threads that run sessions; `None` = one per core. 1 runs everything on one
    /// thread, as PgBouncer does.
    pub worker_threads: Option<usize>,
}

/// TLS between clients and pgwarden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientTls {
    Disable,
    /// Offer TLS (certificate and key files); plaintext clients still accepted.
    Prefer {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Refuse clients that do not use TLS.
    Require {
        cert: PathBuf,
        key: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: String,
    /// Approver name → environment variable holding their bearer token.
    pub approvers: BTreeMap<String, String>,
    /// HTTPS for the admin listener: PEM certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditScope {
    All,
    Writes,
    Guarded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Guarded statements are synced to disk before they are forwarded.
    BeforeExecute,
    /// Written without waiting for fsync.
    Buffered,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// None: no audit log. `Some("-")`: stdout.
    pub path: Option<PathBuf>,
    pub statements: AuditScope,
    pub durability: Durability,
    pub redact: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ClassifierConfig {
    /// Replaces the built-in list of dangerous functions when set.
    pub dangerous_functions: Option<Vec<String>>,
    pub cache_size: usize,
}

/// How a target's verdicts are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetMode {
    Enforce,
    /// Everything is forwarded; would-be decisions are only recorded.
    Shadow,
}

/// TLS between pgwarden and a target server, with libpq's sslmode names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub environment: String,
    /// Databases routed here; empty = this is the default target.
    pub databases: Vec<String>,
    pub tls_mode: UpstreamTlsMode,
    pub tls_ca: Option<PathBuf>,
    /// Name checked against the certificate (default: `host`).
    pub tls_server_name: Option<String>,
    pub mode: TargetMode,
    pub connect_timeout: Duration,
}

impl Config {
    /// The target for a database name: the one listing it, else the default target.
    pub fn route(&self, database: &str) -> Option<&Target> {
        self.targets
            .iter()
            .find(|t| t.databases.iter().any(|d| d == database))
            .or_else(|| self.targets.iter().find(|t| t.databases.is_empty()))
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Loads `path`, applies `PGWARDEN__…` environment overrides, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        load_text(&text, &origin, &base, env_overrides())
    }

    /// Parses and validates TOML text without environment overrides; relative paths
    /// resolve against the current directory. `origin` names the text in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        load_text(text, origin, Path::new(""), Vec::new())
    }
}

/// `PGWARDEN__A__B=value` pairs from the process environment, as (["a","b"], value).
pub fn env_overrides() -> Vec<(String, String)> {
    let prefix = format!("{ENV_PREFIX}__");
    std::env::vars()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect()
}

fn load_text(
    text: &str,
    origin: &str,
    base: &Path,
    env: Vec<(String, String)>,
) -> Result<Config, ConfigError> {
    // First pass on the file alone, for exact line numbers on syntax errors, wrong
    // types and unknown keys.
    if let Err(e) = toml::from_str::<raw::RawConfig>(text) {
        return Err(ConfigError {
            origin: origin.to_string(),
            line: e.span().map(|s| locate::line_at(text, s.start)),
            key: crate::policy::toml_key_path(text, &e),
            // One line: `file:line: key: message` stays greppable.
            message: e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml));
    let env_keys: Vec<(String, String)> = env
        .iter()
        .map(|(var, _)| (var.clone(), env_key(var)))
        .collect();
    for (var, value) in &env {
        builder = builder
            .set_override(env_key(var), value.as_str())
            .map_err(|e| ConfigError::env(var, e.to_string()))?;
    }
    let merged = builder.build().map_err(|e| ConfigError {
        origin: origin.to_string(),
        line: None,
        key: None,
        message: e.to_string(),
    })?;
    let raw: raw::RawConfig = merged
        .try_deserialize()
        .map_err(|e| override_error(&e.to_string(), origin, &env_keys))?;
    validate(raw, origin, base).map_err(|mut e| {
        if let Some(key) = &e.key {
            if let Some((var, _)) = env_keys.iter().find(|(_, k)| k == key) {
                e.origin = var.clone();
                e.line = None;
            } else {
                let path: Vec<&str> = key.split('.').collect();
                e.line = locate::line_of(text, &path);
            }
        }
        e
    })
}

/// The file alone deserialised, so an error after merging comes from an override:
/// name the variable whose key the error is about (`… for key `targets.prod.port``).
fn override_error(message: &str, origin: &str, env_keys: &[(String, String)]) -> ConfigError {
    const MARK: &str = " for key `";
    let (text, key) = match message.rfind(MARK) {
        Some(i) => (
            &message[..i],
            Some(message[i + MARK.len()..].trim_end_matches('`')),
        ),
        None => (message, None),
    };
    // `unknown field `bogus`` … for key `server`: the variable sets `server.bogus`.
    let field = text
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next());
    let full = match (key, field) {
        (Some(k), Some(f)) => Some(format!("{k}.{f}")),
        (Some(k), None) => Some(k.to_string()),
        (None, Some(f)) => Some(f.to_string()),
        (None, None) => None,
    };
    let var = full.as_ref().and_then(|full| {
        env_keys.iter().find(|(_, k)| k == full).or_else(|| {
            env_keys
                .iter()
                .find(|(_, k)| full.starts_with(&format!("{k}.")))
        })
    });
    match var {
        Some((var, _)) => ConfigError {
            origin: var.clone(),
            line: None,
            key: full,
            message: text.to_string(),
        },
        None => ConfigError {
            origin: if env_keys.is_empty() {
                origin.to_string()
            } else {
                format!("{origin} (with {ENV_PREFIX}__* overrides)")
            },
            line: None,
            key: full,
            message: text.to_string(),
        },
    }
}

fn env_key(var: &str) -> String {
    var[ENV_PREFIX.len() + 2..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

/// A configuration error: `file:line: key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    fn env(var: &str, message: String) -> Self {
        ConfigError {
            origin: var.to_string(),
            line: None,
            key: None,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests;
