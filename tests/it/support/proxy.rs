//! pgwarden in front of test clusters: in-process (`pgwarden::app::start`) or as the
//! `pgwarden serve` binary, configured with generated TOML.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::certs::{test_ca, CertFiles, TestCa};
use super::clients::Endpoint;
use super::cluster::{free_port, PgCluster};

/// Set this environment variable to replace pgwarden by a plain TCP relay (to check
/// the tests themselves; see `ProxyBuilder::start_relay`).
pub const RELAY_ENV: &str = "PGWARDEN_TEST_RELAY";

/// One `[targets.NAME]` table.
#[derive(Clone, Debug)]
pub struct TargetSpec {
    pub name: String,
    pub port: u16,
    pub environment: String,
    /// `None`: no `databases` key (the default target).
    pub databases: Option<Vec<String>>,
    /// `tls = { mode = ..., ca = ... }` towards the server.
    pub tls: Option<(String, Option<PathBuf>)>,
}

impl TargetSpec {
    /// A development target for `cluster` without database routing or TLS.
    pub fn for_cluster(name: &str, cluster: &PgCluster) -> TargetSpec {
        TargetSpec::for_port(name, cluster.port())
    }

    /// A development target for 127.0.0.1:`port`.
    pub fn for_port(name: &str, port: u16) -> TargetSpec {
        TargetSpec {
            name: name.to_string(),
            port,
            environment: "development".to_string(),
            databases: None,
            tls: None,
        }
    }

    /// Route these databases to this target.
    pub fn databases(mut self, dbs: &[&str]) -> TargetSpec {
        self.databases = Some(dbs.iter().map(|s| s.to_string()).collect());
        self
    }

    /// TLS towards the server: `mode` is disable|prefer|require|verify-ca|verify-full.
    pub fn tls(mut self, mode: &str, ca: Option<&Path>) -> TargetSpec {
        self.tls = Some((mode.to_string(), ca.map(Path::to_path_buf)));
        self
    }

    /// A production target for `cluster` (guarded by the policy).
    pub fn production(name: &str, cluster: &PgCluster) -> TargetSpec {
        TargetSpec::for_cluster(name, cluster).environment("production")
    }

    /// `environment = ...`.
    pub fn environment(mut self, env: &str) -> TargetSpec {
        self.environment = env.to_string();
        self
    }
}

/// Builds a proxy configuration (the TOML contract) and starts the proxy.
pub struct ProxyBuilder {
    dir: tempfile::TempDir,
    targets: Vec<TargetSpec>,
    client_tls: Option<(String, CertFiles)>,
    max_message_size: Option<String>,
    policy_path: Option<PathBuf>,
    /// `[admin]` with these approvers (name, token_env), when set.
    admin: Option<Vec<(String, String)>>,
    /// Extra `key = value` lines of the `[server]` table.
    server_toml: String,
    extra_toml: String,
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_path(p: &Path) -> String {
    toml_str(&p.display().to_string())
}

impl Default for ProxyBuilder {
    fn default() -> Self {
        ProxyBuilder::new()
    }
}

impl ProxyBuilder {
    pub fn new() -> ProxyBuilder {
        ProxyBuilder {
            dir: tempfile::Builder::new()
                .prefix("pgwarden-proxy-")
                .tempdir()
                .expect("proxy temp dir"),
            targets: Vec::new(),
            client_tls: None,
            max_message_size: None,
            policy_path: None,
            admin: None,
            server_toml: String::new(),
            extra_toml: String::new(),
        }
    }

    /// `[policy] path = ...` pointing at an existing file.
    pub fn policy_path(mut self, path: &Path) -> ProxyBuilder {
        self.policy_path = Some(path.to_path_buf());
        self
    }

    /// Writes `text` as the policy file in the proxy's temp dir and uses it.
    pub fn policy_toml(mut self, text: &str) -> ProxyBuilder {
        let path = self.dir.path().join("policy.toml");
        std::fs::write(&path, text).expect("write policy.toml");
        self.policy_path = Some(path);
        self
    }

    /// `[admin] listen = "127.0.0.1:0"` with approvers as (name, token_env) pairs;
    /// the tokens are read from those environment variables when the proxy starts.
    pub fn admin(mut self, approvers: &[(&str, &str)]) -> ProxyBuilder {
        self.admin = Some(
            approvers
                .iter()
                .map(|(n, e)| (n.to_string(), e.to_string()))
                .collect(),
        );
        self
    }

    /// Adds a `[targets.NAME]` table.
    pub fn target(mut self, t: TargetSpec) -> ProxyBuilder {
        self.targets.push(t);
        self
    }

    /// TLS towards clients with a fresh certificate for localhost/127.0.0.1 from the
    /// process-wide test CA; `mode` is disable|prefer|require.
    pub fn client_tls(self, mode: &str) -> ProxyBuilder {
        self.client_tls_from(mode, test_ca())
    }

