//! Raw serde structs mirroring the policy file; validation happens in `compile`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    /// Per environment (`"*"` = any environment not listed).
    #[serde(default)]
    pub defaults: BTreeMap<Spanned<String>, Spanned<RawDefault>>,
    /// Ordered rules, `[[rule]]`.
    #[serde(default)]
    pub rule: Vec<Spanned<RawRule>>,
}

/// `[defaults] production = { action = "allow", on_unparsed = "hold" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefault {
    pub action: Spanned<String>,
    pub on_unparsed: Option<Spanned<String>>,
    pub confirm: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub message: Option<Spanned<String>>,
}

/// One `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Spanned<String>,
    /// Free text for readers of the file; not used by pgwarden.
    #[allow(dead_code)]
    pub description: Option<String>,
    pub environment: Option<Spanned<StringList>>,
    pub environments: Option<Spanned<StringList>>,
    pub targets: Option<Spanned<StringList>>,
    pub databases: Option<Spanned<StringList>>,
    pub users: Option<Spanned<StringList>>,
    pub applications: Option<Spanned<StringList>>,
    pub clients: Option<Spanned<StringList>>,
    pub classes: Option<Spanned<StringList>>,
    pub objects: Option<Spanned<StringList>>,
    pub hours: Option<Spanned<StringList>>,
    pub action: Spanned<String>,
    pub confirm: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub message: Option<Spanned<String>>,
    /// Conditions on the measured impact (`impact = { rows = 1000, … }`).
    pub impact: Option<Spanned<super::impact::RawImpact>>,
    /// `empty = true`: only when the statement destroys no rows (see `empty.rs`).
    pub empty: Option<Spanned<bool>>,
    /// With `action = "trash"`: how long trashed items are kept.
    pub retention: Option<Spanned<String>>,
    /// With `action = "trash"`: what applies when the trash cannot keep the data.
    pub fallback: Option<Spanned<String>>,
    /// With `action = "trash"`: the most a TRUNCATE's tables may hold to be copied.
    pub truncate_max_size: Option<Spanned<String>>,
}

/// A string or a list of strings (`users = "deploy"` or `users = ["a", "b"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StringList(out))
            }
        }
        d.deserialize_any(V)
    }
}
