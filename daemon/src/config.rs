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
    pub deploy: crate::deploy::DeployConfig,
    /// RAUC and the restart request, for appliance updates.
    pub ota: crate::ota::OtaConfig,
}

impl Config {
    /// Development defaults for a data directory; callers override what they need.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            ota: crate::ota::OtaConfig::default(),
            data_dir: data_dir.into(),
            claim_window: Duration::from_secs(30 * 60),
            session_idle_timeout: Duration::from_secs(24 * 60 * 60),
            https_redirect_port: None,
            poll_interval: Duration::from_secs(30),
            // Off unless asked for: tests and several dev daemons must not fight over the name.
            mdns: false,
            mdns_interfaces: None,
            deploy: crate::deploy::DeployConfig::default(),
        }
    }
}
