//! The web layer against the real server: access control enumerated from the route table,
//! CSRF and Origin checks, htmx partials, API tokens, JSON errors, live events, HTTPS.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::{Duration, Instant};

use common::*;
use homelabd::web::{Access, route_table};
use reqwest::Method;

/// Fills path parameters with plausible values.
fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{slug}", "vaultwarden")
        .replace("{*path}", "app.css")
        .replace("{*rest}", "v1/nothing")
}

#[tokio::test]
async fn every_non_public_route_refuses_anonymous_requests() {
    let s = start("routes-anon").await;
    s.claim().await;
    let table = route_table();
    assert!(
        table.len() >= 20,
        "the route table is enumerated, not empty"
    );
    let public: Vec<_> = table
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| (r.method.as_str(), r.path))
        .collect();
    // Exactly these are public: health, assets, and the setup/sign-in pages (restoring a
    // homelab onto an unclaimed box is part of setting it up, behind its setup code).
    assert_eq!(
        public,
        vec![
            ("GET", "/healthz"),
            ("GET", "/static/{*path}"),
            ("GET", "/setup"),
            ("POST", "/setup"),
            ("POST", "/api/v1/setup/restore"),
            ("GET", "/setup/restore"),
            ("POST", "/setup/restore"),
            ("GET", "/login"),
            ("POST", "/login")
        ]
    );
    for route in table.iter().filter(|r| r.access != Access::Public) {
        let url = s.url(&concrete(route.path));
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        // Same-origin, so only the missing credentials can be the reason for refusal.
        let res = s
            .client
            .request(method, &url)
            .headers(s.origin())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let refused = status == 401
            || (status == 303 && location.as_deref().is_some_and(|l| l.starts_with("/login")));
        assert!(
            refused,
            "{} {} answered {status} to an anonymous request",
            route.method, route.path
        );
        // And a made-up session cookie or API token does not help.
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let res = s
            .client
            .request(method, &url)
            .headers(s.origin())
            .header("cookie", "homelab_session=forged")
            .header("authorization", "Bearer hlt_forged")
            .send()
            .await
            .unwrap();
        assert!(
            matches!(res.status().as_u16(), 401 | 403),
            "{} {} accepted forged credentials",
            route.method,
            route.path
        );
    }
}

