//! The guard's side of probing the extended protocol. A data-changing statement the
//! impact rule wants measured is judged where it runs, at its Bind, not at its
//! Parse (a Parse runs nothing): its Parse is let through and the name remembered
//! (`marked`). One batch of the common driver shape — `[Parse,] Bind, [Describe,]
//! Execute (no row limit), Sync` at the start of a batch — is measured as a whole
//! ([`Guard::ext_batch`]); a Bind of a marked statement in any other shape (several
//! Executes per Sync, Flush-based pipelining, a row limit, a Bind without its
//! Execute) gets the rule's `on_unknown` verdict ([`Guard::ext_bind`]).
//!
//! Marks only grow, except where the server is sure to have dropped the statement
//! (a Close or an unnamed Parse that starts a batch, so cannot be skipped): a stale
//! mark makes pgwarden stricter, never looser.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::classify::Statement;
use crate::policy::{ImpactStep, Verdict};
use crate::protocol::frontend;

use super::{Decision, Guard, Permit, ProbeOrder};
use crate::session::state::SessionState;

/// A whole client message of a batch: its type and body.
pub type Msg<'a> = (u8, &'a [u8]);

/// The one batch shape the probe measures: an optional Parse of the statement the
/// Bind uses, one Bind, Describes, one Execute of that portal without a row limit,
/// and the Sync that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Single<'a> {
    /// The Parse in the batch (name, SQL text), if any; the Bind binds it.
    pub parse: Option<(&'a [u8], &'a [u8])>,
    /// The statement the Bind binds.
    pub stmt: &'a [u8],
}

/// The batch `msgs` (ending in its Sync) in the measured shape, or `None`.
pub fn single<'a>(msgs: &[Msg<'a>]) -> Option<Single<'a>> {
    let (last, rest) = msgs.split_last()?;
    if last.0 != frontend::SYNC {
        return None;
    }
    let (exec, rest) = rest.split_last()?;
    if exec.0 != frontend::EXECUTE {
        return None;
    }
    let (portal, max_rows) = frontend::execute(exec.1)?;
    if max_rows != 0 {
        return None;
    }
    let mut parse = None;
    let mut bind: Option<(&[u8], &[u8])> = None;
    for &(tag, body) in rest {
        match tag {
            frontend::PARSE if parse.is_none() && bind.is_none() => {
                let p = frontend::parse(body)?;
                parse = Some((p.name, p.query));
            }
            frontend::BIND if bind.is_none() => bind = Some(frontend::bind_names(body)?),
            frontend::DESCRIBE => {
                frontend::target(body)?;
            }
            _ => return None,
        }
    }
    let (bound_portal, stmt) = bind?;
    if bound_portal != portal {
        return None;
    }
    if let Some((name, _)) = parse {
        if name != stmt {
            return None;
        }
    }
    Some(Single { parse, stmt })
}

/// A statement let through at its Parse, to be judged where it runs.
#[derive(Debug, Clone)]
struct Marked {
    text: String,
    stmts: Arc<[Statement]>,
}

/// The session's extended-protocol state, as far as probing needs it.
#[derive(Debug, Default)]
pub struct Extended {
    /// A message since the last Sync (or Query, FunctionCall): the next Parse or
    /// Bind does not start a batch.
    open: bool,
    /// Prepared statements whose Parse was let through unjudged, by name.
    marked: HashMap<String, Marked>,
    /// Names parsed earlier in this batch as statements that need no probe: a Bind
    /// of one binds that statement (had its Parse failed, the server would skip the
    /// Bind too).
    fresh: HashSet<String>,
    /// The Parse being decided needs a probe where it runs (set by `judge_full`):
    /// the statement its name is to stand for.
    deferring: Option<Marked>,
    /// The Parse being decided (set while `decide` handles one).
    parsing: bool,
    /// The batch this message belongs to was decided as a whole and held; once the
    /// hold is approved its other messages are part of that decision.
    released: bool,
}

