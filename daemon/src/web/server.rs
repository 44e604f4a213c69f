//! Serving connections, with a bound on everything a client can hold: every connection needs a
//! slot in one table shared by the HTTP and HTTPS listeners (capped per client and in total,
//! the oldest idle connection giving way first), a TLS handshake and each request's headers
//! must arrive within a deadline, and the accept loop never waits on any one peer.
//!
//! axum's own `serve` offers none of these knobs (no timer, so no header-read timeout), so this
//! module drives hyper directly and hands each request to the axum router.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::context::ClientAddr;
use super::pace::{PacedBody, PacedIo};
use crate::config::ConnectionLimits;

/// How long the accept loop pauses after the kernel refuses to hand over a connection (EMFILE
/// and friends): long enough not to spin, short enough that nobody notices.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Largest request head (request line and headers) read into memory.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Refusals are logged at most this often, as one line with a count: a flood must not turn
/// into a flood of log lines on an SD card.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Which client a connection counts against. An IPv4 address, or an IPv6 /64: one machine
/// can pick any number of addresses inside its /64, so counting single IPv6 addresses would
/// not bound it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6(u64),
}

fn client_key(ip: IpAddr) -> ClientKey {
    match ip.to_canonical() {
        IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
        IpAddr::V6(v6) => ClientKey::V6((u128::from(v6) >> 64) as u64),
    }
}

/// One open connection in the table.
struct Slot {
    client: ClientKey,
    /// Requests whose response is not finished; 0 means idle (handshaking, waiting for a
    /// request's headers, or kept alive between requests), which makes it evictable.
    in_flight: Arc<AtomicUsize>,
    /// Told when the connection is evicted; its task then drops it at once.
    close: Arc<Notify>,
}

#[derive(Default)]
struct Slots {
    /// Keyed by admission order, so iteration goes oldest first.
    open: BTreeMap<u64, Slot>,
    per_client: HashMap<ClientKey, usize>,
    next_id: u64,
    /// Refusals since the last log line, and when that line was written.
    refused: u64,
    evicted: u64,
    last_report: Option<Instant>,
}

impl Slots {
    fn remove(&mut self, id: u64) -> Option<Slot> {
        let slot = self.open.remove(&id)?;
        if let Some(n) = self.per_client.get_mut(&slot.client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&slot.client);
            }
        }
        Some(slot)
    }

    /// Closes the oldest idle connection that `matches`; false when every one is busy.
    fn evict_oldest_idle(&mut self, matches: impl Fn(&Slot) -> bool) -> bool {
        let victim = self
            .open
            .iter()
            .find(|(_, s)| matches(s) && s.in_flight.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        self.evict(victim)
    }

    /// With every connection busy, takes one from the client holding the most (its oldest),
    /// as long as that client holds more than `newcomer` would after admission. So each
    /// client can always get an equal share of the total: many addresses trickling request
    /// bodies (busy, never idle) cannot keep the owner, or the health check, out.
    fn evict_from_biggest(&mut self, newcomer: ClientKey) -> bool {
        let theirs = self.per_client.get(&newcomer).copied().unwrap_or(0) + 1;
        let Some((&biggest, &count)) = self.per_client.iter().max_by_key(|(_, n)| **n) else {
            return false;
        };
        if count <= theirs {
            return false;
        }
        let victim = self
            .open
            .iter()
            .find(|(_, s)| s.client == biggest)
            .map(|(id, _)| *id);
        self.evict(victim)
    }

    fn evict(&mut self, victim: Option<u64>) -> bool {
        match victim.and_then(|id| self.remove(id)) {
            Some(slot) => {
                slot.close.notify_one();
                self.evicted += 1;
                true
            }
            None => false,
        }
    }
}

/// The connection table shared by every listener of one daemon.
pub struct Connections {
    limits: ConnectionLimits,
    // std Mutex: held for a few map operations, never across an await.
    slots: Mutex<Slots>,
}

/// A connection's place in the table; leaving it (drop) frees the place.
struct Admitted {
    table: Arc<Connections>,
    id: u64,
    in_flight: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.table.lock().remove(self.id);
    }
}

