//! Every URL, cookie, header and live-event name the web layer uses, in one place, so links in
//! templates and routes in code cannot drift apart silently (the route tests enumerate these).

pub const DASHBOARD: &str = "/";
pub const DEVICES: &str = "/devices";
pub const APPS: &str = "/apps";
pub const NETWORK: &str = "/network";
pub const NETWORK_NAMES: &str = "/network/names";
pub const NETWORK_SUFFIX: &str = "/network/names/suffix";
pub const NETWORK_PUBLIC: &str = "/network/names/public";
pub const NETWORK_PUBLIC_CLEAR: &str = "/network/names/public/clear";
pub const NETWORK_DNS: &str = "/network/dns";
// The DNS panel's parts and forms (views::network_dns).
pub const NETWORK_DNS_PROVIDER: &str = "/network/dns/provider";
pub const NETWORK_DNS_TEST: &str = "/network/dns/test";
pub const NETWORK_DNS_SAVE: &str = "/network/dns/save";
pub const NETWORK_DNS_FORGET: &str = "/network/dns/forget";
pub const NETWORK_DNS_SET_UP: &str = "/network/dns/set-up";
pub const NETWORK_DNS_PROTECTION: &str = "/network/dns/protection";
pub const NETWORK_DNS_QUERYLOG: &str = "/network/dns/querylog";
pub const NETWORK_DNS_LISTS: &str = "/network/dns/lists";
pub const NETWORK_DNS_LIST_REMOVE: &str = "/network/dns/lists/remove";
pub const NETWORK_DNS_LIST_TOGGLE: &str = "/network/dns/lists/toggle";
pub const NETWORK_DNS_LISTS_REFRESH: &str = "/network/dns/lists/refresh";
pub const NETWORK_ROUTER: &str = "/network/router";
pub const NETWORK_ROUTER_CONNECT: &str = "/network/router/connect";
pub const NETWORK_ROUTER_CONFIRM: &str = "/network/router/confirm";
pub const NETWORK_ROUTER_FORGET: &str = "/network/router/forget";
pub const NETWORK_ROUTER_CHECK_AGAIN: &str = "/network/router/check-again";
pub const NETWORK_ROUTER_TRAFFIC: &str = "/network/router/traffic";
pub const DASHBOARD_NETWORK: &str = "/dashboard/network";
pub const BACKUPS: &str = "/backups";
// The Backups page's parts and forms (views::backups). The destinations' list is its GET.
pub const BACKUPS_DESTINATIONS: &str = "/backups/destinations";
pub const BACKUPS_DESTINATION_CHECK: &str = "/backups/destinations/{id}/check";
pub const BACKUPS_DESTINATION_CHECK_ALL: &str = "/backups/destinations/{id}/check-all";
pub const BACKUPS_DESTINATION_REMOVE: &str = "/backups/destinations/{id}/remove";
pub const BACKUPS_APPS: &str = "/backups/apps";
pub const BACKUPS_SCHEDULE: &str = "/backups/schedule";
pub const DASHBOARD_BACKUPS: &str = "/dashboard/backups";
pub const DASHBOARD_RESTORED_DISMISS: &str = "/dashboard/restored/dismiss";
pub const BACKUPS_BOX: &str = "/backups/box";
pub const BACKUPS_BOX_PASSPHRASE: &str = "/backups/box/passphrase";
pub const BACKUPS_RECOVERY_SHEET: &str = "/backups/recovery-sheet";
pub const SETUP_RESTORE: &str = "/setup/restore";
pub const SETTINGS: &str = "/settings";
pub const DEVICES_CARDS: &str = "/devices/cards";
pub const DEVICES_NEW: &str = "/devices/new";
pub const DEVICES_TEST: &str = "/devices/test";
pub const DEVICES_SCAN: &str = "/devices/scan";
pub const DEVICES_INSTALL_DOCKER: &str = "/devices/install-docker";
pub const DEVICE: &str = "/devices/{id}";
pub const DEVICE_REMOVE: &str = "/devices/{id}/remove";
pub const DEVICE_EDIT: &str = "/devices/{id}/edit";
pub const DEVICE_LOGIN: &str = "/devices/{id}/login";
pub const DEVICE_TRUST_KEY: &str = "/devices/{id}/trust-key";
pub const DEVICE_REFRESH: &str = "/devices/{id}/refresh";
// A device's shared databases (`pool/`): restart one, remove one no app uses.
pub const DEVICE_SHARED: &str = "/devices/{id}/shared";
pub const DEVICE_SHARED_RESTART: &str = "/devices/{id}/shared/{engine}/restart";
pub const DEVICE_SHARED_REMOVE: &str = "/devices/{id}/shared/{engine}/remove";
pub const DASHBOARD_POOL: &str = "/dashboard/pool";
pub const APPS_GRID: &str = "/apps/grid";
pub const APP: &str = "/apps/{slug}";
pub const APP_ICON: &str = "/apps/{slug}/icon.svg";
pub const APP_DEPLOY: &str = "/apps/{slug}/deploy";
pub const APP_PLAN: &str = "/apps/{slug}/plan";
pub const APP_ACTION: &str = "/apps/{slug}/action/{action}";
pub const APP_REMOVE: &str = "/apps/{slug}/remove";
pub const APP_LOGS: &str = "/apps/{slug}/logs";
pub const APP_SECRETS: &str = "/apps/{slug}/secrets";
pub const APP_SIGN_IN: &str = "/apps/{slug}/sign-in";
pub const APP_NAME: &str = "/apps/{slug}/name";
pub const APP_NAME_RETRY: &str = "/apps/{slug}/name/retry";
// An app's backups (views::backups): back up now, its snapshots (loaded after the page),
// restore one, its schedule.
pub const APP_BACK_UP: &str = "/apps/{slug}/back-up";
pub const APP_BACKUP_SCHEDULE: &str = "/apps/{slug}/backup-schedule";
pub const APP_SNAPSHOTS: &str = "/apps/{slug}/snapshots";
pub const APP_RESTORE: &str = "/apps/{slug}/restore";
// Browsing one of an app's snapshots (views::browse): a folder's entries (`?path=`), and one
// file downloaded from it.
pub const APP_SNAPSHOT_FILES: &str = "/apps/{slug}/snapshots/{dest}/{snapshot}/files";
pub const APP_SNAPSHOT_FILE: &str = "/apps/{slug}/snapshots/{dest}/{snapshot}/file";
// Moving an app to another device (views::moving): the page and its form, and the dashboard's
// advice to move an app off a device that is nearly full (refreshed live).
pub const APP_MOVE: &str = "/apps/{slug}/move";
pub const DASHBOARD_ADVICE: &str = "/dashboard/advice";
pub const DEPLOYMENT: &str = "/deployments/{id}";
pub const DEPLOYMENT_PROGRESS: &str = "/deployments/{id}/progress";
pub const API_APPLICATIONS: &str = "/api/v1/applications";
pub const API_APPLICATION: &str = "/api/v1/applications/{slug}";
pub const API_APPLICATION_DEPLOY: &str = "/api/v1/applications/{slug}/deploy";
pub const API_APPLICATION_ACTION: &str = "/api/v1/applications/{slug}/{action}";
pub const API_APPLICATION_LOGS: &str = "/api/v1/applications/{slug}/logs";
pub const API_DEPLOYMENTS: &str = "/api/v1/deployments";
pub const API_BACKUP_DESTINATIONS: &str = "/api/v1/backups/destinations";
pub const API_BACKUP_DISKS: &str = "/api/v1/backups/disks";
pub const API_BACKUP_DESTINATION: &str = "/api/v1/backups/destinations/{id}";
pub const API_BACKUP_DESTINATION_CHECK: &str = "/api/v1/backups/destinations/{id}/check";
pub const API_BACKUP_APP: &str = "/api/v1/backups/apps/{slug}";
pub const API_BACKUP_APP_RESTORE: &str = "/api/v1/backups/apps/{slug}/restore";
/// A folder of one of an app's snapshots (`?path=`).
pub const API_BACKUP_APP_SNAPSHOT_FILES: &str =
    "/api/v1/backups/apps/{slug}/snapshots/{dest}/{snapshot}/files";
