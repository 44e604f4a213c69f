//! Deploying from the UI: the placement choice ("Analyzing your homelab…" → the recommendation
//! and every device's verdict, with another device selectable), the deploy form, the live
//! progress page (bar, step in words, ETA, "What I did" in Advanced mode; also for an app's
//! backups and restores, which are jobs of the same engine), and the deployed app's actions:
//! start, stop, restart, logs, remove.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{Section, go_to, page};
use crate::deploy::{DeployRequest, DeploymentState, Lifecycle, Removal, Started};
use crate::store::{ActionRow, DeploymentRow, UiMode, now_unix};
use crate::web::AppState;
use crate::web::actions;
use crate::web::context::Ctx;
use crate::web::error::WebError;

fn advanced(ctx: &Ctx) -> bool {
    ctx.user()
        .map(|u| u.ui_mode == UiMode::Advanced)
        .unwrap_or(false)
}

pub struct Choice {
    pub device_id: i64,
    pub name: String,
    pub score: u32,
    pub eligible: bool,
    pub best: bool,
    /// What decided it, in plain words.
    pub reason: String,
    /// The figures behind the score (Advanced mode only; empty in Basic).
    pub detail: String,
}

#[derive(Template)]
#[template(path = "partials/deploy_plan.html")]
struct PlanTemplate {
    choices: Vec<Choice>,
    any_eligible: bool,
    /// Scores and their figures are shown in Advanced mode; Basic shows the reasons only.
    advanced: bool,
}

/// The placement for the deploy form (loaded after the page, so it can say "Analyzing…").
pub async fn plan(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let advanced = advanced(&ctx);
    let verdicts = state.deployer.plan(&slug, &BTreeMap::new()).await?;
    let choices: Vec<Choice> = verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| Choice {
            device_id: v.device_id,
            name: v.name.clone(),
            score: v.score().round() as u32,
            eligible: v.eligible(),
            best: i == 0 && v.eligible(),
            reason: v.reason(),
            detail: if advanced { v.detail() } else { String::new() },
        })
        .collect();
    let any_eligible = choices.iter().any(|c| c.eligible);
    Ok(Html(
        PlanTemplate {
            choices,
            any_eligible,
            advanced,
        }
        .render()?,
    )
    .into_response())
}

/// The deploy form was sent: start and go to the progress page. The form has one field per
/// recipe setting (`setting.NAME`), so it is read as a list of pairs.
pub async fn deploy(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let mut req = DeployRequest::default();
    for (k, v) in form {
        if k == "device" {
            req.device_id = v.parse().ok();
        } else if k == "by_address" {
            req.by_address = v == "yes";
        } else if let Some(name) = k.strip_prefix("setting.") {
            req.settings.insert(name.to_string(), v);
        }
    }
    match actions::apps::deploy(&state, &ctx, &slug, req).await? {
        Started::New(id) | Started::InFlight(id) => go_to(&ctx, &format!("/deployments/{id}")),
        Started::AlreadyDeployed(_) => go_to(&ctx, &format!("/apps/{slug}")),
    }
}

pub struct StepView {
    pub label: &'static str,
    /// done | current | todo | failed
    pub status: &'static str,
}

const STEPS: [DeploymentState; 9] = [
    DeploymentState::Validating,
    DeploymentState::Preparing,
    DeploymentState::Naming,
    DeploymentState::Pulling,
    DeploymentState::Starting,
    DeploymentState::Configuring,
    DeploymentState::HealthCheck,
    DeploymentState::Securing,
    DeploymentState::Running,
];

/// The steps of a backup job, in its words (its states are the deploy engine's).
const BACKUP_STEPS: [(DeploymentState, &str); 4] = [
    (DeploymentState::Validating, "Checking"),
    (DeploymentState::Preparing, "Preparing"),
    (DeploymentState::Starting, "Backing up"),
    (DeploymentState::Running, "Backed up"),
];

