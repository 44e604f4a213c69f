//! The proxy's admin API client: Caddy's JSON config API over a Unix socket stream (the
//! device's, opened over its SSH connection; a local one in tests), HTTP/1.1 through hyper,
//! one request per stream. Every operation is idempotent and keyed by a stable `@id`.
//!
//! What the API does, as read in caddyserver/caddy@v2.11.4 `admin.go` and `caddy.go` (and
//! checked against the real 2.11.7 binary by `daemon/tests/caddy.rs`):
//! - `GET /id/<id>` answers the object with that `@id`, 404 when there is none;
//!   `PATCH /id/<id>` replaces it in place; `DELETE /id/<id>` removes it.
//! - `PUT /config/<path to array>/<n>` inserts before element n; `POST /config/<array>` appends.
//! - Every change reloads the whole configuration and is refused as a whole when invalid — a
//!   second object with an `@id` already present is such a refusal ("duplicate ID"), so two
//!   routes can never share an id even when two writers race.
//! - The socket is not checked for a Host/Origin (only TCP listeners are), and every change
//!   is autosaved when `admin.config.persist` is on.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use zeroize::Zeroizing;

use super::{FALLBACK_ID, HTTPS_SERVER, REDIRECT_ID, Upstream};
use crate::secrets::Secret;

/// Time for one call: connecting, the request, and Caddy's reload of its whole configuration
/// (milliseconds normally; a busy Raspberry Pi with dozens of certificates takes longer).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer read: a whole configuration with a hundred certificates (PEM chain and
/// key, ~5 KB each) is about 500 KB.
const MAX_ANSWER: usize = 1024 * 1024;
/// Pauses before sending a call again whose connection was dropped unanswered (see `send`):
/// Caddy's admin endpoint is back within milliseconds of a reload.
const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(150),
    Duration::from_millis(400),
];
/// How much of Caddy's error text a message keeps.
const MAX_DETAIL: usize = 300;
/// Tag on every certificate Homelab loads (what a person reading the config sees).
const CERT_TAG: &str = "homelab";

/// Why the proxy could not be configured.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaddyError {
    #[error("Could not reach the proxy's control socket: {0}")]
    Connect(String),
    #[error("The proxy did not answer within {0} seconds.")]
    Timeout(u64),
    #[error("The proxy refused the change (status {status}): {detail}")]
    Refused { status: u16, detail: String },
    #[error("The proxy's answer was larger than {0} bytes, so it was not read.")]
    TooLarge(usize),
    #[error("The proxy's answer could not be read: {0}")]
    Protocol(String),
    #[error("The proxy's configuration is not what Homelab set up: {0}")]
    Unexpected(String),
    #[error("“{0}” cannot name a route or certificate (letters, digits and dashes only).")]
    BadId(String),
    #[error("“{0}” is not a valid web address name for a route.")]
    BadHost(String),
}

/// A public certificate authority speaking ACME (Let's Encrypt, ZeroSSL, or the owner's own
/// step-ca), from which Caddy obtains and renews an app's certificate itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeIssuer {
    /// The authority's directory URL.
    pub directory: String,
    /// Whom the authority writes to about expiring certificates.
    pub email: String,
    /// A PEM file inside the proxy's container with the roots the authority's own address
    /// chains to, when they are not publicly trusted (a private ACME server).
    pub roots_file: Option<String>,
}

/// One app's route: requests for `hosts` go to `upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Stable id (`app-<slug>`): a repeat replaces the route, never adds a second.
    pub id: String,
    pub hosts: Vec<String>,
    pub upstream: Upstream,
}

/// A byte stream to the admin socket.
pub trait AdminIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AdminIo for T {}

type Connecting = Pin<Box<dyn Future<Output = io::Result<Box<dyn AdminIo>>> + Send>>;
type ConnectFn = dyn Fn() -> Connecting + Send + Sync;

/// The proxy's admin API: a way to open a fresh stream to its socket for each call.
#[derive(Clone)]
pub struct Admin {
    connect: Arc<ConnectFn>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admin")
    }
}

