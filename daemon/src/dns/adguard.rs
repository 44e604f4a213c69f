//! AdGuard Home's HTTP API (`/control/*`): checking a connection, its rewrites (the records
//! app names live in), and what the Network page shows and changes: protection, today's
//! numbers, the query log and the blocklists; plus its first-run setup for an AdGuard Home that
//! Homelab installed itself.
//!
//! Behaviour relied on, read from AdguardTeam/AdGuardHome (v0.108.0-b.90-21-g75e43ab5) and its
//! openapi/openapi.yaml (see /work/research-16/adguard.md and lab/fakes/adguard.py):
//! - internal/home/authhttp.go: HTTP Basic on every call; `POST /control/login` answers 403 for
//!   a wrong login and 429 with Retry-After while the address is locked out
//!   (internal/home/authratelimiter.go: `auth_attempts` failures, default 5, lock it for
//!   `block_auth_min`, default 15 minutes). Basic auth while locked out is a bare 401, so
//!   [`AdGuard::test`] signs in through `/control/login` to tell the two apart, then signs out.
//! - internal/home/control.go: before its first-run setup every `/control/` call is redirected
//!   (302) to install.html; POST/PUT bodies must be `application/json` exactly (else 415).
//! - internal/filtering/rewritehttp.go: rewrites carry no owner; add appends even a duplicate,
//!   delete removes every equal {domain, answer}, update answers 400 for a missing target. So
//!   this client checks before it writes, and never deletes what the caller did not name.
//!
//! Which rewrites are Homelab's is the caller's to know (the store keeps the records it made):
//! a rewrite for the same name with another answer is a [`AdGuardError::Conflict`] here.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::http_client::{
    self, HeaderMap, HeaderValue, HttpClient, HttpError, Method, Response, StatusCode,
};
use crate::secrets::Secret;

/// Every call is a small LAN request: an AdGuard Home that has not answered in this long is
/// treated as down rather than holding up the page.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Answers are small JSON documents; a query-log page of 100 rows is well under this.
const BODY_LIMIT: u64 = 2 << 20;
/// The longest address we accept (a typed URL, not a document).
const MAX_URL: usize = 2048;
/// User names are short; a longer one is a paste gone wrong.
const MAX_USERNAME: usize = 255;
/// A query-log page is at most this many rows (the Network page shows one page).
pub const MAX_QUERYLOG_ROWS: u32 = 100;
/// The query-log search box takes at most this many characters.
pub const MAX_SEARCH: usize = 100;
/// The first-run wizard refuses shorter passwords (controlinstall.go: PasswordMinRunes).
const MIN_PASSWORD: usize = 8;
/// The trust store for https AdGuard Homes unless the caller names another.
const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What went wrong, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum AdGuardError {
    #[error(
        "“{0}” is not an address Homelab can use for AdGuard Home: write it like \
         http://192.168.1.2:3000 or https://adguard.home.arpa (http or https, a host, an optional \
         port and path, and no user name or password in it)."
    )]
    BadUrl(String),
    #[error("{0}")]
    BadInput(String),
    #[error(
        "Homelab could not reach AdGuard Home at {url}: check the address and that it is \
         running ({reason})."
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "AdGuard Home at {url} refused the user name or password: use the ones you sign in to \
         AdGuard Home with."
    )]
    WrongLogin { url: String },
    #[error(
        "AdGuard Home at {url} refused Homelab's sign-in (a wrong password, or locked out after \
         too many wrong ones): test the connection on the Network page."
    )]
    LoginRefused { url: String },
    #[error(
        "AdGuard Home at {url} is locking Homelab out for {} after too many wrong passwords: \
         wait, then try again with the right one.", minutes(*.seconds)
    )]
    LockedOut { url: String, seconds: u64 },
    #[error(
        "AdGuard Home at {url} has not been set up yet: open it in a browser and finish its \
         setup (or, if Homelab installed it, let Homelab set it up)."
    )]
    NotSetUp { url: String },
    #[error(
        "AdGuard Home at {url} is already set up: connect to it with the name and password \
         chosen then."
    )]
    AlreadySetUp { url: String },
    #[error("AdGuard Home at {url} sends Homelab to {to}: use that address instead.")]
    Redirected { url: String, to: String },
    #[error(
        "“{domain}” already points to {answer} in AdGuard Home, an entry Homelab did not make: \
         remove or change it in AdGuard Home, or give the app another name."
    )]
    Conflict { domain: String, answer: String },
    #[error("AdGuard Home refused to {what}: {message}")]
    Refused { what: &'static str, message: String },
    #[error(
        "AdGuard Home at {url} gave an answer Homelab did not expect ({detail}): check that the \
         address is AdGuard Home's, version 0.107 or newer."
    )]
    Unexpected { url: String, detail: String },
}

