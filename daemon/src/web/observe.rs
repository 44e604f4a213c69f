//! The outermost middleware: gives every request an id and a tracing span, records metrics,
//! adds security headers, and renders errors in the shape the client wants (JSON, an htmx
//! toast, or a full page), always with the request id.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;
use super::context::{RequestId, Scheme, Since, Wants};
use super::error::ErrorInfo;
use super::views;
use super::{metrics, paths};
use crate::secrets::random_bytes;

/// Content Security Policy: our own scripts and styles only, no inline code, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Largest framework error body we read to turn into a friendly message.
const MAX_REJECTION_BODY: usize = 4096;

/// HSTS on HTTPS answers: browsers that reached us over verified HTTPS stay on HTTPS for a year
/// (renewed on every visit). No `includeSubDomains`: names like `homelab.local` are shared with
/// other hosts on the network that may only speak HTTP. Never sent over plain HTTP (browsers
/// ignore it there, and the HTTP side only redirects when HTTPS is on).
const HSTS: &str = "max-age=31536000";

/// Longest request path written to the log; the rest is cut (a client chooses the path, and a
/// megabyte-long one must not become a megabyte of log).
const MAX_LOGGED_PATH: usize = 256;

fn new_request_id() -> String {
    let b: [u8; 6] = random_bytes();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = new_request_id();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    // Before anything reads data for the answer (see `Since`).
    let since = state.events.seq();
    req.extensions_mut().insert(Since(since));
    let method = req.method().clone();
    let scheme = req.extensions().get::<Scheme>().copied();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let wants = Wants::of(&path, req.headers());
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %metrics::method_label(&method),
        path = %crate::limits::truncate(&path, MAX_LOGGED_PATH)
    );
    let started = Instant::now();

    let mut res = next.run(req).instrument(span.clone()).await;

    let status = res.status();
    if status.is_client_error() || status.is_server_error() {
        let info = match res.extensions_mut().remove::<ErrorInfo>() {
            Some(info) => Some(info),
            None => rejection_info(&mut res).await,
        };
        if let Some(info) = info {
            let headers = std::mem::take(res.headers_mut());
            res = views::render_error(status, &info, wants, &request_id);
            for (name, value) in headers.iter() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    res.headers_mut().insert(name.clone(), value.clone());
                }
            }
        }
    }

    let elapsed = started.elapsed();
    let route_label = route.as_deref().unwrap_or("unmatched");
    state
        .metrics
        .record(&method, route_label, res.status().as_u16(), elapsed);
    let is_asset = path.starts_with("/static/");
    // One line per request is for debugging only: at INFO a burst of requests wrote hundreds of
    // megabytes to the appliance's SD card. Failures the owner should see are logged where they
    // happen (internal errors at ERROR, failed sign-ins at WARN); 5xx answers are flagged here too.
    let micros = elapsed.as_micros() as u64;
    // 503 is Homelab refusing work on purpose under load ("busy, try again"): during a flood it
    // would itself be a flood of log lines, so it stays at DEBUG like any other request.
    if res.status().is_server_error() && res.status() != StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(parent: &span, status = res.status().as_u16(), micros, "request failed");
    } else {
        tracing::debug!(parent: &span, status = res.status().as_u16(), micros, "request");
    }

    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert(paths::header::REQUEST_ID, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if scheme == Some(Scheme::Https) {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset && !h.contains_key(header::CACHE_CONTROL) {
        // Pages carry the CSRF token and live data: never from a cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if wants == Wants::Partial || wants == Wants::Page {
        h.insert(header::VARY, HeaderValue::from_static("HX-Request"));
    }
    res
}

/// Turns an error axum produced itself (a malformed form, a wrong content type, an unknown
/// method) into our error shape, keeping its text as the message.
async fn rejection_info(res: &mut Response) -> Option<ErrorInfo> {
    let is_text = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !is_text {
        return None;
    }
    let body = std::mem::replace(res.body_mut(), Body::empty());
    let bytes = axum::body::to_bytes(body, MAX_REJECTION_BODY)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let (code, message) = match res.status() {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This address does not accept that kind of request.".to_string(),
        ),
        StatusCode::NOT_FOUND => ("not_found", "There is nothing at this address.".to_string()),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            format!(
                "That request is too large: forms and API requests may be at most {} KiB. \
                 Shorten what you entered and try again.",
                crate::limits::MAX_BODY_BYTES / 1024
            ),
        ),
        _ if text.is_empty() => (
            "invalid_input",
            "The request could not be understood.".to_string(),
        ),
        _ => (
            "invalid_input",
            format!("The request could not be understood: {text}"),
        ),
    };
    Some(ErrorInfo { code, message })
}

/// 404 for anything no route matched.
pub async fn not_found() -> impl IntoResponse {
    super::error::WebError::not_found()
}
