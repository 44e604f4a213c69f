//! What a backup destination holds and how full it is: restic's own statistics (the bytes
//! stored, and every backup's size before deduplication), and for an SSH server the free
//! space of the disk under its folder. Measured when the owner tests a destination, at the
//! weekly upkeep, and after a backup when the last figures are older than `SPACE_EVERY`.

use std::time::{Duration, Instant};

use super::backing::{failure_detail, outcome_words};
use super::{Deployer, Remote};
use crate::backup::{Credentials, Target, restic};
use crate::docker::run::Stream;
use crate::store::{DestinationRow, Space, now_unix};
use crate::units::human_bytes;

/// Figures older than this are measured again after a backup (a daily schedule measures
/// about once a day; an hourly one does not pay two more restic runs each hour).
const SPACE_EVERY: i64 = 6 * 3600;
/// restic's statistics read the index (cached on the device); a slow server still answers.
const STATS_DEADLINE: Duration = Duration::from_secs(600);

impl Deployer {
    /// Measures a destination on `remote`'s device and records it. A destination that cannot
    /// say (a failure here) keeps its last figures: this never fails what called it.
    pub(super) async fn measure_space(&self, remote: &Remote, row: &DestinationRow) {
        let Ok((target, creds)) = self.credentials(row).await else {
            return;
        };
        let stored = self.stats(remote, row, &target, &creds, "raw-data").await;
        let logical = self
            .stats(remote, row, &target, &creds, "restore-size")
            .await;
        let (Some(stored), Some(logical)) = (stored, logical) else {
            return;
        };
        let (disk_total, disk_free) = self
            .disk_free(remote, row, &target, &creds)
            .await
            .unwrap_or((0, 0));
        let space = Space {
            stored: stored as i64,
            logical: logical as i64,
            disk_total: disk_total as i64,
            disk_free: disk_free as i64,
            at: now_unix(),
        };
        if let Err(e) = self.store.set_destination_space(row.id, space).await {
            tracing::warn!(destination = row.id, error = %e, "could not record a destination's space");
        }
    }

    /// After a backup: measured again when the figures are old, or said "filling up" (the
    /// owner may have made room), so the warning never outlives the problem.
    pub(super) async fn measure_space_if_due(&self, remote: &Remote, row: &DestinationRow) {
        let stale = now_unix() - row.space.at > SPACE_EVERY;
        if stale || filling_up(&row.name, &row.space).is_some() {
            self.measure_space(remote, row).await;
        }
    }

    /// One `restic stats` total: `raw-data` (what is stored) or `restore-size` (every
    /// snapshot's size, summed). Without a lock: it only reads.
    async fn stats(
        &self,
        remote: &Remote,
        row: &DestinationRow,
        target: &Target,
        creds: &Credentials,
        mode: &str,
    ) -> Option<u64> {
        let name = format!(
            "homelab-restic-stats-{}-{}",
            row.id,
            super::backing::unique()
        );
        let args = ["stats", "--json", "--no-lock", "--mode", mode];
        let spec = self.restic_spec(&name, target, &args, Vec::new());
        let label = format!("What {} holds: restic stats --mode {mode}", row.name);
        let out = self.output_of(remote, &spec, creds, label).await?;
        restic::parse_stats(&out)
    }

    /// Runs a short question in the restic container, noted in "What I did"; its first 4 KB
    /// of output when it succeeded.
    async fn output_of(
        &self,
        remote: &Remote,
        spec: &crate::docker::run::OneOff,
        creds: &Credentials,
        label: String,
    ) -> Option<String> {
        let mut out = String::new();
        let t = Instant::now();
        let ran = self
            .run_restic(remote, spec, creds, STATS_DEADLINE, |s, l| {
                if s == Stream::Out && out.len() < 4096 {
                    out.push_str(l);
                    out.push('\n');
                }
            })
            .await;
        remote
            .note(label, outcome_words(&ran), t, failure_detail(&ran))
            .await;
        ran.ok().map(|_| out)
    }

