//! Checking an app's name from the box: does it resolve (the system resolver for DNS names,
//! a one-shot mDNS question for `.local` names), does it point at the app's device, and does
//! that device answer HTTPS for the name with a certificate that verifies against ONLY the
//! homelab's root. Every step is bounded (resolving ≤ 3 s, HTTPS ≤ 5 s, run side by side), so
//! a check never hangs; each outcome is a plain sentence for the page, with the technical
//! cause kept apart for Advanced mode.
//!
//! The `.local` question is asked the RFC 6762 §6.7 "legacy unicast" way: sent from an
//! ephemeral port to 224.0.0.251:5353, so responders (mdns-sd: `service_daemon.rs`
//! `is_legacy_querier`/`send_response` in 0.21.7; Avahi likewise) answer straight back to us
//! with the question's id. That needs no mDNS daemon of our own (the box keeps one, in
//! `dns::mdns`), and it checks our own announcements the way any other machine would see them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rustls::CertificateError;
use rustls::pki_types::ServerName;

use crate::tls::trust::Trust;
use time::OffsetDateTime;

/// How long resolving may take (the system resolver, or listening for mDNS answers).
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long connecting and the TLS handshake may take together.
pub const HTTPS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to listen for mDNS answers (responders answer within ~500 ms; RFC 6762 §6).
const MDNS_LISTEN: Duration = Duration::from_secs(2);
/// At most this many addresses are kept from an answer: a page lists them.
const MAX_ADDRESSES: usize = 16;
/// mDNS packets are at most 9000 bytes (RFC 6762 §17); bigger reads are cut.
const MAX_PACKET: usize = 9000;
const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const MDNS_PORT: u16 = 5353;

/// Internal failures; they end up in [`NameCheck::detail`], never as the page's sentence.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("not a valid name")]
    BadName,
    #[error("mDNS question: {0}")]
    Io(#[from] std::io::Error),
}

/// How the app's device answered HTTPS for the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Https {
    /// A certificate for the name, signed by the homelab's root, in date.
    Trusted,
    /// A certificate someone else signed (another CA, or self-signed).
    Untrusted,
    /// Signed by the homelab, but for another name.
    WrongName,
    Expired,
    /// Connection refused: nothing listens on the port.
    NothingListening,
    /// No answer before [`HTTPS_TIMEOUT`].
    NoAnswer,
    /// Anything else (the cause is in `detail`).
    Failed,
}

/// What a check found, as facts for code and sentences for the page.
#[derive(Debug, Clone)]
pub struct NameCheck {
    pub name: String,
    /// What the name resolved to (empty when it did not).
    pub addresses: Vec<IpAddr>,
    pub expected: IpAddr,
    /// The name resolved to at least one address.
    pub resolves: bool,
    /// One of those addresses is the app's device.
    pub points_right: bool,
    pub https: Https,
    /// The certificate's expiry, when a trusted one was seen.
    pub not_after: Option<OffsetDateTime>,
    /// One sentence on resolving ("Resolves to 10.88.0.12, the app's device.").
    pub resolution: String,
    /// One sentence on the secure connection.
    pub certificate: String,
    /// The technical detail (ports, errors) for Advanced mode.
    pub detail: String,
}

impl NameCheck {
    /// Everything is right: resolves to the device, which answers with a trusted certificate.
    pub fn ok(&self) -> bool {
        self.points_right && self.https == Https::Trusted
    }

    /// The whole finding in one sentence, with the device in the owner's words
    /// ("Resolves to Server 1 and answers with a trusted certificate").
    pub fn sentence(&self, device: &str) -> String {
        if !self.resolves {
            return self.resolution.clone();
        }
        if !self.points_right {
            return format!("Points at {}, not at {device}.", list(&self.addresses));
        }
        if self.https == Https::Trusted {
            return format!("Resolves to {device} and answers with a trusted certificate.");
        }
        format!("Resolves to {device}, but: {}", self.certificate)
    }
}

