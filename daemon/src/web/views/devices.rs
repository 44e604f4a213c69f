//! Devices: the list, the add-device flow with "Test connection", a device's page with graphs,
//! removing and re-trusting, and the pool summary on the dashboard.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{Section, format_duration, go_to, page};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::devices::board::{Board, Entry};
use crate::devices::checks::{Outcome, Report};
use crate::devices::facts::{Container, Facts};
use crate::devices::install::{InstallError, Installed, Privilege};
use crate::devices::{Credential, DeviceError, DeviceInput};
use crate::secrets::Secret;
use crate::ssh::keys;
use crate::store::{Sample, UiMode, now_unix};
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
    pub apps_text: String,
    pub os: String,
    pub hostname: String,
    pub kernel: String,
    pub arch: String,
    pub cpu_model: String,
    pub docker_text: String,
    pub uptime: String,
    pub own_key: bool,
    facts: Option<Facts>,
}

fn pct(used: u64, total: u64) -> u64 {
    used.saturating_mul(100)
        .checked_div(total)
        .unwrap_or(0)
        .min(100)
}

impl DeviceView {
    pub fn new(entry: &Entry) -> DeviceView {
        let (d, status, facts) = (&entry.device, entry.status.as_ref(), entry.facts.clone());
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
        let f = facts.clone().unwrap_or_default();
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
                format!("{}:{}", d.host, d.port)
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
            facts,
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

#[derive(Template)]
#[template(path = "pages/devices.html")]
struct DevicesPage<'a> {
    cards: &'a str,
}

fn advanced(ctx: &Ctx) -> bool {
    ctx.user()
        .map(|u| u.ui_mode == UiMode::Advanced)
        .unwrap_or(false)
}

pub async fn list(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let (_, cards) = cards_now(&state, &ctx).await?;
    page(
        &ctx,
        Section::Devices,
        "Devices",
        DevicesPage { cards: &cards }.render()?,
    )
}

/// The cards alone, re-fetched by the page when a device's status changes.
pub async fn cards(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let (_, cards) = cards_now(&state, &ctx).await?;
    Ok(Html(cards.to_string()).into_response())
}

#[derive(Template)]
#[template(path = "pages/device_new.html")]
struct NewPage {
    advanced: bool,
    name: String,
    host: String,
}

/// Pre-fill from "Scan my network".
#[derive(Deserialize, Default)]
pub struct Prefill {
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
}

pub async fn new_form(
    ctx: Ctx,
    axum::extract::Query(p): axum::extract::Query<Prefill>,
) -> Result<Response, WebError> {
    page(
        &ctx,
        Section::Devices,
        "Add a device",
        NewPage {
            advanced: advanced(&ctx),
            name: p.name,
            host: p.host,
        }
        .render()?,
    )
}

pub struct CandidateView {
    pub name: String,
    pub address: String,
    pub source: &'static str,
    pub ssh: bool,
    pub added_as: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/scan.html")]
struct ScanView {
    candidates: Vec<CandidateView>,
}

/// How long "Scan my network" listens for mDNS answers.
const SCAN_LISTEN: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn scan(State(state): State<AppState>) -> Result<Response, WebError> {
    let found = crate::discovery::scan(SCAN_LISTEN, state.mdns_interfaces.clone()).await;
    let devices = state.store.devices().await?;
    let mut candidates: Vec<CandidateView> = found
        .into_iter()
        .map(|c| CandidateView {
            added_as: devices
                .iter()
                .find(|d| d.host == c.address.to_string())
                .map(|d| d.name.clone()),
            name: c.name,
            address: c.address.to_string(),
            source: c.source,
            ssh: c.ssh,
        })
        .collect();
    // Likely devices first: SSH open, then named ones.
    candidates.sort_by_key(|c| (!c.ssh, c.source != "mDNS", c.name.clone()));
    Ok(Html(ScanView { candidates }.render()?).into_response())
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

/// The add-device form.
#[derive(Deserialize)]
pub struct DeviceForm {
    name: String,
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    docker_socket: String,
    #[serde(flatten)]
    login: LoginFields,
}

fn parse_port(port: &str) -> Result<u16, WebError> {
    match port.trim() {
        "" => Ok(22),
        p => p.parse::<u16>().map_err(|_| {
            WebError::bad_request("The port must be a number between 1 and 65535 (usually 22).")
        }),
    }
}

impl DeviceForm {
    fn into_input(self) -> Result<DeviceInput, WebError> {
        let port = parse_port(&self.port)?;
        let (username, credential, keep_password) = self.login.credential()?;
        Ok(DeviceInput {
            name: self.name,
            host: self.host,
            port,
            username,
            credential,
            keep_password,
            docker_socket: self.docker_socket,
        })
    }
}

pub struct CheckView {
    pub label: &'static str,
    pub outcome: &'static str,
    pub outcome_word: &'static str,
    pub icon: &'static str,
    pub message: String,
    pub fix: Option<String>,
    pub command: Option<String>,
}

/// The "Install Docker for me" offer under a report.
struct InstallOfferView {
    system: String,
    /// sudo asks for a password (the login's is used unless another is typed).
    ask_password: bool,
}

/// How an "Install Docker for me" went.
pub struct InstallResultView {
    ok: bool,
    message: String,
    steps: Vec<String>,
    log: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/check_report.html")]
struct ReportView {
    ok: bool,
    advanced: bool,
    fingerprint: Option<String>,
    hostname: Option<String>,
    checks: Vec<CheckView>,
    install: Option<InstallOfferView>,
    installed: Option<InstallResultView>,
}

fn report_html(report: &Report, advanced: bool) -> Result<String, WebError> {
    report_with_install_html(report, advanced, None)
}

fn report_with_install_html(
    report: &Report,
    advanced: bool,
    installed: Option<InstallResultView>,
) -> Result<String, WebError> {
    let checks = report
        .checks
        .iter()
        .map(|c| {
            let (outcome, outcome_word, icon) = match c.outcome {
                Outcome::Pass => ("pass", "passed", "✓"),
                Outcome::Warn => ("warn", "warning", "!"),
                Outcome::Fail => ("fail", "failed", "✕"),
            };
            CheckView {
                label: c.label,
                outcome,
                outcome_word,
                icon,
                message: c.message.clone(),
                fix: c.fix.clone(),
                command: c.command.clone(),
            }
        })
        .collect();
    Ok(ReportView {
        ok: report.ok(),
        advanced,
        fingerprint: report.host_key_fingerprint.clone(),
        hostname: report.hostname.clone(),
        checks,
        install: report.docker_install.as_ref().map(|a| InstallOfferView {
            system: a.system.clone(),
            ask_password: a.privilege == Privilege::SudoPassword,
        }),
        installed,
    }
    .render()?)
}

pub fn device_error(e: DeviceError) -> WebError {
    match e {
        DeviceError::Invalid(m) => WebError::bad_request(m),
        DeviceError::Conflict(m) => WebError::new(StatusCode::CONFLICT, "conflict", m),
        DeviceError::NotFound => WebError::not_found(),
        DeviceError::Ssh(s) => {
            WebError::new(StatusCode::BAD_GATEWAY, "device_unreachable", s.to_string())
        }
        DeviceError::NotReady(r) => WebError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "device_not_ready",
            r.checks
                .iter()
                .filter(|c| c.outcome == Outcome::Fail)
                .map(|c| c.message.clone())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        DeviceError::Store(s) => s.into(),
        DeviceError::Vault(v) => WebError::internal(v),
        DeviceError::Docker(d) => {
            WebError::new(StatusCode::BAD_GATEWAY, "docker_unavailable", d.to_string())
        }
    }
}

pub async fn test(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<DeviceForm>,
) -> Result<Response, WebError> {
    let input = form.into_input()?;
    let report = state
        .devices
        .test_connection(&input)
        .await
        .map_err(device_error)?;
    Ok(Html(report_html(&report, advanced(&ctx))?).into_response())
}

/// "Install Docker for me": the add-device form plus what the offer asked for.
#[derive(Deserialize)]
pub struct InstallForm {
    #[serde(flatten)]
    device: DeviceForm,
    #[serde(default)]
    sudo_password: String,
    /// The device identity shown by the test the user acted on.
    #[serde(default)]
    fingerprint: String,
}

/// Runs the install in a task of its own, so a closed browser tab cannot stop a package
/// manager half-way; audits the outcome either way.
pub async fn run_docker_install(
    state: &AppState,
    ctx: &Ctx,
    input: DeviceInput,
    sudo_password: String,
    fingerprint: String,
) -> Result<(Result<Installed, InstallError>, Report), WebError> {
    let devices = state.devices.clone();
    let target = format!(
        "{}@{}:{}",
        input.username.trim(),
        input.host.trim(),
        input.port
    );
    let sudo = (!sudo_password.is_empty()).then(|| Secret::from_string(sudo_password));
    let (outcome, report) = tokio::spawn(async move {
        devices
            .install_docker(&input, sudo, Some(fingerprint.as_str()))
            .await
    })
    .await
    .map_err(WebError::internal)?
    .map_err(device_error)?;
    let what = match &outcome {
        Ok(done) => format!("Installed Docker on {target} in {:.0} s", done.seconds),
        Err(e) => format!("Installing Docker on {target} failed: {e}"),
    };
    ctx.audit(state, "device.install_docker", what).await?;
    Ok((outcome, report))
}

pub async fn install_docker(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<InstallForm>,
) -> Result<Response, WebError> {
    let input = form.device.into_input()?;
    let (outcome, report) =
        run_docker_install(&state, &ctx, input, form.sudo_password, form.fingerprint).await?;
    let installed = match outcome {
        Ok(done) => InstallResultView {
            ok: true,
            message: format!("Docker is installed ({:.0} s).", done.seconds),
            steps: done.steps,
            log: None,
        },
        Err(e) => InstallResultView {
            ok: false,
            message: e.to_string(),
            steps: Vec::new(),
            log: e.log().map(str::to_string),
        },
    };
    Ok(Html(report_with_install_html(
        &report,
        advanced(&ctx),
        Some(installed),
    )?)
    .into_response())
}

pub async fn add(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<DeviceForm>,
) -> Result<Response, WebError> {
    let input = form.into_input()?;
    match state.devices.adopt(input).await {
        Ok(device) => {
            ctx.audit(
                &state,
                "device.add",
                format!(
                    "Added device “{}” ({}@{}:{})",
                    device.name, device.username, device.host, device.port
                ),
            )
            .await?;
            // Its first figures right away rather than at the next poll.
            state.devices.check_soon(device.clone());
            go_to(&ctx, &format!("/devices/{}", device.id))
        }
        Err(DeviceError::NotReady(report)) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(report_html(&report, advanced(&ctx))?),
        )
            .into_response()),
        Err(e) => Err(device_error(e)),
    }
}

/// A container as listed on a device's page.
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub state: &'static str,
    pub state_label: String,
    pub project: String,
}

impl ContainerView {
    fn new(c: &Container) -> ContainerView {
        ContainerView {
            name: c.name.clone(),
            image: c.image.clone(),
            state: if c.unhealthy {
                "degraded"
            } else if c.running {
                "online"
            } else {
                "offline"
            },
            state_label: c.status.clone(),
            project: c.project.clone(),
        }
    }
}

/// A device's graphs of the last day.
pub struct Graphs {
    mem: String,
    load: String,
}

/// Each device's graphs, drawn once per change of the devices board (a poll adds a sample)
/// instead of reading a day of samples (1,440) on every load of its page.
pub type GraphsCache = super::super::per_board::PerBoard<Arc<Mutex<HashMap<i64, Arc<Graphs>>>>>;

async fn graphs(
    state: &AppState,
    board: &Board,
    view: &DeviceView,
) -> Result<Arc<Graphs>, WebError> {
    let drawn = state
        .device_graphs
        .get_or(board.generation(), || Ok::<_, WebError>(Default::default()))?;
    if let Some(g) = drawn
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&view.id)
    {
        return Ok(g.clone());
    }
    let since = now_unix() - 24 * 3600;
    let samples = state.store.samples(view.id, since).await?;
    let mem_total = view
        .facts
        .as_ref()
        .map(|f| f.mem_total as f64)
        .unwrap_or(1.0);
    let g = Arc::new(Graphs {
        mem: sparkline(
            &samples,
            since,
            |s| s.mem_used.map(|m| m as f64 / mem_total.max(1.0)),
            Some(1.0),
        ),
        load: sparkline(&samples, since, |s| s.load1, None),
    });
    // At most one entry per device: the map belongs to one board generation.
    drawn
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(view.id, g.clone());
    Ok(g)
}

