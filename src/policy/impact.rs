//! Rule conditions on a statement's measured impact (`impact = { rows, share, … }`)
//! and how a measurement is judged against them.
//!
//! A rule with `impact` applies only when the measured impact is over a limit (its
//! `action`), or when the impact is unknown (`on_unknown`, default: the rule's
//! action). Within the limits the rule does not apply and later rules or the
//! default decide. `evaluate` gives such a rule's `on_unknown` verdict (see
//! `Rule::outcome`); [`Policy::impact_step`] then tells the session whether to
//! measure the statement (a message of one statement, simple protocol) and which
//! verdict each measurement leads to.

use std::ops::Range;

use toml::Spanned;

use std::sync::Arc;

use crate::classify::Statement;
use crate::impact::{Impact, Measured, ProbeSettings};

use super::verdict::{Action, SessionContext, Verdict};
use super::Policy;

/// `impact = { rows = 1000, share = "10%", share_min_rows = 10, on_unknown = "hold",
/// statement_timeout = "5s", lock_timeout = "500ms" }`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImpact {
    pub rows: Option<Spanned<i64>>,
    pub share: Option<Spanned<String>>,
    pub share_min_rows: Option<Spanned<i64>>,
    pub on_unknown: Option<Spanned<String>>,
    pub statement_timeout: Option<Spanned<String>>,
    pub lock_timeout: Option<Spanned<String>>,
}

/// The compiled limits of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpactLimits {
    /// Over the limit when more rows than this change, all tables together.
    pub rows: Option<u64>,
    /// Over the limit when a table loses or changes more than this fraction (0..1)
    /// of its rows ...
    pub share: Option<f64>,
    /// ... and more than this many of them (a floor, so that 2 of 3 rows of a
    /// lookup table pass as the deliberate change they are). A table that has every
    /// one of its rows changed, more than one, is over the share whatever the floor:
    /// emptying or overwriting a small table is not routine.
    pub share_min_rows: u64,
    /// What the rule does when the impact is unknown.
    pub on_unknown: Action,
    /// The probe's own `statement_timeout` and `lock_timeout` (defaults 5 s and
    /// 500 ms); hitting either is "impact unknown".
    pub probe: ProbeSettings,
}

/// How a measurement compares with a rule's limits.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// Within every limit: the rule does not apply.
    Within,
    /// Over a limit, with the reason ("1,200 rows > 1000", "public.t: 40 % > 10 %").
    Over(String),
    /// Not measured, or the measurement failed.
    Unknown,
}

impl ImpactLimits {
    /// Whether a statement that changes at most one row of one table and nothing
    /// else can exceed these limits (if not, a key-bounded statement needs no probe).
    pub fn one_row_may_exceed(&self) -> bool {
        self.rows.is_some_and(|r| r < 1) || (self.share.is_some() && self.share_min_rows < 1)
    }

    /// Judges a probe's result.
    pub fn judge(&self, measured: &Measured) -> Judgement {
        match measured {
            Measured::Unknown(_) => Judgement::Unknown,
            Measured::Known(i) => self.judge_impact(i),
        }
    }

    fn judge_impact(&self, i: &Impact) -> Judgement {
        if let Some(max) = self.rows {
            let total = i.total_rows();
            if total > max {
                return Judgement::Over(format!("{total} rows changed > rows = {max}"));
            }
        }
        if let Some(max) = self.share {
            for t in &i.tables {
                let changed = t.existing_rows_changed();
                let every_row = changed > 1 && t.share() >= 1.0;
                if (changed > self.share_min_rows || every_row) && t.share() > max {
                    return Judgement::Over(format!(
                        "{}: {:.0} % of its rows changed > share = {:.0} %",
                        t.qualified(),
                        t.share() * 100.0,
                        max * 100.0
                    ));
                }
            }
        }
        Judgement::Within
    }
}

