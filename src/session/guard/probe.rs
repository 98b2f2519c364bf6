//! The guard's side of the impact probe: when a statement is to be measured
//! before it may stand ([`Guard::probe_order`]), and the decision once the probe has
//! read what it changed ([`Guard::after_probe`]). The relay runs the probe
//! (`relay/probe.rs`); nothing here does I/O.

use std::time::{Duration, Instant};

use crate::catalog::{key_shape, Catalog, KeyBound, NotBounded};
use crate::classify::Statement;
use crate::impact::{Impact, Measured, ProbePlan};
use crate::policy::{Action, Confirm, ImpactStep, Judgement, ProbeCall, Verdict};
use crate::protocol::sqlstate::SqlState;

use super::{refuse, Decision, Guard, Outcome, Permit};

/// A statement the relay must run inside pgwarden's savepoint (or transaction) and
/// measure before the guard decides on it.
#[derive(Debug)]
pub struct ProbeOrder {
    pub plan: ProbePlan,
    pub(super) call: ProbeCall,
    text: String,
    stmts: Vec<Statement>,
    /// The re-run of an approved impact hold: the impact the approver saw, which
    /// the re-run must not exceed.
    approved: Option<Impact>,
    /// The statement has the shape of a key-bounded one and the session's catalog
    /// is missing, stale or was read for other tables: the relay reads the catalog
    /// of the tables with these names first ([`Guard::catalog_loaded`]).
    pub wants_catalog: Option<Vec<String>>,
    /// An extended-protocol batch measured as a whole (`guard/extended.rs`);
    /// `None`: a simple Query.
    pub batch: Option<BatchInfo>,
    /// A simple Query of several statements, run one by one (`guard/multi.rs`).
    pub multi: Option<super::multi::MultiInfo>,
}

/// The extended-protocol batch a probe runs: the client's messages up to and with
/// its Sync, as they came.
#[derive(Debug, Clone)]
pub struct BatchInfo {
    pub bytes: Vec<u8>,
    /// The length of its first message (a refusal or hold applies to it; the rest
    /// of the batch follows as after any refusal or hold).
    pub first_len: usize,
    /// The statement its Parse names, if it has a Parse.
    pub parse_name: Option<String>,
}

impl ProbeOrder {
    /// The order to measure a Query message of several statements.
    pub(super) fn multi(
        plan: ProbePlan,
        call: ProbeCall,
        text: String,
        stmts: Vec<Statement>,
        multi: super::multi::MultiInfo,
    ) -> ProbeOrder {
        ProbeOrder {
            plan,
            call,
            text,
            stmts,
            approved: None,
            wants_catalog: None,
            batch: None,
            multi: Some(multi),
        }
    }

    /// Brings the plan up to the transaction status the server reported last
    /// (`tx_status`), which requests relayed since the decision may have changed;
    /// `Err` (the reason) when the probe cannot run in it.
    pub fn in_status(&mut self, tx_status: u8) -> Result<(), String> {
        let (lead, tail) = self
            .multi
            .as_ref()
            .map_or((false, false), |m| (m.lead.is_some(), m.tail.is_some()));
        match tx_status {
            b'I' if tail && !lead => {
                Err("the message's COMMIT has no transaction to commit".to_string())
            }
            b'I' | b'T' => {
                // A message that opens with the client's BEGIN runs inside the
                // transaction that BEGIN opens, under pgwarden's savepoint.
                self.plan = self.plan.with_transaction(tx_status == b'T' || lead);
                Ok(())
            }
            _ => Err("the client's transaction failed before the statement ran".to_string()),
        }
    }
}

/// One result row as text (`None` for NULL).
pub type TextRow<'a> = Vec<Option<&'a str>>;

/// How long a session's catalog is trusted; DDL through the session marks it stale
/// at once. DDL by other sessions is seen at the next load.
pub(super) const CATALOG_MAX_AGE: Duration = Duration::from_secs(30);

/// How many table names a session's catalog covers at most.
const CATALOG_NAMES: usize = 32;