#[derive(Template)]
#[template(path = "pages/device.html")]
struct DevicePage<'a> {
    containers: Option<Vec<ContainerView>>,
    d: DeviceView,
    advanced: bool,
    pending_fingerprint: Option<String>,
    host_fingerprint: String,
    mem_graph: &'a str,
    load_graph: &'a str,
    uptime_text: String,
}

async fn device_page(state: &AppState, ctx: &Ctx, id: i64) -> Result<Response, WebError> {
    let board = state.devices.board().await?;
    let entry = board.entry(id).ok_or_else(WebError::not_found)?;
    let device = &entry.device;
    let view = DeviceView::new(entry);
    let graphs = graphs(state, &board, &view).await?;
    let name = view.name.clone();
    let pending_fingerprint = device
        .pending_host_key
        .as_deref()
        .and_then(|k| keys::parse_public(k).ok())
        .map(|k| keys::fingerprint(&k));
    let host_fingerprint = keys::parse_public(&device.host_key)
        .map(|k| keys::fingerprint(&k))
        .unwrap_or_default();
    let partial = DevicePage {
        // As the last poll saw them: a page load never waits for the device. Changes Homelab
        // makes (installs, start/stop, removal) re-check the device at once.
        containers: entry
            .containers
            .as_ref()
            .map(|list| list.iter().map(ContainerView::new).collect()),
        advanced: advanced(ctx),
        pending_fingerprint,
        host_fingerprint,
        mem_graph: &graphs.mem,
        load_graph: &graphs.load,
        uptime_text: entry
            .uptime_24h
            .map(|u| format!("{:.1}%", u * 100.0))
            .unwrap_or_else(|| "—".into()),
        d: view,
    }
    .render()?;
    page(ctx, Section::Devices, &name, partial)
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    device_page(&state, &ctx, id).await
}

