//! The route table. Every route is declared once here with its method, path and [`Access`];
//! the router is built from the table and the guard enforces the access level, so a route
//! cannot exist without an access decision, and tests enumerate the same table.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

use super::access::Access;
use super::context::Scheme;
use super::{AppState, api, assets, guard, hosts, metrics, observe, paths, sse, views};
use crate::limits;

/// One row of the route table.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

struct Entry {
    info: RouteInfo,
    handler: MethodRouter<AppState>,
}

fn entry<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Entry
where
    H: Handler<T, AppState>,
    T: 'static,
{
    // Every method used below is a standard one, which MethodFilter always accepts.
    let filter = MethodFilter::try_from(method.clone()).expect("standard HTTP method");
    Entry {
        info: RouteInfo {
            method,
            path,
            access,
        },
        handler: on(filter, handler),
    }
}

fn table() -> Vec<Entry> {
    use Access::*;
    use Method as M;
    vec![
        // Public
        entry(M::GET, paths::HEALTHZ, Public, api::healthz),
        entry(M::GET, paths::STATIC, Public, assets::serve),
        entry(M::GET, paths::SETUP, Public, views::auth::setup_page),
        entry(M::POST, paths::SETUP, Public, views::auth::setup_submit),
        // A new box restored from the old one's backup: gated like claiming it (not claimed
        // yet; the setup code after the open window).
        entry(
            M::POST,
            paths::API_SETUP_RESTORE,
            Public,
            api::recovery::restore,
        ),
        entry(
            M::GET,
            paths::SETUP_RESTORE,
            Public,
            views::recovery::restore_page,
        ),
        entry(
            M::POST,
            paths::SETUP_RESTORE,
            Public,
            views::recovery::restore_submit,
        ),
        entry(M::GET, paths::LOGIN, Public, views::auth::login_page),
        entry(M::POST, paths::LOGIN, Public, views::auth::login_submit),
        // Pages
        entry(M::POST, paths::LOGOUT, Session, views::auth::logout),
        entry(M::GET, paths::DASHBOARD, Session, views::pages::dashboard),
        entry(M::GET, paths::DEVICES, Session, views::devices::list),
        entry(M::GET, paths::DEVICES_CARDS, Session, views::devices::cards),
        entry(
            M::GET,
            paths::DEVICES_NEW,
            Session,
            views::devices::new_form,
        ),
        entry(M::POST, paths::DEVICES_TEST, Session, views::devices::test),
        entry(M::GET, paths::DEVICES_SCAN, Session, views::devices::scan),
        entry(
            M::POST,
            paths::DEVICES_INSTALL_DOCKER,
            Session,
            views::devices::install_docker,
        ),
        entry(M::POST, paths::DEVICES, Session, views::devices::add),
        entry(M::GET, paths::DEVICE, Session, views::devices::show),
        entry(
            M::POST,
            paths::DEVICE_REFRESH,
            Session,
            views::devices::refresh,
        ),
        entry(
            M::GET,
            paths::DEVICE_SHARED,
            Session,
            views::devices::shared,
        ),
        entry(
            M::POST,
            paths::DEVICE_SHARED_RESTART,
            Session,
            views::devices::shared_restart,
        ),
        entry(
            M::POST,
            paths::DEVICE_SHARED_REMOVE,
            Session,
            views::devices::shared_remove,
        ),
        entry(
            M::POST,
            paths::DEVICE_TRUST_KEY,
            Session,
            views::devices::trust_key,
        ),
        entry(
            M::POST,
            paths::DEVICE_REMOVE,
            Session,
            views::devices::remove,
        ),
        entry(M::POST, paths::DEVICE_EDIT, Session, views::devices::edit),
        entry(
            M::POST,
            paths::DEVICE_LOGIN,
            Session,
            views::devices::change_login,
        ),
        entry(M::GET, paths::DASHBOARD_POOL, Session, views::devices::pool),
        entry(M::GET, paths::APPS, Session, views::apps::list),
        entry(M::GET, paths::APPS_GRID, Session, views::apps::grid),
        entry(M::GET, paths::APP, Session, views::apps::show),
        entry(M::GET, paths::APP_ICON, Session, views::apps::icon),
        entry(M::GET, paths::APP_PLAN, Session, views::deploy::plan),
        entry(M::POST, paths::APP_DEPLOY, Session, views::deploy::deploy),
        entry(M::POST, paths::APP_ACTION, Session, views::deploy::action),
        entry(M::POST, paths::APP_REMOVE, Session, views::deploy::remove),
        entry(M::GET, paths::APP_LOGS, Session, views::deploy::logs),
        entry(M::POST, paths::APP_SECRETS, Session, views::deploy::secrets),
        entry(M::POST, paths::APP_SIGN_IN, Session, views::deploy::sign_in),
        entry(M::POST, paths::APP_NAME, Session, views::deploy::rename),
        entry(
            M::POST,
            paths::APP_NAME_RETRY,
            Session,
            views::deploy::retry_name,
        ),
        entry(M::GET, paths::DEPLOYMENT, Session, views::deploy::show),
        entry(
            M::GET,
            paths::DEPLOYMENT_PROGRESS,
            Session,
            views::deploy::progress,
        ),
        entry(M::GET, paths::NETWORK, Session, views::network::show),
        entry(M::GET, paths::NETWORK_NAMES, Session, views::network::names),
        entry(
            M::POST,
            paths::NETWORK_SUFFIX,
            Session,
            views::network::set_suffix,
        ),
        entry(
            M::POST,
            paths::NETWORK_PUBLIC,
            Session,
            views::network::set_public,
        ),
        entry(
            M::POST,
            paths::NETWORK_PUBLIC_CLEAR,
            Session,
            views::network::clear_public,
        ),
        entry(
            M::GET,
            paths::NETWORK_DNS,
            Session,
            views::network_dns::panel,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_PROVIDER,
            Session,
            views::network_dns::set_provider,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_TEST,
            Session,
            views::network_dns::test,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_SAVE,
            Session,
            views::network_dns::save,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_FORGET,
            Session,
            views::network_dns::forget,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_SET_UP,
            Session,
            views::network_dns::set_up,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_PROTECTION,
            Session,
            views::network_dns::protection,
        ),
        entry(
            M::GET,
            paths::NETWORK_DNS_QUERYLOG,
            Session,
            views::network_dns::querylog,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_LISTS,
            Session,
            views::network_dns::add_list,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_LIST_REMOVE,
            Session,
            views::network_dns::remove_list,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_LIST_TOGGLE,
            Session,
            views::network_dns::toggle_list,
        ),
        entry(
            M::POST,
            paths::NETWORK_DNS_LISTS_REFRESH,
            Session,
            views::network_dns::refresh_lists,
        ),
        entry(
            M::GET,
            paths::NETWORK_ROUTER,
            Session,
            views::network_router::panel,
        ),
        entry(
            M::GET,
            paths::NETWORK_ROUTER_TRAFFIC,
            Session,
            views::network_router::traffic,
        ),
        entry(
            M::POST,
            paths::NETWORK_ROUTER_CONNECT,
            Session,
            views::network_router::connect,
        ),
        entry(
            M::POST,
            paths::NETWORK_ROUTER_CONFIRM,
            Session,
            views::network_router::confirm,
        ),
        entry(
            M::POST,
            paths::NETWORK_ROUTER_CHECK_AGAIN,
            Session,
            views::network_router::check_again,
        ),
        entry(
            M::POST,
            paths::NETWORK_ROUTER_FORGET,
            Session,
            views::network_router::forget,
        ),
        entry(
            M::GET,
            paths::DASHBOARD_NETWORK,
            Session,
            views::network_router::card,
        ),
        entry(M::GET, paths::BACKUPS, Session, views::backups::show),
        entry(
            M::GET,
            paths::BACKUPS_BOX,
            Session,
            views::recovery::box_part,
        ),
        entry(
            M::POST,
            paths::BACKUPS_BOX,
            Session,
            views::recovery::back_up_now,
        ),
        entry(
            M::POST,
            paths::BACKUPS_BOX_PASSPHRASE,
            Session,
            views::recovery::set_passphrase,
        ),
        entry(
            M::GET,
            paths::BACKUPS_RECOVERY_SHEET,
            Session,
            views::recovery::recovery_sheet,
        ),
        entry(
            M::POST,
            paths::DASHBOARD_RESTORED_DISMISS,
            Session,
            views::recovery::dismiss_restored,
        ),
        entry(
            M::GET,
            paths::BACKUPS_APPS,
            Session,
            views::backups::apps_part,
        ),
        entry(
            M::GET,
            paths::BACKUPS_DESTINATIONS,
            Session,
            views::backups::destinations_part,
        ),
        entry(
            M::POST,
            paths::BACKUPS_DESTINATIONS,
            Session,
            views::backups::add_destination,
        ),
        entry(
            M::POST,
            paths::BACKUPS_DESTINATION_CHECK_ALL,
            Session,
            views::backups::check_all,
        ),
        entry(
            M::POST,
            paths::BACKUPS_SCHEDULE,
            Session,
            views::backups::set_schedule,
        ),
        entry(
            M::POST,
            paths::BACKUPS_DESTINATION_CHECK,
            Session,
            views::backups::check_destination,
        ),
        entry(
            M::POST,
            paths::BACKUPS_DESTINATION_REMOVE,
            Session,
            views::backups::remove_destination,
        ),
        entry(
            M::GET,
            paths::DASHBOARD_BACKUPS,
            Session,
            views::backups::dashboard_card,
        ),
        entry(
            M::POST,
            paths::APP_BACK_UP,
            Session,
            views::backups::back_up,
        ),
        entry(
            M::GET,
            paths::APP_SNAPSHOTS,
            Session,
            views::backups::snapshots,
        ),
        entry(
            M::POST,
            paths::APP_RESTORE,
            Session,
            views::backups::restore,
        ),
        entry(
            M::GET,
            paths::APP_SNAPSHOT_FILES,
            Session,
            views::browse::files,
        ),
        entry(
            M::GET,
            paths::APP_SNAPSHOT_FILE,
            Session,
            views::browse::download,
        ),
        entry(M::GET, paths::APP_MOVE, Session, views::moving::show),
        entry(M::POST, paths::APP_MOVE, Session, views::moving::submit),
        entry(
            M::GET,
            paths::DASHBOARD_ADVICE,
            Session,
            views::moving::advice_part,
        ),
        entry(
            M::POST,
            paths::APP_BACKUP_SCHEDULE,
            Session,
            views::backups::set_app_schedule,
        ),
        entry(M::GET, paths::SETTINGS, Session, views::settings::show),
        entry(
            M::POST,
            paths::SETTINGS_MODE,
            Session,
            views::settings::set_mode,
        ),
        entry(
            M::POST,
            paths::SETTINGS_PASSWORD,
            Session,
            views::settings::change_password,
        ),
        entry(
            M::POST,
            paths::SETTINGS_SIGN_OUT_ALL,
            Session,
            views::settings::sign_out_everywhere,
        ),
        entry(
            M::POST,
            paths::SETTINGS_TOKENS,
            Session,
            views::settings::create_token,
        ),
        entry(
            M::POST,
            paths::SETTINGS_TOKEN_REVOKE,
            Session,
            views::settings::revoke_token,
        ),
        entry(
            M::POST,
            paths::SETTINGS_HOST_NAMES,
            Session,
            views::settings::save_host_names,
        ),
        entry(
            M::GET,
            paths::SETTINGS_CERTIFICATE,
            Session,
            views::settings::certificate,
        ),
        entry(M::GET, paths::SETTINGS_TRUST, Session, views::trust::show),
        entry(
            M::GET,
            paths::SETTINGS_TRUST_PEM,
            Session,
            views::trust::root_pem,
        ),
        entry(
            M::GET,
            paths::SETTINGS_TRUST_DER,
            Session,
            views::trust::root_der,
        ),
        entry(
            M::GET,
            paths::SETTINGS_HISTORY,
            Session,
            views::history::show,
        ),
        entry(
            M::GET,
            paths::SETTINGS_HISTORY_LIST,
            Session,
            views::history::list,
        ),
        entry(
            M::GET,
            paths::SETTINGS_REVISION,
            Session,
            views::history::revision,
        ),
        entry(
            M::POST,
            paths::SETTINGS_REVISION_REVERT,
            Session,
            views::history::revert,
        ),
        entry(
            M::GET,
            paths::SETTINGS_CONFIG,
            Session,
            views::history::configuration,
        ),
        entry(
            M::POST,
            paths::SETTINGS_CONFIG_EXPORT,
            Session,
            views::history::export,
        ),
        entry(
            M::POST,
            paths::SETTINGS_CONFIG_FILE,
            Session,
            views::history::upload,
        ),
        entry(
            M::GET,
            paths::SETTINGS_CONFIG_IMPORT,
            Session,
            views::history::import_panel,
        ),
        entry(
            M::POST,
            paths::SETTINGS_CONFIG_PREVIEW,
            Session,
            views::history::preview,
        ),
        entry(
            M::POST,
            paths::SETTINGS_CONFIG_APPLY,
            Session,
            views::history::apply,
        ),
        entry(M::GET, paths::UPDATES, Session, views::updates::show),
        entry(M::GET, paths::UPDATES_PANEL, Session, views::updates::panel),
        entry(
            M::POST,
            paths::UPDATES_INSTALL,
            Session,
            views::updates::install,
        ),
        entry(
            M::POST,
            paths::UPDATES_DISCARD,
            Session,
            views::updates::discard,
        ),
        entry(
            M::POST,
            paths::UPDATES_REBOOT,
            Session,
            views::updates::reboot,
        ),
        entry(
            M::POST,
            paths::UPDATES_CHANNEL,
            Session,
            views::updates::save_channel,
        ),
        entry(
            M::POST,
            paths::UPDATES_CHECK,
            Session,
            views::updates::check,
        ),
        entry(
            M::POST,
            paths::UPDATES_DOWNLOAD,
            Session,
            views::updates::download,
        ),
        entry(M::GET, paths::EVENTS, Session, sse::events),
        // Machines
        entry(M::GET, paths::API_HEALTH, SessionOrToken, api::health),
        entry(M::GET, paths::API_VERSION, SessionOrToken, api::version),
        entry(
            M::GET,
            paths::API_DEVICES,
            SessionOrToken,
            api::devices::devices,
        ),
        entry(
            M::POST,
            paths::API_DEVICES,
            SessionOrToken,
            api::devices::add_device,
        ),
        entry(
            M::POST,
            paths::API_DEVICES_TEST,
            SessionOrToken,
            api::devices::test_device,
        ),
        entry(
            M::POST,
            paths::API_DEVICES_INSTALL_DOCKER,
            SessionOrToken,
            api::devices::install_docker,
        ),
        entry(
            M::POST,
            paths::API_DEVICES_REFRESH,
            SessionOrToken,
            api::devices::refresh_devices,
        ),
        entry(
            M::GET,
            paths::API_DEVICE,
            SessionOrToken,
            api::devices::device,
        ),
        entry(
            M::DELETE,
            paths::API_DEVICE,
            SessionOrToken,
            api::devices::remove_device,
        ),
        entry(
            M::GET,
            paths::API_DEVICE_SHARED,
            SessionOrToken,
            api::devices::shared_databases,
        ),
        entry(
            M::POST,
            paths::API_DEVICE_SHARED_RESTART,
            SessionOrToken,
            api::devices::restart_shared_database,
        ),
        entry(
            M::DELETE,
            paths::API_DEVICE_SHARED_ONE,
            SessionOrToken,
            api::devices::remove_shared_database,
        ),
        entry(
            M::GET,
            paths::API_BACKUP_DESTINATIONS,
            SessionOrToken,
            api::backups::destinations,
        ),
        entry(
            M::POST,
            paths::API_BACKUP_DESTINATIONS,
            SessionOrToken,
            api::backups::add_destination,
        ),
        entry(
            M::GET,
            paths::API_BACKUP_DISKS,
            SessionOrToken,
            api::backups::disks,
        ),
        entry(
            M::DELETE,
            paths::API_BACKUP_DESTINATION,
            SessionOrToken,
            api::backups::remove_destination,
        ),
        entry(
            M::POST,
            paths::API_BACKUP_DESTINATION_MAINTAIN,
            SessionOrToken,
            api::backups::maintain_destination,
        ),
        entry(
            M::GET,
            paths::API_BACKUP_BOX,
            SessionOrToken,
            api::recovery::status,
        ),
        entry(
            M::POST,
            paths::API_BACKUP_BOX,
            SessionOrToken,
            api::recovery::back_up,
        ),
        entry(
            M::PUT,
            paths::API_BACKUP_BOX_PASSPHRASE,
            SessionOrToken,
            api::recovery::set_passphrase,
        ),
        entry(
            M::POST,
            paths::API_CONFIG_EXPORT,
            SessionOrToken,
            api::history::export,
        ),
        entry(
            M::POST,
            paths::API_CONFIG_IMPORT,
            SessionOrToken,
            api::history::import,
        ),
        entry(
            M::GET,
            paths::API_CONFIG_HISTORY,
            SessionOrToken,
            api::history::revisions,
        ),
        entry(
            M::GET,
            paths::API_CONFIG_REVISION,
            SessionOrToken,
            api::history::revision,
        ),
        entry(
            M::POST,
            paths::API_CONFIG_REVERT,
            SessionOrToken,
            api::history::revert,
        ),
        entry(
            M::GET,
            paths::API_BACKUP_POLICY,
            SessionOrToken,
            api::backups::default_policy,
        ),
        entry(
            M::PUT,
            paths::API_BACKUP_POLICY,
            SessionOrToken,
            api::backups::set_default_policy,
        ),
        entry(
            M::PUT,
            paths::API_BACKUP_APP_POLICY,
            SessionOrToken,
            api::backups::set_app_policy,
        ),
        entry(
            M::POST,
            paths::API_BACKUP_DESTINATION_CHECK,
            SessionOrToken,
            api::backups::check_destination,
        ),
        entry(
            M::GET,
            paths::API_BACKUP_APP,
            SessionOrToken,
            api::backups::app_backups,
        ),
        entry(
            M::POST,
            paths::API_BACKUP_APP,
            SessionOrToken,
            api::backups::back_up,
        ),
        entry(
            M::POST,
            paths::API_BACKUP_APP_RESTORE,
            SessionOrToken,
            api::backups::restore,
        ),
        entry(
            M::GET,
            paths::API_BACKUP_APP_SNAPSHOT_FILES,
            SessionOrToken,
            api::backups::snapshot_files,
        ),
        entry(
            M::POST,
            paths::API_BACKUP_APP_MOVE,
            SessionOrToken,
            api::backups::move_app,
        ),
        entry(
            M::GET,
            paths::API_APPLICATIONS,
            SessionOrToken,
            api::apps::applications,
        ),
        entry(
            M::GET,
            paths::API_APPLICATION,
            SessionOrToken,
            api::apps::application,
        ),
        entry(
            M::DELETE,
            paths::API_APPLICATION,
            SessionOrToken,
            api::apps::remove,
        ),
        entry(
            M::POST,
            paths::API_APPLICATION_DEPLOY,
            SessionOrToken,
            api::apps::deploy,
        ),
        entry(
            M::POST,
            paths::API_APPLICATION_ACTION,
            SessionOrToken,
            api::apps::action,
        ),
        entry(
            M::GET,
            paths::API_APPLICATION_LOGS,
            SessionOrToken,
            api::apps::logs,
        ),
        entry(
            M::GET,
            paths::API_DEPLOYMENTS,
            SessionOrToken,
            api::apps::deployments,
        ),
        entry(
            M::GET,
            paths::API_DEPLOYMENT,
            SessionOrToken,
            api::apps::deployment,
        ),
        entry(
            M::GET,
            paths::API_UPDATE,
            SessionOrToken,
            api::updates::status,
        ),
        entry(
            M::POST,
            paths::API_UPDATE_BUNDLE,
            SessionOrToken,
            api::updates::upload,
        ),
        entry(
            M::POST,
            paths::API_UPDATE_INSTALL,
            SessionOrToken,
            api::updates::install,
        ),
        entry(
            M::POST,
            paths::API_UPDATE_REBOOT,
            SessionOrToken,
            api::updates::reboot,
        ),
        entry(
            M::GET,
            paths::API_UPDATE_CHANNEL,
            SessionOrToken,
            api::updates::channel,
        ),
        entry(
            M::PUT,
            paths::API_UPDATE_CHANNEL,
            SessionOrToken,
            api::updates::set_channel,
        ),
        entry(
            M::POST,
            paths::API_UPDATE_CHECK,
            SessionOrToken,
            api::updates::check,
        ),
        entry(
            M::POST,
            paths::API_UPDATE_DOWNLOAD,
            SessionOrToken,
            api::updates::download,
        ),
        entry(M::GET, paths::METRICS, Token, metrics::endpoint),
        // Unknown API paths answer with a JSON 404, but only to callers who are signed in.
        entry(M::GET, paths::API_FALLBACK, SessionOrToken, api::not_found),
    ]
}

