//! Per-request facts every handler may need: request id, client address, scheme, who is
//! asking, and what kind of response they want.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use super::error::WebError;
use super::paths::{self, cookie, header};
use crate::auth::{Client, SessionUser};
use crate::events::Event;

/// The peer address of a connection (HTTP or HTTPS), IPv4-mapped addresses as plain IPv4;
/// set by `server` on every request.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Which listener a request arrived on; decides the cookie's Secure flag and the Origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The request id, made by the outermost middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The event sequence read as the request arrived, before the handler read any data: what the
/// response shows is at least as new as this (see `events::EventBus`).
#[derive(Debug, Clone, Copy)]
pub struct Since(pub u64);

/// What kind of answer the client wants, from the path and htmx headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// JSON (the API and metrics).
    Json,
    /// An htmx swap: the partial only.
    Partial,
    /// A normal browser navigation: the full page.
    Page,
}

impl Wants {
    pub fn of(path: &str, headers: &HeaderMap) -> Wants {
        if path.starts_with(paths::API_PREFIX) || path == paths::METRICS {
            return Wants::Json;
        }
        let has = |h: &str| headers.get(h).is_some_and(|v| v == "true");
        // History restores and boosted links replace the whole document, so they get full pages.
        if has(header::HX_REQUEST) && !has(header::HX_HISTORY_RESTORE) && !has(header::HX_BOOSTED) {
            Wants::Partial
        } else {
            Wants::Page
        }
    }
}

/// Who is asking, set by the route guard.
#[derive(Debug, Clone)]
pub enum Principal {
    User(SessionUser),
    Token { id: i64, name: String },
}

/// Extractor bundling the per-request facts.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    pub client: Client,
    pub scheme: Scheme,
    pub wants: Wants,
    pub principal: Option<Principal>,
    /// See [`Since`].
    pub since: u64,
}

impl Ctx {
    /// The signed-in browser user (routes guarded with a session always have one).
    pub fn user(&self) -> Result<&SessionUser, WebError> {
        match &self.principal {
            Some(Principal::User(u)) => Ok(u),
            _ => Err(WebError::internal("a session route ran without a session")),
        }
    }

    /// How the audit log names whoever made this request.
    pub fn actor(&self) -> String {
        match &self.principal {
            Some(Principal::User(u)) => u.username.clone(),
            Some(Principal::Token { id, name }) => format!("token:{name}#{id}"),
            None => "anonymous".into(),
        }
    }

    /// Records a state change in the audit log and pushes it to open Settings pages. An audit
    /// failure fails the request: a change we cannot account for is not acceptable.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &'static str,
        detail: String,
    ) -> Result<(), WebError> {
        self.audit_as(state, self.actor(), action, detail).await
    }

    pub async fn audit_as(
        &self,
        state: &AppState,
        actor: String,
        action: &'static str,
        detail: String,
    ) -> Result<(), WebError> {
        let entry = state
            .store
            .audit(
                actor,
                action,
                detail,
                self.client.addr.to_string(),
                self.request_id.clone(),
            )
            .await?;
        state.events.publish(Event::Audit(entry));
        Ok(())
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let addr = parts
            .extensions
            .get::<ConnectInfo<ClientAddr>>()
            .map(|c| c.0.0.ip())
            .ok_or_else(|| WebError::internal("no client address on the request"))?;
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let browser = cookie_value(&parts.headers, cookie::KNOWN_BROWSER);
        Ok(Ctx {
            request_id,
            client: Client {
                addr,
                user_agent,
                browser,
            },
            scheme: parts
                .extensions
                .get::<Scheme>()
                .copied()
                .unwrap_or(Scheme::Http),
            wants: Wants::of(parts.uri.path(), &parts.headers),
            principal: parts.extensions.get::<Principal>().cloned(),
            since: parts.extensions.get::<Since>().map(|s| s.0).unwrap_or(0),
        })
    }
}

/// The value of cookie `name` in a request, if sent.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}
