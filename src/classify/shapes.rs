//! The shape cache: a statement's classification by its literal-insensitive shape
//! (`literals.rs`), so that statements that differ only in their literals are parsed
//! once. A shape is stored only when classifying it — parameters in place of the
//! literals, which the classifier judges as standing for any value — gives exactly
//! the judgement of the statement as written; otherwise the shape is remembered as
//! one that never stands for its statements, and they are classified as written.
//! Bounded in entries and bytes; keyed on the shape and the session facts.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex};

use super::cache::PassThrough;
use super::literals::Shape;
use super::statement::{Class, SessionFacts, Statement};

const SHARDS: usize = 16;
/// Bytes of keys and values the cache keeps, in all.
pub const MAX_BYTES: usize = 16 << 20;

struct Slot {
    key: Box<str>,
    facts: SessionFacts,
    /// None: the shape does not stand for its statements.
    value: Option<Arc<[Statement]>>,
    bytes: usize,
}

#[derive(Default)]
struct Shard {
    map: HashMap<u64, Slot, BuildHasherDefault<PassThrough>>,
    bytes: usize,
}

/// What the cache knows of a shape.
#[derive(Debug)]
pub enum Lookup {
    /// The classification of every statement of this shape.
    Stands(Arc<[Statement]>),
    /// Statements of this shape are classified as written.
    Refused,
    Unknown,
}

pub struct Shapes {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    per_shard_bytes: usize,
    hasher: RandomState,
}

