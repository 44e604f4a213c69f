//! Server-rendered views. A page is a partial (the content) wrapped in the layout for normal
//! navigations; htmx requests get the partial alone plus an out-of-band nav update.

pub mod apps;
pub mod auth;
pub mod backups;
pub mod browse;
pub mod deploy;
pub mod devices;
pub mod history;
pub mod moving;
pub mod network;
pub mod network_dns;
pub mod network_router;
pub mod pages;
pub mod recovery;
pub mod settings;
pub mod trust;
pub mod updates;

use askama::Template;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::context::{Ctx, Wants};
use super::error::{ErrorInfo, WebError};
use super::paths::{self, header as hx};
use crate::events::Level;
use crate::store::{AuditEntry, UiMode};

/// Top-level sections, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Devices,
    Apps,
    Network,
    Backups,
    Settings,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::Dashboard,
        Section::Devices,
        Section::Apps,
        Section::Network,
        Section::Backups,
        Section::Settings,
    ];

    fn href(self) -> &'static str {
        match self {
            Section::Dashboard => paths::DASHBOARD,
            Section::Devices => paths::DEVICES,
            Section::Apps => paths::APPS,
            Section::Network => paths::NETWORK,
            Section::Backups => paths::BACKUPS,
            Section::Settings => paths::SETTINGS,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Section::Dashboard => "Dashboard",
            Section::Devices => "Devices",
            Section::Apps => "Apps",
            Section::Network => "Network",
            Section::Backups => "Backups",
            Section::Settings => "Settings",
        }
    }

    /// Inline SVG icon (decorative; the label carries the meaning).
    pub fn icon(self) -> &'static str {
        match self {
            Section::Dashboard => {
                r#"<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path d="M3 12l9-8 9 8v8a1 1 0 0 1-1 1h-5v-6H9v6H4a1 1 0 0 1-1-1z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/></svg>"#
            }
            Section::Devices => {
                r#"<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><rect x="3" y="4" width="18" height="6" rx="1.5" fill="none" stroke="currentColor" stroke-width="2"/><rect x="3" y="14" width="18" height="6" rx="1.5" fill="none" stroke="currentColor" stroke-width="2"/><circle cx="7" cy="7" r="1" fill="currentColor"/><circle cx="7" cy="17" r="1" fill="currentColor"/></svg>"#
            }
            Section::Apps => {
                r#"<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><rect x="3" y="3" width="7" height="7" rx="1.5" fill="none" stroke="currentColor" stroke-width="2"/><rect x="14" y="3" width="7" height="7" rx="1.5" fill="none" stroke="currentColor" stroke-width="2"/><rect x="3" y="14" width="7" height="7" rx="1.5" fill="none" stroke="currentColor" stroke-width="2"/><rect x="14" y="14" width="7" height="7" rx="1.5" fill="none" stroke="currentColor" stroke-width="2"/></svg>"#
            }
            Section::Network => {
                r#"<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2"/><path d="M3 12h18M12 3c3 3.5 3 14.5 0 18M12 3c-3 3.5-3 14.5 0 18" fill="none" stroke="currentColor" stroke-width="2"/></svg>"#
            }
            Section::Backups => {
                r#"<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path d="M12 3l8 3v6c0 4.5-3.4 8-8 9-4.6-1-8-4.5-8-9V6z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/><path d="M8.5 12l2.5 2.5 4.5-5" fill="none" stroke="currentColor" stroke-width="2"/></svg>"#
            }
            Section::Settings => {
                r#"<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><circle cx="12" cy="12" r="3" fill="none" stroke="currentColor" stroke-width="2"/><path d="M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1" stroke="currentColor" stroke-width="2"/></svg>"#
            }
        }
    }
}

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub icon: &'static str,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "partials/nav.html")]
struct NavTemplate {
    items: Vec<NavItem>,
    oob: bool,
}

#[derive(Template)]
#[template(path = "base.html")]
struct BaseTemplate<'a> {
    title: &'a str,
    version: &'static str,
    csrf: &'a str,
    username: &'a str,
    mode: &'static str,
    advanced: bool,
    /// The event sequence the page was rendered at (see `events::EventBus`).
    since: u64,
    nav: String,
    content: String,
}

fn nav_html(active: Section, oob: bool) -> Result<String, WebError> {
    let items = Section::ALL
        .iter()
        .map(|s| NavItem {
            href: s.href(),
            label: s.label(),
            icon: s.icon(),
            active: *s == active,
        })
        .collect();
    Ok(NavTemplate { items, oob }.render()?)
}

/// Wraps a rendered partial in the layout, or sends it alone (with an out-of-band nav update)
/// to htmx.
pub fn page(
    ctx: &Ctx,
    section: Section,
    title: &str,
    partial: String,
) -> Result<Response, WebError> {
    let user = ctx.user()?;
    if ctx.wants == Wants::Partial {
        let mut html = partial;
        html.push_str(&nav_html(section, true)?);
        return Ok(Html(html).into_response());
    }
    let base = BaseTemplate {
        title,
        version: crate::VERSION,
        csrf: &user.csrf_token,
        username: &user.username,
        mode: user.ui_mode.as_str(),
        advanced: user.ui_mode == UiMode::Advanced,
        since: ctx.since,
        nav: nav_html(section, false)?,
        content: partial,
    };
    Ok(Html(base.render()?).into_response())
}

