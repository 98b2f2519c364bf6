//! The guard's side of a catalog lookup before deciding: a statement whose class
//! depends on the target's catalog ([`crate::classify::CatalogAsk`]: a column type
//! change that may only widen, a TRUNCATE of what may be the session's own
//! temporary table) and that its verdict would stop is looked up first
//! ([`Guard::lookup_order`]); the relay runs the read (`relay/lookup.rs`) and
//! [`Guard::after_lookup`] judges the statement with what it proved. Nothing here
//! does I/O. A lookup that fails or proves nothing leaves the statement as it was
//! classified: the lookup can only loosen a verdict on what the catalog shows.

use crate::catalog::refine;
use crate::classify::Statement;
use crate::impact::{ProbePlan, ProbeSettings};
use crate::policy::{Action, Verdict};

use super::{Decision, Guard};

/// A statement to look up in the target's catalog before it is decided.
#[derive(Debug)]
pub struct LookupOrder {
    /// The scope of the read (pgwarden's savepoint inside the client's transaction).
    pub plan: ProbePlan,
    /// The read-only query: one result set, rows for [`refine::read`].
    pub sql: String,
    text: String,
    stmts: Vec<Statement>,
}

impl Guard {
    /// A lookup, when `stmts` is one statement with asks that the catalog may settle
    /// and `verdict` would not let it run as it is. Only a simple Query in an idle
    /// session or a working transaction is looked up (a failed transaction would
    /// refuse the read; the statement is then judged as classified).
    pub(super) fn lookup_order(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        tx_status: u8,
    ) -> Option<Box<LookupOrder>> {
        let [stmt] = stmts else {
            return None;
        };
        if stmt.asks.is_empty()
            || matches!(verdict.action, Action::Allow | Action::Audit)
            || !matches!(tx_status, b'I' | b'T')
        {
            return None;
        }
        let sql = refine::sql(&stmt.asks)?;
        self.probes += 1;
        Some(Box::new(LookupOrder {
            plan: ProbePlan::new(self.probes, tx_status == b'T', ProbeSettings::default()),
            sql,
            text: text.to_string(),
            stmts: stmts.to_vec(),
        }))
    }

    /// The decision on a looked-up statement, given the rows of its read (`None`:
    /// the read failed or was not run).
    pub fn after_lookup(
        &mut self,
        order: LookupOrder,
        rows: Option<&[Vec<Option<String>>]>,
    ) -> Decision {
        let LookupOrder {
            text, mut stmts, ..
        } = order;
        for s in stmts.iter_mut() {
            let proven = rows.map_or_else(Vec::new, |r| refine::read(&s.asks, r));
            // Clears the asks: judged below without another lookup.
            refine::apply(s, &proven);
        }
        self.judge_full(&text, &stmts, false).0
    }
}
