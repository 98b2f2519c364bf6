//! Raw configuration as written in `proxy.toml`: serde structs that reject unknown keys.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub audit: RawAudit,
    pub policy: Option<RawPolicy>,
    #[serde(default)]
    pub classifier: RawClassifier,
    #[serde(default)]
    pub targets: BTreeMap<String, RawTarget>,
    pub control: Option<RawControl>,
    pub notify: Option<super::notify::RawNotify>,
    pub trash: Option<RawTrash>,
}

/// A size written as bytes (integer) or a string like "64MB", "1GiB".
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub tls: Option<RawServerTls>,
    pub max_message_size: Option<RawSize>,
    pub max_connections: Option<u64>,
    pub max_starting: Option<u64>,
    pub max_starting_per_client: Option<u64>,
    pub startup_timeout: Option<String>,
    pub tcp_keepalive: Option<String>,
    pub shutdown_grace: Option<String>,
    pub worker_threads: Option<RawCount>,
}

/// A count written as an integer or as text ("auto", "2").
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawCount {
    Number(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerTls {
    pub mode: String,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: String,
    #[serde(default)]
    pub approvers: BTreeMap<String, RawApprover>,
    pub tls: Option<RawAdminTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminTls {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprover {
    pub token_env: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub path: Option<String>,
    pub statements: Option<String>,
    pub durability: Option<String>,
    pub redact: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub path: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawClassifier {
    pub dangerous_functions: Option<Vec<String>>,
    pub cache_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub host: String,
    pub port: Option<i64>,
    pub environment: String,
    pub databases: Option<Vec<String>>,
    pub tls: Option<RawTargetTls>,
    pub mode: Option<String>,
    pub connect_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetTls {
    pub mode: String,
    pub ca: Option<String>,
    pub server_name: Option<String>,
}

/// `[trash]`: pgwarden's own credential for one target's trash.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrash {
    pub target: String,
    pub url: String,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub tls: Option<RawTargetTls>,
    pub purge_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    pub url: String,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub tls: Option<RawTargetTls>,
    pub replica: Option<String>,
    pub poll_interval: Option<String>,
    pub replica_timeout: Option<String>,
    pub connect_timeout: Option<String>,
}
