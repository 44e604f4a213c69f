//! The DNS panel of the Network page: where app names live (mDNS, AdGuard Home, OPNsense), the
//! AdGuard Home connection (test, save, forget, or set up the one Homelab installed), and, once
//! connected, its dashboard: protection, today's numbers, the query log (blocked-only filter and
//! search), blocklists and rewrites. Every form answers with the whole panel again, with what
//! happened in plain words; AdGuard Home being down shows as a message in the panel, never as a
//! broken page.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::dns::adguard::{
    self, AdGuard, AdGuardError, MAX_QUERYLOG_ROWS, MAX_SEARCH, QueryFilter, Rewrite,
};
use crate::secrets::Secret;
use crate::store::UiMode;
use crate::web::AppState;
use crate::web::actions::dns as act;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Rewrites and blocklists shown at most (a home has a handful; a pasted list is not read whole).
const MAX_SHOWN: usize = 200;

/// A line at the top of the panel: what just happened, or why it did not.
struct Notice {
    ok: bool,
    text: String,
}

struct ListView {
    name: String,
    url: String,
    enabled: bool,
    rules: String,
}

struct RewriteView {
    domain: String,
    answer: String,
    enabled: bool,
    ours: bool,
}

struct RowView {
    time: String,
    domain: String,
    client: String,
    blocked: bool,
    reason: String,
}

/// The query log part (also answered alone, for the filter and the search box).
struct LogView {
    rows: Vec<RowView>,
    blocked_only: bool,
    search: String,
    /// Where the next page starts.
    older: Option<String>,
    error: Option<String>,
}

/// What a connected AdGuard Home shows.
struct Live {
    version: String,
    protection: bool,
    paused_minutes: Option<u64>,
    lookups: String,
    blocked_share: String,
    filtering: bool,
    lists: Vec<ListView>,
    rewrites: Vec<RewriteView>,
    more_rewrites: usize,
}

#[derive(Template)]
#[template(path = "partials/network_dns.html")]
struct Panel {
    advanced: bool,
    notice: Option<Notice>,
    provider: String,
    opnsense_available: bool,
    /// The saved connection's address and user (None: not connected).
    connected: Option<(String, String)>,
    plain_http: bool,
    form_url: String,
    form_username: String,
    /// The address of the AdGuard Home Homelab installed, when it can be set up from here.
    offer_set_up: Option<String>,
    live: Option<Live>,
    live_error: Option<String>,
    log: LogView,
}

#[derive(Template)]
#[template(path = "partials/network_dns_querylog.html")]
struct LogPart {
    advanced: bool,
    log: LogView,
}

fn advanced(ctx: &Ctx) -> Result<bool, WebError> {
    Ok(ctx.user()?.ui_mode == UiMode::Advanced)
}

/// "1,204".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The panel's text for an AdGuard Home error: the plain sentence (its fix included).
fn plain(e: &AdGuardError) -> String {
    e.to_string()
}

async fn log_view(
    agh: &AdGuard,
    blocked_only: bool,
    search: &str,
    older: Option<String>,
) -> LogView {
    let search: String = search.chars().take(MAX_SEARCH).collect();
    let filter = QueryFilter {
        blocked_only,
        search: Some(search.clone()),
        limit: MAX_QUERYLOG_ROWS,
        older_than: older,
    };
    match agh.querylog(&filter).await {
        Ok(page) => LogView {
            rows: page
                .rows
                .into_iter()
                .map(|r| RowView {
                    time: r.time.get(11..19).unwrap_or(&r.time).to_string(),
                    domain: r.domain,
                    client: r.client,
                    blocked: r.blocked,
                    reason: r.reason,
                })
                .collect(),
            blocked_only,
            search,
            older: page.oldest,
            error: None,
        },
        Err(e) => LogView {
            rows: Vec::new(),
            blocked_only,
            search,
            older: None,
            error: Some(plain(&e)),
        },
    }
}

fn empty_log() -> LogView {
    LogView {
        rows: Vec::new(),
        blocked_only: false,
        search: String::new(),
        older: None,
        error: None,
    }
}