impl Shapes {
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Shapes {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            per_shard_bytes: max_bytes / SHARDS,
            hasher: RandomState::new(),
        }
    }

    fn hash(&self, key: &str, facts: &SessionFacts) -> u64 {
        let mut h = self.hasher.build_hasher();
        key.hash(&mut h);
        facts.hash(&mut h);
        h.finish()
    }

    pub fn get(&self, shape: &Shape, facts: &SessionFacts) -> Lookup {
        if self.per_shard == 0 {
            return Lookup::Unknown;
        }
        let h = self.hash(shape.key(), facts);
        let shard = self.shards[(h as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match shard.map.get(&h) {
            Some(s) if *s.key == *shape.key() && s.facts == *facts => match &s.value {
                Some(v) => Lookup::Stands(Arc::clone(v)),
                None => Lookup::Refused,
            },
            _ => Lookup::Unknown,
        }
    }

    pub fn insert(&self, shape: &Shape, facts: &SessionFacts, value: Option<Arc<[Statement]>>) {
        let bytes = 128
            + shape.key().len()
            + facts.client_encoding.len()
            + value.as_deref().map_or(0, |v| v.iter().map(size).sum());
        if self.per_shard == 0 || bytes > self.per_shard_bytes {
            return;
        }
        let h = self.hash(shape.key(), facts);
        let mut shard = self.shards[(h as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if shard.map.len() >= self.per_shard || shard.bytes + bytes > self.per_shard_bytes {
            shard.map.clear();
            shard.bytes = 0;
        }
        let slot = Slot {
            key: shape.key().into(),
            facts: facts.clone(),
            value,
            bytes,
        };
        if let Some(old) = shard.map.insert(h, slot) {
            shard.bytes -= old.bytes;
        }
        shard.bytes += bytes;
    }

    #[cfg(test)]
    fn totals(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), s| {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            (n + s.map.len(), b + s.bytes)
        })
    }
}

fn size(s: &Statement) -> usize {
    64 + s.sql.len()
        + s.fingerprint.len()
        + s.objects.iter().map(|o| o.len() + 24).sum::<usize>()
        + s.classes.len()
}

/// Classes the classifier gives when it cannot read a value (a WHERE it cannot
/// prove bounded, SQL text in a call it cannot read, a setting by an unknown name or
/// value), or that a value can turn into a neighbour (one setting's class or
/// another's). A shape with one of them never stands for its statements, even when
/// its first statement was judged the same: the next one's literals may be read.
fn value_dependent(c: Class) -> bool {
    matches!(
        c,
        Class::DeleteMaybeUnbounded
            | Class::UpdateMaybeUnbounded
            | Class::CodeOpaque
            | Class::Unparsed
            | Class::Unreadable
    ) || super::session::ALL_SPECIFIC.contains(&c)
}

/// The classification to store for a shape: `literal` (the statements as written)
/// with each statement's text taken from `shaped` (the shape's), when the shape's
/// classification is exactly the same, statement by statement, in every field but
/// the text and the fingerprint (classes, objects, catalog asks, and any field added
/// later); no statement prepares, runs or deallocates a prepared statement or asks
/// the catalog; and no class depends on values. None otherwise. Fingerprints are the
/// written statements' (a literal and a parameter are different nodes; literals of
/// the same kinds give the same fingerprint).
pub fn same_judgement(literal: &[Statement], shaped: &[Statement]) -> Option<Vec<Statement>> {
    if literal.is_empty() || literal.len() != shaped.len() {
        return None;
    }
    let judged = |x: &Statement| Statement {
        sql: String::new(),
        fingerprint: String::new(),
        ..x.clone()
    };
    literal
        .iter()
        .zip(shaped)
        .map(|(l, s)| {
            let same = judged(l) == judged(s)
                && l.prepares.is_none()
                && l.executes.is_none()
                && l.deallocates.is_none()
                && l.asks.is_empty()
                && !l.classes.iter().any(|&c| value_dependent(c));
            same.then(|| Statement {
                sql: s.sql.clone(),
                ..l.clone()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::literals::shape_into;

    fn shape(sql: &str) -> Shape {
        let mut s = Shape::default();
        assert!(shape_into(sql, &SessionFacts::default(), &mut s), "{sql}");
        s
    }

    fn value(sql: &str) -> Arc<[Statement]> {
        crate::classify::classify(sql, &SessionFacts::default()).into()
    }

    #[test]
    fn stores_refuses_and_keys_on_facts() {
        let c = Shapes::new(100, MAX_BYTES);
        let f = SessionFacts::default();
        let a = shape("SELECT 1");
        assert!(matches!(c.get(&a, &f), Lookup::Unknown));
        c.insert(&a, &f, Some(value("SELECT 1")));
        assert!(matches!(c.get(&shape("SELECT 2"), &f), Lookup::Stands(_)));
        let other = SessionFacts {
            client_encoding: "LATIN1".into(),
            ..SessionFacts::default()
        };
        assert!(matches!(c.get(&a, &other), Lookup::Unknown));
        // A string literal is another kind: another shape.
        assert!(matches!(c.get(&shape("SELECT '1'"), &f), Lookup::Unknown));
        c.insert(&shape("SELECT '1'"), &f, None);
        assert!(matches!(c.get(&shape("SELECT 'x'"), &f), Lookup::Refused));
    }

    #[test]
    fn bounded_in_entries_and_bytes() {
        let f = SessionFacts::default();
        let c = Shapes::new(32, MAX_BYTES);
        for i in 0..1000 {
            let s = shape(&format!("SELECT c{i} FROM t WHERE a = 1"));
            c.insert(&s, &f, Some(value("SELECT 1")));
        }
        assert!(c.totals().0 <= 32, "{:?}", c.totals());
        let c = Shapes::new(10_000, 64 * 1024);
        let long = "x".repeat(500);
        for i in 0..1000 {
            let s = shape(&format!("SELECT {long}{i} FROM t WHERE a = 1"));
            c.insert(&s, &f, Some(value("SELECT 1")));
        }
        let (n, bytes) = c.totals();
        assert!(bytes <= 64 * 1024 && n > 0, "{n} {bytes}");
        // One entry larger than a shard's budget is not kept at all.
        let c = Shapes::new(10_000, 16 * 1024);
        let s = shape(&format!("SELECT {} FROM t WHERE a = 1", "y".repeat(2000)));
        c.insert(&s, &f, None);
        assert_eq!(c.totals(), (0, 0));
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let c = Shapes::new(0, MAX_BYTES);
        let f = SessionFacts::default();
        c.insert(&shape("SELECT 1"), &f, Some(value("SELECT 1")));
        assert!(matches!(c.get(&shape("SELECT 1"), &f), Lookup::Unknown));
    }
}
