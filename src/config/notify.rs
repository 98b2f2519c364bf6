//! The `[notify]` section: webhooks told about holds (raw form and validation).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::raw::RawCount;
use super::validate::Ctx;
use super::{AdminConfig, ConfigError};

/// The hold events a webhook can ask for (the audit log's names).
pub const EVENTS: [&str; 5] = ["hold", "approve", "deny", "expire", "withdraw"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub page_url: Option<String>,
    pub queue: Option<RawCount>,
    #[serde(default)]
    pub webhooks: BTreeMap<String, RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    pub format: Option<String>,
    pub secret_env: Option<String>,
    pub events: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub retries: Option<RawCount>,
    pub backoff: Option<String>,
    pub ca: Option<String>,
}

/// Validated `[notify]`.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The approver page's address, linked from every notification.
    pub page_url: Option<String>,
    /// Events waiting per webhook; when full, new ones are dropped (and counted).
    pub queue: usize,
    /// In name order.
    pub webhooks: Vec<WebhookConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// pgwarden's own JSON body.
    Json,
    /// A Slack incoming-webhook body (`text` and `blocks`).
    Slack,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    pub format: WebhookFormat,
    /// Environment variable holding the HMAC-SHA256 signing key.
    pub secret_env: Option<String>,
    /// Which of `EVENTS` it is sent.
    pub events: Vec<String>,
    /// Limit of one delivery attempt (connect, TLS, request, response head).
    pub timeout: Duration,
    /// Attempts after the first one.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one (at most a minute).
    pub backoff: Duration,
    /// Extra CA certificate (PEM) for an https receiver with a private CA.
    pub ca: Option<PathBuf>,
}

pub(super) fn validate(
    cx: &Ctx,
    raw: Option<RawNotify>,
    admin: Option<&AdminConfig>,
) -> Result<Option<NotifyConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let page_url = match raw.page_url {
        Some(u) => {
            check_url(cx, "notify.page_url", &u)?;
            Some(u)
        }
        // The admin listener's address: right on one machine; set page_url for others.
        None => admin.map(|a| {
            let scheme = if a.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{}/ui", a.listen)
        }),
    };
    let queue = count(cx, "notify.queue", raw.queue, 1000)?;
    if !(1..=1_000_000).contains(&queue) {
        return Err(cx.err("notify.queue", "must be between 1 and 1000000"));
    }
    let mut webhooks = Vec::new();
    for (name, w) in raw.webhooks {
        let key = |k: &str| format!("notify.webhooks.{name}.{k}");
        check_url(cx, &key("url"), &w.url)?;
        let format = match w.format.as_deref().unwrap_or("json") {
            "json" => WebhookFormat::Json,
            "slack" => WebhookFormat::Slack,
            other => {
                return Err(cx.err(
                    key("format"),
                    format!("unknown format {other:?} (expected json or slack)"),
                ))
            }
        };
        if w.secret_env.as_deref() == Some("") {
            return Err(cx.err(key("secret_env"), "must name an environment variable"));
        }
        let events = match w.events {
            None => EVENTS.iter().map(|e| e.to_string()).collect(),
            Some(list) => {
                for e in &list {
                    if !EVENTS.contains(&e.as_str()) {
                        return Err(cx.err(
                            key("events"),
                            format!("unknown event {e:?} (expected {})", EVENTS.join(", ")),
                        ));
                    }
                }
                list
            }
        };
        let timeout = cx.duration(&key("timeout"), w.timeout.as_ref(), Duration::from_secs(5))?;
        if timeout.is_zero() {
            return Err(cx.err(key("timeout"), "must be longer than zero"));
        }
        let retries = count(cx, &key("retries"), w.retries, 3)?;
        if retries > 20 {
            return Err(cx.err(key("retries"), "must be at most 20"));
        }
        webhooks.push(WebhookConfig {
            url: w.url,
            format,
            secret_env: w.secret_env,
            events,
            timeout,
            retries: retries as u32,
            backoff: cx.duration(&key("backoff"), w.backoff.as_ref(), Duration::from_secs(1))?,
            ca: w.ca.as_deref().map(|p| cx.path(p)),
            name,
        });
    }
    Ok(Some(NotifyConfig {
        page_url,
        queue: queue as usize,
        webhooks,
    }))
}

