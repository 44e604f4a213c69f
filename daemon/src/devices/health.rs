//! Health and resources: every device is polled concurrently on a fixed interval; each poll
//! reads the facts (one remote command plus a few Docker API calls), decides online / degraded /
//! offline / blocked with a reason in plain words, stores the status and a history sample, and
//! tells open pages.
//!
//! Results are written by one recorder task, in batches: the devices of a cycle that answer
//! together are stored in one transaction (one fsync), and a device that does not answer (a poll
//! can take up to `POLL_TIMEOUT`) gets its own later batch, so it never holds back the others'
//! results, their page updates or the next cycle.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::board::LiveContainers;
use super::facts::{FACTS, Facts, State, parse_facts};
use super::{DeviceError, Devices};
use crate::events::Event;
use crate::events::EventBus;
use crate::ssh::{self, RemoteCommand, SshError};
use crate::store::{DeviceRow, HistoryPolicy, PollRecord, Sample, StatusRow, Store, now_unix};
use crate::units::human_bytes;

/// A whole poll of one device must finish within this, or it counts as offline.
const POLL_TIMEOUT: Duration = Duration::from_secs(20);
/// History: one sample a minute for a day, then one per 15 minutes for 30 days; older is dropped.
const KEEP_FULL_SECS: i64 = 24 * 3600;
const COARSE_SECS: i64 = 15 * 60;
const KEEP_TOTAL_SECS: i64 = 30 * 24 * 3600;
const HISTORY: HistoryPolicy = HistoryPolicy {
    keep_full_secs: KEEP_FULL_SECS,
    coarse_secs: COARSE_SECS,
    keep_total_secs: KEEP_TOTAL_SECS,
};
/// A cycle's results that come within this of each other are written as one batch: reachable
/// devices answer in a burst (a fraction of a second for 100), then the cycle goes quiet while
/// unreachable ones time out.
const SETTLE: Duration = Duration::from_millis(300);
/// But no result waits longer than this for others to join its batch (a burst that keeps
/// trickling is written in slices).
const MAX_LINGER: Duration = Duration::from_secs(1);
/// Batches queued for the recorder. Each is a whole cycle's burst or one late device, so this
/// is several cycles' worth; when the disk stalls, polls wait here rather than pile up memory.
const RECORDER_QUEUE: usize = 16;
/// Containers kept from one poll of one device (a bound on memory; far more than a homelab
/// device runs).
const MAX_CONTAINERS: usize = 1000;
/// A disk fuller than this makes the device "degraded".
const DISK_WARN_FRACTION: f64 = 0.9;

/// Outcome of polling one device.
pub struct PollResult {
    pub state: State,
    pub reason: String,
    pub facts: Option<Facts>,
}

/// What a round of polling found, once the devices that answer have answered.
#[derive(Debug, Default)]
pub struct CycleSummary {
    /// Devices whose result is stored, with their state.
    pub checked: Vec<(i64, State)>,
    /// Devices still being polled (unreachable ones take up to the poll timeout, some from an
    /// earlier cycle); their results are stored and announced when they come.
    pub waiting: usize,
}

/// One poll's outcome on its way to the database.
struct Outcome {
    device: DeviceRow,
    result: PollResult,
    at: i64,
    /// When the poll began, in the order of all polls (see `run_recorder`).
    seq: u64,
}

/// Poll results for the recorder to write in one transaction; `done` hears when they are
/// committed (or failed to be).
pub(crate) struct RecordJob {
    outcomes: Vec<Outcome>,
    done: oneshot::Sender<()>,
}

impl Devices {
    /// Polls every device at once, stores the results and answers once the devices that answer
    /// have answered and their results are stored (the cycle's first quiet moment). Devices
    /// that do not answer go on in the background and are stored when they time out.
    pub async fn poll_all(self: &Arc<Self>) -> Result<CycleSummary, DeviceError> {
        let held = self.pool.held();
        let devices = self.store.devices().await?;
        self.pool
            .drop_gone(held, &devices.iter().map(|d| d.id).collect())
            .await;
        let (settled_tx, settled_rx) = oneshot::channel();
        // Its own task: the cycle finishes and stores everything even if the caller (a
        // refresh request whose client went away) stops waiting.
        tokio::spawn(self.clone().cycle(devices, settled_tx));
        let summary = settled_rx.await.unwrap_or_default();
        // The cycle's burst of allocations is over: hand its free pages back now rather than
        // at the next periodic trim.
        let _ = tokio::task::spawn_blocking(crate::heap::give_back).await;
        Ok(summary)
    }

