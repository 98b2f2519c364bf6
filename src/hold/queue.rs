//! The approval queue: this process's held statements waiting for a decision (a
//! oneshot each, expiries in an ordered set, one background task, a mutex never held
//! across an await), deciding through a `HoldStore` (in memory, or the control
//! database shared by replicas), and the hold events of the audit log.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, oneshot, Notify};
use tokio::time::Instant;

use super::events::{HoldEvent, HoldEventKind, Recent, EVENT_CAPACITY};
use super::memory::MemoryStore;
use super::plans::{ApprovedPlan, PlanRequest};
use super::store::{HoldRecord, HoldStatus, HoldStore, PlanClaim, Ruling};
use crate::audit;

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
    /// The hold could not be kept (the control database could not record it, or
    /// withdrew it: its replica was taken for gone); the statement never runs.
    Withdrawn {
        reason: String,
    },
}

/// What an approver sees of a held statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HoldInfo {
    pub id: u64,
    pub session: u64,
    /// The statement's number in its session (as in the audit log).
    pub statement_id: u64,
    pub user: String,
    pub database: String,
    pub application: String,
    pub client: String,
    pub target: String,
    pub sql: String,
    pub fingerprint: String,
    pub classes: Vec<String>,
    pub rule: Option<String>,
    /// The replica whose client waits for it (with a control database).
    pub replica: Option<String>,
    pub age_seconds: u64,
    pub timeout_seconds: u64,
    /// What the statement was measured to change (an impact hold); shown to the
    /// approver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<String>,
    /// What a DROP, TRUNCATE or DROP COLUMN would destroy, as the catalog said just
    /// before the hold ("would drop public.t (5 rows) and …"), or why that is not
    /// known ("blast radius unknown: …"); absent for other statements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blast: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    #[error("no pending hold #{0}")]
    NotFound(u64),
    #[error("approver {approver} cannot approve their own statement (hold #{id})")]
    OwnStatement { id: u64, approver: String },
    #[error("hold #{id} is already {status}")]
    Decided { id: u64, status: &'static str },
    #[error("holds cannot be recorded or decided now: {0}")]
    Unavailable(String),
}

struct Waiter {
    info: HoldInfo,
    created: Instant,
    deadline: Instant,
    reply: oneshot::Sender<Resolution>,
}

#[derive(Default)]
struct State {
    waiting: HashMap<u64, Waiter>,
    expiries: BTreeSet<(Instant, u64)>,
    closed: bool,
    recent: Recent,
}

/// The held statements of this process and the store they are decided in; cheap
/// to clone.
#[derive(Clone)]
pub struct HoldQueue {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    store: Arc<dyn HoldStore>,
    audit: Option<audit::AuditLog>,
    events: broadcast::Sender<HoldEvent>,
}

impl Default for HoldQueue {
    fn default() -> Self {
        Self::with_store(Arc::new(MemoryStore::default()))
    }
}

/// How long the expiry task waits for the store before it expires a hold locally.
const STORE_WAIT: Duration = Duration::from_secs(3);