impl Extended {
    /// Whether a Parse or Bind now would start a batch.
    pub fn at_start(&self) -> bool {
        !self.open
    }

    /// A client message is about to be decided (`start`: it starts a batch).
    fn seen(&mut self, tag: u8) {
        if matches!(
            tag,
            frontend::SYNC | frontend::QUERY | frontend::FUNCTION_CALL
        ) {
            self.open = false;
            self.fresh.clear();
            self.released = false;
        } else {
            self.open = true;
        }
    }

    fn mark(&mut self, name: &str, text: &str, stmts: Arc<[Statement]>) {
        self.fresh.remove(name);
        self.marked.insert(
            name.to_string(),
            Marked {
                text: text.to_string(),
                stmts,
            },
        );
    }

    /// The marked statement a Bind of `name` binds, if it is one.
    fn bound(&self, name: &str) -> Option<&Marked> {
        if self.fresh.contains(name) {
            return None;
        }
        self.marked.get(name)
    }
}

/// What to do with a batch at the start of which the relay asked.
#[derive(Debug)]
pub enum BatchPlan {
    /// Decide message by message, as always.
    Each,
    /// Measure the whole batch (the first `len` bytes of the client's buffer).
    Probe(Box<ProbeOrder>),
    /// Decided unmeasured: forward the whole batch, or refuse or hold its first
    /// message (the rest follows the first, as for any refusal or hold).
    Decided(Decision),
}

impl Guard {
    /// Whether a Parse or Bind now starts a batch.
    pub fn ext_at_start(&self) -> bool {
        self.ext.at_start()
    }

    /// Called by `decide` for every message before it is decided.
    pub(super) fn ext_seen(&mut self, tag: u8) -> bool {
        let start = self.ext.at_start();
        self.ext.seen(tag);
        self.ext.parsing = tag == frontend::PARSE;
        self.ext.deferring = None;
        start
    }

    /// `judge_full` on an extended-protocol statement: whether its Parse is let
    /// through, to be measured (or judged) where it runs.
    pub(super) fn ext_defers(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
    ) -> bool {
        if !self.ext.parsing {
            return false;
        }
        let step = self
            .shared
            .policy()
            .impact_step(stmts, &self.context(), verdict);
        if !matches!(step, ImpactStep::Probe(_)) {
            return false;
        }
        self.ext.deferring = Some(Marked {
            text: text.to_string(),
            stmts: Arc::from(stmts),
        });
        true
    }

    /// After `decide` decided the Parse `name` (`start`: it started a batch):
    /// remember what a Bind of it binds.
    pub(super) fn ext_parsed(&mut self, name: &str, start: bool, forwarded: bool) {
        self.ext.parsing = false;
        match self.ext.deferring.take() {
            Some(m) => self.ext.mark(name, &m.text, m.stmts),
            None if forwarded => {
                self.ext.fresh.insert(name.to_string());
                if name.is_empty() && start {
                    // Processed for sure: the server dropped the old unnamed one.
                    self.ext.marked.remove(name);
                }
            }
            None => {}
        }
    }

    /// A Close of a prepared statement at the start of a batch (never skipped).
    pub(super) fn ext_closed(&mut self, name: &str, start: bool) {
        if start {
            self.ext.marked.remove(name);
        }
    }

    /// A Bind decided on its own: one of a marked statement gets the verdict the
    /// statement gets unmeasured (the rule's `on_unknown`).
    pub(super) fn ext_bind(&mut self, body: &[u8]) -> Decision {
        if self.ext.released {
            return Decision::Forward(Permit(()));
        }
        let Some((_, stmt)) = frontend::bind_names(body) else {
            // The server rejects it.
            return Decision::Forward(Permit(()));
        };
        let Some(m) = self.ext.bound(&String::from_utf8_lossy(stmt)).cloned() else {
            return Decision::Forward(Permit(()));
        };
        let verdict = self.shared.policy().evaluate_all(&m.stmts, &self.context());
        let why = "impact unknown: pgwarden measures an extended-protocol statement only \
                   in a batch of [Parse,] Bind, [Describe,] Execute without a row limit, and Sync";
        let verdict = with_note(verdict, why);
        let shadow = self.target.mode == crate::config::TargetMode::Shadow;
        let (outcome, decision) = self.carry_verdict(&m.text, &m.stmts, &verdict, true, shadow);
        self.conclude(&m.text, &m.stmts, &verdict, outcome, &decision);
        decision
    }