pub async fn refresh(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let device = state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    // "Check now" skips any reconnect back-off.
    state.devices.pool.forget(id).await;
    state.devices.check(&device).await;
    device_page(&state, &ctx, id).await
}

pub async fn trust_key(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let device = state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    if state
        .devices
        .trust_new_host_key(id)
        .await
        .map_err(device_error)?
    {
        ctx.audit(
            &state,
            "device.trust_host_key",
            format!("Trusted the new identity key of “{}”", device.name),
        )
        .await?;
        // Re-read: the row now carries the newly pinned key.
        if let Some(trusted) = state.store.device(id).await? {
            state.devices.check(&trusted).await;
        }
    }
    device_page(&state, &ctx, id).await
}

#[derive(Deserialize)]
pub struct EditForm {
    name: String,
    host: String,
    #[serde(default)]
    port: String,
}

pub async fn edit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(form): Form<EditForm>,
) -> Result<Response, WebError> {
    let port = parse_port(&form.port)?;
    let (before, after) = state
        .devices
        .edit(id, &form.name, &form.host, port)
        .await
        .map_err(device_error)?;
    if before != after {
        ctx.audit(
            &state,
            "device.edit",
            format!("Changed device “{}”: {before} → {after}", form.name.trim()),
        )
        .await?;
    }
    device_page(&state, &ctx, id).await
}

