//! Backups as the owner sees them: the Backups page (where backups go, each with its last
//! check, the box's last check of the stored data and any damage it found, "Test connection",
//! "Check all backup data" and "Remove"; the form that adds one; the schedule and keep rules
//! for all apps; every installed app with its last backup and "Back up now"), an app's Backups
//! card (its schedule, its recent runs, its snapshots read from its device after the page has
//! loaded, "Restore") and the dashboard's Backups card (store reads only). Backing up and
//! restoring are deploy-engine jobs: starting one goes to its progress page. Secrets go in
//! through the form and never come back out: a refused form is filled again without its
//! password and keys.
//!
//! Times are shown in the box's time zone (the one the scheduler uses, `chrono::Local`), and
//! each page that shows a clock time names the zone once.

use std::collections::HashMap;
use std::fmt::Display;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Local, TimeZone, Timelike};
use serde::Deserialize;

use super::{Section, format_iso, go_to, page};
use crate::backup::Target;
use crate::backup::schedule::Policy;
use crate::events::Level;
use crate::secrets::Secret;
use crate::store::{AppRow, BackupRunRow, DestinationRow, UiMode, now_unix};
use crate::units::human_bytes;
use crate::web::AppState;
use crate::web::actions::backups::{self as act, NewDestination, PolicyChoice};
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Runs an app's card lists (the API has them all).
const RUNS_SHOWN: i64 = 10;
/// Runs read per app to find its last good backup behind failed ones (store reads only).
const RUNS_READ: i64 = 50;
/// Runs read per app to say what each of its snapshots holds (a year of daily backups and
/// their failures; older snapshots show no figures).
const RUNS_FOR_SNAPSHOTS: i64 = 500;
/// A refused form's fields are filled in again up to this length (one line each).
const REFILL_MAX: usize = 2048;

pub(super) fn advanced(ctx: &Ctx) -> Result<bool, WebError> {
    Ok(ctx.user()?.ui_mode == UiMode::Advanced)
}

/// How long ago, in words: "just now", "5 min ago", "2 h ago", "yesterday", "3 days ago",
/// then the date (in the box's time zone).
pub fn ago(then: i64, now: i64) -> String {
    ago_in(then, now, &Local)
}

fn ago_in<Tz: TimeZone>(then: i64, now: i64, tz: &Tz) -> String
where
    Tz::Offset: Display,
{
    let secs = (now - then).max(0);
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        86_400..172_800 => "yesterday".into(),
        172_800..604_800 => format!("{} days ago", secs / 86_400),
        _ => match in_zone(then, tz) {
            Some(t) => format!("on {}", t.format("%Y-%m-%d")),
            None => "on an unknown date".into(),
        },
    }
}

/// A Unix time in a time zone.
fn in_zone<Tz: TimeZone>(unix: i64, tz: &Tz) -> Option<DateTime<Tz>> {
    DateTime::from_timestamp(unix, 0).map(|t| t.with_timezone(tz))
}

/// A Unix time as a clock in the box's zone: "2026-01-14 22:04" (the zone is said once on
/// the page).
pub(super) fn clock(unix: i64) -> String {
    in_zone(unix, &Local)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The box's time zone as the owner reads it: "Europe/Berlin", or "UTC".
pub fn zone_name() -> String {
    let zone = crate::deploy::render::time_zone();
    match zone.strip_prefix("Etc/").unwrap_or(&zone) {
        "UTC" | "UCT" | "Universal" | "Zulu" | "GMT" => "UTC".into(),
        _ => zone.clone(),
    }
}

/// When a coming time is, as people say it: "today at 14:00", "tonight at 02:00" (the small
/// hours after this evening), "tomorrow at 09:00", "on Sunday at 02:00", then the date.
fn next_words<Tz: TimeZone>(next: &DateTime<Tz>, now: &DateTime<Tz>) -> String
where
    Tz::Offset: Display,
{
    let at = next.format("%H:%M");
    let (day, today) = (next.date_naive(), now.date_naive());
    // Before 06:00 is the night that ends that morning.
    let night = next.hour() < 6;
    let days = (day - today).num_days();
    match days {
        0 if night && now.hour() < 6 => format!("tonight at {at}"),
        0 => format!("today at {at}"),
        1 if night && now.hour() >= 6 => format!("tonight at {at}"),
        1 => format!("tomorrow at {at}"),
        2..7 => format!("on {} at {at}", next.format("%A")),
        _ if next.format("%Y").to_string() == now.format("%Y").to_string() => {
            format!("on {} at {at}", next.format("%-d %B"))
        }
        _ => format!("on {} at {at}", next.format("%-d %B %Y")),
    }
}

/// A snapshot's time (RFC 3339, as restic recorded it: `2026-01-14T22:04:05.123+01:00`) in
/// the owner's words, in the box's time zone: "14 January 2026 at 22:04"; and its Unix time.
/// Anything else is shown as it came.
pub(super) fn snapshot_time(rfc3339: &str) -> (String, Option<i64>) {
    snapshot_time_in(rfc3339, &Local)
}

fn snapshot_time_in<Tz: TimeZone>(rfc3339: &str, tz: &Tz) -> (String, Option<i64>)
where
    Tz::Offset: Display,
{
    let at = parse_rfc3339(rfc3339).map(|t| t.unix_timestamp());
    match at.and_then(|at| in_zone(at, tz)) {
        Some(t) => (t.format("%-d %B %Y at %H:%M").to_string(), at),
        None => (rfc3339.to_string(), None),
    }
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into UTC (seconds; the fraction is
/// dropped).
pub(super) fn parse_rfc3339(s: &str) -> Option<time::OffsetDateTime> {
    let num = |from: usize, len: usize| -> Option<i32> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let at = |i: usize, c: u8| s.as_bytes().get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && (at(10, b'T') || at(10, b't') || at(10, b' ')))
        || !(at(13, b':') && at(16, b':'))
    {
        return None;
    }
    let date = time::Date::from_calendar_date(
        num(0, 4)?,
        time::Month::try_from(u8::try_from(num(5, 2)?).ok()?).ok()?,
        u8::try_from(num(8, 2)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(num(11, 2)?).ok()?,
        u8::try_from(num(14, 2)?).ok()?,
        u8::try_from(num(17, 2)?).ok()?,
    )
    .ok()?;
    let mut rest = s.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        rest = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => time::UtcOffset::UTC,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let (h, m) = (
                ((h1 - b'0') * 10 + (h2 - b'0')) as i8,
                ((m1 - b'0') * 10 + (m2 - b'0')) as i8,
            );
            let k = if *sign == b'-' { -1 } else { 1 };
            time::UtcOffset::from_hms(k * h, k * m, 0).ok()?
        }
        _ => return None,
    };
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_offset(offset)
            .to_offset(time::UtcOffset::UTC),
    )
}

// ---- destinations ----

