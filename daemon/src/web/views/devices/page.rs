//! A device's own page: its figures, graphs and containers, "Check now", accepting a new
//! identity key, renaming or moving it, changing its login, and removing it; and its shared
//! databases (loaded after the page: restart one that stopped, remove one no app uses).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::{Section, go_to, page};
use super::{DeviceView, LoginFields, advanced, parse_port};
use crate::devices::facts::Container;
use crate::ssh::keys;
use crate::web::context::Ctx;
use crate::web::error::WebError;
use crate::web::{AppState, actions, graphs};

/// A container as listed on a device's page.
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub state: &'static str,
    pub state_label: String,
    pub project: String,
}

impl ContainerView {
    fn new(c: &Container) -> ContainerView {
        ContainerView {
            // Homelab's own infrastructure, named for what it does for the owner's apps.
            name: if c.project == crate::proxy::PROJECT {
                "Homelab's secure proxy (app names and HTTPS)".to_string()
            } else if let Some(e) = crate::pool::Engine::ALL
                .into_iter()
                .find(|e| c.project == e.project())
            {
                format!("Homelab's shared {} (your apps' data)", e.words())
            } else {
                c.name.clone()
            },
            image: c.image.clone(),
            state: if c.unhealthy {
                "degraded"
            } else if c.running {
                "online"
            } else {
                "offline"
            },
            state_label: c.status.clone(),
            project: c.project.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/device.html")]
struct DevicePage<'a> {
    containers: Option<Vec<ContainerView>>,
    d: DeviceView,
    advanced: bool,
    pending_fingerprint: Option<String>,
    host_fingerprint: String,
    mem_graph: &'a str,
    load_graph: &'a str,
    uptime_text: String,
}

async fn device_page(state: &AppState, ctx: &Ctx, id: i64) -> Result<Response, WebError> {
    let board = state.devices.board().await?;
    let entry = board.entry(id).ok_or_else(WebError::not_found)?;
    let device = &entry.device;
    let view = DeviceView::new(entry);
    let mem_total = entry.facts.as_ref().map_or(0, |f| f.mem_total);
    let graphs = graphs::for_device(state, &board, id, mem_total).await?;
    let name = view.name.clone();
    let pending_fingerprint = device
        .pending_host_key
        .as_deref()
        .and_then(|k| keys::parse_public(k).ok())
        .map(|k| keys::fingerprint(&k));
    let host_fingerprint = keys::parse_public(&device.host_key)
        .map(|k| keys::fingerprint(&k))
        .unwrap_or_default();
    let partial = DevicePage {
        // As the last poll saw them: a page load never waits for the device. Changes Homelab
        // makes (installs, start/stop, removal) re-check the device at once.
        containers: entry
            .containers
            .as_ref()
            .map(|list| list.iter().map(ContainerView::new).collect()),
        advanced: advanced(ctx),
        pending_fingerprint,
        host_fingerprint,
        mem_graph: &graphs.mem,
        load_graph: &graphs.load,
        uptime_text: entry
            .uptime_24h
            .map(|u| format!("{:.1}%", u * 100.0))
            .unwrap_or_else(|| "—".into()),
        d: view,
    }
    .render()?;
    page(ctx, Section::Devices, &name, partial)
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    device_page(&state, &ctx, id).await
}

/// "Check now": the page again once the device has answered (or not).
pub async fn refresh(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    actions::devices::check_now(&state, id).await?;
    device_page(&state, &ctx, id).await
}

pub async fn trust_key(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    actions::devices::trust_host_key(&state, &ctx, id).await?;
    device_page(&state, &ctx, id).await
}

#[derive(Deserialize)]
pub struct EditForm {
    name: String,
    host: String,
    #[serde(default)]
    port: String,
}

pub async fn edit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(form): Form<EditForm>,
) -> Result<Response, WebError> {
    let port = parse_port(&form.port)?;
    actions::devices::edit(&state, &ctx, id, &form.name, &form.host, port).await?;
    device_page(&state, &ctx, id).await
}

pub async fn change_login(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(f): Form<LoginFields>,
) -> Result<Response, WebError> {
    let (username, credential, keep_password) = f.credential()?;
    actions::devices::change_login(&state, &ctx, id, &username, credential, keep_password).await?;
    device_page(&state, &ctx, id).await
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    clean: Option<String>,
}

pub async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(form): Form<RemoveForm>,
) -> Result<Response, WebError> {
    actions::devices::remove(&state, &ctx, id, form.clean.is_some()).await?;
    go_to(&ctx, "/devices")
}

/// A shared instance as the device page shows it.
pub struct SharedView {
    pub engine: &'static str,
    pub words: &'static str,
    pub reachable: bool,
    pub running: bool,
    pub apps: Vec<(String, String)>,
    pub apps_text: String,
    pub kept: Vec<String>,
    pub kept_text: String,
    pub removable: bool,
    pub size_text: Option<String>,
    pub memory_text: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/shared_databases.html")]
struct SharedPartial {
    device_id: i64,
    advanced: bool,
    instances: Vec<SharedView>,
}

/// The device's shared databases, read live from the device (loaded after the page, so the
/// page itself never waits for the device).
pub async fn shared(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    shared_partial(&state, &ctx, id).await
}

async fn shared_partial(state: &AppState, ctx: &Ctx, id: i64) -> Result<Response, WebError> {
    state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    let list = state.deployer.shared_instances(id, true).await?;
    let instances = list
        .into_iter()
        .map(|i| SharedView {
            engine: i.engine.as_str(),
            words: i.words,
            reachable: i.reachable,
            running: i.running,
            apps_text: i
                .apps
                .iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            apps: i.apps,
            kept_text: i.kept.join(", "),
            kept: i.kept,
            removable: i.removable,
            size_text: i.size_bytes.map(crate::units::human_bytes),
            memory_text: i.memory_bytes.map(crate::units::human_bytes),
        })
        .collect();
    let html = SharedPartial {
        device_id: id,
        advanced: advanced(ctx),
        instances,
    }
    .render()?;
    Ok(axum::response::Html(html).into_response())
}

pub async fn shared_restart(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, engine)): Path<(i64, String)>,
) -> Result<Response, WebError> {
    let engine = actions::pool::engine(&engine)?;
    actions::pool::restart(&state, &ctx, id, engine).await?;
    shared_partial(&state, &ctx, id).await
}

pub async fn shared_remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, engine)): Path<(i64, String)>,
) -> Result<Response, WebError> {
    let engine = actions::pool::engine(&engine)?;
    actions::pool::remove(&state, &ctx, id, engine).await?;
    shared_partial(&state, &ctx, id).await
}
