//! The in-process event bus. Domain code publishes what happened; the web layer turns events
//! into server-sent events for open pages, so later features push progress and status changes
//! without the browser polling.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// What a live part of a page shows, and so which events make it fetch itself again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Devices,
    Deploy,
    Apps,
    Update,
}

impl Topic {
    pub const ALL: [Topic; 4] = [Topic::Devices, Topic::Deploy, Topic::Apps, Topic::Update];
}

impl Event {
    /// The topic of an event that changes what live page parts show; None for toasts and
    /// audit rows, which pages add as they come rather than fetch.
    pub fn topic(&self) -> Option<Topic> {
        match self {
            Event::Toast { .. } | Event::Audit(_) => None,
            Event::DeviceStatus { .. } => Some(Topic::Devices),
            Event::Deployment { .. } => Some(Topic::Deploy),
            Event::AppState { .. } => Some(Topic::Apps),
            Event::Update => Some(Topic::Update),
        }
    }
}

/// Buffered events per subscriber. A page that falls this far behind (a stalled tab) skips the
/// oldest instead of holding memory for it; status events are re-sent often enough to recover.
const CAPACITY: usize = 256;

/// Cheap-to-clone publisher/subscriber handle.
///
/// Every event gets the next number of one sequence, and the bus remembers the last number of
/// each topic. A page is rendered "as of" the sequence read before its data (`seq`); an event
/// it never heard (sent before its event stream opened, or while it was reconnecting, or while
/// a part of it was on its way) shows up as a topic whose last number is higher than the
/// page's, and the page fetches that part again. So no live page stays behind the truth.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<(u64, Event)>,
    seq: Arc<AtomicU64>,
    /// The last sequence number of each topic, in `Topic::ALL` order.
    last: Arc<[AtomicU64; Topic::ALL.len()]>,
    /// Which run of the daemon numbered the events (its start time in nanoseconds).
    boot: u64,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(CAPACITY).0,
            seq: Arc::default(),
            last: Arc::default(),
            boot: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default(),
        }
    }
}

impl EventBus {
    /// Publishes to every current subscriber; with none, the event is simply dropped (its
    /// topic's number still moves, so pages opened later know their data is newer).
    pub fn publish(&self, event: Event) {
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(t) = event.topic() {
            self.last[t as usize].fetch_max(n, Ordering::SeqCst);
        }
        let _ = self.tx.send((n, event));
    }

    /// Events with their sequence numbers, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<(u64, Event)> {
        self.tx.subscribe()
    }

    /// Which run of the daemon these numbers belong to.
    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// The sequence so far: read it before reading what a page shows.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// The last sequence number of each topic (0: none yet).
    pub fn last_of_topics(&self) -> [(Topic, u64); Topic::ALL.len()] {
        Topic::ALL.map(|t| (t, self.last[t as usize].load(Ordering::SeqCst)))
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
