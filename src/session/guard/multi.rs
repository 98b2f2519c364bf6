//! The guard's side of measuring a simple Query message of several statements
//! (`UPDATE a …; DELETE FROM b …`, also between the client's own `BEGIN` and
//! `COMMIT`): which messages can be measured faithfully ([`Guard::multi_order`]), whether each measured statement may stand once the
//! relay has run it at its position ([`Guard::multi_stands`]), and the decision on
//! the message ([`Guard::after_multi`]). The relay runs the statements one by one
//! inside pgwarden's transaction or savepoint (`relay/multi.rs`); nothing here
//! does I/O.

use crate::catalog::{key_shape, KeyBound};
use crate::classify::{Class, Statement};
use crate::impact::{Impact, Measured, ProbePlan, ProbeSettings};
use crate::policy::{Judgement, ProbeCall, Verdict};

use super::probe::{ProbeOrder, ProbeResult, CATALOG_MAX_AGE};
use super::{Decision, Guard};

/// The statements of a measured message, in order.
#[derive(Debug)]
pub struct MultiInfo {
    /// The statements run one by one and measured (the message without `lead` and
    /// `tail`).
    pub parts: Vec<Part>,
    /// The client's `BEGIN` (or `START TRANSACTION`) that opens the message, with
    /// the number of characters before it (0): the relay sends it first, as it is.
    pub lead: Option<(String, usize)>,
    /// The client's `COMMIT` (or `END`) that ends the message, with the number of
    /// characters before it: the relay sends it, as it is, in place of pgwarden's
    /// own keep step.
    pub tail: Option<(String, usize)>,
    /// How many statements the message has (lead and tail included).
    count: usize,
    /// The message's verdict when every measured statement is within its limits.
    within: Verdict,
    /// The re-run of an approved hold: the statement it was held at and the
    /// impact the approver saw there (`None`: approved with the impact unknown).
    approved: Option<(usize, Option<Impact>)>,
}

/// One statement of the message.
#[derive(Debug)]
pub struct Part {
    /// Its text, exactly as in the client's message.
    pub sql: String,
    /// How many characters of the message come before it (the server reports an
    /// error's position counted from the start of the message).
    pub offset: usize,
    /// Its probe, if it is measured.
    call: Option<ProbeCall>,
    objects: Vec<String>,
    /// Its place in the message (0-based, lead included), for "statement K of N".
    pub position: usize,
}

impl MultiInfo {
    /// How many statements the message has.
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Part {
    pub fn measured(&self) -> bool {
        self.call.is_some()
    }
}

/// How the relay's run of the message ended.
#[derive(Debug)]
pub enum MultiEnd {
    /// Every statement ran and every measured one may stand; the impacts measured
    /// (statement index, impact).
    Kept(Vec<(usize, Impact)>),
    /// A statement failed by itself (a server error, not the probe's timeouts):
    /// the client gets what the server sent, as directly.
    Failed,
    /// The measured statement at this index may not stand (over a limit, or its
    /// impact unknown); the message is rolled back.
    Stopped(usize, ProbeResult),
    /// The message did not run (`NotRun`'s reason).
    NotRun(String),
}

/// Classes a statement of a measured message may have: reads and writes. Anything
/// else (transaction control, SET, DDL, COPY, VACUUM, code, unparsed text…) could
/// not run faithfully one by one inside pgwarden's transaction.
fn plain(c: &Class) -> bool {
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
    )
}

/// The first keyword of a statement, upper-case, after comments, whitespace and
/// opening parentheses.
fn first_word(sql: &str) -> Option<String> {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r);
        } else if rest.starts_with("/*") {
            // Comments nest in PostgreSQL.
            let mut depth = 0usize;
            let b = rest.as_bytes();
            let mut i = 0;
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (Some(b'/'), Some(b'*')) => {
                        depth += 1;
                        i += 2;
                    }
                    (Some(b'*'), Some(b'/')) => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some(_), _) => i += 1,
                    (None, _) => return None,
                }
            }
            rest = rest.get(i..)?;
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    (!word.is_empty()).then(|| word.to_ascii_uppercase())
}

