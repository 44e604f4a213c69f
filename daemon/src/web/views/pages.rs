//! The dashboard: the pool of devices and its apps, advice to move an app off a device that is
//! nearly full, the router's card, backups, and this box.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{Section, format_duration, page};
use crate::store::UiMode;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Template)]
#[template(path = "pages/dashboard.html")]
struct Dashboard<'a> {
    title: &'a str,
    advanced: bool,
    version: &'static str,
    schema_version: i64,
    uptime: String,
    pool: String,
    /// Suggestions to move an app off a nearly full device (store reads and placement only).
    advice: String,
    /// Certificates of app names that could not be renewed, each with its fix.
    cert_troubles: Vec<String>,
    /// Why the box's certificate could not be renewed, and what to do (None while all is well).
    cert_trouble: Option<String>,
    network_path: &'static str,
    /// The Backups card (store reads only), and where it refreshes itself.
    backups: String,
    backups_path: &'static str,
    /// After a restore from the box's own backup: what it was, until dismissed.
    restored: String,
}

pub async fn dashboard(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let user = ctx.user()?;
    let advanced = user.ui_mode == UiMode::Advanced;
    // The database was brought to this version when it was opened (a newer one is refused),
    // so the dashboard does not ask it on every load.
    let schema_version = if advanced {
        crate::store::SCHEMA_VERSION
    } else {
        0
    };
    let (pool, _) = super::devices::pool_html(&state, &ctx).await?;
    let partial = Dashboard {
        title: "Dashboard",
        advanced,
        version: crate::VERSION,
        schema_version,
        uptime: format_duration(state.started.elapsed().as_secs()),
        pool,
        advice: super::moving::advice_html(&state, advanced).await?,
        cert_troubles: state
            .store
            .names()
            .await?
            .into_iter()
            .map(|n| n.cert_message)
            .filter(|m| !m.is_empty())
            .collect(),
        cert_trouble: state.tls.renewal_trouble(),
        network_path: crate::web::paths::DASHBOARD_NETWORK,
        backups: super::backups::dashboard_html(&state).await?,
        backups_path: crate::web::paths::DASHBOARD_BACKUPS,
        restored: super::recovery::restored_html(&state).await?,
    }
    .render()?;
    page(&ctx, Section::Dashboard, "Dashboard", partial)
}