/// A destination's last check, as its row shows it (also the answer to "Test connection").
pub struct StatusView {
    pub id: i64,
    /// untested | ok | failed
    pub state: &'static str,
    /// The check's words (failed: why, with the fix).
    pub message: String,
    /// "2 min ago" (empty when never checked).
    pub checked: String,
    pub checked_iso: String,
    /// What the box's own check of the stored backups found wrong, with the fix ("" if sound).
    pub damage: String,
    /// When the box last checked the stored backups (weekly, or "Check all backup data"):
    /// "3 days ago"; empty when never.
    pub maintained: String,
    pub maintained_iso: String,
    /// "Holds 14 GB of backups in 1.2 GB (91 % saved …)" once measured, else "".
    pub holds: String,
    /// "… is filling up: 93 % used …" with the fix, else "".
    pub filling: String,
}

impl StatusView {
    fn of(d: &DestinationRow, now: i64) -> StatusView {
        StatusView {
            id: d.id,
            state: match (d.checked_at, d.check_ok) {
                (0, _) => "untested",
                (_, true) => "ok",
                (_, false) => "failed",
            },
            message: d.check_message.clone(),
            checked: if d.checked_at > 0 {
                ago(d.checked_at, now)
            } else {
                String::new()
            },
            checked_iso: format_iso(d.checked_at),
            damage: d.damage.clone(),
            maintained: if d.maintained_at > 0 {
                ago(d.maintained_at, now)
            } else {
                String::new()
            },
            maintained_iso: format_iso(d.maintained_at),
            holds: crate::deploy::holds(&d.space).unwrap_or_default(),
            filling: crate::deploy::filling_up(&d.name, &d.space).unwrap_or_default(),
        }
    }
}

pub struct DestinationView {
    pub id: i64,
    pub name: String,
    /// Where it is, in words.
    pub words: String,
    /// Advanced: the repository address restic opens, the server's key (SSH servers), and its
    /// port when it is not the usual one.
    pub repository: String,
    pub fingerprint: String,
    pub port: Option<u16>,
    /// A REST server: restic's address with the login's place marked (restic 0.14 takes
    /// the login only there), else "".
    pub rest_address: String,
    /// A REST server that only lets backups be added: the box removes nothing there.
    pub append_only: bool,
    /// A REST server's pinned certificate, by its SHA-256 fingerprint ("" when none).
    pub certificate: String,
    pub status: StatusView,
}

impl DestinationView {
    fn of(d: &DestinationRow, now: i64) -> DestinationView {
        let target: Option<Target> = serde_json::from_str(&d.target).ok();
        DestinationView {
            id: d.id,
            name: d.name.clone(),
            words: target
                .as_ref()
                .map(Target::words)
                .unwrap_or_else(|| "an unreadable place".into()),
            repository: target.as_ref().map(Target::repository).unwrap_or_default(),
            fingerprint: crate::ssh::keys::parse_public(&d.host_key)
                .map(|k| crate::ssh::keys::fingerprint(&k))
                .unwrap_or_default(),
            port: match target {
                Some(Target::Sftp { port, .. }) if port != 22 => Some(port),
                _ => None,
            },
            rest_address: match &target {
                Some(Target::Rest { url, .. }) => {
                    crate::backup::rest_repository(url, "LOGIN", "PASSWORD")
                }
                _ => String::new(),
            },
            // A disk on the box: devices only add there (the box serves it so).
            append_only: target.as_ref().is_some_and(Target::append_only),
            certificate: match &target {
                Some(Target::Rest { certificate, .. }) => {
                    crate::backup::rest::fingerprint(certificate).unwrap_or_default()
                }
                _ => String::new(),
            },
            status: StatusView::of(d, now),
        }
    }
}

#[derive(Template)]
#[template(path = "partials/backup_status.html")]
struct StatusPart<'a> {
    s: &'a StatusView,
}

/// What the add form shows: the kind chosen, what was typed (never a password or key), and
/// why it was refused.
pub struct FormView {
    /// sftp | s3 | rest
    pub kind: String,
    pub name: String,
    pub host: String,
    pub port: String,
    pub user: String,
    pub path: String,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    /// A REST server: its address, login name, "only lets backups be added" and certificate
    /// (PEM or fingerprint, as typed).
    pub url: String,
    pub rest_user: String,
    pub append_only: bool,
    pub certificate: String,
    pub error: Option<String>,
    /// The same place fields on "Restore from a backup" (hints about reading, not setting up).
    pub restoring: bool,
    /// A disk on the box: the one chosen (where it is mounted) and, in Advanced mode, a
    /// folder given instead; the disks plugged in (filled when the form is shown).
    pub disk: String,
    pub disk_folder: String,
    pub disks: Vec<DiskChoice>,
}

/// A disk plugged into the box, as the form offers it.
pub struct DiskChoice {
    pub mount: String,
    pub words: String,
    pub free: String,
}

impl FormView {
    /// The form with the disks plugged into the box now.
    pub async fn with_disks(mut self, state: &AppState) -> FormView {
        self.disks = state
            .deployer
            .box_disks()
            .await
            .into_iter()
            .map(|d| DiskChoice {
                mount: d.mount.to_string_lossy().to_string(),
                words: d.words(),
                free: crate::units::human_bytes(d.free),
            })
            .collect();
        self
    }
}

impl Default for FormView {
    fn default() -> FormView {
        FormView {
            kind: "sftp".into(),
            name: String::new(),
            host: String::new(),
            port: "22".into(),
            user: String::new(),
            path: String::new(),
            endpoint: String::new(),
            bucket: String::new(),
            prefix: String::new(),
            url: String::new(),
            rest_user: String::new(),
            append_only: false,
            certificate: String::new(),
            error: None,
            restoring: false,
            disk: String::new(),
            disk_folder: String::new(),
            disks: Vec::new(),
        }
    }
}

/// The add form as sent. Both kinds' fields come (the other kind's are hidden, not removed).
#[derive(Deserialize)]
pub struct DestinationForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    secret: String,
    /// A REST server's fields (their own names: the SSH server's login fields are in the
    /// same form).
    #[serde(default)]
    url: String,
    #[serde(default)]
    rest_user: String,
    #[serde(default)]
    rest_password: String,
    /// The checkbox: present ("on") when ticked.
    #[serde(default)]
    append_only: Option<String>,
    #[serde(default)]
    certificate: String,
    /// A disk on the box: where the chosen one is mounted, or (Advanced) a folder.
    #[serde(default)]
    disk: String,
    #[serde(default)]
    disk_folder: String,
}