impl Admin {
    /// Any way of opening a stream to the admin socket.
    pub fn new<F, Fut, S>(connect: F) -> Admin
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: AdminIo,
    {
        Admin {
            connect: Arc::new(move || {
                let fut = connect();
                Box::pin(async move { fut.await.map(|s| Box::new(s) as Box<dyn AdminIo>) })
            }),
        }
    }

    /// The socket at `socket` on a device, opened over its SSH connection (as Docker's is).
    pub fn over_ssh(session: Arc<crate::ssh::Session>, socket: String) -> Admin {
        Admin::new(move || {
            let session = session.clone();
            let socket = socket.clone();
            async move {
                session
                    .open_socket(&socket)
                    .await
                    .map_err(|e| io::Error::new(io::ErrorKind::NotConnected, e.to_string()))
            }
        })
    }

    /// A socket on this machine (tests; a proxy beside the box).
    pub fn unix(path: impl Into<PathBuf>) -> Admin {
        let path: PathBuf = path.into();
        Admin::new(move || tokio::net::UnixStream::connect(path.clone()))
    }

    /// Creates or replaces the route with `route.id`, before the fallback route (which answers
    /// 404 for names without a route). Never leaves two routes with one id.
    pub async fn put_route(&self, route: &Route) -> Result<(), CaddyError> {
        check_id(&route.id)?;
        for host in &route.hosts {
            check_host(host)?;
        }
        let body = Bytes::from(route_json(route).to_string());
        if self.exists(&route.id).await? {
            return self.replace(&route.id, body).await;
        }
        let first = format!("/config/apps/http/servers/{HTTPS_SERVER}/routes/0");
        match self.send(Method::PUT, &first, Some(body.clone())).await {
            Ok(_) => Ok(()),
            // Another writer added it between our look and our insert: replace theirs.
            Err(CaddyError::Refused { detail, .. }) if detail.contains("duplicate ID") => {
                self.replace(&route.id, body).await
            }
            Err(e) => Err(e),
        }
    }

    /// Removes the route with this id; one that is not there is already removed.
    pub async fn delete_route(&self, id: &str) -> Result<(), CaddyError> {
        self.delete_id(id).await
    }

    /// Loads (or replaces) the certificate `id`: `chain_pem` is the leaf followed by its
    /// issuers, `key_pem` its private key. The key travels only in this request's body, which
    /// is wiped from memory once sent; it is never logged.
    pub async fn put_certificate(
        &self,
        id: &str,
        chain_pem: &str,
        key_pem: &Secret,
    ) -> Result<(), CaddyError> {
        check_id(id)?;
        let key = key_pem
            .expose_str()
            .ok_or_else(|| CaddyError::Unexpected("the certificate's key is not text".into()))?;
        #[derive(Serialize)]
        struct LoadPem<'a> {
            #[serde(rename = "@id")]
            id: &'a str,
            certificate: &'a str,
            key: &'a str,
            tags: [&'a str; 1],
        }
        let entry = LoadPem {
            id,
            certificate: chain_pem,
            key,
            tags: [CERT_TAG],
        };
        // Reserved up front so the buffer holding the key is never reallocated (a moved-from
        // buffer would not be wiped).
        let mut json = Zeroizing::new(Vec::with_capacity(chain_pem.len() + key.len() * 2 + 256));
        serde_json::to_writer(&mut *json, &entry)
            .map_err(|e| CaddyError::Unexpected(e.to_string()))?;
        let body = Bytes::from_owner(json);
        if self.exists(id).await? {
            return self.replace(id, body).await;
        }
        match self
            .send(
                Method::POST,
                "/config/apps/tls/certificates/load_pem",
                Some(body.clone()),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(CaddyError::Refused { detail, .. }) if detail.contains("duplicate ID") => {
                self.replace(id, body).await
            }
            Err(e) => Err(e),
        }
    }

    /// Removes the certificate with this id (absent: nothing to do).
    pub async fn delete_certificate(&self, id: &str) -> Result<(), CaddyError> {
        self.delete_id(id).await
    }

