//! Opening the control database connection: the connection string from the config,
//! the password read from its variable or file at each attempt (never logged), TLS
//! as for targets, and a task that drives the connection and passes notifications on.

use std::future::poll_fn;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::config::{ControlConfig, UpstreamTlsMode};

/// Opens a connection. `notifications` receives each NOTIFY's channel and payload;
/// it closes when the connection ends.
pub async fn connect(
    cfg: &ControlConfig,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> Result<(Client, mpsc::UnboundedReceiver<(String, String)>), String> {
    let mut pg: tokio_postgres::Config = cfg
        .url
        .parse()
        .map_err(|_| "invalid control.url connection string".to_string())?;
    if let Some(source) = &cfg.password {
        pg.password(source.read()?);
    }
    pg.application_name("pgwarden-control");
    pg.connect_timeout(cfg.connect_timeout);
    pg.keepalives(true);
    pg.keepalives_idle(cfg.replica_timeout / 2);
    let (tx, rx) = mpsc::unbounded_channel();
    let describe = |e: tokio_postgres::Error| e.to_string();
    let client = match (cfg.tls_mode, tls) {
        (UpstreamTlsMode::Disable, _) | (_, None) => {
            pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, conn) = pg.connect(NoTls).await.map_err(describe)?;
            spawn_driver(conn, tx);
            client
        }
        (mode, Some(tls)) => {
            pg.ssl_mode(if mode == UpstreamTlsMode::Prefer {
                tokio_postgres::config::SslMode::Prefer
            } else {
                tokio_postgres::config::SslMode::Require
            });
            let make = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
            let (client, conn) = pg.connect(make).await.map_err(describe)?;
            spawn_driver(conn, tx);
            client
        }
    };
    Ok((client, rx))
}

/// Drives the connection (tokio-postgres needs it polled) and forwards NOTIFY
/// payloads; ends, dropping the sender, when the connection does.
fn spawn_driver<S, T>(
    mut conn: tokio_postgres::Connection<S, T>,
    tx: mpsc::UnboundedSender<(String, String)>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    // Payloads are a few bytes each and consumed as they come.
                    let note = (n.channel().to_string(), n.payload().to_string());
                    if tx.send(note).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "control database connection failed");
                    return;
                }
                None => return,
            }
        }
    });
}
