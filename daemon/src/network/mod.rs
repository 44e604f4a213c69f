//! The network around the box: the owner's router (OPNsense, read-only views plus Homelab's
//! own host overrides). This module holds the connection as stored (settings
//! `opnsense.url`, `opnsense.fingerprint`; sealed secrets "opnsense"/"api-key",
//! "opnsense"/"api-secret"), the connect flow (first contact, then the owner confirms the
//! certificate's fingerprint), a short cache of the last overview so many open pages do not
//! multiply calls, and a bounded ring of traffic rates per interface for the live graph.

pub mod opnsense;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::secrets::{Secret, Vault};
use crate::store::{Store, StoreError};
use opnsense::{OpnSense, OpnSenseError, Overview, Rate, TrafficSample};

pub const SETTING_URL: &str = "opnsense.url";
pub const SETTING_FINGERPRINT: &str = "opnsense.fingerprint";
pub const SECRET_OWNER: &str = "opnsense";
pub const PURPOSE_KEY: &str = "api-key";
pub const PURPOSE_SECRET: &str = "api-secret";
/// The fingerprint setting's value for a plain-http router (nothing to pin).
const NO_CERTIFICATE: &str = "none";

/// An overview this fresh is served from memory: many browsers polling the panel cost one
/// call to the router every few seconds, not one each.
const OVERVIEW_FRESH: Duration = Duration::from_secs(5);
/// Traffic is sampled at most this often, whatever the number of pages polling it.
const TRAFFIC_MIN_GAP: Duration = Duration::from_secs(1);
/// After a failed sample, the router is asked again only after this.
const TRAFFIC_RETRY: Duration = Duration::from_secs(10);
/// Rates kept per interface for the graph: at a 3-second poll, six minutes. A fixed ring,
/// so memory stays flat however long the daemon runs.
pub const RING: usize = 120;
/// Interfaces graphed: a router has a handful; the bound keeps the map small whatever it says.
const MAX_GRAPHED: usize = 16;
/// A connection waiting for the owner to confirm the fingerprint is forgotten after this.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Pending connections held at once (one per browser that started connecting).
const MAX_PENDING: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Router(#[from] OpnSenseError),
    #[error("the router's stored settings could not be read or written: {0}")]
    Store(#[from] StoreError),
    #[error("the router's key could not be opened from the vault")]
    Vault,
    #[error("that confirmation has expired or was already used; start again")]
    NoPending,
}

impl NetworkError {
    /// One sentence for Basic mode.
    pub fn plain(&self) -> String {
        match self {
            NetworkError::Router(e) => e.plain(),
            NetworkError::Store(_) | NetworkError::Vault => {
                "Homelab could not read its own record of your router. Forget the router and connect it again.".into()
            }
            NetworkError::NoPending => {
                "That confirmation has expired. Start connecting the router again.".into()
            }
        }
    }
}

/// How the router stands, for the panel and the dashboard card.
pub enum RouterState {
    /// No router connected.
    NotSet,
    /// Connected and answering.
    Up(Arc<Overview>),
    /// Connected, but the last call failed; `last` is the last good overview, if any.
    Trouble {
        error: Arc<NetworkError>,
        last: Option<Arc<Overview>>,
    },
}

/// The stored connection, as shown (no secrets).
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: String,
    /// None for a plain-http router.
    pub fingerprint: Option<String>,
}

/// A connection the owner started but has not confirmed yet.
pub struct Pending {
    pub url: String,
    key: Secret,
    secret: Secret,
    /// None for plain http.
    pub fingerprint: Option<String>,
    at: Instant,
}

/// One interface's recent rates (bits per second), oldest first.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub inbound: VecDeque<f64>,
    pub outbound: VecDeque<f64>,
}

impl Series {
    fn push(&mut self, rate: &Rate) {
        self.name.clone_from(&rate.name);
        for (ring, v) in [
            (&mut self.inbound, rate.in_bps),
            (&mut self.outbound, rate.out_bps),
        ] {
            if ring.len() == RING {
                ring.pop_front();
            }
            ring.push_back(v);
        }
    }
}

/// One overview call's outcome, shared by every caller within the freshness window.
type Fetched = Result<Arc<Overview>, Arc<NetworkError>>;

#[derive(Default)]
struct State {
    /// The client for the stored connection, rebuilt when the connection changes.
    client: Option<Arc<OpnSense>>,
    /// The last overview and when it was fetched (or failed).
    overview: Option<(Instant, Fetched)>,
    last_good: Option<Arc<Overview>>,
    /// The last counters and when they were read here.
    traffic: Option<(Instant, TrafficSample)>,
    /// The last failed sampling: callers within [`TRAFFIC_RETRY`] get its error instead of
    /// waiting on a router that is not answering.
    traffic_failed: Option<(Instant, Arc<NetworkError>)>,
    series: BTreeMap<String, Series>,
    pending: HashMap<String, Pending>,
}

