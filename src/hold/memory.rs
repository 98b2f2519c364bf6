//! The in-memory hold store: one process's holds (the default without `[control]`,
//! and the demo). Decided holds are kept for a while so `pgwarden holds show` can
//! tell what became of them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::plans::{ApprovedPlan, PlanBook, PlanRequest};
use super::store::{HoldRecord, HoldStatus, HoldStore, PlanClaim, Ruling, StoreFuture};
use super::{HoldError, HoldInfo};

/// How many decided holds are remembered.
const DECIDED_KEPT: usize = 1000;

struct Entry {
    info: HoldInfo,
    created: Instant,
    deadline: Instant,
}

#[derive(Default)]
struct State {
    next_id: u64,
    pending: HashMap<u64, Entry>,
    decided: VecDeque<HoldRecord>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    plans: PlanBook,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves a pending hold to the decided list.
    fn end(
        &self,
        id: u64,
        status: HoldStatus,
        by: Option<String>,
        reason: Option<String>,
    ) -> Option<HoldRecord> {
        let mut st = self.lock();
        let e = st.pending.remove(&id)?;
        let rec = HoldRecord {
            info: e.info,
            status,
            decided_by: by,
            reason,
        };
        if st.decided.len() == DECIDED_KEPT {
            st.decided.pop_front();
        }
        st.decided.push_back(rec.clone());
        Some(rec)
    }

    fn decided(&self, id: u64) -> Option<HoldRecord> {
        self.lock()
            .decided
            .iter()
            .rev()
            .find(|r| r.info.id == id)
            .cloned()
    }
}

impl HoldStore for MemoryStore {
    fn create(&self, info: &HoldInfo, timeout: Duration) -> Result<u64, HoldError> {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        let mut info = info.clone();
        info.id = id;
        let now = Instant::now();
        st.pending.insert(
            id,
            Entry {
                info,
                created: now,
                deadline: now + timeout,
            },
        );
        Ok(id)
    }

    fn pending(&self) -> StoreFuture<'_, Result<Vec<HoldInfo>, HoldError>> {
        let st = self.lock();
        let now = Instant::now();
        let mut v: Vec<HoldInfo> = st
            .pending
            .values()
            .map(|e| {
                let mut i = e.info.clone();
                i.age_seconds = now.duration_since(e.created).as_secs();
                i
            })
            .collect();
        drop(st);
        v.sort_by_key(|i| i.id);
        Box::pin(async move { Ok(v) })
    }

    fn record(&self, id: u64) -> StoreFuture<'_, Result<HoldRecord, HoldError>> {
        let found = {
            let st = self.lock();
            st.pending.get(&id).map(|e| HoldRecord {
                info: e.info.clone(),
                status: HoldStatus::Pending,
                decided_by: None,
                reason: None,
            })
        };
        let r = found
            .or_else(|| self.decided(id))
            .ok_or(HoldError::NotFound(id));
        Box::pin(async move { r })
    }

    fn decide(&self, id: u64, ruling: Ruling) -> StoreFuture<'_, Result<HoldRecord, HoldError>> {
        let r = (|| {
            {
                let st = self.lock();
                let e = st.pending.get(&id).ok_or(HoldError::NotFound(id))?;
                if e.deadline <= Instant::now() {
                    return Err(HoldError::NotFound(id));
                }
                if matches!(ruling, Ruling::Approve { .. }) && e.info.user == ruling.approver() {
                    return Err(HoldError::OwnStatement {
                        id,
                        approver: ruling.approver().to_string(),
                    });
                }
            }
            let (status, by, reason) = match ruling {
                Ruling::Approve { approver } => (HoldStatus::Approved, approver, None),
                Ruling::Deny { approver, reason } => (HoldStatus::Denied, approver, reason),
            };
            self.end(id, status, Some(by), reason)
                .ok_or(HoldError::NotFound(id))
        })();
        Box::pin(async move { r })
    }

    fn expire(&self, id: u64) -> StoreFuture<'_, Result<HoldRecord, HoldError>> {
        let r = self
            .end(id, HoldStatus::Expired, None, None)
            .or_else(|| self.decided(id))
            .ok_or(HoldError::NotFound(id));
        Box::pin(async move { r })
    }

    fn withdraw(&self, id: u64, reason: &str) {
        self.end(id, HoldStatus::Withdrawn, None, Some(reason.to_string()));
    }

    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    fn approve_plan(&self, plan: ApprovedPlan) -> StoreFuture<'_, Result<(), HoldError>> {
        self.plans.insert(plan);
        Box::pin(async { Ok(()) })
    }

    fn revoke_plan(&self, id: &str) -> StoreFuture<'_, Result<bool, HoldError>> {
        let found = self.plans.revoke(id);
        Box::pin(async move { Ok(found) })
    }

    fn plans(&self) -> StoreFuture<'_, Result<Vec<ApprovedPlan>, HoldError>> {
        let v = self.plans.list();
        Box::pin(async move { Ok(v) })
    }

    fn claim_plan(&self, request: &PlanRequest<'_>) -> PlanClaim {
        match self.plans.claim(request) {
            Some(p) => PlanClaim::Granted(p),
            None => PlanClaim::None,
        }
    }
}
