//! The one live-event stream (`/events`, server-sent events) that signed-in pages subscribe to
//! through the htmx SSE extension. Events are rendered to HTML fragments here, named so a page
//! element can say `sse-swap="toast"`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::AppState;
use super::context::Ctx;
use super::error::WebError;
use super::paths::sse_event;
use super::views;
use crate::events::{Event, Topic};
use crate::store::{UiMode, now_unix};

/// When the session could not be checked (the database busy or closing), try again this much
/// later rather than ending a page's stream on a hiccup.
const RECHECK_AFTER_ERROR: Duration = Duration::from_secs(30);
/// The longest an open stream goes without looking at its session (the timer is normally set
/// to the session's idle expiry; this bounds it for very long timeouts).
const RECHECK_AT_LEAST: Duration = Duration::from_secs(24 * 60 * 60);
/// Comment lines keep proxies and browsers from timing the stream out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// An open stream ends as soon as its session does: the store signals every deletion of
/// sessions (sign-out, sign-out everywhere, a password change, the idle sweep), and a timer
/// fires when the session would expire if no other request refreshes it. Either way the
/// stream re-checks its own session, one indexed query; nothing polls.
struct StreamState {
    state: AppState,
    rx: tokio::sync::broadcast::Receiver<(u64, Event)>,
    stopping: tokio::sync::watch::Receiver<bool>,
    sessions_ended: tokio::sync::watch::Receiver<u64>,
    /// When to re-check the session unprompted: its idle expiry as last seen.
    recheck_at: Instant,
    token_hash: Vec<u8>,
    advanced: bool,
    /// The session is gone and the page has been told; the stream ends next.
    signed_out: bool,
    /// The first event to send: where each topic stands (see `hello`).
    hello: Option<SseEvent>,
}

impl StreamState {
    /// Looks the session up again; false once it is gone. Sets the next unprompted check.
    async fn session_alive(&mut self) -> bool {
        let idle = self.state.session_idle_timeout.as_secs() as i64;
        match self
            .state
            .store
            .session_expiry(self.token_hash.clone(), idle)
            .await
        {
            Ok(Some(expires)) => {
                // One second past the expiry, so the session is certainly idle for too long;
                // at least daily, whatever the configured timeout.
                let left = (expires.saturating_sub(now_unix()).max(0) as u64 + 1)
                    .min(RECHECK_AT_LEAST.as_secs());
                self.recheck_at = Instant::now() + Duration::from_secs(left);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, "could not re-check an event stream's session");
                self.recheck_at = Instant::now() + RECHECK_AFTER_ERROR;
                true
            }
        }
    }
}

pub async fn events(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, WebError> {
    let user = ctx.user()?;
    let mut st = StreamState {
        rx: state.events.subscribe(),
        stopping: state.stopping.clone(),
        sessions_ended: state.store.watch_sessions_ended(),
        recheck_at: Instant::now(),
        token_hash: user.token_hash.clone(),
        advanced: user.ui_mode == UiMode::Advanced,
        signed_out: false,
        hello: None,
        state,
    };
    // Subscribed first, then checked: a sign-out between the guard and here is not missed.
    if !st.session_alive().await {
        return Err(WebError::unauthenticated());
    }
    // Read after subscribing: every event numbered after these figures reaches this stream.
    st.hello = Some(hello(&st.state));
    let stream = stream::unfold(st, |mut st| async move {
        if st.signed_out {
            return None;
        }
        if let Some(first) = st.hello.take() {
            return Some((Ok(first), st));
        }
        loop {
            tokio::select! {
                _ = crate::shutdown::stopped(&mut st.stopping) => return None,
                changed = st.sessions_ended.changed() => {
                    // An error means the store is gone: the daemon is stopping.
                    if changed.is_err() {
                        return None;
                    }
                    if !st.session_alive().await {
                        return Some((Ok(signed_out()), st.signed_out()));
                    }
                }
                _ = tokio::time::sleep_until(st.recheck_at) => {
                    if !st.session_alive().await {
                        return Some((Ok(signed_out()), st.signed_out()));
                    }
                }
                msg = st.rx.recv() => match msg {
                    Ok((seq, event)) => {
                        if let Some(sse) = render(&event, st.advanced) {
                            return Some((Ok(sse.id(seq.to_string())), st));
                        }
                    }
                    // A slow page missed some events: tell it where every topic stands now,
                    // so the parts whose events it missed fetch themselves again.
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(missed = n, "event stream lagged");
                        return Some((Ok(hello(&st.state)), st));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

impl StreamState {
    fn signed_out(mut self) -> StreamState {
        self.signed_out = true;
        self
    }
}

/// Tells the page its session ended; the data is where to go.
fn signed_out() -> SseEvent {
    SseEvent::default()
        .event(sse_event::SIGNED_OUT)
        .data(super::paths::LOGIN)
}

/// Where each topic stands when the stream opens, e.g. `{"devices":12,"deploy":0,…}`. The
/// page compares it with the sequence its parts were rendered at (`data-since`, or the
/// page's `homelab-since`) and fetches again any part whose topic moved since: events sent
/// before the stream opened, or while it was reconnecting, are not lost.
fn hello(state: &AppState) -> SseEvent {
    let mut topics: serde_json::Map<String, serde_json::Value> = state
        .events
        .last_of_topics()
        .into_iter()
        .map(|(t, n)| (topic_event(t).to_string(), n.into()))
        .collect();
    // Numbers start again when the daemon does: a page that sees another boot fetches its
    // live parts once and counts from the new numbers.
    topics.insert("boot".into(), state.events.boot().to_string().into());
    SseEvent::default()
        .event(sse_event::HELLO)
        .data(serde_json::Value::Object(topics).to_string())
}

/// The SSE event name of a topic: the name live page parts listen for (`sse:devices`).
fn topic_event(t: Topic) -> &'static str {
    match t {
        Topic::Devices => sse_event::DEVICES,
        Topic::Deploy => sse_event::DEPLOY,
        Topic::Apps => sse_event::APPS,
        Topic::Update => sse_event::UPDATE,
    }
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