/// Whether `limits` can be exceeded by a statement that changes at most one row of
/// one table and nothing else (then a key-bounded statement needs measuring).
pub(super) fn one_row_may_exceed(limits: &crate::policy::ImpactLimits) -> bool {
    limits.rows.is_some_and(|r| r < 1) || (limits.share.is_some() && limits.share_min_rows < 1)
}

/// What the probe found.
#[derive(Debug)]
pub enum ProbeResult {
    /// The statement ran and its effect was read (or could not be: `Unknown`).
    Measured(Measured),
    /// The statement itself failed with a server error (not the probe's timeouts):
    /// it changed nothing, and the client gets that error as it would directly.
    Failed,
    /// The probe could not start (e.g. the client had pipelined requests ahead of
    /// this one): the statement has not run.
    NotRun(String),
}

impl ProbeResult {
    pub(super) fn unknown_reason(&self) -> Option<String> {
        match self {
            ProbeResult::Measured(Measured::Unknown(u)) => Some(u.describe()),
            ProbeResult::NotRun(why) => Some(format!("impact unknown: {why}")),
            _ => None,
        }
    }
}

impl Guard {
    /// Whether the statement just judged (`verdict` on `stmts`) must be probed
    /// first; `Err(verdict)` replaces the verdict without a probe (measuring could
    /// not end in an allow). Only single statements of the simple protocol, in a
    /// session that is idle or inside a working transaction, are probed; every other
    /// statement keeps the rule's `on_unknown` verdict.
    pub(super) fn probe_order(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        tx_status: u8,
    ) -> Result<Option<Box<ProbeOrder>>, Verdict> {
        use crate::classify::Class;
        let copies = stmts.iter().any(|s| {
            s.classes
                .iter()
                .any(|c| matches!(c, Class::CopyIn | Class::CopyOut | Class::CopyProgram))
        });
        // `tx_status` E also stands for "not a simple Query" (FunctionCall), and a
        // COPY (… RETURNING) streams its rows: neither can be held back.
        if copies || !matches!(tx_status, b'I' | b'T' | 0) {
            // A failed transaction runs nothing: the statement gets the server's
            // "current transaction is aborted" error, whatever the verdict.
            return Ok(None);
        }
        if stmts.len() > 1 {
            // Several statements: measured one by one where that is faithful;
            // otherwise the verdict (the rule's `on_unknown`) stands.
            return Ok(self.multi_order(text, stmts, verdict, tx_status));
        }
        let step = self
            .shared
            .policy()
            .impact_step(stmts, &self.context(), verdict);
        match step {
            ImpactStep::None => Ok(None),
            ImpactStep::Decided(v) => Err(v),
            ImpactStep::Probe(call) => {
                let mut wants_catalog = None;
                if !one_row_may_exceed(&call.limits) {
                    let key = stmts.first().map_or(text, |s| s.sql.as_str());
                    if let Some(shape) = self.key_shapes.get(key, text) {
                        let now = Instant::now();
                        let bound = self
                            .catalog
                            .as_ref()
                            .map(|c| c.key_bound(&shape, now, CATALOG_MAX_AGE));
                        match bound {
                            // At most one row, within every limit: no probe.
                            Some(KeyBound::AtMostOneRow { .. }) => return Err(call.within),
                            // No catalog, a stale one, or one read for other tables:
                            // read it when idle or inside a working transaction
                            // (under pgwarden's own savepoint there, so a failed
                            // read leaves the client's transaction as it was); a
                            // failed transaction is never probed.
                            None
                            | Some(KeyBound::Unknown(NotBounded::Stale | NotBounded::NotRead))
                                if matches!(tx_status, b'I' | b'T') =>
                            {
                                wants_catalog = Some(self.catalog_names(&shape.table));
                            }
                            _ => {}
                        }
                    }
                }
                self.probes += 1;
                Ok(Some(Box::new(ProbeOrder {
                    plan: ProbePlan::new(self.probes, tx_status == b'T', call.limits.probe),
                    call: *call,
                    text: text.to_string(),
                    stmts: stmts.to_vec(),
                    approved: None,
                    wants_catalog,
                    batch: None,
                    multi: None,
                })))
            }
        }
    }

