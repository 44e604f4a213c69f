//! The names this box answers to, and the check that refuses every other `Host`.
//!
//! DNS rebinding: a web page on `evil.example` can make its own name resolve to the box's
//! address, and the victim's browser then treats the box as that page's origin: it can claim
//! an unclaimed box, read its pages, and send requests whose Origin matches their Host. The
//! defence is to answer only to names we know: `homelab.local`, the box's host name (plain and
//! `.local`), `localhost`, whatever the owner adds in Settings, and any IP address literal (an
//! address cannot be rebound: a page whose origin is the box's own address *is* the box).

use std::net::IpAddr;
use std::sync::RwLock;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::WebError;
use super::paths;
use crate::store::{Store, StoreError};

/// Settings key holding the owner's extra names, one per line.
const EXTRA_NAMES_KEY: &str = "host_names";
/// The name the box announces over mDNS.
pub const MDNS_NAME: &str = "homelab.local";
/// Enough for every name a household could give one box, small enough to check in a glance.
pub const MAX_EXTRA_NAMES: usize = 20;
/// The DNS limit for a whole name.
const MAX_NAME_LEN: usize = 253;

/// The allow-list; cheap to read on every request.
pub struct Hosts {
    /// Known at start: homelab.local, localhost, the host name (plain and `.local`).
    builtin: Vec<String>,
    /// The owner's extra names (Settings → Advanced), lower-case.
    // std RwLock: read on every request, written when the owner saves; never held across await.
    extra: RwLock<Vec<String>>,
}

impl Hosts {
    /// The built-in names of this box; the owner's are loaded by [`Hosts::load`].
    pub fn new() -> Hosts {
        let mut builtin = vec![MDNS_NAME.to_string(), "localhost".to_string()];
        if let Some(name) = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty() && h != "localhost")
        {
            builtin.push(format!("{name}.local"));
            builtin.push(name);
        }
        builtin.dedup();
        Hosts {
            builtin,
            extra: RwLock::new(Vec::new()),
        }
    }

    /// Reads the owner's names from the store (at start).
    pub async fn load(&self, store: &Store) -> Result<(), StoreError> {
        let saved = store.setting(EXTRA_NAMES_KEY).await?.unwrap_or_default();
        // Saved names were validated when saved; a hand-edited bad line is simply skipped.
        let names = saved
            .lines()
            .filter_map(|l| normalise_name(l).ok())
            .collect();
        *self.extra.write().unwrap_or_else(|p| p.into_inner()) = names;
        Ok(())
    }

    /// Checks and saves the owner's names (any whitespace or commas between them).
    pub async fn save(&self, store: &Store, input: &str) -> Result<Vec<String>, NameError> {
        let names = parse_names(input)?;
        store
            .set_setting(EXTRA_NAMES_KEY, names.join("\n"))
            .await
            .map_err(NameError::Store)?;
        *self.extra.write().unwrap_or_else(|p| p.into_inner()) = names.clone();
        Ok(names)
    }

    pub fn builtin(&self) -> &[String] {
        &self.builtin
    }

    pub fn extra(&self) -> Vec<String> {
        self.extra.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True when a `Host` header value (with or without a port) names this box.
    pub fn allows(&self, host: &str) -> bool {
        let name = strip_port(host.trim())
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if name.is_empty() {
            return false;
        }
        let literal = name.trim_start_matches('[').trim_end_matches(']');
        if literal.parse::<IpAddr>().is_ok() {
            return true;
        }
        self.builtin.contains(&name)
            || self
                .extra
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&name)
    }
}

impl Default for Hosts {
    fn default() -> Self {
        Hosts::new()
    }
}

/// Why the owner's list of names was refused.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error(
        "“{0}” is not a name a browser can use. Use letters, digits and dashes between dots, \
         e.g. homelab.lan or homelab.fritz.box."
    )]
    Invalid(String),
    #[error("At most {MAX_EXTRA_NAMES} names, please; remove some you no longer use.")]
    TooMany,
    #[error(transparent)]
    Store(StoreError),
}

fn parse_names(input: &str) -> Result<Vec<String>, NameError> {
    let mut names: Vec<String> = Vec::new();
    for raw in input.split(|c: char| c.is_whitespace() || c == ',') {
        if raw.is_empty() {
            continue;
        }
        let name = normalise_name(raw)?;
        if !names.contains(&name) {
            names.push(name);
        }
        if names.len() > MAX_EXTRA_NAMES {
            return Err(NameError::TooMany);
        }
    }
    Ok(names)
}

/// A DNS name as browsers send it in `Host`: lower-case, no trailing dot, no port.
fn normalise_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let shown = || NameError::Invalid(raw.chars().take(64).collect());
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.split('.').all(label_ok) {
        return Err(shown());
    }
    Ok(name)
}

/// "host:port" → "host", keeping bracketed IPv6 literals intact.
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        // A bare IPv6 literal has several colons and no port.
        Some((h, _)) if !h.contains(':') => h,
        _ => host,
    }
}

/// Middleware: refuses requests for names that are not this box's, before anything else runs
/// (the setup wizard, sign-in, redirects). `/healthz` and static assets answer any name: they
/// reveal nothing, and the refusal page needs its stylesheet.
pub async fn check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == paths::HEALTHZ || path.starts_with(paths::STATIC_PREFIX) {
        return next.run(req).await;
    }
    // Exactly one Host, and an absolute-form target (`GET http://name/…`) must name the box
    // too: either could otherwise carry a name other than the one that was checked.
    let mut given = req.headers().get_all(header::HOST).iter();
    let (host, another) = (given.next(), given.next());
    let allowed = another.is_none()
        && host
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| state.hosts.allows(h))
        && req
            .uri()
            .authority()
            .is_none_or(|a| state.hosts.allows(a.as_str()));
    if allowed {
        return next.run(req).await;
    }
    WebError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "unknown_host",
        "Homelab does not answer to this name, to protect it from other websites. Open it as \
         http://homelab.local or by its address (shown on the box's screen); to use this name \
         too, add it in Settings → Advanced → Names for this box.",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port("homelab.local:8080"), "homelab.local");
        assert_eq!(strip_port("homelab.local"), "homelab.local");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("::1"), "::1");
    }

    #[test]
    fn known_names_and_addresses_pass_others_do_not() {
        let hosts = Hosts::new();
        for ok in [
            "homelab.local",
            "HOMELAB.LOCAL.:443",
            "localhost:8080",
            "127.0.0.1:8080",
            "192.168.1.20",
            "[fe80::1]:443",
            "[::1]",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "homelab.local.evil.example",
            "",
            ":80",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        *hosts.extra.write().unwrap() = parse_names("homelab.lan, Box.Fritz.Box.").unwrap();
        assert!(hosts.allows("homelab.lan:80"));
        assert!(hosts.allows("box.fritz.box"));
    }

    #[test]
    fn owner_names_are_checked() {
        assert_eq!(
            parse_names(" a.lan\nb.lan,a.lan ").unwrap(),
            vec!["a.lan".to_string(), "b.lan".to_string()]
        );
        for bad in ["evil/path", "-x.lan", "a..b", "x y\u{0}", &"a".repeat(64)] {
            assert!(parse_names(bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_EXTRA_NAMES).map(|i| format!("n{i}.lan")).collect();
        assert!(matches!(
            parse_names(&many.join(" ")),
            Err(NameError::TooMany)
        ));
    }
}
