//! What happens to holds, for watchers (webhook notifications, the approver page):
//! hold events on a broadcast channel that never blocks the sender, and a short list
//! of recently decided holds.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::HoldInfo;

/// How many decided holds `HoldQueue::recent` keeps.
pub const RECENT_CAPACITY: usize = 50;

/// How many events a watcher may fall behind before it loses the oldest ones.
pub const EVENT_CAPACITY: usize = 1024;

/// What happened to a hold. The names are the audit log's event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldEventKind {
    /// A statement was held.
    Hold,
    Approve,
    Deny,
    Expire,
    /// The client went away, cancelled, or pgwarden shut down: it never runs.
    Withdraw,
}

impl HoldEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldEventKind::Hold => "hold",
            HoldEventKind::Approve => "approve",
            HoldEventKind::Deny => "deny",
            HoldEventKind::Expire => "expire",
            HoldEventKind::Withdraw => "withdraw",
        }
    }
}

/// One thing that happened to one hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldEvent {
    pub kind: HoldEventKind,
    pub hold: HoldInfo,
    /// Who approved or denied.
    pub approver: Option<String>,
    /// A denial's reason, or why a hold was withdrawn.
    pub reason: Option<String>,
    /// When it happened, in seconds since the Unix epoch.
    pub at: u64,
}

impl HoldEvent {
    pub(super) fn new(
        kind: HoldEventKind,
        hold: HoldInfo,
        approver: Option<String>,
        reason: Option<String>,
    ) -> Self {
        HoldEvent {
            kind,
            hold,
            approver,
            reason,
            at: unix_now(),
        }
    }
}

impl HoldEvent {
    /// A decided hold as the event that decided it, `at` seconds since the Unix
    /// epoch; None for a pending hold.
    pub fn from_record(rec: super::HoldRecord, at: u64) -> Option<HoldEvent> {
        use super::HoldStatus as S;
        let kind = match rec.status {
            S::Pending => return None,
            S::Approved => HoldEventKind::Approve,
            S::Denied => HoldEventKind::Deny,
            S::Expired => HoldEventKind::Expire,
            S::Withdrawn => HoldEventKind::Withdraw,
        };
        Some(HoldEvent {
            kind,
            hold: rec.info,
            approver: rec.decided_by,
            reason: rec.reason,
            at,
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The last `RECENT_CAPACITY` decisions, newest first.
#[derive(Default)]
pub(super) struct Recent(VecDeque<HoldEvent>);

impl Recent {
    pub(super) fn push(&mut self, ev: HoldEvent) {
        if ev.kind == HoldEventKind::Hold {
            return;
        }
        if self.0.len() == RECENT_CAPACITY {
            self.0.pop_back();
        }
        self.0.push_front(ev);
    }

    pub(super) fn list(&self) -> Vec<HoldEvent> {
        self.0.iter().cloned().collect()
    }
}
