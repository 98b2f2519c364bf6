//! A session's way to a classification: its own last few statements, then the
//! classifier's shared caches, by a statement's literal-insensitive shape when it has
//! one (`classify::literals`), so that statements with inlined literals still hit.

use std::sync::Arc;

use crate::classify::literals::{shape_into, Shape};
use crate::classify::{SessionFacts, Statement};
use crate::session::recent::Recent;
use crate::session::Shared;

/// One session's classification cache: the last few classifications, in front of
/// the shared caches, and scratch space for a statement's shape (reused: no
/// allocation per statement once it has grown).
#[derive(Default)]
pub(super) struct SessionCache {
    recent: Recent,
    shape: Shape,
}

/// Classifies a statement's text through the shared caches, by its
/// literal-insensitive shape when it has one (`shape` holds it on return, if any),
/// and says whether the classification is the shape's. `Guard::decide` and `Guard::classify_ahead` share it, so the work done
/// ahead fills exactly the entry `decide` looks up. Parse times go to the
/// `classify_seconds` histogram.
pub(super) fn classify_text(
    shared: &Shared,
    text: &str,
    facts: &SessionFacts,
    shape: &mut Shape,
) -> (Arc<[Statement]>, bool) {
    let shaped = shared.classifier.cache_capacity() > 0 && shape_into(text, facts, shape);
    classify_shaped(shared, text, facts, shaped.then_some(&*shape))
}

fn classify_shaped(
    shared: &Shared,
    text: &str,
    facts: &SessionFacts,
    shape: Option<&Shape>,
) -> (Arc<[Statement]>, bool) {
    let histogram = &shared.metrics.classify_seconds;
    shared
        .classifier
        .classify_shaped(text, shape, facts, |t| histogram.observe(t.as_secs_f64()))
}

impl SessionCache {
    /// Classifies through the session's memory of its last few statements (by shape,
    /// for shapes that stand for their statements; else by text), then the shared
    /// caches.
    pub(super) fn classify(
        &mut self,
        shared: &Shared,
        text: &str,
        facts: &SessionFacts,
    ) -> Arc<[Statement]> {
        if shared.classifier.cache_capacity() == 0 {
            return classify_text(shared, text, facts, &mut self.shape).0;
        }
        // A shape key holds a NUL and no text does: the two never meet in `recent`.
        let shaped = shape_into(text, facts, &mut self.shape);
        if shaped {
            if let Some(v) = self.recent.get(self.shape.key().as_bytes(), facts) {
                shared.classifier.count_hit();
                return v;
            }
        }
        if let Some(v) = self.recent.get(text.as_bytes(), facts) {
            shared.classifier.count_hit();
            return v;
        }
        let (v, by_shape) = classify_shaped(shared, text, facts, shaped.then_some(&self.shape));
        let key = if by_shape { self.shape.key() } else { text };
        self.recent.insert(key.as_bytes(), facts, Arc::clone(&v));
        v
    }
}
