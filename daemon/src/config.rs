//! The settings a running daemon needs. `main.rs` fills them from flags and env vars; tests
//! build them directly.

use std::path::PathBuf;
use std::time::Duration;

/// Everything `run` needs to know besides the sockets it serves on.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database, the vault key and the certificate live (`/data` on the appliance).
    pub data_dir: PathBuf,
    /// How long after the very first start anyone on the LAN may claim the box without the
    /// setup code. 30 minutes covers flash-plug-browse; after that a stranger on the LAN must
    /// not be able to take over an unclaimed box.
    pub claim_window: Duration,
    /// A signed-in browser session ends after this long without a request.
    pub session_idle_timeout: Duration,
    /// Announce `homelab.local` over mDNS.
    pub mdns: bool,
    /// Interfaces to announce and scan on; None: every non-virtual interface.
    pub mdns_interfaces: Option<Vec<String>>,
    /// How often every device is polled for health and resources.
    pub poll_interval: Duration,
    /// Port that HTTP requests are redirected to when HTTPS is on (None: HTTPS off).
    pub https_redirect_port: Option<u16>,
    /// Where apps go on devices, and how long they get to become healthy.
    pub deploy: DeployConfig,
    /// RAUC and the restart request, for appliance updates.
    pub ota: OtaConfig,
    /// What one client, and all of them together, may hold of the web listeners.
    pub connections: ConnectionLimits,
    /// The restic program the box runs for its own backup and for a restore onto it.
    pub restic: PathBuf,
}

/// Bounds on the web listeners' connections (HTTP and HTTPS share them), so one laptop on
/// the LAN cannot take the UI down by opening sockets and sitting on them.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections in all. Each idle one costs a file descriptor and some KB of buffers
    /// (tens of KB with TLS): 512 is a few MB at most, and far above what the owner's
    /// browsers need (6 per browser and name). The appliance unit's LimitNOFILE leaves room.
    pub total: usize,
    /// Open connections per client (an IPv4 address or an IPv6 /64). A browser opens up to 6
    /// per name and scheme, more with several tabs of live pages; 64 leaves room for a
    /// household behind one NAT address while keeping any one laptop to an eighth of the total.
    pub per_client: usize,
    /// A request's headers must be complete this long after hyper starts waiting for them
    /// (also how long a kept-alive connection may sit idle). Browsers send them at once.
    pub header_read: Duration,
    /// A TLS handshake must finish within this; a LAN handshake takes milliseconds.
    pub handshake: Duration,
    /// A request body that sends nothing for this long, or a client that reads none of its
    /// response for this long, loses the connection (a busy connection is never closed for
    /// room, so without this a trickle could hold one forever).
    pub stall: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            total: 512,
            per_client: 64,
            header_read: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            stall: Duration::from_secs(20),
        }
    }
}

impl Config {
    /// Development defaults for a data directory; callers override what they need.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            ota: OtaConfig::default(),
            data_dir: data_dir.into(),
            claim_window: Duration::from_secs(30 * 60),
            session_idle_timeout: Duration::from_secs(24 * 60 * 60),
            https_redirect_port: None,
            poll_interval: Duration::from_secs(30),
            // Off unless asked for: tests and several dev daemons must not fight over the name.
            mdns: false,
            mdns_interfaces: None,
            deploy: DeployConfig::default(),
            connections: ConnectionLimits::default(),
            restic: PathBuf::from("restic"),
        }
    }
}

/// Where app folders go on a device unless configured otherwise.
pub const DEFAULT_APPS_DIR: &str = "/opt/homelab/apps";
/// How long an app gets to answer its health check after starting.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a deploy waits for a public authority's certificate (Let's Encrypt typically
/// issues within 5–15 s of the name being reachable; past this the app is ready by address and
/// the proxy keeps trying on its own).
pub const DEFAULT_CERTIFICATE_WAIT: Duration = Duration::from_secs(45);

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Folder on each device that holds one folder per app.
    pub apps_dir: String,
    pub health_timeout: Duration,
    /// How long a deploy waits for a public domain's certificate (`DEFAULT_CERTIFICATE_WAIT`).
    pub certificate_wait: Duration,
    /// Scheduled backups and the weekly upkeep of destinations start this long after the
    /// daemon (devices reconnect first); None turns them off (tests that must not meet a
    /// backup at 02:00).
    pub backup_schedule_after: Option<Duration>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            apps_dir: DEFAULT_APPS_DIR.into(),
            health_timeout: DEFAULT_HEALTH_TIMEOUT,
            certificate_wait: DEFAULT_CERTIFICATE_WAIT,
            backup_schedule_after: Some(Duration::from_secs(120)),
        }
    }
}

/// Appliance updates: RAUC, the restart request and the update channel's CAs.
#[derive(Debug, Clone)]
pub struct OtaConfig {
    /// The RAUC command line tool.
    pub rauc: PathBuf,
    /// Writing this file asks the system to restart (homelab-reboot.path watches it).
    pub reboot_request: PathBuf,
    /// Certificate authorities trusted for https update channels.
    pub ca_certs: PathBuf,
    /// Install from the update channel by streaming (RAUC reads the bundle over HTTP ranges and,
    /// with adaptive bundles, fetches only the blocks the box does not have) instead of
    /// downloading the whole file first. Only where RAUC was built with streaming (the Buildroot
    /// images); Debian's RAUC 1.8 was not.
    pub stream: bool,
}

impl Default for OtaConfig {
    fn default() -> Self {
        OtaConfig {
            rauc: PathBuf::from("rauc"),
            reboot_request: PathBuf::from("/run/homelabd/reboot"),
            ca_certs: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            stream: false,
        }
    }
}
