//! OPNsense's REST API, as Homelab uses it: read-only views of the router (system, interfaces,
//! live traffic counters, gateways, DHCP leases, recent firewall blocks) and one thing it
//! writes, Unbound host overrides marked as Homelab's ("Homelab: <app slug>").
//!
//! The router's certificate is its own self-signed one, so it is pinned on first use like an
//! SSH host key: [`OpnSense::first_contact`] returns its SHA-256 fingerprint for the owner to
//! confirm, and a later certificate that differs is [`OpnSenseError::CertChanged`], which
//! stops every call until the owner accepts the new one.
//!
//! Routes and answer shapes are opnsense/core's at the tags 25.1 and 26.1 (cited beside each
//! call; the differences are in /work/research-16/opnsense.md). Answers carry numbers as
//! strings in places ("8589934592", "1.2 ms", ""), so numbers are read leniently.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http_client::{self, HttpClient, HttpError, Method, SeenCert, StatusCode, Url};
use crate::secrets::Secret;

/// Every call is bounded: a router that does not answer within this is reported as down
/// rather than holding a page.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Answers read whole are refused past this (a router's lease table or log is far smaller).
const BODY_LIMIT: u64 = 4 << 20;
/// Firewall blocks kept (newest first).
pub const MAX_BLOCKS: usize = 50;
/// Leases kept for the panel (the count covers all of them).
pub const MAX_LEASES: usize = 500;
/// Interfaces and gateways kept: a router has a handful; a bound keeps a strange answer small.
const MAX_ROWS: usize = 64;
/// Host overrides read: Homelab's are one per app, the owner's their own.
const MAX_OVERRIDES: usize = 5000;
/// The description that marks an override as Homelab's; anything else is the owner's.
pub const OURS_PREFIX: &str = "Homelab: ";

#[derive(Debug, thiserror::Error)]
pub enum OpnSenseError {
    #[error("“{0}” is not a router address: it needs https:// and a host, and nothing after it")]
    BadUrl(String),
    #[error("the key or secret has characters a router key never has")]
    BadCredential,
    #[error("the router's certificate changed: it is now {seen}, not {pinned} as confirmed")]
    CertChanged { pinned: String, seen: String },
    #[error("the router did not accept the key and secret (401)")]
    Unauthorized,
    #[error("the router's key may not read {0} (403): give its user that privilege")]
    Forbidden(String),
    #[error("the router has no {0} (404)")]
    NotFound(String),
    #[error("could not reach the router: {0}")]
    Unreachable(String),
    #[error("the secure connection to the router failed: {0}")]
    Tls(String),
    #[error("the router answered {status} to {path}")]
    Status { status: u16, path: String },
    #[error("the router's answer to {path} was not understood: {reason}")]
    Parse { path: String, reason: String },
    #[error("the router refused the entry: {0}")]
    Refused(String),
    #[error("that entry is not Homelab's (its description is not “Homelab: …”); left alone")]
    NotOurs,
    #[error("“{0}” is not a usable name or address for a router entry")]
    BadEntry(String),
}

impl OpnSenseError {
    /// One sentence in the owner's words, with what to do (Basic mode); the `Display` form
    /// carries the technical detail for Advanced mode and the log.
    pub fn plain(&self) -> String {
        match self {
            OpnSenseError::BadUrl(_) => {
                "That is not your router's address. Type it as it appears in your browser when you open the router, for example https://192.168.1.1.".into()
            }
            OpnSenseError::BadCredential => {
                "The key or secret does not look like one the router makes. Copy them again from the file the router gave you.".into()
            }
            OpnSenseError::CertChanged { .. } => {
                "Your router now shows a different identity than the one you confirmed. If you replaced its certificate yourself, accept the new one; otherwise something may be pretending to be your router.".into()
            }
            OpnSenseError::Unauthorized => {
                "The router did not accept the key and secret. Make a new key for your user on the router's Users page (System, Access, Users) and enter it here.".into()
            }
            OpnSenseError::Forbidden(_) => {
                "The router's user for Homelab may not see everything. Give that user more privileges on the router.".into()
            }
            OpnSenseError::Unreachable(_) | OpnSenseError::Tls(_) => {
                "Your router is not answering. Check that it is on and that its address is right.".into()
            }
            OpnSenseError::NotFound(_)
            | OpnSenseError::Status { .. }
            | OpnSenseError::Parse { .. } => {
                "Your router answered in a way Homelab does not understand. Updating the router may help.".into()
            }
            OpnSenseError::Refused(_) | OpnSenseError::BadEntry(_) => {
                "The router refused an app's name.".into()
            }
            OpnSenseError::NotOurs => "That router entry is yours, so Homelab left it alone.".into(),
        }
    }

