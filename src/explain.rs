//! `pgwarden explain`, pure part: classified statements + policy + target → a report,
//! rendered as text or JSON, with the command's exit code.
//!
//! No I/O: the CLI reads the config and SQL, classifies, calls [`explain`], prints
//! [`render_text`] or [`render_json`] and exits with [`exit_code`]. In shadow mode
//! the report shows the would-be verdicts and the exit code is the same as in
//! enforce mode, so CI can gate on it either way.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::classify::Statement;
use crate::config::units::format_duration;
use crate::policy::{Action, Confirm, Policy, SessionContext};

/// How the target treats verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Verdicts are carried out.
    Enforce,
    /// Everything is forwarded; verdicts are only recorded.
    Shadow,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}

/// The target the statements would run against.
#[derive(Debug, Clone, Copy)]
pub struct RunsOn<'a> {
    pub name: &'a str,
    pub environment: &'a str,
    pub mode: Mode,
}

/// Who would run them, and when.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub user: &'a str,
    pub application: &'a str,
    pub database: &'a str,
    pub client_addr: Option<IpAddr>,
    pub now: jiff::Timestamp,
}

/// The decision for one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based position in the input.
    pub index: usize,
    pub sql: String,
    pub classes: Vec<String>,
    pub objects: Vec<String>,
    pub action: Action,
    /// Deciding rule; `None` = the environment's default.
    pub rule: Option<String>,
    pub message: Option<String>,
    /// For holds: who confirms and how long the hold lasts.
    pub confirm: Option<Confirm>,
    pub timeout: Option<Duration>,
    /// `EXECUTE name` resolved to an earlier `PREPARE name` in the same input: the
    /// prepared statement's classes and objects were used, and this is its index.
    pub resolved_from: Option<usize>,
    /// A session measures this statement's impact at run time: the rule and the
    /// verdict for each outcome. `action`/`rule` above are then the verdict for a
    /// statement within the limits (what the exit code counts).
    pub measured: Option<MeasuredNote>,
    /// A rule with `empty = true` would decide otherwise if every table the
    /// statement destroys were exactly empty: only the live catalog can say, so
    /// the verdict above is the one for tables with rows (or unknown).
    pub empty: Option<String>,
    /// A trash rule decided: what a session does with the statement (moves the
    /// table to the trash, or why not). `action`/`rule` above are then the rule's
    /// fallback, which applies whenever the trash does not.
    pub trash: Option<TrashNote>,
}

/// What a rule with impact limits does with a statement at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasuredNote {
    /// The rule with the limits.
    pub rule: String,
    /// The limits, e.g. "rows = 1000 and share = 10 % (of tables where over 10 rows
    /// change)".
    pub limits: String,
    /// Over a limit: the rule's action (hold or block), who confirms, how long.
    pub over: VerdictSummary,
    /// Impact unknown (not measurable, the probe timed out or failed): `on_unknown`.
    pub unknown: VerdictSummary,
    /// The statement has the shape of a key-bounded one (`WHERE id = …`): when the
    /// target's catalog shows a primary key or a unique NOT NULL index there, a
    /// session runs it without a probe (at most one row, within the limits).
    pub key_shape: bool,
}

/// One possible verdict of a measured statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictSummary {
    pub action: Action,
    /// For holds.
    pub confirm: Option<Confirm>,
    pub timeout: Option<Duration>,
}

impl VerdictSummary {
    fn of(v: &crate::policy::Verdict) -> VerdictSummary {
        let hold = v.action == Action::Hold;
        VerdictSummary {
            action: v.action,
            confirm: hold.then_some(v.confirm),
            timeout: hold.then_some(v.timeout),
        }
    }

    fn text(self) -> String {
        let mut s = self.action.as_str().to_uppercase();
        if let (Some(c), Some(t)) = (self.confirm, self.timeout) {
            let _ = write!(s, " (confirm: {c}, timeout {})", format_duration(t));
        }
        s
    }

    fn json(self) -> Value {
        json!({
            "action": self.action.as_str(),
            "confirm": self.confirm.map(Confirm::as_str),
            "timeout_secs": self.timeout.map(|t| t.as_secs()),
        })
    }
}

/// What a trash rule's statement gets from a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashNote {
    /// The trash covers the statement (sent alone in a simple Query, and faithful
    /// as far as the text shows); `false`: the fallback applies.
    pub covered: bool,
    pub text: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub target: String,
    pub environment: String,
    pub mode: Mode,
    pub user: String,
    pub application: String,
    pub database: String,
    pub policy_origin: String,
    pub policy_sha256: String,
    pub entries: Vec<Entry>,
}

