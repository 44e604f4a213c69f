//! The deploy engine: one click → the best device → live progress → running with a link, or
//! rolled back to exactly where it started.
//!
//! A deployment moves through validating → preparing → pulling → starting → configuring →
//! health_check → running, or failed → rolling_back → rolled_back. Every step that changes
//! something is first written to the journal (SQLite) together with its undo; a failure undoes
//! the journalled steps in reverse. Undos are safe to repeat, so a rollback interrupted by an
//! unplugged device or a restart of this daemon is simply run again later: on start, anything
//! left mid-way is rolled back, and a background task retries unfinished rollbacks until the
//! device is back.
//!
//! Files, by phase (each adds an `impl Deployer` block):
//!
//! | file           | owns |
//! |----------------|------|
//! | `mod.rs`       | the `Deployer` type and its constructor, the public types, helpers every phase uses |
//! | `plan.rs`      | placement candidates, the ranked plan, choosing the device |
//! | `preflight.rs` | fresh checks on the device before anything there changes |
//! | `job.rs`       | the deploy and update jobs: their steps, image pulls, progress, the outcome |
//! | `health.rs`    | the health check after Compose started the app |
//! | `journal.rs`   | steps journalled with their undo, rolling back, recovery after a restart |
//! | `upkeep.rs`    | the housekeeping loop and reconciling apps with their devices |
//! | `manage.rs`    | a deployed app's lifecycle, logs, secrets and removal |
//! | `remote.rs`    | everything done on a device (scripts, Compose, Docker API), each call logged |
//! | `render.rs`    | the values of a recipe's variables and the env file |
//! | `*.sh`         | the shell scripts `remote.rs` runs on a device, each saying what it takes |
//!
//! Elsewhere: the states a deployment and an app move through are in `crate::states` (so the
//! store can read them without importing this engine), and the Docker API calls `remote.rs`
//! makes are in `crate::docker::project`.

mod backing;
mod box_state;
mod browsing;
pub use backing::SnapshotView;
pub use box_state::{BoxBackup, BoxBackupAt, BoxRestore, BoxState, MIN_PASSPHRASE, Restored};
pub use browsing::{EntryKind, FileDownload, FileEntry, Folder};
pub use moving::MoveRequest;
pub use space::{filling_up, holds};
mod health;
mod job;
mod journal;
mod manage;
mod moving;
pub mod naming;
mod pooling;
pub use pooling::SharedInstance;
pub use scheduled::policy_for;
mod plan;
mod preflight;
mod remote;
pub mod render;
mod scheduled;
mod space;
mod upkeep;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::busy::{BusyGuard, BusySet};
use crate::catalog::{Catalog, Recipe};
use crate::config::DeployConfig;
use crate::devices::Devices;
use crate::events::EventBus;
use crate::placement::Disqualified;
use crate::secrets::{Vault, VaultError};
pub use crate::states::{DeploymentState, RunState};
use crate::store::{AppRow, DeviceRow, Store, StoreError};
pub use health::HealthFailure;
pub use job::update_refused;
pub use remote::{PROJECT_LABEL, Remote, probe};

/// Compose project names we own: `homelab-<slug>`.
pub const PROJECT_PREFIX: &str = "homelab-";