    /// Whether the router could not be reached at all (as opposed to answering wrongly).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, OpnSenseError::Unreachable(_) | OpnSenseError::Tls(_))
    }
}

/// The router: its address, API key and secret, and the pinned certificate.
pub struct OpnSense {
    /// `https://host[:port]`, no path: the API is under `/api/`.
    base: Url,
    key: Secret,
    secret: Secret,
    /// Canonical fingerprint of the pinned certificate; None only for plain http.
    pin: Option<String>,
    client: HttpClient,
    /// The certificate the last handshake showed, to tell a changed certificate apart.
    seen: SeenCert,
}

/// An address the owner typed, checked: https (or http, which [`is_plain_http`] flags for
/// a warning), a host, an optional port, and nothing else — no user, path, query or fragment,
/// so nothing the owner typed reaches a request but the host.
pub fn parse_router_url(url: &str) -> Result<Url, OpnSenseError> {
    let bad = || OpnSenseError::BadUrl(url.chars().take(100).collect());
    let trimmed = url.trim();
    if trimmed.len() > 200 || trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let parsed = http_client::parse_url(trimmed).map_err(|_| bad())?;
    let clean = matches!(parsed.path(), "" | "/")
        && parsed.query().is_none()
        && parsed.fragment().is_none();
    if !clean {
        return Err(bad());
    }
    let host = parsed.host_str().unwrap_or_default();
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok {
        return Err(bad());
    }
    let mut base = parsed;
    base.set_path("");
    Ok(base)
}

/// Whether the address is plain http (no certificate to pin; everything travels readable).
pub fn is_plain_http(url: &Url) -> bool {
    url.scheme() == "http"
}

/// Keys and secrets OPNsense makes are base64 (80 characters); anything else (quotes,
/// spaces, line breaks, markup) is refused before it reaches a header.
fn credential_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '.'))
}

/// Checks a key and secret's form before anything is sent.
pub fn credentials_ok(key: &Secret, secret: &Secret) -> Result<(), OpnSenseError> {
    let ok = [key, secret]
        .iter()
        .all(|s| s.expose_str().is_some_and(credential_ok));
    if ok {
        Ok(())
    } else {
        Err(OpnSenseError::BadCredential)
    }
}

fn settings() -> http_client::Settings {
    // The CA file is not read by a pinned client; the path only fills the field.
    let mut s = http_client::Settings::new(Path::new("/nonexistent"), crate::VERSION);
    s.connect_timeout = TIMEOUT;
    s.idle_timeout = TIMEOUT;
    s.overall_timeout = Some(TIMEOUT);
    // The API never redirects; one hop at most (http to https on a misconfigured box).
    s.max_redirects = 1;
    s
}

impl OpnSense {
    /// A client for the router at `url` with its API key and secret, trusting exactly the
    /// certificate `pin` (a SHA-256 fingerprint). `pin` may be None only for plain http.
    pub fn new(
        url: &str,
        key: Secret,
        secret: Secret,
        pin: Option<String>,
    ) -> Result<OpnSense, OpnSenseError> {
        let base = parse_router_url(url)?;
        credentials_ok(&key, &secret)?;
        let pin = match pin {
            Some(p) => Some(http_client::normal_fingerprint(&p).ok_or_else(|| {
                OpnSenseError::Tls("the confirmed certificate's fingerprint is not valid".into())
            })?),
            None if is_plain_http(&base) => None,
            // An https router with nothing pinned would trust anyone: first contact first.
            None => {
                return Err(OpnSenseError::Tls(
                    "no certificate was confirmed for this router".into(),
                ));
            }
        };
        let (client, seen) = HttpClient::pinned(settings(), pin.as_deref());
        Ok(OpnSense {
            base,
            key,
            secret,
            pin,
            client,
            seen,
        })
    }

    /// Connects to the router and returns its certificate's SHA-256 fingerprint, for the
    /// owner to compare with the one the router's own page shows. Sends no credentials
    /// (the one request made is unauthenticated and answered 401). None for plain http,
    /// which has no certificate.
    pub async fn first_contact(url: &str) -> Result<Option<String>, OpnSenseError> {
        let base = parse_router_url(url)?;
        if is_plain_http(&base) {
            return Ok(None);
        }
        let (client, seen) = HttpClient::pinned(settings(), None);
        let target = format!("{}api/core/system/status", base.as_str());
        match client.call(Method::GET, &target, None, None).await {
            Ok(_) => {}
            Err(e) => {
                if seen.fingerprint().is_none() {
                    return Err(transport(e));
                }
            }
        }
        seen.fingerprint()
            .map(Some)
            .ok_or_else(|| OpnSenseError::Tls("the router showed no certificate".into()))
    }