pub async fn change_login(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(f): Form<LoginFields>,
) -> Result<Response, WebError> {
    let (username, credential, keep_password) = f.credential()?;
    let user = username.trim().to_string();
    state
        .devices
        .change_login(id, &user, credential, keep_password)
        .await
        .map_err(device_error)?;
    let device = state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    ctx.audit(
        &state,
        "device.login",
        format!("Changed the login of “{}” (now “{user}”)", device.name),
    )
    .await?;
    state.events.publish(crate::events::Event::Toast {
        level: crate::events::Level::Success,
        message: format!("New login for “{}” saved.", device.name),
    });
    device_page(&state, &ctx, id).await
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    clean: Option<String>,
}

pub async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(form): Form<RemoveForm>,
) -> Result<Response, WebError> {
    let name = state
        .devices
        .remove(id, form.clean.is_some())
        .await
        .map_err(device_error)?;
    let how = if form.clean.is_some() {
        " and removed its key from the device"
    } else {
        ""
    };
    ctx.audit(
        &state,
        "device.remove",
        format!("Removed device “{name}”{how}"),
    )
    .await?;
    state
        .events
        .publish(crate::events::Event::DeviceStatus { device_id: id });
    go_to(&ctx, "/devices")
}

/// A small server-rendered SVG line graph of the last 24 h (gaps where the device was offline).
fn sparkline(
    samples: &[Sample],
    since: i64,
    value: impl Fn(&Sample) -> Option<f64>,
    max: Option<f64>,
) -> String {
    const W: f64 = 600.0;
    const H: f64 = 80.0;
    // One point per two units of width: a day has 1,440 samples, more than the graph can show
    // (and six times the page weight and render time). Each column is the mean of its samples,
    // a gap when the device was offline for all of them.
    const COLUMNS: usize = 300;
    let span = (now_unix() - since).max(1) as f64;
    let mut columns: Vec<(u32, u32, f64)> = vec![(0, 0, 0.0); COLUMNS]; // (samples, values, sum)
    for s in samples {
        let col = ((s.at - since) as f64 / span * COLUMNS as f64) as usize;
        let c = &mut columns[col.min(COLUMNS - 1)];
        c.0 += 1;
        if s.online
            && let Some(v) = value(s)
        {
            c.1 += 1;
            c.2 += v;
        }
    }
    let points: Vec<(f64, Option<f64>)> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.0 > 0)
        .map(|(i, c)| {
            let x = (i as f64 + 0.5) * W / COLUMNS as f64;
            (x, (c.1 > 0).then(|| c.2 / c.1 as f64))
        })
        .collect();
    let top = max.unwrap_or_else(|| {
        points
            .iter()
            .filter_map(|p| p.1)
            .fold(0.0_f64, f64::max)
            .max(1.0)
    });
    let mut paths = String::new();
    let mut current = String::new();
    // A lone point would draw nothing; a short tick makes it visible.
    let close = |path: &str| {
        if path.contains(" L") {
            format!("<path d=\"{path}\"/>")
        } else {
            format!("<path d=\"{path} l 4,0\"/>")
        }
    };
    for (x, v) in &points {
        match v {
            Some(v) => {
                let y = H - (v / top).clamp(0.0, 1.0) * (H - 4.0) - 2.0;
                current.push_str(&format!(
                    "{}{x:.1},{y:.1}",
                    if current.is_empty() { "M" } else { " L" }
                ));
            }
            None if !current.is_empty() => {
                paths.push_str(&close(&current));
                current.clear();
            }
            None => {}
        }
    }
    if !current.is_empty() {
        paths.push_str(&close(&current));
    }
    if paths.is_empty() {
        return "<p class=\"muted\">No history yet.</p>".into();
    }
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"graph\"><g fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" vector-effect=\"non-scaling-stroke\">{paths}</g></svg>"
    )
}

