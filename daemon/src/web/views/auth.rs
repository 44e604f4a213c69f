//! The first-run setup wizard, sign-in and sign-out. These pages work without JavaScript:
//! plain forms, full-page answers, redirects on success.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::password::MIN_LEN;
use crate::auth::{AuthError, BROWSER_LIFETIME, NewSession, bounded_username};
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::actions;
use crate::web::context::{Ctx, Scheme};
use crate::web::error::{WebError, auth_status, with_retry_after};
use crate::web::guard::session_cookie;
use crate::web::paths::{self, cookie};

/// How long the browser keeps the session cookie; the server ends idle sessions much sooner.
const COOKIE_MAX_AGE_SECS: u64 = 30 * 24 * 60 * 60;

#[derive(Template)]
#[template(path = "pages/setup.html")]
struct SetupPage<'a> {
    version: &'static str,
    error: Option<String>,
    code_required: bool,
    window_minutes: i64,
    username: &'a str,
    min_len: usize,
}

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage<'a> {
    version: &'static str,
    error: Option<String>,
    signed_out: bool,
    username: &'a str,
    next: &'a str,
}

/// A cookie as the session cookie is set: HttpOnly, SameSite=Strict, Secure under HTTPS.
fn cookie_header(name: &str, token: &str, max_age_secs: u64, scheme: Scheme) -> HeaderValue {
    let secure = if scheme == Scheme::Https {
        "; Secure"
    } else {
        ""
    };
    let v = format!(
        "{name}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    // Tokens are base64url, always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn session_cookie_header(token: &str, scheme: Scheme) -> HeaderValue {
    cookie_header(cookie::SESSION, token, COOKIE_MAX_AGE_SECS, scheme)
}

/// Sets the session cookie (first, so clients reading one Set-Cookie get the session) and
/// renews the known-browser cookie.
pub fn set_session_cookies(res: &mut Response, session: &NewSession, scheme: Scheme) {
    res.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie_header(session.token.expose_str().unwrap_or_default(), scheme),
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(
            cookie::KNOWN_BROWSER,
            session.browser.expose_str().unwrap_or_default(),
            BROWSER_LIFETIME.as_secs(),
            scheme,
        ),
    );
}

fn clear_cookie_header(scheme: Scheme) -> HeaderValue {
    let secure = if scheme == Scheme::Https {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        cookie::SESSION
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// 303 to `to`, setting the new session cookie.
fn signed_in(session: &NewSession, scheme: Scheme, to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    set_session_cookies(&mut res, session, scheme);
    res
}

pub async fn setup_page(State(state): State<AppState>) -> Result<Response, WebError> {
    let status = state.auth.claim_status().await?;
    if status.claimed {
        return Ok(Redirect::to(paths::LOGIN).into_response());
    }
    let page = SetupPage {
        version: crate::VERSION,
        error: None,
        code_required: status.code_required,
        window_minutes: (status.window_left_secs + 59) / 60,
        username: "admin",
        min_len: MIN_LEN,
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Deserialize)]
pub struct SetupForm {
    username: String,
    password: String,
    password_confirm: String,
    #[serde(default)]
    setup_code: Option<String>,
}

pub async fn setup_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<SetupForm>,
) -> Result<Response, WebError> {
    let SetupForm {
        username,
        password,
        password_confirm,
        setup_code,
    } = form;
    let result = actions::auth::claim(
        &state,
        &ctx,
        &username,
        Secret::from_string(password),
        Secret::from_string(password_confirm),
        setup_code.as_deref(),
    )
    .await?;
    match result {
        Ok(session) => Ok(signed_in(&session, ctx.scheme, paths::DASHBOARD)),
        Err(AuthError::AlreadyClaimed) => Ok(Redirect::to(paths::LOGIN).into_response()),
        Err(
            e @ (AuthError::Invalid(_)
            | AuthError::SetupCodeRequired
            | AuthError::WrongSetupCode
            | AuthError::Throttled(_)
            | AuthError::Busy),
        ) => {
            let status = state.auth.claim_status().await?;
            let (http_status, _) = auth_status(&e);
            let page = SetupPage {
                version: crate::VERSION,
                error: Some(e.to_string()),
                code_required: status.code_required,
                window_minutes: (status.window_left_secs + 59) / 60,
                username: &bounded_username(&username),
                min_len: MIN_LEN,
            };
            Ok(with_retry_after(
                (http_status, Html(page.render()?)).into_response(),
                &e,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    signed_out: Option<String>,
}

/// Only local paths we could have generated: no scheme, no `//host`, no backslashes.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.')) =>
        {
            n
        }
        _ => paths::DASHBOARD,
    }
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    if !state.store.has_users().await? {
        return Ok(Redirect::to(paths::SETUP).into_response());
    }
    if let Some(token) = session_cookie(&headers)
        && state.auth.session(&token).await?.is_some()
    {
        return Ok(Redirect::to(safe_next(q.next.as_deref())).into_response());
    }
    let page = LoginPage {
        version: crate::VERSION,
        error: None,
        signed_out: q.signed_out.is_some(),
        username: "",
        next: safe_next(q.next.as_deref()),
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn login_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let LoginForm {
        username,
        password,
        next,
    } = form;
    let next = safe_next(next.as_deref()).to_string();
    // What the log, the audit row and the page may repeat of what was typed.
    let shown = bounded_username(&username);
    match actions::auth::login(&state, &ctx, &username, Secret::from_string(password)).await? {
        Ok(session) => Ok(signed_in(&session, ctx.scheme, &next)),
        Err(e @ (AuthError::BadCredentials | AuthError::Throttled(_) | AuthError::Busy)) => {
            let (status, _) = auth_status(&e);
            let page = LoginPage {
                version: crate::VERSION,
                error: Some(e.to_string()),
                signed_out: false,
                username: &shown,
                next: &next,
            };
            let res = (status, Html(page.render()?)).into_response();
            Ok(with_retry_after(res, &e))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    actions::auth::logout(&state, &ctx).await?;
    Ok(signed_out_response(ctx.scheme))
}

/// Clears the cookie and goes to the sign-in page.
pub fn signed_out_response(scheme: Scheme) -> Response {
    let mut res = Redirect::to(&format!("{}?signed_out=1", paths::LOGIN)).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie_header(scheme));
    res
}
