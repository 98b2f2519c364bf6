//! The `trash` action of a rule: `action = "trash"`, `retention = "7d"`,
//! `fallback = "hold"`. A statement the trash covers is carried out so that its data
//! is kept (`crate::trash`); every other statement the rule matches, and every case
//! the trash cannot keep faithfully, gets the fallback.

use std::time::Duration;

use super::verdict::Action;

/// How long a trashed item is kept when the rule gives no `retention`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Longest accepted retention.
pub const MAX_RETENTION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A rule's trash settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrashRule {
    /// How long an item is kept before a purge may remove it.
    pub retention: Duration,
    /// What applies when the trash cannot stand in for the statement.
    pub fallback: Action,
}

/// Parses a retention: `<number><unit>` parts, units `d`, `h`, `m`, `s`
/// (`"7d"`, `"36h"`, `"1d12h"`), at least a minute, at most 366 days.
pub fn parse_retention(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a retention (use e.g. \"7d\", \"36h\", \"1d12h\")");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for ch in text.trim().chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit: u64 = match ch {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    let d = Duration::from_secs(total);
    if d < Duration::from_secs(60) || d > MAX_RETENTION {
        return Err(format!(
            "retention '{text}' is out of range (1 minute to 366 days)"
        ));
    }
    Ok(d)
}

/// Parses a fallback: `hold` or `block` (a fallback that forwards would destroy
/// the data the rule means to keep).
pub fn parse_fallback(text: &str) -> Result<Action, String> {
    match Action::from_name(text) {
        Some(a @ (Action::Hold | Action::Block)) => Ok(a),
        _ => Err(format!(
            "fallback '{text}' must be hold or block (what applies when the trash cannot keep the data)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions() {
        let day = 86_400;
        for (text, secs) in [
            ("7d", 7 * day),
            ("36h", 36 * 3600),
            ("1d12h", day + 12 * 3600),
            ("90m", 5400),
        ] {
            assert_eq!(
                parse_retention(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for text in [
            "",
            "7",
            "d",
            "7w",
            "30s",
            "400d",
            "-1d",
            "99999999999999999999d",
        ] {
            assert!(parse_retention(text).is_err(), "{text}");
        }
    }

    #[test]
    fn fallbacks() {
        assert_eq!(parse_fallback("hold"), Ok(Action::Hold));
        assert_eq!(parse_fallback("block"), Ok(Action::Block));
        assert!(parse_fallback("allow").is_err());
        assert!(parse_fallback("audit").is_err());
        assert!(parse_fallback("trash").is_err());
    }

    const FILE: &str = r#"[defaults]
production = { action = "allow" }

[[rule]]
name = "drops-to-trash"
environment = "production"
classes = ["drop.table"]
action = "trash"
retention = "3d"
fallback = "block"
"#;

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
        assert_eq!(
            p.trash_rule("drops-to-trash"),
            Some(TrashRule {
                retention: Duration::from_secs(3 * 86_400),
                fallback: Action::Block,
            })
        );
        assert!(
            !p.warnings().iter().any(|w| w.contains("trash")),
            "{:?}",
            p.warnings()
        );
        let wide = FILE.replace("[\"drop.table\"]", "[\"drop.*\"]");
        let w = super::super::Policy::parse(&wide, "p.toml").expect("parses");
        assert!(
            w.warnings().iter().any(|w| w.starts_with(
                "p.toml:8: rule 'drops-to-trash': action = \"trash\" is carried out for DROP TABLE only"
            )),
            "{:?}",
            w.warnings()
        );
        let stmt =
            crate::classify::classify("DROP TABLE t", &crate::classify::SessionFacts::default())
                .remove(0);
        let v = p.evaluate(&stmt, &prod());
        assert_eq!(
            (v.action, v.rule.as_deref()),
            (Action::Block, Some("drops-to-trash"))
        );
        let defaults = FILE.replace("retention = \"3d\"\nfallback = \"block\"\n", "");
        let p = super::super::Policy::parse(&defaults, "p.toml").expect("parses");
        assert_eq!(
            p.trash_rule("drops-to-trash"),
            Some(TrashRule {
                retention: DEFAULT_RETENTION,
                fallback: Action::Hold
            })
        );
    }

    #[test]
    fn bad_trash_keys_are_located() {
        let cases = [
            (
                "retention = \"3d\"",
                "retention = \"3x\"",
                "p.toml:9: rule[1].retention: '3x' is not a retention",
            ),
            (
                "fallback = \"block\"",
                "fallback = \"allow\"",
                "p.toml:10: rule[1].fallback: fallback 'allow' must be hold or block",
            ),
            (
                "action = \"trash\"",
                "action = \"hold\"",
                "p.toml:9: rule[1].retention: retention and fallback belong to action = \"trash\"",
            ),
            (
                "fallback = \"block\"",
                "fallback = \"block\"\nimpact = { rows = 1 }",
                "p.toml:8: rule[1].impact: impact limits cannot be combined",
            ),
        ];
        for (from, to, want) in cases {
            let text = FILE.replace(from, to);
            let e = super::super::Policy::parse(&text, "p.toml").expect_err(to);
            assert!(e.to_string().starts_with(want), "{to}: {e}");
        }
    }
}
