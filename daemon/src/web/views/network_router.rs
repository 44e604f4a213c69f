//! The Router panel of the Network page (OPNsense, read-only) and the dashboard's Network
//! card: the connect form and its certificate confirmation, then system, interfaces with a
//! live traffic graph, gateways, DHCP leases and recent firewall blocks. A router that does
//! not answer is a sentence with the fix, never an error page; the panel and the card are
//! loaded by their own requests so a slow router never holds up another page.

use std::collections::VecDeque;
use std::fmt::Write as _;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::network::opnsense::{LeaseServer, Overview};
use crate::network::{NetworkError, RouterState, Series};
use crate::secrets::Secret;
use crate::store::UiMode;
use crate::web::AppState;
use crate::web::actions;
use crate::web::context::Ctx;
use crate::web::error::WebError;
use crate::web::paths;

/// Rows shown per table; the counts above them cover everything.
const SHOWN: usize = 50;

fn advanced(ctx: &Ctx) -> Result<bool, WebError> {
    Ok(ctx.user()?.ui_mode == UiMode::Advanced)
}

#[derive(Template)]
#[template(path = "partials/router_connect.html")]
struct ConnectForm {
    advanced: bool,
    url: String,
    error: Option<String>,
    detail: Option<String>,
    connect_path: &'static str,
}

#[derive(Template)]
#[template(path = "partials/router_confirm.html")]
struct Confirm {
    advanced: bool,
    handle: String,
    fingerprint: Option<String>,
    confirm_path: &'static str,
    router_path: &'static str,
}

pub struct IfaceView {
    pub name: String,
    pub up: bool,
    pub status: String,
    pub addresses: String,
}

pub struct GatewayView {
    pub name: String,
    pub online: bool,
    pub status: String,
    pub address: String,
    pub delay: String,
    pub loss: String,
}

pub struct LeaseView {
    pub name: String,
    pub address: String,
    pub mac: String,
    pub online: String,
}

pub struct BlockView {
    pub time: String,
    pub source: String,
    pub destination: String,
    pub port: String,
    pub protocol: String,
}

#[derive(Template)]
#[template(path = "partials/router_panel.html")]
struct Panel {
    advanced: bool,
    router_path: &'static str,
    traffic_path: &'static str,
    forget_path: &'static str,
    /// Basic: the host; Advanced: the whole address.
    at: String,
    fingerprint: Option<String>,
    plain_http: bool,
    trouble: Option<String>,
    trouble_detail: Option<String>,
    /// The certificate changed: offer to look at the new one.
    cert_changed: bool,
    check_again_path: &'static str,
    /// Shown from the last good answer while the router is in trouble.
    stale: bool,
    has_data: bool,
    internet_up: bool,
    name: String,
    version: String,
    uptime: String,
    cpu: String,
    load: String,
    memory: String,
    interfaces: Vec<IfaceView>,
    gateways: Vec<GatewayView>,
    lease_server: &'static str,
    leases_total: usize,
    active: usize,
    leases: Vec<LeaseView>,
    blocks: Vec<BlockView>,
    missing: Vec<String>,
}

/// The panel: the connect form when no router is connected, else what the router says.
pub async fn panel(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let advanced = advanced(&ctx)?;
    let html = panel_html(&state, advanced).await?;
    Ok(Html(html).into_response())
}

