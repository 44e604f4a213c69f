//! Catalog drift: every built-in recipe agrees with what its upstream app does, as recorded in
//! `lab/stand-ins/<slug>/upstream.yaml` (read from upstream's sources at a tag; see
//! lab/README.md). No lab needed: a recipe that names another version, another port, a health
//! answer upstream never gives, or forgets a variable upstream needs fails here, with the file
//! and the fact.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use docker_compose_types::Environment;
use homelabd::catalog::{Catalog, Recipe, Source};
use serde::Deserialize;

/// One app's recorded upstream behaviour (the schema is documented in lab/README.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Upstream {
    app: String,
    version: String,
    architectures: Vec<String>,
    web: Web,
    health: Answer,
    /// Read by the stand-ins' readers and the lab test, not compared here: a recipe records
    /// no redirects of its own.
    #[serde(default)]
    #[allow(dead_code)]
    redirects: Vec<Redirect>,
    #[serde(default)]
    needs: Vec<String>,
    #[serde(default)]
    first_admin: Option<FirstAdmin>,
    #[serde(default)]
    setup: Option<SetupPage>,
    sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Web {
    port: u16,
    scheme: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    path: String,
    status: u16,
}

/// Recorded for the stand-ins and readers; the check uses the health answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Redirect {
    path: String,
    status: u16,
    location: String,
}

/// The variables that make the app's first admin, as upstream names them; a `password`
/// starting with `--` is a command-line flag instead (Portainer's `--admin-password`), whose
/// `user` is then the fixed name upstream gives that admin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FirstAdmin {
    #[serde(default)]
    user: Option<String>,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupPage {
    path: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn upstream(slug: &str) -> Upstream {
    let path = repo().join(format!("lab/stand-ins/{slug}/upstream.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} — every catalog app needs its recorded upstream behaviour",
            path.display()
        )
    });
    let u: Upstream =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(u.app, slug, "{}: app", path.display());
    assert!(!u.sources.is_empty(), "{}: no sources", path.display());
    u
}

/// The web service's environment in compose.yaml: name → value as written.
/// The web service's command as a list of arguments (empty when it has none).
fn web_command(r: &Recipe) -> Vec<String> {
    let service = r
        .compose
        .services
        .0
        .get(&r.manifest.web.service)
        .and_then(|s| s.as_ref());
    match service.and_then(|s| s.command.as_ref()) {
        Some(docker_compose_types::Command::Args(args)) => args.clone(),
        Some(docker_compose_types::Command::Simple(line)) => {
            line.split_whitespace().map(str::to_string).collect()
        }
        None => Vec::new(),
    }
}

fn web_environment(r: &Recipe) -> BTreeMap<String, String> {
    let service = r
        .compose
        .services
        .0
        .get(&r.manifest.web.service)
        .and_then(|s| s.as_ref());
    let Some(service) = service else {
        return BTreeMap::new();
    };
    match &service.environment {
        Environment::List(items) => items
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect(),
        Environment::KvPair(map) => map
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                )
            })
            .collect(),
    }
}