    /// The address (scheme, host, port) this client talks to.
    pub fn url(&self) -> &Url {
        &self.base
    }

    /// Turns a transport failure into ours, telling a changed certificate apart.
    fn failure(&self, e: HttpError) -> OpnSenseError {
        if let (HttpError::Tls { .. }, Some(pin), Some(seen)) =
            (&e, &self.pin, self.seen.fingerprint())
            && *pin != seen
        {
            return OpnSenseError::CertChanged {
                pinned: pin.clone(),
                seen,
            };
        }
        transport(e)
    }

    /// One API call; `path` is below `/api/`. Statuses other than 200 become errors.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, OpnSenseError> {
        let url = format!("{}api/{path}", self.base.as_str());
        let (key, secret) = (
            self.key.expose_str().unwrap_or_default(),
            self.secret.expose_str().unwrap_or_default(),
        );
        let resp = self
            .client
            .call(method, &url, Some((key, secret)), body)
            .await
            .map_err(|e| self.failure(e))?;
        let shown_path = path.split('?').next().unwrap_or(path).to_string();
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err(OpnSenseError::Unauthorized),
            StatusCode::FORBIDDEN => return Err(OpnSenseError::Forbidden(shown_path)),
            StatusCode::NOT_FOUND => return Err(OpnSenseError::NotFound(shown_path)),
            other => {
                return Err(OpnSenseError::Status {
                    status: other.as_u16(),
                    path: shown_path,
                });
            }
        }
        let bytes = resp.bytes(BODY_LIMIT).await.map_err(|e| self.failure(e))?;
        serde_json::from_slice(&bytes).map_err(|e| OpnSenseError::Parse {
            path: shown_path,
            reason: e.to_string(),
        })
    }

    async fn get(&self, path: &str) -> Result<Value, OpnSenseError> {
        self.request(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, OpnSenseError> {
        self.request(Method::POST, path, Some(body)).await
    }

    /// Checks that the key and secret work (one small read): the connect flow's last step.
    pub async fn check(&self) -> Result<System, OpnSenseError> {
        let info = self.get("diagnostics/system/systemInformation").await?;
        Ok(system_from(&info, &Value::Null, &Value::Null, &Value::Null))
    }

    /// Everything the Router panel shows, in one go. System and interfaces must answer; the
    /// other parts (gateways, leases, firewall log) may be refused by a key's privileges or
    /// missing on a version, which leaves them empty and names them in `missing`.
    pub async fn overview(&self) -> Result<Overview, OpnSenseError> {
        // diagnostics/system/* and cpu_usage: Diagnostics/Api/SystemController.php,
        // CpuUsageController.php; interfaces: Interfaces/Api/OverviewController.php.
        let (info, time, resources, cpu, ifaces) = tokio::join!(
            self.get("diagnostics/system/systemInformation"),
            self.get("diagnostics/system/systemTime"),
            self.get("diagnostics/system/systemResources"),
            self.get("diagnostics/cpu_usage/getCPUType"),
            self.get("interfaces/overview/interfacesInfo"),
        );
        let info = info?;
        let ifaces = ifaces?;
        let mut missing = Vec::new();
        let time = optional(&mut missing, "uptime", time);
        let resources = optional(&mut missing, "memory", resources);
        let cpu = optional(&mut missing, "processor", cpu);
        let system = system_from(&info, &time, &resources, &cpu);
        let interfaces = interfaces_from(&ifaces);

        // Diagnostics/Api/FirewallController.php logAction (scripts/filter/read_log.py):
        // the newest entries of every kind; passes are dropped here, so more are asked for.
        let log_path = format!("diagnostics/firewall/log?limit={}", MAX_BLOCKS * 4);
        let (gateways, leases, log) = tokio::join!(
            // Routes/Api/GatewayController.php statusAction.
            self.get("routes/gateway/status"),
            self.leases(),
            self.get(&log_path),
        );
        let gateways = gateways_from(&optional(&mut missing, "gateways", gateways));
        let leases = match leases {
            Ok(l) => l,
            Err(e) => {
                missing.push(format!("leases: {e}"));
                Leases::default()
            }
        };
        let blocks = blocks_from(&optional(&mut missing, "firewall log", log));
        Ok(Overview {
            system,
            interfaces,
            gateways,
            leases,
            blocks,
            missing,
        })
    }

    /// DHCP leases from whichever server the router runs: ISC (`dhcpv4/leases/searchLease`,
    /// in core up to 25.x, a plugin from 26.1 on) when it has any, else Kea
    /// (`kea/leases4/search`, both versions).
    async fn leases(&self) -> Result<Leases, OpnSenseError> {
        let (isc, kea) = tokio::join!(
            self.get("dhcpv4/leases/searchLease"),
            self.get("kea/leases4/search"),
        );
        match (isc, kea) {
            (Ok(isc), _) if rows(&isc).next().is_some() => Ok(leases_from(&isc, LeaseServer::Isc)),
            (_, Ok(kea)) => Ok(leases_from(&kea, LeaseServer::Kea)),
            (Ok(isc), Err(_)) => Ok(leases_from(&isc, LeaseServer::Isc)),
            (Err(_), Err(e)) => Err(e),
        }
    }

    /// The byte counters of every assigned interface, with the router's clock
    /// (Diagnostics/Api/TrafficController.php interfaceAction, scripts/interfaces/
    /// traffic_stats.php: counters are strings, `time` a float of seconds).
    pub async fn traffic(&self) -> Result<TrafficSample, OpnSenseError> {
        let v = self.get("diagnostics/traffic/interface").await?;
        let time = num(&v["time"]).ok_or_else(|| OpnSenseError::Parse {
            path: "diagnostics/traffic/interface".into(),
            reason: "no time".into(),
        })?;
        let mut interfaces = BTreeMap::new();
        if let Some(map) = v["interfaces"].as_object() {
            for (id, c) in map.iter().take(MAX_ROWS) {
                let (Some(inb), Some(outb)) = (num(&c["inbytes"]), num(&c["outbytes"])) else {
                    continue;
                };
                interfaces.insert(
                    id.clone(),
                    Counters {
                        name: text(&c["name"]).unwrap_or_else(|| id.to_uppercase()),
                        in_bytes: inb as u64,
                        out_bytes: outb as u64,
                    },
                );
            }
        }
        Ok(TrafficSample { time, interfaces })
    }

    /// Every Unbound host override on the router, Homelab's and the owner's
    /// (Unbound/Api/SettingsController.php searchHostOverrideAction).
    pub async fn host_overrides(&self) -> Result<Vec<HostOverride>, OpnSenseError> {
        let v = self
            .get("unbound/settings/searchHostOverride?rowCount=-1&current=1")
            .await?;
        Ok(rows(&v)
            .take(MAX_OVERRIDES)
            .filter_map(|r| {
                Some(HostOverride {
                    uuid: text(&r["uuid"])?,
                    host: text(&r["hostname"]).unwrap_or_default(),
                    domain: text(&r["domain"]).unwrap_or_default(),
                    server: text(&r["server"]).unwrap_or_default(),
                    description: text(&r["description"]).unwrap_or_default(),
                    enabled: text(&r["enabled"]).is_none_or(|e| e == "1"),
                })
            })
            .collect())
    }

    /// Makes `host.domain` answer `ip`, in an override marked `description` (which must be
    /// Homelab's, "Homelab: <slug>"). Idempotent by (host, domain, description): an existing
    /// one is updated in place (or left as it is), never duplicated. Returns its uuid. The
    /// change takes effect after [`OpnSense::apply`].
    pub async fn put_host_override(
        &self,
        host: &str,
        domain: &str,
        ip: &str,
        description: &str,
    ) -> Result<String, OpnSenseError> {
        if !description.starts_with(OURS_PREFIX) || description.len() > 255 {
            return Err(OpnSenseError::NotOurs);
        }
        if !label_list_ok(host, true) {
            return Err(OpnSenseError::BadEntry(host.chars().take(100).collect()));
        }
        if !label_list_ok(domain, false) {
            return Err(OpnSenseError::BadEntry(domain.chars().take(100).collect()));
        }
        let ip_addr: std::net::IpAddr = ip
            .parse()
            .map_err(|_| OpnSenseError::BadEntry(ip.chars().take(100).collect()))?;
        let rr = if ip_addr.is_ipv4() { "A" } else { "AAAA" };
        let fields = json!({"host": {
            "enabled": "1", "hostname": host, "domain": domain, "rr": rr,
            "server": ip_addr.to_string(), "description": description,
        }});
        let existing = self.host_overrides().await?.into_iter().find(|o| {
            o.host.eq_ignore_ascii_case(host)
                && o.domain.eq_ignore_ascii_case(domain)
                && o.description == description
        });
        let (path, uuid) = match existing {
            Some(o) if o.enabled && o.server == ip_addr.to_string() => return Ok(o.uuid),
            Some(o) => (
                format!("unbound/settings/setHostOverride/{}", o.uuid),
                Some(o.uuid),
            ),
            None => ("unbound/settings/addHostOverride".to_string(), None),
        };
        let answer = self.post(&path, &fields).await?;
        saved(&answer)?;
        match uuid.or_else(|| text(&answer["uuid"])) {
            Some(u) => Ok(u),
            None => Err(OpnSenseError::Parse {
                path,
                reason: "no uuid in the answer".into(),
            }),
        }
    }

    /// Deletes one of Homelab's overrides; one already gone is fine. An override that is
    /// not Homelab's is refused ([`OpnSenseError::NotOurs`]) and left alone.
    pub async fn delete_host_override(&self, uuid: &str) -> Result<(), OpnSenseError> {
        let Some(found) = self
            .host_overrides()
            .await?
            .into_iter()
            .find(|o| o.uuid == uuid)
        else {
            return Ok(());
        };
        if !found.description.starts_with(OURS_PREFIX) {
            return Err(OpnSenseError::NotOurs);
        }
        // The uuid came from the router's own list, so it is safe in the path.
        let answer = self
            .post(
                &format!("unbound/settings/delHostOverride/{}", found.uuid),
                &json!({}),
            )
            .await?;
        match text(&answer["result"]).as_deref() {
            Some("deleted") | Some("not found") => Ok(()),
            _ => Err(OpnSenseError::Refused(answer.to_string())),
        }
    }

    /// Applies saved overrides: Unbound's configuration is regenerated and reloaded
    /// (Base/ApiMutableServiceControllerBase.php reconfigureAction: {"status":"ok"}).
    pub async fn apply(&self) -> Result<(), OpnSenseError> {
        let answer = self.post("unbound/service/reconfigure", &json!({})).await?;
        match text(&answer["status"]).as_deref() {
            Some("ok") => Ok(()),
            _ => Err(OpnSenseError::Refused(format!(
                "applying the names: {answer}"
            ))),
        }
    }
}

/// A part of the overview the router may refuse: its value, or Null with the reason noted.
fn optional(missing: &mut Vec<String>, name: &str, r: Result<Value, OpnSenseError>) -> Value {
    r.unwrap_or_else(|e| {
        missing.push(format!("{name}: {e}"));
        Value::Null
    })
}

/// Transport failures in our words (the host is the owner's router, so it is not repeated).
fn transport(e: HttpError) -> OpnSenseError {
    match e {
        HttpError::BadUrl(u) => OpnSenseError::BadUrl(u),
        HttpError::Tls { reason, .. } => OpnSenseError::Tls(reason),
        HttpError::Unreachable { reason, .. } => OpnSenseError::Unreachable(reason),
        other => OpnSenseError::Unreachable(other.to_string()),
    }
}

/// addBase/setBase (Base/ApiMutableModelControllerBase.php): {"result":"saved"} or
/// {"result":"failed","validations":{"host.server":"…"}}.
fn saved(answer: &Value) -> Result<(), OpnSenseError> {
    if text(&answer["result"]).as_deref() == Some("saved") {
        return Ok(());
    }
    let why = match answer["validations"].as_object() {
        Some(v) => v
            .iter()
            .take(5)
            .map(|(k, m)| format!("{k}: {}", text(m).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; "),
        None => "it did not say why".into(),
    };
    Err(OpnSenseError::Refused(why))
}

/// Host names and domains as Unbound's model accepts them (HostnameField): dot-separated
/// labels of letters, digits, hyphens and underscores, not starting or ending with a hyphen.
fn label_list_ok(name: &str, allow_wildcard: bool) -> bool {
    if allow_wildcard && name == "*" {
        return true;
    }
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

// --- What the router says, as Homelab shows it ---------------------------------------------

#[derive(Debug, Clone, Default)]
pub struct System {
    /// "OPNsense.localdomain".
    pub name: String,
    /// "25.1.12", "26.1.2_1".
    pub version: String,
    /// As the router words it: "3 days, 01:02:03".
    pub uptime: String,
    pub uptime_secs: Option<u64>,
    /// "Intel(R) Celeron(R) N5105 @ 2.00GHz (4 cores, 4 threads)".
    pub cpu: Option<String>,
    /// "0.21, 0.18, 0.15".
    pub load: Option<String>,
    pub memory_total: Option<u64>,
    pub memory_used: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Interface {
    /// The router's identifier: "wan", "lan", "opt1".
    pub id: String,
    /// The owner's name for it: "WAN", "LAN".
    pub name: String,
    pub device: String,
    pub up: bool,
    /// The router's word: "up", "down", "no carrier".
    pub status: String,
    pub addr4: String,
    pub addr6: String,
}

#[derive(Debug, Clone)]
pub struct Gateway {
    pub name: String,
    pub address: String,
    pub online: bool,
    /// dpinger's status as the router translates it: "Online", "Offline", "Packetloss".
    pub status: String,
    pub delay_ms: Option<f64>,
    pub loss_pct: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeaseServer {
    #[default]
    None,
    Isc,
    Kea,
}

#[derive(Debug, Clone)]
pub struct Lease {
    pub address: String,
    pub mac: String,
    pub hostname: String,
    /// ISC says whether the device answers now; Kea does not.
    pub online: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct Leases {
    pub server: LeaseServer,
    /// All the leases the router reported (the list below is capped).
    pub total: usize,
    pub list: Vec<Lease>,
}

impl Leases {
    /// Devices on the network now: those ISC sees online, or (Kea, which does not say) every
    /// lease the router holds.
    pub fn active(&self) -> usize {
        match self.server {
            LeaseServer::Isc => self.list.iter().filter(|l| l.online == Some(true)).count(),
            _ => self.total,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Block {
    pub time: String,
    pub interface: String,
    pub source: String,
    pub destination: String,
    pub port: String,
    pub protocol: String,
}

#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub system: System,
    pub interfaces: Vec<Interface>,
    pub gateways: Vec<Gateway>,
    pub leases: Leases,
    /// Newest first, at most [`MAX_BLOCKS`].
    pub blocks: Vec<Block>,
    /// Parts the router would not give (privileges, a missing feature), with why.
    pub missing: Vec<String>,
}

impl Overview {
    pub fn wan(&self) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.id == "wan")
    }

    /// The internet is up when the WAN link is up and a gateway answers (or the router
    /// monitors none).
    pub fn internet_up(&self) -> bool {
        self.wan().is_some_and(|w| w.up)
            && (self.gateways.is_empty() || self.gateways.iter().any(|g| g.online))
    }
}

/// One interface's byte counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Counters {
    pub name: String,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// Counters of every interface at one moment of the router's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSample {
    /// Seconds (with fractions) on the router's clock.
    pub time: f64,
    pub interfaces: BTreeMap<String, Counters>,
}

/// Bits per second in and out of one interface between two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub id: String,
    pub name: String,
    pub in_bps: f64,
    pub out_bps: f64,
}

impl TrafficSample {
    /// The rates from `earlier` to this sample: delta bytes × 8 / elapsed seconds. An
    /// interface whose counter went backwards (a reset or a reboot) is left out, as is
    /// everything when no time passed.
    pub fn rates_since(&self, earlier: &TrafficSample) -> Vec<Rate> {
        let elapsed = self.time - earlier.time;
        if elapsed <= 0.0 || !elapsed.is_finite() {
            return Vec::new();
        }
        self.interfaces
            .iter()
            .filter_map(|(id, now)| {
                let then = earlier.interfaces.get(id)?;
                let din = now.in_bytes.checked_sub(then.in_bytes)?;
                let dout = now.out_bytes.checked_sub(then.out_bytes)?;
                Some(Rate {
                    id: id.clone(),
                    name: now.name.clone(),
                    in_bps: din as f64 * 8.0 / elapsed,
                    out_bps: dout as f64 * 8.0 / elapsed,
                })
            })
            .collect()
    }
}

/// An Unbound host override: `host.domain` answers `server`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostOverride {
    pub uuid: String,
    pub host: String,
    pub domain: String,
    pub server: String,
    pub description: String,
    pub enabled: bool,
}

impl HostOverride {
    pub fn is_ours(&self) -> bool {
        self.description.starts_with(OURS_PREFIX)
    }
}

// --- Lenient reading -----------------------------------------------------------------------

/// A number given as a number or as text ("12", 12, "12.5", " 1.2 ms", "0.0 %"); None for
/// "", "~", "N/A" and anything else.
pub fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            let end = s
                .char_indices()
                .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && *c == '-')))
                .map_or(s.len(), |(i, _)| i);
            s[..end].parse().ok().filter(|f: &f64| f.is_finite())
        }
        _ => None,
    }
}