async fn panel_html(state: &AppState, advanced: bool) -> Result<String, WebError> {
    let conn = state.router.connection().await.ok().flatten();
    let router_state = state.router.state().await;
    let (overview, trouble, stale) = match router_state {
        RouterState::NotSet => return connect_form(advanced, String::new(), None),
        RouterState::Up(o) => (Some(o), None, false),
        RouterState::Trouble { error, last } => {
            let stale = last.is_some();
            (last, Some(error), stale)
        }
    };
    let (at, fingerprint, plain_http) = match &conn {
        Some(c) => {
            let host = crate::http_client::parse_url(&c.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            let at = if advanced { c.url.clone() } else { host };
            (at, c.fingerprint.clone(), c.fingerprint.is_none())
        }
        None => (String::new(), None, false),
    };
    let mut p = Panel {
        advanced,
        router_path: paths::NETWORK_ROUTER,
        traffic_path: paths::NETWORK_ROUTER_TRAFFIC,
        forget_path: paths::NETWORK_ROUTER_FORGET,
        at,
        fingerprint,
        plain_http,
        trouble: trouble.as_ref().map(|e| trouble_words(e)),
        trouble_detail: trouble.as_ref().map(|e| e.to_string()),
        cert_changed: trouble.as_ref().is_some_and(|e| {
            matches!(
                **e,
                NetworkError::Router(crate::network::opnsense::OpnSenseError::CertChanged { .. })
            )
        }),
        check_again_path: paths::NETWORK_ROUTER_CHECK_AGAIN,
        stale,
        has_data: overview.is_some(),
        internet_up: false,
        name: String::new(),
        version: String::new(),
        uptime: String::new(),
        cpu: String::new(),
        load: String::new(),
        memory: String::new(),
        interfaces: Vec::new(),
        gateways: Vec::new(),
        lease_server: "",
        leases_total: 0,
        active: 0,
        leases: Vec::new(),
        blocks: Vec::new(),
        missing: Vec::new(),
    };
    if let Some(o) = overview {
        fill(&mut p, &o, advanced);
    }
    Ok(p.render()?)
}

/// What the owner reads when the router is in trouble: the plain sentence, which already
/// says what to do.
fn trouble_words(e: &NetworkError) -> String {
    e.plain()
}

fn fill(p: &mut Panel, o: &Overview, advanced: bool) {
    p.internet_up = o.internet_up();
    p.name = o.system.name.clone();
    p.version = o.system.version.clone();
    p.uptime = match o.system.uptime_secs {
        Some(s) => crate::units::human_duration(s),
        None => o.system.uptime.clone(),
    };
    p.cpu = o.system.cpu.clone().unwrap_or_default();
    p.load = o.system.load.clone().unwrap_or_default();
    p.memory = match (o.system.memory_used, o.system.memory_total) {
        (Some(u), Some(t)) => format!(
            "{} of {}",
            crate::units::human_bytes(u),
            crate::units::human_bytes(t)
        ),
        _ => String::new(),
    };
    p.interfaces = o
        .interfaces
        .iter()
        .map(|i| IfaceView {
            name: if i.name.is_empty() {
                i.id.to_uppercase()
            } else {
                i.name.clone()
            },
            up: i.up,
            status: if advanced {
                i.status.clone()
            } else if i.up {
                "Connected".into()
            } else {
                "Not connected".into()
            },
            addresses: [i.addr4.as_str(), i.addr6.as_str()]
                .iter()
                .filter(|a| !a.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    p.gateways = o
        .gateways
        .iter()
        .map(|g| GatewayView {
            name: g.name.clone(),
            online: g.online,
            status: if advanced {
                g.status.clone()
            } else if g.online {
                "Answering".into()
            } else {
                "Not answering".into()
            },
            address: g.address.clone(),
            delay: g.delay_ms.map(|d| format!("{d:.1} ms")).unwrap_or_default(),
            loss: g.loss_pct.map(|l| format!("{l:.1} %")).unwrap_or_default(),
        })
        .collect();
    p.lease_server = match o.leases.server {
        LeaseServer::Isc => "ISC DHCP",
        LeaseServer::Kea => "Kea DHCP",
        LeaseServer::None => "",
    };
    p.leases_total = o.leases.total;
    p.active = o.leases.active();
    p.leases = o
        .leases
        .list
        .iter()
        .take(SHOWN)
        .map(|l| LeaseView {
            name: if l.hostname.is_empty() {
                "(no name)".into()
            } else {
                l.hostname.clone()
            },
            address: l.address.clone(),
            mac: l.mac.clone(),
            online: match l.online {
                Some(true) => "here now".into(),
                Some(false) => "away".into(),
                None => String::new(),
            },
        })
        .collect();
    p.blocks = o
        .blocks
        .iter()
        .take(SHOWN)
        .map(|b| BlockView {
            time: b.time.replace('T', " "),
            source: b.source.clone(),
            destination: b.destination.clone(),
            port: b.port.clone(),
            protocol: b.protocol.clone(),
        })
        .collect();
    p.missing = o.missing.clone();
}

fn connect_form(
    advanced: bool,
    url: String,
    error: Option<&NetworkError>,
) -> Result<String, WebError> {
    Ok(ConnectForm {
        advanced,
        url: url.chars().take(200).collect(),
        error: error.map(NetworkError::plain),
        detail: error.map(|e| e.to_string()),
        connect_path: paths::NETWORK_ROUTER_CONNECT,
    }
    .render()?)
}

#[derive(Deserialize)]
pub struct ConnectInput {
    url: String,
    key: String,
    secret: String,
}

/// Step one: meet the router and show its certificate for the owner to confirm.
pub async fn connect(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ConnectInput>,
) -> Result<Response, WebError> {
    let advanced = advanced(&ctx)?;
    let url = form.url.clone();
    let result = actions::network::begin(
        &state,
        &form.url,
        Secret::from_string(form.key),
        Secret::from_string(form.secret),
    )
    .await?;
    let html = match result {
        Ok((handle, fingerprint)) => Confirm {
            advanced,
            handle,
            fingerprint,
            confirm_path: paths::NETWORK_ROUTER_CONFIRM,
            router_path: paths::NETWORK_ROUTER,
        }
        .render()?,
        Err(e) => connect_form(advanced, url, Some(&e))?,
    };
    Ok(Html(html).into_response())
}

#[derive(Deserialize)]
pub struct ConfirmInput {
    handle: String,
}

/// Step two: the owner confirmed; the key is checked and the router stored.
pub async fn confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<ConfirmInput>,
) -> Result<Response, WebError> {
    let advanced = advanced(&ctx)?;
    let handle: String = form.handle.chars().take(64).collect();
    let pending_url = state
        .router
        .pending(&handle)
        .await
        .map(|(u, _)| u)
        .unwrap_or_default();
    let html = match actions::network::confirm(&state, &ctx, &handle).await? {
        Ok(_) => panel_html(&state, advanced).await?,
        Err(e) => connect_form(advanced, pending_url, Some(&e))?,
    };
    Ok(Html(html).into_response())
}

/// After a changed certificate: shows the new one for the owner to confirm (the stored key
/// is reused; nothing changes until they confirm).
pub async fn check_again(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let advanced = advanced(&ctx)?;
    let html = match actions::network::begin_again(&state).await? {
        Ok((handle, fingerprint)) => Confirm {
            advanced,
            handle,
            fingerprint,
            confirm_path: paths::NETWORK_ROUTER_CONFIRM,
            router_path: paths::NETWORK_ROUTER,
        }
        .render()?,
        Err(e) => connect_form(advanced, String::new(), Some(&e))?,
    };
    Ok(Html(html).into_response())
}

/// Forgets the router and shows the connect form again.
pub async fn forget(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let advanced = advanced(&ctx)?;
    actions::network::forget(&state, &ctx).await?;
    Ok(Html(connect_form(advanced, String::new(), None)?).into_response())
}

pub struct TrafficView {
    pub name: String,
    pub now: String,
    pub svg: String,
}

#[derive(Template)]
#[template(path = "partials/router_traffic.html")]
struct Traffic {
    trouble: Option<String>,
    graphs: Vec<TrafficView>,
}

/// The live traffic part of the panel (polled every few seconds): the latest rates and a
/// sparkline per interface (Basic: the internet link only).
pub async fn traffic(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let advanced = advanced(&ctx)?;
    let (graphs, trouble) = match state.router.traffic().await {
        Ok(series) => (
            series
                .iter()
                .filter(|(id, _)| advanced || id.as_str() == "wan")
                .map(|(id, s)| TrafficView {
                    name: if advanced {
                        s.name.clone()
                    } else {
                        "Internet".into()
                    },
                    now: rates_words(id, s),
                    svg: sparkline(s),
                })
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.plain())),
    };
    let html = Traffic { trouble, graphs }.render()?;
    Ok(Html(html).into_response())
}

/// "48 Mbit/s down, 8.0 Mbit/s up right now": for the WAN, in is what comes down from the
/// internet.
fn rates_words(id: &str, s: &Series) -> String {
    let (Some(inb), Some(outb)) = (s.inbound.back(), s.outbound.back()) else {
        return "measuring…".into();
    };
    if id == "wan" {
        format!("{} down, {} up right now", bits(*inb), bits(*outb))
    } else {
        format!("{} in, {} out right now", bits(*inb), bits(*outb))
    }
}

/// Bits per second in words: "48 Mbit/s", "950 kbit/s", "1.2 Gbit/s".
pub fn bits(bps: f64) -> String {
    let (v, unit) = if bps >= 1e9 {
        (bps / 1e9, "Gbit/s")
    } else if bps >= 1e6 {
        (bps / 1e6, "Mbit/s")
    } else if bps >= 1e3 {
        (bps / 1e3, "kbit/s")
    } else {
        (bps, "bit/s")
    };
    if v >= 10.0 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// A small SVG line graph of a series, drawn here (no script): in and out against the same
/// scale. Built from numbers only, so it is safe to insert as markup.
fn sparkline(s: &Series) -> String {
    const W: f64 = 240.0;
    const H: f64 = 40.0;
    let max = s
        .inbound
        .iter()
        .chain(s.outbound.iter())
        .fold(1.0_f64, |m, v| m.max(*v));
    let line = |ring: &VecDeque<f64>| {
        let n = ring.len().max(2) as f64 - 1.0;
        let mut pts = String::new();
        for (i, v) in ring.iter().enumerate() {
            let x = i as f64 / n * W;
            let y = H - (v / max) * (H - 2.0) - 1.0;
            let _ = write!(pts, "{x:.1},{y:.1} ");
        }
        pts
    };
    format!(
        "<svg class=\"sparkline\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"Traffic over the last minutes\"><polyline class=\"in\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" points=\"{}\"/><polyline class=\"out\" fill=\"none\" stroke=\"currentColor\" stroke-opacity=\"0.45\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        line(&s.inbound),
        line(&s.outbound)
    )
}

#[derive(Template)]
#[template(path = "partials/network_card.html")]
struct Card {
    set: bool,
    trouble: Option<String>,
    internet_up: bool,
    speed: String,
    active: usize,
    network_path: &'static str,
}

/// The dashboard's Network card (loaded by its own request): internet up or down, speed now,
/// devices active. With no router connected, one line pointing to the Network page.
pub async fn card(State(state): State<AppState>, _ctx: Ctx) -> Result<Response, WebError> {
    let mut card = Card {
        set: true,
        trouble: None,
        internet_up: false,
        speed: String::new(),
        active: 0,
        network_path: paths::NETWORK,
    };
    match state.router.state().await {
        RouterState::NotSet => card.set = false,
        RouterState::Trouble { error, .. } => card.trouble = Some(error.plain()),
        RouterState::Up(o) => {
            card.internet_up = o.internet_up();
            card.active = o.leases.active();
            if let Ok(series) = state.router.traffic().await
                && let Some(wan) = series.get("wan")
                && let Some(down) = wan.inbound.back()
            {
                card.speed = format!("{} down right now", bits(*down));
            }
        }
    }
    Ok(Html(card.render()?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_read_in_words() {
        assert_eq!(bits(48_000_000.0), "48 Mbit/s");
        assert_eq!(bits(8_000_000.0), "8.0 Mbit/s");
        assert_eq!(bits(950_000.0), "950 kbit/s");
        assert_eq!(bits(1_200_000_000.0), "1.2 Gbit/s");
        assert_eq!(bits(0.0), "0.0 bit/s");
    }

    #[test]
    fn the_sparkline_is_numbers_only() {
        let mut s = Series::default();
        s.inbound.extend([0.0, 5.0, 10.0]);
        s.outbound.extend([1.0, 1.0, 1.0]);
        let svg = sparkline(&s);
        assert!(
            svg.contains("points=\"0.0,39.0 120.0,20.0 240.0,1.0 \""),
            "{svg}"
        );
    }
}
