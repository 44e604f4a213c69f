//! Backups as the owner sees them: the Backups page (where backups go, each with its last
//! check, "Test connection" and "Remove"; the form that adds one; every installed app with its
//! last backup and "Back up now"), an app's Backups card (its recent runs, its snapshots read
//! from its device after the page has loaded, "Restore") and the dashboard's Backups card
//! (store reads only). Backing up and restoring are deploy-engine jobs: starting one goes to
//! its progress page. Secrets go in through the form and never come back out: a refused form
//! is filled again without its password and keys.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{Section, format_iso, format_time, go_to, page};
use crate::backup::Target;
use crate::events::Level;
use crate::secrets::Secret;
use crate::store::{AppRow, BackupRunRow, DestinationRow, UiMode, now_unix};
use crate::units::{date_utc, human_bytes};
use crate::web::AppState;
use crate::web::actions::backups::{self as act, NewDestination};
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Runs an app's card lists (the API has them all).
const RUNS_SHOWN: i64 = 10;
/// Runs read per app to find its last good backup behind failed ones (store reads only).
const RUNS_READ: i64 = 50;
/// A refused form's fields are filled in again up to this length (one line each).
const REFILL_MAX: usize = 2048;

fn advanced(ctx: &Ctx) -> Result<bool, WebError> {
    Ok(ctx.user()?.ui_mode == UiMode::Advanced)
}

/// How long ago, in words: "just now", "5 min ago", "2 h ago", "yesterday", "3 days ago",
/// then the date.
pub fn ago(then: i64, now: i64) -> String {
    let secs = (now - then).max(0);
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        86_400..172_800 => "yesterday".into(),
        172_800..604_800 => format!("{} days ago", secs / 86_400),
        _ => format!("on {}", date_utc(then)),
    }
}

