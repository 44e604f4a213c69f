//! The in-process event bus. Domain code publishes what happened; the web layer turns events
//! into server-sent events for open pages, so later features push progress and status changes
//! without the browser polling.

use tokio::sync::broadcast;

use crate::store::{AuditEntry, Store};

/// How bad a toast is; the UI pairs each with an icon and a word, never colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Success,
    Warning,
    Error,
}

/// Something open pages may want to show.
#[derive(Debug, Clone)]
pub enum Event {
    /// A message for every signed-in page.
    Toast { level: Level, message: String },
    /// A new audit record (the Settings page appends it live).
    Audit(AuditEntry),
    /// A device's status or figures changed (dashboard and device pages refresh).
    DeviceStatus { device_id: i64 },
    /// A deployment moved (state, progress or message); its page re-fetches its progress.
    Deployment { id: i64, slug: String },
    /// A deployed app's state changed (started, stopped, removed, changed behind our back).
    AppState { slug: String },
    /// A system update moved (uploaded, installing, installed, failed).
    Update,
}

/// Buffered events per subscriber. A page that falls this far behind (a stalled tab) skips the
/// oldest instead of holding memory for it; status events are re-sent often enough to recover.
const CAPACITY: usize = 256;

/// Cheap-to-clone publisher/subscriber handle.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Publishes to every current subscriber; with none, the event is simply dropped.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Records what Homelab did on its own (a rollback, an update finishing) in the activity
    /// log, as actor "homelab", and shows it on open pages. Requests by people are audited by
    /// the routes under their name. A failed write is logged, never fatal to the work done.
    pub async fn audit_by_homelab(&self, store: &Store, action: &'static str, detail: String) {
        match store
            .audit(
                "homelab".into(),
                action,
                detail,
                String::new(),
                String::new(),
            )
            .await
        {
            Ok(entry) => self.publish(Event::Audit(entry)),
            Err(e) => tracing::warn!(error = %e, "could not write an audit record"),
        }
    }
}
