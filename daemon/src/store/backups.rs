//! Backups: destinations (where backups go; their secrets are sealed in `secrets`) and every
//! run of an app's backup, kept for its history (the last `RUNS_KEPT` per app).

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, now_unix};

/// Runs kept per app: a year of daily backups; older ones leave the history (their snapshots
/// stay in the repository until retention forgets them).
const RUNS_KEPT: i64 = 400;

/// A place backups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRow {
    pub id: i64,
    pub name: String,
    /// JSON of `backup::Target`.
    pub target: String,
    /// SFTP: the server's pinned host key (OpenSSH text); empty otherwise.
    pub host_key: String,
    pub checked_at: i64,
    pub check_ok: bool,
    pub check_message: String,
    pub created_at: i64,
    /// When the box last pruned and checked it (0: never).
    pub maintained_at: i64,
    /// What that check found wrong, with the fix ('' while the stored data is sound).
    pub damage: String,
    /// What it holds and how full its disk is, as last measured.
    pub space: Space,
}

/// What a destination holds and how full its disk is (bytes; 0 where unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Space {
    /// The bytes restic stores there (deduplicated, compressed where the format allows).
    pub stored: i64,
    /// Every backup's size before deduplication, summed.
    pub logical: i64,
    /// The disk under it, where the server says (SFTP: OpenSSH's statvfs); 0 for S3.
    pub disk_total: i64,
    pub disk_free: i64,
    /// When it was measured (unix; 0: never).
    pub at: i64,
}

const DEST_COLUMNS: &str = "id, name, target, host_key, checked_at, check_ok, check_message, \
    created_at, maintained_at, damage, stored_bytes, logical_bytes, disk_total, disk_free, space_at";

fn dest_row(r: &Row<'_>) -> rusqlite::Result<DestinationRow> {
    Ok(DestinationRow {
        id: r.get(0)?,
        name: r.get(1)?,
        target: r.get(2)?,
        host_key: r.get(3)?,
        checked_at: r.get(4)?,
        check_ok: r.get::<_, i64>(5)? != 0,
        check_message: r.get(6)?,
        created_at: r.get(7)?,
        maintained_at: r.get(8)?,
        space: Space {
            stored: r.get(10)?,
            logical: r.get(11)?,
            disk_total: r.get(12)?,
            disk_free: r.get(13)?,
            at: r.get(14)?,
        },
        damage: r.get(9)?,
    })
}

/// One backup of one app to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRunRow {
    pub id: i64,
    pub slug: String,
    pub destination_id: i64,
    pub device_id: i64,
    pub deployment_id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// running | done | failed
    pub state: String,
    pub snapshot_id: String,
    pub files: i64,
    pub bytes: i64,
    pub added: i64,
    pub message: String,
}

const RUN_COLUMNS: &str = "id, slug, destination_id, device_id, deployment_id, started_at, \
    finished_at, state, snapshot_id, files, bytes, added, message";

fn run_row(r: &Row<'_>) -> rusqlite::Result<BackupRunRow> {
    Ok(BackupRunRow {
        id: r.get(0)?,
        slug: r.get(1)?,
        destination_id: r.get(2)?,
        device_id: r.get(3)?,
        deployment_id: r.get(4)?,
        started_at: r.get(5)?,
        finished_at: r.get(6)?,
        state: r.get(7)?,
        snapshot_id: r.get(8)?,
        files: r.get(9)?,
        bytes: r.get(10)?,
        added: r.get(11)?,
        message: r.get(12)?,
    })
}

/// How often an app is backed up and which backups stay (`backup::schedule::Policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    /// The app, or '' for the default.
    pub slug: String,
    pub schedule: String,
    pub keep_within_days: u32,
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