impl Report {
    /// The strictest action over all statements (allow for none).
    pub fn overall(&self) -> Action {
        self.entries
            .iter()
            .map(|e| e.action)
            .max()
            .unwrap_or(Action::Allow)
    }

    /// How many statements a session measures at run time.
    pub fn measured(&self) -> usize {
        self.entries.iter().filter(|e| e.measured.is_some()).count()
    }

    fn count(&self, a: Action) -> usize {
        self.entries.iter().filter(|e| e.action == a).count()
    }
}

/// Evaluates every statement as the target would. `EXECUTE x` after a `PREPARE x`
/// in the same input is judged as the prepared body (a session does the same).
pub fn explain(
    policy: &Policy,
    target: &RunsOn<'_>,
    who: &Who<'_>,
    statements: &[Statement],
) -> Report {
    let ctx = SessionContext {
        environment: target.environment,
        target: target.name,
        database: who.database,
        user: who.user,
        application: who.application,
        client_addr: who.client_addr,
        now: who.now,
    };
    // name → index of the PREPARE that defined it.
    let mut prepared: Vec<(String, usize)> = Vec::new();
    let mut entries = Vec::with_capacity(statements.len());
    for (i, stmt) in statements.iter().enumerate() {
        let mut judged = stmt;
        let mut resolved_from = None;
        if let Some(name) = &stmt.executes {
            if let Some(&(_, j)) = prepared.iter().rev().find(|(n, _)| n == name) {
                if let Some(body) = statements.get(j) {
                    judged = body;
                    resolved_from = Some(j + 1);
                }
            }
        }
        let mut v = policy.evaluate(judged, &ctx);
        let mut measured = None;
        match policy.impact_step(std::slice::from_ref(judged), &ctx, &v) {
            crate::policy::ImpactStep::Probe(call) => {
                measured = Some(measured_note(&call, &stmt.sql));
                // What the statement gets when it stays within the limits: the
                // verdict a CI check counts (the note says what else can happen).
                v = call.within;
            }
            crate::policy::ImpactStep::Decided(d) => v = d,
            crate::policy::ImpactStep::None => {}
        }
        let empty = empty_text(policy, judged, &ctx, &v, target);
        let trash = v
            .rule
            .as_deref()
            .and_then(|r| policy.trash_rule(r))
            .map(|t| trash_note(judged, &t));
        let hold = v.action == Action::Hold;
        entries.push(Entry {
            index: i + 1,
            sql: stmt.sql.clone(),
            classes: judged
                .classes
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            objects: judged.objects.clone(),
            action: v.action,
            rule: v.rule.map(|r| r.to_string()),
            message: v.message.map(|m| m.to_string()),
            confirm: hold.then_some(v.confirm),
            timeout: hold.then_some(v.timeout),
            resolved_from,
            measured,
            empty,
            trash,
        });
        if let Some(name) = &stmt.prepares {
            prepared.retain(|(n, _)| n != name);
            prepared.push((name.clone(), i));
        }
        if let Some(name) = &stmt.deallocates {
            if name == "*" {
                prepared.clear();
            } else {
                prepared.retain(|(n, _)| n != name);
            }
        }
    }
    Report {
        target: target.name.to_string(),
        environment: target.environment.to_string(),
        mode: target.mode,
        user: who.user.to_string(),
        application: who.application.to_string(),
        database: who.database.to_string(),
        policy_origin: policy.origin().to_string(),
        policy_sha256: policy.sha256().to_string(),
        entries,
    }
}

/// The plan of a report (`explain --plan`): each distinct statement's fingerprint,
/// classes and verdict, and how many times it occurs. `statements` are the ones the
/// report was made from, in the same order.
pub fn plan(report: &Report, statements: &[Statement]) -> crate::hold::Plan {
    crate::hold::Plan::from_statements(
        &report.target,
        &report.environment,
        &report.user,
        &report.application,
        &report.policy_sha256,
        report.entries.iter().zip(statements).map(|(e, s)| {
            (
                s.fingerprint.clone(),
                e.classes.clone(),
                e.action.as_str().to_string(),
                e.sql.clone(),
            )
        }),
    )
}

/// 0 = everything allowed (or audited), 2 = something would be held, 3 = something
/// would be blocked. The same in shadow mode. A measured statement counts with its
/// verdict within the limits: 0 for one that is allowed when it changes no more
/// than the limits (its `measured` note says what happens over them).
pub fn exit_code(report: &Report) -> i32 {
    match report.overall() {
        Action::Allow | Action::Audit => 0,
        Action::Hold => 2,
        Action::Block => 3,
    }
}

