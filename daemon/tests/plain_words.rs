//! Basic mode speaks plainly: every page and htmx partial a Basic-mode owner can reach is
//! fetched from the real server (with lab devices, a deployed stand-in app and a rolled-back
//! one) and its visible text scanned for technical words. Pages are found by following the
//! links (`href`, `hx-get`) from the dashboard, so a new page is covered without touching this
//! test; what no link reaches (sign-in, setup, errors, form results) is listed explicitly.
//! Advanced mode keeps the detail: a few of its pages are checked to still show it.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use common::*;

/// Words a Basic-mode owner should never have to read. Matched whole-word and ignoring case.
const JARGON: &[&str] = &[
    "Linux",
    "Docker",
    "SSH",
    "private key",
    "public key",
    "host key",
    "API",
    "Compose",
    "docker-compose",
    "load",
    "core",
    "cores",
    "score",
    "port",
    "ports",
    "amd64",
    "arm64",
    "armv7",
    "x86_64",
    "aarch64",
    "admin token",
    "/admin",
    "volume",
    "volumes",
    "/opt/homelab",
    "SHA-256",
    "fingerprint",
    "token",
    "tokens",
    "container",
    "containers",
    "image",
    "images",
    "socket",
    "kernel",
    "sudo",
    "os error",
    "exit status",
    // Backups: the tool and its words stay in Advanced mode.
    "restic",
    "cron",
    "prune",
];

/// The lab device the stand-in app runs on, and the one without Docker (only tested, never
/// added or changed).
const DEVICE: &str = "server-01";
const BARE: &str = "bare-01";
const STUB: &str = "homelab-lab/app-stub:1";
const SLUG: &str = "plain-web";
const IMAGE: &str = "example/plain-web:1.0";
const BROKEN: &str = "plain-broken";

/// Elements without content of their own.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// Attributes whose values owners read or hear.
const READ_ATTRS: &[&str] = &["title", "aria-label", "placeholder", "alt"];

/// One parsed start or end tag: name (lower case), whether it closes, its attributes.
struct Tag {
    name: String,
    closing: bool,
    attrs: Vec<(String, String)>,
}

/// Parses the tag starting at `html[0] == '<'`; returns it and its length.
fn parse_tag(html: &str) -> Option<(Tag, usize)> {
    let b = html.as_bytes();
    let mut i = 1;
    let closing = b.get(i) == Some(&b'/');
    if closing {
        i += 1;
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
        i += 1;
    }
    if i == start {
        return None;
    }
    let name = html[start..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        if b[i] == b'>' {
            return Some((
                Tag {
                    name,
                    closing,
                    attrs,
                },
                i + 1,
            ));
        }
        let a = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'>' {
            i += 1;
        }
        let key = html[a..i].to_ascii_lowercase();
        let mut value = String::new();
        if b.get(i) == Some(&b'=') {
            i += 1;
            match b.get(i) {
                Some(&q) if q == b'"' || q == b'\'' => {
                    let end = html[i + 1..].find(q as char)? + i + 1;
                    value = html[i + 1..end].to_string();
                    i = end + 1;
                }
                _ => {
                    let v = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = html[v..i].to_string();
                }
            }
        }
        attrs.push((key, value));
    }
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// Elements whose text is not Homelab's words: an app's own log lines, which the owner asked
/// to see by opening its logs.
const NOT_OURS: &[&str] = &["log-lines"];

/// Whether an element is never shown (so neither seen nor heard), or not in Homelab's words.
fn skipped(tag: &Tag) -> bool {
    tag.attrs.iter().any(|(k, v)| {
        k == "hidden"
            || (k == "class" && v.split_whitespace().any(|c| c == "hidden-basic"))
            || (k == "id" && NOT_OURS.contains(&v.as_str()))
    })
}

/// What an owner reads or hears on a page: text outside tags, scripts and styles, hidden
/// elements (and `NOT_OURS`) left out, plus the attributes in `READ_ATTRS`. Whitespace
/// collapsed.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    // While inside a skipped element: its name and how deeply it is nested.
    let mut skip: Option<(String, usize)> = None;
    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        if rest.starts_with('<')
            && let Some((tag, len)) = parse_tag(rest)
        {
            i += len;
            out.push(' ');
            if let Some((name, depth)) = &mut skip {
                if tag.name == *name && !VOID.contains(&tag.name.as_str()) {
                    if tag.closing {
                        *depth -= 1;
                        if *depth == 0 {
                            skip = None;
                        }
                    } else {
                        *depth += 1;
                    }
                }
                continue;
            }
            if tag.closing {
                continue;
            }
            if tag.name == "script" || tag.name == "style" {
                let close = format!("</{}", tag.name);
                i += html[i..].find(&close).unwrap_or(html.len() - i);
                continue;
            }
            if skipped(&tag) {
                if !VOID.contains(&tag.name.as_str()) {
                    skip = Some((tag.name.clone(), 1));
                }
                continue;
            }
            for (k, v) in &tag.attrs {
                if READ_ATTRS.contains(&k.as_str()) && !v.is_empty() {
                    out.push_str(" [");
                    out.push_str(&decode(v));
                    out.push_str("] ");
                }
            }
            continue;
        }
        let c = rest.chars().next().unwrap();
        if skip.is_none() {
            out.push(c);
        }
        i += c.len_utf8();
    }
    decode(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every whole-word, case-insensitive occurrence of `word` in `text`, as byte offsets.
fn find_word(text: &str, word: &str) -> Vec<usize> {
    let lower = text.to_lowercase();
    let word = word.to_lowercase();
    // Lower-casing can change lengths outside ASCII; offsets are then only approximate,
    // which is fine for showing context.
    let mut hits = Vec::new();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&word) {
        let at = from + pos;
        let end = at + word.len();
        let before = lower[..at].chars().next_back();
        let after = lower[end..].chars().next();
        let edge_ok = |c: Option<char>, w: Option<char>| {
            // A word that starts or ends with punctuation ("/admin") needs no boundary there.
            w.is_some_and(|w| !is_word_char(w)) || !c.is_some_and(is_word_char)
        };
        if edge_ok(before, word.chars().next()) && edge_ok(after, word.chars().next_back()) {
            hits.push(at);
        }
        from = end;
    }
    hits
}

