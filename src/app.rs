//! Wiring: listeners, per-connection tasks, signals and graceful drain.

use std::net::SocketAddr;

use crate::config::Config;

/// A proxy started with `start`; dropping it does not stop it, call `shutdown`.
pub struct RunningProxy {
    addr: SocketAddr,
}

impl RunningProxy {
    /// The address the proxy listens on for PostgreSQL clients.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The admin HTTP listener's address, when one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        None
    }
    /// Stops accepting, drains sessions up to the grace period, then returns.
    pub async fn shutdown(self) {}
}

/// Binds the listeners of `config` and serves in background tasks.
pub async fn start(_config: Config) -> std::io::Result<RunningProxy> {
    Err(std::io::Error::other("not implemented yet"))
}