impl DestinationForm {
    /// The typed fields to fill in again after a refusal: bounded, on one line, and without
    /// the password, the key id and the secret.
    pub(super) fn refill(&self) -> FormView {
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_control())
                .take(REFILL_MAX)
                .collect()
        };
        FormView {
            kind: match self.kind.as_str() {
                "s3" => "s3",
                "rest" => "rest",
                "disk" => "disk",
                _ => "sftp",
            }
            .into(),
            name: clean(&self.name),
            host: clean(&self.host),
            port: clean(&self.port),
            user: clean(&self.user),
            path: clean(&self.path),
            endpoint: clean(&self.endpoint),
            bucket: clean(&self.bucket),
            prefix: clean(&self.prefix),
            url: clean(&self.url),
            rest_user: clean(&self.rest_user),
            append_only: self.append_only.is_some(),
            // PEM has lines; it is not a secret.
            certificate: self
                .certificate
                .chars()
                .filter(|c| *c == '\n' || !c.is_control())
                .take(REFILL_MAX * 8)
                .collect(),
            error: None,
            restoring: false,
            disk: clean(&self.disk),
            disk_folder: clean(&self.disk_folder),
            disks: Vec::new(),
        }
    }

    /// What the action takes (the checks of each field are the action's, with their fixes).
    pub(super) fn into_new(self) -> Result<(String, NewDestination), WebError> {
        let new = match self.kind.as_str() {
            "sftp" => {
                let port = match self.port.trim() {
                    "" => 22,
                    p => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        WebError::bad_request(
                            "The SSH port is a number from 1 to 65535 (usually 22).",
                        )
                    })?,
                };
                NewDestination::Sftp {
                    target: Target::Sftp {
                        host: self.host.trim().to_string(),
                        port,
                        user: self.user.trim().to_string(),
                        path: self.path.trim().to_string(),
                    },
                    password: Secret::from_string(self.password),
                }
            }
            "s3" => NewDestination::S3 {
                target: Target::S3 {
                    endpoint: self.endpoint.trim().to_string(),
                    bucket: self.bucket.trim().to_string(),
                    prefix: self.prefix.trim().trim_matches('/').to_string(),
                },
                key_id: Secret::from_string(self.key_id.trim().to_string()),
                secret: Secret::from_string(self.secret.trim().to_string()),
            },
            "rest" => NewDestination::Rest {
                target: Target::Rest {
                    url: crate::backup::rest_url(&self.url),
                    append_only: self.append_only.is_some(),
                    certificate: self.certificate.trim().to_string(),
                },
                user: Secret::from_string(self.rest_user.trim().to_string()),
                password: Secret::from_string(self.rest_password),
            },
            "disk" => {
                let folder = match self.disk_folder.trim() {
                    "" => self.disk.trim(),
                    f => f,
                };
                if folder.is_empty() {
                    return Err(WebError::bad_request(
                        "Plug a USB disk into the box and choose it.",
                    ));
                }
                NewDestination::Disk {
                    folder: folder.to_string(),
                }
            }
            _ => {
                return Err(WebError::bad_request(
                    "Choose where the backups go: a NAS or another computer, S3-compatible storage, a backup server or a USB disk on this box.",
                ));
            }
        };
        Ok((self.name.trim().to_string(), new))
    }
}

// ---- apps ----

/// Where an app's backups stand, from its runs (newest first).
pub struct Summary {
    /// never | running | done | failed: the newest backup's outcome (every destination's).
    pub state: &'static str,
    /// The newest failure's words, with the fix.
    pub failure: String,
    /// When the last good backup ended ("2 h ago"; empty: none yet), and its size.
    pub last: String,
    pub last_iso: String,
    pub last_at: Option<i64>,
    pub size: String,
    /// The job of a backup under way (for "See progress").
    pub job: i64,
}

impl Summary {
    pub fn of(runs: &[BackupRunRow], now: i64) -> Summary {
        // One backup job makes one run per destination: its outcome is all of theirs.
        let newest_job = runs.first().map(|r| r.deployment_id);
        let newest: Vec<&BackupRunRow> = runs
            .iter()
            .filter(|r| Some(r.deployment_id) == newest_job)
            .collect();
        let failed = newest.iter().find(|r| r.state == "failed");
        let state = if newest.is_empty() {
            "never"
        } else if newest.iter().any(|r| r.state == "running") {
            "running"
        } else if failed.is_some() {
            "failed"
        } else {
            "done"
        };
        let good = runs.iter().find(|r| r.state == "done");
        let good_at = good.map(|r| r.finished_at.unwrap_or(r.started_at));
        Summary {
            state,
            failure: failed.map(|r| r.message.clone()).unwrap_or_default(),
            last: good_at.map(|at| ago(at, now)).unwrap_or_default(),
            last_iso: good_at.map(format_iso).unwrap_or_default(),
            last_at: good_at,
            size: good
                .map(|r| human_bytes(r.bytes.max(0) as u64))
                .unwrap_or_default(),
            job: newest_job.unwrap_or(0),
        }
    }
}

pub struct AppView {
    pub slug: String,
    pub name: String,
    pub device: String,
    pub s: Summary,
    /// Its own schedule in words (empty: it follows the one for all apps).
    pub schedule: String,
}

#[derive(Template)]
#[template(path = "partials/backup_apps.html")]
struct AppsPart {
    apps: Vec<AppView>,
    /// A destination exists: backups can be made.
    ready: bool,
}

async fn app_views(
    state: &AppState,
    apps: &[AppRow],
    advanced: bool,
) -> Result<Vec<AppView>, WebError> {
    let now = now_unix();
    let policies = state.store.backup_policies().await?;
    let devices: HashMap<i64, String> = state
        .store
        .devices()
        .await?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    let mut out = Vec::with_capacity(apps.len());
    for a in apps {
        let runs = state.store.backup_runs(a.slug.clone(), RUNS_READ).await?;
        out.push(AppView {
            slug: a.slug.clone(),
            name: app_name(state, &a.slug, &a.name),
            device: devices.get(&a.device_id).cloned().unwrap_or_default(),
            s: Summary::of(&runs, now),
            schedule: match crate::deploy::policy_for(&policies, &a.slug) {
                (p, true) => schedule_words(&p, advanced),
                (_, false) => String::new(),
            },
        });
    }
    Ok(out)
}

/// The catalog's name for an app (the stored one if the recipe is gone).
pub(super) fn app_name(state: &AppState, slug: &str, stored: &str) -> String {
    state
        .catalog
        .recipes
        .get(slug)
        .map(|r| r.manifest.name.clone())
        .unwrap_or_else(|| stored.to_string())
}

async fn apps_html(state: &AppState, ready: bool, advanced: bool) -> Result<String, WebError> {
    let apps = state.store.apps().await?;
    Ok(AppsPart {
        apps: app_views(state, &apps, advanced).await?,
        ready,
    }
    .render()?)
}

// ---- schedules ----

/// The presets, in the order the forms offer them.
const PRESETS: [&str; 4] = ["daily", "hourly", "weekly", "off"];

/// A policy as `actions::backups::policy` answers it.
#[derive(Deserialize)]
struct PolicyAnswer {
    schedule: String,
    keep_within_days: u32,
    keep_hourly: u32,
    keep_daily: u32,
    keep_weekly: u32,
    keep_monthly: u32,
    preset: Option<String>,
    own: bool,
    /// Unix time of the next scheduled backup (none when off).
    next_at: Option<i64>,
}

impl PolicyAnswer {
    fn policy(&self) -> Policy {
        Policy {
            schedule: self.schedule.clone(),
            keep_within_days: self.keep_within_days,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
        }
    }
}

