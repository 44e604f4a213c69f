//! Adopted devices, their last status, and their history of samples.

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
        self.call(move |c| {
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
        self.call(|c| {
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
        self.call(move |c| {
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
        self.call(move |c| {
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
        self.call(move |c| {
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
        self.call(move |c| {
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
        self.call(move |c| {
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
        self.call(move |c| {
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
        self.call(move |c| {
            let n = c.execute(
                "UPDATE devices SET host_key = pending_host_key, pending_host_key = NULL
                 WHERE id = ?1 AND pending_host_key IS NOT NULL",
                [id],
            )?;
            Ok(n == 1)
        })
        .await
    }

    pub async fn set_device_status(&self, s: StatusRow) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO device_status(device_id, state, reason, facts, last_seen_at, checked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(device_id) DO UPDATE SET state = excluded.state, reason = excluded.reason,
                   facts = CASE WHEN excluded.facts = '' THEN device_status.facts ELSE excluded.facts END,
                   last_seen_at = COALESCE(excluded.last_seen_at, device_status.last_seen_at),
                   checked_at = excluded.checked_at",
                params![s.device_id, s.state, s.reason, s.facts, s.last_seen_at, s.checked_at],
            )?;
            Ok(())
        })
        .await
    }

    /// The last status of one device, if it has been checked.
    pub async fn device_status(&self, id: i64) -> Result<Option<StatusRow>, StoreError> {
        self.call(move |c| {
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
        self.call(|c| {
            let mut stmt =
                c.prepare("SELECT device_id, state, reason, facts, last_seen_at, checked_at FROM device_status")?;
            let rows = stmt.query_map([], status_from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Appends a sample and keeps history bounded: full resolution for `keep_full_secs`, then
    /// one sample per `coarse_secs` up to `keep_total_secs`, nothing older.
    pub async fn add_sample(
        &self,
        device_id: i64,
        s: Sample,
        keep_full_secs: i64,
        coarse_secs: i64,
        keep_total_secs: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO device_samples(device_id, at, online, load1, mem_used, mem_total, disk_used, disk_total)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![device_id, s.at, s.online, s.load1, s.mem_used, s.mem_total, s.disk_used, s.disk_total],
            )?;
            let now = s.at;
            tx.execute("DELETE FROM device_samples WHERE device_id = ?1 AND at < ?2", params![device_id, now - keep_total_secs])?;
            // Downsample: in the old range keep only the first sample of each coarse bucket.
            tx.execute(
                "DELETE FROM device_samples WHERE device_id = ?1 AND at < ?2 AND at NOT IN (
                    SELECT MIN(at) FROM device_samples WHERE device_id = ?1 AND at < ?2 GROUP BY at / ?3)",
                params![device_id, now - keep_full_secs, coarse_secs],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// History since `since`, oldest first.
    pub async fn samples(&self, device_id: i64, since: i64) -> Result<Vec<Sample>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
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

    /// Share of samples online since `since` (None without samples).
    pub async fn uptime_ratio(
        &self,
        device_id: i64,
        since: i64,
    ) -> Result<Option<f64>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT AVG(online) FROM device_samples WHERE device_id = ?1 AND at >= ?2",
                params![device_id, since],
                |r| r.get::<_, Option<f64>>(0),
            )?)
        })
        .await
    }
}
