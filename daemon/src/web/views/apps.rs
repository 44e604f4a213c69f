//! The app catalog: a searchable grid by category, and each app's page with its requirements
//! and where it would go (the placement ranking over the current devices, with reasons).

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{Section, page};
use crate::catalog::Recipe;
use crate::devices::health::{Facts, human_bytes};
use crate::placement::{Candidate, Need, Verdict, rank};
use crate::store::now_unix;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
}

pub struct Card {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: String,
}

#[derive(Template)]
#[template(path = "partials/app_grid.html")]
struct Grid {
    cards: Vec<Card>,
    q: String,
}

#[derive(Template)]
#[template(path = "pages/apps.html")]
struct AppsPage {
    categories: Vec<String>,
    category: String,
    q: String,
    grid: String,
    problems: Vec<String>,
}

fn matches(r: &Recipe, f: &Filter) -> bool {
    let m = &r.manifest;
    let q = f.q.trim().to_lowercase();
    (f.category.is_empty() || m.category == f.category)
        && (q.is_empty()
            || [&m.name, &m.description, &m.category]
                .iter()
                .any(|s| s.to_lowercase().contains(&q)))
}

fn grid_html(state: &AppState, f: &Filter) -> Result<String, WebError> {
    let mut cards: Vec<Card> = state
        .catalog
        .recipes
        .values()
        .filter(|r| matches(r, f))
        .map(|r| Card {
            slug: r.manifest.slug.clone(),
            name: r.manifest.name.clone(),
            description: r.manifest.description.clone(),
            category: r.manifest.category.clone(),
        })
        .collect();
    cards.sort_by_key(|c| c.name.to_lowercase());
    Ok(Grid {
        cards,
        q: f.q.clone(),
    }
    .render()?)
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(f): Query<Filter>,
) -> Result<Response, WebError> {
    let categories: BTreeSet<String> = state
        .catalog
        .recipes
        .values()
        .map(|r| r.manifest.category.clone())
        .collect();
    let partial = AppsPage {
        categories: categories.into_iter().collect(),
        category: f.category.clone(),
        q: f.q.clone(),
        grid: grid_html(&state, &f)?,
        problems: state
            .catalog
            .problems
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
    .render()?;
    page(&ctx, Section::Apps, "Apps", partial)
}

/// The grid alone, for the live search box and category chips.
pub async fn grid(
    State(state): State<AppState>,
    Query(f): Query<Filter>,
) -> Result<Response, WebError> {
    Ok(Html(grid_html(&state, &f)?).into_response())
}

pub async fn icon(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let r = state
        .catalog
        .recipes
        .get(&slug)
        .ok_or_else(WebError::not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        r.icon_svg.clone(),
    )
        .into_response())
}

pub struct Placement {
    pub name: String,
    pub score: u32,
    pub eligible: bool,
    pub best: bool,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "pages/app.html")]
struct AppPage<'a> {
    r: &'a Recipe,
    ram_min: String,
    ram_rec: String,
    placements: Vec<Placement>,
    ports: String,
    advanced: bool,
}

/// Current devices as placement candidates.
pub async fn candidates(state: &AppState) -> Result<Vec<Candidate>, WebError> {
    let devices = state.store.devices().await?;
    let statuses = state.store.device_statuses().await?;
    let since = now_unix() - 24 * 3600;
    let mut out = Vec::with_capacity(devices.len());
    for d in devices {
        let status = statuses.iter().find(|s| s.device_id == d.id);
        let facts: Option<Facts> = status.and_then(|s| serde_json::from_str(&s.facts).ok());
        let state_str = status.map(|s| s.state.as_str()).unwrap_or("unknown");
        let f = facts.unwrap_or_default();
        out.push(Candidate {
            id: d.id,
            name: d.name,
            online: state_str == "online" || state_str == "degraded",
            docker_ok: f.docker.is_some(),
            arch: f.arch,
            mem_available: f.mem_available,
            disk_free: f.disk_free,
            cores: f.cores,
            load1: f.load[0],
            uptime: state.store.uptime_ratio(d.id, since).await?.unwrap_or(0.0),
            used_ports: f.ports,
            apps: vec![],
        });
    }
    Ok(out)
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let r = state
        .catalog
        .recipes
        .get(&slug)
        .ok_or_else(WebError::not_found)?;
    let ports = r.host_ports(&r.default_values());
    let need = Need::from_recipe(r, ports.clone());
    let verdicts: Vec<Verdict> = rank(&need, &candidates(&state).await?);
    let placements = verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| Placement {
            name: v.name.clone(),
            score: v.score.round() as u32,
            eligible: v.eligible,
            best: i == 0 && v.eligible,
            reason: v.reason.clone(),
        })
        .collect();
    let q = &r.manifest.requirements;
    let partial = AppPage {
        r,
        ram_min: human_bytes(q.ram_min_mb << 20),
        ram_rec: human_bytes(q.ram_recommended_mb << 20),
        placements,
        ports: ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        advanced: ctx
            .user()
            .map(|u| u.ui_mode == crate::store::UiMode::Advanced)
            .unwrap_or(false),
    }
    .render()?;
    page(&ctx, Section::Apps, &r.manifest.name, partial)
}