    /// The decision once the probe of `order` ended with `result`. `Forward` means:
    /// let the statement's effect stand and give the client its replies (or, for
    /// `NotRun`, forward it as it is); anything else: undo the statement, then carry
    /// out the decision.
    pub fn after_probe(&mut self, mut order: Box<ProbeOrder>, result: ProbeResult) -> Decision {
        if let Some(approved) = order.approved.take() {
            return rerun_refusal(&approved, &result, order.batch.is_some());
        }
        let (verdict, note) = match &result {
            ProbeResult::Failed => (order.call.within.clone(), None),
            ProbeResult::Measured(Measured::Known(impact)) => {
                let primary: Vec<String> = order
                    .stmts
                    .iter()
                    .flat_map(|s| s.objects.iter().cloned())
                    .collect();
                let sentence = impact.sentence(&primary);
                match order.call.limits.judge(&Measured::Known(impact.clone())) {
                    Judgement::Within => (order.call.within.clone(), Some(sentence)),
                    Judgement::Over(why) => {
                        order.approved = Some(impact.clone());
                        (order.call.over.clone(), Some(format!("{sentence} ({why})")))
                    }
                    Judgement::Unknown => (order.call.unknown.clone(), Some(sentence)),
                }
            }
            other => (order.call.unknown.clone(), other.unknown_reason()),
        };
        let ran_ok = !matches!(result, ProbeResult::Failed);
        self.decide_measured(order, verdict, note, ran_ok)
    }

    /// Carries out `verdict` on a measured statement, with `note` (the measured
    /// impact) in the audit record, the hold and the client's message.
    pub(super) fn decide_measured(
        &mut self,
        order: Box<ProbeOrder>,
        mut verdict: Verdict,
        note: Option<String>,
        ran_ok: bool,
    ) -> Decision {
        let ProbeOrder {
            text, stmts, batch, ..
        } = &*order;
        let (text, stmts) = (text.clone(), stmts.clone());
        // A batch's refusal or hold: the server skips the rest of it (to Sync).
        let extended = batch.is_some();
        self.probe_note = note.clone();
        if verdict.action != Action::Allow && verdict.action != Action::Audit {
            if let Some(n) = &note {
                let detail = match verdict.message.as_deref() {
                    Some(m) => format!("pgwarden measured: {n}. {m}"),
                    None => format!("pgwarden measured: {n}."),
                };
                verdict.message = Some(detail.into());
            }
        }
        let (outcome, decision) = match verdict.action {
            Action::Allow => (Outcome::Allow, Decision::Forward(Permit(()))),
            Action::Audit => (Outcome::Audit, Decision::Forward(Permit(()))),
            Action::Block => (Outcome::Block, self.block(&stmts, &verdict, extended)),
            Action::Hold => match verdict.confirm {
                Confirm::SelfConfirm => self.self_confirm(&text, &stmts, &verdict, extended),
                Confirm::Approver => {
                    let d = self.hold_for_approver(&text, &stmts, &verdict, extended);
                    if matches!(d, Decision::Hold { .. })
                        && (order.approved.is_some() || order.multi.is_some())
                    {
                        // Approval re-runs it, bounded by what was measured now.
                        self.held_probe = Some(order);
                    }
                    (Outcome::HoldApprover, d)
                }
            },
        };
        self.conclude(&text, &stmts, &verdict, outcome, &decision);
        self.probe_note = None;
        if extended {
            self.ext_decided(&decision);
        }
        if ran_ok && matches!(decision, Decision::Forward(_)) {
            // It ran (or will): a PREPARE among it is the session's now.
            self.remember(&stmts, None);
        }
        decision
    }