#[tokio::test]
async fn public_routes_answer_anonymous_requests() {
    let s = start("routes-public").await;
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    let css = s.client.get(s.url("/static/app.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let etag = css.headers()["etag"].clone();
    let again = s
        .client
        .get(s.url("/static/app.css"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let htmx = s
        .client
        .get(s.url("/static/vendor/htmx/htmx-2.0.11.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(htmx.status(), 200);
    assert!(
        htmx.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(
        s.client
            .get(s.url("/static/nope.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn state_changes_need_the_csrf_token_and_our_origin() {
    let s = start("csrf").await;
    let (session, _) = s.claim().await;
    let post = |csrf: Option<&str>, origin: Option<&str>| {
        let mut req = s
            .client
            .post(s.url("/settings/mode"))
            .header("cookie", &session.cookie)
            .form(&[("mode", "advanced")]);
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let ours = s.base.clone();
    let res = post(None, Some(&ours)).await.unwrap();
    assert_eq!(res.status(), 403, "no token");
    assert!(res.text().await.unwrap().contains("security token"));
    assert_eq!(
        post(Some("wrong-token"), Some(&ours))
            .await
            .unwrap()
            .status(),
        403,
        "wrong token"
    );
    assert_eq!(
        post(Some(&session.csrf), Some("http://evil.example"))
            .await
            .unwrap()
            .status(),
        403,
        "foreign origin"
    );
    assert_eq!(
        post(Some(&session.csrf), None).await.unwrap().status(),
        403,
        "no origin at all"
    );
    // A form field with the wrong token is refused too.
    let res = s
        .client
        .post(s.url("/settings/mode"))
        .headers(s.origin())
        .header("cookie", &session.cookie)
        .form(&[("mode", "advanced"), ("csrf_token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // None of the refused requests changed anything.
    let page = s.get("/settings", &session).await.text().await.unwrap();
    assert!(page.contains("data-mode=\"basic\""));
    // With both right, it works, and the form field path works as well.
    let res = post(Some(&session.csrf), Some(&ours)).await.unwrap();
    assert_eq!(res.status(), 303, "a plain form post is redirected back");
    let page = s.get("/settings", &session).await.text().await.unwrap();
    assert!(page.contains("data-mode=\"advanced\""));
    // htmx gets a 200 asking for a full refresh (a redirect would be followed by the XHR).
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "basic")])
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["hx-refresh"], "true");
    let page = s.get("/settings", &session).await.text().await.unwrap();
    assert!(page.contains("data-mode=\"basic\""));
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert_eq!(res.status(), 200);
    let page = s.get("/settings", &session).await.text().await.unwrap();
    assert!(page.contains("data-mode=\"advanced\""));
    // Login from a foreign origin is refused (login CSRF).
    let res = s
        .client
        .post(s.url("/login"))
        .header("origin", "http://evil.example")
        .form(&[("username", "admin"), ("password", "whatever-it-is")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn htmx_requests_get_the_partial_and_pages_the_layout() {
    let s = start("partials").await;
    let (session, _) = s.claim().await;
    let full = s.get("/devices", &session).await.text().await.unwrap();
    assert!(full.starts_with("<!doctype html>"));
    assert!(full.contains("id=\"nav\""));
    assert!(full.contains("No devices yet"));
    let partial = s
        .get_text_with("/devices", &session, &[("hx-request", "true")])
        .await;
    assert!(!partial.contains("<!doctype html>"));
    assert!(partial.contains("No devices yet"));
    assert!(
        partial.contains("hx-swap-oob=\"true\""),
        "the nav is updated out of band"
    );
    // A history restore gets the whole page.
    let restore = s
        .get_text_with(
            "/devices",
            &session,
            &[
                ("hx-request", "true"),
                ("hx-history-restore-request", "true"),
            ],
        )
        .await;
    assert!(restore.starts_with("<!doctype html>"));
    // Every section renders with an empty state that says what to do next.
    for (path, words) in [
        ("/apps", "Vaultwarden"),
        ("/network", "Names and secure addresses for your apps"),
        ("/backups", "Backups are not set up"),
        ("/", "Getting started"),
    ] {
        let res = s.get(path, &session).await;
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.text().await.unwrap().contains(words), "{path}");
    }
}

#[tokio::test]
async fn errors_have_a_stable_shape_and_a_request_id() {
    let s = start("errors").await;
    let (session, _) = s.claim().await;
    let res = s
        .client
        .get(s.url("/api/v1/system/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert_eq!(body["error"]["request_id"], rid.as_str());
    assert!(body["error"]["message"].as_str().unwrap().len() > 10);

    let res = s.get("/api/v1/no/such/thing", &session).await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    // A browser gets an error page with the reference on it.
    let res = s.get("/no-such-page", &session).await;
    assert_eq!(res.status(), 404);
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let html = res.text().await.unwrap();
    assert!(html.contains("Page not found") && html.contains(&rid));

    // A malformed form answers 4xx with our shape, not a bare framework message.
    let res = s
        .post_htmx("/settings/tokens", &session, &[("wrong_field", "x")])
        .await;
    assert!(res.status().is_client_error());
    assert_eq!(res.headers()["hx-retarget"], "#toasts");
    assert!(res.text().await.unwrap().contains("Reference:"));

    // Security headers are on every answer.
    let res = s.get("/", &session).await;
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn api_tokens_open_the_api_and_metrics_until_revoked() {
    let s = start("api-tokens").await;
    let (session, _) = s.claim().await;
    s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    // A token outlives the session that makes it: the owner's password is asked again, and
    // without it nothing is made.
    for (typed, words) in [
        ("", "Type your password"),
        ("not-the-password", "Your password is not right"),
    ] {
        let res = s
            .post_htmx(
                "/settings/tokens",
                &session,
                &[("name", "Stolen"), ("password", typed)],
            )
            .await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(
            html.contains("id=\"token-error\"") && html.contains(words),
            "{html}"
        );
        assert!(
            !html.contains("new-token") && !html.contains("Stolen"),
            "{html}"
        );
    }
    let token = s.api_token(&session, "Prometheus").await;
    assert!(token.starts_with("hlt_"));
    let bearer = format!("Bearer {token}");

    let res = s
        .client
        .get(s.url("/api/v1/system/health"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    let res = s
        .client
        .get(s.url("/api/v1/system/version"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["version"], homelabd::VERSION);
    assert_eq!(body["schema_version"], homelabd::store::SCHEMA_VERSION);

    // /metrics needs a token: a browser session is not enough.
    assert_eq!(s.get("/metrics", &session).await.status(), 401);
    // Made-up methods do not each become a series of their own.
    for name in ["FOO", "BAR"] {
        let method = Method::from_bytes(name.as_bytes()).unwrap();
        s.client
            .request(method, s.url("/api/v1/system/health"))
            .send()
            .await
            .unwrap();
    }
    let metrics = s.metrics(&token).await;
    assert!(metrics.contains("homelab_http_requests_total{method=\"GET\",route=\"/api/v1/system/health\",status=\"200\"} 1"));
    assert!(metrics.contains("homelab_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/system/version\",le=\"+Inf\"} 1"));
    assert!(!metrics.contains("FOO") && !metrics.contains("BAR"));
    assert!(metrics.contains("{method=\"other\",route=\"/api/v1/system/health\""));
    let rss_line = metrics
        .lines()
        .find(|l| l.starts_with("homelab_process_resident_memory_bytes "))
        .expect("rss");
    let rss: u64 = rss_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rss > 1_000_000);

    // A token cannot drive the browser pages.
    let res = s
        .client
        .get(s.url("/settings"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // The settings page lists it by name and prefix, never the value.
    let page = s.get("/settings", &session).await.text().await.unwrap();
    assert!(page.contains("Prometheus"));
    assert!(!page.contains(&token));
    let id = extract_between(&page, "hx-post=\"/settings/tokens/", "/revoke").unwrap();
    let res = s
        .post_htmx(&format!("/settings/tokens/{id}/revoke"), &session, &[])
        .await;
    assert_eq!(res.status(), 200);
    // Revoking again is harmless.
    assert_eq!(
        s.post_htmx(&format!("/settings/tokens/{id}/revoke"), &session, &[])
            .await
            .status(),
        200
    );
    let res = s
        .client
        .get(s.url("/api/v1/system/health"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_token");
    let audit = s.get("/settings", &session).await.text().await.unwrap();
    assert!(
        audit.contains("Created API token “Prometheus”")
            && audit.contains("Revoked API token “Prometheus”")
    );
}

#[tokio::test]
async fn live_events_reach_open_pages() {
    let s = start("sse").await;
    let (session, _) = s.claim().await;
    let mut stream = s.get("/events", &session).await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // Something that publishes an event: switching the display mode writes an audit entry.
    s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while !seen.contains("event: audit") || !seen.contains("Switched the display to advanced") {
        assert!(
            Instant::now() < deadline,
            "no audit event arrived; got: {seen}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("event in time")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // Without a session there is no stream.
    assert_eq!(
        s.client
            .get(s.url("/events"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    // The stream ends when the server stops, so shutdown is not held up by open pages.
    let stopped = tokio::time::timeout(Duration::from_secs(10), s.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited on the open event stream");
}

/// A page hears about every change made after it was rendered, even one made before its
/// event stream opened: the stream's first event says where each topic stands, the page says
/// which event it was rendered at, and htmx answers say the same in a header.
#[tokio::test]
async fn pages_learn_of_changes_made_before_their_stream_opened() {
    let s = start("sse-catch-up").await;
    let (session, _) = s.claim().await;
    let since = |html: &str| -> u64 {
        page_since(html).unwrap_or_else(|| panic!("no homelab-since in the page"))
    };
    let page = s
        .get("/settings/updates", &session)
        .await
        .text()
        .await
        .unwrap();
    let rendered_at = since(&page);
    // A change that live update panels follow, made before the page's stream opens.
    let res = s
        .api(&session, Method::PUT, "/api/v1/system/update/channel")
        .json(&serde_json::json!({"url": null, "window": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = s.get("/events", &session).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .expect("the first event in time")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first = seen.split("\n\n").next().unwrap();
    assert!(first.starts_with("event: hello\ndata: "), "{first}");
    let topics: serde_json::Value =
        serde_json::from_str(first.trim_start_matches("event: hello\ndata: ")).unwrap();
    let update = topics["update"].as_u64().unwrap();
    assert!(
        update > rendered_at,
        "the page (at {rendered_at}) must learn the update panel moved: {topics}"
    );
    assert_eq!(topics["devices"], 0, "{topics}");
    // A part fetched afterwards is at least as new, and says so.
    let res = s
        .client
        .get(s.url("/settings/updates/panel"))
        .header("cookie", &session.cookie)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    let header: u64 = res.headers()["x-homelab-since"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(header >= update, "{header} < {update}");
    // Strangers do not learn how busy the box is.
    let res = s
        .client
        .get(s.url("/login"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("x-homelab-since").is_none());
    // Later events carry their number, so the page keeps count.
    s.api(&session, Method::PUT, "/api/v1/system/update/channel")
        .json(&serde_json::json!({"url": null, "window": null}))
        .send()
        .await
        .unwrap();
    while !seen.contains("event: update\ndata: changed\nid: ") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .expect("the update event in time")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The event sequence a full page was rendered at (its `homelab-since` meta tag).
fn page_since(html: &str) -> Option<u64> {
    extract_between(html, "<meta name=\"homelab-since\" content=\"", "\"")?
        .parse()
        .ok()
}

#[tokio::test]
async fn request_bodies_are_bounded() {
    let s = start("body-limit").await;
    let (session, _) = s.claim().await;
    let big = "u".repeat(100 * 1024);
    // A public form: before today, a 2 MB username reached the sign-in code and the log.
    let res = s.post_login(&big, "whatever-password").await;
    assert_eq!(res.status(), 413);
    assert!(res.text().await.unwrap().contains("at most 64 KiB"));
    // The JSON API, as a signed-in browser.
    let res = s
        .api(&session, Method::POST, "/api/v1/devices")
        .json(&serde_json::json!({ "name": big, "host": "10.0.0.1", "username": "pi", "password": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large");
    // Ordinary forms are far below the limit.
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn long_inputs_are_refused_saying_the_limit() {
    let s = start("input-limits").await;
    let (session, _) = s.claim().await;
    let long = |n: usize| "a".repeat(n);
    let refused = |res: reqwest::Response, words: &'static str| async move {
        // 400 or 422, as each part answers invalid input.
        assert!(
            matches!(res.status().as_u16(), 400 | 422),
            "{words}: {}",
            res.status()
        );
        let body: serde_json::Value = res.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(words), "expected “{words}” in: {message}");
    };
    let url = format!("https://updates.example.org/{}", long(3000));
    let res = s
        .api(&session, Method::PUT, "/api/v1/system/update/channel")
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await
        .unwrap();
    refused(res, "at most 2048").await;
    for (name, host, words) in [
        (long(65), "10.0.0.1".to_string(), "1 to 64 characters"),
        ("NAS".to_string(), long(300), "at most 253"),
    ] {
        let res = s
            .api(&session, Method::POST, "/api/v1/devices")
            .json(&serde_json::json!({ "name": name, "host": host, "username": "pi", "password": "pw" }))
            .send()
            .await
            .unwrap();
        refused(res, words).await;
    }
    for (media, words) in [
        (format!("/{}", long(5000)), "at most 4096"),
        ("/etc".to_string(), "system folder /etc"),
    ] {
        let res = s
            .api(
                &session,
                Method::POST,
                "/api/v1/applications/jellyfin/deploy",
            )
            .json(&serde_json::json!({ "settings": { "MEDIA_PATH": media } }))
            .send()
            .await
            .unwrap();
        refused(res, words).await;
    }
}

/// Reads an open event stream until the server ends it; fails if it is still open at the
/// deadline. Events and keep-alives on the way are read and dropped.
/// Reads an event stream until it ends, which must be with the `signed-out` event (the page
/// then closes the stream itself and goes to the sign-in page).
async fn stream_ends(stream: &mut reqwest::Response, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.chunk()).await {
            Err(_) => panic!("{what}: the event stream stayed open"),
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None) | Err(_)) => break,
        }
    }
    assert!(
        seen.ends_with("event: signed-out\ndata: /login\n\n"),
        "{what}: the stream's last event tells the page where to go; got: {seen}"
    );
}

/// Reads an open event stream until `text` arrives (so the stream is still open).
async fn stream_shows(stream: &mut reqwest::Response, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while !seen.contains(text) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("“{text}” did not arrive; got: {seen}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended before “{text}”; got: {seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn event_streams_end_with_their_session() {
    let s = start("sse-sessions").await;
    let (a, pw) = s.claim().await;
    let b = s.login(ADMIN, &pw).await;
    let mut a_events = s.get("/events", &a).await;
    let mut b_events = s.get("/events", &b).await;
    assert_eq!(a_events.status(), 200);
    assert_eq!(b_events.status(), 200);

    // Signing out ends that session's stream at once, not at the next periodic check...
    let res = s
        .client
        .post(s.url("/logout"))
        .headers(s.origin())
        .header("cookie", &a.cookie)
        .form(&[("csrf_token", a.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    stream_ends(&mut a_events, "after signing out").await;
    // ...and only that one: the other browser still gets its events.
    s.post_htmx("/settings/mode", &b, &[("mode", "advanced")])
        .await;
    stream_shows(&mut b_events, "Switched the display to advanced").await;

    // A password change ends the other browsers' streams.
    let c = s.login(ADMIN, &pw).await;
    let mut c_events = s.get("/events", &c).await;
    assert_eq!(c_events.status(), 200);
    let new = password("sse-new");
    let res = s
        .post_htmx(
            "/settings/password",
            &b,
            &[
                ("current_password", &pw),
                ("new_password", &new),
                ("new_password_confirm", &new),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    stream_ends(&mut c_events, "after a password change").await;
    let renewed = s.session_from(&res).await;

    // Signing out everywhere ends every stream, this browser's too.
    let d = s.login(ADMIN, &new).await;
    let mut d_events = s.get("/events", &d).await;
    let mut renewed_events = s.get("/events", &renewed).await;
    assert_eq!(renewed_events.status(), 200);
    let res = s
        .post_htmx("/settings/sessions/sign-out-all", &renewed, &[])
        .await;
    assert_eq!(res.status(), 303);
    stream_ends(&mut d_events, "after signing out everywhere").await;
    stream_ends(
        &mut renewed_events,
        "after signing out everywhere (own page)",
    )
    .await;
}

#[tokio::test]
async fn https_serves_the_app_and_http_redirects_to_it() {
    let mut opts = Options::new("https");
    opts.https = true;
    let s = start_with(opts).await;
    let https = s.https_base.clone().unwrap();
    let port = https.rsplit(':').next().unwrap().to_string();

    // Plain HTTP redirects, except the health check.
    let res = s.client.get(s.url("/settings?x=1")).send().await.unwrap();
    assert_eq!(res.status(), 308);
    // HSTS only ever over HTTPS.
    assert!(res.headers().get("strict-transport-security").is_none());
    assert_eq!(
        res.headers()["location"],
        format!("https://127.0.0.1:{port}/settings?x=1")
    );
    let res = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("strict-transport-security").is_none());

    // The HTTPS side serves a certificate from the homelab's own root; trust exactly that root.
    let tls = tls_client(&s);
    let res = tls.get(format!("{https}/setup")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Browsers stay on HTTPS; not for subdomains (homelab.local's neighbours are other hosts).
    let hsts = res.headers()["strict-transport-security"].to_str().unwrap();
    let max_age: u64 = hsts.strip_prefix("max-age=").unwrap().parse().unwrap();
    assert!(max_age >= 86400, "{hsts}");
    // Error answers carry it too (they are rebuilt by the outermost middleware).
    let res = tls
        .get(format!("{https}/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["strict-transport-security"], hsts);

    // Claim over HTTPS: the cookie is Secure there.
    let cookie = claim_at(&tls, &https, "tls").await;
    assert!(cookie.contains("; Secure"));

    // The fingerprint on the Settings page is the box certificate's (the one saved now).
    let pem = box_cert_pem(&s.data);
    let pair = cookie.split(';').next().unwrap().to_string();
    let page = tls
        .get(format!("{https}/settings"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shown = extract_between(&page, "id=\"cert-fingerprint\">", "<").unwrap();
    let der = rustls::pki_types::CertificateDer::from(
        rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
            .unwrap(),
    );
    assert_eq!(shown, homelabd::tls::fingerprint(&der));
    assert_eq!(shown.len(), 32 * 3 - 1);
}

/// The Backups page and its forms as rendered, with no lab: the empty states, a refused form
/// coming back with its reason and the typed fields but never a password or key, an S3
/// destination (adding one reaches nothing) listed with its status and, in Advanced mode,
/// how to open it with plain restic, "Test connection" answering in words, and "Remove".
#[tokio::test]
async fn the_backups_page_says_what_to_do_and_never_echoes_a_secret() {
    let s = start("backups-page").await;
    let (session, _) = s.claim().await;

    // Nothing set up, nothing installed: say both, and the dashboard has no Backups card yet.
    let page = s.get("/backups", &session).await.text().await.unwrap();
    for words in [
        "Backups are not set up",
        "and install an app",
        "Add a destination",
        "No apps are installed yet",
        "Schedule for all apps",
    ] {
        assert!(page.contains(words), "/backups shows “{words}”: {page}");
    }
    // Basic mode names no protocol: the port waits hidden with its usual value.
    assert!(page.contains("A NAS or another computer"));
    assert!(!page.contains("An SSH server"));
    assert!(page.contains("hidden-basic\"><label for=\"dest-port\">"));
    let dashboard = s.get("/", &session).await.text().await.unwrap();
    assert!(!dashboard.contains("id=\"backups-card\""), "{dashboard}");

    // A refused SSH server: the reason next to the form, what was typed kept, the password
    // not sent back.
    let pw = password("backup-login");
    let res = s
        .post_htmx(
            "/backups/destinations",
            &session,
            &[
                ("kind", "sftp"),
                ("name", "Attic NAS"),
                ("host", "-oProxyCommand=x"),
                ("port", "22"),
                ("user", "backup"),
                ("password", &pw),
                ("path", "/srv/backups"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "the form shows the refusal itself");
    let html = res.text().await.unwrap();
    let error = extract_between(&html, "id=\"destination-error\">", "</div>").unwrap();
    assert!(
        error.contains("Enter the server&#39;s name or address"),
        "{error}"
    );
    for kept in [
        "value=\"Attic NAS\"",
        "value=\"backup\"",
        "value=\"/srv/backups\"",
    ] {
        assert!(html.contains(kept), "{kept} kept: {html}");
    }
    assert!(!html.contains(&pw), "the password is never sent back");
    assert!(html.contains("Backups are not set up"), "nothing was added");

    // A refused S3 storage: its kind stays chosen; its keys are not sent back.
    let secret = password("s3-secret");
    let key_id = format!("AKID{}", &secret[secret.len() - 12..]);
    remember_secret(&key_id);
    let s3 = |bucket: &'static str, secret: String, key_id: String| {
        vec![
            ("kind", "s3".to_string()),
            ("name", "Cloud".to_string()),
            ("endpoint", "http://127.0.0.1:9".to_string()),
            ("bucket", bucket.to_string()),
            ("prefix", "homelab".to_string()),
            ("key_id", key_id),
            ("secret", secret),
        ]
    };
    let form = s3("No_Such_Bucket!", secret.clone(), key_id.clone());
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let html = s
        .post_htmx("/backups/destinations", &session, &form)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Enter the bucket&#39;s name"), "{html}");
    assert!(
        html.contains("value=\"s3\" id=\"kind-s3\" checked"),
        "{html}"
    );
    assert!(!html.contains(&secret) && !html.contains(&key_id));

    // Added: listed, not tested yet; the form is empty again; the keys are nowhere.
    let form = s3("lab-bucket", secret.clone(), key_id.clone());
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let html = s
        .post_htmx("/backups/destinations", &session, &form)
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("destination-error"), "{html}");
    assert!(html.contains("Where backups go") && html.contains("data-destination=\"Cloud\""));
    assert!(html.contains("bucket lab-bucket at 127.0.0.1:9"), "{html}");
    assert!(html.contains("Not tested yet"));
    assert!(!html.contains("Backups are not set up"));
    // This daemon was started with scheduled backups off (the tests' default): no next time.
    assert!(
        html.contains(
            "Scheduled backups are turned off on this box: only “Back up now” makes backups."
        ),
        "{html}"
    );
    assert!(!html.contains(&secret) && !html.contains(&key_id));
    let id = extract_between(&html, "id=\"destination-", "\"")
        .unwrap()
        .parse::<i64>()
        .unwrap();
    // No apps yet: the dashboard says there is no backup yet, not that backups are missing.
    let dashboard = s.get("/", &session).await.text().await.unwrap();
    let card = extract_between(&dashboard, "id=\"backups-card\">", "</div>").unwrap();
    assert!(card.contains("No backup yet"), "{card}");

    // Advanced mode shows the repository, and how to open it without Homelab.
    s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    let page = s.get("/backups", &session).await.text().await.unwrap();
    assert!(page.contains("restic -r s3:http://127.0.0.1:9/lab-bucket/homelab snapshots"));
    assert!(page.contains("An SSH server or NAS") && page.contains("SSH port"));
    assert!(page.contains("(it was started with --backup-schedule off)"));
    assert!(!page.contains(&secret) && !page.contains(&key_id));

    // "Test connection" answers with the row's status in words (no device to test from).
    let res = s
        .post_htmx(&format!("/backups/destinations/{id}/check"), &session, &[])
        .await;
    assert_eq!(res.status(), 200);
    let status = res.text().await.unwrap();
    assert!(
        status.starts_with(&format!(
            "<div class=\"dest-status\" id=\"destination-{id}-status\""
        )),
        "{status}"
    );
    assert!(
        status.contains("Not working") && status.contains("Add a device first"),
        "{status}"
    );

    // Removed: the page says so, and backups are not set up again.
    let html = s
        .post_htmx(&format!("/backups/destinations/{id}/remove"), &session, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Backups are not set up"));
    assert!(html.contains("hx-swap-oob=\"beforeend:#toasts\""));
    assert!(html.contains("Homelab no longer backs up to Cloud"));
    assert_eq!(
        s.post_htmx(&format!("/backups/destinations/{id}/check"), &session, &[])
            .await
            .status(),
        404
    );

    // Every route of the page and of an app's backups needs the session (the anonymous and
    // forged requests are in every_non_public_route_refuses_anonymous_requests, which
    // enumerates the same table), and its forms the CSRF token.
    let table = route_table();
    let paths = [
        "/backups",
        "/backups/apps",
        "/backups/destinations",
        "/backups/destinations/{id}/check",
        "/backups/destinations/{id}/check-all",
        "/backups/destinations/{id}/remove",
        "/backups/schedule",
        "/dashboard/backups",
        "/apps/{slug}/back-up",
        "/apps/{slug}/snapshots",
        "/apps/{slug}/restore",
        "/apps/{slug}/backup-schedule",
    ];
    for path in paths {
        assert!(table.iter().any(|r| r.path == path), "{path} is routed");
    }
    for route in table.iter().filter(|r| paths.contains(&r.path)) {
        let path = route.path;
        assert_eq!(route.access, Access::Session, "{path}");
        if route.method == reqwest::Method::POST {
            let res = s
                .client
                .post(s.url(&concrete(path)))
                .headers(s.origin())
                .header("cookie", &session.cookie)
                .form(&[("kind", "s3")])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{path} without its CSRF token");
        }
    }
}

/// The box's time zone as the pages name it.
fn zone_shown() -> String {
    let zone = homelabd::deploy::render::time_zone();
    match zone.strip_prefix("Etc/").unwrap_or(&zone) {
        "UTC" | "UCT" | "Universal" | "Zulu" | "GMT" => "UTC".into(),
        _ => zone.clone(),
    }
}

/// A Unix time as the pages' `datetime` attributes give it.
fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Writes to the daemon's database beside it (SQLite's WAL lets a writer in while it runs):
/// what only a lab could make otherwise (an installed app, a check that found damage).
fn db_execute(data: &std::path::Path, sql: &str, params: impl rusqlite::Params) {
    let conn = rusqlite::Connection::open(data.join(homelabd::store::DB_FILE)).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(sql, params).unwrap();
}

/// Schedules and the box's upkeep as the pages show them, with no lab: the schedule for all
/// apps saved from its form, shown in words with its next time in the box's zone; a schedule
/// that would back up every minute refused next to the form with the fix; an app's own
/// schedule chosen from its card and given back; damage the weekly check found shown in red on
/// its destination, with when the data was last checked; "Check all backup data" in Advanced
/// mode only. Basic mode shows no cron expression or backup-tool words.
#[tokio::test]
async fn backup_schedules_and_checks_show_in_plain_words() {
    // The scheduler on (the tests' default is off), but not before this test is over.
    let mut opts = Options::new("backup-schedules");
    opts.backup_schedule_after = Some(Duration::from_secs(3600));
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let zone = zone_shown();
    let page = s.get("/backups", &session).await.text().await.unwrap();
    let card = extract_between(&page, "id=\"backup-schedule\">", "</form>").unwrap();
    assert!(
        card.contains("<strong>Every day at 02:00</strong>"),
        "{card}"
    );
    assert!(
        card.contains("Keeps every backup of the last 2 days, then one a day for 7 days"),
        "{card}"
    );
    assert!(
        card.contains("Scheduled backups start once there is a destination."),
        "no destination, no next time: {card}"
    );
    assert!(card.contains("<option value=\"daily\" selected>Every day at 02:00</option>"));

    // A destination (S3 storage that reaches nothing, so its checks cannot run).
    let secret = password("s3-secret");
    let form = [
        ("kind", "s3"),
        ("name", "Cloud"),
        ("endpoint", "http://127.0.0.1:9"),
        ("bucket", "lab-bucket"),
        ("prefix", "homelab"),
        ("key_id", "AKIDSCHEDULES"),
        ("secret", secret.as_str()),
    ];
    let html = s
        .post_htmx("/backups/destinations", &session, &form)
        .await
        .text()
        .await
        .unwrap();
    let id = extract_between(&html, "id=\"destination-", "\"")
        .unwrap()
        .parse::<i64>()
        .unwrap();
    // The destination has not had its stored data checked yet.
    assert!(html.contains("Backup data: Not checked yet"), "{html}");
    assert!(html.contains("Next: <time datetime=\""), "{html}");

    // Basic mode: no cron, no keep-rule fields, no backup-tool words, no full check.
    for page in [
        html.as_str(),
        &s.get("/backups", &session).await.text().await.unwrap(),
    ] {
        let lower = page.to_lowercase();
        for word in [
            "cron",
            "restic",
            "prune",
            "forget",
            "keep_daily",
            "check-all",
        ] {
            assert!(!lower.contains(word), "Basic mode shows {word}: {page}");
        }
    }

    // "Every hour", saved: the card again with its words and the next full hour.
    let res = s
        .post_htmx("/backups/schedule", &session, &[("choice", "hourly")])
        .await;
    assert_eq!(res.status(), 200);
    let card = res.text().await.unwrap();
    assert!(
        card.starts_with("<div class=\"card\" id=\"backup-schedule\">"),
        "{card}"
    );
    assert!(card.contains("<strong>Every hour</strong>"), "{card}");
    assert!(card.contains("<option value=\"hourly\" selected>Every hour</option>"));
    let policy = s.api_get_json(&session, "/api/v1/backups/policy").await;
    assert_eq!(policy["preset"], "hourly", "{policy}");
    let next_at = policy["next_at"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(next_at > now && next_at <= now + 3600, "{policy}");
    assert_eq!(
        next_at % 3600,
        0,
        "on the hour (a zone a whole hour off UTC): {policy}"
    );
    let next = format!("Next: <time datetime=\"{}\">", iso(next_at));
    assert!(card.contains(&next), "{next} in {card}");
    assert!(
        card.contains(&format!("</time> ({zone})</p>")),
        "the zone is named: {card}"
    );
    let when = extract_between(&card, &next, "</time>").unwrap();
    assert!(
        ["today at ", "tonight at ", "tomorrow at "]
            .iter()
            .any(|w| when.starts_with(w))
            && when.ends_with(":00"),
        "{when}"
    );
    let page = s.get("/backups", &session).await.text().await.unwrap();
    assert!(page.contains("<strong>Every hour</strong>") && page.contains(&next));

    // Advanced mode: an own schedule and keep rules. A schedule for every minute from 02:00
    // to 02:59 is refused next to the form, with the fix, and what was typed stays.
    s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    let page = s.get("/backups", &session).await.text().await.unwrap();
    assert!(
        page.contains("name=\"schedule\" maxlength=\"100\""),
        "{page}"
    );
    assert!(
        page.contains("value=\"0 * * * *\""),
        "the current cron: {page}"
    );
    assert!(page.contains("Keep all of the last … days"));
    assert!(
        page.contains("<details class=\"policy-own\" id=\"schedule-own\">"),
        "closed while a preset is chosen: {page}"
    );
    assert!(page.contains(&format!("id=\"check-all-{id}\"")));
    assert!(page.contains("downloads everything stored there"));
    let own = |schedule: &'static str, daily: &'static str| {
        vec![
            ("choice", "own"),
            ("schedule", schedule),
            ("keep_within_days", "1"),
            ("keep_hourly", "0"),
            ("keep_daily", daily),
            ("keep_weekly", "2"),
            ("keep_monthly", "0"),
        ]
    };
    let res = s
        .post_htmx("/backups/schedule", &session, &own("* 2 * * *", "5"))
        .await;
    assert_eq!(res.status(), 200, "the form shows the refusal itself");
    let card = res.text().await.unwrap();
    let error = extract_between(&card, "id=\"schedule-error\">", "</div>").unwrap();
    assert!(error.contains("Back up at most once an hour"), "{error}");
    assert!(card.contains("value=\"* 2 * * *\""), "{card}");
    assert!(card.contains("<option value=\"own\" selected>"), "{card}");
    assert!(
        card.contains("<details class=\"policy-own\" id=\"schedule-own\" open>"),
        "the own fields stay open: {card}"
    );
    assert!(
        card.contains("<strong>Every hour</strong>"),
        "nothing changed: {card}"
    );
    let html = s
        .post_htmx("/backups/schedule", &session, &own("30 3 * * 1-5", "x"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Give each keep rule as a whole number"),
        "{html}"
    );
    let policy = s.api_get_json(&session, "/api/v1/backups/policy").await;
    assert_eq!(policy["preset"], "hourly", "{policy}");
    let card = s
        .post_htmx("/backups/schedule", &session, &own("30 3 * * 1-5", "5"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!card.contains("schedule-error"), "{card}");
    assert!(
        card.contains("On a schedule of your own (30 3 * * 1-5)"),
        "{card}"
    );
    assert!(
        card.contains("Keeps every backup of the last 1 day, then one a day for 5 days and one a week for 2 weeks."),
        "{card}"
    );
    assert!(card.contains("at 03:30</time>"), "{card}");
    // Basic mode says it without the expression, and asks for a choice rather than
    // preselecting one that would change it.
    s.post_htmx("/settings/mode", &session, &[("mode", "basic")])
        .await;
    let page = s.get("/backups", &session).await.text().await.unwrap();
    let card = extract_between(&page, "id=\"backup-schedule\">", "</form>").unwrap();
    assert!(
        card.contains("<strong>On a schedule of your own</strong>"),
        "{card}"
    );
    assert!(!card.contains("30 3"), "{card}");
    assert!(
        card.contains("<option value=\"\" selected disabled>On a schedule of your own</option>"),
        "{card}"
    );
    assert!(!card.contains(" selected>"), "{card}");
    let card = s
        .post_htmx("/backups/schedule", &session, &[("choice", "")])
        .await
        .text()
        .await
        .unwrap();
    assert!(card.contains("Choose when to back up."), "{card}");
    s.post_htmx("/backups/schedule", &session, &[("choice", "hourly")])
        .await;

    // An installed app (as a deploy would record it): its card follows the schedule for all
    // apps until it is given its own.
    db_execute(
        &s.data,
        "INSERT INTO devices(name, host, port, username, host_key, docker_socket, key_comment, created_at)
         VALUES ('Attic Server', '127.0.0.1', 9, 'homelab', '', '/var/run/docker.sock', '', 0)",
        [],
    );
    db_execute(
        &s.data,
        "INSERT INTO apps(slug, name, device_id, version, state, message, settings, url, app_dir, compose, created_at, updated_at)
         SELECT 'vaultwarden', 'Vaultwarden', id, '1.32.0', 'running', '', '{}', 'http://127.0.0.1:9', '/opt/homelab/apps/vaultwarden', '', 0, 0
         FROM devices WHERE name = 'Attic Server'",
        [],
    );
    let app = s
        .get("/apps/vaultwarden", &session)
        .await
        .text()
        .await
        .unwrap();
    let card = extract_between(&app, "id=\"app-schedule\">", "</form>").unwrap();
    assert!(
        card.contains("<strong>Every hour</strong> <span class=\"muted\">(as all apps)</span>"),
        "{card}"
    );
    assert!(
        card.contains("<option value=\"default\" selected>As all apps (Every hour)</option>"),
        "{card}"
    );
    assert!(card.contains(&next), "{card}");
    assert!(!card.contains("name=\"schedule\""), "Basic: {card}");
    // Its own: weekly.
    let res = s
        .post_htmx(
            "/apps/vaultwarden/backup-schedule",
            &session,
            &[("choice", "weekly")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let card = res.text().await.unwrap();
    assert!(card.starts_with("<div class=\"app-schedule\" id=\"app-schedule\">"));
    assert!(
        card.contains(
            "<strong>Every Sunday at 02:00</strong> <span class=\"muted\">(its own)</span>"
        ),
        "{card}"
    );
    assert!(
        card.contains("<option value=\"weekly\" selected>"),
        "{card}"
    );
    assert!(
        card.contains(&format!("at 02:00</time> ({zone})")),
        "{card}"
    );
    let app = s
        .get("/apps/vaultwarden", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(app.contains("<option value=\"weekly\" selected>"), "{app}");
    let list = s.get("/backups/apps", &session).await.text().await.unwrap();
    assert!(
        list.contains("Own schedule: Every Sunday at 02:00"),
        "{list}"
    );
    // Back to the one for all apps.
    let card = s
        .post_htmx(
            "/apps/vaultwarden/backup-schedule",
            &session,
            &[("choice", "default")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(card.contains("(as all apps)"), "{card}");
    assert!(
        card.contains("<option value=\"default\" selected>"),
        "{card}"
    );
    let list = s.get("/backups/apps", &session).await.text().await.unwrap();
    assert!(!list.contains("Own schedule"), "{list}");
    // An app that is not installed has no schedule to set here.
    assert_eq!(
        s.post_htmx(
            "/apps/jellyfin/backup-schedule",
            &session,
            &[("choice", "daily")]
        )
        .await
        .status(),
        404
    );

    // The weekly check found damage three days ago: the destination says so in red, with the
    // fix, and when its data was last checked; its live list says the same.
    let damage = "Some backup data at Cloud is damaged: the check found pieces that no longer match what was stored. Make a new backup of each app now (Back up now), so a sound copy exists; if this comes back, the disk there may be failing.";
    let checked_at = chrono::Utc::now().timestamp() - 3 * 86_400 - 60;
    db_execute(
        &s.data,
        "UPDATE backup_destinations SET damage = ?1, maintained_at = ?2 WHERE id = ?3",
        rusqlite::params![damage, checked_at, id],
    );
    for html in [
        s.get("/backups", &session).await.text().await.unwrap(),
        s.get_text_with("/backups/destinations", &session, &[("hx-request", "true")])
            .await,
    ] {
        let row = extract_between(&html, &format!("id=\"destination-{id}\""), "</li>").unwrap();
        assert!(
            row.contains("<p class=\"error-text damage\" role=\"alert\"><span aria-hidden=\"true\">⚠</span> Some backup data at Cloud is damaged"),
            "{row}"
        );
        assert!(
            row.contains(&format!(
                "Backup data: Last checked <time datetime=\"{}\">3 days ago</time>.",
                iso(checked_at)
            )),
            "{row}"
        );
        assert!(!row.contains("check-all"), "Basic: {row}");
    }
    // "Check all backup data" starts the check in the background (its result is a toast).
    s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    let list = s
        .get_text_with("/backups/destinations", &session, &[("hx-request", "true")])
        .await;
    assert!(list.contains(&format!("hx-post=\"/backups/destinations/{id}/check-all\"")));
    assert_eq!(
        s.post_htmx(
            &format!("/backups/destinations/{id}/check-all"),
            &session,
            &[]
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        s.post_htmx("/backups/destinations/999999/check-all", &session, &[])
            .await
            .status(),
        404
    );
}

/// A device as adding one records it (at a port of its own on 127.0.0.1, where nothing
/// answers), with its last poll (as the poller stores it): `state`,
/// the app engine answering, 4 cores, 16 GB of memory of which `mem_used_pct` % is in use, and
/// 500 GB of storage of which 20 % is in use; something listens on ports 22 and 8223 there.
/// Returns its id.
fn seed_device(data: &std::path::Path, name: &str, state: &str, mem_used_pct: u64) -> i64 {
    let conn = rusqlite::Connection::open(data.join(homelabd::store::DB_FILE)).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(
        "INSERT INTO devices(name, host, port, username, host_key, docker_socket, key_comment, created_at)
         VALUES (?1, '127.0.0.1', 9 + (SELECT COUNT(*) FROM devices), 'homelab', '', '/var/run/docker.sock', '', 0)",
        [name],
    )
    .unwrap();
    let id = conn.last_insert_rowid();
    set_device_poll(data, id, state, mem_used_pct);
    id
}

/// Writes a device's last poll (see `seed_device`).
fn set_device_poll(data: &std::path::Path, id: i64, state: &str, mem_used_pct: u64) {
    let mem_total: u64 = 16 << 30;
    let disk_total: u64 = 500 << 30;
    let facts = serde_json::json!({
        "hostname": "lab", "arch": "x86_64", "kernel": "6.1.0", "os": "Debian GNU/Linux 12",
        "cpu_model": "Lab CPU", "cores": 4,
        "mem_total": mem_total, "mem_available": mem_total / 100 * (100 - mem_used_pct),
        "load": [0.1, 0.1, 0.1], "uptime_secs": 86_400, "disk_path": "/var/lib/docker",
        "disk_total": disk_total, "disk_free": disk_total / 100 * 80, "ports": [22, 8223],
        "docker": {"version": "27.3.1", "api_version": "1.47", "running": 1, "stopped": 0, "unhealthy": 0}
    });
    let now = chrono::Utc::now().timestamp();
    db_execute(
        data,
        "INSERT INTO device_status(device_id, state, reason, facts, last_seen_at, checked_at)
         VALUES (?1, ?2, '', ?3, ?4, ?4)
         ON CONFLICT(device_id) DO UPDATE SET state = excluded.state, facts = excluded.facts",
        rusqlite::params![id, state, facts.to_string(), now],
    );
}

/// Vaultwarden installed on device `id`, as a deploy records it when its usual port was taken
/// there: on the next free one, 8223 (which a move may move again, so it rules no device out).
fn seed_vaultwarden(data: &std::path::Path, id: i64) {
    // The catalog's files, as a deploy of this version records them (a move refuses an app
    // whose files are not the catalog's: it must be updated first).
    let compose = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../recipes/vaultwarden/compose.yaml"),
    )
    .unwrap();
    db_execute(
        data,
        "INSERT INTO apps(slug, name, device_id, version, state, message, settings, url, app_dir, compose, created_at, updated_at)
         VALUES ('vaultwarden', 'Vaultwarden', ?1, '1.37.2', 'running', '', '{\"HTTP_PORT\":\"8223\"}', 'http://127.0.0.1:8223', '/opt/homelab/apps/vaultwarden', ?2, 0, 0)",
        rusqlite::params![id, compose],
    );
}

/// A daemon whose poller runs once at start (before any device exists) and not again during
/// the test, so the devices' seeded polls stay as written.
async fn start_unpolled(name: &'static str) -> TestServer {
    let mut opts = Options::new(name);
    opts.poll_interval = Duration::from_secs(3600);
    start_with(opts).await
}

/// The radio of device `id` on the move page.
fn device_radio(page: &str, id: i64) -> String {
    extract_between(
        page,
        &format!("name=\"device\" value=\"{id}\""),
        "data-device",
    )
    .unwrap_or_else(|| panic!("device {id} is listed: {page}"))
}

/// "Move to another device", with no lab: the app's page links to it; the page ranks the other
/// devices (the one it runs on left out, the best chosen, one that cannot take it shown
/// disabled with why), says what to do first while backups are not set up, and then offers the
/// form (one destination: hidden; `?device=` preselects; Advanced mode: an existing backup);
/// refusals come back on the form with the choices kept; the routes need the session and the
/// form its CSRF token.
#[tokio::test]
async fn moving_an_app_ranks_the_devices_and_needs_a_place_for_backups() {
    let s = start_unpolled("move-page").await;
    let (session, _) = s.claim().await;
    let one = seed_device(&s.data, "Server 1", "online", 50);
    let two = seed_device(&s.data, "Server 2", "online", 30);
    let three = seed_device(&s.data, "Server 3", "offline", 10);
    let four = seed_device(&s.data, "Server 4", "online", 70);
    seed_vaultwarden(&s.data, one);

    let app = s
        .get("/apps/vaultwarden", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        app.contains(
            "id=\"move-app\" href=\"/apps/vaultwarden/move\" hx-get=\"/apps/vaultwarden/move\""
        ),
        "{app}"
    );

    // No destination yet: what a move does, where it could go, and what to do first; no form.
    let page = s
        .get("/apps/vaultwarden/move", &session)
        .await
        .text()
        .await
        .unwrap();
    for words in [
        "<h1 id=\"page-title\">Move Vaultwarden to another device</h1>",
        "Homelab backs Vaultwarden up, starts it on the device you choose with its data, checks it answers, then removes it here. It is offline for a few minutes. If anything fails, it stays where it is.",
        "Vaultwarden runs on Server 1 now.",
        "A move carries the app's data through a backup: add a place for backups first.",
        "href=\"/backups\"",
        "data-device=\"Server 2\"",
        "data-device=\"Server 4\"",
        "Disqualified: the device is offline.",
    ] {
        assert!(
            page.contains(words),
            "the move page shows “{words}”: {page}"
        );
    }
    assert!(!page.contains("data-device=\"Server 1\""), "{page}");
    assert!(!page.contains("id=\"move-form\""), "{page}");
    assert!(!page.contains("name=\"device\""), "{page}");

    // A destination (S3 storage that reaches nothing: adding it contacts no one).
    let secret = password("s3-secret");
    let html = s
        .post_htmx(
            "/backups/destinations",
            &session,
            &[
                ("kind", "s3"),
                ("name", "Cloud"),
                ("endpoint", "http://127.0.0.1:9"),
                ("bucket", "lab-bucket"),
                ("prefix", "homelab"),
                ("key_id", "AKIDMOVEPAGE"),
                ("secret", secret.as_str()),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    let dest = extract_between(&html, "id=\"destination-", "\"")
        .unwrap()
        .parse::<i64>()
        .unwrap();

    // The form: the best device chosen, the offline one disabled with why, the destination
    // hidden (there is one), no backup field in Basic mode.
    let page = s
        .get("/apps/vaultwarden/move", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"move-form\""), "{page}");
    assert!(!page.contains("move-no-destination"), "{page}");
    assert!(
        page.contains(&format!(
            "<input type=\"hidden\" name=\"destination\" value=\"{dest}\" id=\"move-destination\">"
        )),
        "{page}"
    );
    assert!(page.contains("Its data travels through Cloud"), "{page}");
    assert!(!page.contains("name=\"snapshot\""), "Basic: {page}");
    assert!(
        page.contains("<button class=\"btn btn-primary\" type=\"submit\" id=\"move-button\">Move Vaultwarden</button>"),
        "{page}"
    );
    assert!(device_radio(&page, three).contains(" disabled"), "{page}");
    assert!(
        !page.contains(&format!("name=\"device\" value=\"{one}\"")),
        "not where it runs: {page}"
    );
    let (best, other) = if device_radio(&page, two).contains(" checked") {
        (two, four)
    } else {
        (four, two)
    };
    assert!(device_radio(&page, best).contains(" checked"), "{page}");
    assert!(!device_radio(&page, other).contains(" checked"), "{page}");
    assert!(
        page.contains("Recommended"),
        "the best one is recommended: {page}"
    );
    // The dashboard's link preselects the device it names; one that cannot take it does not.
    let page = s
        .get(&format!("/apps/vaultwarden/move?device={other}"), &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(device_radio(&page, other).contains(" checked"), "{page}");
    assert!(!device_radio(&page, best).contains(" checked"), "{page}");
    for odd in [three.to_string(), one.to_string(), "x".into()] {
        let page = s
            .get(&format!("/apps/vaultwarden/move?device={odd}"), &session)
            .await
            .text()
            .await
            .unwrap();
        assert!(
            device_radio(&page, best).contains(" checked"),
            "{odd}: {page}"
        );
        assert!(!device_radio(&page, three).contains(" checked"), "{page}");
    }

    // Refused: the reason on the form, nothing started.
    let res = s
        .post_htmx(
            "/apps/vaultwarden/move",
            &session,
            &[
                ("device", one.to_string().as_str()),
                ("destination", dest.to_string().as_str()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "the form shows the refusal itself");
    assert!(res.headers().get("hx-redirect").is_none());
    let html = res.text().await.unwrap();
    let error = extract_between(&html, "id=\"move-error\">", "</div>").unwrap();
    assert!(error.contains("Vaultwarden already runs there"), "{error}");
    assert!(html.contains("id=\"move-form\""), "{html}");

    // Advanced mode: an existing backup instead of one made now; a wrong id is refused with
    // the choices kept.
    s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    let page = s
        .get("/apps/vaultwarden/move", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("From an existing backup"), "{page}");
    assert!(
        page.contains("When the old device is gone: copy an id from the app's Backups card"),
        "{page}"
    );
    assert!(page.contains("score "), "Advanced shows the scores: {page}");
    let html = s
        .post_htmx(
            "/apps/vaultwarden/move",
            &session,
            &[
                ("device", other.to_string().as_str()),
                ("destination", dest.to_string().as_str()),
                ("snapshot", "<b>nope</b>"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    let error = extract_between(&html, "id=\"move-error\">", "</div>").unwrap();
    assert!(error.contains("That is not a backup&#39;s id"), "{error}");
    assert!(
        html.contains("value=\"&#60;b&#62;nope&#60;/b&#62;\""),
        "kept, escaped: {html}"
    );
    assert!(!html.contains("<b>nope</b>"), "{html}");
    assert!(device_radio(&html, other).contains(" checked"), "{html}");
    // No job was started by any of it.
    let jobs = s.api_get_json(&session, "/api/v1/deployments").await;
    assert!(
        !jobs.to_string().contains("\"move\""),
        "no move was started: {jobs}"
    );

    // Routed for signed-in browsers only, the form with its CSRF token.
    let table = route_table();
    for (method, path) in [
        ("GET", "/apps/{slug}/move"),
        ("POST", "/apps/{slug}/move"),
        ("GET", "/dashboard/advice"),
    ] {
        let route = table
            .iter()
            .find(|r| r.path == path && r.method.as_str() == method)
            .unwrap_or_else(|| panic!("{method} {path} is routed"));
        assert_eq!(route.access, Access::Session, "{method} {path}");
    }
    let form = [("device", two.to_string())];
    let res = s
        .client
        .post(s.url("/apps/vaultwarden/move"))
        .headers(s.origin())
        .form(&form)
        .send()
        .await
        .unwrap();
    let refused = res.status() == 401
        || (res.status() == 303
            && res.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login"));
    assert!(refused, "without a session: {}", res.status());
    let res = s
        .client
        .post(s.url("/apps/vaultwarden/move"))
        .headers(s.origin())
        .header("cookie", &session.cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "without the CSRF token");
    assert!(res.text().await.unwrap().contains("security token"));
    // An app that is not installed has nothing to move.
    assert_eq!(s.get("/apps/jellyfin/move", &session).await.status(), 404);
}

/// The dashboard's advice, with no lab: a device whose last poll says more than 90 % of its
/// memory is in use gets one line suggesting another device for its app, linking to the move
/// page with that device chosen; below 90 %, or with no other device that can take the app,
/// nothing is suggested.
#[tokio::test]
async fn the_dashboard_suggests_moving_an_app_off_a_nearly_full_device() {
    let s = start_unpolled("move-advice").await;
    let (session, _) = s.claim().await;
    let one = seed_device(&s.data, "Server 1", "online", 93);
    let two = seed_device(&s.data, "Server 2", "online", 40);
    let dashboard = s.get("/", &session).await.text().await.unwrap();
    assert!(
        !dashboard.contains("nearly full"),
        "no app there yet: {dashboard}"
    );
    seed_vaultwarden(&s.data, one);

    let dashboard = s.get("/", &session).await.text().await.unwrap();
    let card = extract_between(&dashboard, "id=\"move-advice\">", "</div>")
        .unwrap_or_else(|| panic!("the advice is shown: {dashboard}"));
    assert!(
        card.contains(
            "Server 1 is nearly full (memory 93 % in use): move Vaultwarden to Server 2?"
        ),
        "{card}"
    );
    assert!(
        card.contains(&format!("href=\"/apps/vaultwarden/move?device={two}\"")),
        "{card}"
    );
    assert_eq!(card.matches("class=\"advice\"").count(), 1, "{card}");
    // Its live part says the same; Advanced mode says RAM.
    let part = s
        .get("/dashboard/advice", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(part.contains("Server 1 is nearly full"), "{part}");
    s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    let part = s
        .get("/dashboard/advice", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        part.contains("Server 1 is nearly full (RAM 93 %): move Vaultwarden to Server 2?"),
        "{part}"
    );

    // No other device can take it (the only other one is offline): nothing to suggest.
    set_device_poll(&s.data, two, "offline", 40);
    let dashboard = s.get("/", &session).await.text().await.unwrap();
    assert!(!dashboard.contains("nearly full"), "{dashboard}");
    set_device_poll(&s.data, two, "online", 40);
    let dashboard = s.get("/", &session).await.text().await.unwrap();
    assert!(dashboard.contains("nearly full"), "{dashboard}");

    // Below 90 %: nothing either.
    set_device_poll(&s.data, one, "online", 85);
    let dashboard = s.get("/", &session).await.text().await.unwrap();
    assert!(!dashboard.contains("nearly full"), "{dashboard}");
    assert!(!dashboard.contains("id=\"move-advice\""), "{dashboard}");
    assert!(
        dashboard.contains("id=\"move-advice-live\""),
        "the live part waits for a change: {dashboard}"
    );
}
