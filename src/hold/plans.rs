//! Change sets approved ahead: a plan is what `pgwarden explain --plan` found in a
//! migration (each statement's fingerprint, classes and verdict, and how many times
//! it occurs); an approver approves it for a target, a user and/or application and a
//! time window; at deploy time each statement of the plan that the policy would hold
//! runs without waiting, at most as many times as the plan has it. Pure matching
//! here; the stores keep the approved plans and count their uses.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The plan file format's version.
pub const PLAN_VERSION: u32 = 1;

/// One distinct statement of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStatement {
    pub fingerprint: String,
    /// How many times the migration runs it.
    pub count: u32,
    pub classes: Vec<String>,
    /// The verdict `explain` gave (`allow`, `audit`, `hold`, `block`).
    pub verdict: String,
    /// The first occurrence's text, for the approver to read.
    pub sql: String,
}

/// What `pgwarden explain --plan FILE` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub version: u32,
    pub target: String,
    pub environment: String,
    /// The user and application explain judged for (the approval's defaults).
    pub user: String,
    pub application: String,
    pub policy_sha256: String,
    pub statements: Vec<PlanStatement>,
}

impl Plan {
    /// Groups statements by fingerprint, in first-seen order.
    pub fn from_statements(
        target: &str,
        environment: &str,
        user: &str,
        application: &str,
        policy_sha256: &str,
        items: impl IntoIterator<Item = (String, Vec<String>, String, String)>,
    ) -> Plan {
        let mut statements: Vec<PlanStatement> = Vec::new();
        for (fingerprint, classes, verdict, sql) in items {
            match statements.iter_mut().find(|s| s.fingerprint == fingerprint) {
                Some(s) => s.count += 1,
                None => statements.push(PlanStatement {
                    fingerprint,
                    count: 1,
                    classes,
                    verdict,
                    sql,
                }),
            }
        }
        Plan {
            version: PLAN_VERSION,
            target: target.to_string(),
            environment: environment.to_string(),
            user: user.to_string(),
            application: application.to_string(),
            policy_sha256: policy_sha256.to_string(),
            statements,
        }
    }

    /// The plan's name: the first 12 hex digits of the SHA-256 of what it allows
    /// (target, fingerprints and counts), so the same migration has the same name.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.target.as_bytes());
        for s in &self.statements {
            h.update(b"\n");
            h.update(s.fingerprint.as_bytes());
            h.update(b" ");
            h.update(s.count.to_string().as_bytes());
        }
        hex::encode(h.finalize())[..12].to_string()
    }

    /// Fingerprint → count, for the statements the plan releases (those the policy
    /// would hold; a block stays a block).
    pub fn releases(&self) -> BTreeMap<String, u32> {
        let mut m = BTreeMap::new();
        for s in self.statements.iter().filter(|s| s.verdict == "hold") {
            *m.entry(s.fingerprint.clone()).or_insert(0) += s.count;
        }
        m
    }
}

/// A plan an approver approved: for whom, where and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedPlan {
    pub id: String,
    pub target: String,
    /// Database user the statements must come from (None: any).
    pub user: Option<String>,
    /// `application_name` they must come with (None: any).
    pub application: Option<String>,
    /// Unix seconds: the window the plan can be used in.
    pub not_before: i64,
    pub not_after: i64,
    pub approver: String,
    /// Fingerprint → (times allowed, times used).
    pub statements: BTreeMap<String, (u32, u32)>,
}

/// A statement that would be held, asking whether an approved plan releases it.
#[derive(Debug, Clone, Copy)]
pub struct PlanRequest<'a> {
    pub target: &'a str,
    pub user: &'a str,
    pub application: &'a str,
    pub fingerprint: &'a str,
    /// Unix seconds.
    pub now: i64,
}

impl ApprovedPlan {
    /// Whether this plan covers the request and has a use left.
    pub fn covers(&self, r: &PlanRequest<'_>) -> bool {
        self.target == r.target
            && self.user.as_deref().is_none_or(|u| u == r.user)
            && self
                .application
                .as_deref()
                .is_none_or(|a| a == r.application)
            && (self.not_before..self.not_after).contains(&r.now)
            && self
                .statements
                .get(r.fingerprint)
                .is_some_and(|(allowed, used)| used < allowed)
    }
}

/// The first plan (by approval order) that covers `r`.
pub fn find<'p>(plans: &'p [ApprovedPlan], r: &PlanRequest<'_>) -> Option<&'p ApprovedPlan> {
    plans.iter().find(|p| p.covers(r))
}