    /// TLS towards clients with a certificate from `ca`.
    pub fn client_tls_from(mut self, mode: &str, ca: &TestCa) -> ProxyBuilder {
        let files = ca.server_leaf().write(self.dir.path(), "proxy-server");
        self.client_tls = Some((mode.to_string(), files));
        self
    }

    /// `server.max_message_size = "..."`.
    pub fn max_message_size(mut self, size: &str) -> ProxyBuilder {
        self.max_message_size = Some(size.to_string());
        self
    }

    /// `server.KEY = VALUE` (`value` is TOML, quote strings).
    pub fn server_setting(mut self, key: &str, value: &str) -> ProxyBuilder {
        writeln!(self.server_toml, "{key} = {value}").unwrap();
        self
    }

    /// Extra TOML appended verbatim at the end of the file.
    pub fn extra_toml(mut self, text: &str) -> ProxyBuilder {
        self.extra_toml.push_str(text);
        self
    }

    /// The temp dir holding generated files (certificates, config).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration text for listen address `listen`.
    pub fn toml(&self, listen: &str) -> String {
        let mut t = String::new();
        writeln!(t, "[server]\nlisten = {}", toml_str(listen)).unwrap();
        if let Some((mode, files)) = &self.client_tls {
            writeln!(
                t,
                "tls = {{ mode = {}, cert = {}, key = {} }}",
                toml_str(mode),
                toml_path(&files.cert),
                toml_path(&files.key)
            )
            .unwrap();
        }
        if let Some(size) = &self.max_message_size {
            writeln!(t, "max_message_size = {}", toml_str(size)).unwrap();
        }
        t.push_str(&self.server_toml);
        for target in &self.targets {
            writeln!(t, "\n[targets.{}]", target.name).unwrap();
            writeln!(t, "host = \"127.0.0.1\"\nport = {}", target.port).unwrap();
            writeln!(t, "environment = {}", toml_str(&target.environment)).unwrap();
            if let Some(dbs) = &target.databases {
                let list: Vec<String> = dbs.iter().map(|d| toml_str(d)).collect();
                writeln!(t, "databases = [{}]", list.join(", ")).unwrap();
            }
            if let Some((mode, ca)) = &target.tls {
                match ca {
                    Some(ca) => writeln!(
                        t,
                        "tls = {{ mode = {}, ca = {} }}",
                        toml_str(mode),
                        toml_path(ca)
                    ),
                    None => writeln!(t, "tls = {{ mode = {} }}", toml_str(mode)),
                }
                .unwrap();
            }
        }
        if let Some(path) = &self.policy_path {
            writeln!(t, "\n[policy]\npath = {}", toml_path(path)).unwrap();
        }
        if let Some(approvers) = &self.admin {
            let list: Vec<String> = approvers
                .iter()
                .map(|(name, env)| format!("{name} = {{ token_env = {} }}", toml_str(env)))
                .collect();
            writeln!(
                t,
                "\n[admin]\nlisten = \"127.0.0.1:0\"\napprovers = {{ {} }}",
                list.join(", ")
            )
            .unwrap();
        }
        t.push_str(&self.extra_toml);
        t
    }