/// The router as the daemon holds it. One per runtime.
pub struct Router {
    store: Store,
    vault: Arc<Vault>,
    /// Guards the cache and the client. Held across the router call on purpose: callers that
    /// arrive while one call is under way wait for its answer instead of sending their own
    /// (every call is bounded by the client's 5-second timeout).
    state: Mutex<State>,
}

impl Router {
    pub fn new(store: Store, vault: Arc<Vault>) -> Router {
        Router {
            store,
            vault,
            state: Mutex::new(State::default()),
        }
    }

    /// The stored connection, if a router is connected.
    pub async fn connection(&self) -> Result<Option<Connection>, NetworkError> {
        let Some(url) = self.store.setting(SETTING_URL).await? else {
            return Ok(None);
        };
        let fingerprint = self
            .store
            .setting(SETTING_FINGERPRINT)
            .await?
            .filter(|f| f != NO_CERTIFICATE);
        Ok(Some(Connection { url, fingerprint }))
    }

    /// Step one of connecting: checks the address and credentials' form, meets the router,
    /// and holds everything until the owner confirms the fingerprint. Returns a one-time
    /// token for [`Router::confirm`] and the fingerprint to show.
    pub async fn begin(
        &self,
        url: &str,
        key: Secret,
        secret: Secret,
    ) -> Result<(String, Option<String>), NetworkError> {
        // Form first (nothing is sent for a bad address or a key with markup in it).
        let base = opnsense::parse_router_url(url)?;
        opnsense::credentials_ok(&key, &secret)?;
        let fingerprint = OpnSense::first_contact(base.as_str()).await?;
        let token = token();
        let mut st = self.state.lock().await;
        st.pending.retain(|_, p| p.at.elapsed() < PENDING_FOR);
        if st.pending.len() >= MAX_PENDING
            && let Some(oldest) = st
                .pending
                .iter()
                .min_by_key(|(_, p)| p.at)
                .map(|(k, _)| k.clone())
        {
            st.pending.remove(&oldest);
        }
        st.pending.insert(
            token.clone(),
            Pending {
                url: base.as_str().trim_end_matches('/').to_string(),
                key,
                secret,
                fingerprint: fingerprint.clone(),
                at: Instant::now(),
            },
        );
        Ok((token, fingerprint))
    }

    /// After a changed certificate: meets the stored router again with its stored key, for
    /// the owner to confirm the new certificate (then [`Router::confirm`] as at first).
    pub async fn begin_again(&self) -> Result<(String, Option<String>), NetworkError> {
        let Some(conn) = self.connection().await? else {
            return Err(NetworkError::NoPending);
        };
        let (key, secret) = self.stored_credentials().await?;
        self.begin(&conn.url, key, secret).await
    }

    async fn stored_credentials(&self) -> Result<(Secret, Secret), NetworkError> {
        let open = |sealed: Option<Vec<u8>>, purpose: &str| {
            sealed
                .and_then(|s| self.vault.open(&s, SECRET_OWNER, purpose).ok())
                .ok_or(NetworkError::Vault)
        };
        let key = open(
            self.store.secret(SECRET_OWNER.into(), PURPOSE_KEY).await?,
            PURPOSE_KEY,
        )?;
        let secret = open(
            self.store
                .secret(SECRET_OWNER.into(), PURPOSE_SECRET)
                .await?,
            PURPOSE_SECRET,
        )?;
        Ok((key, secret))
    }

    /// The pending connection behind a token (to show its fingerprint again).
    pub async fn pending(&self, token: &str) -> Option<(String, Option<String>)> {
        let st = self.state.lock().await;
        st.pending
            .get(token)
            .filter(|p| p.at.elapsed() < PENDING_FOR)
            .map(|p| (p.url.clone(), p.fingerprint.clone()))
    }

    /// Step two: the owner confirmed the fingerprint. Checks the key works through the pinned
    /// certificate, then stores the connection (secrets sealed). Returns the router's
    /// version. Nothing is stored when the check fails.
    pub async fn confirm(&self, token: &str) -> Result<String, NetworkError> {
        let pending = {
            let mut st = self.state.lock().await;
            match st.pending.remove(token) {
                Some(p) if p.at.elapsed() < PENDING_FOR => p,
                _ => return Err(NetworkError::NoPending),
            }
        };
        let client = OpnSense::new(
            &pending.url,
            Secret::new(pending.key.expose().to_vec()),
            Secret::new(pending.secret.expose().to_vec()),
            pending.fingerprint.clone(),
        )?;
        let system = client.check().await?;
        let sealed_key = self
            .vault
            .seal(pending.key.expose(), SECRET_OWNER, PURPOSE_KEY);
        let sealed_secret = self
            .vault
            .seal(pending.secret.expose(), SECRET_OWNER, PURPOSE_SECRET);
        self.store
            .put_secret(SECRET_OWNER.into(), PURPOSE_KEY, sealed_key)
            .await?;
        self.store
            .put_secret(SECRET_OWNER.into(), PURPOSE_SECRET, sealed_secret)
            .await?;
        self.store
            .set_setting(
                SETTING_FINGERPRINT,
                pending
                    .fingerprint
                    .clone()
                    .unwrap_or_else(|| NO_CERTIFICATE.into()),
            )
            .await?;
        self.store
            .set_setting(SETTING_URL, pending.url.clone())
            .await?;
        let mut st = self.state.lock().await;
        *st = State {
            pending: std::mem::take(&mut st.pending),
            client: Some(Arc::new(client)),
            ..State::default()
        };
        Ok(system.version)
    }