/// Everything in `r` that disagrees with `u`, one plain sentence each.
fn disagreements(r: &Recipe, u: &Upstream) -> Vec<String> {
    let m = &r.manifest;
    let mut out = Vec::new();
    if m.version != u.version {
        out.push(format!(
            "version: the recipe has {}, upstream was read at {}",
            m.version, u.version
        ));
    }
    let ours: BTreeSet<&str> = m.architectures.iter().map(String::as_str).collect();
    let theirs: BTreeSet<&str> = u.architectures.iter().map(String::as_str).collect();
    if ours != theirs {
        out.push(format!(
            "architectures: the recipe has {ours:?}, upstream publishes {theirs:?}"
        ));
    }
    if m.web.port != u.web.port || m.web.scheme != u.web.scheme {
        out.push(format!(
            "web: the recipe has {}://…:{}, upstream serves {}://…:{}",
            m.web.scheme, m.web.port, u.web.scheme, u.web.port
        ));
    }
    if m.health.path != u.health.path {
        out.push(format!(
            "health.path: the recipe checks {}, upstream was recorded at {}",
            m.health.path, u.health.path
        ));
    } else if !m.health.status.contains(&u.health.status) {
        out.push(format!(
            "health.status: upstream answers {} at {}, the recipe accepts only {:?}",
            u.health.status, u.health.path, m.health.status
        ));
    }
    let env = web_environment(r);
    for need in &u.needs {
        if env.get(need).is_none_or(|v| v.trim().is_empty()) {
            out.push(format!(
                "needs: service “{}” does not set {need} in compose.yaml",
                m.web.service
            ));
        }
    }
    match (&u.first_admin, &m.sign_in) {
        (Some(admin), Some(sign_in)) if admin.password.starts_with("--") => {
            // The flag must be followed by the secret the owner is shown.
            let secret = format!("${{{}}}", sign_in.password);
            let command = web_command(r);
            let given = command
                .iter()
                .position(|a| *a == admin.password)
                .and_then(|i| command.get(i + 1));
            if given != Some(&secret) {
                out.push(format!(
                    "first admin: the web service's command does not pass {secret} after {} \
                     (it is {command:?})",
                    admin.password
                ));
            }
            if admin.user.as_deref() != Some(sign_in.user.as_str()) {
                out.push(format!(
                    "sign_in.user: the recipe shows “{}”, upstream names that admin {:?}",
                    sign_in.user, admin.user
                ));
            }
        }
        (Some(admin), Some(sign_in)) => {
            // The revealed password must be the secret the app receives as its admin password.
            let secret = format!("${{{}}}", sign_in.password);
            match env.get(&admin.password) {
                Some(v) if v.contains(&secret) => {}
                Some(v) => out.push(format!(
                    "sign_in.password: {} is “{v}” in compose.yaml, not the secret {secret}",
                    admin.password
                )),
                None => out.push(format!(
                    "first admin: service “{}” does not set {} in compose.yaml",
                    m.web.service, admin.password
                )),
            }
            if let Some(user_var) = &admin.user {
                match env.get(user_var) {
                    Some(v) if v.trim() == sign_in.user.trim() => {}
                    Some(v) => out.push(format!(
                        "sign_in.user: the recipe shows “{}” but the app's {user_var} is “{v}”",
                        sign_in.user
                    )),
                    None => out.push(format!(
                        "first admin: service “{}” does not set {user_var} in compose.yaml",
                        m.web.service
                    )),
                }
            }
        }
        (Some(admin), None) => {
            let set = env.contains_key(&admin.password);
            if set || u.setup.is_none() || m.setup.is_none() {
                out.push(format!(
                    "sign_in: upstream makes its first admin from {}{}; the recipe {} and has no \
                     sign_in to show the owner",
                    admin
                        .user
                        .as_deref()
                        .map(|u| format!("{u}/"))
                        .unwrap_or_default(),
                    admin.password,
                    if set { "sets it" } else { "does not set it" }
                ));
            }
        }
        (None, Some(sign_in)) => out.push(format!(
            "sign_in: the recipe shows an account ({}) that no upstream variable makes",
            sign_in.password
        )),
        (None, None) => {}
    }
    match (&u.setup, &m.setup) {
        (Some(up), Some(ours)) if up.path != ours.path => out.push(format!(
            "setup.path: the recipe links {}, upstream's setup page is {}",
            ours.path, up.path
        )),
        (Some(up), None) if m.sign_in.is_none() => out.push(format!(
            "setup: upstream finishes its setup at {}, the recipe neither links it nor makes an \
             account",
            up.path
        )),
        (None, Some(ours)) if u.first_admin.is_none() => out.push(format!(
            "setup: the recipe links {}, a setup page upstream was not recorded with",
            ours.path
        )),
        _ => {}
    }
    out
}