    /// The disk's size and free bytes under an SSH server's folder (None for S3, or when
    /// the server does not say).
    async fn disk_free(
        &self,
        remote: &Remote,
        row: &DestinationRow,
        target: &Target,
        creds: &Credentials,
    ) -> Option<(u64, u64)> {
        if let Target::Disk { path, .. } = target {
            // On the box itself: asked of its own kernel.
            let path = std::path::PathBuf::from(path);
            return tokio::task::spawn_blocking(move || crate::backup::disk::space(&path))
                .await
                .ok()
                .flatten();
        }
        let name = format!("homelab-restic-df-{}-{}", row.id, super::backing::unique());
        let mut spec = restic::disk_spec(&name, target)?;
        spec.labels = self.backup_labels("restic");
        let label = format!("How full the disk at {} is: sftp df", row.name);
        let out = self.output_of(remote, &spec, creds, label).await?;
        restic::parse_disk_free(&out)
    }
}

/// The share of a destination's disk in use at which the owner is told it is filling up.
pub const FILLING_UP_PERCENT: i64 = 90;

/// "Server 2 is filling up: …", when the disk under a destination is at least
/// `FILLING_UP_PERCENT` used (None when it is not, or its size is unknown).
pub fn filling_up(name: &str, space: &Space) -> Option<String> {
    if space.disk_total <= 0 {
        return None;
    }
    let free = space.disk_free.clamp(0, space.disk_total);
    // Decided on exact figures (so 89.6 % is not yet "filling up"), shown rounded.
    let filling = free * 100 <= space.disk_total * (100 - FILLING_UP_PERCENT);
    let used = (100.0 - free as f64 * 100.0 / space.disk_total as f64).round() as i64;
    filling.then(|| {
        format!(
            "{name} is filling up: {used} % used, {} left. Free some space there, or add \
             another destination and move backups to it.",
            human_bytes(space.disk_free.max(0) as u64)
        )
    })
}

/// "Holds 14 GB of backups in 1.2 GB (91 % saved)": restic's own figures, once measured.
pub fn holds(space: &Space) -> Option<String> {
    if space.at == 0 || space.logical <= 0 {
        return None;
    }
    let stored = space.stored.clamp(0, space.logical) as f64;
    let saved = (100.0 - stored * 100.0 / space.logical as f64).round() as i64;
    Some(format!(
        "Holds {} of backups in {} ({saved} % saved by storing each piece once).",
        human_bytes(space.logical as u64),
        human_bytes(space.stored.max(0) as u64)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(stored: i64, logical: i64, total: i64, free: i64) -> Space {
        Space {
            stored,
            logical,
            disk_total: total,
            disk_free: free,
            at: 1,
        }
    }

    #[test]
    fn a_destination_is_filling_up_from_ninety_percent_used() {
        let gb = 1 << 30;
        assert_eq!(filling_up("NAS", &space(0, 0, 100 * gb, 11 * gb)), None);
        let words = filling_up("NAS", &space(0, 0, 100 * gb, 10 * gb)).unwrap();
        assert!(words.starts_with("NAS is filling up: 90 % used"), "{words}");
        assert!(words.contains("10.0 GB left"), "{words}");
        // Unknown size (S3): never "filling up".
        assert_eq!(filling_up("B2", &space(5, 9, 0, 0)), None);
        // A server that says more free than total is read as empty, not negative.
        assert_eq!(filling_up("NAS", &space(0, 0, 10, 20)), None);
    }

    #[test]
    fn the_saving_is_restics_stored_against_every_backups_size() {
        let mb = 1 << 20;
        let words = holds(&space(120 * mb, 1400 * mb, 0, 0)).unwrap();
        assert!(words.contains("91 % saved"), "{words}");
        assert_eq!(holds(&Space::default()), None, "never measured");
    }

    #[test]
    fn the_sftp_clients_df_and_restics_stats_are_read() {
        let df = "        Size         Used        Avail       (root)    %Capacity\n\
                  \x20    20480        10240        10240        10240          50%\n";
        assert_eq!(
            restic::parse_disk_free(df),
            Some((20480 * 1024, 10240 * 1024))
        );
        // Blocks kept for root are neither the login's nor free: 90 of 100 usable in use.
        let reserved = "   Size   Used   Avail   (root)   %Capacity\n\
                        \x20 250000   90000   10000   160000   36%\n";
        assert_eq!(
            restic::parse_disk_free(reserved),
            Some((100000 * 1024, 10000 * 1024))
        );
        assert_eq!(restic::parse_disk_free("sftp> df /x\n"), None);
        let stats = r#"{"total_size":123456,"total_file_count":3,"snapshots_count":2}"#;
        assert_eq!(restic::parse_stats(stats), Some(123456));
    }
}