/// A policy's schedule in words. Basic mode never shows a cron expression: an own schedule
/// is "On a schedule of your own" there.
fn schedule_words(p: &Policy, advanced: bool) -> String {
    let preset_schedule = PRESETS
        .iter()
        .filter_map(|n| Policy::preset(n))
        .any(|preset| preset.schedule == p.schedule.trim());
    if preset_schedule || advanced {
        p.words()
    } else {
        "On a schedule of your own".into()
    }
}

/// Which backups stay, in words: "Keeps every backup of the last 2 days, then one a day for
/// 7 days, one a week for 4 weeks and one a month for 6 months."
fn keep_words(p: &Policy) -> String {
    let n = |count: u32, one: &str, many: &str| {
        if count == 1 {
            format!("1 {one}")
        } else {
            format!("{count} {many}")
        }
    };
    let mut rules = Vec::new();
    for (count, what, one, many) in [
        (p.keep_hourly, "one an hour", "hour", "hours"),
        (p.keep_daily, "one a day", "day", "days"),
        (p.keep_weekly, "one a week", "week", "weeks"),
        (p.keep_monthly, "one a month", "month", "months"),
    ] {
        if count > 0 {
            rules.push(format!("{what} for {}", n(count, one, many)));
        }
    }
    let rules = match rules.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    };
    match (p.keep_within_days, rules.is_empty()) {
        // Refused by the policy's check; said plainly should a stored one ever be so.
        (0, true) => "Keeps only the newest backup.".into(),
        (0, false) => format!("Keeps {rules}."),
        (d, true) => format!("Keeps every backup of the last {}.", n(d, "day", "days")),
        (d, false) => format!(
            "Keeps every backup of the last {}, then {rules}.",
            n(d, "day", "days")
        ),
    }
}

/// One choice of a schedule's select.
pub struct ChoiceView {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

/// A schedule as its form shows it: the policy in words, the next backup, the choice made,
/// and (Advanced) its cron expression and keep rules, or what was typed when refused.
pub struct ScheduleView {
    pub words: String,
    pub keeps: String,
    /// An app's own policy, not the one for all apps (always false for that one).
    pub own: bool,
    /// The next scheduled backup: "tonight at 02:00", and its ISO time.
    pub next: Option<(String, String)>,
    pub choices: Vec<ChoiceView>,
    /// No choice fits what is set (an own schedule, in Basic mode): the select asks for one.
    pub unchosen: bool,
    /// Advanced: the own schedule's fields start open (it is the one chosen, or was refused).
    pub own_open: bool,
    pub schedule: String,
    pub keep_within_days: String,
    pub keep_hourly: String,
    pub keep_daily: String,
    pub keep_weekly: String,
    pub keep_monthly: String,
    pub error: Option<String>,
}

impl ScheduleView {
    /// `default_words`: for an app, the default's words (its "As all apps" choice).
    fn of(p: &PolicyAnswer, advanced: bool, default_words: Option<&str>) -> ScheduleView {
        let policy = p.policy();
        let chosen = match (&p.preset, default_words.is_some() && !p.own) {
            (_, true) => "default",
            (Some(name), false) => PRESETS.iter().copied().find(|n| n == name).unwrap_or(""),
            (None, false) if advanced => "own",
            (None, false) => "",
        };
        let now = Local::now();
        ScheduleView {
            words: schedule_words(&policy, advanced),
            keeps: keep_words(&policy),
            own: p.own,
            next: p
                .next_at
                .and_then(|at| in_zone(at, &Local))
                .map(|t| (next_words(&t, &now), format_iso(t.timestamp()))),
            choices: choices(chosen, advanced, default_words),
            unchosen: chosen.is_empty(),
            own_open: chosen == "own",
            schedule: policy.schedule.clone(),
            keep_within_days: policy.keep_within_days.to_string(),
            keep_hourly: policy.keep_hourly.to_string(),
            keep_daily: policy.keep_daily.to_string(),
            keep_weekly: policy.keep_weekly.to_string(),
            keep_monthly: policy.keep_monthly.to_string(),
            error: None,
        }
    }

    /// After a refusal: the choice and fields as typed, and why.
    fn refused(
        &mut self,
        form: &ScheduleForm,
        why: String,
        advanced: bool,
        default_words: Option<&str>,
    ) {
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_control())
                .take(REFILL_MAX)
                .collect()
        };
        let chosen = ["default", "own"]
            .iter()
            .chain(PRESETS.iter())
            .copied()
            .find(|c| *c == form.choice)
            .unwrap_or("");
        self.choices = choices(chosen, advanced, default_words);
        self.unchosen = !self.choices.iter().any(|c| c.selected);
        self.own_open = chosen == "own";
        self.schedule = clean(&form.schedule);
        self.keep_within_days = clean(&form.keep_within_days);
        self.keep_hourly = clean(&form.keep_hourly);
        self.keep_daily = clean(&form.keep_daily);
        self.keep_weekly = clean(&form.keep_weekly);
        self.keep_monthly = clean(&form.keep_monthly);
        self.error = Some(why);
    }
}

/// The select's choices: (an app's) "As all apps", the presets, and (Advanced) an own one.
fn choices(chosen: &str, advanced: bool, default_words: Option<&str>) -> Vec<ChoiceView> {
    let mut out = Vec::new();
    if let Some(words) = default_words {
        out.push(ChoiceView {
            value: "default",
            label: format!("As all apps ({words})"),
            selected: chosen == "default",
        });
    }
    for name in PRESETS {
        out.push(ChoiceView {
            value: name,
            label: Policy::preset(name).map(|p| p.words()).unwrap_or_default(),
            selected: chosen == name,
        });
    }
    if advanced {
        out.push(ChoiceView {
            value: "own",
            label: "Your own schedule and keep rules (below)".into(),
            selected: chosen == "own",
        });
    }
    out
}

/// The schedule form as sent: a choice (a preset, "default" for an app, "own"), and the own
/// schedule's fields (Advanced mode; ignored unless "own" is chosen).
#[derive(Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    choice: String,
    #[serde(default)]
    schedule: String,
    #[serde(default)]
    keep_within_days: String,
    #[serde(default)]
    keep_hourly: String,
    #[serde(default)]
    keep_daily: String,
    #[serde(default)]
    keep_weekly: String,
    #[serde(default)]
    keep_monthly: String,
}

impl ScheduleForm {
    /// What the action takes; the policy's own checks (the schedule, the counts) are the
    /// action's, with their fixes.
    fn choice(&self) -> Result<PolicyChoice, WebError> {
        let count = |s: &str| -> Result<u32, WebError> {
            match s.trim() {
                "" => Ok(0),
                n => n.parse().map_err(|_| {
                    WebError::bad_request(
                        "Give each keep rule as a whole number, like 7 (0 turns the rule off).",
                    )
                }),
            }
        };
        Ok(match self.choice.as_str() {
            "" => return Err(WebError::bad_request("Choose when to back up.")),
            "default" => PolicyChoice::FollowDefault,
            "own" => PolicyChoice::Own(Policy {
                schedule: self.schedule.trim().to_string(),
                keep_within_days: count(&self.keep_within_days)?,
                keep_hourly: count(&self.keep_hourly)?,
                keep_daily: count(&self.keep_daily)?,
                keep_weekly: count(&self.keep_weekly)?,
                keep_monthly: count(&self.keep_monthly)?,
            }),
            preset => PolicyChoice::Preset(preset.to_string()),
        })
    }
}

