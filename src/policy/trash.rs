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
    /// A TRUNCATE is trashed (its rows copied) only while the tables it empties
    /// hold at most this many bytes (`truncate_max_size`); over it, the fallback.
    pub truncate_max_bytes: u64,
}

/// The TRUNCATE size limit when the rule gives no `truncate_max_size`.
pub const DEFAULT_TRUNCATE_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Parses a size: a number and a unit `B`, `kB`, `MB`, `GB` (1024-based, as
/// PostgreSQL's `pg_size_pretty`): `"64MB"`, `"512kB"`. At most 1 TB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("'{text}' is not a size (use e.g. \"64MB\", \"512kB\", \"2GB\")");
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return Err(bad()),
    };
    let v = n.checked_mul(mult).ok_or_else(bad)?;
    if v > 1 << 40 {
        return Err(format!("size '{text}' is over 1TB"));
    }
    Ok(v)
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
    fn sizes() {
        assert_eq!(parse_size("64MB"), Ok(64 << 20));
        assert_eq!(parse_size("512kB"), Ok(512 << 10));
        assert_eq!(parse_size("0B"), Ok(0));
        assert_eq!(parse_size("2 GB"), Ok(2 << 30));
        for t in [
            "",
            "MB",
            "64",
            "64mb",
            "-1MB",
            "2000TB",
            "99999999999999999999B",
        ] {
            assert!(parse_size(t).is_err(), "{t}");
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
                truncate_max_bytes: DEFAULT_TRUNCATE_MAX_BYTES,
            })
        );
        assert!(
            !p.warnings().iter().any(|w| w.contains("trash")),
            "{:?}",
            p.warnings()
        );
        let sized = FILE.replace(
            "classes = [\"drop.table\"]",
            "classes = [\"drop.table\", \"drop.view\", \"truncate\"]\ntruncate_max_size = \"2MB\"",
        );
        let s = super::super::Policy::parse(&sized, "p.toml").expect("parses");
        assert_eq!(
            s.trash_rule("drops-to-trash").map(|t| t.truncate_max_bytes),
            Some(2 << 20)
        );
        assert!(
            !s.warnings().iter().any(|w| w.contains("trash")),
            "{:?}",
            s.warnings()
        );
        let wide = FILE.replace("[\"drop.table\"]", "[\"drop.*\"]");
        let w = super::super::Policy::parse(&wide, "p.toml").expect("parses");
        assert!(
            w.warnings().iter().any(|w| w.starts_with(
                "p.toml:8: rule 'drops-to-trash': action = \"trash\" is carried out for DROP TABLE, DROP VIEW"
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
                fallback: Action::Hold,
                truncate_max_bytes: DEFAULT_TRUNCATE_MAX_BYTES,
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
                "p.toml:9: rule[1].retention: retention, fallback and truncate_max_size belong to action = \"trash\"",
            ),
            (
                "fallback = \"block\"",
                "fallback = \"block\"\ntruncate_max_size = \"64 apples\"",
                "p.toml:11: rule[1].truncate_max_size: '64 apples' is not a size",
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
