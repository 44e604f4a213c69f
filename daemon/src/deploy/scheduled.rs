//! Scheduled backups and the box's upkeep of destinations, in the background.
//!
//! Every `TICK` the scheduler looks at each installed app's policy (its own, else the default)
//! against the clock in the box's time zone: a scheduled time that passed since the last one
//! it handled starts a backup job, the same job as "Back up now". Scheduled backups run one at
//! a time, so a night of many apps never loads a device or the network with several at once;
//! an app that is busy (being updated) is tried again at the next tick. Times missed while the
//! box was off are one backup soon after it starts.
//!
//! Once a week per destination, when no backup holds it, the box prunes what forgotten
//! snapshots alone held and checks the repository, reading a quarter of its data (a different
//! quarter each week, so all of it within a month). restic's stale locks (a run that died more
//! than 30 minutes ago, or on a host that says its process is gone) are cleared first with
//! plain `unlock`, which never removes a live run's lock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, TimeZone};

use super::{DeployError, Deployer};
use crate::backup::restic::Why;
use crate::backup::schedule::{self, Due, Policy};
use crate::store::PolicyRow;

/// How often the scheduler looks at the clock: a backup starts within this of its time.
const TICK: Duration = Duration::from_secs(30);
/// How often each destination is pruned and checked.
const UPKEEP_EVERY: i64 = 7 * 24 * 3600;
/// After an upkeep that could not run (a backup's lock, the destination away), when to try
/// again.
const UPKEEP_RETRY: Duration = Duration::from_secs(3600);
/// The longest prune or check: a large repository on a slow link reads for hours.
const UPKEEP_DEADLINE: Duration = Duration::from_secs(12 * 3600);

