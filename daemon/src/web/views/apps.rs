//! The app catalog: a searchable grid by category, and each app's page with its requirements
//! with the deploy form (where it would go, with reasons, and its settings) or, once deployed,
//! its state, link, actions and backups.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{Section, page};
use crate::catalog::Recipe;
use crate::deploy::{DeploymentState, RunState};
use crate::units::human_bytes;
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

#[derive(Template)]
#[template(path = "pages/app.html")]
struct AppPage<'a> {
    r: &'a Recipe,
    ram_min: String,
    ram_rec: String,
    ports: String,
    /// The architectures in Basic mode's words ("most PCs, Raspberry Pi 3 and newer").
    runs_on: String,
    advanced: bool,
    deployed: Option<Deployed>,
    /// The app's latest deployment, when one exists (for "see the last attempt").
    last_deployment: Option<(i64, DeploymentState)>,
    removal: Vec<String>,
    /// An installed app's Backups card (`views::backups`), rendered.
    backups: String,
}

/// A deployed app as its page shows it.
pub struct Deployed {
    pub state: String,
    pub state_label: &'static str,
    pub badge: &'static str,
    pub message: String,
    pub url: String,
    pub device: String,
    pub app_dir: String,
    pub version: String,
    /// The catalog's newer version, when it differs from what runs.
    pub update_to: Option<String>,
    /// Why that version cannot replace this one directly, when upstream does not support it.
    pub update_refused: Option<String>,
    pub first_run: FirstRun,
    /// Its name and secure address, when it has one.
    pub name: Option<NameView>,
    /// Where it keeps its database, in one sentence (None: it has none).
    pub database: Option<String>,
    /// The shared database it uses has stopped: (device id, engine) for "Restart".
    pub restart_shared: Option<(i64, &'static str)>,
    /// It runs its own database container but could use the shared one.
    pub can_move_to_shared: bool,
}

/// An app's name as its page shows it.
pub struct NameView {
    pub name: String,
    /// The part the owner can change (`vaultwarden` of `vaultwarden.home.arpa`) and the rest.
    pub label: String,
    pub domain: String,
    /// Why the name does not lead to the app yet (the DNS could not be reached), or empty.
    pub record_message: String,
    /// Why the certificate could not be renewed (or has not come yet), or empty.
    pub cert_message: String,
    pub valid_until: String,
    /// The public authority the proxy gets this name's certificate from (empty: the
    /// homelab's own).
    pub authority: String,
    /// Where the record lives, in words.
    pub provider: &'static str,
    /// The address it points at.
    pub answer: String,
}

impl NameView {
    pub fn new(
        row: &crate::store::NameRow,
        public: Option<&crate::dns::public::PublicDomain>,
    ) -> NameView {
        let (label, domain) = row.name.split_once('.').unwrap_or((&row.name, ""));
        NameView {
            name: row.name.clone(),
            label: label.to_string(),
            domain: domain.to_string(),
            record_message: if row.record_state == "ok" {
                String::new()
            } else {
                row.record_message.clone()
            },
            cert_message: row.cert_message.clone(),
            valid_until: crate::units::date_utc(row.cert_not_after),
            authority: match public {
                Some(p) if row.cert_pem.is_empty() && p.covers(&row.name) => p.authority(),
                _ => String::new(),
            },
            provider: crate::dns::records::Provider::parse(&row.provider)
                .map(|p| p.words())
                .unwrap_or("nowhere"),
            answer: row.answer.clone(),
        }
    }
}

/// What the owner needs for the first visit of an installed app: how to sign in (the account
/// Homelab made, revealed on request) or where to finish the app's own setup, and the
/// recipe's notes. Shown on the success page and on the app's page.
pub struct FirstRun {
    pub slug: String,
    pub name: String,
    /// The user of the account Homelab made, when the recipe makes one.
    pub sign_in_user: Option<String>,
    /// The app's own first-run page, and what to do there.
    pub setup: Option<(String, String)>,
    pub notes: String,
    pub advanced_notes: String,
}

impl FirstRun {
    /// For `recipe` deployed at `url` with these settings (JSON, as stored); `account_made`:
    /// the app made its admin from the recipe's `sign_in` (`Deployer::account_made`).
    pub fn new(
        r: &crate::catalog::Recipe,
        url: &str,
        settings_json: &str,
        account_made: bool,
    ) -> FirstRun {
        let m = &r.manifest;
        let mut values = r.default_values();
        let settings: std::collections::BTreeMap<String, String> =
            serde_json::from_str(settings_json).unwrap_or_default();
        values.extend(settings);
        FirstRun {
            slug: m.slug.clone(),
            name: m.name.clone(),
            sign_in_user: m
                .sign_in
                .as_ref()
                .filter(|_| account_made)
                .and_then(|s| crate::catalog::interpolate(&s.user, &values).ok()),
            setup: m
                .setup
                .as_ref()
                .map(|s| (format!("{}{}", origin(url), s.path), s.words.clone())),
            notes: m.notes.clone(),
            advanced_notes: m.advanced_notes.clone(),
        }
    }
}

/// `scheme://host:port` of an address, without its path.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
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
    let app = state.store.app(slug.clone()).await?;
    let deployed = match &app {
        Some(a) => {
            let device = state
                .store
                .device(a.device_id)
                .await?
                .map(|d| d.name)
                .unwrap_or_default();
            let (state_label, badge) = match a.state {
                RunState::Running => ("Running", "online"),
                RunState::Starting => ("Starting", "degraded"),
                RunState::Stopped => ("Stopped", "unknown"),
                RunState::Missing => ("Missing", "offline"),
                RunState::Failed => ("Not working", "offline"),
            };
            let shared = state
                .store
                .shared_database_of(a.slug.clone(), a.device_id)
                .await?
                .and_then(|row| crate::pool::Engine::parse(&row.engine));
            let database = match shared {
                Some(engine) => Some(format!(
                    "Keeps its data in the shared {} on {device}, in a database of its own.",
                    engine.words()
                )),
                None => crate::pool::why_own(r, false),
            };
            let restart_shared = shared
                .filter(|e| a.message == crate::pool::stopped_message(*e))
                .map(|e| (a.device_id, e.as_str()));
            let can_move_to_shared = shared.is_none()
                && r.manifest.database.is_some()
                && crate::pool::movable(r).is_ok();
            Some(Deployed {
                database,
                restart_shared,
                can_move_to_shared,
                state: a.state.to_string(),
                state_label,
                badge,
                message: a.message.clone(),
                url: a.url.clone(),
                device,
                app_dir: a.app_dir.clone(),
                version: a.version.clone(),
                update_to: (a.version != r.manifest.version || a.compose != r.compose_text)
                    .then(|| r.manifest.version.clone()),
                update_refused: crate::deploy::update_refused(r, &a.version).map(|e| e.to_string()),
                first_run: FirstRun::new(
                    r,
                    &a.url,
                    &a.settings,
                    state.deployer.account_made(a).await?,
                ),
                name: match state.store.name_of(slug.clone()).await? {
                    Some(row) => Some(NameView::new(
                        &row,
                        crate::dns::public::PublicDomain::load(&state.store)
                            .await
                            .as_ref(),
                    )),
                    None => None,
                },
            })
        }
        None => None,
    };
    let removal = if app.is_some() {
        state.deployer.removal_plan(&slug).await?
    } else {
        vec![]
    };
    let backups = if app.is_some() {
        let advanced = ctx
            .user()
            .is_ok_and(|u| u.ui_mode == crate::store::UiMode::Advanced);
        super::backups::app_card_html(&state, &slug, &r.manifest.name, advanced).await?
    } else {
        String::new()
    };
    let last_deployment = state
        .store
        .deployments(Some(slug.clone()), 1)
        .await?
        .into_iter()
        .next()
        .map(|d| (d.id, d.state));
    let q = &r.manifest.requirements;
    let partial = AppPage {
        r,
        ram_min: human_bytes(q.ram_min_mb << 20),
        ram_rec: human_bytes(q.ram_recommended_mb << 20),
        ports: ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        runs_on: runs_on(&r.manifest.architectures),
        advanced: ctx
            .user()
            .map(|u| u.ui_mode == crate::store::UiMode::Advanced)
            .unwrap_or(false),
        deployed,
        last_deployment,
        removal,
        backups,
    }
    .render()?;
    page(&ctx, Section::Apps, &r.manifest.name, partial)
}

/// Which computers an app runs on, as an owner knows them rather than by architecture name.
fn runs_on(architectures: &[String]) -> String {
    let has = |a: &str| architectures.iter().any(|x| x == a);
    let mut kinds = Vec::new();
    if has("amd64") {
        kinds.push("PCs and mini PCs");
    }
    match (has("arm64"), has("armv7")) {
        (true, true) => kinds.push("Raspberry Pi 2 and newer"),
        (true, false) => kinds.push("Raspberry Pi 3 and newer (64-bit system)"),
        (false, true) => kinds.push("Raspberry Pi 2 and newer (32-bit system)"),
        (false, false) => {}
    }
    if kinds.is_empty() {
        "only some computers (Advanced mode shows which)".into()
    } else {
        kinds.join(", ")
    }
}
