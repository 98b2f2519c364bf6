//! Parsing of human-written durations ("30s", "10m") and sizes ("64MB", "1GiB").

use std::time::Duration;

/// The one duration grammar of proxy.toml and the policy file: one or more
/// `<number><unit>` parts, units `ms`, `s`, `m`, `h`, `d`, added up ("250ms", "30s",
/// "10m", "1h30m", "1d"). A unit is always required. Ranges are the caller's.
pub fn duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {text:?} (use e.g. \"250ms\", \"30s\", \"10m\", \"1h30m\", \"1d\")"
        )
    };
    let mut rest = text.trim();
    let mut ms: u64 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let letters = rest[digits..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .map_or(rest.len(), |k| digits + k);
        let (num, unit) = (&rest[..digits], &rest[digits..letters]);
        if num.is_empty() {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        let per: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("{} (a unit is required after {num})", bad())),
            other => {
                return Err(format!(
                    "unknown duration unit {other:?} in {text:?} (use ms, s, m, h, d)"
                ))
            }
        };
        ms = n
            .checked_mul(per)
            .and_then(|v| ms.checked_add(v))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        rest = &rest[letters..];
    }
    Ok(Duration::from_millis(ms))
}

/// A duration written in that grammar, to the second (`10m`, `1h30m`, `45s`): how
/// hold notices and `pgwarden explain` show a timeout.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// Parses "1048576", "64kB", "64KiB", "256MB", "1GB" (powers of 1024, as PostgreSQL does).
pub fn size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {text:?} (expected e.g. \"64MB\")"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "kib" | "k" => 1 << 10,
        "mb" | "mib" | "m" => 1 << 20,
        "gb" | "gib" | "g" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?} (use B, kB, MB, GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(duration("5").unwrap_err().contains("a unit is required"));
        assert!(duration("ten").is_err());
        assert!(duration("5 weeks").is_err());
        assert!(duration("").is_err());
        assert!(duration("-5s").is_err());
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(duration("1m30s250ms"), Ok(Duration::from_millis(90_250)));
        assert!(duration("1h30").is_err());
        assert!(duration("h").is_err());
        assert!(duration("1 h").is_err());
        assert!(duration("99999999999999999999d").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("64MB"), Ok(64 << 20));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(size("512"), Ok(512));
        assert!(size("99999999999999999999GB").is_err());
        assert!(size("12 parsecs").is_err());
    }
}