/// Errors of the deploy engine; each message says what to do. The variants are grouped by
/// what the user does next.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    // The request itself: change it and send it again.
    /// The settings do not fit the recipe (the message names the setting).
    #[error("{0}")]
    BadSettings(String),
    #[error("There is no app “{0}” in the catalog.")]
    UnknownApp(String),
    #[error("{0} is not deployed.")]
    NotDeployed(String),
    #[error("No such deployment.")]
    NotFound,
    #[error("{app} is up to date (version {version}).")]
    UpToDate { app: String, version: String },
    /// Upstream does not support updating from the installed version straight to the
    /// catalog's (the recipe's `update_from`).
    #[error("{app} {from} cannot update straight to {to}. {reason} {otherwise}")]
    UpdateUnsupported {
        app: String,
        from: String,
        to: String,
        reason: String,
        otherwise: String,
    },

    // Wait: another operation holds the app.
    #[error("{0} is busy; try again in a moment.")]
    AppBusy(String),
    /// An earlier failed attempt must finish undoing on a device that does not answer.
    #[error(
        "The last attempt to install {app} is still being undone on {device}, which is not \
         answering. Turn it on (or remove it from Homelab), then try again."
    )]
    StillUndoing { app: String, device: String },

    // Choose (or add) another device.
    #[error("Add a device first: apps run on your devices, not on this box.")]
    NoDevices,
    #[error("That device is not one of your devices.")]
    UnknownDevice,
    #[error("That device was just removed.")]
    DeviceRemoved,
    #[error("{device} cannot run {app}: {why}")]
    CannotRun {
        device: String,
        app: String,
        why: Disqualified,
    },
    /// Every device, each with why it cannot.
    #[error("No device can run {app} right now: {}", each_device(why))]
    NoDeviceFits {
        app: String,
        why: Vec<(String, Disqualified)>,
    },

    // Fix something on the device, then try again.
    #[error(
        "Port {port} is used by {} on {device} — use {free}?{}",
        holder.as_deref().unwrap_or("another program"),
        setting.as_ref().map(|s| format!(" Change “{s}” to {free}.")).unwrap_or_default()
    )]
    PortTaken {
        port: u16,
        device: String,
        /// Our app or the container holding the port; None: another program.
        holder: Option<String>,
        /// A free port to suggest.
        free: u16,
        /// The label of the recipe setting that chose the port, when one did.
        setting: Option<String>,
    },
    #[error(
        "Docker Compose is not installed on {0}. On the device run \
         `sudo apt-get install docker-compose-plugin` (or `docker-compose`), then try again."
    )]
    ComposeMissing(String),
    /// The recipe binds to the device's address, and the one Homelab knows it by is a name
    /// that does not resolve here or a loopback address.
    #[error(
        "{app} needs {device}'s address on your network, and Homelab knows it only as “{host}”. \
         Add the device again by its IP address (for example 192.168.1.20), then try again."
    )]
    NoDeviceAddress {
        device: String,
        app: String,
        host: String,
    },
    /// Found missing by an update (it was there for the deploy).
    #[error("Docker Compose is no longer installed on {0}.")]
    ComposeGone(String),
    /// Containers of the app's Compose project that this Homelab has no record of.
    #[error(
        "{device} already runs containers of the project {project} that this Homelab does \
         not know about. Remove them on the device (`docker compose -p {project} down`), \
         or choose another device."
    )]
    ProjectClash { device: String, project: String },
    #[error(
        "The folder {dir} already exists on {device}. Move it away (or delete it) on the \
         device, then try again."
    )]
    FolderTaken { dir: String, device: String },
    #[error(
        "Homelab could not create the folder {dir} on {device}: the device login “{login}” may \
         not write there. On the device run `sudo mkdir -p {dir} && sudo chown {login} {dir}`, \
         then try again."
    )]
    FolderNotCreatable {
        dir: String,
        device: String,
        login: String,
    },
    #[error("Could not write the app's files in {dir} on {device}: {detail}")]
    FilesNotWritten {
        dir: String,
        device: String,
        detail: String,
    },
    #[error("Could not copy {file}: {detail}")]
    CopyFailed { file: String, detail: String },
    #[error("Could not remove {dir} on {device}: {detail}")]
    RemoveFailed {
        dir: String,
        device: String,
        detail: String,
    },
    /// `image` and the engine's words are the detail ("What I did", Advanced mode).
    #[error(
        "{device} could not download the app. Check that it can reach the internet, then try \
         again."
    )]
    PullFailed {
        image: String,
        device: String,
        detail: String,
    },
    /// A removal needs the device to answer; forgetting the app here does not.
    #[error(
        "{cause} Nothing was removed. Turn {device} on and try again — or, if it is gone for \
         good, choose “Forget it here only”."
    )]
    RemovalNeedsDevice {
        device: String,
        cause: Box<DeployError>,
    },

    // The app itself did not work: its output says why.
    /// `compose up` failed; `what` is the app or its version. Compose's own words are in
    /// `detail` (shown under "What I did").
    #[error(
        "{what} did not start on {device}. Try again; if it fails again, switch to Advanced mode \
         and open “What I did” for the app's own words."
    )]
    StartFailed {
        what: String,
        device: String,
        detail: String,
    },
    #[error(transparent)]
    HealthCheckFailed(#[from] HealthFailure),
    /// start | stop | restart failed.
    #[error("Could not {verb} {app}: {detail}")]
    LifecycleFailed {
        verb: &'static str,
        app: String,
        detail: String,
    },

    // Not the user's doing.
    /// Talking to the device failed; `detail` is the technical cause, kept for "What I did"
    /// and the log, never in the sentence the owner reads.
    #[error("{device} {trouble}")]
    Device {
        device: String,
        trouble: Trouble,
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Preparing a secret for the app (hashing it) failed.
    #[error("Homelab could not prepare {0} for the app. Try again.")]
    SecretNotPrepared(String),

    // Names and HTTPS.
    #[error(
        "The name {name} is already used by {holder}. Give one of them another name on its page."
    )]
    NameTaken { name: String, holder: String },
    /// Ports 80/443 are held by something that is not Homelab's proxy (the owner's own proxy,
    /// a web server): Homelab never stops it.
    #[error(
        "{holder} already uses port {port} on {device}, so Homelab cannot give {app} a name with a secure address there. Install it reachable by its address only, or choose another device."
    )]
    ProxyPortTaken {
        port: u16,
        device: String,
        holder: String,
        app: String,
    },
    #[error(
        "Homelab's secure proxy did not start on {device}. Try again; if it fails again, restart the device."
    )]
    ProxyNotReady { device: String },
    #[error(
        "Homelab's secure proxy on {device} did not take the change. Try again; if it fails again, switch to Advanced mode and open “What I did”."
    )]
    ProxyRefused { device: String, detail: String },
    #[error(
        "{app} answers at its address, but not at https://{name} through Homelab's proxy ({detail}). Try again."
    )]
    NotSecured {
        app: String,
        name: String,
        detail: String,
    },
    #[error("Homelab could not make a certificate for the app: {0}")]
    Certificate(String),
    #[error("{0} has no name: it is reached by its address only.")]
    NotNamed(String),
    #[error(
        "“{0}” cannot be a name: use letters a–z, digits and hyphens (not at either end), at most 63 characters."
    )]
    BadName(String),
    #[error("{name} could not be set up: {why}")]
    NameNotPlaced { name: String, why: String },
    /// A name needs an address to point at; a device added by a name that does not resolve
    /// here (or as localhost) has none.
    #[error(
        "{device} was added as “{host}”, which is not an address on your network, so Homelab \
         cannot give the app a name pointing at it. Change the device's address to its IP \
         address on its page, or install the app reachable by its address only."
    )]
    NoNameAddress { device: String, host: String },
    #[error(
        "The shared {engine} on {device} did not start. Try again; if it fails again, restart the device."
    )]
    SharedDbNotReady {
        engine: crate::pool::Engine,
        device: String,
    },
    #[error(
        "The shared {engine} on {device} refused to prepare the app's database. Try again; if it fails again, switch to Advanced mode and open “What I did”."
    )]
    SharedDbRefused {
        engine: crate::pool::Engine,
        device: String,
        detail: String,
    },
    #[error(
        "The shared {engine} on {device} still holds the data of installed apps. Remove those apps first, or keep it."
    )]
    SharedDbInUse {
        engine: crate::pool::Engine,
        device: String,
    },
    /// "Move to the shared database" asked of an app that cannot or need not.
    #[error("{0}")]
    CannotShare(String),
    /// A backup destination or run the owner asked for that cannot be (the message says why
    /// and what to do); `BackupFailed` is one that was tried and failed.
    #[error("{0}")]
    BackupRefused(String),
    #[error("{message}")]
    BackupFailed { message: String, detail: String },
    #[error(
        "Copying {app}'s data into the shared {engine} failed, so it keeps its own database, as before. {why}"
    )]
    CopyToSharedFailed {
        app: String,
        engine: crate::pool::Engine,
        why: String,
        detail: String,
    },
}

