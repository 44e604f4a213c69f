//! A real ACME authority for tests: Let's Encrypt's test server Pebble (Debian `pebble`) with
//! its companion DNS server `pebble-challtestsrv`, which answers every A query with one
//! address (the proxy's), so Pebble validates challenges against the real proxy: HTTP-01 on
//! `http_port`, TLS-ALPN-01 on `tls_port`. Pebble's own address is HTTPS with a certificate
//! from a test CA made here (`dir_ca_pem`); the certificates it issues chain to a root it makes
//! at start, read from its management API (`issuing_root_pem`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port nobody listens on right now (bound and released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Pebble {
    dir: tempfile::TempDir,
    children: Vec<Child>,
    /// `https://HOST:PORT/dir`, as a proxy reaches it.
    pub directory: String,
    host: String,
    management: u16,
}

impl Pebble {
    /// Starts Pebble and its DNS. `host`: the address the proxy reaches Pebble on (and the
    /// name on Pebble's own certificate); `answer`: the address every name resolves to.
    pub fn start(host: &str, answer: &str, http_port: u16, tls_port: u16) -> Pebble {
        assert!(
            std::path::Path::new("/usr/bin/pebble").exists(),
            "Pebble is missing: install the Debian package `pebble` (tests/run-all does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = |f: &str| dir.path().join(f);
        // Pebble's address certificate: a throwaway CA and a leaf for `host`.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Pebble address test CA");
        ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf.signed_by(&key, &ca).unwrap();
        std::fs::write(p("ca.pem"), ca.pem()).unwrap();
        std::fs::write(p("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(p("key.pem"), key.serialize_pem()).unwrap();
        let (listen, management, dns, dns_management) =
            (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("0.0.0.0:{listen}"),
            "managementListenAddress": format!("0.0.0.0:{management}"),
            "certificate": p("cert.pem"),
            "privateKey": p("key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(p("pebble.json"), config.to_string()).unwrap();
        let log = |f: &str| std::fs::File::create(p(f)).unwrap();
        let dns_server = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", answer, "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .stdin(Stdio::null())
            .stdout(log("dns.log"))
            .stderr(log("dns.err"))
            .spawn()
            .unwrap();
        // No pauses between validation steps (Pebble sleeps up to 15 s by default).
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(p("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdin(Stdio::null())
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .unwrap();
        let me = Pebble {
            directory: format!("https://{host}:{listen}/dir"),
            host: host.to_string(),
            children: vec![dns_server, pebble],
            dir,
            management,
        };
        // Both listen within milliseconds; a refused connection is all a wait can see. The DNS
        // server's management port opens after its DNS listener.
        for port in [listen, dns_management] {
            super::eventually_blocking("Pebble listens", Duration::from_secs(20), || {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        }
        me
    }

    /// The CA of Pebble's own address certificate, as a file.
    pub fn dir_ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The root that the certificates Pebble issues chain to.
    pub fn issuing_root_pem(&self) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
            .arg(self.dir_ca_pem())
            .arg(format!("https://{}:{}/roots/0", self.host, self.management))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// What Pebble logged (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
