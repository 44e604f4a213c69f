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
    /// "Sharing databases saves 1.4 GB of RAM", with how it is worked out (None while no
    /// shared database serves two or more apps' worth).
    sharing: Option<(String, String)>,
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
    /// Places backups go (set up on the Backups page).
    backup_destinations: usize,
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
        backup_destinations: state.store.backup_destinations().await?.len(),
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
        sharing: sharing_words(state).await?,
    }
    .render()?;
    Ok((html, board.entries.len()))
}

pub async fn pool(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    Ok(Html(pool_html(&state, &ctx).await?.0).into_response())
}

/// What sharing databases saves, from the shared instances' last measured memory against
/// what the same apps' own database containers measured in the lab (`pool::saved_mib`).
async fn sharing_words(state: &AppState) -> Result<Option<(String, String)>, WebError> {
    let (saved_mib, instances, apps) = state.deployer.sharing_saves().await?;
    if saved_mib < 1.0 {
        return Ok(None);
    }
    let words = format!(
        "Sharing databases saves {} of memory",
        human_bytes((saved_mib * 1024.0 * 1024.0) as u64)
    );
    let how = format!(
        "{apps} {} keep their data in {instances} shared database{}. Each would otherwise keep \
         a database of its own running: {} for PostgreSQL and {} for MariaDB, as measured idle \
         in Homelab's test lab. The saving is that, less the memory the shared ones use now.",
        if apps == 1 { "app" } else { "apps" },
        if instances == 1 { "" } else { "s" },
        human_bytes(
            (crate::pool::separate_baseline_mib(crate::pool::Engine::Postgres) * 1048576.0) as u64
        ),
        human_bytes(
            (crate::pool::separate_baseline_mib(crate::pool::Engine::Mariadb) * 1048576.0) as u64
        ),
    );
    Ok(Some((words, how)))
}
