//! When apps are backed up and how many backups stay: a policy per app (or the default every
//! app without its own follows), as a cron expression in the owner's time zone and restic's
//! keep rules. The scheduler's loop is the deploy engine's (`deploy/scheduled.rs`); this is
//! the arithmetic it relies on, kept free of I/O so it can be tested on fixed clocks.

use chrono::{DateTime, TimeZone};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

use super::BackupError;

/// Every day at 02:00: the owner sleeps, the apps are quiet.
pub const DAILY: &str = "0 2 * * *";
pub const HOURLY: &str = "0 * * * *";
/// Sundays at 02:00.
pub const WEEKLY: &str = "0 2 * * 0";
/// No scheduled backups (Back up now still works).
pub const OFF: &str = "off";

/// The most any keep rule may ask for: beyond it the owner wants "keep all", which is what a
/// rule of 0 everywhere but one large count gives anyway.
const MAX_KEEP: u32 = 1000;

/// How often an app is backed up, and which of its snapshots stay (restic's `forget` rules;
/// a snapshot stays when any rule keeps it, and the newest always stays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// A five-field cron expression (minute hour day month weekday), or `off`.
    pub schedule: String,
    /// Every backup of the last this many days stays, whatever the rules below say: a
    /// "Back up now" after a mistake never pushes out that morning's good backup.
    pub keep_within_days: u32,
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

impl Default for Policy {
    /// Daily at 02:00; keep all of the last 2 days, then 7 daily, 4 weekly and 6 monthly.
    fn default() -> Self {
        Policy {
            schedule: DAILY.into(),
            keep_within_days: 2,
            keep_hourly: 0,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
        }
    }
}

impl Policy {
    /// The policy a preset button gives: hourly keeps a day of hours on top of the default.
    pub fn preset(name: &str) -> Option<Policy> {
        let base = Policy::default();
        Some(match name {
            "daily" => base,
            "hourly" => Policy {
                schedule: HOURLY.into(),
                keep_hourly: 24,
                ..base
            },
            "weekly" => Policy {
                schedule: WEEKLY.into(),
                keep_daily: 0,
                ..base
            },
            "off" => Policy {
                schedule: OFF.into(),
                ..base
            },
            _ => return None,
        })
    }

    /// Checks a policy as the owner gave it, with the fix in the message.
    pub fn check(&self) -> Result<(), BackupError> {
        parse(&self.schedule)?;
        let keeps = [
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
        ];
        if keeps.iter().any(|k| *k > MAX_KEEP) || self.keep_within_days > MAX_KEEP {
            return Err(BackupError::BadInput(format!(
                "Keep at most {MAX_KEEP} backups per kind."
            )));
        }
        if keeps.iter().all(|k| *k == 0) {
            return Err(BackupError::BadInput(
                "Keep at least one backup: set how many daily, weekly or monthly ones stay.".into(),
            ));
        }
        Ok(())
    }

    /// restic's `forget` arguments for this policy.
    pub fn forget_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.keep_within_days > 0 {
            out.push("--keep-within".to_string());
            out.push(format!("{}d", self.keep_within_days));
        }
        for (flag, n) in [
            ("--keep-hourly", self.keep_hourly),
            ("--keep-daily", self.keep_daily),
            ("--keep-weekly", self.keep_weekly),
            ("--keep-monthly", self.keep_monthly),
        ] {
            if n > 0 {
                out.push(flag.to_string());
                out.push(n.to_string());
            }
        }
        out
    }

    /// In the owner's words: "Every day at 02:00".
    pub fn words(&self) -> String {
        match self.schedule.as_str() {
            OFF => "Off".into(),
            HOURLY => "Every hour".into(),
            DAILY => "Every day at 02:00".into(),
            WEEKLY => "Every Sunday at 02:00".into(),
            other => format!("On a schedule of your own ({other})"),
        }
    }

    /// Which preset this is, if any (the form's choice).
    pub fn preset_name(&self) -> Option<&'static str> {
        ["daily", "hourly", "weekly", "off"]
            .into_iter()
            .find(|n| Policy::preset(n).as_ref() == Some(self))
    }
}