/// Addresses with a port, like `10.1.2.3:22`.
fn find_address_with_port(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut hits = Vec::new();
    for (colon, _) in text.match_indices(':') {
        if !b.get(colon + 1).is_some_and(u8::is_ascii_digit) {
            continue;
        }
        let mut start = colon;
        while start > 0 && (b[start - 1].is_ascii_digit() || b[start - 1] == b'.') {
            start -= 1;
        }
        let host = &text[start..colon];
        let parts: Vec<&str> = host.split('.').collect();
        if parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3) {
            hits.push(start);
        }
    }
    hits
}

fn context(text: &str, at: usize) -> String {
    let mut a = at.saturating_sub(60);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut e = (at + 60).min(text.len());
    while !text.is_char_boundary(e) {
        e += 1;
    }
    format!("…{}…", &text[a..e])
}

/// One jargon word found on a page.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    page: String,
    word: String,
    context: String,
}

fn scan(page: &str, html: &str) -> Vec<Finding> {
    let text = visible_text(html);
    let mut found = Vec::new();
    for word in JARGON {
        for at in find_word(&text, word) {
            found.push(Finding {
                page: page.to_string(),
                word: (*word).to_string(),
                context: context(&text, at),
            });
        }
    }
    for at in find_address_with_port(&text) {
        found.push(Finding {
            page: page.to_string(),
            word: "address with a port".to_string(),
            context: context(&text, at),
        });
    }
    found
}

/// Links a page offers to other pages of the box: `href` and `hx-get` values.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "hx-get=\""] {
        for (pos, _) in html.match_indices(attr) {
            let from = pos + attr.len();
            let Some(len) = html[from..].find('"') else {
                continue;
            };
            let url = decode(&html[from..from + len]);
            if !url.starts_with('/') || url.starts_with("//") {
                continue;
            }
            let path = url.split('?').next().unwrap_or(&url);
            let skip = path.starts_with("/static/")
                || path.starts_with("/api/")
                || path == "/events"
                || path == "/logout"
                || path == "/healthz"
                || path.ends_with(".svg")
                || path.ends_with(".pem")
                || path.ends_with(".crt");
            if !skip {
                out.push(url);
            }
        }
    }
    out
}

