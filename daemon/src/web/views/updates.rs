//! Settings → Updates: the running version and the A/B slots, uploading an update file or
//! fetching one from the update channel, installing it with live progress, restarting into
//! it, how the last update ended, and the channel and update window settings.

use askama::Template;
use axum::extract::{Form, State};
use axum::response::{Html, IntoResponse, Response};

use super::{Section, format_time, page};
use crate::ota::auto::{Answer, ChannelSettings, Check, Window};
use crate::ota::{Phase, UpdateStatus};
use crate::store::UiMode;
use crate::units::human_bytes;
use crate::web::AppState;
use crate::web::actions;
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Template)]
#[template(path = "partials/update_panel.html")]
struct Panel {
    s: UpdateStatus,
    advanced: bool,
    last_when: String,
    staged_size: String,
    checked_when: String,
    offered_size: String,
    /// The version the "Download" button fetches, when it is offered.
    download_version: Option<String>,
    window_words: String,
}

#[derive(Template)]
#[template(path = "pages/updates.html")]
struct UpdatesPage {
    panel: String,
    channel_form: String,
}

/// The channel and window settings: outside the live panel, so a refresh never wipes what the
/// owner is typing.
#[derive(Template)]
#[template(path = "partials/update_channel.html")]
struct ChannelForm {
    url: String,
    automatic: bool,
    start: String,
    end: String,
    saved: Option<String>,
}

impl ChannelForm {
    fn new(s: &ChannelSettings, saved: Option<String>) -> ChannelForm {
        ChannelForm {
            url: s.url.clone().unwrap_or_default(),
            automatic: s.window.is_some(),
            start: s.window.map_or_else(|| "03:00".into(), |w| w.start_text()),
            end: s.window.map_or_else(|| "05:00".into(), |w| w.end_text()),
            saved,
        }
    }
}

#[derive(Template)]
#[template(path = "partials/update_restarting.html")]
struct Restarting {
    version: Option<String>,
}

async fn panel_html(state: &AppState, ctx: &Ctx) -> Result<String, WebError> {
    let s = state.ota.status().await;
    let advanced = ctx.user()?.ui_mode == UiMode::Advanced;
    let offered = match &s.channel.last_check {
        Some(Check {
            answer: Answer::Available { manifest },
            ..
        }) => Some(manifest),
        _ => None,
    };
    Ok(Panel {
        last_when: s
            .last_result
            .as_ref()
            .map(|l| format_time(l.at))
            .unwrap_or_default(),
        staged_size: s
            .staged
            .as_ref()
            .map(|st| human_bytes(st.size))
            .unwrap_or_default(),
        checked_when: s
            .channel
            .last_check
            .as_ref()
            .map(|c| format_time(c.checked_at))
            .unwrap_or_default(),
        offered_size: offered.map(|m| human_bytes(m.size)).unwrap_or_default(),
        // Offered when nothing else is under way and the kept file is not already it.
        download_version: offered
            .filter(|m| {
                s.available
                    && matches!(s.progress.phase, Phase::Idle | Phase::Failed)
                    && s.staged.as_ref().is_none_or(|st| st.version != m.version)
            })
            .map(|m| m.version.clone()),
        window_words: s.channel.window.map(|w| w.describe()).unwrap_or_default(),
        s,
        advanced,
    }
    .render()?)
}

pub async fn show(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let panel = panel_html(&state, &ctx).await?;
    let channel_form = ChannelForm::new(&state.ota.channel_settings().await, None).render()?;
    page(
        &ctx,
        Section::Settings,
        "Updates",
        UpdatesPage {
            panel,
            channel_form,
        }
        .render()?,
    )
}

pub async fn panel(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    Ok(Html(panel_html(&state, &ctx).await?).into_response())
}

pub async fn install(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    actions::updates::install(&state, &ctx).await?;
    panel(State(state), ctx).await
}

pub async fn discard(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    actions::updates::discard(&state, &ctx).await?;
    panel(State(state), ctx).await
}

pub async fn reboot(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let version = actions::updates::reboot(&state, &ctx).await?;
    Ok(Html(Restarting { version }.render()?).into_response())
}

/// The channel form as posted: the window's times only count with "automatic" ticked; the
/// offset comes from the browser (JavaScript fills it in; without it the times are UTC).
#[derive(serde::Deserialize)]
pub struct ChannelFormInput {
    #[serde(default)]
    url: String,
    #[serde(default)]
    automatic: Option<String>,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    utc_offset: Option<String>,
}

pub async fn save_channel(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ChannelFormInput>,
) -> Result<Response, WebError> {
    let offset = form
        .utc_offset
        .as_deref()
        .and_then(|o| o.trim().parse().ok())
        .unwrap_or(0);
    let window = match form.automatic {
        Some(_) => Some(Window::parse(&form.start, &form.end, offset)?),
        None => None,
    };
    let settings = ChannelSettings {
        url: Some(form.url),
        window,
    };
    let saved = actions::updates::set_channel(&state, &ctx, settings).await?;
    Ok(Html(ChannelForm::new(&saved, Some("Saved.".into())).render()?).into_response())
}

pub async fn check(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    actions::updates::check(&state).await?;
    panel(State(state), ctx).await
}

pub async fn download(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    actions::updates::download(&state, &ctx).await?;
    panel(State(state), ctx).await
}
