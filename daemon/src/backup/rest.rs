//! A restic REST server (restic's rest-server, or `rclone serve restic`) as the box sees it:
//! its certificate, pinned like a device's host key when no public authority signed it (shown
//! by its SHA-256 fingerprint), and the few requests that let "Test connection" say in plain
//! words what restic would only report as an HTTP status: a server that does not answer, a
//! refused login, a folder without a repository yet, a server that only lets backups be added.
//!
//! restic itself runs on the devices (and on the box for its own backup) with the same pin:
//! the pinned certificate is handed to it as `--cacert` (Go accepts a certificate that is
//! itself in the trusted set, so a server's own self-signed certificate works there too).

use std::path::Path;
use std::time::Duration;

use crate::http_client::{self, HttpClient, HttpError, Method, StatusCode};
use crate::secrets::Secret;

/// A server that has not answered within this is treated as unreachable.
const TIMEOUT: Duration = Duration::from_secs(15);
/// The system's certificate authorities: what the devices' restic image trusts as well.
const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";
/// A snapshot no repository holds (restic names each file by the SHA-256 of its content):
/// removing it changes nothing, and a server that only lets backups be added refuses it with
/// 403 whether or not the folder holds a repository (rest-server and rclone both still allow
/// removing lock files, which every backup does, so a lock would not tell).
const NO_SNAPSHOT: &str =
    "snapshots/0000000000000000000000000000000000000000000000000000000000000000";
/// Certificates read from what the owner pasted (a server's file may carry its chain).
const MAX_PASTED: usize = 8;

/// Why a REST server cannot be used, in the owner's words with the fix.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error(
        "The box could not reach {place} ({reason}). Is the backup server running, and is its address right?"
    )]
    Unreachable { place: String, reason: String },
    #[error(
        "{0} refused the login. Check the login name and password: they are the ones the backup server was set up with."
    )]
    LoginRefused(String),
    #[error(
        "{place} now shows another certificate (fingerprint {seen}) than the one Homelab pinned for it ({pinned}). If the server got a new certificate, remove the destination and add it again; otherwise someone may be impersonating the server."
    )]
    CertChanged {
        place: String,
        pinned: String,
        seen: String,
    },
    #[error("{0}")]
    Refused(String),
}

/// What the requests found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The folder holds a restic repository already.
    pub repository: bool,
    /// The server refused to remove a (missing) snapshot with 403: it only lets backups be
    /// added.
    pub append_only: bool,
}

fn settings() -> http_client::Settings {
    let mut s = http_client::Settings::new(Path::new(SYSTEM_CA), crate::VERSION);
    s.connect_timeout = TIMEOUT;
    s.idle_timeout = TIMEOUT;
    s.overall_timeout = Some(TIMEOUT * 2);
    // A REST server answers where it is asked; a redirect is said as it is.
    s.max_redirects = 0;
    s
}

/// The SHA-256 fingerprint of the first certificate in `pem` (`AB:CD:…`), or None.
pub fn fingerprint(pem: &str) -> Option<String> {
    certificates(pem)
        .first()
        .map(|der| http_client::fingerprint(der))
}

/// The certificates (DER) in PEM text, at most `MAX_PASTED`.
fn certificates(pem: &str) -> Vec<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .take(MAX_PASTED)
        .map(|c| c.as_ref().to_vec())
        .collect()
}

/// A certificate (DER) as PEM.
fn to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The certificate an https server shows (DER), learnt from one request with nothing pinned
/// (the handshake's signatures are still checked; nothing but `HEAD /config` is sent).
async fn server_certificate(url: &str, place: &str) -> Result<Vec<u8>, RestError> {
    let (client, seen) = HttpClient::pinned(settings(), None);
    let answer = client
        .call(Method::HEAD, &format!("{url}/config"), None, None)
        .await;
    match (seen.der(), answer) {
        (Some(der), _) => Ok(der),
        (None, Err(HttpError::Unreachable { reason, .. })) => Err(RestError::Unreachable {
            place: place.to_string(),
            reason,
        }),
        (None, Err(e)) => Err(RestError::Refused(format!(
            "{place} did not make a secure connection ({e}). If the server does not use https, write its address with http://."
        ))),
        (None, Ok(_)) => Err(RestError::Refused(format!(
            "{place} showed no certificate."
        ))),
    }
}

