//! The pool summary on the dashboard: the homelab as one system (totals over reachable
//! devices), then every device's card.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};

use super::{cards_now, pct};
use crate::devices::board::Entry;
use crate::devices::facts::Facts;
use crate::units::human_bytes;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Template)]
#[template(path = "partials/pool.html")]
struct Pool<'a> {
    total: usize,
    online: usize,
    offline: usize,
    degraded: usize,
    ram_total: String,
    ram_used: String,
    ram_pct: u64,
    disk_total: String,
    disk_used: String,
    disk_pct: u64,
    cores: u32,
    load_pct: u64,
    load_pct_bar: u64,
    apps: u64,
    cards: &'a str,
    start: String,
    /// Advanced mode names RAM, cores and load; Basic says memory, storage and "busy".
    advanced: bool,
}

/// The first-run list, ticked as the owner goes (it lives in the pool's live part, so an
/// install or a new device ticks it at once).
#[derive(Template)]
#[template(path = "partials/getting_started.html")]
struct GettingStarted<'a> {
    username: &'a str,
    has_devices: bool,
    /// Apps installed, whatever their state.
    apps: usize,
}

/// The homelab as one system: totals over reachable devices, then every device's card.
/// Returns the HTML and the number of devices.
pub async fn pool_html(state: &AppState, ctx: &Ctx) -> Result<(String, usize), WebError> {
    let (board, cards) = cards_now(state, ctx).await?;
    fn state_of(e: &Entry) -> Option<&str> {
        e.status.as_ref().map(|s| s.state.as_str())
    }
    let reachable = |e: &&Entry| matches!(state_of(e), Some("online" | "degraded"));
    let live: Vec<&Facts> = board
        .entries
        .iter()
        .filter(reachable)
        .filter_map(|e| e.facts.as_ref())
        .collect();
    let sum = |f: fn(&Facts) -> u64| live.iter().map(|x| f(x)).sum::<u64>();
    let (ram_total, ram_avail) = (sum(|f| f.mem_total), sum(|f| f.mem_available));
    let (disk_total, disk_free) = (sum(|f| f.disk_total), sum(|f| f.disk_free));
    let cores: u32 = live.iter().map(|f| f.cores).sum();
    let load: f64 = live.iter().map(|f| f.load[0]).sum();
    let load_pct = if cores == 0 {
        0
    } else {
        (load / cores as f64 * 100.0).round() as u64
    };
    let count = |states: &[&str]| {
        board
            .entries
            .iter()
            .filter(|e| state_of(e).is_some_and(|s| states.contains(&s)))
            .count()
    };
    let installed = state.store.apps().await?;
    let start = GettingStarted {
        username: &ctx.user()?.username,
        has_devices: !board.entries.is_empty(),
        apps: installed.len(),
    }
    .render()?;
    let html = Pool {
        total: board.entries.len(),
        online: count(&["online", "degraded"]),
        offline: count(&["offline", "blocked"]),
        degraded: count(&["degraded"]),
        ram_total: human_bytes(ram_total),
        ram_used: human_bytes(ram_total.saturating_sub(ram_avail)),
        ram_pct: pct(ram_total.saturating_sub(ram_avail), ram_total),
        disk_total: human_bytes(disk_total),
        disk_used: human_bytes(disk_total.saturating_sub(disk_free)),
        disk_pct: pct(disk_total.saturating_sub(disk_free), disk_total),
        cores,
        load_pct,
        load_pct_bar: load_pct.min(100),
        // Apps Homelab deployed and finds running (containers of other tools are not apps).
        apps: installed
            .iter()
            .filter(|a| a.state == crate::deploy::RunState::Running)
            .count() as u64,
        cards: if board.entries.is_empty() { "" } else { &cards },
        start,
        advanced: super::advanced(ctx),
    }
    .render()?;
    Ok((html, board.entries.len()))
}

pub async fn pool(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    Ok(Html(pool_html(&state, &ctx).await?.0).into_response())
}