/// Moving an app to another device (its data through a backup).
pub const API_BACKUP_APP_MOVE: &str = "/api/v1/backups/apps/{slug}/move";
pub const API_BACKUP_APP_POLICY: &str = "/api/v1/backups/apps/{slug}/policy";
pub const API_BACKUP_POLICY: &str = "/api/v1/backups/policy";
pub const API_BACKUP_BOX: &str = "/api/v1/backups/box";
pub const API_BACKUP_BOX_PASSPHRASE: &str = "/api/v1/backups/box/passphrase";
pub const API_CONFIG_EXPORT: &str = "/api/v1/config/export";
pub const API_CONFIG_IMPORT: &str = "/api/v1/config/import";
pub const API_CONFIG_HISTORY: &str = "/api/v1/config/history";
pub const API_CONFIG_REVISION: &str = "/api/v1/config/history/{id}";
pub const API_CONFIG_REVERT: &str = "/api/v1/config/history/{id}/revert";
pub const API_SETUP_RESTORE: &str = "/api/v1/setup/restore";
pub const API_BACKUP_DESTINATION_MAINTAIN: &str = "/api/v1/backups/destinations/{id}/maintain";
pub const API_DEPLOYMENT: &str = "/api/v1/deployments/{id}";
pub const API_DEVICES: &str = "/api/v1/devices";
pub const API_DEVICES_TEST: &str = "/api/v1/devices/test";
pub const API_UPDATE: &str = "/api/v1/system/update";
pub const API_UPDATE_BUNDLE: &str = "/api/v1/system/update/bundle";
pub const API_UPDATE_INSTALL: &str = "/api/v1/system/update/install";
pub const API_UPDATE_REBOOT: &str = "/api/v1/system/update/reboot";
pub const API_UPDATE_CHANNEL: &str = "/api/v1/system/update/channel";
pub const API_UPDATE_CHECK: &str = "/api/v1/system/update/check";
pub const API_UPDATE_DOWNLOAD: &str = "/api/v1/system/update/download";
pub const UPDATES: &str = "/settings/updates";
pub const UPDATES_PANEL: &str = "/settings/updates/panel";
pub const UPDATES_INSTALL: &str = "/settings/updates/install";
pub const UPDATES_DISCARD: &str = "/settings/updates/discard";
pub const UPDATES_REBOOT: &str = "/settings/updates/reboot";
pub const UPDATES_CHANNEL: &str = "/settings/updates/channel";
pub const UPDATES_CHECK: &str = "/settings/updates/check";
pub const UPDATES_DOWNLOAD: &str = "/settings/updates/download";
pub const API_DEVICES_INSTALL_DOCKER: &str = "/api/v1/devices/install-docker";
pub const API_DEVICES_REFRESH: &str = "/api/v1/devices/refresh";
pub const API_DEVICE: &str = "/api/v1/devices/{id}";
pub const API_DEVICE_SHARED: &str = "/api/v1/devices/{id}/shared-databases";
pub const API_DEVICE_SHARED_ONE: &str = "/api/v1/devices/{id}/shared-databases/{engine}";
pub const API_DEVICE_SHARED_RESTART: &str =
    "/api/v1/devices/{id}/shared-databases/{engine}/restart";