/// Statements that run in a transaction block exactly as in a message of several
/// (VACUUM, for one, is classified a read but cannot). EXPLAIN of one of these
/// (with ANALYZE it runs, once, and is measured like the statement it explains)
/// has that statement's classes; EXPLAIN of anything else (EXPLAIN ANALYZE CREATE
/// TABLE AS …) has classes `plain` does not accept.
const RUN_IN_A_BLOCK: &[&str] = &[
    "SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE", "MERGE", "EXECUTE",
    "EXPLAIN",
];

/// The client's transaction control at an edge of a measured message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// `BEGIN` / `START TRANSACTION` (with any transaction modes).
    Begin,
    /// `COMMIT` / `END` (not `AND CHAIN`).
    Commit,
}

/// Whether `stmt` is a plain `BEGIN` or `COMMIT`, read from its parse tree.
fn edge(stmt: &Statement) -> Option<Edge> {
    if !stmt.classes.iter().all(|c| *c == Class::Transaction) {
        return None;
    }
    crate::classify::deep::read(&stmt.sql, edge_of).flatten()
}

fn edge_of(sql: &str) -> Option<Edge> {
    use crate::classify::tree::to_tree;
    use pg_query::protobuf::TransactionStmtKind as K;
    let parsed = pg_query::parse(sql, 0).ok()?;
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let tree = to_tree(raw.stmt.as_deref()?);
    let t = tree.is("TransactionStmt")?;
    let kind = t.int("kind");
    let is = |k: K| kind == i64::from(k as i32);
    if is(K::TransStmtBegin) || is(K::TransStmtStart) {
        Some(Edge::Begin)
    } else if is(K::TransStmtCommit) && !t.flag("chain") {
        Some(Edge::Commit)
    } else {
        None
    }
}

/// A measured message's shape: whether it opens with the client's `BEGIN` and
/// ends with its `COMMIT`, around statements that each run one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub lead: bool,
    pub tail: bool,
}

/// A statement that runs one by one in pgwarden's transaction or savepoint as it
/// would in the message.
fn one_by_one(s: &Statement) -> bool {
    s.classes.iter().all(plain)
        && s.prepares.is_none()
        && s.deallocates.is_none()
        && first_word(&s.sql).is_some_and(|w| RUN_IN_A_BLOCK.contains(&w.as_str()))
}

/// The shape of a message pgwarden can measure faithfully, or `None`: reads and
/// writes only, optionally opened by `BEGIN` and closed by `COMMIT` (transaction
/// control anywhere else, or any other statement, is not emulated).
pub fn shape(stmts: &[Statement]) -> Option<Shape> {
    let lead = stmts.first().and_then(edge) == Some(Edge::Begin);
    let tail = stmts.len() > 1 && stmts.last().and_then(edge) == Some(Edge::Commit);
    let body = stmts
        .get(usize::from(lead)..stmts.len() - usize::from(tail))
        .unwrap_or_default();
    let enough = if lead || tail {
        !body.is_empty()
    } else {
        body.len() > 1
    };
    (enough && body.iter().all(one_by_one)).then_some(Shape { lead, tail })
}

/// The statements' texts as they appear, in order, in `text`, each with the number
/// of characters before it; `None` if one cannot be found.
fn split(text: &str, stmts: &[Statement]) -> Option<Vec<(String, usize)>> {
    let mut at = 0usize;
    let mut out = Vec::with_capacity(stmts.len());
    for s in stmts {
        if s.sql.is_empty() {
            return None;
        }
        let found = at + text.get(at..)?.find(s.sql.as_str())?;
        let chars = text.get(..found)?.chars().count();
        out.push((s.sql.clone(), chars));
        at = found + s.sql.len();
    }
    Some(out)
}

/// The strictest (shortest) of the measured statements' probe settings.
fn settings(calls: &[&ProbeCall]) -> ProbeSettings {
    let mut s = match calls.first() {
        Some(c) => c.limits.probe,
        None => ProbeSettings::default(),
    };
    for c in calls {
        s.statement_timeout = s.statement_timeout.min(c.limits.probe.statement_timeout);
        s.lock_timeout = s.lock_timeout.min(c.limits.probe.lock_timeout);
    }
    s
}

