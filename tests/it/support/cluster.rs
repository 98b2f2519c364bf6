//! Throwaway PostgreSQL clusters: initdb in a temp dir, TLS on, fixed test users, free port.
//!
//! A cluster listens on 127.0.0.1 only (TCP, SCRAM/md5/trust per user) and on a unix
//! socket inside its temp dir (superuser, trust). It is stopped (`pg_ctl stop -m
//! immediate`) and its directory removed when the [`PgCluster`] is dropped, also while
//! a test panics.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::certs::{test_ca, CertFiles, TestCa};
use super::clients::{CmdOutput, Endpoint};

/// The superuser: password login over TCP, trust over the cluster's unix socket.
pub const SUPERUSER: &str = "postgres";
pub const SUPERUSER_PASSWORD: &str = "super-secret-pw";
/// A login whose password is stored as a SCRAM-SHA-256 verifier.
pub const SCRAM_USER: &str = "scram_user";
pub const SCRAM_PASSWORD: &str = "scram-pw-Ünïcode";
/// A login whose password is stored as an md5 hash, authenticated with `md5`.
pub const MD5_USER: &str = "md5_user";
pub const MD5_PASSWORD: &str = "md5-pw";
/// A login allowed in without a password (`trust` line in pg_hba.conf).
pub const TRUST_USER: &str = "trust_user";
/// The database every cluster has.
pub const APP_DB: &str = "app";

/// The PostgreSQL installation the tests use.
#[derive(Debug)]
pub struct PgInstall {
    /// Directory holding initdb, pg_ctl and postgres.
    pub bin_dir: PathBuf,
    /// `postgres --version` output, e.g. "postgres (PostgreSQL) 15.18 (Debian ...)".
    pub version: String,
}