impl Store {
    pub async fn backup_destinations(&self) -> Result<Vec<DestinationRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {DEST_COLUMNS} FROM backup_destinations ORDER BY name"
            ))?;
            let rows = st.query_map([], dest_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn backup_destination(&self, id: i64) -> Result<Option<DestinationRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {DEST_COLUMNS} FROM backup_destinations WHERE id = ?1"),
                [id],
                dest_row,
            )
            .optional()?)
        })
        .await
    }

    /// Adds a destination with its sealed secrets in one transaction (all or nothing); the
    /// secrets' owner is named after the new id, so `seal` gets it. A taken name is a
    /// `Conflict`.
    pub async fn add_backup_destination(
        &self,
        name: String,
        target: String,
        host_key: String,
        seal: impl FnOnce(i64) -> Vec<(String, String, Vec<u8>)> + Send + 'static,
    ) -> Result<i64, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM backup_destinations WHERE name = ?1)",
                [&name],
                |r| r.get(0),
            )?;
            if taken {
                return Err(StoreError::Conflict("a destination with this name exists"));
            }
            tx.execute(
                "INSERT INTO backup_destinations (name, target, host_key, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![name, target, host_key, now_unix()],
            )?;
            let id = tx.last_insert_rowid();
            for (owner, purpose, sealed) in seal(id) {
                tx.execute(
                    "INSERT INTO secrets(owner, purpose, sealed, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(owner, purpose) DO UPDATE SET sealed = excluded.sealed,
                       updated_at = excluded.updated_at",
                    params![owner, purpose, sealed, now_unix()],
                )?;
            }
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// Records the outcome of a check of the destination.
    /// Records what a destination holds and how full it is (`space.at` is set here).
    pub async fn set_destination_space(&self, id: i64, space: Space) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE backup_destinations SET stored_bytes = ?2, logical_bytes = ?3,
                 disk_total = ?4, disk_free = ?5, space_at = ?6 WHERE id = ?1",
                params![
                    id,
                    space.stored,
                    space.logical,
                    space.disk_total,
                    space.disk_free,
                    now_unix()
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn set_destination_check(
        &self,
        id: i64,
        ok: bool,
        message: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE backup_destinations SET checked_at = ?2, check_ok = ?3, check_message = ?4
                 WHERE id = ?1",
                params![id, now_unix(), ok as i64, message],
            )?;
            Ok(())
        })
        .await
    }

    /// Removes a destination and its secrets (its backups stay where they are).
    pub async fn delete_backup_destination(
        &self,
        id: i64,
        owner: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM backup_destinations WHERE id = ?1", [id])?;
            tx.execute("DELETE FROM secrets WHERE owner = ?1", [owner])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Starts a run's record; returns its id. Old runs of the app beyond `RUNS_KEPT` go.
    pub async fn begin_backup_run(
        &self,
        slug: String,
        destination_id: i64,
        device_id: i64,
        deployment_id: i64,
    ) -> Result<i64, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO backup_runs (slug, destination_id, device_id, deployment_id,
                   started_at, state) VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
                params![slug, destination_id, device_id, deployment_id, now_unix()],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "DELETE FROM backup_runs WHERE slug = ?1 AND id NOT IN
                   (SELECT id FROM backup_runs WHERE slug = ?1 ORDER BY id DESC LIMIT ?2)",
                params![slug, RUNS_KEPT],
            )?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// Ends a run: `done` with its snapshot and figures, or `failed` with the reason.
    #[allow(clippy::too_many_arguments)] // the run's outcome, each once
    pub async fn finish_backup_run(
        &self,
        id: i64,
        ok: bool,
        snapshot_id: String,
        files: i64,
        bytes: i64,
        added: i64,
        message: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE backup_runs SET finished_at = ?2, state = ?3, snapshot_id = ?4,
                   files = ?5, bytes = ?6, added = ?7, message = ?8 WHERE id = ?1",
                params![
                    id,
                    now_unix(),
                    if ok { "done" } else { "failed" },
                    snapshot_id,
                    files,
                    bytes,
                    added,
                    message
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Runs still `running` whose job has ended (the daemon stopped under them, and the
    /// job was rolled back on start): failed, with the reason. Safe to call at any time.
    pub async fn fail_orphaned_backup_runs(&self, message: String) -> Result<usize, StoreError> {
        self.call(move |c| {
            Ok(c.execute(
                "UPDATE backup_runs SET state = 'failed', finished_at = ?1, message = ?2
                 WHERE state = 'running' AND deployment_id IN
                   (SELECT id FROM deployments WHERE finished_at IS NOT NULL)",
                params![now_unix(), message],
            )?)
        })
        .await
    }

    /// An app's runs, newest first (at most `limit`).
    pub async fn backup_runs(
        &self,
        slug: String,
        limit: i64,
    ) -> Result<Vec<BackupRunRow>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM backup_runs WHERE slug = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![slug, limit], run_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Every app's newest run (for the dashboard and the apps list).
    pub async fn last_backup_runs(&self) -> Result<Vec<BackupRunRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM backup_runs WHERE id IN
                   (SELECT MAX(id) FROM backup_runs GROUP BY slug) ORDER BY slug"
            ))?;
            let rows = st.query_map([], run_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Every policy set: the default (slug '') and apps' own.
    pub async fn backup_policies(&self) -> Result<Vec<PolicyRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT slug, schedule, keep_hourly, keep_daily, keep_weekly, keep_monthly,
                   keep_within_days FROM backup_policies ORDER BY slug",
            )?;
            let rows = st.query_map([], |r| {
                Ok(PolicyRow {
                    slug: r.get(0)?,
                    schedule: r.get(1)?,
                    keep_hourly: r.get(2)?,
                    keep_daily: r.get(3)?,
                    keep_weekly: r.get(4)?,
                    keep_monthly: r.get(5)?,
                    keep_within_days: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Sets a policy (the default with slug ''), or removes an app's own (`None`: it follows
    /// the default again). The scheduler forgets what it handled for the apps it affects, so
    /// their first backup under it is its next scheduled time, not one at once; and their keep
    /// rules are due again, so that backup applies the new ones.
    pub async fn set_backup_policy(
        &self,
        slug: String,
        policy: Option<PolicyRow>,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            match &policy {
                Some(p) => {
                    tx.execute(
                        "INSERT INTO backup_policies (slug, schedule, keep_hourly, keep_daily,
                           keep_weekly, keep_monthly, updated_at, keep_within_days)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (slug) DO UPDATE SET schedule = ?2, keep_hourly = ?3,
                           keep_daily = ?4, keep_weekly = ?5, keep_monthly = ?6, updated_at = ?7,
                           keep_within_days = ?8",
                        params![
                            slug,
                            p.schedule,
                            p.keep_hourly,
                            p.keep_daily,
                            p.keep_weekly,
                            p.keep_monthly,
                            now_unix(),
                            p.keep_within_days
                        ],
                    )?;
                }
                None => {
                    tx.execute("DELETE FROM backup_policies WHERE slug = ?1", [&slug])?;
                }
            }
            if slug.is_empty() {
                tx.execute(
                    "DELETE FROM backup_schedule WHERE slug NOT IN (SELECT slug FROM backup_policies)",
                    [],
                )?;
                tx.execute(
                    "DELETE FROM backup_forgets WHERE slug NOT IN (SELECT slug FROM backup_policies)",
                    [],
                )?;
            } else {
                tx.execute("DELETE FROM backup_schedule WHERE slug = ?1", [&slug])?;
                tx.execute("DELETE FROM backup_forgets WHERE slug = ?1", [&slug])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The latest scheduled time handled per app (unix seconds).
    pub async fn backup_schedule_handled(
        &self,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare("SELECT slug, handled_at FROM backup_schedule")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn set_backup_schedule_handled(
        &self,
        slug: String,
        at: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO backup_schedule (slug, handled_at) VALUES (?1, ?2)
                 ON CONFLICT (slug) DO UPDATE SET handled_at = ?2",
                params![slug, at],
            )?;
            Ok(())
        })
        .await
    }

    /// When the app's keep rules last held at the destination (unix seconds; None: never, or
    /// not since its policy changed), and whether the app has a finished backup there from
    /// before the one running now (since the destination was added).
    pub async fn backup_forgot_at(
        &self,
        slug: String,
        destination_id: i64,
    ) -> Result<(Option<i64>, bool), StoreError> {
        self.read(move |c| {
            let at = c
                .query_row(
                    "SELECT forgot_at FROM backup_forgets WHERE slug = ?1 AND destination_id = ?2",
                    params![slug, destination_id],
                    |r| r.get(0),
                )
                .optional()?;
            // Only runs since the destination was added: a removed destination's id is
            // given to the next one added, and its runs stay in the apps' histories.
            let before: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM backup_runs r JOIN backup_destinations d
                   ON d.id = r.destination_id WHERE r.slug = ?1 AND r.destination_id = ?2
                   AND r.state = 'done' AND r.started_at >= d.created_at)",
                params![slug, destination_id],
                |r| r.get(0),
            )?;
            Ok((at, before))
        })
        .await
    }

    /// Records that the app's keep rules hold at the destination now: restic's forget worked
    /// (never after one that failed: the next backup tries again), or the app's first backup
    /// there left nothing to forget.
    pub async fn set_backup_forgot(
        &self,
        slug: String,
        destination_id: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO backup_forgets (slug, destination_id, forgot_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (slug, destination_id) DO UPDATE SET forgot_at = ?3",
                params![slug, destination_id, now_unix()],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the box's upkeep of a destination (prune and check): when, and the damage
    /// the check found ('' when sound).
    pub async fn set_destination_maintained(
        &self,
        id: i64,
        damage: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE backup_destinations SET maintained_at = ?2, damage = ?3 WHERE id = ?1",
                params![id, now_unix(), damage],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(slug: &str) -> PolicyRow {
        PolicyRow {
            slug: slug.to_string(),
            schedule: "0 2 * * *".into(),
            keep_within_days: 2,
            keep_hourly: 0,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
        }
    }

    #[tokio::test]
    async fn the_last_forget_is_kept_per_app_and_destination_until_the_rules_change()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("homelab.db"))?;
        let add = |name: &str| {
            store.add_backup_destination(name.into(), "{}".into(), String::new(), |_| Vec::new())
        };
        let (nas, cloud) = (add("NAS").await?, add("Cloud").await?);
        let at = |slug: &str, d: i64| {
            let store = store.clone();
            let slug = slug.to_string();
            async move { Ok::<_, StoreError>(store.backup_forgot_at(slug, d).await?.0) }
        };
        assert_eq!(at("a", nas).await?, None);
        // Whether the app was backed up there before: finished runs only.
        let before = |slug: &str| store.backup_forgot_at(slug.to_string(), nas);
        assert!(!before("a").await?.1);
        let run = store.begin_backup_run("a".into(), nas, 1, 1).await?;
        assert!(
            !before("a").await?.1,
            "the run under way is not one before it"
        );
        store
            .finish_backup_run(run, false, String::new(), 0, 0, 0, "no".into())
            .await?;
        assert!(!before("a").await?.1, "a failed run held no backup");
        let run = store.begin_backup_run("a".into(), nas, 1, 2).await?;
        store
            .finish_backup_run(run, true, "abcd1234".into(), 1, 1, 1, String::new())
            .await?;
        assert!(before("a").await?.1);
        assert!(!before("b").await?.1);
        for (slug, d) in [("a", nas), ("a", cloud), ("b", nas), ("own", nas)] {
            store.set_backup_forgot(slug.into(), d).await?;
        }
        let first = at("a", nas).await?.ok_or("recorded")?;
        assert!((now_unix() - first).abs() <= 1);
        // Again: one row, the newer time.
        store.set_backup_forgot("a".into(), nas).await?;
        assert!(at("a", nas).await?.ok_or("still there")? >= first);

        // An app's own rules: only its rows go.
        store
            .set_backup_policy("b".into(), Some(policy("b")))
            .await?;
        assert_eq!(at("b", nas).await?, None);
        assert!(at("a", nas).await?.is_some());
        // The default's: the rows of every app following it, not of apps with their own.
        store
            .set_backup_policy("own".into(), Some(policy("own")))
            .await?;
        store.set_backup_forgot("own".into(), nas).await?;
        store.set_backup_forgot("b".into(), nas).await?;
        store
            .set_backup_policy(String::new(), Some(policy("")))
            .await?;
        assert_eq!(at("a", nas).await?, None);
        assert_eq!(at("a", cloud).await?, None);
        assert!(at("own", nas).await?.is_some());
        assert!(at("b", nas).await?.is_some());

        // A removed destination takes its rows along.
        store.set_backup_forgot("own".into(), cloud).await?;
        let run = store.begin_backup_run("a".into(), cloud, 1, 3).await?;
        store
            .finish_backup_run(run, true, "abcd1234".into(), 1, 1, 1, String::new())
            .await?;
        assert!(at("own", cloud).await?.is_some());
        assert!(store.backup_forgot_at("a".into(), cloud).await?.1);
        store
            .delete_backup_destination(cloud, "backup-destination:x".into())
            .await?;
        assert_eq!(at("own", cloud).await?, None);
        // The next one added gets its id (SQLite reuses the highest), and the runs to the
        // removed one are no backups there (a minute older: not within one second).
        store
            .call(move |c| {
                c.execute(
                    "UPDATE backup_runs SET started_at = started_at - 60 WHERE id = ?1",
                    [run],
                )?;
                Ok(())
            })
            .await?;
        let again = add("Cloud again").await?;
        assert_eq!(again, cloud);
        assert!(!store.backup_forgot_at("a".into(), again).await?.1);
        Ok(())
    }
}