fn minutes(seconds: u64) -> String {
    match seconds.div_ceil(60) {
        0 | 1 => "about a minute".into(),
        m => format!("about {m} minutes"),
    }
}

/// What "Test connection" shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub version: String,
    /// Blocking ads and trackers: on or off.
    pub protection_enabled: bool,
    /// A pause's time left, when protection is paused rather than off.
    pub protection_paused_for: Option<Duration>,
    pub running: bool,
}

/// One rewrite (a DNS record AdGuard Home answers itself).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rewrite {
    pub domain: String,
    pub answer: String,
    /// Versions before 0.107.64 have no such field: every rewrite is on there.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Today's numbers (AdGuard Home's statistics over its interval, a day by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub queries: u64,
    pub blocked: u64,
}

impl Stats {
    /// The blocked share in percent (0 with no lookups).
    pub fn blocked_percent(&self) -> f64 {
        if self.queries == 0 {
            0.0
        } else {
            self.blocked as f64 * 100.0 / self.queries as f64
        }
    }
}

/// Which query-log rows to fetch.
#[derive(Debug, Clone, Default)]
pub struct QueryFilter {
    pub blocked_only: bool,
    /// Part of a name or a client address; at most [`MAX_SEARCH`] characters.
    pub search: Option<String>,
    /// Rows per page, 1..=[`MAX_QUERYLOG_ROWS`] (0 means the maximum).
    pub limit: u32,
    /// The `oldest` of the previous page, to page back.
    pub older_than: Option<String>,
}

/// One row of the query log.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub time: String,
    pub domain: String,
    pub kind: String,
    pub client: String,
    /// AdGuard Home's reason, e.g. `FilteredBlackList` or `NotFilteredNotFound`.
    pub reason: String,
    pub blocked: bool,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    pub rows: Vec<Query>,
    /// Where the next (older) page starts, if there may be one.
    pub oldest: Option<String>,
}

/// A blocklist.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FilterList {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub enabled: bool,
    #[serde(default)]
    pub rules_count: u64,
    #[serde(default)]
    pub last_updated: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    /// Filtering as a whole.
    pub enabled: bool,
    pub lists: Vec<FilterList>,
}

/// A client for one AdGuard Home.
pub struct AdGuard {
    /// The web interface's address, no trailing slash; the API is under `/control`.
    base: String,
    username: String,
    password: Secret,
    client: HttpClient,
}

impl std::fmt::Debug for AdGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdGuard")
            .field("base", &self.base)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Checks an address the owner typed: http(s), a host, an optional port and path; no user
/// name, password, query or fragment; no control characters; bounded. Returns it without a
/// trailing slash.
pub fn valid_url(url: &str) -> Result<String, AdGuardError> {
    let bad = || AdGuardError::BadUrl(shown_input(url));
    let trimmed = url.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_URL || trimmed.chars().any(char::is_control) {
        return Err(bad());
    }
    let parsed = http_client::parse_url(trimmed).map_err(|_| bad())?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad());
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// A user name: printable, bounded. Empty means an AdGuard Home without a login.
pub fn valid_username(name: &str) -> Result<String, AdGuardError> {
    if name.len() > MAX_USERNAME || name.chars().any(char::is_control) || name.contains(':') {
        return Err(AdGuardError::BadInput(
            "The user name can have at most 255 characters, with no line breaks, control \
             characters or colons."
                .into(),
        ));
    }
    Ok(name.trim().to_string())
}

