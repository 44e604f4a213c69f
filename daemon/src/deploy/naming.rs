//! The app's name and HTTPS, as deploy steps: Homelab's proxy (Caddy) on the device, the name's
//! record on the owner's DNS, a certificate from the homelab's CA, and the proxy's route from
//! the name to the app. Each step is journalled with its undo, so a failed deploy leaves no
//! route, certificate or record behind. A DNS provider that cannot be reached does not stop a
//! deploy: the app stays reachable by address and its page says what to retry.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::journal::Undo;
use super::{DeployError, Deployer, DeploymentState, Remote, device_ip, key_owner, render};
use crate::catalog::Recipe;
use crate::dns::records::{self, Placed, Provider};
use crate::proxy;
use crate::store::{NameRow, now_unix};

/// How long a freshly started proxy may take to open its admin socket (measured: Caddy opens it
/// within ~100 ms of starting; the container start itself is what a slow device adds).
const PROXY_READY: Duration = Duration::from_secs(20);
/// How long the first answer through the proxy may take once the app answered directly (the
/// route is in place when the admin API answers; this covers a busy device).
const ROUTE_READY: Duration = Duration::from_secs(15);

/// Whether an app gets a name and HTTPS through the proxy: it has a web page, the owner did
/// not ask for "by address only", and it is not a proxy itself (one publishing 80 or 443 keeps
/// those ports, so it is reached by address).
pub fn wants_name(recipe: &Recipe, values: &BTreeMap<String, String>, by_address: bool) -> bool {
    !by_address
        && recipe.manifest.web.port != 0
        && !recipe
            .host_ports(values)
            .iter()
            .any(|p| *p == 80 || *p == 443)
}

/// A name given to an app (its record placed, or failed with the reason).
pub(super) struct Named {
    provider: Provider,
    pub name: String,
    reference: String,
    record_state: &'static str,
    record_message: String,
}

/// The app's link: its name over HTTPS when its record is in place, else its address
/// (`by_address`) until a retry places the record.
pub fn named_url(recipe: &Recipe, row: &NameRow, by_address: String) -> String {
    match row.record_state.as_str() {
        "ok" => format!("https://{}{}", row.name, recipe.manifest.web.path),
        _ => by_address,
    }
}

impl Deployer {
    /// The name this app will ask for: the one it had (kept across an update), else the
    /// provider's default. A name another app holds is refused here, before anything changes.
    pub(super) async fn choose_name(&self, slug: &str) -> Result<(Provider, String), DeployError> {
        let provider = self.records.provider().await;
        if let Some(row) = self.store.name_of(slug.to_string()).await? {
            return Ok((Provider::parse(&row.provider).unwrap_or(provider), row.name));
        }
        let suffix = self.records.suffix().await;
        let name = records::default_name(provider, slug, &suffix);
        if let Some(holder) = self.store.name_holder(name.clone()).await? {
            return Err(DeployError::NameTaken { name, holder });
        }
        Ok((provider, name))
    }

