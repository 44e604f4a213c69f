//! Devices in the UI, one file per page: the list (`list`), adding one (`add`: the form, "Scan
//! my network", "Test connection", "Install Docker for me"), a device's own page (`page`) and
//! the pool summary on the dashboard (`pool`). Here: what they share (a device prepared for
//! display, the cards, the login fields).

mod add;
mod list;
mod page;
mod pool;

pub use add::{add, install_docker, new_form, scan, test};
pub use list::{cards, list};
pub use page::{
    change_login, edit, refresh, remove, shared, shared_remove, shared_restart, show, trust_key,
};
pub use pool::{pool, pool_html};

use std::sync::Arc;

use askama::Template;
use serde::Deserialize;

use super::{Section, format_duration};
use crate::devices::Credential;
use crate::devices::board::{Board, Entry};
use crate::secrets::Secret;
use crate::store::{UiMode, now_unix};
use crate::units::human_bytes;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// A device prepared for display.
pub struct DeviceView {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub docker_socket: String,
    pub state: &'static str,
    pub state_label: &'static str,
    pub state_icon: &'static str,
    pub reason: String,
    pub has_facts: bool,
    pub mem_pct: u64,
    pub mem_text: String,
    pub disk_pct: u64,
    pub disk_text: String,
    pub disk_path: String,
    pub cores: u32,
    pub load_text: String,
    /// How busy the processor was over the last minute, for Basic mode (load per core).
    pub busy_pct: u64,
    pub apps_text: String,
    pub os: String,
    pub hostname: String,
    pub kernel: String,
    pub arch: String,
    pub cpu_model: String,
    pub docker_text: String,
    pub uptime: String,
    pub own_key: bool,
}

pub(super) fn pct(used: u64, total: u64) -> u64 {
    used.saturating_mul(100)
        .checked_div(total)
        .unwrap_or(0)
        .min(100)
}

impl DeviceView {
    pub fn new(entry: &Entry) -> DeviceView {
        let (d, status, facts) = (&entry.device, entry.status.as_ref(), entry.facts.as_ref());
        let state = status.map(|s| s.state.as_str()).unwrap_or("unknown");
        let (state, state_label, state_icon) = match state {
            "online" => ("online", "Online", "✓"),
            "degraded" => ("degraded", "Needs attention", "!"),
            "offline" => ("offline", "Offline", "✕"),
            "blocked" => ("blocked", "Blocked", "⛔"),
            _ => ("unknown", "Checking", "…"),
        };
        let mut reason = status
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| "Waiting for the first check.".into());
        if state == "offline"
            && let Some(seen) = status.and_then(|s| s.last_seen_at)
        {
            reason = format!(
                "{reason} Last seen {} ago.",
                format_duration((now_unix() - seen).max(0) as u64)
            );
        }
        let f = facts.cloned().unwrap_or_default();
        let mem_used = f.mem_total.saturating_sub(f.mem_available);
        let disk_used = f.disk_total.saturating_sub(f.disk_free);
        let (running, stopped) = f
            .docker
            .as_ref()
            .map(|d| (d.running, d.stopped))
            .unwrap_or((0, 0));
        DeviceView {
            id: d.id,
            name: d.name.clone(),
            address: if d.port == 22 {
                d.host.clone()
            } else {
                crate::units::host_port(&d.host, d.port)
            },
            host: d.host.clone(),
            port: d.port,
            username: d.username.clone(),
            docker_socket: d.docker_socket.clone(),
            state,
            state_label,
            state_icon,
            reason,
            has_facts: facts.is_some(),
            mem_pct: pct(mem_used, f.mem_total),
            mem_text: format!(
                "{} of {} used",
                human_bytes(mem_used),
                human_bytes(f.mem_total)
            ),
            disk_pct: pct(disk_used, f.disk_total),
            disk_text: format!(
                "{} free of {}",
                human_bytes(f.disk_free),
                human_bytes(f.disk_total)
            ),
            disk_path: f.disk_path.clone(),
            cores: f.cores,
            load_text: format!("{:.2} {:.2} {:.2}", f.load[0], f.load[1], f.load[2]),
            busy_pct: if f.cores == 0 {
                0
            } else {
                ((f.load[0] / f64::from(f.cores)) * 100.0)
                    .round()
                    .clamp(0.0, 100.0) as u64
            },
            apps_text: match (running, stopped) {
                (0, 0) => "no apps".into(),
                (r, 0) => format!("{r} running"),
                (r, s) => format!("{r} running, {s} stopped"),
            },
            os: f.os.clone(),
            hostname: f.hostname.clone(),
            kernel: f.kernel.clone(),
            arch: f.arch.clone(),
            cpu_model: f.cpu_model.clone(),
            docker_text: f
                .docker
                .as_ref()
                .map(|d| format!("{} (API {})", d.version, d.api_version))
                .unwrap_or_else(|| "not usable".into()),
            uptime: format_duration(f.uptime_secs),
            own_key: !d.key_comment.is_empty(),
        }
    }
}

/// The device cards as of the board, rendered once per change of it (Basic and Advanced each).
async fn cards_now(state: &AppState, ctx: &Ctx) -> Result<(Arc<Board>, Arc<str>), WebError> {
    let board = state.devices.board().await?;
    let advanced = advanced(ctx);
    let cards = state.device_cards[usize::from(advanced)].get_or(board.generation(), || {
        let views: Vec<DeviceView> = board.entries.iter().map(DeviceView::new).collect();
        cards_html(&views, advanced).map(Arc::from)
    })?;
    Ok((board, cards))
}

#[derive(Template)]
#[template(path = "partials/device_cards.html")]
struct Cards<'a> {
    devices: &'a [DeviceView],
    advanced: bool,
    icon: &'static str,
}

fn cards_html(devices: &[DeviceView], advanced: bool) -> Result<String, WebError> {
    Ok(Cards {
        devices,
        advanced,
        icon: Section::Devices.icon(),
    }
    .render()?)
}

fn advanced(ctx: &Ctx) -> bool {
    ctx.user()
        .map(|u| u.ui_mode == UiMode::Advanced)
        .unwrap_or(false)
}

/// The device-login fields (add-device form and "change login"). Secrets become [`Secret`]s
/// at once.
#[derive(Deserialize)]
pub struct LoginFields {
    username: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    keep_password: Option<String>,
}

impl LoginFields {
    fn credential(self) -> Result<(String, Credential, bool), WebError> {
        let credential = if self.method == "key" {
            if self.private_key.trim().is_empty() {
                return Err(WebError::bad_request(
                    "Paste the private key, or choose “Password”.",
                ));
            }
            let passphrase =
                (!self.passphrase.is_empty()).then(|| Secret::from_string(self.passphrase));
            Credential::Key {
                private_key: Secret::from_string(self.private_key),
                passphrase,
            }
        } else {
            if self.password.is_empty() {
                return Err(WebError::bad_request(
                    "Enter the password for this user on the device.",
                ));
            }
            Credential::Password(Secret::from_string(self.password))
        };
        Ok((self.username, credential, self.keep_password.is_some()))
    }
}

fn parse_port(port: &str) -> Result<u16, WebError> {
    match port.trim() {
        "" => Ok(22),
        p => p.parse::<u16>().map_err(|_| {
            WebError::bad_request("The port must be a number between 1 and 65535 (usually 22).")
        }),
    }
}
