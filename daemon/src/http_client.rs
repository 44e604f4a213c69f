//! Outbound HTTP: the one client the daemon uses to talk to servers on the internet or the LAN
//! (the update channel today; DNS servers' and the router's APIs next). It owns the transport
//! rules every caller shares: rustls trusting only the configured certificate authorities, a
//! bounded number of redirects, connect and idle timeouts, a bound on bodies read whole, ranges
//! for resuming, the User-Agent, and errors that name the host but never a URL's query.
//!
//! A leaf module: it knows nothing of the features built on it, which word its errors for the
//! owner in their own terms.
//!
//! reqwest logs (full URLs included) through the `log` crate, which the daemon does not
//! forward to its tracing output (no tracing-log bridge); anything logged about a request is
//! logged by the caller, through [`shown`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header;

pub use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
pub use reqwest::{Method, StatusCode, Url};

/// Everything a client is built from. [`Settings::new`] gives the values every caller shares
/// unless it has a reason not to.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The PEM bundle of certificate authorities trusted for https; only these (not a
    /// built-in list), so what the box trusts is what its image or the owner put there.
    pub ca_file: PathBuf,
    /// Goes into the User-Agent, so a server's logs can tell which Homelab asked.
    pub version: String,
    /// A host that does not accept the connection within this is treated as down.
    pub connect_timeout: Duration,
    /// A server that sends nothing (no answer, or no body bytes) for this long is treated as
    /// gone; it resets with every piece that arrives, so a slow but steady download of a
    /// large file is never cut off.
    pub idle_timeout: Duration,
    /// An upper bound for the whole exchange, body included. None for downloads that may
    /// rightly take hours over a slow line; API calls should set one.
    pub overall_timeout: Option<Duration>,
    /// Redirects followed before giving up: a loop ends here.
    pub max_redirects: usize,
}

impl Settings {
    pub fn new(ca_file: &Path, version: &str) -> Settings {
        Settings {
            ca_file: ca_file.to_path_buf(),
            version: version.to_string(),
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            overall_timeout: None,
            max_redirects: 5,
        }
    }
}

/// What went wrong, with the host (not the URL: a query can carry an access token) and the
/// underlying reason in the words of the part that failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("“{0}” is not an http:// or https:// address naming a host")]
    BadUrl(String),
    #[error("could not reach {host}: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("the secure connection to {host} failed: {reason}")]
    Tls { host: String, reason: String },
    /// The CA file gave no usable certificate, so no https server can be checked.
    #[error("no trusted certificate authorities were found in {}", .0.display())]
    NoTrust(PathBuf),
    #[error("TLS could not be set up: {0}")]
    Setup(String),
    #[error("too many redirects from {url}")]
    TooManyRedirects { url: String },
    /// The answer began, then nothing more arrived within the idle timeout.
    #[error("nothing arrived for {} s", .0.as_secs())]
    Idle(Duration),
    /// The answer began, then the connection broke (or the overall timeout ended it).
    #[error("{0}")]
    Cut(String),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(u64),
}

