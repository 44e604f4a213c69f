//! Network state changes: how new apps' names end (the suffix) and the owner's public domain;
//! the router: connecting the owner's router (after they confirm its certificate)
//! and forgetting it. Meeting the router (first contact) changes nothing stored, so it is not
//! audited; the confirmation and the forgetting are.

use super::toast;
use crate::dns::public::{PublicDomain, PublicError};
use crate::dns::records::{self, SUFFIX_SETTING};
use crate::network::NetworkError;
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// A router action the owner's input or the router can refuse (the inner `Err`, shown on the
/// form); the outer `Err` is a request that failed.
pub type Refusable<T> = Result<Result<T, NetworkError>, WebError>;

/// Meets the router at `url` and holds the connection for the owner to confirm. Returns the
/// one-time confirmation handle and the certificate's fingerprint (None for plain http).
pub async fn begin(
    state: &AppState,
    url: &str,
    key: Secret,
    secret: Secret,
) -> Refusable<(String, Option<String>)> {
    Ok(state.router.begin(url, key, secret).await)
}

/// After a changed certificate: meets the stored router again, for the owner to confirm
/// the new certificate. Nothing changes until they do.
pub async fn begin_again(state: &AppState) -> Refusable<(String, Option<String>)> {
    Ok(state.router.begin_again().await)
}

/// The owner confirmed the certificate: the key is checked and the connection stored;
/// audited and announced. Returns the router's version.
pub async fn confirm(state: &AppState, who: &Ctx, handle: &str) -> Refusable<String> {
    let pending = state.router.pending(handle).await;
    let version = match state.router.confirm(handle).await {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let (url, fingerprint) = pending.unwrap_or_default();
    let pinned = match fingerprint {
        Some(fp) => format!("certificate {fp}"),
        None => "plain http, no certificate".into(),
    };
    who.audit(
        state,
        "router.connect",
        format!("Connected the router at {url} (OPNsense {version}; {pinned})"),
    )
    .await?;
    toast(state, "Your router is connected.".into());
    Ok(Ok(version))
}

/// Forgets the router: address, certificate and key; audited and announced.
pub async fn forget(state: &AppState, who: &Ctx) -> Result<(), WebError> {
    let url = match state.router.connection().await {
        Ok(Some(c)) => c.url,
        _ => String::new(),
    };
    state
        .router
        .forget()
        .await
        .map_err(|e| WebError::internal(e.to_string()))?;
    who.audit(
        state,
        "router.forget",
        format!("Forgot the router {url} and its key"),
    )
    .await?;
    toast(state, "Homelab forgot your router.".into());
    Ok(())
}

/// Sets the ending of new apps' names; audited. Refused when it is not a DNS name, or when the
/// homelab's root certificate cannot vouch for names under it (browsers would refuse them).
pub async fn set_suffix(state: &AppState, who: &Ctx, suffix: &str) -> Result<(), WebError> {
    let suffix = records::valid_suffix(suffix).map_err(|e| WebError::bad_request(e.to_string()))?;
    if !state.deployer.ca().covers(&format!("x.{suffix}")) {
        return Err(WebError::bad_request(format!(
            "This homelab's certificates can only be trusted for home names (home.arpa, .internal, \
             .lan, .home, .local) so that trusting it cannot be abused for public sites; \
             “{suffix}” is not one of them. For a domain you own on the internet, fill in \
             “Your own domain” below: its names get certificates from a public authority."
        )));
    }
    state
        .store
        .set_setting(SUFFIX_SETTING, suffix.clone())
        .await?;
    who.audit(
        state,
        "network.suffix",
        format!("New apps' names now end in .{suffix}"),
    )
    .await
}

fn refused(e: PublicError) -> WebError {
    match e {
        PublicError::Store(e) => WebError::internal(e),
        e => WebError::bad_request(e.to_string()),
    }
}

/// What the owner typed for their public domain.
pub struct PublicInput<'a> {
    pub domain: &'a str,
    pub email: &'a str,
    pub directory: &'a str,
    pub roots_pem: &'a str,
}

/// Uses the owner's public domain for new apps' names (certificates from its authority over
/// ACME, obtained by the proxy on each device); audited. The same domain with another
/// authority, email or roots is applied to the apps already named under it, in the background
/// (devices may be slow or off); a toast says when it is done, or which apps missed it.
/// Returns the words for the owner.
pub async fn set_public(
    state: &AppState,
    who: &Ctx,
    input: PublicInput<'_>,
) -> Result<String, WebError> {
    let ca = state.deployer.ca();
    let public = PublicDomain::new(
        input.domain,
        input.email,
        input.directory,
        input.roots_pem,
        |n| ca.covers(n),
    )
    .map_err(refused)?;
    let before = PublicDomain::load(&state.store).await;
    public
        .save(&state.store, state.deployer.records().provider().await)
        .await
        .map_err(refused)?;
    who.audit(
        state,
        "network.public",
        format!(
            "Names under {} now get certificates from {} (contact {})",
            public.domain,
            public.authority(),
            public.email
        ),
    )
    .await?;
    if before.is_some_and(|b| b != public) {
        let state = state.clone();
        tokio::spawn(async move {
            let Some(missed) = state.deployer.reapply_public().await else {
                return; // the pass under way applies it and says so
            };
            let said = if missed.is_empty() {
                "Every app under your domain now uses the new authority settings.".to_string()
            } else {
                format!(
                    "These apps keep the previous authority settings until they are updated: {}.",
                    missed.join("; ")
                )
            };
            toast(&state, said);
        });
    }
    Ok(format!(
        "New apps' names now end in .{}, with certificates from {}.",
        public.domain,
        public.authority()
    ))
}

/// Stops using the owner's public domain (refused while apps have names under it); audited.
pub async fn clear_public(state: &AppState, who: &Ctx) -> Result<(), WebError> {
    let Some(current) = PublicDomain::load(&state.store).await else {
        return Ok(());
    };
    PublicDomain::clear(&state.store).await.map_err(refused)?;
    who.audit(
        state,
        "network.public",
        format!("Stopped using {} for app names", current.domain),
    )
    .await
}