    /// The rows of the catalog queries (`None`: they failed), read by the relay
    /// for `order`; then whether `order` still needs its probe (`Err`) or is
    /// key-bounded and decided (`Ok`, a forward of the statement as it is).
    pub fn catalog_loaded(
        &mut self,
        mut order: Box<ProbeOrder>,
        rows: Option<(&[TextRow<'_>], &[TextRow<'_>])>,
    ) -> Result<Decision, Box<ProbeOrder>> {
        let names = order.wants_catalog.take().unwrap_or_default();
        let loaded = rows.and_then(|(t, k)| crate::catalog::load::tables(t, k).ok());
        let Some(tables) = loaded else {
            // Unknown keys: measure.
            self.catalog = None;
            return Err(order);
        };
        let now = Instant::now();
        let catalog = Catalog::named(names, tables, now);
        let bounded = key_shape(&order.text).is_some_and(|shape| {
            matches!(
                catalog.key_bound(&shape, now, CATALOG_MAX_AGE),
                KeyBound::AtMostOneRow { .. }
            )
        });
        self.catalog = Some(catalog);
        if !bounded {
            return Err(order);
        }
        // Only an allow or audit verdict within the limits lets a key-bound
        // statement run unprobed; anything stricter (impact_step never hands one
        // here) is probed like any other statement.
        let outcome = match order.call.within.action {
            Action::Allow => Outcome::Allow,
            Action::Audit => Outcome::Audit,
            _ => return Err(order),
        };
        let ProbeOrder {
            text, stmts, call, ..
        } = *order;
        let verdict = call.within;
        let decision = Decision::Forward(Permit(()));
        self.conclude(&text, &stmts, &verdict, outcome, &decision);
        self.remember(&stmts, None);
        Ok(decision)
    }

    /// After a statement that may change the schema (DDL, code, anything not a
    /// plain read or write), the session's catalog is no longer trusted.
    pub(super) fn note_schema_change(&mut self, stmts: &[Statement]) {
        use crate::classify::Class;
        if self.catalog.is_none() {
            return;
        }
        let plain = |c: &Class| {
            matches!(
                c,
                Class::Read
                    | Class::Write
                    | Class::DeleteBounded
                    | Class::DeleteMaybeUnbounded
                    | Class::DeleteUnbounded
                    | Class::UpdateBounded
                    | Class::UpdateMaybeUnbounded
                    | Class::UpdateUnbounded
                    | Class::MergeDelete
                    | Class::MergeUpdate
                    | Class::InsertUpsert
                    | Class::Transaction
            )
        };
        if stmts.iter().any(|s| !s.classes.iter().all(plain)) {
            if let Some(c) = &mut self.catalog {
                c.mark_stale();
            }
        }
    }

    /// The table names to read the catalog for, so that it covers `table`: the
    /// names the session's catalog covers (fresh or not: one read renews them all)
    /// and `table`, the newest [`CATALOG_NAMES`] of them. The session keeps the
    /// catalog of the tables it writes only: the whole catalog of a database of
    /// 2,000 tables took about a megabyte in every session.
    fn catalog_names(&self, table: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .catalog
            .as_ref()
            .and_then(|c| c.names())
            .map_or_else(Vec::new, <[String]>::to_vec);
        names.retain(|n| n != table);
        names.push(table.to_string());
        let extra = names.len().saturating_sub(CATALOG_NAMES);
        names.drain(..extra);
        names
    }

    /// On approval of a hold: the re-run probe, if the hold was decided by a
    /// measurement.
    pub(super) fn approved_rerun(&mut self) -> Option<Box<ProbeOrder>> {
        let mut order = self.held_probe.take()?;
        self.probes += 1;
        order.plan = ProbePlan::new(
            self.probes,
            order.plan.in_transaction(),
            order.call.limits.probe,
        );
        Some(order)
    }
}

/// The re-run of an approved statement: it stands only if it changed no more
/// than the approver saw.
pub(super) fn rerun_refusal(approved: &Impact, result: &ProbeResult, extended: bool) -> Decision {
    let why = match result {
        ProbeResult::Failed => return Decision::Forward(Permit(())),
        ProbeResult::Measured(Measured::Known(now)) => match now.exceeds(approved) {
            None => return Decision::Forward(Permit(())),
            Some(why) => why,
        },
        other => other
            .unknown_reason()
            .unwrap_or_else(|| "impact unknown".to_string()),
    };
    refuse(
        SqlState::PW_IMPACT_EXCEEDED,
        "pgwarden rolled back the approved statement: it would now change more than was approved",
        Some(&why),
        Some("The data changed since the approval; send the statement again for a new decision."),
        extended,
    )
}