    /// Starts pgwarden in this process on 127.0.0.1:0; panics if it fails.
    pub async fn start(self) -> TestProxy {
        match self.try_start().await {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts pgwarden in this process; the error names the config that failed.
    pub async fn try_start(self) -> Result<TestProxy, String> {
        let toml = self.toml("127.0.0.1:0");
        if std::env::var_os(RELAY_ENV).is_some() {
            return self.start_relay(toml).await;
        }
        let cfg = pgwarden::config::Config::from_toml_str(&toml, "test").map_err(|e| {
            format!("pgwarden rejected the test config: {e}\n--- config ---\n{toml}")
        })?;
        let running = pgwarden::app::start(cfg)
            .await
            .map_err(|e| format!("pgwarden failed to start: {e}\n--- config ---\n{toml}"))?;
        let addr = running.addr();
        Ok(TestProxy {
            running: Some(running),
            relay: None,
            addr,
            client_tls: self.client_tls.is_some(),
            toml,
            dir: self.dir,
        })
    }

    /// Harness self-check: a byte-for-byte TCP relay to the first target instead of
    /// pgwarden. Scenarios that pass through it are free of assumptions that only
    /// hold for direct connections. (No TLS termination, no routing.)
    async fn start_relay(self, toml: String) -> Result<TestProxy, String> {
        let port = self
            .targets
            .first()
            .ok_or("relay mode needs a target")?
            .port;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let relay = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Ok(TestProxy {
            running: None,
            relay: Some(relay),
            addr,
            client_tls: self.client_tls.is_some(),
            toml,
            dir: self.dir,
        })
    }

    /// Writes the config with a free fixed port and runs `pgwarden serve --config FILE`
    /// as a child process; returns once the port accepts TCP connections.
    pub async fn spawn_binary(self) -> ProxyProcess {
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let toml = self.toml(&format!("127.0.0.1:{port}"));
            let path = self.dir.path().join("proxy.toml");
            std::fs::write(&path, &toml).expect("write proxy.toml");
            let stdout = std::fs::File::create(self.dir.path().join("pgwarden.out")).unwrap();
            let stderr = std::fs::File::create(self.dir.path().join("pgwarden.err")).unwrap();
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgwarden"))
                .arg("serve")
                .arg("--config")
                .arg(&path)
                .stdin(std::process::Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .kill_on_drop(true)
                .spawn()
                .expect("spawn pgwarden");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return ProxyProcess {
                        child,
                        port,
                        client_tls: self.client_tls.is_some(),
                        toml,
                        dir: self.dir,
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!(
                        "pgwarden serve exited ({status}) before listening on {port}\n\
                         stderr:\n{}\n--- config ---\n{toml}",
                        std::fs::read_to_string(self.dir.path().join("pgwarden.err"))
                            .unwrap_or_default()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.start_kill();
                    last_err = format!("pgwarden serve did not listen on {port} within 15 s");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let stderr_text =
                std::fs::read_to_string(self.dir.path().join("pgwarden.err")).unwrap_or_default();
            if !stderr_text.contains("in use") {
                break;
            }
        }
        panic!("{last_err}");
    }
}

/// pgwarden running in this process.
pub struct TestProxy {
    running: Option<pgwarden::app::RunningProxy>,
    relay: Option<tokio::task::JoinHandle<()>>,
    addr: SocketAddr,
    client_tls: bool,
    toml: String,
    dir: tempfile::TempDir,
}

impl TestProxy {
    /// pgwarden with one default development target: `cluster`, no TLS on either leg.
    pub async fn start(cluster: &PgCluster) -> TestProxy {
        ProxyBuilder::new()
            .target(TargetSpec::for_cluster("main", cluster))
            .start()
            .await
    }

    /// Configure a proxy before starting it.
    pub fn builder() -> ProxyBuilder {
        ProxyBuilder::new()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The admin HTTP listener (`[admin]` configured and implemented), if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(|r| r.admin_addr())
    }

    /// The config text it was started with.
    pub fn config_toml(&self) -> &str {
        &self.toml
    }

    /// The temp dir with the proxy's generated files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Plaintext endpoint of the proxy.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::plain("proxy", self.port())
    }

    /// TLS endpoint of the proxy verified against the test CA for `server_name`.
    pub fn tls_endpoint(&self, server_name: &str) -> Endpoint {
        assert!(self.client_tls, "proxy was started without client TLS");
        let ca_path = test_ca().write_ca(self.dir.path(), "client-ca.crt");
        Endpoint::plain("proxy-tls", self.port()).with_tls(test_ca(), server_name, &ca_path)
    }

    /// Stops accepting and drains (`RunningProxy::shutdown`).
    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }
}

/// `pgwarden serve` as a child process (killed on drop).
pub struct ProxyProcess {
    child: tokio::process::Child,
    port: u16,
    client_tls: bool,
    toml: String,
    dir: tempfile::TempDir,
}

impl ProxyProcess {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::plain("proxy-binary", self.port)
    }

    /// TLS endpoint of the proxy verified against the test CA for `server_name`.
    pub fn tls_endpoint(&self, server_name: &str) -> Endpoint {
        assert!(self.client_tls, "proxy was started without client TLS");
        let ca_path = test_ca().write_ca(self.dir.path(), "client-ca.crt");
        Endpoint::plain("proxy-binary-tls", self.port).with_tls(test_ca(), server_name, &ca_path)
    }

    pub fn config_toml(&self) -> &str {
        &self.toml
    }

    /// What the binary wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgwarden.err")).unwrap_or_default()
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// The temp dir holding the generated config (and `policy_toml`'s policy file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `/proc/PID/status` memory figure of the child in KiB: `VmRSS` (resident now)
    /// or `VmHWM` (peak resident). Linux only, as the tests' machine is.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let pid = self.child.id().expect("pgwarden serve is still running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
    }

    /// Sends `signal` (a `kill` name such as `HUP`, `USR1`) to this child only, by pid;
    /// panics if the process is gone or `kill` fails.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("pgwarden serve is still running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// SIGUSR1: reopen the audit log (logrotate).
    pub fn reopen_audit(&self) {
        self.signal("USR1");
    }

    /// SIGHUP: reload the policy.
    pub fn hangup(&self) {
        self.signal("HUP");
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `limit` for the process to exit; `None` if it is still running.
    pub async fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Sends SIGTERM (by pid, to this child only) and waits up to `grace` for the exit
    /// status; `None` if it is still running then.
    pub async fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id()?;
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        self.wait(grace).await
    }
}
