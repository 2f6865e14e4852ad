//! Cron expressions evaluated in an IANA time zone, with DST done right.
//!
//! The original stored `timezone` but computed every run in UTC, and its minute-by-minute
//! scan had no notion of DST. Here each expression is parsed by `croner` and evaluated on
//! wall-clock time in the schedule's zone (`chrono-tz`), so a daily `30 2 * * *` in
//! Europe/Berlin runs once on the spring-forward day (at 03:00, the first valid instant
//! after the gap) and once on the fall-back day (the first 02:30, not both).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

use super::error::SpecError;

/// One or more cron expressions sharing a time zone; the next run is the earliest of them.
#[derive(Debug, Clone)]
pub struct CronSet {
    sources: Vec<String>,
    crons: Vec<Cron>,
    tz: Tz,
}

/// Parses an IANA zone name (`UTC`, `Europe/Berlin`), naming `field` when it is unknown.
pub fn parse_timezone(field: &str, name: &str) -> Result<Tz, SpecError> {
    Tz::from_str(name.trim()).map_err(|_| {
        SpecError::new(
            field,
            format!("unknown time zone {name:?} (expected an IANA name like \"Europe/Berlin\")"),
        )
    })
}

impl CronSet {
    /// Parses every expression (5 fields, or 6 with seconds first; `@daily` style shortcuts)
    /// under `field[i]`, and the zone under `tz_field`.
    pub fn parse(
        field: &str,
        exprs: &[String],
        tz_field: &str,
        timezone: &str,
    ) -> Result<CronSet, SpecError> {
        if exprs.is_empty() {
            return Err(SpecError::new(
                field,
                "periodic schedules need at least one cron expression",
            ));
        }
        let tz = parse_timezone(tz_field, timezone)?;
        let mut crons = Vec::with_capacity(exprs.len());
        for (i, expr) in exprs.iter().enumerate() {
            let path = format!("{field}[{i}]");
            let fields = expr.split_whitespace().count();
            if !expr.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
                return Err(SpecError::new(
                    &path,
                    format!(
                        "cron expression {expr:?} has {fields} fields; expected 5 (minute hour \
                         day month weekday) or 6 (seconds first)"
                    ),
                ));
            }
            let cron = Cron::from_str(expr).map_err(|e| {
                SpecError::new(&path, format!("invalid cron expression {expr:?}: {e}"))
            })?;
            crons.push(cron);
        }
        Ok(CronSet {
            sources: exprs.to_vec(),
            crons,
            tz,
        })
    }

    /// The expressions as written.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The zone name (`Europe/Berlin`).
    pub fn timezone(&self) -> &str {
        self.tz.name()
    }

    /// The first run strictly after `after_ms` (Unix ms, UTC), the earliest over all
    /// expressions; `None` when no expression ever matches again (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let utc = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
        let local = self.tz.from_utc_datetime(&utc.naive_utc());
        self.crons
            .iter()
            .filter_map(|c| c.find_next_occurrence(&local, false).ok())
            .map(|t| t.timestamp_millis())
            .filter(|&t| t > after_ms)
            .min()
    }

    /// The latest run at or before `at_ms`, over all expressions.
    pub fn latest_at_or_before(&self, at_ms: i64) -> Option<i64> {
        let utc = DateTime::<Utc>::from_timestamp_millis(at_ms)?;
        let local = self.tz.from_utc_datetime(&utc.naive_utc());
        self.crons
            .iter()
            .filter_map(|c| c.find_previous_occurrence(&local, true).ok())
            .map(|t| t.timestamp_millis())
            .filter(|&t| t <= at_ms)
            .max()
    }

    /// Up to `n` newest runs in `[from_ms, until_ms]`, oldest first.
    pub fn newest_runs(&self, from_ms: i64, until_ms: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = until_ms;
        while out.len() < n {
            match self.latest_at_or_before(cursor) {
                Some(t) if t >= from_ms => {
                    out.push(t);
                    cursor = t - 1;
                }
                _ => break,
            }
        }
        out.reverse();
        out
    }

    /// Every run in `(after_ms, until_ms]`, oldest first, at most `cap` of them; the bool is
    /// true when more runs lay in the range than were returned.
    pub fn runs_between(&self, after_ms: i64, until_ms: i64, cap: usize) -> (Vec<i64>, bool) {
        let mut out = Vec::new();
        let mut cursor = after_ms;
        while let Some(next) = self.next_after(cursor) {
            if next > until_ms {
                return (out, false);
            }
            if out.len() == cap {
                return (out, true);
            }
            out.push(next);
            cursor = next;
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn set(exprs: &[&str], tz: &str) -> CronSet {
        let exprs: Vec<String> = exprs.iter().map(|s| s.to_string()).collect();
        CronSet::parse("schedule.crons", &exprs, "schedule.timezone", tz).expect("valid cron set")
    }

    /// Unix ms of a wall time in `tz` (the earlier one when it occurs twice).
    fn local_ms(tz: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        let tz = Tz::from_str(tz).expect("zone");
        let naive = NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .expect("date");
        tz.from_local_datetime(&naive)
            .earliest()
            .expect("wall time exists")
            .timestamp_millis()
    }

    fn utc_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        local_ms("UTC", y, mo, d, h, mi)
    }

    /// Runs of a daily 02:30 job from the evening before a transition to the evening after.
    fn daily_0230_runs(tz: &str, y: i32, mo: u32, day: u32) -> Vec<i64> {
        let s = set(&["30 2 * * *"], tz);
        let from = local_ms(tz, y, mo, day - 1, 20, 0);
        let until = local_ms(tz, y, mo, day, 20, 0);
        s.runs_between(from, until, 10).0
    }

    #[test]
    fn the_timezone_is_honoured_not_ignored() {
        let s = set(&["0 2 * * *"], "America/New_York");
        // 2026-01-10 00:00 UTC is 2026-01-09 19:00 EST; the next 02:00 EST is 07:00 UTC.
        assert_eq!(
            s.next_after(utc_ms(2026, 1, 10, 0, 0)),
            Some(utc_ms(2026, 1, 10, 7, 0))
        );
    }

    #[test]
    fn spring_forward_runs_a_missing_wall_time_once_at_the_next_valid_instant() {
        // Clocks jump 02:00 -> 03:00: 2026-03-08 / 2027-03-14 (New York),
        // 2026-03-29 / 2027-03-28 (Berlin).
        for (tz, y, mo, d) in [
            ("America/New_York", 2026, 3, 8),
            ("America/New_York", 2027, 3, 14),
            ("Europe/Berlin", 2026, 3, 29),
            ("Europe/Berlin", 2027, 3, 28),
        ] {
            let runs = daily_0230_runs(tz, y, mo, d);
            assert_eq!(
                runs,
                vec![local_ms(tz, y, mo, d, 3, 0)],
                "{tz} {y}-{mo}-{d}: one run, at 03:00 local"
            );
        }
    }

    #[test]
    fn fall_back_runs_a_repeated_wall_time_once() {
        // Clocks go 03:00 -> 02:00 (Berlin) / 02:00 -> 01:00 (New York, so use 01:30 there).
        for (tz, y, mo, d) in [
            ("Europe/Berlin", 2026, 10, 25),
            ("Europe/Berlin", 2027, 10, 31),
        ] {
            let runs = daily_0230_runs(tz, y, mo, d);
            assert_eq!(
                runs,
                vec![local_ms(tz, y, mo, d, 2, 30)],
                "{tz} {y}-{mo}-{d}"
            );
        }
        for (y, mo, d) in [(2026, 11, 1), (2027, 11, 7)] {
            let tz = "America/New_York";
            let s = set(&["30 1 * * *"], tz);
            // From 20:00 the evening before (day 1 of a month has no `d - 1`).
            let from = local_ms(tz, y, mo, d, 0, 0) - 4 * 3_600_000;
            let runs = s.runs_between(from, local_ms(tz, y, mo, d, 20, 0), 10).0;
            assert_eq!(
                runs,
                vec![local_ms(tz, y, mo, d, 1, 30)],
                "{tz} {y}-{mo}-{d}"
            );
        }
    }

    #[test]
    fn an_hourly_job_across_fall_back_runs_in_both_repeated_hours() {
        // "Every hour at :15" is about elapsed hours: 01:15 EDT and 01:15 EST are both runs.
        let tz = "America/New_York";
        let s = set(&["15 * * * *"], tz);
        let from = local_ms(tz, 2026, 11, 1, 0, 0);
        let runs = s.runs_between(from, from + 4 * 3_600_000, 10).0;
        let gaps: Vec<i64> = runs.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g == 3_600_000), "{runs:?}");
        assert_eq!(runs.len(), 4);
    }

    #[test]
    fn seconds_field_and_several_expressions() {
        let s = set(&["*/20 * * * * *"], "UTC");
        let t = utc_ms(2026, 6, 1, 12, 0);
        assert_eq!(s.next_after(t), Some(t + 20_000));
        assert_eq!(s.next_after(t + 1), Some(t + 20_000));
        let both = set(&["0 9 * * *", "30 8 * * *"], "Europe/Berlin");
        let evening = local_ms("Europe/Berlin", 2026, 6, 1, 20, 0);
        let (runs, more) = both.runs_between(evening, evening + 86_400_000, 5);
        assert!(!more);
        assert_eq!(
            runs,
            vec![
                local_ms("Europe/Berlin", 2026, 6, 2, 8, 30),
                local_ms("Europe/Berlin", 2026, 6, 2, 9, 0)
            ]
        );
    }

    #[test]
    fn newest_runs_walk_back_from_the_end() {
        let s = set(&["0 * * * *"], "UTC");
        let t = utc_ms(2026, 1, 1, 0, 0);
        let end = t + 10 * 3_600_000 + 5;
        assert_eq!(
            s.newest_runs(t, end, 3),
            vec![t + 8 * 3_600_000, t + 9 * 3_600_000, t + 10 * 3_600_000]
        );
        assert_eq!(s.newest_runs(t + 9 * 3_600_000, end, 5).len(), 2);
        assert_eq!(s.latest_at_or_before(t), Some(t));
    }

    #[test]
    fn names_shortcuts_and_last_day_are_understood() {
        // Friday 2026-05-29 is the last weekday of May; 2026-05-31 is the last day.
        let weekdays = set(&["0 9 * * MON-FRI"], "UTC");
        assert_eq!(
            weekdays.next_after(utc_ms(2026, 5, 29, 10, 0)),
            Some(utc_ms(2026, 6, 1, 9, 0)),
            "Friday 10:00 -> Monday 09:00"
        );
        let daily = set(&["@daily"], "Europe/Berlin");
        assert_eq!(
            daily.next_after(utc_ms(2026, 5, 1, 12, 0)),
            Some(local_ms("Europe/Berlin", 2026, 5, 2, 0, 0))
        );
        let last = set(&["0 0 L * *"], "UTC");
        assert_eq!(
            last.next_after(utc_ms(2026, 5, 2, 0, 0)),
            Some(utc_ms(2026, 5, 31, 0, 0))
        );
    }

    #[test]
    fn runs_between_reports_when_it_was_capped() {
        let s = set(&["* * * * *"], "UTC");
        let t = utc_ms(2026, 1, 1, 0, 0);
        let (runs, more) = s.runs_between(t, t + 10 * 60_000, 3);
        assert_eq!(runs, vec![t + 60_000, t + 120_000, t + 180_000]);
        assert!(more);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |exprs: &[&str], tz: &str| {
            let exprs: Vec<String> = exprs.iter().map(|s| s.to_string()).collect();
            CronSet::parse("schedule.cron", &exprs, "schedule.timezone", tz)
                .expect_err("must be refused")
        };
        let e = bad(&["* * * * *", "61 * * * *"], "UTC");
        assert_eq!(e.field, "schedule.cron[1]");
        let e = bad(&["* * * *"], "UTC");
        assert_eq!(e.field, "schedule.cron[0]");
        assert!(e.message.contains("4 fields"), "{}", e.message);
        let e = bad(&["* * * * *"], "Mars/Olympus");
        assert_eq!(e.field, "schedule.timezone");
        let e = bad(&[], "UTC");
        assert_eq!(e.field, "schedule.cron");
    }
}
