//! The guard's side of the blast radius: before a DROP, TRUNCATE or ALTER TABLE …
//! DROP COLUMN is held (for an approver, or for its author's confirmation token), or
//! when a rule with `empty = true` could decide it, the session reads from the
//! target's catalog what it would destroy ([`Guard::blast_order`]); the relay runs
//! the reads (`relay/blast.rs`), and [`Guard::after_blast`] decides with what they
//! found: the hold carries the blast radius (notice or PW001 detail, `GET /holds`,
//! page, webhooks, audit), and a statement proven to
//! destroy no rows gets the `empty` rule's verdict. Nothing here does I/O.
//!
//! Two reads, each pgwarden's own Query on the client's connection (inside its
//! transaction under pgwarden's savepoint, `Relay::read_catalog`): the client's
//! timeouts and one [`BlastQuery`] per dropped object ([`BlastOrder::first_read`]),
//! then an exact count, up to [`COUNT_CAP`] rows, of each table whose rows would be
//! lost, under pgwarden's own short `statement_timeout` and `lock_timeout`, with the
//! client's values set back after it ([`BlastOrder::count_read`]). Any failure
//! leaves the blast radius unknown: the hold goes ahead with the reason, and
//! `empty` never matches.

use crate::catalog::blast::{BlastQuery, BlastRadius, RowCount};
use crate::catalog::blast_statement;
use crate::classify::Statement;
use crate::impact::{ProbePlan, ProbeSettings, SavedSettings};
use crate::policy::{Action, Confirm, Policy, Verdict};

use super::{Decision, Guard};

/// Exact counts stop after this many rows ("more than 1,000 rows").
pub const COUNT_CAP: u64 = 1000;
/// At most this many tables are counted; past it the rest keep their estimates
/// (and emptiness is unknown).
const COUNT_TABLES_MAX: usize = 32;
/// pgwarden's own limits on the counts: a table locked by another session is not
/// waited for.
const COUNT_LIMITS: ProbeSettings = ProbeSettings {
    statement_timeout: std::time::Duration::from_secs(2),
    lock_timeout: std::time::Duration::from_millis(200),
};

/// One result set: rows of text values (`None` for NULL).
pub type Rows = Vec<Vec<Option<String>>>;

/// A statement whose blast radius the relay reads before the guard decides.
#[derive(Debug)]
pub struct BlastOrder {
    /// The scope of the reads (pgwarden's savepoint inside the client's transaction).
    pub plan: ProbePlan,
    queries: Vec<BlastQuery>,
    text: String,
    stmts: Vec<Statement>,
    /// The verdict without emptiness known.
    verdict: Verdict,
    /// The verdict if the statement destroys no rows, when a rule with `empty`
    /// gives another one.
    if_empty: Option<Verdict>,
    /// What the first read found.
    radii: Vec<BlastRadius>,
    saved: Option<SavedSettings>,
    /// Why the blast radius is not known.
    unknown: Option<String>,
    /// `verdict` is a trash rule's, and the trash still has to be tried when the
    /// statement is not proven empty.
    trash_next: bool,
}

/// The client's timeouts, to set back after the counts.
const SETTINGS: &str = "SELECT pg_catalog.current_setting('statement_timeout'), \
     pg_catalog.current_setting('lock_timeout')";

impl BlastOrder {
    /// The first read and its number of result sets: the client's timeouts, then
    /// each blast query.
    pub fn first_read(&self) -> (String, usize) {
        let mut sql = SETTINGS.to_string();
        for q in &self.queries {
            sql.push_str("; ");
            sql.push_str(&q.sql());
        }
        (sql, 1 + self.queries.len())
    }

    /// The first read's result sets (`None`: it failed).
    pub fn first_done(&mut self, sets: Option<Vec<Rows>>) {
        let Some(sets) = sets else {
            self.unknown = Some("pgwarden's catalog read failed".into());
            return;
        };
        let mut sets = sets.into_iter();
        self.saved = sets.next().and_then(|s| {
            let row = s.first()?;
            let refs: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
            SavedSettings::from_row(&refs)
        });
        for (q, rows) in self.queries.iter().zip(sets) {
            let refs: Vec<Vec<Option<&str>>> = rows
                .iter()
                .map(|r| r.iter().map(|v| v.as_deref()).collect())
                .collect();
            match q.read(&refs) {
                Ok(r) => self.radii.push(r),
                Err(e) => {
                    self.unknown = Some(format!("the catalog's answer was not understood ({e})"));
                    return;
                }
            }
        }
        if self.radii.len() != self.queries.len() {
            self.unknown = Some("the catalog's answer was incomplete".into());
        }
    }

