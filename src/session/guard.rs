//! The seam where every client message gets a decision before it may reach the
//! server. Only this module can make a `Permit`, and the relay's only way to queue
//! bytes for the server takes one. Every error on the way to a decision refuses.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::oneshot;

mod blast;
mod cache;
mod extended;
mod holds;
mod key_shapes;
mod lookup;
mod metrics;
mod multi;
mod probe;
mod text_settings;
mod trash;
pub use blast::BlastOrder;
pub use extended::{BatchPlan, Msg};
pub use lookup::LookupOrder;
pub use multi::MultiEnd;
pub use probe::{ProbeOrder, ProbeResult};
use text_settings::changes_text;
pub use trash::{TrashOrder, TrashResult};

use super::state::SessionState;
use super::Shared;
use crate::audit;
use crate::classify::{Class, SessionFacts, Statement};
use crate::config::Durability;
use crate::config::{Target, TargetMode};
use crate::hold::{
    extract_confirm_token, new_token, HoldInfo, PlanClaim, PlanRequest, Resolution, TokenUse,
};
use crate::policy::{Action, Confirm, SessionContext, Verdict};
use crate::protocol::frontend;
use crate::protocol::originate::{self, Report, Severity};
use crate::protocol::sqlstate::SqlState;

/// Proof that a message was decided on and may be forwarded.
#[derive(Debug)]
pub struct Permit(());

/// A refused message: the client gets `error` in its place, with the transaction
/// and batch effects of a real server error.
#[derive(Debug)]
pub struct Refusal {
    pub error: Vec<u8>,
    /// Extended protocol: the rest of the batch is skipped until Sync.
    pub extended: bool,
}

/// A statement waiting for an approver.
#[derive(Debug)]
pub struct Ticket {
    pub id: u64,
    pub rx: oneshot::Receiver<Resolution>,
    pub extended: bool,
}

/// A confirmation token being recorded or checked in the control database.
#[derive(Debug)]
enum TokenWait {
    /// Issued: once it is recorded the client gets this refusal, naming the token.
    Issue {
        message: String,
        detail: Option<String>,
        hint: String,
    },
    /// Presented: the database says whether it is accepted.
    Redeem,
}

/// The decision for one client message.
#[derive(Debug)]
pub enum Decision {
    Forward(Permit),
    Refuse(Refusal),
    /// Send `notice` now, then wait for the ticket's resolution.
    Hold {
        notice: Vec<u8>,
        ticket: Ticket,
    },
    /// Protocol violation: send these bytes and close.
    Reject(Vec<u8>),
    /// Run the statement inside pgwarden's savepoint, measure what it changed, and
    /// ask [`Guard::after_probe`] (the impact probe; no permit until then).
    Probe(Box<ProbeOrder>),
    /// Carry out a DROP by moving its table into the trash, and ask
    /// [`Guard::after_trash`] (no permit until then).
    Trash(Box<TrashOrder>),
    /// Read the target's catalog first, and ask [`Guard::after_lookup`] (no permit
    /// until then).
    Lookup(Box<LookupOrder>),
    /// Read what a DROP or TRUNCATE would destroy first, and ask
    /// [`Guard::after_blast`] (no permit until then).
    Blast(Box<BlastOrder>),
}

/// What was decided, for logs, audit and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Audit,
    Block,
    HoldSelf,
    Confirmed,
    BadToken,
    HoldApprover,
    /// Would be held; released by an approved plan.
    Planned,
    /// Shadow mode: forwarded although the verdict was not allow.
    Shadowed,
    /// A trash rule carried the statement out (moved to the trash, or run as
    /// written when there was nothing to keep, or refused by the server).
    Trashed,
}

