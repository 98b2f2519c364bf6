//! One validation pass: raw structs → `Config`, with every error naming its key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawConfig, RawControl, RawCount, RawSize, RawTarget, RawTargetTls, RawTrash};
use super::*;

type R<T> = Result<T, ConfigError>;

pub(super) struct Ctx<'a> {
    origin: &'a str,
    base: &'a Path,
}

impl Ctx<'_> {
    pub(super) fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.origin.to_string(),
            line: None,
            key: Some(key.into()),
            message: message.into(),
        }
    }

    pub(super) fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() || p == Path::new("-") {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    pub(super) fn duration(&self, key: &str, v: Option<&String>, default: Duration) -> R<Duration> {
        match v {
            None => Ok(default),
            Some(t) => units::duration(t).map_err(|m| self.err(key, m)),
        }
    }

    fn listen(&self, key: &str, v: &str) -> R<String> {
        match v.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(v.to_string())
            }
            _ => Err(self.err(
                key,
                format!(
                    "invalid listen address {v:?} (expected HOST:PORT, e.g. \"127.0.0.1:6432\")"
                ),
            )),
        }
    }
}

/// Validates raw configuration; `base` is the directory relative paths start from.
pub fn validate(raw: RawConfig, origin: &str, base: &Path) -> Result<Config, ConfigError> {
    let cx = Ctx { origin, base };
    let s = raw.server;
    let listen = cx.listen(
        "server.listen",
        s.listen.as_deref().unwrap_or("127.0.0.1:6432"),
    )?;
    let tls = match s.tls {
        None => ClientTls::Disable,
        Some(t) => {
            let files = |cx: &Ctx| -> R<(PathBuf, PathBuf)> {
                let cert = t.cert.as_deref().ok_or_else(|| {
                    cx.err(
                        "server.tls.cert",
                        format!("tls mode {:?} needs a certificate file", t.mode),
                    )
                })?;
                let key = t.key.as_deref().ok_or_else(|| {
                    cx.err(
                        "server.tls.key",
                        format!("tls mode {:?} needs a key file", t.mode),
                    )
                })?;
                Ok((cx.path(cert), cx.path(key)))
            };
            match t.mode.as_str() {
                "disable" => ClientTls::Disable,
                "prefer" => {
                    let (cert, key) = files(&cx)?;
                    ClientTls::Prefer { cert, key }
                }
                "require" => {
                    let (cert, key) = files(&cx)?;
                    ClientTls::Require { cert, key }
                }
                other => {
                    return Err(cx.err(
                        "server.tls.mode",
                        format!("unknown mode {other:?} (expected disable, prefer or require)"),
                    ))
                }
            }
        }
    };
    let max_message_size = match s.max_message_size {
        None => crate::protocol::DEFAULT_MAX_MESSAGE_SIZE as u64,
        Some(RawSize::Bytes(n)) => n,
        Some(RawSize::Text(t)) => {
            units::size(&t).map_err(|m| cx.err("server.max_message_size", m))?
        }
    };
    if !(1024..=(1u64 << 30)).contains(&max_message_size) {
        return Err(cx.err(
            "server.max_message_size",
            "must be between 1kB and 1GB (PostgreSQL's own limit)",
        ));
    }
    let max_connections = s.max_connections.unwrap_or(1000);
    if max_connections == 0 || max_connections > 1_000_000 {
        return Err(cx.err("server.max_connections", "must be between 1 and 1000000"));
    }
    let max_starting = s.max_starting.unwrap_or(max_connections.min(256));
    if max_starting == 0 || max_starting > max_connections {
        return Err(cx.err(
            "server.max_starting",
            "must be between 1 and server.max_connections",
        ));
    }
    let max_starting_per_client = s.max_starting_per_client.unwrap_or(max_starting.min(128));
    if max_starting_per_client == 0 || max_starting_per_client > max_starting {
        return Err(cx.err(
            "server.max_starting_per_client",
            "must be between 1 and server.max_starting",
        ));
    }
    let tcp_keepalive = match s.tcp_keepalive.as_deref() {
        Some("off") => None,
        v => Some(cx.duration(
            "server.tcp_keepalive",
            v.map(|s| s.to_string()).as_ref(),
            Duration::from_secs(60),
        )?),
    };
    let worker_threads = match &s.worker_threads {
        None => Some(1),
        Some(RawCount::Text(t)) if t.trim().eq_ignore_ascii_case("auto") => None,
        Some(c) => {
            let n = match c {
                RawCount::Number(n) => Some(*n),
                RawCount::Text(t) => t.trim().parse::<u64>().ok(),
            };
            match n {
                Some(n @ 1..=1024) => Some(n as usize),
                _ => {
                    return Err(cx.err(
                        "server.worker_threads",
                        "must be \"auto\" (one per core) or a number from 1 to 1024",
                    ))
                }
            }
        }
    };
    let server = ServerConfig {
        listen,
        tls,
        max_message_size: max_message_size as usize,
        max_connections: max_connections as usize,
        max_starting: max_starting as usize,
        max_starting_per_client: max_starting_per_client as usize,
        startup_timeout: cx.duration(
            "server.startup_timeout",
            s.startup_timeout.as_ref(),
            Duration::from_secs(15),
        )?,
        tcp_keepalive,
        shutdown_grace: cx.duration(
            "server.shutdown_grace",
            s.shutdown_grace.as_ref(),
            Duration::from_secs(30),
        )?,
        worker_threads,
    };

    let admin = match raw.admin {
        None => None,
        Some(a) => {
            let listen = cx.listen("admin.listen", &a.listen)?;
            let mut approvers = BTreeMap::new();
            for (name, ap) in a.approvers {
                if ap.token_env.is_empty() {
                    return Err(cx.err(
                        format!("admin.approvers.{name}.token_env"),
                        "must name an environment variable",
                    ));
                }
                approvers.insert(name, ap.token_env);
            }
            let tls = a.tls.map(|t| (cx.path(&t.cert), cx.path(&t.key)));
            Some(AdminConfig {
                listen,
                approvers,
                tls,
            })
        }
    };

    let a = raw.audit;
    let audit = AuditConfig {
        path: a.path.as_deref().map(|p| cx.path(p)),
        statements: match a.statements.as_deref().unwrap_or("guarded") {
            "all" => AuditScope::All,
            "writes" => AuditScope::Writes,
            "guarded" => AuditScope::Guarded,
            other => {
                return Err(cx.err(
                    "audit.statements",
                    format!("unknown scope {other:?} (expected all, writes or guarded)"),
                ))
            }
        },
        durability: match a.durability.as_deref().unwrap_or("before-execute") {
            "before-execute" => Durability::BeforeExecute,
            "buffered" => Durability::Buffered,
            other => {
                return Err(cx.err(
                    "audit.durability",
                    format!("unknown durability {other:?} (expected before-execute or buffered)"),
                ))
            }
        },
        redact: a.redact.unwrap_or(false),
    };

    let classifier = ClassifierConfig {
        dangerous_functions: raw.classifier.dangerous_functions,
        cache_size: raw.classifier.cache_size.unwrap_or(10_000) as usize,
    };

    let mut targets = Vec::new();
    for (name, t) in raw.targets {
        targets.push(target(&cx, name, t)?);
    }
    if targets.is_empty() {
        return Err(cx.err("targets", "at least one [targets.NAME] section is required"));
    }
    let defaults: Vec<&str> = targets
        .iter()
        .filter(|t| t.databases.is_empty())
        .map(|t| t.name.as_str())
        .collect();
    if defaults.len() > 1 {
        return Err(cx.err(
            format!("targets.{}", defaults[1]),
            format!(
                "more than one default target ({}): give all but one a `databases` list",
                defaults.join(", ")
            ),
        ));
    }
    for (i, t) in targets.iter().enumerate() {
        for d in &t.databases {
            if let Some(other) = targets[..i].iter().find(|o| o.databases.contains(d)) {
                return Err(cx.err(
                    format!("targets.{}.databases", t.name),
                    format!(
                        "database {d:?} is already routed to target {:?}",
                        other.name
                    ),
                ));
            }
        }
    }

    let control = match raw.control {
        None => None,
        Some(c) => Some(control(&cx, c)?),
    };
    let notify = super::notify::validate(&cx, raw.notify, admin.as_ref())?;
    let trash = match raw.trash {
        None => None,
        Some(t) => Some(trash(&cx, t, &targets)?),
    };

    Ok(Config {
        origin: origin.to_string(),
        control,
        trash,
        server,
        admin,
        notify,
        audit,
        policy_path: raw.policy.map(|p| cx.path(&p.path)),
        classifier,
        targets,
    })
}