pub const SETTINGS_MODE: &str = "/settings/mode";
pub const SETTINGS_PASSWORD: &str = "/settings/password";
pub const SETTINGS_SIGN_OUT_ALL: &str = "/settings/sessions/sign-out-all";
pub const SETTINGS_TOKENS: &str = "/settings/tokens";
pub const SETTINGS_TOKEN_REVOKE: &str = "/settings/tokens/{id}/revoke";
pub const SETTINGS_HOST_NAMES: &str = "/settings/names";
pub const SETTINGS_CERTIFICATE: &str = "/settings/certificate.pem";
pub const SETTINGS_TRUST: &str = "/settings/trust";
pub const SETTINGS_TRUST_PEM: &str = "/settings/trust/homelab-root.pem";
pub const SETTINGS_TRUST_DER: &str = "/settings/trust/homelab-root.crt";
pub const SETTINGS_HISTORY: &str = "/settings/history";
pub const SETTINGS_HISTORY_LIST: &str = "/settings/history/list";
pub const SETTINGS_REVISION: &str = "/settings/history/{id}";
pub const SETTINGS_REVISION_REVERT: &str = "/settings/history/{id}/revert";
pub const SETTINGS_CONFIG: &str = "/settings/configuration";
pub const SETTINGS_CONFIG_EXPORT: &str = "/settings/configuration/export";
pub const SETTINGS_CONFIG_FILE: &str = "/settings/configuration/file";
pub const SETTINGS_CONFIG_IMPORT: &str = "/settings/configuration/import";
pub const SETTINGS_CONFIG_PREVIEW: &str = "/settings/configuration/preview";
pub const SETTINGS_CONFIG_APPLY: &str = "/settings/configuration/apply";
pub const SETUP: &str = "/setup";
pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";
pub const EVENTS: &str = "/events";
pub const HEALTHZ: &str = "/healthz";
pub const METRICS: &str = "/metrics";
pub const STATIC: &str = "/static/{*path}";
/// Every static asset lives under this prefix.
pub const STATIC_PREFIX: &str = "/static/";
pub const API_PREFIX: &str = "/api/";
pub const API_HEALTH: &str = "/api/v1/system/health";
pub const API_VERSION: &str = "/api/v1/system/version";
pub const API_FALLBACK: &str = "/api/{*rest}";