/// One line of SQL for the text report: whitespace collapsed, at most 120 characters.
fn one_line(sql: &str) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 120 {
        let cut: String = flat.chars().take(119).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// The verdict a rule with `empty = true` would give instead, when it differs.
fn empty_text(
    policy: &Policy,
    stmt: &Statement,
    ctx: &SessionContext<'_>,
    v: &crate::policy::Verdict,
    target: &RunsOn<'_>,
) -> Option<String> {
    if !policy.has_empty_rules() {
        return None;
    }
    let e = policy.evaluate_all_empty(std::slice::from_ref(stmt), ctx);
    if e.action == v.action && e.rule == v.rule {
        return None;
    }
    let by = match &e.rule {
        Some(r) => format!("rule '{r}'"),
        None => format!("the {} default", target.environment),
    };
    Some(format!(
        "{} by {by} if every table it destroys is exactly empty (needs the live catalog: a session counts the rows first; verdict above: tables with rows, or unknown)",
        e.action.as_str().to_uppercase()
    ))
}

/// What an impact rule does with `sql` at run time, from the session's instructions.
fn measured_note(call: &crate::policy::ProbeCall, sql: &str) -> MeasuredNote {
    let l = &call.limits;
    let mut limits = Vec::new();
    if let Some(r) = l.rows {
        limits.push(format!("rows = {r}"));
    }
    if let Some(s) = l.share {
        let floor = if l.share_min_rows > 0 {
            format!(
                " (of tables where over {} rows change, or all of more than one)",
                l.share_min_rows
            )
        } else {
            String::new()
        };
        limits.push(format!("share = {:.0} %{floor}", s * 100.0));
    }
    MeasuredNote {
        rule: call.rule.to_string(),
        limits: limits.join(" and "),
        over: VerdictSummary::of(&call.over),
        unknown: VerdictSummary::of(&call.unknown),
        key_shape: !l.one_row_may_exceed() && crate::catalog::key_shape(sql).is_some(),
    }
}

/// "at run time by rule 'x': kept when within rows = 1000 … (→ ALLOW by the
/// production default), else HOLD (…); impact unknown → HOLD (…)".
fn measured_text(m: &MeasuredNote, e: &Entry, report: &Report) -> String {
    let mut s = format!(
        "at run time by rule '{}': kept when within {} (→ {}), else {}; impact unknown → {}",
        m.rule,
        m.limits,
        verdict_text(e, report),
        m.over.text(),
        m.unknown.text()
    );
    if m.key_shape {
        s.push_str("; no probe when the target's catalog proves it bounded by a key");
    }
    s
}

/// What a session does with a statement a trash rule decided: moved to the trash,
/// restorable, when sent alone in a simple Query (else the fallback), or why the
/// trash does not cover it.
fn trash_note(stmt: &Statement, rule: &crate::policy::TrashRule) -> TrashNote {
    let uncovered = |why: &str| TrashNote {
        covered: false,
        text: format!("not covered ({why}): the fallback above applies"),
    };
    match crate::trash::statement::read(&stmt.sql) {
        Err(u) => uncovered(&u.0),
        Ok(r) if !stmt.classes.contains(&r.class()) => uncovered("not a statement of its class"),
        Ok(crate::trash::statement::TrashRequest::Truncate { .. }) => TrashNote {
            covered: true,
            text: format!(
                "its rows are copied to the trash before it runs, restorable with \
                 `pgwarden trash restore ID` for {}, while its tables hold at most {} bytes; \
                 the fallback applies over that size, when it is sent with other statements or \
                 over the extended protocol, or when the trash cannot keep it faithfully \
                 (e.g. a foreign table)",
                format_duration(rule.retention),
                rule.truncate_max_bytes
            ),
        },
        Ok(crate::trash::statement::TrashRequest::DropSchema { .. }) => TrashNote {
            covered: true,
            text: format!(
                "the schema is renamed into the trash, restorable with `pgwarden trash restore ID` \
                 for {}; the fallback applies when it is sent with other statements or over the \
                 extended protocol, or when the trash cannot keep it faithfully (objects outside \
                 the schema depend on it, or its objects on relations elsewhere)",
                format_duration(rule.retention)
            ),
        },
        Ok(_) => TrashNote {
            covered: true,
            text: format!(
                "moved to the trash, restorable with `pgwarden trash restore ID` for {}; \
                 the fallback applies when it is sent with other statements or over the \
                 extended protocol, or when the trash cannot keep it faithfully (e.g. a partition)",
                format_duration(rule.retention)
            ),
        },
    }
}

fn verdict_text(e: &Entry, report: &Report) -> String {
    let mut s = String::new();
    if report.mode == Mode::Shadow && e.action != Action::Allow {
        s.push_str("would ");
    }
    if e.trash.as_ref().is_some_and(|t| t.covered) {
        s.push_str("TRASH, fallback ");
    }
    s.push_str(&e.action.as_str().to_uppercase());
    if let (Some(c), Some(t)) = (e.confirm, e.timeout) {
        let _ = write!(s, " (confirm: {c}, timeout {})", format_duration(t));
    }
    match &e.rule {
        Some(r) => {
            let _ = write!(s, " by rule '{r}'");
        }
        None => {
            let _ = write!(s, " by the {} default", report.environment);
        }
    }
    s
}

/// The human-readable report.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "target {} (environment {}, {} mode) · user {} · application {} · database {}",
        report.target,
        report.environment,
        report.mode.as_str(),
        or_dash(&report.user),
        or_dash(&report.application),
        or_dash(&report.database),
    );
    let _ = writeln!(
        out,
        "policy {} (sha256 {})",
        report.policy_origin,
        report
            .policy_sha256
            .get(..12)
            .unwrap_or(&report.policy_sha256)
    );
    if report.mode == Mode::Shadow {
        out.push_str("shadow mode: statements are forwarded; these are the would-be decisions\n");
    }
    for e in &report.entries {
        let _ = writeln!(out, "\n[{}] {}", e.index, one_line(&e.sql));
        if let Some(j) = e.resolved_from {
            let _ = writeln!(out, "    runs:    the statement prepared at [{j}]");
        }
        let _ = writeln!(out, "    classes: {}", e.classes.join(", "));
        if !e.objects.is_empty() {
            let _ = writeln!(out, "    objects: {}", e.objects.join(", "));
        }
        let _ = writeln!(out, "    verdict: {}", verdict_text(e, report));
        if let Some(m) = &e.measured {
            let _ = writeln!(out, "    measured: {}", measured_text(m, e, report));
        }
        if let Some(p) = &e.empty {
            let _ = writeln!(out, "    empty:   {p}");
        }
        if let Some(t) = &e.trash {
            let _ = writeln!(out, "    trash:   {}", t.text);
        }
        if let Some(m) = &e.message {
            let _ = writeln!(out, "    message: {m}");
        }
    }
    let n = report.entries.len();
    let _ = writeln!(
        out,
        "\n{n} statement{}: {} allow, {} audit, {} hold, {} block → {} (exit {})",
        if n == 1 { "" } else { "s" },
        report.count(Action::Allow),
        report.count(Action::Audit),
        report.count(Action::Hold),
        report.count(Action::Block),
        report.overall().as_str(),
        exit_code(report),
    );
    let m = report.measured();
    if m > 0 {
        let _ = writeln!(
            out,
            "{m} of them measured at run time, counted by their verdict within the limits"
        );
    }
    out
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// The machine-readable report.
pub fn render_json(report: &Report) -> Value {
    let statements: Vec<Value> = report
        .entries
        .iter()
        .map(|e| {
            json!({
                "index": e.index,
                "sql": e.sql,
                "classes": e.classes,
                "objects": e.objects,
                "action": e.action.as_str(),
                "rule": e.rule,
                "message": e.message,
                "confirm": e.confirm.map(Confirm::as_str),
                "timeout_secs": e.timeout.map(|t| t.as_secs()),
                "resolved_from": e.resolved_from,
                "measured": e.measured.as_ref().map(|m| json!({
                    "rule": m.rule,
                    "limits": m.limits,
                    "within": e.action.as_str(),
                    "over": m.over.json(),
                    "unknown": m.unknown.json(),
                    "key_bound_unprobed": m.key_shape,
                    "what": measured_text(m, e, report),
                })),
                "empty": e.empty,
                "trash": e.trash.as_ref().map(|t| json!({"covered": t.covered, "what": t.text})),
            })
        })
        .collect();
    json!({
        "target": {
            "name": report.target,
            "environment": report.environment,
            "mode": report.mode.as_str(),
        },
        "user": report.user,
        "application": report.application,
        "database": report.database,
        "policy": { "origin": report.policy_origin, "sha256": report.policy_sha256 },
        "statements": statements,
        "summary": {
            "action": report.overall().as_str(),
            "exit_code": exit_code(report),
            "allow": report.count(Action::Allow),
            "audit": report.count(Action::Audit),
            "hold": report.count(Action::Hold),
            "block": report.count(Action::Block),
            "measured": report.measured(),
        },
    })
}
