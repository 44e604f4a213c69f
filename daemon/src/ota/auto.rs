//! "Check for updates" and the update window. Both are off until the owner sets them: without
//! a channel address Homelab never asks anyone about updates; without a window it never
//! installs or restarts by itself. With a window, an update the channel offers is downloaded,
//! installed and started (restart) only between its hours, and a version that was rolled back
//! (or whose file from the channel would not install) is never tried again automatically.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::channel::{self, Manifest};
use super::rauc::RaucError;
use super::{Ota, OtaError, Phase, Source, Staged, StreamRecord, snapshot};
use crate::events::Event;
use crate::store::now_unix;

const SETTINGS_KEY: &str = "update.channel";
/// How often a set channel is asked, window or not (the page shows what it said).
const CHECK_EVERY: i64 = 6 * 60 * 60;
/// Inside the window the answer must be fresher than this before acting on it.
const CHECK_FRESH_IN_WINDOW: i64 = 30 * 60;
/// After an automatic update stopped on an error, the window waits this long to try again.
const RETRY_AFTER: i64 = 60 * 60;
/// How often the window's loop looks at the clock.
const TICK: Duration = Duration::from_secs(60);

/// The hours automatic updates may happen in, in the owner's time (their browser's offset
/// from UTC when they saved it; the box itself keeps UTC).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Window {
    /// Minutes after midnight.
    pub start: u16,
    pub end: u16,
    /// The owner's offset from UTC, in minutes (UTC+01:00 is 60).
    #[serde(default)]
    pub utc_offset: i16,
}

impl Window {
    /// From "HH:MM" times; a window may run over midnight (23:00 to 05:00).
    pub fn parse(start: &str, end: &str, utc_offset: i16) -> Result<Window, OtaError> {
        let minutes = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let bad = |t: &str| {
            OtaError::Invalid(format!(
                "“{}” is not a time of day; write it as HH:MM, for example 03:00.",
                crate::limits::truncate(t, 16)
            ))
        };
        let start_m = minutes(start).ok_or_else(|| bad(start))?;
        let end_m = minutes(end).ok_or_else(|| bad(end))?;
        if start_m == end_m {
            return Err(OtaError::Invalid(
                "The update window starts and ends at the same time; give it at least an hour, for example 03:00 to 05:00.".into(),
            ));
        }
        if !(-14 * 60..=14 * 60).contains(&utc_offset) {
            return Err(OtaError::Invalid(
                "The time zone offset must be within 14 hours of UTC.".into(),
            ));
        }
        Ok(Window {
            start: start_m,
            end: end_m,
            utc_offset,
        })
    }

    /// Whether the moment `unix` (seconds) falls inside the window.
    pub fn contains(&self, unix: i64) -> bool {
        let local = unix + i64::from(self.utc_offset) * 60;
        let minute = (local.rem_euclid(86_400) / 60) as u16;
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    pub fn start_text(&self) -> String {
        hhmm(self.start)
    }

    pub fn end_text(&self) -> String {
        hhmm(self.end)
    }

    /// "03:00–05:00 (UTC+01:00)".
    pub fn describe(&self) -> String {
        let sign = if self.utc_offset < 0 { '-' } else { '+' };
        let off = self.utc_offset.unsigned_abs();
        format!(
            "{}–{} (UTC{sign}{:02}:{:02})",
            self.start_text(),
            self.end_text(),
            off / 60,
            off % 60
        )
    }
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The owner's choices, kept in the database.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChannelSettings {
    /// The manifest's address; none means "never ask".
    pub url: Option<String>,
    /// Automatic updates, inside these hours; none means "only when I say".
    pub window: Option<Window>,
}

/// What the channel said.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Answer {
    /// A newer version than this box runs.
    Available {
        manifest: Manifest,
    },
    UpToDate {
        version: String,
    },
    Failed {
        message: String,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub checked_at: i64,
    pub url: String,
    #[serde(flatten)]
    pub answer: Answer,
}

/// The channel part of the Updates page.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelStatus {
    pub url: Option<String>,
    pub window: Option<Window>,
    pub last_check: Option<Check>,
    /// Set when the window will not install the offered version because it failed before.
    pub held_back: Option<String>,
}

impl Ota {
    pub async fn channel_settings(&self) -> ChannelSettings {
        match self.store.setting(SETTINGS_KEY).await {
            Ok(Some(json)) => serde_json::from_str(&json).unwrap_or_default(),
            _ => ChannelSettings::default(),
        }
    }