/// What went wrong talking to a device, in the owner's words: the sentence after its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// Off, unplugged, restarting, or the network between is down.
    NoAnswer,
    /// It answered, but too slowly to go on.
    TooSlow,
    /// The stored device login no longer works.
    LoginRefused,
    /// Its host key changed: nothing more is sent until the owner looks.
    IdentityChanged,
    /// Its last check found it blocked (login refused or identity changed).
    Blocked,
    /// It answered, but its app engine would not do what was asked.
    EngineRefused,
}

impl std::fmt::Display for Trouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Trouble::NoAnswer => {
                "stopped answering: it may be off, unplugged or restarting. Check that it is on \
                 and connected to your network, then try again."
            }
            Trouble::TooSlow => {
                "took too long to answer. Check that it is on and not overloaded, then try again."
            }
            Trouble::LoginRefused => {
                "no longer accepts Homelab's device login. Update the login on its page under \
                 Devices, then try again."
            }
            Trouble::IdentityChanged => {
                "no longer identifies itself as it did before, so Homelab stopped talking to it. \
                 Open its page under Devices to see what changed."
            }
            Trouble::Blocked => {
                "is blocked: Homelab stopped talking to it until you open its page under Devices \
                 and follow the steps there."
            }
            Trouble::EngineRefused => {
                "could not do what Homelab asked of it. Try again; if it fails again, restart \
                 the device."
            }
        })
    }
}

