//! Settings → Trust this homelab: the homelab's root certificate to download (PEM for
//! computers, DER `.crt` that phones install by tapping), its fingerprint, and how to install
//! it on each kind of device. Session-only like the rest of Settings: the root is public in
//! principle, but nothing about the box is handed to strangers.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{Section, page};
use crate::store::UiMode;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Template)]
#[template(path = "pages/trust.html")]
struct TrustPage<'a> {
    advanced: bool,
    fingerprint: &'a str,
    /// The root's name as devices list it ("Homelab <box> root").
    root_name: String,
    /// The home names the root may vouch for, as ".home.arpa", ".local", …
    domains: Vec<String>,
    /// The private address ranges it may vouch for (Advanced only).
    ranges: Vec<String>,
    pem_href: &'static str,
    der_href: &'static str,
}

pub async fn show(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let user = ctx.user()?;
    let ca = state.tls.authority();
    let html = TrustPage {
        advanced: user.ui_mode == UiMode::Advanced,
        fingerprint: ca.fingerprint(),
        root_name: ca.common_name(),
        domains: ca.domains().iter().map(|d| format!(".{d}")).collect(),
        ranges: crate::tls::ca::PRIVATE_RANGES
            .iter()
            .map(|(ip, prefix)| format!("{ip}/{prefix}"))
            .collect(),
        pem_href: crate::web::paths::SETTINGS_TRUST_PEM,
        der_href: crate::web::paths::SETTINGS_TRUST_DER,
    }
    .render()?;
    page(&ctx, Section::Settings, "Trust this homelab", html)
}

/// The root in PEM, for computers (Linux, Firefox, macOS).
pub async fn root_pem(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"homelab-root.pem\"",
            ),
        ],
        state.tls.authority().root_pem().to_string(),
    )
        .into_response()
}

/// The root in DER as `application/pkix-cert`: iOS and Android offer to install it when
/// tapped, Windows when double-clicked.
pub async fn root_der(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pkix-cert"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"homelab-root.crt\"",
            ),
        ],
        state.tls.authority().root_der().to_vec(),
    )
        .into_response()
}
