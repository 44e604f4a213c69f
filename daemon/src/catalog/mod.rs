//! The app catalog: one recipe per app (a plain Compose file, a manifest, an icon), embedded in
//! the binary, plus user recipes from `<data>/recipes/` that add or override. Every recipe is
//! validated at load with errors naming the file and the field.

mod interpolate;
mod mounts;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use docker_compose_types::{Compose, MapOrEmpty, Ports, SingleValue, Volumes};
use rust_embed::RustEmbed;
use serde::Deserialize;

pub use interpolate::{interpolate, variables};

#[derive(RustEmbed)]
#[folder = "../recipes/"]
struct Builtin;

/// Errors loading a recipe: always name the file and what is wrong in it.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct RecipeError {
    pub file: String,
    pub message: String,
}

fn err(file: &str, message: impl Into<String>) -> RecipeError {
    RecipeError {
        file: file.to_string(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    pub ram_min_mb: u64,
    pub ram_recommended_mb: u64,
    pub storage_min_gb: u64,
    pub storage_recommended_gb: u64,
    pub cpu_min_cores: u32,
    pub cpu_recommended_cores: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebEntry {
    pub service: String,
    pub port: u16,
    pub path: String,
    #[serde(default = "http")]
    pub scheme: String,
}

fn http() -> String {
    "http".into()
}

/// How Homelab knows the app is up: a GET of `path` on its web entry answers one of `status`.
/// Redirects are not followed: an app that sends visitors elsewhere at that path (to its
/// dashboard, its login or its setup page) lists the redirect's status, which is how that app
/// says "I am up".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub path: String,
    /// One status or a list, e.g. `200` or `[200, 302]`.
    #[serde(deserialize_with = "one_or_many")]
    pub status: Vec<u16>,
    /// How long the first start may take, in seconds, for apps that set themselves up then
    /// (a database to create, files to index); the daemon's default applies otherwise.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// What the app is busy with while the check waits, in plain words, shown on the page
    /// ("Nextcloud sets itself up on its first start.").
    #[serde(default)]
    pub waiting: String,
    /// Text the answer must contain, for apps that answer 200 while still busy (Jellyfin says
    /// "Degraded" until its migrations are done, "Healthy" after).
    #[serde(default)]
    pub body: Option<String>,
}

/// The longest first start a recipe may ask for: long enough for the slowest real app on a
/// small device, short enough that a broken one is rolled back the same hour.
pub const MAX_HEALTH_TIMEOUT: u64 = 30 * 60;

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(u16),
        Many(Vec<u16>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// The account Homelab creates for the owner on the first start, through the app's own
/// variables: the owner signs in with it without a terminal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The user name or email, literal or `${SETTING}`.
    pub user: String,
    /// The name of the secret that holds its password.
    pub password: String,
}

/// An app that finishes its setup in its own web page on the first visit (it creates its
/// first account there): where that page is and what to do there, in plain words.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// The page, from the app's address (`/setup`, `/onboarding.html`).
    pub path: String,
    /// What the owner does there ("Create your account: the first one becomes the admin.").
    pub words: String,
}

/// Which installed versions this one may update from directly: upstream supports only some
/// jumps (one Nextcloud major at a time, Immich across its database change).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFrom {
    /// The oldest installed version that may update straight to this one.
    pub min: String,
    /// Why, in plain words ("Nextcloud updates one major version at a time.").
    pub reason: String,
    /// What the owner can do instead, in plain words.
    pub otherwise: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseEnv {
    pub host: String,
    #[serde(default)]
    pub port: Option<String>,
    pub name: String,
    pub user: String,
    pub password: String,
}

/// The Compose profile a recipe's own database service sits under: started only when the app
/// does not use the device's shared database (Homelab then sets `COMPOSE_PROFILES` to it; an
/// exported app sets it in its env file), so a recipe stays a plain Compose file that runs on
/// its own.
pub const OWN_DATABASE_PROFILE: &str = "own-database";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `postgres` or `mariadb`.
    pub engine: String,
    /// The recipe's own database service, under the `own-database` Compose profile: it runs
    /// only when the app does not use the device's shared database (`pool/`). Empty: the app
    /// always keeps its own.
    #[serde(default)]
    pub service: String,
    /// Extensions the app needs in its database (PostgreSQL), e.g. a vector search one: an
    /// app whose needs the shared instance cannot meet keeps its own database.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// The app copies its database settings into its own configuration when it installs
    /// (Nextcloud's config.php), so changing them later does not move it: such an app can
    /// share the device's database from its first install, but cannot be moved there.
    #[serde(default)]
    pub settings_fixed_at_install: bool,
    /// Which variables receive the connection details (the pooling feature fills them).
    pub env: DatabaseEnv,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    pub name: String,
    pub length: usize,
    /// How the app receives it: as generated (the default), or a hash of it for apps that
    /// take a hash in place of the secret: `argon2` (an Argon2id PHC string: Vaultwarden's
    /// admin token) or `bcrypt` (Portainer's first admin). The owner is shown the secret
    /// itself either way.
    #[serde(default)]
    pub form: SecretForm,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretForm {
    #[default]
    Plain,
    Argon2,
    Bcrypt,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    pub name: String,
    /// Plain words shown to the user ("Which port to use").
    pub label: String,
    /// text | port | bool | path
    pub kind: String,
    pub default: String,
}

/// What kind of data an app keeps piling up (a photo library, a media collection…): placement
/// then values free storage well beyond the recommendation, and its reason names the data
/// ("more free storage for your photos").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataGrowth {
    Photos,
    Media,
    Documents,
    Files,
}

