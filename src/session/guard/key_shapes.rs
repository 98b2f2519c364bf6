//! A session's memo of its statements' key shapes, so that a statement repeated
//! with new literals (pgbench's `UPDATE … WHERE aid = 1234`) is not parsed again
//! to learn that it is bounded by a key.

use std::collections::HashMap;

use crate::catalog::{key_shape, KeyShape};

/// How many shapes a session keeps; past that the memo starts again (a session
/// runs few distinct statement shapes, and a miss only costs a parse).
const MAX_SHAPES: usize = 64;

#[derive(Debug, Default)]
pub struct KeyShapes {
    by_key: HashMap<String, Option<KeyShape>>,
}

impl KeyShapes {
    /// The key shape of `text`, remembered under `key`: the text the classifier
    /// keyed the statement on (its literal-insensitive shape when the shape cache
    /// served it, else the text itself). Texts that share a shape differ only in
    /// literal values, and a key shape does not depend on them: constants and
    /// parameters are both values, and the parser folds a signed number into one
    /// constant.
    pub fn get(&mut self, key: &str, text: &str) -> Option<KeyShape> {
        if let Some(shape) = self.by_key.get(key) {
            return shape.clone();
        }
        let shape = key_shape(text);
        if self.by_key.len() >= MAX_SHAPES {
            self.by_key.clear();
        }
        self.by_key.insert(key.to_string(), shape.clone());
        shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_is_parsed_once_per_key_and_literals_do_not_change_it() {
        let mut memo = KeyShapes::default();
        let a = memo.get("k", "UPDATE t SET v = v + -5 WHERE id = 1");
        let b = memo.get("k", "UPDATE t SET v = v + 7 WHERE id = 2");
        assert_eq!(a, b);
        assert_eq!(a, key_shape("UPDATE t SET v = v + 7 WHERE id = 2"));
        assert_eq!(a.map(|s| s.pinned), Some(vec!["id".to_string()]));
        // Another key is judged on its own text.
        assert_eq!(memo.get("other", "DELETE FROM t WHERE id > 0"), None);
        for i in 0..(MAX_SHAPES * 2) {
            memo.get(&format!("k{i}"), "DELETE FROM t WHERE id = 1");
        }
        assert!(memo.by_key.len() <= MAX_SHAPES);
    }
}