    /// Saves the channel and window; a new address is asked at once (in the background).
    pub async fn set_channel(&self, mut s: ChannelSettings) -> Result<(), OtaError> {
        s.url = s
            .url
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        if let Some(url) = &s.url {
            crate::limits::check("update channel address", url, crate::limits::URL)
                .map_err(OtaError::Invalid)?;
            channel::check_url(url)?;
        }
        if s.url.is_none() && s.window.is_some() {
            return Err(OtaError::Invalid(
                "Automatic updates need an update channel: enter its address too.".into(),
            ));
        }
        let before = self.channel_settings().await;
        self.store
            .set_setting(
                SETTINGS_KEY,
                serde_json::to_string(&s).map_err(std::io::Error::other)?,
            )
            .await?;
        if before.url != s.url {
            *lock(&self.last_check) = None;
            // A checked update waiting to be streamed came from the old channel: reading it
            // now forgets it.
            let _ = self.stream_record().await;
        }
        if s.url.is_none() {
            // No channel, no download to carry on: what a cut-off one left goes.
            let dir = snapshot::updates_dir(&self.data);
            for leftover in ["download.part", "download.json"] {
                let _ = tokio::fs::remove_file(dir.join(leftover)).await;
            }
        }
        *lock(&self.auto_retry_after) = 0;
        self.events.publish(Event::Update);
        self.wake.notify_one();
        Ok(())
    }

    pub(super) async fn channel_status(&self) -> ChannelStatus {
        let s = self.channel_settings().await;
        let last_check = lock(&self.last_check)
            .clone()
            .filter(|c| Some(&c.url) == s.url.as_ref());
        let held_back = match &last_check {
            Some(Check {
                answer: Answer::Available { manifest },
                ..
            }) if s.window.is_some() && self.is_held_back(&manifest.version) => Some(format!(
                "Homelab {} did not install or start properly before, so the update window will not try it again. Install it by hand to retry.",
                manifest.version
            )),
            _ => None,
        };
        ChannelStatus {
            url: s.url,
            window: s.window,
            last_check,
            held_back,
        }
    }

    fn is_held_back(&self, version: &str) -> bool {
        snapshot::held_back(&self.data).iter().any(|v| v == version)
    }

    /// Asks the channel what it offers now.
    pub async fn check_channel(&self) -> Result<Check, OtaError> {
        let Some(url) = self.channel_settings().await.url else {
            return Err(OtaError::Invalid(
                "No update channel is set. Enter the address of its manifest first.".into(),
            ));
        };
        let answer = match self.fetcher.manifest(&url).await {
            Ok(m) => self.judge(m).await,
            Err(e) => Answer::Failed {
                message: e.to_string(),
            },
        };
        let check = Check {
            checked_at: now_unix(),
            url,
            answer,
        };
        *lock(&self.last_check) = Some(check.clone());
        self.events.publish(Event::Update);
        Ok(check)
    }

    /// Whether a manifest offers something this box should have.
    async fn judge(&self, m: Manifest) -> Answer {
        if let (Some(theirs), Ok(status)) = (&m.compatible, self.rauc_status().await)
            && *theirs != status.compatible
        {
            return Answer::Failed {
                message: format!(
                    "This channel offers updates for “{theirs}” and this box is “{}”. Check the channel's address.",
                    status.compatible
                ),
            };
        }
        if channel::compare_versions(&m.version, &self.version).is_gt() {
            Answer::Available { manifest: m }
        } else {
            Answer::UpToDate {
                version: self.version.clone(),
            }
        }
    }

    /// The version the last check offered, asked again when there was no answer yet.
    async fn offered(&self) -> Result<Manifest, OtaError> {
        let known = lock(&self.last_check).clone();
        let check = match known {
            Some(c) => c,
            None => self.check_channel().await?,
        };
        match check.answer {
            Answer::Available { manifest } => Ok(manifest),
            Answer::UpToDate { version } => Err(OtaError::Invalid(format!(
                "Homelab {version} is the newest version the channel offers; there is nothing to download."
            ))),
            Answer::Failed { message } => Err(OtaError::Invalid(message)),
        }
    }

