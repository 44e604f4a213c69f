//! Adding a device: the form (pre-filled from "Scan my network"), "Test connection" with its
//! report, "Install Docker for me", and the add itself.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::super::{Section, go_to, page};
use super::{LoginFields, advanced, parse_port};
use crate::devices::DeviceInput;
use crate::devices::checks::{Outcome, Report};
use crate::devices::install::Privilege;
use crate::web::AppState;
use crate::web::actions::{self, devices::Added};
use crate::web::context::Ctx;
use crate::web::error::WebError;

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
    advanced: bool,
}

/// How long "Scan my network" listens for mDNS answers.
const SCAN_LISTEN: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn scan(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
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
    Ok(Html(
        ScanView {
            candidates,
            advanced: advanced(&ctx),
        }
        .render()?,
    )
    .into_response())
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
            if advanced {
                CheckView {
                    label: c.label,
                    outcome,
                    outcome_word,
                    icon,
                    message: c.message.clone(),
                    fix: c.fix.clone(),
                    command: c.command.clone(),
                }
            } else {
                // Basic mode: plain words, and no commands (Advanced shows them).
                CheckView {
                    label: c.plain.label.unwrap_or(c.label),
                    outcome,
                    outcome_word,
                    icon,
                    message: c.plain.message.clone().unwrap_or_else(|| c.message.clone()),
                    fix: c.plain.fix.clone().or_else(|| c.fix.clone()),
                    command: None,
                }
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

pub async fn test(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<DeviceForm>,
) -> Result<Response, WebError> {
    let input = form.into_input()?;
    let report = state.devices.test_connection(&input).await?;
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

pub async fn install_docker(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<InstallForm>,
) -> Result<Response, WebError> {
    let input = form.device.into_input()?;
    let (outcome, report) =
        actions::devices::install_docker(&state, &ctx, input, form.sudo_password, form.fingerprint)
            .await?;
    let advanced = advanced(&ctx);
    // Basic mode: what it means, without the steps' technical names or the device's output.
    let installed = match outcome {
        Ok(done) if advanced => InstallResultView {
            ok: true,
            message: format!("Docker is installed ({:.0} s).", done.seconds),
            steps: done.steps,
            log: None,
        },
        Ok(done) => InstallResultView {
            ok: true,
            message: format!("The device is set up for apps ({:.0} s).", done.seconds),
            steps: Vec::new(),
            log: None,
        },
        Err(e) if advanced => InstallResultView {
            ok: false,
            message: e.to_string(),
            steps: Vec::new(),
            log: e.log().map(str::to_string),
        },
        Err(e) => InstallResultView {
            ok: false,
            message: e.plain(),
            steps: Vec::new(),
            log: None,
        },
    };
    Ok(Html(report_with_install_html(
        &report,
        advanced,
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
    match actions::devices::add(&state, &ctx, input).await? {
        Added::Device(device) => go_to(&ctx, &format!("/devices/{}", device.id)),
        Added::NotReady(report) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(report_html(&report, advanced(&ctx))?),
        )
            .into_response()),
    }
}
