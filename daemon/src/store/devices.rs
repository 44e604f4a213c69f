//! Adopted devices, their last status, and their history of samples.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, now_unix};

/// A device as stored.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub host_key: String,
    pub pending_host_key: Option<String>,
    pub docker_socket: String,
    pub key_comment: String,
    pub created_at: i64,
}

/// What adoption stores.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub host_key: String,
    pub docker_socket: String,
    pub key_comment: String,
}

/// The last poll result of a device.
#[derive(Debug, Clone)]
pub struct StatusRow {
    pub device_id: i64,
    /// online | degraded | offline | blocked
    pub state: String,
    pub reason: String,
    /// JSON of the facts last read (kept while offline so the UI can still show them).
    pub facts: String,
    pub last_seen_at: Option<i64>,
    pub checked_at: i64,
}

/// One point of history.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub at: i64,
    pub online: bool,
    pub load1: Option<f64>,
    pub mem_used: Option<i64>,
    pub mem_total: Option<i64>,
    pub disk_used: Option<i64>,
    pub disk_total: Option<i64>,
}

const DEVICE_COLUMNS: &str = "id, name, host, port, username, host_key, pending_host_key, docker_socket, key_comment, created_at";

fn device_from_row(r: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        id: r.get(0)?,
        name: r.get(1)?,
        host: r.get(2)?,
        port: r.get::<_, i64>(3)? as u16,
        username: r.get(4)?,
        host_key: r.get(5)?,
        pending_host_key: r.get(6)?,
        docker_socket: r.get(7)?,
        key_comment: r.get(8)?,
        created_at: r.get(9)?,
    })
}

fn status_from_row(r: &Row<'_>) -> rusqlite::Result<StatusRow> {
    Ok(StatusRow {
        device_id: r.get(0)?,
        state: r.get(1)?,
        reason: r.get(2)?,
        facts: r.get(3)?,
        last_seen_at: r.get(4)?,
        checked_at: r.get(5)?,
    })
}

