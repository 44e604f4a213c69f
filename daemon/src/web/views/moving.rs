//! Moving an installed app to another device, as the owner sees it: the page that says what a
//! move does, ranks the other devices (the best one chosen, the ones that cannot take it shown
//! with why), picks the place its data travels through (Advanced mode: an existing backup
//! instead of one made now, for when the old device is gone) and starts the move, whose
//! progress page follows; and the dashboard's advice to move an app off a device that is
//! nearly full (store reads and the placement ranking only: no device is asked anything).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{Section, go_to, page};
use crate::catalog::Recipe;
use crate::deploy::MoveRequest;
use crate::devices::facts::Facts;
use crate::store::{AppRow, UiMode, now_unix};
use crate::web::actions::backups as act;
use crate::web::context::Ctx;
use crate::web::error::WebError;
use crate::web::{AppState, paths};

/// A device is nearly full above this share of its memory or storage in use (whole per cent,
/// rounded down as its card shows it).
const FULL_PCT: u64 = 90;
/// Good backups offered as "from an existing backup" (store reads; newest first).
const BACKUPS_OFFERED: i64 = 20;
/// A typed backup id is kept for the form up to this length (a full id is 64 characters).
const SNAPSHOT_MAX: usize = 128;

fn advanced(ctx: &Ctx) -> Result<bool, WebError> {
    Ok(ctx.user()?.ui_mode == UiMode::Advanced)
}

/// An app's own address on this box ("/apps/jellyfin/move").
fn app_path(template: &str, slug: &str) -> String {
    template.replace("{slug}", slug)
}

/// The app's settings as a move judges a device by them: the port its web page is published
/// on moves out of the way on the new device when taken there (`relocate_steps` treats it as
/// the owner's to leave to Homelab, whatever its stored value), so it rules no device out.
/// Without this, an app whose port was moved at its install (stored as 8223, say) would show
/// every device where 8223 is taken as unable to take it, though the move would go ahead.
fn move_settings(r: &Recipe, stored: &str) -> BTreeMap<String, String> {
    let mut settings: BTreeMap<String, String> = serde_json::from_str(stored).unwrap_or_default();
    if let Some(port) = crate::deploy::render::movable_port(r, &BTreeMap::new()) {
        settings.remove(&port);
    }
    settings
}

/// One other device on the move page, with its verdict.
pub struct MoveChoice {
    pub device_id: i64,
    pub name: String,
    pub score: u32,
    pub eligible: bool,
    /// The placement's first choice (the "Recommended" badge).
    pub best: bool,
    /// The one selected: the one asked for (`?device=`, or the refused form's), else the best.
    pub checked: bool,
    /// What decided it, in plain words.
    pub reason: String,
    /// The figures behind it (Advanced mode only; empty in Basic).
    pub detail: String,
}

/// A place backups go, as the destination choice lists it.
pub struct DestinationChoice {
    pub id: i64,
    pub name: String,
    pub selected: bool,
}

/// A good backup of the app the box recorded (offered in Advanced mode).
pub struct BackupChoice {
    pub id: String,
    /// "2026-01-14 22:04 (3 days ago) at NAS".
    pub label: String,
}

/// What the owner chose (the refused form's choices, kept) and why it was refused.
#[derive(Default)]
struct Chosen {
    device: Option<i64>,
    destination: Option<i64>,
    snapshot: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/app_move.html")]
struct MovePage {
    slug: String,
    name: String,
    /// The device it runs on now.
    from: String,
    advanced: bool,
    csrf: String,
    app_href: String,
    action: String,
    choices: Vec<MoveChoice>,
    any_eligible: bool,
    destinations: Vec<DestinationChoice>,
    backups: Vec<BackupChoice>,
    snapshot: String,
    error: Option<String>,
    /// The Backups section's icon for the empty state (static SVG, ours).
    icon: &'static str,
}

#[derive(Deserialize, Default)]
pub struct MoveQuery {
    /// The device to preselect (the dashboard's advice names it); anything else is ignored.
    #[serde(default)]
    device: String,
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    device: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    snapshot: String,
}

/// The installed app and its recipe, or why there is nothing to move.
async fn installed<'a>(state: &'a AppState, slug: &str) -> Result<(&'a Recipe, AppRow), WebError> {
    let r = state
        .catalog
        .recipes
        .get(slug)
        .ok_or_else(WebError::not_found)?;
    let app = state.store.app(slug.to_string()).await?.ok_or_else(|| {
        WebError::new(
            StatusCode::NOT_FOUND,
            "not_deployed",
            format!(
                "{} is not installed, so there is nothing to move. Install it from its page.",
                r.manifest.name
            ),
        )
    })?;
    Ok((r, app))
}