/// What the owner typed, shortened and without control characters, to quote in a message.
fn shown_input(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).take(80).collect();
    if s.chars().count() > 80 {
        format!("{clean}…")
    } else {
        clean
    }
}

/// A rewrite's domain: a DNS name, optionally `*.`-prefixed, lower case.
fn valid_domain(domain: &str) -> Result<String, AdGuardError> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let name = d.strip_prefix("*.").unwrap_or(&d);
    let ok = !name.is_empty()
        && d.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(d)
    } else {
        Err(AdGuardError::BadInput(format!(
            "“{}” is not a name AdGuard Home can answer for.",
            shown_input(domain)
        )))
    }
}

/// A rewrite's answer: an address, or a name (a CNAME).
fn valid_answer(answer: &str) -> Result<String, AdGuardError> {
    let a = answer.trim();
    if a.parse::<IpAddr>().is_ok() {
        return Ok(a.to_string());
    }
    valid_domain(a).map_err(|_| {
        AdGuardError::BadInput(format!(
            "“{}” is neither an address nor a name.",
            shown_input(answer)
        ))
    })
}

fn client() -> HttpClient {
    client_trusting(Path::new(SYSTEM_CA))
}

fn client_trusting(ca_file: &Path) -> HttpClient {
    let mut settings = http_client::Settings::new(ca_file, crate::VERSION);
    settings.connect_timeout = TIMEOUT;
    settings.idle_timeout = TIMEOUT;
    settings.overall_timeout = Some(TIMEOUT);
    // AdGuard Home redirects only before its setup (to install.html) or to its https address;
    // both are answers to explain, not to follow with the password.
    settings.max_redirects = 0;
    HttpClient::new(settings)
}

/// The parts of `/control/status` we read.
#[derive(Deserialize)]
struct StatusJson {
    version: String,
    protection_enabled: bool,
    #[serde(default)]
    protection_disabled_duration: i64,
    running: bool,
}

#[derive(Deserialize)]
struct StatsJson {
    num_dns_queries: u64,
    #[serde(default)]
    num_blocked_filtering: u64,
}

#[derive(Deserialize)]
struct QueryLogJson {
    #[serde(default)]
    data: Option<Vec<QueryJson>>,
    #[serde(default)]
    oldest: String,
}

#[derive(Deserialize)]
struct QueryJson {
    time: String,
    question: QuestionJson,
    #[serde(default)]
    client: String,
    #[serde(default)]
    reason: String,
    #[serde(default, rename = "elapsedMs")]
    elapsed_ms: String,
}

#[derive(Deserialize)]
struct QuestionJson {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct FilteringJson {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    filters: Option<Vec<FilterList>>,
}

#[derive(Deserialize)]
struct RefreshJson {
    updated: u64,
}

#[derive(Deserialize)]
struct AddressesJson {
    #[serde(default)]
    web_port: u16,
    #[serde(default)]
    dns_port: u16,
}

impl AdGuard {
    /// A client for the AdGuard Home at `url` (its web interface's address). Checks the
    /// address and the user name; connects to nothing yet.
    pub fn new(url: &str, username: &str, password: Secret) -> Result<AdGuard, AdGuardError> {
        Ok(AdGuard {
            base: valid_url(url)?,
            username: valid_username(username)?,
            password,
            client: client(),
        })
    }