impl DataGrowth {
    /// The data in plain words, after "your".
    pub fn words(self) -> &'static str {
        match self {
            DataGrowth::Photos => "photos",
            DataGrowth::Media => "films and music",
            DataGrowth::Documents => "documents",
            DataGrowth::Files => "files",
        }
    }
}

/// Hardware an app puts to use when a device has it (placement prefers such a device; the app
/// still runs without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hardware {
    /// A graphics chip (`/dev/dri` render node or NVIDIA): video transcoding, photo recognition.
    Gpu,
}

/// A recipe's manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub slug: String,
    pub version: String,
    pub category: String,
    pub description: String,
    pub website: String,
    pub requirements: Requirements,
    pub architectures: Vec<String>,
    pub web: WebEntry,
    pub health: Health,
    pub data_volumes: Vec<String>,
    #[serde(default)]
    pub database: Option<Database>,
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    #[serde(default)]
    pub settings: Vec<Setting>,
    /// The app uses the device's network directly (no port mapping).
    #[serde(default)]
    pub host_network: bool,
    /// Ports a host-network app binds on the device.
    #[serde(default)]
    pub host_ports: Vec<u16>,
    /// What the owner should know after installing, in plain words (shown in both modes).
    #[serde(default)]
    pub notes: String,
    /// The technical part of the notes (admin paths, ports, tokens), shown in Advanced mode only.
    #[serde(default)]
    pub advanced_notes: String,
    /// The app mounts the device's Docker socket (e.g. Portainer), which gives it full control
    /// of the device; without this a recipe may not mount it.
    #[serde(default)]
    pub docker_socket: bool,
    /// The app needs the device itself: privileged mode, host devices, extra capabilities or
    /// the host's process or IPC namespace (e.g. Home Assistant for USB and Bluetooth radios).
    /// Any of those hands a container the device as surely as mounting `/`, so a recipe may
    /// not ask for them without saying so here.
    #[serde(default)]
    pub device_access: bool,
    /// The app's data keeps growing (photos, media, documents, files); absent for apps whose
    /// data stays small.
    #[serde(default)]
    pub data_grows: Option<DataGrowth>,
    /// Hardware the app can put to use if the device has it, e.g. `[gpu]`.
    #[serde(default)]
    pub hardware: Vec<Hardware>,
    /// The admin account Homelab makes on the first start, if the app can be told one.
    #[serde(default)]
    pub sign_in: Option<SignIn>,
    /// The app's own first-run page, for apps that set up their first account there.
    #[serde(default)]
    pub setup: Option<Setup>,
    /// Installed versions this one cannot update from directly; absent when any may.
    #[serde(default)]
    pub update_from: Option<UpdateFrom>,
}

/// Where a recipe came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Builtin,
    User,
}

/// A validated recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub manifest: Manifest,
    /// The Compose file exactly as written (what the user can read and export).
    pub compose_text: String,
    pub compose: Compose,
    pub icon_svg: String,
    pub source: Source,
}

/// Variables Homelab fills for every recipe (see `BOX_VARIABLES`); a recipe uses them without
/// declaring them, and no recipe may declare a name with this prefix.
pub const BOX_PREFIX: &str = "HOMELAB_";

