//! A device's own page: its figures, graphs and containers, "Check now", accepting a new
//! identity key, renaming or moving it, changing its login, and removing it.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
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
