//! Hold timeouts: `"30s"`, `"10m"`, `"1h"`, `"1h30m"`; between 1 second and 24 hours.

use std::time::Duration;

/// Longest accepted hold timeout: a held statement keeps a client connection open.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Parses a duration made of `<number><unit>` parts, units `s`, `m`, `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("'{text}' is not a duration (use e.g. \"30s\", \"10m\", \"1h\", \"1h30m\")");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit: u64 = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        if digits.is_empty() {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(format!("{} (a unit is required)", bad()));
    }
    let d = Duration::from_secs(total);
    if d.is_zero() {
        return Err(format!("'{text}' is zero; a hold needs a positive timeout"));
    }
    if d > MAX_TIMEOUT {
        return Err(format!("'{text}' is longer than the 24h maximum"));
    }
    Ok(d)
}