impl Connections {
    pub fn new(limits: ConnectionLimits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            slots: Mutex::new(Slots::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Finds room for a new connection from `ip`: within the client's share and the total,
    /// closing the oldest idle connection (the client's own first) when full, and when every
    /// connection is busy, the oldest of the client holding the most. `None`: the client is at
    /// its own share with every connection busy, or holds as many as anyone.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let key = client_key(ip);
        let mut slots = self.lock();
        let mine = slots.per_client.get(&key).copied().unwrap_or(0);
        let room = (mine < self.limits.per_client || slots.evict_oldest_idle(|s| s.client == key))
            && (slots.open.len() < self.limits.total
                || slots.evict_oldest_idle(|_| true)
                || slots.evict_from_biggest(key));
        if !room {
            slots.refused += 1;
        }
        self.report(&mut slots);
        if !room {
            return None;
        }
        let id = slots.next_id;
        slots.next_id += 1;
        let (in_flight, close) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        slots.open.insert(
            id,
            Slot {
                client: key,
                in_flight: in_flight.clone(),
                close: close.clone(),
            },
        );
        *slots.per_client.entry(key).or_default() += 1;
        Some(Admitted {
            table: self.clone(),
            id,
            in_flight,
            close,
        })
    }

    /// One warning a minute while connections are being refused or dropped for room.
    fn report(&self, slots: &mut Slots) {
        if slots.refused == 0 && slots.evicted == 0 {
            return;
        }
        let due = slots
            .last_report
            .is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            tracing::warn!(
                refused = slots.refused,
                closed_idle = slots.evicted,
                open = slots.open.len(),
                limit_total = self.limits.total,
                limit_per_client = self.limits.per_client,
                "too many connections: refused new ones or closed idle ones to make room \
                 (a device on the network may be flooding Homelab)"
            );
            slots.refused = 0;
            slots.evicted = 0;
            slots.last_report = Some(Instant::now());
        }
    }
}

/// What a listener speaks.
#[derive(Clone)]
pub enum Transport {
    Plain,
    Tls(TlsAcceptor),
}

