//! Wiring: opens the store, vault, certificate and auth service, then serves HTTP (and HTTPS)
//! until the shutdown future resolves, and closes the database cleanly.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::{Auth, AuthError};
use crate::config::Config;
use crate::devices::Devices;
use crate::events::EventBus;
use crate::runtime::{Listeners, Runtime};
use crate::secrets::{Vault, VaultError};
use crate::shutdown::stopped;
use crate::store::{Store, StoreError};
use crate::tls::{self, TlsError};
use crate::web;

/// Why the daemon could not start or stopped with an error. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often expired sessions are swept from the database.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60 * 60);

/// How often the box's certificate is checked for renewal and address changes.
const CERTIFICATE_CHECK_EVERY: Duration = Duration::from_secs(60 * 60);

/// Open files the daemon wants: the web connections' cap, plus room for device SSH
/// connections (one or two per device, a hundred devices), the database, mDNS and logs. The
/// appliance unit sets `LimitNOFILE` to this.
const WANTED_OPEN_FILES: u64 = 4096;

/// Raises the soft open-files limit towards [`WANTED_OPEN_FILES`] (systemd's and most shells'
/// soft default is 1,024, below what the connection caps need). Where the hard limit or a
/// seccomp filter forbids it, says what the caps then mean and carries on.
fn raise_open_files_limit(connections: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let wanted = WANTED_OPEN_FILES.min(hard);
    let now = if soft < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        wanted
    } else {
        soft
    };
    // Room for the connections plus everything else the daemon keeps open.
    if now < connections as u64 + 512 {
        tracing::warn!(
            open_files_limit = now,
            connection_limit = connections,
            "the open-files limit is low for the connection limit; raise LimitNOFILE (or ulimit -n)              to {WANTED_OPEN_FILES}"
        );
    }
}

/// Opens the data directory: database (migrated), vault key, certificate.
pub async fn open_runtime(config: Config) -> Result<Runtime, RunError> {
    let cfg = config.clone();
    let (store, vault, settled) = tokio::task::spawn_blocking(move || -> Result<_, RunError> {
        prepare_data_dir(&cfg.data_dir)?;
        // The vault first: a world-readable key must stop the start before anything else.
        let vault_check = Vault::open_or_create(&cfg.data_dir);
        // Before the database opens: an update that fell back has its snapshot restored.
        let settled = crate::ota::snapshot::settle(
            &cfg.data_dir,
            &crate::ota::system_version(),
            &crate::ota::snapshot::current_boot_id(),
        )
        .map_err(|source| RunError::DataDir {
            path: cfg.data_dir.display().to_string(),
            source,
        })?;
        // Opened again after a restore: the vault key may have been put back too.
        let vault = match settled {
            crate::ota::snapshot::Settled::RolledBack { .. } => {
                Vault::open_or_create(&cfg.data_dir)?
            }
            _ => vault_check?,
        };
        let store = Store::open(&cfg.data_dir.join(crate::store::DB_FILE))?;
        Ok((store, vault, settled))
    })
    .await
    .map_err(|e| RunError::Serve(std::io::Error::other(e)))??;
    let vault = Arc::new(vault);
    // The homelab's authority first (made once, kept in the database), then the box's own
    // certificate from it. The suffix only matters when the root is first made.
    let suffix = store
        .setting(tls::ca::SUFFIX_SETTING)
        .await?
        .unwrap_or_else(|| tls::ca::DEFAULT_SUFFIX.to_string());
    let ca = tls::ca::Authority::load_or_create(&store, &vault, &suffix).await?;
    let tls = tls::TlsIdentity::load_or_create(store.clone(), vault.clone(), ca.clone()).await?;
    let auth = Arc::new(Auth::new(
        store.clone(),
        vault.clone(),
        config.claim_window,
        config.session_idle_timeout,
    ));
    let events = EventBus::default();
    let devices = Arc::new(Devices::new(store.clone(), vault.clone(), events.clone()));
    // User recipes live beside the database; built-in ones are in the binary.
    let catalog = Arc::new(crate::catalog::Catalog::load(Some(
        &config.data_dir.join("recipes"),
    )));
    // App names over mDNS share one daemon with homelab.local's announcement (`run_with`);
    // without mDNS they are never announced, and an app named that way says so on its page.
    let names = if config.mdns {
        crate::dns::mdns::Names::start(config.mdns_interfaces.clone()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "not announcing app names over mDNS");
            crate::dns::mdns::Names::off()
        })
    } else {
        crate::dns::mdns::Names::off()
    };
    let records = crate::dns::records::Records::new(store.clone(), vault.clone(), names);
    let deployer = Arc::new(crate::deploy::Deployer::new(
        store.clone(),
        vault.clone(),
        devices.clone(),
        catalog.clone(),
        events.clone(),
        config.deploy.clone(),
        records,
        ca.clone(),
        crate::deploy::BoxState::new(config.data_dir.clone(), config.restic.clone()),
    ));
    let ota = Arc::new(crate::ota::Ota::new(
        &config.data_dir,
        config.ota.clone(),
        store.clone(),
        events.clone(),
    ));
    match settled {
        crate::ota::snapshot::Settled::RolledBack { to } => {
            ota.audit(format!(
                "The update to {to} did not start properly; the box went back to {} and restored the data saved before it",
                ota.version()
            ))
            .await
        }
        crate::ota::snapshot::Settled::Updated { to } => {
            ota.audit(format!("Now running Homelab {to}")).await
        }
        crate::ota::snapshot::Settled::Nothing => {}
    }
    let router = Arc::new(crate::network::Router::new(store.clone(), vault.clone()));
    Ok(Runtime {
        restart: Default::default(),
        router,
        ota,
        config,
        store,
        vault,
        auth,
        events,
        tls,
        ca,
        devices,
        catalog,
        deployer,
    })
}