/// What Homelab tells an app about where it lives, filled at deploy time (after the device
/// and the ports are settled) and again at every update. Documented in README.md.
pub const BOX_VARIABLES: [(&str, &str); 6] = [
    (
        "HOMELAB_DEVICE_IP",
        "the device's IP address on your network, e.g. 192.168.1.20 (bind a port to it to \
         leave the device's other addresses alone)",
    ),
    (
        "HOMELAB_APP_HOST",
        "the host part of the app's address, as a browser sends it: its name, e.g. \
         vaultwarden.home.arpa (the device's address, e.g. 192.168.1.20, for an app reached by \
         address only)",
    ),
    (
        "HOMELAB_APP_PORT",
        "the port of the app's address: 443 for a named app, else the device port of its web \
         page, e.g. 8080",
    ),
    (
        "HOMELAB_APP_URL",
        "the app's address without a trailing slash, e.g. https://vaultwarden.home.arpa (or \
         http://192.168.1.20:8080 for an app reached by address only)",
    ),
    (
        "HOMELAB_APP_ADDRESS",
        "the device's address and port where the app's web page is published, e.g. \
         192.168.1.20:8080: the way in that works without a name (a trusted domain for apps \
         that check the host a browser asks for)",
    ),
    (
        "HOMELAB_TZ",
        "the box's time zone, e.g. Europe/Berlin (Etc/UTC when it has none)",
    ),
];

