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
use crate::dns::public::PublicDomain;
use crate::dns::records::{self, Placed, Provider};
use crate::proxy;
use crate::store::{NameRow, now_unix};

/// How long a freshly started proxy may take to open its admin socket (measured: Caddy opens it
/// within ~100 ms of starting; the container start itself is what a slow device adds).
const PROXY_READY: Duration = Duration::from_secs(20);
/// How long the first answer through the proxy may take once the app answered directly (the
/// route is in place when the admin API answers; this covers a busy device).
const ROUTE_READY: Duration = Duration::from_secs(15);
/// An update's look at a public certificate that had not come before: long enough for the
/// proxy to answer with one it has since obtained.
const STILL_WAITING: Duration = Duration::from_secs(3);
/// How long one housekeeping round may spend looking for public certificates that came.
const PUBLIC_CHECKS: Duration = Duration::from_secs(10);

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

/// A name given to an app (its record placed, or failed with the reason), or, for an mDNS
/// name, asked about on the network while the app starts (`probe`; then `settle_name`).
pub(super) struct Named {
    pub(super) provider: Provider,
    pub name: String,
    pub(super) reference: String,
    pub(super) record_state: &'static str,
    pub(super) record_message: String,
    pub(super) probe: Option<Probe>,
    /// The "name" step, whose undo names the record actually placed.
    pub(super) seq: i64,
    pub(super) ip: IpAddr,
    pub(super) slug: String,
}

