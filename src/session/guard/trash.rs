//! The guard's side of the trash: whether a statement a trash rule matched is one
//! the proxy carries out by moving the table into the trash
//! ([`Guard::trash_order`]), and the decision once the relay has tried
//! ([`Guard::after_trash`]). The relay runs the SQL (`relay/trash.rs`); nothing here
//! does I/O.

use std::time::Duration;

use crate::classify::Statement;
use crate::impact::{ProbePlan, ProbeSettings};
use crate::policy::{Policy, Verdict};
use crate::trash::plan::Context;
use crate::trash::statement::{self, TrashRequest};

use super::{Decision, Guard, Outcome, Permit};

/// A single-statement simple-Query `DROP TABLE` that a trash rule matched: the relay
/// runs it as written in a savepoint that is rolled back, then the trash plan, in
/// the client's transaction (or pgwarden's own outside one).
#[derive(Debug)]
pub struct TrashOrder {
    text: String,
    stmts: Vec<Statement>,
    /// The rule's verdict: its action is the rule's fallback.
    verdict: Verdict,
    pub request: TrashRequest,
    pub retention: Duration,
    /// The rule's limit for a TRUNCATE's copy.
    pub truncate_max_bytes: u64,
    /// Numbers pgwarden's savepoint, as for the impact probe.
    seq: u64,
    user: String,
}

impl TrashOrder {
    /// The scope pgwarden's steps run in, for the transaction status the server
    /// reported just before (`T`: a savepoint in the client's transaction), with the
    /// probe's timeouts on pgwarden's own statements.
    pub fn plan(&self, in_transaction: bool) -> ProbePlan {
        ProbePlan::new(self.seq, in_transaction, ProbeSettings::default())
    }

    /// Who and what, for the registry row.
    pub fn context(&self) -> Context<'_> {
        Context {
            by: &self.user,
            statement: &self.text,
            retention: Some(self.retention),
            truncate_max_bytes: self.truncate_max_bytes,
        }
    }
}

/// How the relay's attempt ended.
#[derive(Debug)]
pub enum TrashResult {
    /// Moved into the trash (not yet committed); the client is told so.
    Trashed,
    /// The server refused the DROP as written: the client gets the server's error
    /// (for `DROP DATABASE`: the drop's error, or its NOTICE for `IF EXISTS` of a
    /// missing database, as the relay built it).
    Refused,
    /// Nothing to keep (a temporary table, `IF EXISTS` of a missing one): the
    /// statement is forwarded as it is.
    AsWritten(&'static str),
    /// The trash could not stand in for the statement (not faithful, a timeout, a
    /// step that failed, a session not ready): the rule's fallback applies. The
    /// statement has not run, or was rolled back.
    Fallback(String),
}

/// `verdict` with the reason the trash did not stand in for the statement in its
/// message (the client sees it with the fallback's hold or refusal).
pub(super) fn with_reason(mut verdict: Verdict, why: &str) -> Verdict {
    let note = format!("pgwarden could not move this to the trash: {why}.");
    verdict.message = Some(match verdict.message.as_deref() {
        Some(m) => format!("{note} {m}").into(),
        None => note.into(),
    });
    verdict
}

impl Guard {
    /// `Ok` when the relay is to carry out the statement with the trash. `Err(Some)`:
    /// a trash rule decided, but the trash does not cover the statement (the
    /// reason; the fallback applies); `Err(None)`: not a trash rule's verdict.
    pub(super) fn trash_order(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        policy: &Policy,
    ) -> Result<Box<TrashOrder>, Option<String>> {
        let rule = verdict
            .rule
            .as_deref()
            .and_then(|name| policy.trash_rule(name))
            .ok_or(None)?;
        let [stmt] = stmts else {
            return Err(Some(
                "the message has several statements (only a DROP TABLE sent alone is trashed)"
                    .into(),
            ));
        };
        let request = statement::read(text).map_err(|u| Some(u.0))?;
        // The classifier must agree on what the statement is (its classes are what
        // the rule matched).
        if !stmt.classes.contains(&request.class()) {
            return Err(Some(format!(
                "the statement's classes ({}) are not the {} the trash reads",
                stmt.classes
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                request.class().as_str()
            )));
        }
        // `E` is also a FunctionCall's status here: only a simple Query in a
        // working session is carried out (the relay checks again once idle).
        if !matches!(self.tx_status, b'I' | b'T') {
            return Err(Some("the transaction is not in a state to run it".into()));
        }
        self.probes += 1;
        Ok(Box::new(TrashOrder {
            text: text.to_string(),
            stmts: stmts.to_vec(),
            verdict: verdict.clone(),
            request,
            retention: rule.retention,
            truncate_max_bytes: rule.truncate_max_bytes,
            seq: self.probes,
            user: self.user.clone(),
        }))
    }

    /// The decision once the relay tried `order`. `Forward` for `Trashed` and
    /// `Refused` means: give the client the replies the relay built (the trash's
    /// answer, or the server's error); for `AsWritten`: forward the statement as it
    /// is. For `Fallback`, the rule's fallback (a hold or a refusal).
    #[allow(clippy::boxed_local)] // the order travels boxed in `Decision::Trash`
    pub fn after_trash(&mut self, order: Box<TrashOrder>, result: TrashResult) -> Decision {
        let TrashOrder {
            text,
            stmts,
            verdict,
            ..
        } = *order;
        if let TrashResult::AsWritten(why) = &result {
            tracing::info!(reason = %why, "trash: nothing to keep; run as written");
        }
        let (verdict, outcome, decision) = match result {
            TrashResult::Trashed | TrashResult::Refused => {
                (verdict, Outcome::Trashed, Decision::Forward(Permit(())))
            }
            TrashResult::AsWritten(_) => (verdict, Outcome::Trashed, Decision::Forward(Permit(()))),
            TrashResult::Fallback(why) => {
                tracing::info!(reason = %why, "trash: the rule's fallback applies");
                let verdict = with_reason(verdict, &why);
                let shadow = false;
                let (outcome, decision) =
                    self.carry_verdict(&text, &stmts, &verdict, false, shadow);
                (verdict, outcome, decision)
            }
        };
        self.conclude(&text, &stmts, &verdict, outcome, &decision);
        decision
    }

    /// Records that the trash of the statement decided last stood (after its
    /// commit or release): item `p` with `retention`.
    pub fn record_trash(&self, p: &crate::trash::plan::TrashPlan, retention: Duration) {
        self.shared
            .audit
            .record(crate::audit::Event::Trash(crate::audit::TrashEvent {
                session: self.session_id,
                statement_id: self.statements,
                target: self.target.name.clone(),
                user: self.user.clone(),
                item: p.id,
                original: p.original.clone(),
                trash_schema: p.trash_name.clone(),
                size_bytes: p.size,
                retention_s: retention.as_secs(),
            }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Action;

    #[test]
    fn the_reason_comes_before_the_rules_message() {
        let mut v = Verdict::allow();
        v.action = Action::Hold;
        let v = with_reason(v, "a partition of another table");
        assert_eq!(
            v.message.as_deref(),
            Some("pgwarden could not move this to the trash: a partition of another table.")
        );
        let mut v2 = Verdict::allow();
        v2.message = Some("ask the DBA".into());
        let v2 = with_reason(v2, "x");
        assert_eq!(
            v2.message.as_deref(),
            Some("pgwarden could not move this to the trash: x. ask the DBA")
        );
    }
}
