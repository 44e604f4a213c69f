//! The Network page: a frame of three panels, each loaded (and refreshed) by its own route so
//! each part of the network can be slow or unreachable without holding up the others:
//! the apps' names (`names`), the DNS server (`network_dns`: AdGuard Home) and the router
//! (`network_router`: OPNsense, read-only).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{Section, page};
use crate::dns::public::PublicDomain;
use crate::dns::records::Provider;
use crate::store::UiMode;
use crate::web::context::Ctx;
use crate::web::error::WebError;
use crate::web::{AppState, actions, paths};

#[derive(Template)]
#[template(path = "pages/network.html")]
struct Network {
    names_path: &'static str,
    dns_path: &'static str,
    router_path: &'static str,
}

pub async fn show(ctx: Ctx) -> Result<Response, WebError> {
    let partial = Network {
        names_path: paths::NETWORK_NAMES,
        dns_path: paths::NETWORK_DNS,
        router_path: paths::NETWORK_ROUTER,
    }
    .render()?;
    page(&ctx, Section::Network, "Network", partial)
}

/// One app's name on the panel.
struct NameLine {
    slug: String,
    app: String,
    name: String,
    device: String,
    answer: String,
    provider: &'static str,
    /// Why the record is not in place (empty when it is).
    trouble: String,
    valid_until: String,
    /// The public authority whose certificate the proxy keeps up to date for this name (empty:
    /// the homelab's own certificate).
    authority: String,
    /// What is wrong with its certificate (not come yet, or a renewal failed), or empty.
    cert_trouble: String,
    /// What the box found when it looked the name up and connected to it, in words; and
    /// whether all was right.
    found: String,
    found_ok: bool,
}

/// Checks of every name, kept a little while: many open pages must not multiply the lookups
/// (each check is bounded, ~5 s at most, and runs in parallel with the others).
/// (name, what was found, all right)
type Found = Vec<(String, String, bool)>;
static CHECKS: tokio::sync::Mutex<Option<(std::time::Instant, Found)>> =
    tokio::sync::Mutex::const_new(None);
/// How long a check result is shown before names are checked again.
const CHECK_FRESH: std::time::Duration = std::time::Duration::from_secs(20);
/// At most this many names are checked per panel load (the rest say "not checked").
const MAX_CHECKS: usize = 100;

async fn checked(state: &AppState, rows: &[crate::store::NameRow]) -> Vec<(String, String, bool)> {
    let mut cache = CHECKS.lock().await;
    if let Some((at, found)) = cache.as_ref()
        && at.elapsed() < CHECK_FRESH
        && rows
            .iter()
            .all(|r| found.iter().any(|(n, _, _)| *n == r.name))
    {
        return found.clone();
    }
    let records = state.deployer.records();
    // A name under the owner's public domain carries a public authority's certificate; every
    // other name the homelab's own.
    let Ok(ours) = crate::tls::trust::Trust::only(state.deployer.ca().root_der()) else {
        return Vec::new();
    };
    let public = crate::dns::public::PublicDomain::load(&state.store).await;
    let public_trust = public.as_ref().and_then(|p| p.trust().ok());
    let found: Vec<(String, String, bool)> =
        futures_util::future::join_all(rows.iter().take(MAX_CHECKS).map(|r| {
            let trust = match (&public, &public_trust) {
                (Some(p), Some(t)) if p.covers(&r.name) => t.clone(),
                _ => ours.clone(),
            };
            async move {
                match r.answer.parse::<std::net::IpAddr>() {
                    Ok(ip) => {
                        let c = records.check(&r.name, ip, &trust).await;
                        let ok = c.ok();
                        let words = if ok {
                            "Resolves to its device and answers with a trusted certificate."
                                .to_string()
                        } else {
                            format!("{} {}", c.resolution, c.certificate)
                        };
                        (r.name.clone(), words, ok)
                    }
                    Err(_) => (r.name.clone(), "Not checked.".to_string(), false),
                }
            }
        }))
        .await;
    *cache = Some((std::time::Instant::now(), found.clone()));
    found
}