/// Visits pages and partials, scanning each once.
struct Crawl<'a> {
    s: &'a TestServer,
    session: &'a Session,
    seen: BTreeSet<String>,
    findings: Vec<Finding>,
    /// Everything fetched, for the Advanced-mode checks and the report.
    pages: Vec<(String, String)>,
}

impl Crawl<'_> {
    fn take(&mut self, page: &str, html: &str) {
        self.findings.extend(scan(page, html));
        self.pages.push((page.to_string(), html.to_string()));
    }

    /// Fetches `url` as a page and as an htmx partial; returns the page's links.
    async fn visit(&mut self, url: &str) -> Vec<String> {
        if !self.seen.insert(url.to_string()) {
            return Vec::new();
        }
        let res = self.s.get(url, self.session).await;
        let status = res.status();
        let page = res.text().await.unwrap();
        assert!(
            status.is_success(),
            "{url} answered {status} in Basic mode: {page}"
        );
        self.take(url, &page);
        let partial = self
            .s
            .get_text_with(url, self.session, &[("hx-request", "true")])
            .await;
        self.take(&format!("{url} (partial)"), &partial);
        let mut next = links(&page);
        next.extend(links(&partial));
        next
    }

    /// Follows links from `start`, breadth first.
    async fn follow(&mut self, start: &[&str]) {
        let mut queue: VecDeque<String> = start.iter().map(|s| s.to_string()).collect();
        while let Some(url) = queue.pop_front() {
            for l in self.visit(&url).await {
                if !self.seen.contains(&l) {
                    queue.push_back(l);
                }
            }
            assert!(
                self.seen.len() < 400,
                "the crawl does not end: {:?}",
                self.seen
            );
        }
    }
}

fn device_form<'a>(host: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", "Plain"),
        ("host", host),
        ("username", "homelab"),
        ("method", "password"),
        ("password", password),
    ]
}

/// Waits for a deployment to end in `state`.
async fn wait_deployment(s: &TestServer, session: &Session, id: i64, state: &str) {
    eventually(
        &format!("deployment {id} {state}"),
        Duration::from_secs(120),
        || async {
            let d = s
                .api_get_json(session, &format!("/api/v1/deployments/{id}"))
                .await;
            if d["state"] == state {
                Ok(())
            } else {
                Err(d.to_string())
            }
        },
    )
    .await;
}

