//! Times as people read them: `14:05` on a bubble, `Today` / `Yesterday` /
//! `Monday 2 March 2026` on a day separator, in the local time zone.

use chrono::{DateTime, Local, NaiveDate, TimeZone};

fn local(ms: u64) -> Option<DateTime<Local>> {
    let ms = i64::try_from(ms).ok()?;
    Local.timestamp_millis_opt(ms).single()
}

/// The local calendar day of a Unix-ms time.
pub fn day(ms: u64) -> Option<NaiveDate> {
    local(ms).map(|t| t.date_naive())
}

/// Today, locally.
pub fn today() -> NaiveDate {
    Local::now().date_naive()
}

/// `14:05`.
pub fn clock(ms: u64) -> String {
    local(ms)
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_default()
}

/// `Today`, `Yesterday`, or the full date.
pub fn day_label(date: NaiveDate, today: NaiveDate) -> String {
    if date == today {
        "Today".into()
    } else if today.pred_opt() == Some(date) {
        "Yesterday".into()
    } else {
        date.format("%A %-d %B %Y").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 4).expect("date");
        assert_eq!(day_label(today, today), "Today");
        assert_eq!(
            day_label(today.pred_opt().expect("pred"), today),
            "Yesterday"
        );
        assert_eq!(
            day_label(NaiveDate::from_ymd_opt(2026, 3, 2).expect("date"), today),
            "Monday 2 March 2026"
        );
        assert_eq!(clock(u64::MAX), "");
    }
}
