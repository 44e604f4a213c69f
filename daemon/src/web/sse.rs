//! The one live-event stream (`/events`, server-sent events) that signed-in pages subscribe to
//! through the htmx SSE extension. Events are rendered to HTML fragments here, named so a page
//! element can say `sse-swap="toast"`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::context::Ctx;
use super::error::WebError;
use super::paths::sse_event;
use super::views;
use crate::events::Event;
use crate::store::UiMode;

/// How often an open stream re-checks that its session still exists, so signing out
/// everywhere also silences pages left open.
const RECHECK_SESSION: Duration = Duration::from_secs(60);
/// Comment lines keep proxies and browsers from timing the stream out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct StreamState {
    state: AppState,
    rx: tokio::sync::broadcast::Receiver<Event>,
    stopping: tokio::sync::watch::Receiver<bool>,
    recheck: tokio::time::Interval,
    token_hash: Vec<u8>,
    advanced: bool,
}

pub async fn events(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, WebError> {
    let user = ctx.user()?;
    let mut recheck = tokio::time::interval(RECHECK_SESSION);
    recheck.reset(); // the first tick would fire at once
    let st = StreamState {
        rx: state.events.subscribe(),
        stopping: state.stopping.clone(),
        recheck,
        token_hash: user.token_hash.clone(),
        advanced: user.ui_mode == UiMode::Advanced,
        state,
    };
    let stream = stream::unfold(st, |mut st| async move {
        loop {
            tokio::select! {
                _ = crate::app::stopped(&mut st.stopping) => return None,
                _ = st.recheck.tick() => {
                    if !st.state.store.session_exists(st.token_hash.clone()).await.unwrap_or(false) {
                        return None;
                    }
                }
                msg = st.rx.recv() => match msg {
                    Ok(event) => {
                        if let Some(sse) = render(&event, st.advanced) {
                            return Some((Ok(sse), st));
                        }
                    }
                    // A slow page missed some events; later ones still arrive.
                    Err(RecvError::Lagged(n)) => tracing::debug!(missed = n, "event stream lagged"),
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn render(event: &Event, advanced: bool) -> Option<SseEvent> {
    let (name, html) = match event {
        Event::Toast { level, message } => {
            (sse_event::TOAST, views::toast_html(*level, message, ""))
        }
        Event::Audit(entry) => (sse_event::AUDIT, views::audit_row_html(entry, advanced)),
        // Pages re-fetch their device panels on this trigger; the payload is only the id.
        Event::DeviceStatus { device_id } => (sse_event::DEVICES, device_id.to_string()),
        Event::Deployment { id, .. } => (sse_event::DEPLOY, id.to_string()),
        Event::AppState { slug } => (sse_event::APPS, slug.clone()),
        // Not empty: browsers drop an event whose data is empty (the EventSource rules).
        Event::Update => (sse_event::UPDATE, "changed".into()),
    };
    // SSE data lines cannot contain newlines; the fragments are HTML, so spaces do as well.
    Some(
        SseEvent::default()
            .event(name)
            .data(html.replace(['\n', '\r'], " ")),
    )
}