    /// The text of a Parse, read and classified as `decide` does (an SQL EXECUTE
    /// judged as the statement it runs).
    fn read_and_classify(
        &mut self,
        sql: &[u8],
        state: &SessionState,
    ) -> (String, Arc<[Statement]>) {
        let (text, exact) = crate::classify::read_text(sql, &state.facts);
        let facts = if exact && !self.text_settings.pending() {
            std::borrow::Cow::Borrowed(&state.facts)
        } else {
            std::borrow::Cow::Owned(state.facts.unreadable())
        };
        let stmts = self.classify(&text, &facts);
        let resolved: Arc<[Statement]> = match self.resolve_executes(&stmts) {
            std::borrow::Cow::Borrowed(_) => stmts,
            std::borrow::Cow::Owned(v) => Arc::from(v),
        };
        (text.into_owned(), resolved)
    }

    /// The statement a batch in the measured shape runs, if it is one to measure:
    /// its text and classification.
    fn ext_statement(
        &mut self,
        single: &Single<'_>,
        state: &SessionState,
    ) -> Option<(String, Arc<[Statement]>)> {
        match single.parse {
            Some((_, sql)) => {
                let (text, stmts) = self.read_and_classify(sql, state);
                let verdict = self.shared.policy().evaluate_all(&stmts, &self.context());
                let step = self
                    .shared
                    .policy()
                    .impact_step(&stmts, &self.context(), &verdict);
                matches!(step, ImpactStep::Probe(_)).then_some((text, stmts))
            }
            None => {
                let m = self.ext.bound(&String::from_utf8_lossy(single.stmt))?;
                Some((m.text.clone(), Arc::clone(&m.stmts)))
            }
        }
    }