    /// Forgets the router: settings, sealed secrets and everything held in memory.
    pub async fn forget(&self) -> Result<(), NetworkError> {
        self.store.delete_setting(SETTING_URL).await?;
        self.store.delete_setting(SETTING_FINGERPRINT).await?;
        self.store.delete_secrets_of(SECRET_OWNER.into()).await?;
        let mut st = self.state.lock().await;
        *st = State {
            pending: std::mem::take(&mut st.pending),
            ..State::default()
        };
        Ok(())
    }

    /// The client for the stored connection (built once, then reused).
    async fn client(&self, st: &mut State) -> Result<Option<Arc<OpnSense>>, NetworkError> {
        if let Some(c) = &st.client {
            return Ok(Some(c.clone()));
        }
        let Some(conn) = self.connection().await? else {
            return Ok(None);
        };
        let (key, secret) = self.stored_credentials().await?;
        let client = Arc::new(OpnSense::new(&conn.url, key, secret, conn.fingerprint)?);
        st.client = Some(client.clone());
        Ok(Some(client))
    }

    /// The client for callers outside this module (the DNS feature's host overrides). None
    /// when no router is connected.
    pub async fn opnsense(&self) -> Result<Option<Arc<OpnSense>>, NetworkError> {
        let mut st = self.state.lock().await;
        self.client(&mut st).await
    }

    /// How the router stands now, from a cache at most a few seconds old.
    pub async fn state(&self) -> RouterState {
        let mut st = self.state.lock().await;
        if let Some((at, result)) = &st.overview
            && at.elapsed() < OVERVIEW_FRESH
        {
            return match result {
                Ok(o) => RouterState::Up(o.clone()),
                Err(e) => RouterState::Trouble {
                    error: e.clone(),
                    last: st.last_good.clone(),
                },
            };
        }
        let client = match self.client(&mut st).await {
            Ok(Some(c)) => c,
            Ok(None) => return RouterState::NotSet,
            Err(e) => {
                return RouterState::Trouble {
                    error: Arc::new(e),
                    last: None,
                };
            }
        };
        let result = client
            .overview()
            .await
            .map(Arc::new)
            .map_err(|e| Arc::new(NetworkError::from(e)));
        st.overview = Some((Instant::now(), result.clone()));
        match result {
            Ok(o) => {
                st.last_good = Some(o.clone());
                RouterState::Up(o)
            }
            Err(error) => RouterState::Trouble {
                error,
                last: st.last_good.clone(),
            },
        }
    }

    /// Samples the counters (at most once a second whatever the number of callers), adds
    /// the rates since the previous sample to each interface's ring, and returns the rings.
    pub async fn traffic(&self) -> Result<BTreeMap<String, Series>, Arc<NetworkError>> {
        let mut st = self.state.lock().await;
        let recent = st
            .traffic
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < TRAFFIC_MIN_GAP);
        if !recent {
            if let Some((at, e)) = &st.traffic_failed
                && at.elapsed() < TRAFFIC_RETRY
            {
                return Err(e.clone());
            }
            let client = match self.client(&mut st).await {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(BTreeMap::new()),
                Err(e) => return Err(Arc::new(e)),
            };
            let sample = match client.traffic().await {
                Ok(s) => s,
                Err(e) => {
                    let e = Arc::new(NetworkError::from(e));
                    st.traffic_failed = Some((Instant::now(), e.clone()));
                    return Err(e);
                }
            };
            st.traffic_failed = None;
            if let Some((_, earlier)) = &st.traffic {
                let rates = sample.rates_since(earlier);
                for rate in rates {
                    if st.series.len() >= MAX_GRAPHED && !st.series.contains_key(&rate.id) {
                        continue;
                    }
                    st.series.entry(rate.id.clone()).or_default().push(&rate);
                }
            }
            st.traffic = Some((Instant::now(), sample));
        }
        Ok(st.series.clone())
    }
}

/// A one-time token for a pending connection: 128 random bits as hex.
fn token() -> String {
    crate::secrets::random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_keeps_only_the_last_ring_of_rates() {
        let mut s = Series::default();
        for i in 0..(RING * 3) {
            s.push(&Rate {
                id: "wan".into(),
                name: "WAN".into(),
                in_bps: i as f64,
                out_bps: 0.0,
            });
        }
        assert_eq!(s.inbound.len(), RING);
        assert_eq!(s.outbound.len(), RING);
        assert_eq!(s.inbound.front(), Some(&((RING * 2) as f64)));
        assert_eq!(s.inbound.back(), Some(&((RING * 3 - 1) as f64)));
    }
}
