//! Settings: display mode, password, sessions, certificate, API tokens and the activity log.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{AuditView, Section, format_time};
use crate::auth::password::MIN_LEN;
use crate::secrets::Secret;
use crate::store::{ApiTokenRow, UiMode};
use crate::web::AppState;
use crate::web::actions;
use crate::web::context::{Ctx, Wants};
use crate::web::error::{WebError, auth_error_response};
use crate::web::paths::header as hx;

/// Activity entries shown on the page (older ones stay in the database).
const AUDIT_SHOWN: i64 = 100;

pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
}

impl From<ApiTokenRow> for TokenView {
    fn from(t: ApiTokenRow) -> TokenView {
        TokenView {
            id: t.id,
            created: format_time(t.created_at),
            last_used: match t.last_used_at {
                Some(at) => format!("last used {}", format_time(at)),
                None => "never used".into(),
            },
            name: t.name,
            prefix: t.prefix,
        }
    }
}

#[derive(Template)]
#[template(path = "pages/settings.html")]
struct SettingsPage<'a> {
    advanced: bool,
    csrf: &'a str,
    min_len: usize,
    session_count: i64,
    fingerprint: String,
    tokens: Vec<TokenView>,
    new_token: Option<String>,
    token_error: Option<String>,
    audit: Vec<AuditView>,
    builtin: &'a [String],
    extra: String,
    saved: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/tokens.html")]
struct TokensPartial {
    tokens: Vec<TokenView>,
    new_token: Option<String>,
    token_error: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/host_names.html")]
struct HostNamesPartial<'a> {
    builtin: &'a [String],
    extra: String,
    saved: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/password_result.html")]
struct PasswordResult {
    /// API tokens are an Advanced-mode matter, so only Advanced mentions them.
    advanced: bool,
}

pub async fn page_html(state: &AppState, ctx: &Ctx) -> Result<Response, WebError> {
    let user = ctx.user()?;
    let advanced = user.ui_mode == UiMode::Advanced;
    let tokens = if advanced {
        state
            .store
            .api_tokens()
            .await?
            .into_iter()
            .map(TokenView::from)
            .collect()
    } else {
        vec![]
    };
    let audit = state
        .store
        .audit_recent(AUDIT_SHOWN)
        .await?
        .iter()
        .map(|entry| {
            let mut e = AuditView::from(entry);
            if !advanced {
                e.detail = super::plain_detail(&e.detail);
            }
            e
        })
        .collect();
    let partial = SettingsPage {
        advanced,
        csrf: &user.csrf_token,
        min_len: MIN_LEN,
        session_count: state.store.count_user_sessions(user.user_id).await?,
        fingerprint: state.tls.fingerprint(),
        tokens,
        new_token: None,
        token_error: None,
        audit,
        builtin: state.hosts.builtin(),
        extra: state.hosts.extra().join("\n"),
        saved: None,
    }
    .render()?;
    super::page(ctx, Section::Settings, "Settings", partial)
}

pub async fn show(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    page_html(&state, &ctx).await
}

#[derive(Deserialize)]
pub struct ModeForm {
    mode: String,
}

pub async fn set_mode(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ModeForm>,
) -> Result<Response, WebError> {
    let mode = UiMode::parse(&form.mode)
        .ok_or_else(|| WebError::bad_request("Choose Basic or Advanced."))?;
    actions::settings::set_mode(&state, &ctx, mode).await?;
    // The mode changes the whole page (header, menus), so htmx reloads it (a redirect would be
    // followed invisibly by the browser's XHR and lose the header); a plain form post gets a
    // redirect back.
    if ctx.wants == Wants::Partial {
        return Ok(([(hx::HX_REFRESH, HeaderValue::from_static("true"))], "").into_response());
    }
    Ok(axum::response::Redirect::to(crate::web::paths::SETTINGS).into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    new_password_confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let session = match actions::settings::change_password(
        &state,
        &ctx,
        Secret::from_string(form.current_password),
        Secret::from_string(form.new_password),
        Secret::from_string(form.new_password_confirm),
    )
    .await?
    {
        Ok(session) => session,
        Err(e) => return Ok(auth_error_response(e)),
    };
    // Every session ended with the change, this one included; this browser gets a new one.
    let advanced = ctx.user()?.ui_mode == UiMode::Advanced;
    let mut res = Html(PasswordResult { advanced }.render()?).into_response();
    super::auth::set_session_cookies(&mut res, &session, ctx.scheme);
    Ok(res)
}

pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<Response, WebError> {
    actions::settings::sign_out_everywhere(&state, &ctx).await?;
    Ok(super::auth::signed_out_response(ctx.scheme))
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
    #[serde(default)]
    password: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<TokenForm>,
) -> Result<Response, WebError> {
    let created = actions::settings::create_token(
        &state,
        &ctx,
        &form.name,
        Some(Secret::from_string(form.password)),
    )
    .await;
    let (new_token, token_error) = match created {
        Ok((_, token)) => (token.expose_str().map(str::to_string), None),
        // Shown in the list's place, the list kept.
        Err(e) if e.status.is_client_error() => (None, Some(e.message)),
        Err(e) => return Err(e),
    };
    let tokens = state
        .store
        .api_tokens()
        .await?
        .into_iter()
        .map(TokenView::from)
        .collect();
    let html = TokensPartial {
        tokens,
        new_token,
        token_error,
    }
    .render()?;
    Ok(Html(html).into_response())
}

pub async fn revoke_token(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    actions::settings::revoke_token(&state, &ctx, id).await?;
    let tokens = state
        .store
        .api_tokens()
        .await?
        .into_iter()
        .map(TokenView::from)
        .collect();
    Ok(Html(
        TokensPartial {
            tokens,
            new_token: None,
            token_error: None,
        }
        .render()?,
    )
    .into_response())
}

pub async fn certificate(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"homelab.local.pem\"",
            ),
        ],
        state.tls.chain_pem(),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct HostNamesForm {
    names: String,
}

/// Saves the extra names the box answers to (DNS-rebinding allow-list).
pub async fn save_host_names(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<HostNamesForm>,
) -> Result<Response, WebError> {
    let (names, detail) = actions::settings::save_host_names(&state, &ctx, &form.names).await?;
    let html = HostNamesPartial {
        builtin: state.hosts.builtin(),
        extra: names.join("\n"),
        saved: Some(format!("Saved. {detail}.")),
    }
    .render()?;
    Ok(Html(html).into_response())
}
