//! The catalog: all ten built-in recipes load and validate; broken recipes are refused with
//! the file and field named; user recipes add and override.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use homelabd::catalog::{Catalog, DataGrowth, Hardware, Recipe, Source};

const SEED_APPS: [&str; 10] = [
    "adguard-home",
    "home-assistant",
    "immich",
    "jellyfin",
    "nextcloud",
    "nginx-proxy-manager",
    "paperless-ngx",
    "portainer",
    "uptime-kuma",
    "vaultwarden",
];

#[test]
fn all_seed_recipes_load_and_validate() {
    let c = Catalog::load(None);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let slugs: Vec<&str> = c.recipes.keys().map(String::as_str).collect();
    assert_eq!(slugs, SEED_APPS);
    for r in c.recipes.values() {
        assert!(
            r.icon_svg.starts_with("<svg"),
            "{} has an icon",
            r.manifest.slug
        );
        assert!(
            !r.manifest.data_volumes.is_empty(),
            "{} says where user data lives",
            r.manifest.slug
        );
        for svc in r.compose.services.0.values().flatten() {
            let image = svc.image.as_deref().unwrap();
            assert!(
                !image.ends_with(":latest") && image.contains(':'),
                "{image}"
            );
        }
    }
    // Placement's hints: apps whose data grows, and those that can use a graphics chip.
    let grows = |slug: &str| c.recipes[slug].manifest.data_grows;
    assert_eq!(grows("immich"), Some(DataGrowth::Photos));
    assert_eq!(grows("jellyfin"), Some(DataGrowth::Media));
    assert_eq!(grows("nextcloud"), Some(DataGrowth::Files));
    assert_eq!(grows("paperless-ngx"), Some(DataGrowth::Documents));
    assert_eq!(grows("vaultwarden"), None);
    for slug in SEED_APPS {
        let gpu = c.recipes[slug].manifest.hardware.contains(&Hardware::Gpu);
        assert_eq!(gpu, ["immich", "jellyfin"].contains(&slug), "{slug}");
    }
    // Facts the rest of the product relies on.
    let vw = &c.recipes["vaultwarden"];
    assert_eq!(vw.host_ports(&vw.default_values()), vec![8222]);
    let ha = &c.recipes["home-assistant"];
    assert!(ha.manifest.host_network);
    assert_eq!(ha.host_ports(&ha.default_values()), vec![8123]);
    let ag = &c.recipes["adguard-home"];
    assert_eq!(ag.host_ports(&ag.default_values()), vec![53, 3000]);
    let immich = &c.recipes["immich"];
    assert_eq!(
        immich.compose.services.0.len(),
        4,
        "server, machine learning, redis, database"
    );
    assert_eq!(
        immich.manifest.database.as_ref().unwrap().engine,
        "postgres"
    );
    assert_eq!(
        c.recipes["nextcloud"]
            .manifest
            .database
            .as_ref()
            .unwrap()
            .engine,
        "mariadb"
    );
}

const GOOD_MANIFEST: &str = r#"
name: Test App
slug: test-app
version: "1"
category: Tools
description: A test.
website: https://example.org
requirements: {ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}
architectures: [amd64]
web: {service: web, port: 8080, path: /}
health: {path: /, status: 200}
data_volumes: [data]
settings:
  - {name: HTTP_PORT, label: Which port to use, kind: port, default: "18080"}
"#;

const GOOD_COMPOSE: &str = r#"
services:
  web:
    image: homelab-lab/http-stub:1
    ports:
      - "${HTTP_PORT}:8080"
    volumes:
      - data:/www/data
volumes:
  data:
"#;

fn parse(manifest: &str, compose: &str) -> Result<Recipe, String> {
    Recipe::parse("recipes/test-app", manifest, compose, None, Source::User)
        .map_err(|e| e.to_string())
}