impl Store {
    /// Inserts a device and its sealed secrets in one transaction. `seal` gets the new id (the
    /// vault binds each blob to its owner) and returns (purpose, sealed blob) pairs.
    pub async fn add_device<F>(&self, d: NewDevice, seal: F) -> Result<DeviceRow, StoreError>
    where
        F: FnOnce(i64) -> Vec<(&'static str, Vec<u8>)> + Send + 'static,
    {
        self.call_devices(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let clash: Option<String> = tx
                .query_row(
                    "SELECT name FROM devices WHERE name = ?1 OR (host = ?2 AND port = ?3)",
                    params![d.name, d.host, d.port],
                    |r| r.get(0),
                )
                .optional()?;
            if clash.is_some() {
                return Err(StoreError::Conflict("a device with this name or address already exists"));
            }
            let now = now_unix();
            tx.execute(
                "INSERT INTO devices(name, host, port, username, host_key, docker_socket, key_comment, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![d.name, d.host, d.port, d.username, d.host_key, d.docker_socket, d.key_comment, now],
            )?;
            let id = tx.last_insert_rowid();
            for (purpose, blob) in seal(id) {
                tx.execute(
                    "INSERT INTO secrets(owner, purpose, sealed, updated_at) VALUES (?1, ?2, ?3, ?4)",
                    params![format!("device:{id}"), purpose, blob, now],
                )?;
            }
            let row = tx.query_row(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"), [id], device_from_row)?;
            tx.commit()?;
            Ok(row)
        })
        .await
    }

    pub async fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY name COLLATE NOCASE"
            ))?;
            Ok(stmt
                .query_map([], device_from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn device(&self, id: i64) -> Result<Option<DeviceRow>, StoreError> {
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"),
                [id],
                device_from_row,
            )
            .optional()?)
        })
        .await
    }

    /// Finds a device by address (to say "already added" before connecting).
    pub async fn device_by_address(
        &self,
        host: String,
        port: u16,
    ) -> Result<Option<DeviceRow>, StoreError> {
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE host = ?1 AND port = ?2"),
                params![host, port],
                device_from_row,
            )
            .optional()?)
        })
        .await
    }

    /// Deletes a device with its secrets, status and history.
    pub async fn delete_device(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.call_devices(move |c| {
            let tx = c.transaction()?;
            let name: Option<String> = tx
                .query_row(
                    "DELETE FROM devices WHERE id = ?1 RETURNING name",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "DELETE FROM secrets WHERE owner = ?1",
                [format!("device:{id}")],
            )?;
            // Its shared databases' records and superuser passwords: device ids are reused,
            // and a new device must not inherit them.
            tx.execute("DELETE FROM shared_databases WHERE device_id = ?1", [id])?;
            tx.execute(
                "DELETE FROM secrets WHERE owner IN (?1, ?2)",
                [format!("pool:{id}:postgres"), format!("pool:{id}:mariadb")],
            )?;
            tx.commit()?;
            Ok(name)
        })
        .await
    }

    /// Changes a device's name and address (unique, like at adoption).
    pub async fn update_device(
        &self,
        id: i64,
        name: String,
        host: String,
        port: u16,
    ) -> Result<(), StoreError> {
        self.call_devices(move |c| {
            match c.execute(
                "UPDATE devices SET name = ?1, host = ?2, port = ?3 WHERE id = ?4",
                params![name, host, port, id],
            ) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(StoreError::Conflict(
                        "another device already has this name or address",
                    ))
                }
                other => Ok(other.map(|_| ())?),
            }
        })
        .await
    }

    /// Replaces a device's login: user name, our key's comment and its sealed secrets, in one
    /// transaction (a kept password from before is dropped unless a new one comes with it).
    pub async fn set_device_login(
        &self,
        id: i64,
        username: String,
        key_comment: String,
        sealed: Vec<(&'static str, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        self.call_devices(move |c| {
            let tx = c.transaction()?;
            let owner = format!("device:{id}");
            tx.execute("UPDATE devices SET username = ?1, key_comment = ?2 WHERE id = ?3", params![username, key_comment, id])?;
            tx.execute("DELETE FROM secrets WHERE owner = ?1", [&owner])?;
            let now = now_unix();
            for (purpose, blob) in sealed {
                tx.execute(
                    "INSERT INTO secrets(owner, purpose, sealed, updated_at) VALUES (?1, ?2, ?3, ?4)",
                    params![owner, purpose, blob, now],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Records a changed host key the device presented (the device stays blocked).
    pub async fn set_pending_host_key(&self, id: i64, key: String) -> Result<(), StoreError> {
        self.call_devices(move |c| {
            c.execute(
                "UPDATE devices SET pending_host_key = ?1 WHERE id = ?2",
                params![key, id],
            )?;
            Ok(())
        })
        .await
    }

    /// Pins the pending key (the user confirmed the device was reinstalled).
    pub async fn trust_pending_host_key(&self, id: i64) -> Result<bool, StoreError> {
        self.call_devices(move |c| {
            let n = c.execute(
                "UPDATE devices SET host_key = pending_host_key, pending_host_key = NULL
                 WHERE id = ?1 AND pending_host_key IS NOT NULL",
                [id],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// The last status of one device, if it has been checked.
    pub async fn device_status(&self, id: i64) -> Result<Option<StatusRow>, StoreError> {
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT device_id, state, reason, facts, last_seen_at, checked_at FROM device_status WHERE device_id = ?1",
                [id],
                status_from_row,
            )
            .optional()?)
        })
        .await
    }

    pub async fn device_statuses(&self) -> Result<Vec<StatusRow>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT device_id, state, reason, facts, last_seen_at, checked_at FROM device_status")?;
            let rows = stmt.query_map([], status_from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Records poll results, statuses and history samples of any number of devices, in ONE
    /// transaction: one fsync for a whole poll cycle instead of two per device. A device deleted
    /// while it was being polled is skipped (its row in the answer says so).
    pub async fn record_polls(
        &self,
        batch: Vec<PollRecord>,
        policy: HistoryPolicy,
    ) -> Result<Vec<Recorded>, StoreError> {
        self.call_devices(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let recorded = record_polls_in(&tx, &batch, policy)?;
            tx.commit()?;
            Ok(recorded)
        })
        .await
    }

    /// History since `since`, oldest first.
    pub async fn samples(&self, device_id: i64, since: i64) -> Result<Vec<Sample>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT at, online, load1, mem_used, mem_total, disk_used, disk_total FROM device_samples
                 WHERE device_id = ?1 AND at >= ?2 ORDER BY at",
            )?;
            let rows = stmt
                .query_map(params![device_id, since], |r| {
                    Ok(Sample {
                        at: r.get(0)?,
                        online: r.get(1)?,
                        load1: r.get(2)?,
                        mem_used: r.get(3)?,
                        mem_total: r.get(4)?,
                        disk_used: r.get(5)?,
                        disk_total: r.get(6)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// The uptime of every device with samples since `since`, in one query: the share of its
    /// minute samples that were online, from the hourly rollups plus the samples of the partial
    /// hour at the start. Equal to `AVG(online)` over the samples as long as `since` lies within
    /// the full-resolution window (older hours count every minute written, where the samples
    /// table has been thinned to one per coarse bucket).
    pub async fn uptime_ratios(&self, since: i64) -> Result<HashMap<i64, f64>, StoreError> {
        self.read(move |c| Ok(uptime_in(c, since, None)?)).await
    }
}

/// One poll's result as stored: the device's status and its history point.
#[derive(Debug, Clone)]
pub struct PollRecord {
    pub status: StatusRow,
    pub sample: Sample,
}

/// What `record_polls` did with one record, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub device_id: i64,
    /// False when the device no longer exists (deleted while it was polled).
    pub stored: bool,
    /// The state before this record (None: the first check).
    pub previous_state: Option<String>,
}

/// How history is kept bounded: full resolution for `keep_full_secs`, then one sample per
/// `coarse_secs` (the first of each bucket) up to `keep_total_secs`, nothing older.
#[derive(Debug, Clone, Copy)]
pub struct HistoryPolicy {
    pub keep_full_secs: i64,
    pub coarse_secs: i64,
    pub keep_total_secs: i64,
}

const HOUR: i64 = 3600;

pub(super) fn record_polls_in(
    tx: &rusqlite::Transaction<'_>,
    batch: &[PollRecord],
    policy: HistoryPolicy,
) -> rusqlite::Result<Vec<Recorded>> {
    let mut out = Vec::with_capacity(batch.len());
    for r in batch {
        let id = r.status.device_id;
        let found: Option<Option<String>> = tx
            .prepare_cached(
                "SELECT s.state FROM devices d LEFT JOIN device_status s ON s.device_id = d.id
                 WHERE d.id = ?1",
            )?
            .query_row([id], |row| row.get(0))
            .optional()?;
        let Some(previous_state) = found else {
            out.push(Recorded {
                device_id: id,
                stored: false,
                previous_state: None,
            });
            continue;
        };
        let s = &r.status;
        tx.prepare_cached(
            "INSERT INTO device_status(device_id, state, reason, facts, last_seen_at, checked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(device_id) DO UPDATE SET state = excluded.state, reason = excluded.reason,
               facts = CASE WHEN excluded.facts = '' THEN device_status.facts ELSE excluded.facts END,
               last_seen_at = COALESCE(excluded.last_seen_at, device_status.last_seen_at),
               checked_at = excluded.checked_at",
        )?
        .execute(params![id, s.state, s.reason, s.facts, s.last_seen_at, s.checked_at])?;
        add_sample_in(tx, id, &r.sample, policy)?;
        out.push(Recorded {
            device_id: id,
            stored: true,
            previous_state,
        });
    }
    Ok(out)
}

/// Writes one minute sample with its hourly rollup, then keeps history bounded: prunes what
/// aged past `keep_total_secs` and downsamples only the coarse buckets that aged past the
/// full-resolution window since the device's previous sample (not its whole old range).
fn add_sample_in(
    tx: &rusqlite::Transaction<'_>,
    device_id: i64,
    s: &Sample,
    policy: HistoryPolicy,
) -> rusqlite::Result<()> {
    // The newest sample so far says how far earlier writes have downsampled: each write thins
    // everything older than its own time minus the full-resolution window.
    let newest: Option<i64> = tx
        .prepare_cached("SELECT MAX(at) FROM device_samples WHERE device_id = ?1")?
        .query_row([device_id], |r| r.get(0))?;
    // "Latest poll in a minute wins": a replaced minute still counts once in its hour.
    let replaced: Option<bool> = tx
        .prepare_cached("SELECT online FROM device_samples WHERE device_id = ?1 AND at = ?2")?
        .query_row(params![device_id, s.at], |r| r.get(0))
        .optional()?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO device_samples(device_id, at, online, load1, mem_used, mem_total, disk_used, disk_total)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![device_id, s.at, s.online, s.load1, s.mem_used, s.mem_total, s.disk_used, s.disk_total])?;
    let (added, online_delta) = match replaced {
        None => (1, i64::from(s.online)),
        Some(was) => (0, i64::from(s.online) - i64::from(was)),
    };
    tx.prepare_cached(
        "INSERT INTO device_uptime_hours(device_id, hour, minutes, online_minutes) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(device_id, hour) DO UPDATE SET minutes = minutes + excluded.minutes,
           online_minutes = online_minutes + excluded.online_minutes",
    )?
    .execute(params![device_id, s.at.div_euclid(HOUR) * HOUR, added, online_delta])?;

    let now = s.at;
    let oldest_kept = now - policy.keep_total_secs;
    tx.prepare_cached("DELETE FROM device_samples WHERE device_id = ?1 AND at < ?2")?
        .execute(params![device_id, oldest_kept])?;
    // An hour goes once all of it is older than anything kept.
    tx.prepare_cached("DELETE FROM device_uptime_hours WHERE device_id = ?1 AND hour <= ?2")?
        .execute(params![device_id, oldest_kept - HOUR])?;

    // Downsample: older than `cutoff`, keep only the first sample of each coarse bucket. Below
    // the previous write's cutoff that is already so, so only the buckets from the one holding
    // that cutoff up to the new cutoff need it: usually one bucket and a few rows. (A clock
    // stepped back by more than the window can leave a few extra points, until they are pruned.)
    let Some(newest) = newest else {
        return Ok(());
    };
    let cutoff = now - policy.keep_full_secs;
    let from = (newest - policy.keep_full_secs).div_euclid(policy.coarse_secs) * policy.coarse_secs;
    if from < cutoff {
        tx.prepare_cached(
            "DELETE FROM device_samples WHERE device_id = ?1 AND at >= ?2 AND at < ?3 AND at NOT IN (
                SELECT MIN(at) FROM device_samples WHERE device_id = ?1 AND at >= ?2 AND at < ?3
                GROUP BY at / ?4)",
        )?
        .execute(params![device_id, from, cutoff, policy.coarse_secs])?;
    }
    Ok(())
}

/// Uptime per device since `since` (every device, or only `device`): the rollups of the hours
/// starting at or after `since`, plus the minute samples of the partial hour before the first
/// of them. Both parts seek the primary keys device by device (`IN (SELECT id FROM devices)`),
/// so the cost is a day of rollups and at most an hour of samples per device, whatever the
/// length of the history.
pub(super) fn uptime_in(
    c: &rusqlite::Connection,
    since: i64,
    device: Option<i64>,
) -> rusqlite::Result<HashMap<i64, f64>> {
    let first_hour =
        since.div_euclid(HOUR) * HOUR + if since.rem_euclid(HOUR) == 0 { 0 } else { HOUR };
    let which = match device {
        Some(_) => "(?3)",
        None => "(SELECT id FROM devices)",
    };
    let sql = format!(
        "SELECT device_id, SUM(n), SUM(up) FROM (
            SELECT device_id, minutes AS n, online_minutes AS up FROM device_uptime_hours
             WHERE device_id IN {which} AND hour >= ?2
            UNION ALL
            SELECT device_id, 1, online FROM device_samples
             WHERE device_id IN {which} AND at >= ?1 AND at < ?2
         ) GROUP BY device_id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = match device {
        Some(id) => stmt.query(params![since, first_hour, id])?,
        None => stmt.query(params![since, first_hour])?,
    };
    rows.mapped(|r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })
    .filter_map(|r| match r {
        Ok((id, n, up)) if n > 0 => Some(Ok((id, up as f64 / n as f64))),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Instant;

    use rusqlite::Connection;

    use super::super::migrations;
    use super::*;

    /// A small deterministic generator (xorshift64*): randomized histories without a crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> i64 {
            (self.next() % n) as i64
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    const DAY: i64 = 24 * HOUR;

    fn open(path: &Path) -> Connection {
        let mut c = Connection::open(path).unwrap();
        c.pragma_update(None, "foreign_keys", true).unwrap();
        // Thousands of small transactions: durability is not what these tests are about.
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "OFF").unwrap();
        migrations::migrate(&mut c, path).unwrap();
        c
    }

    fn add_devices(c: &Connection, n: i64) {
        for id in 1..=n {
            c.execute(
                "INSERT INTO devices(id, name, host, port, username, host_key, docker_socket, key_comment, created_at)
                 VALUES (?1, ?2, ?2, 22, 'homelab', 'key', '/var/run/docker.sock', '', 0)",
                params![id, format!("device-{id}")],
            )
            .unwrap();
        }
    }

    fn poll(device_id: i64, at: i64, online: bool) -> PollRecord {
        PollRecord {
            status: StatusRow {
                device_id,
                state: if online { "online" } else { "offline" }.into(),
                reason: String::new(),
                facts: String::new(),
                last_seen_at: online.then_some(at),
                checked_at: at,
            },
            sample: Sample {
                at,
                online,
                load1: online.then_some(0.5),
                ..Sample::default()
            },
        }
    }

    fn record(c: &mut Connection, batch: &[PollRecord], policy: HistoryPolicy) -> Vec<Recorded> {
        let tx = c.transaction().unwrap();
        let recorded = record_polls_in(&tx, batch, policy).unwrap();
        tx.commit().unwrap();
        recorded
    }

    /// The write path before issue 12, verbatim (status and sample, each its own transaction,
    /// downsampling the device's whole old range): the reference the new path must match.
    fn old_write(c: &mut Connection, r: &PollRecord, p: HistoryPolicy) {
        let s = &r.status;
        c.execute(
            "INSERT INTO device_status(device_id, state, reason, facts, last_seen_at, checked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(device_id) DO UPDATE SET state = excluded.state, reason = excluded.reason,
               facts = CASE WHEN excluded.facts = '' THEN device_status.facts ELSE excluded.facts END,
               last_seen_at = COALESCE(excluded.last_seen_at, device_status.last_seen_at),
               checked_at = excluded.checked_at",
            params![s.device_id, s.state, s.reason, s.facts, s.last_seen_at, s.checked_at],
        )
        .unwrap();
        let (device_id, s) = (r.status.device_id, &r.sample);
        let tx = c.transaction().unwrap();
        tx.execute(
            "INSERT OR REPLACE INTO device_samples(device_id, at, online, load1, mem_used, mem_total, disk_used, disk_total)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![device_id, s.at, s.online, s.load1, s.mem_used, s.mem_total, s.disk_used, s.disk_total],
        )
        .unwrap();
        let now = s.at;
        tx.execute(
            "DELETE FROM device_samples WHERE device_id = ?1 AND at < ?2",
            params![device_id, now - p.keep_total_secs],
        )
        .unwrap();
        tx.execute(
            "DELETE FROM device_samples WHERE device_id = ?1 AND at < ?2 AND at NOT IN (
                SELECT MIN(at) FROM device_samples WHERE device_id = ?1 AND at < ?2 GROUP BY at / ?3)",
            params![device_id, now - p.keep_full_secs, p.coarse_secs],
        )
        .unwrap();
        tx.commit().unwrap();
    }

    /// Uptime as computed before issue 12: one AVG per device.
    fn old_uptime(c: &Connection, device_id: i64, since: i64) -> Option<f64> {
        c.prepare_cached("SELECT AVG(online) FROM device_samples WHERE device_id = ?1 AND at >= ?2")
            .unwrap()
            .query_row(params![device_id, since], |r| r.get(0))
            .unwrap()
    }

    fn history(c: &Connection) -> Vec<(i64, i64, bool)> {
        let mut st = c
            .prepare_cached(
                "SELECT device_id, at, online FROM device_samples ORDER BY device_id, at",
            )
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn assert_same_uptime(
        new: &Connection,
        old: &Connection,
        devices: i64,
        since: i64,
        what: &str,
    ) {
        let all = uptime_in(new, since, None).unwrap();
        for id in 1..=devices {
            let expected = old_uptime(old, id, since);
            let one = uptime_in(new, since, Some(id)).unwrap().get(&id).copied();
            match (all.get(&id).copied(), expected) {
                (Some(a), Some(e)) => assert!(
                    (a - e).abs() < 1e-12,
                    "{what}: device {id} since {since}: {a} != {e}"
                ),
                (a, e) => assert_eq!(a, e, "{what}: device {id} since {since}"),
            }
            assert_eq!(one, all.get(&id).copied(), "{what}: one device alone");
        }
    }

    #[test]
    fn rollups_and_incremental_downsampling_match_the_old_computation() {
        // Small windows, so a few thousand polls cover downsampling and pruning many times over.
        let policy = HistoryPolicy {
            keep_full_secs: 2 * HOUR,
            coarse_secs: 15 * 60,
            keep_total_secs: 9 * HOUR,
        };
        let dir = tempfile::tempdir().unwrap();
        for seed in 1..=3u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut new = open(&dir.path().join(format!("new-{seed}.db")));
            let mut old = open(&dir.path().join(format!("old-{seed}.db")));
            add_devices(&new, 3);
            add_devices(&old, 3);
            let mut now = 1_700_000_000 + rng.below(3600);
            for step in 0..1500 {
                // Polls 10..90 s apart, so some minutes are written twice ("latest poll in a
                // minute wins"); now and then the box was off for up to a few hours.
                now += if rng.chance(1) {
                    rng.below(4 * HOUR as u64)
                } else {
                    10 + rng.below(80)
                };
                let minute = now - now % 60;
                let mut batch = Vec::new();
                for id in 1..=3 {
                    if rng.chance(90) {
                        batch.push(poll(id, minute, !rng.chance(if id == 2 { 40 } else { 10 })));
                    }
                }
                for r in &batch {
                    old_write(&mut old, r, policy);
                }
                let recorded = record(&mut new, &batch, policy);
                assert!(recorded.iter().all(|r| r.stored));
                let what = format!("seed {seed}, step {step}");
                assert_eq!(history(&new), history(&old), "{what}: history");
                for since in [
                    minute - policy.keep_full_secs,
                    minute - HOUR - 1234,
                    minute - minute % HOUR,
                    now + 1,
                ] {
                    assert_same_uptime(&new, &old, 3, since, &what);
                }
            }
            // Rollups are pruned with the samples: nothing older than the history kept.
            let oldest_hour: i64 = new
                .query_row("SELECT MIN(hour) FROM device_uptime_hours", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert!(
                oldest_hour > now - policy.keep_total_secs - 2 * HOUR,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn a_deleted_device_is_skipped_in_a_batch_and_takes_its_rollups_along() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("h.db"));
        add_devices(&c, 2);
        let policy = HistoryPolicy {
            keep_full_secs: DAY,
            coarse_secs: 900,
            keep_total_secs: 30 * DAY,
        };
        let at = 1_700_000_040;
        let first = record(&mut c, &[poll(1, at, true), poll(2, at, false)], policy);
        assert_eq!(first[0].previous_state, None);
        c.execute("DELETE FROM devices WHERE id = 2", []).unwrap();
        let rows: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM device_uptime_hours WHERE device_id = 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 0, "ON DELETE CASCADE");
        // A result for the deleted device does not fail the others' batch.
        let second = record(
            &mut c,
            &[poll(2, at + 60, true), poll(1, at + 60, false)],
            policy,
        );
        assert!(!second[0].stored);
        assert!(second[1].stored);
        assert_eq!(second[1].previous_state.as_deref(), Some("online"));
        assert_eq!(
            uptime_in(&c, at - DAY, None).unwrap(),
            HashMap::from([(1, 0.5)])
        );
    }

    /// Issue 12's figure: 100 devices with 30 days of history. Seeded as the old write path
    /// leaves it (a sample a minute for the last day, one per 15 minutes before), migrated (the
    /// rollups back-filled), then written on through the new path; the uptime of every device
    /// must equal the old per-device AVG throughout. Prints the timings (`--nocapture`).
    #[test]
    fn uptime_of_100_devices_with_30_days_of_history() {
        const DEVICES: i64 = 100;
        let policy = HistoryPolicy {
            keep_full_secs: DAY,
            coarse_secs: 15 * 60,
            keep_total_secs: 30 * DAY,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let mut c = Connection::open(&path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "foreign_keys", true).unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        migrations::migrate_to(&mut c, 4).unwrap();
        add_devices(&c, DEVICES);
        let mut rng = Rng(12);
        let mut now: i64 = 1_800_000_000 + 1234;
        let minute = now - now % 60;
        let started = Instant::now();
        {
            let tx = c.transaction().unwrap();
            let mut ins = tx
                .prepare(
                    "INSERT INTO device_samples(device_id, at, online, load1, mem_used, mem_total, disk_used, disk_total)
                     VALUES (?1, ?2, ?3, 0.5, 1000, 2000, 3000, 4000)",
                )
                .unwrap();
            for id in 1..=DEVICES {
                let coarse = (minute - 30 * DAY).div_euclid(900) * 900 + 900;
                let full = minute - DAY;
                let times = (0..)
                    .map(|i| coarse + i * 900)
                    .take_while(|t| *t < full)
                    .chain((0..).map(|i| full + i * 60).take_while(|t| *t <= minute));
                // Outages come in streaks, more on some devices than others.
                let mut down = 0;
                for at in times {
                    if down == 0 && rng.chance(1 + (id % 5) as u64) {
                        down = 1 + rng.below(90);
                    }
                    ins.execute(params![id, at, down == 0]).unwrap();
                    down = (down - 1).max(0);
                }
            }
            drop(ins);
            tx.commit().unwrap();
        }
        let rows: i64 = c
            .query_row("SELECT COUNT(*) FROM device_samples", [], |r| r.get(0))
            .unwrap();
        let seeded = started.elapsed();
        let started = Instant::now();
        migrations::migrate(&mut c, &path).unwrap();
        let migrated = started.elapsed();

        let since = now - DAY;
        let started = Instant::now();
        let old: Vec<Option<f64>> = (1..=DEVICES).map(|id| old_uptime(&c, id, since)).collect();
        let old_time = started.elapsed();
        let started = Instant::now();
        let new = uptime_in(&c, since, None).unwrap();
        let new_time = started.elapsed();
        assert_eq!(new.len(), DEVICES as usize);
        for (i, expected) in old.iter().enumerate() {
            let got = new[&(i as i64 + 1)];
            assert!(
                (got - expected.unwrap()).abs() < 1e-12,
                "device {}: {got} != {expected:?}",
                i + 1
            );
        }
        assert_same_uptime(&c, &c, DEVICES, since + 1800, "after the migration");

        // The old write path for one cycle (200 transactions, the whole old range thinned per
        // device), on a copy, beside one batch of the new path.
        let copy = dir.path().join("copy.db");
        c.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
            .unwrap();
        let mut old_db = Connection::open(&copy).unwrap();
        old_db.pragma_update(None, "journal_mode", "WAL").unwrap();
        old_db.pragma_update(None, "synchronous", "FULL").unwrap();
        let next = minute + 60;
        let started = Instant::now();
        for id in 1..=DEVICES {
            old_write(&mut old_db, &poll(id, next, true), policy);
        }
        let old_cycle = started.elapsed();

        // An hour and a half of cycles through the new path, some minutes polled twice (the
        // second poll's value wins) and some devices down.
        let mut cycles = Vec::new();
        for m in 1..=90 {
            now = minute + m * 60 + 5;
            for _ in 0..(1 + rng.below(2)) {
                let batch: Vec<PollRecord> = (1..=DEVICES)
                    .map(|id| poll(id, now - now % 60, !rng.chance(5 + (id % 3) as u64 * 10)))
                    .collect();
                let started = Instant::now();
                record(&mut c, &batch, policy);
                cycles.push(started.elapsed());
            }
        }
        for since in [now - DAY, now - DAY + 1234, now - HOUR, now - now % HOUR] {
            assert_same_uptime(&c, &c, DEVICES, since, "after 90 minutes of new writes");
        }
        cycles.sort();
        println!(
            "{DEVICES} devices, {rows} samples (seeded in {seeded:.1?}); migration 5 back-fill {migrated:.1?}; \
             uptime of every device: 100 AVG queries {old_time:.2?}, one rollup query {new_time:.2?}; \
             one cycle's writes: old path (200 transactions) {old_cycle:.1?}, new batch median {:.1?} (max {:.1?})",
            cycles[cycles.len() / 2],
            cycles[cycles.len() - 1],
        );
    }
}
