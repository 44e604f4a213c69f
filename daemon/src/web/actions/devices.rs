//! Device state changes: adding (adopting) one, "Install Docker for me", "Check now" (one
//! device or all), accepting a new identity key, renaming or moving, changing the login, and
//! removing.

use crate::devices::checks::Report;
use crate::devices::health::CycleSummary;
use crate::devices::install::{InstallError, Installed};
use crate::devices::{Credential, DeviceError, DeviceInput};
use crate::events::Event;
use crate::secrets::Secret;
use crate::store::DeviceRow;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// How an add went, when it did not fail outright.
pub enum Added {
    Device(DeviceRow),
    /// The checks found a problem the user can fix; the report says which (the form shows it
    /// in place, the API as a 422).
    NotReady(Box<Report>),
}

/// Adopts a device; audited, and its first check starts at once (its figures come right away
/// rather than at the next poll).
pub async fn add(state: &AppState, who: &Ctx, input: DeviceInput) -> Result<Added, WebError> {
    let d = match state.devices.adopt(input).await {
        Ok(d) => d,
        Err(DeviceError::NotReady(report)) => return Ok(Added::NotReady(report)),
        Err(e) => return Err(e.into()),
    };
    who.audit(
        state,
        "device.add",
        format!(
            "Added device “{}” ({}@{})",
            d.name,
            d.username,
            crate::units::host_port(&d.host, d.port)
        ),
    )
    .await?;
    state.devices.check_soon(d.clone());
    Ok(Added::Device(d))
}

/// "Install Docker for me". Runs in a task of its own, so a closed browser tab (or a dropped
/// API call) cannot stop a package manager half-way; audits the outcome either way. Returns how
/// the install went and the checks run again after it.
pub async fn install_docker(
    state: &AppState,
    who: &Ctx,
    input: DeviceInput,
    sudo_password: String,
    fingerprint: String,
) -> Result<(Result<Installed, InstallError>, Report), WebError> {
    let devices = state.devices.clone();
    let target = format!(
        "{}@{}",
        input.username.trim(),
        crate::units::host_port(input.host.trim(), input.port)
    );
    let sudo = (!sudo_password.is_empty()).then(|| Secret::from_string(sudo_password));
    let (outcome, report) = tokio::spawn(async move {
        devices
            .install_docker(&input, sudo, Some(fingerprint.as_str()))
            .await
    })
    .await
    .map_err(WebError::internal)??;
    let what = match &outcome {
        Ok(done) => format!("Installed Docker on {target} in {:.0} s", done.seconds),
        Err(e) => format!("Installing Docker on {target} failed: {e}"),
    };
    who.audit(state, "device.install_docker", what).await?;
    Ok((outcome, report))
}

/// "Check now" on one device: skips any reconnect back-off and waits for the result.
pub async fn check_now(state: &AppState, id: i64) -> Result<(), WebError> {
    let device = state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    state.devices.pool.forget(id).await;
    state.devices.check(&device).await;
    Ok(())
}

/// Checks every device now (as the poller would); does not wait for the ones that do not
/// answer.
pub async fn check_all(state: &AppState) -> Result<CycleSummary, WebError> {
    Ok(state.devices.poll_all().await?)
}

/// Pins the identity key a device now presents (after a reinstall), audited, then checks the
/// device with it. Nothing happens when no new key is waiting.
pub async fn trust_host_key(state: &AppState, who: &Ctx, id: i64) -> Result<(), WebError> {
    let device = state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    if state.devices.trust_new_host_key(id).await? {
        who.audit(
            state,
            "device.trust_host_key",
            format!("Trusted the new identity key of “{}”", device.name),
        )
        .await?;
        // Re-read: the row now carries the newly pinned key.
        if let Some(trusted) = state.store.device(id).await? {
            state.devices.check(&trusted).await;
        }
    }
    Ok(())
}

/// Renames a device and/or moves it to a new address; audited when something changed.
pub async fn edit(
    state: &AppState,
    who: &Ctx,
    id: i64,
    name: &str,
    host: &str,
    port: u16,
) -> Result<(), WebError> {
    let (before, after) = state.devices.edit(id, name, host, port).await?;
    if before != after {
        who.audit(
            state,
            "device.edit",
            format!("Changed device “{}”: {before} → {after}", name.trim()),
        )
        .await?;
    }
    Ok(())
}

/// Changes how Homelab logs in to a device; audited and announced.
pub async fn change_login(
    state: &AppState,
    who: &Ctx,
    id: i64,
    username: &str,
    credential: Credential,
    keep_password: bool,
) -> Result<(), WebError> {
    let user = username.trim().to_string();
    state
        .devices
        .change_login(id, &user, credential, keep_password)
        .await?;
    let device = state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    who.audit(
        state,
        "device.login",
        format!("Changed the login of “{}” (now “{user}”)", device.name),
    )
    .await?;
    super::toast(state, format!("New login for “{}” saved.", device.name));
    Ok(())
}

/// Forgets a device; with `clean`, first takes Homelab's key off it. Audited, and open pages
/// are told so their device lists drop it. Returns the device's name.
pub async fn remove(state: &AppState, who: &Ctx, id: i64, clean: bool) -> Result<String, WebError> {
    let name = state.devices.remove(id, clean).await?;
    let how = if clean {
        " and removed its key from the device"
    } else {
        ""
    };
    who.audit(
        state,
        "device.remove",
        format!("Removed device “{name}”{how}"),
    )
    .await?;
    state.events.publish(Event::DeviceStatus { device_id: id });
    Ok(name)
}