fn target(cx: &Ctx, name: String, t: RawTarget) -> R<Target> {
    let key = |k: &str| format!("targets.{name}.{k}");
    if t.host.trim().is_empty() {
        return Err(cx.err(key("host"), "must not be empty"));
    }
    let port = t.port.unwrap_or(5432);
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| cx.err(key("port"), format!("invalid port {port} (1-65535)")))?;
    if t.environment.trim().is_empty() {
        return Err(cx.err(key("environment"), "must not be empty"));
    }
    let (tls_mode, tls_ca, tls_server_name) = upstream_tls(cx, &key("tls"), t.tls)?;
    let mode = match t.mode.as_deref().unwrap_or("enforce") {
        "enforce" => TargetMode::Enforce,
        "shadow" => TargetMode::Shadow,
        other => {
            return Err(cx.err(
                key("mode"),
                format!("unknown mode {other:?} (expected enforce or shadow)"),
            ))
        }
    };
    Ok(Target {
        connect_timeout: cx.duration(
            &key("connect_timeout"),
            t.connect_timeout.as_ref(),
            Duration::from_secs(10),
        )?,
        name,
        host: t.host,
        port,
        environment: t.environment,
        databases: t.databases.unwrap_or_default(),
        tls_mode,
        tls_ca,
        tls_server_name,
        mode,
    })
}

