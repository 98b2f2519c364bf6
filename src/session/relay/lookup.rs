//! The relay's read of the target's catalog on the client's own connection, before
//! the guard decides: pgwarden's own read-only Query, whose replies never reach the
//! client. Inside the client's transaction it runs under pgwarden's savepoint,
//! released after it; if it fails, the transaction is rolled back to that savepoint
//! (as the probe's undo does), so the client's transaction is as it was. Used for
//! the impact probe's keys and estimates and for the guard's catalog lookups
//! ([`crate::session::guard::LookupOrder`]).

use bytes::BytesMut;

use super::probe::{query_message, SERVER_GRACE};
use super::{End, Relay};
use crate::impact::ProbePlan;
use crate::session::guard::{Decision, LookupOrder};

/// One result set: rows of text values (`None` for NULL).
pub(super) type Rows = Vec<Vec<Option<String>>>;

impl Relay {
    /// Runs `sql` (`sets` statements, each giving one result set) as pgwarden's own
    /// read. `None` when it failed, or gave another number of results; the client's
    /// transaction is then as before it.
    pub(super) async fn read_catalog(
        &mut self,
        sql: &str,
        sets: usize,
        plan: &ProbePlan,
        pbuf: &mut BytesMut,
        timeout: std::time::Duration,
    ) -> Result<Option<Vec<Rows>>, End> {
        let in_tx = plan.in_transaction();
        let text = if in_tx {
            format!("{}; {sql}; {}", plan.begin(), plan.release())
        } else {
            sql.to_string()
        };
        let r = self
            .roundtrip(&query_message(&text), pbuf, false, timeout)
            .await?;
        if in_tx && r.error.is_some() {
            self.undo(plan, pbuf, timeout).await?;
        }
        if r.error.is_some() {
            return Ok(None);
        }
        let mut results = r.results;
        if in_tx {
            // The SAVEPOINT's and RELEASE's own (empty) results.
            if results.len() != sets + 2 {
                return Ok(None);
            }
            results.pop();
            results.remove(0);
        }
        Ok((results.len() == sets).then_some(results))
    }

    /// Carries out a catalog lookup the guard asked for on the simple Query in the
    /// first `total` bytes of `cbuf`, then what the guard decides with its answer.
    pub(super) async fn lookup(
        &mut self,
        order: Box<LookupOrder>,
        total: usize,
    ) -> Result<(), End> {
        let answer = if self.wait_idle().await? {
            let mut pbuf = BytesMut::new();
            let plan = order.plan.clone();
            let timeout = plan.statement_timeout() + SERVER_GRACE;
            let rows = self
                .read_catalog(&order.sql, 1, &plan, &mut pbuf, timeout)
                .await?;
            self.leftover(pbuf);
            rows.and_then(|mut sets| sets.pop())
        } else {
            None
        };
        let decision = self.guard.after_lookup(*order, answer.as_deref());
        self.dispatch(decision, total).await
    }

    /// Carries out a decision that came after pgwarden's own steps (audited here).
    pub(super) async fn dispatch(&mut self, decision: Decision, total: usize) -> Result<(), End> {
        let decision = self.audited(decision, false).await;
        match decision {
            Decision::Probe(order) => self.run_probe(order, total).await,
            Decision::Trash(order) => self.run_trash(order, total).await,
            // `after_lookup` uses up the asks, so this ends.
            Decision::Lookup(order) => Box::pin(self.lookup(order, total)).await,
            Decision::Blast(order) => Box::pin(self.blast(order, total)).await,
            decision => self.carry_out(decision, total),
        }
    }
}