impl Trouble {
    pub fn of_ssh(e: &crate::ssh::SshError) -> Trouble {
        use crate::ssh::SshError as E;
        match e {
            E::AuthFailed { .. } => Trouble::LoginRefused,
            E::HostKeyChanged { .. } => Trouble::IdentityChanged,
            E::CommandTimeout(_) | E::Timeout { .. } => Trouble::TooSlow,
            _ => Trouble::NoAnswer,
        }
    }

    pub fn of_device(e: &crate::devices::DeviceError) -> Trouble {
        use crate::devices::DeviceError as E;
        match e {
            E::Ssh(e) => Trouble::of_ssh(e),
            E::Docker(e) => Trouble::of_docker(e),
            _ => Trouble::NoAnswer,
        }
    }

    pub fn of_docker(e: &crate::docker::DockerError) -> Trouble {
        if e.engine_answered() {
            Trouble::EngineRefused
        } else {
            Trouble::NoAnswer
        }
    }
}

impl DeployError {
    /// The technical words behind a plain message, for "What I did" and the log.
    pub fn detail(&self) -> Option<String> {
        match self {
            DeployError::Device { detail, .. }
            | DeployError::StartFailed { detail, .. }
            | DeployError::ProxyRefused { detail, .. }
            | DeployError::SharedDbRefused { detail, .. }
            | DeployError::CopyToSharedFailed { detail, .. }
            | DeployError::BackupFailed { detail, .. }
                if !detail.is_empty() =>
            {
                Some(detail.clone())
            }
            DeployError::HealthCheckFailed(h) => h.detail(),
            DeployError::PullFailed { image, detail, .. } => {
                Some(format!("downloading {image}: {detail}"))
            }
            _ => None,
        }
    }
}

/// Two messages as one text: the first ends as a sentence (a full stop added when it has no
/// closing punctuation), so "…stopped answering" and "Everything was undone." never run
/// together. Either may be empty.
pub(crate) fn sentences(first: &str, next: &str) -> String {
    let first = first.trim();
    let next = next.trim();
    match (first.is_empty(), next.is_empty()) {
        (true, _) => next.to_string(),
        (false, true) => first.to_string(),
        (false, false) => {
            let stop = if first.ends_with(['.', '!', '?', '…']) {
                ""
            } else {
                "."
            };
            format!("{first}{stop} {next}")
        }
    }
}