/// The steps of a restore job.
const RESTORE_STEPS: [(DeploymentState, &str); 5] = [
    (DeploymentState::Validating, "Checking"),
    (DeploymentState::Pulling, "Restoring the data"),
    (DeploymentState::Starting, "Switching to the restored data"),
    (
        DeploymentState::HealthCheck,
        "Waiting for the app to answer",
    ),
    (DeploymentState::Running, "Restored"),
];

/// The steps of a move to another device, in its words. Its states repeat (the backup on the
/// old device is Preparing and Starting below 40 %, the new device's are above), so the step
/// is read from the state and the bar together (`move_step`).
const MOVE_STEPS: [&str; 6] = [
    "Checking",
    "Backing up its data",
    "Setting it up with its data",
    "Starting it there",
    "Waiting for it to answer",
    "Removing the old copy",
];

/// Where a move is: an index into `MOVE_STEPS`, or its length once it is over.
fn move_step(d: &DeploymentRow) -> usize {
    use DeploymentState as S;
    match d.state {
        S::Validating => 0,
        S::Preparing | S::Starting if d.progress < 40 => 1,
        S::Preparing | S::Pulling | S::Configuring => 2,
        S::Starting => 3,
        S::HealthCheck | S::Naming | S::Securing => 4,
        // Recorded as running at the new device before the old copy goes (then 100 %).
        S::Running if d.progress < 100 => 5,
        _ => MOVE_STEPS.len(),
    }
}

fn moving(d: &DeploymentRow) -> bool {
    d.kind == "move"
}

/// A move's steps, like a backup's: none once it went wrong (its message says where and why).
fn move_steps(d: &DeploymentRow) -> Vec<StepView> {
    if d.state.went_wrong() {
        return Vec::new();
    }
    let at = move_step(d);
    MOVE_STEPS
        .iter()
        .enumerate()
        .map(|(i, label)| StepView {
            label,
            status: match i.cmp(&at) {
                std::cmp::Ordering::Less => "done",
                std::cmp::Ordering::Equal => "current",
                std::cmp::Ordering::Greater => "todo",
            },
        })
        .collect()
}

/// A backup or a restore (jobs whose progress reads differently from an install's).
fn backing(d: &DeploymentRow) -> bool {
    matches!(d.kind.as_str(), "backup" | "restore")
}

/// The words after the progress bar's mark: a backup's or restore's own where it has them.
fn state_words(d: &DeploymentRow) -> &'static str {
    if moving(d) {
        return match d.state {
            DeploymentState::RolledBack => "Not moved",
            s if s.went_wrong() => s.words(),
            _ => MOVE_STEPS.get(move_step(d)).copied().unwrap_or("Moved"),
        };
    }
    let own = match d.kind.as_str() {
        "backup" => &BACKUP_STEPS[..],
        "restore" => &RESTORE_STEPS[..],
        _ => &[][..],
    };
    if let Some((_, words)) = own.iter().find(|(s, _)| *s == d.state) {
        return words;
    }
    match (d.kind.as_str(), d.state) {
        ("backup", DeploymentState::RolledBack) => "Not backed up",
        ("restore", DeploymentState::RolledBack) => "Not restored",
        _ => d.state.words(),
    }
}

/// A backup's or restore's steps: shown while it runs and once it is done; when it went wrong
/// the message says where and why (its journal does not say which of its steps failed).
fn backing_steps(d: &DeploymentRow) -> Vec<StepView> {
    let own = if d.kind == "restore" {
        &RESTORE_STEPS[..]
    } else {
        &BACKUP_STEPS[..]
    };
    if d.state.went_wrong() {
        return Vec::new();
    }
    let at = own.iter().position(|(s, _)| *s == d.state).unwrap_or(0);
    own.iter()
        .enumerate()
        .map(|(i, (_, label))| StepView {
            label,
            status: if d.state == DeploymentState::Running || i < at {
                "done"
            } else if i == at {
                "current"
            } else {
                "todo"
            },
        })
        .collect()
}

