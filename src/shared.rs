//! What every session shares ([`Shared`]: configuration, TLS material, classifier,
//! the policy in force, holds, tokens, audit, metrics), how it is built, and how
//! the policy in force is loaded, swapped and reloaded (SIGHUP, file watch, admin API).
//! `app` wires it to listeners; `session`, `admin` and `notify` only use it.

use std::collections::HashMap;
use std::sync::Arc;

use tracing::{info, warn};

use crate::config::{ClientTls, Config};
use crate::session::CancelRegistry;

/// Why the shared state could not be built (the proxy does not start).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Policy(#[from] crate::policy::PolicyError),
    #[error("{0}")]
    Audit(#[from] crate::audit::AuditError),
}

/// What every session shares: configuration, TLS material, the cancel registry,
/// the classifier, the policy in force, holds and confirmation tokens.
pub struct Shared {
    pub config: Arc<Config>,
    pub client_tls: Option<tokio_rustls::TlsAcceptor>,
    pub tls_required: bool,
    pub upstream_tls: HashMap<String, Option<Arc<rustls::ClientConfig>>>,
    pub cancels: Arc<CancelRegistry>,
    pub classifier: crate::classify::Classifier,
    pub policy: std::sync::RwLock<Arc<crate::policy::Policy>>,
    /// Bumped by every policy swap: a session can tell without taking the lock
    /// that the policy it judged a statement under is still in force.
    pub policy_generation: std::sync::atomic::AtomicU64,
    pub holds: crate::hold::HoldQueue,
    pub tokens: crate::hold::Tokens,
    pub next_session: std::sync::atomic::AtomicU64,
    pub audit: crate::audit::AuditLog,
    pub metrics: crate::metrics::Metrics,
}