impl Deployer {
    /// Scheduled backups and upkeep until `stop`, from `config.backup_schedule_after` on.
    pub fn spawn_backup_schedule(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(after) = self.config.backup_schedule_after else {
            return;
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(after) => {}
                _ = crate::shutdown::stopped(&mut stop) => return,
            }
            let mut tick = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    _ = tick.tick() => self.backup_tick(&chrono::Local::now()).await,
                    _ = crate::shutdown::stopped(&mut stop) => break,
                }
            }
        });
    }

    /// The policy an app follows: its own, else the default, else the built-in one.
    pub async fn backup_policy(&self, slug: &str) -> Policy {
        let rows = self.store.backup_policies().await.unwrap_or_default();
        policy_for(&rows, slug).0
    }

    /// Sets the default policy (`slug` None) or an app's own (`policy` None: it follows the
    /// default again). Checked first, with the fix in the message.
    pub async fn set_backup_policy(
        &self,
        slug: Option<&str>,
        policy: Option<Policy>,
    ) -> Result<(), DeployError> {
        if let Some(slug) = slug {
            self.recipe(slug)?;
        }
        if let Some(p) = &policy {
            p.check()
                .map_err(|e| DeployError::BackupRefused(e.to_string()))?;
        } else if slug.is_none() {
            return Err(DeployError::BackupRefused(
                "The default schedule cannot be removed; set it to Off instead.".into(),
            ));
        }
        let row = policy.map(|p| PolicyRow {
            slug: slug.unwrap_or_default().to_string(),
            schedule: p.schedule.trim().to_string(),
            keep_within_days: p.keep_within_days,
            keep_hourly: p.keep_hourly,
            keep_daily: p.keep_daily,
            keep_weekly: p.keep_weekly,
            keep_monthly: p.keep_monthly,
        });
        self.store
            .set_backup_policy(slug.unwrap_or_default().to_string(), row)
            .await?;
        Ok(())
    }

    /// One look at the clock: due backups started (one at a time), new apps remembered,
    /// destinations' weekly upkeep started when nothing else runs.
    pub async fn backup_tick<Tz: TimeZone>(self: &Arc<Self>, now: &chrono::DateTime<Tz>) {
        let Ok(destinations) = self.store.backup_destinations().await else {
            return;
        };
        if destinations.is_empty() {
            return;
        }
        let mut running = self.scheduled_running().await;
        let rows = self.store.backup_policies().await.unwrap_or_default();
        let handled = self
            .store
            .backup_schedule_handled()
            .await
            .unwrap_or_default();
        // The box's own state follows the default schedule (an app's own policy is its own).
        let box_host = crate::backup::bundle::BOX_HOST;
        self.box_backup_due(
            now,
            &policy_for(&rows, box_host).0.schedule,
            handled.get(box_host).copied(),
        )
        .await;
        for app in self.store.apps().await.unwrap_or_default() {
            let Ok(recipe) = self.recipe(&app.slug) else {
                continue;
            };
            if recipe.manifest.data_volumes.is_empty() && recipe.manifest.database.is_none() {
                continue; // nothing of its own to keep
            }
            let (policy, _) = policy_for(&rows, &app.slug);
            let Ok(Some(cron)) = schedule::parse(&policy.schedule) else {
                continue;
            };
            match schedule::due(&cron, handled.get(&app.slug).copied(), now) {
                Due::Wait => {}
                Due::Remember(t) => {
                    let _ = self
                        .store
                        .set_backup_schedule_handled(app.slug.clone(), t.timestamp())
                        .await;
                }
                Due::Run(t) => {
                    if running {
                        continue; // its turn comes at a later tick
                    }
                    match self.back_up(&app.slug, None).await {
                        Ok(job) => {
                            *self.scheduled_job.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(job);
                            running = true;
                        }
                        // Busy with an update or a restore: the next tick tries again.
                        Err(DeployError::AppBusy(_)) => continue,
                        Err(e) => {
                            tracing::warn!(app = %app.slug, error = %e, "scheduled backup not started");
                        }
                    }
                    let _ = self
                        .store
                        .set_backup_schedule_handled(app.slug.clone(), t.timestamp())
                        .await;
                }
            }
        }
        if running {
            return;
        }
        let now_unix = now.timestamp();
        // One upkeep at a time, box-wide: the next destination's turn is a later tick.
        let Ok(one) = self.upkeep_one.clone().try_lock_owned() else {
            return;
        };
        for d in destinations {
            // A time in the future is a clock that was wrong: it counts as due.
            let recent = (0..UPKEEP_EVERY).contains(&(now_unix - d.maintained_at));
            if recent || !self.upkeep_may_try(d.id) {
                continue;
            }
            let week = now.iso_week().week();
            let me = self.clone();
            tokio::spawn(async move {
                let _one = one;
                if let Err(e) = me.maintain_destination(d.id, Some(week)).await {
                    tracing::info!(destination = %d.name, error = %e, "backup upkeep postponed");
                }
            });
            break;
        }
    }

    /// Whether the last scheduled backup is still running.
    async fn scheduled_running(&self) -> bool {
        let job = *self.scheduled_job.lock().unwrap_or_else(|e| e.into_inner());
        // Its own work only: a job left undoing on a device that went away (failed, rolling
        // back) must not hold every other app's scheduled backup.
        match job {
            None => false,
            Some(id) => matches!(
                self.store.deployment(id).await,
                Ok(Some(d)) if d.finished_at.is_none()
                    && !matches!(d.state, super::DeploymentState::Failed | super::DeploymentState::RollingBack)
            ),
        }
    }

    /// Whether a destination's upkeep may be tried now (not within `UPKEEP_RETRY` of the
    /// last try); marks the try.
    fn upkeep_may_try(&self, id: i64) -> bool {
        let mut tried = self.upkeep_tried.lock().unwrap_or_else(|e| e.into_inner());
        tried.retain(|_, at| at.elapsed() < UPKEEP_RETRY);
        if tried.contains_key(&id) {
            return false;
        }
        tried.insert(id, std::time::Instant::now());
        true
    }

    /// Prunes a destination and checks it: `week` reads that week's quarter of the data
    /// (scheduled upkeep), None all of it (the owner's "Check all backup data"). Damage found
    /// is recorded on the destination in words with the fix; a check that could not run
    /// (a backup holds the destination, it does not answer) is an error and records nothing.
    pub async fn maintain_destination(
        &self,
        id: i64,
        week: Option<u32>,
    ) -> Result<String, DeployError> {
        let row = self.destination(id).await?;
        let lock = self.destination_lock(id);
        let Ok(alone) = lock.try_write() else {
            return Err(DeployError::BackupRefused(format!(
                "A backup to {} or a check of it is running; check it when that is done.",
                row.name
            )));
        };
        let (target, mut creds) = self.credentials(&row).await?;
        // The box's upkeep: prune removes data (on a disk on the box too).
        creds.allow_removal();
        let remote = self.any_device().await?;
        self.ensure_restic(&remote).await?;
        let name = format!("homelab-restic-upkeep-{id}");
        let run = |args: &[&str]| self.restic_spec(&name, &target, args, Vec::new());
        // Only stale locks: a live run's lock stays, and then prune says "locked" below.
        let _ = self
            .restic_noted(
                &remote,
                &run(&["unlock"]),
                &creds,
                &format!("Clear stale locks at {}: restic unlock", row.name),
            )
            .await;
        // The box's own backups there: old recovery keys and old box backups go while the
        // repository is ours alone (restic locks it for both).
        self.box_upkeep(&row).await;
        // Checked first: damage must be found and shown, never stop at a prune that fails
        // on it. Only sound data is pruned.
        let subset = week.map(|w| format!("{}/4", w % 4 + 1));
        let mut args = vec!["check"];
        match &subset {
            Some(s) => args.extend(["--read-data-subset", s.as_str()]),
            None => args.push("--read-data"),
        }
        let checked = self
            .restic_long(
                &remote,
                &run(&args),
                &creds,
                &format!(
                    "Check the backups at {}: restic {}",
                    row.name,
                    args.join(" ")
                ),
            )
            .await;
        let damage = match checked {
            Ok(_) => String::new(),
            Err(f) if f.why() == Some(Why::Damaged) => f.words(&row.name),
            Err(f) => return Err(self.restic_error(&remote, f, &row.name)),
        };
        if damage.is_empty() && target.append_only() {
            // The server refuses it; old backups go on its side.
            remote
                .note(
                    format!(
                        "Remove data only forgotten backups held at {}: not here, the server only lets backups be added",
                        row.name
                    ),
                    "skipped".into(),
                    std::time::Instant::now(),
                    String::new(),
                )
                .await;
        } else if damage.is_empty() {
            self.restic_long(
                &remote,
                &run(&["prune"]),
                &creds,
                &format!(
                    "Remove data only forgotten backups held at {}: restic prune",
                    row.name
                ),
            )
            .await
            .map_err(|f| self.restic_error(&remote, f, &row.name))?;
        }
        self.store
            .set_destination_maintained(id, damage.clone())
            .await?;
        // After the prune: what it holds now (read without a lock: backups need not wait).
        drop(alone);
        self.measure_space(&remote, &row).await;
        if !damage.is_empty() {
            // Open pages show it at once (the destination list refreshes on toasts).
            self.events.publish(crate::events::Event::Toast {
                level: crate::events::Level::Warning,
                message: damage.clone(),
            });
        }
        Ok(if damage.is_empty() {
            format!("{}: checked, all sound.", row.name)
        } else {
            damage
        })
    }

    /// Runs a long restic command (prune, check) and notes it in "What I did".
    async fn restic_long(
        &self,
        remote: &super::Remote,
        spec: &crate::docker::run::OneOff,
        creds: &crate::backup::Credentials,
        label: &str,
    ) -> Result<crate::docker::run::Ended, crate::backup::restic::ResticFailure> {
        let t = std::time::Instant::now();
        let ran = self
            .run_restic(remote, spec, creds, UPKEEP_DEADLINE, |_, _| {})
            .await;
        remote
            .note(
                label.to_string(),
                super::backing::outcome_words(&ran),
                t,
                super::backing::failure_detail(&ran),
            )
            .await;
        ran
    }
}

/// The policy for `slug` from the rows set, and whether it is the app's own.
pub fn policy_for(rows: &[PolicyRow], slug: &str) -> (Policy, bool) {
    let to_policy = |r: &PolicyRow| Policy {
        schedule: r.schedule.clone(),
        keep_within_days: r.keep_within_days,
        keep_hourly: r.keep_hourly,
        keep_daily: r.keep_daily,
        keep_weekly: r.keep_weekly,
        keep_monthly: r.keep_monthly,
    };
    if let Some(own) = rows.iter().find(|r| r.slug == slug && !slug.is_empty()) {
        return (to_policy(own), true);
    }
    let default = rows
        .iter()
        .find(|r| r.slug.is_empty())
        .map(to_policy)
        .unwrap_or_default();
    (default, false)
}
