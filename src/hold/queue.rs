//! The approval queue: shared state behind a mutex never held across an await,
//! expiries in an ordered set, one background task, a oneshot per held statement.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, oneshot, Notify};
use tokio::time::Instant;

use super::events::{HoldEvent, HoldEventKind, Recent, EVENT_CAPACITY};

/// How a hold ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Approved {
        approver: String,
    },
    Denied {
        approver: String,
        reason: Option<String>,
    },
    Expired,
    /// pgwarden is shutting down; the statement never runs.
    Shutdown,
}

/// What an approver sees of a held statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldInfo {
    pub id: u64,
    pub session: u64,
    pub user: String,
    pub database: String,
    pub application: String,
    pub client: String,
    pub target: String,
    pub sql: String,
    pub classes: Vec<String>,
    pub rule: Option<String>,
    pub age_seconds: u64,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    #[error("no pending hold #{0}")]
    NotFound(u64),
    #[error("approver {approver} cannot approve their own statement (hold #{id})")]
    OwnStatement { id: u64, approver: String },
}

struct Pending {
    info: HoldInfo,
    created: Instant,
    deadline: Instant,
    reply: oneshot::Sender<Resolution>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    pending: HashMap<u64, Pending>,
    expiries: BTreeSet<(Instant, u64)>,
    closed: bool,
    recent: Recent,
}

/// Pending holds of one proxy; cheap to clone.
#[derive(Clone)]
pub struct HoldQueue {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    events: broadcast::Sender<HoldEvent>,
}

impl Default for HoldQueue {
    fn default() -> Self {
        HoldQueue {
            state: Arc::default(),
            wake: Arc::default(),
            events: broadcast::channel(EVENT_CAPACITY).0,
        }
    }
}