/// `tls = { mode, ca, server_name }` of a connection pgwarden makes (targets, the
/// control database), with libpq's sslmode names.
fn upstream_tls(
    cx: &Ctx,
    key: &str,
    tls: Option<RawTargetTls>,
) -> R<(UpstreamTlsMode, Option<PathBuf>, Option<String>)> {
    let Some(tls) = tls else {
        return Ok((UpstreamTlsMode::Disable, None, None));
    };
    let mode = match tls.mode.as_str() {
        "disable" => UpstreamTlsMode::Disable,
        "prefer" => UpstreamTlsMode::Prefer,
        "require" => UpstreamTlsMode::Require,
        "verify-ca" => UpstreamTlsMode::VerifyCa,
        "verify-full" => UpstreamTlsMode::VerifyFull,
        other => {
            return Err(cx.err(
                format!("{key}.mode"),
                format!("unknown mode {other:?} (expected disable, prefer, require, verify-ca or verify-full)"),
            ))
        }
    };
    let verifies = matches!(
        mode,
        UpstreamTlsMode::VerifyCa | UpstreamTlsMode::VerifyFull
    );
    if verifies && tls.ca.is_none() {
        return Err(cx.err(
            format!("{key}.ca"),
            format!("tls mode {:?} needs a CA file", tls.mode),
        ));
    }
    Ok((mode, tls.ca.as_deref().map(|p| cx.path(p)), tls.server_name))
}