/// The address as shown in messages and logs: a query string (which can carry an access token)
/// is left out.
pub fn shown(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

/// Parses an address the client will fetch: http or https, a host, and no user name or
/// password (they would end up in logs and messages).
pub fn parse_url(url: &str) -> Result<Url, HttpError> {
    let bad = || HttpError::BadUrl(url.to_string());
    let parsed = Url::parse(url.trim()).map_err(|_| bad())?;
    if usable(&parsed) {
        Ok(parsed)
    } else {
        Err(bad())
    }
}

fn usable(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
}

/// `host[:port]` as in a Host header (the port only when it is not the scheme's default).
pub fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// A redirect to an address the client would refuse to be given.
#[derive(Debug, thiserror::Error)]
#[error("redirected to an address that is not usable")]
struct BadRedirect;

/// Too many redirects; reqwest's own error for it is not public.
#[derive(Debug, thiserror::Error)]
#[error("too many redirects")]
struct TooManyRedirects;

/// The outbound client. Cheap to clone: clones share connections.
#[derive(Clone)]
pub struct HttpClient {
    /// Err when the client could not be built; every request then says why.
    inner: Result<reqwest::Client, String>,
    /// Set when the CA file gave no certificate: https cannot be checked, http still works.
    no_trust: Option<PathBuf>,
    settings: Arc<Settings>,
}

impl HttpClient {
    pub fn new(settings: Settings) -> HttpClient {
        let (tls, no_trust) = match tls_config(&settings.ca_file) {
            Ok((tls, added)) => (Ok(tls), (added == 0).then(|| settings.ca_file.clone())),
            Err(e) => (Err(e), None),
        };
        let inner = tls.and_then(|tls| build(&settings, tls).map_err(|e| e.to_string()));
        HttpClient {
            inner,
            no_trust,
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// GETs `url`, following redirects; `from` asks for the bytes from that offset on
    /// (`Range: bytes=<from>-`; a server may ignore it and send everything with 200, which
    /// the caller must check, see [`Response::resumes_at`]). Any status comes back as a
    /// response: what a 404 means is the caller's to say.
    pub async fn get(&self, url: &str, from: Option<u64>) -> Result<Response, HttpError> {
        let client = self
            .inner
            .as_ref()
            .map_err(|e| HttpError::Setup(e.clone()))?;
        let parsed = parse_url(url)?;
        let mut req = client.get(parsed.clone());
        if let Some(from) = from {
            req = req.header(header::RANGE, format!("bytes={from}-"));
        }
        if let Some(overall) = self.settings.overall_timeout {
            req = req.timeout(overall);
        }
        let started = std::time::Instant::now();
        match req.send().await {
            Ok(inner) => Ok(Response {
                inner,
                settings: self.settings.clone(),
                started,
            }),
            Err(e) => Err(self.request_error(&e, &parsed)),
        }
    }

    /// Sends one API request: `method` to `url` with `headers` (mark credentials sensitive)
    /// and, if given, a body with its content type. Any status comes back as a response, as
    /// with [`HttpClient::get`].
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Response, HttpError> {
        let client = self
            .inner
            .as_ref()
            .map_err(|e| HttpError::Setup(e.clone()))?;
        let parsed = parse_url(url)?;
        let mut req = client.request(method, parsed.clone()).headers(headers);
        if let Some((content_type, bytes)) = body {
            req = req.header(header::CONTENT_TYPE, content_type).body(bytes);
        }
        if let Some(overall) = self.settings.overall_timeout {
            req = req.timeout(overall);
        }
        let started = std::time::Instant::now();
        match req.send().await {
            Ok(inner) => Ok(Response {
                inner,
                settings: self.settings.clone(),
                started,
            }),
            Err(e) => Err(self.request_error(&e, &parsed)),
        }
    }

    /// Turns reqwest's error for a request that got no answer into ours.
    fn request_error(&self, e: &reqwest::Error, asked: &Url) -> HttpError {
        let at = e.url().unwrap_or(asked);
        if in_chain::<TooManyRedirects>(e) {
            return HttpError::TooManyRedirects {
                url: shown(at.as_str()),
            };
        }
        if in_chain::<BadRedirect>(e) || e.is_builder() {
            // A redirect's target is the server's, not the owner's words: no query shown.
            return HttpError::BadUrl(shown(at.as_str()));
        }
        let host = host_of(at);
        if let Some(reason) = tls_failure(e) {
            // With no trusted authority every certificate fails: say that instead.
            return match &self.no_trust {
                Some(file) => HttpError::NoTrust(file.clone()),
                None => HttpError::Tls { host, reason },
            };
        }
        let reason = if e.is_timeout() {
            let waited = if e.is_connect() {
                self.settings.connect_timeout
            } else {
                self.settings.idle_timeout
            };
            format!("no answer within {} s", waited.as_secs())
        } else {
            root_cause(e)
        };
        HttpError::Unreachable { host, reason }
    }
}

fn build(settings: &Settings, tls: rustls::ClientConfig) -> reqwest::Result<reqwest::Client> {
    let max = settings.max_redirects;
    let mut headers = HeaderMap::new();
    // Sizes, ranges and checksums refer to the bytes as stored, so no content coding.
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(format!("Homelab/{} (homelabd)", settings.version))
        .default_headers(headers)
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.idle_timeout)
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if max == 0 {
                // No redirects at all: the caller sees the 3xx answer and says what it means
                // (an API that redirects is being set up, or wants another address).
                attempt.stop()
            } else if attempt.previous().len() > max {
                attempt.error(TooManyRedirects)
            } else if !usable(attempt.url()) {
                attempt.error(BadRedirect)
            } else {
                attempt.follow()
            }
        }))
        // A Referer would hand the previous address, query and all, to the next server.
        .referer(false)
        // Straight to the server, as the daemon always did; a proxy from the environment
        // would be a surprise on an appliance.
        .no_proxy()
        .build()
}

/// The TLS settings: ring (the provider the daemon already carries), the safe default
/// protocol versions, and only the CA file's roots. Returns how many roots were usable; none
/// still builds a config (plain http must keep working), whose every check then fails.
fn tls_config(ca_file: &Path) -> Result<(rustls::ClientConfig, usize), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = match CertificateDer::pem_file_iter(ca_file) {
        Ok(iter) => iter.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    };
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((config, added))
}

