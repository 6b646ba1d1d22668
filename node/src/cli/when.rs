//! Times as people read them, in the local time zone: the CLI's human
//! output never prints Unix milliseconds (`--json` keeps them).

use chrono::{DateTime, Local, TimeZone};

/// A Unix-ms time in the local zone, if it is one.
pub fn local(ms: u64) -> Option<DateTime<Local>> {
    Local.timestamp_millis_opt(i64::try_from(ms).ok()?).single()
}

/// `14:05`.
pub fn clock(t: DateTime<Local>) -> String {
    t.format("%H:%M").to_string()
}

/// `Monday 7 December 2026`.
pub fn day(t: DateTime<Local>) -> String {
    t.format("%A %-d %B %Y").to_string()
}

/// `2026-12-07 14:05`, or the raw number when it is no time.
pub fn date_time(ms: u64) -> String {
    local(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| format!("unix ms {ms}"))
}

/// `2026-12-07 14:05` of a Unix time in seconds.
pub fn date_time_secs(secs: u64) -> String {
    date_time(secs.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates_not_numbers() {
        let shown = date_time(1_828_122_487_000);
        assert!(shown.starts_with("2027-"), "{shown}");
        assert!(!shown.contains("1828122487"));
        assert_eq!(date_time(u64::MAX), format!("unix ms {}", u64::MAX));
    }
}
