//! An outsider on the LAN attacks the real server: floods of idle and half-sent connections
//! over HTTP and HTTPS, and DNS rebinding through a foreign Host. Floods come from other
//! loopback addresses (127.0.0.2 …), the owner from 127.0.0.1; limits are small so the floods
//! that prove them run in seconds.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;

/// How long an evicted connection may take to be seen closed: eviction happens when the new
/// connection is admitted, so this only covers scheduling on a loaded machine.
const CLOSE_SEEN_WITHIN: Duration = Duration::from_secs(5);
/// Hang guard for the owner's requests during a flood (not a speed target).
const OWNER_REQUEST_GUARD: Duration = Duration::from_secs(30);

fn limits(total: usize, per_client: usize) -> homelabd::ConnectionLimits {
    homelabd::ConnectionLimits {
        total,
        per_client,
        // Long, so that only eviction (not a timeout) can close the flood in these tests.
        header_read: Duration::from_secs(60),
        handshake: Duration::from_secs(60),
        stall: Duration::from_secs(60),
    }
}

/// A TCP connection from the loopback address `from` (how the tests play other machines).
async fn connect_from(from: IpAddr, to: SocketAddr) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from, 0)).unwrap();
    sock.connect(to).await.unwrap()
}

/// Opens `n` TCP connections from `from` to `to` that never send a byte; returned as plain
/// non-blocking std sockets so the test can check which ones the server closed.
async fn idle_flood(from: IpAddr, to: SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let stream = connect_from(from, to).await;
        let std = stream.into_std().unwrap();
        std.set_nonblocking(true).unwrap();
        out.push(std);
    }
    out
}

/// How many of `socks` the server has closed (EOF or reset on read).
fn closed(socks: &[std::net::TcpStream]) -> usize {
    // Large enough to swallow an error page in one read, so the EOF behind it shows.
    let mut buf = vec![0u8; 256 * 1024];
    socks
        .iter()
        .filter(|s| match (&mut &**s).read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != ErrorKind::WouldBlock,
        })
        .count()
}

fn addr_of(base: &str) -> SocketAddr {
    base.rsplit('/').next().unwrap().parse().unwrap()
}

async fn wait_closed(socks: &[std::net::TcpStream], at_least: usize, what: &str) {
    eventually(what, CLOSE_SEEN_WITHIN, || {
        let n = closed(socks);
        async move {
            if n >= at_least {
                Ok(())
            } else {
                Err(format!("{n} closed so far"))
            }
        }
    })
    .await
}

#[tokio::test]
async fn idle_sockets_from_one_laptop_cannot_starve_http_or_https() {
    let mut opts = Options::new("abuse-idle");
    opts.https = true;
    opts.connections = limits(64, 16);
    let s = start_with(opts).await;
    let https = s.https_base.clone().unwrap();
    let laptop: IpAddr = [127, 0, 0, 2].into();

    // 150 connections to the HTTPS port that never start a handshake: the old accept loop
    // waited for one of 128 handshake slots, each held 10 s.
    let tls_flood = idle_flood(laptop, addr_of(&https), 150).await;
    let tls = tls_client(&s);
    let page = during_flood(
        tls.get(format!("{https}/setup")),
        "the sign-in side answers during the flood",
    )
    .await;
    assert_eq!(page.status(), 200);
    // The laptop keeps only its share: every older idle connection was closed for room.
    wait_closed(
        &tls_flood,
        150 - 16,
        "the flood's oldest TLS connections to close",
    )
    .await;

    // The same over plain HTTP (which only redirects when HTTPS is on).
    let http_flood = idle_flood(laptop, s.addr, 150).await;
    let res = during_flood(
        s.client.get(s.url("/healthz")),
        "HTTP answers during the flood",
    )
    .await;
    assert_eq!(res.status(), 200);
    wait_closed(
        &http_flood,
        150 - 16,
        "the HTTP flood's oldest connections to close",
    )
    .await;
    // Both listeners share one table: the newer HTTP connections displaced the TLS ones too.
    wait_closed(
        &tls_flood,
        150,
        "the remaining TLS flood connections to give way",
    )
    .await;
}