/// `"10%"`, `"0.5 %"`, `"100%"` → 0.1, 0.005, 1.0.
fn parse_share(s: &str) -> Result<f64, String> {
    let hint = "expected a percentage such as \"10%\"";
    let n = s
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("'{s}': {hint}"))?
        .trim();
    let v: f64 = n.parse().map_err(|_| format!("'{s}': {hint}"))?;
    if !(v > 0.0 && v <= 100.0) {
        return Err(format!("'{s}': must be above 0 % and at most 100 %"));
    }
    Ok(v / 100.0)
}

/// The errors `compile` reports, with the span they are about.
pub(crate) type SpanError = (Range<usize>, &'static str, String);

/// Validates `raw`; `action` is the rule's own action.
pub(crate) fn compile_limits(
    raw: &Spanned<RawImpact>,
    action: Action,
) -> Result<ImpactLimits, SpanError> {
    let r = raw.get_ref();
    let count = |v: &Option<Spanned<i64>>, key: &'static str| -> Result<Option<u64>, SpanError> {
        match v {
            None => Ok(None),
            Some(n) => u64::try_from(*n.get_ref())
                .map(Some)
                .map_err(|_| (n.span(), key, "must be 0 or more".to_string())),
        }
    };
    let rows = count(&r.rows, "rows")?;
    let share_min_rows = count(&r.share_min_rows, "share_min_rows")?;
    let share = match &r.share {
        None => None,
        Some(s) => Some(parse_share(s.get_ref()).map_err(|m| (s.span(), "share", m))?),
    };
    if rows.is_none() && share.is_none() {
        return Err((
            raw.span(),
            "rows",
            "give rows, share or both (a rule with impact but no limit never applies)".to_string(),
        ));
    }
    if share_min_rows.is_some() && share.is_none() {
        if let Some(s) = &r.share_min_rows {
            return Err((
                s.span(),
                "share_min_rows",
                "has no effect without share".to_string(),
            ));
        }
    }
    let on_unknown = match &r.on_unknown {
        None => action,
        Some(s) => Action::from_name(s.get_ref()).ok_or_else(|| {
            (
                s.span(),
                "on_unknown",
                format!(
                    "unknown action '{}' (expected allow, audit, block or hold)",
                    s.get_ref()
                ),
            )
        })?,
    };
    let defaults = ProbeSettings::default();
    let statement_timeout = probe_timeout(&r.statement_timeout, "statement_timeout")?
        .unwrap_or(defaults.statement_timeout);
    let lock_timeout =
        probe_timeout(&r.lock_timeout, "lock_timeout")?.unwrap_or(defaults.lock_timeout);
    if lock_timeout > statement_timeout {
        let span = r
            .lock_timeout
            .as_ref()
            .or(r.statement_timeout.as_ref())
            .map_or_else(|| raw.span(), |s| s.span());
        return Err((
            span,
            "lock_timeout",
            format!(
                "lock_timeout ({} ms) is longer than the probe's statement_timeout ({} ms): \
                 it would never fire",
                lock_timeout.as_millis(),
                statement_timeout.as_millis()
            ),
        ));
    }
    Ok(ImpactLimits {
        rows,
        share,
        share_min_rows: share_min_rows.unwrap_or(0),
        on_unknown,
        probe: ProbeSettings {
            statement_timeout,
            lock_timeout,
        },
    })
}

/// The longest a probe may run or wait for a lock: a probe holds its locks until
/// it is judged, so it must stay short on production.
pub const PROBE_TIMEOUT_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// A probe timeout: a duration from 1 ms to [`PROBE_TIMEOUT_MAX`].
fn probe_timeout(
    v: &Option<Spanned<String>>,
    key: &'static str,
) -> Result<Option<std::time::Duration>, SpanError> {
    let Some(s) = v else { return Ok(None) };
    let d = crate::config::units::duration(s.get_ref()).map_err(|e| (s.span(), key, e))?;
    if d < std::time::Duration::from_millis(1) || d > PROBE_TIMEOUT_MAX {
        return Err((
            s.span(),
            key,
            format!("'{}' must be from 1ms to 60s", s.get_ref()),
        ));
    }
    Ok(Some(d))
}

