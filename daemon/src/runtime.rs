//! What a running daemon holds, shared by `app` (which builds it) and `web` (which serves it),
//! so neither imports the other's internals.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::Auth;
use crate::config::Config;
use crate::devices::Devices;
use crate::events::EventBus;
use crate::secrets::Vault;
use crate::store::Store;
use crate::tls::ca::Authority;
use crate::tls::{TlsError, TlsIdentity};

/// The sockets the daemon serves on, bound by the caller (port 0 in tests).
pub struct Listeners {
    pub http: TcpListener,
    /// HTTPS; when present, plain HTTP only redirects to it (and answers `/healthz`).
    pub https: Option<TcpListener>,
}

/// Everything a running daemon holds.
pub struct Runtime {
    pub config: Config,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub auth: Arc<Auth>,
    pub events: EventBus,
    /// The box's own HTTPS certificate (hot-swapped on renewal).
    pub tls: TlsIdentity,
    /// The homelab's certificate authority (signs the box's and the apps' certificates).
    pub ca: Authority,
    pub devices: Arc<Devices>,
    pub catalog: Arc<crate::catalog::Catalog>,
    pub deployer: Arc<crate::deploy::Deployer>,
    pub ota: Arc<crate::ota::Ota>,
    /// The owner's router (OPNsense), when one is connected: its cache and traffic graph.
    pub router: Arc<crate::network::Router>,
    /// Notified to stop and start again (a restore staged for the next start).
    pub restart: Arc<tokio::sync::Notify>,
}

impl Runtime {
    /// Issues the box a new HTTPS certificate as if the time were `now`, and serves it to new
    /// connections at once; returns its fingerprint. The hourly loop renews by itself; this is
    /// for tests and a future "renew now" button.
    pub async fn renew_box_certificate(
        &self,
        now: time::OffsetDateTime,
    ) -> Result<String, TlsError> {
        self.tls.renew(now).await
    }
}