/// What is pinned for a REST server, from what the owner gave (`given`, trimmed):
/// - nothing: none when a public authority signs the server's certificate (it is renewed
///   without asking anyone), else the server's own certificate, fetched now and pinned
///   (trusted on first use, as a device's host key is);
/// - a SHA-256 fingerprint (as `openssl x509 -fingerprint -sha256` prints it, any spelling):
///   the server's certificate, if it has that fingerprint;
/// - PEM (the server's certificate file, chain and all): the server's certificate, if it is
///   in there.
///
/// Returns the PEM to keep ("" for none). An http address has no certificate.
pub async fn resolve_certificate(url: &str, given: &str, place: &str) -> Result<String, RestError> {
    let parsed = http_client::parse_url(url)
        .map_err(|_| RestError::Refused(format!("{place}: the address is not usable.")))?;
    let given = given.trim();
    if parsed.scheme() == "http" {
        if !given.is_empty() {
            return Err(RestError::Refused(
                "An http:// address has no certificate: leave the certificate empty, or use the server's https:// address.".into(),
            ));
        }
        return Ok(String::new());
    }
    if given.is_empty() {
        // Publicly trusted: any answer over a checked connection says so.
        let client = HttpClient::new(settings());
        match client
            .call(Method::HEAD, &format!("{url}/config"), None, None)
            .await
        {
            Ok(_) => return Ok(String::new()),
            Err(HttpError::Unreachable { reason, .. }) => {
                return Err(RestError::Unreachable {
                    place: place.to_string(),
                    reason,
                });
            }
            // Its own certificate (or the box trusts no authority at all): pinned below.
            Err(_) => {}
        }
        return Ok(to_pem(&server_certificate(url, place).await?));
    }
    let shown = server_certificate(url, place).await?;
    let seen = http_client::fingerprint(&shown);
    let matches = match http_client::normal_fingerprint(given) {
        Some(fp) => fp == seen,
        None => {
            let pasted = certificates(given);
            if pasted.is_empty() {
                return Err(RestError::Refused(
                    "Paste the server's certificate as PEM (the text from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----), or its SHA-256 fingerprint.".into(),
                ));
            }
            pasted.contains(&shown)
        }
    };
    if !matches {
        return Err(RestError::Refused(format!(
            "{place} shows a certificate with the fingerprint {seen}, not the one you gave. Check that the address is the server's; if it is, compare that fingerprint with the server's own."
        )));
    }
    Ok(to_pem(&shown))
}

/// Asks the server what "Test connection" needs to know, with the login and the pinned
/// certificate (`certificate`, PEM; empty for http or a publicly trusted one).
pub async fn probe(
    url: &str,
    user: &Secret,
    password: &Secret,
    certificate: &str,
    place: &str,
) -> Result<Probe, RestError> {
    let pin = if certificate.is_empty() {
        None
    } else {
        Some(fingerprint(certificate).ok_or_else(|| {
            RestError::Refused(format!(
                "The certificate kept for {place} is unreadable: remove the destination and add it again."
            ))
        })?)
    };
    let (client, seen) = match &pin {
        Some(fp) => HttpClient::pinned(settings(), Some(fp)),
        None => (HttpClient::new(settings()), Default::default()),
    };
    let user = user.expose_str().unwrap_or_default();
    let password = password.expose_str().unwrap_or_default();
    let basic = (!user.is_empty()).then_some((user, password));
    let failure = |e: HttpError| match e {
        HttpError::Unreachable { reason, .. } => RestError::Unreachable {
            place: place.to_string(),
            reason,
        },
        HttpError::Tls { reason, .. } => match (&pin, seen.fingerprint()) {
            (Some(pinned), Some(now)) if *pinned != now => RestError::CertChanged {
                place: place.to_string(),
                pinned: pinned.clone(),
                seen: now,
            },
            (None, _) => RestError::Refused(format!(
                "{place}'s certificate is not signed by an authority the box trusts ({reason}). Remove the destination and add it again: Homelab then shows the server's own certificate and pins it."
            )),
            _ => RestError::Refused(format!(
                "{place} did not make a secure connection ({reason})."
            )),
        },
        e => RestError::Refused(format!("{place} could not be asked: {e}.")),
    };
    let status_words = |status: StatusCode| match status {
        StatusCode::UNAUTHORIZED => RestError::LoginRefused(place.to_string()),
        StatusCode::FORBIDDEN => RestError::Refused(format!(
            "{place} does not let this login use that folder. Check the folder in the address and the login's rights on the server."
        )),
        s if s.is_redirection() => RestError::Refused(format!(
            "{place} sends the box elsewhere ({s}): use the address it names (https:// instead of http://?)."
        )),
        s => RestError::Refused(format!(
            "{place} answered {s}: is this the address of a restic REST server (rest-server, or rclone serve restic)?"
        )),
    };
    let config = client
        .call(Method::HEAD, &format!("{url}/config"), basic, None)
        .await
        .map_err(failure)?;
    let repository = match config.status() {
        StatusCode::OK => true,
        StatusCode::NOT_FOUND => false,
        s => return Err(status_words(s)),
    };
    let removed = client
        .call(Method::DELETE, &format!("{url}/{NO_SNAPSHOT}"), basic, None)
        .await
        .map_err(failure)?;
    let append_only = match removed.status() {
        StatusCode::FORBIDDEN => true,
        StatusCode::UNAUTHORIZED => return Err(RestError::LoginRefused(place.to_string())),
        _ => false,
    };
    Ok(Probe {
        repository,
        append_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_goes_both_ways_and_names_its_fingerprint() {
        let der = b"not really a certificate, but bytes all the same".to_vec();
        let pem = to_pem(&der);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(certificates(&pem), vec![der.clone()]);
        assert_eq!(fingerprint(&pem), Some(http_client::fingerprint(&der)));
        assert_eq!(fingerprint("no certificate here"), None);
    }
}