/// A connection of pgwarden's own (`section.url`, `password_env` or
/// `password_file`, `tls`): the url names a host and a user and carries no password.
fn credential(
    cx: &Ctx,
    section: &str,
    url: &str,
    password_env: Option<String>,
    password_file: Option<String>,
    tls: Option<RawTargetTls>,
) -> R<(Option<PasswordSource>, UpstreamTlsMode, Option<PathBuf>)> {
    let key = |k: &str| format!("{section}.{k}");
    let parsed: tokio_postgres::Config = url.parse().map_err(|_| {
        // The parser's message may quote the string; it is not echoed.
        cx.err(
            key("url"),
            "invalid connection string (expected \"host=H port=P user=U dbname=D\" or postgresql://U@H:P/D)",
        )
    })?;
    if parsed.get_password().is_some() {
        return Err(cx.err(
            key("url"),
            format!("must not contain a password: use {section}.password_env or {section}.password_file"),
        ));
    }
    if parsed.get_hosts().is_empty() {
        return Err(cx.err(key("url"), "must name a host"));
    }
    if parsed.get_user().is_none() {
        return Err(cx.err(key("url"), "must name a user"));
    }
    let password = match (password_env, password_file) {
        (Some(_), Some(_)) => {
            return Err(cx.err(
                key("password_env"),
                "set either password_env or password_file, not both",
            ))
        }
        (Some(v), None) if v.is_empty() => {
            return Err(cx.err(key("password_env"), "must name an environment variable"))
        }
        (Some(v), None) => Some(PasswordSource::Env(v)),
        (None, Some(f)) => Some(PasswordSource::File(cx.path(&f))),
        (None, None) => None,
    };
    let (tls_mode, tls_ca, tls_server_name) = upstream_tls(cx, &key("tls"), tls)?;
    if tls_server_name.is_some() {
        return Err(cx.err(
            key("tls.server_name"),
            format!(
                "not supported here: the certificate is checked against the host in {section}.url"
            ),
        ));
    }
    Ok((password, tls_mode, tls_ca))
}

fn trash(cx: &Ctx, t: RawTrash, targets: &[Target]) -> R<TrashConfig> {
    if !targets.iter().any(|x| x.name == t.target) {
        return Err(cx.err("trash.target", format!("no target named {:?}", t.target)));
    }
    let (password, tls_mode, tls_ca) =
        credential(cx, "trash", &t.url, t.password_env, t.password_file, t.tls)?;
    let purge_interval = cx.duration(
        "trash.purge_interval",
        t.purge_interval.as_ref(),
        Duration::from_secs(3600),
    )?;
    if purge_interval.is_zero() {
        return Err(cx.err("trash.purge_interval", "must be more than zero"));
    }
    Ok(TrashConfig {
        target: t.target,
        url: t.url,
        password,
        tls_mode,
        tls_ca,
        purge_interval,
    })
}

fn control(cx: &Ctx, c: RawControl) -> R<ControlConfig> {
    let (password, tls_mode, tls_ca) = credential(
        cx,
        "control",
        &c.url,
        c.password_env,
        c.password_file,
        c.tls,
    )?;
    if let Some(r) = &c.replica {
        if r.is_empty() || r.len() > 63 || r.chars().any(|ch| ch.is_control()) {
            return Err(cx.err("control.replica", "must be 1 to 63 printable characters"));
        }
    }
    let poll_interval = cx.duration(
        "control.poll_interval",
        c.poll_interval.as_ref(),
        Duration::from_secs(1),
    )?;
    let replica_timeout = cx.duration(
        "control.replica_timeout",
        c.replica_timeout.as_ref(),
        Duration::from_secs(10),
    )?;
    if poll_interval.is_zero() || replica_timeout < poll_interval * 3 {
        return Err(cx.err(
            "control.replica_timeout",
            "must be at least three poll intervals (a live replica refreshes its heartbeat every poll)",
        ));
    }
    Ok(ControlConfig {
        url: c.url,
        password,
        tls_mode,
        tls_ca,
        replica: c.replica,
        poll_interval,
        replica_timeout,
        connect_timeout: cx.duration(
            "control.connect_timeout",
            c.connect_timeout.as_ref(),
            Duration::from_secs(5),
        )?,
    })
}
