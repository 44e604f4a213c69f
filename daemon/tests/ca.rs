//! The homelab's own certificate authority, against real verifiers: the root persists (its
//! key sealed), leaves verify with rustls-webpki, OpenSSL and curl, a leaf for a name outside
//! the root's name constraints is refused by the authority and rejected by webpki and OpenSSL
//! even when signed with the real root key, the running HTTPS listener serves leaf + root and
//! swaps in a renewed certificate for new connections without a restart, and Settings → Trust
//! this homelab hands out the same root (PEM and DER) to signed-in owners only.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use homelabd::tls::ca::{Authority, renewal_due};
use homelabd::{Config, Listeners};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

fn der_of(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// webpki's verdict on `leaf` (alone, issued directly by `root`) for `name`, at `at`.
fn webpki_verify(
    root_pem: &str,
    leaf_pem: &str,
    name: &str,
    at: time::OffsetDateTime,
) -> Result<(), webpki::Error> {
    let root = der_of(root_pem);
    let anchor = webpki::anchor_from_trusted_cert(&root).unwrap();
    let leaf = der_of(leaf_pem);
    let cert = webpki::EndEntityCert::try_from(&leaf).unwrap();
    let at = UnixTime::since_unix_epoch(Duration::from_secs(at.unix_timestamp() as u64));
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        at,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )?;
    cert.verify_is_valid_for_subject_name(&ServerName::try_from(name.to_string()).unwrap())
}