async fn live(
    state: &AppState,
    agh: &AdGuard,
) -> Result<Result<(Live, LogView), AdGuardError>, WebError> {
    let status = match agh.status().await {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let (stats, filters, rewrites) = tokio::join!(agh.stats(), agh.filters(), agh.rewrites());
    let (stats, filters, rewrites) = match (stats, filters, rewrites) {
        (Ok(s), Ok(f), Ok(r)) => (s, f, r),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Ok(Err(e)),
    };
    // Homelab's records are exactly the ones it made (kept in `app_names`); every other
    // rewrite is the owner's and is shown, never changed.
    let made: Vec<(String, String)> = state
        .store
        .names()
        .await?
        .into_iter()
        .filter(|n| n.provider == "adguard" && n.record_state == "ok")
        .map(|n| (n.name, n.answer))
        .collect();
    let ours = |r: &Rewrite| made.iter().any(|(d, a)| *d == r.domain && *a == r.answer);
    let more_rewrites = rewrites.len().saturating_sub(MAX_SHOWN);
    let log = log_view(agh, false, "", None).await;
    Ok(Ok((
        Live {
            version: status.version,
            protection: status.protection_enabled,
            paused_minutes: status
                .protection_paused_for
                .map(|d| d.as_secs().div_ceil(60)),
            lookups: thousands(stats.queries),
            blocked_share: format!("{:.0}", stats.blocked_percent()),
            filtering: filters.enabled,
            lists: filters
                .lists
                .into_iter()
                .take(MAX_SHOWN)
                .map(|l| ListView {
                    rules: thousands(l.rules_count),
                    name: l.name,
                    url: l.url,
                    enabled: l.enabled,
                })
                .collect(),
            rewrites: rewrites
                .into_iter()
                .take(MAX_SHOWN)
                .map(|r| RewriteView {
                    ours: ours(&r),
                    domain: r.domain,
                    answer: r.answer,
                    enabled: r.enabled,
                })
                .collect(),
            more_rewrites,
        },
        log,
    )))
}

/// Renders the whole panel, with `notice` on top; `form` refills the connection form.
async fn render(
    state: &AppState,
    ctx: &Ctx,
    notice: Option<Notice>,
    form: Option<(String, String)>,
) -> Result<Response, WebError> {
    let advanced = advanced(ctx)?;
    let provider = act::provider(state).await?;
    let opnsense_available = state
        .store
        .setting(act::OPNSENSE_URL_SETTING)
        .await?
        .is_some();
    let agh = act::connection(state).await?;
    let connected = agh
        .as_ref()
        .map(|a| (a.url().to_string(), username_of(state)));
    let connected = match connected {
        Some((url, user)) => Some((url, user.await?)),
        None => None,
    };
    let offer_set_up = if agh.is_none() {
        state
            .store
            .app(act::ADGUARD_APP.into())
            .await?
            .map(|app| app.url)
            .filter(|u| !u.is_empty())
    } else {
        None
    };
    let (live, live_error, log) = match &agh {
        Some(agh) => match live(state, agh).await? {
            Ok((live, log)) => (Some(live), None, log),
            Err(e) => (None, Some(plain(&e)), empty_log()),
        },
        None => (None, None, empty_log()),
    };
    let (form_url, form_username) = form.unwrap_or_else(|| {
        connected
            .clone()
            .unwrap_or_else(|| (String::new(), "admin".into()))
    });
    let panel = Panel {
        advanced,
        notice,
        provider,
        opnsense_available,
        plain_http: agh.as_ref().is_some_and(AdGuard::plain_http),
        connected,
        form_url,
        form_username,
        offer_set_up,
        live,
        live_error,
        log,
    };
    Ok(Html(panel.render()?).into_response())
}

async fn username_of(state: &AppState) -> Result<String, WebError> {
    Ok(state
        .store
        .setting(act::ADGUARD_USER_SETTING)
        .await?
        .unwrap_or_default())
}

fn ok(text: impl Into<String>) -> Option<Notice> {
    Some(Notice {
        ok: true,
        text: text.into(),
    })
}

fn refused(text: impl Into<String>) -> Option<Notice> {
    Some(Notice {
        ok: false,
        text: text.into(),
    })
}

/// A refusal of the request itself (bad input, wrong order) shown in the panel.
fn notice_of(e: WebError) -> Result<Option<Notice>, WebError> {
    if e.status.is_client_error() {
        Ok(refused(e.message))
    } else {
        Err(e)
    }
}

pub async fn panel(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    render(&state, &ctx, None, None).await
}

#[derive(Deserialize)]
pub struct ProviderForm {
    provider: String,
}

pub async fn set_provider(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ProviderForm>,
) -> Result<Response, WebError> {
    let notice = match act::set_provider(&state, &ctx, &form.provider).await {
        Ok(()) => ok("Saved. New apps get their names there."),
        Err(e) => notice_of(e)?,
    };
    render(&state, &ctx, notice, None).await
}

#[derive(Deserialize)]
pub struct ConnectionForm {
    url: String,
    username: String,
    #[serde(default)]
    password: String,
}

/// The form refilled after a refusal: bounded and on one line, as the inputs would take it.
fn refill(form: &ConnectionForm) -> (String, String) {
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(2048).collect() };
    (clean(&form.url), clean(&form.username))
}

fn connected_words(advanced: bool, status: &adguard::Status) -> String {
    if advanced {
        format!("AdGuard Home {} answers", status.version)
    } else {
        "AdGuard Home answers".into()
    }
}

pub async fn test(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ConnectionForm>,
) -> Result<Response, WebError> {
    let refill_with = refill(&form);
    let password = Secret::from_string(form.password);
    let notice = match act::test(&state, &form.url, &form.username, password).await? {
        Ok(status) => ok(format!(
            "{}. Save to use it.",
            connected_words(advanced(&ctx)?, &status)
        )),
        Err(e) => refused(plain(&e)),
    };
    render(&state, &ctx, notice, Some(refill_with)).await
}