/// What the session does with a statement whose verdict came from a rule with
/// impact limits (see [`Policy::impact_step`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ImpactStep {
    /// The verdict did not come from a rule with impact limits: it stands.
    None,
    /// Measure the statement: over `limits` (or unknown) `over` (or `unknown`)
    /// decides, within them `within` does.
    Probe(Box<ProbeCall>),
    /// Within the limits the statement would still not be allowed, so measuring it
    /// cannot let it through: this verdict (the strictest of the candidates) decides
    /// without a probe.
    Decided(Verdict),
}

/// A probe's instructions: the limits and the three verdicts it chooses from.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeCall {
    pub rule: Arc<str>,
    pub limits: ImpactLimits,
    /// Over a limit: the rule's `action`.
    pub over: Verdict,
    /// Impact unknown: the rule's `on_unknown`.
    pub unknown: Verdict,
    /// Within every limit: what the later rules or the default say (an allow or audit).
    pub within: Verdict,
}

impl Policy {
    /// For `verdict` (from [`Policy::evaluate_all`] on `stmts`): whether the session
    /// must measure the statement first. Only a message of one statement is probed;
    /// in a longer one the rule's `on_unknown` verdict stands (`ImpactStep::None`).
    pub fn impact_step(
        &self,
        stmts: &[Statement],
        ctx: &SessionContext<'_>,
        verdict: &Verdict,
    ) -> ImpactStep {
        let Some(name) = verdict.rule.as_deref() else {
            return ImpactStep::None;
        };
        let Some((limits, over_action)) = self.impact_limits(name) else {
            return ImpactStep::None;
        };
        let [stmt] = stmts else {
            return ImpactStep::None;
        };
        let within = self.evaluate_within_limits(stmt, ctx);
        let mut over = verdict.clone();
        over.action = over_action;
        if !matches!(within.action, Action::Allow | Action::Audit) {
            // Measuring cannot end in an allow: take the strictest outcome.
            let mut best = verdict.clone();
            for v in [over, within] {
                if v.stricter_than(&best) {
                    best = v;
                }
            }
            return ImpactStep::Decided(best);
        }
        ImpactStep::Probe(Box::new(ProbeCall {
            rule: Arc::from(name),
            limits: limits.clone(),
            over,
            unknown: verdict.clone(),
            within,
        }))
    }
}

/// How a Query message of several statements is measured (see
/// [`Policy::impact_multi`]): per statement, its probe (`Some`) or nothing to
/// measure (`None`: its verdict, an allow or audit, stands on its own).
#[derive(Debug, Clone, PartialEq)]
pub struct MultiCall {
    pub calls: Vec<Option<ProbeCall>>,
    /// The message's verdict when every measured statement is within its limits:
    /// the strictest of the unmeasured statements' verdicts and the measured
    /// statements' `within` (an allow or audit).
    pub within: Verdict,
}