impl HoldQueue {
    /// A queue with the in-memory store.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_store(store: Arc<dyn HoldStore>) -> Self {
        HoldQueue {
            state: Arc::default(),
            wake: Arc::default(),
            store,
            audit: None,
            events: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    /// Every hold event from now on. Sending never waits for a watcher: one that
    /// falls more than `EVENT_CAPACITY` events behind loses the oldest (`Lagged`).
    /// Events are those of this process: holds it made, decisions its API took,
    /// expiries and withdrawals it carried out (with a control database, each
    /// event is seen on the one replica where it happened).
    pub fn subscribe(&self) -> broadcast::Receiver<HoldEvent> {
        self.events.subscribe()
    }

    /// Recently decided holds (approved, denied, expired, withdrawn), newest first.
    pub fn recent(&self) -> Vec<HoldEvent> {
        self.lock().recent.list()
    }

    /// Recently decided holds, newest first: of every replica from the control
    /// database when there is one, else this process's (`recent`).
    pub async fn decided(&self) -> Result<Vec<HoldEvent>, HoldError> {
        match self.store.decided(super::RECENT_CAPACITY).await {
            Some(r) => r,
            None => Ok(self.recent()),
        }
    }

    /// Records a hold event in the audit log and `recent`, and tells the watchers;
    /// call without the lock.
    fn emit(
        &self,
        kind: HoldEventKind,
        info: &HoldInfo,
        approver: Option<&str>,
        reason: Option<&str>,
    ) {
        let base = (info.id, info.session, info.statement_id);
        let audit_event = match kind {
            HoldEventKind::Hold => audit::Event::Hold(audit::Held {
                hold_id: base.0,
                session: base.1,
                statement_id: base.2,
                user: info.user.clone(),
                target: info.target.clone(),
                rule: info.rule.clone(),
                confirm: "approver".into(),
                timeout_s: info.timeout_seconds,
                fingerprint: info.fingerprint.clone(),
                blast: info.blast.clone(),
            }),
            HoldEventKind::Approve => audit::Event::Approve(audit::Approve {
                hold_id: base.0,
                session: base.1,
                statement_id: base.2,
                approver: approver.unwrap_or_default().to_string(),
            }),
            HoldEventKind::Deny => audit::Event::Deny(audit::Deny {
                hold_id: base.0,
                session: base.1,
                statement_id: base.2,
                approver: approver.unwrap_or_default().to_string(),
                reason: reason.map(str::to_string),
            }),
            HoldEventKind::Expire => audit::Event::Expire(audit::Expire {
                hold_id: base.0,
                session: base.1,
                statement_id: base.2,
            }),
            HoldEventKind::Withdraw => audit::Event::Withdraw(audit::Withdraw {
                hold_id: base.0,
                session: base.1,
                statement_id: base.2,
                reason: reason.unwrap_or_default().to_string(),
            }),
        };
        if let Some(a) = &self.audit {
            a.record(audit_event);
        }
        let ev = HoldEvent::new(
            kind,
            info.clone(),
            approver.map(str::to_string),
            reason.map(str::to_string),
        );
        if kind != HoldEventKind::Hold {
            self.lock().recent.push(ev.clone());
        }
        // No watcher is not an error.
        let _ = self.events.send(ev);
    }

    /// Hold events (`hold`, `approve`, `deny`, `expire`, `withdraw`) go to `log`.
    pub fn with_audit(mut self, log: audit::AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    pub fn store(&self) -> &Arc<dyn HoldStore> {
        &self.store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a held statement; the receiver yields its resolution. `info.id`
    /// and `info.age_seconds` are filled in here. When the store cannot record it,
    /// the receiver yields `Withdrawn` at once (id 0); `try_submit` says so instead.
    pub fn submit(
        &self,
        info: HoldInfo,
        timeout: Duration,
    ) -> (u64, oneshot::Receiver<Resolution>) {
        match self.try_submit(info, timeout) {
            Ok(r) => r,
            Err(e) => {
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(Resolution::Withdrawn {
                    reason: e.to_string(),
                });
                (0, rx)
            }
        }
    }

    /// Registers a held statement, or says why it cannot be held now (the caller
    /// refuses the statement: fail closed).
    pub fn try_submit(
        &self,
        mut info: HoldInfo,
        timeout: Duration,
    ) -> Result<(u64, oneshot::Receiver<Resolution>), HoldError> {
        let (tx, rx) = oneshot::channel();
        info.timeout_seconds = timeout.as_secs();
        if self.lock().closed {
            let _ = tx.send(Resolution::Shutdown);
            return Ok((0, rx));
        }
        let id = self.store.create(&info, timeout)?;
        info.id = id;
        let now = Instant::now();
        let deadline = now + timeout;
        let shown = info.clone();
        {
            let mut st = self.lock();
            st.expiries.insert((deadline, id));
            st.waiting.insert(
                id,
                Waiter {
                    info,
                    created: now,
                    deadline,
                    reply: tx,
                },
            );
        }
        self.wake.notify_one();
        self.emit(HoldEventKind::Hold, &shown, None, None);
        Ok((id, rx))
    }

    /// Pending holds (of every replica, with a control database), oldest first.
    pub async fn list(&self) -> Result<Vec<HoldInfo>, HoldError> {
        self.store.pending().await
    }

    /// One hold, pending or decided.
    pub async fn record(&self, id: u64) -> Result<HoldRecord, HoldError> {
        self.store.record(id).await
    }

    /// This process's held statements.
    pub fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One of this process's held statements.
    pub fn get(&self, id: u64) -> Option<HoldInfo> {
        self.lock().waiting.get(&id).map(|w| {
            let mut i = w.info.clone();
            i.age_seconds = Instant::now().duration_since(w.created).as_secs();
            i
        })
    }

    /// Ids of this process's held statements (the control store polls for them).
    pub fn waiting_ids(&self) -> Vec<u64> {
        self.lock().waiting.keys().copied().collect()
    }

    /// Approves a hold. An approver cannot approve a statement of their own user.
    pub async fn approve(&self, id: u64, approver: &str) -> Result<HoldInfo, HoldError> {
        self.decide(
            id,
            Ruling::Approve {
                approver: approver.to_string(),
            },
        )
        .await
    }

    pub async fn deny(
        &self,
        id: u64,
        approver: &str,
        reason: Option<String>,
    ) -> Result<HoldInfo, HoldError> {
        self.decide(
            id,
            Ruling::Deny {
                approver: approver.to_string(),
                reason,
            },
        )
        .await
    }

    async fn decide(&self, id: u64, ruling: Ruling) -> Result<HoldInfo, HoldError> {
        let rec = self.store.decide(id, ruling.clone()).await?;
        match &ruling {
            Ruling::Approve { approver } => {
                self.emit(HoldEventKind::Approve, &rec.info, Some(approver), None)
            }
            Ruling::Deny { approver, reason } => self.emit(
                HoldEventKind::Deny,
                &rec.info,
                Some(approver),
                reason.as_deref(),
            ),
        }
        // The statement's own replica: run it now rather than on the notification.
        self.settle(&rec);
        Ok(rec.info)
    }

    /// Keeps an approved plan and records `plan_approve`.
    pub async fn approve_plan(&self, plan: ApprovedPlan) -> Result<(), HoldError> {
        self.store.approve_plan(plan.clone()).await?;
        if let Some(a) = &self.audit {
            let ts = |s: i64| {
                jiff::Timestamp::from_second(s)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            };
            a.record(audit::Event::PlanApprove(Box::new(audit::PlanApprove {
                plan: plan.id.clone(),
                approver: plan.approver.clone(),
                target: plan.target.clone(),
                user: plan.user.clone(),
                application: plan.application.clone(),
                not_before: ts(plan.not_before),
                not_after: ts(plan.not_after),
                statements: plan.statements.len() as u64,
                runs: plan.statements.values().map(|(n, _)| u64::from(*n)).sum(),
            })));
        }
        Ok(())
    }

    /// Revokes approved plan `id` and records `plan_revoke`; false if no plan `id`
    /// is in force.
    pub async fn revoke_plan(&self, id: &str, approver: &str) -> Result<bool, HoldError> {
        let found = self.store.revoke_plan(id).await?;
        if let (true, Some(a)) = (found, &self.audit) {
            a.record(audit::Event::PlanRevoke(audit::PlanRevoke {
                plan: id.to_string(),
                approver: approver.to_string(),
            }));
        }
        Ok(found)
    }

    /// Approved plans whose window has not ended.
    pub async fn plans(&self) -> Result<Vec<ApprovedPlan>, HoldError> {
        self.store.plans().await
    }

    /// Whether an approved plan releases a statement the policy would hold.
    pub fn claim_plan(&self, request: &PlanRequest<'_>) -> PlanClaim {
        self.store.claim_plan(request)
    }

    /// See `HoldStore::issue_token`.
    pub fn issue_token(
        &self,
        token: &super::TokenUse<'_>,
        ttl: Duration,
    ) -> Option<Result<oneshot::Receiver<Resolution>, HoldError>> {
        self.store.issue_token(token, ttl)
    }

    /// See `HoldStore::redeem_token`.
    pub fn redeem_token(
        &self,
        token: &super::TokenUse<'_>,
    ) -> Option<oneshot::Receiver<Resolution>> {
        self.store.redeem_token(token)
    }

    /// Carries out a decision found in the store on this process's waiting
    /// statement, if it has it. A pending record changes nothing.
    pub fn settle(&self, rec: &HoldRecord) {
        let resolution = match rec.status {
            HoldStatus::Pending => return,
            HoldStatus::Approved => Resolution::Approved {
                approver: rec.decided_by.clone().unwrap_or_default(),
            },
            HoldStatus::Denied => Resolution::Denied {
                approver: rec.decided_by.clone().unwrap_or_default(),
                reason: rec.reason.clone(),
            },
            HoldStatus::Expired => Resolution::Expired,
            HoldStatus::Withdrawn => Resolution::Withdrawn {
                reason: rec
                    .reason
                    .clone()
                    .unwrap_or_else(|| "withdrawn by the control database".into()),
            },
        };
        self.resolve_local(rec.info.id, resolution);
    }

    /// Ends this process's waiting statement `id` with `r`, if it has it.
    pub fn settle_with(&self, id: u64, r: Resolution) {
        self.resolve_local(id, r);
    }

    /// Starts the store's background work (see `HoldStore::start`).
    pub fn start_store(&self) {
        Arc::clone(&self.store).start(self.clone());
    }

    fn resolve_local(&self, id: u64, r: Resolution) -> Option<HoldInfo> {
        let mut st = self.lock();
        let w = st.waiting.remove(&id)?;
        st.expiries.remove(&(w.deadline, id));
        drop(st);
        // A client that already left dropped its receiver: nothing runs either way.
        let _ = w.reply.send(r);
        Some(w.info)
    }

    /// Withdraws a hold whose client went away: it will never run.
    pub fn withdraw(&self, id: u64) {
        let reason = "the client went away or cancelled";
        if let Some(info) = self.resolve_local(id, Resolution::Shutdown) {
            self.store.withdraw(id, reason);
            self.audit_withdraw(&info, reason);
        }
    }

    /// Records a `withdraw` event (also for holds of a replica taken for gone).
    pub fn audit_withdraw(&self, info: &HoldInfo, reason: &str) {
        self.emit(HoldEventKind::Withdraw, info, None, Some(reason));
    }

    /// Resolves every pending hold with `Shutdown` and refuses new ones.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        let waiting: Vec<Waiter> = st.waiting.drain().map(|(_, w)| w).collect();
        st.expiries.clear();
        drop(st);
        let reason = "pgwarden shut down";
        for w in waiting {
            self.store.withdraw(w.info.id, reason);
            self.audit_withdraw(&w.info, reason);
            let _ = w.reply.send(Resolution::Shutdown);
        }
        self.wake.notify_one();
    }

    /// Expires holds at their deadline; runs until `close`. Reports expired holds
    /// through `on_expire` (for logs). The store has the last word: a decision
    /// recorded before the deadline is carried out instead.
    pub async fn run_expiry(self, on_expire: impl Fn(&HoldInfo) + Send) {
        loop {
            let (due, next) = {
                let mut st = self.lock();
                if st.closed {
                    return;
                }
                let now = Instant::now();
                let mut due = Vec::new();
                while let Some(&(deadline, id)) = st.expiries.first() {
                    if deadline > now {
                        break;
                    }
                    st.expiries.pop_first();
                    due.push(id);
                }
                (due, st.expiries.first().map(|(d, _)| *d))
            };
            for id in due {
                let outcome = tokio::time::timeout(STORE_WAIT, self.store.expire(id)).await;
                let rec = match outcome {
                    Ok(Ok(rec)) if rec.status != HoldStatus::Pending => Some(rec),
                    // Unknown to the store, or it cannot say: expire here (fail closed).
                    _ => None,
                };
                match rec {
                    Some(rec) if rec.status != HoldStatus::Expired => self.settle(&rec),
                    _ => {
                        if let Some(info) = self.resolve_local(id, Resolution::Expired) {
                            on_expire(&info);
                            self.emit(HoldEventKind::Expire, &info, None, None);
                        }
                    }
                }
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
            session: 1,
            statement_id: 1,
            user: user.into(),
            database: "app".into(),
            application: "psql".into(),
            client: "127.0.0.1".into(),
            target: "prod".into(),
            sql: "DROP TABLE t".into(),
            classes: vec!["drop.table".into()],
            rule: Some("r".into()),
            ..HoldInfo::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn approve_deny_expire() {
        let q = HoldQueue::new();
        tokio::spawn(q.clone().run_expiry(|_| {}));
        let (a, ra) = q.submit(info("bob"), Duration::from_secs(60));
        let (b, rb) = q.submit(info("bob"), Duration::from_secs(60));
        let (c, rc) = q.submit(info("bob"), Duration::from_secs(10));
        assert_eq!(q.len(), 3);
        assert_eq!(q.list().await.unwrap().len(), 3);
        assert_eq!(
            q.approve(a, "bob").await,
            Err(HoldError::OwnStatement {
                id: a,
                approver: "bob".into()
            })
        );
        q.approve(a, "alice").await.unwrap();
        assert_eq!(
            ra.await.unwrap(),
            Resolution::Approved {
                approver: "alice".into()
            }
        );
        q.deny(b, "alice", Some("no".into())).await.unwrap();
        assert!(matches!(rb.await.unwrap(), Resolution::Denied { .. }));
        assert_eq!(q.approve(b, "alice").await, Err(HoldError::NotFound(b)));
        assert_eq!(
            q.record(b)
                .await
                .map(|r| (r.status, r.decided_by, r.reason)),
            Ok((HoldStatus::Denied, Some("alice".into()), Some("no".into())))
        );
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(rc.await.unwrap(), Resolution::Expired);
        assert_eq!(q.record(c).await.map(|r| r.status), Ok(HoldStatus::Expired));
        assert!(q.is_empty());
        assert!(q.list().await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn withdrawn_and_shutdown() {
        let q = HoldQueue::new();
        let (a, _ra) = q.submit(info("bob"), Duration::from_secs(60));
        q.withdraw(a);
        assert_eq!(q.approve(a, "alice").await, Err(HoldError::NotFound(a)));
        assert_eq!(
            q.record(a).await.map(|r| r.status),
            Ok(HoldStatus::Withdrawn)
        );
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
        q.approve(a, "alice").await.unwrap();
        q.deny(b, "carol", Some("not now".into())).await.unwrap();
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

    /// A store that cannot record holds (the control database is down).
    struct Down;

    impl HoldStore for Down {
        fn create(&self, _: &HoldInfo, _: Duration) -> Result<u64, HoldError> {
            Err(HoldError::Unavailable(
                "control database unreachable".into(),
            ))
        }
        fn pending(
            &self,
        ) -> super::super::store::StoreFuture<'_, Result<Vec<HoldInfo>, HoldError>> {
            Box::pin(async { Err(HoldError::Unavailable("down".into())) })
        }
        fn record(
            &self,
            _: u64,
        ) -> super::super::store::StoreFuture<'_, Result<HoldRecord, HoldError>> {
            Box::pin(async { Err(HoldError::Unavailable("down".into())) })
        }
        fn decide(
            &self,
            _: u64,
            _: Ruling,
        ) -> super::super::store::StoreFuture<'_, Result<HoldRecord, HoldError>> {
            Box::pin(async { Err(HoldError::Unavailable("down".into())) })
        }
        fn expire(
            &self,
            _: u64,
        ) -> super::super::store::StoreFuture<'_, Result<HoldRecord, HoldError>> {
            Box::pin(async { Err(HoldError::Unavailable("down".into())) })
        }
        fn withdraw(&self, _: u64, _: &str) {}
        fn health(&self) -> Result<(), String> {
            Err("down".into())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unavailable_store_refuses_holds_and_expires_locally() {
        let q = HoldQueue::with_store(Arc::new(Down));
        assert!(matches!(
            q.try_submit(info("bob"), Duration::from_secs(5)),
            Err(HoldError::Unavailable(_))
        ));
        let (id, rx) = q.submit(info("bob"), Duration::from_secs(5));
        assert_eq!(id, 0);
        assert!(matches!(rx.await.unwrap(), Resolution::Withdrawn { .. }));
        assert!(q.is_empty());
    }
}
