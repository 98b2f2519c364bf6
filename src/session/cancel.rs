//! Routes CancelRequests: which target handed out which backend key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

type Key = (i32, Vec<u8>);

/// A live session's entry: its target, and how to tell it a cancel arrived (a
/// statement pgwarden holds is not on the server, so pgwarden must withdraw it).
#[derive(Debug, Clone)]
pub struct Entry {
    pub target: String,
    pub notify: Arc<Notify>,
}

/// Backend keys of live sessions, shared by all sessions of one proxy.
#[derive(Debug, Default)]
pub struct CancelRegistry {
    keys: Mutex<HashMap<Key, Entry>>,
}

/// Removes its key from the registry when the session ends.
pub struct Registration {
    registry: Arc<CancelRegistry>,
    key: Key,
}

impl CancelRegistry {
    pub fn register(
        self: &Arc<Self>,
        pid: i32,
        key: Vec<u8>,
        target: &str,
        notify: Arc<Notify>,
    ) -> Registration {
        let k = (pid, key);
        self.lock().insert(
            k.clone(),
            Entry {
                target: target.to_string(),
                notify,
            },
        );
        Registration {
            registry: Arc::clone(self),
            key: k,
        }
    }

    /// The session entry for this key, if any live session holds it.
    pub fn lookup(&self, pid: i32, key: &[u8]) -> Option<Entry> {
        self.lock().get(&(pid, key.to_vec())).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic elsewhere while holding the lock leaves a map that is still valid.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_lives_as_long_as_the_session() {
        let r = Arc::new(CancelRegistry::default());
        let g = r.register(7, vec![1, 2, 3, 4], "prod", Arc::new(Notify::new()));
        assert_eq!(
            r.lookup(7, &[1, 2, 3, 4]).map(|e| e.target).as_deref(),
            Some("prod")
        );
        assert!(r.lookup(7, &[1, 2, 3, 5]).is_none());
        drop(g);
        assert!(r.is_empty());
    }
}
