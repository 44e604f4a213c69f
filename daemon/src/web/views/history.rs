//! Settings → History (each change to the homelab's setup, what it changed, "Revert to
//! here") and Settings → Export and import (the configuration file).

use askama::Template;
use axum::Form;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{Section, format_time};
use crate::desired::{Change, Step};
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::actions::history as act;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Revisions listed on the page (the store keeps up to `store::desired::REVISIONS_KEEP`).
const SHOWN: i64 = 100;

pub struct RevisionRow {
    pub id: i64,
    pub when: String,
    pub actor: String,
    pub what: String,
}

/// A revision's words as the mode shows them: Basic mode leaves logins and addresses (the
/// audit's bracketed detail) to Advanced, as the Activity list does.
fn shown_what(ctx: &Ctx, what: String) -> Result<String, WebError> {
    Ok(if super::backups::advanced(ctx)? {
        what
    } else {
        super::plain_detail(&what)
    })
}

fn rows(ctx: &Ctx, revisions: Vec<crate::store::Revision>) -> Result<Vec<RevisionRow>, WebError> {
    revisions
        .into_iter()
        .map(|r| {
            Ok(RevisionRow {
                id: r.id,
                when: format_time(r.at),
                actor: r.actor,
                what: shown_what(ctx, r.what)?,
            })
        })
        .collect()
}

/// A change as the pages show it.
pub struct ChangeView {
    pub area: &'static str,
    pub words: String,
    /// Set when a revert leaves it to the owner: what to do.
    pub by_hand: Option<String>,
}

fn views(changes: Vec<Change>) -> Vec<ChangeView> {
    changes
        .into_iter()
        .map(|c| ChangeView {
            area: c.area,
            by_hand: match c.step {
                Step::ByHand(how) => Some(how),
                _ => None,
            },
            words: c.words,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "pages/history.html")]
struct HistoryPage {
    rows: Vec<RevisionRow>,
}

#[derive(Template)]
#[template(path = "partials/history_list.html")]
struct HistoryList {
    rows: Vec<RevisionRow>,
}

pub async fn show(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let rows = rows(&ctx, act::revisions(&state, SHOWN).await?)?;
    super::page(
        &ctx,
        Section::Settings,
        "History",
        HistoryPage { rows }.render()?,
    )
}

/// The list alone, for its live refresh (every audit record may be a new revision).
pub async fn list(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let rows = rows(&ctx, act::revisions(&state, SHOWN).await?)?;
    Ok(Html(HistoryList { rows }.render()?).into_response())
}

#[derive(Template)]
#[template(path = "pages/revision.html")]
struct RevisionPage {
    id: i64,
    when: String,
    actor: String,
    what: String,
    changed: Vec<ChangeView>,
    revert: Vec<ChangeView>,
    /// How many of `revert` a revert makes itself.
    automatic: usize,
}

pub async fn revision(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let v = act::revision(&state, id).await?;
    let revert = views(v.revert);
    let page = RevisionPage {
        id,
        when: format_time(v.revision.at),
        actor: v.revision.actor,
        what: shown_what(&ctx, v.revision.what)?,
        changed: views(v.changed),
        automatic: revert.iter().filter(|c| c.by_hand.is_none()).count(),
        revert,
    };
    super::page(&ctx, Section::Settings, "A change", page.render()?)
}

#[derive(Template)]
#[template(path = "partials/revert_result.html")]
struct RevertResult {
    made: Vec<String>,
    by_hand: Vec<(String, String)>,
    failed: Vec<(String, String)>,
}

pub async fn revert(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let r = act::revert(&state, &ctx, id).await?;
    Ok(Html(
        RevertResult {
            made: r.made,
            by_hand: r.by_hand,
            failed: r.failed,
        }
        .render()?,
    )
    .into_response())
}

#[derive(Template)]
#[template(path = "pages/configuration.html")]
struct ConfigPage<'a> {
    csrf: &'a str,
    min_len: usize,
    export_error: Option<String>,
    /// The import panel's fields (`partials/import_panel.html` is included).
    waiting: bool,
    error: Option<String>,
    preview: Option<PreviewView>,
    done: Option<String>,
}