/// The move page, with the owner's choices (none yet, or a refused form's).
async fn page_html(
    state: &AppState,
    ctx: &Ctx,
    slug: &str,
    chosen: Chosen,
) -> Result<(String, String), WebError> {
    let (r, app) = installed(state, slug).await?;
    let advanced = advanced(ctx)?;
    let name = r.manifest.name.clone();
    let from = state
        .store
        .device(app.device_id)
        .await?
        .map(|d| d.name)
        .unwrap_or_else(|| "its device".into());
    let verdicts = state
        .deployer
        .plan(slug, &move_settings(r, &app.settings))
        .await?;
    let mut choices: Vec<MoveChoice> = verdicts
        .iter()
        .filter(|v| v.device_id != app.device_id)
        .map(|v| MoveChoice {
            device_id: v.device_id,
            name: v.name.clone(),
            score: v.score().round() as u32,
            eligible: v.eligible(),
            best: false,
            checked: false,
            reason: v.reason(),
            detail: if advanced { v.detail() } else { String::new() },
        })
        .collect();
    // Eligible devices rank first: the first of them is the recommendation.
    if let Some(best) = choices.iter_mut().find(|c| c.eligible) {
        best.best = true;
    }
    let asked = chosen
        .device
        .filter(|id| choices.iter().any(|c| c.device_id == *id && c.eligible));
    for c in &mut choices {
        c.checked = match asked {
            Some(id) => c.device_id == id,
            None => c.best,
        };
    }
    let rows = state.store.backup_destinations().await?;
    let selected = chosen
        .destination
        .filter(|id| rows.iter().any(|d| d.id == *id))
        .or_else(|| rows.first().map(|d| d.id));
    let destinations: Vec<DestinationChoice> = rows
        .iter()
        .map(|d| DestinationChoice {
            id: d.id,
            name: d.name.clone(),
            selected: Some(d.id) == selected,
        })
        .collect();
    // The box's own record of good backups, so the choice works when the old device (which
    // the app's Backups card lists snapshots from) is gone.
    let backups = if advanced && !rows.is_empty() {
        let now = now_unix();
        let names: HashMap<i64, &str> = rows.iter().map(|d| (d.id, d.name.as_str())).collect();
        state
            .store
            .backup_runs(slug.to_string(), BACKUPS_OFFERED)
            .await?
            .into_iter()
            .filter(|run| run.state == "done" && !run.snapshot_id.is_empty())
            .filter_map(|run| {
                let place = names.get(&run.destination_id)?;
                let at = run.finished_at.unwrap_or(run.started_at);
                // In the box's time zone, as the Backups card shows times.
                let clock = chrono::DateTime::from_timestamp(at, 0)
                    .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M"))
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                let ago = super::backups::ago(at, now);
                Some(BackupChoice {
                    label: format!("{clock} ({ago}) at {place}"),
                    id: run.snapshot_id,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let html = MovePage {
        slug: slug.to_string(),
        name: name.clone(),
        from,
        advanced,
        csrf: ctx.user()?.csrf_token.clone(),
        app_href: app_path(paths::APP, slug),
        action: app_path(paths::APP_MOVE, slug),
        any_eligible: choices.iter().any(|c| c.eligible),
        choices,
        destinations,
        backups,
        snapshot: chosen.snapshot,
        error: chosen.error,
        icon: Section::Backups.icon(),
    }
    .render()?;
    Ok((html, format!("Move {name}")))
}

/// `GET /apps/{slug}/move`: the page (`?device=ID` preselects that device when it can take
/// the app).
pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    Query(q): Query<MoveQuery>,
) -> Result<Response, WebError> {
    let chosen = Chosen {
        device: q.device.trim().parse().ok(),
        ..Chosen::default()
    };
    let (html, title) = page_html(&state, &ctx, &slug, chosen).await?;
    page(&ctx, Section::Apps, &title, html)
}

/// A refusal the owner can act on (another device, another backup, add a destination, a
/// device that did not answer) is shown on the form; anything else is the box's own failure
/// and goes the usual way.
fn owner_can_fix(e: &WebError) -> bool {
    e.status.is_client_error() || e.status == StatusCode::BAD_GATEWAY
}

/// `POST /apps/{slug}/move`: starts the move and goes to its progress page, or shows the
/// form again with why it was refused and the choices kept.
pub async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, WebError> {
    let snapshot: String = form
        .snapshot
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(SNAPSHOT_MAX)
        .collect::<String>()
        .to_ascii_lowercase();
    let mut chosen = Chosen {
        device: form.device.trim().parse().ok(),
        destination: form.destination.trim().parse().ok(),
        snapshot: snapshot.clone(),
        error: None,
    };
    let started = match chosen.device {
        None => Err(WebError::bad_request(
            "Choose the device to move it to.".to_string(),
        )),
        Some(device_id) => {
            let req = MoveRequest {
                device_id,
                destination_id: chosen.destination,
                // Only Advanced mode shows the field; empty means a backup made now.
                snapshot: (advanced(&ctx)? && !snapshot.is_empty()).then_some(snapshot),
            };
            act::move_app(&state, &slug, req).await
        }
    };
    match started {
        Ok(id) => go_to(&ctx, &paths::DEPLOYMENT.replace("{id}", &id.to_string())),
        Err(e) if owner_can_fix(&e) && e.code != "not_found" => {
            chosen.error = Some(e.message);
            let (html, title) = page_html(&state, &ctx, &slug, chosen).await?;
            page(&ctx, Section::Apps, &title, html)
        }
        Err(e) => Err(e),
    }
}

// ---- the dashboard's advice ----

/// One suggestion: a device nearly full, and an app another device can take.
pub struct Advice {
    pub words: String,
    pub href: String,
    pub app: String,
    pub slug: String,
}

#[derive(Template)]
#[template(path = "partials/move_advice.html")]
struct AdvicePart {
    items: Vec<Advice>,
    path: &'static str,
}

/// Whole per cent of `total` in use, rounded down (as the device cards show it).
fn used_pct(used: u64, total: u64) -> u64 {
    used.saturating_mul(100)
        .checked_div(total)
        .unwrap_or(0)
        .min(100)
}

/// Why a device reads as nearly full, in the mode's words ("memory 93 % in use" in Basic,
/// "RAM 93 %" in Advanced); None when it has room.
fn fullness(f: &Facts, advanced: bool) -> Option<(String, bool)> {
    let ram = used_pct(f.mem_total.saturating_sub(f.mem_available), f.mem_total);
    let disk = used_pct(f.disk_total.saturating_sub(f.disk_free), f.disk_total);
    let mut parts = Vec::new();
    if ram > FULL_PCT {
        parts.push(match advanced {
            true => format!("RAM {ram} %"),
            false => format!("memory {ram} % in use"),
        });
    }
    if disk > FULL_PCT {
        parts.push(match advanced {
            true => format!("disk {disk} %"),
            false => format!("storage {disk} % in use"),
        });
    }
    (!parts.is_empty()).then(|| (parts.join(", "), ram > FULL_PCT))
}

/// The dashboard's advice: for each reachable device above `FULL_PCT` of its memory or
/// storage by its last poll, the first of its apps (the largest need of what is short first)
/// that another device can take, as one line. Store reads and the placement ranking only.
pub async fn advice(state: &AppState, advanced: bool) -> Result<Vec<Advice>, WebError> {
    let statuses = state.store.device_statuses().await?;
    let mut full: Vec<(i64, String, bool)> = Vec::new();
    for s in &statuses {
        // Figures from a device that does not answer are old news, and a move starts with a
        // backup there.
        if !matches!(s.state.as_str(), "online" | "degraded") {
            continue;
        }
        let Ok(f) = serde_json::from_str::<Facts>(&s.facts) else {
            continue;
        };
        if let Some((why, ram_short)) = fullness(&f, advanced) {
            full.push((s.device_id, why, ram_short));
        }
    }
    if full.is_empty() {
        return Ok(Vec::new());
    }
    let apps = state.store.apps().await?;
    // An app already being moved, updated or backed up is left alone.
    let busy: HashSet<String> = state
        .store
        .unfinished_deployments()
        .await?
        .into_iter()
        .map(|d| d.slug)
        .collect();
    let devices = state.store.devices().await?;
    let mut out = Vec::new();
    for (device_id, why, ram_short) in full {
        let Some(device) = devices.iter().find(|d| d.id == device_id) else {
            continue;
        };
        let mut here: Vec<(&AppRow, &Recipe)> = apps
            .iter()
            .filter(|a| a.device_id == device_id && !busy.contains(&a.slug))
            .filter_map(|a| Some((a, state.catalog.recipes.get(&a.slug)?)))
            .collect();
        here.sort_by_key(|(a, r)| {
            let q = &r.manifest.requirements;
            let need = match ram_short {
                true => q.ram_recommended_mb,
                false => q.storage_recommended_gb,
            };
            (Reverse(need), a.slug.clone())
        });
        for (a, r) in here {
            // An app whose settings no longer fit its recipe is not suggested (its own page
            // says what is wrong).
            let settings = move_settings(r, &a.settings);
            let Ok(verdicts) = state.deployer.plan(&a.slug, &settings).await else {
                continue;
            };
            let Some(to) = verdicts
                .iter()
                .find(|v| v.device_id != device_id && v.eligible())
            else {
                continue;
            };
            let app = r.manifest.name.clone();
            out.push(Advice {
                words: format!(
                    "{} is nearly full ({why}): move {app} to {}?",
                    device.name, to.name
                ),
                href: format!(
                    "{}?device={}",
                    app_path(paths::APP_MOVE, &a.slug),
                    to.device_id
                ),
                app,
                slug: a.slug.clone(),
            });
            break;
        }
    }
    Ok(out)
}

/// The dashboard's advice card (empty when there is nothing to suggest).
pub async fn advice_html(state: &AppState, advanced: bool) -> Result<String, WebError> {
    Ok(AdvicePart {
        items: advice(state, advanced).await?,
        path: paths::DASHBOARD_ADVICE,
    }
    .render()?)
}

/// The advice alone, for its live updates.
pub async fn advice_part(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    Ok(Html(advice_html(&state, advanced(&ctx)?).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(mem_total: u64, mem_available: u64, disk_total: u64, disk_free: u64) -> Facts {
        Facts {
            mem_total,
            mem_available,
            disk_total,
            disk_free,
            ..Facts::default()
        }
    }

    #[test]
    fn a_device_is_nearly_full_above_ninety_per_cent() {
        let gb = 1u64 << 30;
        assert_eq!(fullness(&facts(100 * gb, 10 * gb, 100, 50), false), None);
        // 90.5 % reads as the card's 90 %: not above it.
        assert_eq!(fullness(&facts(1000 * gb, 95 * gb, 100, 50), false), None);
        assert_eq!(
            fullness(&facts(100 * gb, 9 * gb, 100, 50), false),
            Some(("memory 91 % in use".into(), true))
        );
        assert_eq!(
            fullness(&facts(100 * gb, 7 * gb, 100, 50), false),
            Some(("memory 93 % in use".into(), true))
        );
        assert_eq!(
            fullness(&facts(100 * gb, 7 * gb, 100, 50), true),
            Some(("RAM 93 %".into(), true))
        );
        assert_eq!(
            fullness(&facts(100, 50, 100, 4), true),
            Some(("disk 96 %".into(), false))
        );
        assert_eq!(
            fullness(&facts(100, 5, 100, 4), false),
            Some(("memory 95 % in use, storage 96 % in use".into(), true))
        );
        // Nothing measured yet: not full.
        assert_eq!(fullness(&Facts::default(), false), None);
    }
}
