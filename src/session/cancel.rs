//! Routes CancelRequests: which target handed out which backend key.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// How a CancelRequest reaches its session. A statement pgwarden holds is not on
/// the server: pgwarden withdraws it, and the server must not get the cancel (it
/// would cancel whatever the client sends next). Any other cancel goes to the server.
#[derive(Debug, Default)]
pub struct CancelSignal {
    notify: Notify,
    holding: AtomicBool,
}

impl CancelSignal {
    /// A CancelRequest arrived. True: the session holds a statement and withdraws
    /// it; false: forward the cancel to the server.
    pub fn cancel(&self) -> bool {
        if self.holding.load(Ordering::SeqCst) {
            self.notify.notify_one();
            true
        } else {
            false
        }
    }

    /// Resolves when a cancel for the held statement arrives.
    pub fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }

    /// A statement is held from now on. A notification stored for an earlier hold
    /// (a cancel racing its resolution) is discarded: it must not withdraw this one.
    pub fn hold_started(&self) {
        let mut stale = std::pin::pin!(self.notify.notified());
        let _ = stale.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        self.holding.store(true, Ordering::SeqCst);
    }

    /// Nothing is held any more; cancels go to the server again.
    pub fn hold_ended(&self) {
        self.holding.store(false, Ordering::SeqCst);
    }
}

type Key = (i32, Vec<u8>);

/// A live session's entry: its target, and how to tell it a cancel arrived.
#[derive(Debug, Clone)]
pub struct Entry {
    pub target: String,
    pub signal: Arc<CancelSignal>,
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
        signal: Arc<CancelSignal>,
    ) -> Registration {
        let k = (pid, key);
        self.lock().insert(
            k.clone(),
            Entry {
                target: target.to_string(),
                signal,
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

    /// The keys of every live session (for cancelling all of them at shutdown).
    pub fn keys(&self) -> Vec<(i32, Vec<u8>)> {
        self.lock().keys().cloned().collect()
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
        let g = r.register(
            7,
            vec![1, 2, 3, 4],
            "prod",
            Arc::new(CancelSignal::default()),
        );
        assert_eq!(
            r.lookup(7, &[1, 2, 3, 4]).map(|e| e.target).as_deref(),
            Some("prod")
        );
        assert!(r.lookup(7, &[1, 2, 3, 5]).is_none());
        drop(g);
        assert!(r.is_empty());
    }
}

#[cfg(test)]
mod signal_tests {
    use super::*;

    #[test]
    fn cancels_reach_holds_only_while_holding() {
        let s = CancelSignal::default();
        assert!(!s.cancel(), "nothing held: the server gets the cancel");
        s.hold_started();
        assert!(s.cancel());
        s.hold_ended();
        // A notification left over from the last hold does not reach the next one.
        s.hold_started();
        let mut n = std::pin::pin!(s.notified());
        assert!(n
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending());
    }
}