    /// The tables to count: (radius, table) positions, at most
    /// [`COUNT_TABLES_MAX`], foreign tables never.
    fn to_count(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (i, r) in self.radii.iter().enumerate() {
            for (j, t) in r.tables.iter().enumerate() {
                if t.kind != 'f' && out.len() < COUNT_TABLES_MAX {
                    out.push((i, j));
                }
            }
        }
        out
    }

    /// The second read, when there is something to count, and its number of result
    /// sets: two SET LOCALs, one count per table, the client's timeouts set back.
    pub fn count_read(&self) -> Option<(String, usize)> {
        if self.unknown.is_some() {
            return None;
        }
        let saved = self.saved.as_ref()?;
        let tables = self.to_count();
        if tables.is_empty() {
            return None;
        }
        let mut sql = format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
            COUNT_LIMITS.statement_timeout.as_millis(),
            COUNT_LIMITS.lock_timeout.as_millis()
        );
        for (i, j) in &tables {
            let t = &self.radii[*i].tables[*j];
            sql.push_str("; ");
            sql.push_str(&crate::catalog::blast::count_sql(
                &t.schema, &t.name, COUNT_CAP,
            ));
        }
        // Values checked plain by `SavedSettings::from_row`.
        sql.push_str(&format!(
            "; SELECT pg_catalog.set_config('statement_timeout', '{}', true), \
             pg_catalog.set_config('lock_timeout', '{}', true)",
            saved.statement_timeout, saved.lock_timeout
        ));
        Some((sql, 2 + tables.len() + 1))
    }

    /// The second read's result sets (`None`: it failed, e.g. a table locked by
    /// another session).
    pub fn count_done(&mut self, sets: Option<Vec<Rows>>) {
        let tables = self.to_count();
        let Some(sets) = sets else {
            self.unknown = Some(
                "pgwarden could not count the rows (a lock held by another session, a timeout or a permission)"
                    .into(),
            );
            return;
        };
        for ((i, j), rows) in tables.iter().zip(sets.iter().skip(2)) {
            let count = rows
                .first()
                .and_then(|r| r.first())
                .and_then(|v| v.as_deref())
                .and_then(|v| v.parse::<u64>().ok());
            match count {
                Some(n) => self.radii[*i].tables[*j].rows = RowCount::from_count(n, COUNT_CAP),
                None => {
                    self.unknown = Some("a row count was not understood".into());
                    return;
                }
            }
        }
    }

    /// The blast radius as one sentence, or why it is unknown.
    fn note(&self) -> String {
        if let Some(why) = &self.unknown {
            return format!("blast radius unknown: {why}");
        }
        self.radii
            .iter()
            .map(BlastRadius::sentence)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Whether the statement is proven to destroy no rows: every table it loses was
    /// counted exactly, at zero; at least one table; no table or materialized view
    /// among the dependent objects; every name resolved.
    fn destroys_no_rows(&self) -> bool {
        if self.unknown.is_some() || self.radii.is_empty() {
            return false;
        }
        let data_object = |d: &String| {
            ["table ", "materialized view ", "foreign table "]
                .iter()
                .any(|p| d.starts_with(p))
        };
        self.radii.iter().all(|r| {
            !r.missing
                && !r.tables.is_empty()
                && r.tables.iter().all(|t| t.rows == RowCount::Exact(0))
                && !r.dependents.iter().any(data_object)
        })
    }
}

/// Whether the statement is of a kind a blast read can say something about: a
/// DROP, TRUNCATE or DROP COLUMN. Every other statement (a write held before it is
/// measured, say) is not parsed again for nothing. Skipping the read only ever
/// keeps the verdict as it is.
fn destroys(stmt: &Statement) -> bool {
    use crate::classify::Class;
    stmt.classes.iter().any(|c| {
        matches!(c, Class::Truncate | Class::AlterDropColumn) || c.as_str().starts_with("drop.")
    })
}

/// Whether `verdict` holds the statement, for an approver or for its author's
/// confirmation (the hold notice or the PW001 error then shows the blast radius),
/// and `text` is not already the confirmation (it carries a token: it runs or is
/// refused on the token alone, so there is nothing left to show).
fn holds_to_show(v: &Verdict, text: &str) -> bool {
    v.action == Action::Hold
        && (v.confirm == Confirm::Approver || crate::hold::extract_confirm_token(text).is_none())
}

