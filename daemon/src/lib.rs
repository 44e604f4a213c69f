//! homelabd: the Homelab appliance daemon, as a library the binary and the tests share.
//!
//! Layout (one folder per capability; only `web/` knows HTTP, only `store/` knows SQL, only
//! `docker/` calls the Docker API, and outbound HTTP to other services goes through
//! `http_client`; the deploy health check's one-shot GET to an app, `deploy::probe`, is the
//! one exception left):
//!
//! | module      | owns |
//! |-------------|------|
//! | `config`    | the settings a running daemon needs (flags and env vars are parsed in `main.rs`) |
//! | `store/`    | the SQLite database: opening, migrations, every query, whole-database copies |
//! | `secrets/`  | the vault: master key, sealing credentials (AES-256-GCM), passphrase exports |
//! | `auth/`     | first-run claim, passwords and the bound on hashing them, sessions, CSRF tokens, sign-in throttling, known browsers, API tokens |
//! | `catalog/`  | app recipes (Compose + manifest + icon): loading and validation |
//! | `placement/`| scoring devices for an app, with a reason for each and typed disqualifications |
//! | `pool/`    | shared databases: one PostgreSQL and one MariaDB per device, a private database and login per app, the SQL run in them, the RAM saved |
//! | `backup/`   | backups with restic: destinations and their checks, the restic container run on a device (secrets on stdin), its JSON output and errors in plain words (the backup and restore jobs are the deploy engine's `backing.rs`) |
//! | `desired/`  | the desired state's history in words, what "Revert to here" does, the configuration file (export/import, secrets sealed with a passphrase); the state itself is `store`'s |
//! | `deploy/`   | the deploy engine, one file per phase: plan, preflight, job, naming (name + HTTPS), health, journal (undo), upkeep, manage; its remote scripts are `.sh` files beside it |
//! | `proxy/`    | Homelab's proxy on each app device (Caddy): its Compose file and starting configuration, and its admin API reached over SSH |
//! | `dns/`      | app names: the provider the owner chose (AdGuard Home, OPNsense, or mDNS `.local` names announced by the box), records, checking a name from the box |
//! | `network/`  | the OPNsense router, read-only (and its Unbound host overrides for app names) |
//! | `states`    | the states of a deployment and of a deployed app, as stored and as shown |
//! | `ssh/`      | SSH to devices: host-key pinning, escaped remote commands, socket streams |
//! | `docker/`   | Docker on a device through bollard over its SSH connection: engine reads, project calls |
//! | `devices/`  | adoption, "Install Docker for me", the per-device connection pool, health polling, facts, the in-memory board, history |
//! | `discovery/`| mDNS: announcing homelab.local, scanning the LAN for devices |
//! | `network/`  | the owner's router (OPNsense): pinned API client, read-only overview, live traffic, Homelab's host overrides |
//! | `events/`   | the in-process event bus that feeds live pages (SSE) |
//! | `ota/`      | appliance updates: signed RAUC bundles, the update channel, the window, data snapshot, fallback restore |
//! | `tls/`      | the homelab's certificate authority (`ca.rs`) and the box's own HTTPS certificate from it, renewed and hot-swapped (the HTTPS listener that serves it is in `web/server.rs`) |
//! | `http_client` | outbound HTTP (reqwest on rustls): trusted CAs, redirects, timeouts, body bounds, ranges |
//! | `runtime`   | what a running daemon holds (`Runtime`) and the sockets it serves on (`Listeners`) |
//! | `app`       | starting and stopping the whole daemon: opening the runtime, background loops, graceful shutdown |
//! | `web/`      | HTTP: the route table and guard, views (HTML), API (JSON), actions (each state change with its audit record and event, for both faces), errors, assets, metrics |
//! | `telemetry` | logging setup (text or JSON), with control characters escaped |
//! | `limits`    | upper bounds on stored and logged input, and the helpers that apply them |
//! | `busy`      | one operation at a time per app or device, released when dropped |
//! | `heap`      | the allocator wrapper that counts heap in use, and handing free pages back |
//! | `shutdown`, `units` | leaves: the shutdown flag every loop waits on; sizes and addresses in words |
//!
//! Dependencies point one way: `app` builds everything; `web` sits on the domain modules;
//! the domain modules (`deploy`, `devices`, `ota`, `placement`, `auth`) sit on `store`,
//! `ssh`, `docker`, `secrets` and the leaves (`config`, `runtime`, `states`, `shutdown`,
//! `units`, `limits`, `http_client`). No module imports one that imports it back: a helper
//! two layers need goes down into a leaf rather than up into a layer.
//!
//! What to keep, because it is what makes this code safe to change:
//! - Remote commands are built argument by argument (`ssh::RemoteCommand`), escaped by
//!   construction; fixed scripts are `.sh` files checked by shellcheck (`tests/shellcheck.sh`),
//!   their inputs passed as arguments, secrets over stdin.
//! - The route table (`web/routes.rs`) lists every route once with its access level
//!   (`web/access.rs`); the guard enforces it before any handler runs, so a route cannot be
//!   added without saying who may call it.
//! - Tests run the real server ([`run`] on port 0) against the real lab, and wait through one
//!   deadline helper (`tests/common::eventually`), never a bare sleep.
//! - Live pages are never behind: every event is numbered (`events::EventBus`), pages and
//!   htmx answers say which number they were rendered at, and each event stream opens with
//!   where every topic stands, so a part that missed an event fetches itself again.
//! - Basic mode speaks the owner's words: errors a device causes read as one plain sentence
//!   (`deploy::Trouble`, `ssh::SshError::plain`), the technical cause goes to "What I did"
//!   and the log, and `tests/plain_words.rs` crawls every Basic page for technical words.
//! - The leak scan runs last in `tests/run-all`, over everything the suite wrote.
//!
//! [`run`] starts the whole daemon on listeners the caller bound, so tests run the real server
//! on port 0 and stop it through the `shutdown` future.

pub mod auth;
pub mod backup;
pub mod busy;
pub mod catalog;
pub mod config;
pub mod deploy;
pub mod desired;
pub mod devices;
pub mod discovery;
pub mod dns;
pub mod docker;
pub mod events;
pub mod heap;
pub mod http_client;
pub mod limits;
pub mod network;
pub mod ota;
pub mod placement;
pub mod pool;
pub mod proxy;
pub mod runtime;
pub mod secrets;
pub mod shutdown;
pub mod ssh;
pub mod states;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod units;
pub mod web;

mod app;

pub use app::{
    RunError, Stopped, console_banner, open_runtime, restart_wanted, run, run_once, run_with,
    setup_code,
};
pub use config::{Config, ConnectionLimits};
pub use runtime::{Listeners, Runtime};

/// The version string shown in the UI, the API and `homelabd version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