/// Whether an error of type `T` is somewhere in `e`'s chain of causes.
fn in_chain<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<T>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The TLS library's reason, when the handshake is what failed. rustls's error reaches us
/// wrapped in I/O errors (two deep), whose `source()` skips what they wrap, so each I/O
/// error is opened.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// The innermost cause's words ("Connection refused (os error 111)"): the outer layers only
/// repeat the URL, which may carry a token.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// An answer whose head has arrived; the body is read through it.
pub struct Response {
    inner: reqwest::Response,
    settings: Arc<Settings>,
    /// When the request was sent, to tell the overall timeout from the idle one.
    started: std::time::Instant,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The address the answer finally came from (after redirects), to resolve relative
    /// addresses in it against.
    pub fn url(&self) -> &Url {
        self.inner.url()
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.inner.headers().get(name)?.to_str().ok()
    }

    /// Where a 206 answer's bytes start (`Content-Range: bytes 100-199/200`); None for any
    /// other answer, which then carries the whole file.
    pub fn resumes_at(&self) -> Option<u64> {
        if self.status() != StatusCode::PARTIAL_CONTENT {
            return None;
        }
        let range = self.header(header::CONTENT_RANGE)?.strip_prefix("bytes ")?;
        range.split('-').next()?.trim().parse().ok()
    }

    /// The whole body, refused once it passes `limit` bytes (before reading anything when
    /// the server announces a larger size).
    pub async fn bytes(self, limit: u64) -> Result<Bytes, HttpError> {
        if self.inner.content_length().is_some_and(|len| len > limit) {
            return Err(HttpError::TooLarge(limit));
        }
        let mut body = self.stream();
        let mut out = Vec::new();
        while let Some(piece) = body.next().await {
            let piece = piece?;
            if (out.len() + piece.len()) as u64 > limit {
                return Err(HttpError::TooLarge(limit));
            }
            out.extend_from_slice(&piece);
        }
        Ok(out.into())
    }

    /// The body as it arrives, piece by piece; each piece comes within the idle timeout or
    /// the stream ends with [`HttpError::Idle`].
    pub fn stream(self) -> impl Stream<Item = Result<Bytes, HttpError>> + Send + Unpin + 'static {
        let idle = self.settings.idle_timeout;
        let overall = self.settings.overall_timeout;
        let started = self.started;
        Box::pin(self.inner.bytes_stream().map(move |piece| {
            piece.map_err(|e| match overall {
                // reqwest does not say which of its timers fired; the elapsed time does.
                Some(o) if e.is_timeout() && started.elapsed() >= o => {
                    HttpError::Cut(format!("it took longer than {} s", o.as_secs()))
                }
                _ if e.is_timeout() => HttpError::Idle(idle),
                _ => HttpError::Cut(root_cause(&e)),
            })
        }))
    }
}

// --- Certificate pinning and API calls (for the router's API: a box with its own
// self-signed certificate, trusted the way SSH host keys are: on first use, by fingerprint).

/// The SHA-256 fingerprint of a certificate (DER), as routers show it: upper-case hex pairs
/// joined by colons ("AB:CD:…").
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(der);
    let mut out = String::with_capacity(95);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// A fingerprint as the owner may paste it (any case, colons, spaces) in the canonical form
/// [`fingerprint`] gives; None when it is not 32 bytes of hex.
pub fn normal_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let upper = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..32).map(|i| &upper[2 * i..2 * i + 2]).collect();
    Some(pairs.join(":"))
}

/// The leaf certificate a pinned client was last shown, by fingerprint: how first contact
/// learns what to ask the owner to confirm, and how a refused handshake tells "the
/// certificate changed" from any other TLS failure.
#[derive(Clone, Default)]
pub struct SeenCert(Arc<std::sync::Mutex<Option<Vec<u8>>>>);

impl SeenCert {
    pub fn fingerprint(&self) -> Option<String> {
        self.der().map(|der| fingerprint(&der))
    }

    /// The certificate itself (DER), for a client that pins it in a file of its own.
    pub fn der(&self) -> Option<Vec<u8>> {
        self.0.lock().map(|g| g.clone()).unwrap_or(None)
    }
}

/// Accepts exactly one leaf certificate (by SHA-256 fingerprint), or with no pin any leaf
/// (first contact, recorded for the owner to confirm, nothing else sent but the request).
/// The handshake's signatures are still verified against the presented key, so a server
/// must hold the pinned certificate's private key. Names and dates are not checked: a
/// router's self-signed certificate carries whatever name it was made with, and an owner
/// who pinned it has said which certificate it is.
#[derive(Debug)]
struct PinVerifier {
    pin: Option<String>,
    seen: SeenCert,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for SeenCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeenCert({:?})", self.fingerprint())
    }
}