async fn config_page(
    state: &AppState,
    ctx: &Ctx,
    error: Option<String>,
) -> Result<Response, WebError> {
    let user = ctx.user()?;
    let page = ConfigPage {
        csrf: &user.csrf_token,
        min_len: crate::deploy::MIN_PASSPHRASE,
        export_error: error,
        waiting: state.pending_import.waiting(),
        error: None,
        preview: None,
        done: None,
    };
    super::page(ctx, Section::Settings, "Export and import", page.render()?)
}

pub async fn configuration(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    config_page(&state, &ctx, None).await
}

#[derive(Deserialize)]
pub struct ExportForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    confirm: String,
}

/// The file itself, as a download named by the day; a refusal shows the page again with why.
pub async fn export(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ExportForm>,
) -> Result<Response, WebError> {
    match act::export(
        &state,
        &ctx,
        Some(Secret::from_string(form.password)),
        Secret::from_string(form.passphrase),
        Secret::from_string(form.confirm),
    )
    .await
    {
        Ok(bytes) => Ok(file_response(bytes)),
        Err(e) if e.status.is_client_error() => {
            let mut page = config_page(&state, &ctx, Some(e.message)).await?;
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(page)
        }
        Err(e) => Err(e),
    }
}

/// The configuration file as a download (`homelab-configuration-2026-12-07.json`).
pub fn file_response(bytes: Vec<u8>) -> Response {
    let day = chrono::Local::now().format("%Y-%m-%d");
    (
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"homelab-configuration-{day}.json\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response()
}

/// Reads a request body up to the largest configuration file, with the fix when it is more.
pub async fn read_file(body: Body) -> Result<Vec<u8>, WebError> {
    let limit = crate::desired::export::MAX_FILE;
    axum::body::to_bytes(body, limit)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| {
            WebError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "This file is larger than a configuration can be ({} MB at most): choose the file Homelab exported.",
                    limit / (1024 * 1024)
                ),
            )
        })
}

/// The uploaded file (its bytes as they are, like an update file), kept for its passphrase.
pub async fn upload(State(state): State<AppState>, body: Body) -> Result<Response, WebError> {
    act::upload(&state, read_file(body).await?).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"ok": true})),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "partials/import_panel.html")]
struct ImportPanel {
    waiting: bool,
    min_len: usize,
    error: Option<String>,
    preview: Option<PreviewView>,
    done: Option<String>,
}

struct PreviewView {
    exported: String,
    homelab: String,
    changes: Vec<ChangeView>,
    refused: Option<String>,
}

impl ImportPanel {
    fn new(state: &AppState) -> ImportPanel {
        ImportPanel {
            waiting: state.pending_import.waiting(),
            min_len: crate::deploy::MIN_PASSPHRASE,
            error: None,
            preview: None,
            done: None,
        }
    }
}

pub async fn import_panel(State(state): State<AppState>) -> Result<Response, WebError> {
    Ok(Html(ImportPanel::new(&state).render()?).into_response())
}

#[derive(Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    passphrase: String,
}

pub async fn preview(
    State(state): State<AppState>,
    Form(form): Form<OpenForm>,
) -> Result<Response, WebError> {
    let mut panel = ImportPanel::new(&state);
    match act::preview(&state, Secret::from_string(form.passphrase)).await {
        Ok(p) => {
            panel.preview = Some(PreviewView {
                exported: format_time(p.exported_at),
                homelab: p.homelab,
                changes: views(p.changes),
                refused: p.refused,
            })
        }
        Err(e) if e.status.is_client_error() => panel.error = Some(e.message),
        Err(e) => return Err(e),
    }
    Ok(Html(panel.render()?).into_response())
}

pub async fn apply(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let mut panel = ImportPanel::new(&state);
    match act::apply(&state, &ctx).await {
        Ok(words) => panel.done = Some(words),
        Err(e) if e.status.is_client_error() => {
            panel.waiting = state.pending_import.waiting();
            panel.error = Some(e.message);
        }
        Err(e) => return Err(e),
    }
    Ok(Html(panel.render()?).into_response())
}