/// Cookie names.
pub mod cookie {
    /// The browser session token (HttpOnly, SameSite=Strict, Secure under HTTPS).
    pub const SESSION: &str = "homelab_session";
    /// Marks a browser that signed in successfully, so a stranger's failed sign-ins cannot
    /// lock it out (same flags as the session cookie, long-lived; see `auth::login`).
    pub const KNOWN_BROWSER: &str = "homelab_browser";
}

/// Header names beyond the standard ones.
pub mod header {
    pub const CSRF: &str = "x-csrf-token";
    pub const REQUEST_ID: &str = "x-request-id";
    pub const HX_REQUEST: &str = "hx-request";
    pub const HX_BOOSTED: &str = "hx-boosted";
    pub const HX_HISTORY_RESTORE: &str = "hx-history-restore-request";
    pub const HX_REDIRECT: &str = "hx-redirect";
    pub const HX_REFRESH: &str = "hx-refresh";
    pub const HX_RETARGET: &str = "hx-retarget";
    pub const HX_RESWAP: &str = "hx-reswap";
    /// The event sequence a response was rendered at (see `events::EventBus`): the page's
    /// script compares it with the live stream to fetch again what it may have missed.
    pub const SINCE: &str = "x-homelab-since";
}

/// Form field carrying the CSRF token for plain (non-htmx) forms.
pub const CSRF_FIELD: &str = "csrf_token";

/// Names of server-sent events; templates subscribe with `sse-swap="<name>"`.
pub mod sse_event {
    pub const TOAST: &str = "toast";
    pub const AUDIT: &str = "audit";
    pub const DEVICES: &str = "devices";
    pub const DEPLOY: &str = "deploy";
    pub const APPS: &str = "apps";
    pub const UPDATE: &str = "update";
    /// The first event of every stream: the last sequence number of each topic above.
    pub const HELLO: &str = "hello";
    /// The last event of a stream whose session ended: the page closes the stream itself
    /// (so the browser reports no broken connection) and goes to the sign-in page.
    pub const SIGNED_OUT: &str = "signed-out";
}

// ---- browsing a backup's files: addresses with their parameters filled in ----

fn with_params(template: &str, slug: &str, dest: i64, snapshot: &str) -> String {
    template
        .replace("{slug}", slug)
        .replace("{dest}", &dest.to_string())
        .replace("{snapshot}", snapshot)
}

fn query(path: &str) -> String {
    serde_urlencoded::to_string([("path", path)]).unwrap_or_default()
}

/// Where a folder of a snapshot opens.
pub fn files_href(slug: &str, dest: i64, snapshot: &str, path: &str) -> String {
    format!(
        "{}?{}",
        with_params(APP_SNAPSHOT_FILES, slug, dest, snapshot),
        query(path)
    )
}

/// Where a file of a snapshot downloads.
pub fn file_href(slug: &str, dest: i64, snapshot: &str, path: &str) -> String {
    format!(
        "{}?{}",
        with_params(APP_SNAPSHOT_FILE, slug, dest, snapshot),
        query(path)
    )
}
