//! Raw file structs → compiled, validated rules and environment defaults.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::duration::parse_duration;
use super::error::{from_toml, line_of, PolicyError};
use super::file::{RawDefault, RawPolicy, RawRule, StringList};
use super::impact::{compile_limits, ImpactLimits};
use super::matchers::{
    all_classes, class_mask, is_literal, ClassMask, ClientMatcher, NameMatcher, ObjectMatcher,
};
use super::verdict::{Action, Confirm, DEFAULT_HOLD_TIMEOUT};
use super::window::Window;

/// What a rule or a default does when it decides.
#[derive(Debug, Clone)]
pub(crate) struct RuleEffect {
    pub action: Action,
    pub confirm: Confirm,
    pub timeout: Duration,
    pub message: Option<Arc<str>>,
}

/// One compiled `[[rule]]`.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub name: Arc<str>,
    pub line: usize,
    pub environments: Option<NameMatcher>,
    pub targets: Option<NameMatcher>,
    pub databases: Option<NameMatcher>,
    pub users: Option<NameMatcher>,
    pub applications: Option<NameMatcher>,
    pub clients: Option<ClientMatcher>,
    /// All classes when the rule has no `classes` key.
    pub classes: ClassMask,
    pub objects: Option<ObjectMatcher>,
    pub hours: Option<Vec<Window>>,
    /// Limits on the measured impact; `outcome` then carries their `on_unknown`
    /// action, which is what applies while the session does not measure.
    pub impact: Option<ImpactRule>,
    /// `action = "trash"`: `outcome` then carries the fallback, which is what
    /// applies whenever the session does not carry the trash out.
    pub trash: Option<super::trash::TrashRule>,
    /// `empty = true`: applies only when the session knows that the statement
    /// destroys no rows (`policy/empty.rs`).
    pub empty: bool,
    pub outcome: RuleEffect,
}

/// A rule's `impact` conditions and the action for a statement over them.
#[derive(Debug, Clone)]
pub(crate) struct ImpactRule {
    pub limits: ImpactLimits,
    pub over: Action,
}

/// One compiled `[defaults]` entry.
#[derive(Debug, Clone)]
pub(crate) struct EnvDefault {
    pub environment: String,
    pub action: RuleEffect,
    pub on_unparsed: RuleEffect,
}

/// The compiled file.
pub(crate) struct Compiled {
    pub rules: Vec<Rule>,
    pub defaults: Vec<EnvDefault>,
    pub fallback: Option<EnvDefault>,
    pub warnings: Vec<String>,
}

struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }
    fn err(&self, span: &Range<usize>, key: &str, message: String) -> PolicyError {
        PolicyError::new(self.origin, Some(self.line(span)), key, message)
    }
    fn warn(&mut self, span: &Range<usize>, message: String) {
        let line = self.line(span);
        self.warnings
            .push(format!("{}:{line}: {message}", self.origin));
    }
}

/// Parses and validates the policy text.
pub(crate) fn compile(text: &str, origin: &str) -> Result<Compiled, PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|e| from_toml(text, origin, &e))?;
    let mut cx = Ctx {
        text,
        origin,
        warnings: Vec::new(),
    };

    let mut defaults = Vec::new();
    let mut fallback = None;
    for (env, raw_default) in &raw.defaults {
        let d = compile_default(&mut cx, env, raw_default)?;
        if env.get_ref() == "*" {
            fallback = Some(d);
        } else {
            defaults.push(d);
        }
    }

    let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, raw_rule) in raw.rule.iter().enumerate() {
        let prefix = format!("rule[{}]", i + 1);
        let rule = compile_rule(&mut cx, &prefix, raw_rule)?;
        if let Some(first) = names.insert(rule.name.to_string(), rule.line) {
            return Err(cx.err(
                &raw_rule.get_ref().name.span(),
                &format!("{prefix}.name"),
                format!(
                    "duplicate rule name '{}' (first used at line {first})",
                    rule.name
                ),
            ));
        }
        // Environments a rule names literally should have defaults, or they are typos.
        if !raw.defaults.is_empty() && fallback.is_none() {
            if let Some(envs) = &rule.environments {
                for e in envs.patterns().iter().filter(|p| is_literal(p)) {
                    if !defaults.iter().any(|d: &EnvDefault| &d.environment == e) {
                        let span = env_span(raw_rule.get_ref());
                        cx.warn(
                            &span,
                            format!(
                                "rule '{}' names environment '{e}', which has no [defaults] entry",
                                rule.name
                            ),
                        );
                    }
                }
            }
        }
        rules.push(rule);
    }

    let production = defaults
        .iter()
        .find(|d| d.environment == super::destructive::PRODUCTION)
        .or(fallback.as_ref());
    if let Some(d) = production {
        let through = super::destructive::let_through(&rules, Some(d));
        let key = if d.environment == "*" {
            "\"*\""
        } else {
            d.environment.as_str()
        };
        if let Some(msg) = super::destructive::warning(&through, key, d.action.action) {
            let span = raw
                .defaults
                .iter()
                .find(|(k, _)| k.get_ref() == &d.environment)
                .map_or(0..0, |(_, v)| v.span());
            cx.warn(&span, msg);
        }
    }

    Ok(Compiled {
        rules,
        defaults,
        fallback,
        warnings: cx.warnings,
    })
}

