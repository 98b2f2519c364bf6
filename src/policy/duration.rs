//! Hold timeouts: the one duration grammar (`config::units::duration`: "30s", "10m",
//! "1h30m", …), between 1 second and 24 hours.

use std::time::Duration;

/// Longest accepted hold timeout: a held statement keeps a client connection open.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Parses a hold timeout: a duration as everywhere else, in range.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = crate::config::units::duration(text).map_err(|e| {
        let unit = if e.contains("a unit is required") {
            " (a unit is required)"
        } else {
            ""
        };
        format!("'{text}' is not a duration{unit} (use e.g. \"30s\", \"10m\", \"1h30m\")")
    })?;
    if d.is_zero() {
        return Err(format!("'{text}' is zero; a hold needs a positive timeout"));
    }
    if d < Duration::from_secs(1) {
        return Err(format!(
            "'{text}' is under a second; a hold needs at least 1s"
        ));
    }
    if d > MAX_TIMEOUT {
        return Err(format!(
            "'{text}' is not a duration a hold accepts: longer than the 24h maximum"
        ));
    }
    Ok(d)
}
