//! The Devices page: every device's card, re-fetched when a device's status changes.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};

use super::super::{Section, page};
use super::cards_now;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Template)]
#[template(path = "pages/devices.html")]
struct DevicesPage<'a> {
    cards: &'a str,
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