impl Shared {
    /// The policy in force; a reload swaps it, sessions see it on their next statement.
    pub fn policy(&self) -> Arc<crate::policy::Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn set_policy(&self, p: crate::policy::Policy) {
        let mut slot = self.policy.write().unwrap_or_else(|e| e.into_inner());
        *slot = Arc::new(p);
        // Under the write lock: whoever reads the new generation finds the new policy.
        self.policy_generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    pub fn policy_generation(&self) -> u64 {
        self.policy_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }
}

/// TLS material of the listener and of every target, loaded and checked.
pub type TlsMaterial = (
    Option<Arc<rustls::ServerConfig>>,
    bool,
    HashMap<String, Option<Arc<rustls::ClientConfig>>>,
);

/// Loads (and so checks) every certificate and key the configuration names.
pub fn tls_material(config: &Config) -> Result<TlsMaterial, crate::tls::TlsError> {
    let (client_tls, tls_required) = match &config.server.tls {
        ClientTls::Disable => (None, false),
        ClientTls::Prefer { cert, key } => (Some(crate::tls::server_config(cert, key)?), false),
        ClientTls::Require { cert, key } => (Some(crate::tls::server_config(cert, key)?), true),
    };
    let mut upstream_tls = HashMap::new();
    for t in &config.targets {
        upstream_tls.insert(
            t.name.clone(),
            crate::tls::upstream_config(t.tls_mode, t.tls_ca.as_deref())?,
        );
    }
    Ok((client_tls, tls_required, upstream_tls))
}

/// The built-in policy used when `[policy]` is not configured: the example
/// production policy (guards `production`, lets other environments through).
pub const BUILTIN_POLICY: &str = include_str!("../policy.example.toml");

/// Loads the configured policy file, or the built-in one.
pub fn load_policy(config: &Config) -> Result<crate::policy::Policy, crate::policy::PolicyError> {
    match &config.policy_path {
        Some(p) => crate::policy::Policy::load(p),
        None => {
            crate::policy::Policy::parse(BUILTIN_POLICY, "built-in policy (policy.example.toml)")
        }
    }
}

/// Builds what sessions share: TLS configurations, the policy, the audit log and
/// the hold store are loaded (and so checked) here.
pub fn build(config: Arc<Config>) -> Result<Shared, BuildError> {
    let policy = load_policy(&config)?;
    let mut opts = crate::classify::ClassifierOptions::default();
    if let Some(f) = &config.classifier.dangerous_functions {
        opts.dangerous_functions = f.clone();
    }
    opts.cache_capacity = config.classifier.cache_size;
    let audit = crate::audit::AuditLog::open(&config.audit)?;
    let (client_tls, tls_required, upstream_tls) = tls_material(&config)?;
    let metrics = crate::metrics::Metrics::new();
    let holds = match &config.control {
        None => {
            metrics.control_up.set(1);
            crate::hold::HoldQueue::new()
        }
        Some(c) => crate::hold::HoldQueue::with_store(crate::control::ControlStore::new(
            c.clone(),
            metrics.control_up.clone(),
        )?),
    }
    .with_audit(audit.clone());
    Ok(Shared {
        config,
        client_tls: client_tls.map(tokio_rustls::TlsAcceptor::from),
        tls_required,
        upstream_tls,
        cancels: Arc::new(CancelRegistry::default()),
        classifier: crate::classify::Classifier::new(opts),
        policy: std::sync::RwLock::new(Arc::new(policy)),
        policy_generation: std::sync::atomic::AtomicU64::new(0),
        holds,
        tokens: crate::hold::Tokens::default(),
        next_session: std::sync::atomic::AtomicU64::new(0),
        audit,
        metrics,
    })
}

/// Watches the policy file's directory (Kubernetes updates a ConfigMap by swapping
/// a symlink, so the file itself may never be written) and reloads a changed file
/// once it is complete and stable (see `policy_watch`).
pub fn watch_policy(shared: &Arc<Shared>) -> Option<notify::RecommendedWatcher> {
    let path = shared.config.policy_path.clone()?;
    crate::policy_watch::watch(path, Arc::clone(shared), reload_policy_bytes)
}

/// Applies policy text the watcher read (not the file again: it may have changed).
fn reload_policy_bytes(shared: &Shared, trigger: &str, path: &std::path::Path, text: &[u8]) {
    let origin = path.display().to_string();
    let loaded = std::str::from_utf8(text)
        .map_err(|e| {
            crate::policy::PolicyError::new(&origin, None, "(file)", format!("cannot read: {e}"))
        })
        .and_then(|t| crate::policy::Policy::parse(t, &origin));
    let _ = apply_reload(shared, trigger, loaded);
}

pub fn record_reload(shared: &Shared, trigger: &str, result: Result<String, String>) {
    let policy = shared.policy();
    shared
        .metrics
        .policy_reloads
        .get_or_create(&crate::metrics::ResultLabels {
            result: if result.is_ok() { "ok" } else { "error" }.to_string(),
        })
        .inc();
    let (ok, error) = match &result {
        Ok(_) => (true, None),
        Err(e) => (false, Some(e.clone())),
    };
    shared.audit.record(crate::audit::Event::PolicyReload(
        crate::audit::PolicyReload {
            trigger: trigger.to_string(),
            result: if ok { "ok" } else { "error" }.to_string(),
            path: Some(policy.origin().to_string()),
            sha256: Some(policy.sha256().to_string()),
            rules: Some(policy.rule_count() as u64),
            error,
        },
    ));
}

/// Re-reads the policy file and swaps it in; a broken file is rejected and the
/// policy in force stays. Returns the new policy's SHA-256. `trigger` names the
/// cause in the audit log (`sighup`, `file`, `api`).
pub fn reload_policy(shared: &Shared, trigger: &str) -> Result<String, crate::policy::PolicyError> {
    apply_reload(shared, trigger, load_policy(&shared.config))
}

/// Swaps in a loaded policy (or rejects the error) and records the attempt.
fn apply_reload(
    shared: &Shared,
    trigger: &str,
    loaded: Result<crate::policy::Policy, crate::policy::PolicyError>,
) -> Result<String, crate::policy::PolicyError> {
    let r = swap_policy(shared, loaded);
    record_reload(shared, trigger, r.clone().map_err(|e| e.to_string()));
    r
}

fn swap_policy(
    shared: &Shared,
    loaded: Result<crate::policy::Policy, crate::policy::PolicyError>,
) -> Result<String, crate::policy::PolicyError> {
    match loaded {
        Ok(p) => {
            let sha = p.sha256().to_string();
            for w in p.warnings() {
                warn!(warning = %w, "policy warning");
            }
            shared.set_policy(p);
            info!(sha256 = %sha, "policy reloaded");
            Ok(sha)
        }
        Err(e) => {
            warn!(error = %e, "policy reload rejected; the previous policy stays in force");
            Err(e)
        }
    }
}