    /// Whether the batch `msgs` is one to measure (the relay then waits for the
    /// server to owe nothing before [`Guard::ext_batch`]).
    pub fn ext_wants(&mut self, msgs: &[Msg<'_>], state: &SessionState) -> bool {
        if self.target.mode == crate::config::TargetMode::Shadow {
            return false;
        }
        single(msgs).is_some_and(|s| self.ext_statement(&s, state).is_some())
    }

    /// Whether the first message of a batch not yet whole (`first`) is one that may
    /// need measuring, so the relay waits for the rest of the batch.
    pub fn ext_may_want(&mut self, first: Msg<'_>, state: &SessionState) -> bool {
        if self.target.mode == crate::config::TargetMode::Shadow {
            return false;
        }
        match first.0 {
            frontend::PARSE => frontend::parse(first.1).is_some_and(|p| {
                let s = Single {
                    parse: Some((p.name, p.query)),
                    stmt: p.name,
                };
                self.ext_statement(&s, state).is_some()
            }),
            frontend::BIND => frontend::bind_names(first.1)
                .is_some_and(|(_, stmt)| self.ext.bound(&String::from_utf8_lossy(stmt)).is_some()),
            _ => false,
        }
    }

    /// The decision on the whole batch `msgs` (`bytes`, ending in its Sync) at the
    /// start of the client's buffer, with the server owing nothing.
    pub fn ext_batch(&mut self, msgs: &[Msg<'_>], bytes: &[u8], state: &SessionState) -> BatchPlan {
        if !self.ext.at_start() || self.target.mode == crate::config::TargetMode::Shadow {
            return BatchPlan::Each;
        }
        let Some(single) = single(msgs) else {
            return BatchPlan::Each;
        };
        let Some((text, stmts)) = self.ext_statement(&single, state) else {
            return BatchPlan::Each;
        };
        let verdict = self.shared.policy().evaluate_all(&stmts, &self.context());
        let parse_name = single
            .parse
            .map(|(name, _)| String::from_utf8_lossy(name).into_owned());
        let order = match self.probe_order(&text, &stmts, &verdict, state.tx_status) {
            Ok(None) => return BatchPlan::Each,
            Ok(Some(order)) => Ok(order),
            Err(v) => Err(v),
        };
        // The batch is decided as a whole: its messages are seen now.
        self.ext.seen(frontend::PARSE);
        if let Some(name) = &parse_name {
            self.ext.mark(name, &text, Arc::clone(&stmts));
            self.remember(&stmts, Some(name.to_string()));
        }
        let first_len = msgs.first().map_or(0, |(_, body)| body.len() + 5);
        match order {
            Ok(mut order) => {
                order.batch = Some(super::probe::BatchInfo {
                    bytes: bytes.to_vec(),
                    first_len,
                    parse_name,
                });
                BatchPlan::Probe(order)
            }
            Err(v) => {
                let (outcome, decision) = self.carry_verdict(&text, &stmts, &v, true, false);
                self.conclude(&text, &stmts, &v, outcome, &decision);
                self.ext_decided(&decision);
                BatchPlan::Decided(decision)
            }
        }
    }

    /// The whole batch decided as one went to the server, with its Sync.
    pub fn ext_forwarded(&mut self) {
        self.ext.seen(frontend::SYNC);
    }

    /// The re-run of an approved batch found other bytes in front of the client's
    /// buffer than the ones measured (never expected): refused, nothing runs.
    pub fn ext_not_the_batch(&self) -> Decision {
        super::refuse(
            crate::protocol::sqlstate::SqlState::PW_IMPACT_EXCEEDED,
            "pgwarden refused to re-run the approved statement: its batch is not the one that was measured",
            None,
            Some("Send the statement again for a new decision."),
            true,
        )
    }

    /// A batch decided as a whole was forwarded (it ended with its Sync) or its
    /// first message refused or held.
    pub fn ext_decided(&mut self, decision: &Decision) {
        match decision {
            Decision::Forward(_) => self.ext.seen(frontend::SYNC),
            Decision::Hold { .. } => self.ext.released = true,
            _ => {}
        }
    }
}

fn with_note(mut verdict: Verdict, why: &str) -> Verdict {
    verdict.message = Some(match verdict.message.as_deref() {
        Some(m) => format!("pgwarden: {why}. {m}").into(),
        None => format!("pgwarden: {why}.").into(),
    });
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(name.as_bytes());
        b.push(0);
        b.extend_from_slice(sql.as_bytes());
        b.push(0);
        b.extend_from_slice(&0i16.to_be_bytes());
        b
    }

    fn bind(portal: &str, stmt: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(portal.as_bytes());
        b.push(0);
        b.extend_from_slice(stmt.as_bytes());
        b.push(0);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        b
    }

    fn execute(portal: &str, max: i32) -> Vec<u8> {
        let mut b = portal.as_bytes().to_vec();
        b.push(0);
        b.extend_from_slice(&max.to_be_bytes());
        b
    }

    fn describe(kind: u8, name: &str) -> Vec<u8> {
        let mut b = vec![kind];
        b.extend_from_slice(name.as_bytes());
        b.push(0);
        b
    }

    #[test]
    fn only_the_common_driver_shape_is_single() {
        let p = parse("s1", "DELETE FROM t WHERE id > $1");
        let pu = parse("", "DELETE FROM t WHERE id > $1");
        let b = bind("", "s1");
        let bu = bind("", "");
        let bp = bind("p1", "s1");
        let e = execute("", 0);
        let ep = execute("p1", 0);
        let e1 = execute("", 1);
        let d = describe(b'P', "");
        let ds = describe(b'S', "s1");
        use frontend::{BIND, CLOSE, DESCRIBE, EXECUTE, FLUSH, PARSE, QUERY, SYNC};
        let s: &[u8] = &[];
        type Case<'a> = (Vec<Msg<'a>>, Option<&'a [u8]>, &'a [u8]);
        let yes: Vec<Case<'_>> = vec![
            (
                vec![
                    (PARSE, &p),
                    (BIND, &b),
                    (DESCRIBE, &d),
                    (EXECUTE, &e),
                    (SYNC, s),
                ],
                Some(b"s1"),
                b"s1",
            ),
            (
                vec![(PARSE, &pu), (BIND, &bu), (EXECUTE, &e), (SYNC, s)],
                Some(b""),
                b"",
            ),
            (vec![(BIND, &b), (EXECUTE, &e), (SYNC, s)], None, b"s1"),
            (
                vec![
                    (DESCRIBE, &ds),
                    (BIND, &bp),
                    (DESCRIBE, &d),
                    (EXECUTE, &ep),
                    (SYNC, s),
                ],
                None,
                b"s1",
            ),
        ];
        for (msgs, parsed, stmt) in yes {
            let got = single(&msgs).unwrap_or_else(|| panic!("{msgs:?}"));
            assert_eq!(got.parse.map(|(n, _)| n), parsed, "{msgs:?}");
            assert_eq!(got.stmt, stmt, "{msgs:?}");
        }
        let no: Vec<Vec<Msg<'_>>> = vec![
            // A row limit (portal suspension).
            vec![(BIND, &b), (EXECUTE, &e1), (SYNC, s)],
            // Two Executes per Sync.
            vec![(BIND, &b), (EXECUTE, &e), (EXECUTE, &e), (SYNC, s)],
            vec![
                (BIND, &b),
                (EXECUTE, &e),
                (BIND, &b),
                (EXECUTE, &e),
                (SYNC, s),
            ],
            // Flush instead of Sync, or nothing after the Execute.
            vec![(BIND, &b), (EXECUTE, &e), (FLUSH, s)],
            vec![(BIND, &b), (EXECUTE, &e)],
            vec![(BIND, &b), (EXECUTE, &e), (FLUSH, s), (SYNC, s)],
            // The Execute of another portal, the Bind of another statement.
            vec![(BIND, &b), (EXECUTE, &ep), (SYNC, s)],
            vec![(PARSE, &pu), (BIND, &b), (EXECUTE, &e), (SYNC, s)],
            // No Bind, or two Parses, or a Parse after the Bind, or a Close.
            vec![(PARSE, &p), (EXECUTE, &e), (SYNC, s)],
            vec![
                (PARSE, &p),
                (PARSE, &p),
                (BIND, &b),
                (EXECUTE, &e),
                (SYNC, s),
            ],
            vec![(BIND, &b), (PARSE, &p), (EXECUTE, &e), (SYNC, s)],
            vec![(CLOSE, &ds), (BIND, &b), (EXECUTE, &e), (SYNC, s)],
            // A simple Query inside.
            vec![(BIND, &b), (QUERY, b"SELECT 1\0"), (EXECUTE, &e), (SYNC, s)],
            // Malformed.
            vec![(BIND, b"x"), (EXECUTE, &e), (SYNC, s)],
            vec![(BIND, &b), (EXECUTE, b"\0\0"), (SYNC, s)],
            vec![],
        ];
        for msgs in no {
            assert_eq!(single(&msgs), None, "{msgs:?}");
        }
    }

    #[test]
    fn marks_are_only_dropped_where_the_server_dropped_the_statement() {
        let mut x = Extended::default();
        let stmts: Arc<[Statement]> = Arc::from(Vec::new());
        x.mark("s1", "DELETE", Arc::clone(&stmts));
        x.mark("", "DELETE", stmts);
        assert!(x.bound("s1").is_some() && x.bound("").is_some());
        // Parsed afresh in this batch: a Bind binds the new statement.
        x.seen(frontend::PARSE);
        x.fresh.insert("s1".into());
        assert!(x.bound("s1").is_none());
        // The next batch: the old mark stands again (that Parse may have failed).
        x.seen(frontend::SYNC);
        assert!(x.at_start());
        assert!(x.bound("s1").is_some());
    }
}
