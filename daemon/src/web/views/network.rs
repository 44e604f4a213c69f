//! The Network page: a frame of three panels, each loaded (and refreshed) by its own route so
//! each part of the network can be slow or unreachable without holding up the others:
//! the apps' names (`names`), the DNS server (`dns`: AdGuard Home) and the router (`router`:
//! OPNsense, read-only; its handlers are in `network_router`).

use askama::Template;
use axum::response::{Html, IntoResponse, Response};

use super::{Section, page};
use crate::web::context::Ctx;
use crate::web::error::WebError;
use crate::web::paths;

#[derive(Template)]
#[template(path = "pages/network.html")]
struct Network {
    names_path: &'static str,
    dns_path: &'static str,
    router_path: &'static str,
}

pub async fn show(ctx: Ctx) -> Result<Response, WebError> {
    let partial = Network {
        names_path: paths::NETWORK_NAMES,
        dns_path: paths::NETWORK_DNS,
        router_path: paths::NETWORK_ROUTER,
    }
    .render()?;
    page(&ctx, Section::Network, "Network", partial)
}

#[derive(Template)]
#[template(path = "partials/network_panel_pending.html")]
struct Pending {
    heading: &'static str,
}

/// A panel whose feature has not landed yet: says so rather than staying blank.
fn pending(heading: &'static str) -> Result<Response, WebError> {
    Ok(Html(Pending { heading }.render()?).into_response())
}

pub async fn names(_ctx: Ctx) -> Result<Response, WebError> {
    pending("App names")
}

pub async fn dns(_ctx: Ctx) -> Result<Response, WebError> {
    pending("DNS server")
}
