//! The rule condition `empty = true`: the rule applies only when the live catalog
//! shows that the statement destroys no rows — every table it would drop, empty or
//! lose a column of (partitions and child tables, tables `TRUNCATE … CASCADE`
//! empties through foreign keys, the tables of a dropped schema) has exactly zero
//! rows (an exact count, not an estimate), and no table or materialized view goes
//! with it as a dependent object. The session reads that before deciding (the
//! blast radius, `session/guard/blast.rs`); everywhere else (`pgwarden explain`,
//! several statements in one message, the extended protocol) emptiness is unknown,
//! and unknown never matches: the rule is skipped and the later rules decide.

use std::ops::Range;

use toml::Spanned;

use super::matchers::{class_bit, ClassMask};
use super::{Policy, SessionContext, Verdict};
use crate::classify::{Class, Statement};

/// The classes whose blast radius pgwarden reads, so `empty` can be known.
pub const EMPTY_CLASSES: [Class; 4] = [
    Class::DropTable,
    Class::DropSchema,
    Class::Truncate,
    Class::AlterDropColumn,
];

fn empty_mask() -> ClassMask {
    EMPTY_CLASSES.iter().fold(0, |m, c| m | class_bit(*c))
}

/// Validates a rule's `empty` key: `Ok(true)` for `empty = true`. `classes` is the
/// rule's class mask, `None` when it has no `classes` key (every class).
pub(crate) fn compile_empty(
    raw: Option<&Spanned<bool>>,
    classes: Option<ClassMask>,
    impact: bool,
    trash: bool,
) -> Result<bool, (Range<usize>, String)> {
    let Some(v) = raw else {
        return Ok(false);
    };
    let span = v.span();
    if !*v.get_ref() {
        return Err((
            span,
            "empty = false is no condition; leave the key out (a rule without it applies \
             whatever the tables hold)"
                .into(),
        ));
    }
    if impact || trash {
        return Err((
            span,
            format!(
                "empty cannot be combined with {}",
                if impact {
                    "impact"
                } else {
                    "action = \"trash\""
                }
            ),
        ));
    }
    let names = || {
        EMPTY_CLASSES
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(mask) = classes else {
        return Err((
            span,
            format!("empty = true needs a classes key listing only {}", names()),
        ));
    };
    let other = mask & !empty_mask();
    if other != 0 {
        let extra: Vec<&str> = Class::ALL
            .iter()
            .filter(|c| other & class_bit(**c) != 0)
            .map(|c| c.as_str())
            .take(4)
            .collect();
        return Err((
            span,
            format!(
                "empty = true applies to {} only; the rule's classes also match {}",
                names(),
                extra.join(", ")
            ),
        ));
    }
    Ok(true)
}

impl Policy {
    /// Whether some rule has `empty = true`.
    pub fn has_empty_rules(&self) -> bool {
        self.rules.iter().any(|r| r.empty)
    }

    /// The verdict for `stmts` when every table they destroy is known to be exactly
    /// empty (rules with `empty = true` then take part). Without that knowledge,
    /// [`Policy::evaluate_all`] is the verdict.
    pub fn evaluate_all_empty(&self, stmts: &[Statement], ctx: &SessionContext<'_>) -> Verdict {
        self.evaluate_all_with(stmts, ctx, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Action;
    use super::*;

    const FILE: &str = r#"[defaults]
production = { action = "allow" }

[[rule]]
name = "empty-tables-go"
environment = "production"
classes = ["drop.table", "truncate"]
empty = true
action = "allow"

[[rule]]
name = "drops"
environment = "production"
classes = ["drop.*", "truncate"]
action = "hold"
confirm = "approver"
"#;

    fn prod() -> SessionContext<'static> {
        SessionContext {
            environment: "production",
            target: "prod",
            database: "app",
            user: "u",
            application: "",
            client_addr: None,
            now: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn stmts(sql: &str) -> Vec<Statement> {
        crate::classify::classify(sql, &crate::classify::SessionFacts::default())
    }

    #[test]
    fn an_empty_rule_applies_only_when_emptiness_is_known() {
        let p = Policy::parse(FILE, "p.toml").expect("policy");
        assert!(p.has_empty_rules());
        assert!(
            !p.warnings().iter().any(|w| w.contains("shadowed")),
            "{:?}",
            p.warnings()
        );
        let drop = stmts("DROP TABLE t");
        // Unknown: the rule is skipped.
        let v = p.evaluate_all(&drop, &prod());
        assert_eq!((v.action, v.rule.as_deref()), (Action::Hold, Some("drops")));
        let v = p.evaluate_all_empty(&drop, &prod());
        assert_eq!(
            (v.action, v.rule.as_deref()),
            (Action::Allow, Some("empty-tables-go"))
        );
        // A class the rule does not list is decided as before.
        let v = p.evaluate_all_empty(&stmts("DROP VIEW v"), &prod());
        assert_eq!(v.rule.as_deref(), Some("drops"));
        let plain = Policy::parse(
            "[defaults]\nproduction = { action = \"allow\" }\n",
            "p.toml",
        )
        .expect("policy");
        assert!(!plain.has_empty_rules());
    }

    #[test]
    fn bad_empty_keys_are_located() {
        let rule = |extra: &str| {
            format!(
                "[defaults]\nproduction = {{ action = \"allow\" }}\n\n[[rule]]\nname = \"r\"\n\
                 environment = \"production\"\n{extra}\naction = \"allow\"\n"
            )
        };
        let cases = [
            (
                "classes = [\"drop.table\"]\nempty = false",
                "p.toml:8: rule[1].empty: empty = false is no condition",
            ),
            (
                "empty = true",
                "p.toml:7: rule[1].empty: empty = true needs a classes key",
            ),
            (
                "classes = [\"drop.*\"]\nempty = true",
                "p.toml:8: rule[1].empty: empty = true applies to drop.table, drop.schema, \
                 truncate, alter.drop_column only; the rule's classes also match drop.database",
            ),
            ("classes = [\"truncate\"]\nempty = \"yes\"", "p.toml:8"),
            (
                "classes = [\"truncate\"]\nempty = true\nimpact = { rows = 5 }",
                "p.toml:8: rule[1].empty: empty cannot be combined with impact",
            ),
        ];
        for (extra, want) in cases {
            let e = Policy::parse(&rule(extra), "p.toml")
                .expect_err(extra)
                .to_string();
            assert!(e.starts_with(want), "{extra}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn an_empty_rule_shadows_nothing() {
        let p = Policy::parse(
            r#"[defaults]
production = { action = "allow" }

[[rule]]
name = "empty-drops-go"
classes = ["drop.table"]
empty = true
action = "allow"

[[rule]]
name = "drops"
classes = ["drop.table"]
action = "hold"
"#,
            "p.toml",
        )
        .expect("policy");
        assert!(
            !p.warnings().iter().any(|w| w.contains("shadowed")),
            "{:?}",
            p.warnings()
        );
    }
}