impl Guard {
    /// The order to measure the message `text` of several statements, or `None`
    /// when it cannot be measured (its verdict, the rule's `on_unknown`, stands).
    /// `tx_status` is `I` or `T`.
    pub(super) fn multi_order(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        tx_status: u8,
    ) -> Option<Box<ProbeOrder>> {
        let facts = self.multi_facts.take()?;
        let form = shape(stmts)?;
        // A COMMIT that ends the message without a BEGIN before it commits the
        // client's transaction; outside one the server warns from its implicit
        // block (a notice pgwarden cannot reproduce exactly): not measured.
        let status_fits = match tx_status {
            b'T' => true,
            b'I' => form.lead || !form.tail,
            _ => false,
        };
        if !status_fits {
            return None;
        }
        let call = self
            .shared
            .policy()
            .impact_multi(stmts, &self.context(), verdict)?;
        // The statements as the client wrote them: a cached classification may be
        // another text of the same shape (other literals).
        let own = crate::classify::classify(text, &facts);
        if own.len() != stmts.len() || shape(&own) != Some(form) {
            return None;
        }
        let mut pieces = split(text, &own)?;
        let count = pieces.len();
        let tail = if form.tail { pieces.pop() } else { None };
        let lead = if form.lead && !pieces.is_empty() {
            Some(pieces.remove(0))
        } else {
            None
        };
        let first_body = usize::from(form.lead);
        let now = std::time::Instant::now();
        let mut parts = Vec::with_capacity(stmts.len());
        let body = own.iter().zip(call.calls).enumerate().skip(first_body);
        for ((sql, offset), (position, (stmt, call))) in pieces.into_iter().zip(body) {
            // A statement bounded by a key (the session's catalog is fresh) changes
            // at most one row: within every limit that one row cannot exceed.
            let bounded = call.as_ref().is_some_and(|c| {
                !super::probe::one_row_may_exceed(&c.limits)
                    && key_shape(&stmt.sql).is_some_and(|shape| {
                        self.catalog.as_ref().is_some_and(|cat| {
                            matches!(
                                cat.key_bound(&shape, now, CATALOG_MAX_AGE),
                                KeyBound::AtMostOneRow { .. }
                            )
                        })
                    })
            });
            parts.push(Part {
                sql,
                offset,
                call: if bounded { None } else { call },
                objects: stmt.objects.clone(),
                position,
            });
        }
        let calls: Vec<&ProbeCall> = parts.iter().filter_map(|p| p.call.as_ref()).collect();
        let first = (*calls.first()?).clone();
        let settings = settings(&calls);
        let mut first = first;
        first.limits.probe = settings;
        self.probes += 1;
        // pgwarden's savepoint goes inside the transaction the client's BEGIN opens.
        let in_transaction = tx_status == b'T' || lead.is_some();
        Some(Box::new(ProbeOrder::multi(
            ProbePlan::new(self.probes, in_transaction, settings),
            first,
            text.to_string(),
            stmts.to_vec(),
            MultiInfo {
                parts,
                lead,
                tail,
                count,
                within: call.within,
                approved: None,
            },
        )))
    }

    /// Whether the measured statement `i` of `order`'s message may stand with the
    /// impact `m`: within its rule's limits, or, in the re-run of an approved hold
    /// at that statement, no more than the approver saw.
    pub fn multi_stands(&self, order: &ProbeOrder, i: usize, m: &Measured) -> bool {
        let Some(multi) = order.multi.as_ref() else {
            return false;
        };
        let Some(call) = multi.parts.get(i).and_then(|p| p.call.as_ref()) else {
            return true;
        };
        if let Some((at, approved)) = &multi.approved {
            if *at == i {
                return match (approved, m) {
                    (None, Measured::Known(_)) => true,
                    (Some(a), Measured::Known(now)) => now.exceeds(a).is_none(),
                    _ => false,
                };
            }
        }
        matches!(call.limits.judge(m), Judgement::Within)
    }

