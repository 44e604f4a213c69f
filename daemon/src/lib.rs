//! homelabd: the Homelab appliance daemon, as a library the binary and the tests share.
//!
//! Layout (one folder per capability; only `web/` knows HTTP, only `store/` knows SQL):
//!
//! | module      | owns |
//! |-------------|------|
//! | `config`    | the settings a running daemon needs (flags and env vars are parsed in `main.rs`) |
//! | `store/`    | the SQLite database: opening, migrations, every query |
//! | `secrets/`  | the vault: master key, sealing credentials (AES-256-GCM), passphrase exports |
//! | `auth/`     | first-run claim, passwords and the bound on hashing them, sessions, CSRF tokens, sign-in throttling, known browsers, API tokens |
//! | `catalog/`  | app recipes (Compose + manifest + icon): loading and validation |
//! | `placement/`| scoring devices for an app, with a reason for each |
//! | `deploy/`   | the deploy engine: journal with undo, pre-flight, files, pulls, Compose, health, lifecycle |
//! | `ssh/`      | SSH to devices: host-key pinning, escaped remote commands, socket streams |
//! | `docker/`   | Docker on a device through bollard over its SSH connection |
//! | `devices/`  | adoption, "Install Docker for me", the per-device connection pool, health polling and history |
//! | `discovery/`| mDNS: announcing homelab.local, scanning the LAN for devices |
//! | `events/`   | the in-process event bus that feeds live pages (SSE) |
//! | `ota/`      | appliance updates: signed RAUC bundles, data snapshot, fallback restore |
//! | `tls/`      | the self-signed certificate and the TLS listener |
//! | `telemetry` | logging setup (text or JSON), with control characters escaped |
//! | `limits`    | upper bounds on stored and logged input, and the helpers that apply them |
//! | `busy`      | one operation at a time per app or device, released when dropped |
//! | `heap`      | the allocator wrapper that counts heap in use (for /metrics and the memory tests) |
//! | `web/`      | HTTP: the route table and guard, views (HTML), API (JSON), actions (state changes with audit and events), errors, assets, metrics |
//!
//! [`run`] starts the whole daemon on listeners the caller bound, so tests run the real server
//! on port 0 and stop it through the `shutdown` future.

pub mod auth;
pub mod busy;
pub mod catalog;
pub mod config;
pub mod deploy;
pub mod devices;
pub mod discovery;
pub mod docker;
pub mod events;
pub mod heap;
pub mod limits;
pub mod ota;
pub mod placement;
pub mod runtime;
pub mod secrets;
pub mod shutdown;
pub mod ssh;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod units;
pub mod web;

mod app;

pub use app::{RunError, console_banner, open_runtime, run, setup_code};
pub use config::{Config, ConnectionLimits};
pub use runtime::{Listeners, Runtime};

/// The version string shown in the UI, the API and `homelabd version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