async fn policy_answer(state: &AppState, slug: Option<&str>) -> Result<PolicyAnswer, WebError> {
    serde_json::from_value(act::policy(state, slug).await?).map_err(WebError::internal)
}

#[derive(Template)]
#[template(path = "partials/backup_schedule.html")]
struct SchedulePart {
    advanced: bool,
    /// A destination exists: scheduled backups run.
    ready: bool,
    /// The box was started with scheduled backups off (`--backup-schedule off`).
    scheduler_off: bool,
    zone: String,
    /// The ids of the form's fields start with this.
    prefix: &'static str,
    v: ScheduleView,
}

/// The Backups page's "Schedule for all apps" card, refused with `refused` (the form and why).
async fn schedule_html(
    state: &AppState,
    advanced: bool,
    refused: Option<(&ScheduleForm, String)>,
) -> Result<String, WebError> {
    let mut v = ScheduleView::of(&policy_answer(state, None).await?, advanced, None);
    if let Some((form, why)) = refused {
        v.refused(form, why, advanced, None);
    }
    Ok(SchedulePart {
        advanced,
        ready: !state.store.backup_destinations().await?.is_empty(),
        scheduler_off: state.deployer.config.backup_schedule_after.is_none(),
        zone: zone_name(),
        prefix: "schedule",
        v,
    }
    .render()?)
}

/// "Save schedule" (all apps): the card again, with the new schedule or why it was refused.
pub async fn set_schedule(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ScheduleForm>,
) -> Result<Response, WebError> {
    let advanced = advanced(&ctx)?;
    let saved = match form.choice() {
        Ok(choice) => act::set_policy(&state, &ctx, None, choice).await,
        Err(e) => Err(e),
    };
    let refused = match saved {
        Ok(()) => None,
        Err(e) if owner_can_fix(&e) => Some((&form, e.message)),
        Err(e) => return Err(e),
    };
    Ok(Html(schedule_html(&state, advanced, refused).await?).into_response())
}

#[derive(Template)]
#[template(path = "partials/app_schedule.html")]
struct AppSchedulePart {
    slug: String,
    name: String,
    advanced: bool,
    ready: bool,
    scheduler_off: bool,
    /// The app keeps nothing of its own (no data, no database): the schedule passes it by.
    nothing_to_keep: bool,
    zone: String,
    prefix: &'static str,
    v: ScheduleView,
}

/// An app's schedule, in its Backups card.
async fn app_schedule_html(
    state: &AppState,
    slug: &str,
    name: &str,
    advanced: bool,
    refused: Option<(&ScheduleForm, String)>,
) -> Result<String, WebError> {
    let default = policy_answer(state, None).await?;
    let default_words = schedule_words(&default.policy(), advanced);
    let mut v = ScheduleView::of(
        &policy_answer(state, Some(slug)).await?,
        advanced,
        Some(&default_words),
    );
    if let Some((form, why)) = refused {
        v.refused(form, why, advanced, Some(&default_words));
    }
    let nothing_to_keep = state
        .catalog
        .recipes
        .get(slug)
        .is_some_and(|r| r.manifest.data_volumes.is_empty() && r.manifest.database.is_none());
    Ok(AppSchedulePart {
        slug: slug.to_string(),
        name: name.to_string(),
        advanced,
        ready: !state.store.backup_destinations().await?.is_empty(),
        scheduler_off: state.deployer.config.backup_schedule_after.is_none(),
        nothing_to_keep,
        zone: zone_name(),
        prefix: "app-schedule",
        v,
    }
    .render()?)
}

/// "Save" on an app's schedule: its schedule again, with the new choice or why it was refused.
pub async fn set_app_schedule(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    Form(form): Form<ScheduleForm>,
) -> Result<Response, WebError> {
    let advanced = advanced(&ctx)?;
    let app = state
        .store
        .app(slug.clone())
        .await?
        .ok_or_else(WebError::not_found)?;
    let name = app_name(&state, &slug, &app.name);
    let saved = match form.choice() {
        Ok(choice) => act::set_policy(&state, &ctx, Some(&slug), choice).await,
        Err(e) => Err(e),
    };
    let refused = match saved {
        Ok(()) => None,
        Err(e) if owner_can_fix(&e) => Some((&form, e.message)),
        Err(e) => return Err(e),
    };
    Ok(Html(app_schedule_html(&state, &slug, &name, advanced, refused).await?).into_response())
}

// ---- the page ----

#[derive(Template)]
#[template(path = "pages/backups.html")]
struct BackupsPage {
    icon: &'static str,
    /// Whether any destination is set up (else the empty state and the add form come first).
    ready: bool,
    /// The destinations' list (`DestinationsPart`), live.
    destinations: String,
    /// Whether any app is installed (the empty state then also says to install one).
    any_apps: bool,
    schedule: String,
    apps: String,
    advanced: bool,
    form: FormView,
    /// The box's own backup (`recovery::box_card`), live.
    this_box: String,
}

#[derive(Template)]
#[template(path = "partials/backup_destinations.html")]
struct DestinationsPart {
    advanced: bool,
    destinations: Vec<DestinationView>,
}

async fn destinations_html(state: &AppState, advanced: bool) -> Result<String, WebError> {
    let now = now_unix();
    let destinations = state
        .store
        .backup_destinations()
        .await?
        .iter()
        .map(|d| DestinationView::of(d, now))
        .collect();
    Ok(DestinationsPart {
        advanced,
        destinations,
    }
    .render()?)
}

// ---- the box's own backup ("This box"; its requests are `recovery`'s) ----

#[derive(Template)]
#[template(path = "partials/box_backup.html")]
struct BoxCard {
    advanced: bool,
    passphrase_set: bool,
    has_destinations: bool,
    /// "2 h ago" and each destination's line, once the box backed itself up.
    last: Option<LastView>,
    /// What the owner's last request here was refused for, or how "Back up now" went.
    error: Option<String>,
    done: Option<String>,
    min_len: usize,
    /// The default schedule is Off: the box backs itself up only when asked.
    schedule_off: bool,
}

pub(super) struct LastView {
    pub(super) ok: bool,
    pub(super) when: String,
    pub(super) lines: Vec<(bool, String)>,
}

pub(super) fn last_view(b: &crate::deploy::BoxBackup) -> LastView {
    LastView {
        ok: b.ok,
        when: ago(b.at, now_unix()),
        lines: b
            .destinations
            .iter()
            .map(|d| (d.ok, d.words.clone()))
            .collect(),
    }
}