#[tokio::test]
async fn many_addresses_together_stay_within_the_total() {
    let mut opts = Options::new("abuse-total");
    opts.connections = limits(24, 64);
    let s = start_with(opts).await;
    let mut flood = Vec::new();
    for last in 2..=6u8 {
        flood.extend(idle_flood([127, 0, 0, last].into(), s.addr, 20).await);
    }
    let page = during_flood(s.client.get(s.url("/setup")), "the owner gets a page").await;
    assert_eq!(page.status(), 200);
    // 100 flood connections plus the owner's one, 24 places.
    wait_closed(
        &flood,
        100 - 23,
        "the total cap to close the oldest idle connections",
    )
    .await;
}

/// A GET that names the box as `host` (what a browser sends for that name).
async fn get_as(s: &TestServer, path: &str, host: &str) -> reqwest::Response {
    s.client
        .get(s.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap()
}

/// The owner's (or the health probe's) request while a flood runs: it must be answered, and
/// a hang fails the test after the guard instead of hanging the suite.
async fn during_flood(req: reqwest::RequestBuilder, what: &str) -> reqwest::Response {
    tokio::time::timeout(OWNER_REQUEST_GUARD, req.send())
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {OWNER_REQUEST_GUARD:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Sends raw bytes and returns the status code of the answer.
async fn raw_status(to: SocketAddr, raw: &[u8]) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(to).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(OWNER_REQUEST_GUARD, stream.read_exact(&mut head))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let s = start("abuse-big-head").await;
    let pad = "a".repeat(100 * 1024);
    let raw = format!(
        "GET /login HTTP/1.1\r\nHost: {}\r\nX-Pad: {pad}\r\n\r\n",
        s.addr
    );
    assert_eq!(raw_status(s.addr, raw.as_bytes()).await, 431);
    let raw = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Pad: {}\r\n\r\n",
        s.addr,
        &pad[..8000]
    );
    assert_eq!(
        raw_status(s.addr, raw.as_bytes()).await,
        200,
        "a few KB of headers are fine"
    );
}

#[tokio::test]
async fn half_sent_requests_and_idle_keep_alives_are_cut_off() {
    let mut opts = Options::new("abuse-slow-headers");
    opts.connections.header_read = Duration::from_secs(1);
    let s = start_with(opts).await;

    // Slowloris: a request line and one header, then nothing.
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // A connection that never sends anything at all.
    let silent = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let socks = vec![slow.into_std().unwrap(), silent.into_std().unwrap()];
    wait_closed(
        &socks,
        2,
        "connections without complete headers to be closed",
    )
    .await;

    // A normal request on the same server still works, before and after its keep-alive idles.
    let res = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_request_body_that_stops_arriving_is_cut_off() {
    let mut opts = Options::new("abuse-slow-body");
    opts.connections.stall = Duration::from_secs(1);
    let s = start_with(opts).await;
    // A sign-in form that announces 100 bytes and sends 10: the old server waited forever,
    // holding the connection busy (so never closed for room).
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=a",
        s.addr, s.base
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let socks = [slow.into_std().unwrap()];
    wait_closed(&socks, 1, "the stalled upload's connection to be closed").await;
}

#[tokio::test]
async fn trickled_request_bodies_from_many_addresses_cannot_keep_the_owner_out() {
    let mut opts = Options::new("abuse-busy");
    opts.connections = limits(24, 8);
    let s = start_with(opts).await;
    // Four addresses each fill their share with sign-in forms whose bodies never finish:
    // busy connections, which are never idle and so never closed for room on that ground.
    let mut busy = Vec::new();
    for last in 2..=4u8 {
        for _ in 0..8 {
            let mut stream = connect_from([127, 0, 0, last].into(), s.addr).await;
            let head = format!(
                "POST /login HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\nusername=",
                s.addr, s.base
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            busy.push(stream);
        }
    }
    // The owner still gets pages, and the health check answers: the biggest holders give way.
    for _ in 0..3 {
        let page = during_flood(s.client.get(s.url("/setup")), "the owner's page").await;
        assert_eq!(page.status(), 200);
        // A fresh client: a new connection each time, as the appliance's health probe makes.
        let health = during_flood(client().get(s.url("/healthz")), "the health check").await;
        assert_eq!(health.status(), 200);
    }
}

#[tokio::test]
async fn an_unclaimed_box_cannot_be_claimed_through_a_foreign_name() {
    let s = start("abuse-rebind").await;
    let port = s.addr.port();
    let evil = format!("evil.example:{port}");
    let pw = password("rebinder");
    // What a rebinding page makes the victim's browser send: Host and Origin both its own.
    let res = s
        .client
        .post(s.url("/setup"))
        .header("host", &evil)
        .header("origin", format!("http://{evil}"))
        .form(&[
            ("username", "admin"),
            ("password", pw.as_str()),
            ("password_confirm", pw.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 421);
    assert!(res.headers().get("set-cookie").is_none());
    let text = res.text().await.unwrap();
    assert!(text.contains("does not answer to this name"), "{text}");
    assert!(text.contains("Names for this box"), "says how to fix it");

    // Reading pages through the foreign name is refused too; the health check is not.
    let res = get_as(&s, "/setup", &evil).await;
    assert_eq!(res.status(), 421);
    let res = get_as(&s, "/healthz", &evil).await;
    assert_eq!(res.status(), 200);

    // Raw requests a browser never sends, but a script could: a second Host, or a target that
    // names another site.
    for raw in [
        format!(
            "GET /setup HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: {evil}\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "GET http://{evil}/setup HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
    ] {
        assert_eq!(raw_status(s.addr, raw.as_bytes()).await, 421, "{raw}");
    }

    // The box is still unclaimed, and its own names work.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("homelab.local:{port}"),
    ] {
        let res = get_as(&s, "/setup", &host).await;
        assert_eq!(res.status(), 200, "{host}");
        assert!(res.text().await.unwrap().contains("Welcome"), "{host}");
    }
}

#[tokio::test]
async fn redirects_to_https_never_go_to_a_foreign_name() {
    let mut opts = Options::new("abuse-redirect");
    opts.https = true;
    let s = start_with(opts).await;
    let tls_port = addr_of(s.https_base.as_deref().unwrap()).port();
    let res = get_as(&s, "/login", "evil.example").await;
    assert_eq!(res.status(), 421);
    assert!(res.headers().get("location").is_none());
    let res = get_as(&s, "/login", "homelab.local").await;
    assert_eq!(res.status(), 308);
    assert_eq!(
        res.headers()["location"],
        format!("https://homelab.local:{tls_port}/login")
    );
}

#[tokio::test]
async fn the_owner_adds_a_name_and_the_box_answers_to_it() {
    let s = start("abuse-names").await;
    let (session, _) = s.claim().await;
    let port = s.addr.port();
    let lan = format!("homelab.lan:{port}");
    let before = get_as(&s, "/login", &lan).await;
    assert_eq!(before.status(), 421);

    // Names live in Advanced mode.
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert!(res.status().is_success());
    let page = s.get("/settings", &session).await.text().await.unwrap();
    assert!(page.contains("Names for this box"));
    let res = s
        .post_htmx("/settings/names", &session, &[("names", "bad/name")])
        .await;
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("not a name a browser can use")
    );

    let res = s
        .post_htmx(
            "/settings/names",
            &session,
            &[("names", "Homelab.LAN\nbox.fritz.box")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("homelab.lan\nbox.fritz.box")
    );
    let after = get_as(&s, "/login", &lan).await;
    assert_eq!(after.status(), 200);

    // The list survives a restart.
    let data = s.data.clone();
    s.stop().await.unwrap();
    let mut opts = Options::new("abuse-names");
    opts.data = Some(data);
    let s = start_with(opts).await;
    let lan = format!("homelab.lan:{}", s.addr.port());
    let res = get_as(&s, "/login", &lan).await;
    assert_eq!(res.status(), 200);
}
