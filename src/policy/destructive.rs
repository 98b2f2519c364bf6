//! The warning for a production policy that lets destructive statements through by
//! default: `pgwarden check` and every reload report it (a policy file cut short
//! after `[defaults]` is exactly such a policy).

use super::compile::{EnvDefault, Rule};
use super::verdict::Action;
use crate::classify::Class;

/// The environment name pgwarden treats as production (as for `on_unparsed`).
pub const PRODUCTION: &str = "production";

/// Classes that destroy data or a whole object when they run.
pub const DESTRUCTIVE: [Class; 15] = [
    Class::DropDatabase,
    Class::DropSchema,
    Class::DropTable,
    Class::DropView,
    Class::DropIndex,
    Class::DropFunction,
    Class::DropType,
    Class::DropExtension,
    Class::DropRole,
    Class::DropOwned,
    Class::DropOther,
    Class::Truncate,
    Class::DeleteUnbounded,
    Class::UpdateUnbounded,
    Class::AlterDropColumn,
];

/// The destructive classes that reach a production server by default: production's
/// default (or `"*"`) forwards them and no rule for production holds or blocks them.
/// Empty when production has no default at all (then everything is blocked).
pub fn let_through(rules: &[Rule], production: Option<&EnvDefault>) -> Vec<Class> {
    let Some(default) = production else {
        return Vec::new();
    };
    if !default.action.action.forwards() {
        return Vec::new();
    }
    DESTRUCTIVE
        .into_iter()
        .filter(|c| {
            let bit = super::matchers::class_bit(*c);
            !rules.iter().any(|r| {
                r.classes & bit != 0
                    // Impact limits let statements within them through.
                    && r.impact.is_none()
                    && !r.empty
                    && !r.outcome.action.forwards()
                    && r.environments
                        .as_ref()
                        .is_none_or(|e| e.is_match(PRODUCTION))
            })
        })
        .collect()
}

/// The warning text for `let_through`'s result, or `None` when it is empty.
pub fn warning(classes: &[Class], default_key: &str, action: Action) -> Option<String> {
    if classes.is_empty() {
        return None;
    }
    // Every drop class reads better as the glob a rule would use.
    let all_drops = DESTRUCTIVE
        .iter()
        .filter(|c| c.family() == "drop")
        .all(|d| classes.contains(d));
    let mut names: Vec<&str> = Vec::new();
    for c in classes {
        match c.family() {
            "drop" if all_drops => {
                if !names.contains(&"drop.*") {
                    names.push("drop.*");
                }
            }
            _ => names.push(c.as_str()),
        }
    }
    Some(format!(
        "production lets destructive statements through by default: no rule holds or blocks {} \
         and defaults.{default_key}.action is \"{action}\"",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;

    fn warned(text: &str) -> bool {
        let p = Policy::parse(text, "p.toml").unwrap();
        p.warnings()
            .iter()
            .any(|w| w.contains("lets destructive statements through"))
    }

    #[test]
    fn cases() {
        let cases: [(&str, &str, bool); 7] = [
            (
                "cut after [defaults]",
                "[defaults]\nproduction = { action = \"allow\" }\n",
                true,
            ),
            (
                "only '*' allows",
                "[defaults]\n\"*\" = { action = \"allow\" }\n",
                true,
            ),
            (
                "production default holds",
                "[defaults]\nproduction = { action = \"hold\" }\n",
                false,
            ),
            (
                "no production default (fail closed)",
                "[defaults]\nstaging = { action = \"allow\" }\n",
                false,
            ),
            (
                "one destructive class uncovered",
                "[defaults]\nproduction = { action = \"allow\" }\n\
                 [[rule]]\nname = \"r\"\nenvironment = \"production\"\n\
                 classes = [\"drop.*\", \"truncate\", \"delete.unbounded\", \"update.unbounded\"]\n\
                 action = \"hold\"\n",
                true,
            ),
            (
                "all covered, rule without environment",
                "[defaults]\nproduction = { action = \"allow\" }\n\
                 [[rule]]\nname = \"r\"\n\
                 classes = [\"drop.*\", \"truncate\", \"delete.unbounded\", \"update.unbounded\", \"alter.drop_column\"]\n\
                 action = \"block\"\n",
                false,
            ),
            (
                "covered only for staging",
                "[defaults]\nproduction = { action = \"allow\" }\nstaging = { action = \"allow\" }\n\
                 [[rule]]\nname = \"r\"\nenvironment = \"staging\"\n\
                 classes = [\"drop.*\", \"truncate\", \"delete.unbounded\", \"update.unbounded\", \"alter.drop_column\"]\n\
                 action = \"block\"\n",
                true,
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(warned(text), want, "{name}");
        }
    }

    #[test]
    fn the_example_policy_is_not_warned_about() {
        assert!(!warned(include_str!("../../policy.example.toml")));
    }
}