pub async fn save(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ConnectionForm>,
) -> Result<Response, WebError> {
    let refill_with = refill(&form);
    let password = Secret::from_string(form.password);
    match act::save(&state, &ctx, &form.url, &form.username, password).await? {
        Ok(status) => {
            let words = connected_words(advanced(&ctx)?, &status);
            render(
                &state,
                &ctx,
                ok(format!("{words}. Connected and saved.")),
                None,
            )
            .await
        }
        Err(e) => render(&state, &ctx, refused(plain(&e)), Some(refill_with)).await,
    }
}

pub async fn forget(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let notice = match act::forget(&state, &ctx).await {
        Ok(()) => ok("Homelab no longer connects to AdGuard Home."),
        Err(e) => notice_of(e)?,
    };
    render(&state, &ctx, notice, None).await
}

pub async fn set_up(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let notice = match act::set_up_deployed(&state, &ctx).await {
        Ok(Ok(_)) => ok("AdGuard Home is set up, connected, and now holds your apps' names."),
        Ok(Err(e)) => refused(plain(&e)),
        Err(e) => notice_of(e)?,
    };
    render(&state, &ctx, notice, None).await
}

#[derive(Deserialize)]
pub struct ProtectionForm {
    on: String,
    /// Minutes of a pause (only with `on=false`).
    #[serde(default)]
    minutes: Option<u64>,
}

pub async fn protection(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ProtectionForm>,
) -> Result<Response, WebError> {
    let on = form.on == "true";
    let pause = form
        .minutes
        .filter(|m| (1..=24 * 60).contains(m))
        .map(|m| Duration::from_secs(m * 60));
    let notice = match act::set_protection(&state, &ctx, on, pause).await {
        Ok(Ok(())) => ok(match (on, pause) {
            (true, _) => "Blocking ads and trackers is on.".to_string(),
            (false, Some(p)) => format!(
                "Blocking ads and trackers is paused for {} minutes.",
                p.as_secs() / 60
            ),
            (false, None) => "Blocking ads and trackers is off.".to_string(),
        }),
        Ok(Err(e)) => refused(plain(&e)),
        Err(e) => notice_of(e)?,
    };
    render(&state, &ctx, notice, None).await
}

#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    blocked: Option<String>,
    #[serde(default)]
    search: String,
    #[serde(default)]
    older: Option<String>,
}

pub async fn querylog(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<LogQuery>,
) -> Result<Response, WebError> {
    let advanced = advanced(&ctx)?;
    let log = match act::connection(&state).await? {
        Some(agh) => {
            if q.search.chars().count() > MAX_SEARCH {
                LogView {
                    error: Some(format!("Search for at most {MAX_SEARCH} characters.")),
                    ..empty_log()
                }
            } else {
                let older = q.older.filter(|o| o.len() <= 64);
                log_view(&agh, q.blocked.is_some(), &q.search, older).await
            }
        }
        None => LogView {
            error: Some("Connect AdGuard Home first.".into()),
            ..empty_log()
        },
    };
    Ok(Html(LogPart { advanced, log }.render()?).into_response())
}

#[derive(Deserialize)]
pub struct ListForm {
    url: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    enabled: Option<String>,
}

pub async fn add_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ListForm>,
) -> Result<Response, WebError> {
    let notice = match act::add_list(&state, &ctx, &form.url, &form.name).await {
        Ok(Ok(())) => ok("Blocklist added."),
        Ok(Err(e)) => refused(plain(&e)),
        Err(e) => notice_of(e)?,
    };
    render(&state, &ctx, notice, None).await
}

pub async fn remove_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ListForm>,
) -> Result<Response, WebError> {
    let notice = match act::remove_list(&state, &ctx, &form.url).await {
        Ok(Ok(())) => ok("Blocklist removed."),
        Ok(Err(e)) => refused(plain(&e)),
        Err(e) => notice_of(e)?,
    };
    render(&state, &ctx, notice, None).await
}

pub async fn toggle_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ListForm>,
) -> Result<Response, WebError> {
    let enabled = form.enabled.as_deref() == Some("true");
    let notice = match act::toggle_list(&state, &ctx, &form.url, enabled).await {
        Ok(Ok(())) => ok(if enabled {
            "Blocklist turned on."
        } else {
            "Blocklist turned off."
        }),
        Ok(Err(e)) => refused(plain(&e)),
        Err(e) => notice_of(e)?,
    };
    render(&state, &ctx, notice, None).await
}

pub async fn refresh_lists(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let notice = match act::refresh_lists(&state, &ctx).await {
        Ok(Ok(0)) => ok("Blocklists checked: all were up to date."),
        Ok(Ok(n)) => ok(format!("Blocklists checked: {n} had news.")),
        Ok(Err(e)) => refused(plain(&e)),
        Err(e) => notice_of(e)?,
    };
    render(&state, &ctx, notice, None).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_read_with_separators() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1204), "1,204");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