/// A number written as an integer, or as text (environment overrides arrive as text).
fn count(cx: &Ctx, key: &str, v: Option<RawCount>, default: u64) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(RawCount::Number(n)) => Ok(n),
        Some(RawCount::Text(t)) => t
            .trim()
            .parse()
            .map_err(|_| cx.err(key, format!("expected a number, not {t:?}"))),
    }
}

fn check_url(cx: &Ctx, key: &str, url: &str) -> Result<(), ConfigError> {
    let ok = url
        .parse::<axum::http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
        .is_some_and(|u| u.host().is_some_and(|h| !h.is_empty()));
    if ok {
        Ok(())
    } else {
        Err(cx.err(
            key,
            format!("invalid URL {url:?} (expected http://HOST[:PORT]/PATH or https://…)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    const T: &str = "[targets.a]\nhost = \"h\"\nenvironment = \"e\"\n";

    fn load(notify: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(
            &format!("[admin]\nlisten = \"127.0.0.1:9187\"\n{T}{notify}"),
            "p.toml",
        )
    }

    #[test]
    fn webhooks_validate_with_defaults() {
        let c = load(
            "[notify.webhooks.ops]\nurl = \"https://hooks.example/pgw\"\nsecret_env = \"S\"\n\
             [notify.webhooks.chat]\nurl = \"http://127.0.0.1:9/x\"\nformat = \"slack\"\n\
             events = [\"hold\"]\ntimeout = \"2s\"\nretries = 0\nbackoff = \"100ms\"\n",
        )
        .unwrap();
        let n = c.notify.unwrap();
        assert_eq!(n.page_url.as_deref(), Some("http://127.0.0.1:9187/ui"));
        assert_eq!(n.queue, 1000);
        let [chat, ops] = &n.webhooks[..] else {
            panic!("{:?}", n.webhooks)
        };
        assert_eq!(
            (chat.name.as_str(), chat.format),
            ("chat", WebhookFormat::Slack)
        );
        assert_eq!(chat.events, vec!["hold"]);
        assert_eq!(
            (chat.timeout, chat.retries, chat.backoff),
            (Duration::from_secs(2), 0, Duration::from_millis(100))
        );
        assert_eq!(ops.format, WebhookFormat::Json);
        assert_eq!(ops.events.len(), 5);
        assert_eq!((ops.timeout, ops.retries), (Duration::from_secs(5), 3));
        assert_eq!(ops.secret_env.as_deref(), Some("S"));
        assert!(load("").unwrap().notify.is_none());
    }

    #[test]
    fn bad_webhooks_name_their_key() {
        for (text, line, needle) in [
            (
                "[notify.webhooks.a]\nurl = \"ftp://x/\"\n",
                7,
                "notify.webhooks.a.url",
            ),
            (
                "[notify.webhooks.a]\nurl = \"hooks\"\n",
                7,
                "notify.webhooks.a.url",
            ),
            (
                "[notify.webhooks.a]\nurl = \"http://x/\"\nformat = \"xml\"\n",
                8,
                "notify.webhooks.a.format",
            ),
            (
                "[notify.webhooks.a]\nurl = \"http://x/\"\nevents = [\"held\"]\n",
                8,
                "unknown event \"held\"",
            ),
            (
                "[notify.webhooks.a]\nurl = \"http://x/\"\nretries = 99\n",
                8,
                "at most 20",
            ),
            (
                "[notify.webhooks.a]\nurl = \"http://x/\"\nsecret = \"inline\"\n",
                8,
                "unknown field `secret`",
            ),
            ("[notify]\nqueue = 0\n", 7, "notify.queue"),
        ] {
            let e = load(text).unwrap_err();
            let shown = e.to_string();
            assert_eq!(e.line, Some(line), "{shown}");
            assert!(shown.contains(needle), "{shown:?} lacks {needle:?}");
        }
    }

    #[test]
    fn the_example_notify_section_validates() {
        let example = include_str!("../../proxy.toml.example");
        let start = example
            .find("# [notify]\n")
            .expect("proxy.toml.example has [notify]");
        let block: String = example[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("# "))
            .map(|l| format!("{l}\n"))
            .collect();
        let n = load(&block).unwrap().notify.unwrap();
        assert_eq!(n.webhooks[0].name, "ops");
        assert_eq!(n.webhooks[0].retries, 3);
        assert_eq!(
            n.page_url.as_deref(),
            Some("https://pgwarden.internal:9187/ui")
        );
    }
}