/// Sends the browser to `target`: htmx follows redirects inside its XHR, so it gets
/// `HX-Redirect` instead of a 303.
pub fn go_to(ctx: &Ctx, target: &str) -> Result<Response, WebError> {
    if ctx.wants == Wants::Partial {
        let mut res = StatusCode::OK.into_response();
        res.headers_mut().insert(
            hx::HX_REDIRECT,
            HeaderValue::from_str(target).map_err(WebError::internal)?,
        );
        return Ok(res);
    }
    Ok(axum::response::Redirect::to(target).into_response())
}

#[derive(Template)]
#[template(path = "partials/toast.html")]
struct ToastTemplate<'a> {
    level: &'static str,
    icon: &'static str,
    heading: &'static str,
    message: &'a str,
    request_id: &'a str,
}

/// A toast fragment: icon and word with the colour, so the level never rests on colour alone.
pub fn toast_html(level: Level, message: &str, request_id: &str) -> String {
    let (level, icon, heading) = match level {
        Level::Info => ("info", "ℹ", "Note:"),
        Level::Success => ("success", "✓", "Done:"),
        Level::Warning => ("warning", "!", "Heads up:"),
        Level::Error => ("error", "⚠", "Problem:"),
    };
    ToastTemplate {
        level,
        icon,
        heading,
        message,
        request_id,
    }
    .render()
    .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    version: &'static str,
    heading: &'a str,
    message: &'a str,
    request_id: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
}

/// Renders an error for the kind of client that asked.
pub fn render_error(
    status: StatusCode,
    info: &ErrorInfo,
    wants: Wants,
    request_id: &str,
) -> Response {
    match wants {
        Wants::Json => {
            let body = ErrorBody {
                error: ErrorFields {
                    code: info.code,
                    message: &info.message,
                    request_id,
                },
            };
            (status, Json(body)).into_response()
        }
        Wants::Partial => {
            let mut res = (
                status,
                Html(toast_html(Level::Error, &info.message, request_id)),
            )
                .into_response();
            res.headers_mut()
                .insert(hx::HX_RETARGET, HeaderValue::from_static("#toasts"));
            res.headers_mut()
                .insert(hx::HX_RESWAP, HeaderValue::from_static("beforeend"));
            res
        }
        Wants::Page => {
            let heading = match status {
                StatusCode::NOT_FOUND => "Page not found",
                StatusCode::UNAUTHORIZED => "Please sign in",
                StatusCode::FORBIDDEN => "Not allowed",
                StatusCode::TOO_MANY_REQUESTS => "Slow down",
                s if s.is_server_error() => "Something went wrong",
                _ => "That didn't work",
            };
            let html = ErrorPage {
                version: crate::VERSION,
                heading,
                message: &info.message,
                request_id,
            }
            .render()
            .unwrap_or_else(|_| info.message.clone());
            let mut res = (status, Html(html)).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
    }
}

/// An audit entry prepared for display.
pub struct AuditView {
    pub when: String,
    pub at_iso: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub client_addr: String,
}

impl From<&AuditEntry> for AuditView {
    fn from(e: &AuditEntry) -> AuditView {
        AuditView {
            when: format_time(e.at),
            at_iso: format_iso(e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            detail: e.detail.clone(),
            client_addr: e.client_addr.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "partials/audit_row.html")]
struct AuditRow<'a> {
    e: &'a AuditView,
    advanced: bool,
}

pub fn audit_row_html(entry: &AuditEntry, advanced: bool) -> String {
    let mut e = AuditView::from(entry);
    if !advanced {
        e.detail = plain_detail(&e.detail);
    }
    AuditRow { e: &e, advanced }.render().unwrap_or_default()
}

/// An audit detail for Basic mode: without the parenthesised logins and addresses
/// ("Added device “NAS” (homelab@192.168.1.20:22)" becomes "Added device “NAS”").
pub fn plain_detail(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len());
    let mut rest = detail;
    while let Some(open) = rest.find(" (") {
        let Some(len) = rest[open..].find(')') else {
            break;
        };
        let inside = &rest[open + 2..open + len];
        out.push_str(&rest[..open]);
        if !inside.contains('@') {
            out.push_str(&rest[open..=open + len]);
        }
        rest = &rest[open + len + 1..];
    }
    out.push_str(rest);
    out
}

pub use crate::units::format_time;

pub fn format_iso(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// "3 h 12 min" style durations for people.
pub fn format_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::plain_detail;

    #[test]
    fn basic_audit_details_leave_logins_and_addresses_out() {
        assert_eq!(
            plain_detail("Added device “NAS” (homelab@192.168.1.20:22)"),
            "Added device “NAS”"
        );
        assert_eq!(
            plain_detail("Set the update channel (updates only by hand)"),
            "Set the update channel (updates only by hand)"
        );
        assert_eq!(plain_detail("Odd (unclosed"), "Odd (unclosed");
    }
}