fn list(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks `name` from the box: resolving (mDNS on every LAN interface for `.local` names),
/// pointing at `expect_ip`, and HTTPS on `port` at `expect_ip` verified against `trust` only.
pub async fn check(name: &str, expect_ip: IpAddr, trust: &Trust, port: u16) -> NameCheck {
    check_on(None, name, expect_ip, trust, port).await
}

/// [`check`], asking `.local` names only on the interfaces in `only` (the box's mDNS
/// interfaces setting; tests keep every packet on the lab's bridge).
pub async fn check_on(
    only: Option<&[String]>,
    name: &str,
    expect_ip: IpAddr,
    trust: &Trust,
    port: u16,
) -> NameCheck {
    let clean = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = clean.len() <= 253
        && clean
            .split('.')
            .all(|l| super::mdns::valid_label(l).is_ok());
    if !valid {
        let shown = crate::limits::truncate(name, 80).into_owned();
        return NameCheck {
            name: shown.clone(),
            addresses: vec![],
            expected: expect_ip,
            resolves: false,
            points_right: false,
            https: Https::Failed,
            not_after: None,
            resolution: format!("“{shown}” is not a name that can be looked up."),
            certificate: "Not checked.".into(),
            detail: CheckError::BadName.to_string(),
        };
    }
    let (resolved, https) =
        tokio::join!(resolve(&clean, only), https(&clean, expect_ip, port, trust));
    let mut detail = Vec::new();
    let addresses = match resolved {
        Ok(a) => a,
        Err(why) => {
            detail.push(format!("resolving: {why}"));
            vec![]
        }
    };
    let resolves = !addresses.is_empty();
    let points_right = addresses.contains(&expect_ip);
    let resolution = if !resolves {
        if clean.ends_with(".local") {
            "Does not resolve yet: no device on your network answered for this name.".to_string()
        } else {
            "Does not resolve yet: your network does not know this name.".to_string()
        }
    } else if points_right {
        format!("Resolves to {expect_ip}, the app's device.")
    } else {
        format!(
            "Points at {}, not at the app's device ({expect_ip}).",
            list(&addresses)
        )
    };
    let (kind, not_after, why) = match https {
        Ok(not_after) => (Https::Trusted, not_after, None),
        Err((kind, why)) => (kind, None, Some(why)),
    };
    if let Some(why) = why {
        detail.push(format!("HTTPS at {expect_ip}:{port}: {why}"));
    }
    let certificate = match kind {
        Https::Trusted => match not_after {
            Some(t) => format!(
                "Answers securely with a certificate from your homelab, valid until {}.",
                day(t)
            ),
            None => "Answers securely with a certificate from your homelab.".into(),
        },
        Https::Untrusted => "Answers, but with a certificate your homelab did not make.".into(),
        Https::WrongName => "Answers with a certificate made for another name.".into(),
        Https::Expired => "Answers with a certificate that has expired.".into(),
        Https::NothingListening => {
            format!("Nothing at {expect_ip} answers secure connections yet.")
        }
        Https::NoAnswer => format!(
            "{expect_ip} did not answer within {} seconds.",
            HTTPS_TIMEOUT.as_secs()
        ),
        Https::Failed => "A secure connection could not be made.".into(),
    };
    NameCheck {
        name: clean,
        addresses,
        expected: expect_ip,
        resolves,
        points_right,
        https: kind,
        not_after,
        resolution,
        certificate,
        detail: detail.join("; "),
    }
}

/// "5 December 2027".
fn day(t: OffsetDateTime) -> String {
    format!("{} {} {}", t.day(), t.month(), t.year())
}

async fn resolve(name: &str, only: Option<&[String]>) -> Result<Vec<IpAddr>, String> {
    if name.ends_with(".local") {
        return mdns_resolve(name, only).await.map_err(|e| e.to_string());
    }
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, 0))).await {
        Err(_) => Err(format!("no answer within {RESOLVE_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(addrs)) => {
            let mut out: Vec<IpAddr> = Vec::new();
            for a in addrs {
                if !out.contains(&a.ip()) && out.len() < MAX_ADDRESSES {
                    out.push(a.ip());
                }
            }
            Ok(out)
        }
    }
}

/// Asks 224.0.0.251 for `name`'s A and AAAA records from every LAN IPv4 address (binding the
/// source address makes Linux send the multicast out of that address's interface) and
/// collects the unicast answers for [`MDNS_LISTEN`].
async fn mdns_resolve(name: &str, only: Option<&[String]>) -> Result<Vec<IpAddr>, CheckError> {
    let id: u16 = {
        let mut b = [0u8; 2];
        getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
        u16::from_be_bytes(b)
    };
    let query = encode_query(id, name);
    let mut sockets = Vec::new();
    for (_, ip) in crate::discovery::lan_interfaces(only) {
        let IpAddr::V4(v4) = ip else { continue };
        let sock = tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(v4), 0)).await?;
        if sock
            .send_to(&query, SocketAddr::new(IpAddr::V4(MDNS_GROUP), MDNS_PORT))
            .await
            .is_ok()
        {
            sockets.push(sock);
        }
    }
    let deadline = tokio::time::Instant::now() + MDNS_LISTEN;
    let mut out: Vec<IpAddr> = Vec::new();
    let listen = sockets.iter().map(|s| async {
        let mut found = Vec::new();
        let mut buf = vec![0u8; MAX_PACKET];
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, s.recv_from(&mut buf)).await {
            found.extend(parse_answers(&buf[..n], id, name));
            // One full answer is enough from this interface.
            if !found.is_empty() {
                break;
            }
        }
        found
    });
    for found in futures_util::future::join_all(listen).await {
        for ip in found {
            if !out.contains(&ip) && out.len() < MAX_ADDRESSES {
                out.push(ip);
            }
        }
    }
    Ok(out)
}

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A DNS query (RFC 1035 §4.1) with two questions: A and AAAA for `name`.
fn encode_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0]); // flags 0, 2 questions
    for qtype in [TYPE_A, TYPE_AAAA] {
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
    }
    q
}