/// The "This box" card, with an outcome to show (an error, or how "Back up now" went).
pub async fn box_card(
    state: &AppState,
    advanced: bool,
    outcome: Option<Result<String, String>>,
) -> Result<String, WebError> {
    let (done, error) = match outcome {
        Some(Ok(d)) => (Some(d), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    Ok(BoxCard {
        advanced,
        passphrase_set: state.deployer.recovery_set().await,
        has_destinations: !state.store.backup_destinations().await?.is_empty(),
        last: state
            .deployer
            .box_backup_status()
            .await
            .as_ref()
            .map(last_view),
        error,
        done,
        min_len: crate::deploy::MIN_PASSPHRASE,
        schedule_off: {
            let rows = state.store.backup_policies().await?;
            let policy = crate::deploy::policy_for(&rows, crate::backup::bundle::BOX_HOST).0;
            crate::backup::schedule::parse(&policy.schedule)
                .ok()
                .flatten()
                .is_none()
        },
    }
    .render()?)
}

/// The page, with the add form as given (empty, or refilled with why it was refused).
async fn render(state: &AppState, ctx: &Ctx, form: FormView) -> Result<String, WebError> {
    let advanced = advanced(ctx)?;
    let ready = !state.store.backup_destinations().await?.is_empty();
    Ok(BackupsPage {
        icon: Section::Backups.icon(),
        ready,
        destinations: destinations_html(state, advanced).await?,
        any_apps: !state.store.apps().await?.is_empty(),
        schedule: schedule_html(state, advanced, None).await?,
        apps: apps_html(state, ready, advanced).await?,
        advanced,
        form: form.with_disks(state).await,
        this_box: box_card(state, advanced, None).await?,
    }
    .render()?)
}

pub async fn show(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let partial = render(&state, &ctx, FormView::default()).await?;
    page(&ctx, Section::Backups, "Backups", partial)
}

/// The apps part alone, for its live updates (a backup ending changes it).
pub async fn apps_part(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let ready = !state.store.backup_destinations().await?.is_empty();
    Ok(Html(apps_html(&state, ready, advanced(&ctx)?).await?).into_response())
}

/// The destinations' list alone, for its live updates: a check of the stored data that ends
/// (its result is a toast) or a backup that ends (it records whether the destination worked).
pub async fn destinations_part(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<Response, WebError> {
    Ok(Html(destinations_html(&state, advanced(&ctx)?).await?).into_response())
}

/// "Check all backup data" (Advanced): the box prunes and reads everything stored there, in
/// the background. Nothing to swap: the toasts say it started and how it ended, and the
/// destinations' list follows the second one.
pub async fn check_all(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    act::maintain_destination(&state, id, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A refusal the owner can act on (what they typed, or the place they named) is shown by the
/// form; anything else is the box's own failure and goes the usual way.
fn owner_can_fix(e: &WebError) -> bool {
    e.status.is_client_error() || e.status == StatusCode::BAD_GATEWAY
}

/// The add form: on success the page again (the new destination listed; the action's toast
/// comes over the live events), else the form again with the reason and the typed fields.
pub async fn add_destination(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<DestinationForm>,
) -> Result<Response, WebError> {
    let mut again = form.refill();
    let added = match form.into_new() {
        Ok((name, new)) => act::add_destination(&state, &name, new).await.map(|_| ()),
        Err(e) => Err(e),
    };
    let view = match added {
        Ok(()) => FormView::default(),
        Err(e) if owner_can_fix(&e) => {
            again.error = Some(e.message);
            again
        }
        Err(e) => return Err(e),
    };
    let partial = render(&state, &ctx, view).await?;
    page(&ctx, Section::Backups, "Backups", partial)
}

/// "Test connection": the row's status again, with the outcome (a failure in its words).
pub async fn check_destination(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let checked = act::check_destination(&state, id).await;
    let row = state
        .store
        .backup_destination(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    let mut status = StatusView::of(&row, now_unix());
    match checked {
        Ok(_) => {}
        // Refused before the check was recorded (no device to check from, say): shown the
        // same way, as of now.
        Err(e) if owner_can_fix(&e) => {
            if status.message != e.message {
                status.state = "failed";
                status.message = e.message;
                status.checked = ago(now_unix(), now_unix());
                status.checked_iso = format_iso(now_unix());
            }
        }
        Err(e) => return Err(e),
    }
    Ok(Html(StatusPart { s: &status }.render()?).into_response())
}

/// "Remove": the page again without it, and a note of what happened to its backups.
pub async fn remove_destination(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let row = state
        .store
        .backup_destination(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    act::remove_destination(&state, id).await?;
    let mut partial = render(&state, &ctx, FormView::default()).await?;
    // The toast rides along out of band, into the page's toast area.
    partial.push_str(r#"<div hx-swap-oob="beforeend:#toasts">"#);
    partial.push_str(&super::toast_html(
        Level::Success,
        &format!(
            "Homelab no longer backs up to {}. The backups already there stay where they are.",
            row.name
        ),
        "",
    ));
    partial.push_str("</div>");
    page(&ctx, Section::Backups, "Backups", partial)
}

// ---- an app's backups ----

pub struct RunView {
    pub when: String,
    pub at: String,
    pub at_iso: String,
    pub destination: String,
    /// running | done | failed
    pub state: String,
    pub message: String,
    pub files: String,
    pub size: String,
    pub added: String,
}

#[derive(Template)]
#[template(path = "partials/app_backups.html")]
struct AppCard {
    slug: String,
    name: String,
    ready: bool,
    s: Summary,
    runs: Vec<RunView>,
    /// Its schedule (`AppSchedulePart`).
    schedule: String,
}

/// The Backups card of an installed app's page (store reads only; its snapshots load after
/// the page, from the app's device).
pub async fn app_card_html(
    state: &AppState,
    slug: &str,
    name: &str,
    advanced: bool,
) -> Result<String, WebError> {
    let now = now_unix();
    let destinations: HashMap<i64, String> = state
        .store
        .backup_destinations()
        .await?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    let runs = state.store.backup_runs(slug.to_string(), RUNS_READ).await?;
    let s = Summary::of(&runs, now);
    let runs = runs
        .iter()
        .take(RUNS_SHOWN as usize)
        .map(|r| {
            let at = r.finished_at.unwrap_or(r.started_at);
            let done = r.state == "done";
            let figure = |v: i64, f: fn(i64) -> String| if done { f(v) } else { "—".into() };
            RunView {
                when: ago(at, now),
                at: clock(at),
                at_iso: format_iso(at),
                destination: destinations
                    .get(&r.destination_id)
                    .cloned()
                    .unwrap_or_else(|| "a removed destination".into()),
                state: r.state.clone(),
                message: r.message.clone(),
                files: figure(r.files, |v| v.to_string()),
                size: figure(r.bytes, |v| human_bytes(v.max(0) as u64)),
                added: figure(r.added, |v| human_bytes(v.max(0) as u64)),
            }
        })
        .collect();
    Ok(AppCard {
        slug: slug.to_string(),
        name: name.to_string(),
        ready: !destinations.is_empty(),
        s,
        runs,
        schedule: app_schedule_html(state, slug, name, advanced, None).await?,
    }
    .render()?)
}

pub struct SnapshotView {
    pub destination_id: i64,
    pub destination: String,
    pub id: String,
    pub short_id: String,
    pub date: String,
    pub ago: String,
    pub confirm: String,
    /// What the backup run that made it recorded ("—" when this box has no record of it):
    /// its size, how many files, and the new data it stored ("what changed" since the one
    /// before).
    pub size: String,
    pub files: String,
    pub added: String,
    /// Opens its files (`views::browse`).
    pub browse: String,
}

#[derive(Template)]
#[template(path = "partials/app_snapshots.html")]
struct SnapshotsPart {
    slug: String,
    name: String,
    advanced: bool,
    /// Why the list could not be read, in words.
    error: Option<String>,
    snapshots: Vec<SnapshotView>,
}

/// An app's snapshots at every destination, read from its device (seconds: loaded after the
/// page). A failure to read them is shown in its words, with "Try again".
pub async fn snapshots(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let app = state
        .store
        .app(slug.clone())
        .await?
        .ok_or_else(WebError::not_found)?;
    let name = app_name(&state, &slug, &app.name);
    let now = now_unix();
    // The runs that made them (store reads only): restic 0.14 names a snapshot by its short
    // id in a run's summary, newer ones by the full id.
    let runs = state
        .store
        .backup_runs(slug.clone(), RUNS_FOR_SNAPSHOTS)
        .await?;
    let run_of = |id: &str, destination: i64| {
        runs.iter().find(|r| {
            r.state == "done"
                && r.destination_id == destination
                && r.snapshot_id.len() >= 8
                && (id.starts_with(&r.snapshot_id) || r.snapshot_id.starts_with(id))
        })
    };
    let (snapshots, error) = if state.store.backup_destinations().await?.is_empty() {
        (Vec::new(), None)
    } else {
        match state.deployer.snapshots(&slug).await {
            Ok(list) => (list, None),
            Err(e) => (Vec::new(), Some(WebError::from(e).message)),
        }
    };
    let snapshots = snapshots
        .into_iter()
        .map(|s| {
            let (date, at) = snapshot_time(&s.time);
            let run = run_of(&s.id, s.destination_id);
            let figure = |f: fn(&BackupRunRow) -> String| run.map(f).unwrap_or_else(|| "—".into());
            SnapshotView {
                size: figure(|r| human_bytes(r.bytes.max(0) as u64)),
                files: figure(|r| match r.files {
                    1 => "1 file".into(),
                    n => format!("{n} files"),
                }),
                added: figure(|r| format!("{} new", human_bytes(r.added.max(0) as u64))),
                browse: crate::web::paths::files_href(&slug, s.destination_id, &s.id, "/"),
                confirm: format!(
                    "{name} goes back to how it was on {date}. Changes since then are lost. If it does not start, Homelab switches back to today's data."
                ),
                ago: at.map(|at| ago(at, now)).unwrap_or_default(),
                date,
                destination_id: s.destination_id,
                destination: s.destination,
                id: s.id,
                short_id: s.short_id,
            }
        })
        .collect();
    Ok(Html(
        SnapshotsPart {
            slug,
            name,
            advanced: advanced(&ctx)?,
            error,
            snapshots,
        }
        .render()?,
    )
    .into_response())
}

/// "Back up now" (to every destination): its progress page.
pub async fn back_up(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let id = act::back_up(&state, &slug, None).await?;
    go_to(&ctx, &format!("/deployments/{id}"))
}

#[derive(Deserialize)]
pub struct RestoreForm {
    destination_id: i64,
    snapshot: String,
}

/// "Restore" (confirmed on the page): its progress page.
pub async fn restore(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    Form(form): Form<RestoreForm>,
) -> Result<Response, WebError> {
    let id = act::restore(&state, &slug, form.destination_id, &form.snapshot).await?;
    go_to(&ctx, &format!("/deployments/{id}"))
}

// ---- the dashboard ----

#[derive(Template)]
#[template(path = "partials/backups_dashboard.html")]
struct DashboardCard {
    /// Apps are installed or backups are set up: the card has something to say.
    show: bool,
    ready: bool,
    /// The newest good backup of any app ("2 h ago").
    last: Option<(String, String)>,
    /// What needs the owner: failed backups and destinations that do not work, with fixes.
    troubles: Vec<String>,
    /// The box's own backup is not set up (muted: nothing failed).
    box_hint: Option<&'static str>,
}

/// The dashboard's Backups card: store reads only.
pub async fn dashboard_html(state: &AppState) -> Result<String, WebError> {
    let now = now_unix();
    let destinations = state.store.backup_destinations().await?;
    let apps = state.store.apps().await?;
    let mut troubles = Vec::new();
    let mut newest: Option<i64> = None;
    for a in &apps {
        let runs = state.store.backup_runs(a.slug.clone(), RUNS_READ).await?;
        let s = Summary::of(&runs, now);
        if s.state == "failed" {
            troubles.push(format!(
                "{}'s last backup failed: {}",
                app_name(state, &a.slug, &a.name),
                s.failure
            ));
        }
        newest = newest.max(s.last_at);
    }
    for d in &destinations {
        if d.checked_at > 0 && !d.check_ok {
            troubles.push(d.check_message.clone());
        }
        if !d.damage.is_empty() {
            troubles.push(d.damage.clone());
        }
        if let Some(full) = crate::deploy::filling_up(&d.name, &d.space) {
            troubles.push(full);
        }
    }
    // The box's own backup: a failure is a trouble; never set up, a hint (a lost box would
    // take every setting and key with it, but nothing has failed).
    let status = state.deployer.box_backup_status().await;
    if let Some(b) = status.as_ref().filter(|b| !b.ok) {
        troubles.extend(
            b.destinations
                .iter()
                .filter(|d| !d.ok)
                .map(|d| format!("The box's own backup failed: {}", d.words)),
        );
    }
    let box_hint = (status.is_none()
        && !destinations.is_empty()
        && !state.deployer.recovery_set().await)
        .then_some(
            "The box's own settings are not backed up yet: set a recovery passphrase on the Backups page.",
        );
    Ok(DashboardCard {
        box_hint,
        show: !apps.is_empty() || !destinations.is_empty(),
        ready: !destinations.is_empty(),
        last: newest.map(|at| (ago(at, now), format_iso(at))),
        troubles,
    }
    .render()?)
}

/// The card alone, for its live updates.
pub async fn dashboard_card(State(state): State<AppState>) -> Result<Response, WebError> {
    Ok(Html(dashboard_html(&state).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn run(id: i64, job: i64, state: &str, at: i64) -> BackupRunRow {
        BackupRunRow {
            id,
            slug: "vaultwarden".into(),
            destination_id: 1,
            device_id: 1,
            deployment_id: job,
            started_at: at - 10,
            finished_at: (state != "running").then_some(at),
            state: state.into(),
            snapshot_id: String::new(),
            files: 12,
            bytes: 3 << 20,
            added: 1 << 20,
            message: if state == "failed" {
                "Server Two is full. Free some space there, or choose another destination.".into()
            } else {
                String::new()
            },
        }
    }

    #[test]
    fn times_read_as_people_say_them() {
        let now = 1_000_000_000;
        let utc = chrono::Utc;
        assert_eq!(ago_in(now - 5, now, &utc), "just now");
        assert_eq!(
            ago_in(now + 5, now, &utc),
            "just now",
            "a clock a little ahead"
        );
        assert_eq!(ago_in(now - 300, now, &utc), "5 min ago");
        assert_eq!(ago_in(now - 2 * 3600 - 59, now, &utc), "2 h ago");
        assert_eq!(ago_in(now - 90_000, now, &utc), "yesterday");
        assert_eq!(ago_in(now - 3 * 86_400, now, &utc), "3 days ago");
        // 2001-08-10 01:46:40 UTC: still the 9th in New York, the date there.
        assert_eq!(ago_in(now - 30 * 86_400, now, &utc), "on 2001-08-10");
        let new_york = FixedOffset::west_opt(4 * 3600).unwrap();
        assert_eq!(ago_in(now - 30 * 86_400, now, &new_york), "on 2001-08-09");
        // Snapshots in the box's zone, whatever zone restic wrote them in.
        let berlin = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            snapshot_time_in("2026-01-14T22:04:05.123456789+01:00", &utc),
            ("14 January 2026 at 21:04".to_string(), Some(1_768_424_645))
        );
        assert_eq!(
            snapshot_time_in("2026-01-14T21:04:05Z", &berlin),
            ("14 January 2026 at 22:04".to_string(), Some(1_768_424_645))
        );
        assert_eq!(
            snapshot_time_in("2026-01-14T18:34:05-02:30", &berlin).1,
            Some(1_768_424_645)
        );
        for odd in [
            "soon",
            "2026-01-14",
            "2026-13-14T21:04:05Z",
            "2026-01-14T21:04:05+1",
        ] {
            assert_eq!(
                snapshot_time_in(odd, &utc),
                (odd.to_string(), None),
                "{odd}"
            );
        }
    }

    #[test]
    fn the_next_backup_is_said_as_people_say_it() {
        let berlin = FixedOffset::east_opt(3600).unwrap();
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&berlin)
        };
        // Wednesday 2026-12-02.
        let evening = at("2026-12-02T20:15:00+01:00");
        let small_hours = at("2026-12-02T00:30:00+01:00");
        let morning = at("2026-12-02T03:00:00+01:00");
        for (next, now, words) in [
            ("2026-12-03T02:00:00+01:00", &evening, "tonight at 02:00"),
            ("2026-12-02T21:00:00+01:00", &evening, "today at 21:00"),
            (
                "2026-12-02T02:00:00+01:00",
                &small_hours,
                "tonight at 02:00",
            ),
            ("2026-12-03T02:00:00+01:00", &morning, "tomorrow at 02:00"),
            ("2026-12-03T09:30:00+01:00", &evening, "tomorrow at 09:30"),
            ("2026-12-06T02:00:00+01:00", &evening, "on Sunday at 02:00"),
            (
                "2026-12-20T02:00:00+01:00",
                &evening,
                "on 20 December at 02:00",
            ),
            (
                "2027-01-04T02:00:00+01:00",
                &evening,
                "on 4 January 2027 at 02:00",
            ),
        ] {
            assert_eq!(next_words(&at(next), now), words, "{next}");
        }
        // The zone counts: 01:00 UTC is Berlin's 02:00.
        let next = at("2026-12-03T01:00:00+00:00");
        assert_eq!(next_words(&next, &evening), "tonight at 02:00");
    }

    #[test]
    fn policies_in_words() {
        let daily = Policy::default();
        assert_eq!(
            keep_words(&daily),
            "Keeps every backup of the last 2 days, then one a day for 7 days, one a week for 4 weeks and one a month for 6 months."
        );
        let hourly = Policy::preset("hourly").unwrap();
        assert!(keep_words(&hourly).contains("one an hour for 24 hours, one a day"));
        let few = Policy {
            keep_within_days: 0,
            keep_daily: 1,
            keep_weekly: 0,
            keep_monthly: 0,
            ..daily.clone()
        };
        assert_eq!(keep_words(&few), "Keeps one a day for 1 day.");
        let own = Policy {
            schedule: "30 3 * * 1-5".into(),
            ..daily.clone()
        };
        assert_eq!(schedule_words(&own, false), "On a schedule of your own");
        assert!(schedule_words(&own, true).contains("30 3 * * 1-5"));
        assert_eq!(schedule_words(&hourly, false), "Every hour");
        // A preset's time with keep rules of its own is still said plainly.
        let kept_longer = Policy {
            keep_monthly: 24,
            ..daily
        };
        assert_eq!(schedule_words(&kept_longer, false), "Every day at 02:00");
    }

    #[test]
    fn schedule_forms_read_into_choices() {
        let form = |choice: &str, schedule: &str, daily: &str| ScheduleForm {
            choice: choice.into(),
            schedule: schedule.into(),
            keep_within_days: "2".into(),
            keep_hourly: String::new(),
            keep_daily: daily.into(),
            keep_weekly: "4".into(),
            keep_monthly: "6".into(),
        };
        assert!(matches!(
            form("hourly", "", "").choice(),
            Ok(PolicyChoice::Preset(p)) if p == "hourly"
        ));
        assert!(matches!(
            form("default", "", "").choice(),
            Ok(PolicyChoice::FollowDefault)
        ));
        match form("own", " 30 3 * * 1-5 ", "7").choice() {
            Ok(PolicyChoice::Own(p)) => {
                assert_eq!(p.schedule, "30 3 * * 1-5");
                assert_eq!((p.keep_hourly, p.keep_daily), (0, 7), "empty is 0");
            }
            _ => panic!("own"),
        }
        for bad in [form("own", "0 2 * * *", "seven"), form("", "", "")] {
            let e = bad.choice().err().unwrap();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn an_apps_backups_are_summed_up_by_their_newest_job() {
        let now = 1_000_000;
        let never = Summary::of(&[], now);
        assert_eq!((never.state, never.last.as_str()), ("never", ""));
        // Newest first: the newest job failed at one of its two destinations.
        let runs = [
            run(4, 7, "failed", now - 60),
            run(3, 7, "done", now - 70),
            run(2, 5, "done", now - 7200),
        ];
        let s = Summary::of(&runs, now);
        assert_eq!(s.state, "failed");
        assert!(s.failure.contains("is full"), "{}", s.failure);
        assert_eq!(s.last, "1 min ago", "the last good run is still counted");
        assert_eq!(s.size, "3.0 MB");
        let s = Summary::of(&runs[2..], now);
        assert_eq!((s.state, s.last.as_str()), ("done", "2 h ago"));
        let s = Summary::of(
            &[run(5, 9, "running", now), run(2, 5, "done", now - 60)],
            now,
        );
        assert_eq!((s.state, s.job), ("running", 9));
    }
}