    /// Downloads the offered update in the background (progress on the Updates page); once
    /// checked it is kept like an uploaded file, ready to install. Returns its version.
    pub async fn download(self: &Arc<Self>) -> Result<String, OtaError> {
        let guard = self.claim()?;
        self.rauc_status().await?;
        let m = self.offered().await?;
        let version = m.version.clone();
        let this = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            if let Err(e) = this.fetch_update(&m).await {
                this.audit(format!("Download of update {} stopped: {e}", m.version))
                    .await;
            }
        });
        Ok(version)
    }

    /// Downloads, checks (size, SHA-256, then RAUC's signature, board and version) and keeps
    /// the file. The caller holds the updates service. Failures show on the page.
    async fn fetch_update(&self, m: &Manifest) -> Result<Staged, OtaError> {
        let result = if self.streams(m) {
            self.prepare_stream(m).await
        } else {
            self.fetch_update_inner(m).await
        };
        match &result {
            Ok(staged) => {
                self.set_progress(Phase::Idle, 0, "", None, None);
                self.audit(if staged.streamed {
                    format!(
                        "Checked update {} on the update channel (it is streamed when installed)",
                        m.version
                    )
                } else {
                    format!("Downloaded update {} from the update channel", m.version)
                })
                .await;
            }
            Err(e) => self.set_progress(
                Phase::Failed,
                0,
                "Not downloaded",
                Some(&m.version),
                Some(&e.to_string()),
            ),
        }
        result
    }

    /// Whether the channel's bundle is installed by streaming. Not when its address has a
    /// query: that may carry an access token, and streaming puts the address on RAUC's command
    /// line, where any process on the box can read it; such a bundle is downloaded whole.
    fn streams(&self, m: &Manifest) -> bool {
        self.cfg.stream && !m.url.contains('?')
    }

    /// Streaming: the bundle's signature, board and version are checked on the channel (RAUC
    /// reads only its signature and manifest), and its address is kept for the install, which
    /// fetches only the blocks this box does not already have.
    async fn prepare_stream(&self, m: &Manifest) -> Result<Staged, OtaError> {
        let url = channel::stream_address(&m.url)?;
        let Some(channel) = self.channel_settings().await.url else {
            return Err(OtaError::Invalid(
                "No update channel is set any more; nothing was kept.".into(),
            ));
        };
        self.set_progress(
            Phase::Downloading,
            0,
            "Checking the signature",
            Some(&m.version),
            None,
        );
        let mut record = StreamRecord {
            channel,
            url,
            version: m.version.clone(),
            size: m.size,
            manifest_hash: None,
        };
        let info = self.check(&Source::Url(record.clone())).await?;
        if info.version != m.version {
            return Err(OtaError::Invalid(format!(
                "The channel said Homelab {} but its file holds {}; it was not kept.",
                m.version, info.version
            )));
        }
        record.manifest_hash = info.manifest_hash;
        self.keep_stream(&record).await?;
        let staged = Staged {
            version: m.version.clone(),
            size: m.size,
            streamed: true,
        };
        self.set_staged(Some(staged.clone()));
        Ok(staged)
    }

    async fn fetch_update_inner(&self, m: &Manifest) -> Result<Staged, OtaError> {
        if self.staged().await.is_some_and(|s| s.version == m.version)
            && channel::file_matches(&self.staged_path(), &m.sha256).await
        {
            return Ok(Staged {
                version: m.version.clone(),
                size: m.size,
                streamed: false,
            });
        }
        let dir = snapshot::updates_dir(&self.data);
        tokio::fs::create_dir_all(&dir).await?;
        // Room for what is still to come; bytes already here stay.
        let have = tokio::fs::metadata(dir.join("download.part"))
            .await
            .map_or(0, |md| md.len());
        if let Some(free) = super::free_space(&dir)
            && m.size
                .saturating_sub(have)
                .saturating_add(super::SPACE_TO_SPARE)
                > free
        {
            return Err(super::no_space(m.size, free));
        }
        self.set_progress(Phase::Downloading, 0, "Downloading", Some(&m.version), None);
        let progress = self.progress.clone();
        let events = self.events.clone();
        let mut shown = u8::MAX;
        let part = self
            .fetcher
            .download(m, &dir, move |done, size| {
                let pct = (done.saturating_mul(100) / size.max(1)).min(100) as u8;
                if pct != shown {
                    shown = pct;
                    let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
                    p.percent = pct;
                    p.words = format!(
                        "Downloading: {} of {}",
                        crate::units::human_bytes(done),
                        crate::units::human_bytes(size)
                    );
                    drop(p);
                    events.publish(Event::Update);
                }
            })
            .await?;
        self.set_progress(
            Phase::Downloading,
            100,
            "Checking the signature",
            Some(&m.version),
            None,
        );
        let info = match self.check(&Source::File(part.clone())).await {
            Ok(info) => info,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        if info.version != m.version {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(OtaError::Invalid(format!(
                "The channel said Homelab {} but the file holds {}; it was deleted.",
                m.version, info.version
            )));
        }
        self.forget_kept().await?;
        tokio::fs::rename(&part, self.staged_path()).await?;
        let staged = Staged {
            version: info.version,
            size: m.size,
            streamed: false,
        };
        self.set_staged(Some(staged.clone()));
        Ok(staged)
    }

    /// The update window's loop: runs for the daemon's life.
    pub async fn run_window(self: Arc<Self>) {
        loop {
            self.window_tick().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    async fn window_tick(self: &Arc<Self>) {
        let s = self.channel_settings().await;
        if s.url.is_none() {
            return;
        }
        let now = now_unix();
        let in_window = s.window.is_some_and(|w| w.contains(now));
        let age = lock(&self.last_check)
            .as_ref()
            .map_or(i64::MAX, |c| now - c.checked_at);
        if age >= CHECK_EVERY || (in_window && age >= CHECK_FRESH_IN_WINDOW) {
            let _ = self.check_channel().await;
        }
        let retry_after = *lock(&self.auto_retry_after);
        if !in_window || now < retry_after || self.rauc_status().await.is_err() {
            return;
        }
        if let Err(e) = self.update_in_window().await {
            *lock(&self.auto_retry_after) = now + RETRY_AFTER;
            self.audit(format!(
                "The automatic update stopped: {e} It is tried again in an hour."
            ))
            .await;
        }
    }

    /// Inside the window: restart into an installed update, or fetch and install the offered
    /// one and then restart.
    async fn update_in_window(self: &Arc<Self>) -> Result<(), OtaError> {
        let Some(guard) = self.busy.try_claim("update") else {
            // The owner is uploading or installing something right now.
            return Ok(());
        };
        if let Some(p) = snapshot::pending(&self.data)
            && p.from_version == self.version
            && p.boot_id == snapshot::current_boot_id()
        {
            self.audit(format!(
                "Restarting in the update window to start Homelab {}",
                p.to_version
            ))
            .await;
            return self.reboot().await;
        }
        let Some(Check {
            answer: Answer::Available { manifest },
            ..
        }) = lock(&self.last_check).clone()
        else {
            return Ok(());
        };
        if self.is_held_back(&manifest.version) {
            return Ok(());
        }
        self.audit(format!(
            "Updating to Homelab {} in the update window",
            manifest.version
        ))
        .await;
        self.fetch_update(&manifest).await?;
        drop(guard);
        let (guard, source, info) = self.start_install().await?;
        if info.version != manifest.version {
            return Ok(());
        }
        if let Err(e) = self.finish_install(guard, source, info).await {
            // The channel's own file does not install: another try would fetch the same. Unless
            // it could not be read (a streamed install cut off): then the next hour tries again.
            if !matches!(e, OtaError::Rauc(RaucError::Unreachable(_))) {
                let _ = snapshot::hold_back(&self.data, &manifest.version);
            }
            return Err(e);
        }
        // The restart comes at the next tick, still inside the window (checked again then).
        self.wake.notify_one();
        Ok(())
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64, m: i64) -> i64 {
        // Some day, at h:m UTC.
        1_764_115_200 + h * 3600 + m * 60
    }

    #[test]
    fn a_window_holds_its_hours_in_the_owners_time() {
        let w = Window::parse("03:00", "05:00", 0).unwrap();
        assert!(!w.contains(at(2, 59)));
        assert!(w.contains(at(3, 0)));
        assert!(w.contains(at(4, 59)));
        assert!(!w.contains(at(5, 0)));
        // UTC+01:00: 03:00 there is 02:00 UTC.
        let w = Window::parse("03:00", "05:00", 60).unwrap();
        assert!(w.contains(at(2, 0)));
        assert!(!w.contains(at(4, 0)));
        assert_eq!(w.describe(), "03:00–05:00 (UTC+01:00)");
        // Over midnight.
        let w = Window::parse("23:30", "01:00", -300).unwrap();
        assert!(w.contains(at(4, 45)));
        assert!(w.contains(at(5, 30)));
        assert!(!w.contains(at(6, 0)));
        assert_eq!(w.describe(), "23:30–01:00 (UTC-05:00)");
    }

    #[test]
    fn a_window_must_make_sense() {
        for (s, e, o) in [
            ("3", "05:00", 0),
            ("24:00", "05:00", 0),
            ("03:00", "03:00", 0),
            ("03:00", "05:61", 0),
            ("03:00", "05:00", 15 * 60),
        ] {
            assert!(Window::parse(s, e, o).is_err(), "{s}-{e}@{o} accepted");
        }
    }
}
