//! Network state changes: how new apps' names end (the suffix).

use crate::dns::records::{self, SUFFIX_SETTING};
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Sets the ending of new apps' names; audited. Refused when it is not a DNS name, or when the
/// homelab's root certificate cannot vouch for names under it (browsers would refuse them).
pub async fn set_suffix(state: &AppState, who: &Ctx, suffix: &str) -> Result<(), WebError> {
    let suffix = records::valid_suffix(suffix).map_err(|e| WebError::bad_request(e.to_string()))?;
    if !state.deployer.ca().covers(&format!("x.{suffix}")) {
        return Err(WebError::bad_request(format!(
            "This homelab's certificates can only be trusted for home names (home.arpa, .internal, \
             .lan, .home, .local) so that trusting it cannot be abused for public sites; \
             “{suffix}” is not one of them."
        )));
    }
    state.store.set_setting(SUFFIX_SETTING, suffix.clone()).await?;
    who.audit(
        state,
        "network.suffix",
        format!("New apps' names now end in .{suffix}"),
    )
    .await
}