/// Values that stand in for the box variables when a recipe is checked at load.
pub fn example_box_values() -> BTreeMap<String, String> {
    [
        ("HOMELAB_DEVICE_IP", "192.0.2.10"),
        ("HOMELAB_APP_HOST", "192.0.2.10"),
        ("HOMELAB_APP_PORT", "8080"),
        ("HOMELAB_APP_URL", "http://192.0.2.10:8080"),
        ("HOMELAB_APP_ADDRESS", "192.0.2.10:8080"),
        ("HOMELAB_TZ", "Etc/UTC"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
/// Names a recipe variable may not take (they steer the shell that runs Compose).
const RESERVED_VARIABLES: [&str; 7] = ["PATH", "HOME", "IFS", "PWD", "SHELL", "USER", "ENV"];
const ARCHITECTURES: [&str; 4] = ["amd64", "arm64", "armv7", "386"];
const SETTING_KINDS: [&str; 4] = ["text", "port", "bool", "path"];

impl Recipe {
    /// Parses and validates a recipe from its three files (`dir` names it in errors).
    pub fn parse(
        dir: &str,
        manifest: &str,
        compose: &str,
        icon: Option<String>,
        source: Source,
    ) -> Result<Recipe, RecipeError> {
        let mf = format!("{dir}/manifest.yaml");
        let cf = format!("{dir}/compose.yaml");
        let manifest: Manifest =
            serde_norway::from_str(manifest).map_err(|e| err(&mf, e.to_string()))?;
        let parsed: Compose =
            serde_norway::from_str(compose).map_err(|e| err(&cf, e.to_string()))?;
        let recipe = Recipe {
            manifest,
            compose_text: compose.to_string(),
            compose: parsed,
            icon_svg: icon.unwrap_or_default(),
            source,
        };
        recipe.validate(dir)?;
        Ok(recipe)
    }

    fn validate(&self, dir: &str) -> Result<(), RecipeError> {
        let m = &self.manifest;
        let mf = format!("{dir}/manifest.yaml");
        let cf = format!("{dir}/compose.yaml");
        let ok_slug = !m.slug.is_empty()
            && m.slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok_slug {
            return Err(err(
                &mf,
                format!(
                    "slug “{}” must be lowercase letters, digits and dashes",
                    m.slug
                ),
            ));
        }
        if dir.rsplit('/').next() != Some(m.slug.as_str()) {
            return Err(err(
                &mf,
                format!("slug “{}” must match the folder name", m.slug),
            ));
        }
        for (field, v) in [
            ("name", &m.name),
            ("version", &m.version),
            ("category", &m.category),
            ("description", &m.description),
        ] {
            if v.trim().is_empty() {
                return Err(err(&mf, format!("{field} is empty")));
            }
        }
        if !m.website.starts_with("https://") {
            return Err(err(&mf, "website must be an https:// address"));
        }
        let r = &m.requirements;
        if r.ram_min_mb == 0 || r.ram_min_mb > r.ram_recommended_mb {
            return Err(err(
                &mf,
                "requirements.ram_min_mb must be above 0 and at most ram_recommended_mb",
            ));
        }
        if r.storage_min_gb > r.storage_recommended_gb
            || r.cpu_min_cores == 0
            || r.cpu_min_cores > r.cpu_recommended_cores
        {
            return Err(err(
                &mf,
                "requirements: each minimum must be at most its recommendation (and cores at least 1)",
            ));
        }
        if m.architectures.is_empty() {
            return Err(err(&mf, "architectures is empty"));
        }
        if let Some(a) = m
            .architectures
            .iter()
            .find(|a| !ARCHITECTURES.contains(&a.as_str()))
        {
            return Err(err(
                &mf,
                format!(
                    "architectures: unknown “{a}” (use {})",
                    ARCHITECTURES.join(", ")
                ),
            ));
        }
        let services = &self.compose.services.0;
        if services.is_empty() {
            return Err(err(&cf, "services is empty"));
        }
        if !services.contains_key(&m.web.service) {
            return Err(err(
                &mf,
                format!(
                    "web.service “{}” is not a service in compose.yaml",
                    m.web.service
                ),
            ));
        }
        if !m.health.path.starts_with('/') || !m.web.path.starts_with('/') {
            return Err(err(&mf, "web.path and health.path must start with /"));
        }
        if m.health.status.is_empty() || m.health.status.iter().any(|s| !(100..=599).contains(s)) {
            return Err(err(
                &mf,
                "health.status must be an HTTP status (100–599) or a list of them, e.g. [200, 302]",
            ));
        }
        if m.health
            .timeout
            .is_some_and(|t| t == 0 || t > MAX_HEALTH_TIMEOUT)
        {
            return Err(err(
                &mf,
                format!("health.timeout must be 1 to {MAX_HEALTH_TIMEOUT} seconds"),
            ));
        }
        if let Some(setup) = &m.setup
            && (!setup.path.starts_with('/') || setup.words.trim().is_empty())
        {
            return Err(err(
                &mf,
                "setup.path must start with / and setup.words must say what to do there",
            ));
        }
        if let Some(u) = &m.update_from
            && (version_key(&u.min).is_none()
                || u.reason.trim().is_empty()
                || u.otherwise.trim().is_empty())
        {
            return Err(err(
                &mf,
                "update_from needs a version in min (like 31.0.0) and both reason and otherwise in plain words",
            ));
        }
        // Versions are compared only for update_from; other recipes may name them as they like.
        if m.update_from.is_some() && version_key(&m.version).is_none() {
            return Err(err(
                &mf,
                format!(
                    "version “{}” must start with a number, like 1.2.3, when update_from is set",
                    m.version
                ),
            ));
        }
        let volumes = &self.compose.volumes.0;
        if let Some(v) = m.data_volumes.iter().find(|v| !volumes.contains_key(*v)) {
            return Err(err(
                &mf,
                format!("data_volumes: “{v}” is not a volume in compose.yaml"),
            ));
        }
        for (name, svc) in services {
            let Some(svc) = svc else {
                return Err(err(&cf, format!("services.{name} is empty")));
            };
            let image = svc
                .image
                .as_deref()
                .ok_or_else(|| err(&cf, format!("services.{name}.image is missing")))?;
            let tag = image
                .rsplit_once(':')
                .map(|(_, t)| t)
                .filter(|t| !t.contains('/'));
            match tag {
                None => {
                    return Err(err(
                        &cf,
                        format!("services.{name}.image “{image}” must be pinned to a version tag"),
                    ));
                }
                Some("latest") => {
                    return Err(err(
                        &cf,
                        format!("services.{name}.image “{image}” must not use :latest"),
                    ));
                }
                _ => {}
            }
        }
        if let Some(s) = m
            .settings
            .iter()
            .find(|s| !SETTING_KINDS.contains(&s.kind.as_str()))
        {
            return Err(err(
                &mf,
                format!("settings.{}: unknown kind “{}”", s.name, s.kind),
            ));
        }
        if let Some(db) = &m.database
            && db.engine != "postgres"
            && db.engine != "mariadb"
        {
            return Err(err(
                &mf,
                format!(
                    "database.engine “{}” must be postgres or mariadb",
                    db.engine
                ),
            ));
        }
        if let Some(db) = &m.database
            && !db.service.is_empty()
        {
            self.check_own_database(&cf, db)?;
        }
        // Variables reach Compose through the environment of a shell (see deploy/render.rs):
        // upper-case names only, and none that would change how that shell or Compose runs.
        let declared: BTreeSet<String> = self.declared_variables();
        for v in &declared {
            let upper = v
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && v.starts_with(|c: char| c.is_ascii_uppercase());
            let reserved = RESERVED_VARIABLES.contains(&v.as_str())
                || v.starts_with("DOCKER_")
                || v.starts_with("COMPOSE_")
                || v.starts_with(BOX_PREFIX);
            if !upper || reserved {
                return Err(err(
                    &mf,
                    format!(
                        "variable “{v}” must be UPPER_CASE and not one of {} or start with DOCKER_, COMPOSE_ or {BOX_PREFIX}",
                        RESERVED_VARIABLES.join(", ")
                    ),
                ));
            }
        }
        if let Some(s) = &m.sign_in {
            if !m.secrets.iter().any(|x| x.name == s.password) {
                return Err(err(
                    &mf,
                    format!(
                        "sign_in.password “{}” is not one of the recipe's secrets",
                        s.password
                    ),
                ));
            }
            interpolate(&s.user, &self.default_values())
                .map_err(|e| err(&mf, format!("sign_in.user: {e}")))?;
        }
        // Every variable the Compose file uses must be declared, or have a default there, or be
        // one Homelab fills.
        for v in variables(&self.compose_text).map_err(|e| err(&cf, e))? {
            if v.name.starts_with(BOX_PREFIX)
                && !BOX_VARIABLES.iter().any(|(name, _)| *name == v.name)
            {
                let known: Vec<&str> = BOX_VARIABLES.iter().map(|(n, _)| *n).collect();
                return Err(err(
                    &cf,
                    format!(
                        "${{{}}} is not a variable Homelab fills (it fills {})",
                        v.name,
                        known.join(", ")
                    ),
                ));
            }
            if !v.has_default && !declared.contains(&v.name) && !v.name.starts_with(BOX_PREFIX) {
                return Err(err(
                    &cf,
                    format!(
                        "${{{}}} is used but is not a setting, secret or database variable in manifest.yaml",
                        v.name
                    ),
                ));
            }
        }
        // The app's address and port exist only when its web page is published on the device
        // (or it uses the device's network); otherwise they would reach the app empty.
        let needs_port = variables(&self.compose_text)
            .map_err(|e| err(&cf, e))?
            .into_iter()
            .find(|v| {
                ["HOMELAB_APP_PORT", "HOMELAB_APP_URL", "HOMELAB_APP_HOST"]
                    .contains(&v.name.as_str())
            });
        if let Some(v) = needs_port
            && self.web_port(&self.default_values()).is_none()
        {
            return Err(err(
                &cf,
                format!(
                    "${{{}}} needs the web page published on a port of the device (web.service \
                     “{}” has no published port for web.port {})",
                    v.name, m.web.service, m.web.port
                ),
            ));
        }
        // With defaults filled in, the file must still be valid Compose with numeric ports.
        let rendered =
            interpolate(&self.compose_text, &self.default_values()).map_err(|e| err(&cf, e))?;
        self.check_mounts(&self.default_values())
            .map_err(|e| err(&cf, e))?;
        let _: Compose = serde_norway::from_str(&rendered)
            .map_err(|e| err(&cf, format!("after filling in defaults: {e}")))?;
        for p in self.host_ports(&self.default_values()) {
            if p == 0 {
                return Err(err(
                    &cf,
                    "a published port is not a number after filling in defaults",
                ));
            }
        }
        Ok(())
    }

    /// A shareable recipe's own database service sits under the `own-database` profile, and
    /// nothing depends on it (a pooled app runs without it; its clients wait for the database
    /// by themselves), and some service reads the database's host variable.
    fn check_own_database(&self, cf: &str, db: &Database) -> Result<(), RecipeError> {
        let services = &self.compose.services.0;
        let Some(Some(own)) = services.get(&db.service) else {
            return Err(err(
                cf,
                format!(
                    "database.service “{}” is not a service in compose.yaml",
                    db.service
                ),
            ));
        };
        if own.profiles != [OWN_DATABASE_PROFILE] {
            return Err(err(
                cf,
                format!(
                    "services.{}: the app's own database must have `profiles: [{}]`, so it runs only when the app does not use the shared one",
                    db.service, OWN_DATABASE_PROFILE
                ),
            ));
        }
        for (name, svc) in services.iter().filter_map(|(n, s)| Some((n, s.as_ref()?))) {
            let needs = match &svc.depends_on {
                docker_compose_types::DependsOnOptions::Simple(list) => list.contains(&db.service),
                docker_compose_types::DependsOnOptions::Conditional(map) => {
                    map.contains_key(&db.service)
                }
            };
            if needs {
                return Err(err(
                    cf,
                    format!(
                        "services.{name}.depends_on: “{}” is not started when the app shares the device's database; remove it (the app waits for its database by itself)",
                        db.service
                    ),
                ));
            }
        }
        if self.database_clients().is_empty() {
            return Err(err(
                cf,
                format!(
                    "no service reads ${{{}}}: the database's host variable must reach the app",
                    db.env.host
                ),
            ));
        }
        Ok(())
    }

    /// The services that connect to the database: those whose environment uses its host
    /// variable (they join the shared instance's network when the app is pooled).
    pub fn database_clients(&self) -> Vec<String> {
        let Some(db) = &self.manifest.database else {
            return Vec::new();
        };
        let uses = |text: &str| {
            text.contains(&format!("${{{}}}", db.env.host))
                || text.contains(&format!("${{{}:", db.env.host))
                || text.contains(&format!("${{{}-", db.env.host))
        };
        self.compose
            .services
            .0
            .iter()
            .filter(|(name, _)| **name != db.service)
            .filter_map(|(name, svc)| Some((name, svc.as_ref()?)))
            .filter(|(_, svc)| match &svc.environment {
                docker_compose_types::Environment::List(list) => list.iter().any(|l| uses(l)),
                docker_compose_types::Environment::KvPair(map) => map
                    .values()
                    .any(|v| v.as_ref().map(|v| uses(&v.to_string())).unwrap_or(false)),
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn declared_variables(&self) -> BTreeSet<String> {
        let m = &self.manifest;
        let mut set: BTreeSet<String> = m.settings.iter().map(|s| s.name.clone()).collect();
        set.extend(m.secrets.iter().map(|s| s.name.clone()));
        if let Some(db) = &m.database {
            let e = &db.env;
            set.extend([
                e.host.clone(),
                e.name.clone(),
                e.user.clone(),
                e.password.clone(),
            ]);
            set.extend(e.port.clone());
        }
        set
    }

    /// Settings at their defaults, with example values for what is filled at deploy time
    /// (secrets, the box variables).
    pub fn default_values(&self) -> BTreeMap<String, String> {
        let mut v = example_box_values();
        v.extend(
            self.manifest
                .settings
                .iter()
                .map(|s| (s.name.clone(), s.default.clone())),
        );
        for s in &self.manifest.secrets {
            v.entry(s.name.clone())
                .or_insert_with(|| "x".repeat(s.length));
        }
        v
    }

    /// Refuses bind mounts of the device's root, its system folders or (unless the manifest
    /// declares it) the Docker socket, with `values` filled in; the error names the service, the
    /// mount and why. Runs at load with the defaults and at deploy with the chosen values.
    pub fn check_mounts(&self, values: &BTreeMap<String, String>) -> Result<(), String> {
        self.check_device_access()?;
        let declared = self.manifest.docker_socket;
        let fill = |text: &str| interpolate(text, values);
        for (name, svc) in &self.compose.services.0 {
            for v in svc.iter().flat_map(|s| &s.volumes) {
                let (spec, source, read_only) = match v {
                    Volumes::Simple(spec) => {
                        let filled = fill(spec)?;
                        let mut parts = filled.split(':');
                        let source = parts.next().unwrap_or_default().to_string();
                        let rest: Vec<&str> = parts.collect();
                        // "target" alone is an anonymous volume; a plain name is a named one.
                        let is_path = !rest.is_empty()
                            && (source.contains('/')
                                || source.starts_with('.')
                                || source.starts_with('~'));
                        if !is_path {
                            continue;
                        }
                        let read_only =
                            rest.len() >= 2 && rest[rest.len() - 1].split(',').any(|o| o == "ro");
                        (spec.clone(), source, read_only)
                    }
                    Volumes::Advanced(a) if a._type == "bind" => {
                        let source = fill(a.source.as_deref().unwrap_or_default())?;
                        (source.clone(), source, a.read_only)
                    }
                    Volumes::Advanced(_) => continue,
                };
                let mount = mounts::BindMount {
                    source: &source,
                    read_only,
                };
                mounts::check(&mount, declared)
                    .map_err(|why| format!("services.{name}.volumes: “{spec}” {why}"))?;
            }
        }
        // A named volume can be a bind mount in disguise: driver_opts `device: /path`.
        for (name, vol) in &self.compose.volumes.0 {
            let MapOrEmpty::Map(vol) = vol else { continue };
            let Some(Some(SingleValue::String(device))) = vol.driver_opts.get("device") else {
                continue;
            };
            let options = match vol.driver_opts.get("o") {
                Some(Some(SingleValue::String(o))) => fill(o)?,
                _ => String::new(),
            };
            let source = fill(device)?;
            let mount = mounts::BindMount {
                source: &source,
                read_only: options.split(',').any(|o| o == "ro"),
            };
            mounts::check(&mount, declared)
                .map_err(|why| format!("volumes.{name}.driver_opts.device {why}"))?;
        }
        Ok(())
    }

    /// Refuses Compose options that give a container the device itself, unless the manifest
    /// declares them (`device_access: true`, or `host_network: true` for the host's network).
    fn check_device_access(&self) -> Result<(), String> {
        let m = &self.manifest;
        for (name, svc) in &self.compose.services.0 {
            let Some(svc) = svc else { continue };
            let host = |v: &Option<String>| v.as_deref().is_some_and(|v| v.trim() == "host");
            let mut asks: Vec<&str> = Vec::new();
            if svc.privileged {
                asks.push("privileged: true");
            }
            if !svc.devices.is_empty() {
                asks.push("devices");
            }
            if !svc.cap_add.is_empty() {
                asks.push("cap_add");
            }
            if host(&svc.pid) {
                asks.push("pid: host");
            }
            if host(&svc.ipc) {
                asks.push("ipc: host");
            }
            if host(&svc.userns_mode) {
                asks.push("userns_mode: host");
            }
            if svc.security_opt.iter().any(|o| o.contains("unconfined")) {
                asks.push("security_opt …unconfined");
            }
            if !svc.volumes_from.is_empty() {
                // Another container's mounts, which this check never saw.
                asks.push("volumes_from");
            }
            if let Some(first) = asks.first().filter(|_| !m.device_access) {
                return Err(format!(
                    "services.{name}: “{first}” gives the app the whole device; a recipe that \
                     really needs it says `device_access: true` in manifest.yaml"
                ));
            }
            if host(&svc.network_mode) && !m.host_network {
                return Err(format!(
                    "services.{name}: “network_mode: host” needs `host_network: true` (and its \
                     `host_ports`) in manifest.yaml"
                ));
            }
        }
        Ok(())
    }

    /// The device port the app's web entry is published on, with these values.
    pub fn web_port(&self, values: &BTreeMap<String, String>) -> Option<u16> {
        let m = &self.manifest;
        if m.host_network {
            return Some(m.web.port);
        }
        let svc = self.compose.services.0.get(&m.web.service)?.as_ref()?;
        let docker_compose_types::Ports::Short(list) = &svc.ports else {
            return None;
        };
        list.iter().find_map(|p| {
            let p = interpolate(p, values).ok()?;
            let spec = p.split('/').next()?;
            let parts: Vec<&str> = spec.split(':').collect();
            let (host, target) = match parts.as_slice() {
                [.., h, t] => (*h, *t),
                _ => return None,
            };
            (target.parse::<u16>().ok()? == m.web.port)
                .then(|| host.parse().ok())
                .flatten()
        })
    }

    /// The host ports the app binds on its device with these values (0 where not numeric).
    /// Box variables not in `values` take example values: they never decide a port number.
    pub fn host_ports(&self, values: &BTreeMap<String, String>) -> Vec<u16> {
        let mut ports: Vec<u16> = self.manifest.host_ports.clone();
        ports.extend(self.published(values).into_iter().map(|(_, port)| port));
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The host ports published on one address of the device only (`ip:published:target`),
    /// which listeners on other addresses (loopback) do not clash with.
    pub fn address_bound_ports(&self, values: &BTreeMap<String, String>) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .published(values)
            .into_iter()
            .filter(|(bound, _)| *bound)
            .map(|(_, port)| port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Every published port of the Compose file: whether it is bound to an address, and its
    /// number (0 where it is not a number with these values).
    fn published(&self, values: &BTreeMap<String, String>) -> Vec<(bool, u16)> {
        let mut filled = example_box_values();
        filled.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut out = Vec::new();
        for svc in self.compose.services.0.values().flatten() {
            if let Ports::Short(list) = &svc.ports {
                for p in list {
                    let Ok(p) = interpolate(p, &filled) else {
                        out.push((false, 0));
                        continue;
                    };
                    // "[ip:]published:target[/proto]"
                    let parts: Vec<&str> = p.split('/').next().unwrap_or("").split(':').collect();
                    if parts.len() >= 2 {
                        let bound = parts.len() >= 3 && !parts[0].is_empty();
                        out.push((bound, parts[parts.len() - 2].parse().unwrap_or(0)));
                    }
                }
            }
        }
        out
    }
}

/// A version as numbers for comparing ("v1.2.10" → [1, 2, 10]; "30.0.4-apache" → [30, 0, 4]):
/// the dotted numbers at its start. None when it does not start with a number.
pub fn version_key(v: &str) -> Option<Vec<u64>> {
    let v = v.trim().trim_start_matches('v');
    let numeric: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let key: Vec<u64> = numeric.split('.').map_while(|p| p.parse().ok()).collect();
    (!key.is_empty()).then_some(key)
}

/// Whether `installed` is older than `min` (missing parts count as 0: 31 = 31.0.0).
pub fn older_than(installed: &str, min: &str) -> bool {
    let (Some(mut a), Some(mut b)) = (version_key(installed), version_key(min)) else {
        return false;
    };
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    a < b
}

/// Largest recipe file read (a manifest, a Compose file, an icon): generous for any real recipe,
/// small enough that a stray huge file cannot fill the memory.
const MAX_RECIPE_FILE: u64 = 256 * 1024;

/// Reads and validates the user recipe in folder `path` of the recipes folder `root`.
fn read_user_recipe(root: &Path, path: &Path) -> Result<Recipe, RecipeError> {
    let label = path.display().to_string();
    // The recipe folder itself must be in the recipes folder, not a link to elsewhere.
    let inside = |p: &Path, within: &Path| -> Result<std::path::PathBuf, String> {
        let real = p.canonicalize().map_err(|e| e.to_string())?;
        let within = within.canonicalize().map_err(|e| e.to_string())?;
        if real.starts_with(&within) && real != within {
            Ok(real)
        } else {
            Err(format!(
                "is a link to {}, outside {}; put the real file or folder there instead",
                real.display(),
                within.display()
            ))
        }
    };
    let folder = inside(path, root).map_err(|why| err(&label, why))?;
    let read = |name: &str| -> Result<Option<String>, RecipeError> {
        let file = path.join(name);
        let fe = |why: String| err(&format!("{label}/{name}"), why);
        match std::fs::symlink_metadata(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fe(e.to_string())),
            Ok(_) => {}
        }
        // A link is fine while it stays in the recipe's folder; one out of it could make the
        // recipe read (and the web page show) any file homelabd can read.
        let real = inside(&file, &folder).map_err(fe)?;
        let meta = std::fs::metadata(&real).map_err(|e| fe(e.to_string()))?;
        if !meta.is_file() {
            return Err(fe("is not a regular file".into()));
        }
        if meta.len() > MAX_RECIPE_FILE {
            return Err(fe(format!(
                "is {} bytes; a recipe file may be at most {MAX_RECIPE_FILE} bytes",
                meta.len()
            )));
        }
        std::fs::read_to_string(&real)
            .map(Some)
            .map_err(|e| fe(format!("cannot be read as text: {e}")))
    };
    let (Some(m), Some(c)) = (read("manifest.yaml")?, read("compose.yaml")?) else {
        return Err(err(&label, "needs manifest.yaml and compose.yaml"));
    };
    Recipe::parse(&label, &m, &c, read("icon.svg")?, Source::User)
}

/// All recipes, by slug, plus problems found in user recipes (built-in ones are tested).
#[derive(Debug, Default)]
pub struct Catalog {
    pub recipes: BTreeMap<String, Recipe>,
    pub problems: Vec<RecipeError>,
}

impl Catalog {
    /// Loads the built-in recipes and, if the folder exists, user recipes from `user_dir`.
    pub fn load(user_dir: Option<&Path>) -> Catalog {
        let mut catalog = Catalog::default();
        let mut slugs: BTreeSet<String> = BTreeSet::new();
        for f in Builtin::iter() {
            if let Some((slug, _)) = f.split_once('/') {
                slugs.insert(slug.to_string());
            }
        }
        for slug in slugs {
            let read = |name: &str| {
                Builtin::get(&format!("{slug}/{name}"))
                    .map(|f| String::from_utf8_lossy(&f.data).to_string())
            };
            let (Some(m), Some(c)) = (read("manifest.yaml"), read("compose.yaml")) else {
                catalog.problems.push(err(
                    &format!("recipes/{slug}"),
                    "needs manifest.yaml and compose.yaml",
                ));
                continue;
            };
            match Recipe::parse(
                &format!("recipes/{slug}"),
                &m,
                &c,
                read("icon.svg"),
                Source::Builtin,
            ) {
                Ok(r) => {
                    catalog.recipes.insert(r.manifest.slug.clone(), r);
                }
                Err(e) => catalog.problems.push(e),
            }
        }
        if let Some(dir) = user_dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for e in entries.flatten() {
                let path = e.path();
                if !path.is_dir() {
                    continue;
                }
                match read_user_recipe(dir, &path) {
                    Ok(r) => {
                        catalog.recipes.insert(r.manifest.slug.clone(), r);
                    }
                    Err(e) => catalog.problems.push(e),
                }
            }
        }
        for p in &catalog.problems {
            tracing::warn!(problem = %p, "a recipe could not be loaded");
        }
        catalog
    }
}
