//! The classification cache: keyed by (text, session facts), bounded, sharded so that
//! sessions rarely contend, with hit/miss counters. A full shard is simply cleared.

use super::statement::{SessionFacts, Statement};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;

struct Entry {
    sql: Box<str>,
    facts: SessionFacts,
    value: Arc<[Statement]>,
}

/// Hashes a `u64` key to itself, rotated so that the bits the map uses are not the
/// ones that chose the shard.
#[derive(Default)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; anything else still hashes.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.rotate_left(32);
    }
}

pub struct Cache {
    /// Keyed by `key()`, already a keyed (SipHash) hash: the maps use it as is.
    shards: Vec<Mutex<HashMap<u64, Entry, BuildHasherDefault<PassThrough>>>>,
    per_shard: usize,
    hasher: RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        Cache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            per_shard,
            hasher: RandomState::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    fn key(&self, sql: &str, facts: &SessionFacts) -> u64 {
        let mut h = self.hasher.build_hasher();
        sql.hash(&mut h);
        facts.hash(&mut h);
        h.finish()
    }

    /// The cached value, or `compute()`'s, stored for next time.
    pub fn get_or_insert(
        &self,
        sql: &str,
        facts: &SessionFacts,
        compute: impl FnOnce() -> Vec<Statement>,
    ) -> Arc<[Statement]> {
        if self.per_shard == 0 {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return compute().into();
        }
        let key = self.key(sql, facts);
        let shard = &self.shards[(key as usize) % SHARDS];
        {
            let map = shard.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = map.get(&key) {
                if &*e.sql == sql && e.facts == *facts {
                    let v = Arc::clone(&e.value);
                    drop(map);
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return v;
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        // Computed outside the lock: a slow parse never blocks other sessions.
        self.insert(sql, facts, compute())
    }

    /// Stores `value` for (`sql`, `facts`) without counting a hit or a miss.
    pub fn insert(
        &self,
        sql: &str,
        facts: &SessionFacts,
        value: Vec<Statement>,
    ) -> Arc<[Statement]> {
        let value: Arc<[Statement]> = value.into();
        if self.per_shard == 0 {
            return value;
        }
        let key = self.key(sql, facts);
        let shard = &self.shards[(key as usize) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.per_shard {
            map.clear();
        }
        map.insert(
            key,
            Entry {
                sql: sql.into(),
                facts: facts.clone(),
                value: Arc::clone(&value),
            },
        );
        value
    }

    pub fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str) -> Vec<Statement> {
        vec![Statement {
            sql: sql.to_string(),
            classes: vec![],
            objects: vec![],
            fingerprint: String::new(),
            prepares: None,
            executes: None,
            deallocates: None,
            asks: Vec::new(),
        }]
    }

    #[test]
    fn hits_and_misses() {
        let c = Cache::new(100);
        let f = SessionFacts::default();
        c.get_or_insert("a", &f, || stmt("a"));
        c.get_or_insert("a", &f, || stmt("x"));
        let other = SessionFacts {
            client_encoding: "SJIS".into(),
            ..SessionFacts::default()
        };
        let v = c.get_or_insert("a", &other, || stmt("b"));
        assert_eq!(v[0].sql, "b");
        assert_eq!(c.stats(), (1, 2));
    }

    #[test]
    fn bounded() {
        let c = Cache::new(32);
        let f = SessionFacts::default();
        for i in 0..1000 {
            let s = i.to_string();
            c.get_or_insert(&s, &f, || stmt(&s));
        }
        let total: usize = c
            .shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum();
        assert!(total <= 32);
    }

    #[test]
    fn zero_capacity_never_caches() {
        let c = Cache::new(0);
        let f = SessionFacts::default();
        c.get_or_insert("a", &f, || stmt("a"));
        c.get_or_insert("a", &f, || stmt("a"));
        assert_eq!(c.stats(), (0, 2));
    }
}