/// "device — why; device — why" for [`DeployError::NoDeviceFits`].
fn each_device(why: &[(String, Disqualified)]) -> String {
    why.iter()
        .map(|(device, why)| format!("{device} — {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the user asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeployRequest {
    /// A device chosen by the user instead of the recommendation.
    #[serde(default)]
    pub device_id: Option<i64>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Reachable by its address only: no name, no HTTPS through Homelab's proxy (the way out
    /// when another program holds the device's ports 80 and 443).
    #[serde(default)]
    pub by_address: bool,
    /// Keep the app's own database container instead of a database in the device's shared
    /// one (Advanced mode's choice; "Move to the shared database" can change it later).
    #[serde(default)]
    pub own_database: bool,
}

/// How a deploy request was answered.
#[derive(Debug, Clone)]
pub enum Started {
    /// A new deployment is under way.
    New(i64),
    /// The app is already deployed; nothing was done.
    AlreadyDeployed(Box<AppRow>),
    /// A deployment of this app is already running.
    InFlight(i64),
}

/// The deploy engine.
pub struct Deployer {
    store: Store,
    vault: Arc<Vault>,
    devices: Arc<Devices>,
    catalog: Arc<Catalog>,
    events: EventBus,
    pub config: DeployConfig,
    /// Apps with an operation in flight in this process: one operation per app at a time.
    busy: BusySet,
    /// One deploy request per app at a time from the request to its deployment record, so
    /// a second Install while the first is being set up waits a moment and then gets the
    /// same deployment, never "busy" (one lock per catalog app: bounded by the catalog).
    starting: std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// App names on the owner's DNS.
    records: crate::dns::records::Records,
    /// The homelab's CA: certificates for app names.
    ca: crate::tls::ca::Authority,
    /// One proxy start or removal per device at a time (bounded by the devices).
    proxy_locks: Locks<i64>,
    /// One pass applying the public domain's authority at a time (`reapply_public`), and
    /// whether a change saved meanwhile needs another.
    reapplying: tokio::sync::Mutex<()>,
    reapply_again: std::sync::atomic::AtomicBool,
    /// One shared database start or removal per device and engine at a time (bounded by the
    /// devices, two engines each).
    pool_locks: Locks<(i64, crate::pool::Engine)>,
    /// The last memory read of each shared instance, in bytes (for "Sharing databases
    /// saves…"; bounded by the devices, two engines each).
    pool_memory: std::sync::Mutex<BTreeMap<(i64, crate::pool::Engine), u64>>,
    /// The last live reading of each device's shared databases, for its page (bounded by the
    /// devices).
    shared_view: std::sync::Mutex<BTreeMap<i64, (std::time::Instant, Vec<SharedInstance>)>>,
    /// This daemon's mark on its backup containers (random per start), so the first backup
    /// work on a device after a start removes what an earlier start left running there.
    backup_owner: String,
    /// The box's own backup and restore (its data directory, its restic, one at a time).
    box_state: box_state::BoxState,
    /// Devices already cleared of left-over backup containers since this start.
    backup_swept: std::sync::Mutex<std::collections::BTreeSet<i64>>,
    /// Per destination: backups hold it shared, the box's prune and check alone (restic's
    /// own exclusive lock would otherwise fail a backup that meets a prune). Bounded by the
    /// destinations.
    destination_locks: std::sync::Mutex<BTreeMap<i64, Arc<tokio::sync::RwLock<()>>>>,
    /// The scheduled backup running now, if any: scheduled backups run one at a time.
    scheduled_job: std::sync::Mutex<Option<i64>>,
    /// When each destination's upkeep was last tried (bounded by the destinations).
    upkeep_tried: std::sync::Mutex<BTreeMap<i64, std::time::Instant>>,
    /// Held by the one destination upkeep running (prune and check are heavy).
    upkeep_one: Arc<tokio::sync::Mutex<()>>,
    /// Snapshot listings running at once, box-wide (each is a restic container on a device;
    /// a page reloaded in a loop must not start hundreds).
    listings: tokio::sync::Semaphore,
}

/// How long an owner's request waits for a background check to let go of an app.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One async lock per key, made on first use (keys are bounded by the devices).
type Locks<K> = std::sync::Mutex<BTreeMap<K, Arc<tokio::sync::Mutex<()>>>>;

/// Vault owner of an app's generated secrets.
pub fn secret_owner(slug: &str) -> String {
    format!("app:{slug}")
}

pub fn project_name(slug: &str) -> String {
    format!("{PROJECT_PREFIX}{slug}")
}

/// Vault owner of the key of an app's certificate.
pub(crate) fn key_owner(slug: &str) -> String {
    format!("name:{slug}")
}

/// The proxy's route and certificate ids for an app (stable: a repeat replaces, never adds).
pub(crate) fn route_id(slug: &str) -> String {
    format!("app-{slug}")
}
pub(crate) fn cert_id(slug: &str) -> String {
    format!("cert-{slug}")
}
/// The proxy's ACME policy for an app named under the owner's public domain.
pub(crate) fn acme_id(slug: &str) -> String {
    format!("acme-{slug}")
}

/// The device's IP address: its host as given when that is an address, else what the name
/// resolves to here (IPv4 first: what a port binding on a home network wants), else the name.
pub(crate) async fn device_ip(host: &str) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    // The SSH connection resolved the same name moments ago; a slow resolver is not waited on.
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::lookup_host((host, 22)),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>())
    .unwrap_or_default();
    found
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(found.first())
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| host.to_string())
}