#[derive(Template)]
#[template(path = "partials/pool.html")]
struct Pool<'a> {
    total: usize,
    online: usize,
    offline: usize,
    degraded: usize,
    ram_total: String,
    ram_used: String,
    ram_pct: u64,
    disk_total: String,
    disk_used: String,
    disk_pct: u64,
    cores: u32,
    load_pct: u64,
    load_pct_bar: u64,
    apps: u64,
    cards: &'a str,
}

/// The homelab as one system: totals over reachable devices, then every device's card.
/// Returns the HTML and the number of devices.
pub async fn pool_html(state: &AppState, ctx: &Ctx) -> Result<(String, usize), WebError> {
    let (board, cards) = cards_now(state, ctx).await?;
    fn state_of(e: &Entry) -> Option<&str> {
        e.status.as_ref().map(|s| s.state.as_str())
    }
    let reachable = |e: &&Entry| matches!(state_of(e), Some("online" | "degraded"));
    let live: Vec<&Facts> = board
        .entries
        .iter()
        .filter(reachable)
        .filter_map(|e| e.facts.as_ref())
        .collect();
    let sum = |f: fn(&Facts) -> u64| live.iter().map(|x| f(x)).sum::<u64>();
    let (ram_total, ram_avail) = (sum(|f| f.mem_total), sum(|f| f.mem_available));
    let (disk_total, disk_free) = (sum(|f| f.disk_total), sum(|f| f.disk_free));
    let cores: u32 = live.iter().map(|f| f.cores).sum();
    let load: f64 = live.iter().map(|f| f.load[0]).sum();
    let load_pct = if cores == 0 {
        0
    } else {
        (load / cores as f64 * 100.0).round() as u64
    };
    let count = |states: &[&str]| {
        board
            .entries
            .iter()
            .filter(|e| state_of(e).is_some_and(|s| states.contains(&s)))
            .count()
    };
    let html = Pool {
        total: board.entries.len(),
        online: count(&["online", "degraded"]),
        offline: count(&["offline", "blocked"]),
        degraded: count(&["degraded"]),
        ram_total: human_bytes(ram_total),
        ram_used: human_bytes(ram_total.saturating_sub(ram_avail)),
        ram_pct: pct(ram_total.saturating_sub(ram_avail), ram_total),
        disk_total: human_bytes(disk_total),
        disk_used: human_bytes(disk_total.saturating_sub(disk_free)),
        disk_pct: pct(disk_total.saturating_sub(disk_free), disk_total),
        cores,
        load_pct,
        load_pct_bar: load_pct.min(100),
        // Apps Homelab deployed and finds running (containers of other tools are not apps).
        apps: state
            .store
            .apps()
            .await?
            .iter()
            .filter(|a| a.state == crate::deploy::RunState::Running)
            .count() as u64,
        cards: if board.entries.is_empty() { "" } else { &cards },
    }
    .render()?;
    Ok((html, board.entries.len()))
}

