//! Pure: the compiled policy and `evaluate(statement, session) -> Verdict`.
//!
//! A policy file is parsed once into an immutable [`Policy`] (shared as `Arc<Policy>`),
//! with every glob, CIDR, time window and duration compiled and validated. Semantics
//! (documented for users in `docs/policy.md`):
//!
//! * Rules are tried in file order; the first rule whose conditions all hold decides.
//! * Each class of a statement is decided on its own (first matching rule for that
//!   class, else the environment default, or `on_unparsed` for `unparsed` /
//!   `unreadable`); the statement gets the strictest of those verdicts. A rule that
//!   allows `read` therefore never lets a `delete.unbounded` hidden in a CTE through.
//! * A multi-statement message gets the strictest verdict of its statements
//!   (`Allow < Audit < Hold(self) < Hold(approver) < Block`; ties keep the earliest).
//! * No `[defaults]` entry for the session's environment (and no `"*"` entry): the
//!   default is `block` (fail closed).

mod compile;
mod destructive;
mod duration;
mod empty;
mod error;
pub(crate) use error::toml_key_path;
mod eval;
mod file;
mod impact;
mod matchers;
mod shadow;
mod trash;
mod verdict;
mod window;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use duration::{parse_duration, MAX_TIMEOUT};
pub use empty::EMPTY_CLASSES;
pub use error::PolicyError;
pub use impact::{ImpactLimits, ImpactStep, Judgement, MultiCall, ProbeCall};
pub use trash::{TrashRule, DEFAULT_RETENTION};
pub use verdict::{Action, Confirm, SessionContext, Verdict, DEFAULT_HOLD_TIMEOUT};
pub use window::Window;

use compile::{EnvDefault, Rule};

/// A compiled, validated policy. Immutable; `Send + Sync`.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    defaults: Vec<EnvDefault>,
    fallback: Option<EnvDefault>,
    warnings: Vec<String>,
    sha256: String,
    origin: String,
    /// Some rule has `hours` (see `uses_clock`).
    uses_clock: bool,
}

impl Policy {
    /// Whether any rule depends on the time of day (`hours`): only then can the
    /// same statement in the same session get another verdict a moment later.
    pub fn uses_clock(&self) -> bool {
        self.uses_clock
    }

    /// Parses and validates policy text; `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let compiled = compile::compile(text, origin)?;
        let mut warnings = compiled.warnings;
        warnings.extend(shadow::shadow_warnings(origin, &compiled.rules));
        Ok(Policy {
            uses_clock: compiled.rules.iter().any(|r| r.hours.is_some()),
            rules: compiled.rules,
            defaults: compiled.defaults,
            fallback: compiled.fallback,
            warnings,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            origin: origin.to_string(),
        })
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::new(&origin, None, "(file)", format!("cannot read: {e}")))?;
        Policy::parse(&text, &origin)
    }

    /// Non-fatal findings (`file:line: …`): shadowed rules, keys without effect,
    /// environments without defaults. `pgwarden check` prints them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Hex SHA-256 of the policy text, for the audit log.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Number of `[[rule]]` entries.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The file name given to `parse`/`load`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Rule names in file order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| &*r.name)
    }

    /// The trash settings of the rule named `name`, when its action is `trash`.
    pub fn trash_rule(&self, name: &str) -> Option<TrashRule> {
        self.rules
            .iter()
            .find(|r| &*r.name == name)
            .and_then(|r| r.trash)
    }

    /// The impact limits of the rule named `name` and its action for a statement
    /// over them (for `pgwarden explain` and, once the session probes, for judging a
    /// measurement).
    pub fn impact_limits(&self, name: &str) -> Option<(&ImpactLimits, Action)> {
        self.rules
            .iter()
            .find(|r| &*r.name == name)
            .and_then(|r| r.impact.as_ref())
            .map(|i| (&i.limits, i.over))
    }

    /// Environments with a `[defaults]` entry (without `"*"`).
    pub fn environments(&self) -> impl Iterator<Item = &str> {
        self.defaults.iter().map(|d| d.environment.as_str())
    }

    /// True when `environment` has a `[defaults]` entry or a `"*"` entry exists;
    /// the config loader should reject targets for which this is false (their
    /// statements would all be blocked).
    pub fn has_defaults_for(&self, environment: &str) -> bool {
        self.fallback.is_some() || self.defaults.iter().any(|d| d.environment == environment)
    }
}