/// `openssl verify` of `leaf` against `root` only; Ok(stdout) or Err(stdout+stderr).
fn openssl_verify(dir: &Path, root_pem: &str, leaf_pem: &str) -> Result<String, String> {
    let root = dir.join("root.pem");
    let leaf = dir.join("leaf.pem");
    std::fs::write(&root, root_pem).unwrap();
    std::fs::write(&leaf, leaf_pem).unwrap();
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root)
        .arg(&leaf)
        .output()
        .expect("openssl is installed (tests/run-all installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Opens a data directory's runtime (store, vault, authority, box certificate) without
/// serving; returns it for inspection.
async fn open(data: &Path) -> homelabd::Runtime {
    homelabd::open_runtime(Config::new(data)).await.unwrap()
}

#[tokio::test]
async fn the_root_persists_across_restarts_and_its_key_is_sealed() {
    let data = data_dir("ca-persist");
    let rt = open(&data).await;
    let root_fp = rt.ca.fingerprint().to_string();
    let box_fp = rt.tls.fingerprint();
    let root_pem = rt.ca.root_pem().to_string();
    // The root is what it says: the fingerprint is of its DER, the PEM is its DER.
    assert_eq!(homelabd::tls::fingerprint(rt.ca.root_der()), root_fp);
    assert_eq!(der_of(&root_pem).as_ref(), rt.ca.root_der());
    assert!(rt.ca.common_name().starts_with("Homelab "));
    assert!(rt.ca.common_name().ends_with(" root"));
    rt.store.close().await.unwrap();

    // The key row is sealed: neither PEM nor the DER key is in the database.
    let conn = rusqlite::Connection::open(data.join(homelabd::store::DB_FILE)).unwrap();
    let sealed: Vec<u8> = conn
        .query_row(
            "SELECT sealed FROM secrets WHERE owner = 'ca' AND purpose = 'root-key'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let text = String::from_utf8_lossy(&sealed);
    assert!(
        !text.contains("PRIVATE KEY"),
        "the root key is stored in the clear"
    );
    assert!(!text.contains("BEGIN"));
    drop(conn);
    // Nothing of the old self-signed scheme is written any more.
    assert!(!data.join("tls").exists());

    // A restart loads the same root and keeps the same (still fresh) box certificate.
    let rt = open(&data).await;
    assert_eq!(rt.ca.fingerprint(), root_fp);
    assert_eq!(rt.ca.root_pem(), root_pem);
    assert_eq!(rt.tls.fingerprint(), box_fp);
    rt.store.close().await.unwrap();
}

#[tokio::test]
async fn leaves_verify_for_their_names_and_uncovered_names_are_refused() {
    let data = data_dir("ca-leaf");
    let rt = open(&data).await;
    let ca: &Authority = &rt.ca;
    let now = time::OffsetDateTime::now_utc();
    let names = vec!["nas.home.arpa".to_string(), "photos.lan".to_string()];
    let ips: Vec<IpAddr> = vec!["192.168.1.10".parse().unwrap(), "fd00::10".parse().unwrap()];
    let leaf = ca.issue(&names, &ips, now).unwrap();

    // Validity: an hour back, 90 days ahead.
    assert_eq!(leaf.not_before, now.unix_timestamp() - 3600);
    assert_eq!(leaf.not_after, now.unix_timestamp() + 90 * 86400);
    assert!(leaf.chain_pem.starts_with(&leaf.cert_pem));
    assert!(leaf.chain_pem.ends_with(ca.root_pem()));
    assert_eq!(
        leaf.fingerprint,
        homelabd::tls::fingerprint(&der_of(&leaf.cert_pem))
    );
    assert!(leaf.key_pem.expose_str().unwrap().contains("PRIVATE KEY"));
    // The key never reaches a debug print.
    assert!(!format!("{leaf:?}").contains("PRIVATE"));

    for name in ["nas.home.arpa", "photos.lan", "192.168.1.10", "fd00::10"] {
        webpki_verify(ca.root_pem(), &leaf.cert_pem, name, now)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    // Not for a name it does not carry.
    assert!(webpki_verify(ca.root_pem(), &leaf.cert_pem, "other.home.arpa", now).is_err());
    // Not once expired.
    assert!(
        webpki_verify(
            ca.root_pem(),
            &leaf.cert_pem,
            "nas.home.arpa",
            now + time::Duration::days(91)
        )
        .is_err()
    );
    // OpenSSL agrees.
    let dir = data.join("openssl-good");
    std::fs::create_dir_all(&dir).unwrap();
    openssl_verify(&dir, ca.root_pem(), &leaf.cert_pem).unwrap();

    // The authority refuses names and addresses its root does not cover, in plain words.
    for bad in ["example.com", "home.arpa.example.com", "evilhome.arpa"] {
        let err = ca.issue(&[bad.to_string()], &[], now).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(bad) && msg.contains("home names"), "{msg}");
    }
    let err = ca
        .issue(&[], &["8.8.8.8".parse().unwrap()], now)
        .unwrap_err();
    assert!(err.to_string().contains("8.8.8.8"), "{err}");
    assert!(ca.issue(&[], &[], now).is_err());
    // The runtime-level hook renews the box's own certificate from the same root.
    let before = rt.tls.fingerprint();
    let renewed = rt.renew_box_certificate(now).await.unwrap();
    assert_ne!(renewed, before);
    assert_eq!(rt.tls.fingerprint(), renewed);
    webpki_verify(ca.root_pem(), &box_cert_pem(&data), "homelab.local", now).unwrap();
    webpki_verify(ca.root_pem(), &box_cert_pem(&data), "127.0.0.1", now).unwrap();
    assert!(ca.covers("NAS.Home.Arpa."));
    assert!(ca.covers("box.local"));
    assert!(!ca.covers("local.example.com"));
    rt.store.close().await.unwrap();
}

#[tokio::test]
async fn a_rogue_leaf_outside_the_name_constraints_is_rejected_by_real_verifiers() {
    let data = data_dir("ca-rogue");
    let rt = open(&data).await;
    let root_pem = rt.ca.root_pem().to_string();
    // The attacker has the real root key, taken from the vault like the daemon does.
    let sealed = rt
        .store
        .secret("ca".into(), "root-key")
        .await
        .unwrap()
        .unwrap();
    let key_pem = rt.vault.open(&sealed, "ca", "root-key").unwrap();
    let key = rcgen::KeyPair::from_pem(key_pem.expose_str().unwrap()).unwrap();
    let mut issuer_params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, rt.ca.common_name());
    dn.push(rcgen::DnType::OrganizationName, "Homelab");
    issuer_params.distinguished_name = dn;
    let issuer = rcgen::Issuer::new(issuer_params, key);
    let now = time::OffsetDateTime::now_utc();
    let rogue = |names: Vec<String>, ips: Vec<IpAddr>| {
        let mut p = rcgen::CertificateParams::new(names.clone()).unwrap();
        for ip in ips {
            p.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
        }
        let mut dn = rcgen::DistinguishedName::new();
        if let Some(first) = names.first() {
            dn.push(rcgen::DnType::CommonName, first.clone());
        }
        p.distinguished_name = dn;
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(30);
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        p.signed_by(&leaf_key, &issuer).unwrap().pem()
    };
    let dir = data.join("openssl-rogue");
    std::fs::create_dir_all(&dir).unwrap();

    // Control: the same hand-made construction for a permitted name is accepted, so what
    // rejects the others is the constraint, not the construction.
    let fine = rogue(vec!["printer.home.arpa".into()], vec![]);
    webpki_verify(&root_pem, &fine, "printer.home.arpa", now).unwrap();
    openssl_verify(&dir, &root_pem, &fine).unwrap();

    let bank = rogue(vec!["example.com".into()], vec![]);
    let err = webpki_verify(&root_pem, &bank, "example.com", now).unwrap_err();
    assert!(
        matches!(err, webpki::Error::NameConstraintViolation),
        "{err:?}"
    );
    let out = openssl_verify(&dir, &root_pem, &bank).unwrap_err();
    assert!(out.contains("permitted subtree violation"), "{out}");

    // Hiding a bad name beside a good one does not help either.
    let mixed = rogue(
        vec!["nas.home.arpa".into(), "www.example.com".into()],
        vec![],
    );
    let err = webpki_verify(&root_pem, &mixed, "nas.home.arpa", now).unwrap_err();
    assert!(
        matches!(err, webpki::Error::NameConstraintViolation),
        "{err:?}"
    );
    assert!(openssl_verify(&dir, &root_pem, &mixed).is_err());

    // A public address is outside the address constraints.
    let public = rogue(vec![], vec!["8.8.8.8".parse().unwrap()]);
    let err = webpki_verify(&root_pem, &public, "8.8.8.8", now).unwrap_err();
    assert!(
        matches!(err, webpki::Error::NameConstraintViolation),
        "{err:?}"
    );
    let out = openssl_verify(&dir, &root_pem, &public).unwrap_err();
    assert!(out.contains("permitted subtree violation"), "{out}");
    rt.store.close().await.unwrap();
}

#[test]
fn renewal_is_due_at_two_thirds_of_a_leaf_life() {
    let nb = 1_700_000_000 - 3600;
    let na = 1_700_000_000 + 90 * 86400;
    let life = na - nb;
    let two_thirds = nb + life * 2 / 3;
    assert!(!renewal_due(nb, na, nb));
    assert!(!renewal_due(nb, na, two_thirds - 1));
    assert!(renewal_due(nb, na, two_thirds));
    assert!(renewal_due(nb, na, na + 1));
    // Issued at t (valid from t-1h to t+90d): not due 59 days on, due 60 days on.
    assert!(!renewal_due(nb, na, 1_700_000_000 + 59 * 86400));
    assert!(renewal_due(nb, na, 1_700_000_000 + 60 * 86400));
}

/// The chain the server at `port` sends, via `openssl s_client -showcerts` (which prints it
/// whether or not it trusts it).
fn served_chain(port: u16) -> Vec<CertificateDer<'static>> {
    let out = Command::new("openssl")
        .args(["s_client", "-showcerts", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// A TLS handshake with a rustls client trusting only `root_pem`; returns the leaf it saw.
async fn rustls_handshake(port: u16, root_pem: &str, name: &str) -> CertificateDer<'static> {
    install_crypto();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der_of(root_pem)).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from(name.to_string()).unwrap(), tcp),
    )
    .await
    .unwrap()
    .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

