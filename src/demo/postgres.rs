//! The demo's throwaway PostgreSQL: finds an installation, runs `initdb` in a temp
//! directory (as the `postgres` system user when we are root), loads the sample
//! schema in single-user mode, starts the server on a free 127.0.0.1 port, and stops
//! it and removes the directory when dropped. A watchdog process does the same if
//! the demo is killed without a chance to clean up.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::DemoError;

/// Where the server binaries (`initdb`, `pg_ctl`, `postgres`) are.
#[derive(Debug, Clone)]
pub struct PgInstall {
    pub bin_dir: PathBuf,
    /// `postgres --version`, e.g. "postgres (PostgreSQL) 16.4".
    pub version: String,
}

impl PgInstall {
    fn bin(&self, tool: &str) -> PathBuf {
        self.bin_dir.join(tool)
    }
}

const SERVER_BINS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

fn has_server_bins(dir: &Path) -> bool {
    SERVER_BINS.iter().all(|b| dir.join(b).is_file())
}

/// Directories where packages put versioned server binaries, newest version first.
fn versioned_dirs() -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    // Debian/Ubuntu: /usr/lib/postgresql/16/bin; RHEL/Fedora (PGDG): /usr/pgsql-16/bin;
    // Homebrew: /opt/homebrew/opt/postgresql@16/bin (and /usr/local on Intel Macs).
    let patterns: [(&str, &str, &str); 4] = [
        ("/usr/lib/postgresql", "", "bin"),
        ("/usr", "pgsql-", "bin"),
        ("/opt/homebrew/opt", "postgresql@", "bin"),
        ("/usr/local/opt", "postgresql@", "bin"),
    ];
    for (parent, prefix, bin) in patterns {
        let Ok(entries) = fs::read_dir(parent) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
                continue;
            };
            let Ok(major) = rest.parse::<u32>() else {
                continue;
            };
            found.push((major, e.path().join(bin)));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Finds PostgreSQL: `explicit` if given, else PATH, else the usual package locations.
pub fn find_install(explicit: Option<&Path>) -> Result<PgInstall, DemoError> {
    let bin_dir = match explicit {
        Some(dir) => {
            if !has_server_bins(dir) {
                return Err(DemoError::NoPostgres(format!(
                    "{} does not contain initdb, pg_ctl and postgres",
                    dir.display()
                )));
            }
            dir.to_path_buf()
        }
        None => std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).find(|d| has_server_bins(d)))
            .or_else(|| versioned_dirs().into_iter().find(|d| has_server_bins(d)))
            .ok_or_else(|| {
                DemoError::NoPostgres(
                    "the PostgreSQL server programs (initdb, pg_ctl, postgres) were not found \
                     on PATH or in the usual package locations"
                        .into(),
                )
            })?,
    };
    let out = Command::new(bin_dir.join("postgres"))
        .arg("--version")
        .output()
        .map_err(|e| DemoError::io(format!("running {}/postgres", bin_dir.display()), e))?;
    Ok(PgInstall {
        version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        bin_dir,
    })
}

/// `psql` next to the server binaries or on PATH.
pub fn find_psql(install: &PgInstall) -> Option<PathBuf> {
    let here = install.bin("psql");
    if here.is_file() {
        return Some(here);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("psql"))
            .find(|p| p.is_file())
    })
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    euid() == 0
}

fn euid() -> u32 {
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or_else(|_| {
            // No /proc (macOS): ask `id -u`.
            Command::new("id")
                .arg("-u")
                .output()
                .ok()
                .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
                .unwrap_or(1)
        })
}

/// The uid/gid the server runs as: `postgres` when we are root (PostgreSQL refuses to
/// run as root), else `None` (ourselves).
pub fn server_owner() -> Result<Option<(u32, u32)>, DemoError> {
    if euid() != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[0] == "postgres" {
                Some((f[2].parse().ok()?, f[3].parse().ok()?))
            } else {
                None
            }
        })
        .map(Some)
        .ok_or(DemoError::RootWithoutPostgresUser)
}

fn chown_tree(path: &Path, owner: Option<(u32, u32)>) -> Result<(), DemoError> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| DemoError::io(format!("chown {}", path.display()), e))?;
    if path.is_dir() && !path.is_symlink() {
        let entries =
            fs::read_dir(path).map_err(|e| DemoError::io(format!("read {}", path.display()), e))?;
        for e in entries.flatten() {
            chown_tree(&e.path(), owner)?;
        }
    }
    Ok(())
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> Result<u16, DemoError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DemoError::io("binding 127.0.0.1:0".to_string(), e))
}

/// A fresh, private directory under the system temp dir.
fn make_temp_dir() -> Result<PathBuf, DemoError> {
    let base = std::env::temp_dir();
    let mut last = None;
    for _ in 0..16 {
        let dir = base.join(format!("pgwarden-demo-{}", super::random_hex(4)));
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| DemoError::io(format!("chmod {}", dir.display()), e))?;
                return Ok(dir);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(DemoError::io(
        format!("creating a directory in {}", base.display()),
        last.unwrap_or_else(|| std::io::Error::other("no attempt")),
    ))
}

/// A running throwaway cluster. Dropping it stops the server and removes `dir`.
pub struct DemoCluster {
    install: PgInstall,
    owner: Option<(u32, u32)>,
    dir: PathBuf,
    port: u16,
    running: bool,
    watchdog: Option<Child>,
}

