//! Deploying from the UI: the placement choice ("Analyzing your homelab…" → the recommendation
//! and every device's verdict, with another device selectable), the deploy form, the live
//! progress page (bar, step in words, ETA, "What I did" in Advanced mode), and the deployed
//! app's actions: start, stop, restart, logs, remove.

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

const STEPS: [DeploymentState; 7] = [
    DeploymentState::Validating,
    DeploymentState::Preparing,
    DeploymentState::Pulling,
    DeploymentState::Starting,
    DeploymentState::Configuring,
    DeploymentState::HealthCheck,
    DeploymentState::Running,
];

#[derive(Template)]
#[template(path = "partials/deploy_progress.html")]
struct ProgressTemplate<'a> {
    d: &'a DeploymentRow,
    app_name: String,
    words: &'static str,
    eta: String,
    live: bool,
    url: String,
    steps: Vec<StepView>,
    advanced: bool,
    actions: Vec<ActionRow>,
    env_keys: Vec<String>,
}

#[derive(Template)]
#[template(path = "pages/deployment.html")]
struct DeploymentPage {
    id: i64,
    slug: String,
    app_name: String,
    heading: String,
    progress: String,
}

/// Which journal step the deployment reached (for the step list).
fn step_views(d: &DeploymentRow, reached: DeploymentState) -> Vec<StepView> {
    let failed = d.state.went_wrong();
    let at = STEPS.iter().position(|s| *s == reached).unwrap_or(0);
    STEPS
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
    let live = !matches!(
        d.state,
        DeploymentState::Running | DeploymentState::RolledBack
    );
    let elapsed = (now_unix() - d.started_at).max(0);
    let eta = if live && d.progress >= 10 && d.progress < 100 {
        let left = elapsed * (100 - d.progress) / d.progress.max(1);
        super::format_duration(left.max(1) as u64)
    } else {
        String::new()
    };
    let url = state
        .store
        .app(d.slug.clone())
        .await?
        .map(|a| a.url)
        .unwrap_or_default();
    let html = ProgressTemplate {
        d: &d,
        app_name: app_name.clone(),
        words: d.state.words(),
        eta,
        live,
        url,
        steps: step_views(&d, reached),
        advanced: advanced(ctx),
        actions,
        env_keys: serde_json::from_str(&d.env_keys).unwrap_or_default(),
    }
    .render()?;
    Ok((d, app_name, html))
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
    let heading = if d.kind == "update" {
        format!("Updating {app_name} on {}", d.device_name)
    } else {
        format!("Installing {app_name} on {}", d.device_name)
    };
    let partial = DeploymentPage {
        id: d.id,
        slug: d.slug.clone(),
        app_name: app_name.clone(),
        heading,
        progress,
    }
    .render()?;
    page(
        &ctx,
        Section::Apps,
        &format!("Deploying {app_name}"),
        partial,
    )
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