    /// Trusts the certificate authorities in `ca_file` (PEM) for an https address, e.g. the
    /// homelab's own root when AdGuard Home is behind Homelab's proxy.
    pub fn trusting(mut self, ca_file: &Path) -> AdGuard {
        self.client = client_trusting(ca_file);
        self
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// The password, for the caller to seal after a successful test.
    pub(crate) fn password(&self) -> &Secret {
        &self.password
    }

    /// Whether the password crosses the network unencrypted (an http:// address).
    pub fn plain_http(&self) -> bool {
        self.base.starts_with("http://")
    }

    fn auth_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http_client::HeaderName::from_static("accept"),
            HeaderValue::from_static("application/json"),
        );
        if !self.username.is_empty() {
            use base64::Engine;
            let mut raw = self.username.clone().into_bytes();
            raw.push(b':');
            raw.extend_from_slice(self.password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
            raw.iter_mut().for_each(|b| *b = 0);
            if let Ok(mut value) = HeaderValue::from_str(&format!("Basic {encoded}")) {
                // Kept out of any debug output of the request.
                value.set_sensitive(true);
                headers.insert(http_client::HeaderName::from_static("authorization"), value);
            }
        }
        headers
    }

    fn unreachable(&self, e: HttpError) -> AdGuardError {
        let reason = match e {
            HttpError::Unreachable { reason, .. } => reason,
            HttpError::Tls { reason, .. } => format!("its secure connection failed: {reason}"),
            other => other.to_string(),
        };
        AdGuardError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    fn unexpected(&self, detail: impl Into<String>) -> AdGuardError {
        AdGuardError::Unexpected {
            url: self.base.clone(),
            detail: detail.into(),
        }
    }

    /// One call: `path` under `/control/`, Basic auth, an optional JSON body. Returns the
    /// status and body of a 2xx answer, or the error the answer means.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        what: &'static str,
    ) -> Result<Vec<u8>, AdGuardError> {
        self.call_with(method, path, body, what, self.auth_headers())
            .await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        what: &'static str,
        headers: HeaderMap,
    ) -> Result<Vec<u8>, AdGuardError> {
        let url = format!("{}/control/{path}", self.base);
        let body = body.map(|v| ("application/json", v.to_string().into_bytes()));
        let resp = self
            .client
            .send(method, &url, headers, body)
            .await
            .map_err(|e| self.unreachable(e))?;
        self.answer(resp, what).await
    }