    async fn cycle(
        self: Arc<Self>,
        devices: Vec<DeviceRow>,
        settled: oneshot::Sender<CycleSummary>,
    ) {
        let mut polls = FuturesUnordered::new();
        let mut busy = 0;
        for d in devices {
            let Some(claim) = self.polling.try_claim(&d.id.to_string()) else {
                busy += 1; // still being polled since an earlier cycle
                continue;
            };
            let this = self.clone();
            // Each poll in its own task, so polls progress while the cycle waits on a write.
            polls.push(tokio::spawn(
                async move { (this.poll_in_time(&d).await, claim) },
            ));
        }
        let mut settled = Some(settled);
        let mut checked = Vec::new();
        let mut batch = Vec::new();
        let mut claims = Vec::new();
        // When the oldest result not yet written came, and when the latest result came.
        let mut oldest: Option<Instant> = None;
        let mut latest: Option<Instant> = None;
        loop {
            // Wait for the next result, but only until the batch is due (the cycle went quiet,
            // or the oldest result has lingered long enough), or, once written, until the
            // cycle goes quiet (the moment the caller hears back).
            let due = match (oldest, latest) {
                (Some(o), Some(l)) => Some((l + SETTLE).min(o + MAX_LINGER)),
                (None, Some(l)) if settled.is_some() => Some(l + SETTLE),
                _ => None,
            };
            let next = match due {
                None => polls.next().await,
                Some(due) => match tokio::time::timeout_at(due, polls.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        self.flush(&mut batch, &mut checked, &mut claims).await;
                        oldest = None;
                        let quiet = latest.is_some_and(|l| Instant::now() >= l + SETTLE);
                        if quiet && let Some(tx) = settled.take() {
                            let _ = tx.send(CycleSummary {
                                checked: checked.clone(),
                                waiting: polls.len() + busy,
                            });
                        }
                        continue;
                    }
                },
            };
            match next {
                Some(Ok((outcome, claim))) => {
                    let now = Instant::now();
                    oldest.get_or_insert(now);
                    latest = Some(now);
                    batch.push(outcome);
                    claims.push(claim);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "a device poll task failed"),
                None => break,
            }
        }
        self.flush(&mut batch, &mut checked, &mut claims).await;
        if let Some(tx) = settled.take() {
            let _ = tx.send(CycleSummary {
                checked,
                waiting: busy,
            });
        }
    }

    /// Hands a batch to the recorder and waits until it is stored; then its devices may be
    /// polled again by the next cycle.
    async fn flush(
        &self,
        batch: &mut Vec<Outcome>,
        checked: &mut Vec<(i64, State)>,
        claims: &mut Vec<crate::busy::BusyGuard>,
    ) {
        if batch.is_empty() {
            return;
        }
        checked.extend(batch.iter().map(|o| (o.device.id, o.result.state)));
        self.record(std::mem::take(batch)).await;
        claims.clear();
    }

    /// Polls one device within the poll timeout and stores the result ("Check now"); answers
    /// once it is stored, so the page shown next has it.
    pub async fn check(&self, d: &DeviceRow) -> State {
        let outcome = self.poll_in_time(d).await;
        let state = outcome.result.state;
        self.record(vec![outcome]).await;
        state
    }

    /// `check` in the background: a device just added, or one Homelab just changed (an app
    /// installed, started, stopped or removed), shows it at once instead of at the next poll.
    pub fn check_soon(self: &Arc<Self>, device: DeviceRow) {
        let this = self.clone();
        tokio::spawn(async move {
            this.check(&device).await;
        });
    }

    /// `poll` within `POLL_TIMEOUT`: a device that stops answering counts as offline.
    async fn poll_in_time(&self, d: &DeviceRow) -> Outcome {
        let seq = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = match tokio::time::timeout(POLL_TIMEOUT, self.poll(d)).await {
            Ok(r) => r,
            Err(_) => {
                self.pool.forget(d.id).await;
                PollResult {
                    state: State::Offline,
                    reason: "The device stopped answering.".into(),
                    facts: None,
                }
            }
        };
        Outcome {
            device: d.clone(),
            result,
            at: now_unix(),
            seq,
        }
    }

    /// Sends results to the recorder and waits until they are committed.
    async fn record(&self, outcomes: Vec<Outcome>) {
        let queue = self.recorder.get_or_init(|| {
            let (tx, rx) = mpsc::channel(RECORDER_QUEUE);
            tokio::spawn(run_recorder(
                self.store.clone(),
                self.events.clone(),
                self.board.live.clone(),
                rx,
            ));
            tx
        });
        let (done, stored) = oneshot::channel();
        if queue.send(RecordJob { outcomes, done }).await.is_err() {
            tracing::warn!("the poll recorder has stopped; a poll result was not stored");
            return;
        }
        let _ = stored.await;
    }

    /// Polls one device (no storing).
    pub async fn poll(&self, device: &DeviceRow) -> PollResult {
        self.polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (session, docker) = match self.pool.docker(device).await {
            Ok((session, docker)) => (session, Ok(docker)),
            // Reached the device, but not its Docker engine: still report the rest.
            Err(DeviceError::Docker(e)) => match self.pool.session(device).await {
                Ok(session) => (session, Err(e.to_string())),
                Err(e) => return unreachable(e),
            },
            Err(e) => return unreachable(e),
        };
        // Where Docker keeps its data decides which disk we report.
        let (docker_root, docker_read, docker_problem) = match &docker {
            Ok(d) => match crate::docker::engine::read(d, MAX_CONTAINERS).await {
                Ok(read) => (read.root_dir.clone(), Some(read), None),
                Err(e) => ("/".to_string(), None, Some(e)),
            },
            Err(e) => ("/".to_string(), None, Some(e.clone())),
        };
        let out = match session
            .exec(
                &RemoteCommand::script(FACTS, [&docker_root]),
                None,
                ssh::EXEC_TIMEOUT,
            )
            .await
        {
            Ok(o) if o.success() => o,
            // Reasons are shown to owners in both display modes, so they are plain; the
            // technical detail goes to the log.
            Ok(o) => {
                tracing::debug!(device = %device.name, stderr = %o.stderr_text(), "reading the device's figures failed");
                return PollResult {
                    state: State::Offline,
                    reason: "Could not read the device's memory and storage figures. Homelab tries again at the next check.".into(),
                    facts: None,
                };
            }
            Err(e) => {
                tracing::debug!(device = %device.name, error = %e, "reading the device's figures failed");
                self.pool.forget(device.id).await;
                return PollResult {
                    state: State::Offline,
                    reason: e.plain(),
                    facts: None,
                };
            }
        };
        let mut facts = parse_facts(&out.stdout_text());
        if let Some(read) = docker_read {
            facts.docker = Some(read.facts);
            facts.containers = Some(read.containers);
        }
        let (state, reason) = judge(&facts, docker_problem);
        PollResult {
            state,
            reason,
            facts: Some(facts),
        }
    }

    /// Runs `poll_all` every `interval` until `stop` flips.
    pub fn spawn_poller(
        self: Arc<Self>,
        interval: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        // Returns once the answering devices are stored: a device that does
                        // not answer finishes in the background and does not delay the next
                        // cycle for the others.
                        if let Err(e) = self.poll_all().await {
                            tracing::warn!(error = %e, "device poll failed");
                        }
                    }
                    _ = crate::shutdown::stopped(&mut stop) => break,
                }
            }
        });
    }
}