impl DemoCluster {
    /// The temp directory holding the data directory, server log and demo files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn version(&self) -> &str {
        &self.install.version
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A server tool run as the server owner, without the caller's PG* variables.
    fn tool(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.install.bin(tool));
        cmd.current_dir(&self.dir).env("LC_ALL", "C");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PG") {
                cmd.env_remove(k);
            }
        }
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        // Own process group: Ctrl-C in the terminal reaches the demo, which then
        // shuts the server down in order, not the server directly.
        cmd.process_group(0);
        cmd
    }

    /// initdb, the demo role and database, the sample schema, then start the server.
    /// `setup` is run in single-user mode: (database, one statement per entry).
    pub fn create(
        install: PgInstall,
        owner: Option<(u32, u32)>,
        setup: &[(&str, Vec<String>)],
    ) -> Result<DemoCluster, DemoError> {
        let dir = make_temp_dir()?;
        // From here on, dropping `cluster` removes `dir`.
        let mut cluster = DemoCluster {
            install,
            owner,
            dir,
            port: 0,
            running: false,
            watchdog: None,
        };
        chown_tree(&cluster.dir, owner)?;
        let data = cluster.data();
        cluster.run_checked(
            cluster
                .tool("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"]),
            "initdb",
        )?;
        let conf = format!(
            "\n# pgwarden demo\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{dir}'\n\
             shared_buffers = 16MB\n\
             max_connections = 30\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             lc_messages = 'C'\n\
             log_min_messages = warning\n",
            dir = cluster.dir.display()
        );
        append(&data.join("postgresql.conf"), &conf)?;
        // Superuser only over the private unix socket; everyone else with a password.
        fs::write(
            data.join("pg_hba.conf"),
            "# pgwarden demo\n\
             local all postgres trust\n\
             host  all all 127.0.0.1/32 scram-sha-256\n",
        )
        .map_err(|e| DemoError::io("writing pg_hba.conf".into(), e))?;
        chown_tree(&cluster.dir, owner)?;
        for (database, statements) in setup {
            cluster.single_user(database, statements)?;
        }
        cluster.start()?;
        Ok(cluster)
    }

    fn run_checked(&self, cmd: &mut Command, what: &str) -> Result<(), DemoError> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| DemoError::io(format!("running {what}"), e))?;
        if !out.status.success() {
            return Err(DemoError::Postgres {
                what: what.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(())
    }

    /// Runs statements (one per entry, no newlines inside) in single-user mode.
    fn single_user(&self, database: &str, statements: &[String]) -> Result<(), DemoError> {
        let what = format!("loading the sample data into {database}");
        let mut child = self
            .tool("postgres")
            .arg("--single")
            .arg("-D")
            .arg(self.data())
            .args(["-c", "exit_on_error=on", database])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| DemoError::io(format!("running postgres --single ({what})"), e))?;
        if let Some(mut stdin) = child.stdin.take() {
            let text = statements.join("\n") + "\n";
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| DemoError::io(what.clone(), e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| DemoError::io(what.clone(), e))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || text.contains("ERROR") {
            return Err(DemoError::Postgres { what, output: text });
        }
        Ok(())
    }

    /// Starts the server on a free port (retrying if another process takes it).
    fn start(&mut self) -> Result<(), DemoError> {
        let log = self.log_path();
        let mut last = String::new();
        for _ in 0..10 {
            let port = free_port()?;
            let out = self
                .tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o"])
                .arg(format!("-p {port}"))
                .arg("start")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| DemoError::io("running pg_ctl start".into(), e))?;
            if out.status.success() {
                self.port = port;
                self.running = true;
                self.watchdog = self.spawn_watchdog();
                return Ok(());
            }
            last = format!(
                "{}{}\nserver log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(&log).unwrap_or_default()
            );
            if !(last.contains("could not bind") || last.contains("Address already in use")) {
                break;
            }
            let _ = fs::write(&log, "");
        }
        Err(DemoError::Postgres {
            what: "pg_ctl start".into(),
            output: last,
        })
    }

    /// Stops the server and removes the directory if this process dies without
    /// dropping the cluster (SIGKILL, abort). Killed by its handle on a normal stop.
    fn spawn_watchdog(&self) -> Option<Child> {
        let script = format!(
            "alive() {{ [ -d /proc/{pid} ] || ps -p {pid} >/dev/null 2>&1; }}; \
             while alive; do sleep 1; done; \
             '{pg_ctl}' -D '{data}' -m immediate -w stop >/dev/null 2>&1; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = self.install.bin("pg_ctl").display(),
            data = self.data().display(),
            dir = self.dir.display(),
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd.spawn().ok()
    }

    /// Stops the server (immediately: the data is thrown away) and removes the
    /// directory. Also done on drop; calling it twice is harmless.
    pub fn remove(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if self.running {
            self.running = false;
            let _ = self
                .tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if self.dir.exists() {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                eprintln!(
                    "pgwarden demo: could not remove {}: {e}",
                    self.dir.display()
                );
            }
        }
    }
}

impl Drop for DemoCluster {
    fn drop(&mut self) {
        self.remove();
    }
}

fn append(path: &Path, text: &str) -> Result<(), DemoError> {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| DemoError::io(format!("opening {}", path.display()), e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| DemoError::io(format!("writing {}", path.display()), e))
}