#[derive(Template)]
#[template(path = "partials/network_names.html")]
struct NamesPanel {
    names: Vec<NameLine>,
    suffix: String,
    provider: &'static str,
    advanced: bool,
    /// The owner's public domain, if any.
    public: Option<PublicDomain>,
    /// Its authority in words.
    authority: String,
    /// What the last change did, in words (empty: nothing to say).
    notice: String,
    paths: PublicPaths,
}

struct PublicPaths {
    save: &'static str,
    clear: &'static str,
}

/// Every app's name: where it points, where its record lives, whether it is in place.
pub async fn names(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    names_panel(&state, &ctx, String::new()).await
}

async fn names_panel(state: &AppState, ctx: &Ctx, notice: String) -> Result<Response, WebError> {
    let advanced = ctx.user()?.ui_mode == UiMode::Advanced;
    let public = PublicDomain::load(&state.store).await;
    let records = state.deployer.records();
    let apps = state.store.apps().await?;
    let devices = state.store.devices().await?;
    let rows = state.store.names().await?;
    let found = checked(state, &rows).await;
    let names = rows
        .into_iter()
        .map(|n| NameLine {
            found: found
                .iter()
                .find(|(name, _, _)| *name == n.name)
                .map(|(_, w, _)| w.clone())
                .unwrap_or_else(|| "Not checked.".into()),
            found_ok: found.iter().any(|(name, _, ok)| *name == n.name && *ok),
            app: apps
                .iter()
                .find(|a| a.slug == n.slug)
                .map(|a| a.name.clone())
                .unwrap_or_else(|| n.slug.clone()),
            device: devices
                .iter()
                .find(|d| d.id == n.device_id)
                .map(|d| d.name.clone())
                .unwrap_or_else(|| "a removed device".into()),
            provider: Provider::parse(&n.provider)
                .map(|p| p.words())
                .unwrap_or("nowhere"),
            trouble: if n.record_state == "ok" {
                String::new()
            } else {
                n.record_message.clone()
            },
            valid_until: crate::units::date_utc(n.cert_not_after),
            cert_trouble: n.cert_message.clone(),
            authority: match &public {
                Some(p) if n.cert_pem.is_empty() && p.covers(&n.name) => p.authority(),
                _ => String::new(),
            },
            slug: n.slug,
            name: n.name,
            answer: n.answer,
        })
        .collect();
    let panel = NamesPanel {
        names,
        suffix: records.suffix().await,
        provider: records.provider().await.words(),
        advanced,
        authority: public.as_ref().map(|p| p.authority()).unwrap_or_default(),
        public,
        notice,
        paths: PublicPaths {
            save: paths::NETWORK_PUBLIC,
            clear: paths::NETWORK_PUBLIC_CLEAR,
        },
    };
    Ok(Html(panel.render()?).into_response())
}

#[derive(Deserialize)]
pub struct SuffixForm {
    suffix: String,
}

/// The ending of new apps' names (existing names stay until renamed).
pub async fn set_suffix(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<SuffixForm>,
) -> Result<Response, WebError> {
    actions::network::set_suffix(&state, &ctx, &form.suffix).await?;
    names(State(state), ctx).await
}

#[derive(Deserialize)]
pub struct PublicForm {
    domain: String,
    email: String,
    #[serde(default)]
    directory: String,
    #[serde(default)]
    roots: String,
}

/// The owner's own domain on the internet, with a public authority's certificates.
pub async fn set_public(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<PublicForm>,
) -> Result<Response, WebError> {
    let said = actions::network::set_public(
        &state,
        &ctx,
        actions::network::PublicInput {
            domain: &form.domain,
            email: &form.email,
            directory: &form.directory,
            roots_pem: &form.roots,
        },
    )
    .await?;
    names_panel(&state, &ctx, said).await
}

/// Stops using the owner's own domain for new apps' names.
pub async fn clear_public(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    actions::network::clear_public(&state, &ctx).await?;
    names_panel(
        &state,
        &ctx,
        "New apps' names end in a home name again, with this homelab's certificates.".into(),
    )
    .await
}