    /// Has Caddy obtain and renew the certificate for `name` from a public (ACME) authority:
    /// an automation policy `id` for the name with the authority, and the name on the list of
    /// certificates Caddy manages. Safe to repeat; a policy with this id is replaced (the
    /// owner changed the authority or the name). The two writes are two reloads: a name on the
    /// list without its policy would be tried with Caddy's default authorities, so the policy
    /// goes first.
    pub async fn put_acme(
        &self,
        id: &str,
        name: &str,
        issuer: &AcmeIssuer,
    ) -> Result<(), CaddyError> {
        check_id(id)?;
        check_host(name)?;
        // Proxies made before public domains existed have neither list: make them empty
        // (PUT refuses a key that exists, which is then left as it is).
        for (path, empty) in [
            ("/config/apps/tls/automation", json!({ "policies": [] })),
            ("/config/apps/tls/certificates/automate", json!([])),
        ] {
            match self
                .send(Method::PUT, path, Some(Bytes::from(empty.to_string())))
                .await
            {
                Ok(_) | Err(CaddyError::Refused { status: 409, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let old = self.acme_subjects(id).await?;
        let policy = Bytes::from(acme_policy_json(id, name, issuer).to_string());
        if old.is_some() {
            self.replace(id, policy).await?;
        } else {
            match self
                .send(
                    Method::POST,
                    "/config/apps/tls/automation/policies",
                    Some(policy.clone()),
                )
                .await
            {
                Ok(_) => {}
                Err(CaddyError::Refused { detail, .. }) if detail.contains("duplicate ID") => {
                    self.replace(id, policy).await?
                }
                Err(e) => return Err(e),
            }
        }
        // A renamed app's old name leaves the list.
        for gone in old.unwrap_or_default().iter().filter(|n| *n != name) {
            self.unmanage(gone).await?;
        }
        if !self.managed().await?.iter().any(|n| n == name) {
            let body = Bytes::from(Value::String(name.to_string()).to_string());
            self.send(
                Method::POST,
                "/config/apps/tls/certificates/automate",
                Some(body),
            )
            .await?;
        }
        Ok(())
    }

    /// Stops Caddy managing the certificate of policy `id`: its names leave the managed list,
    /// then the policy goes. Absent: nothing to do. (The certificate Caddy stored stays in its
    /// storage until it expires; Caddy cleans expired ones itself.)
    pub async fn delete_acme(&self, id: &str) -> Result<(), CaddyError> {
        check_id(id)?;
        let Some(subjects) = self.acme_subjects(id).await? else {
            return Ok(());
        };
        for name in &subjects {
            self.unmanage(name).await?;
        }
        self.delete_id(id).await
    }

    /// The names of policy `id`, or None when there is no such policy.
    async fn acme_subjects(&self, id: &str) -> Result<Option<Vec<String>>, CaddyError> {
        match self.send(Method::GET, &format!("/id/{id}"), None).await {
            Ok(body) => {
                let policy: Value = serde_json::from_slice(&body)
                    .map_err(|e| CaddyError::Protocol(e.to_string()))?;
                Ok(Some(strings(&policy["subjects"])))
            }
            Err(CaddyError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The names whose certificates Caddy obtains itself.
    async fn managed(&self) -> Result<Vec<String>, CaddyError> {
        match self
            .send(Method::GET, "/config/apps/tls/certificates/automate", None)
            .await
        {
            Ok(body) => Ok(strings(
                &serde_json::from_slice(&body).map_err(|e| CaddyError::Protocol(e.to_string()))?,
            )),
            Err(CaddyError::Refused { status: 404, .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Takes `name` off the managed list (by its position, read just before: callers hold the
    /// device's proxy lock, so the list does not move in between).
    async fn unmanage(&self, name: &str) -> Result<(), CaddyError> {
        let managed = self.managed().await?;
        if let Some(i) = managed.iter().position(|n| n == name) {
            self.send(
                Method::DELETE,
                &format!("/config/apps/tls/certificates/automate/{i}"),
                None,
            )
            .await?;
        }
        Ok(())
    }

    /// The ids of the app routes and certificates the proxy holds, routes first, in the
    /// proxy's order (for reconciling with what the box knows). The base's own routes are not
    /// listed.
    pub async fn ids(&self) -> Result<Vec<String>, CaddyError> {
        let config = self.config().await?;
        let mut ids = Vec::new();
        let routes = &config["apps"]["http"]["servers"][HTTPS_SERVER]["routes"];
        let certs = &config["apps"]["tls"]["certificates"]["load_pem"];
        let policies = &config["apps"]["tls"]["automation"]["policies"];
        for list in [routes, certs, policies] {
            for item in list.as_array().into_iter().flatten() {
                if let Some(id) = item.get("@id").and_then(Value::as_str)
                    && id != FALLBACK_ID
                    && id != REDIRECT_ID
                {
                    ids.push(id.to_string());
                }
            }
        }
        Ok(ids)
    }

    /// The whole running configuration (certificate keys included: never log it).
    pub async fn config(&self) -> Result<Value, CaddyError> {
        let body = self.send(Method::GET, "/config/", None).await?;
        serde_json::from_slice(&body).map_err(|e| CaddyError::Protocol(e.to_string()))
    }

    /// Loads `config` as the whole configuration, only when the proxy's HTTPS server is
    /// missing (a proxy started without Homelab's base, or emptied by hand); a proxy that has
    /// it keeps its routes and certificates. Returns whether it loaded.
    pub async fn load_base(&self, config: &Value) -> Result<bool, CaddyError> {
        let current = self.config().await?;
        if current["apps"]["http"]["servers"][HTTPS_SERVER].is_object() {
            return Ok(false);
        }
        self.send(Method::POST, "/load", Some(Bytes::from(config.to_string())))
            .await?;
        Ok(true)
    }

    async fn exists(&self, id: &str) -> Result<bool, CaddyError> {
        match self.send(Method::GET, &format!("/id/{id}"), None).await {
            Ok(_) => Ok(true),
            Err(CaddyError::Refused { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn replace(&self, id: &str, body: Bytes) -> Result<(), CaddyError> {
        self.send(Method::PATCH, &format!("/id/{id}"), Some(body))
            .await
            .map(|_| ())
    }

    async fn delete_id(&self, id: &str) -> Result<(), CaddyError> {
        check_id(id)?;
        match self.send(Method::DELETE, &format!("/id/{id}"), None).await {
            Ok(_) | Err(CaddyError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One request on a fresh stream; the body of a 2xx answer, else Caddy's error text.
    ///
    /// Caddy restarts its admin endpoint on every configuration change (seen in 2.11.7's log:
    /// "admin endpoint started" after each load), and a request that arrives during that swap
    /// has its connection closed unanswered. Such a call is sent again, a bounded number of
    /// times: every request here is safe to repeat (GET, PATCH and DELETE by id are
    /// idempotent; a repeated insert of an id that got in is refused as a duplicate, which
    /// `put_route`/`put_certificate` turn into a replace; `/load` replaces everything).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes, CaddyError> {
        let mut attempt = 0;
        loop {
            let once = self.send_now(method.clone(), path, body.clone());
            let result = tokio::time::timeout(CALL_TIMEOUT, once)
                .await
                .map_err(|_| CaddyError::Timeout(CALL_TIMEOUT.as_secs()))?;
            // A socket that cannot be opened is tried once more only (a proxy that is not
            // running should be reported at once); a connection dropped mid-call, up to three
            // times.
            let again = match &result {
                Err(CaddyError::Connect(_)) => attempt < 1,
                Err(CaddyError::Protocol(_)) => attempt < RETRY_PAUSES.len(),
                _ => false,
            };
            match result {
                _ if again => {
                    tokio::time::sleep(RETRY_PAUSES[attempt]).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_now(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes, CaddyError> {
        let io = (self.connect)()
            .await
            .map_err(|e| CaddyError::Connect(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| CaddyError::Connect(e.to_string()))?;
        // The connection task drives the stream; it ends when the answer is read and the
        // sender dropped (this function's end), closing the stream.
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "proxy admin connection ended with an error");
            }
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            // A socket has no host; Caddy checks none on Unix sockets (admin.go).
            .header(hyper::header::HOST, "caddy");
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| CaddyError::Protocol(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CaddyError::Protocol(e.to_string()))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    CaddyError::TooLarge(MAX_ANSWER)
                } else {
                    CaddyError::Protocol(e.to_string())
                }
            })?
            .to_bytes();
        if status.is_success() {
            return Ok(bytes);
        }
        Err(refused(status, &bytes))
    }
}

/// Caddy's error answer (`{"error": "..."}`) as a refusal, its text bounded.
fn refused(status: StatusCode, body: &[u8]) -> CaddyError {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    CaddyError::Refused {
        status: status.as_u16(),
        detail: crate::limits::truncate(&detail, MAX_DETAIL).into_owned(),
    }
}

/// The strings of a JSON array (anything else: none).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// An automation policy: certificates for `name` come from `issuer` over ACME. Caddy answers
/// the authority's challenges itself: HTTP-01 on the HTTP server (before any route, so the
/// redirect to HTTPS does not get in the way) and TLS-ALPN-01 on the HTTPS server.
fn acme_policy_json(id: &str, name: &str, issuer: &AcmeIssuer) -> Value {
    let mut acme = json!({
        "module": "acme",
        "ca": issuer.directory,
        "email": issuer.email,
    });
    if let Some(file) = &issuer.roots_file {
        acme["trusted_roots_pem_files"] = json!([file]);
    }
    json!({ "@id": id, "subjects": [name], "issuers": [acme] })
}

/// The route as Caddy's JSON: a host matcher, a reverse proxy, terminal (no later route runs).
fn route_json(route: &Route) -> Value {
    let mut proxy = json!({
        "handler": "reverse_proxy",
        "upstreams": [{ "dial": route.upstream.dial }]
    });
    if route.upstream.tls {
        // The app serves HTTPS with a certificate of its own making (Portainer's self-signed
        // one on 9443): nothing can vouch for it, and the hop runs inside the device, on the
        // proxy's private Docker network (or to the device itself), never across the LAN.
        // Visitors get Homelab's trusted certificate from the proxy.
        proxy["transport"] = json!({
            "protocol": "http",
            "tls": { "insecure_skip_verify": true }
        });
        // With TLS to the upstream, Caddy 2.11 sends the upstream's own address as Host
        // unless told otherwise (reverseproxy/httptransport.go `RequestHeaderOps`; a route's
        // own header ops win). The app must see the name its visitors used, as it does over
        // plain HTTP: its redirects and origin checks are built from it.
        proxy["headers"] = json!({
            "request": { "set": { "Host": ["{http.request.hostport}"] } }
        });
    }
    json!({
        "@id": route.id,
        "match": [{ "host": route.hosts }],
        "handle": [proxy],
        "terminal": true
    })
}

/// Ids become part of a URL path (`/id/<id>`): letters, digits and dashes only.
fn check_id(id: &str) -> Result<(), CaddyError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && id != FALLBACK_ID
        && id != REDIRECT_ID;
    if ok {
        Ok(())
    } else {
        Err(CaddyError::BadId(
            crate::limits::truncate(id, 80).into_owned(),
        ))
    }
}

/// A host matcher value: a DNS name (letters, digits, dashes, dots), nothing Caddy would read
/// as a placeholder or wildcard.
fn check_host(host: &str) -> Result<(), CaddyError> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with('.')
        && !host.contains("..");
    if ok {
        Ok(())
    } else {
        Err(CaddyError::BadHost(
            crate::limits::truncate(host, 80).into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_hosts_cannot_reach_into_paths_or_placeholders() {
        assert!(check_id("app-vaultwarden").is_ok());
        for bad in ["", "a/b", "../config", "a b", "homelab-fallback", "x?y"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        assert!(check_host("vault.home.arpa").is_ok());
        for bad in [
            "",
            "{http.request.host}",
            "*.home.arpa",
            "a..b",
            ".a",
            "a b",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn https_upstreams_skip_verification_inside_the_device() {
        let r = Route {
            id: "app-portainer".into(),
            hosts: vec!["portainer.home.arpa".into()],
            upstream: Upstream::service("app-portainer", 9443, true),
        };
        let j = route_json(&r);
        assert_eq!(j["@id"], "app-portainer");
        assert_eq!(j["handle"][0]["upstreams"][0]["dial"], "app-portainer:9443");
        assert_eq!(
            j["handle"][0]["transport"]["tls"]["insecure_skip_verify"],
            true
        );
        let r = Route {
            upstream: Upstream::service("app-x", 80, false),
            ..r
        };
        assert!(route_json(&r)["handle"][0].get("transport").is_none());
    }
}
