//! Client side of the tests: an [`Endpoint`] (a cluster directly, or pgwarden in front of
//! it) that scenarios connect to with tokio-postgres, psql or pgbench.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Config, Connection, Error, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::certs::TestCa;
use super::cluster::pg_install;

/// How a client verifies the endpoint's TLS certificate (always verify-full).
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The name checked against the certificate (`localhost` or `127.0.0.1`).
    pub server_name: String,
    /// Trusts only the test CA.
    pub config: Arc<rustls::ClientConfig>,
    /// The same CA as a file, for psql/pgbench (`sslrootcert`).
    pub ca_path: PathBuf,
}

/// Where a scenario connects: host is always 127.0.0.1.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// "direct", "proxy", ...: appears in assertion messages.
    pub label: String,
    pub port: u16,
    /// When set, connections use TLS (`sslmode=verify-full`).
    pub tls: Option<ClientTls>,
}

/// The outcome of running psql/pgbench.
#[derive(Debug)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    /// Panics with both streams unless the tool exited 0.
    #[track_caller]
    pub fn assert_ok(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

impl Endpoint {
    /// A plaintext endpoint on 127.0.0.1:`port`.
    pub fn plain(label: &str, port: u16) -> Endpoint {
        Endpoint {
            label: label.to_string(),
            port,
            tls: None,
        }
    }

    /// The same endpoint, connected to with TLS verified against `ca` for `server_name`.
    pub fn with_tls(mut self, ca: &TestCa, server_name: &str, ca_path: &Path) -> Endpoint {
        self.tls = Some(ClientTls {
            server_name: server_name.to_string(),
            config: Arc::new(ca.client_config()),
            ca_path: ca_path.to_path_buf(),
        });
        self
    }

    /// tokio-postgres settings for `user`/`password` on `db` (password may be empty).
    pub fn config(&self, user: &str, password: &str, db: &str) -> Config {
        let mut cfg = Config::new();
        match &self.tls {
            Some(tls) => {
                // The TLS name is `host`; the address actually dialled is 127.0.0.1.
                cfg.host(&tls.server_name)
                    .hostaddr([127, 0, 0, 1].into())
                    .ssl_mode(SslMode::Require);
            }
            None => {
                cfg.host("127.0.0.1").ssl_mode(SslMode::Disable);
            }
        }
        cfg.port(self.port)
            .user(user)
            .dbname(db)
            .connect_timeout(Duration::from_secs(10));
        if !password.is_empty() {
            cfg.password(password);
        }
        cfg
    }

    /// Connects with `cfg` (TLS per this endpoint); the connection runs in a task.
    pub async fn connect_config(&self, cfg: &Config) -> Result<Client, Error> {
        let (client, mut rx) = self.connect_config_with_messages(cfg).await?;
        // Drain notices/notifications nobody asked for.
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        Ok(client)
    }

    /// Connects as `user` to `db`.
    pub async fn connect(&self, user: &str, password: &str, db: &str) -> Result<Client, Error> {
        self.connect_config(&self.config(user, password, db)).await
    }

    /// Connects as `user`, panicking with the endpoint label on failure.
    pub async fn must_connect(&self, user: &str, password: &str, db: &str) -> Client {
        self.connect(user, password, db)
            .await
            .unwrap_or_else(|e| panic!("[{}] connect as {user} to {db}: {e:?}", self.label))
    }

    /// Connects and also returns the connection's asynchronous messages (notices,
    /// notifications) in arrival order.
    pub async fn connect_config_with_messages(
        &self,
        cfg: &Config,
    ) -> Result<(Client, mpsc::UnboundedReceiver<AsyncMessage>), Error> {
        match &self.tls {
            Some(tls) => connect_with(cfg, MakeRustlsConnect::new((*tls.config).clone())).await,
            None => connect_with(cfg, NoTls).await,
        }
    }

    /// A tokio-postgres client plus a receiver of its asynchronous messages.
    pub async fn connect_with_messages(
        &self,
        user: &str,
        password: &str,
        db: &str,
    ) -> Result<(Client, mpsc::UnboundedReceiver<AsyncMessage>), Error> {
        self.connect_config_with_messages(&self.config(user, password, db))
            .await
    }

    /// A `psql`/`pgbench`/... command with the connection in PG* environment variables
    /// (nothing inherited from the caller's PG* variables, no ~/.psqlrc, no .pgpass).
    pub fn tool_command(
        &self,
        tool: &str,
        user: &str,
        password: &str,
        db: &str,
    ) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(pg_install().client_bin(tool));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PG") {
                cmd.env_remove(k);
            }
        }
        cmd.env("PGPORT", self.port.to_string())
            .env("PGUSER", user)
            .env("PGDATABASE", db)
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGPASSFILE", "/dev/null")
            .env("PSQLRC", "/dev/null")
            .env("LC_ALL", "C")
            .kill_on_drop(true);
        if !password.is_empty() {
            cmd.env("PGPASSWORD", password);
        }
        match &self.tls {
            Some(tls) => {
                cmd.env("PGHOST", &tls.server_name)
                    .env("PGHOSTADDR", "127.0.0.1")
                    .env("PGSSLMODE", "verify-full")
                    .env("PGSSLROOTCERT", &tls.ca_path);
            }
            None => {
                cmd.env("PGHOST", "127.0.0.1").env("PGSSLMODE", "disable");
            }
        }
        cmd
    }

    /// Runs a client tool to completion (killed after `timeout`).
    pub async fn run_tool(
        &self,
        tool: &str,
        user: &str,
        password: &str,
        db: &str,
        args: &[&str],
        timeout: Duration,
    ) -> CmdOutput {
        let mut cmd = self.tool_command(tool, user, password, db);
        cmd.args(args);
        let out = tokio::time::timeout(timeout, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("[{}] {tool} {args:?} timed out", self.label))
            .unwrap_or_else(|e| panic!("[{}] cannot run {tool}: {e}", self.label));
        CmdOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `psql -X ARGS` (no psqlrc); killed after 60 s.
    pub async fn psql(&self, user: &str, password: &str, db: &str, args: &[&str]) -> CmdOutput {
        let mut all = vec!["-X"];
        all.extend_from_slice(args);
        self.run_tool("psql", user, password, db, &all, Duration::from_secs(60))
            .await
    }

    /// `pgbench ARGS`; killed after 120 s.
    pub async fn pgbench(&self, user: &str, password: &str, db: &str, args: &[&str]) -> CmdOutput {
        self.run_tool(
            "pgbench",
            user,
            password,
            db,
            args,
            Duration::from_secs(120),
        )
        .await
    }

    /// A raw TCP connection to the endpoint (no TLS, no protocol).
    pub async fn tcp(&self) -> tokio::net::TcpStream {
        tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("[{}] TCP connect: {e}", self.label))
    }
}

async fn connect_with<M>(
    cfg: &Config,
    tls: M,
) -> Result<(Client, mpsc::UnboundedReceiver<AsyncMessage>), Error>
where
    M: MakeTlsConnect<Socket>,
    M::Stream: Send + 'static,
    M::TlsConnect: Send,
    <M::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, conn) = cfg.connect(tls).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(drive(conn, tx));
    Ok((client, rx))
}

/// Drives a connection, forwarding notices and notifications.
async fn drive<S, T>(mut conn: Connection<S, T>, tx: mpsc::UnboundedSender<AsyncMessage>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(msg) = futures_util::future::poll_fn(|cx| conn.poll_message(cx)).await {
        match msg {
            Ok(m) => {
                let _ = tx.send(m);
            }
            Err(_) => break,
        }
    }
}