/// An mDNS name's probe, on a task of its own so the deploy goes on meanwhile. It only
/// listens (nothing is announced), so a deploy that stops early just drops it, which stops it.
pub(super) struct Probe(tokio::task::JoinHandle<Result<bool, crate::dns::records::DnsError>>);

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The app's link: its name over HTTPS when its record is in place (and, under the owner's
/// public domain, its certificate has come), else its address (`by_address`) until then.
pub fn named_url(recipe: &Recipe, row: &NameRow, by_address: String) -> String {
    let waiting = row.cert_pem.is_empty() && !row.cert_message.is_empty();
    match row.record_state.as_str() {
        "ok" if !waiting => format!("https://{}{}", row.name, recipe.manifest.web.path),
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

    /// Starts asking the network whether an mDNS name is free, while the deploy goes on
    /// (None for other providers, or a device without a usable address: `give_name` says why).
    pub(super) async fn start_probe(
        &self,
        provider: Provider,
        name: &str,
        device: &crate::store::DeviceRow,
    ) -> Option<Probe> {
        if provider != Provider::Mdns {
            return None;
        }
        let ip = self.named_ip(device).await.ok()?;
        let records = self.records.clone();
        let name = name.to_string();
        Some(Probe(tokio::spawn(async move {
            records.probe_mdns(&name, ip).await
        })))
    }

    /// "Giving it a name": the record on the owner's DNS, journalled before it is made. A
    /// provider that cannot be reached leaves the app reachable by address, with the reason
    /// kept for its page and a retry; the name is still the app's. An mDNS name whose probe
    /// runs is only journalled here: the app is told the name it asked for, and
    /// `settle_name` announces it once the probe has answered.
    #[allow(clippy::too_many_arguments)] // the app, its name, address and probe
    pub(super) async fn give_name(
        &self,
        remote: &Remote,
        id: i64,
        slug: &str,
        provider: Provider,
        name: &str,
        ip: IpAddr,
        probe: Option<Probe>,
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
        let mut named = Named {
            provider,
            name: name.to_string(),
            reference: String::new(),
            record_state: "pending",
            record_message: String::new(),
            probe,
            seq,
            ip,
            slug: slug.to_string(),
        };
        if named.probe.is_none() {
            self.place(remote, id, &mut named, None).await?;
        }
        Ok(named)
    }

    /// Announces an mDNS name once its probe has answered (see `give_name`). Returns whether
    /// the name changed (someone on the network already answers it: the app gets `-2`, … and
    /// must be told its new address).
    pub(super) async fn settle_name(
        &self,
        remote: &Remote,
        id: i64,
        named: &mut Named,
    ) -> Result<bool, DeployError> {
        let Some(mut probe) = named.probe.take() else {
            return Ok(false);
        };
        // A probe that failed is asked again by the announcement itself.
        let free = match (&mut probe.0).await {
            Ok(Ok(free)) => Some(free),
            _ => None,
        };
        let asked = named.name.clone();
        self.place(remote, id, named, free).await?;
        Ok(named.name != asked)
    }

    /// Places the name's record (with what its probe found, for mDNS) and points the "name"
    /// step's undo at the record actually placed.
    async fn place(
        &self,
        remote: &Remote,
        id: i64,
        named: &mut Named,
        free: Option<bool>,
    ) -> Result<(), DeployError> {
        let (provider, name, ip, slug) = (
            named.provider,
            named.name.clone(),
            named.ip,
            named.slug.clone(),
        );
        let undo = |name: &str, reference: &str| Undo::RemoveName {
            slug: slug.clone(),
            provider: provider.as_str().to_string(),
            name: name.to_string(),
            answer: ip.to_string(),
            reference: reference.to_string(),
        };
        let t = Instant::now();
        let (placed, record_state, record_message) = match self
            .records
            .put_probed(provider, &name, ip, &slug, free)
            .await
        {
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
            self.store.set_step_undo(id, named.seq, undo).await?;
        }
        named.name = placed.name;
        named.reference = placed.reference;
        named.record_state = record_state;
        named.record_message = record_message;
        Ok(())
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
        // The certificate part is filled in below (none for a name under the public domain:
        // the proxy holds and renews that one).
        let row = NameRow {
            slug: slug.to_string(),
            name: named.name.clone(),
            provider: named.provider.as_str().to_string(),
            device_id: remote.device.id,
            answer: ip.to_string(),
            reference: named.reference.clone(),
            record_state: named.record_state.into(),
            record_message: named.record_message.clone(),
            cert_pem: String::new(),
            cert_not_before: 0,
            cert_not_after: 0,
            cert_message: String::new(),
            updated_at: now_unix(),
        };
        if let Some(public) = self.public_for(&named.name).await {
            // The row goes with the "name" step's undo.
            self.store.put_name(row.clone()).await?;
            self.step(
                id,
                "route",
                &Undo::RemoveRoute {
                    slug: slug.to_string(),
                },
            )
            .await?;
            let waiting = self
                .secure_public(
                    remote,
                    recipe,
                    values,
                    &named.name,
                    &ip,
                    &public,
                    self.config.certificate_wait,
                )
                .await?;
            if !waiting.is_empty() {
                self.store
                    .set_cert_message(slug.to_string(), waiting.clone())
                    .await?;
            }
            return Ok(NameRow {
                cert_message: waiting,
                ..row
            });
        }
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
            cert_pem: leaf.cert_pem.clone(),
            cert_not_before: leaf.not_before,
            cert_not_after: leaf.not_after,
            ..row
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
        let ip: IpAddr = row.answer.parse().map_err(|_| DeployError::NoNameAddress {
            device: remote.device.name.clone(),
            host: row.answer.clone(),
        })?;
        if let Some(public) = self.public_for(&row.name).await {
            // A certificate still not come is not waited for again at every update (the owner
            // was told what to do; the proxy keeps trying).
            let wait = match row.cert_message.is_empty() {
                true => self.config.certificate_wait,
                false => STILL_WAITING,
            };
            let waiting = self
                .secure_public(remote, recipe, values, &row.name, &ip, &public, wait)
                .await?;
            self.store
                .set_cert_message(row.slug.clone(), waiting)
                .await?;
            return Ok(());
        }
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
        let trust =
            crate::tls::trust::Trust::only(self.ca.root_der()).map_err(DeployError::Certificate)?;
        self.answer_through_proxy(remote, recipe, name, ip, &trust, ROUTE_READY)
            .await
            .map_err(|(_, detail)| DeployError::NotSecured {
                app: recipe.manifest.name.clone(),
                name: name.to_string(),
                detail,
            })
    }

    /// Asks for the health path through the proxy by name until it answers as the recipe says
    /// or `wait` passes. The error says whether the last try got an answer (the certificate is
    /// in place but the app answered wrongly) and what went wrong.
    async fn answer_through_proxy(
        &self,
        remote: &Remote,
        recipe: &Recipe,
        name: &str,
        ip: &IpAddr,
        trust: &crate::tls::trust::Trust,
        wait: Duration,
    ) -> Result<(), (bool, String)> {
        let m = &recipe.manifest;
        let deadline = Instant::now() + wait;
        let t = Instant::now();
        loop {
            let answer =
                super::remote::probe_named(&ip.to_string(), name, &m.health.path, trust).await;
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
                Ok(a) => (true, format!("answered {}", a.status)),
                Err(e) => (false, e.clone()),
            };
            if Instant::now() >= deadline {
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The owner's public domain when `name` is under it (its certificate then comes from the
    /// public authority, obtained and renewed by the proxy).
    async fn public_for(&self, name: &str) -> Option<PublicDomain> {
        PublicDomain::load(&self.store)
            .await
            .filter(|p| p.covers(name))
    }

    /// "Securing it with HTTPS" for a name under the owner's public domain: the authority's
    /// roots where the proxy reads them, the proxy told to obtain the name's certificate and to
    /// route it, then a bounded wait for the certificate. The authority must reach the name
    /// from the internet, which only the owner's router can allow: when the certificate has
    /// not come by then, the app is still installed (reachable by address) and the returned
    /// words say what to do; the proxy keeps trying on its own. An app that answers wrongly
    /// once the certificate is there fails the deploy, as with the homelab's certificates.
    #[allow(clippy::too_many_arguments)] // the app, its name and address, the authority, the wait
    async fn secure_public(
        &self,
        remote: &Remote,
        recipe: &Recipe,
        values: &BTreeMap<String, String>,
        name: &str,
        ip: &IpAddr,
        public: &PublicDomain,
        wait: Duration,
    ) -> Result<String, DeployError> {
        let slug = recipe.manifest.slug.as_str();
        let trust = public.trust().map_err(DeployError::Certificate)?;
        self.hand_to_authority(remote, slug, name, public, &upstream(recipe, values))
            .await?;
        match self
            .answer_through_proxy(remote, recipe, name, ip, &trust, wait)
            .await
        {
            Ok(()) => Ok(String::new()),
            Err((true, detail)) => Err(DeployError::NotSecured {
                app: recipe.manifest.name.clone(),
                name: name.to_string(),
                detail,
            }),
            Err((false, detail)) => {
                tracing::info!(app = slug, name, %detail, "no public certificate yet");
                Ok(waiting_words(public, name, &remote.device.name, ip))
            }
        }
    }

    /// The authority's roots where the proxy reads them, then the proxy told to obtain the
    /// name's certificate from it and to route the name (under the device's proxy lock).
    async fn hand_to_authority(
        &self,
        remote: &Remote,
        slug: &str,
        name: &str,
        public: &PublicDomain,
        upstream: &proxy::Upstream,
    ) -> Result<(), DeployError> {
        let lock = self.proxy_lock(remote.device.id);
        let _held = lock.lock().await;
        // Written only for a private authority and never removed: a policy made earlier may
        // still name the file, and the proxy refuses a whole configuration that names a
        // missing one.
        if let Some(pem) = &public.roots_pem {
            remote.write_acme_roots(&self.proxy_dir(), pem).await?;
        }
        remote
            .proxy_put_acme(&self.proxy_socket(), slug, name, &public.issuer(), upstream)
            .await
    }

    /// After the owner changed the public domain's authority, email or roots: each app named
    /// under it gets them on its proxy (the proxy obtains its next certificate there). Returns,
    /// in words, the apps whose device could not be told (they get it on their next update).
    /// At most one pass runs: a change saved during a pass makes that pass run once more (so
    /// saving the form again and again costs one pass at a time, not one each). Returns None
    /// when the pass under way takes the change.
    pub async fn reapply_public(&self) -> Option<Vec<String>> {
        use std::sync::atomic::Ordering::SeqCst;
        self.reapply_again.store(true, SeqCst);
        let mut missed = None;
        loop {
            let Ok(one) = self.reapplying.try_lock() else {
                return missed;
            };
            while self.reapply_again.swap(false, SeqCst) {
                missed = Some(self.reapply_pass().await);
            }
            drop(one);
            // A change saved after the last pass looked, while this one still held the lock.
            if !self.reapply_again.load(SeqCst) {
                return missed;
            }
        }
    }

    async fn reapply_pass(&self) -> Vec<String> {
        let Some(public) = PublicDomain::load(&self.store).await else {
            return Vec::new();
        };
        let rows = self.store.names().await.unwrap_or_default();
        let mut missed = Vec::new();
        for row in rows.iter().filter(|r| public.covers(&r.name)) {
            let Some(_guard) = self.try_busy(&row.slug) else {
                // Being updated, renamed or removed: an update puts the new authority itself.
                missed.push(format!("{} (busy; update it later)", row.name));
                continue;
            };
            let done = async {
                let app = self.deployed(&row.slug).await?;
                let recipe = self.recipe(&row.slug)?.clone();
                let values: BTreeMap<String, String> =
                    serde_json::from_str(&app.settings).unwrap_or_default();
                let device = self.app_device(&app).await?;
                let remote = Remote::connect(&self.devices, device, None).await?;
                self.hand_to_authority(
                    &remote,
                    &row.slug,
                    &row.name,
                    &public,
                    &upstream(&recipe, &values),
                )
                .await
            }
            .await;
            if let Err(e) = done {
                tracing::warn!(app = %row.slug, error = %e, "could not change a public certificate's authority");
                missed.push(format!("{} ({e})", row.name));
            }
        }
        missed
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

    pub(super) fn proxy_lock(&self, device_id: i64) -> std::sync::Arc<tokio::sync::Mutex<()>> {
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

    /// Takes an app's route and certificate (or public certificate's policy) off its device's
    /// proxy, holding the device's proxy lock.
    pub(super) async fn take_route_off(
        &self,
        remote: &Remote,
        slug: &str,
    ) -> Result<(), DeployError> {
        let lock = self.proxy_lock(remote.device.id);
        let _held = lock.lock().await;
        remote.proxy_delete(&self.proxy_socket(), slug).await
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
            self.take_route_off(remote, slug).await?;
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
        // The proxy renews a public authority's certificate itself; the ones still waiting are
        // looked at together, within a bound, so one round never holds up the next.
        let waiting = rows
            .iter()
            .filter(|r| r.cert_pem.is_empty() && !r.cert_message.is_empty())
            .map(|r| self.check_public_certificate(r));
        let _ = tokio::time::timeout(PUBLIC_CHECKS, futures_util::future::join_all(waiting)).await;
        let mut renewed = 0;
        for row in rows {
            if row.cert_pem.is_empty() {
                continue;
            }
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

    /// A name waiting for its public certificate: once the proxy serves one the box trusts for
    /// it, the waiting message goes (the page follows at once).
    async fn check_public_certificate(&self, row: &NameRow) {
        let Some(_guard) = self.try_busy(&row.slug) else {
            return; // an operation on the app is under way; next round
        };
        let Some(public) = self.public_for(&row.name).await else {
            return;
        };
        let Ok(trust) = public.trust() else {
            return;
        };
        if super::remote::probe_named(&row.answer, &row.name, "/", &trust)
            .await
            .is_ok()
        {
            tracing::info!(app = %row.slug, name = %row.name, "public certificate in place");
            let _ = self
                .store
                .set_cert_message(row.slug.clone(), String::new())
                .await;
            if row.record_state == "ok"
                && let Ok(recipe) = self.recipe(&row.slug)
            {
                let url = format!("https://{}{}", row.name, recipe.manifest.web.path);
                let _ = self.store.set_app_url(row.slug.clone(), url).await;
            }
            self.events.publish(crate::events::Event::AppState {
                slug: row.slug.clone(),
            });
        }
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
        let values: BTreeMap<String, String> =
            serde_json::from_str(&app.settings).unwrap_or_default();
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
        if let Some(public) = self.public_for(&placed.name).await {
            let waiting = match self
                .secure_public(
                    &remote,
                    &recipe,
                    &values,
                    &placed.name,
                    &ip,
                    &public,
                    self.config.certificate_wait,
                )
                .await
            {
                Ok(w) => w,
                Err(e) => {
                    take_back(placed).await;
                    // The proxy goes back to the old name (its certificate is still stored).
                    if let Err(e) = self
                        .hand_to_authority(
                            &remote,
                            slug,
                            &row.name,
                            &public,
                            &upstream(&recipe, &values),
                        )
                        .await
                    {
                        tracing::warn!(app = slug, error = %e, "could not put the old name back");
                    }
                    return Err(e);
                }
            };
            self.store
                .put_name(NameRow {
                    name: placed.name.clone(),
                    reference: placed.reference.clone(),
                    record_state: "ok".into(),
                    record_message: String::new(),
                    cert_message: waiting,
                    ..public_row_from(&row)
                })
                .await?;
            return self.renamed(&app, &recipe, &row, placed).await;
        }
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
        self.renamed(&app, &recipe, &row, placed).await
    }

    /// The end of a rename, once the new name is in place: the app's link, the old record
    /// gone, the audit and the live pages told.
    async fn renamed(
        &self,
        app: &crate::store::AppRow,
        recipe: &Recipe,
        row: &NameRow,
        placed: Placed,
    ) -> Result<String, DeployError> {
        let slug = app.slug.as_str();
        let provider = Provider::parse(&row.provider).unwrap_or(Provider::Mdns);
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

/// `row` with its certificate part made a public one's.
fn public_row_from(row: &NameRow) -> NameRow {
    NameRow {
        cert_pem: String::new(),
        cert_not_before: 0,
        cert_not_after: 0,
        cert_message: String::new(),
        updated_at: now_unix(),
        ..row.clone()
    }
}

/// What the owner is told while the public authority has not issued a name's certificate:
/// what only they can do on their router and on the internet's DNS.
fn waiting_words(public: &PublicDomain, name: &str, device: &str, ip: &IpAddr) -> String {
    if public.roots_pem.is_some() {
        // The owner's own authority, usually inside the home.
        return format!(
            "{} has not issued the certificate for {name} yet: it must reach {device} ({ip}) \
             on port 80 or 443 under that name. Check that {name} points at {device} for it, \
             and that it is running. Homelab's proxy keeps trying on its own; until then, open \
             the app by its address.",
            public.authority()
        );
    }
    format!(
        "{} has not issued the certificate for {name} yet: it must reach {name} from the \
         internet. Point {name} at your home's internet address in your domain's DNS, and \
         forward ports 80 and 443 on your router to {device} ({ip}). Homelab's proxy keeps \
         trying on its own; until then, open the app by its address.",
        public.authority()
    )
}