impl Guard {
    /// A blast read, when `stmts` is one statement that destroys objects or rows
    /// (DROP, TRUNCATE, DROP COLUMN) and either `verdict` holds it (for an approver,
    /// or for a confirmation token not yet given) or a rule with `empty = true`
    /// would decide it otherwise. Only a simple Query
    /// in an idle session or a working transaction (`tx_status`) is read for.
    pub(super) fn blast_order(
        &mut self,
        text: &str,
        stmts: &[Statement],
        verdict: &Verdict,
        policy: &Policy,
        trash_tried: bool,
    ) -> Option<Box<BlastOrder>> {
        let [stmt] = stmts else {
            return None;
        };
        if !matches!(self.tx_status, b'I' | b'T') || !destroys(stmt) {
            return None;
        }
        let if_empty = policy
            .has_empty_rules()
            .then(|| policy.evaluate_all_empty(stmts, &self.context()))
            .filter(|e| e.action != verdict.action || e.rule != verdict.rule);
        // A trash rule's verdict is the trash's to carry out (a hold only as its
        // fallback, read for after the trash declined): read first only when an
        // `empty` rule could decide instead.
        let trash_next = !trash_tried
            && verdict
                .rule
                .as_deref()
                .is_some_and(|r| policy.trash_rule(r).is_some());
        if if_empty.is_none() && (trash_next || !holds_to_show(verdict, text)) {
            return None;
        }
        // The text as the client sent it: a statement served by its shape from the
        // classifier's cache carries placeholders in `sql`.
        let queries = blast_statement::queries(text).ok()?;
        if queries.is_empty() {
            return None;
        }
        self.probes += 1;
        Some(Box::new(BlastOrder {
            plan: ProbePlan::new(self.probes, self.tx_status == b'T', COUNT_LIMITS),
            queries,
            text: text.to_string(),
            stmts: stmts.to_vec(),
            verdict: verdict.clone(),
            if_empty,
            radii: Vec::new(),
            saved: None,
            unknown: None,
            trash_next,
        }))
    }

