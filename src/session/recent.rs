//! A session's last few classified texts (or their literal-insensitive shapes): a
//! client that repeats its statements gets their classification back without hashing
//! the text or locking the shared cache.

use std::sync::Arc;

use crate::classify::{SessionFacts, Statement};

/// Longer texts are left to the shared cache: a session keeps at most
/// `SLOTS * MAX_KEY` bytes here.
pub const MAX_KEY: usize = 512;
const SLOTS: usize = 4;

/// A remembered text (or shape) and its classification.
type Entry = (Box<[u8]>, Arc<[Statement]>);

#[derive(Default)]
pub struct Recent {
    /// The session facts every entry was classified under.
    facts: Option<SessionFacts>,
    entries: Vec<Entry>,
    /// The slot the next insert replaces once all are used.
    next: usize,
}

impl Recent {
    pub fn get(&self, key: &[u8], facts: &SessionFacts) -> Option<Arc<[Statement]>> {
        if self.facts.as_ref() != Some(facts) {
            return None;
        }
        self.entries
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|(_, v)| Arc::clone(v))
    }

    pub fn insert(&mut self, key: &[u8], facts: &SessionFacts, value: Arc<[Statement]>) {
        if key.len() > MAX_KEY {
            return;
        }
        if self.facts.as_ref() != Some(facts) {
            // New facts (client_encoding, standard_conforming_strings) can change
            // how every remembered text reads.
            self.entries.clear();
            self.next = 0;
            self.facts = Some(facts.clone());
        }
        let entry = (Box::from(key), value);
        if self.entries.len() < SLOTS {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % SLOTS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;

    fn stmts(class: Class) -> Arc<[Statement]> {
        let s = Statement {
            sql: String::new(),
            classes: vec![class],
            objects: Vec::new(),
            fingerprint: String::new(),
            prepares: None,
            executes: None,
            deallocates: None,
            asks: Vec::new(),
        };
        vec![s].into()
    }

    fn class_of(r: &Recent, key: &[u8], facts: &SessionFacts) -> Option<Class> {
        r.get(key, facts).map(|v| v[0].classes[0])
    }

    #[test]
    fn remembers_the_last_few_under_the_same_facts() {
        let utf8 = SessionFacts::default();
        let mut r = Recent::default();
        assert_eq!(class_of(&r, b"a", &utf8), None);
        r.insert(b"a", &utf8, stmts(Class::Read));
        r.insert(b"b", &utf8, stmts(Class::Write));
        assert_eq!(class_of(&r, b"a", &utf8), Some(Class::Read));
        assert_eq!(class_of(&r, b"b", &utf8), Some(Class::Write));
        // A prefix or an extension of a key is another key.
        assert_eq!(class_of(&r, b"", &utf8), None);
        assert_eq!(class_of(&r, b"ab", &utf8), None);

        // Other facts: nothing remembered applies; inserting under them forgets it.
        let sjis = SessionFacts {
            client_encoding: "SJIS".into(),
            ..SessionFacts::default()
        };
        assert_eq!(class_of(&r, b"a", &sjis), None);
        r.insert(b"c", &sjis, stmts(Class::Truncate));
        assert_eq!(class_of(&r, b"a", &utf8), None);
        assert_eq!(class_of(&r, b"c", &sjis), Some(Class::Truncate));
        assert_eq!(class_of(&r, b"c", &utf8), None);
    }

    #[test]
    fn replaces_the_oldest_and_skips_long_texts() {
        let f = SessionFacts::default();
        let mut r = Recent::default();
        for k in [b"1", b"2", b"3", b"4", b"5"] {
            r.insert(k, &f, stmts(Class::Read));
        }
        assert_eq!(class_of(&r, b"1", &f), None);
        for k in [b"2", b"3", b"4", b"5"] {
            assert!(r.get(k, &f).is_some());
        }
        let long = vec![b'x'; MAX_KEY + 1];
        r.insert(&long, &f, stmts(Class::Read));
        assert_eq!(class_of(&r, &long, &f), None);
        assert_eq!(r.entries.len(), SLOTS);
    }
}
