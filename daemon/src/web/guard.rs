//! The route guard: deny by default. Every route is registered with an [`Access`]; this
//! middleware authenticates the request accordingly and, for state-changing requests, checks
//! the Origin and the session's CSRF token.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::access::Access;
use super::context::{Principal, Scheme, Since, Wants};
use super::error::WebError;
use super::paths::{self, cookie, header as hx};
use crate::auth::tokens::ct_eq;

pub async fn guard(state: AppState, access: Access, req: Request, next: Next) -> Response {
    match check(&state, access, req).await {
        Ok(req) => {
            // A signed-in page's htmx answers say which event they were rendered at (see
            // `Since`); nobody else learns how busy the box is.
            let since = match (
                req.extensions().get::<Principal>(),
                req.extensions().get::<Since>(),
            ) {
                (Some(Principal::User(_)), Some(s))
                    if Wants::of(req.uri().path(), req.headers()) == Wants::Partial =>
                {
                    Some(s.0)
                }
                _ => None,
            };
            let mut res = next.run(req).await;
            if let Some(since) = since {
                res.headers_mut()
                    .insert(hx::SINCE, HeaderValue::from(since));
            }
            res
        }
        Err(res) => res,
    }
}

async fn check(state: &AppState, access: Access, mut req: Request) -> Result<Request, Response> {
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let scheme = req
        .extensions()
        .get::<Scheme>()
        .copied()
        .unwrap_or(Scheme::Http);
    let wants = Wants::of(req.uri().path(), req.headers());

    if access == Access::Public {
        if changes_state && !same_origin(req.headers(), scheme) {
            return Err(foreign_origin());
        }
        return Ok(req);
    }

    // A bearer token is never sent by a browser on its own, so token requests need no CSRF
    // protection; they are only accepted where the route allows tokens.
    if let Some(token) = bearer(req.headers()) {
        if access == Access::Session {
            return Err(WebError::forbidden(
                "API tokens cannot be used on this page; sign in with a browser.",
            )
            .into_response());
        }
        return match state.auth.api_token(&token).await {
            Ok(Some((id, name))) => {
                req.extensions_mut().insert(Principal::Token { id, name });
                Ok(req)
            }
            Ok(None) => Err(with_www_authenticate(WebError::new(
                StatusCode::UNAUTHORIZED,
                "bad_token",
                "That API token is not valid (it may have been revoked). Create a new one in Settings.",
            ))),
            Err(e) => Err(WebError::from(e).into_response()),
        };
    }
    if access == Access::Token {
        return Err(with_www_authenticate(WebError::new(
            StatusCode::UNAUTHORIZED,
            "token_required",
            "This endpoint needs an API token: send `Authorization: Bearer <token>`. Create one in Settings (Advanced).",
        )));
    }

    let session = match session_cookie(req.headers()) {
        Some(token) => state
            .auth
            .session(&token)
            .await
            .map_err(|e| WebError::from(e).into_response())?,
        None => None,
    };
    let Some(user) = session else {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        return Err(anonymous(state, method, path, wants).await);
    };

    if changes_state {
        if !same_origin(req.headers(), scheme) {
            return Err(foreign_origin());
        }
        let (ok, rebuilt) = csrf_ok(req, &user.csrf_token).await;
        req = rebuilt.map_err(IntoResponse::into_response)?;
        if !ok {
            return Err(WebError::forbidden(
                "This request is missing its security token (the page may be stale). Reload the page and try again.",
            )
            .into_response());
        }
    }
    req.extensions_mut().insert(Principal::User(user));
    Ok(req)
}

/// Where an anonymous visitor goes: the setup wizard before the box is claimed, else sign-in.
async fn anonymous(state: &AppState, method: Method, path: String, wants: Wants) -> Response {
    if wants == Wants::Json {
        return with_www_authenticate(WebError::unauthenticated());
    }
    let claimed = state.store.has_users().await.unwrap_or(true);
    let target = if !claimed {
        paths::SETUP.to_string()
    } else if method == Method::GET && wants == Wants::Page && path != paths::DASHBOARD {
        format!("{}?next={}", paths::LOGIN, encode_next(&path))
    } else {
        paths::LOGIN.to_string()
    };
    if wants == Wants::Partial || method != Method::GET {
        // htmx follows HX-Redirect with a full navigation; plain forms get a 401 page whose
        // message says to sign in.
        let mut res = WebError::unauthenticated().into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            res.headers_mut().insert(hx::HX_REDIRECT, v);
        }
        return res;
    }
    Redirect::to(&target).into_response()
}

/// Only path characters we generate ourselves survive into `next`; anything else is dropped,
/// so `next` can never point at another site.
fn encode_next(path: &str) -> String {
    path.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
        .collect()
}

fn with_www_authenticate(err: WebError) -> Response {
    let mut res = err.into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"homelab\""),
    );
    res
}

fn foreign_origin() -> Response {
    WebError::forbidden(
        "This request came from another website, so it was refused. Open Homelab directly and try again.",
    )
    .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The session token from the Cookie header(s).
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == cookie::SESSION)
        .map(|(_, v)| v.to_string())
}

/// True when the request's Origin (or, failing that, Referer) is this very site. Browsers send
/// Origin on every state-changing request; a missing one is refused.
fn same_origin(headers: &HeaderMap, scheme: Scheme) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let expected = format!("{}://{}", scheme.as_str(), host);
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return origin.eq_ignore_ascii_case(&expected);
    }
    if let Some(referer) = headers.get(header::REFERER).and_then(|v| v.to_str().ok()) {
        return referer
            .strip_prefix(expected.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    }
    false
}

/// Checks the CSRF token from the `X-CSRF-Token` header (htmx) or the `csrf_token` field of a
/// url-encoded form (plain forms). Reading the form consumes the body, so the request is
/// rebuilt from the bytes read.
async fn csrf_ok(req: Request, expected: &str) -> (bool, Result<Request, WebError>) {
    if let Some(v) = req
        .headers()
        .get(paths::header::CSRF)
        .and_then(|v| v.to_str().ok())
    {
        return (ct_eq(v, expected), Ok(req));
    }
    let is_form = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    if !is_form {
        return (false, Ok(req));
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, crate::limits::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return (
                false,
                Err(WebError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "That form is too large.",
                )),
            );
        }
    };
    let ok = form_field(&bytes, paths::CSRF_FIELD).is_some_and(|v| ct_eq(&v, expected));
    (ok, Ok(Request::from_parts(parts, Body::from(bytes))))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}