fn curl(port: u16, root: &Path, host: &str) -> std::process::Output {
    Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(root)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .arg(format!("https://{host}:{port}/healthz"))
        .output()
        .unwrap()
}

// Multi-threaded: curl and openssl run as blocking child processes while the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_listener_serves_the_chain_and_swaps_a_renewed_certificate_live() {
    init_logging();
    let data = data_dir("ca-https");
    let rt = open(&data).await;
    let tls = rt.tls.clone();
    let root_pem = rt.ca.root_pem().to_string();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_port = http.local_addr().unwrap().port();
    let port = https.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(homelabd::run_with(
        rt,
        Listeners {
            http,
            https: Some(https),
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let plain = client();
    eventually("the server start", Duration::from_secs(20), || async {
        match plain
            .get(format!("http://127.0.0.1:{http_port}/healthz"))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;

    // curl trusting only the root (no -k), by name and by address.
    let root_file = data.join("root.pem");
    std::fs::write(&root_file, &root_pem).unwrap();
    for host in ["localhost", "homelab.local"] {
        let out = curl(port, &root_file, host);
        assert!(
            out.status.success(),
            "curl {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    }
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", "--cacert"])
        .arg(&root_file)
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The chain is leaf + root, the leaf the one the box reports.
    let chain = served_chain(port);
    assert_eq!(chain.len(), 2, "leaf and root");
    assert_eq!(homelabd::tls::fingerprint(&chain[0]), tls.fingerprint());
    assert_eq!(chain[1], der_of(&root_pem));

    // A rustls client trusting only the root.
    let first = rustls_handshake(port, &root_pem, "localhost").await;
    let first_fp = homelabd::tls::fingerprint(&first);
    assert_eq!(first_fp, tls.fingerprint());
    assert!(tls.renewal_trouble().is_none());

    // The hourly check leaves a fresh certificate alone ...
    let now = time::OffsetDateTime::now_utc();
    assert!(!tls.check(now).await.unwrap());
    assert_eq!(tls.fingerprint(), first_fp);
    // ... and renews one two thirds through its life; the next connection gets it.
    assert!(tls.check(now + time::Duration::days(61)).await.unwrap());
    let renewed_fp = tls.fingerprint();
    assert_ne!(renewed_fp, first_fp);
    let chain = served_chain(port);
    assert_eq!(homelabd::tls::fingerprint(&chain[0]), renewed_fp);
    // (That one starts in 61 days, so real clients would refuse it today: renew again for now
    // and check a verifying client sees the swap too, while the server kept running.)
    let now_fp = tls.renew(time::OffsetDateTime::now_utc()).await.unwrap();
    assert_ne!(now_fp, renewed_fp);
    let seen = rustls_handshake(port, &root_pem, "localhost").await;
    assert_eq!(homelabd::tls::fingerprint(&seen), now_fp);
    assert!(curl(port, &root_file, "localhost").status.success());
    assert!(!server.is_finished());

    // The renewed certificate is the one saved for the next start.
    assert_eq!(
        homelabd::tls::fingerprint(&der_of(&box_cert_pem(&data))),
        now_fp
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // A renewal that cannot save (the database is closed now) keeps the current certificate
    // and says what happened and what to do, for the dashboard banner.
    assert!(tls.renew(time::OffsetDateTime::now_utc()).await.is_err());
    assert_eq!(tls.fingerprint(), now_fp);
    let trouble = tls.renewal_trouble().expect("the failure is reported");
    assert!(
        trouble.contains("could not renew") && trouble.contains("works until"),
        "{trouble}"
    );
    let rt = open(&data).await;
    assert_eq!(rt.tls.fingerprint(), now_fp);
    rt.store.close().await.unwrap();
}

#[tokio::test]
async fn the_trust_page_hands_out_the_root_to_signed_in_owners_only() {
    let s = start("ca-trust").await;
    let pem_path = "/settings/trust/homelab-root.pem";
    let der_path = "/settings/trust/homelab-root.crt";
    // Without a session: no page, no downloads.
    for path in ["/settings/trust", pem_path, der_path] {
        let res = s.client.get(s.url(path)).send().await.unwrap();
        assert!(
            res.status() == 401 || res.status().is_redirection(),
            "{path}: {}",
            res.status()
        );
        let body = res.text().await.unwrap();
        assert!(!body.contains("BEGIN CERTIFICATE"), "{path}");
    }
    let (session, _) = s.claim().await;

    let res = s.get(pem_path, &session).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-pem-file");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("homelab-root.pem")
    );
    let pem = res.text().await.unwrap();
    let from_pem = der_of(&pem);
    // It is the root the daemon saved, and a CA certificate webpki accepts as an anchor.
    assert_eq!(pem, root_pem(&s.data));
    webpki::anchor_from_trusted_cert(&from_pem).unwrap();

    let res = s.get(der_path, &session).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pkix-cert");
    let der = res.bytes().await.unwrap();
    assert_eq!(der.as_ref(), from_pem.as_ref(), "DER is the PEM's body");

    // The page shows that root's fingerprint, and Settings links to the page.
    let page = s
        .get("/settings/trust", &session)
        .await
        .text()
        .await
        .unwrap();
    let shown = extract_between(&page, "id=\"root-fingerprint\">", "<").unwrap();
    assert_eq!(shown, homelabd::tls::fingerprint(&der));
    for platform in [
        "trust-windows",
        "trust-macos",
        "trust-ios",
        "trust-android",
        "trust-linux",
        "trust-firefox",
    ] {
        assert!(
            page.contains(&format!("<details id=\"{platform}\">")),
            "{platform}"
        );
    }
    assert!(page.contains("Certificate Trust Settings"));
    assert!(page.contains("update-ca-certificates"));
    assert!(page.contains("update-ca-trust"));
    assert!(page.contains("Trust this CA to identify websites"));
    assert!(page.contains(der_path) && page.contains(pem_path));
    let settings = s.get("/settings", &session).await.text().await.unwrap();
    assert!(settings.contains("href=\"/settings/trust\""));
    s.stop().await.unwrap();
}

/// Not a check but a measurement, for benches/names.sh: how long `Authority::issue` takes for
/// one app name (a new key pair and the root's signature), the part of a named deploy that is
/// pure computation. `ISSUES` leaves (default 200) after one warm-up; prints mean, median, p99.
#[tokio::test]
#[ignore = "a benchmark: benches/names.sh runs it in a release build"]
async fn issue_time() {
    let data = data_dir("ca-issue-time");
    let rt = open(&data).await;
    let n: usize = std::env::var("ISSUES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let names = vec!["bench.home.arpa".to_string()];
    let now = time::OffsetDateTime::now_utc();
    rt.ca.issue(&names, &[], now).unwrap();
    let mut each = Vec::with_capacity(n);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let leaf = rt.ca.issue(&names, &[], now).unwrap();
        each.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(leaf);
    }
    each.sort_by(f64::total_cmp);
    let mean = each.iter().sum::<f64>() / n as f64;
    let p99 = each[(n * 99).div_ceil(100).saturating_sub(1)];
    println!(
        "issue: {n} leaves, mean {mean:.3} ms, median {:.3} ms, p99 {p99:.3} ms, min {:.3} ms, max {:.3} ms",
        each[n / 2],
        each[0],
        each[n - 1]
    );
    rt.store.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