#[derive(Template)]
#[template(path = "partials/deploy_progress.html")]
struct ProgressTemplate<'a> {
    d: &'a DeploymentRow,
    /// A backup or restore: no first visit, and the way back is to the app.
    backing: bool,
    /// A move to another device: no first visit either, and undone it stays where it was.
    moving: bool,
    app_name: String,
    heading: String,
    words: &'static str,
    eta: String,
    live: bool,
    url: String,
    steps: Vec<StepView>,
    advanced: bool,
    actions: Vec<ActionRow>,
    env_keys: Vec<String>,
    /// How to sign in or finish setup, once the app runs.
    first_run: Option<super::apps::FirstRun>,
}

#[derive(Template)]
#[template(path = "pages/deployment.html")]
struct DeploymentPage {
    id: i64,
    app_name: String,
    progress: String,
}

/// Which journal step the deployment reached (for the step list).
fn step_views(d: &DeploymentRow, reached: DeploymentState) -> Vec<StepView> {
    let failed = d.state.went_wrong();
    // An app reached by its address only has no name to give or secure.
    let by_address = serde_json::from_str::<crate::deploy::DeployRequest>(&d.request)
        .map(|r| r.by_address)
        .unwrap_or(false);
    let steps: Vec<DeploymentState> = STEPS
        .into_iter()
        .filter(|s| {
            !(by_address && matches!(s, DeploymentState::Naming | DeploymentState::Securing))
        })
        .collect();
    let at = steps.iter().position(|s| *s == reached).unwrap_or(0);
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepView {
            label: s.words(),
            status: if d.state == DeploymentState::Running || i < at {
                "done"
            } else if i == at && failed {
                "failed"
            } else if i == at {
                "current"
            } else {
                "todo"
            },
        })
        .collect()
}

