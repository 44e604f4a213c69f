//! DNS state changes from the Network page: which DNS holds app names (`dns.provider`), the
//! AdGuard Home connection (address, user name, sealed password), setting up an AdGuard Home
//! Homelab installed, and what the panel changes in AdGuard Home (protection, blocklists).
//! Each writes an audit record (which is also the live event). AdGuard Home's own refusals come
//! back as the inner `Err`, for the panel to show in place with their fix.

use std::time::Duration;

use crate::dns::adguard::{self, AdGuard, AdGuardError, Status};
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Setting keys and the password's place in the vault: one definition, in `dns::records`.
pub use crate::dns::records::{
    ADGUARD_URL_SETTING, ADGUARD_USER_SETTING, OPNSENSE_URL_SETTING, PROVIDER_SETTING,
};
pub const SECRET_OWNER: &str = crate::dns::records::ADGUARD_SECRET.0;
pub const SECRET_PURPOSE: &str = crate::dns::records::ADGUARD_SECRET.1;
/// The catalog slug of AdGuard Home (recipes/adguard-home).
pub const ADGUARD_APP: &str = "adguard-home";
/// Passwords are typed or pasted; anything longer is not one.
const MAX_PASSWORD: usize = 1024;

/// An action AdGuard Home (or the input) may refuse: shown in the panel, not as a failed
/// request. The outer `Err` is a request that failed.
pub type Answer<T> = Result<Result<T, AdGuardError>, WebError>;

/// The provider the owner chose (`mdns` when none).
pub async fn provider(state: &AppState) -> Result<String, WebError> {
    Ok(state
        .store
        .setting(PROVIDER_SETTING)
        .await?
        .filter(|p| matches!(p.as_str(), "mdns" | "adguard" | "opnsense"))
        .unwrap_or_else(|| "mdns".into()))
}

/// The saved connection, if any.
pub async fn connection(state: &AppState) -> Result<Option<AdGuard>, WebError> {
    let (Some(url), Some(user)) = (
        state.store.setting(ADGUARD_URL_SETTING).await?,
        state.store.setting(ADGUARD_USER_SETTING).await?,
    ) else {
        return Ok(None);
    };
    let password = saved_password(state)
        .await?
        .unwrap_or_else(|| Secret::new(Vec::new()));
    // A stored address was checked when saved; one that no longer parses is shown as gone.
    Ok(AdGuard::new(&url, &user, password).ok())
}

async fn saved_password(state: &AppState) -> Result<Option<Secret>, WebError> {
    let Some(sealed) = state
        .store
        .secret(SECRET_OWNER.into(), SECRET_PURPOSE)
        .await?
    else {
        return Ok(None);
    };
    state
        .vault
        .open(&sealed, SECRET_OWNER, SECRET_PURPOSE)
        .map(Some)
        .map_err(WebError::internal)
}

/// Checks what the owner typed; a blank password means the saved one (same address only).
async fn client_for(
    state: &AppState,
    url: &str,
    username: &str,
    password: Secret,
) -> Result<Result<AdGuard, AdGuardError>, WebError> {
    if password.expose().len() > MAX_PASSWORD {
        return Ok(Err(AdGuardError::BadInput(
            "That password is too long (at most 1024 characters).".into(),
        )));
    }
    let url = match adguard::valid_url(url) {
        Ok(url) => url,
        Err(e) => return Ok(Err(e)),
    };
    let password = if password.expose().is_empty() {
        let same = state.store.setting(ADGUARD_URL_SETTING).await?.as_deref() == Some(&url);
        match saved_password(state).await? {
            Some(saved) if same => saved,
            _ => {
                return Ok(Err(AdGuardError::BadInput(
                    "Type AdGuard Home's password.".into(),
                )));
            }
        }
    } else {
        password
    };
    Ok(AdGuard::new(&url, username, password))
}