/// Text, bounded (a router's names are short; a bound keeps a strange answer small); None
/// for missing or empty.
fn text(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
        _ => return None,
    };
    (!s.is_empty()).then(|| s.chars().take(200).collect())
}

/// The rows of a recordset answer ({"rows": [...]}) or of a bare list.
fn rows(v: &Value) -> impl Iterator<Item = &Value> {
    let list = match v {
        Value::Array(a) => a.as_slice(),
        _ => v["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]),
    };
    list.iter()
}

/// "3 days, 01:02:03" or "01:02:03" (SystemController::formatUptime) in seconds.
fn uptime_secs(s: &str) -> Option<u64> {
    let (days, clock) = match s.split_once(',') {
        Some((d, c)) => (d.split_whitespace().next()?.parse::<u64>().ok()?, c.trim()),
        None => (0, s.trim()),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [h, m, s] => Some(days * 86400 + h * 3600 + m * 60 + s),
        _ => None,
    }
}

/// systemInformation's first "versions" line is "OPNsense 26.1.2_1-amd64".
fn version_of(info: &Value) -> String {
    let line = info["versions"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or_default();
    let word = line.split_whitespace().nth(1).unwrap_or_default();
    let without_arch = word.rsplit_once('-').map_or(word, |(v, _)| v);
    without_arch.chars().take(40).collect()
}

fn system_from(info: &Value, time: &Value, resources: &Value, cpu: &Value) -> System {
    let uptime = text(&time["uptime"]).unwrap_or_default();
    let memory = &resources["memory"];
    System {
        name: text(&info["name"]).unwrap_or_default(),
        version: version_of(info),
        uptime_secs: uptime_secs(&uptime),
        uptime,
        cpu: cpu.as_array().and_then(|a| a.first()).and_then(text),
        load: text(&time["loadavg"]),
        memory_total: num(&memory["total"]).map(|f| f as u64),
        memory_used: num(&memory["used"]).map(|f| f as u64),
    }
}

fn interfaces_from(v: &Value) -> Vec<Interface> {
    rows(v)
        .filter(|r| text(&r["identifier"]).is_some())
        .take(MAX_ROWS)
        .map(|r| {
            let status = text(&r["status"]).unwrap_or_else(|| "down".into());
            Interface {
                id: text(&r["identifier"]).unwrap_or_default(),
                name: text(&r["description"]).unwrap_or_default(),
                device: text(&r["device"]).unwrap_or_default(),
                up: status == "up",
                status,
                addr4: text(&r["addr4"]).unwrap_or_default(),
                addr6: text(&r["addr6"]).unwrap_or_default(),
            }
        })
        .collect()
}

fn gateways_from(v: &Value) -> Vec<Gateway> {
    v["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .take(MAX_ROWS)
        .map(|g| {
            let status = text(&g["status"]).unwrap_or_default();
            Gateway {
                name: text(&g["name"]).unwrap_or_default(),
                address: text(&g["address"]).unwrap_or_default(),
                // scripts/routes/gateway_status.php: "none" is dpinger's "all well";
                // "delay"/"loss" still carry traffic.
                online: matches!(status.as_str(), "none" | "delay" | "loss" | "delay+loss"),
                status: text(&g["status_translated"]).unwrap_or(status),
                delay_ms: num(&g["delay"]),
                loss_pct: num(&g["loss"]),
            }
        })
        .collect()
}

fn leases_from(v: &Value, server: LeaseServer) -> Leases {
    let all: Vec<&Value> = rows(v).collect();
    let list = all
        .iter()
        .take(MAX_LEASES)
        .map(|r| Lease {
            address: text(&r["address"]).unwrap_or_default(),
            // ISC: "mac"; Kea: "hwaddr".
            mac: text(&r["mac"])
                .or_else(|| text(&r["hwaddr"]))
                .unwrap_or_default(),
            hostname: text(&r["hostname"]).unwrap_or_default(),
            online: text(&r["status"]).map(|s| s == "online"),
        })
        .collect();
    Leases {
        server,
        total: num(&v["total"]).map_or(all.len(), |t| t as usize),
        list,
    }
}

fn blocks_from(v: &Value) -> Vec<Block> {
    rows(v)
        .filter(|r| text(&r["action"]).as_deref() == Some("block"))
        .take(MAX_BLOCKS)
        .map(|r| Block {
            time: text(&r["__timestamp__"]).unwrap_or_default(),
            interface: text(&r["interface"]).unwrap_or_default(),
            source: text(&r["src"]).unwrap_or_default(),
            destination: text(&r["dst"]).unwrap_or_default(),
            port: text(&r["dstport"]).unwrap_or_default(),
            protocol: text(&r["protoname"]).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_leniently() {
        assert_eq!(num(&json!("12")), Some(12.0));
        assert_eq!(num(&json!(12)), Some(12.0));
        assert_eq!(num(&json!("12.5")), Some(12.5));
        assert_eq!(num(&json!(3221225472.0)), Some(3221225472.0));
        assert_eq!(num(&json!("1.2 ms")), Some(1.2));
        assert_eq!(num(&json!("0.0 %")), Some(0.0));
        assert_eq!(num(&json!("")), None);
        assert_eq!(num(&json!("~")), None);
        assert_eq!(num(&json!("N/A")), None);
        assert_eq!(num(&json!(null)), None);
    }

    #[test]
    fn uptime_and_version_are_read_as_the_router_words_them() {
        assert_eq!(uptime_secs("3 days, 01:02:03"), Some(3 * 86400 + 3723));
        assert_eq!(uptime_secs("1 day, 00:00:01"), Some(86401));
        assert_eq!(uptime_secs("00:10:00"), Some(600));
        assert_eq!(uptime_secs("soon"), None);
        let info = json!({"versions": ["OPNsense 26.1.2_1-amd64", "FreeBSD 14.3"]});
        assert_eq!(version_of(&info), "26.1.2_1");
        assert_eq!(version_of(&json!({})), "");
    }

    #[test]
    fn router_addresses_are_only_scheme_host_and_port() {
        for good in [
            "https://192.168.1.1",
            "https://router.home.arpa:8443/",
            "http://10.0.0.1",
            " https://[fd00::1] ",
        ] {
            assert!(parse_router_url(good).is_ok(), "{good} refused");
        }
        for bad in [
            "ftp://192.168.1.1",
            "https://192.168.1.1/api/x",
            "https://192.168.1.1?x=1",
            "https://user:pw@192.168.1.1",
            "https://192.168.1.1\r\nX: y",
            "https://192.168.1.1\"><script>",
            "javascript:alert(1)",
            "192.168.1.1",
            "",
        ] {
            assert!(parse_router_url(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_router_url("https://r:8443/").unwrap().as_str(),
            "https://r:8443/"
        );
    }

    #[test]
    fn credentials_with_markup_or_line_breaks_are_refused() {
        let s = |v: &str| Secret::from_string(v.to_string());
        let pin = Some("AA".repeat(32));
        assert!(OpnSense::new("https://r", s("abc+/="), s("def"), pin.clone()).is_ok());
        for bad in ["a b", "a\r\nb", "<script>", "x\"y", "", "ä"] {
            let e = OpnSense::new("https://r", s(bad), s("ok"), pin.clone()).err();
            assert!(matches!(e, Some(OpnSenseError::BadCredential)), "{bad:?}");
        }
        // https with nothing pinned is refused: first contact comes first.
        assert!(OpnSense::new("https://r", s("k"), s("s"), None).is_err());
        assert!(OpnSense::new("http://r", s("k"), s("s"), None).is_ok());
    }

    #[test]
    fn rates_come_from_two_samples_and_skip_resets() {
        let sample = |t: f64, inb: u64, outb: u64| TrafficSample {
            time: t,
            interfaces: BTreeMap::from([(
                "wan".to_string(),
                Counters {
                    name: "WAN".into(),
                    in_bytes: inb,
                    out_bytes: outb,
                },
            )]),
        };
        let r = sample(12.0, 13_000_000, 2_000_000).rates_since(&sample(10.0, 1_000_000, 0));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].in_bps, 48_000_000.0);
        assert_eq!(r[0].out_bps, 8_000_000.0);
        assert!(
            sample(12.0, 5, 5)
                .rates_since(&sample(10.0, 10, 10))
                .is_empty()
        );
        assert!(
            sample(10.0, 5, 5)
                .rates_since(&sample(10.0, 1, 1))
                .is_empty()
        );
    }

    #[test]
    fn host_names_follow_unbounds_rules() {
        assert!(label_list_ok("jellyfin", true));
        assert!(label_list_ok("*", true));
        assert!(label_list_ok("home.arpa", false));
        for bad in ["", "-x", "x-", "a..b", "a b", "a;b", "ä", "*"] {
            assert!(!label_list_ok(bad, false), "{bad:?}");
        }
    }

    #[test]
    fn blocks_are_only_blocks_and_capped() {
        let entry = |action: &str| json!({"action": action, "src": "203.0.113.9", "dst": "198.51.100.2", "dstport": "22", "protoname": "tcp", "interface": "igc0", "__timestamp__": "2026-01-01T00:00:00"});
        let mut log: Vec<Value> = (0..80).map(|_| entry("block")).collect();
        log.insert(0, entry("pass"));
        let blocks = blocks_from(&Value::Array(log));
        assert_eq!(blocks.len(), MAX_BLOCKS);
        assert_eq!(blocks[0].port, "22");
    }
}