impl PgInstall {
    /// Path of a server-side tool (`initdb`, `pg_ctl`, `postgres`).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// Path of a client tool (`psql`, `pgbench`): next to the server binaries, else PATH.
    pub fn client_bin(&self, name: &str) -> PathBuf {
        let here = self.bin_dir.join(name);
        if here.is_file() {
            return here;
        }
        find_on_path(name).unwrap_or_else(|| {
            panic!(
                "`{name}` not found next to {} or on PATH; install it with \
                 `apt-get install postgresql postgresql-contrib` (Debian/Ubuntu)",
                self.bin_dir.display()
            )
        })
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn has_server_bins(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// Finds initdb/pg_ctl/postgres on PATH, else under /usr/lib/postgresql/*/bin (highest
/// version). Panics with installation instructions when there is none: these tests
/// never skip silently.
pub fn pg_install() -> &'static PgInstall {
    static INSTALL: OnceLock<PgInstall> = OnceLock::new();
    INSTALL.get_or_init(|| {
        let mut found = std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).find(|dir| has_server_bins(dir)));
        if found.is_none() {
            let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    has_server_bins(&bin).then_some((major, bin))
                })
                .collect();
            versions.sort();
            found = versions.pop().map(|(_, bin)| bin);
        }
        let bin_dir = found.unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH \
                 or under /usr/lib/postgresql/*/bin. The integration tests need a real \
                 PostgreSQL: install it with `apt-get install postgresql` (Debian/Ubuntu; \
                 .ci/run does), or put its bin directory on PATH."
            )
        });
        let out = Command::new(bin_dir.join("postgres"))
            .arg("--version")
            .output()
            .expect("run postgres --version");
        PgInstall {
            bin_dir,
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    })
}

/// The uid/gid PostgreSQL processes run as: `postgres` when we are root (PostgreSQL
/// refuses to run as root), else `None` (run as ourselves).
pub fn server_owner() -> Option<(u32, u32)> {
    static OWNER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *OWNER.get_or_init(|| {
        let euid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
        if euid != 0 {
            return None;
        }
        let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
        let ids = passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 4 && f[0] == "postgres")
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        });
        Some(ids.unwrap_or_else(|| {
            panic!(
                "running as root, but there is no `postgres` system user to run PostgreSQL \
                 as (PostgreSQL refuses to run as root). `apt-get install postgresql` \
                 creates it, or run the tests as an unprivileged user."
            )
        }))
    })
}

fn chown_recursive(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .status()
            .expect("run chown");
        assert!(status.success(), "chown -R {} failed", path.display());
    }
}

/// A port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, release).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Configures a cluster before starting it.
#[derive(Default, Clone)]
pub struct PgClusterBuilder {
    databases: Vec<String>,
    settings: Vec<(String, String)>,
    no_ssl: bool,
    ca: Option<&'static TestCa>,
    server_names: Option<Vec<String>>,
}

impl PgClusterBuilder {
    /// Also create database `name` (besides `app`).
    pub fn database(mut self, name: &str) -> Self {
        self.databases.push(name.to_string());
        self
    }

    /// An extra postgresql.conf setting (`value` is written verbatim, quote strings).
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.push((key.to_string(), value.to_string()));
        self
    }

    /// Start with `ssl = off`.
    pub fn without_ssl(mut self) -> Self {
        self.no_ssl = true;
        self
    }

    /// Sign the server certificate with `ca` instead of the process-wide [`test_ca`].
    pub fn ca(mut self, ca: &'static TestCa) -> Self {
        self.ca = Some(ca);
        self
    }

    /// The names in the server certificate (default: `localhost`, `127.0.0.1`).
    pub fn server_names(mut self, names: &[&str]) -> Self {
        self.server_names = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }

    /// initdb, configure and start the cluster; panics (with the server log) on failure.
    pub fn start(self) -> PgCluster {
        PgCluster::start_with(self)
    }
}

/// A running throwaway PostgreSQL cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    ca: &'static TestCa,
    ca_path: PathBuf,
    server_cert: CertFiles,
    databases: Vec<String>,
    stopped: bool,
    watchdog: Option<std::process::Child>,
}

fn run_checked(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl PgCluster {
    /// A cluster with the default setup (database `app`, TLS on).
    pub fn start() -> PgCluster {
        PgClusterBuilder::default().start()
    }

    /// Configure a cluster before starting it.
    pub fn builder() -> PgClusterBuilder {
        PgClusterBuilder::default()
    }

    /// A command for a PostgreSQL server tool, run as the server owner in the cluster dir.
    fn server_cmd(&self, tool: &str) -> Command {
        server_cmd(tool, self.dir.path(), self.owner)
    }

    fn start_with(b: PgClusterBuilder) -> PgCluster {
        let owner = server_owner();
        let dir = tempfile::Builder::new()
            .prefix("pgwarden-pg-")
            .tempdir()
            .expect("create cluster temp dir");
        let base = dir.path().to_path_buf();
        let data = base.join("data");

        // A copy of the initialised template (initdb + roles + `app`), then extras.
        copy_dir(template_data_dir(), &data);
        chown_recursive(&base, owner);
        let mut databases = vec![APP_DB.to_string()];
        databases.extend(b.databases.iter().cloned());
        if !b.databases.is_empty() {
            let sql: Vec<String> = b
                .databases
                .iter()
                .map(|db| format!("CREATE DATABASE \"{db}\";"))
                .collect();
            single_user(&base, &data, owner, &sql);
        }

        // Certificates: the CA and a server leaf for localhost / 127.0.0.1.
        let ca = b.ca.unwrap_or_else(test_ca);
        let ca_path = ca.write_ca(&base, "ca.crt");
        let leaf = match &b.server_names {
            Some(names) => ca.leaf(&names.iter().map(String::as_str).collect::<Vec<_>>()),
            None => ca.server_leaf(),
        };
        let server_cert = leaf.write(&base, "server");

        // Server configuration (appended: later settings win).
        let mut conf = format!(
            "\n# pgwarden test harness\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{base}'\n\
             ssl = {ssl}\n\
             ssl_cert_file = '{cert}'\n\
             ssl_key_file = '{key}'\n\
             ssl_ca_file = '{ca}'\n\
             shared_buffers = 16MB\n\
             max_connections = 100\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             max_parallel_workers_per_gather = 0\n\
             lc_messages = 'C'\n\
             log_min_messages = warning\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n",
            base = base.display(),
            ssl = if b.no_ssl { "off" } else { "on" },
            cert = server_cert.cert.display(),
            key = server_cert.key.display(),
            ca = ca_path.display(),
        );
        for (k, v) in &b.settings {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        let conf_path = data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf_path).expect("read postgresql.conf");
        text.push_str(&conf);
        fs::write(&conf_path, text).expect("write postgresql.conf");

        let hba = format!(
            "# pgwarden test harness\n\
             local all {SUPERUSER} trust\n\
             host  all {TRUST_USER} 127.0.0.1/32 trust\n\
             host  all {MD5_USER} 127.0.0.1/32 md5\n\
             host  all all 127.0.0.1/32 scram-sha-256\n"
        );
        fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        chown_recursive(&base, owner);

        let mut cluster = PgCluster {
            dir,
            data,
            port: 0,
            owner,
            ca,
            ca_path,
            server_cert,
            databases,
            stopped: true,
            watchdog: None,
        };

        // Start on a free port; another process may grab it in between, so retry.
        let log = cluster.log_path();
        let mut last = String::new();
        for _attempt in 0..10 {
            let port = free_port();
            let out = cluster
                .server_cmd("pg_ctl")
                .arg("-D")
                .arg(&cluster.data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o"])
                .arg(format!("-p {port}"))
                .arg("start")
                .output()
                .expect("run pg_ctl start");
            if out.status.success() {
                cluster.port = port;
                cluster.stopped = false;
                cluster.watchdog = cluster.spawn_watchdog();
                return cluster;
            }
            last = format!(
                "pg_ctl start failed ({}):\n{}{}\nserver log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(&log).unwrap_or_default()
            );
            let collision = last.contains("could not bind")
                || last.contains("Address already in use")
                || last.contains("could not create any TCP/IP sockets");
            if !collision {
                break;
            }
            // Start from a clean log so the next attempt's diagnosis is not stale.
            fs::write(&log, "").ok();
        }
        panic!("{last}");
    }

    /// A process that stops the server and removes its directory if this test process
    /// dies without dropping the cluster (killed by a timeout, SIGKILL, abort): without
    /// it, servers would outlive the test run. Runs as the server owner; we kill it
    /// (by its handle) on a normal stop.
    fn spawn_watchdog(&self) -> Option<std::process::Child> {
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; \
             '{pg_ctl}' -D '{data}' -m immediate -w stop >/dev/null 2>&1; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = pg_install().bin("pg_ctl").display(),
            data = self.data.display(),
            dir = self.dir.path().display(),
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd.spawn().ok()
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always "127.0.0.1": the only address test traffic goes to.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The cluster's temp dir (also its unix socket directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Alias of [`PgCluster::dir`]: where `.s.PGSQL.<port>` lives.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The CA that signed the server certificate.
    pub fn ca(&self) -> &'static TestCa {
        self.ca
    }

    /// Path of the CA certificate (PEM) that signed the server certificate.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The CA certificate in PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.ca_pem()
    }

    /// The server's own certificate and key files.
    pub fn server_cert(&self) -> &CertFiles {
        &self.server_cert
    }

    /// Databases created at start (`app` first).
    pub fn databases(&self) -> &[String] {
        &self.databases
    }

    /// Path of the server log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The direct (no proxy) plaintext endpoint of this cluster.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::plain("direct", self.port)
    }

    /// The direct endpoint with TLS, verified against the cluster's CA for `localhost`.
    pub fn tls_endpoint(&self) -> Endpoint {
        Endpoint::plain("direct-tls", self.port).with_tls(self.ca, "localhost", &self.ca_path)
    }

    /// Connects over TCP (plaintext) as `user` to `db`.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        db: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        self.endpoint().connect(user, password, db).await
    }

    /// The superuser on database `app` over the unix socket (trust): for checking
    /// server-side effects without going through whatever is under test.
    pub async fn superuser_client(&self) -> Client {
        self.superuser_client_db(APP_DB).await
    }

    /// The superuser on database `db` over the unix socket.
    pub async fn superuser_client_db(&self, db: &str) -> Client {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(self.dir.path())
            .port(self.port)
            .user(SUPERUSER)
            .dbname(db)
            .application_name("pgwarden-tests-superuser")
            .connect_timeout(Duration::from_secs(10));
        let (client, conn) = cfg
            .connect(NoTls)
            .await
            .unwrap_or_else(|e| panic!("superuser connect over unix socket: {e}"));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// Runs psql as the superuser against database `app` over TCP (no proxy).
    pub async fn psql(&self, args: &[&str]) -> CmdOutput {
        self.endpoint()
            .psql(SUPERUSER, SUPERUSER_PASSWORD, APP_DB, args)
            .await
    }

    /// Runs pgbench as the superuser against database `app` over TCP (no proxy).
    pub async fn pgbench(&self, args: &[&str]) -> CmdOutput {
        self.endpoint()
            .pgbench(SUPERUSER, SUPERUSER_PASSWORD, APP_DB, args)
            .await
    }

    /// Starts a server stopped with `stop` again, on the same port and data (for
    /// tests of a server outage and its recovery).
    pub fn start_again(&mut self) {
        assert!(self.stopped, "the server is still running");
        let out = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {}", self.port))
            .arg("start")
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start (again) failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.stopped = false;
        self.watchdog = self.spawn_watchdog();
    }

    /// Stops the server now (`pg_ctl stop -m immediate`); also done on drop.
    pub fn stop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        // The TempDir field then removes the directory (we are its owner or root).
    }
}

/// Roles and the `app` database, run in single-user mode on the template.
fn template_setup_sql() -> Vec<String> {
    vec![
        // PostgreSQL 15 no longer lets everyone create in public; tests (pgbench -i as
        // scram_user, ...) need it, and every database is created from template1.
        "GRANT ALL ON SCHEMA public TO PUBLIC;".to_string(),
        format!(
            "CREATE ROLE {SCRAM_USER} LOGIN PASSWORD {};",
            sql_literal(SCRAM_PASSWORD)
        ),
        format!("CREATE ROLE {TRUST_USER} LOGIN;"),
        "SET password_encryption = 'md5';".to_string(),
        format!(
            "CREATE ROLE {MD5_USER} LOGIN PASSWORD {};",
            sql_literal(MD5_PASSWORD)
        ),
        "RESET password_encryption;".to_string(),
        format!("CREATE DATABASE \"{APP_DB}\";"),
    ]
}

/// Runs SQL lines (one statement per line) in single-user mode against template1.
fn single_user(cwd: &Path, data: &Path, owner: Option<(u32, u32)>, sql: &[String]) {
    let mut child = server_cmd("postgres", cwd, owner)
        .arg("--single")
        .arg("-D")
        .arg(data)
        .args(["-c", "exit_on_error=on", "template1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run postgres --single");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all((sql.join("\n") + "\n").as_bytes())
            .expect("write setup SQL");
    }
    let out = child.wait_with_output().expect("wait postgres --single");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("ERROR"),
        "single-user setup failed ({}):\n{text}",
        out.status
    );
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp -a");
    assert!(
        status.success(),
        "cp -a {} {} failed",
        from.display(),
        to.display()
    );
}

/// A small stable hash (FNV-1a) for naming the cached template.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An initialised data directory (initdb, test roles, `app`) that clusters copy instead
/// of running initdb each time (initdb dominates startup). Cached under cargo's
/// target tmp dir, keyed by the server version and the setup; built once per key
/// (atomic rename, so concurrent test processes are safe).
fn template_data_dir() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let install = pg_install();
        let owner = server_owner();
        let key = format!(
            "{}|{}|{}|{:?}",
            install.version,
            install.bin_dir.display(),
            template_setup_sql().join("\n") + SUPERUSER_PASSWORD,
            owner
        );
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let final_dir = cache.join(format!("pg-template-{:016x}", fnv1a(&key)));
        if final_dir.join("PG_VERSION").is_file() {
            return final_dir;
        }
        fs::create_dir_all(&cache).expect("create target tmp dir");

        // Build in /tmp (reachable by the server owner), then copy into the cache.
        let work = tempfile::Builder::new()
            .prefix("pgwarden-pg-template-")
            .tempdir()
            .expect("template temp dir");
        let base = work.path();
        let data = base.join("data");
        let pwfile = base.join("pwfile");
        fs::write(&pwfile, format!("{SUPERUSER_PASSWORD}\n")).expect("write pwfile");
        chown_recursive(base, owner);
        run_checked(
            server_cmd("initdb", base, owner)
                .arg("-D")
                .arg(&data)
                .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        );
        single_user(base, &data, owner, &template_setup_sql());

        let partial = cache.join(format!(
            "pg-template-{:016x}.partial-{}",
            fnv1a(&key),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&partial);
        copy_dir(&data, &partial);
        if fs::rename(&partial, &final_dir).is_err() {
            // Another process won the race; its template is equivalent.
            let _ = fs::remove_dir_all(&partial);
        }
        assert!(
            final_dir.join("PG_VERSION").is_file(),
            "template {} missing",
            final_dir.display()
        );
        final_dir
    })
}

fn server_cmd(tool: &str, cwd: &Path, owner: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(pg_install().bin(tool));
    cmd.current_dir(cwd);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    cmd.env("LC_ALL", "C");
    if let Some((uid, gid)) = owner {
        // std drops supplementary groups when a root parent switches uid.
        cmd.uid(uid).gid(gid);
    }
    cmd
}