/// Everything one session's decisions depend on.
pub struct Guard {
    shared: Arc<Shared>,
    target: Target,
    pub user: String,
    pub database: String,
    pub application: String,
    pub client: Option<IpAddr>,
    pub session_id: u64,
    /// Prepared statements by name (protocol Parse and SQL PREPARE share one
    /// namespace in PostgreSQL), with the classes of their bodies.
    prepared: HashMap<String, Statement>,
    /// Statements decided so far in this session (audit statement ids).
    statements: u64,
    /// The audit record the last decision calls for, and whether it must be on disk
    /// before the statement is forwarded.
    pending_audit: Option<(audit::Event, Durability)>,
    /// The audit record of a statement waiting for an approver.
    held_event: Option<audit::StatementEvent>,
    /// Statement counters used so far, by (decision, class family): a handful per
    /// session, so a list beats hashing the key for every statement.
    counters: Vec<(
        (crate::metrics::DecisionLabel, &'static str),
        prometheus_client::metrics::counter::Counter,
    )>,
    /// The session's classification cache.
    cache: cache::SessionCache,
    /// `SessionState::params_seen` when `application` was last brought up to date.
    params_seen: u64,
    /// The verdict on the last statement forwarded, while it is sure to repeat.
    repeat: Option<Repeat>,
    /// The approved plan (id, approver) that released the statement being decided.
    plan_used: Option<(String, String)>,
    /// Impact probes started in this session (numbers pgwarden's savepoints).
    probes: u64,
    /// Key shapes of the statements judged so far (a parse each saved).
    key_shapes: key_shapes::KeyShapes,
    /// The transaction status when the statement being decided arrived.
    tx_status: u8,
    /// The measured impact of the statement being decided, for its audit record and
    /// hold.
    probe_note: Option<String>,
    /// What the statement being decided would destroy (a DROP or TRUNCATE read
    /// from the catalog first), for its audit record and hold.
    blast_note: Option<String>,
    /// A held statement decided by its measured impact: approval re-runs it bounded
    /// by that impact.
    held_probe: Option<Box<ProbeOrder>>,
    /// The target's keys and row estimates as this session last read them (for
    /// statements bounded by a key, which need no probe).
    catalog: Option<crate::catalog::Catalog>,
    /// A confirmation token being recorded or checked in the control database;
    /// the statement's record waits for the answer.
    token_wait: Option<TokenWait>,
    token_audit: Option<(audit::StatementEvent, Durability)>,
    /// A statement released by a token or a plan whose use the control database is
    /// still counting: its outcome and class family, counted once the answer is in.
    uncounted: Option<(Outcome, &'static str)>,
    /// A setting that changes how text reads, let through and not yet answered.
    text_settings: text_settings::TextSettings,
    /// Which prepared statements are judged where they run (extended protocol).
    ext: extended::Extended,
    /// For a message of several statements that reads exactly as UTF-8 text of the
    /// client's bytes: the facts it was read with (its statements can be sent one
    /// by one: `guard/multi.rs`).
    multi_facts: Option<SessionFacts>,
}

/// The last forwarded statement's verdict, with everything it depended on: the same
/// classification (the very same shared entry), under the same policy (generation)
/// and session parameters (application name), gets the same verdict. Kept only for
/// allow and audit verdicts of policies without `hours`, and for statements that do
/// not change the session's prepared statements.
struct Repeat {
    stmts: Arc<[Statement]>,
    policy_generation: u64,
    params_seen: u64,
    verdict: Verdict,
    outcome: Outcome,
}

impl Guard {
    pub fn new(
        shared: Arc<Shared>,
        target: Target,
        user: String,
        database: String,
        application: String,
        client: Option<IpAddr>,
        session_id: u64,
    ) -> Self {
        Guard {
            shared,
            target,
            user,
            database,
            application,
            client,
            session_id,
            prepared: HashMap::new(),
            statements: 0,
            pending_audit: None,
            held_event: None,
            counters: Vec::new(),
            cache: cache::SessionCache::default(),
            params_seen: 0,
            repeat: None,
            plan_used: None,
            probes: 0,
            key_shapes: key_shapes::KeyShapes::default(),
            tx_status: 0,
            probe_note: None,
            blast_note: None,
            held_probe: None,
            catalog: None,
            token_wait: None,
            uncounted: None,
            token_audit: None,
            text_settings: Default::default(),
            ext: Default::default(),
            multi_facts: None,
        }
    }

    /// `SET application_name` reaches the guard as a ParameterStatus; policies and
    /// audit records see the current name. Only the messages that are judged need it.
    fn sync_application(&mut self, state: &SessionState) {
        if state.params_seen == self.params_seen {
            return;
        }
        self.params_seen = state.params_seen;
        if let Some(app) = state.application_name.as_ref() {
            if *app != self.application {
                self.application.clone_from(app);
            }
        }
    }

    /// Decides on a whole client message after authentication.
    pub fn decide(&mut self, tag: u8, body: &[u8], state: &SessionState) -> Decision {
        self.text_settings.on_message(tag, state.pending_ready);
        let start = self.ext_seen(tag);
        match tag {
            frontend::QUERY => match frontend::query(body) {
                Some(sql) => {
                    self.sync_application(state);
                    self.decide_sql(sql, None, state, false)
                }
                // PostgreSQL reads the text up to its first NUL, finds bytes left and
                // answers ERROR (not FATAL) without running anything: so does pgwarden.
                None => refuse(
                    SqlState::PROTOCOL_VIOLATION,
                    if body.contains(&0) {
                        "invalid message format"
                    } else {
                        "invalid string in message"
                    },
                    None,
                    None,
                    false,
                ),
            },
            frontend::PARSE => match frontend::parse(body) {
                Some(p) => {
                    self.sync_application(state);
                    let name = String::from_utf8_lossy(p.name).into_owned();
                    let d = self.decide_sql(p.query, Some(name.clone()), state, true);
                    self.ext_parsed(&name, start, matches!(d, Decision::Forward(_)));
                    d
                }
                None => malformed("Parse"),
            },
            frontend::BIND => {
                self.sync_application(state);
                self.ext_bind(body)
            }
            frontend::CLOSE => {
                if let Some((b'S', name)) = frontend::target(body) {
                    let name = String::from_utf8_lossy(name);
                    self.prepared.remove(&*name);
                    self.ext_closed(&name, start);
                }
                Decision::Forward(Permit(()))
            }
            frontend::FUNCTION_CALL => match frontend::function_oid(body) {
                Some(oid) => {
                    self.sync_application(state);
                    // Never probed: the probe runs simple Query messages only.
                    self.tx_status = b'E';
                    let stmt = self.shared.classifier.function_call(oid);
                    let text = stmt.sql.clone();
                    self.judge(&text, std::slice::from_ref(&stmt), false)
                }
                None => malformed("FunctionCall"),
            },
            t if frontend::is_known(t) => Decision::Forward(Permit(())),
            t => Decision::Reject(originate::fatal(
                SqlState::PROTOCOL_VIOLATION,
                &format!("invalid frontend message type {t}"),
            )),
        }
    }

    /// For a statement large enough that parsing it would hold up the other sessions
    /// on this thread (about 1 ms from 32 KiB), the work that fills the classifier's
    /// cache with it, to run on the blocking pool before `decide`. `decide` is then a
    /// cache lookup; with the cache disabled it simply parses again.
    pub fn classify_ahead(
        &self,
        tag: u8,
        body: &[u8],
        state: &SessionState,
    ) -> Option<impl FnOnce() + Send + 'static> {
        const LARGE: usize = 32 * 1024;
        if body.len() < LARGE || self.shared.classifier.cache_capacity() == 0 {
            return None;
        }
        let sql = match tag {
            frontend::QUERY => frontend::query(body)?,
            frontend::PARSE => frontend::parse(body)?.query,
            _ => return None,
        };
        if sql.len() < LARGE {
            return None;
        }
        let (text, exact) = crate::classify::read_text(sql, &state.facts);
        if !exact || self.text_settings.pending() {
            return None;
        }
        let text = text.into_owned();
        let shared = Arc::clone(&self.shared);
        let facts = state.facts.clone();
        Some(move || {
            let _ = cache::classify_text(&shared, &text, &facts, &mut Default::default());
        })
    }

    fn decide_sql(
        &mut self,
        sql: &[u8],
        parse_name: Option<String>,
        state: &SessionState,
        extended: bool,
    ) -> Decision {
        // Decoded exactly in the session's client encoding; text that does not decode
        // exactly, or that follows an unanswered change of how text reads, is read
        // with facts that make every statement `unreadable`.
        let (text, exact) = crate::classify::read_text(sql, &state.facts);
        let facts = if exact && !self.text_settings.pending() {
            Cow::Borrowed(&state.facts)
        } else {
            Cow::Owned(state.facts.unreadable())
        };
        let stmts = self.classify(&text, &facts);
        let exact = matches!(text, Cow::Borrowed(_))
            && text.as_bytes() == sql
            && matches!(facts, Cow::Borrowed(_));
        self.multi_facts = (exact && stmts.len() > 1).then(|| state.facts.clone());
        if changes_text(&stmts) {
            self.text_settings.changed(extended);
        }
        // Read before the policy is: a swap in between only makes the next check miss.
        let generation = self.shared.policy_generation();
        if let Some(r) = self.repeat.take() {
            if Arc::ptr_eq(&r.stmts, &stmts)
                && r.policy_generation == generation
                && r.params_seen == self.params_seen
            {
                let decision = Decision::Forward(Permit(()));
                self.conclude(&text, &stmts, &r.verdict, r.outcome, &decision);
                self.note_schema_change(&stmts);
                // Repeatable statements change no prepared statement themselves; only
                // a named Parse of one is remembered.
                if parse_name.is_some() {
                    self.remember(&stmts, parse_name);
                }
                self.repeat = Some(r);
                return decision;
            }
        }
        // Only a simple Query is probed: FunctionCall and Parse are judged elsewhere.
        self.tx_status = if extended { b'E' } else { state.tx_status };
        let resolved = self.resolve_executes(&stmts);
        let (decision, verdict, outcome, clocked) = self.judge_full(&text, &resolved, extended);
        self.note_schema_change(&resolved);
        if matches!(decision, Decision::Forward(_)) {
            self.remember(&resolved, parse_name);
            // `changes_prepared` covers EXECUTE, so `resolved` is `stmts` itself here.
            let repeatable = matches!(outcome, Outcome::Allow | Outcome::Audit)
                && !clocked
                && !stmts.iter().any(changes_prepared);
            if repeatable {
                self.repeat = Some(Repeat {
                    stmts: Arc::clone(&stmts),
                    policy_generation: generation,
                    params_seen: self.params_seen,
                    verdict,
                    outcome,
                });
            }
        }
        decision
    }

    /// Classifies through the session's cache.
    fn classify(&mut self, text: &str, facts: &SessionFacts) -> Arc<[Statement]> {
        self.cache.classify(&self.shared, text, facts)
    }

    /// `EXECUTE name` is judged as the statement it runs: one prepared earlier in the
    /// session, or by an earlier statement of the same message (`PREPARE p AS …;
    /// EXECUTE p`), which the session has not remembered yet.
    fn resolve_executes<'a>(&self, stmts: &'a [Statement]) -> Cow<'a, [Statement]> {
        if stmts.iter().all(|s| s.executes.is_none()) {
            return Cow::Borrowed(stmts);
        }
        let mut here: HashMap<&str, &Statement> = HashMap::new();
        let mut out = Vec::with_capacity(stmts.len());
        for s in stmts {
            let body = s
                .executes
                .as_deref()
                .and_then(|n| here.get(n).copied().or_else(|| self.prepared.get(n)));
            out.push(match body {
                Some(body) => {
                    let mut r = s.clone();
                    r.classes = body.classes.clone();
                    r.objects = body.objects.clone();
                    r
                }
                None => s.clone(),
            });
            if let Some(name) = s.prepares.as_deref() {
                here.insert(name, s);
            }
        }
        Cow::Owned(out)
    }

    fn remember(&mut self, stmts: &[Statement], parse_name: Option<String>) {
        for s in stmts {
            if let Some(name) = &s.prepares {
                self.prepared.insert(name.clone(), s.clone());
            }
            match s.deallocates.as_deref() {
                Some("*") => self.prepared.clear(),
                Some(name) => {
                    self.prepared.remove(name);
                }
                None => {}
            }
            if is_discard_all(s) {
                self.prepared.clear();
            }
        }
        if let Some(name) = parse_name {
            if let Some(first) = stmts.first() {
                let mut body = first.clone();
                for s in &stmts[1..] {
                    body.classes.extend_from_slice(&s.classes);
                }
                self.prepared.insert(name, body);
            }
        }
    }

    fn context(&self) -> SessionContext<'_> {
        SessionContext {
            environment: &self.target.environment,
            target: &self.target.name,
            database: &self.database,
            user: &self.user,
            application: &self.application,
            client_addr: self.client,
            now: jiff::Timestamp::now(),
        }
    }

    fn judge(&mut self, text: &str, stmts: &[Statement], extended: bool) -> Decision {
        self.judge_full(text, stmts, extended).0
    }

    /// Judges, and also returns the verdict, the outcome, and whether the policy
    /// looks at the clock (so the verdict may change by itself).
    fn judge_full(
        &mut self,
        text: &str,
        stmts: &[Statement],
        extended: bool,
    ) -> (Decision, Verdict, Outcome, bool) {
        let policy = self.shared.policy();
        let mut verdict = policy.evaluate_all(stmts, &self.context());
        let shadow = self.target.mode == TargetMode::Shadow;
        if !extended && !shadow {
            if let Some(order) = self.lookup_order(text, stmts, &verdict, self.tx_status) {
                // Decided once the catalog has answered (`after_lookup`).
                return (Decision::Lookup(order), verdict, Outcome::Allow, true);
            }
            // Decided once the blast radius is read (`after_blast`).
            if let Some(order) = self.blast_order(text, stmts, &verdict, &policy, false) {
                return (Decision::Blast(order), verdict, Outcome::Allow, true);
            }
            match self.trash_order(text, stmts, &verdict, &policy) {
                // Decided after the trash ran (`after_trash` concludes then).
                Ok(order) => return (Decision::Trash(order), verdict, Outcome::Allow, true),
                Err(Some(why)) => {
                    verdict = trash::with_reason(verdict, &why);
                    if let Some(order) = self.blast_order(text, stmts, &verdict, &policy, true) {
                        return (Decision::Blast(order), verdict, Outcome::Allow, true);
                    }
                }
                Err(None) => {}
            }

            match self.probe_order(text, stmts, &verdict, self.tx_status) {
                // Decided after the probe (`after_probe` concludes then).
                Ok(Some(order)) => {
                    return (Decision::Probe(order), verdict, Outcome::Allow, true);
                }
                Ok(None) => {}
                Err(v) => verdict = v,
            }
        } else if extended && !shadow && self.ext_defers(text, stmts, &verdict) {
            // A Parse runs nothing: measured (or judged) where it runs, at its Bind.
            return (Decision::Forward(Permit(())), verdict, Outcome::Allow, true);
        }
        let (outcome, decision) = self.carry_verdict(text, stmts, &verdict, extended, shadow);
        self.conclude(text, stmts, &verdict, outcome, &decision);
        (decision, verdict, outcome, policy.uses_clock())
    }

    /// The decision a verdict calls for (no probe, no trash).
    fn carry_verdict(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        extended: bool,
        shadow: bool,
    ) -> (Outcome, Decision) {
        match verdict.action {
            Action::Allow => (Outcome::Allow, Decision::Forward(Permit(()))),
            Action::Audit => (Outcome::Audit, Decision::Forward(Permit(()))),
            _ if shadow => (Outcome::Shadowed, Decision::Forward(Permit(()))),
            Action::Block => (Outcome::Block, self.block(stmts, verdict, extended)),
            Action::Hold => match self.plan_release(stmts, extended) {
                Some(released) => released,
                None => match verdict.confirm {
                    Confirm::SelfConfirm => self.self_confirm(text, stmts, verdict, extended),
                    Confirm::Approver => (
                        Outcome::HoldApprover,
                        self.hold_for_approver(text, stmts, verdict, extended),
                    ),
                },
            },
        }
    }

    /// What every decision records: the outcome, the statement counter and the audit
    /// record it calls for.
    fn conclude(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        outcome: Outcome,
        decision: &Decision,
    ) {
        let class = stmts
            .get(verdict.statement_index)
            .or(stmts.first())
            .and_then(|s| s.classes.first())
            .map_or("none", |c| c.family());
        // Released only once the control database has used the token or the plan's
        // run up: counted when it answers (`resolved`), as what it turned out to be.
        let waits = matches!(decision, Decision::Hold { .. })
            && matches!(outcome, Outcome::Confirmed | Outcome::Planned);
        if waits {
            self.uncounted = Some((outcome, class));
        } else {
            self.count(outcome, class);
        }
        self.plan_audit(text, stmts, verdict, outcome, decision);
    }

    pub fn audit_log(&self) -> crate::audit::AuditLog {
        self.shared.audit.clone()
    }

    /// Records the outcome of audited statements once their request finished.
    pub fn record_outcome(&self, done: super::replies::Completed) {
        let rows = done
            .tag
            .as_deref()
            .and_then(|t| t.rsplit(' ').next())
            .and_then(|n| n.parse().ok());
        for id in done.statements {
            self.shared
                .audit
                .record(audit::Event::Outcome(audit::OutcomeEvent {
                    session: self.session_id,
                    statement_id: id,
                    tag: done.tag.clone(),
                    rows,
                    sqlstate: done.sqlstate.clone(),
                    duration_ms: done.duration.as_secs_f64() * 1000.0,
                    error: None,
                }));
        }
    }

    /// The id of the statement decided last (0 before any).
    pub fn statement_id(&self) -> u64 {
        self.statements
    }

    /// The audit record the last decision calls for, if any.
    /// Whether the last decision left an audit record to write.
    pub fn has_audit(&self) -> bool {
        self.pending_audit.is_some()
    }

    pub fn take_audit(&mut self) -> Option<(audit::Event, Durability)> {
        self.pending_audit.take()
    }

    fn event(
        &self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        decision: audit::Disposition,
        shadow: bool,
    ) -> audit::StatementEvent {
        let mut classes: Vec<Class> = stmts
            .iter()
            .flat_map(|s| s.classes.iter().copied())
            .collect();
        classes.sort();
        classes.dedup();
        let mut objects: Vec<String> = stmts
            .iter()
            .flat_map(|s| s.objects.iter().cloned())
            .collect();
        objects.sort();
        objects.dedup();
        audit::StatementEvent {
            session: self.session_id,
            statement_id: self.statements,
            client: self.client.map(|c| c.to_string()),
            user: self.user.clone(),
            database: self.database.clone(),
            application: self.application.clone(),
            target: self.target.name.clone(),
            environment: self.target.environment.clone(),
            sql: audit::sql_for_log(text, self.shared.config.audit.redact),
            fingerprint: Self::fingerprint(stmts),
            classes: audit::class_names(&classes),
            objects,
            decision,
            rule: verdict.rule.as_deref().map(str::to_string),
            hold_id: None,
            approver: None,
            shadow,
            plan: None,
            impact: self.probe_note.clone(),
            blast: self.blast_note.clone(),
        }
    }

    fn plan_audit(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        outcome: Outcome,
        decision: &Decision,
    ) {
        self.statements += 1;
        let (dec, shadow) = match outcome {
            Outcome::Allow => (audit::Disposition::Allow, false),
            Outcome::Audit => (audit::Disposition::Audit, false),
            Outcome::Block | Outcome::BadToken => (audit::Disposition::Block, false),
            Outcome::HoldSelf | Outcome::HoldApprover => (audit::Disposition::Hold, false),
            Outcome::Confirmed => (audit::Disposition::Confirmed, false),
            Outcome::Planned => (audit::Disposition::Approved, false),
            Outcome::Shadowed => (audit::Disposition::from_action(verdict.action), true),
            Outcome::Trashed => (audit::Disposition::Trash, false),
        };
        let holding = matches!(decision, Decision::Hold { .. });
        if !self.shared.audit.is_enabled() && !holding {
            return;
        }
        let cfg = &self.shared.config.audit;
        let classes: Vec<Class> = stmts
            .iter()
            .flat_map(|s| s.classes.iter().copied())
            .collect();
        let Some(durability) = audit::should_record(cfg.statements, cfg.durability, dec, &classes)
        else {
            return;
        };
        let mut ev = self.event(text, stmts, verdict, dec, shadow);
        if self.token_wait.is_some() {
            // Recorded once the control database has answered on the token.
            self.token_audit = Some((ev, durability));
            return;
        }
        let plan = self.plan_used.take();
        if let Decision::Hold { ticket, .. } = decision {
            ev.hold_id = Some(ticket.id);
            self.held_event = Some(ev.clone());
        }
        if let Some((id, approver)) = plan {
            // Released by a plan: named in the record, with the plan's approver.
            ev.hold_id = None;
            ev.plan = Some(id);
            ev.approver = Some(approver);
            if let Some(held) = &mut self.held_event {
                held.hold_id = None;
                held.plan = ev.plan.clone();
                held.approver = ev.approver.clone();
            }
        }
        self.pending_audit = Some((audit::Event::Statement(Box::new(ev)), durability));
    }

    /// Audit record for a held statement's resolution.
    fn plan_resolution_audit(&mut self, r: &Resolution) {
        let Some(mut ev) = self.held_event.take() else {
            return;
        };
        let (dec, approver) = match r {
            Resolution::Approved { approver } => {
                (audit::Disposition::Approved, Some(approver.clone()))
            }
            Resolution::Denied { approver, .. } => {
                (audit::Disposition::Denied, Some(approver.clone()))
            }
            Resolution::Expired => (audit::Disposition::Expired, None),
            Resolution::Shutdown | Resolution::Withdrawn { .. } => {
                (audit::Disposition::Withdrawn, None)
            }
        };
        ev.decision = dec;
        ev.approver = approver;
        let durability = if dec == audit::Disposition::Approved {
            self.shared.config.audit.durability
        } else {
            Durability::Buffered
        };
        self.pending_audit = Some((audit::Event::Statement(Box::new(ev)), durability));
    }

    fn describe(&self, stmts: &[Statement], verdict: &Verdict) -> (String, String) {
        let stmt = stmts.get(verdict.statement_index).or(stmts.first());
        let classes = stmt
            .map(|s| {
                s.classes
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let objects = stmt.map(|s| s.objects.join(", ")).unwrap_or_default();
        let what = if objects.is_empty() {
            classes
        } else {
            format!("{classes} on {objects}")
        };
        let rule = verdict
            .rule
            .as_deref()
            .map(|r| format!("rule \"{r}\""))
            .unwrap_or_else(|| format!("the {} default", self.target.environment));
        (what, rule)
    }

    fn block(&self, stmts: &[Statement], verdict: &Verdict, extended: bool) -> Decision {
        let (what, rule) = self.describe(stmts, verdict);
        let message = format!(
            "pgwarden blocked this statement ({what}) by {rule} on target \"{}\"",
            self.target.name
        );
        let hint = format!(
            "Run `pgwarden explain --target {} \"<statement>\"` to see how it is classified; a change to this statement needs a different route than target {}.",
            self.target.name, self.target.name
        );
        refuse(
            SqlState::PW_BLOCKED,
            &message,
            verdict.message.as_deref(),
            Some(&hint),
            extended,
        )
    }

    fn fingerprint(stmts: &[Statement]) -> String {
        stmts
            .iter()
            .map(|s| s.fingerprint.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The refusal when a statement that must be recorded before it runs cannot be.
    /// With `audit.statements = "all"` that is every statement (nothing runs
    /// unrecorded); otherwise only guarded ones, and ordinary traffic goes on.
    pub fn audit_unavailable(&self, extended: bool) -> Decision {
        let detail = if self.shared.config.audit.statements == crate::config::AuditScope::All {
            "With audit.statements = \"all\" every statement must be recorded before it runs."
        } else {
            "Guarded statements must be recorded before they run; ordinary statements are still served."
        };
        refuse(
            SqlState::PW_AUDIT_UNAVAILABLE,
            "pgwarden refused this statement because the audit log cannot be written",
            Some(detail),
            Some("Check the audit log's disk and permissions (pgwarden logs and /readyz say what failed)."),
            extended,
        )
    }

    /// The client cancelled while its statement was held.
    pub fn cancelled(&self, extended: bool) -> Decision {
        refuse(
            SqlState::QUERY_CANCELED,
            "canceling statement due to user request",
            Some("pgwarden withdrew the held statement; it did not run"),
            None,
            extended,
        )
    }
}

fn refuse(
    code: SqlState,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
    extended: bool,
) -> Decision {
    Decision::Refuse(Refusal {
        error: originate::report(&Report {
            severity: Severity::Error,
            code,
            message,
            detail,
            hint,
        }),
        extended,
    })
}

/// `DISCARD ALL` drops every prepared statement of the session.
fn is_discard_all(s: &Statement) -> bool {
    let head = s.sql.trim_start().get(..11);
    head.is_some_and(|h| h.eq_ignore_ascii_case("DISCARD ALL"))
}

/// Whether running `s` changes which prepared statements the session has (so the
/// guard must see it again rather than repeat its last verdict).
fn changes_prepared(s: &Statement) -> bool {
    s.prepares.is_some() || s.executes.is_some() || s.deallocates.is_some() || is_discard_all(s)
}

fn malformed(what: &str) -> Decision {
    Decision::Reject(originate::fatal(
        SqlState::PROTOCOL_VIOLATION,
        &format!("invalid {what} message"),
    ))
}

/// A permit for pgwarden's own requests (Terminate on close, injected failures).
pub(crate) fn internal() -> Permit {
    Permit(())
}
