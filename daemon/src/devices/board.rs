//! The board: every device with its last status, its facts, its share of the last day online and
//! its containers, built once per change instead of on every page and API call. Pages, cards and
//! the device list then cost no database work for devices, so 100 devices with a month of
//! history answer as fast as one, and a page load never reaches out to a device.
//!
//! It is rebuilt on the first read after the store's devices generation moved (any committed
//! change to devices, their status or history), so it is never behind the database: poll results
//! are announced to open pages only after their commit, and the page they fetch rebuilds it.
//! Text that depends on the clock ("last seen 5 min ago", the last day's uptime) is as fresh as
//! the last poll cycle, which writes every device's result.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use super::facts::{Container, Facts};
use crate::store::{DeviceRow, StatusRow, Store, StoreError, now_unix};

/// Every device as of one devices generation, in the store's order.
pub struct Board {
    generation: u64,
    pub entries: Vec<Entry>,
}

/// One device on the board.
pub struct Entry {
    pub device: DeviceRow,
    /// None until the device has been checked once.
    pub status: Option<StatusRow>,
    /// The last poll's facts, parsed (kept while offline).
    pub facts: Option<Facts>,
    /// Share of the last 24 hours the device answered (0..1).
    pub uptime_24h: Option<f64>,
    /// What the last poll saw; None when it could not ask Docker.
    pub containers: Option<Arc<[Container]>>,
}

impl Board {
    /// The devices generation this board shows.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn entry(&self, id: i64) -> Option<&Entry> {
        self.entries.iter().find(|e| e.device.id == id)
    }
}

/// The containers each device's last poll saw, by device id: written by the poll recorder before
/// it commits, read when the board is built. Entries of removed devices go at the next build.
pub(crate) type LiveContainers = Arc<Mutex<HashMap<i64, Arc<[Container]>>>>;

/// The current board and what it takes to rebuild it.
#[derive(Default)]
pub(crate) struct BoardCache {
    current: RwLock<Option<Arc<Board>>>,
    /// One rebuild at a time: a burst of page loads after a change waits for one build.
    rebuilding: tokio::sync::Mutex<()>,
    pub(crate) live: LiveContainers,
}

impl BoardCache {
    /// The board as of the latest committed change.
    pub(crate) async fn get(&self, store: &Store) -> Result<Arc<Board>, StoreError> {
        if let Some(b) = self.fresh(store.devices_generation()) {
            return Ok(b);
        }
        let _one = self.rebuilding.lock().await;
        // Read before the queries: a change committed while they run leaves this board one
        // generation behind, so the next read builds again.
        let generation = store.devices_generation();
        if let Some(b) = self.fresh(generation) {
            return Ok(b);
        }
        let board = Arc::new(self.build(store, generation).await?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(board.clone());
        Ok(board)
    }

    /// Drops a removed device's containers.
    pub(crate) fn forget(&self, id: i64) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    fn fresh(&self, generation: u64) -> Option<Arc<Board>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|b| b.generation == generation)
            .cloned()
    }

    async fn build(&self, store: &Store, generation: u64) -> Result<Board, StoreError> {
        let devices = store.devices().await?;
        let mut statuses: HashMap<i64, StatusRow> = store
            .device_statuses()
            .await?
            .into_iter()
            .map(|s| (s.device_id, s))
            .collect();
        // Every device's uptime in one query over the hourly rollups.
        let mut uptimes = store.uptime_ratios(now_unix() - 24 * 3600).await?;
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let ids: HashSet<i64> = devices.iter().map(|d| d.id).collect();
        live.retain(|id, _| ids.contains(id));
        let entries = devices
            .into_iter()
            .map(|device| {
                let status = statuses.remove(&device.id);
                Entry {
                    facts: status
                        .as_ref()
                        .and_then(|s| serde_json::from_str(&s.facts).ok()),
                    uptime_24h: uptimes.remove(&device.id),
                    containers: live.get(&device.id).cloned(),
                    status,
                    device,
                }
            })
            .collect();
        Ok(Board {
            generation,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{HistoryPolicy, NewDevice, PollRecord, Sample};

    const POLICY: HistoryPolicy = HistoryPolicy {
        keep_full_secs: 24 * 3600,
        coarse_secs: 900,
        keep_total_secs: 30 * 24 * 3600,
    };

    fn polled(device_id: i64, state: &str, hostname: &str) -> PollRecord {
        let now = now_unix();
        PollRecord {
            status: StatusRow {
                device_id,
                state: state.into(),
                reason: String::new(),
                facts: format!(
                    r#"{{"hostname":"{hostname}","arch":"x86_64","kernel":"","os":"","cpu_model":"","cores":2,"mem_total":1,"mem_available":1,"load":[0,0,0],"uptime_secs":1,"disk_path":"/","disk_total":1,"disk_free":1,"docker":null}}"#
                ),
                last_seen_at: Some(now),
                checked_at: now,
            },
            sample: Sample {
                at: now - now % 60,
                online: true,
                ..Sample::default()
            },
        }
    }

    /// Every kind of change reaches the next read, and nothing is rebuilt without one.
    #[tokio::test]
    async fn the_board_follows_every_committed_change_and_only_then_rebuilds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("homelab.db")).unwrap();
        let cache = BoardCache::default();
        assert!(cache.get(&store).await.unwrap().entries.is_empty());

        let added = store
            .add_device(
                NewDevice {
                    name: "nas".into(),
                    host: "10.0.0.2".into(),
                    port: 22,
                    username: "homelab".into(),
                    host_key: "key".into(),
                    docker_socket: "/var/run/docker.sock".into(),
                    key_comment: String::new(),
                },
                |_| Vec::new(),
            )
            .await
            .unwrap();
        let board = cache.get(&store).await.unwrap();
        let e = board.entry(added.id).unwrap();
        assert_eq!(e.device.name, "nas");
        assert!(e.status.is_none() && e.facts.is_none() && e.containers.is_none());
        assert!(
            Arc::ptr_eq(&board, &cache.get(&store).await.unwrap()),
            "no change, no rebuild"
        );

        // A poll: status, parsed facts, uptime, and the containers the recorder kept.
        let container = Container {
            name: "web".into(),
            running: true,
            ..Container::default()
        };
        cache
            .live
            .lock()
            .unwrap()
            .insert(added.id, vec![container.clone()].into());
        store
            .record_polls(vec![polled(added.id, "online", "nas-host")], POLICY)
            .await
            .unwrap();
        let board = cache.get(&store).await.unwrap();
        let e = board.entry(added.id).unwrap();
        assert_eq!(e.status.as_ref().unwrap().state, "online");
        assert_eq!(e.facts.as_ref().unwrap().hostname, "nas-host");
        assert_eq!(e.uptime_24h, Some(1.0));
        assert_eq!(e.containers.as_deref(), Some(&[container][..]));

        // Renamed, a changed host key waiting, then removed.
        store
            .update_device(added.id, "big nas".into(), "10.0.0.3".into(), 22)
            .await
            .unwrap();
        assert_eq!(
            cache.get(&store).await.unwrap().entries[0].device.name,
            "big nas"
        );
        store
            .set_pending_host_key(added.id, "new key".into())
            .await
            .unwrap();
        assert_eq!(
            cache.get(&store).await.unwrap().entries[0]
                .device
                .pending_host_key
                .as_deref(),
            Some("new key")
        );
        store.delete_device(added.id).await.unwrap();
        assert!(cache.get(&store).await.unwrap().entries.is_empty());
        assert!(
            cache.live.lock().unwrap().is_empty(),
            "a removed device's containers go with it"
        );
    }
}