    /// Makes sure Homelab's proxy runs on the device. Started here, it is journalled so that a
    /// failed deploy removes it again when no other app uses it.
    pub(super) async fn ensure_proxy(&self, remote: &Remote, id: i64) -> Result<(), DeployError> {
        // One start per device at a time: two deploys on one device must not both create it.
        let lock = self.proxy_lock(remote.device.id);
        let _held = lock.lock().await;
        let t = Instant::now();
        let running = remote
            .project_containers(proxy::PROJECT)
            .await?
            .iter()
            .any(|c| c.state.as_ref().map(|s| s.to_string()).as_deref() == Some("running"));
        if running && remote.proxy_admin_ready(&self.proxy_socket()).await {
            remote
                .note(
                    "Homelab's proxy is running on the device".into(),
                    "yes — reused".into(),
                    t,
                    String::new(),
                )
                .await;
            return Ok(());
        }
        self.step(
            id,
            "proxy",
            &Undo::RemoveProxy {
                device_id: remote.device.id,
            },
        )
        .await?;
        let dir = self.proxy_dir();
        let (uid, gid) = remote.login_ids().await?;
        let compose = proxy::compose(uid, gid, &dir);
        let config = proxy::base_config(proxy::ADMIN_SOCKET_IN_CONTAINER);
        remote
            .write_proxy(&dir, &compose, &config.to_string())
            .await?;
        if !remote.image_present(proxy::IMAGE).await? {
            let (tx, _rx) = tokio::sync::watch::channel((0u64, 0u64));
            remote.pull(proxy::IMAGE, tx).await?;
        }
        remote
            .compose_up(
                "Start Homelab's proxy",
                &dir,
                proxy::PROJECT,
                "Homelab's secure proxy",
            )
            .await?;
        let deadline = Instant::now() + PROXY_READY;
        while !remote.proxy_admin_ready(&self.proxy_socket()).await {
            if Instant::now() >= deadline {
                return Err(DeployError::ProxyNotReady {
                    device: remote.device.name.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// The device's address for the app's record: a name needs an address to point at.
    pub(super) async fn named_ip(
        &self,
        device: &crate::store::DeviceRow,
    ) -> Result<IpAddr, DeployError> {
        let ip = device_ip(&device.host).await;
        ip.parse::<IpAddr>()
            .ok()
            .filter(|a| !a.is_loopback() && !a.is_unspecified())
            .ok_or_else(|| DeployError::NoNameAddress {
                device: device.name.clone(),
                host: device.host.clone(),
            })
    }

    /// "Giving it a name": the record on the owner's DNS, journalled before it is made. A
    /// provider that cannot be reached leaves the app reachable by address, with the reason
    /// kept for its page and a retry; the name is still the app's.
    pub(super) async fn give_name(
        &self,
        remote: &Remote,
        id: i64,
        slug: &str,
        provider: Provider,
        name: &str,
        ip: IpAddr,
    ) -> Result<Named, DeployError> {
        self.progress(
            id,
            slug,
            DeploymentState::Naming,
            16,
            "Giving it a name…".into(),
        )
        .await;
        let undo = |name: &str, reference: &str| Undo::RemoveName {
            slug: slug.to_string(),
            provider: provider.as_str().to_string(),
            name: name.to_string(),
            answer: ip.to_string(),
            reference: reference.to_string(),
        };
        let seq = self.step(id, "name", &undo(name, "")).await?;
        let t = Instant::now();
        let (placed, record_state, record_message) =
            match self.records.put(provider, name, ip, slug).await {
                Ok(p) => (p, "ok", String::new()),
                Err(e) => (
                    Placed {
                        provider,
                        name: name.to_string(),
                        reference: String::new(),
                    },
                    "failed",
                    e.to_string(),
                ),
            };
        remote
            .note(
                format!("Name {} → {ip} ({})", placed.name, provider.as_str()),
                match record_state {
                    "ok" => "ok".into(),
                    _ => record_message.clone(),
                },
                t,
                String::new(),
            )
            .await;
        if placed.name != name || !placed.reference.is_empty() {
            // The record's real name or id, so the undo removes exactly it.
            let undo =
                serde_json::to_string(&undo(&placed.name, &placed.reference)).unwrap_or_default();
            self.store.set_step_undo(id, seq, undo).await?;
        }
        Ok(Named {
            provider,
            name: placed.name,
            reference: placed.reference,
            record_state,
            record_message,
        })
    }

    /// "Securing it with HTTPS": a certificate from the homelab's CA and the proxy's route to
    /// the app, then one answer through the proxy. Returns the app's row in `app_names`.
    pub(super) async fn secure(
        &self,
        remote: &Remote,
        id: i64,
        recipe: &Recipe,
        values: &BTreeMap<String, String>,
        named: &Named,
        ip: IpAddr,
    ) -> Result<NameRow, DeployError> {
        let m = &recipe.manifest;
        let slug = m.slug.as_str();
        self.progress(
            id,
            slug,
            DeploymentState::Securing,
            95,
            "Securing it with HTTPS…".into(),
        )
        .await;
        let t = Instant::now();
        let leaf = self
            .ca
            .issue(
                std::slice::from_ref(&named.name),
                &[],
                time::OffsetDateTime::now_utc(),
            )
            .map_err(|e| DeployError::Certificate(e.to_string()))?;
        let row = NameRow {
            slug: slug.to_string(),
            name: named.name.clone(),
            provider: named.provider.as_str().to_string(),
            device_id: remote.device.id,
            answer: ip.to_string(),
            reference: named.reference.clone(),
            record_state: named.record_state.into(),
            record_message: named.record_message.clone(),
            cert_pem: leaf.cert_pem.clone(),
            cert_not_before: leaf.not_before,
            cert_not_after: leaf.not_after,
            cert_message: String::new(),
            updated_at: now_unix(),
        };
        // The row and the sealed key go with the "name" step's undo.
        self.store.put_name(row.clone()).await?;
        let owner = key_owner(slug);
        let sealed = self.vault.seal(leaf.key_pem.expose(), &owner, "key");
        self.store.put_secret(owner, "key", sealed).await?;
        remote
            .note(
                format!("Certificate for {} from the homelab's CA", named.name),
                format!(
                    "valid for {} days",
                    (leaf.not_after - leaf.not_before) / 86_400
                ),
                t,
                String::new(),
            )
            .await;
        self.step(
            id,
            "route",
            &Undo::RemoveRoute {
                slug: slug.to_string(),
            },
        )
        .await?;
        remote
            .proxy_put(
                &self.proxy_socket(),
                slug,
                &named.name,
                &leaf.chain_pem,
                &leaf.key_pem,
                &upstream(recipe, values),
            )
            .await?;
        self.check_through_proxy(remote, recipe, &named.name, &ip)
            .await?;
        Ok(row)
    }

    /// Puts an app's route again with its stored certificate (after an update, whose new
    /// version may listen on another port).
    pub(super) async fn refresh_route(
        &self,
        remote: &Remote,
        recipe: &Recipe,
        values: &BTreeMap<String, String>,
        row: &NameRow,
    ) -> Result<(), DeployError> {
        let owner = key_owner(&row.slug);
        let sealed = self
            .store
            .secret(owner.clone(), "key".to_string())
            .await?
            .ok_or_else(|| DeployError::Certificate("its key is missing".into()))?;
        let key = self.vault.open(&sealed, &owner, "key")?;
        let chain = format!("{}{}", row.cert_pem, self.ca.root_pem());
        remote
            .proxy_put(
                &self.proxy_socket(),
                &row.slug,
                &row.name,
                &chain,
                &key,
                &upstream(recipe, values),
            )
            .await?;
        let ip: IpAddr = row.answer.parse().map_err(|_| DeployError::NoNameAddress {
            device: remote.device.name.clone(),
            host: row.answer.clone(),
        })?;
        self.check_through_proxy(remote, recipe, &row.name, &ip)
            .await
    }

    /// One GET of the health path through the proxy, by name, trusting only the homelab's
    /// root: proof the route, the certificate and the app fit together.
    async fn check_through_proxy(
        &self,
        remote: &Remote,
        recipe: &Recipe,
        name: &str,
        ip: &IpAddr,
    ) -> Result<(), DeployError> {
        let m = &recipe.manifest;
        let deadline = Instant::now() + ROUTE_READY;
        let t = Instant::now();
        let trust =
            crate::tls::trust::Trust::only(self.ca.root_der()).map_err(DeployError::Certificate)?;
        loop {
            let answer =
                super::remote::probe_named(&ip.to_string(), name, &m.health.path, &trust).await;
            let last = match &answer {
                Ok(a) if m.health.status.contains(&a.status) => {
                    remote
                        .note(
                            format!(
                                "Health check through the proxy: GET https://{name}{}",
                                m.health.path
                            ),
                            format!("answered {}", a.status),
                            t,
                            String::new(),
                        )
                        .await;
                    return Ok(());
                }
                Ok(a) => format!("answered {}", a.status),
                Err(e) => e.clone(),
            };
            if Instant::now() >= deadline {
                return Err(DeployError::NotSecured {
                    app: m.name.clone(),
                    name: name.to_string(),
                    detail: last,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Where the proxy's files live on a device: beside the apps' folder.
    pub fn proxy_dir(&self) -> String {
        let apps = self.config.apps_dir.trim_end_matches('/');
        match apps.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => format!("{parent}/proxy"),
            _ => format!("{apps}/.proxy"),
        }
    }

    /// The proxy's admin socket on a device (in its private folder).
    pub fn proxy_socket(&self) -> String {
        format!("{}/{}", self.proxy_dir(), proxy::ADMIN_SOCKET_ON_DEVICE)
    }

    fn proxy_lock(&self, device_id: i64) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.proxy_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(device_id).or_default().clone()
    }

    /// Removes the proxy from a device when no app there has a name any more (and no deploy
    /// there is under way). Safe to repeat.
    pub(super) async fn remove_proxy_if_idle(
        &self,
        remote: &Remote,
        except: Option<i64>,
    ) -> Result<(), DeployError> {
        let lock = self.proxy_lock(remote.device.id);
        let _held = lock.lock().await;
        let device = remote.device.id;
        let named = self
            .store
            .names()
            .await?
            .iter()
            .any(|n| n.device_id == device);
        let deploying = self
            .store
            .unfinished_deployments()
            .await?
            .iter()
            .any(|d| d.device_id == device && Some(d.id) != except && !d.state.is_finished());
        if named || deploying {
            return Ok(());
        }
        // Something still uses it that this box does not know of (an app joined to its network,
        // a route another box put there): it stays. Homelab never takes away what it did not
        // make for its own apps.
        let members = remote.network_members(proxy::NETWORK).await?;
        let others = members.iter().any(|m| !m.contains(proxy::PROJECT));
        let routes = remote
            .proxy_route_ids(&self.proxy_socket())
            .await
            .unwrap_or_default();
        if others || !routes.is_empty() {
            tracing::info!(device = %remote.device.name, "the proxy still serves others; kept");
            return Ok(());
        }
        remote.remove_project(proxy::PROJECT, false).await?;
        // Its folder is only files Homelab wrote; one that cannot go (made by someone else)
        // must not hold up a removal or a rollback: the proxy itself is gone.
        if let Err(e) = remote.remove_dir(&self.proxy_dir()).await {
            tracing::warn!(device = %remote.device.name, error = %e, "could not remove the proxy's folder");
        }
        Ok(())
    }

    /// Takes an app's name away: its route and certificate from the proxy, its record from the
    /// DNS (a provider that cannot be reached is reported, the rest still goes), its row and
    /// key here. The caller removes the proxy once the app's containers are gone
    /// (`remove_proxy_if_idle`): until then they are still on its network.
    pub(super) async fn unname(
        &self,
        remote: Option<&Remote>,
        slug: &str,
    ) -> Result<(), DeployError> {
        let Some(row) = self.store.name_of(slug.to_string()).await? else {
            return Ok(());
        };
        if let Some(remote) = remote {
            remote.proxy_delete(&self.proxy_socket(), slug).await?;
        }
        if let Some(provider) = Provider::parse(&row.provider)
            && let Err(e) = self
                .records
                .remove(provider, &row.name, &row.answer, &row.reference)
                .await
        {
            tracing::warn!(app = slug, name = %row.name, error = %e, "could not remove an app's record");
        }
        self.store.delete_name(slug.to_string()).await?;
        self.store.delete_secrets_of(key_owner(slug)).await?;
        Ok(())
    }
}

/// After a failed renewal, how long before the next try (the device may be off for a while).
const RENEW_RETRY_SECS: i64 = 3600;

impl Deployer {
    /// Renews the certificates that passed two thirds of their life (`now`: Unix seconds; tests
    /// move it forward), pushing each to its proxy. A renewal that fails keeps the old
    /// certificate in use and says why on the dashboard; it is tried again an hour later.
    /// Returns how many were renewed.
    pub async fn renew_certificates(&self, now: i64) -> usize {
        let Ok(rows) = self.store.names().await else {
            return 0;
        };
        let mut renewed = 0;
        for row in rows {
            if !crate::tls::ca::renewal_due(row.cert_not_before, row.cert_not_after, now)
                || (!row.cert_message.is_empty() && now - row.updated_at < RENEW_RETRY_SECS)
            {
                continue;
            }
            let Some(_guard) = self.try_busy(&row.slug) else {
                continue; // an operation on the app is under way; next round
            };
            match self.renew_one(&row, now).await {
                Ok(()) => {
                    renewed += 1;
                    tracing::info!(app = %row.slug, name = %row.name, "certificate renewed");
                }
                Err(e) => {
                    let device = self
                        .store
                        .device(row.device_id)
                        .await
                        .ok()
                        .flatten()
                        .map(|d| d.name)
                        .unwrap_or_else(|| "its device".into());
                    let message = format!(
                        "The certificate of {} could not be renewed: {e} Homelab tries again \
                         within the hour; make sure {device} is on. It stays valid until {}.",
                        row.name,
                        crate::units::date_utc(row.cert_not_after)
                    );
                    tracing::warn!(app = %row.slug, error = %e, "certificate renewal failed");
                    let _ = self.store.set_cert_message(row.slug.clone(), message).await;
                }
            }
            self.events.publish(crate::events::Event::AppState {
                slug: row.slug.clone(),
            });
        }
        renewed
    }

    async fn renew_one(&self, row: &NameRow, now: i64) -> Result<(), DeployError> {
        let device = self
            .store
            .device(row.device_id)
            .await?
            .ok_or(DeployError::DeviceRemoved)?;
        let app = self.deployed(&row.slug).await?;
        let recipe = self.recipe(&row.slug)?.clone();
        let remote = Remote::connect(&self.devices, device, None).await?;
        let at = time::OffsetDateTime::from_unix_timestamp(now)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        let leaf = self
            .ca
            .issue(std::slice::from_ref(&row.name), &[], at)
            .map_err(|e| DeployError::Certificate(e.to_string()))?;
        let values: BTreeMap<String, String> =
            serde_json::from_str(&app.settings).unwrap_or_default();
        remote
            .proxy_put(
                &self.proxy_socket(),
                &row.slug,
                &row.name,
                &leaf.chain_pem,
                &leaf.key_pem,
                &upstream(&recipe, &values),
            )
            .await?;
        // Pushed first, then recorded: a crash between the two renews once more, harmlessly.
        let owner = key_owner(&row.slug);
        let sealed = self.vault.seal(leaf.key_pem.expose(), &owner, "key");
        self.store.put_secret(owner, "key", sealed).await?;
        self.store
            .put_name(NameRow {
                cert_pem: leaf.cert_pem,
                cert_not_before: leaf.not_before,
                cert_not_after: leaf.not_after,
                cert_message: String::new(),
                ..row.clone()
            })
            .await?;
        Ok(())
    }
}

/// Where the proxy sends the app's visitors: the app's web service on the proxy's network, or
/// the device itself for an app on the host's network.
pub fn upstream(recipe: &Recipe, values: &BTreeMap<String, String>) -> proxy::Upstream {
    let m = &recipe.manifest;
    if m.host_network {
        let port = render::web_port(recipe, values).unwrap_or(m.web.port);
        return proxy::Upstream::host(port, m.web.scheme == "https");
    }
    proxy::Upstream::service(&alias(&m.slug), m.web.port, m.web.scheme == "https")
}

/// The app's web service's name on the proxy's network (unique: slugs are).
pub fn alias(slug: &str) -> String {
    format!("app-{slug}")
}

impl Deployer {
    /// Places an app's record again after the DNS provider could not be reached (or after the
    /// owner fixed its connection). Returns the name when it is in place.
    pub async fn retry_name(&self, slug: &str) -> Result<String, DeployError> {
        let app = self.deployed(slug).await?;
        let _guard = self.claim_for_owner(slug, &app.name).await?;
        let row = self
            .store
            .name_of(slug.to_string())
            .await?
            .ok_or_else(|| DeployError::NotNamed(app.name.clone()))?;
        let provider = Provider::parse(&row.provider).unwrap_or(Provider::Mdns);
        let ip: IpAddr = row
            .answer
            .parse()
            .map_err(|_| DeployError::NotNamed(app.name.clone()))?;
        let placed = self
            .records
            .put(provider, &row.name, ip, slug)
            .await
            .map_err(|e| DeployError::NameNotPlaced {
                name: row.name.clone(),
                why: e.to_string(),
            })?;
        self.store
            .put_name(NameRow {
                name: placed.name.clone(),
                reference: placed.reference,
                record_state: "ok".into(),
                record_message: String::new(),
                ..row
            })
            .await?;
        if let Ok(recipe) = self.recipe(slug) {
            self.store
                .set_app_url(
                    slug.to_string(),
                    format!("https://{}{}", placed.name, recipe.manifest.web.path),
                )
                .await?;
        }
        self.audit(
            "app.name",
            format!("{} is reachable as {} again", app.name, placed.name),
        )
        .await;
        self.events.publish(crate::events::Event::AppState {
            slug: slug.to_string(),
        });
        Ok(placed.name)
    }

    /// Gives a deployed app another name (`label`, the first part: `vault` makes
    /// `vault.home.arpa`): the new record, a certificate for it and the proxy's route first;
    /// only then the old record goes. Nothing changes when the new name cannot be placed.
    pub async fn rename(&self, slug: &str, label: &str) -> Result<String, DeployError> {
        let label = label.trim().to_ascii_lowercase();
        if !records::valid_label(&label) {
            return Err(DeployError::BadName(
                crate::limits::truncate(&label, 80).into_owned(),
            ));
        }
        let app = self.deployed(slug).await?;
        let _guard = self.claim_for_owner(slug, &app.name).await?;
        let row = self
            .store
            .name_of(slug.to_string())
            .await?
            .ok_or_else(|| DeployError::NotNamed(app.name.clone()))?;
        let provider = Provider::parse(&row.provider).unwrap_or(Provider::Mdns);
        let suffix = match row.name.split_once('.') {
            Some((_, rest)) => rest.to_string(),
            None => self.records.suffix().await,
        };
        let name = records::default_name(provider, &label, &suffix);
        if name == row.name {
            return Ok(name);
        }
        if let Some(holder) = self.store.name_holder(name.clone()).await? {
            return Err(DeployError::NameTaken { name, holder });
        }
        let recipe = self.recipe(slug)?.clone();
        let device = self.app_device(&app).await?;
        let remote = Remote::connect(&self.devices, device, None).await?;
        let ip: IpAddr = row
            .answer
            .parse()
            .map_err(|_| DeployError::NotNamed(app.name.clone()))?;
        let placed = self
            .records
            .put(provider, &name, ip, slug)
            .await
            .map_err(|e| DeployError::NameNotPlaced {
                name: name.clone(),
                why: e.to_string(),
            })?;
        // The new record goes again when what follows fails: the old name stays as it was.
        let answer = row.answer.clone();
        let take_back = |placed: Placed| async move {
            if let Err(e) = self
                .records
                .remove(provider, &placed.name, &answer, &placed.reference)
                .await
            {
                tracing::warn!(app = slug, error = %e, "could not take back a new record");
            }
        };
        let leaf = match self.ca.issue(
            std::slice::from_ref(&placed.name),
            &[],
            time::OffsetDateTime::now_utc(),
        ) {
            Ok(l) => l,
            Err(e) => {
                take_back(placed).await;
                return Err(DeployError::Certificate(e.to_string()));
            }
        };
        let values: BTreeMap<String, String> =
            serde_json::from_str(&app.settings).unwrap_or_default();
        if let Err(e) = remote
            .proxy_put(
                &self.proxy_socket(),
                slug,
                &placed.name,
                &leaf.chain_pem,
                &leaf.key_pem,
                &upstream(&recipe, &values),
            )
            .await
        {
            take_back(placed).await;
            return Err(e);
        }
        let owner = key_owner(slug);
        let sealed = self.vault.seal(leaf.key_pem.expose(), &owner, "key");
        self.store.put_secret(owner, "key", sealed).await?;
        self.store
            .put_name(NameRow {
                name: placed.name.clone(),
                reference: placed.reference.clone(),
                record_state: "ok".into(),
                record_message: String::new(),
                cert_pem: leaf.cert_pem,
                cert_not_before: leaf.not_before,
                cert_not_after: leaf.not_after,
                cert_message: String::new(),
                ..row.clone()
            })
            .await?;
        self.store
            .set_app_url(
                slug.to_string(),
                format!("https://{}{}", placed.name, recipe.manifest.web.path),
            )
            .await?;
        if let Err(e) = self
            .records
            .remove(provider, &row.name, &row.answer, &row.reference)
            .await
        {
            tracing::warn!(app = slug, name = %row.name, error = %e, "could not remove the old record");
        }
        self.audit(
            "app.rename",
            format!("Renamed {} from {} to {}", app.name, row.name, placed.name),
        )
        .await;
        self.events.publish(crate::events::Event::AppState {
            slug: slug.to_string(),
        });
        Ok(placed.name)
    }
}
