//! Prometheus metrics (`pgwarden_` prefix) with bounded label sets: targets come
//! from the configuration, decisions and class families from fixed enums. Never
//! SQL text or ids.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DecisionLabel {
    allow,
    audit,
    block,
    hold,
    confirmed,
    /// Would be held; released by an approved plan.
    planned,
    bad_token,
    shadowed,
    /// Carried out by a trash rule.
    trash,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatementLabels {
    pub target: String,
    pub decision: DecisionLabel,
    /// The class family (`drop`, `delete`, `read`…) of the statement's strictest class.
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Direction {
    client_to_server,
    server_to_client,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    pub direction: Direction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResolutionLabels {
    pub resolution: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum NotifyResult {
    /// The receiver answered 2xx.
    sent,
    /// One attempt failed and another follows.
    retried,
    /// Every attempt failed: the notification is lost (logged).
    failed,
    /// The webhook's queue was full: never sent (logged).
    dropped,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    /// The webhook's name in `[notify.webhooks]`.
    pub webhook: String,
    pub result: NotifyResult,
}

/// Every metric pgwarden exports.
pub struct Metrics {
    registry: Registry,
    pub connections_active: Gauge,
    pub connections: Counter,
    pub connections_rejected: Counter,
    pub statements: Family<StatementLabels, Counter>,
    pub holds_pending: Gauge,
    pub hold_wait_seconds: Family<ResolutionLabels, Histogram>,
    pub classify_seconds: Histogram,
    pub classifier_cache_hits: Counter,
    pub classifier_cache_misses: Counter,
    pub upstream_connect_errors: Family<TargetLabels, Counter>,
    pub bytes: Family<DirectionLabels, Counter>,
    pub policy_reloads: Family<ResultLabels, Counter>,
    pub audit_write_errors: Counter,
    pub audit_healthy: Gauge,
    /// 1 while holds can be recorded (always, without a control database).
    pub control_up: Gauge,
    pub notifications: Family<NotifyLabels, Counter>,
    /// Bytes kept in a target's trash, as the last purge run read it (`[trash]`).
    pub trash_bytes: Family<TargetLabels, Gauge>,
    seen_hits: AtomicU64,
    seen_misses: AtomicU64,
    seen_audit_errors: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pgwarden");
        let m = Metrics {
            connections_active: Gauge::default(),
            connections: Counter::default(),
            connections_rejected: Counter::default(),
            statements: Family::default(),
            holds_pending: Gauge::default(),
            hold_wait_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1.0, 2.0, 12))
            }),
            classify_seconds: Histogram::new(exponential_buckets(1e-6, 2.0, 20)),
            classifier_cache_hits: Counter::default(),
            classifier_cache_misses: Counter::default(),
            upstream_connect_errors: Family::default(),
            bytes: Family::default(),
            policy_reloads: Family::default(),
            audit_write_errors: Counter::default(),
            audit_healthy: Gauge::default(),
            control_up: Gauge::default(),
            notifications: Family::default(),
            trash_bytes: Family::default(),
            seen_hits: AtomicU64::new(0),
            seen_misses: AtomicU64::new(0),
            seen_audit_errors: AtomicU64::new(0),
            registry: Registry::default(),
        };
        registry.register(
            "connections_active",
            "Client sessions open now",
            m.connections_active.clone(),
        );
        registry.register(
            "connections",
            "Client connections accepted",
            m.connections.clone(),
        );
        registry.register(
            "connections_rejected",
            "Client connections refused at the connection limit",
            m.connections_rejected.clone(),
        );
        registry.register(
            "statements",
            "Statement-bearing messages by target, decision and class family",
            m.statements.clone(),
        );
        registry.register(
            "trash_bytes",
            "Bytes kept in the target's trash, read by the proxy's purge run ([trash])",
            m.trash_bytes.clone(),
        );
        registry.register(
            "control_up",
            "1 while holds can be recorded: the control database is connected (always 1 without [control])",
            m.control_up.clone(),
        );
        registry.register(
            "holds_pending",
            "This process's statements waiting for an approver",
            m.holds_pending.clone(),
        );
        registry.register(
            "hold_wait_seconds",
            "How long held statements waited, by resolution",
            m.hold_wait_seconds.clone(),
        );
        registry.register(
            "classify_seconds",
            "Time to parse and classify SQL the classifier cache did not hold (hits take well under a microsecond and are counted in classifier_cache_hits)",
            m.classify_seconds.clone(),
        );
        registry.register(
            "classifier_cache_hits",
            "Classifications served from the cache",
            m.classifier_cache_hits.clone(),
        );
        registry.register(
            "classifier_cache_misses",
            "Classifications that parsed the SQL",
            m.classifier_cache_misses.clone(),
        );
        registry.register(
            "upstream_connect_errors",
            "Failed connections to a target",
            m.upstream_connect_errors.clone(),
        );
        registry.register("bytes", "Protocol bytes relayed", m.bytes.clone());
        registry.register(
            "policy_reloads",
            "Policy reload attempts by result",
            m.policy_reloads.clone(),
        );
        registry.register(
            "audit_write_errors",
            "Audit log write or sync failures",
            m.audit_write_errors.clone(),
        );
        registry.register(
            "audit_healthy",
            "1 when the audit log is writable (or disabled)",
            m.audit_healthy.clone(),
        );
        registry.register(
            "notifications",
            "Webhook notifications about holds by webhook and result",
            m.notifications.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Brings values kept elsewhere (classifier cache, audit log, holds) up to date
    /// and renders the OpenMetrics text.
    pub fn render(
        &self,
        cache: (u64, u64),
        audit_errors: u64,
        audit_healthy: bool,
        holds: usize,
    ) -> String {
        let delta =
            |seen: &AtomicU64, now: u64| now.saturating_sub(seen.swap(now, Ordering::Relaxed));
        self.classifier_cache_hits
            .inc_by(delta(&self.seen_hits, cache.0));
        self.classifier_cache_misses
            .inc_by(delta(&self.seen_misses, cache.1));
        self.audit_write_errors
            .inc_by(delta(&self.seen_audit_errors, audit_errors));
        self.audit_healthy.set(i64::from(audit_healthy));
        self.holds_pending.set(holds as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_prefix_and_labels() {
        let m = Metrics::new();
        m.statements
            .get_or_create(&StatementLabels {
                target: "prod".into(),
                decision: DecisionLabel::block,
                class: "drop".into(),
            })
            .inc();
        let text = m.render((5, 2), 0, true, 1);
        assert!(
            text.contains(
                "pgwarden_statements_total{target=\"prod\",decision=\"block\",class=\"drop\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("pgwarden_classifier_cache_hits_total 5"));
        assert!(text.contains("pgwarden_holds_pending 1"));
        let again = m.render((7, 2), 0, true, 0);
        assert!(again.contains("pgwarden_classifier_cache_hits_total 7"));
        assert!(again.ends_with("# EOF\n"));
    }
}
