//! The only code that knows HTTP. Domain modules never import axum. How a request flows:
//!
//! - `routes.rs` is the route table: every route once, with its method, path and access level
//!   (`access.rs`: public, session, token, either); `guard.rs` enforces that level (and CSRF
//!   and Origin for state changes) before a handler runs.
//! - `views/` render HTML (full pages or htmx partials); `api/` decodes and encodes JSON.
//!   Neither changes state itself, and they do not import each other.
//! - `actions/` change state, for both faces alike: the domain call, the audit record (under
//!   the principal from `context.rs`) and the live event, returning typed results and errors
//!   (`error.rs` maps every error to a status, a code and a plain message).
//! - Beside them: `sse.rs` (the live-event stream), `metrics.rs`, `assets.rs`, `hosts.rs`
//!   (DNS-rebinding defence), `observe.rs` (request ids, logs, error rendering), `server.rs`
//!   (listeners and connection bounds), and answers kept per devices-board change
//!   (`per_board.rs`, `graphs.rs`).

mod access;
mod actions;
mod api;
mod assets;
mod context;
mod error;
mod graphs;
mod guard;
mod healthcheck;
mod hosts;
mod metrics;
mod observe;
mod pace;
pub mod paths;
mod per_board;
mod routes;
mod server;
mod sse;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::events::EventBus;
use crate::runtime::{Listeners, Runtime};
use crate::store::Store;

pub use access::Access;
pub use context::{ClientAddr, Scheme};
pub use healthcheck::healthcheck;
pub use routes::{RouteInfo, route_table};

/// Shared state of every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    /// Seals and opens the credentials the web saves (the DNS server's password).
    pub vault: Arc<crate::secrets::Vault>,
    pub auth: Arc<Auth>,
    pub devices: Arc<crate::devices::Devices>,
    pub catalog: Arc<crate::catalog::Catalog>,
    pub deployer: Arc<crate::deploy::Deployer>,
    pub ota: Arc<crate::ota::Ota>,
    pub router: Arc<crate::network::Router>,
    pub events: EventBus,
    /// The box's HTTPS certificate (current fingerprint, chain, renewal trouble).
    pub tls: crate::tls::TlsIdentity,
    pub tls_config: Arc<rustls::ServerConfig>,
    pub started: Instant,
    pub metrics: metrics::Metrics,
    /// Flips to true on shutdown; long-lived streams (SSE) end so graceful shutdown can finish.
    pub stopping: watch::Receiver<bool>,
    /// HTTPS port to redirect plain HTTP to, when HTTPS is on.
    pub https_port: Option<u16>,
    /// How long a session lives without requests; open event streams end when theirs expires.
    pub session_idle_timeout: std::time::Duration,
    /// Interfaces "Scan my network" looks at (None: every LAN interface).
    pub mdns_interfaces: Option<Vec<String>>,
    /// The names this box answers to (DNS-rebinding defence).
    pub hosts: hosts::Hosts,
    /// `GET /api/v1/devices`, encoded once per change of the devices board.
    pub device_list: per_board::PerBoard<axum::body::Bytes>,
    /// The device cards (dashboard and Devices page), Basic and Advanced, rendered once per
    /// change of the devices board.
    pub device_cards: [per_board::PerBoard<Arc<str>>; 2],
    /// Each device's graphs of the last day, drawn once per change of the devices board.
    pub device_graphs: graphs::GraphsCache,
    /// Stops the daemon to start again (after "Restore from a backup" staged a restore).
    pub restart: Arc<tokio::sync::Notify>,
    /// The configuration file uploaded for import, waiting for its passphrase and the yes.
    pub pending_import: actions::history::PendingImport,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(rt: &Runtime, stopping: watch::Receiver<bool>) -> AppState {
        AppState(Arc::new(Inner {
            store: rt.store.clone(),
            vault: rt.vault.clone(),
            auth: rt.auth.clone(),
            devices: rt.devices.clone(),
            catalog: rt.catalog.clone(),
            deployer: rt.deployer.clone(),
            ota: rt.ota.clone(),
            router: rt.router.clone(),
            events: rt.events.clone(),
            tls: rt.tls.clone(),
            tls_config: rt.tls.server_config(),
            started: Instant::now(),
            metrics: metrics::Metrics::default(),
            stopping,
            https_port: rt.config.https_redirect_port,
            session_idle_timeout: rt.config.session_idle_timeout,
            mdns_interfaces: rt.config.mdns_interfaces.clone(),
            hosts: hosts::Hosts::new(),
            device_list: Default::default(),
            device_cards: Default::default(),
            device_graphs: Default::default(),
            restart: rt.restart.clone(),
            pending_import: Default::default(),
        }))
    }
}

/// The full application router for one scheme.
pub fn router(state: AppState, scheme: Scheme) -> Router {
    routes::build(state, scheme)
}

/// Serves HTTP (and HTTPS when a listener is given) until `stop` flips; both listeners share
/// one connection table, so the bounds hold whatever mix of schemes a flood uses.
pub async fn serve(
    state: AppState,
    listeners: Listeners,
    limits: crate::config::ConnectionLimits,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    if let Err(e) = state.hosts.load(&state.store).await {
        // The built-in names and every address still work; say so and carry on.
        tracing::warn!(error = %e, "could not read the extra names for this box");
    }
    let table = server::Connections::new(limits);
    let tls = state.tls_config.clone();
    let (http_app, https) = match listeners.https {
        Some(l) => (
            routes::build_redirect(state.clone()),
            Some((l, routes::build(state.clone(), Scheme::Https))),
        ),
        None => (routes::build(state.clone(), Scheme::Http), None),
    };
    let http = server::serve(
        listeners.http,
        server::Transport::Plain,
        http_app,
        table.clone(),
        stop.clone(),
    );
    match https {
        None => http.await,
        Some((listener, app)) => {
            let transport = server::Transport::Tls(tokio_rustls::TlsAcceptor::from(tls));
            let https = server::serve(listener, transport, app, table, stop);
            tokio::join!(http, https);
        }
    }
    Ok(())
}

/// An address a person can paste into a browser (a wildcard bind becomes 127.0.0.1).
pub fn display_addr(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port()).to_string()
}
