//! `[notify]` webhooks: every hold event (hold, approve, deny, expire, withdraw) is
//! POSTed to each webhook that asked for it, as pgwarden's JSON or a Slack body,
//! signed with HMAC-SHA256. A dispatcher reads the hold queue's broadcast (which
//! never waits) and hands events to one bounded queue per webhook, dropping what does
//! not fit; one task per webhook delivers them with retries and backoff. So a slow,
//! failing or hanging receiver costs notifications (logged and counted in
//! `pgwarden_notifications_total`), never a session's time, and nothing here can
//! decide a hold.

mod body;
mod post;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::config::notify::WebhookConfig;
use crate::hold::HoldEvent;
use crate::metrics::{Metrics, NotifyLabels, NotifyResult};
use crate::shared::Shared;

pub use body::{generic, headline, signature, slack};

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(
        "notify.webhooks.{webhook}.secret_env: environment variable {var} is not set or empty"
    )]
    Secret { webhook: String, var: String },
    #[error("notify.webhooks.{webhook}: {message}")]
    Webhook { webhook: String, message: String },
}

/// One webhook, ready to send.
struct Hook {
    config: WebhookConfig,
    endpoint: post::Endpoint,
    secret: Option<Vec<u8>>,
    page_url: Option<String>,
}

impl Hook {
    fn new(config: &WebhookConfig, page_url: Option<String>) -> Result<Hook, NotifyError> {
        let fail = |message: String| NotifyError::Webhook {
            webhook: config.name.clone(),
            message,
        };
        let secret = match &config.secret_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(s) if !s.is_empty() => Some(s.into_bytes()),
                _ => {
                    return Err(NotifyError::Secret {
                        webhook: config.name.clone(),
                        var: var.clone(),
                    })
                }
            },
        };
        let tls = if config.url.starts_with("https:") {
            Some(
                crate::tls::webhook_config(config.ca.as_deref())
                    .map_err(|e| fail(e.to_string()))?,
            )
        } else {
            None
        };
        let endpoint = post::Endpoint::new(&config.url, tls).map_err(fail)?;
        Ok(Hook {
            config: config.clone(),
            endpoint,
            secret,
            page_url,
        })
    }

    fn count(&self, metrics: &Metrics, result: NotifyResult) {
        metrics
            .notifications
            .get_or_create(&NotifyLabels {
                webhook: self.config.name.clone(),
                result,
            })
            .inc();
    }

    /// Delivers one event: the first attempt and up to `retries` more.
    async fn deliver(&self, ev: &HoldEvent, metrics: &Metrics) {
        let body = body::render(self.config.format, ev, self.page_url.as_deref());
        let body = Bytes::from(body.to_string());
        let mut wait = self.config.backoff;
        for attempt in 0..=self.config.retries {
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut headers = vec![
                ("x-pgwarden-event", ev.kind.as_str().to_string()),
                ("x-pgwarden-timestamp", ts.to_string()),
            ];
            if let Some(secret) = &self.secret {
                headers.push(("x-pgwarden-signature", body::signature(secret, ts, &body)));
            }
            let error = match self
                .endpoint
                .post(&headers, body.clone(), self.config.timeout)
                .await
            {
                Ok(status) if (200..300).contains(&status) => {
                    debug!(webhook = %self.config.name, event = ev.kind.as_str(), hold = ev.hold.id, "webhook sent");
                    self.count(metrics, NotifyResult::sent);
                    return;
                }
                Ok(status) => format!("the receiver answered HTTP {status}"),
                Err(e) => e,
            };
            if attempt == self.config.retries {
                warn!(webhook = %self.config.name, event = ev.kind.as_str(), hold = ev.hold.id, attempts = attempt + 1, %error, "webhook notification failed; the hold itself is not affected");
                self.count(metrics, NotifyResult::failed);
                return;
            }
            debug!(webhook = %self.config.name, hold = ev.hold.id, attempt, %error, "webhook attempt failed, retrying");
            self.count(metrics, NotifyResult::retried);
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }
}

/// Starts the dispatcher and one delivery task per webhook. Subscribes before it
/// returns, so no event after this call is missed. Errors (an unset secret, a bad
/// CA file) stop pgwarden from starting: unsigned or unsendable notifications are
/// not a silent fallback.
pub fn start(shared: &Arc<Shared>) -> Result<(), NotifyError> {
    let Some(config) = &shared.config.notify else {
        return Ok(());
    };
    let mut queues = Vec::new();
    for w in &config.webhooks {
        let hook = Arc::new(Hook::new(w, config.page_url.clone())?);
        let (tx, rx) = mpsc::channel::<HoldEvent>(config.queue);
        queues.push((Arc::clone(&hook), tx));
        tokio::spawn(run_webhook(hook, rx, Arc::clone(shared)));
    }
    if queues.is_empty() {
        return Ok(());
    }
    let events = shared.holds.subscribe();
    tokio::spawn(dispatch(events, queues, Arc::clone(shared)));
    Ok(())
}

async fn run_webhook(hook: Arc<Hook>, mut rx: mpsc::Receiver<HoldEvent>, shared: Arc<Shared>) {
    while let Some(ev) = rx.recv().await {
        hook.deliver(&ev, &shared.metrics).await;
    }
}

async fn dispatch(
    mut events: tokio::sync::broadcast::Receiver<HoldEvent>,
    queues: Vec<(Arc<Hook>, mpsc::Sender<HoldEvent>)>,
    shared: Arc<Shared>,
) {
    let metrics = &shared.metrics;
    loop {
        match events.recv().await {
            Ok(ev) => {
                for (hook, tx) in &queues {
                    if !hook.config.events.iter().any(|e| e == ev.kind.as_str()) {
                        continue;
                    }
                    if tx.try_send(ev.clone()).is_err() {
                        warn!(webhook = %hook.config.name, event = ev.kind.as_str(), hold = ev.hold.id, "webhook queue full; notification dropped");
                        hook.count(metrics, NotifyResult::dropped);
                    }
                }
            }
            Err(RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "hold events came faster than webhooks could take them; notifications dropped"
                );
                for (hook, _) in &queues {
                    metrics
                        .notifications
                        .get_or_create(&NotifyLabels {
                            webhook: hook.config.name.clone(),
                            result: NotifyResult::dropped,
                        })
                        .inc_by(n);
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}