fn prepare_data_dir(dir: &Path) -> Result<(), RunError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| RunError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    // The database holds sealed secrets and session hashes: nobody else needs to list it.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

/// Why a daemon stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Asked to (SIGTERM, Ctrl-C, the test's stop).
    Shutdown,
    /// To start again at once: a restore from the box's own backup waits to be put in place.
    Restart,
}

/// A staged restore waits for the next start (see `backup::bundle`).
pub fn restart_wanted(data_dir: &Path) -> bool {
    crate::backup::bundle::staged(data_dir)
}

/// Runs the daemon until `shutdown` resolves; then lets in-flight requests finish and closes
/// the database.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    run_once(config, listeners, shutdown).await.map(|_| ())
}

/// As [`run`], saying why it stopped: the binary starts again after [`Stopped::Restart`].
/// The daemon's own start does here what no other use of the data directory may do (the
/// console banner and `setup-code` open it too, every few seconds on the appliance): clear
/// what runs that died left behind, and put a staged restore in place.
pub async fn run_once(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Stopped, RunError> {
    raise_open_files_limit(config.connections.total);
    let data = config.data_dir.clone();
    let restored = tokio::task::spawn_blocking(move || {
        crate::backup::local::sweep(&data);
        crate::backup::bundle::apply_staged(&data).map_err(|source| RunError::DataDir {
            path: data.display().to_string(),
            source,
        })?;
        Ok::<_, RunError>(crate::backup::bundle::restored(&data))
    })
    .await
    .map_err(|e| RunError::Serve(std::io::Error::other(e)))??;
    let rt = open_runtime(config).await?;
    // The history starts from how things are now, so the first change has a "before".
    if let Err(e) = rt
        .store
        .note_revision("system", "How things were when Homelab started")
        .await
    {
        tracing::warn!(error = %e, "no revision of the state at start");
    }
    // The first start after a restore: the dashboard says so, old sessions end.
    if let Some(manifest) = restored {
        match rt.deployer.note_restored(&manifest).await {
            Ok(()) => crate::backup::bundle::clear_restored(&rt.config.data_dir),
            Err(e) => {
                tracing::warn!(error = %e, "could not note the restore; trying at the next start")
            }
        }
    }
    run_with_outcome(rt, listeners, shutdown).await
}

/// Runs an opened runtime until `shutdown` resolves (tests keep a clone of its parts, e.g.
/// `rt.tls`, to act on the running daemon).
pub async fn run_with(
    rt: Runtime,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    run_with_outcome(rt, listeners, shutdown).await.map(|_| ())
}

async fn run_with_outcome(
    rt: Runtime,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Stopped, RunError> {
    let code = rt.auth.init().await?;
    let http_addr = listeners.http.local_addr().map_err(RunError::Serve)?;
    let https_addr = match &listeners.https {
        Some(l) => Some(l.local_addr().map_err(RunError::Serve)?),
        None => None,
    };
    let url = match https_addr {
        Some(a) => format!("https://{}", web::display_addr(a)),
        None => format!("http://{}", web::display_addr(http_addr)),
    };
    tracing::info!(version = crate::VERSION, %url, "homelabd is running — open {url} in a browser");
    tracing::info!(fingerprint = %rt.tls.fingerprint(), "HTTPS certificate fingerprint (SHA-256)");
    tracing::info!(fingerprint = %rt.ca.fingerprint(), "this homelab's root certificate fingerprint (SHA-256)");
    if let Some(code) = code {
        let status = rt.auth.claim_status().await?;
        tracing::info!(
            setup_code = code.expose_str().unwrap_or_default(),
            open_window_secs = status.window_left_secs,
            "this homelab is not set up yet: open {url} to create the admin account; after the open \
             window the setup code is needed"
        );
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let restart = rt.restart.clone();
    let (why_tx, why_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        // A restart (after a restore was staged) stops like a shutdown; the binary then
        // starts again. A shutdown that comes first wins: the restore waits for the next start.
        let why = tokio::select! {
            _ = shutdown => Stopped::Shutdown,
            _ = restart.notified() => {
                tracing::info!("restarting to put the restored state in place");
                Stopped::Restart
            }
        };
        let _ = why_tx.send(why);
        let _ = stop_tx.send(true);
    });

    let store = rt.store.clone();
    let idle = rt.config.session_idle_timeout.as_secs() as i64;
    let mut hk_stop = stop_rx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = store.purge_idle_sessions(idle).await {
                        tracing::warn!(error = %e, "could not sweep expired sessions");
                    }
                }
                _ = stopped(&mut hk_stop) => break,
            }
        }
    });

    spawn_certificate_renewal(rt.tls.clone(), stop_rx.clone());
    rt.devices
        .clone()
        .spawn_poller(rt.config.poll_interval, stop_rx.clone());
    crate::heap::spawn_give_back(stop_rx.clone());
    // The update channel and window (both idle until the owner sets them).
    let ota = rt.ota.clone();
    let mut ota_stop = stop_rx.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = ota.run_window() => {}
            _ = stopped(&mut ota_stop) => {}
        }
    });
    // App names announced over mDNS live in this process only: the stored ones go out again.
    rt.deployer.records().announce_stored().await;
    // Deploys left mid-way by a previous run are rolled back now; unfinished rollbacks retry.
    rt.deployer.clone().spawn_housekeeping(stop_rx.clone());
    rt.deployer.clone().spawn_backup_schedule(stop_rx.clone());
    // Discovery is a convenience: without it the box still works by IP (say so and carry on).
    let _announcer = if rt.config.mdns {
        let announced = match rt.deployer.records().mdns().daemon() {
            Some(daemon) => crate::discovery::Announcer::on(
                daemon,
                http_addr.port(),
                rt.config.mdns_interfaces.as_deref(),
            ),
            None => crate::discovery::Announcer::start(
                http_addr.port(),
                rt.config.mdns_interfaces.as_deref(),
            ),
        };
        match announced {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, "not announcing homelab.local; open the box by its IP address");
                None
            }
        }
    } else {
        None
    };
    let state = web::AppState::new(&rt, stop_rx.clone());
    let servers = web::serve(
        state,
        listeners,
        rt.config.connections.clone(),
        stop_rx.clone(),
    );
    let mut grace_rx = stop_rx;
    let result = tokio::select! {
        r = servers => r,
        _ = async {
            stopped(&mut grace_rx).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway");
            Ok(())
        }
    };
    rt.store.close().await?;
    tracing::info!("homelabd stopped; database closed cleanly");
    result.map_err(RunError::Serve)?;
    Ok(why_rx.await.unwrap_or(Stopped::Shutdown))
}

