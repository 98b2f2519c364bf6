//! `Policy::evaluate`: first match per class, environment defaults, strictest wins.

use std::sync::Arc;

use crate::classify::Statement;

use super::compile::{EnvDefault, Rule, RuleEffect};
use super::matchers::{mask_of, unparsed_classes};
use super::verdict::{Action, Confirm, SessionContext, Verdict, DEFAULT_HOLD_TIMEOUT};
use super::Policy;

impl Rule {
    /// The session conditions (everything except classes and objects).
    fn matches_session(&self, ctx: &SessionContext<'_>) -> bool {
        fn opt<T>(m: &Option<T>, f: impl FnOnce(&T) -> bool) -> bool {
            m.as_ref().is_none_or(f)
        }
        opt(&self.environments, |m| m.is_match(ctx.environment))
            && opt(&self.targets, |m| m.is_match(ctx.target))
            && opt(&self.databases, |m| m.is_match(ctx.database))
            && opt(&self.users, |m| m.is_match(ctx.user))
            && opt(&self.applications, |m| m.is_match(ctx.application))
            && opt(&self.clients, |m| m.is_match(ctx.client_addr))
            && opt(&self.hours, |ws| ws.iter().any(|w| w.contains(ctx.now)))
    }

    fn verdict(&self, index: usize) -> Verdict {
        outcome_verdict(&self.outcome, Some(self.name.clone()), index)
    }
}

fn outcome_verdict(o: &RuleEffect, rule: Option<Arc<str>>, index: usize) -> Verdict {
    Verdict {
        action: o.action,
        rule,
        message: o.message.clone(),
        confirm: o.confirm,
        timeout: o.timeout,
        statement_index: index,
    }
}

fn keep_stricter(best: &mut Option<Verdict>, v: Verdict) {
    match best {
        Some(b) if !v.stricter_than(b) => {}
        _ => *best = Some(v),
    }
}

impl Policy {
    fn default_for(&self, environment: &str) -> Option<&EnvDefault> {
        self.defaults
            .iter()
            .find(|d| d.environment == environment)
            .or(self.fallback.as_ref())
    }

    /// The verdict for one statement (`statement_index` 0). Never panics.
    pub fn evaluate(&self, stmt: &Statement, ctx: &SessionContext<'_>) -> Verdict {
        self.evaluate_at(stmt, ctx, 0)
    }

    /// The strictest verdict over all statements of one message; empty → allow.
    pub fn evaluate_all(&self, stmts: &[Statement], ctx: &SessionContext<'_>) -> Verdict {
        self.evaluate_all_with(stmts, ctx, false)
    }

    /// `evaluate_all`; with `empty`, rules with `empty = true` take part (the
    /// session knows the statements destroy no rows).
    pub(crate) fn evaluate_all_with(
        &self,
        stmts: &[Statement],
        ctx: &SessionContext<'_>,
        empty: bool,
    ) -> Verdict {
        let mut best: Option<Verdict> = None;
        for (i, s) in stmts.iter().enumerate() {
            let v = self.evaluate_rules(s, ctx, i, false, empty);
            let block = v.action == Action::Block;
            keep_stricter(&mut best, v);
            if block {
                break;
            }
        }
        best.unwrap_or_else(Verdict::allow)
    }

    fn evaluate_at(&self, stmt: &Statement, ctx: &SessionContext<'_>, index: usize) -> Verdict {
        self.evaluate_rules(stmt, ctx, index, false, false)
    }

    /// The verdict for one statement as if rules with impact limits were not there:
    /// what decides a statement whose measured impact is within every limit.
    pub(crate) fn evaluate_within_limits(
        &self,
        stmt: &Statement,
        ctx: &SessionContext<'_>,
    ) -> Verdict {
        self.evaluate_rules(stmt, ctx, 0, true, false)
    }

    fn evaluate_rules(
        &self,
        stmt: &Statement,
        ctx: &SessionContext<'_>,
        index: usize,
        skip_impact: bool,
        empty: bool,
    ) -> Verdict {
        let mut remaining = mask_of(&stmt.classes);
        let mut best: Option<Verdict> = None;
        for rule in &self.rules {
            if (skip_impact && rule.impact.is_some()) || (rule.empty && !empty) {
                continue;
            }
            let hit = remaining & rule.classes;
            if hit == 0 || !rule.matches_session(ctx) {
                continue;
            }
            if let Some(objects) = &rule.objects {
                if !objects.matches_any(&stmt.objects) {
                    continue;
                }
            }
            remaining &= !hit;
            keep_stricter(&mut best, rule.verdict(index));
            if remaining == 0 {
                break;
            }
        }
        if remaining != 0 {
            match self.default_for(ctx.environment) {
                Some(d) => {
                    if remaining & unparsed_classes() != 0 {
                        keep_stricter(&mut best, outcome_verdict(&d.on_unparsed, None, index));
                    }
                    if remaining & !unparsed_classes() != 0 {
                        keep_stricter(&mut best, outcome_verdict(&d.action, None, index));
                    }
                }
                None => keep_stricter(&mut best, no_default(ctx.environment, index)),
            }
        }
        best.unwrap_or_else(|| no_default(ctx.environment, index))
    }
}

/// Fail closed: an environment the policy has no defaults for blocks.
fn no_default(environment: &str, index: usize) -> Verdict {
    Verdict {
        action: Action::Block,
        rule: None,
        message: Some(Arc::from(format!(
            "the policy has no [defaults] entry for environment '{environment}'; \
             pgwarden blocks what no rule allows"
        ))),
        confirm: Confirm::Approver,
        timeout: DEFAULT_HOLD_TIMEOUT,
        statement_index: index,
    }
}