#[test]
fn every_builtin_recipe_agrees_with_its_recorded_upstream() {
    let catalog = Catalog::load(None);
    assert!(catalog.problems.is_empty(), "{:?}", catalog.problems);
    assert!(catalog.recipes.len() >= 10, "{:?}", catalog.recipes.keys());
    let mut report = Vec::new();
    for (slug, r) in &catalog.recipes {
        for d in disagreements(r, &upstream(slug)) {
            report.push(format!(
                "recipes/{slug} vs lab/stand-ins/{slug}/upstream.yaml: {d}"
            ));
        }
    }
    assert!(report.is_empty(), "\n{}", report.join("\n"));
    // Every recorded app is in the catalog (a stand-in for a removed app is stale).
    for e in std::fs::read_dir(repo().join("lab/stand-ins")).unwrap() {
        let e = e.unwrap();
        if e.path().join("upstream.yaml").exists() {
            let slug = e.file_name().to_string_lossy().to_string();
            assert!(
                catalog.recipes.contains_key(&slug),
                "lab/stand-ins/{slug} has no recipe"
            );
        }
    }
}

/// A copy of a built-in recipe with one edit, parsed as the daemon would.
fn mutated(slug: &str, file: &str, from: &str, to: &str) -> Recipe {
    let dir = repo().join("recipes").join(slug);
    let mut manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    let mut compose = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    let text = if file == "manifest.yaml" {
        &mut manifest
    } else {
        &mut compose
    };
    assert!(text.contains(from), "recipes/{slug}/{file} has no “{from}”");
    *text = text.replacen(from, to, 1);
    Recipe::parse(slug, &manifest, &compose, None, Source::User).unwrap()
}

fn assert_reported(r: &Recipe, words: &str) {
    let found = disagreements(r, &upstream(&r.manifest.slug));
    assert!(
        found.iter().any(|d| d.contains(words)),
        "expected a disagreement about “{words}”, got {found:?}"
    );
}

#[test]
fn drift_is_reported() {
    // The old Uptime Kuma check: GET / answering 200, which 2.x never does (302 → /dashboard).
    let old_health = mutated(
        "uptime-kuma",
        "manifest.yaml",
        "health: {path: /, status: [302, 200]",
        "health: {path: /, status: 200",
    );
    assert_reported(&old_health, "health.status: upstream answers 302");
    // Nextcloud without its trusted domains answers 400 to the box.
    let untrusted = mutated(
        "nextcloud",
        "compose.yaml",
        "NEXTCLOUD_TRUSTED_DOMAINS:",
        "NEXTCLOUD_TRUSTED_DOMAINZ:",
    );
    assert_reported(&untrusted, "does not set NEXTCLOUD_TRUSTED_DOMAINS");
    // A version the research was not done at.
    let version = mutated(
        "vaultwarden",
        "manifest.yaml",
        "version: \"1.37.2\"",
        "version: \"1.32.7\"",
    );
    assert_reported(&version, "version: the recipe has 1.32.7");
    // An architecture upstream stopped publishing (NPM dropped armv7 in 2.14.0).
    let arch = mutated(
        "nginx-proxy-manager",
        "manifest.yaml",
        "architectures: [amd64, arm64]",
        "architectures: [amd64, arm64, armv7]",
    );
    assert_reported(&arch, "architectures");
    // The owner shown one password while the app got another.
    let other_secret = mutated(
        "nginx-proxy-manager",
        "compose.yaml",
        "INITIAL_ADMIN_PASSWORD: ${ADMIN_PASSWORD}",
        "INITIAL_ADMIN_PASSWORD: changeme",
    );
    assert_reported(&other_secret, "sign_in.password");
    // A web port the app does not serve.
    let port = mutated("portainer", "manifest.yaml", "port: 9443", "port: 9000");
    assert_reported(&port, "web: the recipe has https://…:9000");
    // And the unmodified recipes have none of these.
    let catalog = Catalog::load(None);
    for slug in [
        "uptime-kuma",
        "nextcloud",
        "vaultwarden",
        "nginx-proxy-manager",
    ] {
        let r = &catalog.recipes[slug];
        assert!(
            disagreements(r, &upstream(slug)).is_empty(),
            "{slug}: {:?}",
            disagreements(r, &upstream(slug))
        );
    }
}
