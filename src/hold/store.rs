//! Where holds are recorded and decided: the `HoldStore` trait the queue goes
//! through. Two implementations: `MemoryStore` (one process; the default and the
//! demo) and `crate::control::ControlStore` (a PostgreSQL database shared by
//! replicas, which enforces decide-once itself).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;

use super::plans::{ApprovedPlan, PlanRequest};
use super::tokens::TokenUse;
use super::{HoldError, HoldInfo, Resolution};

/// A store operation's future (boxed: the store is a trait object).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an approver decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruling {
    Approve {
        approver: String,
    },
    Deny {
        approver: String,
        reason: Option<String>,
    },
}

impl Ruling {
    pub fn approver(&self) -> &str {
        match self {
            Ruling::Approve { approver } | Ruling::Deny { approver, .. } => approver,
        }
    }
}

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    /// It never runs: its client left, its replica stopped, or pgwarden shut down.
    Withdrawn,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Pending => "pending",
            HoldStatus::Approved => "approved",
            HoldStatus::Denied => "denied",
            HoldStatus::Expired => "expired",
            HoldStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<HoldStatus> {
        Some(match s {
            "pending" => HoldStatus::Pending,
            "approved" => HoldStatus::Approved,
            "denied" => HoldStatus::Denied,
            "expired" => HoldStatus::Expired,
            "withdrawn" => HoldStatus::Withdrawn,
            _ => return None,
        })
    }
}

/// A hold as the store knows it, decided or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldRecord {
    #[serde(flatten)]
    pub info: HoldInfo,
    pub status: HoldStatus,
    /// Who approved or denied it.
    pub decided_by: Option<String>,
    /// A denial's reason, or why it was withdrawn.
    pub reason: Option<String>,
}

/// Whether an approved plan releases a statement the policy would hold.
#[derive(Debug)]
pub enum PlanClaim {
    /// No approved plan covers it: the policy decides as usual.
    None,
    /// Released by this plan (the use is counted).
    Granted(ApprovedPlan),
    /// A plan covers it and the store is counting the use in the control database:
    /// the receiver yields `Approved` (released) or `Withdrawn` (no use was left).
    Pending {
        plan: ApprovedPlan,
        rx: tokio::sync::oneshot::Receiver<Resolution>,
    },
}

/// Keeps holds. Creating never waits on I/O (the session decides synchronously);
/// everything an approver does may.
pub trait HoldStore: Send + Sync {
    /// Records a new hold of this process and returns its id. An error means holds
    /// cannot be recorded now: the statement is refused (fail closed).
    fn create(&self, info: &HoldInfo, timeout: Duration) -> Result<u64, HoldError>;

    /// Pending holds of every replica, oldest first.
    fn pending(&self) -> StoreFuture<'_, Result<Vec<HoldInfo>, HoldError>>;

    /// One hold, decided or not.
    fn record(&self, id: u64) -> StoreFuture<'_, Result<HoldRecord, HoldError>>;

    /// Decides a pending hold that has not expired, once; nobody approves their own
    /// statement. Returns the hold as decided.
    fn decide(&self, id: u64, ruling: Ruling) -> StoreFuture<'_, Result<HoldRecord, HoldError>>;

    /// The owner's deadline passed: marks the hold expired unless a decision came
    /// first, and returns where it stands now.
    fn expire(&self, id: u64) -> StoreFuture<'_, Result<HoldRecord, HoldError>>;

    /// The owner withdraws a hold (its client left or cancelled, or pgwarden is
    /// shutting down): it never runs. Does not wait.
    fn withdraw(&self, id: u64, reason: &str);

    /// The `limit` holds decided last on any replica, newest first. None: this
    /// store does not keep them (the queue's list of this process's decisions is
    /// used instead).
    fn decided(
        &self,
        limit: usize,
    ) -> StoreFuture<'_, Option<Result<Vec<super::HoldEvent>, HoldError>>> {
        let _ = limit;
        Box::pin(async { None })
    }

    /// Whether new holds can be recorded now, and if not why (for /readyz).
    fn health(&self) -> Result<(), String>;

    /// Keeps an approved plan (replacing one with the same id).
    fn approve_plan(&self, plan: ApprovedPlan) -> StoreFuture<'_, Result<(), HoldError>> {
        let _ = plan;
        Box::pin(async { Err(HoldError::Unavailable("this store keeps no plans".into())) })
    }

    /// Ends approved plan `id`'s window now; false if no plan `id` is in force.
    fn revoke_plan(&self, id: &str) -> StoreFuture<'_, Result<bool, HoldError>> {
        let _ = id;
        Box::pin(async { Err(HoldError::Unavailable("this store keeps no plans".into())) })
    }

    /// Approved plans whose window has not ended.
    fn plans(&self) -> StoreFuture<'_, Result<Vec<ApprovedPlan>, HoldError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Releases the statement by an approved plan if one covers it, using it once;
    /// never waits on I/O.
    fn claim_plan(&self, request: &PlanRequest<'_>) -> PlanClaim {
        let _ = request;
        PlanClaim::None
    }

    /// Keeps a newly issued confirmation token where every replica can redeem it;
    /// the receiver yields `Approved` once it is recorded (only then is the client
    /// told it) or `Withdrawn` if it could not be. None: this store keeps no tokens
    /// (the process's own `Tokens` do); an error: it cannot record them now, so the
    /// statement is refused. Never waits on I/O.
    fn issue_token(
        &self,
        token: &TokenUse<'_>,
        ttl: Duration,
    ) -> Option<Result<tokio::sync::oneshot::Receiver<Resolution>, HoldError>> {
        let _ = (token, ttl);
        None
    }

    /// Redeems a token, once, whichever replica issued it: the receiver yields
    /// `Approved` (accepted) or `Withdrawn` with the reason it was refused. None:
    /// this store keeps no tokens. Never waits on I/O.
    fn redeem_token(
        &self,
        token: &TokenUse<'_>,
    ) -> Option<tokio::sync::oneshot::Receiver<Resolution>> {
        let _ = token;
        None
    }

    /// Starts the store's background work for `queue` (the control database's
    /// connection, notifications, heartbeat); the in-memory store has none.
    fn start(self: std::sync::Arc<Self>, queue: super::HoldQueue) {
        let _ = queue;
    }
}