impl Deployer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        devices: Arc<Devices>,
        catalog: Arc<Catalog>,
        events: EventBus,
        config: DeployConfig,
        records: crate::dns::records::Records,
        ca: crate::tls::ca::Authority,
        box_state: box_state::BoxState,
    ) -> Deployer {
        Deployer {
            store,
            vault,
            devices,
            catalog,
            events,
            config,
            busy: BusySet::default(),
            starting: Default::default(),
            records,
            ca,
            proxy_locks: Default::default(),
            reapplying: Default::default(),
            reapply_again: Default::default(),
            pool_locks: Default::default(),
            pool_memory: Default::default(),
            shared_view: Default::default(),
            backup_owner: crate::secrets::random_bytes::<8>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            backup_swept: Default::default(),
            box_state,
            destination_locks: Default::default(),
            scheduled_job: Default::default(),
            upkeep_tried: Default::default(),
            upkeep_one: Default::default(),
            listings: tokio::sync::Semaphore::new(4),
        }
    }

    /// The homelab's CA (what names it can vouch for).
    pub fn ca(&self) -> &crate::tls::ca::Authority {
        &self.ca
    }

    /// App names on the owner's DNS (for the Network page and the app page).
    pub fn records(&self) -> &crate::dns::records::Records {
        &self.records
    }

    fn try_busy(&self, slug: &str) -> Option<BusyGuard> {
        self.busy.try_claim(slug)
    }

    /// The lock that orders deploy requests for one (catalog) app.
    fn start_lock(&self, slug: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.starting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(slug.to_string())
            .or_default()
            .clone()
    }

    /// Marks the app busy, or says it is (`name` is what the user calls it).
    fn claim(&self, slug: &str, name: &str) -> Result<BusyGuard, DeployError> {
        self.try_busy(slug)
            .ok_or_else(|| DeployError::AppBusy(name.to_string()))
    }

    /// Claims the app for something the owner asked for, waiting a moment if housekeeping is
    /// looking at it (it holds an app for a second at most, every 15 s): the owner should not
    /// be told "busy" because of Homelab's own background check. A real operation under way
    /// still answers "busy" after the wait.
    async fn claim_for_owner(&self, slug: &str, name: &str) -> Result<BusyGuard, DeployError> {
        let deadline = std::time::Instant::now() + CLAIM_WAIT;
        loop {
            if let Some(guard) = self.try_busy(slug) {
                return Ok(guard);
            }
            if std::time::Instant::now() >= deadline {
                return Err(DeployError::AppBusy(name.to_string()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    fn recipe(&self, slug: &str) -> Result<&Recipe, DeployError> {
        self.catalog
            .recipes
            .get(slug)
            .ok_or_else(|| DeployError::UnknownApp(slug.to_string()))
    }

    pub fn app_dir(&self, slug: &str) -> String {
        format!("{}/{slug}", self.config.apps_dir.trim_end_matches('/'))
    }

    /// The record of a deployed app.
    async fn deployed(&self, slug: &str) -> Result<AppRow, DeployError> {
        self.store
            .app(slug.to_string())
            .await?
            .ok_or_else(|| DeployError::NotDeployed(slug.to_string()))
    }

    /// The device a deployed app runs on.
    async fn app_device(&self, app: &AppRow) -> Result<DeviceRow, DeployError> {
        self.store
            .device(app.device_id)
            .await?
            .ok_or_else(|| DeployError::NotDeployed(app.name.clone()))
    }

    async fn audit(&self, action: &'static str, detail: String) {
        self.events
            .audit_by_homelab(&self.store, action, detail)
            .await;
    }
}

/// How an app is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Containers, networks and the folder go; data volumes and secrets stay for a reinstall.
    KeepData,
    /// Everything goes.
    DeleteData,
    /// Only this box's record goes (the device is gone for good).
    ForgetHere,
}

impl Removal {
    /// From the two choices the remove form and the API offer; forgetting wins.
    pub fn from_choices(forget: bool, delete_data: bool) -> Removal {
        match (forget, delete_data) {
            (true, _) => Removal::ForgetHere,
            (false, true) => Removal::DeleteData,
            (false, false) => Removal::KeepData,
        }
    }
}

/// App lifecycle actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Start,
    Stop,
    Restart,
}

impl Lifecycle {
    pub fn parse(s: &str) -> Option<Lifecycle> {
        match s {
            "start" => Some(Lifecycle::Start),
            "stop" => Some(Lifecycle::Stop),
            "restart" => Some(Lifecycle::Restart),
            _ => None,
        }
    }
    fn verb(self) -> &'static str {
        match self {
            Lifecycle::Start => "start",
            Lifecycle::Stop => "stop",
            Lifecycle::Restart => "restart",
        }
    }
    fn done(self) -> &'static str {
        match self {
            Lifecycle::Start => "started",
            Lifecycle::Stop => "stopped",
            Lifecycle::Restart => "restarted",
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages are what the user reads (and what the lab tests match): each is the text
    /// the engine gave before the errors had names.
    #[test]
    fn error_messages_keep_their_words() {
        let cases: Vec<(DeployError, &str)> = vec![
            (
                DeployError::StillUndoing {
                    app: "Vaultwarden".into(),
                    device: "pi".into(),
                },
                "The last attempt to install Vaultwarden is still being undone on pi, which is \
                 not answering. Turn it on (or remove it from Homelab), then try again.",
            ),
            (
                DeployError::AppBusy("Vaultwarden".into()),
                "Vaultwarden is busy; try again in a moment.",
            ),
            (
                DeployError::CannotRun {
                    device: "pi".into(),
                    app: "Immich".into(),
                    why: Disqualified::TooFewCores { need: 2, has: 1 },
                },
                "pi cannot run Immich: needs 2 processors, has 1.",
            ),
            (
                DeployError::NoDeviceFits {
                    app: "Immich".into(),
                    why: vec![
                        ("a".into(), Disqualified::Offline),
                        ("b".into(), Disqualified::PortInUse(80)),
                    ],
                },
                "No device can run Immich right now: a — the device is offline.; b — another \
                 program there already uses 80, the number this app answers on.",
            ),
            (
                DeployError::PortTaken {
                    port: 8080,
                    device: "pi".into(),
                    holder: Some("whoami".into()),
                    free: 8081,
                    setting: Some("Web port".into()),
                },
                "Port 8080 is used by whoami on pi — use 8081? Change “Web port” to 8081.",
            ),
            (
                DeployError::PortTaken {
                    port: 80,
                    device: "pi".into(),
                    holder: None,
                    free: 81,
                    setting: None,
                },
                "Port 80 is used by another program on pi — use 81?",
            ),
            (
                DeployError::ComposeMissing("pi".into()),
                "Docker Compose is not installed on pi. On the device run `sudo apt-get install \
                 docker-compose-plugin` (or `docker-compose`), then try again.",
            ),
            (
                DeployError::ProjectClash {
                    device: "pi".into(),
                    project: "homelab-x".into(),
                },
                "pi already runs containers of the project homelab-x that this Homelab does not \
                 know about. Remove them on the device (`docker compose -p homelab-x down`), or \
                 choose another device.",
            ),
            (
                DeployError::FolderTaken {
                    dir: "/srv/x".into(),
                    device: "pi".into(),
                },
                "The folder /srv/x already exists on pi. Move it away (or delete it) on the \
                 device, then try again.",
            ),
            (
                DeployError::FolderNotCreatable {
                    dir: "/srv/x".into(),
                    device: "pi".into(),
                    login: "lab".into(),
                },
                "Homelab could not create the folder /srv/x on pi: the device login “lab” may not \
                 write there. On the device run `sudo mkdir -p /srv/x && sudo chown lab /srv/x`, \
                 then try again.",
            ),
            (
                DeployError::PullFailed {
                    image: "a/b:1".into(),
                    device: "pi".into(),
                    detail: "timeout".into(),
                },
                "pi could not download the app. Check that it can reach the internet, then try \
                 again.",
            ),
            (
                DeployError::RemovalNeedsDevice {
                    device: "pi".into(),
                    cause: Box::new(DeployError::Device {
                        device: "pi".into(),
                        trouble: Trouble::NoAnswer,
                        detail: "Could not reach 10.0.0.5:22: No route to host (os error 113)"
                            .into(),
                    }),
                },
                "pi stopped answering: it may be off, unplugged or restarting. Check that it is \
                 on and connected to your network, then try again. Nothing was removed. Turn pi \
                 on and try again — or, if it is gone for good, choose “Forget it here only”.",
            ),
            (
                HealthFailure::NoAnswer {
                    app: "X".into(),
                    secs: 90,
                    last: "answered 502".into(),
                }
                .into(),
                "X started but did not answer within 1 min 30 s. Try again; if it happens again, \
                 switch to Advanced mode and open “What I did” for its output.",
            ),
            (
                HealthFailure::Stopped {
                    app: "X".into(),
                    service: "web".into(),
                    status: "Exited (1)".into(),
                    logs: "boom".into(),
                }
                .into(),
                "X stopped right after starting. Try again; if it stops again, switch to Advanced \
                 mode and open “What I did” for its last words.",
            ),
        ];
        for (error, words) in cases {
            assert_eq!(error.to_string(), words);
        }
    }

    /// Device trouble reads as a plain sentence; the technical cause stays in `detail()`.
    #[test]
    fn device_trouble_is_plain_and_keeps_its_cause() {
        let cause = "Could not reach 10.0.0.5:22: No route to host (os error 113)";
        for trouble in [
            Trouble::NoAnswer,
            Trouble::TooSlow,
            Trouble::LoginRefused,
            Trouble::IdentityChanged,
            Trouble::Blocked,
            Trouble::EngineRefused,
        ] {
            let e = DeployError::Device {
                device: "Server 2".into(),
                trouble,
                detail: cause.into(),
            };
            let words = e.to_string();
            assert!(words.starts_with("Server 2 "), "{words}");
            assert!(words.ends_with('.'), "{words}");
            for leak in ["10.0.0.5", ":22", "os error", "SSH", "Docker"] {
                assert!(!words.contains(leak), "{leak} in {words}");
            }
            assert_eq!(e.detail().as_deref(), Some(cause));
        }
        let start = DeployError::StartFailed {
            what: "Uptime Kuma".into(),
            device: "Server 2".into(),
            detail: String::new(),
        };
        assert_eq!(start.detail(), None);
        assert!(
            start
                .to_string()
                .starts_with("Uptime Kuma did not start on Server 2.")
        );
    }

    #[test]
    fn messages_join_as_sentences() {
        for (a, b, joined) in [
            (
                "Server 2 stopped answering",
                "Everything was undone.",
                "Server 2 stopped answering. Everything was undone.",
            ),
            (
                "It failed.",
                "Undoing the changes…",
                "It failed. Undoing the changes…",
            ),
            ("Why?", "Because.", "Why? Because."),
            ("", "Nothing was changed.", "Nothing was changed."),
            ("  Done. ", "", "Done."),
        ] {
            assert_eq!(sentences(a, b), joined);
        }
    }
}