    async fn answer(&self, resp: Response, what: &'static str) -> Result<Vec<u8>, AdGuardError> {
        let status = resp.status();
        if status.is_redirection() {
            let to = resp
                .header(http_client::HeaderName::from_static("location"))
                .unwrap_or_default()
                .to_string();
            return Err(if to.contains("install.html") {
                AdGuardError::NotSetUp {
                    url: self.base.clone(),
                }
            } else {
                AdGuardError::Redirected {
                    url: self.base.clone(),
                    to: http_client::shown(&to),
                }
            });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(AdGuardError::LoginRefused {
                url: self.base.clone(),
            });
        }
        let bytes = resp
            .bytes(BODY_LIMIT)
            .await
            .map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let message: String = String::from_utf8_lossy(&bytes)
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        if status == StatusCode::NOT_FOUND {
            return Err(self.unexpected(format!("it does not know /control/{what}")));
        }
        if status.is_client_error() {
            return Err(AdGuardError::Refused { what, message });
        }
        Err(self.unexpected(format!("HTTP {}: {message}", status.as_u16())))
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, AdGuardError> {
        serde_json::from_slice(bytes).map_err(|e| self.unexpected(format!("unreadable JSON: {e}")))
    }

    /// "Test connection": signs in through `/control/login` (which, unlike Basic auth, tells a
    /// wrong password from a lock-out and says for how long), reads the status with that
    /// session, then signs out so no session is left behind.
    pub async fn test(&self) -> Result<Status, AdGuardError> {
        if self.username.is_empty() {
            return self.status().await;
        }
        let password = self
            .password
            .expose_str()
            .ok_or_else(|| AdGuardError::BadInput("The password must be text (UTF-8).".into()))?;
        let url = format!("{}/control/login", self.base);
        let body = json!({"name": self.username, "password": password});
        let resp = self
            .client
            .send(
                Method::POST,
                &url,
                HeaderMap::new(),
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await
            .map_err(|e| self.unreachable(e))?;
        match resp.status() {
            StatusCode::FORBIDDEN => {
                return Err(AdGuardError::WrongLogin {
                    url: self.base.clone(),
                });
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let seconds = resp
                    .header(http_client::HeaderName::from_static("retry-after"))
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(15 * 60);
                return Err(AdGuardError::LockedOut {
                    url: self.base.clone(),
                    seconds,
                });
            }
            _ => {}
        }
        let cookie = resp
            .header(http_client::HeaderName::from_static("set-cookie"))
            .and_then(|c| c.split(';').next())
            .filter(|c| c.starts_with("agh_session="))
            .map(str::to_string);
        // Not a login answer: a redirect (not set up), 404 (not AdGuard Home) and so on.
        self.answer(resp, "sign in").await?;
        let Some(cookie) = cookie else {
            return Err(self.unexpected("it signed in without a session"));
        };
        let mut headers = HeaderMap::new();
        let Ok(mut value) = HeaderValue::from_str(&cookie) else {
            return Err(self.unexpected("an unusable session"));
        };
        value.set_sensitive(true);
        headers.insert(http_client::HeaderName::from_static("cookie"), value);
        let status = self
            .call_with(
                Method::GET,
                "status",
                None,
                "show its status",
                headers.clone(),
            )
            .await;
        // Best effort: an unended session only expires later.
        let _ = self
            .call_with(Method::GET, "logout", None, "sign out", headers)
            .await;
        self.status_from(&status?)
    }

    /// The status, over Basic auth.
    pub async fn status(&self) -> Result<Status, AdGuardError> {
        let bytes = self
            .call(Method::GET, "status", None, "show its status")
            .await?;
        self.status_from(&bytes)
    }

    fn status_from(&self, bytes: &[u8]) -> Result<Status, AdGuardError> {
        let s: StatusJson = self.parse(bytes)?;
        Ok(Status {
            version: s.version.chars().take(40).collect(),
            protection_enabled: s.protection_enabled,
            protection_paused_for: (!s.protection_enabled && s.protection_disabled_duration > 0)
                .then(|| Duration::from_millis(s.protection_disabled_duration as u64)),
            running: s.running,
        })
    }

    /// Every rewrite, in AdGuard Home's order.
    pub async fn rewrites(&self) -> Result<Vec<Rewrite>, AdGuardError> {
        let bytes = self
            .call(Method::GET, "rewrite/list", None, "list its rewrites")
            .await?;
        let list: Option<Vec<Rewrite>> = self.parse(&bytes)?;
        Ok(list.unwrap_or_default())
    }

    /// Makes `domain` answer `answer`. Already there: nothing to do. The same name with
    /// another answer, which the caller would have to have made itself and then named through
    /// [`AdGuard::update_rewrite`]: a [`AdGuardError::Conflict`].
    pub async fn add_rewrite(&self, domain: &str, answer: &str) -> Result<(), AdGuardError> {
        let (domain, answer) = (valid_domain(domain)?, valid_answer(answer)?);
        let existing = self.rewrites().await?;
        if existing
            .iter()
            .any(|r| r.domain.eq_ignore_ascii_case(&domain) && r.answer == answer)
        {
            return Ok(());
        }
        if let Some(other) = existing
            .iter()
            .find(|r| r.domain.eq_ignore_ascii_case(&domain))
        {
            return Err(AdGuardError::Conflict {
                domain,
                answer: other.answer.clone(),
            });
        }
        self.call(
            Method::POST,
            "rewrite/add",
            Some(json!({"domain": domain, "answer": answer, "enabled": true})),
            "add a rewrite",
        )
        .await
        .map(drop)
    }

    /// Removes exactly `domain` → `answer`. Absent already: nothing to do.
    pub async fn delete_rewrite(&self, domain: &str, answer: &str) -> Result<(), AdGuardError> {
        let (domain, answer) = (valid_domain(domain)?, valid_answer(answer)?);
        // The server compares the domain as stored (lower case since 0.107): send that.
        let found = self
            .rewrites()
            .await?
            .into_iter()
            .find(|r| r.domain.eq_ignore_ascii_case(&domain) && r.answer == answer);
        let Some(found) = found else {
            return Ok(());
        };
        self.call(
            Method::POST,
            "rewrite/delete",
            Some(json!({"domain": found.domain, "answer": found.answer})),
            "remove a rewrite",
        )
        .await
        .map(drop)
    }

    /// Points `domain` from `old` to `new` (an app that moved). Idempotent: already at `new`
    /// is fine (a leftover `old` is removed); `old` gone means adding `new`, with the same
    /// conflict rule as [`AdGuard::add_rewrite`].
    pub async fn update_rewrite(
        &self,
        domain: &str,
        old: &str,
        new: &str,
    ) -> Result<(), AdGuardError> {
        let (domain, old, new) = (
            valid_domain(domain)?,
            valid_answer(old)?,
            valid_answer(new)?,
        );
        let existing = self.rewrites().await?;
        let find = |answer: &str| {
            existing
                .iter()
                .find(|r| r.domain.eq_ignore_ascii_case(&domain) && r.answer == answer)
        };
        match (find(&old), find(&new)) {
            (Some(_), Some(_)) if old != new => self.delete_rewrite(&domain, &old).await,
            (_, Some(_)) => Ok(()),
            (Some(target), None) => self
                .call(
                    Method::PUT,
                    "rewrite/update",
                    Some(json!({
                        "target": {"domain": target.domain, "answer": target.answer},
                        // `enabled` left out: the server keeps the rewrite's own.
                        "update": {"domain": domain, "answer": new},
                    })),
                    "change a rewrite",
                )
                .await
                .map(drop),
            (None, None) => self.add_rewrite(&domain, &new).await,
        }
    }

    /// Turns blocking on, or off until turned on again.
    pub async fn set_protection(&self, on: bool) -> Result<(), AdGuardError> {
        self.call(
            Method::POST,
            "protection",
            Some(json!({"enabled": on})),
            "change its protection",
        )
        .await
        .map(drop)
    }

    /// Turns blocking off for `pause`; AdGuard Home turns it back on by itself.
    pub async fn pause_protection(&self, pause: Duration) -> Result<(), AdGuardError> {
        self.call(
            Method::POST,
            "protection",
            Some(json!({"enabled": false, "duration": pause.as_millis() as u64})),
            "pause its protection",
        )
        .await
        .map(drop)
    }

    /// Today's lookups and how many were blocked.
    pub async fn stats(&self) -> Result<Stats, AdGuardError> {
        let bytes = self
            .call(Method::GET, "stats", None, "show its statistics")
            .await?;
        let s: StatsJson = self.parse(&bytes)?;
        Ok(Stats {
            queries: s.num_dns_queries,
            blocked: s.num_blocked_filtering,
        })
    }

    /// One page of the query log, newest first.
    pub async fn querylog(&self, filter: &QueryFilter) -> Result<QueryPage, AdGuardError> {
        let limit = match filter.limit {
            0 => MAX_QUERYLOG_ROWS,
            n => n.min(MAX_QUERYLOG_ROWS),
        };
        let mut url = http_client::Url::parse("http://x/control/querylog")
            .map_err(|e| self.unexpected(e.to_string()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string());
            if filter.blocked_only {
                q.append_pair("response_status", "blocked");
            }
            if let Some(search) = filter.search.as_deref().map(str::trim)
                && !search.is_empty()
            {
                if search.chars().count() > MAX_SEARCH || search.chars().any(char::is_control) {
                    return Err(AdGuardError::BadInput(format!(
                        "Search for at most {MAX_SEARCH} characters, on one line."
                    )));
                }
                q.append_pair("search", search);
            }
            if let Some(older) = filter.older_than.as_deref()
                && !older.is_empty()
            {
                q.append_pair("older_than", older);
            }
        }
        let path = format!("querylog?{}", url.query().unwrap_or_default());
        let bytes = self
            .call(Method::GET, &path, None, "show its query log")
            .await?;
        let log: QueryLogJson = self.parse(&bytes)?;
        let rows: Vec<Query> = log
            .data
            .unwrap_or_default()
            .into_iter()
            .take(limit as usize)
            .map(|q| Query {
                blocked: matches!(
                    q.reason.as_str(),
                    "FilteredBlackList" | "FilteredBlockedService"
                ),
                time: q.time,
                domain: q.question.name,
                kind: q.question.kind,
                client: q.client,
                reason: q.reason,
                elapsed_ms: q.elapsed_ms.parse().unwrap_or(0.0),
            })
            .collect();
        let oldest = (rows.len() as u32 == limit && !log.oldest.is_empty()).then_some(log.oldest);
        Ok(QueryPage { rows, oldest })
    }

    /// The blocklists (allowlists are left to AdGuard Home's own page).
    pub async fn filters(&self) -> Result<Filters, AdGuardError> {
        let bytes = self
            .call(Method::GET, "filtering/status", None, "list its blocklists")
            .await?;
        let f: FilteringJson = self.parse(&bytes)?;
        Ok(Filters {
            enabled: f.enabled,
            lists: f.filters.unwrap_or_default(),
        })
    }

    /// Adds a blocklist; AdGuard Home downloads it at once and refuses one it cannot fetch.
    pub async fn add_filter(&self, url: &str, name: &str) -> Result<(), AdGuardError> {
        let url = valid_list_url(url)?;
        let name = valid_list_name(name)?;
        self.call(
            Method::POST,
            "filtering/add_url",
            Some(json!({"name": name, "url": url, "whitelist": false})),
            "add the blocklist",
        )
        .await
        .map(drop)
    }

    /// Removes the blocklist at `url` (absent: nothing to do, as the server answers).
    pub async fn remove_filter(&self, url: &str) -> Result<(), AdGuardError> {
        // Any address AdGuard Home holds may be removed (also a file path it was given), so
        // only the bounds are checked here.
        if url.len() > MAX_URL || url.chars().any(char::is_control) {
            return Err(AdGuardError::BadInput(
                "That is not the address of one of its blocklists.".into(),
            ));
        }
        self.call(
            Method::POST,
            "filtering/remove_url",
            Some(json!({"url": url, "whitelist": false})),
            "remove the blocklist",
        )
        .await
        .map(drop)
    }

    /// Turns one blocklist on or off, keeping its name and address.
    pub async fn set_filter_enabled(&self, url: &str, enabled: bool) -> Result<(), AdGuardError> {
        let current = self
            .filters()
            .await?
            .lists
            .into_iter()
            .find(|f| f.url == url)
            .ok_or_else(|| AdGuardError::Refused {
                what: "change the blocklist",
                message: "it has no blocklist at that address".into(),
            })?;
        self.call(
            Method::POST,
            "filtering/set_url",
            Some(json!({
                "url": current.url,
                "whitelist": false,
                "data": {"name": current.name, "url": current.url, "enabled": enabled},
            })),
            "change the blocklist",
        )
        .await
        .map(drop)
    }

    /// Downloads every blocklist again; returns how many changed.
    pub async fn refresh_filters(&self) -> Result<u64, AdGuardError> {
        let bytes = self
            .call(
                Method::POST,
                "filtering/refresh",
                Some(json!({"whitelist": false})),
                "refresh the blocklists",
            )
            .await?;
        Ok(self.parse::<RefreshJson>(&bytes)?.updated)
    }

    /// Runs AdGuard Home's first-run setup (an AdGuard Home Homelab installed), keeping the
    /// ports it suggests, with this admin login; returns a client signed in with it. Refused
    /// once it is set up.
    pub async fn set_up_fresh(
        url: &str,
        username: &str,
        password: Secret,
    ) -> Result<AdGuard, AdGuardError> {
        let agh = AdGuard::new(url, username, password)?;
        if agh.username.is_empty() {
            return Err(AdGuardError::BadInput("Choose a user name.".into()));
        }
        let password = agh
            .password
            .expose_str()
            .filter(|p| p.chars().count() >= MIN_PASSWORD)
            .ok_or_else(|| {
                AdGuardError::BadInput(format!(
                    "The password needs at least {MIN_PASSWORD} characters."
                ))
            })?
            .to_string();
        // The setup calls need no login: 403 there means the wizard is gone
        // (control.go: preInstallHandler).
        let pre = |e: AdGuardError| match e {
            AdGuardError::LoginRefused { url } => AdGuardError::AlreadySetUp { url },
            other => other,
        };
        let bytes = agh
            .call_with(
                Method::GET,
                "install/get_addresses",
                None,
                "start its setup",
                HeaderMap::new(),
            )
            .await
            .map_err(pre)?;
        let addrs: AddressesJson = agh.parse(&bytes)?;
        let web_port = if addrs.web_port == 0 {
            3000
        } else {
            addrs.web_port
        };
        let dns_port = if addrs.dns_port == 0 {
            53
        } else {
            addrs.dns_port
        };
        let body = json!({
            "web": {"ip": "0.0.0.0", "port": web_port},
            "dns": {"ip": "0.0.0.0", "port": dns_port},
            "username": agh.username,
            "password": password,
        });
        let mut password = password;
        let result = agh
            .call_with(
                Method::POST,
                "install/configure",
                Some(body),
                "finish its setup",
                HeaderMap::new(),
            )
            .await
            .map_err(pre);
        // The plaintext copy made for the JSON body is wiped; the Secret keeps its own.
        password.clear();
        result?;
        Ok(agh)
    }
}

/// A blocklist's address: http(s) like any other, bounded.
fn valid_list_url(url: &str) -> Result<String, AdGuardError> {
    let t = url.trim();
    if t.len() > MAX_URL || t.chars().any(char::is_control) || http_client::parse_url(t).is_err() {
        return Err(AdGuardError::BadInput(format!(
            "“{}” is not a web address of a blocklist (http:// or https://).",
            shown_input(url)
        )));
    }
    Ok(t.to_string())
}

fn valid_list_name(name: &str) -> Result<String, AdGuardError> {
    let t = name.trim();
    if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
        return Err(AdGuardError::BadInput(
            "Give the blocklist a name of at most 100 characters, on one line.".into(),
        ));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_refused_with_a_fix() {
        for good in [
            "http://192.168.1.2:3000",
            "https://adguard.home.arpa/",
            " http://[fd00::2]:80/adguard ",
        ] {
            assert!(valid_url(good).is_ok(), "{good}");
        }
        assert_eq!(
            valid_url("http://10.0.0.2:3000/").unwrap(),
            "http://10.0.0.2:3000"
        );
        for bad in [
            "javascript:alert(1)",
            "ftp://h",
            "http://user:pw@h",
            "http://h/?q=1",
            "http://h\n/x",
            "",
            &format!("http://h/{}", "a".repeat(10_000)),
        ] {
            let err = valid_url(bad).unwrap_err();
            assert!(err.to_string().contains("write it like"), "{bad}: {err}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn names_and_answers_are_checked() {
        assert_eq!(valid_domain("App.Home.Arpa.").unwrap(), "app.home.arpa");
        assert_eq!(valid_domain("*.lan").unwrap(), "*.lan");
        for bad in ["", "a..b", "-a.b", "a b", "a\nb", &"a".repeat(64)] {
            assert!(valid_domain(bad).is_err(), "{bad}");
        }
        assert!(valid_answer("fd00::1").is_ok());
        assert!(valid_answer("nas.lan").is_ok());
        assert!(valid_answer("1.2.3.4; rm").is_err());
        assert!(valid_username("ad\nmin").is_err());
        assert!(valid_username(&"a".repeat(300)).is_err());
    }

    #[test]
    fn lockout_time_reads_in_minutes() {
        let e = AdGuardError::LockedOut {
            url: "http://h".into(),
            seconds: 899,
        };
        assert!(e.to_string().contains("about 15 minutes"), "{e}");
    }
}