impl rustls::client::danger::ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity.as_ref());
        if let Ok(mut slot) = self.seen.0.lock() {
            *slot = Some(end_entity.as_ref().to_vec());
        }
        match &self.pin {
            Some(pin) if *pin != seen => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl HttpClient {
    /// A client that trusts one certificate instead of the CA file: `pin` is its SHA-256
    /// fingerprint (any form [`normal_fingerprint`] reads). With `None` it accepts whichever
    /// certificate the server shows and records it in the returned [`SeenCert`], for a first
    /// contact that asks the owner to confirm it. A wrong pin is a [`HttpError::Tls`] whose
    /// cause the `SeenCert` tells (it holds the certificate that was refused).
    pub fn pinned(settings: Settings, pin: Option<&str>) -> (HttpClient, SeenCert) {
        let seen = SeenCert::default();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(PinVerifier {
            pin: pin.map(|p| normal_fingerprint(p).unwrap_or_else(|| p.to_string())),
            seen: seen.clone(),
            algorithms: provider.signature_verification_algorithms,
        });
        let inner = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth()
            })
            .and_then(|tls| build(&settings, tls).map_err(|e| e.to_string()));
        let client = HttpClient {
            inner,
            no_trust: None,
            settings: Arc::new(settings),
        };
        (client, seen)
    }

    /// Sends one API request: `method` to `url`, with HTTP Basic credentials when given and a
    /// JSON body when given. Any status comes back as a response; what it means is the
    /// caller's to say. The credentials go in a header only, never into a URL or a message.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        basic: Option<(&str, &str)>,
        json: Option<&serde_json::Value>,
    ) -> Result<Response, HttpError> {
        let client = self
            .inner
            .as_ref()
            .map_err(|e| HttpError::Setup(e.clone()))?;
        let parsed = parse_url(url)?;
        let mut req = client.request(method, parsed.clone());
        if let Some((user, password)) = basic {
            req = req.basic_auth(user, Some(password));
        }
        if let Some(body) = json {
            req = req
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        req = req.header(header::ACCEPT, "application/json");
        if let Some(overall) = self.settings.overall_timeout {
            req = req.timeout(overall);
        }
        let started = std::time::Instant::now();
        match req.send().await {
            Ok(inner) => Ok(Response {
                inner,
                settings: self.settings.clone(),
                started,
            }),
            Err(e) => Err(self.request_error(&e, &parsed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server answering every request with what `answer` makes of its head (lower-cased);
    /// the heads are kept for the test to look at. Connections stay open until the client
    /// goes, so a body shorter than announced is a silent server, not a cut.
    async fn server(
        answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (seen, answer) = (heads.clone(), Arc::new(answer));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (seen, answer) = (seen.clone(), answer.clone());
                tokio::spawn(async move {
                    // Keep-alive: the client may send its next request on this connection.
                    loop {
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            if s.read(&mut byte).await.unwrap_or(0) == 0 {
                                return;
                            }
                            head.push(byte[0]);
                        }
                        let head = String::from_utf8_lossy(&head).to_lowercase();
                        let reply = answer(&head);
                        seen.lock().unwrap().push(head);
                        if s.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (base, heads)
    }

    fn client() -> HttpClient {
        HttpClient::new(Settings::new(Path::new("/nonexistent/ca.pem"), "1.0"))
    }

    #[tokio::test]
    async fn a_range_and_the_user_agent_are_sent_and_206_says_where_it_resumes() {
        let (base, heads) = server(|_| {
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 5\r\n\r\n56789".to_vec()
        })
        .await;
        let resp = client().get(&format!("{base}/f"), Some(5)).await.unwrap();
        assert_eq!(resp.resumes_at(), Some(5));
        assert_eq!(&resp.bytes(5).await.unwrap()[..], b"56789");
        let head = heads.lock().unwrap()[0].clone();
        assert!(head.contains("range: bytes=5-\r\n"), "{head}");
        assert!(
            head.contains("user-agent: homelab/1.0 (homelabd)\r\n"),
            "{head}"
        );
        assert!(head.contains("accept-encoding: identity\r\n"), "{head}");
    }

    #[tokio::test]
    async fn redirects_are_bounded_and_never_leak_the_address() {
        let (base, heads) = server(|head| {
            if head.starts_with("get /ftp") {
                b"HTTP/1.1 302 Found\r\nLocation: ftp://h/x\r\nContent-Length: 0\r\n\r\n".to_vec()
            } else {
                b"HTTP/1.1 302 Found\r\nLocation: /loop?token=s3cret\r\nContent-Length: 0\r\n\r\n"
                    .to_vec()
            }
        })
        .await;
        let err = client()
            .get(&format!("{base}/loop?token=s3cret"), None)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, HttpError::TooManyRedirects { .. }), "{err:?}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let heads = heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 6, "the first request and five redirects");
        assert!(heads.iter().all(|h| !h.contains("referer")), "{heads:?}");

        let err = client()
            .get(&format!("{base}/ftp"), None)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, HttpError::BadUrl(_)), "{err:?}");
    }

    #[tokio::test]
    async fn bodies_are_bounded_and_an_idle_server_is_given_up_on() {
        let (base, _) = server(|head| {
            if head.starts_with("get /big") {
                let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
                r.extend_from_slice(&[b'x'; 100]);
                r
            } else {
                // Announces ten bytes, sends two, then nothing.
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab".to_vec()
            }
        })
        .await;
        let resp = client().get(&format!("{base}/big"), None).await.unwrap();
        assert!(matches!(resp.bytes(99).await, Err(HttpError::TooLarge(99))));

        let mut settings = Settings::new(Path::new("/nonexistent/ca.pem"), "1.0");
        settings.idle_timeout = Duration::from_millis(300);
        let resp = HttpClient::new(settings)
            .get(&format!("{base}/slow"), None)
            .await
            .unwrap();
        let err = resp.bytes(100).await.unwrap_err();
        assert!(matches!(err, HttpError::Idle(_)), "{err:?}");
    }

    #[tokio::test]
    async fn send_carries_method_headers_and_body_and_zero_redirects_means_none() {
        let (base, heads) = server(|_| {
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n".to_vec()
        })
        .await;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut settings = Settings::new(Path::new("/nonexistent/ca.pem"), "1.0");
        settings.max_redirects = 0;
        let resp = HttpClient::new(settings)
            .send(
                Method::PUT,
                &format!("{base}/x"),
                headers,
                Some(("application/json", b"{}".to_vec())),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND, "not followed");
        let heads = heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 1);
        let head = &heads[0];
        assert!(head.starts_with("put /x "), "{head}");
        assert!(
            head.contains("content-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains("accept: application/json\r\n"), "{head}");
        assert!(head.contains("content-length: 2\r\n"), "{head}");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_with_the_systems_reason() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = client()
            .get(
                &format!("http://127.0.0.1:{port}/m.json?token=s3cret"),
                None,
            )
            .await
            .err()
            .unwrap();
        let HttpError::Unreachable { host, reason } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(host, &format!("127.0.0.1:{port}"));
        assert!(reason.contains("refused"), "{reason}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn only_plain_web_addresses_without_credentials_are_fetched() {
        for bad in [
            "ftp://h/m.json",
            "h/m.json",
            "",
            "http://",
            "http://user:pw@h/m.json",
            "http://user@h/m.json",
            "file:///etc/passwd",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} accepted");
        }
        let u = parse_url(" http://[fd00::1]:8080/m.json?t=1 ").unwrap();
        assert_eq!(host_of(&u), "[fd00::1]:8080");
        assert_eq!(host_of(&parse_url("https://h:443/").unwrap()), "h");
    }

    #[test]
    fn fingerprints_are_read_in_any_spelling_and_shown_one_way() {
        let canonical = fingerprint(b"certificate");
        assert_eq!(canonical.len(), 95);
        assert_eq!(normal_fingerprint(&canonical).as_deref(), Some(&*canonical));
        let loose = canonical.to_lowercase().replace(':', " ");
        assert_eq!(normal_fingerprint(&loose).as_deref(), Some(&*canonical));
        assert_eq!(normal_fingerprint("AB:CD"), None);
        assert_eq!(normal_fingerprint(&"ZZ".repeat(32)), None);
    }

    #[test]
    fn a_query_string_is_never_shown() {
        assert_eq!(shown("https://h/m.json?token=s3cret"), "https://h/m.json?…");
        assert_eq!(shown("https://h/m.json"), "https://h/m.json");
    }

    #[test]
    fn a_missing_ca_file_still_gives_a_client_for_plain_http() {
        let c = HttpClient::new(Settings::new(Path::new("/nonexistent/ca.pem"), "1.0"));
        assert!(c.inner.is_ok());
        assert_eq!(
            c.no_trust.as_deref(),
            Some(Path::new("/nonexistent/ca.pem"))
        );
    }
}