/// The result for a device that could not be reached (or refused us). The reason is the
/// plain sentence owners see in either mode; the technical one is logged.
fn unreachable(e: DeviceError) -> PollResult {
    // Every poll of a device in trouble comes here (every 30 s): the technical words go to the
    // debug log, not to an SD card at INFO; status changes are logged by the recorder.
    tracing::debug!(error = %e, "a device could not be reached");
    match e {
        DeviceError::Ssh(e @ SshError::HostKeyChanged { .. }) => PollResult {
            state: State::Blocked,
            reason: e.plain(),
            facts: None,
        },
        DeviceError::Ssh(SshError::AuthFailed { .. }) => PollResult {
            state: State::Blocked,
            reason: "The device refused Homelab's login; Homelab's key may have been removed from the device. Enter the device login again below.".into(),
            facts: None,
        },
        DeviceError::Ssh(e) => PollResult {
            state: State::Offline,
            reason: e.plain(),
            facts: None,
        },
        DeviceError::Docker(_) => PollResult {
            state: State::Offline,
            reason: "The device answered, but its app engine did not. Restart the device, then \
                     check again."
                .into(),
            facts: None,
        },
        e => PollResult {
            state: State::Offline,
            reason: e.to_string(),
            facts: None,
        },
    }
}

/// The recorder: writes whatever results have queued up as one transaction, then logs status
/// changes and tells open pages (only after the commit, so a page that re-reads sees them).
/// Ends when `Devices` is dropped (the queue closes).
async fn run_recorder(
    store: Store,
    events: EventBus,
    live: LiveContainers,
    mut queue: mpsc::Receiver<RecordJob>,
) {
    // The latest poll stored per device, by when it began. A poll that began earlier is older
    // news: a cycle's result lingering in its batch must not undo a re-check made after a change
    // (a stopped app would show running again until the next cycle). One entry per device polled
    // since start.
    let mut stored: HashMap<i64, u64> = HashMap::new();
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while let Ok(more) = queue.try_recv() {
            jobs.push(more);
        }
        let mut newest: HashMap<i64, u64> = HashMap::new();
        for o in jobs.iter().flat_map(|j| j.outcomes.iter()) {
            let n = newest.entry(o.device.id).or_insert(o.seq);
            *n = (*n).max(o.seq);
        }
        let current = |o: &Outcome| {
            newest.get(&o.device.id) == Some(&o.seq)
                && stored.get(&o.device.id).is_none_or(|s| o.seq > *s)
        };
        // Containers are kept in memory, the rest goes to the database. They are in place
        // before the commit moves the devices generation, so the board built after it has both.
        {
            let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
            for o in jobs.iter_mut().flat_map(|j| j.outcomes.iter_mut()) {
                if !current(o) {
                    continue;
                }
                match o.result.facts.as_mut().and_then(|f| f.containers.take()) {
                    Some(list) => live.insert(o.device.id, list.into()),
                    None => live.remove(&o.device.id),
                };
            }
        }
        let outcomes: Vec<&Outcome> = jobs
            .iter()
            .flat_map(|j| j.outcomes.iter())
            .filter(|o| current(o))
            .collect();
        let records = outcomes.iter().map(|o| poll_record(o)).collect();
        match store.record_polls(records, HISTORY).await {
            Ok(recorded) => {
                for (o, r) in outcomes.iter().zip(recorded) {
                    if !r.stored {
                        // Removed while it was being polled.
                        live.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&o.device.id);
                        stored.remove(&o.device.id);
                        continue;
                    }
                    stored.insert(o.device.id, o.seq);
                    let state = o.result.state.as_str();
                    if r.previous_state.as_deref() != Some(state) {
                        tracing::info!(device = %o.device.name, state, reason = %o.result.reason, "device status changed");
                    }
                    events.publish(Event::DeviceStatus {
                        device_id: o.device.id,
                    });
                }
            }
            Err(e) => {
                tracing::warn!(devices = outcomes.len(), error = %e, "could not store poll results");
            }
        }
        for job in jobs {
            let _ = job.done.send(());
        }
    }
}