/// Reads a schedule: None for `off`. Five fields only (no seconds, no years), and at most once
/// an hour, so a typo like `* 2 * * *` (every minute from 02:00 to 02:59) is refused rather
/// than filling the destination with sixty backups a night.
pub fn parse(schedule: &str) -> Result<Option<Cron>, BackupError> {
    let schedule = schedule.trim();
    if schedule == OFF {
        return Ok(None);
    }
    let fix = "Write the schedule as five fields: minute hour day month weekday, like 0 2 * * * for every day at 02:00.";
    if schedule.len() > 100 || schedule.split_whitespace().count() != 5 {
        return Err(BackupError::BadInput(fix.into()));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(schedule)
        .map_err(|e| BackupError::BadInput(format!("{fix} ({e})")))?;
    // Two days of its times from a fixed Monday: any two closer than an hour are refused.
    let from = chrono::Utc.with_ymd_and_hms(2027, 1, 4, 0, 0, 0).single();
    let times: Vec<i64> = from
        .map(|f| cron.iter_after(f).take(50).map(|t| t.timestamp()).collect())
        .unwrap_or_default();
    // A date that never comes (31 February) or comes once: refused, never silently idle.
    let two_years = 2 * 366 * 24 * 3600;
    if times.len() < 2 || times[1] - times[0] > two_years {
        return Err(BackupError::BadInput(
            "That schedule never comes round (check the day and month), so no backup would run."
                .into(),
        ));
    }
    if times.windows(2).any(|w| w[1] - w[0] < 3600) {
        return Err(BackupError::BadInput(
            "Back up at most once an hour: give one minute, like 0 or 30.".into(),
        ));
    }
    Ok(Some(cron))
}

/// What the scheduler does for one app at `now`, given the last scheduled time it handled.
#[derive(Debug, PartialEq, Eq)]
pub enum Due<T> {
    /// Nothing yet.
    Wait,
    /// First sight of this app (or of its new policy): remember this time as handled, so the
    /// first backup is the next scheduled one, not one at once.
    Remember(T),
    /// A scheduled time has passed since the last one handled: back up now. When the box was
    /// off through several, they are one run, made soon after it starts.
    Run(T),
}

/// The latest scheduled time at or before `now`, against the one handled last.
pub fn due<Tz: TimeZone>(
    cron: &Cron,
    handled: Option<i64>,
    now: &DateTime<Tz>,
) -> Due<DateTime<Tz>> {
    let Ok(latest) = cron.find_previous_occurrence(now, true) else {
        return Due::Wait;
    };
    match handled {
        None => Due::Remember(latest),
        // Handled "in the future": the clock was wrong then (or is now). Start again from
        // here rather than wait, silently, until the clock catches up.
        Some(h) if h > now.timestamp() + 24 * 3600 => Due::Remember(latest),
        Some(h) if latest.timestamp() > h => Due::Run(latest),
        Some(_) => Due::Wait,
    }
}

/// The next scheduled time after `now` (shown as "Next backup tonight at 02:00").
pub fn next<Tz: TimeZone>(cron: &Cron, now: &DateTime<Tz>) -> Option<DateTime<Tz>> {
    cron.find_next_occurrence(now, false).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Utc};

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_default_is_daily_at_two_in_the_owners_time() {
        let cron = parse(DAILY).unwrap().unwrap();
        // 02:00 in Berlin is 01:00 UTC in winter: the zone of `now` is the one that counts.
        let now = at("2026-12-06T10:00:00+01:00");
        match due(&cron, None, &now) {
            Due::Remember(t) => assert_eq!(t, at("2026-12-06T02:00:00+01:00")),
            other => panic!("{other:?}"),
        }
        let handled = at("2026-12-06T02:00:00+01:00").timestamp();
        assert_eq!(due(&cron, Some(handled), &now), Due::Wait);
        assert_eq!(next(&cron, &now).unwrap(), at("2026-12-07T02:00:00+01:00"));
    }

    #[test]
    fn runs_missed_while_the_box_was_off_are_one_run_soon_after_it_starts() {
        let cron = parse(DAILY).unwrap().unwrap();
        // Last handled three nights ago; the box starts at 09:00.
        let handled = at("2026-12-03T02:00:00+00:00").timestamp();
        let now = at("2026-12-06T09:00:00+00:00");
        assert_eq!(
            due(&cron, Some(handled), &now),
            Due::Run(at("2026-12-06T02:00:00+00:00"))
        );
        // A clock that was a year ahead: start again from now, not in a year.
        let ahead = at("2027-12-06T02:00:00+00:00").timestamp();
        assert_eq!(
            due(&cron, Some(ahead), &now),
            Due::Remember(at("2026-12-06T02:00:00+00:00"))
        );
        // Once handled, nothing more until the next night.
        let handled = at("2026-12-06T02:00:00+00:00").timestamp();
        assert_eq!(due(&cron, Some(handled), &now), Due::Wait);
        assert_eq!(
            due(&cron, Some(handled), &at("2026-12-07T02:00:30+00:00")),
            Due::Run(at("2026-12-07T02:00:00+00:00"))
        );
    }

    #[test]
    fn schedules_are_checked_with_the_fix() {
        for bad in [
            "",
            "0 2 * *",
            "0 0 2 * * *",
            "61 2 * * *",
            "* 2 * * *",
            "*/5 * * * *",
            "0 2 * * * 2027",
            "daily",
            "0 0 31 2 *",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        for good in [DAILY, HOURLY, WEEKLY, "30 3 * * 1-5", "15 */6 * * *", OFF] {
            assert!(parse(good).is_ok(), "{good:?}");
        }
        let zero = Policy {
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            ..Policy::default()
        };
        assert!(zero.check().is_err());
        assert!(
            Policy {
                keep_daily: 5000,
                ..Policy::default()
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn presets_and_restic_rules() {
        let p = Policy::default();
        assert_eq!(
            p.forget_args(),
            [
                "--keep-within",
                "2d",
                "--keep-daily",
                "7",
                "--keep-weekly",
                "4",
                "--keep-monthly",
                "6"
            ]
        );
        assert_eq!(p.preset_name(), Some("daily"));
        let hourly = Policy::preset("hourly").unwrap();
        assert_eq!(hourly.preset_name(), Some("hourly"));
        assert_eq!(hourly.forget_args()[2..4], ["--keep-hourly", "24"]);
        assert_eq!(Policy::preset("off").unwrap().words(), "Off");
        let own = Policy {
            schedule: "30 3 * * 1-5".into(),
            ..p
        };
        assert_eq!(own.preset_name(), None);
        assert!(own.words().contains("30 3 * * 1-5"));
        // A zone that is not UTC: Utc works as well as fixed offsets.
        let cron = parse(HOURLY).unwrap().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 10, 30, 0).unwrap();
        assert_eq!(
            next(&cron, &now).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 6, 11, 0, 0).unwrap()
        );
    }
}