impl HoldQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every hold event from now on. Sending never waits for a watcher: one that
    /// falls more than `EVENT_CAPACITY` events behind loses the oldest (`Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<HoldEvent> {
        self.events.subscribe()
    }

    /// Recently decided holds (approved, denied, expired, withdrawn), newest first.
    pub fn recent(&self) -> Vec<HoldEvent> {
        self.lock().recent.list()
    }

    /// Records a decision in `recent` and tells the watchers; call without the lock.
    fn emit(&self, ev: HoldEvent) {
        if ev.kind != HoldEventKind::Hold {
            self.lock().recent.push(ev.clone());
        }
        // No watcher is not an error.
        let _ = self.events.send(ev);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a held statement; the receiver yields its resolution. `info.id`
    /// and `info.age_seconds` are filled in here.
    pub fn submit(
        &self,
        mut info: HoldInfo,
        timeout: Duration,
    ) -> (u64, oneshot::Receiver<Resolution>) {
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        let deadline = now + timeout;
        let mut st = self.lock();
        if st.closed {
            let _ = tx.send(Resolution::Shutdown);
            return (0, rx);
        }
        st.next_id += 1;
        let id = st.next_id;
        info.id = id;
        info.timeout_seconds = timeout.as_secs();
        st.expiries.insert((deadline, id));
        let event = HoldEvent::new(HoldEventKind::Hold, info.clone(), None, None);
        st.pending.insert(
            id,
            Pending {
                info,
                created: now,
                deadline,
                reply: tx,
            },
        );
        drop(st);
        self.wake.notify_one();
        self.emit(event);
        (id, rx)
    }

    /// Pending holds, oldest first.
    pub fn list(&self) -> Vec<HoldInfo> {
        let st = self.lock();
        let now = Instant::now();
        let mut v: Vec<HoldInfo> = st
            .pending
            .values()
            .map(|p| {
                let mut i = p.info.clone();
                i.age_seconds = now.duration_since(p.created).as_secs();
                i
            })
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: u64) -> Option<HoldInfo> {
        self.lock().pending.get(&id).map(|p| p.info.clone())
    }

    /// Approves a hold. An approver cannot approve a statement of their own user.
    pub fn approve(&self, id: u64, approver: &str) -> Result<HoldInfo, HoldError> {
        {
            let st = self.lock();
            let p = st.pending.get(&id).ok_or(HoldError::NotFound(id))?;
            if p.info.user == approver {
                return Err(HoldError::OwnStatement {
                    id,
                    approver: approver.to_string(),
                });
            }
        }
        self.resolve(
            id,
            Resolution::Approved {
                approver: approver.to_string(),
            },
        )
    }

    pub fn deny(
        &self,
        id: u64,
        approver: &str,
        reason: Option<String>,
    ) -> Result<HoldInfo, HoldError> {
        self.resolve(
            id,
            Resolution::Denied {
                approver: approver.to_string(),
                reason,
            },
        )
    }

    /// Withdraws a hold whose client went away: it will never run.
    pub fn withdraw(&self, id: u64) {
        let mut st = self.lock();
        let Some(p) = st.pending.remove(&id) else {
            return;
        };
        st.expiries.remove(&(p.deadline, id));
        drop(st);
        self.emit(HoldEvent::new(
            HoldEventKind::Withdraw,
            p.info,
            None,
            Some("the client went away or cancelled".into()),
        ));
    }

    fn resolve(&self, id: u64, r: Resolution) -> Result<HoldInfo, HoldError> {
        let mut st = self.lock();
        let p = st.pending.remove(&id).ok_or(HoldError::NotFound(id))?;
        st.expiries.remove(&(p.deadline, id));
        drop(st);
        let info = p.info.clone();
        let event = match &r {
            Resolution::Approved { approver } => HoldEvent::new(
                HoldEventKind::Approve,
                info.clone(),
                Some(approver.clone()),
                None,
            ),
            Resolution::Denied { approver, reason } => HoldEvent::new(
                HoldEventKind::Deny,
                info.clone(),
                Some(approver.clone()),
                reason.clone(),
            ),
            Resolution::Expired => HoldEvent::new(HoldEventKind::Expire, info.clone(), None, None),
            Resolution::Shutdown => HoldEvent::new(
                HoldEventKind::Withdraw,
                info.clone(),
                None,
                Some("pgwarden shut down".into()),
            ),
        };
        // A client that already left dropped its receiver: nothing runs either way.
        let _ = p.reply.send(r);
        self.emit(event);
        Ok(info)
    }

    /// Resolves every pending hold with `Shutdown` and refuses new ones.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        let pending: Vec<Pending> = st.pending.drain().map(|(_, p)| p).collect();
        st.expiries.clear();
        drop(st);
        for p in pending {
            let _ = p.reply.send(Resolution::Shutdown);
            self.emit(HoldEvent::new(
                HoldEventKind::Withdraw,
                p.info,
                None,
                Some("pgwarden shut down".into()),
            ));
        }
        self.wake.notify_one();
    }

    /// Expires holds at their deadline; runs until `close`. Returns expired infos
    /// through `on_expire` (for audit and metrics).
    pub async fn run_expiry(self, on_expire: impl Fn(&HoldInfo) + Send) {
        loop {
            let mut expired = Vec::new();
            let next = {
                let mut st = self.lock();
                if st.closed {
                    return;
                }
                let now = Instant::now();
                while let Some(&(deadline, id)) = st.expiries.first() {
                    if deadline > now {
                        break;
                    }
                    st.expiries.pop_first();
                    if let Some(p) = st.pending.remove(&id) {
                        on_expire(&p.info);
                        let _ = p.reply.send(Resolution::Expired);
                        expired.push(p.info);
                    }
                }
                st.expiries.first().map(|(d, _)| *d)
            };
            for info in expired {
                self.emit(HoldEvent::new(HoldEventKind::Expire, info, None, None));
            }
            match next {
                Some(deadline) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        _ = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(user: &str) -> HoldInfo {
        HoldInfo {
            id: 0,
            session: 1,
            user: user.into(),
            database: "app".into(),
            application: "psql".into(),
            client: "127.0.0.1".into(),
            target: "prod".into(),
            sql: "DROP TABLE t".into(),
            classes: vec!["drop.table".into()],
            rule: Some("r".into()),
            age_seconds: 0,
            timeout_seconds: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn approve_deny_expire() {
        let q = HoldQueue::new();
        tokio::spawn(q.clone().run_expiry(|_| {}));
        let (a, ra) = q.submit(info("bob"), Duration::from_secs(60));
        let (b, rb) = q.submit(info("bob"), Duration::from_secs(60));
        let (_c, rc) = q.submit(info("bob"), Duration::from_secs(10));
        assert_eq!(q.len(), 3);
        assert_eq!(
            q.approve(a, "bob"),
            Err(HoldError::OwnStatement {
                id: a,
                approver: "bob".into()
            })
        );
        q.approve(a, "alice").unwrap();
        assert_eq!(
            ra.await.unwrap(),
            Resolution::Approved {
                approver: "alice".into()
            }
        );
        q.deny(b, "alice", Some("no".into())).unwrap();
        assert!(matches!(rb.await.unwrap(), Resolution::Denied { .. }));
        assert_eq!(q.approve(b, "alice"), Err(HoldError::NotFound(b)));
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(rc.await.unwrap(), Resolution::Expired);
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn withdrawn_and_shutdown() {
        let q = HoldQueue::new();
        let (a, _ra) = q.submit(info("bob"), Duration::from_secs(60));
        q.withdraw(a);
        assert_eq!(q.approve(a, "alice"), Err(HoldError::NotFound(a)));
        let (_b, rb) = q.submit(info("bob"), Duration::from_secs(60));
        q.close();
        assert_eq!(rb.await.unwrap(), Resolution::Shutdown);
        let (_c, rc) = q.submit(info("bob"), Duration::from_secs(60));
        assert_eq!(rc.await.unwrap(), Resolution::Shutdown);
    }

    #[tokio::test(start_paused = true)]
    async fn events_and_recent_decisions() {
        let q = HoldQueue::new();
        let mut rx = q.subscribe();
        tokio::spawn(q.clone().run_expiry(|_| {}));
        let (a, _ra) = q.submit(info("bob"), Duration::from_secs(60));
        let (b, _rb) = q.submit(info("bob"), Duration::from_secs(60));
        let (c, _rc) = q.submit(info("bob"), Duration::from_secs(5));
        let (d, _rd) = q.submit(info("bob"), Duration::from_secs(60));
        q.approve(a, "alice").unwrap();
        q.deny(b, "carol", Some("not now".into())).unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        q.withdraw(d);
        q.withdraw(d); // a second withdrawal is not a second event
        let mut seen = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            seen.push((ev.kind, ev.hold.id, ev.approver, ev.reason));
        }
        use HoldEventKind::*;
        assert_eq!(
            seen.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
            vec![
                (Hold, a),
                (Hold, b),
                (Hold, c),
                (Hold, d),
                (Approve, a),
                (Deny, b),
                (Expire, c),
                (Withdraw, d)
            ]
        );
        assert_eq!(seen[5].2.as_deref(), Some("carol"));
        assert_eq!(seen[5].3.as_deref(), Some("not now"));
        let recent: Vec<_> = q.recent().iter().map(|e| (e.kind, e.hold.id)).collect();
        assert_eq!(
            recent,
            vec![(Withdraw, d), (Expire, c), (Deny, b), (Approve, a)]
        );
        for _ in 0..crate::hold::RECENT_CAPACITY + 5 {
            let (x, _r) = q.submit(info("bob"), Duration::from_secs(60));
            q.withdraw(x);
        }
        assert_eq!(q.recent().len(), crate::hold::RECENT_CAPACITY);
    }
}