/// A/AAAA answers for `name` in a response to query `id` (every section: mDNS responders
/// put addresses in answers or additionals). Malformed packets yield what was read so far.
fn parse_answers(p: &[u8], id: u16, name: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let u16_at =
        |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?])) };
    let (Some(got_id), Some(flags)) = (u16_at(0), u16_at(2)) else {
        return out;
    };
    if got_id != id || flags & 0x8000 == 0 {
        return out;
    }
    let (Some(qd), Some(an), Some(ns), Some(ar)) = (u16_at(4), u16_at(6), u16_at(8), u16_at(10))
    else {
        return out;
    };
    let mut pos = 12;
    for _ in 0..qd {
        let Some((_, next)) = read_name(p, pos) else {
            return out;
        };
        pos = next + 4;
    }
    for _ in 0..(an as usize + ns as usize + ar as usize) {
        let Some((rname, next)) = read_name(p, pos) else {
            return out;
        };
        let (Some(rtype), Some(rclass)) = (u16_at(next), u16_at(next + 2)) else {
            return out;
        };
        let Some(rdlen) = u16_at(next + 8) else {
            return out;
        };
        let start = next + 10;
        let end = start + rdlen as usize;
        let Some(rdata) = p.get(start..end) else {
            return out;
        };
        // The top bit of the class is mDNS's cache-flush flag (RFC 6762 §10.2).
        if rclass & 0x7fff == CLASS_IN && rname.eq_ignore_ascii_case(name) {
            match (rtype, rdata.len()) {
                (TYPE_A, 4) => out.push(IpAddr::from([rdata[0], rdata[1], rdata[2], rdata[3]])),
                (TYPE_AAAA, 16) => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(rdata);
                    out.push(IpAddr::from(b));
                }
                _ => {}
            }
        }
        pos = end;
    }
    out
}

/// A (possibly compressed, RFC 1035 §4.1.4) name at `pos`: the dotted name and the offset
/// just after it. Pointer chains are bounded so a hostile packet cannot loop.
fn read_name(p: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut after = None;
    for _ in 0..64 {
        let len = *p.get(pos)? as usize;
        if len == 0 {
            return Some((labels.join("."), after.unwrap_or(pos + 1)));
        }
        if len & 0xc0 == 0xc0 {
            let target = ((len & 0x3f) << 8) | *p.get(pos + 1)? as usize;
            after.get_or_insert(pos + 2);
            pos = target;
            continue;
        }
        let label = p.get(pos + 1..pos + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        pos += 1 + len;
    }
    None
}

/// Connects to `ip:port`, handshakes for `name` trusting only `trust`, and returns the
/// certificate's expiry; or what went wrong, as a kind and the technical cause.
async fn https(
    name: &str,
    ip: IpAddr,
    port: u16,
    trust: &Trust,
) -> Result<Option<OffsetDateTime>, (Https, String)> {
    let connector = trust.connector();
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| (Https::Failed, format!("{}: {e}", CheckError::BadName)))?;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(SocketAddr::new(ip, port)).await?;
        connector.connect(server_name, tcp).await
    };
    let stream = match tokio::time::timeout(HTTPS_TIMEOUT, attempt).await {
        Err(_) => {
            return Err((
                Https::NoAnswer,
                format!("no answer within {HTTPS_TIMEOUT:?}"),
            ));
        }
        Ok(Err(e)) => return Err(classify(&e)),
        Ok(Ok(s)) => s,
    };
    let (_, conn) = stream.get_ref();
    Ok(conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|leaf| not_after(leaf.as_ref())))
}

fn classify(e: &std::io::Error) -> (Https, String) {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        return (Https::NothingListening, e.to_string());
    }
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let kind = match tls {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => Https::Untrusted,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Https::WrongName
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Https::Expired,
            _ => Https::Failed,
        },
        _ => Https::Failed,
    };
    (kind, e.to_string())
}