async fn progress_html(
    state: &AppState,
    ctx: &Ctx,
    id: i64,
) -> Result<(DeploymentRow, String, String), WebError> {
    let d = state
        .store
        .deployment(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    let app_name = state
        .catalog
        .recipes
        .get(&d.slug)
        .map(|r| r.manifest.name.clone())
        .unwrap_or_else(|| d.slug.clone());
    let actions = state.store.actions(id).await?;
    // The furthest step reached: the last in-flight state recorded, or where it failed.
    let reached = if STEPS.contains(&d.state) {
        d.state
    } else {
        furthest_step(&state.store.steps(id).await?)
    };
    // A move is recorded as running on its new device before its old copy is removed: the
    // page follows it to the end.
    let live = !matches!(
        d.state,
        DeploymentState::Running | DeploymentState::RolledBack
    ) || (moving(&d) && d.state == DeploymentState::Running && d.progress < 100);
    let recipe = state.catalog.recipes.get(&d.slug);
    let health_timeout = match recipe {
        Some(r) => state.deployer.health_timeout(r),
        None => state.deployer.config.health_timeout,
    };
    let eta = time_left(&d, now_unix(), health_timeout.as_secs());
    let app = state.store.app(d.slug.clone()).await?;
    let url = app.as_ref().map(|a| a.url.clone()).unwrap_or_default();
    let first_run = match (recipe, &app) {
        (Some(r), Some(a))
            if d.state == DeploymentState::Running && !backing(&d) && !moving(&d) =>
        {
            Some(super::apps::FirstRun::new(
                r,
                &a.url,
                &a.settings,
                state.deployer.account_made(a).await?,
            ))
        }
        _ => None,
    };
    let html = ProgressTemplate {
        d: &d,
        backing: backing(&d),
        moving: moving(&d),
        app_name: app_name.clone(),
        heading: heading(&d, &app_name),
        words: state_words(&d),
        eta,
        live,
        url,
        steps: if backing(&d) {
            backing_steps(&d)
        } else if moving(&d) {
            move_steps(&d)
        } else {
            step_views(&d, reached)
        },
        advanced: advanced(ctx),
        actions,
        env_keys: serde_json::from_str(&d.env_keys).unwrap_or_default(),
        first_run,
    }
    .render()?;
    Ok((d, app_name, html))
}

/// Where the step stands in time, in words, for after the step's name: an estimate only where
/// there is something to measure (a download's pace), the known limit where Homelab gives up
/// (the health check), and otherwise what is usual, saying so once a step runs long. Never
/// "0 min left".
fn time_left(d: &DeploymentRow, now: i64, health_timeout: u64) -> String {
    use crate::units::human_duration;
    // Rows from before the state clock existed count from the deployment's start.
    let since = if d.state_at > 0 {
        d.state_at
    } else {
        d.started_at
    };
    let in_step = (now - since).max(0) as u64;
    let long = "taking longer than usual";
    // Reading or writing an app's data takes as long as there is data: nothing to promise.
    if (d.kind == "backup" && d.state == DeploymentState::Starting)
        || (d.kind == "restore" && d.state == DeploymentState::Pulling)
        || (moving(d) && move_step(d) == 1)
    {
        return "how long depends on how much data there is".into();
    }
    match d.state {
        DeploymentState::Validating
        | DeploymentState::Preparing
        | DeploymentState::Naming
        | DeploymentState::Securing
        | DeploymentState::Configuring
        | DeploymentState::Failed
        | DeploymentState::RollingBack => {
            if in_step > 20 {
                long.into()
            } else {
                "a few seconds".into()
            }
        }
        DeploymentState::Pulling => {
            // Downloads run from 20 % to 60 % of the bar.
            let done = (d.progress - 20).clamp(0, 40) as u64;
            if done < 2 || in_step < 3 {
                return "how long depends on your internet connection".into();
            }
            let left = in_step * (40 - done) / done;
            if left < 60 {
                "less than a minute left".into()
            } else {
                format!("about {} left", human_duration(left - left % 60))
            }
        }
        DeploymentState::Starting => {
            if in_step > 60 {
                long.into()
            } else {
                "usually under a minute".into()
            }
        }
        DeploymentState::HealthCheck => {
            let left = health_timeout.saturating_sub(in_step);
            if in_step < 30 {
                "usually under a minute".into()
            } else {
                format!(
                    "Homelab waits {} more at most",
                    human_duration(left.max(1).div_ceil(10) * 10)
                )
            }
        }
        DeploymentState::Running
        | DeploymentState::RolledBack
        | DeploymentState::Removing
        | DeploymentState::Done => String::new(),
    }
}

/// The page heading for where a deployment got to.
fn heading(d: &DeploymentRow, app: &str) -> String {
    let device = &d.device_name;
    match d.kind.as_str() {
        "backup" => {
            return match d.state {
                DeploymentState::Running => format!("{app} is backed up"),
                s if s.went_wrong() => format!("Backing up {app} failed"),
                _ => format!("Backing up {app} on {device}"),
            };
        }
        "restore" => {
            return match d.state {
                DeploymentState::Running => format!("{app} is restored"),
                DeploymentState::RolledBack => format!("{app} was not restored"),
                s if s.went_wrong() => format!("Restoring {app} failed"),
                _ => format!("Restoring {app} on {device}"),
            };
        }
        _ => {}
    }
    if moving(d) {
        return match d.state {
            DeploymentState::Running if d.progress >= 100 => format!("{app} moved to {device}"),
            DeploymentState::RolledBack => format!("{app} was not moved: it stays where it was"),
            s if s.went_wrong() => format!("Moving {app} to {device} failed"),
            _ => format!("Moving {app} to {device}"),
        };
    }
    if d.kind == "move-db" {
        return match d.state {
            DeploymentState::Running => format!("{app} now keeps its data in the shared database"),
            DeploymentState::RolledBack => format!("{app} keeps its own database"),
            s if s.went_wrong() => format!("Moving {app}'s data on {device} failed"),
            _ => format!("Moving {app}'s data into the shared database on {device}"),
        };
    }
    let update = d.kind == "update";
    match (d.state, update) {
        (DeploymentState::Running, false) => format!("{app} is running on {device}"),
        (DeploymentState::Running, true) => format!("{app} was updated on {device}"),
        (DeploymentState::RolledBack, false) => format!("{app} was not installed on {device}"),
        (DeploymentState::RolledBack, true) => format!("{app} was not updated on {device}"),
        (s, false) if s.went_wrong() => format!("Installing {app} on {device} failed"),
        (s, true) if s.went_wrong() => format!("Updating {app} on {device} failed"),
        (_, false) => format!("Installing {app} on {device}"),
        (_, true) => format!("Updating {app} on {device}"),
    }
}

/// The journal's last step name mapped to the state it belongs to.
fn furthest_step(steps: &[crate::store::StepRow]) -> DeploymentState {
    match steps.last().map(|s| s.step.as_str()) {
        Some("secrets" | "files") => DeploymentState::Preparing,
        Some("containers") => DeploymentState::Starting,
        Some("record") => DeploymentState::HealthCheck,
        _ => DeploymentState::Validating,
    }
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let (d, app_name, progress) = progress_html(&state, &ctx, id).await?;
    let partial = DeploymentPage {
        id: d.id,
        app_name: app_name.clone(),
        progress,
    }
    .render()?;
    let (section, verb) = match d.kind.as_str() {
        "backup" => (Section::Backups, "Backing up"),
        "restore" => (Section::Backups, "Restoring"),
        "move" => (Section::Apps, "Moving"),
        _ => (Section::Apps, "Deploying"),
    };
    page(&ctx, section, &format!("{verb} {app_name}"), partial)
}

pub async fn progress(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let (_, _, html) = progress_html(&state, &ctx, id).await?;
    Ok(Html(html).into_response())
}

pub async fn action(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((slug, action)): Path<(String, String)>,
) -> Result<Response, WebError> {
    if action == "update" {
        let id = actions::apps::update(&state, &slug).await?;
        return go_to(&ctx, &format!("/deployments/{id}"));
    }
    if action == actions::apps::MOVE_TO_SHARED {
        let id = actions::apps::move_to_shared(&state, &slug).await?;
        return go_to(&ctx, &format!("/deployments/{id}"));
    }
    let action = Lifecycle::parse(&action).ok_or_else(WebError::not_found)?;
    actions::apps::lifecycle(&state, &ctx, &slug, action).await?;
    go_to(&ctx, &format!("/apps/{slug}"))
}

#[derive(Deserialize)]
pub struct RemoveForm {
    delete_data: Option<String>,
    forget: Option<String>,
}

pub async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    axum::Form(form): axum::Form<RemoveForm>,
) -> Result<Response, WebError> {
    let how = Removal::from_choices(form.forget.is_some(), form.delete_data.is_some());
    actions::apps::remove(&state, &slug, how).await?;
    go_to(&ctx, &format!("/apps/{slug}"))
}