fn env_span(r: &RawRule) -> Range<usize> {
    r.environment
        .as_ref()
        .or(r.environments.as_ref())
        .map_or_else(|| r.name.span(), |s| s.span())
}

fn parse_action(cx: &Ctx<'_>, s: &Spanned<String>, key: &str) -> Result<Action, PolicyError> {
    Action::from_name(s.get_ref()).ok_or_else(|| {
        cx.err(
            &s.span(),
            key,
            format!(
                "unknown action '{}' (expected allow, audit, block or hold; rules also take trash)",
                s.get_ref()
            ),
        )
    })
}

fn parse_confirm(
    cx: &Ctx<'_>,
    s: Option<&Spanned<String>>,
    key: &str,
) -> Result<Confirm, PolicyError> {
    match s {
        None => Ok(Confirm::Approver),
        Some(s) => Confirm::from_name(s.get_ref()).ok_or_else(|| {
            cx.err(
                &s.span(),
                key,
                format!(
                    "unknown confirm '{}' (expected self or approver)",
                    s.get_ref()
                ),
            )
        }),
    }
}

fn parse_timeout(
    cx: &Ctx<'_>,
    s: Option<&Spanned<String>>,
    key: &str,
) -> Result<Duration, PolicyError> {
    match s {
        None => Ok(DEFAULT_HOLD_TIMEOUT),
        Some(s) => parse_duration(s.get_ref()).map_err(|m| cx.err(&s.span(), key, m)),
    }
}

fn message(s: Option<&Spanned<String>>) -> Option<Arc<str>> {
    s.map(|m| Arc::from(m.get_ref().as_str()))
}

fn compile_default(
    cx: &mut Ctx<'_>,
    env: &Spanned<String>,
    raw: &Spanned<RawDefault>,
) -> Result<EnvDefault, PolicyError> {
    let name = env.get_ref();
    let p = format!("defaults.{name}");
    let r = raw.get_ref();
    let action = parse_action(cx, &r.action, &format!("{p}.action"))?;
    let on_unparsed = match &r.on_unparsed {
        Some(s) => parse_action(cx, s, &format!("{p}.on_unparsed"))?,
        None if name == "production" => Action::Hold,
        None => action,
    };
    let confirm = parse_confirm(cx, r.confirm.as_ref(), &format!("{p}.confirm"))?;
    let timeout = parse_timeout(cx, r.timeout.as_ref(), &format!("{p}.timeout"))?;
    let msg = message(r.message.as_ref());
    if action != Action::Hold && on_unparsed != Action::Hold {
        if let Some(s) = r
            .confirm
            .as_ref()
            .map(|s| s.span())
            .or(r.timeout.as_ref().map(|s| s.span()))
        {
            cx.warn(
                &s,
                format!("defaults.{name}: confirm/timeout have no effect unless an action is hold"),
            );
        }
    }
    if name == "production" && on_unparsed.forwards() {
        let span = r
            .on_unparsed
            .as_ref()
            .map_or_else(|| raw.span(), |s| s.span());
        cx.warn(
            &span,
            format!(
                "defaults.production.on_unparsed = \"{on_unparsed}\" forwards statements pgwarden could not read"
            ),
        );
    }
    let outcome = |a: Action| RuleEffect {
        action: a,
        confirm,
        timeout,
        message: msg.clone(),
    };
    let unparsed_message = msg.clone().or_else(|| {
        Some(Arc::from(
            "pgwarden could not read this statement reliably; the environment's on_unparsed applies",
        ))
    });
    Ok(EnvDefault {
        environment: name.clone(),
        action: outcome(action),
        on_unparsed: RuleEffect {
            message: unparsed_message,
            ..outcome(on_unparsed)
        },
    })
}