/// The notAfter of a DER certificate (RFC 5280 §4.1): Certificate → tbsCertificate →
/// [version] serial signature issuer validity{notBefore notAfter}.
fn not_after(der: &[u8]) -> Option<OffsetDateTime> {
    let (_, cert, _) = tlv(der, 0)?;
    let (_, tbs, _) = tlv(der, cert.start)?;
    let mut pos = tbs.start;
    let (tag, _, next) = tlv(der, pos)?;
    if tag == 0xa0 {
        pos = next; // explicit version
    }
    for _ in 0..3 {
        pos = tlv(der, pos)?.2; // serial, signature, issuer
    }
    let (_, validity, _) = tlv(der, pos)?;
    let (_, _, after_before) = tlv(der, validity.start)?;
    let (tag, t, _) = tlv(der, after_before)?;
    parse_time(tag, der.get(t)?)
}

/// One DER element at `pos`: its tag, its content range, and where the next element starts.
fn tlv(der: &[u8], pos: usize) -> Option<(u8, std::ops::Range<usize>, usize)> {
    let tag = *der.get(pos)?;
    let first = *der.get(pos + 1)? as usize;
    let (len, start) = if first < 0x80 {
        (first, pos + 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *der.get(pos + 2 + i)? as usize;
        }
        (len, pos + 2 + n)
    };
    let end = start.checked_add(len)?;
    (end <= der.len()).then_some((tag, start..end, end))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, 0x18).