impl Policy {
    /// For a message of several statements whose verdict (`verdict`, from
    /// [`Policy::evaluate_all`]) came from a rule with impact limits: which
    /// statements to measure, each under its own rule. `None` when the verdict
    /// stands unmeasured: it is not an impact rule's, a statement is refused or held
    /// by a rule without limits (measuring cannot let the message through), or a
    /// measured statement would still not be allowed within its limits.
    pub fn impact_multi(
        &self,
        stmts: &[Statement],
        ctx: &SessionContext<'_>,
        verdict: &Verdict,
    ) -> Option<MultiCall> {
        let name = verdict.rule.as_deref()?;
        self.impact_limits(name)?;
        if stmts.len() < 2 {
            return None;
        }
        let mut calls = Vec::with_capacity(stmts.len());
        let mut within: Option<Verdict> = None;
        let mut stricter = |v: Verdict| match &within {
            Some(b) if !v.stricter_than(b) => {}
            _ => within = Some(v),
        };
        for (i, stmt) in stmts.iter().enumerate() {
            let mut v = self.evaluate(stmt, ctx);
            v.statement_index = i;
            let call = match v.rule.as_deref() {
                Some(rule) => match self.impact_limits(rule) {
                    Some((limits, over_action)) => {
                        let mut w = self.evaluate_within_limits(stmt, ctx);
                        w.statement_index = i;
                        let mut over = v.clone();
                        over.action = over_action;
                        Some(ProbeCall {
                            rule: Arc::from(rule),
                            limits: limits.clone(),
                            over,
                            unknown: v.clone(),
                            within: w,
                        })
                    }
                    None => None,
                },
                None => None,
            };
            let standing = call.as_ref().map_or(&v, |c| &c.within);
            if !matches!(standing.action, Action::Allow | Action::Audit) {
                return None;
            }
            stricter(standing.clone());
            calls.push(call);
        }
        if calls.iter().all(Option::is_none) {
            return None;
        }
        Some(MultiCall {
            calls,
            within: within.unwrap_or_else(Verdict::allow),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::{TableImpact, Unknown};

    fn table(name: &str, ins: u64, upd: u64, del: u64, estimate: u64) -> TableImpact {
        TableImpact {
            relid: 1,
            schema: "public".into(),
            name: name.into(),
            inserted: ins,
            updated: upd,
            deleted: del,
            estimate,
        }
    }

    fn known(tables: Vec<TableImpact>) -> Measured {
        Measured::Known(Impact {
            tables,
            command_rows: None,
        })
    }

    fn example() -> ImpactLimits {
        ImpactLimits {
            rows: Some(1000),
            share: Some(0.10),
            share_min_rows: 10,
            on_unknown: Action::Hold,
            probe: ProbeSettings::default(),
        }
    }

    #[test]
    fn judged_against_rows_share_and_the_floor() {
        let l = example();
        let cases: Vec<(&str, Measured, bool)> = vec![
            (
                "one row of a big table",
                known(vec![table("t", 0, 1, 0, 1_000_000)]),
                false,
            ),
            (
                "1001 rows over many tables",
                known(vec![
                    table("a", 0, 0, 600, 1_000_000),
                    table("b", 401, 0, 0, 0),
                ]),
                true,
            ),
            (
                "exactly 1000 rows",
                known(vec![table("a", 0, 0, 1000, 1_000_000)]),
                false,
            ),
            (
                "2 of 3 rows of a lookup table (floor)",
                known(vec![table("lookup", 0, 0, 2, 3)]),
                false,
            ),
            (
                "3 of 3 rows: every row, whatever the floor",
                known(vec![table("lookup", 0, 3, 0, 3)]),
                true,
            ),
            (
                "10 of 10 rows deleted",
                known(vec![table("small", 0, 0, 10, 10)]),
                true,
            ),
            (
                "the only row of a table (one row never exceeds)",
                known(vec![table("single", 0, 1, 0, 1)]),
                false,
            ),
            (
                "2 rows of a table estimated at 1 (stale): every row",
                known(vec![table("t", 0, 0, 2, 1)]),
                true,
            ),
            (
                "11 of 20 rows",
                known(vec![table("small", 0, 11, 0, 20)]),
                true,
            ),
            (
                "10 % exactly",
                known(vec![table("t", 0, 0, 100, 1000)]),
                false,
            ),
            (
                "inserts count as rows, not share",
                known(vec![table("t", 500, 0, 0, 10)]),
                false,
            ),
            (
                "a stale estimate of 0",
                known(vec![table("t", 0, 0, 50, 0)]),
                true,
            ),
        ];
        for (name, m, over) in cases {
            assert_eq!(matches!(l.judge(&m), Judgement::Over(_)), over, "{name}");
        }
        assert_eq!(
            l.judge(&Measured::Unknown(Unknown::Timeout)),
            Judgement::Unknown
        );
        let tag_only = Measured::Known(Impact {
            tables: vec![],
            command_rows: Some(5000),
        });
        assert!(matches!(l.judge(&tag_only), Judgement::Over(_)));
    }

    const FILE: &str = r#"[defaults]
production = { action = "allow" }

[[rule]]
name = "large-writes"
environment = "production"
classes = ["delete.*", "update.*"]
action = "hold"
impact = { rows = 1000, share = "10%", share_min_rows = 10 }

[[rule]]
name = "later"
environment = "production"
classes = ["delete.*"]
action = "block"
"#;

    fn statement(sql: &str) -> crate::classify::Statement {
        crate::classify::classify(sql, &crate::classify::SessionFacts::default()).remove(0)
    }

    fn prod() -> super::super::SessionContext<'static> {
        super::super::SessionContext {
            environment: "production",
            target: "prod",
            database: "app",
            user: "u",
            application: "",
            client_addr: None,
            now: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_policy_file_keys() {
        let p = super::super::Policy::parse(FILE, "p.toml").expect("parses");
        let (l, over) = p.impact_limits("large-writes").expect("limits");
        assert_eq!(
            (l.rows, l.share, l.share_min_rows, l.on_unknown, over),
            (Some(1000), Some(0.1), 10, Action::Hold, Action::Hold)
        );
        assert!(p.impact_limits("later").is_none());
        // Unmeasured, evaluate decides "unknown"; impact_step says how to measure.
        let v = p.evaluate(&statement("DELETE FROM t WHERE id > 0"), &prod());
        assert_eq!(
            (v.action, v.rule.as_deref()),
            (Action::Hold, Some("large-writes"))
        );
        // A rule with impact limits lets statements within them fall through, so
        // the later rule is not reported as shadowed.
        assert!(
            !p.warnings().iter().any(|w| w.contains("shadowed")),
            "{:?}",
            p.warnings()
        );
    }

    #[test]
    fn impact_step_names_the_verdicts_a_probe_chooses_from() {
        let p = super::super::Policy::parse(FILE, "p.toml").expect("parses");
        let step = |sql: &str| {
            let stmts = vec![statement(sql)];
            let v = p.evaluate_all(&stmts, &prod());
            p.impact_step(&stmts, &prod(), &v)
        };
        match step("UPDATE t SET v = 1 WHERE id > 0") {
            ImpactStep::Probe(call) => {
                assert_eq!(&*call.rule, "large-writes");
                assert_eq!(call.over.action, Action::Hold);
                assert_eq!(call.unknown.action, Action::Hold);
                assert_eq!(call.within.action, Action::Allow, "{call:?}");
            }
            other => panic!("{other:?}"),
        }
        // Within the limits the next rule ("later") would block a DELETE: measuring
        // cannot let it through, so the strictest verdict decides unmeasured.
        match step("DELETE FROM t WHERE id > 0") {
            ImpactStep::Decided(v) => assert_eq!(v.action, Action::Block),
            other => panic!("{other:?}"),
        }
        // Two statements in one message are measured one by one (`impact_multi`).
        let two = vec![
            statement("UPDATE t SET v = 1 WHERE id > 0"),
            statement("SELECT 1"),
        ];
        let v = p.evaluate_all(&two, &prod());
        assert_eq!(p.impact_step(&two, &prod(), &v), ImpactStep::None);
    }

    #[test]
    fn impact_multi_measures_each_statement_under_its_own_rule() {
        let p = super::super::Policy::parse(FILE, "p.toml").expect("parses");
        let multi = |sqls: &[&str]| {
            let stmts: Vec<_> = sqls.iter().map(|s| statement(s)).collect();
            let v = p.evaluate_all(&stmts, &prod());
            p.impact_multi(&stmts, &prod(), &v)
        };
        let m = multi(&[
            "SELECT 1",
            "UPDATE t SET v = 1 WHERE id > 0",
            "UPDATE u SET v = 2 WHERE id > 0",
        ])
        .expect("measured");
        assert_eq!(m.calls.len(), 3);
        assert!(m.calls[0].is_none());
        for c in [&m.calls[1], &m.calls[2]] {
            let c = c.as_ref().expect("measured");
            assert_eq!((&*c.rule, c.within.action), ("large-writes", Action::Allow));
        }
        assert_eq!(m.calls[2].as_ref().map(|c| c.over.statement_index), Some(2));
        assert_eq!(m.within.action, Action::Allow);
        // A DELETE that the later rule blocks within the limits: measuring cannot
        // let the message through.
        assert_eq!(multi(&["SELECT 1", "DELETE FROM t WHERE id > 0"]), None);
        // Nothing measured, or one statement only: not this path.
        assert_eq!(multi(&["SELECT 1", "SELECT 2"]), None);
        assert_eq!(multi(&["UPDATE t SET v = 1 WHERE id > 0"]), None);
    }

    #[test]
    fn on_unknown_is_what_applies_unmeasured() {
        let text = FILE.replace(
            "share_min_rows = 10 }",
            "share_min_rows = 10, on_unknown = \"block\" }",
        );
        let p = super::super::Policy::parse(&text, "p.toml").expect("parses");
        let v = p.evaluate(&statement("UPDATE t SET v = 1 WHERE id > 0"), &prod());
        assert_eq!(v.action, Action::Block);
        assert_eq!(
            p.impact_limits("large-writes").map(|(_, a)| a),
            Some(Action::Hold)
        );
    }

    #[test]
    fn bad_impact_keys_are_located() {
        let cases = [
            (
                "share = \"10\"",
                "p.toml:9: rule[1].impact.share: '10': expected a percentage",
            ),
            (
                "rows = -1",
                "p.toml:9: rule[1].impact.rows: must be 0 or more",
            ),
            (
                "on_unknown = \"maybe\", rows = 1",
                "p.toml:9: rule[1].impact.on_unknown: unknown action 'maybe'",
            ),
            (
                "share_min_rows = 3",
                "p.toml:9: rule[1].impact.rows: give rows, share or both",
            ),
            (
                "rows = 5, share_min_rows = 3",
                "p.toml:9: rule[1].impact.share_min_rows: has no effect without share",
            ),
            ("rows = 5, bogus = 1", "p.toml:9:"),
            (
                "rows = 5, statement_timeout = \"soon\"",
                "p.toml:9: rule[1].impact.statement_timeout: invalid duration",
            ),
            (
                "rows = 5, lock_timeout = \"0ms\"",
                "p.toml:9: rule[1].impact.lock_timeout: '0ms' must be from 1ms to 60s",
            ),
            (
                "rows = 5, statement_timeout = \"2m\"",
                "p.toml:9: rule[1].impact.statement_timeout: '2m' must be from 1ms to 60s",
            ),
            (
                "rows = 5, statement_timeout = \"1s\", lock_timeout = \"2s\"",
                "p.toml:9: rule[1].impact.lock_timeout: lock_timeout (2000 ms) is longer",
            ),
        ];
        for (keys, want) in cases {
            let text = FILE.replace("rows = 1000, share = \"10%\", share_min_rows = 10", keys);
            let e = super::super::Policy::parse(&text, "p.toml").expect_err(keys);
            assert!(e.to_string().starts_with(want), "{keys}: {e}");
        }
    }

    #[test]
    fn probe_timeouts_default_or_come_from_the_rule() {
        let p = super::super::Policy::parse(FILE, "p.toml").expect("parses");
        let (l, _) = p.impact_limits("large-writes").expect("limits");
        assert_eq!(l.probe, ProbeSettings::default());
        let text = FILE.replace(
            "share_min_rows = 10 }",
            "share_min_rows = 10, statement_timeout = \"2s\", lock_timeout = \"100ms\" }",
        );
        let p = super::super::Policy::parse(&text, "p.toml").expect("parses");
        let (l, _) = p.impact_limits("large-writes").expect("limits");
        assert_eq!(
            (l.probe.statement_timeout, l.probe.lock_timeout),
            (
                std::time::Duration::from_secs(2),
                std::time::Duration::from_millis(100)
            )
        );
    }

    #[test]
    fn shares_parse_as_percentages() {
        assert_eq!(parse_share("10%"), Ok(0.1));
        assert_eq!(parse_share(" 0.5 % "), Ok(0.005));
        assert_eq!(parse_share("100%"), Ok(1.0));
        for bad in ["10", "0%", "101%", "-5%", "x%", "NaN%"] {
            assert!(parse_share(bad).is_err(), "{bad}");
        }
    }
}
