//! The box's own HTTPS identity: a self-signed certificate for `homelab.local`, the host name
//! and the box's addresses, made on first start and kept in `<data>/tls/`. Its SHA-256
//! fingerprint is shown in Settings and the start log so a user can check what the browser
//! warns about.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Errors making or loading the certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot write the certificate in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(
        "the certificate in {path} is damaged ({reason}); delete the tls folder to make a new one"
    )]
    Load { path: PathBuf, reason: String },
}

/// The loaded identity.
#[derive(Clone)]
pub struct TlsIdentity {
    /// rustls configuration for the HTTPS listener.
    pub server_config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate (DER), as colon-separated hex.
    pub fingerprint: String,
    /// The certificate in PEM, for download.
    pub cert_pem: String,
}

/// Loads the certificate from `<data>/tls`, generating it on first start.
pub fn load_or_create(data_dir: &Path) -> Result<TlsIdentity, TlsError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if !cert_path.exists() || !key_path.exists() {
        generate(&dir, &cert_path, &key_path)?;
    }
    let load_err = |path: &Path, reason: String| TlsError::Load {
        path: path.to_path_buf(),
        reason,
    };
    let cert_pem =
        fs::read_to_string(&cert_path).map_err(|e| load_err(&cert_path, e.to_string()))?;
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| load_err(&cert_path, e.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_file(&key_path).map_err(|e| load_err(&key_path, e.to_string()))?;
    let fingerprint = fingerprint(&cert);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| load_err(&cert_path, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| load_err(&cert_path, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsIdentity {
        server_config: Arc::new(config),
        fingerprint,
        cert_pem,
    })
}

/// Colon-separated uppercase hex of the SHA-256 of a DER certificate, as browsers show it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Names the certificate covers: the mDNS name, the host name, loopback and every address the
/// box has now.
fn subject_names() -> Vec<String> {
    let mut names = vec!["homelab.local".to_string(), "localhost".to_string()];
    if let Ok(host) = nix::unistd::gethostname() {
        let host = host.to_string_lossy().to_string();
        if !host.is_empty() && host != "localhost" {
            names.push(format!("{host}.local"));
            names.push(host);
        }
    }
    let mut addrs: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    for (_, ip) in crate::discovery::interface_addrs() {
        if !addrs.contains(&ip) {
            addrs.push(ip);
        }
    }
    names.extend(addrs.iter().map(IpAddr::to_string));
    names.dedup();
    names
}

fn generate(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut params = rcgen::CertificateParams::new(subject_names())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "homelab.local");
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "Homelab appliance (self-signed)",
    );
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    // Key first, private from the start; the certificate's presence marks a finished pair.
    write_atomic(key_path, key.serialize_pem().as_bytes(), 0o600).map_err(io(key_path))?;
    write_atomic(cert_path, cert.pem().as_bytes(), 0o644).map_err(io(cert_path))?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed HTTPS certificate");
    Ok(())
}

/// Writes a file via a temporary file and rename, with `mode` from creation on.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}