/// Accepts connections on `listener` until `stop` flips, serving each with `app`. Returns
/// once every connection it opened has finished (graceful shutdown).
pub async fn serve(
    listener: TcpListener,
    transport: Transport,
    app: Router,
    table: Arc<Connections>,
    mut stop: watch::Receiver<bool>,
) {
    // Every connection task holds a clone; `recv` returns None once they have all ended.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            _ = crate::shutdown::stopped(&mut stop) => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let Some(admitted) = table.admit(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: no room");
            continue; // dropping the stream closes it
        };
        let _ = tcp.set_nodelay(true);
        let (app, transport, stop, alive) =
            (app.clone(), transport.clone(), stop.clone(), alive.clone());
        let limits = table.limits.clone();
        tokio::spawn(async move {
            let _alive = alive;
            connection(tcp, peer, transport, app, admitted, limits, stop).await;
        });
    }
    drop(listener);
    drop(alive);
    let _ = all_done.recv().await;
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    app: Router,
    admitted: Admitted,
    limits: ConnectionLimits,
    stop: watch::Receiver<bool>,
) {
    match transport {
        Transport::Plain => http1(tcp, peer, app, admitted, &limits, stop).await,
        Transport::Tls(acceptor) => {
            // The handshake runs here, in the connection's own task, so the accept loop is
            // never held up; an eviction ends it like any idle connection.
            let handshake = tokio::time::timeout(limits.handshake, acceptor.accept(tcp));
            let tls = tokio::select! {
                r = handshake => r,
                _ = admitted.close.notified() => return,
            };
            match tls {
                Ok(Ok(tls)) => http1(tls, peer, app, admitted, &limits, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

/// Serves HTTP/1.1 on one connection until the client leaves, a deadline passes, the
/// connection is evicted, or the daemon stops (then in-flight requests finish first).
async fn http1<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    admitted: Admitted,
    limits: &ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let in_flight = admitted.in_flight.clone();
    let stall = limits.stall;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(ClientAddr(peer)));
        let busy = Busy::start(in_flight.clone());
        let app = app.clone();
        let req = req.map(|body| match body.is_end_stream() {
            true => Body::new(body),
            false => Body::new(PacedBody::new(body, stall)),
        });
        async move {
            let res = app.oneshot(req).await?;
            // The connection stays busy until the response body has been sent (or dropped),
            // so a live event stream is never taken for an idle connection.
            Ok::<_, Infallible>(res.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _ = &busy;
                    frame
                }))
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header-read timeout runs from when hyper starts waiting for a request until its
    // headers are complete, so it also closes kept-alive connections that sit idle.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        // A request's head must fit in 64 KiB (browsers send a few KB): hyper's default of
        // ~400 KB let 512 connections trickling bodies behind huge headers hold ~200 MB.
        .max_header_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(PacedIo::new(io, limits.stall)), service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = admitted.close.notified() => {
                tracing::debug!(%peer, "idle connection closed to make room");
                return;
            }
            _ = crate::shutdown::stopped(&mut stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Marks a connection busy while one of its requests is being answered.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn start(counter: Arc<AtomicUsize>) -> Busy {
        counter.fetch_add(1, Ordering::AcqRel);
        Busy(counter)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_client: usize) -> ConnectionLimits {
        ConnectionLimits {
            total,
            per_client,
            ..ConnectionLimits::default()
        }
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.5"), key("10.0.0.5"));
        assert_ne!(key("10.0.0.5"), key("10.0.0.6"));
    }

    #[test]
    fn a_client_over_its_share_loses_its_own_oldest_idle_connection() {
        let t = Connections::new(limits(10, 2));
        let x: IpAddr = [10, 0, 0, 1].into();
        let y: IpAddr = [10, 0, 0, 2].into();
        let first = t.admit(x).expect("room");
        let second = t.admit(x).expect("room");
        let other = t.admit(y).expect("room");
        let third = t.admit(x).expect("the oldest idle one gives way");
        assert_eq!(t.open(), 3);
        assert!(!t.lock().open.contains_key(&first.id), "the oldest went");
        assert!(
            t.lock().open.contains_key(&other.id),
            "another client keeps its own"
        );
        // Busy connections never give way: with both of x's busy, a third is refused.
        let _b1 = Busy::start(second.in_flight.clone());
        let _b2 = Busy::start(third.in_flight.clone());
        assert!(t.admit(x).is_none());
        drop((first, second, third, other));
        assert_eq!(t.open(), 0);
        assert!(t.lock().per_client.is_empty(), "no counters left behind");
    }

    #[test]
    fn when_everything_is_busy_the_biggest_holder_gives_way() {
        let t = Connections::new(limits(6, 3));
        let flood: Vec<IpAddr> = (1..=2u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let mut held = Vec::new();
        for ip in &flood {
            for _ in 0..3 {
                let a = t.admit(*ip).expect("room");
                let busy = Busy::start(a.in_flight.clone());
                held.push((a, busy));
            }
        }
        let owner: IpAddr = [10, 0, 0, 9].into();
        let o1 = t
            .admit(owner)
            .expect("a busy connection of a biggest holder gives way");
        let gone: Vec<u64> = held
            .iter()
            .map(|(a, _)| a.id)
            .filter(|id| !t.lock().open.contains_key(id))
            .collect();
        assert_eq!(gone.len(), 1, "exactly one flood connection gave way");
        assert!(
            gone[0] == held[0].0.id || gone[0] == held[3].0.id,
            "and it was a client's oldest"
        );
        let _b = Busy::start(o1.in_flight.clone());
        let o2 = t
            .admit(owner)
            .expect("still more than the owner's share elsewhere");
        let _b2 = Busy::start(o2.in_flight.clone());
        // Now 2 + 2 + 2: nobody holds more than the owner would, so the owner is refused
        // rather than taking from an equal.
        assert_eq!(t.open(), 6);
        assert!(t.admit(owner).is_none());
    }

    #[test]
    fn over_the_total_the_oldest_idle_of_anyone_gives_way() {
        let t = Connections::new(limits(3, 3));
        let ips: Vec<IpAddr> = (1..=4u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let a = t.admit(ips[0]).expect("room");
        let b = t.admit(ips[1]).expect("room");
        let _busy = Busy::start(a.in_flight.clone());
        let c = t.admit(ips[2]).expect("room");
        let d = t.admit(ips[3]).expect("b, the oldest idle, gives way");
        let open: Vec<u64> = t.lock().open.keys().copied().collect();
        assert_eq!(open, vec![a.id, c.id, d.id]);
        drop(b);
        assert_eq!(
            t.open(),
            3,
            "dropping an evicted connection frees nothing twice"
        );
    }
}
