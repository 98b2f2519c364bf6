//! The guard's metrics: statements by decision and class family, bytes each way,
//! and how long holds waited.

use super::*;

impl Guard {
    pub(super) fn count(&mut self, outcome: Outcome, class: &'static str) {
        use crate::metrics::DecisionLabel as D;
        let decision = match outcome {
            Outcome::Allow => D::allow,
            Outcome::Audit => D::audit,
            Outcome::Block => D::block,
            Outcome::HoldSelf | Outcome::HoldApprover => D::hold,
            Outcome::Planned => D::planned,
            Outcome::Confirmed => D::confirmed,
            Outcome::BadToken => D::bad_token,
            Outcome::Shadowed => D::shadowed,
            Outcome::Trashed => D::trash,
        };
        // Cached per session: the shared family is looked up (and its label strings
        // built) once per decision kind, not once per statement.
        let key = (decision, class);
        let i = match self.counters.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let counter = self
                    .shared
                    .metrics
                    .statements
                    .get_or_create(&crate::metrics::StatementLabels {
                        target: self.target.name.clone(),
                        decision: key.0.clone(),
                        class: class.to_string(),
                    })
                    .clone();
                self.counters.push((key, counter));
                self.counters.len() - 1
            }
        };
        let counter = &self.counters[i].1;
        counter.inc();
    }

    /// Byte counters for the relay (cached handles: no lookup per read).
    pub fn byte_counters(
        &self,
    ) -> (
        prometheus_client::metrics::counter::Counter,
        prometheus_client::metrics::counter::Counter,
    ) {
        use crate::metrics::{Direction, DirectionLabels};
        let m = &self.shared.metrics.bytes;
        // One lookup at a time: `get_or_create` holds the family's lock in its guard,
        // and inserting the second label set needs the write lock.
        let inbound = m
            .get_or_create(&DirectionLabels {
                direction: Direction::client_to_server,
            })
            .clone();
        let outbound = m
            .get_or_create(&DirectionLabels {
                direction: Direction::server_to_client,
            })
            .clone();
        (inbound, outbound)
    }

    /// Records how long a hold waited.
    pub fn observe_hold(&self, waited: std::time::Duration, r: &Resolution) {
        let resolution = match r {
            Resolution::Approved { .. } => "approved",
            Resolution::Denied { .. } => "denied",
            Resolution::Expired => "expired",
            Resolution::Shutdown => "shutdown",
            Resolution::Withdrawn { .. } => "withdrawn",
        };
        self.shared
            .metrics
            .hold_wait_seconds
            .get_or_create(&crate::metrics::ResolutionLabels {
                resolution: resolution.to_string(),
            })
            .observe(waited.as_secs_f64());
    }
}