/// Deploys `slug` through the Basic-mode form onto `device`; returns the deployment id.
async fn deploy(s: &TestServer, session: &Session, slug: &str, device: i64) -> i64 {
    let device = device.to_string();
    let res = s
        .post_htmx(
            &format!("/apps/{slug}/deploy"),
            session,
            &[("device", device.as_str())],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let target = res.headers()["hx-redirect"].to_str().unwrap().to_string();
    target.rsplit('/').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn basic_mode_pages_use_no_technical_words() {
    let data = data_dir("plain-words");
    stand_in_recipe(&data, SLUG, IMAGE, 18130);
    stand_in_recipe(&data, BROKEN, "example/plain-not-here:1.0", 18131);
    let mut o = Options::new("plain-words");
    o.data = Some(data.clone());
    o.poll_interval = Duration::from_secs(3600);
    o.health_timeout = Duration::from_secs(20);
    let s = start_with(o).await;
    let mut findings = Vec::new();

    // Before the box is claimed: the setup page, and its answer to a bad form.
    let setup = s.client.get(s.url("/setup")).send().await.unwrap();
    findings.extend(scan("/setup", &setup.text().await.unwrap()));
    let res = s.post_setup(ADMIN, "short", None).await;
    findings.extend(scan("/setup (refused)", &res.text().await.unwrap()));

    let (session, _) = s.claim().await;
    // Basic is the default; say so anyway, in case the default ever changes.
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "basic")])
        .await;
    assert_eq!(res.status(), 200);

    // Signed out: the sign-in page, and its answer to a wrong password.
    let login = s.client.get(s.url("/login")).send().await.unwrap();
    findings.extend(scan("/login", &login.text().await.unwrap()));
    let res = s.post_login(ADMIN, "not-the-password").await;
    findings.extend(scan("/login (refused)", &res.text().await.unwrap()));

    lab::clean_app(DEVICE, SLUG);
    lab::clean_app(DEVICE, BROKEN);
    assert!(
        lab::exec_ok(DEVICE, &["docker", "tag", STUB, IMAGE]),
        "tag {IMAGE} on {DEVICE}"
    );
    let pw = lab::password();
    let server = lab::ip(DEVICE);
    let bare = lab::ip(BARE);

    // The add-device form's reports: ready, wrong password, nothing there, no Docker.
    let mut reports = Vec::new();
    for (what, host, password) in [
        ("ready", server.as_str(), pw.as_str()),
        ("wrong password", server.as_str(), "wrong-password-for-sure"),
        ("nothing there", lab::NOTHING_THERE, pw.as_str()),
        ("not ready for apps", bare.as_str(), pw.as_str()),
    ] {
        let res = s
            .post_htmx("/devices/test", &session, &device_form(host, password))
            .await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        findings.extend(scan(&format!("/devices/test ({what})"), &html));
        reports.push((what, html));
    }
    // Adding a device that is not ready answers with the same report.
    let res = s
        .post_htmx(
            "/devices",
            &session,
            &device_form(&server, "wrong-password-for-sure"),
        )
        .await;
    assert_eq!(res.status(), 422);
    findings.extend(scan("/devices (add refused)", &res.text().await.unwrap()));

    // A device running an app, and an app whose install was rolled back.
    let device = add_lab_device(&s, &session, "Plain Server", DEVICE).await;
    let running = deploy(&s, &session, SLUG, device).await;
    wait_deployment(&s, &session, running, "running").await;
    let broken = deploy(&s, &session, BROKEN, device).await;
    wait_deployment(&s, &session, broken, "rolled_back").await;
    let refreshed = s
        .post_htmx(&format!("/devices/{device}/refresh"), &session, &[])
        .await
        .text()
        .await
        .unwrap();
    findings.extend(scan(&format!("/devices/{device}/refresh"), &refreshed));

    // Every page reachable by links from the dashboard, plus what no link reaches.
    let mut crawl = Crawl {
        s: &s,
        session: &session,
        seen: BTreeSet::new(),
        findings: Vec::new(),
        pages: Vec::new(),
    };
    let running_page = format!("/deployments/{running}");
    let broken_page = format!("/deployments/{broken}");
    let running_progress = format!("/deployments/{running}/progress");
    let broken_progress = format!("/deployments/{broken}/progress");
    crawl
        .follow(&[
            "/",
            "/apps/grid?q=nothing-matches-this",
            &running_page,
            &broken_page,
            &running_progress,
            &broken_progress,
        ])
        .await;
    let crawled: Vec<String> = crawl.seen.iter().cloned().collect();
    // The crawl reached the pages this test relies on.
    for must in [
        "/",
        "/dashboard/pool",
        "/devices",
        "/devices/cards",
        "/devices/new",
        "/devices/scan",
        "/apps",
        "/network",
        "/backups",
        "/settings",
        "/settings/updates",
        "/settings/updates/panel",
        "/settings/trust",
        &format!("/devices/{device}"),
        &format!("/apps/{SLUG}"),
        &format!("/apps/{SLUG}/logs"),
        &format!("/apps/{BROKEN}"),
        &format!("/apps/{BROKEN}/plan"),
        "/apps/vaultwarden",
        "/apps/vaultwarden/plan",
    ] {
        assert!(
            crawled.iter().any(|u| u == must),
            "the crawl missed {must}: {crawled:#?}"
        );
    }
    // The activity list's own entries leave logins and addresses to Advanced mode (its
    // findings for "/settings" above are the deploy engine's words only).
    let settings = &crawl
        .pages
        .iter()
        .find(|(page, _)| page == "/settings")
        .unwrap()
        .1;
    assert!(
        !visible_text(settings).contains(&format!("homelab@{server}")),
        "Basic activity shows no login and address: {settings}"
    );
    findings.append(&mut crawl.findings);

    // Error pages: a page that does not exist, as a page and as a partial (a toast).
    for url in ["/no-such-page", "/devices/999999", "/apps/no-such-app"] {
        let res = s.get(url, &session).await;
        assert_eq!(res.status(), 404, "{url}");
        findings.extend(scan(&format!("{url} (404)"), &res.text().await.unwrap()));
        let partial = s
            .get_text_with(url, &session, &[("hx-request", "true")])
            .await;
        findings.extend(scan(&format!("{url} (404, partial)"), &partial));
    }

    // Advanced mode keeps the detail that Basic leaves out.
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert_eq!(res.status(), 200);
    let text = |html: &str| visible_text(html);
    let device_page = text(
        &s.get(&format!("/devices/{device}"), &session)
            .await
            .text()
            .await
            .unwrap(),
    );
    for detail in ["Docker", "SSH", &format!("homelab@{server}"), "Host key"] {
        assert!(
            device_page.contains(detail),
            "Advanced device page shows {detail}: {device_page}"
        );
    }
    let settings = text(&s.get("/settings", &session).await.text().await.unwrap());
    for detail in ["API tokens", "SHA-256 fingerprint"] {
        assert!(settings.contains(detail), "Advanced settings show {detail}");
    }
    let app = text(
        &s.get(&format!("/apps/{SLUG}"), &session)
            .await
            .text()
            .await
            .unwrap(),
    );
    for detail in ["Compose file", "Ports on the device", "/opt/homelab/apps/"] {
        assert!(
            app.contains(detail),
            "Advanced app page shows {detail}: {app}"
        );
    }
    let form = text(&s.get("/devices/new", &session).await.text().await.unwrap());
    for detail in ["SSH port", "Private key", "Docker socket"] {
        assert!(form.contains(detail), "Advanced add form shows {detail}");
    }
    let install = text(
        &s.get("/apps/vaultwarden", &session)
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        install.to_lowercase().contains("port"),
        "Advanced install form shows its port settings: {install}"
    );
    let ready = text(
        &s.post_htmx("/devices/test", &session, &device_form(&server, &pw))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        ready.contains("Docker"),
        "Advanced report names Docker: {ready}"
    );
    let nothing = text(
        &s.post_htmx(
            "/devices/test",
            &session,
            &device_form(lab::NOTHING_THERE, &pw),
        )
        .await
        .text()
        .await
        .unwrap(),
    );
    assert!(
        nothing.contains(&format!("{}:22", lab::NOTHING_THERE)),
        "Advanced report names the address and port: {nothing}"
    );
    let no_docker = text(
        &s.post_htmx("/devices/test", &session, &device_form(&bare, &pw))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        no_docker.contains("Docker") && no_docker.contains("apt-get install"),
        "Advanced report shows the install command: {no_docker}"
    );

    // Clean up before judging, so a failure leaves nothing on the lab device.
    for slug in [SLUG, BROKEN] {
        s.post_htmx(
            &format!("/apps/{slug}/remove"),
            &session,
            &[("delete_data", "yes")],
        )
        .await;
    }
    let res = s
        .post_htmx(
            &format!("/devices/{device}/remove"),
            &session,
            &[("clean", "on")],
        )
        .await;
    assert_eq!(res.status(), 200);
    lab::clean_app(DEVICE, SLUG);
    lab::clean_app(DEVICE, BROKEN);

    findings.sort();
    findings.dedup();
    let new = findings;
    let report: Vec<String> = new
        .iter()
        .map(|f| format!("{} — “{}”: {}", f.page, f.word, f.context))
        .collect();
    assert!(
        new.is_empty(),
        "{} technical word(s) in Basic mode ({} pages crawled):\n{}",
        new.len(),
        crawled.len(),
        report.join("\n")
    );
}

#[test]
fn the_scanner_sees_what_owners_see_and_nothing_else() {
    let html = r#"<p>Ready <span title="Docker engine">now</span></p><script>var port = 1;</script>
        <style>.docker{}</style><div class="field hidden-basic"><label>SSH port</label><div>x</div></div>
        <a href="/docker" hx-get="/api/x">Open</a><!-- port --><input placeholder="a private key">
        <pre id="log-lines">listening on port 80</pre>"#;
    let t = visible_text(html);
    assert_eq!(t, "Ready [Docker engine] now Open [a private key]");
    let words: Vec<String> = scan("p", html).into_iter().map(|f| f.word).collect();
    assert_eq!(words, ["Docker", "private key"]);
    assert!(find_word("Supported imports, reports", "port").is_empty());
    assert_eq!(find_word("see /admin now", "/admin").len(), 1);
    assert_eq!(find_word("Loading the load", "load").len(), 1);
    assert_eq!(find_address_with_port("at 10.88.0.9:22 now").len(), 1);
    assert!(find_address_with_port("at 10:22 or 1.2.3.4 now").is_empty());
    assert_eq!(links(html), ["/docker"]);
}