    /// The decision on a measured message once the relay's run ended with `end`.
    /// `Forward` after `Kept` means: let the effect stand and give the client the
    /// replies; after `Stopped` or `NotRun` (the message was rolled back or did not
    /// run): forward the message as it is (an `on_unknown` that allows).
    pub fn after_multi(&mut self, mut order: Box<ProbeOrder>, end: MultiEnd) -> Decision {
        let Some(multi) = order.multi.as_mut() else {
            return super::refuse(
                crate::protocol::sqlstate::SqlState::INTERNAL_ERROR,
                "pgwarden: not a measured message",
                None,
                None,
                false,
            );
        };
        let approved = multi.approved.take();
        let count = multi.count;
        match end {
            MultiEnd::Kept(impacts) => {
                let note: Vec<String> = impacts
                    .iter()
                    .filter_map(|(i, impact)| {
                        let part = multi.parts.get(*i)?;
                        Some(format!(
                            "statement {} of {count}: {}",
                            part.position + 1,
                            impact.sentence(&part.objects)
                        ))
                    })
                    .collect();
                let verdict = multi.within.clone();
                let note = (!note.is_empty()).then(|| note.join("; "));
                self.decide_measured(order, verdict, note, true)
            }
            MultiEnd::Failed => {
                let verdict = multi.within.clone();
                self.decide_measured(order, verdict, None, false)
            }
            MultiEnd::Stopped(i, result) => {
                let Some(part) = multi.parts.get(i) else {
                    return self.after_multi(order, MultiEnd::NotRun("no statement".into()));
                };
                let Some(call) = part.call.clone() else {
                    return self.after_multi(order, MultiEnd::NotRun("not measured".into()));
                };
                if let Some((at, Some(seen))) = &approved {
                    if *at == i {
                        let d = super::probe::rerun_refusal(seen, &result, false);
                        if !matches!(d, Decision::Forward(_)) {
                            return d;
                        }
                        // (It was rolled back: never forwarded as it is.)
                        let unknown = ProbeResult::NotRun("rolled back".into());
                        return super::probe::rerun_refusal(seen, &unknown, false);
                    }
                }
                let place = format!("statement {} of {count}", part.position + 1);
                let (verdict, note) = match &result {
                    ProbeResult::Measured(Measured::Known(impact)) => {
                        let sentence = impact.sentence(&part.objects);
                        match call.limits.judge(&Measured::Known(impact.clone())) {
                            Judgement::Over(why) => {
                                multi.approved = Some((i, Some(impact.clone())));
                                (call.over, format!("{place}: {sentence} ({why})"))
                            }
                            _ => {
                                multi.approved = Some((i, None));
                                (call.unknown, format!("{place}: {sentence}"))
                            }
                        }
                    }
                    other => {
                        multi.approved = Some((i, None));
                        let why = other
                            .unknown_reason()
                            .unwrap_or_else(|| "impact unknown".to_string());
                        (call.unknown, format!("{place}: {why}"))
                    }
                };
                self.decide_measured(order, verdict, Some(note), true)
            }
            MultiEnd::NotRun(why) => {
                let verdict = order.call.unknown.clone();
                self.decide_measured(order, verdict, Some(format!("impact unknown: {why}")), true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{classify, SessionFacts};

    fn stmts(sql: &str) -> Vec<Statement> {
        classify(sql, &SessionFacts::default())
    }

    #[test]
    fn statements_are_found_where_the_client_wrote_them() {
        let text = "UPDATE t SET v = 'a;b' WHERE id > 0;  DELETE FROM u WHERE x < 3 ; SELECT 1";
        let s = stmts(text);
        let parts = split(text, &s).expect("splits");
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0],
            ("UPDATE t SET v = 'a;b' WHERE id > 0".to_string(), 0)
        );
        assert_eq!(parts[1].0, "DELETE FROM u WHERE x < 3");
        assert_eq!(&text[parts[1].1..parts[1].1 + 6], "DELETE");
        assert_eq!(parts[2].0, "SELECT 1");
        // Offsets count characters, as the server's error positions do.
        let text = "SELECT 'é'; DELETE FROM u WHERE x < 3";
        let parts = split(text, &stmts(text)).expect("splits");
        assert_eq!(parts[1].1, 12);
    }

    #[test]
    fn only_reads_and_writes_are_run_one_by_one() {
        let cases = [
            (
                "UPDATE a SET v = 1 WHERE id > 0; DELETE FROM b WHERE id > 0",
                true,
            ),
            ("DELETE FROM b WHERE id > 0; SELECT count(*) FROM b", true),
            (
                "INSERT INTO a VALUES (1); UPDATE a SET v = 2 WHERE v > 0",
                true,
            ),
            (
                "INSERT INTO a VALUES (1) ON CONFLICT (id) DO UPDATE SET v = 2; SELECT 1",
                true,
            ),
            (
                "MERGE INTO a USING b ON a.id = b.id WHEN MATCHED THEN UPDATE SET v = 1; SELECT 1",
                true,
            ),
            ("DELETE FROM b WHERE id > 0", false),
            ("BEGIN; DELETE FROM b WHERE id > 0; COMMIT", true),
            ("DELETE FROM b WHERE id > 0; COMMIT", true),
            ("SET search_path = x; DELETE FROM b WHERE id > 0", false),
            ("DELETE FROM b WHERE id > 0; VACUUM b", false),
            (
                "DELETE FROM b WHERE id > 0; CREATE INDEX CONCURRENTLY i ON b (v)",
                false,
            ),
            ("DELETE FROM b WHERE id > 0; COPY b TO STDOUT", false),
            (
                "PREPARE p AS DELETE FROM b WHERE id > $1; EXECUTE p(0)",
                false,
            ),
            ("DELETE FROM b WHERE id > 0; DROP TABLE c", false),
            ("DELETE FROM b WHERE id > 0; SAVEPOINT s", false),
            ("DELETE FROM b WHERE id > 0; ANALYZE b", false),
            ("DELETE FROM b WHERE id > 0; SHOW statement_timeout", false),
            ("DELETE FROM b WHERE id > 0; LISTEN x", false),
            (
                "/* a /* nested */ one */ (SELECT 1); -- x\n DELETE FROM b WHERE id > 0",
                true,
            ),
            (
                "DELETE FROM b WHERE id > 0; EXPLAIN ANALYZE DELETE FROM b",
                true,
            ),
            ("EXPLAIN DELETE FROM b; DELETE FROM b WHERE id > 0", true),
            (
                "DELETE FROM b WHERE id > 0; EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1",
                false,
            ),
            (
                "DELETE FROM b WHERE id > 0; EXPLAIN ANALYZE SELECT pg_terminate_backend(1)",
                false,
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(shape(&stmts(sql)).is_some(), want, "{sql}");
        }
    }

    #[test]
    fn the_clients_begin_and_commit_are_accepted_only_at_the_edges() {
        let both = Some(Shape {
            lead: true,
            tail: true,
        });
        let lead = Some(Shape {
            lead: true,
            tail: false,
        });
        let tail = Some(Shape {
            lead: false,
            tail: true,
        });
        let cases = [
            ("BEGIN; UPDATE a SET v = 1 WHERE id > 0; COMMIT", both),
            (
                "START TRANSACTION ISOLATION LEVEL REPEATABLE READ; DELETE FROM a WHERE id > 0; END",
                both,
            ),
            (
                "begin work; DELETE FROM a WHERE id > 0; SELECT 1; commit transaction",
                both,
            ),
            (
                "BEGIN; EXPLAIN ANALYZE DELETE FROM a WHERE id > 0; COMMIT",
                both,
            ),
            ("BEGIN; DELETE FROM a WHERE id > 0", lead),
            ("DELETE FROM a WHERE id > 0; COMMIT", tail),
            ("BEGIN; COMMIT", None),
            ("BEGIN; DELETE FROM a WHERE id > 0; COMMIT; SELECT 1", None),
            ("DELETE FROM a WHERE id > 0; BEGIN", None),
            ("BEGIN; DELETE FROM a WHERE id > 0; ROLLBACK", None),
            ("BEGIN; DELETE FROM a WHERE id > 0; ABORT", None),
            ("BEGIN; DELETE FROM a WHERE id > 0; COMMIT AND CHAIN", None),
            ("BEGIN; SAVEPOINT s; DELETE FROM a WHERE id > 0; COMMIT", None),
            ("BEGIN; BEGIN; DELETE FROM a WHERE id > 0; COMMIT", None),
            ("BEGIN; DELETE FROM a WHERE id > 0; COMMIT; COMMIT", None),
            ("COMMIT; DELETE FROM a WHERE id > 0", None),
            ("BEGIN; LOCK a; DELETE FROM a WHERE id > 0; COMMIT", None),
            (
                "BEGIN; SET LOCAL lock_timeout = 1; DELETE FROM a WHERE id > 0; COMMIT",
                None,
            ),
            (
                "BEGIN; DELETE FROM a WHERE id > 0; PREPARE TRANSACTION 'x'",
                None,
            ),
            (
                "BEGIN; SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; DELETE FROM a WHERE id > 0; COMMIT",
                None,
            ),
            (
                "BEGIN; DELETE FROM a WHERE id > 0; COMMIT PREPARED 'x'",
                None,
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(shape(&stmts(sql)), want, "{sql}");
        }
    }
}
