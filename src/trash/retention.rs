//! The proxy's retention purge (`[trash]`): every `purge_interval`, with pgwarden's
//! own credential for the target, it purges the items whose retention has passed
//! (a `purge` audit event each) and sets `pgwarden_trash_bytes` for the target. A
//! run that fails is logged and retried at the next interval.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::TrashConfig;
use crate::shared::Shared;

/// One purge run: the items purged, or why the run failed.
async fn purge_once(shared: &Shared, cfg: &TrashConfig) -> Result<usize, String> {
    let c = super::connect::connect(
        &cfg.url,
        cfg.password.as_ref(),
        cfg.tls_mode,
        cfg.tls_ca.as_deref(),
    )
    .await?;
    let purged = super::run::purge_expired(&c)
        .await
        .map_err(|e| e.to_string())?;
    for item in &purged {
        tracing::info!(target_name = %cfg.target, item = item.id, table = %item.original(), "trash: purged an expired item");
        shared
            .audit
            .record(crate::audit::Event::Purge(crate::audit::PurgeEvent {
                target: cfg.target.clone(),
                item: item.id,
                original: item.original(),
                size_bytes: item.size_bytes,
                reason: "expired".to_string(),
                approver: None,
                cli: None,
            }));
    }
    let bytes = super::run::size(&c).await.map_err(|e| e.to_string())?;
    shared
        .metrics
        .trash_bytes
        .get_or_create(&crate::metrics::TargetLabels {
            target: cfg.target.clone(),
        })
        .set(bytes);
    Ok(purged.len())
}

/// Runs a purge at once and then every `purge_interval`, until `stop` turns true.
pub async fn run(shared: Arc<Shared>, cfg: TrashConfig, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(cfg.purge_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|v| *v) => return,
        }
        if let Err(e) = purge_once(&shared, &cfg).await {
            tracing::warn!(target_name = %cfg.target, error = %e, "trash: the purge run failed; retrying at the next interval");
        }
    }
}