fn list<'a>(
    cx: &Ctx<'_>,
    s: Option<&'a Spanned<StringList>>,
    key: &str,
) -> Result<Option<&'a Spanned<StringList>>, PolicyError> {
    if let Some(l) = s {
        if l.get_ref().0.is_empty() {
            return Err(cx.err(
                &l.span(),
                key,
                "empty list matches nothing; remove the key to match everything".to_string(),
            ));
        }
        if l.get_ref().0.iter().any(|p| p.is_empty()) {
            return Err(cx.err(&l.span(), key, "empty pattern".to_string()));
        }
    }
    Ok(s)
}

fn names(
    cx: &Ctx<'_>,
    s: Option<&Spanned<StringList>>,
    key: &str,
) -> Result<Option<NameMatcher>, PolicyError> {
    match list(cx, s, key)? {
        None => Ok(None),
        Some(l) => NameMatcher::new(&l.get_ref().0)
            .map(Some)
            .map_err(|m| cx.err(&l.span(), key, m)),
    }
}

fn compile_rule(cx: &mut Ctx<'_>, p: &str, raw: &Spanned<RawRule>) -> Result<Rule, PolicyError> {
    let r = raw.get_ref();
    let k = |key: &str| format!("{p}.{key}");
    let name = r.name.get_ref().trim();
    if name.is_empty() {
        return Err(cx.err(&r.name.span(), &k("name"), "empty rule name".to_string()));
    }
    let line = cx.line(&r.name.span());

    let env_raw = match (&r.environment, &r.environments) {
        (Some(_), Some(b)) => {
            return Err(cx.err(
                &b.span(),
                &k("environments"),
                "give either environment or environments, not both".to_string(),
            ))
        }
        (a, b) => a.as_ref().or(b.as_ref()),
    };
    let env_key = if r.environment.is_some() {
        "environment"
    } else {
        "environments"
    };
    let environments = names(cx, env_raw, &k(env_key))?;
    let targets = names(cx, r.targets.as_ref(), &k("targets"))?;
    let databases = names(cx, r.databases.as_ref(), &k("databases"))?;
    let users = names(cx, r.users.as_ref(), &k("users"))?;
    let applications = names(cx, r.applications.as_ref(), &k("applications"))?;

    let clients = match list(cx, r.clients.as_ref(), &k("clients"))? {
        None => None,
        Some(l) => Some(
            ClientMatcher::new(&l.get_ref().0).map_err(|m| cx.err(&l.span(), &k("clients"), m))?,
        ),
    };
    let classes = match list(cx, r.classes.as_ref(), &k("classes"))? {
        None => all_classes(),
        Some(l) => class_mask(&l.get_ref().0).map_err(|m| cx.err(&l.span(), &k("classes"), m))?,
    };
    let objects = match list(cx, r.objects.as_ref(), &k("objects"))? {
        None => None,
        Some(l) => Some(
            ObjectMatcher::new(&l.get_ref().0).map_err(|m| cx.err(&l.span(), &k("objects"), m))?,
        ),
    };
    let hours = match list(cx, r.hours.as_ref(), &k("hours"))? {
        None => None,
        Some(l) => {
            let mut ws = Vec::new();
            for h in &l.get_ref().0 {
                ws.push(Window::parse(h).map_err(|m| cx.err(&l.span(), &k("hours"), m))?);
            }
            Some(ws)
        }
    };

    let trash = if r.action.get_ref() == "trash" {
        let retention = match &r.retention {
            None => super::trash::DEFAULT_RETENTION,
            Some(s) => super::trash::parse_retention(s.get_ref())
                .map_err(|m| cx.err(&s.span(), &k("retention"), m))?,
        };
        let fallback = match &r.fallback {
            None => Action::Hold,
            Some(s) => super::trash::parse_fallback(s.get_ref())
                .map_err(|m| cx.err(&s.span(), &k("fallback"), m))?,
        };
        if r.impact.is_some() {
            return Err(cx.err(
                &r.action.span(),
                &k("impact"),
                "impact limits cannot be combined with action = \"trash\"".into(),
            ));
        }
        let truncate_max_bytes = match &r.truncate_max_size {
            None => super::trash::DEFAULT_TRUNCATE_MAX_BYTES,
            Some(s) => super::trash::parse_size(s.get_ref())
                .map_err(|m| cx.err(&s.span(), &k("truncate_max_size"), m))?,
        };
        let covered = [
            crate::classify::Class::DropTable,
            crate::classify::Class::DropView,
            crate::classify::Class::DropSchema,
            crate::classify::Class::DropDatabase,
            crate::classify::Class::Truncate,
        ]
        .into_iter()
        .fold(0, |bits, c| bits | super::matchers::class_bit(c));
        if classes & !covered != 0 {
            cx.warn(
                &r.action.span(),
                format!(
                    "rule '{name}': action = \"trash\" is carried out for DROP TABLE, DROP VIEW, \
                     DROP MATERIALIZED VIEW, DROP SCHEMA, DROP DATABASE and TRUNCATE only: every other statement this rule \
                     matches gets the fallback (\"{fallback}\")"
                ),
            );
        }
        Some(super::trash::TrashRule {
            retention,
            fallback,
            truncate_max_bytes,
        })
    } else {
        if let Some(s) = r
            .retention
            .as_ref()
            .or(r.fallback.as_ref())
            .or(r.truncate_max_size.as_ref())
        {
            return Err(cx.err(
                &s.span(),
                &k(if r.retention.is_some() {
                    "retention"
                } else if r.fallback.is_some() {
                    "fallback"
                } else {
                    "truncate_max_size"
                }),
                "retention, fallback and truncate_max_size belong to action = \"trash\"".into(),
            ));
        }
        None
    };
    let action = match &trash {
        Some(t) => t.fallback,
        None => parse_action(cx, &r.action, &k("action"))?,
    };
    let confirm = parse_confirm(cx, r.confirm.as_ref(), &k("confirm"))?;
    let timeout = parse_timeout(cx, r.timeout.as_ref(), &k("timeout"))?;
    if action != Action::Hold {
        if let Some(s) = r.confirm.as_ref().or(r.timeout.as_ref()) {
            cx.warn(
                &s.span(),
                format!("rule '{name}': confirm/timeout have no effect unless action = \"hold\""),
            );
        }
    }

    let impact = match &r.impact {
        None => None,
        Some(raw_impact) => {
            let limits = compile_limits(raw_impact, action)
                .map_err(|(span, key, m)| cx.err(&span, &k(&format!("impact.{key}")), m))?;
            Some(ImpactRule {
                limits,
                over: action,
            })
        }
    };
    // Unmeasured (extended protocol, several statements in one message, explain), a
    // rule with impact limits decides as "unknown"; `Policy::impact_step` says how
    // a measured statement is decided.
    let action = impact.as_ref().map_or(action, |i| i.limits.on_unknown);
    let empty = super::empty::compile_empty(
        r.empty.as_ref(),
        r.classes.is_some().then_some(classes),
        impact.is_some(),
        trash.is_some(),
    )
    .map_err(|(span, m)| cx.err(&span, &k("empty"), m))?;

    Ok(Rule {
        name: Arc::from(name),
        line,
        environments,
        targets,
        databases,
        users,
        applications,
        clients,
        classes,
        objects,
        hours,
        impact,
        trash,
        empty,
        outcome: RuleEffect {
            action,
            confirm,
            timeout,
            message: message(r.message.as_ref()),
        },
    })
}
