//! A session's way to a classification: its own last few statements, then the
//! classifier's shared cache, by a statement's literal-insensitive shape when it has one.

use std::sync::Arc;

use crate::classify::{SessionFacts, Statement};
use crate::session::recent::Recent;
use crate::session::Shared;

/// One session's classification cache: the last few classifications, in front of
/// the shared cache, and scratch space for a statement's shape (reused: no
/// allocation per statement).
#[derive(Default)]
pub(super) struct SessionCache {
    recent: Recent,
    shape: Vec<u8>,
}

/// Classifies a statement's text through the shared cache, by its
/// literal-insensitive shape when it has one (so inlined numbers still hit the
/// cache); `shape` holds that shape, if any, on return. `Guard::decide` and
/// `Guard::classify_ahead` share it, so the work done ahead fills exactly the entry
/// `decide` looks up. Parse times go to the `classify_seconds` histogram.
pub(super) fn classify_text(
    shared: &Shared,
    text: &str,
    facts: &SessionFacts,
    shape: &mut Vec<u8>,
) -> Arc<[Statement]> {
    let key = if crate::session::shape::shape_into(text, shape) {
        // Only ASCII is ever written to a shape.
        std::str::from_utf8(shape).unwrap_or(text)
    } else {
        text
    };
    let histogram = &shared.metrics.classify_seconds;
    shared
        .classifier
        .classify_observed(key, facts, |t| histogram.observe(t.as_secs_f64()))
}

impl SessionCache {
    /// Classifies through the session's memory of its last few statements, then the
    /// shared cache.
    pub(super) fn classify(
        &mut self,
        shared: &Shared,
        text: &str,
        facts: &SessionFacts,
    ) -> Arc<[Statement]> {
        if shared.classifier.cache_capacity() == 0 {
            return classify_text(shared, text, facts, &mut self.shape);
        }
        if crate::session::shape::shape_into(text, &mut self.shape) {
            if let Some(v) = self.recent.get(&self.shape, facts) {
                shared.classifier.count_hit();
                return v;
            }
        } else if let Some(v) = self.recent.get(text.as_bytes(), facts) {
            shared.classifier.count_hit();
            return v;
        }
        let v = classify_text(shared, text, facts, &mut self.shape);
        let key = if self.shape.is_empty() {
            text.as_bytes()
        } else {
            &self.shape
        };
        self.recent.insert(key, facts, Arc::clone(&v));
        v
    }
}