/// A poll's outcome as the database stores it: the status, and one history point per minute
/// (the latest poll in a minute wins).
fn poll_record(o: &Outcome) -> PollRecord {
    let r = &o.result;
    let now = o.at;
    let minute = now - now % 60;
    let seen = r.state != State::Offline && r.state != State::Blocked;
    let facts_json = r
        .facts
        .as_ref()
        .map(|f| serde_json::to_string(f).unwrap_or_default())
        .unwrap_or_default();
    let sample = match &r.facts {
        Some(f) => Sample {
            at: minute,
            online: true,
            load1: Some(f.load[0]),
            mem_used: Some(f.mem_total.saturating_sub(f.mem_available) as i64),
            mem_total: Some(f.mem_total as i64),
            disk_used: Some(f.disk_total.saturating_sub(f.disk_free) as i64),
            disk_total: Some(f.disk_total as i64),
        },
        None => Sample {
            at: minute,
            online: false,
            ..Sample::default()
        },
    };
    PollRecord {
        status: StatusRow {
            device_id: o.device.id,
            state: r.state.as_str().into(),
            reason: r.reason.clone(),
            facts: facts_json,
            last_seen_at: seen.then_some(now),
            checked_at: now,
        },
        sample,
    }
}

/// Online, or degraded with the most important reason.
fn judge(f: &Facts, docker_problem: Option<String>) -> (State, String) {
    if let Some(p) = docker_problem {
        tracing::debug!(problem = %p, "a device's Docker is not usable");
        return (
            State::Degraded,
            "Apps cannot run here right now: the device's app engine does not answer.".into(),
        );
    }
    if f.disk_total > 0
        && (f.disk_total - f.disk_free.min(f.disk_total)) as f64 / f.disk_total as f64
            > DISK_WARN_FRACTION
    {
        return (
            State::Degraded,
            format!(
                "The disk is almost full ({} free).",
                human_bytes(f.disk_free)
            ),
        );
    }
    if let Some(d) = &f.docker
        && d.unhealthy > 0
    {
        return (
            State::Degraded,
            format!("{} part(s) of your apps report a problem.", d.unhealthy),
        );
    }
    (State::Online, "Everything looks fine.".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::facts::DockerFacts;

    #[test]
    fn judging() {
        let mut f = Facts {
            disk_total: 100,
            disk_free: 50,
            docker: Some(DockerFacts::default()),
            ..Facts::default()
        };
        assert_eq!(judge(&f, None).0, State::Online);
        assert_eq!(judge(&f, Some("no socket".into())).0, State::Degraded);
        f.disk_free = 5;
        assert!(judge(&f, None).1.contains("almost full"));
        f.disk_free = 50;
        f.docker = Some(DockerFacts {
            unhealthy: 2,
            ..DockerFacts::default()
        });
        assert!(judge(&f, None).1.contains("2 part(s) of your apps"));
    }
}