fn parse_time(tag: u8, s: &[u8]) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(s).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i32 = s.get(0..2)?.parse().ok()?;
            // RFC 5280 §4.1.2.5.1: 50–99 are 19xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(0..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| -> Option<u8> { rest.get(r)?.parse().ok() };
    let month = time::Month::try_from(n(0..2)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, n(2..4)?).ok()?;
    let t = time::Time::from_hms(n(4..6)?, n(6..8)?, n(8..10)?).ok()?;
    Some(date.with_time(t).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::sync::Arc;
    use tokio_rustls::TlsAcceptor;

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        der: Vec<u8>,
    }

    fn ca(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        let cert = p.self_signed(&key).unwrap();
        Ca {
            der: cert.der().to_vec(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A TLS server on 127.0.0.1 presenting a leaf for `names` signed by `ca`, valid until
    /// `until`; it answers every connection with a handshake and nothing else.
    async fn server(ca: &Ca, names: &[&str], until: OffsetDateTime) -> u16 {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.not_before = OffsetDateTime::now_utc() - time::Duration::days(2);
        p.not_after = until;
        let leaf = p.signed_by(&key, &ca.issuer).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let a = acceptor.clone();
                tokio::spawn(async move {
                    let _ = a.accept(tcp).await;
                });
            }
        });
        port
    }

    fn localhost() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    fn in_a_year() -> OffsetDateTime {
        (OffsetDateTime::now_utc() + time::Duration::days(365))
            .replace_nanosecond(0)
            .unwrap()
    }

    #[tokio::test]
    async fn a_name_served_with_our_certificate_is_trusted_and_its_expiry_read() {
        let ours = ca("Homelab test root");
        let until = in_a_year();
        let port = server(&ours, &["localhost"], until).await;
        let c = check(
            "localhost",
            localhost(),
            &Trust::only(&ours.der).unwrap(),
            port,
        )
        .await;
        assert!(c.resolves && c.points_right, "{c:?}");
        assert_eq!(c.https, Https::Trusted, "{c:?}");
        assert!(c.ok());
        assert_eq!(c.not_after, Some(until));
        assert_eq!(
            c.sentence("Server 1"),
            "Resolves to Server 1 and answers with a trusted certificate."
        );
        assert!(c.certificate.contains("valid until"), "{}", c.certificate);
    }

    #[tokio::test]
    async fn a_certificate_from_another_authority_is_not_trusted() {
        let ours = ca("Homelab test root");
        let theirs = ca("Someone else");
        let port = server(&theirs, &["localhost"], in_a_year()).await;
        let c = check(
            "localhost",
            localhost(),
            &Trust::only(&ours.der).unwrap(),
            port,
        )
        .await;
        assert_eq!(c.https, Https::Untrusted, "{c:?}");
        assert!(!c.ok() && c.not_after.is_none());
        assert!(
            c.sentence("Server 1")
                .starts_with("Resolves to Server 1, but: Answers, but")
        );
    }

    #[tokio::test]
    async fn a_certificate_for_another_name_is_refused() {
        let ours = ca("Homelab test root");
        let port = server(&ours, &["jellyfin.home.arpa"], in_a_year()).await;
        let c = check(
            "localhost",
            localhost(),
            &Trust::only(&ours.der).unwrap(),
            port,
        )
        .await;
        assert_eq!(c.https, Https::WrongName, "{c:?}");
        assert!(
            c.detail.contains(&format!("127.0.0.1:{port}")),
            "{}",
            c.detail
        );
    }

    #[tokio::test]
    async fn an_expired_certificate_is_said_so() {
        let ours = ca("Homelab test root");
        let port = server(
            &ours,
            &["localhost"],
            OffsetDateTime::now_utc() - time::Duration::days(1),
        )
        .await;
        let c = check(
            "localhost",
            localhost(),
            &Trust::only(&ours.der).unwrap(),
            port,
        )
        .await;
        assert_eq!(c.https, Https::Expired, "{c:?}");
    }

    #[tokio::test]
    async fn nothing_listening_is_said_plainly() {
        let ours = ca("Homelab test root");
        // A port that was just free: bound and released.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = check(
            "localhost",
            localhost(),
            &Trust::only(&ours.der).unwrap(),
            port,
        )
        .await;
        assert_eq!(c.https, Https::NothingListening, "{c:?}");
        assert!(c.resolves && c.points_right);
        assert_eq!(
            c.certificate,
            "Nothing at 127.0.0.1 answers secure connections yet."
        );
    }

    #[tokio::test]
    async fn a_name_pointing_elsewhere_is_reported_with_where_it_points() {
        let ours = ca("Homelab test root");
        let port = server(&ours, &["localhost"], in_a_year()).await;
        let device = IpAddr::from([127, 0, 0, 2]);
        let c = check("localhost", device, &Trust::only(&ours.der).unwrap(), port).await;
        assert!(c.resolves && !c.points_right, "{c:?}");
        assert!(c.addresses.contains(&localhost()));
        assert!(
            c.sentence("Server 2").starts_with("Points at 127.0.0.1")
                && c.sentence("Server 2").ends_with("not at Server 2."),
            "{}",
            c.sentence("Server 2")
        );
        assert!(!c.ok());
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_and_a_bad_name_end_quickly() {
        let ours = ca("Homelab test root");
        let started = std::time::Instant::now();
        // `.invalid` never resolves (RFC 6761 §6.4).
        let c = check(
            "nothing.invalid",
            localhost(),
            &Trust::only(&ours.der).unwrap(),
            1,
        )
        .await;
        assert!(!c.resolves && !c.points_right, "{c:?}");
        assert!(
            c.resolution.starts_with("Does not resolve yet"),
            "{}",
            c.resolution
        );
        let bad = check("a..b", localhost(), &Trust::only(&ours.der).unwrap(), 443).await;
        assert!(!bad.resolves && bad.resolution.contains("not a name"));
        assert!(started.elapsed() < RESOLVE_TIMEOUT + HTTPS_TIMEOUT);
    }

    #[test]
    fn mdns_answers_are_read_with_compressed_names_and_the_cache_flush_bit() {
        let q = encode_query(0x1234, "vaultwarden.local");
        // A response: header (QR, AA), the first question echoed, one A answer whose name is
        // a pointer to the question's name, class IN with the cache-flush bit.
        let qname_len = "vaultwarden.local".len() + 2;
        let mut r = vec![0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
        r.extend_from_slice(&q[12..12 + qname_len + 4]);
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4, 10, 88, 0, 12]);
        assert_eq!(
            parse_answers(&r, 0x1234, "vaultwarden.local"),
            vec![IpAddr::from([10, 88, 0, 12])]
        );
        assert!(
            parse_answers(&r, 0x9999, "vaultwarden.local").is_empty(),
            "another id"
        );
        assert!(
            parse_answers(&r, 0x1234, "other.local").is_empty(),
            "another name"
        );
        // A pointer loop ends without hanging.
        let mut lp = vec![0x12, 0x34, 0x84, 0x00, 0, 0, 0, 1, 0, 0, 0, 0];
        lp.extend_from_slice(&[0xc0, 12]);
        assert!(parse_answers(&lp, 0x1234, "x.local").is_empty());
    }

    #[test]
    fn both_time_forms_are_read() {
        let t = parse_time(0x17, b"271205101112Z").unwrap();
        assert_eq!((t.year(), t.day(), t.second()), (2027, 5, 12));
        let g = parse_time(0x18, b"20501231235959Z").unwrap();
        assert_eq!(g.year(), 2050);
        assert!(parse_time(0x17, b"garbage").is_none());
    }
}