/// The route table, for tests and documentation.
pub fn route_table() -> Vec<RouteInfo> {
    table().into_iter().map(|e| e.info).collect()
}

/// Builds the application router for one scheme.
pub fn build(state: AppState, scheme: Scheme) -> Router {
    let mut router: Router<AppState> = Router::new();
    for Entry { info, handler } in table() {
        let access = info.access;
        let guarded = handler.route_layer(middleware::from_fn_with_state(
            state.clone(),
            move |State(s): State<AppState>, req: Request, next: Next| {
                guard::guard(s, access, req, next)
            },
        ));
        router = router.route(info.path, guarded);
    }
    router
        .fallback(observe::not_found)
        // Forms and JSON bodies are read whole into memory: bound them for every route at
        // once. The update upload streams its body to disk (`Body`, which this limit does not
        // apply to) and is bounded there by the free space.
        .layer(DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), hosts::check))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .layer(axum::Extension(scheme))
        .with_state(state)
}

/// The plain-HTTP router when HTTPS is on: `/healthz` answers, everything else redirects.
pub fn build_redirect(state: AppState) -> Router {
    Router::new()
        .route(paths::HEALTHZ, axum::routing::get(api::healthz))
        .fallback(redirect_to_https)
        .layer(middleware::from_fn_with_state(state.clone(), hosts::check))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .layer(axum::Extension(Scheme::Http))
        .with_state(state)
}

async fn redirect_to_https(
    State(state): State<AppState>,
    uri: Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    // The host check ran first, so the name is one of this box's own.
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(hosts::strip_port)
        .unwrap_or(hosts::MDNS_NAME);
    let port = match state.https_port {
        Some(443) | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Redirect::permanent(&format!("https://{host}{port}{path}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_unique() {
        let t = route_table();
        for (i, a) in t.iter().enumerate() {
            assert!(
                !t[i + 1..]
                    .iter()
                    .any(|b| a.path == b.path && a.method == b.method),
                "{a:?} twice"
            );
        }
    }
}