/// Checks the box's certificate every hour: renewed at two thirds of its life, or when the
/// box's addresses changed. A failure keeps the old one serving (and shows on the dashboard).
fn spawn_certificate_renewal(tls: tls::TlsIdentity, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CERTIFICATE_CHECK_EVERY);
        // The first tick is immediate and the start has just checked.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Bounded: one key generation and signature, a few database writes.
                    let _ = tls.check(time::OffsetDateTime::now_utc()).await;
                }
                _ = stopped(&mut stop) => break,
            }
        }
    });
}

/// The current setup code of a data directory, for `homelabd setup-code`; `None` once claimed.
pub async fn setup_code(config: Config) -> Result<Option<String>, RunError> {
    let rt = open_runtime(config).await?;
    let code = rt.auth.init().await?;
    let out = code.and_then(|c| c.expose_str().map(str::to_string));
    rt.store.close().await?;
    Ok(out)
}

/// The text the appliance shows on its screen and serial console: where to browse, the
/// certificate fingerprint to compare, and (until claimed) the setup code.
pub async fn console_banner(config: Config) -> Result<String, RunError> {
    let addrs = crate::discovery::lan_interfaces(config.mdns_interfaces.as_deref());
    let rt = open_runtime(config).await?;
    let code = rt.auth.init().await?;
    let mut out = String::from("\n  Homelab is running.\n\n  Open  http://homelab.local\n");
    for (_, ip) in addrs.iter().filter(|(_, ip)| ip.is_ipv4()) {
        out.push_str(&format!("    or  http://{ip}   (secure: https://{ip})\n"));
    }
    if addrs.iter().all(|(_, ip)| !ip.is_ipv4()) {
        out.push_str("  (no network address yet: is the network cable plugged in?)\n");
    }
    out.push_str(&format!(
        "\n  Certificate fingerprint (SHA-256):\n  {}\n",
        rt.tls.fingerprint()
    ));
    out.push_str(&format!(
        "\n  Homelab root fingerprint (SHA-256), to compare when you trust this homelab:\n  {}\n",
        rt.ca.fingerprint()
    ));
    match code.as_ref().and_then(|c| c.expose_str()) {
        Some(c) => out.push_str(&format!(
            "\n  Setup code: {c}\n  (asked for when you create the admin account later than 30 minutes after first start)\n"
        )),
        None => out.push_str("\n  This homelab is set up; sign in with the admin account.\n"),
    }
    rt.store.close().await?;
    Ok(out)
}