#[derive(Deserialize)]
pub struct LogsQuery {
    #[serde(default)]
    fragment: bool,
}

#[derive(Template)]
#[template(path = "pages/app_logs.html")]
struct LogsPage<'a> {
    slug: &'a str,
    app_name: &'a str,
    lines: &'a str,
    fragment: bool,
}

/// The last lines of an app's logs; the page re-fetches them every few seconds (live follow).
pub async fn logs(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, WebError> {
    let lines = state.deployer.logs(&slug, 300).await?;
    let app_name = state
        .catalog
        .recipes
        .get(&slug)
        .map(|r| r.manifest.name.clone())
        .unwrap_or_else(|| slug.clone());
    let html = LogsPage {
        slug: &slug,
        app_name: &app_name,
        lines: &lines,
        fragment: q.fragment,
    }
    .render()?;
    if q.fragment {
        return Ok(Html(html).into_response());
    }
    page(&ctx, Section::Apps, &format!("{app_name} logs"), html)
}

#[derive(Template)]
#[template(path = "partials/app_secrets.html")]
struct SecretsTemplate {
    secrets: Vec<(String, String)>,
}

/// Reveals an app's generated secrets (e.g. an admin token) to the signed-in owner; a POST so
/// it needs the CSRF token, and audited.
pub async fn secrets(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let secrets = actions::apps::reveal_secrets(&state, &ctx, &slug).await?;
    Ok(Html(SecretsTemplate { secrets }.render()?).into_response())
}

#[derive(Template)]
#[template(path = "partials/app_sign_in.html")]
struct SignInTemplate {
    user: String,
    password: String,
}

/// Reveals the account Homelab made for the owner; a POST (CSRF-checked) and audited.
/// "Try again" for an app whose name could not be set up on the DNS.
pub async fn retry_name(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    actions::apps::retry_name(&state, &ctx, &slug).await?;
    go_to(&ctx, &format!("/apps/{slug}"))
}

#[derive(Deserialize)]
pub struct RenameForm {
    label: String,
}

/// A new name for a deployed app.
pub async fn rename(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    axum::Form(form): axum::Form<RenameForm>,
) -> Result<Response, WebError> {
    actions::apps::rename(&state, &ctx, &slug, &form.label).await?;
    go_to(&ctx, &format!("/apps/{slug}"))
}

pub async fn sign_in(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let (user, password) = actions::apps::reveal_sign_in(&state, &ctx, &slug)
        .await?
        .ok_or_else(WebError::not_found)?;
    Ok(Html(SignInTemplate { user, password }.render()?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: DeploymentState, progress: i64, in_step: i64) -> (DeploymentRow, i64) {
        let now = 1_000_000;
        let d = DeploymentRow {
            id: 1,
            slug: "vaultwarden".into(),
            kind: "deploy".into(),
            device_id: 1,
            device_name: "Server 2".into(),
            state,
            progress,
            message: String::new(),
            error: None,
            placement: "[]".into(),
            request: "{}".into(),
            compose: String::new(),
            env_keys: "[]".into(),
            started_at: now - 600,
            finished_at: None,
            state_at: now - in_step,
        };
        (d, now)
    }

    /// (state, progress, seconds in the step, the words after the step's name)
    #[test]
    fn time_left_is_honest() {
        use DeploymentState as S;
        let cases = [
            (S::Validating, 0, 2, "a few seconds"),
            (S::Validating, 0, 40, "taking longer than usual"),
            (
                S::Pulling,
                20,
                1,
                "how long depends on your internet connection",
            ),
            (S::Pulling, 30, 60, "about 3 min left"), // a quarter in a minute: three to go
            (S::Pulling, 58, 20, "less than a minute left"),
            (S::Starting, 70, 10, "usually under a minute"),
            // The cable-pull stall: never "0 min left".
            (S::Starting, 70, 47, "usually under a minute"),
            (S::Starting, 70, 90, "taking longer than usual"),
            (S::HealthCheck, 90, 5, "usually under a minute"),
            (S::HealthCheck, 95, 60, "Homelab waits 2 min more at most"),
            (S::HealthCheck, 99, 179, "Homelab waits 10 s more at most"),
            (S::Running, 100, 1, ""),
            (S::RolledBack, 100, 1, ""),
        ];
        for (state, progress, in_step, words) in cases {
            let (d, now) = row(state, progress, in_step);
            assert_eq!(
                time_left(&d, now, 180),
                words,
                "{state:?} {progress} {in_step}"
            );
        }
    }

    #[test]
    fn backups_and_restores_read_as_themselves() {
        use DeploymentState as S;
        let (mut d, now) = row(S::Starting, 40, 300);
        d.kind = "backup".into();
        assert_eq!(state_words(&d), "Backing up");
        assert_eq!(
            time_left(&d, now, 180),
            "how long depends on how much data there is"
        );
        let steps = backing_steps(&d);
        let marks: Vec<_> = steps.iter().map(|s| (s.label, s.status)).collect();
        assert_eq!(
            marks,
            [
                ("Checking", "done"),
                ("Preparing", "done"),
                ("Backing up", "current"),
                ("Backed up", "todo")
            ]
        );
        d.state = S::Running;
        assert_eq!(state_words(&d), "Backed up");
        assert!(backing_steps(&d).iter().all(|s| s.status == "done"));
        d.state = S::RolledBack;
        assert_eq!(state_words(&d), "Not backed up");
        assert!(
            backing_steps(&d).is_empty(),
            "the message says what went wrong"
        );
        d.kind = "restore".into();
        assert_eq!(state_words(&d), "Not restored");
        d.state = S::HealthCheck;
        assert_eq!(state_words(&d), "Waiting for the app to answer");
        d.kind = "deploy".into();
        d.state = S::Starting;
        assert_eq!(state_words(&d), "Starting the app");
    }

    /// A move's states repeat (the old device's backup, then the new device's start): its
    /// step is read from the bar too, and it is followed past "running" to its end.
    #[test]
    fn moves_read_as_themselves() {
        use DeploymentState as S;
        let (mut d, now) = row(S::Starting, 20, 30);
        d.kind = "move".into();
        let current = |d: &DeploymentRow| {
            move_steps(d)
                .iter()
                .find(|s| s.status == "current")
                .map(|s| s.label)
        };
        assert_eq!(current(&d), Some("Backing up its data"));
        assert_eq!(state_words(&d), "Backing up its data");
        assert_eq!(
            time_left(&d, now, 180),
            "how long depends on how much data there is"
        );
        for (state, progress, step) in [
            (S::Validating, 0, "Checking"),
            (S::Preparing, 5, "Backing up its data"),
            (S::Preparing, 40, "Setting it up with its data"),
            (S::Pulling, 20, "Setting it up with its data"),
            (S::Starting, 75, "Starting it there"),
            (S::HealthCheck, 90, "Waiting for it to answer"),
            (S::Running, 95, "Removing the old copy"),
        ] {
            d.state = state;
            d.progress = progress;
            assert_eq!(current(&d), Some(step), "{state:?} {progress}");
        }
        d.progress = 100;
        assert_eq!(current(&d), None);
        assert!(move_steps(&d).iter().all(|s| s.status == "done"));
        assert_eq!(state_words(&d), "Moved");
        assert_eq!(heading(&d, "Vaultwarden"), "Vaultwarden moved to Server 2");
        d.state = S::RolledBack;
        assert!(
            move_steps(&d).is_empty(),
            "the message says what went wrong"
        );
        assert_eq!(state_words(&d), "Not moved");
    }

    #[test]
    fn heading_follows_the_outcome() {
        use DeploymentState as S;
        for (state, kind, words) in [
            (S::Starting, "deploy", "Installing Vaultwarden on Server 2"),
            (S::Running, "deploy", "Vaultwarden is running on Server 2"),
            (
                S::RollingBack,
                "deploy",
                "Installing Vaultwarden on Server 2 failed",
            ),
            (
                S::RolledBack,
                "deploy",
                "Vaultwarden was not installed on Server 2",
            ),
            (S::Pulling, "update", "Updating Vaultwarden on Server 2"),
            (S::Running, "update", "Vaultwarden was updated on Server 2"),
            (
                S::RolledBack,
                "update",
                "Vaultwarden was not updated on Server 2",
            ),
            (S::Starting, "backup", "Backing up Vaultwarden on Server 2"),
            (S::Running, "backup", "Vaultwarden is backed up"),
            (S::RolledBack, "backup", "Backing up Vaultwarden failed"),
            (S::Pulling, "restore", "Restoring Vaultwarden on Server 2"),
            (S::Running, "restore", "Vaultwarden is restored"),
            (S::RolledBack, "restore", "Vaultwarden was not restored"),
            (S::Pulling, "move", "Moving Vaultwarden to Server 2"),
            (
                S::RolledBack,
                "move",
                "Vaultwarden was not moved: it stays where it was",
            ),
        ] {
            let (mut d, _) = row(state, 50, 1);
            d.kind = kind.into();
            assert_eq!(heading(&d, "Vaultwarden"), words);
        }
    }
}