    /// The decision once the relay has read (or failed to read, `not_run`) the
    /// blast radius of `order`.
    pub fn after_blast(&mut self, order: Box<BlastOrder>, not_run: Option<&str>) -> Decision {
        let mut order = order;
        if let Some(why) = not_run {
            order.unknown = Some(why.to_string());
        }
        let empty = order.destroys_no_rows();
        let note = order.note();
        let BlastOrder {
            text,
            stmts,
            verdict,
            if_empty,
            ..
        } = *order;
        let trash_next = order.trash_next;
        let mut verdict = match if_empty {
            Some(v) if empty => v,
            _ if trash_next => {
                // Not proven empty: the trash rule decides as it would have.
                let policy = self.shared.policy();
                match self.trash_order(&text, &stmts, &verdict, &policy) {
                    Ok(t) => return Decision::Trash(t),
                    Err(Some(why)) => super::trash::with_reason(verdict, &why),
                    Err(None) => verdict,
                }
            }
            _ => verdict,
        };
        if verdict.action != Action::Allow && verdict.action != Action::Audit {
            let said = if note.starts_with("blast radius unknown") {
                format!("pgwarden: {note}.")
            } else {
                format!("pgwarden read the catalog: this {note}.")
            };
            verdict.message = Some(match verdict.message.as_deref() {
                Some(m) => format!("{said} {m}").into(),
                None => said.into(),
            });
        }
        self.blast_note = Some(note);
        let (outcome, decision) = self.carry_verdict(&text, &stmts, &verdict, false, false);
        self.conclude(&text, &stmts, &verdict, outcome, &decision);
        self.blast_note = None;
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::blast::{BlastOp, BlastTarget};

    fn order(sql: &str) -> BlastOrder {
        BlastOrder {
            plan: ProbePlan::new(1, true, COUNT_LIMITS),
            queries: blast_statement::queries(sql).expect("queries"),
            text: sql.into(),
            stmts: Vec::new(),
            verdict: Verdict::allow(),
            if_empty: None,
            radii: Vec::new(),
            saved: None,
            unknown: None,
            trash_next: false,
        }
    }

    fn rows(v: &[&[Option<&str>]]) -> Rows {
        v.iter()
            .map(|r| r.iter().map(|c| c.map(str::to_string)).collect())
            .collect()
    }

    fn settings() -> Rows {
        rows(&[&[Some("0"), Some("1s")]])
    }

    fn table(name: &str, est: &str, reason: &str, kind: &str) -> Vec<Option<String>> {
        [
            Some("table"),
            Some("public"),
            Some(name),
            Some(est),
            Some(reason),
            Some(kind),
        ]
        .iter()
        .map(|c| c.map(str::to_string))
        .collect()
    }

    fn resolved() -> Vec<Option<String>> {
        vec![Some("resolved".into()), None, None, None, None, None]
    }

    #[test]
    fn reads_counts_and_the_note() {
        let mut o = order("TRUNCATE t CASCADE");
        assert_eq!(
            o.queries[0],
            BlastQuery {
                target: BlastTarget::Relation {
                    schema: None,
                    name: "t".into()
                },
                op: BlastOp::Truncate { cascade: true }
            }
        );
        let (sql, sets) = o.first_read();
        assert!(sql.starts_with(SETTINGS) && sets == 2, "{sql}");
        o.first_done(Some(vec![
            settings(),
            vec![
                resolved(),
                table("t", "0", "target", "r"),
                table("orders", "5", "foreign key", "r"),
                table("remote", "9", "foreign key", "f"),
            ],
        ]));
        let (sql, sets) = o.count_read().expect("counts");
        assert_eq!(sets, 5, "two SETs, two counts, the settings back: {sql}");
        assert!(sql.starts_with("SET LOCAL statement_timeout = 2000; SET LOCAL lock_timeout = 200; SELECT count(*) FROM (SELECT 1 FROM ONLY \"public\".\"t\" LIMIT 1001) x"), "{sql}");
        assert!(
            !sql.contains("remote"),
            "a foreign table is never counted: {sql}"
        );
        assert!(sql.ends_with("set_config('statement_timeout', '0', true), pg_catalog.set_config('lock_timeout', '1s', true)"), "{sql}");
        o.count_done(Some(vec![
            vec![],
            vec![],
            rows(&[&[Some("0")]]),
            rows(&[&[Some("1001")]]),
            rows(&[&[Some(""), Some("")]]),
        ]));
        assert_eq!(
            o.note(),
            "would empty public.t (0 rows), and through foreign keys public.orders (more than 1,000 rows), public.remote (~9 rows)"
        );
        assert!(!o.destroys_no_rows(), "orders has rows");
    }

    #[test]
    fn empty_only_when_every_lost_table_is_counted_at_zero() {
        let run = |tables: Vec<Vec<Option<String>>>, counts: &[&str], objects: bool| {
            let mut o = order("DROP TABLE t CASCADE");
            let mut set = vec![resolved()];
            set.extend(tables);
            if objects {
                set.push(
                    [
                        Some("object"),
                        Some("materialized view"),
                        Some("public.mv"),
                        None,
                        None,
                        None,
                    ]
                    .iter()
                    .map(|c| c.map(str::to_string))
                    .collect(),
                );
            }
            o.first_done(Some(vec![settings(), set]));
            if let Some((_, n)) = o.count_read() {
                let mut sets: Vec<Rows> = vec![vec![], vec![]];
                sets.extend(counts.iter().map(|c| rows(&[&[Some(c)]])));
                sets.push(vec![]);
                assert_eq!(sets.len(), n);
                o.count_done(Some(sets));
            }
            o.destroys_no_rows()
        };
        assert!(run(vec![table("t", "5", "target", "r")], &["0"], false));
        assert!(!run(vec![table("t", "0", "target", "r")], &["1"], false));
        assert!(
            !run(vec![table("t", "0", "target", "f")], &[], false),
            "not counted"
        );
        assert!(!run(vec![], &[], false), "no table at all");
        assert!(
            !run(vec![table("t", "0", "target", "r")], &["0"], true),
            "a dependent matview"
        );
        assert!(run(
            vec![
                table("t", "0", "target", "p"),
                table("t1", "0", "partition", "r")
            ],
            &["0", "0"],
            false
        ));
        // Failures are unknown, and unknown is never empty.
        let mut o = order("DROP TABLE t");
        o.first_done(None);
        assert!(o.count_read().is_none() && !o.destroys_no_rows());
        assert_eq!(
            o.note(),
            "blast radius unknown: pgwarden's catalog read failed"
        );
        let mut o = order("DROP TABLE t");
        o.first_done(Some(vec![
            settings(),
            vec![resolved(), table("t", "0", "target", "r")],
        ]));
        o.count_done(None);
        assert!(!o.destroys_no_rows());
        assert!(o
            .note()
            .starts_with("blast radius unknown: pgwarden could not count"));
        let mut o = order("DROP TABLE t");
        o.first_done(Some(vec![settings(), vec![]]));
        assert!(
            o.count_read().is_none(),
            "nothing resolved: nothing to count"
        );
        assert_eq!(o.note(), "found nothing of that name in the catalog");
        assert!(!o.destroys_no_rows());
    }
}