/// "Test connection": no change, so no audit record.
pub async fn test(state: &AppState, url: &str, username: &str, password: Secret) -> Answer<Status> {
    let agh = match client_for(state, url, username, password).await? {
        Ok(agh) => agh,
        Err(e) => return Ok(Err(e)),
    };
    Ok(agh.test().await)
}

/// "Save": tests first and saves only a connection that works; audited.
pub async fn save(
    state: &AppState,
    who: &Ctx,
    url: &str,
    username: &str,
    password: Secret,
) -> Answer<Status> {
    let agh = match client_for(state, url, username, password).await? {
        Ok(agh) => agh,
        Err(e) => return Ok(Err(e)),
    };
    let status = match agh.test().await {
        Ok(status) => status,
        Err(e) => return Ok(Err(e)),
    };
    store_connection(state, &agh, username).await?;
    who.audit(
        state,
        "dns.adguard_connect",
        format!(
            "Connected AdGuard Home at {} as “{}”",
            agh.url(),
            adguard::valid_username(username).unwrap_or_default()
        ),
    )
    .await?;
    Ok(Ok(status))
}

async fn store_connection(state: &AppState, agh: &AdGuard, username: &str) -> Result<(), WebError> {
    let sealed = state
        .vault
        .seal(agh.password().expose(), SECRET_OWNER, SECRET_PURPOSE);
    state
        .store
        .put_secret(SECRET_OWNER.into(), SECRET_PURPOSE, sealed)
        .await?;
    state
        .store
        .set_setting(ADGUARD_URL_SETTING, agh.url().to_string())
        .await?;
    state
        .store
        .set_setting(
            ADGUARD_USER_SETTING,
            adguard::valid_username(username).unwrap_or_default(),
        )
        .await?;
    Ok(())
}

/// Forgets the connection; refused while app names live in AdGuard Home. Audited.
pub async fn forget(state: &AppState, who: &Ctx) -> Result<(), WebError> {
    if provider(state).await? == "adguard" {
        return Err(WebError::bad_request(
            "Your apps' names live in AdGuard Home: choose another way to name them first, then \
             remove the connection.",
        ));
    }
    state.store.delete_setting(ADGUARD_URL_SETTING).await?;
    state.store.delete_setting(ADGUARD_USER_SETTING).await?;
    state
        .store
        .delete_secret(SECRET_OWNER.into(), SECRET_PURPOSE)
        .await?;
    who.audit(
        state,
        "dns.adguard_forget",
        "Removed the AdGuard Home connection".into(),
    )
    .await
}

/// Chooses where app names live. AdGuard Home needs a saved connection; OPNsense a router
/// connected in the Router panel. Audited.
pub async fn set_provider(state: &AppState, who: &Ctx, choice: &str) -> Result<(), WebError> {
    let words = match choice {
        "mdns" => "announced by Homelab (.local names)",
        "adguard" => {
            if connection(state).await?.is_none() {
                return Err(WebError::bad_request(
                    "Connect AdGuard Home first (below), then choose it.",
                ));
            }
            "AdGuard Home"
        }
        "opnsense" => {
            if state.store.setting(OPNSENSE_URL_SETTING).await?.is_none() {
                return Err(WebError::bad_request(
                    "Connect your OPNsense router in the Router panel first, then choose it.",
                ));
            }
            "your OPNsense router"
        }
        _ => return Err(WebError::bad_request("Choose one of the offered ways.")),
    };
    state
        .store
        .set_setting(PROVIDER_SETTING, choice.to_string())
        .await?;
    who.audit(
        state,
        "dns.provider",
        format!("App names now live in {words}"),
    )
    .await
}

