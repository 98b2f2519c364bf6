//! Wiring: TLS material, the listener, one task per connection, the connection limit,
//! and graceful drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::Config;
use crate::protocol::{originate, sqlstate::SqlState};
use crate::session;
use crate::shared::{self, Shared};

/// Errors that stop the proxy from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Build(#[from] crate::shared::BuildError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// A proxy started with `start`; call `shutdown` to drain and stop it.
pub struct RunningProxy {
    /// Kept alive for as long as the proxy runs.
    _policy_watch: Option<notify::RecommendedWatcher>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl RunningProxy {
    /// The address the proxy listens on for PostgreSQL clients.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin HTTP listener's address, when one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// What the sessions share (policy, holds…), for embedding and tests.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, lets in-flight statements finish up to the grace period,
    /// closes every session, then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept.await;
    }

    /// Waits until the proxy stops (after `shutdown` from elsewhere).
    pub async fn wait(self) {
        let _ = self.accept.await;
    }
}

/// Binds the listener of `config` and serves in background tasks.
pub async fn start(config: Config) -> Result<RunningProxy, StartError> {
    let config = Arc::new(config);
    let shared = Arc::new(shared::build(Arc::clone(&config))?);
    let listen = config.server.listen.clone();
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: listen,
        source,
    })?;
    let (tx, rx) = watch::channel(false);
    let admin_addr = match &config.admin {
        None => None,
        Some(a) => {
            let l = TcpListener::bind(&a.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: a.listen.clone(),
                    source,
                })?;
            let admin_addr = l.local_addr().map_err(|source| StartError::Bind {
                addr: a.listen.clone(),
                source,
            })?;
            let router = crate::admin::router(crate::admin::AdminState::new(Arc::clone(&shared)));
            match &a.tls {
                None => serve_admin(l, router, rx.clone()),
                Some((cert, key)) => {
                    let acceptor =
                        tokio_rustls::TlsAcceptor::from(crate::tls::server_config(cert, key)?);
                    let l =
                        crate::admin::https::TlsListener::new(l, acceptor).map_err(|source| {
                            StartError::Bind {
                                addr: a.listen.clone(),
                                source,
                            }
                        })?;
                    serve_admin(l, router, rx.clone());
                }
            }
            info!(addr = %admin_addr, https = a.tls.is_some(), "admin API listening");
            Some(admin_addr)
        }
    };
    shared.holds.start_store();
    crate::notify::start(&shared)?;
    tokio::spawn(shared.holds.clone().run_expiry(|h| {
        info!(hold = h.id, user = %h.user, target = %h.target, "held statement expired");
    }));
    if let Some(t) = shared.config.trash.clone() {
        tokio::spawn(crate::trash::retention::run(
            Arc::clone(&shared),
            t,
            rx.clone(),
        ));
    }
    shared::record_reload(&shared, "startup", Ok(shared.policy().sha256().to_string()));
    let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared), rx));
    info!(%addr, "pgwarden listening");
    let policy_watch = shared::watch_policy(&shared);
    Ok(RunningProxy {
        _policy_watch: policy_watch,
        addr,
        admin_addr,
        shared,
        shutdown: tx,
        accept,
    })
}

/// Serves the admin router on `listener` until shutdown.
fn serve_admin<L>(listener: L, router: axum::Router, mut stop: watch::Receiver<bool>)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|v| *v).await;
        });
        if let Err(e) = serve.await {
            warn!(error = %e, "admin listener failed");
        }
    });
}

/// How long sessions get, after the grace period, to close once their statements
/// are cancelled on the server.
const CANCELLED_CLOSE: Duration = Duration::from_secs(5);

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = Arc::clone(&shared.config);
    let limit = Arc::new(Semaphore::new(cfg.server.max_connections));
    let starting = crate::startup_gate::StartupGate::new(
        cfg.server.max_starting,
        cfg.server.max_starting_per_client,
    );
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                session::upstream::tune(&tcp, cfg.server.tcp_keepalive);
                shared.metrics.connections.inc();
                let startup = match starting.enter(peer.ip()) {
                    Ok(p) => p,
                    Err(why) => {
                        shared.metrics.connections_rejected.inc();
                        sessions.spawn(reject_busy(tcp, starting_message(why)));
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                    shared.metrics.connections_rejected.inc();
                    sessions.spawn(reject_busy(
                        tcp,
                        "sorry, too many clients already (pgwarden server.max_connections)",
                    ));
                    continue;
                };
                let shared = Arc::clone(&shared);
                let rx = shutdown.clone();
                sessions.spawn(async move {
                    shared.metrics.connections_active.inc();
                    session::serve(tcp, peer, Arc::clone(&shared), rx, startup).await;
                    shared.metrics.connections_active.dec();
                    drop(permit);
                });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    // Held statements never run once shutdown starts.
    shared.holds.close();
    let grace = cfg.server.shutdown_grace;
    info!(sessions = sessions.len(), ?grace, "draining");
    let drained = tokio::time::timeout(grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        // Cut without a trace, a running statement would go on on the server after
        // pgwarden exits: cancel it there. It ends with 57014 (recorded as its
        // outcome), and its now idle session closes with 57P01 like the others.
        warn!(
            sessions = sessions.len(),
            "grace period over: cancelling running statements on the server"
        );
        session::cancel_all(&shared).await;
        let closed = tokio::time::timeout(CANCELLED_CLOSE, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        if closed.is_err() {
            warn!(
                sessions = sessions.len(),
                "sessions still busy after the cancel, closing them"
            );
            sessions.abort_all();
            while sessions.join_next().await.is_some() {}
        }
    }
    info!("stopped");
}

fn starting_message(why: crate::startup_gate::Refused) -> &'static str {
    match why {
        crate::startup_gate::Refused::Overall => {
            "sorry, too many connections are starting up (pgwarden server.max_starting)"
        }
        crate::startup_gate::Refused::PerClient => {
            "sorry, too many connections from this address are starting up \
             (pgwarden server.max_starting_per_client)"
        }
    }
}

async fn reject_busy(mut tcp: TcpStream, message: &str) {
    let msg = originate::fatal(SqlState::TOO_MANY_CONNECTIONS, message);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        use tokio::io::AsyncWriteExt;
        let _ = tcp.write_all(&msg).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// The runtime `serve` runs on. One worker thread is a current-thread runtime: sessions,
/// the accept loop and the admin API share one thread, so a message relayed costs no
/// cross-thread wake-ups (the main cost of a multi-threaded runtime on small machines).
pub fn runtime(config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    match config.server.worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = n {
                b.worker_threads(n);
            }
            b.enable_all().build()
        }
    }
}

/// Runs the proxy until SIGTERM or SIGINT, then drains. SIGHUP reloads the policy.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let proxy = start(config).await?;
    #[cfg(unix)]
    {
        let shared = Arc::clone(proxy.shared());
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let _ = shared::reload_policy(&shared, "sighup");
                }
            });
        }
        let shared = Arc::clone(proxy.shared());
        if let Ok(mut usr1) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        {
            tokio::spawn(async move {
                while usr1.recv().await.is_some() {
                    info!("SIGUSR1: reopening the audit log");
                    shared.audit.reopen();
                }
            });
        }
    }
    wait_for_signal().await;
    info!("shutdown requested");
    proxy.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