/// Approved plans of one process (the in-memory store's).
#[derive(Default)]
pub struct PlanBook {
    plans: Mutex<Vec<ApprovedPlan>>,
}

impl PlanBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ApprovedPlan>> {
        self.plans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds or replaces (same id) an approved plan.
    pub fn insert(&self, p: ApprovedPlan) {
        let mut plans = self.lock();
        plans.retain(|q| q.id != p.id);
        plans.push(p);
    }

    pub fn list(&self) -> Vec<ApprovedPlan> {
        self.lock().clone()
    }

    /// Removes plan `id`; whether it was there.
    pub fn revoke(&self, id: &str) -> bool {
        let mut plans = self.lock();
        let before = plans.len();
        plans.retain(|p| p.id != id);
        plans.len() < before
    }

    /// Uses one occurrence of the statement from the first plan covering it, and
    /// returns that plan (its id and approver).
    pub fn claim(&self, r: &PlanRequest<'_>) -> Option<ApprovedPlan> {
        let mut plans = self.lock();
        plans.retain(|p| p.not_after > r.now);
        let p = plans.iter_mut().find(|p| p.covers(r))?;
        if let Some((_, used)) = p.statements.get_mut(r.fingerprint) {
            *used += 1;
        }
        Some(p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::from_statements(
            "prod",
            "production",
            "deploy",
            "alembic",
            "sha",
            [
                (
                    "f1".into(),
                    vec!["drop.table".into()],
                    "hold".into(),
                    "DROP TABLE a".into(),
                ),
                (
                    "f2".into(),
                    vec!["write".into()],
                    "allow".into(),
                    "INSERT …".into(),
                ),
                (
                    "f1".into(),
                    vec!["drop.table".into()],
                    "hold".into(),
                    "DROP TABLE a".into(),
                ),
                (
                    "f3".into(),
                    vec!["truncate".into()],
                    "block".into(),
                    "TRUNCATE b".into(),
                ),
            ],
        )
    }

    fn approved(p: &Plan, user: Option<&str>) -> ApprovedPlan {
        ApprovedPlan {
            id: p.id(),
            target: p.target.clone(),
            user: user.map(str::to_string),
            application: None,
            not_before: 100,
            not_after: 200,
            approver: "alice".into(),
            statements: p.releases().into_iter().map(|(f, n)| (f, (n, 0))).collect(),
        }
    }

    fn req<'a>(fp: &'a str, user: &'a str, now: i64) -> PlanRequest<'a> {
        PlanRequest {
            target: "prod",
            user,
            application: "alembic",
            fingerprint: fp,
            now,
        }
    }

    #[test]
    fn statements_are_counted_and_only_holds_are_released() {
        let p = plan();
        assert_eq!(p.statements.len(), 3);
        assert_eq!(p.statements[0].count, 2);
        assert_eq!(p.releases(), BTreeMap::from([("f1".to_string(), 2)]));
        assert_eq!(p.id().len(), 12);
        assert_eq!(p.id(), plan().id());
    }

    #[test]
    fn a_plan_releases_each_statement_as_often_as_it_has_it() {
        let p = plan();
        let book = PlanBook::default();
        book.insert(approved(&p, Some("deploy")));
        assert!(book.claim(&req("f1", "deploy", 150)).is_some());
        assert!(book.claim(&req("f1", "deploy", 151)).is_some());
        assert!(
            book.claim(&req("f1", "deploy", 152)).is_none(),
            "a third time"
        );
        let book = PlanBook::default();
        book.insert(approved(&p, Some("deploy")));
        for (r, why) in [
            (req("f1", "mallory", 150), "another user"),
            (req("f1", "deploy", 99), "before the window"),
            (req("f1", "deploy", 200), "after the window"),
            (req("f2", "deploy", 150), "allowed anyway: not released"),
            (req("f3", "deploy", 150), "a block stays a block"),
            (req("f9", "deploy", 150), "not in the plan"),
        ] {
            assert!(book.claim(&r).is_none(), "{why}");
        }
        let mut other = req("f1", "deploy", 150);
        other.target = "staging";
        assert!(book.claim(&other).is_none(), "another target");
        let any = PlanBook::default();
        any.insert(approved(&p, None));
        assert!(any.claim(&req("f1", "someone", 150)).is_some(), "any user");
    }
}