/// Runs the first-run setup of the AdGuard Home Homelab installed, with a generated password
/// (sealed, never shown), saves the connection and makes it hold app names. Audited.
pub async fn set_up_deployed(state: &AppState, who: &Ctx) -> Answer<Status> {
    let Some(app) = state.store.app(ADGUARD_APP.into()).await? else {
        return Err(WebError::bad_request(
            "AdGuard Home is not installed by Homelab: install it from the catalog, or connect \
             your own.",
        ));
    };
    if connection(state).await?.is_some() {
        return Err(WebError::bad_request("AdGuard Home is already connected."));
    }
    use base64::Engine;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(crate::secrets::random_bytes::<24>());
    let username = "homelab";
    let agh = match AdGuard::set_up_fresh(&app.url, username, Secret::from_string(password)).await {
        Ok(agh) => agh,
        Err(e) => return Ok(Err(e)),
    };
    let status = match agh.test().await {
        Ok(status) => status,
        Err(e) => return Ok(Err(e)),
    };
    store_connection(state, &agh, username).await?;
    state
        .store
        .set_setting(PROVIDER_SETTING, "adguard".into())
        .await?;
    who.audit(
        state,
        "dns.adguard_set_up",
        format!(
            "Set up the AdGuard Home Homelab installed ({}), connected it and made it hold app names",
            agh.url()
        ),
    )
    .await?;
    Ok(Ok(status))
}

async fn connected(state: &AppState) -> Result<AdGuard, WebError> {
    connection(state)
        .await?
        .ok_or_else(|| WebError::bad_request("Connect AdGuard Home first."))
}

/// Blocking on or off (or paused for `pause`); audited.
pub async fn set_protection(
    state: &AppState,
    who: &Ctx,
    on: bool,
    pause: Option<Duration>,
) -> Answer<()> {
    let agh = connected(state).await?;
    let result = match (on, pause) {
        (false, Some(p)) => agh.pause_protection(p).await,
        _ => agh.set_protection(on).await,
    };
    if let Err(e) = result {
        return Ok(Err(e));
    }
    let detail = match (on, pause) {
        (true, _) => "Turned AdGuard Home's blocking on".to_string(),
        (false, Some(p)) => format!(
            "Paused AdGuard Home's blocking for {} minutes",
            p.as_secs() / 60
        ),
        (false, None) => "Turned AdGuard Home's blocking off".to_string(),
    };
    who.audit(state, "dns.adguard_protection", detail).await?;
    Ok(Ok(()))
}

/// Adds a blocklist; audited.
pub async fn add_list(state: &AppState, who: &Ctx, url: &str, name: &str) -> Answer<()> {
    let agh = connected(state).await?;
    if let Err(e) = agh.add_filter(url, name).await {
        return Ok(Err(e));
    }
    who.audit(
        state,
        "dns.adguard_list_add",
        format!("Added the blocklist “{}” ({})", clip(name), clip(url)),
    )
    .await?;
    Ok(Ok(()))
}

/// Removes a blocklist; audited.
pub async fn remove_list(state: &AppState, who: &Ctx, url: &str) -> Answer<()> {
    let agh = connected(state).await?;
    if let Err(e) = agh.remove_filter(url).await {
        return Ok(Err(e));
    }
    who.audit(
        state,
        "dns.adguard_list_remove",
        format!("Removed the blocklist at {}", clip(url)),
    )
    .await?;
    Ok(Ok(()))
}

/// Turns a blocklist on or off; audited.
pub async fn toggle_list(state: &AppState, who: &Ctx, url: &str, enabled: bool) -> Answer<()> {
    let agh = connected(state).await?;
    if let Err(e) = agh.set_filter_enabled(url, enabled).await {
        return Ok(Err(e));
    }
    who.audit(
        state,
        "dns.adguard_list_toggle",
        format!(
            "Turned the blocklist at {} {}",
            clip(url),
            if enabled { "on" } else { "off" }
        ),
    )
    .await?;
    Ok(Ok(()))
}

/// Downloads every blocklist again; audited. Returns how many changed.
pub async fn refresh_lists(state: &AppState, who: &Ctx) -> Answer<u64> {
    let agh = connected(state).await?;
    let updated = match agh.refresh_filters().await {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    who.audit(
        state,
        "dns.adguard_lists_refresh",
        format!("Refreshed the blocklists ({updated} changed)"),
    )
    .await?;
    Ok(Ok(updated))
}

/// An address as it goes into the audit log: bounded, one line.
fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}