pub async fn pool(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    Ok(Html(pool_html(&state, &ctx).await?.0).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, online: bool, load: f64) -> Sample {
        Sample {
            at,
            online,
            load1: Some(load),
            ..Sample::default()
        }
    }

    /// A day of minute samples becomes at most 300 points; an offline stretch breaks the line;
    /// a column shows the mean of its samples.
    #[test]
    fn a_day_of_samples_draws_a_bounded_graph_with_gaps_where_offline() {
        let since = now_unix() - 24 * 3600;
        let mut samples: Vec<Sample> = (0..1440)
            .map(|m| sample(since + m * 60, !(600..700).contains(&m), 1.0))
            .collect();
        let svg = sparkline(&samples, since, |s| s.load1, None);
        assert_eq!(svg.matches("<path").count(), 2, "one gap: {svg}");
        let points = svg.matches(',').count();
        assert!((250..=300).contains(&points), "{points} points");

        // Two samples in one column: the mean, not the last (a max of 4 puts 2 mid-height).
        samples = vec![sample(since + 60, true, 1.0), sample(since + 61, true, 3.0)];
        let svg = sparkline(&samples, since, |s| s.load1, Some(4.0));
        assert!(svg.contains(",40.0 l 4,0"), "{svg}");
        assert_eq!(
            sparkline(&[], since, |s| s.load1, None),
            "<p class=\"muted\">No history yet.</p>"
        );
    }
}
