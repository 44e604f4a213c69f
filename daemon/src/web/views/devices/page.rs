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
use crate::web::{AppState, graphs};

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
            name: c.name.clone(),
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

pub async fn refresh(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let device = state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    // "Check now" skips any reconnect back-off.
    state.devices.pool.forget(id).await;
    state.devices.check(&device).await;
    device_page(&state, &ctx, id).await
}

pub async fn trust_key(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let device = state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    if state.devices.trust_new_host_key(id).await? {
        ctx.audit(
            &state,
            "device.trust_host_key",
            format!("Trusted the new identity key of “{}”", device.name),
        )
        .await?;
        // Re-read: the row now carries the newly pinned key.
        if let Some(trusted) = state.store.device(id).await? {
            state.devices.check(&trusted).await;
        }
    }
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
    let (before, after) = state.devices.edit(id, &form.name, &form.host, port).await?;
    if before != after {
        ctx.audit(
            &state,
            "device.edit",
            format!("Changed device “{}”: {before} → {after}", form.name.trim()),
        )
        .await?;
    }
    device_page(&state, &ctx, id).await
}

pub async fn change_login(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(f): Form<LoginFields>,
) -> Result<Response, WebError> {
    let (username, credential, keep_password) = f.credential()?;
    let user = username.trim().to_string();
    state
        .devices
        .change_login(id, &user, credential, keep_password)
        .await?;
    let device = state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    ctx.audit(
        &state,
        "device.login",
        format!("Changed the login of “{}” (now “{user}”)", device.name),
    )
    .await?;
    state.events.publish(crate::events::Event::Toast {
        level: crate::events::Level::Success,
        message: format!("New login for “{}” saved.", device.name),
    });
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
    let name = state.devices.remove(id, form.clean.is_some()).await?;
    let how = if form.clean.is_some() {
        " and removed its key from the device"
    } else {
        ""
    };
    ctx.audit(
        &state,
        "device.remove",
        format!("Removed device “{name}”{how}"),
    )
    .await?;
    state
        .events
        .publish(crate::events::Event::DeviceStatus { device_id: id });
    go_to(&ctx, "/devices")
}