#[test]
fn broken_recipes_are_refused_naming_file_and_field() {
    assert!(parse(GOOD_MANIFEST, GOOD_COMPOSE).is_ok());
    let hinted = GOOD_MANIFEST.replace(
        "category: Tools\n",
        "category: Tools\ndata_grows: documents\nhardware: [gpu]\n",
    );
    let r = parse(&hinted, GOOD_COMPOSE).unwrap();
    assert_eq!(r.manifest.data_grows, Some(DataGrowth::Documents));
    assert_eq!(r.manifest.hardware, [Hardware::Gpu]);
    let cases = [
        (
            GOOD_MANIFEST.to_string(),
            GOOD_COMPOSE.replace("http-stub:1", "http-stub:latest"),
            "compose.yaml",
            "must not use :latest",
        ),
        (
            GOOD_MANIFEST.to_string(),
            GOOD_COMPOSE.replace("http-stub:1", "http-stub"),
            "compose.yaml",
            "pinned to a version tag",
        ),
        (
            GOOD_MANIFEST.to_string(),
            GOOD_COMPOSE.replace("${HTTP_PORT}", "${UNDECLARED}"),
            "compose.yaml",
            "${UNDECLARED} is used",
        ),
        (
            GOOD_MANIFEST.replace("service: web", "service: nope"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "web.service “nope”",
        ),
        (
            GOOD_MANIFEST.replace("data_volumes: [data]", "data_volumes: [other]"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "data_volumes: “other”",
        ),
        (
            GOOD_MANIFEST.replace("ram_min_mb: 64", "ram_min_mb: 640"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "ram_min_mb",
        ),
        (
            GOOD_MANIFEST.replace("[amd64]", "[sparc]"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "unknown “sparc”",
        ),
        (
            GOOD_MANIFEST.replace("slug: test-app", "slug: other"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "match the folder",
        ),
        (
            GOOD_MANIFEST.replace("category: Tools\n", "category: Tools\nsurprise: 1\n"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "surprise",
        ),
        (
            GOOD_MANIFEST.replace(
                "category: Tools\n",
                "category: Tools\ndata_grows: pictures\n",
            ),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "unknown variant `pictures`, expected one of `photos`, `media`, `documents`, `files`",
        ),
        (
            GOOD_MANIFEST.replace("category: Tools\n", "category: Tools\nhardware: [tpu]\n"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "unknown variant `tpu`",
        ),
        (
            GOOD_MANIFEST.replace("\"18080\"", "\"eighty\""),
            GOOD_COMPOSE.to_string(),
            "compose.yaml",
            "not a number",
        ),
        (
            GOOD_MANIFEST.to_string(),
            "services: [".to_string(),
            "compose.yaml",
            "",
        ),
    ];
    for (m, c, file, words) in cases {
        let e = parse(&m, &c)
            .err()
            .unwrap_or_else(|| panic!("accepted a broken recipe expecting “{words}”"));
        assert!(e.starts_with(&format!("recipes/test-app/{file}")), "{e}");
        assert!(e.contains(words), "expected “{words}” in: {e}");
    }
}

#[test]
fn user_recipes_add_and_override_and_bad_ones_are_reported() {
    let dir = common::data_dir("user-recipes").join("recipes");
    std::fs::create_dir_all(dir.join("test-app")).unwrap();
    std::fs::write(dir.join("test-app/manifest.yaml"), GOOD_MANIFEST).unwrap();
    std::fs::write(dir.join("test-app/compose.yaml"), GOOD_COMPOSE).unwrap();
    // An override of a built-in app.
    let vw = Catalog::load(None).recipes["vaultwarden"].clone();
    std::fs::create_dir_all(dir.join("vaultwarden")).unwrap();
    let manifest = include_str!("../../recipes/vaultwarden/manifest.yaml")
        .replace("name: Vaultwarden", "name: My Vaultwarden");
    std::fs::write(dir.join("vaultwarden/manifest.yaml"), manifest).unwrap();
    std::fs::write(dir.join("vaultwarden/compose.yaml"), &vw.compose_text).unwrap();
    // A broken one.
    std::fs::create_dir_all(dir.join("broken")).unwrap();
    std::fs::write(dir.join("broken/manifest.yaml"), "name: x").unwrap();

    let c = Catalog::load(Some(&dir));
    assert_eq!(c.recipes.len(), 11);
    assert_eq!(c.recipes["test-app"].source, Source::User);
    assert_eq!(c.recipes["vaultwarden"].manifest.name, "My Vaultwarden");
    assert_eq!(c.problems.len(), 1);
    assert!(
        c.problems[0].to_string().contains("broken"),
        "{}",
        c.problems[0]
    );
}

#[test]
fn recipes_may_not_mount_the_device_itself() {
    let mount = |line: &str| GOOD_COMPOSE.replace("- data:/www/data", line);
    let cases = [
        ("- /:/host", "the whole file system"),
        ("- /etc:/host-etc", "system folder /etc"),
        ("- /srv/../etc/shadow:/s:ro", "system folder /etc"),
        ("- /var/lib/docker:/d", "/var/lib/docker"),
        (
            "- /var/run/docker.sock:/var/run/docker.sock",
            "docker_socket: true",
        ),
        ("- ~/.ssh:/keys", "home folder"),
        (
            "- {type: bind, source: /proc, target: /p}",
            "system folder /proc",
        ),
    ];
    for (line, words) in cases {
        let e = parse(GOOD_MANIFEST, &mount(line))
            .err()
            .unwrap_or_else(|| panic!("accepted “{line}”"));
        assert!(e.starts_with("recipes/test-app/compose.yaml"), "{e}");
        assert!(
            e.contains("services.web.volumes") && e.contains(words),
            "{line}: {e}"
        );
    }
    // Options that hand over the device need a declaration in the manifest.
    let service = |line: &str| {
        GOOD_COMPOSE.replace(
            "    volumes:\n      - data",
            &format!("    {line}\n    volumes:\n      - data"),
        )
    };
    for (line, words) in [
        ("privileged: true", "privileged: true"),
        ("devices: [/dev/ttyUSB0]", "devices"),
        ("cap_add: [SYS_ADMIN]", "cap_add"),
        ("pid: host", "pid: host"),
        ("security_opt: [\"apparmor=unconfined\"]", "unconfined"),
        ("network_mode: host", "host_network: true"),
    ] {
        let e = parse(GOOD_MANIFEST, &service(line))
            .err()
            .unwrap_or_else(|| panic!("accepted “{line}”"));
        assert!(
            e.contains("services.web") && e.contains(words),
            "{line}: {e}"
        );
    }
    let declared = format!("{GOOD_MANIFEST}device_access: true\n");
    assert!(parse(&declared, &service("privileged: true")).is_ok());
    // A named volume that is really a bind mount.
    let disguised =
        format!("{GOOD_COMPOSE}    driver_opts: {{type: none, o: bind, device: /etc}}\n");
    let e = parse(GOOD_MANIFEST, &disguised).unwrap_err();
    assert!(
        e.contains("volumes.data.driver_opts.device") && e.contains("/etc"),
        "{e}"
    );
    // A folder setting's default is checked as well.
    let manifest = format!(
        "{GOOD_MANIFEST}  - {{name: MEDIA, label: Media folder, kind: path, default: /}}\n"
    );
    let e = parse(&manifest, &mount("- ${MEDIA}:/media")).unwrap_err();
    assert!(e.contains("the whole file system"), "{e}");
    assert!(
        parse(
            &manifest.replace("default: /}", "default: /srv/media}"),
            &mount("- ${MEDIA}:/media")
        )
        .is_ok()
    );
    // What apps commonly need stays allowed: the time zone read-only, their own folders, and the
    // Docker socket when the manifest says so.
    assert!(parse(GOOD_MANIFEST, &mount("- /etc/localtime:/etc/localtime:ro")).is_ok());
    assert!(parse(GOOD_MANIFEST, &mount("- /run/dbus:/run/dbus:ro")).is_ok());
    let declared = GOOD_MANIFEST.replace(
        "data_volumes: [data]",
        "data_volumes: [data]\ndocker_socket: true",
    );
    let sock = mount("- /var/run/docker.sock:/var/run/docker.sock\n      - data:/www/data");
    assert!(parse(&declared, &sock).is_ok());
    let c = Catalog::load(None);
    assert!(c.recipes["portainer"].manifest.docker_socket);
    assert!(!c.recipes["home-assistant"].manifest.docker_socket);
}

#[test]
fn user_recipe_files_must_be_inside_their_folder() {
    let root = common::data_dir("recipe-links").join("recipes");
    let outside = root.parent().unwrap().join("outside.svg");
    std::fs::write(&outside, "<svg>not the recipe's</svg>").unwrap();
    let write = |slug: &str| {
        let dir = root.join(slug);
        std::fs::create_dir_all(&dir).unwrap();
        let m = GOOD_MANIFEST.replace("slug: test-app", &format!("slug: {slug}"));
        std::fs::write(dir.join("manifest.yaml"), m).unwrap();
        std::fs::write(dir.join("compose.yaml"), GOOD_COMPOSE).unwrap();
        dir
    };
    // An icon that is a link out of the folder.
    let escaping = write("escaping-icon");
    std::os::unix::fs::symlink(&outside, escaping.join("icon.svg")).unwrap();
    // A Compose file that is a link to another recipe's (outside its own folder, too).
    let borrowed = write("borrowed-compose");
    std::fs::remove_file(borrowed.join("compose.yaml")).unwrap();
    std::os::unix::fs::symlink(
        root.join("escaping-icon/compose.yaml"),
        borrowed.join("compose.yaml"),
    )
    .unwrap();
    // An icon that is a folder.
    let folder_icon = write("folder-icon");
    std::fs::create_dir(folder_icon.join("icon.svg")).unwrap();
    // A recipe folder that is a link to elsewhere.
    let elsewhere = root.parent().unwrap().join("elsewhere/linked");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("linked")).unwrap();
    // A link inside the folder is fine.
    let fine = write("linked-inside");
    std::fs::write(fine.join("logo.svg"), "<svg>mine</svg>").unwrap();
    std::os::unix::fs::symlink("logo.svg", fine.join("icon.svg")).unwrap();

    let c = Catalog::load(Some(&root));
    let problems: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
    let problem = |what: &str| {
        problems
            .iter()
            .find(|p| p.contains(what))
            .unwrap_or_else(|| panic!("no problem about {what}: {problems:?}"))
            .clone()
    };
    assert!(problem("escaping-icon/icon.svg").contains("outside"));
    assert!(problem("borrowed-compose/compose.yaml").contains("outside"));
    assert!(problem("folder-icon/icon.svg").contains("not a regular file"));
    assert!(problem("recipes/linked").contains("outside"));
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(!c.recipes.contains_key("escaping-icon"));
    assert_eq!(c.recipes["linked-inside"].icon_svg, "<svg>mine</svg>");
}

/// What a recipe says about the first run, its health and its updates is checked at load:
/// a status list, box variables by name, an account whose password is one of its secrets.
#[test]
fn first_run_health_and_update_fields_are_checked_at_load() {
    let with = |extra: &str| format!("{GOOD_MANIFEST}{extra}");
    let secret = "secrets:\n  - {name: PASS, length: 20}\n";
    // Accepted: several statuses, a first-start limit, box variables, an account, a setup page,
    // and which versions may update.
    let good = with(&format!(
        "{secret}sign_in: {{user: \"${{HTTP_PORT}}-admin\", password: PASS}}\n\
         setup: {{path: /setup, words: Create your account.}}\n\
         update_from: {{min: \"2.0\", reason: One step at a time., otherwise: Keep it.}}\n"
    ))
    .replace(
        "health: {path: /, status: 200}",
        "health: {path: /, status: [302, 200], timeout: 600, waiting: It sets itself up.}",
    );
    let compose = GOOD_COMPOSE.replace(
        "    ports:",
        "    environment:\n      URL: ${HOMELAB_APP_URL}\n      TZ: ${HOMELAB_TZ}\n    ports:",
    );
    let r = parse(&good, &compose).unwrap();
    // Without update_from, a version need not be a number.
    let named = GOOD_MANIFEST.replace("version: \"1\"", "version: stable");
    parse(&named, GOOD_COMPOSE).unwrap();
    assert_eq!(r.manifest.health.status, [302, 200]);
    assert_eq!(r.manifest.health.timeout, Some(600));
    assert_eq!(r.manifest.sign_in.as_ref().unwrap().password, "PASS");
    assert_eq!(r.manifest.setup.as_ref().unwrap().path, "/setup");

    let cases = [
        (
            with("").replace("status: 200", "status: [200, 42]"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "health.status must be an HTTP status",
        ),
        (
            with("").replace("status: 200}", "status: 200, timeout: 99999}"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "health.timeout must be 1 to 1800 seconds",
        ),
        (
            with(""),
            GOOD_COMPOSE.replace("${HTTP_PORT}:8080", "${HOMELAB_PORT}:8080"),
            "compose.yaml",
            "${HOMELAB_PORT} is not a variable Homelab fills (it fills HOMELAB_DEVICE_IP",
        ),
        (
            with("  - {name: HOMELAB_APP_URL, label: Mine, kind: text, default: x}\n"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "or HOMELAB_",
        ),
        (
            with("sign_in: {user: admin, password: NOT_A_SECRET}\n"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "sign_in.password “NOT_A_SECRET” is not one of the recipe's secrets",
        ),
        (
            with(&format!(
                "{secret}sign_in: {{user: \"${{NOPE}}\", password: PASS}}\n"
            )),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "sign_in.user: ${NOPE} has no value",
        ),
        (
            with("setup: {path: setup, words: Go there.}\n"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "setup.path must start with /",
        ),
        (
            with("update_from: {min: soon, reason: Because., otherwise: Wait.}\n"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "update_from needs a version in min",
        ),
        (
            with("update_from: {min: \"2.0\", reason: Because., otherwise: Wait.}\n")
                .replace("version: \"1\"", "version: latest"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "version “latest” must start with a number, like 1.2.3, when update_from is set",
        ),
        (
            with(""),
            GOOD_COMPOSE
                .replace("\"${HTTP_PORT}:8080\"", "\"8080\"")
                .replace(
                    "    volumes:",
                    "    environment:\n      URL: ${HOMELAB_APP_URL}\n    volumes:",
                ),
            "compose.yaml",
            "${HOMELAB_APP_URL} needs the web page published on a port of the device",
        ),
        (
            with("secrets:\n  - {name: PASS, length: 20, form: md5}\n"),
            GOOD_COMPOSE.to_string(),
            "manifest.yaml",
            "unknown variant `md5`, expected one of `plain`, `argon2`, `bcrypt`",
        ),
    ];
    for (m, c, file, words) in cases {
        let e = parse(&m, &c)
            .err()
            .unwrap_or_else(|| panic!("accepted a broken recipe expecting “{words}”"));
        assert!(e.starts_with(&format!("recipes/test-app/{file}")), "{e}");
        assert!(e.contains(words), "expected “{words}” in: {e}");
    }
}

/// Versions compare by their numbers, whatever their prefix and suffix; an update the recipe
/// says upstream cannot make is refused with the reason and what to do instead.
#[test]
fn updates_upstream_cannot_make_are_refused() {
    use homelabd::catalog::{older_than, version_key};
    assert_eq!(version_key("v0.107.79"), Some(vec![0, 107, 79]));
    assert_eq!(version_key("34.0.2-apache"), Some(vec![34, 0, 2]));
    assert_eq!(version_key("2024.12.5"), Some(vec![2024, 12, 5]));
    assert_eq!(version_key("latest"), None);
    assert!(older_than("30.0.4", "33"));
    assert!(older_than("1.9.9", "1.10"));
    assert!(!older_than("33.0.0", "33"));
    assert!(!older_than("v1.10.0", "1.9.12"));

    let c = Catalog::load(None);
    let nextcloud = &c.recipes["nextcloud"];
    let refused = homelabd::deploy::update_refused(nextcloud, "30.0.4")
        .expect("Nextcloud 30 may not jump to the catalog's version");
    let words = refused.to_string();
    assert!(
        words.starts_with(&format!(
            "Nextcloud 30.0.4 cannot update straight to {}.",
            nextcloud.manifest.version
        )) && words.contains("one major version at a time")
            && words.contains("Keep using the version you have"),
        "{words}"
    );
    assert!(homelabd::deploy::update_refused(nextcloud, "33.0.7").is_none());
    // Apps whose upstream takes any jump say nothing.
    assert!(homelabd::deploy::update_refused(&c.recipes["vaultwarden"], "1.0.0").is_none());
}

/// A recipe whose database the device's shared one may replace: its own database service sits
/// under the `own-database` profile, nothing depends on it, and an app service reads its host.
#[test]
fn a_shareable_database_is_declared_so_the_recipe_still_runs_alone() {
    let manifest = format!(
        "{GOOD_MANIFEST}database:\n  engine: postgres\n  service: db\n  \
         env: {{host: DB_HOST, name: DB_NAME, user: DB_USER, password: DB_PASS}}\n\
         secrets:\n  - {{name: DB_PASS, length: 32}}\n"
    );
    let compose = GOOD_COMPOSE.replace(
        "    volumes:\n      - data:/www/data\n",
        "    environment:\n      DB_HOST: ${DB_HOST:-db}\n      DB_PASS: ${DB_PASS}\n    \
         volumes:\n      - data:/www/data\n  db:\n    image: postgres:16\n    \
         profiles: [own-database]\n    environment:\n      POSTGRES_PASSWORD: ${DB_PASS}\n",
    );
    let r = parse(&manifest, &compose).unwrap();
    assert_eq!(r.database_clients(), ["web"]);
    assert_eq!(
        homelabd::pool::can_pool(&r).unwrap(),
        homelabd::pool::Engine::Postgres
    );
    for (compose, why) in [
        (
            compose.replace("    profiles: [own-database]\n", ""),
            "must have `profiles: [own-database]`",
        ),
        (
            compose.replace(
                "    environment:\n      DB_HOST",
                "    depends_on: [db]\n    environment:\n      DB_HOST",
            ),
            "depends_on: “db” is not started",
        ),
        (
            compose.replace("      DB_HOST: ${DB_HOST:-db}\n", "      OTHER: db\n"),
            "no service reads ${DB_HOST}",
        ),
    ] {
        let err = parse(&manifest, &compose).unwrap_err();
        assert!(err.contains("compose.yaml") && err.contains(why), "{err}");
    }
    let err = parse(&manifest.replace("service: db", "service: nope"), &compose).unwrap_err();
    assert!(err.contains("database.service “nope”"), "{err}");
    // Needs the pool cannot give: it keeps its own, and says why.
    let vector = manifest.replace("service: db\n", "service: db\n  extensions: [vchord]\n");
    let r = parse(&vector, &compose).unwrap();
    let why = homelabd::pool::can_pool(&r).unwrap_err();
    assert!(why.contains("“vchord” extension"), "{why}");
}