/// A snapshot's time (RFC 3339, as restic recorded it: `2026-01-14T22:04:05.123+01:00`) in
/// the owner's words, in UTC like every time on the box: "14 January 2026 at 21:04 UTC"; and
/// its Unix time. Anything else is shown as it came.
fn snapshot_time(rfc3339: &str) -> (String, Option<i64>) {
    match parse_rfc3339(rfc3339) {
        Some(t) => (
            format!(
                "{} {} {} at {:02}:{:02} UTC",
                t.day(),
                t.month(),
                t.year(),
                t.hour(),
                t.minute()
            ),
            Some(t.unix_timestamp()),
        ),
        None => (rfc3339.to_string(), None),
    }
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into UTC (seconds; the fraction is
/// dropped).
fn parse_rfc3339(s: &str) -> Option<time::OffsetDateTime> {
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
    /// sftp | s3
    pub kind: String,
    pub name: String,
    pub host: String,
    pub port: String,
    pub user: String,
    pub path: String,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub error: Option<String>,
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
            error: None,
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
}

impl DestinationForm {
    /// The typed fields to fill in again after a refusal: bounded, on one line, and without
    /// the password, the key id and the secret.
    fn refill(&self) -> FormView {
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_control())
                .take(REFILL_MAX)
                .collect()
        };
        FormView {
            kind: if self.kind == "s3" { "s3" } else { "sftp" }.into(),
            name: clean(&self.name),
            host: clean(&self.host),
            port: clean(&self.port),
            user: clean(&self.user),
            path: clean(&self.path),
            endpoint: clean(&self.endpoint),
            bucket: clean(&self.bucket),
            prefix: clean(&self.prefix),
            error: None,
        }
    }

    /// What the action takes (the checks of each field are the action's, with their fixes).
    fn into_new(self) -> Result<(String, NewDestination), WebError> {
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
            _ => {
                return Err(WebError::bad_request(
                    "Choose where the backups go: a NAS or another computer, or S3-compatible storage.",
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
}

#[derive(Template)]
#[template(path = "partials/backup_apps.html")]
struct AppsPart {
    apps: Vec<AppView>,
    /// A destination exists: backups can be made.
    ready: bool,
}

async fn app_views(state: &AppState, apps: &[AppRow]) -> Result<Vec<AppView>, WebError> {
    let now = now_unix();
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
        });
    }
    Ok(out)
}

/// The catalog's name for an app (the stored one if the recipe is gone).
fn app_name(state: &AppState, slug: &str, stored: &str) -> String {
    state
        .catalog
        .recipes
        .get(slug)
        .map(|r| r.manifest.name.clone())
        .unwrap_or_else(|| stored.to_string())
}

async fn apps_html(state: &AppState, ready: bool) -> Result<String, WebError> {
    let apps = state.store.apps().await?;
    Ok(AppsPart {
        apps: app_views(state, &apps).await?,
        ready,
    }
    .render()?)
}

// ---- the page ----

#[derive(Template)]
#[template(path = "pages/backups.html")]
struct BackupsPage {
    advanced: bool,
    icon: &'static str,
    destinations: Vec<DestinationView>,
    /// Whether any app is installed (the empty state then also says to install one).
    any_apps: bool,
    apps: String,
    form: FormView,
}

/// The page, with the add form as given (empty, or refilled with why it was refused).
async fn render(state: &AppState, ctx: &Ctx, form: FormView) -> Result<String, WebError> {
    let now = now_unix();
    let destinations: Vec<DestinationView> = state
        .store
        .backup_destinations()
        .await?
        .iter()
        .map(|d| DestinationView::of(d, now))
        .collect();
    let ready = !destinations.is_empty();
    Ok(BackupsPage {
        advanced: advanced(ctx)?,
        icon: Section::Backups.icon(),
        any_apps: !state.store.apps().await?.is_empty(),
        apps: apps_html(state, ready).await?,
        destinations,
        form,
    }
    .render()?)
}

pub async fn show(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let partial = render(&state, &ctx, FormView::default()).await?;
    page(&ctx, Section::Backups, "Backups", partial)
}

/// The apps part alone, for its live updates (a backup ending changes it).
pub async fn apps_part(State(state): State<AppState>) -> Result<Response, WebError> {
    let ready = !state.store.backup_destinations().await?.is_empty();
    Ok(Html(apps_html(&state, ready).await?).into_response())
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
}

/// The Backups card of an installed app's page (store reads only; its snapshots load after
/// the page, from the app's device).
pub async fn app_card_html(state: &AppState, slug: &str, name: &str) -> Result<String, WebError> {
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
                at: format_time(at),
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
            SnapshotView {
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
    }
    Ok(DashboardCard {
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
        assert_eq!(ago(now - 5, now), "just now");
        assert_eq!(ago(now + 5, now), "just now", "a clock a little ahead");
        assert_eq!(ago(now - 300, now), "5 min ago");
        assert_eq!(ago(now - 2 * 3600 - 59, now), "2 h ago");
        assert_eq!(ago(now - 90_000, now), "yesterday");
        assert_eq!(ago(now - 3 * 86_400, now), "3 days ago");
        assert_eq!(ago(now - 30 * 86_400, now), "on 2001-08-10");
        assert_eq!(
            snapshot_time("2026-01-14T22:04:05.123456789+01:00"),
            (
                "14 January 2026 at 21:04 UTC".to_string(),
                Some(1_768_424_645)
            )
        );
        assert_eq!(snapshot_time("2026-01-14T21:04:05Z").1, Some(1_768_424_645));
        assert_eq!(
            snapshot_time("2026-01-14T18:34:05-02:30").1,
            Some(1_768_424_645)
        );
        for odd in [
            "soon",
            "2026-01-14",
            "2026-13-14T21:04:05Z",
            "2026-01-14T21:04:05+1",
        ] {
            assert_eq!(snapshot_time(odd), (odd.to_string(), None), "{odd}");
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
