//! Opening pgwarden's own connection to a target for `pgwarden trash` (list,
//! restore, purge): the connection string as given, the password from a variable
//! or a file (never logged, never on the command line), TLS as for targets.

use std::path::Path;

use tokio_postgres::{Client, NoTls};

use crate::config::{PasswordSource, UpstreamTlsMode};

/// Connects; the error is the server's or the client library's message.
pub async fn connect(
    url: &str,
    password: Option<&PasswordSource>,
    tls_mode: UpstreamTlsMode,
    ca: Option<&Path>,
) -> Result<Client, String> {
    let mut pg: tokio_postgres::Config = url
        .parse()
        .map_err(|_| "invalid connection string".to_string())?;
    if let Some(source) = password {
        pg.password(source.read()?);
    }
    pg.application_name("pgwarden-trash");
    pg.connect_timeout(std::time::Duration::from_secs(10));
    let tls = crate::tls::upstream_config(tls_mode, ca).map_err(|e| e.to_string())?;
    let describe = |e: tokio_postgres::Error| e.to_string();
    match tls {
        None => {
            pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, conn) = pg.connect(NoTls).await.map_err(describe)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(client)
        }
        Some(tls) => {
            pg.ssl_mode(if tls_mode == UpstreamTlsMode::Prefer {
                tokio_postgres::config::SslMode::Prefer
            } else {
                tokio_postgres::config::SslMode::Require
            });
            let make = tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone());
            let (client, conn) = pg.connect(make).await.map_err(describe)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(client)
        }
    }
}

/// The table `pgwarden trash list` prints.
pub fn format_list(items: &[super::registry::Item]) -> String {
    if items.is_empty() {
        return "the trash is empty\n".to_string();
    }
    let mut out = format!(
        "{:>5}  {:<30}  {:<20}  {:<12}  {:>12}  {}\n",
        "ID", "ORIGINAL", "TRASHED (UTC)", "BY", "BYTES", "EXPIRES"
    );
    for i in items {
        let also = i.moved.len().saturating_sub(1) + i.removed.len();
        out.push_str(&format!(
            "{:>5}  {:<30}  {:<20}  {:<12}  {:>12}  {}{}\n",
            i.id,
            i.original(),
            i.trashed_at,
            i.trashed_by,
            i.size_bytes,
            i.expires_at.as_deref().unwrap_or("never"),
            if i.expired { " (expired)" } else { "" },
        ));
        if also > 0 {
            out.push_str(&format!(
                "       with {} more object(s) and {} removed foreign key(s)\n",
                i.moved.len().saturating_sub(1),
                i.removed.len()
            ));
        }
    }
    out
}
