//! Time windows: `hours = "Tue-Thu 09:00-16:00 Europe/Berlin"`, on the local wall clock.
//!
//! Grammar: `[DAYS] HH:MM-HH:MM ZONE`. DAYS is `Mon`..`Sun` (or full names, any case),
//! ranges (`Mon-Fri`, wrapping `Fri-Mon`), comma lists (`Mon,Wed,Fri-Sat`), or `daily`
//! / `*`; omitted = every day. The end may be `24:00`. A window whose end is earlier
//! than its start crosses midnight and belongs to the day it starts on:
//! `Mon-Fri 22:00-06:00 UTC` covers Saturday 03:00 but not Monday 03:00. Times are
//! compared on the zone's wall clock (jiff, bundled tzdb), so a DST change shifts the
//! window with the local clock; a wall-clock time skipped by a spring-forward change
//! simply never occurs, one repeated in autumn is inside the window both times.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// One compiled window.
#[derive(Debug, Clone)]
pub struct Window {
    text: String,
    /// Bit `n` = weekday with Monday-zero offset `n`.
    days: u8,
    start: u32,
    end: u32,
    tz: TimeZone,
}

const DAY_NAMES: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

impl Window {
    /// Parses one window; the error says what is wrong (no location).
    pub fn parse(text: &str) -> Result<Window, String> {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let (days, range, zone) = match tokens.as_slice() {
            [days, range, zone] => (parse_days(days)?, *range, *zone),
            [range, zone] if range.contains(':') => (0x7f, *range, *zone),
            _ => {
                return Err(format!(
                    "'{text}' is not a time window; expected \"[DAYS] HH:MM-HH:MM ZONE\", \
                     e.g. \"Mon-Fri 09:00-17:00 Europe/Berlin\""
                ))
            }
        };
        let (start, end) = parse_range(range)?;
        let tz = TimeZone::get(zone).map_err(|_| {
            format!("unknown time zone '{zone}' (use an IANA name such as Europe/Berlin or UTC)")
        })?;
        Ok(Window {
            text: tokens.join(" "),
            days,
            start,
            end,
            tz,
        })
    }

    /// The normalised text (single spaces), used to compare windows.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when `now` falls inside the window on the zone's wall clock.
    pub fn contains(&self, now: Timestamp) -> bool {
        let dt = self.tz.to_datetime(now);
        let t = secs_of_day(dt.hour(), dt.minute(), dt.second());
        let wd = dt.weekday();
        if self.start < self.end {
            self.has(wd) && self.start <= t && t < self.end
        } else {
            (self.has(wd) && t >= self.start) || (self.has(wd.previous()) && t < self.end)
        }
    }

    fn has(&self, wd: Weekday) -> bool {
        let bit = wd.to_monday_zero_offset();
        (0..7).contains(&bit) && self.days & (1u8 << bit) != 0
    }
}

fn secs_of_day(h: i8, m: i8, s: i8) -> u32 {
    (h.max(0) as u32) * 3600 + (m.max(0) as u32) * 60 + s.max(0) as u32
}

fn day_index(name: &str) -> Result<u8, String> {
    let lower = name.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .map(|i| i as u8)
        .ok_or_else(|| format!("unknown day '{name}' (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn parse_days(spec: &str) -> Result<u8, String> {
    if spec == "*" || spec.eq_ignore_ascii_case("daily") {
        return Ok(0x7f);
    }
    let mut mask = 0u8;
    for item in spec.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day_index(a)?, day_index(b)?);
                let mut d = a;
                loop {
                    mask |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << day_index(item)?,
        }
    }
    Ok(mask)
}

fn parse_time(s: &str, allow_24: bool) -> Result<u32, String> {
    let bad = || format!("'{s}' is not a time of day (HH:MM, 00:00 to 23:59; 24:00 as an end)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if allow_24 && h == 24 && m == 0 {
        return Ok(86_400);
    }
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

fn parse_range(range: &str) -> Result<(u32, u32), String> {
    let (a, b) = range
        .split_once('-')
        .ok_or_else(|| format!("'{range}' is not a time range (HH:MM-HH:MM)"))?;
    let start = parse_time(a, false)?;
    let end = parse_time(b, true)?;
    if start == end {
        return Err(format!(
            "time range '{range}' is empty (for a whole day write 00:00-24:00)"
        ));
    }
    Ok((start, end))
}
